"""A small hwnas.space/1 definition, its broken variants, and a latency table / benchmark rows for it
(shared by the CLI, API and worker tests of registered spaces)."""

from __future__ import annotations

import copy
import itertools
import zlib
from typing import Any

from search_spaces import SearchSpace, parse_space_definition

#: The issue's example definition (other tools write such files): 576 architectures.
MBV2: dict[str, Any] = {
    "format": "hwnas.space/1", "name": "mbv2-160", "type": "blocks",
    "input": {"channels": 3, "resolution": 160}, "num_classes": 100,
    "stem": {"channels": 16, "kernel": 3, "stride": 2, "act": "relu"},
    "blocks": {"k3_e3": {"op": "mbconv", "kernel": 3, "expand": 3, "act": "relu"},
               "k5_e6_se": {"op": "mbconv", "kernel": 5, "expand": 6, "se": True, "act": "hswish"},
               "k3_e1_g2": {"op": "mbconv", "kernel": 3, "expand": 1, "groups": 2},
               "skip": {"op": "skip"}},
    "stages": [{"channels": 24, "stride": 2, "layers": 2, "choices": ["k3_e3", "k5_e6_se", "skip"]},
               {"channels": 40, "stride": 2, "layers": 3, "choices": ["k3_e3", "k5_e6_se", "k3_e1_g2", "skip"]}],
    "head": {"channels": 640, "act": "relu"},
}
MBV2_SIZE = 3 ** 2 * 4 ** 3


def variant(**changes: Any) -> dict[str, Any]:
    """MBV2 with top-level fields replaced."""
    return {**copy.deepcopy(MBV2), **changes}


def _set(path: list[str | int], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(MBV2)
    node: Any = d
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return d


#: (what is wrong, definition, the JSON path an error must name)
BROKEN: list[tuple[str, dict[str, Any], str]] = [
    ("unknown op", _set(["blocks", "k3_e3", "op"], "warp"), "$.blocks.k3_e3.op"),
    ("bad stride", _set(["stages", 1, "stride"], 3), "$.stages[1].stride"),
    ("choice not in blocks", _set(["stages", 0, "choices"], ["k3_e3", "k7_e9"]), "$.stages[0].choices[1]"),
    ("non-integer resolution", _set(["input", "resolution"], 160.5), "$.input.resolution"),
]

#: The same space with the k5_e6_se block gone: other content (and hash) under the same name.
MBV2_V2 = variant(stages=[{"channels": 24, "stride": 2, "layers": 2, "choices": ["k3_e3", "skip"]},
                          {"channels": 40, "stride": 2, "layers": 3, "choices": ["k3_e3", "k3_e1_g2", "skip"]}])


def space_of(definition: dict[str, Any]) -> SearchSpace:
    return parse_space_definition(definition)


def latency_table(space: SearchSpace, device: str = "toyboard") -> dict[str, Any]:
    """A table file covering every op signature, with made-up but fixed latencies."""
    entries = {s: {"mean": 0.05 + (zlib.crc32(s.encode()) % 100) / 100, "std": 0.0, "count": 1}
               for s in space.all_op_signatures()}
    return {"format": "hwnas.latency_table/2", "version": 2, "device": {"name": device, "kind": "cpu"},
            "space": space.name, "metric": "latency_ms", "entries": entries,
            "provenance": {"source": "tests: made-up latencies"}}


def benchmark_rows(space: SearchSpace) -> dict[str, dict[str, float]]:
    """An accuracy for every architecture of a small space (a function of its string)."""
    archs = ["-".join(c) for c in itertools.product(*space.choices)]
    return {a: {"acc": float(zlib.crc32(a.encode()) % 1000) / 10} for a in archs}
