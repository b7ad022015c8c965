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


def test_a_gpu_without_cores_says_how_to_export(tmp_path):
    """OpenDC's gpu_capacity is cores x clock: a user GPU without them is a one-line error that
    names the two fields and --no-opendc, and the run leaves no output folder."""
    from tests.cli_helper import kavier

    catalog = tmp_path / "gpus.toml"
    catalog.write_text(
        "[gpus.Bare-GPU]\nfp16_dense_tflops = 200\nmemory_gib = 48\nmemory_bandwidth_gb_per_s = 1500\n"
        "idle_power_w = 40\nmax_power_w = 400\ninterconnect_gb_per_s = 64\nprice_per_hour_usd = 1.5\n"
        'embodied_co2_kg = 100\nsource = "made up for a test"\n'
    )
    out = tmp_path / "out"
    done = kavier("run", "--catalog", catalog, "--gpu", "Bare-GPU", "--num-requests", "4", "-q", "-o", out)
    assert done.returncode == 2 and not out.exists()
    line = done.stderr.strip().splitlines()[-1]  # after any warning lines, one error line
    assert line.startswith("error: OpenDC export: Bare-GPU has no cores and boost_clock_mhz")
    assert line.endswith("run with --no-opendc")
