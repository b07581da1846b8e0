"""Static metrics against torch: exact parameters, layer outputs by forward hooks, and the
planned peak from the ops torch runs; every metric over the whole nb201 space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces import get_space
from search_spaces.metrics import STATIC_METRICS, static_metrics, static_metrics_of
from tests.search_spaces.torch_memory import layer_outputs, planned_peak

@pytest.mark.parametrize("name", ["nb201", "fbnet"])
def test_agrees_with_torch_on_50_random_architectures(name: str) -> None:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: threads only contend on a shared machine
    space = get_space(name)
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(50)]
    ours = static_metrics_of(space, archs, ["params", "macs", "peak_memory_kb_fp32"])
    x = torch.randn(*space.input_shape(1))
    worst = 0.0
    for i, arch in enumerate(archs):
        model = space.build_model(arch).eval()
        assert ours["params"][i] == sum(p.numel() for p in model.parameters()), arch
        # MACs of every conv and linear from the output sizes the hooks saw
        macs = 0
        outputs = iter(layer_outputs(model, x))
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                macs += next(outputs) * m.weight[0].numel()
            elif isinstance(m, torch.nn.Linear):
                macs += next(outputs) * m.in_features
        assert ours["macs"][i] == macs, arch
        measured = planned_peak(model, x) * 4 / 1024
        worst = max(worst, abs(ours["peak_memory_kb_fp32"][i] - measured) / measured)
    torch.set_num_threads(threads)
    assert worst <= 0.01


def test_layer_outputs_follow_module_order_for_the_macs_check() -> None:
    """The MACs check above pairs hook outputs with ``model.modules()`` order: true when every
    conv/linear runs once in definition order, which these networks do."""
    space = get_space("fbnet")
    model = space.build_model(space.sample(np.random.default_rng(0)), num_classes=100).eval()
    sizes = layer_outputs(model, torch.randn(1, 3, 32, 32))
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(sizes) == len(layers)
    assert sizes[-1] == 100 and sizes[0] == 16 * 32 * 32


def test_peak_memory_spreads_over_nb201_and_units_are_consistent() -> None:
    space = get_space("nb201")
    codes = space.largest_codes()
    m = static_metrics(space, codes)
    assert set(m) == set(STATIC_METRICS)
    assert np.allclose(m["peak_memory_kb_fp32"], 4 * m["peak_memory_kb"])
    assert np.allclose(m["model_size_kb_fp16"], 2 * m["params"] / 1024)
    assert np.allclose(m["flops"], 2 * m["macs"])
    # a 64 KB int8 budget splits the space: cells with many parallel convs need 80 KB
    assert 0 < (m["peak_memory_kb"] <= 64).mean() < 1
    assert m["peak_memory_kb"].min() == 32 and m["peak_memory_kb"].max() == 80
    # the all-conv3x3 cell is the largest network
    big = space.encode("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert m["params"].max() == static_metrics(space, big[None])["params"][0]


def test_fbnet_largest_codes_bound_a_sample() -> None:
    space = get_space("fbnet")
    top = static_metrics(space, space.largest_codes())
    rng = np.random.default_rng(0)
    sample = static_metrics(space, np.stack([space.encode(space.sample(rng)) for _ in range(2000)]))
    for name, values in sample.items():
        assert values.max() <= top[name].max(), name


def test_all_metrics_for_every_nb201_architecture_in_one_call() -> None:
    """Cold (the per-cell table rebuilt), one vectorised call gives every metric for all 15,625
    architectures, equal to computing them one architecture at a time. The speed bar (1 s) is
    a figure benchmarks/static_metrics.py prints, not a timed test."""
    from search_spaces import nb201_metrics

    nb201_metrics._cell_table.cache_clear()
    space = get_space("nb201")
    codes = space.largest_codes()
    m = static_metrics(space, codes)
    assert set(m) == set(STATIC_METRICS) and all(len(v) == 15_625 and np.isfinite(v).all() for v in m.values())
    for i in np.random.default_rng(2).choice(len(codes), 40, replace=False):
        one = static_metrics(space, codes[i][None])
        assert all(one[name][0] == m[name][i] for name in m), space.decode(codes[i])
