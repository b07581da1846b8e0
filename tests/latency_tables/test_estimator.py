"""The estimator against hand-computed sums."""

from __future__ import annotations

import numpy as np
import pytest

from latency_tables import LatencyEstimator, LatencyTable, MissingEntry
from latency_tables.table import Entry
from search_spaces import get_space


def table_for(space_name: str, values: dict[str, float], default: float = 0.0) -> LatencyTable:
    space = get_space(space_name)
    entries = {s: Entry(values.get(s, default)) for s in space.all_op_signatures()}
    return LatencyTable(device={"name": "hand"}, space=space_name, entries=entries)


def test_nb201_hand_computed() -> None:
    space = get_space("nb201")
    values = {"network": 10.0, "network:pruned": 0.5, "network:constant": 0.2, "input:reaches_output": 1.0,
              "edge0:nor_conv_3x3": 3.0, "edge0:nor_conv_3x3:dead_output": 0.25,
              "edge1:skip_connect": 0.1, "edge3:nor_conv_3x3": 4.0, "edge2:none": 0.01,
              "edge2:none:dead_output": 0.02, "node3:sum2": 0.3, "edge4:nor_conv_3x3:constant_cell": 0.07}
    est = LatencyEstimator(table_for("nb201", values), space)
    # node1 = conv(x), read by nothing that runs (node 2 is unused): dead; skip(x) beside a none in node 2 runs
    dead = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    # edge 4 reads node 1: the conv on edge 0 is live; node 3 sums two ops
    live = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|"
    pruned = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"
    # node 1 = none(x): the conv on edge 4 computes a constant
    constant = "|none~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|"
    got = est.predict([dead, live, pruned, constant])
    assert got == pytest.approx([10 + 1 + 0.25 + 0.1 + 0.02 + 4,
                                 10 + 1 + 3 + 0.1 + 0.02 + 4 + 0.3,
                                 0.5 + 0.25 + 0.02,  # pruned: the skip beside a none is dead too
                                 0.2 + 0.07 + 0.02])  # node 2 (none + none) is unused
    codes = np.stack([space.encode(a) for a in (dead, live, pruned, constant)])
    assert est.predict_codes(codes) == pytest.approx(got)


def test_fbnet_hand_computed_and_bounds() -> None:
    space = get_space("fbnet")
    est = LatencyEstimator(table_for("fbnet", {"k5_e6:16x32x32->16/s1": 2.0}, default=1.0), space)
    stem_head = 2.0
    all_skip = "-".join(["skip"] * 22)
    # skip keeps the shape at 16 of the 22 layers (identity, no entry); at the 6 stage changes it is a 1x1 conv
    assert est.predict([all_skip])[0] == pytest.approx(stem_head + 6)
    first_k5 = "-".join(["k5_e6"] + ["skip"] * 21)
    assert est.predict([first_k5])[0] == pytest.approx(stem_head + 2 + 6)
    lo, hi = est.bounds()
    assert lo == pytest.approx(stem_head + 6) and hi == pytest.approx(stem_head + 2 + 21)


def test_nb201_bounds_are_the_extremes_of_the_space() -> None:
    space = get_space("nb201")
    est = LatencyEstimator(table_for("nb201", {"network": 5.0, "edge5:nor_conv_3x3": 2.0}), space)
    assert est.bounds() == (0.0, 7.0)


def test_missing_entry_is_named() -> None:
    table = table_for("nb201", {})
    del table.entries["edge3:avg_pool_3x3:zero_input"]
    with pytest.raises(MissingEntry, match="edge3:avg_pool_3x3:zero_input"):
        LatencyEstimator(table, get_space("nb201"))


def test_wrong_space_is_refused() -> None:
    with pytest.raises(ValueError, match="space"):
        LatencyEstimator(table_for("nb201", {}), get_space("fbnet"))


def test_uploaded_tables_cannot_evict_the_shipped_tables_estimators() -> None:
    from latency_tables import estimator_for, shipped_tables
    from latency_tables import estimator as estimator_module

    space = get_space("fbnet")
    shipped = next(t for t in shipped_tables("fbnet") if t.device_name == "pixel3")
    first = estimator_for(shipped, space)
    for i in range(estimator_module._CACHE_SIZE + 40):  # more distinct uploads than the LRU holds
        entries = {k: Entry(e.mean * (1 + (i + 1) / 1000)) for k, e in shipped.entries.items()}
        estimator_for(LatencyTable(device={"name": f"up{i}"}, space="fbnet", entries=entries), space)
    assert estimator_for(shipped, space) is first
    assert len(estimator_module._CACHE) <= estimator_module._CACHE_SIZE
    # keyed by content: an equal table (another object) finds the same estimator
    assert estimator_for(LatencyTable.from_dict(shipped.to_dict()), space) is first
