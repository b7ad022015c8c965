"""``kavier.settings.workload``: a plain token count is a fixed length."""

from __future__ import annotations


def test_scenario_takes_a_plain_token_count_as_a_fixed_length(tmp_path) -> None:
    import kavier
    from kavier.scenario import build_scenario

    path = tmp_path / "s.toml"
    path.write_text('workload = "poisson"\nnum_requests = 4\ninput_tokens = 300\noutput_tokens = 200\n')
    scenario = build_scenario(path, {})
    assert (scenario.input_tokens, scenario.output_tokens) == ("300", "200")
    result = kavier.simulate(scenario)
    assert result.requests.column("num_output_tokens").to_pylist() == [200] * 4
    assert result.requests.column("num_input_tokens").to_pylist() == [300] * 4
