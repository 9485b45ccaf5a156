"""The built-in scenarios beyond steady, `ampgate sim` against a real node at small N: each does what it
promises, and the node saw it happen. Plus the schema check of a central system that sends invalid messages,
against a tiny hand-written one.

The node's store and presence say when a charger connected (`connected_since`) and first appeared
(`registered_at`: its first connection, for a charger admitted as unknown), so "this charger came back after
the storm" or "this one rebooted" is read from timestamps instead of racing the simulator's clock."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from ampgate.sim.scenario import FLAP, NO_ANSWER, load_scenario, pick_traits

from .nodes import all_pages, chargers, ts, wait_for

CHARGERS = 20
SEED = 3
# Starting the simulator's processes and booting the fleet; the node's fire-and-forget store writes.
ONLINE_TIMEOUT = 20.0
STORE_TIMEOUT = 10.0
# Beyond a run's duration: closing, and the processes' start and exit.
SIM_SLACK = 60.0


class SimRun:
    """`ampgate sim` started in the background; `finish()` waits for it and returns its JSON report."""

    def __init__(self, tmp_path: Path, url: str, chargers: int, *args: str) -> None:
        self.out = tmp_path / "report.json"
        self.log = tmp_path / "sim.log"
        cmd = [
            sys.executable, "-m", "ampgate.cli", "sim", "--url", url, "--chargers", str(chargers),
            "--seed", str(SEED), "--report", str(self.out), "--quiet", *args,
        ]  # fmt: skip
        with open(self.log, "wb") as sink:
            self.proc = subprocess.Popen(cmd, stdout=sink, stderr=sink)

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self, timeout: float) -> dict[str, Any]:
        rc = self.proc.wait(timeout)
        assert rc == 0, self.log.read_text()
        return json.loads(self.out.read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_sim(
    tmp_path: Path, node_or_url: Any, scenario: str | None, *args: str, n: int = CHARGERS
) -> SimRun:
    """Start the simulator with the TOML text `scenario` (None: only `args`, e.g. a built-in)."""
    if scenario is not None:
        path = tmp_path / "scenario.toml"
        path.write_text(scenario)
        args = ("--scenario-file", str(path), *args)
    url = node_or_url if isinstance(node_or_url, str) else node_or_url.ocpp_url
    return SimRun(tmp_path, url, n, *args)


def picked(scenario: str, bit: int, prefix: str, tmp_path: Path) -> set[str]:
    """The charger ids the seed gives trait `bit`, picked the way the runner picks them for the engine."""
    path = tmp_path / "picked.toml"
    path.write_text(scenario)
    traits = pick_traits(load_scenario(path=path), CHARGERS, SEED)
    return {f"{prefix}{i}" for i, t in enumerate(traits) if t & bit}


@pytest.fixture
def sims() -> Iterator[list[SimRun]]:
    """Simulators a test starts; any still running when it ends (a failed assertion) are killed."""
    runs: list[SimRun] = []
    yield runs
    for run in runs:
        run.kill()


@pytest.mark.slow
def test_boot_storm_boots_every_charger_at_once(node, tmp_path, sims):
    n = 50
    prefix = "BS-"
    sim = start_sim(
        tmp_path, node, None, "--scenario", "boot-storm", "--duration", "4", "--id-prefix", prefix,
        "--processes", "2", n=n,
    )  # fmt: skip
    sims.append(sim)
    wait_for(
        f"all {n} chargers online",
        sim.proc,
        lambda: sum(c["online"] for c in chargers(node).values()) == n,
        ONLINE_TIMEOUT,
    )
    report = sim.finish(SIM_SLACK)

    assert report["errors"] == {}, report["error_details"]
    assert report["ever_booted"] == n and report["connected"] == n and report["booted"] == n
    assert report["connects"] == n and report["boots"] == n
    assert report["responses"]["BootNotification"] == {"Accepted": n}
    assert report["boots_per_s"] > 0 and report["connects_per_s"] > 0
    stored = chargers(node)
    assert set(stored) == {f"{prefix}{i}" for i in range(n)}
    assert all(c["last_boot_at"] is not None for c in stored.values())


@pytest.mark.slow
def test_reconnect_storm_drops_every_link_and_every_charger_comes_back(node, tmp_path, sims):
    at, backoff = 3.0, 1.5
    scenario = f"""
base = "reconnect-storm"
[run]
duration = 7
[reconnect_storm]
at = {at}
backoff = {backoff}
"""
    sim = start_sim(tmp_path, node, scenario, "--id-prefix", "RS-", "--processes", "2")
    sims.append(sim)

    # Every charger first connected within a second of the start; one whose link is younger than the storm's
    # time (less a second) is on a link it opened after the storm.
    def all_back() -> list[float] | None:
        seen = chargers(node).values()
        since = [ts(c["connected_since"]) - ts(c["registered_at"]) for c in seen if c["online"]]
        return since if len(since) == CHARGERS and min(since) > at - 1 else None

    since = wait_for("every charger back online after the storm", sim.proc, all_back, at + ONLINE_TIMEOUT)
    # The chargers came back over the random back-off, not all at once.
    assert max(since) - min(since) > 0.2, since
    report = sim.finish(SIM_SLACK)

    assert report["errors"] == {}, report["error_details"]
    assert report["storm_drops"] == CHARGERS
    # A link that drops is not a reboot: the chargers reconnect without booting again.
    assert report["connects"] == 2 * CHARGERS and report["boots"] == CHARGERS
    assert report["connected"] == CHARGERS and report["booted"] == CHARGERS
    # 40 connections in a few seconds are far under the node's default admission budget: nobody was refused.
    assert report["refused_busy"] == 0


@pytest.mark.slow
def test_a_boot_storm_over_the_admission_budget_is_refused_503_and_returns_after_retry_after(
    node_factory, tmp_path, sims
):
    node = node_factory("--admit-rate", "20", "--admit-burst", "10", "--admit-retry-max", "3")
    n, prefix = 60, "AD-"
    sim = start_sim(
        tmp_path, node, None, "--scenario", "boot-storm", "--duration", "10", "--id-prefix", prefix,
        "--processes", "2", n=n,
    )  # fmt: skip
    sims.append(sim)
    wait_for(
        f"all {n} chargers online",
        sim.proc,
        lambda: sum(c["online"] for c in chargers(node).values()) == n,
        ONLINE_TIMEOUT,
    )
    report = sim.finish(SIM_SLACK)
    assert report["errors"] == {}, report["error_details"]
    assert report["ever_booted"] == n and report["connects"] == n
    # 60 at once through 10 + 20/s: most were refused at first, each told when to come back, and came back.
    assert report["refused_busy"] >= n - 10 - 20
    assert report["retry_after_given"] == report["refused_busy"]
    with node.api() as api:
        summary = api.get("/connectivity/summary").json()
    busy = summary["rejections_this_minute"]["busy"] + summary["rejections_last_minute"]["busy"]
    assert busy == report["refused_busy"]


STORM_WITH_CHARGING = """
base = "reconnect-storm"
[run]
duration = 12
heartbeat_interval = 5
[transactions]
per_hour = 36000
duration = 3
meter_period = 1
[reconnect_storm]
at = 4
backoff = 0
"""


@pytest.mark.slow
def test_a_reconnect_storm_under_admission_control_ends_online_with_no_duplicate_transactions(
    node_factory, tmp_path, sims
):
    """Every link drops at once mid-charging and every charger reconnects at once (no back-off of its own):
    the node admits them at its rate, refuses the rest 503, and in the end every charger is online again, on a
    link younger than the storm, with each transaction stored once although chargers replayed what they had
    queued while away."""
    node = node_factory("--admit-rate", "15", "--admit-burst", "5", "--admit-retry-max", "2")
    with node.api() as api:
        assert api.post("/id-tokens", json={"id_token": "SIMTAG", "status": "Accepted"}).status_code == 201
    prefix, at = "RSA-", 4.0
    # The run starts after this; its chargers first connect within about two seconds of it (the simulator's
    # start, then 20 through 5 + 15/s), so a link opened after `started + at` is one opened after the storm.
    started = time.time()
    sim = start_sim(tmp_path, node, STORM_WITH_CHARGING, "--id-prefix", prefix, "--processes", "2")
    sims.append(sim)

    def all_back() -> bool:
        seen = [c for c in chargers(node).values() if c["id"].startswith(prefix)]
        since = [ts(c["connected_since"]) for c in seen if c["online"]]
        return len(since) == CHARGERS and min(since) > started + at

    wait_for("every charger back online after the storm", sim.proc, all_back, at + ONLINE_TIMEOUT)
    report = sim.finish(SIM_SLACK)
    assert report["errors"] == {}, report["error_details"]
    assert report["storm_drops"] == CHARGERS
    assert report["refused_busy"] > 0 and report["retry_after_given"] == report["refused_busy"]
    assert report["connected"] == CHARGERS and report["booted"] == CHARGERS
    assert report["transactions"]["started"] > 0

    def stored() -> list[dict[str, Any]]:
        return [t for t in all_pages(node, "/transactions") if t["charger_id"].startswith(prefix)]

    def all_stored() -> list[dict[str, Any]] | None:
        txs = stored()
        return txs if len(txs) >= report["transactions"]["started"] else None

    txs = wait_for("every answered transaction stored", None, all_stored, STORE_TIMEOUT)
    starts = [(t["charger_id"], t["started_at"]) for t in txs]
    assert len(starts) == len(set(starts)), "a replayed start was stored twice"


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_rolling_restart_reboots_the_fleet_a_quarter_at_a_time(node, tmp_path, sims, processes):
    period = 1.5
    # Four rounds (at 1.5, 3, 4.5 and 6 s) of a quarter each: every charger reboots exactly once.
    scenario = f"""
base = "rolling-restart"
[run]
duration = 7
[rolling_restart]
period = {period}
fraction = 0.25
reboot_delay = 0.3
"""
    prefix = "RR-"
    # The fraction is of the fleet, however many processes run it (5 chargers a round, not 3 per process).
    sim = start_sim(tmp_path, node, scenario, "--id-prefix", prefix, "--processes", str(processes))
    sims.append(sim)
    report = sim.finish(7 + SIM_SLACK)

    assert report["errors"] == {}, report["error_details"]
    assert report["reboots"] == CHARGERS, (
        f"{report['reboots']} reboots in 4 rounds of a quarter of {CHARGERS}"
    )
    assert report["boots"] == 2 * CHARGERS and report["ever_booted"] == CHARGERS
    assert report["connects"] == 2 * CHARGERS
    assert report["connected"] == CHARGERS and report["booted"] == CHARGERS

    def rebooted() -> dict[int, float] | None:
        seen = chargers(node)
        if len(seen) < CHARGERS or any(c["last_boot_at"] is None for c in seen.values()):
            return None
        # Seconds from each charger's first connection to its last boot.
        after = {
            int(k.removeprefix(prefix)): ts(c["last_boot_at"]) - ts(c["registered_at"])
            for k, c in seen.items()
        }
        return after if min(after.values()) > period - 0.5 else None

    after = wait_for("every charger's last boot after its first", None, rebooted, STORE_TIMEOUT)
    if processes > 1:
        return  # which chargers share a round is the engine's choice once the fleet is split
    # Round k rebooted chargers 5k..5k+4: each round's boots come after the previous round's.
    rounds = [[after[i] for i in range(5 * k, 5 * k + 5)] for k in range(4)]
    for earlier, later in itertools.pairwise(rounds):
        assert max(earlier) < min(later), rounds


@pytest.mark.slow
def test_flapping_drops_exactly_the_picked_chargers_links(node, tmp_path, sims):
    scenario = """
base = "flapping"
[run]
duration = 5
[flapping]
fraction = 0.25
period = 1
down = 0.3
"""
    prefix = "FL-"
    flappers = picked(scenario, FLAP, prefix, tmp_path)
    assert len(flappers) == round(0.25 * CHARGERS)
    sim = start_sim(tmp_path, node, scenario, "--id-prefix", prefix, "--processes", "2")
    sims.append(sim)
    # Every link the node held for each charger while the run went on (a link is up at least 0.5 s, far
    # longer than a poll).
    links: dict[str, set[str]] = {}
    while sim.running():
        for cid, c in chargers(node).items():
            if c["online"]:
                links.setdefault(cid, set()).add(c["connected_since"])
        time.sleep(0.1)
    report = sim.finish(SIM_SLACK)

    assert report["errors"] == {}, report["error_details"]
    assert len(links) == CHARGERS
    assert {cid for cid, seen in links.items() if len(seen) > 1} == flappers
    assert report["flaps"] >= len(flappers)
    # Each flap reconnects (unless the run ended first) without a new boot.
    assert CHARGERS + report["flaps"] - len(flappers) <= report["connects"] <= CHARGERS + report["flaps"]
    assert report["boots"] == CHARGERS and report["ever_booted"] == CHARGERS


@pytest.mark.slow
def test_chargers_that_never_answer_make_the_node_time_out(node_factory, tmp_path, sims):
    node = node_factory("--call-timeout", "1")
    scenario = """
base = "slow-chargers"
[run]
duration = 5
[slow]
fraction = 0.1
mode = "no-answer"
"""
    prefix = "NA-"
    silent = picked(scenario, NO_ANSWER, prefix, tmp_path)
    assert len(silent) == 2
    normal = next(f"{prefix}{i}" for i in range(CHARGERS) if f"{prefix}{i}" not in silent)
    sim = start_sim(tmp_path, node, scenario, "--id-prefix", prefix, "--processes", "2")
    sims.append(sim)
    wait_for(
        f"all {CHARGERS} chargers online",
        sim.proc,
        lambda: sum(c["online"] for c in chargers(node).values()) == CHARGERS,
        ONLINE_TIMEOUT,
    )
    trigger = {"requestedMessage": "Heartbeat"}
    with node.api() as api:
        started = time.monotonic()
        r = api.post(f"/chargers/{min(silent)}/commands/TriggerMessage", json=trigger)
        assert r.status_code == 504, r.text
        assert time.monotonic() - started >= 1.0
        r = api.post(f"/chargers/{normal}/commands/TriggerMessage", json=trigger)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "Accepted"}
    report = sim.finish(SIM_SLACK)

    # Silence is the charger's doing: nothing the simulator counts as an error, but it saw both CALLs.
    assert report["errors"] == {}, report["error_details"]
    assert report["csms_calls"] == {"TriggerMessage": 2}
    assert report["booted"] == CHARGERS


# -- a central system that breaks the schema --------------------------------------------------------------


class BadCsms:
    """A 1.6 central system that accepts boots, answers Heartbeat with a number for currentTime, and after
    the first Heartbeat sends a Reset of type "Sideways": two schema violations the simulator must report."""

    def __init__(self) -> None:
        self.reset_sent = False
        self.replies: list[Any] = []  # what the chargers answered to our CALLs
        self.failures: list[str] = []
        self.server: Server = serve(self.handle, "127.0.0.1", 0, subprotocols=["ocpp1.6"])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/ocpp"

    def handle(self, ws: ServerConnection) -> None:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        try:
            for raw in ws:
                msg = json.loads(raw)
                if msg[0] != 2:
                    self.replies.append(msg)
                    continue
                _, uid, action, _ = msg
                if action == "BootNotification":
                    ws.send(json.dumps([3, uid, {"status": "Accepted", "currentTime": now, "interval": 1}]))
                elif action == "Heartbeat":
                    ws.send(json.dumps([3, uid, {"currentTime": 12}]))
                    if not self.reset_sent:
                        self.reset_sent = True
                        ws.send('[2,"x1","Reset",{"type":"Sideways"}]')
                else:
                    ws.send(json.dumps([3, uid, {}]))
        except ConnectionClosed:
            pass
        except Exception as e:  # a failure in this thread would otherwise only be logged
            self.failures.append(repr(e))


@pytest.fixture
def bad_csms() -> Iterator[BadCsms]:
    csms = BadCsms()
    csms.thread.start()
    yield csms
    csms.server.shutdown()
    csms.thread.join(5)


@pytest.mark.slow
def test_a_schema_invalid_call_and_result_are_reported_with_action_and_field(bad_csms, tmp_path, sims):
    sim = start_sim(tmp_path, bad_csms.url, None, "--duration", "3", n=1)
    sims.append(sim)
    report = sim.finish(SIM_SLACK)

    assert bad_csms.failures == []
    assert bad_csms.reset_sent
    assert report["csms_calls"] == {"Reset": 1}
    assert set(report["errors"]) == {"invalid_from_csms"}, report["error_details"]
    assert report["errors"]["invalid_from_csms"] >= 2
    details = report["error_details"]["invalid_from_csms"]
    assert any("Reset" in d and "type" in d and "Sideways" in d for d in details), details
    assert any("Heartbeat" in d and "currentTime" in d for d in details), details


CHARGING = """
[run]
duration = 14
heartbeat_interval = 5

[transactions]
per_hour = 36000
duration = 4
meter_period = 1
"""


def open_transaction(node, prefix: str) -> dict[str, Any] | None:
    """A transaction of this fleet the node has open (started, not stopped), with time left to command it."""
    with node.api() as api:
        r = api.get("/transactions", params={"limit": 100})
    assert r.status_code == 200, r.text
    for t in r.json()["items"]:
        started = ts(t["started_at"])
        if t["charger_id"].startswith(prefix) and t["stopped_at"] is None and time.time() - started < 1.5:
            return t
    return None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("protocol", "command", "body"),
    [
        ("1.6", "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
        ("2.0.1", "ChangeAvailability", {"operationalStatus": "Inoperative"}),
        ("2.0.1", "Reset", {"type": "OnIdle"}),
    ],
)
def test_a_command_for_a_charging_charger_is_scheduled_and_carried_out_when_the_transaction_ends(
    node, tmp_path, sims, protocol, command, body
):
    with node.api() as api:
        assert api.post("/id-tokens", json={"id_token": "SIMTAG", "status": "Accepted"}).status_code == 201
    prefix = f"SCHED{protocol.replace('.', '')}{command[0]}-"
    sim = start_sim(tmp_path, node, CHARGING, "--protocol", protocol, "--id-prefix", prefix, n=3)
    sims.append(sim)
    tx = wait_for("an open transaction", sim.proc, lambda: open_transaction(node, prefix), ONLINE_TIMEOUT)
    cp = tx["charger_id"]
    booted_before = chargers(node)[cp]["last_boot_at"]
    with node.api() as api:
        r = api.post(f"/chargers/{cp}/commands/{command}", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "Scheduled"}

    def stopped() -> bool:
        with node.api() as api:
            t = api.get(f"/transactions/{tx['id']}").json()
        return t["stopped_at"] is not None

    wait_for("the transaction's end", sim.proc, stopped, 10.0)
    if command == "ChangeAvailability":

        def unavailable() -> bool:
            with node.api() as api:
                c = api.get(f"/chargers/{cp}").json()
            return [x["status"] for x in c.get("connectors") or []] == ["Unavailable"]

        wait_for("the connector Unavailable", sim.proc, unavailable, STORE_TIMEOUT)
    else:
        wait_for(
            "a reboot after the transaction",
            sim.proc,
            lambda: chargers(node)[cp]["last_boot_at"] != booted_before,
            STORE_TIMEOUT,
        )
    report = sim.finish(SIM_SLACK)
    assert report["errors"] == {}, report["error_details"]
    assert report["csms_calls"] == {command: 1}
    assert report["reboots"] == (1 if command == "Reset" else 0)
