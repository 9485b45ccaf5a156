"""The two certificate tables (migration 30): certificates the node issued to chargers, and what chargers have
installed. Reads on the trio thread (the store's read connection), writes through the store's writer."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.certauthority.pki import HashData, normal_serial
from ampgate.clock import iso_utc, parse_iso
from ampgate.store import Store

# Delivery states of an issued certificate: "pending" until the charger answers CertificateSigned with its
# status (Accepted / Rejected), or "failed" when it could not be delivered (offline, a CALLERROR, no answer).
PENDING = "pending"
FAILED = "failed"
# The newest issued certificates shown per charger (a charger renews yearly: decades of history fit).
ISSUED_SHOWN = 50


class IssuedCertificate(msgspec.Struct, frozen=True, kw_only=True):
    serial: str
    charger_id: str
    certificate_type: str
    subject: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    pem: str
    issued_at: datetime
    delivery: str
    delivery_error: str | None = None
    expiry_warned_at: datetime | None = None
    renewal_requested_at: datetime | None = None


class InstalledCertificate(msgspec.Struct, frozen=True, kw_only=True):
    """A certificate a charger holds: its hash data; subject, end and fingerprint when we installed it (a
    charger's report carries only hashes). `source`: "installed" (our InstallCertificate, Accepted) or
    "reported" (its GetInstalledCertificateIds answer)."""

    charger_id: str
    certificate_type: str
    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    subject: str | None
    not_after: datetime | None
    fingerprint_sha256: str | None
    source: str
    updated_at: datetime
    expiry_warned_at: datetime | None = None


_ISSUED = (
    "serial, charger_id, certificate_type, subject, not_before, not_after, fingerprint_sha256, pem, issued_at,"
    " delivery, delivery_error, expiry_warned_at, renewal_requested_at"
)
_INSTALLED = (
    "charger_id, certificate_type, hash_algorithm, issuer_name_hash, issuer_key_hash, serial_number, subject,"
    " not_after, fingerprint_sha256, source, updated_at, expiry_warned_at"
)
_TIMES_ISSUED = {"not_before", "not_after", "issued_at", "expiry_warned_at", "renewal_requested_at"}
_TIMES_INSTALLED = {"not_after", "updated_at", "expiry_warned_at"}


def _issued(values: tuple[Any, ...]) -> IssuedCertificate:
    names = [n.strip() for n in _ISSUED.split(",")]
    row: dict[str, Any] = {
        n: (parse_iso(v) if n in _TIMES_ISSUED else v) for n, v in zip(names, values, strict=True)
    }
    return IssuedCertificate(**row)


def _installed(values: tuple[Any, ...]) -> InstalledCertificate:
    names = [n.strip() for n in _INSTALLED.split(",")]
    row: dict[str, Any] = {
        n: (parse_iso(v) if n in _TIMES_INSTALLED else v) for n, v in zip(names, values, strict=True)
    }
    return InstalledCertificate(**row)


def _key(h: HashData) -> tuple[str, str, str]:
    return (h.hash_algorithm, h.issuer_name_hash.lower(), normal_serial(h.serial_number))


def _insert_issued(db: sqlite_utils.Database, cert: IssuedCertificate) -> None:
    db.conn.execute(
        f"INSERT INTO charger_certificates ({_ISSUED}) VALUES ({', '.join('?' * 13)})",
        (
            cert.serial,
            cert.charger_id,
            cert.certificate_type,
            cert.subject,
            iso_utc(cert.not_before),
            iso_utc(cert.not_after),
            cert.fingerprint_sha256,
            cert.pem,
            iso_utc(cert.issued_at),
            cert.delivery,
            cert.delivery_error,
            None,
            None,
        ),
    )


def _set(db: sqlite_utils.Database, table: str, where: str, args: tuple[Any, ...], **values: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    db.conn.execute(f"UPDATE {table} SET {sets} WHERE {where}", (*values.values(), *args))


def _upsert_installed(db: sqlite_utils.Database, rows: Iterable[InstalledCertificate]) -> None:
    for r in rows:
        db.conn.execute(
            f"INSERT INTO charger_installed_certificates ({_INSTALLED}) VALUES ({', '.join('?' * 12)})"
            " ON CONFLICT (charger_id, hash_algorithm, issuer_name_hash, serial_number) DO UPDATE SET"
            " certificate_type = excluded.certificate_type, issuer_key_hash = excluded.issuer_key_hash,"
            " subject = coalesce(excluded.subject, subject), not_after = coalesce(excluded.not_after, not_after),"
            " fingerprint_sha256 = coalesce(excluded.fingerprint_sha256, fingerprint_sha256),"
            " source = CASE WHEN excluded.subject IS NULL THEN source ELSE excluded.source END,"
            " updated_at = excluded.updated_at",
            (
                r.charger_id,
                r.certificate_type,
                r.hash_algorithm,
                r.issuer_name_hash.lower(),
                r.issuer_key_hash.lower(),
                normal_serial(r.serial_number),
                r.subject,
                None if r.not_after is None else iso_utc(r.not_after),
                r.fingerprint_sha256,
                r.source,
                iso_utc(r.updated_at),
                None,
            ),
        )


def _replace_reported(
    db: sqlite_utils.Database,
    charger_id: str,
    types: tuple[str, ...] | None,
    rows: list[InstalledCertificate],
) -> None:
    """The charger's list of `types` (None: all) is `rows`: others of those types go, known ones keep what we
    knew of them (subject, end) beyond the hashes."""
    keep = {(r.hash_algorithm, r.issuer_name_hash.lower(), normal_serial(r.serial_number)) for r in rows}
    clause, args = "charger_id = ?", [charger_id]
    if types is not None:
        clause += f" AND certificate_type IN ({', '.join('?' * len(types))})"
        args += list(types)
    for alg, name_hash, serial in db.conn.execute(
        f"SELECT hash_algorithm, issuer_name_hash, serial_number FROM charger_installed_certificates WHERE {clause}",
        args,
    ).fetchall():
        if (alg, name_hash, serial) not in keep:
            _delete_installed(db, charger_id, (alg, name_hash, serial))
    _upsert_installed(db, rows)


def _delete_installed(db: sqlite_utils.Database, charger_id: str, key: tuple[str, str, str]) -> int:
    cur = db.conn.execute(
        "DELETE FROM charger_installed_certificates WHERE charger_id = ? AND hash_algorithm = ?"
        " AND issuer_name_hash = ? AND serial_number = ?",
        (charger_id, *key),
    )
    return cur.rowcount


class CertificateRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _read(self) -> sqlite3.Connection:
        return self._store.reader

    # -- issued ---------------------------------------------------------------------------------------------

    async def add_issued(self, cert: IssuedCertificate) -> None:
        """Record a certificate just signed (before it goes to the charger: a signed certificate is never
        unaccounted for). Waits for the commit."""
        await self._store.write(functools.partial(_insert_issued, cert=cert))

    async def set_delivery(self, serial: str, delivery: str, error: str | None = None) -> None:
        await self._store.write(
            functools.partial(
                _set,
                table="charger_certificates",
                where="serial = ?",
                args=(serial,),
                delivery=delivery,
                delivery_error=error,
            )
        )

    def issued(self, charger_id: str, limit: int = ISSUED_SHOWN) -> list[IssuedCertificate]:
        """The charger's issued certificates, the longest-lived first."""
        cur = self._read.execute(
            f"SELECT {_ISSUED} FROM charger_certificates WHERE charger_id = ? ORDER BY not_after DESC LIMIT ?",
            (charger_id, limit),
        )
        return [_issued(v) for v in cur.fetchall()]

    def get_issued(self, serial: str) -> IssuedCertificate | None:
        v = self._read.execute(
            f"SELECT {_ISSUED} FROM charger_certificates WHERE serial = ?", (serial,)
        ).fetchone()
        return None if v is None else _issued(v)

    def expiring_issued(self, before: datetime) -> list[IssuedCertificate]:
        """Issued certificates ending before `before` whose expiry was not announced, each its charger's current
        one (no certificate of the charger delivered or pending ends later: a renewed one's predecessor is not
        news)."""
        cur = self._read.execute(
            f"SELECT {_ISSUED} FROM charger_certificates AS c WHERE expiry_warned_at IS NULL AND not_after < ?"
            " AND NOT EXISTS (SELECT 1 FROM charger_certificates AS n WHERE n.charger_id = c.charger_id"
            " AND n.not_after > c.not_after AND n.delivery NOT IN ('failed', 'Rejected'))",
            (iso_utc(before),),
        )
        return [_issued(v) for v in cur.fetchall()]

    def renewal_due(self, before: datetime, asked_before: datetime) -> list[IssuedCertificate]:
        """Announced-expiring current certificates (as `expiring_issued`, announced already) whose renewal was
        never asked, or last asked before `asked_before`."""
        cur = self._read.execute(
            f"SELECT {_ISSUED} FROM charger_certificates AS c WHERE expiry_warned_at IS NOT NULL AND not_after < ?"
            " AND (renewal_requested_at IS NULL OR renewal_requested_at < ?)"
            " AND NOT EXISTS (SELECT 1 FROM charger_certificates AS n WHERE n.charger_id = c.charger_id"
            " AND n.not_after > c.not_after AND n.delivery NOT IN ('failed', 'Rejected'))",
            (iso_utc(before), iso_utc(asked_before)),
        )
        return [_issued(v) for v in cur.fetchall()]

    async def mark_issued_warned(self, serial: str, at: datetime) -> None:
        await self._store.write(
            functools.partial(
                _set,
                table="charger_certificates",
                where="serial = ?",
                args=(serial,),
                expiry_warned_at=iso_utc(at),
            )
        )

    async def mark_renewal_requested(self, charger_id: str, at: datetime) -> None:
        """Every certificate of the charger counts as asked to renew at `at`."""
        await self._store.write(
            functools.partial(
                _set,
                table="charger_certificates",
                where="charger_id = ?",
                args=(charger_id,),
                renewal_requested_at=iso_utc(at),
            )
        )

    # -- installed ------------------------------------------------------------------------------------------

    def installed(self, charger_id: str) -> list[InstalledCertificate]:
        cur = self._read.execute(
            f"SELECT {_INSTALLED} FROM charger_installed_certificates WHERE charger_id = ?"
            " ORDER BY certificate_type, serial_number",
            (charger_id,),
        )
        return [_installed(v) for v in cur.fetchall()]

    def expiring_installed(self, before: datetime) -> list[InstalledCertificate]:
        cur = self._read.execute(
            f"SELECT {_INSTALLED} FROM charger_installed_certificates WHERE expiry_warned_at IS NULL"
            " AND not_after IS NOT NULL AND not_after < ?",
            (iso_utc(before),),
        )
        return [_installed(v) for v in cur.fetchall()]

    async def mark_installed_warned(self, cert: InstalledCertificate, at: datetime) -> None:
        await self._store.write(
            functools.partial(
                _set,
                table="charger_installed_certificates",
                where="charger_id = ? AND hash_algorithm = ? AND issuer_name_hash = ? AND serial_number = ?",
                args=(cert.charger_id, cert.hash_algorithm, cert.issuer_name_hash, cert.serial_number),
                expiry_warned_at=iso_utc(at),
            )
        )

    async def installed_one(self, row: InstalledCertificate) -> None:
        """The charger accepted this certificate (InstallCertificate)."""
        await self._store.write(functools.partial(_upsert_installed, rows=[row]))

    async def replace_reported(
        self, charger_id: str, types: tuple[str, ...] | None, rows: list[InstalledCertificate]
    ) -> None:
        """The charger reported `rows` as its certificates of `types` (None: of every type)."""
        await self._store.write(
            functools.partial(_replace_reported, charger_id=charger_id, types=types, rows=rows)
        )

    async def deleted(self, charger_id: str, hash_data: HashData) -> int:
        """The charger deleted the certificate named by `hash_data`; returns how many rows went (0 or 1)."""
        return await self._store.write(
            functools.partial(_delete_installed, charger_id=charger_id, key=_key(hash_data))
        )
