"""``kavier.sweep.store``: one sweep process per results folder."""

from __future__ import annotations

import pytest

from kavier.sweep import run_sweep
from tests.sweep.helpers import write


def test_one_sweep_process_per_results_folder(tmp_path):
    from kavier.errors import KavierError
    from kavier.sweep.store import SweepLayout

    path = write(tmp_path, "[axes]\nseed = [1]\n")
    layout = SweepLayout(tmp_path / "out")
    layout.prepare()
    with layout.locked(), pytest.raises(KavierError, match="another kavier sweep is writing"):
        run_sweep(path, tmp_path / "out", workers=1)
    assert len(run_sweep(path, tmp_path / "out", workers=1).ok) == 1  # the lock is released
