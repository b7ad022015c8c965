"""``kavier.observers.binning``: exact interval means, conservation of integrals, independence of
the export rate."""

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kavier.observers.binning import BinLocator, TimeseriesBuilder, bin_integrals


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


def _laid_out(raw):
    """Segments drawn as (gap, length, v0, slope): back to back with those gaps, as arrays
    ``t0, t1, v0, slope, lengths``."""
    gaps = np.array([g for g, *_ in raw])
    lengths = np.array([ln for _, ln, *_ in raw]) + 1e-3
    t0 = np.cumsum(gaps + np.concatenate(([0.0], lengths[:-1])))
    v0 = np.array([v for *_, v, _ in raw])
    slope = np.array([s for *_, s in raw])
    return t0, t0 + lengths, v0, slope, lengths


@settings(max_examples=60, deadline=None)
@given(segments, st.sampled_from([0.01, 0.1, 0.37, 1.0, 10.0]))
def test_total_integral_is_conserved_for_any_export_rate(raw, dt):
    t0, t1, v0, slope, lengths = _laid_out(raw)
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


def _reference_means(k0, nbins, dt, t0, t1, v0, slope):
    """The first BinLocator, kept as the reference: searchsorted, bincount and a per-bin scan."""
    edges = (k0 + np.arange(nbins + 1, dtype=np.float64)) * dt
    keep = (t1 > edges[0]) & (t0 < edges[-1])
    t0, t1, v0 = t0[keep], t1[keep], v0[keep]
    slope = None if slope is None else slope[keep]
    if t0.size == 0:
        return np.zeros(nbins)
    first = np.clip(np.searchsorted(edges, t0, side="right") - 1, 0, nbins - 1)
    last = np.clip(np.searchsorted(edges, t1, side="left") - 1, 0, nbins - 1)
    first_a, first_z = np.maximum(t0, edges[first]), np.minimum(t1, edges[first + 1])
    is_split = last > first
    split = np.flatnonzero(is_split)
    last_a = np.maximum(t0[split], edges[last[split]])
    last_z = np.minimum(t1[split], edges[last[split] + 1])
    first_pos = np.arange(t0.size) + np.cumsum(is_split) - is_split
    last_pos = first_pos[split] + 1
    piece_bins = np.empty(t0.size + split.size, dtype=np.int64)
    piece_bins[first_pos] = first
    piece_bins[last_pos] = last[split]
    starts = np.searchsorted(edges, t0, side="left")
    seg = np.cumsum(np.bincount(starts, minlength=nbins + 2)[: nbins + 1]) - 1
    s0 = np.maximum(seg[:-1], 0)
    inside = (seg[:-1] >= 0) & (seg[:-1] == seg[1:]) & (edges[1:] <= t1[s0]) & (edges[:-1] >= t0[s0])
    inside = np.flatnonzero(inside)
    inside_seg = s0[inside]
    offset = 0.5 * (edges[inside] + edges[inside + 1]) - t0[inside_seg]

    def piece(a, z, idx):
        v = v0 if idx is None else v0[idx]
        if slope is None:
            return (z - a) * v
        t = t0 if idx is None else t0[idx]
        sl = slope if idx is None else slope[idx]
        return (z - a) * (v + sl * (0.5 * (a + z) - t))

    weights = np.empty(piece_bins.size)
    weights[first_pos] = piece(first_a, first_z, None)
    if split.size:
        weights[last_pos] = piece(last_a, last_z, split)
    mean = np.bincount(piece_bins, weights=weights, minlength=nbins) / dt
    exact = v0[inside_seg]
    if slope is not None:
        exact = exact + slope[inside_seg] * offset
    mean[inside] = exact
    return mean


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(0, 60), min_size=2, max_size=40),
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=40),
    st.sampled_from([0.01, 0.1, 0.37, 1.0, 3.0]),
    st.integers(0, 12),
    st.integers(1, 50),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_bin_locator_is_bit_identical_to_the_reference(
    ticks, jitter, dt, k0, nbins, with_slope, drop_empty, seed
):
    # Segment bounds on and off the bin edges (k * dt exactly), zero-length segments included.
    points = np.sort(np.concatenate([np.array(ticks) * dt, np.array(jitter) * 60 * dt]))
    t0, t1 = points[:-1], points[1:]
    if drop_empty:
        t0, t1 = t0[t1 > t0], t1[t1 > t0]
    rng = np.random.default_rng(seed)
    v0 = rng.uniform(-1, 1, t0.size)
    slope = rng.uniform(-1, 1, t0.size) if with_slope else None
    got = BinLocator(k0, nbins, dt, t0, t1).means(v0, slope)
    want = _reference_means(k0, nbins, dt, t0, t1, v0, slope)
    assert got.tobytes() == want.tobytes()


@settings(max_examples=60, deadline=None)
@given(segments, st.sampled_from([0.01, 0.1, 1.0]), st.integers(1, 3), st.integers(1, 40), st.integers(1, 4))
def test_pieces_carry_the_same_rows_and_totals_as_whole_blocks(raw, dt, reps, piece_rows, per_block):
    from kavier.energy.accounting import ConstantSeries, EnergyAccountant
    from kavier.observers import binning as timeseries

    saved = timeseries.MAX_ROWS_PER_BLOCK
    timeseries.MAX_ROWS_PER_BLOCK = piece_rows * reps * per_block
    try:
        _check_pieces(raw, dt, reps, piece_rows, ConstantSeries, EnergyAccountant)
    finally:
        timeseries.MAX_ROWS_PER_BLOCK = saved


def _check_pieces(raw, dt, reps, piece_rows, ConstantSeries, EnergyAccountant):
    from kavier.observers import binning as timeseries

    t0, t1, v0, slope, _ = _laid_out(raw)
    replica = np.arange(t0.size) % reps
    tables, totals, counts = {}, {}, {}
    for pieces in (None, piece_rows * reps):
        b = TimeseriesBuilder(reps, dt, ["q", "power_excess_w"], ["running"], {}, piece_rows=pieces)
        b.add_segments(replica, t0, t1, {"q": (v0, slope), "power_excess_w": (v0 * 100, None)})
        b.add_steps(replica, t0, {"running": np.ones(t0.size)})
        out = list(b.emit_until(float(t1[t1.size // 2])))
        out += list(b.finish(float(t1[-1])))
        assert all(t.num_rows <= (pieces or timeseries.MAX_ROWS_PER_BLOCK) for t in out)
        acc = EnergyAccountant(reps, 50.0, 0.0, ConstantSeries(480.0), ConstantSeries(1.3))
        tables[pieces] = pa.concat_tables([acc.augment(t) for t in out])
        totals[pieces] = (acc.energy_it_j, acc.energy_facility_j, acc.co2_g, acc.peak_power_w, acc.duration_s)
        counts[pieces] = len(out)
    assert tables[None].equals(tables[piece_rows * reps])
    # The totals are sums of the tables' sums: equal up to the order of the additions.
    assert totals[None] == pytest.approx(totals[piece_rows * reps], rel=1e-12, abs=1e-9)
    energy = tables[None].column("energy_j").to_numpy()
    assert totals[None][0] == pytest.approx(math.fsum(energy), rel=1e-12, abs=1e-9)
    assert counts[piece_rows * reps] >= counts[None]


@settings(max_examples=80, deadline=None)
@given(
    segments,
    st.sampled_from([0.01, 0.1, 0.37, 1.0]),
    st.integers(1, 3),
    st.integers(1, 40),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_whole_pieces_emitted_early_change_no_table_and_bound_what_is_held(
    raw, dt, reps, piece_rows, chunks, seed
):
    # The activity arrives in chunks; a regular frontier comes after some chunks, and (in the
    # second builder) whole pieces are also emitted early after every chunk, as an overloaded
    # cluster does while it drains its queue: the tables must be the very same.
    t0, t1, v0, slope, _ = _laid_out(raw)
    replica = np.arange(t0.size) % reps
    bounds = np.linspace(0, t0.size, chunks + 1).astype(int)
    regular = np.random.default_rng(seed).random(chunks) < 0.3
    out: dict[bool, list[pa.Table]] = {}
    for early in (False, True):
        b = TimeseriesBuilder(reps, dt, ["q"], ["running"], {}, piece_rows=piece_rows * reps)
        tables: list[pa.Table] = []
        for c in range(chunks):
            part = slice(bounds[c], bounds[c + 1])
            b.add_segments(replica[part], t0[part], t1[part], {"q": (v0[part], slope[part])})
            b.add_steps(replica[part], t0[part], {"running": np.ones(t0[part].size)})
            frontier = float(t0[bounds[c + 1]]) if bounds[c + 1] < t0.size else float(t1[-1])
            if regular[c]:
                tables += b.emit_until(frontier)
            if early:
                tables += b.emit_whole_pieces(frontier)
                # what is held starts less than one piece of intervals before the frontier
                k = int(np.floor(frontier / dt + 1e-9))
                assert b.bins_done > k - b.piece_bins()
                held_t1 = np.concatenate([p["t1"] for p in b._segments]) if b._segments else np.zeros(0)
                assert np.all(held_t1 > b.bins_done * dt)
        tables += b.finish(float(t1[-1]))
        out[early] = tables
    assert [t.num_rows for t in out[False]] == [t.num_rows for t in out[True]]
    assert all(a.equals(b) for a, b in zip(out[False], out[True], strict=True))
