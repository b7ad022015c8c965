"""Helpers shared by the benchmark scripts (not part of the package; not run by pytest)."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SRC = REPO / "src"
WORK = BENCH_DIR / "_work"
SHARED_DATA = REPO.parent / "shared" / "data"


def use_repo_source() -> None:
    """Import kavier from this tree's src/ (whether or not it is pip-installed)."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))


def repo_env() -> dict[str, str]:
    """Environment for a subprocess that runs ``python -m kavier`` from this tree."""
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + old if old else "")
    return env


def machine_lines() -> list[str]:
    """nproc, CPU model, memory, Python and the tree's commit (with a dirty marker for src/)."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:
        pass
    commit = _git("rev-parse", "--short", "HEAD") or "?"
    dirty = _git("status", "--porcelain", "--", "src")
    if dirty:
        commit += f" + uncommitted changes in {len(dirty.splitlines())} src file(s)"
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "?"
    return [
        f"machine: nproc={os.cpu_count()}, CPU {cpu}, {mem} RAM, "
        f"Python {platform.python_version()} ({platform.system()} {platform.machine()})",
        f"kavier tree: {REPO} at {commit}",
        f"load average at start (1/5/15 min): {load} (other work on the machine skews timings)",
    ]


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def command_line(argv: list[str], env_prefix: str = "") -> str:
    """A shell-quoted command line, paths shown relative to the repository where possible."""
    parts = []
    for a in argv:
        s = str(a)
        if s == sys.executable:
            s = "python"
        elif s.startswith(str(REPO) + os.sep):
            s = os.path.relpath(s, REPO)
        parts.append(shlex.quote(s))
    return (env_prefix + " " if env_prefix else "") + " ".join(parts)


@dataclass
class ProcResult:
    """Outcome of a measured subprocess."""

    returncode: int | None  # None when killed by us (timeout or memory limit)
    wall_s: float
    peak_rss_bytes: int
    killed: str = ""  # "timeout" or "memory" when we stopped it
    stdout: str = ""
    stderr: str = ""
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (s since start, bytes)

    def first_above(self, threshold_bytes: float) -> float | None:
        """Seconds after start when the sampled RSS first exceeded ``threshold_bytes``."""
        return next((t for t, r in self.rss_samples if r > threshold_bytes), None)


def _rss_bytes(pid: int) -> int:
    """Current resident memory of ``pid`` and its descendants (bytes), 0 if gone."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            pass
    return total


def run_measured(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
    rss_limit_bytes: int | None = None,
    log_path: Path | None = None,
) -> ProcResult:
    """Run ``argv`` in its own process; wall time and that process's peak RSS (from wait4).

    The process is killed (by its own pid, and its process group, which we created) when it
    exceeds ``timeout_s`` or its resident memory exceeds ``rss_limit_bytes``.
    """
    out_f = open(log_path, "w+") if log_path else subprocess.DEVNULL  # noqa: SIM115
    err_path = log_path.with_suffix(".err") if log_path else None
    err_f = open(err_path, "w+") if err_path else subprocess.DEVNULL  # noqa: SIM115
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out_f, stderr=err_f, start_new_session=True)
    killed = ""
    status = None
    rusage = None
    samples: list[tuple[float, int]] = []
    next_sample = 0.0
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        elapsed = time.perf_counter() - t0
        if not killed and timeout_s is not None and elapsed > timeout_s:
            killed = "timeout"
        if rss_limit_bytes is not None or elapsed >= next_sample:
            rss = _rss_bytes(proc.pid)
            if elapsed >= next_sample:
                samples.append((elapsed, rss))
                next_sample = elapsed + 1.0
            if not killed and rss_limit_bytes is not None and rss > rss_limit_bytes:
                killed = "memory"
        if killed:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)  # the group we created with start_new_session
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05 if elapsed < 5 else 0.25)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    stdout = stderr = ""
    if log_path:
        out_f.seek(0)
        stdout = out_f.read()
        out_f.close()
        err_f.seek(0)
        stderr = err_f.read()
        err_f.close()
    return ProcResult(
        returncode=None if killed else proc.returncode,
        wall_s=wall,
        peak_rss_bytes=int(rusage.ru_maxrss) * 1024,
        killed=killed,
        stdout=stdout,
        stderr=stderr,
        rss_samples=samples,
    )


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub-markdown table (also readable in a terminal)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    for r in cells:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(lines)
