"""Side-by-side comparison of run folders: key metrics and their ratios to the first run."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kavier.errors import KavierError

COMPARED: tuple[tuple[str, str], ...] = (
    ("num_requests", "requests"),
    ("simulated_time_s", "simulated time (s)"),
    ("gpu_busy_s", "GPU busy (s)"),
    ("total_prefill_s", "prefill GPU time (s)"),
    ("total_decode_s", "decode GPU time (s)"),
    ("throughput_tokens_per_s", "throughput (tok/s)"),
    ("ttft_p50_s", "TTFT p50 (s)"),
    ("ttft_p99_s", "TTFT p99 (s)"),
    ("tpot_mean_s", "TPOT mean (s)"),
    ("e2e_p99_s", "E2E p99 (s)"),
    ("prefix_cache_hit_ratio", "prefix-cache hit ratio"),
    ("energy_facility_kwh", "energy, facility (kWh)"),
    ("avg_power_w", "power avg (W)"),
    ("peak_power_w", "power peak (W)"),
    ("co2_operational_g", "CO2 operational (g)"),
    ("co2_embodied_g", "CO2 embodied (g)"),
    ("cost_total_usd", "cost total (US$)"),
    ("usd_per_mtok", "US$/Mtoken"),
    ("wh_per_mtok", "Wh/Mtoken"),
    ("gco2_per_mtok", "gCO2/Mtoken"),
)


@dataclass
class Comparison:
    """Runs' names, the compared metrics' values, and ratios of each run to the first."""

    names: list[str]
    rows: list[tuple[str, str, list[float | None]]]  # (key, label, values per run)
    summaries: list[dict[str, Any]]

    def ratio(self, key: str, run: int) -> float | None:
        """value(run) / value(first run), None when undefined."""
        values = next(v for k, _, v in self.rows if k == key)
        base, other = values[0], values[run]
        if base is None or other is None or base == 0:
            return None
        return other / base


THESIS_RATIOS: tuple[tuple[str, str, str], ...] = (
    # (name, summary key, meaning): value of a run per token over the reference's per token.
    ("R_f", "usd_per_mtok", "financial: cost per token vs the reference (< 1 is cheaper)"),
    ("R_s", "gco2_per_mtok", "sustainability: CO2 per token vs the reference (< 1 is greener)"),
    ("R_e", "wh_per_mtok", "energy per token vs the reference"),
)


def load_summary(folder: str | Path) -> dict[str, Any]:
    """A run folder's summary.json (one-line error when it is not a run folder)."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise KavierError(f"no summary.json in {folder}: is this a kavier run folder?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise KavierError(f"cannot read {path}: {exc}") from exc


def compare(folders: list[str | Path]) -> Comparison:
    """Compare run folders; the first is the reference for ratios."""
    if len(folders) < 2:
        raise KavierError("compare needs at least two run folders")
    summaries = [load_summary(f) for f in folders]
    rows = []
    for key, label in COMPARED:
        values = [_number(s.get(key)) for s in summaries]
        if any(v is not None for v in values):
            rows.append((key, label, values))
    return Comparison(names=[Path(f).name or str(f) for f in folders], rows=rows, summaries=summaries)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if isinstance(value, float) and not math.isfinite(value) else float(value)
