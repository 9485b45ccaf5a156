"""GET /api/v1/health: the node's own report, without a token (for load balancers and supervisors)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency

from ampgate.api.auth import EXCLUDE_FROM_AUTH
from ampgate.api.deps import HealthReport


class HealthController(Controller):
    path = "/api/v1/health"
    tags = ("health",)

    @get("/", operation_id="health", opt={EXCLUDE_FROM_AUTH: True}, summary="Node health")
    async def health(self, health: NamedDependency[HealthReport]) -> dict[str, Any]:
        """Status, version, uptime, gateway workers (pid, generation, connections, restarts) and how many
        chargers are online."""
        return health.report()
