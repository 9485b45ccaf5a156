//! Frame headers (RFC 6455 §5.2): parsing with early validation, and encoding of whole frames.

use super::error::ProtocolError;
use super::mask::apply_mask;

/// The longest header: 2 bytes, a 64-bit length and a mask key.
pub const MAX_HEADER_LEN: usize = 14;
/// RFC 6455 §5.5: control frames carry at most 125 payload bytes.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Which end of the connection we are; it decides whether incoming frames must be masked (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We accept connections: every incoming frame must be masked.
    Server,
    /// We opened the connection: incoming frames must not be masked.
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    /// The opcode for the low nibble of the first header byte; `None` for the reserved values.
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    pub const fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// A parsed, validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parse the header at the start of `buf`.
    ///
    /// `Ok(None)`: more bytes are needed. `Ok(Some((header, header_len)))`: the payload starts at
    /// `header_len`. Errors are reported as soon as the offending byte is present (a bad first byte
    /// fails with a 1-byte buffer), so a peer cannot make us wait for the rest of a header we will
    /// reject anyway. Every error is a 1002. Role-independent: the mask rule is
    /// [`FrameHeader::check_role`].
    ///
    /// Non-minimal length encodings (say 5 written in 64 bits) are accepted: RFC 6455 says "the
    /// minimal number of bytes MUST be used" to the sender but gives the receiver no reason to fail
    /// on them, and tungstenite and browsers accept them too.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        // No extension is ever negotiated, so all three RSV bits must be clear (§5.2).
        if b0 & 0x70 != 0 {
            return Err(ProtocolError::RESERVED_BITS);
        }
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::UNKNOWN_OPCODE)?;
        let fin = b0 & 0x80 != 0;
        if opcode.is_control() && !fin {
            return Err(ProtocolError::CONTROL_FRAGMENTED);
        }
        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        let len7 = b1 & 0x7F;
        if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(ProtocolError::CONTROL_TOO_LONG);
        }
        if len7 == 127 && buf.get(2).is_some_and(|b| b & 0x80 != 0) {
            return Err(ProtocolError::LENGTH_OVERFLOW);
        }
        let header_len = header_len(buf);
        if buf.len() < header_len {
            return Ok(None);
        }
        let (payload_len, mask_at) = match len7 {
            126 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
            127 => (
                u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")),
                10,
            ),
            n => (u64::from(n), 2),
        };
        let mask = (b1 & 0x80 != 0).then(|| {
            [
                buf[mask_at],
                buf[mask_at + 1],
                buf[mask_at + 2],
                buf[mask_at + 3],
            ]
        });
        Ok(Some((
            Self {
                fin,
                opcode,
                mask,
                payload_len,
            },
            header_len,
        )))
    }

    /// RFC 6455 §5.1: a server MUST close on an unmasked frame, a client on a masked one.
    pub fn check_role(&self, role: Role) -> Result<(), ProtocolError> {
        match (role, self.mask.is_some()) {
            (Role::Server, false) => Err(ProtocolError::UNMASKED_FROM_CLIENT),
            (Role::Client, true) => Err(ProtocolError::MASKED_FROM_SERVER),
            _ => Ok(()),
        }
    }
}

/// Header length implied by the bytes seen so far: exact once the second byte is known, else 2 (the
/// least any header needs). The decoder uses it to take exactly one header's worth of a new read.
pub(crate) fn header_len(buf: &[u8]) -> usize {
    match buf.get(1) {
        None => 2,
        Some(&b1) => {
            let ext = match b1 & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
        }
    }
}

/// Append one frame to `out`: header, then `payload` masked with `mask` when given (a client must
/// mask every frame, a server must not; see [`Role`]). Lengths use the minimal encoding.
///
/// Control frames must have `fin` set and at most 125 payload bytes: breaking that is a programmer
/// error, checked in debug builds.
pub fn encode_frame(
    out: &mut Vec<u8>,
    op: OpCode,
    payload: &[u8],
    fin: bool,
    mask: Option<[u8; 4]>,
) {
    debug_assert!(
        !op.is_control() || (fin && payload.len() <= MAX_CONTROL_PAYLOAD),
        "bad control frame"
    );
    out.reserve(MAX_HEADER_LEN + payload.len());
    out.push(if fin { 0x80 } else { 0 } | op.as_u8());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], key, 0);
        }
        None => out.extend_from_slice(payload),
    }
}

/// Append a close frame with `code` and `reason`. The reason is cut to the 123 bytes a close frame
/// has room for, at a character boundary so it stays valid UTF-8 (else a peer fails us with 1007).
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str, mask: Option<[u8; 4]>) {
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
    encode_frame(out, OpCode::Close, &payload[..2 + cut], true, mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(buf: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::parse(buf).expect("valid").expect("complete")
    }

    #[test]
    fn rfc_examples_headers() {
        // §5.7 single-frame unmasked text "Hello".
        let (h, n) = parse_ok(&[0x81, 0x05]);
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len, n),
            (true, OpCode::Text, None, 5, 2)
        );
        // Masked "Hello".
        let (h, n) = parse_ok(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!((h.mask, n), (Some([0x37, 0xfa, 0x21, 0x3d]), 6));
        // Fragmented: first frame not final, then a final continuation.
        assert!(!parse_ok(&[0x01, 0x03]).0.fin);
        assert_eq!(parse_ok(&[0x80, 0x02]).0.opcode, OpCode::Continuation);
        // 256 bytes with a 16-bit length, 64 KiB with a 64-bit length.
        let (h, n) = parse_ok(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
        let h64 = [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0];
        assert_eq!(
            parse_ok(&h64),
            (
                FrameHeader {
                    fin: true,
                    opcode: OpCode::Binary,
                    mask: None,
                    payload_len: 65536
                },
                10
            )
        );
    }

    #[test]
    fn every_prefix_of_a_header_needs_more() {
        let full = [0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0, 0, 1, 2, 3, 4];
        for n in 0..full.len() {
            assert_eq!(FrameHeader::parse(&full[..n]), Ok(None), "prefix {n}");
            assert!(header_len(&full[..n]) > n);
        }
        assert_eq!(parse_ok(&full).1, MAX_HEADER_LEN);
        assert_eq!(header_len(&full), MAX_HEADER_LEN);
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        assert_eq!(parse_ok(&[0x82, 0x7E, 0x00, 0x05]).0.payload_len, 5);
        assert_eq!(
            parse_ok(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x05])
                .0
                .payload_len,
            5
        );
    }

    #[test]
    fn errors_are_early() {
        let err = |b: &[u8]| FrameHeader::parse(b).unwrap_err();
        assert_eq!(err(&[0xC1]), ProtocolError::RESERVED_BITS);
        assert_eq!(err(&[0xA1]), ProtocolError::RESERVED_BITS);
        assert_eq!(err(&[0x91]), ProtocolError::RESERVED_BITS);
        for op in [0x3, 0x7, 0xB, 0xF] {
            assert_eq!(err(&[0x80 | op]), ProtocolError::UNKNOWN_OPCODE);
        }
        assert_eq!(err(&[0x09]), ProtocolError::CONTROL_FRAGMENTED);
        assert_eq!(err(&[0x89, 0x7E]), ProtocolError::CONTROL_TOO_LONG);
        assert_eq!(err(&[0x88, 0xFF]), ProtocolError::CONTROL_TOO_LONG);
        assert_eq!(err(&[0x82, 0x7F, 0x80]), ProtocolError::LENGTH_OVERFLOW);
        // Top bit clear is fine even when huge; the decoder's size limit deals with it.
        assert_eq!(
            parse_ok(&[0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
                .0
                .payload_len,
            i64::MAX as u64
        );
    }

    #[test]
    fn role_rules() {
        let masked = parse_ok(&[0x81, 0x80, 1, 2, 3, 4]).0;
        let plain = parse_ok(&[0x81, 0x00]).0;
        assert_eq!(masked.check_role(Role::Server), Ok(()));
        assert_eq!(plain.check_role(Role::Client), Ok(()));
        assert_eq!(
            plain.check_role(Role::Server),
            Err(ProtocolError::UNMASKED_FROM_CLIENT)
        );
        assert_eq!(
            masked.check_role(Role::Client),
            Err(ProtocolError::MASKED_FROM_SERVER)
        );
    }

    #[test]
    fn encode_rfc_examples() {
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Text, b"Hello", true, None);
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        encode_frame(
            &mut out,
            OpCode::Text,
            b"Hello",
            true,
            Some([0x37, 0xfa, 0x21, 0x3d]),
        );
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        out.clear();
        encode_frame(&mut out, OpCode::Binary, &[0; 256], true, None);
        assert_eq!(out[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(out.len(), 4 + 256);
        out.clear();
        encode_frame(&mut out, OpCode::Binary, &vec![0; 65536], true, None);
        assert_eq!(out[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0]);
        out.clear();
        encode_frame(&mut out, OpCode::Binary, &[0; 65535], false, None);
        assert_eq!(out[..4], [0x02, 0x7E, 0xFF, 0xFF]);
    }

    #[test]
    fn close_reason_is_truncated_on_a_char_boundary() {
        let mut out = Vec::new();
        encode_close(&mut out, 1000, "", None);
        assert_eq!(out, [0x88, 0x02, 0x03, 0xE8]);
        // 62 two-byte chars = 124 bytes: only 61 chars (122 bytes) fit in the 123 available.
        let reason = "é".repeat(62);
        out.clear();
        encode_close(&mut out, 1001, &reason, Some([9, 8, 7, 6]));
        let (h, n) = parse_ok(&out);
        assert_eq!(h.payload_len, 124);
        let mut payload = out[n..].to_vec();
        apply_mask(&mut payload, [9, 8, 7, 6], 0);
        assert_eq!(&payload[..2], &1001u16.to_be_bytes());
        assert_eq!(std::str::from_utf8(&payload[2..]).unwrap(), "é".repeat(61));
        out.clear();
        encode_close(&mut out, 1000, &"a".repeat(200), None);
        assert_eq!(out.len(), 2 + 125);
    }
}
