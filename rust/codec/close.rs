//! Close codes (RFC 6455 §7.4.1 and the IANA registry) that ampgate sends, reports or expects.
//!
//! Every close code the gateway, the load generator and the bindings use is named here, so a code on the wire
//! can be traced to the one place that says what it means. 1005 and 1006 never go on the wire: they are what
//! a side *reports* when the peer's close frame had no code, or when there was no close frame at all.

/// 1000: the purpose of the connection is fulfilled (a clean close from either side).
pub const CLOSE_NORMAL: u16 = 1000;
/// 1001: the endpoint is going away (server shutdown, a worker losing its control plane).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// 1002: the peer broke RFC 6455 framing or sequencing (or, OCPP-J 1.6, offered no subprotocol we speak).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// 1003: a data type the endpoint cannot accept (OCPP-J is text only, so a binary frame).
pub const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
/// 1005: reported (never sent) when a close frame carried no code.
pub const CLOSE_NO_STATUS: u16 = 1005;
/// 1006: reported (never sent) when the connection ended without a close frame (EOF, reset, ping timeout).
pub const CLOSE_ABNORMAL: u16 = 1006;
/// 1007: a text message or close reason is not valid UTF-8.
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// 1008: a policy violation (the charger does not read, so its write queue hit its bound).
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
/// 1009: a message is larger than the decoder's `max_message`.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// 1011: the server hit an unexpected condition.
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;
