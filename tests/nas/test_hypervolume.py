"""Bounded hypervolume: exact up to 4 objectives, seeded Monte-Carlo above, equal points once."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas import pareto
from nas.pareto import Objective, ParetoArchive, hypervolume


def slicing_oracle(pts: np.ndarray, ref: np.ndarray) -> float:
    """The textbook recursive slicing (exponential, only for small sets): the old implementation."""
    pts = pts[np.all(pts > ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    if pts.shape[1] == 1:
        return float(pts[:, 0].max() - ref[0])
    pts = pts[np.argsort(-pts[:, -1], kind="stable")]
    volume = 0.0
    for i in range(len(pts)):
        lower = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        if pts[i, -1] > lower:
            volume += (pts[i, -1] - lower) * slicing_oracle(pts[: i + 1, :-1], ref[:-1])
    return volume


def union_of_boxes(pts: np.ndarray, ref: np.ndarray) -> float:
    """Inclusion-exclusion over every subset: exact in any dimension for a handful of points."""
    total = 0.0
    for k in range(1, len(pts) + 1):
        for subset in itertools.combinations(range(len(pts)), k):
            corner = pts[list(subset)].min(axis=0)
            total += (-1) ** (k + 1) * float(np.prod(np.clip(corner - ref, 0, None)))
    return total


@pytest.mark.parametrize("dims", [1, 2, 3, 4])
def test_exact_up_to_four_objectives_with_ties_duplicates_and_dominated_points(dims: int) -> None:
    rng = np.random.default_rng(dims)
    for n in (0, 1, 2, 7, 40):
        for _ in range(5):
            points = rng.uniform(0, 1, size=(n, dims))
            points[: n // 3] = np.round(points[: n // 3], 1)  # ties on single coordinates
            if n > 3:
                points[-2:] = points[:2]  # exact duplicates
            reference = np.full(dims, 0.15)
            assert hypervolume(points, reference) == pytest.approx(slicing_oracle(points, reference),
                                                                   rel=1e-12, abs=1e-15)


def test_equal_points_count_once_in_every_dimension() -> None:
    for dims in (2, 3, 4, 6, 8):
        one = np.full((1, dims), 0.5)
        many = np.repeat(one, 1000, axis=0)
        assert hypervolume(many, np.zeros(dims)) == hypervolume(one, np.zeros(dims))
        assert hypervolume(many, np.zeros(dims)) == pytest.approx(0.5 ** dims)


def test_monte_carlo_above_four_objectives_is_deterministic_and_close() -> None:
    rng = np.random.default_rng(7)
    points = rng.uniform(0.2, 1.0, size=(8, 6))
    reference = np.zeros(6)
    exact = union_of_boxes(points, reference)
    first = hypervolume(points, reference)
    assert hypervolume(points[::-1].copy(), reference) == first  # the set decides, not the order
    assert hypervolume(np.vstack([points, points]), reference) == first
    box = float(np.prod(points.max(axis=0) - reference))
    standard_error = box * 0.5 / np.sqrt(pareto.MC_SAMPLES)
    assert abs(first - exact) < 4 * standard_error


def test_archive_hypervolume_of_identical_points_is_one_box() -> None:
    objectives = [Objective("accuracy", True), Objective("latency_ms@x", False), Objective("params", False)]
    archive = ParetoArchive(objectives, {"accuracy": 0.0, "latency_ms@x": 10.0, "params": 100.0})
    for i in range(1000):
        archive.add(i, {"accuracy": 50.0, "latency_ms@x": 5.0, "params": 50.0})
    assert archive.hypervolume() == pytest.approx(50.0 * 5.0 * 50.0)
