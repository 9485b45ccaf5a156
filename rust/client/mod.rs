//! What every client engine of ampgate (the fleet simulator, and the load generator while it remains) shares:
//! the non-blocking connect from a chosen source address, the upgrade, the write queue ([`net`]), the latency
//! histogram, the protocol a connection speaks and the engine's errors. Each engine keeps its own state
//! machine and its own accounting.

mod error;
mod histogram;
pub(crate) mod net;
mod protocol;

pub use error::ClientError;
pub use histogram::Histogram;
pub use protocol::Protocol;
