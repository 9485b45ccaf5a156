"""What chargers say about their variables, as device-model rows (pure)."""

from __future__ import annotations

from typing import Any

import msgspec

from ampgate.devicemodel.repository import Variable
from ampgate.ocpp import v201

ACTUAL = "Actual"
# 1.6 configuration keys are variables of no component.
NO_COMPONENT = ""
# A SetVariables / ChangeConfiguration result after which the value is the one sent.
_SET = frozenset({"Accepted", "RebootRequired"})


def _where(component: dict[str, Any], variable: dict[str, Any]) -> dict[str, Any]:
    evse = component.get("evse") or {}
    return {
        "component": component["name"],
        "component_instance": component.get("instance") or "",
        "evse_id": evse.get("id", -1),
        "connector_id": evse.get("connectorId", -1),
        "variable": variable["name"],
        "variable_instance": variable.get("instance") or "",
    }


def from_report(report_data: list[v201.ReportDataType]) -> list[Variable]:
    """NotifyReport's reportData: one row per attribute, its characteristics (camelCase, as sent) beside."""
    out = []
    for item in report_data:
        where = _where(msgspec.to_builtins(item.component), msgspec.to_builtins(item.variable))
        characteristics = (
            None
            if item.variable_characteristics is None
            else msgspec.to_builtins(item.variable_characteristics)
        )
        for attr in item.variable_attribute:
            out.append(
                Variable(
                    **where,
                    attribute_type=attr.type or ACTUAL,
                    value=attr.value,
                    mutability=attr.mutability or "ReadWrite",
                    persistent=bool(attr.persistent),
                    constant=bool(attr.constant),
                    characteristics=characteristics,
                )
            )
    return out


def from_get_variables(reply: dict[str, Any]) -> list[Variable]:
    """The values a GetVariables reply gave (Accepted results only)."""
    return [
        Variable(
            **_where(r["component"], r["variable"]),
            attribute_type=r.get("attributeType") or ACTUAL,
            value=r.get("attributeValue"),
        )
        for r in reply.get("getVariableResult") or []
        if r.get("attributeStatus") == "Accepted"
    ]


def from_set_variables(request: dict[str, Any], reply: dict[str, Any]) -> list[Variable]:
    """The values a SetVariables request set, where the charger accepted them (matched by component, variable
    and attribute type)."""
    sent = {}
    for d in request.get("setVariableData") or []:
        where = _where(d["component"], d["variable"])
        sent[(*where.values(), d.get("attributeType") or ACTUAL)] = (where, d["attributeValue"])
    out = []
    for r in reply.get("setVariableResult") or []:
        if r.get("attributeStatus") not in _SET:
            continue
        where = _where(r["component"], r["variable"])
        hit = sent.get((*where.values(), r.get("attributeType") or ACTUAL))
        if hit is not None:
            out.append(Variable(**hit[0], attribute_type=r.get("attributeType") or ACTUAL, value=hit[1]))
    return out


def from_configuration(reply: dict[str, Any]) -> list[Variable]:
    """1.6 GetConfiguration's configurationKey list."""
    return [
        Variable(
            component=NO_COMPONENT,
            variable=k["key"],
            value=k.get("value"),
            mutability="ReadOnly" if k.get("readonly") else "ReadWrite",
        )
        for k in reply.get("configurationKey") or []
    ]


def from_change_configuration(request: dict[str, Any], reply: dict[str, Any]) -> list[Variable]:
    """1.6 ChangeConfiguration, where the charger accepted it."""
    if reply.get("status") not in _SET:
        return []
    return [Variable(component=NO_COMPONENT, variable=request["key"], value=request["value"])]
