"""The cap on concurrent file transfers over the public listener.

A firmware image download or a diagnostics upload holds a socket (and often a file) for as long as it lasts:
seconds to minutes. Thousands of chargers fetching an image at once must not take the open files the control
plane needs (every process may open at most 20,000 here). So every route that moves a file is marked
`opt={FILE_TRANSFER: True}` and passes through `TransferLimitMiddleware`: past the cap, the request gets 503
with a randomised `Retry-After` at once (a charger retries its download per its `retries`/`retryInterval`), and
the slot of an admitted transfer is held until its whole response has been sent.
"""

from __future__ import annotations

import random

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from ampgate.errors import UnavailableError

# Route opt key marking a file transfer.
FILE_TRANSFER = "file_transfer"
# Concurrent transfers when the operator names no cap: far below the open-file limit (20,000 here), far above
# what a 1 Gbit/s uplink serves usefully at once for images of tens of MB.
DEFAULT_MAX_TRANSFERS = 512
# A refused transfer is told to come back after a random 5–30 s, so refused chargers do not return in step.
RETRY_AFTER_RANGE_S = (5, 30)


class TransferLimiter:
    """Counts transfers in progress against `cap`. On the trio thread only: no lock."""

    def __init__(self, cap: int = DEFAULT_MAX_TRANSFERS) -> None:
        if cap < 1:
            raise ValueError("the transfer cap is at least 1")
        self.cap = cap
        self.active = 0
        self.refused = 0  # transfers refused since start

    def try_acquire(self) -> bool:
        """Take a slot if one is free."""
        if self.active >= self.cap:
            self.refused += 1
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1


class TransferLimitMiddleware(ASGIMiddleware):
    """Admits a route marked as a file transfer only while `limiter` has room; holds the slot until the
    response is complete. Other routes pass straight through."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: TransferLimiter) -> None:
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        if handler is None or not handler.opt.get(FILE_TRANSFER):
            await next_app(scope, receive, send)
            return
        limiter = self.limiter
        if not limiter.try_acquire():
            retry = random.randint(*RETRY_AFTER_RANGE_S)
            raise UnavailableError(
                f"{limiter.cap} file transfers are in progress; retry after {retry} s",
                retry_after=retry,
                code="too_many_transfers",
            )
        try:
            await next_app(scope, receive, send)
        finally:
            limiter.release()
