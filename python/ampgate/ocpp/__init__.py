"""OCPP-J for 1.6 and 2.0.1: generated message types (v16, v201) and payload checks by action (payloads), the
envelope and the one CallError table (envelope), the router with per-connection sessions (router) gated by the
boot policy's table (boot_policy), the outbox of CALLs to chargers (outbox) and the Commander in front of it
(commander), and the handlers of what chargers send: boot and heartbeat, authorization, transactions, status,
firmware, data transfer; id-token rules and local lists."""

from ampgate.ocpp.router import OcppRouter, Session

__all__ = ["OcppRouter", "Session"]
