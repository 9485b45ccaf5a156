//! The stateful allocator over sequences of ticks: settling (step, minimum, hysteresis), minimum holds, fixed
//! draws, keys; and property tests that the settled values never exceed a limit (fixed draws included), never
//! fall between 0 and a minimum, and follow the hold and hysteresis rules tick after tick.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

const INF: f64 = f64::INFINITY;
const ROOT: u32 = u32::MAX;
const L1: u8 = 1;
const ALL: u8 = 7;

fn tree(nodes: &[(u32, [f64; 3], f64)]) -> Tree {
    Tree {
        parent: nodes.iter().map(|n| n.0).collect(),
        limit_a: nodes.iter().map(|n| n.1).collect(),
        limit_w: nodes.iter().map(|n| n.2).collect(),
        voltage: vec![230.0; nodes.len()],
    }
}

fn demand(node: u32, phases: u8, min_a: f64, max_a: f64) -> Demand {
    Demand {
        node,
        phases,
        min_a,
        max_a,
        priority: 0,
        weight: 1.0,
        rank: 0,
        step_a: 0.1,
        fixed_a: None,
    }
}

fn one_phase_site(limit: f64) -> Allocator {
    let mut a = Allocator::new(Settings::default()).unwrap();
    a.set_tree(tree(&[(ROOT, [limit, INF, INF], INF)])).unwrap();
    a
}

fn sorted(mut v: Vec<(u64, f64)>) -> Vec<(u64, f64)> {
    v.sort_by_key(|x| x.0);
    v
}

#[test]
fn a_new_session_appears_once_and_an_unchanged_one_never_again() {
    let mut a = one_phase_site(32.0);
    a.put(7, demand(0, L1, 6.0, 16.0)).unwrap();
    assert_eq!(a.get(7), None);
    assert_eq!(a.tick(0.0).unwrap(), vec![(7, 16.0)]);
    assert_eq!(a.tick(1.0).unwrap(), vec![]);
    assert_eq!(a.get(7), Some(16.0));
    assert_eq!(a.get(8), None);
    assert_eq!(a.len(), 1);
}

#[test]
fn settling_rounds_down_to_the_step_and_never_gives_less_than_the_minimum() {
    let set = Settings::default();
    assert_eq!(settle(15.97, 6.0, 0.1, None, &set), 15.9);
    assert_eq!(settle(15.97, 6.0, 1.0, None, &set), 15.0);
    assert_eq!(settle(15.999_999_9, 6.0, 0.1, None, &set), 16.0);
    assert_eq!(settle(6.04, 6.05, 0.1, None, &set), 0.0);
    assert_eq!(settle(5.95, 6.0, 0.1, None, &set), 0.0);
    assert_eq!(settle(0.0, 6.0, 0.1, None, &set), 0.0);
}

#[test]
fn small_increases_are_held_back_decreases_and_resumes_are_not() {
    let set = Settings::default(); // 1 A or 10%
    assert_eq!(settle(8.9, 6.0, 0.1, Some(8.0), &set), 8.0);
    assert_eq!(settle(9.0, 6.0, 0.1, Some(8.0), &set), 9.0);
    // 10% of 20 A is 2 A: 1.5 A more is held back, 2 A more is not.
    assert_eq!(settle(21.5, 6.0, 0.1, Some(20.0), &set), 20.0);
    assert_eq!(settle(22.0, 6.0, 0.1, Some(20.0), &set), 22.0);
    assert_eq!(settle(15.9, 6.0, 0.1, Some(16.0), &set), 15.9);
    assert_eq!(settle(6.0, 6.0, 0.1, Some(0.0), &set), 6.0);
    // The minimum rose above the old value: holding it back would give less than the minimum.
    assert_eq!(settle(8.5, 8.0, 0.1, Some(7.8), &set), 8.5);
}

#[test]
fn hysteresis_holds_back_over_ticks_and_a_paused_session_stays_paused_for_the_hold() {
    let mut a = one_phase_site(20.0);
    a.put(1, demand(0, L1, 6.0, 32.0)).unwrap();
    a.put(2, demand(0, L1, 6.0, 32.0)).unwrap();
    assert_eq!(sorted(a.tick(0.0).unwrap()), vec![(1, 10.0), (2, 10.0)]);
    // 10.5 A each is less than 1 A more: nothing is sent.
    a.set_tree(tree(&[(ROOT, [21.0, INF, INF], INF)])).unwrap();
    assert_eq!(a.tick(1.0).unwrap(), vec![]);
    assert_eq!(a.raw().collect::<HashMap<_, _>>()[&1], 10.5);
    // A decrease applies at once, whatever its size.
    a.set_tree(tree(&[(ROOT, [19.8, INF, INF], INF)])).unwrap();
    assert_eq!(sorted(a.tick(2.0).unwrap()), vec![(1, 9.9), (2, 9.9)]);
    // Room for one only: one is paused; the other's 0.1 A more is held back.
    a.set_tree(tree(&[(ROOT, [10.0, INF, INF], INF)])).unwrap();
    let changes = a.tick(3.0).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let (p, paused_at) = changes[0];
    assert_eq!(paused_at, 0.0);
    let other = 3 - p;
    assert_eq!(a.get(other), Some(9.9));
    // Room again, but the paused one waits out its hold; the other takes what it can.
    a.set_tree(tree(&[(ROOT, [40.0, INF, INF], INF)])).unwrap();
    assert_eq!(a.tick(100.0).unwrap(), vec![(other, 32.0)]);
    assert_eq!(a.get(p), Some(0.0));
    assert_eq!(a.raw().collect::<HashMap<_, _>>()[&p], 0.0);
    assert_eq!(a.tick(302.9).unwrap(), vec![]);
    // 300 s after it paused it may run again; the other comes down to share.
    assert_eq!(sorted(a.tick(303.0).unwrap()), vec![(1, 20.0), (2, 20.0)]);
}

#[test]
fn a_session_that_just_started_is_paused_after_the_free_ones_of_its_class() {
    let mut a = one_phase_site(40.0);
    let mut d = demand(0, L1, 6.0, 32.0);
    d.rank = 5; // would be paused first without its hold
    a.put(1, d).unwrap();
    assert_eq!(a.tick(0.0).unwrap(), vec![(1, 32.0)]);
    d.rank = 1;
    a.put(2, d).unwrap();
    a.set_tree(tree(&[(ROOT, [10.0, INF, INF], INF)])).unwrap();
    // 1 started running 10 s ago and holds; 2 is new (free): 2 is paused although its rank is lower.
    assert_eq!(sorted(a.tick(10.0).unwrap()), vec![(1, 10.0), (2, 0.0)]);
    // When a limit leaves no choice, a held session is paused too.
    a.set_tree(tree(&[(ROOT, [5.0, INF, INF], INF)])).unwrap();
    assert_eq!(a.tick(20.0).unwrap(), vec![(1, 0.0)]);
    // A higher class is still served first: the hold only orders sessions within a class.
    let mut a = one_phase_site(40.0);
    a.put(1, demand(0, L1, 6.0, 32.0)).unwrap();
    a.tick(0.0).unwrap();
    let mut urgent = demand(0, L1, 6.0, 32.0);
    urgent.priority = 1;
    a.put(2, urgent).unwrap();
    a.set_tree(tree(&[(ROOT, [10.0, INF, INF], INF)])).unwrap();
    assert_eq!(sorted(a.tick(1.0).unwrap()), vec![(1, 0.0), (2, 10.0)]);
}

#[test]
fn fixed_draws_are_reserved_first_and_a_limit_they_fill_alone_pauses_the_rest() {
    let mut a = Allocator::new(Settings::default()).unwrap();
    // Site 32 A per phase; a panel of 20 A on L1 under it.
    a.set_tree(tree(&[
        (ROOT, [32.0, 32.0, 32.0], INF),
        (0, [20.0, INF, INF], INF),
    ]))
    .unwrap();
    let mut offline = demand(0, ALL, 6.0, 32.0);
    offline.fixed_a = Some(16.0);
    a.put(1, offline).unwrap();
    a.put(2, demand(0, ALL, 6.0, 32.0)).unwrap();
    a.put(3, demand(1, L1, 6.0, 32.0)).unwrap();
    // 16 A fixed on every phase leaves 16 A: session 2 (all phases) and 3 (L1) share L1's 16 A.
    assert_eq!(sorted(a.tick(0.0).unwrap()), vec![(2, 8.0), (3, 8.0)]);
    assert_eq!(a.get(1), None);
    assert!(!a.raw().any(|(k, _)| k == 1));
    // A fixed draw of 25 A on the 20 A panel: the panel is over on fixed draws alone, so 3 is paused; the site
    // has 7 A left on L1 for 1 and 2 (6 A minimum each): 1, back online and free, is paused before 2, which
    // started running a second ago.
    let mut stuck = demand(1, L1, 6.0, 32.0);
    stuck.fixed_a = Some(25.0);
    a.put(4, stuck).unwrap();
    a.put(1, demand(0, ALL, 6.0, 32.0)).unwrap(); // back online: allocated afresh
    let changes = sorted(a.tick(1.0).unwrap());
    assert_eq!(
        changes[0].0, 1,
        "an unfixed session appears again: {changes:?}"
    );
    let raw: HashMap<u64, f64> = a.raw().collect();
    assert_eq!(raw[&3], 0.0);
    assert_eq!((raw[&1], raw[&2]), (0.0, 7.0), "{raw:?}");
    assert_eq!(changes, vec![(1, 0.0), (2, 7.0), (3, 0.0)]);
}

#[test]
fn removing_keeps_the_others_and_an_unknown_key_is_no_error() {
    let mut a = one_phase_site(30.0);
    for k in 1..=3 {
        a.put(k, demand(0, L1, 6.0, 32.0)).unwrap();
    }
    a.tick(0.0).unwrap();
    a.remove(1);
    a.remove(99);
    assert_eq!(a.len(), 2);
    assert_eq!(a.get(1), None);
    assert_eq!(a.get(3), Some(10.0));
    assert_eq!(sorted(a.tick(1.0).unwrap()), vec![(2, 15.0), (3, 15.0)]);
}

#[test]
fn bad_input_is_refused_naming_what_and_changes_nothing() {
    assert_eq!(
        Allocator::new(Settings {
            min_hold_s: -1.0,
            ..Settings::default()
        })
        .unwrap_err(),
        StateError::Settings("min_hold_s")
    );
    let mut a = one_phase_site(30.0);
    let mut d = demand(0, L1, 6.0, 32.0);
    d.step_a = 0.0;
    assert_eq!(a.put(1, d), Err(StateError::Session(1, "step_a")));
    d.step_a = 0.1;
    d.fixed_a = Some(-1.0);
    assert_eq!(a.put(1, d), Err(StateError::Session(1, "fixed_a")));
    assert_eq!(
        a.put(1, demand(0, 9, 6.0, 32.0)),
        Err(StateError::Session(1, "phases"))
    );
    assert_eq!(a.len(), 0);
    assert_eq!(
        a.set_tree(tree(&[(ROOT, [1.0; 3], INF), (3, [1.0; 3], INF)])),
        Err(StateError::Tree(InputError::Parent(1)))
    );
    a.put(1, demand(4, L1, 6.0, 32.0)).unwrap();
    assert_eq!(
        a.tick(0.0),
        Err(StateError::NodeMissing {
            key: 1,
            node: 4,
            nodes: 1
        })
    );
}

/// A small random forest, depth-first by construction (a node's parent is on the path to the node before it).
fn random_tree(next: &mut impl FnMut() -> u64, n: usize) -> Tree {
    let mut t = Tree::default();
    for k in 0..n {
        let parent = if k == 0 || next().is_multiple_of(5) {
            ROOT
        } else {
            let mut path = vec![k as u32 - 1];
            while t.parent[*path.last().unwrap() as usize] != ROOT {
                path.push(t.parent[*path.last().unwrap() as usize]);
            }
            path[(next() % path.len() as u64) as usize]
        };
        let lim = |v: u64| {
            if v.is_multiple_of(4) {
                INF
            } else {
                (v % 80) as f64
            }
        };
        t.parent.push(parent);
        t.limit_a.push([lim(next()), lim(next()), lim(next())]);
        t.limit_w.push(if next().is_multiple_of(3) {
            (next() % 40_000) as f64
        } else {
            INF
        });
        t.voltage.push(230.0);
    }
    t
}

fn random_demand(next: &mut impl FnMut() -> u64, n: usize, rank: u32) -> Demand {
    let min = [0.0, 6.0, 6.0, 8.0][(next() % 4) as usize];
    Demand {
        node: (next() % n as u64) as u32,
        phases: [1u8, 2, 4, 7, 3][(next() % 5) as usize],
        min_a: min,
        max_a: min + (next() % 30) as f64,
        priority: (next() % 3) as i32,
        weight: [1.0, 1.0, 2.0, 0.5][(next() % 4) as usize],
        rank,
        step_a: [0.1, 0.1, 1.0, 0.5][(next() % 4) as usize],
        fixed_a: next().is_multiple_of(6).then(|| (next() % 20) as f64),
    }
}

fn is_under(t: &Tree, k: usize, mut node: u32) -> bool {
    while node != ROOT {
        if node as usize == k {
            return true;
        }
        node = t.parent[node as usize];
    }
    false
}

/// Every node's load (settled values, fixed draws at their fixed value) is within its limits.
fn within_limits(t: &Tree, a: &Allocator, demands: &HashMap<u64, Demand>) -> Result<(), String> {
    for k in 0..t.parent.len() {
        let mut per_phase = [0.0f64; 3];
        let mut watts = 0.0;
        for (&key, d) in demands {
            if !is_under(t, k, d.node) {
                continue;
            }
            let x = d.fixed_a.unwrap_or_else(|| a.get(key).unwrap());
            for (p, load) in per_phase.iter_mut().enumerate() {
                if d.phases >> p & 1 == 1 {
                    *load += x;
                }
            }
            watts += x * d.phases.count_ones() as f64 * t.voltage[k];
        }
        // Fixed draws alone may exceed a limit; then only they may be on it.
        let fixed_only = |p: Option<usize>| {
            demands.iter().all(|(&key, d)| {
                !is_under(t, k, d.node)
                    || p.is_some_and(|p| d.phases >> p & 1 == 0)
                    || d.fixed_a.is_some()
                    || a.get(key) == Some(0.0)
            })
        };
        for (p, (&load, &lim)) in per_phase.iter().zip(&t.limit_a[k]).enumerate() {
            if load > lim + 1e-6 && !fixed_only(Some(p)) {
                return Err(format!("node {k} L{}: {load} > {lim}", p + 1));
            }
        }
        if watts > t.limit_w[k] + 1e-3 && !fixed_only(None) {
            return Err(format!("node {k}: {watts} W > {}", t.limit_w[k]));
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn over_ticks_limits_hold_nothing_lands_below_a_minimum_and_holds_and_hysteresis_are_kept(
        seed in any::<u64>(), n in 1usize..8, m in 1usize..25, ticks in 1usize..12,
    ) {
        let mut rng = seed | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let set = Settings::default();
        let mut a = Allocator::new(set).unwrap();
        let mut t = random_tree(&mut next, n);
        a.set_tree(t.clone()).unwrap();
        let mut demands: HashMap<u64, Demand> = HashMap::new();
        for key in 0..m as u64 {
            let d = random_demand(&mut next, n, key as u32);
            a.put(key, d).unwrap();
            demands.insert(key, d);
        }
        // What the caller saw: key -> (value, when it last went between 0 and more).
        let mut seen: HashMap<u64, (f64, f64)> = HashMap::new();
        let mut now = 0.0;
        for _ in 0..ticks {
            let changes: HashMap<u64, f64> = a.tick(now).unwrap().into_iter().collect();
            for (&key, d) in &demands {
                if d.fixed_a.is_some() {
                    prop_assert!(!changes.contains_key(&key));
                    prop_assert_eq!(a.get(key), None);
                    seen.remove(&key);
                    continue;
                }
                let v = a.get(key).unwrap();
                prop_assert!(v == 0.0 || v >= d.min_a - 1e-9, "{key}: {v} below {}", d.min_a);
                if changes.contains_key(&key) {
                    // (A value held back by the hysteresis was settled on the step the session had then.)
                    prop_assert!(((v / d.step_a).round() - v / d.step_a).abs() < 1e-6, "{key}: {v} off step");
                }
                let raw = a.raw().find(|r| r.0 == key).unwrap().1;
                prop_assert!(v <= raw + 1e-6, "{key}: settled {v} over raw {raw}");
                match seen.get(&key).copied() {
                    None => prop_assert_eq!(changes.get(&key), Some(&v), "new: {}", key),
                    Some((last, since)) => {
                        prop_assert_eq!(changes.get(&key).copied(), (v != last).then_some(v));
                        if last == 0.0 && now - since < set.min_hold_s {
                            prop_assert_eq!(v, 0.0, "{} resumed within its hold", key);
                        }
                        if last > 0.0 && v > last && last >= d.min_a {
                            let band = set.hysteresis_a.max(set.hysteresis_pct / 100.0 * last);
                            prop_assert!(v - last >= band - 1e-9, "{key}: {last} -> {v} inside the hysteresis");
                        }
                    }
                }
                let since = match seen.get(&key) {
                    Some(&(last, since)) if (last > 0.0) == (v > 0.0) => since,
                    _ => now,
                };
                seen.insert(key, (v, since));
            }
            if let Err(e) = within_limits(&t, &a, &demands) {
                prop_assert!(false, "{}", e);
            }
            // Between ticks: maxima change, a limit moves, a session comes or goes or turns (un)fixed.
            for _ in 0..3 {
                let key = next() % (m as u64 + 2);
                match next() % 4 {
                    0 => {
                        a.remove(key);
                        demands.remove(&key);
                        seen.remove(&key);
                    }
                    _ => {
                        let mut d = random_demand(&mut next, n, key as u32);
                        if let Some(old) = demands.get(&key) {
                            // An update keeps the session's fixedness most of the time.
                            if next() % 3 != 0 {
                                d.fixed_a = old.fixed_a;
                            }
                            if old.fixed_a.is_some() != d.fixed_a.is_some() {
                                seen.remove(&key);
                            }
                        }
                        a.put(key, d).unwrap();
                        demands.insert(key, d);
                    }
                }
            }
            let k = (next() % n as u64) as usize;
            t.limit_a[k][(next() % 3) as usize] = (next() % 80) as f64;
            a.set_tree(t.clone()).unwrap();
            now += [1.0, 60.0, 299.0, 301.0][(next() % 4) as usize];
        }
    }

    #[test]
    fn equal_sessions_under_one_bottleneck_get_equal_raw_current_tick_after_tick(
        n in 2usize..20, limits in proptest::collection::vec(12.0f64..400.0, 1..8),
    ) {
        let mut a = Allocator::new(Settings::default()).unwrap();
        for key in 0..n as u64 {
            a.put(key, demand(0, L1, 6.0, 32.0)).unwrap();
        }
        for (tick, &limit) in limits.iter().enumerate() {
            a.set_tree(tree(&[(ROOT, [limit, INF, INF], INF)])).unwrap();
            a.tick(tick as f64 * 10.0).unwrap();
            let running: Vec<f64> = a.raw().map(|r| r.1).filter(|&x| x > 0.0).collect();
            for x in &running {
                prop_assert!((x - running[0]).abs() < 1e-6, "{running:?}");
            }
        }
    }
}
