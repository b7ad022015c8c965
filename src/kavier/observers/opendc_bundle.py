"""The OpenDC bundle of a run folder: topology, experiment and carbon trace beside the workload.

``opendc/topology.json`` describes the run's GPUs (one host per GPU) with the run's power model
and idle/max power; ``opendc/carbon.parquet`` holds the grid intensity the run used, over the
simulated period, in OpenDC's carbon-trace format; ``opendc/experiment.json`` references the
topology and the workload (``opendc/tasks.parquet``, ``opendc/fragments.parquet``). Paths are
relative to the run folder: run OpenDC from inside it,
``OpenDCExperimentRunner --experiment-path opendc/experiment.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kavier.io.columns import arrow_array
from kavier.io.opendc_experiment import write_experiment, write_topology
from kavier.scenario import Scenario

CONSTANT_STEP_S = 3600.0
MAX_TRACE_ROWS = 200_000


def write_carbon_trace(path: Path, intensity: Any, start_epoch_s: float, end_s: float) -> None:
    """The intensity over ``[start, start + end_s]`` as OpenDC rows (timestamp ms, gCO2/kWh)."""
    step = float(getattr(intensity, "step_s", CONSTANT_STEP_S))
    rows = int(np.ceil(max(end_s, 1.0) / step)) + 1
    if rows > MAX_TRACE_ROWS:
        step = max(end_s, 1.0) / (MAX_TRACE_ROWS - 1)
        rows = MAX_TRACE_ROWS
    first = np.floor(start_epoch_s / step) * step if hasattr(intensity, "step_s") else start_epoch_s
    values = intensity.interval_means(first, step, rows)
    stamps = np.rint((first + np.arange(rows) * step) * 1000.0).astype(np.int64)
    table = pa.table(
        {
            "timestamp": arrow_array(stamps).view(pa.timestamp("ms")),
            "carbon_intensity": arrow_array(np.ascontiguousarray(values, dtype=np.float64)),
        }
    )
    pq.write_table(table, path)


def write_opendc_bundle(folder: Path, scenario: Scenario, end_s: float) -> None:
    """Write topology.json, experiment.json and carbon.parquet into ``folder/opendc`` for a run
    that simulated ``end_s`` seconds."""
    from kavier.energy.resolve import energy_setup
    from kavier.library.catalog import load_catalog

    gpu = load_catalog(scenario.catalog).gpu(scenario.gpu)
    if gpu.capacity_mhz <= 0:
        from kavier.errors import ScenarioError

        raise ScenarioError(
            f"OpenDC export: {gpu.name} has no cores and boost_clock_mhz in the GPU library (OpenDC's "
            "gpu_capacity is cores x clock); add them to its catalogue entry or run with --no-opendc"
        )
    energy = energy_setup(scenario, gpu)
    opendc = folder / "opendc"
    opendc.mkdir(exist_ok=True)
    start = scenario.start_time.timestamp()
    write_carbon_trace(opendc / "carbon.parquet", energy.intensity, start, end_s)
    power = energy.power
    model = "linear" if power.name == "activity" else power.name  # OpenDC has no activity model
    write_topology(
        opendc / "topology.json",
        num_hosts=scenario.gpus,
        gpus_per_host=1,
        gpu_name=gpu.name,
        gpu_capacity_mhz=gpu.capacity_mhz,
        gpu_cores=max(gpu.cores, 1),
        gpu_memory_bytes=gpu.memory_bytes,
        idle_power_w=power.idle_w,
        max_power_w=power.max_w,
        power_model=model,
        calibration_factor=power.calibration,
        asym_util=power.asym_util,
        carbon_trace_path="opendc/carbon.parquet",
    )
    write_experiment(
        opendc / "experiment.json",
        name=scenario.name,
        topology_file="opendc/topology.json",
        workload_folder="opendc",
        carbon_trace_path="opendc/carbon.parquet",
        export_interval_s=scenario.export_rate,
    )
