"""GET /public/v1/locations against a real node, with chargers on real WebSockets (the `websockets` client speaking
OCPP 1.6J): only the opted-in site is listed; its EVSEs' status follows StatusNotifications live (Charging →
CHARGING, Faulted → OUTOFORDER, the charger gone → UNKNOWN) with no OCPI configured, and is the status OCPI
publishes when it is; the prices are those of the tariff billing would give an anonymous session now (the site's,
then the charger's once it has one), with a time-of-day element that applies now and one that does not, the
German line for Accept-Language: de, and a price signal in force; the filters, the cursor and the 404; past the
per-address limit 429. No charger id appears in any answer."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import websockets.sync.client as ws_client

from tests.integration.ocpp_clients import boot_payload, call

WAIT = 15.0
ZONE = ZoneInfo("Europe/Amsterdam")
# The opted-in site, one opted out a few hundred metres away, one opted in but far away (Maastricht).
SITES = {
    "OPEN": (52.0894, 5.1100, True),
    "SHUT": (52.0900, 5.1100, False),
    "FAR": (50.8514, 5.6910, True),
}


class Charger:
    """A 1.6 charger with two connectors (two EVSEs, as OCPI sees 1.6) on a live WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.rpc("BootNotification", boot_payload("ocpp1.6"))

    def rpc(self, action: str, payload: dict[str, Any]) -> Any:
        uid, text = call(action, payload)
        self.ws.send(text)
        while True:
            reply = json.loads(self.ws.recv(timeout=10))
            if reply[0] == 3 and reply[1] == uid:
                return reply[2]

    def status(self, connector: int, status: str, error_code: str = "NoError") -> None:
        self.rpc("StatusNotification", {"connectorId": connector, "errorCode": error_code, "status": status})


@contextlib.contextmanager
def connected(node: Any, charger_id: str) -> Iterator[Charger]:
    with ws_client.connect(f"{node.ocpp_url}/{charger_id}", subprotocols=["ocpp1.6"]) as ws:
        yield Charger(ws)


def setup_sites(node: Any) -> None:
    with node.api() as api:
        for site_id, (lat, lon, public) in SITES.items():
            body = {
                "id": site_id,
                "name": f"Site {site_id}",
                "phase_limits_a": [63, 63, 63],
                "time_zone": "Europe/Amsterdam",
                "location": {
                    "lat": lat,
                    "lon": lon,
                    "address": "Stationsplein 1",
                    "city": "Utrecht",
                    "postal_code": "3511 ED",
                    "country": "NLD",
                },
                "public_recommendations": public,
            }
            assert api.post("/sites", json=body).status_code == 201
            charger_id = f"CP-{site_id}"
            assert api.post("/chargers", json={"id": charger_id}).status_code == 201
            r = api.put(
                f"/chargers/{charger_id}/placement", json={"node_id": site_id, "phases": "L1", "max_a": 32}
            )
            assert r.status_code == 200, r.text


def public(node: Any, path: str = "", headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    """One public request; a 429 (the test polls) is waited out as its Retry-After says."""
    while True:
        r = httpx.get(
            f"http://127.0.0.1:{node.public_port}/public/v1/locations{path}",
            params=params,
            headers=headers,
            timeout=10,
        )
        if r.status_code != 429:
            assert "CP-" not in r.text, r.text
            return r
        time.sleep(int(r.headers["retry-after"]))


def poll(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def open_site(node: Any, **headers: str) -> dict[str, Any]:
    r = public(node, "/OPEN", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def statuses(site: dict[str, Any]) -> list[str]:
    return [e["status"] for e in site["evses"]]


def hhmm(at: datetime) -> str:
    return at.astimezone(ZONE).strftime("%H:%M")


def test_opted_in_sites_with_live_status_and_current_prices(node) -> None:
    setup_sites(node)
    with node.api() as api:
        # An eMI3 id an admin gave the first EVSE is public (printed on the charger); the second has none.
        described = {
            "evses": [
                {
                    "evse_id": n,
                    **({"emi3_id": "NL*AMP*E0001*1"} if n == 1 else {}),
                    "connectors": [
                        {
                            "connector_id": n,
                            "standard": "IEC_62196_T2",
                            "format": "SOCKET",
                            "power_type": "AC_1_PHASE",
                            "max_voltage": 230,
                            "max_amperage": 32,
                            "max_electric_power": 7360,
                        }
                    ],
                }
                for n in (1, 2)
            ]
        }
        r = api.put("/chargers/CP-OPEN/connectors", json=described)
        assert r.status_code == 200, r.text

    with connected(node, "CP-OPEN") as cp, connected(node, "CP-SHUT") as shut:
        for c in (cp, shut):
            c.status(1, "Available")
            c.status(2, "Available")
        site = poll(lambda: open_site(node), lambda s: statuses(s) == ["AVAILABLE", "AVAILABLE"])
        assert statuses(site) == ["AVAILABLE", "AVAILABLE"]

        # The list: only the opted-in sites that have EVSEs (FAR has a charger that never reported: no EVSE).
        r = public(node)
        assert r.status_code == 200, r.text
        body = r.json()
        assert [i["site_id"] for i in body["items"]] == ["OPEN"] and body["next_cursor"] is None
        assert "SHUT" not in r.text and "CP-" not in r.text
        item = body["items"][0]
        assert item["location"] == {
            "lat": 52.0894,
            "lon": 5.11,
            "address": "Stationsplein 1",
            "city": "Utrecht",
            "postal_code": "3511 ED",
            "country": "NLD",
        }
        assert (item["time_zone"], item["distance_km"], item["evses_available"], item["evses_total"]) == (
            "Europe/Amsterdam",
            None,
            2,
            2,
        )
        assert [e["evse_id"] for e in item["evses"]] == ["NL*AMP*E0001*1", None]
        assert item["evses"][0]["connectors"] == [
            {
                "connector_id": 1,
                "standard": "IEC_62196_T2",
                "format": "SOCKET",
                "power_type": "AC_1_PHASE",
                "max_voltage": 230,
                "max_amperage": 32,
                "max_electric_power": 7360,
            }
        ]
        assert item["evses"][0]["price"] is None  # no tariff anywhere yet: the node prices nothing here
        assert set(item) == {
            "site_id",
            "name",
            "location",
            "time_zone",
            "distance_km",
            "evses_available",
            "evses_total",
            "evses",
            "updated_at",
        }
        assert set(item["evses"][0]) == {"evse_id", "status", "connectors", "price", "updated_at"}

        near = public(node, lat=52.09, lon=5.11, radius_km=5).json()["items"]
        assert [i["site_id"] for i in near] == ["OPEN"] and 0 < near[0]["distance_km"] < 1
        assert public(node, lat=48.85, lon=2.35, radius_km=50).json()["items"] == []
        assert [i["site_id"] for i in public(node, available="true").json()["items"]] == ["OPEN"]
        assert public(node, available="false").json()["items"] == []
        assert public(node, "/SHUT").status_code == 404
        assert public(node, "/FAR").status_code == 404  # opted in, but no EVSE yet
        assert public(node, "/NOPE").json() == {
            "code": "not_found",
            "message": "no public location has this id",
            "field": "site_id",
        }

        # Prices: a tariff at the site, with a time-of-day element that applies now (the middle one) after one
        # that does not (it would win if times were ignored), and an unconditional fallback.
        now = datetime.now(UTC)
        tariff = {
            "id": "PEAK",
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "ENERGY", "price": 0.70, "vat": 21}],
                    "restrictions": {
                        "start_time": hhmm(now + timedelta(hours=2)),
                        "end_time": hhmm(now + timedelta(hours=3)),
                    },
                },
                {
                    "price_components": [{"type": "ENERGY", "price": 0.50, "vat": 21}],
                    "restrictions": {
                        "start_time": hhmm(now - timedelta(hours=1)),
                        "end_time": hhmm(now + timedelta(hours=1)),
                    },
                },
                {
                    "price_components": [
                        {"type": "ENERGY", "price": 0.30, "vat": 21},
                        {"type": "PARKING_TIME", "price": 2.00, "vat": 21, "step_size": 300},
                    ]
                },
            ],
            "tariff_alt_text": [{"language": "de", "text": "Parken ab 2 Std. teurer"}],
        }
        with node.api() as api:
            assert api.post("/tariffs", json=tariff).status_code == 201
            assert api.put("/sites/OPEN/tariff", json={"tariff_id": "PEAK"}).status_code == 200
        site = open_site(node)
        price = site["evses"][0]["price"]
        assert site["evses"][1]["price"] == price
        assert price["currency"] == "EUR" and price["language"] is None
        assert price["summary"] == "0.363–0.847 EUR/kWh + 2.42 EUR/h parking"
        assert price["components"] == [
            {
                "type": "ENERGY",
                "unit": "kWh",
                "price_incl_vat": 0.605,
                "price_excl_vat": 0.5,
                "vat": 21,
                "step_size": 1,
                "conditions": None,
                "dynamic": False,
            },
            {
                "type": "PARKING_TIME",
                "unit": "h",
                "price_incl_vat": 2.42,
                "price_excl_vat": 2.0,
                "vat": 21,
                "step_size": 300,
                "conditions": None,
                "dynamic": False,
            },
        ]
        assert price["min_price"] is None and price["price_signal"] is None
        german = open_site(node, **{"Accept-Language": "fr;q=0.5, de-DE;q=0.9, *;q=0.1"})["evses"][0]["price"]
        assert german["language"] == "de"
        assert german["summary"] == "0.363–0.847 EUR/kWh + 2.42 EUR/h Parken. Parken ab 2 Std. teurer"

        # A price signal in force replaces the energy price now (VAT kept).
        window = {
            "start_at": (now - timedelta(minutes=30)).isoformat(),
            "end_at": (now + timedelta(minutes=30)).isoformat(),
            "energy_price": 0.12,
            "currency": "EUR",
        }
        with node.api() as api:
            r = api.put("/sites/OPEN/price-signals", json={"windows": [window]})
            assert r.status_code == 200, r.text
        price = open_site(node)["evses"][0]["price"]
        energy = price["components"][0]
        assert (energy["price_excl_vat"], energy["price_incl_vat"], energy["dynamic"]) == (0.12, 0.1452, True)
        assert price["price_signal"]["energy_price"] == 0.12

        # The charger's own tariff comes before its site's.
        with node.api() as api:
            flat = {
                "id": "FLAT",
                "currency": "EUR",
                "elements": [{"price_components": [{"type": "FLAT", "price": 1}]}],
            }
            assert api.post("/tariffs", json=flat).status_code == 201
            assert api.put("/chargers/CP-OPEN/tariff", json={"tariff_id": "FLAT"}).status_code == 200
        price = open_site(node)["evses"][1]["price"]
        assert price["summary"] == "1.00 EUR start"
        assert [(c["type"], c["unit"], c["price_incl_vat"]) for c in price["components"]] == [
            ("FLAT", "session", 1)
        ]

        # A site opted in later is listed with the EVSEs its chargers reported before (without OCPI the book
        # holds only opted-in sites: it loads them then); opted out again, it is gone.
        with node.api() as api:
            assert api.patch("/sites/SHUT", json={"public_recommendations": True}).status_code == 200
        listed = poll(
            lambda: public(node).json()["items"],
            lambda items: (
                [(i["site_id"], statuses(i)) for i in items]
                == [("OPEN", ["AVAILABLE", "AVAILABLE"]), ("SHUT", ["AVAILABLE", "AVAILABLE"])]
            ),
        )
        assert [i["site_id"] for i in listed] == ["OPEN", "SHUT"] and statuses(listed[1]) == ["AVAILABLE"] * 2
        with node.api() as api:
            assert api.patch("/sites/SHUT", json={"public_recommendations": False}).status_code == 200
        listed = poll(lambda: public(node).json()["items"], lambda items: len(items) == 1)
        assert [i["site_id"] for i in listed] == ["OPEN"] and public(node, "/SHUT").status_code == 404

        # Live status: Charging is CHARGING, Faulted is OUTOFORDER.
        cp.status(1, "Charging")
        cp.status(2, "Faulted", "GroundFailure")
        site = poll(lambda: open_site(node), lambda s: statuses(s) == ["CHARGING", "OUTOFORDER"])
        assert statuses(site) == ["CHARGING", "OUTOFORDER"] and site["evses_available"] == 0
        assert public(node, available="true").json()["items"] == []
        assert [i["site_id"] for i in public(node, available="false").json()["items"]] == ["OPEN"]

    # Both chargers gone: nobody knows the status any more.
    site = poll(lambda: open_site(node), lambda s: statuses(s) == ["UNKNOWN", "UNKNOWN"])
    assert statuses(site) == ["UNKNOWN", "UNKNOWN"]


def test_pages_bad_values_and_the_rate_limit(node) -> None:
    with node.api() as api:
        for n in range(3):
            site_id = f"S{n}"
            body = {
                "id": site_id,
                "phase_limits_a": [63, 63, 63],
                "location": {"lat": 52.0 + n / 100, "lon": 5.0, "city": "Utrecht", "country": "NLD"},
                "public_recommendations": True,
            }
            assert api.post("/sites", json=body).status_code == 201
            assert api.post("/chargers", json={"id": f"CP-{n}"}).status_code == 201
            r = api.put(f"/chargers/CP-{n}/placement", json={"node_id": site_id, "phases": "L1", "max_a": 16})
            assert r.status_code == 200, r.text
    with contextlib.ExitStack() as stack:
        for n in range(3):
            stack.enter_context(connected(node, f"CP-{n}")).status(1, "Available")
        poll(lambda: public(node).json()["items"], lambda items: len(items) == 3)

        first = public(node, limit=2).json()
        assert [i["site_id"] for i in first["items"]] == ["S0", "S1"] and first["next_cursor"]
        rest = public(node, limit=2, cursor=first["next_cursor"]).json()
        assert [i["site_id"] for i in rest["items"]] == ["S2"] and rest["next_cursor"] is None
        # Near a point: nearest first, the cursor carrying the distance.
        page = public(node, lat=52.03, lon=5.0, radius_km=50, limit=1).json()
        assert [i["site_id"] for i in page["items"]] == ["S2"]
        page = public(node, lat=52.03, lon=5.0, radius_km=50, limit=2, cursor=page["next_cursor"]).json()
        assert [i["site_id"] for i in page["items"]] == ["S1", "S0"] and page["next_cursor"] is None

    for params, field in (
        ({"lat": 91, "lon": 5}, "lat"),
        ({"lat": 52}, "lon"),
        ({"lon": 5}, "lat"),
        ({"lat": 52, "lon": 5, "radius_km": 0}, "radius_km"),
        ({"radius_km": 5}, "radius_km"),
        ({"available": "yes"}, "available"),
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"cursor": "!!"}, "cursor"),
        ({"cursor": first["next_cursor"], "lat": 52, "lon": 5}, "cursor"),
    ):
        r = public(node, **params)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid_field", field), params

    # The bucket holds a burst of 20 and earns one a second: many quick requests cannot all pass.
    codes = []
    for _ in range(200):
        r = httpx.get(f"http://127.0.0.1:{node.public_port}/public/v1/locations", timeout=10)
        codes.append(r.status_code)
        if r.status_code == 429:
            break
    assert codes[0] == 200 and codes[-1] == 429
    assert r.json()["code"] == "too_many_requests" and int(r.headers["retry-after"]) >= 1
    drained_at = time.monotonic()
    # The one-site route shares the bucket: from the drained bucket it gets only what was earned since (one a
    # second; a loaded box may take a second or more between two requests), never a burst of its own.
    passed = 0
    for _ in range(40):
        r = httpx.get(f"http://127.0.0.1:{node.public_port}/public/v1/locations/S0", timeout=10)
        if r.status_code == 429:
            break
        passed += 1
    assert r.status_code == 429
    assert passed <= 1 + (time.monotonic() - drained_at) and passed < 20


def test_with_ocpi_on_the_public_status_is_the_published_one(node_factory) -> None:
    node = node_factory("--ocpi-country-code", "NL", "--ocpi-party-id", "AMP")
    setup_sites(node)

    def published() -> list[tuple[str | None, str]]:
        body = node.get("/chargers/CP-OPEN/connectors").json()
        return [(e["evse_id"], e["status"]) for e in body["published"]]

    def shown() -> list[tuple[str | None, str]]:
        return [(e["evse_id"], e["status"]) for e in open_site(node)["evses"]]

    with connected(node, "CP-OPEN") as cp:
        cp.status(1, "Available")
        cp.status(2, "Available")
        poll(published, lambda p: p == [(None, "AVAILABLE"), (None, "AVAILABLE")])
        cp.status(1, "SuspendedEV")
        cp.status(2, "Unavailable")
        poll(published, lambda p: p == [(None, "CHARGING"), (None, "INOPERATIVE")])
        assert shown() == published() == [(None, "CHARGING"), (None, "INOPERATIVE")]
        cp.status(2, "Reserved")
        poll(published, lambda p: p[1] == (None, "RESERVED"))
        assert poll(shown, lambda s: s == published()) == published()
