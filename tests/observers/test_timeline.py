"""``kavier.observers.timeline``: ``timeline.json``, a Chrome/Perfetto trace of the iterations."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kavier
from kavier.errors import ScenarioError
from tests.cli_helper import kavier as kavier_cli
from tests.runs import SERVE

PARTS = ("compute_us", "memory_us", "allreduce_us", "host_us", "cache_load_us")


def _strict_json(text: str):
    """Parse JSON as a strict reader does: NaN and Infinity are not JSON."""

    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=no_constant)


def _ns(us: float) -> int:
    """A trace time (microseconds with nanosecond decimals) in integer nanoseconds."""
    return round(us * 1000)


def check_trace_format(trace: dict) -> None:
    """The Trace Event Format's JSON object form, as this output writes it."""
    assert isinstance(trace["traceEvents"], list)
    assert trace["displayTimeUnit"] in ("ms", "ns")
    for e in trace["traceEvents"]:
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["pid"], int) and e["pid"] >= 1
        if e["ph"] == "X":
            assert e["name"] in ("prefill", "decode", "prefill+decode")
            assert isinstance(e["tid"], int)
            assert e["ts"] >= 0 and e["dur"] >= 0
            args = e["args"]
            assert args["iterations"] >= 1
            prefill, decode = args["prefill_tokens_per_iteration"], args["decode_seqs_per_iteration"]
            assert args["batch_tokens"] == prefill + decode
            assert (e["name"] != "decode") == (prefill > 0)
            assert (e["name"] != "prefill") == (decode > 0)
            assert args["bound"] in ("compute", "memory")
            assert min(args[p] for p in PARTS) >= 0
            # the parts add up to the duration (each rounded to the nanosecond)
            assert sum(args[p] for p in PARTS) == pytest.approx(e["dur"], abs=5e-3)
        elif e["ph"] == "C":
            assert e["ts"] >= 0
            assert e["name"] in ("requests", "KV cache")
            assert all(isinstance(v, int | float) and v >= 0 for v in e["args"].values())
        else:
            assert e["ph"] == "M"
            assert e["name"] in ("process_name", "process_sort_index", "thread_name")


def x_events_by_replica(trace: dict) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            out[e["pid"] - 1].append(e)
    return out


def busy_by_replica(result) -> np.ndarray:
    """Each replica's busy seconds, from the time series (utilisation is busy_utilization while
    the replica runs iterations, 0 otherwise)."""
    ts = result.timeseries
    busy = ts.column("gpu_utilization").to_numpy() * ts.column("interval_s").to_numpy()
    per = np.bincount(ts.column("replica").to_numpy(), weights=busy, minlength=result.summary["num_replicas"])
    return per / result.scenario.busy_utilization


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 40),
    rate=st.floats(0.5, 40.0),
    replicas=st.integers(1, 3),
    tp=st.sampled_from([1, 2]),
    scheduler=st.sampled_from(["continuous", "static", "sequential"]),
    engine=st.sampled_from(["vllm-v1", "vllm-v0"]),
    seed=st.integers(0, 10_000),
)
def test_trace_is_valid_and_its_pieces_tile_each_replicas_busy_time(
    n, rate, replicas, tp, scheduler, engine, seed
):
    r = kavier.simulate(
        timeline=True,
        workload="poisson",
        num_requests=n,
        rate=rate,
        replicas=replicas,
        tp=tp,
        gpus=replicas * tp,
        scheduler=scheduler,
        engine=engine,
        seed=seed,
        **SERVE,
    )
    trace = _strict_json(r.texts["timeline.json"])
    check_trace_format(trace)
    events = x_events_by_replica(trace)
    busy = busy_by_replica(r)
    for rep in range(replicas):
        xs = events.get(rep, [])
        starts = [_ns(e["ts"]) for e in xs]
        ends = [_ns(e["ts"]) + _ns(e["dur"]) for e in xs]
        assert starts == sorted(starts)
        assert all(end <= start for end, start in zip(ends, starts[1:], strict=False)), "overlap"
        total = sum(e["dur"] for e in xs) / 1e6
        assert total == pytest.approx(busy[rep], rel=1e-9, abs=len(xs) * 1e-9)
    gpus_busy = sum(e["dur"] for xs in events.values() for e in xs) / 1e6 * tp
    assert gpus_busy == pytest.approx(r.summary["gpu_busy_s"], rel=1e-9)
    # the counters end where the run ends: nothing running, waiting or held in the KV cache
    last: dict[tuple[int, str], dict] = {}
    for e in trace["traceEvents"]:
        if e["ph"] == "C":
            key = (e["pid"], e["name"])
            if key not in last or e["ts"] >= last[key]["ts"]:
                last[key] = e
    assert last and all(v == 0 for e in last.values() for v in e["args"].values())
    # the pieces' FLOPs and durations give the summary's MFU
    peak = peak_flops(r)
    flops = sum(e["args"]["flops"] for xs in events.values() for e in xs)
    assert flops / (gpus_busy * peak) == pytest.approx(r.summary["mfu_mean"], rel=1e-6)


def peak_flops(result) -> float:
    from kavier.engine.system import plan_replicas

    return plan_replicas(result.scenario)[0].perf.flops


def test_one_request_flops_are_the_perf_models():
    prompt = 1000
    one = {"num_input_tokens": [prompt], "num_output_tokens": [3]}
    r = kavier.simulate(timeline=True, requests=one, **SERVE)
    trace = r.timeline
    xs = x_events_by_replica(trace)[0]
    assert [e["name"] for e in xs] == ["prefill", "decode"]
    prefill, decode = (e["args"] for e in xs)
    from kavier.engine.system import plan_replicas

    perf = plan_replicas(r.scenario)[0].perf
    m = perf.model
    attn_per_pair = 4 * m.num_layers * m.num_attention_heads * m.head_dim
    # prefill: 2 N_active P dense FLOPs + attention over P (P + 1) / 2 query-key pairs
    expected = 2 * m.num_active_params * prompt + attn_per_pair * prompt * (prompt + 1) / 2
    assert prefill["flops"] == pytest.approx(expected, rel=1e-12)
    assert prefill["flops"] == pytest.approx(perf.iteration(prompt, prompt * (prompt + 1) / 2, 0, 0, 0).flops)
    assert prefill["iterations"] == 1 and prefill["prefill_tokens_per_iteration"] == prompt
    # two decode steps of one sequence (contexts P + 1 and P + 2), one closed-form piece
    assert decode["iterations"] == 2 and decode["decode_seqs_per_iteration"] == 1
    steps = [2 * m.num_active_params + attn_per_pair * (prompt + k) for k in (1, 2)]
    assert decode["flops"] == pytest.approx(sum(steps), rel=1e-12)
    # compute-bound prefill, memory-bound decode: the exposed part is on the other side
    cost = perf.iteration(prompt, prompt * (prompt + 1) / 2, 0, 0, 0)
    # (with the profile's p-norm join, the memory time not hidden under compute is the join's
    # seconds beyond compute: positive even for a compute-bound prefill)
    exposed = cost.time_s - cost.comm_s - cost.host_s - cost.compute_s
    assert perf.p.roofline_norm > 0 and exposed > 0
    assert prefill["bound"] == "compute" and prefill["memory_us"] == pytest.approx(exposed * 1e6, abs=1e-3)
    assert decode["bound"] == "memory" and decode["memory_us"] > 0
    assert prefill["compute_us"] == pytest.approx(cost.compute_s * 1e6, abs=1e-3)
    assert prefill["host_us"] == pytest.approx(cost.host_s * 1e6, abs=1e-3)
    # one process per replica, named with its GPU and tp
    names = [e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"]
    assert names == ["replica 0: H100-SXM x tp 1"]


def test_tp_splits_allreduce_time_and_names_the_process():
    r = kavier.simulate(
        timeline=True,
        requests={"num_input_tokens": [2000, 500], "num_output_tokens": [20, 40]},
        llm="Llama-3.1-70B",
        gpu="H100-SXM",
        tp=4,
        gpus=4,
        opendc=False,
    )
    trace = r.timeline
    check_trace_format(trace)
    names = [e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"]
    assert names == ["replica 0: H100-SXM x tp 4"]
    assert all(e["args"]["allreduce_us"] > 0 for e in trace["traceEvents"] if e["ph"] == "X")


def test_option_off_writes_no_timeline_and_on_writes_one(tmp_path):
    load = {"workload": "poisson", "num_requests": 20, "rate": 4.0, **SERVE}
    off = kavier.build_scenario(overrides={**load, "output_folder": str(tmp_path / "off")})
    folder, _ = kavier.run_to_folder(off)
    assert not (folder / "timeline.json").exists()
    assert kavier.simulate(**load).texts == {}
    on = kavier.build_scenario(overrides={**load, "timeline": True, "output_folder": str(tmp_path / "on")})
    folder, summary = kavier.run_to_folder(on)
    trace = _strict_json((folder / "timeline.json").read_text(encoding="utf-8"))
    check_trace_format(trace)
    assert sum(e["ph"] == "X" for e in trace["traceEvents"]) > 0
    # the folder's other files do not depend on the option
    for name in ("requests.parquet", "timeseries.parquet"):
        assert (folder / name).read_bytes() == (tmp_path / "off" / name).read_bytes()


def test_thesis_preset_rejects_the_timeline_in_one_line(tmp_path):
    with pytest.raises(ScenarioError, match="--preset serving") as err:
        kavier.simulate(preset="thesis", timeline=True, num_requests=5)
    assert "\n" not in str(err.value)
    done = kavier_cli("run", "--preset", "thesis", "--timeline", "-o", tmp_path / "t")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--timeline" in lines[0]
    assert not (tmp_path / "t").exists()


def test_pieces_without_detail_are_drawn_as_busy_events(a10):
    from kavier.events import Activity, ReplicaInfo, RunInfo
    from kavier.io.sinks import MemorySink
    from kavier.observers.timeline import TimelineObserver
    from kavier.perf.utilization import BatchShare

    sink = MemorySink()
    obs = TimelineObserver(kavier.build_scenario(overrides={"timeline": True}), sink)
    obs.on_start(RunInfo((ReplicaInfo(a10, 1, 1e9),), BatchShare(0.95)))
    obs.on_activity(
        Activity(
            replica=np.array([0, 0]),
            t0=np.array([0.0, 2.0]),
            t1=np.array([1.0, 3.5]),
            utilization=np.array([0.5, 0.95]),
            compute_fraction=np.zeros(2),
            memory_fraction=np.zeros(2),
            kv_bytes=np.array([10.0, 20.0]),
            kv_bytes_per_s=None,
        )
    )
    obs.on_end(3.5)
    trace = _strict_json(sink.texts()["timeline.json"])
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert [(e["name"], e["ts"], e["dur"]) for e in xs] == [("busy", 0.0, 1e6), ("busy", 2e6, 1.5e6)]
    kv = [(e["ts"], e["args"]["bytes_used"]) for e in trace["traceEvents"] if e["name"] == "KV cache"]
    # at each start, 0 while idle between the pieces and after the last
    assert sorted(kv) == [(0.0, 10), (1e6, 0), (2e6, 20), (3.5e6, 0)]
