"""Load management's control plane: each tick, the demand of every live session in, the allocator
(rust/alloc/) run under every site's limits and demand-response events, and charging profiles out
(`ticker.LoadTicker`); the pure rules (`model`), the forest of every site's tree (`forest`) and the load history
(`repository`)."""

from ampgate.loadctl.repository import LoadHistoryRepository
from ampgate.loadctl.ticker import LoadTicker, Settings

__all__ = ["LoadHistoryRepository", "LoadTicker", "Settings"]
