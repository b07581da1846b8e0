"""The suite every search space runs: each registered space (code and shipped definition files)
and a definition written here from the issue's example (``data/mbv2-160.json``).

Round trips, operators, hashing, static metrics against torch at the space's own resolution,
export to a standalone torch module and to ONNX, the supernet, the profile plan, and a
5-trial search through the engine. Work per space is kept small (few architectures), never
the resolution.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from latency_tables.profile import plan_for
from nas.catalog import MemoryCatalog
from nas.engine import MemoryRecorder, run_search
from nas.export import export_architecture
from nas.export.codegen import load_module_file
from nas.resolve import build_search
from nas.spec import JobSpec
from search_spaces import (SPACES, InvalidArchitecture, MissingHook, SearchSpace, get_space, load_space_file,
                           parse_space_definition, register_space)
from search_spaces.metrics import static_metrics, static_metrics_of
from tests.search_spaces.torch_memory import layer_outputs, planned_peak

DATA = Path(__file__).parent / "data"
WRITTEN_HERE = DATA / "mbv2-160.json"
NAMES = [*sorted(SPACES), "mbv2-160"]


def space_of(name: str) -> SearchSpace:
    return load_space_file(WRITTEN_HERE) if name == "mbv2-160" else get_space(name)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small networks: more threads only contend on a shared machine (results do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=NAMES)
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return space_of(request.param)


@pytest.fixture
def registered(space: SearchSpace) -> Iterator[SearchSpace]:
    """The space under its name in SPACES for the test (jobs name their space)."""
    had = SPACES.get(space.name)
    register_space(space, replace=True)
    yield space
    if had is None:
        SPACES.pop(space.name)
    else:
        SPACES[space.name] = had


def sample(space: SearchSpace, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_round_trips_operators_and_hashes(space: SearchSpace) -> None:
    rng = np.random.default_rng(1)
    archs = sample(space, 30)
    for arch in archs:
        codes = space.encode(arch)
        assert len(codes) == len(space.dims) and all(0 <= c < d for c, d in zip(codes, space.dims))
        assert space.decode(codes) == arch == space.normalize(arch)
        assert space.canonical_hash(arch) == space.canonical_hash(space.decode(space.encode(arch)))
        child = space.mutate(arch, rng)
        assert int((space.encode(child) != codes).sum()) == 1
    neighbours = space.neighbours(archs[0])
    assert len(neighbours) == sum(d - 1 for d in space.dims) == len(set(neighbours))
    assert archs[0] not in neighbours
    assert len({space.canonical_hash(a) for a in archs}) > 1
    for bad in ("", "nonsense", archs[0] + "-" + archs[0]):
        with pytest.raises(InvalidArchitecture):
            space.encode(bad)


def test_content_hash_is_stable_and_follows_the_definition(space: SearchSpace) -> None:
    again = space_of(space.name)
    assert again.content_hash == space.content_hash and len(space.content_hash) == 64
    definition = space.definition()
    if definition["type"] == "code":
        return
    assert parse_space_definition(json.loads(json.dumps(definition))).content_hash == space.content_hash
    definition["num_classes"] += 1
    assert parse_space_definition(definition).content_hash != space.content_hash


def test_signatures_are_the_vocabulary_and_say_the_resolution(space: SearchSpace) -> None:
    vocabulary = space.all_op_signatures()
    assert len(set(vocabulary)) == len(vocabulary)
    archs = sample(space, 20, seed=2)
    matrix = space.signature_matrix(np.stack([space.encode(a) for a in archs]))
    for arch, row in zip(archs, matrix):
        sigs = space.op_signatures(arch)
        assert set(sigs) <= set(vocabulary) and len(sigs) == int(row.sum())
    if space.definition()["type"] == "blocks":
        r = space.input_resolution
        assert f"stem:{space.input_channels}x{r}x{r}->" in vocabulary[[s.startswith("stem:") for s in
                                                                       vocabulary].index(True)]


def test_static_metrics_match_the_torch_network(space: SearchSpace) -> None:
    """Exact parameters and MACs, planned peak within 1 %, on the largest networks and a sample,
    at the space's own input shape and classes."""
    largest = [space.decode(space.largest_codes()[0])] if space.size > 100_000 else []
    archs = largest + sample(space, 2 - len(largest), seed=3)
    ours = static_metrics_of(space, archs, ["params", "macs", "peak_memory_kb_fp32"])
    x = torch.randn(*space.input_shape(1))
    for i, arch in enumerate(archs):
        model = space.build_model(arch).eval()
        assert ours["params"][i] == sum(p.numel() for p in model.parameters()), arch
        outputs = iter(layer_outputs(model, x))
        macs = 0
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                macs += next(outputs) * m.weight[0].numel()
            elif isinstance(m, torch.nn.Linear):
                macs += next(outputs) * m.in_features
        assert ours["macs"][i] == macs, arch
        measured = planned_peak(model, x) * 4 / 1024
        assert abs(ours["peak_memory_kb_fp32"][i] - measured) <= 0.01 * measured, arch
    if space.size > 100_000:  # the largest codes bound a sample
        top = static_metrics(space, space.largest_codes())
        many = static_metrics(space, np.stack([space.encode(a) for a in sample(space, 500, seed=4)]))
        for name, values in many.items():
            assert values.max() <= top[name].max(), name


def test_exports_to_standalone_torch_and_onnx(space: SearchSpace, tmp_path: Path) -> None:
    arch = sample(space, 1, seed=5)[0]
    torch_export = export_architecture(space, arch, "torch", tmp_path / "torch", tables=[], tables_source="none")
    source = (tmp_path / "torch" / "model.py").read_text()
    assert "import hwnas" not in source and "from hwnas" not in source and "search_spaces" not in source
    module = load_module_file(tmp_path / "torch" / "model.py")
    exported = module.build_model()
    ours = space.build_model(arch).eval()
    ours.load_state_dict(exported.state_dict())  # same modules under the same names
    x = torch.randn(*space.input_shape(2))
    with torch.inference_mode():
        assert torch.equal(exported(x), ours(x))
    assert torch_export.manifest["model"]["input_shape"] == list(space.input_shape(1))
    onnx = export_architecture(space, arch, "onnx", tmp_path / "onnx", tables=[], tables_source="none")
    assert onnx.manifest["onnx"]["max_abs_diff"] <= onnx.manifest["onnx"]["tolerance"]
    assert onnx.manifest["space_content_hash"] == space.content_hash


def test_supernet_forward_and_backward(space: SearchSpace) -> None:
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=5, in_channels=space.input_channels, width=4, cells_per_stage=1,
                               width_multiplier=0.125)
    assert net.positions == len(space.dims) and net.choices == max(space.dims)
    alpha = torch.zeros(net.positions, net.choices, requires_grad=True)
    invalid = getattr(net, "invalid", None)
    logits = alpha if invalid is None else alpha.masked_fill(invalid, -1e4)
    out = net(torch.randn(2, space.input_channels, 32, 32), torch.softmax(logits, dim=1))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert alpha.grad is not None and torch.isfinite(alpha.grad).all()
    hard = torch.nn.functional.one_hot(torch.as_tensor(space.encode(sample(space, 1)[0])), net.choices).float()
    assert net(torch.randn(2, space.input_channels, 32, 32), hard, hard=True).shape == (2, 5)


def test_profile_plan_covers_every_signature_and_its_probes_run(space: SearchSpace) -> None:
    probes, plan = plan_for(space, batch=1)
    assert set(space.all_op_signatures()) <= set(plan)
    needed = {p for cost in plan.values() for p in cost}
    assert needed <= set(probes)
    with torch.inference_mode():
        for key in sorted(needed):
            probe = probes[key]
            out = probe.module.eval()(torch.randn(*probe.shape))
            assert torch.isfinite(out).all(), key


def images(space: SearchSpace, path: Path) -> Path:
    rng = np.random.default_rng(0)
    r = space.input_resolution
    x = rng.random((8, r, r, space.input_channels), dtype=np.float32)
    np.savez(path, images=x, labels=np.arange(8) % 2)
    return path


def test_a_five_trial_search(registered: SearchSpace, tmp_path: Path) -> None:
    """Evolution, a zero-cost proxy on images at the space's resolution, and static metrics."""
    space = registered
    spec = JobSpec.model_validate({
        "space": space.name, "strategy": {"name": "evolution"}, "budget": {"evaluations": 5}, "seed": 0,
        "objectives": [{"metric": "accuracy", "goal": "maximize"}, {"metric": "params", "goal": "minimize"}],
        "evaluator": {"type": "proxy", "proxy": "synflow", "dataset": str(images(space, tmp_path / "x.npz")),
                      "batch_size": 2, "width": 4, "cells_per_stage": 1}})
    recorder = MemoryRecorder()
    summary = run_search(build_search(spec, MemoryCatalog()), recorder)
    assert summary.evaluated == 5 and summary.stop_reason is None
    assert all(t.status == "completed" for t in recorder.trials)
    for t in recorder.trials:
        assert space.normalize(t.arch) == t.arch
        assert t.metrics["params"] == static_metrics_of(space, [t.arch], ["params"])["params"][0]


class NoFootprint(SearchSpace):
    """A code-written space that implements only the abstract methods."""

    name = "conformance-bare"
    description = "two positions, two choices, nothing more"
    choices = (("a", "b"), ("a", "b"))

    def encode(self, arch: str) -> np.ndarray:
        if len(arch) != 2 or set(arch) - {"a", "b"}:
            raise InvalidArchitecture(arch)
        return np.array(["ab".index(c) for c in arch])

    def decode(self, codes) -> str:
        return "".join("ab"[int(c)] for c in codes)

    def canonical_hash(self, arch: str) -> str:
        return arch

    def build_model(self, arch: str, **options: Any):
        raise MissingHook(self.name, "build_model")


def test_a_space_without_a_hook_fails_the_job_with_missing_hook(tmp_path: Path) -> None:
    bare = NoFootprint()
    for hook in ("profile_plan", "build_supernet", "network_source", "footprint"):
        assert not bare.has_hook(hook)
        with pytest.raises(MissingHook) as caught:
            getattr(bare, hook)(np.zeros((1, 2), int)) if hook == "footprint" else (
                getattr(bare, hook)("ab") if hook == "network_source" else getattr(bare, hook)())
        assert (caught.value.space, caught.value.hook) == ("conformance-bare", hook)
    register_space(bare)
    try:
        spec = JobSpec.model_validate({
            "space": bare.name, "strategy": {"name": "random"}, "budget": {"evaluations": 3}, "seed": 0,
            "objectives": [{"metric": "params", "goal": "minimize"}, {"metric": "macs", "goal": "minimize"}],
            "evaluator": {"type": "proxy", "dataset": str(images(get_space("nb201"), tmp_path / "x.npz"))}})
        with pytest.raises(MissingHook, match="conformance-bare"):
            run_search(build_search(spec, MemoryCatalog()), MemoryRecorder())
    finally:
        SPACES.pop(bare.name)
