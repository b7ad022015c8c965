"""Run ``python -m kavier`` from this tree in a subprocess (one helper for every CLI test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.paths import SRC


def kavier(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``kavier ARGS...`` with this tree's ``src`` first on PYTHONPATH; text output captured."""
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "kavier", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )
