"""Run start-up settings: the glibc malloc tuning and its environment overrides."""

from __future__ import annotations

from kavier import cli


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
