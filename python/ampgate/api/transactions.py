"""/api/v1/transactions and /api/v1/chargers/{id}/transactions: charging sessions of both protocol versions,
newest first, with their energy and last meter values; one transaction with its last meter values and cost;
its samples, paged in time order."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from ampgate.api.auth import requires_viewer
from ampgate.api.costs import cost_read
from ampgate.api.deps import ChargerReads, SessionCostReads, TransactionReads
from ampgate.api.paging import (
    CHARGER_ERRORS,
    COMMON_ERRORS,
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    decode_cursor,
    encode_cursor,
    instant,
    int_cursor,
    require_charger,
)
from ampgate.api.schemas import (
    ErrorBody,
    SamplePage,
    SampleRead,
    TransactionDetail,
    TransactionPage,
    TransactionRead,
)
from ampgate.clock import parse_iso
from ampgate.errors import NotFoundError
from ampgate.store import Sample, SampleKey, TransactionRow

_ERRORS = COMMON_ERRORS
_TX_ERRORS = {**_ERRORS, 404: ResponseSpec(ErrorBody, description="No such transaction (`field`: id)")}

Since = Annotated[str | None, Parameter(description="Only transactions started at or after (ISO 8601)")]
Until = Annotated[str | None, Parameter(description="Only transactions started before (ISO 8601)")]


def _sample_key(text: str) -> SampleKey:
    # A sample cursor holds the last sample's key (at, measurand, phase) as a JSON array of three strings.
    key = msgspec.json.decode(text, type=tuple[str, str, str])
    if parse_iso(key[0]) is None:
        raise ValueError("not an instant")
    return key


def _samples_path(tx_id: int) -> str:
    return f"/api/v1/transactions/{tx_id}/samples"


def sample_read(s: Sample) -> SampleRead:
    at = parse_iso(s.at)
    assert at is not None
    return SampleRead(
        at=at, measurand=s.measurand, phase=s.phase or None, value=s.value, unit=s.unit, context=s.context
    )


def _fields(row: TransactionRow, last: list[Sample]) -> dict[str, object]:
    return {
        "id": row.id,
        "charger_id": row.charger_id,
        "protocol": row.protocol,
        "transaction_id": row.charger_transaction_id,
        "evse_id": row.evse_id,
        "connector_id": row.connector_id,
        "id_token": row.id_token,
        "started_at": row.started_at,
        "stopped_at": row.stopped_at,
        "meter_start_wh": row.meter_start_wh,
        "meter_stop_wh": row.meter_stop_wh,
        "energy_wh": row.energy_wh,
        "stop_reason": row.stop_reason,
        "last_meter_values": [sample_read(s) for s in last],
    }


def _page(
    transactions: TransactionReads,
    limit: int,
    cursor: str | None,
    charger_id: str | None,
    since: str | None,
    until: str | None,
) -> TransactionPage:
    rows = transactions.page(
        limit + 1,
        before=int_cursor(cursor),
        charger_id=charger_id,
        since=instant(since, "since"),
        until=instant(until, "until"),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = transactions.last_samples([r.id for r in rows])
    return TransactionPage(
        items=[TransactionRead(**_fields(r, last[r.id])) for r in rows],  # type: ignore[arg-type]
        next_cursor=str(rows[-1].id) if more else None,
    )


class TransactionController(Controller):
    path = "/api/v1/transactions"
    tags = ("transactions",)

    @get(
        "/",
        operation_id="list_transactions",
        guards=[requires_viewer],
        responses=_ERRORS,
        summary="List transactions (role: viewer)",
    )
    async def list_transactions(
        self,
        transactions: NamedDependency[TransactionReads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        since: Since = None,
        until: Until = None,
    ) -> TransactionPage:
        """Transactions of every charger, newest first. Raises 422 naming limit, cursor, since or until."""
        return _page(transactions, limit, cursor, None, since, until)

    @get(
        "/{id:int}",
        operation_id="get_transaction",
        guards=[requires_viewer],
        responses=_TX_ERRORS,
        summary="One transaction with its last meter values and cost (role: viewer)",
        description="Role: viewer. `last_meter_values`: the samples at the transaction's latest sample time; "
        "every sample is paged at `samples_url`. `cost`: what the session costs so far while it runs (its parking "
        "after the transaction included until the EVSE is free again), then its CDR's; amounts incl VAT "
        "(`excl_vat` without), by the tariff fixed at its start; null when no tariff applies.",
    )
    async def get_transaction(
        self,
        transactions: NamedDependency[TransactionReads],
        costs: NamedDependency[SessionCostReads],
        id: Annotated[int, Parameter(description="The node's transaction id")],
    ) -> TransactionDetail:
        """The transaction `id` (the node's id) with its last meter values, where its samples are, and its cost.
        Reads a bounded number of rows however long the transaction. Raises 404 not_found (field id)."""
        row = transactions.get(id)
        if row is None:
            raise NotFoundError(f"transaction {id} does not exist", field="id")
        last = transactions.last_samples([id])[id]
        return TransactionDetail(
            **_fields(row, last),  # type: ignore[arg-type]
            samples_url=_samples_path(id),
            cost=cost_read(costs.running_cost(id)),
        )

    @get(
        "/{id:int}/samples",
        operation_id="list_transaction_samples",
        guards=[requires_viewer],
        responses=_TX_ERRORS,
        summary="A transaction's meter samples in time order (role: viewer)",
        description="Role: viewer. Ordered by `at`, then measurand and phase; `measurand` keeps one measurand "
        "(e.g. Energy.Active.Import.Register). Cursors stay valid while samples arrive: a page never repeats or "
        "skips a sample that was there when the previous page was read.",
    )
    async def list_transaction_samples(
        self,
        transactions: NamedDependency[TransactionReads],
        id: Annotated[int, Parameter(description="The node's transaction id")],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        measurand: Annotated[str | None, Parameter(description="Only samples of this measurand")] = None,
    ) -> SamplePage:
        """One page of the transaction's samples in time order. Raises 404 not_found (field id), 422 naming
        limit or cursor."""
        after = None if cursor is None else _sample_key(decode_cursor(cursor, _sample_key))
        if transactions.get(id) is None:
            raise NotFoundError(f"transaction {id} does not exist", field="id")
        rows = transactions.sample_page(id, limit + 1, after=after, measurand=measurand)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows else None
        return SamplePage(
            items=[sample_read(s) for s in rows],
            next_cursor=(
                encode_cursor(msgspec.json.encode([last.at, last.measurand, last.phase]).decode())
                if more and last is not None
                else None
            ),
        )


class ChargerTransactionController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/transactions"
    tags = ("transactions",)

    @get(
        "/",
        operation_id="list_charger_transactions",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="A charger's transactions (role: viewer)",
    )
    async def list_charger_transactions(
        self,
        transactions: NamedDependency[TransactionReads],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        since: Since = None,
        until: Until = None,
    ) -> TransactionPage:
        """The charger's transactions, newest first. Raises 404 (field id) for an unknown charger, 422 naming
        limit, cursor, since or until."""
        require_charger(chargers, charger_id)
        return _page(transactions, limit, cursor, charger_id, since, until)
