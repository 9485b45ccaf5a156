"""Charging-station certificates against a real node with `--charger-ca-dir`, from `ocpp` package charge points
(2.0.1 and 1.6) over websockets: a CSR made here is Accepted, the charger then receives CertificateSigned whose
chain verifies against the node's CA file with CN = its id; V2G CSRs are still NotEnabled; InstallCertificate
and GetInstalledCertificateIds through the command API (admin; 403 for an operator) show in GET
…/certificates; a renewal is asked on demand (admin) and, for a certificate inside the warning lead time, by
the expiry check, after its certificate.expiring event."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from ampgate.certauthority.pki import hash_data
from tests.certauthority.keys import self_signed_root
from tests.integration.ocpp_clients import ocpp_charge_point
from tests.integration.test_api_node import cli_token
from tests.integration.test_connectivity import poll

# What the charger waits for a CALL from the node (the node signs and sends within milliseconds).
WAIT_S = 10.0


def make_csr(charger_id: str) -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CPO"),
            x509.NameAttribute(NameOID.COMMON_NAME, charger_id),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def verify_chain(
    chain_pem: str, ca_file: Path, charger_id: str, key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """The chain's first certificate is the charger's, for its key, issued by the node's CA (from its file)."""
    ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    leaf = x509.load_pem_x509_certificates(chain_pem.encode())[0]
    leaf.verify_directly_issued_by(ca)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == charger_id
    assert leaf.public_key() == key.public_key()
    return leaf


class Station201(ChargePoint201):
    """A 2.0.1 station that keeps what the node sends and holds the roots it is told to install."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.signed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.triggers: asyncio.Queue[str] = asyncio.Queue()
        self.roots: list[tuple[str, str]] = []

    @on(Action201.certificate_signed)
    async def on_certificate_signed(
        self, certificate_chain: str, certificate_type: str | None = None, **_: Any
    ):
        await self.signed.put({"chain": certificate_chain, "type": certificate_type})
        return result201.CertificateSigned(status="Accepted")

    @on(Action201.install_certificate)
    async def on_install_certificate(self, certificate_type: str, certificate: str, **_: Any):
        self.roots.append((certificate_type, certificate))
        return result201.InstallCertificate(status="Accepted")

    @on(Action201.get_installed_certificate_ids)
    async def on_get_installed_certificate_ids(self, certificate_type: list[str] | None = None, **_: Any):
        chains = []
        for kind, pem in self.roots:
            hd = hash_data(x509.load_pem_x509_certificate(pem.encode()))
            assert hd is not None
            chains.append(
                {
                    "certificate_type": kind,
                    "certificate_hash_data": {
                        "hash_algorithm": hd.hash_algorithm,
                        "issuer_name_hash": hd.issuer_name_hash,
                        "issuer_key_hash": hd.issuer_key_hash,
                        "serial_number": hd.serial_number.upper(),  # chargers write hex as they like
                    },
                }
            )
        if not chains:
            return result201.GetInstalledCertificateIds(status="NotFound")
        return result201.GetInstalledCertificateIds(status="Accepted", certificate_hash_data_chain=chains)

    @on(Action201.trigger_message)
    async def on_trigger_message(self, requested_message: str, **_: Any):
        await self.triggers.put(requested_message)
        return result201.TriggerMessage(status="Accepted")


class Station16(ChargePoint16):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.signed: asyncio.Queue[str] = asyncio.Queue()
        self.triggers: asyncio.Queue[str] = asyncio.Queue()

    @on(Action16.certificate_signed)
    async def on_certificate_signed(self, certificate_chain: str, **_: Any):
        await self.signed.put(certificate_chain)
        return result16.CertificateSigned(status="Accepted")

    @on(Action16.extended_trigger_message)
    async def on_extended_trigger_message(self, requested_message: str, **_: Any):
        await self.triggers.put(requested_message)
        return result16.ExtendedTriggerMessage(status="Accepted")


def test_201_csr_signed_installed_certificates_listed_and_renewal_on_demand(
    node_factory, tmp_path: Path
) -> None:
    ca_dir = tmp_path / "charger-ca"
    node = node_factory("--charger-ca-dir", str(ca_dir), "--charger-cert-organization", "Test CPO")
    operator, viewer = cli_token(node, "operator"), cli_token(node, "viewer")
    root, root_pem = self_signed_root("Test CSMS Root", days=400)
    csr, key = make_csr("CA201")

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with (
            ocpp_charge_point(Station201, node.ocpp_url, "CA201", "ocpp2.0.1", boot=True) as cp,
            httpx.AsyncClient(base_url=node.api_url, timeout=15) as http,
        ):
            admin = {"Authorization": f"Bearer {node.admin_token}"}
            out["sign"] = await cp.call(
                call201.SignCertificate(csr=csr, certificate_type="ChargingStationCertificate"),
                suppress=False,
            )
            out["signed"] = await asyncio.wait_for(cp.signed.get(), WAIT_S)
            out["v2g"] = await cp.call(
                call201.SignCertificate(csr=csr, certificate_type="V2GCertificate"), suppress=False
            )
            install = {"certificateType": "CSMSRootCertificate", "certificate": root_pem}
            path = "/chargers/CA201/commands"
            out["install_operator"] = await http.post(
                f"{path}/InstallCertificate", json=install, headers={"Authorization": f"Bearer {operator}"}
            )
            out["install"] = await http.post(f"{path}/InstallCertificate", json=install, headers=admin)
            out["ids"] = await http.post(f"{path}/GetInstalledCertificateIds", json={}, headers=admin)
            out["listed"] = await http.get(
                "/chargers/CA201/certificates", headers={"Authorization": f"Bearer {viewer}"}
            )
            renew = "/chargers/CA201/certificates/renew"
            out["renew_operator"] = await http.post(renew, headers={"Authorization": f"Bearer {operator}"})
            out["renew"] = await http.post(renew, headers=admin)
            if out["renew"].status_code == 200:
                out["trigger"] = await asyncio.wait_for(cp.triggers.get(), WAIT_S)
        return out

    out = asyncio.run(scenario())
    assert out["sign"].status == "Accepted"
    assert out["signed"]["type"] == "ChargingStationCertificate"
    leaf = verify_chain(out["signed"]["chain"], ca_dir / "ca.pem", "CA201", key)
    assert out["v2g"].status == "Rejected" and out["v2g"].status_info["reason_code"] == "NotEnabled"

    assert out["install_operator"].status_code == 403, out["install_operator"].text
    assert out["install"].status_code == 200 and out["install"].json() == {"status": "Accepted"}
    assert out["ids"].status_code == 200 and out["ids"].json()["status"] == "Accepted"
    assert out["listed"].status_code == 200, out["listed"].text
    items = out["listed"].json()["items"]
    issued = [i for i in items if i["kind"] == "issued"]
    installed = [i for i in items if i["kind"] == "installed"]
    assert len(issued) == 1 and issued[0]["serial_number"] == format(leaf.serial_number, "x")
    assert issued[0]["delivery"] == "Accepted" and issued[0]["subject"] == "CN=CA201,O=Test CPO"
    assert len(installed) == 1
    assert installed[0]["certificate_type"] == "CSMSRootCertificate"
    assert installed[0]["subject"] == "CN=Test CSMS Root"
    assert installed[0]["not_after"].startswith(root.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S"))
    assert installed[0]["serial_number"] == format(root.serial_number, "x")  # the report matched the install

    assert out["renew_operator"].status_code == 403
    assert out["renew"].status_code == 200, out["renew"].text
    assert out["renew"].json() == {"action": "TriggerMessage", "status": "Accepted"}
    assert out["trigger"] == "SignChargingStationCertificate"

    wanted = {"certificate.issued", "certificate.installed_changed", "certificate.renewal_requested"}
    items = poll(
        lambda: node.get("/events?charger_id=CA201").json()["items"],
        lambda items: wanted <= {e["type"] for e in items},
    )
    assert wanted <= {e["type"] for e in items}


def test_16_csr_signed_then_expiry_announced_and_renewal_asked(node_factory, tmp_path: Path) -> None:
    ca_dir = tmp_path / "charger-ca"
    node = node_factory(
        "--charger-ca-dir",
        str(ca_dir),
        # A day's certificate against a 30-day lead: due at once; checked twice a second.
        "--charger-cert-days",
        "1",
        "--charger-cert-warn-days",
        "30",
        "--charger-cert-check-interval",
        "0.5",
    )
    csr, key = make_csr("CA16")

    def renewals() -> list[dict[str, Any]]:
        return node.get("/events?charger_id=CA16&type=certificate.renewal_requested").json()["items"]

    async def scenario() -> tuple[Any, str, str, list[dict[str, Any]]]:
        async with ocpp_charge_point(Station16, node.ocpp_url, "CA16", "ocpp1.6", boot=True) as cp:
            sign = await cp.call(call16.SignCertificate(csr=csr), suppress=False)
            chain = await asyncio.wait_for(cp.signed.get(), WAIT_S)
            trigger = await asyncio.wait_for(cp.triggers.get(), WAIT_S)
            # Connected until the node has the trigger's answer.
            asked = await asyncio.to_thread(poll, renewals, bool)
            return sign, chain, trigger, asked

    sign, chain, trigger, asked = asyncio.run(scenario())
    assert sign.status == "Accepted"
    leaf = verify_chain(chain, ca_dir / "ca.pem", "CA16", key)
    assert trigger == "SignChargePointCertificate"
    events = node.get("/events?charger_id=CA16&type=certificate.expiring").json()["items"]
    assert [(e["kind"], e["serial_number"]) for e in events] == [("issued", format(leaf.serial_number, "x"))]
    assert asked and asked[0]["automatic"] is True and asked[0]["action"] == "ExtendedTriggerMessage"
    assert asked[0]["status"] == "Accepted"


def test_a_node_without_a_ca_still_refuses_and_lists_nothing(node) -> None:
    csr, _ = make_csr("NOCA")

    async def scenario() -> Any:
        async with ocpp_charge_point(ChargePoint201, node.ocpp_url, "NOCA", "ocpp2.0.1", boot=True) as cp:
            return await cp.call(call201.SignCertificate(csr=csr), suppress=False)

    sign = asyncio.run(scenario())
    assert sign.status == "Rejected" and sign.status_info["reason_code"] == "NotEnabled"
    assert node.get("/chargers/NOCA/certificates").json() == {"items": [], "next_cursor": None}
    with node.api() as api:
        r = api.post("/chargers/NOCA/certificates/renew")
    assert r.status_code == 409 and r.json()["code"] == "charger_ca_not_configured"
    assert node.get("/chargers/NOBODY/certificates").status_code == 404
