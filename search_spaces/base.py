"""The search-space interface: a space owns everything that depends on what its networks are.

Strategies never look inside an architecture string; they work on the integer
encoding (one choice index per position, ``dims[i]`` choices at position ``i``)
or call the space's own operators. Everything else the service does with a space
(latency-table keys, static metrics, the torch network, the supernet, profiling,
export, surrogate features, the dashboard diagram) goes through the hooks below,
so no code outside ``search_spaces/`` names a space.

Hooks, and who calls them when:

==================  ======================================================================
``encode/decode``   every strategy, the API and the CLI, on every architecture they touch
``sample/mutate/``  strategies' ``ask``
``neighbours``
``canonical_hash``  the engine, before evaluating (isomorphic duplicates are evaluated once)
``signatures``      ``op_signatures`` / ``all_op_signatures`` / ``signature_matrix``: latency
                    tables (``check_covers`` at load), the estimator, profiling, fitting
``footprint``       static metrics (params, MACs, peak memory, model size), per batch of codes
``build_model``     the ``train`` / ``proxy`` evaluators, profiling's end-to-end validation,
                    ``tables measure-export`` of a json export
``build_supernet``  the differentiable strategies (``darts``, ``fbnet``) at each sweep point
``profile_plan``    ``hwnas tables profile``: the modules to time for every signature
``network_source``  ``hwnas export``: the body of a standalone ``model.py`` (imports only torch)
``features``        surrogate-model strategies (``gp``, ``bananas``-style) on each refit
``diagram``         the dashboard's architecture page (SVG markup)
``is_degenerate``   strategies that derive architectures (differentiable ones) skip those that
                    compute nothing useful (default: none are)
``content_hash``    a job pins it at submit, so a re-registered definition never changes it
==================  ======================================================================

A hook a code-written space lacks raises :class:`MissingHook` (a ``NotImplementedError``
naming the space and the hook); the engine fails the job with it instead of retrying.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np


class InvalidArchitecture(ValueError):
    """An architecture string that does not parse in this space."""


class MissingHook(NotImplementedError):
    """A space (usually a code-written one) does not implement a hook the caller needs.

    ``space`` and ``hook`` name what is missing; a job that hits it fails with this
    message (it is not transient, so nothing retries it).
    """

    def __init__(self, space: str, hook: str, detail: str = ""):
        self.space, self.hook = space, hook
        message = f"search space {space!r} has no {hook!r} hook"
        super().__init__(f"{message}: {detail}" if detail else message)


@dataclass
class Probe:
    """One module ``tables profile`` times on one input shape (batch included)."""

    module: Any  # torch.nn.Module
    shape: tuple[int, ...]


@dataclass
class ProfilePlan:
    """What ``tables profile`` times for a space, and how the timings make table entries.

    ``probes``: key -> module and input. ``entries``: op signature -> {probe key:
    multiplicity}; an entry's latency is the sum of its probes' times by multiplicity (a
    negative one subtracts, e.g. identities inside a whole-cell probe). Every signature
    of ``all_op_signatures()`` must have an entry.
    """

    probes: dict[str, Probe]
    entries: dict[str, dict[str, float]] = field(default_factory=dict)


class SearchSpace(ABC):
    name: str
    description: str
    #: Names of the choices at each position; ``dims`` derives from it.
    choices: Sequence[Sequence[str]]
    #: The network the latency tables and static metrics describe: input (channels,
    #: square resolution) and classes. ``build_model`` builds this size unless told otherwise.
    input_channels: int = 3
    input_resolution: int = 32
    num_classes: int = 10

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """(N, C, H, W) of the network's input."""
        return (batch, self.input_channels, self.input_resolution, self.input_resolution)

    def model_config(self) -> dict[str, Any]:
        """Keyword arguments of ``build_model`` (and of the exported ``Network``) for the network
        the tables describe: at least ``num_classes`` and ``in_channels``."""
        return {"num_classes": self.num_classes, "in_channels": self.input_channels}

    def definition(self) -> dict[str, Any]:
        """A JSON-able description the content hash is taken of. Definition-file spaces return
        their (normalised) definition; code spaces their name, class and ``version``."""
        return {"format": "hwnas.space/1", "name": self.name, "type": "code",
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "version": getattr(self, "version", 1)}

    @property
    def content_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of ``definition()``: what a job pins at submit."""
        text = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def dims(self) -> list[int]:
        return [len(c) for c in self.choices]

    @property
    def size(self) -> int:
        return int(np.prod([float(d) for d in self.dims]))

    @abstractmethod
    def encode(self, arch: str) -> np.ndarray:
        """Architecture string -> int vector of choice indices; raises InvalidArchitecture."""

    @abstractmethod
    def decode(self, codes: Sequence[int]) -> str:
        """Int vector of choice indices -> canonical architecture string."""

    @abstractmethod
    def canonical_hash(self, arch: str) -> str:
        """Equal for architectures that compute the same function (isomorphism-aware)."""

    @abstractmethod
    def build_model(self, arch: str, *, num_classes: int | None = None, in_channels: int | None = None,
                    **options: Any):  # -> torch.nn.Module
        """The torch network of ``arch`` (imports torch lazily), in train mode as torch builds it.

        ``num_classes`` / ``in_channels`` default to ``model_config()``'s. ``options`` are
        space-specific sizes (nb201: ``width``, ``cells_per_stage``); a space ignores options
        it does not have, so an evaluator can pass its knobs to any space.
        """

    # ---- hooks with defaults or MissingHook ---------------------------------------------
    def has_hook(self, hook: str) -> bool:
        """Whether this space implements ``hook`` itself (one that raises MissingHook by default),
        so a caller can refuse a job up front instead of failing it later."""
        mine = getattr(type(self), hook, None)
        return mine is not None and mine is not getattr(SearchSpace, hook, None)

    def build_supernet(self, *, num_classes: int | None = None, in_channels: int | None = None,
                       **options: Any):  # -> torch.nn.Module
        """The weight-sharing supernet for the differentiable strategies.

        Returns a module with ``positions`` and ``choices`` (ints: the relaxation is a
        (positions, choices) matrix; positions with fewer choices pad) and
        ``forward(x, weights, hard=False)`` mixing each position's candidates by its row
        of ``weights``. ``options`` size it down for search (nb201: ``width``,
        ``cells_per_stage``; block spaces: ``width_multiplier``); unknown ones are ignored.
        """
        raise MissingHook(self.name, "build_supernet")

    def profile_plan(self, batch: int = 1) -> ProfilePlan:
        """The modules ``tables profile`` times, and how they make each op signature's entry."""
        raise MissingHook(self.name, "profile_plan")

    def network_source(self, arch: str) -> str:
        """Python source (imports only torch; never hwnas) defining ``class Network(nn.Module)``
        with ``Network(choices: list[str], **model_config())``: the body of an exported
        ``model.py``, ``choices`` being the chosen name at each position (``choice_names``)."""
        raise MissingHook(self.name, "network_source")

    def choice_names(self, arch: str) -> list[str]:
        """The choice made at each position, in the order ``Network`` takes them."""
        return [str(self.choices[i][int(c)]) for i, c in enumerate(self.encode(arch))]

    def features(self, codes: np.ndarray) -> np.ndarray:
        """(n, positions) codes -> (n, features) floats for surrogate models.

        Default: one-hot choices plus, when every position shares one vocabulary, how often
        each choice occurs (standardised over the batch).
        """
        codes = np.atleast_2d(np.asarray(codes))
        onehot = np.hstack([(codes[:, p:p + 1] == np.arange(d)).astype(float) for p, d in enumerate(self.dims)])
        if len({tuple(c) for c in self.choices}) != 1:
            return onehot
        counts = np.stack([(codes == k).sum(1) for k in range(self.dims[0])], axis=1).astype(float)
        return np.hstack([onehot, (counts - counts.mean(0)) / (counts.std(0) + 1e-12)])

    #: One sentence under the diagram on the dashboard saying how to read it.
    diagram_caption: str = "Layers, input at the top: the choice made at each position."

    def diagram(self, arch: str) -> str:
        """SVG markup (safe to inline in HTML) drawing ``arch`` for the dashboard.

        Default: one box per position with its choice, top to bottom.
        """
        codes = self.encode(arch)
        height = 40 * len(codes) + 20
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="arch-diagram" viewBox="0 0 420 {height}" '
                 f'role="img" aria-labelledby="arch-title"><title id="arch-title">{escape(self.name)} '
                 f'architecture {escape(arch)}</title>']
        for i, c in enumerate(codes):
            y = 10 + 40 * i
            op = str(self.choices[i][int(c)])
            parts.append(f'<g class="layer" data-op="{escape(op)}"><rect x="10" y="{y}" width="400" height="30" '
                         f'rx="4" fill="#eef" stroke="#446"/><text x="20" y="{y + 20}" font-size="13">'
                         f'{i}: {escape(op)}</text></g>')
        parts.append("</svg>")
        return "".join(parts)

    def is_degenerate(self, arch: str) -> bool:
        """True for an architecture that computes nothing useful (e.g. a constant output), which
        strategies deriving architectures skip. Default: none is."""
        return False

    #: True when an architecture's cost is a sum of per-(position, choice) terms; the
    #: estimator then predicts with a gather. Spaces whose graph changes with the choices
    #: (dead edges, pruned cells) set it False and override ``signature_matrix``.
    additive: bool = True

    def position_signatures(self, position: int, choice: int) -> list[str]:
        """Signatures contributed by one (position, choice) in an additive space."""
        return []

    def base_signatures(self) -> list[str]:
        """Signatures every architecture runs (stem, head, ...)."""
        return []

    def all_op_signatures(self) -> list[str]:
        """The table vocabulary: every signature some architecture of the space runs."""
        sigs = set(self.base_signatures())
        for p, dim in enumerate(self.dims):
            for c in range(dim):
                sigs.update(self.position_signatures(p, c))
        return sorted(sigs)

    def signature_matrix(self, codes: np.ndarray) -> np.ndarray:
        """(n, positions) codes -> (n, len(all_op_signatures())) signature counts.

        Latency = counts @ entry means. The default sums the per-position signatures.
        """
        vocab = {s: j for j, s in enumerate(self.all_op_signatures())}
        codes = np.atleast_2d(np.asarray(codes))
        counts = np.zeros((len(codes), len(vocab)))
        for s in self.base_signatures():
            counts[:, vocab[s]] += 1
        for p, dim in enumerate(self.dims):
            for c in range(dim):
                rows = codes[:, p] == c
                for s in self.position_signatures(p, c):
                    counts[rows, vocab[s]] += 1
        return counts

    def plain_tying(self) -> np.ndarray | None:
        """(signatures, 1 + sum(dims)) 0/1 matrix T with ``signature_matrix(c) @ T`` = [1, one-hot(c)].

        Lets a fit try the plain (position, choice) additive model inside the table's own
        vocabulary (entries tied together). None when the vocabulary is already that coarse.
        """
        return None

    def op_signatures(self, arch: str) -> list[str]:
        """The latency-table keys this architecture runs, with multiplicity."""
        counts = self.signature_matrix(self.encode(arch)[None, :])[0]
        return [s for s, k in zip(self.all_op_signatures(), counts) for _ in range(int(round(k)))]

    def normalize(self, arch: str) -> str:
        return self.decode(self.encode(arch))

    def sample(self, rng: np.random.Generator) -> str:
        return self.decode([int(rng.integers(d)) for d in self.dims])

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """Change one position (among those with a choice to make) to a different choice."""
        codes = self.encode(arch).copy()
        movable = [p for p, d in enumerate(self.dims) if d > 1]
        if not movable:
            return self.decode(codes)
        pos = movable[int(rng.integers(len(movable)))]
        new = int(rng.integers(self.dims[pos] - 1))
        codes[pos] = new if new < codes[pos] else new + 1
        return self.decode(codes)

    def neighbours(self, arch: str) -> list[str]:
        codes = self.encode(arch)
        out = []
        for pos, dim in enumerate(self.dims):
            for c in range(dim):
                if c != codes[pos]:
                    other = codes.copy()
                    other[pos] = c
                    out.append(self.decode(other))
        return out

    def footprint(self, codes: np.ndarray):  # -> search_spaces.metrics.Footprint
        """Raw static counts (parameters, MACs, memory access, peak activations) of the
        network ``build_model`` makes with its defaults, for (n, positions) codes, vectorised."""
        raise MissingHook(self.name, "footprint", "no static metrics")

    def largest_codes(self) -> np.ndarray:
        """Codes of architectures among which every static metric takes its maximum over the space.

        The default enumerates small spaces; large ones must override.
        """
        if self.size > 100_000:
            raise NotImplementedError(f"space {self.name!r} is too large to enumerate")
        return np.stack(np.unravel_index(np.arange(self.size), tuple(self.dims)), axis=1)

    def signature_counts(self, arch: str) -> Counter[str]:
        return Counter(self.op_signatures(arch))
