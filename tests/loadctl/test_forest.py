"""Every site's tree in one forest: depth-first with contiguous subtrees, a node per charger, demand-response
limits folded into the total limits."""

from __future__ import annotations

import math

from ampgate.load.topology import Topology
from ampgate.loadctl import forest

INF = math.inf


def site(site_id: str, nodes: list[tuple[str, int]], chargers: list[tuple[str, int, float]]) -> Topology:
    ids = (site_id, *[n for n, _ in nodes])
    return Topology(
        site_id=site_id,
        voltage_v=230.0,
        node_ids=ids,
        parent=(-1, *[p for _, p in nodes]),
        limit_a=((100.0,) + (INF,) * len(nodes),) * 3,  # type: ignore[arg-type]
        limit_w=(INF,) * len(ids),
        charger_ids=tuple(c for c, _, _ in chargers),
        charger_node=tuple(n for _, n, _ in chargers),
        charger_phases=tuple((0, 1, 2) for _ in chargers),
        charger_max_a=tuple(a for _, _, a in chargers),
        charger_priority=(0,) * len(chargers),
        charger_weight=(1.0,) * len(chargers),
    )


def subtree_is_contiguous(parent: list[int]) -> bool:
    # Every node's parent comes before it, and the nodes between a node and its descendants are descendants.
    for k, p in enumerate(parent):
        if p >= k:
            return False
        if p >= 0:
            for j in range(p + 1, k):
                q = j
                while q > p:
                    q = parent[q]
                if q != p:
                    return False
    return True


def test_chargers_sit_right_under_their_node_and_subtrees_stay_contiguous() -> None:
    a = site("a", [("feeder", 0), ("panel", 1)], [("cp1", 2, 32.0), ("cp2", 0, 16.0), ("cp3", 1, 32.0)])
    b = site("b", [], [("cp9", 0, 11.0)])
    f = forest.build([b, a], {})
    assert subtree_is_contiguous(f.parent)
    assert f.site_range == {"a": (0, 6), "b": (6, 8)}
    assert f.node_ids[:6] == ["a", "", "feeder", "", "panel", ""]
    assert [f.charger_of[k] for k in range(8)] == ["", "cp2", "", "cp3", "", "cp1", "", "cp9"]
    node, wiring, rating, _, _ = f.chargers["cp1"]
    assert f.parent[node] == f.index["panel"] and rating == 32.0 and wiring == (0, 1, 2)
    assert f.limit_a[node] == (32.0, 32.0, 32.0)
    assert f.ancestors(node) == [node, f.index["panel"], f.index["feeder"], f.index["a"]]


def test_demand_response_lowers_total_limits() -> None:
    a = site("a", [("feeder", 0)], [])
    f = forest.build([a], {"feeder": 20.0, "elsewhere": 1.0})
    assert f.limit_w[f.index["feeder"]] == 20_000.0
    assert f.limit_w[f.index["a"]] == INF
