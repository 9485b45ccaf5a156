//! The worker's event loop over real loopback sockets, driven by tungstenite as an independent client and by
//! the link from the test's side (the test plays the control plane).
//! What one connection does with bytes and time (handshake answers, close echo, binary frames, deadlines) is
//! unit-tested without sockets in tests_conn.rs; these test the loop around it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use super::config::WorkerConfig;
use super::link::{Down, LinkReader, LinkWriter, UpRef};
use super::sys::monotonic_us;
use super::worker::Worker;
use crate::codec;

struct Harness {
    port: u16,
    link: UnixStream,
    reader: LinkReader,
    /// The worker's monotonic time of every Connected and Disconnected seen, in order.
    times: Vec<u64>,
    /// The latest Stats: heap bytes and counts.
    stats: Option<(u64, super::link::Counts)>,
}

/// What the test saw on the link, owned.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Connected(u64, String, u8),
    Message(u64, String),
    Disconnected(u64, u16),
}

impl Harness {
    fn start(cfg: WorkerConfig) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (lfd, cfg) = if cfg.reuseport_addr.is_some() {
            // The worker binds its own socket on the port we just learned.
            drop(listener);
            let addr = Some(format!("127.0.0.1:{port}"));
            (
                None,
                WorkerConfig {
                    reuseport_addr: addr,
                    ..cfg
                },
            )
        } else {
            (Some(listener.into_raw_fd()), cfg)
        };
        let (ours, theirs) = UnixStream::pair().unwrap();
        let wfd = theirs.into_raw_fd();
        std::thread::spawn(move || {
            let mut w = Worker::new(cfg, lfd, Some(wfd)).unwrap();
            w.run().unwrap();
        });
        ours.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut h = Harness {
            port,
            link: ours,
            reader: LinkReader::new(),
            times: Vec::new(),
            stats: None,
        };
        h.down(&[
            Down::AuthPolicy {
                accept_unknown: true,
            },
            Down::Accept { on: true },
            Down::Barrier { seq: 1 },
        ]);
        h.wait_for(|s| s.is_empty(), Duration::from_millis(200)); // drain hello/ack
        h
    }

    fn down(&mut self, recs: &[Down]) {
        let mut w = LinkWriter::new();
        for r in recs {
            w.down(r);
        }
        w.seal();
        self.link.write_all(w.pending()).unwrap();
    }

    /// Collect link records for up to `max`, returning once `done` holds for what was seen.
    fn wait_for(&mut self, done: impl Fn(&[Seen]) -> bool, max: Duration) -> Vec<Seen> {
        let start = Instant::now();
        let mut seen = Vec::new();
        let mut buf = [0u8; 65536];
        while start.elapsed() < max {
            match self.link.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.reader.extend(&buf[..n]),
                Err(_) => {}
            }
            while let Some(mut b) = self.reader.next_batch().unwrap() {
                while let Some(r) = b.next_up().unwrap() {
                    match r {
                        UpRef::Connected {
                            conn_id,
                            charger,
                            protocol,
                            at_us,
                            ..
                        } => {
                            self.times.push(at_us);
                            seen.push(Seen::Connected(conn_id, charger.to_string(), protocol))
                        }
                        UpRef::Message { conn_id, data } => seen.push(Seen::Message(
                            conn_id,
                            String::from_utf8(data.to_vec()).unwrap(),
                        )),
                        UpRef::Disconnected {
                            conn_id,
                            code,
                            at_us,
                            ..
                        } => {
                            self.times.push(at_us);
                            seen.push(Seen::Disconnected(conn_id, code))
                        }
                        UpRef::Stats {
                            heap_bytes, counts, ..
                        } => self.stats = Some((heap_bytes, counts)),
                        _ => {}
                    }
                }
            }
            if !seen.is_empty() && done(&seen) {
                break;
            }
        }
        seen
    }

    fn client(&self, id: &str, protocol: &str) -> WebSocket<TcpStream> {
        let mut req = format!("ws://127.0.0.1:{}/ocpp/{id}", self.port)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocol).unwrap(),
        );
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (ws, resp) = tungstenite::client(req, stream).unwrap();
        assert_eq!(resp.status(), 101);
        ws
    }
}

fn close_code(ws: &mut WebSocket<TcpStream>) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => return Some(f.code.into()),
            Ok(Message::Close(None)) => return None,
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

#[test]
fn messages_flow_both_ways_through_the_link() {
    let mut h = Harness::start(WorkerConfig::default());
    let mut ws = h.client("CP1", "ocpp1.6");
    ws.send(Message::text(r#"[2,"a","Heartbeat",{}]"#)).unwrap();
    let seen = h.wait_for(|s| s.len() >= 2, Duration::from_secs(5));
    let Seen::Connected(id, charger, proto) = seen[0].clone() else {
        panic!("{seen:?}")
    };
    assert_eq!((charger.as_str(), proto), ("CP1", 1));
    assert_eq!(
        seen[1],
        Seen::Message(id, r#"[2,"a","Heartbeat",{}]"#.into())
    );
    h.down(&[Down::Send {
        conn_id: id,
        data: br#"[3,"a",{}]"#.to_vec(),
    }]);
    assert_eq!(ws.read().unwrap(), Message::text(r#"[3,"a",{}]"#));
    // A close from the control plane reaches the charger with its code, and is reported back.
    h.down(&[Down::Close {
        conn_id: id,
        code: 4001,
        reason: "bye".into(),
    }]);
    assert_eq!(close_code(&mut ws), Some(4001));
    let seen = h.wait_for(
        |s| s.iter().any(|x| matches!(x, Seen::Disconnected(..))),
        Duration::from_secs(5),
    );
    assert!(seen.contains(&Seen::Disconnected(id, 4001)), "{seen:?}");
}

#[test]
fn connection_events_carry_the_workers_monotonic_time() {
    let mut h = Harness::start(WorkerConfig::default());
    let before = monotonic_us();
    let mut ws = h.client("CP-T", "ocpp1.6");
    h.wait_for(|s| !s.is_empty(), Duration::from_secs(5));
    let after_connect = monotonic_us();
    std::thread::sleep(Duration::from_millis(20));
    ws.close(None).unwrap();
    h.wait_for(
        |s| s.iter().any(|x| matches!(x, Seen::Disconnected(..))),
        Duration::from_secs(5),
    );
    let after = monotonic_us();
    let [connected, disconnected] = h.times[..] else {
        panic!("{:?}", h.times)
    };
    assert!(
        before <= connected && connected <= after_connect,
        "{before} {connected} {after_connect}"
    );
    assert!(
        connected + 20_000 <= disconnected && disconnected <= after,
        "{connected} {disconnected} {after}"
    );
}

#[test]
fn a_charger_that_does_not_read_is_closed_1008_at_its_write_bound() {
    let cfg = WorkerConfig {
        max_write_queue: 64 << 10,
        ..WorkerConfig::default()
    };
    let mut h = Harness::start(cfg);
    let ws = h.client("SLOW", "ocpp1.6");
    let seen = h.wait_for(|s| !s.is_empty(), Duration::from_secs(5));
    let Seen::Connected(id, ..) = seen[0].clone() else {
        panic!()
    };
    // The client never reads: the kernel buffers fill, then our queue, then the bound trips.
    let big = vec![b'x'; 256 << 10];
    let mut got = Vec::new();
    for _ in 0..200 {
        h.down(&[Down::Send {
            conn_id: id,
            data: big.clone(),
        }]);
        got = h.wait_for(
            |s| s.iter().any(|x| matches!(x, Seen::Disconnected(..))),
            Duration::from_millis(50),
        );
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(
        got,
        vec![Seen::Disconnected(id, codec::CLOSE_POLICY_VIOLATION)]
    );
    drop(ws);
}

#[test]
fn silent_peer_is_dropped_after_ping_timeout() {
    let cfg = WorkerConfig {
        ping_interval: Duration::from_secs(1),
        ping_timeout: Duration::from_secs(1),
        ..WorkerConfig::default()
    };
    let mut h = Harness::start(cfg);
    // A raw client that completes the handshake and then never answers (no pong).
    let mut s = TcpStream::connect(("127.0.0.1", h.port)).unwrap();
    s.write_all(
        b"GET /ocpp/MUTE HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n",
    )
    .unwrap();
    let seen = h.wait_for(
        |s| s.iter().any(|x| matches!(x, Seen::Disconnected(..))),
        Duration::from_secs(6),
    );
    let Seen::Connected(id, ..) = seen[0].clone() else {
        panic!("{seen:?}")
    };
    assert_eq!(
        seen.last(),
        Some(&Seen::Disconnected(id, codec::CLOSE_ABNORMAL))
    );
}

#[test]
fn registered_password_is_enforced_and_unknown_rejected() {
    let mut h = Harness::start(WorkerConfig::default());
    // sha256("0011" bytes ++ "sixteen-char-key")
    let salt = [0x00u8, 0x11];
    use sha2::{Digest, Sha256};
    let mut d = Sha256::new();
    d.update(salt);
    d.update(b"sixteen-char-key");
    let hex: String = d.finalize().iter().map(|b| format!("{b:02x}")).collect();
    h.down(&[
        Down::AuthSet {
            charger: "KEYED".into(),
            hash: format!("sha256$0011${hex}"),
            profile: 1,
        },
        Down::AuthPolicy {
            accept_unknown: false,
        },
        Down::Barrier { seq: 2 },
    ]);
    h.wait_for(|_| false, Duration::from_millis(200));
    let status = |id: &str, auth: Option<&str>| {
        let mut req = format!("ws://127.0.0.1:{}/ocpp/{id}", h.port)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("ocpp1.6"),
        );
        if let Some(a) = auth {
            use base64::Engine;
            let v = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(a)
            );
            req.headers_mut()
                .insert("Authorization", HeaderValue::from_str(&v).unwrap());
        }
        let stream = TcpStream::connect(("127.0.0.1", h.port)).unwrap();
        match tungstenite::client(req, stream) {
            Ok((_, resp)) => resp.status().as_u16(),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                resp.status().as_u16()
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(status("KEYED", Some("KEYED:sixteen-char-key")), 101);
    assert_eq!(status("KEYED", Some("KEYED:not-the-right-key")), 401);
    assert_eq!(status("KEYED", None), 401);
    assert_eq!(status("STRANGER", None), 404);
}

#[test]
fn shared_listener_at_cap_leaves_new_connections_queued_for_others() {
    let cfg = WorkerConfig {
        max_connections: 1,
        ..WorkerConfig::default()
    };
    let mut h = Harness::start(cfg);
    let _first = h.client("CAP1", "ocpp1.6");
    h.wait_for(|s| !s.is_empty(), Duration::from_secs(5));
    // At its cap the worker stops polling the shared listener: the kernel still completes the TCP handshake
    // into the queue, where another worker (none here) would pick it up; nothing is refused or reset.
    let mut s = TcpStream::connect(("127.0.0.1", h.port)).expect("queued, not refused");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.write_all(b"GET /ocpp/CAP2 HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    let err = s
        .read(&mut buf)
        .expect_err("no worker answers while at cap");
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
}

#[test]
fn reuseport_worker_serves_and_leaves_the_group_at_its_cap() {
    let cfg = WorkerConfig {
        max_connections: 1,
        reuseport_addr: Some(String::new()), // filled in by the harness
        ..WorkerConfig::default()
    };
    let mut h = Harness::start(cfg);
    std::thread::sleep(Duration::from_millis(100));
    let mut ws = h.client("RP1", "ocpp2.0.1");
    ws.send(Message::text(r#"[2,"x","Heartbeat",{}]"#)).unwrap();
    let seen = h.wait_for(|s| s.len() >= 2, Duration::from_secs(5));
    assert!(matches!(seen[1], Seen::Message(_, _)), "{seen:?}");
    // At its cap a reuseport worker must close its socket to leave the group; with no other worker a new
    // connection is refused outright (and one queued at that moment would have been reset).
    std::thread::sleep(Duration::from_millis(100));
    let refused = TcpStream::connect(("127.0.0.1", h.port));
    assert!(
        refused.is_err(),
        "connection should be refused while the only worker is at its cap"
    );
}

#[test]
fn a_lagging_control_plane_holds_messages_back_but_pings_are_still_answered() {
    // A tiny link bound so the test can fill it: the test plays a control plane that stops reading.
    let cfg = WorkerConfig {
        link_high: 16 << 10,
        link_low: 8 << 10,
        // Thousands of messages at wire speed: no message rate here (tested on its own).
        msg_rate: 0.0,
        ..WorkerConfig::default()
    };
    let mut h = Harness::start(cfg);
    let mut flooder = h.client("FLOOD", "ocpp1.6");
    let mut quiet = h.client("QUIET", "ocpp1.6");
    flooder.get_mut().set_nonblocking(true).unwrap();
    // Flood until TCP pushes back: the link socket fills, the worker pauses, parks up to its limit, then
    // stops reading the flooder. CALLRESULTs: pipelined CALLs would wait in the worker (gateway::flow).
    let body = format!(
        r#"[3,"{{}}",{{"vendorId":"x","data":"{}"}}]"#,
        "y".repeat(1000)
    );
    let mut sent = 0usize;
    let start = Instant::now();
    loop {
        let msg = Message::text(body.replace("{}", &sent.to_string()));
        match flooder.send(msg) {
            Ok(()) => sent += 1,
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no back-pressure after {sent} messages"
        );
    }
    assert!(sent > 100, "pushed back too early: {sent}");
    // The other charger's ping is still answered while the link is full.
    quiet
        .send(Message::Ping(b"still-there".to_vec().into()))
        .unwrap();
    let pong = loop {
        match quiet.read().unwrap() {
            Message::Pong(p) => break p,
            _ => continue,
        }
    };
    assert_eq!(&pong[..], b"still-there");
    // Now the control plane catches up: every message that TCP took arrives, once, in order.
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        // Keep the flooder's pending frames moving into the kernel as the worker reads again.
        let _ = flooder.flush();
        for s in h.wait_for(|_| false, Duration::from_millis(100)) {
            if let Seen::Message(_, text) = s {
                let id: usize = text[4..text.find("\",{").unwrap()].parse().unwrap();
                ids.push(id);
            }
        }
        if ids.len() >= sent {
            break;
        }
    }
    assert_eq!(ids, (0..ids.len()).collect::<Vec<_>>(), "in order, no gaps");
    assert!(ids.len() >= sent, "got {} of {sent}", ids.len());
}

#[test]
fn over_its_buffer_budget_a_worker_closes_the_connection_holding_the_most() {
    let cfg = WorkerConfig {
        buffer_budget: 300_000,
        ..WorkerConfig::default()
    };
    let mut h = Harness::start(cfg);
    let mut small = h.client("SMALL", "ocpp1.6");
    let mut big = h.client("BIG", "ocpp1.6");
    let mut other = h.client("OTHER", "ocpp1.6");
    h.wait_for(|s| s.len() >= 3, Duration::from_secs(5));
    // BIG sends 200 KB of a 250 KB message and stops; wait until the worker holds it.
    let mut frame = Vec::new();
    codec::encode_frame(
        &mut frame,
        codec::OpCode::Text,
        &[b'x'; 250_000],
        true,
        Some([9, 8, 7, 6]),
    );
    big.get_mut().write_all(&frame[..200_000]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.stats.is_none_or(|(heap, _)| heap < 200_000) {
        assert!(
            Instant::now() < deadline,
            "the worker never held BIG's bytes: {:?}",
            h.stats
        );
        h.wait_for(|_| false, Duration::from_millis(100));
    }
    // OTHER's 150 KB puts the worker over its budget: BIG (the most) goes, OTHER and SMALL stay.
    other.get_mut().write_all(&frame[..150_000]).unwrap();
    assert_eq!(close_code(&mut big), Some(1013));
    let seen = h.wait_for(
        |s| s.iter().any(|e| matches!(e, Seen::Disconnected(..))),
        Duration::from_secs(10),
    );
    let gone: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e, Seen::Disconnected(..)))
        .collect();
    assert_eq!(gone.len(), 1, "{seen:?}");
    small.send(Message::text("[3,\"a\",{}]")).unwrap();
    let seen = h.wait_for(
        |s| s.iter().any(|e| matches!(e, Seen::Message(..))),
        Duration::from_secs(10),
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, Seen::Message(_, t) if t == "[3,\"a\",{}]")),
        "{seen:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.stats.is_none_or(|(_, c)| c.closed_budget == 0) {
        assert!(Instant::now() < deadline, "not counted: {:?}", h.stats);
        h.wait_for(|_| false, Duration::from_millis(100));
    }
    assert_eq!(h.stats.unwrap().1.closed_budget, 1);
}
