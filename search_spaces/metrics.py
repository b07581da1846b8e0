"""Static footprint metrics of architectures, computed from the space definition (no torch run).

Every space describes its network layer by layer (``SearchSpace.footprint``) as raw
counts for many architectures at once: parameters, multiply-accumulates, memory
access cost and peak activation elements. This module turns those counts into the
named metrics a job spec may use.

Conventions (the same for every space):

- ``params``: trainable parameters of the network the space builds (conv and linear
  weights and biases, BatchNorm scale and shift), exactly what torch counts.
- ``macs``: multiply-accumulates of the convolutions and the linear classifier at
  batch 1; BatchNorm, pooling, additions and activations are not counted.
  ``flops`` = 2 x ``macs``.
- ``memory_access_cost``: values read and written by the conv and linear layers,
  summed per layer as H_in*W_in*C_in + H_out*W_out*C_out + weights (ShuffleNet V2's
  MAC, with k^2*C_in*C_out/groups weights).
- ``peak_memory_kb``: the largest sum of live tensors during a forward pass at batch 1,
  ops in the order the built network runs them, as a microcontroller runtime with a
  memory planner executes it (MCUNet's "peak SRAM"): while an op runs, its inputs, its
  output and every earlier tensor that a later op still reads are live; the input image
  counts until its last reader. BatchNorm and activations (ReLU, ReLU6, h-swish, swish,
  squeeze-excite gates) are fused into the neighbouring conv,
  views and identities (skip) are free, a sum accumulates into a new tensor per addition
  (in edge order), and multiplying by zero (NAS-Bench-201's ``none``) is folded away:
  a zero tensor takes no memory and adding it is free.
- ``model_size_kb``: parameters x bytes per value.

Sizes are KiB (1,024 bytes). ``peak_memory_kb`` and ``model_size_kb`` are for int8
(one byte per value, the microcontroller deployment format); the ``_fp16`` and
``_fp32`` variants use 2 and 4 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

DTYPE_BYTES = {"int8": 1, "fp16": 2, "fp32": 4}


def _dtype_variants(stem: str) -> dict[str, str]:
    return {stem if dtype == "int8" else f"{stem}_{dtype}": dtype for dtype in DTYPE_BYTES}


PEAK_MEMORY = _dtype_variants("peak_memory_kb")
MODEL_SIZE = _dtype_variants("model_size_kb")
#: Every static metric, with what it measures.
STATIC_METRICS: dict[str, str] = {
    "params": "trainable parameters",
    "macs": "multiply-accumulates at batch 1 (conv and linear layers)",
    "flops": "2 x macs",
    "memory_access_cost": "values read and written by conv and linear layers (inputs, outputs, weights)",
    **{name: f"peak activation memory at batch 1, KiB of {dtype}" for name, dtype in PEAK_MEMORY.items()},
    **{name: f"parameter storage, KiB of {dtype}" for name, dtype in MODEL_SIZE.items()},
}


@dataclass
class Footprint:
    """Raw counts for n architectures, each an (n,) float array."""

    params: np.ndarray
    macs: np.ndarray
    memory_access: np.ndarray
    #: peak number of live activation values (elements, not bytes)
    peak_activations: np.ndarray


@dataclass(frozen=True)
class LayerCost:
    """One conv or linear layer: parameters (weights, bias, BatchNorm), MACs, memory access."""

    params: int
    macs: int
    memory_access: int

    def __add__(self, other: LayerCost) -> LayerCost:
        return LayerCost(self.params + other.params, self.macs + other.macs,
                         self.memory_access + other.memory_access)


ZERO = LayerCost(0, 0, 0)


def conv(c_in: int, c_out: int, kernel: int, resolution: int, *, stride: int = 1, groups: int = 1,
         batchnorm: bool = True) -> LayerCost:
    """A bias-free 'same'-padded conv on a square input, optionally followed by BatchNorm."""
    out = (resolution + 2 * (kernel // 2) - kernel) // stride + 1
    weights = kernel * kernel * (c_in // groups) * c_out
    return LayerCost(weights + (2 * c_out if batchnorm else 0), out * out * weights,
                     resolution * resolution * c_in + out * out * c_out + weights)


def linear(c_in: int, c_out: int) -> LayerCost:
    weights = c_in * c_out
    return LayerCost(weights + c_out, weights, c_in + c_out + weights)


@dataclass(frozen=True)
class CostTable:
    """params, MACs, memory access of base + one term per (position, choice), as arrays."""

    per_choice: np.ndarray  # (3, positions, max choices)
    base: np.ndarray        # (3,)

    @classmethod
    def of(cls, per_choice: Sequence[Sequence[LayerCost]], base: LayerCost) -> CostTable:
        width = max(len(row) for row in per_choice)
        table = np.zeros((3, len(per_choice), width))
        for p, row in enumerate(per_choice):
            for c, cost in enumerate(row):
                table[:, p, c] = (cost.params, cost.macs, cost.memory_access)
        return cls(table, np.array([base.params, base.macs, base.memory_access], dtype=float))

    def counts(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n, positions) codes -> params, macs, memory access; a gather and a sum."""
        codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
        total = self.per_choice[:, np.arange(codes.shape[1]), codes].sum(axis=2) + self.base[:, None]
        return total[0], total[1], total[2]


def metrics_from_footprint(fp: Footprint, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Named metrics (all of STATIC_METRICS unless ``names`` picks some)."""
    wanted = list(STATIC_METRICS) if names is None else list(names)
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        if name == "params":
            out[name] = fp.params
        elif name == "macs":
            out[name] = fp.macs
        elif name == "flops":
            out[name] = 2 * fp.macs
        elif name == "memory_access_cost":
            out[name] = fp.memory_access
        elif name in PEAK_MEMORY:
            out[name] = fp.peak_activations * DTYPE_BYTES[PEAK_MEMORY[name]] / 1024
        elif name in MODEL_SIZE:
            out[name] = fp.params * DTYPE_BYTES[MODEL_SIZE[name]] / 1024
        else:
            raise KeyError(f"unknown static metric {name!r}; valid: {', '.join(STATIC_METRICS)}")
    return out


def static_metrics(space, codes: np.ndarray, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """(n, positions) choice codes of ``space`` -> {metric: (n,) values}."""
    return metrics_from_footprint(space.footprint(np.atleast_2d(np.asarray(codes, dtype=np.int64))), names)


def static_metrics_of(space, archs: Sequence[str], names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Same for architecture strings."""
    if not archs:
        return {n: np.zeros(0) for n in (STATIC_METRICS if names is None else names)}
    return static_metrics(space, np.stack([space.encode(a) for a in archs]), names)
