"""Are a version's outputs the same as another's?  Runs a fixed set of scenarios and compares.

A restructuring must not change what Kavier computes. This script runs ~40 scenarios that
cover every preset, scheduler, router, cache policy, power model, energy input and output
through the command line of a Kavier source tree, and records for each run folder the SHA-256
of every file and the values of ``summary.json``. ``--record`` writes that manifest; ``--check``
runs the scenarios again (with this tree, or another given by ``--src``) and compares:

- every parquet and JSON file other than ``summary.json`` must be byte-identical;
- ``summary.json``: every key present in both must hold the same value (run-time keys such as
  ``wall_time_s`` excepted); keys only in one are listed (a new summary key is not a change of
  any figure), and so is a change of key order.

    # the reference, from the commit before a change (a worktree of it):
    git worktree add /tmp/kavier_ref HEAD
    python benchmarks/output_identity.py --src /tmp/kavier_ref/src --record benchmarks/_work/identity_ref.json
    # after the change, this tree:
    python benchmarks/output_identity.py --check benchmarks/_work/identity_ref.json

Scenarios with traces need ``../shared/data``; without it they are skipped (and said so).
Exit code 1 when a compared figure or file differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, SHARED_DATA, WORK, machine_lines

VOLATILE = {"wall_time_s", "events_per_wall_s", "simulated_s_per_wall_s"}
SKIP_SUFFIXES = {".png"}

AZURE = str(SHARED_DATA / "traces" / "azure_llm_2023_conv.csv")
AZURE_CODE = str(SHARED_DATA / "traces" / "azure_llm_2023_code.csv")
MOONCAKE = str(SHARED_DATA / "traces" / "mooncake_conversation.jsonl")
MOONCAKE_SYN = str(SHARED_DATA / "traces" / "mooncake_synthetic.jsonl")
CARBON_NL = str(SHARED_DATA / "carbon" / "opendc_2022_NL.parquet")

SMALL_POISSON = ["--workload", "poisson", "--rate", "6", "--num-requests", "300"]

# name -> (arguments after `kavier run`, needs ../shared/data)
CASES: dict[str, tuple[list[str], bool]] = {
    "default": ([], False),
    "thesis_default": (["--preset", "thesis"], False),
    "thesis_azure_4gpus": (
        ["--preset", "thesis", "--trace", AZURE, "--gpus", "4", "--export-rate", "0.5"],
        True,
    ),
    "thesis_mooncake_full_global": (
        [
            "--preset",
            "thesis",
            "--trace",
            MOONCAKE,
            "--prefix-cache-policy",
            "full",
            "--prefix-cache-scope",
            "global",
            "--prefix-len",
            "512",
            "--prefix-cache-size",
            "50",
        ],
        True,
    ),
    "thesis_kv_off_linear_nl": (
        ["--preset", "thesis", "--kv-cache", "off", "--power-model", "linear", "--region", "NL"],
        False,
    ),
    "thesis_poisson_gpus2_prefix0": (
        ["--preset", "thesis", *SMALL_POISSON, "--gpus", "2", "--prefix-len", "0", "--flush-size", "64"],
        False,
    ),
    "thesis_carbon_trace": (
        [
            "--preset",
            "thesis",
            "--carbon-trace",
            CARBON_NL,
            "--pue",
            "1.3",
            "--start-time",
            "2022-07-01T00:00:00Z",
            "--export-rate",
            "100ms",
        ],
        True,
    ),
    "serving_azure_4rep": (
        ["--trace", AZURE, "--llm", "Llama-3.1-8B", "--gpu", "H100-SXM", "--replicas", "4"],
        True,
    ),
    "serving_poisson_70b_tp4_slo": (
        [
            "--workload",
            "poisson",
            "--rate",
            "20",
            "--num-requests",
            "1000",
            "--input-tokens",
            "lognormal:mean=1000,cv=0.5",
            "--output-tokens",
            "256",
            "--llm",
            "Llama-3.1-70B",
            "--gpu",
            "H100-SXM",
            "--tp",
            "4",
            "--slo-ttft",
            "0.5",
            "--slo-tpot",
            "0.05",
        ],
        False,
    ),
    "serving_closed_loop": (
        ["--workload", "closed-loop", "--concurrency", "32", "--num-requests", "400", "--think-time", "1"],
        False,
    ),
    "serving_static": (["--scheduler", "static", *SMALL_POISSON], False),
    "serving_sequential": (
        ["--scheduler", "sequential", "--workload", "poisson", "--rate", "0.5", "--num-requests", "60"],
        False,
    ),
    "serving_no_chunking": (["--chunked-prefill", "off", "--llm", "Llama-3.2-1B", *SMALL_POISSON], False),
    "serving_gamma_small_budget": (
        [
            "--workload",
            "gamma",
            "--arrival-cv",
            "3",
            "--rate",
            "10",
            "--num-requests",
            "400",
            "--max-num-seqs",
            "16",
            "--max-batched-tokens",
            "512",
            "--block-size",
            "32",
        ],
        False,
    ),
    "serving_preempt_tight_memory": (
        [
            "--workload",
            "poisson",
            "--rate",
            "30",
            "--num-requests",
            "400",
            "--gpu-memory-utilization",
            "0.72",
            "--output-tokens",
            "lognormal:mean=800,cv=0.5",
        ],
        False,
    ),
    "serving_mooncake_affinity_tiers_baseline": (
        [
            "--trace",
            MOONCAKE,
            "--llm",
            "Llama-3.1-8B",
            "--gpu",
            "H100-SXM",
            "--replicas",
            "8",
            "--router",
            "prefix_affinity",
            "--cache-eviction",
            "lru",
            "--cache-tiers",
            "host-dram:256GiB",
            "--baseline",
        ],
        True,
    ),
    "serving_mooncake_arc_small": (
        [
            "--trace",
            MOONCAKE_SYN,
            "--llm",
            "Llama-3.1-8B",
            "--gpu",
            "A100-80GB",
            "--replicas",
            "2",
            "--cache-eviction",
            "arc",
            "--cache-capacity-tokens",
            "65536",
        ],
        True,
    ),
    "serving_mooncake_lfu": (
        [
            "--trace",
            MOONCAKE_SYN,
            "--llm",
            "Llama-3.1-8B",
            "--gpu",
            "A100-80GB",
            "--replicas",
            "2",
            "--cache-eviction",
            "lfu",
            "--cache-capacity-tokens",
            "65536",
            "--router",
            "round_robin",
        ],
        True,
    ),
    "serving_mooncake_fifo_exclusive": (
        [
            "--trace",
            MOONCAKE_SYN,
            "--llm",
            "Llama-3.1-8B",
            "--gpu",
            "A100-80GB",
            "--replicas",
            "2",
            "--cache-eviction",
            "fifo",
            "--cache-capacity-tokens",
            "65536",
            "--cache-tiers",
            "host-dram:8GiB,local-ssd:64GiB,remote:1TiB",
            "--cache-tier-policy",
            "exclusive",
        ],
        True,
    ),
    "serving_mooncake_random_writethrough": (
        [
            "--trace",
            MOONCAKE_SYN,
            "--llm",
            "Llama-3.1-8B",
            "--gpu",
            "A100-80GB",
            "--replicas",
            "2",
            "--cache-eviction",
            "random",
            "--cache-capacity-tokens",
            "65536",
            "--cache-tiers",
            "host-dram:8GiB",
            "--cache-tier-policy",
            "write-through",
            "--router",
            "random",
        ],
        True,
    ),
    "serving_mooncake_ttl_global": (
        [
            "--trace",
            MOONCAKE_SYN,
            "--llm",
            "Llama-3.1-8B",
            "--gpu",
            "A100-80GB",
            "--replicas",
            "3",
            "--cache-eviction",
            "ttl",
            "--cache-ttl",
            "30s",
            "--cache-scope",
            "global",
            "--router",
            "least_kv",
        ],
        True,
    ),
    "serving_session_scope_affinity": (
        [
            "--num-sessions",
            "40",
            "--cache-scope",
            "session",
            "--router",
            "session_affinity",
            "--replicas",
            "2",
        ],
        False,
    ),
    "serving_response_and_thesis_prefix": (
        [
            "--trace",
            MOONCAKE_SYN,
            "--response-cache",
            "on",
            "--prefix-cache",
            "thesis",
            "--prefix-len",
            "512",
            "--llm",
            "Llama-3.1-8B",
            "--gpu",
            "H100-SXM",
        ],
        True,
    ),
    "serving_prefix_off_kv_off": (["--prefix-cache", "off", *SMALL_POISSON], False),
    "serving_pp2_fp8": (
        [
            "--llm",
            "Llama-3.1-70B",
            "--gpu",
            "A100-80GB",
            "--tp",
            "2",
            "--pp",
            "2",
            "--weight-dtype",
            "fp8",
            "--kv-dtype",
            "fp8",
            *SMALL_POISSON,
        ],
        False,
    ),
    "serving_moe": (["--llm", "Mixtral-8x7B", "--gpu", "H100-SXM", "--tp", "2", *SMALL_POISSON], False),
    "serving_power_mse_cost": (
        [
            "--power-model",
            "mse",
            "--power-calibration",
            "1.7",
            "--gpu-price-per-hour",
            "2",
            "--token-price-per-mtok",
            "0.5,1.5",
            "--energy-price-per-kwh",
            "0.2",
            "--gpu-lifetime-years",
            "4",
            *SMALL_POISSON,
        ],
        False,
    ),
    "serving_power_asym_dvfs": (
        [
            "--power-model",
            "asymptotic-dvfs",
            "--power-asym-util",
            "0.2",
            "--gpu-idle-w",
            "20",
            "--gpu-max-w",
            "160",
            *SMALL_POISSON,
        ],
        False,
    ),
    "serving_power_constant_no_opendc": (["--power-model", "constant", "--no-opendc", *SMALL_POISSON], False),
    "serving_carbon_trace_pue": (
        [
            "--carbon-trace",
            CARBON_NL,
            "--pue",
            "1.15",
            "--start-time",
            "2022-03-01T12:00:00Z",
            "--carbon-intensity",
            "100",
            *SMALL_POISSON,
        ],
        True,
    ),
    "serving_azure_code_rate_scale": (
        [
            "--trace",
            AZURE_CODE,
            "--rate-scale",
            "0.5",
            "--llm",
            "Llama-3.1-8B",
            "--gpu",
            "A100-80GB",
            "--replicas",
            "2",
            "--export-rate",
            "10",
        ],
        True,
    ),
    "serving_overheads": (
        [
            "--scenario-keys",
            "iteration_overhead_s=0.002",
            "decode_seq_overhead_s=0.0001",
            "prefill_seq_overhead_s=0.003",
            "attention_efficiency=0.5",
            "comm_cache_bytes=4e6",
            "--tp",
            "2",
            "--gpu",
            "A100-80GB",
            *SMALL_POISSON,
        ],
        False,
    ),
    "serving_replica_groups": (["--scenario-keys", "replica_groups"], False),
    "serving_perf_profile": (
        ["--scenario-keys", "perf_profile", "--tp", "2", "--gpu", "A100-80GB", *SMALL_POISSON],
        False,
    ),
}

PROFILE = """\
compute_efficiency = 0.5
memory_efficiency = 0.7
prefill_overhead_s = 0.01
decode_seq_overhead_s = 0.00005

[tp.2]
compute_efficiency = 0.45
memory_efficiency = 0.65
comm_efficiency = 0.5
"""

GROUPS = """\
workload = "poisson"
rate = 8.0
num_requests = 400
router = "round_robin"

[[replica_groups]]
count = 2
gpu = "A10"

[[replica_groups]]
count = 1
gpu = "H100-SXM"
llm = "Llama-3.1-8B"
tp = 2
"""

API_CODE = """\
import json, sys
import kavier
r = kavier.simulate(
    requests={"num_input_tokens": [100, 2000, 50, 800] * 25, "num_output_tokens": [10, 300, 1, 40] * 25,
              "arrival_s": [i * 0.05 for i in range(100)]},
    llm="Llama-3.1-8B", gpu="L4", opendc=True,
)
out = {name: getattr(r, name) for name in ("requests", "timeseries", "opendc_tasks", "opendc_fragments")}
import hashlib, pyarrow as pa
digest = {}
for name, table in out.items():
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table.combine_chunks())
    digest[name] = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
print(json.dumps({"tables": digest, "summary": r.summary}, default=str))
"""


def expand(args: list[str], folder: Path) -> tuple[list[str], Path | None]:
    """Replace the ``--scenario-keys`` pseudo-option by a scenario file written into ``folder``."""
    if "--scenario-keys" not in args:
        return args, None
    i = args.index("--scenario-keys")
    rest = args[i + 1 :]
    keys = []
    while rest and not rest[0].startswith("--"):
        keys.append(rest.pop(0))
    lines = []
    for key in keys:
        if key == "replica_groups":
            lines.append(GROUPS)
        elif key == "perf_profile":
            profile = folder / "profile.toml"
            profile.write_text(PROFILE)
            lines.append(f'perf_profile = "{profile}"')
        else:
            name, value = key.split("=")
            lines.append(f"{name} = {value}")
    scenario = folder / "scenario_in.toml"
    scenario.write_text("\n".join(lines) + "\n")
    return args[:i] + rest, scenario


def digest(path: Path, work: Path) -> str:
    """SHA-256 of the file; in JSON files the work folder's path reads ``<WORK>`` (so two trees
    can be compared from different work folders)."""
    data = path.read_bytes()
    if path.suffix == ".json":
        data = data.replace(str(work).encode(), b"<WORK>")
    return hashlib.sha256(data).hexdigest()


def run_case(name: str, args: list[str], src: Path, work: Path) -> dict:
    folder = work / name
    inputs = work / f"{name}.inputs"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    args, scenario_file = expand(list(args), inputs)
    argv = [sys.executable, "-m", "kavier", "run"]
    if scenario_file is not None:
        argv.append(str(scenario_file))
    argv += [*args, "--output-folder", str(folder), "-q"]
    env = dict(os.environ, PYTHONPATH=str(src))
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        return {"error": (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:], "wall_s": wall}
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix not in SKIP_SUFFIXES and path.name != "summary.json":
            files[str(path.relative_to(folder))] = digest(path, work)
    summary = json.loads((folder / "summary.json").read_text())
    return {"files": files, "summary": summary, "keys": list(summary), "wall_s": wall}


def run_api(src: Path, work: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run([sys.executable, "-c", API_CODE], capture_output=True, text=True, env=env, cwd=work)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    data = json.loads(done.stdout)
    return {"files": data["tables"], "summary": data["summary"], "keys": list(data["summary"])}


def collect(src: Path, work: Path, only: list[str] | None) -> dict:
    have_data = SHARED_DATA.is_dir()
    manifest = {}
    for name, (args, needs_data) in CASES.items():
        if only and name not in only:
            continue
        if needs_data and not have_data:
            print(f"  {name}: SKIPPED (no {SHARED_DATA})")
            continue
        manifest[name] = run_case(name, args, src, work)
        state = "error: " + " ".join(manifest[name]["error"]) if "error" in manifest[name] else "ok"
        print(f"  {name}: {state} ({manifest[name]['wall_s']:.1f} s)", flush=True)
    if not only or "api_simulate" in only:
        manifest["api_simulate"] = run_api(src, work)
        print(f"  api_simulate: {'error' if 'error' in manifest['api_simulate'] else 'ok'}")
    return manifest


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    return a == b


def compare(ref: dict, new: dict) -> int:
    problems = 0
    for name in ref:
        if name not in new:
            continue
        r, n = ref[name], new[name]
        if "error" in r or "error" in n:
            if r.get("error") != n.get("error"):
                print(f"{name}: error differs: ref {r.get('error')} / new {n.get('error')}")
                problems += 1
            continue
        for file in sorted(set(r["files"]) | set(n["files"])):
            if r["files"].get(file) != n["files"].get(file):
                print(
                    f"{name}: {file} differs"
                    if file in r["files"] and file in n["files"]
                    else f"{name}: {file} only in {'ref' if file in r['files'] else 'new'}"
                )
                problems += 1
        rs, ns = r["summary"], n["summary"]
        for key in rs:
            if key in VOLATILE or key not in ns:
                continue
            if not same(rs[key], ns[key]):
                print(f"{name}: summary {key}: ref {rs[key]!r} new {ns[key]!r}")
                problems += 1
        gone = [k for k in rs if k not in ns]
        added = [k for k in ns if k not in rs]
        if gone:
            print(f"{name}: summary keys gone: {gone}")
        if added:
            more = " ..." if len(added) > 6 else ""
            print(f"{name}: summary keys added: {len(added)} ({', '.join(added[:6])}{more})")
        common_r = [k for k in r["keys"] if k in ns]
        common_n = [k for k in n["keys"] if k in rs]
        if common_r != common_n:
            print(f"{name}: summary key order differs")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--src", type=Path, default=REPO / "src", help="the src/ folder of the tree to run")
    parser.add_argument("--record", type=Path, help="write the manifest here")
    parser.add_argument("--check", type=Path, help="compare with this manifest")
    parser.add_argument("--only", nargs="*", help="case names")
    parser.add_argument("--work", type=Path, default=WORK / "identity")
    args = parser.parse_args()
    if not args.record and not args.check:
        parser.error("give --record FILE or --check FILE")
    for line in machine_lines():
        print(line)
    print(f"source tree: {args.src}")
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    manifest = collect(args.src.resolve(), args.work.resolve(), args.only)
    print(f"{len(manifest)} cases in {time.perf_counter() - t0:.0f} s")
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(manifest, indent=1, default=str))
        print(f"wrote {args.record}")
    if args.check:
        ref = json.loads(args.check.read_text())
        problems = compare(ref, manifest)
        print(f"{problems} difference(s) in {len(set(ref) & set(manifest))} compared cases")
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
