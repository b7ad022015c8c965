"""What every group of scenario settings shares: the base model, value parsers and field types.

A field's command-line option is derived from its definition (see
:mod:`kavier.commands.scenario_options`): the flag is ``--`` and the key with dashes, the help is
the field's ``description``, the value type follows the annotation. What cannot be derived is
said where the field is defined: :data:`Seconds` and :data:`Switch` fields take text
(``100ms``, ``on``), :func:`policy_name` fields name an entry of a registry, and
:func:`cli` adds extra spellings, a flag style or a metavar (kept in the field's
``json_schema_extra`` under ``"cli"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic.fields import FieldInfo

from kavier.registry import Registry

DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> Any:
    """Seconds from a number or a string with a unit (``0.1``, ``"100ms"``, ``"5 min"``)."""
    if isinstance(value, str):
        text = value.strip().lower()
        for unit in sorted(DURATION_UNITS, key=len, reverse=True):
            if text.endswith(unit):
                number = text[: -len(unit)].strip()
                try:
                    return float(number) * DURATION_UNITS[unit]
                except ValueError:
                    break
        try:
            return float(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a duration; give seconds (0.1) or a unit: ms, s, min, h"
            ) from None
    return value


def on_off(value: Any) -> Any:
    """Accept on/off, true/false, yes/no and 1/0 for boolean switches."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"on", "true", "yes", "1"}:
            return True
        if lowered in {"off", "false", "no", "0"}:
            return False
    return value


@dataclass(frozen=True)
class AsText:
    """Field metadata: on the command line the value is text that the field's validators parse
    (``100ms``, ``off``), shown in the help as ``metavar``."""

    metavar: str


Seconds = Annotated[float, BeforeValidator(parse_duration), AsText("SECONDS")]
"""A duration in seconds; text may carry a unit (``100ms``, ``5min``, ``1h``)."""

Switch = Annotated[bool, BeforeValidator(on_off), AsText("on|off")]
"""A boolean that text gives as on/off, true/false, yes/no or 1/0."""


def policy_name(registry: Registry[Any]) -> Any:
    """The type of a field that names an entry of ``registry``: a string checked against it.

    The registry rides along in the type's metadata, so that the command line lists its names.
    """
    return Annotated[str, AfterValidator(registry.check), registry]


OptionStyle = Literal["value", "switch", "flag"]


def cli(
    *aliases: str,
    flag: str | None = None,
    style: OptionStyle | None = None,
    metavar: str | None = None,
    hidden: bool = False,
    file_only: bool = False,
) -> dict[str, Any]:
    """A field's command-line metadata, for ``Field(json_schema_extra=cli(...))``.

    ``aliases``: spellings accepted beside ``--key-with-dashes`` (``"--kv_cache"``, ``"-o"``);
    ``flag``: the spelling shown first, when it is not the key's (``"--think-time"``);
    ``style``: ``"value"`` (``--x VALUE``), ``"switch"`` (``--x on|off``) or ``"flag"``
    (``--x/--no-x``; default: ``"switch"`` for booleans, ``"value"`` otherwise);
    ``metavar``: how the help shows the value; ``hidden``: left out of the help;
    ``file_only``: no option at all (a value a flag cannot hold, e.g. a list of tables).
    """
    given = {
        "aliases": list(aliases),
        "flag": flag,
        "style": style,
        "metavar": metavar,
        "hidden": hidden,
        "file_only": file_only,
    }
    return {"cli": {key: value for key, value in given.items() if value}}


class Settings(BaseModel):
    """A group of scenario settings: one grouping table of a scenario file, one help panel.

    ``table`` is the name of the table a scenario file may hold the group's keys in
    (``[cache]``); ``panel`` the title of the group's panel in ``kavier run --help``. A group's
    schema is built only when the group itself validates (``defer_build``): the scenario, which
    inherits every group, builds its own.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    table: ClassVar[str] = ""
    panel: ClassVar[str] = ""


def cli_metadata(field: FieldInfo) -> dict[str, Any]:
    """The command-line metadata :func:`cli` put on ``field`` (empty when there is none)."""
    extra = field.json_schema_extra
    return dict(extra.get("cli", {})) if isinstance(extra, dict) else {}


def option_flag(key: str, field: FieldInfo) -> str:
    """The flag a scenario key is shown as: ``--think-time`` for ``think_time_s``."""
    return cli_metadata(field).get("flag") or "--" + key.replace("_", "-")
