//! The simulator over real sockets against a tiny blocking CSMS.

use super::*;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// A tiny blocking CSMS: accepts every connection, answers each CALL with a CALLRESULT (boot Accepted
/// with interval 1), and sends one Reset to the first charger that boots. Counts boots it has seen.
fn csms(listener: TcpListener, boots: Arc<AtomicUsize>) {
    let resets = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let (boots, resets) = (boots.clone(), resets.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                let mut have = 0;
                let req = loop {
                    let k = s.read(&mut buf[have..]).unwrap_or(0);
                    if k == 0 {
                        return;
                    }
                    have += k;
                    if let Some((r, _)) = codec::parse_upgrade_request(&buf[..have]).unwrap() {
                        break r;
                    }
                };
                let mut out = Vec::new();
                codec::response_101(&mut out, &codec::accept_key(&req.key), Some("ocpp1.6"));
                s.write_all(&out).unwrap();
                let mut dec = Decoder::new(Role::Server, 1 << 20);
                loop {
                    let k = s.read(&mut buf).unwrap_or(0);
                    if k == 0 {
                        return;
                    }
                    let mut replies: Vec<String> = Vec::new();
                    let mut closed = false;
                    dec.feed(&mut buf[..k], &mut |ev| match ev {
                        Event::Text(t) => {
                            let v: Value = serde_json::from_str(t).unwrap();
                            if v[0] != 2 {
                                return; // The charger's answer to our Reset.
                            }
                            let id = v[1].as_str().unwrap().to_owned();
                            let body = match v[2].as_str().unwrap() {
                                "BootNotification" => {
                                    boots.fetch_add(1, Ordering::SeqCst);
                                    r#"{"status":"Accepted","currentTime":"2026-01-01T00:00:00Z","interval":1}"#
                                }
                                "Heartbeat" => r#"{"currentTime":"2026-01-01T00:00:00Z"}"#,
                                _ => "{}",
                            };
                            replies.push(format!(r#"[3,"{id}",{body}]"#));
                            if v[2] == "StatusNotification" && resets.fetch_add(1, Ordering::SeqCst) == 0 {
                                replies.push(r#"[2,"r1","Reset",{"type":"Soft"}]"#.into());
                                // And a reply to nothing: a protocol error the charger reports.
                                replies.push(r#"[3,"nope",{}]"#.into());
                            }
                        }
                        Event::Close(..) => closed = true,
                        _ => {}
                    })
                    .unwrap();
                    for r in replies {
                        out.clear();
                        codec::encode_frame(&mut out, OpCode::Text, r.as_bytes(), true, None);
                        if s.write_all(&out).is_err() {
                            return;
                        }
                    }
                    if closed {
                        out.clear();
                        codec::encode_close(&mut out, codec::CLOSE_NORMAL, "", None);
                        let _ = s.write_all(&out);
                        return;
                    }
                }
            });
        }
    });
}

#[test]
fn chargers_boot_heartbeat_and_reboot_on_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let boots = Arc::new(AtomicUsize::new(0));
    csms(listener, boots.clone());
    let mut cfg = SimConfig::new(addr, 3);
    cfg.duration = 3.0;
    cfg.reboot_delay = 0.2;
    let mut sim = Sim::new(cfg, vec![0; 3]).unwrap();
    let mut checks = Vec::new();
    for _ in 0..200 {
        let done = sim.run(Duration::from_millis(100)).unwrap();
        checks.extend(sim.take_checks());
        if done {
            break;
        }
    }
    let r = sim.report_json();
    assert!(sim.stats().done);
    assert_eq!(r["ever_booted"], 3, "{r}");
    assert_eq!(r["booted"], 3, "{r}");
    assert_eq!(r["reboots"], 1, "{r}");
    assert_eq!(r["boots"], 4, "{r}");
    assert_eq!(boots.load(Ordering::SeqCst), 4);
    assert_eq!(r["csms_calls"]["Reset"], 1);
    assert_eq!(r["errors"], serde_json::json!({"protocol_error": 1}), "{r}");
    assert_eq!(r["closed_clean"], 3, "{r}");
    // Heartbeats at the interval the CSMS gave (1 s) over ~3 s.
    assert!(r["latency_max_us"]["Heartbeat"].as_u64().is_some(), "{r}");
    assert!(checks
        .iter()
        .any(|(k, a, p)| *k == "call" && a == "Reset" && p.contains("Soft")));
    let results = checks
        .iter()
        .filter(|(k, a, _)| *k == "result" && a == "BootNotification");
    assert_eq!(results.count(), 4);
}

#[test]
fn unreachable_csms_is_counted_and_retried_not_fatal() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = SimConfig::new(SocketAddr::from(([127, 0, 0, 1], port)), 2);
    cfg.duration = 1.5;
    cfg.reconnect_backoff = 0.5;
    let mut sim = Sim::new(cfg, vec![0; 2]).unwrap();
    while !sim.run(Duration::from_millis(100)).unwrap() {}
    let r = sim.report_json();
    assert_eq!(r["booted"], 0);
    // Each charger tried at once, then again after each back-off of at most 0.5 s.
    assert!(r["errors"]["connect_failed"].as_u64().unwrap() >= 4, "{r}");
    assert_eq!(
        r["error_details"]["connect_failed"]["connect refused"],
        r["errors"]["connect_failed"]
    );
}
