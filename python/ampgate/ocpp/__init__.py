"""OCPP-J for both 1.6 and 2.0.1: the RPC envelope, CallError codes (one table, here), per-connection
sessions and the action handlers. Issue 2 wires BootNotification and Heartbeat end to end; every other action
answers NotImplemented until the full OCPP layer lands."""

from ampgate.ocpp.router import OcppRouter, Session

__all__ = ["OcppRouter", "Session"]
