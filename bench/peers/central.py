"""The peers' central system: the `ocpp` package's ChargePoint classes, written as a Python user would.

Both peer servers (ocpp_websockets.py and ocpp_picows.py) route each connection to `CentralSystem16` or
`CentralSystem201` by the negotiated subprotocol and `await cp.start()`, the library's documented pattern. The
handlers answer what the simulator sends, both versions: BootNotification (Accepted, interval 300), Heartbeat,
StatusNotification, Authorize (any id tag Accepted), StartTransaction (an id from one counter, Accepted),
MeterValues, StopTransaction, TransactionEvent (2.0.1; idTokenInfo Accepted when the event carries an idToken),
FirmwareStatusNotification.

Nothing is tuned: the library validates every message and every reply against its JSON schemas (its default),
handlers are plain `async def`s, logging is the standard module at WARNING (a production setting; the library's
examples log every frame at INFO). What a peer does NOT get from us is a store: every handler answers from
memory and keeps nothing (no boot, status, transaction or meter value is recorded anywhere), so the comparison
flatters the peers: ampgate commits every transaction start and every meter value of a transaction to SQLite
before it replies, and records boots and statuses through its SQLite writer without waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import resource
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16 import datatypes as types16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as types201
from ocpp.v201.enums import Action as Action201
from ocpp.v201.enums import AuthorizationStatusEnumType, RegistrationStatusEnumType

SUBPROTOCOLS = ["ocpp1.6", "ocpp2.0.1"]
# The interval ampgate gives too, so the simulated chargers heartbeat at the same pace against every system.
HEARTBEAT_INTERVAL = 300
# Pending connections the kernel queues for the listener. asyncio's default (100) would make a boot storm measure
# the kernel's 1 s SYN-retry timer rather than the server; any operator expecting thousands of chargers sets this,
# and ampgate's node listens with a large backlog too. It is configuration, not an optimisation of the code.
LISTEN_BACKLOG = 4096

log = logging.getLogger("peer")


def now() -> str:
    return datetime.now(UTC).isoformat()


# One counter per server process: StartTransaction ids are unique over all its chargers (and remembered nowhere).
_transaction_ids = itertools.count(1)


class CentralSystem16(ChargePoint16):
    """One OCPP 1.6 charger's session, handled the way the library's own examples do."""

    @on(Action16.boot_notification)
    async def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any):
        return result16.BootNotification(
            current_time=now(), interval=HEARTBEAT_INTERVAL, status=RegistrationStatus.accepted
        )

    @on(Action16.heartbeat)
    async def on_heartbeat(self):
        return result16.Heartbeat(current_time=now())

    @on(Action16.status_notification)
    async def on_status_notification(self, connector_id: int, error_code: str, status: str, **kwargs: Any):
        return result16.StatusNotification()

    @on(Action16.authorize)
    async def on_authorize(self, id_tag: str):
        return result16.Authorize(id_tag_info=types16.IdTagInfo(status=AuthorizationStatus.accepted))

    @on(Action16.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any
    ):
        return result16.StartTransaction(
            transaction_id=next(_transaction_ids),
            id_tag_info=types16.IdTagInfo(status=AuthorizationStatus.accepted),
        )

    @on(Action16.meter_values)
    async def on_meter_values(self, connector_id: int, meter_value: list, **kwargs: Any):
        return result16.MeterValues()

    @on(Action16.stop_transaction)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, id_tag: str | None = None, **kwargs: Any
    ):
        if id_tag is None:
            return result16.StopTransaction()
        return result16.StopTransaction(id_tag_info=types16.IdTagInfo(status=AuthorizationStatus.accepted))

    @on(Action16.firmware_status_notification)
    async def on_firmware_status_notification(self, status: str):
        return result16.FirmwareStatusNotification()


class CentralSystem201(ChargePoint201):
    """One OCPP 2.0.1 charging station's session."""

    @on(Action201.boot_notification)
    async def on_boot_notification(self, charging_station: dict, reason: str, **kwargs: Any):
        return result201.BootNotification(
            current_time=now(), interval=HEARTBEAT_INTERVAL, status=RegistrationStatusEnumType.accepted
        )

    @on(Action201.heartbeat)
    async def on_heartbeat(self, **kwargs: Any):
        return result201.Heartbeat(current_time=now())

    @on(Action201.status_notification)
    async def on_status_notification(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **kwargs: Any
    ):
        return result201.StatusNotification()

    @on(Action201.authorize)
    async def on_authorize(self, id_token: dict, **kwargs: Any):
        return result201.Authorize(
            id_token_info=types201.IdTokenInfoType(status=AuthorizationStatusEnumType.accepted)
        )

    @on(Action201.transaction_event)
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict,
        id_token: dict | None = None,
        **kwargs: Any,
    ):
        # The spec requires idTokenInfo in the response when the request carried an idToken.
        if id_token is None:
            return result201.TransactionEvent()
        return result201.TransactionEvent(
            id_token_info=types201.IdTokenInfoType(status=AuthorizationStatusEnumType.accepted)
        )

    @on(Action201.meter_values)
    async def on_meter_values(self, evse_id: int, meter_value: list, **kwargs: Any):
        return result201.MeterValues()

    @on(Action201.firmware_status_notification)
    async def on_firmware_status_notification(self, status: str, **kwargs: Any):
        return result201.FirmwareStatusNotification()


CLASSES: dict[str, type[ChargePoint16] | type[ChargePoint201]] = {
    "ocpp1.6": CentralSystem16,
    "ocpp2.0.1": CentralSystem201,
}


def charge_point(path: str, subprotocol: str, connection: Any) -> ChargePoint16 | ChargePoint201:
    """The ChargePoint for a connection to ws://host:port/ocpp/<id> that negotiated `subprotocol`."""
    return CLASSES[subprotocol](path.rstrip("/").rsplit("/", 1)[-1], connection)


# -- the process around the server -----------------------------------------------------------------------


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000, help="0 = a free port (written to the ready file)")
    p.add_argument("--ready-file", default=None, help="written (JSON: pid, host, port) once listening")
    p.add_argument("--backlog", type=int, default=LISTEN_BACKLOG)
    return p.parse_args()


def raise_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each charger is one open file); returns the new limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def write_ready(path: str | None, host: str, port: int, server: str, nofile: int) -> None:
    """Write the ready file atomically, so a reader never sees half of it."""
    if not path:
        return
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    info = {"pid": os.getpid(), "host": host, "port": port, "server": server, "nofile": nofile}
    tmp.write_text(json.dumps(info))
    tmp.replace(target)


def setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")


async def serve_until_cancelled() -> None:
    """Run until SIGTERM / SIGINT (the default handlers end the process; this just parks the main task)."""
    await asyncio.Event().wait()
