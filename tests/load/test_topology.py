"""`topology.build`: a site's rows as the allocator's arrays. Depth-first pre-order with every parent before its
children (checked on random trees with hypothesis), limits as numbers with inf for none, kW as W, chargers with
their node index and site-phase mapping, and rows that do not form a tree refused."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ampgate.errors import ValidationError
from ampgate.load.model import NO_PHASE_LIMITS, NodeRow, PhaseLimits, PlacementRow, SiteRow
from ampgate.load.topology import NO_PARENT, ROOT, build, current_a, power_w

T = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def site(
    limits: PhaseLimits = (40.0, 40.0, 40.0), kw: float | None = None, voltage: float = 230.0
) -> SiteRow:
    return SiteRow(
        id="S",
        name=None,
        phase_limits_a=limits,
        limit_kw=kw,
        voltage_v=voltage,
        time_zone="UTC",
        location=None,
        ean=None,
        created_at=T,
        updated_at=T,
    )


def node(
    id: str,
    parent: str | None,
    limits: PhaseLimits = NO_PHASE_LIMITS,
    kw: float | None = None,
    site_id: str = "S",
) -> NodeRow:
    return NodeRow(
        id=id,
        site_id=site_id,
        parent_id=parent,
        name=None,
        phase_limits_a=limits,
        limit_kw=kw,
        created_at=T,
        updated_at=T,
    )


def placed(
    charger: str, under: str | None, phases: str = "L1L2L3", max_a: float = 16.0, **kw: float
) -> PlacementRow:
    return PlacementRow(
        charger_id=charger,
        site_id="S",
        node_id=under,
        phases=phases,
        max_a=max_a,
        priority=int(kw.get("priority", 0)),
        weight=kw.get("weight", 1.0),
        created_at=T,
        updated_at=T,
    )


def test_a_site_alone_is_one_node() -> None:
    t = build(site(), [], [])
    assert t.node_ids == ("S",) and t.parent == (NO_PARENT,)
    assert t.limit_a == ((40.0,), (40.0,), (40.0,)) and t.limit_w == (math.inf,)
    assert t.charger_ids == () and t.voltage_v == 230.0


def test_depth_first_children_in_id_order_with_limits_and_chargers() -> None:
    #  S ─┬─ T1 ─┬─ F2 ── P1     (rows given shuffled)
    #     │      └─ F1
    #     └─ T2
    nodes = [
        node("P1", "F2", (16.0, 16.0, 16.0)),
        node("T2", None, kw=22.0),
        node("F1", "T1", (None, 25.0, None)),
        node("T1", None, (100.0, 100.0, 100.0), kw=60.0),
        node("F2", "T1"),
    ]
    placements = [
        placed("CP-B", "P1", "STR", 32.0, priority=5, weight=2.0),
        placed("CP-A", None, "L2"),
        placed("CP-C", "F1", "L3", 10.0),
        placed("CP-D", "P1", "RST"),
    ]
    t = build(site(kw=None), nodes, placements)
    assert t.node_ids == ("S", "T1", "F1", "F2", "P1", "T2")
    assert t.parent == (-1, 0, 1, 1, 3, 0)
    inf = math.inf
    assert t.limit_a == (
        (40.0, 100.0, inf, inf, 16.0, inf),
        (40.0, 100.0, 25.0, inf, 16.0, inf),
        (40.0, 100.0, inf, inf, 16.0, inf),
    )
    assert t.limit_w == (inf, 60_000.0, inf, inf, inf, 22_000.0)
    # By node index, then charger id.
    assert t.charger_ids == ("CP-A", "CP-C", "CP-B", "CP-D")
    assert t.charger_node == (ROOT, 2, 4, 4)
    assert t.charger_phases == ((1,), (2,), (1, 2, 0), (0, 1, 2))
    assert t.charger_max_a == (16.0, 10.0, 32.0, 16.0)
    assert t.charger_priority == (0, 0, 5, 0)
    assert t.charger_weight == (1.0, 1.0, 2.0, 1.0)
    assert t.index("P1") == 4 and t.index("S") == 0


@pytest.mark.parametrize(
    ("phases", "mapping"),
    [
        ("L1", (0,)),
        ("L2", (1,)),
        ("L3", (2,)),
        ("L1L2L3", (0, 1, 2)),
        ("RST", (0, 1, 2)),
        ("RTS", (0, 2, 1)),
        ("SRT", (1, 0, 2)),
        ("STR", (1, 2, 0)),
        ("TRS", (2, 0, 1)),
        ("TSR", (2, 1, 0)),
    ],
)
def test_each_wiring_maps_charger_phases_to_site_phases(phases: str, mapping: tuple[int, ...]) -> None:
    assert build(site(), [], [placed("CP", None, phases)]).charger_phases == (mapping,)


def test_a_child_may_have_a_larger_limit_than_its_parent() -> None:
    t = build(site((40.0, 40.0, 40.0)), [node("SUB", None, (63.0, 63.0, 63.0))], [])
    assert t.limit_a[0] == (40.0, 63.0)  # kept as given: the allocator takes the minimum along the path


def test_power_and_current_convert_with_line_to_neutral_voltage_and_phases_in_use() -> None:
    assert power_w(16, 230, 3) == 11_040
    assert power_w(16, 230, 1) == 3_680
    assert current_a(22_000, 230, 3) == pytest.approx(31.884, abs=1e-3)
    assert current_a(22_000, 230, 1) == pytest.approx(95.652, abs=1e-3)
    assert current_a(power_w(32, 120, 1), 120, 1) == 32


def test_a_cycle_is_refused() -> None:
    nodes = [node("A", None), node("B", "C"), node("C", "B")]
    with pytest.raises(ValidationError, match="B, C") as e:
        build(site(), nodes, [])
    assert e.value.field == "parent_id"


def test_an_unknown_parent_is_refused() -> None:
    with pytest.raises(ValidationError) as e:
        build(site(), [node("A", "GHOST")], [])
    assert e.value.field == "parent_id"


def test_a_node_of_another_site_is_refused() -> None:
    with pytest.raises(ValidationError) as e:
        build(site(), [node("A", None, site_id="OTHER")], [])
    assert e.value.field == "site_id"


def test_a_placement_under_an_unknown_node_is_refused() -> None:
    with pytest.raises(ValidationError) as e:
        build(site(), [node("A", None)], [placed("CP", "GHOST")])
    assert e.value.field == "node_id"


def test_a_deep_chain_needs_no_recursion() -> None:
    depth = 5_000
    nodes = [node(f"N{i}", None if i == 0 else f"N{i - 1}") for i in range(depth)]
    t = build(site(), nodes, [placed("CP", f"N{depth - 1}")])
    assert t.parent == (-1, *range(depth))
    assert t.charger_node == (depth,)


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[NodeRow], dict[str, str | None]]:
    """A random tree: node i's parent is the site or one of the nodes before it, ids shuffled so that id order
    says nothing about depth."""
    n = draw(st.integers(min_value=0, max_value=60))
    ids = [f"n{k:03d}" for k in draw(st.permutations(range(n)))] if n else []
    parent_of: dict[str, str | None] = {}
    for i, node_id in enumerate(ids):
        j = draw(st.integers(min_value=-1, max_value=i - 1))
        parent_of[node_id] = None if j < 0 else ids[j]
    rows = [node(i, p) for i, p in parent_of.items()]
    random.Random(draw(st.integers(0, 2**16))).shuffle(rows)
    return rows, parent_of


@settings(max_examples=200, deadline=None)
@given(trees())
def test_random_trees_come_out_in_depth_first_order(
    tree: tuple[list[NodeRow], dict[str, str | None]],
) -> None:
    rows, parent_of = tree
    t = build(site(), rows, [placed(f"CP-{r.id}", r.id) for r in rows])
    assert len(t.node_ids) == len(rows) + 1 and sorted(t.node_ids[1:]) == sorted(parent_of)
    assert t.parent[0] == NO_PARENT and t.node_ids[0] == "S"
    for i in range(1, len(t.node_ids)):
        p = t.parent[i]
        # Every parent comes before its children, and it is the right one.
        assert 0 <= p < i
        assert t.node_ids[p] == (parent_of[t.node_ids[i]] or "S")
    # Pre-order: each subtree is contiguous, i.e. the nodes from i on whose parent is not before i are exactly
    # those of i's subtree, and they come first.
    for i in range(len(t.node_ids)):
        end = next((j for j in range(i + 1, len(t.node_ids)) if t.parent[j] < i), len(t.node_ids))
        inside = set(range(i, end))
        assert all(t.parent[j] in inside for j in range(i + 1, end))
    # Siblings in id order.
    for p in range(len(t.node_ids)):
        kids = [t.node_ids[j] for j in range(len(t.node_ids)) if t.parent[j] == p]
        assert kids == sorted(kids)
    # Each charger sits at its node's index.
    for charger, at in zip(t.charger_ids, t.charger_node, strict=True):
        assert t.node_ids[at] == charger.removeprefix("CP-")
    assert list(t.charger_node) == sorted(t.charger_node)
