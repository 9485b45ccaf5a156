"""Secrets at rest: charger passwords (salted SHA-256, verified by the Rust gateway) and API tokens (SHA-256).

Neither uses a slow KDF, on purpose:
- Charger passwords are OCPP BasicAuthPassword keys, 16–40 characters that the CSMS or installer generates at
  random, not words a person picks; a slow KDF buys little against guessing keys like that, and the gateway
  must check thousands of handshakes a second during a boot storm (a whole fleet reconnecting after an outage)
  without stalling. One salted SHA-256 costs well under a microsecond per check.
- API tokens are 256 bits from `secrets`: nothing to guess, so a plain digest is enough; it keeps the lookup an
  indexed equality on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# The stored form is "sha256$<salt hex>$<digest hex>"; the Rust gateway (rust/gateway/auth.rs) parses exactly
# this, so the prefix, separator and lowercase hex are part of a cross-language contract.
PASSWORD_SCHEME = "sha256"
# 16 random bytes: unique per charger with overwhelming probability, so equal keys never share a digest.
SALT_BYTES = 16
# Prefix of every API token: makes a leaked token recognisable to secret scanners and to a reader of logs.
TOKEN_PREFIX = "agt_"
# 32 random bytes = 256 bits, base64url-encoded after the prefix.
TOKEN_BYTES = 32


def hash_password(password: str) -> str:
    """Return `"sha256$" + salt_hex + "$" + hex(sha256(salt + password_utf8))` with a fresh 16-byte salt.

    Promises a string the gateway's `AuthTable::set` accepts. Does not validate the password's length or
    alphabet (that is `chargers.validate_password`'s job). Never raises for a `str`.
    """
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.sha256(salt + password.encode("utf-8")).hexdigest()
    return f"{PASSWORD_SCHEME}${salt.hex()}${digest}"


def verify_password(password: str, stored: str) -> bool:
    """True iff `password` matches `stored` (a `hash_password` result). The digest comparison is constant-time.

    A malformed `stored` value yields False rather than an exception, like the gateway, which locks such a
    charger out instead of letting it in unchecked.
    """
    parts = stored.split("$")
    if len(parts) != 3 or parts[0] != PASSWORD_SCHEME:
        return False
    try:
        salt = bytes.fromhex(parts[1])
        expected = bytes.fromhex(parts[2])
    except ValueError:
        return False
    actual = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return hmac.compare_digest(actual, expected)


def new_token() -> str:
    """A fresh API token in plaintext: `"agt_" + secrets.token_urlsafe(32)`. Never raises."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """The stored form of an API token: its SHA-256 as lowercase hex. Never raises for a `str`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
