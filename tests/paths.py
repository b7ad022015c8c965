"""Where things are, for tests in any folder: the repository, its ``src`` and the shared data."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
SRC = ROOT / "src"
SHARED_DATA = ROOT.parent / "shared" / "data"  # ../shared/data beside the project (optional)
