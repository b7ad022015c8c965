"""Named traces: public traces that ship inside Kavier, and bigger ones it downloads on first use.

``--trace NAME`` (scenario key ``trace``, ``kavier.simulate(trace=NAME)``) takes a file path or
one of these names. A path that exists always wins; otherwise a built-in name resolves to its
file inside the package, and a remote name to its copy in the cache folder (downloaded on first
use, see :mod:`kavier.workload.download`). Anything else is a one-line
:class:`~kavier.errors.WorkloadError` that lists the names, with a did-you-mean.

Built-in traces are stored as zstd-compressed parquet files with the original columns and
values (``kavier/workload/builtin/``, licences and attribution in ``ATTRIBUTION.md`` there), so
reading one gives exactly the requests of the original file. ``kavier library --traces`` lists
every name with its source and licence.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from kavier.errors import WorkloadError, shown

BUILTIN_FOLDER = Path(__file__).with_name("builtin")


@dataclass(frozen=True)
class NamedTrace:
    """A trace known by name: what it holds, where it comes from and under which licence.

    ``file`` is the file name: inside :data:`BUILTIN_FOLDER` for a built-in trace, in the cache
    folder for a remote one. ``url`` is set for remote traces only; ``sha256`` (hex) is checked
    after every download when set (when not, the first download records it beside the file).
    """

    name: str
    file: str
    description: str  # requests, duration, columns
    source: str  # dataset and where it is published
    licence: str
    original: str = ""  # the original file's name, for did-you-mean
    url: str | None = None
    sha256: str | None = None

    @property
    def remote(self) -> bool:
        return self.url is not None


BUILTIN_TRACES: dict[str, NamedTrace] = {
    t.name: t
    for t in (
        NamedTrace(
            "azure-conv-2023",
            "azure_conv_2023.parquet",
            "19,366 conversation requests over one hour (TIMESTAMP, ContextTokens, GeneratedTokens)",
            "Azure LLM inference trace 2023, AzureLLMInferenceTrace_conv.csv "
            "(github.com/Azure/AzurePublicDataset; Patel et al., Splitwise, ISCA 2024)",
            "CC-BY-4.0",
            "AzureLLMInferenceTrace_conv.csv azure_llm_2023_conv.csv",
        ),
        NamedTrace(
            "azure-code-2023",
            "azure_code_2023.parquet",
            "8,819 code-completion requests over one hour (TIMESTAMP, ContextTokens, GeneratedTokens)",
            "Azure LLM inference trace 2023, AzureLLMInferenceTrace_code.csv "
            "(github.com/Azure/AzurePublicDataset; Patel et al., Splitwise, ISCA 2024)",
            "CC-BY-4.0",
            "AzureLLMInferenceTrace_code.csv azure_llm_2023_code.csv",
        ),
        NamedTrace(
            "mooncake-conversation",
            "mooncake_conversation.parquet",
            "12,031 requests over 3,537 s with prefix hash_ids (one per 512-token block)",
            "Mooncake FAST'25 release traces, conversation_trace.jsonl "
            "(github.com/kvcache-ai/Mooncake, FAST25-release/traces)",
            "Apache-2.0",
            "conversation_trace.jsonl mooncake_conversation.jsonl",
        ),
        NamedTrace(
            "mooncake-synthetic",
            "mooncake_synthetic.parquet",
            "3,993 requests, Poisson arrivals, with prefix hash_ids",
            "Mooncake FAST'25 release traces, synthetic_trace.jsonl "
            "(github.com/kvcache-ai/Mooncake, FAST25-release/traces)",
            "Apache-2.0",
            "synthetic_trace.jsonl mooncake_synthetic.jsonl",
        ),
    )
}

# Bigger traces, downloaded on first use. Their checksums are not recorded here (they could not
# be downloaded where this table was written): the first download records the file's sha256
# beside it, and a later download that differs from it is an error.
REMOTE_TRACES: dict[str, NamedTrace] = {
    t.name: t
    for t in (
        NamedTrace(
            "burstgpt-1",
            "BurstGPT_1.csv",
            "~1.43 M ChatGPT/GPT-4 requests over 2 months, failures kept (~60 MB)",
            "BurstGPT v1.1, BurstGPT_1.csv (github.com/HPMLL/BurstGPT; Wang et al., 2024)",
            "CC-BY-4.0 (as the BurstGPT repository states; not re-checked)",
            "BurstGPT_1.csv",
            url="https://github.com/HPMLL/BurstGPT/releases/download/v1.1/BurstGPT_1.csv",
        ),
        NamedTrace(
            "azure-conv-2024",
            "AzureLLMInferenceTrace_conv_1week.csv",
            "one week of conversation requests, May 2024 (TIMESTAMP, ContextTokens, GeneratedTokens)",
            "Azure LLM inference trace 2024 (github.com/Azure/AzurePublicDataset; Stojkovic et al., "
            "DynamoLLM, HPCA 2025)",
            "CC-BY-4.0",
            "AzureLLMInferenceTrace_conv_1week.csv",
            url="https://azurepublicdatasettraces.blob.core.windows.net/azurellminfererencetrace/"
            "AzureLLMInferenceTrace_conv_1week.csv",
        ),
        NamedTrace(
            "azure-code-2024",
            "AzureLLMInferenceTrace_code_1week.csv",
            "one week of code-completion requests, May 2024 (TIMESTAMP, ContextTokens, GeneratedTokens)",
            "Azure LLM inference trace 2024 (github.com/Azure/AzurePublicDataset; Stojkovic et al., "
            "DynamoLLM, HPCA 2025)",
            "CC-BY-4.0",
            "AzureLLMInferenceTrace_code_1week.csv",
            url="https://azurepublicdatasettraces.blob.core.windows.net/azurellminfererencetrace/"
            "AzureLLMInferenceTrace_code_1week.csv",
        ),
    )
}


def named_traces() -> list[NamedTrace]:
    """Every named trace: the built-in ones, then the remote ones."""
    return [*BUILTIN_TRACES.values(), *REMOTE_TRACES.values()]


def builtin_path(name: str) -> Path:
    """The file of built-in trace ``name`` inside the package."""
    return BUILTIN_FOLDER / BUILTIN_TRACES[name].file


def is_trace_name(value: str) -> bool:
    """Whether ``value`` is the name of a built-in or remote trace."""
    return value in BUILTIN_TRACES or value in REMOTE_TRACES


def check_trace(value: str | Path) -> None:
    """Raise the one-line error of :func:`resolve_trace` without downloading anything."""
    if not Path(value).expanduser().exists() and not is_trace_name(str(value)):
        raise WorkloadError(unknown_trace_message(str(value)))


def resolve_trace(value: str | Path) -> Path:
    """The file to read for ``--trace value``: an existing path, a built-in trace's file, or a
    remote trace's cached copy (downloaded now if missing). One-line error otherwise."""
    path = Path(value).expanduser()
    if path.exists():
        return path
    name = str(value)
    if name in BUILTIN_TRACES:
        return builtin_path(name)
    if name in REMOTE_TRACES:
        from kavier.workload.download import fetch

        trace = REMOTE_TRACES[name]
        assert trace.url is not None
        return fetch(trace.name, trace.url, trace.file, trace.sha256)
    raise WorkloadError(unknown_trace_message(name))


def unknown_trace_message(value: str) -> str:
    """``value`` is neither a file nor a trace name: say so, with a did-you-mean and the names."""
    hint = _did_you_mean(value)
    return (
        f"trace {shown(value)} does not exist as a file and is not a trace name{hint}; "
        f"built-in: {', '.join(BUILTIN_TRACES)}; downloaded on first use: {', '.join(REMOTE_TRACES)} "
        "(kavier library --traces lists them)"
    )


def _did_you_mean(value: str) -> str:
    stem = Path(value).name.lower()
    candidates: dict[str, str] = {}
    for trace in named_traces():
        candidates[trace.name] = trace.name
        for original in trace.original.split():
            candidates[original.lower()] = trace.name
    match = difflib.get_close_matches(stem, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {candidates[match[0]]!r}?)" if match else ""
