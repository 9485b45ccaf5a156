//! Errors of the gateway's own machinery (worker link, sockets). Protocol errors of a charger's connection are
//! the codec's [`crate::codec::ProtocolError`] and [`crate::codec::HandshakeError`]: they end one connection and
//! never the worker.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LinkError {
    /// Fatal for the link: the peer sent bytes that are not a batch. Only a bug or a foreign process does this.
    #[error("worker link corrupt: {0}")]
    Corrupt(&'static str),
    /// Fatal for the link: the other side closed it (a worker exited or was killed).
    #[error("worker link closed")]
    Closed,
    /// Fatal for the link: the socket failed or the other side exited.
    #[error("worker link I/O: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Error)]
pub enum GatewayError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("gateway I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Programmer error: a bad setting passed from Python.
    #[error("bad gateway setting {0}: {1}")]
    Config(&'static str, String),
}
