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
    weight_dtype: Literal["bf16", "fp16", "fp8", "int8", "fp4", "int4"] = Field(
        "bf16",
        description=(
            "number format of the model weights (fp4: NVFP4, on FP4 tensor cores where the GPU has them)"
        ),
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


def layout_error(system: Any) -> str | None:
    """Why the serving preset's ``gpus`` and its replicas disagree (None: they agree).

    ``gpus`` left at 1 is not checked (the replicas then take the GPUs they need); given, it must
    be what the replicas occupy, ``replicas x tp x pp`` (or the groups' sum), and without
    ``replicas`` a whole number of replicas of ``tp x pp`` GPUs each.
    """
    gpus, tp, pp = system.gpus, system.tp, system.pp
    if gpus == 1:
        return None
    per = tp * pp
    if system.replica_groups:
        try:
            used = sum(
                int(g.get("count", 1)) * int(g.get("tp", tp)) * int(g.get("pp", pp))
                for g in system.replica_groups
            )
        except (TypeError, ValueError, AttributeError):
            return None  # malformed groups: the replica plan names the group at fault
        given = "replica_groups occupy"
    elif system.replicas is not None:
        used = system.replicas * per
        given = f"--replicas {system.replicas} x --tp {tp} x --pp {pp} ="
    else:
        if gpus % per:
            return (
                f"--gpus {gpus} is not a whole number of replicas of --tp {tp} x --pp {pp} = {per} GPUs: "
                + (
                    f"give --gpus {per}"
                    if gpus < per
                    else f"give --gpus {gpus - gpus % per} or {gpus - gpus % per + per}"
                )
            )
        return None
    if used == gpus:
        return None
    return (
        f"--gpus {gpus} but {given} {used} GPUs: give --gpus {used}, or leave --gpus out "
        "(replicas default to gpus / (tp x pp))"
    )
