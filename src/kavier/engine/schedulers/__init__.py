"""Schedulers: policies that form each iteration's batch on a replica (see :mod:`.base`).

Importing this package registers the built-in schedulers in :data:`kavier.registry.SCHEDULERS`.
"""

from kavier.engine.schedulers import continuous, sequential, sglang, static  # noqa: F401  (registers them)
from kavier.engine.schedulers.base import Batch, ReplicaState, Scheduler, SchedulerSettings

__all__ = ["Batch", "ReplicaState", "Scheduler", "SchedulerSettings"]
