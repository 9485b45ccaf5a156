//! The load allocator: how much current each charging session may draw so that no capacity node (grid
//! connection, site, transformer, feeder, panel, charger) goes over any of its limits, shared weighted max-min
//! fair by priority class. No I/O, no Python: `allocate` is a pure function, `Allocator` keeps the tree and
//! the sessions between ticks and settles each tick's result into what chargers are told.
//!
//! ## Inputs
//! - A forest of capacity nodes in depth-first order (every parent before its children, each subtree a
//!   contiguous range), each with a limit per phase in A (`f64::INFINITY`: none) and a total limit in W, and
//!   the line-to-neutral voltage of its site. Power and current convert as P = I × V × phases in use (power
//!   factor 1).
//! - Sessions at the leaves: the node they hang under, the site phases they draw on (a 3-bit mask, after the
//!   charger's wiring and the phases the EV uses), a minimum and a maximum current, a priority class (higher
//!   first), a weight and a rank (the deterministic tie order, e.g. by charger id). With `Allocator`, also a
//!   current step and, for a session that is not allocated, the fixed current it is counted as drawing.
//!
//! ## The allocation (what `allocate` computes, and what the reference solver in tests/load restates)
//! 0. **Fixed draws** (`Allocator` only: an offline charger's failsafe, a new session at its charger's
//!    default-profile limit until its first allocation is acknowledged) are reserved first on every
//!    constraint above them (per phase in A, and in W at the node's voltage). A limit the fixed draws exceed
//!    on their own pauses every allocatable session that draws on it, and takes no further part in step 1
//!    (no allocatable session could bring it back under). Sessions in a paused hold (below) are paused too.
//! 1. **Pausing.** With every other session at its minimum, some limit may be exceeded: then sessions are
//!    paused (0 A) one at a time, lowest priority first; within a priority, sessions not in a running hold
//!    before those in one (below), then highest rank first; each only if it draws on a limit that is still
//!    exceeded, until none is. A session never gets a current between 0 and its minimum.
//! 2. **Filling, class by class from the highest priority.** Within a class, progressive filling: a common
//!    level `t` rises from 0 and each session draws `clamp(weight × t, min, max)`; when a limit is reached,
//!    every session of the class drawing on it stays where it is (frozen), and the others go on rising.
//!    Lower classes sit at their minimum meanwhile; a higher class's result is fixed. This is weighted max-min
//!    fairness under every ancestor's per-phase and total limit.
//!
//! ## A tick of `Allocator` (`tick(now_s)`)
//! - **Minimum hold** (`min_hold_s`, default 5 minutes; some EVs do not resume after a pause): a session whose
//!   settled value went to 0 less than `min_hold_s` ago stays paused (it demands nothing this tick). One that
//!   started running less than `min_hold_s` ago is paused only when a limit forces it (step 1's order puts it
//!   after the free sessions of its class). A session new to the allocator, or unfixed, is in neither hold: its
//!   first tick may start or pause it, and that starts its clock.
//! - **Settling** each session's raw value into what it is told: rounded down to its step (0.1 A default); a
//!   value below its minimum after rounding becomes 0; an increase over the last settled value smaller than
//!   max(`hysteresis_a`, `hysteresis_pct`% of that value) is held back (the old value is kept) unless the old
//!   value is 0 (a resume is never held back) or below the session's minimum now; decreases always apply.
//!   Holding back increases and rounding down only lower draws, so the settled values keep every limit that
//!   the raw ones keep.
//! - The tick returns each allocatable session whose settled value differs from the last one returned for it;
//!   a session new to the allocator (or unfixed) always appears once.
//!
//! ## Cost
//! Event-driven progressive filling: each session starts and stops rising once (two sorted breakpoints), each
//! constraint fills up at most once, and filling one freezes a contiguous range of sessions (those under its
//! node, kept in node order). `Allocator` keeps what derives from the tree (subtree ends, limits in amperes),
//! the sessions in node order and in pause order, and every scratch array between ticks, so a tick allocates
//! nothing and re-sorts nothing unless sessions came, went or moved. Loads are summed per node and added up the
//! tree in one pass (no walk per session); a constraint that could not fill up even with every session at its
//! maximum is left out of the filling altogether (a charger's own rating, typically); breakpoints at one level
//! are taken together in node order; a constraint whose rise slows keeps its (now early) entry in the heap and
//! is looked at again when it comes up, so only a faster rise pushes. Per tick: O(S + N) passes, plus
//! O(A log A + A · depth) for the A sessions that are not paused, plus the pausing when a limit is exceeded
//! (O(P · depth) for the P sessions under exceeded limits). docs/benchmarks.md has the measured figures.

mod solve;
mod state;

pub use solve::{allocate, Hold, InputError, Sessions, Tree};
pub use state::{settle, Allocator, Demand, Settings, StateError};
