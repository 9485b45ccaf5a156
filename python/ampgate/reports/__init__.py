"""Multi-part reports chargers send in answer to a request of ours (2.0.1 NotifyReport, NotifyMonitoringReport,
NotifyDisplayMessages, NotifyCustomerInformation, ReportChargingProfiles): each part stored as it arrives,
in order or not, the report complete once every part up to the one without `tbc` is in, and whoever waits for it
woken then. Features read the assembled parts; the device model also keeps what NotifyReport says in its own
table."""

from ampgate.reports.parts import complete
from ampgate.reports.repository import Part, ReportRepository, ReportRow, part_of
from ampgate.reports.service import Asker, ReportParts, Reports

__all__ = ["Asker", "Part", "ReportParts", "ReportRepository", "ReportRow", "Reports", "complete", "part_of"]
