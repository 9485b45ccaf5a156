//! `Sim`: Python's handle on the fleet simulator's engine (see `crate::sim`). `run` drives the loop with the
//! GIL released; the rest are cheap reads between slices.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::client::tls::TlsSettings;
use crate::sim::ev::{EvProfile, Phases};
use crate::sim::{FailStep, LoadMessage, Sim, SimConfig};

const KEYS: &[&str] = &[
    "host",
    "port",
    "path_prefix",
    "id_prefix",
    "first_index",
    "count",
    "fleet_size",
    "protocol",
    "password",
    "id_tag",
    "source_ips",
    "seed",
    "vendor",
    "model",
    "firmware_version",
    "connectors",
    "duration",
    "connect_rate",
    "max_inflight",
    "heartbeat_interval",
    "call_timeout",
    "tx_per_hour",
    "status_period",
    "tx_duration",
    "meter_period",
    "power_w",
    "load_message",
    "load_rate",
    "load_inflight",
    "load_start",
    "storm_at",
    "storm_backoff",
    "rolling_period",
    "rolling_fraction",
    "reboot_delay",
    "flap_period",
    "flap_down",
    "slow_pause",
    "firmware_step",
    "firmware_fail_step",
    "reconnect_backoff",
    "max_message",
    "ev_mix",
    "ev_charging_needs",
    "check_replies",
    "honour_retry_after",
    "tls_server_name",
    "tls_ca",
    "tls_client_cert",
    "tls_client_key",
    "tls_client_ca_cert",
    "tls_client_ca_key",
];

/// An EV profile as Python passes it: a dict of `weight`, `phases` ("L1" / "L2" / "L3" / "3"),
/// `max_current_a`, `capacity_wh`, `soc_start`, `taper_soc`, `departure_after_s` and `energy_need_wh` (None:
/// not reported).
fn ev_profile(d: &Bound<'_, PyDict>) -> PyResult<EvProfile> {
    let field = |k: &str| -> PyResult<Bound<'_, PyAny>> {
        d.get_item(k)?
            .ok_or_else(|| bad("ev_mix", format!("an EV without {k}")))
    };
    let num = |k: &str| -> PyResult<f64> {
        field(k)?
            .extract()
            .map_err(|_| bad("ev_mix", format!("{k} is a number")))
    };
    let opt = |k: &str| -> PyResult<Option<f64>> {
        field(k)?
            .extract()
            .map_err(|_| bad("ev_mix", format!("{k} is a number or None")))
    };
    let phases: String = field("phases")?
        .extract()
        .map_err(|_| bad("ev_mix", "phases is a string"))?;
    Ok(EvProfile {
        weight: num("weight")?,
        phases: Phases::parse(&phases).ok_or_else(|| bad("ev_mix", "phases is L1, L2, L3 or 3"))?,
        max_current_a: num("max_current_a")?,
        capacity_wh: num("capacity_wh")?,
        soc_start: num("soc_start")?,
        taper_soc: num("taper_soc")?,
        departure_after_s: opt("departure_after_s")?,
        energy_need_wh: opt("energy_need_wh")?,
    })
}

fn bad(key: &str, msg: impl std::fmt::Display) -> PyErr {
    super::bad_setting("simulator", key, msg)
}

fn get<'py, T: FromPyObjectOwned<'py>>(
    d: &Bound<'py, PyDict>,
    key: &str,
    default: T,
) -> PyResult<T> {
    super::setting(d, "simulator", key, default)
}

fn config_from(d: &Bound<'_, PyDict>) -> PyResult<SimConfig> {
    let common = super::client_settings(d, "simulator", KEYS)?;
    let count = common.count;
    let mut c = SimConfig::new(common.target, count);
    c.protocol = common.protocol;
    c.source_ips = common.source_ips;
    c.path_prefix = get(d, "path_prefix", c.path_prefix)?;
    c.id_prefix = get(d, "id_prefix", c.id_prefix)?;
    c.first_index = get(d, "first_index", c.first_index)?;
    c.fleet_size = get(d, "fleet_size", c.first_index + count as u64)?;
    c.password = get(d, "password", None)?;
    c.id_tag = get(d, "id_tag", c.id_tag)?;
    c.seed = get(d, "seed", c.seed)?;
    c.vendor = get(d, "vendor", c.vendor)?;
    c.model = get(d, "model", c.model)?;
    c.firmware_version = get(d, "firmware_version", c.firmware_version)?;
    c.connectors = get(d, "connectors", c.connectors)?;
    c.duration = get(d, "duration", c.duration)?;
    c.connect_rate = get(d, "connect_rate", c.connect_rate)?;
    c.max_inflight = get(d, "max_inflight", c.max_inflight)?;
    c.heartbeat_interval = get(d, "heartbeat_interval", c.heartbeat_interval)?;
    c.call_timeout = get(d, "call_timeout", c.call_timeout)?;
    c.tx_per_hour = get(d, "tx_per_hour", c.tx_per_hour)?;
    c.status_period = get(d, "status_period", c.status_period)?;
    c.tx_duration = get(d, "tx_duration", c.tx_duration)?;
    c.meter_period = get(d, "meter_period", c.meter_period)?;
    c.power_w = get(d, "power_w", c.power_w)?;
    let load: Option<String> = get(d, "load_message", None)?;
    c.load_message = match load.as_deref() {
        None => None,
        Some("Heartbeat") => Some(LoadMessage::Heartbeat),
        Some("MeterValues") => Some(LoadMessage::MeterValues),
        Some(_) => return Err(bad("load_message", "Heartbeat or MeterValues")),
    };
    c.load_rate = get(d, "load_rate", c.load_rate)?;
    c.load_inflight = get(d, "load_inflight", c.load_inflight)?;
    c.load_start = get(d, "load_start", c.load_start)?;
    c.storm_at = get(d, "storm_at", c.storm_at)?;
    c.storm_backoff = get(d, "storm_backoff", c.storm_backoff)?;
    c.rolling_period = get(d, "rolling_period", c.rolling_period)?;
    c.rolling_fraction = get(d, "rolling_fraction", c.rolling_fraction)?;
    c.reboot_delay = get(d, "reboot_delay", c.reboot_delay)?;
    c.flap_period = get(d, "flap_period", c.flap_period)?;
    c.flap_down = get(d, "flap_down", c.flap_down)?;
    c.slow_pause = get(d, "slow_pause", c.slow_pause)?;
    c.firmware_step = get(d, "firmware_step", c.firmware_step)?;
    let step: String = get(d, "firmware_fail_step", "Installing".to_string())?;
    c.firmware_fail_step = match step.as_str() {
        "Downloading" => FailStep::Downloading,
        "Installing" => FailStep::Installing,
        _ => return Err(bad("firmware_fail_step", "Downloading or Installing")),
    };
    c.reconnect_backoff = get(d, "reconnect_backoff", c.reconnect_backoff)?;
    c.max_message = get(d, "max_message", c.max_message)?;
    if let Some(mix) = d.get_item("ev_mix")? {
        let mix = mix
            .cast_into::<pyo3::types::PyList>()
            .map_err(|_| bad("ev_mix", "a list of EV profiles"))?;
        for ev in mix.iter() {
            let ev = ev
                .cast_into::<PyDict>()
                .map_err(|_| bad("ev_mix", "each EV profile is a dict"))?;
            c.ev_mix.push(ev_profile(&ev)?);
        }
    }
    c.ev_charging_needs = get(d, "ev_charging_needs", c.ev_charging_needs)?;
    c.check_replies = get(d, "check_replies", c.check_replies)?;
    c.honour_retry_after = get(d, "honour_retry_after", c.honour_retry_after)?;
    c.tls = tls_from(d)?;
    c.check().map_err(|(k, why)| bad(k, why))?;
    Ok(c)
}

/// wss://: `tls_server_name` (the URL's host) turns TLS on; the rest are PEM files, the certificate settings
/// in pairs with their keys.
fn tls_from(d: &Bound<'_, PyDict>) -> PyResult<Option<TlsSettings>> {
    let file = |k: &str| -> PyResult<Option<String>> { get(d, k, None) };
    let pair = |cert: &str, key: &str| -> PyResult<Option<(String, String)>> {
        match (file(cert)?, file(key)?) {
            (Some(c), Some(k)) => Ok(Some((c, k))),
            (None, None) => Ok(None),
            _ => Err(bad(cert, format!("{cert} and {key} go together"))),
        }
    };
    let Some(server_name) = file("tls_server_name")? else {
        for k in [
            "tls_ca",
            "tls_client_cert",
            "tls_client_key",
            "tls_client_ca_cert",
            "tls_client_ca_key",
        ] {
            if file(k)?.is_some() {
                return Err(bad(k, "needs TLS (tls_server_name)"));
            }
        }
        return Ok(None);
    };
    Ok(Some(TlsSettings {
        server_name,
        ca: file("tls_ca")?,
        client_cert: pair("tls_client_cert", "tls_client_key")?,
        client_ca: pair("tls_client_ca_cert", "tls_client_ca_key")?,
    }))
}

/// A fleet of simulated chargers in this process.
#[pyclass(name = "Sim", module = "ampgate._native")]
pub struct PySim {
    inner: Sim,
}

#[pymethods]
impl PySim {
    #[new]
    fn new(settings: &Bound<'_, PyDict>, traits: &Bound<'_, PyBytes>) -> PyResult<Self> {
        let cfg = config_from(settings)?;
        Ok(Self {
            inner: Sim::new(cfg, traits.as_bytes().to_vec())?,
        })
    }

    /// Drive the loop for up to `seconds` with the GIL released; True once the run is over.
    fn run(&mut self, py: Python<'_>, seconds: f64) -> PyResult<bool> {
        if !(seconds.is_finite() && (0.0..=3600.0).contains(&seconds)) {
            return Err(bad("seconds", "between 0 and 3600"));
        }
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.run(Duration::from_secs_f64(seconds)))?)
    }

    /// End the run early: close every link as at the end of the duration (then keep calling `run`).
    fn stop(&mut self) {
        self.inner.stop();
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("chargers", s.chargers)?;
        d.set_item("connected", s.connected)?;
        d.set_item("booted", s.booted)?;
        d.set_item("sent", s.sent)?;
        d.set_item("received", s.received)?;
        d.set_item("errors", s.errors)?;
        d.set_item("elapsed_s", s.elapsed_s)?;
        d.set_item("done", s.done)?;
        Ok(d)
    }

    /// Every message the CSMS sent since the last call: (protocol, "call" | "result", action, payload JSON).
    fn take_checks(&mut self) -> Vec<(&'static str, &'static str, String, String)> {
        let protocol = self.inner.config().protocol.name();
        self.inner
            .take_checks()
            .into_iter()
            .map(|(kind, action, payload)| (protocol, kind, action, payload))
            .collect()
    }

    /// Run the load from now on at `rate` CALLs per second over this process (0: saturation) with at most
    /// `inflight` outstanding at saturation (0: one per booted charger).
    #[pyo3(signature = (rate = 0.0, inflight = 0))]
    fn set_load(&mut self, rate: f64, inflight: usize) -> PyResult<()> {
        Ok(self.inner.set_load(rate, inflight)?)
    }

    /// A reconnect storm now: every open link drops without a close frame and each charger reconnects after
    /// a uniform random wait in [0, backoff] s, without booting again. Returns how many links dropped.
    fn storm_now(&mut self, backoff: f64) -> u64 {
        self.inner.storm_now(backoff)
    }

    /// Stop sending load CALLs; the outstanding ones are still answered and counted.
    fn pause_load(&mut self) {
        self.inner.pause_load();
    }

    /// Load CALLs queued or outstanding now.
    fn load_in_flight(&self) -> usize {
        self.inner.load_in_flight()
    }

    /// What the load did since the last call (sent, answered, errors, unanswered, lost, skipped, and the
    /// round trips: `latency_us` as [[upper_us, count], ...] and `latency_max_us`); starts a new window.
    fn take_load_window<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let w = self.inner.take_load_window();
        let d = PyDict::new(py);
        d.set_item("sent", w.sent)?;
        d.set_item("answered", w.answered)?;
        d.set_item("errors", w.errors)?;
        d.set_item("unanswered", w.unanswered)?;
        d.set_item("lost", w.lost)?;
        d.set_item("skipped", w.skipped)?;
        d.set_item("latency_us", w.latency.buckets())?;
        d.set_item("latency_max_us", w.latency.max())?;
        Ok(d)
    }

    /// This process's report (see the simulator's documentation for the keys).
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = self.inner.report_json().to_string();
        py.import("json")?.call_method1("loads", (text,))
    }
}
