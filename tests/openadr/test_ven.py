"""The VEN against the stand-in VTN over loopback: tokens, registration, capacity events into limits (window,
kW, randomized start), changes and removals, rejections that are reported and never fatal, safe mode on an
outage and after it, DEMAND / USAGE reports, prices, and the callback path."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import httpx
import trio

from ampgate.errors import ValidationError
from ampgate.events import OpenAdrEventRejected, OpenAdrSafeMode
from ampgate.openadr import SOURCE, TokenSource
from ampgate.public.openadr import NOTIFICATIONS_PATH

from .conftest import EAN_A, EAN_B, GAC_PROGRAM, T0, Harness, capacity_event, site


async def started(h: Harness) -> str:
    """The GAC program at the VTN and a first poll; returns the program id."""
    program = await h.vtn.add_program(GAC_PROGRAM)
    assert await h.ven.poll_once()
    return str(program["id"])


def applies(h: Harness) -> dict[str, tuple[str, float, Any, Any]]:
    return {
        ref: (a.node, a.limit_kw, a.start, a.end) for kind, ref, a in h.limits.take() if kind == "apply" and a
    }


def cancels(calls: list[Any]) -> set[str]:
    return {ref for kind, ref, _ in calls if kind == "cancel"}


# -- OAuth2 ------------------------------------------------------------------------------------------------------


def test_a_token_is_cached_renewed_before_it_expires_and_after_a_401(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        await started(h)
        assert await h.ven.poll_once()
        assert h.vtn.tokens_issued == 1
        # The VTN drops its tokens before they expire: the 401 makes the VEN fetch another and go on.
        h.vtn.revoke_tokens()
        assert await h.ven.poll_once()
        assert h.vtn.tokens_issued == 2
        assert h.ven.status()["tokens_fetched"] == 2

        # Expiry, on a clock the test moves: renewed TOKEN_MARGIN_S before the lifetime the VTN gave.
        now = [0.0]
        async with httpx.AsyncClient() as http:
            tokens = TokenSource(
                http, h.vtn.url, "ven-client", "ven-secret", token_url=None, monotonic=lambda: now[0]
            )
            h.vtn.token_lifetime_s = 100
            first = await tokens.token()
            now[0] = 69.0
            assert await tokens.token() == first
            now[0] = 71.0
            assert await tokens.token() != first
            assert tokens.fetched == 2

    ven(scenario)


def test_bad_credentials_leave_the_vtn_counted_as_not_answering(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        h.vtn.credentials = {"ven-client": "another secret"}
        assert not await h.ven.poll_once()
        status = h.ven.status()
        assert status["vtn_reachable"] is False
        assert "401" in status["last_error"]

    ven(scenario)


# -- registration --------------------------------------------------------------------------------------------------


def test_the_ven_and_one_resource_per_site_are_registered_with_ean_targets_new_sites_on_the_next_poll(
    ven: Any,
) -> None:
    async def scenario(h: Harness) -> None:
        await started(h)
        (ven_obj,) = h.vtn.vens.values()
        assert ven_obj["venName"] == "NL-AMP"
        assert h.ven.ven_id == ven_obj["id"]
        by_name = {r["resourceName"]: r for r in h.vtn.resources.values()}
        assert set(by_name) == {"A", "B"}
        assert {"type": "POWER_SERVICE_LOCATION", "values": [EAN_A]} in by_name["A"]["targets"]
        assert {"type": "POWER_SERVICE_LOCATION", "values": [EAN_B]} in by_name["B"]["targets"]
        assert all(r["venID"] == ven_obj["id"] for r in by_name.values())

        h.sites.rows.append(site("C"))  # no EAN: targeted by name only
        assert await h.ven.poll_once()
        c = next(r for r in h.vtn.resources.values() if r["resourceName"] == "C")
        assert c["targets"] == [{"type": "RESOURCE_NAME", "values": ["C"]}]
        assert len(h.vtn.resources) == 3
        assert await h.ven.poll_once()
        assert len(h.vtn.resources) == 3 and len(h.vtn.vens) == 1

    ven(scenario)


def test_a_restarted_ven_finds_itself_and_its_resources_and_replaces_its_subscriptions(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        await started(h)
        (old_sub,) = h.vtn.subscriptions.values()
        # A second VEN object with the same name stands for the node after a restart.
        from ampgate.openadr import OpenAdrVen

        again = OpenAdrVen(
            h.ven._vtn,
            h.limits,
            h.readings,
            h.sites,
            h.prices,
            h.published.append,
            h.clock,
            h.ven.settings,
            callback_url=lambda: h.public_url + NOTIFICATIONS_PATH,
        )
        assert await again.poll_once()
        assert len(h.vtn.vens) == 1 and len(h.vtn.resources) == 2
        (new_sub,) = h.vtn.subscriptions.values()
        assert new_sub["id"] != old_sub["id"]
        assert new_sub["objectOperations"][0]["bearerToken"] == again.callback_token != h.ven.callback_token

    ven(scenario)


# -- capacity events ---------------------------------------------------------------------------------------------


def test_a_capacity_event_becomes_one_limit_per_interval_on_the_site_its_ean_names(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        h.limits.take()
        start = T0 + timedelta(hours=1)
        event = await h.vtn.put_event(capacity_event(program_id, kw=[40.0, 25.5], start=start))
        got = applies(h)
        e = event["id"]
        assert got == {
            f"{e}/0": ("A", 40.0, start, start + timedelta(minutes=15)),
            f"{e}/1": ("A", 25.5, start + timedelta(minutes=15), start + timedelta(minutes=30)),
        }
        assert h.ven.status()["events_mapped"] == 1 and h.ven.status()["limits_applied"] == 2
        # A poll with nothing new applies nothing again.
        assert await h.ven.poll_once()
        assert h.limits.take() == []

    ven(scenario)


def test_randomize_start_delays_each_interval_by_a_pinned_random_amount_up_to_it(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        h.limits.take()
        start = T0 + timedelta(hours=1)
        event = await h.vtn.put_event(
            capacity_event(program_id, kw=[30.0, 20.0], start=start, randomize="PT10M")
        )
        got = applies(h)
        for interval in (0, 1):
            ref = f"{event['id']}/{interval}"
            nominal = start + interval * timedelta(minutes=15)
            # The VEN's delay: uniform in [0, randomizeStart], seeded with the VEN's seed and the ref.
            delay = timedelta(seconds=random.Random(f"pinned/{ref}").uniform(0, 600))
            _node, _kw, s, end = got[ref]
            assert s == nominal + delay
            assert nominal < s <= nominal + timedelta(minutes=10)
            assert end == nominal + timedelta(minutes=15)
        # Polling again keeps the same delays (no limit is moved).
        assert await h.ven.poll_once()
        assert h.limits.take() == []

    ven(scenario)


def test_an_event_targeting_several_sites_gets_a_limit_per_site(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        h.limits.take()
        targets = [{"type": "POWER_SERVICE_LOCATION", "values": [EAN_A, EAN_B]}]
        event = await h.vtn.put_event(capacity_event(program_id, kw=[50.0], start=T0, targets=targets))
        got = applies(h)
        assert {ref: v[:2] for ref, v in got.items()} == {
            f"{event['id']}/0/A": ("A", 50.0),
            f"{event['id']}/0/B": ("B", 50.0),
        }

    ven(scenario)


def test_a_changed_event_replaces_its_limits_and_a_removed_one_cancels_them(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        start = T0 + timedelta(hours=1)
        event = await h.vtn.put_event(capacity_event(program_id, kw=[40.0, 30.0], start=start))
        h.limits.take()
        e = event["id"]
        # Changed at the VTN: the first interval's kW, and the second interval dropped.
        await h.vtn.put_event({**capacity_event(program_id, kw=[20.0], start=start), "id": e})
        calls = h.limits.take()
        assert {ref: a.limit_kw for kind, ref, a in calls if kind == "apply" and a} == {f"{e}/0": 20.0}
        assert cancels(calls) == {f"{e}/1"}
        assert set(h.limits.external_refs(SOURCE)) == {f"{e}/0"}
        # Removed at the VTN, seen by a poll (the callback path is tested below).
        h.vtn.events.pop(e)
        assert await h.ven.poll_once()
        assert cancels(h.limits.take()) == {f"{e}/0"}
        assert h.limits.external_refs(SOURCE) == set()

    ven(scenario, callbacks=True)


def test_limits_left_from_before_a_restart_are_reconciled(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        event = await h.vtn.put_event(capacity_event(program_id, kw=[40.0], start=T0))
        # A limit the node applied before it restarted, for an event the VTN has withdrawn since.
        await h.limits.apply_external(
            source=SOURCE, ref="gone/0", node="A", limit_kw=1.0, start=T0, end=T0 + timedelta(hours=1)
        )
        h.limits.take()
        assert await h.ven.poll_once()
        assert cancels(h.limits.take()) == {"gone/0"}
        assert h.limits.external_refs(SOURCE) == {f"{event['id']}/0"}

    ven(scenario)


# -- what cannot be mapped -------------------------------------------------------------------------------------


def test_events_that_cannot_be_mapped_are_rejected_published_and_counted_once_and_the_rest_applies(
    ven: Any,
) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        h.limits.take()
        bad = {
            "unknown_target": capacity_event(
                program_id,
                kw=[10.0],
                start=T0,
                targets=[{"type": "POWER_SERVICE_LOCATION", "values": ["999"]}],
            ),
            "unknown_payload_type": capacity_event(program_id, kw=[10.0], start=T0, payload_type="GHG"),
            "bad_units": capacity_event(program_id, kw=[10.0], start=T0, units="W"),
            "malformed": {**capacity_event(program_id, kw=[10.0], start=T0), "intervals": "not a list"},
            "bad_value": capacity_event(program_id, kw=[-5.0], start=T0),
            "bad_interval": capacity_event(program_id, kw=[10.0], start=T0, duration="P1M"),
        }
        ids = {}
        for reason, event in bad.items():
            h.vtn.events[f"bad-{reason}".replace("_", "-")] = {
                **event,
                "id": f"bad-{reason}".replace("_", "-"),
            }
            ids[reason] = f"bad-{reason}".replace("_", "-")
        good = await h.vtn.put_event(capacity_event(program_id, kw=[40.0], start=T0))
        h.limits.take()
        assert await h.ven.poll_once()
        assert await h.ven.poll_once()

        rejected = {e.event_id: e for e in h.bus(OpenAdrEventRejected)}
        assert {reason: rejected[ids[reason]].reason for reason in bad} == {reason: reason for reason in bad}
        assert rejected[ids["unknown_target"]].field == "$.targets"
        assert rejected[ids["unknown_payload_type"]].field == "$.intervals[0].payloads[0].type"
        assert rejected[ids["bad_units"]].field == "$.payloadDescriptors[].units"
        assert rejected[ids["malformed"]].field == "$.intervals"
        assert rejected[ids["bad_value"]].field == "$.intervals[0].payloads[0].values"
        assert rejected[ids["bad_interval"]].field == "$.intervalPeriod.duration"
        assert len(h.bus(OpenAdrEventRejected)) == len(bad)  # two polls, each version published once
        assert h.ven.status()["rejects"] == len(bad)
        # None of them is applied; the good one is.
        assert set(h.limits.external_refs(SOURCE)) == {f"{good['id']}/0"}
        assert h.ven.status()["vtn_reachable"] is True

    ven(scenario)


# -- safe mode -------------------------------------------------------------------------------------------------


def test_safe_mode_applies_the_programs_safe_mode_event_and_the_fallback_while_the_vtn_is_away(
    ven: Any,
) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        # The program's safe-mode event names site A (11 kW); B gets the configured fallback.
        await h.vtn.put_event(
            capacity_event(program_id, kw=[11.0], start=T0, duration="P9999Y", name="SAFE_MODE")
        )
        assert await h.ven.poll_once()
        assert h.limits.external_refs(SOURCE) == set()  # never applied as an event
        h.limits.take()

        await h.vtn.stop()
        h.clock.advance(seconds=200)
        assert not await h.ven.poll_once()
        await h.ven.tick()
        assert h.limits.take() == [] and not h.ven.status()["safe_mode_active"]

        h.clock.advance(seconds=101)  # 301 s since the last answer: past the 300 s timeout
        assert not await h.ven.poll_once()
        await h.ven.tick()
        got = applies(h)
        assert {ref: v[:2] for ref, v in got.items()} == {
            "safe-mode/A": ("A", 11.0),
            "safe-mode/B": ("B", 7.0),
        }
        assert all(v[2] == h.clock.at for v in got.values())
        (entered,) = h.bus(OpenAdrSafeMode)
        assert entered.active and entered.sites == ("A", "B")
        assert h.ven.status()["safe_mode_active"] is True
        # Still away: nothing applied again until the hold needs extending.
        h.clock.advance(seconds=60)
        await h.ven.tick()
        assert h.limits.take() == []
        h.clock.advance(minutes=40)
        await h.ven.tick()
        assert set(applies(h)) == {"safe-mode/A", "safe-mode/B"}

        await h.vtn.start(h.nursery)
        assert await h.ven.poll_once()
        assert cancels(h.limits.take()) == {"safe-mode/A", "safe-mode/B"}
        assert h.limits.external_refs(SOURCE) == set()
        assert [e.active for e in h.bus(OpenAdrSafeMode)] == [True, False]
        assert h.ven.status()["safe_mode_active"] is False

    ven(scenario, fallback_kw=7.0)


def test_without_a_safe_mode_event_or_fallback_safe_mode_applies_nothing(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        await started(h)
        h.limits.take()
        await h.vtn.stop()
        h.clock.advance(seconds=301)
        assert not await h.ven.poll_once()
        await h.ven.tick()
        assert h.limits.take() == []
        assert h.ven.status()["safe_mode_active"] is True

    ven(scenario)


# -- reports --------------------------------------------------------------------------------------------------


def test_demand_and_usage_reach_the_vtn_after_each_interval(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        event = await h.vtn.put_event(capacity_event(program_id, kw=[40.0, 30.0], start=T0))
        h.readings.kw["A"] = 38.5
        h.readings.kwh["A"] = 9.25
        await h.ven.tick()
        assert h.vtn.reports == []  # no interval has ended
        h.clock.advance(minutes=15)
        await h.ven.tick()
        (report,) = h.vtn.reports
        assert (report["programID"], report["eventID"], report["clientName"]) == (
            program_id,
            event["id"],
            "NL-AMP",
        )
        (resource,) = report["resources"]
        assert resource["resourceName"] == "A"
        (interval,) = resource["intervals"]
        assert interval["id"] == 0
        assert {p["type"]: p["values"] for p in interval["payloads"]} == {"DEMAND": [38.5], "USAGE": [9.25]}
        units = {d["payloadType"]: d["units"] for d in report["payloadDescriptors"]}
        assert units == {"DEMAND": "KW", "USAGE": "KWH"}
        assert h.readings.asked == [("A", T0, T0 + timedelta(minutes=15))]
        # The second interval is reported once it ends, and nothing twice.
        await h.ven.tick()
        assert len(h.vtn.reports) == 1
        h.readings.kw["A"] = 29.0
        h.clock.advance(minutes=15)
        await h.ven.tick()
        await h.ven.tick()
        assert [r["resources"][0]["intervals"][0]["id"] for r in h.vtn.reports] == [0, 1]
        assert h.vtn.reports[1]["resources"][0]["intervals"][0]["payloads"][0] == {
            "type": "DEMAND",
            "values": [29.0],
        }
        assert h.ven.status()["reports_sent"] == 2

    ven(scenario)


def test_an_interval_over_before_the_ven_saw_its_event_is_not_reported(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        h.readings.kw["A"] = 12.0
        event = await h.vtn.put_event(
            capacity_event(program_id, kw=[40.0, 30.0], start=T0 - timedelta(minutes=20))
        )
        # Interval 0 ended 5 minutes ago: nothing applied, nothing to report; interval 1 runs until T0 + 10 min.
        assert h.limits.external_refs(SOURCE) == {f"{event['id']}/1"}
        h.clock.advance(minutes=10)
        await h.ven.tick()
        assert [r["resources"][0]["intervals"][0]["id"] for r in h.vtn.reports] == [1]

    ven(scenario)


def test_a_report_the_vtn_cannot_take_now_is_sent_once_it_answers(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        await h.vtn.put_event(capacity_event(program_id, kw=[40.0], start=T0))
        h.readings.kw["A"] = 12.0
        await h.vtn.stop()
        h.clock.advance(minutes=15)
        await h.ven.tick()
        assert h.vtn.reports == []
        await h.vtn.start(h.nursery)
        await h.ven.tick()
        assert len(h.vtn.reports) == 1

    ven(scenario)


# -- prices ---------------------------------------------------------------------------------------------------------


def test_price_payloads_are_stored_per_site_and_forgotten_with_their_event(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        event = capacity_event(program_id, kw=[0.21, 0.35], start=T0, payload_type="PRICE", units="KWH")
        event["payloadDescriptors"][0]["currency"] = "EUR"
        stored = await h.vtn.put_event(event)
        assert h.limits.external_refs(SOURCE) == set()
        rows = h.prices.prices("A", T0, T0 + timedelta(hours=1))
        assert [(r.start, r.end, r.price, r.currency, r.units) for r in rows] == [
            (T0, T0 + timedelta(minutes=15), 0.21, "EUR", "KWH"),
            (T0 + timedelta(minutes=15), T0 + timedelta(minutes=30), 0.35, "EUR", "KWH"),
        ]
        assert h.prices.prices("B", T0, T0 + timedelta(hours=1)) == []
        assert [
            r.price for r in h.prices.prices("A", T0 + timedelta(minutes=20), T0 + timedelta(hours=1))
        ] == [0.35]
        await h.vtn.delete_event(stored["id"])
        assert h.prices.prices("A", T0, T0 + timedelta(hours=1)) == []

    ven(scenario)


# -- callbacks ------------------------------------------------------------------------------------------------------


def test_callbacks_apply_and_cancel_events_without_a_poll(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        (sub,) = h.vtn.subscriptions.values()
        assert sub["objectOperations"][0]["callbackUrl"] == h.public_url + NOTIFICATIONS_PATH
        h.limits.take()
        polls = sum(1 for method, path in h.vtn.requests if path == "/events")
        event = await h.vtn.put_event(capacity_event(program_id, kw=[33.0], start=T0))
        assert h.vtn.callbacks == [("POST", 200)]
        assert applies(h) == {f"{event['id']}/0": ("A", 33.0, T0, T0 + timedelta(minutes=15))}
        await h.vtn.delete_event(event["id"])
        assert h.vtn.callbacks[-1] == ("DELETE", 200)
        assert cancels(h.limits.take()) == {f"{event['id']}/0"}
        assert sum(1 for method, path in h.vtn.requests if path == "/events") == polls

    ven(scenario)


def test_a_callback_without_our_token_is_401_and_a_body_that_is_no_notification_422_and_counted(
    ven: Any,
) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        url = h.public_url + NOTIFICATIONS_PATH
        body = {
            "objectType": "EVENT",
            "operation": "POST",
            "object": capacity_event(program_id, kw=[1.0], start=T0),
        }
        async with httpx.AsyncClient() as http:
            r = await http.post(url, json=body)
            assert r.status_code == 401
            r = await http.post(url, json=body, headers={"Authorization": "Bearer not-ours"})
            assert r.status_code == 401
            assert h.limits.external_refs(SOURCE) == set()
            ours = {"Authorization": f"Bearer {h.ven.callback_token}"}
            r = await http.post(url, content=b"{not json", headers=ours)
            assert r.status_code == 422 and r.json()["code"] == "malformed_notification"
            # An event in a good notification that cannot be mapped: read (200), rejected, not applied.
            bad = {
                **body,
                "object": {
                    **body["object"],
                    "id": "cb-1",
                    "targets": [{"type": "RESOURCE_NAME", "values": ["Z"]}],
                },
            }
            r = await http.post(url, json=bad, headers=ours)
            assert r.status_code == 200 and r.json() == {
                "applied": False,
                "reason": "unknown_target",
                "field": "$.targets",
            }
        assert [e.reason for e in h.bus(OpenAdrEventRejected)] == ["malformed", "unknown_target"]
        assert h.ven.status()["rejects"] == 2
        assert h.limits.external_refs(SOURCE) == set()

    ven(scenario)


def test_the_loop_polls_on_its_own_and_comes_back_after_an_outage(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        await h.vtn.stop()
        async with trio.open_nursery() as loop:
            loop.start_soon(h.ven.run)
            while h.ven.last_error is None:  # noqa: ASYNC110 (the loop's progress has no event to wait on)
                await trio.sleep(0.01)
            assert h.ven.status()["vtn_reachable"] is False
            await h.vtn.start(h.nursery)
            h.vtn.events["later"] = {**capacity_event(program_id, kw=[12.0], start=T0), "id": "later"}
            while "later/0" not in h.limits.external_refs(SOURCE):  # noqa: ASYNC110 (as above)
                await trio.sleep(0.01)
            assert h.ven.status()["vtn_reachable"] is True
            loop.cancel_scope.cancel()

    ven(scenario, poll_interval_s=0.05)


def test_a_limit_the_demand_service_refuses_is_reported_and_the_others_still_apply(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        refusing = h.limits.apply_external

        async def apply_external(**kw: Any) -> None:
            if kw["node"] == "B":
                raise ValidationError("node 'B' does not exist", field="node_id")
            await refusing(**kw)

        h.limits.apply_external = apply_external  # type: ignore[method-assign]
        targets = [{"type": "RESOURCE_NAME", "values": ["A", "B"]}]
        event = await h.vtn.put_event(capacity_event(program_id, kw=[50.0], start=T0, targets=targets))
        assert h.limits.external_refs(SOURCE) == {f"{event['id']}/0/A"}
        (rejected,) = h.bus(OpenAdrEventRejected)
        assert (rejected.reason, rejected.field, rejected.event_id) == ("not_applied", "node_id", event["id"])
        assert await h.ven.poll_once()
        assert len(h.bus(OpenAdrEventRejected)) == 1

    ven(scenario)


def test_string_targets_of_a_3_1_vtn_name_sites_by_ean_or_id(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        program_id = await started(h)
        h.limits.take()
        e1 = await h.vtn.put_event(capacity_event(program_id, kw=[20.0], start=T0, targets=[EAN_B]))  # type: ignore[list-item]
        e2 = await h.vtn.put_event(capacity_event(program_id, kw=[21.0], start=T0, targets=["A"]))  # type: ignore[list-item]
        e3 = await h.vtn.put_event(capacity_event(program_id, kw=[22.0], start=T0, targets=["group-9"]))  # type: ignore[list-item]
        assert {ref: v[:2] for ref, v in applies(h).items()} == {
            f"{e1['id']}/0": ("B", 20.0),
            f"{e2['id']}/0": ("A", 21.0),
        }
        assert [(e.event_id, e.reason) for e in h.bus(OpenAdrEventRejected)] == [(e3["id"], "unknown_target")]

    ven(scenario)


def test_a_3_1_vtn_with_string_targets_and_resources_under_resources_is_read(ven: Any) -> None:
    async def scenario(h: Harness) -> None:
        # The VTN's business logic registered the VEN and site A the 3.1 way before the VEN first polled.
        h.vtn.resources_at_top = True
        h.vtn.vens["ven-1"] = {"id": "ven-1", "objectType": "VEN", "venName": "NL-AMP", "targets": [EAN_A]}
        h.vtn.resources["res-1"] = {
            "id": "res-1",
            "objectType": "RESOURCE",
            "venID": "ven-1",
            "resourceName": "A",
            "targets": [EAN_A],
        }
        await started(h)
        assert h.ven.ven_id == "ven-1"
        assert sorted(r["resourceName"] for r in h.vtn.resources.values()) == ["A", "B"]  # only B was new
        assert ("GET", "/resources") in h.vtn.requests

    ven(scenario)
