"""A slow, obviously correct restatement of the allocator's rule (rust/alloc/mod.rs), for tests only.

0. Fixed draws (`fixed[i]` not None: the session is not allocated, it is counted as drawing that) are reserved
   first. A limit the fixed draws exceed on their own pauses every allocatable session drawing on it and is then
   ignored by step 1. A session in a paused hold (`hold[i] == PAUSED`) is paused.
1. Pausing: with every other session at its minimum, while some limit is exceeded, pause (0 A) the next session
   in (priority ascending, running hold after no hold, rank descending) order that draws on an exceeded limit.
2. Filling, class by class from the highest priority: a level t rises; each unfrozen session of the class draws
   clamp(weight × t, min, max); lower classes sit at their minimum, higher ones at their result. The next level
   at which some limit is reached is found by bisection, constraint by constraint; every constraint full at that
   level freezes the class's sessions drawing on it. Repeat until nobody of the class can rise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Case:
    parent: list[int]  # -1 for a root; depth-first
    limit_a: list[tuple[float, float, float]]
    limit_w: list[float]
    voltage: list[float]
    node: list[int] = field(default_factory=list)
    phases: list[int] = field(default_factory=list)
    min_a: list[float] = field(default_factory=list)
    max_a: list[float] = field(default_factory=list)
    priority: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    rank: list[int] = field(default_factory=list)
    # Either empty (every session allocatable and free) or one entry per session.
    fixed: list[float | None] = field(default_factory=list)
    hold: list[int] = field(default_factory=list)  # FREE, RUNNING or PAUSED


FREE, RUNNING, PAUSED = 0, 1, 2


def _under(case: Case, k: int, node: int) -> bool:
    while node != -1:
        if node == k:
            return True
        node = case.parent[node]
    return False


def _constraints(case: Case) -> list[tuple[float, dict[int, float]]]:
    """(limit, {session: coefficient}) for every node's three phases and its total power."""
    out = []
    for k in range(len(case.parent)):
        members = [i for i in range(len(case.node)) if _under(case, k, case.node[i])]
        for p in range(3):
            coef = {i: 1.0 for i in members if case.phases[i] >> p & 1}
            out.append((case.limit_a[k][p], coef))
        watts = {i: bin(case.phases[i]).count("1") * case.voltage[k] for i in members}
        out.append((case.limit_w[k], watts))
    return out


def _load(c: dict[int, float], alloc: list[float]) -> float:
    return sum(k * alloc[i] for i, k in c.items())


def _tol(limit: float) -> float:
    return 1e-9 * (1 + abs(limit))


def reference(case: Case) -> list[float]:
    """Each session's current (0 for a paused or fixed one)."""
    m = len(case.node)
    fixed = case.fixed or [None] * m
    hold = case.hold or [FREE] * m
    cons = _constraints(case)
    alloc = [f if f is not None else 0.0 for f in fixed]
    fixed_over = [_load(c, alloc) > lim + _tol(lim) for lim, c in cons]
    paused = [
        fixed[i] is not None
        or hold[i] == PAUSED
        or any(fixed_over[j] and i in c for j, (_, c) in enumerate(cons))
        for i in range(m)
    ]
    for i in range(m):
        if not paused[i]:
            alloc[i] = case.min_a[i]
    checked = [(lim, c) for j, (lim, c) in enumerate(cons) if not fixed_over[j]]
    for i in sorted(range(m), key=lambda i: (case.priority[i], hold[i] == RUNNING, -case.rank[i])):
        if paused[i]:
            continue
        if not any(_load(c, alloc) > lim + _tol(lim) for lim, c in checked):
            break
        over = [lim for lim, c in checked if _load(c, alloc) > lim + _tol(lim) and i in c]
        if over and case.min_a[i] > 0:
            paused[i] = True
            alloc[i] = 0.0
    saturated = [False] * len(cons)
    for cls in sorted({case.priority[i] for i in range(m) if not paused[i]}, reverse=True):
        rising = {i for i in range(m) if not paused[i] and case.priority[i] == cls}
        # A limit a higher class filled holds this class at its minimum.
        for j, (_, c) in enumerate(cons):
            if saturated[j]:
                rising -= set(c)

        def at(level: float, base: list[float], rising: set[int] = rising) -> list[float]:
            """The allocation with the rising sessions at `level` and the others as in `base`."""
            a = list(base)
            for i in rising:
                a[i] = min(max(case.weight[i] * level, case.min_a[i]), case.max_a[i])
            return a

        level = 0.0
        while rising:
            top = max(case.max_a[i] / case.weight[i] for i in rising)
            best = math.inf
            for j, (lim, c) in enumerate(cons):
                if saturated[j] or not (rising & set(c)) or math.isinf(lim):
                    continue
                if _load(c, at(top, alloc)) <= lim + _tol(lim):
                    continue  # never fills
                lo, hi = level, top
                for _ in range(200):
                    mid = (lo + hi) / 2
                    if _load(c, at(mid, alloc)) >= lim - _tol(lim):
                        hi = mid
                    else:
                        lo = mid
                best = min(best, hi)
            if math.isinf(best):
                alloc = at(top, alloc)
                break
            level = best
            alloc = at(level, alloc)
            for j, (lim, c) in enumerate(cons):
                if not saturated[j] and rising & set(c) and _load(c, alloc) >= lim - 1e-7 * (1 + abs(lim)):
                    saturated[j] = True
                    rising -= set(c)
    return [0.0 if paused[i] else alloc[i] for i in range(m)]
