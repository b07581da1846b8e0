"""The images a supernet search trains on: the job dataset's training split, cut in two halves
(weights learn on one, architecture parameters on the other, as DARTS does), so the
validation split the evaluator scores derived architectures on stays unseen by the search.

Datasets: ``digits`` (scikit-learn's, built in), an ``.npz`` with ``images`` and ``labels``
(read by ``nas.evaluators.load_dataset``), or a folder with one sub-folder of images per class
(needs Pillow).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas.evaluators import DatasetError, load_dataset
from nas.evaluators.train import ImageDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass
class SearchData:
    x_weights: torch.Tensor
    y_weights: torch.Tensor
    x_alpha: torch.Tensor
    y_alpha: torch.Tensor
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.x_weights.shape[1])

    def to(self, device: torch.device) -> SearchData:
        return SearchData(self.x_weights.to(device), self.y_weights.to(device), self.x_alpha.to(device),
                          self.y_alpha.to(device), self.num_classes)


def check_dataset_name(name: str) -> None:
    """Refuse what can never be a dataset (the file itself is read where the job runs)."""
    if name != "digits" and not name.endswith(".npz") and not Path(name).is_dir():
        raise DatasetError(f"dataset must be 'digits', an .npz file or a folder of class folders, got {name!r}")


def load_image_folder(folder: Path, seed: int, val_fraction: float = 0.25) -> ImageDataset:
    """One sub-folder per class (sorted names are labels 0..k-1); images resized to the first one's size."""
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError("reading an image folder needs Pillow: pip install pillow "
                           "(or pack the images into an .npz with 'images' and 'labels')") from None
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DatasetError(f"{folder} needs one sub-folder per class (at least two)")
    images: list[np.ndarray] = []
    labels: list[int] = []
    size: tuple[int, int] | None = None
    for label, class_dir in enumerate(classes):
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(path) as img:
                img = img.convert("RGB")
                size = size or img.size
                images.append(np.asarray(img.resize(size), dtype=np.float32).transpose(2, 0, 1) / 255.0)
            labels.append(label)
    if not images:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    x, y = np.stack(images), np.asarray(labels, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(len(x) * val_fraction))
    return ImageDataset(x[order[n_val:]], y[order[n_val:]], x[order[:n_val]], y[order[:n_val]])


def load_search_data(name: str, seed: int) -> SearchData:
    """The two halves of ``name``'s training split (the split ``load_dataset`` makes with ``seed``)."""
    dataset = load_image_folder(Path(name), seed) if Path(name).is_dir() else load_dataset(name, seed=seed)
    if len(dataset.x_train) < 4:
        raise DatasetError(f"dataset {name!r} has too few training images to split ({len(dataset.x_train)})")
    order = np.random.default_rng(seed + 1).permutation(len(dataset.x_train))
    half = len(order) // 2
    w, a = order[:half], order[half:]
    x, y = dataset.x_train, dataset.y_train
    return SearchData(torch.from_numpy(np.ascontiguousarray(x[w])), torch.from_numpy(y[w]),
                      torch.from_numpy(np.ascontiguousarray(x[a])), torch.from_numpy(y[a]), dataset.num_classes)
