"""The search-space interface: a space owns sampling, mutation, encoding and hashing.

Strategies never look inside an architecture string; they work on the integer
encoding (one choice index per position, ``dims[i]`` choices at position ``i``)
or call the space's own operators.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence

import numpy as np


class InvalidArchitecture(ValueError):
    """An architecture string that does not parse in this space."""


class SearchSpace(ABC):
    name: str
    description: str
    #: Names of the choices at each position; ``dims`` derives from it.
    choices: Sequence[Sequence[str]]

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
    def build_model(self, arch: str, *, num_classes: int, in_channels: int = 3, width: int = 16,
                    cells_per_stage: int = 5):  # -> torch.nn.Module
        """An eval-ready torch network (imports torch lazily)."""

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

    def is_degenerate(self, arch: str) -> bool:
        """True for an architecture that computes nothing useful from its input (e.g. an nb201
        cell whose output no path of real ops reaches): strategies skip these by default."""
        return False

    def normalize(self, arch: str) -> str:
        return self.decode(self.encode(arch))

    def sample(self, rng: np.random.Generator) -> str:
        return self.decode([int(rng.integers(d)) for d in self.dims])

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """Change one position to a different choice."""
        codes = self.encode(arch).copy()
        pos = int(rng.integers(len(codes)))
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
        raise NotImplementedError(f"space {self.name!r} has no static metrics")

    def largest_codes(self) -> np.ndarray:
        """Codes of architectures among which every static metric takes its maximum over the space.

        The default enumerates small spaces; large ones must override.
        """
        if self.size > 100_000:
            raise NotImplementedError(f"space {self.name!r} is too large to enumerate")
        return np.stack(np.unravel_index(np.arange(self.size), tuple(self.dims)), axis=1)

    def signature_counts(self, arch: str) -> Counter[str]:
        return Counter(self.op_signatures(arch))
