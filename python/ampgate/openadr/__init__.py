"""OpenADR 3.0.1: the node as a VEN of a grid operator's VTN. It registers the VEN and one resource per site,
polls (and takes subscription callbacks for) the programs and events, turns IMPORT_CAPACITY_LIMIT intervals into
demand-response limits on the sites (`CapacityLimits`), applies the program's safe-mode limits while the VTN is
unreachable, reports each site's DEMAND and USAGE back, and keeps PRICE payloads per site (`PriceRepository`).

The wire objects (`wire`), the HTTP calls with OAuth2 client credentials (`client`), the pure event mapping
(`mapping`), the price table (`repository`), the interfaces it is handed (`ports`) and the VEN itself (`ven`).
`settings_from` reads the node's settings, `build_ven` builds it. The callback route lives on the public listener
(`ampgate.public.openadr`), the status route in the operator API (`ampgate.api.openadr`).
"""

from ampgate.openadr.build import OpenAdrSettings, build_ven, open_ven, settings_from
from ampgate.openadr.client import TokenSource, VtnClient, VtnRefused, VtnUnreachable
from ampgate.openadr.mapping import Limit, Price, Rejection, map_event
from ampgate.openadr.ports import CapacityLimits, SiteDirectory, SiteReadings
from ampgate.openadr.repository import PriceRepository, PriceRow
from ampgate.openadr.ven import SOURCE, OpenAdrVen, VenSettings

__all__ = [
    "SOURCE",
    "CapacityLimits",
    "Limit",
    "OpenAdrSettings",
    "OpenAdrVen",
    "Price",
    "PriceRepository",
    "PriceRow",
    "Rejection",
    "SiteDirectory",
    "SiteReadings",
    "TokenSource",
    "VenSettings",
    "VtnClient",
    "VtnRefused",
    "VtnUnreachable",
    "build_ven",
    "map_event",
    "open_ven",
    "settings_from",
]
