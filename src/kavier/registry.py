"""Registries: one per extension point, a name registered once by a decorator.

An extension point (engine presets, schedulers, routers, cache eviction policies, power models,
trace formats, carbon-intensity sources, outputs) is a :class:`Registry`. A policy registers
itself where it is defined::

    from kavier.registry import ROUTERS

    @ROUTERS.register("round_robin")
    class RoundRobin:
        \"\"\"Replicas in turn.\"\"\"

and everything that lists or checks names reads the registry: ``Scenario`` validation, the CLI's
help, the documentation tables and the contract tests that every registered policy must pass.

The registries live here, below every layer that defines policies, so that the scenario (the
lowest layer) can check a name without importing the engine. Each registry knows the modules
that define its built-in entries and imports them on the first lookup. A policy defined
elsewhere (a user's module) registers when that module is imported: in Python, import it before
the run; on the command line, name it in the ``KAVIER_PLUGINS`` environment variable
(comma-separated module names) or publish it as a ``kavier.plugins`` entry point of an
installed package. Plugins are imported the first time a name is not found, so runs that use
only built-in names never pay for them.

The contract: a name is registered once (registering it twice is an error, so two policies can
never silently replace each other); ``get`` of an unknown name raises a one-line
:class:`~kavier.errors.ScenarioError` that lists the known names.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from kavier.errors import ScenarioError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one kind of policy, each mapped to the object that implements it."""

    def __init__(self, kind: str, builtin_modules: tuple[str, ...] = ()) -> None:
        """``kind``: what an entry is, for messages (``"router"``); ``builtin_modules``: the
        modules whose import registers the built-in entries (imported on the first lookup)."""
        self.kind = kind
        self.builtin_modules = builtin_modules
        self._entries: dict[str, T] = {}
        self._loaded = not builtin_modules

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated class or function under ``name``."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        """Register ``entry`` under ``name`` (an error if the name is taken by another entry)."""
        known = self._entries.get(name)
        if known is not None and known is not entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({known!r} and {entry!r})")
        self._entries[name] = entry

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self.builtin_modules:
                importlib.import_module(module)

    def _find(self, name: object) -> bool:
        """Whether ``name`` is registered, loading the built-ins and then the plugins if needed."""
        self._load()
        if name in self._entries:
            return True
        load_plugins()
        return name in self._entries

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order (built-ins first)."""
        self._load()
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return self._find(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs in registration order."""
        self._load()
        return list(self._entries.items())

    def get(self, name: str) -> T:
        """The entry registered under ``name`` (one-line error naming the known ones otherwise)."""
        if not self._find(name):
            raise ScenarioError(self.unknown(name))
        return self._entries[name]

    def unknown(self, name: Any) -> str:
        """The message for a name that is not registered."""
        return f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"

    def check(self, name: str) -> str:
        """``name`` if registered, else ``ValueError`` (for pydantic validators)."""
        if name not in self:
            raise ValueError(self.unknown(name))
        return name

    def describe(self) -> list[tuple[str, str]]:
        """(name, one line about the entry) for help texts and documentation: an entry that is a
        data row (not a class or function) describes itself (``describe()``), others by the first
        sentence of their docstring."""
        rows = []
        for name, entry in self.items():
            if not callable(entry) and callable(getattr(entry, "describe", None)):
                rows.append((name, entry.describe()))
                continue
            paragraph = " ".join((getattr(entry, "__doc__", None) or "").strip().split("\n\n")[0].split())
            end = paragraph.find(". ")
            rows.append((name, paragraph if end < 0 else paragraph[: end + 1]))
        return rows


PLUGINS_VARIABLE = "KAVIER_PLUGINS"
PLUGIN_ENTRY_POINTS = "kavier.plugins"
_plugins_loaded = False


def load_plugins() -> None:
    """Import the plugin modules (``KAVIER_PLUGINS`` and ``kavier.plugins`` entry points) once.

    A module that cannot be imported is an error naming it (a misspelt plugin must not look like
    an unknown policy name).
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    names = [m.strip() for m in os.environ.get(PLUGINS_VARIABLE, "").split(",") if m.strip()]
    for module in names:
        try:
            _import_plugin(module)
        except ImportError as exc:
            raise ScenarioError(
                f"{PLUGINS_VARIABLE}: cannot import plugin module {module!r} ({exc}); check the name "
                "and that it is on the Python path"
            ) from None
    from importlib.metadata import entry_points

    for point in entry_points(group=PLUGIN_ENTRY_POINTS):
        try:
            point.load()
        except ImportError as exc:
            raise ScenarioError(f"plugin {point.name!r} ({point.value}) cannot be imported: {exc}") from None


def _import_plugin(module: str) -> None:
    """Import ``module``, also from the working directory (a console script's path lacks it)."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        if exc.name != module.split(".")[0] or here in sys.path:
            raise
        sys.path.insert(0, here)
        try:
            importlib.import_module(module)
        finally:
            sys.path.remove(here)


SCHEDULERS: Registry[Any] = Registry("scheduler", ("kavier.engine.schedulers",))
ENGINES: Registry[Any] = Registry("engine", ("kavier.engine.engines",))
ROUTERS: Registry[Any] = Registry("router", ("kavier.engine.routers",))
EVICTION_POLICIES: Registry[Any] = Registry("cache eviction policy", ("kavier.cache.eviction",))
POWER_MODELS: Registry[Any] = Registry("power model", ("kavier.energy.power",))
TRACE_FORMATS: Registry[Any] = Registry("trace format", ("kavier.workload.formats",))
CARBON_SOURCES: Registry[Any] = Registry("carbon-intensity source", ("kavier.energy.sources",))
OUTPUTS: Registry[Any] = Registry("output", ("kavier.observers",))

ALL: dict[str, Registry[Any]] = {
    "engines": ENGINES,
    "schedulers": SCHEDULERS,
    "routers": ROUTERS,
    "eviction_policies": EVICTION_POLICIES,
    "power_models": POWER_MODELS,
    "trace_formats": TRACE_FORMATS,
    "carbon_sources": CARBON_SOURCES,
    "outputs": OUTPUTS,
}
