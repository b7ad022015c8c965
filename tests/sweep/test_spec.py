"""``kavier.sweep.spec``: axes expansion, relative paths, validation before running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kavier.errors import ScenarioError
from kavier.sweep import load_sweep, plan_runs, run_sweep
from tests.cli_helper import kavier
from tests.sweep.helpers import write


def test_product_is_cartesian_first_axis_slowest_with_stable_ids(tmp_path):
    path = write(
        tmp_path,
        """
[axes]
gpu = ["A100-80GB", "H100-SXM"]
replicas = [2, 4, 8]
prefix_cache = ["off", "block"]
seed = [1, 2]
""",
    )
    spec = load_sweep(path)
    runs = plan_runs(spec, tmp_path / "runs")
    assert len(runs) == 2 * 3 * 2 * 2
    assert spec.axis_names == ["gpu", "replicas", "prefix_cache", "seed"]
    assert runs[0].params == {"gpu": "A100-80GB", "replicas": 2, "prefix_cache": "off", "seed": 1}
    assert runs[1].params["seed"] == 2 and runs[2].params["prefix_cache"] == "block"
    assert runs[-1].params == {"gpu": "H100-SXM", "replicas": 8, "prefix_cache": "block", "seed": 2}
    assert runs[7].run_id == "0007-gpu=A100-80GB_replicas=4_prefix_cache=block_seed=2"
    combos = {tuple(r.params.values()) for r in runs}
    assert len(combos) == len(runs)
    # Each run's scenario holds base + its axis values, and its folder under runs/.
    assert runs[7].scenario.replicas == 4 and runs[7].scenario.workload == "poisson"
    assert Path(runs[7].scenario.output_folder) == tmp_path / "runs" / runs[7].run_id
    again = plan_runs(load_sweep(path), tmp_path / "runs")
    assert [r.run_id for r in again] == [r.run_id for r in runs]


def test_zip_mode_explicit_runs_base_table_and_yaml(tmp_path):
    yaml_path = tmp_path / "sweep.yaml"
    yaml_path.write_text(
        "base:\n  workload: poisson\n  num_requests: 20\nmode: zip\n"
        "axes:\n  gpu: [A10, H100-SXM]\n  seed: [3, 4]\n"
        "runs:\n  - {gpu: L4, router: round_robin}\n",
        encoding="utf-8",
    )
    spec = load_sweep(yaml_path)
    runs = plan_runs(spec)
    assert [r.params for r in runs] == [
        {"gpu": "A10", "seed": 3},
        {"gpu": "H100-SXM", "seed": 4},
        {"gpu": "L4", "router": "round_robin"},
    ]
    assert spec.axis_names == ["gpu", "seed", "router"]
    assert all(r.scenario.num_requests == 20 for r in runs)
    assert runs[2].scenario.seed == 0  # base value where an explicit run sets no seed


def test_relative_paths_and_base_file_resolve_against_the_sweep_file(tmp_path):
    folder = tmp_path / "exp"
    (folder / "traces").mkdir(parents=True)
    trace = folder / "traces" / "t.csv"
    trace.write_text(
        "num_input_tokens,num_output_tokens,ts\n"
        + "".join(f"{100 + i},{10 + i},{i * 0.5}\n" for i in range(10))
    )
    (folder / "scenario.toml").write_text('llm = "Llama-3-8B"\ngpu = "A10"\nopendc = false\n')
    sweep = folder / "sweep.toml"
    sweep.write_text('base = "scenario.toml"\ntrace = "traces/t.csv"\n[axes]\nreplicas = [1, 2]\n')
    other_cwd = tmp_path / "elsewhere"
    other_cwd.mkdir()
    res = kavier("sweep", sweep, "--out", "res", "-q", "--workers", "1", cwd=other_cwd)
    assert res.returncode == 0, res.stderr
    stored = json.loads((other_cwd / "res" / "runs" / "0001-replicas=2" / "scenario.json").read_text())
    assert Path(stored["trace"]) == trace and stored["gpu"] == "A10" and stored["replicas"] == 2
    manifest = json.loads((other_cwd / "res" / "sweep.json").read_text())
    assert manifest["axes"] == ["replicas"] and manifest["mode"] == "product" and manifest["num_runs"] == 2
    assert manifest["base"]["trace"] == str(trace) and manifest["base"]["llm"] == "Llama-3-8B"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[axes]\nreplicaz = [1, 2]\n", "axis 'replicaz' is not a scenario key (did you mean replicas"),
        ("[axes]\nreplicas = [1, 0]\n", "axis replicas = 0 (run 0001-replicas=0)"),
        ('[axes]\ngpu = ["A10", "H100-SXMX"]\n', "axis gpu = 'H100-SXMX': unknown GPU"),
        ('[axes]\nregion = ["NL", "XX"]\n', "axis region = 'XX': unknown grid region"),
        ('mode = "zip"\n[axes]\ngpu = ["A10", "L4"]\nseed = [1]\n', "zip' needs axes of equal length"),
        ("[axes]\nseed = 3\n", "axis seed = 3: give a list"),
        ('[axes]\noutput_folder = ["a"]\n', "output_folder is set by the sweep"),
    ],
)
def test_every_run_is_validated_before_anything_runs(tmp_path, body, needle):
    path = write(tmp_path, body)
    with pytest.raises(ScenarioError) as info:
        run_sweep(path, tmp_path / "out", workers=1)
    message = str(info.value)
    assert needle in message and str(path) in message and "\n" not in message
    assert not (tmp_path / "out").exists()  # nothing was written
