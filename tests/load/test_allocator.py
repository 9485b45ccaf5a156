"""The Rust allocator (`_native.allocate`) against the slow reference solver on random trees, demands and
priorities: within 0.01 A before rounding. Plus what bad input says."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampgate import _native
from tests.load.reference_allocator import Case, reference

INF = math.inf


def run(case: Case) -> list[float]:
    return _native.allocate(
        case.parent, case.limit_a, case.limit_w, case.voltage, case.node, case.phases,
        case.min_a, case.max_a, case.priority, case.weight, case.rank,
    )  # fmt: skip


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 7))
    parent = [-1]
    for k in range(1, n):
        # Depth-first: a node's parent is on the path from the root to the node before it.
        path = [k - 1]
        while parent[path[-1]] != -1:
            path.append(parent[path[-1]])
        parent.append(draw(st.sampled_from([-1, *path])))
    lim = st.one_of(st.just(INF), st.integers(0, 80).map(float))
    case = Case(
        parent=parent,
        limit_a=[(draw(lim), draw(lim), draw(lim)) for _ in range(n)],
        limit_w=[draw(st.one_of(st.just(INF), st.integers(0, 40_000).map(float))) for _ in range(n)],
        voltage=[230.0] * n,
    )
    for i in range(draw(st.integers(0, 14))):
        case.node.append(draw(st.integers(0, n - 1)))
        case.phases.append(draw(st.sampled_from([1, 2, 4, 7, 3])))
        lo = draw(st.sampled_from([0.0, 6.0, 8.0]))
        case.min_a.append(lo)
        case.max_a.append(lo + draw(st.integers(0, 30)))
        case.priority.append(draw(st.integers(0, 2)))
        case.weight.append(draw(st.sampled_from([1.0, 2.0, 0.5])))
        case.rank.append(i)
    return case


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_allocator_matches_the_reference_within_a_hundredth_of_an_ampere(case: Case) -> None:
    got, want = run(case), reference(case)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert abs(g - w) < 0.01, (i, got, want)


def test_a_known_case() -> None:
    # A 40 A site; a 10 A panel (L1) with two sessions under it; a third on the site; a 3-phase one on the site.
    case = Case(
        parent=[-1, 0], limit_a=[(40, 40, 40), (10, INF, INF)], limit_w=[INF, INF], voltage=[230, 230]
    )
    for node, phases in [(1, 1), (1, 1), (0, 1), (0, 7)]:
        case.node.append(node)
        case.phases.append(phases)
        case.min_a.append(6.0)
        case.max_a.append(32.0)
        case.priority.append(0)
        case.weight.append(1.0)
        case.rank.append(len(case.rank))
    # The panel cannot give both its sessions their 6 A: the later one is paused, the other takes the panel's
    # 10 A; the two on the site share what is left of its 40 A on L1 (the 3-phase one draws 15 A on each).
    assert run(case) == pytest.approx([10.0, 0.0, 15.0, 15.0])
    assert reference(case) == pytest.approx([10.0, 0.0, 15.0, 15.0])


def test_bad_input_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="node 1: its parent must come before it"):
        _native.allocate([-1, 3], [(1, 1, 1)] * 2, [INF] * 2, [230] * 2, [], [], [], [], [], [], [])
    with pytest.raises(ValueError, match="session 0: bad phases"):
        _native.allocate([-1], [(1, 1, 1)], [INF], [230], [0], [0], [0], [1], [0], [1], [0])
