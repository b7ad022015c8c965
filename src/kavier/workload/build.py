"""Choose the workload a scenario asks for: a trace file or a generator.

``rate_scale`` multiplies the arrival rate: a trace's arrival times are divided by it, the
poisson/gamma generators' ``rate`` and the chat generator's ``session_rate`` are multiplied by
it (chat think times between turns stay as they are: more users, not faster users). A
closed-loop workload has no arrival rate (the scenario rejects ``rate_scale != 1`` for it).
"""

from __future__ import annotations

from kavier.scenario import Scenario
from kavier.workload.source import WorkloadSource


def workload_source(scenario: Scenario) -> WorkloadSource:
    """The scenario's trace when it names one, else its generator (seeded by ``seed``), cut to
    its first ``KAVIER_MAX_REQUESTS`` requests when that variable is set."""
    from kavier.workload.limit import limit_requests

    return limit_requests(_source(scenario))


def _source(scenario: Scenario) -> WorkloadSource:
    from kavier.workload.scale import scale_arrivals

    scale = scenario.rate_scale
    if scenario.trace:
        from kavier.workload.readers import open_trace

        return scale_arrivals(open_trace(scenario.trace), scale)
    # the generators only for a generated workload (a trace run skips their ~5 ms import)
    from kavier.workload.generators import DEFAULT_SESSION_RATE, ChatSessionGenerator, OpenLoopGenerator
    from kavier.workload.lengths import parse_length

    if scenario.workload in ("poisson", "gamma"):
        return OpenLoopGenerator(
            num_requests=scenario.num_requests,
            arrival=scenario.workload,
            rate=scenario.rate * scale,
            cv=scenario.arrival_cv,
            input_len=parse_length(scenario.input_tokens),
            output_len=parse_length(scenario.output_tokens),
            seed=scenario.seed,
        )
    kwargs = {"num_sessions": scenario.num_sessions, "seed": scenario.seed}
    if scenario.session_rate is not None:
        kwargs["session_rate"] = scenario.session_rate * scale
    elif scale != 1.0:
        kwargs["session_rate"] = DEFAULT_SESSION_RATE * scale
    return ChatSessionGenerator(**kwargs)
