"""Choose the workload a scenario asks for: a trace file or a generator."""

from __future__ import annotations

from kavier.scenario import Scenario
from kavier.workload.source import WorkloadSource


def workload_source(scenario: Scenario) -> WorkloadSource:
    """The scenario's trace when it names one, else its generator (seeded by ``seed``)."""
    from kavier.workload.generators import ChatSessionGenerator, OpenLoopGenerator
    from kavier.workload.lengths import parse_length
    from kavier.workload.readers import open_trace

    if scenario.trace:
        return open_trace(scenario.trace)
    if scenario.workload in ("poisson", "gamma"):
        return OpenLoopGenerator(
            num_requests=scenario.num_requests,
            arrival=scenario.workload,
            rate=scenario.rate,
            cv=scenario.arrival_cv,
            input_len=parse_length(scenario.input_tokens),
            output_len=parse_length(scenario.output_tokens),
            seed=scenario.seed,
        )
    kwargs = {"num_sessions": scenario.num_sessions, "seed": scenario.seed}
    if scenario.session_rate is not None:
        kwargs["session_rate"] = scenario.session_rate
    return ChatSessionGenerator(**kwargs)
