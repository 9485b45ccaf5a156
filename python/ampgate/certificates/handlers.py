"""Certificate requests from chargers, answered per the spec by what the node is configured with.

- SignCertificate (2.0.1 [A02/A03], 1.6 security): a charging-station certificate signing request. With a
  certificate authority the CSR is accepted and the signed certificate follows later (CertificateSigned); with
  none configured, the answer is Rejected, and in 2.0.1 `statusInfo.reasonCode` "NotEnabled" (appendix 5:
  "Feature is not enabled") with a sentence saying what is missing. A request that holds no PEM CSR is Rejected
  with "InvalidCSR" whatever is configured.
- Get15118EVCertificate (2.0.1 [M01/M02]): with no contract-certificate provider the answer is Failed,
  "NotEnabled", and an empty `exiResponse` (the field is required; nothing is made up).
- GetCertificateStatus (2.0.1 [M06]): with no OCSP responder, Failed and "NotEnabled".

Each request is published as `certificate.requested` with the answer given. A certificate authority
(ampgate.certauthority, with `--charger-ca-dir` or `--charger-ca-signer`) plugs in through
`ChargerCertificateAuthority`; without one a node never issues a certificate.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import CertificateRequested
from ampgate.ocpp import v16, v201
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import OcppRouter, Session

log = logging.getLogger(__name__)

NOT_ENABLED = "NotEnabled"
INVALID_CSR = "InvalidCSR"
_CSR_BEGIN = "-----BEGIN CERTIFICATE REQUEST-----"
_CSR_END = "-----END CERTIFICATE REQUEST-----"


class Refusal(NamedTuple):
    """Why a CSR will not be signed: the 2.0.1 `statusInfo` (1.6 has only the Rejected status)."""

    reason_code: str
    additional_info: str


class ChargerCertificateAuthority(Protocol):
    """Signs charging-station certificates (ampgate.certauthority): `submit` takes the CSR and returns None
    when it will be signed (the certificate then goes to the charger with CertificateSigned), else why not. It
    answers on the request path, so it must not wait."""

    def submit(self, charger_id: str, csr: str, certificate_type: str | None, /) -> Refusal | None: ...


class ContractCertificateProvider(Protocol):
    """Answers an EV's ISO 15118 contract-certificate request: the EXI response, or None on failure."""

    async def exchange(self, schema_version: str, action: str, exi_request: str, /) -> str | None: ...


class OcspResponder(Protocol):
    """Answers an OCSP request for a certificate of the V2G chain: the DER OCSP response in Base64, or None."""

    async def check(self, request: dict[str, Any], /) -> str | None: ...


def _looks_like_csr(csr: str) -> bool:
    text = csr.strip()
    return text.startswith(_CSR_BEGIN) and text.endswith(_CSR_END)


class CertificateHandlers:
    def __init__(
        self,
        bus: Publisher,
        clock: Clock,
        *,
        authority: ChargerCertificateAuthority | None = None,
        contracts: ContractCertificateProvider | None = None,
        ocsp: OcspResponder | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._authority = authority
        self._contracts = contracts
        self._ocsp = ocsp

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP16, "SignCertificate", self._sign16)
        router.register(OCPP201, "SignCertificate", self._sign201)
        router.register(OCPP201, "Get15118EVCertificate", self._ev_certificate)
        router.register(OCPP201, "GetCertificateStatus", self._certificate_status)

    def _published(
        self, session: Session, action: str, kind: str | None, status: str, reason: str | None
    ) -> None:
        self._bus.publish(
            CertificateRequested(
                at=self._clock.now(),
                charger_id=session.charger_id,
                action=action,
                certificate_type=kind,
                status=status,
                reason_code=reason,
            )
        )

    def _sign(self, session: Session, csr: str, kind: str | None) -> tuple[str, str | None, str | None]:
        """(status, reasonCode, additionalInfo) for a signing request."""
        if not _looks_like_csr(csr):
            return "Rejected", INVALID_CSR, "csr is not a PEM certificate signing request"
        if self._authority is None:
            log.info("%s asked for a certificate: no certificate authority is configured", session.charger_id)
            return "Rejected", NOT_ENABLED, "no certificate authority is configured on this central system"
        refusal = self._authority.submit(session.charger_id, csr, kind)
        if refusal is not None:
            return "Rejected", refusal.reason_code, refusal.additional_info
        return "Accepted", None, None

    def _sign16(self, session: Session, req: v16.SignCertificateRequest) -> dict[str, Any]:
        status, reason, _ = self._sign(session, req.csr, None)
        self._published(session, "SignCertificate", None, status, reason)
        return {"status": status}  # 1.6 has no statusInfo

    def _sign201(self, session: Session, req: v201.SignCertificateRequest) -> dict[str, Any]:
        status, reason, info = self._sign(session, req.csr, req.certificate_type)
        self._published(session, "SignCertificate", req.certificate_type, status, reason)
        if reason is None:
            return {"status": status}
        return {"status": status, "statusInfo": {"reasonCode": reason, "additionalInfo": info}}

    def _ev_certificate(self, session: Session, req: v201.Get15118EVCertificateRequest) -> Any:
        contracts = self._contracts
        if contracts is None:
            self._published(session, "Get15118EVCertificate", req.action, "Failed", NOT_ENABLED)
            return {
                "status": "Failed",
                "statusInfo": {
                    "reasonCode": NOT_ENABLED,
                    "additionalInfo": "no contract-certificate provider is configured on this central system",
                },
                "exiResponse": "",
            }

        async def reply() -> dict[str, Any]:
            exi = await contracts.exchange(req.iso15118_schema_version, req.action, req.exi_request)
            status = "Failed" if exi is None else "Accepted"
            self._published(session, "Get15118EVCertificate", req.action, status, None)
            return {"status": status, "exiResponse": exi or ""}

        return reply()

    def _certificate_status(self, session: Session, req: v201.GetCertificateStatusRequest) -> Any:
        ocsp = self._ocsp
        if ocsp is None:
            self._published(session, "GetCertificateStatus", None, "Failed", NOT_ENABLED)
            return {
                "status": "Failed",
                "statusInfo": {
                    "reasonCode": NOT_ENABLED,
                    "additionalInfo": "no OCSP responder is configured on this central system",
                },
            }
        request = {
            "hashAlgorithm": req.ocsp_request_data.hash_algorithm,
            "issuerNameHash": req.ocsp_request_data.issuer_name_hash,
            "issuerKeyHash": req.ocsp_request_data.issuer_key_hash,
            "serialNumber": req.ocsp_request_data.serial_number,
            "responderURL": req.ocsp_request_data.responder_url,
        }

        async def reply() -> dict[str, Any]:
            result = await ocsp.check(request)
            status = "Failed" if result is None else "Accepted"
            self._published(session, "GetCertificateStatus", None, status, None)
            return {"status": status} if result is None else {"status": status, "ocspResult": result}

        return reply()
