//! A simulated charger's socket: plain TCP (ws://), or TLS on it (wss://: in its handshake, or established).
//! The engine reads and writes through it the same way either way; the plain case is one match arm, no box.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use openssl::ssl::{self, HandshakeError, MidHandshakeSslStream, SslRef, SslStream};
use openssl::x509::X509VerifyResult;

pub enum Stream {
    Plain(TcpStream),
    /// TLS handshake under way (boxed: it is the big state, and short-lived). `None` once a handshake step
    /// failed without giving the socket back (closed already, which takes it out of epoll).
    Handshaking(Option<Box<MidHandshakeSslStream<TcpStream>>>),
    Tls(SslStream<TcpStream>),
}

/// What a step of the TLS handshake came to.
pub enum Handshake {
    /// Established; `resumed` when the server took the session offered.
    Done { resumed: bool },
    /// Waiting for the server.
    Pending,
    /// Failed, in plain words (the server's certificate did not verify, the server refused ours, ...).
    Failed(String),
}

/// Why a TLS handshake (or the first read after it: TLS 1.3 servers refuse a client certificate there)
/// failed: the verification of the server's certificate when that is what failed, else OpenSSL's reason.
pub fn failure_reason(e: &ssl::Error, ssl: &SslRef) -> String {
    let verify = ssl.verify_result();
    if verify != X509VerifyResult::OK {
        return format!("server certificate: {}", verify.error_string());
    }
    error_reason(e)
}

fn error_reason(e: &ssl::Error) -> String {
    if let Some(io) = e.io_error() {
        return format!("tls: {}", io.kind());
    }
    let reason = e
        .ssl_error()
        .and_then(|s| s.errors().first())
        .and_then(|first| first.reason());
    match reason {
        Some(r) => format!("tls: {r}"),
        None if e.code() == ssl::ErrorCode::ZERO_RETURN => "tls: closed by the server".into(),
        None if e.code() == ssl::ErrorCode::SYSCALL => "tls: connection closed".into(),
        None => format!("tls: {e}"),
    }
}

/// A TLS read or write error in plain words, when `e` is one (else `None`: a socket error).
pub fn tls_io_reason(e: &io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<ssl::Error>()?;
    Some(error_reason(inner))
}

impl Stream {
    /// The socket, to register with the poll; `None` after a failed handshake that did not keep it.
    pub fn tcp_mut(&mut self) -> Option<&mut TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Handshaking(m) => m.as_mut().map(|m| m.get_mut()),
            Stream::Tls(s) => Some(s.get_mut()),
        }
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    /// The plain socket out of a stream that has not started TLS (to start it).
    pub fn into_plain(self) -> Result<TcpStream, Self> {
        match self {
            Stream::Plain(s) => Ok(s),
            other => Err(other),
        }
    }

    pub fn ssl(&self) -> Option<&SslRef> {
        match self {
            Stream::Tls(s) => Some(s.ssl()),
            Stream::Handshaking(Some(m)) => Some(m.ssl()),
            _ => None,
        }
    }

    /// Drive the TLS handshake one step (whatever the socket is ready for).
    pub fn handshake(&mut self) -> Handshake {
        let Stream::Handshaking(mid) = self else {
            return match self {
                Stream::Tls(s) => Handshake::Done {
                    resumed: s.ssl().session_reused(),
                },
                _ => Handshake::Pending,
            };
        };
        let Some(m) = mid.take() else {
            return Handshake::Failed("tls: handshake failed".into());
        };
        match m.handshake() {
            Ok(s) => {
                let resumed = s.ssl().session_reused();
                *self = Stream::Tls(s);
                Handshake::Done { resumed }
            }
            Err(HandshakeError::WouldBlock(m)) => {
                *mid = Some(Box::new(m));
                Handshake::Pending
            }
            Err(HandshakeError::Failure(m)) => {
                let why = failure_reason(m.error(), m.ssl());
                *mid = Some(Box::new(m)); // Kept, to be deregistered and closed with the link.
                Handshake::Failed(why)
            }
            Err(HandshakeError::SetupFailure(e)) => Handshake::Failed(format!("tls setup: {e}")),
        }
    }
}

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Handshaking(_) => Err(io::ErrorKind::WouldBlock.into()),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Handshaking(_) => Err(io::ErrorKind::WouldBlock.into()),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Handshaking(_) => Ok(()),
            Stream::Tls(s) => s.flush(),
        }
    }
}
