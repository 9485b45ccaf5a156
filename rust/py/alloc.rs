//! `allocate`: the load allocator (`crate::alloc`) for Python, the GIL released while it runs.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::alloc::{self, InputError, Sessions, Tree};

/// The current (A) of each session, 0 for a paused one; see `rust/alloc/mod.rs` for the rule. The tree is in
/// depth-first order (`parent[k] < k`, -1 for a root); `limit_a` per phase and `limit_w` use `math.inf` for
/// none; `phases` is a mask (1 = L1, 2 = L2, 4 = L3). Raises ValueError naming what is wrong.
#[pyfunction]
#[pyo3(signature = (parent, limit_a, limit_w, voltage, node, phases, min_a, max_a, priority, weight, rank))]
#[allow(clippy::too_many_arguments)]
pub fn allocate(
    py: Python<'_>,
    parent: Vec<i64>,
    limit_a: Vec<[f64; 3]>,
    limit_w: Vec<f64>,
    voltage: Vec<f64>,
    node: Vec<u32>,
    phases: Vec<u8>,
    min_a: Vec<f64>,
    max_a: Vec<f64>,
    priority: Vec<i32>,
    weight: Vec<f64>,
    rank: Vec<u32>,
) -> PyResult<Vec<f64>> {
    let tree = Tree {
        parent: parent
            .iter()
            .map(|&p| if p < 0 { u32::MAX } else { p as u32 })
            .collect(),
        limit_a,
        limit_w,
        voltage,
    };
    let sessions = Sessions {
        node,
        phases,
        min_a,
        max_a,
        priority,
        weight,
        rank,
    };
    py.detach(|| alloc::allocate(&tree, &sessions))
        .map_err(|e| {
            PyValueError::new_err(match e {
                InputError::Lengths(what) => format!("{what}: the arrays differ in length"),
                InputError::Parent(k) => {
                    format!("node {k}: its parent must come before it (depth-first order)")
                }
                InputError::Node(k) => {
                    format!("node {k}: limits must be >= 0 (or inf), voltage > 0")
                }
                InputError::Session(i, field) => format!("session {i}: bad {field}"),
            })
        })
}
