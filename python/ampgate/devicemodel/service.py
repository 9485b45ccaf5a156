"""`DeviceModel`: sends the commands that read and write a charger's variables, split to the charger's limits
and merged back, learns from every answer, and refreshes the whole model on request."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import msgspec

from ampgate.clock import Clock
from ampgate.devicemodel import convert
from ampgate.devicemodel.limits import SPLIT, merge_replies, split_request
from ampgate.devicemodel.repository import Variable, VariableRow
from ampgate.errors import ChargerTimeoutError, ConflictError
from ampgate.ocpp.commander import TrackedCommands as Commands
from ampgate.ocpp.envelope import OCPP16
from ampgate.reports import Asker

log = logging.getLogger(__name__)

NOTIFY_REPORT = "NotifyReport"
# 2.0.1 DeviceDataCtrlr variables that bound a request, instanced by the action (appendix 3.1.7).
DEVICE_DATA = "DeviceDataCtrlr"
# 2.0.1: the local authorization list's limits (appendix 3.1).
LOCAL_AUTH_LIST = "LocalAuthListCtrlr"
# 1.6: how many keys one GetConfiguration may ask for.
GET_CONFIGURATION_MAX_KEYS = "GetConfigurationMaxKeys"


class VariableStore(Protocol):
    async def record_now(
        self, charger_id: str, variables: list[Variable], at: datetime, /, *, full: bool
    ) -> None: ...
    def value(
        self,
        charger_id: str,
        component: str,
        variable: str,
        instance: str = ...,
        attribute_type: str = ...,
        /,
    ) -> str | None: ...
    def page(
        self,
        charger_id: str,
        limit: int,
        /,
        *,
        component: str | None = ...,
        variable: str | None = ...,
        after: tuple[Any, ...] | None = ...,
    ) -> list[VariableRow]: ...


class ReportWaits(Asker, Protocol):
    def next_request_id(self) -> int: ...


def _positive(text: str | None) -> int | None:
    try:
        n = int(text) if text is not None else None
    except ValueError:
        return None
    return n if n is not None and n > 0 else None


class Capabilities(msgspec.Struct, kw_only=True):
    """What other parts read from a charger's device model (None: not known)."""

    security_profile: int | None
    signed_firmware: bool | None  # 2.0.1: always; 1.6: when it has the security extension's keys
    supported_measurands: list[str] | None  # SampledDataCtrlr.TxUpdatedMeasurands' valuesList (2.0.1)
    items_per_message: dict[str, int]  # DeviceDataCtrlr.ItemsPerMessage by action (1.6: GetConfiguration)
    bytes_per_message: dict[str, int]


# Keys only the 1.6 security extension defines: a charger that has them takes SignedUpdateFirmware.
_SECURITY_KEYS_16 = ("SecurityProfile", "CertificateStoreMaxLength", "CpoName")


class DeviceModel:
    """Implements the Commander's `call` for the API (every other command passes through unchanged)."""

    def __init__(
        self,
        commander: Commands,
        variables: VariableStore,
        reports: ReportWaits,
        clock: Clock,
        *,
        report_timeout: float,
        protocol_of: Callable[[str], str | None] = lambda charger_id: None,
    ) -> None:
        self._protocol_of = protocol_of
        self._commander = commander
        self._variables = variables
        self._reports = reports
        self._clock = clock
        self.report_timeout = report_timeout

    def limits(self, charger_id: str, protocol: str, action: str) -> tuple[int | None, int | None]:
        """(items, bytes) one call of `action` may carry to the charger, as its device model says (None: no
        limit known)."""
        if protocol == OCPP16:
            return _positive(self._variables.value(charger_id, "", GET_CONFIGURATION_MAX_KEYS)), None
        items = self._variables.value(charger_id, DEVICE_DATA, "ItemsPerMessage", action)
        size = self._variables.value(charger_id, DEVICE_DATA, "BytesPerMessage", action)
        return _positive(items), _positive(size)

    def capabilities_of(self, charger_id: str) -> Capabilities | None:
        """The charger's capabilities by the protocol it last spoke (None: it never connected)."""
        protocol = self._protocol_of(charger_id)
        return None if protocol is None else self.capabilities(charger_id, protocol)

    def capabilities(self, charger_id: str, protocol: str) -> Capabilities:
        """What the device model says the charger can do."""
        if protocol == OCPP16:
            keys = {r.variable: r.value for r in self._variables.page(charger_id, 1000, component="")}
            maxkeys = _positive(keys.get(GET_CONFIGURATION_MAX_KEYS))
            return Capabilities(
                security_profile=_positive(keys.get("SecurityProfile")),
                signed_firmware=True if any(k in keys for k in _SECURITY_KEYS_16) else None,
                supported_measurands=None,
                items_per_message={} if maxkeys is None else {"GetConfiguration": maxkeys},
                bytes_per_message={},
            )
        items: dict[str, int] = {}
        size: dict[str, int] = {}
        for r in self._variables.page(charger_id, 1000, component=DEVICE_DATA):
            action = r.variable_instance
            n = _positive(r.value) if r.attribute_type == "Actual" else None
            if n is None or action is None:
                continue
            if r.variable == "ItemsPerMessage":
                items[action] = n
            elif r.variable == "BytesPerMessage":
                size[action] = n
        measurands = None
        for r in self._variables.page(
            charger_id, 10, component="SampledDataCtrlr", variable="TxUpdatedMeasurands"
        ):
            values = (r.characteristics or {}).get("valuesList")
            if isinstance(values, str):
                measurands = [v.strip() for v in values.split(",") if v.strip()]
        profile = self._variables.value(charger_id, "SecurityCtrlr", "SecurityProfile")
        return Capabilities(
            security_profile=None if profile is None else _positive(profile) or 0,
            signed_firmware=True,
            supported_measurands=measurands,
            items_per_message=items,
            bytes_per_message=size,
        )

    def charging_rate_unit(self, charger_id: str) -> str:
        """The unit to give the charger limits in: "W" when its device model says it takes only power (1.6
        ChargingScheduleAllowedChargingRateUnit = Power; 2.0.1 SmartChargingCtrlr.RateUnit = W), else "A"
        (current: what every other charger takes, and what a site's per-phase limits are in)."""
        protocol = self._protocol_of(charger_id)
        if protocol == OCPP16:
            rows = self._variables.page(
                charger_id, 1, component="", variable="ChargingScheduleAllowedChargingRateUnit"
            )
            words = {w.strip() for w in (rows[0].value or "").split(",")} if rows else set()
            return "W" if words == {"Power"} else "A"
        value = self._variables.value(charger_id, "SmartChargingCtrlr", "RateUnit")
        words = {w.strip() for w in (value or "").split(",")}
        return "W" if words == {"W"} else "A"

    def local_list_limits(self, charger_id: str, protocol: str) -> tuple[int | None, int | None, int | None]:
        """(entries per SendLocalList, bytes per SendLocalList, entries the charger's list holds at most), as
        its device model says (None: no limit known). 1.6: SendLocalListMaxLength, LocalAuthListMaxLength;
        2.0.1: LocalAuthListCtrlr.ItemsPerMessage, BytesPerMessage and Entries' maxLimit."""
        if protocol == OCPP16:
            return (
                _positive(self._variables.value(charger_id, "", "SendLocalListMaxLength")),
                None,
                _positive(self._variables.value(charger_id, "", "LocalAuthListMaxLength")),
            )
        return (
            _positive(self._variables.value(charger_id, LOCAL_AUTH_LIST, "ItemsPerMessage")),
            _positive(self._variables.value(charger_id, LOCAL_AUTH_LIST, "BytesPerMessage")),
            _positive(self._variables.value(charger_id, LOCAL_AUTH_LIST, "Entries", "", "MaxSet")),
        )

    def page(
        self,
        charger_id: str,
        limit: int,
        *,
        component: str | None = None,
        variable: str | None = None,
        after: tuple[Any, ...] | None = None,
    ) -> list[VariableRow]:
        """The charger's variables as known, in order (see `DeviceModelRepository.page`)."""
        return self._variables.page(charger_id, limit, component=component, variable=variable, after=after)

    def ready(self, charger_id: str, action: str) -> str:
        return self._commander.ready(charger_id, action)

    def check(self, charger_id: str, action: str, payload: Any) -> str:
        return self._commander.check(charger_id, action, payload)

    async def call(
        self,
        charger_id: str,
        action: str,
        payload: Any,
        *,
        command_id: str | None = None,
        on_enqueued: Callable[[Any], None] | None = None,
    ) -> Any:
        """Send `action` like the Commander does (same errors); GetVariables, SetVariables,
        SetVariableMonitoring and GetConfiguration go as several calls when the charger's limits say so (the
        whole request is checked first: nothing is sent of an invalid one), with the results merged. What the
        answers say of the charger's variables is recorded before this returns. `command_id` and `on_enqueued`
        go to every call the request is sent as (see `Commander.call`)."""
        send = functools.partial(self._commander.call, command_id=command_id, on_enqueued=on_enqueued)
        if action in SPLIT and isinstance(payload, dict):
            protocol = self._commander.check(charger_id, action, payload)
            items, size = self.limits(charger_id, protocol, action)
            parts = split_request(action, payload, items, size)
            if action == "GetReport":
                # One report per part: the first keeps the caller's requestId, the others get new ones.
                parts = [parts[0], *({**p, "requestId": self._reports.next_request_id()} for p in parts[1:])]
            if len(parts) > 1:
                log.info(
                    "%s: %s sent as %d calls (limits %s items, %s bytes)",
                    charger_id,
                    action,
                    len(parts),
                    items,
                    size,
                )
            reply = merge_replies(action, [await send(charger_id, action, p) for p in parts])
        else:
            reply = await send(charger_id, action, payload)
        await self._learn(charger_id, action, payload, reply)
        return reply

    async def _learn(self, charger_id: str, action: str, payload: Any, reply: Any) -> None:
        if not isinstance(reply, dict):
            return
        learned: list[Variable] = []
        if action == "GetVariables":
            learned = convert.from_get_variables(reply)
        elif action == "SetVariables":
            learned = convert.from_set_variables(payload, reply)
        elif action == "GetConfiguration":
            learned = convert.from_configuration(reply)
        elif action == "ChangeConfiguration":
            learned = convert.from_change_configuration(payload, reply)
        if learned:
            await self._variables.record_now(charger_id, learned, self._clock.now(), full=False)

    async def refresh(self, charger_id: str) -> dict[str, Any]:
        """Ask the charger for its whole device model and wait until it has all arrived: 2.0.1 GetBaseReport
        FullInventory (answered by NotifyReport parts), 1.6 GetConfiguration of every key. Returns the request
        id (2.0.1) and the charger's status. Raises the Commander's errors, ConflictError `report_refused` when
        the charger does not accept, ChargerTimeoutError when the report does not complete in time."""
        # The protocol (and whether the charger may be sent a report request now).
        protocol = self._commander.ready(charger_id, "GetBaseReport")
        if protocol == OCPP16:
            await self.call(charger_id, "GetConfiguration", {})
            return {"request_id": None, "status": "Accepted"}
        request_id, status, complete = await self._reports.ask(
            self._commander,
            charger_id,
            "GetBaseReport",
            {"reportBase": "FullInventory"},
            NOTIFY_REPORT,
            self.report_timeout,
        )
        if status != "Accepted":
            raise ConflictError(
                f"charger {charger_id!r} answered GetBaseReport with {status}", code="report_refused"
            )
        if not complete:
            raise ChargerTimeoutError(
                f"{charger_id} did not complete its report {request_id} within {self.report_timeout:g} s"
            )
        return {"request_id": request_id, "status": status}
