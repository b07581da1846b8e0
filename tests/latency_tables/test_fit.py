"""fit on the shared measurements: few rows of a device, validated on all its other rows.

Thresholds sit a little under what benchmarks/table_fit_quality.py measured (seed 1000).
"""

from __future__ import annotations

import numpy as np
import pytest

from latency_tables import LatencyEstimator, TableError, shipped_tables
from latency_tables.fit import (PlainAdditive, fit_entries, fit_table, one_standard_error_choice, ratio_quantiles,
                                type_scaled_prior, validation_report, within_10_scale)
from latency_tables.measurements import SHARED_DATA, read_shared
from latency_tables.ship import FIT_ROWS, SEED
from latency_tables.table import QUANTILE_LEVELS, LatencyTable, NoErrorBand, load_table, save_table
from search_spaces import get_space


@pytest.fixture(scope="module")
def nb201_data(nb201_csv):
    space = get_space("nb201")
    archs, columns = read_shared(space, nb201_csv)
    return space, archs, np.stack([space.encode(a) for a in archs]), columns


@pytest.fixture(scope="module")
def fbnet_data():
    space = get_space("fbnet")
    archs, columns = read_shared(space, SHARED_DATA / "fbnet_hw.csv")
    return space, archs, np.stack([space.encode(a) for a in archs]), columns


_FITTED: dict[tuple[str, str, int, int], tuple] = {}


def held_out(space, archs, codes, y, rows: int, device: str, seed: int = 1000):
    """(table, its held-out report, the plain table's) for ``rows`` rows of ``device``; each fit
    once per test run (several tests read the same one)."""
    key = (space.name, device, rows, seed)
    if key not in _FITTED:
        _FITTED[key] = _held_out(space, archs, codes, y, rows, device, seed)
    return _FITTED[key]


def _held_out(space, archs, codes, y, rows: int, device: str, seed: int):
    order = np.random.default_rng(seed).permutation(len(archs))
    fit_idx, val_idx = order[:rows], order[rows:]
    table = fit_table(space, [archs[i] for i in fit_idx], y[fit_idx], device={"name": device},
                      source="test", basis=shipped_tables(space.name))
    ours = validation_report(LatencyEstimator(table, space).predict_codes(codes[val_idx]), y[val_idx])
    plain = validation_report(PlainAdditive(space.dims, codes[fit_idx], y[fit_idx]).predict(codes[val_idx]),
                              y[val_idx])
    return table, ours, plain


@pytest.mark.parametrize(("device", "within_10", "tau"), [
    ("raspi4", 0.65, 0.87), ("pixel3", 0.57, 0.87), ("samsung_s7", 0.70, 0.81), ("titan_rtx_1", 0.93, 0.88)])
def test_100_rows_beats_the_plain_additive_table(nb201_data, device: str, within_10: float, tau: float) -> None:
    space, archs, codes, columns = nb201_data
    table, ours, plain = held_out(space, archs, codes, columns[device], 100, device)
    assert device not in table.provenance["basis_weights"]  # its own shipped table is left out
    assert ours["within_10pct"] >= within_10 and ours["kendall_tau"] >= tau
    assert ours["within_10pct"] >= plain["within_10pct"] and ours["kendall_tau"] >= plain["kendall_tau"]


@pytest.mark.parametrize(("device", "spearman"), [("pixel3", 0.96), ("gold_6240", 0.94), ("1080ti_32", 0.96)])
def test_10_rows_rank_the_space(nb201_data, device: str, spearman: float) -> None:
    space, archs, codes, columns = nb201_data
    _, ours, plain = held_out(space, archs, codes, columns[device], 10, device)
    assert ours["spearman"] >= spearman > plain["spearman"]


def test_quality_bar_over_the_14_devices(nb201_data) -> None:
    """Issue #3's bar: from 100 rows, at least the plain additive table's +-10% and tau on every
    device and a mean tau >= 0.90 (measured 0.904); from 10 rows a mean Spearman >= 0.95 (0.971)."""
    space, archs, codes, columns = nb201_data
    taus, spearmans = [], []
    for device, y in columns.items():
        _, ours, plain = held_out(space, archs, codes, y, 100, device)
        assert ours["within_10pct"] >= plain["within_10pct"] and ours["kendall_tau"] >= plain["kendall_tau"], device
        taus.append(ours["kendall_tau"])
        spearmans.append(held_out(space, archs, codes, y, 10, device)[1]["spearman"])
    assert len(taus) == 14
    assert np.mean(taus) >= 0.90 and np.mean(spearmans) >= 0.96


def test_recovers_an_exactly_additive_device_without_basis() -> None:
    """fbnet on pixel3 is a sum of per-layer costs: a known table, sampled, is fitted back."""
    space = get_space("fbnet")
    truth = next(t for t in shipped_tables("fbnet") if t.device_name == "pixel3")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(400)]
    y = LatencyEstimator(truth, space).predict(archs)
    table = fit_table(space, archs[:300], y[:300], device={"name": "copy"}, source="test")
    report = validation_report(LatencyEstimator(table, space).predict(archs[300:]), y[300:])
    assert report["within_5pct"] == 1.0 and report["kendall_tau"] > 0.99


def test_prior_only_when_the_rows_say_so() -> None:
    """Rows that are exactly 2x a basis table: the fit picks that table with weight 2."""
    rng = np.random.default_rng(0)
    basis = rng.uniform(0.1, 1.0, size=(3, 8))
    counts = rng.integers(0, 3, size=(12, 8)).astype(float)
    y = counts @ (2 * basis[1])
    result = fit_entries(counts, y, basis, ["a", "b", "c"])
    weights = {k: result.basis_weights.get(k, 0.0) for k in "abc"}
    assert weights["b"] == pytest.approx(2.0, rel=1e-3) and weights["a"] + weights["c"] < 1e-3
    assert counts @ result.entries == pytest.approx(y, rel=1e-3)


def test_op_type_scaled_prior_when_one_op_type_differs() -> None:
    """Rows of a device like basis table b except that its 'conv' entries cost 3x: the
    op-type-scaled prior recovers it exactly, the plain combination cannot."""
    rng = np.random.default_rng(1)
    basis = rng.uniform(0.1, 1.0, size=(3, 8))
    op_types = ["conv"] * 4 + ["pool"] * 4
    truth = basis[1] * np.array([3.0] * 4 + [1.0] * 4)
    counts = rng.integers(0, 3, size=(40, 8)).astype(float)
    y = counts @ truth
    types = np.array([[t == g for t in op_types] for g in ("conv", "pool")], dtype=float)
    prior, w, scales = type_scaled_prior(counts, y, basis, types, ridge=1e-6)
    assert counts @ prior == pytest.approx(y, rel=1e-3)
    assert scales[0] / scales[1] == pytest.approx(3.0, rel=1e-2)
    result = fit_entries(counts, y, basis, ["a", "b", "c"], op_types=op_types)
    assert result.type_scales and counts @ result.entries == pytest.approx(y, rel=1e-2)


def test_rejects_bad_rows() -> None:
    space = get_space("nb201")
    arch = space.sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="finite"):
        fit_table(space, [arch], [float("nan")], device={"name": "x"}, source="t")
    with pytest.raises(ValueError, match="at least one"):
        fit_table(space, [], [], device={"name": "x"}, source="t")


@pytest.mark.parametrize(("space_name", "device"), [("nb201", "raspi4"), ("fbnet", "samsung_s7")])
def test_error_band_covers_held_out_rows(nb201_data, fbnet_data, tmp_path, space_name: str, device: str) -> None:
    """The band is cross-validated on the 100 fitted rows; on the other rows about 95 % of the
    measured latencies fall under the 0.95 bound and about half under the median."""
    space, archs, codes, columns = nb201_data if space_name == "nb201" else fbnet_data
    table, _, _ = held_out(space, archs, codes, columns[device], 100, device)
    band = table.residual_ratio_quantiles
    assert band is not None and list(band) == list(QUANTILE_LEVELS)
    assert list(band.values()) == sorted(band.values()) and band[0.025] < 1 < band[0.975]
    val_idx = np.random.default_rng(1000).permutation(len(archs))[100:]
    y = columns[device][val_idx]
    predicted = LatencyEstimator(table, space).predict_codes(codes[val_idx])
    assert 0.90 <= np.mean(y <= table.upper_bound(predicted, 0.95)) <= 0.995
    assert 0.35 <= np.mean(y <= table.upper_bound(predicted, 0.5)) <= 0.65
    assert np.mean(y < table.upper_bound(predicted, 0.05)) <= 0.12
    path = tmp_path / "t.json"
    save_table(table, path)
    again = load_table(path)
    assert again.residual_ratio_quantiles == band
    between = again.upper_bound(10.0, 0.9)  # linear between the 0.84 and 0.95 levels
    assert between == pytest.approx(10.0 * (band[0.84] + (band[0.95] - band[0.84]) * 0.06 / 0.11))


def test_a_table_without_a_band_loads_and_says_so() -> None:
    data = next(t for t in shipped_tables("nb201") if t.device_name == "pixel3").to_dict()
    del data["validation"]["residual_ratio_quantiles"]
    table = LatencyTable.from_dict(data)
    assert table.residual_ratio_quantiles is None
    with pytest.raises(NoErrorBand, match="no error band") as info:
        table.upper_bound(5.0, 0.95)
    assert isinstance(info.value, TableError) and info.value.entry == "validation.residual_ratio_quantiles"
    data["validation"] = {}
    assert LatencyTable.from_dict(data).residual_ratio_quantiles is None


@pytest.mark.parametrize(("band", "field"), [
    ({"0.05": 0.9, "0.95": 0.8}, "validation.residual_ratio_quantiles.0.95"),
    ({"1.5": 1.0}, "validation.residual_ratio_quantiles.1.5"),
    ({"high": 1.0}, "validation.residual_ratio_quantiles.high"),
    ({"0.5": -1.0}, "validation.residual_ratio_quantiles.0.5"),
    ({"0.5": "x"}, "validation.residual_ratio_quantiles.0.5"),
    ([1.0], "validation.residual_ratio_quantiles")])
def test_a_malformed_band_is_refused_naming_the_field(band, field: str) -> None:
    data = next(t for t in shipped_tables("nb201") if t.device_name == "pixel3").to_dict()
    data["validation"]["residual_ratio_quantiles"] = band
    with pytest.raises(TableError) as info:
        LatencyTable.from_dict(data)
    assert info.value.entry == field


def test_upper_bound_interpolates_and_refuses_to_extrapolate() -> None:
    data = next(t for t in shipped_tables("fbnet") if t.device_name == "1080ti_1").to_dict()
    data["validation"]["residual_ratio_quantiles"] = {"0.025": 0.8, "0.05": 0.85, "0.16": 0.9, "0.5": 1.0,
                                                      "0.84": 1.1, "0.95": 1.2, "0.975": 1.3}
    table = LatencyTable.from_dict(data)
    assert table.upper_bound(10.0, 0.95) == pytest.approx(12.0)
    assert table.upper_bound(10.0, 0.9625) == pytest.approx(12.5)
    assert table.upper_bound(np.array([1.0, 2.0]), 0.5) == pytest.approx([1.0, 2.0])
    for bad in (0.99, 0.01, True):
        with pytest.raises(ValueError, match="confidence must be between 0.025 and 0.975"):
            table.upper_bound(10.0, bad)


def test_few_rows_widen_the_band() -> None:
    """Levels move outwards to the conformal rank: 10 ratios put the 0.95 bound at the largest
    and the 0.05 bound at the smallest; 1,000 ratios sit near the plain empirical quantiles."""
    ratios = np.linspace(0.8, 1.25, 10)
    band = ratio_quantiles(ratios, np.ones(10))
    assert band["0.95"] == band["0.975"] == pytest.approx(1.25) and band["0.05"] == pytest.approx(0.8)
    many = np.random.default_rng(0).lognormal(0, 0.1, 1000)
    band = ratio_quantiles(many, np.ones(1000))
    assert band["0.95"] == pytest.approx(np.quantile(many, 0.95), rel=0.01)
    assert ratio_quantiles(np.ones(3), np.zeros(3)) is None  # nothing predicted: no ratio


def test_shipped_bands_are_their_held_out_rows(nb201_data) -> None:
    """Every shipped table fitted from the shared data carries the band of the rows its fit left
    out (the same rows as its validation block); adding it changed no entry."""
    space, archs, codes, columns = nb201_data
    table = next(t for t in shipped_tables("nb201") if t.device_name == "pixel3")
    val_idx = np.random.default_rng(SEED).permutation(len(archs))[FIT_ROWS:]
    predicted = LatencyEstimator(table, space).predict_codes(codes[val_idx])
    assert validation_report(predicted, columns["pixel3"][val_idx])["kendall_tau"] == table.validation["kendall_tau"]
    assert table.validation["residual_ratio_quantiles"] == ratio_quantiles(columns["pixel3"][val_idx], predicted)
    for t in shipped_tables():
        assert (t.residual_ratio_quantiles is None) == (t.device_name == "dev_vm_cpu_1t"), t.device_name
    exact = next(t for t in shipped_tables("fbnet") if t.device_name == "pixel3")  # exactly additive
    assert exact.residual_ratio_quantiles[0.025] == pytest.approx(1.0, abs=1e-3)
    assert exact.residual_ratio_quantiles[0.975] == pytest.approx(1.0, abs=1e-3)


def test_within_10_scale_moves_predictions_onto_the_bulk() -> None:
    """Most rows measure 12 % above their prediction, a few far below (a pruned network): the
    factor lands on the bulk; with the bulk centred it stays exactly 1."""
    rng = np.random.default_rng(0)
    oof = np.ones((3, 100))
    y = np.where(np.arange(100) < 85, 1.12 + rng.normal(0, 0.02, 100), 0.3)
    assert np.mean(np.abs(1 - y) <= 0.1 * y) < 0.5
    scale = within_10_scale(oof, y)  # the factor nearest 1 of those that reach every bulk row
    assert 1.03 < scale < 1.12 and np.mean(np.abs(scale - y) <= 0.1 * y) == 0.85
    assert within_10_scale(oof, np.where(np.arange(100) < 85, 1.0 + rng.normal(0, 0.02, 100), 0.3)) == 1.0


def test_the_fitted_factor_is_in_the_entries_the_estimator_reads(nb201_data, tmp_path) -> None:
    """pixel3's factor (its bulk sits ~6 % above the least-squares fit) is part of every entry:
    a table read back from its file predicts the fitted rows exactly as the fit does."""
    space, archs, codes, columns = nb201_data
    table, ours, _ = held_out(space, archs, codes, columns["pixel3"], 100, "pixel3")
    assert table.provenance["within_10_scale"] > 1.02
    path = tmp_path / "t.json"
    save_table(table, path)
    fit_idx = np.random.default_rng(1000).permutation(len(archs))[:100]
    vocabulary = space.all_op_signatures()
    from_fit = space.signature_matrix(codes[fit_idx]) @ np.array(table.values(vocabulary))
    assert LatencyEstimator(load_table(path), space).predict_codes(codes[fit_idx]) == pytest.approx(from_fit)
    assert ours["within_10pct"] >= 0.68  # 59 % before the factor


def test_few_rows_choose_the_simplest_model_within_one_standard_error() -> None:
    """The freest candidate is best by a hair that the rows' scatter cannot tell from noise: the simplest
    within one standard error wins; a clear winner still wins."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.05, size=(3, 25))
    errors = np.abs(np.array([0.30, 0.299, 0.298])[:, None] + noise)
    assert one_standard_error_choice(errors, [2, 1, 0]) == 2  # candidate 2 is the simplest
    assert one_standard_error_choice(errors, [0, 1, 2]) == 0
    errors[0] -= 0.2  # now clearly the best
    assert one_standard_error_choice(errors, [2, 1, 0]) == 0


def test_a_refit_with_a_front_added_keeps_its_held_out_ranking(nb201_data) -> None:
    """Onboarding's 20 references of titan_rtx_1 plus the front's 5 most accurate networks (what a verified
    job adds): cross-validation's minimum picked a near-free ridge from these 25 rows and held-out tau fell
    from 0.888 to 0.839; the one-standard-error choice keeps 0.897."""
    from nas.devices.onboard import choose_references, with_flops

    space, archs, codes, columns = nb201_data
    y, device = columns["titan_rtx_1"], "titan_rtx_1"
    basis = with_flops(space, [t for t in shipped_tables("nb201") if t.device_name != device])
    index = {space.canonical_hash(a): i for i, a in enumerate(archs)}
    refs = [index[space.canonical_hash(a)] for a in choose_references(space, basis, 20, 0)]
    first = LatencyEstimator(fit_table(space, [archs[i] for i in refs], y[refs], device={"name": device},
                                       source="test", basis=basis), space)
    accuracy = np.array([float(r["cifar10_acc"]) for r in _csv_rows(SHARED_DATA / "nb201_hw.csv")])
    pool = np.random.default_rng(100).choice(len(archs), 1000, replace=False)
    predicted = first.predict_codes(codes[pool])
    front, fastest = [], np.inf
    for j in np.lexsort((predicted, -accuracy[pool])):  # most accurate first; keep whatever is faster
        if predicted[j] < fastest:
            front.append(int(pool[j]))
            fastest = predicted[j]
    rows = list(dict.fromkeys(refs + front[:5]))
    refit = fit_table(space, [archs[i] for i in rows], y[rows], device={"name": device}, source="test", basis=basis)
    held = np.random.default_rng(7).choice(np.setdiff1d(np.arange(len(archs)), rows), 2000, replace=False)
    tau = validation_report(LatencyEstimator(refit, space).predict_codes(codes[held]), y[held])["kendall_tau"]
    assert tau >= 0.88


def _csv_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))
