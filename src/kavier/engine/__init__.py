"""The engine: backends that simulate a scenario's cluster and emit events (:mod:`.backend`).

It imports nothing from the outputs (:mod:`kavier.observers`, :mod:`kavier.io`): what it
simulates reaches them only as events (:mod:`kavier.events`). This package's ``__init__``
imports nothing, so that looking up a registered policy (e.g. a scheduler's name) stays cheap.
"""
