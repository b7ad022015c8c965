"""OpenDC fragments: the streamlined builder gives the same bits as the plain formula."""

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from kavier.io.opendc import FRAGMENT_SCHEMA, duration_ms, fragment_tables
from kavier.perf.utilization import UtilizationProfile


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
