"""Load management. So far the site topology the allocator will consume: sites (each the root of a tree whose
limits are its grid connection's), capacity nodes of any depth under them, and where each charger hangs and how
it is wired to the phases. The values and their rules (`model`), the tables (`repository`), the operator's
service (`service.Sites`) and the allocator's view of a site as arrays (`topology`); each site's maintenance
windows (`windows`: when firmware campaigns may dispatch there, DST-correct in the site's time zone)."""

from ampgate.load.model import (
    Location,
    NodeRow,
    NodeSpec,
    PlacementRow,
    PlacementSpec,
    SiteRow,
    SiteSpec,
)
from ampgate.load.repository import TopologyRepository
from ampgate.load.service import Sites
from ampgate.load.topology import Topology, build
from ampgate.load.windows import MaintenanceWindow, SiteWindows, next_window, window_at

__all__ = [
    "Location",
    "MaintenanceWindow",
    "NodeRow",
    "NodeSpec",
    "PlacementRow",
    "PlacementSpec",
    "SiteRow",
    "SiteSpec",
    "SiteWindows",
    "Sites",
    "Topology",
    "TopologyRepository",
    "build",
    "next_window",
    "window_at",
]
