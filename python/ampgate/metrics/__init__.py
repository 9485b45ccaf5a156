"""Prometheus metrics of one node (`GET /metrics` on the operator listener): `NodeMetrics` builds a registry of
its own (no global state: two nodes in one process never share one) from the parts that know each figure."""

from ampgate.metrics.collector import NodeMetrics

__all__ = ["NodeMetrics"]
