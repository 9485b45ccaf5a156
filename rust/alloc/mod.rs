//! The load allocator: how much current each charging session may draw so that no capacity node (grid
//! connection, site, transformer, feeder, panel, charger) goes over any of its limits, shared weighted max-min
//! fair by priority class. Pure functions over structure-of-arrays; no I/O, no Python.
//!
//! ## Inputs
//! - A forest of capacity nodes in depth-first order (every parent before its children, each subtree a
//!   contiguous range), each with a limit per phase in A (`f64::INFINITY`: none) and a total limit in W, and
//!   the line-to-neutral voltage of its site. Power and current convert as P = I × V × phases in use (power
//!   factor 1).
//! - Sessions at the leaves: the node they hang under, the site phases they draw on (a 3-bit mask, after the
//!   charger's wiring and the phases the EV uses), a minimum and a maximum current, a priority class (higher
//!   first), a weight and a rank (the deterministic tie order, e.g. by charger id).
//!
//! ## The allocation (what `allocate` computes, and what the reference solver in tests/load restates)
//! 1. **Pausing.** With every session at its minimum, some limit may be exceeded: then sessions are paused
//!    (0 A) one at a time, lowest priority first and, within a priority, highest rank first, each only if it
//!    draws on a limit that is still exceeded, until none is. A session never gets a current between 0 and
//!    its minimum.
//! 2. **Filling, class by class from the highest priority.** Within a class, progressive filling: a common
//!    level `t` rises from 0 and each session draws `clamp(weight × t, min, max)`; when a limit is reached,
//!    every session of the class drawing on it stays where it is (frozen), and the others go on rising.
//!    Lower classes sit at their minimum meanwhile; a higher class's result is fixed. This is weighted max-min
//!    fairness under every ancestor's per-phase and total limit.
//!
//! Rounding down to the charger's step, hysteresis and minimum run times are the caller's, applied to the
//! result (they need the previous tick).
//!
//! ## Cost
//! Event-driven: each session starts and stops rising once (two sorted events), each constraint saturates at
//! most once, and a saturation freezes a contiguous range of sessions; constraint saturation times sit in a
//! heap. O(S · depth · log S) per class per call.

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::BinaryHeap;

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

/// The current of each session (A, not rounded; 0 = paused), in the sessions' order.
pub fn allocate(tree: &Tree, s: &Sessions) -> Result<Vec<f64>, InputError> {
    check(tree, s)?;
    let n = tree.parent.len();
    let m = s.len();
    // Sessions by node (depth-first), so a subtree's sessions are one contiguous range.
    let mut order: Vec<u32> = (0..m as u32).collect();
    order.sort_by_key(|&i| (s.node[i as usize], i));
    let mut first = vec![0u32; n + 1]; // sessions of node k: order[first[k]..first[k+1]]
    for &i in &order {
        first[s.node[i as usize] as usize + 1] += 1;
    }
    for k in 0..n {
        first[k + 1] += first[k];
    }
    // Each node's subtree ends where the next node that is not its descendant starts.
    let mut end = vec![n as u32; n];
    {
        let mut stack: Vec<u32> = Vec::new();
        for k in 0..n {
            while let Some(&top) = stack.last() {
                if is_ancestor(tree, top, k as u32) {
                    break;
                }
                end[top as usize] = k as u32;
                stack.pop();
            }
            stack.push(k as u32);
        }
    }
    let cx = Cx { tree, s };
    let limit = |c: usize| cx.limit(c);
    let coef = |i: usize, c: usize| cx.coef(i, c);
    let ancestors = |i: usize| cx.ancestors(i);

    // 1. Pausing.
    let mut load = vec![0.0f64; n * KINDS];
    let mut paused = vec![false; m];
    for i in 0..m {
        for a in ancestors(i) {
            for kind in 0..KINDS {
                let c = a as usize * KINDS + kind;
                load[c] += coef(i, c) * s.min_a[i];
            }
        }
    }
    let over = |load: &[f64], c: usize| load[c] > limit(c) + tolerance(limit(c));
    let mut violated = (0..n * KINDS).filter(|&c| over(&load, c)).count();
    if violated > 0 {
        let mut by_pause: Vec<usize> = (0..m).collect();
        by_pause.sort_by(|&a, &b| {
            s.priority[a]
                .cmp(&s.priority[b])
                .then(s.rank[b].cmp(&s.rank[a]))
        });
        for i in by_pause {
            if violated == 0 {
                break;
            }
            if s.min_a[i] <= 0.0 {
                continue;
            }
            let draws_on_violated = ancestors(i).any(|a| {
                (0..KINDS).any(|kind| {
                    let c = a as usize * KINDS + kind;
                    coef(i, c) > 0.0 && over(&load, c)
                })
            });
            if !draws_on_violated {
                continue;
            }
            paused[i] = true;
            for a in ancestors(i) {
                for kind in 0..KINDS {
                    let c = a as usize * KINDS + kind;
                    let was = over(&load, c);
                    load[c] -= coef(i, c) * s.min_a[i];
                    if was && !over(&load, c) {
                        violated -= 1;
                    }
                }
            }
        }
    }

    // 2. Filling, class by class. `load` holds every active session at its minimum; a class's filling adds
    // what its sessions draw above their minimum.
    let mut alloc: Vec<f64> = (0..m)
        .map(|i| if paused[i] { 0.0 } else { s.min_a[i] })
        .collect();
    let mut classes: Vec<i32> = (0..m)
        .filter(|&i| !paused[i])
        .map(|i| s.priority[i])
        .collect();
    classes.sort_unstable_by(|a, b| b.cmp(a));
    classes.dedup();
    let mut fill = Fill {
        load,
        slope: vec![0.0; n * KINDS],
        at: vec![0.0; n * KINDS],
        version: vec![0; n * KINDS],
        saturated: vec![false; n * KINDS],
        frozen: vec![false; m],
    };
    for class in classes {
        let members: Vec<usize> = (0..m)
            .filter(|&i| !paused[i] && s.priority[i] == class)
            .collect();
        fill.run(&cx, &members, &order, &first, &end, &mut alloc);
    }
    Ok(alloc)
}

/// Slack for float sums: a limit is reached within this.
fn tolerance(limit: f64) -> f64 {
    1e-9 * (1.0 + limit.abs())
}

fn is_ancestor(tree: &Tree, a: u32, mut k: u32) -> bool {
    while k != NO_PARENT {
        if k == a {
            return true;
        }
        k = tree.parent[k as usize];
    }
    false
}

/// The input, and what each constraint and session coefficient is.
struct Cx<'a> {
    tree: &'a Tree,
    s: &'a Sessions,
}

impl<'a> Cx<'a> {
    /// Constraint `c` (node `c / 4`, kind `c % 4`: phases L1-L3, then the total power) limits to this.
    fn limit(&self, c: usize) -> f64 {
        let (node, kind) = (c / KINDS, c % KINDS);
        if kind < 3 {
            self.tree.limit_a[node][kind]
        } else {
            self.tree.limit_w[node]
        }
    }

    /// What one ampere of session `i` counts in constraint `c`: 1 on a phase it draws on, its phases × V in W.
    fn coef(&self, i: usize, c: usize) -> f64 {
        let (node, kind) = (c / KINDS, c % KINDS);
        let ph = self.s.phases[i];
        if kind < 3 {
            ((ph >> kind) & 1) as f64
        } else {
            ph.count_ones() as f64 * self.tree.voltage[node]
        }
    }

    /// Session `i`'s node and every node above it.
    fn ancestors(&self, i: usize) -> AncestorIter<'a> {
        AncestorIter {
            tree: self.tree,
            at: self.s.node[i],
        }
    }
}

struct AncestorIter<'a> {
    tree: &'a Tree,
    at: u32,
}

impl Iterator for AncestorIter<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.at == NO_PARENT {
            return None;
        }
        let k = self.at;
        self.at = self.tree.parent[k as usize];
        Some(k)
    }
}

/// A constraint's saturation time in the heap (earliest first); stale when its version moved on.
#[derive(PartialEq)]
struct Due {
    t: f64,
    c: usize,
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

/// The state of one class's progressive filling, per constraint: its load as of time `at`, the rate it rises
/// at (the weighted sessions rising through it), and whether it is full.
struct Fill {
    load: Vec<f64>,
    slope: Vec<f64>,
    at: Vec<f64>,
    version: Vec<u32>,
    saturated: Vec<bool>,
    frozen: Vec<bool>,
}

impl Fill {
    fn run(
        &mut self,
        cx: &Cx<'_>,
        members: &[usize],
        order: &[u32],
        first: &[u32],
        end: &[u32],
        alloc: &mut [f64],
    ) {
        let s = cx.s;
        let limit = |c: usize| cx.limit(c);
        let coef = |i: usize, c: usize| cx.coef(i, c);
        let ancestors = |i: usize| cx.ancestors(i);
        // A new class: every constraint's clock restarts at level 0 with no slope; only this class rises.
        self.slope.iter_mut().for_each(|x| *x = 0.0);
        self.at.iter_mut().for_each(|x| *x = 0.0);
        let mut in_class = vec![false; s.len()];
        // Events: (level, session, starts rising?)
        let mut events: Vec<(f64, usize, bool)> = Vec::with_capacity(members.len() * 2);
        for &i in members {
            in_class[i] = true;
            let w = s.weight[i];
            if s.max_a[i] <= s.min_a[i] {
                continue; // nothing to rise: stays at its minimum
            }
            events.push((s.min_a[i] / w, i, true));
            events.push((s.max_a[i] / w, i, false));
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.2.cmp(&a.2)).then(a.1.cmp(&b.1)));
        let mut rising = vec![false; s.len()];
        let mut heap: BinaryHeap<Due> = BinaryHeap::new();
        let mut next_event = 0;
        loop {
            // The next thing to happen: a session's breakpoint or a constraint filling up.
            while let Some(top) = heap.peek() {
                if top.version != self.version[top.c] || self.saturated[top.c] {
                    heap.pop();
                } else {
                    break;
                }
            }
            let t_event = events.get(next_event).map(|e| e.0);
            let t_due = heap.peek().map(|d| d.t);
            match (t_event, t_due) {
                (None, None) => break,
                (Some(te), td) if td.is_none_or(|td| te < td) => {
                    let (t, i, starts) = events[next_event];
                    next_event += 1;
                    if self.frozen[i] {
                        continue;
                    }
                    let blocked = ancestors(i).any(|a| {
                        (0..KINDS).any(|kind| {
                            let c = a as usize * KINDS + kind;
                            coef(i, c) > 0.0 && self.saturated[c]
                        })
                    });
                    if starts && blocked {
                        // A limit it draws on is already full (a higher class filled it): it stays at its
                        // minimum.
                        self.frozen[i] = true;
                        continue;
                    }
                    if starts {
                        rising[i] = true;
                    } else {
                        rising[i] = false;
                        alloc[i] = s.max_a[i];
                    }
                    let dw = if starts { s.weight[i] } else { -s.weight[i] };
                    for a in ancestors(i) {
                        for kind in 0..KINDS {
                            let c = a as usize * KINDS + kind;
                            let k = coef(i, c);
                            if k > 0.0 {
                                self.advance(c, t);
                                self.slope[c] += k * dw;
                                self.schedule(c, limit(c), &mut heap);
                            }
                        }
                    }
                }
                (_, Some(td)) => {
                    let due = heap.pop().expect("peeked");
                    let c = due.c;
                    self.advance(c, td);
                    self.saturated[c] = true;
                    // Every session of the class under this constraint that draws on it stays where it is.
                    let node = c / KINDS;
                    let lo = first[node] as usize;
                    let hi = first[end[node] as usize] as usize;
                    for &i in &order[lo..hi] {
                        let i = i as usize;
                        if !in_class[i] || self.frozen[i] || coef(i, c) <= 0.0 {
                            continue;
                        }
                        self.frozen[i] = true;
                        alloc[i] = (s.weight[i] * td).clamp(s.min_a[i], s.max_a[i]);
                        if rising[i] {
                            rising[i] = false;
                            for a in ancestors(i) {
                                for kind in 0..KINDS {
                                    let c2 = a as usize * KINDS + kind;
                                    let k = coef(i, c2);
                                    if k > 0.0 {
                                        self.advance(c2, td);
                                        self.slope[c2] -= k * s.weight[i];
                                        if !self.saturated[c2] {
                                            self.schedule(c2, limit(c2), &mut heap);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (Some(_), None) => unreachable!("handled above"),
            }
        }
        // What still rises at the end has reached its maximum (its stop event passed).
        for &i in members {
            if !self.frozen[i] && s.max_a[i] <= s.min_a[i] {
                alloc[i] = s.min_a[i];
            }
        }
        // The class's final draw is now part of every constraint's load for the classes below.
        // (`advance` already accumulated it; nothing rises any more.)
    }

    /// Bring constraint `c`'s load to level `t`.
    fn advance(&mut self, c: usize, t: f64) {
        if t > self.at[c] {
            self.load[c] += self.slope[c] * (t - self.at[c]);
            self.at[c] = t;
        }
    }

    /// (Re)schedule when constraint `c` fills up at its current slope.
    fn schedule(&mut self, c: usize, limit: f64, heap: &mut BinaryHeap<Due>) {
        self.version[c] = self.version[c].wrapping_add(1);
        if self.slope[c] > 1e-12 && limit.is_finite() {
            let room = (limit - self.load[c]).max(0.0);
            heap.push(Due {
                t: self.at[c] + room / self.slope[c],
                c,
                version: self.version[c],
            });
        }
    }
}

fn check(tree: &Tree, s: &Sessions) -> Result<(), InputError> {
    let n = tree.parent.len();
    if tree.limit_a.len() != n || tree.limit_w.len() != n || tree.voltage.len() != n {
        return Err(InputError::Lengths("tree"));
    }
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
    for i in 0..m {
        if s.node[i] as usize >= n {
            return Err(InputError::Session(i, "node"));
        }
        if s.phases[i] == 0 || s.phases[i] > 7 {
            return Err(InputError::Session(i, "phases"));
        }
        let (lo, hi) = (s.min_a[i], s.max_a[i]);
        if lo.is_nan() || hi.is_nan() || lo < 0.0 || hi < lo || hi.is_infinite() {
            return Err(InputError::Session(i, "min_a/max_a"));
        }
        if s.weight[i].is_nan() || s.weight[i] <= 0.0 || s.weight[i].is_infinite() {
            return Err(InputError::Session(i, "weight"));
        }
    }
    Ok(())
}
