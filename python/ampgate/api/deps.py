"""What the API needs from the node, and the dependency that hands the node to handlers.

The API is written against these Protocols, not `ampgate.node.Node`, so it can be driven by a small stand-in
in tests and never imports the gateway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from litestar.datastructures import State

from ampgate.store import ChargerRow, Store


class PresenceView(Protocol):
    """A charger's live link state (see `ampgate.connectivity.Presence`)."""

    @property
    def online(self) -> bool: ...
    @property
    def protocol(self) -> str | None: ...
    @property
    def connected_since(self) -> datetime | None: ...
    @property
    def last_seen(self) -> datetime | None: ...


class PresenceLookup(Protocol):
    def get(self, charger_id: str, /) -> PresenceView | None: ...


# runtime_checkable: Litestar checks each injected dependency against its annotation with isinstance().
@runtime_checkable
class NodeView(Protocol):
    """The part of the node the API uses."""

    @property
    def store(self) -> Store: ...
    @property
    def presence(self) -> PresenceLookup: ...

    def health(self) -> dict[str, Any]: ...

    async def register_charger(self, charger_id: str, password: str | None, /) -> tuple[ChargerRow, bool]: ...

    async def command(self, charger_id: str, action: str, payload: Any, /) -> Any: ...

    async def send_local_list(
        self, charger_id: str, update_type: str, version: int | None, /
    ) -> dict[str, Any]: ...


def provide_node(state: State) -> NodeView:
    """The node the app was created for (put into `app.state.node` by `create_app`)."""
    node: NodeView = state.node
    return node
