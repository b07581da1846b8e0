"""Search spaces by name: code spaces (nb201) and ``hwnas.space/1`` definition files.

Imports nothing of the service. ``SPACES`` holds every registered space by name: the
code spaces, the definition files shipped in ``search_spaces/definitions/``, and
whatever a caller registers (``register_space``; the service registers tenants' spaces).
"""

from __future__ import annotations

from pathlib import Path

from search_spaces.base import InvalidArchitecture, MissingHook, Probe, ProfilePlan, SearchSpace
from search_spaces.definition import (FORMAT, SpaceDefinitionError, load_space_file, parse_space_definition,
                                      register_type)
from search_spaces.nb201 import NB201Space

DEFINITIONS_DIR = Path(__file__).parent / "definitions"
#: The space a command or example uses when none is named (the one the shipped benchmark covers).
DEFAULT_SPACE = NB201Space.name

SPACES: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace, *, replace: bool = False) -> SearchSpace:
    """Add ``space`` to ``SPACES`` under its name. Registering a different space (by content
    hash) under a taken name needs ``replace=True``; the same one again is a no-op."""
    old = SPACES.get(space.name)
    if old is not None and not replace and old.content_hash != space.content_hash:
        raise ValueError(f"search space {space.name!r} is already registered with another definition")
    SPACES[space.name] = space
    return space


def get_space(name: str) -> SearchSpace:
    try:
        return SPACES[name]
    except KeyError:
        raise KeyError(f"unknown search space {name!r}; valid: {', '.join(sorted(SPACES))}") from None


def resolve_space(name_or_path: str) -> SearchSpace:
    """A registered space's name, or the path of a definition file (``.json``/``.yaml``).

    For CLIs' ``--space NAME|FILE``: a value that names an existing file, or ends in
    .json/.yaml/.yml, is read as a definition (SpaceDefinitionError on any problem);
    anything else must be a registered name (KeyError listing the valid ones).
    """
    path = Path(name_or_path)
    if name_or_path in SPACES and not path.is_file():
        return SPACES[name_or_path]
    if path.suffix.lower() in (".json", ".yaml", ".yml") or path.is_file():
        return load_space_file(path)
    return get_space(name_or_path)


def _register_builtin() -> None:
    from search_spaces import blocks  # noqa: F401 - registers the "blocks" type

    register_space(NB201Space())
    for path in sorted(DEFINITIONS_DIR.glob("*.json")):
        register_space(load_space_file(path))


_register_builtin()

__all__ = ["DEFAULT_SPACE", "DEFINITIONS_DIR", "FORMAT", "SPACES", "InvalidArchitecture", "MissingHook", "Probe", "ProfilePlan",
           "SearchSpace", "SpaceDefinitionError", "get_space", "load_space_file", "parse_space_definition",
           "register_space", "register_type", "resolve_space"]
