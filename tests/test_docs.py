"""The documentation is true: every recipe of docs/extending.md runs, and docs/reference.md is the
code's own reference (regenerated from the registries and the scenario model)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTENDING = ROOT / "docs" / "extending.md"


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


RECIPES = python_blocks(EXTENDING)


def test_extending_has_a_recipe_per_extension_point():
    """Scheduler, router, eviction policy, power model, trace format and output each have one."""
    registries = ["SCHEDULERS", "ROUTERS", "EVICTION_POLICIES", "POWER_MODELS", "TRACE_FORMATS", "OUTPUTS"]
    for name in registries:
        assert any(name in block for block in RECIPES), name


@pytest.mark.parametrize("index", range(len(RECIPES)))
def test_recipe_runs(index, tmp_path):
    """Each recipe is a whole program: registered in a fresh interpreter, used, its assertions hold."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, "-c", RECIPES[index]], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_plugin_module_serves_the_command_line(tmp_path):
    """KAVIER_PLUGINS imports a user's module from the working directory, and its policy runs."""
    recipe = next(block for block in RECIPES if "SCHEDULERS" in block)
    (tmp_path / "my_policies.py").write_text(recipe.split("load = ")[0], encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), KAVIER_PLUGINS="my_policies")
    argv = [sys.executable, "-m", "kavier", "run", "--scheduler", "continuous-watermark"]
    argv += ["--workload", "poisson", "--num-requests", "20", "-o", str(tmp_path / "out"), "-q"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert '"scheduler": "continuous-watermark"' in (tmp_path / "out" / "summary.json").read_text()


def test_reference_page_is_up_to_date():
    """docs/reference.md equals what the code generates (regenerate it when this fails)."""
    from kavier.commands.reference import render

    assert (ROOT / "docs" / "reference.md").read_text(encoding="utf-8") == render(), (
        "run: python -m kavier.commands.reference docs/reference.md"
    )
