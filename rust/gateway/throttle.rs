//! Failed Basic-auth attempts throttled per charger id, sans-I/O (the caller passes the time).
//!
//! Keyed by the charger id in the URL, not by the peer address: whole fleets sit behind one carrier-NAT
//! address, so a per-address limit would either lock out a fleet for one bad charger or be too loose to stop
//! a guesser. After `limit` failures within `window` of the first one, every further attempt for that id is
//! refused for `backoff` *before* the password is hashed, the right password included: a guesser learns
//! nothing by going on, and a 401 storm against one id costs a map lookup per upgrade, not a hash.
//!
//! The window is fixed from its first failure (one counter and two instants per id, not a timestamp per
//! failure): in steady state a guesser gets at most `limit - 1` tries per window without tripping it, and
//! `limit` tries per `window + backoff` once it does. Attempts refused during the back-off neither count nor
//! extend it, so a charger whose key was fixed gets in once the back-off ends even if it kept retrying.
//!
//! The map is bounded (`max_ids`): past it the id that failed least recently is forgotten, so a storm over
//! many ids costs bounded memory. Only ids with a password are tracked (see `AuthTable::decide`), so an
//! attacker can only push an id out by failing on as many *other* real ids, each of which is throttled in
//! turn.
//!
//! The state is per worker process: a charger's reconnects can land on any worker, so the control plane gives
//! each worker its share of the node-wide limit (`ampgate.gateway.admission.auth_fail_share`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Ids tracked at once per worker: a node holds about 100k chargers, so one entry per charger of a whole
/// fleet guessing at once fits (about 100 bytes each: ~10 MB), while a storm over more ids cannot grow it.
pub const MAX_TRACKED_IDS: usize = 100_000;

/// The throttle's settings. `limit == 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures within `window` after which the id is refused for `backoff`.
    pub limit: u32,
    pub window: Duration,
    pub backoff: Duration,
    /// Ids tracked at most; the least recently failed is forgotten past it.
    pub max_ids: usize,
}

impl Default for ThrottleConfig {
    /// 10 failures a minute, then 5 minutes of refusals: a charger with a wrong key retries every 30 to 60 s
    /// (it never reaches 10 a minute from one worker unless it loops), while a guesser is held to about 10
    /// guesses per 6 minutes per worker, ~2,400 a day, against keys of 16+ characters.
    fn default() -> Self {
        Self {
            limit: 10,
            window: Duration::from_secs(60),
            backoff: Duration::from_secs(300),
            max_ids: MAX_TRACKED_IDS,
        }
    }
}

struct Failures {
    /// Which of the queue's records for this id is the live one (older records are skipped).
    stamp: u64,
    count: u32,
    /// Microseconds: when the current window began (its first failure).
    since_us: u64,
    /// Microseconds: refused until then; 0 when not backing off.
    until_us: u64,
}

/// The per-id failure counts of one worker.
pub struct Throttle {
    cfg: ThrottleConfig,
    ids: HashMap<Arc<str>, Failures>,
    /// Ids in the order they last failed, with the stamp they failed with; a record whose stamp is not its
    /// id's current one is stale (the id failed again since, or was cleared) and skipped.
    order: VecDeque<(u64, Arc<str>)>,
    stamp: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(ThrottleConfig::default())
    }
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            cfg,
            ids: HashMap::new(),
            order: VecDeque::new(),
            stamp: 0,
        }
    }

    pub fn config(&self) -> ThrottleConfig {
        self.cfg
    }

    /// Ids tracked now.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `id` is backing off at `now_us`: `Some(microseconds left)`, else `None` (check the password).
    /// An id whose back-off is over starts afresh.
    pub fn blocked(&mut self, id: &str, now_us: u64) -> Option<u64> {
        let f = self.ids.get(id)?;
        if f.until_us == 0 {
            return None;
        }
        if now_us < f.until_us {
            return Some(f.until_us - now_us);
        }
        self.ids.remove(id);
        None
    }

    /// `id` failed at `now_us`.
    pub fn failed(&mut self, id: &str, now_us: u64) {
        if self.cfg.limit == 0 {
            return;
        }
        self.stamp += 1;
        let stamp = self.stamp;
        let window = self.cfg.window.as_micros() as u64;
        let key: Arc<str> = match self.ids.get_mut(id) {
            Some(f) => {
                if now_us.saturating_sub(f.since_us) >= window {
                    f.count = 0;
                    f.since_us = now_us;
                }
                f.count += 1;
                if f.count >= self.cfg.limit {
                    f.until_us = now_us + (self.cfg.backoff.as_micros() as u64).max(1);
                }
                f.stamp = stamp;
                // The map's own key, so the queue shares its allocation.
                self.ids.get_key_value(id).map(|(k, _)| k.clone()).unwrap()
            }
            None => {
                while self.ids.len() >= self.cfg.max_ids.max(1) {
                    self.evict_one();
                }
                let key: Arc<str> = id.into();
                let until_us = if self.cfg.limit <= 1 {
                    now_us + (self.cfg.backoff.as_micros() as u64).max(1)
                } else {
                    0
                };
                self.ids.insert(
                    key.clone(),
                    Failures {
                        stamp,
                        count: 1,
                        since_us: now_us,
                        until_us,
                    },
                );
                key
            }
        };
        self.order.push_back((stamp, key));
        // Stale records pile up as ids fail again or are cleared; drop them once they outnumber the live
        // ones, which keeps the queue within twice the map and the cost amortized O(1) per failure.
        if self.order.len() > 2 * self.ids.len() + 16 {
            let ids = &self.ids;
            self.order
                .retain(|(s, k)| ids.get(k).is_some_and(|f| f.stamp == *s));
        }
    }

    /// `id` authenticated: its failures are forgotten.
    pub fn succeeded(&mut self, id: &str) {
        if !self.ids.is_empty() {
            self.ids.remove(id);
        }
    }

    /// Forget the id that failed least recently.
    fn evict_one(&mut self) {
        while let Some((stamp, key)) = self.order.pop_front() {
            if self.ids.get(&key).is_some_and(|f| f.stamp == stamp) {
                self.ids.remove(&key);
                return;
            }
        }
        // Unreachable while every live id has its record; never loop forever if that breaks.
        self.ids.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    fn throttle(limit: u32, window_s: u64, backoff_s: u64, max_ids: usize) -> Throttle {
        Throttle::new(ThrottleConfig {
            limit,
            window: Duration::from_secs(window_s),
            backoff: Duration::from_secs(backoff_s),
            max_ids,
        })
    }

    #[test]
    fn limit_failures_within_the_window_start_the_back_off() {
        let mut t = throttle(3, 10, 5, 100);
        for i in 0..3 {
            assert_eq!(t.blocked("CP1", S + i), None);
            t.failed("CP1", S + i);
        }
        assert_eq!(t.blocked("CP1", S + 2), Some(5 * S));
        assert_eq!(t.blocked("CP1", 6 * S + 1), Some(1));
        // Another id is not affected.
        assert_eq!(t.blocked("CP2", S + 3), None);
        // Over: the id starts afresh, with a whole new allowance.
        assert_eq!(t.blocked("CP1", 6 * S + 2), None);
        assert!(t.is_empty());
        t.failed("CP1", 7 * S);
        t.failed("CP1", 7 * S);
        assert_eq!(t.blocked("CP1", 7 * S), None);
    }

    #[test]
    fn failures_spread_over_more_than_the_window_never_trip_it() {
        let mut t = throttle(3, 10, 5, 100);
        for i in 0..30 {
            // Two failures in each 10-second window, then the window runs out.
            t.failed("CP1", i * 6 * S);
            assert_eq!(t.blocked("CP1", i * 6 * S), None, "failure {i}");
        }
        // Three within one window do.
        t.failed("CP1", 1000 * S);
        t.failed("CP1", 1001 * S);
        t.failed("CP1", 1009 * S);
        assert_eq!(t.blocked("CP1", 1009 * S), Some(5 * S));
    }

    #[test]
    fn attempts_during_the_back_off_do_not_extend_it() {
        let mut t = throttle(2, 10, 5, 100);
        t.failed("CP1", S);
        t.failed("CP1", S);
        for k in 1..5 {
            // What the auth table does while blocked: refuse, record nothing.
            assert!(t.blocked("CP1", S + k * S).is_some());
        }
        assert_eq!(t.blocked("CP1", 6 * S), None);
    }

    #[test]
    fn a_success_clears_the_failures() {
        let mut t = throttle(3, 10, 5, 100);
        t.failed("CP1", S);
        t.failed("CP1", S);
        t.succeeded("CP1");
        assert!(t.is_empty());
        t.failed("CP1", S);
        t.failed("CP1", S);
        assert_eq!(t.blocked("CP1", S), None);
        t.failed("CP1", S);
        assert!(t.blocked("CP1", S).is_some());
    }

    #[test]
    fn limit_zero_is_off_and_limit_one_blocks_at_once() {
        let mut t = throttle(0, 10, 5, 100);
        for _ in 0..100 {
            t.failed("CP1", S);
        }
        assert_eq!(t.blocked("CP1", S), None);
        assert!(t.is_empty());
        let mut t = throttle(1, 10, 5, 100);
        t.failed("CP1", S);
        assert_eq!(t.blocked("CP1", S), Some(5 * S));
    }

    #[test]
    fn the_map_is_bounded_and_forgets_the_least_recently_failed() {
        let mut t = throttle(3, 1000, 5, 4);
        for i in 0..4 {
            t.failed(&format!("CP{i}"), S);
        }
        // CP0 fails again: now CP1 is the least recent.
        t.failed("CP0", S);
        t.failed("CP9", S);
        assert_eq!(t.len(), 4);
        assert!(!t.ids.contains_key("CP1"));
        assert!(t.ids.contains_key("CP0") && t.ids.contains_key("CP9"));
        // A storm over many ids stays within the bound, and so does the queue.
        for i in 0..100_000u64 {
            t.failed(&format!("X{}", i % 1000), S + i);
            assert!(t.len() <= 4);
        }
        assert!(t.order.len() <= 2 * t.len() + 16 + 1);
        // The last four to fail are the ones kept.
        for i in 996..1000 {
            assert!(t.ids.contains_key(format!("X{i}").as_str()));
        }
    }

    #[test]
    fn eviction_skips_stale_records_of_cleared_ids() {
        let mut t = throttle(3, 1000, 5, 2);
        t.failed("A", S);
        t.failed("B", S);
        t.succeeded("A");
        t.failed("C", S);
        // A's record was stale: B (the oldest live one) stays, as room was there.
        assert_eq!(t.len(), 2);
        t.failed("D", S);
        assert!(!t.ids.contains_key("B"));
        assert!(t.ids.contains_key("C") && t.ids.contains_key("D"));
    }
}
