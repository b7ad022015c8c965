"""``kavier.io.opendc_experiment``: OpenDC's field names, the values passed in, portable paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kavier.errors import ScenarioError
from kavier.io.opendc import HOST_CPU_CAPACITY_MHZ, tasks_table
from kavier.io.opendc_experiment import (
    OPENDC_POWER_MODELS,
    opendc_power_model,
    write_experiment,
    write_topology,
)

MIB = 1024**2


# Field names OpenDC's kotlinx-serialization specs declare (TopologySpecs.kt; its TopologyReader uses a
# strict Json, so any other key would make OpenDC reject the file).
TOPOLOGY_KEYS = {"clusters"}


CLUSTER_KEYS = {"name", "count", "hosts", "powerSource", "battery"}


HOST_KEYS = {
    "name", "cpu", "count", "memory", "gpu", "cpuPowerModel", "gpuPowerModel",
    "cpuDistributionPolicy", "gpuDistributionPolicy",
}  # fmt: skip


CPU_KEYS = {"modelName", "vendor", "arch", "count", "coreCount", "coreSpeed"}


MEMORY_KEYS = {"modelName", "vendor", "arch", "memorySize", "memorySpeed"}


GPU_KEYS = {
    "count", "coreCount", "coreSpeed", "memorySize", "memoryBandwidth", "vendor", "modelName",
    "architecture", "virtualizationOverHeadModel",
}  # fmt: skip


POWER_MODEL_KEYS = {"modelType", "power", "maxPower", "idlePower", "calibrationFactor", "asymUtil", "dvfs"}


POWER_SOURCE_KEYS = {"name", "maxPower", "carbonTracePath"}


OPENDC_MODEL_TYPES = {"constant", "sqrt", "linear", "square", "cubic", "mse", "asymptotic"}


# ExperimentSpec.kt and the specs it holds.
EXPERIMENT_KEYS = {
    "id", "name", "outputFolder", "initialSeed", "runs", "exportModels", "computeExportConfig",
    "maxNumFailures", "topologies", "workloads", "allocationPolicies", "failureModels", "checkpointModels",
}  # fmt: skip


A10 = {
    "num_hosts": 3,
    "gpus_per_host": 4,
    "gpu_name": "A10",
    "gpu_capacity_mhz": 9216 * 1695.0,
    "gpu_cores": 9216,
    "gpu_memory_bytes": 24 * 1024**3,
    "idle_power_w": 15.0,
    "max_power_w": 150.0,
}


def mib(size: str) -> int:
    number, unit = size.split()
    assert unit == "MiB"
    return int(number)


def topology(tmp_path: Path, **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        **A10,
        "power_model": "linear",
        "calibration_factor": None,
        "asym_util": None,
        "carbon_trace_path": None,
    }
    args.update(over)
    path = tmp_path / "opendc" / "topology.json"
    write_topology(path, **args)
    return json.loads(path.read_text())


def test_topology_has_opendc_field_names_and_the_values_passed_in(tmp_path: Path) -> None:
    doc = topology(tmp_path, carbon_trace_path="carbon/nl.parquet")
    assert set(doc) <= TOPOLOGY_KEYS
    (cluster,) = doc["clusters"]
    assert set(cluster) <= CLUSTER_KEYS
    (host,) = cluster["hosts"]
    assert set(host) <= HOST_KEYS
    assert set(host["cpu"]) <= CPU_KEYS and set(host["memory"]) <= MEMORY_KEYS
    assert set(host["gpu"]) <= GPU_KEYS
    assert set(host["gpuPowerModel"]) <= POWER_MODEL_KEYS and set(host["cpuPowerModel"]) <= POWER_MODEL_KEYS
    assert set(cluster["powerSource"]) <= POWER_SOURCE_KEYS

    assert host["count"] == 3
    gpu = host["gpu"]
    assert gpu["count"] == 4 and gpu["coreCount"] == 9216
    assert gpu["coreSpeed"] == pytest.approx(1695.0)
    assert gpu["coreCount"] * gpu["coreSpeed"] == pytest.approx(A10["gpu_capacity_mhz"])
    assert mib(gpu["memorySize"]) * MIB == A10["gpu_memory_bytes"]
    assert gpu["modelName"] == "A10"
    power = host["gpuPowerModel"]
    assert power["modelType"] == "linear"
    assert power["idlePower"] == 15.0 and power["maxPower"] == 150.0
    # One CPU core per GPU at the capacity each task asks for, drawing nothing, so OpenDC's energy is
    # the GPUs' energy.
    assert host["cpu"] == {"coreCount": 4, "coreSpeed": HOST_CPU_CAPACITY_MHZ}
    assert host["cpuPowerModel"]["modelType"] == "constant" and host["cpuPowerModel"]["power"] == 0.0
    assert mib(host["memory"]["memorySize"]) == 4 * 24 * 1024
    assert cluster["powerSource"] == {"carbonTracePath": "carbon/nl.parquet"}


def test_topology_without_carbon_trace_has_no_power_source(tmp_path: Path) -> None:
    (cluster,) = topology(tmp_path)["clusters"]
    assert "powerSource" not in cluster


def test_tasks_fit_the_hosts(tmp_path: Path) -> None:
    """Each task Kavier exports asks for what one GPU slot of a host offers."""
    (host,) = topology(tmp_path)["clusters"][0]["hosts"]
    rec = {
        "request_id": np.arange(3),
        "arrival_s": np.array([0.0, 1.0, 2.0]),
        "prefill_s": np.array([0.1, 0.2, 0.3]),
        "decode_s": np.array([1.0, 2.0, 3.0]),
    }
    tasks = tasks_table(rec, 0, A10["gpu_capacity_mhz"], int(A10["gpu_memory_bytes"] // MIB)).to_pydict()
    gpu_capacity = host["gpu"]["coreCount"] * host["gpu"]["coreSpeed"]
    host_gpus, host_mem = host["gpu"]["count"], mib(host["memory"]["memorySize"])
    for cap, mem, ngpu, ncpu, cpu_cap in zip(
        tasks["gpu_capacity"], tasks["mem_capacity"], tasks["gpu_count"], tasks["cpu_count"],
        tasks["cpu_capacity"], strict=True,
    ):  # fmt: skip
        assert cap == pytest.approx(gpu_capacity)
        assert ngpu <= host_gpus and mem * host_gpus <= host_mem  # a full host of such tasks fits
        assert ncpu * cpu_cap <= host["cpu"]["coreCount"] * host["cpu"]["coreSpeed"]


@pytest.mark.parametrize(
    ("kavier", "model_type", "dvfs"),
    [
        ("constant", "constant", None),
        ("linear", "linear", None),
        ("square", "square", None),
        ("cubic", "cubic", None),
        ("sqrt", "sqrt", None),
        ("mse", "mse", None),
        ("asymptotic", "asymptotic", False),
        ("asymptotic-dvfs", "asymptotic", True),
    ],
)
def test_power_models_map_to_opendc_model_types(kavier: str, model_type: str, dvfs: bool | None) -> None:
    spec = opendc_power_model(
        kavier, idle_power_w=50.0, max_power_w=300.0, calibration_factor=1.4, asym_util=0.3
    )
    assert spec["modelType"] == model_type and model_type in OPENDC_MODEL_TYPES
    assert set(spec) <= POWER_MODEL_KEYS
    assert spec["idlePower"] == 50.0 and spec["maxPower"] == 300.0
    assert spec["power"] == 300.0  # what OpenDC's constant model draws
    assert spec["calibrationFactor"] == 1.4
    if dvfs is None:
        assert "dvfs" not in spec
    else:
        assert spec["dvfs"] is dvfs and spec["asymUtil"] == 0.3
    assert set(OPENDC_POWER_MODELS) == {
        "constant", "linear", "square", "cubic", "sqrt", "mse", "asymptotic", "asymptotic-dvfs",
    }  # fmt: skip


def test_power_model_errors() -> None:
    with pytest.raises(ScenarioError, match="unknown power model 'quartic'"):
        opendc_power_model("quartic", idle_power_w=1, max_power_w=2)
    with pytest.raises(ScenarioError, match="needs asym_util"):
        opendc_power_model("asymptotic_dvfs", idle_power_w=1, max_power_w=2)
    with pytest.raises(ScenarioError, match="below idle_power_w"):
        opendc_power_model("linear", idle_power_w=200, max_power_w=100)
    assert opendc_power_model("mse", idle_power_w=1, max_power_w=2)["calibrationFactor"] == 1.0


def test_topology_rejects_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="num_hosts"):
        topology(tmp_path, num_hosts=0)
    with pytest.raises(ScenarioError, match="gpus_per_host"):
        topology(tmp_path, gpus_per_host=1.5)
    with pytest.raises(ScenarioError, match="gpu_capacity_mhz"):
        topology(tmp_path, gpu_capacity_mhz=float("nan"))


def test_experiment_has_opendc_field_names_and_relative_paths(tmp_path: Path) -> None:
    out = tmp_path / "run"
    topology(out, carbon_trace_path="opendc/carbon.parquet")
    (out / "opendc" / "tasks.parquet").write_bytes(b"")
    write_experiment(
        out / "experiment.json",
        name="kavier-run",
        topology_file=str(out / "opendc" / "topology.json"),  # absolute: made relative
        workload_folder="opendc",
        carbon_trace_path="opendc/carbon.parquet",
        export_interval_s=60.4,
    )
    doc = json.loads((out / "experiment.json").read_text())
    assert set(doc) <= EXPERIMENT_KEYS
    assert doc["name"] == "kavier-run"
    assert doc["topologies"] == [{"pathToFile": "opendc/topology.json"}]
    assert doc["workloads"] == [{"pathToFile": "opendc", "type": "ComputeWorkload"}]
    assert doc["allocationPolicies"] == [{"type": "prefab", "policyName": "ProvisionedCpuGpuCores"}]
    assert doc["exportModels"] == [{"exportInterval": 60}]
    # The folder can be moved: every path still resolves against the experiment's folder.
    moved = shutil.move(str(out), str(tmp_path / "elsewhere"))
    doc = json.loads((Path(moved) / "experiment.json").read_text())
    assert (Path(moved) / doc["topologies"][0]["pathToFile"]).is_file()
    assert (Path(moved) / doc["workloads"][0]["pathToFile"] / "tasks.parquet").is_file()


def test_export_interval_is_whole_seconds_at_least_one(tmp_path: Path) -> None:
    for given, want in ((0.1, 1), (1.0, 1), (299.6, 300)):
        write_experiment(
            tmp_path / "e.json",
            name="x",
            topology_file="opendc/topology.json",
            workload_folder="opendc",
            carbon_trace_path=None,
            export_interval_s=given,
        )
        assert json.loads((tmp_path / "e.json").read_text())["exportModels"][0]["exportInterval"] == want
    with pytest.raises(ScenarioError, match="export_interval_s"):
        write_experiment(
            tmp_path / "e.json",
            name="x",
            topology_file="t.json",
            workload_folder="w",
            carbon_trace_path=None,
            export_interval_s=0,
        )


def test_experiment_checks_carbon_trace_against_topology(tmp_path: Path) -> None:
    topology(tmp_path, carbon_trace_path="opendc/nl.parquet")
    with pytest.raises(ScenarioError, match="uses carbon trace opendc/nl.parquet but the experiment names"):
        write_experiment(
            tmp_path / "experiment.json",
            name="x",
            topology_file="opendc/topology.json",
            workload_folder="opendc",
            carbon_trace_path="opendc/de.parquet",
            export_interval_s=1.0,
        )
    assert not (tmp_path / "experiment.json").exists()
