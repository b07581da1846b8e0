"""The thread policy (nas/threads.py): applied to torch, recorded with each trial, and
neither a ``train`` trial's metrics nor a supernet search's epochs depend on the thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas import threads

ROOT = Path(__file__).resolve().parents[2]

TRAIN_ONE = """
import json, torch
from nas.catalog import MemoryCatalog
from nas.resolve import build_search
from nas.spec import JobSpec
spec = JobSpec.model_validate({"space": "nb201", "budget": {"evaluations": 1}, "seed": 4,
    "strategy": {"name": "random"},
    "objectives": [{"metric": "accuracy", "goal": "maximize"}],
    "evaluator": {"type": "train", "dataset": "digits", "epochs": 1, "width": 4}})
search = build_search(spec, MemoryCatalog())
arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
(evaluation,) = search.evaluator.evaluate([arch])
print(json.dumps({"metrics": evaluation.metrics, "torch": torch.get_num_threads(),
                  "mkldnn": torch.backends.mkldnn.enabled}))
"""

SEARCH_ONE = """
import json, sys
from nas.catalog import MemoryCatalog
from nas.resolve import build_search
from nas.spec import JobSpec
spec = JobSpec.model_validate({"space": "fbnet", "budget": {"evaluations": 1}, "seed": 2,
    "strategy": {"name": "fbnet", "params": {"latency_weights": [0.5], "epochs": 1, "warmup_epochs": 0,
                                      "width_multiplier": 0.1, "dataset": sys.argv[1]}},
    "objectives": [{"metric": "accuracy", "goal": "maximize"},
                   {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
    "evaluator": {"type": "train", "dataset": "digits", "epochs": 1}})
strategy = build_search(spec, MemoryCatalog()).strategy
phases = []
strategy.checkpoint_hook = lambda phase: phases.append(phase)
print(json.dumps({"archs": strategy.ask(1), "phases": phases}))
"""


def at_one_and_two_threads(script: str, *args: str) -> tuple[dict[str, object], dict[str, object]]:
    """Run ``script`` at 1 and at 2 threads at the same time (the 2-core machine is busy meanwhile)."""
    runs = []
    for n in (1, 2):
        env = {**os.environ, "HWNAS_TORCH_THREADS": str(n), "PYTHONPATH": str(ROOT)}
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR"):
            env.pop(name, None)  # what the policy sets itself
        runs.append(subprocess.Popen([sys.executable, "-c", script, *args], env=env, cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr[-2000:]
    one, two = (json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs)
    return one, two


def test_a_train_trial_records_its_threads_and_scores_the_same_at_one_and_two() -> None:
    one, two = at_one_and_two_threads(TRAIN_ONE)
    assert one["torch"] == 1 and two["torch"] == 2, "the policy did not set torch's thread count"
    assert one["metrics"]["torch_threads"] == 1.0 and two["metrics"]["torch_threads"] == 2.0  # type: ignore[index]
    assert one["mkldnn"] is False
    assert one["metrics"]["accuracy"] == two["metrics"]["accuracy"]  # type: ignore[index]


def test_a_block_space_supernet_search_derives_the_same_at_one_and_two_threads(tmp_path: Path) -> None:
    """Digits shrink to 1x1 in fbnet's last stages, where torch's BatchNorm kernel made the
    derived architecture differ."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    dataset = tmp_path / "digits600.npz"
    np.savez(dataset, images=digits.images[:600] / 16.0, labels=digits.target[:600])
    one, two = at_one_and_two_threads(SEARCH_ONE, str(dataset))
    assert one["phases"] and one["phases"][-1]["torch_threads"] == 1  # type: ignore[index]
    for phase in two["phases"]:  # type: ignore[union-attr]
        phase["torch_threads"] = 1
    assert one == two


def test_threads_default_to_cores_over_concurrent_evaluations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 8)
    try:
        threads.configure(3)
        assert threads.torch_threads() == 2
        threads.configure(16)
        assert threads.torch_threads() == 1  # at least one
        monkeypatch.setenv(threads.ENV, "5")
        assert threads.torch_threads() == 5
        monkeypatch.setenv(threads.ENV, "zero")
        with pytest.raises(ValueError, match="HWNAS_TORCH_THREADS"):
            threads.torch_threads()
    finally:
        threads.configure(1)


def test_apply_overrides_a_thread_count_set_elsewhere_in_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv(threads.ENV, "1")
    torch.set_num_threads(2)  # e.g. a profiling run earlier in this process
    assert threads.apply() == 1 and torch.get_num_threads() == 1
    options = threads.session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
