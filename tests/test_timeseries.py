"""The interval integrator: exact means, conservation of integrals, independence of export rate."""

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from kavier.engine.timeseries import TimeseriesBuilder, bin_integrals


def test_bin_integrals_constant_segment_split_across_bins():
    # value 2 on [0.5, 2.5) -> bins of 1 s: 1, 2, 1
    out = bin_integrals(0, 3, 1.0, np.array([0.5]), np.array([2.5]), np.array([2.0]), None)
    assert np.allclose(out, [1.0, 2.0, 1.0])


def test_bin_integrals_linear_segment():
    # f(t) = t on [0, 2): integrals over [0,1) and [1,2) are 0.5 and 1.5
    out = bin_integrals(0, 2, 1.0, np.array([0.0]), np.array([2.0]), np.array([0.0]), np.array([1.0]))
    assert np.allclose(out, [0.5, 1.5])


def test_bin_integrals_offset_block_and_gaps():
    t0 = np.array([0.2, 3.0, 7.5])
    t1 = np.array([1.0, 4.0, 9.0])
    v = np.array([1.0, 3.0, 2.0])
    whole = bin_integrals(0, 10, 1.0, t0, t1, v, None)
    parts = np.concatenate([bin_integrals(k, 2, 1.0, t0, t1, v, None) for k in range(0, 10, 2)])
    assert np.allclose(whole, parts)
    assert np.isclose(whole.sum(), 0.8 * 1 + 1 * 3 + 1.5 * 2)


segments = st.lists(
    st.tuples(st.floats(0.001, 5.0), st.floats(0.0, 5.0), st.floats(0.0, 1.0), st.floats(-0.1, 0.1)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(segments, st.sampled_from([0.01, 0.1, 0.37, 1.0, 10.0]))
def test_total_integral_is_conserved_for_any_export_rate(raw, dt):
    gaps = np.array([g for g, *_ in raw])
    lengths = np.array([ln for _, ln, *_ in raw]) + 1e-3
    t0 = np.cumsum(gaps + np.concatenate(([0.0], lengths[:-1])))
    t1 = t0 + lengths
    v0 = np.array([v for *_, v, _ in raw])
    slope = np.array([s for *_, s in raw])
    exact = np.sum((v0 + 0.5 * slope * lengths) * lengths)
    builder = TimeseriesBuilder(1, dt, ["q"], [], {})
    builder.add_segments(np.zeros(t0.size, dtype=np.int64), t0, t1, {"q": (v0, slope)})
    table = pa.concat_tables(list(builder.finish(float(t1[-1]))))
    width = table.column("interval_s").to_numpy()
    assert np.isclose(np.sum(table.column("q").to_numpy() * width), exact, rtol=1e-9, atol=1e-9)
    assert np.isclose(width.sum(), t1[-1], rtol=1e-12)


def test_counts_are_interval_means_and_emission_is_incremental():
    b = TimeseriesBuilder(2, 1.0, [], ["running"], {"cap": np.array([5.0, 6.0])})
    # replica 0 runs one request on [0.5, 2.5); replica 1 on [1, 3)
    b.add_steps(
        np.array([0, 0, 1, 1]),
        np.array([0.5, 2.5, 1.0, 3.0]),
        {"running": np.array([1.0, -1.0, 1.0, -1.0])},
    )
    first = pa.concat_tables(list(b.emit_until(1.2)))  # bin [0,1) only
    rest = pa.concat_tables(list(b.finish(3.0)))
    table = pa.concat_tables([first, rest])
    assert table.num_rows == 6
    assert table.column("time_s").to_pylist() == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    assert table.column("replica").to_pylist() == [0, 1] * 3
    assert np.allclose(table.column("running").to_numpy(), [0.5, 0.0, 1.0, 1.0, 0.5, 1.0])
    assert table.column("cap").to_pylist() == [5.0, 6.0] * 3
