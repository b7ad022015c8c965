"""End-to-end properties of a run: the output contract, units, conservation, determinism."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import kavier
from kavier.events import REQUEST_COLUMNS
from kavier.observers.timeseries import COLUMNS as TIMESERIES_COLUMNS

T_T = 2 * 8e9 / (600e9 * 0.6)  # thesis time per output token, Llama-3-8B on A10


def thesis_simulate(**kw):
    """These tests pin the thesis preset's exact formulas."""
    return kavier.simulate(preset="thesis", **kw)


def _requests(n=40, seed=1, gap=5.0):
    rng = np.random.default_rng(seed)
    return {
        "num_input_tokens": rng.integers(1, 3000, n),
        "num_output_tokens": rng.integers(0, 300, n),
        "arrival_s": np.cumsum(rng.exponential(gap, n)),
    }


def test_contract_columns_and_per_request_identities():
    r = thesis_simulate(requests=_requests(), prefix_len=0)
    t = r.requests
    assert tuple(t.column_names) == REQUEST_COLUMNS
    assert tuple(r.timeseries.column_names) == TIMESERIES_COLUMNS
    c = {k: t.column(k).to_numpy(zero_copy_only=False) for k in t.column_names}
    assert sorted(c["request_id"]) == list(range(40))  # every request exactly once
    assert np.allclose(c["queue_s"], c["start_s"] - c["arrival_s"])
    assert np.allclose(c["e2e_s"], c["finish_s"] - c["arrival_s"])
    assert np.allclose(c["ttft_s"], c["first_token_s"] - c["arrival_s"])
    assert np.allclose(c["finish_s"], c["start_s"] + c["prefill_s"] + c["decode_s"])
    n_in, n_out = c["num_input_tokens"], c["num_output_tokens"]
    assert np.allclose(c["prefill_s"], n_in * 2 * 8e9 / (125e12 * 0.3) + 0.025)
    assert np.allclose(c["decode_s"], n_out * T_T)
    many = n_out >= 2
    assert np.allclose(c["tpot_s"][many], T_T)
    assert np.all(np.isnan(c["tpot_s"][~many]))
    # first token one decode step after prefill
    one = n_out >= 1
    assert np.allclose(c["first_token_s"][one], (c["start_s"] + c["prefill_s"] + T_T)[one])


def test_queueing_appears_when_arrivals_outpace_service():
    fast = thesis_simulate(requests=_requests(gap=0.5), prefix_len=0).summary
    spaced = _requests()
    spaced["arrival_s"] = np.arange(40) * 100.0  # longer than any request's service
    slow = thesis_simulate(requests=spaced, prefix_len=0).summary
    assert fast["queue_mean_s"] > 10.0
    assert slow["queue_mean_s"] == 0.0


def _util_integral_expected(t):
    prefill = t.column("prefill_s").to_numpy()
    decode = t.column("decode_s").to_numpy()
    d = prefill + decode
    warm = np.minimum(0.2, d)
    cool = np.maximum(d - 0.2, warm)
    return float(np.sum(0.5 * d + 0.45 * (cool - warm)))


@pytest.mark.parametrize("rate", [0.01, 0.37, 1.0, 60.0])
def test_timeseries_integrals_do_not_depend_on_export_rate(rate):
    r = thesis_simulate(requests=_requests(), prefix_len=0, export_rate=rate)
    ts = r.timeseries
    width = ts.column("interval_s").to_numpy()

    def integral(name):
        return float(np.sum(ts.column(name).to_numpy() * width))

    assert integral("gpu_utilization") == pytest.approx(_util_integral_expected(r.requests), rel=1e-9)
    assert integral("running") == pytest.approx(r.summary["gpu_busy_s"], rel=1e-9)
    queued = float(np.sum(r.requests.column("queue_s")))
    assert integral("waiting") == pytest.approx(queued, rel=1e-9, abs=1e-9)
    # intervals tile the run exactly: [0, simulated_time_s]
    assert float(np.sum(width)) == pytest.approx(r.summary["simulated_time_s"], rel=1e-12)
    assert np.all(width[:-1] == rate)


def test_kv_bytes_follow_tokens_in_context():
    req = {"num_input_tokens": [1000], "num_output_tokens": [100], "arrival_s": [0.0]}
    r = thesis_simulate(requests=req, prefix_len=0, export_rate=0.001)
    kv = r.timeseries.column("kv_used_bytes").to_numpy()
    per_token = 128 * 1024
    assert kv.max() == pytest.approx(1100 * per_token, rel=1e-3)
    prefill = r.requests.column("prefill_s")[0].as_py()
    decode = r.requests.column("decode_s")[0].as_py()
    # linear growth 0 -> 1000 over prefill, 1000 -> 1100 over decode
    expected = per_token * (1000 * prefill / 2 + (1000 + 50) * decode)
    width = r.timeseries.column("interval_s").to_numpy()
    assert float(np.sum(kv * width)) == pytest.approx(expected, rel=1e-9)
    off = thesis_simulate(requests=req, prefix_len=0, kv_cache=False)
    assert pc.max(off.timeseries.column("kv_used_bytes")).as_py() == 0.0
    assert off.requests.column("decode_s")[0].as_py() == pytest.approx(100 * 101 / 2 * T_T)


def test_chunking_does_not_change_results():
    a = thesis_simulate(requests=_requests(200), flush_size=7, prefix_len=0)
    b = thesis_simulate(requests=_requests(200), flush_size=1000, prefix_len=0)
    assert a.requests.equals(b.requests)
    assert a.timeseries.equals(b.timeseries)


def test_multi_gpu_balances_and_keeps_one_request_per_gpu():
    r = thesis_simulate(requests=_requests(300, gap=0.2), gpus=3, prefix_len=0)
    replica = r.requests.column("replica").to_numpy()
    assert set(replica) == {0, 1, 2}
    running = r.timeseries.column("running").to_numpy()
    assert running.max() <= 1.0 + 1e-9


def test_opendc_tables(tmp_path):
    scenario = kavier.build_scenario(
        overrides={
            "preset": "thesis",
            "num_sessions": 10,
            "export_rate": 0.25,
            "output_folder": str(tmp_path / "o"),
        }
    )
    folder, summary = kavier.run_to_folder(scenario)
    tasks = pq.read_table(folder / "opendc" / "tasks.parquet")
    frags = pq.read_table(folder / "opendc" / "fragments.parquet")
    assert str(tasks.schema.field("submission_time").type) == "int64"
    assert str(tasks.schema.field("id").type) == "int32"
    assert str(frags.schema.field("gpu_usage").type) == "double"
    reqs = pq.read_table(folder / "requests.parquet")
    busy_ms = np.rint((reqs.column("prefill_s").to_numpy() + reqs.column("decode_s").to_numpy()) * 1000)
    assert np.array_equal(tasks.column("duration").to_numpy(), np.maximum(busy_ms, 1))
    start_ms = 1640995200000  # 2022-01-01T00:00:00Z
    assert np.array_equal(
        tasks.column("submission_time").to_numpy(),
        start_ms + np.rint(reqs.column("arrival_s").to_numpy() * 1000).astype(np.int64),
    )
    # fragments sum to their task's duration, and none is zero
    ids = frags.column("id").to_numpy()
    dur = frags.column("duration").to_numpy()
    assert dur.min() >= 1
    assert np.array_equal(
        np.bincount(ids, weights=dur, minlength=tasks.num_rows).astype(np.int64),
        tasks.column("duration").to_numpy(),
    )
    # GPU work in fragments equals the utilisation integral (capacity x seconds), up to ms rounding
    capacity = tasks.column("gpu_capacity")[0].as_py()
    work = float(np.sum(frags.column("gpu_usage").to_numpy() * dur / 1000.0)) / capacity
    assert work == pytest.approx(_util_integral_expected(reqs), rel=1e-3)


def test_same_scenario_same_bytes(tmp_path):
    outs = []
    for name in ("a", "b"):
        s = kavier.build_scenario(
            overrides={"preset": "thesis", "num_sessions": 15, "output_folder": str(tmp_path / name)}
        )
        folder, _ = kavier.run_to_folder(s)
        outs.append(folder)
    files = [
        "requests.parquet",
        "timeseries.parquet",
        "opendc/tasks.parquet",
        "opendc/fragments.parquet",
    ]
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    sa = json.loads((outs[0] / "summary.json").read_text())
    sb = json.loads((outs[1] / "summary.json").read_text())
    sa.pop("wall_time_s"), sb.pop("wall_time_s")
    assert sa == sb
    scen_a = json.loads((outs[0] / "scenario.json").read_text())
    scen_b = json.loads((outs[1] / "scenario.json").read_text())
    scen_a.pop("output_folder"), scen_b.pop("output_folder")
    assert scen_a == scen_b


def test_scenario_json_reruns_the_run(tmp_path):
    s = kavier.build_scenario(
        overrides={"preset": "thesis", "num_sessions": 8, "output_folder": str(tmp_path / "a")}
    )
    folder, first = kavier.run_to_folder(s)
    again = kavier.build_scenario(folder / "scenario.json", {"output_folder": str(tmp_path / "b")})
    _, second = kavier.run_to_folder(again)
    first.pop("wall_time_s"), second.pop("wall_time_s")
    assert first == second


def test_prefix_cache_summary_and_cached_tokens():
    req = {
        "num_input_tokens": [2000, 2500, 3000, 500],
        "num_output_tokens": [10, 10, 10, 10],
        "arrival_s": [0.0, 100.0, 200.0, 300.0],
        "session_id": [1, 1, 1, 1],
    }
    r = thesis_simulate(requests=req, prefix_len=1024, prefix_cache_size=4)
    assert r.summary["prefix_cache_hits"] == 2
    assert r.summary["prefix_cache_hit_ratio"] == pytest.approx(2 / 4)
    assert r.requests.column("cached_tokens").to_pylist() == [0, 2500, 3000, 0]
    assert r.requests.column("prefill_s").to_pylist()[1:3] == [0.0, 0.0]


def test_quiet_run_imports_no_rich_and_skips_the_teardown(tmp_path):
    """`kavier run -q` never imports rich and leaves through os._exit (no atexit handlers run),
    yet exits 0 with its folder complete."""
    src = Path(__file__).resolve().parents[1] / "src"
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('teardown ran'))\n"
        "sys.argv = ['kavier', 'run', '--preset', 'thesis', '--num-sessions', '3', '-q', '-o', sys.argv[1]]\n"
        "from kavier.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-X", "importtime", "-c", code, str(tmp_path / "o")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "teardown ran" not in res.stdout
    assert " rich" not in res.stderr  # -X importtime lists every module imported
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["num_requests"] > 0


def test_folder_sink_writes_each_file_in_order_on_its_own_thread(tmp_path):
    import pyarrow as pa

    from kavier.io.sinks import FolderSink

    sink = FolderSink(tmp_path / "run")
    names = ("requests", "timeseries", "opendc/tasks", "opendc/fragments", "my_new_output")
    parts = {name: [pa.table({"x": np.arange(i * 5, i * 5 + 5)}) for i in range(4)] for name in names}
    for i in range(4):
        for name in names:
            if name == "opendc/fragments":  # a deferred producer of one table
                sink.write_from(name, lambda t=parts[name][i]: iter([t]))
            else:
                sink.write(name, parts[name][i])
    folder = sink.commit({"name": "t"}, {"ok": True})
    for name in names:
        rel = f"{name}.parquet"
        got = pq.read_table(folder / rel)
        assert got.column("x").to_pylist() == list(range(20)), name
        assert pq.ParquetFile(folder / rel).metadata.num_row_groups == 4  # one group per table


def test_folder_sink_reports_a_writer_error_and_leaves_no_folder(tmp_path):
    import pyarrow as pa

    from kavier.io.sinks import FolderSink

    sink = FolderSink(tmp_path / "run")
    sink.write("requests", pa.table({"x": [1, 2]}))
    sink.write("requests", pa.table({"y": ["a"]}))  # another schema: the writer thread fails
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error, re-raised by close()
        sink.close()
    sink.abort()
    assert not (tmp_path / "run").exists()
    assert not any(tmp_path.iterdir())
