//! The connection state machine without sockets: a fake charger (the codec's client side) writes bytes in,
//! the test plays the clock, and asserts what comes out (bytes on the wire, events for the control plane,
//! deadlines, "shut / drop the socket").

use std::cell::RefCell;
use std::time::Duration;

use super::admission::{Admission, Budget};
use super::auth::AuthTable;
use super::config::WorkerConfig;
use super::conn::{ConnEvent, Connection, Ctx, Lost, CLOSE_LINGER_SECS};
use crate::codec::{self, Decoder, Event, OpCode, Role};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const MASK: [u8; 4] = [1, 2, 3, 4];

/// An event, owned.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Connected(String, String),
    Message(String),
    Disconnected(u16, String),
    Pong(u32),
}

/// What the charger received: the HTTP status, then frames.
#[derive(Debug, Clone, PartialEq)]
enum Wire {
    Status(u16, Option<String>),
    Text(String),
    Ping,
    Pong(Vec<u8>),
    Close(Option<u16>),
}

struct Charger {
    cfg: WorkerConfig,
    auth: AuthTable,
    admission: RefCell<Admission>,
    now: u32,
    /// Microseconds past `now`'s second, for ping round trips.
    frac_us: u64,
    conn: Connection,
    events: Vec<Ev>,
    /// Bytes the server wrote that the charger has not parsed yet.
    rx: Vec<u8>,
    upgraded: bool,
    decoder: Decoder,
    /// Whether the "socket" takes what the connection writes (false: a charger that does not read).
    reading: bool,
}

impl Charger {
    fn new(cfg: WorkerConfig) -> Self {
        Self::with(cfg, Connection::new)
    }

    fn with(cfg: WorkerConfig, make: impl FnOnce(&Ctx<'_>) -> Connection) -> Self {
        let auth = AuthTable::new(true);
        let admission = RefCell::new(Admission::new(Budget::UNLIMITED, 1));
        let ctx = Ctx {
            now: 1,
            now_us: 1_000_000,
            cfg: &cfg,
            auth: &auth,
            admission: &admission,
        };
        let conn = make(&ctx);
        Self {
            cfg,
            auth,
            admission,
            now: 1,
            frac_us: 0,
            conn,
            events: Vec::new(),
            rx: Vec::new(),
            upgraded: false,
            decoder: Decoder::new(Role::Client, 1 << 20),
            reading: true,
        }
    }

    /// Run one input through the machine with the test's clock, then "write" its output.
    fn drive(&mut self, f: impl FnOnce(&mut Connection, &Ctx<'_>, &mut dyn FnMut(ConnEvent<'_>))) {
        let ctx = Ctx {
            now: self.now,
            now_us: self.now as u64 * 1_000_000 + self.frac_us,
            cfg: &self.cfg,
            auth: &self.auth,
            admission: &self.admission,
        };
        let events = &mut self.events;
        let mut emit = |ev: ConnEvent<'_>| {
            events.push(match ev {
                ConnEvent::Connected {
                    charger, protocol, ..
                } => Ev::Connected(charger.into(), protocol.into()),
                ConnEvent::Message(t) => Ev::Message(t.into()),
                ConnEvent::Disconnected { code, reason } => Ev::Disconnected(code, reason.into()),
                ConnEvent::Pong { rtt_us } => Ev::Pong(rtt_us),
            })
        };
        f(&mut self.conn, &ctx, &mut emit);
        let n = if self.reading {
            self.conn.output().len()
        } else {
            0
        };
        self.rx.extend_from_slice(&self.conn.output()[..n]);
        self.conn.wrote(n, &ctx, &mut emit);
    }

    /// The control plane sends `payload` to the charger.
    fn send(&mut self, payload: &[u8]) -> bool {
        let mut sent = false;
        self.drive(|c, ctx, emit| sent = c.send_text(payload, ctx, emit));
        sent
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        let mut data = bytes.to_vec();
        self.drive(|c, ctx, emit| c.receive(&mut data, ctx, emit));
    }

    fn upgrade(&mut self, path: &str, protocols: &[&str], auth: Option<(&str, &str)>) {
        let mut req = Vec::new();
        codec::client_request(&mut req, "x", path, KEY, protocols, auth);
        self.send_bytes(&req);
    }

    fn frame(&mut self, op: OpCode, payload: &[u8]) {
        let mut out = Vec::new();
        codec::encode_frame(&mut out, op, payload, true, Some(MASK));
        self.send_bytes(&out);
    }

    fn close_frame(&mut self, code: u16) {
        let mut out = Vec::new();
        codec::encode_close(&mut out, code, "", Some(MASK));
        self.send_bytes(&out);
    }

    fn tick(&mut self, now: u32) {
        self.now = now;
        self.drive(|c, ctx, emit| c.tick(true, ctx, emit));
    }

    /// Parse what the charger received since the last call.
    fn wire(&mut self) -> Vec<Wire> {
        let mut seen = Vec::new();
        if !self.upgraded {
            match codec::parse_upgrade_response(&self.rx, KEY).unwrap() {
                None => return seen,
                Some((resp, used)) => {
                    seen.push(Wire::Status(resp.status, resp.protocol));
                    self.upgraded = true;
                    self.rx.drain(..used);
                    if resp.status != 101 {
                        self.rx.clear(); // the error's body
                        return seen;
                    }
                }
            }
        }
        let mut rx = std::mem::take(&mut self.rx);
        self.decoder
            .feed(&mut rx, &mut |ev| {
                seen.push(match ev {
                    Event::Text(t) => Wire::Text(t.into()),
                    Event::Ping(_) => Wire::Ping,
                    Event::Pong(p) => Wire::Pong(p.to_vec()),
                    Event::Close(code, _) => Wire::Close(code),
                    Event::Binary(_) => panic!("binary from the server"),
                })
            })
            .unwrap();
        seen
    }

    fn open(cfg: WorkerConfig) -> Self {
        let mut c = Self::new(cfg);
        c.upgrade("/ocpp/CP1", &["ocpp1.6"], None);
        assert_eq!(
            c.wire(),
            vec![Wire::Status(101, Some("ocpp1.6".into()))],
            "{:?}",
            c.events
        );
        assert_eq!(
            c.events,
            vec![Ev::Connected("CP1".into(), "ocpp1.6".into())]
        );
        c.events.clear();
        c
    }
}

#[test]
fn upgrade_picks_our_preferred_protocol_and_announces_the_charger() {
    let mut c = Charger::new(WorkerConfig::default());
    c.upgrade("/ocpp/CP7", &["ocpp1.6", "ocpp2.0.1"], None);
    assert_eq!(c.wire(), vec![Wire::Status(101, Some("ocpp2.0.1".into()))]);
    assert_eq!(
        c.events,
        vec![Ev::Connected("CP7".into(), "ocpp2.0.1".into())]
    );
    assert!(c.conn.is_open());
}

#[test]
fn an_upgrade_split_anywhere_and_followed_by_a_frame_in_the_same_read() {
    let mut req = Vec::new();
    codec::client_request(&mut req, "x", "/ocpp/CP1", KEY, &["ocpp1.6"], None);
    codec::encode_frame(
        &mut req,
        OpCode::Text,
        b"[2,\"a\",\"Heartbeat\",{}]",
        true,
        Some(MASK),
    );
    let mut c = Charger::new(WorkerConfig::default());
    let (a, b) = req.split_at(10);
    c.send_bytes(a);
    assert!(c.conn.is_handshaking() && c.events.is_empty());
    c.send_bytes(b);
    assert_eq!(
        c.events,
        vec![
            Ev::Connected("CP1".into(), "ocpp1.6".into()),
            Ev::Message("[2,\"a\",\"Heartbeat\",{}]".into())
        ]
    );
}

#[test]
fn refused_upgrades_get_their_http_status_and_are_never_announced() {
    let cases: [(&str, &[&str], u16); 2] = [
        ("/elsewhere/CP1", &["ocpp1.6"], 404),
        ("/ocpp/CP1", &["ocpp9"], 400),
    ];
    for (path, protocols, status) in cases {
        let mut c = Charger::new(WorkerConfig::default());
        c.upgrade(path, protocols, None);
        assert_eq!(c.wire(), vec![Wire::Status(status, None)], "{path}");
        assert!(c.events.is_empty());
        assert!(c.conn.is_closing() && c.conn.take_shutdown_write());
    }
}

#[test]
fn the_auth_table_decides_401_and_404() {
    // sha256(0x0011 ++ "sixteen-char-key")
    use sha2::{Digest, Sha256};
    let mut d = Sha256::new();
    d.update([0x00u8, 0x11]);
    d.update(b"sixteen-char-key");
    let hex: String = d.finalize().iter().map(|b| format!("{b:02x}")).collect();
    for (id, cred, status) in [
        ("KEYED", Some(("KEYED", "sixteen-char-key")), 101),
        ("KEYED", Some(("KEYED", "not-the-right-key")), 401),
        ("KEYED", None, 401),
        ("STRANGER", None, 404),
    ] {
        let mut c = Charger::new(WorkerConfig::default());
        c.auth = AuthTable::new(false);
        c.auth.set("KEYED", &format!("sha256$0011${hex}"), 1);
        c.upgrade(&format!("/ocpp/{id}"), &["ocpp1.6"], cred);
        let Wire::Status(got, _) = c.wire()[0].clone() else {
            panic!()
        };
        assert_eq!(got, status, "{id} {cred:?}");
        assert_eq!(c.events.len(), usize::from(status == 101));
    }
}

#[test]
fn upgrade_without_protocol_completes_then_closes_1002() {
    let mut c = Charger::new(WorkerConfig {
        upgrade_without_protocol: true,
        ..WorkerConfig::default()
    });
    c.upgrade("/ocpp/CP1", &["ocpp9"], None);
    assert_eq!(
        c.wire(),
        vec![
            Wire::Status(101, None),
            Wire::Close(Some(codec::CLOSE_PROTOCOL_ERROR))
        ]
    );
    assert!(c.events.is_empty(), "never announced: {:?}", c.events);
}

#[test]
fn messages_go_up_pings_are_answered_and_text_goes_down() {
    let mut c = Charger::open(WorkerConfig::default());
    c.frame(OpCode::Text, b"[2,\"1\",\"Heartbeat\",{}]");
    c.frame(OpCode::Ping, b"still-there");
    assert_eq!(
        c.events,
        vec![Ev::Message("[2,\"1\",\"Heartbeat\",{}]".into())]
    );
    assert_eq!(c.wire(), vec![Wire::Pong(b"still-there".to_vec())]);
    assert!(c.send(b"[3,\"1\",{}]"));
    c.drive(|_, _, _| {});
    assert_eq!(c.wire(), vec![Wire::Text("[3,\"1\",{}]".into())]);
}

#[test]
fn charger_close_is_echoed_and_reported_with_its_code() {
    let mut c = Charger::open(WorkerConfig::default());
    c.close_frame(codec::CLOSE_GOING_AWAY);
    assert_eq!(c.wire(), vec![Wire::Close(Some(codec::CLOSE_GOING_AWAY))]);
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(codec::CLOSE_GOING_AWAY, String::new())]
    );
    // The server closes TCP first, once the close frame is out; it then lingers for the charger's EOF.
    assert!(c.conn.take_shutdown_write());
    assert!(!c.conn.take_shutdown_write(), "once");
    assert!(!c.send(b"late"));
    c.drive(|c, _, emit| c.lost(Lost::Eof, emit));
    assert!(c.conn.is_done());
    assert_eq!(c.events.len(), 1, "reported once: {:?}", c.events);
}

#[test]
fn a_close_without_a_code_is_answered_1000_and_reported_1005() {
    let mut c = Charger::open(WorkerConfig::default());
    c.frame(OpCode::Close, b"");
    assert_eq!(c.wire(), vec![Wire::Close(Some(codec::CLOSE_NORMAL))]);
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(codec::CLOSE_NO_STATUS, String::new())]
    );
}

#[test]
fn control_plane_close_reaches_the_charger_and_is_reported() {
    let mut c = Charger::open(WorkerConfig::default());
    c.drive(|c, ctx, emit| c.close(4001, "bye", ctx, emit));
    assert_eq!(c.wire(), vec![Wire::Close(Some(4001))]);
    assert_eq!(c.events, vec![Ev::Disconnected(4001, "bye".into())]);
}

#[test]
fn binary_frames_are_closed_1003_and_nothing_after_them_counts() {
    let mut c = Charger::open(WorkerConfig::default());
    let mut bytes = Vec::new();
    codec::encode_frame(&mut bytes, OpCode::Binary, &[1, 2, 3], true, Some(MASK));
    codec::encode_frame(&mut bytes, OpCode::Text, b"after", true, Some(MASK));
    c.send_bytes(&bytes);
    assert_eq!(
        c.wire(),
        vec![Wire::Close(Some(codec::CLOSE_UNSUPPORTED_DATA))]
    );
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(
            codec::CLOSE_UNSUPPORTED_DATA,
            "binary frames are not OCPP-J".into()
        )]
    );
}

#[test]
fn protocol_errors_close_with_the_codecs_code() {
    let mut c = Charger::open(WorkerConfig {
        max_message: 16,
        ..WorkerConfig::default()
    });
    c.frame(OpCode::Text, &[b'x'; 17]);
    assert_eq!(c.wire(), vec![Wire::Close(Some(codec::CLOSE_TOO_BIG))]);
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(
            codec::CLOSE_TOO_BIG,
            "message too big".into()
        )]
    );
}

#[test]
fn a_charger_that_does_not_read_is_dropped_1008_at_its_write_bound() {
    let mut c = Charger::open(WorkerConfig {
        max_write_queue: 1000,
        ..WorkerConfig::default()
    });
    c.reading = false;
    c.send(&[b'x'; 600]);
    c.drive(|_, _, _| {});
    assert!(c.conn.is_open(), "under the bound");
    c.send(&[b'x'; 600]);
    c.drive(|_, _, _| {});
    assert!(c.conn.is_done());
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(
            codec::CLOSE_POLICY_VIOLATION,
            "write queue full: the charger is not reading".into()
        )]
    );
}

#[test]
fn silent_peer_is_pinged_then_dropped_1006() {
    let mut c = Charger::open(WorkerConfig {
        ping_interval: Duration::from_secs(10),
        ping_timeout: Duration::from_secs(5),
        ..WorkerConfig::default()
    });
    assert_eq!(c.conn.next_deadline(&c.cfg), Some(11));
    c.tick(10);
    assert!(c.wire().is_empty(), "not yet");
    c.tick(11);
    assert_eq!(c.wire(), vec![Wire::Ping]);
    assert_eq!(c.conn.next_deadline(&c.cfg), Some(16));
    c.tick(15);
    assert!(c.conn.is_open());
    c.tick(16);
    assert!(c.conn.is_done());
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(
            codec::CLOSE_ABNORMAL,
            "no answer to ping".into()
        )]
    );
}

#[test]
fn any_bytes_answer_a_ping_and_a_paused_reader_forgets_its_ping() {
    let cfg = WorkerConfig {
        ping_interval: Duration::from_secs(10),
        ping_timeout: Duration::from_secs(5),
        ..WorkerConfig::default()
    };
    let mut c = Charger::open(cfg);
    c.tick(11);
    assert_eq!(c.wire(), vec![Wire::Ping]);
    c.now = 12;
    c.frame(OpCode::Text, b"[]");
    assert_eq!(
        c.conn.next_deadline(&c.cfg),
        Some(22),
        "next ping after 10 s of silence"
    );
    c.tick(22);
    assert_eq!(c.wire(), vec![Wire::Ping]);
    // While the driver does not read (the link is full), silence proves nothing.
    c.now = 40;
    let ctx_due = {
        let ctx = Ctx {
            now: 40,
            now_us: 40_000_000,
            cfg: &c.cfg,
            auth: &c.auth,
            admission: &c.admission,
        };
        (c.conn.is_due(false, &ctx), c.conn.is_due(true, &ctx))
    };
    assert_eq!(ctx_due, (true, true));
    c.drive(|c, ctx, emit| c.tick(false, ctx, emit));
    assert!(c.conn.is_open());
    assert_eq!(
        c.conn.next_deadline(&c.cfg),
        Some(22),
        "no ping outstanding: the next one is due as soon as the driver reads again"
    );
}

#[test]
fn slowloris_handshake_is_dropped_at_its_deadline_unannounced() {
    let mut c = Charger::new(WorkerConfig {
        handshake_timeout: Duration::from_secs(2),
        ..WorkerConfig::default()
    });
    c.send_bytes(b"GET /ocpp/SLOW HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(c.conn.next_deadline(&c.cfg), Some(3));
    c.tick(2);
    assert!(c.conn.is_handshaking());
    c.tick(3);
    assert!(c.conn.is_done() && c.wire().is_empty() && c.events.is_empty());
}

#[test]
fn a_closing_connection_lingers_then_is_dropped() {
    let mut c = Charger::open(WorkerConfig::default());
    c.now = 5;
    c.drive(|c, ctx, emit| c.close(codec::CLOSE_NORMAL, "", ctx, emit));
    assert_eq!(c.conn.next_deadline(&c.cfg), Some(5 + CLOSE_LINGER_SECS));
    c.frame(OpCode::Text, b"ignored while closing");
    c.tick(5 + CLOSE_LINGER_SECS);
    assert!(c.conn.is_done());
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(codec::CLOSE_NORMAL, String::new())]
    );
}

#[test]
fn shutdown_drops_handshakes_and_closes_open_connections() {
    let mut h = Charger::new(WorkerConfig::default());
    h.drive(|c, ctx, emit| c.shutdown(codec::CLOSE_GOING_AWAY, ctx, emit));
    assert!(h.conn.is_done() && h.events.is_empty());
    let mut c = Charger::open(WorkerConfig::default());
    c.drive(|c, ctx, emit| c.shutdown(codec::CLOSE_GOING_AWAY, ctx, emit));
    assert_eq!(c.wire(), vec![Wire::Close(Some(codec::CLOSE_GOING_AWAY))]);
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(
            codec::CLOSE_GOING_AWAY,
            "server shutting down".into()
        )]
    );
}

#[test]
fn a_lost_socket_is_reported_1006_once() {
    for (why, reason) in [
        (Lost::Eof, "connection closed without a close frame"),
        (Lost::ReadError, "connection reset"),
        (Lost::WriteError, "connection lost"),
    ] {
        let mut c = Charger::open(WorkerConfig::default());
        c.drive(|c, _, emit| c.lost(why, emit));
        c.drive(|c, _, emit| c.lost(why, emit));
        assert!(c.conn.is_done());
        assert_eq!(
            c.events,
            vec![Ev::Disconnected(codec::CLOSE_ABNORMAL, reason.into())]
        );
    }
}

#[test]
fn protocol_choice_follows_server_preference() {
    use super::conn::choose_protocol;
    let ours = vec!["ocpp2.0.1".to_string(), "ocpp1.6".to_string()];
    let offered = vec!["ocpp1.6".to_string(), "ocpp2.0.1".to_string()];
    assert_eq!(choose_protocol(&ours, &offered), Some("ocpp2.0.1"));
    assert_eq!(choose_protocol(&ours, &["ocpp9.9".to_string()]), None);
}

#[test]
fn the_pong_to_our_ping_reports_its_round_trip_and_other_pongs_report_nothing() {
    let cfg = WorkerConfig {
        ping_interval: Duration::from_secs(10),
        ping_timeout: Duration::from_secs(5),
        ..WorkerConfig::default()
    };
    let mut c = Charger::open(cfg);
    // A pong nobody asked for (allowed as a heartbeat, RFC 6455 §5.5.3) measures nothing.
    c.frame(OpCode::Pong, b"");
    assert!(c.events.is_empty());
    c.tick(11);
    assert_eq!(c.wire(), vec![Wire::Ping]);
    // Other bytes first prove the charger alive (no timeout) but do not end the measurement.
    c.frac_us = 20_000;
    c.frame(OpCode::Text, b"[2,\"1\",\"Heartbeat\",{}]");
    c.now = 12;
    c.frac_us = 37_500;
    c.frame(OpCode::Pong, b"");
    assert_eq!(
        c.events,
        vec![
            Ev::Message("[2,\"1\",\"Heartbeat\",{}]".into()),
            Ev::Pong(1_037_500)
        ]
    );
    // A second pong to the same ping is not measured again.
    c.events.clear();
    c.frame(OpCode::Pong, b"");
    assert!(c.events.is_empty());
}

#[test]
fn a_refused_connection_reads_its_upgrade_and_answers_503_with_retry_after() {
    let mut c = Charger::with(WorkerConfig::default(), |ctx| Connection::refusing(ctx, 7));
    c.upgrade("/ocpp/CP1", &["ocpp1.6"], None);
    let head = String::from_utf8_lossy(&c.rx).to_string();
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("\r\nRetry-After: 7\r\n"), "{head}");
    assert_eq!(c.wire(), vec![Wire::Status(503, None)]);
    // The control plane never hears of it, and the socket is closed after the answer.
    assert!(c.events.is_empty());
    assert!(c.conn.is_closing());
    assert!(c.conn.take_shutdown_write());
    assert_eq!(c.conn.refused_status(), Some(503));
}

#[test]
fn refusals_by_the_handshake_table_keep_their_status() {
    let mut c = Charger::new(WorkerConfig::default());
    c.upgrade("/ocpp/CP1", &["nope"], None);
    assert_eq!(c.wire(), vec![Wire::Status(400, None)]);
    assert_eq!(c.conn.refused_status(), Some(400));
    let c = Charger::open(WorkerConfig::default());
    assert_eq!(c.conn.refused_status(), None);
}

#[test]
fn a_throttled_charger_gets_429_even_with_the_right_key() {
    use super::throttle::ThrottleConfig;
    use sha2::{Digest, Sha256};
    let mut d = Sha256::new();
    d.update([0x00u8, 0x11]);
    d.update(b"sixteen-char-key");
    let hex: String = d.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let mut auth = AuthTable::with_throttle(
        false,
        ThrottleConfig {
            limit: 2,
            window: Duration::from_secs(10),
            backoff: Duration::from_secs(5),
            max_ids: 10,
        },
    );
    auth.set("KEYED", &format!("sha256$0011${hex}"), 1);
    // One connection per attempt, sharing the worker's table; all at the same instant.
    for (cred, status) in [
        (("KEYED", "not-the-right-key"), 401),
        (("KEYED", "not-the-right-key"), 401),
        (("KEYED", "sixteen-char-key"), 429),
        (("KEYED", "not-the-right-key"), 429),
    ] {
        let mut c = Charger::new(WorkerConfig::default());
        c.auth = std::mem::take(&mut auth);
        c.upgrade("/ocpp/KEYED", &["ocpp1.6"], Some(cred));
        let Wire::Status(got, _) = c.wire()[0].clone() else {
            panic!()
        };
        assert_eq!(got, status, "{cred:?}");
        assert!(c.events.is_empty());
        auth = std::mem::take(&mut c.auth);
    }
}

#[test]
fn unknown_ids_over_their_rate_get_503_while_known_chargers_connect() {
    // One worker's bucket of 2 new unknown ids a minute, shared by its connections (as the worker shares it).
    let admission = RefCell::new(Admission::new(
        Budget {
            unknown_per_min: 2,
            ..Budget::UNLIMITED
        },
        1,
    ));
    let mut auth = AuthTable::new(true);
    auth.set("KNOWN", "", 1);
    let mut results = Vec::new();
    for id in ["U1", "U2", "KNOWN", "U3", "KNOWN", "U1"] {
        let mut c = Charger::new(WorkerConfig::default());
        c.auth = std::mem::take(&mut auth);
        std::mem::swap(c.admission.get_mut(), &mut *admission.borrow_mut());
        c.upgrade(&format!("/ocpp/{id}"), &["ocpp1.6"], None);
        let head = String::from_utf8_lossy(&c.rx).to_string();
        let Wire::Status(got, _) = c.wire()[0].clone() else {
            panic!()
        };
        if got == 503 {
            assert!(head.contains("\r\nRetry-After: "), "{head}");
            assert!(c.events.is_empty(), "the control plane never hears of it");
            assert_eq!(c.conn.refused_status(), Some(503));
        }
        results.push((id, got));
        auth = std::mem::take(&mut c.auth);
        std::mem::swap(c.admission.get_mut(), &mut *admission.borrow_mut());
    }
    assert_eq!(
        results,
        [
            ("U1", 101),
            ("U2", 101),
            ("KNOWN", 101),
            ("U3", 503),
            ("KNOWN", 101),
            ("U1", 503)
        ]
    );
    assert_eq!(admission.borrow().refused_unknown_ids, 2);
}

fn call(id: &str) -> String {
    format!("[2,\"{id}\",\"Heartbeat\",{{}}]")
}

#[test]
fn pipelined_calls_wait_for_the_answer_before_them_and_go_on_in_order() {
    let mut c = Charger::open(WorkerConfig::default());
    for id in ["1", "2", "3"] {
        c.frame(OpCode::Text, call(id).as_bytes());
    }
    // A reply to the control plane's own CALL never waits behind the charger's.
    c.frame(OpCode::Text, b"[3,\"cs-1\",{}]");
    assert_eq!(
        c.events,
        vec![
            Ev::Message(call("1")),
            Ev::Message("[3,\"cs-1\",{}]".into())
        ]
    );
    c.events.clear();
    assert!(c.send(b"[3,\"1\",{\"currentTime\":\"x\"}]"));
    assert_eq!(c.events, vec![Ev::Message(call("2"))]);
    c.events.clear();
    // Our own CALL to the charger releases nothing; the answer to "2" releases "3".
    assert!(c.send(b"[2,\"cs-2\",\"Reset\",{}]"));
    assert!(c.events.is_empty());
    assert!(c.send(b"[4,\"2\",\"InternalError\",\"\",{}]"));
    assert_eq!(c.events, vec![Ev::Message(call("3"))]);
    assert!(c.conn.is_open());
}

#[test]
fn one_call_past_the_bound_closes_1008_with_a_reason() {
    let cfg = WorkerConfig {
        max_pending_calls: 2,
        ..WorkerConfig::default()
    };
    let mut c = Charger::open(cfg);
    for id in ["1", "2", "3"] {
        c.frame(OpCode::Text, call(id).as_bytes());
    }
    assert!(c.conn.is_open());
    c.frame(OpCode::Text, call("4").as_bytes());
    assert!(c.conn.is_closing());
    assert_eq!(c.conn.shed_reason(), Some(super::conn::Shed::PendingCalls));
    match &c.events[..] {
        [Ev::Message(m), Ev::Disconnected(1008, reason)] => {
            assert_eq!(m, &call("1"));
            assert!(reason.contains("too many CALLs"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let wire = c.wire();
    assert_eq!(wire.last(), Some(&Wire::Close(Some(1008))), "{wire:?}");
    // The held CALLs are gone with the connection (nothing to release them to).
    assert_eq!(c.conn.buffered_bytes(), 0);
}

#[test]
fn an_unanswered_call_stops_holding_the_next_after_the_timeout() {
    let cfg = WorkerConfig {
        pending_call_timeout: Duration::from_secs(30),
        ping_interval: Duration::ZERO,
        ..WorkerConfig::default()
    };
    let mut c = Charger::open(cfg);
    c.frame(OpCode::Text, call("1").as_bytes());
    c.frame(OpCode::Text, call("2").as_bytes());
    assert_eq!(c.events, vec![Ev::Message(call("1"))]);
    c.events.clear();
    assert_eq!(c.conn.next_deadline(&c.cfg), Some(31));
    c.tick(30);
    assert!(c.events.is_empty());
    c.tick(31);
    assert_eq!(c.events, vec![Ev::Message(call("2"))]);
    assert_eq!(c.conn.next_deadline(&c.cfg), Some(61));
    // The late answer to "1" releases nothing; the answer to "2" ends the wait.
    c.events.clear();
    c.send(b"[3,\"1\",{}]");
    c.send(b"[3,\"2\",{}]");
    assert!(c.events.is_empty());
    assert_eq!(c.conn.next_deadline(&c.cfg), None);
}

#[test]
fn a_charger_over_its_message_rate_is_closed_1008() {
    let cfg = WorkerConfig {
        msg_rate: 1.0,
        msg_burst: 3,
        ..WorkerConfig::default()
    };
    let mut c = Charger::open(cfg);
    for i in 0..3 {
        c.frame(OpCode::Text, format!("[3,\"{i}\",{{}}]").as_bytes());
    }
    assert!(c.conn.is_open());
    c.now += 1; // one more token
    c.frame(OpCode::Text, b"[3,\"x\",{}]");
    assert!(c.conn.is_open());
    c.frame(OpCode::Text, b"[3,\"y\",{}]");
    assert!(c.conn.is_closing());
    assert_eq!(c.conn.shed_reason(), Some(super::conn::Shed::MsgRate));
    match c.events.last() {
        Some(Ev::Disconnected(1008, reason)) => {
            assert!(reason.contains("message rate"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.events.len(),
        5,
        "4 messages, then the close: {:?}",
        c.events
    );
}

#[test]
fn shedding_for_the_budget_frees_the_buffers_and_closes_1013() {
    let mut c = Charger::open(WorkerConfig::default());
    // Half of a 100 KB message.
    let mut frame = Vec::new();
    codec::encode_frame(&mut frame, OpCode::Text, &[b'x'; 100_000], true, Some(MASK));
    c.send_bytes(&frame[..50_000]);
    assert!(c.conn.buffered_bytes() >= 50_000);
    c.drive(|c, ctx, emit| c.shed_for_budget(ctx, emit));
    assert_eq!(c.conn.shed_reason(), Some(super::conn::Shed::BufferBudget));
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(
            1013,
            "worker buffer budget exceeded: this connection held the most".into()
        )]
    );
    assert_eq!(c.wire(), vec![Wire::Close(Some(1013))]);
    assert_eq!(c.conn.buffered_bytes(), 0);
    // A connection with bytes still queued is dropped at once (its close frame cannot cut in).
    let mut c = Charger::open(WorkerConfig::default());
    c.reading = false;
    c.send(&[b'y'; 1000]);
    c.drive(|c, ctx, emit| c.shed_for_budget(ctx, emit));
    assert!(c.conn.is_done());
    assert_eq!(
        c.events,
        vec![Ev::Disconnected(
            1013,
            "worker buffer budget exceeded: this connection held the most".into()
        )]
    );
}
