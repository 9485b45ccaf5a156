"""GET /public/v1/recommendations in-process, over a ranking stand-in and a real token bucket on a clock the test
drives: every bad query value is 422 naming its field, the limit answers 429 with Retry-After in the public
surface's error style (also for malformed requests), each address has its own bucket, and the answer shows what
a site published and nothing of the node's insides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import trio

from ampgate.availability import Recommendation, TokenBuckets
from ampgate.availability.model import Counts
from ampgate.availability.public import PublicRecommendations
from ampgate.clock import Clock
from ampgate.load import Location, SiteRow
from ampgate.public import TransferLimiter, create_public_app
from ampgate.public.recommendations import recommendations

BASE = "http://public.test"
PATH = "/public/v1/recommendations"
T = datetime(2026, 11, 30, tzinfo=UTC)


class Health:
    def report(self) -> dict[str, Any]:
        return {"status": "ok", "version": "9.9"}


class StoppedClock(Clock):
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t


class Ranking:
    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []

    def recommend(
        self, lat: float, lon: float, radius_km: float, min_kw: float | None, limit: int, /
    ) -> list[Recommendation]:
        self.asked.append((lat, lon, radius_km, min_kw, limit))
        site = SiteRow(
            id="AMS-01",
            name="Depot",
            phase_limits_a=(80.0, 80.0, 80.0),
            limit_kw=None,
            voltage_v=230.0,
            time_zone="Europe/Amsterdam",
            location=Location(lat=52.37, lon=4.89, city="Amsterdam", country="NLD"),
            ean="871687120000000004",
            public_recommendations=True,
            created_at=T,
            updated_at=T,
        )
        return [
            Recommendation(
                site=site,
                distance_km=1.23456,
                counts=Counts(free=2, in_use=1, offline=1),
                headroom_kw=None,
                occupancy_recent=0.123456,
                score=0.345678,
            )
        ]


Scenario = Callable[[httpx.AsyncClient, Ranking, StoppedClock], Awaitable[None]]


def run(scenario: Scenario, burst: int = 20) -> None:
    async def main() -> None:
        ranking, clock = Ranking(), StoppedClock()
        service = PublicRecommendations(ranking, clock, TokenBuckets(1.0, burst))
        app = create_public_app(Health(), TransferLimiter(), [recommendations], {"recommender": service})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            with trio.fail_after(30):
                await scenario(client, ranking, clock)

    trio.run(main)


def test_the_answer_shows_what_a_site_published_and_nothing_else() -> None:
    async def scenario(client: httpx.AsyncClient, ranking: Ranking, clock: StoppedClock) -> None:
        r = await client.get(PATH, params={"lat": "52.37", "lon": "4.9", "radius_km": "15", "min_kw": "11"})
        assert r.status_code == 200, r.text
        assert ranking.asked == [(52.37, 4.9, 15.0, 11.0, 20)]
        assert r.json() == {
            "items": [
                {
                    "site_id": "AMS-01",
                    "name": "Depot",
                    "location": {
                        "lat": 52.37,
                        "lon": 4.89,
                        "address": None,
                        "city": "Amsterdam",
                        "postal_code": None,
                        "country": "NLD",
                    },
                    "distance_km": 1.235,
                    "connectors_free": 2,
                    "connectors_total": 4,
                    "headroom_kw": None,
                    "occupancy_recent": 0.1235,
                    "score": 0.3457,
                }
            ],
            "next_cursor": None,
        }
        assert "871687120000000004" not in r.text  # the EAN is the operator's business
        r = await client.get(PATH, params={"lat": "0", "lon": "0", "limit": "5"})
        assert r.status_code == 200 and ranking.asked[-1] == (0.0, 0.0, 10.0, None, 5)

    run(scenario)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": "4.9"}, "lat"),
        ({"lat": "52.37"}, "lon"),
        ({"lat": "north", "lon": "4.9"}, "lat"),
        ({"lat": "90.5", "lon": "4.9"}, "lat"),
        ({"lat": "nan", "lon": "4.9"}, "lat"),
        ({"lat": "52", "lon": "-181"}, "lon"),
        ({"lat": "52", "lon": "inf"}, "lon"),
        ({"lat": "52", "lon": "4", "radius_km": "0"}, "radius_km"),
        ({"lat": "52", "lon": "4", "radius_km": "-3"}, "radius_km"),
        ({"lat": "52", "lon": "4", "radius_km": "301"}, "radius_km"),
        ({"lat": "52", "lon": "4", "radius_km": "ten"}, "radius_km"),
        ({"lat": "52", "lon": "4", "min_kw": "-1"}, "min_kw"),
        ({"lat": "52", "lon": "4", "limit": "0"}, "limit"),
        ({"lat": "52", "lon": "4", "limit": "2.5"}, "limit"),
        ({"lat": "52", "lon": "4", "limit": "101"}, "limit"),
    ],
)
def test_a_bad_query_value_is_422_naming_it(params: dict[str, str], field: str) -> None:
    async def scenario(client: httpx.AsyncClient, ranking: Ranking, clock: StoppedClock) -> None:
        r = await client.get(PATH, params=params)
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == ("invalid_field", field)
        assert ranking.asked == []

    run(scenario)


def test_past_the_burst_429_with_retry_after_until_a_token_is_earned() -> None:
    async def scenario(client: httpx.AsyncClient, ranking: Ranking, clock: StoppedClock) -> None:
        good = {"lat": "52", "lon": "4"}
        assert (await client.get(PATH, params=good)).status_code == 200
        # A malformed request takes a token too: floods of garbage are limited like any other.
        assert (await client.get(PATH, params={"lat": "x"})).status_code == 422
        r = await client.get(PATH, params=good)
        assert r.status_code == 429
        assert r.json()["code"] == "too_many_requests" and r.headers["retry-after"] == "1"
        assert len(ranking.asked) == 1
        clock.t += 1.0
        assert (await client.get(PATH, params=good)).status_code == 200

    run(scenario, burst=2)


def test_each_address_has_its_own_bucket() -> None:
    async def scenario(client: httpx.AsyncClient, ranking: Ranking, clock: StoppedClock) -> None:
        good = {"lat": "52", "lon": "4"}
        assert (await client.get(PATH, params=good)).status_code == 200
        assert (await client.get(PATH, params=good)).status_code == 429
        other = httpx.ASGITransport(app=client._transport.app, client=("192.0.2.7", 1234))  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=other, base_url=BASE) as elsewhere:
            assert (await elsewhere.get(PATH, params=good)).status_code == 200

    run(scenario, burst=1)
