"""Pareto fronts and hypervolume over objective dicts.

Points are oriented to "larger is better" internally (minimised objectives are
negated). The hypervolume reference point is given in the objectives' own units.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Objective:
    key: str
    maximize: bool


def oriented(values: Mapping[str, float], objectives: Sequence[Objective]) -> np.ndarray:
    return np.array([values[o.key] if o.maximize else -values[o.key] for o in objectives])


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """a dominates b (both oriented: larger is better)."""
    return bool(np.all(a >= b) and np.any(a > b))


def non_dominated_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of an oriented (n, d) array."""
    n = len(points)
    if n <= 1024:  # one pairwise comparison: fast for the sizes strategies use
        ge = np.all(points[:, None, :] >= points[None, :, :], axis=2)
        gt = np.any(points[:, None, :] > points[None, :, :], axis=2)
        return ~np.any(ge & gt, axis=0)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated_by_i = np.all(points[i] >= points, axis=1) & np.any(points[i] > points, axis=1)
        mask &= ~dominated_by_i
        if np.any(np.all(points >= points[i], axis=1) & np.any(points > points[i], axis=1)):
            mask[i] = False
    return mask


def pareto_ranks(points: np.ndarray) -> np.ndarray:
    """Non-dominated sorting: rank 0 is the front, rank 1 the front of the rest, ..."""
    ranks = np.full(len(points), -1)
    remaining = np.arange(len(points))
    rank = 0
    while len(remaining):
        mask = non_dominated_mask(points[remaining])
        ranks[remaining[mask]] = rank
        remaining = remaining[~mask]
        rank += 1
    return ranks


#: Up to this many objectives the hypervolume is exact; above it is a seeded Monte-Carlo estimate.
EXACT_MAX_OBJECTIVES = 4
#: Monte-Carlo samples above EXACT_MAX_OBJECTIVES: the estimate's standard error is at most
#: 0.5 / sqrt(samples) of the sampled box (0.35 % at 20,000), its cost ~samples x points x objectives.
MC_SAMPLES = 20_000
MC_SEED = 0
_MC_CHUNK = 1_000


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume of oriented points (larger is better) dominating the oriented reference.

    Points that do not strictly dominate the reference add nothing; equal points count
    once (1,000 copies of a point cost what one does); dominated points add nothing.
    Exact up to ``EXACT_MAX_OBJECTIVES`` objectives: a sweep in 2-D, a sweep over a sorted
    staircase in 3-D (O(n log n) plus list moves), 3-D slices in 4-D (O(n^2 log n)).
    Above that it is a Monte-Carlo estimate with ``MC_SAMPLES`` uniform samples from a fixed
    seed in the box between the reference and the points' per-objective maximum: the same
    set of points always gives the same value, whatever their order.
    """
    pts = np.asarray(points, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if pts.ndim != 2 or len(pts) == 0:
        return 0.0
    pts = pts[np.all(pts > ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    # Sorted and deduplicated, so the result depends on the set only. Dominated points need no
    # filtering: every algorithm below gives them zero weight (a sweep gains nothing from them).
    pts = np.unique(pts, axis=0)
    d = pts.shape[1]
    if d == 1:
        return float(pts[:, 0].max() - ref[0])
    if d == 2:
        return _hv2(pts, ref)
    if d == 3:
        return _hv3(pts, ref)
    if d == 4:
        return _hv4(pts, ref)
    return _hv_monte_carlo(pts, ref)


def _hv2(pts: np.ndarray, ref: np.ndarray) -> float:
    pts = pts[np.argsort(-pts[:, 0], kind="stable")]
    running = np.maximum.accumulate(np.maximum(pts[:, 1], ref[1]))
    gains = np.diff(running, prepend=ref[1])
    return float(np.sum((pts[:, 0] - ref[0]) * gains))


class _Staircase:
    """The 2-D front of the points inserted so far and the area it dominates, kept exactly.

    ``xs`` ascending, ``ys`` descending (non-dominated in 2-D); area = sum over i of
    (x_i - x_{i-1}) * (y_i - ref_y) with x_{-1} = ref_x. An insert adds only its own gain.
    """

    def __init__(self, rx: float, ry: float):
        self.rx, self.ry = rx, ry
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.area = 0.0

    def insert(self, px: float, py: float) -> None:
        xs, ys = self.xs, self.ys
        idx = bisect.bisect_left(xs, px)
        if idx < len(xs) and ys[idx] >= py:
            return  # a point at x >= px is at least as high: nothing new
        height = ys[idx] if idx < len(xs) else self.ry
        end = idx + 1 if idx < len(xs) and xs[idx] == px else idx  # an equal x is dominated too
        gain = 0.0
        right = px
        j = idx - 1
        while j >= 0 and ys[j] <= py:
            gain += (right - xs[j]) * (py - height)
            right, height = xs[j], ys[j]
            j -= 1
        left = xs[j] if j >= 0 else self.rx
        gain += (right - left) * (py - height)
        del xs[j + 1:end], ys[j + 1:end]
        xs.insert(j + 1, px)
        ys.insert(j + 1, py)
        self.area += gain


def _hv3(pts: np.ndarray, ref: np.ndarray) -> float:
    order = np.argsort(-pts[:, 2], kind="stable")
    pts = pts[order]
    stair = _Staircase(float(ref[0]), float(ref[1]))
    volume = 0.0
    z = pts[:, 2].tolist()
    for i, (x, y) in enumerate(pts[:, :2].tolist()):
        stair.insert(x, y)
        lower = z[i + 1] if i + 1 < len(z) else float(ref[2])
        if z[i] > lower:
            volume += stair.area * (z[i] - lower)
    return float(volume)


def _hv4(pts: np.ndarray, ref: np.ndarray) -> float:
    pts = pts[np.argsort(-pts[:, 3], kind="stable")]
    w = pts[:, 3]
    volume = 0.0
    for i in range(len(pts)):
        lower = w[i + 1] if i + 1 < len(pts) else ref[3]
        if w[i] > lower:
            volume += (w[i] - lower) * _hv3(pts[: i + 1, :3], ref[:3])
    return float(volume)


def _hv_monte_carlo(pts: np.ndarray, ref: np.ndarray) -> float:
    upper = pts.max(axis=0)
    box = float(np.prod(upper - ref))
    rng = np.random.default_rng(MC_SEED)
    hits = 0
    for start in range(0, MC_SAMPLES, _MC_CHUNK):
        n = min(_MC_CHUNK, MC_SAMPLES - start)
        samples = ref + rng.random((n, len(ref))) * (upper - ref)
        covered = np.zeros(n, dtype=bool)
        for lo in range(0, len(pts), 64):  # (samples x 64 points x objectives) booleans at a time
            block = pts[lo:lo + 64]
            covered |= np.all(samples[:, None, :] <= block[None, :, :], axis=2).any(axis=1)
        hits += int(covered.sum())
    return box * hits / MC_SAMPLES


class ParetoArchive:
    """The running front of feasible points, updated one point at a time.

    A point equal on every objective to a member does not join: the first evaluated
    stands and the later ones are kept in ``duplicates`` (member id -> their ids), so
    three all-skip spellings with identical metrics are one point of the front.
    """

    def __init__(self, objectives: Sequence[Objective], reference: Mapping[str, float]):
        self.objectives = list(objectives)
        self.reference = dict(reference)
        self._ref = oriented(self.reference, self.objectives)
        self.members: list[tuple[int, np.ndarray]] = []
        self.duplicates: dict[int, list[int]] = {}

    def add(self, trial_id: int, values: Mapping[str, float]) -> bool:
        point = oriented(values, self.objectives)
        for member, other in self.members:
            if np.array_equal(other, point):
                self.duplicates.setdefault(member, []).append(trial_id)
                return False
            if dominates(other, point):
                return False
        kept = [(t, p) for t, p in self.members if not dominates(point, p)]
        for t, _ in self.members:
            if all(t != k for k, _ in kept):
                self.duplicates.pop(t, None)
        self.members = kept
        self.members.append((trial_id, point))
        return True

    @property
    def trial_ids(self) -> list[int]:
        return sorted(t for t, _ in self.members)

    def hypervolume(self) -> float:
        if not self.members:
            return 0.0
        return hypervolume(np.stack([p for _, p in self.members]), self._ref)
