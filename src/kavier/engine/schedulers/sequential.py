"""Sequential execution: one request at a time per replica, FCFS."""

from __future__ import annotations

from kavier.engine.schedulers.base import SchedulerSettings
from kavier.engine.schedulers.static import StaticBatching
from kavier.registry import SCHEDULERS


@SCHEDULERS.register("sequential")
class Sequential(StaticBatching):
    """One request at a time: static batches of one (the thesis's execution model)."""

    def __init__(self, settings: SchedulerSettings) -> None:
        super().__init__(settings)
        self.max_running = 1
