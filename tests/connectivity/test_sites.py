"""The site index connectivity keeps: every placement read at start, then placements, moves, removals and a
deleted site followed from the bus; a reload puts back what a lost event would have changed."""

from __future__ import annotations

from datetime import UTC, datetime

from ampgate.bus import EventBus
from ampgate.connectivity.sites import SiteIndex
from ampgate.events import ChargerPlaced, ChargerUnplaced, SiteDeleted

AT = datetime(2026, 11, 30, tzinfo=UTC)


def placed(charger: str, site: str) -> ChargerPlaced:
    return ChargerPlaced(
        at=AT, charger_id=charger, site_id=site, node_id=site, phases="L1", max_a=16, priority=0, weight=1
    )


def test_the_index_follows_placements_and_reloads() -> None:
    rows = [("CP1", "A"), ("CP2", "A"), ("CP3", "B")]
    index = SiteIndex(lambda: list(rows), EventBus())
    assert index.sizes() == {} and index.site_of("CP1") is None  # nothing read before it runs
    index.reload()
    assert index.sizes() == {"A": 2, "B": 1} and index.site_of("CP3") == "B"
    index.apply(placed("CP1", "B"))  # a move
    index.apply(placed("CP4", "C"))  # a new placement
    assert index.sizes() == {"A": 1, "B": 2, "C": 1}
    index.apply(ChargerUnplaced(at=AT, charger_id="CP2", site_id="A", node_id="A"))
    assert index.sizes() == {"B": 2, "C": 1} and index.site_of("CP2") is None
    index.apply(SiteDeleted(at=AT, site_id="C"))
    assert index.sizes() == {"B": 2} and index.site_of("CP4") is None
    # The placements as stored win at the next reload.
    index.reload()
    assert index.sizes() == {"A": 2, "B": 1}
