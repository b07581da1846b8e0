"""Torch modules of the FBNet v1 CIFAR network (kept apart so the space imports no torch)."""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.fbnet import HEAD_CHANNELS, STEM_CHANNELS, FBNetSpace, Layer, parse_block


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class InvertedBottleneck(nn.Module):
    """1x1 expand (x e), k x k depthwise, 1x1 project; residual when the shape is kept."""

    def __init__(self, layer: Layer, kernel: int, expand: int, groups: int):
        super().__init__()
        mid = layer.c_in * expand
        parts: list[nn.Module] = [conv_bn(layer.c_in, mid, 1, groups=groups)]
        if groups > 1:
            parts.append(ChannelShuffle(groups))
        parts += [conv_bn(mid, mid, kernel, layer.stride, groups=mid),
                  conv_bn(mid, layer.c_out, 1, groups=groups, relu=False)]
        self.body = nn.Sequential(*parts)
        self.residual = layer.stride == 1 and layer.c_in == layer.c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


def make_block(name: str, layer: Layer) -> nn.Module:
    if name == "skip":
        if layer.c_in == layer.c_out and layer.stride == 1:
            return nn.Identity()
        return conv_bn(layer.c_in, layer.c_out, 1, layer.stride, relu=False)
    kernel, expand, groups = parse_block(name)
    return InvertedBottleneck(layer, kernel, expand, groups)


class FBNetNetwork(nn.Module):
    def __init__(self, blocks: list[str], *, num_classes: int, in_channels: int = 3):
        super().__init__()
        self.stem = conv_bn(in_channels, STEM_CHANNELS, 3)
        self.blocks = nn.Sequential(*(make_block(b, layer) for b, layer in zip(blocks, FBNetSpace.LAYERS)))
        last = FBNetSpace.LAYERS[-1].c_out
        self.head = nn.Sequential(conv_bn(last, HEAD_CHANNELS, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.blocks(self.stem(x))))
