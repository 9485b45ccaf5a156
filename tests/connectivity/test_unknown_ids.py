"""Unknown charger ids in-process: the link tracker records no charger row for an id the store does not know
and forgets its presence when it leaves without booting, while registered and recorded chargers keep theirs; a
boot records the charger (its presence is kept from then on) and, for an id unknown until then, tells the
gateway workers, without ever replacing a password they hold."""

from __future__ import annotations

from ampgate.connectivity import KnownChargers, LinkTracker, PresenceRegistry
from ampgate.events import ChargerConnected, ChargerDisconnected
from ampgate.ocpp.boot import BootHandlers

from ..ocpp.fakes import Harness

W0 = 0 << 56 | 1 << 40  # worker 0, generation 1
BOOT16 = {"chargePointVendor": "V", "chargePointModel": "M"}


class Rows:
    """The charger rows the store has committed (an indexed read in the node)."""

    def __init__(self, *ids: str) -> None:
        self.ids = set(ids)
        self.reads = 0

    def exists(self, cp_id: str) -> bool:
        self.reads += 1
        return cp_id in self.ids


def setup(*rows: str) -> tuple[Harness, PresenceRegistry, LinkTracker, Rows, list[list[tuple[str, str]]]]:
    h = Harness(accepted=["REGISTERED"])
    presence = PresenceRegistry()
    table = Rows("REGISTERED", *rows)
    pushed: list[list[tuple[str, str]]] = []
    known = KnownChargers(h.policy, table, pushed.append)
    links = LinkTracker(presence, h.router, h.link, h.chargers, h.bus, h.clock, known=known.known)
    BootHandlers(h.policy, h.chargers, h.bus, h.clock, h.router.time, first_boot=known.first_boot).register(
        h.router
    )
    return h, presence, links, table, pushed


def test_an_unknown_id_that_never_boots_leaves_no_row_and_no_presence() -> None:
    h, presence, links, _, pushed = setup()
    for i in range(50):
        links.connected(W0 | i, f"RND{i}", "ocpp1.6", "127.0.0.1:1", None)
    assert presence.online_count() == 50 and len(presence) == 50
    for i in range(50):
        links.disconnected(W0 | i, 1006, "gone", None)
    assert len(presence) == 0 and presence.get("RND0") is None
    # No charger row was asked for, and the workers were told nothing.
    assert h.chargers.connections == [] and h.chargers.boots == [] and pushed == []
    # Connects and disconnects are still published (the event log and history hear of them).
    kinds = [type(e) for e in h.published()]
    assert kinds.count(ChargerConnected) == 50 and kinds.count(ChargerDisconnected) == 50


def test_registered_and_recorded_chargers_keep_their_presence_and_rows() -> None:
    h, presence, links, table, _ = setup("BOOTED-BEFORE")
    links.connected(W0 | 1, "REGISTERED", "ocpp1.6", "p", None)
    links.connected(W0 | 2, "BOOTED-BEFORE", "ocpp2.0.1", "p", None)
    assert h.chargers.connections == [("REGISTERED", "ocpp1.6"), ("BOOTED-BEFORE", "ocpp2.0.1")]
    # The accepted set answers for an accepted charger; only the other one costs a read.
    assert table.reads == 1
    links.disconnected(W0 | 1, 1000, "", None)
    links.disconnected(W0 | 2, 1000, "", None)
    assert len(presence) == 2
    p = presence.get("BOOTED-BEFORE")
    assert p is not None and not p.online and p.recorded
    # Reconnecting: known from its presence, no read.
    links.connected(W0 | 3, "BOOTED-BEFORE", "ocpp2.0.1", "p", None)
    assert table.reads == 1


def test_a_boot_records_an_unknown_charger_and_tells_the_workers_once() -> None:
    h, presence, links, _, pushed = setup()
    links.connected(W0 | 1, "NEWBIE", "ocpp1.6", "p", None)
    session = h.router.sessions[W0 | 1]
    assert h.call(session, "BootNotification", BOOT16)[2]["status"] == "Accepted"
    assert [b.charger_id for b in h.chargers.boots] == ["NEWBIE"]
    assert pushed == [[("NEWBIE", "", 1)]]
    # Booted: it stays when it leaves, and a second boot tells the workers nothing more.
    assert h.call(session, "BootNotification", BOOT16, "m2")[2]["status"] == "Accepted"
    assert pushed == [[("NEWBIE", "", 1)]]
    links.disconnected(W0 | 1, 1000, "", None)
    p = presence.get("NEWBIE")
    assert p is not None and p.recorded and not p.online


def test_a_pending_policy_still_records_the_booted_charger() -> None:
    h = Harness(unknown_boot="pending")
    presence = PresenceRegistry()
    pushed: list[list[tuple[str, str]]] = []
    known = KnownChargers(h.policy, Rows(), pushed.append)
    links = LinkTracker(presence, h.router, h.link, h.chargers, h.bus, h.clock, known=known.known)
    BootHandlers(h.policy, h.chargers, h.bus, h.clock, h.router.time, first_boot=known.first_boot).register(
        h.router
    )
    links.connected(W0 | 1, "WAITING", "ocpp1.6", "p", None)
    assert h.call(h.router.sessions[W0 | 1], "BootNotification", BOOT16)[2]["status"] == "Pending"
    assert [b.charger_id for b in h.chargers.boots] == ["WAITING"] and pushed == [[("WAITING", "", 1)]]
    links.disconnected(W0 | 1, 1000, "", None)
    assert presence.get("WAITING") is not None


def test_a_charger_registered_while_connected_as_unknown_is_kept_and_its_password_never_replaced() -> None:
    h, presence, links, table, pushed = setup()
    links.connected(W0 | 1, "LATE", "ocpp1.6", "p", None)
    # An admin registers it meanwhile (committed, accepted; its registration pushed its own credentials).
    table.ids.add("LATE")
    h.policy.accept(["LATE"])
    assert h.call(h.router.sessions[W0 | 1], "BootNotification", BOOT16)[2]["status"] == "Accepted"
    assert pushed == []
    links.disconnected(W0 | 1, 1000, "", None)
    assert presence.get("LATE") is not None

    # Registered while connected, gone before any boot: kept too.
    links.connected(W0 | 2, "QUIET", "ocpp1.6", "p", None)
    table.ids.add("QUIET")
    links.disconnected(W0 | 2, 1000, "", None)
    assert presence.get("QUIET") is not None


def test_forget_drops_only_an_offline_record() -> None:
    presence = PresenceRegistry()
    presence.connected(W0 | 1, "X", "ocpp1.6", "p", 1.0)
    assert not presence.forget("X") and presence.get("X") is not None
    presence.disconnected(W0 | 1, 2.0)
    assert presence.forget("X") and presence.get("X") is None and len(presence) == 0
    assert not presence.forget("X")
