"""Who may send which OCPP command: the one table of central-system actions and the minimum API role each needs.

The API's generic command route (`POST /api/v1/chargers/{id}/commands/{name}`) sends any action with any
payload. Most actions are day-to-day operations (reset, availability, start/stop, triggers, charging profiles,
reservations, reads of configuration, variables and logs): operator. A few hand a charger over to whoever sends
them — where it connects and with which credentials, which certificates it trusts, which firmware it runs,
vendor-defined behaviour — and need admin. Some actions are operator for most payloads and admin for a few
(ChangeConfiguration of a security key, SetVariables of a security variable, a trigger that starts a certificate
signing, a log uploaded to a location of the caller's choosing): their rule reads the payload.

One table for both protocol versions: an action name means the same thing wherever it exists in both (Reset,
TriggerMessage, DataTransfer, GetLog, UpdateFirmware, the certificate commands), and where the versions differ
the actions have different names (ChangeConfiguration / SetVariables, RemoteStart / RequestStartTransaction,
GetDiagnostics / GetLog, SignedUpdateFirmware / UpdateFirmware) or different payload values (TriggerMessage's
certificate triggers exist in 2.0.1 only), which the payload rules cover. An action the table does not know
needs admin: a new or misspelt action fails closed.

docs/api.md ("Commands and roles") lists the table for operators; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ampgate.errors import ForbiddenError
from ampgate.store import role_at_least

OPERATOR = "operator"
ADMIN = "admin"

# 1.6 configuration keys whose change hands the charger over: its credentials and security profile (the security
# whitepaper's keys), which certificates it accepts, and the name its certificates are issued to. Compared
# case-insensitively, since chargers treat keys so.
SECURITY_CONFIGURATION_KEYS: frozenset[str] = frozenset(
    k.casefold()
    for k in (
        "AuthorizationKey",
        "SecurityProfile",
        "CpoName",
        "AdditionalRootCertificateCheck",
        "CertificateSignedMaxChainSize",
        "CertificateStoreMaxLength",
    )
)
# Vendor keys are not standard, but the ones that move a charger to another central system, or hold a secret,
# say so in their names (CentralSystemURL, OcppServerUrl, WifiPassword, ...): a key whose name contains one of
# these (case-insensitively) needs admin too. Over-matching costs an operator a 403; under-matching costs a
# charger.
SECURITY_NAME_PARTS: tuple[str, ...] = (
    "password",
    "secret",
    "url",
    "certificate",
    "security",
    "authorizationkey",
)
# 2.0.1 components whose every variable is a security or network setting: SecurityCtrlr (BasicAuthPassword,
# SecurityProfile, Identity, OrganizationName, AdditionalRootCertificateCheck, CertSigning...), ISO15118Ctrlr
# (the names in and the installation of V2G certificates), and NetworkConfiguration as some vendors name it.
SECURITY_COMPONENTS: frozenset[str] = frozenset(
    c.casefold() for c in ("SecurityCtrlr", "ISO15118Ctrlr", "NetworkConfiguration")
)
# Variables of other components that choose where the charger connects (OCPPCommCtrlr picks among the network
# profiles by this priority list) or hold a credential wherever they live.
SECURITY_VARIABLES: frozenset[str] = frozenset(
    v.casefold() for v in ("NetworkConfigurationPriority", "BasicAuthPassword", "SecurityProfile", "Identity")
)
# TriggerMessage (2.0.1) / ExtendedTriggerMessage (1.6 security) values that make the charger generate a key and
# a signing request, the first step of replacing its certificates.
CERTIFICATE_TRIGGERS: frozenset[str] = frozenset(
    {
        "SignChargePointCertificate",
        "SignChargingStationCertificate",
        "SignV2GCertificate",
        "SignCombinedCertificate",
    }
)


@dataclass(frozen=True)
class Refusal:
    """Why `action` with this payload needs `minimum`: what the API's 403 says, and the field it names."""

    minimum: str
    reason: str
    field: str


# A payload rule returns the refusal reason when the payload needs admin, else None (the table's role holds).
PayloadRule = Callable[[Any], Refusal | None]


@dataclass(frozen=True)
class CommandRule:
    """The minimum role for an action, raised to admin for the payloads `escalate` flags."""

    minimum: str
    escalate: PayloadRule | None = None


def _security_name(name: str) -> bool:
    folded = name.casefold()
    return folded in SECURITY_CONFIGURATION_KEYS or any(part in folded for part in SECURITY_NAME_PARTS)


def _change_configuration(payload: Any) -> Refusal | None:
    key = payload.get("key") if isinstance(payload, dict) else None
    if isinstance(key, str) and _security_name(key):
        return Refusal(ADMIN, f"configuration key {key!r} is a security setting", "key")
    return None


def _set_variables(payload: Any) -> Refusal | None:
    entries = payload.get("setVariableData") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        return None
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        component = entry.get("component")
        variable = entry.get("variable")
        cname = component.get("name") if isinstance(component, dict) else None
        vname = variable.get("name") if isinstance(variable, dict) else None
        if isinstance(cname, str) and cname.casefold() in SECURITY_COMPONENTS:
            return Refusal(ADMIN, f"component {cname!r} holds security settings", f"setVariableData[{i}]")
        if isinstance(vname, str) and (vname.casefold() in SECURITY_VARIABLES or _security_name(vname)):
            return Refusal(ADMIN, f"variable {vname!r} is a security setting", f"setVariableData[{i}]")
    return None


def _trigger(payload: Any) -> Refusal | None:
    requested = payload.get("requestedMessage") if isinstance(payload, dict) else None
    if requested in CERTIFICATE_TRIGGERS:
        return Refusal(ADMIN, f"{requested} starts a certificate signing", "requestedMessage")
    return None


def _log_location(payload: Any) -> Refusal | None:
    # Without a location the node fills in its own one-time upload URL; a location of the caller's choosing
    # sends the charger's logs (which may hold id tokens and network details) anywhere.
    if not isinstance(payload, dict):
        return None
    log = payload.get("log")
    if payload.get("location") is not None or (
        isinstance(log, dict) and log.get("remoteLocation") is not None
    ):
        return Refusal(ADMIN, "a log uploaded to a location of your choosing", "location")
    return None


_ADMIN = CommandRule(ADMIN)
_OPERATOR = CommandRule(OPERATOR)

# Action -> the minimum role. Both versions' central-system actions; an action missing here needs admin.
COMMAND_ROLES: Mapping[str, CommandRule] = {
    # Day-to-day operations, both versions.
    "Reset": _OPERATOR,
    "ChangeAvailability": _OPERATOR,
    "UnlockConnector": _OPERATOR,
    "ClearCache": _OPERATOR,
    "TriggerMessage": CommandRule(OPERATOR, _trigger),
    "ReserveNow": _OPERATOR,
    "CancelReservation": _OPERATOR,
    "SetChargingProfile": _OPERATOR,
    "ClearChargingProfile": _OPERATOR,
    "GetCompositeSchedule": _OPERATOR,
    "GetLocalListVersion": _OPERATOR,
    # Operators may already authorize any token through the id-token table (POST /api/v1/id-tokens), so a
    # hand-made local list gives them nothing more.
    "SendLocalList": _OPERATOR,
    "GetLog": CommandRule(OPERATOR, _log_location),
    # 1.6 only.
    "RemoteStartTransaction": _OPERATOR,
    "RemoteStopTransaction": _OPERATOR,
    "GetConfiguration": _OPERATOR,
    "ChangeConfiguration": CommandRule(OPERATOR, _change_configuration),
    "GetDiagnostics": CommandRule(OPERATOR, _log_location),
    "ExtendedTriggerMessage": CommandRule(OPERATOR, _trigger),
    # 2.0.1 only.
    "RequestStartTransaction": _OPERATOR,
    "RequestStopTransaction": _OPERATOR,
    "GetTransactionStatus": _OPERATOR,
    "GetChargingProfiles": _OPERATOR,
    "GetVariables": _OPERATOR,
    "SetVariables": CommandRule(OPERATOR, _set_variables),
    "GetBaseReport": _OPERATOR,
    "GetReport": _OPERATOR,
    "GetMonitoringReport": _OPERATOR,
    # Monitoring decides what the charger reports, not who controls it; the dedicated routes are operator too.
    "SetMonitoringBase": _OPERATOR,
    "SetMonitoringLevel": _OPERATOR,
    "SetVariableMonitoring": _OPERATOR,
    "ClearVariableMonitoring": _OPERATOR,
    "SetDisplayMessage": _OPERATOR,
    "GetDisplayMessages": _OPERATOR,
    "ClearDisplayMessage": _OPERATOR,
    "CostUpdated": _OPERATOR,
    "CustomerInformation": _OPERATOR,
    # Where the charger connects and with what: admin.
    "SetNetworkProfile": _ADMIN,
    # Firmware from a location of the caller's choosing (campaigns and publications, with their own routes and
    # roles, send images the node holds).
    "UpdateFirmware": _ADMIN,
    "SignedUpdateFirmware": _ADMIN,
    "PublishFirmware": _ADMIN,
    "UnpublishFirmware": _ADMIN,
    # Certificates: which ones the charger trusts and presents. Listing them is admin too: it is the first step
    # of replacing them, and none of it is day-to-day.
    "InstallCertificate": _ADMIN,
    "DeleteCertificate": _ADMIN,
    "CertificateSigned": _ADMIN,
    "GetInstalledCertificateIds": _ADMIN,
    # Vendor-defined: anything at all.
    "DataTransfer": _ADMIN,
}


def required_role(action: str, payload: Any) -> Refusal:
    """The minimum role to send `action` with `payload`, with the reason and the field a 403 names. Never
    raises: a payload of the wrong shape falls back to the action's role (its validation answers 422 later)."""
    rule = COMMAND_ROLES.get(action)
    if rule is None:
        return Refusal(ADMIN, f"{action!r} is not on the list of commands operators send", "name")
    if rule.escalate is not None:
        escalated = rule.escalate(payload)
        if escalated is not None:
            return escalated
    return Refusal(rule.minimum, f"{action} is a {rule.minimum} command", "name")


def check_command_role(role: str | None, action: str, payload: Any) -> None:
    """Return if `role` may send `action` with `payload`; raise ForbiddenError (403) naming the action, the
    role it needs and why, with `field` the path parameter `name` or the payload field that needs admin."""
    need = required_role(action, payload)
    if role is not None and role_at_least(role, need.minimum):
        return
    err = ForbiddenError(
        f"{action} needs the {need.minimum} role ({need.reason}); your token is {role or 'no role'}",
        field=need.field,
    )
    err.details = {"action": action, "required_role": need.minimum}  # type: ignore[attr-defined]
    raise err
