"""Certificate requests in-process: with nothing configured each gets the spec's explicit "not enabled" answer
(never a certificate), a request without a PEM CSR is InvalidCSR, and a configured authority, contract provider
or OCSP responder is asked; every request is published with its answer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import trio
import trio.lowlevel
import trio.testing

from ampgate.certificates import CertificateHandlers, Refusal
from ampgate.events import CertificateRequested
from tests.ocpp.fakes import Harness

CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
OCSP = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "aa",
    "issuerKeyHash": "bb",
    "serialNumber": "01",
    "responderURL": "http://ocsp.example",
}
EV = {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "AAEC"}


def replies(
    make: Callable[..., CertificateHandlers], calls: list[tuple[str, str, Any]]
) -> tuple[list[Any], list[Any]]:
    """Each (protocol, action, payload) sent by CP1 on its own session to the handlers `make(bus, clock)`
    builds; the replies, then what was published."""
    h = Harness(accepted=["CP1"])
    make(h.bus, h.clock).register(h.router)
    out: list[Any] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(h.router.run)
            for i, (protocol, action, payload) in enumerate(calls, 1):
                s = h.open("CP1", protocol, conn_id=i)
                reply = h.call(s, action, payload, unique_id=f"m{i}")
                if reply is None:  # answered from a task
                    await trio.testing.wait_all_tasks_blocked()
                    reply = h.link.sent[-1][1]
                out.append(reply)
            nursery.cancel_scope.cancel()

    trio.run(main)
    return out, h.published()


def test_with_nothing_configured_every_request_is_refused_explicitly() -> None:
    out, events = replies(
        CertificateHandlers,
        [
            ("ocpp1.6", "SignCertificate", {"csr": CSR}),
            ("ocpp2.0.1", "SignCertificate", {"csr": CSR, "certificateType": "ChargingStationCertificate"}),
            ("ocpp2.0.1", "SignCertificate", {"csr": "not a csr"}),
            ("ocpp2.0.1", "Get15118EVCertificate", EV),
            ("ocpp2.0.1", "GetCertificateStatus", {"ocspRequestData": OCSP}),
        ],
    )
    assert out[0] == [3, "m1", {"status": "Rejected"}]  # 1.6 has no statusInfo
    assert out[1][2]["status"] == "Rejected" and out[1][2]["statusInfo"]["reasonCode"] == "NotEnabled"
    assert "no certificate authority" in out[1][2]["statusInfo"]["additionalInfo"]
    assert out[2][2]["statusInfo"]["reasonCode"] == "InvalidCSR"
    assert out[3][2]["status"] == "Failed" and out[3][2]["exiResponse"] == ""
    assert out[3][2]["statusInfo"]["reasonCode"] == "NotEnabled"
    assert out[4][2] == {
        "status": "Failed",
        "statusInfo": {
            "reasonCode": "NotEnabled",
            "additionalInfo": "no OCSP responder is configured on this central system",
        },
    }
    assert all(isinstance(e, CertificateRequested) for e in events)
    assert [(e.action, e.certificate_type, e.status, e.reason_code) for e in events] == [
        ("SignCertificate", None, "Rejected", "NotEnabled"),
        ("SignCertificate", "ChargingStationCertificate", "Rejected", "NotEnabled"),
        ("SignCertificate", None, "Rejected", "InvalidCSR"),
        ("Get15118EVCertificate", "Install", "Failed", "NotEnabled"),
        ("GetCertificateStatus", None, "Failed", "NotEnabled"),
    ]


class Authority:
    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.asked: list[tuple[str, str, str | None]] = []

    def submit(self, charger_id: str, csr: str, certificate_type: str | None) -> Refusal | None:
        self.asked.append((charger_id, csr, certificate_type))
        return None if self.accept else Refusal("Unspecified", "refused")


class Contracts:
    async def exchange(self, schema_version: str, action: str, exi_request: str) -> str | None:
        await trio.lowlevel.checkpoint()
        return f"EXI-{action}-{exi_request}"


class Ocsp:
    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    async def check(self, request: dict[str, Any]) -> str | None:
        self.asked.append(request)
        return "T0NTUA=="


@pytest.mark.parametrize("accept", [True, False])
def test_a_configured_authority_provider_and_responder_are_asked(accept: bool) -> None:
    authority, ocsp = Authority(accept), Ocsp()
    out, _ = replies(
        functools.partial(CertificateHandlers, authority=authority, contracts=Contracts(), ocsp=ocsp),
        [
            ("ocpp2.0.1", "SignCertificate", {"csr": CSR, "certificateType": "V2GCertificate"}),
            ("ocpp2.0.1", "Get15118EVCertificate", EV),
            ("ocpp2.0.1", "GetCertificateStatus", {"ocspRequestData": OCSP}),
        ],
    )
    assert authority.asked == [("CP1", CSR, "V2GCertificate")]
    assert out[0][2]["status"] == ("Accepted" if accept else "Rejected")
    assert out[1][2] == {"status": "Accepted", "exiResponse": "EXI-Install-AAEC"}
    assert out[2][2] == {"status": "Accepted", "ocspResult": "T0NTUA=="}
    assert ocsp.asked == [OCSP]
    assert msgspec.json.encode(out)  # plain JSON all the way
