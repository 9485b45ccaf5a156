"""A small eMSP for tests: an OCPI 2.2.1 party on a real HTTP server on 127.0.0.1 (the standard library's
threading server, so it answers while the test's own code, asyncio or plain, waits on the node), written from the
spec and sharing no code with ampgate.roaming.

What it does: its versions and version details (credentials SENDER, locations RECEIVER, tokens SENDER, commands
SENDER, sessions, cdrs and tariffs RECEIVER), credentials (a CPO that registers with it using the registration
token it issued; DELETE), the Locations receiver interface (PUT and PATCH recorded, GET of what it holds), the
Sessions receiver (PUT replaces, PATCH merges and adds the charging periods it carries, GET), the CDRs receiver
(POST kept by id and answered with its Location, or HTTP 500 while `cdr_failures` lasts; GET at that Location),
the Tariffs receiver (PUT, DELETE), real-time authorization of its tokens (POST
tokens/{uid}/authorize, answered as `answers` says), the commands' results (any POST under commands/ recorded),
and, as a client, the registration with a CPO (versions, details, POST credentials), any GET with the CPO's
token, pushing its Tokens to the CPO and sending it commands. Every request it receives is recorded with its
headers, so a test can check the CPO's Authorization encoding, X-Request-ID, X-Correlation-ID and routing
headers.

`delay_s` slows every locations push it answers (a slow eMSP, to see pushes coalesce); `refuse_patch` answers
PATCHes 404 (an eMSP that does not know the object, so the CPO should PUT the Location). `answers` says, per token
uid, what a real-time authorization gets: an AllowedType value (with `references` its authorization_reference),
UNKNOWN (HTTP 404 and status 2004, also for any uid not listed), DOWN (HTTP 503) or SLOW (an ALLOWED that comes
after `slow_s`).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

COUNTRY = "NL"
PARTY = "EMP"
ROOT = "/emsp"


def envelope(data: Any = None, status_code: int = 1000, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status_code": status_code,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if data is not None:
        out["data"] = data
    if message is not None:
        out["status_message"] = message
    return out


def token_header(token: str) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


@dataclass
class Received:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    at: float


@dataclass
class Emsp:
    """The eMSP's state. Start it with `start()`; `url` is its versions endpoint."""

    port: int = 0
    delay_s: float = 0.0
    refuse_patch: bool = False
    # Tokens that may call us: the registration token we issued (until the CPO registered) and the one we gave
    # the CPO (ours after the handshake), and what each is for.
    registration_tokens: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    # The token we call the CPO with, and its endpoints.
    cpo_token: str | None = None
    cpo_endpoints: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    locations: dict[str, Any] = field(default_factory=dict)
    # Real-time authorization: per uid, what to answer (see the module docstring), the authorization_reference
    # an ALLOWED carries, and how long SLOW waits.
    answers: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)
    slow_s: float = 10.0
    # The Tokens it owns (by uid), as it pushes them and answers with them.
    token_book: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What the CPO pushed: Sessions by id (as PUT and PATCHed), CDRs by id (each POST it took, in order),
    # Tariffs by id (None once deleted); CDR POSTs answered HTTP 500 while this is above 0 (counted down).
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    cdrs: list[dict[str, Any]] = field(default_factory=list)
    tariffs: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    cdr_failures: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{ROOT}"

    @property
    def url(self) -> str:
        return f"{self.base}/versions"

    def start(self) -> Emsp:
        emsp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, extra = emsp.handle(self.command, self.path, dict(self.headers.items()), raw)
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the CPO gave up waiting (a SLOW answer past its bound)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- the server ------------------------------------------------------------------------------------------------

    def _token(self, headers: dict[str, str]) -> str | None:
        value = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scheme, _, encoded = value.partition(" ")
        if scheme != "Token":
            return None
        try:
            return base64.b64decode(encoded, validate=True).decode()
        except ValueError:
            return None

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        lower = {k.lower(): v for k, v in headers.items()}
        ids = {
            "X-Request-ID": lower.get("x-request-id", ""),
            "X-Correlation-ID": lower.get("x-correlation-id", ""),
        }
        body = json.loads(raw) if raw else None
        with self.lock:
            self.received.append(Received(method, path, body, lower, time.monotonic()))
            self.lock.notify_all()
        token = self._token(headers)
        registering = token in self.registration_tokens
        if token is None or (token not in self.tokens and not registering):
            return 401, envelope(status_code=2000, message="unknown token"), ids
        if path == f"{ROOT}/versions":
            return 200, envelope([{"version": "2.2.1", "url": f"{self.base}/2.2.1"}]), ids
        if path == f"{ROOT}/2.2.1":
            return (
                200,
                envelope(
                    {
                        "version": "2.2.1",
                        "endpoints": [
                            {
                                "identifier": "credentials",
                                "role": "SENDER",
                                "url": f"{self.base}/2.2.1/credentials",
                            },
                            {
                                "identifier": "locations",
                                "role": "RECEIVER",
                                "url": f"{self.base}/2.2.1/locations",
                            },
                            {
                                "identifier": "tokens",
                                "role": "SENDER",
                                "url": f"{self.base}/2.2.1/tokens",
                            },
                            {
                                "identifier": "commands",
                                "role": "SENDER",
                                "url": f"{self.base}/2.2.1/commands",
                            },
                            *(
                                {"identifier": m, "role": "RECEIVER", "url": f"{self.base}/2.2.1/{m}"}
                                for m in ("sessions", "cdrs", "tariffs")
                            ),
                        ],
                    }
                ),
                ids,
            )
        if path == f"{ROOT}/2.2.1/credentials":
            return (*self._credentials(method, token, registering, body), ids)
        if registering:
            return 401, envelope(status_code=2000, message="registration token"), ids
        if path.startswith(f"{ROOT}/2.2.1/locations/"):
            if self.delay_s:
                time.sleep(self.delay_s)
            return (*self._locations(method, path, body), ids)
        if path.startswith(f"{ROOT}/2.2.1/tokens/") and method == "POST":
            return (*self._authorize(path, body), ids)
        if path.startswith(f"{ROOT}/2.2.1/commands/") and method == "POST":
            return 200, envelope(), ids
        if path.startswith(f"{ROOT}/2.2.1/sessions/"):
            return (*self._sessions(method, path, body), ids)
        if path.startswith(f"{ROOT}/2.2.1/cdrs"):
            status, answer, extra = self._cdrs(method, path, body)
            return status, answer, ids | extra
        if path.startswith(f"{ROOT}/2.2.1/tariffs/"):
            return (*self._tariffs(method, path, body), ids)
        return 404, envelope(status_code=2000, message="no such endpoint"), ids

    def _sessions(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path[len(f"{ROOT}/2.2.1/sessions/") :].split("/")
        if len(parts) != 3:
            return 404, envelope(status_code=2000, message="not a session URL")
        key = unquote(parts[2])
        with self.lock:
            found = self.sessions.get(key)
            if method == "PUT":
                self.sessions[key] = body
            elif method == "PATCH":
                if found is None:
                    return 404, envelope(status_code=2001, message="unknown session")
                periods = found.get("charging_periods") or []
                merged = {**found, **body}
                # mod_sessions: periods in a PATCH are added to the list.
                merged["charging_periods"] = periods + (body.get("charging_periods") or [])
                self.sessions[key] = merged
            elif method == "GET":
                return (200, envelope(found)) if found else (404, envelope(status_code=2001))
            else:
                return 405, envelope(status_code=2000, message="not here")
        return 200, envelope()

    def _cdrs(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            if method == "POST" and path.rstrip("/") == f"{ROOT}/2.2.1/cdrs":
                if self.cdr_failures > 0:
                    self.cdr_failures -= 1
                    return 500, {"error": "not today"}, {}
                self.cdrs.append(body)
                return 200, envelope(), {"Location": f"{self.base}/2.2.1/cdrs/{body['id']}"}
            if method == "GET":
                wanted = unquote(path.rsplit("/", 1)[-1])
                found = next((c for c in self.cdrs if c["id"] == wanted), None)
                return (200, envelope(found), {}) if found else (404, envelope(status_code=2001), {})
        return 405, envelope(status_code=2000, message="not here"), {}

    def _tariffs(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path[len(f"{ROOT}/2.2.1/tariffs/") :].split("/")
        if len(parts) != 3:
            return 404, envelope(status_code=2000, message="not a tariff URL")
        key = unquote(parts[2])
        with self.lock:
            if method == "PUT":
                self.tariffs[key] = body
            elif method == "DELETE":
                self.tariffs[key] = None
            else:
                return 405, envelope(status_code=2000, message="not here")
        return 200, envelope()

    def _authorize(self, path: str, body: Any) -> tuple[int, Any]:
        """POST tokens/{uid}/authorize[?type=]: as `answers` says for the uid."""
        parsed = urlsplit(path)
        rest = parsed.path[len(f"{ROOT}/2.2.1/tokens/") :].split("/")
        if len(rest) != 2 or rest[1] != "authorize":
            return 404, envelope(status_code=2000, message="no such endpoint")
        uid = unquote(rest[0])
        type_ = parse_qs(parsed.query).get("type", ["RFID"])[0]
        answer = self.answers.get(uid, "UNKNOWN")
        if answer == "DOWN":
            return 503, {"error": "down"}
        if answer == "UNKNOWN":
            return 404, envelope(status_code=2004, message="unknown token")
        if answer == "SLOW":
            time.sleep(self.slow_s)
            answer = "ALLOWED"
        info: dict[str, Any] = {
            "allowed": answer,
            "token": self.token_book.get(uid) or self.token(uid, type_),
        }
        if body is not None:
            info["location"] = body
        if uid in self.references:
            info["authorization_reference"] = self.references[uid]
        return 200, envelope(info)

    def _credentials(self, method: str, token: str, registering: bool, body: Any) -> tuple[int, Any]:
        if method == "POST":
            if not registering:
                return 405, envelope(status_code=2000, message="already registered")
            self.registration_tokens.discard(token)
            self.cpo_token = body["token"]
            ours = secrets.token_urlsafe(24)
            self.tokens.add(ours)
            return 200, envelope(self.credentials(ours))
        if method == "DELETE":
            if registering:
                return 405, envelope(status_code=2000, message="not registered")
            self.tokens.discard(token)
            self.cpo_token = None
            return 200, envelope()
        if method == "GET":
            return 200, envelope(self.credentials(token))
        return 405, envelope(status_code=2000, message="not here")

    def _locations(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path[len(f"{ROOT}/2.2.1/locations/") :].split("/")
        if len(parts) < 3:
            return 404, envelope(status_code=2000, message="too short")
        key = "/".join(parts[2:])
        with self.lock:
            if method == "PATCH" and self.refuse_patch:
                return 404, envelope(status_code=2003, message="unknown object")
            if method == "PUT":
                self.locations[key] = body
            elif method == "PATCH":
                self.locations[key] = {**self.locations.get(key, {}), **body}
            elif method == "GET":
                found = self.locations.get(key)
                return (200, envelope(found)) if found else (404, envelope(status_code=2003))
        return 200, envelope()

    def credentials(self, token: str) -> dict[str, Any]:
        return {
            "token": token,
            "url": self.url,
            "roles": [
                {
                    "role": "EMSP",
                    "party_id": PARTY,
                    "country_code": COUNTRY,
                    "business_details": {"name": "Test eMSP"},
                }
            ],
        }

    # -- what a test looks at ------------------------------------------------------------------------------------

    def issue_registration_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self.registration_tokens.add(token)
        return token

    def token(self, uid: str, type_: str = "RFID", **fields: Any) -> dict[str, Any]:
        """A Token of ours (`fields` override the defaults: valid, whitelist ALLOWED, …)."""
        return {
            "country_code": COUNTRY,
            "party_id": PARTY,
            "uid": uid,
            "type": type_,
            "contract_id": f"NL-EMP-C{uid[:20]}",
            "issuer": "Test eMSP",
            "valid": True,
            "whitelist": "ALLOWED",
            "last_updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **fields,
        }

    def authorize_requests(self, uid: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r
                for r in self.received
                if r.method == "POST"
                and r.path.startswith(f"{ROOT}/2.2.1/tokens/")
                and (uid is None or urlsplit(r.path).path.split("/")[-2] == uid)
            ]

    def results(self, suffix: str | None = None) -> list[Received]:
        """The CommandResults the CPO POSTed (to response URLs under commands/, ending in `suffix`)."""
        with self.lock:
            return [
                r
                for r in self.received
                if r.method == "POST"
                and r.path.startswith(f"{ROOT}/2.2.1/commands/")
                and (suffix is None or r.path.endswith(suffix))
            ]

    def response_url(self, key: str) -> str:
        """A response_url for a command: unique per `key`, as mod_commands advises."""
        return f"{self.base}/2.2.1/commands/{key}"

    def session_pushes(self, session_id: str | None = None) -> list[Received]:
        """The Session PUTs and PATCHes the CPO sent (of one session id)."""
        with self.lock:
            return [
                r
                for r in self.received
                if r.path.startswith(f"{ROOT}/2.2.1/sessions/")
                and r.method in ("PUT", "PATCH")
                and (session_id is None or unquote(r.path.rsplit("/", 1)[-1]) == session_id)
            ]

    def cdr_posts(self) -> list[Received]:
        """Every CDR POST the CPO made, those answered 500 included."""
        with self.lock:
            return [
                r for r in self.received if r.method == "POST" and r.path.startswith(f"{ROOT}/2.2.1/cdrs")
            ]

    def tariff_pushes(self, tariff_id: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r
                for r in self.received
                if r.path.startswith(f"{ROOT}/2.2.1/tariffs/")
                and (tariff_id is None or unquote(r.path.rsplit("/", 1)[-1]) == tariff_id)
            ]

    def pushes(self, method: str | None = None, suffix: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r
                for r in self.received
                if r.path.startswith(f"{ROOT}/2.2.1/locations/")
                and (method is None or r.method == method)
                and (suffix is None or r.path.endswith(suffix))
            ]

    def wait_for(self, ok: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `ok()` is truthy (it runs under the lock, after each request); its last value."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                value = ok()
                left = deadline - time.monotonic()
                if value or left <= 0:
                    return value
                self.lock.wait(min(left, 0.2))

    # -- the client ------------------------------------------------------------------------------------------------

    def call(self, method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {
            "Authorization": token_header(token),
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": str(uuid.uuid4()),
            **kwargs.pop("headers", {}),
        }
        return httpx.request(method, url, headers=headers, timeout=15, **kwargs)

    def push_token(
        self,
        token: dict[str, Any],
        method: str = "PUT",
        *,
        url_uid: str | None = None,
        url_type: str | None = None,
    ) -> httpx.Response:
        """PUT (or PATCH, with `token` the changed fields plus uid and type for the URL) a Token to the CPO; the
        URL names `url_uid` / `url_type` when given (to push a Token under another's URL)."""
        uid, type_ = url_uid or token["uid"], url_type or token.get("type", "RFID")
        if method == "PUT":
            self.token_book[token["uid"]] = token
        url = f"{self.cpo_endpoints['tokens']}/{COUNTRY}/{PARTY}/{quote(uid, safe='')}"
        body = token if method == "PUT" else {k: v for k, v in token.items() if k not in ("uid", "type")}
        assert self.cpo_token is not None
        return self.call(method, url, self.cpo_token, params={"type": type_}, json=body)

    def command(self, name: str, body: dict[str, Any]) -> httpx.Response:
        """POST a command to the CPO's commands endpoint."""
        assert self.cpo_token is not None
        return self.call("POST", f"{self.cpo_endpoints['commands']}/{name}", self.cpo_token, json=body)

    def register_with(self, versions_url: str, token_a: str) -> httpx.Response:
        """The credentials handshake with us as the sender: versions, details, POST credentials with a fresh
        token for the CPO to call us with. Keeps the CPO's token from the answer."""
        versions = self.call("GET", versions_url, token_a).json()["data"]
        details_url = next(v["url"] for v in versions if v["version"] == "2.2.1")
        details = self.call("GET", details_url, token_a).json()["data"]
        self.cpo_endpoints = {e["identifier"]: e["url"] for e in details["endpoints"]}
        ours = secrets.token_urlsafe(24)
        self.tokens.add(ours)
        answer = self.call("POST", self.cpo_endpoints["credentials"], token_a, json=self.credentials(ours))
        if answer.status_code == 200 and answer.json()["status_code"] == 1000:
            self.cpo_token = answer.json()["data"]["token"]
        return answer
