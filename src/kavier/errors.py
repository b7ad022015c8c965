"""User-facing errors: one line that names the input at fault and what to do about it."""

from __future__ import annotations


class KavierError(Exception):
    """An error caused by the user's input, shown as one line without a traceback.

    The message should name the file, row or field at fault and say what to do.
    """


class ScenarioError(KavierError):
    """A scenario value is invalid or the scenario is impossible (e.g. the model does not fit)."""


class LibraryError(KavierError):
    """An unknown model or GPU, or a malformed catalogue entry."""


class WorkloadError(KavierError):
    """A trace file is unreadable or holds invalid rows (missing columns, negative counts, NaN)."""
