"""/api/v1/ocpi/parties: the OCPI parties this node roams with (admin: API-CONVENTIONS "OCPI parties").

`POST` adds a party and answers its registration token (`token_a`, shown once) with our versions URL: hand both
to the party out of band, and it registers with us. Or register with it: `POST …/{id}/register` with its versions
URL and the registration token it issued us. `DELETE` tells a registered party it is unregistered (best effort)
and forgets it. Without `--ocpi-country-code` / `--ocpi-party-id` every route is 409 `ocpi_not_configured`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin
from ampgate.api.deps import OcpiParties
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor
from ampgate.api.schemas import ErrorBody
from ampgate.errors import NotFoundError
from ampgate.roaming.parties import Party

PARTIES_PATH = "/api/v1/ocpi/parties"


# -- bodies -------------------------------------------------------------------------------------------------------


class PartyCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    country_code: Annotated[
        str,
        Meta(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 code of the party", examples=["NL"]),
    ]
    party_id: Annotated[
        str,
        Meta(pattern=r"^[A-Za-z0-9]{3}$", description="The party's 3-character OCPI id", examples=["EMP"]),
    ]
    role: Annotated[str, Meta(description="CPO, EMSP, HUB, NAP, NSP, OTHER or SCSP", examples=["EMSP"])] = (
        "EMSP"
    )
    name: Annotated[str, Meta(max_length=100, description="What operators call it")] | None = None


class RegisterBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    versions_url: Annotated[
        str, Meta(pattern=r"^https?://", max_length=255, description="The party's OCPI versions endpoint")
    ]
    token: Annotated[
        str,
        Meta(
            pattern=r"^[!-~]{1,64}$",
            description="The registration token (CREDENTIALS_TOKEN_A) the party issued us",
        ),
    ]


class EndpointRead(msgspec.Struct, kw_only=True):
    identifier: str
    role: str
    url: str


class RoleRead(msgspec.Struct, kw_only=True):
    role: str
    country_code: str
    party_id: str
    name: str


class PushRead(msgspec.Struct, kw_only=True):
    """Location pushes to the party since the node started: `failing` after several failures in a row."""

    sent: int
    failed: int
    dropped: int
    pending: int
    failing: bool
    last_error: str | None
    last_sent_at: datetime | None


class PartyRead(msgspec.Struct, kw_only=True):
    """A party. `versions_url` is ours (what the party registers at); `their_versions_url`, `version`,
    `endpoints` and `roles` are the party's, once registered. `push` is null when nothing is pushed to it (not
    registered, or no locations receiver endpoint)."""

    id: int
    country_code: str
    party_id: str
    role: str
    name: str | None
    state: Annotated[str, Meta(description="pending (registration token issued), registered or unregistered")]
    registered_by: Annotated[str | None, Meta(description="them: it registered with us; us: we with it")]
    registered_at: datetime | None
    versions_url: str
    their_versions_url: str | None
    version: str | None
    endpoints: list[EndpointRead]
    roles: list[RoleRead]
    push: PushRead | None
    created_at: datetime
    updated_at: datetime


class PartyCreated(PartyRead, kw_only=True):
    token_a: Annotated[
        str,
        Meta(
            description="The registration token (CREDENTIALS_TOKEN_A): give it to the party with versions_url."
            " Shown once; only its digest is kept."
        ),
    ]


class PartyPage(msgspec.Struct, kw_only=True):
    items: list[PartyRead]
    next_cursor: str | None


def _read(party: Party, ocpi: OcpiParties, cls: type[Any] = PartyRead, **extra: Any) -> Any:
    stats = ocpi.push_stats(party.id)
    return cls(
        id=party.id,
        country_code=party.country_code,
        party_id=party.party_id,
        role=party.role,
        name=party.name,
        state=party.state,
        registered_by=party.registered_by,
        registered_at=party.registered_at,
        versions_url=ocpi.versions_url,
        their_versions_url=party.versions_url,
        version=party.version,
        endpoints=[
            EndpointRead(identifier=e.identifier, role=e.role.value, url=e.url) for e in party.endpoints
        ],
        roles=[
            RoleRead(
                role=r.role.value,
                country_code=r.country_code,
                party_id=r.party_id,
                name=r.business_details.name,
            )
            for r in party.roles
        ],
        push=None if stats is None else PushRead(**msgspec.structs.asdict(stats)),
        created_at=party.created_at,
        updated_at=party.updated_at,
        **extra,
    )


def _party(ocpi: OcpiParties, ref: int) -> Party:
    party = ocpi.get(ref)
    if party is None:
        raise NotFoundError(f"OCPI party {ref} does not exist", field="id")
    return party


PartyRef = Annotated[int, Parameter(description="The party's id (ours)")]
_404 = {404: ResponseSpec(ErrorBody, description="No such party (`field`: id)")}
_409 = {
    409: ResponseSpec(
        ErrorBody,
        description="`party_exists`, `registration_running`, `ocpi_not_configured` (no --ocpi-* options)",
    )
}
_502 = {
    502: ResponseSpec(
        ErrorBody,
        description="The party could not be used: `party_unreachable`, `party_refused`, `unsupported_version`,"
        " `no_credentials_endpoint`",
    )
}


class OcpiPartyController(Controller):
    path = PARTIES_PATH
    tags = ("ocpi",)

    @post(
        "/",
        operation_id="create_ocpi_party",
        guards=[requires_admin],
        status_code=201,
        responses={**COMMON_ERRORS, **_409},
        summary="Add an OCPI party",
        description="Role: admin. 201 with the party, its registration token `token_a` (shown once) and our "
        "`versions_url`: the party registers with us using both. 409 `party_exists`.",
    )
    async def create_party(
        self, ocpi: NamedDependency[OcpiParties], data: JSONBody[PartyCreate]
    ) -> Response[PartyCreated]:
        """Role: admin. 201 + Location; 409 `party_exists`; 422 naming country_code, party_id or role."""
        party, token = await ocpi.create(data.country_code, data.party_id, data.role, data.name)
        body = _read(party, ocpi, PartyCreated, token_a=token)
        return Response(body, status_code=201, headers={"Location": f"{PARTIES_PATH}/{party.id}"})

    @get(
        "/",
        operation_id="list_ocpi_parties",
        guards=[requires_admin],
        responses={**COMMON_ERRORS, **_409},
        summary="List OCPI parties",
        description="Role: admin. Parties in id order with their state, endpoints and push counters.",
    )
    async def list_parties(
        self, ocpi: NamedDependency[OcpiParties], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> PartyPage:
        """Role: admin. One page; 422 naming limit or cursor."""
        rows = ocpi.page(limit + 1, int_cursor(cursor))
        more = len(rows) > limit
        rows = rows[:limit]
        return PartyPage(
            items=[_read(p, ocpi) for p in rows], next_cursor=str(rows[-1].id) if more and rows else None
        )

    @get(
        "/{ref:int}",
        operation_id="get_ocpi_party",
        guards=[requires_admin],
        responses={**COMMON_ERRORS, **_404, **_409},
        summary="One OCPI party",
        description="Role: admin.",
    )
    async def get_party(self, ocpi: NamedDependency[OcpiParties], ref: PartyRef) -> PartyRead:
        """Role: admin. 404 (field id)."""
        result: PartyRead = _read(_party(ocpi, ref), ocpi)
        return result

    @delete(
        "/{ref:int}",
        operation_id="delete_ocpi_party",
        guards=[requires_admin],
        status_code=204,
        responses={**COMMON_ERRORS, **_404, **_409},
        summary="Remove an OCPI party",
        description="Role: admin. A registered party is sent DELETE on its credentials endpoint first (best "
        "effort); then its tokens stop working and nothing more is pushed to it. 204.",
    )
    async def delete_party(self, ocpi: NamedDependency[OcpiParties], ref: PartyRef) -> Response[None]:
        """Role: admin. 204; 404 (field id)."""
        await ocpi.delete(ref)
        return Response(None, status_code=204)

    @post(
        "/{ref:int}/register",
        operation_id="register_with_ocpi_party",
        guards=[requires_admin],
        status_code=200,
        responses={**COMMON_ERRORS, **_404, **_409, **_502},
        summary="Register with an OCPI party",
        description="Role: admin. The credentials handshake with us as the sender: read the party's versions "
        "and 2.2.1 endpoints with the registration token it issued us, POST our credentials, keep its token. "
        "200 with the party once registered; a registered party is answered as it is (idempotent).",
    )
    async def register(
        self, ocpi: NamedDependency[OcpiParties], ref: PartyRef, data: JSONBody[RegisterBody]
    ) -> PartyRead:
        """Role: admin. 200; 404 (field id); 409 `registration_running`; 502 naming what failed at the party."""
        party = _party(ocpi, ref)
        if party.state != "registered":
            party = await ocpi.register_with(ref, data.versions_url, data.token)
        result: PartyRead = _read(party, ocpi)
        return result
