"""Start-up: what a run imports and how a quiet run leaves (fresh interpreters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from tests.paths import SRC

UNNEEDED = ("pyarrow.compute", "yaml", "kavier.workload.generators")


def test_thesis_run_of_a_parquet_trace_skips_unneeded_modules(tmp_path):
    trace = tmp_path / "t.parquet"

    pq.write_table(
        pa.table(
            {
                "TIMESTAMP": pa.array([0.0, 0.5, 1.25]),
                "ContextTokens": pa.array([100, 200, 300]),
                "GeneratedTokens": pa.array([10, 20, 30]),
            }
        ),
        trace,
    )
    code = (
        "import sys\n"
        "from kavier.api import run_to_folder\n"
        "from kavier.scenario import build_scenario\n"
        f"s = build_scenario(None, {{'trace': {str(trace)!r}, 'preset': 'thesis', "
        f"'output_folder': {str(tmp_path / 'out')!r}}})\n"
        "run_to_folder(s)\n"
        f"print(sorted(m for m in {UNNEEDED!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_quiet_run_imports_no_rich_and_skips_the_teardown(tmp_path):
    """`kavier run -q` never imports rich and leaves through os._exit (no atexit handlers run),
    yet exits 0 with its folder complete."""
    src = SRC
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('teardown ran'))\n"
        "sys.argv = ['kavier', 'run', '--preset', 'thesis', '--num-sessions', '3', '-q', '-o', sys.argv[1]]\n"
        "from kavier.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-X", "importtime", "-c", code, str(tmp_path / "o")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "teardown ran" not in res.stdout
    assert " rich" not in res.stderr  # -X importtime lists every module imported
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["num_requests"] > 0
