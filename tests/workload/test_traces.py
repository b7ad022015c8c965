"""``kavier.workload.traces``: built-in traces read exactly as their originals, names resolve,
a path wins over a name, an unknown name is a one-line error with a did-you-mean."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kavier.errors import WorkloadError
from kavier.workload.readers import open_trace
from kavier.workload.source import concat_chunks
from kavier.workload.traces import (
    BUILTIN_FOLDER,
    BUILTIN_TRACES,
    REMOTE_TRACES,
    builtin_path,
    check_trace,
    resolve_trace,
)
from tests.cli_helper import kavier

ORIGINALS = {
    "azure-conv-2023": "azure_llm_2023_conv.csv",
    "azure-code-2023": "azure_llm_2023_code.csv",
    "mooncake-conversation": "mooncake_conversation.jsonl",
    "mooncake-synthetic": "mooncake_synthetic.jsonl",
}
COLUMNS = ("request_id", "arrival_s", "num_input_tokens", "num_output_tokens", "session_id", "turn_id")


def test_every_issue_name_is_built_in_and_attributed() -> None:
    assert set(BUILTIN_TRACES) == set(ORIGINALS)
    attribution = (BUILTIN_FOLDER / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for name, trace in BUILTIN_TRACES.items():
        assert builtin_path(name).is_file()
        assert trace.file in attribution and name in attribution
        assert trace.licence in attribution


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_builtin_trace_reads_the_same_requests_as_the_original(name: str, shared_data: Path) -> None:
    built_in = open_trace(name)
    original = open_trace(shared_data / "traces" / ORIGINALS[name])
    assert built_in.name == original.name
    a = concat_chunks(built_in.chunks(5000))
    b = concat_chunks(original.chunks(5000))
    assert len(a) == len(b) > 1000
    for column in COLUMNS:
        assert np.array_equal(getattr(a, column), getattr(b, column)), column
    for column in ("input_tokens", "hash_ids"):
        x, y = getattr(a, column), getattr(b, column)
        assert (x is None) == (y is None)
        assert x is None or x.equals(y), column


def test_an_existing_file_wins_over_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("azure-conv-2023").write_text("num_input_tokens,num_output_tokens\n5,6\n7,8\n", encoding="utf-8")
    source = open_trace("azure-conv-2023")
    assert source.name == "thesis"
    assert concat_chunks(source.chunks(10)).num_input_tokens.tolist() == [5, 7]


def test_unknown_name_is_one_line_with_did_you_mean_and_the_names(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError) as info:
        open_trace("azure_llm_2023_conv.csv")
    message = str(info.value)
    assert "\n" not in message
    assert "did you mean 'azure-conv-2023'" in message
    for name in [*BUILTIN_TRACES, *REMOTE_TRACES]:
        assert name in message
    with pytest.raises(WorkloadError, match="does not exist") as info:
        check_trace(tmp_path / "nothing-like-it.csv")
    assert "did you mean" not in str(info.value)


def test_check_trace_accepts_names_without_downloading(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KAVIER_CACHE_DIR", str(tmp_path))
    for name in [*BUILTIN_TRACES, *REMOTE_TRACES]:
        check_trace(name)
    assert not any(tmp_path.iterdir())
    assert resolve_trace("mooncake-synthetic") == builtin_path("mooncake-synthetic")


def test_cli_runs_a_built_in_trace_and_lists_the_traces(tmp_path: Path) -> None:
    res = kavier("library", "--traces")
    assert res.returncode == 0, res.stderr
    for name in BUILTIN_TRACES:
        assert name in res.stdout
    assert "Apache-2.0" in res.stdout and "CC-BY-4.0" in res.stdout and "KAVIER_CACHE_DIR" in res.stdout
    res = kavier("run", "--trace", "mooncake-conconversation", "-o", tmp_path / "x", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "did you mean 'mooncake-conversation'" in res.stderr


def test_builtin_files_are_in_the_wheel_and_sdist_selection() -> None:
    """hatchling ships everything under src/kavier that git does not ignore."""
    root = Path(__file__).resolve().parents[2]
    ignore = (root / ".gitignore").read_text(encoding="utf-8")
    assert "parquet" not in ignore
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert 'packages = ["src/kavier"]' in pyproject
    assert all(os.path.getsize(builtin_path(n)) < 1_000_000 for n in BUILTIN_TRACES)
