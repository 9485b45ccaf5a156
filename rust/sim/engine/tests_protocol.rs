//! The simulated charger's protocol behaviour without a socket: a charger is put on an open link with no
//! socket, the CSMS's messages are fed to it as text, and what it sent is read back from the outbox.

use serde_json::json;

use super::outbox::Output;
use super::*;
use crate::sim::ev;

pub(super) fn sim(protocol: Protocol) -> Sim {
    let mut cfg = SimConfig::new("127.0.0.1:9".parse().unwrap(), 1);
    cfg.protocol = protocol;
    cfg.heartbeat_interval = None;
    let mut sim = Sim::new(cfg, vec![0]).unwrap();
    sim.phase = Phase::Running;
    sim
}

/// The charger's link comes up (as after a successful upgrade).
pub(super) fn open(sim: &mut Sim) {
    sim.inflight += 1;
    sim.ch[0].conn.link = Link::Open;
    sim.on_upgraded(0);
}

/// What the charger emitted, as the outbox holds it: an OCPP-J message, decoded, or a close.
#[derive(Debug, PartialEq)]
pub(super) enum Sent {
    Text(Value),
    Close(u16),
}

/// What the charger emitted since the last call, in order: the outputs of its current link (what a drain
/// would write), read from the outbox, which is emptied.
pub(super) fn outputs(sim: &mut Sim) -> Vec<Sent> {
    let epoch = sim.ch[0].conn.epoch;
    let out = sim
        .outbox
        .iter()
        .filter(|o| o.idx == 0 && o.epoch == epoch)
        .map(|o| match o.output {
            Output::Text => Sent::Text(serde_json::from_str(o.text).unwrap()),
            Output::Close(code) => Sent::Close(code),
        })
        .collect();
    sim.outbox.clear();
    out
}

/// The OCPP-J messages the charger sent since the last call, decoded.
pub(super) fn sent(sim: &mut Sim) -> Vec<Value> {
    outputs(sim)
        .into_iter()
        .filter_map(|o| match o {
            Sent::Text(v) => Some(v),
            Sent::Close(_) => None,
        })
        .collect()
}

pub(super) fn answer(sim: &mut Sim, call: &Value, payload: Value) {
    sim.on_text(0, &json!([3, call[1], payload]).to_string());
}

pub(super) fn timers_of(sim: &Sim) -> Vec<Timer> {
    let mut out: Vec<Timer> = sim
        .timers
        .iter()
        .filter_map(|Reverse((_, due))| match due {
            Due::Charger(0, t) => Some(*t),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_201_charger_boots_takes_the_interval_and_reports_its_connectors() {
    let mut sim = sim(Protocol::Ocpp201);
    open(&mut sim);
    let boot = sent(&mut sim);
    assert_eq!(boot.len(), 1);
    assert_eq!(
        (boot[0][0].as_i64(), boot[0][2].as_str()),
        (Some(2), Some("BootNotification"))
    );
    assert_eq!(boot[0][3]["reason"], "PowerUp");
    assert!(timers_of(&sim).contains(&Timer::CallTimeout { epoch: 0, seq: 1 }));

    answer(
        &mut sim,
        &boot[0],
        json!({"status": "Accepted", "interval": 42, "currentTime": "2026-11-30T07:00:00Z"}),
    );
    assert!(sim.ch[0].boot == Boot::Accepted);
    assert_eq!(sim.ch[0].hb_interval, 42.0);
    assert!(timers_of(&sim).contains(&Timer::Heartbeat { epoch: 0 }));
    // Then a StatusNotification per connector, one CALL at a time.
    let status = sent(&mut sim);
    assert_eq!(status.len(), 1);
    assert_eq!(status[0][2], "StatusNotification");
    assert_eq!(status[0][3]["connectorStatus"], "Available");
}

#[test]
fn a_pending_16_charger_sends_nothing_else_and_boots_again_after_the_interval() {
    let mut sim = sim(Protocol::Ocpp16);
    open(&mut sim);
    let boot = sent(&mut sim);
    assert_eq!(boot[0][2], "BootNotification");
    assert!(boot[0][3]["chargePointVendor"].is_string());
    answer(
        &mut sim,
        &boot[0],
        json!({"status": "Pending", "interval": 7, "currentTime": "2026-11-30T07:00:00Z"}),
    );
    assert!(sim.ch[0].boot == Boot::Pending);
    assert!(sent(&mut sim).is_empty());
    assert!(timers_of(&sim).contains(&Timer::BootRetry { epoch: 0 }));
    // The retry timer fires: it boots again.
    sim.charger_timer(0, Timer::BootRetry { epoch: 0 });
    assert_eq!(sent(&mut sim)[0][2], "BootNotification");
}

#[test]
fn a_csms_call_is_answered_and_an_unknown_one_gets_a_call_error() {
    let mut sim = sim(Protocol::Ocpp201);
    open(&mut sim);
    let boot = sent(&mut sim);
    answer(
        &mut sim,
        &boot[0],
        json!({"status": "Accepted", "interval": 60, "currentTime": "2026-11-30T07:00:00Z"}),
    );
    sent(&mut sim);
    sim.on_text(
        0,
        &json!([2, "c1", "GetVariables", {"getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ]}])
        .to_string(),
    );
    sim.on_text(0, &json!([2, "c2", "MakeCoffee", {}]).to_string());
    let out = sent(&mut sim);
    let reply = out
        .iter()
        .find(|m| m[1] == "c1")
        .expect("GetVariables answered");
    assert_eq!(reply[0], 3);
    let error = out
        .iter()
        .find(|m| m[1] == "c2")
        .expect("unknown CALL answered");
    assert_eq!(
        (error[0].as_i64(), error[2].as_str()),
        (Some(4), Some("NotImplemented"))
    );
}

#[test]
fn a_timer_of_an_older_link_does_nothing() {
    let mut sim = sim(Protocol::Ocpp16);
    open(&mut sim);
    sent(&mut sim);
    sim.ch[0].conn.epoch += 1; // the link was replaced
    sim.charger_timer(0, Timer::BootRetry { epoch: 0 });
    sim.charger_timer(0, Timer::Heartbeat { epoch: 0 });
    assert!(sent(&mut sim).is_empty());
}

/// Answer every CALL the charger sent until it has nothing outstanding; what it sent, in order.
pub(super) fn answer_all(sim: &mut Sim, reply: impl Fn(&Value) -> Value) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let out = sent(sim);
        if out.is_empty() {
            return all;
        }
        for m in &out {
            if m[0] == 2 {
                let payload = reply(m);
                answer(sim, m, payload);
            }
        }
        all.extend(out);
    }
}

#[test]
fn an_ev_on_one_phase_draws_there_and_reports_its_charging_needs() {
    let mut s = sim(Protocol::Ocpp201);
    s.cfg.ev_charging_needs = true;
    s.cfg.power_w = 22_000.0;
    s.cfg.ev_mix = vec![ev::EvProfile {
        weight: 1.0,
        phases: ev::Phases::L2,
        max_current_a: 16.0,
        capacity_wh: 50_000.0,
        soc_start: 30.0,
        taper_soc: 80.0,
        departure_after_s: Some(7200.0),
        energy_need_wh: Some(20_000.0),
    }];
    open(&mut s);
    let accepted = |m: &Value| match m[2].as_str() {
        Some("BootNotification") => {
            json!({"status": "Accepted", "interval": 60, "currentTime": "2026-11-30T07:00:00Z"})
        }
        Some("Authorize") => json!({"idTokenInfo": {"status": "Accepted"}}),
        Some("NotifyEVChargingNeeds") => json!({"status": "Accepted"}),
        _ => json!({}),
    };
    answer_all(&mut s, accepted);
    assert!(s.begin_tx(0, None, None));
    let sent = answer_all(&mut s, accepted);
    let actions: Vec<&str> = sent.iter().filter_map(|m| m[2].as_str()).collect();
    assert_eq!(
        actions,
        [
            "Authorize",
            "StatusNotification",
            "TransactionEvent",
            "NotifyEVChargingNeeds"
        ]
    );
    let needs = &sent[3][3];
    assert_eq!(needs["evseId"], 1);
    assert_eq!(
        needs["chargingNeeds"]["requestedEnergyTransfer"],
        "AC_single_phase"
    );
    assert_eq!(
        needs["chargingNeeds"]["acChargingParameters"]["energyAmount"],
        20_000
    );
    assert_eq!(
        needs["chargingNeeds"]["acChargingParameters"]["evMaxCurrent"],
        16
    );
    assert!(needs["chargingNeeds"]["departureTime"].is_string());

    // A meter reading: 16 A on L2 only, and the power that makes.
    s.meter_tick(0);
    let reading = sent_once(&mut s);
    let values = &reading[3]["meterValue"][0]["sampledValue"];
    let current = |phase: &str| {
        values
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["measurand"] == "Current.Import" && v["phase"] == phase)
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(
        (current("L1"), current("L2"), current("L3")),
        (0.0, 16.0, 0.0)
    );
    assert_eq!(s.draw_w(0), 16.0 * ev::VOLTAGE);
    // The CSMS limits the charger to 1 kW: under 6 A the EV pauses.
    sim_call(
        &mut s,
        "SetChargingProfile",
        json!({"evseId": 0, "chargingProfile": {"id": 1, "stackLevel": 0,
            "chargingProfilePurpose": "ChargingStationMaxProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1000.0}]}]}}),
    );
    assert_eq!(s.draw_w(0), 0.0);
}

/// The CSMS sends `action` with `payload`; the charger's answer (its payload).
pub(super) fn sim_call(sim: &mut Sim, action: &str, payload: Value) -> Value {
    sim.on_text(0, &json!([2, "csms-1", action, payload]).to_string());
    let reply = sent(sim)
        .into_iter()
        .find(|m| m[1] == "csms-1")
        .expect("answered");
    assert_eq!(reply[0], 3, "{reply}");
    reply[2].clone()
}

fn sent_once(sim: &mut Sim) -> Value {
    let mut out = sent(sim);
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0)
}

/// A booted charger on an open link, its boot and first StatusNotification answered.
fn booted(protocol: Protocol, status_period: f64) -> Sim {
    let mut sim = sim(protocol);
    sim.cfg.status_period = status_period;
    open(&mut sim);
    let boot = sent(&mut sim);
    answer(
        &mut sim,
        &boot[0],
        json!({"status": "Accepted", "interval": 300, "currentTime": "2026-11-30T07:00:00Z"}),
    );
    let status = sent(&mut sim);
    assert_eq!(status[0][2], "StatusNotification");
    answer(&mut sim, &status[0], json!({}));
    sim
}

fn change_status(sim: &mut Sim) -> Vec<Value> {
    sim.charger_timer(0, Timer::StatusChange { epoch: 0 });
    let out = sent(sim);
    for call in &out {
        answer(sim, call, json!({}));
    }
    out
}

#[test]
fn the_scenarios_status_changes_alternate_and_leave_a_transaction_alone() {
    let mut sim = booted(Protocol::Ocpp16, 10.0);
    assert!(timers_of(&sim).contains(&Timer::StatusChange { epoch: 0 }));
    let words: Vec<Value> = (0..3)
        .map(|_| change_status(&mut sim)[0][3]["status"].clone())
        .collect();
    assert_eq!(words, ["Preparing", "Available", "Preparing"]);
    // A link that comes back reports the cable still in.
    assert_eq!(sim.connector_status(0, 1), "Preparing");
    // While a transaction holds the connector, the scenario changes nothing; its end says Available.
    assert!(sim.begin_tx(0, Some("TAG".into()), None));
    let charging = sent(&mut sim);
    assert_eq!(charging[0][3]["status"], "Charging");
    answer(&mut sim, &charging[0], json!({}));
    let start = sent(&mut sim);
    assert_eq!(start[0][2], "StartTransaction");
    answer(
        &mut sim,
        &start[0],
        json!({"transactionId": 1, "idTagInfo": {"status": "Accepted"}}),
    );
    assert!(change_status(&mut sim).is_empty());
    sim.tx_done(0);
    assert_eq!(sent(&mut sim)[0][3]["status"], "Available");
    assert!(!sim.ch[0].plugged);

    // 2.0.1 names the plugged connector Occupied; no period, no timer.
    let mut sim = booted(Protocol::Ocpp201, 5.0);
    assert_eq!(change_status(&mut sim)[0][3]["connectorStatus"], "Occupied");
    let quiet = booted(Protocol::Ocpp201, 0.0);
    assert!(!timers_of(&quiet)
        .iter()
        .any(|t| matches!(t, Timer::StatusChange { .. })));
}
