"""Is a run's load sustainable? ``stable``, ``backlogged`` or ``overloaded``, from queue growth.

The **waiting queue** at time ``t`` is the number of requests that have arrived by ``t`` but
not yet started (``arrival_s <= t < start_s``, i.e. inside their ``queue_s``); requests served
at the edge (``replica < 0``) never queue and are left out. Its **growth rate** (requests/s) is
the least-squares slope of the queue length, sampled just after every arrival, over the
**second half of the arrival window** (from the middle of ``[first arrival, last arrival]`` to
the last arrival): the first half is left out because every run starts with an empty queue that
fills to its steady level. A queue that is stable fluctuates around that level (slope ~ 0); a
queue fed faster than it is served grows at ``arrival rate - service rate``.

The state compares the growth with the arrival rate over the same window (its **share**):

- ``overloaded``: the queue grows by >= 10 % of the arrival rate (the replicas start < 90 % of
  what arrives; each second of such load adds >= 0.11 s to the wait of the next request, so
  latency grows with the length of the run and the queue does not drain while the load lasts);
- ``backlogged``: it grows by 1-10 % of the arrival rate (load at or just above capacity, or a
  surge still being worked off: waits grow, slowly), or the whole workload arrives at one
  instant and requests had to wait;
- ``stable``: anything less (growth under 1 % of arrivals is within the noise of a queue at its
  steady level).

Growth below :data:`MIN_GROWTH_REQUESTS` requests over the window is never a trend (a short run's
queue moving by one request is not). Each replica is judged on its own queue, sampled at the same
instants, so the replicas' growth rates add up to the run's; a run's state is the worst of its
own and its replicas' (one overloaded replica is a run whose latency grows without bound for the
requests routed to it). ``kavier run``, ``summary.json`` (``load_state``,
``queue_growth_requests_per_s``, ...) and ``kavier plan`` all use :func:`classify_load`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

STABLE, BACKLOGGED, OVERLOADED = "stable", "backlogged", "overloaded"
STATES = (STABLE, BACKLOGGED, OVERLOADED)  # from best to worst
BACKLOG_SHARE = 0.01  # growth / arrival rate at and above which a queue is backlogged
OVERLOAD_SHARE = 0.10  # ... and overloaded
MIN_GROWTH_REQUESTS = 2.0  # fitted growth over the window below this is no trend


@dataclass(frozen=True)
class LoadState:
    """One queue's verdict: the state, the growth rate and arrival rate over the window (req/s)."""

    state: str
    queue_growth_requests_per_s: float | None  # None when the window has no length
    arrival_rate_requests_per_s: float | None

    @property
    def growth_share(self) -> float | None:
        """Growth over arrival rate (None when either is unknown or no request arrived)."""
        g, a = self.queue_growth_requests_per_s, self.arrival_rate_requests_per_s
        if g is None or a is None or a <= 0:
            return None
        return g / a


@dataclass(frozen=True)
class LoadReport:
    """A run's verdict (the worst of its own and its replicas') and each replica's."""

    run: LoadState
    replicas: tuple[LoadState, ...]

    @property
    def state(self) -> str:
        """The worst state of the run and its replicas."""
        return max((self.run.state, *(r.state for r in self.replicas)), key=STATES.index)

    def summary(self) -> dict[str, Any]:
        """The load keys of ``summary.json``."""
        return {
            "load_state": self.state,
            "queue_growth_requests_per_s": self.run.queue_growth_requests_per_s,
            "queue_growth_share_of_arrivals": self.run.growth_share,
            "load_window_arrival_rate_requests_per_s": self.run.arrival_rate_requests_per_s,
            "load_state_per_replica": ",".join(r.state for r in self.replicas),
            "queue_growth_requests_per_s_max_replica": max(
                (
                    r.queue_growth_requests_per_s
                    for r in self.replicas
                    if r.queue_growth_requests_per_s is not None
                ),
                default=None,
            ),
        }


def load_warning(summary: dict[str, Any]) -> str | None:
    """One line about a backlogged or overloaded run, from its ``summary.json`` load keys (None
    when the run is stable or has no load keys)."""
    state = summary.get("load_state")
    if state not in (BACKLOGGED, OVERLOADED):
        return None
    growth, share = summary.get("queue_growth_requests_per_s"), summary.get("queue_growth_share_of_arrivals")
    if growth is None:
        what = "the arrivals span no time to measure queue growth over, and requests waited"
    else:
        of = f" ({share:.0%} of the arrival rate)" if share is not None else ""
        what = f"the waiting queue grows by {growth:,.3g} requests/s{of} over the second half of the arrivals"
    per_replica = (summary.get("load_state_per_replica") or "").split(",")
    which = [str(i) for i, s in enumerate(per_replica) if s == state]
    where = ""
    if len(per_replica) > 1 and which:
        where = f"; {state} replicas: " + ", ".join(which[:8]) + (", ..." if len(which) > 8 else "")
    advice = (
        "latencies grow with the run's length; add replicas or lower the load"
        if state == OVERLOADED
        else "waits grow slowly; the load is near or over capacity"
    )
    return f"load {state}: {what}{where}; {advice}"


def _verdict(growth: float, arrival_rate: float, window_s: float) -> str:
    if growth * window_s < MIN_GROWTH_REQUESTS:
        return STABLE
    share = growth / arrival_rate if arrival_rate > 0 else math.inf
    if share >= OVERLOAD_SHARE:
        return OVERLOADED
    if share >= BACKLOG_SHARE:
        return BACKLOGGED
    return STABLE


def _queue_at(arrival: np.ndarray, start: np.ndarray, mine: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The number of ``mine`` requests waiting just after each instant of ``t`` (sorted)."""
    arrived = np.searchsorted(np.sort(arrival[mine]), t, side="right")
    started = np.searchsorted(np.sort(start[mine]), t, side="right")
    return (arrived - started).astype(np.float64)


def classify_load(
    arrival_s: np.ndarray,
    start_s: np.ndarray,
    replica: np.ndarray | None = None,
    num_replicas: int | None = None,
) -> LoadReport:
    """The load state of a run from each request's arrival and start (s) and replica.

    ``replica`` (None: one queue) numbers the queue each request waited in; a negative one
    (served at the edge) leaves the request out. ``num_replicas`` gives replicas that received
    no request their (stable) entry.
    """
    arrival = np.asarray(arrival_s, dtype=np.float64)
    start = np.asarray(start_s, dtype=np.float64)
    rep = np.zeros(arrival.shape, dtype=np.int64) if replica is None else np.asarray(replica, dtype=np.int64)
    keep = rep >= 0
    arrival, start, rep = arrival[keep], start[keep], rep[keep]
    count = max(int(rep.max()) + 1 if rep.size else 1, num_replicas or 0)
    empty = LoadState(STABLE, 0.0, 0.0)
    if arrival.size == 0:
        return LoadReport(empty, (empty,) * count)
    first, last = float(arrival.min()), float(arrival.max())
    mid = (first + last) / 2.0
    window = last - mid
    order = np.argsort(arrival, kind="stable")
    samples = arrival[order]
    samples = samples[samples >= mid]
    centred = samples - samples.mean() if samples.size else samples
    norm = float(centred @ centred)
    if window <= 0 or norm <= 0:
        # the arrivals span no time (e.g. all at once): no growth rate; waiting = a backlog
        waited = np.array([_queue_at(arrival, start, rep == r, np.array([last]))[0] for r in range(count)])
        states = [LoadState(BACKLOGGED if w >= MIN_GROWTH_REQUESTS else STABLE, None, None) for w in waited]
        total = BACKLOGGED if waited.sum() >= MIN_GROWTH_REQUESTS else STABLE
        return LoadReport(LoadState(total, None, None), tuple(states))
    # least-squares slope of each replica's queue length over the sample instants
    slopes = np.array(
        [float(_queue_at(arrival, start, rep == r, samples) @ centred) / norm for r in range(count)]
    )
    rates = np.bincount(rep[arrival > mid], minlength=count) / window
    run_growth, run_rate = float(slopes.sum()), float(rates.sum())
    replicas = tuple(
        LoadState(_verdict(float(g), float(a), window), float(g), float(a))
        for g, a in zip(slopes, rates, strict=True)
    )
    return LoadReport(LoadState(_verdict(run_growth, run_rate, window), run_growth, run_rate), replicas)
