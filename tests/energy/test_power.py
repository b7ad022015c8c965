"""``kavier.energy.power``: each model's formula by hand (the shared contract is in
test_power_contract.py)."""

import math

import numpy as np
import pytest

from kavier.energy.power import PowerModel

IDLE, MAX = 50.0, 250.0


@pytest.mark.parametrize(
    ("name", "u", "expected"),
    [
        ("constant", 0.3, MAX),
        ("linear", 0.3, IDLE + 200 * 0.3),
        ("square", 0.3, IDLE + 200 * 0.09),
        ("cubic", 0.3, IDLE + 200 * 0.027),
        ("sqrt", 0.25, IDLE + 200 * 0.5),
        ("mse", 0.5, IDLE + 200 * (1.0 - 0.5**1.4)),
        ("asymptotic", 0.5, IDLE + 100 * (1.5 - math.exp(-0.5 / 0.3))),
        ("asymptotic-dvfs", 0.5, IDLE + 100 * (1.125 - math.exp(-0.125 / 0.3))),
    ],
)
def test_opendc_power_models(name, u, expected):
    model = PowerModel(name, IDLE, MAX)
    assert model.power_w(np.array([u]))[0] == pytest.approx(expected)
    if name != "constant":
        assert model.power_w(np.array([0.0]))[0] == pytest.approx(IDLE)


def test_activity_model_prefill_vs_decode_like_a_measured_h100():
    h100 = PowerModel("activity", 70.0, 700.0)
    prefill = h100.power_w(np.array([0.95]), np.array([1.0]), np.array([0.05]))[0]
    decode = h100.power_w(np.array([0.95]), np.array([0.007]), np.array([1.0]))[0]
    assert prefill == pytest.approx(700.0)
    assert 360 < decode < 400
    assert h100.power_w(np.array([0.0]), np.array([1.0]), np.array([1.0]))[0] == pytest.approx(70.0)
