//! Settings of one simulator process: the fleet slice it simulates and the scenario, already compiled by
//! Python into plain numbers (see python/ampgate/sim/scenario.py).

use crate::sim::ev::EvProfile;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::client::tls::TlsSettings;
use crate::client::Protocol;

/// Per-charger traits, one byte each, chosen by Python from the seed so a fraction is an exact count.
pub const TRAIT_FLAP: u8 = 1;
pub const TRAIT_SLOW_READ: u8 = 2;
pub const TRAIT_NO_ANSWER: u8 = 4;
pub const TRAIT_FW_FAIL: u8 = 8;

/// The firmware step at which a charger with [`TRAIT_FW_FAIL`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailStep {
    Downloading,
    Installing,
}

/// The CALL a bench load sends besides the scenario's own traffic. MeterValues are sent inside a transaction
/// of the load's own on connector 1 (1.6 MeterValues with its transactionId, 2.0.1 TransactionEvent Updated),
/// so that a central system keeps every sample; see `engine/load.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMessage {
    Heartbeat,
    MeterValues,
}

impl LoadMessage {
    pub fn name(self) -> &'static str {
        match self {
            LoadMessage::Heartbeat => "Heartbeat",
            LoadMessage::MeterValues => "MeterValues",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub target: SocketAddr,
    pub path_prefix: String,
    pub id_prefix: String,
    pub first_index: u64,
    pub count: usize,
    /// Chargers over every simulator process (a rolling restart counts its fraction of the whole fleet).
    pub fleet_size: u64,
    pub protocol: Protocol,
    pub password: Option<String>,
    pub id_tag: String,
    pub source_ips: Vec<Ipv4Addr>,
    pub seed: u64,
    pub vendor: String,
    pub model: String,
    pub firmware_version: String,
    pub connectors: u32,
    /// Seconds from the start of the run to the start of closing.
    pub duration: f64,
    /// New connections per second (0: as fast as `max_inflight` allows).
    pub connect_rate: f64,
    pub max_inflight: usize,
    /// `None`: the interval the CSMS gives at boot.
    pub heartbeat_interval: Option<f64>,
    pub call_timeout: f64,
    pub tx_per_hour: f64,
    /// Each booted charger changes connector 1's status every this many seconds (0: never): Available, then
    /// Preparing (2.0.1: Occupied), a driver plugging in and leaving without charging, then Available again.
    /// Status traffic with nothing else, for a CSMS's status path (bench/ocpi_push.py); see `engine/behaviour.rs`.
    pub status_period: f64,
    pub tx_duration: f64,
    pub meter_period: f64,
    pub power_w: f64,
    pub load_message: Option<LoadMessage>,
    /// Total load CALLs per second; 0 = saturation (closed loop, one per booted charger).
    pub load_rate: f64,
    /// Saturation only: load CALLs outstanding at once over this process (chargers take turns from a FIFO);
    /// 0 = one per booted charger.
    pub load_inflight: usize,
    pub load_start: f64,
    pub storm_at: Option<f64>,
    pub storm_backoff: f64,
    pub rolling_period: f64,
    pub rolling_fraction: f64,
    pub reboot_delay: f64,
    pub flap_period: f64,
    pub flap_down: f64,
    pub slow_pause: f64,
    pub firmware_step: f64,
    pub firmware_fail_step: FailStep,
    pub reconnect_backoff: f64,
    pub max_message: usize,
    /// The EVs transactions are charged with, picked by weight (empty: every transaction draws `power_w`).
    pub ev_mix: Vec<EvProfile>,
    /// 2.0.1: each EV reports its charging needs (NotifyEVChargingNeeds) once its transaction started.
    pub ev_charging_needs: bool,
    /// Keep every message of the CSMS for the schema check (`Sim::take_checks`). Off in the bench mode, where
    /// the run measures the CSMS and the check would make the simulator the bottleneck.
    pub check_replies: bool,
    /// A refused upgrade's `Retry-After` sets when the charger tries again (else: the reconnect back-off, as
    /// chargers that ignore it do).
    pub honour_retry_after: bool,
    /// wss://: TLS on every connection (the server's name and CA, the chargers' client certificates).
    pub tls: Option<TlsSettings>,
}

impl SimConfig {
    pub fn new(target: SocketAddr, count: usize) -> Self {
        Self {
            target,
            path_prefix: "/ocpp".into(),
            id_prefix: "SIM".into(),
            first_index: 0,
            count,
            fleet_size: count as u64,
            protocol: Protocol::Ocpp16,
            password: None,
            id_tag: "SIMTAG".into(),
            source_ips: Vec::new(),
            seed: 0,
            vendor: "ampgate".into(),
            model: "sim".into(),
            firmware_version: "1.0.0".into(),
            connectors: 1,
            duration: 60.0,
            connect_rate: 0.0,
            max_inflight: 512,
            heartbeat_interval: None,
            call_timeout: 30.0,
            tx_per_hour: 0.0,
            status_period: 0.0,
            tx_duration: 60.0,
            meter_period: 10.0,
            power_w: 11_000.0,
            load_message: None,
            load_rate: 0.0,
            load_inflight: 0,
            load_start: 0.0,
            storm_at: None,
            storm_backoff: 0.0,
            rolling_period: 0.0,
            rolling_fraction: 0.0,
            reboot_delay: 1.0,
            flap_period: 5.0,
            flap_down: 1.0,
            slow_pause: 2.0,
            firmware_step: 1.0,
            firmware_fail_step: FailStep::Installing,
            reconnect_backoff: 5.0,
            max_message: 1 << 20,
            ev_mix: Vec::new(),
            ev_charging_needs: false,
            check_replies: true,
            honour_retry_after: true,
            tls: None,
        }
    }

    /// The first setting that makes no sense, as (name, why).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("call_timeout", self.call_timeout),
            ("tx_duration", self.tx_duration),
            ("meter_period", self.meter_period),
            ("flap_period", self.flap_period),
            ("firmware_step", self.firmware_step),
            ("slow_pause", self.slow_pause),
            ("reconnect_backoff", self.reconnect_backoff),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err((
                    name,
                    format!("must be a positive number of seconds, not {v}"),
                ));
            }
        }
        let non_negative = [
            ("duration", self.duration),
            ("connect_rate", self.connect_rate),
            ("tx_per_hour", self.tx_per_hour),
            ("status_period", self.status_period),
            ("power_w", self.power_w),
            ("load_rate", self.load_rate),
            ("load_start", self.load_start),
            ("storm_backoff", self.storm_backoff),
            ("rolling_period", self.rolling_period),
            ("reboot_delay", self.reboot_delay),
            ("flap_down", self.flap_down),
        ];
        for (name, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err((name, format!("must be a non-negative number, not {v}")));
            }
        }
        for ev in &self.ev_mix {
            ev.check()?;
        }
        if !(0.0..=1.0).contains(&self.rolling_fraction) {
            return Err(("rolling_fraction", "must be between 0 and 1".into()));
        }
        if let Some(h) = self.heartbeat_interval {
            if !(h.is_finite() && h > 0.0) {
                return Err(("heartbeat_interval", "must be positive".into()));
            }
        }
        if let Some(t) = self.storm_at {
            if !(t.is_finite() && t >= 0.0) {
                return Err(("storm_at", "must be a non-negative time".into()));
            }
        }
        if self.fleet_size < self.first_index + self.count as u64 {
            return Err((
                "fleet_size",
                "smaller than this process's last charger index".into(),
            ));
        }
        if self.max_message < 1024 {
            return Err(("max_message", "must be at least 1024 bytes".into()));
        }
        // The schemas' lengths: 1.6 idTag 20, 2.0.1 idToken 36; vendor and model 20 in 1.6.
        let tag_max = if self.protocol == Protocol::Ocpp16 {
            20
        } else {
            36
        };
        if self.id_tag.is_empty() || self.id_tag.chars().count() > tag_max {
            return Err((
                "id_tag",
                format!(
                    "must be 1 to {tag_max} characters in {}",
                    self.protocol.name()
                ),
            ));
        }
        for (name, v) in [
            ("vendor", &self.vendor),
            ("model", &self.model),
            ("firmware_version", &self.firmware_version),
        ] {
            if v.is_empty() || v.chars().count() > 20 {
                return Err((name, "must be 1 to 20 characters".into()));
            }
        }
        if self.max_inflight == 0 {
            return Err(("max_inflight", "must be at least 1".into()));
        }
        if self.connectors == 0 || self.connectors > 64 {
            return Err(("connectors", "must be between 1 and 64".into()));
        }
        if self.load_message == Some(LoadMessage::MeterValues)
            && self.tx_per_hour > 0.0
            && self.connectors < 2
        {
            return Err((
                "connectors",
                "must be at least 2 with a MeterValues load and transactions: the load's transaction holds \
                 connector 1, the scenario's transactions use connector 2"
                    .into(),
            ));
        }
        if !self.source_ips.is_empty() && !matches!(self.target.ip(), IpAddr::V4(_)) {
            return Err((
                "source_ips",
                "source addresses are IPv4 but the target is not".into(),
            ));
        }
        let needs_escape = |s: &str| {
            s.bytes()
                .any(|b| b == b'"' || b == b'\\' || b.is_ascii_control())
        };
        for (name, v) in [
            ("vendor", &self.vendor),
            ("model", &self.model),
            ("id_tag", &self.id_tag),
            ("firmware_version", &self.firmware_version),
            ("id_prefix", &self.id_prefix),
        ] {
            if needs_escape(v) {
                return Err((
                    name,
                    "must not contain quotes, backslashes or control characters".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn charger_id(&self, i: usize) -> String {
        format!("{}{}", self.id_prefix, self.first_index + i as u64)
    }

    pub fn source_ip(&self, i: usize) -> Option<Ipv4Addr> {
        (!self.source_ips.is_empty()).then(|| self.source_ips[i % self.source_ips.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SimConfig {
        SimConfig::new(SocketAddr::from(([127, 0, 0, 1], 9000)), 1)
    }

    #[test]
    fn a_meter_values_load_and_transactions_need_a_second_connector() {
        let mut c = cfg();
        c.load_message = Some(LoadMessage::MeterValues);
        assert!(c.check().is_ok(), "the load alone fits on one connector");
        c.tx_per_hour = 1.0;
        assert_eq!(c.check().unwrap_err().0, "connectors");
        c.connectors = 2;
        assert!(c.check().is_ok());
        // A heartbeat load holds no connector.
        let mut c = cfg();
        c.load_message = Some(LoadMessage::Heartbeat);
        c.tx_per_hour = 1.0;
        assert!(c.check().is_ok());
    }
}
