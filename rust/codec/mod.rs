//! Sans-I/O WebSocket (RFC 6455) codec and HTTP/1.1 upgrade handshake: bytes in, events out.
//! No sockets, no pyo3; the gateway and the load generator drive it.

mod charger_id;
mod close;
mod decoder;
mod error;
mod frame;
mod handshake;
mod handshake_client;
mod mask;

#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_interop;
#[cfg(test)]
mod tests_prop;

pub use charger_id::{charger_id_from_path, MAX_CHARGER_ID_CHARS};
pub use close::{
    CLOSE_ABNORMAL, CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_INVALID_DATA, CLOSE_NORMAL,
    CLOSE_NO_STATUS, CLOSE_POLICY_VIOLATION, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED_DATA,
};
pub use decoder::{is_valid_close_code, Decoder, Event};
pub use error::{HandshakeError, ProtocolError};
pub use frame::{
    encode_close, encode_frame, FrameHeader, OpCode, Role, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN,
};
pub use handshake::{
    accept_key, parse_upgrade_request, response_101, response_error, UpgradeRequest, MAX_HEAD,
};
pub use handshake_client::{
    client_request, key_from_nonce, parse_upgrade_response, UpgradeResponse,
};
pub use mask::apply_mask;
