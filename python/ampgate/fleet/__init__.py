"""The fleet as groups of chargers: each charger's tags (`charger_tags`, set by admins) and selections of
chargers by vendor, model, firmware version, site, tags and explicit ids, which a firmware campaign freezes as
its targets.

Its own package rather than part of `store` (where the chargers table lives) because a selection reads across
two owners' tables (the chargers' boot report from `store`, the placements from `load`) and owns a third (the
tags); `store` stays ignorant of sites. `tags` holds the values and rules, `repository` the table and the
selection's SQL (an index range per page), `service.Fleet` what the API and the campaigns use.
"""

from ampgate.fleet.repository import FleetRepository
from ampgate.fleet.service import Fleet
from ampgate.fleet.tags import (
    MAX_TAG,
    MAX_TAGS,
    TAG_ALPHABET,
    ChargerSelection,
    ChargerSelector,
    validate_selector,
    validate_tags,
)

__all__ = [
    "MAX_TAG",
    "MAX_TAGS",
    "TAG_ALPHABET",
    "ChargerSelection",
    "ChargerSelector",
    "Fleet",
    "FleetRepository",
    "validate_selector",
    "validate_tags",
]
