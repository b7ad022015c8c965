"""Closed-loop clients: each sends its next request when its previous one finishes.

``concurrency`` clients, each sending its next request when its previous one finishes (plus
``think_time_s``), until ``num_requests`` have been sent; lengths are drawn from the scenario's
``input_tokens`` and ``output_tokens`` specs (seeded by ``seed``). The engine asks for the next
request of a client as that client's request finishes. A request longer than ``max_model_len``
(prompt + output tokens) is rejected at once, as a server answers it 400: it counts among the
``num_requests`` sent (in ``rejected``) and the client sends its next one at the same instant.
"""

from __future__ import annotations

import numpy as np

from kavier.scenario import Scenario


class ClosedLoop:
    """``concurrency`` clients sending ``num_requests`` requests in all (see the module docstring)."""

    def __init__(self, scenario: Scenario) -> None:
        from kavier.workload.lengths import parse_length

        self.rng = np.random.default_rng(scenario.seed)
        from kavier.workload.limit import max_requests

        cap = max_requests()  # KAVIER_MAX_REQUESTS
        self.total = scenario.num_requests if cap is None else min(cap, scenario.num_requests)
        self.concurrency = scenario.concurrency
        self.think = scenario.think_time_s
        self.input_len = parse_length(scenario.input_tokens)
        self.output_len = parse_length(scenario.output_tokens)
        self.max_len = scenario.max_model_len
        self.sent = 0
        self.rejected = 0

    def make(self, t: float, client: int) -> tuple[float, int, int, int] | None:
        """The client's next request (arrival s, id, input tokens, output tokens), or None when
        all are sent."""
        while self.sent < self.total:
            rid = self.sent
            self.sent += 1
            n_in = int(self.input_len.sample(self.rng, 1)[0])
            n_out = int(self.output_len.sample(self.rng, 1)[0])
            if self.max_len is None or n_in + n_out <= self.max_len:
                return t, rid, n_in, n_out
            self.rejected += 1
        return None
