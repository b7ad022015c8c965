"""Help screens in one style for every command: ``-h`` beside ``--help``, no ``<bool>`` after a
flag, no reStructuredText double backticks, and defaults shown as ``[default: VALUE]``."""

from __future__ import annotations

from typing import Any

import typer

HELP_OPTION_NAMES = ["-h", "--help"]


def plain(text: str | None) -> str | None:
    """``text`` without reStructuredText's double backticks (help screens are not RST)."""
    return None if text is None else text.replace("``", "")


def _tidy_param(param: Any) -> None:
    if getattr(param, "is_flag", False) and param.metavar is None:
        param.metavar = ""  # a flag takes no value: no <bool>
    if getattr(param, "help", None):
        param.help = plain(param.help)
    shown = getattr(param, "show_default", None)
    if isinstance(shown, str) and "_get_default_string" not in vars(param):
        # typer puts a default given as text in parentheses; show it as it is
        param._get_default_string = lambda **_: shown


def tidy_command(command: Any, ctx: Any) -> None:
    """Tidy a command's help text and every parameter's (done when its help is shown)."""
    command.help = plain(command.help)
    command.short_help = plain(command.short_help)
    for param in command.get_params(ctx):
        _tidy_param(param)


class KavierCommand(typer.core.TyperCommand):
    """A command whose help screen is tidied (:func:`tidy_command`)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        tidy_command(self, ctx)
        super().format_help(ctx, formatter)


class KavierGroupMixin:
    """For a command group: its help and its commands' help lines tidied."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        tidy_command(self, ctx)
        for command in getattr(self, "commands", {}).values():
            command.help = plain(command.help)
            command.short_help = plain(command.short_help)
        super().format_help(ctx, formatter)  # type: ignore[misc]
