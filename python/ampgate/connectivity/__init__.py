"""Connectivity: who is online, since when, over which connection. Owns the presence registry; later also
heartbeat health, connection history, flapping and queued commands (DESIGN.md)."""

from ampgate.connectivity.presence import Presence, PresenceRegistry

__all__ = ["Presence", "PresenceRegistry"]
