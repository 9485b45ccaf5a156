"""Replies too large for the hub never raise into the pump: the rest of the batch goes, the connection whose reply
cannot go is closed with a reason; and the limits the settings are checked against are the extension's own."""

from __future__ import annotations

import pytest

from ampgate import _native
from ampgate.config import HUB_MAX_SEND, MAX_MESSAGE_LIMIT, MIN_MESSAGE, NodeConfig
from ampgate.gateway.outgoing import REPLY_TOO_LARGE_CODE, REPLY_TOO_LARGE_REASON, Outgoing


class StrictHub:
    """Refuses a whole batch with one message over the limit, as the native hub does."""

    def __init__(self) -> None:
        self.sent: list[list[tuple[int, bytes]]] = []
        self.closed: list[list[tuple[int, int, str]]] = []

    def send(self, batch: list[tuple[int, bytes]]) -> None:
        if any(len(m) > HUB_MAX_SEND for _, m in batch):
            raise ValueError("too large")
        self.sent.append(batch)

    def close(self, batch: list[tuple[int, int, str]]) -> None:
        self.closed.append(batch)


def test_a_too_large_reply_closes_its_connection_and_the_others_are_sent() -> None:
    hub = StrictHub()
    out = Outgoing(hub)
    big = b"x" * (HUB_MAX_SEND + 1)
    out.send([(1, b"a"), (2, big), (3, b"c"), (2, big)])
    assert hub.sent == [[(1, b"a"), (3, b"c")]]
    assert hub.closed == [[(2, REPLY_TOO_LARGE_CODE, REPLY_TOO_LARGE_REASON)]]
    assert out.refused == 2
    out.send([(4, b"fine")])
    assert hub.sent[-1] == [(4, b"fine")] and out.refused == 2


def test_the_mirrored_hub_limit_is_the_extensions() -> None:
    hub = _native.Hub()
    hub.send([(1, b"x" * HUB_MAX_SEND)])  # no such connection: dropped, but accepted by size
    with pytest.raises(ValueError, match=str(HUB_MAX_SEND)):
        hub.send([(1, b"x" * (HUB_MAX_SEND + 1))])
    Outgoing(hub).send([(1, b"x" * (HUB_MAX_SEND + 1)), (2, b"ok")])  # no raise


@pytest.mark.parametrize("value", [MIN_MESSAGE - 1, MAX_MESSAGE_LIMIT + 1, 64 << 20])
def test_a_max_message_outside_the_gateways_limits_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match="max_message"):
        NodeConfig(max_message=value)
    assert NodeConfig(max_message=MAX_MESSAGE_LIMIT).max_message == MAX_MESSAGE_LIMIT
