//! `LoadGen`: Python's handle on the load generator (see `crate::loadgen`). Every phase blocks with the GIL
//! released and returns its report as a dict of plain numbers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::loadgen::{
    BootReport, CloseReport, HeartbeatReport, Histogram, HoldReport, LoadGen, LoadGenConfig,
    LoadGenError, Protocol,
};

impl From<LoadGenError> for PyErr {
    fn from(e: LoadGenError) -> PyErr {
        match e {
            LoadGenError::Config(..) => PyValueError::new_err(e.to_string()),
            LoadGenError::FileLimit { .. } | LoadGenError::Io(_) => {
                PyOSError::new_err(e.to_string())
            }
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
    PyValueError::new_err(format!("load generator setting {key}: {msg}"))
}

fn get<'py, T: FromPyObjectOwned<'py>>(
    d: &Bound<'py, PyDict>,
    key: &str,
    default: T,
) -> PyResult<T> {
    super::setting(d, "load generator", key, default)
}

fn config_from(d: &Bound<'_, PyDict>) -> PyResult<LoadGenConfig> {
    for k in d.keys() {
        let k: String = k.extract()?;
        if !KEYS.contains(&k.as_str()) {
            return Err(bad(&k, "unknown setting"));
        }
    }
    let host: String = get(d, "host", "127.0.0.1".to_string())?;
    let ip: IpAddr = host.parse().map_err(|_| bad("host", "not an IP address"))?;
    let port: u16 = match d.get_item("port")? {
        Some(v) => v.extract().map_err(|e| bad("port", e))?,
        None => return Err(bad("port", "required")),
    };
    let count: usize = match d.get_item("count")? {
        Some(v) => v.extract().map_err(|e| bad("count", e))?,
        None => return Err(bad("count", "required")),
    };
    let mut cfg = LoadGenConfig::new(SocketAddr::new(ip, port), count);
    cfg.path_prefix = get(d, "path_prefix", cfg.path_prefix)?;
    cfg.id_prefix = get(d, "id_prefix", cfg.id_prefix)?;
    cfg.first_index = get(d, "first_index", cfg.first_index)?;
    let protocol: String = get(d, "protocol", cfg.protocol.name().to_string())?;
    cfg.protocol =
        Protocol::parse(&protocol).ok_or_else(|| bad("protocol", "ocpp1.6 or ocpp2.0.1"))?;
    cfg.password = get(d, "password", None)?;
    let ips: Vec<String> = get(d, "source_ips", Vec::new())?;
    cfg.source_ips = ips
        .iter()
        .map(|s| s.parse::<Ipv4Addr>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("source_ips", "IPv4 addresses"))?;
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
