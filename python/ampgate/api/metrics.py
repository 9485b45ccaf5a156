"""/metrics: the node's Prometheus metrics (`ampgate.metrics`) on the operator listener, without a token (the
listener binds where the operator API binds: 127.0.0.1 unless the operator chose otherwise)."""

from __future__ import annotations

from typing import Protocol

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from ampgate.api.auth import EXCLUDE_FROM_AUTH

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsExposition(Protocol):
    """`ampgate.metrics.NodeMetrics`."""

    def render(self) -> bytes: ...


def metrics_route(metrics: MetricsExposition) -> HTTPRouteHandler:
    @get(
        "/metrics",
        operation_id="metrics",
        opt={EXCLUDE_FROM_AUTH: True},
        include_in_schema=False,
        summary="Prometheus metrics (no token)",
    )
    async def serve_metrics() -> Response[bytes]:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return serve_metrics
