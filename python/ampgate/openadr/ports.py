"""What the VEN is handed: the narrow interfaces it uses, each implemented elsewhere (the demand-response service
`ampgate.demand`, the load view `ampgate.loadctl`, the site topology `ampgate.load.Sites`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ampgate.load.model import SiteRow


class CapacityLimits(Protocol):
    """Demand-response limits set by an outside party (`ampgate.demand`)."""

    async def apply_external(
        self, *, source: str, ref: str, node: str, limit_kw: float, start: datetime, end: datetime
    ) -> None:
        """Create or replace the demand-response limit (source, ref) on the site/capacity node `node`."""
        ...

    async def cancel_external(self, *, source: str, ref: str) -> None:
        """End the limit (source, ref) now; a ref that is not live is no error."""
        ...

    def external_refs(self, source: str) -> set[str]:
        """The live (not ended, not cancelled) refs of `source`, to reconcile after a restart."""
        ...


class SiteReadings(Protocol):
    """What a site draws (`ampgate.loadctl`)."""

    def measured_kw(self, site_id: str) -> float | None:
        """The site's measured draw now; None when nothing is measured there."""
        ...

    def energy_kwh(self, site_id: str, start: datetime, end: datetime) -> float | None:
        """Energy the site took in [start, end); None when unknown."""
        ...


class SiteDirectory(Protocol):
    """The sites (`ampgate.load.Sites`)."""

    def page_sites(self, limit: int, after: str | None = None) -> list[SiteRow]: ...
