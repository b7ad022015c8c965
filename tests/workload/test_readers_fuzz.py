"""Fuzzing the trace readers: random bytes and random CSV / JSONL / parquet shapes (missing
columns, wrong types, NaN, negative, huge, empty, unicode, BOM) either read or raise the one-line
WorkloadError; never another exception."""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kavier.errors import WorkloadError
from kavier.workload.readers import open_trace

# FUZZ_N=2000 pytest tests/workload/test_readers_fuzz.py searches harder than the default run
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_N", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# every format's columns, in several spellings, and some that belong to none
COLUMNS = [
    "num_input_tokens", "num_output_tokens", "ts", "session_id", "turn_id", "input_tokens",
    "output_tokens", "hash_ids", "TIMESTAMP", "ContextTokens", "GeneratedTokens", "Timestamp",
    "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type", "timestamp",
    "input_length", "output_length", "num_prefill_tokens", "num_decode_tokens", "arrived_at",
    " NUM_INPUT_TOKENS ", "ünïcode", "", "a,b", 'q"uote',
]  # fmt: skip
TEXT_VALUES = [
    "0", "1", "7", "-1", "-0", "3.5", "1e3", "1e30", "1e309", "-1e309", "nan", "NaN", "inf",
    "-inf", "", " ", "null", "None", "abc", "ü", "日本", "\u200b", "[1, 2, 3]", "[]", "[a]",
    "[1,,2]", "(4 5)", "2023-11-16 18:15:46.6805900", "2023-11-16T18:15:46+01:00", "2023-13-45",
    "9" * 30, "-" + "9" * 25, "0x10", "1_000", "+5", "  12  ", '"', "'", "\\", "\t",
]  # fmt: skip
# the column sets of the formats, so that rows reach the value checks
FORMAT_HEADERS = [
    ["num_input_tokens", "num_output_tokens", "ts", "session_id", "turn_id", "input_tokens"],
    ["num_input_tokens", "num_output_tokens", "session_id", "hash_ids"],
    ["TIMESTAMP", "ContextTokens", "GeneratedTokens"],
    ["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"],
    ["timestamp", "input_length", "output_length", "hash_ids"],
    ["arrived_at", "num_prefill_tokens", "num_decode_tokens"],
]
HEADERS = st.one_of(
    st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=7), st.sampled_from(FORMAT_HEADERS)
)
JSON_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(-(2**65), 2**65), st.text(max_size=3), st.none()), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def read_everything(path: Path) -> int:
    """Open and stream the whole trace; only WorkloadError may escape."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            source = open_trace(path)
            total = 0
            for chunk in source.chunks(3):
                assert (chunk.num_input_tokens >= 0).all() and (chunk.num_output_tokens >= 0).all()
                assert all(math.isfinite(a) for a in chunk.arrival_s.tolist())
                total += len(chunk)
            return total
        except WorkloadError as exc:
            assert "\n" not in str(exc).strip(), str(exc)
            return -1


def check(data: bytes, suffix: str = ".csv") -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"trace{suffix}"
        path.write_bytes(data)
        read_everything(path)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([b"", b"\xef\xbb\xbf", b"PAR1", b"{", b"\x1f\x8b"]))
def test_random_bytes(data: bytes, prefix: bytes) -> None:
    check(prefix + data)


@FUZZ
@given(
    header=HEADERS,
    rows=st.lists(st.lists(st.sampled_from(TEXT_VALUES), max_size=8), max_size=6),
    delimiter=st.sampled_from([",", "\t", ";"]),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_random_csv_shapes(
    header: list[str], rows: list[list[str]], delimiter: str, bom: bool, newline: str
) -> None:
    def field(text: str) -> str:
        if any(c in text for c in (delimiter, '"', "\n")) or text != text.strip():
            return '"' + text.replace('"', '""') + '"'
        return text

    lines = [delimiter.join(field(c) for c in header)]
    lines += [delimiter.join(field(v) for v in row) for row in rows]
    check(("\ufeff" if bom else "").encode() + newline.join(lines).encode() + newline.encode())


@FUZZ
@given(
    objects=st.lists(
        st.one_of(
            st.dictionaries(st.sampled_from(COLUMNS), JSON_VALUES, max_size=6),
            HEADERS.flatmap(lambda h: st.fixed_dictionaries(dict.fromkeys(h, JSON_VALUES))),
            JSON_VALUES,
            st.sampled_from(["{", "{}", "not json", "", "[1]", '{"timestamp": 1,}']),
        ),
        min_size=1,
        max_size=6,
    ),
    bom=st.booleans(),
)
def test_random_jsonl_shapes(objects: list, bom: bool) -> None:
    lines = [o if isinstance(o, str) else json.dumps(o) for o in objects]
    if not lines[0].startswith("{"):
        lines.insert(0, json.dumps({"timestamp": 0, "input_length": 1, "output_length": 1}))
    check(("\ufeff" if bom else "").encode() + "\n".join(lines).encode() + b"\n", ".jsonl")


PARQUET_COLUMNS = st.one_of(
    st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), min_size=1, max_size=5),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True)), min_size=1, max_size=5),
    st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=5),
    st.lists(
        st.one_of(st.none(), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3)), min_size=1, max_size=5
    ),
    st.lists(st.booleans(), min_size=1, max_size=5),
)


@FUZZ
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(COLUMNS[:22]), PARQUET_COLUMNS, min_size=1, max_size=5),
        st.sampled_from(FORMAT_HEADERS).flatmap(
            lambda h: st.fixed_dictionaries(dict.fromkeys(h, PARQUET_COLUMNS))
        ),
    )
)
def test_random_parquet_shapes(columns: dict[str, list]) -> None:
    size = min(len(v) for v in columns.values())
    table = pa.table({k: pa.array(v[:size]) for k, v in columns.items()})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.parquet"
        pq.write_table(table, path)
        read_everything(path)


def test_parquet_columns_of_a_non_numeric_type_are_one_line_errors(tmp_path: Path) -> None:
    """Found by the fuzzing above: list columns where numbers or ids belong raised pyarrow's
    ArrowNotImplementedError."""
    cases = {
        "counts": {"num_input_tokens": [[1]], "num_output_tokens": [1]},
        "arrival": {"num_input_tokens": [1], "num_output_tokens": [1], "ts": [[]]},
        "session": {"num_input_tokens": [1], "num_output_tokens": [1], "session_id": [[2]]},
    }
    for name, columns in cases.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table(columns), path)
        try:
            list(open_trace(path).chunks(4))
        except WorkloadError as exc:
            assert "type list" in str(exc) and "\n" not in str(exc)
        else:
            raise AssertionError(f"{name}: no error")
