"""Test helper: drop from a scenario's values the keys that would change nothing where they are
set (kavier.settings.scope rejects them), so that generated scenarios stay valid."""

from __future__ import annotations

from typing import Any

from kavier.errors import ScenarioError
from kavier.scenario import Scenario, build_scenario
from kavier.settings.base import option_flag

# value_error's messages (kavier.settings.scope) -> the key each one is about
VALUE_ERRORS = {
    "the block prefix cache and the response cache": ("prefix_cache", "response_cache"),
    "scheduler ": ("scheduler",),
    "--workload closed-loop needs": ("workload",),
    "--gpus ": ("gpus",),
}


def applicable(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` less every key the scope check names, one at a time (other errors raise)."""
    kept = dict(values)
    while True:
        try:
            build_scenario(None, kept)
            return kept
        except ScenarioError as exc:
            message = str(exc).removeprefix("scenario: ")
            named = [
                key
                for key in kept
                if message.startswith(option_flag(key, Scenario.model_fields[key]) + " ")
                and (" applies to the " in message or " acts only with " in message)
            ]
            named += [k for text, keys in VALUE_ERRORS.items() if message.startswith(text) for k in keys]
            named = [key for key in named if key in kept]
            if not named:
                raise
            for key in named:
                del kept[key]


def context_for(keys: Any) -> dict[str, Any]:
    """Settings under which every key of ``keys`` may be set: the thesis preset for a
    thesis-only key, and the examples of the keys' hard needs (kavier.settings.scope)."""
    from kavier.settings.scope import SCOPES, Scope

    context: dict[str, Any] = {}
    for key in keys:
        scope = SCOPES.get(key, Scope())
        if "serving" not in scope.presets:
            context["preset"] = "thesis"
        for need in scope.needs:
            if not need.soft:
                context.update(need.example)
    return context


def as_argv(values: dict[str, Any]) -> list[str]:
    """``values`` as ``kavier run`` flags (``--key value``; booleans as on/off)."""
    from kavier.settings.base import cli_metadata

    argv: list[str] = []
    for key, value in values.items():
        field = Scenario.model_fields[key]
        flag = option_flag(key, field)
        if cli_metadata(field).get("style") == "flag":
            argv.append(flag if value else "--no-" + flag.removeprefix("--"))
            continue
        text = ("on" if value else "off") if isinstance(value, bool) else str(value)
        argv += [flag, text]
    return argv
