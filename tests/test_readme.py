"""README.md as a newcomer meets it: every command block runs as printed.

Every ```bash / ```sh / ```console block and every ```python block of README.md runs, in README
order, in one temporary folder that holds a copy of ``examples/`` (so relative paths work and
later blocks may use the folders earlier ones wrote), with this tree's ``kavier`` first on the
PATH. Each command must exit 0 without a traceback. The runs are scaled down only by
``KAVIER_MAX_REQUESTS`` (every workload cut to its first requests), and ``KAVIER_CACHE_DIR``
points into the temporary folder. Skipped, by rule (the README says so too):

- ``pip install ...`` and ``pytest`` parts of a command (the test runs inside the installed
  environment, and is itself run by ``pytest``);
- commands with ``--backend ray`` when Ray is not installed (an optional extra).

```toml blocks are checked too: a scenario example must build, a sweep example must plan.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kavier.scenario import build_scenario
from kavier.sweep.spec import load_sweep, plan_runs
from tests.paths import ROOT, SRC

README = ROOT / "README.md"
SCALE_VARIABLE = "KAVIER_MAX_REQUESTS"
SCALE = "200"  # requests per run in this test
SHELLS = ("bash", "sh", "console")


def blocks(language: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """(line number, language, text) of every fenced block of README.md in one of ``language``."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        if match.group(1) in language:
            found.append((text[: match.start()].count("\n") + 1, match.group(1), match.group(2)))
    return found


def commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, ``$ `` prompts and skipped parts removed."""
    joined = re.sub(r"\s*\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = line.strip().removeprefix("$ ")
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("&&")]
        kept = [p for p in parts if not re.match(r"(pip|python -m pip) install\b|pytest\b", p)]
        if "--backend ray" in line and importlib.util.find_spec("ray") is None:
            continue
        if kept:
            out.append(" && ".join(kept))
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A folder with a copy of examples/, and the environment the commands run in."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", folder / "examples")
    shim = folder / ".bin"
    shim.mkdir()
    (shim / "kavier").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m kavier "$@"\n', encoding="utf-8")
    (shim / "kavier").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        SCALE_VARIABLE: SCALE,
        "KAVIER_CACHE_DIR": str(folder / ".cache"),
        "MPLBACKEND": "Agg",
        "COLUMNS": "120",
    }
    return folder, env


def run(command: list[str] | str, folder: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        command,
        shell=isinstance(command, str),
        executable="/bin/bash" if isinstance(command, str) else None,
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    shown = command if isinstance(command, str) else "python block"
    assert result.returncode == 0, f"{shown}\nexit {result.returncode}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, f"{shown}\n{result.stderr[-2000:]}"


CODE = blocks(SHELLS + ("python",))


@pytest.mark.parametrize(("line", "kind", "text"), CODE, ids=[f"line{n}" for n, _, _ in CODE])
def test_readme_block_runs_as_printed(line: int, kind: str, text: str, workspace) -> None:
    folder, env = workspace
    if kind == "python":
        run([sys.executable, "-c", text], folder, env)
        return
    for command in commands(text):
        run(command, folder, env)


def test_readme_has_the_blocks_the_newcomer_needs() -> None:
    shell = " ".join(t for _, _, t in blocks(SHELLS))
    assert len(CODE) >= 10
    for needed in ("kavier run", "kavier sweep examples/sweep.toml", "kavier report", "kavier plan"):
        assert needed in shell
    # no example names a trace file a newcomer lacks: only built-in names or files made before
    for trace in re.findall(r"--trace (\S+)", shell):
        assert "." not in trace, trace
    text = README.read_text(encoding="utf-8")
    assert SCALE_VARIABLE in text and "pip install" in text


def test_readme_skip_rules() -> None:
    assert commands("pip install -e . && kavier run   # c\n") == ["kavier run   # c"]
    assert commands("pip install -e '.[dev]' && pytest\n") == []
    assert commands("kavier a \\\n   --b 1\n$ kavier c\n") == ["kavier a --b 1", "kavier c"]


TOML = blocks(("toml",))


@pytest.mark.parametrize(("line", "kind", "text"), TOML, ids=[f"line{n}" for n, _, _ in TOML])
def test_readme_toml_examples_load(line: int, kind: str, text: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KAVIER_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "example.toml"
    path.write_text(text, encoding="utf-8")
    if "[axes]" in text:
        runs = plan_runs(load_sweep(path))
        assert len(runs) > 1
    else:
        assert build_scenario(path).trace
