//! The receiving half of a WebSocket connection: bytes in, events out (sans-I/O, like wsproto).
//!
//! Built for 100k mostly idle connections that exchange small OCPP messages: frames that arrive
//! whole in a read are unmasked in place and handed out borrowed from the caller's buffer, and the
//! decoder keeps heap memory only while a frame or a fragmented message is cut by a read.

use std::mem;

use super::error::ProtocolError;
use super::frame::{header_len, FrameHeader, OpCode, Role};
use super::mask::apply_mask;

/// One thing the peer said. Borrowed from the buffer passed to [`Decoder::feed`] or from the
/// decoder, so it lives only for the duration of the sink call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message, validated as UTF-8 (fragments are joined first).
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// The peer's close frame: `None` and `""` when its payload was empty. The decoder ignores any
    /// bytes after it (RFC 6455 §5.5.1: the peer must send nothing after a close frame).
    Close(Option<u16>, &'a str),
}

/// Type of the fragmented message in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// Incremental frame decoder and message reassembler for one connection.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    max_message: usize,
    /// Raw (still masked) bytes of a frame cut short by a read: header, then payload so far.
    partial: Vec<u8>,
    /// Unmasked payload of the fragmented message in progress.
    message: Vec<u8>,
    /// `Some` while a fragmented message is in progress (even while `message` is still empty).
    kind: Option<Kind>,
    closed: bool,
    error: Option<ProtocolError>,
}

impl Decoder {
    /// A decoder for the given role that fails with 1009 on any message (all fragments together)
    /// larger than `max_message` bytes. Allocates nothing.
    pub fn new(role: Role, max_message: usize) -> Self {
        Self {
            role,
            max_message,
            partial: Vec::new(),
            message: Vec::new(),
            kind: None,
            closed: false,
            error: None,
        }
    }

    /// Decode `data`, calling `sink` for each event in order.
    ///
    /// Masked frames are unmasked in place in `data`. Frames that are complete inside `data` are
    /// delivered borrowed from it with no copy; only a trailing partial frame, or the fragments of
    /// a message in progress, are copied into the decoder. Events before an error have been
    /// delivered when it returns.
    ///
    /// Errors are fatal: close the connection with `err.close_code`. Every later call returns the
    /// same error. After a close frame has been delivered, further bytes are ignored.
    pub fn feed(
        &mut self,
        data: &mut [u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let result = self.feed_inner(data, sink);
        if let Err(err) = result {
            self.error = Some(err);
            self.release();
        }
        result
    }

    /// Bytes held for a partial frame or an unfinished fragmented message; 0 when idle.
    pub fn buffered_bytes(&self) -> usize {
        self.partial.len() + self.message.len()
    }

    /// Heap capacity held by the decoder (for the gateway's memory statistics); 0 when idle.
    pub fn heap_bytes(&self) -> usize {
        self.partial.capacity() + self.message.capacity()
    }

    /// Whether the peer's close frame has been delivered.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn release(&mut self) {
        // `Vec::new()` rather than `clear()`: an idle connection must not keep the capacity.
        self.partial = Vec::new();
        self.message = Vec::new();
        self.kind = None;
    }

    fn feed_inner(
        &mut self,
        mut data: &mut [u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        if !self.partial.is_empty() {
            let used = self.complete_partial(data, sink)?;
            data = &mut data[used..];
        }
        while !self.closed && !data.is_empty() {
            let Some((header, header_len)) = FrameHeader::parse(data)? else {
                // The prefix parsed so far is valid; keep it until the rest of the header comes.
                self.partial.extend_from_slice(data);
                return Ok(());
            };
            self.check_header(&header)?;
            // check_header bounded the payload by max_message or 125 (control): it fits a usize.
            let total = header_len + header.payload_len as usize;
            if data.len() < total {
                self.partial.extend_from_slice(data);
                return Ok(());
            }
            let (frame, rest) = mem::take(&mut data).split_at_mut(total);
            let payload = &mut frame[header_len..];
            if let Some(key) = header.mask {
                apply_mask(payload, key, 0);
            }
            self.on_frame(&header, payload, sink)?;
            data = rest;
        }
        Ok(())
    }

    /// Move bytes from `data` into `partial` until its frame is complete, then decode it. Takes
    /// exactly what that frame needs (never the start of the next one); returns the count taken.
    fn complete_partial(
        &mut self,
        data: &[u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<usize, ProtocolError> {
        let mut used = 0;
        let (header, hlen) = loop {
            if let Some(parsed) = FrameHeader::parse(&self.partial)? {
                break parsed;
            }
            // At most two rounds: the second byte tells the exact header length.
            let take = (header_len(&self.partial) - self.partial.len()).min(data.len() - used);
            if take == 0 {
                return Ok(used);
            }
            self.partial.extend_from_slice(&data[used..used + take]);
            used += take;
        };
        // Re-checking a header stored complete is harmless: its state has not changed since.
        self.check_header(&header)?;
        let total = hlen + header.payload_len as usize;
        // Grow with the bytes actually received rather than reserving `total` up front: a peer
        // announcing a large frame and then stalling must not pin max_message bytes per connection;
        // but never past `total`, which doubling alone would overshoot by up to 2x.
        let take = (total - self.partial.len()).min(data.len() - used);
        extend_capped(&mut self.partial, &data[used..used + take], total);
        used += take;
        if self.partial.len() == total {
            // Taken out so the payload can be lent to the sink while `self` changes; freed after.
            let mut frame = mem::take(&mut self.partial);
            let payload = &mut frame[hlen..];
            if let Some(key) = header.mask {
                apply_mask(payload, key, 0);
            }
            self.on_frame(&header, payload, sink)?;
        }
        Ok(used)
    }

    /// All that can be judged from a header, so bad frames fail before their payload is buffered.
    fn check_header(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        header.check_role(self.role)?;
        let so_far = match (header.opcode, self.kind) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UNEXPECTED_CONTINUATION),
            (OpCode::Continuation, Some(_)) => self.message.len() as u64,
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::EXPECTED_CONTINUATION)
            }
            (OpCode::Text | OpCode::Binary, None) => 0,
            _ => return Ok(()),
        };
        if so_far.saturating_add(header.payload_len) > self.max_message as u64 {
            return Err(ProtocolError::MESSAGE_TOO_BIG);
        }
        Ok(())
    }

    /// Deliver one complete, checked, unmasked frame.
    fn on_frame(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), ProtocolError> {
        match header.opcode {
            OpCode::Text | OpCode::Binary => {
                let kind = if header.opcode == OpCode::Text {
                    Kind::Text
                } else {
                    Kind::Binary
                };
                if header.fin {
                    deliver(kind, payload, sink)?;
                } else {
                    self.kind = Some(kind);
                    extend_capped(&mut self.message, payload, self.max_message);
                }
            }
            OpCode::Continuation => {
                extend_capped(&mut self.message, payload, self.max_message);
                if header.fin {
                    // Taken, so the buffer is freed once delivered.
                    let message = mem::take(&mut self.message);
                    let kind = self.kind.take().expect("checked in check_header");
                    deliver(kind, &message, sink)?;
                }
            }
            OpCode::Ping => sink(Event::Ping(payload)),
            OpCode::Pong => sink(Event::Pong(payload)),
            OpCode::Close => {
                let (code, reason) = parse_close(payload)?;
                self.closed = true;
                self.release();
                sink(Event::Close(code, reason));
            }
        }
        Ok(())
    }
}

/// Append `bytes` to `buf`, doubling its capacity as `Vec` does (amortised O(1) per byte however
/// the peer cuts its frames) but never beyond `limit`, the most the buffer can ever hold (a frame's
/// total length, or max_message for a reassembled message, both checked in `check_header` before
/// any byte is buffered). Plain doubling would let a message just over half the limit hold twice
/// the limit: 2 MiB for a 1 MiB maximum, per connection.
fn extend_capped(buf: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    let need = buf.len() + bytes.len();
    if need > buf.capacity() {
        let target = buf
            .capacity()
            .saturating_mul(2)
            .clamp(need, limit.max(need));
        buf.reserve_exact(target - buf.len());
    }
    buf.extend_from_slice(bytes);
}

fn deliver(
    kind: Kind,
    payload: &[u8],
    sink: &mut dyn FnMut(Event<'_>),
) -> Result<(), ProtocolError> {
    match kind {
        // Validated on the whole message: a fragment may end inside a multi-byte character.
        Kind::Text => sink(Event::Text(
            simdutf8::basic::from_utf8(payload).map_err(|_| ProtocolError::INVALID_UTF8)?,
        )),
        Kind::Binary => sink(Event::Binary(payload)),
    }
    Ok(())
}

/// RFC 6455 §5.5.1: empty, or a 2-byte code followed by a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<(Option<u16>, &str), ProtocolError> {
    match payload {
        [] => Ok((None, "")),
        [_] => Err(ProtocolError::CLOSE_PAYLOAD_ONE_BYTE),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::INVALID_CLOSE_CODE);
            }
            let reason = simdutf8::basic::from_utf8(reason)
                .map_err(|_| ProtocolError::INVALID_UTF8_CLOSE_REASON)?;
            Ok((Some(code), reason))
        }
    }
}

/// Codes a peer may send (RFC 6455 §7.4 and the IANA registry): 1004-1006 and 1015 are reserved or
/// "must not be sent"; 1012-1014 were registered later and are accepted; 3000-4999 are for
/// libraries and applications.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::codec::frame::encode_frame;

    /// Owned copy of an event, for comparing.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Ev {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<u16>, String),
    }

    impl From<Event<'_>> for Ev {
        fn from(e: Event<'_>) -> Self {
            match e {
                Event::Text(s) => Ev::Text(s.to_owned()),
                Event::Binary(b) => Ev::Binary(b.to_vec()),
                Event::Ping(b) => Ev::Ping(b.to_vec()),
                Event::Pong(b) => Ev::Pong(b.to_vec()),
                Event::Close(c, r) => Ev::Close(c, r.to_owned()),
            }
        }
    }

    pub(crate) fn decode(dec: &mut Decoder, bytes: &[u8]) -> Result<Vec<Ev>, ProtocolError> {
        let mut out = Vec::new();
        let mut buf = bytes.to_vec();
        dec.feed(&mut buf, &mut |e| out.push(Ev::from(e)))?;
        Ok(out)
    }

    fn decode_all(role: Role, bytes: &[u8]) -> Vec<Ev> {
        let mut dec = Decoder::new(role, 1 << 20);
        let events = decode(&mut dec, bytes).expect("valid stream");
        assert_eq!((dec.buffered_bytes(), dec.heap_bytes()), (0, 0));
        events
    }

    fn first_error(role: Role, max: usize, bytes: &[u8]) -> ProtocolError {
        decode(&mut Decoder::new(role, max), bytes).unwrap_err()
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    #[test]
    fn rfc_6455_section_5_7_examples() {
        let hello = [Ev::Text("Hello".into())];
        assert_eq!(
            decode_all(Role::Client, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
            hello
        );
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(decode_all(Role::Server, &masked), hello);
        let fragmented = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        assert_eq!(decode_all(Role::Client, &fragmented), hello);
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(
            decode_all(Role::Client, &ping),
            [Ev::Ping(b"Hello".to_vec())]
        );
        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            decode_all(Role::Server, &pong),
            [Ev::Pong(b"Hello".to_vec())]
        );
        for (len, header) in [
            (256, vec![0x82, 0x7E, 0x01, 0x00]),
            (65536, vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = [header, body.clone()].concat();
            assert_eq!(decode_all(Role::Client, &frame), [Ev::Binary(body.clone())]);
            let mut masked = Vec::new();
            encode_frame(&mut masked, OpCode::Binary, &body, true, Some(KEY));
            assert_eq!(decode_all(Role::Server, &masked), [Ev::Binary(body)]);
        }
    }

    #[test]
    fn whole_frames_are_borrowed_from_the_input() {
        let mut bytes = Vec::new();
        encode_frame(
            &mut bytes,
            OpCode::Text,
            b"[2,\"1\",\"Heartbeat\",{}]",
            true,
            Some(KEY),
        );
        let range = bytes.as_ptr_range();
        let mut seen = false;
        let mut dec = Decoder::new(Role::Server, 1024);
        dec.feed(&mut bytes, &mut |e| {
            let Event::Text(s) = e else { panic!("{e:?}") };
            assert!(range.contains(&s.as_ptr()), "copied");
            seen = true;
        })
        .unwrap();
        assert!(seen);
        assert_eq!(dec.heap_bytes(), 0);
    }

    #[test]
    fn buffers_are_released_after_partial_and_fragmented_messages() {
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, OpCode::Text, &[b'a'; 3000], false, Some(KEY));
        encode_frame(&mut bytes, OpCode::Ping, b"p", true, Some(KEY));
        encode_frame(
            &mut bytes,
            OpCode::Continuation,
            &[b'b'; 3000],
            true,
            Some(KEY),
        );
        let mut dec = Decoder::new(Role::Server, 1 << 20);
        let mut events = Vec::new();
        let (a, b) = bytes.split_at_mut(4000);
        dec.feed(a, &mut |e| events.push(Ev::from(e))).unwrap();
        assert!(dec.buffered_bytes() > 0 && dec.heap_bytes() > 0);
        dec.feed(b, &mut |e| events.push(Ev::from(e))).unwrap();
        let text = "a".repeat(3000) + &"b".repeat(3000);
        assert_eq!(events, [Ev::Ping(b"p".to_vec()), Ev::Text(text)]);
        assert_eq!((dec.buffered_bytes(), dec.heap_bytes()), (0, 0));
    }

    #[test]
    fn control_frames_between_fragments() {
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, OpCode::Binary, b"ab", false, None);
        encode_frame(&mut bytes, OpCode::Ping, b"1", true, None);
        encode_frame(&mut bytes, OpCode::Continuation, b"", false, None);
        encode_frame(&mut bytes, OpCode::Pong, b"2", true, None);
        encode_frame(&mut bytes, OpCode::Continuation, b"cd", true, None);
        let expected = [
            Ev::Ping(b"1".to_vec()),
            Ev::Pong(b"2".to_vec()),
            Ev::Binary(b"abcd".to_vec()),
        ];
        assert_eq!(decode_all(Role::Client, &bytes), expected);
    }

    #[test]
    fn close_frames() {
        assert_eq!(
            decode_all(Role::Client, &[0x88, 0x00]),
            [Ev::Close(None, String::new())]
        );
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
        ] {
            let mut bytes = Vec::new();
            crate::codec::frame::encode_close(&mut bytes, code, "bye ✓", Some(KEY));
            assert_eq!(
                decode_all(Role::Server, &bytes),
                [Ev::Close(Some(code), "bye ✓".into())]
            );
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let bytes = [0x88, 0x02, (code >> 8) as u8, code as u8];
            assert_eq!(
                first_error(Role::Client, 10, &bytes),
                ProtocolError::INVALID_CLOSE_CODE,
                "{code}"
            );
        }
    }

    /// Found by the fuzzer (bench/fuzz/corpus/server/regress-server-max4096-doubling.bin): fed a byte
    /// at a time, a 5 KB stream held 12 KiB with max_message 4096, as `Vec` doubling overshot the
    /// frame and the message. The buffers now never grow past what they can hold.
    #[test]
    fn buffers_never_grow_past_the_frame_or_max_message() {
        const MAX: usize = 4096;
        let mut bytes = Vec::new();
        for (i, n) in [1000, 1000, 1000, 1096].into_iter().enumerate() {
            let op = if i == 0 {
                OpCode::Text
            } else {
                OpCode::Continuation
            };
            encode_frame(&mut bytes, op, &vec![b'a'; n], i == 3, Some(KEY));
        }
        let mut dec = Decoder::new(Role::Server, MAX);
        let mut delivered = 0;
        for chunk in bytes.chunks_mut(1) {
            dec.feed(chunk, &mut |e| {
                let Event::Text(t) = e else { panic!("{e:?}") };
                delivered += t.len();
            })
            .unwrap();
            // The message reassembled so far (at most MAX) and the frame cut by the read (its
            // header and at most 1096 bytes).
            assert!(
                dec.heap_bytes() <= MAX + 1096 + 8,
                "{} bytes held for {} buffered",
                dec.heap_bytes(),
                dec.buffered_bytes()
            );
        }
        assert_eq!(delivered, MAX);
        assert_eq!(dec.heap_bytes(), 0);
    }

    #[test]
    fn bytes_after_close_are_ignored() {
        let mut bytes = vec![0x88, 0x02, 0x03, 0xE8];
        encode_frame(&mut bytes, OpCode::Text, b"late", true, None);
        bytes.extend_from_slice(&[0xFF, 0xFF]); // garbage too
        let mut dec = Decoder::new(Role::Client, 100);
        assert_eq!(
            decode(&mut dec, &bytes).unwrap(),
            [Ev::Close(Some(1000), String::new())]
        );
        assert!(dec.is_closed());
        assert_eq!(decode(&mut dec, b"\x81\x01x").unwrap(), []);
        assert_eq!(dec.heap_bytes(), 0);
    }
}
