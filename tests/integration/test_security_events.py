"""Security events against a real node, from charge points written with the `ocpp` package (1.6 with the
security extension, and 2.0.1; schema validation on both sides): answered only once stored, listed through the
API per charger and fleet-wide, critical ones in the alert list, a resend stored once."""

from __future__ import annotations

import asyncio

import pytest
from ocpp.exceptions import TypeConstraintViolationError
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from tests.integration.ocpp_clients import ocpp_charge_point


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0.1"])
def test_security_events_are_stored_and_listed(node, protocol: str) -> None:
    cp_class, call = (ChargePoint16, call16) if protocol == "ocpp1.6" else (ChargePoint201, call201)
    charger = f"SEC-{protocol}"

    async def scenario() -> None:
        async with ocpp_charge_point(cp_class, node.ocpp_url, charger, protocol, boot=True) as cp:
            tamper = call.SecurityEventNotification(
                type="TamperDetectionActivated", timestamp="2026-11-30T07:00:00Z", tech_info="door"
            )
            assert await cp.call(tamper, suppress=False) is not None
            assert await cp.call(tamper, suppress=False) is not None  # resent: stored once
            await cp.call(
                call.SecurityEventNotification(
                    type="InvalidMessages", timestamp="2026-11-30T07:01:00Z", tech_info=None
                ),
                suppress=False,
            )
            # Past the schema's 50 characters: the node's answer (the client's own check is skipped).
            with pytest.raises(TypeConstraintViolationError):
                await cp.call(
                    call.SecurityEventNotification(
                        type="X" * 51, timestamp="2026-11-30T07:02:00Z", tech_info=None
                    ),
                    suppress=False,
                    skip_schema_validation=True,
                )

    asyncio.run(scenario())
    # Each was committed before its reply: listed at once.
    mine = node.get(f"/chargers/{charger}/security-events").json()["items"]
    assert [(e["type"], e["critical"], e["tech_info"]) for e in mine] == [
        ("InvalidMessages", False, None),
        ("TamperDetectionActivated", True, "door"),
    ]
    assert mine[1]["occurred_at"] == "2026-11-30T07:00:00Z"
    alerts = node.get(f"/security-events?critical=true&charger_id={charger}").json()["items"]
    assert [e["type"] for e in alerts] == ["TamperDetectionActivated"]
