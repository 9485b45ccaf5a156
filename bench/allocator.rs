//! The load allocator's tick time on a five-level tree (site → transformer → feeder → panel → charger →
//! session), with 10% of the sessions changing their maximum before each tick, and a memory-bandwidth bound:
//! one pass reading the same session arrays.
//!
//! Run: `cargo bench --bench allocator -- SESSIONS TICKS`. Prints one JSON line (bench/allocator.py runs it
//! and adds the Python reference solver's time).

use std::hint::black_box;
use std::time::Instant;

use ampgate_native::alloc::{allocate, Sessions, Tree};

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

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let sessions: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let ticks: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let (tree, mut s) = build(sessions);
    let mut rng = Rng(42);
    let mut times = Vec::with_capacity(ticks);
    let mut paused = 0;
    for _ in 0..ticks {
        for _ in 0..sessions / 10 {
            let i = (rng.next() % sessions as u64) as usize;
            s.max_a[i] = 6.0 + (rng.next() % 27) as f64;
        }
        let t0 = Instant::now();
        let a = allocate(&tree, &s).expect("valid input");
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        paused = a.iter().filter(|&&x| x == 0.0).count();
        black_box(a);
    }
    times.sort_by(f64::total_cmp);
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
    // Input held per session (the arrays above) and per node; the working set allocate() allocates per call is
    // reported apart.
    let input_per_session = 4 + 1 + 8 + 8 + 4 + 8 + 4;
    let per_node = 4 + 24 + 8 + 8;
    let bytes_per_session =
        (input_per_session * sessions + per_node * tree.parent.len()) as f64 / sessions as f64;
    // order u32, paused bool, alloc f64, frozen + rising + in_class bools, two events of (f64, usize, bool).
    let working_per_session = 4 + 1 + 8 + 3 + 2 * 24;
    println!(
        "{{\"sessions\": {sessions}, \"nodes\": {}, \"ticks\": {ticks}, \"tick_ms_p50\": {:.3}, \
         \"tick_ms_p99\": {:.3}, \"bytes_per_session\": {:.1}, \"working_bytes_per_session\": {working_per_session}, \
         \"bandwidth_bound_ms\": {:.3}, \"paused_last_tick\": {paused}}}",
        tree.parent.len(),
        quantile(&times, 0.5),
        quantile(&times, 0.99),
        bytes_per_session,
        bound,
    );
}
