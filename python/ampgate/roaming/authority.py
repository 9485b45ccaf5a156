"""`TokenAuthority`: our answer for an eMSP's token presented at one of our chargers (the OCPP authorizer's
`ExternalTokens`, asked only after our own id-token table did not know the token), and the record of what let
each roaming session in.

The order, for a token (uid, and the OCPP type when 2.0.1 says one) at a charger:
1. A live **authorization** of that token at that charger: one a START_SESSION or RESERVE_NOW of its eMSP made
   (mod_commands: such a token is authorized by the eMSP and is not checked again at that charger for 15
   minutes; a reservation's holds until its expiry), or one decided here in the last 15 minutes (so Authorize
   and then StartTransaction cost one decision, not two). Accepted, nobody asked.
2. The **Tokens eMSPs pushed** (`ocpi_tokens`), of a party registered now, the OCPI type the OCPP type maps to
   first (`mapping.ocpi_token_types`): the whitelist rules (`ampgate.roaming.whitelist`) say whether to answer
   from it or to ask its eMSP, and what an outage means.
3. A token nobody pushed: **every registered party whose version details list a tokens SENDER endpoint** is
   asked at once (OCPI gives a token uid no owner, and says a CPO must ask when an eMSP does not push); the
   first ALLOWED wins, else a refusal, else nobody knows it and the node's own answer stands (Invalid, or a
   reservation's say). The answering eMSP's Token is kept as if pushed (its whitelist then rules the next time).

Real-time authorization is `POST {tokens SENDER url}/{uid}/authorize?type=…` with the LocationReferences of the
charger's Location when it is published (its EVSE uids: Authorize names no EVSE), bounded by `timeout_s`
(`--ocpi-authorize-timeout`, default 5 s): below a charger's own wait for its Authorize reply, so the charger is
always answered; what comes too late counts as unreachable. Meanwhile that charger waits (it sends nothing
before our reply); other chargers do not.

Every token let in is recorded (`token_rows.AuthorizationRepository`) with its eMSP, method and
authorization_reference, and bound to the transaction that uses it: from the bus's `transaction.started`, and,
since events are hints, by a sweep over the live authorizations every RECONCILE_INTERVAL_S and after a loss.
`authorization_for(transaction)` is the Sessions and CDR modules' way in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Protocol
from urllib.parse import quote, urlencode

import trio

from ampgate.bus import EventBus, EventsLost
from ampgate.clock import Clock
from ampgate.events import OcpiTokenAuthorized, TransactionStarted
from ampgate.ocpp.authorization import Authorization
from ampgate.roaming.client import OcpiClient, PartyRefused, PartyUnreachable
from ampgate.roaming.mapping import ocpi_token_types
from ampgate.roaming.parties import REGISTERED, Party
from ampgate.roaming.token_rows import (
    AuthorizationRepository,
    AuthorizationRow,
    NewAuthorization,
    PartyTokenRepository,
    StoredToken,
)
from ampgate.roaming.types import (
    AuthorizationInfo,
    LocationReferences,
    MalformedObject,
    ModuleId,
    StatusCode,
    Token,
    decode,
)
from ampgate.roaming.whitelist import Cached, Decision, Outcome, must_ask, ocpp_status, settle
from ampgate.store.transactions import TransactionRow

log = logging.getLogger(__name__)

# How long an authorization lets its token in at its charger without another decision. mod_commands: no
# real-time authorization of a START_SESSION / RESERVE_NOW token at that charger "within 15 minutes"; a decision
# made here is kept as long, which covers a driver's Authorize, plugging in and StartTransaction.
GRANT = timedelta(minutes=15)
# The default bound on an eMSP's real-time answer. A 1.6 charger's wait for our reply is its own (commonly 30 s
# or more), 2.0.1's MessageTimeout is typically 30 s: 5 s leaves the charger answered with room to spare, and a
# driver at a charger should not wait longer.
AUTHORIZE_TIMEOUT_S = 5.0
# Live authorizations are bound to transactions from the bus; this often (and after a loss) a sweep binds what
# the events missed (or what a 2.0.1 transaction named only after it started).
RECONCILE_INTERVAL_S = 60.0
# Authorizations no transaction used are kept this long after their time, then forgotten (nothing reports them).
KEEP_UNUSED = timedelta(days=7)
PRUNE_INTERVAL_S = 3600.0
# The transactions of a charger looked at when binding: a charger starts few at once.
_RECENT_TRANSACTIONS = 8
_STARTED = str(TransactionStarted.__struct_config__.tag)


class PartyLookup(Protocol):
    """`ampgate.roaming.parties.PartyRepository`."""

    def get(self, party_id: int, /) -> Party | None: ...
    def registered(self) -> list[Party]: ...


class PlaceLookup(Protocol):
    """`ampgate.roaming.locations.LocationBook`."""

    def published_location(self, charger_id: str, /) -> tuple[str, list[str]] | None: ...


class TransactionLookup(Protocol):
    """`ampgate.store.TransactionRepository`: a charger's latest transactions, newest first."""

    def page(self, limit: int, *, charger_id: str | None = None) -> list[TransactionRow]: ...


def _key(charger_id: str, uid: str) -> tuple[str, str]:
    return charger_id, uid.casefold()


def tokens_url(endpoint: str, uid: str, type_: str) -> str:
    """The real-time authorization URL of `uid` at an eMSP's tokens SENDER endpoint."""
    return f"{endpoint.rstrip('/')}/{quote(uid, safe='')}/authorize?{urlencode({'type': type_})}"


class TokenAuthority:
    """See the module docstring. Start `run` in the node's nursery."""

    def __init__(
        self,
        tokens: PartyTokenRepository,
        authorizations: AuthorizationRepository,
        parties: PartyLookup,
        client: OcpiClient,
        places: PlaceLookup,
        transactions: TransactionLookup,
        bus: EventBus,
        clock: Clock,
        *,
        timeout_s: float = AUTHORIZE_TIMEOUT_S,
    ) -> None:
        self.tokens = tokens
        self.authorizations = authorizations
        self._parties = parties
        self._client = client
        self._places = places
        self._transactions = transactions
        self._bus = bus
        self._clock = clock
        self.timeout_s = timeout_s
        # The live authorizations (not used by a transaction, not past their time), the latest per charger and
        # token: what every Authorize and start asks first, without the database.
        self._live: dict[tuple[str, str], AuthorizationRow] = {}
        # Told of every authorization as it is bound to its transaction (the Sessions module's way in).
        self.on_bound: list[Callable[[AuthorizationRow], None]] = []

    # -- running --------------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the live authorizations, then bind them to the transactions that use them until cancelled."""
        with self._bus.subscribe([_STARTED]) as sub:
            for row in self.authorizations.live(self._clock.now()):
                self._live[_key(row.charger_id, row.uid)] = row
            task_status.started()
            next_prune = 0.0
            while True:
                with trio.move_on_after(RECONCILE_INTERVAL_S):
                    while True:
                        item = await sub.receive()
                        if isinstance(item, EventsLost):
                            break
                        if isinstance(item, TransactionStarted) and item.charger_id and item.id_token:
                            await self._bind(item.charger_id, item.id_token, item.transaction_id)
                await self.reconcile()
                if self._clock.monotonic() >= next_prune:
                    next_prune = self._clock.monotonic() + PRUNE_INTERVAL_S
                    await self.authorizations.prune(self._clock.now() - KEEP_UNUSED)

    def live(self, charger_id: str, uid: str) -> AuthorizationRow | None:
        """The live authorization of `uid` at `charger_id`, if any."""
        row = self._live.get(_key(charger_id, uid))
        if row is None:
            return None
        if row.expires_at <= self._clock.now():
            del self._live[_key(charger_id, uid)]
            return None
        return row

    def remember(self, row: AuthorizationRow) -> None:
        """Hold a just-recorded authorization as live (the commands module records those it makes)."""
        self._live[_key(row.charger_id, row.uid)] = row

    def forget(self, row: AuthorizationRow) -> None:
        """Drop `row` from the live ones (its reservation was cancelled)."""
        if self._live.get(_key(row.charger_id, row.uid)) == row:
            del self._live[_key(row.charger_id, row.uid)]

    async def _bind(self, charger_id: str, uid: str, tx_id: int) -> AuthorizationRow | None:
        row = self.live(charger_id, uid)
        if row is None:
            return None
        del self._live[_key(charger_id, uid)]
        if not await self.authorizations.bind(row.id, tx_id):
            return None
        log.info("OCPI: transaction %d at %s uses authorization %d (%s)", tx_id, charger_id, row.id, row.uid)
        bound = self.authorizations.get(row.id)
        if bound is not None:
            for hook in self.on_bound:
                hook(bound)
        return bound

    async def reconcile(self) -> None:
        """Bind live authorizations to the transactions that used them where the bus did not say so."""
        for charger_id, _ in list(self._live):
            for tx in self._transactions.page(_RECENT_TRANSACTIONS, charger_id=charger_id):
                if tx.stopped_at is None and tx.id_token is not None:
                    await self.authorization_for(tx)

    async def authorization_for(self, tx: TransactionRow) -> AuthorizationRow | None:
        """What let transaction `tx` in, when it was an eMSP's token: the authorization it is bound to, or the
        live one of its token at its charger (then bound to it). The Sessions and CDR modules' question."""
        bound = self.authorizations.for_transaction(tx.id)
        if bound is not None or tx.id_token is None:
            return bound
        row = self.live(tx.charger_id, tx.id_token)
        if row is None or row.created_at > tx.started_at + GRANT:
            return None
        return await self._bind(tx.charger_id, tx.id_token, tx.id)

    # -- ExternalTokens ------------------------------------------------------------------------------------------

    def authorize(
        self, charger_id: str, protocol: str, id_token: str, type_: str | None
    ) -> Awaitable[Authorization | None] | None:
        """See `ampgate.ocpp.authorization.ExternalTokens` and the module docstring."""
        granted = self.live(charger_id, id_token)
        if granted is not None:
            return _ready(Authorization("Accepted", None, granted.token.group_id))
        cached = self._cached(id_token, type_)
        if cached is None and not self._askable():
            return None
        return self._decide(charger_id, protocol, id_token, type_, cached)

    def recall(
        self, charger_id: str, protocol: str, id_token: str, type_: str | None
    ) -> Authorization | None:
        """What is known of the token without calling anyone: a live authorization, or the pushed Token's
        validity. None when nothing is."""
        if self.live(charger_id, id_token) is not None:
            return Authorization("Accepted")
        cached = self._cached(id_token, type_)
        if cached is None:
            return None
        status = "Accepted" if cached.token.valid else "Invalid"
        return Authorization(status, None, cached.token.group_id)

    def _cached(self, uid: str, type_: str | None) -> StoredToken | None:
        """The pushed Token the presented one most likely is: of a type the OCPP type maps to, the likeliest type
        first, the latest pushed first."""
        wanted = ocpi_token_types(type_)
        found = [t for t in self.tokens.find(uid) if t.token.type in wanted]
        found.sort(key=lambda t: wanted.index(t.token.type))
        return found[0] if found else None

    def _askable(self, only: int | None = None) -> list[tuple[Party, str]]:
        """The registered parties (all, or party `only`) offering a tokens SENDER endpoint, with its URL."""
        out = []
        parties = self._parties.registered() if only is None else [self._parties.get(only)]
        for p in parties:
            if p is None or p.state != REGISTERED or not p.their_token:
                continue
            url = p.endpoint(ModuleId.TOKENS, "SENDER")
            if url is not None:
                out.append((p, url))
        return out

    async def _decide(
        self, charger_id: str, protocol: str, uid: str, type_: str | None, cached: StoredToken | None
    ) -> Authorization | None:
        held = None if cached is None else Cached(cached.token.whitelist, cached.token.valid)
        outcome: Outcome | None = None
        answer: tuple[Party, AuthorizationInfo] | None = None
        if must_ask(held):
            targets = self._askable(None if cached is None else cached.party_ref)
            ocpi_type = cached.token.type.value if cached else ocpi_token_types(type_)[0].value
            outcome, answer = await self._ask(targets, charger_id, uid, ocpi_type)
        decision = settle(held, outcome)
        status = ocpp_status(decision, protocol)
        token, party_ref = _who(cached, answer)
        self._bus.publish(
            OcpiTokenAuthorized(
                at=self._clock.now(),
                charger_id=charger_id,
                uid=uid,
                party_ref=party_ref,
                allowed=decision.allowed,
                reason=decision.reason,
                method=decision.method.value,
                status=status,
                authorization_reference=answer[1].authorization_reference if answer else None,
            )
        )
        if answer is not None:
            await self._keep(answer[0], answer[1].token, cached)
        if token is None or party_ref is None:
            return None  # nobody knows the token: the node's own answer stands
        if decision.allowed:
            await self._record(charger_id, token, party_ref, decision, answer)
        return Authorization(status, None, token.group_id)

    async def _record(
        self,
        charger_id: str,
        token: Token,
        party_ref: int,
        decision: Decision,
        answer: tuple[Party, AuthorizationInfo] | None,
    ) -> None:
        place = self._places.published_location(charger_id)
        row = await self.authorizations.insert(
            NewAuthorization(
                charger_id=charger_id,
                party_ref=party_ref,
                token=token,
                auth_method=decision.method,
                expires_at=self._clock.now() + GRANT,
                authorization_reference=answer[1].authorization_reference if answer else None,
                location_id=None if place is None else place[0],
            )
        )
        self.remember(row)

    async def _keep(self, party: Party, token: Token, cached: StoredToken | None) -> None:
        """Keep the Token an eMSP answered with, as if it pushed it, when it is the eMSP's own and newer than
        what we hold."""
        owners = {(r.country_code.upper(), r.party_id.upper()) for r in party.roles}
        owners.add((party.country_code.upper(), party.party_id.upper()))
        if (token.country_code.upper(), token.party_id.upper()) not in owners:
            return
        if cached is not None and cached.token.last_updated >= token.last_updated:
            return
        await self.tokens.put(party.id, token)

    # -- real-time authorization -----------------------------------------------------------------------------

    async def _ask(
        self, targets: Sequence[tuple[Party, str]], charger_id: str, uid: str, ocpi_type: str
    ) -> tuple[Outcome, tuple[Party, AuthorizationInfo] | None]:
        """Ask every target at once within `timeout_s`: the first ALLOWED, else the first refusal, else UNKNOWN
        when every one said so, else UNREACHABLE."""
        place = self._places.published_location(charger_id)
        refs = None if place is None else LocationReferences(location_id=place[0], evse_uids=place[1] or None)
        answers: list[tuple[Outcome, tuple[Party, AuthorizationInfo] | None]] = []

        async def one(party: Party, url: str, scope: trio.CancelScope) -> None:
            outcome, info = await self._ask_one(party, url, uid, ocpi_type, refs)
            answers.append((outcome, None if info is None else (party, info)))
            if outcome == Outcome.ALLOWED:
                scope.cancel()

        with trio.move_on_after(self.timeout_s) as timer:
            async with trio.open_nursery() as nursery:
                for party, url in targets:
                    nursery.start_soon(one, party, url, nursery.cancel_scope)
        if timer.cancelled_caught:
            log.warning("OCPI: real-time authorization of %s took over %g s", uid, self.timeout_s)
        for outcome, info in answers:
            if outcome == Outcome.ALLOWED:
                return outcome, info
        for outcome, info in answers:
            if outcome not in (Outcome.UNKNOWN, Outcome.UNREACHABLE):
                return outcome, info
        if targets and len(answers) == len(targets) and all(o == Outcome.UNKNOWN for o, _ in answers):
            return Outcome.UNKNOWN, None
        return Outcome.UNREACHABLE, None

    async def _ask_one(
        self, party: Party, endpoint: str, uid: str, ocpi_type: str, refs: LocationReferences | None
    ) -> tuple[Outcome, AuthorizationInfo | None]:
        url = tokens_url(endpoint, uid, ocpi_type)
        assert party.their_token is not None
        try:
            envelope = await self._client.call(
                "POST", url, party.their_token, body=refs, to=(party.country_code, party.party_id)
            )
        except PartyUnreachable as e:
            log.warning("OCPI: real-time authorization at %s*%s: %s", party.country_code, party.party_id, e)
            return Outcome.UNREACHABLE, None
        except PartyRefused as e:
            if e.http_status == 404 or e.status_code == StatusCode.UNKNOWN_TOKEN:
                return Outcome.UNKNOWN, None
            # Not an answer about the token (2002 not enough information, our credentials refused, ...): no
            # usable answer, which the whitelist rules treat as an outage.
            log.warning("OCPI: real-time authorization at %s*%s: %s", party.country_code, party.party_id, e)
            return Outcome.UNREACHABLE, None
        if not envelope.has_data():
            return Outcome.UNREACHABLE, None
        try:
            info = decode(envelope.data, AuthorizationInfo)
        except MalformedObject as e:
            log.warning(
                "OCPI: %s*%s answered an AuthorizationInfo we cannot read: %s: %s",
                party.country_code,
                party.party_id,
                e.field,
                e.message,
            )
            return Outcome.UNREACHABLE, None
        return Outcome(info.allowed.value), info


def _who(
    cached: StoredToken | None, answer: tuple[Party, AuthorizationInfo] | None
) -> tuple[Token | None, int | None]:
    """The token decided on and the eMSP that owns it: its answer's when it answered, else the pushed one."""
    if answer is not None:
        return answer[1].token, answer[0].id
    if cached is not None:
        return cached.token, cached.party_ref
    return None, None


async def _ready(value: Authorization | None) -> Authorization | None:
    return value
