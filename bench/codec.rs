//! Decoding throughput of ampgate's WebSocket `Decoder` against tungstenite, on the traffic a CSMS
//! sees: masked client frames carrying OCPP-J text messages.
//!
//! Run: `cargo bench --bench codec`. Prints one JSON line, then a table.
//!
//! What is compared: both sides get the same byte stream, delivered as 64 KiB "socket reads", and
//! must produce each message as validated UTF-8 text, enforcing the server-side masking rule.
//! - ampgate: each read is copied into a reusable buffer (the copy a `read()` syscall makes) and
//!   fed to `Decoder::feed`, which unmasks in place and hands out borrowed `&str`s.
//! - tungstenite: `WebSocket::from_raw_socket(stream, Role::Server, ..)` over an in-memory stream,
//!   calling `read()` once per message. Its frame codec (`FrameCodec`) is private; the public
//!   alternative, `FrameHeader::parse` plus a hand-written unmask and UTF-8 check, would benchmark
//!   our glue code rather than tungstenite. `WebSocket` does the same work as our `Decoder` (header
//!   parse, mask check, unmask, reassembly, UTF-8 validation) plus its own state handling, and is
//!   how tungstenite is used in practice. Its stream read copies into its buffer, the same one copy
//!   ours pays.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ampgate_native::codec::{encode_frame, Decoder, Event, OpCode, Role};
use tungstenite::protocol::{Role as TRole, WebSocket, WebSocketConfig};
use tungstenite::Message;

#[path = "ocpp_samples.rs"]
mod ocpp_samples;
use ocpp_samples::{heartbeat, meter_values};

/// Bytes per simulated socket read: a typical `recv` buffer for a busy connection.
const READ_SIZE: usize = 64 * 1024;
/// Timed repetitions per side; the best is reported (least disturbed by other tenants).
const RUNS: usize = 5;
/// OCPP 1.6 limits nothing, but gateways commonly cap messages around 1 MiB.
const MAX_MESSAGE: usize = 1 << 20;

/// `n` copies of `text` as masked client frames, each with its own key as a real client draws them.
fn client_stream(text: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * (text.len() + 8));
    for i in 0..n as u32 {
        let key = i.wrapping_mul(0x9E37_79B9).to_be_bytes();
        encode_frame(&mut out, OpCode::Text, text.as_bytes(), true, Some(key));
    }
    out
}

fn run_ampgate(stream: &[u8], n: usize) -> Duration {
    let mut read_buf = vec![0u8; READ_SIZE];
    let mut decoder = Decoder::new(Role::Server, MAX_MESSAGE);
    let (mut messages, mut bytes) = (0usize, 0usize);
    let start = Instant::now();
    for chunk in stream.chunks(READ_SIZE) {
        let buf = &mut read_buf[..chunk.len()];
        buf.copy_from_slice(chunk);
        decoder
            .feed(buf, &mut |event| {
                if let Event::Text(text) = event {
                    messages += 1;
                    bytes += black_box(text).len();
                }
            })
            .expect("valid stream");
    }
    let elapsed = start.elapsed();
    assert_eq!(messages, n);
    black_box(bytes);
    elapsed
}

/// The in-memory socket tungstenite reads from; it never writes (no pings in the stream).
struct Input<'a>(&'a [u8]);

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Input<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run_tungstenite(stream: &[u8], n: usize) -> Duration {
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_SIZE)
        .max_message_size(Some(MAX_MESSAGE));
    let mut ws = WebSocket::from_raw_socket(Input(stream), TRole::Server, Some(config));
    let mut bytes = 0usize;
    let start = Instant::now();
    for _ in 0..n {
        match ws.read().expect("valid stream") {
            Message::Text(text) => bytes += black_box(text.as_str()).len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    black_box(bytes);
    elapsed
}

struct Case {
    name: &'static str,
    payload: usize,
    messages: usize,
    wire: usize,
    ours: Duration,
    theirs: Duration,
}

impl Case {
    fn ns_per_msg(&self, d: Duration) -> f64 {
        d.as_nanos() as f64 / self.messages as f64
    }
    fn mb_per_s(&self, d: Duration) -> f64 {
        self.wire as f64 / d.as_secs_f64() / 1e6
    }
    fn speedup(&self) -> f64 {
        self.theirs.as_secs_f64() / self.ours.as_secs_f64()
    }
}

fn bench(name: &'static str, text: &str, n: usize) -> Case {
    let stream = client_stream(text, n);
    let (mut ours, mut theirs) = (Duration::MAX, Duration::MAX);
    // Interleaved so a noisy moment hurts both sides alike; one untimed warm-up round first.
    for run in 0..=RUNS {
        let (a, b) = (run_ampgate(&stream, n), run_tungstenite(&stream, n));
        if run > 0 {
            ours = ours.min(a);
            theirs = theirs.min(b);
        }
    }
    Case {
        name,
        payload: text.len(),
        messages: n,
        wire: stream.len(),
        ours,
        theirs,
    }
}

fn main() {
    let cases = [
        bench("heartbeat", &heartbeat(), 200_000),
        bench("meter_values", &meter_values(), 20_000),
    ];
    let json: Vec<String> = cases
        .iter()
        .map(|c| {
            format!(
                r#"{{"case":"{}","payload_bytes":{},"messages":{},"wire_bytes":{},"ampgate":{{"ns_per_msg":{:.1},"mb_per_s":{:.1}}},"tungstenite":{{"ns_per_msg":{:.1},"mb_per_s":{:.1}}},"speedup":{:.2}}}"#,
                c.name,
                c.payload,
                c.messages,
                c.wire,
                c.ns_per_msg(c.ours),
                c.mb_per_s(c.ours),
                c.ns_per_msg(c.theirs),
                c.mb_per_s(c.theirs),
                c.speedup()
            )
        })
        .collect();
    println!(
        r#"{{"bench":"codec","read_size":{READ_SIZE},"runs":{RUNS},"cases":[{}]}}"#,
        json.join(",")
    );
    println!();
    println!(
        "{:<14} {:>8} {:>9} | {:>12} {:>10} | {:>12} {:>10} | {:>7}",
        "case", "payload", "messages", "ampgate ns", "MB/s", "tungst. ns", "MB/s", "speedup"
    );
    for c in &cases {
        println!(
            "{:<14} {:>7}B {:>9} | {:>12.1} {:>10.1} | {:>12.1} {:>10.1} | {:>6.2}x",
            c.name,
            c.payload,
            c.messages,
            c.ns_per_msg(c.ours),
            c.mb_per_s(c.ours),
            c.ns_per_msg(c.theirs),
            c.mb_per_s(c.theirs),
            c.speedup()
        );
    }
}
