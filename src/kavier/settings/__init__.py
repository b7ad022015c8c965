"""The scenario's settings, declared in groups; :class:`kavier.scenario.Scenario` inherits them all.

Each group is a small pydantic model with its own validators, one grouping table of a scenario
file (``[cache]``) and one panel of ``kavier run --help``. :data:`GROUPS` is their order: the
order of the help panels and of the scenario's bases.
"""

from kavier.settings.base import Settings
from kavier.settings.cache import CacheSettings
from kavier.settings.cost import CostSettings
from kavier.settings.energy import EnergySettings
from kavier.settings.output import OutputSettings
from kavier.settings.performance import PerformanceSettings
from kavier.settings.serving import ServingSettings
from kavier.settings.system import SystemSettings
from kavier.settings.thesis_cache import ThesisCacheSettings
from kavier.settings.workload import WorkloadSettings

GROUPS: tuple[type[Settings], ...] = (
    SystemSettings,
    WorkloadSettings,
    ServingSettings,
    PerformanceSettings,
    CacheSettings,
    ThesisCacheSettings,
    EnergySettings,
    CostSettings,
    OutputSettings,
)

__all__ = [
    "GROUPS",
    "CacheSettings",
    "CostSettings",
    "EnergySettings",
    "OutputSettings",
    "PerformanceSettings",
    "ServingSettings",
    "Settings",
    "SystemSettings",
    "ThesisCacheSettings",
    "WorkloadSettings",
]
