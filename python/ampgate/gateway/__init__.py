"""The control plane's side of the gateway: starts and supervises the gateway worker processes, pushes the
handshake table down to them, and pumps their batched events to connectivity (connections) and the OCPP router
(messages) (docs/architecture.md)."""

from ampgate.gateway.supervisor import Credentials, Gateway, LinkListener, MessageSink, WorkerInfo

__all__ = ["Credentials", "Gateway", "LinkListener", "MessageSink", "WorkerInfo"]
