"""Output settings: the run's name and folder, the time series' interval and the extra files."""

from datetime import UTC, datetime

from pydantic import Field, field_validator

from kavier.settings.base import Seconds, Settings, Switch, cli


class OutputSettings(Settings):
    """What the run writes and where: the folder, the time-series interval, the simulated clock's
    start, the chunk size of streamed tables, and the optional OpenDC files, plots and timeline."""

    table = "output"
    panel = "Outputs"

    name: str = Field("default", description="the scenario's name (in the OpenDC experiment)")
    output_folder: str = Field(
        "kavier_output",
        description="folder the run writes its outputs into",
        json_schema_extra=cli("--output_folder", "-o"),
    )
    export_rate: Seconds = Field(
        1.0,
        gt=0,
        description="s per time-series interval and OpenDC fragment (or 100ms, 1min)",
        json_schema_extra=cli("--export_rate"),
    )
    flush_size: int = Field(
        10_000, ge=1, description="requests (count) per streamed chunk", json_schema_extra=cli("--flush_size")
    )
    start_time: datetime = Field(
        datetime(2022, 1, 1, tzinfo=UTC),
        description="ISO-8601 instant the simulated clock starts at, e.g. 2022-07-01T00:00:00Z",
        json_schema_extra=cli(metavar="ISO-8601"),
    )
    opendc: Switch = Field(
        True, description="write the opendc/ workload files", json_schema_extra=cli(style="flag")
    )
    plots: Switch = Field(False, description="write PNG plots", json_schema_extra=cli(style="flag"))
    timeline: Switch = Field(
        False,
        description="write timeline.json, a Chrome/Perfetto trace of every replica's iterations "
        "(serving preset; open it in ui.perfetto.dev)",
        json_schema_extra=cli(style="flag"),
    )

    @field_validator("start_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)
