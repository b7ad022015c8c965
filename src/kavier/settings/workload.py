"""Workload settings: a trace file, or a generator of requests and its parameters."""

from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from kavier.settings.base import Seconds, Settings, cli


class WorkloadSettings(Settings):
    """What arrives: a trace's requests, or generated chat sessions, open-loop arrivals or
    closed-loop clients, and how fast."""

    table = "workload"
    panel = "Workload"

    trace: str | None = Field(
        None,
        description="trace file (CSV, parquet, JSONL; format recognised by content) or a trace name "
        "(kavier library --traces); none = generate",
    )
    workload: Literal["chat", "poisson", "gamma", "closed-loop"] = Field(
        "chat",
        description=(
            "generator used without a trace: multi-turn chat sessions, poisson or gamma arrivals, "
            "or closed-loop clients"
        ),
    )
    num_requests: int = Field(1000, ge=1, description="requests (count) for poisson, gamma and closed-loop")
    rate: float = Field(1.0, gt=0, description="requests/s for poisson/gamma")
    arrival_cv: float = Field(
        1.0, gt=0, description="coefficient of variation of gamma inter-arrival times (dimensionless)"
    )
    input_tokens: str = Field(
        "lognormal:mean=1000,cv=0.5",
        description="prompt length in tokens: 512 | uniform:LO:HI | lognormal:mean=M,cv=C",
    )
    output_tokens: str = Field(
        "lognormal:mean=250,cv=0.6", description="answer length in tokens, in input_tokens' forms"
    )
    num_sessions: int = Field(100, ge=1, description="chat sessions (count)")
    session_rate: float | None = Field(
        None, gt=0, description="new chat sessions per second; default: the chat generator's"
    )
    rate_scale: float = Field(
        1.0,
        gt=0,
        description=(
            "multiplier on the arrival rate (dimensionless): trace inter-arrival times are divided "
            "by it; generators' rate and session_rate multiplied by it (not for closed-loop)"
        ),
    )
    concurrency: int = Field(8, ge=1, description="closed-loop clients (count)")
    think_time_s: Seconds = Field(
        0.0,
        ge=0,
        description="s a closed-loop client waits between an answer and its next request (or 500ms)",
        json_schema_extra=cli(flag="--think-time"),
    )
    seed: int = Field(
        0, ge=0, description="random seed (integer >= 0) of generators, random routing and eviction"
    )

    @field_validator("input_tokens", "output_tokens", mode="before")
    @classmethod
    def _fixed_length(cls, value: Any) -> Any:
        """A plain number of tokens (``output_tokens = 200`` in TOML) is the fixed-length spec."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @model_validator(mode="after")
    def _rate_scale_needs_arrivals(self) -> Self:
        # A closed-loop workload has no arrival rate: its load is set by concurrency and
        # think time, so a rate multiplier would silently do nothing.
        if self.rate_scale != 1.0 and self.workload == "closed-loop" and not self.trace:
            raise ValueError(
                f"rate_scale {self.rate_scale:g} needs arrivals (a trace or a poisson/gamma/chat "
                "generator); a closed-loop workload's load is set by concurrency and think_time_s"
            )
        return self
