"""Cost settings: what GPU time, energy and tokens are worth, and how long a GPU lasts."""

from typing import Any

from pydantic import Field, field_validator

from kavier.settings.base import Settings, cli


class CostSettings(Settings):
    """Prices (US$) for GPU time, facility energy and tokens, and the GPU lifetime over which
    embodied carbon is written off."""

    table = "cost"
    panel = "Cost"

    gpu_price_per_hour: float | None = Field(
        None, ge=0, description="US$ per GPU-hour; default from the library"
    )
    energy_price_per_kwh: float = Field(0.10, ge=0, description="US$ per kWh of facility energy")
    token_price_per_mtok: tuple[float, float] | None = Field(
        None,
        description="US$ per million input and output tokens, IN,OUT (revenue view)",
        json_schema_extra=cli(metavar="IN,OUT"),
    )
    gpu_lifetime_years: float = Field(
        5.0, gt=0, description="years over which a GPU's embodied CO2 is amortised"
    )

    @field_validator("token_price_per_mtok", mode="before")
    @classmethod
    def _price_pair(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").split(",") if p.strip()]
            if len(parts) == 1:
                parts = parts * 2
            try:
                return tuple(float(p) for p in parts)
            except ValueError:
                raise ValueError(f"{value!r}: give 'input,output' US$ per million tokens") from None
        return value
