"""The mixed op: candidates of one position, mixed by one row of relaxation weights."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class MixedOp(nn.Module):
    def __init__(self, candidates: Iterable[nn.Module]):
        super().__init__()
        self.candidates = nn.ModuleList(candidates)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool = False) -> torch.Tensor:
        """sum_i weights[i] * candidate_i(x).

        ``hard`` (one-hot straight-through weights): only the chosen candidate runs; the others
        enter as their weight (0 in value), which keeps their gradient as GDAS does.
        """
        if hard:
            chosen = int(weights.argmax())
            others = torch.cat([weights[:chosen], weights[chosen + 1:]]).sum()
            return weights[chosen] * self.candidates[chosen](x) + others
        return sum(w * op(x) for w, op in zip(weights, self.candidates, strict=True))  # type: ignore[return-value]
