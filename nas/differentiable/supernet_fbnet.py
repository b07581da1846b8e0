"""FBNet supernet: each of the 22 layers a mixed op of the nine blocks, built by the eval network's
own block builder on channel counts scaled by ``width_multiplier`` (kept even, since the group-2
blocks split channels in two). The table latency is of the full-width network either way."""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.fbnet import BLOCKS, HEAD_CHANNELS, STEM_CHANNELS, FBNetSpace, Layer
from search_spaces.fbnet_torch import conv_bn, make_block
from nas.differentiable.mixed import MixedOp


def scaled(channels: int, multiplier: float) -> int:
    return max(2, 2 * round(channels * multiplier / 2))


class FBNetSupernet(nn.Module):
    positions = len(FBNetSpace.LAYERS)
    choices = len(BLOCKS)

    def __init__(self, *, num_classes: int, in_channels: int, width_multiplier: float = 0.25):
        super().__init__()
        self.stem = conv_bn(in_channels, scaled(STEM_CHANNELS, width_multiplier), 3)
        self.layers = nn.ModuleList()
        for layer in FBNetSpace.LAYERS:
            small = Layer(scaled(layer.c_in, width_multiplier), scaled(layer.c_out, width_multiplier),
                          layer.stride, layer.resolution)
            self.layers.append(MixedOp(make_block(block, small) for block in BLOCKS))
        last = scaled(FBNetSpace.LAYERS[-1].c_out, width_multiplier)
        head = scaled(HEAD_CHANNELS, width_multiplier)
        self.head = nn.Sequential(conv_bn(last, head, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(head, num_classes))

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard: bool = False) -> torch.Tensor:
        x = self.stem(x)
        for layer, row in zip(self.layers, weights, strict=True):
            x = layer(x, row, hard)
        return self.head(x)
