"""Footprint of FBNet networks as ``fbnet_torch.FBNetNetwork`` builds and runs them.

Everything but the peak is a sum of per-(layer, block) terms; the peak is the largest
over layers of what one layer holds while it runs (nothing outlives its block).
"""

from __future__ import annotations

import functools

import numpy as np

from search_spaces.fbnet import (BLOCKS, HEAD_CHANNELS, INPUT_RESOLUTION, STEM_CHANNELS, FBNetSpace, Layer,
                                 parse_block)
from search_spaces.metrics import ZERO, CostTable, Footprint, LayerCost, conv, linear


def is_identity(block: str, layer: Layer) -> bool:
    return block == "skip" and layer.c_in == layer.c_out and layer.stride == 1


def block_cost(block: str, layer: Layer) -> LayerCost:
    r = layer.resolution
    if is_identity(block, layer):
        return ZERO
    if block == "skip":
        return conv(layer.c_in, layer.c_out, 1, r, stride=layer.stride)
    kernel, expand, groups = parse_block(block)
    mid = layer.c_in * expand
    return (conv(layer.c_in, mid, 1, r, groups=groups) + conv(mid, mid, kernel, r, stride=layer.stride, groups=mid)
            + conv(mid, layer.c_out, 1, r // layer.stride, groups=groups))


def block_peak(block: str, layer: Layer) -> int:
    """Peak live elements while the block runs, its input included.

    Each conv (BN and ReLU fused) holds its input and output; the input stays live to the
    end when the residual reads it again; the channel shuffle copies; the residual sum is
    a new tensor.
    """
    x = layer.c_in * layer.resolution ** 2
    out = layer.c_out * (layer.resolution // layer.stride) ** 2
    if is_identity(block, layer):
        return 0
    if block == "skip":
        return x + out
    _, expand, groups = parse_block(block)
    expanded = layer.c_in * expand * layer.resolution ** 2
    strided = layer.c_in * expand * (layer.resolution // layer.stride) ** 2
    kept = x if layer.stride == 1 and layer.c_in == layer.c_out else 0
    steps = [x + expanded, kept + expanded + strided, kept + strided + out]
    if groups > 1:
        steps.append(kept + 2 * expanded)
    if kept:
        steps.append(x + 2 * out)
    return max(steps)


@functools.lru_cache(maxsize=8)
def _tables(num_classes: int, in_channels: int) -> tuple[CostTable, np.ndarray, float]:
    """Per-(layer, block) costs, per-(layer, block) peaks, and the peak outside the blocks."""
    layers = FBNetSpace.LAYERS
    last = layers[-1]
    final_res = last.resolution // last.stride
    base = (conv(in_channels, STEM_CHANNELS, 3, INPUT_RESOLUTION)
            + conv(last.c_out, HEAD_CHANNELS, 1, final_res) + linear(HEAD_CHANNELS, num_classes))
    costs = CostTable.of([[block_cost(b, layer) for b in BLOCKS] for layer in layers], base)
    image = in_channels * INPUT_RESOLUTION ** 2
    stem_out = STEM_CHANNELS * INPUT_RESOLUTION ** 2
    head = HEAD_CHANNELS * final_res ** 2
    fixed = max(image + stem_out, last.c_out * final_res ** 2 + head, head + HEAD_CHANNELS,
                HEAD_CHANNELS + num_classes)
    peaks = np.asarray([[block_peak(b, layer) for b in BLOCKS] for layer in layers], dtype=float)
    return costs, peaks, float(fixed)


def footprint(codes: np.ndarray, *, num_classes: int = 100, in_channels: int = 3) -> Footprint:
    codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
    costs, peaks, fixed = _tables(num_classes, in_channels)
    params, macs, access = costs.counts(codes)
    peak = np.maximum(fixed, peaks[np.arange(codes.shape[1]), codes].max(axis=1))
    return Footprint(params, macs, access, peak)
