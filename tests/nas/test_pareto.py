import numpy as np

from nas.pareto import Objective, ParetoArchive, hypervolume, non_dominated_mask, pareto_ranks


def brute_front(points: np.ndarray) -> set[int]:
    return {i for i, p in enumerate(points)
            if not any(np.all(q >= p) and np.any(q > p) for q in points)}


def test_non_dominated_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        pts = rng.integers(0, 6, size=(40, 2)).astype(float)
        assert set(np.flatnonzero(non_dominated_mask(pts))) == brute_front(pts)


def test_ranks_peel_fronts() -> None:
    pts = np.array([[3, 3], [2, 2], [1, 1], [3, 1], [1, 3]], dtype=float)
    assert pareto_ranks(pts).tolist() == [0, 1, 2, 1, 1]


def test_hypervolume_2d_hand_computed() -> None:
    # staircase of (1,3), (2,2), (3,1) over reference (0,0): 3 + 2 + 1 = 6
    pts = np.array([[1, 3], [2, 2], [3, 1]], dtype=float)
    assert hypervolume(pts, np.zeros(2)) == 6.0
    assert hypervolume(np.array([[2, 2], [1, 1]], dtype=float), np.zeros(2)) == 4.0
    assert hypervolume(np.array([[-1, 5]], dtype=float), np.zeros(2)) == 0.0


def test_hypervolume_3d_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    pts = rng.random((6, 3))
    samples = rng.random((200_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in pts:
        dominated |= np.all(samples <= p, axis=1)
    assert abs(hypervolume(pts, np.zeros(3)) - dominated.mean()) < 0.01


def test_archive_equals_batch_front_with_mixed_directions() -> None:
    rng = np.random.default_rng(3)
    objectives = [Objective("accuracy", True), Objective("latency_ms@x", False)]
    archive = ParetoArchive(objectives, {"accuracy": 0.0, "latency_ms@x": 10.0})
    values = [{"accuracy": float(a), "latency_ms@x": float(b)}
              for a, b in rng.integers(0, 8, size=(60, 2))]
    for i, v in enumerate(values):
        archive.add(i, v)
    oriented = np.array([[v["accuracy"], -v["latency_ms@x"]] for v in values])
    assert archive.trial_ids == sorted(brute_front(oriented))
    assert archive.hypervolume() == hypervolume(oriented, np.array([0.0, -10.0]))
