//! The seeded, structure-aware fuzz engine for the WebSocket frame codec and the HTTP upgrade
//! parsers (rust/codec), shared by the long run (`bench/fuzz_codec.rs`, `make fuzz`) and the seeded
//! slice in `cargo test` (`bench/fuzz/slice.rs`). Stable toolchain, no coverage instrumentation:
//! inputs are generated from the protocol's structure (frames of every opcode, fragmented
//! messages, lengths at the 7/16/64-bit edges, upgrade requests with missing, repeated and hostile
//! headers, %-encoded and Unicode ids), mutated from the committed corpus (bench/fuzz/corpus/) or
//! drawn as pure random bytes, and fed in arbitrary read splits.
//!
//! Each input is run twice, whole and cut into reads (random cuts, fixed sizes or one byte at a
//! time), each under `catch_unwind`, and checked for:
//! - panics (counted; the input is saved);
//! - hangs: an input slower than the slow-input bound is counted; the long run also has a watchdog
//!   that stops the process on an input that never returns;
//! - allocation: a counting global allocator (each binary installs [`CountingAlloc`]) measures the
//!   peak heap the codec holds for one input; it must stay under a bound derived from the decoder's
//!   max message size (2 × (max + 14) + 1 KiB: the message reassembled so far, at most max, and the
//!   frame being buffered, at most max + 14, both alive while the one is appended to the other) or,
//!   for handshakes, from `MAX_HEAD` (16 × 8 KiB);
//! - split invariance: the events (hashed), the error and the bytes still buffered must not depend
//!   on how the stream was cut into reads;
//! - the decoder's promises: an error is sticky and frees every buffer, an idle decoder holds no
//!   heap, nothing is delivered after a close frame, no message exceeds the max size, no control
//!   payload exceeds 125 bytes; a parsed handshake's head fits `MAX_HEAD` and its charger id obeys
//!   the id rule (1..=48 chars, no control, `/` or `:`, NFC).

#![allow(dead_code)] // Each of the two binaries uses a different part of the engine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ampgate_native::codec::{
    accept_key, charger_id_from_path, parse_upgrade_request, parse_upgrade_response, response_101,
    Decoder, Event, ProtocolError, Role, MAX_CHARGER_ID_CHARS, MAX_CONTROL_PAYLOAD, MAX_HEAD,
    MAX_HEADER_LEN,
};

// ---------------------------------------------------------------------------------------------
// Counting allocator

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes and their high-water mark. Process-wide (atomics, not
/// thread-local): the fuzz loop runs on one thread and the others allocate nothing meanwhile.
pub struct CountingAlloc;

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated besides.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

/// Start measuring: returns the live bytes now, and resets the high-water mark to it.
fn alloc_begin() -> usize {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    base
}

/// Peak bytes allocated above `base` since [`alloc_begin`].
fn alloc_peak(base: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

/// Whether the binary installed [`CountingAlloc`] (else every peak reads 0 and the check is void).
pub fn allocator_is_counting() -> bool {
    let base = alloc_begin();
    let v = std::hint::black_box(vec![0u8; 4096]);
    let seen = alloc_peak(base);
    drop(v);
    seen >= 4096
}

// ---------------------------------------------------------------------------------------------
// Random numbers

/// splitmix64: tiny, fast, and the same sequence for a seed on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True once in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, out: &mut Vec<u8>, n: usize) {
        out.extend((0..n).map(|_| self.byte()));
    }
}

// ---------------------------------------------------------------------------------------------
// Targets

/// What an input is fed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// `Decoder` as the gateway runs it: client frames, which must be masked.
    Server,
    /// `Decoder` as the simulator runs it: server frames, which must not be masked.
    Client,
    /// `parse_upgrade_request`, then `charger_id_from_path`, `accept_key` and the response, as
    /// the gateway's handshake does.
    Upgrade,
    /// `parse_upgrade_response`, as the simulator reads the gateway's answer.
    Response,
    /// `charger_id_from_path` on an arbitrary request target.
    ChargerId,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Server,
        Target::Client,
        Target::Upgrade,
        Target::Response,
        Target::ChargerId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Server => "server",
            Target::Client => "client",
            Target::Upgrade => "upgrade",
            Target::Response => "response",
            Target::ChargerId => "charger_id",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The decoder sizes fuzzed: the OCPP-J default (1 MiB), the edges of the length encodings, and
/// small ones so the "too big" paths and the reassembly limit are hit often.
pub const MAX_MESSAGES: [usize; 9] = [0, 1, 125, 126, 4096, 65535, 65536, 200_000, 1 << 20];

/// Heap bound for a decoder of `max_message`: the message reassembled so far (at most max bytes)
/// and the frame being buffered (at most max + 14), both alive while the frame's payload is appended
/// to the message; 1 KiB covers the outcome label and rounding of tiny buffers. (Before the decoder
/// clamped its buffers' growth, `Vec` doubling made this 3 × max: see the regress-* corpus file.)
pub fn decoder_alloc_bound(max_message: usize) -> usize {
    2 * (max_message + MAX_HEADER_LEN) + 1024
}

/// Heap bound for one handshake: the head is cut at `MAX_HEAD` (8 KiB), and what is kept of it
/// (path, key, each offered subprotocol as its own `String` plus 24 bytes of `Vec` slot, Basic
/// credentials, the response) is a bounded multiple of that.
pub const HANDSHAKE_ALLOC_BOUND: usize = 16 * MAX_HEAD;

/// The key the simulator would have sent (RFC 6455's sample nonce), for the response target.
const CLIENT_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

// ---------------------------------------------------------------------------------------------
// Read splits

/// How an input is cut into reads.
#[derive(Debug, Clone)]
enum Split {
    Whole,
    /// Cut at these sorted positions.
    At(Vec<usize>),
    /// Reads of this many bytes (1 = every byte on its own).
    Every(usize),
}

impl Split {
    fn random(rng: &mut Rng, len: usize) -> Self {
        match rng.below(8) {
            0 if len <= 2048 => Split::Every(1),
            1 | 2 => {
                let n = if rng.one_in(2) { 16 } else { 4096 };
                Split::Every(1 + rng.below(n))
            }
            _ => {
                let n = 1 + rng.below(8);
                let mut at: Vec<usize> = (0..n).map(|_| rng.below(len + 1)).collect();
                at.sort_unstable();
                Split::At(at)
            }
        }
    }

    /// Call `f` on each read in order; stops when `f` returns false.
    fn each(&self, data: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) {
        match self {
            Split::Whole => {
                f(data);
            }
            Split::Every(n) => {
                for c in data.chunks(*n) {
                    if !f(c) {
                        return;
                    }
                }
            }
            Split::At(at) => {
                let mut start = 0;
                for &end in at.iter().chain(std::iter::once(&data.len())) {
                    if !f(&data[start..end]) {
                        return;
                    }
                    start = end;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running one input

/// What one run of an input produced, compared across splits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    hash: u64,
    /// Name of what ended the run (an error reason, "ok", "incomplete"), counted for coverage.
    label: String,
}

/// FNV-1a.
struct Hasher(u64);

impl Hasher {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn add_u64(&mut self, v: u64) {
        self.add(&v.to_le_bytes());
    }
}

/// Scratch buffers reused across inputs, allocated before measuring so they are not counted.
struct Scratch {
    read: Vec<u8>,
    head: Vec<u8>,
    out: Vec<u8>,
}

/// Checks broken by one run (empty when all held).
type Violations = Vec<&'static str>;

fn run_decoder(
    role: Role,
    max: usize,
    data: &[u8],
    split: &Split,
    s: &mut Scratch,
    bad: &mut Violations,
) -> Outcome {
    let mut dec = Decoder::new(role, max);
    let mut h = Hasher::new();
    let mut closed = false;
    let mut err: Option<ProtocolError> = None;
    let mut too_big = false;
    let mut after_close = false;
    let mut control_too_long = false;
    split.each(data, &mut |chunk| {
        s.read.clear();
        s.read.extend_from_slice(chunk);
        let r = dec.feed(&mut s.read, &mut |ev| {
            if closed {
                after_close = true;
            }
            let (tag, bytes): (u8, &[u8]) = match ev {
                Event::Text(t) => (1, t.as_bytes()),
                Event::Binary(b) => (2, b),
                Event::Ping(p) => (9, p),
                Event::Pong(p) => (10, p),
                Event::Close(code, reason) => {
                    closed = true;
                    h.add_u64(u64::from(code.unwrap_or(0)) | 1 << 32);
                    (8, reason.as_bytes())
                }
            };
            match tag {
                1 | 2 if bytes.len() > max => too_big = true,
                8..=10 if bytes.len() > 125 => control_too_long = true,
                _ => {}
            }
            h.add(&[tag]);
            h.add_u64(bytes.len() as u64);
            h.add(bytes);
        });
        match r {
            Ok(()) => true,
            Err(e) => {
                err = Some(e);
                false
            }
        }
    });
    if after_close {
        bad.push("event delivered after a close frame");
    }
    if too_big {
        bad.push("message larger than max_message delivered");
    }
    if control_too_long {
        bad.push("control payload over 125 bytes delivered");
    }
    let label = match err {
        Some(e) => {
            // Sticky: any later feed fails the same way, and the buffers were freed.
            let mut more = [0x81u8, 0x80, 0, 0, 0, 0];
            if dec.feed(&mut more, &mut |_| {}) != Err(e) {
                bad.push("decoder error is not sticky");
            }
            if dec.heap_bytes() != 0 || dec.buffered_bytes() != 0 {
                bad.push("decoder keeps memory after an error");
            }
            h.add(e.reason.as_bytes());
            e.reason.to_owned()
        }
        None => {
            if dec.buffered_bytes() == 0 && dec.heap_bytes() != 0 {
                bad.push("idle decoder keeps heap memory");
            }
            // A message in progress plus a control frame cut by a read.
            if dec.buffered_bytes() > max + MAX_CONTROL_PAYLOAD + MAX_HEADER_LEN {
                bad.push("decoder buffers more than max_message + a control frame");
            }
            h.add_u64(dec.buffered_bytes() as u64);
            if closed {
                "close".to_owned()
            } else if dec.buffered_bytes() > 0 {
                "incomplete".to_owned()
            } else {
                "ok".to_owned()
            }
        }
    };
    h.add(&[u8::from(closed)]);
    Outcome { hash: h.0, label }
}

fn check_charger_id(id: &str, bad: &mut Violations) {
    let n = id.chars().count();
    if n == 0
        || n > MAX_CHARGER_ID_CHARS
        || id.chars().any(|c| c.is_control() || c == '/' || c == ':')
    {
        bad.push("charger id outside the id rule accepted");
    }
    if !unicode_normalization::is_nfc(id) {
        bad.push("non-NFC charger id accepted");
    }
}

fn run_upgrade(data: &[u8], split: &Split, s: &mut Scratch, bad: &mut Violations) -> Outcome {
    let mut h = Hasher::new();
    let mut label = String::new();
    s.head.clear();
    split.each(data, &mut |chunk| {
        s.head.extend_from_slice(chunk);
        match parse_upgrade_request(&s.head) {
            Ok(None) => true,
            Ok(Some((req, used))) => {
                if used > s.head.len() || used > MAX_HEAD {
                    bad.push("upgrade head longer than the buffer or MAX_HEAD");
                }
                h.add_u64(used as u64);
                h.add(req.path.as_bytes());
                h.add(req.key.as_bytes());
                for p in &req.protocols {
                    h.add(p.as_bytes());
                    h.add(b",");
                }
                if let Some((user, pass)) = &req.basic_auth {
                    h.add(user.as_bytes());
                    h.add(pass);
                }
                match charger_id_from_path(&req.path, "/ocpp") {
                    Ok(id) => {
                        check_charger_id(&id, bad);
                        h.add(id.as_bytes());
                        label.push_str("101");
                    }
                    Err(e) => {
                        h.add_u64(u64::from(e.status));
                        let _ = write!(label, "{} {}", e.status, e.reason);
                    }
                }
                s.out.clear();
                response_101(
                    &mut s.out,
                    &accept_key(&req.key),
                    req.protocols.first().map(String::as_str),
                );
                false
            }
            Err(e) => {
                if !matches!(e.status, 400 | 405 | 426 | 431) {
                    bad.push("unexpected handshake status");
                }
                h.add_u64(u64::from(e.status));
                h.add(e.reason.as_bytes());
                s.out.clear();
                e.write_response(&mut s.out);
                let _ = write!(label, "{} {}", e.status, e.reason);
                false
            }
        }
    });
    if label.is_empty() {
        if s.head.len() >= MAX_HEAD {
            bad.push("head over MAX_HEAD still incomplete");
        }
        label.push_str("incomplete");
    }
    Outcome { hash: h.0, label }
}

fn run_response(data: &[u8], split: &Split, s: &mut Scratch) -> Outcome {
    let mut h = Hasher::new();
    let mut label = String::new();
    s.head.clear();
    split.each(data, &mut |chunk| {
        s.head.extend_from_slice(chunk);
        match parse_upgrade_response(&s.head, CLIENT_KEY) {
            Ok(None) => true,
            Ok(Some((resp, used))) => {
                h.add_u64(used as u64);
                h.add_u64(u64::from(resp.status));
                h.add(resp.protocol.as_deref().unwrap_or("-").as_bytes());
                h.add_u64(u64::from(resp.retry_after.unwrap_or(u32::MAX)));
                label.push_str(if resp.status == 101 { "101" } else { "refusal" });
                false
            }
            Err(e) => {
                h.add_u64(u64::from(e.status));
                h.add(e.reason.as_bytes());
                let _ = write!(label, "{} {}", e.status, e.reason);
                false
            }
        }
    });
    if label.is_empty() {
        label.push_str("incomplete");
    }
    Outcome { hash: h.0, label }
}

fn run_charger_id(data: &[u8], bad: &mut Violations) -> Outcome {
    let path = String::from_utf8_lossy(data);
    let mut h = Hasher::new();
    let label = match charger_id_from_path(&path, "/ocpp") {
        Ok(id) => {
            check_charger_id(&id, bad);
            h.add(id.as_bytes());
            "ok".to_owned()
        }
        Err(e) => {
            h.add_u64(u64::from(e.status));
            format!("{} {}", e.status, e.reason)
        }
    };
    Outcome { hash: h.0, label }
}

/// One input: its target, bytes and (decoders) max message size.
#[derive(Debug, Clone)]
pub struct Input {
    pub target: Target,
    pub max_message: usize,
    pub data: Vec<u8>,
}

/// Result of one run, measured.
struct Measured {
    outcome: Option<Outcome>, // None: it panicked
    peak: usize,
}

fn run_split(input: &Input, split: &Split, s: &mut Scratch, bad: &mut Violations) -> Measured {
    // Scratch sized before measuring, so only the codec's own heap is counted.
    for v in [&mut s.read, &mut s.head] {
        v.clear();
        v.reserve(input.data.len());
    }
    s.out.clear();
    s.out.reserve(MAX_HEAD);
    bad.reserve(8);
    let base = alloc_begin();
    let r = panic::catch_unwind(AssertUnwindSafe(|| match input.target {
        Target::Server => run_decoder(Role::Server, input.max_message, &input.data, split, s, bad),
        Target::Client => run_decoder(Role::Client, input.max_message, &input.data, split, s, bad),
        Target::Upgrade => run_upgrade(&input.data, split, s, bad),
        Target::Response => run_response(&input.data, split, s),
        Target::ChargerId => run_charger_id(&input.data, bad),
    }));
    let peak = alloc_peak(base);
    Measured {
        outcome: r.ok(),
        peak,
    }
}

fn alloc_bound(input: &Input) -> usize {
    match input.target {
        Target::Server | Target::Client => decoder_alloc_bound(input.max_message),
        Target::Upgrade | Target::Response => HANDSHAKE_ALLOC_BOUND,
        // The path is built from the raw bytes (`from_utf8_lossy`: up to 3 bytes per invalid byte)
        // and percent-decoded into a copy no longer than itself.
        Target::ChargerId => 6 * input.data.len() + 1024,
    }
}

// ---------------------------------------------------------------------------------------------
// Corpus

/// The committed corpus: per target, the files of `corpus/<target>/`.
pub struct Corpus {
    pub entries: BTreeMap<Target, Vec<(String, Vec<u8>)>>,
}

impl Corpus {
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let mut entries = BTreeMap::new();
        for t in Target::ALL {
            let mut files = Vec::new();
            let sub = dir.join(t.name());
            if sub.is_dir() {
                let mut names: Vec<PathBuf> = std::fs::read_dir(&sub)?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<_, _>>()?;
                names.sort();
                for p in names {
                    let name = p
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    files.push((name, std::fs::read(&p)?));
                }
            }
            entries.insert(t, files);
        }
        Ok(Self { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }

    /// A corpus entry of `target`, big ones (over 4 KiB) drawn rarely so they do not dominate.
    fn pick(&self, rng: &mut Rng, target: Target) -> Option<&[u8]> {
        let files = self.entries.get(&target)?;
        if files.is_empty() {
            return None;
        }
        for _ in 0..8 {
            let (_, data) = rng.pick(files);
            if data.len() <= 4096 || rng.one_in(64) {
                return Some(data);
            }
        }
        Some(&rng.pick(files).1)
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Payload lengths at the edges of the encodings and of the size limits.
fn edge_len(rng: &mut Rng, max: usize) -> usize {
    let edges = [
        0,
        1,
        2,
        124,
        125,
        126,
        127,
        128,
        65535,
        65536,
        max.saturating_sub(1),
        max,
        max + 1,
    ];
    let n = *rng.pick(&edges);
    // A large payload costs its size in every run: keep those rare.
    if n > 4096 && !rng.one_in(256) {
        rng.below(300)
    } else {
        n
    }
}

fn gen_payload(rng: &mut Rng, out: &mut Vec<u8>, n: usize) {
    const TEXT: [&str; 10] = [
        "a",
        "{",
        "\"",
        "[2,\"1\",\"Heartbeat\",{}]",
        "é",
        "€",
        "中",
        "𝄞",
        "\u{202E}",
        " ",
    ];
    let start = out.len();
    match rng.below(4) {
        0 => rng.bytes(out, n),
        1 => out.resize(start + n, b'x'),
        _ => {
            while out.len() < start + n {
                out.extend_from_slice(rng.pick(&TEXT).as_bytes());
            }
            out.truncate(start + n); // may cut a character: invalid UTF-8 on purpose
        }
    }
}

const CLOSE_CODES: [u16; 20] = [
    1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1014, 1015, 1016, 0,
    999, 2999, 3000, 5000,
];

/// One frame. `masked` is what the role wants; it is wrong on purpose now and then, as are the
/// reserved bits, the opcode, the length encoding and the announced length itself.
fn gen_frame(rng: &mut Rng, out: &mut Vec<u8>, op: u8, fin: bool, masked: bool, max: usize) {
    let masked = if rng.one_in(32) { !masked } else { masked };
    let mut payload = Vec::new();
    match op {
        0x8 => match rng.below(8) {
            0 => {}
            1 => payload.push(rng.byte()),
            _ => {
                let code = if rng.one_in(8) {
                    rng.next_u64() as u16
                } else {
                    *rng.pick(&CLOSE_CODES)
                };
                payload.extend_from_slice(&code.to_be_bytes());
                let n = if rng.one_in(8) { 130 } else { 20 };
                let n = rng.below(n);
                gen_payload(rng, &mut payload, n);
            }
        },
        0x9 | 0xA => {
            let n = if rng.one_in(4) {
                *rng.pick(&[0, 1, 124, 125, 126, 127])
            } else {
                rng.below(20)
            };
            gen_payload(rng, &mut payload, n);
        }
        _ => {
            let n = if rng.one_in(4) {
                edge_len(rng, max)
            } else {
                rng.below(200)
            };
            gen_payload(rng, &mut payload, n);
        }
    }
    let mut b0 = op & 0x0F | if fin { 0x80 } else { 0 };
    if rng.one_in(64) {
        b0 |= (rng.byte() & 0x70) | 0x10;
    }
    let real = payload.len() as u64;
    // The announced length: usually the truth, sometimes a lie (shorter, longer, huge).
    let len: u64 = match rng.below(24) {
        0 => real + 1 + rng.below(10) as u64,
        1 => real.saturating_sub(1 + rng.below(10) as u64),
        2 => *rng.pick(&[
            u64::MAX,
            1 << 63,
            (1 << 63) - 1,
            1 << 32,
            u64::from(u32::MAX),
            max as u64 + 1,
        ]),
        _ => real,
    };
    let mask_bit = if masked { 0x80 } else { 0 };
    out.push(b0);
    let width = match rng.below(16) {
        0 => 16, // non-minimal encodings
        1 => 64,
        _ if len < 126 => 7,
        _ if len <= 0xFFFF => 16,
        _ => 64,
    };
    match width {
        7 => out.push(mask_bit | len as u8),
        16 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if masked {
        let key = if rng.one_in(8) {
            [0; 4]
        } else {
            (rng.next_u64() as u32).to_be_bytes()
        };
        out.extend_from_slice(&key);
        let start = out.len();
        out.extend_from_slice(&payload);
        ampgate_native::codec::apply_mask(&mut out[start..], key, 0);
    } else {
        out.extend_from_slice(&payload);
    }
}

/// A stream of frames as a peer in `role` would receive them: single messages, fragmented ones
/// with control frames between the fragments, closes, and garbage.
fn gen_stream(rng: &mut Rng, out: &mut Vec<u8>, role: Role, max: usize) {
    let masked = role == Role::Server;
    for _ in 0..1 + rng.below(6) {
        match rng.below(12) {
            0..=3 => {
                let op = if rng.one_in(2) { 0x1 } else { 0x2 };
                gen_frame(rng, out, op, true, masked, max);
            }
            4..=6 => {
                let n = 2 + rng.below(4);
                for i in 0..n {
                    let op = if i == 0 { *rng.pick(&[0x1, 0x2]) } else { 0x0 };
                    gen_frame(rng, out, op, i == n - 1, masked, max);
                    if rng.one_in(3) {
                        let op = *rng.pick(&[0x9, 0xA]);
                        gen_frame(rng, out, op, true, masked, max);
                    }
                }
            }
            7 => {
                let op = *rng.pick(&[0x9, 0xA]);
                gen_frame(rng, out, op, true, masked, max)
            }
            8 => gen_frame(rng, out, 0x8, true, masked, max),
            9 => {
                // Any opcode, reserved ones included, fin either way.
                let op = rng.byte() & 0x0F;
                let fin = rng.one_in(2);
                gen_frame(rng, out, op, fin, masked, max);
            }
            10 => {
                let fin = rng.one_in(2);
                gen_frame(rng, out, 0x0, fin, masked, max)
            }
            _ => {
                let n = rng.below(16);
                rng.bytes(out, n);
            }
        }
    }
}

/// A charger id as it could appear in a URL: plain, %-encoded, Unicode (composed, decomposed,
/// invisible, direction-changing), too long, empty, with forbidden characters.
fn gen_charger_id(rng: &mut Rng, out: &mut String) {
    const PIECES: [&str; 22] = [
        "CP001",
        "x",
        "%20",
        "%2F",
        "%3A",
        "%3a",
        "%00",
        "%7F",
        "%C3%A9",
        "e%CC%81",
        "%E2%84%AB",
        "%E2%80%8B",
        "%E2%80%AE",
        "%F0%9F%94%8C",
        "%FF",
        "%C3",
        "%",
        "%4",
        "%zz",
        "é",
        "+",
        ":",
    ];
    match rng.below(10) {
        0 => {
            let n = *rng.pick(&[47, 48, 49, 200, 3000]);
            for _ in 0..n {
                out.push('a');
            }
        }
        1 => {}
        _ => {
            for _ in 0..1 + rng.below(6) {
                out.push_str(PIECES[rng.below(PIECES.len())]);
            }
        }
    }
}

fn gen_path(rng: &mut Rng, out: &mut String) {
    match rng.below(12) {
        0 => {
            let p = ["/", "*", "/ocpp", "/ocpp/", "/ocpp//", "", "/other/CP1"];
            out.push_str(p[rng.below(p.len())]);
        }
        1 => {
            out.push_str("http://csms.example/ocpp/");
            gen_charger_id(rng, out);
        }
        _ => {
            out.push_str(if rng.one_in(16) { "/OCPP/" } else { "/ocpp/" });
            gen_charger_id(rng, out);
            if rng.one_in(6) {
                let tail = ["/", "/x", "?a=b/c", "#frag", "?", "%2F.."];
                out.push_str(tail[rng.below(tail.len())]);
            }
        }
    }
}

fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// An upgrade request: a valid one with each part dropped, repeated or mangled now and then,
/// filler headers (many, long, folded, non-UTF-8), and early frame bytes after the head.
fn gen_request(rng: &mut Rng, out: &mut Vec<u8>) {
    let eol: &[u8] = if rng.one_in(16) { b"\n" } else { b"\r\n" };
    let method = *rng.pick(&[
        "GET", "GET", "GET", "GET", "POST", "get", "HEAD", "G ET", "",
    ]);
    let mut path = String::new();
    gen_path(rng, &mut path);
    let version = if rng.one_in(10) {
        *rng.pick(&["HTTP/1.0", "HTTP/2", "HTTP/1.1x", "HTTP/1.", "http/1.1", ""])
    } else {
        "HTTP/1.1"
    };
    out.extend_from_slice(format!("{method} {path} {version}").as_bytes());
    out.extend_from_slice(eol);
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let mut nonce = [0u8; 16];
    nonce.iter_mut().for_each(|b| *b = rng.byte());
    let key = match rng.below(16) {
        0 => base64(&nonce[..15]),
        1 => base64(&[nonce.as_slice(), b"x"].concat()),
        2 => "not base64!".to_owned(),
        3 => String::new(),
        _ => base64(&nonce),
    };
    let upgrade = *rng.pick(&[
        "websocket",
        "WebSocket",
        "websocket",
        "h2c",
        "websocket, foo",
    ]);
    let connection = *rng.pick(&[
        "Upgrade",
        "keep-alive, Upgrade",
        "upgrade",
        "close",
        "Upgrade",
    ]);
    let ws_version = *rng.pick(&["13", "13", "13", "8", "13, 8", "", "013"]);
    let std_headers = [
        ("Host", "csms.example".to_owned()),
        ("Upgrade", upgrade.to_owned()),
        ("Connection", connection.to_owned()),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", ws_version.to_owned()),
    ];
    for (name, value) in std_headers {
        match rng.below(24) {
            0 => {} // missing
            1 => {
                headers.push((name.to_owned(), value.clone().into_bytes()));
                headers.push((name.to_ascii_lowercase(), value.into_bytes()));
            }
            _ => headers.push((name.to_owned(), value.into_bytes())),
        }
    }
    if !rng.one_in(4) {
        let protos = match rng.below(8) {
            0 => "ocpp1.6, ocpp2.0.1".to_owned(),
            1 => ",".repeat(rng.below(600)),
            2 => "a,".repeat(rng.below(2000)),
            3 => String::new(),
            _ => (*rng.pick(&["ocpp1.6", "ocpp2.0.1", "ocpp2.1", "ocpp2.0"])).to_owned(),
        };
        headers.push(("Sec-WebSocket-Protocol".to_owned(), protos.into_bytes()));
    }
    if rng.one_in(3) {
        let mut cred = Vec::new();
        let mut user = String::new();
        gen_charger_id(rng, &mut user);
        cred.extend_from_slice(user.as_bytes());
        if !rng.one_in(8) {
            cred.push(b':');
        }
        let n = rng.below(48);
        rng.bytes(&mut cred, n);
        let value = match rng.below(8) {
            0 => format!("Bearer {}", base64(&cred)),
            1 => "Basic !!!".to_owned(),
            2 => "Basic".to_owned(),
            3 => format!("basic   {}  ", base64(&cred).trim_end_matches('=')),
            _ => format!("Basic {}", base64(&cred)),
        };
        headers.push(("Authorization".to_owned(), value.into_bytes()));
        if rng.one_in(16) {
            headers.push(("authorization".to_owned(), b"Basic eDp5".to_vec()));
        }
    }
    // Filler: many headers, long ones, odd bytes.
    let fillers = if rng.one_in(8) {
        rng.below(80)
    } else {
        rng.below(3)
    };
    for i in 0..fillers {
        let len = if rng.one_in(32) {
            *rng.pick(&[1000, 8192, 9000])
        } else {
            rng.below(40)
        };
        let mut value = Vec::new();
        if rng.one_in(8) {
            rng.bytes(&mut value, len);
        } else {
            value.resize(len, b'v');
        }
        headers.push((format!("X-Filler-{i}"), value));
    }
    // Shuffle a little: header order must not matter.
    for i in (1..headers.len()).rev() {
        if rng.one_in(4) {
            let j = rng.below(i + 1);
            headers.swap(i, j);
        }
    }
    for (name, value) in &headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(if rng.one_in(32) { b":" } else { b": " });
        out.extend_from_slice(value);
        out.extend_from_slice(eol);
        if rng.one_in(128) {
            out.extend_from_slice(b" folded"); // obs-fold
            out.extend_from_slice(eol);
        }
    }
    if !rng.one_in(16) {
        out.extend_from_slice(eol);
    }
    if rng.one_in(4) {
        gen_stream(rng, out, Role::Server, 1 << 20);
    }
}

fn gen_response(rng: &mut Rng, out: &mut Vec<u8>) {
    let status = *rng.pick(&[
        "101 Switching Protocols",
        "101 Switching Protocols",
        "503 Busy",
        "401 No",
        "404 x",
        "1 x",
        "999 x",
        "10 x",
    ]);
    out.extend_from_slice(format!("HTTP/1.1 {status}\r\n").as_bytes());
    let accept = if rng.one_in(8) {
        "bad".to_owned()
    } else {
        accept_key(CLIENT_KEY)
    };
    let mut lines = vec![
        format!("Upgrade: {}", rng.pick(&["websocket", "h2c"])),
        format!("Connection: {}", rng.pick(&["Upgrade", "close"])),
        format!("Sec-WebSocket-Accept: {accept}"),
    ];
    if rng.one_in(2) {
        lines.push(format!(
            "Sec-WebSocket-Protocol: {}",
            rng.pick(&["ocpp1.6", "ocpp1.6, ocpp2.0.1", "", "x"])
        ));
    }
    if rng.one_in(3) {
        lines.push(format!(
            "Retry-After: {}",
            rng.pick(&[
                "5",
                "0",
                "4294967295",
                "4294967296",
                "-1",
                "Fri, 31 Dec 1999 23:59:59 GMT",
                " 7 "
            ])
        ));
    }
    for l in lines {
        if rng.one_in(16) {
            continue;
        }
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
        if rng.one_in(16) {
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    if rng.one_in(4) {
        gen_stream(rng, out, Role::Client, 1 << 20);
    }
}

fn generate(rng: &mut Rng, target: Target, max: usize, out: &mut Vec<u8>) {
    match target {
        Target::Server => gen_stream(rng, out, Role::Server, max),
        Target::Client => gen_stream(rng, out, Role::Client, max),
        Target::Upgrade => gen_request(rng, out),
        Target::Response => gen_response(rng, out),
        Target::ChargerId => {
            let mut p = String::new();
            gen_path(rng, &mut p);
            out.extend_from_slice(p.as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mutation

const INTERESTING_U8: [u8; 12] = [
    0, 1, 0x7D, 0x7E, 0x7F, 0x80, 0x81, 0x88, 0xFF, b'\r', b'\n', b'%',
];
const INTERESTING_U64: [u64; 10] = [
    0,
    125,
    126,
    127,
    65535,
    65536,
    (1 << 63) - 1,
    1 << 63,
    u64::MAX,
    1 << 20,
];

/// AFL-style havoc: a stack of 1..=8 byte-level mutations, plus structure-aware ones (an edge
/// length written over any position, a generated frame or request spliced in, another corpus
/// entry spliced on).
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, target: Target, max: usize, corpus: &Corpus) {
    for _ in 0..1 + rng.below(8) {
        let len = data.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(&INTERESTING_U8);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.byte();
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                data.drain(i..i + n);
            }
            4 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(32);
                let mut ins = Vec::new();
                rng.bytes(&mut ins, n);
                data.splice(i..i, ins);
            }
            5 if len > 0 => {
                // Duplicate a range elsewhere (repeated headers, repeated frames).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(512));
                let copy = data[i..i + n].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, copy);
            }
            6 => {
                if let Some(other) = corpus.pick(rng, target) {
                    let cut = rng.below(data.len() + 1);
                    let from = rng.below(other.len() + 1);
                    data.truncate(cut);
                    data.extend_from_slice(&other[from..]);
                }
            }
            7 if len > 0 => data.truncate(rng.below(len)),
            8 if len >= 2 => {
                // An edge length in 16 or 64 bits, big-endian, at any position.
                let v = *rng.pick(&INTERESTING_U64);
                let i = rng.below(len);
                let bytes = v.to_be_bytes();
                let w = if rng.one_in(2) {
                    &bytes[6..]
                } else {
                    &bytes[..]
                };
                let end = (i + w.len()).min(len);
                data[i..end].copy_from_slice(&w[..end - i]);
            }
            9 => {
                let mut ins = Vec::new();
                generate(rng, target, max, &mut ins);
                let at = rng.below(len + 1);
                data.splice(at..at, ins);
            }
            10 if len > 0 => {
                // Flip the mask bit or the reserved bits of what may be a frame header.
                let i = rng.below(len);
                data[i] ^= *rng.pick(&[0x80, 0x40, 0x20, 0x10, 0x0F]);
            }
            _ => {
                let n = rng.below(16);
                rng.bytes(data, n);
            }
        }
    }
    // Keep inputs bounded: large ones are fine, unbounded growth of one input is not useful.
    data.truncate(2 << 20);
}

// ---------------------------------------------------------------------------------------------
// The loop

pub struct Config {
    pub seed: u64,
    pub inputs: u64,
    pub time_cap: Duration,
    /// An input slower than this counts as a hang.
    pub slow_input: Duration,
    /// Where failing inputs are written (None: not written).
    pub crash_dir: Option<PathBuf>,
    /// Abort the process (after saving the input) when one input runs longer than this.
    pub watchdog: Option<Duration>,
}

#[derive(Debug, Default, Clone)]
pub struct TargetStats {
    pub inputs: u64,
    pub max_alloc: usize,
    pub max_alloc_bound: usize,
    /// Max of peak / bound over the inputs, as a fraction.
    pub max_alloc_ratio: f64,
    pub labels: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub seed: u64,
    pub inputs: u64,
    pub panics: u64,
    pub hangs: u64,
    pub over_alloc: u64,
    pub split_mismatches: u64,
    pub violations: u64,
    pub max_input_time: Duration,
    pub elapsed: Duration,
    pub stopped_by_time: bool,
    pub max_input_len: usize,
    pub corpus_files: usize,
    pub targets: BTreeMap<Target, TargetStats>,
    /// The first failures, described, with the file each was saved to.
    pub failures: Vec<String>,
}

impl Report {
    pub fn inputs_per_s(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn failed(&self) -> u64 {
        self.panics + self.hangs + self.over_alloc + self.split_mismatches + self.violations
    }

    pub fn to_json(&self) -> String {
        let mut targets = String::new();
        for (i, (t, s)) in self.targets.iter().enumerate() {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{}: {v}", json_str(k)))
                .collect();
            let _ = write!(
                targets,
                "{}\n    \"{}\": {{\"inputs\": {}, \"max_alloc_bytes\": {}, \"bound_at_max\": {}, \"max_alloc_fraction_of_bound\": {:.4}, \"outcomes\": {{{}}}}}",
                if i == 0 { "" } else { "," },
                t.name(),
                s.inputs,
                s.max_alloc,
                s.max_alloc_bound,
                s.max_alloc_ratio,
                labels.join(", ")
            );
        }
        let failures: Vec<String> = self.failures.iter().map(|f| json_str(f)).collect();
        format!(
            "{{\n  \"seed\": {},\n  \"inputs\": {},\n  \"panics\": {},\n  \"hangs\": {},\n  \"over_allocation\": {},\n  \"split_mismatches\": {},\n  \"invariant_violations\": {},\n  \"max_input_time_ms\": {:.3},\n  \"max_input_bytes\": {},\n  \"elapsed_s\": {:.1},\n  \"inputs_per_s\": {:.0},\n  \"stopped_by_time_cap\": {},\n  \"corpus_files\": {},\n  \"targets\": {{{}\n  }},\n  \"failures\": [{}]\n}}\n",
            self.seed,
            self.inputs,
            self.panics,
            self.hangs,
            self.over_alloc,
            self.split_mismatches,
            self.violations,
            self.max_input_time.as_secs_f64() * 1e3,
            self.max_input_len,
            self.elapsed.as_secs_f64(),
            self.inputs_per_s(),
            self.stopped_by_time,
            self.corpus_files,
            targets,
            failures.join(", ")
        )
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "seed {}  inputs {}  panics {}  hangs {}  over-allocation {}  split mismatches {}  invariant violations {}",
            self.seed, self.inputs, self.panics, self.hangs, self.over_alloc, self.split_mismatches, self.violations
        );
        let _ = writeln!(
            t,
            "{:.1} s, {:.0} inputs/s, slowest input {:.2} ms, largest input {} bytes{}",
            self.elapsed.as_secs_f64(),
            self.inputs_per_s(),
            self.max_input_time.as_secs_f64() * 1e3,
            self.max_input_len,
            if self.stopped_by_time {
                " (stopped by the time cap)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            t,
            "{:<11} {:>12} {:>14} {:>14} {:>9} {:>9}",
            "target", "inputs", "max alloc B", "its bound B", "max/bound", "outcomes"
        );
        for (target, s) in &self.targets {
            let _ = writeln!(
                t,
                "{:<11} {:>12} {:>14} {:>14} {:>9.3} {:>9}",
                target.name(),
                s.inputs,
                s.max_alloc,
                s.max_alloc_bound,
                s.max_alloc_ratio,
                s.labels.len()
            );
        }
        t
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn save(dir: &Option<PathBuf>, input: &Input, why: &str) -> String {
    let mut h = Hasher::new();
    h.add(&input.data);
    let name = format!(
        "{}-max{}-{:016x}.bin",
        input.target.name(),
        input.max_message,
        h.0
    );
    if let Some(dir) = dir {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(dir.join(&name), &input.data);
    }
    format!("{why}: {name}")
}

/// Draw the next input.
fn next_input(rng: &mut Rng, corpus: &Corpus, buf: Vec<u8>) -> Input {
    let target = match rng.below(100) {
        0..=44 => Target::Server,
        45..=54 => Target::Client,
        55..=84 => Target::Upgrade,
        85..=92 => Target::Response,
        _ => Target::ChargerId,
    };
    let max_message = *rng.pick(&MAX_MESSAGES);
    let mut data = buf;
    data.clear();
    match rng.below(16) {
        0..=3 => generate(rng, target, max_message, &mut data),
        4..=12 => match corpus.pick(rng, target) {
            Some(c) => {
                data.extend_from_slice(c);
                mutate(rng, &mut data, target, max_message, corpus);
            }
            None => generate(rng, target, max_message, &mut data),
        },
        13 | 14 => {
            generate(rng, target, max_message, &mut data);
            mutate(rng, &mut data, target, max_message, corpus);
        }
        _ => {
            let n = if rng.one_in(8) { 4096 } else { 128 };
            let n = rng.below(n);
            rng.bytes(&mut data, n);
        }
    }
    Input {
        target,
        max_message,
        data,
    }
}

/// Shared with the watchdog thread: the input in progress and when it started.
struct Progress {
    started_ns: AtomicU64,
    busy: AtomicBool,
    current: Mutex<Option<Input>>,
}

/// Run one input (whole, then split) and record it in `report`. Returns whether it failed.
fn check_one(
    input: &Input,
    split: &Split,
    scratch: &mut Scratch,
    report: &mut Report,
    cfg_slow: Duration,
    crash_dir: &Option<PathBuf>,
) -> bool {
    let started = Instant::now();
    let mut bad = Violations::new();
    let whole = run_split(input, &Split::Whole, scratch, &mut bad);
    let cut = run_split(input, split, scratch, &mut bad);
    let took = started.elapsed();
    report.inputs += 1;
    report.max_input_time = report.max_input_time.max(took);
    report.max_input_len = report.max_input_len.max(input.data.len());
    let stats = report.targets.entry(input.target).or_default();
    stats.inputs += 1;
    let bound = alloc_bound(input);
    let peak = whole.peak.max(cut.peak);
    let ratio = peak as f64 / bound as f64;
    if ratio > stats.max_alloc_ratio {
        stats.max_alloc_ratio = ratio;
    }
    if peak > stats.max_alloc {
        stats.max_alloc = peak;
        stats.max_alloc_bound = bound;
    }
    let mut why = Vec::new();
    match (&whole.outcome, &cut.outcome) {
        (Some(a), Some(b)) => {
            *stats.labels.entry(a.label.clone()).or_default() += 1;
            if a != b {
                report.split_mismatches += 1;
                why.push(format!(
                    "split mismatch ({} vs {}, {split:?})",
                    a.label, b.label
                ));
            }
        }
        _ => {
            report.panics += 1;
            why.push("panic".to_owned());
        }
    }
    if peak > bound {
        report.over_alloc += 1;
        why.push(format!("allocated {peak} bytes, bound {bound}"));
    }
    if took > cfg_slow {
        report.hangs += 1;
        why.push(format!("took {took:?}"));
    }
    if !bad.is_empty() {
        report.violations += 1;
        bad.dedup();
        why.push(bad.join("; "));
    }
    if why.is_empty() {
        return false;
    }
    if report.failures.len() < 20 {
        let line = save(crash_dir, input, &why.join(", "));
        report.failures.push(line);
    }
    true
}

/// Run one saved input (a file named `<target>-max<N>-...` or `regress-<target>-max<N>-...`) whole
/// and split at every byte; returns its report.
pub fn replay(name: &str, data: Vec<u8>) -> Option<Report> {
    let name = name.strip_prefix("regress-").unwrap_or(name);
    let mut parts = name.splitn(3, '-');
    let target = Target::from_name(parts.next()?)?;
    let max_message = parts.next()?.strip_prefix("max")?.parse().ok()?;
    let input = Input {
        target,
        max_message,
        data,
    };
    let mut report = Report::default();
    let mut scratch = Scratch {
        read: Vec::new(),
        head: Vec::new(),
        out: Vec::new(),
    };
    check_one(
        &input,
        &Split::Every(1),
        &mut scratch,
        &mut report,
        Duration::from_secs(5),
        &None,
    );
    Some(report)
}

/// Run every corpus file unmutated (whole, split at every byte when small, and in random
/// reads), for each decoder size; the regressions live there.
pub fn run_corpus(corpus: &Corpus, seed: u64, report: &mut Report, crash_dir: &Option<PathBuf>) {
    let mut rng = Rng::new(seed);
    let mut scratch = Scratch {
        read: Vec::new(),
        head: Vec::new(),
        out: Vec::new(),
    };
    for (target, files) in &corpus.entries {
        for (_, data) in files {
            let sizes: &[usize] = match target {
                Target::Server | Target::Client => &MAX_MESSAGES,
                _ => &[1 << 20],
            };
            for &max_message in sizes {
                let input = Input {
                    target: *target,
                    max_message,
                    data: data.clone(),
                };
                let split = if data.len() <= 4096 {
                    Split::Every(1)
                } else {
                    Split::random(&mut rng, data.len())
                };
                check_one(
                    &input,
                    &split,
                    &mut scratch,
                    report,
                    Duration::from_secs(5),
                    crash_dir,
                );
            }
        }
    }
}

/// The fuzz loop: `cfg.inputs` inputs or `cfg.time_cap`, whichever comes first.
pub fn run(cfg: &Config, corpus: &Corpus, progress: &mut dyn FnMut(&Report)) -> Report {
    let mut report = Report {
        seed: cfg.seed,
        corpus_files: corpus.len(),
        ..Report::default()
    };
    let shared = Arc::new(Progress {
        started_ns: AtomicU64::new(0),
        busy: AtomicBool::new(false),
        current: Mutex::new(None),
    });
    let epoch = Instant::now();
    let stop_watchdog = Arc::new(AtomicBool::new(false));
    let watchdog = cfg.watchdog.map(|limit| {
        let shared = Arc::clone(&shared);
        let stop = Arc::clone(&stop_watchdog);
        let dir = cfg.crash_dir.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = epoch.elapsed().as_nanos() as u64;
                let started = shared.started_ns.load(Ordering::Relaxed);
                if shared.busy.load(Ordering::Relaxed)
                    && now.saturating_sub(started) > limit.as_nanos() as u64
                {
                    let guard = shared.current.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(input) = guard.as_ref() {
                        let line = save(&dir, input, "hang (watchdog)");
                        eprintln!("fuzz: an input has run for over {limit:?}; {line}");
                    }
                    std::process::exit(3);
                }
            }
        })
    });
    // Panics are counted, not printed (the hook would print millions of lines).
    let old_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng::new(cfg.seed);
    let mut scratch = Scratch {
        read: Vec::new(),
        head: Vec::new(),
        out: Vec::new(),
    };
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut buf = Vec::new();
    while report.inputs < cfg.inputs {
        if report.inputs.is_multiple_of(1024) {
            if started.elapsed() >= cfg.time_cap {
                report.stopped_by_time = true;
                break;
            }
            if last_progress.elapsed() >= Duration::from_secs(10) {
                report.elapsed = started.elapsed();
                progress(&report);
                last_progress = Instant::now();
            }
        }
        let input = next_input(&mut rng, corpus, buf);
        let split = Split::random(&mut rng, input.data.len());
        if cfg.watchdog.is_some() {
            let mut guard = shared.current.lock().unwrap_or_else(|e| e.into_inner());
            *guard = Some(input.clone());
            drop(guard);
            shared
                .started_ns
                .store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
            shared.busy.store(true, Ordering::Relaxed);
        }
        check_one(
            &input,
            &split,
            &mut scratch,
            &mut report,
            cfg.slow_input,
            &cfg.crash_dir,
        );
        shared.busy.store(false, Ordering::Relaxed);
        buf = input.data;
    }
    report.elapsed = started.elapsed();
    panic::set_hook(old_hook);
    stop_watchdog.store(true, Ordering::Relaxed);
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    report
}
