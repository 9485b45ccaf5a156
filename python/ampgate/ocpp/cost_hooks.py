"""What the authorization and transaction handlers let the cost display (`ampgate.costdisplay.CostDisplay`)
add about money: the tariff text and the final cost in their replies (2.0.1), and the cost messages sent after
them (1.6 California Pricing). The handlers build their reply first and hand it over; whatever the hooks do,
the reply goes.

Every hook returns quickly and never raises (a pricing failure leaves the cost out); `ended201` may wait for
the final cost, bounded by the hook itself. `NoCostReplies` is the part of a node that shows no cost.
"""

from __future__ import annotations

from typing import Any, Protocol


class CostReplies(Protocol):
    def authorize16(self, charger_id: str, id_tag: str, info: dict[str, Any], /) -> None:
        """A 1.6 Authorize answered with idTagInfo `info` (wire form)."""
        ...

    def authorize201(self, charger_id: str, id_token: str, info: dict[str, Any], /) -> None:
        """A 2.0.1 Authorize answered with idTokenInfo `info` (wire form; may be added to)."""
        ...

    def started16(self, charger_id: str, tx_id: int, id_tag: str, info: dict[str, Any], /) -> None:
        """A 1.6 StartTransaction recorded as transaction `tx_id`, answered with idTagInfo `info`."""
        ...

    def stopped16(self, charger_id: str, tx_id: int, /) -> None:
        """A 1.6 StopTransaction of `tx_id` recorded (the stop is durable)."""
        ...

    def event201(self, charger_id: str, tx_id: int, id_token: str | None, reply: dict[str, Any], /) -> None:
        """A 2.0.1 TransactionEvent Started or Updated of `tx_id` (carrying `id_token`, if any) recorded; `reply`
        (wire form, with idTokenInfo iff the request had an idToken) may be added to."""
        ...

    async def ended201(self, charger_id: str, tx_id: int, reply: dict[str, Any], /) -> None:
        """A 2.0.1 TransactionEvent Ended of `tx_id` recorded (durable); `reply` may be added to."""
        ...


class NoCostReplies:
    """No cost shown: every hook does nothing."""

    def authorize16(self, charger_id: str, id_tag: str, info: dict[str, Any], /) -> None:
        pass

    def authorize201(self, charger_id: str, id_token: str, info: dict[str, Any], /) -> None:
        pass

    def started16(self, charger_id: str, tx_id: int, id_tag: str, info: dict[str, Any], /) -> None:
        pass

    def stopped16(self, charger_id: str, tx_id: int, /) -> None:
        pass

    def event201(self, charger_id: str, tx_id: int, id_token: str | None, reply: dict[str, Any], /) -> None:
        pass

    async def ended201(self, charger_id: str, tx_id: int, reply: dict[str, Any], /) -> None:
        pass
