//! The allocator on small trees whose answer is known by hand, and on random ones (proptest) for the
//! invariants: no limit exceeded, nothing between 0 and a minimum, equal shares under one bottleneck. The
//! comparison with the slow reference solver is in tests/load/test_allocator.py (Python, through the bindings).

use proptest::prelude::*;

use super::*;

const INF: f64 = f64::INFINITY;

fn tree(nodes: &[(u32, [f64; 3], f64)]) -> Tree {
    Tree {
        parent: nodes.iter().map(|n| n.0).collect(),
        limit_a: nodes.iter().map(|n| n.1).collect(),
        limit_w: nodes.iter().map(|n| n.2).collect(),
        voltage: vec![230.0; nodes.len()],
    }
}

/// (node, phases, min, max, priority, weight)
fn sessions(list: &[(u32, u8, f64, f64, i32, f64)]) -> Sessions {
    Sessions {
        node: list.iter().map(|x| x.0).collect(),
        phases: list.iter().map(|x| x.1).collect(),
        min_a: list.iter().map(|x| x.2).collect(),
        max_a: list.iter().map(|x| x.3).collect(),
        priority: list.iter().map(|x| x.4).collect(),
        weight: list.iter().map(|x| x.5).collect(),
        rank: (0..list.len() as u32).collect(),
    }
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-6, "{a:?} != {b:?}");
    }
}

const ROOT: u32 = u32::MAX;
const L1: u8 = 1;
const L2: u8 = 2;
const L3: u8 = 4;
const ALL: u8 = 7;

#[test]
fn equal_sessions_share_a_bottleneck_equally_and_the_rest_goes_to_who_can_use_it() {
    let t = tree(&[(ROOT, [32.0, INF, INF], INF)]);
    let s = sessions(&[(0, L1, 6.0, 32.0, 0, 1.0), (0, L1, 6.0, 32.0, 0, 1.0)]);
    close(&allocate(&t, &s).unwrap(), &[16.0, 16.0]);
    // One EV draws at most 10 A: the other gets what it leaves.
    let s = sessions(&[(0, L1, 6.0, 10.0, 0, 1.0), (0, L1, 6.0, 32.0, 0, 1.0)]);
    close(&allocate(&t, &s).unwrap(), &[10.0, 22.0]);
}

#[test]
fn weights_share_in_proportion() {
    let t = tree(&[(ROOT, [30.0, INF, INF], INF)]);
    let s = sessions(&[(0, L1, 0.0, 32.0, 0, 1.0), (0, L1, 0.0, 32.0, 0, 2.0)]);
    close(&allocate(&t, &s).unwrap(), &[10.0, 20.0]);
}

#[test]
fn a_child_limit_binds_first_and_its_siblings_share_the_rest() {
    // Site 40 A on L1; a panel of 10 A under it with two sessions; one session directly on the site.
    let t = tree(&[(ROOT, [40.0, INF, INF], INF), (0, [10.0, INF, INF], INF)]);
    let s = sessions(&[
        (1, L1, 0.0, 32.0, 0, 1.0),
        (1, L1, 0.0, 32.0, 0, 1.0),
        (0, L1, 0.0, 32.0, 0, 1.0),
    ]);
    close(&allocate(&t, &s).unwrap(), &[5.0, 5.0, 30.0]);
}

#[test]
fn phases_are_separate_limits_and_a_three_phase_session_takes_its_least() {
    // L1 has 16 A, L2 and L3 plenty: a 3-phase EV shares L1 with a 1-phase one and draws the same on all three.
    let t = tree(&[(ROOT, [16.0, 100.0, 100.0], INF)]);
    let s = sessions(&[
        (0, ALL, 0.0, 32.0, 0, 1.0),
        (0, L1, 0.0, 32.0, 0, 1.0),
        (0, L2, 0.0, 32.0, 0, 1.0),
    ]);
    close(&allocate(&t, &s).unwrap(), &[8.0, 8.0, 32.0]);
    let _ = L3;
}

#[test]
fn a_total_power_limit_counts_every_phase_in_use() {
    // 3-phase at 230 V: 11,040 W is 16 A per phase.
    let t = tree(&[(ROOT, [INF, INF, INF], 11_040.0)]);
    let s = sessions(&[(0, ALL, 0.0, 32.0, 0, 1.0)]);
    close(&allocate(&t, &s).unwrap(), &[16.0]);
}

#[test]
fn who_cannot_get_their_minimum_is_paused_lowest_priority_and_highest_rank_first() {
    let t = tree(&[(ROOT, [20.0, INF, INF], INF)]);
    // Three at 6 A minimum = 18 A fits; four (24 A) do not: the last of the lowest priority is paused.
    let s = sessions(&[
        (0, L1, 6.0, 32.0, 0, 1.0),
        (0, L1, 6.0, 32.0, 1, 1.0),
        (0, L1, 6.0, 32.0, 0, 1.0),
        (0, L1, 6.0, 32.0, 0, 1.0),
    ]);
    let a = allocate(&t, &s).unwrap();
    assert_eq!(a[3], 0.0, "{a:?}");
    // The higher class fills first, the rest of its class at their minimum.
    close(&a, &[6.0, 8.0, 6.0, 0.0]);
}

#[test]
fn a_higher_class_that_fills_a_limit_leaves_the_lower_class_at_its_minimum() {
    let t = tree(&[(ROOT, [30.0, INF, INF], INF)]);
    let s = sessions(&[(0, L1, 6.0, 32.0, 5, 1.0), (0, L1, 6.0, 32.0, 0, 1.0)]);
    close(&allocate(&t, &s).unwrap(), &[24.0, 6.0]);
}

#[test]
fn bad_input_is_refused_naming_what() {
    let t = tree(&[(ROOT, [30.0, INF, INF], INF), (5, [1.0, 1.0, 1.0], INF)]);
    assert_eq!(
        allocate(&t, &Sessions::default()),
        Err(InputError::Parent(1))
    );
    let t = tree(&[(ROOT, [-1.0, INF, INF], INF)]);
    assert_eq!(allocate(&t, &Sessions::default()), Err(InputError::Node(0)));
    let t = tree(&[(ROOT, [1.0, INF, INF], INF)]);
    let s = sessions(&[(0, 0, 0.0, 1.0, 0, 1.0)]);
    assert_eq!(allocate(&t, &s), Err(InputError::Session(0, "phases")));
    let s = sessions(&[(0, L1, 6.0, 5.0, 0, 1.0)]);
    assert_eq!(allocate(&t, &s), Err(InputError::Session(0, "min_a/max_a")));
}

/// A random forest (depth-first by construction) and sessions under it.
fn arb_case() -> impl Strategy<Value = (Tree, Sessions)> {
    (1usize..12, 1usize..40, any::<u64>()).prop_map(|(n, m, seed)| {
        let mut rng = seed | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut t = Tree::default();
        for k in 0..n {
            let parent = if k == 0 || next() % 5 == 0 {
                ROOT
            } else {
                (next() % k as u64) as u32
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
            t.limit_w.push(if next() % 3 == 0 {
                (next() % 40_000) as f64
            } else {
                INF
            });
            t.voltage.push(230.0);
        }
        // Depth-first order needs every subtree contiguous: renumber by a DFS.
        let t = depth_first(t);
        let mut s = Sessions::default();
        for i in 0..m {
            s.node.push((next() % n as u64) as u32);
            s.phases.push([1u8, 2, 4, 7][(next() % 4) as usize]);
            let min = [0.0, 6.0, 6.0, 8.0][(next() % 4) as usize];
            s.min_a.push(min);
            s.max_a.push(min + (next() % 30) as f64);
            s.priority.push((next() % 3) as i32);
            s.weight.push([1.0, 1.0, 2.0, 0.5][(next() % 4) as usize]);
            s.rank.push(i as u32);
        }
        (t, s)
    })
}

fn depth_first(t: Tree) -> Tree {
    let n = t.parent.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for k in 0..n {
        match t.parent[k] {
            ROOT => roots.push(k),
            p => children[p as usize].push(k),
        }
    }
    let mut order = Vec::new();
    let mut stack: Vec<usize> = roots.into_iter().rev().collect();
    while let Some(k) = stack.pop() {
        order.push(k);
        stack.extend(children[k].iter().rev());
    }
    let mut new_index = vec![0u32; n];
    for (i, &k) in order.iter().enumerate() {
        new_index[k] = i as u32;
    }
    Tree {
        parent: order
            .iter()
            .map(|&k| {
                if t.parent[k] == ROOT {
                    ROOT
                } else {
                    new_index[t.parent[k] as usize]
                }
            })
            .collect(),
        limit_a: order.iter().map(|&k| t.limit_a[k]).collect(),
        limit_w: order.iter().map(|&k| t.limit_w[k]).collect(),
        voltage: order.iter().map(|&k| t.voltage[k]).collect(),
    }
}

proptest! {
    #[test]
    fn no_limit_is_exceeded_and_nobody_is_between_zero_and_their_minimum((t, s) in arb_case()) {
        let a = allocate(&t, &s).unwrap();
        for (i, &x) in a.iter().enumerate() {
            prop_assert!(x == 0.0 || (x >= s.min_a[i] - 1e-9 && x <= s.max_a[i] + 1e-9), "{i}: {x}");
        }
        for k in 0..t.parent.len() {
            let mut per_phase = [0.0f64; 3];
            let mut watts = 0.0;
            for (i, &x) in a.iter().enumerate() {
                if !is_ancestor(&t, k as u32, s.node[i]) {
                    continue;
                }
                for (p, load) in per_phase.iter_mut().enumerate() {
                    if s.phases[i] >> p & 1 == 1 {
                        *load += x;
                    }
                }
                watts += x * s.phases[i].count_ones() as f64 * t.voltage[k];
            }
            for (p, (&load, &lim)) in per_phase.iter().zip(&t.limit_a[k]).enumerate() {
                prop_assert!(load <= lim + 1e-6, "node {k} L{}: {load} > {lim}", p + 1);
            }
            prop_assert!(watts <= t.limit_w[k] + 1e-3, "node {k}: {watts} W > {}", t.limit_w[k]);
        }
    }

    #[test]
    fn equal_sessions_under_one_limit_get_equal_current(n in 2usize..30, limit in 12.0f64..400.0) {
        let t = tree(&[(ROOT, [limit, INF, INF], INF)]);
        let s = sessions(&vec![(0, L1, 6.0, 32.0, 0, 1.0); n]);
        let a = allocate(&t, &s).unwrap();
        let running: Vec<f64> = a.iter().copied().filter(|&x| x > 0.0).collect();
        prop_assert!(!running.is_empty());
        for x in &running {
            prop_assert!((x - running[0]).abs() < 1e-6, "{a:?}");
        }
    }
}

#[test]
fn a_limit_reached_by_two_stale_schedules_at_one_level_does_not_freeze_a_session_early() {
    // L2's fill level is scheduled twice at 14 (as the 3-phase session starts at 3 and as sessions start and
    // stop at 6); then L1 fills at 6.5, freezing the 3-phase session, so L2 rises slower and never fills: the
    // L2 session reaches its 18 A maximum.
    let t = tree(&[(ROOT, [14.0, 48.0, INF], INF)]);
    let s = Sessions {
        node: vec![0; 4],
        phases: vec![ALL, L2, L1, L2],
        min_a: vec![6.0, 0.0, 0.0, 6.0],
        max_a: vec![25.0, 6.0, 1.0, 18.0],
        priority: vec![0; 4],
        weight: vec![2.0, 1.0, 1.0, 1.0],
        rank: (0..4).collect(),
    };
    close(&allocate(&t, &s).unwrap(), &[13.0, 6.0, 1.0, 18.0]);
}
