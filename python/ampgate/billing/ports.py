"""What other parts call billing by (the charger cost display, OCPI), as Protocols: they depend on these, never
on billing's classes. `Tariffs` is the node's `TariffLookup`, `BillingSessions` its `SessionCosts`."""

from __future__ import annotations

from typing import Protocol

from ampgate.pricing import Cost, Tariff

__all__ = ["SessionCosts", "TariffLookup"]


class TariffLookup(Protocol):
    """The tariff a session would get now (id-token group > charger > site > default)."""

    def tariff_for(self, charger_id: str, id_token: str | None, /) -> Tariff | None: ...


class SessionCosts(Protocol):
    """A session's cost, from the one engine."""

    def running_cost(self, transaction_id: int, /) -> Cost | None:
        """Priced until now; None: no tariff applies."""
        ...

    async def final_cost(self, transaction_id: int, /) -> Cost | None:
        """Priced until the transaction's stop, from the store after the stop was recorded (with the meter values
        of the stopping message); None: no tariff applies."""
        ...
