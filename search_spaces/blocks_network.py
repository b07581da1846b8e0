# Block-space network body (imports only torch): stem, one block per layer, head.
# hwnas builds block-space networks with this file and exports it verbatim as the body of
# a standalone model.py, followed by the space's LAYOUT, so both run the very same code.
from __future__ import annotations

import torch
from torch import nn


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    if name == "swish":
        return nn.SiLU(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics do not depend on torch's thread count.

    On a 1x1 feature map (channels 1 apart in memory) torch's CPU kernel takes its
    channels-last path, which adds per-thread partial sums, so the last bits depend on
    the threads; the same statistics over a (1, C, N, 1) copy take the per-channel path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if not self.training or h * w != 1:
            return super().forward(x)
        per_channel = x.reshape(n, c).t().contiguous().view(1, c, n, 1)
        return super().forward(per_channel).view(c, n).t().reshape(n, c, 1, 1)


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
            act: str | None = "relu") -> nn.Sequential:
    """k x k 'same'-padded conv (no bias), BatchNorm, then the activation unless ``act`` is None."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               BatchNorm(c_out)]
    if act is not None:
        layers.append(activation(act))
    return nn.Sequential(*layers)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """Global pool, 1x1 conv to max(1, c // 4) (ReLU), 1x1 conv back, gate, multiply."""

    def __init__(self, channels: int, hard: bool):
        super().__init__()
        squeezed = max(1, channels // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True) if hard else nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """1x1 expand (left out at expand 1 unless expand_conv), k x k depthwise, optional
    squeeze-excite, 1x1 project; residual when the shape is kept; grouped 1x1s shuffle."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, expand: int, groups: int = 1,
                 se: bool = False, act: str = "relu", expand_conv: bool = False):
        super().__init__()
        mid = c_in * expand
        parts: list[nn.Module] = []
        if expand != 1 or expand_conv:
            parts.append(conv_bn(c_in, mid, 1, groups=groups, act=act))
            if groups > 1:
                parts.append(ChannelShuffle(groups))
        parts.append(conv_bn(mid, mid, kernel, stride, groups=mid, act=act))
        if se:
            parts.append(SqueezeExcite(mid, hard=act == "hswish"))
        parts.append(conv_bn(mid, c_out, 1, groups=groups, act=None))
        self.body = nn.Sequential(*parts)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


def make_block(block: dict, c_in: int, c_out: int, stride: int) -> nn.Module:
    """One layer from its block definition ({"op": "mbconv"|"conv"|"skip", ...})."""
    op = block["op"]
    if op == "skip":
        if c_in == c_out and stride == 1:
            return nn.Identity()
        return conv_bn(c_in, c_out, 1, stride, act=None)
    if op == "conv":
        return conv_bn(c_in, c_out, block["kernel"], stride, groups=block.get("groups", 1), act=block["act"])
    if op == "mbconv":
        return MBConv(c_in, c_out, stride, block["kernel"], block["expand"], block.get("groups", 1),
                      block.get("se", False), block["act"], block.get("expand_conv", False))
    raise ValueError(f"unknown op {op!r}")


class Head(nn.Sequential):
    """1x1 conv - BN - act to ``channels``, global average pool, linear classifier."""

    def __init__(self, c_in: int, channels: int, act: str, num_classes: int):
        super().__init__(conv_bn(c_in, channels, 1, act=act), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(channels, num_classes))


class Network(nn.Module):
    """Stem, one block per searchable layer (``choices``: the block name of each), head."""

    def __init__(self, choices: list[str], *, num_classes: int, in_channels: int = 3, layout: dict | None = None):
        super().__init__()
        layout = layout if layout is not None else globals()["LAYOUT"]
        if len(choices) != len(layout["layers"]):
            raise ValueError(f"{len(layout['layers'])} layers need as many choices, got {len(choices)}")
        stem = layout["stem"]
        self.stem = conv_bn(in_channels, stem["channels"], stem["kernel"], stem["stride"], act=stem["act"])
        self.blocks = nn.Sequential(*(make_block(layout["blocks"][name], c_in, c_out, stride)
                                      for name, (c_in, c_out, stride) in zip(choices, layout["layers"])))
        last = layout["layers"][-1][1]
        head = layout["head"]
        self.head = Head(last, head["channels"], head["act"], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))
