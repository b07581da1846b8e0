"""The supernet of a search space, by space name."""

from __future__ import annotations

from torch import nn

SUPERNET_SPACES = ("nb201", "fbnet")


def build_supernet(space: str, *, num_classes: int, in_channels: int, width: int = 8, cells_per_stage: int = 1,
                   width_multiplier: float = 0.25) -> nn.Module:
    """``width``/``cells_per_stage`` size the nb201 supernet, ``width_multiplier`` the fbnet one."""
    if space == "nb201":
        from nas.differentiable.supernet_nb201 import NB201Supernet

        return NB201Supernet(num_classes=num_classes, in_channels=in_channels, width=width,
                             cells_per_stage=cells_per_stage)
    if space == "fbnet":
        from nas.differentiable.supernet_fbnet import FBNetSupernet

        return FBNetSupernet(num_classes=num_classes, in_channels=in_channels, width_multiplier=width_multiplier)
    raise ValueError(f"no supernet for space {space!r}; valid: {', '.join(SUPERNET_SPACES)}")
