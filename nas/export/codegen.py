"""Write an architecture as a standalone ``model.py`` that imports only torch.

The file is a docstring, the space's network body (its ``network_source`` hook:
code that imports only torch) and a footer that pins the architecture and the network's size. It can
also be loaded back as a module here (``load_module``) to export ONNX from the very
code the user receives, not from hwnas's own builder.
"""

from __future__ import annotations

import importlib.util
import types
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from search_spaces.base import MissingHook, SearchSpace

@dataclass(frozen=True)
class ModelConfig:
    """The network size the space's latency tables describe, so predictions apply."""

    kwargs: dict[str, int] = field(default_factory=dict)
    input_shape: tuple[int, ...] = (1, 3, 32, 32)


class ExportError(ValueError):
    """An export that cannot be made: unknown space or format, bad architecture, weights that do not fit."""


def config_for(space: SearchSpace) -> ModelConfig:
    """``model_config()`` and the input shape at batch 1, from the space."""
    return ModelConfig(dict(space.model_config()), tuple(space.input_shape(1)))


def choice_names(space: SearchSpace, arch: str) -> list[str]:
    """The op or block chosen at each position, in the order the network body takes them."""
    return space.choice_names(arch)


FOOTER = '''

# --- this architecture -------------------------------------------------------
SPACE = {space!r}
ARCH = {arch!r}
CANONICAL_HASH = {canonical_hash!r}
CHOICES = {choices!r}
CONFIG = {config!r}
INPUT_SHAPE = {input_shape!r}


def build_model() -> nn.Module:
    """The network in eval mode, freshly initialised (seed torch first for repeatable weights)."""
    return Network(list(CHOICES), **CONFIG).eval()


def load_model(weights: str | None = None) -> nn.Module:
    """``build_model()``, with a state_dict file (``weights.pt`` of the export) loaded when given."""
    model = build_model()
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


if __name__ == "__main__":
    import os

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.pt")
    model = load_model(here if os.path.exists(here) else None)
    with torch.inference_mode():
        logits = model(torch.randn(*INPUT_SHAPE))
    print(f"{{SPACE}} {{CANONICAL_HASH}}: output {{tuple(logits.shape)}}")
'''


def standalone_source(space: SearchSpace, arch: str, *, version: str) -> str:
    """The text of ``model.py`` for ``arch`` (already normalised by the caller)."""
    config = config_for(space)
    try:
        body = space.network_source(arch)
    except MissingHook as exc:
        raise ExportError(str(exc)) from None
    doc = (f'"""{space.name} architecture exported by hwnas {version}: a standalone network.\n\n'
           f"    {arch}\n\n"
           "Imports only torch. ``build_model()`` gives the network in eval mode;\n"
           "``load_model(\"weights.pt\")`` loads the export's trained weights when it has them.\n"
           f"Input: a float tensor of shape {config.input_shape} (N, C, H, W).\n"
           '"""\n\nfrom __future__ import annotations\n\n')
    footer = FOOTER.format(space=space.name, arch=arch, canonical_hash=space.canonical_hash(arch),
                           choices=tuple(choice_names(space, arch)), config=config.kwargs,
                           input_shape=config.input_shape)
    return doc + body + footer


def load_module(source: str) -> types.ModuleType:
    """Execute generated ``model.py`` text as a fresh module (never put in ``sys.modules``)."""
    module = types.ModuleType(f"hwnas_export_{uuid.uuid4().hex}")
    exec(compile(source, "<hwnas export model.py>", "exec"), module.__dict__)  # noqa: S102 - code we generated
    return module


def load_module_file(path: Path) -> types.ModuleType:
    """Import an exported ``model.py`` from disk under a fresh name."""
    spec = importlib.util.spec_from_file_location(f"hwnas_export_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise ExportError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
