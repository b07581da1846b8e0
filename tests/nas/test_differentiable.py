"""Differentiable search on tiny supernets: relaxations, expected latency, the latency weight's effect,
checkpoint round-trips, and the darts/fbnet strategies through the engine."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from latency_tables import estimator_for, load_table
from latency_tables.table import SHIPPED_DIR
from nas.catalog import MemoryCatalog, SpecError
from nas.differentiable.data import load_search_data
from nas.differentiable.latency_loss import ExpectedLatency, LatencyPenalty
from nas.differentiable.relaxation import Relaxation, gumbel_softmax_weights, softmax_weights
from nas.differentiable.trainer import SearchConfig, SupernetSearch
from nas.engine import Recorder, Summary, TrialRecord, run_search
from nas.resolve import build_search, check_spec
from nas.spec import JobSpec
from search_spaces import get_space

TINY = {"epochs": 3, "warmup_epochs": 1, "width": 4, "batch_size": 32}


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path_factory.mktemp("data") / "digits300.npz"
    np.savez(path, images=digits.images[:300] / 16.0, labels=digits.target[:300])
    return path


def estimator(space: str, device: str = "pixel3"):  # type: ignore[no-untyped-def]
    return estimator_for(load_table(SHIPPED_DIR / f"{space}__{device}.json"), get_space(space))


# ---- relaxations ------------------------------------------------------------------------------

def test_softmax_rows_sum_to_one_and_low_temperature_approaches_argmax() -> None:
    alpha = torch.tensor([[0.1, 0.5, -0.2], [1.0, 0.0, 0.9]])
    assert torch.allclose(softmax_weights(alpha).sum(dim=1), torch.ones(2))
    cold = softmax_weights(alpha, temperature=0.01)
    assert torch.equal(cold.argmax(dim=1), alpha.argmax(dim=1))
    assert float(cold.max(dim=1).values.min()) > 0.99
    assert float(softmax_weights(alpha, temperature=100).max()) < 0.34  # near uniform


def test_gumbel_softmax_is_seeded_sums_to_one_and_hard_is_one_hot_with_gradient() -> None:
    alpha = torch.zeros(4, 5, requires_grad=True)
    a = gumbel_softmax_weights(alpha, 1.0, torch.Generator().manual_seed(3))
    b = gumbel_softmax_weights(alpha, 1.0, torch.Generator().manual_seed(3))
    c = gumbel_softmax_weights(alpha, 1.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.allclose(a.sum(dim=1), torch.ones(4))
    hard = gumbel_softmax_weights(alpha, 1.0, torch.Generator().manual_seed(3), hard=True)
    assert torch.equal(hard.detach().max(dim=1).values, torch.ones(4)) and float(hard.detach().sum()) == 4
    (hard * torch.arange(5.0)).sum().backward()
    assert alpha.grad is not None and float(alpha.grad.abs().sum()) > 0


def test_gumbel_temperature_decays_per_epoch() -> None:
    r = Relaxation("gumbel", 5.0, 0.5)
    assert [r.temperature(e) for e in range(3)] == [5.0, 2.5, 1.25]
    with pytest.raises(ValueError, match="hard sampling needs the gumbel"):
        Relaxation("softmax", hard=True)


# ---- expected latency -------------------------------------------------------------------------

def test_fbnet_expected_latency_is_per_layer_weights_times_table_entries() -> None:
    est = estimator("fbnet")
    lat = ExpectedLatency(est)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 9, size=22)
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(codes), 9).float()
    assert float(lat(one_hot)) == pytest.approx(float(est.predict_codes(codes[None])[0]), rel=1e-5)
    # hand-computed: layer 0 half k3_e1 / half k5_e6, every other layer k3_e1
    mix = torch.nn.functional.one_hot(torch.zeros(22, dtype=torch.long), 9).float()
    mix[0] = 0
    mix[0, 0] = mix[0, 7] = 0.5
    table = load_table(SHIPPED_DIR / "fbnet__pixel3.json")
    space = get_space("fbnet")
    by_hand = sum(table.entries[s].mean for s in space.base_signatures())
    by_hand += 0.5 * sum(table.entries[s].mean for s in space.position_signatures(0, 0))
    by_hand += 0.5 * sum(table.entries[s].mean for s in space.position_signatures(0, 7))
    by_hand += sum(table.entries[s].mean for p in range(1, 22) for s in space.position_signatures(p, 0))
    by_hand += table.intercept
    assert float(lat(mix)) == pytest.approx(by_hand, rel=1e-5)


def test_nb201_expected_latency_is_the_table_expectation() -> None:
    est = estimator("nb201")
    lat = ExpectedLatency(est)
    space = get_space("nb201")
    for arch in ("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
                 "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"):
        codes = space.encode(arch)
        one_hot = torch.nn.functional.one_hot(torch.as_tensor(codes), 5).float()
        assert float(lat(one_hot)) == pytest.approx(float(est.predict([arch])[0]), rel=1e-5, abs=1e-6)
    uniform = torch.full((6, 5), 0.2)
    assert float(lat(uniform)) == pytest.approx(float(np.mean(est.lookup)), rel=1e-5)
    # edge 5 split 50/50 between two ops, the rest fixed: the mean of the two cells' latencies
    a, b = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|", \
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    mix = torch.nn.functional.one_hot(torch.as_tensor(space.encode(a)), 5).float()
    mix[5] = torch.tensor([0.5, 0, 0, 0, 0.5])
    assert float(lat(mix)) == pytest.approx(float(est.predict([a, b]).mean()), rel=1e-5)


def test_penalties() -> None:
    ce, lat = torch.tensor(2.0), torch.tensor(5.0)
    assert float(LatencyPenalty("linear", 0.5, reference_ms=10.0).loss(ce, lat)) == pytest.approx(2.25)
    fb = LatencyPenalty("multiplicative", 0.6, scale=0.2)
    assert float(fb.loss(ce, lat)) == pytest.approx(2.0 * 0.2 * math.log(math.e + 5000.0) ** 0.6, rel=1e-6)
    assert float(LatencyPenalty("multiplicative", 0.0, scale=0.2).loss(ce, lat)) == pytest.approx(0.4)


# ---- the search itself ------------------------------------------------------------------------

def tiny_search(space: str, npz: Path, weight: float, epochs: int = 3, seed: int = 0, **config: Any) -> SupernetSearch:
    data = load_search_data(str(npz), seed)
    torch.manual_seed(seed)
    net = get_space(space).build_supernet(num_classes=data.num_classes, in_channels=data.in_channels, width=4,
                                          width_multiplier=0.125)
    lat = ExpectedLatency(estimator(space))
    # fbnet: one sampled block per layer (GDAS), so the 22 x 9 supernet stays quick on a CPU
    relax = Relaxation("gumbel", 5.0, 0.7, hard=True) if space == "fbnet" else Relaxation()
    cfg = SearchConfig(epochs=epochs, warmup_epochs=1, batch_size=32, alpha_lr=0.1, relaxation=relax,
                       penalty=LatencyPenalty("linear", weight, reference_ms=lat.highest_ms), **config)
    return SupernetSearch(net, lat, data, cfg, seed=seed)


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
def test_latency_falls_as_the_weight_rises(space: str, small_npz: Path) -> None:
    results = []
    for weight in (0.0, 20.0):
        search = tiny_search(space, small_npz, weight)
        while not search.finished:
            report = search.run_epoch()
        results.append((report.expected_latency_ms, report.derived_latency_ms))
    (free_expected, free_derived), (heavy_expected, heavy_derived) = results
    assert heavy_expected < free_expected
    assert heavy_derived < free_derived


def test_hard_limit_raises_the_penalty_until_the_derived_architecture_fits(small_npz: Path) -> None:
    search = tiny_search("nb201", small_npz, 0.0, epochs=2, latency_limit_ms=3.0, hard_start_weight=1.0)
    weights = []
    while not search.finished:
        report = search.run_epoch()
        weights.append(report.latency_weight)
    assert report.derived_latency_ms <= 3.0
    assert search.latency_weight > 0 and weights[0] == 0.0


def test_checkpoint_round_trip_resumes_identically(small_npz: Path) -> None:
    straight = tiny_search("nb201", small_npz, 0.1)
    for _ in range(3):
        straight.run_epoch()
    first = tiny_search("nb201", small_npz, 0.1)
    first.run_epoch()
    first.run_epoch()
    state = json.loads(json.dumps(first.state_dict()))  # through JSON, as the job row stores it
    resumed = tiny_search("nb201", small_npz, 0.1)
    resumed.load_state_dict(state)
    resumed.run_epoch()
    assert torch.equal(resumed.alpha, straight.alpha)
    for a, b in zip(resumed.net.state_dict().values(), straight.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# ---- strategies through the engine ------------------------------------------------------------

def job(strategy: str = "darts", space: str = "nb201", budget: int = 2, **params: Any) -> dict[str, Any]:
    return {"space": space, "strategy": {"name": strategy, "params": params}, "budget": {"evaluations": budget},
            "seed": 0, "objectives": [{"metric": "accuracy", "goal": "maximize"},
                                      {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
            "evaluator": {"type": "command", "command": "echo '{\"accuracy\": 50}'"}}


class CheckpointRecorder(Recorder):
    """Keeps every checkpoint; can resume from any of them (as a replacement worker would)."""

    def __init__(self, resume_from: tuple[dict[str, Any], list[TrialRecord]] | None = None,
                 stop_after_checkpoints: int | None = None):
        self.trials: list[TrialRecord] = []
        self.checkpoints: list[tuple[dict[str, Any], list[TrialRecord], dict[str, Any] | None]] = []
        self.resume_from = resume_from
        self.stop_after = stop_after_checkpoints

    def resume(self) -> tuple[dict[str, Any] | None, list[TrialRecord]]:
        if self.resume_from is None:
            return None, []
        self.trials = list(self.resume_from[1])
        return self.resume_from

    def record(self, trials: list[TrialRecord], checkpoint: dict[str, Any], summary: Summary) -> None:
        self.trials.extend(trials)
        self.checkpoints.append((json.loads(json.dumps(checkpoint)), list(self.trials), summary.phase))

    def stop_reason(self) -> str | None:
        return "cancelled" if self.stop_after is not None and len(self.checkpoints) >= self.stop_after else None


def run(spec: dict[str, Any], recorder: Recorder) -> Summary:
    return run_search(build_search(JobSpec.model_validate(spec), MemoryCatalog()), recorder)


def test_darts_job_checkpoints_each_epoch_and_resumes_from_the_middle_of_a_search(small_npz: Path) -> None:
    spec = job(latency_weights=[0.0, 3.0], dataset=str(small_npz), **TINY)
    whole = CheckpointRecorder()
    summary = run(spec, whole)
    assert summary.evaluated == 2 and summary.stop_reason is None
    phases = [p for _, _, p in whole.checkpoints if p]
    assert [(p["sweep_point"], p["epoch"]) for p in phases][:3] == [(1, 1), (1, 2), (1, 3)]
    latencies = [t.metrics["latency_ms@pixel3"] for t in whole.trials]
    assert latencies[1] < latencies[0]
    # a worker killed after the second epoch of the second search; its replacement resumes there
    checkpoint, done, phase = next((c, d, p) for c, d, p in whole.checkpoints
                                   if p and p["sweep_point"] == 2 and p["epoch"] == 2)
    assert len(done) == 1
    replacement = CheckpointRecorder(resume_from=(checkpoint, done))
    resumed = run(spec, replacement)
    assert resumed.evaluated == 2
    assert [t.arch for t in replacement.trials] == [t.arch for t in whole.trials]
    later_phases = [p for _, _, p in replacement.checkpoints if p]
    assert later_phases[0]["epoch"] == 3  # continued, not restarted


def test_a_cancel_stops_between_epochs(small_npz: Path) -> None:
    recorder = CheckpointRecorder(stop_after_checkpoints=2)
    summary = run(job(dataset=str(small_npz), **TINY), recorder)
    assert summary.stop_reason == "cancelled" and summary.evaluated == 0
    assert len(recorder.checkpoints) == 2


def test_fbnet_strategy_on_the_fbnet_space(small_npz: Path) -> None:
    recorder = CheckpointRecorder()
    summary = run(job("fbnet", "fbnet", latency_weights=[0.0, 8.0], dataset=str(small_npz),
                      width_multiplier=0.125, epochs=3, warmup_epochs=1, batch_size=32, alpha_lr=0.1,
                      hard_sampling=True), recorder)
    assert summary.evaluated == 2
    assert all(len(t.arch.split("-")) == 22 for t in recorder.trials)


@pytest.mark.parametrize(("spec", "field", "message"), [
    ({**job(), "objectives": [{"metric": "accuracy", "goal": "maximize"}]}, "objectives", "latency_ms objective"),
    (job(budget=5), "budget.evaluations", "at most 4"),
    (job(hard_limit=True), "strategy.params.hard_limit", "needs a latency limit"),
    (job(device="raspi4"), "strategy.params.device", "raspi4"),
    (job(loss="quadratic"), "strategy.params.loss", "'linear' or 'multiplicative'"),
    (job(torch_device="tpu"), "strategy.params.torch_device", "cpu|cuda"),
    (job(dataset="images.csv"), "strategy.params.dataset", "dataset must be"),
])
def test_spec_errors_name_the_field(spec: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        check_spec(JobSpec.model_validate(spec), MemoryCatalog())
    assert caught.value.field == field and message in caught.value.message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_asked_without_cuda_fails_with_a_clear_reason(small_npz: Path) -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        run(job(dataset=str(small_npz), torch_device="cuda", **TINY), CheckpointRecorder())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cli_torch_device_cuda_without_cuda_says_what_to_do() -> None:
    from typer.testing import CliRunner

    from hwnas.cli.main import app

    result = CliRunner().invoke(app, ["search", "--space", "nb201", "--device", "pixel3", "--strategy", "darts",
                                      "--budget", "4", "--train", "digits", "--torch-device", "cuda"])
    assert result.exit_code != 0
    assert "CUDA is not available" in result.output and "--torch-device cpu" in result.output
    assert "Traceback" not in result.output


def test_cli_budget_over_the_sweep_names_the_field() -> None:
    from typer.testing import CliRunner

    from hwnas.cli.main import app

    result = CliRunner().invoke(app, ["search", "--space", "nb201", "--device", "pixel3", "--strategy", "darts",
                                      "--budget", "10", "--train", "digits"])
    assert result.exit_code != 0 and "budget.evaluations" in result.output and "at most 4" in result.output
