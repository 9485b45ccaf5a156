"""The Commands module's logic, Receiver side (mod_commands): an eMSP's START_SESSION, STOP_SESSION,
UNLOCK_CONNECTOR, RESERVE_NOW and CANCEL_RESERVATION become OCPP calls to the charger, in its version.

Each command is answered at once with a CommandResponse: ACCEPTED when it goes to a charger (with the seconds
within which the result follows: the node's OCPP call timeout plus the time to deliver the result), REJECTED
when it cannot (the charger is offline or not accepted, the token is not the caller's, the session is not one of
its tokens', …), UNKNOWN_SESSION for a STOP_SESSION of a session we do not know, NOT_SUPPORTED for a command
outside these five. A Location or EVSE (or connector) we do not publish is status 2003 with a REJECTED response,
as the spec's own example does. Then, from a task of its own, the call goes to the charger and the charger's
answer (or its silence) becomes the CommandResult POSTed to the command's `response_url` (`RESULTS`, one
table). A result the eMSP does not take is logged, not retried: OCPI asks that nothing be queued.

The OCPP calls go the ways the operator's do: start, stop and unlock through the command queue's `send` (so
they are recorded like any command: `GET /api/v1/commands/{id}`), reservations through the reservations service
(the node assigns the reservation id the charger gets, as mod_commands asks: an eMSP's reservation_id never
reaches a charger). What is version-specific is in `command_rules`, once.

A START_SESSION or RESERVE_NOW token is authorized by its eMSP (the spec: the CPO SHALL NOT check it): the
command records an authorization of it at the charger (`TokenAuthority`), which lets it in there without asking
again, carries its `authorization_reference` to the transaction it starts, and (2.0.1) names itself as the
`remoteStartId`. A reservation the node or the charger cancels (an operator, a faulted 1.6 connector) is told
to its eMSP as CANCELED_RESERVATION at the RESERVE_NOW's response_url.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any, Protocol

import msgspec
import trio

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.errors import AmpgateError
from ampgate.events import OcpiCommandFinished, ReservationEnded
from ampgate.ocpp.envelope import OCPP16
from ampgate.reservations.repository import ReservationRow
from ampgate.reservations.service import ReservationRefusedError
from ampgate.roaming.authority import GRANT, TokenAuthority
from ampgate.roaming.client import OcpiClient, PartyRefused, PartyUnreachable
from ampgate.roaming.command_rules import (
    ID_TAG_MAX_16,
    RESULTS,
    result_of,
    result_of_error,
    start_refused,
    start_request,
    stop_request,
    unlock_request,
)
from ampgate.roaming.credentials import Caller
from ampgate.roaming.mapping import ocpp_token_type, transaction_of
from ampgate.roaming.parties import Party
from ampgate.roaming.token_rows import AuthorizationRow, NewAuthorization, as_utc
from ampgate.roaming.types import (
    AuthMethod,
    CancelReservation,
    CommandResponse,
    CommandResponseType,
    CommandResult,
    CommandResultType,
    CommandType,
    DisplayText,
    EvseStatus,
    ReserveNow,
    StartSession,
    StopSession,
    Token,
    UnlockConnector,
)
from ampgate.store.transactions import TransactionRow

log = logging.getLogger(__name__)

R = CommandResultType

# What the CommandResponse's timeout adds to the OCPP call's: the POST of the result to the eMSP (the OCPI
# client's own bound).
RESULT_MARGIN_S = 10.0
_ENDED = str(ReservationEnded.__struct_config__.tag)


class Refused(Exception):
    """The command cannot go: answered with a CommandResponse of `result` (REJECTED unless said) and
    `message`; `status_code` 2003 for a Location, EVSE or connector we do not publish."""

    def __init__(
        self,
        message: str,
        result: CommandResponseType = CommandResponseType.REJECTED,
        status_code: int = 1000,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.result = result
        self.status_code = status_code


def _unknown_place(what: str) -> Refused:
    return Refused(f"{what} is not one we publish", status_code=2003)


class Places(Protocol):
    """`ampgate.roaming.locations.LocationBook`."""

    def place(self, location_id: str, uid: str, /) -> tuple[str, int, EvseStatus, tuple[int, ...]] | None: ...
    def chargers_at(self, location_id: str, /) -> list[str]: ...


class Readiness(Protocol):
    """`ampgate.ocpp.commander.Commander.ready`: the charger's protocol, or an AmpgateError saying why it cannot
    be sent `action` now."""

    def ready(self, charger_id: str, action: str, /) -> str: ...


class Sender(Protocol):
    """`ampgate.commands.CommandQueue.send`: the call, recorded, and the charger's reply."""

    async def send(self, charger_id: str, action: str, payload: Any, /) -> tuple[str, Any]: ...


class ReservationPort(Protocol):
    """`ampgate.reservations.Reservations`."""

    def get(self, rid: int, /) -> ReservationRow | None: ...
    async def create(
        self,
        *,
        charger_id: str,
        expires_at: datetime,
        id_token: str,
        evse_id: int | None = None,
        connector_id: int | None = None,
        connector_type: str | None = None,
        id_token_type: str | None = None,
        group_id_token: str | None = None,
    ) -> ReservationRow: ...
    async def cancel(self, rid: int, /) -> ReservationRow: ...


class TransactionReads(Protocol):
    def get(self, tx_id: int, /) -> TransactionRow | None: ...


class PartyReads(Protocol):
    def get(self, party_id: int, /) -> Party | None: ...


class _Target(msgspec.Struct, frozen=True):
    """Where a command goes: the charger, its protocol, the EVSE number (None: the charger chooses), the EVSE's
    uid and status when one was named."""

    charger_id: str
    protocol: str
    evse: int | None
    uid: str | None
    status: EvseStatus | None


class CommandReceiver:
    """See the module docstring. Start `run` in the node's nursery (it hosts the commands' calls)."""

    def __init__(
        self,
        places: Places,
        authority: TokenAuthority,
        readiness: Readiness,
        sender: Sender,
        reservations: ReservationPort,
        transactions: TransactionReads,
        parties: PartyReads,
        client: OcpiClient,
        bus: EventBus,
        clock: Clock,
        *,
        call_timeout_s: float,
    ) -> None:
        self._places = places
        self._authority = authority
        self._readiness = readiness
        self._sender = sender
        self._reservations = reservations
        self._transactions = transactions
        self._parties = parties
        self._client = client
        self._bus = bus
        self._clock = clock
        self.timeout_s = math.ceil(call_timeout_s + RESULT_MARGIN_S)
        self._nursery: trio.Nursery | None = None
        # Our reservations an eMSP's own CANCEL_RESERVATION (or a replacing RESERVE_NOW) is ending: not told back
        # to it as CANCELED_RESERVATION.
        self._cancelling: set[int] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the commands' calls, and tell eMSPs of their reservations cancelled on our side, until
        cancelled."""
        with self._bus.subscribe([_ENDED]) as sub:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                async for event in sub:
                    if isinstance(event, ReservationEnded) and event.reason in ("cancelled", "removed"):
                        self._cancelled_here(event.reservation_id)

    # -- the commands -----------------------------------------------------------------------------------------

    async def receive(self, who: Caller, command: str, body: Any) -> tuple[CommandResponse, int]:
        """The CommandResponse to `command` with its object `body` (decoded by the route), and the envelope's
        status code (1000, or 2003 for an unknown place)."""
        try:
            if command == CommandType.START_SESSION:
                await self._start(who, body)
            elif command == CommandType.STOP_SESSION:
                await self._stop(who, body)
            elif command == CommandType.UNLOCK_CONNECTOR:
                self._unlock(who, body)
            elif command == CommandType.RESERVE_NOW:
                await self._reserve(who, body)
            elif command == CommandType.CANCEL_RESERVATION:
                self._cancel(who, body)
            else:
                raise Refused(f"{command} is not a command we support", CommandResponseType.NOT_SUPPORTED)
        except Refused as r:
            log.info("OCPI %s from %s: %s: %s", command, _code(who.party), r.result.value, r.message)
            return self._response(r.result, r.message), r.status_code
        return self._response(CommandResponseType.ACCEPTED), 1000

    def _response(self, result: CommandResponseType, message: str | None = None) -> CommandResponse:
        text = None if message is None else [DisplayText(language="en", text=message[:512])]
        return CommandResponse(result=result, timeout=self.timeout_s, message=text)

    async def _start(self, who: Caller, s: StartSession) -> None:
        _owned(who, s.token)
        target = self._target(s.location_id, s.evse_uid, "RequestStartTransaction", s.connector_id)
        _fits(target, s.token)
        row = await self._authorize(who, target, s.token, "START_SESSION", s.response_url, s.location_id, s)
        self._authority.remember(row)
        name, payload = start_request(target.protocol, s.token, target.evse, row.id)
        self._spawn(
            who, CommandType.START_SESSION, s.response_url, self._start_at(target, name, payload, row)
        )

    async def _stop(self, who: Caller, s: StopSession) -> None:
        tx_id = transaction_of(s.session_id)
        tx = None if tx_id is None else self._transactions.get(tx_id)
        if tx is None:
            raise Refused(f"no session {s.session_id!r}", CommandResponseType.UNKNOWN_SESSION)
        used = await self._authority.authorization_for(tx)
        if used is None or used.party_ref != who.party.id:
            raise Refused(f"session {s.session_id!r} was not started with a token of yours")
        if tx.stopped_at is not None:
            raise Refused(f"session {s.session_id!r} has ended")
        action, payload = stop_request(tx)
        protocol = self._ready(tx.charger_id, action)
        if protocol != tx.protocol:
            raise Refused(f"the charge point now speaks {protocol}; the session began in {tx.protocol}")
        target = _Target(tx.charger_id, protocol, tx.evse_id, None, None)
        self._spawn(who, CommandType.STOP_SESSION, s.response_url, self._call(target, action, payload))

    def _unlock(self, who: Caller, u: UnlockConnector) -> None:
        found = self._places.place(u.location_id, u.evse_uid)
        if found is None:
            raise _unknown_place(f"EVSE {u.evse_uid!r} of location {u.location_id!r}")
        charger_id, evse, status, connectors = found
        if not u.connector_id.isdigit() or int(u.connector_id) not in connectors:
            raise _unknown_place(f"connector {u.connector_id!r} of EVSE {u.evse_uid!r}")
        protocol = self._ready(charger_id, "UnlockConnector")
        action, payload = unlock_request(protocol, evse, int(u.connector_id))
        target = _Target(charger_id, protocol, evse, u.evse_uid, status)
        self._spawn(who, CommandType.UNLOCK_CONNECTOR, u.response_url, self._call(target, action, payload))

    async def _reserve(self, who: Caller, r: ReserveNow) -> None:
        _owned(who, r.token)
        expires_at = as_utc(r.expiry_date)
        if expires_at <= self._clock.now():
            raise Refused("expiry_date has passed")
        target = self._target(r.location_id, r.evse_uid, "ReserveNow")
        _fits(target, r.token)
        replaced = self._authority.authorizations.by_reservation(who.party.id, r.reservation_id)
        row = await self._authorize(who, target, r.token, "RESERVE_NOW", r.response_url, r.location_id, r)
        self._spawn(
            who,
            CommandType.RESERVE_NOW,
            r.response_url,
            self._reserve_at(target, r, expires_at, row, replaced),
        )

    def _cancel(self, who: Caller, c: CancelReservation) -> None:
        made = self._authority.authorizations.by_reservation(who.party.id, c.reservation_id)
        if made is None:
            raise Refused(f"no reservation {c.reservation_id!r} of yours")
        if made.reservation_ref is None:
            raise Refused(f"reservation {c.reservation_id!r} was not taken by the charge point")
        self._spawn(who, CommandType.CANCEL_RESERVATION, c.response_url, self._cancel_at(made))

    # -- where, and whether it can go ------------------------------------------------------------------------

    def _ready(self, charger_id: str, action: str) -> str:
        try:
            return self._readiness.ready(charger_id, action)
        except AmpgateError as e:
            raise Refused(f"the charge point cannot take commands now: {e.message}") from None

    def _target(
        self,
        location_id: str,
        evse_uid: str | None,
        action: str,
        connector_id: str | None = None,
    ) -> _Target:
        """The charger (and EVSE) a command naming `location_id` (and `evse_uid`) goes to, if it can take
        `action` now (either version's name: readiness is the charger's link and boot state). Without an EVSE
        the charger chooses, which needs the Location to be one charger."""
        if evse_uid is None:
            if connector_id is not None:
                raise Refused("connector_id needs evse_uid")
            chargers = self._places.chargers_at(location_id)
            if not chargers:
                raise _unknown_place(f"location {location_id!r}")
            if len(chargers) > 1:
                raise Refused(f"location {location_id!r} has {len(chargers)} charge points: name an evse_uid")
            charger_id, evse, uid, status = chargers[0], None, None, None
        else:
            found = self._places.place(location_id, evse_uid)
            if found is None:
                raise _unknown_place(f"EVSE {evse_uid!r} of location {location_id!r}")
            charger_id, evse, status, connectors = found
            uid = evse_uid
            if connector_id is not None and (
                not connector_id.isdigit() or int(connector_id) not in connectors
            ):
                raise _unknown_place(f"connector {connector_id!r} of EVSE {evse_uid!r}")
        return _Target(charger_id, self._ready(charger_id, action), evse, uid, status)

    async def _authorize(
        self,
        who: Caller,
        target: _Target,
        token: Token,
        command: str,
        response_url: str,
        location_id: str,
        body: StartSession | ReserveNow,
    ) -> AuthorizationRow:
        now = self._clock.now()
        expires_at = now + GRANT
        reservation_id = None
        if isinstance(body, ReserveNow):
            expires_at = max(expires_at, as_utc(body.expiry_date))
            reservation_id = body.reservation_id
        return await self._authority.authorizations.insert(
            NewAuthorization(
                charger_id=target.charger_id,
                party_ref=who.party.id,
                token=token,
                auth_method=AuthMethod.COMMAND,
                expires_at=expires_at,
                authorization_reference=body.authorization_reference,
                location_id=location_id,
                evse_uid=target.uid,
                command=command,
                response_url=response_url,
                reservation_id=reservation_id,
            )
        )

    # -- at the charger -----------------------------------------------------------------------------------------

    def _spawn(self, who: Caller, command: CommandType, response_url: str, work: Any) -> None:
        assert self._nursery is not None, "the command receiver is not running"
        self._nursery.start_soon(self._finish, who.party.id, command, response_url, work)

    async def _call(self, target: _Target, action: str, payload: dict[str, Any]) -> CommandResult:
        try:
            _, reply = await self._sender.send(target.charger_id, action, payload)
        except AmpgateError as e:
            return _result(result_of_error(e), e.message)
        result = result_of(action, reply)
        if result == R.REJECTED and action in ("RemoteStartTransaction", "RequestStartTransaction"):
            result = start_refused(target.status)
        return _result(result)

    async def _start_at(
        self, target: _Target, action: str, payload: dict[str, Any], row: AuthorizationRow
    ) -> CommandResult:
        result = await self._call(target, action, payload)
        if result.result != R.ACCEPTED:
            self._authority.forget(row)  # nothing starts: the token is not let in there on its strength
        return result

    async def _reserve_at(
        self,
        target: _Target,
        r: ReserveNow,
        expires_at: datetime,
        row: AuthorizationRow,
        replaced: AuthorizationRow | None,
    ) -> CommandResult:
        if replaced is not None and replaced.reservation_ref is not None:
            # The same reservation_id again replaces it (mod_commands): ours is cancelled, then made anew.
            old = self._reservations.get(replaced.reservation_ref)
            self._authority.forget(replaced)
            if old is not None and old.state == "active":
                self._cancelling.add(old.id)
                try:
                    await self._reservations.cancel(old.id)
                except AmpgateError as e:
                    log.warning("OCPI: replacing reservation %d: its cancel failed: %s", old.id, e)
        group = r.token.group_id
        if target.protocol == OCPP16 and group is not None and len(group) > ID_TAG_MAX_16:
            group = None  # a 1.6 parentIdTag is at most 20; cutting one could merge two groups
        try:
            made = await self._reservations.create(
                charger_id=target.charger_id,
                expires_at=expires_at,
                id_token=r.token.uid,
                evse_id=None if target.protocol == OCPP16 else target.evse,
                connector_id=target.evse if target.protocol == OCPP16 else None,
                id_token_type=None if target.protocol == OCPP16 else ocpp_token_type(r.token.type),
                group_id_token=group,
            )
        except ReservationRefusedError as e:
            status = e.details.get("status") if isinstance(e.details, dict) else None
            return _result(RESULTS.get(("ReserveNow", str(status)), R.REJECTED))
        except AmpgateError as e:
            return _result(result_of_error(e), e.message)
        await self._authority.authorizations.set_reservation(row.id, made.id)
        stored = self._authority.authorizations.get(row.id)
        if stored is not None:
            self._authority.remember(stored)
        return _result(R.ACCEPTED)

    async def _cancel_at(self, made: AuthorizationRow) -> CommandResult:
        assert made.reservation_ref is not None
        before = self._reservations.get(made.reservation_ref)
        if before is None or before.state != "active":
            self._authority.forget(made)
            return _result(R.UNKNOWN_RESERVATION)
        self._cancelling.add(before.id)
        try:
            await self._reservations.cancel(before.id)
        except AmpgateError as e:
            self._cancelling.discard(before.id)
            return _result(result_of_error(e), e.message)
        self._authority.forget(made)
        return _result(R.ACCEPTED)

    def _cancelled_here(self, reservation_ref: int) -> None:
        if reservation_ref in self._cancelling:
            self._cancelling.discard(reservation_ref)
            return
        made = self._authority.authorizations.by_reservation_ref(reservation_ref)
        if made is None or made.response_url is None or self._nursery is None:
            return
        self._authority.forget(made)
        self._nursery.start_soon(
            self._finish,
            made.party_ref,
            CommandType.RESERVE_NOW,
            made.response_url,
            _ready(R.CANCELED_RESERVATION),
        )

    async def _finish(self, party_ref: int, command: CommandType, response_url: str, work: Any) -> None:
        """Run the command's calls, then POST its CommandResult to `response_url` (once; a failure is logged)."""
        result: CommandResult = await work
        party = self._parties.get(party_ref)
        delivered = False
        if party is not None and party.their_token:
            try:
                await self._client.call(
                    "POST",
                    response_url,
                    party.their_token,
                    body=result,
                    to=(party.country_code, party.party_id),
                )
                delivered = True
            except (PartyUnreachable, PartyRefused) as e:
                log.warning("OCPI: the %s result for %s was not taken: %s", command.value, _code(party), e)
        self._bus.publish(
            OcpiCommandFinished(
                at=self._clock.now(),
                party_ref=party_ref,
                command=command.value,
                result=result.result.value,
                delivered=delivered,
                message=result.message[0].text if result.message else None,
            )
        )


def _owned(who: Caller, token: Token) -> None:
    """mod_commands: an eMSP SHALL only use its own Tokens in a command."""
    if not who.owns(token.country_code, token.party_id):
        raise Refused(f"token {token.uid!r} belongs to {token.country_code}*{token.party_id}, not to you")


def _fits(target: _Target, token: Token) -> None:
    if target.protocol == OCPP16 and len(token.uid) > ID_TAG_MAX_16:
        raise Refused(f"the charge point speaks OCPP 1.6, whose idTag is at most {ID_TAG_MAX_16} characters")


def _result(result: CommandResultType, message: str | None = None) -> CommandResult:
    text = None if message is None else [DisplayText(language="en", text=message[:512])]
    return CommandResult(result=result, message=text)


async def _ready(result: CommandResultType) -> CommandResult:
    return _result(result)


def _code(party: Party) -> str:
    return f"{party.country_code}*{party.party_id}"
