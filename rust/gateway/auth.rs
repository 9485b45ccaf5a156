//! The handshake decision table: which chargers are known, with which password, and whether unknown chargers
//! are admitted. The control plane pushes it down (see `link::Down::Auth*`), so a boot storm never waits on
//! Python per handshake. Failed attempts are throttled per charger id (`super::throttle`).

use std::cell::RefCell;
use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::throttle::{Throttle, ThrottleConfig};

/// What the handshake should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A charger the table knows, with the right credentials if it has a password.
    Accept,
    /// A charger the table does not know, and unknown chargers are admitted: the handshake goes on if the
    /// node's rate of new unknown ids allows (`super::admission`).
    AcceptUnknown,
    /// 401: credentials missing or wrong for a charger that has a password.
    BadCredentials,
    /// 404: not a known charger and unknown chargers are not admitted.
    Unknown,
    /// Too many failed attempts for this charger id lately: refused for `retry_after` more seconds whatever
    /// the credentials, without checking them.
    Throttled { retry_after: u32 },
}

/// A stored credential: `sha256$<salt hex>$<digest hex>` parsed once when it arrives.
struct Credential {
    salt: Box<[u8]>,
    digest: [u8; 32],
}

#[derive(Default)]
pub struct AuthTable {
    chargers: HashMap<Box<str>, Option<Credential>>,
    accept_unknown: bool,
    /// The one part a decision changes. Every connection reads the table through its shared `Ctx`, and a
    /// worker is one thread, so a `RefCell` (borrowed only inside `decide`) rather than `&mut` through every
    /// connection call.
    throttle: RefCell<Throttle>,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse_hash(stored: &str) -> Option<Credential> {
    let mut parts = stored.split('$');
    if parts.next()? != "sha256" {
        return None;
    }
    let salt = unhex(parts.next()?)?;
    let digest: [u8; 32] = unhex(parts.next()?)?.try_into().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Credential {
        salt: salt.into_boxed_slice(),
        digest,
    })
}

/// Constant-time comparison, so the time a check takes says nothing about how much of a digest matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AuthTable {
    /// A table with the default throttle ([`ThrottleConfig::default`]).
    pub fn new(accept_unknown: bool) -> Self {
        Self::with_throttle(accept_unknown, ThrottleConfig::default())
    }

    pub fn with_throttle(accept_unknown: bool, throttle: ThrottleConfig) -> Self {
        Self {
            chargers: HashMap::new(),
            accept_unknown,
            throttle: RefCell::new(Throttle::new(throttle)),
        }
    }

    /// Charger ids whose failures are tracked now.
    pub fn throttled_ids(&self) -> usize {
        self.throttle.borrow().len()
    }

    pub fn clear(&mut self) {
        self.chargers = HashMap::new();
    }

    /// Record a known charger. An empty `hash` means known without a password; a hash that does not parse
    /// locks the charger out (401) rather than letting it in without a check.
    pub fn set(&mut self, charger: &str, hash: &str) {
        let cred = if hash.is_empty() {
            None
        } else {
            Some(parse_hash(hash).unwrap_or(Credential {
                salt: Box::new([]),
                digest: [0xff; 32],
            }))
        };
        self.chargers.insert(charger.into(), cred);
    }

    pub fn delete(&mut self, charger: &str) {
        self.chargers.remove(charger);
    }

    pub fn set_accept_unknown(&mut self, on: bool) {
        self.accept_unknown = on;
    }

    pub fn len(&self) -> usize {
        self.chargers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chargers.is_empty()
    }

    /// Decide a handshake for `charger` presenting optional Basic credentials (user, password), at `now_us`
    /// (microseconds of the worker's monotonic clock).
    ///
    /// Basic credentials whose user is not the charger id are refused whatever the table says: OCPP security
    /// profile 1 requires the id in the URL to match the credentials.
    ///
    /// Failures are counted only for chargers with a password: only there is a key to guess and a hash to
    /// compute, and counting other ids would let anyone fill the throttle's map with made-up ids. Such a
    /// charger with too many recent failures is `Throttled` before anything is checked, the right password
    /// included; a success clears its failures.
    pub fn decide(&self, charger: &str, basic: Option<(&str, &[u8])>, now_us: u64) -> Decision {
        let cred = match self.chargers.get(charger) {
            Some(Some(cred)) => cred,
            known => {
                if basic.is_some_and(|(user, _)| user != charger) {
                    return Decision::BadCredentials;
                }
                return match known {
                    None if self.accept_unknown => Decision::AcceptUnknown,
                    None => Decision::Unknown,
                    Some(_) => Decision::Accept,
                };
            }
        };
        let mut throttle = self.throttle.borrow_mut();
        if let Some(left_us) = throttle.blocked(charger, now_us) {
            // Whole seconds, rounded up: a charger that waits exactly this long is let through.
            let retry_after = left_us.div_ceil(1_000_000).clamp(1, u32::MAX as u64) as u32;
            return Decision::Throttled { retry_after };
        }
        let good = match basic {
            Some((user, password)) if user == charger => {
                let mut h = Sha256::new();
                h.update(&cred.salt);
                h.update(password);
                same(&h.finalize(), &cred.digest)
            }
            _ => false,
        };
        if good {
            throttle.succeeded(charger);
            Decision::Accept
        } else {
            throttle.failed(charger, now_us);
            Decision::BadCredentials
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(salt: &[u8], pw: &str) -> String {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(pw.as_bytes());
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        format!("sha256${}${}", hex(salt), hex(&h.finalize()))
    }

    #[test]
    fn password_checked_against_salted_hash() {
        let mut t = AuthTable::new(false);
        t.set("CP001", &hash(b"0123456789abcdef", "averylongsecretkey"));
        assert_eq!(
            t.decide("CP001", Some(("CP001", b"averylongsecretkey")), 0),
            Decision::Accept
        );
        assert_eq!(
            t.decide("CP001", Some(("CP001", b"wrongwrongwrongwrong")), 0),
            Decision::BadCredentials
        );
        assert_eq!(t.decide("CP001", None, 0), Decision::BadCredentials);
        assert_eq!(
            t.decide("CP001", Some(("CP002", b"averylongsecretkey")), 0),
            Decision::BadCredentials
        );
    }

    #[test]
    fn unknown_policy_and_known_without_password() {
        let mut t = AuthTable::new(false);
        t.set("CP009", "");
        assert_eq!(t.decide("CP009", None, 0), Decision::Accept);
        assert_eq!(t.decide("NOPE", None, 0), Decision::Unknown);
        t.set_accept_unknown(true);
        assert_eq!(t.decide("NOPE", None, 0), Decision::AcceptUnknown);
        assert_eq!(t.decide("CP009", None, 0), Decision::Accept);
        t.delete("CP009");
        t.set_accept_unknown(false);
        assert_eq!(t.decide("CP009", None, 0), Decision::Unknown);
    }

    #[test]
    fn unparsable_hash_locks_out() {
        let mut t = AuthTable::new(true);
        t.set("CP1", "md5$zz");
        assert_eq!(
            t.decide("CP1", Some(("CP1", b"")), 0),
            Decision::BadCredentials
        );
    }

    fn keyed(limit: u32) -> AuthTable {
        let mut t = AuthTable::with_throttle(
            false,
            ThrottleConfig {
                limit,
                window: std::time::Duration::from_secs(10),
                backoff: std::time::Duration::from_secs(2),
                max_ids: 100,
            },
        );
        t.set("CP1", &hash(b"salt", "the-right-key"));
        t.set("OPEN", "");
        t
    }

    const S: u64 = 1_000_000;

    #[test]
    fn failures_throttle_the_id_and_the_right_password_waits_too() {
        let t = keyed(3);
        let right = Some(("CP1", &b"the-right-key"[..]));
        let wrong = Some(("CP1", &b"a-wrong-guess"[..]));
        for i in 0..3 {
            assert_eq!(t.decide("CP1", wrong, S + i), Decision::BadCredentials);
        }
        // Within the back-off: refused, right or wrong, with the seconds left rounded up.
        assert_eq!(
            t.decide("CP1", right, S + 2),
            Decision::Throttled { retry_after: 2 }
        );
        assert_eq!(
            t.decide("CP1", wrong, 2 * S + 500_000),
            Decision::Throttled { retry_after: 1 }
        );
        assert_eq!(
            t.decide("CP1", None, 2 * S + 500_000),
            Decision::Throttled { retry_after: 1 }
        );
        // Over: the right password gets in, and that clears the id.
        assert_eq!(t.decide("CP1", right, 3 * S + 2), Decision::Accept);
        assert_eq!(t.throttled_ids(), 0);
    }

    #[test]
    fn missing_or_mismatched_credentials_count_as_failures() {
        let t = keyed(2);
        assert_eq!(t.decide("CP1", None, S), Decision::BadCredentials);
        assert_eq!(
            t.decide("CP1", Some(("CP2", &b"the-right-key"[..])), S),
            Decision::BadCredentials
        );
        assert!(matches!(
            t.decide("CP1", Some(("CP1", &b"the-right-key"[..])), S),
            Decision::Throttled { .. }
        ));
    }

    #[test]
    fn a_success_clears_earlier_failures() {
        let t = keyed(3);
        let right = Some(("CP1", &b"the-right-key"[..]));
        let wrong = Some(("CP1", &b"a-wrong-guess"[..]));
        for _ in 0..2 {
            assert_eq!(t.decide("CP1", wrong, S), Decision::BadCredentials);
        }
        assert_eq!(t.decide("CP1", right, S), Decision::Accept);
        for _ in 0..2 {
            assert_eq!(t.decide("CP1", wrong, S), Decision::BadCredentials);
        }
        assert_eq!(t.decide("CP1", right, S), Decision::Accept);
    }

    #[test]
    fn ids_without_a_password_are_never_tracked() {
        let t = keyed(1);
        for _ in 0..10 {
            assert_eq!(
                t.decide("OPEN", Some(("SOMEONE", &b"x"[..])), S),
                Decision::BadCredentials
            );
            assert_eq!(
                t.decide("MADE-UP", Some(("OTHER", &b"x"[..])), S),
                Decision::BadCredentials
            );
            assert_eq!(t.decide("MADE-UP", None, S), Decision::Unknown);
        }
        assert_eq!(t.throttled_ids(), 0);
        assert_eq!(t.decide("OPEN", None, S), Decision::Accept);
    }
}
