"""`ampgate sim` over wss:// against a real node terminating TLS (certificates from trustme):

- profile 2: the node's server certificate verified against --ca, Basic auth with --password;
- profile 3: each simulated charger presents a certificate of its own, issued on the fly by the operator's
  client CA (--client-ca-cert/--client-ca-key) with its id as the common name; the chargers' links flap, and
  the reconnects resume their TLS sessions (the report counts resumed and full handshakes);
- a server certificate that does not verify (the wrong --ca) is counted as failed connections, not a crash.

The node's view is read back: every charger connected with the security profile it is registered for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.pki import Pki, tls_args

from .nodes import chargers, wait_for

PASSWORD = "correct-horse-battery"
CHARGERS = 4
# Every charger's link drops every 1.5 s and is back 0.2 s later: reconnects that offer the last TLS session.
FLAPPING = """
[run]
duration = 4
heartbeat_interval = 1

[flapping]
fraction = 1.0
period = 1.5
down = 0.2
"""


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def register(node, prefix: str, profile: int, password: str | None, count: int = CHARGERS) -> list[str]:
    ids = [f"{prefix}{i}" for i in range(count)]
    with node.api() as api:
        for cid in ids:
            assert api.post("/chargers", json={"id": cid, "password": password}).status_code == 201
            r = api.patch(f"/chargers/{cid}", json={"security_profile": profile})
            assert r.status_code == 200, r.text
    return ids


def sim(
    node,
    tmp_path: Path,
    prefix: str,
    *args: str,
    duration: float = 2,
    while_running: list[str] | None = None,
    count: int = CHARGERS,
) -> tuple[dict, dict[str, int]]:
    """Run `ampgate sim` against the node's wss port; returns its report (the run must complete) and, when
    `while_running` names chargers, the security profile the node saw each of them connect with (read while
    they are online: the node shows it for live connections only)."""
    out = tmp_path / f"report-{prefix}.json"
    cmd = [
        sys.executable, "-m", "ampgate.cli", "sim", "--url", node.ocpp_tls_url, "--chargers", str(count),
        "--id-prefix", prefix, "--duration", str(duration), "--report", str(out), "--quiet", *args,
    ]  # fmt: skip
    seen: dict[str, int] = {}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
        try:
            if while_running:

                def all_seen() -> bool:
                    found = chargers(node)
                    for cid in while_running:
                        if cid in found and found[cid]["connection_security_profile"] is not None:
                            seen[cid] = found[cid]["connection_security_profile"]
                    return len(seen) == len(while_running)

                wait_for("every charger online", run, all_seen, duration + 10)
            stdout, stderr = run.communicate(timeout=60)
        finally:
            run.kill()
    assert run.returncode == 0, stderr + stdout
    return json.loads(out.read_text()), seen


@pytest.mark.slow
def test_profile_2_wss_with_basic_auth(node_factory, pki, tmp_path):
    node = node_factory(*tls_args(pki))
    ids = register(node, "SIMTLS2-", 2, PASSWORD)
    ca = str(pki.root / "server-ca.pem")
    report, seen = sim(node, tmp_path, "SIMTLS2-", "--ca", ca, "--password", PASSWORD, while_running=ids)

    assert report["errors"] == {}, report["error_details"]
    assert report["ever_booted"] == CHARGERS and report["booted"] == CHARGERS
    assert report["tls"] == {"handshakes": CHARGERS, "full": CHARGERS, "resumed": 0}
    assert seen == dict.fromkeys(ids, 2)


@pytest.mark.slow
def test_profile_3_a_certificate_per_charger_and_resumed_sessions(node_factory, pki, tmp_path):
    node = node_factory(*tls_args(pki, client_ca=True))
    ids = register(node, "SIMTLS3-", 3, None)
    scenario = tmp_path / "flapping.toml"
    scenario.write_text(FLAPPING)
    ca_cert, ca_key = pki.client_ca_files()
    args = ["--ca", str(pki.root / "server-ca.pem"), "--client-ca-cert", ca_cert, "--client-ca-key", ca_key]
    report, seen = sim(
        node, tmp_path, "SIMTLS3-", *args, "--scenario-file", str(scenario), duration=4, while_running=ids
    )

    assert report["errors"] == {}, report["error_details"]
    assert report["ever_booted"] == CHARGERS  # (one may be between a flap and its reconnect at the end)
    assert report["flaps"] >= CHARGERS
    tls = report["tls"]
    # Each charger's first handshake is a full one; its reconnects offer the session and the node takes it.
    assert tls["full"] >= CHARGERS and tls["resumed"] >= CHARGERS, tls
    assert tls["handshakes"] == tls["full"] + tls["resumed"] == report["connects"]
    # The node saw each charger's own certificate: profile 3.
    assert seen == dict.fromkeys(ids, 3)

    # One certificate for every charger (--client-cert): here the one charger it names.
    (one,) = register(node, "SIMTLSC-", 3, None, count=1)
    cert, key = pki.client_cert_files(one)
    args = ["--ca", str(pki.root / "server-ca.pem"), "--client-cert", cert, "--client-key", key]
    report, seen = sim(node, tmp_path, "SIMTLSC-", *args, duration=1.5, while_running=[one], count=1)
    assert report["errors"] == {}, report["error_details"]
    assert report["ever_booted"] == 1 and seen == {one: 3}


@pytest.mark.slow
def test_certificates_that_do_not_verify_are_failed_connections(node_factory, pki, tmp_path):
    node = node_factory(*tls_args(pki, client_ca=True))
    # The operator's client CA did not issue the node's certificate.
    report, _ = sim(node, tmp_path, "SIMTLSX-", "--ca", str(pki.root / "client-ca.pem"), duration=1.5)

    assert report["ever_booted"] == 0 and report["connects"] == 0
    assert report["errors"].get("tls_failed", 0) >= CHARGERS, report["error_details"]
    details = report["error_details"]["tls_failed"]
    assert all(d.startswith("server certificate: ") for d in details), details
    assert report["tls"] == {"handshakes": 0, "full": 0, "resumed": 0}

    # The chargers' certificates from a CA the node does not trust: the node refuses them in the handshake
    # (TLS 1.3 tells the client on its first read after it).
    other_cert, other_key = pki.client_ca_files(pki.other_ca)
    args = [
        "--ca",
        str(pki.root / "server-ca.pem"),
        "--client-ca-cert",
        other_cert,
        "--client-ca-key",
        other_key,
    ]
    report, _ = sim(node, tmp_path, "SIMTLSY-", *args, duration=1.5)
    assert report["ever_booted"] == 0 and report["connects"] == 0
    assert report["errors"].get("tls_failed", 0) >= CHARGERS, report["error_details"]
    details = report["error_details"]["tls_failed"]
    assert all(d.startswith("tls: ") for d in details), details
