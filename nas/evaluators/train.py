"""Short, seeded real training on a small image dataset (scikit-learn's digits built in)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.evaluators.base import Evaluation, Evaluator
from search_spaces.base import SearchSpace


class DatasetError(ValueError):
    pass


@dataclass
class ImageDataset:
    """Images (n, channels, h, w) float32 and int labels, split into train and validation."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max()) + 1)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])


def at_resolution(images: np.ndarray, resolution: int | None):  # -> torch.Tensor
    """``images`` as a tensor, resized (bilinear) to ``resolution`` x ``resolution`` when given.

    Resized per batch, not once per dataset: a dataset upsampled to 224 px would not fit in memory.
    """
    import torch

    x = torch.from_numpy(images)
    if resolution is None or x.shape[-2:] == (resolution, resolution):
        return x
    return torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


def load_dataset(name: str, seed: int = 0, val_fraction: float = 0.25) -> ImageDataset:
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = (digits.images / 16.0).astype(np.float32)[:, None]
        y = digits.target.astype(np.int64)
    else:
        path = Path(name)
        if path.suffix != ".npz" or not path.is_file():
            raise DatasetError(f"dataset must be 'digits' or an existing .npz file, got {name!r}")
        with np.load(path) as data:
            if "images" not in data or "labels" not in data:
                raise DatasetError(f"{path} needs arrays 'images' (n,h,w[,c]) and 'labels' (n,)")
            x, y = data["images"].astype(np.float32), data["labels"].astype(np.int64)
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3):
            x = x.transpose(0, 3, 1, 2)
        if x.max() > 1.5:
            x = x / 255.0
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(len(x) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return ImageDataset(x[train], y[train], x[val], y[val])


class TrainEvaluator(Evaluator):
    """Trains each candidate from scratch for a few epochs; accuracy is validation accuracy in %.

    The candidate is the space's network as defined (its channels and depth; the dataset's
    classes and input channels). ``resolution`` resizes the images it trains and validates on
    (the space's own input resolution to train as deployed, a smaller one to train cheaply);
    without it the dataset's images are used as they are.
    """

    def __init__(self, space: SearchSpace, dataset: ImageDataset, *, seed: int = 0, epochs: int = 3,
                 width: int = 8, cells_per_stage: int = 1, batch_size: int = 64,
                 learning_rate: float = 0.05, resolution: int | None = None):
        self.space, self.data, self.seed = space, dataset, seed
        self.epochs, self.width, self.cells = epochs, width, cells_per_stage
        self.batch_size, self.lr, self.resolution = batch_size, learning_rate, resolution

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        return [self._train(a) for a in archs]

    def _train(self, arch: str) -> Evaluation:
        import torch
        from torch import nn

        from nas import threads

        used = threads.apply()
        torch.manual_seed(self.seed * 1_000_003 + zlib.crc32(arch.encode()))
        model = self.space.build_model(arch, num_classes=self.data.num_classes,
                                       in_channels=self.data.in_channels, width=self.width,
                                       cells_per_stage=self.cells)
        opt = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9, nesterov=True)
        x, y = self.data.x_train, torch.from_numpy(self.data.y_train)
        steps = self.epochs * max(1, len(x) // self.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        gen = torch.Generator().manual_seed(self.seed)
        loss_fn = nn.CrossEntropyLoss()
        model.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x) - self.batch_size + 1, self.batch_size):
                idx = order[start:start + self.batch_size]
                opt.zero_grad()
                loss = loss_fn(model(at_resolution(x[idx.numpy()], self.resolution)), y[idx])
                if not torch.isfinite(loss):
                    return Evaluation(None, "training diverged (non-finite loss)")
                threads.backward(loss)
                opt.step()
                sched.step()
        model.eval()
        with torch.no_grad():
            pred = np.concatenate([
                model(at_resolution(self.data.x_val[i:i + self.batch_size], self.resolution)).argmax(dim=1).numpy()
                for i in range(0, len(self.data.x_val), self.batch_size)])
        metrics = {"accuracy": float((pred == self.data.y_val).mean() * 100.0), "torch_threads": float(used)}
        if self.resolution is not None:
            metrics["train_resolution"] = float(self.resolution)
        return Evaluation(metrics)
