"""Synthetic workloads, deterministic from a seed and streamed in chunks (times in seconds).

- :class:`OpenLoopGenerator`: independent requests with Poisson or gamma inter-arrival times.
- :class:`ChatSessionGenerator`: multi-turn chat sessions (Kavier's built-in default workload).

Both draw from ``numpy.random.Generator(PCG64(SeedSequence(seed, spawn_key=(k,))))`` streams,
so the output depends only on the parameters and the seed, never on the chunk size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import numpy as np
import pyarrow as pa

from kavier.errors import ScenarioError
from kavier.workload.chunk import RequestChunk
from kavier.workload.lengths import Geometric, LengthDist, parse_length
from kavier.workload.source import check_chunk_size, rechunk

HASH_BLOCK_TOKENS = 512  # tokens per hash id when shared_system_prompt is on

# Default chat load: one A10 running Llama-3-8B one request at a time serves a default chat
# request (~2,450 prompt tokens on average over turns, ~250 output tokens at ~44 ms/token) in
# about 12 s. Sessions have min(geometric(mean 4), 16) = 3.96 turns on average, so a session
# brings ~47.5 s of work and 0.7 / 47.5 s sessions/s loads that GPU to ~70 %.
DEFAULT_SERVICE_S = 12.0
DEFAULT_MEAN_TURNS = (1 - 0.75**16) / 0.25  # E[min(geometric(p=1/4), 16)] = 3.96
DEFAULT_SESSION_RATE = 0.7 / (DEFAULT_MEAN_TURNS * DEFAULT_SERVICE_S)  # ~0.0147 sessions/s


def _rng(seed: int, stream: int) -> np.random.Generator:
    """The independent random stream ``stream`` of ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream,))))


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ScenarioError(f"{name} = {value!r}: must be a positive number")
    return float(value)


def _count(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ScenarioError(f"{name} = {value!r}: must be a whole number >= {minimum}")
    return int(value)


class OpenLoopGenerator:
    """Independent requests arriving open-loop at ``rate`` requests/s.

    ``arrival="poisson"``: exponential inter-arrival times (mean 1/rate s). ``arrival="gamma"``:
    gamma inter-arrival times with mean 1/rate s and coefficient of variation ``cv`` (cv > 1 is
    burstier than Poisson, cv = 1 is Poisson). The first request arrives at 0 s.

    Requests are generated in fixed blocks of :attr:`BLOCK`, block ``b`` from its own random
    stream, so memory stays bounded for any ``num_requests`` and the output is identical
    whatever chunk size is asked for.
    """

    BLOCK = 8192

    def __init__(
        self,
        num_requests: int,
        arrival: Literal["poisson", "gamma"] = "poisson",
        rate: float = 1.0,
        cv: float = 1.0,
        input_len: LengthDist | str | int = "lognormal:mean=1000,cv=0.5",
        output_len: LengthDist | str | int = "lognormal:mean=250,cv=0.6",
        seed: int = 0,
    ) -> None:
        if arrival not in ("poisson", "gamma"):
            raise ScenarioError(f"arrival = {arrival!r}: use 'poisson' or 'gamma'")
        self.num_requests = _count("num_requests", num_requests)
        self.arrival = arrival
        self.rate = _positive("rate", rate)
        self.cv = _positive("cv", cv)
        self.input_len = parse_length(input_len)
        self.output_len = parse_length(output_len)
        self.seed = int(seed)
        self.name = f"{arrival}-generator"

    def chunks(self, chunk_size: int = 8192) -> Iterator[RequestChunk]:
        """Yield the requests in arrival order, ``chunk_size`` per chunk (the last shorter)."""
        return rechunk(self._blocks(), check_chunk_size(chunk_size))

    def _gaps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` inter-arrival times in seconds."""
        if self.arrival == "poisson":
            return rng.exponential(1.0 / self.rate, size=n)
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, 1.0 / (self.rate * shape), size=n)

    def _blocks(self) -> Iterator[RequestChunk]:
        clock = 0.0
        for block, start in enumerate(range(0, self.num_requests, self.BLOCK)):
            n = min(self.BLOCK, self.num_requests - start)
            rng = _rng(self.seed, block)
            gaps = self._gaps(rng, n)
            if block == 0:
                gaps[0] = 0.0
            arrival = clock + np.cumsum(gaps)
            clock = float(arrival[-1])
            minus = np.full(n, -1, dtype=np.int64)
            yield RequestChunk(
                request_id=np.arange(start, start + n, dtype=np.int64),
                arrival_s=arrival,
                num_input_tokens=self.input_len.sample(rng, n),
                num_output_tokens=self.output_len.sample(rng, n),
                session_id=minus,
                turn_id=minus.copy(),
            )


class ChatSessionGenerator:
    """Multi-turn chat sessions, merged in arrival order (the built-in default workload).

    Sessions start as a Poisson process of ``session_rate`` sessions/s (the first at 0 s) and
    have ``turns`` turns (a length spec or LengthDist; a number is the mean of a geometric
    distribution), at most ``max_turns``. Turn 0's prompt is ``system_prompt_tokens`` plus a
    ``first_prompt`` draw; turn k's prompt is turn k-1's prompt + turn k-1's answer (``output``
    draw) + ``new_text`` draw, so ``num_input_tokens`` grows turn by turn and the turns of a
    session share prefixes (``session_prefix=True``).

    Turn k arrives ``think_time_s`` (mean of an exponential) after turn k-1 *arrived*: a
    generator cannot know when the previous answer finishes, so the think time is measured from
    the previous request's arrival, not its completion; with think times well above service
    times (defaults: 60 s vs ~12 s) a user rarely sends a turn before the previous answer.

    With ``shared_system_prompt`` every request also carries Mooncake-style ``hash_ids`` (one id
    per 512 tokens): blocks wholly inside the system prompt are shared by all sessions, later
    full blocks are shared by the turns of a session, and a trailing partial block is unique.
    Then ``session_prefix`` is False, as for traces that carry hash ids.

    The defaults load one A10 serving Llama-3-8B one request at a time (~12 s per request) to
    about 70 % (see ``DEFAULT_SESSION_RATE``). All sessions are generated up front (a few int64
    columns per request; fine for up to millions of requests), then streamed in chunks.
    """

    def __init__(
        self,
        num_sessions: int = 100,
        session_rate: float = DEFAULT_SESSION_RATE,
        turns: LengthDist | str | float = "geometric:mean=4",
        think_time_s: float = 60.0,
        system_prompt_tokens: int = 400,
        first_prompt: LengthDist | str | int = "lognormal:mean=850,cv=0.5",
        new_text: LengthDist | str | int = "lognormal:mean=150,cv=0.5",
        output: LengthDist | str | int = "lognormal:mean=250,cv=0.5",
        seed: int = 0,
        max_turns: int = 16,
        shared_system_prompt: bool = False,
    ) -> None:
        self.num_sessions = _count("num_sessions", num_sessions)
        self.session_rate = _positive("session_rate", session_rate)
        if isinstance(turns, int | float) and not isinstance(turns, bool):
            if not (math.isfinite(turns) and turns >= 1):
                raise ScenarioError(f"turns = {turns!r}: the mean number of turns must be >= 1")
            turns = Geometric(float(turns))
        self.turns = parse_length(turns)
        self.max_turns = _count("max_turns", max_turns)
        if not (math.isfinite(think_time_s) and think_time_s >= 0):
            raise ScenarioError(f"think_time_s = {think_time_s!r}: must be >= 0 seconds")
        self.think_time_s = float(think_time_s)
        self.system_prompt_tokens = _count("system_prompt_tokens", system_prompt_tokens, 0)
        self.first_prompt = parse_length(first_prompt)
        self.new_text = parse_length(new_text)
        self.output = parse_length(output)
        self.seed = int(seed)
        self.shared_system_prompt = bool(shared_system_prompt)
        self.name = "chat-generator"

    def chunks(self, chunk_size: int = 8192) -> Iterator[RequestChunk]:
        """Yield all turns of all sessions in arrival order, ``chunk_size`` per chunk."""
        return rechunk(self._pieces(), check_chunk_size(chunk_size))

    def _pieces(self) -> Iterator[RequestChunk]:
        yield self._generate()

    def _generate(self) -> RequestChunk:
        n = self.num_sessions
        gaps = _rng(self.seed, 0).exponential(1.0 / self.session_rate, size=n)
        gaps[0] = 0.0
        starts = np.cumsum(gaps)
        turns = np.clip(self.turns.sample(_rng(self.seed, 1), n), 1, self.max_turns)
        first = self.system_prompt_tokens + self.first_prompt.sample(_rng(self.seed, 2), n)
        total = int(turns.sum())
        session = np.repeat(np.arange(n, dtype=np.int64), turns)
        begin = np.repeat(np.cumsum(turns) - turns, turns)  # index of each session's turn 0
        turn = np.arange(total, dtype=np.int64) - begin
        later = turn > 0

        think = _rng(self.seed, 3).exponential(self.think_time_s, size=total)
        think = np.where(later, think, 0.0)
        new = self.new_text.sample(_rng(self.seed, 4), total)
        out = self.output.sample(_rng(self.seed, 5), total)

        arrival = starts[session] + _within(think, begin)
        growth = np.zeros(total, dtype=np.int64)  # previous answer + new text, from turn 1 on
        idx = np.flatnonzero(later)
        growth[idx] = out[idx - 1] + new[idx]
        prompt = first[session] + _within(growth, begin)

        order = np.argsort(arrival, kind="stable")  # ties: session, then turn order
        hashes = None
        if self.shared_system_prompt:
            hashes = self._hash_ids(prompt[order], session[order], n)
        return RequestChunk(
            request_id=np.arange(total, dtype=np.int64),
            arrival_s=arrival[order],
            num_input_tokens=prompt[order],
            num_output_tokens=out[order],
            session_id=session[order],
            turn_id=turn[order],
            hash_ids=hashes,
            hash_block_tokens=HASH_BLOCK_TOKENS,
            session_prefix=not self.shared_system_prompt,
        )

    def _hash_ids(self, prompt: np.ndarray, session: np.ndarray, n: int) -> pa.ListArray:
        """Block ids per request: shared system blocks, per-session blocks, unique tail."""
        block = HASH_BLOCK_TOKENS
        shared = self.system_prompt_tokens // block
        counts = -(-prompt // block)  # ceil
        stride = int(counts.max()) + 1
        req = np.repeat(np.arange(len(prompt)), counts)
        j = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        ids = np.where(j < shared, j, shared + session[req] * stride + j)
        partial = (j == counts[req] - 1) & (prompt[req] % block != 0)
        ids = np.where(partial, shared + n * stride + req, ids).astype(np.int64)
        offsets = np.zeros(len(prompt) + 1, dtype=np.int32)
        np.cumsum(counts, out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids))


def _within(values: np.ndarray, begin: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``values`` restarted at each group; ``begin`` = each item's group start."""
    total = np.cumsum(values)
    before = total - values  # cumulative sum before each item
    return total - before[begin]
