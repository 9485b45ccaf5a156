"""Security events: SecurityEventNotification (2.0.1, and the 1.6 security extension) stored per charger,
published on the bus, critical ones flagged per the spec's list; shown at /api/v1/security-events."""

from ampgate.security.catalogue import CRITICAL, is_critical
from ampgate.security.handlers import SecurityEventHandlers
from ampgate.security.repository import SecurityEventReport, SecurityEventRepository, SecurityEventRow

__all__ = [
    "CRITICAL",
    "SecurityEventHandlers",
    "SecurityEventReport",
    "SecurityEventRepository",
    "SecurityEventRow",
    "is_critical",
]
