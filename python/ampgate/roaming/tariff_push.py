"""`TariffPusher`: the operator's tariffs pushed to every registered party with a tariffs RECEIVER endpoint
(mod_tariffs, push model), and the OCPI Tariffs the GET of our tariffs SENDER answers.

A `tariff.changed` (created, updated) is `PUT {their tariffs URL}/{our cc}/{our pid}/{tariff id}` with the whole
Tariff; a deleted one is `DELETE` of the same URL. Coalesced per tariff and party through `Outbox`: what is sent
is the tariff as it is at send time (still there: PUT; gone: DELETE), so a tariff changed ten times while a push
is on the way is sent twice at most. Failures are logged, not retried: the receiver re-syncs by GET, which
"replaces the current list of known Tariffs". After lost events every current tariff is pushed again (a
deletion missed then is only seen by the party's next GET).

Every tariff is published, those assigned to id-token groups too (OCPI has no private tariffs; a party's GET
would list them anyway). Connectors name the tariff that applies there (`tariff_ids`, `ampgate.roaming.locations`),
always one of these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

import trio

from ampgate.bus import EventBus, EventsLost
from ampgate.clock import Clock
from ampgate.events import TariffChanged
from ampgate.pricing import Tariff as EngineTariff
from ampgate.roaming import cdr_types as o
from ampgate.roaming.billing_objects import ocpi_tariff
from ampgate.roaming.client import OcpiClient
from ampgate.roaming.outbox import Outbox, OutboxStats
from ampgate.roaming.parties import Party
from ampgate.roaming.types import ModuleId


class TariffRowLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def tariff(self) -> EngineTariff: ...
    @property
    def updated_at(self) -> datetime: ...


class TariffSource(Protocol):
    """`ampgate.billing.Tariffs`."""

    def get(self, tariff_id: str, /) -> TariffRowLike | None: ...
    def page(self, limit: int, after: str | None = None, /) -> Iterable[TariffRowLike]: ...


# Every tariff, in id order, for a GET: tariffs are few (hundreds), so they are listed from memory.
_ALL = 1_000_000


class TariffPusher:
    """See the module docstring. `set_parties` says who is registered; start `run` in the node's nursery."""

    def __init__(
        self,
        tariffs: TariffSource,
        client: OcpiClient,
        bus: EventBus,
        clock: Clock,
        *,
        country_code: str,
        party_id: str,
    ) -> None:
        self._tariffs = tariffs
        self._client = client
        self._bus = bus
        self.country_code = country_code
        self.party_id = party_id
        self.outbox: Outbox[str] = Outbox(
            "tariff", lambda p: p.endpoint(ModuleId.TARIFFS, "RECEIVER"), self._send, clock
        )

    def tariff(self, tariff_id: str) -> o.Tariff | None:
        row = self._tariffs.get(tariff_id)
        return None if row is None else self._object(row)

    def _object(self, row: TariffRowLike) -> o.Tariff:
        return ocpi_tariff(
            row.tariff, country_code=self.country_code, party_id=self.party_id, last_updated=row.updated_at
        )

    def page(
        self, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int
    ) -> tuple[int, list[o.Tariff]]:
        """Our tariffs in id order whose last_updated is in [date_from, date_to): the count and a page."""
        matching = [
            r
            for r in self._tariffs.page(_ALL)
            if (date_from is None or self._object(r).last_updated >= date_from)
            and (date_to is None or self._object(r).last_updated < date_to)
        ]
        return len(matching), [self._object(r) for r in matching[offset : offset + limit]]

    def set_parties(self, parties: list[Party]) -> None:
        self.outbox.set_parties(parties)

    def stats(self, party_ref: int) -> OutboxStats | None:
        return self.outbox.stats(party_ref)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._bus.subscribe(["tariff.changed"]) as sub:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.outbox.run)
                task_status.started()
                async for item in sub:
                    if isinstance(item, TariffChanged):
                        self.outbox.mark_all(item.tariff_id)
                    elif isinstance(item, EventsLost):
                        for row in self._tariffs.page(_ALL):
                            self.outbox.mark_all(row.id)

    async def _send(self, party: Party, url: str, tariff_id: str) -> None:
        token = party.their_token
        assert token is not None
        target = f"{url}/{self.country_code}/{self.party_id}/{quote(tariff_id, safe='')}"
        to = (party.country_code, party.party_id)
        found = self.tariff(tariff_id)
        if found is None:
            await self._client.call("DELETE", target, token, to=to)
        else:
            await self._client.call("PUT", target, token, body=found, to=to)
