"""``kavier.sweep.runners``: results do not depend on the backend or the number of workers."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from kavier.sweep import run_sweep
from kavier.sweep.collect import comparable, is_wall_clock
from tests.sweep.helpers import write


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    body = (
        '[axes]\ngpu = ["A10", "L4"]\nprefix_cache = ["off", "block"]\nrouter = ["random", "round_robin"]\n'
    )
    body += "replicas = [2]\n"
    path = write(tmp_path, body)
    one = run_sweep(path, tmp_path / "one", workers=1)  # in this process
    two = run_sweep(path, tmp_path / "two", workers=2)  # a pool of two spawned processes
    assert len(one.ok) == len(two.ok) == 8
    a = pq.read_table(tmp_path / "one" / "runs.parquet")
    b = pq.read_table(tmp_path / "two" / "runs.parquet")
    assert any(is_wall_clock(c) for c in a.column_names)
    assert comparable(a).equals(comparable(b))
    assert a.num_rows == 8 and a.column("status").to_pylist() == ["ok"] * 8


def test_ray_backend_gives_identical_results(tmp_path):
    pytest.importorskip("ray")
    path = write(tmp_path, '[axes]\ngpu = ["A10", "L4"]\nseed = [1, 2]\n')
    local = run_sweep(path, tmp_path / "local", workers=2)
    ray_report = run_sweep(path, tmp_path / "ray", workers=2, backend="ray")
    assert len(local.ok) == len(ray_report.ok) == 4
    a = pq.read_table(tmp_path / "local" / "runs.parquet")
    b = pq.read_table(tmp_path / "ray" / "runs.parquet")
    assert comparable(a).equals(comparable(b))


def test_ray_backend_without_ray_is_a_one_line_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    path = write(tmp_path, "[axes]\nseed = [1]\n")
    from kavier.errors import KavierError

    with pytest.raises(KavierError, match=r"pip install -e '\.\[ray\]'"):
        run_sweep(path, tmp_path / "out", backend="ray")
