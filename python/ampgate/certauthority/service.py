"""`ChargerCertificates`: charging-station certificates from CSR to expiry, and what chargers have installed.

- Signing (`submit`, the `ChargerCertificateAuthority` of ampgate.certificates): a SignCertificate's CSR is
  checked on the request path (ampgate.certauthority.csr: fast, no I/O) so a bad one is Rejected in the reply;
  a good one is Accepted and queued. The signing and the CertificateSigned CALL happen in this part's own
  tasks, after the reply has gone (the gateway pump sends a batch's replies before any task runs). V2G
  (ISO 15118) CSRs are never signed here: Rejected / NotEnabled, as with no authority at all. Each issued
  certificate is recorded before it goes out, then its delivery (the charger's answer) is.
- Installed certificates (`learn_install`, `learn_delete`, `learn_installed_ids`): handed each answered
  InstallCertificate / DeleteCertificate / GetInstalledCertificateIds by the node (ampgate.ocpp.observed), so
  the list follows whatever sent them (the command API, a script) without a read-back.
- Expiry (`check_expiry`, every `check_interval_s` from `run`): `certificate.expiring` once per certificate
  within `warn_days` of its end, and with `auto_renew` the charger is asked to renew (2.0.1 TriggerMessage
  SignChargingStationCertificate, 1.6 ExtendedTriggerMessage SignChargePointCertificate) when it is online,
  again after RENEW_RETRY if no newer certificate came of it. `renew` asks on demand (the admin route).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import msgspec
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ampgate.bus import Publisher
from ampgate.certauthority import pki
from ampgate.certauthority.authority import Signer, SigningError
from ampgate.certauthority.csr import CHARGING_STATION, CsrRefused, check_csr
from ampgate.certauthority.repository import (
    FAILED,
    PENDING,
    CertificateRepository,
    InstalledCertificate,
    IssuedCertificate,
)
from ampgate.certificates.handlers import NOT_ENABLED, Refusal
from ampgate.clock import Clock
from ampgate.errors import AmpgateError, ConflictError
from ampgate.events import (
    CertificateExpiring,
    CertificateIssued,
    CertificateRenewalRequested,
    CertificateSigningFailed,
    InstalledCertificatesChanged,
)
from ampgate.ocpp.commander import reply_status

log = logging.getLogger(__name__)

# CSRs accepted and waiting to be signed. A fleet renewing at once (the expiry check asks every online charger
# whose certificate is due) must not hold unbounded CSRs; past this a charger is told Rejected and asks again
# (2.0.1 A02.FR.17: the charger retries a SignCertificate that got no certificate).
QUEUE_MAX = 1000
# Signings at once: each may be an operator's signer process (a fork and an exec, maybe an HSM round trip);
# four keep a slow signer from serializing a renewal wave without filling the machine with processes.
SIGNERS = 4
# A renewal asked of a charger that produced no new certificate is asked again after a day: the charger may
# have been busy, rebooting or offline between the trigger and its CSR.
RENEW_RETRY = timedelta(days=1)
# The largest chain OCPP carries (CertificateSigned.certificateChain, both versions: maxLength 10000).
MAX_CHAIN_CHARS = 10_000
UNSPECIFIED = "Unspecified"
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """`cert_days`: validity of an issued certificate (cut to the CA's end); `organization`: the O a 2.0.1 CSR
    must carry (None: any); `warn_days`: how long before its end a certificate is announced as expiring;
    `check_interval_s`: how often that is checked; `auto_renew`: ask the charger to renew when announced."""

    cert_days: float = 365.0
    organization: str | None = None
    warn_days: float = 30.0
    check_interval_s: float = 3600.0
    auto_renew: bool = True


class Commands(Protocol):
    """The Commander (`ampgate.ocpp.commander.Commander`): the charger's protocol if it may be sent `action`
    now, and the call itself."""

    def ready(self, charger_id: str, action: str, /) -> str: ...
    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


class RenewalResult(msgspec.Struct, frozen=True, kw_only=True):
    action: str
    status: str | None


class CertificateView(msgspec.Struct, frozen=True, kw_only=True):
    """One certificate of a charger as the API shows it: `kind` "issued" (by the node's CA, the charger's own)
    or "installed" (held by the charger). Fields a kind lacks are null."""

    kind: str
    certificate_type: str
    serial_number: str
    subject: str | None
    not_before: datetime | None
    not_after: datetime | None
    expiring: bool
    fingerprint_sha256: str | None
    issued_at: datetime | None = None
    delivery: str | None = None
    delivery_error: str | None = None
    hash_algorithm: str | None = None
    issuer_name_hash: str | None = None
    issuer_key_hash: str | None = None
    source: str | None = None
    updated_at: datetime | None = None


class _Job(NamedTuple):
    charger_id: str
    csr: x509.CertificateSigningRequest
    csr_pem: str


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _common_name(cert: x509.Certificate) -> str | None:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


class ChargerCertificates:
    """Start `run` in the node's nursery; until it runs, `submit` refuses (nothing could sign)."""

    def __init__(
        self,
        rows: CertificateRepository,
        signer: Signer | None,
        commands: Commands,
        bus: Publisher,
        clock: Clock,
        settings: Settings,
        *,
        ca_certificate: x509.Certificate | None = None,
    ) -> None:
        self._rows = rows
        self._signer = signer
        self._commands = commands
        self._bus = bus
        self._clock = clock
        self.settings = settings
        # The node CA's certificate (None with an operator's signer): the issuer of certificates it installs.
        self._ca = ca_certificate
        self._jobs: trio.MemorySendChannel[_Job] | None = None

    # -- signing ----------------------------------------------------------------------------------------------

    def submit(self, charger_id: str, csr: str, certificate_type: str | None) -> Refusal | None:
        """Whether the CSR will be signed: None (Accepted; CertificateSigned follows), or why not. A 2.0.1
        request without certificateType is for the charging-station certificate (the spec's default)."""
        kind = certificate_type or CHARGING_STATION
        if kind != CHARGING_STATION:
            return Refusal(NOT_ENABLED, "no V2G (ISO 15118) PKI is configured on this central system")
        if self._signer is None:
            return Refusal(NOT_ENABLED, "no certificate authority is configured on this central system")
        try:
            parsed = check_csr(csr, charger_id, organization=self.settings.organization)
        except CsrRefused as e:
            log.info("%s: CSR refused: %s", charger_id, e.message)
            return Refusal(e.reason_code, e.message)
        if self._jobs is None:
            return Refusal(UNSPECIFIED, "the certificate authority is not running")
        try:
            self._jobs.send_nowait(_Job(charger_id, parsed, csr))
        except trio.WouldBlock:
            return Refusal(UNSPECIFIED, "too many certificate requests are waiting; try again later")
        return None

    async def _work(self, jobs: trio.MemoryReceiveChannel[_Job]) -> None:
        async with jobs:
            async for job in jobs:
                try:
                    await self._issue(job)
                except Exception:
                    # Not one of ours (a bug, a store failure): this CSR is lost, the next ones are signed.
                    log.exception("%s: signing a certificate failed", job.charger_id)

    async def _issue(self, job: _Job) -> None:
        charger_id = job.charger_id
        assert self._signer is not None
        try:
            chain = self._chain(
                job, await self._signer.issue(charger_id, job.csr, job.csr_pem, self.settings.cert_days)
            )
        except SigningError as e:
            log.warning("%s: certificate not signed: %s", charger_id, e.message)
            self._bus.publish(
                CertificateSigningFailed(
                    at=self._clock.now(),
                    charger_id=charger_id,
                    certificate_type=CHARGING_STATION,
                    reason=e.message,
                )
            )
            return
        leaf = chain[0]
        chain_pem = "".join(pki.pem_of(c) for c in chain)
        serial = pki.serial_hex(leaf.serial_number)
        await self._rows.add_issued(
            IssuedCertificate(
                serial=serial,
                charger_id=charger_id,
                certificate_type=CHARGING_STATION,
                subject=_subject(leaf),
                not_before=pki.not_before(leaf),
                not_after=pki.not_after(leaf),
                fingerprint_sha256=pki.fingerprint(leaf),
                pem=pki.pem_of(leaf),
                issued_at=self._clock.now(),
                delivery=PENDING,
            )
        )
        delivery, error = await self._deliver(charger_id, chain_pem)
        await self._rows.set_delivery(serial, delivery, error)
        self._bus.publish(
            CertificateIssued(
                at=self._clock.now(),
                charger_id=charger_id,
                serial=serial,
                certificate_type=CHARGING_STATION,
                not_after=pki.not_after(leaf),
                fingerprint_sha256=pki.fingerprint(leaf),
                delivery=delivery,
                error=error,
            )
        )

    @staticmethod
    def _chain(job: _Job, pem: str) -> list[x509.Certificate]:
        """The signer's chain if it certifies what was asked: the first certificate is for the CSR's key and
        the charger's id. Raises SigningError otherwise (an operator's signer is trusted to sign, not to be
        right)."""
        try:
            chain = pki.load_chain(pem)
        except ValueError:
            raise SigningError("the signer's output is not a PEM certificate chain") from None
        leaf = chain[0]
        if leaf.public_key().public_bytes(*_SPKI) != job.csr.public_key().public_bytes(*_SPKI):
            raise SigningError("the signer's first certificate is not for the CSR's key")
        if _common_name(leaf) != job.charger_id:
            raise SigningError(
                f"the signer's certificate has CN {_common_name(leaf)!r}, not the charger's id"
            )
        if sum(len(pki.pem_of(c)) for c in chain) > MAX_CHAIN_CHARS:
            raise SigningError(f"the chain is longer than OCPP's {MAX_CHAIN_CHARS} characters")
        return chain

    async def _deliver(self, charger_id: str, chain_pem: str) -> tuple[str, str | None]:
        """Send the chain with CertificateSigned: (the charger's status, None) or ("failed", why)."""
        try:
            protocol = self._commands.ready(charger_id, "CertificateSigned")
            payload: dict[str, Any] = {"certificateChain": chain_pem}
            if protocol == "ocpp2.0.1":
                payload["certificateType"] = CHARGING_STATION
            reply = await self._commands.call(charger_id, "CertificateSigned", payload)
        except AmpgateError as e:
            log.warning("%s: CertificateSigned not delivered: %s", charger_id, e.message)
            return FAILED, e.message
        return reply_status(reply) or FAILED, None

    # -- renewal and expiry -----------------------------------------------------------------------------------

    async def renew(self, charger_id: str, *, automatic: bool = False) -> RenewalResult:
        """Ask the charger to send a new CSR now. Raises ConflictError `charger_ca_not_configured` (nothing
        would sign it) and what the Commander raises (unknown, offline, not accepted, CALLERROR, timeout)."""
        if self._signer is None:
            raise ConflictError(
                "no certificate authority is configured: a renewal's CSR would be refused",
                code="charger_ca_not_configured",
            )
        protocol = self._commands.ready(charger_id, "TriggerMessage")
        if protocol == "ocpp1.6":
            action, payload = "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
        else:
            action, payload = "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}
        reply = await self._commands.call(charger_id, action, payload)
        status = reply_status(reply)
        now = self._clock.now()
        await self._rows.mark_renewal_requested(charger_id, now)
        self._bus.publish(
            CertificateRenewalRequested(
                at=now, charger_id=charger_id, action=action, status=status, automatic=automatic
            )
        )
        return RenewalResult(action=action, status=status)

    async def check_expiry(self) -> None:
        """Announce what ends within `warn_days` (once each), then ask for renewals when automatic."""
        now = self._clock.now()
        horizon = now + timedelta(days=self.settings.warn_days)
        for issued in self._rows.expiring_issued(horizon):
            await self._rows.mark_issued_warned(issued.serial, now)
            self._bus.publish(
                CertificateExpiring(
                    at=now,
                    charger_id=issued.charger_id,
                    kind="issued",
                    certificate_type=issued.certificate_type,
                    serial_number=issued.serial,
                    not_after=issued.not_after,
                )
            )
        for installed in self._rows.expiring_installed(horizon):
            assert installed.not_after is not None
            await self._rows.mark_installed_warned(installed, now)
            self._bus.publish(
                CertificateExpiring(
                    at=now,
                    charger_id=installed.charger_id,
                    kind="installed",
                    certificate_type=installed.certificate_type,
                    serial_number=installed.serial_number,
                    not_after=installed.not_after,
                )
            )
        if not self.settings.auto_renew or self._signer is None:
            return
        for charger_id in sorted({c.charger_id for c in self._rows.renewal_due(horizon, now - RENEW_RETRY)}):
            try:
                await self.renew(charger_id, automatic=True)
            except AmpgateError as e:
                # Offline or busy: asked again at the next check.
                log.info("%s: certificate renewal not asked now: %s", charger_id, e.message)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sign what is submitted and check expiry every `check_interval_s`, until cancelled."""
        send, receive = trio.open_memory_channel[_Job](QUEUE_MAX)
        async with trio.open_nursery() as nursery, send, receive:
            for _ in range(SIGNERS):
                nursery.start_soon(self._work, receive.clone())
            self._jobs = send
            task_status.started()
            try:
                while True:
                    try:
                        await self.check_expiry()
                    except Exception:
                        log.exception("certificate expiry check failed")
                    await trio.sleep(self.settings.check_interval_s)
            finally:
                self._jobs = None

    # -- installed certificates -------------------------------------------------------------------------------

    async def learn_install(self, charger_id: str, payload: Any, reply: Any) -> None:
        """An answered InstallCertificate: an Accepted certificate is recorded with its subject and end."""
        status = reply_status(reply)
        try:
            if status == "Accepted" and isinstance(payload, dict):
                cert = pki.load_chain(str(payload.get("certificate", "")))[0]
                issuer = self._ca if self._ca is not None and cert.issuer == self._ca.subject else None
                hd = pki.hash_data(cert, issuer)
                if hd is None:
                    log.info(
                        "%s: installed certificate %s: its issuer's key is unknown", charger_id, cert.subject
                    )
                else:
                    await self._rows.installed_one(
                        InstalledCertificate(
                            charger_id=charger_id,
                            certificate_type=str(payload.get("certificateType")),
                            hash_algorithm=hd.hash_algorithm,
                            issuer_name_hash=hd.issuer_name_hash,
                            issuer_key_hash=hd.issuer_key_hash,
                            serial_number=hd.serial_number,
                            subject=_subject(cert),
                            not_after=pki.not_after(cert),
                            fingerprint_sha256=pki.fingerprint(cert),
                            source="installed",
                            updated_at=self._clock.now(),
                        )
                    )
        except Exception:
            # What the charger accepted is not ours to refuse after the fact: the list misses it until the next
            # GetInstalledCertificateIds; the command's answer is unaffected.
            log.exception("%s: recording an installed certificate failed", charger_id)
        self._changed(charger_id, "InstallCertificate", status)

    async def learn_delete(self, charger_id: str, payload: Any, reply: Any) -> None:
        """An answered DeleteCertificate: an Accepted one leaves the list."""
        status = reply_status(reply)
        try:
            data = payload.get("certificateHashData") if isinstance(payload, dict) else None
            if status == "Accepted" and isinstance(data, dict):
                await self._rows.deleted(charger_id, _hash_data(data))
        except Exception:
            log.exception("%s: recording a deleted certificate failed", charger_id)
        self._changed(charger_id, "DeleteCertificate", status)

    async def learn_installed_ids(self, charger_id: str, payload: Any, reply: Any) -> None:
        """An answered GetInstalledCertificateIds: the charger's list of the asked types is what it reported
        (NotFound: none). 2.0.1 asks for a list of types (none: every type) and answers with
        certificateHashDataChain; 1.6 asks for one type and answers with certificateHashData."""
        status = reply_status(reply)
        try:
            if status in ("Accepted", "NotFound") and isinstance(payload, dict) and isinstance(reply, dict):
                asked = payload.get("certificateType")
                now = self._clock.now()
                rows: list[InstalledCertificate] = []
                if isinstance(asked, str):  # 1.6
                    types: tuple[str, ...] | None = (asked,)
                    for data in reply.get("certificateHashData") or ():
                        rows.append(_reported(charger_id, asked, _hash_data(data), now))
                else:
                    types = tuple(asked) if asked else None
                    for chain in reply.get("certificateHashDataChain") or ():
                        kind = str(chain.get("certificateType"))
                        rows.append(
                            _reported(charger_id, kind, _hash_data(chain["certificateHashData"]), now)
                        )
                        for child in chain.get("childCertificateHashData") or ():
                            rows.append(_reported(charger_id, kind, _hash_data(child), now))
                await self._rows.replace_reported(charger_id, types, rows)
        except Exception:
            log.exception("%s: recording the installed certificates failed", charger_id)
        self._changed(charger_id, "GetInstalledCertificateIds", status)

    def _changed(self, charger_id: str, action: str, status: str | None) -> None:
        self._bus.publish(
            InstalledCertificatesChanged(
                at=self._clock.now(),
                charger_id=charger_id,
                action=action,
                status=status,
                count=len(self._rows.installed(charger_id)),
            )
        )

    # -- reads ------------------------------------------------------------------------------------------------

    def listing(self, charger_id: str) -> list[CertificateView]:
        """The charger's issued certificates (longest-lived first), then what it has installed."""
        horizon = self._clock.now() + timedelta(days=self.settings.warn_days)
        out = [
            CertificateView(
                kind="issued",
                certificate_type=c.certificate_type,
                serial_number=c.serial,
                subject=c.subject,
                not_before=c.not_before,
                not_after=c.not_after,
                expiring=c.not_after < horizon,
                fingerprint_sha256=c.fingerprint_sha256,
                issued_at=c.issued_at,
                delivery=c.delivery,
                delivery_error=c.delivery_error,
            )
            for c in self._rows.issued(charger_id)
        ]
        out += [
            CertificateView(
                kind="installed",
                certificate_type=c.certificate_type,
                serial_number=c.serial_number,
                subject=c.subject,
                not_before=None,
                not_after=c.not_after,
                expiring=c.not_after is not None and c.not_after < horizon,
                fingerprint_sha256=c.fingerprint_sha256,
                hash_algorithm=c.hash_algorithm,
                issuer_name_hash=c.issuer_name_hash,
                issuer_key_hash=c.issuer_key_hash,
                source=c.source,
                updated_at=c.updated_at,
            )
            for c in self._rows.installed(charger_id)
        ]
        return out


def _hash_data(data: dict[str, Any]) -> pki.HashData:
    return pki.HashData(
        hash_algorithm=str(data["hashAlgorithm"]),
        issuer_name_hash=str(data["issuerNameHash"]).lower(),
        issuer_key_hash=str(data["issuerKeyHash"]).lower(),
        serial_number=pki.normal_serial(str(data["serialNumber"])),
    )


def _reported(charger_id: str, kind: str, hd: pki.HashData, now: datetime) -> InstalledCertificate:
    return InstalledCertificate(
        charger_id=charger_id,
        certificate_type=kind,
        hash_algorithm=hd.hash_algorithm,
        issuer_name_hash=hd.issuer_name_hash,
        issuer_key_hash=hd.issuer_key_hash,
        serial_number=hd.serial_number,
        subject=None,
        not_after=None,
        fingerprint_sha256=None,
        source="reported",
        updated_at=now,
    )
