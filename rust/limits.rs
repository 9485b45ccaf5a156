//! The process's open-file limit, shared by every part that holds one socket per connection (gateway worker,
//! load generator, simulator) and mirrored to Python as `ampgate._native.FD_RESERVE`.

/// Files a process keeps free under its open-file limit beside one socket per connection: epoll, the worker
/// link or the pipes to an orchestrator, the listener, the interpreter's own files and the odd log file. 64
/// is generous for all of them and costs nothing against a limit in the tens of thousands.
pub const FD_RESERVE: usize = 64;

/// Raise the soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_nofile_limit() -> usize {
    // SAFETY: plain libc calls on a stack struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur as usize
    }
}
