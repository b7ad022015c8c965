"""Cost, embodied carbon and efficiency metrics of a run (summary keys carry their units).

Per-token metrics divide by all tokens processed (input + output) per million, except
``joules_per_output_token``. GPU cost and embodied carbon are charged for every provisioned GPU
over the whole simulated period (the GPU-time the scenario occupies).
"""

from __future__ import annotations

import math
from typing import Any

from kavier.units import J_PER_KWH, J_PER_WH, S_PER_HOUR

SECONDS_PER_YEAR = 365.25 * 24 * 3600.0


def _per(value: float, amount: float) -> float:
    return value / amount if amount > 0 else math.nan


def cost_and_efficiency(
    *,
    num_gpus: int,
    simulated_time_s: float,
    input_tokens: int,
    output_tokens: int,
    energy_it_j: float,
    energy_facility_j: float,
    co2_operational_g: float,
    gpu_price_per_hour: float,
    energy_price_per_kwh: float,
    embodied_co2_g_per_gpu: float,
    gpu_lifetime_years: float,
    token_price_per_mtok: tuple[float, float] | None,
) -> dict[str, Any]:
    """Cost (US$), embodied CO2 (g) and per-token efficiency of a run."""
    gpu_hours = num_gpus * simulated_time_s / S_PER_HOUR
    cost_gpu = gpu_hours * gpu_price_per_hour
    cost_energy = energy_facility_j / J_PER_KWH * energy_price_per_kwh
    cost_total = cost_gpu + cost_energy
    co2_embodied = (
        embodied_co2_g_per_gpu * num_gpus * simulated_time_s / (gpu_lifetime_years * SECONDS_PER_YEAR)
    )
    mtok = (input_tokens + output_tokens) / 1e6
    result: dict[str, Any] = {
        "gpu_hours": gpu_hours,
        "cost_gpu_usd": cost_gpu,
        "cost_energy_usd": cost_energy,
        "cost_total_usd": cost_total,
        "co2_embodied_g": co2_embodied,
        "co2_total_g": co2_operational_g + co2_embodied,
        "usd_per_mtok": _per(cost_total, mtok),
        "wh_per_mtok": _per(energy_facility_j / J_PER_WH, mtok),
        "gco2_per_mtok": _per(co2_operational_g + co2_embodied, mtok),
        "joules_per_output_token": _per(energy_facility_j, output_tokens),
        "gpu_price_per_hour_usd": gpu_price_per_hour,
        "energy_price_per_kwh_usd": energy_price_per_kwh,
    }
    if token_price_per_mtok is not None:
        price_in, price_out = token_price_per_mtok
        revenue = input_tokens / 1e6 * price_in + output_tokens / 1e6 * price_out
        result.update({"revenue_usd": revenue, "margin_usd": revenue - cost_total})
    return result
