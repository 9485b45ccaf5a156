//! `Hub`: Python's handle on the worker links (see `gateway::hub`).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::codec;
use crate::gateway::link::{protocol_name, AdmissionShare, Down};

/// A worker's CLOCK_MONOTONIC microseconds as Python's `time.monotonic()` seconds.
fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}
use crate::gateway::{Hub, HubEvent};

/// Event kinds in the tuples `Hub.drain()` returns (mirrored in `_native.pyi`).
pub const CONNECTED: u8 = 0;
pub const MESSAGE: u8 = 1;
pub const DISCONNECTED: u8 = 2;
pub const WORKER_UP: u8 = 3;
pub const WORKER_DOWN: u8 = 4;
pub const STATS: u8 = 5;
pub const ACK: u8 = 6;
pub const PONG: u8 = 7;
/// Largest message Python may send: well inside one worker-link batch (`link::MAX_BATCH`), and far above
/// any OCPP message (the gateway refuses incoming ones over 1 MiB by default).
const MAX_SEND: usize = 16 << 20;

#[pyclass(name = "Hub", module = "ampgate._native", frozen)]
pub struct PyHub {
    hub: Hub,
}

#[pymethods]
impl PyHub {
    #[new]
    #[pyo3(signature = (max_pending = 64 << 20))]
    fn new(max_pending: usize) -> PyResult<Self> {
        Ok(Self {
            hub: Hub::new(max_pending)?,
        })
    }

    /// The eventfd to wait on (readable when events are waiting).
    fn wake_fd(&self) -> i32 {
        self.hub.wake_fd()
    }

    /// Take every waiting event, as tuples (see the module stub for their shapes).
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events = py.detach(|| self.hub.drain());
        let list = PyList::empty(py);
        for e in events {
            let item = match e {
                HubEvent::Connected {
                    conn_id,
                    protocol,
                    profile,
                    charger,
                    peer,
                    at_us,
                } => (
                    CONNECTED,
                    conn_id,
                    charger,
                    protocol_name(protocol),
                    peer,
                    seconds(at_us),
                    profile,
                )
                    .into_pyobject(py)?
                    .into_any(),
                HubEvent::Message { conn_id, data } => (MESSAGE, conn_id, PyBytes::new(py, &data))
                    .into_pyobject(py)?
                    .into_any(),
                HubEvent::Disconnected {
                    conn_id,
                    code,
                    reason,
                    at_us,
                } => (DISCONNECTED, conn_id, code, reason, seconds(at_us))
                    .into_pyobject(py)?
                    .into_any(),
                HubEvent::WorkerUp {
                    worker,
                    generation,
                    pid,
                } => (WORKER_UP, worker, generation, pid)
                    .into_pyobject(py)?
                    .into_any(),
                HubEvent::WorkerDown {
                    worker,
                    generation,
                    reason,
                } => (WORKER_DOWN, worker, generation, reason)
                    .into_pyobject(py)?
                    .into_any(),
                HubEvent::Stats {
                    worker,
                    connections,
                    paused,
                    heap_bytes,
                    counts: c,
                } => (
                    STATS,
                    worker,
                    connections,
                    paused,
                    heap_bytes,
                    PyTuple::new(
                        py,
                        [
                            c.upgrades,
                            c.refused_rate,
                            c.refused_handshakes,
                            c.refused_auth,
                            c.refused_unknown,
                            c.refused_other,
                            c.refused_throttled,
                            c.refused_unknown_ids,
                            c.closed_budget,
                            c.closed_pending_calls,
                            c.closed_msg_rate,
                            c.refused_profile,
                            c.tls_failed,
                            c.tls_reloads,
                        ],
                    )?,
                )
                    .into_pyobject(py)?
                    .into_any(),
                HubEvent::Ack { worker, seq } => (ACK, worker, seq).into_pyobject(py)?.into_any(),
                HubEvent::Pong {
                    conn_id,
                    rtt_us,
                    at_us,
                } => (PONG, conn_id, rtt_us as f64 / 1e6, seconds(at_us))
                    .into_pyobject(py)?
                    .into_any(),
            };
            list.append(item)?;
        }
        Ok(list)
    }

    fn add_worker(&self, worker: u8, generation: u16, link_fd: i32) {
        self.hub.add_worker(worker, generation, link_fd);
    }

    fn remove_worker(&self, worker: u8) {
        self.hub.remove_worker(worker);
    }

    /// Send text messages: a list of `(conn_id, bytes)`. Never blocks. Raises ValueError (sending nothing)
    /// when a message is larger than a worker link batch can carry.
    fn send(&self, batch: Vec<(u64, Bound<'_, PyBytes>)>) -> PyResult<()> {
        if let Some((id, b)) = batch.iter().find(|(_, b)| b.as_bytes().len() > MAX_SEND) {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "message of {} bytes for connection {id} is larger than {MAX_SEND}",
                b.as_bytes().len()
            )));
        }
        self.hub
            .send(batch.iter().map(|(id, b)| (*id, b.as_bytes())));
        Ok(())
    }

    /// Close connections: a list of `(conn_id, code, reason)`.
    fn close(&self, batch: Vec<(u64, u16, String)>) {
        self.hub
            .close(batch.iter().map(|(id, code, r)| (*id, *code, r.as_str())));
    }

    /// Replace (clear=True) or update the credential table: `(charger_id, hash, security_profile)`; hash "" =
    /// no password; the profile (1–3) is the lowest the charger may connect with.
    #[pyo3(signature = (entries, clear = false, worker = None))]
    fn auth_set(&self, entries: Vec<(String, String, u8)>, clear: bool, worker: Option<u8>) {
        self.hub.with_writers(|w| {
            for (slot, lw) in w.iter_mut() {
                if worker.is_some_and(|x| x != *slot) {
                    continue;
                }
                if clear {
                    lw.down(&Down::AuthClear);
                }
                for (charger, hash, profile) in &entries {
                    lw.down(&Down::AuthSet {
                        charger: charger.clone(),
                        hash: hash.clone(),
                        profile: *profile,
                    });
                }
            }
        });
    }

    #[pyo3(signature = (chargers, worker = None))]
    fn auth_delete(&self, chargers: Vec<String>, worker: Option<u8>) {
        for charger in chargers {
            self.hub.control(worker, &Down::AuthDelete { charger });
        }
    }

    /// Every worker reads its TLS files again (new connections use them; live ones keep theirs).
    fn tls_reload(&self) {
        self.hub.control(None, &Down::TlsReload);
    }

    #[pyo3(signature = (accept_unknown, worker = None))]
    fn set_policy(&self, accept_unknown: bool, worker: Option<u8>) {
        self.hub
            .control(worker, &Down::AuthPolicy { accept_unknown });
    }

    /// A worker's share of the admission budget (0 = no limit for `rate`, `handshakes` and
    /// `unknown_per_min`).
    #[pyo3(signature = (rate, burst, handshakes, retry_max, worker = None, unknown_per_min = 0))]
    fn set_admission(
        &self,
        rate: u32,
        burst: u32,
        handshakes: u32,
        retry_max: u32,
        worker: Option<u8>,
        unknown_per_min: u32,
    ) {
        let share = AdmissionShare {
            rate,
            burst,
            handshakes,
            retry_max,
            unknown_per_min,
        };
        self.hub.control(worker, &Down::Admission(share));
    }

    #[pyo3(signature = (on, worker = None))]
    fn set_accepting(&self, on: bool, worker: Option<u8>) {
        self.hub.control(worker, &Down::Accept { on });
    }

    /// Queue a barrier; every worker addressed answers `(ACK, worker, seq)` once all before it is applied.
    #[pyo3(signature = (worker = None))]
    fn barrier(&self, worker: Option<u8>) -> u64 {
        self.hub.barrier(worker)
    }

    #[pyo3(signature = (code = codec::CLOSE_GOING_AWAY, worker = None))]
    fn shutdown(&self, code: u16, worker: Option<u8>) {
        self.hub.control(worker, &Down::Shutdown { code });
    }

    fn workers(&self) -> Vec<u8> {
        self.hub.workers()
    }
}
