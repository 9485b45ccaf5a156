"""The node: the one object graph of a running ampgate control plane, built in one place.

`Node.run` starts, in order: the store (and its writer thread), the gateway (listening socket, worker
processes, the handshake table, the event pump) and the HTTP API (Litestar on Hypercorn, same trio loop).
Shutdown is the reverse: workers close every charger with 1001, the API stops, the store flushes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from ampgate import _native
from ampgate.clock import Clock, iso
from ampgate.config import NodeConfig
from ampgate.connectivity import PresenceRegistry
from ampgate.errors import ChargerOfflineError, ChargerTimeoutError, ConflictError, NotFoundError
from ampgate.gateway import Gateway
from ampgate.ocpp import OcppRouter, actions, local_list
from ampgate.ocpp.authorization import Authorizer
from ampgate.ocpp.data_transfer import DataTransferRegistry
from ampgate.ocpp.firmware import FirmwareHandlers
from ampgate.ocpp.router import ACCEPTED, PENDING
from ampgate.ocpp.status import StatusHandlers
from ampgate.ocpp.transactions import TransactionHandlers
from ampgate.store import Store

log = logging.getLogger(__name__)

VERSION = "0.1.0"
# A charger whose new connection authenticated replaces its old one (keep-new); the old socket hears this.
REPLACED_CODE = 1000
REPLACED_REASON = "replaced by a newer connection of this charger"
# The only commands a Pending charger is sent [B02]: configuration, and asking it to send something.
PENDING_COMMANDS = frozenset(
    {
        "GetVariables",
        "SetVariables",
        "GetConfiguration",
        "ChangeConfiguration",
        "TriggerMessage",
    }
)


class Node:
    """A running ampgate node. Build it with a config, then `await nursery.start(node.run)`."""

    def __init__(self, config: NodeConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.store = Store(config.db_path, now=self.clock.now)
        self.presence = PresenceRegistry()
        # Chargers accepted once (registered by an operator or accepted at a boot): decides boots and lets a
        # reconnecting charger be served without a new BootNotification. ~80 bytes per charger.
        self.accepted: set[str] = set(self.store.accepted_ids())
        self.ocpp = OcppRouter(self)
        self.authorizer = Authorizer(self)
        self.data_transfer = DataTransferRegistry()
        self._register_handlers()
        self.gateway = Gateway(self)
        self.api_port = 0
        self.first_admin_token: str | None = None
        self.started_at: float | None = None
        self._stop = trio.Event()
        self._nursery: trio.Nursery | None = None

    def _register_handlers(self) -> None:
        """The OCPP business logic, wired into the router in one place."""
        self.authorizer.register(self.ocpp)
        TransactionHandlers(self, self.authorizer).register(self.ocpp)
        StatusHandlers(self).register(self.ocpp)
        FirmwareHandlers(self).register(self.ocpp)
        self.data_transfer.attach(self.ocpp)

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until `request_stop()` (or cancellation). Raises OSError if a port cannot be bound."""
        async with trio.open_nursery() as outer:
            await outer.start(self.store.run)
            if self.store.count_tokens() == 0:
                self.first_admin_token = self.store.create_token("admin", label="first start")
            try:
                async with trio.open_nursery() as inner:
                    self._nursery = inner
                    await inner.start(self.gateway.run)
                    await inner.start(self._serve_api)
                    self.started_at = self.clock.wall()
                    self._write_ready_file()
                    task_status.started(self)
                    await self._stop.wait()
                    await self.gateway.stop()
                    inner.cancel_scope.cancel()
            finally:
                # Cancelling the store's task flushes every queued write before it returns.
                outer.cancel_scope.cancel()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `fn(*args)` as a task of the running node (cancelled at shutdown). For work started from the
        synchronous event handlers, such as a reply that must wait for a commit."""
        assert self._nursery is not None, "the node is not running"
        self._nursery.start_soon(fn, *args)

    def request_stop(self) -> None:
        """Begin a clean shutdown: chargers get close 1001, the store is flushed, `run` returns."""
        self._stop.set()

    async def _serve_api(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from ampgate.api import (
            create_app,  # Litestar import is heavy; keep it off the worker processes' path.
        )

        family = socket.AF_INET6 if ":" in self.config.api_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.api_host, self.config.api_port))
        sock.listen(1024)
        self.api_port = sock.getsockname()[1]
        hc = HypercornConfig()
        hc.bind = [f"fd://{sock.fileno()}"]
        hc.accesslog = None
        # A Logger (not a path) makes Hypercorn log through our logging set-up instead of adding its own handler.
        hc.errorlog = logging.getLogger("hypercorn.error")
        hc.graceful_timeout = 2.0
        # Hypercorn takes the socket over through fd:// and closes it itself.
        sock.detach()
        await hypercorn_serve(create_app(self), hc, task_status=task_status)  # type: ignore[arg-type]

    def _write_ready_file(self) -> None:
        if not self.config.ready_file:
            return
        info = {
            "pid": os.getpid(),
            "ocpp_port": self.gateway.ocpp_port,
            "api_port": self.api_port,
            "admin_token": self.first_admin_token,
            "workers": [w.pid for w in self.gateway.workers.values()],
        }
        tmp = self.config.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, self.config.ready_file)

    # -- gateway events ------------------------------------------------------------------------------------

    def on_events(self, events: list[tuple[Any, ...]]) -> None:
        """Handle one batch from the gateway, in order, and send every reply in one batch."""
        now = self.clock.wall()
        ocpp = self.ocpp
        ocpp.now = now
        ocpp.now_iso = iso(now)
        out: list[tuple[int, bytes]] = []
        for ev in events:
            kind = ev[0]
            try:
                if kind == _native.MESSAGE:
                    ocpp.on_message(ev[1], ev[2], out)
                elif kind == _native.CONNECTED:
                    # A connection announced by a worker generation that has since died (its events were
                    # still queued when the death was handled) no longer exists.
                    if self.gateway.is_current(ev[1]):
                        self._on_connected(ev[1], ev[2], ev[3], ev[4], now)
                elif kind == _native.DISCONNECTED:
                    self._on_disconnected(ev[1], ev[2], ev[3], now)
                else:
                    self.gateway.on_worker_event(ev)
            except Exception:
                # A bug handling one event must not stop the pump for every other charger.
                log.exception("failed handling gateway event %r", ev[:2])
        if out:
            self.gateway.hub.send(out)

    def _on_connected(self, conn_id: int, charger_id: str, protocol: str, peer: str, now: float) -> None:
        old = self.presence.connected(conn_id, charger_id, protocol, peer, now)
        if old is not None:
            self.ocpp.close(old)
            self.gateway.hub.close([(old, REPLACED_CODE, REPLACED_REASON)])
            log.info("charger %s reconnected; closed its previous connection", charger_id)
        p = self.presence.get(charger_id)
        assert p is not None
        self.ocpp.open(conn_id, p, protocol)
        self.store.record_connection(charger_id, protocol=protocol, at=self.clock.now())

    def _on_disconnected(self, conn_id: int, code: int, reason: str, now: float) -> None:
        self.ocpp.close(conn_id)
        self.presence.disconnected(conn_id, now)

    def on_worker_lost(self, worker: int, generation: int) -> None:
        """A worker process died: every connection it held is gone."""
        now = self.clock.wall()
        for conn_id in self.presence.conns_of_worker(worker, generation):
            self._on_disconnected(conn_id, 1006, "gateway worker exited", now)

    # -- operations used by the API ------------------------------------------------------------------------

    async def register_charger(self, charger_id: str, password: str | None) -> Any:
        """Register a charger (or replace its password) and make every gateway worker know it before
        returning. Returns the store's `(row, created)`. Raises ampgate.errors.ValidationError."""
        row, created = await self.store.register_charger(charger_id, password)
        self.accepted.add(charger_id)
        await self.gateway.push_credentials([(charger_id, self.store.credential(charger_id) or "")])
        return row, created

    def _commandable(self, charger_id: str, action: str) -> str:
        """The protocol of `charger_id` if `action` may be sent to it now. Raises NotFoundError (unknown
        charger), ChargerOfflineError, ConflictError `charger_not_accepted` (its boot state forbids it)."""
        presence = self.presence.get(charger_id)
        if presence is None and self.store.charger(charger_id) is None:
            raise NotFoundError(f"charger {charger_id!r} is not registered", field="id")
        if presence is None or not presence.online or presence.protocol is None:
            raise ChargerOfflineError(f"charger {charger_id!r} is not connected")
        session = self.ocpp.sessions.get(presence.conn_id) if presence.conn_id is not None else None
        state = session.boot_state if session is not None else None
        if state != ACCEPTED and not (state == PENDING and action in PENDING_COMMANDS):
            allowed = "only " + ", ".join(sorted(PENDING_COMMANDS)) if state == PENDING else "no command"
            raise ConflictError(
                f"charger {charger_id!r} is not accepted (boot status {state}): {allowed} may be sent",
                code="charger_not_accepted",
            )
        return presence.protocol

    async def command(self, charger_id: str, action: str, payload: Any) -> Any:
        """Send OCPP `action` with `payload` (the request as the spec writes it for the charger's protocol
        version) to a charger and return its reply payload. Raises NotFoundError (unknown charger, or an action
        the central system does not send in that version), ChargerOfflineError, ValidationError naming the
        field, ChargerCallError (a CALLERROR), ChargerTimeoutError."""
        protocol = self._commandable(charger_id, action)
        try:
            actions.validate_request(protocol, action, payload)
        except KeyError:
            raise NotFoundError(
                f"{action} is not a command the central system sends in {protocol}",
                field="name",
                code="unknown_command",
            ) from None
        timeout = self.config.call_timeout
        with trio.move_on_after(timeout):
            return await self.ocpp.calls.call(charger_id, action, payload)
        raise ChargerTimeoutError(f"{charger_id} did not answer {action} within {timeout:g} s")

    async def send_local_list(self, charger_id: str, update_type: str, version: int | None) -> dict[str, Any]:
        """Send the charger a local authorization list built from the whole id-token table (SendLocalList in
        its protocol version; `version` defaults to the current epoch second, so every list is newer than the
        last). Returns {"version", "entries", "skipped", "status"}. Raises what `command` raises."""
        protocol = self._commandable(charger_id, "SendLocalList")
        rows = []
        after: str | None = None
        while page := self.store.list_id_tokens(1000, after):
            rows.extend(page)
            after = page[-1].id_token
        version = version if version is not None else int(self.clock.wall())
        payload, skipped = local_list.build(protocol, rows, version, update_type)
        reply = await self.command(charger_id, "SendLocalList", payload)
        entries = len(payload.get("localAuthorizationList", []))
        return {"version": version, "entries": entries, "skipped": skipped, "status": reply.get("status")}

    def health(self) -> dict[str, Any]:
        workers = self.gateway.health()
        return {
            "status": "ok" if workers and all(w["alive"] for w in workers) else "degraded",
            "version": VERSION,
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0,
            "workers": workers,
            "connections": sum(w["connections"] for w in workers),
            "chargers_online": self.presence.online_count(),
        }
