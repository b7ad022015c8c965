"""Calibrated serving constants in a small TOML file (what ``kavier calibrate`` writes).

The file holds the constants of :class:`~kavier.perf.roofline.ServingPerfParams` as top-level
keys and, optionally, a ``[meta]`` table that says where they came from::

    # Kavier serving profile: calibrated constants of the serving performance model
    compute_efficiency = 0.52
    memory_efficiency = 0.81
    prefill_overhead_s = 0.021
    iteration_overhead_s = 0.0093
    decode_seq_overhead_s = 0.00022
    prefill_seq_overhead_s = 0.0136
    attention_efficiency = 0.0
    comm_efficiency = 0.7
    comm_latency_s = 1.4e-05
    comm_cache_bytes = 55000000.0
    comm_spill_efficiency = 0.14

    [meta]
    model = "Llama-2-70B"
    gpu = "A100-80GB"
    tp = [2, 4, 8]
    source = "splitwise.csv"
    fit_rows = "batch_size<=8"
    rows_fit = 270
    ...

:func:`load_profile` starts from a base :class:`ServingPerfParams` and replaces the fields the
file gives; the ``[meta]`` table is free-form and is ignored when loading. A profile calibrated
per tensor-parallel degree (``kavier calibrate --per-tp``) also has ``[tp.2]``, ``[tp.4]``, ...
tables with the constants fitted on that degree's rows alone; a replica running at a degree with
a table takes that table's constants over the top-level ones (which are fitted on every degree
at once and serve any other degree). Efficiencies must lie in
``(0, 1]``; overheads and latencies are seconds and must be ``>= 0`` (0 switches the term off,
which is the default of ``iteration_overhead_s``, ``decode_seq_overhead_s`` and
``prefill_seq_overhead_s``); sizes (names
ending in ``_bytes``) must be ``>= 0`` (``comm_cache_bytes = 0``, the default, switches the
all-reduce cache spill off); ``attention_efficiency`` may also be 0 (its default: attention runs
at ``compute_efficiency``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import tomllib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from kavier.errors import ScenarioError
from kavier.perf.roofline import ServingPerfParams

__all__ = ["PROFILE_KEYS", "load_profile", "profile_degrees", "profile_meta", "profile_text", "write_profile"]


def _profile_keys() -> dict[str, str]:
    """Every constant of ServingPerfParams -> ``eff`` (a name ending in ``efficiency``: (0, 1];
    ``eff0`` when its default is 0, which means "off": [0, 1]),
    ``sec`` (a name ending in ``_s``: seconds >= 0), ``bytes`` (a name ending in ``_bytes``:
    bytes >= 0), ``bool`` or ``num`` (another number > 0)."""
    keys: dict[str, str] = {}
    defaults = ServingPerfParams()
    for f in fields(ServingPerfParams):
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            keys[f.name] = "bool"
        elif isinstance(value, int | float):
            if f.name.endswith("efficiency"):
                kind = "eff0" if value == 0 else "eff"  # default 0: "off", fall back to another
            elif f.name.endswith("_s"):
                kind = "sec"
            elif f.name.endswith("_bytes"):
                kind = "bytes"
            else:
                kind = "num0" if value == 0 else "num"  # default 0: "off"
            keys[f.name] = kind
    return keys


# compute_efficiency, memory_efficiency, prefill_overhead_s, iteration_overhead_s,
# decode_seq_overhead_s, prefill_seq_overhead_s, attention_efficiency, comm_efficiency,
# comm_latency_s, comm_cache_bytes, comm_spill_efficiency, context_terms (and any constant the
# serving model gains later).
PROFILE_KEYS: dict[str, str] = _profile_keys()
_META = "meta"
_BY_TP = "tp"


def _check_value(path: Path | str, key: str, value: Any) -> float | bool:
    where = f"{path}: field '{key}'"
    kind = PROFILE_KEYS[key.rpartition(".")[2]]
    if kind == "bool":
        if not isinstance(value, bool):
            raise ScenarioError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(f"{where} must be a finite number, got {value!r}")
    value = float(value)
    if kind == "eff" and not 0.0 < value <= 1.0:
        raise ScenarioError(f"{where} must be an efficiency in (0, 1], got {value!r}")
    if kind == "eff0" and not 0.0 <= value <= 1.0:
        raise ScenarioError(f"{where} must be an efficiency in (0, 1] or 0 (off), got {value!r}")
    if kind == "sec" and value < 0.0:
        raise ScenarioError(f"{where} must be seconds >= 0, got {value!r}")
    if kind == "bytes" and value < 0.0:
        raise ScenarioError(f"{where} must be bytes >= 0, got {value!r}")
    if kind == "num" and value <= 0.0:
        raise ScenarioError(f"{where} must be positive, got {value!r}")
    if kind == "num0" and value < 0.0:
        raise ScenarioError(f"{where} must be >= 0 (0 = off), got {value!r}")
    return value


def load_profile(
    path: Path | str, base: ServingPerfParams | None = None, tp: int | None = None
) -> ServingPerfParams:
    """``base`` (default: the built-in constants) with the fields the profile at ``path`` gives;
    for a replica at tensor-parallel degree ``tp``, then those of the profile's ``[tp.<tp>]``
    table if it has one."""
    base = base or ServingPerfParams()
    data = _read(path)
    changes = _constants(path, "", {k: v for k, v in data.items() if k not in (_META, _BY_TP)})
    meta = data.get(_META, {})
    if not isinstance(meta, dict):
        raise ScenarioError(f"{path}: '{_META}' must be a table ([meta]), got {meta!r}")
    by_tp = data.get(_BY_TP, {})
    if not isinstance(by_tp, dict):
        raise ScenarioError(f"{path}: '{_BY_TP}' must hold tables [tp.N] of constants, got {by_tp!r}")
    for degree, table in by_tp.items():
        if not degree.isdigit() or int(degree) < 1 or not isinstance(table, dict):
            raise ScenarioError(
                f"{path}: [tp.{degree}] must be a table named by a tensor-parallel degree (e.g. [tp.4])"
            )
        section = _constants(path, f"tp.{degree}.", table)
        if tp is not None and int(degree) == int(tp):
            changes.update(section)
    return replace(base, **changes)


def profile_meta(path: Path | str) -> dict[str, Any]:
    """The profile's ``[meta]`` table (empty when it has none): where its constants came from."""
    meta = _read(path).get(_META, {})
    return meta if isinstance(meta, dict) else {}


def profile_degrees(path: Path | str) -> tuple[int, ...]:
    """The tensor-parallel degrees the profile at ``path`` has ``[tp.N]`` tables for."""
    by_tp = _read(path).get(_BY_TP, {})
    return tuple(sorted(int(k) for k in by_tp if k.isdigit())) if isinstance(by_tp, dict) else ()


def _read(path: Path | str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: profile file not found (write one with `kavier calibrate`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ScenarioError(f"{path}: cannot read the profile file ({reason})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = " ".join(str(exc).split())
        raise ScenarioError(f"{path}: not a valid TOML profile ({msg})") from None


def _constants(path: Path | str, prefix: str, table: dict[str, Any]) -> dict[str, float | bool]:
    """The checked constants of one table of the profile (``prefix``: where it is, for errors)."""
    changes: dict[str, float | bool] = {}
    for key, value in table.items():
        if key not in PROFILE_KEYS:
            expected = ", ".join(PROFILE_KEYS)
            extra = "" if prefix else f", [{_META}], [{_BY_TP}.N]"
            raise ScenarioError(f"{path}: unknown field '{prefix}{key}' (expected one of: {expected}{extra})")
        changes[key] = _check_value(path, prefix + key, value)
    return changes


def _toml_scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_scalar(v, where) for v in value) + "]"
    raise ScenarioError(f"profile metadata '{where}' has a value TOML cannot hold: {value!r}")


def _toml_key(key: str) -> str:
    key = str(key)
    if key and all(c.isalnum() or c in "_-" for c in key):
        return key
    return json.dumps(key, ensure_ascii=False)


def _table_lines(prefix: str, table: dict[str, Any]) -> list[str]:
    lines = [f"[{prefix}]"]
    subtables = []
    for key, value in table.items():
        if value is None:
            continue
        if isinstance(value, dict):
            subtables.append((key, value))
            continue
        lines.append(f"{_toml_key(key)} = {_toml_scalar(value, f'{prefix}.{key}')}")
    for key, value in subtables:
        lines.append("")
        lines.extend(_table_lines(f"{prefix}.{_toml_key(key)}", value))
    return lines


def profile_text(
    params: ServingPerfParams,
    meta: dict[str, Any] | None = None,
    by_tp: dict[int, ServingPerfParams] | None = None,
) -> str:
    """The TOML text :func:`write_profile` writes."""
    lines = ["# Kavier serving profile: calibrated constants of the serving performance model"]
    lines.append("# (load with kavier.perf.profile.load_profile; [meta] says where they came from)")
    lines.extend(_constant_lines(params))
    for degree, tp_params in sorted((by_tp or {}).items()):
        lines.append("")
        lines.append(f"# fitted on the tp = {degree} rows alone; replicas at tp {degree} use these")
        lines.append(f"[{_BY_TP}.{int(degree)}]")
        lines.extend(_constant_lines(tp_params))
    if meta:
        lines.append("")
        lines.extend(_table_lines(_META, dict(meta)))
    return "\n".join(lines) + "\n"


def _constant_lines(params: ServingPerfParams) -> list[str]:
    lines = []
    for key, kind in PROFILE_KEYS.items():
        value = getattr(params, key)
        lines.append(f"{key} = {_toml_scalar(bool(value) if kind == 'bool' else float(value), key)}")
    return lines


def write_profile(
    path: Path | str,
    params: ServingPerfParams,
    meta: dict[str, Any] | None = None,
    by_tp: dict[int, ServingPerfParams] | None = None,
) -> Path:
    """Write ``params`` (with ``by_tp`` as ``[tp.N]`` tables and ``meta`` as the ``[meta]``
    table) to ``path`` atomically.

    ``meta`` values may be strings, numbers, booleans, lists of those, or nested dicts (written
    as sub-tables); ``None`` values are left out. The text goes to a temporary file in the same
    folder, which then replaces ``path``, so a reader never sees half a profile.
    """
    text = profile_text(params, meta, by_tp)
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise ScenarioError(
            f"{path}: cannot write the profile ({exc.strerror or type(exc).__name__})"
        ) from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return target
