//! Charging profiles obeyed by a simulated charger without a socket (see `tests_protocol`): the CSMS's
//! Set/ClearChargingProfile fed as text, the answers and the meter readings read back from the outbox. The
//! rules themselves are pinned in `sim/profiles.rs`; these pin that the charger applies them to what it draws
//! and reports, in both versions.

use serde_json::json;

use super::load::LOAD_CONNECTOR;
use super::tests_protocol::{answer, answer_all, open, sent, sim, sim_call};
use super::*;
use crate::sim::config::LoadMessage;
use crate::sim::ev;

const TX16: i64 = 42;

fn ev(phases: ev::Phases) -> ev::EvProfile {
    ev::EvProfile {
        weight: 1.0,
        phases,
        max_current_a: 16.0,
        capacity_wh: 60_000.0,
        soc_start: 20.0,
        taper_soc: 90.0,
        departure_after_s: None,
        energy_need_wh: None,
    }
}

/// The CSMS's answers: boots accepted, every id tag accepted, 1.6 transactions numbered [`TX16`].
fn csms(m: &Value) -> Value {
    match m[2].as_str() {
        Some("BootNotification") => {
            json!({"status": "Accepted", "interval": 300, "currentTime": "2026-11-30T07:00:00Z"})
        }
        Some("Authorize") if m[3].get("idTag").is_some() => {
            json!({"idTagInfo": {"status": "Accepted"}})
        }
        Some("Authorize") => json!({"idTokenInfo": {"status": "Accepted"}}),
        Some("StartTransaction") => {
            json!({"transactionId": TX16, "idTagInfo": {"status": "Accepted"}})
        }
        Some("TransactionEvent") if m[3].get("idToken").is_some() => {
            json!({"idTokenInfo": {"status": "Accepted"}})
        }
        _ => json!({}),
    }
}

/// A charger of `protocol` with an EV on `phases`, booted, rated 22 kW.
fn booted(protocol: Protocol, phases: ev::Phases) -> Sim {
    let mut s = sim(protocol);
    s.cfg.power_w = 22_000.0;
    s.cfg.ev_mix = vec![ev(phases)];
    open(&mut s);
    answer_all(&mut s, csms);
    s
}

/// The EV plugs in and its transaction starts: its 2.0.1 transactionId.
fn plug_in(s: &mut Sim) -> String {
    assert!(s.begin_tx(0, None, None));
    answer_all(s, csms);
    s.ch[0].tx.as_ref().unwrap().id201.to_string()
}

/// A meter reading now: (Current.Import on L1, L2, L3; Power.Active.Import; Current.Offered).
fn reading(s: &mut Sim) -> ([f64; 3], f64, f64) {
    s.meter_tick(0);
    let out = sent(s);
    assert_eq!(out.len(), 1, "{out:?}");
    // Answered, so that the next reading goes out at once (one CALL at a time).
    answer(s, &out[0], json!({}));
    assert!(answer_all(s, csms).is_empty());
    let payload = &out[0][3];
    let values = payload["meterValue"][0]["sampledValue"].as_array().unwrap();
    let value = |measurand: &str, phase: Option<&str>| {
        let v = values
            .iter()
            .find(|v| {
                v["measurand"] == measurand && v.get("phase").and_then(Value::as_str) == phase
            })
            .unwrap_or_else(|| panic!("no {measurand} {phase:?} in {payload}"));
        // 1.6 values are strings, 2.0.1 numbers.
        v["value"]
            .as_f64()
            .or_else(|| v["value"].as_str().and_then(|t| t.parse().ok()))
            .unwrap()
    };
    assert!(values
        .iter()
        .any(|v| v["measurand"] == "Energy.Active.Import.Register"));
    let currents = [Some("L1"), Some("L2"), Some("L3")].map(|ph| value("Current.Import", ph));
    (
        currents,
        value("Power.Active.Import", None),
        value("Current.Offered", None),
    )
}

fn profile16(connector: u32, id: i64, purpose: &str, level: i64, unit: &str, limit: f64) -> Value {
    json!({"connectorId": connector, "csChargingProfiles": {
        "chargingProfileId": id, "stackLevel": level, "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": unit, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}})
}

fn profile201(evse: u32, id: i64, purpose: &str, unit: &str, limit: f64) -> Value {
    json!({"evseId": evse, "chargingProfile": {
        "id": id, "stackLevel": 0, "chargingProfilePurpose": purpose, "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": 1, "chargingRateUnit": unit,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}]}})
}

fn iso(ms: i64) -> String {
    let mut s = String::new();
    msg::write_ms(&mut s, ms);
    s
}

#[test]
fn a_16_charger_applies_the_default_then_the_tx_profile_and_falls_back_when_it_has_expired() {
    let mut s = booted(Protocol::Ocpp16, ev::Phases::Three);
    // No transaction on connector 1 yet: a TxProfile is Rejected (§5.16).
    let tx = profile16(1, 10, "TxProfile", 0, "A", 7.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", tx.clone())["status"],
        "Rejected"
    );
    let default = profile16(0, 1, "TxDefaultProfile", 0, "A", 10.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", default)["status"],
        "Accepted"
    );

    plug_in(&mut s);
    assert_eq!(reading(&mut s), ([10.0; 3], 30.0 * ev::VOLTAGE, 10.0));

    // A TxProfile for another transaction is Rejected; for this one (or without an id) it applies at once.
    let mut other = tx.clone();
    other["csChargingProfiles"]["transactionId"] = json!(TX16 + 1);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", other)["status"],
        "Rejected"
    );
    let mut mine = tx.clone();
    mine["csChargingProfiles"]["transactionId"] = json!(TX16);
    mine["csChargingProfiles"]["validTo"] = json!(iso(msg::now_ms() + 3_600_000));
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", mine.clone())["status"],
        "Accepted"
    );
    assert_eq!(reading(&mut s).0, [7.0; 3]);

    // The same profile again, past its validTo: it replaces the first and no longer limits.
    mine["csChargingProfiles"]["validTo"] = json!(iso(msg::now_ms() - 1));
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", mine)["status"],
        "Accepted"
    );
    assert_eq!(s.ch[0].profiles.ids(), [(0, 1), (1, 10)]);
    assert_eq!(reading(&mut s).0, [10.0; 3], "back on the default");

    let r = s.report_json();
    assert_eq!(
        r["charging_profiles"],
        json!({"received": 5, "accepted": 3, "rejected": 2, "invalid": 0, "cleared": 0})
    );
}

#[test]
fn a_limit_under_6_a_pauses_the_ev_without_ending_its_transaction() {
    let mut s = booted(Protocol::Ocpp16, ev::Phases::Three);
    plug_in(&mut s);
    let pause = profile16(1, 3, "TxProfile", 0, "A", 5.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", pause)["status"],
        "Accepted"
    );
    assert_eq!(reading(&mut s), ([0.0; 3], 0.0, 0.0));
    assert!(matches!(&s.ch[0].tx, Some(t) if t.phase == TxPhase::Charging));
    let resume = profile16(1, 3, "TxProfile", 0, "A", 12.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", resume)["status"],
        "Accepted"
    );
    assert_eq!(reading(&mut s).0, [12.0; 3]);
}

#[test]
fn the_charger_wide_maximum_caps_every_connector_and_goes_on_connector_0_only() {
    let mut s = booted(Protocol::Ocpp16, ev::Phases::Three);
    plug_in(&mut s);
    let on_1 = profile16(1, 5, "ChargePointMaxProfile", 0, "W", 6900.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", on_1)["status"],
        "Rejected"
    );
    let max = profile16(0, 5, "ChargePointMaxProfile", 0, "W", 6900.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", max)["status"],
        "Accepted"
    );
    let tx = profile16(1, 6, "TxProfile", 0, "A", 16.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", tx)["status"],
        "Accepted"
    );
    // 6.9 kW over the three phases the EV uses: 10 A each, below the TxProfile's 16.
    assert_eq!(reading(&mut s).0, [10.0; 3]);
}

#[test]
fn tx_profiles_end_with_their_transaction_and_clearing_says_whether_it_found_any() {
    let mut s = booted(Protocol::Ocpp16, ev::Phases::Three);
    plug_in(&mut s);
    let tx = profile16(1, 10, "TxProfile", 0, "A", 8.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", tx)["status"],
        "Accepted"
    );
    let default = profile16(1, 11, "TxDefaultProfile", 2, "A", 12.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", default)["status"],
        "Accepted"
    );
    s.stop_tx(0, "Local", "StopAuthorized");
    answer_all(&mut s, csms);
    assert!(s.ch[0].tx.is_none());
    assert_eq!(
        s.ch[0].profiles.ids(),
        [(1, 11)],
        "the TxProfile went with its transaction"
    );
    let clear = |purpose: &str| json!({"connectorId": 1, "chargingProfilePurpose": purpose});
    assert_eq!(
        sim_call(&mut s, "ClearChargingProfile", clear("TxProfile"))["status"],
        "Unknown"
    );
    assert_eq!(
        sim_call(&mut s, "ClearChargingProfile", json!({"stackLevel": 1}))["status"],
        "Unknown"
    );
    assert_eq!(
        sim_call(&mut s, "ClearChargingProfile", clear("TxDefaultProfile"))["status"],
        "Accepted"
    );
    assert!(s.ch[0].profiles.ids().is_empty());
    assert_eq!(s.report_json()["charging_profiles"]["cleared"], 1);
}

#[test]
fn a_malformed_profile_gets_a_call_error_and_is_counted_apart() {
    let mut s = booted(Protocol::Ocpp16, ev::Phases::Three);
    let mut bad = profile16(0, 1, "TxDefaultProfile", 0, "kW", 10.0);
    s.on_text(
        0,
        &json!([2, "c1", "SetChargingProfile", bad.clone()]).to_string(),
    );
    let out = sent(&mut s);
    assert_eq!(
        (out[0][0].as_i64(), out[0][2].as_str()),
        (Some(4), Some("FormationViolation"))
    );
    bad["csChargingProfiles"]["chargingProfilePurpose"] =
        json!("ChargingStationExternalConstraints");
    s.on_text(0, &json!([2, "c2", "SetChargingProfile", bad]).to_string());
    assert_eq!(sent(&mut s)[0][0], 4, "not a 1.6 purpose");
    assert_eq!(
        s.report_json()["charging_profiles"],
        json!({"received": 2, "accepted": 0, "rejected": 0, "invalid": 2, "cleared": 0})
    );
}

#[test]
fn a_201_charger_applies_watts_over_the_phases_the_ev_uses_and_names_why_it_rejects() {
    let mut s = booted(Protocol::Ocpp201, ev::Phases::L2);
    // 2300 W on the one phase the EV uses: 10 A on L2.
    let default = profile201(0, 1, "TxDefaultProfile", "W", 2300.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", default)["status"],
        "Accepted"
    );
    let tx_id = plug_in(&mut s);
    assert_eq!(reading(&mut s), ([0.0, 10.0, 0.0], 2300.0, 10.0));

    let without_id = profile201(1, 2, "TxProfile", "A", 8.0);
    let reply = sim_call(&mut s, "SetChargingProfile", without_id.clone());
    assert_eq!(
        (
            reply["status"].as_str(),
            reply["statusInfo"]["reasonCode"].as_str()
        ),
        (Some("Rejected"), Some("MissingParam"))
    );
    let mut other = without_id.clone();
    other["chargingProfile"]["transactionId"] = json!("someone-else");
    let reply = sim_call(&mut s, "SetChargingProfile", other);
    assert_eq!(reply["statusInfo"]["reasonCode"], "TxNotFound");
    let mut mine = without_id;
    mine["chargingProfile"]["transactionId"] = json!(tx_id);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", mine)["status"],
        "Accepted"
    );
    assert_eq!(reading(&mut s).0, [0.0, 8.0, 0.0]);

    // Cleared by id (criteria are then ignored): back on the default.
    let clear = json!({"chargingProfileId": 2, "chargingProfileCriteria": {"evseId": 0}});
    assert_eq!(
        sim_call(&mut s, "ClearChargingProfile", clear)["status"],
        "Accepted"
    );
    assert_eq!(reading(&mut s).0, [0.0, 10.0, 0.0]);
}

#[test]
fn number_phases_holds_a_three_phase_ev_to_fewer_phases() {
    let mut s = booted(Protocol::Ocpp201, ev::Phases::Three);
    let mut one_phase = profile201(0, 1, "ChargingStationMaxProfile", "A", 16.0);
    one_phase["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
        ["numberPhases"] = json!(1);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", one_phase)["status"],
        "Accepted"
    );
    plug_in(&mut s);
    assert_eq!(reading(&mut s).0, [16.0, 0.0, 0.0]);
}

#[test]
fn a_profile_valid_only_later_leaves_the_fallback_in_force() {
    let mut s = booted(Protocol::Ocpp201, ev::Phases::Three);
    let tx_id = plug_in(&mut s);
    let mut later = profile201(1, 4, "TxProfile", "A", 6.0);
    later["chargingProfile"]["transactionId"] = json!(tx_id);
    later["chargingProfile"]["validFrom"] = json!(iso(msg::now_ms() + 3_600_000));
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", later)["status"],
        "Accepted"
    );
    let max = profile201(0, 5, "ChargingStationMaxProfile", "A", 13.0);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", max)["status"],
        "Accepted"
    );
    assert_eq!(reading(&mut s).0, [13.0; 3]);
}

#[test]
fn the_bench_loads_transaction_obeys_its_connectors_profiles_too() {
    let mut s = sim(Protocol::Ocpp16);
    s.cfg.load_message = Some(LoadMessage::MeterValues);
    open(&mut s);
    answer_all(&mut s, csms);
    assert!(s.ch[0].load.in_transaction());
    // Without profiles the load takes the charger's rating over three phases.
    assert_eq!(s.load_amps(0), s.cfg.power_w / (3.0 * ev::VOLTAGE));
    let mut tx = profile16(LOAD_CONNECTOR, 1, "TxProfile", 0, "A", 9.0);
    tx["csChargingProfiles"]["transactionId"] = json!(TX16);
    assert_eq!(
        sim_call(&mut s, "SetChargingProfile", tx)["status"],
        "Accepted"
    );
    assert_eq!(s.load_amps(0), 9.0);
}
