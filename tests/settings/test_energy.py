"""``kavier.settings.energy``: a PUE below one is rejected."""

import pytest

import kavier


def test_pue_below_one_is_rejected():
    from kavier.errors import ScenarioError

    with pytest.raises(ScenarioError, match="PUE"):
        kavier.build_scenario(overrides={"pue": 0.9})
