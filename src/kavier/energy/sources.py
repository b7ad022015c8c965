"""Where a run's grid carbon intensity comes from: one registered source per way of giving it.

Each source is a class registered in :data:`kavier.registry.CARBON_SOURCES` with a
``priority``, ``applies(scenario)`` and ``load(scenario) -> (series, description)``. A run takes
the applicable source of highest priority: a carbon trace (300) over a constant intensity (200)
over a grid region's annual mean (100) over the world average (0, always applicable). The series
is averaged over each export interval (:class:`kavier.energy.accounting.IntervalSeries`); the
description lands in ``summary.json`` as ``carbon_intensity_source``.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from kavier.energy.accounting import ConstantSeries, IntervalSeries
from kavier.registry import CARBON_SOURCES
from kavier.scenario import Scenario

# World average grid carbon intensity 2023 (Ember, Global Electricity Review 2024), the
# default when a scenario names no intensity, region or trace.
WORLD_INTENSITY_G_PER_KWH = 480.0
WORLD_SOURCE = "world average 2023, Ember Global Electricity Review 2024 (default)"


class CarbonSource(Protocol):
    """A way of giving the grid's carbon intensity (gCO2/kWh over time)."""

    priority: ClassVar[int]

    @staticmethod
    def applies(scenario: Scenario) -> bool:
        """True when the scenario gives this source's input."""

    @staticmethod
    def load(scenario: Scenario) -> tuple[IntervalSeries, str]:
        """The intensity series and a one-line description of where it comes from."""


@CARBON_SOURCES.register("trace")
class CarbonTrace:
    """A time series from a file (``carbon_trace``: OpenDC parquet or CSV)."""

    priority: ClassVar[int] = 300

    @staticmethod
    def applies(scenario: Scenario) -> bool:
        return bool(scenario.carbon_trace)

    @staticmethod
    def load(scenario: Scenario) -> tuple[IntervalSeries, str]:
        from kavier.energy import carbon

        series = carbon.load_carbon_trace(scenario.carbon_trace, wrap=scenario.carbon_trace_wrap)
        return series, f"carbon trace {scenario.carbon_trace}"


@CARBON_SOURCES.register("constant")
class ConstantIntensity:
    """One value for the whole run (``carbon_intensity``, gCO2/kWh)."""

    priority: ClassVar[int] = 200

    @staticmethod
    def applies(scenario: Scenario) -> bool:
        return scenario.carbon_intensity is not None

    @staticmethod
    def load(scenario: Scenario) -> tuple[IntervalSeries, str]:
        value = scenario.carbon_intensity
        return ConstantSeries(value), f"constant {value:g} gCO2/kWh"


@CARBON_SOURCES.register("region")
class RegionIntensity:
    """A grid region's annual mean (``region``; see ``kavier library --kind regions``)."""

    priority: ClassVar[int] = 100

    @staticmethod
    def applies(scenario: Scenario) -> bool:
        return bool(scenario.region)

    @staticmethod
    def load(scenario: Scenario) -> tuple[IntervalSeries, str]:
        from kavier.energy import carbon

        region = carbon.region_intensity(scenario.region)
        provenance = f"{region.year}, {region.source}, {region.licence}"
        description = f"region {region.code}: {region.g_per_kwh:g} gCO2/kWh ({provenance})"
        return ConstantSeries(region.g_per_kwh), description


@CARBON_SOURCES.register("world")
class WorldAverage:
    """The world average of 2023 (Ember), when the scenario gives nothing else."""

    priority: ClassVar[int] = 0

    @staticmethod
    def applies(scenario: Scenario) -> bool:
        return True

    @staticmethod
    def load(scenario: Scenario) -> tuple[IntervalSeries, str]:
        return ConstantSeries(
            WORLD_INTENSITY_G_PER_KWH
        ), f"{WORLD_INTENSITY_G_PER_KWH:g} gCO2/kWh, {WORLD_SOURCE}"


def carbon_intensity(scenario: Scenario) -> tuple[IntervalSeries, str]:
    """The series of the applicable source of highest priority, and its description."""
    sources = sorted(CARBON_SOURCES.items(), key=lambda item: -item[1].priority)
    for _, source in sources:
        if source.applies(scenario):
            return source.load(scenario)
    raise AssertionError("the world-average source always applies")
