"""Pack a trace file into the compact form of Kavier's built-in traces (for maintainers).

``python -m kavier.workload.pack SOURCE DEST.parquet`` writes SOURCE's columns, with their
original names and values, as zstd-compressed parquet (no dictionary pages: the columns are
numbers and unique timestamps). Azure's ``TIMESTAMP`` strings stay strings, so they are parsed
exactly as in the CSV. The packed file is then read back and compared, request by request, with
the original; any difference is an error and nothing is kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from kavier.errors import WorkloadError


def pack_trace(source: str | Path, dest: str | Path) -> Path:
    """Write ``source`` (a CSV or JSONL trace) to ``dest`` as parquet; verify it reads the same."""
    import pyarrow.parquet as pq

    source, dest = Path(source), Path(dest)
    table = _read_raw(source)
    temp = dest.with_name(dest.name + ".part")
    pq.write_table(table, temp, compression="zstd", compression_level=19, use_dictionary=False)
    try:
        _check_same(source, temp)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    temp.replace(dest)
    return dest


def _read_raw(source: Path) -> pa.Table:
    with source.open("rb") as handle:
        first = handle.read(1 << 10).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"{":
        import pyarrow.json as pajson

        return pajson.read_json(source)
    import pyarrow.csv as pacsv

    strings = {"TIMESTAMP": pa.string(), "session_id": pa.string(), "input_tokens": pa.string()}
    return pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(column_types=strings))


def _check_same(source: Path, packed: Path) -> None:
    from kavier.workload.readers import open_trace
    from kavier.workload.source import concat_chunks

    a = concat_chunks(open_trace(source).chunks(1 << 16))
    b = concat_chunks(open_trace(packed).chunks(1 << 16))
    for name in ("request_id", "arrival_s", "num_input_tokens", "num_output_tokens", "session_id", "turn_id"):
        if not np.array_equal(getattr(a, name), getattr(b, name)):
            raise WorkloadError(f"packing {source} changed column {name}; not written")
    for name in ("input_tokens", "hash_ids"):
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and not x.equals(y)):
            raise WorkloadError(f"packing {source} changed column {name}; not written")


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    if len(sys.argv) != 3:
        sys.exit("usage: python -m kavier.workload.pack SOURCE DEST.parquet")
    print(pack_trace(sys.argv[1], sys.argv[2]))
