"""The files an agent measures: each architecture exported once with nas/export, cached by its hash."""

from __future__ import annotations

import shutil
from pathlib import Path

from nas.devices.runtimes import ModelRef
from nas.export.core import FILES, export_architecture, read_manifest
from search_spaces import get_space


def model_for(space_name: str, arch: str, fmt: str | None, cache_dir: Path) -> ModelRef:
    """``arch`` exported as ``fmt`` (``onnx``/``torch``; None: no file) under ``cache_dir``.

    The cache key is the space's canonical hash, so an isomorphic architecture reuses
    the file; a half-written export (no manifest) is made again.
    """
    space = get_space(space_name)
    if fmt is None:
        return ModelRef(space.name, arch, None, _input_shape(space_name))
    out = cache_dir / space.name / f"{space.canonical_hash(arch)}-{fmt}"
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        if out.exists():
            shutil.rmtree(out)
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        export_architecture(space.name, arch, fmt, tmp, tables=[], tables_source="none (measured by an agent)")
        tmp.rename(out)
    manifest = read_manifest(out)
    return ModelRef(space.name, arch, out / FILES[fmt], tuple(manifest["model"]["input_shape"]))


def _input_shape(space_name: str) -> tuple[int, ...]:
    from nas.export.codegen import config_for

    try:
        return config_for(get_space(space_name)).input_shape
    except ValueError:
        return (1, 3, 32, 32)
