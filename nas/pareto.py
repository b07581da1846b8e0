"""Pareto fronts and hypervolume over objective dicts.

Points are oriented to "larger is better" internally (minimised objectives are
negated). The hypervolume reference point is given in the objectives' own units.
"""

from __future__ import annotations

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


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume of oriented points dominating the oriented reference.

    2-D is a sweep; higher dimensions slice recursively (fine for fronts of a few hundred).
    """
    pts = np.asarray(points, dtype=float)
    if len(pts) == 0:
        return 0.0
    pts = pts[np.all(pts > reference, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[non_dominated_mask(pts)]
    if pts.shape[1] == 1:
        return float(pts[:, 0].max() - reference[0])
    if pts.shape[1] == 2:
        order = np.argsort(-pts[:, 0])
        volume, best_y = 0.0, reference[1]
        for x, y in pts[order]:
            if y > best_y:
                volume += (x - reference[0]) * (y - best_y)
                best_y = y
        return float(volume)
    order = np.argsort(-pts[:, -1])
    pts = pts[order]
    volume = 0.0
    for i in range(len(pts)):
        lower = pts[i + 1, -1] if i + 1 < len(pts) else reference[-1]
        depth = pts[i, -1] - lower
        if depth > 0:
            volume += depth * hypervolume(pts[: i + 1, :-1], reference[:-1])
    return float(volume)


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
