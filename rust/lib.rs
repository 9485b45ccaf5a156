//! ampgate's native core (docs/architecture.md): the gateway (workers + hub), the sans-I/O codec, the load generator, the fleet simulator.

pub mod client;
pub mod codec;
pub mod gateway;
pub mod limits;
pub mod loadgen;
#[cfg(feature = "python")]
mod py;
pub mod sim;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _native(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    py::register(m)
}
