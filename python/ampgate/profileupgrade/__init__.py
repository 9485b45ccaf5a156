"""Raising a charger's OCPP security profile with one call: the specifications' flow as a pure state machine
(`machine`), its table (`repository`) and the service that drives it (`service`)."""

from ampgate.profileupgrade.repository import UpgradeRepository, UpgradeRow
from ampgate.profileupgrade.service import ProfileUpgrades, Settings

__all__ = ["ProfileUpgrades", "Settings", "UpgradeRepository", "UpgradeRow"]
