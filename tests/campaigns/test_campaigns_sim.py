"""Firmware campaigns against `ampgate sim` fleets and a real `ampgate serve` (the image added through the API,
the chargers selected by the vendor they booted with): a 3-group campaign over 300 chargers with 2% failing finishes with exact counts; failures aimed
at the canary pause the campaign before group 1 with nothing more sent, and resume finishes it; a node killed
(SIGKILL) mid-campaign and restarted on the same database resumes it, and every charger received the update once
(the simulator's own count of the CALLs it got)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

# Starting a node (its worker, the store), and the simulator's processes.
START_TIMEOUT = 30.0
# The simulated fleet's firmware steps and reboot are short; every wait below is for a campaign of a few hundred
# chargers at that pace.
CAMPAIGN_TIMEOUT = 90.0
NEW_VERSION = "2.0.0"  # the simulator boots 1.0.0
LOCATION = f"http://fw.example/img/{NEW_VERSION}.bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NodeProc:
    def __init__(self, tmp: Path, cfg: dict[str, Any]) -> None:
        self.tmp, self.cfg = tmp, cfg
        self.proc: subprocess.Popen[bytes] | None = None
        self.token: str | None = None
        self.image_id: int | None = None

    def start(self) -> None:
        ready = Path(self.cfg["ready"])
        ready.unlink(missing_ok=True)
        self.log = self.tmp / f"node-{time.monotonic_ns()}.log"
        cmd = [
            sys.executable, "-m", "ampgate.cli", "serve", "--ocpp-host", "127.0.0.1",
            "--ocpp-port", str(self.cfg["ocpp_port"]), "--api-port", str(self.cfg["api_port"]),
            "--public-host", "127.0.0.1", "--public-port", "0", "--db", self.cfg["db"],
            "--ready-file", str(ready), "--workers", "1",
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            assert self.proc.poll() is None, f"node exited {self.proc.returncode}"
            assert time.monotonic() < deadline, "node not ready"
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.token = self.token or info["admin_token"]

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.cfg['api_port']}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=15,
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def fleet(
    tmp: Path, *, prefix: str, chargers: int, protocol: str, firmware: str, duration: float
) -> Iterator[Any]:
    """A node process and `ampgate sim` against it; yields (node, sim process, report path)."""
    cfg = {
        "db": str(tmp / "campaign.db"),
        "ready": str(tmp / "ready.json"),
        "ocpp_port": free_port(),
        "api_port": free_port(),
    }
    node = NodeProc(tmp, cfg)
    node.start()
    # The image, as an admin adds it: the simulator installs the version its location's file name ends in.
    with node.api() as api:
        r = api.post("/firmware/images", json={"version": NEW_VERSION, "location": LOCATION})
        assert r.status_code == 201, r.text
        node.image_id = r.json()["id"]
    scenario = tmp / "fw.toml"
    scenario.write_text(
        f"[run]\nduration = {duration}\n[rolling_restart]\nreboot_delay = 0.3\n[firmware]\n{firmware}"
    )
    report = tmp / "report.json"
    args = [
        "sim", "--url", f"ws://127.0.0.1:{cfg['ocpp_port']}/ocpp", "--chargers", str(chargers),
        "--protocol", protocol, "--scenario-file", str(scenario), "--id-prefix", prefix, "--seed", "5",
        "--report", str(report), "--quiet",
    ]  # fmt: skip
    with open(tmp / "sim.log", "wb") as sink:
        sim = subprocess.Popen([sys.executable, "-m", "ampgate.cli", *args], stdout=sink, stderr=sink)
    try:
        yield node, sim, report
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
        node.stop()


def wait(what: str, check: Any, timeout: float = CAMPAIGN_TIMEOUT, explain: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:g} s" + (f": {explain()}" if explain else ""))
        time.sleep(0.2)


def unfinished(node: NodeProc, campaign_id: int) -> list[Any]:
    """The campaign's chargers not installed, with their timelines (what a failed wait shows)."""
    with node.api() as api:
        items = api.get(f"/firmware/campaigns/{campaign_id}/chargers", params={"limit": 1000}).json()["items"]
    return [
        (i["charger_id"], i["state"], [e["event"] for e in i["timeline"]])
        for i in items
        if i["state"] != "installed"
    ]


def online(node: NodeProc, n: int) -> bool:
    with node.api() as api:
        items = api.get("/chargers", params={"limit": 1000}).json()["items"]
    return sum(c["online"] for c in items) == n


def campaign(node: NodeProc, campaign_id: int) -> dict[str, Any]:
    with node.api() as api:
        r = api.get(f"/firmware/campaigns/{campaign_id}")
        assert r.status_code == 200, r.text
        return r.json()


def create_and_start(node: NodeProc, spec: dict[str, Any]) -> int:
    with node.api() as api:
        r = api.post("/firmware/campaigns", json=spec)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        assert api.post(f"/firmware/campaigns/{cid}/start").status_code == 200
    return int(cid)


def finished_report(sim: subprocess.Popen[bytes], report: Path) -> dict[str, Any]:
    assert sim.wait(CAMPAIGN_TIMEOUT) == 0
    out: dict[str, Any] = json.loads(report.read_text())
    return out


@pytest.mark.slow
def test_three_groups_over_300_chargers_with_2_percent_failing_finish_with_exact_counts(
    tmp_path: Path,
) -> None:
    n, failing = 300, 6
    with fleet(
        tmp_path, prefix="G", chargers=n, protocol="2.0.1", firmware="fail_fraction = 0.02\nstep = 0.2\n",
        duration=40,
    ) as (node, sim, report):  # fmt: skip
        wait("the fleet online", lambda: online(node, n))
        cid = create_and_start(
            node,
            {
                "image_id": node.image_id,
                "selector": {"vendor": "ampgate"},
                "groups": [{"percent": 10}, {"percent": 30}, {"percent": 60}],
                "success_threshold_pct": 90,
                # Failures finish sooner than installs (no reboot): a percentage of the first few finished
                # would see them all; a count above the 6 failing never pauses this fleet.
                "error_threshold_count": 10,
                "max_in_flight": 100,
            },
        )
        c = wait(
            "the campaign finished",
            lambda: (c := campaign(node, cid))["state"] in ("finished", "paused") and c,
        )
        assert c["state"] == "finished", (c["paused_reason"], c["groups"])
        assert {k: v for k, v in c["counts"].items() if v} == {"installed": n - failing, "failed": failing}
        assert [sum(g["counts"].values()) for g in c["groups"]] == [30, 90, 180]
        assert all(g["state"] == "finished" for g in c["groups"])
        r = finished_report(sim, report)
    assert r["csms_calls"] == {"UpdateFirmware": n}
    assert (r["firmware"]["installed"], r["firmware"]["failed"]) == (n - failing, failing)


@pytest.mark.slow
def test_canary_failures_pause_before_group_1_and_resume_finishes(tmp_path: Path) -> None:
    n = 60
    with fleet(
        tmp_path, prefix="C", chargers=n, protocol="1.6",
        firmware='fail_pattern = "C0|C1[01]"\nfail_step = "Downloading"\nstep = 0.2\n', duration=40,
    ) as (node, sim, report):  # fmt: skip
        wait("the fleet online", lambda: online(node, n))
        cid = create_and_start(
            node,
            {
                "image_id": node.image_id,
                "selector": {"vendor": "ampgate"},
                "canary": {"count": 5},
                "groups": [{"percent": 50}, {"percent": 100}],
                "error_threshold_pct": 20,
                "error_min_finished": 3,
                "max_in_flight": 5,
            },
        )
        c = wait(
            "the campaign paused", lambda: (c := campaign(node, cid))["state"] in ("paused", "finished") and c
        )
        assert c["state"] == "paused" and c["paused_reason"].startswith("error condition: group 0"), c
        canary, first = c["groups"][0], c["groups"][1]
        assert canary["counts"]["failed"] == 3
        assert first["counts"]["pending"] == sum(first["counts"].values()) == 30
        time.sleep(3)  # nothing more goes out while paused
        with node.api() as api:
            items = api.get(f"/firmware/campaigns/{cid}/chargers", params={"limit": 1000}).json()["items"]
        # The selection is in id order: the canary is C0, C1, C10, C11, C12, three of which the pattern fails.
        canary_ids = set(sorted(f"C{i}" for i in range(n))[:5])
        assert {i["charger_id"] for i in items if i["request_id"] is not None} <= canary_ids
        with node.api() as api:
            # The image of a campaign not finished stays: the images refuse to delete it.
            r = api.delete(f"/firmware/images/{node.image_id}")
            assert (r.status_code, r.json()["code"]) == (409, "image_in_use"), r.text
            r = api.post(f"/firmware/campaigns/{cid}/resume", json={"reason": "known bad units"})
            assert r.status_code == 200 and r.json()["state"] == "running", r.text
        c = wait("the campaign finished", lambda: (c := campaign(node, cid))["state"] == "finished" and c)
        assert {k: v for k, v in c["counts"].items() if v} == {"installed": n - 3, "failed": 3}
        assert c["groups"][0]["overridden"] is True
        r = finished_report(sim, report)
    assert r["csms_calls"] == {"UpdateFirmware": n}


@pytest.mark.slow
def test_a_node_killed_mid_campaign_resumes_without_sending_an_update_twice(tmp_path: Path) -> None:
    n = 120
    with fleet(
        tmp_path, prefix="K", chargers=n, protocol="2.0.1", firmware="step = 0.3\n", duration=60,
    ) as (node, sim, report):  # fmt: skip
        wait("the fleet online", lambda: online(node, n))
        cid = create_and_start(
            node,
            {
                "image_id": node.image_id,
                "selector": {"vendor": "ampgate"},
                "groups": [{"percent": 50}, {"percent": 50}],
                "max_in_flight": 20,
                "dispatch_per_minute": 300,
            },
        )
        wait("a third installed", lambda: campaign(node, cid)["counts"]["installed"] >= n // 3)
        before = campaign(node, cid)
        assert before["state"] == "running" and before["counts"]["pending"] > 0
        node.stop(signal.SIGKILL)
        node.start()
        c = wait(
            "the campaign finished",
            lambda: (c := campaign(node, cid))["state"] == "finished" and c,
            explain=lambda: unfinished(node, cid),
        )
        assert {k: v for k, v in c["counts"].items() if v} == {"installed": n}
        r = finished_report(sim, report)
    # The simulator counted every CALL it received: one UpdateFirmware per charger, none twice.
    assert r["csms_calls"].get("UpdateFirmware") == n
    assert r["firmware"]["installed"] == n
