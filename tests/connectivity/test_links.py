"""The link tracker in-process: a connection opens a session, is recorded and published; a second connection
of the same charger replaces the first (closed, published once as replaced); a worker's death takes its
connections offline; frames reach a charger by its id only while it is online."""

from __future__ import annotations

from ampgate.connectivity import ChargerSender, LinkTracker, PresenceRegistry
from ampgate.connectivity.links import REPLACED_CODE, REPLACED_REASON, WORKER_LOST_CODE
from ampgate.events import ChargerConnected, ChargerDisconnected

from ..ocpp.fakes import Harness

W0 = 0 << 56 | 1 << 40  # worker 0, generation 1
W1 = 1 << 56 | 1 << 40  # worker 1, generation 1


def setup() -> tuple[Harness, PresenceRegistry, LinkTracker]:
    h = Harness(accepted=["CP1"])
    presence = PresenceRegistry()
    return h, presence, LinkTracker(presence, h.router, h.link, h.chargers, h.bus, h.clock)


def test_connect_replace_and_disconnect() -> None:
    h, presence, links = setup()
    links.connected(W0 | 1, "CP1", "ocpp1.6", "127.0.0.1:5000", 100.5)
    assert W0 | 1 in h.router.sessions and h.router.sessions[W0 | 1].boot_state == "Accepted"
    assert h.chargers.connections == [("CP1", "ocpp1.6")]
    (up,) = h.published()
    assert isinstance(up, ChargerConnected)
    assert (up.charger_id, up.conn_id, up.protocol, up.remote_address, up.worker_at) == (
        "CP1",
        W0 | 1,
        "ocpp1.6",
        "127.0.0.1:5000",
        100.5,
    )

    # The same charger again (its old socket half-open): the new one wins.
    links.connected(W1 | 7, "CP1", "ocpp2.0.1", "127.0.0.1:5001", 101.0)
    assert h.link.closed == [(W0 | 1, REPLACED_CODE, REPLACED_REASON)]
    assert W0 | 1 not in h.router.sessions and W1 | 7 in h.router.sessions
    replaced, again = h.published()
    assert isinstance(replaced, ChargerDisconnected) and (replaced.conn_id, replaced.reason) == (
        W0 | 1,
        REPLACED_REASON,
    )
    assert isinstance(again, ChargerConnected) and again.conn_id == W1 | 7
    # The old socket's own close arrives late: nothing changes, nothing is published.
    links.disconnected(W0 | 1, 1006, "connection lost", 101.2)
    p = presence.get("CP1")
    assert p is not None and p.online and p.conn_id == W1 | 7
    assert h.published() == []

    links.disconnected(W1 | 7, 1000, "bye", 102.0)
    (gone,) = h.published()
    assert isinstance(gone, ChargerDisconnected)
    assert (gone.conn_id, gone.code, gone.reason, gone.worker_at) == (W1 | 7, 1000, "bye", 102.0)
    assert not presence.get("CP1").online and h.router.sessions == {}  # type: ignore[union-attr]


def test_a_lost_worker_takes_its_connections_offline_and_no_others() -> None:
    h, presence, links = setup()
    links.connected(W0 | 1, "A", "ocpp1.6", "p", None)
    links.connected(W0 | 2, "B", "ocpp1.6", "p", None)
    links.connected(W1 | 3, "C", "ocpp1.6", "p", None)
    h.published()
    links.worker_lost(0, 1)
    gone = h.published()
    assert sorted(e.charger_id for e in gone) == ["A", "B"]  # type: ignore[misc]
    assert all(isinstance(e, ChargerDisconnected) and e.code == WORKER_LOST_CODE for e in gone)
    assert presence.online_count() == 1 and list(h.router.sessions) == [W1 | 3]


def test_frames_reach_a_charger_by_id_while_it_is_online() -> None:
    h, presence, links = setup()
    send = ChargerSender(presence, h.link).send
    assert not send("CP1", b"[]")  # never connected
    links.connected(W0 | 1, "CP1", "ocpp1.6", "p", None)
    assert send("CP1", b'[2,"a","Reset",{}]')
    assert h.link.sent == [(W0 | 1, [2, "a", "Reset", {}])]
    links.disconnected(W0 | 1, 1006, "connection lost", None)
    assert not send("CP1", b"[]")


def test_a_late_connected_of_an_older_connection_is_closed_and_the_newer_stays() -> None:
    from ampgate.connectivity.links import OLDER_REASON

    h, presence, links = setup()
    links.connected(W1 | 7, "CP1", "ocpp1.6", "new", 200.0)
    h.published()
    # The older handshake (worker time 150.0) is reported after the newer one, through another worker.
    links.connected(W0 | 1, "CP1", "ocpp1.6", "old", 150.0)
    assert h.link.closed == [(W0 | 1, REPLACED_CODE, OLDER_REASON)]
    assert list(h.router.sessions) == [W1 | 7]
    assert h.published() == []
    p = presence.get("CP1")
    assert p is not None and p.conn_id == W1 | 7 and p.peer == "new"
    # Its own disconnect later changes nothing.
    links.disconnected(W0 | 1, 1000, "", 151.0)
    assert p.online and h.published() == []


def test_the_sender_refuses_a_frame_over_the_limits_with_a_clear_error() -> None:
    import pytest

    from ampgate.config import HUB_MAX_SEND
    from ampgate.errors import PayloadTooLargeError

    class Hub:
        def __init__(self) -> None:
            self.sent: list[tuple[int, bytes]] = []

        def send(self, batch: list[tuple[int, bytes]]) -> None:
            if any(len(m) > 100 for _, m in batch):  # a hub whose own limit is lower than max_message
                raise ValueError("message too large")
            self.sent.extend(batch)

        def close(self, batch: list[tuple[int, int, str]]) -> None: ...

    presence = PresenceRegistry()
    presence.connected(W0 | 1, "CP1", "ocpp1.6", "p", 1.0)
    hub = Hub()
    sender = ChargerSender(presence, hub, max_message=200)
    assert sender.send("CP1", b"x" * 50) and hub.sent == [(W0 | 1, b"x" * 50)]
    assert not sender.send("NOBODY", b"x")
    with pytest.raises(PayloadTooLargeError, match=r"201 bytes .* limit of 200") as e:
        sender.send("CP1", b"x" * 201)
    assert (e.value.code, e.value.field) == ("message_too_large", "payload")
    with pytest.raises(PayloadTooLargeError, match=f"limit of {HUB_MAX_SEND}"):
        sender.send("CP1", b"x" * 150)
    assert len(hub.sent) == 1
