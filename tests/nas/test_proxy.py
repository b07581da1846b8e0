"""Zero-cost proxy evaluator: every proxy scores, deterministically, and plugs into a job spec."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nas.engine import MemoryRecorder
from nas.catalog import MemoryCatalog
from nas.engine import run_search
from nas.evaluators import PROXIES, ProxyEvaluator, load_dataset
from nas.resolve import build_search
from nas.spec import JobSpec
from search_spaces import get_space

NB201 = get_space("nb201")
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
EMPTY = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_dataset("digits", seed=0)


@pytest.mark.parametrize("proxy", PROXIES)
def test_every_proxy_scores_deterministically(proxy: str, digits) -> None:  # type: ignore[no-untyped-def]
    evaluator = ProxyEvaluator(NB201, digits, proxy=proxy, batch_size=16, width=4, cells_per_stage=1)
    first, again = evaluator.evaluate([CONV]), evaluator.evaluate([CONV])
    assert first[0].ok and first[0].metrics == again[0].metrics
    value = first[0].metrics["accuracy"]
    assert math.isfinite(value) and first[0].metrics[f"proxy_{proxy}"] == value


def test_a_cell_that_computes_nothing_scores_below_a_convolutional_one(digits) -> None:  # type: ignore[no-untyped-def]
    for proxy in ("synflow", "snip", "grad_norm"):
        evaluator = ProxyEvaluator(NB201, digits, proxy=proxy, batch_size=16, width=4, cells_per_stage=1)
        conv, empty = evaluator.evaluate([CONV, EMPTY])
        assert conv.ok and (not empty.ok or empty.metrics["accuracy"] < conv.metrics["accuracy"]), proxy


def test_user_npz_and_unknown_proxy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, images=rng.integers(0, 255, size=(40, 8, 8, 3)).astype(np.uint8), labels=rng.integers(0, 3, 40))
    data = load_dataset(str(path))
    result = ProxyEvaluator(NB201, data, proxy="naswot", batch_size=8, width=4, cells_per_stage=1).evaluate([CONV])
    assert result[0].ok
    with pytest.raises(ValueError, match="unknown proxy"):
        ProxyEvaluator(NB201, data, proxy="nope")


def test_proxy_evaluator_in_a_job(tmp_path: Path) -> None:
    spec = JobSpec.model_validate({
        "space": "nb201", "strategy": {"name": "random"}, "budget": {"evaluations": 3}, "seed": 1,
        "objectives": [{"metric": "accuracy", "goal": "maximize"},
                       {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
        "evaluator": {"type": "proxy", "proxy": "synflow", "batch_size": 8, "width": 4, "cells_per_stage": 1}})
    recorder = MemoryRecorder()
    summary = run_search(build_search(spec, MemoryCatalog()), recorder)
    assert summary.evaluated == 3
    assert all("proxy_synflow" in t.metrics for t in recorder.trials if t.status == "completed")
