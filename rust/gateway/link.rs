//! The worker link: length-prefixed batches of records between a gateway worker and the control plane.
//!
//! One batch is `u32 LE length` followed by that many bytes of records; a record is a one-byte kind, then
//! fixed-width integers (little endian) and length-prefixed byte strings. Many records share one batch so a
//! boot storm crosses the Unix socket in a few large writes, not one per message.
//!
//! This module is sans-I/O: [`LinkWriter`] appends records to a buffer and [`LinkReader`] parses records out of
//! bytes fed to it; the worker and the hub do the socket reads and writes.

use crate::gateway::error::LinkError;

/// Largest batch either side accepts. A batch carries whole messages, and a message is at most the gateway's
/// max message size (1 MiB by default), so 64 MiB leaves room for many of them and still bounds a corrupt length.
pub const MAX_BATCH: usize = 64 << 20;

/// A writer closes its batch once it holds this many bytes, so one huge batch does not delay the first record.
const BATCH_TARGET: usize = 256 << 10;

/// Protocol numbers on the wire: 0 none (handshake completed without a subprotocol), 1 ocpp1.6, 2 ocpp2.0.1.
pub const PROTO_NONE: u8 = 0;
pub const PROTO_OCPP16: u8 = 1;
pub const PROTO_OCPP201: u8 = 2;

/// The subprotocol names, indexed by their wire number.
pub fn protocol_name(p: u8) -> &'static str {
    match p {
        PROTO_OCPP16 => "ocpp1.6",
        PROTO_OCPP201 => "ocpp2.0.1",
        _ => "",
    }
}

/// The wire number of a subprotocol name, if it is one we speak.
pub fn protocol_number(name: &str) -> Option<u8> {
    match name {
        "ocpp1.6" => Some(PROTO_OCPP16),
        "ocpp2.0.1" => Some(PROTO_OCPP201),
        _ => None,
    }
}

/// A record from a worker to the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Up {
    /// First record a worker sends: who it is.
    Hello { pid: u32 },
    /// A charger completed its handshake with an agreed subprotocol, at the worker's `at_us`
    /// (CLOCK_MONOTONIC microseconds: the same clock in every process of the host).
    Connected {
        conn_id: u64,
        protocol: u8,
        /// OCPP security profile of the connection (1–3).
        profile: u8,
        charger: String,
        peer: String,
        at_us: u64,
    },
    /// A whole text message (UTF-8 already validated by the codec).
    Message { conn_id: u64, data: Vec<u8> },
    /// A connection that was announced `Connected` is gone, since the worker's `at_us` (CLOCK_MONOTONIC).
    Disconnected {
        conn_id: u64,
        code: u16,
        reason: String,
        at_us: u64,
    },
    /// Periodic counters.
    Stats {
        connections: u32,
        paused: bool,
        heap_bytes: u64,
        counts: Counts,
    },
    /// Everything sent before `Barrier { seq }` has been applied.
    Ack { seq: u64 },
    /// The charger answered our ping after `rtt_us`, at the worker's `at_us` (CLOCK_MONOTONIC).
    Pong {
        conn_id: u64,
        rtt_us: u32,
        at_us: u64,
    },
}

/// A worker's running totals since it started (the control plane takes differences).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Upgrades completed (each a `Connected`).
    pub upgrades: u64,
    /// Upgrades answered 503 by admission control: over the rate, or too many handshakes at once.
    pub refused_rate: u64,
    pub refused_handshakes: u64,
    /// Upgrades refused 401 (credentials) and 404 (unknown charger), and any other HTTP error (400: no
    /// subprotocol, a bad request or path).
    pub refused_auth: u64,
    pub refused_unknown: u64,
    pub refused_other: u64,
    /// Upgrades refused 429: the charger id failed authentication too often lately (`gateway::throttle`).
    pub refused_throttled: u64,
    /// Upgrades answered 503 by admission control because the node's rate of new unknown charger ids was
    /// spent.
    pub refused_unknown_ids: u64,
    /// Open connections the worker closed for its bounds: its buffer budget (1013), too many pipelined
    /// CALLs and over the message rate (both 1008).
    pub closed_budget: u64,
    pub closed_pending_calls: u64,
    pub closed_msg_rate: u64,
    /// Upgrades refused 403: below the charger's security profile, or a client certificate naming another
    /// charger.
    pub refused_profile: u64,
    /// TLS handshakes that failed (a client certificate of another CA, no shared cipher, not TLS).
    pub tls_failed: u64,
    /// TLS files read again on the control plane's request.
    pub tls_reloads: u64,
}

/// A worker's share of the node's admission budget (see `gateway::admission`); 0 = no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionShare {
    pub rate: u32,
    pub burst: u32,
    pub handshakes: u32,
    pub retry_max: u32,
    /// New unknown charger ids per minute.
    pub unknown_per_min: u32,
}

/// A record from the control plane to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    /// Send one text message on a connection.
    Send { conn_id: u64, data: Vec<u8> },
    /// Close a connection with a close frame.
    Close {
        conn_id: u64,
        code: u16,
        reason: String,
    },
    /// Forget every credential (the start of a full table push).
    AuthClear,
    /// A known charger; an empty hash means "known, no password"; `profile` is the lowest security profile
    /// it may connect with.
    AuthSet {
        charger: String,
        hash: String,
        profile: u8,
    },
    /// The charger is no longer known.
    AuthDelete { charger: String },
    /// Whether chargers absent from the table are admitted.
    AuthPolicy { accept_unknown: bool },
    /// Start or stop accepting new connections.
    Accept { on: bool },
    /// Answer with `Ack { seq }` once everything before it has been applied.
    Barrier { seq: u64 },
    /// Close every connection with `code` and exit once they are closed.
    Shutdown { code: u16 },
    /// This worker's share of the admission budget.
    Admission(AdmissionShare),
    /// Read the TLS certificate, key and client CA files again; new connections use them, live ones keep
    /// theirs.
    TlsReload,
}

mod kind {
    pub const HELLO: u8 = 1;
    pub const CONNECTED: u8 = 2;
    pub const MESSAGE: u8 = 3;
    pub const DISCONNECTED: u8 = 4;
    pub const STATS: u8 = 5;
    pub const ACK: u8 = 6;
    pub const PONG: u8 = 7;
    pub const SEND: u8 = 10;
    pub const CLOSE: u8 = 11;
    pub const AUTH_CLEAR: u8 = 12;
    pub const AUTH_SET: u8 = 13;
    pub const AUTH_DELETE: u8 = 14;
    pub const AUTH_POLICY: u8 = 15;
    pub const ACCEPT: u8 = 16;
    pub const BARRIER: u8 = 17;
    pub const SHUTDOWN: u8 = 18;
    pub const ADMISSION: u8 = 19;
    pub const TLS_RELOAD: u8 = 20;
}

/// Appends records into length-prefixed batches. The buffer is what goes on the socket: call
/// [`LinkWriter::seal`] before writing it out, then [`LinkWriter::consume`] what the socket took.
#[derive(Default)]
pub struct LinkWriter {
    buf: Vec<u8>,
    /// Offset of the open batch's length prefix, if a batch is open.
    open: Option<usize>,
    /// Bytes at the front already written to the socket.
    sent: usize,
}

impl LinkWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn begin(&mut self, kind: u8) {
        match self.open {
            Some(start) if self.buf.len() - start < BATCH_TARGET => {}
            _ => {
                self.seal();
                self.open = Some(self.buf.len());
                self.buf.extend_from_slice(&[0; 4]);
            }
        }
        self.buf.push(kind);
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A string of at most 65,535 bytes, cut on a character boundary (the reader checks UTF-8).
    fn short(&mut self, s: &str) {
        let mut n = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.u16(n as u16);
        self.buf.extend_from_slice(&s.as_bytes()[..n]);
    }
    fn long(&mut self, s: &[u8]) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s);
    }

    /// Close the open batch (write its length). Idempotent.
    pub fn seal(&mut self) {
        if let Some(start) = self.open.take() {
            let len = (self.buf.len() - start - 4) as u32;
            self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
    }

    /// Sealed bytes not yet written to the socket.
    pub fn pending(&self) -> &[u8] {
        let end = self.open.unwrap_or(self.buf.len());
        &self.buf[self.sent..end]
    }

    /// Bytes buffered (sealed or not) that the socket has not taken yet.
    pub fn len(&self) -> usize {
        self.buf.len() - self.sent
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The socket took `n` bytes of [`LinkWriter::pending`].
    pub fn consume(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
            if self.buf.capacity() > 4 * BATCH_TARGET {
                self.buf = Vec::new();
            }
        } else if self.sent > BATCH_TARGET && self.open.is_none() {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Append bytes that are already whole sealed batches (another writer's `pending()`).
    pub fn extend_sealed(&mut self, batches: &[u8]) {
        self.seal();
        self.buf.extend_from_slice(batches);
    }

    pub fn up(&mut self, r: &Up) {
        match r {
            Up::Hello { pid } => {
                self.begin(kind::HELLO);
                self.u32(*pid);
            }
            Up::Connected {
                conn_id,
                protocol,
                profile,
                charger,
                peer,
                at_us,
            } => {
                self.connected(*conn_id, *protocol, *profile, charger, peer, *at_us);
            }
            Up::Message { conn_id, data } => self.message(*conn_id, data),
            Up::Disconnected {
                conn_id,
                code,
                reason,
                at_us,
            } => self.disconnected(*conn_id, *code, reason, *at_us),
            Up::Stats {
                connections,
                paused,
                heap_bytes,
                counts,
            } => {
                self.begin(kind::STATS);
                self.u32(*connections);
                self.buf.push(*paused as u8);
                self.u64(*heap_bytes);
                for v in [
                    counts.upgrades,
                    counts.refused_rate,
                    counts.refused_handshakes,
                    counts.refused_auth,
                    counts.refused_unknown,
                    counts.refused_other,
                    counts.refused_throttled,
                    counts.refused_unknown_ids,
                    counts.closed_budget,
                    counts.closed_pending_calls,
                    counts.closed_msg_rate,
                    counts.refused_profile,
                    counts.tls_failed,
                    counts.tls_reloads,
                ] {
                    self.u64(v);
                }
            }
            Up::Ack { seq } => {
                self.begin(kind::ACK);
                self.u64(*seq);
            }
            Up::Pong {
                conn_id,
                rtt_us,
                at_us,
            } => self.pong(*conn_id, *rtt_us, *at_us),
        }
    }

    pub fn connected(
        &mut self,
        conn_id: u64,
        protocol: u8,
        profile: u8,
        charger: &str,
        peer: &str,
        at_us: u64,
    ) {
        self.begin(kind::CONNECTED);
        self.u64(conn_id);
        self.buf.push(protocol);
        self.buf.push(profile);
        self.short(charger);
        self.short(peer);
        self.u64(at_us);
    }

    pub fn message(&mut self, conn_id: u64, data: &[u8]) {
        self.begin(kind::MESSAGE);
        self.u64(conn_id);
        self.long(data);
    }

    pub fn pong(&mut self, conn_id: u64, rtt_us: u32, at_us: u64) {
        self.begin(kind::PONG);
        self.u64(conn_id);
        self.u32(rtt_us);
        self.u64(at_us);
    }

    pub fn disconnected(&mut self, conn_id: u64, code: u16, reason: &str, at_us: u64) {
        self.begin(kind::DISCONNECTED);
        self.u64(conn_id);
        self.u16(code);
        self.short(reason);
        self.u64(at_us);
    }

    pub fn down(&mut self, r: &Down) {
        match r {
            Down::Send { conn_id, data } => self.send(*conn_id, data),
            Down::Close {
                conn_id,
                code,
                reason,
            } => self.close(*conn_id, *code, reason),
            Down::AuthClear => self.begin(kind::AUTH_CLEAR),
            Down::AuthSet {
                charger,
                hash,
                profile,
            } => {
                self.begin(kind::AUTH_SET);
                self.short(charger);
                self.short(hash);
                self.buf.push(*profile);
            }
            Down::TlsReload => self.begin(kind::TLS_RELOAD),
            Down::AuthDelete { charger } => {
                self.begin(kind::AUTH_DELETE);
                self.short(charger);
            }
            Down::AuthPolicy { accept_unknown } => {
                self.begin(kind::AUTH_POLICY);
                self.buf.push(*accept_unknown as u8);
            }
            Down::Accept { on } => {
                self.begin(kind::ACCEPT);
                self.buf.push(*on as u8);
            }
            Down::Barrier { seq } => {
                self.begin(kind::BARRIER);
                self.u64(*seq);
            }
            Down::Shutdown { code } => {
                self.begin(kind::SHUTDOWN);
                self.u16(*code);
            }
            Down::Admission(a) => {
                self.begin(kind::ADMISSION);
                for v in [
                    a.rate,
                    a.burst,
                    a.handshakes,
                    a.retry_max,
                    a.unknown_per_min,
                ] {
                    self.u32(v);
                }
            }
        }
    }

    pub fn send(&mut self, conn_id: u64, data: &[u8]) {
        self.begin(kind::SEND);
        self.u64(conn_id);
        self.long(data);
    }

    pub fn close(&mut self, conn_id: u64, code: u16, reason: &str) {
        self.begin(kind::CLOSE);
        self.u64(conn_id);
        self.u16(code);
        self.short(reason);
    }
}

/// Accumulates bytes from the link socket and yields whole batches.
#[derive(Default)]
pub struct LinkReader {
    buf: Vec<u8>,
    start: usize,
}

impl LinkReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room to read into: the caller reads into the returned slice, then calls [`LinkReader::filled`].
    pub fn spare(&mut self, at_least: usize) -> &mut [u8] {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        let len = self.buf.len();
        if self.buf.capacity() - len < at_least {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.buf.reserve(at_least);
        }
        let len = self.buf.len();
        let cap = self.buf.capacity();
        self.buf.resize(cap, 0);
        &mut self.buf[len..]
    }

    /// `n` bytes were read into the slice [`LinkReader::spare`] returned; `spare_len` is that slice's length.
    pub fn filled(&mut self, n: usize, spare_len: usize) {
        let new_len = self.buf.len() - spare_len + n;
        self.buf.truncate(new_len);
    }

    /// Append bytes (for tests and callers that already hold them).
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole batch, if one has arrived.
    pub fn next_batch(&mut self) -> Result<Option<Batch<'_>>, LinkError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(avail[..4].try_into().unwrap()) as usize;
        if len > MAX_BATCH {
            return Err(LinkError::Corrupt("batch longer than MAX_BATCH"));
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let from = self.start + 4;
        self.start += 4 + len;
        Ok(Some(Batch {
            data: &self.buf[from..from + len],
            pos: 0,
        }))
    }

    /// Bytes held, for memory accounting.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Drop the buffer's memory when nothing is pending.
    pub fn shrink_if_idle(&mut self) {
        if self.start == self.buf.len() && self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
            self.start = 0;
        }
    }
}

/// One batch's records, parsed lazily. Strings and payloads borrow from the reader's buffer.
pub struct Batch<'a> {
    data: &'a [u8],
    pos: usize,
}

/// A record from the control plane, borrowing its bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum DownRef<'a> {
    Send {
        conn_id: u64,
        data: &'a [u8],
    },
    Close {
        conn_id: u64,
        code: u16,
        reason: &'a str,
    },
    AuthClear,
    AuthSet {
        charger: &'a str,
        hash: &'a str,
        profile: u8,
    },
    AuthDelete {
        charger: &'a str,
    },
    AuthPolicy {
        accept_unknown: bool,
    },
    Accept {
        on: bool,
    },
    Barrier {
        seq: u64,
    },
    Shutdown {
        code: u16,
    },
    Admission(AdmissionShare),
    TlsReload,
}

/// A record from a worker, borrowing its bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum UpRef<'a> {
    Hello {
        pid: u32,
    },
    Connected {
        conn_id: u64,
        protocol: u8,
        profile: u8,
        charger: &'a str,
        peer: &'a str,
        at_us: u64,
    },
    Message {
        conn_id: u64,
        data: &'a [u8],
    },
    Disconnected {
        conn_id: u64,
        code: u16,
        reason: &'a str,
        at_us: u64,
    },
    Stats {
        connections: u32,
        paused: bool,
        heap_bytes: u64,
        counts: Counts,
    },
    Ack {
        seq: u64,
    },
    Pong {
        conn_id: u64,
        rtt_us: u32,
        at_us: u64,
    },
}

impl<'a> Batch<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LinkError> {
        if self.data.len() - self.pos < n {
            return Err(LinkError::Corrupt("record runs past its batch"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, LinkError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, LinkError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, LinkError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, LinkError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn short(&mut self) -> Result<&'a [u8], LinkError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn long(&mut self) -> Result<&'a [u8], LinkError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn text(&mut self) -> Result<&'a str, LinkError> {
        std::str::from_utf8(self.short()?).map_err(|_| LinkError::Corrupt("string is not UTF-8"))
    }

    /// The next record from the control plane, or None at the end of the batch.
    pub fn next_down(&mut self) -> Result<Option<DownRef<'a>>, LinkError> {
        if self.pos == self.data.len() {
            return Ok(None);
        }
        let r = match self.u8()? {
            kind::SEND => DownRef::Send {
                conn_id: self.u64()?,
                data: self.long()?,
            },
            kind::CLOSE => DownRef::Close {
                conn_id: self.u64()?,
                code: self.u16()?,
                reason: self.text()?,
            },
            kind::AUTH_CLEAR => DownRef::AuthClear,
            kind::AUTH_SET => DownRef::AuthSet {
                charger: self.text()?,
                hash: self.text()?,
                profile: self.u8()?,
            },
            kind::TLS_RELOAD => DownRef::TlsReload,
            kind::AUTH_DELETE => DownRef::AuthDelete {
                charger: self.text()?,
            },
            kind::AUTH_POLICY => DownRef::AuthPolicy {
                accept_unknown: self.u8()? != 0,
            },
            kind::ACCEPT => DownRef::Accept {
                on: self.u8()? != 0,
            },
            kind::BARRIER => DownRef::Barrier { seq: self.u64()? },
            kind::SHUTDOWN => DownRef::Shutdown { code: self.u16()? },
            kind::ADMISSION => DownRef::Admission(AdmissionShare {
                rate: self.u32()?,
                burst: self.u32()?,
                handshakes: self.u32()?,
                retry_max: self.u32()?,
                unknown_per_min: self.u32()?,
            }),
            _ => {
                return Err(LinkError::Corrupt(
                    "unknown record kind from the control plane",
                ))
            }
        };
        Ok(Some(r))
    }

    /// The next record from a worker, or None at the end of the batch.
    pub fn next_up(&mut self) -> Result<Option<UpRef<'a>>, LinkError> {
        if self.pos == self.data.len() {
            return Ok(None);
        }
        let r = match self.u8()? {
            kind::HELLO => UpRef::Hello { pid: self.u32()? },
            kind::CONNECTED => UpRef::Connected {
                conn_id: self.u64()?,
                protocol: self.u8()?,
                profile: self.u8()?,
                charger: self.text()?,
                peer: self.text()?,
                at_us: self.u64()?,
            },
            kind::MESSAGE => UpRef::Message {
                conn_id: self.u64()?,
                data: self.long()?,
            },
            kind::DISCONNECTED => UpRef::Disconnected {
                conn_id: self.u64()?,
                code: self.u16()?,
                reason: self.text()?,
                at_us: self.u64()?,
            },
            kind::STATS => UpRef::Stats {
                connections: self.u32()?,
                paused: self.u8()? != 0,
                heap_bytes: self.u64()?,
                counts: Counts {
                    upgrades: self.u64()?,
                    refused_rate: self.u64()?,
                    refused_handshakes: self.u64()?,
                    refused_auth: self.u64()?,
                    refused_unknown: self.u64()?,
                    refused_other: self.u64()?,
                    refused_throttled: self.u64()?,
                    refused_unknown_ids: self.u64()?,
                    closed_budget: self.u64()?,
                    closed_pending_calls: self.u64()?,
                    closed_msg_rate: self.u64()?,
                    refused_profile: self.u64()?,
                    tls_failed: self.u64()?,
                    tls_reloads: self.u64()?,
                },
            },
            kind::ACK => UpRef::Ack { seq: self.u64()? },
            kind::PONG => UpRef::Pong {
                conn_id: self.u64()?,
                rtt_us: self.u32()?,
                at_us: self.u64()?,
            },
            _ => return Err(LinkError::Corrupt("unknown record kind from a worker")),
        };
        Ok(Some(r))
    }
}

/// Connection ids: worker number (8 bits) | worker generation (16 bits) | sequence (40 bits).
///
/// The generation changes every time the control plane starts a worker in a slot and the sequence never
/// repeats inside one worker process, so an id is never reused while the control plane lives: a command for a
/// charger that reconnected elsewhere can never land on whoever now holds a recycled id.
pub mod conn_id {
    pub const SEQ_BITS: u32 = 40;
    pub const GEN_BITS: u32 = 16;

    pub fn make(worker: u8, generation: u16, seq: u64) -> u64 {
        ((worker as u64) << (SEQ_BITS + GEN_BITS))
            | ((generation as u64) << SEQ_BITS)
            | (seq & ((1 << SEQ_BITS) - 1))
    }
    pub fn worker(id: u64) -> u8 {
        (id >> (SEQ_BITS + GEN_BITS)) as u8
    }
    pub fn generation(id: u64) -> u16 {
        (id >> SEQ_BITS) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn roundtrip_down(records: &[Down]) -> Vec<Down> {
        let mut w = LinkWriter::new();
        for r in records {
            w.down(r);
        }
        w.seal();
        let bytes = w.pending().to_vec();
        let mut r = LinkReader::new();
        // Feed one byte at a time: batches must only appear once whole.
        let mut out = Vec::new();
        for b in bytes {
            r.extend(&[b]);
            while let Some(mut batch) = r.next_batch().unwrap() {
                while let Some(rec) = batch.next_down().unwrap() {
                    out.push(match rec {
                        DownRef::Send { conn_id, data } => Down::Send {
                            conn_id,
                            data: data.to_vec(),
                        },
                        DownRef::Close {
                            conn_id,
                            code,
                            reason,
                        } => Down::Close {
                            conn_id,
                            code,
                            reason: reason.into(),
                        },
                        DownRef::AuthClear => Down::AuthClear,
                        DownRef::AuthSet {
                            charger,
                            hash,
                            profile,
                        } => Down::AuthSet {
                            charger: charger.into(),
                            hash: hash.into(),
                            profile,
                        },
                        DownRef::TlsReload => Down::TlsReload,
                        DownRef::AuthDelete { charger } => Down::AuthDelete {
                            charger: charger.into(),
                        },
                        DownRef::AuthPolicy { accept_unknown } => {
                            Down::AuthPolicy { accept_unknown }
                        }
                        DownRef::Accept { on } => Down::Accept { on },
                        DownRef::Barrier { seq } => Down::Barrier { seq },
                        DownRef::Shutdown { code } => Down::Shutdown { code },
                        DownRef::Admission(a) => Down::Admission(a),
                    });
                }
            }
        }
        out
    }

    #[test]
    fn down_records_round_trip_split_at_every_byte() {
        let recs = vec![
            Down::Send {
                conn_id: 7,
                data: b"[3,\"1\",{}]".to_vec(),
            },
            Down::Close {
                conn_id: u64::MAX,
                code: codec::CLOSE_GOING_AWAY,
                reason: "bye".into(),
            },
            Down::AuthClear,
            Down::AuthSet {
                charger: "CP001".into(),
                hash: "sha256$00$ff".into(),
                profile: 3,
            },
            Down::TlsReload,
            Down::AuthDelete {
                charger: "CP002".into(),
            },
            Down::AuthPolicy {
                accept_unknown: true,
            },
            Down::Accept { on: false },
            Down::Barrier { seq: 42 },
            Down::Shutdown {
                code: codec::CLOSE_GOING_AWAY,
            },
            Down::Admission(AdmissionShare {
                rate: 2500,
                burst: 250,
                handshakes: u32::MAX,
                retry_max: 60,
                unknown_per_min: 600,
            }),
        ];
        assert_eq!(roundtrip_down(&recs), recs);
    }

    #[test]
    fn up_records_round_trip() {
        let recs = vec![
            Up::Hello { pid: 1234 },
            Up::Connected {
                conn_id: 1,
                protocol: PROTO_OCPP201,
                profile: 2,
                charger: "CP/é".into(),
                peer: "127.0.0.1:5".into(),
                at_us: u64::MAX - 1,
            },
            Up::Message {
                conn_id: 1,
                data: vec![b'x'; 300_000],
            },
            Up::Disconnected {
                conn_id: 1,
                code: codec::CLOSE_ABNORMAL,
                reason: "gone".into(),
                at_us: 12_345_678,
            },
            Up::Stats {
                connections: 9,
                paused: true,
                heap_bytes: 77,
                counts: Counts {
                    upgrades: 1,
                    refused_rate: 2,
                    refused_handshakes: 3,
                    refused_auth: 4,
                    refused_unknown: 5,
                    refused_other: u64::MAX,
                    refused_throttled: 6,
                    refused_unknown_ids: 7,
                    closed_budget: 7,
                    closed_pending_calls: 8,
                    closed_msg_rate: 9,
                    refused_profile: 10,
                    tls_failed: 11,
                    tls_reloads: 12,
                },
            },
            Up::Ack { seq: 3 },
            Up::Pong {
                conn_id: 8,
                rtt_us: u32::MAX,
                at_us: 99,
            },
        ];
        let mut w = LinkWriter::new();
        for r in &recs {
            w.up(r);
        }
        w.seal();
        let mut r = LinkReader::new();
        r.extend(w.pending());
        let mut got = Vec::new();
        let mut batches = 0;
        while let Some(mut batch) = r.next_batch().unwrap() {
            batches += 1;
            while let Some(rec) = batch.next_up().unwrap() {
                got.push(match rec {
                    UpRef::Hello { pid } => Up::Hello { pid },
                    UpRef::Connected {
                        conn_id,
                        protocol,
                        profile,
                        charger,
                        peer,
                        at_us,
                    } => Up::Connected {
                        conn_id,
                        protocol,
                        profile,
                        charger: charger.into(),
                        peer: peer.into(),
                        at_us,
                    },
                    UpRef::Message { conn_id, data } => Up::Message {
                        conn_id,
                        data: data.to_vec(),
                    },
                    UpRef::Disconnected {
                        conn_id,
                        code,
                        reason,
                        at_us,
                    } => Up::Disconnected {
                        conn_id,
                        code,
                        reason: reason.into(),
                        at_us,
                    },
                    UpRef::Stats {
                        connections,
                        paused,
                        heap_bytes,
                        counts,
                    } => Up::Stats {
                        connections,
                        paused,
                        heap_bytes,
                        counts,
                    },
                    UpRef::Ack { seq } => Up::Ack { seq },
                    UpRef::Pong {
                        conn_id,
                        rtt_us,
                        at_us,
                    } => Up::Pong {
                        conn_id,
                        rtt_us,
                        at_us,
                    },
                });
            }
        }
        assert_eq!(got, recs);
        // The 300 KB message overflows the batch target, so the records after it start a new batch.
        assert_eq!(batches, 2);
    }

    #[test]
    fn writer_consume_keeps_unsent_tail() {
        let mut w = LinkWriter::new();
        w.send(1, b"abc");
        w.seal();
        let all = w.pending().to_vec();
        w.consume(5);
        assert_eq!(w.pending(), &all[5..]);
        w.consume(all.len() - 5);
        assert!(w.is_empty());
    }

    #[test]
    fn corrupt_length_and_kind_are_errors() {
        let mut r = LinkReader::new();
        r.extend(&(MAX_BATCH as u32 + 1).to_le_bytes());
        assert!(r.next_batch().is_err());
        let mut r = LinkReader::new();
        r.extend(&[1, 0, 0, 0, 99]);
        let mut b = r.next_batch().unwrap().unwrap();
        assert!(b.next_down().is_err());
        let mut r = LinkReader::new();
        r.extend(&[3, 0, 0, 0, kind::SEND, 1, 2]);
        let mut b = r.next_batch().unwrap().unwrap();
        assert!(b.next_down().is_err(), "truncated record");
    }

    #[test]
    fn conn_ids_carry_worker_and_generation() {
        let id = conn_id::make(5, 700, 123_456);
        assert_eq!(conn_id::worker(id), 5);
        assert_eq!(conn_id::generation(id), 700);
        assert_ne!(id, conn_id::make(5, 701, 123_456));
    }
}
