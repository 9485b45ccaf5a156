"""Monitors and events as chargers describe them, as rows (pure)."""

from __future__ import annotations

from typing import Any

from ampgate.monitoring.repository import DeviceEvent, Monitor, Where
from ampgate.ocpp import v201


def where_of(component: dict[str, Any], variable: dict[str, Any]) -> Where:
    """From the spec's camelCase component and variable objects."""
    evse = component.get("evse") or {}
    return Where(
        component=component["name"],
        component_instance=component.get("instance") or "",
        evse_id=evse.get("id", -1),
        connector_id=evse.get("connectorId", -1),
        variable=variable["name"],
        variable_instance=variable.get("instance") or "",
    )


def _where_struct(component: v201.ComponentType, variable: v201.VariableType) -> Where:
    evse = component.evse
    return Where(
        component=component.name,
        component_instance=component.instance or "",
        evse_id=-1 if evse is None else evse.id,
        connector_id=-1 if evse is None or evse.connector_id is None else evse.connector_id,
        variable=variable.name,
        variable_instance=variable.instance or "",
    )


def from_report(monitor: list[v201.MonitoringDataType]) -> list[Monitor]:
    return [
        Monitor(
            id=m.id,
            where=_where_struct(item.component, item.variable),
            type=m.type,
            severity=m.severity,
            value=m.value,
            transaction=m.transaction,
        )
        for item in monitor
        for m in item.variable_monitoring
    ]


def from_set(request: dict[str, Any], reply: dict[str, Any]) -> list[Monitor]:
    """Monitors a SetVariableMonitoring set: each Accepted result (it carries the id the charger gave) with the
    value of the request item it answers (matched by component, variable, type and severity)."""
    sent: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for d in request.get("setMonitoringData") or []:
        key = (where_of(d["component"], d["variable"]), d["type"], d["severity"])
        sent.setdefault(key, []).append(d)
    out = []
    for r in reply.get("setMonitoringResult") or []:
        if r.get("status") != "Accepted" or r.get("id") is None:
            continue
        where = where_of(r["component"], r["variable"])
        candidates = sent.get((where, r["type"], r["severity"])) or []
        if not candidates:
            continue
        d = candidates.pop(0)
        out.append(
            Monitor(
                id=r["id"],
                where=where,
                type=r["type"],
                severity=r["severity"],
                value=float(d["value"]),
                transaction=bool(d.get("transaction", False)),
            )
        )
    return out


def cleared(reply: dict[str, Any]) -> list[int]:
    """The ids a ClearVariableMonitoring removed (Accepted, or NotFound: gone either way)."""
    return [
        r["id"]
        for r in reply.get("clearMonitoringResult") or []
        if r.get("status") in ("Accepted", "NotFound")
    ]


def events(event_data: list[v201.EventDataType]) -> list[DeviceEvent]:
    return [
        DeviceEvent(
            event_id=e.event_id,
            at=e.timestamp,
            trigger=e.trigger,
            cause=e.cause,
            actual_value=e.actual_value,
            tech_code=e.tech_code,
            tech_info=e.tech_info,
            cleared=e.cleared,
            transaction_id=e.transaction_id,
            monitor_id=e.variable_monitoring_id,
            notification_type=e.event_notification_type,
            where=_where_struct(e.component, e.variable),
        )
        for e in event_data
    ]
