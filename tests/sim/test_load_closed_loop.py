"""Load management in a closed loop, both protocol versions: `ampgate sim` chargers that apply the charging
profiles they get to their simulated EVs (one- and three-phase, each with its own maximum, tapering), metering
every second, against a real node with a one-second tick.

A site of 50 chargers (three-phase, 32 A each) on a 200 A per-phase grid connection; EVs arrive over time (about
80 over the run, more than the connection can give their minimum at once); a tenth of the chargers lose their
link now and then and keep drawing what they were last told; a demand-response event halves the site's limit for
a while in the middle.

What the EVs drew is read back from the node's own store (every meter sample of every transaction, as the sim
sent it with its time): at every sample instant the site's draw is the sum, per phase, of each session's latest
per-phase current. It may exceed the limit only just after an EV arrives (until the first tick after it and the
meter sample after that: before its first profile a new session draws its charger's default); the halved limit
is met within two ticks (and a meter period) of the event's start, and the draw comes back above it once the
event ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .nodes import all_pages, ts

CHARGERS = 50
LIMIT_A = 200.0
VOLTAGE = 230.0
TICK = 1.0
METER = 1.0
# An arrival may push the site over until the first tick after it has run, its profiles have gone out and the
# EVs' next meter samples show them: two ticks and a meter period, and a second for the round trips.
GRACE = 2 * TICK + METER + 1.0
DURATION = 60.0
DR_AT, DR_FOR = 22.0, 16.0
TOLERANCE_A = 0.5
# Until its first profile a new session draws its charger's default (the node's --load-default-a, 6 A).
DEFAULT_A = 6.0

SCENARIO = f"""
[run]
duration = {DURATION}
connectors = 1
[transactions]
per_hour = 300
duration = 25
meter_period = {METER}
[flapping]
fraction = 0.1
period = 12
down = 2
[evs]
[[evs.mix]]
share = 2
phases = "3"
max_current_a = 32
[[evs.mix]]
share = 1
phases = "L1"
max_current_a = 16
[[evs.mix]]
share = 1
phases = "3"
max_current_a = 16
soc_start = 70
taper_soc = 75
"""


def currents(node, tx_id: int) -> list[tuple[float, tuple[float, float, float]]]:
    """The transaction's per-phase Current.Import samples as (time, (L1, L2, L3)), in time order."""
    by_time: dict[float, list[float]] = {}
    for s in all_pages(node, f"/transactions/{tx_id}/samples", measurand="Current.Import"):
        if s["measurand"] == "Current.Import" and s["phase"] in ("L1", "L2", "L3"):
            by_time.setdefault(ts(s["at"]), [0.0, 0.0, 0.0])[int(s["phase"][1]) - 1] = s["value"]
    return sorted((t, (a[0], a[1], a[2])) for t, a in by_time.items())


def site_draw(sessions: list[tuple[float, float | None, list[Any]]]) -> list[tuple[float, list[float]]]:
    """At every sample instant, the site's draw per phase: each running session's latest sample."""
    instants = sorted({t for _, _, samples in sessions for t, _ in samples})
    out = []
    for t in instants:
        total = [0.0, 0.0, 0.0]
        for started, stopped, samples in sessions:
            if t < started or (stopped is not None and t >= stopped):
                continue
            latest = None
            for st, amps in samples:
                if st > t:
                    break
                latest = amps
            if latest is not None:
                for p in range(3):
                    total[p] += latest[p]
        out.append((t, total))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
def test_a_site_stays_under_its_limit_and_meets_demand_response(node_factory, tmp_path, protocol) -> None:
    node = node_factory(
        "--load-tick",
        str(TICK),
        "--load-min-interval",
        "2",
        "--load-min-hold",
        "20",
        "--heartbeat-interval",
        "60",
    )
    prefix = f"CL{protocol.replace('.', '')}-"
    site = f"SITE{protocol.replace('.', '')}"
    with node.api() as api:
        assert api.post("/id-tokens", json={"id_token": "SIMTAG", "status": "Accepted"}).status_code == 201
        r = api.post("/sites", json={"id": site, "phase_limits_a": [LIMIT_A] * 3, "voltage_v": VOLTAGE})
        assert r.status_code == 201, r.text
        for i in range(CHARGERS):
            cp = f"{prefix}{i}"
            assert api.post("/chargers", json={"id": cp}).status_code in (200, 201)
            r = api.put(f"/chargers/{cp}/placement", json={"node_id": site, "phases": "L1L2L3", "max_a": 32})
            assert r.status_code == 200, r.text

    scenario = tmp_path / "closed-loop.toml"
    scenario.write_text(SCENARIO)
    report_path = tmp_path / "report.json"
    args = [
        "sim", "--url", node.ocpp_url, "--chargers", str(CHARGERS), "--protocol", protocol,
        "--scenario-file", str(scenario), "--id-prefix", prefix, "--seed", "7", "--processes", "1",
        "--report", str(report_path), "--quiet",
    ]  # fmt: skip
    sim = subprocess.Popen(
        [sys.executable, "-m", "ampgate.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        time.sleep(DR_AT)
        starts = datetime.now(UTC)
        ends = starts + timedelta(seconds=DR_FOR)
        half_kw = LIMIT_A * VOLTAGE * 3 / 2 / 1000
        with node.api() as api:
            r = api.post(
                "/demand-response/events",
                json={
                    "node_id": site,
                    "limit_kw": half_kw,
                    "starts_at": starts.isoformat(),
                    "ends_at": ends.isoformat(),
                },
            )
            assert r.status_code == 201, r.text
            event_id = r.json()["id"]
        out, err = sim.communicate(timeout=DURATION + 60)
    finally:
        if sim.poll() is None:
            sim.kill()
    assert sim.returncode == 0, err.decode() + out.decode()
    report = json.loads(report_path.read_text())
    assert report["booted"] >= CHARGERS - 5  # the flapping ones may be down at the end
    assert report["charging_profiles"]["received"] > CHARGERS  # the boot fallbacks and the sessions' shares
    # A TxProfile may cross its transaction's end on the wire (the charger then rejects it: no transaction); no
    # other refusal is expected.
    profiles = report["charging_profiles"]
    assert profiles["rejected"] <= profiles["received"] // 100, profiles

    txs = [t for t in all_pages(node, "/transactions") if t["charger_id"].startswith(prefix)]
    assert len(txs) >= 70, len(txs)  # EVs arrived over time, more than the connection serves at once
    sessions = []
    for t in txs:
        stopped = ts(t["stopped_at"]) if t["stopped_at"] else None
        sessions.append((ts(t["started_at"]), stopped, currents(node, t["id"])))
    arrivals = sorted(s[0] for s in sessions)
    draw = site_draw(sessions)
    assert len(draw) > DURATION  # samples every second over the run

    def newcomers(t: float) -> int:
        """Sessions that arrived so recently that they may still draw their default."""
        return sum(1 for a in arrivals if a <= t < a + GRACE)

    dr_start, dr_end = starts.timestamp(), ends.timestamp()
    over: list[tuple[float, list[float], int]] = []
    peak = max(max(total) for _, total in draw)
    for t, total in draw:
        if max(total) > LIMIT_A + TOLERANCE_A + DEFAULT_A * newcomers(t):
            over.append((t, total, newcomers(t)))
    assert over == [], f"over the site's {LIMIT_A} A per phase: {over[:5]}"
    assert peak > LIMIT_A * 0.8  # the EVs wanted more than the site has: the limit was what held them

    # Demand response: the halved limit (in kW over the three phases) is met within two ticks and a meter period.
    in_event = [
        (t, sum(total) * VOLTAGE / 1000, newcomers(t))
        for t, total in draw
        if dr_start + 2 * TICK + METER + 1.0 <= t < dr_end
    ]
    assert len(in_event) >= DR_FOR - 6
    late = [x for x in in_event if x[1] > half_kw * 1.01 + DEFAULT_A * 3 * VOLTAGE / 1000 * x[2]]
    assert late == [], late[:5]
    # ... and the site draws more again once it ends.
    after = [sum(total) * VOLTAGE / 1000 for t, total in draw if dr_end + GRACE <= t < dr_end + GRACE + 12]
    assert after and max(after) > half_kw * 1.2, after

    with node.api() as api:
        event = api.get(f"/demand-response/events/{event_id}").json()
        points = api.get(f"/demand-response/events/{event_id}/achievement", params={"limit": 1000}).json()[
            "items"
        ]
    assert event["state"] == "ended" and event["baseline_kw"][site] > half_kw
    assert len(points) >= DR_FOR - 4  # a point per tick
    assert {p["node_id"] for p in points} == {site} and {p["target_kw"] for p in points} == {half_kw}
