"""System settings: the model, the GPUs and how they are laid out into replicas."""

from typing import Any, Literal

from pydantic import Field

from kavier.settings.base import Settings, cli


class SystemSettings(Settings):
    """Which model runs on which GPUs: counts, parallelism, precision and memory use."""

    table = "system"
    panel = "System"

    llm: str = Field(
        "Llama-3-8B", description="model: a library name (see `kavier library`) or a HuggingFace config.json"
    )
    gpu: str = Field("A10", description="GPU: a library name (see `kavier library`)")
    gpus: int = Field(
        1,
        ge=1,
        description=(
            "GPUs (count); thesis preset: independent GPUs, each one request at a time; "
            "serving preset: replicas default to gpus / (tp x pp)"
        ),
    )
    catalog: str | None = Field(None, description="user TOML catalogue file adding or replacing models/GPUs")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="fraction of each GPU's memory the serving engine uses (0-1]"
    )
    replicas: int | None = Field(None, ge=1, description="model replicas (count); default gpus / (tp x pp)")
    tp: int = Field(1, ge=1, description="tensor-parallel GPUs per replica (count)")
    pp: int = Field(1, ge=1, description="pipeline stages per replica (count)")
    weight_dtype: Literal["bf16", "fp16", "fp8", "int8", "int4"] = Field(
        "bf16", description="number format of the model weights"
    )
    kv_dtype: Literal["bf16", "fp16", "fp8", "int8"] = Field(
        "bf16", description="number format of the KV cache"
    )
    activation_reserve_gib: float = Field(
        1.0, ge=0, description="GiB per GPU kept for activations (neither weights nor KV cache)"
    )
    replica_groups: list[dict[str, Any]] | None = Field(
        None,
        description=(
            "heterogeneous replicas, a list of tables {count, gpu, llm, tp, pp, weight_dtype}; "
            "replaces replicas (scenario file only: a list of tables cannot be a flag)"
        ),
        json_schema_extra=cli(file_only=True),
    )

    @property
    def num_replicas(self) -> int:
        """Replicas of the serving engine (groups add up)."""
        if self.replica_groups:
            return sum(int(g.get("count", 1)) for g in self.replica_groups)
        if self.replicas is not None:
            return self.replicas
        return max(1, self.gpus // (self.tp * self.pp))
