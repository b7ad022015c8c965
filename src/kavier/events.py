"""What an engine emits while it runs, and the protocol of the observers that receive it.

The engine simulates; observers turn what it emits into outputs (the request table, the time
series with power, energy and carbon, the OpenDC workload) and into summary figures. An engine
calls, in this order:

1. :meth:`Observer.on_start` once, with :class:`RunInfo` (the replicas and how to read them);
2. any number of :meth:`Observer.on_requests` (finished requests' records, in batches),
   :meth:`Observer.on_activity` (what the GPUs did over pieces of time, and queue changes) and
   :meth:`Observer.on_frontier` (no activity will come before this time any more: intervals up
   to it may be written) and :meth:`Observer.on_partial_frontier` (the same promise, made
   between two of the engine's regular emissions to bound its memory: write only what would
   be written the same way later, e.g. whole row groups);
3. :meth:`Observer.on_end` once, with the end of the run (the last request's finish).

Afterwards the driver asks every observer for its :meth:`Observer.summary` keys. Times are
seconds of simulated time from the start of the run; energy-related quantities are per replica
(a replica is one model instance on ``gpus`` GPUs; in the thesis's sequential backend every GPU
is a replica of one GPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from kavier.library.spec import GpuSpec
from kavier.perf.utilization import BatchShare, UtilizationProfile

# The columns of a request record, in the order of ``requests.parquet`` (seconds, tokens).
REQUEST_COLUMNS = (
    "request_id",
    "session_id",
    "arrival_s",
    "start_s",
    "first_token_s",
    "finish_s",
    "num_input_tokens",
    "num_output_tokens",
    "cached_tokens",
    "queue_s",
    "prefill_s",
    "decode_s",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "replica",
    "preemptions",
)

# Request records: one numpy array per column of REQUEST_COLUMNS (one row per request; replica
# -1 = answered by the response cache), and optionally ``_batch`` (the mean batch size of the
# request's replica when it finished, for a batched request's share of its GPU).
Records = dict[str, np.ndarray]


@dataclass(frozen=True)
class ReplicaInfo:
    """One replica of a run: its GPU type, how many GPUs it occupies and its KV memory.

    ``kv_blocks_total`` is None when the backend has no paged KV cache (the sequential backend);
    ``tp`` x ``pp`` is how the ``gpus`` split the model (1 x 1 in the sequential backend) and
    ``peak_flops`` one GPU's peak dense FLOP/s in the data type the model computes in (0 when
    the backend does not say; memory bandwidth is the GPU's ``memory_bandwidth``).
    """

    gpu: GpuSpec
    gpus: int
    kv_capacity_bytes: float
    kv_blocks_total: int | None = None
    tp: int = 1
    pp: int = 1
    peak_flops: float = 0.0


@dataclass(frozen=True)
class RunInfo:
    """What a backend tells observers before its first event.

    ``request_utilization``: how a request's GPU use is spread over its service time (the
    thesis's per-request profile, or a batched request's share of its replica).
    ``series_quantities``: per-replica quantities the backend's :class:`Activity` carries in
    ``extra`` (each becomes a time-series column of its interval means).
    """

    replicas: tuple[ReplicaInfo, ...]
    request_utilization: UtilizationProfile | BatchShare
    series_quantities: tuple[str, ...] = ()

    @property
    def num_gpus(self) -> int:
        """GPUs of the whole cluster."""
        return sum(r.gpus for r in self.replicas)


@dataclass
class Activity:
    """What GPUs did over pieces of time ``[t0, t1)``, and how queues changed.

    Per piece: its ``replica``, the GPU ``utilization`` (0..1), the fractions of the piece the
    tensor cores (``compute_fraction``) and the memory system (``memory_fraction``) are busy, KV
    bytes in use ``kv_bytes + kv_bytes_per_s * (t - t0)`` (per replica), and ``extra`` per-piece
    values of :attr:`RunInfo.series_quantities`; ``detail``, when the backend has it (the
    serving backend), per piece: ``prefill_tokens`` and ``decode_seqs`` per iteration,
    ``held_seqs`` (decoding sequences an iteration that prefills only holds back),
    ``iterations``, and over the piece ``comm_s``, ``host_s``, ``load_s`` (seconds of
    communication, of host overhead and of waiting for prefix-cache loads from lower tiers; the
    rest of the piece is the roofline's join of compute and memory), ``flops`` and ``bytes`` (every
    GPU of the replica together). Every piece's
    replica has the GPU and size of
    replica ``same_gpu_as`` (a backend emits one Activity per kind of replica), so one power
    model prices them all.

    Queue changes: at ``step_t`` on ``step_replica``, the running and waiting request counts
    change by ``step_running`` and ``step_waiting``.
    """

    replica: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    utilization: np.ndarray
    compute_fraction: np.ndarray
    memory_fraction: np.ndarray
    kv_bytes: np.ndarray
    kv_bytes_per_s: np.ndarray | None
    same_gpu_as: int = 0
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    detail: dict[str, np.ndarray] = field(default_factory=dict)
    step_replica: np.ndarray | None = None
    step_t: np.ndarray | None = None
    # Achieved FLOP/s and memory bytes/s per piece over the replica's peaks (MFU, MBU; fractions),
    # when the backend counts FLOPs and bytes (the serving backend): what the power model is fed,
    # as tensor-core and DRAM activity. None: it is fed the busy fractions above.
    mfu: np.ndarray | None = None
    mbu: np.ndarray | None = None
    step_running: np.ndarray | None = None
    step_waiting: np.ndarray | None = None


class Observer(Protocol):
    """Receives a run's events (see the module docstring) and contributes summary keys."""

    def on_start(self, info: RunInfo) -> None: ...
    def on_requests(self, records: Records) -> None: ...
    def on_activity(self, activity: Activity) -> None: ...
    def on_frontier(self, time_s: float) -> None: ...
    def on_partial_frontier(self, time_s: float) -> None: ...
    def on_end(self, end_s: float) -> None: ...
    def summary(self) -> dict[str, Any]: ...


class BaseObserver:
    """An observer that ignores every event; a concrete observer overrides the ones it needs."""

    def on_start(self, info: RunInfo) -> None:
        pass

    def on_requests(self, records: Records) -> None:
        pass

    def on_activity(self, activity: Activity) -> None:
        pass

    def on_frontier(self, time_s: float) -> None:
        pass

    def on_partial_frontier(self, time_s: float) -> None:
        pass

    def on_end(self, end_s: float) -> None:
        pass

    def summary(self) -> dict[str, Any]:
        return {}


class Observers:
    """Several observers as one: each event goes to each, in order."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = list(observers)

    def on_start(self, info: RunInfo) -> None:
        for o in self.observers:
            o.on_start(info)

    def on_requests(self, records: Records) -> None:
        for o in self.observers:
            o.on_requests(records)

    def on_activity(self, activity: Activity) -> None:
        for o in self.observers:
            o.on_activity(activity)

    def on_frontier(self, time_s: float) -> None:
        for o in self.observers:
            o.on_frontier(time_s)

    def on_partial_frontier(self, time_s: float) -> None:
        for o in self.observers:
            partial = getattr(o, "on_partial_frontier", None)  # a plugin may predate it
            if partial is not None:
                partial(time_s)

    def on_end(self, end_s: float) -> None:
        for o in self.observers:
            o.on_end(end_s)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for o in self.observers:
            out.update(o.summary())
        return out
