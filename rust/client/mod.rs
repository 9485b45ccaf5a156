//! The client side of ampgate's connections, as the fleet simulator (rust/sim/) uses it:
//! the non-blocking connect from a chosen source address, the upgrade, the write queue ([`net`]), TLS for
//! `wss://` ([`tls`], [`stream`]), the latency histogram, the protocol a connection speaks and the engine's
//! errors. The simulator keeps its own state machine and accounting on top.

mod error;
mod histogram;
pub(crate) mod net;
mod protocol;
pub(crate) mod stream;
pub mod tls;

pub use error::ClientError;
pub use histogram::Histogram;
pub use protocol::Protocol;
