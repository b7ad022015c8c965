"""OpenDC ``topology.json`` and ``experiment.json`` writers, so OpenDC can replay a Kavier output folder.

Run it from inside the output folder (OpenDC resolves every path against its working directory)::

    cd OUT && OpenDCExperimentRunner --experiment-path experiment.json

Field names: the JSON format of OpenDC's ``opendc-compute-topology`` and ``opendc-experiments-base``
modules (2025 master of https://github.com/atlarge-research/opendc), read from

* ``opendc-compute/opendc-compute-topology/.../specs/TopologySpecs.kt`` (``TopologySpec`` -> ``clusters``;
  ``ClusterJSONSpec``: ``name, count, hosts, powerSource, battery``; ``HostJSONSpec``: ``name, cpu, count,
  memory, gpu, cpuPowerModel, gpuPowerModel, cpuDistributionPolicy, gpuDistributionPolicy``;
  ``CPUJSONSpec``: ``coreCount, coreSpeed`` (+ ``count, modelName, vendor, arch``); ``MemoryJSONSpec``:
  ``memorySize``; ``GPUJSONSpec``: ``count, coreCount, coreSpeed, memorySize, memoryBandwidth, vendor,
  modelName, architecture, virtualizationOverHeadModel``; ``PowerModelSpec``: ``modelType, power, maxPower,
  idlePower, calibrationFactor, asymUtil, dvfs``; ``PowerSourceJSONSpec``: ``name, maxPower,
  carbonTracePath``), and ``TopologyFactories.kt`` at commit 089c449762950b4322c04f73ef7fe0e10af615df
  (one ``GpuModel`` per ``gpu.count``, capacity ``coreCount x coreSpeed``; ``gpuPowerModel`` applies to each
  GPU; ``cpuPowerModel`` to the CPU);
* ``opendc-simulator-compute/.../power/PowerModels`` ``getPowerModel``: ``modelType`` is one of ``constant``
  (draws ``power``), ``sqrt``, ``linear``, ``square``, ``cubic``, ``mse`` (``calibrationFactor``) and
  ``asymptotic`` (``asymUtil``; ``dvfs`` selects the DVFS variant);
* ``opendc-experiments/opendc-experiments-base/.../experiment/specs/ExperimentSpec.kt`` at commit
  867c1af22325f14bac57cc953ee9d4813f42757a (``name, outputFolder, initialSeed, runs, topologies,
  workloads, allocationPolicies, failureModels, maxNumFailures, checkpointModels, exportModels``),
  ``ScenarioTopologySpec`` (``pathToFile``), ``WorkloadSpec`` (``pathToFile, type`` = ``ComputeWorkload``),
  ``allocation/AllocationPolicySpec.kt`` (``{"type": "prefab", "policyName": ...}``), ``ExportModelSpec``
  (``exportInterval``, whole seconds);
* the test resources ``opendc-experiments-base/src/test/resources/topologies/Gpus/single_gpu_full.json``,
  ``topologies/single_1_2000_NL.json`` and ``experiments/experiment_2.json``, which use these names.

Units: OpenDC's unit serializers (``opendc-common/.../units``) read a bare number as MHz for a frequency, W
for a power and MiB for a data size, and accept strings with units. Frequencies and powers are written as
bare numbers (MHz, W: the same meaning in every OpenDC version); memory sizes as ``"N MiB"`` strings, because
older OpenDC documentation described ``memorySize`` in bytes, and a string with a unit cannot be misread.

How a Kavier run maps onto it: each host carries ``gpus_per_host`` GPUs of ``gpu_cores`` cores at
``gpu_capacity_mhz / gpu_cores`` MHz, so one GPU's capacity is ``gpu_capacity_mhz``, the ``gpu_capacity`` of
every task in ``opendc/tasks.parquet``; the fragments' ``gpu_usage`` over it is Kavier's utilisation, which
the ``gpuPowerModel`` (per GPU) turns into power. The host CPU has one core per GPU at
:data:`kavier.io.opendc.HOST_CPU_CAPACITY_MHZ` (each task asks for one such core) and a constant 0 W power
model, so OpenDC's host energy is the GPUs' energy alone, as in Kavier. Host memory is one GPU's memory per
GPU (each task asks for one GPU's memory). The allocation policy is the GPU-aware prefab
``ProvisionedCpuGpuCores``.

Later OpenDC (2026, ``opendc-sdk``/``opendc-cli``) deprecates this format but converts it on read
(``org.opendc.cli.legacy``: same magnitudes, renamed keys), so these files stay usable there.

Paths are written relative (POSIX separators) so the folder can be moved: a relative path is written as
given; an absolute one is made relative to ``base_dir`` (for the experiment, the folder holding it) when it
lies inside, and kept absolute otherwise.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from kavier.errors import ScenarioError
from kavier.io.opendc import HOST_CPU_CAPACITY_MHZ

__all__ = [
    "OPENDC_POWER_MODELS",
    "opendc_power_model",
    "write_experiment",
    "write_topology",
]

MIB = 1024**2

# Kavier power model name -> (OpenDC modelType, dvfs flag or None when the model ignores it).
OPENDC_POWER_MODELS: dict[str, tuple[str, bool | None]] = {
    "constant": ("constant", None),
    "linear": ("linear", None),
    "square": ("square", None),
    "cubic": ("cubic", None),
    "sqrt": ("sqrt", None),
    "mse": ("mse", None),
    "asymptotic": ("asymptotic", False),
    "asymptotic-dvfs": ("asymptotic", True),
}

WORKLOAD_TYPE = "ComputeWorkload"
ALLOCATION_POLICY = {"type": "prefab", "policyName": "ProvisionedCpuGpuCores"}
OUTPUT_FOLDER = "opendc/output"


def _finite(name: str, value: float, *, minimum: float | None = None, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"OpenDC export: {name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ScenarioError(f"OpenDC export: {name} must be finite, got {value!r}")
    if positive and x <= 0:
        raise ScenarioError(f"OpenDC export: {name} must be > 0, got {value!r}")
    if minimum is not None and x < minimum:
        raise ScenarioError(f"OpenDC export: {name} must be >= {minimum}, got {value!r}")
    return x


def _count(name: str, value: int) -> int:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or int(value) != value or value < 1:
        raise ScenarioError(f"OpenDC export: {name} must be a whole number >= 1, got {value!r}")
    return int(value)


def opendc_power_model(
    power_model: str,
    *,
    idle_power_w: float,
    max_power_w: float,
    calibration_factor: float | None = None,
    asym_util: float | None = None,
) -> dict[str, Any]:
    """OpenDC's ``PowerModelSpec`` JSON for a Kavier power model name (powers in W)."""
    key = str(power_model).strip().lower().replace("_", "-")
    if key not in OPENDC_POWER_MODELS:
        raise ScenarioError(
            f"OpenDC export: unknown power model {power_model!r}; "
            f"choose one of {', '.join(OPENDC_POWER_MODELS)}"
        )
    model_type, dvfs = OPENDC_POWER_MODELS[key]
    idle = _finite("idle_power_w", idle_power_w, minimum=0.0)
    peak = _finite("max_power_w", max_power_w, minimum=0.0)
    if peak < idle:
        raise ScenarioError(f"OpenDC export: max_power_w ({peak} W) is below idle_power_w ({idle} W)")
    spec: dict[str, Any] = {
        "modelType": model_type,
        # ``power`` is what the constant model draws; the others ignore it. Kavier's constant model
        # draws the maximum power.
        "power": peak,
        "idlePower": idle,
        "maxPower": peak,
    }
    if calibration_factor is not None:
        spec["calibrationFactor"] = _finite("calibration_factor", calibration_factor, positive=True)
    elif model_type == "mse":
        spec["calibrationFactor"] = 1.0  # OpenDC's default, written out so the file says what it does
    if model_type == "asymptotic":
        if asym_util is None:
            raise ScenarioError(f"OpenDC export: power model {power_model!r} needs asym_util > 0")
        spec["asymUtil"] = _finite("asym_util", asym_util, positive=True)
        spec["dvfs"] = bool(dvfs)
    elif asym_util is not None:
        spec["asymUtil"] = _finite("asym_util", asym_util, positive=True)
    return spec


def _portable(p: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None) -> str:
    """A path for an OpenDC file: relative (POSIX) when possible, see the module docstring."""
    path = Path(p)
    if path.is_absolute() and base_dir is not None:
        try:
            return path.resolve().relative_to(Path(base_dir).resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _write_json(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=4) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def topology_dict(
    *,
    num_hosts: int,
    gpus_per_host: int,
    gpu_name: str,
    gpu_capacity_mhz: float,
    gpu_cores: int,
    gpu_memory_bytes: float,
    idle_power_w: float,
    max_power_w: float,
    power_model: str,
    calibration_factor: float | None,
    asym_util: float | None,
    carbon_trace_path: str | None,
    base_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The topology document :func:`write_topology` writes (see there)."""
    hosts = _count("num_hosts", num_hosts)
    gpus = _count("gpus_per_host", gpus_per_host)
    capacity = _finite("gpu_capacity_mhz", gpu_capacity_mhz, positive=True)
    cores = _count("gpu_cores", gpu_cores)
    memory = _finite("gpu_memory_bytes", gpu_memory_bytes, positive=True)
    gpu_mib = int(memory // MIB)
    if gpu_mib < 1:
        raise ScenarioError(
            f"OpenDC export: gpu_memory_bytes must be at least 1 MiB, got {gpu_memory_bytes!r}"
        )
    model = opendc_power_model(
        power_model,
        idle_power_w=idle_power_w,
        max_power_w=max_power_w,
        calibration_factor=calibration_factor,
        asym_util=asym_util,
    )
    cluster: dict[str, Any] = {
        "name": "Kavier",
        "hosts": [
            {
                "name": f"{gpu_name}-host",
                "count": hosts,
                "cpu": {"coreCount": gpus, "coreSpeed": HOST_CPU_CAPACITY_MHZ},
                "memory": {"memorySize": f"{gpus * gpu_mib} MiB"},
                "cpuPowerModel": {"modelType": "constant", "power": 0.0, "idlePower": 0.0, "maxPower": 0.0},
                "gpu": {
                    "count": gpus,
                    "coreCount": cores,
                    "coreSpeed": capacity / cores,
                    "memorySize": f"{gpu_mib} MiB",
                    "modelName": str(gpu_name),
                },
                "gpuPowerModel": model,
            }
        ],
    }
    if carbon_trace_path is not None:
        cluster["powerSource"] = {"carbonTracePath": _portable(carbon_trace_path, base_dir)}
    return {"clusters": [cluster]}


def write_topology(
    path: str | os.PathLike[str],
    *,
    num_hosts: int,
    gpus_per_host: int,
    gpu_name: str,
    gpu_capacity_mhz: float,
    gpu_cores: int,
    gpu_memory_bytes: float,
    idle_power_w: float,
    max_power_w: float,
    power_model: str,
    calibration_factor: float | None,
    asym_util: float | None,
    carbon_trace_path: str | None,
    base_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Write OpenDC's ``topology.json``: one cluster of ``num_hosts`` identical GPU hosts.

    ``gpu_capacity_mhz`` is one GPU's capacity (cores x clock, as in the tasks' ``gpu_capacity``);
    ``idle_power_w``/``max_power_w`` are per GPU; ``power_model`` is a Kavier name (``constant, linear,
    square, cubic, sqrt, mse, asymptotic, asymptotic-dvfs``); ``carbon_trace_path`` (relative to the output
    folder OpenDC runs in; absolute paths are made relative to ``base_dir`` when given) becomes the
    cluster's ``powerSource.carbonTracePath``.
    """
    _write_json(
        path,
        topology_dict(
            num_hosts=num_hosts,
            gpus_per_host=gpus_per_host,
            gpu_name=gpu_name,
            gpu_capacity_mhz=gpu_capacity_mhz,
            gpu_cores=gpu_cores,
            gpu_memory_bytes=gpu_memory_bytes,
            idle_power_w=idle_power_w,
            max_power_w=max_power_w,
            power_model=power_model,
            calibration_factor=calibration_factor,
            asym_util=asym_util,
            carbon_trace_path=carbon_trace_path,
            base_dir=base_dir,
        ),
    )


def experiment_dict(
    *,
    name: str,
    topology_file: str,
    workload_folder: str,
    export_interval_s: float,
    base_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The experiment document :func:`write_experiment` writes (see there)."""
    interval = _finite("export_interval_s", export_interval_s, positive=True)
    return {
        "name": str(name),
        "outputFolder": OUTPUT_FOLDER,
        "topologies": [{"pathToFile": _portable(topology_file, base_dir)}],
        "workloads": [{"pathToFile": _portable(workload_folder, base_dir), "type": WORKLOAD_TYPE}],
        "allocationPolicies": [dict(ALLOCATION_POLICY)],
        # OpenDC's exportInterval is a whole number of seconds (> 0).
        "exportModels": [{"exportInterval": max(1, round(interval))}],
    }


def write_experiment(
    path: str | os.PathLike[str],
    *,
    name: str,
    topology_file: str,
    workload_folder: str,
    carbon_trace_path: str | None,
    export_interval_s: float,
) -> None:
    """Write OpenDC's ``experiment.json`` (put it in the output folder and run OpenDC from there).

    ``topology_file`` and ``workload_folder`` (the folder holding ``tasks.parquet`` and ``fragments.parquet``)
    are relative to the output folder; absolute paths inside the folder holding ``path`` are made relative.
    ``export_interval_s`` is rounded to whole seconds (at least 1), OpenDC's unit.

    OpenDC reads the carbon trace from the topology (``powerSource.carbonTracePath``), not from the
    experiment, and some versions reject unknown experiment keys; so ``carbon_trace_path`` is not written
    here. It is checked instead: when the topology file exists, its carbon trace must be the same path.
    """
    base = Path(path).resolve().parent
    doc = experiment_dict(
        name=name,
        topology_file=topology_file,
        workload_folder=workload_folder,
        export_interval_s=export_interval_s,
        base_dir=base,
    )
    if carbon_trace_path is not None:
        topo_path = base / doc["topologies"][0]["pathToFile"]
        if topo_path.is_file():
            try:
                topo = json.loads(topo_path.read_text(encoding="utf-8"))
                traces = {c.get("powerSource", {}).get("carbonTracePath") for c in topo.get("clusters", [])}
            except (OSError, ValueError, AttributeError):
                traces = set()
            want = _portable(carbon_trace_path, base)
            if traces and traces != {want}:
                found = ", ".join(sorted(str(t) if t else "none" for t in traces))
                raise ScenarioError(
                    f"OpenDC export: {topo_path} uses carbon trace {found} but the experiment names {want}; "
                    "write the topology with the same carbon_trace_path"
                )
    _write_json(path, doc)
