"""Space-specific checks of nb201 and fbnet (what every space must do is in test_conformance.py)."""

from __future__ import annotations

import numpy as np
import pytest

from search_spaces import get_space


def test_nb201_hash_is_isomorphism_aware() -> None:
    space = get_space("nb201")
    # node 1 is unused when every edge out of it is none: the op on edge 0 does not matter
    a = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    b = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    c = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    assert space.canonical_hash(a) == space.canonical_hash(b) != space.canonical_hash(c)


def test_nb201_signatures_name_dead_and_zero_input_edges() -> None:
    space = get_space("nb201")
    # node 2 = skip(x) + none(node 1) is read by edge 5, and a none into node 2 keeps node 1
    # alive: the conv on edge 0 runs although no op reads its result
    arch = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
    assert sorted(space.op_signatures(arch)) == sorted([
        "network", "input:reaches_output", "edge0:nor_conv_3x3", "edge1:skip_connect",
        "edge2:none", "edge3:none", "edge4:none", "edge5:nor_conv_3x3"])
    # nothing reads node 2 now, and a none into the output keeps nothing alive: edge 0 is dead;
    # skip_connect is the one op beside a none in the unused node 2, so it still runs
    dead = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|none~2|"
    assert sorted(space.op_signatures(dead)) == sorted([
        "network", "input:reaches_output", "edge0:nor_conv_3x3:dead_output", "edge1:skip_connect",
        "edge2:none:dead_output", "edge3:skip_connect", "edge4:none", "edge5:none"])
    # two ops into the unused node 2: both dropped
    both_dead = "|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
    assert sorted(space.op_signatures(both_dead)) == sorted([
        "network", "input:reaches_output", "edge0:skip_connect:dead_output", "edge1:nor_conv_1x1:dead_output",
        "edge2:avg_pool_3x3:dead_output", "edge3:skip_connect", "edge4:none", "edge5:none"])
    # node 3 has only none inputs: the network is pruned, every op in it is dead
    zero = "|none~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|none~2|"
    assert sorted(space.op_signatures(zero)) == sorted([
        "network:pruned", "edge0:none:dead_output", "edge1:none:dead_output", "edge2:nor_conv_1x1:dead_output",
        "edge3:none",
        "edge4:none", "edge5:none"])
    both = "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    assert sorted(space.op_signatures(both)) == sorted([
        "network", "input:reaches_output", "edge0:skip_connect", "edge1:none", "edge2:none",
        "edge3:skip_connect", "edge4:nor_conv_1x1", "edge5:avg_pool_3x3:zero_input", "node3:sum3"])
    # the cell input reaches no path to the output: a constant cell
    constant = "|none~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    assert sorted(space.op_signatures(constant)) == sorted([
        "network:constant", "edge0:none", "edge1:none", "edge2:none", "edge3:none",
        "edge4:nor_conv_3x3:constant_cell", "edge5:avg_pool_3x3:constant_cell", "node3:sum2"])


def test_fbnet_shares_signatures_between_layers_of_one_shape() -> None:
    space = get_space("fbnet")
    assert len(space.dims) == 22 and set(space.dims) == {9}
    # layers 2..4 of stage 2 (positions 2, 3, 4) are 24->24 at 32x32, stride 1
    assert space.position_signatures(2, 3) == space.position_signatures(3, 3) == ["k3_e6:24x32x32->24/s1"]
    assert space.position_signatures(1, 3) == ["k3_e6:16x32x32->24/s1"]
    assert space.position_signatures(2, 8) == []  # skip that keeps the shape is the identity
    assert space.position_signatures(1, 8) == ["skip:16x32x32->24/s1"]  # skip that changes it is a 1x1 conv
    arch = "-".join(["skip"] * 22)
    assert space.canonical_hash(arch) == space.canonical_hash(space.normalize(arch))
