"""Idempotency-Key on POSTs (API-CONVENTIONS): a retry with the same key gets the first outcome without running
the request again, also while the first is still running; the same key for another request is refused; keys
belong to the token that used them; outcomes expire."""

from __future__ import annotations

import trio

from ampgate.api.idempotency import IdempotencyStore

from .conftest import Api, Scenario

CHARGERS = "/api/v1/chargers"


def test_a_retry_gets_the_first_outcome_and_runs_nothing(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        headers = {**a.auth("admin"), "Idempotency-Key": "k-1"}
        first = await a.client.post(CHARGERS, json={"id": "CP-1"}, headers=headers)
        again = await a.client.post(CHARGERS, json={"id": "CP-1"}, headers=headers)
        assert first.status_code == 201
        assert (again.status_code, again.json()) == (201, first.json())  # a second register would be 200
        assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
        assert a.node.registered == [("CP-1", None)]
        # Without a key, or with another key, the request runs again.
        assert (
            await a.client.post(CHARGERS, json={"id": "CP-1"}, headers=a.auth("admin"))
        ).status_code == 200
        other = await a.client.post(
            CHARGERS, json={"id": "CP-1"}, headers={**a.auth("admin"), "Idempotency-Key": "k-2"}
        )
        assert other.status_code == 200 and len(a.node.registered) == 3
        # An error is an outcome too.
        bad = {**a.auth("admin"), "Idempotency-Key": "k-3"}
        assert (await a.client.post(CHARGERS, json={"id": ""}, headers=bad)).status_code == 422
        assert (await a.client.post(CHARGERS, json={"id": ""}, headers=bad)).headers[
            "idempotent-replayed"
        ] == "true"

    api(scenario)


def test_the_same_key_for_another_request_or_token(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        headers = {**a.auth("admin"), "Idempotency-Key": "k"}
        assert (await a.client.post(CHARGERS, json={"id": "CP-A"}, headers=headers)).status_code == 201
        reused = await a.client.post(CHARGERS, json={"id": "CP-B"}, headers=headers)
        assert reused.status_code == 422
        assert reused.json() == {
            "code": "idempotency_key_reused",
            "message": "this key was used for another request",
            "field": "Idempotency-Key",
        }
        assert a.node.chargers.get("CP-B") is None
        # Another token's key of the same name is its own.
        operator = {**a.auth("operator"), "Idempotency-Key": "k"}
        assert (await a.client.post(CHARGERS, json={"id": "CP-A"}, headers=operator)).status_code == 403
        too_long = {**a.auth("admin"), "Idempotency-Key": "x" * 256}
        r = await a.client.post(CHARGERS, json={"id": "CP-C"}, headers=too_long)
        assert r.status_code == 422 and r.json()["field"] == "Idempotency-Key"

    api(scenario)


def test_a_retry_while_the_first_runs_waits_for_its_outcome(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        gate = trio.Event()
        register = a.node.register

        async def slow_register(charger_id: str, password: str | None, **kw):  # type: ignore[no-untyped-def]
            await gate.wait()
            return await register(charger_id, password, **kw)

        a.node.register = slow_register  # type: ignore[method-assign]
        headers = {**a.auth("admin"), "Idempotency-Key": "slow"}
        results = []

        async def post() -> None:
            results.append(await a.client.post(CHARGERS, json={"id": "CP-S"}, headers=headers))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(post)
            nursery.start_soon(post)
            await trio.sleep(0.1)
            assert results == []  # both wait: one runs, the other waits for it
            gate.set()
        assert sorted(r.status_code for r in results) == [201, 201]
        assert a.node.registered == [("CP-S", None)]

    api(scenario)


def test_outcomes_expire_and_the_store_is_bounded() -> None:
    now = [0.0]
    store = IdempotencyStore(ttl_s=10, max_keys=2, now=lambda: now[0])
    store.begin((b"t", "a"), b"f")
    now[0] = 5
    store.begin((b"t", "b"), b"f")
    store.begin((b"t", "c"), b"f")  # over the bound: the oldest goes
    assert store.get((b"t", "a")) is None and store.get((b"t", "b")) is not None
    now[0] = 16
    assert store.get((b"t", "b")) is None and store.get((b"t", "c")) is None
