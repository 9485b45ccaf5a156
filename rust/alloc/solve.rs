#[cfg(test)]
#[path = "solve_tests.rs"]
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
    Ok(solve(tree, s, &[], &[]))
}

/// The allocation for checked input. `fixed[i]` (when `fixed` is not empty): NaN for an allocatable session,
/// else the current it is counted as drawing without being allocated (its result is 0). `hold` (when not
/// empty): each session's `Hold`.
pub(crate) fn solve(tree: &Tree, s: &Sessions, fixed: &[f64], hold: &[Hold]) -> Vec<f64> {
    let n = tree.parent.len();
    let m = s.len();
    let fixed_a = |i: usize| fixed.get(i).copied().filter(|x| !x.is_nan());
    let hold_of = |i: usize| hold.get(i).copied().unwrap_or_default();
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
    let over = |load: &[f64], c: usize| load[c] > limit(c) + tolerance(limit(c));

    // 0. Fixed draws are reserved first. A limit they exceed on their own pauses every allocatable session
    // that draws on it, and is then left out of the pausing (nothing allocatable can bring it back).
    let mut load = vec![0.0f64; n * KINDS];
    let mut paused = vec![false; m];
    for (i, p) in paused.iter_mut().enumerate() {
        if let Some(a_fixed) = fixed_a(i) {
            *p = true;
            for a in ancestors(i) {
                for kind in 0..KINDS {
                    let c = a as usize * KINDS + kind;
                    load[c] += coef(i, c) * a_fixed;
                }
            }
        }
    }
    let fixed_over: Vec<bool> = (0..n * KINDS).map(|c| over(&load, c)).collect();
    for (i, p) in paused.iter_mut().enumerate() {
        if *p {
            continue;
        }
        let on_fixed_over = ancestors(i).any(|a| {
            (0..KINDS).any(|kind| {
                let c = a as usize * KINDS + kind;
                coef(i, c) > 0.0 && fixed_over[c]
            })
        });
        if hold_of(i) == Hold::Paused || on_fixed_over {
            *p = true;
        }
    }

    // 1. Pausing.
    for i in (0..m).filter(|&i| !paused[i]) {
        for a in ancestors(i) {
            for kind in 0..KINDS {
                let c = a as usize * KINDS + kind;
                load[c] += coef(i, c) * s.min_a[i];
            }
        }
    }
    let mut violated = (0..n * KINDS)
        .filter(|&c| !fixed_over[c] && over(&load, c))
        .count();
    if violated > 0 {
        let mut by_pause: Vec<usize> = (0..m).filter(|&i| !paused[i]).collect();
        by_pause.sort_by(|&a, &b| {
            s.priority[a]
                .cmp(&s.priority[b])
                .then((hold_of(a) == Hold::Running).cmp(&(hold_of(b) == Hold::Running)))
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
    alloc
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
