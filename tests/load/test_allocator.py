"""The Rust allocator (`_native.allocate`) against the slow reference solver on random trees, demands and
priorities: within 0.01 A before rounding. Plus what bad input says."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampgate import _native
from tests.load.reference_allocator import FREE, PAUSED, RUNNING, Case, reference

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


# The stateful Allocator: each tick's raw allocation against the reference with the same fixed draws and holds,
# and the settled values against every limit.

HOLD_S = 300.0


@st.composite
def stateful_cases(draw: st.DrawFn) -> Case:
    case = draw(cases())
    case.fixed = [draw(st.one_of(st.none(), st.none(), st.integers(0, 20).map(float))) for _ in case.node]
    return case


def load_tree(a: _native.Allocator, case: Case) -> None:
    a.set_tree(case.parent, case.limit_a, case.limit_w, case.voltage)


def put(a: _native.Allocator, case: Case, i: int) -> None:
    a.put(
        i, case.node[i], case.phases[i], case.min_a[i], case.max_a[i], case.priority[i], case.weight[i],
        case.rank[i], 0.1, case.fixed[i],
    )  # fmt: skip


def under(case: Case, k: int, node: int) -> bool:
    while node != -1:
        if node == k:
            return True
        node = case.parent[node]
    return False


def assert_within_limits(case: Case, a: _native.Allocator) -> None:
    """Settled values plus fixed draws stay within every limit, except one the fixed draws fill on their own,
    which then has only fixed or paused sessions on it."""
    m = len(case.node)
    drawn = [f if f is not None else a.get(i) for i, f in enumerate(case.fixed)]
    for i in range(m):
        x = drawn[i]
        assert x is not None
        if case.fixed[i] is None:  # (a fixed draw is what the charger does, not ours to settle)
            assert x == 0 or x >= case.min_a[i] - 1e-9, (i, x)
    for k in range(len(case.parent)):
        members = [i for i in range(m) if under(case, k, case.node[i])]
        for p in range(3):
            on = [i for i in members if case.phases[i] >> p & 1]
            load = sum(drawn[i] or 0.0 for i in on)
            if load > case.limit_a[k][p] + 1e-6:
                assert all(case.fixed[i] is not None or drawn[i] == 0 for i in on), (k, p, load)
        watts = sum((drawn[i] or 0.0) * bin(case.phases[i]).count("1") * case.voltage[k] for i in members)
        if watts > case.limit_w[k] + 1e-3:
            assert all(case.fixed[i] is not None or drawn[i] == 0 for i in members), (k, watts)


def assert_raw_matches(case: Case, a: _native.Allocator) -> None:
    want = reference(case)
    got = a.raw()
    assert set(got) == {i for i, f in enumerate(case.fixed) if f is None}
    for i, g in got.items():
        assert abs(g - want[i]) < 0.01, (i, got, want, case)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stateful_cases(), st.data())
def test_allocator_ticks_match_the_reference_with_fixed_draws_and_holds(
    case: Case, data: st.DataObject
) -> None:
    a = _native.Allocator(min_hold_s=HOLD_S)
    load_tree(a, case)
    for i in range(len(case.node)):
        put(a, case, i)
    a.tick(0.0)
    assert_raw_matches(case, a)  # every session is new: no holds
    assert_within_limits(case, a)
    # A second later: maxima and a limit change, one session arrives. Every session that ran or paused at the
    # first tick is in its hold now.
    settled = [a.get(i) for i in range(len(case.node))]
    case.hold = [FREE if s is None else PAUSED if s == 0 else RUNNING for s in settled]
    for i in range(len(case.node)):
        if data.draw(st.booleans()):
            case.max_a[i] = case.min_a[i] + data.draw(st.integers(0, 30))
            put(a, case, i)
    k = data.draw(st.integers(0, len(case.parent) - 1))
    case.limit_a[k] = (data.draw(st.integers(0, 80).map(float)), *case.limit_a[k][1:])
    load_tree(a, case)
    case.node.append(data.draw(st.integers(0, len(case.parent) - 1)))
    case.phases.append(7)
    case.min_a.append(6.0)
    case.max_a.append(16.0)
    case.priority.append(1)
    case.weight.append(1.0)
    case.rank.append(len(case.rank))
    case.fixed.append(None)
    case.hold.append(FREE)
    put(a, case, len(case.node) - 1)
    a.tick(1.0)
    assert_raw_matches(case, a)
    assert_within_limits(case, a)
    # After the hold every session is free again.
    a.tick(1.0 + HOLD_S)
    case.hold = []
    assert_raw_matches(case, a)
    assert_within_limits(case, a)


def one_phase_site(limit: float) -> _native.Allocator:
    a = _native.Allocator()
    a.set_tree([-1], [(limit, INF, INF)], [INF], [230.0])
    return a


def test_allocator_reports_each_change_once_and_settles_with_step_hysteresis_and_holds() -> None:
    a = one_phase_site(20.0)
    a.put(1, 0, 1, 6.0, 32.0)
    a.put(2, 0, 1, 6.0, 32.0, step_a=1.0)
    assert a.get(1) is None
    assert len(a) == 2
    assert sorted(a.tick(0.0)) == [(1, 10.0), (2, 10.0)]
    assert a.tick(1.0) == []
    # 10.5 A each: less than 1 A more is held back; the raw allocation shows it.
    a.set_tree([-1], [(21.0, INF, INF)], [INF], [230.0])
    assert a.tick(2.0) == []
    assert a.raw() == pytest.approx({1: 10.5, 2: 10.5})
    # Decreases apply at once, rounded down to each session's step.
    a.set_tree([-1], [(19.0, INF, INF)], [INF], [230.0])
    assert sorted(a.tick(3.0)) == [(1, 9.5), (2, 9.0)]
    # Room for one: one is paused and stays paused for the hold although room comes back.
    a.set_tree([-1], [(10.0, INF, INF)], [INF], [230.0])
    (paused, zero), *rest = [c for c in a.tick(4.0) if c[1] == 0.0]
    assert zero == 0.0 and rest == []
    a.set_tree([-1], [(40.0, INF, INF)], [INF], [230.0])
    assert paused not in dict(a.tick(100.0))
    assert a.get(paused) == 0.0
    assert dict(a.tick(304.0))[paused] == 20.0


def test_allocator_fixed_sessions_are_reserved_not_reported_and_reappear_when_unfixed() -> None:
    a = one_phase_site(32.0)
    a.put(1, 0, 1, 6.0, 32.0, fixed_a=16.0)
    a.put(2, 0, 1, 6.0, 32.0)
    assert a.tick(0.0) == [(2, 16.0)]
    assert a.get(1) is None
    assert a.raw() == {2: 16.0}
    a.put(1, 0, 1, 6.0, 32.0)
    assert dict(a.tick(1.0)) == {1: 16.0}  # 2 holds its 16 A
    a.remove(1)
    a.remove(99)
    assert len(a) == 1
    assert a.get(1) is None


def test_allocator_bad_input_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="min_hold_s"):
        _native.Allocator(min_hold_s=-1.0)
    a = _native.Allocator()
    with pytest.raises(ValueError, match="node 1: its parent must come before it"):
        a.set_tree([-1, 3], [(1, 1, 1)] * 2, [INF] * 2, [230] * 2)
    with pytest.raises(ValueError, match="node 0: limits must be >= 0"):
        a.set_tree([-1], [(-1, 1, 1)], [INF], [230])
    with pytest.raises(ValueError, match="session 5: bad phases"):
        a.put(5, 0, 0, 6.0, 32.0)
    with pytest.raises(ValueError, match="session 5: bad step_a"):
        a.put(5, 0, 1, 6.0, 32.0, step_a=0.0)
    a.put(5, 3, 1, 6.0, 32.0)
    with pytest.raises(ValueError, match="session 5: node 3 is not in the tree"):
        a.tick(0.0)
