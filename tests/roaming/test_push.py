"""The pusher alone, against a fake client and a fake book, on trio's MockClock: changes of one EVSE coalesce
while a push is on the way (latest wins, never two of one key at once), a refused PATCH becomes a PUT of the
Location, a change of tariff is a PATCH of each connector, and a party that keeps failing is marked failing,
left alone for the back-off, and recovers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import trio
import trio.testing

from ampgate.clock import Clock
from ampgate.events import Event, OcpiPushFailing
from ampgate.roaming.client import PartyRefused, PartyUnreachable
from ampgate.roaming.parties import Party
from ampgate.roaming.push import FAILING_AFTER, FAILING_BACKOFF_S, LocationPusher
from ampgate.roaming.types import (
    Connector,
    ConnectorFormat,
    ConnectorTariffsPatch,
    ConnectorType,
    Endpoint,
    Evse,
    EvseStatus,
    EvseStatusPatch,
    GeoLocation,
    InterfaceRole,
    Location,
    PowerType,
)

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class FixedClock(Clock):
    def wall(self) -> float:
        return T0.timestamp()


@dataclass
class Book:
    country_code: str = "NL"
    party_id: str = "AMP"
    status: EvseStatus = EvseStatus.AVAILABLE
    tariff_ids: list[str] | None = None

    def location(self, location_id: str) -> Location | None:
        if location_id == "GONE":
            return None
        return Location(
            country_code="NL",
            party_id="AMP",
            id=location_id,
            publish=True,
            address="Stationsplein 1",
            city="Utrecht",
            country="NLD",
            coordinates=GeoLocation(latitude="52.089400", longitude="5.110000"),
            time_zone="Europe/Amsterdam",
            last_updated=T0,
        )

    def evse_state(self, location_id: str, uid: str) -> tuple[EvseStatus, datetime] | None:
        return self.status, T0

    def evse(self, location_id: str, uid: str) -> Evse | None:
        """Two connectors, both naming `tariff_ids`."""
        if location_id == "GONE":
            return None
        connectors = [
            Connector(
                id=str(c),
                standard=ConnectorType.IEC_62196_T2,
                format=ConnectorFormat.SOCKET,
                power_type=PowerType.AC_3_PHASE,
                max_voltage=230,
                max_amperage=32,
                tariff_ids=self.tariff_ids,
                last_updated=T0,
            )
            for c in (1, 2)
        ]
        return Evse(uid=uid, status=self.status, connectors=connectors, last_updated=T0)


@dataclass
class Client:
    """Records calls; each takes `latency` seconds; `fail` raises that instead; `refuse_patch` 404s PATCHes."""

    latency: float = 1.0
    fail: Exception | None = None
    refuse_patch: bool = False
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    concurrent: int = 0
    most_concurrent_per_url: dict[str, int] = field(default_factory=dict)
    _open: dict[str, int] = field(default_factory=dict)

    async def push(self, method: str, url: str, token: str, *, body: Any = None, to: Any = None) -> None:
        self._open[url] = self._open.get(url, 0) + 1
        self.most_concurrent_per_url[url] = max(self.most_concurrent_per_url.get(url, 0), self._open[url])
        try:
            await trio.sleep(self.latency)
            self.calls.append((method, url, body))
            if self.fail is not None:
                raise self.fail
            if self.refuse_patch and method == "PATCH":
                raise PartyRefused("unknown", http_status=404, status_code=2003)
        finally:
            self._open[url] -= 1


def party() -> Party:
    return Party(
        id=1,
        country_code="NL",
        party_id="EMP",
        role="EMSP",
        name=None,
        state="registered",
        registered_by="them",
        their_token="tok",
        versions_url="http://emsp/versions",
        version="2.2.1",
        endpoints=(Endpoint(identifier="locations", role=InterfaceRole.RECEIVER, url="http://emsp/loc"),),
        roles=(),
        registered_at=T0,
        created_at=T0,
        updated_at=T0,
    )


def run(scenario: Any) -> None:
    async def main() -> None:
        book, client, published = Book(), Client(), []

        class Bus:
            def publish(self, event: Event) -> None:
                published.append(event)

        pusher = LocationPusher(book, client, Bus(), FixedClock())  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            await nursery.start(pusher.run)
            pusher.set_parties([party()])
            await scenario(pusher, book, client, published)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_changes_of_one_evse_coalesce_while_a_push_is_on_the_way() -> None:
    async def scenario(pusher, book, client, published) -> None:
        pusher.evse_changed("S1", "CP-1")
        await trio.sleep(0.1)  # the first push is on the way (it takes 1 s)
        for status in [EvseStatus.CHARGING, EvseStatus.AVAILABLE] * 50 + [EvseStatus.OUTOFORDER]:
            book.status = status
            pusher.evse_changed("S1", "CP-1")
        assert pusher.pending() == 1  # 101 changes, one key
        await trio.sleep(5)
        url = "http://emsp/loc/NL/AMP/S1/CP-1"
        assert [(m, u) for m, u, _ in client.calls] == [("PATCH", url), ("PATCH", url)]
        assert client.calls[-1][2] == EvseStatusPatch(status=EvseStatus.OUTOFORDER, last_updated=T0)
        assert client.most_concurrent_per_url[url] == 1  # never two pushes of one EVSE at once
        stats = pusher.stats(1)
        assert stats.sent == 2 and stats.pending == 0 and stats.failed == 0

    run(scenario)


def test_different_evses_go_out_side_by_side() -> None:
    async def scenario(pusher, book, client, published) -> None:
        for i in range(8):
            pusher.evse_changed("S1", f"CP-{i}")
        await trio.sleep(2.5)  # four workers, 1 s each: eight pushes in two rounds
        assert len(client.calls) == 8

    run(scenario)


def test_a_refused_patch_is_followed_by_a_put_of_the_location() -> None:
    async def scenario(pusher, book, client, published) -> None:
        client.refuse_patch = True
        pusher.evse_changed("S1", "CP-1")
        await trio.sleep(5)
        assert [(m, u) for m, u, _ in client.calls] == [
            ("PATCH", "http://emsp/loc/NL/AMP/S1/CP-1"),
            ("PUT", "http://emsp/loc/NL/AMP/S1"),
        ]
        assert pusher.stats(1).sent == 1

    run(scenario)


def test_a_removed_evse_is_patched_to_removed() -> None:
    async def scenario(pusher, book, client, published) -> None:
        pusher.evse_removed("S1", "CP-9", T0)
        await trio.sleep(2)
        assert client.calls == [
            (
                "PATCH",
                "http://emsp/loc/NL/AMP/S1/CP-9",
                EvseStatusPatch(status=EvseStatus.REMOVED, last_updated=T0),
            )
        ]

    run(scenario)


def test_a_failing_party_is_marked_left_alone_and_recovers() -> None:
    async def scenario(pusher, book, client, published) -> None:
        client.fail = PartyUnreachable("connection refused")
        for i in range(FAILING_AFTER + 3):
            pusher.evse_changed("S1", f"CP-{i}")
        await trio.sleep(10)
        stats = pusher.stats(1)
        assert stats.failing and stats.failed >= FAILING_AFTER and stats.pending == 0
        (failing,) = [e for e in published if isinstance(e, OcpiPushFailing)]
        assert failing.failing and failing.failures == FAILING_AFTER and "refused" in (failing.error or "")
        # While left alone, changes are dropped rather than kept.
        calls = len(client.calls)
        pusher.evse_changed("S1", "CP-X")
        await trio.sleep(5)
        assert len(client.calls) == calls and pusher.stats(1).dropped >= 1
        # After the back-off, the next change goes out; it succeeds: recovered.
        client.fail = None
        await trio.sleep(FAILING_BACKOFF_S)
        pusher.evse_changed("S1", "CP-Y")
        await trio.sleep(2)
        assert client.calls[-1][1].endswith("/CP-Y")
        recovered = [e for e in published if isinstance(e, OcpiPushFailing)][-1]
        assert recovered.failing is False and not pusher.stats(1).failing

    run(scenario)


def test_a_party_that_unregisters_is_pushed_nothing_more() -> None:
    async def scenario(pusher, book, client, published) -> None:
        pusher.set_parties([])
        pusher.evse_changed("S1", "CP-1")
        await trio.sleep(2)
        assert client.calls == [] and pusher.stats(1) is None

    run(scenario)


def test_a_change_of_tariff_is_a_patch_of_each_connector_with_its_tariff_ids() -> None:
    async def scenario(pusher, book, client, published) -> None:
        book.tariff_ids = ["OLD"]
        pusher.tariffs_changed("S1", "CP-1")
        await trio.sleep(0.1)  # on the way
        book.tariff_ids = ["NEW"]
        pusher.tariffs_changed("S1", "CP-1")
        pusher.tariffs_changed("S1", "CP-1")
        assert pusher.pending() == 1
        await trio.sleep(10)
        url = "http://emsp/loc/NL/AMP/S1/CP-1"
        assert [(m, u) for m, u, _ in client.calls] == [("PATCH", f"{url}/1"), ("PATCH", f"{url}/2")] * 2
        assert client.calls[-1][2] == ConnectorTariffsPatch(tariff_ids=["NEW"], last_updated=T0)
        # None applies any more: an empty list, written (a PATCH without the field would change nothing).
        client.calls.clear()
        book.tariff_ids = None
        pusher.tariffs_changed("S1", "CP-1")
        await trio.sleep(5)
        assert client.calls[0][2] == ConnectorTariffsPatch(tariff_ids=[], last_updated=T0)
        assert msgspec.json.decode(msgspec.json.encode(client.calls[0][2])) == {
            "tariff_ids": [],
            "last_updated": "2026-11-30T08:00:00Z",
        }
        # An EVSE no longer published: nothing.
        client.calls.clear()
        pusher.tariffs_changed("GONE", "CP-1")
        await trio.sleep(5)
        assert client.calls == []

    run(scenario)


def test_a_refused_connector_patch_is_followed_by_a_put_of_the_location() -> None:
    async def scenario(pusher, book, client, published) -> None:
        client.refuse_patch = True
        pusher.tariffs_changed("S1", "CP-1")
        await trio.sleep(5)
        assert [(m, u) for m, u, _ in client.calls] == [
            ("PATCH", "http://emsp/loc/NL/AMP/S1/CP-1/1"),
            ("PUT", "http://emsp/loc/NL/AMP/S1"),
        ]
        assert pusher.stats(1).sent == 1

    run(scenario)
