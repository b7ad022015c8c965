"""Checks every registry's contract test shares."""

from __future__ import annotations

from typing import Any

import pytest

from kavier.registry import Registry


def assert_registered_once(registry: Registry[Any], name: str, entry: Any, other: Any) -> None:
    """``name`` (registered as ``entry`` by the test) is listed, and cannot be taken by ``other``.

    Registering the same entry again changes nothing; another entry under the same name, or under
    a built-in name, raises and leaves the registry as it was.
    """
    assert name in registry.names() and registry.get(name) is entry
    before = registry.items()
    registry.add(name, entry)
    assert registry.items() == before
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(name, other)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(name)(other)
    builtin = registry.names()[0]
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(builtin, other)
    assert registry.items() == before and registry.get(name) is entry
