//! What the gateway's per-charger bounds cost per message (`rust/gateway/flow.rs`), against the frame decoding
//! every message pays anyway, in the same run.
//!
//! Run: `cargo bench --bench flow`. Prints one JSON line, then a table.
//!
//! Per message, the worker now reads the head of every text message from a charger (`CallGate::incoming`:
//! a `serde_json` pass over the whole message, which also checks it is JSON), reads the head of the control
//! plane's answer while a CALL is outstanding (`CallGate::outgoing`), and takes a token from the connection's
//! bucket (`Bucket::take`). The figure is one round: a CALL in, its CALLRESULT out, one token; next to it the
//! decoding of the same CALL from a masked frame (`Decoder::feed`), best of 5.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ampgate_native::codec::{encode_frame, Decoder, Event, OpCode, Role};
use ampgate_native::gateway::flow::{Bucket, CallGate, Incoming};

#[path = "ocpp_samples.rs"]
mod ocpp_samples;
use ocpp_samples::{heartbeat, meter_values};

const N: usize = 200_000;
const RUNS: usize = 5;

fn best(f: impl Fn() -> Duration) -> Duration {
    (0..RUNS).map(|_| f()).min().expect("runs")
}

fn run_flow(call: &str, reply: &[u8]) -> Duration {
    let mut gate = CallGate::default();
    let mut bucket = Bucket::new(2000, 0);
    let start = Instant::now();
    for i in 0..N {
        assert!(bucket.take(1e9, 2000, i as u64));
        assert_eq!(gate.incoming(black_box(call), 1, 4), Incoming::Pass);
        assert!(gate.outgoing(black_box(reply), 1).is_none());
    }
    assert!(!gate.is_waiting());
    start.elapsed()
}

fn run_decode(call: &str) -> Duration {
    let mut stream = Vec::new();
    for i in 0..N as u32 {
        let key = i.wrapping_mul(0x9E37_79B9).to_be_bytes();
        encode_frame(&mut stream, OpCode::Text, call.as_bytes(), true, Some(key));
    }
    let mut decoder = Decoder::new(Role::Server, 1 << 20);
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0usize;
    let start = Instant::now();
    for chunk in stream.chunks(64 << 10) {
        let b = &mut buf[..chunk.len()];
        b.copy_from_slice(chunk);
        decoder
            .feed(b, &mut |ev| {
                if let Event::Text(t) = ev {
                    n += black_box(t).len().min(1);
                }
            })
            .expect("valid");
    }
    assert_eq!(n, N);
    start.elapsed()
}

fn main() {
    let cases = [
        (
            "Heartbeat",
            heartbeat(),
            r#"[3,"b1f5a0e2-7c1d-4a8e-9f3b-2d6c8e4a1b7f",{"currentTime":"2026-01-01T00:00:00.000Z"}]"#,
        ),
        (
            "MeterValues",
            meter_values(),
            r#"[3,"6f1d2c3b-9a8e-4f7d-8c6b-5a4e3d2c1b0a",{}]"#,
        ),
    ];
    let mut rows = Vec::new();
    for (name, call, reply) in &cases {
        let flow = best(|| run_flow(call, reply.as_bytes())).as_nanos() as f64 / N as f64;
        let decode = best(|| run_decode(call)).as_nanos() as f64 / N as f64;
        rows.push((name, call.len(), flow, decode));
    }
    let json: Vec<String> = rows
        .iter()
        .map(|(name, bytes, flow, decode)| {
            format!(
                r#"{{"message":"{name}","bytes":{bytes},"flow_ns_per_msg":{flow:.1},"decode_ns_per_msg":{decode:.1}}}"#
            )
        })
        .collect();
    println!(
        r#"{{"bench":"flow","messages_per_run":{N},"runs":{RUNS},"results":[{}]}}"#,
        json.join(",")
    );
    println!(
        "{:<12} {:>6} {:>14} {:>16}",
        "message", "bytes", "bounds ns/msg", "decoding ns/msg"
    );
    for (name, bytes, flow, decode) in rows {
        println!("{name:<12} {bytes:>6} {flow:>14.1} {decode:>16.1}");
    }
}
