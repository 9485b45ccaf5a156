//! Per-charger flow rules a gateway worker applies to whole messages, sans-I/O (the caller passes the time):
//! [`CallGate`] holds the CALLs a charger pipelines until the control plane answered the one before, and
//! [`Bucket`] limits how many messages a charger may send per second.
//!
//! Why in the worker: it sees the frames going both ways (a charger's CALL is message type 2; the control
//! plane's CALLRESULT / CALLERROR to it are types 3 / 4 with the same unique id), so the control plane never
//! sees more than one unanswered CALL per charger plus what the gate releases after
//! [`super::config::WorkerConfig::pending_call_timeout`], and a charger that pipelines a whole offline queue
//! costs a few held messages, not a handler task and a queued write each. OCPP-J (2.0.1 part 4 §4.1.1)
//! already says a charger sends its next CALL only once the previous one was answered or timed out, so a
//! well-behaved charger never has a CALL held.
//!
//! The gate reads only valid JSON arrays of at least three elements whose second is a string and whose first
//! equals 2 (what the control plane's router treats as a CALL and answers with that id, however malformed the
//! rest); anything else passes straight on: the router answers it at once, with no task and no write, so it
//! needs no bound beyond the message rate.

use std::collections::VecDeque;

use serde_json::value::RawValue;

/// OCPP-J message types.
pub const CALL: u8 = 2;
pub const CALLRESULT: u8 = 3;
pub const CALLERROR: u8 = 4;

/// The message type and unique id of an OCPP-J message, if it is a JSON array of at least three elements
/// with a string second (the id, unescaped); the type is 0 unless the first element is the number 2, 3 or 4
/// (a JSON number equal to one, `2.0` included, as the router's comparison sees it).
pub fn message_head(text: &str) -> Option<(u8, String)> {
    let parts: Vec<&RawValue> = serde_json::from_str(text).ok()?;
    if parts.len() < 3 {
        return None;
    }
    let id: String = serde_json::from_str(parts[1].get()).ok()?;
    let kind = serde_json::from_str::<f64>(parts[0].get()).map_or(0, |k| {
        [CALL, CALLRESULT, CALLERROR]
            .into_iter()
            .find(|&t| k == t as f64)
            .unwrap_or(0)
    });
    Some((kind, id))
}

/// What to do with a message from the charger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Hand it to the control plane now.
    Pass,
    /// A CALL behind an unanswered one: the gate keeps it (a copy) and releases it in order.
    Held,
    /// A CALL beyond the bound of held CALLs: close the connection.
    Overflow,
}

/// The charger's CALL the control plane has not answered yet, and the CALLs held behind it, oldest first.
/// Empty (no allocation) for a charger that waits for its answers.
#[derive(Debug, Default)]
pub struct CallGate {
    /// The unique id of the CALL the control plane has and has not answered, and since when (seconds).
    outstanding: Option<(Box<str>, u32)>,
    held: VecDeque<Box<str>>,
    /// Bytes of `held` and of the outstanding id (kept so the worker's buffer accounting is O(1)).
    bytes: usize,
}

impl CallGate {
    /// A message from the charger at `now` (seconds): a CALL passes when none is outstanding, is held when
    /// fewer than `max_held` are, and overflows beyond. Non-CALLs always pass (replies to the control plane's
    /// own CALLs among them: they must never wait behind the charger's).
    pub fn incoming(&mut self, text: &str, now: u32, max_held: usize) -> Incoming {
        if self.outstanding.is_none() {
            if let Some((CALL, id)) = message_head(text) {
                self.set_outstanding(id.into_boxed_str(), now);
            }
            return Incoming::Pass;
        }
        match message_head(text) {
            Some((CALL, _)) if self.held.len() >= max_held => Incoming::Overflow,
            Some((CALL, _)) => {
                self.bytes += text.len();
                self.held.push_back(text.into());
                Incoming::Held
            }
            _ => Incoming::Pass,
        }
    }

    /// A message to the charger at `now`: when it answers the outstanding CALL, the next held CALL (if any)
    /// becomes the outstanding one and is returned for the control plane. Costs nothing (no parse) while no
    /// CALL is outstanding.
    pub fn outgoing(&mut self, text: &[u8], now: u32) -> Option<Box<str>> {
        let (want, _) = self.outstanding.as_ref()?;
        let text = std::str::from_utf8(text).ok()?;
        match message_head(text) {
            Some((CALLRESULT | CALLERROR, id)) if *id == **want => self.release(now),
            // The router answers "-1" to a message whose envelope it cannot read (OCPP-J: unknown id), e.g. one
            // nested deeper than its decoder's limit that this gate's (non-recursive) skip still read as a CALL.
            // Nothing else will answer the outstanding CALL then: release it rather than wait for the timeout.
            // (A "-1" for some other unreadable message releases it early: the control plane then holds two.)
            Some((CALLERROR, id)) if id == "-1" => self.release(now),
            _ => None,
        }
    }

    /// The outstanding CALL has waited `timeout` seconds by `now`: stop waiting for its answer (a control
    /// plane that never answers must not wedge the charger) and release the next held CALL, if any.
    pub fn expire(&mut self, now: u32, timeout: u32) -> Option<Box<str>> {
        match self.deadline(timeout) {
            Some(at) if now >= at => self.release(now),
            _ => None,
        }
    }

    /// When [`Self::expire`] next has something to do (seconds), if ever.
    pub fn deadline(&self, timeout: u32) -> Option<u32> {
        self.outstanding
            .as_ref()
            .map(|(_, since)| since.saturating_add(timeout))
    }

    fn set_outstanding(&mut self, id: Box<str>, now: u32) {
        self.bytes += id.len();
        self.outstanding = Some((id, now));
    }

    fn release(&mut self, now: u32) -> Option<Box<str>> {
        if let Some((id, _)) = self.outstanding.take() {
            self.bytes -= id.len();
        }
        let next = self.held.pop_front()?;
        self.bytes -= next.len();
        if let Some((CALL, id)) = message_head(&next) {
            self.set_outstanding(id.into_boxed_str(), now);
        }
        if self.held.is_empty() {
            self.held = VecDeque::new();
        }
        Some(next)
    }

    /// CALLs held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    pub fn is_waiting(&self) -> bool {
        self.outstanding.is_some()
    }

    /// Bytes the gate holds (held messages and the outstanding id).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// A token bucket of messages: `rate` per second, up to `burst` at once. Time in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at_us: u64,
}

impl Bucket {
    /// A full bucket at `now_us`.
    pub fn new(burst: u32, now_us: u64) -> Self {
        Self {
            tokens: burst as f64,
            at_us: now_us,
        }
    }

    /// Take one token at `now_us`; false when the bucket is empty. `rate` 0 means no limit.
    pub fn take(&mut self, rate: f64, burst: u32, now_us: u64) -> bool {
        if rate <= 0.0 {
            return true;
        }
        let elapsed = now_us.saturating_sub(self.at_us) as f64 / 1e6;
        self.at_us = self.at_us.max(now_us);
        self.tokens = (self.tokens + elapsed * rate).min(burst as f64);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Which connections to close, in order, when a worker holds `total` bytes of buffers against `budget`:
/// the largest first (one charger with a huge write queue or partial message goes before a thousand small
/// ones), until what remains is within the budget. `sizes` is (connection, bytes) for every connection.
/// O(n log n), run only when over budget.
pub fn shed_order(
    sizes: impl Iterator<Item = (usize, usize)>,
    total: usize,
    budget: usize,
) -> Vec<usize> {
    let mut big: Vec<(usize, usize)> = sizes.filter(|&(_, n)| n > 0).collect();
    // Largest first; ties by connection, so the choice is deterministic.
    big.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut left = total;
    let mut out = Vec::new();
    for (idx, n) in big {
        if left <= budget {
            break;
        }
        out.push(idx);
        left = left.saturating_sub(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shedding_closes_the_largest_until_under_budget() {
        let sizes = [(0, 10), (1, 500), (2, 0), (3, 300), (4, 300), (5, 50)];
        let total: usize = sizes.iter().map(|s| s.1).sum(); // 1160
        assert_eq!(shed_order(sizes.into_iter(), total, 1000), vec![1]);
        assert_eq!(shed_order(sizes.into_iter(), total, 600), vec![1, 3]);
        assert_eq!(shed_order(sizes.into_iter(), total, 300), vec![1, 3, 4]);
        assert_eq!(
            shed_order(sizes.into_iter(), total, 1160),
            Vec::<usize>::new()
        );
        // Never a connection that holds nothing, even when that cannot reach the budget.
        assert_eq!(shed_order(sizes.into_iter(), total, 0), vec![1, 3, 4, 5, 0]);
    }

    #[test]
    fn heads_of_ocpp_messages() {
        assert_eq!(
            message_head(r#"[2,"a1","Heartbeat",{}]"#),
            Some((CALL, "a1".into()))
        );
        assert_eq!(
            message_head(r#" [ 2.0 , "a\u0031" , "X" , {} ] "#),
            Some((CALL, "a1".into()))
        );
        assert_eq!(
            message_head(r#"[3,"a1",{}]"#),
            Some((CALLRESULT, "a1".into()))
        );
        assert_eq!(
            message_head(r#"[4,"a1","NotImplemented","",{}]"#),
            Some((CALLERROR, "a1".into()))
        );
        assert_eq!(message_head(r#"[7,"a1",{}]"#), Some((0, "a1".into())));
        // What the router answers with an unknown id: not gated.
        assert_eq!(message_head(r#"[2,"a1"]"#), None);
        assert_eq!(message_head(r#"[2,5,"X",{}]"#), None);
        assert_eq!(message_head(r#"[2,"a1","X",{}"#), None);
        assert_eq!(message_head(r#"{"a":1}"#), None);
        assert_eq!(message_head("not json"), None);
    }

    #[test]
    fn a_callerror_for_an_unreadable_message_releases_the_outstanding_call() {
        // 2,000 levels of nesting: the gate's skip reads the head, the router's decoder gives up and answers
        // with the unknown id "-1" (found by tests/fuzz/test_ocpp_router_fuzz.py: the next CALL waited 60 s).
        let deep = format!(
            "[2,\"d1\",\"DataTransfer\",{}1{}]",
            "[".repeat(2000),
            "]".repeat(2000)
        );
        let mut gate = CallGate::default();
        assert_eq!(gate.incoming(&deep, 0, 4), Incoming::Pass);
        assert_eq!(
            gate.incoming(r#"[2,"n1","Heartbeat",{}]"#, 0, 4),
            Incoming::Held
        );
        let next = gate.outgoing(
            br#"[4,"-1","RpcFrameworkError","message is not a JSON array",{}]"#,
            1,
        );
        assert_eq!(next.as_deref(), Some(r#"[2,"n1","Heartbeat",{}]"#));
    }

    fn call(id: &str) -> String {
        format!(r#"[2,"{id}","Heartbeat",{{}}]"#)
    }

    #[test]
    fn pipelined_calls_are_held_and_released_in_order_by_their_answers() {
        let mut g = CallGate::default();
        assert_eq!(g.incoming(&call("1"), 10, 2), Incoming::Pass);
        assert_eq!(g.incoming(&call("2"), 10, 2), Incoming::Held);
        assert_eq!(g.incoming(&call("3"), 10, 2), Incoming::Held);
        assert_eq!(g.held(), 2);
        // An answer to another id releases nothing; a message to the charger that is our own CALL neither.
        assert_eq!(g.outgoing(br#"[3,"2",{}]"#, 11), None);
        assert_eq!(g.outgoing(br#"[2,"1","Reset",{}]"#, 11), None);
        assert_eq!(
            g.outgoing(br#"[3,"1",{}]"#, 11).as_deref(),
            Some(&*call("2"))
        );
        assert_eq!(
            g.outgoing(br#"[4,"2","X","",{}]"#, 12).as_deref(),
            Some(&*call("3"))
        );
        assert_eq!(g.outgoing(br#"[3,"3",{}]"#, 12), None);
        assert!(!g.is_waiting());
        assert_eq!((g.held(), g.bytes()), (0, 0));
    }

    #[test]
    fn one_more_call_than_the_bound_overflows() {
        let mut g = CallGate::default();
        assert_eq!(g.incoming(&call("1"), 1, 4), Incoming::Pass);
        for i in 2..=5 {
            assert_eq!(g.incoming(&call(&i.to_string()), 1, 4), Incoming::Held);
        }
        assert_eq!(g.incoming(&call("6"), 1, 4), Incoming::Overflow);
        // A bound of 0: no CALL may wait at all.
        let mut g = CallGate::default();
        assert_eq!(g.incoming(&call("1"), 1, 0), Incoming::Pass);
        assert_eq!(g.incoming(&call("2"), 1, 0), Incoming::Overflow);
    }

    #[test]
    fn replies_to_our_calls_and_malformed_messages_are_never_held() {
        let mut g = CallGate::default();
        assert_eq!(g.incoming(&call("1"), 1, 1), Incoming::Pass);
        assert_eq!(g.incoming(r#"[3,"cs-9",{}]"#, 1, 1), Incoming::Pass);
        assert_eq!(g.incoming(r#"[4,"cs-9","X","",{}]"#, 1, 1), Incoming::Pass);
        assert_eq!(g.incoming("[2,", 1, 1), Incoming::Pass);
        assert_eq!(g.held(), 0);
        assert!(g.is_waiting());
    }

    #[test]
    fn an_unanswered_call_expires_and_the_next_goes_on() {
        let mut g = CallGate::default();
        g.incoming(&call("1"), 100, 4);
        g.incoming(&call("2"), 101, 4);
        assert_eq!(g.deadline(30), Some(130));
        assert_eq!(g.expire(129, 30), None);
        assert_eq!(g.expire(130, 30).as_deref(), Some(&*call("2")));
        // The released CALL waits its own timeout from its release.
        assert_eq!(g.deadline(30), Some(160));
        assert_eq!(g.expire(160, 30), None);
        assert!(!g.is_waiting());
        assert_eq!(g.deadline(30), None);
    }

    #[test]
    fn a_call_with_an_escaped_id_is_released_by_the_answer_with_the_same_id() {
        let mut g = CallGate::default();
        g.incoming(r#"[2,"\u00e9\"x","Heartbeat",{}]"#, 1, 4);
        g.incoming(&call("2"), 1, 4);
        assert!(g.outgoing("[3,\"é\\\"x\",{}]".as_bytes(), 2).is_some());
    }

    #[test]
    fn the_bucket_allows_its_burst_then_its_rate() {
        let mut b = Bucket::new(3, 0);
        assert!((0..3).all(|_| b.take(2.0, 3, 0)));
        assert!(!b.take(2.0, 3, 0));
        assert!(!b.take(2.0, 3, 400_000)); // 0.8 token
        assert!(b.take(2.0, 3, 500_000));
        assert!(!b.take(2.0, 3, 500_000));
        // Never more than the burst after a long quiet spell.
        assert!((0..3).all(|_| b.take(2.0, 3, 100_000_000)));
        assert!(!b.take(2.0, 3, 100_000_000));
        // Rate 0: no limit.
        assert!((0..10_000).all(|_| b.take(0.0, 3, 100_000_000)));
    }
}
