//! Admission control: how many new connections a gateway worker lets into their handshake, as a sans-I/O rule.
//!
//! The control plane shares a node-wide budget out over its workers (`Down::Admission`): a rate of new
//! connections per second with a burst (a token bucket) and a cap on handshakes in progress. A connection
//! over the budget is still accepted, but its upgrade is answered HTTP 503 with a `Retry-After` instead of being
//! decided, so a reconnect storm costs the worker an accept, a parse and a short write per charger, and costs
//! the control plane nothing. Chargers already connected are not touched: their frames never wait on this.
//!
//! `Retry-After` is randomized over a spread that grows with the demand: with `d` refusals in the last second
//! and a rate `r`, the refused come back over about `d / r` seconds, which is what the budget can take. The
//! spread is at least 1 s and at most `retry_max`.
//!
//! The same rule also meters charger ids the handshake table does not know (`admit_unknown`): a second bucket,
//! of new unknown ids per minute (its burst one minute's worth), charged only once the table has found the id
//! unknown and the unknown-charger policy would let it in. Chargers the table knows (registered, or recorded at
//! a boot) are never charged, so a stream of made-up ids cannot crowd out the fleet. Over it the upgrade gets
//! the same 503 with a `Retry-After`.

/// A worker's share of the node's budget. Zero means "no limit" for `rate` and `handshakes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// New connections admitted per second.
    pub rate: u32,
    /// Connections admitted at once after a quiet spell (the bucket's size); at least 1 when `rate` is set.
    pub burst: u32,
    /// Handshakes (accept to the end of the upgrade) in progress at most.
    pub handshakes: u32,
    /// Longest `Retry-After` (seconds) a refusal asks for.
    pub retry_max: u32,
    /// New unknown charger ids admitted per minute (a bucket of one minute's worth); 0 = no limit.
    pub unknown_per_min: u32,
}

impl Budget {
    pub const UNLIMITED: Budget = Budget {
        rate: 0,
        burst: 0,
        handshakes: 0,
        retry_max: 60,
        unknown_per_min: 0,
    };
}

/// Why a connection was refused, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the rate of new connections.
    Rate,
    /// Too many handshakes in progress.
    Handshakes,
    /// Over the rate of new unknown charger ids.
    UnknownIds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the handshake; call [`Admission::handshake_done`] when it ends, however it ends.
    Admit,
    /// Answer 503 with `Retry-After: retry_after` (seconds).
    Refuse { retry_after: u32, why: Refusal },
}

const US: u64 = 1_000_000;
/// One unknown id in the unknown-id bucket: its rate is per minute, and `elapsed_us × per_min` adds tokens in
/// these units, so the arithmetic stays in integers.
const UNKNOWN_TOKEN: u64 = 60 * US;

pub struct Admission {
    budget: Budget,
    /// Tokens in the bucket, in millionths of a connection (integer arithmetic).
    tokens_u: u64,
    last_us: u64,
    handshaking: u32,
    /// Refusals in the current one-second window and in the one before.
    window_start_us: u64,
    refused_now: u32,
    refused_before: u32,
    rng: u64,
    /// The unknown-id bucket, in `UNKNOWN_TOKEN`ths of an id, and when it was last filled.
    unknown_tokens: u64,
    unknown_last_us: u64,
    pub refused_rate: u64,
    pub refused_handshakes: u64,
    pub refused_unknown_ids: u64,
}

impl Admission {
    /// `seed` varies the `Retry-After` values between workers (any value; 0 is replaced).
    pub fn new(budget: Budget, seed: u64) -> Self {
        let mut a = Self {
            budget,
            tokens_u: 0,
            last_us: 0,
            handshaking: 0,
            window_start_us: 0,
            refused_now: 0,
            refused_before: 0,
            rng: seed | 1,
            unknown_tokens: 0,
            unknown_last_us: 0,
            refused_rate: 0,
            refused_handshakes: 0,
            refused_unknown_ids: 0,
        };
        a.set_budget(budget);
        a
    }

    /// A new share of the budget: the bucket starts full.
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = Budget {
            burst: if budget.rate > 0 {
                budget.burst.max(1)
            } else {
                0
            },
            retry_max: budget.retry_max.max(1),
            ..budget
        };
        self.tokens_u = self.budget.burst as u64 * US;
        self.unknown_tokens = self.budget.unknown_per_min as u64 * UNKNOWN_TOKEN;
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Handshakes admitted and not yet ended.
    pub fn handshaking(&self) -> u32 {
        self.handshaking
    }

    /// A connection was accepted at `now_us` (a monotonic clock): may it handshake?
    pub fn admit(&mut self, now_us: u64) -> Verdict {
        self.roll_window(now_us);
        let b = self.budget;
        let why = if b.handshakes > 0 && self.handshaking >= b.handshakes {
            Some(Refusal::Handshakes)
        } else if b.rate > 0 {
            let elapsed = now_us.saturating_sub(self.last_us);
            let cap = b.burst as u64 * US;
            self.tokens_u = (self.tokens_u + elapsed.saturating_mul(b.rate as u64)).min(cap);
            self.last_us = now_us;
            if self.tokens_u >= US {
                self.tokens_u -= US;
                None
            } else {
                Some(Refusal::Rate)
            }
        } else {
            None
        };
        match why {
            None => {
                self.handshaking += 1;
                Verdict::Admit
            }
            Some(why) => {
                self.refused_now += 1;
                match why {
                    Refusal::Rate => self.refused_rate += 1,
                    Refusal::Handshakes => self.refused_handshakes += 1,
                    Refusal::UnknownIds => self.refused_unknown_ids += 1,
                }
                Verdict::Refuse {
                    retry_after: self.retry_after(),
                    why,
                }
            }
        }
    }

    /// The handshake table found the connection's charger id unknown (and the policy would let it in), at
    /// `now_us`: may one more unknown id in? Refusals are counted and spread like the connection rate's.
    pub fn admit_unknown(&mut self, now_us: u64) -> Verdict {
        self.roll_window(now_us);
        let per_min = self.budget.unknown_per_min as u64;
        if per_min == 0 {
            return Verdict::Admit;
        }
        let elapsed = now_us.saturating_sub(self.unknown_last_us);
        self.unknown_tokens =
            (self.unknown_tokens + elapsed.saturating_mul(per_min)).min(per_min * UNKNOWN_TOKEN);
        self.unknown_last_us = now_us;
        if self.unknown_tokens >= UNKNOWN_TOKEN {
            self.unknown_tokens -= UNKNOWN_TOKEN;
            return Verdict::Admit;
        }
        self.refused_now += 1;
        self.refused_unknown_ids += 1;
        // The refused come back over the time the bucket needs for them: demand / (per_min / 60) seconds.
        let demand = self.refused_now.max(self.refused_before) as u64;
        let spread = (demand * 60)
            .div_ceil(per_min)
            .clamp(1, self.budget.retry_max as u64);
        Verdict::Refuse {
            retry_after: 1 + (self.next_rand() % spread) as u32,
            why: Refusal::UnknownIds,
        }
    }

    /// An admitted handshake ended (upgraded, refused by the auth table, timed out or lost).
    pub fn handshake_done(&mut self) {
        self.handshaking = self.handshaking.saturating_sub(1);
    }

    fn roll_window(&mut self, now_us: u64) {
        let since = now_us.saturating_sub(self.window_start_us);
        if since >= US {
            self.refused_before = if since >= 2 * US { 0 } else { self.refused_now };
            self.refused_now = 0;
            self.window_start_us = now_us;
        }
    }

    /// 1 ..= spread seconds, the spread being the demand over the rate (see the module's text).
    fn retry_after(&mut self) -> u32 {
        let b = self.budget;
        let demand = self.refused_now.max(self.refused_before) as u64;
        let per_s = if b.rate > 0 {
            b.rate as u64
        } else {
            // Only the handshake cap limits: a handshake takes well under a second, so the cap is about what
            // one second admits.
            b.handshakes.max(1) as u64
        };
        let spread = demand.div_ceil(per_s).clamp(1, b.retry_max as u64);
        1 + (self.next_rand() % spread) as u32
    }

    /// xorshift64*: plenty for spreading retries, and no dependency.
    fn next_rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(rate: u32, burst: u32, handshakes: u32) -> Budget {
        Budget {
            rate,
            burst,
            handshakes,
            retry_max: 30,
            unknown_per_min: 0,
        }
    }

    #[test]
    fn unknown_ids_get_a_minute_of_burst_then_their_rate_per_minute() {
        let mut a = Admission::new(
            Budget {
                unknown_per_min: 6,
                ..budget(0, 0, 0)
            },
            3,
        );
        let t = 100 * US;
        let n = (0..20)
            .filter(|_| a.admit_unknown(t) == Verdict::Admit)
            .count();
        assert_eq!(n, 6, "a full bucket holds one minute's worth");
        assert_eq!(a.refused_unknown_ids, 14);
        // 6 a minute: one more every 10 s, not before.
        assert!(matches!(
            a.admit_unknown(t + 9_999_999),
            Verdict::Refuse {
                why: Refusal::UnknownIds,
                ..
            }
        ));
        assert_eq!(a.admit_unknown(t + 10 * US), Verdict::Admit);
        // The connection budget is untouched by unknown ids (and unlimited here).
        assert_eq!(a.admit(t), Verdict::Admit);
        assert_eq!(a.refused_rate, 0);
    }

    #[test]
    fn unknown_id_refusals_ask_for_the_time_the_bucket_needs() {
        let mut a = Admission::new(
            Budget {
                unknown_per_min: 60,
                ..budget(0, 0, 0)
            },
            5,
        );
        let t = 10 * US;
        let retries: Vec<u32> = (0..200)
            .filter_map(|_| match a.admit_unknown(t) {
                Verdict::Refuse { retry_after, .. } => Some(retry_after),
                Verdict::Admit => None,
            })
            .collect();
        assert_eq!(retries.len(), 140);
        // 60 a minute is one a second: 140 refused come back over up to 30 s (retry_max), at least 1 s.
        assert!(retries.iter().all(|&r| (1..=30).contains(&r)));
        assert!(retries[..5].iter().all(|&r| r <= 5));
        assert!(retries.iter().any(|&r| r > 20));
    }

    #[test]
    fn no_unknown_limit_admits_every_unknown_id() {
        let mut a = Admission::new(Budget::UNLIMITED, 1);
        assert!((0..10_000).all(|i| a.admit_unknown(i) == Verdict::Admit));
        assert_eq!(a.refused_unknown_ids, 0);
    }

    #[test]
    fn unlimited_admits_everything() {
        let mut a = Admission::new(Budget::UNLIMITED, 7);
        for i in 0..10_000 {
            assert_eq!(a.admit(i), Verdict::Admit);
        }
        assert_eq!(a.handshaking(), 10_000);
        assert_eq!(a.refused_rate + a.refused_handshakes, 0);
    }

    #[test]
    fn the_bucket_admits_its_burst_then_the_rate() {
        let mut a = Admission::new(budget(100, 10, 0), 7);
        let t0 = 5 * US;
        let admitted = (0..50).filter(|_| a.admit(t0) == Verdict::Admit).count();
        assert_eq!(admitted, 10, "a full bucket admits its burst at once");
        assert_eq!(a.refused_rate, 40);
        // 100 per second: one more every 10 ms.
        assert_eq!(a.admit(t0 + 10_000), Verdict::Admit);
        assert!(matches!(
            a.admit(t0 + 10_001),
            Verdict::Refuse {
                why: Refusal::Rate,
                ..
            }
        ));
        // Over one second at the rate, about 100 are admitted whatever the demand.
        let mut ok = 0;
        for ms in 1..=1000u64 {
            for _ in 0..5 {
                if a.admit(t0 + 10_000 + ms * 1000) == Verdict::Admit {
                    ok += 1;
                }
            }
        }
        assert!(
            (99..=101).contains(&ok),
            "{ok} admitted in a second at 100/s"
        );
    }

    #[test]
    fn the_bucket_refills_to_its_burst_not_beyond() {
        let mut a = Admission::new(budget(10, 3, 0), 1);
        let t = 1000 * US;
        let n = (0..10).filter(|_| a.admit(t) == Verdict::Admit).count();
        assert_eq!(n, 3);
        let n = (0..10)
            .filter(|_| a.admit(t + 3600 * US) == Verdict::Admit)
            .count();
        assert_eq!(
            n, 3,
            "an hour of quiet refills the bucket only to its burst"
        );
    }

    #[test]
    fn the_handshake_cap_counts_handshakes_in_progress() {
        let mut a = Admission::new(budget(0, 0, 2), 1);
        assert_eq!(a.admit(1), Verdict::Admit);
        assert_eq!(a.admit(2), Verdict::Admit);
        assert!(matches!(
            a.admit(3),
            Verdict::Refuse {
                why: Refusal::Handshakes,
                ..
            }
        ));
        a.handshake_done();
        assert_eq!(a.admit(4), Verdict::Admit);
        assert_eq!(a.refused_handshakes, 1);
        // Refused connections never count as handshakes.
        assert_eq!(a.handshaking(), 2);
    }

    #[test]
    fn retry_after_spreads_with_the_demand_within_its_bounds() {
        let mut a = Admission::new(budget(100, 1, 0), 99);
        let t = 10 * US;
        assert_eq!(a.admit(t), Verdict::Admit);
        let mut seen = Vec::new();
        for _ in 0..2000 {
            if let Verdict::Refuse { retry_after, .. } = a.admit(t) {
                seen.push(retry_after);
            }
        }
        assert!(
            seen.iter().all(|&s| (1..=30).contains(&s)),
            "capped by retry_max"
        );
        // The first refusals of a quiet worker ask for a short wait; with 2,000 refused at 100/s the spread
        // reaches the 20 s the demand needs (so the late ones spread up to it).
        assert!(seen[..50].iter().all(|&s| s == 1));
        let late = &seen[1500..];
        assert!(late.iter().any(|&s| s > 10), "spread grows with demand");
        assert!(late.iter().all(|&s| s <= 20));
        // Two seconds later the old demand is forgotten: the refusals of the new window alone set the spread
        // (the bucket holds one token: 1 admitted, 399 refused, spread up to ceil(399 / 100) = 4 s).
        let later: Vec<u32> = (0..400)
            .filter_map(|_| match a.admit(t + 3 * US) {
                Verdict::Refuse { retry_after, .. } => Some(retry_after),
                Verdict::Admit => None,
            })
            .collect();
        assert_eq!(later.len(), 399);
        assert!(later[..50].iter().all(|&s| s == 1));
        assert!(later.iter().all(|&s| s <= 4));
        assert!(later.contains(&4));
    }

    #[test]
    fn a_budget_without_rate_has_no_bucket() {
        let a = Admission::new(budget(0, 50, 0), 1);
        assert_eq!(a.budget().burst, 0);
        let b = Admission::new(budget(10, 0, 0), 1);
        assert_eq!(b.budget().burst, 1, "a rate needs a bucket of at least one");
    }
}
