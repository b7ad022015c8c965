"""The configurations a plan considers: GPU x tensor-parallel degree, and whether the model fits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kavier.errors import ScenarioError
from kavier.scenario import Scenario

DEFAULT_TPS = (1, 2, 4, 8)


@dataclass(frozen=True)
class Candidate:
    """One GPU type and TP degree; ``unfit`` says why the model cannot run there (None: it fits)."""

    gpu: str  # the catalogue's name
    tp: int
    unfit: str | None = None

    @property
    def label(self) -> str:
        """E.g. ``H100-SXM tp=2``."""
        return f"{self.gpu} tp={self.tp}"


def _short(message: str) -> str:
    """'does not fit: needs 66.2 GiB per GPU' from the engine's long fit error."""
    found = re.search(r"needs ([\d.]+ GiB)", message)
    return f"does not fit: needs {found.group(1)} per GPU" if found else f"does not fit: {message}"


def candidates(base: Scenario, gpus: list[str], tps: list[int] | None = None) -> list[Candidate]:
    """Every (GPU, TP) pair, GPUs in the order given, TPs ascending.

    Unknown GPU names raise the catalogue's one-line error. With ``tps`` None the default
    ``1, 2, 4, 8`` is used, keeping only degrees that divide the model's attention heads (as
    vLLM requires); degrees given explicitly are all kept, and one that does not divide the
    heads is marked unfit. The fit check is the engine's own (weights + activation reserve
    per GPU against ``gpu_memory_utilization``, room for a KV block).
    """
    from kavier.engine.system import parallelism_error, plan_replicas
    from kavier.library.catalog import load_catalog

    catalog = load_catalog(base.catalog)
    model = catalog.model(base.llm)
    explicit = tps is not None
    degrees = sorted(set(tps if explicit else DEFAULT_TPS))
    if not explicit:
        degrees = [t for t in degrees if parallelism_error(model, t, 1) is None] or [1]
    out: list[Candidate] = []
    names = list(dict.fromkeys(catalog.gpu(name).name for name in gpus))  # aliases collapse
    for gpu in names:
        for tp in degrees:
            reason = parallelism_error(model, tp, base.pp)
            if reason is not None:
                out.append(Candidate(gpu, tp, reason))
                continue
            layout = {"gpu": gpu, "tp": tp, "replicas": 1, "replica_groups": None, "gpus": tp * base.pp}
            probe = base.model_copy(update=layout)
            try:
                plan_replicas(probe)
            except ScenarioError as exc:
                out.append(Candidate(gpu, tp, _short(str(exc))))
                continue
            out.append(Candidate(gpu, tp))
    return out
