//! The bench load against a small CSMS of the test's own (tungstenite, one thread per charger) that answers
//! every CALL and logs what each charger sent: a MeterValues load runs in a transaction of its own, in both
//! versions, and survives a reboot and a dropped link; the load driven in phases from outside keeps its cap.
//!
//! About 600 lines on purpose: the test CSMS and the tests that drive the load against it belong together.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::Message;

use super::Sim;
use crate::client::Protocol;
use crate::sim::config::{LoadMessage, SimConfig};

const CHARGERS: usize = 3;
/// Slices of 100 ms the engine gets before a test gives up on it: far beyond every run's duration.
const MAX_SLICES: usize = 300;
/// The CSMS's first 1.6 transactionId (then one more per start): unlike any seqNo or count in the tests.
const FIRST_TX_ID: i64 = 100;

/// What the CSMS does besides answering.
#[derive(Clone, Copy, Default)]
struct Script {
    /// After this many load readings from the first charger, send it a Reset.
    reset_after: Option<usize>,
    /// After this many load readings from the first charger, drop its link (no close frame, no answer).
    drop_after: Option<usize>,
    /// Answer every transaction start with a CALLERROR.
    refuse_starts: bool,
    /// Answer each reading this late, and not at all if the charger closes meanwhile: at saturation, every
    /// charger has one out when the run ends.
    reading_delay: Option<Duration>,
}

/// (charger id, action, payload) of every CALL the CSMS got, in order.
type Log = Arc<Mutex<Vec<(String, String, Value)>>>;

fn is_reading(action: &str, payload: &Value) -> bool {
    action == "MeterValues" || (action == "TransactionEvent" && payload["eventType"] == "Updated")
}

fn is_start(action: &str, payload: &Value) -> bool {
    action == "StartTransaction"
        || (action == "TransactionEvent" && payload["eventType"] == "Started")
}

fn reply(action: &str, payload: &Value, script: Script, tx_ids: &AtomicI64) -> Option<Value> {
    Some(match action {
        "BootNotification" => {
            json!({"status": "Accepted", "currentTime": "2026-01-01T00:00:00.000Z", "interval": 300})
        }
        "Heartbeat" => json!({"currentTime": "2026-01-01T00:00:00.000Z"}),
        _ if script.refuse_starts && is_start(action, payload) => return None,
        "StartTransaction" => json!({
            "transactionId": tx_ids.fetch_add(1, Ordering::SeqCst),
            "idTagInfo": {"status": "Accepted"}
        }),
        "TransactionEvent" if payload.get("idToken").is_some() => {
            json!({"idTokenInfo": {"status": "Accepted"}})
        }
        _ => json!({}),
    })
}

fn csms(protocol: Protocol, script: Script) -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let shared = Shared {
        log: log.clone(),
        tx_ids: Arc::new(AtomicI64::new(FIRST_TX_ID)),
        acted: Arc::new(AtomicBool::new(false)),
    };
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(stream) = conn else { return };
            let shared = shared.clone();
            thread::spawn(move || serve(stream, protocol, script, &shared));
        }
    });
    (addr, log)
}

/// What the CSMS's connections share.
#[derive(Clone)]
struct Shared {
    log: Log,
    tx_ids: Arc<AtomicI64>,
    /// The script's one reset or drop happened.
    acted: Arc<AtomicBool>,
}

/// One charger's connection: answer every CALL, in order. A delayed answer is held while the socket is
/// watched; a close frame meanwhile drops it, as a server that closes at once when asked would.
fn serve(stream: TcpStream, protocol: Protocol, script: Script, shared: &Shared) {
    let mut id = String::new();
    // The signature is tungstenite's handshake callback, Err type and all.
    #[allow(clippy::result_large_err)]
    let pick = |req: &Request, mut resp: Response| {
        id = req.uri().path().rsplit('/').next().unwrap_or("").to_owned();
        let name = HeaderValue::from_static(protocol.name());
        resp.headers_mut().insert("Sec-WebSocket-Protocol", name);
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, pick) else {
        return;
    };
    let first = id == "SIM0";
    let mut readings = 0;
    let mut held: Option<String> = None;
    loop {
        let msg = match ws.read() {
            Ok(msg) => msg,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                // Nothing came during the delay: the held answer goes out.
                let _ = ws.get_mut().set_read_timeout(None);
                if let Some(text) = held.take() {
                    if ws.send(Message::text(text)).is_err() {
                        return;
                    }
                }
                continue;
            }
            Err(_) => return,
        };
        let text = match msg {
            Message::Text(text) => text,
            Message::Close(_) => {
                held = None; // tungstenite answers the close; the next read ends the loop.
                continue;
            }
            _ => continue,
        };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        if v[0] != 2 {
            continue; // The charger's answer to our Reset.
        }
        let (action, payload) = (v[2].as_str().unwrap().to_owned(), v[3].clone());
        shared
            .log
            .lock()
            .unwrap()
            .push((id.clone(), action.clone(), payload.clone()));
        let reading = is_reading(&action, &payload);
        if first && reading {
            readings += 1;
            if script.drop_after == Some(readings) && !shared.acted.swap(true, Ordering::SeqCst) {
                return; // Dropping the socket: the charger sees its link close.
            }
        }
        let out = match reply(&action, &payload, script, &shared.tx_ids) {
            Some(body) => json!([3, v[1], body]),
            None => json!([4, v[1], "GenericError", "refused by the test", {}]),
        };
        if let (Some(delay), true) = (script.reading_delay, reading) {
            held = Some(out.to_string());
            let _ = ws.get_mut().set_read_timeout(Some(delay));
            continue;
        }
        if ws.send(Message::text(out.to_string())).is_err() {
            return;
        }
        if first
            && script.reset_after == Some(readings)
            && !shared.acted.swap(true, Ordering::SeqCst)
        {
            let kind = if protocol == Protocol::Ocpp16 {
                "Soft"
            } else {
                "Immediate"
            };
            let reset = json!([2, "reset-1", "Reset", {"type": kind}]);
            if ws.send(Message::text(reset.to_string())).is_err() {
                return;
            }
        }
    }
}

fn config(addr: SocketAddr, protocol: Protocol, duration: f64) -> SimConfig {
    let mut cfg = SimConfig::new(addr, CHARGERS);
    cfg.protocol = protocol;
    cfg.duration = duration;
    cfg.load_message = Some(LoadMessage::MeterValues);
    cfg.load_start = 0.3;
    cfg.reboot_delay = 0.2;
    cfg.reconnect_backoff = 0.3;
    cfg
}

fn run(cfg: SimConfig) -> Value {
    let mut sim = Sim::new(cfg, vec![0; CHARGERS]).unwrap();
    for _ in 0..MAX_SLICES {
        if sim.run(Duration::from_millis(100)).unwrap() {
            return sim.report_json();
        }
    }
    panic!("the run did not end: {}", sim.report_json());
}

/// What one charger sent, in order.
fn sent_by(log: &Log, id: &str) -> Vec<(String, Value)> {
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(who, ..)| who == id)
        .map(|(_, a, p)| (a.clone(), p.clone()))
        .collect()
}

/// The transaction a message belongs to: 1.6 transactionId, 2.0.1 transactionInfo.transactionId.
fn tx_of(payload: &Value) -> Value {
    match payload.get("transactionInfo") {
        Some(info) => info["transactionId"].clone(),
        None => payload["transactionId"].clone(),
    }
}

/// The instants and energy readings of `messages`' meter values, in order.
fn readings_of(messages: &[(String, Value)]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (_, p) in messages {
        for mv in p["meterValue"].as_array().into_iter().flatten() {
            let energy = mv["sampledValue"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["measurand"] == "Energy.Active.Import.Register")
                .unwrap();
            let wh = match &energy["value"] {
                Value::String(s) => s.parse().unwrap(),
                v => v.as_f64().unwrap(),
            };
            out.push((mv["timestamp"].as_str().unwrap().to_owned(), wh));
        }
    }
    out
}

/// Timestamps strictly increasing (fixed-width UTC text: text order is time order), register never back.
fn assert_monotonic(readings: &[(String, f64)]) {
    for pair in readings.windows(2) {
        assert!(pair[0].0 < pair[1].0, "timestamps not increasing: {pair:?}");
        assert!(pair[0].1 <= pair[1].1, "register went back: {pair:?}");
    }
}

fn load_meter_test(protocol: Protocol) {
    let (addr, log) = csms(protocol, Script::default());
    let r = run(config(addr, protocol, 1.5));
    assert_eq!(r["errors"], json!({}), "{r}");
    let load = &r["load"];
    assert_eq!(load["message"], "MeterValues");
    let action = if protocol == Protocol::Ocpp16 {
        "MeterValues"
    } else {
        "TransactionEvent"
    };
    assert_eq!(load["action"], action);
    assert_eq!(load["connector"], 1);
    assert_eq!(
        load["transactions"],
        json!({"started": CHARGERS, "stopped": 0, "refused": 0}),
        "{r}"
    );
    let mut readings_total = 0;
    for i in 0..CHARGERS {
        let sent = sent_by(&log, &format!("SIM{i}"));
        let starts: Vec<_> = sent.iter().filter(|(a, p)| is_start(a, p)).collect();
        assert_eq!(starts.len(), 1, "{sent:?}");
        let start = &starts[0].1;
        let readings: Vec<_> = sent
            .iter()
            .filter(|(a, p)| is_reading(a, p))
            .cloned()
            .collect();
        assert!(readings.len() > 5, "{sent:?}");
        readings_total += readings.len();
        // The start comes first, on connector 1 with the run's id tag, and carries no meter value.
        let first_reading = sent.iter().position(|(a, p)| is_reading(a, p)).unwrap();
        let start_at = sent.iter().position(|(a, p)| is_start(a, p)).unwrap();
        assert!(start_at < first_reading);
        assert!(start.get("meterValue").is_none(), "{start}");
        let tx = if protocol == Protocol::Ocpp16 {
            assert_eq!(
                (&start["connectorId"], &start["idTag"]),
                (&json!(1), &json!("SIMTAG"))
            );
            // The id the CSMS gave this charger's start.
            let given: Vec<i64> = (0..CHARGERS as i64).map(|k| FIRST_TX_ID + k).collect();
            let id = readings[0].1["transactionId"].as_i64().unwrap();
            assert!(given.contains(&id), "{id}");
            json!(id)
        } else {
            assert_eq!(start["seqNo"], 0);
            assert_eq!(start["evse"]["id"], 1);
            assert_eq!(start["idToken"]["idToken"], "SIMTAG");
            tx_of(start)
        };
        for (k, (_, p)) in readings.iter().enumerate() {
            assert_eq!(tx_of(p), tx, "{p}");
            if protocol == Protocol::Ocpp16 {
                assert_eq!(p["connectorId"], 1);
            } else {
                assert_eq!(p["seqNo"], k + 1, "{p}");
                assert_eq!(p["triggerReason"], "MeterValuePeriodic");
                assert_eq!(p["evse"]["id"], 1);
            }
        }
        assert_monotonic(&readings_of(&readings));
    }
    // Every reading the CSMS got was answered (the last ones before the links closed) and counted as the
    // load; the starts were not.
    assert_eq!(load["answered"], readings_total, "{r}");
    assert_eq!(load["sent"], readings_total, "{r}");
    assert!(
        load["answered_after_end"].as_u64().unwrap() <= CHARGERS as u64,
        "{r}"
    );
    assert_eq!(r["closed_clean"], CHARGERS, "{r}");
    let series: u64 = load["latency_us"][action]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .sum();
    assert_eq!(series, readings_total as u64);
}

#[test]
fn a_meter_values_load_runs_in_its_own_transaction_16() {
    load_meter_test(Protocol::Ocpp16);
}

#[test]
fn a_meter_values_load_runs_in_its_own_transaction_201() {
    load_meter_test(Protocol::Ocpp201);
}

fn reboot_test(protocol: Protocol) {
    let script = Script {
        reset_after: Some(5),
        ..Script::default()
    };
    let (addr, log) = csms(protocol, script);
    let r = run(config(addr, protocol, 2.5));
    assert_eq!(r["errors"], json!({}), "{r}");
    assert_eq!(r["reboots"], 1, "{r}");
    let load = &r["load"];
    assert_eq!(
        load["transactions"],
        json!({"started": CHARGERS + 1, "stopped": 1, "refused": 0}),
        "{r}"
    );
    let sent = sent_by(&log, "SIM0");
    let starts: Vec<usize> = (0..sent.len())
        .filter(|&k| is_start(&sent[k].0, &sent[k].1))
        .collect();
    assert_eq!(starts.len(), 2, "{sent:?}");
    let stop = sent
        .iter()
        .position(|(a, p)| {
            a == "StopTransaction" || (a == "TransactionEvent" && p["eventType"] == "Ended")
        })
        .unwrap();
    let boots: Vec<usize> = (0..sent.len())
        .filter(|&k| sent[k].0 == "BootNotification")
        .collect();
    // Start, readings, the stop before the reboot, boot again, a new start, readings in the new one.
    assert!(
        starts[0] < stop && stop < boots[1] && boots[1] < starts[1],
        "{sent:?}"
    );
    let before: Vec<_> = sent[..stop]
        .iter()
        .filter(|(a, p)| is_reading(a, p))
        .cloned()
        .collect();
    let after: Vec<_> = sent[starts[1]..]
        .iter()
        .filter(|(a, p)| is_reading(a, p))
        .cloned()
        .collect();
    assert!(before.len() >= 5, "{sent:?}");
    assert!(
        !after.is_empty(),
        "the load did not resume after the reboot: {sent:?}"
    );
    let (old, new) = (tx_of(&before[0].1), tx_of(&after[0].1));
    assert_ne!(old, new);
    assert_eq!(tx_of(&sent[stop].1), old);
    let reason = if protocol == Protocol::Ocpp16 {
        &sent[stop].1["reason"]
    } else {
        &sent[stop].1["transactionInfo"]["stoppedReason"]
    };
    let expected = if protocol == Protocol::Ocpp16 {
        "SoftReset"
    } else {
        "ImmediateReset"
    };
    assert_eq!(reason, expected);
    assert!(after.iter().all(|(_, p)| tx_of(p) == new));
    // One meter: time and register run on across the two transactions.
    let all: Vec<_> = before.iter().chain(&after).cloned().collect();
    assert_monotonic(&readings_of(&all));
}

#[test]
fn a_reboot_stops_the_load_transaction_and_the_load_goes_on_in_a_new_one_16() {
    reboot_test(Protocol::Ocpp16);
}

#[test]
fn a_reboot_stops_the_load_transaction_and_the_load_goes_on_in_a_new_one_201() {
    reboot_test(Protocol::Ocpp201);
}

#[test]
fn a_dropped_link_resumes_the_same_load_transaction() {
    let script = Script {
        drop_after: Some(5),
        ..Script::default()
    };
    let (addr, log) = csms(Protocol::Ocpp201, script);
    let r = run(config(addr, Protocol::Ocpp201, 2.5));
    assert_eq!(r["errors"]["unexpected_close"], 1, "{r}");
    assert_eq!(r["boots"], CHARGERS, "a dropped link is not a reboot: {r}");
    let load = &r["load"];
    assert_eq!(load["transactions"]["started"], CHARGERS, "{r}");
    // The reading lost with the link is not sent again (a measurement): one sent, never answered.
    assert_eq!(
        load["sent"].as_u64().unwrap(),
        load["answered"].as_u64().unwrap() + 1,
        "{r}"
    );
    let sent = sent_by(&log, "SIM0");
    let readings: Vec<_> = sent
        .iter()
        .filter(|(a, p)| is_reading(a, p))
        .cloned()
        .collect();
    assert!(readings.len() > 6, "the load did not resume: {sent:?}");
    assert_eq!(sent.iter().filter(|(a, p)| is_start(a, p)).count(), 1);
    let tx = tx_of(&readings[0].1);
    assert!(readings.iter().all(|(_, p)| tx_of(p) == tx));
    let seq: Vec<u64> = readings
        .iter()
        .map(|(_, p)| p["seqNo"].as_u64().unwrap())
        .collect();
    assert!(seq.windows(2).all(|w| w[0] < w[1]), "{seq:?}");
    assert_monotonic(&readings_of(&readings));
}

#[test]
fn the_run_ends_with_every_load_call_answered() {
    let script = Script {
        reading_delay: Some(Duration::from_millis(150)),
        ..Script::default()
    };
    let (addr, log) = csms(Protocol::Ocpp16, script);
    let r = run(config(addr, Protocol::Ocpp16, 1.5));
    assert_eq!(r["errors"], json!({}), "{r}");
    let load = &r["load"];
    // Each charger had a reading out when the run ended, and closed its link only once it was answered:
    // the CSMS (which drops an answer when a close comes first) got no reading the report did not count.
    assert_eq!(load["answered_after_end"], CHARGERS, "{r}");
    let readings = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, a, p)| is_reading(a, p))
        .count();
    assert_eq!(load["answered"], readings, "{r}");
    assert_eq!(load["sent"], readings, "{r}");
    assert_eq!(r["closed_clean"], CHARGERS, "{r}");
}

#[test]
fn a_refused_start_keeps_the_charger_out_of_the_load() {
    let script = Script {
        refuse_starts: true,
        ..Script::default()
    };
    let (addr, log) = csms(Protocol::Ocpp16, script);
    let r = run(config(addr, Protocol::Ocpp16, 1.0));
    assert_eq!(r["errors"], json!({"call_error": CHARGERS}), "{r}");
    let load = &r["load"];
    assert_eq!(load["transactions"]["refused"], CHARGERS, "{r}");
    assert_eq!((&load["sent"], &load["answered"]), (&json!(0), &json!(0)));
    let log = log.lock().unwrap();
    assert!(!log.iter().any(|(_, a, p)| is_reading(a, p)));
}

#[test]
fn the_scenario_transactions_move_to_connector_2_beside_a_meter_values_load() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut cfg = SimConfig::new(addr, 1);
    let connector = |cfg: &SimConfig| Sim::new(cfg.clone(), vec![0]).unwrap().tx_connector();
    assert_eq!(connector(&cfg), Some(1));
    cfg.load_message = Some(LoadMessage::Heartbeat);
    assert_eq!(connector(&cfg), Some(1));
    cfg.load_message = Some(LoadMessage::MeterValues);
    assert_eq!(connector(&cfg), None, "one connector, held by the load");
    cfg.connectors = 2;
    assert_eq!(connector(&cfg), Some(2));
}

/// The bench drives the load in phases from outside: off until told, saturation under a cap on CALLs
/// outstanding (the chargers take turns), a fixed rate, paused; each phase's window counts what it did.
#[test]
fn a_load_driven_in_phases_keeps_its_cap_and_counts_each_window() {
    let (addr, log) = csms(Protocol::Ocpp16, Script::default());
    let mut cfg = SimConfig::new(addr, CHARGERS);
    cfg.duration = 1e7;
    cfg.heartbeat_interval = Some(1e7);
    cfg.load_message = Some(LoadMessage::Heartbeat);
    cfg.load_start = 1e7;
    cfg.check_replies = false;
    let mut sim = Sim::new(cfg, vec![0; CHARGERS]).unwrap();
    let heartbeats = |log: &Log| {
        let log = log.lock().unwrap();
        log.iter().filter(|(_, a, _)| a == "Heartbeat").count()
    };
    for _ in 0..MAX_SLICES {
        sim.run(Duration::from_millis(20)).unwrap();
        if sim.stats().booted == CHARGERS as u64 {
            break;
        }
    }
    assert_eq!(sim.stats().booted, CHARGERS as u64);
    sim.run(Duration::from_millis(200)).unwrap();
    assert_eq!(heartbeats(&log), 0, "no load before a phase turns it on");

    // Saturation with one CALL outstanding at a time over the three chargers.
    sim.set_load(0.0, 1).unwrap();
    for _ in 0..25 {
        sim.run(Duration::from_millis(20)).unwrap();
        assert!(
            sim.load_in_flight() <= 1,
            "{} in flight",
            sim.load_in_flight()
        );
    }
    sim.pause_load();
    for _ in 0..MAX_SLICES {
        if sim.load_in_flight() == 0 {
            break;
        }
        sim.run(Duration::from_millis(10)).unwrap();
    }
    let w = sim.take_load_window();
    assert!(w.answered > 10, "{w:?}");
    assert_eq!(
        (w.sent, w.errors, w.unanswered, w.lost),
        (w.answered, 0, 0, 0)
    );
    assert_eq!(w.latency.count(), w.answered);
    let sent = sent_by(&log, "SIM0").len();
    for id in ["SIM1", "SIM2"] {
        let theirs = sent_by(&log, id).len();
        assert!(
            theirs.abs_diff(sent) <= 2,
            "turns not taken: {sent} vs {theirs}"
        );
    }
    let saturated = heartbeats(&log);
    assert_eq!(saturated as u64, w.sent);

    // Paused: nothing more goes out.
    sim.run(Duration::from_millis(200)).unwrap();
    assert_eq!(heartbeats(&log), saturated);

    // A fixed rate: 50/s for 0.6 s is about 30 CALLs.
    sim.set_load(50.0, 0).unwrap();
    for _ in 0..30 {
        sim.run(Duration::from_millis(20)).unwrap();
    }
    sim.pause_load();
    sim.run(Duration::from_millis(200)).unwrap();
    let w = sim.take_load_window();
    assert!((20..=40).contains(&w.sent), "{w:?}");
    assert_eq!(w.answered, w.sent);
    assert_eq!(heartbeats(&log) - saturated, w.sent as usize);

    sim.stop();
    for _ in 0..MAX_SLICES {
        if sim.run(Duration::from_millis(50)).unwrap() {
            break;
        }
    }
    assert_eq!(sim.report_json()["closed_clean"], json!(CHARGERS));
    assert_eq!(sim.report_json()["checked"], json!(false));
    assert!(
        sim.take_checks().is_empty(),
        "nothing kept for the schema check"
    );
}
