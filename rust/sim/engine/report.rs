//! The run's counters and the report made of them: what Python serialises at the end ([`Sim::report_json`]).

use super::*;

/// The run's counters: what the report is made of.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) connects: u64,
    pub(super) first_connects: u64,
    pub(super) boots: u64,
    pub(super) ever_booted: u64,
    pub(super) first_connect_us: Option<u64>,
    pub(super) last_first_connect_us: u64,
    pub(super) last_first_boot_us: u64,
    pub(super) sent: u64,
    pub(super) received: u64,
    pub(super) errors: BTreeMap<&'static str, u64>,
    pub(super) error_details: BTreeMap<&'static str, BTreeMap<String, u64>>,
    pub(super) error_total: u64,
    pub(super) latency: Vec<Histogram>,
    pub(super) connect_latency: Histogram,
    /// From the start of the connect to the boot's acceptance, for every boot accepted.
    pub(super) boot_latency: Histogram,
    pub(super) responses: BTreeMap<&'static str, BTreeMap<String, u64>>,
    pub(super) csms_calls: BTreeMap<String, u64>,
    pub(super) tx_started: u64,
    pub(super) tx_stopped: u64,
    pub(super) tx_refused: u64,
    pub(super) fw_updates: u64,
    pub(super) fw_installed: u64,
    pub(super) fw_failed: u64,
    pub(super) fw_statuses: BTreeMap<&'static str, u64>,
    pub(super) reboots: u64,
    pub(super) flaps: u64,
    pub(super) storm_drops: u64,
    /// Upgrades refused 503 (the central system's admission control), and how many of those said when to
    /// come back.
    pub(super) refused_busy: u64,
    pub(super) retry_after_given: u64,
    pub(super) load_skipped: u64,
    pub(super) load: load::LoadCounters,
    pub(super) profiles: charging::ProfileCounters,
    pub(super) checks_dropped: u64,
    pub(super) end_connected: u64,
    pub(super) end_booted: u64,
    pub(super) closed_clean: u64,
    pub(super) elapsed_end_s: f64,
    /// wss://: TLS handshakes completed, with the session offered taken (resumed) or not (full).
    pub(super) tls_full: u64,
    pub(super) tls_resumed: u64,
}

impl Sim {
    // -- the report ------------------------------------------------------------------------------------------

    pub fn report_json(&self) -> Value {
        let mut latency = serde_json::Map::new();
        let mut latency_max = serde_json::Map::new();
        for a in Action::ALL {
            let h = &self.r.latency[a.slot()];
            if h.count() > 0 {
                latency.insert(a.name().into(), serde_json::json!(h.buckets()));
                latency_max.insert(a.name().into(), h.max().into());
            }
        }
        if self.r.connect_latency.count() > 0 {
            latency.insert(
                "connect".into(),
                serde_json::json!(self.r.connect_latency.buckets()),
            );
            latency_max.insert("connect".into(), self.r.connect_latency.max().into());
        }
        if self.r.boot_latency.count() > 0 {
            latency.insert(
                "boot".into(),
                serde_json::json!(self.r.boot_latency.buckets()),
            );
            latency_max.insert("boot".into(), self.r.boot_latency.max().into());
        }
        let window = |last: u64| match self.r.first_connect_us {
            Some(first) if last > first => (last - first) as f64 / 1e6,
            _ => 0.0,
        };
        let (connected, booted) = if matches!(self.phase, Phase::Running | Phase::NotStarted) {
            (self.open as u64, self.booted_open as u64)
        } else {
            (self.r.end_connected, self.r.end_booted)
        };
        let mut report = serde_json::json!({
            "chargers": self.ch.len(),
            "protocol": self.cfg.protocol.name(),
            "elapsed_s": self.elapsed_s(),
            "connected": connected,
            "booted": booted,
            "ever_booted": self.r.ever_booted,
            "connects": self.r.connects,
            "first_connects": self.r.first_connects,
            "boots": self.r.boots,
            "connect_window_s": window(self.r.last_first_connect_us),
            "boot_window_s": window(self.r.last_first_boot_us),
            "messages_sent": self.r.sent,
            "messages_received": self.r.received,
            "errors": self.r.errors,
            "error_details": self.r.error_details,
            "latency_us": latency,
            "latency_max_us": latency_max,
            "responses": self.r.responses,
            "csms_calls": self.r.csms_calls,
            "transactions": {
                "started": self.r.tx_started,
                "stopped": self.r.tx_stopped,
                "refused": self.r.tx_refused,
            },
            "firmware": {
                "updates": self.r.fw_updates,
                "installed": self.r.fw_installed,
                "failed": self.r.fw_failed,
                "statuses": self.r.fw_statuses,
            },
            "charging_profiles": self.profiles_report(),
            "reboots": self.r.reboots,
            "flaps": self.r.flaps,
            "storm_drops": self.r.storm_drops,
            "refused_busy": self.r.refused_busy,
            "retry_after_given": self.r.retry_after_given,
            "load_skipped": self.r.load_skipped,
            "checks_dropped": self.r.checks_dropped,
            "checked": self.cfg.check_replies,
            "closed_clean": self.r.closed_clean,
        });
        if self.tls.is_some() {
            report["tls"] = serde_json::json!({
                "handshakes": self.r.tls_full + self.r.tls_resumed,
                "full": self.r.tls_full,
                "resumed": self.r.tls_resumed,
            });
        }
        if let Some(load) = self.load_report() {
            report["load"] = load;
        }
        report
    }
}
