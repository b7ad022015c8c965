"""Shared fixtures: small hand-made specs, the optional shared data folder, and registering
test entries in the registries for one test."""

from pathlib import Path
from typing import Any

import pytest

from kavier.library.spec import GpuSpec, ModelSpec
from kavier.registry import Registry
from tests.paths import SHARED_DATA


@pytest.fixture
def llama3_8b() -> ModelSpec:
    return ModelSpec(
        name="Llama-3-8B",
        num_layers=32,
        hidden_size=4096,
        num_attention_heads=32,
        num_kv_heads=8,
        head_dim=128,
        intermediate_size=14336,
        vocab_size=128256,
        num_params=8.03e9,
        num_active_params=8.03e9,
        nominal_params=8e9,
    )


@pytest.fixture
def a10() -> GpuSpec:
    return GpuSpec(
        name="A10",
        flops_fp16=125e12,
        memory_bytes=24 * 1024**3,
        memory_bandwidth=600e9,
        idle_power_w=30.0,
        max_power_w=150.0,
        interconnect_bandwidth=32e9,
        price_per_hour_usd=1.0,
        embodied_co2_g=100e3,
        cores=9216,
        boost_clock_mhz=1695.0,
    )


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the project")
    return SHARED_DATA


@pytest.fixture
def register():
    """``register(registry, name, entry)``: add an entry under a test name for one test only.

    The built-ins are loaded first (so the entry comes after them in registration order) and the
    entry is taken out of its registry when the test ends, so other tests never see it.
    """
    added: list[tuple[Registry[Any], str]] = []

    def add(registry: Registry[Any], name: str, entry: Any) -> Any:
        registry.names()
        assert name not in registry, f"{name!r} is already registered"
        registry.add(name, entry)
        added.append((registry, name))
        return entry

    yield add
    for registry, name in reversed(added):
        registry._entries.pop(name, None)
