"""Search spaces by name. Imports nothing of the service."""

from search_spaces.base import InvalidArchitecture, SearchSpace
from search_spaces.fbnet import FBNetSpace
from search_spaces.nb201 import NB201Space

SPACES: dict[str, SearchSpace] = {s.name: s for s in (NB201Space(), FBNetSpace())}


def get_space(name: str) -> SearchSpace:
    try:
        return SPACES[name]
    except KeyError:
        raise KeyError(f"unknown search space {name!r}; valid: {', '.join(sorted(SPACES))}") from None


__all__ = ["SPACES", "InvalidArchitecture", "SearchSpace", "get_space"]
