"""Token-length distributions for generated workloads, parsed from short string specs.

Accepted specs (lengths in tokens; every sample is an int64 >= 1):

- ``"512"`` or ``"fixed:512"``: always 512.
- ``"uniform:128:1024"``: uniform integers in [128, 1024], both ends included.
- ``"lognormal:mean=1000,cv=0.5"``: lognormal with that mean and coefficient of variation
  (std / mean) in tokens, rounded to the nearest integer.
- ``"zipf:a=1.2,max=4096"``: bounded Zipf, P(k) proportional to k**-a on 1..max.
- ``"normal:mean=500,std=100"``: normal, rounded, clipped below at 1.
- ``"geometric:mean=4"``: geometric on 1, 2, ... with that mean (e.g. turns per session).

Parameters above ``MAX_TOKENS`` (10**8) are rejected and samples are clipped to it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from kavier.errors import ScenarioError

ACCEPTED = (
    "'512', 'fixed:512', 'uniform:LO:HI', 'lognormal:mean=M,cv=C', 'zipf:a=A,max=N', "
    "'normal:mean=M,std=S', 'geometric:mean=M'"
)
_KINDS = ("fixed", "uniform", "lognormal", "normal", "zipf", "geometric")
MAX_TOKENS = 100_000_000  # largest length a spec may ask for, and the clip for samples
ZIPF_MAX_SUPPORT = 2_000_000  # largest zipf max (tokens); bounds the CDF table to 16 MB


class LengthDist(ABC):
    """A distribution of token counts: ``sample`` gives int64 values >= 1."""

    @property
    @abstractmethod
    def mean(self) -> float:
        """Expected value in tokens (of the continuous distribution, before integer rounding)."""

    @abstractmethod
    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` raw (possibly fractional) values."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` samples as an int64 array of token counts, each in [1, MAX_TOKENS]."""
        raw = self._draw(rng, int(n))
        if raw.dtype.kind == "f":
            raw = np.rint(raw)
        return np.clip(raw, 1, MAX_TOKENS).astype(np.int64, copy=False)


@dataclass(frozen=True)
class Fixed(LengthDist):
    """Always ``value`` tokens."""

    value: int

    @property
    def mean(self) -> float:
        return float(self.value)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=np.int64)

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Uniform(LengthDist):
    """Uniform integers in [low, high] tokens, both included."""

    low: int
    high: int

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(self.low, self.high, size=n, endpoint=True, dtype=np.int64)

    def __str__(self) -> str:
        return f"uniform:{self.low}:{self.high}"


@dataclass(frozen=True)
class LogNormal(LengthDist):
    """Lognormal with mean ``mean_tokens`` and coefficient of variation ``cv`` (std/mean)."""

    mean_tokens: float
    cv: float

    @property
    def mean(self) -> float:
        return float(self.mean_tokens)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        sigma2 = math.log1p(self.cv**2)
        mu = math.log(self.mean_tokens) - sigma2 / 2.0
        return rng.lognormal(mu, math.sqrt(sigma2), size=n)

    def __str__(self) -> str:
        return f"lognormal:mean={self.mean_tokens:g},cv={self.cv:g}"


@dataclass(frozen=True)
class Normal(LengthDist):
    """Normal with ``mean_tokens`` and ``std`` tokens, rounded and clipped below at 1."""

    mean_tokens: float
    std: float

    @property
    def mean(self) -> float:
        """E[max(1, X)] for X ~ Normal(mean, std)."""
        m, s = self.mean_tokens, self.std
        if s == 0:
            return max(1.0, m)
        z = (1.0 - m) / s
        cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
        pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        return cdf + m * (1.0 - cdf) + s * pdf

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.normal(self.mean_tokens, self.std, size=n)

    def __str__(self) -> str:
        return f"normal:mean={self.mean_tokens:g},std={self.std:g}"


@dataclass(frozen=True)
class Zipf(LengthDist):
    """Bounded Zipf on 1..``max_tokens``: P(k) proportional to k**-a (any a > 0)."""

    a: float
    max_tokens: int
    _cdf: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weights = np.arange(1, self.max_tokens + 1, dtype=np.float64) ** -self.a
        cdf = np.cumsum(weights)
        object.__setattr__(self, "_cdf", cdf / cdf[-1])

    @property
    def mean(self) -> float:
        k = np.arange(1, self.max_tokens + 1, dtype=np.float64)
        w = k**-self.a
        return float((k * w).sum() / w.sum())

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        idx = np.searchsorted(self._cdf, rng.random(n), side="right")
        return np.minimum(idx, self.max_tokens - 1).astype(np.int64) + 1

    def __str__(self) -> str:
        return f"zipf:a={self.a:g},max={self.max_tokens}"


@dataclass(frozen=True)
class Geometric(LengthDist):
    """Geometric on 1, 2, ... with mean ``mean_value`` (success probability 1/mean)."""

    mean_value: float

    @property
    def mean(self) -> float:
        return float(self.mean_value)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.geometric(1.0 / self.mean_value, size=n).astype(np.int64)

    def __str__(self) -> str:
        return f"geometric:mean={self.mean_value:g}"


def parse_length(spec: str | int | LengthDist) -> LengthDist:
    """Parse a length spec (see the module docstring); a LengthDist is returned unchanged.

    Raises ScenarioError (one line naming the spec and the accepted forms) on a bad spec.
    """
    if isinstance(spec, LengthDist):
        return spec
    if isinstance(spec, bool) or not isinstance(spec, str | int):
        _fail(spec, "expected a string or an integer")
    text = str(spec).strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if not rest:
        if kind in _KINDS:
            _fail(spec, f"{kind} needs parameters")
        return Fixed(_positive_int(spec, "value", text))
    if kind == "fixed":
        return Fixed(_positive_int(spec, "value", rest))
    if kind == "uniform":
        parts = [p.strip() for p in rest.split(":")]
        if len(parts) == 1 and "=" in parts[0]:
            keys = _keywords(spec, rest, ("low", "high"))
            parts = [keys["low"], keys["high"]]
        if len(parts) != 2:
            _fail(spec, "uniform needs two bounds, 'uniform:LO:HI'")
        low, high = _positive_int(spec, "LO", parts[0]), _positive_int(spec, "HI", parts[1])
        if high < low:
            _fail(spec, f"HI ({high}) is below LO ({low})")
        return Uniform(low, high)
    if kind == "lognormal":
        keys = _keywords(spec, rest, ("mean", "cv"))
        mean, cv = _number(spec, "mean", keys["mean"]), _number(spec, "cv", keys["cv"])
        if mean < 1 or cv < 0:
            _fail(spec, "needs mean >= 1 and cv >= 0")
        return LogNormal(mean, cv) if cv > 0 else Fixed(max(1, round(mean)))
    if kind == "normal":
        keys = _keywords(spec, rest, ("mean", "std"))
        mean, std = _number(spec, "mean", keys["mean"]), _number(spec, "std", keys["std"])
        if std < 0:
            _fail(spec, "needs std >= 0")
        return Normal(mean, std)
    if kind == "zipf":
        keys = _keywords(spec, rest, ("a", "max"))
        a = _number(spec, "a", keys["a"])
        top = _positive_int(spec, "max", keys["max"])
        if a <= 0:
            _fail(spec, "needs a > 0")
        if top > ZIPF_MAX_SUPPORT:
            _fail(spec, f"max must be <= {ZIPF_MAX_SUPPORT}")
        return Zipf(a, top)
    if kind == "geometric":
        keys = _keywords(spec, rest, ("mean",))
        mean = _number(spec, "mean", keys["mean"])
        if mean < 1:
            _fail(spec, "needs mean >= 1")
        return Geometric(mean)
    _fail(spec, f"unknown distribution {kind!r}")
    raise AssertionError  # unreachable


def _fail(spec: object, why: str) -> None:
    raise ScenarioError(f"length spec {spec!r}: {why}; accepted forms: {ACCEPTED}")


def _keywords(spec: object, rest: str, names: tuple[str, ...]) -> dict[str, str]:
    """Parse ``k=v,k=v`` requiring exactly ``names``."""
    found: dict[str, str] = {}
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in names or key in found:
            _fail(spec, f"expected keys {', '.join(names)} as k=v separated by commas")
        found[key] = value.strip()
    missing = [n for n in names if n not in found]
    if missing:
        _fail(spec, f"missing {', '.join(missing)}")
    return found


def _number(spec: object, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        _fail(spec, f"{name} = {text!r} is not a finite number")
    if abs(value) > MAX_TOKENS:
        _fail(spec, f"{name} = {text!r} is above {MAX_TOKENS:,}")
    return value


def _positive_int(spec: object, name: str, text: str) -> int:
    value = _number(spec, name, text)
    if value != int(value) or value < 1:
        _fail(spec, f"{name} = {text!r} must be a whole number >= 1")
    return int(value)
