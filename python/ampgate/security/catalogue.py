"""Which security event types are critical: OCPP 2.0.1 part 2, appendix 1 (edition 3), and the same events
under their 1.6 Security Whitepaper names. A charger pushes every critical event it implements to the central
system; it may also send others (and proprietary types, which are not critical here)."""

from __future__ import annotations

# 2.0.1 appendix 1, the events marked critical.
_CRITICAL_201 = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
        "InvalidFirmwareSignature",
        "InvalidFirmwareSigningCertificate",
        "InvalidCsmsCertificate",
        "InvalidChargingStationCertificate",
        "InvalidTLSVersion",
        "InvalidTLSCipherSuite",
        "MaintenanceLoginAccepted",
        "MaintenanceLoginFailed",
    }
)
# The 1.6 Security Whitepaper's names for the certificate events of the same list.
_CRITICAL_16_NAMES = frozenset({"InvalidCentralSystemCertificate", "InvalidChargePointCertificate"})

CRITICAL: frozenset[str] = _CRITICAL_201 | _CRITICAL_16_NAMES


def is_critical(event_type: str) -> bool:
    """Whether the spec lists `event_type` as critical."""
    return event_type in CRITICAL
