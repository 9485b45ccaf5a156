"""Customer information without a node: the request's checks (it asks for something, about exactly one
customer; the schema's refusals named in the API's words), the report assembled from parts in seqNo order, and
the service with the NotifyCustomerInformation handler on a real store and router: parts out of order, a wait
bounded by the report timeout, failures kept, events without personal data, deletion of the row and its parts
together."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import trio

from ampgate.customer import (
    CertificateHash,
    Customer,
    CustomerInformationHandlers,
    CustomerInformationRepository,
    CustomerInformationService,
    CustomerRequest,
    IdToken,
)
from ampgate.customer.state import assemble, build_payload, check
from ampgate.errors import ChargerCallError, ConflictError, NotFoundError, ValidationError
from ampgate.events import (
    CustomerInformationDeleted,
    CustomerInformationReceived,
    CustomerInformationRequested,
)
from ampgate.reports import Reports
from tests.ocpp.fake_commands import FakeCommander, World, run

TOKEN = IdToken(id_token="AABBCCDD", type="ISO14443")
CERT = CertificateHash(
    hash_algorithm="SHA256", issuer_name_hash="a" * 64, issuer_key_hash="b" * 64, serial_number="01"
)


def ask(report: bool = True, clear: bool = False, **customer) -> CustomerRequest:
    return CustomerRequest(report=report, clear=clear, customer=Customer(**(customer or {"id_token": TOKEN})))


# -- pure -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (ask(report=False, clear=False), "report"),
        (CustomerRequest(report=True, clear=False, customer=Customer()), "customer_identifier"),
        (ask(customer_identifier="c", id_token=TOKEN), "id_token"),
        (ask(id_token=TOKEN, customer_certificate=CERT), "customer_certificate"),
        (ask(customer_identifier="c" * 65), "customer_identifier"),
        (ask(id_token=IdToken(id_token="A", type="Badge")), "id_token.type"),
        (
            ask(
                customer_certificate=CertificateHash(
                    **{**msgspec.structs.asdict(CERT), "serial_number": "9" * 41}
                )
            ),
            "customer_certificate.serial_number",
        ),
    ],
)
def test_check_names_the_api_field(spec: CustomerRequest, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        check(spec)
    assert info.value.field == field


def test_the_payload_is_the_specs() -> None:
    assert build_payload(4, ask(clear=True, id_token=TOKEN)) == {
        "requestId": 4,
        "report": True,
        "clear": True,
        "idToken": {"idToken": "AABBCCDD", "type": "ISO14443"},
    }
    assert build_payload(5, ask(customer_certificate=CERT))["customerCertificate"] == {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": "a" * 64,
        "issuerKeyHash": "b" * 64,
        "serialNumber": "01",
    }
    assert check(ask(report=False, clear=True, customer_identifier="c"))["customerIdentifier"] == "c"


def test_assemble_joins_the_data_in_order() -> None:
    def part(seq: int, data: str) -> bytes:
        return msgspec.json.encode(
            {
                "data": data,
                "seqNo": seq,
                "generatedAt": "2026-11-30T07:00:00Z",
                "requestId": 1,
                "tbc": seq < 1,
            }
        )

    assert assemble([part(0, "ab"), part(1, "cd")]) == "abcd"
    assert assemble([]) == ""


# -- service and handler ----------------------------------------------------------------------------------------


def build(w: World, timeout: float = 5.0) -> tuple[CustomerInformationService, CustomerInformationRepository]:
    records = CustomerInformationRepository(w.store)
    CustomerInformationHandlers(w.reports, w.report_parts, w.h.bus, w.h.clock).register(w.h.router)
    service = CustomerInformationService(
        records, w.commander, w.reports, w.report_parts, w.h.bus, w.h.clock, report_timeout=timeout
    )
    return service, records


def notify(request_id: int, seq: int, data: str, tbc: bool) -> dict:
    return {
        "data": data,
        "seqNo": seq,
        "generatedAt": "2026-11-30T07:00:00Z",
        "requestId": request_id,
        "tbc": tbc,
    }


def test_a_report_in_parts_out_of_order_is_waited_for_assembled_and_deleted_with_its_request(
    tmp_path: Path,
) -> None:
    commander = FakeCommander("ocpp2.0.1", {"CustomerInformation": {"status": "Accepted"}})

    async def scenario(w: World, built) -> None:
        service, records = built
        session = w.h.open("CP", "ocpp2.0.1")
        results = []

        async def request() -> None:
            results.append(await service.request("CP", ask(clear=True)))

        async with trio.open_nursery() as n:
            n.start_soon(request)
            await commander.called.wait()
            request_id = commander.sent[0][1]["requestId"]
            assert commander.sent[0][1]["idToken"] == {"idToken": "AABBCCDD", "type": "ISO14443"}
            await w.notify(session, "NotifyCustomerInformation", notify(request_id, 1, "world", False))
            await w.notify(
                session, "NotifyCustomerInformation", notify(request_id, 1, "again", False)
            )  # resent
            await trio.sleep(0.05)
            assert results == []
            await w.notify(session, "NotifyCustomerInformation", notify(request_id, 0, "hello ", True))
        (info,) = results
        assert (info.request.status, info.parts, info.complete, info.data) == (
            "Accepted",
            2,
            True,
            "hello world",
        )
        assert info.request.customer.id_token == TOKEN and info.request.clear
        assert service.page("CP", 10)[0].data == "hello world"
        events = w.h.published()
        requested = [e for e in events if isinstance(e, CustomerInformationRequested)]
        received = [e for e in events if isinstance(e, CustomerInformationReceived)]
        assert [(e.request_id, e.status) for e in requested] == [(request_id, "Accepted")]
        assert [(e.request_id, e.parts, e.size) for e in received] == [(request_id, 2, 11)]
        # No personal data on the bus: neither the token nor the text.
        assert all(
            b"AABBCCDD" not in msgspec.json.encode(e) and b"hello" not in msgspec.json.encode(e)
            for e in events
        )

        await service.delete("CP", request_id)
        assert records.get("CP", request_id) is None
        assert w.report_parts.get("CP", "NotifyCustomerInformation", request_id) is None
        assert [e.request_id for e in w.h.published() if isinstance(e, CustomerInformationDeleted)] == [
            request_id
        ]
        with pytest.raises(NotFoundError) as gone:
            await service.delete("CP", request_id)
        assert gone.value.field == "request_id"

    run(tmp_path, commander, build, scenario)


def test_an_incomplete_report_returns_after_the_timeout_and_later_parts_are_kept(tmp_path: Path) -> None:
    commander = FakeCommander("ocpp2.0.1", {"CustomerInformation": {"status": "Accepted"}})

    async def scenario(w: World, built) -> None:
        service, _ = built
        info = await service.request("CP", ask())
        assert (info.complete, info.parts, info.data) == (False, 0, "")
        session = w.h.open("CP", "ocpp2.0.1")
        await w.notify(
            session, "NotifyCustomerInformation", notify(info.request.request_id, 0, "late", False)
        )
        later = service.get("CP", info.request.request_id)
        assert later is not None and (later.complete, later.data) == (True, "late")

    run(tmp_path, commander, lambda w: build(w, timeout=0.1), scenario)


def test_refusals_failures_and_bad_input(tmp_path: Path) -> None:
    commander = FakeCommander("ocpp2.0.1", {"CustomerInformation": {"status": "Invalid"}})

    async def scenario(w: World, built) -> None:
        service, _ = built
        invalid = await service.request("CP", ask())
        # Not accepted: no report will come, so no wait.
        assert (invalid.request.status, invalid.complete, invalid.parts) == ("Invalid", False, 0)
        clear_only = await service.request("CP", ask(report=False, clear=True, customer_identifier="c"))
        assert (clear_only.complete, clear_only.data) == (None, None)
        # After a restart the node's request ids continue above a clear-only request's too.
        assert Reports(w.report_parts, w.h.clock).next_request_id() > clear_only.request.request_id
        commander.replies["CustomerInformation"] = ChargerCallError("no", ocpp_code="InternalError")
        with pytest.raises(ChargerCallError):
            await service.request("CP", ask())
        failed = service.page("CP", 1)[0].request
        assert (failed.status, failed.error_code) == ("Failed", "charger_error")
        sent = len(commander.sent)
        with pytest.raises(ValidationError):
            await service.request("CP", ask(report=False))
        assert len(commander.sent) == sent and len(service.page("CP", 10)) == 3
        commander.protocol = "ocpp1.6"
        with pytest.raises(ConflictError) as old:
            await service.request("CP", ask())
        assert old.value.code == "unsupported_protocol" and len(service.page("CP", 10)) == 3
        # Every request got its own id, newest first.
        page = [i.request.request_id for i in service.page("CP", 10)]
        assert page == sorted(page, reverse=True) and len(set(page)) == 3

    run(tmp_path, commander, build, scenario)
