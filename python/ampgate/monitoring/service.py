"""`Monitoring`: the monitor report on request (GetMonitoringReport), what SetVariableMonitoring and
ClearVariableMonitoring answers change, and reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import trio

from ampgate.clock import Clock
from ampgate.errors import ChargerTimeoutError, ConflictError
from ampgate.monitoring import convert
from ampgate.monitoring.handlers import NOTIFY_MONITORING_REPORT
from ampgate.monitoring.repository import DeviceEventRow, Monitor, MonitorRow


class Commands(Protocol):
    def ready(self, charger_id: str, action: str, /) -> str: ...
    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


class Reports(Protocol):
    def next_request_id(self) -> int: ...
    async def expect(self, charger_id: str, kind: str, request_id: int, /) -> None: ...
    async def wait(self, charger_id: str, kind: str, request_id: int, /) -> None: ...


class Store(Protocol):
    async def set_monitors(self, charger_id: str, monitors: list[Monitor], at: datetime, /) -> None: ...
    async def remove_monitors(self, charger_id: str, ids: list[int], /) -> None: ...
    def monitors(self, charger_id: str, /) -> list[MonitorRow]: ...
    def events(
        self, charger_id: str, limit: int, /, *, monitor_id: int | None = None, before: int | None = None
    ) -> list[DeviceEventRow]: ...


class Monitoring:
    def __init__(
        self, commander: Commands, store: Store, reports: Reports, clock: Clock, *, report_timeout: float
    ) -> None:
        self._commander = commander
        self._store = store
        self._reports = reports
        self._clock = clock
        self.report_timeout = report_timeout

    def monitors(self, charger_id: str) -> list[MonitorRow]:
        return self._store.monitors(charger_id)

    def events(
        self, charger_id: str, limit: int, *, monitor_id: int | None, before: int | None
    ) -> list[DeviceEventRow]:
        return self._store.events(charger_id, limit, monitor_id=monitor_id, before=before)

    async def refresh(self, charger_id: str, criteria: list[str] | None) -> int:
        """GetMonitoringReport (optionally only monitors of `criteria`: ThresholdMonitoring, DeltaMonitoring,
        PeriodicMonitoring) and wait for the whole report; returns its request id, or 0 when the charger has
        no monitor to report (EmptyResultSet). Raises the Commander's errors, ConflictError `report_refused`,
        ChargerTimeoutError."""
        self._commander.ready(charger_id, "GetMonitoringReport")
        request_id = self._reports.next_request_id()
        payload: dict[str, Any] = {"requestId": request_id}
        if criteria:
            payload["monitoringCriteria"] = criteria
        await self._reports.expect(charger_id, NOTIFY_MONITORING_REPORT, request_id)
        reply = await self._commander.call(charger_id, "GetMonitoringReport", payload)
        status = reply.get("status") if isinstance(reply, dict) else None
        if status == "EmptyResultSet":
            return 0
        if status != "Accepted":
            raise ConflictError(f"charger answered GetMonitoringReport with {status}", code="report_refused")
        with trio.move_on_after(self.report_timeout):
            await self._reports.wait(charger_id, NOTIFY_MONITORING_REPORT, request_id)
            return request_id
        raise ChargerTimeoutError(f"{charger_id} did not complete its monitoring report in time")

    async def learn_set(self, charger_id: str, payload: Any, reply: Any) -> None:
        if isinstance(payload, dict) and isinstance(reply, dict):
            monitors = convert.from_set(payload, reply)
            if monitors:
                await self._store.set_monitors(charger_id, monitors, self._clock.now())

    async def learn_clear(self, charger_id: str, payload: Any, reply: Any) -> None:
        if isinstance(reply, dict):
            ids = convert.cleared(reply)
            if ids:
                await self._store.remove_monitors(charger_id, ids)
