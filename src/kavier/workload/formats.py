"""Trace formats as data rows: which column plays which role, and how to read it.

Each format is a :class:`TraceFormat` registered in :data:`kavier.registry.TRACE_FORMATS`;
:func:`kavier.workload.readers.open_trace` picks, in registration order, the first format whose
required columns a file has (names compared case-insensitively). A new format is one more row::

    TRACE_FORMATS.add("myformat", TraceFormat("myformat", {"input": ("prompt_len", "count"),
                                                           "output": ("gen_len", "count")},
                                              ("input", "output")))

Roles: ``input`` and ``output`` (token counts), ``arrival`` (its kind gives the unit: ``s``,
``ms`` or ``datetime``), ``session`` (``id``: int or string), ``turn`` (``int``), and the
prefix identities ``input_tokens`` and ``hash_ids`` (``list``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kavier.registry import TRACE_FORMATS

Kind = Literal["count", "s", "ms", "datetime", "id", "int", "list"]


@dataclass(frozen=True)
class TraceFormat:
    """A trace format: which column plays which role, and how to read it."""

    name: str
    columns: dict[str, tuple[str, Kind]]  # role -> (column name as documented, kind)
    required: tuple[str, ...]  # roles that must be present

    def describe(self) -> str:
        """The required columns, e.g. ``azure (TIMESTAMP, ContextTokens, GeneratedTokens)``."""
        return f"{self.name} ({', '.join(self.columns[r][0] for r in self.required)})"


BUILTIN_FORMATS: tuple[TraceFormat, ...] = (
    TraceFormat(
        "thesis",
        {
            "input": ("num_input_tokens", "count"),
            "output": ("num_output_tokens", "count"),
            "arrival": ("ts", "s"),
            "session": ("session_id", "id"),
            "turn": ("turn_id", "int"),
            "input_tokens": ("input_tokens", "list"),
            "hash_ids": ("hash_ids", "list"),
        },
        ("input", "output"),
    ),
    TraceFormat(
        "azure",
        {
            "arrival": ("TIMESTAMP", "datetime"),
            "input": ("ContextTokens", "count"),
            "output": ("GeneratedTokens", "count"),
        },
        ("arrival", "input", "output"),
    ),
    TraceFormat(
        "burstgpt",
        {
            "arrival": ("Timestamp", "s"),
            "input": ("Request tokens", "count"),
            "output": ("Response tokens", "count"),
        },
        ("arrival", "input", "output"),
    ),
    TraceFormat(
        "mooncake",
        {
            "arrival": ("timestamp", "ms"),
            "input": ("input_length", "count"),
            "output": ("output_length", "count"),
            "hash_ids": ("hash_ids", "list"),
        },
        ("arrival", "input", "output"),
    ),
    TraceFormat(
        "vidur",
        {
            "input": ("num_prefill_tokens", "count"),
            "output": ("num_decode_tokens", "count"),
            "arrival": ("arrived_at", "s"),
        },
        ("input", "output"),
    ),
)

for _format in BUILTIN_FORMATS:
    TRACE_FORMATS.add(_format.name, _format)


def accepted_formats() -> str:
    """Every registered format with its required columns, for error messages."""
    return "; ".join(fmt.describe() for _, fmt in TRACE_FORMATS.items())
