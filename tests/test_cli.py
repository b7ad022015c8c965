"""``kavier.cli`` itself: the run-only command's lazy coercion and the start-up malloc tuning."""

from __future__ import annotations

import pytest
import typer

from kavier import cli

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
