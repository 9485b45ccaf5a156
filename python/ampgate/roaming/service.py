"""`Roaming`: the OCPI 2.2.1 CPO interface as one part of the node: the party table, the client, the
credentials handshake, the pusher of the locations book's changes, the token authority (eMSPs' tokens at our
chargers), the command receiver, the sessions tracker, the CDR delivery queue, the tariff pusher, and the modules
the server offers. The node builds it when `--ocpi-country-code` and `--ocpi-party-id` are set, starts `run` in its nursery, mounts `router()` on the public app and hands the
operator API `self` (parties) and the book (what a charger publishes).

The book (`LocationBook`) is the node's, built and run with or without OCPI: the public locations route
(`GET /public/v1/locations`) shows the same EVSEs and statuses from it. It is handed in here built with our
country code and party id, and running before `run` starts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
import msgspec
import trio

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.roaming.authority import AUTHORIZE_TIMEOUT_S, TokenAuthority, TransactionLookup
from ampgate.roaming.billing_routes import CDRS_MODULE, SESSIONS_MODULE, TARIFFS_MODULE
from ampgate.roaming.billing_rows import CdrRows, SessionRows
from ampgate.roaming.cdr_delivery import RETRY_S, CdrDelivery
from ampgate.roaming.cdr_delivery import CdrSource as DeliveryCdrs
from ampgate.roaming.cdr_delivery import TariffSource as DeliveryTariffs
from ampgate.roaming.client import CALL_TIMEOUT_S, OcpiClient
from ampgate.roaming.commands import CommandReceiver, Readiness, ReservationPort, Sender, TransactionReads
from ampgate.roaming.commands_routes import COMMANDS
from ampgate.roaming.credentials import Identity, Registrar
from ampgate.roaming.locations import LocationBook
from ampgate.roaming.locations_routes import LOCATIONS
from ampgate.roaming.parties import Party, PartyRepository
from ampgate.roaming.push import LocationPusher, PartyStats
from ampgate.roaming.server import EXCEPTION_HANDLERS, OCPI_RATE_PER_S, STATE_KEY, Module, router
from ampgate.roaming.sessions import UPDATE_S, Costs, SessionTracker
from ampgate.roaming.sessions import CdrSource as SessionCdrs
from ampgate.roaming.sessions import Transactions as SessionTransactions
from ampgate.roaming.tariff_push import TariffPusher
from ampgate.roaming.tariff_push import TariffSource as PushedTariffs
from ampgate.roaming.token_rows import AuthorizationRepository, PartyTokenRepository
from ampgate.roaming.tokens_routes import TOKENS
from ampgate.roaming.types import Evse
from ampgate.store.store import Store

log = logging.getLogger(__name__)


# A session or CDR no tariff priced still names a currency (OCPI requires one): the one its charger's tariff
# would have now, else this.
FALLBACK_CURRENCY = "EUR"


class Transactions(TransactionLookup, TransactionReads, SessionTransactions, Protocol):
    """`ampgate.store.TransactionRepository`."""


class BillingCdrs(SessionCdrs, DeliveryCdrs, Protocol):
    """`ampgate.billing.CdrRepository`."""


class BillingTariffs(PushedTariffs, DeliveryTariffs, Protocol):
    """`ampgate.billing.Tariffs`."""

    def tariff_for(self, charger_id: str, id_token: str | None, /) -> Any: ...


class Roaming:
    """See the module docstring. `identity.base_url` may be replaced once the public listener's URL is known
    (`set_base_url`)."""

    def __init__(
        self,
        store: Store,
        identity: Identity,
        *,
        book: LocationBook,
        bus: EventBus,
        clock: Clock,
        transactions: Transactions,
        readiness: Readiness,
        sender: Sender,
        reservations: ReservationPort,
        costs: Costs,
        cdrs: BillingCdrs,
        tariffs: BillingTariffs,
        call_timeout_s: float,
        authorize_timeout_s: float = AUTHORIZE_TIMEOUT_S,
        rate_per_s: int = OCPI_RATE_PER_S,
        session_update_s: float = UPDATE_S,
        cdr_retry_s: float = RETRY_S,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.identity = identity
        self.rate_per_s = rate_per_s
        self.clock = clock
        self.parties = PartyRepository(store)
        self.client = OcpiClient(
            http or httpx.AsyncClient(timeout=CALL_TIMEOUT_S), identity.country_code, identity.party_id
        )
        if (book.country_code, book.party_id) != (identity.country_code, identity.party_id):
            raise ValueError("the locations book must be built with our OCPI country code and party id")
        self.book = book
        self.pusher = LocationPusher(self.book, self.client, bus, clock)
        self.book.changes = self.pusher
        self.registrar = Registrar(
            self.parties, self.client, identity, publish=bus, clock=clock, on_change=self._parties_changed
        )
        # Tokens (Receiver): what eMSPs push, and our answer for their tokens at our chargers (the OCPP
        # authorizer's ExternalTokens); Commands (Receiver): their commands as OCPP calls.
        self.party_tokens = PartyTokenRepository(store)
        self.authority = TokenAuthority(
            self.party_tokens,
            AuthorizationRepository(store),
            self.parties,
            self.client,
            self.book,
            transactions,
            bus,
            clock,
            timeout_s=authorize_timeout_s,
        )
        self.commands = CommandReceiver(
            self.book,
            self.authority,
            readiness,
            sender,
            reservations,
            transactions,
            self.parties,
            self.client,
            bus,
            clock,
            call_timeout_s=call_timeout_s,
        )
        # Sessions, CDRs, Tariffs (Sender): each roaming session pushed to its token's eMSP as it goes, its CDR
        # from a durable queue, the tariffs to every party that takes them.
        self._tariffs = tariffs
        self.session_rows = SessionRows(store)
        self.sessions = SessionTracker(
            self.session_rows,
            self.authority.authorizations,
            transactions,
            costs,
            cdrs,
            self.book,
            self._currency,
            self.client,
            bus,
            clock,
            country_code=identity.country_code,
            party_id=identity.party_id,
            update_s=session_update_s,
        )
        self.authority.on_bound.append(self.sessions.bound)
        self.cdr_rows = CdrRows(store)
        self.cdr_delivery = CdrDelivery(
            self.cdr_rows,
            self.session_rows,
            self.authority.authorizations,
            cdrs,
            tariffs,
            transactions,
            self.parties,
            self.book,
            self._currency,
            self.client,
            bus,
            clock,
            country_code=identity.country_code,
            party_id=identity.party_id,
            retry_s=cdr_retry_s,
        )
        self.tariff_push = TariffPusher(
            tariffs, self.client, bus, clock, country_code=identity.country_code, party_id=identity.party_id
        )
        # The modules version details list after credentials.
        self.modules: Sequence[Module] = (
            LOCATIONS,
            TOKENS,
            COMMANDS,
            SESSIONS_MODULE,
            CDRS_MODULE,
            TARIFFS_MODULE,
        )

    def _currency(self, charger_id: str, id_token: str | None) -> str:
        """The currency of a session no tariff priced: its charger's tariff's now, else FALLBACK_CURRENCY."""
        tariff = self._tariffs.tariff_for(charger_id, id_token)
        return str(tariff.currency) if tariff is not None else FALLBACK_CURRENCY

    def set_base_url(self, base_url: str) -> None:
        """Where parties reach our OCPI server (known once the public listener is bound)."""
        self.identity = msgspec.structs.replace(self.identity, base_url=base_url.rstrip("/"))
        self.registrar.identity = self.identity

    def _parties_changed(self) -> None:
        registered = self.parties.registered()
        self.pusher.set_parties(registered)
        self.sessions.set_parties(registered)
        self.tariff_push.set_parties(registered)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The pushers, the token authority, the command receiver, the sessions tracker and the CDR queue (the
        book runs already: the node's); returns (cancelled) with the HTTP client closed."""
        try:
            async with trio.open_nursery() as nursery:
                # Who is sent what, before anything marks a change (a session's PUT at start included).
                self._parties_changed()
                await nursery.start(self.pusher.run)
                await nursery.start(self.authority.run)
                await nursery.start(self.commands.run)
                await nursery.start(self.sessions.run)
                await nursery.start(self.cdr_delivery.run)
                await nursery.start(self.tariff_push.run)
                self._parties_changed()
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await self.client.aclose()

    # -- the public app ---------------------------------------------------------------------------------------------

    def router(self) -> Any:
        return router(self.modules, self.rate_per_s)

    def public_services(self) -> dict[str, object]:
        return {STATE_KEY: self}

    def public_state(self) -> dict[str, object]:
        return {STATE_KEY: self}

    exception_handlers = EXCEPTION_HANDLERS

    # -- the operator API -------------------------------------------------------------------------------------------

    async def create(
        self, country_code: str, party_id: str, role: str, name: str | None
    ) -> tuple[Party, str]:
        return await self.registrar.create(country_code, party_id, role, name)

    def get(self, ref: int) -> Party | None:
        return self.parties.get(ref)

    def page(self, limit: int, after: int | None = None) -> list[Party]:
        return self.parties.page(limit, after)

    async def delete(self, ref: int) -> None:
        await self.registrar.delete(ref)

    async def register_with(self, ref: int, versions_url: str, token: str) -> Party:
        return await self.registrar.register_with(ref, versions_url, token)

    def push_stats(self, ref: int) -> PartyStats | None:
        return self.pusher.stats(ref)

    @property
    def versions_url(self) -> str:
        return self.identity.versions_url

    def published_evses(self, charger_id: str) -> list[tuple[str, Evse]] | None:
        """What OCPI publishes of the charger: (location id, EVSE) each; None when it is not placed at a site."""
        return self.book.published_evses(charger_id)
