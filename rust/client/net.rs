//! Client-connection plumbing shared by the load generator and the fleet simulator: the non-blocking connect
//! from a chosen source address, its completion, the upgrade request and response, and writing with a queue
//! only for what the socket did not take. Each caller keeps its own state machine and error accounting.

use std::io::{self, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use mio::net::TcpStream;
use socket2::{Domain, Socket, Type};

use super::Protocol;
use crate::codec::{self, HandshakeError, UpgradeResponse};

/// xorshift64*: masks, nonces and jitter only need to differ, not to be unpredictable, in a load generator.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A client frame's masking key.
    pub(crate) fn mask(&mut self) -> [u8; 4] {
        (self.next() as u32).to_ne_bytes()
    }
}

/// A non-blocking connect from `source` (port chosen at connect time) to `target`.
pub(crate) fn connect(
    target: SocketAddr,
    source: Option<std::net::Ipv4Addr>,
) -> io::Result<TcpStream> {
    let domain = if target.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(domain, Type::STREAM.nonblocking(), None)?;
    if let Some(ip) = source {
        // IP_BIND_ADDRESS_NO_PORT: without it, bind(ip, 0) picks a port unique to `ip` alone, so one
        // source address gives ~28k connections in all; with it the port is picked at connect time for the
        // whole 4-tuple, and each source address gets its own ~28k towards each destination.
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        sock.bind(&SocketAddr::V4(SocketAddrV4::new(ip, 0)).into())?;
    }
    match sock.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

/// A connect failure in plain words, with the fix where there is one.
pub(crate) fn connect_failure(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "connect refused".into(),
        Some(libc::ETIMEDOUT) => "connect timed out".into(),
        Some(libc::EADDRNOTAVAIL) => "no free local port (add source addresses)".into(),
        Some(libc::EMFILE) | Some(libc::ENFILE) => "out of files".into(),
        _ => format!("connect failed ({})", e.kind()),
    }
}

/// Whether a connect in progress has finished: `Ok(true)` connected (Nagle off), `Ok(false)` not yet (wait
/// for the next event), `Err` failed.
pub(crate) fn connected(sock: &TcpStream) -> io::Result<bool> {
    if let Some(e) = sock.take_error()? {
        return Err(e);
    }
    match sock.peer_addr() {
        Ok(_) => {
            let _ = sock.set_nodelay(true);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// The upgrade request of charger `id` into `out` (cleared first); returns its Sec-WebSocket-Key.
pub(crate) fn upgrade_request(
    out: &mut Vec<u8>,
    rng: &mut XorShift,
    host: &str,
    path_prefix: &str,
    id: &str,
    protocol: Protocol,
    password: Option<&str>,
) -> Box<str> {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&rng.next().to_ne_bytes());
    nonce[8..].copy_from_slice(&rng.next().to_ne_bytes());
    let key = codec::key_from_nonce(&nonce);
    let path = format!("{}/{}", path_prefix.trim_end_matches('/'), id);
    out.clear();
    codec::client_request(
        out,
        host,
        &path,
        &key,
        &[protocol.name()],
        password.map(|p| (id, p)),
    );
    key.into_boxed_str()
}

/// Feed bytes of the server's upgrade response. The head nearly always arrives in one read and is parsed in
/// place; only a head cut by a read boundary is kept in `buf` (`Ok(None)`: more is needed). Once complete,
/// returns the response and the bytes after it (frames the server sent at once; usually none, no allocation).
pub(crate) fn feed_upgrade(
    buf: &mut Vec<u8>,
    data: &[u8],
    key: &str,
) -> Result<Option<(UpgradeResponse, Vec<u8>)>, HandshakeError> {
    let head: &[u8] = if buf.is_empty() {
        data
    } else {
        buf.extend_from_slice(data);
        buf
    };
    match codec::parse_upgrade_response(head, key)? {
        None => {
            if buf.is_empty() {
                *buf = data.to_vec();
            }
            Ok(None)
        }
        Some((resp, used)) => {
            let rest = head[used..].to_vec();
            *buf = Vec::new();
            Ok(Some((resp, rest)))
        }
    }
}

/// Write straight to the socket when nothing is queued; queue only what the socket did not take.
pub(crate) fn write_or_queue(
    sock: &mut impl Write,
    wbuf: &mut Vec<u8>,
    bytes: &[u8],
) -> io::Result<()> {
    let mut rest = bytes;
    if wbuf.is_empty() {
        loop {
            match sock.write(rest) {
                Ok(n) if n == rest.len() => return Ok(()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
    wbuf.extend_from_slice(rest);
    Ok(())
}

/// Write what is queued, as far as the socket takes it; the queue's memory is freed once it is empty.
pub(crate) fn flush_queue(sock: &mut impl Write, wbuf: &mut Vec<u8>) -> io::Result<()> {
    let mut done = 0;
    let mut result = Ok(());
    while done < wbuf.len() {
        match sock.write(&wbuf[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if done == wbuf.len() {
        *wbuf = Vec::new();
    } else {
        wbuf.drain(..done);
    }
    result
}
