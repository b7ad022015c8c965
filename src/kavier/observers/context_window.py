"""A check on the requests a run served: how many exceed the model's context window.

A request whose prompt plus answer holds more tokens than the model's context window
(``max_context_tokens`` in the catalogue) would be refused or cut short by a real server. The
run still simulates it as given, since a trace's lengths are its data, and this observer warns
once at the end with one line naming how many requests do so.
"""

from __future__ import annotations

import numpy as np

from kavier.errors import warn
from kavier.events import BaseObserver, Records
from kavier.scenario import Scenario


def context_limit(scenario: Scenario) -> tuple[int, str] | None:
    """The smallest context window (tokens) of the scenario's models and that model's name; None
    when the catalogue does not say."""
    from kavier.library.catalog import load_catalog

    catalog = load_catalog(scenario.catalog)
    names = {scenario.llm} | {str(g["llm"]) for g in scenario.replica_groups or () if "llm" in g}
    known = [
        (m.max_context_tokens, m.name) for m in map(catalog.model, sorted(names)) if m.max_context_tokens
    ]
    return min(known) if known else None


class ContextWindowCheck(BaseObserver):
    """Counts the requests whose prompt + output tokens exceed ``limit``; warns at the end."""

    def __init__(self, limit: int, model: str) -> None:
        self.limit = limit
        self.model = model
        self.over = 0
        self.total = 0
        self.longest = 0

    def on_requests(self, records: Records) -> None:
        tokens = np.asarray(records["num_input_tokens"], dtype=np.int64) + np.asarray(
            records["num_output_tokens"], dtype=np.int64
        )
        self.total += int(tokens.size)
        if tokens.size:
            self.over += int(np.count_nonzero(tokens > self.limit))
            self.longest = max(self.longest, int(tokens.max()))

    def on_end(self, end_s: float) -> None:
        if self.over:
            warn(self.message())

    def message(self) -> str:
        """The warning: how many requests exceed the window, and what to do."""
        return (
            f"{self.over} of {self.total} requests exceed {self.model}'s context window of "
            f"{self.limit:,} tokens (prompt + output, longest {self.longest:,}); they were simulated "
            "as given: cap the lengths or choose a model with a longer context"
        )
