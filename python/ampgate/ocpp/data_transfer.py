"""DataTransfer from chargers (both versions): a registry of vendor handlers.

`registry.register(vendor_id, fn)`; `fn(charger_id, message_id, data)` returns `(status, data)`
where status is Accepted, Rejected, UnknownMessageId or UnknownVendorId. A vendor nobody registered gets
UnknownVendorId (1.6 §4.3, 2.0.1 P02.FR.06).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ampgate.ocpp import v16, v201
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import OcppRouter, Session

log = logging.getLogger(__name__)

VendorHandler = Callable[[str, str | None, Any], tuple[str, Any]]
# Statuses a DataTransfer reply may carry (the same four in both versions).
STATUSES = frozenset({"Accepted", "Rejected", "UnknownMessageId", "UnknownVendorId"})


class DataTransferRegistry:
    """Vendor handlers for charger-initiated DataTransfer."""

    def __init__(self) -> None:
        self._vendors: dict[str, VendorHandler] = {}

    def register(self, vendor_id: str, fn: VendorHandler) -> None:
        """Answer DataTransfer for `vendor_id` with `fn(charger_id, message_id, data) -> (status, data)`.
        Replaces an earlier handler for the same vendor. Raises ValueError for an empty vendor id."""
        if not vendor_id:
            raise ValueError("a vendor id is not empty")
        self._vendors[vendor_id] = fn

    def attach(self, router: OcppRouter) -> None:
        """Handle DataTransfer in both versions."""
        router.register(OCPP16, "DataTransfer", self._handle16)
        router.register(OCPP201, "DataTransfer", self._handle201)

    def answer(self, charger_id: str, vendor_id: str, message_id: str | None, data: Any) -> dict[str, Any]:
        """The reply payload (wire form). A handler that raises or returns a status outside STATUSES gets the
        charger a Rejected, with the error logged."""
        fn = self._vendors.get(vendor_id)
        if fn is None:
            return {"status": "UnknownVendorId"}
        try:
            status, out = fn(charger_id, message_id, data)
        except Exception:
            log.exception("DataTransfer handler for vendor %r failed", vendor_id)
            return {"status": "Rejected"}
        if status not in STATUSES:
            log.error("DataTransfer handler for vendor %r returned status %r", vendor_id, status)
            return {"status": "Rejected"}
        return {"status": status} if out is None else {"status": status, "data": out}

    def _handle16(self, session: Session, req: v16.DataTransferRequest) -> dict[str, Any]:
        reply = self.answer(session.charger_id, req.vendor_id, req.message_id, req.data)
        if "data" in reply and not isinstance(reply["data"], str):
            reply["data"] = str(reply["data"])  # 1.6 data is a string
        return reply

    def _handle201(self, session: Session, req: v201.DataTransferRequest) -> dict[str, Any]:
        return self.answer(session.charger_id, req.vendor_id, req.message_id, req.data)
