"""Model FLOPs utilisation (MFU) and memory-bandwidth utilisation (MBU) of a run's busy GPUs:
summary keys only, no file.

``mfu = FLOPs / (busy s x GPUs x peak dense FLOP/s)`` and ``mbu = bytes / (busy s x GPUs x peak
memory bandwidth)``, where FLOPs and bytes are what the performance model counts for the
iterations the replicas ran (dense GEMMs, attention, weights and KV bytes read; every GPU of a
replica together; :attr:`kavier.events.Activity.detail`), the peak FLOP/s is one GPU's dense
peak in the data type the model computes in (FP8/INT8 weights on a GPU with that peak, else
FP16/BF16; :attr:`kavier.events.ReplicaInfo.peak_flops`) and the peak bandwidth the GPU's memory
bandwidth. The time is **busy time**, the seconds the replicas spent running iterations (the
pieces of activity, as in ``gpu_busy_s``), not the run's wall time: idle time lowers
``gpu_utilization_mean``, not MFU or MBU. A run's figures are ratios of sums over all replicas
(time-weighted means), so they lie in [0, 1].

Per phase: a piece of activity whose iterations hold ``P`` prompt tokens and ``D`` decoding
sequences is attributed to prefill by its token share ``P / (P + D)`` and to decode by the rest,
its seconds, FLOPs and bytes alike (the same split as ``total_prefill_s`` and
``total_decode_s``, so ``mfu_prefill = prefill FLOPs / (total_prefill_s x peak FLOP/s)``).

The sequential backend (the thesis preset) emits no iteration detail: its keys are null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kavier.events import Activity, BaseObserver, ReplicaInfo, RunInfo
from kavier.io.sinks import Sink
from kavier.registry import OUTPUTS
from kavier.scenario import Scenario

KEYS = ("mfu_mean", "mbu_mean", "mfu_prefill", "mfu_decode", "mbu_prefill", "mbu_decode")


def peak_flops(replica: ReplicaInfo) -> float:
    """One GPU's peak dense FLOP/s as the backend states it, else the GPU's FP16/BF16 peak."""
    return replica.peak_flops if replica.peak_flops > 0 else replica.gpu.flops_fp16


def prefill_share(detail: dict[str, np.ndarray]) -> np.ndarray:
    """Each piece's share of prefill: prompt tokens / (prompt tokens + decoding sequences)."""
    p = detail["prefill_tokens"]
    total = p + detail["decode_seqs"]
    return np.divide(p, total, out=np.zeros_like(p), where=total > 0)


@OUTPUTS.register("mfu")
class RooflineUse(BaseObserver):
    """MFU and MBU, overall and per phase, from the pieces' FLOPs and bytes (summary keys)."""

    @staticmethod
    def wanted(scenario: Scenario, sink: Sink) -> bool:
        return True

    def __init__(self, scenario: Scenario, sink: Sink) -> None:
        # sums over pieces: [prefill, decode] of FLOPs, bytes, peak FLOPs and peak bytes
        self.flops = [0.0, 0.0]
        self.bytes = [0.0, 0.0]
        self.flops_cap = [0.0, 0.0]
        self.bytes_cap = [0.0, 0.0]
        self.missing = False  # some busy piece came without iteration detail

    def on_start(self, info: RunInfo) -> None:
        self.replicas = info.replicas

    def on_activity(self, activity: Activity) -> None:
        a = activity
        if not a.t0.size:
            return
        d = a.detail
        if "flops" not in d or "bytes" not in d:
            self.missing = True
            return
        replica = self.replicas[a.same_gpu_as]
        gpus = replica.gpus
        busy = a.t1 - a.t0
        flops, moved = d["flops"], d["bytes"]
        flop_rate = gpus * peak_flops(replica)
        byte_rate = gpus * replica.gpu.memory_bandwidth
        share = prefill_share(d)
        for phase, weight in enumerate((share, 1.0 - share)):
            phase_busy = float(np.dot(weight, busy))
            self.flops[phase] += float(np.dot(weight, flops))
            self.bytes[phase] += float(np.dot(weight, moved))
            self.flops_cap[phase] += phase_busy * flop_rate
            self.bytes_cap[phase] += phase_busy * byte_rate

    def summary(self) -> dict[str, Any]:
        """``mfu_*`` and ``mbu_*`` (fractions; null without iteration detail or busy time)."""
        if self.missing:
            return dict.fromkeys(KEYS)
        f, b, fc, bc = self.flops, self.bytes, self.flops_cap, self.bytes_cap
        return {
            "mfu_mean": _ratio(f[0] + f[1], fc[0] + fc[1]),
            "mbu_mean": _ratio(b[0] + b[1], bc[0] + bc[1]),
            "mfu_prefill": _ratio(f[0], fc[0]),
            "mfu_decode": _ratio(f[1], fc[1]),
            "mbu_prefill": _ratio(b[0], bc[0]),
            "mbu_decode": _ratio(b[1], bc[1]),
        }


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None
