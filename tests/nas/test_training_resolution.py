"""The train and proxy evaluators' ``resolution``: the candidate as defined, on resized images."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from nas.evaluators import ProxyEvaluator, TrainEvaluator, load_dataset
from nas.evaluators.train import ImageDataset
from nas.spec import JobSpec
from search_spaces import get_space


def few_digits() -> ImageDataset:
    """64 training and 32 validation images of scikit-learn's digits (8 x 8): a quick training."""
    data = load_dataset("digits")
    return ImageDataset(data.x_train[:64], data.y_train[:64], data.x_val[:32], data.y_val[:32])


def input_sizes(evaluator: Any, arch: str, score: str) -> set[tuple[int, ...]]:
    """The input shapes the network saw while ``evaluator.<score>(arch)`` ran."""
    space = evaluator.space
    seen: set[tuple[int, ...]] = set()
    build = space.build_model

    def recording_build(*args: Any, **kwargs: Any) -> Any:
        model = build(*args, **kwargs)
        model.register_forward_pre_hook(lambda _m, inputs: seen.add(tuple(inputs[0].shape[1:])))
        return model

    space.build_model = recording_build
    try:
        result = getattr(evaluator, score)(arch)
    finally:
        del space.build_model
    assert result.metrics is not None, result.error
    return seen


@pytest.mark.parametrize("resolution", [None, 20])
def test_training_sees_the_images_at_the_resolution_asked_for(resolution: int | None) -> None:
    space = get_space("mcunet-128")
    arch = space.sample(np.random.default_rng(0))
    evaluator = TrainEvaluator(space, few_digits(), epochs=1, batch_size=32, resolution=resolution)
    sizes = input_sizes(evaluator, arch, "_train")
    assert sizes == {(1, resolution or 8, resolution or 8)}
    metrics = evaluator.evaluate([arch])[0].metrics
    assert metrics is not None and 0 <= metrics["accuracy"] <= 100
    assert metrics.get("train_resolution") == (None if resolution is None else float(resolution))


def test_a_proxy_scores_the_resized_minibatch() -> None:
    space = get_space("mcunet-128")
    arch = space.sample(np.random.default_rng(1))
    evaluator = ProxyEvaluator(space, few_digits(), proxy="grad_norm", batch_size=8, resolution=32)
    assert input_sizes(evaluator, arch, "score") == {(1, 32, 32)}
    assert evaluator.score(arch).metrics["train_resolution"] == 32.0  # type: ignore[index]


@pytest.mark.parametrize("kind", ["train", "proxy"])
def test_a_resolution_out_of_bounds_is_refused_naming_the_field(kind: str) -> None:
    spec = {"space": "mcunet-128", "budget": {"evaluations": 2},
            "objectives": [{"metric": "accuracy", "goal": "maximize"}],
            "evaluator": {"type": kind, "dataset": "digits", "resolution": 2048}}
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(spec)
    assert any(e["loc"][-1] == "resolution" and e["loc"][0] == "evaluator" for e in caught.value.errors())
