//! ampgate's native core (docs/architecture.md): the gateway (workers + hub), the sans-I/O codec, the client engine (the fleet simulator, which the benchmarks drive too).

pub mod alloc;
pub mod client;
pub mod codec;
pub mod gateway;
pub mod limits;
#[cfg(feature = "python")]
mod py;
pub mod sim;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _native(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    py::register(m)
}
