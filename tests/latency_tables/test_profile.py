"""profile on a tiny subset of ops (fast), and the noise-robust estimate it rests on."""

from __future__ import annotations

import numpy as np
import pytest

from latency_tables.profile import ProfileError, Timer, profile_space, robust_estimate
from search_spaces import get_space
from tests.conftest import ROOT


def test_profiles_a_few_nb201_signatures() -> None:
    space = get_space("nb201")
    only = ["edge0:nor_conv_3x3", "edge0:nor_conv_1x1", "edge0:skip_connect", "network"]
    table = profile_space(space, only=only, rounds=3, validate_archs=0, device_name="t")
    assert sorted(table.entries) == sorted(only)
    e = {k: v.mean for k, v in table.entries.items()}
    # a 3x3 conv does 9x the work of a 1x1 on the same tensor; an identity does none
    assert e["edge0:nor_conv_3x3"] > e["edge0:nor_conv_1x1"] > e["edge0:skip_connect"] >= 0
    assert table.provenance["environment"]["threads"] == 1 and table.provenance["build_seconds"] > 0
    assert table.provenance["reference_drift"]["ratio"] >= 1


def test_profiles_a_few_fbnet_signatures() -> None:
    space = get_space("fbnet")
    only = ["k3_e1:16x32x32->24/s1", "k5_e6:16x32x32->24/s1"]
    table = profile_space(space, only=only, rounds=3, validate_archs=0)
    assert table.entries[only[1]].mean > table.entries[only[0]].mean > 0


def test_unknown_signature_is_named() -> None:
    with pytest.raises(ProfileError, match="edge9:conv"):
        profile_space(get_space("nb201"), only=["edge9:conv"], rounds=1, validate_archs=0)


def test_robust_estimate_cancels_drift_shared_by_a_round() -> None:
    true = np.array([1.0, 2.0, 4.0, 8.0])
    drift = np.array([1.0, 1.7, 1.0, 3.0, 1.2])  # whole rounds run slower
    estimate = robust_estimate(true[:, None] * drift[None, :])
    assert estimate / estimate[0] == pytest.approx(true)
    assert estimate[0] == pytest.approx(1.0 * np.percentile(np.median(true) * drift, 10) / np.median(true))


def test_timer_measures_something() -> None:
    import time

    timer = Timer("cpu")
    # 10x apart, 5 rounds: a busy machine's wake-up delays (a few ms) must not swap the order
    got = timer.measure({"a": lambda: time.sleep(0.002), "b": lambda: time.sleep(0.02),
                         "c": lambda: None}, rounds=5, repeats=2)
    assert got["b"] > got["a"] > got["c"]


def test_profiles_ops_in_onnxruntime_with_a_definition_space() -> None:
    from search_spaces import load_space_file

    space = load_space_file(ROOT / "tests" / "search_spaces" / "data" / "mbv2-160.json")
    only = ["stem:3x160x160->16/s2", "k3_e3:40x20x20->40/s1", "skip:24x40x40->40/s2"]
    table = profile_space(space, only=only, rounds=2, validate_archs=0, runtime="onnxruntime")
    assert table.device["runtime"].startswith("onnxruntime ") and table.space == "mbv2-160"
    assert sorted(table.entries) == sorted(only) and all(e.mean > 0 for e in table.entries.values())
    with pytest.raises(ProfileError, match="--runtime must be one of"):
        profile_space(space, only=only, runtime="tflite")
