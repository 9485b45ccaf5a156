//! Where connections come from: a listening socket shared with the other workers, or one of our own in a
//! SO_REUSEPORT group; armed (polled) or not, as the worker's cap, the control plane and shutdown call for.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Token};

/// Accept queue of a reuseport listener (the kernel caps it at net.core.somaxconn).
const LISTEN_BACKLOG: i32 = 65535;

pub enum Listener {
    Shared(TcpListener),
    ReusePort {
        addr: SocketAddr,
        sock: Option<TcpListener>,
    },
}

impl Listener {
    /// Take over an inherited listening socket shared with the other workers.
    ///
    /// # Safety-relevant contract
    /// `fd` must be an open listening socket this process owns; the listener takes it over.
    pub fn shared(fd: RawFd) -> io::Result<Self> {
        // SAFETY: the caller hands us ownership of the descriptor.
        let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        std_listener.set_nonblocking(true)?;
        Ok(Listener::Shared(TcpListener::from_std(std_listener)))
    }

    /// A SO_REUSEPORT listener on `addr`, bound when first armed.
    pub fn reuseport(addr: SocketAddr) -> Self {
        Listener::ReusePort { addr, sock: None }
    }

    /// Edge-triggered listeners report readiness once, so a caller that stops accepting before the queue is
    /// empty must come back by itself; the shared one is level-triggered.
    pub fn is_edge_triggered(&self) -> bool {
        matches!(self, Listener::ReusePort { .. })
    }

    /// Start (`want`) or stop polling for connections, under `token`.
    ///
    /// Shared mode: the inherited listener is registered with EPOLLEXCLUSIVE so one incoming connection wakes
    /// one worker, not all of them. mio cannot set that flag, so the listener goes straight into mio's epoll
    /// with `epoll_ctl` (level-triggered); its events arrive through `Poll::poll` with `token` like any
    /// other. Stopping is EPOLL_CTL_DEL: queued connections stay in the kernel for the other workers.
    ///
    /// Reuseport mode: this worker binds its own SO_REUSEPORT socket and the kernel hashes connections over
    /// the group. Stopping must close the socket (to leave the group), which resets whatever sat in its queue
    /// unless net.ipv4.tcp_migrate_req is on. Registration reports a listener that is already readable, so
    /// nothing is missed.
    pub fn arm(&mut self, poll: &Poll, token: Token, want: bool) -> io::Result<()> {
        match self {
            Listener::Shared(l) => {
                let mut ev = libc::epoll_event {
                    events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
                    u64: token.0 as u64,
                };
                let op = if want {
                    libc::EPOLL_CTL_ADD
                } else {
                    libc::EPOLL_CTL_DEL
                };
                // SAFETY: valid fds owned by this process; `ev` outlives the call.
                let rc = unsafe { libc::epoll_ctl(poll.as_raw_fd(), op, l.as_raw_fd(), &mut ev) };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Listener::ReusePort { addr, sock } => {
                if want {
                    let mut l = reuseport_listener(*addr)?;
                    poll.registry()
                        .register(&mut l, token, Interest::READABLE)?;
                    *sock = Some(l);
                } else if let Some(mut l) = sock.take() {
                    let _ = poll.registry().deregister(&mut l);
                }
            }
        }
        Ok(())
    }

    /// Accept one connection; `WouldBlock` when none is queued (or a reuseport listener is not bound).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match self {
            Listener::Shared(l) => l.accept(),
            Listener::ReusePort { sock: Some(l), .. } => l.accept(),
            Listener::ReusePort { sock: None, .. } => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(s.into()))
}
