"""`Store`: the node's SQLite database. Writes go through one writer thread (group commit); reads run on the
trio thread on their own connection (WAL: they never wait for the writer).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlite_utils
import trio

from ampgate.errors import ValidationError
from ampgate.store import chargers as ch
from ampgate.store import id_tokens as idt
from ampgate.store import status as st
from ampgate.store import transactions as tx
from ampgate.store.hashing import hash_password, new_token, token_digest
from ampgate.store.schema import connect, iso_utc, migrate
from ampgate.store.tokens import ROLES, validate_label, validate_role
from ampgate.store.writer import StoreClosedError, Waiter, Writer, WriterStats

T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    """The node's database at `path` (a file: the writer and the reader are separate connections).

    Opening creates or migrates the schema synchronously. Writes queue until `run()` is started in a nursery
    (`await nursery.start(store.run)`); cancelling `run()` flushes them. `now` supplies timestamps for rows this
    store creates (registration, tokens); pass the node's clock so tests can fix it.
    """

    def __init__(self, path: str, *, now: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self._now = now or _utc_now
        write_conn = connect(path)
        try:
            migrate(write_conn)
            self._read = connect(path, query_only=True)
        except BaseException:
            write_conn.close()
            raise
        self._writer = Writer(write_conn)
        self._state = "new"  # -> "running" -> "closed"

    @property
    def stats(self) -> WriterStats:
        """The writer's counters (commits, ops, failed_ops, largest_group)."""
        return self._writer.stats

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the writer thread, report started, and wait until cancelled. On cancellation (or any exit) it
        runs every write already submitted, stops the thread and closes both connections, so shutdown loses no
        submitted write. Runs once; raises RuntimeError if the store was already run or closed."""
        if self._state != "new":
            raise RuntimeError(f"Store.run() called on a {self._state} store")
        self._state = "running"
        try:
            self._writer.start(trio.lowlevel.current_trio_token())
            task_status.started()
            await trio.sleep_forever()
        finally:
            self._writer.stop()
            # Shielded: the flush must finish even though we are being cancelled. The outcomes of the last
            # groups reach their waiters through the trio token meanwhile.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._writer.join)
            self._read.close()
            self._state = "closed"

    def close(self) -> None:
        """Close a store that was never run (e.g. the CLI's): writes queued meanwhile are run first on this
        thread. A no-op on a closed store; raises RuntimeError while `run()` is active (cancel it instead)."""
        if self._state == "running":
            raise RuntimeError("the store is running; cancel its run() task to close it")
        if self._state == "closed":
            return
        self._state = "closed"
        try:
            self._writer.close_unstarted()
        finally:
            self._read.close()

    # -- generic writes -------------------------------------------------------------------------------------

    def submit(self, op: Callable[[sqlite_utils.Database], Any]) -> None:
        """Queue `op(db)` for the writer and return at once (fire-and-forget): it commits with the next group.
        Its result is dropped; an exception it raises rolls back that op alone and is logged.
        Raises StoreClosedError after shutdown."""
        self._writer.enqueue(op, None)

    async def write(self, op: Callable[[sqlite_utils.Database], T]) -> T:
        """Queue `op(db)` and wait until its group has committed; return what it returned, or raise what it
        raised (its own changes then rolled back, the rest of its group unaffected), or the sqlite3.Error that
        made the commit fail. If the caller is cancelled while waiting, the op may still commit.
        Raises StoreClosedError after shutdown. Before `run()` starts this waits for it."""
        waiter: Waiter[T] = Waiter()
        self._writer.enqueue(op, waiter)
        await waiter.done.wait()
        assert waiter.result is not None
        return waiter.result.unwrap()

    # -- chargers -------------------------------------------------------------------------------------------

    def record_boot(
        self,
        cp_id: str,
        *,
        vendor: str | None,
        model: str | None,
        serial: str | None,
        firmware: str | None,
        protocol: str | None,
        at: datetime,
    ) -> None:
        """Record a BootNotification, fire-and-forget: the reply never waits for the disk. Creates the charger
        if unknown (not accepted, no password) and sets what it reported plus last_boot_at = `at`.
        Raises ValueError for a naive `at`, StoreClosedError after shutdown; write failures are logged."""
        self._writer.enqueue(
            functools.partial(
                ch.upsert_boot,
                cp_id=cp_id,
                vendor=vendor,
                model=model,
                serial=serial,
                firmware=firmware,
                protocol=protocol,
                at=iso_utc(at),
            ),
            None,
        )

    def record_connection(self, cp_id: str, *, protocol: str | None, at: datetime) -> None:
        """Record, fire-and-forget, that charger `cp_id` connected with `protocol`: creates it if unknown (not
        accepted, no password, registered_at = `at`), so a charger admitted as unknown is listed before it
        boots; for a known one only its protocol is kept current. Raises ValueError for a naive `at`,
        StoreClosedError after shutdown; write failures are logged."""
        self._writer.enqueue(
            functools.partial(ch.upsert_connection, cp_id=cp_id, protocol=protocol, at=iso_utc(at)), None
        )

    async def register_charger(self, cp_id: str, password: str | None) -> tuple[ch.ChargerRow, bool]:
        """Create charger `cp_id` with `password` (stored hashed; None: it connects without a password), or
        replace the password of an existing one; either way it becomes accepted. Returns the committed row and
        whether it was created. Raises ValidationError with field "id" or "password" for a bad value."""
        ch.validate_charger_id(cp_id)
        password_hash = None if password is None else hash_password(ch.validate_password(password))
        at = iso_utc(self._now())
        return await self.write(
            functools.partial(ch.upsert_registration, cp_id=cp_id, password_hash=password_hash, at=at)
        )

    def charger(self, cp_id: str) -> ch.ChargerRow | None:
        """The charger `cp_id` as last committed, or None if unknown. Never raises for an odd id."""
        return ch.read_charger(self._read, cp_id)

    def list_chargers(
        self,
        limit: int,
        after: str | None = None,
        *,
        firmware: str | None = None,
        firmware_status: str | None = None,
    ) -> list[ch.ChargerRow]:
        """Up to `limit` chargers ordered by id, those with an id greater than `after` (keyset pagination: pass
        the last id of the previous page), only those running `firmware` (the version of their last boot) and
        whose last firmware status is `firmware_status`, when given. Without an index on either, a filter
        scans the table from `after` until the page is full. Raises ValidationError(field="limit") if
        `limit` < 1, ValidationError(field="firmware_status") for a status OCPP does not define."""
        if limit < 1:
            raise ValidationError("limit must be at least 1", field="limit")
        ch.validate_firmware_status(firmware_status)
        return ch.read_page(self._read, limit, after, firmware, firmware_status)

    def charger_credentials(self) -> list[tuple[str, str | None]]:
        """Every known charger id with its password hash (None: no password), in id order. This scans the
        whole table on the calling thread (~100 ms for 100k chargers): for the gateway table at start-up and
        after a worker restart, not per request."""
        return list(self._read.execute("SELECT id, password_hash FROM chargers ORDER BY id").fetchall())

    def credential(self, cp_id: str) -> str | None:
        """The password hash of charger `cp_id`, or None if it has none or is unknown."""
        row = self._read.execute("SELECT password_hash FROM chargers WHERE id = ?", (cp_id,)).fetchone()
        return None if row is None else row[0]

    def accepted_ids(self) -> list[str]:
        """Ids of every charger that has been accepted (registered by an operator, or accepted at boot): the
        node keeps them in memory to decide boots and serve reconnects. Scans the table; start-up only."""
        return [r[0] for r in self._read.execute("SELECT id FROM chargers WHERE accepted = 1").fetchall()]

    def mark_accepted(self, cp_id: str) -> None:
        """Remember, fire-and-forget, that charger `cp_id` was accepted at boot (queued after its boot record,
        so the row exists when this runs)."""
        self._writer.enqueue(
            lambda db: db.execute("UPDATE chargers SET accepted = 1 WHERE id = ?", (cp_id,)), None
        )

    def count_chargers(self) -> int:
        """How many chargers are known."""
        return int(self._read.execute("SELECT count(*) FROM chargers").fetchone()[0])

    def record_firmware_status(
        self, cp_id: str, *, status: str, request_id: int | None, at: datetime
    ) -> None:
        """Record, fire-and-forget, the firmware status charger `cp_id` reported (as sent), the requestId of
        the update it belongs to (None: the notification carried none) and `at`, when the node received it.
        It replaces the previous one; a charger the store does not know is left alone. Raises ValueError for a
        naive `at`, StoreClosedError after shutdown; write failures are logged."""
        self.submit(
            functools.partial(
                ch.update_firmware_status, cp_id=cp_id, status=status, request_id=request_id, at=iso_utc(at)
            )
        )

    # -- API tokens -----------------------------------------------------------------------------------------

    def create_token(self, role: str, label: str | None = None) -> str:
        """Create an API token with `role` and return it in plaintext, the only time it exists in plaintext
        (only its SHA-256 is stored). Synchronous on its own short-lived connection, so the CLI can create a
        token while a node runs on the same file, and that node accepts it at once. Raises
        ValidationError(field="role") for a role not in ROLES, ValidationError(field="label") for a label that
        is too long, sqlite3.OperationalError if the database stays locked beyond the busy timeout."""
        validate_role(role)
        validate_label(label)
        token = new_token()
        with closing(connect(self.path)) as conn:
            conn.execute(
                "INSERT INTO api_tokens (token_hash, role, label, created_at) VALUES (?, ?, ?, ?)",
                (token_digest(token), role, label, iso_utc(self._now())),
            )
        return token

    def role_for_token(self, token: str) -> str | None:
        """The role of `token`, or None if no such token exists (or its stored role is unknown: fail closed).
        Reads the database on every call, an indexed lookup, so tokens made by another process work at once."""
        row = self._read.execute(
            "SELECT role FROM api_tokens WHERE token_hash = ?", (token_digest(token),)
        ).fetchone()
        if row is None or row[0] not in ROLES:
            return None
        return str(row[0])

    def count_tokens(self) -> int:
        """How many API tokens exist."""
        return int(self._read.execute("SELECT count(*) FROM api_tokens").fetchone()[0])

    # -- id tokens ------------------------------------------------------------------------------------------

    async def create_id_token(
        self,
        id_token: str,
        *,
        status: str,
        type: str | None = None,
        expiry: datetime | None = None,
        group: str | None = None,
    ) -> idt.IdTokenRow:
        """Create an id token and return it as committed. Raises ValidationError naming `id_token`, `type`,
        `status`, `expiry` or `group`; ConflictError(field="id_token") if it exists (case-insensitively)."""
        idt.validate_id_token(id_token)
        idt.validate_type(type)
        idt.validate_status(status)
        if group is not None:
            idt.validate_id_token(group, "group")
        exp = idt.expiry_text(expiry)
        at = iso_utc(self._now())
        return await self.write(
            functools.partial(
                idt.insert, id_token=id_token, type_=type, status=status, expiry=exp, group=group, at=at
            )
        )

    async def update_id_token(self, id_token: str, changes: dict[str, Any]) -> idt.IdTokenRow:
        """Change `status`, `expiry`, `group` or `type` (keys of `changes`; a None value clears expiry, group
        or type). Raises ValidationError naming the field, NotFoundError(field="id_token")."""
        columns: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "status":
                columns["status"] = idt.validate_status(value)
            elif key == "expiry":
                columns["expiry"] = idt.expiry_text(value)
            elif key == "group":
                columns["group_id"] = None if value is None else idt.validate_id_token(value, "group")
            elif key == "type":
                columns["type"] = idt.validate_type(value)
            else:
                raise ValidationError(f"{key} cannot be changed", field=key)
        return await self.write(
            functools.partial(idt.update, id_token=id_token, changes=columns, at=iso_utc(self._now()))
        )

    async def delete_id_token(self, id_token: str) -> None:
        """Delete an id token. Raises NotFoundError(field="id_token") if there is none."""
        await self.write(functools.partial(idt.delete, id_token=id_token))

    def id_token(self, id_token: str) -> idt.IdTokenRow | None:
        """The id token (case-insensitive), or None."""
        return idt.read_id_token(self._read, id_token)

    def list_id_tokens(self, limit: int, after: str | None = None) -> list[idt.IdTokenRow]:
        """Up to `limit` id tokens ordered by id_token, after `after` (keyset pagination)."""
        return idt.read_page(self._read, limit, after)

    def authorize(self, id_token: str, type: str | None = None) -> idt.Authorization:
        """The answer for a token a charger presents now: Invalid when unknown, Expired when past its expiry,
        else its status. Never raises."""
        return idt.authorize(idt.read_id_token(self._read, id_token), self._now(), type)

    # -- transactions ---------------------------------------------------------------------------------------

    def transaction(self, tx_id: int) -> tx.TransactionRow | None:
        """The transaction with the node's id `tx_id`, or None."""
        return tx.read_transaction(self._read, tx_id)

    def list_transactions(
        self,
        limit: int,
        *,
        before: int | None = None,
        charger_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tx.TransactionRow]:
        """Up to `limit` transactions, newest first, with an id below `before`, optionally of one charger and
        started in [since, until). Raises ValueError for a naive `since`/`until`."""
        return tx.read_page(
            self._read,
            limit,
            before,
            charger_id,
            None if since is None else iso_utc(since),
            None if until is None else iso_utc(until),
        )

    def transaction_samples(self, tx_id: int) -> list[tx.Sample]:
        """Every meter sample of the transaction, in time order."""
        return tx.read_samples(self._read, tx_id)

    def last_samples(self, tx_ids: list[int]) -> dict[int, list[tx.Sample]]:
        """Each transaction's samples at its latest sample time."""
        return tx.read_last_samples(self._read, tx_ids)

    # -- connector status -----------------------------------------------------------------------------------

    def record_status(
        self,
        charger_id: str,
        *,
        evse_id: int | None,
        connector_id: int,
        protocol: str,
        status: str,
        error_code: str | None,
        at: datetime,
    ) -> None:
        """Record a connector's status, fire-and-forget. Raises ValueError for a naive `at`."""
        self.submit(
            functools.partial(
                st.upsert,
                charger_id=charger_id,
                evse_id=evse_id,
                connector_id=connector_id,
                protocol=protocol,
                status=status,
                error_code=error_code,
                at=iso_utc(at),
            )
        )

    def connector_statuses(self, charger_id: str) -> list[st.ConnectorStatusRow]:
        """The last status of each connector of the charger (empty when it reported none)."""
        return st.read_statuses(self._read, charger_id)


__all__ = ["Store", "StoreClosedError"]
