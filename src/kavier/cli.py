"""The ``kavier`` command: run, library, validate, compare, plot, calibrate (and more below).

``run``'s options (and ``plan``'s scenario options) are generated from the scenario model's
fields (:mod:`kavier.commands.scenario_options`): one per key, with the field's description as
help and one help panel per group of keys. Every option can also come from a scenario file;
flags given on the command line override the file. The thesis's flag spellings
(``--output_folder``, ``--kv_cache`` ...) are accepted beside the dashed ones.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

# Transparent huge pages for numpy's large arrays make each first touch of fresh memory a
# 2 MiB zeroing (and, with defrag=madvise, a compaction stall); a run allocates hundreds of
# MB of short-lived arrays, so small pages are faster (on the 2-core benchmark machine the
# Marconi run's system time drops by 0.2-0.4 s). Set before numpy is imported; an explicit
# NUMPY_MADVISE_HUGEPAGE in the environment wins.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
# Kavier does no dense linear algebra, but OpenBLAS starts a thread per core when numpy loads
# (~0.1 s of CPU on the 2-core benchmark machine, competing with the start-up it runs beside).
# One thread; an explicit OPENBLAS_NUM_THREADS wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer  # noqa: E402

from kavier.commands.console import console, new_table, styled  # noqa: E402
from kavier.commands.helpfmt import HELP_OPTION_NAMES, KavierCommand, KavierGroupMixin  # noqa: E402
from kavier.commands.lazy import LazyGroup, defer  # noqa: E402
from kavier.commands.scenario_options import ScenarioTyperCommand, scenario_command  # noqa: E402
from kavier.errors import KavierError  # noqa: E402

if TYPE_CHECKING:
    from rich.table import Table

APP_OPTIONS: dict[str, Any] = {
    "add_completion": False,
    "no_args_is_help": False,
    "help": "Kavier: simulate LLM inference (latency, throughput, caches) before you buy GPUs.",
    "pretty_exceptions_enable": False,
    "context_settings": {"help_option_names": HELP_OPTION_NAMES},
}
app = typer.Typer(**APP_OPTIONS, cls=LazyGroup)


def _print_version(value: bool) -> None:
    if value:
        from kavier import __version__

        print(f"kavier {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", help="print the version and exit", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """Kavier: simulate LLM inference (latency, throughput, caches) before you buy GPUs."""


def __getattr__(name: str) -> Any:
    """``kavier.cli.out`` and ``kavier.cli.err``, created lazily (see :func:`console`)."""
    if name in ("out", "err"):
        return console(name)
    raise AttributeError(f"module 'kavier.cli' has no attribute {name!r}")


SUMMARY_ROWS = [
    ("requests", "num_requests", "{:,.0f}"),
    ("model / GPU", None, None),
    ("GPUs", "num_gpus", "{:,.0f}"),
    ("replicas", "num_replicas", "{:,.0f}"),
    ("mean batch size", "mean_batch_size", "{:,.1f}"),
    ("preemptions", "preemptions", "{:,.0f}"),
    ("goodput", "goodput_requests_per_s", "{:,.3f} req/s"),
    ("simulated time", "simulated_time_s", "{:,.1f} s"),
    ("GPU busy", "gpu_busy_s", "{:,.1f} s"),
    ("prefill / decode", None, None),
    ("tokens in / out", None, None),
    ("throughput", "throughput_tokens_per_s", "{:,.1f} tok/s"),
    ("TTFT mean / p50 / p99", None, None),
    ("TPOT mean", "tpot_mean_s", "{:.4f} s"),
    ("ITL p50 / p99", None, None),
    ("E2E mean / p99", None, None),
    ("queue mean", "queue_mean_s", "{:,.3f} s"),
    ("load", None, None),
    ("GPU busy fraction", "gpu_busy_fraction", "{:.1%}"),
    ("MFU / MBU mean", None, None),
    ("MFU / MBU (prefill, decode)", None, None),
    ("KV use mean / peak", None, None),
    ("KV headroom at peak", "kv_headroom_blocks", "{:,.0f} blocks"),
    ("requests with a prefix hit", "prefix_cache_requests_with_any_hit_ratio", "{:.2%}"),
    ("prefix-cache token hit ratio", "prefix_cache_token_hit_ratio", "{:.2%}"),
    ("prefix-cache evictions", "prefix_cache_evictions", "{:,.0f}"),
    ("energy (facility)", "energy_facility_kwh", "{:,.3f} kWh"),
    ("power avg / peak", None, None),
    ("CO2 operational / embodied", None, None),
    ("cost GPU / energy / total", None, None),
    ("per Mtoken", None, None),
    ("wall time", "wall_time_s", "{:.2f} s"),
]


def _fmt(summary: dict[str, Any], key: str, fmt: str) -> str:
    value = summary.get(key)
    return "n/a" if value is None else fmt.format(value)


def _pair(summary: dict[str, Any], mfu: str, mbu: str) -> str:
    """``MFU / MBU`` as percentages; a run without iteration detail (thesis preset) has none."""
    if summary.get("mfu_mean") is None:
        raise ValueError("no MFU/MBU in this run")
    return f"{_fmt(summary, mfu, '{:.1%}')} / {_fmt(summary, mbu, '{:.1%}')}"


def _load_cell(summary: dict[str, Any]) -> str:
    """``stable (queue +0.01 req/s)``: the load state and the waiting queue's growth."""
    state, growth = summary["load_state"], summary.get("queue_growth_requests_per_s")
    if state is None:
        raise ValueError("no load state")
    if growth is None:
        return state
    growth = 0.0 if abs(growth) < 5e-4 else growth  # a least-squares slope of a flat queue: ~1e-19
    return f"{state} (queue {growth:+,.3g} req/s)"


def summarynew_table(summary: dict[str, Any], title: str) -> Table:
    """A two-column table of the headline metrics."""
    table = new_table(title=title, show_header=False, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    combos = {
        "model / GPU": lambda s: f"{s.get('model')} / {s.get('gpu')}",
        "prefill / decode": lambda s: f"{s['total_prefill_s']:,.1f} s / {s['total_decode_s']:,.1f} s",
        "tokens in / out": lambda s: f"{s['input_tokens']:,} / {s['output_tokens']:,}",
        "TTFT mean / p50 / p99": lambda s: (
            " / ".join(_fmt(s, k, "{:.3f}") for k in ("ttft_mean_s", "ttft_p50_s", "ttft_p99_s")) + " s"
        ),
        "ITL p50 / p99": lambda s: f"{s['itl_p50_s']:.4f} / {s['itl_p99_s']:.4f} s",
        "E2E mean / p99": lambda s: (
            " / ".join(_fmt(s, k, "{:.2f}") for k in ("e2e_mean_s", "e2e_p99_s")) + " s"
        ),
        "load": _load_cell,
        "MFU / MBU mean": lambda s: _pair(s, "mfu_mean", "mbu_mean"),
        "MFU / MBU (prefill, decode)": lambda s: (
            _pair(s, "mfu_prefill", "mbu_prefill") + ", " + _pair(s, "mfu_decode", "mbu_decode")
        ),
        "KV use mean / peak": lambda s: f"{s['kv_use_mean']:.1%} / {s['kv_use_peak']:.1%}",
        "power avg / peak": lambda s: f"{s['avg_power_w']:,.0f} / {s['peak_power_w']:,.0f} W",
        "CO2 operational / embodied": lambda s: (
            f"{s['co2_operational_g']:,.1f} / {s['co2_embodied_g']:,.1f} g"
        ),
        "cost GPU / energy / total": lambda s: (
            f"${s['cost_gpu_usd']:,.2f} / ${s['cost_energy_usd']:,.2f} / ${s['cost_total_usd']:,.2f}"
        ),
        "per Mtoken": lambda s: (
            f"${s['usd_per_mtok']:,.3f}, {s['wh_per_mtok']:,.1f} Wh, {s['gco2_per_mtok']:,.1f} gCO2"
        ),
    }
    for label, key, fmt in SUMMARY_ROWS:
        if key is None:
            try:
                table.add_row(label, combos[label](summary))
            except (KeyError, TypeError, ValueError):
                continue
        elif key in summary:
            table.add_row(label, _fmt(summary, key, fmt))
    return table


def print_error(message: object) -> None:
    """``error: MESSAGE`` on stderr, the message printed as it is (``[cache]`` is no markup)."""
    console("err").print(styled(("error:", "bold red"), f" {message}"), highlight=False, soft_wrap=True)


def print_warning(message: object) -> None:
    """``warning: MESSAGE`` on stderr, one line, printed as it is."""
    console("err").print(styled(("warning:", "bold yellow"), f" {message}"), highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    print_error(message)
    raise typer.Exit(code)


class _LazyCoercion:
    """A parameter's value coercion, built only when it is needed.

    typer coerces every parameter's value through a pydantic TypeAdapter that it builds on
    first use, even for an option that was not given (whose value, None, needs none): for
    ``run``'s ~100 options that is ~0.1 s, pydantic's import included. Here an absent value
    stays None (what typer returns for it without its adapter), a string given for a plain
    ``str`` option is kept as it is (what that adapter returns for a string), and anything
    else goes through typer's own coercion, built then.
    """

    __slots__ = ("descriptor",)

    def __init__(self, descriptor: Any) -> None:
        self.descriptor = descriptor

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None and not (param.multiple or param.nargs == -1):
            return None
        desc = self.descriptor
        if (
            type(value) is str
            and desc.annotation is str
            and desc.file_annotation is None
            and desc.parameter_info.parser is None
            and not param.multiple
            and param.nargs == 1
        ):
            return value
        from typer._coercion import build_runtime_param

        built = build_runtime_param(desc)
        param._runtime_param = built
        return built.coerce(value, param=param, ctx=ctx)


def _lazy_coercion(params: list[Any]) -> list[Any]:
    """Give each typer parameter without a coercion yet a :class:`_LazyCoercion`."""
    for param in params:
        if getattr(param, "_runtime_param", False) is None and hasattr(param, "type_descriptor"):
            param._runtime_param = _LazyCoercion(param.type_descriptor)
    return params


class _RunCommand(ScenarioTyperCommand):
    """``run`` whose parameters (``--help`` included) coerce lazily (:class:`_LazyCoercion`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _lazy_coercion(super().get_params(ctx))


class _RunGroup(KavierGroupMixin, typer.core.TyperGroup):
    """The run-only group, whose ``--help`` coerces lazily too."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _lazy_coercion(super().get_params(ctx))


@scenario_command()
def run(
    scenario_file: Annotated[
        Path | None,
        typer.Argument(
            help="scenario file (TOML, YAML or JSON); flags override its keys", show_default=False
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress or table")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="replace a previous run folder even if it holds files Kavier did not write"
        ),
    ] = False,
    *,
    overrides: dict[str, Any],
) -> None:
    """Simulate a scenario and write its outputs into the output folder."""
    from kavier.scenario import build_scenario

    scenario = build_scenario(scenario_file, overrides)
    try:
        _run_scenario(scenario, quiet, force)
    except KeyboardInterrupt:
        console("err").print(
            f"interrupted: nothing written to {scenario.output_folder}", markup=False, highlight=False
        )
        raise typer.Exit(130) from None


def _run_scenario(scenario: Any, quiet: bool, force: bool) -> None:
    """Run ``scenario`` into its folder, with a progress bar and the summary table unless quiet."""
    from kavier.api import run_to_folder

    def add_plots(folder: Path, summary: dict[str, Any]) -> None:
        if scenario.plots:
            from kavier.report.plots import write_plots

            write_plots(folder)

    if quiet:
        folder, summary = run_to_folder(scenario, after=add_plots, force=force)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        err = console("err")
        with Progress(
            TextColumn("[bold]simulating"),
            BarColumn(),
            TextColumn("{task.fields[done]:,} requests, {task.fields[sim]:,.0f} s simulated"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as bar:
            task = bar.add_task("run", total=None, done=0, sim=0.0)

            def progress(done: int, sim_s: float) -> None:
                bar.update(task, done=done, sim=sim_s)

            folder, summary = run_to_folder(scenario, progress=progress, after=add_plots, force=force)
        console("out").print(summarynew_table(summary, f"Kavier run ({scenario.preset} preset) -> {folder}"))
    from kavier.load import load_warning

    warning = load_warning(summary)
    if warning is not None:
        print_warning(warning)


defer(app, run, _RunCommand)


@app.command(cls=KavierCommand)
def library(
    catalog: Annotated[str | None, typer.Option("--catalog", help="user TOML catalogue")] = None,
    kind: Annotated[str, typer.Option("--kind", help="all|models|gpus|regions|traces")] = "all",
    llm: Annotated[
        str | None,
        typer.Option("--llm", help="show only this model: a library name or a HuggingFace config.json"),
    ] = None,
    traces: Annotated[
        bool, typer.Option("--traces", help="only the named traces (same as --kind traces)")
    ] = False,
) -> None:
    """List the models, GPUs, grid regions and named traces Kavier knows, with their key numbers."""
    from kavier.energy.carbon import region_rows
    from kavier.library.catalog import gpu_rows, load_catalog, model_row, model_rows

    out = console("out")
    if traces:
        kind = "traces"
    if kind not in {"all", "models", "gpus", "regions", "traces"}:
        _fail(f"--kind {kind!r}: use all, models, gpus, regions or traces")
    if llm is not None:
        if traces:
            _fail("--llm shows one model; --traces shows the named traces: use one of them")
        kind = "models"
    cat = load_catalog(catalog) if kind != "traces" else None
    models = [] if cat is None else model_rows(cat) if llm is None else [model_row(cat.model(llm))]
    for title, rows, wanted, hidden in (
        ("Models", models, "models", {"source"}),
        ("GPUs", _with_profiles(gpu_rows(cat), catalog) if cat else [], "gpus", {"source"}),
        (
            "Grid regions (annual mean carbon intensity, lifecycle gCO2e/kWh)",
            region_rows() if cat else [],
            "regions",
            set(),
        ),
    ):
        if kind not in ("all", wanted) or not rows:
            continue
        table = new_table(title=title, title_justify="left")
        columns = [c for c in rows[0] if c not in hidden]
        for col in columns:
            text = col in ("name", "source", "licence", "aliases", "serving_profile", "checkpoint")
            table.add_column(col, justify="left" if text else "right", no_wrap=col == "name")
        for row in rows:
            table.add_row(*[_cell(row[c]) for c in columns])
        out.print(table)
    if kind in ("all", "traces"):
        out.print(_traces_table())
    if kind != "traces":
        out.print("Sources of every figure: kavier/library/data/*.toml ('source' of each entry).")
    if kind in ("all", "regions"):
        out.print(
            "Grid regions: kavier/energy/data/regions.toml gives each figure's URL, the stored file and "
            "commit it was read from ('source_data') and its basis."
        )


def _with_profiles(rows: list[dict[str, Any]], catalog: str | None) -> list[dict[str, Any]]:
    """Each GPU row with ``serving_profile``: the calibrated profile the serving preset (vllm-v1)
    takes for it: "own", another GPU's (with the measured-share factors on its efficiencies) or
    "generic"."""
    from kavier.engine.system import borrowed_scales, profile_of

    short = {"compute_efficiency": "compute", "memory_efficiency": "memory", "comm_efficiency": "all-reduce"}
    for row in rows:
        found = profile_of(catalog, "vllm-v1", row["name"])
        cell = "-" if found is None else "own" if not found.note else found.name.split("/", 1)[1]
        if found is not None and found.donor:
            scales = borrowed_scales(catalog, row["name"], found.donor)
            cell += "".join(f", {short.get(c, c)} x{f:.2f}" for c, f in scales.items())
        row["serving_profile"] = cell
    return rows


def _traces_table() -> Table:
    """The named traces for ``--trace NAME``: built-in ones, and remote ones with their cache."""
    from kavier.workload.download import CACHE_VARIABLE, cached_path
    from kavier.workload.traces import named_traces

    table = new_table(
        title=f"Traces for --trace NAME (remote ones are downloaded on first use to ${CACHE_VARIABLE}, "
        "default ~/.cache/kavier)",
        title_justify="left",
    )
    for col in ("name", "where", "requests", "licence", "source"):
        table.add_column(col, no_wrap=col == "name", overflow="fold")
    for trace in named_traces():
        where = "built in"
        if trace.remote:
            where = "cached" if cached_path(trace.file).is_file() else "remote"
        table.add_row(trace.name, where, trace.description, trace.licence, trace.source)
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


@app.command(cls=KavierCommand)
def compare(
    outputs: Annotated[
        list[Path], typer.Argument(help="two or more run folders; the first is the reference")
    ],
) -> None:
    """Compare runs side by side, with ratios to the first (the thesis's R_f and R_s)."""
    from kavier.report.compare import THESIS_RATIOS
    from kavier.report.compare import compare as compare_runs

    result = compare_runs(outputs)
    out = console("out")
    table = new_table(title="Kavier runs compared (ratios to the first)", title_justify="left")
    table.add_column("metric", style="bold")
    for name in result.names:
        table.add_column(name, justify="right")
    for i in range(1, len(result.names)):
        table.add_column(f"{result.names[i]} / {result.names[0]}", justify="right")
    for key, label, values in result.rows:
        cells = [_cell(v) if v is not None else "n/a" for v in values]
        ratios = [result.ratio(key, i) for i in range(1, len(values))]
        cells += ["n/a" if r is None else f"{r:.3f}" for r in ratios]
        table.add_row(label, *cells)
    out.print(table)
    for name, key, meaning in THESIS_RATIOS:
        values = [result.ratio(key, i) for i in range(1, len(result.names))]
        shown = ", ".join(
            f"{result.names[i + 1]}: {'n/a' if v is None else f'{v:.4f}'}" for i, v in enumerate(values)
        )
        out.print(styled((name, "bold"), f" ({meaning}): {shown}"))


@app.command(cls=KavierCommand)
def plot(
    output: Annotated[Path, typer.Argument(help="a kavier run output folder")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="where to write PNGs")] = None,
) -> None:
    """Write PNG plots (latency CDFs, utilisation and queues, KV usage) for a run folder."""
    from kavier.report.plots import write_plots

    paths = write_plots(output, out_dir)
    for path in paths:
        console("out").print(str(path))


# Commands that live in their own modules register themselves here (one line each).
# --- command registrations ---
from kavier.commands import calibrate as _calibrate  # noqa: E402
from kavier.commands import plan as _plan  # noqa: E402
from kavier.commands import report as _report  # noqa: E402
from kavier.commands import sweep as _sweep  # noqa: E402
from kavier.commands import validate as _validate  # noqa: E402

app.command(name="calibrate", cls=KavierCommand)(_calibrate.calibrate)
app.command(name="sweep", cls=KavierCommand)(_sweep.sweep)
app.command(name="report", cls=KavierCommand)(_report.report)
app.command(name="validate", cls=KavierCommand)(_validate.validate)
defer(app, _plan.plan, ScenarioTyperCommand)
# --- end of command registrations ---


def _run_app() -> typer.Typer:
    """An app holding only ``run`` (and a hidden no-op, so that it stays a group with the same
    usage lines): ``kavier run ...`` then skips building every other command's parameters."""
    only = typer.Typer(**APP_OPTIONS, cls=_RunGroup)
    only.command(cls=_RunCommand)(run)
    only.command(name="_", hidden=True)(_noop)
    return only


def _noop() -> None:
    """Nothing (keeps the run-only app a command group)."""


def _exit_now(code: int) -> None:
    """Leave without the interpreter's teardown (freeing every module and object one by one
    takes 0.1-0.3 s after a large run): the run's files are written and its folder is in
    place, so only the standard streams need flushing."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


# glibc malloc settings for a run (mallopt parameter numbers): numpy's large arrays are freed
# and allocated again and again, and by default glibc hands much of that memory back to the
# kernel (and each writer thread has an arena of its own), so it is faulted in afresh each time;
# keeping it makes a Marconi-scale run's system time ~0.03-0.04 s shorter. An explicit
# MALLOC_* variable in the environment wins.
_MALLOC_SETTINGS = (
    ("MALLOC_ARENA_MAX", -8, 1),  # M_ARENA_MAX: one arena, shared by the writer threads
    ("MALLOC_TRIM_THRESHOLD_", -1, 1 << 30),  # M_TRIM_THRESHOLD: keep freed memory (< 1 GiB)
    ("MALLOC_MMAP_THRESHOLD_", -3, 1 << 25),  # M_MMAP_THRESHOLD: arrays < 32 MiB from the heap
)


def _tune_malloc() -> None:
    """Apply :data:`_MALLOC_SETTINGS` (glibc only; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    for variable, param, value in _MALLOC_SETTINGS:
        if variable not in os.environ:
            mallopt(param, value)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: Any = None,
) -> None:
    """A warning as one ``warning: ...`` line on stderr (no category, source path or line)."""
    print_warning(message)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM takes Ctrl-C's path: the run in progress removes its temporary folder."""
    raise KeyboardInterrupt


def _install_handlers() -> None:
    """One-line warnings, and SIGTERM handled as Ctrl-C (see :func:`_terminated`)."""
    import signal
    import warnings

    warnings.showwarning = _show_warning
    with contextlib.suppress(ValueError, OSError):  # not the main thread / no such signal
        signal.signal(signal.SIGTERM, _terminated)


def _usage_errors() -> tuple[type[BaseException], ...]:
    """The classes of click's usage and parameter errors: typer >= 0.2x vendors click (its
    errors derive from ``typer.TyperException``), earlier typer uses click itself."""
    found: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        found.append(typer.TyperException)
    try:
        import click
    except ImportError:  # pragma: no cover - click comes with typer
        pass
    else:
        found.append(click.ClickException)
    return tuple(found)


def _usage_line(exc: BaseException) -> str:
    """A usage error as one line: click's message and where the help is."""
    format_message = getattr(exc, "format_message", None)
    message = " ".join((format_message() if format_message else str(exc)).split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        path = ctx.command_path
    else:  # an option's missing value is found before a context exists
        words = [a for a in sys.argv[1:2] if not a.startswith("-")]
        path = " ".join(["kavier", *words])
    return f"{message} (see '{path} -h')"


def main() -> None:
    """Console entry point: one-line errors for bad input, never a traceback."""
    is_run = len(sys.argv) > 1 and sys.argv[1] == "run"
    _install_handlers()
    if is_run:
        _tune_malloc()
    try:
        # not standalone: a usage error reaches us, to be printed as one line (click's own
        # form is a usage block and a boxed message); --help and typer.Exit return a code
        code = (_run_app() if is_run else app)(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except _usage_errors() as exc:
        print_error(_usage_line(exc))
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        console("err").print("interrupted: no output folder was written")
        sys.exit(130)
    except SystemExit as exc:
        if is_run and exc.code in (0, None, 130):
            # 130: interrupted, its folder already removed; leaving without the interpreter's
            # teardown also keeps a late signal from turning the exit status into "killed"
            _exit_now(exc.code or 0)
        raise
    except KavierError as exc:
        print_error(exc)
        sys.exit(2)
    except KeyboardInterrupt:
        console("err").print("interrupted: no output folder was written")
        sys.exit(130)


if __name__ == "__main__":
    main()
