//! The stateful load allocator's tick (`Allocator::tick`: solve, settle, report changes) on a five-level tree
//! (site → transformer → feeder → panel → charger → session), with 10% of the sessions changing their maximum
//! (`put`) before each tick, one tick per second of the allocator's clock; and a memory-bandwidth bound: one
//! pass reading the same session arrays.
//!
//! Two runs: with the default settings (a paused session stays paused for 5 minutes, so most of the ones paused
//! at the first tick demand nothing afterwards), and with `min_hold_s = 0` (every session free every tick: the
//! pausing and the filling redone over all of them, the worst case).
//!
//! Run: `cargo bench --bench allocator -- SESSIONS TICKS`. Prints one JSON line (bench/allocator.py runs it
//! and adds the Python reference solver's time).

use std::hint::black_box;
use std::time::Instant;

use ampgate_native::alloc::{Allocator, Demand, Sessions, Settings, Tree};

const INF: f64 = f64::INFINITY;
/// Fan-out per level: 10 transformers per site, 10 feeders each, 10 panels each, 10 chargers per panel.
const FAN: usize = 10;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One session per charger; limits chosen so that panels, feeders and sites all bind somewhere.
fn build(sessions: usize) -> (Tree, Sessions) {
    let mut t = Tree::default();
    let mut s = Sessions::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut left = sessions;
    while left > 0 {
        let site = t.parent.len() as u32;
        push(&mut t, u32::MAX, [4000.0, 4000.0, 4000.0], INF);
        'site: for _ in 0..FAN {
            let tr = t.parent.len() as u32;
            push(&mut t, site, [800.0, 800.0, 800.0], INF);
            for _ in 0..FAN {
                let feeder = t.parent.len() as u32;
                push(&mut t, tr, [250.0, 250.0, 250.0], INF);
                for _ in 0..FAN {
                    let panel = t.parent.len() as u32;
                    push(&mut t, feeder, [100.0, 100.0, 100.0], 60_000.0);
                    for _ in 0..FAN {
                        let charger = t.parent.len() as u32;
                        push(&mut t, panel, [32.0, 32.0, 32.0], INF);
                        s.node.push(charger);
                        s.phases.push([1u8, 2, 4, 7, 7][(rng.next() % 5) as usize]);
                        s.min_a.push(6.0);
                        s.max_a.push(6.0 + (rng.next() % 27) as f64);
                        s.priority.push(rng.next().is_multiple_of(10) as i32);
                        s.weight.push(1.0);
                        s.rank.push(s.rank.len() as u32);
                        left -= 1;
                        if left == 0 {
                            break 'site;
                        }
                    }
                }
            }
        }
    }
    (t, s)
}

fn push(t: &mut Tree, parent: u32, limit_a: [f64; 3], limit_w: f64) {
    t.parent.push(parent);
    t.limit_a.push(limit_a);
    t.limit_w.push(limit_w);
    t.voltage.push(230.0);
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The median time of each phase of a tick, as JSON.
fn profile(p: &[f64; 4]) -> String {
    format!(
        "{{\"prepare\": {:.3}, \"pause\": {:.3}, \"fill\": {:.3}, \"settle\": {:.3}}}",
        p[0], p[1], p[2], p[3]
    )
}

/// Key of session `i`: spread out, as the caller's u64 keys are.
fn key(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn demand(s: &Sessions, i: usize) -> Demand {
    Demand {
        node: s.node[i],
        phases: s.phases[i],
        min_a: s.min_a[i],
        max_a: s.max_a[i],
        priority: s.priority[i],
        weight: s.weight[i],
        rank: s.rank[i],
        step_a: 0.1,
        fixed_a: None,
    }
}

/// Tick times (ms, sorted), the allocator's heap bytes, sessions paused and changes reported at the last tick.
struct Run {
    times: Vec<f64>,
    heap_bytes: usize,
    paused: usize,
    changes: usize,
    put_ms: f64,
    /// Median per phase (ms): prepare (order, fixed draws, holds), pause, fill, settle.
    phases: [f64; 4],
}

fn run(tree: &Tree, s: &mut Sessions, ticks: usize, settings: Settings) -> Run {
    let sessions = s.len();
    let mut a = Allocator::new(settings).expect("valid settings");
    a.set_tree(tree.clone()).expect("valid tree");
    for i in 0..sessions {
        a.put(key(i), demand(s, i)).expect("valid session");
    }
    let mut rng = Rng(42);
    let mut times = Vec::with_capacity(ticks);
    let mut phases: [Vec<f64>; 4] = Default::default();
    let (mut paused, mut changes, mut put_ms) = (0, 0, 0.0);
    // One untimed tick first: every session is new then (all of them reported), which is not a steady tick.
    a.tick(0.0).expect("valid input");
    for tick in 1..=ticks {
        let t0 = Instant::now();
        for _ in 0..sessions / 10 {
            let i = (rng.next() % sessions as u64) as usize;
            s.max_a[i] = 6.0 + (rng.next() % 27) as f64;
            a.put(key(i), demand(s, i)).expect("valid session");
        }
        put_ms += t0.elapsed().as_secs_f64() * 1e3;
        let t0 = Instant::now();
        let out = a.tick(tick as f64).expect("valid input");
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        for (p, ms) in phases.iter_mut().zip(a.phase_ms()) {
            p.push(ms);
        }
        changes = out.len();
        black_box(out);
    }
    for i in 0..sessions {
        paused += (a.get(key(i)) == Some(0.0)) as usize;
    }
    times.sort_by(f64::total_cmp);
    let phases = phases.map(|mut p| {
        p.sort_by(f64::total_cmp);
        quantile(&p, 0.5)
    });
    Run {
        phases,
        times,
        heap_bytes: a.heap_bytes(),
        paused,
        changes,
        put_ms: put_ms / ticks as f64,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let sessions: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let ticks: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let (tree, mut s) = build(sessions);
    let held = run(&tree, &mut s.clone(), ticks, Settings::default());
    let free = run(
        &tree,
        &mut s,
        ticks,
        Settings {
            min_hold_s: 0.0,
            ..Settings::default()
        },
    );
    // The physical limit: one pass over the arrays the allocator reads per session (best of 5).
    let mut bound = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        let mut acc = 0.0f64;
        for i in 0..sessions {
            acc += s.min_a[i]
                + s.max_a[i]
                + s.weight[i]
                + s.node[i] as f64
                + s.phases[i] as f64
                + s.priority[i] as f64
                + s.rank[i] as f64;
        }
        black_box(acc);
        bound = bound.min(t0.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "{{\"measured\": \"Allocator.tick (solve, settle, changes out) after put() of 10% of the sessions with a new \
         max_a, one tick per second of its clock, default settings (5 min hold); the same with min_hold_s=0 as \
         *_no_hold; bytes_per_session: the allocator's heap (tree, sessions, state, key map) / sessions\", \
         \"sessions\": {sessions}, \"nodes\": {}, \"ticks\": {ticks}, \"tick_ms_p50\": {:.3}, \
         \"tick_ms_p99\": {:.3}, \"tick_ms_p50_no_hold\": {:.3}, \"tick_ms_p99_no_hold\": {:.3}, \
         \"put_ms_per_tick\": {:.3}, \"bytes_per_session\": {:.1}, \"bandwidth_bound_ms\": {:.3}, \
         \"paused_last_tick\": {}, \"paused_last_tick_no_hold\": {}, \"changes_last_tick\": {}, \
         \"changes_last_tick_no_hold\": {}, \"profile_ms_p50\": {}, \"profile_ms_p50_no_hold\": {}}}",
        tree.parent.len(),
        quantile(&held.times, 0.5),
        quantile(&held.times, 0.99),
        quantile(&free.times, 0.5),
        quantile(&free.times, 0.99),
        held.put_ms,
        held.heap_bytes as f64 / sessions as f64,
        bound,
        held.paused,
        free.paused,
        held.changes,
        free.changes,
        profile(&held.phases),
        profile(&free.phases),
    );
}
