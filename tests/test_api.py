"""``kavier.api``: ``run_to_folder`` writes the same bytes for the same scenario, and a run's
scenario.json reruns it."""

import json

import kavier


def test_same_scenario_same_bytes(tmp_path):
    outs = []
    for name in ("a", "b"):
        s = kavier.build_scenario(
            overrides={"preset": "thesis", "num_sessions": 15, "output_folder": str(tmp_path / name)}
        )
        folder, _ = kavier.run_to_folder(s)
        outs.append(folder)
    files = [
        "requests.parquet",
        "timeseries.parquet",
        "opendc/tasks.parquet",
        "opendc/fragments.parquet",
    ]
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    sa = json.loads((outs[0] / "summary.json").read_text())
    sb = json.loads((outs[1] / "summary.json").read_text())
    sa.pop("wall_time_s"), sb.pop("wall_time_s")
    assert sa == sb
    scen_a = json.loads((outs[0] / "scenario.json").read_text())
    scen_b = json.loads((outs[1] / "scenario.json").read_text())
    scen_a.pop("output_folder"), scen_b.pop("output_folder")
    assert scen_a == scen_b


def test_scenario_json_reruns_the_run(tmp_path):
    s = kavier.build_scenario(
        overrides={"preset": "thesis", "num_sessions": 8, "output_folder": str(tmp_path / "a")}
    )
    folder, first = kavier.run_to_folder(s)
    again = kavier.build_scenario(folder / "scenario.json", {"output_folder": str(tmp_path / "b")})
    _, second = kavier.run_to_folder(again)
    first.pop("wall_time_s"), second.pop("wall_time_s")
    assert first == second
