//! Errors a peer can cause, carrying what goes on the wire.
//!
//! Both types are *remote* errors: the peer broke the protocol. Our own misuse of the encoder (say
//! a ping payload over 125 bytes) is a programmer error and panics in debug builds instead of
//! returning a value. As in wsproto, the error carries the close code / HTTP status to send, so the
//! gateway maps it to the wire in one place without a table of its own.

use thiserror::Error;

use super::close::{CLOSE_INVALID_DATA, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG};

/// A WebSocket protocol violation by the peer.
///
/// **Fatal**: the connection cannot continue. Send a close frame with `close_code` (and `reason`,
/// which is short, ASCII and fits a close frame) and drop the connection. A `Decoder` that
/// returned one keeps returning the same value from every later `feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("websocket protocol error {close_code}: {reason}")]
pub struct ProtocolError {
    pub close_code: u16,
    pub reason: &'static str,
}

impl ProtocolError {
    const fn protocol(reason: &'static str) -> Self {
        Self {
            close_code: CLOSE_PROTOCOL_ERROR,
            reason,
        }
    }

    // Every error the codec can produce is one of the constants below, so tests can enumerate them
    // and the reasons stay stable for logs and dashboards.
    pub const RESERVED_BITS: Self = Self::protocol("reserved bits set");
    pub const UNKNOWN_OPCODE: Self = Self::protocol("unknown opcode");
    pub const UNMASKED_FROM_CLIENT: Self = Self::protocol("unmasked frame from client");
    pub const MASKED_FROM_SERVER: Self = Self::protocol("masked frame from server");
    pub const CONTROL_TOO_LONG: Self = Self::protocol("control frame too long");
    pub const CONTROL_FRAGMENTED: Self = Self::protocol("fragmented control frame");
    pub const LENGTH_OVERFLOW: Self = Self::protocol("frame length has its top bit set");
    pub const UNEXPECTED_CONTINUATION: Self =
        Self::protocol("continuation without a message in progress");
    pub const EXPECTED_CONTINUATION: Self =
        Self::protocol("new message inside a fragmented message");
    pub const CLOSE_PAYLOAD_ONE_BYTE: Self = Self::protocol("close payload of one byte");
    pub const INVALID_CLOSE_CODE: Self = Self::protocol("invalid close code");
    pub const INVALID_UTF8: Self = Self {
        close_code: CLOSE_INVALID_DATA,
        reason: "invalid utf-8",
    };
    pub const INVALID_UTF8_CLOSE_REASON: Self = Self {
        close_code: CLOSE_INVALID_DATA,
        reason: "invalid utf-8 in close reason",
    };
    pub const MESSAGE_TOO_BIG: Self = Self {
        close_code: CLOSE_TOO_BIG,
        reason: "message too big",
    };

    /// All errors the codec can return (used by tests to prove each one is reachable).
    pub const ALL: [Self; 14] = [
        Self::RESERVED_BITS,
        Self::UNKNOWN_OPCODE,
        Self::UNMASKED_FROM_CLIENT,
        Self::MASKED_FROM_SERVER,
        Self::CONTROL_TOO_LONG,
        Self::CONTROL_FRAGMENTED,
        Self::LENGTH_OVERFLOW,
        Self::UNEXPECTED_CONTINUATION,
        Self::EXPECTED_CONTINUATION,
        Self::CLOSE_PAYLOAD_ONE_BYTE,
        Self::INVALID_CLOSE_CODE,
        Self::INVALID_UTF8,
        Self::INVALID_UTF8_CLOSE_REASON,
        Self::MESSAGE_TOO_BIG,
    ];
}

/// An HTTP upgrade that cannot succeed.
///
/// Server side (`parse_upgrade_request`, `charger_id_from_path`): **fatal** to the handshake.
/// Answer with [`HandshakeError::write_response`] (status, reason as the one-line body, plus any
/// header the status requires) and close the socket.
///
/// Client side (`parse_upgrade_response`): **fatal** to the attempt; `status` is the status the
/// server sent (101 when its accept key or upgrade headers were wrong) or 0 when the response was
/// not parseable HTTP. A well-formed non-101 answer is not an error: it comes back as an
/// `UpgradeResponse` for the caller to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("handshake failed: {status} {reason}")]
pub struct HandshakeError {
    pub status: u16,
    pub reason: &'static str,
}

impl HandshakeError {
    pub const fn new(status: u16, reason: &'static str) -> Self {
        Self { status, reason }
    }

    /// Headers the status obliges us to send: 426 names the version we speak (RFC 6455 §4.4) and
    /// 405 the method we allow (RFC 9110 §15.5.6).
    pub fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self.status {
            426 => &[("Sec-WebSocket-Version", "13")],
            405 => &[("Allow", "GET")],
            _ => &[],
        }
    }

    /// Append the full HTTP error response for this error to `out`.
    pub fn write_response(&self, out: &mut Vec<u8>) {
        super::handshake::response_error(out, self.status, self.reason, self.extra_headers());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_a_close_frame_and_are_distinct() {
        for (i, e) in ProtocolError::ALL.iter().enumerate() {
            assert!(e.reason.len() <= 123 && e.reason.is_ascii(), "{e}");
            for other in &ProtocolError::ALL[i + 1..] {
                assert_ne!(e.reason, other.reason);
            }
        }
    }

    #[test]
    fn display() {
        assert_eq!(
            ProtocolError::MESSAGE_TOO_BIG.to_string(),
            "websocket protocol error 1009: message too big"
        );
        assert_eq!(
            HandshakeError::new(404, "unknown path").to_string(),
            "handshake failed: 404 unknown path"
        );
    }
}
