"""Footprint of NAS-Bench-201 networks as ``nb201_torch.NB201Network`` builds and runs them.

Width 16, 5 cells per stage, 32x32x3 input, 10 classes (CIFAR-10) unless told.
Parameters, MACs and memory access add up per (edge, op) over the 15 cells; the peak
plans the cell's execution order (``cell_program``) once for each of the 5^6 cells.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np

from search_spaces.metrics import ZERO, CostTable, Footprint, LayerCost, conv, linear
from search_spaces.nb201 import EDGES, OPS

INPUT_RESOLUTION = 32
STAGES = 3

def edge_cost(op: str, channels: int, resolution: int) -> LayerCost:
    if op == "nor_conv_1x1":
        return conv(channels, channels, 1, resolution)
    if op == "nor_conv_3x3":
        return conv(channels, channels, 3, resolution)
    return ZERO


def stage_shapes(width: int) -> list[tuple[int, int]]:
    """(channels, resolution) of each stage."""
    return [(width * 2 ** s, INPUT_RESOLUTION // 2 ** s) for s in range(STAGES)]


def reduction_cost(c_in: int, resolution: int) -> LayerCost:
    """ResidualReduction: ReLU-Conv3x3/2-BN, ReLU-Conv3x3-BN, shortcut AvgPool2 + Conv1x1."""
    c_out = 2 * c_in
    return (conv(c_in, c_out, 3, resolution, stride=2) + conv(c_out, c_out, 3, resolution // 2)
            + conv(c_in, c_out, 1, resolution // 2, batchnorm=False))


def plan_peak(ops: list[tuple[list[int], int]], sizes: list[float], created: list[int],
              outputs: set[int]) -> float:
    """Peak of a straight-line program under a memory planner.

    ``ops[k]`` = (groups it reads, group it creates). A group is live from its creating op
    (``created``; -1 for one that exists before the program) to its last reader, or to the
    end for ``outputs``. The peak is the largest sum of live sizes at any op.
    """
    last = list(created)
    for k, (reads, _) in enumerate(ops):
        for g in reads:
            last[g] = k
    for g in outputs:
        last[g] = len(ops)
    delta = [0.0] * (len(ops) + 1)
    for g, size in enumerate(sizes):
        first = max(created[g], 0)
        if last[g] >= first:
            delta[first] += size
            delta[min(last[g], len(ops) - 1) + 1] -= size
    peak = running = 0.0
    for change in delta[:-1]:
        running += change
        peak = max(peak, running)
    return peak


def cell_program(codes: Sequence[int], zero_input: bool) -> tuple[float, bool]:
    """(peak in units of the cell's tensor size, whether the cell's output is zero) for one cell.

    Edges run in string order; each node sums its edges' results as they come (the first
    result is the running sum itself, every further one makes a new tensor). Skip is the
    identity; ``none`` gives zero, which takes no memory and is free to add. Conv and pool
    make a new tensor, even from a zero input.
    """
    sizes = [0.0 if zero_input else 1.0]
    created = [-1]
    ops: list[tuple[list[int], int]] = []
    nodes: list[int | None] = [None if zero_input else 0]

    def new() -> int:
        sizes.append(1.0)
        created.append(len(ops))
        return len(sizes) - 1

    for target in (1, 2, 3):
        acc: int | None = None
        for i, (src, dst) in enumerate(EDGES):
            if dst != target:
                continue
            op, source = OPS[codes[i]], nodes[src]
            if op == "none":
                result = None
            elif op == "skip_connect":
                result = source
            else:
                result = new()
                ops.append(([] if source is None else [source], result))
            if result is None:
                continue
            if acc is None:
                acc = result
            else:
                g = new()
                ops.append(([acc, result], g))
                acc = g
        nodes.append(acc)
    out = nodes[3]
    return plan_peak(ops, sizes, created, set() if out is None else {out}), out is None


@functools.lru_cache(maxsize=1)
def _cell_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over all 5^6 cells: peak with a real input, with a zero input, whether the output is zero."""
    every = itertools.product(range(len(OPS)), repeat=len(EDGES))
    real, zero_in, zero_out = [], [], []
    for codes in every:
        peak, zero = cell_program(codes, False)
        real.append(peak)
        zero_out.append(zero)
        zero_in.append(cell_program(codes, True)[0] if zero else 0.0)  # only read after a zero output
    return np.asarray(real), np.asarray(zero_in), np.asarray(zero_out)


def cell_peak(codes: np.ndarray) -> np.ndarray:
    """Peak inside the cells of a stage, in units of the cell tensor size, per architecture.

    The first cell of a stage reads a real tensor; when a cell's output is zero, the cells
    after it read zero (and may then need a different amount).
    """
    real, zero_in, zero_out = _cell_table()
    index = codes @ (len(OPS) ** np.arange(len(EDGES) - 1, -1, -1))
    return np.where(zero_out[index], np.maximum(real[index], zero_in[index]), real[index])


def reduction_peak(c_in: int, resolution: int) -> float:
    """Peak live elements in a ResidualReduction: input + conv_a's + conv_b's outputs while
    conv_b runs (the input waits for the shortcut), then the shortcut's pool and conv, then the sum."""
    x = c_in * resolution ** 2
    y = 2 * c_in * (resolution // 2) ** 2
    pooled = c_in * (resolution // 2) ** 2
    return max(x + 2 * y, x + y + pooled, 2 * y + pooled, 3 * y)


@functools.lru_cache(maxsize=8)
def cost_table(num_classes: int, width: int, cells_per_stage: int, in_channels: int) -> CostTable:
    shapes = stage_shapes(width)
    per_edge = [[sum((edge_cost(op, c, r) for c, r in shapes), ZERO) for op in OPS] for _ in EDGES]
    per_edge = [[LayerCost(cost.params * cells_per_stage, cost.macs * cells_per_stage,
                           cost.memory_access * cells_per_stage) for cost in row] for row in per_edge]
    last_c = shapes[-1][0]
    base = conv(in_channels, width, 3, INPUT_RESOLUTION) + LayerCost(2 * last_c, 0, 0) + linear(last_c, num_classes)
    for c, r in shapes[:-1]:
        base = base + reduction_cost(c, r)
    return CostTable.of(per_edge, base)


def footprint(codes: np.ndarray, *, num_classes: int = 10, width: int = 16, cells_per_stage: int = 5,
              in_channels: int = 3) -> Footprint:
    codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
    params, macs, access = cost_table(num_classes, width, cells_per_stage, in_channels).counts(codes)
    shapes = stage_shapes(width)
    last_c = shapes[-1][0]
    image = in_channels * INPUT_RESOLUTION ** 2
    sizes = [c * r * r for c, r in shapes]
    fixed = max([image + sizes[0],         # stem conv reads the image
                 sizes[-1] + last_c,       # global pool
                 last_c + num_classes]     # classifier
                + [reduction_peak(c, r) for c, r in shapes[:-1]])
    peak = np.maximum(fixed, max(sizes) * cell_peak(codes))
    return Footprint(params, macs, access, peak)
