"""Plug-in registries: strategies and evaluator kinds, found by name.

A plug-in registers itself with ``@REGISTRY.register`` where it is defined.
Each registry names the module whose import registers the built-in plug-ins
and imports it on first lookup. That is why this module sits below both the
job spec (which only needs the valid *names*, to validate and document a spec)
and the plug-ins (which read the spec): ``nas.spec`` never imports a strategy,
so the two are not an import cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> plug-in mapping (read-only to users; plug-ins add themselves with ``register``)."""

    def __init__(self, kind: str, builtins: str, key: Callable[[T], str]):
        self.kind = kind
        self._builtins = builtins
        self._key = key
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, item: T) -> T:
        """Add ``item`` under ``key(item)`` (usable as a class decorator); a second one of that name is an error."""
        name = self._key(item)
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def _all(self) -> dict[str, T]:
        if not self._loaded:
            importlib.import_module(self._builtins)
            self._loaded = True
        return self._items

    def __getitem__(self, name: str) -> T:
        try:
            return self._all()[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._all())

    def get(self, name: str) -> T | None:
        return self._all().get(name)

    def names(self) -> list[str]:
        return sorted(self._all())

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._all().items())

    def values(self) -> list[T]:
        return [v for _, v in self.items()]


def _name_of(plugin: object) -> str:
    return str(getattr(plugin, "name"))


#: Search strategies by ``Strategy.name``; the built-in ones are in ``nas.strategies``.
STRATEGIES: Registry[type] = Registry("strategy", "nas.strategies", _name_of)
#: Evaluator kinds (``EvaluatorKind`` classes) by the ``type`` of their spec; built-ins in ``nas.evaluators.kinds``.
EVALUATORS: Registry[type] = Registry("evaluator type", "nas.evaluators.kinds", _name_of)
