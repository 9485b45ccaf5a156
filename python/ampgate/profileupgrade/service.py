"""`ProfileUpgrades`: raise a charger's OCPP security profile with one API call, following the specifications'
flow (ampgate.profileupgrade.machine says which), with its progress as `charger.security_profile_upgrade` events.

- `start` checks what the node can accept (TLS for profile 2, a client CA for 3), that the target is above
  the charger's floor and that no other upgrade of it is open; records the upgrade (durably) and drives its
  commands through the Commander in a task of its own, recording each step before the next command goes.
- The charger is accepted on the new profile only once it connects with it: then its floor is raised (the
  gateway refuses lower profiles from then on). Until then it may come back on its old profile (the
  spec's fallback): that is counted, and the upgrade waits on until its deadline.
- Connections are heard on the bus (`charger.connected`, which carries the connection's profile); as events
  are hints, a once-a-second tick also reads the charger's presence, which finishes an upgrade whose event was
  lost, and fails those past their deadline.
- At start, an upgrade that was sending commands fails (`node_restarted`: what the charger took is unknown);
  one waiting for the reconnect waits on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
import trio

from ampgate.bus import EventsLost
from ampgate.clock import Clock
from ampgate.errors import AmpgateError, ConflictError, NotFoundError, ValidationError
from ampgate.events import ChargerConnected, SecurityProfileUpgradeChanged
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.profileupgrade import machine
from ampgate.profileupgrade.machine import Target, Upgrade
from ampgate.profileupgrade.repository import UpgradeRepository, UpgradeRow

log = logging.getLogger(__name__)

# How long a charger has, from taking the commands, to come back on the new profile: a reset, a boot and the
# connection attempts of its fallback list take minutes, and Reset OnIdle waits for a transaction to end.
DEFAULT_RECONNECT_S = 3600.0
RECONNECT_MAX_S = 7 * 86_400.0
TICK_S = 1.0
CSMS_URL_MAX = 512  # 2.0.1 NetworkConnectionProfileType.ocppCsmsUrl


class Commands(Protocol):
    """The Commander."""

    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


class ChargerView(Protocol):
    @property
    def security_profile(self) -> int: ...
    @property
    def protocol(self) -> str | None: ...


class Chargers(Protocol):
    def get(self, charger_id: str, /) -> ChargerView | None: ...


class LinkView(Protocol):
    @property
    def online(self) -> bool: ...
    @property
    def protocol(self) -> str | None: ...
    @property
    def security_profile(self) -> int: ...


class Presence(Protocol):
    def get(self, charger_id: str, /) -> LinkView | None: ...


class Bus(Protocol):
    def publish(self, event: Any, /) -> None: ...
    def subscribe(self, types: Any = None, capacity: int = ...) -> Any: ...


RaiseFloor = Callable[[str, int], Awaitable[object]]
"""Sets the charger's lowest allowed security profile (the registration's `set_security_profile`)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """What the node accepts: wss at all (profile 2), and client certificates (profile 3)."""

    tls: bool = False
    client_ca: bool = False


class ProfileUpgrades:
    def __init__(
        self,
        repo: UpgradeRepository,
        commands: Commands,
        chargers: Chargers,
        presence: Presence,
        raise_floor: RaiseFloor,
        bus: Bus,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._repo = repo
        self._commands = commands
        self._chargers = chargers
        self._presence = presence
        self._raise_floor = raise_floor
        self._bus = bus
        self._clock = clock
        self.settings = settings
        # Upgrades not final, by charger (at most one each).
        self._open: dict[str, Upgrade] = {}
        self._nursery: trio.Nursery | None = None

    # -- the API's ---------------------------------------------------------------------------------------------

    async def start(
        self,
        charger_id: str,
        security_profile: int,
        *,
        csms_url: str | None = None,
        configuration_slot: int = 1,
        reconnect_s: float = DEFAULT_RECONNECT_S,
    ) -> UpgradeRow:
        """Begin raising `charger_id` to `security_profile`. Raises NotFoundError (field "id"),
        ValidationError (security_profile, csms_url, configuration_slot, reconnect_s) and ConflictError:
        upgrade_in_progress, profile_not_higher, tls_not_configured, client_ca_not_configured,
        charger_offline (its protocol is unknown until it connects)."""
        if self._nursery is None:
            raise ConflictError("the node is starting", code="not_ready")
        row = self._chargers.get(charger_id)
        if row is None:
            raise NotFoundError(f"charger {charger_id!r} is not registered", field="id")
        if security_profile not in (2, 3) or isinstance(security_profile, bool):
            raise ValidationError("security_profile must be 2 or 3", field="security_profile")
        if not 1.0 <= reconnect_s <= RECONNECT_MAX_S:
            raise ValidationError(f"reconnect_s is 1 to {RECONNECT_MAX_S:g}", field="reconnect_s")
        if not 1 <= configuration_slot <= 16:
            raise ValidationError("configuration_slot is 1 to 16", field="configuration_slot")
        if security_profile <= row.security_profile:
            raise ConflictError(
                f"charger {charger_id!r} is already at security profile {row.security_profile}",
                code="profile_not_higher",
                field="security_profile",
            )
        if not self.settings.tls:
            raise ConflictError(
                "this node serves no wss (--ocpp-tls-port): the charger could not connect with profile 2 or 3",
                code="tls_not_configured",
                field="security_profile",
            )
        if security_profile == 3 and not self.settings.client_ca:
            raise ConflictError(
                "this node checks no client certificates (--tls-client-ca): profile 3 could not connect",
                code="client_ca_not_configured",
                field="security_profile",
            )
        if charger_id in self._open:
            raise ConflictError(
                f"charger {charger_id!r} has an upgrade under way (id {self._open[charger_id].id})",
                code="upgrade_in_progress",
            )
        link = self._presence.get(charger_id)
        protocol = link.protocol if link is not None and link.online else None
        if protocol not in (OCPP16, OCPP201):
            raise ConflictError(f"charger {charger_id!r} is not connected", code="charger_offline")
        if protocol == OCPP201:
            if csms_url is None:
                raise ValidationError(
                    "csms_url is required for an OCPP 2.0.1 charger: the wss URL it is to connect to, "
                    "without its id",
                    field="csms_url",
                )
            if not csms_url.startswith("wss://") or len(csms_url) > CSMS_URL_MAX:
                raise ValidationError(
                    f"csms_url is a wss:// URL of at most {CSMS_URL_MAX} characters", field="csms_url"
                )
        u = Upgrade(
            id=0,
            charger_id=charger_id,
            protocol=protocol,
            from_profile=row.security_profile,
            target=Target(
                security_profile=security_profile,
                csms_url=csms_url if protocol == OCPP201 else None,
                configuration_slot=configuration_slot,
            ),
            deadline=0.0,
            reconnect_s=reconnect_s,
        )
        self._open[charger_id] = u
        try:
            created = await self._repo.add(u)
        except BaseException:
            del self._open[charger_id]
            raise
        self._publish(u)
        self._nursery.start_soon(self._drive, u)
        return created

    async def cancel(self, charger_id: str, upgrade_id: int) -> UpgradeRow:
        """Cancel an upgrade not yet final (idempotent: a final one is returned as it is). What the charger
        took stays taken; its floor is not raised. Raises NotFoundError(field "upgrade_id")."""
        row = self.get(charger_id, upgrade_id)
        u = self._open.get(charger_id)
        if u is not None and u.id == upgrade_id and machine.cancel(u):
            del self._open[charger_id]
            await self._record(u)
            row = self.get(charger_id, upgrade_id)
        assert row is not None
        return row

    def get(self, charger_id: str, upgrade_id: int) -> UpgradeRow:
        row = self._repo.get(charger_id, upgrade_id)
        if row is None:
            raise NotFoundError(f"no upgrade {upgrade_id} of charger {charger_id!r}", field="upgrade_id")
        return row

    def page(self, charger_id: str, limit: int, before: int | None) -> list[UpgradeRow]:
        return self._repo.page(charger_id, limit, before)

    # -- running ---------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for u in self._repo.open():
            if machine.interrupted(u):
                await self._record(u)
            else:
                self._open[u.charger_id] = u
        with self._bus.subscribe([ChargerConnected.__struct_config__.tag]) as sub:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._listen, sub)
                nursery.start_soon(self._tick)
                task_status.started()

    async def _drive(self, u: Upgrade) -> None:
        """Send the plan's commands one after another, recording each answer."""
        while (call := machine.next_call(u)) is not None:
            action, payload = call
            try:
                reply = await self._commands.call(u.charger_id, action, payload)
            except AmpgateError as e:
                if u.state != machine.CONFIGURING:
                    return  # cancelled meanwhile
                machine.command_failed(u, f"{e.code}: {e.message}")
            else:
                if u.state != machine.CONFIGURING:
                    return
                machine.answered(u, reply, self._clock.wall())
            await self._record(u)
        # Connected with the new profile before the last answer came back (a fast charger): done already.
        self._check_presence(u)

    async def _listen(self, sub: Any) -> None:
        async for ev in sub:
            if isinstance(ev, EventsLost):
                continue  # the tick reads the presence of every open upgrade
            if not isinstance(ev, ChargerConnected) or ev.charger_id is None:
                continue
            u = self._open.get(ev.charger_id)
            if u is not None and u.state == machine.AWAITING_RECONNECT:
                await self._connected(u, ev.security_profile)

    async def _tick(self) -> None:
        while True:
            await trio.sleep(TICK_S)
            now = self._clock.wall()
            for u in list(self._open.values()):
                self._check_presence(u)
                if u.state == machine.AWAITING_RECONNECT and machine.expire(u, now):
                    await self._record(u)

    def _check_presence(self, u: Upgrade) -> None:
        """Reconcile with the charger's live link: on the new profile now means completed."""
        link = self._presence.get(u.charger_id)
        if (
            u.state == machine.AWAITING_RECONNECT
            and link is not None
            and link.online
            and link.security_profile >= u.target.security_profile
            and self._nursery is not None
        ):
            self._nursery.start_soon(self._connected, u, link.security_profile)

    async def _connected(self, u: Upgrade, profile: int) -> None:
        if u.state != machine.AWAITING_RECONNECT:
            return
        if machine.connected(u, profile):
            try:
                await self._raise_floor(u.charger_id, u.target.security_profile)
            except AmpgateError as e:  # the charger was deleted meanwhile
                u.state, u.reason, u.detail = machine.FAILED, machine.COMMAND_FAILED, e.message
        await self._record(u)

    async def _record(self, u: Upgrade) -> None:
        if u.state in machine.FINAL and self._open.get(u.charger_id) is u:
            del self._open[u.charger_id]
        await self._repo.save(u)
        self._publish(u)
        log.info(
            "charger %s: security profile upgrade %d to %d %s%s",
            u.charger_id,
            u.id,
            u.target.security_profile,
            u.state,
            f" ({u.reason}: {u.detail})" if u.reason else "",
        )

    def _publish(self, u: Upgrade) -> None:
        plan = machine.steps(u.protocol)
        self._bus.publish(
            SecurityProfileUpgradeChanged(
                at=self._clock.now(),
                charger_id=u.charger_id,
                upgrade_id=u.id,
                state=u.state,
                from_profile=u.from_profile,
                to_profile=u.target.security_profile,
                step=plan[u.step] if u.state == machine.CONFIGURING else None,
                reason=u.reason,
                detail=u.detail,
                fallbacks=u.fallbacks,
            )
        )
