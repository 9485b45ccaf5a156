"""`ChargerCertificates` on a real store with a stand-in Commander and a fixed clock: a CSR accepted on the
request path is signed afterwards and sent with CertificateSigned (per protocol), V2G is never signed, the
certificates a charger installs are followed from the answers, and expiry is announced once and renewal asked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import trio
from cryptography import x509

from ampgate.certauthority import (
    CertificateRepository,
    ChargerCertificates,
    LocalAuthority,
    Settings,
    SigningError,
)
from ampgate.certauthority.pki import hash_data, load_chain, serial_hex
from ampgate.certificates import Refusal
from ampgate.errors import ChargerOfflineError
from ampgate.events import (
    CertificateExpiring,
    CertificateIssued,
    CertificateRenewalRequested,
    CertificateSigningFailed,
    Event,
    InstalledCertificatesChanged,
)
from ampgate.store import Store
from tests.certauthority.keys import csr_pem, ec_key, self_signed_root
from tests.ocpp.fake_commands import FakeCommander
from tests.ocpp.fakes import FixedClock
from tests.store.conftest import Runner


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def publish(self, event: Event) -> None:
        self.seen.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.seen if isinstance(e, kind)]


ACCEPTED = {"status": "Accepted"}


def replies(**extra: Any) -> dict[str, Any]:
    return {
        "CertificateSigned": ACCEPTED,
        "TriggerMessage": ACCEPTED,
        "ExtendedTriggerMessage": ACCEPTED,
        **extra,
    }


class World:
    def __init__(
        self, store: Store, tmp: Path, protocol: str = "ocpp2.0.1", signer: Any = "ca", **settings: Any
    ):
        self.clock = FixedClock()
        self.events = Events()
        self.commander = FakeCommander(protocol, replies())
        self.ca = LocalAuthority.open(tmp / "ca", now=self.clock.now)
        self.rows = CertificateRepository(store)
        self.service = ChargerCertificates(
            self.rows,
            self.ca if signer == "ca" else signer,
            self.commander,
            self.events,
            self.clock,
            Settings(**settings),
            ca_certificate=self.ca.certificate,
        )

    async def settle(self) -> None:
        """Until the signing tasks are idle (they wait on the store's writer thread)."""
        for _ in range(200):
            await trio.sleep(0.01)
            if self.events.of(CertificateIssued) or self.events.of(CertificateSigningFailed):
                return


def in_service(running: Runner, tmp_path: Path, body, **kw: Any) -> None:
    async def main(store: Store) -> None:
        w = World(store, tmp_path, **kw)
        async with trio.open_nursery() as nursery:
            await nursery.start(w.service.run)
            await body(w)
            nursery.cancel_scope.cancel()

    running(main)


def test_a_csr_is_accepted_then_signed_and_sent_with_certificate_signed(
    running: Runner, tmp_path: Path
) -> None:
    async def body(w: World) -> None:
        key = ec_key()
        assert w.service.submit("CP", csr_pem("CP", key), "ChargingStationCertificate") is None
        assert w.commander.sent == []  # nothing goes out on the request path
        await w.settle()
        [(action, payload)] = w.commander.sent
        assert action == "CertificateSigned"
        assert payload["certificateType"] == "ChargingStationCertificate"
        leaf, root = load_chain(payload["certificateChain"])
        assert root == w.ca.certificate
        leaf.verify_directly_issued_by(w.ca.certificate)
        assert leaf.public_key() == key.public_key()
        [issued] = w.events.of(CertificateIssued)
        assert (issued.charger_id, issued.delivery, issued.serial) == (
            "CP",
            "Accepted",
            serial_hex(leaf.serial_number),
        )
        [row] = w.rows.issued("CP")
        assert (row.delivery, row.not_after) == ("Accepted", leaf.not_valid_after_utc)
        [view] = w.service.listing("CP")
        assert (view.kind, view.serial_number, view.expiring) == ("issued", issued.serial, False)

    in_service(running, tmp_path, body)


def test_16_gets_the_chain_alone_and_a_2011_request_without_type_is_the_stations(
    running: Runner, tmp_path: Path
) -> None:
    async def body(w: World) -> None:
        assert w.service.submit("CP", csr_pem("CP"), None) is None
        await w.settle()
        [(action, payload)] = w.commander.sent
        assert action == "CertificateSigned" and list(payload) == ["certificateChain"]

    in_service(running, tmp_path, body, protocol="ocpp1.6")


def test_v2g_and_bad_csrs_are_refused_on_the_request_path(running: Runner, tmp_path: Path) -> None:
    async def body(w: World) -> None:
        refusal = w.service.submit("CP", csr_pem("CP"), "V2GCertificate")
        assert refusal == Refusal("NotEnabled", "no V2G (ISO 15118) PKI is configured on this central system")
        refusal = w.service.submit("CP", csr_pem("OTHER"), "ChargingStationCertificate")
        assert (
            refusal is not None
            and refusal.reason_code == "InvalidCSR"
            and "CN is 'OTHER'" in refusal.additional_info
        )
        await trio.sleep(0.05)
        assert w.commander.sent == [] and w.rows.issued("CP") == []

    in_service(running, tmp_path, body)


def test_an_undeliverable_certificate_is_recorded_as_failed(running: Runner, tmp_path: Path) -> None:
    async def body(w: World) -> None:
        w.commander.replies["CertificateSigned"] = ChargerOfflineError("charger 'CP' is not connected")
        assert w.service.submit("CP", csr_pem("CP"), None) is None
        await w.settle()
        [issued] = w.events.of(CertificateIssued)
        assert (issued.delivery, issued.error) == ("failed", "charger 'CP' is not connected")
        assert w.rows.issued("CP")[0].delivery == "failed"

    in_service(running, tmp_path, body)


class WrongSigner:
    """A signer whose certificate is for another key than the CSR's."""

    def __init__(self, ca: LocalAuthority) -> None:
        self.ca = ca

    async def issue(self, charger_id: str, csr: x509.CertificateSigningRequest, pem: str, days: float) -> str:
        other = x509.load_pem_x509_csr(csr_pem(charger_id).encode())
        return await self.ca.issue(charger_id, other, pem, days)


class FailingSigner:
    async def issue(self, *args: Any) -> str:
        raise SigningError("HSM offline")


def test_a_signer_that_fails_or_certifies_another_key_sends_nothing(running: Runner, tmp_path: Path) -> None:
    for signer, words in ((FailingSigner(), "HSM offline"), ("wrong", "not for the CSR's key")):

        async def body(w: World, signer: Any = signer, words: str = words) -> None:
            if signer == "wrong":
                w.service._signer = WrongSigner(w.ca)
            assert w.service.submit("CP", csr_pem("CP"), None) is None
            await w.settle()
            [failed] = w.events.of(CertificateSigningFailed)
            assert words in failed.reason
            assert w.commander.sent == [] and w.rows.issued("CP") == []

        in_service(
            running, tmp_path / words.replace(" ", "_"), body, signer=signer if signer != "wrong" else "ca"
        )


def test_expiry_is_announced_once_and_renewal_asked(running: Runner, tmp_path: Path) -> None:
    async def body(w: World) -> None:
        assert w.service.submit("CP", csr_pem("CP"), None) is None
        await w.settle()
        w.commander.sent.clear()
        await w.service.check_expiry()  # 10 days left, 30 days' warning: announced, renewal asked
        [expiring] = w.events.of(CertificateExpiring)
        assert (expiring.kind, expiring.charger_id) == ("issued", "CP")
        assert w.commander.sent == [
            ("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
        ]
        [renewal] = w.events.of(CertificateRenewalRequested)
        assert (renewal.status, renewal.automatic) == ("Accepted", True)
        await w.service.check_expiry()  # once each; renewal asked again only after a day
        assert len(w.events.of(CertificateExpiring)) == 1 and len(w.commander.sent) == 1
        w.clock.at += dt.timedelta(days=1, seconds=1).total_seconds()
        await w.service.check_expiry()
        assert len(w.events.of(CertificateExpiring)) == 1 and len(w.commander.sent) == 2
        # A new certificate (the renewal's CSR) ends the warnings and the renewals.
        assert w.service.submit("CP", csr_pem("CP"), None) is None
        w.events.seen.clear()
        await w.settle()
        w.clock.at += dt.timedelta(days=2).total_seconds()
        w.commander.sent.clear()
        await w.service.check_expiry()
        assert len(w.events.of(CertificateExpiring)) == 1  # the new one (also 10 days) is announced once
        assert len(w.commander.sent) == 1

    in_service(running, tmp_path, body, cert_days=10.0, warn_days=30.0)


def test_16_renewal_is_an_extended_trigger(running: Runner, tmp_path: Path) -> None:
    async def body(w: World) -> None:
        result = await w.service.renew("CP")
        assert (result.action, result.status) == ("ExtendedTriggerMessage", "Accepted")
        assert w.commander.sent == [
            ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
        ]

    in_service(running, tmp_path, body, protocol="ocpp1.6")


def test_installed_certificates_follow_the_chargers_answers(running: Runner, tmp_path: Path) -> None:
    async def body(w: World) -> None:
        root, pem = self_signed_root("Operator Root", days=10)
        await w.service.learn_install(
            "CP", {"certificateType": "CSMSRootCertificate", "certificate": pem}, ACCEPTED
        )
        await w.service.learn_install(
            "CP", {"certificateType": "CSMSRootCertificate", "certificate": pem}, {"status": "Rejected"}
        )
        [view] = w.service.listing("CP")
        hd = hash_data(root)
        assert hd is not None
        assert (view.kind, view.subject, view.not_after, view.source) == (
            "installed",
            "CN=Operator Root",
            root.not_valid_after_utc,
            "installed",
        )
        assert (view.issuer_name_hash, view.serial_number) == (hd.issuer_name_hash, hd.serial_number)
        # The charger's report: our root (upper-case hex, a leading zero) and one we did not install.
        other = {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": "ab" * 32,
            "issuerKeyHash": "cd" * 32,
            "serialNumber": "0F",
        }
        ours = {
            **hd.ocpp(),
            "issuerNameHash": hd.issuer_name_hash.upper(),
            "serialNumber": "0" + hd.serial_number.upper(),
        }
        await w.service.learn_installed_ids(
            "CP",
            {},
            {
                "status": "Accepted",
                "certificateHashDataChain": [
                    {"certificateType": "CSMSRootCertificate", "certificateHashData": ours},
                    {"certificateType": "ManufacturerRootCertificate", "certificateHashData": other},
                ],
            },
        )
        listed = {(v.serial_number, v.source, v.subject) for v in w.service.listing("CP")}
        assert listed == {(hd.serial_number, "installed", "CN=Operator Root"), ("f", "reported", None)}
        # Expiry: our root ends in 10 days, announced once; the reported one has no known end.
        await w.service.check_expiry()
        [expiring] = w.events.of(CertificateExpiring)
        assert (expiring.kind, expiring.serial_number) == ("installed", hd.serial_number)
        # Deleting it, and a report of one type with nothing in it (NotFound).
        await w.service.learn_delete("CP", {"certificateHashData": ours}, ACCEPTED)
        assert [v.serial_number for v in w.service.listing("CP")] == ["f"]
        await w.service.learn_installed_ids(
            "CP", {"certificateType": ["ManufacturerRootCertificate"]}, {"status": "NotFound"}
        )
        assert w.service.listing("CP") == []
        counts = [(e.action, e.status, e.count) for e in w.events.of(InstalledCertificatesChanged)]
        assert counts == [
            ("InstallCertificate", "Accepted", 1),
            ("InstallCertificate", "Rejected", 1),
            ("GetInstalledCertificateIds", "Accepted", 2),
            ("DeleteCertificate", "Accepted", 1),
            ("GetInstalledCertificateIds", "NotFound", 0),
        ]

    in_service(running, tmp_path, body)


def test_16_reports_name_their_one_type(running: Runner, tmp_path: Path) -> None:
    async def body(w: World) -> None:
        data = {"hashAlgorithm": "SHA256", "issuerNameHash": "ab", "issuerKeyHash": "cd", "serialNumber": "1"}
        await w.service.learn_installed_ids(
            "CP",
            {"certificateType": "CentralSystemRootCertificate"},
            {"status": "Accepted", "certificateHashData": [data]},
        )
        await w.service.learn_installed_ids(
            "CP", {"certificateType": "ManufacturerRootCertificate"}, {"status": "NotFound"}
        )
        [view] = w.service.listing("CP")
        assert (view.certificate_type, view.serial_number) == ("CentralSystemRootCertificate", "1")

    in_service(running, tmp_path, body, protocol="ocpp1.6")


def test_an_unrunning_service_or_a_node_without_a_signer_refuses(running: Runner, tmp_path: Path) -> None:
    async def main(store: Store) -> None:
        w = World(store, tmp_path)
        refusal = w.service.submit("CP", csr_pem("CP"), None)
        assert refusal is not None and refusal.reason_code == "Unspecified"
        w.service._signer = None
        refusal = w.service.submit("CP", csr_pem("CP"), None)
        assert refusal is not None and refusal.reason_code == "NotEnabled"

    running(main)
