"""The control plane's side of the gateway: starts and supervises the gateway worker processes, pushes the
handshake table down to them, and pumps their batched events into the OCPP layer (DESIGN.md)."""

from ampgate.gateway.supervisor import Gateway, WorkerInfo

__all__ = ["Gateway", "WorkerInfo"]
