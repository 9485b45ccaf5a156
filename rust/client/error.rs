//! Errors of a client engine itself. A connection that fails is not an error: it is counted by kind in
//! the phase's report.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    /// Fatal for this process: it cannot open the files its connections need. The message says it in plain
    /// words because the fix is operational (more processes, or a higher hard limit), not a code change.
    #[error(
        "this process may open at most {limit} files (its hard limit; only root can raise it, e.g. `ulimit -Hn` \
         or LimitNOFILE), but {count} connections need {needed} (one file each plus {reserve} spare): run more \
         load-generator processes with at most {per_process} connections each, or raise the hard limit"
    )]
    FileLimit {
        limit: usize,
        count: usize,
        needed: usize,
        reserve: usize,
        per_process: usize,
    },
    /// Programmer error: a bad setting.
    #[error("bad client setting {0}: {1}")]
    Config(&'static str, String),
    /// Fatal: the event loop itself failed (epoll).
    #[error("client engine I/O: {0}")]
    Io(#[from] io::Error),
}
