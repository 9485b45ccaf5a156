//! The stateful allocator: the tree and the sessions kept between ticks, the minimum hold times, and the
//! settling of each tick's raw allocation into what chargers are told (see the module doc in `mod.rs`).

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

use std::collections::HashMap;

use super::solve::{check_session, check_tree, Hold, InputError, Sessions, Solver, Tree};

/// How settled values move; see `Allocator::new`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// An increase smaller than this (A) ...
    pub hysteresis_a: f64,
    /// ... or than this percentage of the last settled value, whichever is larger, is held back.
    pub hysteresis_pct: f64,
    /// A session that paused or started running less than this long ago (s) is held in that state.
    pub min_hold_s: f64,
}

impl Default for Settings {
    /// 1 A or 10%: below what a charger's own regulation and a meter's reading wander by, so chargers are not
    /// sent a profile for noise. 5 minutes: some EVs do not resume after a pause, and contactors wear.
    fn default() -> Self {
        Settings {
            hysteresis_a: 1.0,
            hysteresis_pct: 10.0,
            min_hold_s: 300.0,
        }
    }
}

/// One session as the caller puts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    pub node: u32,
    /// Bit k: draws on site phase L(k+1).
    pub phases: u8,
    pub min_a: f64,
    pub max_a: f64,
    pub priority: i32,
    pub weight: f64,
    pub rank: u32,
    /// The charger's current step: settled values are whole multiples of it.
    pub step_a: f64,
    /// Not allocated: counted as drawing this on its phases.
    pub fixed_a: Option<f64>,
}

/// What the caller got wrong; nothing was changed.
#[derive(Debug, Clone, PartialEq)]
pub enum StateError {
    /// The settings (the name of the bad one).
    Settings(&'static str),
    /// The tree (as `allocate` reports it).
    Tree(InputError),
    /// A session's field.
    Session(u64, &'static str),
    /// A session hangs under a node the tree does not have (the tree changed and it was not put again).
    NodeMissing { key: u64, node: u32, nodes: usize },
}

/// The capacity forest and the sessions under it, kept between ticks. Sessions are structure-of-arrays in
/// the order they were put (a removal moves the last one into the hole), found by key through `index`.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    settings: Settings,
    tree: Tree,
    index: HashMap<u64, u32>,
    key: Vec<u64>,
    s: Sessions,
    step_a: Vec<f64>,
    /// NaN: allocatable.
    fixed_a: Vec<f64>,
    /// The last settled value (NaN: never ticked since it was put or unfixed).
    settled: Vec<f64>,
    /// When the settled value last went from 0 to more or back (NaN: never).
    since: Vec<f64>,
    /// The last tick's raw allocation (NaN: not in that tick).
    raw: Vec<f64>,
    /// Each session's hold at this tick (scratch).
    hold: Vec<Hold>,
    solver: Solver,
    settle_ms: f64,
}

impl Allocator {
    /// An allocator with no tree and no sessions. Every setting must be finite and >= 0.
    pub fn new(settings: Settings) -> Result<Self, StateError> {
        for (v, name) in [
            (settings.hysteresis_a, "hysteresis_a"),
            (settings.hysteresis_pct, "hysteresis_pct"),
            (settings.min_hold_s, "min_hold_s"),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(StateError::Settings(name));
            }
        }
        Ok(Allocator {
            settings,
            ..Default::default()
        })
    }

    /// Replace the capacity forest (checked as `allocate` checks it). Sessions keep their node index.
    pub fn set_tree(&mut self, tree: Tree) -> Result<(), StateError> {
        check_tree(&tree).map_err(StateError::Tree)?;
        self.solver.set_tree(&tree);
        self.tree = tree;
        Ok(())
    }

    /// Add session `key` or update its demand. A session that turns fixed, or stops being fixed, starts
    /// afresh: no settled value, no hold.
    pub fn put(&mut self, key: u64, d: Demand) -> Result<(), StateError> {
        check_session(d.phases, d.min_a, d.max_a, d.weight)
            .map_err(|what| StateError::Session(key, what))?;
        if !(d.step_a.is_finite() && d.step_a > 0.0) {
            return Err(StateError::Session(key, "step_a"));
        }
        let fixed = match d.fixed_a {
            Some(f) if !(f.is_finite() && f >= 0.0) => {
                return Err(StateError::Session(key, "fixed_a"))
            }
            Some(f) => f,
            None => f64::NAN,
        };
        let i = match self.index.get(&key) {
            Some(&i) => i as usize,
            None => {
                let i = self.key.len();
                self.index.insert(key, i as u32);
                self.key.push(key);
                let s = &mut self.s;
                s.node.push(0);
                s.phases.push(0);
                s.min_a.push(0.0);
                s.max_a.push(0.0);
                s.priority.push(0);
                s.weight.push(0.0);
                s.rank.push(0);
                self.step_a.push(0.0);
                self.fixed_a.push(fixed);
                self.settled.push(f64::NAN);
                self.since.push(f64::NAN);
                self.raw.push(f64::NAN);
                self.solver.sessions_moved();
                i
            }
        };
        if self.fixed_a[i].is_nan() != fixed.is_nan() {
            self.settled[i] = f64::NAN;
            self.since[i] = f64::NAN;
        }
        let s = &mut self.s;
        if s.node[i] != d.node {
            self.solver.sessions_moved();
        }
        if s.priority[i] != d.priority || s.rank[i] != d.rank {
            self.solver.ranks_changed();
        }
        s.node[i] = d.node;
        s.phases[i] = d.phases;
        s.min_a[i] = d.min_a;
        s.max_a[i] = d.max_a;
        s.priority[i] = d.priority;
        s.weight[i] = d.weight;
        s.rank[i] = d.rank;
        self.step_a[i] = d.step_a;
        self.fixed_a[i] = fixed;
        Ok(())
    }

    /// Forget session `key` (unknown: nothing happens).
    pub fn remove(&mut self, key: u64) {
        let Some(i) = self.index.remove(&key) else {
            return;
        };
        let i = i as usize;
        self.key.swap_remove(i);
        let s = &mut self.s;
        s.node.swap_remove(i);
        s.phases.swap_remove(i);
        s.min_a.swap_remove(i);
        s.max_a.swap_remove(i);
        s.priority.swap_remove(i);
        s.weight.swap_remove(i);
        s.rank.swap_remove(i);
        self.step_a.swap_remove(i);
        self.fixed_a.swap_remove(i);
        self.settled.swap_remove(i);
        self.since.swap_remove(i);
        self.raw.swap_remove(i);
        if let Some(&moved) = self.key.get(i) {
            self.index.insert(moved, i as u32);
        }
        self.solver.sessions_moved();
    }

    /// One allocation at monotonic time `now_s`: the (key, amps) of every allocatable session whose settled
    /// value differs from the last one returned for it (a session new to the allocator always appears).
    pub fn tick(&mut self, now_s: f64) -> Result<Vec<(u64, f64)>, StateError> {
        let nodes = self.tree.parent.len();
        if let Some(i) = self.s.node.iter().position(|&k| k as usize >= nodes) {
            return Err(StateError::NodeMissing {
                key: self.key[i],
                node: self.s.node[i],
                nodes,
            });
        }
        let mut hold = std::mem::take(&mut self.hold);
        hold.clear();
        hold.extend((0..self.key.len()).map(|i| self.hold(i, now_s)));
        self.solver
            .solve(&self.tree, &self.s, &self.fixed_a, &hold, &mut self.raw);
        self.hold = hold;
        let t0 = std::time::Instant::now();
        let mut changes = Vec::new();
        for i in 0..self.raw.len() {
            if !self.fixed_a[i].is_nan() {
                self.raw[i] = f64::NAN;
                continue;
            }
            let r = self.raw[i];
            let last = self.settled[i];
            // (Most sessions of a loaded network are paused: 0 settles to 0 without the float rounding.)
            let v = if r == 0.0 {
                0.0
            } else {
                settle(
                    r,
                    self.s.min_a[i],
                    self.step_a[i],
                    (!last.is_nan()).then_some(last),
                    &self.settings,
                )
            };
            if last.is_nan() || (last > 0.0) != (v > 0.0) {
                self.since[i] = now_s;
            }
            if last.is_nan() || v != last {
                self.settled[i] = v;
                changes.push((self.key[i], v));
            }
        }
        self.settle_ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(changes)
    }

    /// Session `i`'s hold at `now_s`.
    fn hold(&self, i: usize, now_s: f64) -> Hold {
        let (last, since) = (self.settled[i], self.since[i]);
        if last.is_nan() || since.is_nan() || now_s - since >= self.settings.min_hold_s {
            Hold::Free
        } else if last == 0.0 {
            Hold::Paused
        } else {
            Hold::Running
        }
    }

    /// The last settled value of `key` (None: unknown, fixed, or not ticked since it was put or unfixed).
    pub fn get(&self, key: u64) -> Option<f64> {
        let &i = self.index.get(&key)?;
        Some(self.settled[i as usize]).filter(|v| !v.is_nan())
    }

    /// The last tick's raw (unrounded, unsettled) allocation of every allocatable session it covered.
    pub fn raw(&self) -> impl Iterator<Item = (u64, f64)> + '_ {
        self.key
            .iter()
            .zip(&self.raw)
            .enumerate()
            .filter(|&(i, (_, r))| !r.is_nan() && self.fixed_a[i].is_nan())
            .map(|(_, (&k, &r))| (k, r))
    }

    /// Sessions held (fixed or not).
    pub fn len(&self) -> usize {
        self.key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }

    /// Where the last tick's time went (ms): ordering the sessions and placing fixed draws and holds, pausing,
    /// filling, settling (the bench's profile).
    pub fn phase_ms(&self) -> [f64; 4] {
        let [a, b, c] = self.solver.phase_ms;
        [a, b, c, self.settle_ms]
    }

    /// Bytes this allocator holds on the heap (what its vectors and its key map have reserved).
    pub fn heap_bytes(&self) -> usize {
        fn v<T>(x: &Vec<T>) -> usize {
            x.capacity() * std::mem::size_of::<T>()
        }
        let t = &self.tree;
        let s = &self.s;
        // hashbrown: a power-of-two number of buckets at most 7/8 full, each an entry and a control byte.
        let buckets = (self.index.capacity() * 8 / 7).next_power_of_two();
        let map = buckets * (std::mem::size_of::<(u64, u32)>() + 1);
        v(&t.parent)
            + v(&t.limit_a)
            + v(&t.limit_w)
            + v(&t.voltage)
            + v(&self.key)
            + v(&s.node)
            + v(&s.phases)
            + v(&s.min_a)
            + v(&s.max_a)
            + v(&s.priority)
            + v(&s.weight)
            + v(&s.rank)
            + v(&self.step_a)
            + v(&self.fixed_a)
            + v(&self.settled)
            + v(&self.since)
            + v(&self.raw)
            + v(&self.hold)
            + self.solver.heap_bytes()
            + map
    }
}

/// Within this of a step boundary a raw value counts as on it: float sums land a hair below whole amperes.
const ROUNDING_SLACK: f64 = 1e-6;

/// What a session is told, from its raw allocation: rounded down to its step, 0 if that is below its minimum,
/// and an increase over `last` smaller than the hysteresis held back (never from 0, and never to a value
/// below the minimum). Never more than `raw` by over a millionth of a step (so that 15.9999999 A is 16 A).
pub fn settle(raw: f64, min_a: f64, step_a: f64, last: Option<f64>, set: &Settings) -> f64 {
    let steps = (raw / step_a + ROUNDING_SLACK).floor().max(0.0);
    // Whole multiples of the step, printed as the caller would write them (0.3, not 0.30000000000000004).
    let mut v = (steps * step_a * 1e9).round() / 1e9;
    if v < min_a - ROUNDING_SLACK * step_a {
        v = 0.0;
    }
    if let Some(last) = last {
        let band = set.hysteresis_a.max(set.hysteresis_pct / 100.0 * last);
        if last > 0.0 && v > last && v - last < band && last >= min_a {
            v = last;
        }
    }
    v
}
