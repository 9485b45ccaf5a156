"""The router's error handling on paths a well-behaved charger cannot reach: a handler that fails."""

from __future__ import annotations

import msgspec

from ampgate.config import NodeConfig
from ampgate.node import Node


def test_a_failing_handler_answers_internal_error_and_the_session_goes_on(tmp_path):
    node = Node(NodeConfig(db_path=str(tmp_path / "t.db")))
    node.accepted.add("CP1")  # accepted before: served without a new BootNotification
    node.presence.connected(1, "CP1", "ocpp1.6", "127.0.0.1:1", 0.0)
    presence = node.presence.get("CP1")
    assert presence is not None
    node.ocpp.open(1, presence, "ocpp1.6")
    session = node.ocpp.sessions[1]

    def broken(session, req):
        raise RuntimeError("a bug")

    node.ocpp.register("ocpp1.6", "DiagnosticsStatusNotification", broken)
    reply = node.ocpp._handle(session, b'[2,"x","DiagnosticsStatusNotification",{"status":"Idle"}]')
    assert reply is not None
    assert msgspec.json.decode(reply)[:3] == [4, "x", "InternalError"]
    node.ocpp.now_iso = "2026-01-01T00:00:00.000Z"
    ok = node.ocpp._handle(session, b'[2,"y","Heartbeat",{}]')
    assert ok is not None
    assert msgspec.json.decode(ok) == [3, "y", {"currentTime": "2026-01-01T00:00:00.000Z"}]
    node.store.close()
