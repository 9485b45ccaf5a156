"""Certificate requests against a real node from `ocpp` package charge points (their schema validation checks
our answers too): with no certificate authority, contract-certificate provider or OCSP responder configured,
each gets the spec's explicit refusal."""

from __future__ import annotations

import asyncio

from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from tests.integration.ocpp_clients import ocpp_charge_point

CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"


def test_16_sign_certificate_is_rejected_without_an_authority(node) -> None:
    async def scenario():
        async with ocpp_charge_point(ChargePoint16, node.ocpp_url, "CERT16", "ocpp1.6", boot=True) as cp:
            return await cp.call(call16.SignCertificate(csr=CSR), suppress=False)

    assert asyncio.run(scenario()).status == "Rejected"


def test_201_certificate_requests_are_refused_as_not_enabled(node) -> None:
    async def scenario():
        async with ocpp_charge_point(ChargePoint201, node.ocpp_url, "CERT201", "ocpp2.0.1", boot=True) as cp:
            sign = await cp.call(
                call201.SignCertificate(csr=CSR, certificate_type="ChargingStationCertificate"),
                suppress=False,
            )
            ev = await cp.call(
                call201.Get15118EVCertificate(
                    iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                    action="Install",
                    exi_request="AAEC",
                ),
                suppress=False,
            )
            status = await cp.call(
                call201.GetCertificateStatus(
                    ocsp_request_data={
                        "hash_algorithm": "SHA256",
                        "issuer_name_hash": "aa",
                        "issuer_key_hash": "bb",
                        "serial_number": "01",
                        "responder_url": "http://ocsp.example",
                    }
                ),
                suppress=False,
            )
            return sign, ev, status

    sign, ev, status = asyncio.run(scenario())
    assert sign.status == "Rejected" and sign.status_info["reason_code"] == "NotEnabled"
    assert ev.status == "Failed" and ev.exi_response == "" and ev.status_info["reason_code"] == "NotEnabled"
    assert status.status == "Failed" and status.status_info["reason_code"] == "NotEnabled"
