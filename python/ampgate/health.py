"""The node's own report (`GET /api/v1/health`, `GET /public/v1/health`): status, version, uptime, the gateway
workers, the store and how many chargers are online; and `StoreWatch`, which turns the store's condition changes
into events on the bus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock, iso_utc
from ampgate.events import StoreDegraded, StoreRecovered
from ampgate.store import StoreCondition

VERSION = "0.1.0"


class StoreState(Protocol):
    """What the report reads of the store (`ampgate.store.Store`)."""

    condition: StoreCondition

    @property
    def queue_max(self) -> int: ...
    def queued(self) -> int: ...


def store_report(store: StoreState) -> dict[str, Any]:
    """The store's part of the health report: `status` ok or degraded, `reason` ("locked", "full", "io_error"),
    `detail` (SQLite's message), `since`, `queued` writes and `queue_max`."""
    c = store.condition
    return {
        "status": c.status,
        "reason": c.reason,
        "detail": c.detail,
        "since": iso_utc(c.since) if c.since is not None and c.status == "degraded" else None,
        "queued": store.queued(),
        "queue_max": store.queue_max,
    }


class NodeHealth:
    """Builds the health report from the parts that know: `workers()` (each worker's dict, see
    `ampgate.gateway.Gateway.health`), `online()` (chargers online) and `store()` (see `store_report`; None:
    not reported, for tests that build a node's parts without a store)."""

    def __init__(
        self,
        workers: Callable[[], list[dict[str, Any]]],
        online: Callable[[], int],
        clock: Clock,
        store: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._workers = workers
        self._online = online
        self._clock = clock
        self._store = store
        self.started_at: float | None = None

    def started(self) -> None:
        """The node is serving: uptime counts from now."""
        self.started_at = self._clock.wall()

    def report(self) -> dict[str, Any]:
        """`status` ok (every worker alive and up, and the store writing) or degraded (a worker down, e.g. waiting
        for its restart: its `state` and `last_error` say why; or the store unable to write: `store` says why),
        `version`, `uptime_s`, `workers`, `connections` (held by the workers), `chargers_online`, and `store` when
        the node reports it."""
        workers = self._workers()
        uptime = self._clock.wall() - self.started_at if self.started_at is not None else 0.0
        store = self._store() if self._store is not None else None
        ok = (
            bool(workers)
            and all(w["alive"] and w.get("state", "up") == "up" for w in workers)
            and (store is None or store["status"] == "ok")
        )
        report: dict[str, Any] = {
            "status": "ok" if ok else "degraded",
            "version": VERSION,
            "uptime_s": round(uptime, 3),
            "workers": workers,
            "connections": sum(w["connections"] for w in workers),
            "chargers_online": self._online(),
        }
        if store is not None:
            report["store"] = store
        return report


class StoreWatch:
    """Publishes `store.degraded` when the store stops writing (or its reason changes) and `store.recovered`
    when it writes again. Pass `changed` to `Store.watch`."""

    def __init__(self, bus: Publisher, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock

    def changed(self, old: StoreCondition, new: StoreCondition) -> None:
        """The store's condition went from `old` to `new` (trio thread)."""
        if new.status == "degraded":
            self._bus.publish(StoreDegraded(at=self._clock.now(), reason=new.reason or "", detail=new.detail))
        elif old.status == "degraded":
            self._bus.publish(StoreRecovered(at=self._clock.now(), reason=old.reason or "", since=old.since))
