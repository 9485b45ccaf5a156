"""What chargers report about charging limits and schedules (2.0.1 NotifyChargingLimit, ClearedChargingLimit,
NotifyEVChargingNeeds, NotifyEVChargingSchedule, ReportChargingProfiles; GetCompositeSchedule answers in both
versions), kept per charger (EV needs and schedules per transaction) and published: the load-management issue
reads them. No load management runs yet, so an EV's charging needs are answered Rejected (no schedule will
come from the central system), with reasonCode NotEnabled."""

from ampgate.smartcharging.handlers import SmartChargingHandlers
from ampgate.smartcharging.repository import ChargingLimitRow, ChargingNoteRow, SmartChargingRepository
from ampgate.smartcharging.service import SmartCharging

__all__ = [
    "ChargingLimitRow",
    "ChargingNoteRow",
    "SmartCharging",
    "SmartChargingHandlers",
    "SmartChargingRepository",
]
