"""Multi-part reports without a node: when a report is whole, parts stored in any order and once each, a
report of ours replaced when its request id is asked again, and a waiter woken by the part that completes it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio

from ampgate.clock import Clock
from ampgate.reports import Part, ReportRepository, Reports, complete
from ampgate.store import Store
from tests.store.conftest import Runner

NOW = datetime(2026, 11, 30, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seqs", "last", "whole"),
    [
        ({0}, 0, True),
        ({0, 1, 2}, 2, True),
        ({2, 0, 1}, 2, True),
        ({0, 2}, 2, False),  # a part missing
        ({0, 1}, None, False),  # the last part not in yet
        ({1}, 1, False),
        ({0, 1, 2}, 1, False),  # a part after the last: not a whole report
    ],
)
def test_complete(seqs: set[int], last: int | None, whole: bool) -> None:
    assert complete(seqs, last) is whole


def part(seq: int | None, tbc: bool, request_id: int = 7, body: str = "{}") -> Part:
    return Part(
        charger_id="CP1",
        kind="NotifyReport",
        request_id=request_id,
        seq_no=seq,
        tbc=tbc,
        generated_at=NOW,
        received_at=NOW,
        payload=body.encode(),
    )


def test_parts_in_any_order_once_each(running: Runner) -> None:
    async def body(store: Store) -> None:
        repo = ReportRepository(store)
        await repo.open("CP1", "NotifyReport", 7, NOW)
        assert (await repo.add(part(2, False, body='{"n":2}')))[1:] == (True, False)
        assert (await repo.add(part(0, True, body='{"n":0}')))[1:] == (True, False)
        assert (await repo.add(part(0, True, body='{"again":0}')))[1:] == (False, False)  # resent
        assert (await repo.add(part(1, True, body='{"n":1}')))[1:] == (True, True)  # completes it
        assert (await repo.add(part(1, True)))[1:] == (False, False)
        found = repo.get("CP1", "NotifyReport", 7)
        assert found is not None
        row, parts = found
        assert parts == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        assert row.parts == 3 and row.completed_at == NOW and row.requested_at == NOW
        # Asking again under the same request id starts a fresh report.
        await repo.open("CP1", "NotifyReport", 7, NOW)
        again = repo.get("CP1", "NotifyReport", 7)
        assert again is not None and again[1] == [] and again[0].completed_at is None
        # Parts without a seqNo are numbered as they arrive; an unasked report is kept too.
        first = Part(
            charger_id="CP1",
            kind="NotifyDisplayMessages",
            request_id=9,
            seq_no=None,
            tbc=True,
            generated_at=None,
            received_at=NOW,
            payload=b"[1]",
        )
        await repo.add(first)
        _, stored, done = await repo.add(
            Part(
                charger_id="CP1",
                kind="NotifyDisplayMessages",
                request_id=9,
                seq_no=None,
                tbc=False,
                generated_at=None,
                received_at=NOW,
                payload=b"[2]",
            )
        )
        assert stored and done
        assert repo.get("CP1", "NotifyDisplayMessages", 9)[1] == [b"[1]", b"[2]"]  # type: ignore[index]
        assert repo.max_request_id() == 9
        assert await repo.delete("CP1", "NotifyDisplayMessages", 9)
        assert repo.get("CP1", "NotifyDisplayMessages", 9) is None
        assert not await repo.delete("CP1", "NotifyDisplayMessages", 9)

    running(body)


def test_a_waiter_is_woken_by_the_completing_part(running: Runner) -> None:
    async def body(store: Store) -> None:
        reports = Reports(ReportRepository(store), Clock())
        rid = reports.next_request_id()
        assert rid == 1 and reports.next_request_id() == 2
        await reports.expect("CP1", "NotifyReport", rid)
        woke: list[bool] = []

        async def waiter() -> None:
            await reports.wait("CP1", "NotifyReport", rid)
            woke.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await reports.add(part(1, False, request_id=rid))
            await trio.sleep(0.05)
            assert woke == []
            assert await reports.add(part(0, True, request_id=rid)) == (True, True)
        assert woke == [True]
        # A report under an id the node did not hand out (an operator's GetReport) moves the ids past it.
        await reports.add(part(0, False, request_id=40))
        assert reports.next_request_id() == 41
        # Waiting for a report already whole returns at once.
        with trio.fail_after(1):
            await reports.wait("CP1", "NotifyReport", rid)

    running(body)
