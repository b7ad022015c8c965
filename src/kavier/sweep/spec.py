"""Sweep files: a base scenario plus axes, expanded into runs, each validated before anything runs.

A sweep file (TOML, YAML or JSON) holds

- the base scenario: top-level scenario keys (grouping tables such as ``[workload]`` are
  flattened one level, as in a scenario file), and/or a ``[base]`` table, and/or
  ``base = "scenario.toml"`` (a scenario file, relative to the sweep file; keys written in the
  sweep file override it);
- ``[axes]``: scenario key = list of values;
- ``mode = "product"`` (default: the Cartesian product, the first axis varying slowest) or
  ``"zip"`` (equal-length lists, taken element by element);
- optionally ``[[runs]]``: explicit override tables, appended after the axes' runs.

Relative paths (``trace``, ``catalog``, ``carbon_trace``, ``perf_profile``, a PUE series) in
the sweep file resolve against the sweep file's folder.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kavier.errors import KavierError, ScenarioError, shown
from kavier.scenario import Scenario, build_scenario, flatten_group_table, read_mapping, unknown_key

RESERVED = ("axes", "base", "mode", "runs")
MODES = ("product", "zip")
PATH_KEYS = ("trace", "catalog", "carbon_trace", "perf_profile", "pue")
# Keys the sweep sets itself for every run.
SWEEP_OWNED = ("output_folder",)
MAX_RUN_ID_CHARS = 120


@dataclass
class SweepSpec:
    """A parsed sweep file: where it is, its base, its axes (in file order) and its explicit runs."""

    path: Path
    base_file: Path | None
    base: dict[str, Any]
    axes: dict[str, list[Any]]
    mode: str = "product"
    explicit: list[dict[str, Any]] = field(default_factory=list)

    @property
    def axis_names(self) -> list[str]:
        """Columns that vary: the axes, then keys only the explicit runs set (first-seen order)."""
        names = list(self.axes)
        for run in self.explicit:
            names += [k for k in run if k not in names]
        return names


@dataclass
class PlannedRun:
    """One run of a sweep: its position, id, the values of the axes, and the resolved scenario."""

    index: int
    run_id: str
    params: dict[str, Any]
    scenario: Scenario


def _label(path: Path) -> str:
    return str(path)


def _key(name: Any) -> str:
    return str(name).replace("-", "_")


def _resolve_paths(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Relative path values that exist beside the sweep file become paths to them."""
    out = dict(values)
    for key in PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            candidate = folder / value
            if candidate.exists():
                out[key] = str(candidate)
    return out


def load_sweep(path: str | Path) -> SweepSpec:
    """Parse a sweep file into a :class:`SweepSpec` (shape checks only; see :func:`plan_runs`)."""
    path = Path(path)
    data = read_mapping(path, "sweep file")
    src = _label(path)
    folder = path.parent

    base: dict[str, Any] = {}
    base_file: Path | None = None
    for raw_key, value in data.items():
        key = _key(raw_key)
        if key in RESERVED:
            continue
        if isinstance(value, dict):  # grouping table, flattened as in scenario files
            base.update(flatten_group_table(src, str(raw_key), value))
        else:
            base[key] = value
    raw_base = data.get("base")
    if isinstance(raw_base, str):
        base_file = (folder / raw_base) if not Path(raw_base).is_absolute() else Path(raw_base)
        if not base_file.is_file():
            raise ScenarioError(
                f"{src}: base = {raw_base!r}: scenario file {str(base_file)!r} does not exist"
            )
    elif isinstance(raw_base, dict):
        base.update({_key(k): v for k, v in raw_base.items()})
    elif raw_base is not None:
        raise ScenarioError(f"{src}: base must be a table of scenario keys or a scenario file path")

    mode = data.get("mode", "product")
    if mode not in MODES:
        raise ScenarioError(f"{src}: mode = {mode!r}; use 'product' (Cartesian product) or 'zip'")

    raw_axes = data.get("axes", {}) or {}
    if not isinstance(raw_axes, dict):
        raise ScenarioError(f"{src}: [axes] must be a table of key = [values]")
    axes: dict[str, list[Any]] = {}
    for raw_key, values in raw_axes.items():
        key = _key(raw_key)
        if not isinstance(values, list):
            raise ScenarioError(f"{src}: axis {key} = {values!r}: give a list of values, e.g. {key} = [...]")
        if not values:
            raise ScenarioError(f"{src}: axis {key} is an empty list; give at least one value")
        axes[key] = [_resolve_paths({key: v}, folder)[key] for v in values]
    if mode == "zip" and axes:
        lengths = {k: len(v) for k, v in axes.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise ScenarioError(f"{src}: mode = 'zip' needs axes of equal length; got {shown}")

    raw_runs = data.get("runs", []) or []
    if not isinstance(raw_runs, list) or not all(isinstance(r, dict) for r in raw_runs):
        raise ScenarioError(f"{src}: runs must be a list of tables ([[runs]] in TOML)")
    explicit = [_resolve_paths({_key(k): v for k, v in r.items()}, folder) for r in raw_runs]
    if not axes and not explicit:
        raise ScenarioError(f"{src}: no [axes] and no [[runs]]; a sweep needs at least one of them")

    return SweepSpec(
        path=path,
        base_file=base_file,
        base=_resolve_paths(base, folder),
        axes=axes,
        mode=mode,
        explicit=explicit,
    )


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """The runs' axis values, in order: the axes' product (or zip), then the explicit runs."""
    combos: list[dict[str, Any]] = []
    if spec.axes:
        names = list(spec.axes)
        if spec.mode == "zip":
            rows = zip(*spec.axes.values(), strict=True)
        else:
            rows = itertools.product(*spec.axes.values())
        combos = [dict(zip(names, row, strict=True)) for row in rows]
    return combos + [dict(r) for r in spec.explicit]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _sanitise(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.")
    return cleaned or "x"


def run_id(index: int, params: dict[str, Any], width: int = 4) -> str:
    """A readable, deterministic folder name: ``0007-gpu=H100-SXM_replicas=4_seed=1``.

    Characters outside ``[A-Za-z0-9._+-]`` become ``-``; long ids are cut and end in a short
    hash of the full parameters so they stay unique and stable.
    """
    head = f"{index:0{width}d}"
    body = "_".join(f"{_sanitise(k)}={_sanitise(_text(v))}" for k, v in params.items())
    ident = f"{head}-{body}" if body else head
    if len(ident) > MAX_RUN_ID_CHARS:
        digest = hashlib.sha1(
            json.dumps(params, sort_keys=True, default=str).encode(), usedforsecurity=False
        ).hexdigest()[:8]
        ident = ident[: MAX_RUN_ID_CHARS - 9].rstrip("-_.") + "~" + digest
    return ident


def _check_keys(spec: SweepSpec) -> None:
    src = _label(spec.path)
    fields = Scenario.model_fields
    for key in spec.base:
        if key not in fields:
            raise unknown_key(src, key)
    for key in spec.axes:
        if key not in fields:
            raise unknown_key(src, key, "axis")
    for i, run in enumerate(spec.explicit):
        for key in run:
            if key not in fields:
                raise unknown_key(src, key, f"runs[{i}] key")
    for key in SWEEP_OWNED:
        if key in spec.base or key in spec.axes or any(key in r for r in spec.explicit):
            raise ScenarioError(f"{src}: {key} is set by the sweep (--out DIR/runs/<run_id>); remove it")


def _where(spec: SweepSpec, params: dict[str, Any], key: str, index: int) -> str:
    if key in spec.axes:
        return f"axis {key}"
    if key in params:
        return f"runs[{index - _num_axis_runs(spec)}] {key}"
    return key


def _num_axis_runs(spec: SweepSpec) -> int:
    if not spec.axes:
        return 0
    lengths = [len(v) for v in spec.axes.values()]
    if spec.mode == "zip":
        return lengths[0]
    n = 1
    for length in lengths:
        n *= length
    return n


class _Preflight:
    """Cheap checks that catch typos before any run starts: names, regions, files."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, Any, Any], str | None] = {}

    def problem(self, scenario: Scenario) -> tuple[str, str] | None:
        """(key, message) of the first problem found, or None."""
        from kavier.energy.carbon import region_intensity
        from kavier.library.catalog import load_catalog

        checks: list[tuple[str, Any]] = [("llm", scenario.llm), ("gpu", scenario.gpu)]
        if scenario.region:
            checks.append(("region", scenario.region))
        for key in ("trace", "carbon_trace", "perf_profile", "catalog"):
            value = getattr(scenario, key)
            if isinstance(value, str) and value:
                checks.append((key, value))
        for key, value in checks:
            memo = (key, value, scenario.catalog)
            if memo not in self._seen:
                try:
                    if key == "llm":
                        load_catalog(scenario.catalog).model(value)
                    elif key == "gpu":
                        load_catalog(scenario.catalog).gpu(value)
                    elif key == "region":
                        region_intensity(value)
                    elif key == "trace":
                        from kavier.workload.traces import check_trace

                        check_trace(value)  # a file, or a built-in or remote trace name
                    elif not Path(value).expanduser().exists():
                        raise KavierError(f"file {shown(value)} does not exist")
                    self._seen[memo] = None
                except KavierError as exc:
                    self._seen[memo] = str(exc).splitlines()[0]
            if self._seen[memo] is not None:
                return key, self._seen[memo]  # type: ignore[return-value]
        return self._split(scenario)

    def _split(self, scenario: Scenario) -> tuple[str, str] | None:
        """A serving run's tp or pp that does not split its model (engine.system's rule)."""
        if scenario.perf_model == "thesis" or scenario.replica_groups:
            return None  # the thesis model runs whole models; groups are checked per group at run
        from kavier.engine.system import parallelism_error
        from kavier.library.catalog import load_catalog

        model = load_catalog(scenario.catalog).model(scenario.llm)
        message = parallelism_error(model, scenario.tp, scenario.pp)
        if message is None:
            return None
        return ("tp" if message.startswith("tp=") else "pp"), message


def plan_runs(spec: SweepSpec, runs_dir: Path | None = None) -> list[PlannedRun]:
    """Every run's scenario, resolved and checked before anything runs.

    An unknown key, a bad value, an unknown model, GPU or region, or a missing file raises a
    one-line :class:`ScenarioError` naming the sweep file, the axis and the value. Whether a
    model fits its GPU is not checked here: such runs fail at run time and are recorded.
    ``runs_dir`` is where the run folders go (``output_folder = runs_dir / run_id``).
    """
    _check_keys(spec)
    src = _label(spec.path)
    combos = expand(spec)
    width = max(4, len(str(len(combos) - 1)))
    preflight = _Preflight()
    planned: list[PlannedRun] = []
    seen_ids: set[str] = set()
    for index, params in enumerate(combos):
        ident = run_id(index, params, width)
        if ident in seen_ids:  # only possible after truncation collisions
            raise ScenarioError(f"{src}: two runs share the id {ident}; shorten the axis values")
        seen_ids.add(ident)
        overrides = {**spec.base, **params}
        if runs_dir is not None:
            overrides["output_folder"] = str(runs_dir / ident)
        try:
            scenario = build_scenario(spec.base_file, overrides)
        except ScenarioError as exc:
            raise ScenarioError(_explain(spec, params, index, ident, exc)) from exc
        found = preflight.problem(scenario)
        if found is not None:
            key, message = found
            value = params.get(key, spec.base.get(key, getattr(scenario, key)))
            raise ScenarioError(f"{src}: {_where(spec, params, key, index)} = {value!r}: {message}")
        planned.append(PlannedRun(index=index, run_id=ident, params=params, scenario=scenario))
    return planned


def _explain(spec: SweepSpec, params: dict[str, Any], index: int, ident: str, exc: ScenarioError) -> str:
    src = _label(spec.path)
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        err = cause.errors()[0]
        loc = err.get("loc", ())
        key = str(loc[0]) if loc else "?"
        msg = err.get("msg", "invalid value").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            return f"{src}: base file {spec.base_file}: {key!r} is not a scenario key"
        if not loc:  # a check across keys: its message names them
            return f"{src}: run {ident}: {msg}"
        value = params.get(key, spec.base.get(key, err.get("input")))
        return f"{src}: {_where(spec, params, key, index)} = {value!r} (run {ident}): {msg}"
    return f"{src}: run {ident}: {exc}"
