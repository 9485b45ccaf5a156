"""A site's topology as the allocator takes it: a pure function from the site's rows to arrays (no I/O).

The tree
    The site is the root (index 0): its limits are the grid connection's. Below it capacity nodes of any depth
    (transformer, feeder, panel, …) and, as leaves, the placed chargers. Nodes come in depth-first pre-order,
    children in id order, so every node's parent comes before it and every subtree is one contiguous run of
    indices (node i's subtree is i up to the next index whose parent precedes i). The arrays are parallel
    (structure of arrays), so they cross to Rust as flat vectors:

    - `node_ids[i]`: the node's id (the site's id at 0);
    - `parent[i]`: the index of its parent, -1 for the site;
    - `limit_a[p][i]`: the limit on site phase p (0 = L1, 1 = L2, 2 = L3) in A, `math.inf` where there is none;
    - `limit_w[i]`: the total limit in W (`limit_kw` × 1000), `math.inf` where there is none.

    A child's limit may exceed its parent's (a 63 A sub-panel on a 40 A feeder): the parent's limit still binds
    everything under it: the allocator honours every limit on the path to the root, and nothing here clamps.

Chargers
    In order of their node's index, then charger id: `charger_ids[k]`, `charger_node[k]` (the index of the node
    it hangs under; 0 = directly under the site), `charger_max_a[k]`, `charger_priority[k]` (higher first),
    `charger_weight[k]`, and `charger_phases[k]`: the site phases its own phases are wired to, charger phase 1
    first. A one-phase charger has one entry (the site phase it draws from: "L2" gives (1,)); a three-phase one
    has three, from its rotation in OCPP's notation, where R, S, T are the site's L1, L2, L3 and the i-th
    letter is the site phase that the charger's phase i is on:

        RST = L1, L2, L3 (standard reference phasing; "L1L2L3" means the same)    (0, 1, 2)
        RTS = L1, L3, L2                                                            (0, 2, 1)
        SRT = L2, L1, L3                                                            (1, 0, 2)
        STR = L2, L3, L1                                                            (1, 2, 0)
        TRS = L3, L1, L2                                                            (2, 0, 1)
        TSR = L3, L2, L1                                                            (2, 1, 0)

    The rotation matters only where the phases are loaded unevenly (one-phase chargers, or a vehicle that draws
    on fewer phases than its charger has): a site that puts every three-phase charger on RST loads L1 first.

Power and current
    P = I × V × n, with V the site's nominal line-to-neutral voltage (`voltage_v`, 230 V unless set), n the
    phases in use (1 or 3) and power factor 1: 16 A on three phases at 230 V is 11,040 W; a 22 kW limit is
    31.9 A per phase on three phases, 95.7 A on one. `power_w` and `current_a` are that rule, in one place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ampgate.errors import ValidationError
from ampgate.load.model import WIRINGS, NodeRow, PlacementRow, SiteRow

# The index of the site in `node_ids`, and the parent index of the site.
ROOT = 0
NO_PARENT = -1


def power_w(current_a: float, voltage_v: float, phases: int) -> float:
    """P = I × V × phases (line-to-neutral V, power factor 1): the power of `current_a` per phase."""
    return current_a * voltage_v * phases


def current_a(power_w: float, voltage_v: float, phases: int) -> float:
    """I = P / (V × phases): the current per phase that carries `power_w` (line-to-neutral V, power factor
    1)."""
    return power_w / (voltage_v * phases)


def _limit(value: float | None) -> float:
    return math.inf if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Topology:
    """A site's tree and chargers as parallel arrays (see the module's docstring for each)."""

    site_id: str
    voltage_v: float
    node_ids: tuple[str, ...]
    parent: tuple[int, ...]
    limit_a: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]
    limit_w: tuple[float, ...]
    charger_ids: tuple[str, ...]
    charger_node: tuple[int, ...]
    charger_phases: tuple[tuple[int, ...], ...]
    charger_max_a: tuple[float, ...]
    charger_priority: tuple[int, ...]
    charger_weight: tuple[float, ...]

    def index(self, node_id: str) -> int:
        """The index of `node_id` (the site's id: 0). Raises ValueError for an id not in the tree."""
        return self.node_ids.index(node_id)


def build(site: SiteRow, nodes: Sequence[NodeRow], placements: Sequence[PlacementRow]) -> Topology:
    """The allocator's view of `site` with its `nodes` and `placements` (their rows, any order).

    Raises ValidationError naming `parent_id` when a node's parent is not in the site or a node is not
    reachable from the site (a cycle), `node_id` when a placement names a node not in the site, and `phases`
    for a wiring that is none of model.WIRINGS. The repository never stores such rows; this says so loudly
    rather than give the allocator a partial tree."""
    by_id = {n.id: n for n in nodes}
    children: dict[str | None, list[str]] = {}
    for n in nodes:
        if n.site_id != site.id:
            raise ValidationError(
                f"node {n.id!r} belongs to site {n.site_id!r}, not {site.id!r}", field="site_id"
            )
        if n.parent_id is not None and n.parent_id not in by_id:
            raise ValidationError(
                f"node {n.id!r} has parent {n.parent_id!r}, not in site {site.id!r}", field="parent_id"
            )
        children.setdefault(n.parent_id, []).append(n.id)
    for ids in children.values():
        ids.sort()

    node_ids = [site.id]
    parent = [NO_PARENT]
    index: dict[str | None, int] = {None: ROOT}
    # Iterative pre-order (trees may be deeper than Python's recursion limit): the stack holds (id, parent
    # index), children pushed in reverse so the smallest id comes out first.
    stack = [(c, ROOT) for c in reversed(children.get(None, []))]
    while stack:
        node_id, parent_index = stack.pop()
        index[node_id] = len(node_ids)
        node_ids.append(node_id)
        parent.append(parent_index)
        stack.extend((c, index[node_id]) for c in reversed(children.get(node_id, [])))
    if len(node_ids) != len(nodes) + 1:
        lost = sorted(set(by_id) - set(node_ids))
        raise ValidationError(
            f"nodes {', '.join(lost)} are not reachable from site {site.id!r}: their parents form a cycle",
            field="parent_id",
        )

    rows = [site.phase_limits_a, *(by_id[i].phase_limits_a for i in node_ids[1:])]
    totals = [site.limit_kw, *(by_id[i].limit_kw for i in node_ids[1:])]

    placed = []
    for p in placements:
        if p.site_id != site.id or p.node_id not in index:
            raise ValidationError(
                f"charger {p.charger_id!r} is placed under {p.node!r}, not a node of site {site.id!r}",
                field="node_id",
            )
        if p.phases not in WIRINGS:
            raise ValidationError(f"charger {p.charger_id!r} has wiring {p.phases!r}", field="phases")
        placed.append((index[p.node_id], p.charger_id, p))
    placed.sort(key=lambda t: (t[0], t[1]))

    return Topology(
        site_id=site.id,
        voltage_v=site.voltage_v,
        node_ids=tuple(node_ids),
        parent=tuple(parent),
        limit_a=(
            tuple(_limit(r[0]) for r in rows),
            tuple(_limit(r[1]) for r in rows),
            tuple(_limit(r[2]) for r in rows),
        ),
        limit_w=tuple(math.inf if kw is None else kw * 1000.0 for kw in totals),
        charger_ids=tuple(c for _, c, _ in placed),
        charger_node=tuple(i for i, _, _ in placed),
        charger_phases=tuple(WIRINGS[p.phases] for _, _, p in placed),
        charger_max_a=tuple(p.max_a for _, _, p in placed),
        charger_priority=tuple(p.priority for _, _, p in placed),
        charger_weight=tuple(p.weight for _, _, p in placed),
    )
