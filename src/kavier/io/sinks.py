"""Sinks for a run's tables: in memory (the Python API) or an output folder written atomically.

A sink takes named tables: ``write(name, table)`` appends ``table`` to the output ``name``
(``requests``, ``timeseries``, ``opendc/tasks``, ...; the folder sink writes it to
``<name>.parquet``), ``write_from(name, producer)`` the tables a deferred producer yields, and
``folder`` is where an output may write files of its own (None in memory). An output whose file
is a document rather than a table (the timeline's JSON trace) streams it as text through
``open_text(name)``: the folder sink opens ``<name>`` in the folder, the memory sink keeps the
text under ``name`` (:meth:`MemorySink.texts`), the null sink gives None. A new output is an
observer that writes under a new name; no sink changes.

The folder sink writes into a hidden temporary folder beside the target and renames it into
place only when everything, ``summary.json`` last, has been written; an interrupted run leaves
no folder that looks complete.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from kavier.errors import KavierError

# Snappy, and dictionary encoding only for the request table's few-valued integer columns and
# the OpenDC fragments: on long float columns, even constant ones, building the dictionary costs
# more than snappy's own run compression of the plain values (Marconi-scale time series: 5-15 ms
# more per 1.8 M-row column for a file ~5 % smaller), but a fragment table repeats each
# request's id, duration and usage over thousands of rows at fine export rates, which only
# dictionary run-length encoding keeps small (180 M rows: 7 MiB, plain 233 MiB).
PARQUET_OPTIONS: dict[str, Any] = {"compression": "snappy"}
DICTIONARY_COLUMNS = {
    "replica",
    "session_id",
    "preemptions",
    # OpenDC fragments: long runs of equal ids, durations and usages.
    "id",
    "duration",
    "cpu_usage",
    "gpu_usage",
}
RUN_MARKER = "scenario.json"
# A run folder being written is ``.<name>.partial-<pid>`` beside its target (and the folder it
# replaces briefly ``.<name>.old-<pid>``); one whose process is gone is removed by the next write.
PARTIAL_INFIX = ".partial-"
OLD_INFIX = ".old-"
# A deferred table source: called once, on a writer thread, and its tables written in order.
Producer = Callable[[], Iterable[pa.Table]]
# Rows per parquet row group: a table is written as groups of this many rows (the last shorter).
ROW_GROUP_ROWS = 1 << 17
# Tables queued per writer thread (each up to a row group of every column), and deferred
# producers (each holds only its chunk's request columns until it runs): enough producers that
# the simulation does not wait for the fragment thread, which then catches up meanwhile.
TABLES_IN_FLIGHT = 3
PRODUCERS_IN_FLIGHT = 16
# Write buffer of a document an output streams (open_text): large writes, few system calls.
TEXT_BUFFER_BYTES = 1 << 20


class Sink(Protocol):
    """Where a run's tables go (see the module docstring)."""

    folder: Path | None

    def write(self, name: str, table: pa.Table) -> None:
        """Append ``table`` to the output ``name``."""

    def write_from(self, name: str, producer: Producer) -> None:
        """Append the tables ``producer()`` yields to ``name`` (perhaps later, on another thread)."""

    def open_text(self, name: str) -> TextIO | None:
        """A text stream for the document ``name`` (a file name such as ``timeline.json``), which
        the output writes and closes; None when the sink keeps no documents."""


class NullSink:
    """Discards every table (the ``--baseline`` run only needs its summary)."""

    folder: Path | None = None

    def write(self, name: str, table: pa.Table) -> None:
        pass

    def write_from(self, name: str, producer: Producer) -> None:
        pass

    def open_text(self, name: str) -> TextIO | None:
        return None


class _KeptText(io.StringIO):
    """A memory sink's document: its text stays readable after the output closes it."""

    text = ""

    def close(self) -> None:
        if not self.closed:
            self.text = self.getvalue()
        super().close()


class MemorySink:
    """Keeps every table in memory; ``table(name)`` concatenates the pieces."""

    folder: Path | None = None

    def __init__(self) -> None:
        self.parts: dict[str, list[pa.Table]] = {}
        self._texts: dict[str, _KeptText] = {}

    def write(self, name: str, table: pa.Table) -> None:
        self.parts.setdefault(name, []).append(table)

    def open_text(self, name: str) -> TextIO:
        """Keep the document ``name`` in memory (read it with :meth:`texts`)."""
        stream = self._texts[name] = _KeptText()
        return stream

    def texts(self) -> dict[str, str]:
        """Every document an output wrote, by name (its text so far if not yet closed)."""
        return {
            name: stream.text if stream.closed else stream.getvalue() for name, stream in self._texts.items()
        }

    def write_from(self, name: str, producer: Producer) -> None:
        for table in producer():
            self.write(name, table)

    def table(self, name: str) -> pa.Table | None:
        """All pieces of one output, or None when nothing was produced."""
        parts = self.parts.get(name)
        return pa.concat_tables(parts).combine_chunks() if parts else None

    def tables(self) -> dict[str, pa.Table]:
        """Every output, by name."""
        return {name: self.table(name) for name in self.parts}


def json_safe(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON) with None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON with sorted-free stable key order and a trailing newline."""
    path.write_text(json.dumps(json_safe(data), indent=2) + "\n", encoding="utf-8")


class FolderSink:
    """Streams tables to parquet files in a temporary folder; ``commit`` moves it into place.

    Output ``name`` goes to ``<name>.parquet`` inside the folder (``opendc/tasks`` to
    ``opendc/tasks.parquet``). ``force`` replaces a previous run folder even when it holds files
    Kavier did not write.
    """

    def __init__(self, folder: str | Path, force: bool = False) -> None:
        self.target = Path(folder)
        check_output_folder(self.target, force)
        parent = self.target.parent if str(self.target.parent) else Path(".")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KavierError(f"cannot create output folder {self.target}: {exc.strerror}") from exc
        remove_stale_partials(parent)
        self.tmp = parent / f".{self.target.name}{PARTIAL_INFIX}{os.getpid()}"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        try:
            self.tmp.mkdir(parents=True)
        except OSError as exc:
            raise KavierError(f"cannot create output folder {self.target}: {exc.strerror or exc}") from exc
        self.folder: Path | None = self.tmp
        self._writers: dict[str, pq.ParquetWriter] = {}
        # One background thread per file encodes and writes while the simulation computes the
        # next tables (encoding releases the GIL, so files are written in parallel with each
        # other and with the simulation); each bounded queue keeps a few tables in flight.
        self._queues: dict[str, queue.Queue[pa.Table | Producer | None]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._error: BaseException | None = None
        self._texts: list[TextIO] = []

    def _drain(self, name: str, tables: queue.Queue[pa.Table | Producer | None]) -> None:
        while True:
            item = tables.get()
            if item is None:
                return
            if self._error is not None:
                continue
            try:
                for table in item() if callable(item) else (item,):
                    self._write_now(name, table)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = exc

    def _write_now(self, name: str, table: pa.Table) -> None:
        writer = self._writers.get(name)
        if writer is None:
            dictionary = [c for c in table.column_names if c in DICTIONARY_COLUMNS]
            path = self.tmp / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(
                path,
                table.schema,
                use_dictionary=dictionary,
                **PARQUET_OPTIONS,
            )
            self._writers[name] = writer
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

    def _write(self, name: str, table: pa.Table | Producer, bound: int = TABLES_IN_FLIGHT) -> None:
        if self._error is not None:
            self._raise()
        tables = self._queues.get(name)
        if tables is None:
            tables = self._queues[name] = queue.Queue(maxsize=bound)
            thread = threading.Thread(
                target=self._drain, args=(name, tables), name=f"kavier-writer-{name}", daemon=True
            )
            self._threads[name] = thread
            thread.start()
        tables.put(table)

    def _raise(self) -> None:
        exc = self._error
        if isinstance(exc, OSError):
            raise KavierError(f"cannot write into {self.target}: {exc.strerror or exc}") from exc
        raise exc  # type: ignore[misc]

    def _stop(self) -> None:
        for name, thread in self._threads.items():
            if thread.is_alive():
                self._queues[name].put(None)
        for thread in self._threads.values():
            thread.join()
        self._threads.clear()
        self._queues.clear()

    def write(self, name: str, table: pa.Table) -> None:
        """Queue ``table`` for ``<name>.parquet`` (encoded and written on the file's thread)."""
        self._write(name, table)

    def write_from(self, name: str, producer: Producer) -> None:
        """Write the tables ``producer()`` yields, computing them on the file's writer thread
        (numpy releases the GIL, so they are built in parallel with the simulation)."""
        self._write(name, producer, PRODUCERS_IN_FLIGHT)

    def open_text(self, name: str) -> TextIO:
        """Open ``<name>`` in the (temporary) run folder for an output to stream a document into
        (closed by the output, or by :meth:`close` / :meth:`abort` at the latest)."""
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            stream = open(path, "w", encoding="utf-8", buffering=TEXT_BUFFER_BYTES)  # noqa: SIM115
        except OSError as exc:
            raise KavierError(f"cannot write {name} into {self.target}: {exc.strerror}") from exc
        self._texts.append(stream)
        return stream

    def _close_texts(self) -> None:
        for stream in self._texts:
            if not stream.closed:
                stream.close()
        self._texts.clear()

    def path(self, relative: str) -> Path:
        """Where a file goes inside the (temporary) run folder."""
        return self.tmp / relative

    def close(self) -> None:
        """Finish writing every parquet file (they become readable in the temporary folder)."""
        self._stop()
        if self._error is not None:
            self._raise()
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self._close_texts()

    def commit(self, scenario: dict[str, Any], summary: dict[str, Any]) -> Path:
        """Close the files, write scenario.json and summary.json, and move the folder in place."""
        self.close()
        write_json(self.tmp / RUN_MARKER, scenario)
        write_json(self.tmp / "summary.json", summary)
        if self.target.exists():
            old = self.target.parent / f".{self.target.name}{OLD_INFIX}{os.getpid()}"
            os.replace(self.target, old)
            os.replace(self.tmp, self.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.target)
        return self.target

    def abort(self) -> None:
        """Remove the temporary folder (after an error or an interrupt)."""
        self._error = self._error or RuntimeError("aborted")
        self._stop()
        for writer in self._writers.values():
            with contextlib.suppress(Exception):  # best effort while cleaning up
                writer.close()
        self._writers.clear()
        with contextlib.suppress(Exception):
            self._close_texts()
        shutil.rmtree(self.tmp, ignore_errors=True)


# What a run writes at a run folder's top level: tables, JSON documents and these folders. A run
# replaces its folder as a whole, so anything else found there (a user's notes) would be lost.
RUN_FILE_SUFFIXES = (".parquet", ".json")
RUN_SUBFOLDERS = ("opendc", "plots")


def foreign_entries(folder: Path) -> list[str]:
    """The names at the top of a previous run folder that no Kavier run writes."""
    found = []
    for entry in sorted(folder.iterdir()):
        ours = entry.name in RUN_SUBFOLDERS if entry.is_dir() else entry.suffix in RUN_FILE_SUFFIXES
        if not ours:
            found.append(entry.name)
    return found


def check_output_folder(folder: Path, force: bool = False) -> None:
    """Refuse to replace a folder that is not empty and is not a previous Kavier run, or a
    previous run folder holding files Kavier did not write (unless ``force``)."""
    if folder.exists():
        if not folder.is_dir():
            raise KavierError(f"output folder {folder} is a file; choose a folder path")
        if any(folder.iterdir()) and not (folder / RUN_MARKER).exists():
            raise KavierError(
                f"output folder {folder} exists and is not a Kavier run folder; choose an empty or new folder"
            )
        extra = [] if force else foreign_entries(folder)
        if extra:
            shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
            raise KavierError(
                f"output folder {folder} holds files Kavier did not write ({shown}); a run replaces "
                "the whole folder: move them, choose another folder or pass --force"
            )


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


def remove_stale_partials(parent: Path) -> list[Path]:
    """Remove the hidden ``.<name>.partial-<pid>`` (and ``.old-<pid>``) folders in ``parent``
    whose process is no longer running (left by a killed run); return what was removed."""
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith("."):
            continue
        for infix in (PARTIAL_INFIX, OLD_INFIX):
            stem, found, pid = name.rpartition(infix)
            if found and stem and pid.isdigit() and entry.is_dir() and not _pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
                break
    return removed
