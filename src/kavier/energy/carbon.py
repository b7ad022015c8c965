"""Grid carbon intensity and PUE: regional annual averages and piecewise-constant time series.

Three ways to say how dirty the electricity is:

* a constant (``StepSeries.constant(g_per_kwh)``);
* a regional annual average from the built-in table ``data/regions.toml``
  (:func:`region_intensity`; lifecycle gCO2e/kWh for 2023, Ember / Electricity Maps, each entry with its
  source, the stored file and commit it was read from, year and licence);
* a time series read from a file (:func:`load_carbon_trace`): OpenDC's carbon-trace parquet
  (``timestamp`` int64 milliseconds since the Unix epoch, ``carbon_intensity`` gCO2/kWh) or a CSV with the
  same columns (``timestamp`` in milliseconds or as ISO-8601 strings, naive times taken as UTC).

A PUE series (:func:`load_pue_series`, columns ``timestamp`` and ``pue``) uses the same machinery.

:class:`StepSeries` holds such a series: value ``v[i]`` holds on ``[t[i], t[i+1])`` and the last value for
one median step. Its exact time-weighted mean over many equal intervals (:meth:`StepSeries.interval_means`)
comes from the cumulative integral ``F(x) = integral of v from t[0] to x``, which is piecewise linear, so
``mean[a, b) = (F(b) - F(a)) / (b - a)`` with ``F`` evaluated by ``np.interp``: no loop over intervals.

File rules (one-line :class:`~kavier.errors.ScenarioError` naming the file and the 1-based data row):
missing file, unreadable file, missing column, empty file, null/NaN/infinite or negative intensity (PUE below
1.0), null or unparsable timestamp, and duplicate timestamps. Timestamps out of order are *sorted* (a trace
concatenated from pieces is still unambiguous), duplicates are an error (two values for one instant are not).
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from kavier.errors import KavierError, ScenarioError

__all__ = [
    "RegionIntensity",
    "StepSeries",
    "all_regions",
    "check_coverage",
    "load_carbon_trace",
    "load_pue_series",
    "region_intensity",
    "region_rows",
]

# --------------------------------------------------------------------------------------------------
# Regional annual averages
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionIntensity:
    """A grid region's annual average carbon intensity (lifecycle gCO2e per kWh) and where it comes from.

    ``g_per_kwh`` is ``value_in_source`` rounded to the nearest unit; ``source`` names the publisher,
    ``source_url`` its page, ``source_data`` the stored file the number was read from
    (``repository@commit:path, key``), ``licence`` an SPDX id, ``basis`` the accounting (lifecycle,
    production- or consumption-based). ``verified`` is false only for a figure that could not be read
    from a source, and then ``note`` says why.
    """

    code: str
    g_per_kwh: float
    year: int
    source: str
    name: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    source_url: str = ""
    source_data: str = ""
    value_in_source: float | None = None
    licence: str = ""
    basis: str = ""
    verified: bool = False
    note: str = ""


def _norm(text: str) -> str:
    """Match key: upper case, spaces and underscores as hyphens, runs collapsed."""
    return re.sub(r"[\s_\-]+", "-", text.strip().upper()).strip("-")


@lru_cache(maxsize=1)
def _regions() -> tuple[dict[str, RegionIntensity], dict[str, str]]:
    """Built-in regions by code, and a lookup from every normalised code/alias/name to its code."""
    res = resources.files("kavier.energy").joinpath("data").joinpath("regions.toml")
    try:
        doc = tomllib.loads(res.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - a packaging error, not user input
        raise KavierError(f"built-in regions.toml is malformed: {exc}") from exc
    regions: dict[str, RegionIntensity] = {}
    lookup: dict[str, str] = {}
    for code, table in doc.get("regions", {}).items():
        try:
            entry = RegionIntensity(
                code=code,
                g_per_kwh=float(table["g_per_kwh"]),
                year=int(table["year"]),
                source=str(table["source"]),
                name=str(table.get("name", "")),
                aliases=tuple(str(a) for a in table.get("aliases", ())),
                source_url=str(table["source_url"]),
                source_data=str(table.get("source_data", "")),
                value_in_source=(float(table["value_in_source"]) if "value_in_source" in table else None),
                licence=str(table["licence"]),
                basis=str(table.get("basis", doc.get("basis", ""))),
                verified=bool(table.get("verified", False)),
                note=str(table.get("note", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:  # pragma: no cover - packaging error
            raise KavierError(f"built-in regions.toml: region {code} lacks or mangles {exc}") from exc
        regions[code] = entry
        for key in (code, entry.name, *entry.aliases):
            if key:
                lookup.setdefault(_norm(key), code)
    return regions, lookup


def region_intensity(code: str) -> RegionIntensity:
    """The built-in annual average for a region code or alias (``NL``, ``uk``, ``caiso``, ``us_ca`` ...)."""
    regions, lookup = _regions()
    hit = lookup.get(_norm(str(code)))
    if hit is not None:
        return regions[hit]
    close = difflib.get_close_matches(_norm(str(code)), list(lookup), n=4, cutoff=0.6)
    names = sorted({lookup[c] for c in close})
    hint = f"close matches: {', '.join(names)}; " if names else ""
    raise ScenarioError(f"unknown grid region {code!r}; {hint}see `kavier library --kind regions`")


def all_regions() -> list[RegionIntensity]:
    """Every built-in region with its full provenance, sorted by code."""
    regions, _ = _regions()
    return sorted(regions.values(), key=lambda r: r.code)


def region_rows() -> list[dict[str, Any]]:
    """One dict per built-in region, sorted by code, for listing (value, year, source and licence)."""
    return [
        {
            "code": r.code,
            "name": r.name,
            "g_per_kwh": r.g_per_kwh,
            "year": r.year,
            "source": r.source if r.verified else f"{r.source} (unverified)",
            "licence": r.licence,
            "aliases": ", ".join(r.aliases),
        }
        for r in all_regions()
    ]


# --------------------------------------------------------------------------------------------------
# Piecewise-constant time series
# --------------------------------------------------------------------------------------------------

_CHUNK = 1 << 20  # intervals per vectorised pass in interval_means (bounds temporary memory)
_SINGLE_STEP_S = 3600.0  # step of a one-point series (no spacing to take a median of)


class StepSeries:
    """A piecewise-constant series: ``values[i]`` holds from ``times_s[i]`` until ``times_s[i + 1]``.

    ``times_s`` are epoch seconds, strictly increasing. The last value holds for one median step, so the
    series covers ``[times_s[0], times_s[-1] + step)``. With ``wrap=True`` it repeats with period
    ``times_s[-1] + step - times_s[0]`` and covers every interval.
    """

    def __init__(self, times_s: Any, values: Any, *, wrap: bool = False, name: str = "series") -> None:
        t = np.asarray(times_s, dtype=np.float64).ravel()
        v = np.asarray(values, dtype=np.float64).ravel()
        if t.shape != v.shape:
            raise ScenarioError(f"{name}: {t.size} timestamps but {v.size} values")
        if t.size == 0:
            raise ScenarioError(f"{name}: holds no rows")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise ScenarioError(f"{name}: timestamps and values must be finite numbers")
        d = np.diff(t)
        if np.any(d <= 0):
            i = int(np.argmax(d <= 0))
            raise ScenarioError(
                f"{name}: timestamps must be strictly increasing (row {i + 2} is not after row {i + 1})"
            )
        self.name = name
        self.wrap = bool(wrap)
        self.step_s = float(np.median(d)) if d.size else _SINGLE_STEP_S
        self.times_s = t
        self.values = v
        self.start_s = float(t[0])
        self.end_s = float(t[-1]) + self.step_s
        self.period_s = self.end_s - self.start_s
        # Knots relative to the first timestamp (keeps precision for epoch-scale times) and the
        # cumulative integral at each knot; F is linear between knots.
        self._knots = np.append(t - t[0], self.period_s)
        widths = np.diff(self._knots)
        self._cum = np.concatenate(([0.0], np.cumsum(v * widths)))
        self._total = float(self._cum[-1])

    @classmethod
    def constant(cls, value: float, *, name: str = "constant") -> StepSeries:
        """A series equal to ``value`` at every time (wraps, so it covers any interval)."""
        return cls([0.0], [float(value)], wrap=True, name=name)

    def __repr__(self) -> str:
        return (
            f"StepSeries({self.name!r}, {self.values.size} steps, "
            f"{_fmt_time(self.start_s)}..{_fmt_time(self.end_s)}, wrap={self.wrap})"
        )

    def __len__(self) -> int:
        return int(self.values.size)

    def covers(self, t0: float, t1: float) -> bool:
        """Whether every instant of ``[t0, t1]`` has a value (always true when wrapping)."""
        if self.wrap:
            return True
        tol = 1e-6 * max(1.0, self.step_s)
        return t0 >= self.start_s - tol and t1 <= self.end_s + tol

    def mean(self) -> float:
        """Time-weighted mean over one period (the whole covered span)."""
        return self._total / self.period_s

    def _cumulative(self, x: np.ndarray) -> np.ndarray:
        """F at offsets ``x`` (seconds after the first timestamp)."""
        if not self.wrap:
            return np.interp(x, self._knots, self._cum)
        q = np.floor(x / self.period_s)
        r = x - q * self.period_s
        return q * self._total + np.interp(r, self._knots, self._cum)

    def at(self, epoch_s: Any) -> np.ndarray:
        """The value holding at each time (right-continuous: a step starts at its timestamp)."""
        x = np.asarray(epoch_s, dtype=np.float64) - self.start_s
        if self.wrap:
            x = np.mod(x, self.period_s)
        elif np.any(x < 0) or np.any(x >= self.period_s):
            raise ScenarioError(f"{self.name}: a time lies outside {self._span()}")
        idx = np.searchsorted(self._knots[:-1], x, side="right") - 1
        return self.values[np.clip(idx, 0, self.values.size - 1)]

    def interval_means(self, start_epoch_s: float, dt_s: float, nbins: int) -> np.ndarray:
        """Exact time-weighted mean over each ``[start + k dt, start + (k + 1) dt)``, k = 0..nbins-1.

        Exact up to float64 rounding: the cumulative integral grows with the span, so 1-second bins a
        year after the first timestamp carry a relative error of about 1e-9.
        """
        nbins = int(nbins)
        if nbins < 0:
            raise ScenarioError(f"{self.name}: nbins must be >= 0, got {nbins}")
        if not (dt_s > 0 and math.isfinite(dt_s)):
            raise ScenarioError(f"{self.name}: interval length must be > 0 s, got {dt_s}")
        end = start_epoch_s + nbins * dt_s
        if nbins and not self.covers(start_epoch_s, end):
            raise ScenarioError(
                f"{self.name} covers {self._span()} but the intervals span "
                f"{_fmt_time(start_epoch_s)}..{_fmt_time(end)}"
            )
        out = np.empty(nbins, dtype=np.float64)
        base = float(start_epoch_s) - self.start_s
        for lo in range(0, nbins, _CHUNK):
            hi = min(nbins, lo + _CHUNK)
            x = np.arange(lo, hi + 1, dtype=np.float64)
            x *= dt_s
            x += base
            f = self._cumulative(x)
            np.subtract(f[1:], f[:-1], out=out[lo:hi])
        out /= dt_s
        return out

    def _span(self) -> str:
        return f"{_fmt_time(self.start_s)}..{_fmt_time(self.end_s)}"


def _fmt_time(epoch_s: float) -> str:
    """UTC, minutes (seconds when not whole minutes), e.g. ``2022-01-01T00:00Z``."""
    try:
        dt = datetime.fromtimestamp(float(epoch_s), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"{epoch_s:.0f} s"
    if dt.second or dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.strftime("%Y-%m-%dT%H:%MZ")


def check_coverage(
    series: StepSeries,
    start_epoch_s: float,
    end_epoch_s: float,
    what: str,
    path: str | Path | None,
    *,
    wrap_flag: str = "--carbon-trace-wrap",
) -> None:
    """Raise a one-line ScenarioError when ``series`` does not cover ``[start, end]`` of the run."""
    if series.covers(start_epoch_s, end_epoch_s):
        return
    label = f"{what} {path}" if path is not None else what
    raise ScenarioError(
        f"{label} covers {series._span()} but the run spans "
        f"{_fmt_time(start_epoch_s)}..{_fmt_time(end_epoch_s)}; "
        f"choose --start-time inside it or pass {wrap_flag}"
    )


# --------------------------------------------------------------------------------------------------
# Reading series files
# --------------------------------------------------------------------------------------------------


def load_carbon_trace(path: str | Path, wrap: bool = False) -> StepSeries:
    """Read an OpenDC carbon trace (parquet or CSV: ``timestamp`` ms or ISO-8601, ``carbon_intensity``)."""

    def check(v: np.ndarray) -> int | None:
        bad = ~np.isfinite(v) | (v < 0)
        return int(np.argmax(bad)) if bad.any() else None

    return _load_series(
        path,
        "carbon_intensity",
        "carbon trace",
        check,
        "must be a finite number >= 0 gCO2/kWh",
        wrap,
    )


def load_pue_series(path: str | Path, wrap: bool = False) -> StepSeries:
    """Read a PUE time series (parquet or CSV: ``timestamp`` ms or ISO-8601, ``pue`` >= 1.0)."""

    def check(v: np.ndarray) -> int | None:
        bad = ~np.isfinite(v) | (v < 1.0)
        return int(np.argmax(bad)) if bad.any() else None

    return _load_series(path, "pue", "PUE series", check, "must be a finite number >= 1.0", wrap)


def _load_series(
    path: str | Path,
    value_col: str,
    what: str,
    find_bad: Callable[[np.ndarray], int | None],
    rule: str,
    wrap: bool,
) -> StepSeries:
    p = Path(path)
    label = f"{what} {p}"
    if not p.exists():
        raise ScenarioError(f"{label} does not exist; check the path")
    if not p.is_file():
        raise ScenarioError(f"{label} is not a file")
    table = _read_table(p, label)
    cols = {c.strip().lower(): c for c in table.column_names}
    missing = [c for c in ("timestamp", value_col) if c not in cols]
    if missing:
        raise ScenarioError(
            f"{label} lacks column(s) {', '.join(missing)}; found: {', '.join(table.column_names) or 'none'}"
        )
    if table.num_rows == 0:
        raise ScenarioError(f"{label} holds no rows")
    ts_ms = _timestamps_ms(table.column(cols["timestamp"]), label)
    vcol = table.column(cols[value_col])
    if vcol.null_count:
        i = _first_null(vcol)
        raise ScenarioError(
            f"{label}: row {i + 1}: {value_col} is missing (empty or NaN); every row needs a value"
        )
    try:
        values = vcol.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ScenarioError(f"{label}: column {value_col} is not numeric ({_first_line(exc)})") from exc
    bad = find_bad(values)
    if bad is not None:
        raise ScenarioError(f"{label}: row {bad + 1}: {value_col} = {float(values[bad])!r} {rule}")
    order = np.argsort(ts_ms, kind="stable")
    ts_sorted = ts_ms[order]
    dup = np.flatnonzero(np.diff(ts_sorted) == 0)
    if dup.size:
        a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise ScenarioError(
            f"{label}: rows {a + 1} and {b + 1} share timestamp {_fmt_time(ts_sorted[dup[0]] / 1000.0)}; "
            "keep one value per instant"
        )
    return StepSeries(ts_sorted / 1000.0, values[order], wrap=wrap, name=label)


def _read_table(p: Path, label: str) -> pa.Table:
    suffix = p.suffix.lower()
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ScenarioError(f"{label} cannot be read: {_first_line(exc)}") from exc
    is_parquet = suffix in (".parquet", ".pq") or magic == b"PAR1"
    try:
        if is_parquet:
            import pyarrow.parquet as pq

            return pq.read_table(p)
        import pyarrow.csv as pcsv

        return pcsv.read_csv(p)
    except (pa.ArrowException, OSError, ValueError) as exc:
        kind = "parquet" if is_parquet else "CSV"
        raise ScenarioError(f"{label} is not a readable {kind} file: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _first_null(col: pa.ChunkedArray) -> int:
    import pyarrow.compute as pc

    mask = pc.is_null(col).to_numpy(zero_copy_only=False)
    return int(np.argmax(mask))


def _timestamps_ms(col: pa.ChunkedArray, label: str) -> np.ndarray:
    """Milliseconds since the epoch as float64, from ints/floats (ms), timestamps, dates or ISO strings."""
    if col.null_count:
        raise ScenarioError(f"{label}: row {_first_null(col) + 1}: timestamp is empty")
    typ = col.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        ms = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    elif pa.types.is_timestamp(typ):
        ms = col.cast(pa.timestamp("ms", tz=typ.tz)).cast(pa.int64()).to_numpy(zero_copy_only=False)
        ms = ms.astype(np.float64)
    elif pa.types.is_date(typ):
        ms = col.cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        ms = ms.astype(np.float64)
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        ms = _parse_iso(col.to_pylist(), label)
    else:
        raise ScenarioError(
            f"{label}: timestamp has type {typ}; use milliseconds since the epoch or ISO-8601"
        )
    bad = ~np.isfinite(ms)
    if bad.any():
        raise ScenarioError(f"{label}: row {int(np.argmax(bad)) + 1}: timestamp is not a finite number")
    return ms


def _parse_iso(texts: list[str], label: str) -> np.ndarray:
    out = np.empty(len(texts), dtype=np.float64)
    for i, text in enumerate(texts):
        s = text.strip()
        try:
            if re.fullmatch(r"[+-]?\d+(\.\d*)?", s):
                out[i] = float(s)  # milliseconds written as text
                continue
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise ScenarioError(
                f"{label}: row {i + 1}: timestamp {text!r} is neither milliseconds nor ISO-8601"
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        out[i] = dt.timestamp() * 1000.0
    return out
