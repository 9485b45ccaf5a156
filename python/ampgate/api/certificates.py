"""/api/v1/chargers/{charger_id}/certificates: the certificates the node issued to a charger and those it has
installed (as its answers to InstallCertificate, DeleteCertificate and GetInstalledCertificateIds told), with
their ends; …/renew asks the charger for a new CSR now (ampgate.certauthority)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import ChargerCertificateService, ChargerReads
from ampgate.api.paging import CHARGER_ERRORS, require_charger
from ampgate.api.schemas import ErrorBody
from ampgate.certauthority import CertificateView, RenewalResult

_RENEW_ERRORS = {
    **CHARGER_ERRORS,
    409: ResponseSpec(
        ErrorBody,
        description="No certificate authority is configured (`charger_ca_not_configured`), or the charger is "
        "not connected or not accepted",
    ),
    502: ResponseSpec(ErrorBody, description="The charger answered with a CALLERROR"),
    504: ResponseSpec(ErrorBody, description="The charger did not answer in time"),
}


class CertificatePage(msgspec.Struct, kw_only=True):
    """A charger's certificates: issued ones (longest-lived first), then installed ones; one page."""

    items: list[CertificateView]
    next_cursor: str | None = None


class ChargerCertificateController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/certificates"
    tags = ("certificates",)

    @get(
        "/",
        operation_id="list_charger_certificates",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="A charger's issued and installed certificates (role: viewer)",
    )
    async def list_charger_certificates(
        self,
        certificates: NamedDependency[ChargerCertificateService],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
    ) -> CertificatePage:
        """Role: viewer. Certificates the node's CA issued to the charger (`kind` issued: serial, subject, ends,
        SHA-256 fingerprint, the charger's CertificateSigned answer as `delivery`) and those it holds (`kind`
        installed: CertificateHashData; subject and end when the node installed it); `expiring` is true within
        the warning lead time. Raises 404 (field id) for an unknown charger."""
        require_charger(chargers, charger_id)
        return CertificatePage(items=certificates.listing(charger_id))

    @post(
        "/renew",
        operation_id="renew_charger_certificate",
        guards=[requires_admin],
        status_code=200,
        responses=_RENEW_ERRORS,
        summary="Ask a charger to renew its certificate now (role: admin)",
    )
    async def renew_charger_certificate(
        self,
        certificates: NamedDependency[ChargerCertificateService],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
    ) -> RenewalResult:
        """Role: admin. Sends 2.0.1 TriggerMessage SignChargingStationCertificate or 1.6 ExtendedTriggerMessage
        SignChargePointCertificate and answers with the action and the charger's status; the charger's CSR
        follows as SignCertificate and is signed as any other. Raises 404 (field id), 409
        `charger_ca_not_configured` / `charger_offline` / `charger_not_accepted`, 502, 504."""
        require_charger(chargers, charger_id)
        return await certificates.renew(charger_id)
