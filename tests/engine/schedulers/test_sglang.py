"""``kavier.engine.schedulers.sglang``: SGLang's prefill-first batching, its decode-token
reservation, its retraction order and its new-token ratio (the shared contract is in
test_scheduler_contract.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from kavier.engine.replica import Seq, ServingReplica
from kavier.engine.schedulers.base import SchedulerSettings
from kavier.engine.schedulers.continuous import ContinuousBatching
from kavier.engine.schedulers.sglang import (
    INIT_NEW_TOKEN_RATIO,
    MIN_NEW_TOKEN_RATIO,
    SglangBatching,
)
from kavier.library.catalog import load_catalog
from kavier.perf.roofline import ServingPerfModel, ServingPerfParams

BLOCK = 16
_CATALOG = load_catalog()
PERF = ServingPerfModel(_CATALOG.model("Llama-3-8B"), _CATALOG.gpu("A10"), ServingPerfParams())


class Recorder:
    """The scheduler under test, each batch it forms kept as (decode_now, [(request_id, tokens)])."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.max_running = inner.max_running
        self.refusal = inner.refusal
        self.batches: list[tuple[bool, list[tuple[int, int]]]] = []

    def form_batch(self, replica: Any) -> Any:
        decode_now, chunks = self.inner.form_batch(replica)
        self.batches.append((decode_now, [(s.request_id, c) for s, c in chunks]))
        return decode_now, chunks


def replica_with(policy: type, total_blocks: int = 400) -> tuple[ServingReplica, Recorder]:
    settings = SchedulerSettings(max_num_seqs=64, max_batched_tokens=2048, admit_after_preemption=False)
    recorder = Recorder(policy(settings))
    replica = ServingReplica(0, PERF, recorder, BLOCK, total_blocks, 1, lambda s, r: None, None)
    return replica, recorder


def seq(i: int, n_in: int, n_out: int) -> Seq:
    return Seq(row=i, request_id=i, session_id=-1, arrival=0.0, n_in=n_in, n_out=n_out)


def run_until_decoding(replica: ServingReplica, ids: set[int]) -> None:
    """Step the replica until every request of ``ids`` decodes."""
    for _ in range(100):
        if all(r in replica.running and replica.running[r].decoding for r in ids):
            return
        replica.step()
    raise AssertionError("the requests never started decoding")


@pytest.mark.parametrize(("policy", "mixed"), [(SglangBatching, False), (ContinuousBatching, True)])
def test_a_new_prompt_runs_alone_before_the_decodes_in_sglang(policy, mixed):
    """With a request decoding and a new one waiting, SGLang's next iteration prefills only (the
    decode waits: "run prefill first if possible"); vLLM's mixes the two."""
    replica, recorder = replica_with(policy)
    replica.enqueue(seq(0, 64, 200), 0.0)
    run_until_decoding(replica, {0})
    replica.enqueue(seq(1, 64, 200), replica.now)
    replica.step()
    decode_now, chunks = recorder.batches[-1]
    assert chunks == [(1, 64)]
    assert decode_now is mixed


def test_admission_reserves_room_for_the_running_requests_future_tokens():
    """Request 1 needs its prompt (100), its output (300) and a page (16): 416 tokens. With 640
    tokens of KV, request 0 holding 112 of them and expected to need 0.7 x 400 = 280 more, only
    248 are left: SGLang keeps request 1 waiting, where vLLM V1 admits it (its first chunk fits)."""
    for policy, admitted in ((SglangBatching, False), (ContinuousBatching, True)):
        replica, _ = replica_with(policy, total_blocks=40)
        replica.enqueue(seq(0, 100, 400), 0.0)
        run_until_decoding(replica, {0})
        replica.enqueue(seq(1, 100, 300), replica.now)
        replica.step()
        assert (1 in replica.running) is admitted, policy.__name__
    sglang = SglangBatching(SchedulerSettings())
    state = SimpleNamespace(decode_steps=0)
    assert sglang.new_token_ratio(state) == INIT_NEW_TOKEN_RATIO


def test_retraction_takes_the_fewest_generated_to_the_tail_of_the_queue():
    """Short of KV for the next decode step, SGLang retracts the request that generated least
    (ties: the longest prompt) and queues it last; vLLM preempts the newest and queues it first."""
    for fewest, victim, at_tail in ((True, 1, True), (False, 2, False)):
        replica, _ = replica_with(ContinuousBatching)
        replica.enqueue(seq(0, 32, 500), 0.0)
        run_until_decoding(replica, {0})
        later = replica.now + 0.2  # request 0 decodes alone until then
        replica.enqueue(seq(1, 96, 500), later)
        replica.enqueue(seq(2, 32, 500), later)
        run_until_decoding(replica, {1, 2})
        generated = {r: replica.generated(s) for r, s in replica.running.items()}
        assert generated[0] > generated[1] == generated[2]  # 1 and 2 tie; 1 has the longer prompt
        replica.waiting.append(seq(9, 8, 8))  # someone already queued
        replica.free_blocks = 0  # no block for the next token
        replica.make_room_for_decode(reserve=False, fewest_generated=fewest)
        assert replica.preempted_this_step and victim not in replica.running
        assert (replica.waiting[-1].request_id == victim) is at_tail
        assert (replica.waiting[0].request_id == victim) is not at_tail


def test_new_token_ratio_decays_per_decode_step_and_resets_after_a_retraction():
    """0.7 falls by (0.7 - 0.098) / 600 per decode step down to 0.098; after a retraction it is
    (generated + 20 n) / (max_new + 1) over the requests still running."""
    sglang = SglangBatching(SchedulerSettings())
    decay = (INIT_NEW_TOKEN_RATIO - MIN_NEW_TOKEN_RATIO) / 600
    assert pytest.approx(0.098) == MIN_NEW_TOKEN_RATIO
    assert sglang.new_token_ratio(SimpleNamespace(decode_steps=300)) == pytest.approx(0.7 - 300 * decay)
    assert sglang.new_token_ratio(SimpleNamespace(decode_steps=10_000)) == pytest.approx(0.098)
    running = {1: seq(1, 10, 100), 2: seq(2, 10, 300)}
    state = SimpleNamespace(
        running=running, decode_steps=50, generated=lambda s: {1: 40, 2: 60}[s.request_id]
    )
    sglang._reset_after_retraction(state)
    assert sglang.new_token_ratio(state) == pytest.approx((40 + 60 + 20 * 2) / (400 + 1))
    state.decode_steps = 150
    assert sglang.new_token_ratio(state) == pytest.approx((140 / 401) - 100 * decay)
