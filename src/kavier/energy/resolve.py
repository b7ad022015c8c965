"""Choose a scenario's power model, grid carbon intensity and PUE."""

from __future__ import annotations

from dataclasses import dataclass

from kavier.energy.accounting import ConstantSeries, IntervalSeries
from kavier.energy.power import PowerModel
from kavier.library.spec import GpuSpec
from kavier.scenario import Scenario


@dataclass
class EnergySetup:
    """The power model and the carbon and PUE series of a run, with a description of each."""

    power: PowerModel
    intensity: IntervalSeries
    intensity_source: str
    pue: IntervalSeries
    pue_source: str


def power_model(scenario: Scenario, gpu: GpuSpec) -> PowerModel:
    """The scenario's power model with the GPU's idle and maximum power unless overridden."""
    return PowerModel(
        name=scenario.power_model,
        idle_w=gpu.idle_power_w if scenario.gpu_idle_w is None else scenario.gpu_idle_w,
        max_w=gpu.max_power_w if scenario.gpu_max_w is None else scenario.gpu_max_w,
        calibration=scenario.power_calibration,
        asym_util=scenario.power_asym_util,
        memory_weight=scenario.power_memory_weight,
        active_floor=scenario.power_active_floor,
        compute_weight=scenario.power_compute_weight,
        busy_utilization=scenario.busy_utilization,
    )


def energy_setup(scenario: Scenario, gpu: GpuSpec) -> EnergySetup:
    """Resolve power, intensity (trace > constant > region > world average) and PUE."""
    from kavier.energy.sources import carbon_intensity

    intensity, source = carbon_intensity(scenario)
    if isinstance(scenario.pue, str):
        from kavier.energy import carbon

        pue: IntervalSeries = carbon.load_pue_series(scenario.pue)
        pue_source = f"PUE series {scenario.pue}"
    else:
        pue = ConstantSeries(scenario.pue)
        pue_source = f"constant {scenario.pue:g}"
    return EnergySetup(power_model(scenario, gpu), intensity, source, pue, pue_source)
