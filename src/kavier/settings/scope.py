"""Where each scenario key acts: the presets whose backend reads it, and what else it needs.

One declaration per key (:data:`SCOPES`; a key not listed acts in every preset and needs
nothing) is read by the scenario's validation (:func:`scope_error`: a key set to anything but
its default where it would change nothing is a one-line error naming where it applies), by
``kavier run --help`` (:func:`scope_note`) and by the test that runs every option in every
preset. A preset here is the backend the scenario's performance model picks: ``perf_model =
"thesis"`` runs the thesis preset's sequential GPUs, ``"serving"`` the serving preset's
replicas.

Only values that differ from the default (the preset's, else the field's) are checked, so a
default never raises, and neither does a scenario file that spells every key out with its
default (``scenario.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

BOTH = ("serving", "thesis")
SERVING = ("serving",)
THESIS = ("thesis",)


@dataclass(frozen=True)
class Need:
    """Another setting a key needs to act: ``text`` says it as flags, ``holds(scenario)`` tells
    whether the scenario meets it, ``example`` is settings that meet it. A ``soft`` need only
    warns when unmet: a model constant (``comm_efficiency``) that a layout without parallelism
    does not use, which scenario files of earlier versions spell out with their defaults."""

    text: str
    holds: Callable[[Any], bool]
    example: Mapping[str, Any]
    soft: bool = False


@dataclass(frozen=True)
class Scope:
    """The presets a key acts in, what else it needs there, and (``instead``) what to use in
    the other preset."""

    presets: tuple[str, ...] = BOTH
    needs: tuple[Need, ...] = ()
    instead: str = ""


def one_of(key: str, *values: Any, text: str | None = None, soft: bool = False) -> Need:
    """The need ``key`` in ``values`` (shown as ``--key a|b``)."""
    flag = "--" + key.replace("_", "-")
    shown = text or f"{flag} {'|'.join(str(v) for v in values)}"
    return Need(shown, lambda s: getattr(s, key) in values, {key: values[0]}, soft)


def generator(*names: str) -> Need:
    """The need of a generator's key: one of the generators ``names`` (a warning when unmet: a
    scenario may keep every generator's keys and switch between them)."""
    return one_of("workload", *names, soft=True)


def power_model(*names: str) -> Need:
    """The need of a power model's constant (a warning when unmet, as for generators)."""
    return one_of("power_model", *names, soft=True)


def _degree(scenario: Any, key: str) -> int:
    """The largest tensor- or pipeline-parallel degree of any replica."""
    groups = scenario.replica_groups or [{}]
    return max(int(g.get(key, getattr(scenario, key))) for g in groups)


NO_TRACE = Need("a generated workload (no --trace)", lambda s: not s.trace, {"trace": None}, soft=True)
TP = Need(
    "tensor parallelism (--tp 2 or more)", lambda s: _degree(s, "tp") > 1, {"tp": 2, "gpus": 2}, soft=True
)
TP_OR_PP = Need(
    "tensor or pipeline parallelism (--tp or --pp 2 or more)",
    lambda s: _degree(s, "tp") > 1 or _degree(s, "pp") > 1,
    {"tp": 2, "gpus": 2},
    soft=True,
)
# generated sessions are told apart by their session alone, so only a trace's token ids or
# hash_ids can match across sessions
IDS_TRACE = Need("a trace with token ids or hash_ids (--trace)", lambda s: bool(s.trace), {}, soft=True)
BLOCK_CACHE = one_of("prefix_cache", "block")
THESIS_CACHE = one_of("prefix_cache", "thesis", text="--prefix-cache thesis (the thesis preset's default)")
THESIS_CACHE_HINT = (
    "the serving preset's block prefix cache takes --cache-capacity-tokens, --cache-scope, --cache-eviction"
)
SERVING_MODEL = (
    "the thesis model has no batches, replicas or tensor parallelism: it runs one request at a "
    "time per GPU (--gpus)"
)
SERVING_ENGINE = "the thesis model runs one request at a time per GPU (drop it, or use --preset serving)"
BLOCK_HINT = "the thesis preset's cache is --prefix-cache thesis (--prefix-len, --prefix-cache-size)"


def _serving(instead: str = SERVING_ENGINE, *needs: Need) -> Scope:
    return Scope(SERVING, needs, instead)


SCOPES: dict[str, Scope] = {
    # system: the thesis preset runs the whole 16-bit model on each of --gpus GPUs
    "replicas": _serving(SERVING_MODEL),
    "tp": _serving(SERVING_MODEL),
    "pp": _serving(SERVING_MODEL),
    "weight_dtype": _serving("the thesis model keeps 16-bit weights"),
    "kv_dtype": _serving("the thesis model keeps a 16-bit KV cache"),
    "activation_reserve_gib": _serving("the thesis model reserves no activation memory"),
    "replica_groups": _serving(SERVING_MODEL),
    # workload: each generator reads its own keys, and a trace none of them
    "workload": Scope(needs=(NO_TRACE,)),
    "num_requests": Scope(needs=(generator("poisson", "gamma", "closed-loop"), NO_TRACE)),
    "rate": Scope(needs=(generator("poisson", "gamma"), NO_TRACE)),
    "arrival_cv": Scope(needs=(generator("gamma"), NO_TRACE)),
    "input_tokens": Scope(needs=(generator("poisson", "gamma", "closed-loop"), NO_TRACE)),
    "output_tokens": Scope(needs=(generator("poisson", "gamma", "closed-loop"), NO_TRACE)),
    "num_sessions": Scope(needs=(generator("chat"), NO_TRACE)),
    "session_rate": Scope(needs=(generator("chat"), NO_TRACE)),
    "concurrency": _serving(SERVING_ENGINE, generator("closed-loop"), NO_TRACE),
    "think_time_s": _serving(SERVING_ENGINE, generator("closed-loop"), NO_TRACE),
    # serving engine
    "router": _serving(),
    "affinity_load_guard": _serving(SERVING_ENGINE, one_of("router", "prefix_affinity", soft=True)),
    "engine": _serving(),
    "max_num_seqs": _serving(),
    "max_batched_tokens": _serving(),
    "chunked_prefill": _serving(),
    "max_model_len": _serving(),
    "frontend_s_per_request": _serving(),
    "frontend_s_per_token": _serving(),
    "block_size": _serving("the thesis model keeps no paged KV blocks"),
    # performance models: each reads its own constants
    "kv_cache": Scope(THESIS, (), "the serving model always reads the KV cache"),
    "edge_utilization": Scope(THESIS, (), "the serving model's utilisation follows its iterations"),
    "warmup_s": Scope(THESIS, (), "the serving model's utilisation follows its iterations"),
    "cooldown_s": Scope(THESIS, (), "the serving model's utilisation follows its iterations"),
    "compute_saturation_tokens": _serving("the thesis model has fixed efficiencies"),
    "roofline_norm": _serving("the thesis model's time is max(compute, memory)"),
    "iteration_overhead_s": _serving("the thesis model's overhead is --overhead-s"),
    "decode_seq_overhead_s": _serving("the thesis model's overhead is --overhead-s"),
    "prefill_seq_overhead_s": _serving("the thesis model's overhead is --overhead-s"),
    "attention_efficiency": _serving("the thesis model has one --compute-efficiency"),
    "comm_efficiency": _serving(SERVING_MODEL, TP_OR_PP),
    "comm_latency_s": _serving(SERVING_MODEL, TP_OR_PP),
    "comm_cache_bytes": _serving(SERVING_MODEL, TP),
    "comm_spill_efficiency": _serving(
        SERVING_MODEL,
        TP,
        Need(
            "--comm-cache-bytes above 0",
            lambda s: s.comm_cache_bytes > 0,
            {"comm_cache_bytes": 5e6},
            soft=True,
        ),
    ),
    "context_terms": _serving("the thesis model counts no context terms"),
    "perf_profile": _serving(
        "the thesis model's constants are --compute-efficiency, --memory-efficiency, --overhead-s"
    ),
    # caches
    "cache_eviction": _serving(BLOCK_HINT, BLOCK_CACHE),
    # a policy's own constant kept while the policy changes (a sweep over policies) only warns
    "cache_ttl": _serving(BLOCK_HINT, BLOCK_CACHE, one_of("cache_eviction", "ttl", soft=True)),
    "cache_scope": _serving(BLOCK_HINT, BLOCK_CACHE),
    "cache_capacity_tokens": _serving(BLOCK_HINT, BLOCK_CACHE),
    "cache_capacity_bytes": _serving(BLOCK_HINT, BLOCK_CACHE),
    "cache_tiers": _serving(BLOCK_HINT, BLOCK_CACHE),
    "cache_tier_policy": _serving(
        BLOCK_HINT,
        BLOCK_CACHE,
        Need("--cache-tiers", lambda s: bool(s.cache_tiers), {"cache_tiers": "host-dram:64GiB"}),
    ),
    "response_cache_size": _serving(
        "with --preset thesis use --prefix-cache-policy full",
        one_of("response_cache", True, text="--response-cache on"),
    ),
    "response_cache_latency": _serving(
        "with --preset thesis use --prefix-cache-policy full",
        one_of("response_cache", True, text="--response-cache on"),
    ),
    # the thesis prefix cache: in the thesis preset, or in the serving one with --prefix-cache thesis
    "prefix_len": Scope(BOTH, (THESIS_CACHE,), THESIS_CACHE_HINT),
    "prefix_cache_size": Scope(BOTH, (THESIS_CACHE,), THESIS_CACHE_HINT),
    "prefix_cache_scope": Scope(BOTH, (THESIS_CACHE, IDS_TRACE), THESIS_CACHE_HINT),
    "prefix_cache_policy": Scope(
        THESIS, (THESIS_CACHE,), "the serving preset answers whole repeats with --response-cache on"
    ),
    # energy: each power model reads its own constants
    "power_calibration": Scope(needs=(power_model("mse"),)),
    "power_asym_util": Scope(needs=(power_model("asymptotic", "asymptotic-dvfs"),)),
    "power_memory_weight": Scope(needs=(power_model("activity"),)),
    "power_compute_weight": Scope(needs=(power_model("activity"),)),
    "power_active_floor": Scope(needs=(power_model("activity"),)),
    "carbon_trace_wrap": Scope(
        needs=(Need("--carbon-trace", lambda s: bool(s.carbon_trace), {}, soft=True),)
    ),
    # outputs
    "timeline": _serving("the thesis model times whole requests, so it has no iterations to show"),
}


def backend_preset(scenario: Any) -> str:
    """The preset whose backend runs the scenario: ``thesis`` for the thesis performance model."""
    return "thesis" if scenario.perf_model == "thesis" else "serving"


def default_of(scenario: Any, key: str) -> Any:
    """The key's default in the scenario's preset (the preset's value, else the field's)."""
    from kavier.settings.presets import PRESETS

    preset = PRESETS.get(scenario.preset, {})
    if key in preset:
        return preset[key]
    return type(scenario).model_fields[key].default


def scope_problems(scenario: Any) -> list[tuple[bool, str]]:
    """Every key set (away from its default) where it changes nothing, as ``(is_error, line)``:
    an error in a preset it does not apply to or without a need, a warning without a soft need."""
    from kavier.settings.base import option_flag

    preset = backend_preset(scenario)
    fields = type(scenario).model_fields
    found: list[tuple[bool, str]] = []
    for key, scope in SCOPES.items():
        if getattr(scenario, key) == default_of(scenario, key):
            continue
        flag = option_flag(key, fields[key])
        if preset not in scope.presets:
            where = scope.presets[0]
            line = f"{flag} applies to the {where} preset (--preset {where}), not to this {preset} run"
            found.append((True, line + (f"; {scope.instead}" if scope.instead else "")))
            continue
        for need in scope.needs:
            if need.holds(scenario):
                continue
            if need.soft:
                found.append((False, f"{flag} changes nothing without {need.text}"))
                continue
            line = f"{flag} acts only with {need.text}, which this {preset} run does not have"
            hint = f"; {scope.instead}" if scope.instead and scope.presets == BOTH else ""
            found.append((True, f"{line}: drop it or add that{hint}"))
            break
    return found


def scope_error(scenario: Any) -> str | None:
    """The one-line error for the first key set where it changes nothing (None: every key acts)."""
    return next((line for is_error, line in scope_problems(scenario) if is_error), None)


def scope_warnings(scenario: Any) -> list[str]:
    """The one-line warnings for keys set where a soft need is unmet (they change nothing)."""
    return [line for is_error, line in scope_problems(scenario) if not is_error]


def value_error(scenario: Any) -> str | None:
    """The one-line error for a value the scenario's backend cannot run (None: it can)."""
    if backend_preset(scenario) != "thesis":
        return None
    if scenario.prefix_cache == "block" or scenario.response_cache:
        return (
            "the block prefix cache and the response cache need the serving engine; with --preset thesis "
            "use --prefix-cache thesis (and --prefix-cache-policy full for prompt-response caching)"
        )
    if scenario.scheduler != "sequential":
        return (
            f"scheduler {scenario.scheduler!r} needs the serving performance model; the thesis model runs "
            "one request at a time (use --preset serving, or --scheduler sequential)"
        )
    if scenario.workload == "closed-loop" and not scenario.trace:
        return (
            "--workload closed-loop needs the serving preset (--preset serving): the thesis preset "
            "replays open-loop arrivals (use --workload poisson, gamma or chat)"
        )
    return None


def scope_note(key: str) -> str:
    """What ``--help`` adds to a key's description: the preset it is limited to and its needs."""
    scope = SCOPES.get(key)
    if scope is None:
        return ""
    parts = [f"{scope.presets[0]} preset only"] if scope.presets != BOTH else []
    parts += [f"needs {need.text}" for need in scope.needs]
    return f" [{'; '.join(parts)}]" if parts else ""


def examples(key: str) -> dict[str, Any]:
    """Settings under which ``key`` acts (its needs' examples), for tests and docs."""
    context: dict[str, Any] = {}
    for need in SCOPES.get(key, Scope()).needs:
        context.update(need.example)
    return context


__all__ = [
    "BOTH",
    "SCOPES",
    "Need",
    "Scope",
    "backend_preset",
    "examples",
    "scope_error",
    "scope_note",
    "scope_warnings",
    "value_error",
]
