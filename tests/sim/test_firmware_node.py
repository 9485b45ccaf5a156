"""A firmware update with a 10% failure fraction, `ampgate sim` against a real node (both protocol versions):
the commands go through the node's HTTP command API while the simulated fleet runs, and the report's firmware
counts, the node's store and the seed's pick of failing chargers all agree."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ampgate.sim.scenario import FW_FAIL, load_scenario, pick_traits

from .nodes import chargers, wait_for

CHARGERS = 20
FAIL_FRACTION = 0.1
FAILING = round(FAIL_FRACTION * CHARGERS)
SEED = 7
OLD_VERSION, NEW_VERSION = "1.0.0", "2.0.0"  # the simulator's default, and what the location below installs
LOCATION = f"http://fw.example/img/{NEW_VERSION}.bin"
# Steps of 0.3 s and a 0.5 s reboot: a charger runs the new image about 1.5 s after its command, so an 8 s run
# leaves several seconds to spare once the fleet is online and the 20 commands are out.
SCENARIO = """
[run]
duration = 8

[rolling_restart]
reboot_delay = 0.5

[firmware]
fail_fraction = {fraction}
fail_step = "{fail_step}"
step = 0.3
"""
# Starting the simulator's processes and booting 20 chargers; the node's fire-and-forget store writes.
ONLINE_TIMEOUT = 20.0
STORE_TIMEOUT = 10.0
# The run's 8 s, closing, and the processes' start and exit.
SIM_TIMEOUT = 60.0


def update_payload(protocol: str, request_id: int) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if protocol == "1.6":
        return {"location": LOCATION, "retrieveDate": now}
    return {"requestId": request_id, "firmware": {"location": LOCATION, "retrieveDateTime": now}}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("protocol", "fail_step", "failed_status"),
    [("1.6", "Installing", "InstallationFailed"), ("2.0.1", "Downloading", "DownloadFailed")],
)
def test_a_firmware_update_with_a_tenth_failing_ends_with_the_expected_counts(
    node, tmp_path: Path, protocol: str, fail_step: str, failed_status: str
):
    scenario = tmp_path / "firmware.toml"
    scenario.write_text(SCENARIO.format(fraction=FAIL_FRACTION, fail_step=fail_step))
    prefix = f"FW{protocol.replace('.', '')}-"
    ids = [f"{prefix}{i}" for i in range(CHARGERS)]
    # The chargers the seed makes fail, picked the way the runner picks them for the engine.
    traits = pick_traits(load_scenario(path=scenario), CHARGERS, SEED)
    failing = {ids[i] for i, t in enumerate(traits) if t & FW_FAIL}
    assert len(failing) == FAILING

    out = tmp_path / "report.json"
    args = [
        "sim", "--url", node.ocpp_url, "--chargers", str(CHARGERS), "--protocol", protocol,
        "--scenario-file", str(scenario), "--id-prefix", prefix, "--seed", str(SEED), "--processes", "2",
        "--report", str(out), "--quiet",
    ]  # fmt: skip
    log = tmp_path / "sim.log"
    with open(log, "wb") as sink:
        sim = subprocess.Popen([sys.executable, "-m", "ampgate.cli", *args], stdout=sink, stderr=sink)
    try:
        wait_for(
            f"all {CHARGERS} chargers online",
            sim,
            lambda: sum(c["online"] for c in chargers(node).values()) == CHARGERS,
            ONLINE_TIMEOUT,
        )
        with node.api() as api:
            for i, cid in enumerate(ids):
                r = api.post(f"/chargers/{cid}/commands/UpdateFirmware", json=update_payload(protocol, i))
                assert r.status_code == 200, (cid, r.text)
                assert r.json() == ({} if protocol == "1.6" else {"status": "Accepted"})
        rc = sim.wait(SIM_TIMEOUT)
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
    assert rc == 0, log.read_text()
    report = json.loads(out.read_text())

    assert report["errors"] == {}, report["error_details"]
    assert report["csms_calls"] == {"UpdateFirmware": CHARGERS}
    fw = report["firmware"]
    assert (fw["updates"], fw["failed"], fw["installed"]) == (CHARGERS, FAILING, CHARGERS - FAILING)
    installed = CHARGERS - FAILING
    if fail_step == "Installing":
        expected = {"Downloading": CHARGERS, "Downloaded": CHARGERS, "Installing": CHARGERS}
    else:
        expected = {"Downloading": CHARGERS, "Downloaded": installed, "Installing": installed}
    expected |= {failed_status: FAILING, "Installed": installed}
    if protocol == "2.0.1":
        expected["InstallRebooting"] = installed  # 2.0.1 announces the reboot into the new image [L01]
    assert fw["statuses"] == expected
    # Only the chargers that installed rebooted, and each came back and booted the new image.
    assert report["reboots"] == installed and report["boots"] == CHARGERS + installed
    assert report["ever_booted"] == CHARGERS and report["booted"] == CHARGERS

    def store_agrees() -> bool:
        new = chargers(node, firmware=NEW_VERSION, firmware_status="Installed")
        old = chargers(node, firmware=OLD_VERSION, firmware_status=failed_status)
        return set(new) == set(ids) - failing and set(old) == failing

    wait_for("store agreeing with the report", None, store_agrees, STORE_TIMEOUT)
    for c in chargers(node).values():
        # 1.6's FirmwareStatusNotification has no request id; 2.0.1's echoes the command's.
        assert c["firmware_request_id"] == (None if protocol == "1.6" else int(c["id"].removeprefix(prefix)))
        assert c["firmware_status_at"] is not None, c
