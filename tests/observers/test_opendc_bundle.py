"""``kavier.observers.opendc_bundle``: a run folder's OpenDC topology, experiment and carbon trace."""

import json

from tests.runs import base_and_cached_folders


def test_opendc_bundle_of_a_run_folder(tmp_path):
    folders = base_and_cached_folders(tmp_path)
    topo = json.loads((folders[0] / "opendc" / "topology.json").read_text())
    host = topo["clusters"][0]["hosts"][0]
    assert host["gpuPowerModel"]["modelType"] == "mse"
    assert host["gpuPowerModel"]["idlePower"] == load_a10().idle_power_w
    experiment = json.loads((folders[0] / "opendc" / "experiment.json").read_text())
    assert experiment["topologies"][0]["pathToFile"] == "opendc/topology.json"
    assert (folders[0] / "opendc" / "carbon.parquet").is_file()


def load_a10():
    from kavier.library.catalog import load_catalog

    return load_catalog().gpu("A10")
