"""Cost on the charger: the tariff text and the running and final cost shown to the driver on the charger's
display, over OCPP 2.0.1 tariff and cost (functional block I) or the OCPP 1.6 "California Pricing"
DataTransfer messages, whichever the charger's device model (or an admin's override) asks for.

Owns the `charger_cost_display` table (the admins' overrides) and decides per charger (`mode`, `resolver`);
adds to the authorization and transaction replies (`replies`, the OCPP handlers' `CostReplies`); sends the
running cost at an interval (`updates`) and the 1.6 messages (`sender`), counting every outcome (`stats`).
Prices come from the session-cost service through `ports.TariffLookup` / `ports.SessionCosts` (`NoTariffs`
until a node has one); `messages` builds the wire forms. The HTTP routes live in `ampgate.api.cost_display`.
"""

from ampgate.costdisplay.mode import MODES, Mode
from ampgate.costdisplay.ports import NoTariffs, SessionCosts, TariffLookup
from ampgate.costdisplay.replies import ReplyHooks
from ampgate.costdisplay.repository import CostDisplayRepository
from ampgate.costdisplay.resolver import CostDisplayView
from ampgate.costdisplay.service import DEFAULT_INTERVAL, CostDisplay
from ampgate.costdisplay.stats import Counts, CountsCollector

__all__ = [
    "DEFAULT_INTERVAL",
    "MODES",
    "CostDisplay",
    "CostDisplayRepository",
    "CostDisplayView",
    "Counts",
    "CountsCollector",
    "Mode",
    "NoTariffs",
    "ReplyHooks",
    "SessionCosts",
    "TariffLookup",
]
