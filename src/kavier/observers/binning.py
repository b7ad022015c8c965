"""Turn per-replica activity into the per-interval time series (interval means, exact integrals).

Replicas report *segments*: on ``[t0, t1)`` a quantity is ``v0 + slope * (t - t0)`` (constant
utilisation, linearly growing KV bytes), and *count steps*: at time ``t`` the number of running
or waiting requests changes by ``d``. Each exported value is the exact mean of its quantity over
the interval, computed from integrals, so sums over intervals equal the integral over the run
whatever the export rate. Intervals are emitted in time order as soon as no future event can
change them, in bounded blocks, so memory follows the block size, not the run length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from kavier.io.columns import arrow_table

MAX_ROWS_PER_BLOCK = 1 << 21
DEFER_THRESHOLD = 100_000


def edge_index(k0: int, dt: float, padded: np.ndarray, t: np.ndarray, side: str) -> np.ndarray:
    """``np.searchsorted(edges, t, side)`` for the uniform edges ``(k0 + j) * dt``, j = 0..nbins.

    ``padded`` is the edges with -inf before and +inf after. The quotient ``t / dt`` gives the
    index up to rounding; a comparison with the edges on either side checks it, and the few
    that fail are searched, so the result is exactly the search's.
    """
    n = padded.size - 2
    q = t / dt
    q -= k0
    if side == "left":  # number of edges < t
        np.ceil(q, out=q)
    else:  # number of edges <= t
        np.floor(q, out=q)
        q += 1.0
    np.clip(q, 0.0, float(n), out=q)
    c = q.astype(np.int64)
    below, above = padded[c], padded[1:][c]  # the edges just before and at index c
    if side == "left":
        bad = below >= t
        bad |= above < t
    else:
        bad = below > t
        bad |= above <= t
    if bad.any():
        wrong = np.flatnonzero(bad)
        c[wrong] = np.searchsorted(padded[1:-1], t[wrong], side=side)
    return c


def padded_edges(k0: int, nbins: int, dt: float) -> np.ndarray:
    """The block's bin edges ``(k0 + j) * dt``, j = 0..nbins, with -inf before and +inf after."""
    padded = np.arange(-1, nbins + 2, dtype=np.float64)
    padded += k0
    padded *= dt
    padded[0], padded[-1] = -np.inf, np.inf
    return padded


class BinLocator:
    """Where a set of sorted, non-overlapping segments falls among a block of bins.

    Built once per (segment set, block of bins) and shared by every quantity on the segments.
    A bin lying wholly inside one segment gets its mean in closed form (the value at its
    midpoint); any other bin sums the pieces of the segments that start or end in it. Both are
    local to the bin, so results do not depend on how the run was cut into chunks.

    Bin ``j`` is *inside* segment ``s`` when ``s`` is the last segment starting at or before the
    bin's left edge, no segment starts in ``(left, right]`` and ``s`` ends at or after its
    right edge. The bins inside one segment are a contiguous range, so the block is a sequence
    of runs (a gap of other bins, a segment's inside range, a gap, ...) and each quantity is one
    gather over the runs plus the few bins holding pieces.
    """

    def __init__(
        self,
        k0: int,
        nbins: int,
        dt: float,
        t0: np.ndarray,
        t1: np.ndarray,
        padded: np.ndarray | None = None,
    ) -> None:
        """``padded``: :func:`padded_edges` of the block, if the caller already has them."""
        self.nbins = nbins
        self.dt = dt
        if padded is None:
            padded = padded_edges(k0, nbins, dt)
        edges = padded[1:-1]
        self.edges = edges
        keep = (t1 > edges[0]) & (t0 < edges[-1])
        self.keep = None if keep.all() else keep
        if self.keep is not None:
            t0, t1 = t0[keep], t1[keep]
        m = t0.size
        self.empty = m == 0
        if self.empty:
            return
        self.t0 = t0
        # starts[s]: the first edge at or after t0[s]; ends[s]: the last edge at or before t1[s].
        starts = edge_index(k0, dt, padded, t0, "left")
        ends = edge_index(k0, dt, padded, t1, "right") - 1
        # The bins holding each segment's start and end, clipped to the block:
        # edges[first] <= t0 < edges[first + 1] and edges[last] < t1 <= edges[last + 1].
        first = starts - 1
        first[padded[1:][starts] == t0] += 1
        np.clip(first, 0, nbins - 1, out=first)
        last = ends.copy()
        last[padded[ends + 1] == t1] -= 1
        np.clip(last, 0, nbins - 1, out=last)
        self.first_a = np.maximum(t0, edges[first])
        self.first_z = np.minimum(t1, edges[1:][first])
        is_split = last > first
        self.split = np.flatnonzero(is_split)
        last_split = last[self.split]
        self.last_a = np.maximum(t0[self.split], edges[last_split])
        self.last_z = np.minimum(t1[self.split], edges[1:][last_split])
        # Pieces are summed in segment order (a segment's start piece, then its end piece), so
        # a bin's sum has the same terms in the same order however the run was cut. Pieces
        # come in bin order: number the distinct bins so that the sums are short arrays.
        split_before = np.cumsum(is_split) - is_split
        self.first_pos = np.arange(m) + split_before
        self.last_pos = self.first_pos[self.split] + 1
        piece_bins = np.empty(m + self.split.size, dtype=np.int64)
        piece_bins[self.first_pos] = first
        piece_bins[self.last_pos] = last[self.split]
        new_bin = np.empty(piece_bins.size, dtype=bool)
        new_bin[0] = True
        np.not_equal(piece_bins[1:], piece_bins[:-1], out=new_bin[1:])
        self.piece_group = np.cumsum(new_bin) - 1
        piece_bin_ids = piece_bins[new_bin]
        # Bins inside segment s: j in [starts[s], min(starts[s + 1] - 1, ends[s], nbins)).
        hi = np.empty(m, dtype=np.int64)
        hi[:-1] = starts[1:] - 1
        hi[-1] = nbins
        np.minimum(hi, ends, out=hi)
        np.minimum(hi, nbins, out=hi)
        count = hi - starts
        owners = np.flatnonzero(count > 0)
        lo = starts[owners]
        hi = lo + count[owners]
        # Runs: gap, inside range of owner 0, gap, owner 1, ..., gap (empty runs dropped).
        bounds = np.empty(2 * owners.size + 2, dtype=np.int64)
        bounds[0], bounds[-1] = 0, nbins
        bounds[1:-1:2] = lo
        bounds[2:-1:2] = hi
        lengths = np.diff(bounds)
        nonempty = np.flatnonzero(lengths > 0)
        self.num_runs = nonempty.size
        is_owner_run = (nonempty % 2) == 1
        self.owner_runs = np.flatnonzero(is_owner_run)  # positions among the non-empty runs
        self.owners = owners[nonempty[is_owner_run] // 2]
        if self.owners.size == 0:
            self.run_index = None  # no bin lies wholly inside a segment
        else:
            marks = np.zeros(nbins, dtype=np.int32)
            marks[bounds[nonempty[1:]]] = 1
            self.run_index = np.cumsum(marks, out=marks)
        # Bins with pieces that no segment covers wholly take the sums of their pieces.
        run_of_bin = np.searchsorted(bounds, piece_bin_ids, side="right") - 1
        outside = (run_of_bin % 2) == 0
        self.fix_bins = piece_bin_ids[outside]
        self.fix_groups = np.flatnonzero(outside)
        self.num_groups = piece_bin_ids.size
        self._offset: np.ndarray | None = None

    def _runs(self, values: np.ndarray) -> np.ndarray:
        """Each bin gets ``values`` of the segment it lies inside (0 in the gaps)."""
        per_run = np.zeros(self.num_runs)
        per_run[self.owner_runs] = values[self.owners]
        return per_run[self.run_index]

    def _mid_offset(self) -> np.ndarray:
        """Each bin's midpoint minus the start of the segment it lies inside."""
        if self._offset is None:
            e = self.edges
            mid = e[:-1] + e[1:]
            mid *= 0.5
            mid -= self._runs(self.t0)
            self._offset = mid
        return self._offset

    def means(self, v0: np.ndarray, slope: np.ndarray | None) -> np.ndarray:
        """Mean of ``v0 + slope (t - t0)`` over each bin (0 outside the segments)."""
        if self.empty:
            return np.zeros(self.nbins)
        if self.keep is not None:
            v0 = v0[self.keep]
            slope = None if slope is None else slope[self.keep]

        def piece(a: np.ndarray, z: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
            v = v0 if idx is None else v0[idx]
            if slope is None:
                return (z - a) * v
            t0 = self.t0 if idx is None else self.t0[idx]
            sl = slope if idx is None else slope[idx]
            return (z - a) * (v + sl * (0.5 * (a + z) - t0))

        weights = np.empty(self.piece_group.size)
        weights[self.first_pos] = piece(self.first_a, self.first_z, None)
        if self.split.size:
            weights[self.last_pos] = piece(self.last_a, self.last_z, self.split)
        sums = np.bincount(self.piece_group, weights=weights, minlength=self.num_groups)
        sums /= self.dt
        if self.run_index is None:
            mean = np.zeros(self.nbins)
        else:
            mean = self._runs(v0)
            if slope is not None:
                growth = self._runs(slope)
                growth *= self._mid_offset()
                mean += growth
        mean[self.fix_bins] = sums[self.fix_groups]
        return mean


def bin_integrals(
    k0: int,
    nbins: int,
    dt: float,
    t0: np.ndarray,
    t1: np.ndarray,
    v0: np.ndarray,
    slope: np.ndarray | None,
) -> np.ndarray:
    """Integral of a piecewise-linear function over bins ``[(k0+j) dt, (k0+j+1) dt)``.

    Segments must be sorted by ``t0`` and must not overlap; outside them the function is 0.
    Returns an array of ``nbins`` integrals (quantity x seconds).
    """
    return BinLocator(k0, nbins, dt, t0, t1).means(v0, slope) * dt


class TimeseriesBuilder:
    """Accumulates replica activity and yields interval tables in time order.

    ``segment_quantities`` name the piecewise-linear quantities (e.g. ``gpu_utilization``,
    ``kv_used_bytes``); ``count_quantities`` the step counts (``running``, ``waiting``).
    ``constants`` are per-replica columns written as they are (e.g. ``kv_capacity_bytes``).
    """

    def __init__(
        self,
        num_replicas: int,
        export_rate_s: float,
        segment_quantities: Sequence[str],
        count_quantities: Sequence[str],
        constants: dict[str, np.ndarray] | None = None,
        piece_rows: int | None = None,
    ) -> None:
        self.num_replicas = int(num_replicas)
        # Yield tables of about ``piece_rows`` rows (e.g. the writer's row groups), never more
        # than MAX_ROWS_PER_BLOCK: small tables keep the working set small and its memory reused.
        self.piece_rows = piece_rows
        self.dt = float(export_rate_s)
        self.segment_quantities = list(segment_quantities)
        self.count_quantities = list(count_quantities)
        self.constants = {k: np.asarray(v, dtype=np.float64) for k, v in (constants or {}).items()}
        self._segments: list[dict[str, np.ndarray]] = []
        self._steps: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        self._levels = np.zeros((len(self.count_quantities), self.num_replicas))
        self.bins_done = 0
        # What emit_until decides by: the bins done and the activity held as if no whole
        # pieces had been emitted early (emit_whole_pieces), so its tables stay the same.
        self._bins_until = 0
        self._held_early = 0

    def add_segments(
        self,
        replica: np.ndarray,
        t0: np.ndarray,
        t1: np.ndarray,
        values: dict[str, tuple[np.ndarray, np.ndarray | None]],
    ) -> None:
        """Add segments ``[t0, t1)`` on ``replica`` with each quantity's ``(v0, slope)``."""
        keep = t1 > t0
        part = {"replica": replica[keep], "t0": t0[keep], "t1": t1[keep]}
        for name in self.segment_quantities:
            v0, slope = values[name]
            part[name] = np.broadcast_to(v0, keep.shape)[keep].astype(np.float64)
            part[name + "/slope"] = None if slope is None else np.broadcast_to(slope, keep.shape)[keep]
        self._segments.append(part)

    def add_steps(self, replica: np.ndarray, t: np.ndarray, deltas: dict[str, np.ndarray]) -> None:
        """Add count changes at times ``t`` on ``replica`` (e.g. +1 running at start)."""
        self._steps.append((replica, t, deltas))

    # -- emission -------------------------------------------------------------------------

    def emit_until(self, t_s: float) -> Iterator[pa.Table]:
        """Yield every interval that ends at or before ``t_s`` and has not been yielded.

        Emission is deferred while it would yield few intervals compared with the activity
        held (an overloaded cluster's backlog), so sorting the held activity stays amortised.
        """
        k_end = int(np.floor(t_s / self.dt + 1e-9))
        held = self.held() + self._held_early
        new_rows = (k_end - self._bins_until) * self.num_replicas
        if held > DEFER_THRESHOLD and new_rows * 4 < held:
            return
        if k_end <= self._bins_until:
            return
        yield from self._emit(k_end)
        self._bins_until = self.bins_done
        self._held_early = 0

    def emit_whole_pieces(self, t_s: float) -> Iterator[pa.Table]:
        """Yield the whole pieces (tables of ``piece_rows`` rows) of the intervals that end at or
        before ``t_s``, and drop the activity they no longer need.

        They are the tables a later :meth:`emit_until` or :meth:`finish` would yield first, so
        the output is the same however often this is called; it bounds the activity held over
        a long stretch without emit_until (an overloaded cluster draining its queue).
        """
        k_end = int(np.floor(t_s / self.dt + 1e-9))
        piece = self.piece_bins()
        whole = (k_end - self.bins_done) // piece
        if whole <= 0:
            return
        before = self.held()
        yield from self._emit(self.bins_done + whole * piece)
        self._held_early += before - self.held()

    def held(self) -> int:
        """Segments and count steps held (not yet wholly emitted)."""
        return sum(p["t0"].size for p in self._segments) + sum(s[1].size for s in self._steps)

    def piece_bins(self) -> int:
        """Intervals per yielded table (each has this many x replicas rows)."""
        block = max(1, MAX_ROWS_PER_BLOCK // self.num_replicas)
        return min(block, max(1, self.piece_rows // self.num_replicas)) if self.piece_rows else block

    def finish(self, end_s: float) -> Iterator[pa.Table]:
        """Yield the remaining intervals up to the one holding ``end_s`` (at least one).

        The run ends at ``end_s``: the last interval is cut there (its ``interval_s`` is shorter
        and its means are over the part inside the run).
        """
        k_end = max(int(np.ceil(end_s / self.dt - 1e-9)), 1, self.bins_done)
        yield from self._emit(k_end, end_s)

    def _merged_segments(self) -> dict[str, np.ndarray | None]:
        parts = self._segments
        if not parts:
            return {}
        merged: dict[str, np.ndarray | None] = {}
        for key in parts[0]:
            arrays = [p[key] for p in parts]
            if any(a is None for a in arrays):
                merged[key] = None
            else:
                merged[key] = np.concatenate(arrays)
        rep, t0 = merged["replica"], merged["t0"]
        if rep.size < 2 or (
            bool(np.all(rep[1:] >= rep[:-1])) and bool(np.all((t0[1:] >= t0[:-1]) | (rep[1:] != rep[:-1])))
        ):
            return merged  # already in (replica, t0) order: the stable sort would not move anything
        order = np.lexsort((t0, rep))
        return {k: (None if v is None else v[order]) for k, v in merged.items()}

    def _count_segments(self, k_end: int) -> list[dict[str, np.ndarray]]:
        """Convert steps before the emission edge into constant segments, per replica."""
        edge_lo = self.bins_done * self.dt
        edge_hi = k_end * self.dt
        per_replica: list[dict[str, np.ndarray]] = []
        if self._steps:
            rep = np.concatenate([s[0] for s in self._steps])
            t = np.concatenate([s[1] for s in self._steps])
            deltas = {q: np.concatenate([s[2][q] for s in self._steps]) for q in self.count_quantities}
        else:
            rep = np.zeros(0, dtype=np.int64)
            t = np.zeros(0)
            deltas = {q: np.zeros(0) for q in self.count_quantities}
        now = t < edge_hi
        later = ~now
        self._steps = [(rep[later], t[later], {q: d[later] for q, d in deltas.items()})]
        rep, t = rep[now], t[now]
        deltas = {q: d[now] for q, d in deltas.items()}
        order = np.lexsort((t, rep))
        rep, t = rep[order], t[order]
        deltas = {q: d[order] for q, d in deltas.items()}
        bounds = np.searchsorted(rep, np.arange(self.num_replicas + 1))
        for r in range(self.num_replicas):
            a, b = bounds[r], bounds[r + 1]
            times = np.concatenate(([edge_lo], np.maximum(t[a:b], edge_lo), [edge_hi]))
            seg = {"t0": times[:-1], "t1": times[1:]}
            for qi, q in enumerate(self.count_quantities):
                level = self._levels[qi, r] + np.concatenate(([0.0], np.cumsum(deltas[q][a:b])))
                seg[q] = level
                self._levels[qi, r] = level[-1]
            per_replica.append(seg)
        return per_replica

    def _emit(self, k_end: int, end_s: float | None = None) -> Iterator[pa.Table]:
        """Yield the intervals in blocks of MAX_ROWS_PER_BLOCK rows, or in pieces of
        ``piece_rows`` rows of them."""
        if k_end <= self.bins_done:
            return
        segs = self._merged_segments()
        counts = self._count_segments(k_end)
        reps = self.num_replicas
        if segs:
            bounds = np.searchsorted(segs["replica"], np.arange(reps + 1))
        piece = self.piece_bins()
        quantities = self.segment_quantities + self.count_quantities
        for k0 in range(self.bins_done, k_end, piece):
            nb = min(piece, k_end - k0)
            lo, hi = k0 * self.dt, (k0 + nb) * self.dt
            padded = padded_edges(k0, nb, self.dt)  # shared by the locators; its body is time_s
            per_replica: list[dict[str, np.ndarray]] = []
            for r in range(reps):
                col: dict[str, np.ndarray] = {}
                if segs:
                    a, b = bounds[r], bounds[r + 1]
                    t0, t1 = segs["t0"][a:b], segs["t1"][a:b]
                    i0 = np.searchsorted(t1, lo, side="right")
                    i1 = np.searchsorted(t0, hi, side="left")
                    locator = BinLocator(k0, nb, self.dt, t0[i0:i1], t1[i0:i1], padded)
                    for q in self.segment_quantities:
                        slope = segs[q + "/slope"]
                        col[q] = locator.means(
                            segs[q][a:b][i0:i1], None if slope is None else slope[a:b][i0:i1]
                        )
                else:
                    for q in self.segment_quantities:
                        col[q] = np.zeros(nb)
                cs = counts[r]
                j0 = np.searchsorted(cs["t1"], lo, side="right")
                j1 = np.searchsorted(cs["t0"], hi, side="left")
                locator = BinLocator(k0, nb, self.dt, cs["t0"][j0:j1], cs["t1"][j0:j1], padded)
                for q in self.count_quantities:
                    col[q] = locator.means(cs[q][j0:j1], None)
                per_replica.append(col)
            if reps == 1:
                columns = per_replica[0]
            else:
                columns = {q: np.stack([c[q] for c in per_replica], axis=1) for q in quantities}
            del per_replica
            time_s = padded[1:-2]  # the left edges, (k0 + j) * dt
            interval = np.full(nb, self.dt)
            if end_s is not None and k0 + nb == k_end:
                last = end_s - time_s[-1]
                if 0.0 < last < self.dt:
                    interval[-1] = last
                    for q in quantities:
                        columns[q][-1, ...] *= self.dt / last
            if reps == 1:
                table = {
                    "time_s": time_s,
                    "replica": np.zeros(nb, dtype=np.int32),
                    "interval_s": interval,
                }
            else:
                table = {
                    "time_s": np.repeat(time_s, reps),
                    "replica": np.tile(np.arange(reps, dtype=np.int32), nb),
                    "interval_s": np.repeat(interval, reps),
                }
            for q in quantities:
                table[q] = columns[q].ravel()
            del columns
            for name, values in self.constants.items():
                table[name] = np.tile(np.broadcast_to(values, (reps,)), nb)
            yield arrow_table(table)
            del table
        self.bins_done = k_end
        if segs:
            edge = k_end * self.dt
            keep = segs["t1"] > edge
            self._segments = [{k: (None if v is None else v[keep]) for k, v in segs.items()}]
