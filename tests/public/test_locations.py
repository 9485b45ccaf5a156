"""GET /public/v1/locations in-process: the route over the real `PublicLocations`, whose sources (the opted-in
sites, the locations book, billing's tariffs and price signals) are stand-ins, on a clock the test drives. Pages
by id and by distance with their cursors, the `available` filter and the cap on sites looked at per request,
each charger's own tariff, Accept-Language, 422 naming every bad field, 429 per address, and nothing private in
the body (charger ids, EVSE uids, tariff ids, the EAN)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
import trio

from ampgate.availability import TokenBuckets
from ampgate.billing.tariffs import Resolution
from ampgate.clock import Clock
from ampgate.load import Location, PlacementRow, SiteRow
from ampgate.pricing import DisplayText, PriceSignal, Tariff, compile_tariff
from ampgate.public import TransferLimiter, create_public_app
from ampgate.public.locations import get_public_location, languages, list_public_locations
from ampgate.public.locations_service import OptedInSites, PublicLocations
from ampgate.roaming.types import Connector, ConnectorFormat, ConnectorType, Evse, EvseStatus, PowerType
from tests.pricing.builders import comp, element, tariff

BASE = "http://public.test"
PATH = "/public/v1/locations"
# A Monday, 12:00 in Amsterdam.
NOW = datetime(2024, 6, 3, 10, tzinfo=UTC)


class Health:
    def report(self) -> dict[str, Any]:
        return {"status": "ok", "version": "9.9"}


class StoppedClock(Clock):
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return NOW


def site(site_id: str, lat: float, lon: float = 5.0) -> SiteRow:
    return SiteRow(
        id=site_id,
        name=f"Site {site_id}",
        phase_limits_a=(80.0, 80.0, 80.0),
        limit_kw=None,
        voltage_v=230.0,
        time_zone="Europe/Amsterdam",
        location=Location(lat=lat, lon=lon, city="Utrecht", country="NLD"),
        ean="871687120000000004",
        public_recommendations=True,
        created_at=NOW - timedelta(days=1),
        updated_at=NOW - timedelta(days=1),
    )


def evse(charger_id: str, n: int, status: EvseStatus, emi3: str | None = None) -> tuple[str, Evse]:
    at = NOW - timedelta(hours=1)
    return charger_id, Evse(
        uid=f"{charger_id}-{n}",
        evse_id=emi3,
        status=status,
        connectors=[
            Connector(
                id=str(n),
                standard=ConnectorType.IEC_62196_T2,
                format=ConnectorFormat.SOCKET,
                power_type=PowerType.AC_3_PHASE,
                max_voltage=230,
                max_amperage=32,
                last_updated=at,
            )
        ],
        last_updated=at,
    )


class Sources:
    """The opted-in sites, the book, the tariffs and the signals, in one stand-in."""

    def __init__(self) -> None:
        self.sites = {
            s.id: s for s in (site("A", 52.00), site("B", 52.02), site("C", 52.01), site("EMPTY", 52.0))
        }
        self.evses: dict[str, list[tuple[str, Evse]]] = {
            "A": [
                evse("CP-A1", 1, EvseStatus.AVAILABLE, "NL*AMP*E0001*1"),
                evse("CP-A2", 1, EvseStatus.CHARGING),
            ],
            "B": [evse("CP-B1", 1, EvseStatus.OUTOFORDER)],
            "C": [evse("CP-C1", 1, EvseStatus.AVAILABLE), evse("CP-C1", 2, EvseStatus.UNKNOWN)],
        }
        self.tariffs: dict[str, Tariff] = {}
        self.site_tariffs: dict[str, Tariff] = {}
        self.signals: list[PriceSignal] = []
        self.looked_at: list[str] = []

    def public_sites(self) -> list[SiteRow]:
        return list(self.sites.values())

    def public_site(self, site_id: str) -> SiteRow | None:
        return self.sites.get(site_id)

    def site_evses(self, site_id: str) -> list[tuple[str, Evse]]:
        self.looked_at.append(site_id)
        return self.evses.get(site_id, [])

    def resolve(
        self, charger_id: str, *, group: str | None, site_id: str | None, at: datetime | None = None
    ) -> Resolution | None:
        assert group is None and at == NOW
        t = self.tariffs.get(charger_id) or self.site_tariffs.get(site_id or "")
        return None if t is None else Resolution(tariff=t, compiled=compile_tariff(t), scope="charger")

    def signals_at(
        self, site_id: str | None, currency: str, since: datetime, until: datetime, *, fresh: bool = False
    ) -> list[PriceSignal]:
        return [s for s in self.signals if s.start < until and s.end > since]


class Signals:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def signals(
        self, site_id: str | None, currency: str, since: datetime, until: datetime, *, fresh: bool = False
    ) -> list[PriceSignal]:
        return self.sources.signals_at(site_id, currency, since, until)


Scenario = Callable[[httpx.AsyncClient, Sources, StoppedClock], Awaitable[None]]


def run(scenario: Scenario, *, burst: int = 100, examine: int = 1000) -> None:
    async def main() -> None:
        sources, clock = Sources(), StoppedClock()
        service = PublicLocations(
            sources, sources, sources, Signals(sources), clock, TokenBuckets(1.0, burst), examine=examine
        )
        app = create_public_app(
            Health(),
            TransferLimiter(),
            [list_public_locations, get_public_location],
            {"public_locations": service},
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            with trio.fail_after(30):
                await scenario(client, sources, clock)

    trio.run(main)


def ids(body: dict[str, Any]) -> list[str]:
    return [i["site_id"] for i in body["items"]]


def test_pages_by_id_and_by_distance_and_the_available_filter() -> None:
    async def scenario(client: httpx.AsyncClient, sources: Sources, clock: StoppedClock) -> None:
        r = await client.get(PATH)
        assert r.status_code == 200, r.text
        assert ids(r.json()) == ["A", "B", "C"]  # EMPTY has no EVSE
        first = (await client.get(PATH, params={"limit": "2"})).json()
        assert ids(first) == ["A", "B"]
        rest = (await client.get(PATH, params={"limit": "2", "cursor": first["next_cursor"]})).json()
        assert ids(rest) == ["C"] and rest["next_cursor"] is None

        near = {"lat": "52.02", "lon": "5.0", "radius_km": "5"}
        page = (await client.get(PATH, params={**near, "limit": "1"})).json()
        assert ids(page) == ["B"] and page["items"][0]["distance_km"] == 0
        page = (await client.get(PATH, params={**near, "limit": "1", "cursor": page["next_cursor"]})).json()
        assert ids(page) == ["C"] and page["items"][0]["distance_km"] == pytest.approx(1.112, abs=0.001)
        page = (await client.get(PATH, params={**near, "cursor": page["next_cursor"]})).json()
        assert ids(page) == ["A"] and page["next_cursor"] is None
        small = (await client.get(PATH, params={"lat": "52.02", "lon": "5.0", "radius_km": "1"})).json()
        assert ids(small) == ["B"]

        assert ids((await client.get(PATH, params={"available": "true"})).json()) == ["A", "C"]
        assert ids((await client.get(PATH, params={"available": "FALSE"})).json()) == ["B"]
        body = (await client.get(PATH, params={"available": "true", "limit": "1"})).json()
        assert ids(body) == ["A"]
        body = (await client.get(PATH, params={"available": "true", "cursor": body["next_cursor"]})).json()
        assert ids(body) == ["C"]

    run(scenario)


def test_a_request_looks_at_a_bounded_number_of_sites_and_says_where_to_go_on() -> None:
    async def scenario(client: httpx.AsyncClient, sources: Sources, clock: StoppedClock) -> None:
        # One site looked at per request: a page may come back short, even empty, with a cursor to follow.
        pages: list[list[str]] = []
        cursor: str | None = None
        while True:
            params = {"available": "false"} | ({"cursor": cursor} if cursor else {})
            body = (await client.get(PATH, params=params)).json()
            pages.append(ids(body))
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == [[], ["B"], [], []]
        assert sources.looked_at == ["A", "B", "C", "EMPTY"]

    run(scenario, examine=1)


def test_evses_show_their_status_and_their_chargers_tariff_now_and_nothing_private() -> None:
    async def scenario(client: httpx.AsyncClient, sources: Sources, clock: StoppedClock) -> None:
        sources.site_tariffs["A"] = tariff(
            element(comp("ENERGY", "0.50", vat=21), start_time="17:00", end_time="21:00"),
            element(comp("ENERGY", "0.40", vat=21), min_power=50),
            element(comp("ENERGY", "0.30", vat=21), comp("TIME", "1.20", vat=21)),
            id="SECRET-SITE-TARIFF",
            max_price=("30", "36.30"),
            tariff_alt_text=(DisplayText(language="nl", text="Tarief op werkdagen"),),
        )
        sources.tariffs["CP-A2"] = tariff(element(comp("FLAT", "2")), id="SECRET-CHARGER-TARIFF")
        sources.signals.append(
            PriceSignal(
                start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1), energy_price=Decimal("0.2")
            )
        )
        r = await client.get(PATH + "/A", headers={"Accept-Language": "nl-BE, en;q=0.5"})
        assert r.status_code == 200, r.text
        for private in ("CP-", "SECRET", "871687120000000004"):
            assert private not in r.text
        body = r.json()
        assert (body["evses_available"], body["evses_total"], body["distance_km"]) == (1, 2, None)
        first, second = body["evses"]
        assert (first["evse_id"], first["status"], second["evse_id"], second["status"]) == (
            "NL*AMP*E0001*1",
            "AVAILABLE",
            None,
            "CHARGING",
        )
        assert first["updated_at"] == "2024-06-03T09:00:00Z" and body["updated_at"] == "2024-06-03T09:00:00Z"
        price = first["price"]
        assert price["language"] == "nl"
        assert price["summary"] == "0.363–0.605 EUR/kWh + 1.452 EUR/h (max. 36.30 EUR). Tarief op werkdagen"
        assert [
            (c["type"], c["price_excl_vat"], c["price_incl_vat"], c["conditions"], c["dynamic"])
            for c in price["components"]
        ] == [
            ("ENERGY", 0.2, 0.242, {"min_power_kw": 50}, True),
            ("ENERGY", 0.2, 0.242, None, True),
            ("TIME", 1.2, 1.452, None, False),
        ]
        assert (price["max_price"], price["min_price"]) == (36.3, None)
        assert price["price_signal"] == {
            "energy_price": 0.2,
            "start_at": "2024-06-03T09:00:00Z",
            "end_at": "2024-06-03T11:00:00Z",
        }
        assert second["price"]["summary"] == "2.00 EUR start" and second["price"]["language"] is None
        # Without a language the tariff has text in: the generated line in English.
        r = await client.get(PATH + "/A", headers={"Accept-Language": "de"})
        assert r.json()["evses"][0]["price"]["summary"] == "0.363–0.605 EUR/kWh + 1.452 EUR/h (max 36.30 EUR)"
        assert (await client.get(PATH + "/EMPTY")).status_code == 404
        assert (await client.get(PATH + "/ZZZ")).json()["field"] == "site_id"

    run(scenario)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": "4.9"}, "lat"),
        ({"lat": "52.37"}, "lon"),
        ({"lat": "north", "lon": "4.9"}, "lat"),
        ({"lat": "52", "lon": "inf"}, "lon"),
        ({"lat": "52", "lon": "4", "radius_km": "0"}, "radius_km"),
        ({"lat": "52", "lon": "4", "radius_km": "301"}, "radius_km"),
        ({"radius_km": "3"}, "radius_km"),
        ({"available": "1"}, "available"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"cursor": "bm90IGpzb24"}, "cursor"),
        ({"cursor": "WzEsIDJd"}, "cursor"),  # [1, 2]: JSON, but no page key
        ({"cursor": "W251bGwsICJBIl0", "lat": "52", "lon": "5"}, "cursor"),  # [null, "A"] near a point
    ],
)
def test_bad_values_name_their_field(params: dict[str, str], field: str) -> None:
    async def scenario(client: httpx.AsyncClient, sources: Sources, clock: StoppedClock) -> None:
        r = await client.get(PATH, params=params)
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == ("invalid_field", field)

    run(scenario)


def test_each_address_has_a_bucket_shared_by_both_routes() -> None:
    async def scenario(client: httpx.AsyncClient, sources: Sources, clock: StoppedClock) -> None:
        assert (await client.get(PATH)).status_code == 200
        assert (await client.get(PATH + "/A")).status_code == 200
        r = await client.get(PATH, params={"limit": "nonsense"})
        assert r.status_code == 429 and r.json()["code"] == "too_many_requests"
        assert r.headers["retry-after"] == "1"
        assert (await client.get(PATH + "/A")).status_code == 429
        clock.t += 1.0
        assert (await client.get(PATH + "/A")).status_code == 200

    run(scenario, burst=2)


def test_accept_language_is_read_by_preference() -> None:
    assert languages(None) == [] and languages("") == []
    assert languages("de-DE,de;q=0.9,en;q=0.8") == ["de", "en"]
    assert languages("fr;q=0.5, NL-be;q=0.9, *;q=0.1, es;q=0") == ["nl", "fr"]
    assert languages("en;q=abc, 12, de") == ["de"]
    assert languages(",".join(["en"] * 5 + ["de"] * 20)) == ["en", "de"]


class Topology:
    """2,500 sites, every third opted in; a charger placed at each."""

    def __init__(self) -> None:
        self.rows = [
            msgspec.structs.replace(site(f"S{n:04d}", 52.0), public_recommendations=n % 3 == 0)
            for n in range(2500)
        ]
        self.placed = {f"CP-{n:04d}": f"S{n:04d}" for n in range(2500)}
        self.placed.update({f"CP-X{n:04d}": "S0003" for n in range(1500)})

    def site(self, site_id: str) -> SiteRow | None:
        return next((s for s in self.rows if s.id == site_id), None)

    def sites(self, limit: int, after: str | None = None) -> list[SiteRow]:
        return [s for s in self.rows if after is None or s.id > after][:limit]

    def placement(self, charger_id: str) -> PlacementRow | None:
        site_id = self.placed.get(charger_id)
        if site_id is None:
            return None
        return PlacementRow(
            charger_id=charger_id,
            site_id=site_id,
            node_id=None,
            phases="L1",
            max_a=16.0,
            priority=0,
            weight=1.0,
            created_at=NOW,
            updated_at=NOW,
        )

    def placements(self, site_id: str, limit: int, after: str | None = None) -> list[PlacementRow]:
        ids = sorted(c for c, s in self.placed.items() if s == site_id and (after is None or c > after))
        return [p for c in ids[:limit] if (p := self.placement(c)) is not None]

    def site_of_every_charger(self) -> list[tuple[str, str]]:
        return list(self.placed.items())


def test_without_ocpi_the_book_sees_only_the_opted_in_sites_and_their_chargers() -> None:
    opted = OptedInSites(Topology())
    first = opted.sites(1000)
    assert len(first) == 834 and all(int(s.id[1:]) % 3 == 0 for s in first)  # all of them: a short page
    assert [s.id for s in opted.sites(2, "S0004")] == ["S0006", "S0009"]
    assert opted.site("S0003") is not None and opted.site("S0004") is None
    placed = dict(opted.site_of_every_charger())
    assert len(placed) == 834 + 1500 and set(placed.values()) == {s.id for s in first}
    assert opted.placement("CP-0003") is not None and opted.placement("CP-0004") is None
    chargers = opted.chargers_at("S0003")
    assert len(chargers) == 1501 and chargers == sorted(chargers)
