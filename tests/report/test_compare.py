"""``kavier.report.compare``: key metrics of run folders and their ratios to the first run."""

import pytest

from kavier.report.compare import compare
from tests.runs import base_and_cached_folders


def test_compare_gives_ratios_to_the_first_run(tmp_path):
    folders = base_and_cached_folders(tmp_path)
    result = compare(folders)
    base, cached = result.summaries
    assert result.ratio("usd_per_mtok", 1) == pytest.approx(cached["usd_per_mtok"] / base["usd_per_mtok"])
    assert result.ratio("gco2_per_mtok", 1) < 1.0  # caching saves prefill energy
