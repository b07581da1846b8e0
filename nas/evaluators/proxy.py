"""Zero-cost proxies: score an untrained network from one minibatch (Abdelfattah et al., ICLR 2021).

- ``synflow``: sum of |theta * dR/dtheta| with all weights made positive and an
  all-ones input, R the summed output (Tanaka et al., 2020); data-free.
- ``naswot``: log|det K| of the Hamming-similarity kernel of the minibatch's
  ReLU activation patterns (Mellor et al., ICML 2021).
- ``jacob_cov``: score of the correlation of input Jacobians across the
  minibatch (Mellor et al., 2020 preprint).
- ``snip``: sum of |theta * dL/dtheta| for the cross-entropy loss (Lee et al., 2019).
- ``grad_norm``: sum over weight tensors of ||dL/dtheta||.

The score is reported as ``accuracy`` (the objective a job maximises: only its
ranking matters) and as ``proxy_<name>``. Initialisation and the minibatch are
seeded, so a score is a pure function of (architecture, dataset, seed).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nas import threads
from nas.evaluators.base import Evaluation, Evaluator
from nas.evaluators.train import ImageDataset, at_resolution
from search_spaces.base import SearchSpace

PROXIES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm")


def _weights(model: Any) -> list[Any]:
    from torch import nn

    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def synflow(model: Any, x: Any, y: Any) -> float:
    import torch

    model = model.double().eval()  # eval: BatchNorm with fresh statistics is the identity
    with torch.no_grad():  # the model is built for this score only: no need to restore signs
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    model.zero_grad()
    out = model(torch.ones((1, *x.shape[1:]), dtype=torch.float64))
    threads.backward(out.sum())
    total = sum(float((w * w.grad).detach().abs().sum()) for w in _weights(model) if w.grad is not None)
    return math.log(total) if total > 0 else -math.inf  # log: the raw value overflows ranks' display


def naswot(model: Any, x: Any, y: Any) -> float:
    import torch
    from torch import nn

    n = len(x)
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(_: Any, inputs: tuple[Any, ...], __: Any) -> None:
        codes = (inputs[0].reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model.train()(x)
    for h in handles:
        h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


def jacob_cov(model: Any, x: Any, y: Any) -> float:
    import torch

    x = x.clone().requires_grad_(True)
    model.train()
    out = model(x)
    out.backward(torch.ones_like(out))
    jac = x.grad.reshape(len(x), -1).double()
    corr = torch.corrcoef(jac)
    corr = torch.nan_to_num(corr, nan=0.0)
    eig = torch.linalg.eigvalsh(corr).clamp_min(0)
    k = 1e-5
    return float(-torch.sum(torch.log(eig + k) + 1.0 / (eig + k)))


def _loss_grads(model: Any, x: Any, y: Any) -> list[Any]:
    import torch.nn.functional as F

    model.train().zero_grad()
    threads.backward(F.cross_entropy(model(x), y))
    return _weights(model)


def snip(model: Any, x: Any, y: Any) -> float:
    return sum(float((w * w.grad).detach().abs().sum()) for w in _loss_grads(model, x, y) if w.grad is not None)


def grad_norm(model: Any, x: Any, y: Any) -> float:
    return sum(float(w.grad.detach().norm()) for w in _loss_grads(model, x, y) if w.grad is not None)


SCORES: dict[str, Callable[[Any, Any, Any], float]] = {
    "synflow": synflow, "naswot": naswot, "jacob_cov": jacob_cov, "snip": snip, "grad_norm": grad_norm}


class ProxyEvaluator(Evaluator):
    """Scores each architecture with one zero-cost proxy on a seeded minibatch of ``dataset``."""

    def __init__(self, space: SearchSpace, dataset: ImageDataset, *, proxy: str = "naswot", seed: int = 0,
                 batch_size: int = 64, width: int = 16, cells_per_stage: int = 5, resolution: int | None = None):
        if proxy not in SCORES:
            raise ValueError(f"unknown proxy {proxy!r}; valid: {', '.join(PROXIES)}")
        self.space, self.proxy, self.seed = space, proxy, seed
        self.width, self.cells, self.resolution = width, cells_per_stage, resolution
        rows = np.random.default_rng(seed).permutation(len(dataset.x_train))[:batch_size]
        self.x, self.y = dataset.x_train[rows], dataset.y_train[rows]
        self.num_classes, self.in_channels = dataset.num_classes, dataset.in_channels

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        return [self.score(a) for a in archs]

    def score(self, arch: str) -> Evaluation:
        import torch

        from nas import threads

        used = threads.apply()
        torch.manual_seed(self.seed * 1_000_003 + zlib.crc32(arch.encode()))
        model = self.space.build_model(arch, num_classes=self.num_classes, in_channels=self.in_channels,
                                       width=self.width, cells_per_stage=self.cells)
        value = SCORES[self.proxy](model, at_resolution(self.x, self.resolution), torch.from_numpy(self.y))
        if not math.isfinite(value):
            return Evaluation(None, f"proxy {self.proxy} is not finite for this architecture")
        metrics = {"accuracy": value, f"proxy_{self.proxy}": value, "torch_threads": float(used)}
        if self.resolution is not None:
            metrics["train_resolution"] = float(self.resolution)
        return Evaluation(metrics)
