"""Every site's tree in one forest, as the allocator takes it (pure; no I/O).

Each site's `load.topology.Topology` gives its capacity nodes in depth-first pre-order; here the sites are laid
end to end, and every placed charger becomes a node of its own, right after the node it hangs under (before that
node's child nodes), so every subtree stays one contiguous run of indices. A charger's node carries its rating
(`max_a` of its placement) on every phase: however many connectors it has, together they draw no more than that.
Sessions hang under their charger's node.

Demand response lowers nodes' total limits: `limits_kw` (node id → kW) is folded into `limit_w` as the lower of
the node's own total limit and the event's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ampgate.load.topology import Topology


@dataclass(slots=True)
class Forest:
    """The allocator's arrays and the maps back to ids."""

    parent: list[int] = field(default_factory=list)
    limit_a: list[tuple[float, float, float]] = field(default_factory=list)
    limit_w: list[float] = field(default_factory=list)
    voltage: list[float] = field(default_factory=list)
    # Per node: its id ("" for a charger's node), its site's id, and the charger it stands for ("" if none).
    node_ids: list[str] = field(default_factory=list)
    site_of: list[str] = field(default_factory=list)
    charger_of: list[str] = field(default_factory=list)
    # Charger id → (its node's index, its site phases in charger-phase order, rating A, priority, weight).
    chargers: dict[str, tuple[int, tuple[int, ...], float, int, float]] = field(default_factory=dict)
    # Node or site id → index; site id → (first index, one past its last).
    index: dict[str, int] = field(default_factory=dict)
    site_range: dict[str, tuple[int, int]] = field(default_factory=dict)

    def ancestors(self, k: int) -> list[int]:
        """`k` and every node above it, up to its site."""
        out = []
        while k >= 0:
            out.append(k)
            k = self.parent[k]
        return out


def build(sites: Sequence[Topology], limits_kw: Mapping[str, float]) -> Forest:
    """The forest of `sites` (any order; laid out in site id order) with demand-response `limits_kw` applied."""
    f = Forest()
    for t in sorted(sites, key=lambda t: t.site_id):
        first = len(f.parent)
        local: list[int] = []  # the tree node's index in the forest, by its index in `t`
        by_node: dict[int, list[int]] = {}
        for k, node in enumerate(t.charger_node):
            by_node.setdefault(node, []).append(k)
        for i, node_id in enumerate(t.node_ids):
            here = len(f.parent)
            local.append(here)
            p = t.parent[i]
            f.parent.append(-1 if p < 0 else local[p])
            f.limit_a.append((t.limit_a[0][i], t.limit_a[1][i], t.limit_a[2][i]))
            w = t.limit_w[i]
            dr = limits_kw.get(node_id)
            f.limit_w.append(w if dr is None else min(w, dr * 1000.0))
            f.voltage.append(t.voltage_v)
            f.node_ids.append(node_id)
            f.site_of.append(t.site_id)
            f.charger_of.append("")
            f.index[node_id] = here
            for k in by_node.get(i, ()):
                c = len(f.parent)
                rating = t.charger_max_a[k]
                f.parent.append(here)
                f.limit_a.append((rating, rating, rating))
                f.limit_w.append(math.inf)
                f.voltage.append(t.voltage_v)
                f.node_ids.append("")
                f.site_of.append(t.site_id)
                f.charger_of.append(t.charger_ids[k])
                f.chargers[t.charger_ids[k]] = (
                    c,
                    t.charger_phases[k],
                    rating,
                    t.charger_priority[k],
                    t.charger_weight[k],
                )
        f.site_range[t.site_id] = (first, len(f.parent))
    return f
