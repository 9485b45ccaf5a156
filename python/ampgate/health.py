"""The node's own report (`GET /api/v1/health`, `GET /public/v1/health`): status, version, uptime, the gateway
workers and how many chargers are online."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ampgate.clock import Clock

VERSION = "0.1.0"


class NodeHealth:
    """Builds the health report from the parts that know: `workers()` (each worker's dict, see
    `ampgate.gateway.Gateway.health`) and `online()` (chargers online)."""

    def __init__(
        self, workers: Callable[[], list[dict[str, Any]]], online: Callable[[], int], clock: Clock
    ) -> None:
        self._workers = workers
        self._online = online
        self._clock = clock
        self.started_at: float | None = None

    def started(self) -> None:
        """The node is serving: uptime counts from now."""
        self.started_at = self._clock.wall()

    def report(self) -> dict[str, Any]:
        """`status` ok (every worker alive and up) or degraded (a worker down, e.g. waiting for its restart: its
        `state` and `last_error` say why), `version`, `uptime_s`, `workers`, `connections` (held
        by the workers), `chargers_online`."""
        workers = self._workers()
        uptime = self._clock.wall() - self.started_at if self.started_at is not None else 0.0
        return {
            "status": "ok"
            if workers and all(w["alive"] and w.get("state", "up") == "up" for w in workers)
            else "degraded",
            "version": VERSION,
            "uptime_s": round(uptime, 3),
            "workers": workers,
            "connections": sum(w["connections"] for w in workers),
            "chargers_online": self._online(),
        }
