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
    /// 403: the charger is registered for security profile `required` and connected with a lower one (plain
    /// ws for profile 2, no client certificate for profile 3).
    ProfileTooLow { required: u8 },
    /// 403: the client certificate's common name is not the charger id in the URL.
    CertificateMismatch,
}

/// How a connection reached the worker: what it proves about the charger besides Basic credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel<'a> {
    /// Plain ws: security profile 1 at most.
    Plain,
    /// TLS without a client certificate: profile 2.
    Tls,
    /// TLS with a client certificate that chains to the operator's CA, with this subject common name:
    /// profile 3.
    TlsClient(&'a str),
}

impl Channel<'_> {
    /// The OCPP security profile this channel provides.
    pub fn profile(&self) -> u8 {
        match self {
            Channel::Plain => 1,
            Channel::Tls => 2,
            Channel::TlsClient(_) => 3,
        }
    }
}

/// A stored credential: `sha256$<salt hex>$<digest hex>` parsed once when it arrives.
struct Credential {
    salt: Box<[u8]>,
    digest: [u8; 32],
}

/// A known charger: its password (if it has one) and the lowest security profile it may connect with.
struct Known {
    cred: Option<Credential>,
    min_profile: u8,
}

#[derive(Default)]
pub struct AuthTable {
    chargers: HashMap<Box<str>, Known>,
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
    /// locks the charger out (401) rather than letting it in without a check. `min_profile` (1–3) is the
    /// lowest security profile it may connect with.
    pub fn set(&mut self, charger: &str, hash: &str, min_profile: u8) {
        let cred = if hash.is_empty() {
            None
        } else {
            Some(parse_hash(hash).unwrap_or(Credential {
                salt: Box::new([]),
                digest: [0xff; 32],
            }))
        };
        self.chargers.insert(
            charger.into(),
            Known {
                cred,
                min_profile: min_profile.clamp(1, 3),
            },
        );
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

    /// Decide a handshake for `charger` presenting optional Basic credentials (user, password) over `channel`,
    /// at `now_us` (microseconds of the worker's monotonic clock).
    ///
    /// Security profile 3: a verified client certificate whose common name is the charger id stands for the
    /// charger, no password needed (any Basic credentials are not looked at); one with another name is
    /// refused. A known charger registered for a higher profile than its channel gives is refused before its
    /// credentials are checked (a password sent over plain ws for a profile-2 charger is not even compared).
    ///
    /// Basic credentials whose user is not the charger id are refused whatever the table says: OCPP security
    /// profile 1 requires the id in the URL to match the credentials.
    ///
    /// Failures are counted only for chargers with a password: only there is a key to guess and a hash to
    /// compute, and counting other ids would let anyone fill the throttle's map with made-up ids. Such a
    /// charger with too many recent failures is `Throttled` before anything is checked, the right password
    /// included; a success clears its failures.
    pub fn decide(
        &self,
        charger: &str,
        basic: Option<(&str, &[u8])>,
        channel: Channel<'_>,
        now_us: u64,
    ) -> Decision {
        let known = self.chargers.get(charger);
        if let Channel::TlsClient(cn) = channel {
            return match known {
                _ if cn != charger => Decision::CertificateMismatch,
                Some(_) => Decision::Accept,
                None if self.accept_unknown => Decision::AcceptUnknown,
                None => Decision::Unknown,
            };
        }
        if let Some(k) = known {
            if k.min_profile > channel.profile() {
                return Decision::ProfileTooLow {
                    required: k.min_profile,
                };
            }
        }
        let cred = match known.map(|k| &k.cred) {
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
        t.set("CP001", &hash(b"0123456789abcdef", "averylongsecretkey"), 1);
        assert_eq!(
            t.decide(
                "CP001",
                Some(("CP001", b"averylongsecretkey")),
                Channel::Plain,
                0
            ),
            Decision::Accept
        );
        assert_eq!(
            t.decide(
                "CP001",
                Some(("CP001", b"wrongwrongwrongwrong")),
                Channel::Plain,
                0
            ),
            Decision::BadCredentials
        );
        assert_eq!(
            t.decide("CP001", None, Channel::Plain, 0),
            Decision::BadCredentials
        );
        assert_eq!(
            t.decide(
                "CP001",
                Some(("CP002", b"averylongsecretkey")),
                Channel::Plain,
                0
            ),
            Decision::BadCredentials
        );
    }

    #[test]
    fn unknown_policy_and_known_without_password() {
        let mut t = AuthTable::new(false);
        t.set("CP009", "", 1);
        assert_eq!(t.decide("CP009", None, Channel::Plain, 0), Decision::Accept);
        assert_eq!(t.decide("NOPE", None, Channel::Plain, 0), Decision::Unknown);
        t.set_accept_unknown(true);
        assert_eq!(
            t.decide("NOPE", None, Channel::Plain, 0),
            Decision::AcceptUnknown
        );
        assert_eq!(t.decide("CP009", None, Channel::Plain, 0), Decision::Accept);
        t.delete("CP009");
        t.set_accept_unknown(false);
        assert_eq!(
            t.decide("CP009", None, Channel::Plain, 0),
            Decision::Unknown
        );
    }

    #[test]
    fn unparsable_hash_locks_out() {
        let mut t = AuthTable::new(true);
        t.set("CP1", "md5$zz", 1);
        assert_eq!(
            t.decide("CP1", Some(("CP1", b"")), Channel::Plain, 0),
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
        t.set("CP1", &hash(b"salt", "the-right-key"), 1);
        t.set("OPEN", "", 1);
        t
    }

    const S: u64 = 1_000_000;

    #[test]
    fn failures_throttle_the_id_and_the_right_password_waits_too() {
        let t = keyed(3);
        let right = Some(("CP1", &b"the-right-key"[..]));
        let wrong = Some(("CP1", &b"a-wrong-guess"[..]));
        for i in 0..3 {
            assert_eq!(
                t.decide("CP1", wrong, Channel::Plain, S + i),
                Decision::BadCredentials
            );
        }
        // Within the back-off: refused, right or wrong, with the seconds left rounded up.
        assert_eq!(
            t.decide("CP1", right, Channel::Plain, S + 2),
            Decision::Throttled { retry_after: 2 }
        );
        assert_eq!(
            t.decide("CP1", wrong, Channel::Plain, 2 * S + 500_000),
            Decision::Throttled { retry_after: 1 }
        );
        assert_eq!(
            t.decide("CP1", None, Channel::Plain, 2 * S + 500_000),
            Decision::Throttled { retry_after: 1 }
        );
        // Over: the right password gets in, and that clears the id.
        assert_eq!(
            t.decide("CP1", right, Channel::Plain, 3 * S + 2),
            Decision::Accept
        );
        assert_eq!(t.throttled_ids(), 0);
    }

    #[test]
    fn missing_or_mismatched_credentials_count_as_failures() {
        let t = keyed(2);
        assert_eq!(
            t.decide("CP1", None, Channel::Plain, S),
            Decision::BadCredentials
        );
        assert_eq!(
            t.decide(
                "CP1",
                Some(("CP2", &b"the-right-key"[..])),
                Channel::Plain,
                S
            ),
            Decision::BadCredentials
        );
        assert!(matches!(
            t.decide(
                "CP1",
                Some(("CP1", &b"the-right-key"[..])),
                Channel::Plain,
                S
            ),
            Decision::Throttled { .. }
        ));
    }

    #[test]
    fn a_success_clears_earlier_failures() {
        let t = keyed(3);
        let right = Some(("CP1", &b"the-right-key"[..]));
        let wrong = Some(("CP1", &b"a-wrong-guess"[..]));
        for _ in 0..2 {
            assert_eq!(
                t.decide("CP1", wrong, Channel::Plain, S),
                Decision::BadCredentials
            );
        }
        assert_eq!(t.decide("CP1", right, Channel::Plain, S), Decision::Accept);
        for _ in 0..2 {
            assert_eq!(
                t.decide("CP1", wrong, Channel::Plain, S),
                Decision::BadCredentials
            );
        }
        assert_eq!(t.decide("CP1", right, Channel::Plain, S), Decision::Accept);
    }

    #[test]
    fn ids_without_a_password_are_never_tracked() {
        let t = keyed(1);
        for _ in 0..10 {
            assert_eq!(
                t.decide("OPEN", Some(("SOMEONE", &b"x"[..])), Channel::Plain, S),
                Decision::BadCredentials
            );
            assert_eq!(
                t.decide("MADE-UP", Some(("OTHER", &b"x"[..])), Channel::Plain, S),
                Decision::BadCredentials
            );
            assert_eq!(
                t.decide("MADE-UP", None, Channel::Plain, S),
                Decision::Unknown
            );
        }
        assert_eq!(t.throttled_ids(), 0);
        assert_eq!(t.decide("OPEN", None, Channel::Plain, S), Decision::Accept);
    }
}

#[cfg(test)]
mod profile_tests {
    use super::*;

    #[test]
    fn registered_profile_is_the_floor() {
        let mut t = AuthTable::new(false);
        t.set("P2", "", 2);
        t.set("P3", "", 3);
        t.set("P1", "", 1);
        assert_eq!(
            t.decide("P2", None, Channel::Plain, 0),
            Decision::ProfileTooLow { required: 2 }
        );
        assert_eq!(t.decide("P2", None, Channel::Tls, 0), Decision::Accept);
        assert_eq!(
            t.decide("P3", None, Channel::Tls, 0),
            Decision::ProfileTooLow { required: 3 }
        );
        assert_eq!(
            t.decide("P3", None, Channel::TlsClient("P3"), 0),
            Decision::Accept
        );
        // A higher profile than registered is always fine.
        assert_eq!(
            t.decide("P1", None, Channel::TlsClient("P1"), 0),
            Decision::Accept
        );
        assert_eq!(t.decide("P1", None, Channel::Tls, 0), Decision::Accept);
    }

    #[test]
    fn client_certificate_must_name_the_charger() {
        let mut t = AuthTable::new(true);
        t.set("CP1", "sha256$00$00", 3);
        assert_eq!(
            t.decide("CP1", None, Channel::TlsClient("CP2"), 0),
            Decision::CertificateMismatch
        );
        // Profile 3 needs no password: the certificate is the credential (even with a password on file).
        assert_eq!(
            t.decide("CP1", None, Channel::TlsClient("CP1"), 0),
            Decision::Accept
        );
        assert_eq!(
            t.decide("NEW", None, Channel::TlsClient("NEW"), 0),
            Decision::AcceptUnknown
        );
        t.set_accept_unknown(false);
        assert_eq!(
            t.decide("NEW", None, Channel::TlsClient("NEW"), 0),
            Decision::Unknown
        );
    }

    #[test]
    fn profile_floor_is_checked_before_the_password_and_not_throttled() {
        let mut t = AuthTable::new(false);
        t.set("P2", "sha256$00$00", 2);
        for _ in 0..50 {
            assert_eq!(
                t.decide(
                    "P2",
                    Some(("P2", &b"whatever-password"[..])),
                    Channel::Plain,
                    0
                ),
                Decision::ProfileTooLow { required: 2 }
            );
        }
        assert_eq!(t.throttled_ids(), 0);
    }
}
