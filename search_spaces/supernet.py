"""Weight-sharing supernets the differentiable strategies train, built from the spaces' own modules.

A supernet has ``positions`` and ``choices`` (the shape of the relaxation matrix) and
``forward(x, weights, hard=False)``, mixing each position's candidates by its row of
``weights``. Where positions have fewer choices than the widest one, ``invalid`` (a bool
(positions, choices) tensor) marks the padding: the trainer keeps their weight at zero.
Imports torch (only the supernet hooks import this module).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from search_spaces.blocks import BlockSpace


class MixedOp(nn.Module):
    """The candidates of one position, mixed by one row of relaxation weights."""

    def __init__(self, candidates: Iterable[nn.Module]):
        super().__init__()
        self.candidates = nn.ModuleList(candidates)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool = False) -> torch.Tensor:
        """sum_i weights[i] * candidate_i(x) over this position's candidates (padding ignored).

        ``hard`` (one-hot straight-through weights): only the chosen candidate runs; the others
        enter as their weight (0 in value), which keeps their gradient as GDAS does.
        """
        weights = weights[:len(self.candidates)]
        if hard:
            chosen = int(weights.argmax())
            others = torch.cat([weights[:chosen], weights[chosen + 1:]]).sum()
            return weights[chosen] * self.candidates[chosen](x) + others
        return sum(w * op(x) for w, op in zip(weights, self.candidates, strict=True))  # type: ignore[return-value]


def padding_mask(dims: list[int]) -> torch.Tensor:
    width = max(dims)
    return torch.arange(width)[None, :] >= torch.as_tensor(dims)[:, None]


class BlockSupernet(nn.Module):
    """Each layer of a block space a mixed op of its stage's blocks, built by the eval network's
    own block builder on channel counts scaled by ``width_multiplier`` (kept a multiple of every
    block's groups). The table latency is of the full-width network either way."""

    def __init__(self, space: BlockSpace, *, num_classes: int, in_channels: int, width_multiplier: float = 0.25):
        super().__init__()
        from search_spaces import blocks_network as bn

        unit = math.lcm(*(b.groups for b in space.block_by_name.values()), 1)
        unit = max(unit, 2) if unit == 1 else unit

        def scaled(channels: int) -> int:
            return max(unit, unit * round(channels * width_multiplier / unit))

        layout = space.layout()
        self.positions = len(space.LAYERS)
        self.choices = max(space.dims)
        self.register_buffer("invalid", padding_mask(list(space.dims)), persistent=False)
        stem = layout["stem"]
        self.stem = bn.conv_bn(in_channels, scaled(stem["channels"]), stem["kernel"], stem["stride"], act=stem["act"])
        self.layers = nn.ModuleList()
        for layer, names in zip(space.LAYERS, space.choices, strict=True):
            self.layers.append(MixedOp(bn.make_block(layout["blocks"][n], scaled(layer.c_in), scaled(layer.c_out),
                                                     layer.stride) for n in names))
        head = layout["head"]
        self.head = bn.Head(scaled(space.final_channels), scaled(head["channels"]), head["act"], num_classes)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool = False) -> torch.Tensor:
        x = self.stem(x)
        for layer, row in zip(self.layers, weights, strict=True):
            x = layer(x, row, hard)
        return self.head(x)


class NB201SuperCell(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        from search_spaces.nb201 import EDGES, OPS
        from search_spaces.nb201_torch import make_op

        self.edges = nn.ModuleList(MixedOp(make_op(op, channels) for op in OPS) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool) -> torch.Tensor:
        from search_spaces.nb201 import EDGES

        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(sum(self.edges[i](nodes[src], weights[i], hard)
                             for i, (src, dst) in enumerate(EDGES) if dst == target))
        return nodes[3]


class NB201Supernet(nn.Module):
    """Every cell edge a mixed op of the five NB201 ops, one cell shared by all stages (as the
    space shares one cell), the same stem, reductions and head as the eval network."""

    def __init__(self, *, num_classes: int, in_channels: int, width: int = 8, cells_per_stage: int = 1):
        super().__init__()
        from search_spaces.nb201 import EDGES, OPS
        from search_spaces.nb201_torch import ResidualReduction

        self.positions, self.choices = len(EDGES), len(OPS)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.stages = nn.ModuleList()
        channels = width
        for stage in range(3):
            blocks: list[nn.Module] = []
            if stage > 0:
                blocks.append(ResidualReduction(channels, channels * 2))
                channels *= 2
            blocks.extend(NB201SuperCell(channels) for _ in range(cells_per_stage))
            self.stages.append(nn.ModuleList(blocks))
        self.head = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool = False) -> torch.Tensor:
        x = self.stem(x)
        for blocks in self.stages:
            for block in blocks:
                x = block(x, weights, hard) if isinstance(block, NB201SuperCell) else block(x)
        return self.head(x)
