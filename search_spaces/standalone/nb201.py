# NAS-Bench-201 network body (imports only torch).
import torch
from torch import nn

#: (source, target) node of each cell edge, in architecture-string order.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, channels: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown op {op!r}")


class Cell(nn.Module):
    def __init__(self, ops: list[str], channels: int):
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(sum(self.edges[i](nodes[src])
                             for i, (src, dst) in enumerate(EDGES) if dst == target))
        return nodes[3]


class ResidualReduction(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class Network(nn.Module):
    """Stem, three stages of cells (width, 2x, 4x channels) joined by residual reductions, head."""

    def __init__(self, ops: list[str], *, num_classes: int, in_channels: int = 3, width: int = 16,
                 cells_per_stage: int = 5):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width)]
        channels = width
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(channels, channels * 2))
                channels *= 2
            layers.extend(Cell(ops, channels) for _ in range(cells_per_stage))
        layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
