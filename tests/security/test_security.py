"""Security events without a node: the spec's critical list, the repository on a real store (a resend is one
row; filters and order), and the handler in-process (the reply waits for the commit; a resend publishes
nothing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import trio
import trio.testing

from ampgate.events import SecurityAlert, SecurityEventReported
from ampgate.security import SecurityEventHandlers, SecurityEventReport, SecurityEventRepository, is_critical
from ampgate.store import Store
from tests.ocpp.fakes import NOW, Harness
from tests.store.conftest import Runner

T0 = datetime(2026, 11, 30, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event_type", "critical"),
    [
        ("TamperDetectionActivated", True),
        ("InvalidCsmsCertificate", True),
        ("InvalidCentralSystemCertificate", True),  # the 1.6 whitepaper's name for it
        ("MaintenanceLoginFailed", True),
        ("FailedToAuthenticateAtCsms", False),
        ("InvalidMessages", False),
        ("AcmeDoorOpened", False),  # proprietary
    ],
)
def test_the_critical_types_are_the_specs(event_type: str, critical: bool) -> None:
    assert is_critical(event_type) is critical


def report(charger: str, event_type: str, at: datetime, tech: str | None = None) -> SecurityEventReport:
    return SecurityEventReport(
        charger_id=charger,
        type=event_type,
        occurred_at=at,
        tech_info=tech,
        critical=is_critical(event_type),
        received_at=NOW,
    )


def test_a_resent_event_is_one_row_and_pages_filter_newest_first(running: Runner) -> None:
    async def body(store: Store) -> None:
        repo = SecurityEventRepository(store)
        first, created = await repo.record(report("CP1", "StartupOfTheDevice", T0))
        assert created
        assert await repo.record(report("CP1", "StartupOfTheDevice", T0)) == (first, False)
        # The same type at another time, or with other techInfo, is another event.
        second, _ = await repo.record(report("CP1", "StartupOfTheDevice", T0, "cold"))
        third, _ = await repo.record(report("CP1", "InvalidMessages", T0 + timedelta(minutes=1)))
        fourth, _ = await repo.record(report("CP2", "TamperDetectionActivated", T0 + timedelta(minutes=2)))
        assert len({first, second, third, fourth}) == 4

        assert [r.id for r in repo.page(10)] == [fourth, third, second, first]
        assert [r.id for r in repo.page(10, charger_id="CP1", critical=True)] == [second, first]
        assert [r.id for r in repo.page(10, critical=False)] == [third]
        assert [r.id for r in repo.page(2, before=third)] == [second, first]
        window = repo.page(10, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2))
        assert [r.id for r in window] == [third]
        (row,) = repo.page(1, charger_id="CP2")
        assert (row.type, row.critical, row.tech_info, row.occurred_at) == (
            "TamperDetectionActivated",
            True,
            None,
            T0 + timedelta(minutes=2),
        )
        assert repo.page(10, before=first) == []

    running(body)


class Records:
    """A stand-in repository: holds every write until `gate` is set; a resend is the same id, not created."""

    def __init__(self) -> None:
        self.rows: list[SecurityEventReport] = []
        self.gate = trio.Event()

    async def record(self, r: SecurityEventReport) -> tuple[int, bool]:
        await self.gate.wait()
        key = (r.charger_id, r.type, r.occurred_at, r.tech_info)
        for i, old in enumerate(self.rows, 1):
            if (old.charger_id, old.type, old.occurred_at, old.tech_info) == key:
                return i, False
        self.rows.append(r)
        return len(self.rows), True


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0.1"])
def test_the_reply_waits_for_the_commit_and_a_resend_publishes_nothing(protocol: str) -> None:
    async def main() -> None:
        h = Harness(accepted=["CP1"])
        records = Records()
        SecurityEventHandlers(records, h.bus, h.clock).register(h.router)
        async with trio.open_nursery() as nursery:
            await nursery.start(h.router.run)
            h.open("CP1", protocol)
            out: list[tuple[int, bytes]] = []
            payload = {
                "type": "TamperDetectionActivated",
                "timestamp": "2026-11-30T07:00:00Z",
                "techInfo": "lid",
            }
            h.router.on_message(1, msgspec.json.encode([2, "e1", "SecurityEventNotification", payload]), out)
            await trio.testing.wait_all_tasks_blocked()
            assert out == [] and h.link.sent == [] and h.published() == []  # nothing before the commit
            records.gate.set()
            await trio.testing.wait_all_tasks_blocked()
            assert h.link.sent == [(1, [3, "e1", {}])]
            event, alert = h.published()
            assert isinstance(event, SecurityEventReported) and isinstance(alert, SecurityAlert)
            assert (alert.id, alert.event_type, alert.charger_id) == (1, "TamperDetectionActivated", "CP1")
            assert (event.charger_id, event.id, event.event_type, event.critical, event.tech_info) == (
                "CP1",
                1,
                "TamperDetectionActivated",
                True,
                "lid",
            )
            assert event.occurred_at == T0
            h.router.on_message(1, msgspec.json.encode([2, "e2", "SecurityEventNotification", payload]), out)
            await trio.testing.wait_all_tasks_blocked()
            assert h.link.sent[-1] == (1, [3, "e2", {}]) and h.published() == []
            # A bad payload is a CallError naming the field, and nothing is stored.
            bad = {"type": "X" * 51, "timestamp": "2026-11-30T07:00:00Z"}
            h.router.on_message(1, msgspec.json.encode([2, "e3", "SecurityEventNotification", bad]), out)
            assert out[-1][1].startswith(b'[4,"e3","TypeConstraintViolation"') and len(records.rows) == 1
            nursery.cancel_scope.cancel()

    trio.run(main)
