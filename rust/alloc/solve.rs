#[cfg(test)]
#[path = "solve_tests.rs"]
mod tests;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Constraints per node: one per phase, and the total power.
const KINDS: usize = 4;
const NO_PARENT: u32 = u32::MAX;

/// The capacity tree(s), depth-first.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Parent index, or `u32::MAX` for a root (a site's grid connection).
    pub parent: Vec<u32>,
    /// Per-phase limits in A; `f64::INFINITY` where there is none.
    pub limit_a: Vec<[f64; 3]>,
    /// Total limit in W; `f64::INFINITY` where there is none.
    pub limit_w: Vec<f64>,
    /// Line-to-neutral voltage of the node's site.
    pub voltage: Vec<f64>,
}

/// The sessions, in any order.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    pub node: Vec<u32>,
    /// Bit k: draws on site phase L(k+1).
    pub phases: Vec<u8>,
    pub min_a: Vec<f64>,
    pub max_a: Vec<f64>,
    pub priority: Vec<i32>,
    pub weight: Vec<f64>,
    /// Tie order: of two sessions of one priority, the higher rank is paused first.
    pub rank: Vec<u32>,
}

impl Sessions {
    pub fn len(&self) -> usize {
        self.node.len()
    }
    pub fn is_empty(&self) -> bool {
        self.node.is_empty()
    }
}

/// What is wrong with the input.
#[derive(Debug, Clone, PartialEq)]
pub enum InputError {
    Lengths(&'static str),
    Parent(usize),
    Node(usize),
    Session(usize, &'static str),
}

/// Where a session stands before a tick, beyond its demand (the stateful `Allocator` knows it; the pure
/// `allocate` treats every session as `Free`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hold {
    /// May be paused or run at once.
    #[default]
    Free,
    /// Started running less than the minimum hold ago: paused only if a limit forces it, after the `Free`
    /// sessions of its priority class.
    Running,
    /// Paused less than the minimum hold ago: stays paused (it demands nothing this tick).
    Paused,
}

/// The current of each session (A, not rounded; 0 = paused), in the sessions' order. Every session is
/// allocatable and free to pause or run; see `Allocator` for fixed draws and minimum hold times.
pub fn allocate(tree: &Tree, s: &Sessions) -> Result<Vec<f64>, InputError> {
    check(tree, s)?;
    let mut solver = Solver::default();
    solver.set_tree(tree);
    let mut alloc = Vec::new();
    solver.solve(tree, s, &[], &[], &mut alloc);
    Ok(alloc)
}

/// Constraint `c` is node `c / KINDS`'s phase `c % KINDS` (L1-L3) or, for kind 3, its total power. Every
/// load and limit is kept in amperes: the power limit as W / V of its node, a session counting its phases in
/// use on it, so a session's coefficient on a constraint depends on the kind only and loads add up the tree.
fn coef(phases: u8, kind: usize) -> f64 {
    if kind < 3 {
        ((phases >> kind) & 1) as f64
    } else {
        phases.count_ones() as f64
    }
}

/// The kinds a session draws on (bit per kind: its phases, and the total power).
fn kinds(phases: u8) -> u8 {
    phases | 8
}

const PAUSED: u8 = 1;
const FROZEN: u8 = 2;
const RISING: u8 = 4;

const SATURATED: u8 = 1;
const FIXED_OVER: u8 = 2;
const TOUCHED: u8 = 4;
/// Has an entry in the heap with its current version.
const LIVE: u8 = 8;
/// Its slope rose since that entry was pushed (the entry is too late: push a new one).
const RAISED: u8 = 16;
/// Its slope only fell since (the entry is early: look again when it comes up).
const LOWERED: u8 = 32;
/// In `dirty`.
const DIRTY: u8 = 64;

/// The allocation's working state, kept between calls so that a tick allocates nothing and redoes nothing
/// that did not change: what derives from the tree (subtree ends, limits in amperes), the sessions by node and
/// by (priority, rank), and per-constraint and per-session scratch. The owner says what changed through
/// `set_tree`, `sessions_moved` and `ranks_changed`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Solver {
    /// Node k's subtree is nodes k..end[k].
    end: Vec<u32>,
    /// Per constraint, in amperes (see `coef`): its limit, its load as of level `at` and the rate it rises at.
    limit: Vec<f64>,
    load: Vec<f64>,
    slope: Vec<f64>,
    at: Vec<f64>,
    /// Per node: the kinds with a finite limit.
    finite: Vec<u8>,
    /// Per node, this call: the kinds that could fill up (a finite limit below what the fixed draws and the
    /// active sessions at their maximum would draw). The filling skips the others: they never bind.
    binds: Vec<u8>,
    /// Per constraint, this call: the fixed draws and the active sessions at their maximum.
    cap: Vec<f64>,
    /// Sessions by node: node k's are order[first[k]..first[k + 1]], a subtree's one contiguous range.
    order: Vec<u32>,
    first: Vec<u32>,
    order_ok: bool,
    /// Sessions by priority ascending, then rank descending: the pause order, each class a contiguous run.
    by_class: Vec<u32>,
    class_ok: bool,
    version: Vec<u32>,
    flags: Vec<u8>,
    /// Constraints whose slope changed since their last scheduling.
    touched: Vec<u32>,
    /// Constraints whose `slope`/`at` moved in this class (reset before the next).
    dirty: Vec<u32>,
    /// Per node: the kinds exceeded on it or above it.
    path: Vec<u8>,
    state: Vec<u8>,
    /// Session i is order[pos[i]].
    pos: Vec<u32>,
    /// (level, pos << 1 | stops): at one level, in node order, so that walking up the tree stays in cache.
    events: Vec<(f64, u32)>,
    heap: BinaryHeap<Due>,
    /// How long the last call took (ms) to order the sessions and place fixed draws and holds, to pause, and
    /// to fill (the bench's profile).
    pub(crate) phase_ms: [f64; 3],
}

impl Solver {
    /// The tree changed (it was checked).
    pub(crate) fn set_tree(&mut self, tree: &Tree) {
        let n = tree.parent.len();
        self.end.clear();
        self.end.resize(n, n as u32);
        let mut stack: Vec<u32> = Vec::new();
        for k in 0..n {
            while let Some(&top) = stack.last() {
                if is_ancestor(tree, top, k as u32) {
                    break;
                }
                self.end[top as usize] = k as u32;
                stack.pop();
            }
            stack.push(k as u32);
        }
        self.limit.clear();
        self.finite.clear();
        for k in 0..n {
            let v = tree.voltage[k];
            let limits = [
                tree.limit_a[k][0],
                tree.limit_a[k][1],
                tree.limit_a[k][2],
                tree.limit_w[k] / v,
            ];
            let mut finite = 0u8;
            for (kind, &limit) in limits.iter().enumerate() {
                self.limit.push(limit);
                if limit.is_finite() {
                    finite |= 1 << kind;
                }
            }
            self.finite.push(finite);
        }
        for v in [&mut self.load, &mut self.slope, &mut self.at] {
            v.clear();
            v.resize(n * KINDS, 0.0);
        }
        self.version.clear();
        self.version.resize(n * KINDS, 0);
        self.flags.clear();
        self.flags.resize(n * KINDS, 0);
        self.path.clear();
        self.path.resize(n, 0);
        self.touched.clear();
        self.dirty.clear();
        self.order_ok = false;
    }

    /// A session came, went or moved to another node.
    pub(crate) fn sessions_moved(&mut self) {
        self.order_ok = false;
        self.class_ok = false;
    }

    /// A session's priority or rank changed.
    pub(crate) fn ranks_changed(&mut self) {
        self.class_ok = false;
    }

    /// Bytes reserved on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        fn v<T>(x: &Vec<T>) -> usize {
            x.capacity() * std::mem::size_of::<T>()
        }
        v(&self.end)
            + v(&self.limit)
            + v(&self.load)
            + v(&self.slope)
            + v(&self.at)
            + v(&self.finite)
            + v(&self.binds)
            + v(&self.cap)
            + v(&self.order)
            + v(&self.pos)
            + v(&self.first)
            + v(&self.by_class)
            + v(&self.version)
            + v(&self.flags)
            + v(&self.touched)
            + v(&self.dirty)
            + v(&self.path)
            + v(&self.state)
            + v(&self.events)
            + self.heap.capacity() * std::mem::size_of::<Due>()
    }

    fn over(&self, c: usize) -> bool {
        let limit = self.limit[c];
        self.load[c] > limit + tolerance(limit)
    }

    /// The allocation for checked input (the tree the one given to `set_tree`), into `alloc`. `fixed[i]`
    /// (when `fixed` is not empty): NaN for an allocatable session, else the current it is counted as drawing
    /// without being allocated (its result is 0). `hold` (when not empty): each session's `Hold`.
    pub(crate) fn solve(
        &mut self,
        tree: &Tree,
        s: &Sessions,
        fixed: &[f64],
        hold: &[Hold],
        alloc: &mut Vec<f64>,
    ) {
        let n = tree.parent.len();
        let m = s.len();
        let parent = &tree.parent;
        let hold_of = |i: usize| hold.get(i).copied().unwrap_or_default();
        let t0 = Instant::now();
        if !self.order_ok {
            // Counting sort by node.
            self.first.clear();
            self.first.resize(n + 1, 0);
            for &k in &s.node {
                self.first[k as usize + 1] += 1;
            }
            for k in 0..n {
                self.first[k + 1] += self.first[k];
            }
            self.order.clear();
            self.order.resize(m, 0);
            self.pos.clear();
            self.pos.resize(m, 0);
            let mut next = self.first.clone();
            for (i, &k) in s.node.iter().enumerate() {
                self.order[next[k as usize] as usize] = i as u32;
                self.pos[i] = next[k as usize];
                next[k as usize] += 1;
            }
            self.order_ok = true;
        }
        if !self.class_ok {
            self.by_class.clear();
            self.by_class.extend(0..m as u32);
            self.by_class.sort_unstable_by_key(|&i| {
                let i = i as usize;
                (s.priority[i], std::cmp::Reverse(s.rank[i]), i)
            });
            self.class_ok = true;
        }
        self.state.clear();
        self.state.resize(m, 0);
        alloc.clear();
        alloc.resize(m, 0.0);

        // 0. Fixed draws are reserved first (each node's own, then added up the tree). A limit they exceed on
        // their own pauses every allocatable session that draws on it, and is then left out of the pausing.
        self.load.iter_mut().for_each(|x| *x = 0.0);
        self.flags.iter_mut().for_each(|x| *x = 0);
        let mut any_fixed = false;
        for (i, &f) in fixed.iter().enumerate() {
            if !f.is_nan() {
                any_fixed = true;
                self.state[i] = PAUSED;
                let base = s.node[i] as usize * KINDS;
                for kind in 0..KINDS {
                    self.load[base + kind] += coef(s.phases[i], kind) * f;
                }
            }
        }
        if any_fixed {
            self.roll_up(parent);
            for c in 0..n * KINDS {
                if self.over(c) {
                    self.flags[c] |= FIXED_OVER;
                }
            }
            self.mark_paths(parent, FIXED_OVER);
        } else {
            self.path.iter_mut().for_each(|x| *x = 0);
        }
        for i in 0..m {
            if self.state[i] & PAUSED == 0
                && (hold_of(i) == Hold::Paused
                    || self.path[s.node[i] as usize] & kinds(s.phases[i]) != 0)
            {
                self.state[i] = PAUSED;
            }
        }

        let t1 = Instant::now();
        // 1. Pausing, in the pause order: by priority class; in a class, sessions not in a running hold first,
        // then those in one; each by rank descending.
        self.load.iter_mut().for_each(|x| *x = 0.0);
        for (i, f) in (0..m).map(|i| (i, fixed.get(i).copied().unwrap_or(f64::NAN))) {
            let x = if f.is_nan() {
                if self.state[i] & PAUSED != 0 {
                    continue;
                }
                s.min_a[i]
            } else {
                f
            };
            let base = s.node[i] as usize * KINDS;
            for kind in 0..KINDS {
                self.load[base + kind] += coef(s.phases[i], kind) * x;
            }
        }
        self.roll_up(parent);
        let mut violated = 0;
        for c in 0..n * KINDS {
            if self.flags[c] & FIXED_OVER == 0 && self.over(c) {
                violated += 1;
                self.flags[c] |= TOUCHED; // (exceeded: marks the paths below)
            }
        }
        if violated > 0 {
            self.mark_paths(parent, TOUCHED);
            let mut lo = 0;
            while lo < m && violated > 0 {
                let class = s.priority[self.by_class[lo] as usize];
                let mut hi = lo;
                while hi < m && s.priority[self.by_class[hi] as usize] == class {
                    hi += 1;
                }
                for held in [false, true] {
                    for j in lo..hi {
                        if violated == 0 {
                            break;
                        }
                        let i = self.by_class[j] as usize;
                        if self.state[i] & PAUSED != 0
                            || (hold_of(i) == Hold::Running) != held
                            || s.min_a[i] <= 0.0
                            || self.path[s.node[i] as usize] & kinds(s.phases[i]) == 0
                        {
                            continue;
                        }
                        // Only the kinds it draws on with a limit can be exceeded or brought back.
                        let ph = s.phases[i];
                        let mut draws_on_violated = false;
                        let mut a = s.node[i];
                        while a != NO_PARENT && !draws_on_violated {
                            let base = a as usize * KINDS;
                            let mut on = self.finite[a as usize] & kinds(ph);
                            while on != 0 && !draws_on_violated {
                                let kind = on.trailing_zeros() as usize;
                                on &= on - 1;
                                draws_on_violated = self.over(base + kind);
                            }
                            a = parent[a as usize];
                        }
                        if !draws_on_violated {
                            continue;
                        }
                        self.state[i] = PAUSED;
                        let mut a = s.node[i];
                        while a != NO_PARENT {
                            let base = a as usize * KINDS;
                            let mut on = self.finite[a as usize] & kinds(ph);
                            while on != 0 {
                                let kind = on.trailing_zeros() as usize;
                                on &= on - 1;
                                let c = base + kind;
                                let was = self.over(c);
                                self.load[c] -= coef(ph, kind) * s.min_a[i];
                                if was && !self.over(c) {
                                    violated -= 1;
                                }
                            }
                            a = parent[a as usize];
                        }
                    }
                }
                lo = hi;
            }
        }
        for f in self.flags.iter_mut() {
            *f &= !TOUCHED;
        }

        let t2 = Instant::now();
        // 2. Filling, class by class from the highest. `load` holds every fixed draw and every active session
        // at its minimum; a class's filling adds what its sessions draw above their minimum.
        self.cap.clear();
        self.cap.resize(n * KINDS, 0.0);
        for (i, a) in alloc.iter_mut().enumerate() {
            let x = match fixed.get(i) {
                Some(&f) if !f.is_nan() => f,
                _ if self.state[i] & PAUSED != 0 => continue,
                _ => {
                    *a = s.min_a[i];
                    s.max_a[i]
                }
            };
            let base = s.node[i] as usize * KINDS;
            for kind in 0..KINDS {
                self.cap[base + kind] += coef(s.phases[i], kind) * x;
            }
        }
        self.binds.clear();
        for k in (0..n).rev() {
            let mut binds = 0u8;
            for kind in 0..KINDS {
                let c = k * KINDS + kind;
                if self.cap[c] > self.limit[c] {
                    binds |= 1 << kind;
                }
                if let Some(p) = Some(parent[k]).filter(|&p| p != NO_PARENT) {
                    self.cap[p as usize * KINDS + kind] += self.cap[c];
                }
            }
            self.binds.push(binds & self.finite[k]);
        }
        self.binds.reverse();
        let mut hi = m;
        while hi > 0 {
            let class = s.priority[self.by_class[hi - 1] as usize];
            let mut lo = hi;
            while lo > 0 && s.priority[self.by_class[lo - 1] as usize] == class {
                lo -= 1;
            }
            self.fill(tree, s, class, lo..hi, alloc);
            hi = lo;
        }
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        self.phase_ms = [ms(t0, t1), ms(t1, t2), ms(t2, Instant::now())];
    }

    /// Add each node's load into its parent's (children come after their parent in depth-first order).
    fn roll_up(&mut self, parent: &[u32]) {
        for k in (0..parent.len()).rev() {
            let p = parent[k];
            if p != NO_PARENT {
                for kind in 0..KINDS {
                    self.load[p as usize * KINDS + kind] += self.load[k * KINDS + kind];
                }
            }
        }
    }

    /// `path[k]`: the kinds of the constraints flagged `flag` on node k or above it.
    fn mark_paths(&mut self, parent: &[u32], flag: u8) {
        for (k, &p) in parent.iter().enumerate() {
            let mut mine = 0u8;
            for kind in 0..KINDS {
                if self.flags[k * KINDS + kind] & flag != 0 {
                    mine |= 1 << kind;
                }
            }
            let above = match p {
                NO_PARENT => 0,
                p => self.path[p as usize],
            };
            self.path[k] = mine | above;
        }
    }

    /// One class's progressive filling: its sessions are `by_class[members]`.
    fn fill(
        &mut self,
        tree: &Tree,
        s: &Sessions,
        class: i32,
        members: std::ops::Range<usize>,
        alloc: &mut [f64],
    ) {
        let parent = &tree.parent;
        // A new class: every constraint's clock restarts at level 0 with no slope; only this class rises.
        for &c in &self.dirty {
            self.slope[c as usize] = 0.0;
            self.at[c as usize] = 0.0;
            self.flags[c as usize] &= !(LIVE | RAISED | LOWERED | DIRTY);
        }
        self.dirty.clear();
        self.events.clear();
        for j in members {
            let i = self.by_class[j] as usize;
            if self.state[i] & PAUSED != 0 || s.max_a[i] <= s.min_a[i] {
                continue; // nothing to rise: stays at its minimum
            }
            let w = s.weight[i];
            let p = self.pos[i];
            self.events.push((s.min_a[i] / w, p << 1));
            self.events.push((s.max_a[i] / w, p << 1 | 1));
        }
        // By level, then by node (every breakpoint at one level is handled before anything else happens, so
        // their order among themselves does not matter).
        self.events
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.heap.clear();
        let mut next_event = 0;
        let events = std::mem::take(&mut self.events);
        loop {
            while let Some(top) = self.heap.peek() {
                let c = top.c as usize;
                if top.version != self.version[c] || self.flags[c] & SATURATED != 0 {
                    self.heap.pop();
                } else {
                    break;
                }
            }
            let t_event = events.get(next_event).map(|e| e.0);
            let t_due = self.heap.peek().map(|d| d.t);
            let t = match (t_event, t_due) {
                // Every session has reached its maximum or is frozen: nothing rises, nothing more fills up
                // (what is left in the heap is stale).
                (None, _) => break,
                (Some(te), Some(td)) if td <= te => {
                    // Every constraint due at this level fills up.
                    while let Some(due) = self.heap.peek().cloned() {
                        let c = due.c as usize;
                        if due.t != td {
                            break;
                        }
                        self.heap.pop();
                        if due.version != self.version[c] || self.flags[c] & SATURATED != 0 {
                            continue;
                        }
                        self.flags[c] &= !LIVE;
                        if self.due(c, td) {
                            self.saturate(tree, s, class, c, td, alloc);
                        }
                    }
                    td
                }
                (Some(te), _) => {
                    // Every session breakpoint at this level.
                    while next_event < events.len() && events[next_event].0 == te {
                        let (_, e) = events[next_event];
                        next_event += 1;
                        let i = self.order[(e >> 1) as usize] as usize;
                        let starts = e & 1 == 0;
                        if self.state[i] & FROZEN != 0 {
                            continue;
                        }
                        let ph = s.phases[i];
                        if starts && self.blocked(parent, s.node[i], ph) {
                            // A limit it draws on is already full (a higher class filled it): it stays at
                            // its minimum.
                            self.state[i] |= FROZEN;
                            continue;
                        }
                        let dw = if starts {
                            self.state[i] |= RISING;
                            s.weight[i]
                        } else {
                            self.state[i] &= !RISING;
                            alloc[i] = s.max_a[i];
                            -s.weight[i]
                        };
                        self.add_slope(parent, s.node[i], ph, dw, te);
                    }
                    te
                }
            };
            self.reschedule(t);
        }
        self.events = events;
    }

    /// Does a session at `node` on `phases` draw on a full constraint?
    fn blocked(&self, parent: &[u32], node: u32, phases: u8) -> bool {
        let mut a = node;
        while a != NO_PARENT {
            let base = a as usize * KINDS;
            let mut on = self.binds[a as usize] & kinds(phases);
            while on != 0 {
                let kind = on.trailing_zeros() as usize;
                on &= on - 1;
                if self.flags[base + kind] & SATURATED != 0 {
                    return true;
                }
            }
            a = parent[a as usize];
        }
        false
    }

    /// A session at `node` on `phases` starts (dw > 0) or stops (dw < 0) rising at level `t`.
    fn add_slope(&mut self, parent: &[u32], node: u32, phases: u8, dw: f64, t: f64) {
        // Only constraints with a limit: the others never fill up.
        let mut a = node;
        while a != NO_PARENT {
            let base = a as usize * KINDS;
            let mut on = self.binds[a as usize] & kinds(phases);
            while on != 0 {
                let kind = on.trailing_zeros() as usize;
                on &= on - 1;
                let k = coef(phases, kind);
                {
                    let c = base + kind;
                    self.advance(c, t);
                    self.slope[c] += k * dw;
                    self.flags[c] |= if dw > 0.0 { RAISED } else { LOWERED };
                    if self.flags[c] & TOUCHED == 0 {
                        self.flags[c] |= TOUCHED;
                        self.touched.push(c as u32);
                    }
                    if self.flags[c] & DIRTY == 0 {
                        self.flags[c] |= DIRTY;
                        self.dirty.push(c as u32);
                    }
                }
            }
            a = parent[a as usize];
        }
    }

    /// Constraint `c` fills up at level `t`: every session of the class under it that draws on it stays where
    /// it is.
    fn saturate(
        &mut self,
        tree: &Tree,
        s: &Sessions,
        class: i32,
        c: usize,
        t: f64,
        alloc: &mut [f64],
    ) {
        self.advance(c, t);
        self.flags[c] |= SATURATED;
        let (node, kind) = (c / KINDS, c % KINDS);
        let lo = self.first[node] as usize;
        let hi = self.first[self.end[node] as usize] as usize;
        for j in lo..hi {
            let i = self.order[j] as usize;
            let st = self.state[i];
            if st & (PAUSED | FROZEN) != 0
                || s.priority[i] != class
                || coef(s.phases[i], kind) <= 0.0
            {
                continue;
            }
            self.state[i] |= FROZEN;
            alloc[i] = (s.weight[i] * t).clamp(s.min_a[i], s.max_a[i]);
            if st & RISING != 0 {
                self.state[i] &= !RISING;
                self.add_slope(&tree.parent, s.node[i], s.phases[i], -s.weight[i], t);
            }
        }
    }

    /// Schedule when each constraint whose slope rose fills up, as of level `t`. One whose slope only fell
    /// keeps its entry, which is now early: `due` looks again when it comes up. (Most changes are falls, as
    /// sessions stop or freeze, so most need no push.)
    fn reschedule(&mut self, t: f64) {
        for j in 0..self.touched.len() {
            let c = self.touched[j] as usize;
            self.flags[c] &= !TOUCHED;
            if self.flags[c] & SATURATED != 0 {
                continue;
            }
            if self.flags[c] & LIVE == 0 || self.flags[c] & RAISED != 0 {
                self.advance(c, t);
                self.push(c);
            }
        }
        self.touched.clear();
    }

    /// Push when constraint `c` fills up at its slope now (nothing if it never does).
    fn push(&mut self, c: usize) {
        self.version[c] = self.version[c].wrapping_add(1);
        self.flags[c] &= !(LIVE | RAISED | LOWERED);
        let limit = self.limit[c];
        if self.slope[c] > 1e-12 && limit.is_finite() {
            let room = (limit - self.load[c]).max(0.0);
            self.heap.push(Due {
                t: self.at[c] + room / self.slope[c],
                c: c as u32,
                version: self.version[c],
            });
            self.flags[c] |= LIVE;
        }
    }

    /// Constraint `c`'s live entry came up at level `t`: is it full now? If its slope fell since the entry
    /// was pushed, it may not be yet: then it is pushed again at its slope now.
    fn due(&mut self, c: usize, t: f64) -> bool {
        if self.flags[c] & LOWERED == 0 {
            return true;
        }
        self.advance(c, t);
        self.push(c);
        // (The top may be an older, stale entry of the same constraint at the same level: only the one just
        // pushed counts.)
        match self.heap.peek() {
            Some(d) if d.c as usize == c && d.version == self.version[c] && d.t <= t => {
                self.heap.pop();
                self.flags[c] &= !LIVE;
                true
            }
            _ => false,
        }
    }

    /// Bring constraint `c`'s load to level `t`.
    fn advance(&mut self, c: usize, t: f64) {
        if t > self.at[c] {
            self.load[c] += self.slope[c] * (t - self.at[c]);
            self.at[c] = t;
        }
    }
}

/// Slack for float sums: a limit is reached within this (in amperes, a power limit too: its W / V).
fn tolerance(limit: f64) -> f64 {
    1e-9 * (1.0 + limit.abs())
}

pub(crate) fn is_ancestor(tree: &Tree, a: u32, mut k: u32) -> bool {
    while k != NO_PARENT {
        if k == a {
            return true;
        }
        k = tree.parent[k as usize];
    }
    false
}

/// A constraint's saturation level in the heap (earliest first); stale when its version moved on.
#[derive(Debug, Clone, PartialEq)]
struct Due {
    t: f64,
    c: u32,
    version: u32,
}

impl Eq for Due {}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .t
            .total_cmp(&self.t)
            .then_with(|| other.c.cmp(&self.c))
    }
}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn check(tree: &Tree, s: &Sessions) -> Result<(), InputError> {
    check_tree(tree)?;
    let n = tree.parent.len();
    let m = s.node.len();
    if [
        s.phases.len(),
        s.min_a.len(),
        s.max_a.len(),
        s.priority.len(),
        s.weight.len(),
        s.rank.len(),
    ]
    .iter()
    .any(|&l| l != m)
    {
        return Err(InputError::Lengths("sessions"));
    }
    for i in 0..m {
        if s.node[i] as usize >= n {
            return Err(InputError::Session(i, "node"));
        }
        check_session(s.phases[i], s.min_a[i], s.max_a[i], s.weight[i])
            .map_err(|what| InputError::Session(i, what))?;
    }
    Ok(())
}

/// The tree's arrays agree in length, it is depth-first, its limits are >= 0 (or infinite) and its voltages
/// > 0.
pub(crate) fn check_tree(tree: &Tree) -> Result<(), InputError> {
    let n = tree.parent.len();
    if tree.limit_a.len() != n || tree.limit_w.len() != n || tree.voltage.len() != n {
        return Err(InputError::Lengths("tree"));
    }
    for (k, &p) in tree.parent.iter().enumerate() {
        if p != NO_PARENT && p as usize >= k {
            return Err(InputError::Parent(k)); // not depth-first (or a cycle)
        }
        let lims = tree.limit_a[k];
        if lims
            .iter()
            .chain([&tree.limit_w[k]])
            .any(|&l| l.is_nan() || l < 0.0)
            || tree.voltage[k].is_nan()
            || tree.voltage[k] <= 0.0
        {
            return Err(InputError::Node(k));
        }
    }
    Ok(())
}

/// One session's demand makes sense; the error names the field.
pub(crate) fn check_session(
    phases: u8,
    min_a: f64,
    max_a: f64,
    weight: f64,
) -> Result<(), &'static str> {
    if phases == 0 || phases > 7 {
        return Err("phases");
    }
    if min_a.is_nan() || max_a.is_nan() || min_a < 0.0 || max_a < min_a || max_a.is_infinite() {
        return Err("min_a/max_a");
    }
    if weight.is_nan() || weight <= 0.0 || weight.is_infinite() {
        return Err("weight");
    }
    Ok(())
}
