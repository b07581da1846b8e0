"""FBNet v1 macro space in its CIFAR setting: 22 searchable layers x 9 blocks (9^22 networks).

Stem Conv3x3 16 ch stride 1; seven stages of 1, 4, 4, 4, 4, 4, 1 layers with output
channels 16, 24, 32, 64, 112, 184, 352 and first-layer strides 1, 1, 2, 2, 1, 2, 1;
head Conv1x1 to 1504 ch, global average pool, linear. Input 32x32x3.

Op signatures follow once-for-all: block name plus input shape, output channels and
stride, so layers of the same shape share one table entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from search_spaces.base import InvalidArchitecture, SearchSpace

BLOCKS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
STAGES = ((1, 16, 1), (4, 24, 1), (4, 32, 2), (4, 64, 2), (4, 112, 1), (4, 184, 2), (1, 352, 1))
STEM_CHANNELS = 16
HEAD_CHANNELS = 1504
INPUT_RESOLUTION = 32


@dataclass(frozen=True)
class Layer:
    """Shape of one searchable layer: what its op signature keys on."""

    c_in: int
    c_out: int
    stride: int
    resolution: int  # input height = width

    def key(self) -> str:
        return f"{self.c_in}x{self.resolution}x{self.resolution}->{self.c_out}/s{self.stride}"


def layers() -> list[Layer]:
    out: list[Layer] = []
    c_in, res = STEM_CHANNELS, INPUT_RESOLUTION
    for count, c_out, first_stride in STAGES:
        for i in range(count):
            stride = first_stride if i == 0 else 1
            out.append(Layer(c_in, c_out, stride, res))
            c_in, res = c_out, res // stride
    return out


def parse_block(name: str) -> tuple[int, int, int]:
    """'k5_e6' -> (kernel 5, expand 6, groups 1); 'k3_e1_g2' -> (3, 1, 2)."""
    parts = name.split("_")
    return int(parts[0][1:]), int(parts[1][1:]), int(parts[2][1:]) if len(parts) > 2 else 1


class FBNetSpace(SearchSpace):
    name = "fbnet"
    description = "FBNet v1 (CIFAR): 22 layers x 9 blocks (k3/k5, expand 1/3/6, group-2, skip)"
    LAYERS = tuple(layers())
    choices = tuple(BLOCKS for _ in LAYERS)

    def encode(self, arch: str) -> np.ndarray:
        names = arch.strip().split("-")
        if len(names) != len(self.LAYERS):
            raise InvalidArchitecture(f"fbnet needs {len(self.LAYERS)} blocks joined by '-', got {len(names)}")
        try:
            return np.asarray([BLOCKS.index(n) for n in names], dtype=np.int64)
        except ValueError:
            bad = next(n for n in names if n not in BLOCKS)
            raise InvalidArchitecture(f"unknown block {bad!r}; valid: {', '.join(BLOCKS)}") from None

    def decode(self, codes: Sequence[int]) -> str:
        if len(codes) != len(self.LAYERS):
            raise InvalidArchitecture(f"fbnet needs {len(self.LAYERS)} codes, got {len(codes)}")
        return "-".join(BLOCKS[int(c)] for c in codes)

    def canonical_hash(self, arch: str) -> str:
        """Every string is a distinct network here (a skip that keeps the shape is the identity,
        but it still changes the depth and so the function), so the hash is of the string."""
        return hashlib.sha1(self.normalize(arch).encode()).hexdigest()[:16]

    def position_signatures(self, position: int, choice: int) -> list[str]:
        layer = self.LAYERS[position]
        block = BLOCKS[choice]
        if block == "skip" and layer.c_in == layer.c_out and layer.stride == 1:
            return []  # identity: nothing runs
        return [f"{block}:{layer.key()}"]

    def base_signatures(self) -> list[str]:
        last = self.LAYERS[-1]
        res = last.resolution // last.stride
        return [f"stem:3x{INPUT_RESOLUTION}x{INPUT_RESOLUTION}->{STEM_CHANNELS}/s1",
                f"head:{last.c_out}x{res}x{res}->{HEAD_CHANNELS}"]

    def footprint(self, codes: np.ndarray):
        from search_spaces.fbnet_metrics import footprint

        return footprint(codes)

    def largest_codes(self) -> np.ndarray:
        """Every static metric is largest with k5_e6 everywhere: it has the most parameters,
        MACs and memory access at every layer, the largest expansion at every layer (so the
        largest transient), and a non-identity first block."""
        return np.full((1, len(self.LAYERS)), BLOCKS.index("k5_e6"), dtype=np.int64)

    def build_model(self, arch: str, *, num_classes: int, in_channels: int = 3, width: int = 16,
                    cells_per_stage: int = 5):
        """The eval-mode network. ``width`` and ``cells_per_stage`` are nb201 knobs and are ignored."""
        from search_spaces.fbnet_torch import FBNetNetwork

        return FBNetNetwork(self.normalize(arch).split("-"), num_classes=num_classes, in_channels=in_channels)
