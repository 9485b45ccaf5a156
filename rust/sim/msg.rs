//! The OCPP-J messages a simulated charger sends, written straight into a String (no JSON tree on the send
//! path: every value we put in is a number or a string checked at config time not to need escaping), and the
//! actions it knows.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::client::Protocol;

/// The CALLs a simulated charger sends. The index is the slot of its latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    BootNotification,
    Heartbeat,
    StatusNotification,
    Authorize,
    StartTransaction,
    MeterValues,
    StopTransaction,
    TransactionEvent,
    FirmwareStatusNotification,
    SignedFirmwareStatusNotification,
    NotifyEVChargingNeeds,
}

pub const ACTIONS: usize = 11;

impl Action {
    pub const ALL: [Action; ACTIONS] = [
        Action::BootNotification,
        Action::Heartbeat,
        Action::StatusNotification,
        Action::Authorize,
        Action::StartTransaction,
        Action::MeterValues,
        Action::StopTransaction,
        Action::TransactionEvent,
        Action::FirmwareStatusNotification,
        Action::SignedFirmwareStatusNotification,
        Action::NotifyEVChargingNeeds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::BootNotification => "BootNotification",
            Action::Heartbeat => "Heartbeat",
            Action::StatusNotification => "StatusNotification",
            Action::Authorize => "Authorize",
            Action::StartTransaction => "StartTransaction",
            Action::MeterValues => "MeterValues",
            Action::StopTransaction => "StopTransaction",
            Action::TransactionEvent => "TransactionEvent",
            Action::FirmwareStatusNotification => "FirmwareStatusNotification",
            Action::SignedFirmwareStatusNotification => "SignedFirmwareStatusNotification",
            Action::NotifyEVChargingNeeds => "NotifyEVChargingNeeds",
        }
    }

    pub fn slot(self) -> usize {
        self as usize
    }
}

/// Now, in milliseconds since the Unix epoch (the resolution of every timestamp we send).
pub fn now_ms() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis() as i64
}

/// Now as an OCPP timestamp: UTC, millisecond precision, `Z` suffix.
pub fn timestamp(out: &mut String) {
    write_ms(out, now_ms());
}

/// The instant `ms` (milliseconds since the Unix epoch) as an OCPP timestamp.
pub fn write_ms(out: &mut String, ms: i64) {
    write_timestamp(out, ms.div_euclid(1000), ms.rem_euclid(1000) as u32);
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), then `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn write_timestamp(out: &mut String, secs: i64, millis: u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

/// Append `[2,"<id>","<action>",` to `out` — the caller appends the payload and `]`.
pub fn call_head(out: &mut String, id: u32, action: Action) {
    let _ = write!(out, r#"[2,"{id}","{}","#, action.name());
}

pub fn boot(
    out: &mut String,
    p: Protocol,
    vendor: &str,
    model: &str,
    serial: &str,
    fw: &str,
    reason: &str,
) {
    let _ = match p {
        Protocol::Ocpp16 => write!(
            out,
            r#"{{"chargePointVendor":"{vendor}","chargePointModel":"{model}","chargePointSerialNumber":"{serial}","firmwareVersion":"{fw}"}}"#
        ),
        Protocol::Ocpp201 => write!(
            out,
            r#"{{"reason":"{reason}","chargingStation":{{"model":"{model}","vendorName":"{vendor}","serialNumber":"{serial}","firmwareVersion":"{fw}"}}}}"#
        ),
    };
}

/// StatusNotification of `connector` (2.0.1: EVSE `connector`, connector 1). `status` is the 1.6 word;
/// 2.0.1 maps Charging/Preparing/Finishing to Occupied.
pub fn status(out: &mut String, p: Protocol, connector: u32, status: &str) {
    match p {
        Protocol::Ocpp16 => {
            let _ = write!(
                out,
                r#"{{"connectorId":{connector},"errorCode":"NoError","status":"{status}","timestamp":""#
            );
            timestamp(out);
            out.push_str("\"}");
        }
        Protocol::Ocpp201 => {
            let s = match status {
                "Available" => "Available",
                "Unavailable" => "Unavailable",
                "Faulted" => "Faulted",
                _ => "Occupied",
            };
            out.push_str(r#"{"timestamp":""#);
            timestamp(out);
            let _ = write!(
                out,
                r#"","connectorStatus":"{s}","evseId":{connector},"connectorId":1}}"#
            );
        }
    }
}

pub fn authorize(out: &mut String, p: Protocol, tag: &str) {
    let _ = match p {
        Protocol::Ocpp16 => write!(out, r#"{{"idTag":"{tag}"}}"#),
        Protocol::Ocpp201 => write!(
            out,
            r#"{{"idToken":{{"idToken":"{tag}","type":"ISO14443"}}}}"#
        ),
    };
}

/// One meter reading: when it was taken (the caller picks the instant, so that a charger's readings can be
/// kept strictly in time order) and what it reads.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub energy_wh: f64,
    pub power_w: f64,
    pub soc: f64,
    /// Current on L1, L2, L3.
    pub currents: [f64; 3],
    /// The current per phase the charger offers (the limit in force): Current.Offered.
    pub offered_a: f64,
}

/// A meter sample: the energy register, power, SoC, and per-phase current and voltage (10 values in 1.6,
/// like the MeterValues of the OCPP messages bench).
pub fn meter_value(out: &mut String, p: Protocol, r: &Reading) {
    let Reading {
        at_ms,
        energy_wh,
        power_w,
        soc,
        currents,
        offered_a,
    } = *r;
    out.push_str(r#"[{"timestamp":""#);
    write_ms(out, at_ms);
    out.push_str(r#"","sampledValue":["#);
    let mut first = true;
    let mut sample = |out: &mut String,
                      v: f64,
                      measurand: &str,
                      phase: Option<&str>,
                      unit: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = match p {
            Protocol::Ocpp16 => write!(
                out,
                r#"{{"value":"{v:.1}","measurand":"{measurand}","unit":"{unit}""#
            ),
            Protocol::Ocpp201 => write!(
                out,
                r#"{{"value":{v:.1},"measurand":"{measurand}","unitOfMeasure":{{"unit":"{unit}"}}"#
            ),
        };
        if let Some(ph) = phase {
            let _ = write!(out, r#","phase":"{ph}""#);
        }
        out.push('}');
    };
    sample(out, energy_wh, "Energy.Active.Import.Register", None, "Wh");
    sample(out, power_w, "Power.Active.Import", None, "W");
    sample(out, soc, "SoC", None, "Percent");
    for (ph, amps) in ["L1", "L2", "L3"].into_iter().zip(currents) {
        sample(out, amps, "Current.Import", Some(ph), "A");
    }
    for ph in ["L1-N", "L2-N", "L3-N"] {
        sample(out, 230.0, "Voltage", Some(ph), "V");
    }
    sample(out, offered_a, "Current.Offered", None, "A");
    out.push_str("]}]");
}

/// 1.6 MeterValues (with the transaction id when charging) / 2.0.1 MeterValues of EVSE `connector`.
pub fn meter_values(out: &mut String, p: Protocol, connector: u32, tx16: Option<i64>, r: &Reading) {
    match p {
        Protocol::Ocpp16 => {
            let _ = write!(out, r#"{{"connectorId":{connector},"#);
            if let Some(id) = tx16 {
                let _ = write!(out, r#""transactionId":{id},"#);
            }
        }
        Protocol::Ocpp201 => {
            let _ = write!(out, r#"{{"evseId":{connector},"#);
        }
    }
    out.push_str(r#""meterValue":"#);
    meter_value(out, p, r);
    out.push('}');
}

pub fn start16(out: &mut String, connector: u32, tag: &str, meter_start: i64) {
    let _ = write!(
        out,
        r#"{{"connectorId":{connector},"idTag":"{tag}","meterStart":{meter_start},"timestamp":""#
    );
    timestamp(out);
    out.push_str("\"}");
}

pub fn stop16(out: &mut String, tx: i64, meter_stop: i64, reason: &str, tag: &str) {
    let _ = write!(
        out,
        r#"{{"transactionId":{tx},"meterStop":{meter_stop},"reason":"{reason}","idTag":"{tag}","timestamp":""#
    );
    timestamp(out);
    out.push_str("\"}");
}

/// What a 2.0.1 TransactionEvent carries besides its meter value.
pub struct TxEvent<'a> {
    pub event_type: &'a str,
    pub trigger: &'a str,
    pub seq_no: u32,
    pub tx_id: &'a str,
    pub stopped_reason: Option<&'a str>,
    pub remote_start_id: Option<i64>,
    pub id_tag: Option<&'a str>,
    pub evse: u32,
}

/// A 2.0.1 TransactionEvent, timestamped with its reading (now when it has none: meterValue is optional).
pub fn tx_event(out: &mut String, e: &TxEvent<'_>, reading: Option<&Reading>) {
    let _ = write!(out, r#"{{"eventType":"{}","timestamp":""#, e.event_type);
    write_ms(out, reading.map_or_else(now_ms, |r| r.at_ms));
    let _ = write!(
        out,
        r#"","triggerReason":"{}","seqNo":{},"transactionInfo":{{"transactionId":"{}","chargingState":"{}""#,
        e.trigger,
        e.seq_no,
        e.tx_id,
        if e.event_type == "Ended" {
            "Idle"
        } else {
            "Charging"
        }
    );
    if let Some(r) = e.stopped_reason {
        let _ = write!(out, r#","stoppedReason":"{r}""#);
    }
    if let Some(r) = e.remote_start_id {
        let _ = write!(out, r#","remoteStartId":{r}"#);
    }
    out.push('}');
    if let Some(tag) = e.id_tag {
        let _ = write!(out, r#","idToken":{{"idToken":"{tag}","type":"ISO14443"}}"#);
    }
    let _ = write!(out, r#","evse":{{"id":{},"connectorId":1}}"#, e.evse);
    if let Some(r) = reading {
        out.push_str(r#","meterValue":"#);
        meter_value(out, Protocol::Ocpp201, r);
    }
    out.push('}');
}

pub fn firmware_status(out: &mut String, status: &str, request_id: Option<i64>) {
    let _ = write!(out, r#"{{"status":"{status}""#);
    if let Some(r) = request_id {
        let _ = write!(out, r#","requestId":{r}"#);
    }
    out.push('}');
}

/// 2.0.1 NotifyEVChargingNeeds of EVSE `evse` for `ev` (ISO 15118 AC charging parameters): the energy it wants
/// (its need, or what fills its battery), its current range, and its departure time when it has one.
pub fn ev_charging_needs(
    out: &mut String,
    evse: u32,
    ev: &crate::sim::ev::Ev,
    energy_wh: f64,
    now_ms: i64,
) {
    let p = &ev.profile;
    let transfer = if p.phases == crate::sim::ev::Phases::Three {
        "AC_three_phase"
    } else {
        "AC_single_phase"
    };
    let need = p
        .energy_need_wh
        .unwrap_or((100.0 - ev.soc(energy_wh)) / 100.0 * p.capacity_wh);
    let _ = write!(
        out,
        r#"{{"evseId":{evse},"chargingNeeds":{{"requestedEnergyTransfer":"{transfer}","#
    );
    if let Some(d) = p.departure_after_s {
        out.push_str(r#""departureTime":""#);
        write_ms(out, now_ms + (d * 1000.0) as i64);
        out.push_str(r#"","#);
    }
    let _ = write!(
        out,
        r#""acChargingParameters":{{"energyAmount":{},"evMinCurrent":{},"evMaxCurrent":{},"evMaxVoltage":{}}}}}}}"#,
        need.round() as i64,
        crate::sim::ev::MIN_CURRENT_A as i64,
        p.max_current_a.round() as i64,
        crate::sim::ev::VOLTAGE as i64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_civil_utc() {
        let mut s = String::new();
        write_timestamp(&mut s, 0, 0);
        assert_eq!(s, "1970-01-01T00:00:00.000Z");
        s.clear();
        // 2026-11-27T09:55:59Z
        write_timestamp(&mut s, 1_795_773_359, 7);
        assert_eq!(s, "2026-11-27T09:55:59.007Z");
        s.clear();
        write_timestamp(&mut s, 951_782_400, 0); // leap day 2000
        assert_eq!(s, "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn messages_are_json() {
        let mut s = String::new();
        for p in [Protocol::Ocpp16, Protocol::Ocpp201] {
            s.clear();
            meter_values(&mut s, p, 1, Some(7), &READING);
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert_eq!(
                v["meterValue"][0]["sampledValue"].as_array().unwrap().len(),
                10
            );
            // The reading's own instant, not the time of writing.
            assert_eq!(v["meterValue"][0]["timestamp"], "2026-11-27T09:55:59.007Z");
            s.clear();
            status(&mut s, p, 2, "Charging");
            serde_json::from_str::<serde_json::Value>(&s).unwrap();
            s.clear();
            boot(&mut s, p, "V", "M", "SIM1", "1.0", "PowerUp");
            serde_json::from_str::<serde_json::Value>(&s).unwrap();
        }
        s.clear();
        tx_event(
            &mut s,
            &TxEvent {
                event_type: "Ended",
                trigger: "StopAuthorized",
                seq_no: 3,
                tx_id: "1-2",
                stopped_reason: Some("Local"),
                remote_start_id: Some(4),
                id_tag: Some("T"),
                evse: 1,
            },
            Some(&READING),
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["transactionInfo"]["stoppedReason"], "Local");
        assert_eq!(v["transactionInfo"]["chargingState"], "Idle");
        assert_eq!(v["timestamp"], v["meterValue"][0]["timestamp"]);
        // Without a reading: no meterValue (it is optional), stamped now.
        s.clear();
        let ev = TxEvent {
            event_type: "Started",
            trigger: "Authorized",
            seq_no: 0,
            tx_id: "L1-1",
            stopped_reason: None,
            remote_start_id: None,
            id_tag: Some("T"),
            evse: 1,
        };
        let before = now_ms();
        tx_event(&mut s, &ev, None);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert!(v.get("meterValue").is_none(), "{v}");
        let mut earliest = String::new();
        write_ms(&mut earliest, before);
        assert!(v["timestamp"].as_str().unwrap() >= earliest.as_str(), "{v}");
    }

    const READING: Reading = Reading {
        at_ms: 1_795_773_359_007,
        energy_wh: 1234.5,
        power_w: 11000.0,
        soc: 50.0,
        currents: [11000.0 / (3.0 * 230.0); 3],
        offered_a: 16.0,
    };

    #[test]
    fn milliseconds_write_as_timestamps() {
        let mut s = String::new();
        write_ms(&mut s, 1_795_773_359_007);
        assert_eq!(s, "2026-11-27T09:55:59.007Z");
        s.clear();
        write_ms(&mut s, 999);
        assert_eq!(s, "1970-01-01T00:00:00.999Z");
    }
}
