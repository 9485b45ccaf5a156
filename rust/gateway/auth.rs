//! The handshake decision table: which chargers are known, with which password, and whether unknown chargers
//! are admitted. The control plane pushes it down (see `link::Down::Auth*`), so a boot storm never waits on
//! Python per handshake.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// What the handshake should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    /// 401: credentials missing or wrong for a charger that has a password.
    BadCredentials,
    /// 404: not a known charger and unknown chargers are not admitted.
    Unknown,
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
    pub fn new(accept_unknown: bool) -> Self {
        Self {
            chargers: HashMap::new(),
            accept_unknown,
        }
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

    /// Decide a handshake for `charger` presenting optional Basic credentials (user, password).
    ///
    /// Basic credentials whose user is not the charger id are refused whatever the table says: OCPP security
    /// profile 1 requires the id in the URL to match the credentials.
    pub fn decide(&self, charger: &str, basic: Option<(&str, &[u8])>) -> Decision {
        if let Some((user, _)) = basic {
            if user != charger {
                return Decision::BadCredentials;
            }
        }
        match self.chargers.get(charger) {
            None if self.accept_unknown => Decision::Accept,
            None => Decision::Unknown,
            Some(None) => Decision::Accept,
            Some(Some(cred)) => match basic {
                None => Decision::BadCredentials,
                Some((_, password)) => {
                    let mut h = Sha256::new();
                    h.update(&cred.salt);
                    h.update(password);
                    if same(&h.finalize(), &cred.digest) {
                        Decision::Accept
                    } else {
                        Decision::BadCredentials
                    }
                }
            },
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
            t.decide("CP001", Some(("CP001", b"averylongsecretkey"))),
            Decision::Accept
        );
        assert_eq!(
            t.decide("CP001", Some(("CP001", b"wrongwrongwrongwrong"))),
            Decision::BadCredentials
        );
        assert_eq!(t.decide("CP001", None), Decision::BadCredentials);
        assert_eq!(
            t.decide("CP001", Some(("CP002", b"averylongsecretkey"))),
            Decision::BadCredentials
        );
    }

    #[test]
    fn unknown_policy_and_known_without_password() {
        let mut t = AuthTable::new(false);
        t.set("CP009", "");
        assert_eq!(t.decide("CP009", None), Decision::Accept);
        assert_eq!(t.decide("NOPE", None), Decision::Unknown);
        t.set_accept_unknown(true);
        assert_eq!(t.decide("NOPE", None), Decision::Accept);
        t.delete("CP009");
        t.set_accept_unknown(false);
        assert_eq!(t.decide("CP009", None), Decision::Unknown);
    }

    #[test]
    fn unparsable_hash_locks_out() {
        let mut t = AuthTable::new(true);
        t.set("CP1", "md5$zz");
        assert_eq!(
            t.decide("CP1", Some(("CP1", b""))),
            Decision::BadCredentials
        );
    }
}
