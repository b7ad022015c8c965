"""Commands built on first use: a group lists them from their docstrings alone.

Building ``run`` or ``plan`` generates their options from the scenario model, which imports
pydantic and the model (~0.2 s). :func:`defer` registers such a command as a stand-in holding
only its help; :class:`LazyGroup` replaces the stand-in by the real command when the command
is invoked or its own help is shown, so the group's help and the other commands never pay.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer
from typer.models import CommandInfo

from kavier.commands.helpfmt import KavierGroupMixin


class StandInCommand(typer.core.TyperCommand):
    """A deferred command as the group's help lists it; :meth:`build` makes the real one."""

    real: CommandInfo
    pretty_exceptions_short: bool = True

    def build(self, rich_markup_mode: Any) -> typer.core.TyperCommand:
        """The real command, built now."""
        return typer.main.get_command_from_info(
            self.real,
            pretty_exceptions_short=self.pretty_exceptions_short,
            rich_markup_mode=rich_markup_mode,
        )


class LazyGroup(KavierGroupMixin, typer.core.TyperGroup):
    """A command group whose deferred commands (:func:`defer`) are built on first use."""

    listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if isinstance(found, StandInCommand) and not self.listing:
            found = self.commands[cmd_name] = found.build(self.rich_markup_mode)
        return found

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.listing = True  # the command list needs only the stand-ins' help lines
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


def _never_called() -> None:
    """A stand-in's callback: the group builds the real command before anything is invoked."""
    raise RuntimeError("a deferred command's stand-in was invoked")


def defer(app: typer.Typer, callback: Callable[..., Any], cls: type[typer.core.TyperCommand]) -> None:
    """Register ``callback`` on ``app`` (a :class:`LazyGroup` app) as a command built on first
    use with the command class ``cls``."""
    name = typer.main.get_command_name(callback.__name__)
    stand_in = type(
        f"StandIn_{callback.__name__}",
        (StandInCommand,),
        {
            "real": CommandInfo(name=name, callback=callback, cls=cls),
            "pretty_exceptions_short": app.pretty_exceptions_short,
        },
    )
    app.command(name=name, help=inspect.getdoc(callback), cls=stand_in)(_never_called)
