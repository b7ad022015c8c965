"""Energy settings: the GPU power model, the facility's PUE and the grid's carbon intensity."""

from typing import Any

from pydantic import Field, field_validator

from kavier.registry import POWER_MODELS
from kavier.settings.base import Settings, Switch, cli, policy_name

PowerModelName = policy_name(POWER_MODELS)


# The activity power model's constants, fitted on measured serving power (the ML.ENERGY H100 runs
# and Splitwise's A100 and H100 rows; benchmarks/fit_profiles.py, docs/validation.md), with the
# serving backend's MFU and MBU as the compute and memory activity. The thesis preset keeps
# w_m = 0.5, w_c = 1, no floor.
POWER_ACTIVE_FLOOR = 0.087
POWER_COMPUTE_WEIGHT = 1.99
POWER_MEMORY_WEIGHT = 1.02


class EnergySettings(Settings):
    """How much power the GPUs draw, what the facility adds, and how much CO2 a kWh emits."""

    table = "energy"
    panel = "Power, energy and carbon"

    power_model: PowerModelName = Field("activity", description="GPU power as a function of its activity")
    gpu_idle_w: float | None = Field(None, ge=0, description="W per GPU at idle; default: the library's")
    gpu_max_w: float | None = Field(None, gt=0, description="W per GPU at full load; default: the library's")
    power_calibration: float = Field(
        1.4,
        ge=1,
        le=2,
        description="mse power model's exponent r (dimensionless, 1..2: elsewhere 2u - u^r leaves 0..1)",
    )
    power_asym_util: float = Field(
        0.3, gt=0, description="asymptotic power models' utilisation scale a (fraction)"
    )
    power_memory_weight: float = Field(
        POWER_MEMORY_WEIGHT,
        ge=0,
        description="activity power model's weight of memory activity (dimensionless; fitted, thesis: 0.5)",
    )
    power_compute_weight: float = Field(
        POWER_COMPUTE_WEIGHT,
        ge=0,
        description="activity power model's weight of tensor-core activity (fitted; thesis: 1)",
    )
    power_active_floor: float = Field(
        POWER_ACTIVE_FLOOR,
        ge=0,
        lt=1,
        description="activity power model: least share of the power range a busy GPU draws (thesis: 0)",
    )
    pue: float | str = Field(
        1.0,
        description="power usage effectiveness (facility / IT energy, >= 1), or a timestamp,pue series file",
        json_schema_extra=cli(metavar="PUE|FILE"),
    )
    carbon_intensity: float | None = Field(None, ge=0, description="gCO2/kWh of the grid, constant")
    region: str | None = Field(
        None, description="grid region (e.g. NL) for an annual-average gCO2/kWh (see `kavier library`)"
    )
    carbon_trace: str | None = Field(
        None, description="OpenDC carbon trace file (parquet/CSV: timestamp ms, gCO2/kWh)"
    )
    carbon_trace_wrap: Switch = Field(
        False,
        description="repeat the carbon trace to cover the run",
        json_schema_extra=cli(style="flag"),
    )

    @field_validator("pue", mode="before")
    @classmethod
    def _pue(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return value  # a path to a PUE series
        if isinstance(value, int | float) and value < 1.0:
            raise ValueError(f"{value}: PUE is facility energy / IT energy, so >= 1.0")
        return value
