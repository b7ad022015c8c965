"""``kavier.workload.download``: remote traces fetched from a local HTTP server into the cache
folder, atomically, checksum verified or recorded; failures are one-line errors."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kavier.errors import WorkloadError
from kavier.workload import download, traces
from kavier.workload.download import cache_dir, cached_path
from kavier.workload.readers import open_trace
from kavier.workload.source import concat_chunks
from kavier.workload.traces import NamedTrace

BURSTGPT = (
    "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
    "5,ChatGPT,100,10,110,Conversation log\n"
    "6.5,GPT-4,200,0,200,API log\n"
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder): a local http.server in a thread."""
    served = tmp_path / "served"
    served.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("KAVIER_CACHE_DIR", str(folder))
    return folder


def remote(url: str, sha256: str | None = None) -> NamedTrace:
    return NamedTrace("test-burst", "burst.csv", "2 requests", "a test server", "CC0", url=url, sha256=sha256)


def fetch(trace: NamedTrace, quiet: bool = True):
    assert trace.url is not None
    return download.fetch(trace.name, trace.url, trace.file, trace.sha256, quiet=quiet)


def test_cache_folder_is_the_variable_or_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAVIER_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("KAVIER_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "kavier"


def test_download_then_cached_and_checksum_recorded(server, cache: Path) -> None:
    base, served = server
    (served / "burst.csv").write_text(BURSTGPT, encoding="utf-8")
    trace = remote(f"{base}/burst.csv")
    path = fetch(trace, quiet=True)
    assert path == cache / "traces" / "burst.csv" == cached_path(trace.file)
    assert path.read_text(encoding="utf-8") == BURSTGPT
    digest = hashlib.sha256(BURSTGPT.encode()).hexdigest()
    assert (cache / "traces" / "burst.csv.sha256").read_text().split()[0] == digest
    assert sorted(p.name for p in path.parent.iterdir()) == ["burst.csv", "burst.csv.sha256"]
    (served / "burst.csv").unlink()  # a second use does not download
    assert fetch(trace, quiet=True) == path


def test_a_changed_upstream_file_is_refused_against_the_recorded_checksum(server, cache: Path) -> None:
    base, served = server
    (served / "burst.csv").write_text(BURSTGPT, encoding="utf-8")
    trace = remote(f"{base}/burst.csv")
    path = fetch(trace, quiet=True)
    path.unlink()
    (served / "burst.csv").write_text(BURSTGPT + "7,ChatGPT,1,1,2,API log\n", encoding="utf-8")
    with pytest.raises(WorkloadError, match="sha256") as info:
        fetch(trace, quiet=True)
    assert "\n" not in str(info.value)
    assert not path.exists() and not list(path.parent.glob("*.part"))


def test_registry_checksum_is_verified(server, cache: Path) -> None:
    base, served = server
    (served / "burst.csv").write_text(BURSTGPT, encoding="utf-8")
    good = hashlib.sha256(BURSTGPT.encode()).hexdigest()
    assert fetch(remote(f"{base}/burst.csv", good), quiet=True).is_file()
    assert not (cache / "traces" / "burst.csv.sha256").exists()  # nothing to record
    (cache / "traces" / "burst.csv").unlink()
    with pytest.raises(WorkloadError, match="expected 0000"):
        fetch(remote(f"{base}/burst.csv", "0" * 64), quiet=True)
    assert not any((cache / "traces").iterdir())


def test_http_and_network_failures_are_one_line(server, cache: Path) -> None:
    base, _ = server
    with pytest.raises(WorkloadError, match="HTTP 404") as info:
        fetch(remote(f"{base}/missing.csv"), quiet=True)
    assert "\n" not in str(info.value) and "--trace" in str(info.value)
    with pytest.raises(WorkloadError, match="cannot download trace test-burst"):
        fetch(remote("http://127.0.0.1:9/burst.csv"), quiet=True)  # nothing listens on port 9
    assert not list((cache / "traces").iterdir())


def test_a_remote_name_resolves_to_its_download(server, cache: Path, monkeypatch) -> None:
    base, served = server
    (served / "burst.csv").write_text(BURSTGPT, encoding="utf-8")
    monkeypatch.setitem(traces.REMOTE_TRACES, "test-burst", remote(f"{base}/burst.csv"))
    source = open_trace("test-burst")
    assert source.name == "burstgpt"
    chunk = concat_chunks(source.chunks(10))
    assert chunk.num_input_tokens.tolist() == [100, 200]
    assert chunk.arrival_s.tolist() == [0.0, 1.5]


def test_registry_entries_are_complete() -> None:
    for trace in traces.REMOTE_TRACES.values():
        assert trace.url and trace.url.startswith("https://")
        assert trace.licence and trace.source and trace.file
        assert trace.sha256 is None or len(trace.sha256) == 64
