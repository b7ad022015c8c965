"""Streaming trace readers: CSV, parquet and JSONL files, format detected from their content.

:func:`open_trace` looks at the file's bytes (parquet magic, a leading ``{`` for JSONL, else
CSV) and then at its column names (case-insensitive) to pick one of the formats below; the file
name and extension are ignored. Every format can come in any of the three containers.

=========  ===================================================================================
thesis     ``num_input_tokens``, ``num_output_tokens``; optional ``ts`` (s), ``session_id`` (int
           or string; strings get int codes in order of first appearance), ``turn_id``,
           ``input_tokens`` (token ids; in CSV a string like ``"[1, 100, 101]"``), ``hash_ids``.
           ``output_tokens`` is ignored. Without ``ts`` every request arrives at 0 s.
azure      Azure LLM inference trace 2023: ``TIMESTAMP`` (e.g. ``2023-11-16 18:15:46.6805900``,
           naive or with a UTC offset), ``ContextTokens``, ``GeneratedTokens``.
burstgpt   ``Timestamp`` (s), ``Request tokens``, ``Response tokens`` (``Model``, ``Total
           tokens``, ``Log Type`` are ignored). Rows with 0 response tokens are BurstGPT's failed
           requests; they are kept, with 0 output tokens.
mooncake   ``timestamp`` (ms), ``input_length``, ``output_length``, optional ``hash_ids`` (one id
           per 512-token block).
vidur      ``num_prefill_tokens``, ``num_decode_tokens``, optional ``arrived_at`` (s).
=========  ===================================================================================

Arrivals are made relative to the first request of the whole trace (its ``arrival_s`` is 0).
Traces whose arrivals are non-decreasing are streamed (memory bounded by the chunk and read
block size); otherwise the whole file is read once and stable-sorted by arrival, with a warning
and a note in :attr:`TraceSource.notes`. Output token counts of 0 are allowed in traces.
Every problem with the file raises a one-line :class:`~kavier.errors.WorkloadError` naming the
file and the row (1-based data row; ``line`` for JSONL) or column.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kavier.errors import WorkloadError, warn
from kavier.registry import TRACE_FORMATS
from kavier.workload.chunk import RequestChunk
from kavier.workload.formats import Kind, TraceFormat, accepted_formats
from kavier.workload.source import check_chunk_size, compact_list, rechunk

CSV_BLOCK_BYTES = 1 << 19  # pyarrow reads ahead ~40 blocks: ~20 MB peak
JSONL_BLOCK_BYTES = 4 << 20
PARQUET_BATCH_ROWS = 65_536
HASH_BLOCK_TOKENS = 512  # tokens per Mooncake hash id


class _Batch(NamedTuple):
    """Raw columns of consecutive rows, by role, and where they are in the file."""

    columns: dict[str, pa.Array]
    row0: int  # data rows before this batch
    lines: np.ndarray | None  # JSONL: 1-based line number of each row

    def where(self, i: int) -> str:
        return f"line {int(self.lines[i])}" if self.lines is not None else f"row {self.row0 + i + 1}"


class _Piece(NamedTuple):
    """Normalised columns of consecutive rows (numpy; lists as compact ListArrays)."""

    arrival_ns: np.ndarray | None
    nin: np.ndarray
    nout: np.ndarray
    session: np.ndarray | None
    turn: np.ndarray | None
    input_tokens: pa.ListArray | None
    hash_ids: pa.ListArray | None


def open_trace(path: str | Path) -> TraceSource:
    """Open a CSV, parquet or JSONL trace, detecting container and format from the content.

    ``path`` may also be a trace name (:mod:`kavier.workload.traces`): a built-in trace, or a
    remote one downloaded to the cache on first use; an existing file of that name wins.
    Raises WorkloadError when the file is missing, unreadable, empty or of no known format.
    """
    from kavier.workload.traces import resolve_trace

    path = resolve_trace(path)
    if path.is_dir():
        raise WorkloadError(f"trace file {path} is a directory; give a CSV, parquet or JSONL file")
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        raise WorkloadError(f"trace file {path} cannot be read ({exc.strerror}); check it") from exc
    text_head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text_head:
        raise WorkloadError(f"trace file {path} is empty; give a trace with a header and rows")
    if head[:4] == b"PAR1":
        backend: _Backend = _ParquetBackend(path)
    elif head[:2] == b"\x1f\x8b":
        raise WorkloadError(f"trace file {path} is gzip-compressed; decompress it first")
    elif text_head[:1] == b"{":
        backend = _JsonlBackend(path)
    elif text_head[:1] == b"[":
        raise WorkloadError(f"trace file {path} is a JSON array; write one JSON object per line (JSONL)")
    else:
        backend = _CsvBackend(path, head)
    fmt, roles = _detect(path, backend.column_names)
    backend.check_not_empty()
    return TraceSource(path=path, format=fmt, backend=backend, roles=roles)


def _detect(path: Path, names: list[str]) -> tuple[TraceFormat, dict[str, tuple[str, Kind]]]:
    """Pick the format whose required columns are all present; map roles to actual names."""
    actual = {n.strip().lower(): n for n in names}

    def present(fmt: TraceFormat) -> dict[str, tuple[str, Kind]]:
        return {
            role: (actual[col.lower()], kind)
            for role, (col, kind) in fmt.columns.items()
            if col.lower() in actual
        }

    best: tuple[int, TraceFormat | None] = (0, None)
    tie = False
    for _, fmt in TRACE_FORMATS.items():
        roles = present(fmt)
        have = [r for r in fmt.required if r in roles]
        if len(have) == len(fmt.required):
            return fmt, roles
        if "input" in roles or "output" in roles:
            if len(have) > best[0]:
                best, tie = (len(have), fmt), False
            elif len(have) == best[0]:
                tie = True
    shown = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
    if best[1] is not None and not tie:
        fmt = best[1]
        missing = [fmt.columns[r][0] for r in fmt.required if r not in present(fmt)]
        raise WorkloadError(
            f"trace file {path} looks like the {fmt.name} format but lacks column(s) "
            f"{', '.join(repr(m) for m in missing)}; add them (required: {fmt.describe()})"
        )
    raise WorkloadError(
        f"trace file {path}: format not recognised from its columns ({shown}); "
        f"accepted column sets: {accepted_formats()}"
    )


@dataclass
class TraceSource:
    """A trace file streamed as :class:`RequestChunk` batches (see the module docstring)."""

    path: Path
    format: TraceFormat
    backend: _Backend = field(repr=False)
    roles: dict[str, tuple[str, Kind]] = field(repr=False)
    notes: list[str] = field(default_factory=list)
    name: str = field(init=False)  # the detected format: thesis, azure, burstgpt, mooncake, vidur
    _scan: tuple[bool, int] | None = field(default=None, repr=False)  # (sorted, first ns)
    _warned: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.format.name

    def chunks(self, chunk_size: int = 8192) -> Iterator[RequestChunk]:
        """Yield the trace in arrival order, ``chunk_size`` requests per chunk (last shorter)."""
        size = check_chunk_size(chunk_size)
        return rechunk(self._pieces(), size)

    def _pieces(self) -> Iterator[RequestChunk]:
        is_sorted, first_ns = self._arrival_scan()
        has_session = "session" in self.roles
        prefix = has_session and "input_tokens" not in self.roles and "hash_ids" not in self.roles
        assembler = _Assembler(first_ns, derive_turns=has_session and "turn" not in self.roles)
        ids = _SessionCodes(self.path, self.roles.get("session", ("", "id"))[0])
        if is_sorted:
            for piece in self._normalised(ids):
                yield assembler.chunk(piece, prefix)
            return
        if not self._warned:
            note = f"{self.path.name}: arrival times were not sorted; read whole and sorted them"
            self.notes.append(note)
            warn(note)
            self._warned = True
        pieces = list(self._normalised(ids))
        yield assembler.chunk(_sort_pieces(pieces, recode=ids.mode == "str"), prefix)

    def _arrival_scan(self) -> tuple[bool, int]:
        """One pass over the arrival column only: is it non-decreasing, and its minimum (ns)."""
        if self._scan is None:
            if "arrival" not in self.roles:
                self._scan = (True, 0)
            else:
                role = {"arrival": self.roles["arrival"]}
                ok, prev, low = True, None, None
                for batch in self.backend.batches(role):
                    ns = _arrival_ns(self.path, batch, self.roles["arrival"])
                    if not len(ns):
                        continue
                    if ok:
                        ok = bool(np.all(ns[1:] >= ns[:-1])) and (prev is None or ns[0] >= prev)
                    prev = int(ns[-1])
                    m = int(ns.min())
                    low = m if low is None else min(low, m)
                self._scan = (ok, low or 0)
        return self._scan

    def _normalised(self, ids: _SessionCodes) -> Iterator[_Piece]:
        for batch in self.backend.batches(self.roles):
            yield _normalise(self.path, batch, self.roles, ids)


class _Assembler:
    """Turns normalised pieces into RequestChunks: relative arrivals, ids, derived turns."""

    def __init__(self, first_ns: int, derive_turns: bool) -> None:
        self.first_ns = first_ns
        self.next_id = 0
        self.turns: dict[int, int] | None = {} if derive_turns else None

    def chunk(self, piece: _Piece, session_prefix: bool) -> RequestChunk:
        n = len(piece.nin)
        minus = np.full(n, -1, dtype=np.int64)
        if piece.arrival_ns is None:
            arrival = np.zeros(n)
        else:
            arrival = (piece.arrival_ns - self.first_ns).astype(np.float64) / 1e9
        session = piece.session if piece.session is not None else minus
        turn = piece.turn
        if turn is None:
            turn = self._derive_turns(session) if self.turns is not None else minus.copy()
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        return RequestChunk(
            request_id=ids,
            arrival_s=arrival,
            num_input_tokens=piece.nin,
            num_output_tokens=piece.nout,
            session_id=session,
            turn_id=turn,
            input_tokens=piece.input_tokens,
            hash_ids=piece.hash_ids,
            hash_block_tokens=HASH_BLOCK_TOKENS,
            session_prefix=session_prefix,
        )

    def _derive_turns(self, session: np.ndarray) -> np.ndarray:
        """0-based turn of each request within its session, counting in arrival order."""
        assert self.turns is not None
        n = len(session)
        uniq, inv = np.unique(session, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        counts = np.bincount(inv, minlength=len(uniq))
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        within = np.empty(n, dtype=np.int64)
        within[order] = np.arange(n) - starts
        base = np.array([self.turns.get(int(s), 0) for s in uniq], dtype=np.int64)
        for s, b, c in zip(uniq.tolist(), base.tolist(), counts.tolist(), strict=True):
            self.turns[s] = b + c
        turn = base[inv] + within
        turn[session < 0] = -1
        return turn


def _sort_pieces(pieces: list[_Piece], recode: bool) -> _Piece:
    """Concatenate all pieces and stable-sort them by arrival; renumber string session codes."""
    arrival = np.concatenate([p.arrival_ns for p in pieces])  # type: ignore[misc]
    order = np.argsort(arrival, kind="stable")
    take = pa.array(order)

    def cat(name: str) -> np.ndarray | None:
        parts = [getattr(p, name) for p in pieces]
        return None if parts[0] is None else np.concatenate(parts)[order]

    def lists(name: str) -> pa.ListArray | None:
        parts = [getattr(p, name) for p in pieces]
        return None if parts[0] is None else compact_list(pa.concat_arrays(parts).take(take))

    session = cat("session")
    if recode and session is not None:
        session = _first_appearance_codes(session)
    return _Piece(
        arrival[order], cat("nin"), cat("nout"), session, cat("turn"),  # type: ignore[arg-type]
        lists("input_tokens"), lists("hash_ids"),
    )  # fmt: skip


def _first_appearance_codes(codes: np.ndarray) -> np.ndarray:
    """Renumber non-negative codes 0.. in order of first appearance (-1 stays -1)."""
    valid = codes >= 0
    uniq, first, inv = np.unique(codes[valid], return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(uniq))
    out = codes.copy()
    out[valid] = rank[inv.reshape(-1)]
    return out


class _SessionCodes:
    """session_id values -> int64: integers kept; strings coded 0.. in order of first appearance.

    The first batch decides: if its values are all integers the column is numeric, and a later
    non-integer value is an error; otherwise every value is treated as a string. Null -> -1.
    """

    def __init__(self, path: Path, column: str) -> None:
        self.path, self.column = path, column
        self.mode: str | None = None
        self.codes: dict[str, int] = {}

    def __call__(self, batch: _Batch, arr: pa.Array) -> np.ndarray:
        if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
            return _whole(self.path, batch, arr, self.column, allow_null=True, negative_ok=True)
        import pyarrow.compute as pc

        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            try:
                arr = arr.cast(pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise WorkloadError(
                    f"trace file {self.path}: column {self.column!r} holds values of type {arr.type}; "
                    "give session ids as integers or strings"
                ) from None
        if self.mode is None:
            first = pc.drop_null(arr)[:1].to_pylist()
            if first and not first[0].strip().lstrip("+-").isdigit():
                self.mode = "str"  # skip a failing cast, which is slow
        if self.mode != "str":
            try:
                ints = pc.cast(arr, pa.int64())
                self.mode = "int"
                return ints.fill_null(-1).to_numpy()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                if self.mode == "int":
                    bad = _first(pc.invert(pc.match_substring_regex(arr, r"^\s*-?\d+\s*$")))
                    raise WorkloadError(
                        f"trace file {self.path}: {batch.where(bad)}: column {self.column!r} is "
                        f"{arr[bad].as_py()!r} but earlier ids are integers; use one kind of id"
                    ) from None
                self.mode = "str"
        encoded = pc.dictionary_encode(arr)
        lookup = np.array(
            [self.codes.setdefault(v, len(self.codes)) for v in encoded.dictionary.to_pylist()],
            dtype=np.int64,
        )
        indices = encoded.indices.fill_null(-1).to_numpy()
        return np.where(indices >= 0, lookup[np.maximum(indices, 0)] if len(lookup) else -1, -1)


def _normalise(path: Path, batch: _Batch, roles: dict[str, tuple[str, Kind]], ids: _SessionCodes) -> _Piece:
    """Validate and convert one batch's raw columns to numpy (errors name the row)."""
    cols = batch.columns
    arrival = _arrival_ns(path, batch, roles["arrival"]) if "arrival" in roles else None
    nin = _whole(path, batch, cols["input"], roles["input"][0])
    nout = _whole(path, batch, cols["output"], roles["output"][0])
    session = ids(batch, cols["session"]) if "session" in roles else None
    turn = _whole(path, batch, cols["turn"], roles["turn"][0]) if "turn" in roles else None
    tokens = _ids_list(path, batch, "input_tokens", roles) if "input_tokens" in roles else None
    hashes = _ids_list(path, batch, "hash_ids", roles) if "hash_ids" in roles else None
    return _Piece(arrival, nin, nout, session, turn, tokens, hashes)


def _first(mask: pa.Array) -> int:
    """Index of the first true (null counts as true) value."""
    return int(np.argmax(mask.fill_null(True).to_numpy(zero_copy_only=False)))


def _whole(
    path: Path,
    batch: _Batch,
    arr: pa.Array,
    column: str,
    allow_null: bool = False,
    negative_ok: bool = False,
) -> np.ndarray:
    """A column of whole numbers as int64; null/NaN/non-numeric/negative/fractional -> error."""
    where = f"trace file {path}: "
    arr = _as_numbers(path, batch, arr, column, "a number; fix or remove that row")
    if arr.null_count and not allow_null:
        bad = _first(arr.is_null())
        raise WorkloadError(
            f"{where}{batch.where(bad)}: column {column!r} is empty, missing or NaN; "
            "fill it in or remove the row"
        )
    # (fill_null only when there are nulls: it is a pyarrow.compute call, whose first use
    # imports that module, ~30 ms)
    if pa.types.is_integer(arr.type):
        values = (arr.fill_null(-1) if arr.null_count else arr).to_numpy().astype(np.int64, copy=False)
    else:
        floats = (arr.fill_null(-1.0) if arr.null_count else arr).to_numpy()
        nan = np.isnan(floats)
        if nan.any():
            raise WorkloadError(
                f"{where}{batch.where(int(np.argmax(nan)))}: column {column!r} is NaN; "
                "fill in or remove the row"
            )
        fractional = floats != np.floor(floats)
        if fractional.any():
            bad = int(np.argmax(fractional))
            raise WorkloadError(
                f"{where}{batch.where(bad)}: column {column!r} is {floats[bad]:g}, not a whole "
                "number; fix that row"
            )
        values = floats.astype(np.int64)
    if not negative_ok and (values < 0).any():
        bad = int(np.argmax(values < 0))
        raise WorkloadError(
            f"{where}{batch.where(bad)}: column {column!r} is negative ({values[bad]}); "
            "token counts must be >= 0, fix or remove that row"
        )
    return values


def _as_numbers(path: Path, batch: _Batch, arr: pa.Array, column: str, expected: str) -> pa.Array:
    """``arr`` if it holds numbers, else cast to float64 (text, nulls); a value or a column type
    that is no number (booleans, lists, ...) is a one-line error ("... not {expected}")."""
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return arr
    textual = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
    if not (textual or pa.types.is_null(arr.type)):  # booleans too: as in JSONL, no number
        raise WorkloadError(
            f"trace file {path}: column {column!r} holds values of type {arr.type}, not {expected}"
        )
    import pyarrow.compute as pc

    try:
        return pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = _first(_not_numeric(arr))
        raise WorkloadError(
            f"trace file {path}: {batch.where(bad)}: column {column!r} holds {arr[bad].as_py()!r}, "
            f"not {expected}"
        ) from None


def _not_numeric(arr: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    floats = pc.cast(arr, pa.string())
    return pc.invert(pc.match_substring_regex(floats, r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"))


def _arrival_ns(path: Path, batch: _Batch, spec: tuple[str, Kind]) -> np.ndarray:
    """The arrival column as int64 nanoseconds (absolute, in the trace's own origin)."""
    column, kind = spec
    arr = batch.columns["arrival"]
    where = f"trace file {path}: "
    if kind == "datetime" and not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        if not pa.types.is_timestamp(arr.type):
            arr = _parse_datetimes(path, batch, arr, column)
        if arr.null_count:
            bad = _first(arr.is_null())
            raise WorkloadError(f"{where}{batch.where(bad)}: column {column!r} is empty; give a timestamp")
        return arr.cast(pa.timestamp("ns", tz=arr.type.tz)).cast(pa.int64()).to_numpy()
    arr = _as_numbers(path, batch, arr, column, "a time in seconds; fix that row")
    if arr.null_count:
        bad = _first(arr.is_null())
        raise WorkloadError(
            f"{where}{batch.where(bad)}: column {column!r} is empty or NaN; give an arrival time"
        )
    values = arr.to_numpy().astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        raise WorkloadError(
            f"{where}{batch.where(int(np.argmin(finite)))}: column {column!r} is not finite; "
            "give an arrival time"
        )
    scale = 1e6 if kind == "ms" else 1e9  # numeric datetimes are taken as seconds
    big = np.abs(values) * scale > 9e18  # beyond int64 nanoseconds (~285 years)
    if big.any():
        unit = "milliseconds" if kind == "ms" else "seconds"
        raise WorkloadError(
            f"{where}{batch.where(int(np.argmax(big)))}: column {column!r} is {values[big][0]:g}, "
            f"too large for a time in {unit}; check the unit"
        )
    return np.rint(values * scale).astype(np.int64)


def _parse_datetimes(path: Path, batch: _Batch, arr: pa.Array, column: str) -> pa.Array:
    """Parse ISO-8601 strings (any fractional digits; naive, or with an offset -> UTC)."""
    import pyarrow.compute as pc

    for target in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
        try:
            return pc.cast(arr, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    for i, value in enumerate(arr.to_pylist()):
        if value is None:
            continue
        ok = False
        for target in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
            try:
                pc.cast(pa.array([value]), target)
                ok = True
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        if not ok:
            raise WorkloadError(
                f"trace file {path}: {batch.where(i)}: column {column!r} holds {value!r}, not a "
                "timestamp like 2023-11-16 18:15:46.6805900; fix that row"
            )
    raise WorkloadError(
        f"trace file {path}: column {column!r} mixes timestamps with and without UTC offsets; use one style"
    )


def _ids_list(path: Path, batch: _Batch, role: str, roles: dict[str, tuple[str, Kind]]) -> pa.ListArray:
    """A list-of-ints column (token ids or hash ids) as a compact list<int64> ListArray."""
    arr = batch.columns[role]
    column = roles[role][0]
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        try:
            return compact_list(arr.cast(pa.list_(pa.int64())))  # type: ignore[return-value]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise WorkloadError(
                f"trace file {path}: column {column!r} must hold lists of integers ({exc})"
            ) from None
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise WorkloadError(
            f"trace file {path}: column {column!r} has type {arr.type}; give lists of integer ids"
        )
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim(arr, characters="[]() \t")
    parts = pc.split_pattern_regex(trimmed, r"[,\s]+")
    values = pc.list_flatten(parts)
    parent = pc.list_parent_indices(parts)
    keep = pc.not_equal(values, "")
    values, parent = values.filter(keep), parent.filter(keep)
    try:
        ints = pc.cast(values, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = _first(pc.invert(pc.match_substring_regex(values, r"^[-+]?\d+$")))
        row = int(parent[bad].as_py())
        raise WorkloadError(
            f"trace file {path}: {batch.where(row)}: column {column!r} holds {arr[row].as_py()!r}; "
            'write token ids as a list like "[1, 100, 101]"'
        ) from None
    counts = np.bincount(parent.to_numpy(), minlength=len(arr))
    offsets = np.zeros(len(arr) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), ints)


# --- containers ------------------------------------------------------------------------------


class _Backend:
    """Reads raw columns of one container type in bounded batches."""

    column_names: list[str]

    def check_not_empty(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def batches(self, roles: dict[str, tuple[str, Kind]]) -> Iterator[_Batch]:  # pragma: no cover
        raise NotImplementedError


def _arrow_message(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class _CsvBackend(_Backend):
    """CSV via pyarrow.csv.open_csv with explicit column types (so every block agrees)."""

    _TYPES: dict[str, pa.DataType] = {
        "count": pa.float64(), "s": pa.float64(), "ms": pa.float64(), "int": pa.float64(),
        "datetime": pa.string(), "id": pa.string(), "list": pa.string(),
    }  # fmt: skip

    def __init__(self, path: Path, head: bytes) -> None:
        self.path = path
        first = head.decode("utf-8-sig", errors="replace").splitlines()[0]
        self.delimiter = "\t" if "\t" in first and "," not in first else ","
        import csv

        self._raw = next(csv.reader([first], delimiter=self.delimiter))
        self.column_names = [c.strip() for c in self._raw]

    def check_not_empty(self) -> None:
        with self.path.open("rb") as handle:
            handle.readline()
            for line in handle:
                if line.strip():
                    return
        raise WorkloadError(f"trace file {self.path} has a header but no rows; add requests")

    def batches(self, roles: dict[str, tuple[str, Kind]]) -> Iterator[_Batch]:
        raw = {c.strip(): c for c in self._raw}
        wanted = {role: (raw[col], kind) for role, (col, kind) in roles.items()}
        include = list(dict.fromkeys(c for c, _ in wanted.values()))
        types = {c: self._TYPES[k] for c, k in wanted.values()}
        import pyarrow.csv as pacsv

        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
                convert_options=pacsv.ConvertOptions(
                    include_columns=include, column_types=types, strings_can_be_null=True
                ),
            )
            row0 = 0
            for rb in reader:
                cols = {role: rb.column(c) for role, (c, _) in wanted.items()}
                yield _Batch(cols, row0, None)
                row0 += rb.num_rows
        except (pa.ArrowInvalid, OSError, UnicodeError) as exc:
            raise WorkloadError(self._diagnose(wanted, exc)) from None

    def _diagnose(self, wanted: dict[str, tuple[str, Kind]], exc: Exception) -> str:
        """Find the first bad row with the csv module (slow, only after a failure)."""
        import csv

        try:
            with self.path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
                reader = csv.reader(handle, delimiter=self.delimiter)
                header = next(reader)
                index = {c: i for i, c in enumerate(header)}
                row = 0
                for fields in reader:
                    if not fields:
                        continue
                    row += 1
                    if len(fields) != len(header):
                        return (
                            f"trace file {self.path}: row {row} has {len(fields)} fields but the "
                            f"header has {len(header)}; fix that row"
                        )
                    for col, kind in wanted.values():
                        problem = _bad_text(fields[index[col]], kind)
                        if problem:
                            return f"trace file {self.path}: row {row}: column {col!r} {problem}"
        except OSError:
            pass
        return f"trace file {self.path} cannot be read as CSV: {_arrow_message(exc)}"


_NULLS = {"", "nan", "null", "none", "n/a", "na", "#n/a", "-nan", "-1.#ind", "1.#qnan"}


def _bad_text(text: str, kind: Kind) -> str | None:
    """Why a CSV field cannot be read as ``kind`` (None if it can, or if it is merely empty)."""
    if text.strip().lower() in _NULLS:
        return None  # nulls are reported with their row by the normaliser
    if kind in ("count", "s", "ms", "int"):
        try:
            float(text)
        except ValueError:
            return f"holds {text!r}, not a number; fix or remove that row"
    if kind == "list":
        items = [t for t in text.strip().strip("[]() \t").replace(",", " ").split() if t]
        if not all(t.lstrip("+-").isdigit() for t in items):
            return f'holds {text!r}; write token ids as a list like "[1, 100, 101]"'
    return None


class _ParquetBackend(_Backend):
    """Parquet via ParquetFile.iter_batches (only the needed columns)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise WorkloadError(
                f"trace file {path} is not a readable parquet file ({_arrow_message(exc)})"
            ) from None
        self.column_names = list(self.file.schema_arrow.names)

    def check_not_empty(self) -> None:
        if self.file.metadata.num_rows == 0:
            raise WorkloadError(f"trace file {self.path} has no rows; add requests")

    def batches(self, roles: dict[str, tuple[str, Kind]]) -> Iterator[_Batch]:
        include = list(dict.fromkeys(c for c, _ in roles.values()))
        row0 = 0
        try:
            for rb in self.file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=include):
                yield _Batch({role: rb.column(c) for role, (c, _) in roles.items()}, row0, None)
                row0 += rb.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise WorkloadError(
                f"trace file {self.path}: parquet read failed near row {row0 + 1} "
                f"({_arrow_message(exc)}); check the file"
            ) from None


class _JsonlBackend(_Backend):
    """JSON Lines read in blocks of whole lines, each parsed by pyarrow.json."""

    def __init__(self, path: Path) -> None:
        self.path = path
        first = self._first_object()
        self.column_names = list(first)
        self._first = first

    def _first_object(self) -> dict[str, Any]:
        with self.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except (ValueError, UnicodeError) as exc:
                        raise WorkloadError(
                            f"trace file {self.path}: line {number} is not valid JSON ({exc})"
                        ) from None
                    if not isinstance(obj, dict):
                        raise WorkloadError(
                            f"trace file {self.path}: line {number} is not a JSON object; "
                            "write one object per line"
                        )
                    return obj
        raise WorkloadError(f"trace file {self.path} is empty; add requests")

    def check_not_empty(self) -> None:
        return None  # _first_object found a row

    def _types(self, roles: dict[str, tuple[str, Kind]]) -> dict[str, pa.DataType]:
        types: dict[str, pa.DataType] = {}
        for col, kind in roles.values():
            if kind in ("count", "s", "ms", "int"):
                types[col] = pa.float64()
            elif kind == "list":
                types[col] = pa.list_(pa.int64())
            elif kind == "id":
                value = self._first.get(col)
                integral = isinstance(value, int) and not isinstance(value, bool)
                types[col] = pa.int64() if integral else pa.string()
            else:
                value = self._first.get(col)
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                types[col] = pa.float64() if numeric else pa.string()
        return types

    def batches(self, roles: dict[str, tuple[str, Kind]]) -> Iterator[_Batch]:
        types = self._types(roles)
        schema = pa.schema(list(types.items()))
        row0 = 0
        for line0, block in self._blocks():
            try:
                table = _parse_json(block, schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise WorkloadError(self._diagnose(block, line0, types, exc)) from None
            lines = self._line_numbers(block, line0, table.num_rows)
            cols = {role: _one_array(table.column(c)) for role, (c, _) in roles.items()}
            yield _Batch(cols, row0, lines)
            row0 += table.num_rows

    def _blocks(self) -> Iterator[tuple[int, bytes]]:
        """Blocks of whole lines, with the 1-based line number of each block's first line."""
        line0 = 1
        carry = b""
        with self.path.open("rb") as handle:
            while True:
                data = handle.read(JSONL_BLOCK_BYTES)
                if not data:
                    break
                buf = carry + data
                cut = buf.rfind(b"\n")
                if cut < 0:
                    carry = buf
                    continue
                block, carry = buf[: cut + 1], buf[cut + 1 :]
                if block.strip():
                    yield line0, block
                line0 += block.count(b"\n")
        if carry.strip():
            yield line0, carry + b"\n"

    @staticmethod
    def _line_numbers(block: bytes, line0: int, rows: int) -> np.ndarray:
        nlines = block.count(b"\n")
        if nlines == rows:
            return np.arange(line0, line0 + rows)
        filled = [i for i, line in enumerate(block.split(b"\n")[:nlines]) if line.strip()]
        return line0 + np.asarray(filled[:rows], dtype=np.int64)

    def _diagnose(self, block: bytes, line0: int, types: dict[str, pa.DataType], exc: Exception) -> str:
        """Find the first bad line of a block that pyarrow refused (only after a failure)."""
        for offset, line in enumerate(block.split(b"\n")):
            if not line.strip():
                continue
            number = line0 + offset
            try:
                obj = json.loads(line)
            except (ValueError, UnicodeError) as err:
                return f"trace file {self.path}: line {number} is not valid JSON ({err}); fix it"
            if not isinstance(obj, dict):
                return f"trace file {self.path}: line {number} is not a JSON object; fix it"
            for col, typ in types.items():
                value = obj.get(col)
                if value is None:
                    continue
                if not _json_fits(value, typ):
                    return (
                        f"trace file {self.path}: line {number}: field {col!r} is {value!r}, "
                        f"expected {_json_kind(typ)} like the first line; fix that line"
                    )
        return f"trace file {self.path} cannot be read as JSONL: {_arrow_message(exc)}"


def _parse_json(block: bytes, schema: pa.Schema) -> pa.Table:
    """Parse whole JSON lines; 1 MB parser blocks (parallel), or the whole block if a line is
    longer than that."""
    import pyarrow.json as pajson

    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        return pajson.read_json(
            BytesIO(block), read_options=pajson.ReadOptions(block_size=1 << 20), parse_options=parse
        )
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
    options = pajson.ReadOptions(block_size=len(block) + 1)
    return pajson.read_json(BytesIO(block), read_options=options, parse_options=parse)


def _json_fits(value: Any, typ: pa.DataType) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if pa.types.is_floating(typ):
        return number
    if pa.types.is_integer(typ):
        return isinstance(value, int) and not isinstance(value, bool)
    if pa.types.is_list(typ):
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return isinstance(value, str)


def _json_kind(typ: pa.DataType) -> str:
    if pa.types.is_floating(typ):
        return "a number"
    if pa.types.is_integer(typ):
        return "an integer"
    if pa.types.is_list(typ):
        return "a list of integers"
    return "a string"


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0:
        return pa.array([], type=column.type)
    return pa.concat_arrays(column.chunks)


__all__ = ["TraceFormat", "TraceSource", "open_trace"]
