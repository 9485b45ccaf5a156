"""OCPP-J for 1.6 and 2.0.1: generated message types (v16, v201), the RPC envelope and the one CallError
table (rpc), the router with per-connection sessions and the boot policy (router), CALLs to chargers
(calls), and the handlers: authorization, transactions, status, data transfer, local lists."""

from ampgate.ocpp.router import OcppRouter, Session

__all__ = ["OcppRouter", "Session"]
