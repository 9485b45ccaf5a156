"""Integer ids in paths (`/{log_id:int}`, `/{campaign_id:int}`, ...) are row ids: SQLite INTEGER, 64 bits signed.
A larger one names nothing that can exist, so it is answered 404 naming the parameter, in one place, before any
route reads it; handed to the store it raised OverflowError and came back as a 500 (found by
tests/fuzz/test_api_schemathesis.py)."""

from __future__ import annotations

from litestar import Request

from ampgate.errors import NotFoundError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def ids_in_range(request: Request) -> None:
    """Litestar `before_request`: raises NotFoundError (404, `field` the parameter) for an integer path
    parameter outside 64 bits."""
    for name, value in request.path_params.items():
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise NotFoundError(f"no {name} {value}: ids are 64-bit integers", field=name)
