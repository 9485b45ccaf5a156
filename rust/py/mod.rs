//! The only place that imports pyo3: the `ampgate._native` module's functions and classes, batch conversion
//! between Python objects and the gateway's types, and `From<GatewayError> for PyErr`.

mod alloc;
mod hub;
mod sim;
mod worker;

use pyo3::prelude::*;

use crate::client::ClientError;
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

impl From<ClientError> for PyErr {
    fn from(e: ClientError) -> PyErr {
        match e {
            ClientError::Config(..) => pyo3::exceptions::PyValueError::new_err(e.to_string()),
            ClientError::FileLimit { .. } | ClientError::Io(_) => {
                pyo3::exceptions::PyOSError::new_err(e.to_string())
            }
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

/// A ValueError about one setting of `what` ("simulator").
pub(crate) fn bad_setting(what: &str, key: &str, msg: impl std::fmt::Display) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(format!("{what} setting {key}: {msg}"))
}

/// What a client engine reads from its settings the common way.
pub(crate) struct ClientSettings {
    pub target: std::net::SocketAddr,
    pub count: usize,
    pub protocol: crate::client::Protocol,
    pub source_ips: Vec<std::net::Ipv4Addr>,
}

/// Check that `d` has only `keys`, and read `host` (an IP, default 127.0.0.1), `port` and `count` (required),
/// `protocol` (default ocpp1.6) and `source_ips` (IPv4 addresses).
pub(crate) fn client_settings(
    d: &Bound<'_, pyo3::types::PyDict>,
    what: &str,
    keys: &[&str],
) -> PyResult<ClientSettings> {
    for k in d.keys() {
        let k: String = k.extract()?;
        if !keys.contains(&k.as_str()) {
            return Err(bad_setting(what, &k, "unknown setting"));
        }
    }
    let required = |key: &str| -> PyResult<Bound<'_, PyAny>> {
        match d.get_item(key)? {
            Some(v) if !v.is_none() => Ok(v),
            _ => Err(bad_setting(what, key, "required")),
        }
    };
    let port: u16 = required("port")?
        .extract()
        .map_err(|e| bad_setting(what, "port", e))?;
    let count: usize = required("count")?
        .extract()
        .map_err(|e| bad_setting(what, "count", e))?;
    let host: String = setting(d, what, "host", "127.0.0.1".to_string())?;
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| bad_setting(what, "host", "not an IP address"))?;
    let protocol: String = setting(d, what, "protocol", "ocpp1.6".to_string())?;
    let protocol = crate::client::Protocol::parse(&protocol)
        .ok_or_else(|| bad_setting(what, "protocol", "ocpp1.6 or ocpp2.0.1"))?;
    let ips: Vec<String> = setting(d, what, "source_ips", Vec::new())?;
    let source_ips = ips
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| bad_setting(what, "source_ips", "IPv4 addresses"))?;
    Ok(ClientSettings {
        target: std::net::SocketAddr::new(ip, port),
        count,
        protocol,
        source_ips,
    })
}

/// Register the module's contents (called by the `#[pymodule]` in lib.rs).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("GatewayFailure", m.py().get_type::<GatewayFailure>())?;
    m.add_function(wrap_pyfunction!(alloc::allocate, m)?)?;
    m.add_function(wrap_pyfunction!(worker::run_worker, m)?)?;
    m.add_function(wrap_pyfunction!(worker::raise_nofile_limit, m)?)?;
    m.add("FD_RESERVE", crate::limits::FD_RESERVE)?;
    m.add_class::<alloc::PyAllocator>()?;
    m.add_class::<hub::PyHub>()?;
    m.add_class::<sim::PySim>()?;
    for (name, kind) in [
        ("CONNECTED", hub::CONNECTED),
        ("MESSAGE", hub::MESSAGE),
        ("DISCONNECTED", hub::DISCONNECTED),
        ("WORKER_UP", hub::WORKER_UP),
        ("WORKER_DOWN", hub::WORKER_DOWN),
        ("STATS", hub::STATS),
        ("ACK", hub::ACK),
        ("PONG", hub::PONG),
    ] {
        m.add(name, kind)?;
    }
    Ok(())
}
