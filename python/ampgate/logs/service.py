"""Asking a charger for its logs: GetLog (2.0.1, and the 1.6 security extension's) or GetDiagnostics (1.6 core),
sent through the Commander, each one a row of `log_requests` that the charger's reply and notifications
complete.

Which request goes out: GetLog to 2.0.1 chargers. To a 1.6 charger GetLog too (the security extension has both
log types); if it answers NotImplemented / NotSupported (no security extension) a DiagnosticsLog request goes out
again at once as GetDiagnostics, and that charger gets GetDiagnostics straight away for DiagnosticsLog until the
node restarts. A SecurityLog has no 1.6 core equivalent: such a refusal stays a 502.

Where the charger uploads: the operator's `location` when given (any http(s) or ftp(s)/sftp URL, passed through
unchanged: the node serves no FTP, so a charger that only uploads over FTP needs the operator's own server);
otherwise a one-time URL on the node's public surface (`ampgate.logs.uploads`), which the node then receives.
The row is committed before the request is sent, so the upload URL works as soon as the charger has it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.errors import AmpgateError, ChargerCallError, ChargerTimeoutError, NotFoundError, ValidationError
from ampgate.events import LogStatusReported
from ampgate.logs import state
from ampgate.logs.repository import LogRow, NewLogRequest
from ampgate.logs.state import LogParams
from ampgate.logs.uploads import expiry, new_upload_token, upload_path
from ampgate.ocpp import payloads
from ampgate.store.hashing import token_digest


class LogSpec(LogParams, frozen=True, kw_only=True):
    """A log request as the operator makes it (`location` None: the node receives the file)."""

    location: str | None = None


class CommandSender(Protocol):
    """The Commander (`ampgate.ocpp.commander.Commander`)."""

    def ready(self, charger_id: str, action: str, /) -> str: ...
    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


class LogRecords(Protocol):
    """`ampgate.logs.LogRepository`."""

    async def create(self, new: NewLogRequest, /) -> LogRow: ...
    async def set_command(self, log_id: int, command: str, /) -> LogRow: ...
    async def record_reply(
        self, log_id: int, status: str, filename: str | None, at: datetime, /
    ) -> tuple[LogRow, list[LogRow]]: ...
    async def record_failure(
        self, log_id: int, status: str, code: str, message: str, at: datetime, /
    ) -> LogRow: ...
    def get(self, log_id: int, /) -> LogRow | None: ...
    def page(self, charger_id: str, limit: int, before: int | None = None, /) -> list[LogRow]: ...


class LogService:
    """Sends log requests and keeps their rows. `url_for(path)` makes an absolute URL on the public surface
    (from --public-base-url)."""

    def __init__(
        self,
        records: LogRecords,
        commander: CommandSender,
        bus: Publisher,
        clock: Clock,
        url_for: Callable[[str], str],
    ) -> None:
        self._records = records
        self._commander = commander
        self._bus = bus
        self._clock = clock
        self._url_for = url_for
        # 1.6 chargers that answered GetLog NotImplemented / NotSupported since the node started.
        self._no_get_log: set[str] = set()

    # -- reads --------------------------------------------------------------------------------------------------

    def get(self, log_id: int) -> LogRow | None:
        """The request `log_id`, or None."""
        return self._records.get(log_id)

    def page(self, charger_id: str, limit: int, before: int | None = None) -> list[LogRow]:
        """Up to `limit` of the charger's requests, newest first, with an id below `before`."""
        return self._records.page(charger_id, limit, before)

    # -- requests -----------------------------------------------------------------------------------------------

    async def request(self, charger_id: str, spec: LogSpec) -> LogRow:
        """Ask `charger_id` for its log as `spec` says and return the request once the charger answered (its
        status then Accepted, AcceptedCanceled or Rejected). Raises ValidationError naming the field
        (log_type, location, latest_at, ...), NotFoundError (unknown charger), ChargerOfflineError,
        ConflictError (not accepted), ChargerCallError / ChargerTimeoutError (the request's row then says
        Failed / TimedOut)."""
        check_spec(spec)
        protocol = self._commander.ready(charger_id, state.GET_LOG)
        command = state.GET_LOG
        if protocol == state.OCPP16 and spec.log_type == "DiagnosticsLog" and charger_id in self._no_get_log:
            command = state.GET_DIAGNOSTICS
        location, shown, token_hash = self._location(spec.location)
        # The payload is checked before anything is stored; the request id is not known yet (the row's id).
        _check_payload(protocol, command, state.build_payload(command, 0, location, spec))
        row = await self._create(charger_id, protocol, command, spec.log_type, None, shown, token_hash)
        while True:
            payload = state.build_payload(row.command, row.request_id, location, spec)
            try:
                reply = await self._commander.call(charger_id, row.command, payload)
            except ChargerCallError as e:
                if state.falls_back(protocol, row.command, row.log_type, e.ocpp_code):
                    self._no_get_log.add(charger_id)
                    row = await self._records.set_command(row.id, state.GET_DIAGNOSTICS)
                    continue
                await self._failed(row, e)
                raise
            except AmpgateError as e:
                await self._failed(row, e)
                raise
            return await self._answered(row, reply)

    async def command(self, charger_id: str, action: str, payload: Any) -> Any:
        """The generic command API's GetLog / GetDiagnostics: `payload` as the specification writes it, with
        the node's upload URL filled in when it names no location; the request is recorded like any other.
        Returns the charger's reply payload. Raises what `request` raises, ValidationError naming the OCPP
        field, NotFoundError `unknown_command` for an action the charger's version does not have."""
        protocol = self._commander.ready(charger_id, action)
        if not isinstance(payload, dict):
            raise ValidationError(f"the {action} request must be a JSON object")
        given = state.given_location(action, payload)
        if given is None:
            location, shown, token_hash = self._location(None)
            payload = state.with_location(action, payload, location)
        else:
            shown, token_hash = state.redact(given), None
        _check_payload(protocol, action, payload)
        log_type, request_id = state.raw_params(action, payload)
        row = await self._create(charger_id, protocol, action, log_type, request_id, shown, token_hash)
        try:
            reply = await self._commander.call(charger_id, action, payload)
        except AmpgateError as e:
            await self._failed(row, e)
            raise
        await self._answered(row, reply)
        return reply

    # -- steps --------------------------------------------------------------------------------------------------

    def _location(self, given: str | None) -> tuple[str, str, str | None]:
        """(location sent, location stored and shown, upload token hash): the operator's, or a new upload URL
        of the node (shown with `{token}` in place of its secret)."""
        if given is not None:
            return given, state.redact(given), None
        token = new_upload_token()
        return self._url_for(upload_path(token)), self._url_for(upload_path("{token}")), token_digest(token)

    async def _create(
        self,
        charger_id: str,
        protocol: str,
        command: str,
        log_type: str,
        request_id: int | None,
        shown: str,
        token_hash: str | None,
    ) -> LogRow:
        at = self._clock.now()
        row = await self._records.create(
            NewLogRequest(
                charger_id=charger_id,
                protocol=protocol,
                command=command,
                log_type=log_type,
                request_id=request_id,
                location=shown,
                upload_token_hash=token_hash,
                upload_expires_at=expiry(at) if token_hash is not None else None,
                at=at,
            )
        )
        self._publish(row)
        return row

    async def _failed(self, row: LogRow, error: AmpgateError) -> None:
        status = state.TIMED_OUT if isinstance(error, ChargerTimeoutError) else state.FAILED
        row = await self._records.record_failure(row.id, status, error.code, error.message, self._clock.now())
        self._publish(row)

    async def _answered(self, row: LogRow, reply: Any) -> LogRow:
        status, filename = state.reply_outcome(row.command, reply)
        row, canceled = await self._records.record_reply(row.id, status, filename, self._clock.now())
        for other in (row, *canceled):
            self._publish(other)
        return row

    def _publish(self, row: LogRow) -> None:
        self._bus.publish(
            LogStatusReported(
                at=self._clock.now(),
                charger_id=row.charger_id,
                log_id=row.id,
                command=row.command,
                request_id=row.request_id,
                status=row.status,
            )
        )


def check_spec(spec: LogSpec) -> None:
    """Raise ValidationError naming the field of `spec` that cannot be sent."""
    if spec.log_type not in state.LOG_TYPES:
        raise ValidationError(f"log_type must be one of {', '.join(state.LOG_TYPES)}", field="log_type")
    if spec.location is not None:
        state.check_location(spec.location)
    for name in ("oldest_at", "latest_at"):
        at = getattr(spec, name)
        if at is not None and (at.tzinfo is None or at.utcoffset() is None):
            raise ValidationError(f"{name} needs a time zone (e.g. a Z)", field=name)
    if spec.oldest_at is not None and spec.latest_at is not None and spec.latest_at < spec.oldest_at:
        raise ValidationError("latest_at is before oldest_at", field="latest_at")
    for name in ("retries", "retry_interval_s"):
        n = getattr(spec, name)
        if n is not None and not 0 <= n <= state.MAX_INT32:
            raise ValidationError(f"{name} is 0 to {state.MAX_INT32}", field=name)


def _check_payload(protocol: str, action: str, payload: dict[str, Any]) -> None:
    try:
        payloads.validate_request(protocol, action, payload)
    except KeyError:
        raise NotFoundError(
            f"{action} is not a command the central system sends in {protocol}",
            field="name",
            code="unknown_command",
        ) from None
