"""What the cost display needs from the rest of the node, each a narrow Protocol the node wires.

`TariffLookup` and `SessionCosts` are implemented by the session-cost service (tariff assignment, running and
final cost per transaction, CDRs); until a node has it, `NoTariffs` stands in for both: no charger has a
tariff, so nothing is shown. The others are parts that exist today: the device model's stored variables, the
override table, the transactions, the charger's protocol and the Commander.
"""

from __future__ import annotations

from typing import Any, Protocol

from ampgate.pricing import Cost, Tariff
from ampgate.store.transactions import TransactionRow


class TariffLookup(Protocol):
    """The tariff that applies to a driver at a charger (the resolved assignment: the token's group, the
    charger, its site, the node's default), or None when none does. Synchronous and cheap: it is asked while
    an OCPP reply is built."""

    def tariff_for(self, charger_id: str, id_token: str | None, /) -> Tariff | None: ...


class SessionCosts(Protocol):
    """The cost of a transaction (the node's transaction id), priced by the one engine."""

    def running_cost(self, transaction_id: int, /) -> Cost | None:
        """Priced until now; None: the transaction has no tariff."""
        ...

    async def final_cost(self, transaction_id: int, /) -> Cost | None:
        """Priced until the transaction's stop; read after the stop is recorded. None: no tariff."""
        ...


class NoTariffs:
    """`TariffLookup` and `SessionCosts` of a node without tariffs: nothing is priced, so chargers are shown
    no tariff text and no cost (the state of every node until the session-cost service is wired in)."""

    def tariff_for(self, charger_id: str, id_token: str | None, /) -> Tariff | None:
        return None

    def running_cost(self, transaction_id: int, /) -> Cost | None:
        return None

    async def final_cost(self, transaction_id: int, /) -> Cost | None:
        return None


class VariableReads(Protocol):
    """Stored device-model values (`ampgate.devicemodel.DeviceModelRepository`); a 1.6 configuration key is a
    variable of component ''."""

    def value(
        self,
        charger_id: str,
        component: str,
        variable: str,
        instance: str = ...,
        attribute_type: str = ...,
        /,
    ) -> str | None: ...


class ProtocolOf(Protocol):
    def __call__(self, charger_id: str, /) -> str | None: ...


class TransactionReads(Protocol):
    """Transactions (`ampgate.store.TransactionRepository`)."""

    def get(self, tx_id: int, /) -> TransactionRow | None: ...
    def open_transactions(self) -> list[TransactionRow]: ...


class Calls(Protocol):
    """The Commander: `ready` raises unless the charger may be sent `action` now; `call` sends it and returns
    the reply payload (raising the Commander's errors)."""

    def ready(self, charger_id: str, action: str, /) -> str: ...
    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...
