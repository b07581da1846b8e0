"""Torch modules of the NAS-Bench-201 network (kept apart so the space imports no torch)."""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.nb201 import EDGES, OPS


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
    raise ValueError(op)


class Cell(nn.Module):
    def __init__(self, codes: list[int], channels: int):
        super().__init__()
        self.edges = nn.ModuleList(make_op(OPS[c], channels) for c in codes)

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


class NB201Network(nn.Module):
    def __init__(self, codes: list[int], *, num_classes: int, in_channels: int = 3,
                 width: int = 16, cells_per_stage: int = 5):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width)]
        channels = width
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(channels, channels * 2))
                channels *= 2
            layers.extend(Cell(codes, channels) for _ in range(cells_per_stage))
        layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def profile_plan(batch: int):  # -> search_spaces.base.ProfilePlan
    """What ``tables profile`` times for nb201, as eager torch runs the network: ``none`` edges
    run (``x * 0``), every edge runs whether or not its output is used, and the per-cell
    dispatch and node sums are one term per width (an all-``skip`` cell minus its identities)."""
    from search_spaces.base import Probe, ProfilePlan

    widths = ((16, 32), (32, 16), (64, 8))
    cells_per_stage = 5
    probes: dict[str, Probe] = {}
    for c, r in widths:
        for op in OPS:
            probes[f"{op}@{c}"] = Probe(make_op(op, c), (batch, c, r, r))
        probes[f"cell_all_skip@{c}"] = Probe(Cell([1] * len(EDGES), c), (batch, c, r, r))
    probes["stem"] = Probe(nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)),
                           (batch, 3, 32, 32))
    probes["reduction@16"] = Probe(ResidualReduction(16, 32), (batch, 16, 32, 32))
    probes["reduction@32"] = Probe(ResidualReduction(32, 64), (batch, 32, 16, 16))
    probes["head"] = Probe(nn.Sequential(nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                         nn.Linear(64, 10)), (batch, 64, 8, 8))
    # entry -> {probe: multiplicity}; a negative multiplicity subtracts (identities inside the cell probe)
    plan: dict[str, dict[str, float]] = {}
    network = {"stem": 1.0, "reduction@16": 1.0, "reduction@32": 1.0, "head": 1.0}
    for c, _ in widths:
        network[f"cell_all_skip@{c}"] = cells_per_stage
        network[f"skip_connect@{c}"] = -cells_per_stage * len(EDGES)
    plan["network"] = network
    plan["network:pruned"] = network  # eager torch prunes nothing
    plan["network:constant"] = network  # nor folds a constant cell
    plan["input:reaches_output"] = {}  # no extra work in eager torch
    for target in (2, 3):  # eager sums all inputs, none included: inside the cell-dispatch term
        for k in range(2, target + 1):
            plan[f"node{target}:sum{k}"] = {}
    for i in range(len(EDGES)):
        plan[f"edge{i}:none"] = plan[f"edge{i}:none:dead_output"] = {f"none@{c}": cells_per_stage
                                                                     for c, _ in widths}
        for op in OPS[1:]:
            cost = {f"{op}@{c}": float(cells_per_stage) for c, _ in widths}
            for suffix in ("", ":zero_input", ":dead_output", ":constant_cell"):
                plan[f"edge{i}:{op}{suffix}"] = cost
    return ProfilePlan(probes, plan)
