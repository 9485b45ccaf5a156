//! What a process around connections needs from the OS: the shared monotonic clock, the state machines'
//! seconds, non-blocking writes, and dying with the control plane. Used by the gateway worker and the bench's
//! limit server.

use std::io::{self, Write};
use std::time::Instant;

use mio::net::TcpStream;

use super::error::GatewayError;

/// CLOCK_MONOTONIC in microseconds: the clock Python's `time.monotonic()` reads, shared by every process of
/// the host, so the control plane can order connection events from different workers.
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// Seconds since `start`, from 1 so that 0 can mean "never": the clock of every connection's state machine.
pub fn now_secs(start: Instant) -> u32 {
    start.elapsed().as_secs() as u32 + 1
}

/// Write as much of `buf` as the socket takes without blocking; returns how many bytes it took.
pub fn write_some(mut sock: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match sock.write(&buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Die with the control plane: PR_SET_PDEATHSIG, then check the parent did not die before we asked.
pub fn bind_to_parent(parent_pid: u32) -> Result<(), GatewayError> {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if parent_pid != 0 && libc::getppid() as u32 != parent_pid {
            return Err(GatewayError::Config(
                "parent_pid",
                "the control plane exited before the worker started".into(),
            ));
        }
    }
    Ok(())
}
