"""bench/compare.py takes its meter-value figures from the load's own series in the simulator's report, in both
protocol versions: a 2.0.1 meter value goes out as a TransactionEvent, and the per-action figures of that action
also hold the load's TransactionEvent Started (and any the charger sent on its own)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from ampgate.sim.report import finish_report, merge_reports

ROOT = Path(__file__).resolve().parents[2]
ANSWERED = 1000
AFTER_END = 10
CHARGERS = 20


@pytest.fixture
def compare(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("compare")


def sim_report(action: str) -> dict:
    """The simulator's final report of a MeterValues load: the load's round trips all took 1 ms; the action's
    per-action histogram also holds 20 slow round trips that were not load CALLs (the load's starts)."""
    process = {
        "chargers": CHARGERS,
        "booted": CHARGERS,
        "latency_us": {action: [[1000, ANSWERED], [900_000, CHARGERS]]},
        "latency_max_us": {action: 900_000},
        "errors": {},
        "load": {
            "message": "MeterValues",
            "action": action,
            "connector": 1,
            "sent": ANSWERED,
            "answered": ANSWERED,
            "answered_after_end": AFTER_END,
            "latency_us": {action: [[1000, ANSWERED]]},
            "latency_max_us": {action: 1000},
            "transactions": {"started": CHARGERS, "stopped": 0, "refused": 0},
        },
    }
    return finish_report(merge_reports([process]))


@pytest.mark.parametrize("action", ["MeterValues", "TransactionEvent"])
def test_meter_figures_come_from_the_load_series(compare: ModuleType, action: str) -> None:
    load = compare.Load("MeterValues", 0, 2.0)
    run = compare.SimRun(sim_report(action), [], 0.0, 12.0, load, wall_s=12.0, sim_cpu_s=1.0)
    f = compare.load_figures(run)
    assert (f["message"], f["sent_as"]) == ("MeterValues", action)
    # Answers that came while the links closed are outside the 10 s window.
    assert f["round_trips"] == ANSWERED - AFTER_END
    assert f["per_s"] == 99
    # The load's latency alone: the 20 slow starts are not in it.
    assert (f["p50_ms"], f["p99_ms"], f["max_ms"]) == (1.0, 1.0, 1.0)
    assert f["load_transactions"] == {"started": CHARGERS, "stopped": 0, "refused": 0}


def test_every_system_says_what_it_does_with_a_message(compare: ModuleType) -> None:
    assert set(compare.PER_MESSAGE) == set(compare.SYSTEMS)
    assert "SQLite before it replies" in compare.PER_MESSAGE["ampgate"]
    for peer in ("websockets", "picows", "ocpp-rpc"):
        assert "stores nothing" in compare.PER_MESSAGE[peer]
    assert "no validation" in compare.PER_MESSAGE["limit"]


def test_the_node_peer_says_why_it_cannot_run(
    compare: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without Node.js, or without the peer's packages, the default run leaves the peer out with a reason that
    names the make target; the Python peers need nothing more than this Python."""
    server = tmp_path / "ocpp_rpc" / "server.js"
    server.parent.mkdir()
    server.write_text("")
    monkeypatch.setitem(compare.PEERS, "ocpp-rpc", server)
    monkeypatch.setattr(compare.shutil, "which", lambda _name: "/usr/bin/node")
    assert "node_modules" in compare.peer_unavailable("ocpp-rpc")
    assert "make bench-peers" in compare.peer_unavailable("ocpp-rpc")
    (server.parent / "node_modules" / "ocpp-rpc").mkdir(parents=True)
    assert compare.peer_unavailable("ocpp-rpc") is None
    assert compare.peer_command("ocpp-rpc") == ["/usr/bin/node", str(server)]
    monkeypatch.setattr(compare.shutil, "which", lambda _name: None)
    assert "Node.js" in compare.peer_unavailable("ocpp-rpc")
    for peer in ("websockets", "picows"):
        assert compare.peer_unavailable(peer) is None
