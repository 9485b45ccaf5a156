//! `allocate` and `Allocator`: the load allocator (`crate::alloc`) for Python, the GIL released while it runs.

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::alloc::{self, Demand, InputError, Sessions, Settings, StateError, Tree};

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
        .map_err(|e| PyValueError::new_err(input_error(e)))
}

fn input_error(e: InputError) -> String {
    match e {
        InputError::Lengths(what) => format!("{what}: the arrays differ in length"),
        InputError::Parent(k) => {
            format!("node {k}: its parent must come before it (depth-first order)")
        }
        InputError::Node(k) => format!("node {k}: limits must be >= 0 (or inf), voltage > 0"),
        InputError::Session(i, field) => format!("session {i}: bad {field}"),
    }
}

impl From<StateError> for PyErr {
    fn from(e: StateError) -> PyErr {
        PyValueError::new_err(match e {
            StateError::Settings(name) => format!("{name} must be finite and >= 0"),
            StateError::Tree(e) => input_error(e),
            StateError::Session(key, field) => format!("session {key}: bad {field}"),
            StateError::NodeMissing { key, node, nodes } => {
                format!(
                    "session {key}: node {node} is not in the tree ({nodes} nodes); put it again"
                )
            }
        })
    }
}

fn tree_from(
    parent: Vec<i64>,
    limit_a: Vec<[f64; 3]>,
    limit_w: Vec<f64>,
    voltage: Vec<f64>,
) -> PyResult<Tree> {
    let n = parent.len();
    let parent = parent
        .iter()
        .enumerate()
        .map(|(k, &p)| match p {
            -1 => Ok(u32::MAX),
            p if (0..n as i64).contains(&p) => Ok(p as u32),
            _ => Err(PyValueError::new_err(input_error(InputError::Parent(k)))),
        })
        .collect::<PyResult<_>>()?;
    Ok(Tree {
        parent,
        limit_a,
        limit_w,
        voltage,
    })
}

/// The allocator kept between ticks: the capacity forest, the sessions by key, their settled values and hold
/// clocks (see `rust/alloc/mod.rs` for what a tick does).
#[pyclass(name = "Allocator", module = "ampgate._native")]
pub struct PyAllocator {
    inner: alloc::Allocator,
}

#[pymethods]
impl PyAllocator {
    #[new]
    #[pyo3(signature = (*, hysteresis_a = 1.0, hysteresis_pct = 10.0, min_hold_s = 300.0))]
    fn new(hysteresis_a: f64, hysteresis_pct: f64, min_hold_s: f64) -> PyResult<Self> {
        Ok(Self {
            inner: alloc::Allocator::new(Settings {
                hysteresis_a,
                hysteresis_pct,
                min_hold_s,
            })?,
        })
    }

    fn set_tree(
        &mut self,
        parent: Vec<i64>,
        limit_a: Vec<[f64; 3]>,
        limit_w: Vec<f64>,
        voltage: Vec<f64>,
    ) -> PyResult<()> {
        Ok(self
            .inner
            .set_tree(tree_from(parent, limit_a, limit_w, voltage)?)?)
    }

    #[pyo3(signature = (key, node, phases, min_a, max_a, priority = 0, weight = 1.0, rank = 0, step_a = 0.1, fixed_a = None))]
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        key: u64,
        node: u32,
        phases: u8,
        min_a: f64,
        max_a: f64,
        priority: i32,
        weight: f64,
        rank: u32,
        step_a: f64,
        fixed_a: Option<f64>,
    ) -> PyResult<()> {
        Ok(self.inner.put(
            key,
            Demand {
                node,
                phases,
                min_a,
                max_a,
                priority,
                weight,
                rank,
                step_a,
                fixed_a,
            },
        )?)
    }

    fn remove(&mut self, key: u64) {
        self.inner.remove(key);
    }

    fn tick(&mut self, py: Python<'_>, now_s: f64) -> PyResult<Vec<(u64, f64)>> {
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.tick(now_s))?)
    }

    fn get(&self, key: u64) -> Option<f64> {
        self.inner.get(key)
    }

    fn raw(&self) -> HashMap<u64, f64> {
        self.inner.raw().collect()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }
}
