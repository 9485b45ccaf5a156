"""A small in-memory OpenADR 3.0.1 VTN for tests: the spec's paths and objects (auth token, programs, events, vens
and their resources, reports, subscriptions with callbacks), served by Litestar on Hypercorn on a loopback port.

It checks what a VTN must (client credentials, bearer tokens, the required fields of what it stores) and no
more: objects are kept as the JSON they arrived as, with the VTN's fields added (id, createdDateTime,
modificationDateTime, objectType), so a test can put a malformed event in front of the VEN. Tests drive it
through its methods (`add_program`, `put_event`, `delete_event`, `stop` / `start`), which send the callbacks
of the subscriptions before they return, as a VTN's business logic writing through the API would cause.
"""

from __future__ import annotations

import itertools
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import trio
from litestar import Litestar, Request, delete, get, post, put
from litestar.exceptions import HTTPException
from litestar.params import Parameter

from ampgate.httpserver import bind, serve

BASE_PATH = "/openadr3/3.0.1"
# The notification operation for each change (the 3.0.1 notification's enum) and the subscription's name for it.
ObjectId = Annotated[str, Parameter(description="object id")]
_OPERATIONS = {"POST": "CREATE", "PUT": "UPDATE", "DELETE": "DELETE"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class StandInVtn:
    """The VTN's state and its test controls. `client_id` / `client_secret` are the VEN's credentials;
    tokens live `token_lifetime_s` (real seconds)."""

    def __init__(self, client_id: str = "ven-client", client_secret: str = "ven-secret") -> None:
        self.credentials = {client_id: client_secret}
        self.token_lifetime_s = 3600.0
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.programs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.vens: dict[str, dict[str, Any]] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.reports: list[dict[str, Any]] = []
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.callbacks: list[tuple[str, int]] = []  # (operation, HTTP status) of each callback sent
        self.requests: list[tuple[str, str]] = []
        # OpenADR 3.1's place for a VEN's resources: /resources?venID=… (and no /vens/{id}/resources).
        self.resources_at_top = False
        self._ids = itertools.count(1)
        self._http = httpx.AsyncClient(timeout=10)
        self.port = 0
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None

    # -- running ---------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE_PATH}"

    async def start(self, nursery: trio.Nursery) -> None:
        """Listen (again, on the same port after `stop`)."""
        sock = bind("127.0.0.1", self.port)
        self.port = sock.getsockname()[1]
        self._nursery = nursery
        self._scope = await nursery.start(self._serve, sock)

    async def _serve(self, sock: Any, *, task_status: Any) -> None:
        with trio.CancelScope() as scope:
            await trio.lowlevel.checkpoint()
            async with trio.open_nursery() as n:
                await n.start(serve, self.app(), sock)
                task_status.started(scope)

    async def stop(self) -> None:
        """Stop listening: the VEN's calls are refused until `start`."""
        assert self._scope is not None
        self._scope.cancel()
        self._scope = None
        await trio.sleep(0.05)

    async def aclose(self) -> None:
        await self._http.aclose()

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (401): the VEN must fetch a new one."""
        self.tokens.clear()

    # -- what tests (the VTN's business logic) do ---------------------------------------------------------

    def _stamp(self, obj: dict[str, Any], object_type: str, id_: str | None = None) -> dict[str, Any]:
        now = _now()
        out = dict(obj)
        out["id"] = id_ or out.get("id") or f"{object_type.lower()}-{next(self._ids)}"
        out.setdefault("createdDateTime", now)
        out["modificationDateTime"] = now
        out["objectType"] = object_type
        return out

    async def add_program(self, program: dict[str, Any]) -> dict[str, Any]:
        stored = self._stamp(program, "PROGRAM")
        self.programs[stored["id"]] = stored
        return stored

    async def put_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Create (no id, or a new one) or replace an event, then notify the subscribers."""
        existed = event.get("id") in self.events
        stored = self._stamp(event, "EVENT")
        self.events[stored["id"]] = stored
        await self._notify("EVENT", "PUT" if existed else "POST", stored)
        return stored

    async def delete_event(self, event_id: str) -> None:
        stored = self.events.pop(event_id)
        await self._notify("EVENT", "DELETE", stored)

    async def _notify(self, object_type: str, operation: str, obj: dict[str, Any]) -> None:
        for sub in list(self.subscriptions.values()):
            if sub.get("programID") != obj.get("programID"):
                continue
            for op in sub.get("objectOperations", []):
                if object_type not in op.get("objects", []) or _OPERATIONS[operation] not in op.get(
                    "operations", []
                ):
                    continue
                headers = {}
                if op.get("bearerToken"):
                    headers["Authorization"] = f"Bearer {op['bearerToken']}"
                body = {"objectType": object_type, "operation": operation, "object": obj}
                try:
                    answer = await self._http.post(op["callbackUrl"], json=body, headers=headers)
                    self.callbacks.append((operation, answer.status_code))
                except httpx.HTTPError:
                    self.callbacks.append((operation, 0))

    # -- the API ---------------------------------------------------------------------------------------------

    def _auth(self, request: Request[Any, Any, Any]) -> None:
        self.requests.append((request.method, request.url.path.removeprefix(BASE_PATH)))
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expires = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None or expires < time.monotonic():
            raise HTTPException(status_code=401, detail="invalid or expired token")

    @staticmethod
    def _page(items: list[dict[str, Any]], request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        skip = int(request.query_params.get("skip", 0))
        limit = min(50, int(request.query_params.get("limit", 50)))
        return items[skip : skip + limit]

    def app(self) -> Litestar:
        vtn = self

        @post("/auth/token", status_code=200)
        async def token(request: Request[Any, Any, Any]) -> dict[str, Any]:
            form = await request.form()
            if form.get("grant_type") != "client_credentials":
                raise HTTPException(status_code=400, detail="unsupported_grant_type")
            if vtn.credentials.get(str(form.get("client_id"))) != form.get("client_secret"):
                raise HTTPException(status_code=401, detail="invalid_client")
            value = secrets.token_urlsafe(16)
            vtn.tokens[value] = time.monotonic() + vtn.token_lifetime_s
            vtn.tokens_issued += 1
            return {"access_token": value, "token_type": "Bearer", "expires_in": vtn.token_lifetime_s}

        @get("/programs")
        async def programs(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
            vtn._auth(request)
            return vtn._page(list(vtn.programs.values()), request)

        @get("/events")
        async def events(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
            vtn._auth(request)
            program_id = request.query_params.get("programID")
            items = [e for e in vtn.events.values() if program_id in (None, e.get("programID"))]
            return vtn._page(items, request)

        @get("/vens")
        async def vens(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
            vtn._auth(request)
            name = request.query_params.get("venName")
            return vtn._page([v for v in vtn.vens.values() if name in (None, v["venName"])], request)

        @post("/vens")
        async def create_ven(request: Request[Any, Any, Any]) -> dict[str, Any]:
            vtn._auth(request)
            body = await request.json()
            if not body.get("venName"):
                raise HTTPException(status_code=400, detail="venName is required")
            if any(v["venName"] == body["venName"] for v in vtn.vens.values()):
                raise HTTPException(status_code=409, detail="venName exists")
            stored = vtn._stamp(body, "VEN")
            vtn.vens[stored["id"]] = stored
            return stored

        @get("/vens/{ven_id:str}/resources")
        async def resources(request: Request[Any, Any, Any], ven_id: ObjectId) -> list[dict[str, Any]]:
            vtn._auth(request)
            if vtn.resources_at_top:
                raise HTTPException(status_code=404, detail="not found")
            return vtn._page([r for r in vtn.resources.values() if r["venID"] == ven_id], request)

        @get("/resources")
        async def top_resources(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
            vtn._auth(request)
            if not vtn.resources_at_top:
                raise HTTPException(status_code=404, detail="not found")
            ven_id = request.query_params.get("venID")
            return vtn._page([r for r in vtn.resources.values() if ven_id in (None, r["venID"])], request)

        @post("/vens/{ven_id:str}/resources")
        async def create_resource(request: Request[Any, Any, Any], ven_id: ObjectId) -> dict[str, Any]:
            vtn._auth(request)
            if ven_id not in vtn.vens:
                raise HTTPException(status_code=404, detail="no such ven")
            body = await request.json()
            if not body.get("resourceName"):
                raise HTTPException(status_code=400, detail="resourceName is required")
            stored = vtn._stamp({**body, "venID": ven_id}, "RESOURCE")
            vtn.resources[stored["id"]] = stored
            return stored

        @post("/reports")
        async def create_report(request: Request[Any, Any, Any]) -> dict[str, Any]:
            vtn._auth(request)
            body = await request.json()
            for required in ("programID", "eventID", "clientName", "resources"):
                if required not in body:
                    raise HTTPException(status_code=400, detail=f"{required} is required")
            stored = vtn._stamp(body, "REPORT")
            vtn.reports.append(stored)
            return stored

        @get("/subscriptions")
        async def subscriptions(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
            vtn._auth(request)
            name = request.query_params.get("clientName")
            return vtn._page(
                [s for s in vtn.subscriptions.values() if name in (None, s["clientName"])], request
            )

        @post("/subscriptions")
        async def create_subscription(request: Request[Any, Any, Any]) -> dict[str, Any]:
            vtn._auth(request)
            body = await request.json()
            for required in ("clientName", "programID", "objectOperations"):
                if required not in body:
                    raise HTTPException(status_code=400, detail=f"{required} is required")
            stored = vtn._stamp(body, "SUBSCRIPTION")
            vtn.subscriptions[stored["id"]] = stored
            return stored

        @delete("/subscriptions/{subscription_id:str}", status_code=200)
        async def delete_subscription(
            request: Request[Any, Any, Any], subscription_id: ObjectId
        ) -> dict[str, Any]:
            vtn._auth(request)
            if subscription_id not in vtn.subscriptions:
                raise HTTPException(status_code=404, detail="no such subscription")
            return vtn.subscriptions.pop(subscription_id)

        @put("/events/{event_id:str}")
        async def replace_event(request: Request[Any, Any, Any], event_id: ObjectId) -> dict[str, Any]:
            vtn._auth(request)
            if event_id not in vtn.events:
                raise HTTPException(status_code=404, detail="no such event")
            return await vtn.put_event({**(await request.json()), "id": event_id})

        handlers = [
            token,
            programs,
            events,
            vens,
            create_ven,
            resources,
            top_resources,
            create_resource,
            create_report,
            subscriptions,
            create_subscription,
            delete_subscription,
            replace_event,
        ]
        from litestar import Router

        return Litestar(
            route_handlers=[Router(BASE_PATH, route_handlers=handlers)], openapi_config=None, debug=False
        )
