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

MAX_ROWS_PER_BLOCK = 1 << 21
DEFER_THRESHOLD = 100_000


class BinLocator:
    """Where a set of sorted, non-overlapping segments falls among a block of bins.

    Built once per (segment set, block of bins) and shared by every quantity on the segments.
    A bin lying wholly inside one segment gets its mean in closed form (the value at its
    midpoint); any other bin sums the pieces of the segments that start or end in it. Both are
    local to the bin, so results do not depend on how the run was cut into blocks or chunks.
    """

    def __init__(self, k0: int, nbins: int, dt: float, t0: np.ndarray, t1: np.ndarray) -> None:
        self.nbins = nbins
        self.dt = dt
        edges = (k0 + np.arange(nbins + 1, dtype=np.float64)) * dt
        keep = (t1 > edges[0]) & (t0 < edges[-1])
        self.keep = None if keep.all() else keep
        if self.keep is not None:
            t0, t1 = t0[keep], t1[keep]
        self.empty = t0.size == 0
        if self.empty:
            return
        self.t0 = t0
        # Bins holding each segment's start and end.
        first = np.clip(np.searchsorted(edges, t0, side="right") - 1, 0, nbins - 1)
        last = np.clip(np.searchsorted(edges, t1, side="left") - 1, 0, nbins - 1)
        self.first, self.last = first, last
        self.first_a = np.maximum(t0, edges[first])
        self.first_z = np.minimum(t1, edges[first + 1])
        is_split = last > first
        self.split = np.flatnonzero(is_split)
        self.last_a = np.maximum(t0[self.split], edges[last[self.split]])
        self.last_z = np.minimum(t1[self.split], edges[last[self.split] + 1])
        # Pieces are summed in segment order (a segment's start piece, then its end piece), so
        # a bin's sum has the same terms in the same order however the run was cut.
        split_before = np.cumsum(is_split) - is_split
        self.first_pos = np.arange(t0.size) + split_before
        self.last_pos = self.first_pos[self.split] + 1
        self.piece_bins = np.empty(t0.size + self.split.size, dtype=np.int64)
        self.piece_bins[self.first_pos] = first
        self.piece_bins[self.last_pos] = last[self.split]
        # Bins wholly inside a segment: strictly between its first and last bin, or its first
        # or last bin when the segment covers that bin entirely.
        starts = np.searchsorted(edges, t0, side="left")  # first edge at or after t0
        seg = np.cumsum(np.bincount(starts, minlength=nbins + 2)[: nbins + 1]) - 1
        s0 = np.maximum(seg[:-1], 0)
        inside = (seg[:-1] >= 0) & (seg[:-1] == seg[1:]) & (edges[1:] <= t1[s0])
        inside &= edges[:-1] >= t0[s0]
        self.inside = np.flatnonzero(inside)
        self.inside_seg = s0[self.inside]
        self.inside_offset = 0.5 * (edges[self.inside] + edges[self.inside + 1]) - t0[self.inside_seg]

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

        weights = np.empty(self.piece_bins.size)
        weights[self.first_pos] = piece(self.first_a, self.first_z, None)
        if self.split.size:
            weights[self.last_pos] = piece(self.last_a, self.last_z, self.split)
        mean = np.bincount(self.piece_bins, weights=weights, minlength=self.nbins)
        mean /= self.dt
        exact = v0[self.inside_seg]
        if slope is not None:
            exact = exact + slope[self.inside_seg] * self.inside_offset
        mean[self.inside] = exact
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
    ) -> None:
        self.num_replicas = int(num_replicas)
        self.dt = float(export_rate_s)
        self.segment_quantities = list(segment_quantities)
        self.count_quantities = list(count_quantities)
        self.constants = {k: np.asarray(v, dtype=np.float64) for k, v in (constants or {}).items()}
        self._segments: list[dict[str, np.ndarray]] = []
        self._steps: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        self._levels = np.zeros((len(self.count_quantities), self.num_replicas))
        self.bins_done = 0

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
        held = sum(p["t0"].size for p in self._segments) + sum(s[1].size for s in self._steps)
        new_rows = (k_end - self.bins_done) * self.num_replicas
        if held > DEFER_THRESHOLD and new_rows * 4 < held:
            return
        yield from self._emit(k_end)

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
        order = np.lexsort((merged["t0"], merged["replica"]))
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
        if k_end <= self.bins_done:
            return
        segs = self._merged_segments()
        counts = self._count_segments(k_end)
        reps = self.num_replicas
        if segs:
            bounds = np.searchsorted(segs["replica"], np.arange(reps + 1))
        block = max(1, MAX_ROWS_PER_BLOCK // reps)
        for k0 in range(self.bins_done, k_end, block):
            nb = min(block, k_end - k0)
            lo, hi = k0 * self.dt, (k0 + nb) * self.dt
            columns: dict[str, np.ndarray] = {}
            for q in self.segment_quantities + self.count_quantities:
                columns[q] = np.empty((nb, reps))
            for r in range(reps):
                if segs:
                    a, b = bounds[r], bounds[r + 1]
                    t0, t1 = segs["t0"][a:b], segs["t1"][a:b]
                    i0 = np.searchsorted(t1, lo, side="right")
                    i1 = np.searchsorted(t0, hi, side="left")
                    locator = BinLocator(k0, nb, self.dt, t0[i0:i1], t1[i0:i1])
                    for q in self.segment_quantities:
                        slope = segs[q + "/slope"]
                        columns[q][:, r] = locator.means(
                            segs[q][a:b][i0:i1], None if slope is None else slope[a:b][i0:i1]
                        )
                else:
                    for q in self.segment_quantities:
                        columns[q][:, r] = 0.0
                cs = counts[r]
                j0 = np.searchsorted(cs["t1"], lo, side="right")
                j1 = np.searchsorted(cs["t0"], hi, side="left")
                locator = BinLocator(k0, nb, self.dt, cs["t0"][j0:j1], cs["t1"][j0:j1])
                for q in self.count_quantities:
                    columns[q][:, r] = locator.means(cs[q][j0:j1], None)
            time_s = (k0 + np.arange(nb, dtype=np.float64)) * self.dt
            interval = np.full(nb, self.dt)
            if end_s is not None and k0 + nb == k_end:
                last = end_s - time_s[-1]
                if 0.0 < last < self.dt:
                    interval[-1] = last
                    for q in self.segment_quantities + self.count_quantities:
                        columns[q][-1, :] *= self.dt / last
            table = {
                "time_s": np.repeat(time_s, reps),
                "replica": np.tile(np.arange(reps, dtype=np.int32), nb),
                "interval_s": np.repeat(interval, reps),
            }
            for q in self.segment_quantities + self.count_quantities:
                table[q] = columns[q].ravel()
            for name, per_replica in self.constants.items():
                table[name] = np.tile(np.broadcast_to(per_replica, (reps,)), nb)
            yield pa.table(table)
        self.bins_done = k_end
        if segs:
            edge = k_end * self.dt
            keep = segs["t1"] > edge
            self._segments = [{k: (None if v is None else v[keep]) for k, v in segs.items()}]
