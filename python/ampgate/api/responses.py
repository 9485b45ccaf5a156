"""The API's JSON responses: money is a `Decimal` in code and a JSON number on the wire
(shared/API-CONVENTIONS.md). msgspec writes a Decimal as a string unless told otherwise, and Litestar's encoders
hand it to msgspec as is, so the app's response class encodes JSON with `decimal_format="number"` (exact: the
Decimal's digits, never a float's). Everything else encodes as Litestar would."""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
from litestar import Response
from litestar._openapi.schema_generation import SchemaCreator
from litestar.exceptions import ImproperlyConfiguredException
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.response.base import MEDIA_TYPE_APPLICATION_JSON_PATTERN
from litestar.serialization import default_serializer
from litestar.typing import FieldDefinition

T = TypeVar("T")


@functools.lru_cache(maxsize=16)
def _encoder(enc_hook: Callable[[Any], Any]) -> msgspec.json.Encoder:
    return msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")


class NumberResponse(Response[T]):
    """A Litestar response whose JSON writes Decimals as numbers; set as the app's `response_class`, and used
    by handlers that build their response (201 with Location)."""

    def render(self, content: Any, media_type: str, enc_hook: Any = default_serializer) -> bytes:
        if isinstance(content, bytes | str) or not MEDIA_TYPE_APPLICATION_JSON_PATTERN.match(media_type):
            return super().render(content, media_type, enc_hook)
        try:
            return _encoder(enc_hook).encode(content)
        except (TypeError, msgspec.EncodeError) as e:
            raise ImproperlyConfiguredException("Unable to serialize response content") from e


class DecimalSchema(OpenAPISchemaPlugin):
    """Documents a Decimal as what NumberResponse writes, a JSON number: Litestar's own schema for a Decimal is a
    string (msgspec's default encoding), which no answer of ours matches. For both apps' `plugins`."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is Decimal

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        return Schema(type=OpenAPIType.NUMBER)
