"""The reference tables of the documentation, read from the code: every scenario key by group,
every registered policy by extension point, every summary key.

``docs/reference.md`` is this module's output (a test checks it is up to date); regenerate it
with ``python -m kavier.commands.reference docs/reference.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HEADER = """\
# Reference

Generated from the code by `python -m kavier.commands.reference docs/reference.md`; do not edit
by hand (a test fails when this file and the code disagree). The extension points are described
in [extending.md](extending.md), the design in [architecture.md](architecture.md).
"""


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(value: Any) -> str:
    from pydantic_core import PydanticUndefined

    if value is PydanticUndefined:
        return "(required)"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"`{value}`"


def scenario_tables() -> list[str]:
    """One table per settings group: key, flag, default, description."""
    from kavier.settings import GROUPS
    from kavier.settings.base import cli_metadata, option_flag
    from kavier.settings.scope import scope_note

    out = ["## Scenario keys", ""]
    out.append(
        "Every key is a scenario-file key (at the top level or in its group's table), a sweep axis "
        "and a `kavier run` flag (unless marked file-only). Units are in the names or the descriptions."
    )
    for group in GROUPS:
        out += ["", f"### {group.panel} (`[{group.table}]`)", ""]
        doc = " ".join((group.__doc__ or "").strip().split("\n\n")[0].split())
        out += [doc, "", "| key | flag | default | meaning |", "| --- | --- | --- | --- |"]
        for key, field in group.model_fields.items():
            meta = cli_metadata(field)
            flag = "file only" if meta.get("file_only") else f"`{option_flag(key, field)}`"
            description = (field.description or "") + scope_note(key)
            out.append(f"| `{key}` | {flag} | {_cell(_default(field.default))} | {_cell(description)} |")
    return out


def registry_tables() -> list[str]:
    """One table per registry: name and the entry's one-line description."""
    from kavier.registry import ALL

    out = ["## Registered policies", ""]
    out.append("Each extension point's registry, as built in (a plugin adds rows at run time).")
    for label, registry in ALL.items():
        out += ["", f"### {label.replace('_', ' ')} (`kavier.registry.{_constant(label)}`)", ""]
        out += ["| name | what it does |", "| --- | --- |"]
        out += [f"| `{name}` | {_cell(text)} |" for name, text in registry.describe()]
    return out


def _constant(label: str) -> str:
    from kavier.registry import ALL

    module = sys.modules["kavier.registry"]
    for name, value in vars(module).items():
        if value is ALL[label] and name.isupper():
            return name
    return label.upper()


def summary_table() -> list[str]:
    """The summary keys in their order."""
    from kavier.summary import SUMMARY_KEYS

    keys = ", ".join(f"`{k}`" for k in SUMMARY_KEYS)
    return [
        "## Summary keys",
        "",
        "Every `summary.json` holds these keys in this order (`null` where a run cannot have the "
        f"value; see `kavier.summary`): {keys}.",
    ]


def render() -> str:
    """The whole reference page."""
    return "\n".join([HEADER, *scenario_tables(), "", *registry_tables(), "", *summary_table(), ""])


def main(argv: list[str]) -> None:
    """Write the page to the path given (or print it)."""
    text = render()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
