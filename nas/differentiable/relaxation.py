"""Relaxations of a categorical choice per position: softmax (DARTS) and Gumbel-softmax (FBNet, GDAS).

``alpha`` is a (positions, choices) tensor of architecture parameters; a relaxation turns it
into mixing weights of the same shape whose rows sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

RelaxationKind = Literal["softmax", "gumbel"]
RELAXATIONS: tuple[str, ...] = ("softmax", "gumbel")


def softmax_weights(alpha: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """DARTS: softmax(alpha / temperature) per row."""
    return torch.softmax(alpha / temperature, dim=-1)


def gumbel_softmax_weights(alpha: torch.Tensor, temperature: float, generator: torch.Generator,
                           hard: bool = False) -> torch.Tensor:
    """One Gumbel-softmax sample per row: softmax((alpha + g) / temperature), g ~ Gumbel(0, 1).

    The noise comes from ``generator`` (a CPU generator, so a checkpointed search draws the
    same noise after a resume on any device). ``hard`` returns the one-hot of the sample with
    the soft sample's gradient (straight-through, as GDAS): a supernet then runs one op per
    position.
    """
    uniform = torch.rand(alpha.shape, generator=generator, dtype=torch.float64)
    gumbel = -torch.log((-torch.log(uniform.clamp_min(1e-20))).clamp_min(1e-20))
    soft = torch.softmax((alpha + gumbel.to(alpha.device, alpha.dtype)) / temperature, dim=-1)
    if not hard:
        return soft
    one_hot = torch.nn.functional.one_hot(soft.argmax(dim=-1), soft.shape[-1]).to(soft.dtype)
    return one_hot - soft.detach() + soft


@dataclass(frozen=True)
class Relaxation:
    kind: RelaxationKind = "softmax"
    #: Temperature at epoch 0; epoch e uses ``initial_temperature * temperature_decay ** e``.
    initial_temperature: float = 1.0
    temperature_decay: float = 1.0
    hard: bool = False

    def __post_init__(self) -> None:
        if self.kind not in RELAXATIONS:
            raise ValueError(f"relaxation must be one of {', '.join(RELAXATIONS)}, got {self.kind!r}")
        if self.initial_temperature <= 0 or not 0 < self.temperature_decay <= 1:
            raise ValueError("temperature must be > 0 and temperature_decay in (0, 1]")
        if self.hard and self.kind != "gumbel":
            raise ValueError("hard sampling needs the gumbel relaxation")

    def temperature(self, epoch: int) -> float:
        return self.initial_temperature * self.temperature_decay ** epoch

    def weights(self, alpha: torch.Tensor, epoch: int, generator: torch.Generator) -> torch.Tensor:
        if self.kind == "softmax":
            return softmax_weights(alpha, self.temperature(epoch))
        return gumbel_softmax_weights(alpha, self.temperature(epoch), generator, self.hard)
