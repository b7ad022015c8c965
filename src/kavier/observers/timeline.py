"""``timeline.json`` (``timeline = true``): a run's iterations as a Chrome/Perfetto trace.

The file is in the Trace Event Format's JSON object form (``{"traceEvents": [...], ...}``) that
ui.perfetto.dev and chrome://tracing open. Times (``ts``, ``dur``) are microseconds of simulated
time from the run's start, rounded to the nanosecond (a piece's start and end are rounded, so
the pieces of a replica stay back to back and never overlap).

- One process per replica (``pid`` = replica + 1, named ``replica R: GPU x tp T``), with one
  thread ``iterations`` holding one complete event (``ph: "X"``) per piece of activity the
  backend emits: one iteration, or a closed-form run of decode iterations whose batch does not
  change. Its name says what the iterations held: ``prefill``, ``decode`` or
  ``prefill+decode`` (chunked prefill beside decoding sequences).
- Its ``args``: ``iterations``; ``prefill_tokens_per_iteration``, ``decode_seqs_per_iteration``
  and ``batch_tokens`` (their sum); ``kv_blocks_used`` (KV blocks allocated during the piece);
  the piece's duration split into parts that add up to ``dur``: ``compute_us`` (the roofline's
  compute time), ``memory_us`` (the part of the roofline's join of compute and memory, ``max`` or
  the p-norm of ``roofline_norm``, beyond compute: memory
  traffic not hidden under compute, 0 when compute-bound under ``max``), ``allreduce_us`` (tensor- and
  pipeline-parallel communication), ``host_us`` (host-side overhead) and ``cache_load_us``
  (waiting for prefix-cache loads from lower tiers); ``bound`` (``compute`` or ``memory``:
  which side of the roofline took longer over the piece); ``flops`` and ``bytes`` (what the
  performance model counts, every GPU of the replica together); ``mfu`` and ``mbu`` (the
  piece's FLOPs and bytes over its duration x GPUs x peak, as the summary's keys).
- Counter tracks (``ph: "C"``) per replica: ``requests`` (``running`` and ``waiting``) at each
  change, and ``KV cache`` (``blocks_used``) at each piece's start, 0 while the replica idles.

The events are streamed to the file as the backend emits them (a few chunks' worth in memory,
whatever the run's length); in memory (``kavier.simulate(timeline=True)``) the text is kept and
``Result.timeline`` parses it. Only the serving backend's pieces carry iteration detail: the
thesis preset rejects ``timeline`` (kavier.engine.sequential_backend), and a plugin backend's
pieces without detail are drawn as ``busy`` events with their utilisation.

Written with the standard library: the format is a JSON list of flat records, and of the
libraries on PyPI that write it, ``perfetto`` writes Perfetto's protobuf format (not this
JSON) and needs protobuf, and ``chrometrace`` (0.2, one maintainer) builds a dataclass per
event (about twice the cost per event of the formatting here) and fails when it closes a trace
with no events.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

import numpy as np

from kavier.events import Activity, BaseObserver, RunInfo
from kavier.io.sinks import NullSink, Sink
from kavier.observers.mfu import peak_flops
from kavier.registry import OUTPUTS
from kavier.scenario import Scenario

OUTPUT = "timeline.json"
NAMES = ("prefill", "decode", "prefill+decode")
BOUND = ("compute", "memory")
NS_PER_S = 1e9
US_PER_S = 1e6

_X_HEAD = '{"name":"%s","ph":"X","pid":%d,"tid":%d,"ts":%.3f,"dur":%.3f,"args":{'
_X_DETAIL = (
    _X_HEAD + '"iterations":%d,"prefill_tokens_per_iteration":%s,"decode_seqs_per_iteration":%s,'
    '"batch_tokens":%s,"%s":%s,"compute_us":%.3f,"memory_us":%.3f,"allreduce_us":%.3f,'
    '"host_us":%.3f,"cache_load_us":%.3f,"bound":"%s","flops":%r,"bytes":%r,"mfu":%.6g,"mbu":%.6g}}'
)
_X_BUSY = _X_HEAD + '"utilization":%.6g,"kv_bytes":%r}}'
_REQUESTS = '{"name":"requests","ph":"C","pid":%d,"ts":%.3f,"args":{"running":%d,"waiting":%d}}'
_KV = '{"name":"KV cache","ph":"C","pid":%d,"ts":%.3f,"args":{"%s":%s}}'


@OUTPUTS.register("timeline")
class TimelineObserver(BaseObserver):
    """``timeline.json``: a Chrome/Perfetto trace of every replica's iterations (``timeline = true``)."""

    @staticmethod
    def wanted(scenario: Scenario, sink: Sink) -> bool:
        return scenario.timeline and not isinstance(sink, NullSink)  # a discarded run writes none

    def __init__(self, scenario: Scenario, sink: Sink) -> None:
        self.scenario = scenario
        self.sink = sink
        self.stream: TextIO | None = None
        self.first = True

    def on_start(self, info: RunInfo) -> None:
        stream = self.sink.open_text(OUTPUT)
        if stream is None:
            return
        self.stream = stream
        self.info = info
        n = len(info.replicas)
        self.running = np.zeros(n)
        self.waiting = np.zeros(n)
        self.last_end_ns = np.full(n, -1, dtype=np.int64)  # end of each replica's last piece
        blocks = "kv_blocks_used" in info.series_quantities
        self.kv_arg = "blocks_used" if blocks else "bytes_used"  # the KV counter's
        self.kv_piece_arg = "kv_blocks_used" if blocks else "kv_bytes_used"  # a piece's
        stream.write('{"traceEvents":[\n')
        lines = []
        for r, rep in enumerate(info.replicas):
            label = f"replica {r}: {rep.gpu.name} x tp {rep.tp}" + (f" x pp {rep.pp}" if rep.pp > 1 else "")
            pid = r + 1
            lines += [
                _meta("process_name", pid, {"name": label}),
                _meta("process_sort_index", pid, {"sort_index": r}),
                _meta("thread_name", pid, {"name": "iterations"}),
            ]
        self._write(lines)

    def on_activity(self, activity: Activity) -> None:
        if self.stream is None:
            return
        a = activity
        lines: list[str] = []
        if a.t0.size:
            for r in np.unique(a.replica).tolist():
                mask = a.replica == r
                index = np.flatnonzero(mask) if not mask.all() else None
                lines += self._pieces(a, int(r), index)
        if a.step_t is not None and a.step_t.size:
            for r in np.unique(a.step_replica).tolist():
                lines += self._steps(a, int(r))
        self._write(lines)

    def on_end(self, end_s: float) -> None:
        stream = self.stream
        if stream is None:
            return
        lines = [
            _KV % (r + 1, end / 1e3, self.kv_arg, 0)
            for r, end in enumerate(self.last_end_ns.tolist())
            if end >= 0
        ]
        self._write(lines)
        other = {
            "generator": "kavier",
            "scenario": self.scenario.name,
            "time_unit": "us of simulated time from the run's start",
            "end_us": round(end_s * US_PER_S, 3),
        }
        stream.write('\n],"displayTimeUnit":"ms","otherData":' + json.dumps(other) + "}\n")
        stream.close()
        self.stream = None

    # -- events -----------------------------------------------------------------------------

    def _pieces(self, a: Activity, r: int, index: np.ndarray | None) -> list[str]:
        """The complete events of replica ``r``'s pieces (and its KV counter)."""

        def take(x: np.ndarray) -> np.ndarray:
            return x if index is None else x[index]

        pid = r + 1
        t0, t1 = take(a.t0), take(a.t1)
        ns0 = np.rint(t0 * NS_PER_S).astype(np.int64)
        ns1 = np.rint(t1 * NS_PER_S).astype(np.int64)
        ts_us = (ns0 / 1e3).tolist()
        dur_us = ((ns1 - ns0) / 1e3).tolist()
        pids = [pid] * len(ts_us)
        replica = self.info.replicas[r]
        kv_name = self.kv_arg
        kv = take(a.extra["kv_blocks_used"]) if kv_name == "blocks_used" else take(a.kv_bytes)
        d = a.detail
        if "flops" in d:
            prefill = take(d["prefill_tokens"])
            decode = take(d["decode_seqs"])
            span = np.maximum(t1 - t0, 1e-300)  # as the backend divides (busy fractions)
            compute = take(a.compute_fraction) * span
            memory = take(a.memory_fraction) * span
            comm, host = take(d["comm_s"]), take(d["host_s"])
            load = take(d["load_s"]) if "load_s" in d else np.zeros_like(t0)
            roofline = np.maximum(t1 - t0 - comm - host - load, 0.0)
            compute_part = np.minimum(compute, roofline)
            flops, moved = take(d["flops"]), take(d["bytes"])
            gpus = replica.gpus
            mfu = flops / (span * gpus * peak_flops(replica))
            mbu = moved / (span * gpus * replica.gpu.memory_bandwidth)
            kind = np.where(prefill > 0, np.where(decode > 0, 2, 0), 1)
            lines = [
                _X_DETAIL % row
                for row in zip(
                    [NAMES[k] for k in kind.tolist()],
                    pids,
                    pids,
                    ts_us,
                    dur_us,
                    take(d["iterations"]).astype(np.int64).tolist(),
                    _numbers(prefill),
                    _numbers(decode),
                    _numbers(prefill + decode),
                    [self.kv_piece_arg] * len(ts_us),
                    _numbers(kv),
                    (compute_part * US_PER_S).tolist(),
                    ((roofline - compute_part) * US_PER_S).tolist(),
                    (comm * US_PER_S).tolist(),
                    (host * US_PER_S).tolist(),
                    (load * US_PER_S).tolist(),
                    [BOUND[b] for b in (memory > compute).astype(np.int64).tolist()],
                    flops.tolist(),
                    moved.tolist(),
                    mfu.tolist(),
                    mbu.tolist(),
                    strict=True,
                )
            ]
        else:
            lines = [
                _X_BUSY % row
                for row in zip(
                    ["busy"] * len(ts_us),
                    pids,
                    pids,
                    ts_us,
                    dur_us,
                    take(a.utilization).tolist(),
                    take(a.kv_bytes).tolist(),
                    strict=True,
                )
            ]
        # KV use at each piece's start, and 0 from the end of a piece the replica idles after
        prev_end = np.concatenate(([self.last_end_ns[r]], ns1[:-1]))
        idle = np.flatnonzero((prev_end >= 0) & (ns0 > prev_end))
        lines += [_KV % (pid, ns / 1e3, kv_name, 0) for ns in prev_end[idle].tolist()]
        lines += [_KV % row for row in zip(pids, ts_us, [kv_name] * len(ts_us), _numbers(kv), strict=True)]
        self.last_end_ns[r] = ns1[-1]
        return lines

    def _steps(self, a: Activity, r: int) -> list[str]:
        """Replica ``r``'s running and waiting counts after each change (the last at an instant)."""
        mask = a.step_replica == r
        t = a.step_t[mask]
        running = self.running[r] + np.cumsum(a.step_running[mask])
        waiting = self.waiting[r] + np.cumsum(a.step_waiting[mask])
        self.running[r], self.waiting[r] = running[-1], waiting[-1]
        ns = np.rint(t * NS_PER_S).astype(np.int64)
        keep = np.flatnonzero(np.append(ns[1:] != ns[:-1], True))
        pid = r + 1
        return [
            _REQUESTS % (pid, ts, run, wait)
            for ts, run, wait in zip(
                (ns[keep] / 1e3).tolist(),
                np.rint(running[keep]).astype(np.int64).tolist(),
                np.rint(waiting[keep]).astype(np.int64).tolist(),
                strict=True,
            )
        ]

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        stream = self.stream
        assert stream is not None
        if not self.first:
            stream.write(",\n")
        self.first = False
        stream.write(",\n".join(lines))


def _meta(name: str, pid: int, args: dict[str, Any]) -> str:
    return json.dumps({"name": name, "ph": "M", "pid": pid, "tid": pid, "args": args}, separators=(",", ":"))


def _numbers(x: np.ndarray) -> list[Any]:
    """Values as JSON numbers: integers when every one is whole."""
    return x.astype(np.int64).tolist() if np.all(x == np.rint(x)) else x.tolist()
