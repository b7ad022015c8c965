"""``kavier.io.opendc``: OpenDC tasks and fragments (the streamlined builder gives the same bits
as the plain formula; a run's tables add up)."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kavier
from kavier.io.opendc import FRAGMENT_SCHEMA, duration_ms, fragment_tables
from kavier.perf.utilization import UtilizationProfile
from tests.runs import util_integral_expected


def _reference(rec, export_rate_s, profile, cap):
    """The first fragment builder: per-fragment copies of every request quantity."""
    frag_ms = max(1, int(round(export_rate_s * 1000.0)))
    busy = rec["prefill_s"] + rec["decode_s"]
    total_ms = duration_ms(busy)
    c = np.maximum(total_ms // frag_ms, 1)
    rows = int(c.sum())
    owner = np.repeat(np.arange(c.size, dtype=np.int32), c)
    j = np.arange(rows, dtype=np.int64) - (np.cumsum(c) - c)[owner]
    x0 = j * frag_ms
    last_end = np.cumsum(c) - 1
    dur_ms = np.full(rows, frag_ms, dtype=np.int64)
    dur_ms[last_end] = total_ms - x0[last_end]
    warm, cool = profile.knots(busy)
    d_r, w_r, c_r = busy[owner], warm[owner], cool[owner]
    x0_s = x0 / 1000.0
    x1_s = x0_s + dur_ms / 1000.0
    usage = profile.integral(x1_s, d_r, w_r, c_r) - profile.integral(x0_s, d_r, w_r, c_r)
    usage *= cap * 1000.0
    usage /= dur_ms
    np.round(usage, 3, out=usage)
    usage[~(rec["replica"] >= 0)[owner]] = 0.0
    ids = rec["request_id"].astype(np.int32)[owner]
    return pa.table(
        {"id": ids, "duration": dur_ms, "cpu_usage": np.zeros(rows), "gpu_usage": usage},
        schema=FRAGMENT_SCHEMA,
    )


durations = st.one_of(
    st.floats(0.0, 30.0),
    st.sampled_from([0.0, 0.0005, 0.2, 0.4, 1.0, 1.0005, 2.9995]),
    st.floats(1e9, 1e13),  # beyond what half a millisecond of slack covers: the plain formula
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(durations, st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=25),
    st.sampled_from([0.001, 0.01, 0.1, 0.37, 1.0, 2.5]),
)
def test_fragments_are_bit_identical_to_the_plain_formula(rows, rate):
    busy = np.array([d for d, _, _ in rows])
    if busy.max() * 1000 / (rate * 1000) > 200_000:  # keep the example small
        busy = np.minimum(busy, 200.0 * rate)
    share = np.array([s for _, s, _ in rows])
    rec = {
        "request_id": np.arange(len(rows), dtype=np.int64),
        "prefill_s": busy * share,
        "decode_s": busy - busy * share,
        "replica": np.array([0 if on else -1 for *_, on in rows], dtype=np.int32),
    }
    profile = UtilizationProfile()
    got = pa.concat_tables(list(fragment_tables(rec, rate, profile, 1710.0)))
    want = _reference(rec, rate, profile, 1710.0)
    assert got.schema == want.schema
    for name in want.column_names:
        assert got.column(name).to_numpy().tobytes() == want.column(name).to_numpy().tobytes(), name


def test_usage_falls_back_to_the_plain_formula_when_a_fragment_passes_its_request():
    from kavier.io.opendc import _usage

    profile = UtilizationProfile()
    dur = np.array([1.0])
    warm, cool = profile.knots(dur)
    x0 = np.array([0.0, 0.6])
    x1 = np.array([1.2, 1.5])  # a non-last fragment ending after the request (made up)
    owner = np.zeros(2, dtype=np.int32)
    got = _usage(profile, x0, x1, dur, warm, cool, owner, np.array([2]), np.array([1]))
    d, w, c = dur[owner], warm[owner], cool[owner]
    want = profile.integral(x1, d, w, c) - profile.integral(x0, d, w, c)
    assert got.tobytes() == want.tobytes()


def test_huge_durations_match_too():
    busy = np.array([3.0e12, 1.5])
    rec = {
        "request_id": np.arange(2, dtype=np.int64),
        "prefill_s": busy * 0.25,
        "decode_s": busy * 0.75,
        "replica": np.zeros(2, dtype=np.int32),
    }
    profile = UtilizationProfile()
    got = pa.concat_tables(list(fragment_tables(rec, 1e9, profile, 1000.0)))
    want = _reference(rec, 1e9, profile, 1000.0)
    assert got.column("gpu_usage").to_numpy().tobytes() == want.column("gpu_usage").to_numpy().tobytes()


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
    assert work == pytest.approx(util_integral_expected(reqs), rel=1e-3)
