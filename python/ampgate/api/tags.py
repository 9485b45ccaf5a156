"""/api/v1/chargers/{charger_id}/tags: the labels firmware campaigns (and operators) select chargers by. PUT replaces
the set; each tag is 1 to 64 characters of A-Z a-z 0-9 . _ - : / (`ampgate.fleet.tags`), at most 32 per charger.

Roles: setting tags is for admins (they decide which chargers a campaign reaches); reading them for viewers.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import ChargerTags
from ampgate.api.paging import COMMON_ERRORS
from ampgate.api.schemas import ErrorBody
from ampgate.fleet import MAX_TAG, MAX_TAGS, TAG_ALPHABET


class TagsBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A charger's tags (the whole set)."""

    tags: Annotated[
        list[str],
        Meta(
            description=f"At most {MAX_TAGS}, each 1 to {MAX_TAG} characters of {TAG_ALPHABET}; duplicates are "
            "dropped, the answer is sorted",
            examples=[["region:nl", "pilot"]],
        ),
    ]


_ERRORS = {**COMMON_ERRORS, 404: ResponseSpec(ErrorBody, description="No such charger (`field`: id)")}


class ChargerTagController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/tags"
    tags = ("chargers",)

    @put(
        "/",
        operation_id="put_charger_tags",
        guards=[requires_admin],
        responses=_ERRORS,
        summary="Replace a charger's tags (role: admin)",
        description="Role: admin. 422 naming `tags[i]` (outside the alphabet, empty, too long) or `tags` "
        f"(more than {MAX_TAGS}).",
    )
    async def put_tags(
        self,
        fleet: NamedDependency[ChargerTags],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        data: JSONBody[TagsBody],
    ) -> TagsBody:
        """The tags as stored, sorted. 404 (field id), 422 naming the field."""
        return TagsBody(tags=list(await fleet.set_tags(charger_id, data.tags)))

    @get(
        "/",
        operation_id="get_charger_tags",
        guards=[requires_viewer],
        responses=_ERRORS,
        summary="A charger's tags (role: viewer)",
        description="Role: viewer. Sorted.",
    )
    async def get_tags(
        self,
        fleet: NamedDependency[ChargerTags],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
    ) -> TagsBody:
        """404 (field id)."""
        return TagsBody(tags=list(fleet.tags(charger_id)))
