"""Connectivity: who is online, since when, over which connection (presence), the gateway's connection events
turned into sessions, records and events (links), and registering chargers (registration). Later also
heartbeat health, connection history, flapping and queued commands (docs/architecture.md)."""

from ampgate.connectivity.links import ChargerSender, LinkTracker
from ampgate.connectivity.presence import Presence, PresenceRegistry
from ampgate.connectivity.registration import ChargerRegistration, KnownChargers

__all__ = [
    "ChargerRegistration",
    "ChargerSender",
    "KnownChargers",
    "LinkTracker",
    "Presence",
    "PresenceRegistry",
]
