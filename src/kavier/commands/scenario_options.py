"""Command-line options generated from the scenario model: one per key, in its group's help panel.

A key's option is derived from its field (:mod:`kavier.settings`): the flag is ``--`` and the
key with dashes (plus the spellings and style the field's ``cli`` metadata asks for), the help
is the field's description, the shown default is the field's (and a preset's, where it differs),
the help panel is the group's. A ``--x/--no-x`` flag gives a boolean; every other value is
passed on as the text given (``3``, ``100ms``, ``on``, ``1,3``) for the scenario's validators
to parse, so that a bad value is a one-line error naming the flag; the help's metavar follows
the annotation. A key whose value a flag cannot hold is left to scenario files.

:class:`ScenarioCommand` wraps a command function so that typer sees those options after the
function's own parameters; the function gets the options given as ``overrides``. Nothing here
imports the scenario model (pydantic) until a command is built.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kavier.commands.helpfmt import KavierCommand

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from kavier.registry import Registry

OVERRIDES = "overrides"


@functools.cache
def _fields() -> dict[str, tuple[FieldInfo, str]]:
    """Every scenario key -> (its field, its group's help panel), in help-panel order."""
    from kavier.settings import GROUPS

    return {key: (field, group.panel) for group in GROUPS for key, field in group.model_fields.items()}


def _unwrap(field: FieldInfo) -> tuple[Any, list[Any]]:
    """The field's core type (without ``None`` and ``Annotated``) and every metadata item."""
    annotation, marks = field.annotation, list(field.metadata)
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            marks += annotation.__metadata__
            annotation = annotation.__origin__
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, marks
            annotation = args[0]
        else:
            return annotation, marks


def field_registry(field: FieldInfo) -> Registry[Any] | None:
    """The registry a policy key's value must be registered in (None for other keys)."""
    from kavier.registry import Registry

    return next((m for m in _unwrap(field)[1] if isinstance(m, Registry)), None)


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _shown_default(key: str, field: FieldInfo) -> str | bool:
    """The default the help shows: the field's, and each preset's that differs from it."""
    from kavier.scenario import PRESETS

    parts = [] if field.default is None else [_value_text(field.default)]
    for preset, values in PRESETS.items():
        if key in values and values[key] != field.default:
            parts.append(f"{preset} preset: {_value_text(values[key])}")
    return "; ".join(parts) or False


def option_parameter(key: str, field: FieldInfo, panel: str) -> inspect.Parameter | None:
    """The typer parameter of one scenario key (None for a key only a scenario file can set)."""
    from kavier.settings.base import AsText, cli_metadata, option_flag

    meta = cli_metadata(field)
    if meta.get("file_only"):
        return None
    core, marks = _unwrap(field)
    text = next((m for m in marks if isinstance(m, AsText)), None)
    style = meta.get("style") or ("switch" if core is bool else "value")
    dashed = "--" + key.replace("_", "-")
    decls = list(dict.fromkeys([option_flag(key, field), dashed, *meta.get("aliases", ())]))
    metavar = meta.get("metavar")
    value_type: Any = str
    if style == "flag":
        decls[0] = f"{decls[0]}/--no-{decls[0].removeprefix('--')}"
        value_type = bool
    elif style == "switch":
        metavar = metavar or "on|off"
    elif field_registry(field) is not None:
        metavar = metavar or "NAME"
    elif typing.get_origin(core) is typing.Literal:
        metavar = metavar or "|".join(map(str, typing.get_args(core)))
    elif text is not None:
        metavar = metavar or text.metavar
    elif core in (int, float):
        metavar = metavar or f"<{core.__name__}>"
    option = typer.Option(
        *decls,
        help=field.description,
        rich_help_panel=panel,
        show_default=_shown_default(key, field),
        metavar=metavar,
        hidden=bool(meta.get("hidden")),
    )
    return inspect.Parameter(
        key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[value_type | None, option]
    )


def option_parameters(keys: Iterable[str] | None = None) -> list[inspect.Parameter]:
    """The parameters of ``keys`` (default: every scenario key), in help-panel order."""
    fields = _fields()
    wanted = set(fields if keys is None else keys)
    unknown = wanted - set(fields)
    if unknown:
        raise ValueError(f"not scenario keys: {', '.join(sorted(unknown))}")
    made = (option_parameter(key, field, panel) for key, (field, panel) in fields.items() if key in wanted)
    return [p for p in made if p is not None]


def file_only_keys(keys: Iterable[str] | None = None) -> list[str]:
    """The keys among ``keys`` (default: all) that only a scenario file can set."""
    from kavier.settings.base import cli_metadata

    fields = _fields()
    wanted = set(fields if keys is None else keys)
    return [k for k, (f, _) in fields.items() if k in wanted and cli_metadata(f).get("file_only")]


class ScenarioCommand:
    """A command function with one option per scenario key (or per key of a chosen subset).

    The wrapped function declares its own parameters and a keyword-only ``overrides``; typer sees
    the own parameters followed by the generated options (``__signature__``, built on first use),
    and the function receives the options that were given as ``overrides`` (key -> value).
    """

    def __init__(self, func: Callable[..., Any], keys: tuple[str, ...] | None = None) -> None:
        functools.update_wrapper(self, func)
        self.keys = keys

    @functools.cached_property
    def _own(self) -> inspect.Signature:
        own = inspect.signature(self.__wrapped__, eval_str=True)
        return own.replace(parameters=[p for p in own.parameters.values() if p.name != OVERRIDES])

    @functools.cached_property
    def options(self) -> list[inspect.Parameter]:
        """The generated options' parameters (one per scenario key a flag can set)."""
        options = option_parameters(self.keys)
        clash = {option.name for option in options} & set(self._own.parameters)
        if clash:
            raise ValueError(f"{self.__name__}: own parameters are scenario keys: {', '.join(sorted(clash))}")
        return options

    @functools.cached_property
    def __signature__(self) -> inspect.Signature:
        own = self._own
        return own.replace(parameters=[*own.parameters.values(), *self.options])

    def __call__(self, **values: Any) -> Any:
        own = {name: values.pop(name) for name in self._own.parameters if name in values}
        overrides = {key: value for key, value in values.items() if value is not None}
        return self.__wrapped__(**own, **{OVERRIDES: overrides})


def scenario_command(keys: tuple[str, ...] | None = None) -> Callable[[Callable[..., Any]], ScenarioCommand]:
    """Decorator: the function as a :class:`ScenarioCommand` with options for ``keys`` (all)."""

    def wrap(func: Callable[..., Any]) -> ScenarioCommand:
        return ScenarioCommand(func, keys)

    return wrap


def help_text(key: str) -> str:
    """A key's help as the help screen shows it: its description with where it acts (the preset
    it is limited to and the settings it needs; rich markup escaped), and for a policy key the
    names its registry holds now."""
    from rich.markup import escape

    from kavier.settings.scope import scope_note

    field = _fields()[key][0]
    text = escape((field.description or "") + scope_note(key))
    registry = field_registry(field)
    if registry is not None:
        text += f"; known: {', '.join(registry.names())}"
    return text


class ScenarioTyperCommand(KavierCommand):
    """A command with generated scenario options whose help is completed when it is shown: the
    registries' names (importing the modules that register them) and the file-only keys."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        source = inspect.unwrap(self.callback, stop=lambda f: isinstance(f, ScenarioCommand))
        if isinstance(source, ScenarioCommand):
            generated = {option.name for option in source.options}
            for param in self.get_params(ctx):
                if param.name in generated:
                    param.help = help_text(param.name)
            only = file_only_keys(source.keys)
            if only and not self.epilog:
                self.epilog = "Keys only a scenario file can set: " + ", ".join(only) + "."
        super().format_help(ctx, formatter)
