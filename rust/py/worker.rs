//! `run_worker`: the body of a gateway worker process.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::gateway::sys::bind_to_parent;
use crate::gateway::throttle::ThrottleConfig;
use crate::gateway::tls::{TlsFiles, TICKET_KEYS_LEN};
use crate::gateway::{Worker, WorkerConfig};
use crate::limits::raise_nofile_limit as raise;

fn get<'py, T: FromPyObjectOwned<'py>>(
    d: &Bound<'py, PyDict>,
    key: &str,
    default: T,
) -> PyResult<T> {
    super::setting(d, "worker", key, default)
}

fn config_from(d: &Bound<'_, PyDict>) -> PyResult<WorkerConfig> {
    let dflt = WorkerConfig::default();
    let secs = |key: &str, dflt: Duration| -> PyResult<Duration> {
        let v: f64 = get(d, key, dflt.as_secs_f64())?;
        if !(0.0..=1e9).contains(&v) {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "worker setting {key}: out of range"
            )));
        }
        Ok(Duration::from_secs_f64(v))
    };
    Ok(WorkerConfig {
        worker: get(d, "worker", dflt.worker)?,
        generation: get(d, "generation", dflt.generation)?,
        path_prefix: get(d, "path_prefix", dflt.path_prefix.clone())?,
        protocols: get(d, "protocols", dflt.protocols.clone())?,
        max_message: get(d, "max_message", dflt.max_message)?,
        ping_interval: secs("ping_interval", dflt.ping_interval)?,
        ping_timeout: secs("ping_timeout", dflt.ping_timeout)?,
        handshake_timeout: secs("handshake_timeout", dflt.handshake_timeout)?,
        max_write_queue: get(d, "max_write_queue", dflt.max_write_queue)?,
        max_connections: get(d, "max_connections", dflt.max_connections)?,
        buffer_budget: get(d, "buffer_budget", dflt.buffer_budget)?,
        max_pending_calls: get(d, "max_pending_calls", dflt.max_pending_calls)?,
        pending_call_timeout: secs("pending_call_timeout", dflt.pending_call_timeout)?,
        msg_rate: {
            let v: f64 = get(d, "msg_rate", dflt.msg_rate)?;
            if !(0.0..=1e9).contains(&v) {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "worker setting msg_rate: out of range",
                ));
            }
            v
        },
        msg_burst: get(d, "msg_burst", dflt.msg_burst)?,
        link_high: get(d, "link_high", dflt.link_high)?,
        link_low: get(d, "link_low", dflt.link_low)?,
        accept_unknown: get(d, "accept_unknown", dflt.accept_unknown)?,
        auth_throttle: ThrottleConfig {
            limit: get(d, "auth_fail_limit", dflt.auth_throttle.limit)?,
            window: secs("auth_fail_window", dflt.auth_throttle.window)?,
            backoff: secs("auth_backoff", dflt.auth_throttle.backoff)?,
            max_ids: get(d, "auth_fail_max_ids", dflt.auth_throttle.max_ids)?,
        },
        upgrade_without_protocol: get(
            d,
            "upgrade_without_protocol",
            dflt.upgrade_without_protocol,
        )?,
        reuseport_addr: get(d, "reuseport_addr", dflt.reuseport_addr.clone())?,
        tls_listen_fd: get(d, "tls_listen_fd", dflt.tls_listen_fd)?,
        tls_reuseport_addr: get(d, "tls_reuseport_addr", dflt.tls_reuseport_addr.clone())?,
        tls: {
            // [[certificate, key], ...]: lists, as JSON has them.
            let pairs: Vec<Vec<String>> = get(d, "tls_certs", Vec::new())?;
            let mut certs = Vec::with_capacity(pairs.len());
            for pair in pairs {
                let [cert, key]: [String; 2] = pair.try_into().map_err(|_| {
                    pyo3::exceptions::PyValueError::new_err(
                        "worker setting tls_certs: each entry is [certificate, key]",
                    )
                })?;
                certs.push((cert, key));
            }
            let client_ca: Option<String> = get(d, "tls_client_ca", None)?;
            (!certs.is_empty()).then_some(TlsFiles {
                certs,
                client_ca,
                ticket_keys: ticket_keys_from_env()?,
            })
        },
        parent_pid: get(d, "parent_pid", dflt.parent_pid)?,
    })
}

/// The session-ticket keys the control plane shares with its workers: hex in the environment (readable by the
/// node's user only, unlike the command line with the rest of the settings). None when not set.
fn ticket_keys_from_env() -> PyResult<Option<[u8; TICKET_KEYS_LEN]>> {
    let Ok(hex) = std::env::var(TICKET_KEYS_ENV) else {
        return Ok(None);
    };
    let bad = || {
        pyo3::exceptions::PyValueError::new_err(format!("{TICKET_KEYS_ENV}: not 80 bytes in hex"))
    };
    if hex.len() != 2 * TICKET_KEYS_LEN || !hex.is_ascii() {
        return Err(bad());
    }
    let mut keys = [0u8; TICKET_KEYS_LEN];
    for (i, b) in keys.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(Some(keys))
}

/// Where `ticket_keys_from_env` reads the keys.
const TICKET_KEYS_ENV: &str = "AMPGATE_TLS_TICKET_KEYS";

/// Run a gateway worker on an inherited listening socket until the control plane says stop or goes away.
/// Blocks with the GIL released. `link_fd` is required (None is a ValueError): the bench's canned-reply
/// server is its own binary, `ampgate-limit` (rust/limit/).
#[pyfunction]
#[pyo3(signature = (listen_fd, link_fd, config))]
pub fn run_worker(
    py: Python<'_>,
    listen_fd: Option<i32>,
    link_fd: Option<i32>,
    config: &Bound<'_, PyDict>,
) -> PyResult<()> {
    let cfg = config_from(config)?;
    if link_fd.is_none() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "a gateway worker needs its link to the control plane",
        ));
    }
    bind_to_parent(cfg.parent_pid)?;
    let mut worker = Worker::new(cfg, listen_fd, link_fd)?;
    py.detach(move || worker.run())?;
    Ok(())
}

/// Raise this process's soft open-file limit to the hard limit; returns the limit now in force.
#[pyfunction]
pub fn raise_nofile_limit() -> usize {
    raise()
}
