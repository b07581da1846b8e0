"""First-order bilevel supernet search for one latency weight, one epoch at a time, checkpointable.

Each step: the architecture parameters take an Adam step on a batch of the alpha half
(cross-entropy combined with the expected table latency by the penalty), then the supernet
weights take an SGD step on a batch of the weights half (cross-entropy only), both through
the same relaxation. The first ``warmup_epochs`` train the weights alone. In hard-constraint
mode the latency weight doubles (``penalty_growth``) after every epoch whose derived
architecture is slower than the limit, and the search runs on past ``epochs`` (up to three
times as many) until it is not.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.differentiable.data import SearchData
from nas.differentiable.latency_loss import ExpectedLatency, LatencyPenalty
from nas.differentiable.relaxation import Relaxation


@dataclass(frozen=True)
class SearchConfig:
    epochs: int = 8
    warmup_epochs: int = 2
    batch_size: int = 64
    weight_lr: float = 0.05
    weight_decay: float = 3e-4
    alpha_lr: float = 0.03
    alpha_weight_decay: float = 1e-3
    relaxation: Relaxation = field(default_factory=Relaxation)
    penalty: LatencyPenalty = field(default_factory=LatencyPenalty)
    #: Hard-constraint mode when set: raise the latency weight until the derived architecture is under it.
    latency_limit_ms: float | None = None
    penalty_growth: float = 2.0
    #: The latency weight hard-constraint mode starts from when the sweep's weight is 0.
    hard_start_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.epochs < 1 or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError("need epochs >= 1 and 0 <= warmup_epochs < epochs")
        if self.batch_size < 1 or min(self.weight_lr, self.alpha_lr) <= 0:
            raise ValueError("batch_size and learning rates must be positive")
        if self.penalty_growth <= 1 or self.hard_start_weight <= 0:
            raise ValueError("penalty_growth must be > 1 and hard_start_weight > 0")

    @property
    def max_epochs(self) -> int:
        return self.epochs if self.latency_limit_ms is None else 3 * self.epochs


@dataclass
class EpochReport:
    epoch: int  # epochs done, 1-based
    temperature: float
    latency_weight: float
    expected_latency_ms: float
    derived_codes: list[int]
    derived_latency_ms: float
    weights_accuracy: float  # % on the weights half during the epoch
    alpha_accuracy: float | None  # % on the alpha half (None in warm-up)


#: alpha of a padding entry: softmax and Gumbel-softmax give it weight 0.0 in float32, and
#: weight decay moves it by at most alpha_lr per step, nowhere near a real choice's.
PADDING_LOGIT = -1e4


class SupernetSearch:
    def __init__(self, supernet: nn.Module, latency: ExpectedLatency, data: SearchData, config: SearchConfig,
                 *, seed: int, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.net = supernet.to(self.device)
        self.latency, self.config = latency, config
        self.data = data.to(self.device)
        self.generator = torch.Generator().manual_seed(seed)
        init = 1e-3 * torch.randn(supernet.positions, supernet.choices, generator=self.generator)
        invalid = getattr(supernet, "invalid", None)  # padding where a position has fewer choices
        if invalid is not None:
            init = init.masked_fill(invalid.cpu(), PADDING_LOGIT)
        self.alpha = nn.Parameter(init.to(self.device))
        self.weight_opt = torch.optim.SGD(self.net.parameters(), lr=config.weight_lr, momentum=0.9, nesterov=True,
                                          weight_decay=config.weight_decay)
        self.alpha_opt = torch.optim.Adam([self.alpha], lr=config.alpha_lr, betas=(0.5, 0.999),
                                          weight_decay=config.alpha_weight_decay)
        self.epoch = 0
        self.latency_weight = config.penalty.weight
        self.last: EpochReport | None = None

    @property
    def finished(self) -> bool:
        c = self.config
        if self.epoch >= c.max_epochs:
            return True
        if self.epoch < c.epochs:
            return False
        return self.last is None or c.latency_limit_ms is None or self.last.derived_latency_ms <= c.latency_limit_ms

    def derived_codes(self) -> np.ndarray:
        return self.alpha.detach().argmax(dim=1).cpu().numpy()

    def probabilities(self) -> np.ndarray:
        return torch.softmax(self.alpha.detach(), dim=1).cpu().numpy()

    def _batches(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.generator)

    def run_epoch(self) -> EpochReport:
        c = self.config
        relax = c.relaxation
        hard = relax.hard
        search_alpha = self.epoch >= c.warmup_epochs
        lr = c.weight_lr * 0.5 * (1 + math.cos(math.pi * min(self.epoch, c.epochs - 1) / c.epochs))
        for group in self.weight_opt.param_groups:
            group["lr"] = lr
        d = self.data
        w_order, a_order = self._batches(len(d.x_weights)), self._batches(len(d.x_alpha))
        steps = max(1, len(w_order) // c.batch_size)
        loss_fn = nn.CrossEntropyLoss()
        correct_w = seen_w = correct_a = seen_a = 0
        self.net.train()
        for step in range(steps):
            if search_alpha:
                idx = a_order[(step * c.batch_size) % len(a_order):][:c.batch_size].to(self.device)
                mix = relax.weights(self.alpha, self.epoch, self.generator)
                logits = self.net(d.x_alpha[idx], mix, hard)
                loss = c.penalty.loss(loss_fn(logits, d.y_alpha[idx]), self.latency(mix), self.latency_weight)
                self.alpha_opt.zero_grad()
                loss.backward()
                self.alpha_opt.step()
                correct_a += int((logits.argmax(1) == d.y_alpha[idx]).sum())
                seen_a += len(idx)
            idx = w_order[step * c.batch_size:(step + 1) * c.batch_size].to(self.device)
            mix = relax.weights(self.alpha.detach(), self.epoch, self.generator)
            logits = self.net(d.x_weights[idx], mix, hard)
            loss = loss_fn(logits, d.y_weights[idx])
            self.weight_opt.zero_grad()
            loss.backward()
            self.weight_opt.step()
            correct_w += int((logits.argmax(1) == d.y_weights[idx]).sum())
            seen_w += len(idx)
        temperature = relax.temperature(self.epoch)
        self.epoch += 1
        codes = self.derived_codes()
        with torch.no_grad():
            expected = float(self.latency(torch.softmax(self.alpha, dim=1)))
        report = EpochReport(self.epoch, temperature, self.latency_weight, expected, codes.tolist(),
                             self.latency.of_codes(codes), 100.0 * correct_w / max(1, seen_w),
                             100.0 * correct_a / seen_a if seen_a else None)
        if search_alpha and c.latency_limit_ms is not None and report.derived_latency_ms > c.latency_limit_ms:
            self.latency_weight = (self.latency_weight * c.penalty_growth if self.latency_weight > 0
                                   else c.hard_start_weight)
        self.last = report
        return report

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe: the tensors (alpha, weights, both optimisers, the generator) as one base64 blob."""
        buffer = io.BytesIO()
        torch.save({"alpha": self.alpha.detach().cpu(), "net": self.net.state_dict(),
                    "weight_opt": self.weight_opt.state_dict(), "alpha_opt": self.alpha_opt.state_dict(),
                    "generator": self.generator.get_state()}, buffer)
        return {"epoch": self.epoch, "latency_weight": self.latency_weight,
                "last": None if self.last is None else self.last.__dict__,
                "tensors": base64.b64encode(buffer.getvalue()).decode("ascii")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        blob = torch.load(io.BytesIO(base64.b64decode(state["tensors"])), map_location=self.device,
                          weights_only=True)
        with torch.no_grad():
            self.alpha.copy_(blob["alpha"])
        self.net.load_state_dict(blob["net"])
        self.weight_opt.load_state_dict(blob["weight_opt"])
        self.alpha_opt.load_state_dict(blob["alpha_opt"])
        self.generator.set_state(blob["generator"])
        self.epoch = int(state["epoch"])
        self.latency_weight = float(state["latency_weight"])
        self.last = None if state["last"] is None else EpochReport(**state["last"])
