"""User-facing errors: one line that names the input at fault and what to do about it."""

from __future__ import annotations

import warnings
from typing import Any


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


class KavierWarning(UserWarning):
    """Input that runs but probably not as meant (shown as one ``warning: ...`` line)."""


def shown(value: Any) -> Any:
    """``value`` as the user typed it, or its ``repr`` when it holds a newline or another
    unprintable character (so that an error echoing it stays one line)."""
    return value if not isinstance(value, str) or value.isprintable() else repr(value)


def warn(message: str) -> None:
    """Emit ``message`` as a :class:`KavierWarning`: one ``warning: MESSAGE`` line on stderr
    (no source path), shown once per message; ``-W ignore::kavier.errors.KavierWarning`` or
    :func:`warnings.catch_warnings` silence it."""
    warnings.warn(message, KavierWarning, stacklevel=2)


def _format(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> str:
    if issubclass(category, KavierWarning):
        return f"warning: {message}\n"
    return _plain_format(message, category, *args, **kwargs)


_plain_format = warnings.formatwarning
warnings.formatwarning = _format
