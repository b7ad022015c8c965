"""Physically wrong set-ups: one rule for tensor and pipeline degrees (run, plan, sweep and the
API alike), GPUs that the replicas do not occupy, and profiles fitted for something else."""

from __future__ import annotations

import pytest

import kavier
from kavier.engine.system import parallelism_error, plan_replicas
from kavier.errors import KavierWarning, ScenarioError
from kavier.library.catalog import load_catalog
from kavier.plan.candidates import candidates
from kavier.scenario import build_scenario
from kavier.sweep import run_sweep
from tests.sweep.helpers import write

SMALL = {
    "workload": "poisson",
    "num_requests": 4,
    "input_tokens": "100",
    "output_tokens": "5",
    "opendc": False,
}


@pytest.mark.parametrize(
    ("tp", "pp", "needle"),
    [
        (3, 1, "tp=3 does not divide Llama-3-8B's 32 attention heads"),
        (1, 3, "pp=3 does not divide Llama-3-8B's 32 layers"),
        (64, 1, "tp=64 does not divide"),
    ],
)
def test_a_degree_that_does_not_split_the_model_is_one_error_everywhere(tmp_path, tp, pp, needle):
    model = load_catalog().model("Llama-3-8B")
    assert needle in (parallelism_error(model, tp, pp) or "")
    with pytest.raises(ScenarioError, match=needle):  # kavier.simulate and kavier run
        kavier.simulate(tp=tp, pp=pp, **SMALL)
    if pp == 1:  # kavier plan: the same rule marks the candidate unfit
        (cand,) = candidates(build_scenario(None, {}), ["H100-SXM"], [tp])
        assert cand.unfit is not None and needle in cand.unfit
    sweep = write(tmp_path, f"[axes]\ntp = [1, {tp}]\npp = [{pp}]\n")
    with pytest.raises(ScenarioError, match=needle):  # kavier sweep, before anything runs
        run_sweep(sweep, tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()


def test_degrees_that_split_the_model_run():
    for tp, pp in [(1, 1), (2, 1), (4, 2), (1, 32)]:
        assert parallelism_error(load_catalog().model("Llama-3-8B"), tp, pp) is None
    kavier.simulate(llm="Llama-3.1-70B", gpu="H100-SXM", tp=4, pp=2, **SMALL)


def test_a_replica_group_with_a_bad_degree_is_named():
    values = {"replica_groups": [{"count": 1}, {"count": 1, "tp": 3}]}
    with pytest.raises(ScenarioError, match=r"replica_groups\[1\]: tp=3 does not divide"):
        plan_replicas(build_scenario(None, values))


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"gpus": 4, "replicas": 2}, "--gpus 4 but --replicas 2 x --tp 1 x --pp 1 = 2 GPUs: give --gpus 2"),
        ({"gpus": 4, "tp": 2, "replicas": 1}, "--gpus 4 but --replicas 1 x --tp 2 x --pp 1 = 2 GPUs"),
        (
            {"gpus": 3, "tp": 2},
            "--gpus 3 is not a whole number of replicas of --tp 2 x --pp 1 = 2 GPUs: give --gpus 2 or 4",
        ),
        ({"gpus": 2, "tp": 4}, "give --gpus 4"),
        ({"gpus": 3, "replica_groups": [{"count": 2, "tp": 2}]}, "--gpus 3 but replica_groups occupy 4 GPUs"),
    ],
)
def test_gpus_that_the_replicas_do_not_occupy_are_one_error(values, needle):
    with pytest.raises(ScenarioError) as info:
        build_scenario(None, values)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "values",
    [
        {"gpus": 4},
        {"gpus": 4, "replicas": 4},
        {"gpus": 4, "tp": 2},
        {"replicas": 3},
        {"tp": 2},
        {"gpus": 4, "replica_groups": [{"count": 2, "tp": 2}]},
        {"preset": "thesis", "gpus": 3},  # the thesis preset's GPUs are its replicas
    ],
)
def test_gpus_and_replicas_that_agree_are_accepted(values):
    build_scenario(None, values)


def test_a_profile_fitted_for_another_model_or_gpu_warns_in_one_line(tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text('compute_efficiency = 0.5\n[meta]\nmodel = "Llama-2-70B"\ngpu = "a100-80gb"\n')
    with pytest.warns(KavierWarning) as caught:
        plan_replicas(build_scenario(None, {"perf_profile": str(profile)}))
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(
        f"--perf-profile {profile} was fitted for model Llama-2-70B (this run: Llama-3-8B)"
    )
    assert "gpu a100-80gb (this run: A10)" in message and "\n" not in message


def test_a_profile_fitted_for_this_model_and_gpu_does_not_warn(tmp_path, recwarn):
    profile = tmp_path / "p.toml"
    profile.write_text('compute_efficiency = 0.5\n[meta]\nmodel = "llama-3-8b"\ngpu = "A10"\n')
    plan_replicas(build_scenario(None, {"perf_profile": str(profile)}))
    bare = tmp_path / "bare.toml"
    bare.write_text("compute_efficiency = 0.5\n")  # says nothing of where it came from
    plan_replicas(build_scenario(None, {"perf_profile": str(bare)}))
    assert not [w for w in recwarn if issubclass(w.category, KavierWarning)]
