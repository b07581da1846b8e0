# FBNet v1 (CIFAR) network body (imports only torch).
import torch
from torch import nn

#: (layers, output channels, first-layer stride) of each stage.
STAGES = ((1, 16, 1), (4, 24, 1), (4, 32, 2), (4, 64, 2), (4, 112, 1), (4, 184, 2), (1, 352, 1))
STEM_CHANNELS = 16
HEAD_CHANNELS = 1504


def layer_shapes() -> list[tuple[int, int, int]]:
    """(c_in, c_out, stride) of each of the 22 searchable layers."""
    out, c_in = [], STEM_CHANNELS
    for count, c_out, first_stride in STAGES:
        for i in range(count):
            out.append((c_in, c_out, first_stride if i == 0 else 1))
            c_in = c_out
    return out


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

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, expand: int, groups: int):
        super().__init__()
        mid = c_in * expand
        parts: list[nn.Module] = [conv_bn(c_in, mid, 1, groups=groups)]
        if groups > 1:
            parts.append(ChannelShuffle(groups))
        parts += [conv_bn(mid, mid, kernel, stride, groups=mid),
                  conv_bn(mid, c_out, 1, groups=groups, relu=False)]
        self.body = nn.Sequential(*parts)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


def make_block(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """'k5_e6' -> kernel 5, expand 6; '_g2' -> grouped 1x1s; 'skip' -> identity or a 1x1 projection."""
    if name == "skip":
        if c_in == c_out and stride == 1:
            return nn.Identity()
        return conv_bn(c_in, c_out, 1, stride, relu=False)
    parts = name.split("_")
    kernel, expand = int(parts[0][1:]), int(parts[1][1:])
    groups = int(parts[2][1:]) if len(parts) > 2 else 1
    return InvertedBottleneck(c_in, c_out, stride, kernel, expand, groups)


class Network(nn.Module):
    """Stem conv, 22 blocks, 1x1 head to 1504 channels, global pool, linear classifier."""

    def __init__(self, ops: list[str], *, num_classes: int, in_channels: int = 3):
        super().__init__()
        self.stem = conv_bn(in_channels, STEM_CHANNELS, 3)
        self.blocks = nn.Sequential(*(make_block(b, *shape) for b, shape in zip(ops, layer_shapes(), strict=True)))
        self.head = nn.Sequential(conv_bn(STAGES[-1][1], HEAD_CHANNELS, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.blocks(self.stem(x))))
