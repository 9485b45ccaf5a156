"""The whole profile-3 story on a real node: a 2.0.1 station on wss (profile 2) sends SignCertificate with its
CSR, the node's CA signs it and sends CertificateSigned, and the station then connects with the issued
certificate as its client certificate (the node's CA is also the gateway's --tls-client-ca): profile 3, no
password. Raised to profile 3, the station is refused without it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import websockets
from cryptography.hazmat.primitives import serialization
from ocpp.v201 import call as call201

from tests.integration.ocpp_clients import ocpp_charge_point
from tests.integration.pki import Pki
from tests.integration.test_charger_ca import WAIT_S, Station201, make_csr, verify_chain


def test_a_station_connects_with_the_certificate_the_node_issued_it(node_factory, tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    ca_dir = tmp_path / "charger-ca"
    node = node_factory(
        "--charger-ca-dir", str(ca_dir),
        "--ocpp-tls-port", "0", "--tls-cert", pki.rsa[0], "--tls-key", pki.rsa[1],
        # The node's own charger CA (made at its first start) is what client certificates must chain to.
        "--tls-client-ca", str(ca_dir / "ca.pem"),
    )  # fmt: skip
    with node.api() as api:
        assert api.post("/chargers", json={"id": "CA-P3"}).status_code == 201
    server_trust = pki.server_ca_context()

    async def scenario() -> None:
        csr, key = make_csr("CA-P3")
        async with ocpp_charge_point(
            Station201, node.ocpp_tls_url, "CA-P3", "ocpp2.0.1", ssl=server_trust
        ) as cp:
            station = {"model": "M", "vendor_name": "V"}
            boot = await cp.call(
                call201.BootNotification(charging_station=station, reason="PowerUp"), suppress=False
            )
            assert boot.status == "Accepted"
            answer = await cp.call(
                call201.SignCertificate(csr=csr, certificate_type="ChargingStationCertificate"),
                suppress=False,
            )
            assert answer.status == "Accepted"
            signed = await asyncio.wait_for(cp.signed.get(), WAIT_S)
        verify_chain(signed["chain"], ca_dir / "ca.pem", "CA-P3", key)
        cert_file, key_file = tmp_path / "issued.pem", tmp_path / "issued.key"
        cert_file.write_text(signed["chain"])
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        with_cert = pki.server_ca_context()
        with_cert.load_cert_chain(str(cert_file), str(key_file))
        async with ocpp_charge_point(
            Station201, node.ocpp_tls_url, "CA-P3", "ocpp2.0.1", ssl=with_cert
        ) as cp:
            station = {"model": "M", "vendor_name": "V"}
            boot = await cp.call(
                call201.BootNotification(charging_station=station, reason="PowerUp"), suppress=False
            )
            assert boot.status == "Accepted"
            with node.api() as api:
                assert api.get("/chargers/CA-P3").json()["connection_security_profile"] == 3
                assert api.patch("/chargers/CA-P3", json={"security_profile": 3}).status_code == 200
        # Now the certificate is required: without it (profile 2) the upgrade is refused.
        try:
            async with websockets.connect(
                f"{node.ocpp_tls_url}/CA-P3", subprotocols=["ocpp2.0.1"], ssl=server_trust
            ):
                raise AssertionError("a profile-3 station got in without its certificate")
        except websockets.exceptions.InvalidStatus as e:
            assert e.response.status_code == 403
        async with websockets.connect(
            f"{node.ocpp_tls_url}/CA-P3", subprotocols=["ocpp2.0.1"], ssl=with_cert
        ):
            pass

    asyncio.run(scenario())
