"""NAS-Bench-201 cell space: 6 edges of a 4-node DAG, 5 ops per edge (15,625 cells)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces.base import InvalidArchitecture, ProfilePlan, SearchSpace

STANDALONE = Path(__file__).parent / "standalone" / "nb201.py"

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (source, target) of each edge in string order: 0->1 | 0->2, 1->2 | 0->3, 1->3, 2->3
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


class NB201Space(SearchSpace):
    name = "nb201"
    num_classes = 10
    additive = False
    description = "NAS-Bench-201 cell: 6 edges x 5 ops, 3 stages of 5 cells at 16/32/64 channels"
    choices = tuple(OPS for _ in EDGES)

    def encode(self, arch: str) -> np.ndarray:
        text = arch.strip()
        parts = [p for p in text.strip("|").replace("|+|", "+").split("+")]
        if len(parts) != 3:
            raise InvalidArchitecture(f"expected 3 nodes separated by '+', got {arch!r}")
        codes: list[int] = []
        for target, part in enumerate(parts, start=1):
            tokens = [t for t in part.strip("|").split("|") if t]
            if len(tokens) != target:
                raise InvalidArchitecture(f"node {target} needs {target} inputs in {arch!r}")
            for source, token in enumerate(tokens):
                op, _, src = token.partition("~")
                if op not in OPS:
                    raise InvalidArchitecture(f"unknown op {op!r}; valid: {', '.join(OPS)}")
                if src != str(source):
                    raise InvalidArchitecture(f"edge {token!r} must read from node {source}")
                codes.append(OPS.index(op))
        return np.asarray(codes, dtype=np.int64)

    def decode(self, codes: Sequence[int]) -> str:
        if len(codes) != len(EDGES):
            raise InvalidArchitecture(f"nb201 needs {len(EDGES)} codes, got {len(codes)}")
        ops = [OPS[int(c)] for c in codes]
        nodes = [[f"{ops[i]}~{EDGES[i][0]}" for i in range(len(EDGES)) if EDGES[i][1] == t]
                 for t in (1, 2, 3)]
        return "+".join("|" + "|".join(n) + "|" for n in nodes)

    def canonical_hash(self, arch: str) -> str:
        return hashlib.sha1(self.canonical_expression(arch).encode()).hexdigest()[:16]

    def canonical_expression(self, arch: str) -> str:
        """The cell as an expression, equal for isomorphic cells.

        NAS-Bench-201's own rule (``to_unique_str(consider_zero=True)``), which
        gives its published 6,466 classes: ``none`` or an op on a zero input is
        zero ('#'), ``skip_connect`` passes its input through, and the terms of
        a sum are sorted.
        """
        codes = self.encode(arch)
        exprs = ["0"]
        for target in (1, 2, 3):
            terms = []
            for i, (src, dst) in enumerate(EDGES):
                if dst != target:
                    continue
                op = OPS[codes[i]]
                if op == "none" or exprs[src] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(exprs[src])
                else:
                    terms.append(f"({exprs[src]})@{op}")
            exprs.append("+".join(sorted(terms)))
        return exprs[3]

    def live_edges(self, codes: Sequence[int]) -> list[bool]:
        """Edges whose output reaches node 3 and whose input is non-zero."""
        has_input = [True, False, False, False]
        for i, (src, dst) in enumerate(EDGES):
            if OPS[codes[i]] != "none" and has_input[src]:
                has_input[dst] = True
        reaches_out = [False, False, False, True]
        for i, (src, dst) in reversed(list(enumerate(EDGES))):
            if OPS[codes[i]] != "none" and reaches_out[dst]:
                reaches_out[src] = True
        return [OPS[codes[i]] != "none" and has_input[src] and reaches_out[dst]
                for i, (src, dst) in enumerate(EDGES)]

    def all_op_signatures(self) -> list[str]:
        sigs = ["network", "network:pruned", "network:constant", "input:reaches_output"]
        for i in range(len(EDGES)):
            sigs += [f"edge{i}:none", f"edge{i}:none:dead_output"]
            for op in OPS[1:]:
                sigs += [f"edge{i}:{op}", f"edge{i}:{op}:zero_input", f"edge{i}:{op}:dead_output",
                         f"edge{i}:{op}:constant_cell"]
        for target in (2, 3):
            sigs += [f"node{target}:sum{k}" for k in range(2, target + 1)]
        return sigs

    def plain_tying(self) -> np.ndarray:
        """Every variant of edge i running op o ties to one (i, o) term; the network
        signatures tie to the intercept; node sums and the input term tie to nothing."""
        vocabulary = self.all_op_signatures()
        tying = np.zeros((len(vocabulary), 1 + len(EDGES) * len(OPS)))
        for j, sig in enumerate(vocabulary):
            head, _, rest = sig.partition(":")
            if head in ("network",):
                tying[j, 0] = 1
            elif head.startswith("edge"):
                op = rest.split(":")[0]
                tying[j, 1 + int(head[4:]) * len(OPS) + OPS.index(op)] = 1
        return tying

    def signature_matrix(self, codes: np.ndarray) -> np.ndarray:
        """Signature counts of the cell as a runtime executes it.

        Eager runtimes run every edge; graph runtimes (TFLite) drop an op whose output
        is unused (``dead_output``), and drop the whole network when the cell output
        is a constant zero. An op reads a zero input when no non-``none`` path leads
        from the cell input to it. Each case is its own signature so that one table
        format fits both kinds of runtime; the counts are per cell (the 15 cells of a
        network share one cell).

        What "unused" means follows what HW-NAS-Bench's TFLite runs show (``none`` is a
        multiply by zero): into the cell output (node 3) a ``none`` is folded away, so it
        keeps nothing alive; into node 2 it stays, and keeps its input alive while node 2
        is used. A node-2 sum of one op and one ``none`` runs that op even when node 2 is
        unused (pixel3 and raspi4 time a conv3x3 there at full cost, while a sum of two
        ops is dropped), unless the whole network is pruned. These rules raise the Kendall tau of a table fitted on 10,000
        pixel3/raspi4 rows from 0.879/0.875 (constant cells alone) to 0.891/0.891 on the
        rest; eager devices are unaffected.

        A cell whose output is non-zero but not reached from its input computes a
        constant: a graph runtime folds it and every layer after it (pixel3 and raspi4
        time most such networks well under 1 ms, against ~10 ms typical). Its ops and its
        network term then have their own signatures (``edge<i>:<op>:constant_cell``,
        ``network:constant``); eager runtimes give them the costs of the ordinary ones.
        """
        codes = np.atleast_2d(np.asarray(codes))
        n = len(codes)
        real = codes != 0
        has_input = np.zeros((n, 4), dtype=bool)
        has_input[:, 0] = True
        for i, (src, dst) in enumerate(EDGES):
            has_input[:, dst] |= real[:, i] & has_input[:, src]
        into_node2 = [i for i, (_, dst) in enumerate(EDGES) if dst == 2]
        to_output = [i for i, (_, dst) in enumerate(EDGES) if dst == 3]
        zero_output = ~real[:, to_output].any(axis=1)
        kept_alone = ~real[:, [i for i, (src, _) in enumerate(EDGES) if src == 2]].any(axis=1) & (
            real[:, into_node2].sum(axis=1) == 1) & ~zero_output  # node 2 unused, one op and one none into it
        reaches_out = np.zeros((n, 4), dtype=bool)  # node's value is used by the cell output
        reaches_out[:, 3] = True
        op_used = np.zeros((n, len(EDGES)), dtype=bool)  # the edge's op runs on a graph runtime
        for i, (src, dst) in reversed(list(enumerate(EDGES))):
            op_used[:, i] = reaches_out[:, dst] | (kept_alone & real[:, i] if dst == 2 else False)
            keeps_source = real[:, i] | (i not in to_output)  # a none into the output is folded away
            reaches_out[:, src] |= op_used[:, i] & keeps_source
        constant = ~has_input[:, 3] & ~zero_output
        runs = ~constant
        columns = [runs & ~zero_output, zero_output, constant, has_input[:, 3] & ~zero_output]
        for i, (src, dst) in enumerate(EDGES):
            columns += [~real[:, i] & reaches_out[:, dst], ~real[:, i] & ~reaches_out[:, dst]]
            for c in range(1, len(OPS)):
                chosen = codes[:, i] == c
                columns += [runs & chosen & op_used[:, i] & has_input[:, src],
                            runs & chosen & op_used[:, i] & ~has_input[:, src],
                            runs & chosen & ~op_used[:, i],
                            constant & chosen]
        for target in (2, 3):
            inputs = sum(real[:, i].astype(int) for i, (_, dst) in enumerate(EDGES) if dst == target)
            columns += [(inputs == k) & reaches_out[:, target] for k in range(2, target + 1)]
        return np.stack(columns, axis=1).astype(float)

    def footprint(self, codes: np.ndarray):
        from search_spaces.nb201_metrics import footprint

        return footprint(codes)

    def model_config(self) -> dict[str, Any]:
        """The CIFAR-10 network of NAS-Bench-201 (and of every shipped nb201 table)."""
        return {"num_classes": 10, "in_channels": 3, "width": 16, "cells_per_stage": 5}

    def build_model(self, arch: str, *, num_classes: int | None = None, in_channels: int | None = None,
                    width: int = 16, cells_per_stage: int = 5, **options: Any):
        from search_spaces.nb201_torch import NB201Network

        return NB201Network(self.encode(arch).tolist(), num_classes=num_classes or self.num_classes,
                            in_channels=in_channels or self.input_channels, width=width,
                            cells_per_stage=cells_per_stage)

    def build_supernet(self, *, num_classes: int | None = None, in_channels: int | None = None,
                       width: int = 8, cells_per_stage: int = 1, **options: Any):
        """One cell of mixed ops shared by every stage; ``width``/``cells_per_stage`` size it."""
        from search_spaces.supernet import NB201Supernet

        return NB201Supernet(num_classes=num_classes or self.num_classes,
                             in_channels=in_channels or self.input_channels, width=width,
                             cells_per_stage=cells_per_stage)

    def profile_plan(self, batch: int = 1) -> ProfilePlan:
        from search_spaces.nb201_torch import profile_plan

        return profile_plan(batch)

    def network_source(self, arch: str) -> str:
        """``standalone/nb201.py``: the same modules under the same names as ``nb201_torch``."""
        return STANDALONE.read_text()

    def features(self, codes: np.ndarray) -> np.ndarray:
        """The generic features after setting dead edges (no input-to-output path through them)
        to ``none``, so isomorphic spellings get one vector. (BANANAS' path encoding was tried
        and ranked worse on nb201 with ~100 points.)"""
        codes = np.atleast_2d(np.asarray(codes))
        live = np.array([self.live_edges(c) for c in codes])
        return super().features(np.where(live, codes, 0))  # op 0 is none

    diagram_caption = ("Cell diagram: nodes are feature maps, each edge applies its op; dashed edges do not "
                       "reach the output.")

    def diagram(self, arch: str) -> str:
        from search_spaces.nb201_diagram import cell_svg

        return cell_svg(self, arch)

    def is_degenerate(self, arch: str) -> bool:
        """A cell whose output is a constant zero (no path of non-``none`` ops from input to
        output): the network predicts one class whatever the input."""
        return not any(self.live_edges(self.encode(arch)))
