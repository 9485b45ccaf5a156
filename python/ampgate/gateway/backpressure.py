"""What stops the gateway pump taking batches: the store's write queue full, or too many replies waiting for
their commits. While the pump waits, events stay in the hub; past the hub's bound the workers stop reading, so
the chargers' TCP windows fill instead of the control plane's memory (see ampgate.store.writer)."""

from __future__ import annotations

from typing import Protocol


class Room(Protocol):
    """One bounded thing the pump must not overfill: `full()` now, and `wait_room()` until it is not."""

    def full(self) -> bool: ...
    async def wait_room(self) -> None: ...


class WriteRoom:
    """Room for the writes (and the replies awaiting them) one more batch may make: every bound has room.
    The store's writer makes room from its own thread (through the trio token), never waiting on the loop, so
    a pump waiting here cannot deadlock the writer."""

    def __init__(self, *bounds: Room) -> None:
        self._bounds = bounds

    def full(self) -> bool:
        """Whether any bound is full."""
        return any(b.full() for b in self._bounds)

    async def wait_room(self) -> None:
        """Return once no bound is full (each may fill again meanwhile: checked until all have room)."""
        while True:
            for b in self._bounds:
                if b.full():
                    await b.wait_room()
                    break
            else:
                return


class LateReplies:
    """The router's late replies as a `Room` (`ampgate.ocpp.router.OcppRouter.late_full`)."""

    def __init__(self, router: _LateSource) -> None:
        self._router = router

    def full(self) -> bool:
        return self._router.late_full()

    async def wait_room(self) -> None:
        await self._router.wait_late_room()


class _LateSource(Protocol):
    def late_full(self) -> bool: ...
    async def wait_late_room(self) -> None: ...
