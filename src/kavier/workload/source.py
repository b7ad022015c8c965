"""The common interface of trace readers and workload generators, and chunk helpers.

A workload source yields :class:`RequestChunk` batches in arrival order with global request ids
``0, 1, 2, ...``; every chunk holds exactly ``chunk_size`` requests except possibly the last,
so memory is bounded by the chunk size, not by the workload length. Times are seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from kavier.workload.chunk import RequestChunk


@runtime_checkable
class WorkloadSource(Protocol):
    """Anything that streams a workload as arrival-ordered chunks."""

    name: str  # e.g. "azure", "mooncake", "chat-generator"

    def chunks(self, chunk_size: int) -> Iterator[RequestChunk]:
        """Yield ``chunk_size`` requests per chunk (the last may be shorter), ids 0.. global."""
        ...


def check_chunk_size(chunk_size: int) -> int:
    """Return ``chunk_size`` as an int, or raise ValueError when it is not a positive integer."""
    if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return int(chunk_size)


def compact_list(array: pa.Array | pa.ChunkedArray | None) -> pa.ListArray | None:
    """A list<int64> ListArray whose offsets start at 0 and whose values are exactly its items.

    Slices and concatenations of ListArrays keep the parent's offsets and values buffers;
    consumers that read ``.offsets``/``.values`` directly need this compact form. Null lists
    become empty lists.
    """
    if array is None:
        return None
    if isinstance(array, pa.ChunkedArray):
        array = pa.concat_arrays(array.chunks) if array.num_chunks != 1 else array.chunk(0)
    if not pa.types.is_list(array.type) or array.type.value_type != pa.int64():
        array = array.cast(pa.list_(pa.int64()))
    if array.null_count:
        import pyarrow.compute as pc

        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy()
        offsets = np.zeros(len(array) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), array.flatten())
    offsets = array.offsets.to_numpy()
    if len(array) == 0 or (offsets[0] == 0 and len(array.values) == offsets[-1]):
        return array
    return pa.ListArray.from_arrays(pa.array(offsets - offsets[0]), array.flatten())


def slice_chunk(chunk: RequestChunk, start: int, stop: int) -> RequestChunk:
    """Requests ``start:stop`` of ``chunk`` (numpy views; list columns compacted)."""
    return RequestChunk(
        request_id=chunk.request_id[start:stop],
        arrival_s=chunk.arrival_s[start:stop],
        num_input_tokens=chunk.num_input_tokens[start:stop],
        num_output_tokens=chunk.num_output_tokens[start:stop],
        session_id=chunk.session_id[start:stop],
        turn_id=chunk.turn_id[start:stop],
        input_tokens=_slice_list(chunk.input_tokens, start, stop),
        hash_ids=_slice_list(chunk.hash_ids, start, stop),
        hash_block_tokens=chunk.hash_block_tokens,
        session_prefix=chunk.session_prefix,
    )


def _slice_list(array: pa.ListArray | None, start: int, stop: int) -> pa.ListArray | None:
    if array is None:
        return None
    return compact_list(array.slice(start, max(0, stop - start)))


def concat_chunks(chunks: Iterable[RequestChunk]) -> RequestChunk:
    """Concatenate chunks into one (e.g. to collect a small workload or compare two streams)."""
    parts = list(chunks)
    if not parts:
        return empty_chunk()
    if len(parts) == 1:
        return parts[0]
    first = parts[0]

    def lists(name: str) -> pa.ListArray | None:
        arrays = [getattr(p, name) for p in parts]
        if all(a is None for a in arrays):
            return None
        if any(a is None for a in arrays):
            raise ValueError(f"cannot concatenate chunks where only some have {name}")
        return compact_list(pa.concat_arrays(arrays))

    return RequestChunk(
        request_id=np.concatenate([p.request_id for p in parts]),
        arrival_s=np.concatenate([p.arrival_s for p in parts]),
        num_input_tokens=np.concatenate([p.num_input_tokens for p in parts]),
        num_output_tokens=np.concatenate([p.num_output_tokens for p in parts]),
        session_id=np.concatenate([p.session_id for p in parts]),
        turn_id=np.concatenate([p.turn_id for p in parts]),
        input_tokens=lists("input_tokens"),
        hash_ids=lists("hash_ids"),
        hash_block_tokens=first.hash_block_tokens,
        session_prefix=first.session_prefix,
    )


def empty_chunk() -> RequestChunk:
    """A chunk with no requests."""
    i64 = np.zeros(0, dtype=np.int64)
    return RequestChunk(i64, np.zeros(0), i64, i64, i64, i64)


def rechunk(pieces: Iterable[RequestChunk], chunk_size: int) -> Iterator[RequestChunk]:
    """Regroup a stream of arbitrarily sized pieces into chunks of exactly ``chunk_size``.

    Only the last chunk may be shorter; empty pieces are skipped. At most about two chunks'
    worth of requests are held at once.
    """
    size = check_chunk_size(chunk_size)
    buffer: list[RequestChunk] = []
    held = 0
    for piece in pieces:
        if len(piece) == 0:
            continue
        buffer.append(piece)
        held += len(piece)
        if held < size:
            continue
        merged = concat_chunks(buffer)
        start = 0
        while held - start >= size:
            yield slice_chunk(merged, start, start + size)
            start += size
        buffer = [slice_chunk(merged, start, held)] if start < held else []
        held -= start
    if held:
        yield concat_chunks(buffer)
