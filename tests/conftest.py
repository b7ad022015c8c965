"""Shared fixtures: small hand-made specs and the optional shared data folder."""

from pathlib import Path

import pytest

from kavier.library.spec import GpuSpec, ModelSpec

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
