"""Observers: what turns an engine's events into outputs (one module per output).

- :mod:`.requests`: ``requests.parquet``, one row per request;
- :mod:`.timeseries`: ``timeseries.parquet``, per replica and export interval, with power,
  energy and carbon, and the energy keys of the summary;
- :mod:`.opendc`: the OpenDC workload (``opendc/tasks.parquet``, ``opendc/fragments.parquet``)
  and the bundle that lets OpenDC replay the run;
- :mod:`.timeline`: ``timeline.json``, a Chrome/Perfetto trace of every replica's iterations
  (``timeline = true``);
- :mod:`.mfu`: no file, the summary's model FLOPs and memory-bandwidth utilisation keys;
- :mod:`.itl`: no file, the summary's inter-token latency keys (every gap between two tokens);
- :mod:`.load`: no file, the summary's load state and queue growth keys (:mod:`kavier.load`).

Each is a class registered in :data:`kavier.registry.OUTPUTS` (importing this package registers
the built-in ones, in the order their files are written), built per run as
``cls(scenario, sink)`` when ``cls.wanted(scenario, sink)``; it implements
:class:`kavier.events.Observer` and writes through the sink (:mod:`kavier.io.sinks`). A new
output is one new module with such a class (docs/extending.md).
"""

# Registration order is the order the outputs are built and get their events.
from kavier.observers import requests  # noqa: I001, F401  (registers it)
from kavier.observers import timeseries  # noqa: F401
from kavier.observers import opendc  # noqa: F401
from kavier.observers import timeline  # noqa: F401
from kavier.observers import mfu  # noqa: F401
from kavier.observers import itl  # noqa: F401
from kavier.observers import load  # noqa: F401
