"""`Monitoring`: the monitor report on request (GetMonitoringReport), what SetVariableMonitoring and
ClearVariableMonitoring answers change, and reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ampgate.clock import Clock
from ampgate.errors import ChargerTimeoutError, ConflictError
from ampgate.monitoring import convert
from ampgate.monitoring.handlers import NOTIFY_MONITORING_REPORT
from ampgate.monitoring.repository import DeviceEventRow, Monitor, MonitorRow
from ampgate.ocpp.commander import Commands
from ampgate.reports import Asker


class Store(Protocol):
    async def set_monitors(self, charger_id: str, monitors: list[Monitor], at: datetime, /) -> None: ...
    async def remove_monitors(self, charger_id: str, ids: list[int], /) -> None: ...
    def monitors(self, charger_id: str, /) -> list[MonitorRow]: ...
    def events(
        self, charger_id: str, limit: int, /, *, monitor_id: int | None = None, before: int | None = None
    ) -> list[DeviceEventRow]: ...


class Monitoring:
    def __init__(
        self, commander: Commands, store: Store, reports: Asker, clock: Clock, *, report_timeout: float
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
        payload: dict[str, Any] = {"monitoringCriteria": criteria} if criteria else {}
        request_id, status, complete = await self._reports.ask(
            self._commander,
            charger_id,
            "GetMonitoringReport",
            payload,
            NOTIFY_MONITORING_REPORT,
            self.report_timeout,
        )
        if status == "EmptyResultSet":
            return 0
        if status != "Accepted":
            raise ConflictError(f"charger answered GetMonitoringReport with {status}", code="report_refused")
        if not complete:
            raise ChargerTimeoutError(f"{charger_id} did not complete its monitoring report in time")
        return request_id

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
