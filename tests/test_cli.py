"""``kavier.cli`` itself: the run-only command's lazy coercion and the start-up malloc tuning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import typer

import kavier as kavier_api
from kavier import cli
from tests.cli_helper import kavier, write_tiny_llama_config
from tests.paths import SRC

ARGVS = [
    [],
    ["--trace", "t.parquet", "--llm", "Llama-3-8B", "--gpu", "A10", "-o", "/tmp/x", "--export-rate", "1"],
    ["--preset", "thesis", "-q", "--gpus", "3", "--rate", "2.5", "--seed", "7"],
    ["scenario.toml", "--opendc", "--no-plots", "--baseline", "--kv_cache", "off", "--prefix_len", "0"],
    ["--gpu-idle-w", "1e2", "--tp", "2", "--rate-scale", "0.5", "--export-rate", " 100ms "],
    ["--gpus", "x"],
    ["--rate", "fast"],
    ["--trace"],
    ["--gpus", "1", "--gpus", "2", "--llm", ""],
]


def _eager_command() -> typer.core.TyperCommand:
    """``run`` as plain typer builds it (every coercion through its adapter)."""
    app = typer.Typer(**cli.APP_OPTIONS)
    app.command()(cli.run)
    app.command(name="_", hidden=True)(cli._noop)
    return typer.main.get_command(app).commands["run"]


def _lazy_command() -> typer.core.TyperCommand:
    return typer.main.get_command(cli._run_app()).commands["run"]


def _parse(command: typer.core.TyperCommand, argv: list[str]) -> tuple[str, object]:
    try:
        with command.make_context("run", list(argv)) as ctx:
            return "ok", ctx.params
    except typer._click.exceptions.ClickException as exc:
        return type(exc).__name__, exc.format_message()


@pytest.mark.parametrize("argv", ARGVS)
def test_lazy_coercion_matches_typer(argv):
    eager = _parse(_eager_command(), argv)
    lazy = _parse(_lazy_command(), argv)
    assert lazy == eager
    if lazy[0] == "ok":
        types = {k: type(v) for k, v in lazy[1].items()}
        assert types == {k: type(v) for k, v in eager[1].items()}


def test_run_command_uses_the_lazy_coercion():
    command = _lazy_command()
    with command.make_context("run", ["--gpus", "2", "s.toml"]) as ctx:
        params = {p.name: p for p in command.get_params(ctx)}
    assert isinstance(params["trace"]._runtime_param, cli._LazyCoercion)  # absent: never built
    assert isinstance(params["gpus"]._runtime_param, cli._LazyCoercion)  # text: kept as given
    assert ctx.params["gpus"] == "2"  # the scenario parses it (one-line errors name the flag)
    assert not isinstance(params["scenario_file"]._runtime_param, cli._LazyCoercion)  # a Path: typer's


def test_tune_malloc_skips_settings_given_in_the_environment(monkeypatch):
    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    import ctypes

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(cli.sys, "platform", "linux")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    cli._tune_malloc()
    assert calls == [(-1, 1 << 30), (-3, 1 << 25)]


def test_tune_malloc_does_nothing_off_linux(monkeypatch):
    monkeypatch.setattr(cli.sys, "platform", "darwin")
    cli._tune_malloc()  # no ctypes call, no error


# --- one-line messages, printed as they are (issue 14, items 8-10) ------------------------------


def _run_args(folder: object, *extra: object) -> list[object]:
    return [
        "run",
        "--workload",
        "poisson",
        "--num-requests",
        "10",
        "--no-opendc",
        "-q",
        "--output-folder",
        folder,
        *extra,
    ]


def test_negative_seed_is_a_one_line_error(tmp_path):
    res = kavier(*_run_args(tmp_path / "o", "--seed", "-1"))
    assert res.returncode == 2
    assert res.stderr.startswith("error: --seed -1") and len(res.stderr.splitlines()) == 1
    assert "Traceback" not in res.stderr


def test_plot_out_onto_a_file_is_a_one_line_error(tmp_path):
    assert kavier(*_run_args(tmp_path / "o")).returncode == 0
    target = tmp_path / "plots.png"
    target.write_text("mine")
    res = kavier("plot", tmp_path / "o", "--out", target)
    assert res.returncode == 2, res.stderr
    assert res.stderr == f"error: --out {target} is a file; pass a folder for the PNGs\n"
    assert target.read_text() == "mine"


def test_an_unsorted_trace_warns_on_one_clean_line(tmp_path):
    trace = tmp_path / "t.csv"
    rows = ["session_id,turn_id,ts,num_input_tokens,num_output_tokens"]
    rows += [f"{i},0,{(7 * i) % 10},100,10" for i in range(10)]
    trace.write_text("\n".join(rows) + "\n")
    res = kavier("run", "--trace", trace, "--no-opendc", "-q", "--output-folder", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    assert res.stderr == "warning: t.csv: arrival times were not sorted; read whole and sorted them\n"


def test_user_paths_with_brackets_are_printed_verbatim(tmp_path):
    res = kavier(
        "run", "--num-requests", "10", "--no-opendc", "--output-folder", "a[x]/[bold]o", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert "-> a[x]/[bold]o" in res.stdout
    (tmp_path / "a[x]" / "f.txt").write_text("")
    res = kavier(*_run_args(tmp_path / "a[x]" / "f.txt" / "o"))
    assert res.returncode == 2
    assert f"{tmp_path}/a[x]/f.txt/o" in res.stderr


def test_messages_with_brackets_keep_them(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text('name = "x"\n')
    res = kavier("sweep", sweep, "--out", tmp_path / "r")
    assert res.stderr == f"error: {sweep}: no [axes] and no [[runs]]; a sweep needs at least one of them\n"
    res = kavier("compare", tmp_path / "[red]missing", tmp_path / "b")
    assert "[red]missing" in res.stderr


def test_the_ray_hint_keeps_its_extra():
    from kavier.commands.console import console

    with console("err").capture() as captured:
        cli.print_error("install it with pip install -e '.[ray]'")
    assert captured.get() == "error: install it with pip install -e '.[ray]'\n"


def _interrupt(tmp_path, signum: int) -> tuple[int, str]:
    """Start a long run, wait for its temporary folder, send ``signum``; (exit code, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [sys.executable, "-m", "kavier", "run", "--workload", "poisson", "--rate", "1000"]
    args += ["--num-requests", "1000000", "--output-folder", "big"]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".big.partial-*")):
            assert time.monotonic() < deadline and proc.poll() is None, "the run never started writing"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_leaves_nothing_and_says_so(tmp_path, signum):
    code, err = _interrupt(tmp_path, signum)
    assert code == 130, err
    assert err == "interrupted: nothing written to big\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- conventions (issue 14, item 13) ------------------------------------------------------------


def test_version_prints_the_package_version():
    from kavier import __version__

    res = kavier("--version")
    assert res.returncode == 0 and res.stdout == f"kavier {__version__}\n"


@pytest.mark.parametrize("command", ["", "run", "plan", "sweep", "calibrate", "library", "plot"])
def test_every_help_screen_takes_h_and_shows_no_bool_metavar_or_rst(command):
    res = kavier(*([command] if command else []), "-h")
    assert res.returncode == 0, res.stderr
    assert "Usage: " in res.stdout and "-h" in res.stdout
    assert "<bool>" not in res.stdout and "``" not in res.stdout
    assert "[default: (" not in res.stdout


def test_run_help_groups_options_by_topic_with_defaults():
    out = kavier("run", "--help").stdout
    for panel in ("System", "Workload"):
        assert f"─ {panel} ─" in out
    assert "[default: Llama-3-8B]" in out


def test_library_takes_a_huggingface_config(tmp_path):
    config = write_tiny_llama_config(tmp_path)
    res = kavier("library", "--llm", config)
    assert res.returncode == 0, res.stderr
    assert "tiny-llama" in res.stdout and "Llama-3-8B" not in res.stdout and "GPUs" not in res.stdout


def test_library_says_which_profile_each_gpu_takes():
    """``kavier library --kind gpus`` names each GPU's serving profile: its own, the GPU it
    borrows from with the measured-share factors (B200), or the nearest architecture's."""
    res = kavier("library", "--kind", "gpus")
    assert res.returncode == 0, res.stderr
    cells = [line.split("│") for line in res.stdout.splitlines() if "│" in line]
    rows = {c[1].strip(): c[-2].strip() for c in cells}
    assert rows["H100-SXM"] == "own" and rows["A100-80GB"] == "own"
    assert rows["H200"] == "H100-SXM, memory x0.98" and rows["L4"] == "L40S, compute x0.59"
    assert rows["B200"] == "H100-SXM, compute x0.80, all-reduce x0.76"


def test_a_run_folders_scenario_reruns_from_any_folder(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    rows = ["session_id,turn_id,ts,num_input_tokens,num_output_tokens", "1,0,0,100,10", "2,0,1,100,10"]
    (work / "t.csv").write_text("\n".join(rows) + "\n")
    assert kavier("run", "--trace", "t.csv", "--no-opendc", "-q", "-o", "out", cwd=work).returncode == 0
    res = kavier("run", work / "out" / "scenario.json", "-q", "-o", "again", cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    assert (elsewhere / "again" / "summary.json").read_text() != ""


def test_rerunning_into_a_run_folder_keeps_working_but_a_users_file_needs_force(tmp_path):
    out = tmp_path / "o"
    assert kavier(*_run_args(out, "--plots")).returncode == 0
    assert kavier(*_run_args(out, "--plots")).returncode == 0  # only Kavier's files: replaced
    (out / "notes.txt").write_text("mine")
    res = kavier(*_run_args(out))
    assert res.returncode == 2
    assert res.stderr == (
        f"error: output folder {out} holds files Kavier did not write (notes.txt); a run replaces "
        "the whole folder: move them, choose another folder or pass --force\n"
    )
    assert (out / "notes.txt").read_text() == "mine"
    assert kavier(*_run_args(out, "--force")).returncode == 0
    assert not (out / "notes.txt").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "--out", "x"], "No such option: --out"),
        (["runn"], "No such command 'runn'"),
        (["plan", "--gpu-types"], "requires an argument"),
        (["validate", "--by"], "requires an argument"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_option_and_the_help(args, says):
    # click's own form is a usage block and a boxed message over five lines
    res = kavier(*args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], res.stderr
    assert "-h'" in lines[0]


def test_the_run_table_shows_the_itl_where_a_run_has_one():
    from rich.console import Console

    from kavier.cli import summarynew_table

    def rows(summary):
        console = Console(width=200, record=True)
        console.print(summarynew_table(summary, "t"))
        return console.export_text()

    serving = kavier_api.simulate(llm="Llama-3.1-8B", gpu="H100-SXM", opendc=False).summary
    text = rows(serving)
    assert "ITL p50 / p99" in text
    assert f"{serving['itl_p50_s']:.4f} / {serving['itl_p99_s']:.4f} s" in text
    assert "ITL" not in rows(kavier_api.simulate(preset="thesis", opendc=False).summary)
