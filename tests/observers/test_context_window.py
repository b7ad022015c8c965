"""Requests longer than the model's context window: simulated as given, one warning line."""

from __future__ import annotations

import pytest

import kavier
from kavier.errors import KavierWarning
from tests.cli_helper import kavier as kavier_cli


@pytest.mark.parametrize("preset", ["serving", "thesis"])
def test_requests_beyond_the_context_window_warn_with_their_count(preset):
    requests = {"num_input_tokens": [8000, 100, 9000], "num_output_tokens": [500, 10, 10]}
    with pytest.warns(KavierWarning) as caught:
        result = kavier.simulate(requests=requests, preset=preset)
    assert result.summary["num_requests"] == 3  # still simulated as given
    (message,) = [str(w.message) for w in caught if "context window" in str(w.message)]
    assert message.startswith("2 of 3 requests exceed Llama-3-8B's context window of 8,192 tokens")
    assert "longest 9,010" in message and "\n" not in message


def test_requests_within_the_context_window_do_not_warn(recwarn):
    kavier.simulate(requests={"num_input_tokens": [8000], "num_output_tokens": [192]})
    assert not [w for w in recwarn if issubclass(w.category, KavierWarning)]


def test_the_cli_shows_the_warning_as_one_clean_line(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("num_input_tokens,num_output_tokens\n9000,10\n100,10\n")
    done = kavier_cli("run", "--trace", trace, "-o", tmp_path / "o", "--no-opendc", "-q")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "context window" in line]
    assert lines == [
        "warning: 1 of 2 requests exceed Llama-3-8B's context window of 8,192 tokens (prompt + output, "
        "longest 9,010); they were simulated as given: cap the lengths or choose a model with a longer "
        "context"
    ]
