"""Observers: what turns an engine's events into outputs (one module per output).

- :mod:`.requests`: ``requests.parquet``, one row per request;
- :mod:`.timeseries`: ``timeseries.parquet``, per replica and export interval, with power,
  energy and carbon, and the energy keys of the summary;
- :mod:`.opendc`: the OpenDC workload (``opendc/tasks.parquet``, ``opendc/fragments.parquet``)
  and the bundle that lets OpenDC replay the run.

Each writes through a sink (:mod:`kavier.io.sinks`). A new output is one new module with a class
that implements :class:`kavier.events.Observer`, added to :func:`kavier.driver.output_observers`.
"""
