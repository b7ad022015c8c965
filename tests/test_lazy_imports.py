"""Start-up: modules a thesis run of a parquet trace does not need stay unimported."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa

UNNEEDED = ("pyarrow.compute", "yaml", "kavier.workload.generators")


def test_thesis_run_of_a_parquet_trace_skips_unneeded_modules(tmp_path):
    trace = tmp_path / "t.parquet"
    import pyarrow.parquet as pq

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
