"""Footprint of block-space networks as ``blocks_network.Network`` builds and runs them.

Parameters, MACs and memory access are sums of per-(layer, choice) terms; the peak is the
largest, over the layers, of what one layer holds while it runs (only a block's output
outlives it), computed by playing the block's ops through the memory-planner rule of
``search_spaces.metrics``: a tensor is live from the op that makes it to its last reader.
Activations and BatchNorm are fused into their conv; the channel shuffle copies; the
squeeze-excite pool, its two 1x1 convs (gate fused) and the multiply each make a tensor.
"""

from __future__ import annotations

import functools

import numpy as np

from search_spaces.blocks import Block, BlockSpace, Layer, out_resolution, se_channels
from search_spaces.metrics import ZERO, CostTable, Footprint, LayerCost, conv, linear


def block_cost(b: Block, layer: Layer) -> LayerCost:
    r, s = layer.resolution, layer.stride
    if layer.is_identity(b):
        return ZERO
    if b.op == "skip":
        return conv(layer.c_in, layer.c_out, 1, r, stride=s)
    if b.op == "conv":
        return conv(layer.c_in, layer.c_out, b.kernel, r, stride=s, groups=b.groups)
    mid = layer.c_in * b.expand
    r2 = out_resolution(r, s)
    cost = ZERO
    if b.has_expand:
        cost = cost + conv(layer.c_in, mid, 1, r, groups=b.groups)
    cost = cost + conv(mid, mid, b.kernel, r, stride=s, groups=mid)
    if b.se:
        sq = se_channels(mid)
        cost = (cost + conv(mid, sq, 1, 1, batchnorm=False) + LayerCost(sq, 0, 0)
                + conv(sq, mid, 1, 1, batchnorm=False) + LayerCost(mid, 0, 0))
    return cost + conv(mid, layer.c_out, 1, r2, groups=b.groups)


def program_peak(steps: list[tuple[list[int], float]], input_size: float) -> float:
    """Peak live elements of a straight-line program. Tensor 0 is the input; step k reads the
    tensors it names and makes tensor k + 1 of the given size; the last one is the output."""
    sizes = [input_size] + [size for _, size in steps]
    last = list(range(-1, len(steps)))  # tensor t made by step t - 1 (the input before step 0)
    for k, (reads, _) in enumerate(steps):
        for t in reads:
            last[t] = max(last[t], k)
    last[-1] = len(steps)
    made = [-1] + list(range(len(steps)))
    return max(sum(size for t, size in enumerate(sizes) if made[t] <= k <= last[t]) for k in range(len(steps)))


def block_peak(b: Block, layer: Layer) -> float:
    x = layer.c_in * layer.resolution ** 2
    r2 = out_resolution(layer.resolution, layer.stride)
    out = layer.c_out * r2 ** 2
    if layer.is_identity(b):
        return 0.0
    if b.op in ("skip", "conv"):
        return float(x + out)
    mid = layer.c_in * b.expand
    steps: list[tuple[list[int], float]] = []
    current = 0
    if b.has_expand:
        steps.append(([current], mid * layer.resolution ** 2))
        current = len(steps)
        if b.groups > 1:
            steps.append(([current], mid * layer.resolution ** 2))
            current = len(steps)
    steps.append(([current], mid * r2 ** 2))
    current = len(steps)
    if b.se:
        depthwise = current
        steps.append(([depthwise], mid))                # pool
        steps.append(([len(steps)], se_channels(mid)))  # reduce (+ReLU)
        steps.append(([len(steps)], mid))               # expand (+gate)
        steps.append(([depthwise, len(steps)], mid * r2 ** 2))  # multiply
        current = len(steps)
    steps.append(([current], out))
    if layer.stride == 1 and layer.c_in == layer.c_out:
        steps.append(([len(steps), 0], out))
    return program_peak(steps, x)


@functools.lru_cache(maxsize=64)
def _tables(space: BlockSpace, num_classes: int, in_channels: int) -> tuple[CostTable, np.ndarray, float]:
    """Per-(layer, choice) costs, per-(layer, choice) peaks, and the peak outside the layers."""
    r0, stem = space.input_resolution, space.stem
    head_c, last_c, rf = space.head["channels"], space.final_channels, space.final_resolution
    base = (conv(in_channels, stem["channels"], stem["kernel"], r0, stride=stem["stride"])
            + conv(last_c, head_c, 1, rf) + linear(head_c, num_classes))
    rows = [[block_cost(space.block_by_name[n], layer) for n in names]
            for layer, names in zip(space.LAYERS, space.choices)]
    costs = CostTable.of(rows, base)
    width = costs.per_choice.shape[2]
    peaks = np.zeros((len(space.LAYERS), width))
    for p, (layer, names) in enumerate(zip(space.LAYERS, space.choices)):
        for c, n in enumerate(names):
            peaks[p, c] = block_peak(space.block_by_name[n], layer)
    image = in_channels * r0 ** 2
    stem_out = stem["channels"] * space.stem_resolution ** 2
    head = head_c * rf ** 2
    fixed = max(image + stem_out, last_c * rf ** 2 + head, head + head_c, head_c + num_classes)
    return costs, peaks, float(fixed)


def tables(space: BlockSpace, num_classes: int, in_channels: int) -> tuple[CostTable, np.ndarray, float]:
    return _tables(space, num_classes, in_channels)


def footprint(space: BlockSpace, codes: np.ndarray, *, num_classes: int | None = None,
              in_channels: int | None = None) -> Footprint:
    codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
    costs, peaks, fixed = _tables(space, num_classes or space.num_classes, in_channels or space.input_channels)
    params, macs, access = costs.counts(codes)
    peak = np.maximum(fixed, peaks[np.arange(codes.shape[1]), codes].max(axis=1))
    return Footprint(params, macs, access, peak)
