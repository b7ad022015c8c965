"""``kavier.io.sinks``: the folder sink writes each table in order, atomically."""

import numpy as np
import pyarrow.parquet as pq
import pytest


def test_folder_sink_writes_each_file_in_order_on_its_own_thread(tmp_path):
    import pyarrow as pa

    from kavier.io.sinks import FolderSink

    sink = FolderSink(tmp_path / "run")
    names = ("requests", "timeseries", "opendc/tasks", "opendc/fragments", "my_new_output")
    parts = {name: [pa.table({"x": np.arange(i * 5, i * 5 + 5)}) for i in range(4)] for name in names}
    for i in range(4):
        for name in names:
            if name == "opendc/fragments":  # a deferred producer of one table
                sink.write_from(name, lambda t=parts[name][i]: iter([t]))
            else:
                sink.write(name, parts[name][i])
    folder = sink.commit({"name": "t"}, {"ok": True})
    for name in names:
        rel = f"{name}.parquet"
        got = pq.read_table(folder / rel)
        assert got.column("x").to_pylist() == list(range(20)), name
        assert pq.ParquetFile(folder / rel).metadata.num_row_groups == 4  # one group per table


def test_folder_sink_reports_a_writer_error_and_leaves_no_folder(tmp_path):
    import pyarrow as pa

    from kavier.io.sinks import FolderSink

    sink = FolderSink(tmp_path / "run")
    sink.write("requests", pa.table({"x": [1, 2]}))
    sink.write("requests", pa.table({"y": ["a"]}))  # another schema: the writer thread fails
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error, re-raised by close()
        sink.close()
    sink.abort()
    assert not (tmp_path / "run").exists()
    assert not any(tmp_path.iterdir())


def test_documents_stream_into_the_folder_memory_or_nowhere(tmp_path):
    from kavier.io.sinks import FolderSink, MemorySink, NullSink

    sink = FolderSink(tmp_path / "run")
    stream = sink.open_text("trace.json")
    stream.write('{"a": ')
    stream.write("1}")
    stream.close()
    folder = sink.commit({"name": "t"}, {"ok": True})
    assert (folder / "trace.json").read_text(encoding="utf-8") == '{"a": 1}'

    memory = MemorySink()
    stream = memory.open_text("trace.json")
    stream.write("part")
    assert memory.texts() == {"trace.json": "part"}  # readable while open
    stream.write(" two")
    stream.close()
    stream.close()
    assert memory.texts() == {"trace.json": "part two"}  # and after the output closes it

    assert NullSink().open_text("trace.json") is None


def test_an_aborted_run_closes_its_documents_and_leaves_no_folder(tmp_path):
    from kavier.io.sinks import FolderSink

    sink = FolderSink(tmp_path / "run")
    stream = sink.open_text("trace.json")
    stream.write("[")
    sink.abort()
    assert stream.closed
    assert not (tmp_path / "run").exists() and not any(tmp_path.iterdir())


def _dead_pid() -> int:
    """A process id that is not running (a child that has exited and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_new_run_removes_partial_folders_of_dead_processes_only(tmp_path):
    import os

    from kavier.io.sinks import FolderSink

    stale = tmp_path / f".out.partial-{_dead_pid()}"
    stale_old = tmp_path / f".other.old-{_dead_pid()}"
    live = tmp_path / f".other.partial-{os.getppid()}"
    mine = tmp_path / ".notes.partial-x"
    for folder in (stale, stale_old, live, mine):
        folder.mkdir()
        (folder / "requests.parquet").write_text("")
    sink = FolderSink(tmp_path / "out")
    sink.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, mine.name])


def test_a_temporary_folder_that_cannot_be_made_is_a_one_line_error(tmp_path, monkeypatch):
    from pathlib import Path

    from kavier.errors import KavierError
    from kavier.io.sinks import FolderSink

    real = Path.mkdir

    def refuse(self, *args, **kwargs):
        if ".partial-" in self.name:
            raise PermissionError(1, "Operation not permitted")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(KavierError, match=r"^cannot create output folder .*out: Operation not permitted$"):
        FolderSink(tmp_path / "out")
