"""Transactions in both protocol versions, recorded as one kind of transaction record.

1.6: StartTransaction (the node issues the integer transactionId), MeterValues, StopTransaction (with its
transactionData). 2.0.1: TransactionEvent Started / Updated / Ended (the charger names the transaction;
`seqNo` de-duplicates [E04]). Every one of these is committed to the database before its reply goes out
(the handler returns a coroutine that awaits the write), so a charger that got its reply never needs to send
it again; one that resends anyway (after a reconnect, per 1.6 §3.7 / 2.0.1 [E04]) creates no duplicate (see
`ampgate.store.transactions`). What was recorded is then published: `transaction.started`, `.updated` (with the
new samples) and `.ended`; a resent message publishes nothing. Signed meter values are recorded with the
samples, and a 2.0.1 `chargingState` as the transaction's charging timeline (what pricing tells TIME from
PARKING_TIME by).

The cost display (`costs`, `ampgate.ocpp.cost_hooks`) is handed each reply once the message is recorded: 2.0.1
replies may carry the tariff text and, on Ended, the final cost (`totalCost`); 1.6 chargers in California
Pricing mode are sent the price after StartTransaction and the final cost after StopTransaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import TransactionEnded, TransactionStarted, TransactionUpdated
from ampgate.ocpp import v16, v201
from ampgate.ocpp.authorization import Authorization, Authorizer, id_tag_info, id_token_info
from ampgate.ocpp.cost_hooks import CostReplies, NoCostReplies
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.meter import samples16, samples201, signed16, signed201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.store.transactions import (
    Sample,
    SignedValue,
    StopOutcome,
    TransactionChange,
    TransactionRow,
    TransactionStart,
    TransactionStop,
)

log = logging.getLogger(__name__)

# 1.6 StopTransaction.reason: "Local" when absent (1.6 §7.41: the normal stop at the charge point).
DEFAULT_STOP_REASON_16 = "Local"
# 2.0.1 TransactionType.stoppedReason: "Local" when absent (2.0.1 part 2 §2.51, ReasonEnumType).
DEFAULT_STOP_REASON_201 = "Local"
# 2.0.1 ChargingStateEnumType: only Charging means energy is requested and flowing (OCPI's TIME); the EV
# connected but idle, suspended by either side, or the session idle count as not charging (PARKING_TIME).
CHARGING_STATES: dict[str, bool] = {
    "Charging": True,
    "EVConnected": False,
    "SuspendedEV": False,
    "SuspendedEVSE": False,
    "Idle": False,
}


class TransactionRecords(Protocol):
    """What the handlers need of the transaction repository (`ampgate.store.TransactionRepository`)."""

    async def start(self, start: TransactionStart, /) -> tuple[int, bool]: ...
    async def add_samples(
        self, charger_id: str, tx_id: int, samples: list[Sample], signed: list[SignedValue], /
    ) -> bool: ...
    async def stop(self, stop: TransactionStop, /) -> StopOutcome: ...
    async def apply_event(self, change: TransactionChange, /) -> tuple[int, bool]: ...
    def get(self, tx_id: int, /) -> TransactionRow | None: ...


class TransactionHandlers:
    """The transaction messages of both versions; `costs` is handed each recorded reply (see the module
    docstring)."""

    def __init__(
        self,
        records: TransactionRecords,
        authorizer: Authorizer,
        bus: Publisher,
        clock: Clock,
        *,
        costs: CostReplies | None = None,
    ) -> None:
        self._records = records
        self._auth = authorizer
        self._bus = bus
        self._clock = clock
        self._costs: CostReplies = costs if costs is not None else NoCostReplies()

    def register(self, router: OcppRouter) -> None:
        """Handle StartTransaction, MeterValues, StopTransaction (1.6), TransactionEvent, MeterValues (2.0.1)."""
        router.register(OCPP16, "StartTransaction", self._start16)
        router.register(OCPP16, "MeterValues", self._meter_values16)
        router.register(OCPP16, "StopTransaction", self._stop16)
        router.register(OCPP201, "TransactionEvent", self._event201)
        router.register(OCPP201, "MeterValues", self._meter_values201)

    # -- what was recorded, published ---------------------------------------------------------------------------

    def _started(self, tx_id: int) -> None:
        row = self._records.get(tx_id)
        if row is None:
            return
        self._bus.publish(
            TransactionStarted(
                at=self._clock.now(),
                charger_id=row.charger_id,
                transaction_id=row.id,
                remote_id=row.charger_transaction_id,
                evse_id=row.evse_id,
                connector_id=row.connector_id,
                id_token=row.id_token,
                started_at=row.started_at,
                meter_start_wh=row.meter_start_wh,
            )
        )

    def _updated(self, charger_id: str, tx_id: int, remote_id: str, samples: list[Sample]) -> None:
        self._bus.publish(
            TransactionUpdated(
                at=self._clock.now(),
                charger_id=charger_id,
                transaction_id=tx_id,
                remote_id=remote_id,
                samples=samples,
            )
        )

    def _ended(self, tx_id: int) -> None:
        row = self._records.get(tx_id)
        if row is None or row.stopped_at is None:
            return
        self._bus.publish(
            TransactionEnded(
                at=self._clock.now(),
                charger_id=row.charger_id,
                transaction_id=row.id,
                remote_id=row.charger_transaction_id,
                stopped_at=row.stopped_at,
                stop_reason=row.stop_reason,
                meter_stop_wh=row.meter_stop_wh,
                energy_wh=row.energy_wh,
            )
        )

    # -- 1.6 ----------------------------------------------------------------------------------------------------

    def _start16(self, session: Session, req: v16.StartTransactionRequest) -> Any:
        # Decided when the message arrives, from the token table and the reservations as they are now (or, for
        # a token only an eMSP knows, once it answered).
        decided = self._auth.start16(session.charger_id, req.connector_id, req.id_tag, req.reservation_id)

        async def reply() -> dict[str, Any]:
            info = id_tag_info(decided if isinstance(decided, Authorization) else await decided)
            tx_id, created = await self._records.start(
                TransactionStart(
                    charger_id=session.charger_id,
                    connector_id=req.connector_id,
                    id_token=req.id_tag,
                    started_at=req.timestamp,
                    meter_start_wh=float(req.meter_start),
                )
            )
            if created:
                self._started(tx_id)
                self._costs.started16(session.charger_id, tx_id, req.id_tag, info)
            else:
                log.info("%s resent StartTransaction: transaction %d", session.charger_id, tx_id)
            return {"transactionId": tx_id, "idTagInfo": info}

        return reply()

    def _meter_values16(self, session: Session, req: v16.MeterValuesRequest) -> Any:
        tx_id = req.transaction_id
        if tx_id is None:
            return {}  # connector-level readings outside a transaction are not kept (yet)
        samples = samples16(req.meter_value)
        signed = signed16(req.meter_value)

        async def reply() -> dict[str, Any]:
            if await self._records.add_samples(session.charger_id, tx_id, samples, signed):
                self._updated(session.charger_id, tx_id, str(tx_id), samples)
            else:
                log.info("%s sent MeterValues for unknown transaction %d", session.charger_id, tx_id)
            return {}

        return reply()

    def _stop16(self, session: Session, req: v16.StopTransactionRequest) -> Any:
        info = None if req.id_tag is None else id_tag_info(self._auth.check16(req.id_tag, session.charger_id))
        samples = samples16(req.transaction_data or ())
        signed = signed16(req.transaction_data or ())

        async def reply() -> dict[str, Any]:
            outcome = await self._records.stop(
                TransactionStop(
                    charger_id=session.charger_id,
                    tx_id=req.transaction_id,
                    stopped_at=req.timestamp,
                    meter_stop_wh=float(req.meter_stop),
                    reason=req.reason or DEFAULT_STOP_REASON_16,
                    samples=samples,
                    signed=signed,
                )
            )
            if outcome == "stopped":
                self._ended(req.transaction_id)
                self._costs.stopped16(session.charger_id, req.transaction_id)
            else:
                # Accepted either way: the charger must be able to empty its queue (1.6 §3.7).
                log.info("%s StopTransaction %d: %s", session.charger_id, req.transaction_id, outcome)
            return {} if info is None else {"idTagInfo": info}

        return reply()

    # -- 2.0.1 --------------------------------------------------------------------------------------------------

    def _event201(self, session: Session, req: v201.TransactionEventRequest) -> Any:
        decided: Authorization | Awaitable[Authorization | None] | None
        if req.event_type == "Ended":
            decided = None if req.id_token is None else self._auth.check201(req.id_token, session.charger_id)
        else:
            # A start (or the idToken of a transaction started before authorization) at an EVSE: the
            # reservations count, and the one it uses or names ends.
            decided = self._auth.start201(
                session.charger_id,
                None if req.evse is None else req.evse.id,
                None if req.evse is None else req.evse.connector_id,
                req.id_token,
                req.reservation_id,
            )
        tinfo = req.transaction_info
        stop_reason: str | None = tinfo.stopped_reason
        if req.event_type == "Ended" and stop_reason is None:
            stop_reason = DEFAULT_STOP_REASON_201
        samples = samples201(req.meter_value)
        signed = signed201(req.meter_value)
        charging = None if tinfo.charging_state is None else CHARGING_STATES.get(tinfo.charging_state)

        async def reply() -> dict[str, Any]:
            auth = decided if decided is None or isinstance(decided, Authorization) else await decided
            info = None if auth is None else id_token_info(auth)
            tx_id, duplicate = await self._records.apply_event(
                TransactionChange(
                    charger_id=session.charger_id,
                    remote_id=tinfo.transaction_id,
                    seq_no=req.seq_no,
                    event_type=req.event_type,
                    at=req.timestamp,
                    evse_id=None if req.evse is None else req.evse.id,
                    connector_id=None if req.evse is None else req.evse.connector_id,
                    id_token=None if req.id_token is None else req.id_token.id_token,
                    stop_reason=stop_reason,
                    samples=samples,
                    charging=charging,
                    signed=signed,
                )
            )
            if duplicate:
                log.info(
                    "%s resent TransactionEvent %s seqNo %d (transaction %d): ignored",
                    session.charger_id,
                    tinfo.transaction_id,
                    req.seq_no,
                    tx_id,
                )
            elif req.event_type == "Started":
                self._started(tx_id)
            elif req.event_type == "Ended":
                self._ended(tx_id)
            else:
                self._updated(session.charger_id, tx_id, tinfo.transaction_id, samples)
            # idTokenInfo answers an idToken in the request (the response carries it iff the request had one).
            out: dict[str, Any] = {} if info is None else {"idTokenInfo": info}
            if req.event_type == "Ended":
                # Also when resent: the charger that missed the reply still wants the total.
                await self._costs.ended201(session.charger_id, tx_id, out)
            else:
                token = None if req.id_token is None else req.id_token.id_token
                self._costs.event201(session.charger_id, tx_id, token, out)
            return out

        return reply()

    def _meter_values201(self, session: Session, req: v201.MeterValuesRequest) -> dict[str, Any]:
        # 2.0.1 MeterValues are never transaction-related (those go in TransactionEvent): not kept (yet).
        return {}
