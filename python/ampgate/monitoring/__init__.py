"""Variable monitoring (2.0.1): the monitors each charger has (from NotifyMonitoringReport and the answers to
SetVariableMonitoring / ClearVariableMonitoring) and the events it reports with NotifyEvent, each linked to the
monitor that raised it."""

from ampgate.monitoring.handlers import MonitoringHandlers
from ampgate.monitoring.repository import DeviceEventRow, MonitoringRepository, MonitorRow
from ampgate.monitoring.service import Monitoring

__all__ = ["DeviceEventRow", "MonitorRow", "Monitoring", "MonitoringHandlers", "MonitoringRepository"]
