"""The shipped public measurements: every row cited, every value a positive number."""

import math

from kavier.validate.public import PUBLIC, public_rows


def test_every_row_names_a_source_that_sources_md_cites():
    cited = PUBLIC.joinpath("SOURCES.md").read_text(encoding="utf-8")
    ids = {row["source_id"] for row in public_rows()}
    assert ids and all(f"`{source}`" in cited for source in ids)


def test_every_value_is_a_positive_number():
    assert all(math.isfinite(float(r["value"])) and float(r["value"]) > 0 for r in public_rows())


def test_one_source_is_a_subset_and_rows_are_copies():
    nim = public_rows("nvidia_nim_benchmarking_llm_1.0.0")
    assert 0 < len(nim) < len(public_rows())
    nim[0]["value"] = "changed"
    assert public_rows("nvidia_nim_benchmarking_llm_1.0.0")[0]["value"] != "changed"
