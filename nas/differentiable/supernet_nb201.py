"""NAS-Bench-201 supernet: every cell edge a mixed op of the five NB201 ops, one cell shared by all
stages (as the space shares one cell), the same stem, reductions and head as the eval network."""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.nb201 import EDGES, OPS
from search_spaces.nb201_torch import ResidualReduction, make_op
from nas.differentiable.mixed import MixedOp


class SuperCell(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.edges = nn.ModuleList(MixedOp(make_op(op, channels) for op in OPS) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(sum(self.edges[i](nodes[src], weights[i], hard)
                             for i, (src, dst) in enumerate(EDGES) if dst == target))
        return nodes[3]


class NB201Supernet(nn.Module):
    positions = len(EDGES)
    choices = len(OPS)

    def __init__(self, *, num_classes: int, in_channels: int, width: int = 8, cells_per_stage: int = 1):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.stages = nn.ModuleList()
        channels = width
        for stage in range(3):
            blocks: list[nn.Module] = []
            if stage > 0:
                blocks.append(ResidualReduction(channels, channels * 2))
                channels *= 2
            blocks.extend(SuperCell(channels) for _ in range(cells_per_stage))
            self.stages.append(nn.ModuleList(blocks))
        self.head = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool = False) -> torch.Tensor:
        x = self.stem(x)
        for blocks in self.stages:
            for block in blocks:
                x = block(x, weights, hard) if isinstance(block, SuperCell) else block(x)
        return self.head(x)
