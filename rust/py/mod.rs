//! The only place that imports pyo3: the `ampgate._native` module's functions and classes, batch conversion
//! between Python objects and the gateway's types, and `From<GatewayError> for PyErr`.

mod hub;
mod loadgen;
mod sim;
mod worker;

use pyo3::prelude::*;

use crate::gateway::GatewayError;

pyo3::create_exception!(
    ampgate._native,
    GatewayFailure,
    pyo3::exceptions::PyRuntimeError
);

impl From<GatewayError> for PyErr {
    fn from(e: GatewayError) -> PyErr {
        match e {
            GatewayError::Config(..) => pyo3::exceptions::PyValueError::new_err(e.to_string()),
            _ => GatewayFailure::new_err(e.to_string()),
        }
    }
}

/// A setting from a config dict passed down from Python: `default` when the key is absent or None, a
/// ValueError naming `what` and the key when the value has the wrong type.
pub(crate) fn setting<'py, T: FromPyObjectOwned<'py>>(
    d: &Bound<'py, pyo3::types::PyDict>,
    what: &str,
    key: &str,
    default: T,
) -> PyResult<T> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => v.extract::<T>().map_err(|e| {
            let e: PyErr = e.into();
            pyo3::exceptions::PyValueError::new_err(format!("{what} setting {key}: {e}"))
        }),
        _ => Ok(default),
    }
}

/// Register the module's contents (called by the `#[pymodule]` in lib.rs).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("GatewayFailure", m.py().get_type::<GatewayFailure>())?;
    m.add_function(wrap_pyfunction!(worker::run_worker, m)?)?;
    m.add_function(wrap_pyfunction!(worker::raise_nofile_limit, m)?)?;
    m.add_class::<hub::PyHub>()?;
    m.add_class::<loadgen::PyLoadGen>()?;
    m.add_class::<sim::PySim>()?;
    for (name, kind) in [
        ("CONNECTED", hub::CONNECTED),
        ("MESSAGE", hub::MESSAGE),
        ("DISCONNECTED", hub::DISCONNECTED),
        ("WORKER_UP", hub::WORKER_UP),
        ("WORKER_DOWN", hub::WORKER_DOWN),
        ("STATS", hub::STATS),
        ("ACK", hub::ACK),
    ] {
        m.add(name, kind)?;
    }
    Ok(())
}
