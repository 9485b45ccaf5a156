"""Pricing as a service: tariffs stored and assigned, what each session costs, and its CDR.

Built on the pure engine (`ampgate.pricing`: the tariff model, `price`, `validate`), which it never
re-implements: every amount here is `price(...)` of a session's usage.

Owns the tables `tariffs`, `tariff_assignments`, `billing_sessions`, `cdrs` and `site_price_signals`:
- `tariffs`: `Tariffs`, the operator's tariffs and their assignment (id-token group > charger > site >
  default), and the node's `TariffLookup`; `TariffRepository`.
- `sessions`: `BillingSessions`, the node's `SessionCosts`: running and final cost of each session, and its
  CDR when the EVSE is free again (exactly once, across restarts).
- `cdrs`: `Cdrs`, CDR reads, credits, the CSV export, the per-site usage report.
- `signals`: `PriceSignals`, dynamic energy prices per site (the API's windows and OpenADR's PRICE events).
- `usage`: a session's usage assembled for the engine (pure); `model`: the values; `repository`: the tables of
  sessions and CDRs; `ports`: what other parts call (`TariffLookup`, `SessionCosts`).

docs/pricing.md ("The service") has the rules: resolution order, when a session ends, the CDR's fields,
credits.
"""

from ampgate.billing.cdrs import Cdrs, UsageReport, csv_text
from ampgate.billing.model import Cdr, SessionRow
from ampgate.billing.ports import SessionCosts, TariffLookup
from ampgate.billing.repository import CdrRepository, SessionRepository
from ampgate.billing.sessions import DEFAULT_MAX_PARKING_S, BillingSessions
from ampgate.billing.signals import PriceSignalRepository, PriceSignals, SignalWindow, SiteSignals
from ampgate.billing.tariffs import Assignment, Scope, TariffRepository, TariffRow, Tariffs

__all__ = [
    "DEFAULT_MAX_PARKING_S",
    "Assignment",
    "BillingSessions",
    "Cdr",
    "CdrRepository",
    "Cdrs",
    "PriceSignalRepository",
    "PriceSignals",
    "Scope",
    "SessionCosts",
    "SessionRepository",
    "SessionRow",
    "SignalWindow",
    "SiteSignals",
    "TariffLookup",
    "TariffRepository",
    "TariffRow",
    "Tariffs",
    "UsageReport",
    "csv_text",
]
