//! A charger's socket in a gateway worker: plain TCP, or TLS on it (in its handshake, or established). The
//! worker reads and writes through it the same way either way; only the TLS handshake needs driving first.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use openssl::ssl::{HandshakeError, MidHandshakeSslStream, Ssl, SslContext, SslStream};

use super::conn::Transport;
use super::tls::client_common_name;

pub enum Stream {
    Plain(TcpStream),
    /// TLS handshake under way. `None` once a handshake failed without giving the socket back (closed
    /// already: closing a descriptor takes it out of epoll).
    Accepting(Option<MidHandshakeSslStream<TcpStream>>),
    Tls(SslStream<TcpStream>),
}

/// What a step of the TLS handshake came to.
pub enum Handshake {
    /// Established (or plain all along): the upgrade can be read; the transport is what the handshake
    /// proved.
    Done(Transport),
    /// Waiting for the peer.
    Pending,
    /// Failed: a bad client certificate, no shared cipher, not TLS at all, or the socket went away.
    Failed,
}

impl Stream {
    /// Start a TLS server handshake on a fresh socket.
    pub fn accept_tls(ctx: &SslContext, sock: TcpStream) -> Option<Self> {
        let ssl = Ssl::new(ctx).ok()?;
        match ssl.accept(sock) {
            Ok(s) => Some(Stream::Tls(s)),
            Err(HandshakeError::WouldBlock(mid)) => Some(Stream::Accepting(Some(mid))),
            Err(_) => None,
        }
    }

    /// The socket; None after a failed handshake that kept it.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Accepting(m) => m.as_ref().map(|m| m.get_ref()),
            Stream::Tls(s) => Some(s.get_ref()),
        }
    }

    pub fn tcp_mut(&mut self) -> Option<&mut TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Accepting(m) => m.as_mut().map(|m| m.get_mut()),
            Stream::Tls(s) => Some(s.get_mut()),
        }
    }

    /// What an established TLS stream proved (`None`: plain, or its handshake is under way). A TLS 1.3
    /// resumption can be through at the first step ([`Stream::accept_tls`]), not only in
    /// [`Stream::handshake`].
    pub fn transport(&self) -> Option<Transport> {
        let Stream::Tls(s) = self else {
            return None;
        };
        Some(match client_common_name(s.ssl()) {
            Some(cn) => Transport::TlsClient(cn),
            None => Transport::Tls,
        })
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    pub fn is_handshaking(&self) -> bool {
        matches!(self, Stream::Accepting(_))
    }

    /// Drive the TLS handshake one step (whatever the socket is ready for).
    pub fn handshake(&mut self) -> Handshake {
        let Stream::Accepting(mid) = self else {
            return Handshake::Pending;
        };
        let Some(m) = mid.take() else {
            return Handshake::Failed;
        };
        match m.handshake() {
            Ok(s) => {
                *self = Stream::Tls(s);
                Handshake::Done(self.transport().unwrap_or(Transport::Tls))
            }
            Err(HandshakeError::WouldBlock(m)) => {
                *mid = Some(m);
                Handshake::Pending
            }
            Err(HandshakeError::Failure(m)) => {
                *mid = Some(m); // Kept, to be deregistered and closed with the connection.
                Handshake::Failed
            }
            Err(HandshakeError::SetupFailure(_)) => Handshake::Failed,
        }
    }

    /// Read decrypted bytes; `WouldBlock` when nothing more is there (TLS: also while OpenSSL waits to write).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Accepting(_) => Err(io::ErrorKind::WouldBlock.into()),
            Stream::Tls(s) => s.read(buf),
        }
    }

    /// Write as much of `buf` as the socket takes without blocking; returns how many bytes it took.
    pub fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let r = match self {
                Stream::Plain(s) => s.write(&buf[done..]),
                Stream::Accepting(_) => return Ok(done),
                Stream::Tls(s) => s.write(&buf[done..]),
            };
            match r {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Half-close: TLS sends its close_notify first (best effort: the socket is going anyway).
    pub fn shutdown_write(&mut self) {
        if let Stream::Tls(s) = self {
            let _ = s.shutdown();
        }
        if let Some(s) = self.tcp() {
            let _ = s.shutdown(Shutdown::Write);
        }
    }
}
