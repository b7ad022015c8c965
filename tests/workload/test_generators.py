"""``kavier.workload.generators``: determinism, chunking, statistics, sessions."""

from __future__ import annotations

import numpy as np
import pytest

from kavier.errors import ScenarioError
from kavier.workload.chunk import RequestChunk
from kavier.workload.generators import (
    DEFAULT_SESSION_RATE,
    ChatSessionGenerator,
    OpenLoopGenerator,
)
from kavier.workload.source import WorkloadSource, concat_chunks

COLUMNS = (
    "request_id",
    "arrival_s",
    "num_input_tokens",
    "num_output_tokens",
    "session_id",
    "turn_id",
)


def same(a: RequestChunk, b: RequestChunk) -> bool:
    lists_equal = all(
        (getattr(a, n) is None and getattr(b, n) is None)
        or getattr(a, n).to_pylist() == getattr(b, n).to_pylist()
        for n in ("input_tokens", "hash_ids")
    )
    return lists_equal and all(np.array_equal(getattr(a, n), getattr(b, n)) for n in COLUMNS)


def test_open_loop_is_deterministic_and_chunk_size_independent() -> None:
    def gen(seed: int = 5) -> OpenLoopGenerator:
        return OpenLoopGenerator(20_000, arrival="gamma", rate=3.0, cv=2.0, seed=seed)

    a = concat_chunks(gen().chunks(1000))
    b = concat_chunks(gen().chunks(7777))
    assert same(a, b)
    assert same(a, concat_chunks(gen().chunks(20_000)))
    assert not np.array_equal(a.arrival_s, concat_chunks(gen(6).chunks(1000)).arrival_s)
    assert a.request_id.tolist() == list(range(20_000))
    assert a.arrival_s[0] == 0.0 and np.all(np.diff(a.arrival_s) >= 0)
    assert isinstance(gen(), WorkloadSource) and gen().name == "gamma-generator"


def test_poisson_mean_inter_arrival_is_one_over_rate() -> None:
    chunk = concat_chunks(OpenLoopGenerator(20_001, rate=4.0, seed=11).chunks(3000))
    gaps = np.diff(chunk.arrival_s)
    assert gaps.mean() == pytest.approx(0.25, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)  # exponential: cv 1


def test_gamma_inter_arrival_mean_and_cv() -> None:
    chunk = concat_chunks(OpenLoopGenerator(20_001, "gamma", rate=2.0, cv=0.5, seed=2).chunks(512))
    gaps = np.diff(chunk.arrival_s)
    assert gaps.mean() == pytest.approx(0.5, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(0.5, rel=0.05)


def test_open_loop_lengths_and_sizes() -> None:
    gen = OpenLoopGenerator(10, input_len="uniform:5:6", output_len=3, seed=0)
    chunks = list(gen.chunks(4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    whole = concat_chunks(chunks)
    assert set(whole.num_input_tokens.tolist()) <= {5, 6}
    assert whole.num_output_tokens.tolist() == [3] * 10
    assert whole.session_id.tolist() == [-1] * 10 and not whole.session_prefix


def test_open_loop_streams_a_million_requests_in_bounded_pieces() -> None:
    gen = OpenLoopGenerator(1_000_000, rate=100.0, seed=1)
    count, biggest, last = 0, 0, 0.0
    for chunk in gen.chunks(50_000):
        biggest = max(biggest, len(chunk))
        assert chunk.request_id[0] == count and chunk.arrival_s[0] >= last
        count += len(chunk)
        last = float(chunk.arrival_s[-1])
    assert count == 1_000_000 and biggest == 50_000
    assert last == pytest.approx(10_000, rel=0.01)


@pytest.mark.parametrize(
    "kwargs",
    [{"num_requests": 0}, {"rate": 0}, {"rate": -1.0}, {"cv": 0}, {"arrival": "uniform"}],
)
def test_open_loop_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ScenarioError):
        OpenLoopGenerator(**{"num_requests": 10, **kwargs})


def sessions_of(chunk: RequestChunk) -> dict[int, np.ndarray]:
    """Request indices of each session, in turn order."""
    out = {}
    for s in np.unique(chunk.session_id):
        idx = np.flatnonzero(chunk.session_id == s)
        out[int(s)] = idx[np.argsort(chunk.turn_id[idx])]
    return out


def test_chat_default_workload_shape() -> None:
    chunk = concat_chunks(ChatSessionGenerator().chunks(64))
    assert chunk.session_prefix and chunk.hash_ids is None
    assert chunk.arrival_s[0] == 0.0 and np.all(np.diff(chunk.arrival_s) >= 0)
    assert chunk.request_id.tolist() == list(range(len(chunk)))
    assert set(chunk.session_id.tolist()) == set(range(100))
    assert 250 < len(chunk) < 600  # ~4 turns per session
    first_turns = chunk.num_input_tokens[chunk.turn_id == 0]
    assert 1000 <= first_turns.mean() <= 1500  # incl. the 400-token system prompt
    assert first_turns.min() >= 401
    # Offered load at ~12 s per request: sessions/s x requests/session x s/request ~ 70 %.
    assert 0.6 < DEFAULT_SESSION_RATE * len(chunk) / 100 * 12.0 < 0.8


def test_chat_prompts_grow_by_previous_answer_plus_new_text() -> None:
    gen = ChatSessionGenerator(num_sessions=40, new_text="uniform:10:20", seed=4)
    chunk = concat_chunks(gen.chunks(50))
    nin, nout = chunk.num_input_tokens, chunk.num_output_tokens
    multi = 0
    for idx in sessions_of(chunk).values():
        assert chunk.turn_id[idx].tolist() == list(range(len(idx)))
        assert np.all(np.diff(chunk.arrival_s[idx]) > 0)  # turns arrive in order
        for prev, cur in zip(idx[:-1], idx[1:], strict=True):
            new_text = nin[cur] - nin[prev] - nout[prev]
            assert 10 <= new_text <= 20
            multi += 1
    assert multi > 50


def test_chat_is_deterministic_and_chunk_size_independent() -> None:
    def gen(seed: int = 9) -> ChatSessionGenerator:
        return ChatSessionGenerator(num_sessions=300, session_rate=0.5, turns=3.0, seed=seed)

    a = concat_chunks(gen().chunks(1000))
    assert same(a, concat_chunks(gen().chunks(7777)))
    assert same(a, concat_chunks(gen().chunks(13)))
    assert not same(a, concat_chunks(gen(10).chunks(1000)))


def test_chat_session_starts_and_think_times() -> None:
    gen = ChatSessionGenerator(num_sessions=3000, session_rate=2.0, turns="2", think_time_s=30.0, seed=1)
    chunk = concat_chunks(gen.chunks(4096))
    starts = np.sort(chunk.arrival_s[chunk.turn_id == 0])
    assert np.diff(starts).mean() == pytest.approx(0.5, rel=0.05)
    think = [chunk.arrival_s[i[1]] - chunk.arrival_s[i[0]] for i in sessions_of(chunk).values()]
    assert np.mean(think) == pytest.approx(30.0, rel=0.05)


def test_chat_max_turns_caps_sessions() -> None:
    gen = ChatSessionGenerator(num_sessions=500, turns="geometric:mean=6", max_turns=3)
    chunk = concat_chunks(gen.chunks(100))
    assert chunk.turn_id.max() == 2


def test_chat_shared_system_prompt_hash_ids() -> None:
    gen = ChatSessionGenerator(num_sessions=20, system_prompt_tokens=1100, shared_system_prompt=True, seed=3)
    chunk = concat_chunks(gen.chunks(7))
    assert chunk.hash_ids is not None and not chunk.session_prefix
    lists = chunk.hash_ids.to_pylist()
    for i, ids in enumerate(lists):
        assert len(ids) == -(-int(chunk.num_input_tokens[i]) // 512)
        assert ids[:2] == [0, 1]  # two full 512-token blocks of system prompt, shared
    for idx in sessions_of(chunk).values():
        for prev, cur in zip(idx[:-1], idx[1:], strict=True):
            full = int(chunk.num_input_tokens[prev]) // 512  # full blocks of the earlier turn
            assert lists[cur][:full] == lists[prev][:full]
    other = [ids[2] for ids in lists if len(ids) > 3]
    assert len(set(other)) > 1  # sessions differ after the system prompt
    # A trailing partial block is never shared with another request.
    tails = [ids[-1] for i, ids in enumerate(lists) if chunk.num_input_tokens[i] % 512]
    assert len(tails) == len(set(tails))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_sessions": 0},
        {"session_rate": 0.0},
        {"turns": 0.5},
        {"think_time_s": -1.0},
        {"system_prompt_tokens": -1},
        {"output": "uniform:9:1"},
    ],
)
def test_chat_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ScenarioError):
        ChatSessionGenerator(**kwargs)
