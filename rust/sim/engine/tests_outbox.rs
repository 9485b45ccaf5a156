//! The seam between a charger's protocol side and the I/O shell: what the protocol emits into the outbox, in
//! which order, and what the shell's drain writes of it (over loopback sockets whose far ends stand for the
//! CSMS).

use std::io::Read as _;
use std::net::{TcpListener, TcpStream as StdStream};

use mio::net::TcpStream;
use serde_json::json;

use super::outbox::Output;
use super::tests_protocol::{answer, answer_all, open, outputs, sim, timers_of, Sent};
use super::*;

/// Give charger `idx` a socket: a loopback connection whose far end, returned, is the CSMS's.
fn plug(sim: &mut Sim, idx: usize) -> StdStream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let near = StdStream::connect(listener.local_addr().unwrap()).unwrap();
    let (far, _) = listener.accept().unwrap();
    near.set_nonblocking(true).unwrap();
    sim.ch[idx].conn.sock = Some(Stream::Plain(TcpStream::from_std(near)));
    far
}

/// Everything the charger wrote on `far`'s connection until it let go of its socket, decoded as the CSMS
/// decodes it (masked client frames).
fn received(mut far: StdStream) -> Vec<Sent> {
    far.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut bytes = Vec::new();
    far.read_to_end(&mut bytes).unwrap();
    let mut out = Vec::new();
    Decoder::new(Role::Server, 1 << 20)
        .feed(&mut bytes, &mut |ev| match ev {
            Event::Text(t) => out.push(Sent::Text(serde_json::from_str(t).unwrap())),
            Event::Close(code, _) => out.push(Sent::Close(code.unwrap())),
            _ => {}
        })
        .unwrap();
    out
}

/// The outputs in the outbox, without taking them: (charger, epoch, output).
fn queued(sim: &Sim) -> Vec<(usize, u32, Output)> {
    sim.outbox
        .iter()
        .map(|o| (o.idx, o.epoch, o.output))
        .collect()
}

fn action(m: &Sent) -> String {
    match m {
        Sent::Text(v) if v[0] == 2 => v[2].as_str().unwrap().to_owned(),
        Sent::Text(v) => format!("[{}] {}", v[0], v[1]),
        Sent::Close(code) => format!("close {code}"),
    }
}

#[test]
fn an_output_of_a_link_that_died_before_the_drain_is_dropped() {
    let mut s = sim(Protocol::Ocpp16);
    open(&mut s);
    assert_eq!(queued(&s), [(0, 0, Output::Text)]); // The boot, on link 0.
                                                    // The link dies before the shell writes the boot; the charger connects again and boots anew.
    s.drop_link(0);
    let far = plug(&mut s, 0);
    open(&mut s);
    assert_eq!(queued(&s), [(0, 0, Output::Text), (0, 1, Output::Text)]);
    s.drain();
    assert!(s.outbox.is_empty());
    s.ch[0].conn.sock = None;
    let got = received(far);
    assert_eq!(got.len(), 1, "{got:?}");
    let Sent::Text(boot) = &got[0] else {
        panic!("{got:?}")
    };
    // The second boot (the first one's CALL was forgotten with its link).
    assert_eq!(
        (boot[1].as_str(), boot[2].as_str()),
        (Some("2"), Some("BootNotification"))
    );
}

#[test]
fn a_close_asked_for_after_a_text_goes_out_after_it() {
    let mut s = sim(Protocol::Ocpp201);
    let far = plug(&mut s, 0);
    open(&mut s);
    // The run ends while the boot is unanswered: the charger closes its link, after the boot.
    s.begin_closing();
    assert!(matches!(
        s.ch[0].conn.link,
        Link::Closing {
            reconnect_after: None
        }
    ));
    assert_eq!(
        queued(&s),
        [
            (0, 0, Output::Text),
            (0, 0, Output::Close(codec::CLOSE_NORMAL))
        ]
    );
    s.drain();
    s.ch[0].conn.sock = None;
    let got: Vec<String> = received(far).iter().map(action).collect();
    assert_eq!(got, ["BootNotification", "close 1000"]);
}

#[test]
fn a_write_that_fails_fails_the_link_at_the_drain_and_drops_the_rest_of_it() {
    let mut cfg = SimConfig::new("127.0.0.1:9".parse().unwrap(), 2);
    cfg.heartbeat_interval = None;
    let mut s = Sim::new(cfg, vec![0, 0]).unwrap();
    s.phase = Phase::Running;
    let (far0, far1) = (plug(&mut s, 0), plug(&mut s, 1));
    for idx in 0..2 {
        s.inflight += 1;
        s.on_upgraded(idx);
    }
    s.emit_text(0, |t| t.push_str(r#"[2,"x","Heartbeat",{}]"#));
    assert_eq!(
        queued(&s),
        [
            (0, 0, Output::Text),
            (1, 0, Output::Text),
            (0, 0, Output::Text)
        ]
    );
    // The CSMS resets charger 0's connection: its next write fails.
    socket2::SockRef::from(&far0)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(far0);
    std::thread::sleep(Duration::from_millis(20));
    s.drain();
    assert!(s.outbox.is_empty());
    assert!(matches!(s.ch[0].conn.link, Link::Down));
    assert_eq!(s.ch[0].conn.epoch, 1);
    assert_eq!(s.r.errors.get(E_CLOSE), Some(&1), "{:?}", s.r.error_details);
    assert!(timers_of(&s).contains(&Timer::Connect));
    // Charger 1 is untouched.
    assert!(matches!(s.ch[1].conn.link, Link::Open));
    s.ch[1].conn.sock = None;
    let got: Vec<String> = received(far1).iter().map(action).collect();
    assert_eq!(got, ["BootNotification"]);
}

#[test]
fn the_reboot_walk_emits_its_outputs_in_order() {
    let mut s = sim(Protocol::Ocpp201);
    open(&mut s);
    let accepted = |m: &Value| match m[2].as_str() {
        Some("BootNotification") => {
            json!({"status": "Accepted", "interval": 60, "currentTime": "2026-11-30T07:00:00Z"})
        }
        Some("Authorize") => json!({"idTokenInfo": {"status": "Accepted"}}),
        _ => json!({}),
    };
    answer_all(&mut s, accepted);
    assert!(s.begin_tx(0, None, None));
    answer_all(&mut s, accepted);
    let mut walk = Vec::new();

    // Reset: the reply, then the transaction's end (the reboot waits for it to be answered).
    s.on_text(
        0,
        &json!([2, "r1", "Reset", {"type": "Immediate"}]).to_string(),
    );
    let out = outputs(&mut s);
    assert_eq!(out[0], Sent::Text(json!([3, "r1", {"status": "Accepted"}])));
    let Sent::Text(ended) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(ended[3]["eventType"], "Ended");
    assert_eq!(
        ended[3]["transactionInfo"]["stoppedReason"],
        "ImmediateReset"
    );
    walk.extend(out.iter().map(action));
    // Answered: the connector's status, then (answered too) the close, with a reconnect after the reboot.
    answer(&mut s, ended, json!({}));
    let out = outputs(&mut s);
    let Sent::Text(status) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(status[3]["connectorStatus"], "Available");
    walk.extend(out.iter().map(action));
    answer(&mut s, status, json!({}));
    walk.extend(outputs(&mut s).iter().map(action));
    assert!(matches!(
        s.ch[0].conn.link,
        Link::Closing {
            reconnect_after: Some(_)
        }
    ));
    assert!(timers_of(&s).contains(&Timer::Close { epoch: 0 }));
    // The CSMS finishes the close handshake: the charger reconnects after the reboot's delay, and boots.
    s.closed(0);
    assert!(timers_of(&s).contains(&Timer::Connect));
    assert_eq!(s.r.reboots, 1);
    open(&mut s);
    let out = outputs(&mut s);
    let Sent::Text(boot) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(boot[3]["reason"], "RemoteReset");
    walk.extend(out.iter().map(action));
    assert_eq!(
        walk,
        [
            "[3] \"r1\"",
            "TransactionEvent",
            "StatusNotification",
            "close 1000",
            "BootNotification"
        ]
    );
}
