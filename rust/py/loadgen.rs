//! `LoadGen`: Python's handle on the load generator (see `crate::loadgen`). Every phase blocks with the GIL
//! released and returns its report as a dict of plain numbers.

use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::loadgen::{
    BootReport, ClientError, CloseReport, HeartbeatReport, Histogram, HoldReport, LoadGen,
    LoadGenConfig,
};

impl From<ClientError> for PyErr {
    fn from(e: ClientError) -> PyErr {
        match e {
            ClientError::Config(..) => PyValueError::new_err(e.to_string()),
            ClientError::FileLimit { .. } | ClientError::Io(_) => PyOSError::new_err(e.to_string()),
        }
    }
}

const KEYS: &[&str] = &[
    "host",
    "port",
    "path_prefix",
    "id_prefix",
    "first_index",
    "count",
    "protocol",
    "password",
    "source_ips",
    "max_inflight",
    "max_message",
    "vendor",
    "model",
];

fn bad(key: &str, msg: impl std::fmt::Display) -> PyErr {
    super::bad_setting("load generator", key, msg)
}

fn get<'py, T: FromPyObjectOwned<'py>>(
    d: &Bound<'py, PyDict>,
    key: &str,
    default: T,
) -> PyResult<T> {
    super::setting(d, "load generator", key, default)
}

fn config_from(d: &Bound<'_, PyDict>) -> PyResult<LoadGenConfig> {
    let common = super::client_settings(d, "load generator", KEYS)?;
    let mut cfg = LoadGenConfig::new(common.target, common.count);
    cfg.protocol = common.protocol;
    cfg.source_ips = common.source_ips;
    cfg.path_prefix = get(d, "path_prefix", cfg.path_prefix)?;
    cfg.id_prefix = get(d, "id_prefix", cfg.id_prefix)?;
    cfg.first_index = get(d, "first_index", cfg.first_index)?;
    cfg.password = get(d, "password", None)?;
    cfg.max_inflight = get(d, "max_inflight", cfg.max_inflight)?;
    cfg.max_message = get(d, "max_message", cfg.max_message)?;
    cfg.vendor = get(d, "vendor", cfg.vendor)?;
    cfg.model = get(d, "model", cfg.model)?;
    Ok(cfg)
}

fn secs(key: &str, v: f64) -> PyResult<Duration> {
    if !(0.0..=1e7).contains(&v) {
        return Err(bad(key, "seconds out of range"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn put_latency(d: &Bound<'_, PyDict>, prefix: &str, h: &Histogram) -> PyResult<()> {
    d.set_item(format!("{prefix}p50_ms"), ms(h.quantile(0.50)))?;
    d.set_item(format!("{prefix}p90_ms"), ms(h.quantile(0.90)))?;
    d.set_item(format!("{prefix}p99_ms"), ms(h.quantile(0.99)))?;
    d.set_item(format!("{prefix}max_ms"), ms(h.max()))?;
    d.set_item(format!("{prefix}mean_ms"), h.mean() / 1000.0)?;
    d.set_item(format!("{prefix}histogram"), h.buckets())?;
    Ok(())
}

/// Client WebSocket connections for benchmarks: one Rust event loop over `count` connections.
#[pyclass(name = "LoadGen", module = "ampgate._native")]
pub struct PyLoadGen {
    inner: LoadGen,
}

#[pymethods]
impl PyLoadGen {
    #[new]
    fn new(config: &Bound<'_, PyDict>) -> PyResult<Self> {
        Ok(Self {
            inner: LoadGen::new(config_from(config)?)?,
        })
    }

    /// Booted connections still open.
    #[getter]
    fn open(&self) -> usize {
        self.inner.open()
    }

    #[pyo3(signature = (timeout = 60.0))]
    fn connect_and_boot<'py>(
        &mut self,
        py: Python<'py>,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let timeout = secs("timeout", timeout)?;
        let inner = &mut self.inner;
        let r: BootReport = py.detach(|| inner.connect_and_boot(timeout))?;
        let d = PyDict::new(py);
        d.set_item("attempted", r.attempted)?;
        d.set_item("connected", r.connected)?;
        d.set_item("upgraded", r.upgraded)?;
        d.set_item("booted", r.booted)?;
        d.set_item("failures", r.failures)?;
        d.set_item("elapsed_s", r.elapsed_s)?;
        d.set_item("open", r.open)?;
        put_latency(&d, "boot_", &r.boot_latency)?;
        Ok(d)
    }

    fn hold<'py>(&mut self, py: Python<'py>, seconds: f64) -> PyResult<Bound<'py, PyDict>> {
        let duration = secs("seconds", seconds)?;
        let inner = &mut self.inner;
        let r: HoldReport = py.detach(|| inner.hold(duration))?;
        let d = PyDict::new(py);
        d.set_item("seconds", r.seconds)?;
        d.set_item("open_at_start", r.open_at_start)?;
        d.set_item("open_at_end", r.open_at_end)?;
        d.set_item("lost", r.lost)?;
        d.set_item("pings_answered", r.pings_answered)?;
        Ok(d)
    }

    #[pyo3(signature = (duration, rate = 0.0, inflight = 0))]
    fn heartbeats<'py>(
        &mut self,
        py: Python<'py>,
        duration: f64,
        rate: f64,
        inflight: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let duration = secs("duration", duration)?;
        if !rate.is_finite() || rate < 0.0 {
            return Err(bad("rate", "must be >= 0"));
        }
        let inner = &mut self.inner;
        let r: HeartbeatReport = py.detach(|| inner.heartbeats(duration, rate, inflight))?;
        let d = PyDict::new(py);
        d.set_item("duration_s", r.duration_s)?;
        d.set_item("target_rate", r.target_rate)?;
        d.set_item("inflight", r.inflight)?;
        d.set_item("sent", r.sent)?;
        d.set_item("answered", r.answered)?;
        d.set_item("answered_late", r.answered_late)?;
        d.set_item("errors", r.errors)?;
        d.set_item("unanswered", r.unanswered)?;
        d.set_item("skipped", r.skipped)?;
        d.set_item("rate", r.rate)?;
        d.set_item("lost", r.lost)?;
        d.set_item("open", r.open)?;
        put_latency(&d, "", &r.latency)?;
        Ok(d)
    }

    #[pyo3(signature = (timeout = 5.0))]
    fn close<'py>(&mut self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyDict>> {
        let timeout = secs("timeout", timeout)?;
        let inner = &mut self.inner;
        let r: CloseReport = py.detach(|| inner.close(timeout))?;
        let d = PyDict::new(py);
        d.set_item("closing", r.closing)?;
        d.set_item("clean", r.clean)?;
        d.set_item("elapsed_s", r.elapsed_s)?;
        Ok(d)
    }
}
