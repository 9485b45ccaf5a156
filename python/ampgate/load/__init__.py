"""Load management. So far the site topology the allocator will consume: sites (each the root of a tree whose
limits are its grid connection's), capacity nodes of any depth under them, and where each charger hangs and how
it is wired to the phases. The values and their rules (`model`), the tables (`repository`), the operator's
service (`service.Sites`) and the allocator's view of a site as arrays (`topology`)."""

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

__all__ = [
    "Location",
    "NodeRow",
    "NodeSpec",
    "PlacementRow",
    "PlacementSpec",
    "SiteRow",
    "SiteSpec",
    "Sites",
    "Topology",
    "TopologyRepository",
    "build",
]
