"""The runner and the `ampgate sim` command without the Rust engine: option errors (exit 2, the field named),
limits (exit 1, with the fix), and whole runs over real processes on a stand-in engine (tests/sim/fake_engine.py)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from ampgate.cli import main
from ampgate.sim import proc, runner
from ampgate.sim.runner import SimError, execute, make_plan, parse_url, run_sim
from ampgate.sim.scenario import ScenarioError

from .fake_engine import FakeSim

FAKE = Path(__file__).with_name("fake_engine.py")
URL = "ws://127.0.0.1:9/ocpp"


@pytest.fixture
def fake_engine(monkeypatch):
    """Simulator processes run the stand-in engine."""
    monkeypatch.setattr(runner, "PROC_ARGS", [str(FAKE)])


def field_of(**kwargs) -> str | None:
    kwargs.setdefault("url", URL)
    kwargs.setdefault("chargers", 10)
    with pytest.raises(ScenarioError) as e:
        make_plan(kwargs.pop("url"), kwargs.pop("chargers"), file_limit=20_000, **kwargs)
    return e.value.field


def test_parse_url():
    assert parse_url("ws://127.0.0.1:9000/ocpp/") == ("127.0.0.1", 9000, "/ocpp", False)
    assert parse_url("ws://localhost/steve/websocket/CentralSystemService") == (
        "localhost",
        80,
        "/steve/websocket/CentralSystemService",
        False,
    )
    assert parse_url("ws://[::1]:9000") == ("::1", 9000, "", False)
    assert parse_url("wss://example.com/ocpp") == ("example.com", 443, "/ocpp", True)
    assert parse_url("wss://127.0.0.1:9443/ocpp/").tls


def test_bad_options_name_the_option():
    assert field_of(chargers=0) == "--chargers"
    assert field_of(protocol="1.5") == "--protocol"
    assert field_of(id_prefix="a/b") == "--id-prefix"
    assert field_of(id_prefix="") == "--id-prefix"
    assert field_of(processes=-1) == "--processes"
    assert field_of(url="http://127.0.0.1:9/ocpp") == "--url"
    assert field_of(url="https://127.0.0.1:9/ocpp") == "--url"
    assert field_of(url="ws://127.0.0.1:9/ocpp?x=1") == "--url"
    assert field_of(url="ws://127.0.0.1:notaport/ocpp") == "--url"
    assert field_of(url="ws://no-such-host.invalid/ocpp") == "--url"
    assert field_of(duration=-1) == "--duration"
    assert field_of(connectors=0) == "--connectors"
    assert field_of(scenario="nope") == "--scenario"
    assert field_of(no_backoff=True) == "--no-backoff"


def test_tls_options_need_wss_come_in_pairs_and_name_existing_files(tmp_path):
    pem = tmp_path / "x.pem"
    pem.write_text("-")
    wss = "wss://127.0.0.1:9/ocpp"
    assert field_of(ca=pem) == "--ca"  # on a ws:// URL
    assert field_of(url=wss, ca=tmp_path / "missing.pem") == "--ca"
    assert field_of(url=wss, client_cert=pem) == "--client-key"
    assert field_of(url=wss, client_ca_key=pem) == "--client-ca-cert"
    both = {"client_cert": pem, "client_key": pem, "client_ca_cert": pem, "client_ca_key": pem}
    assert field_of(url=wss, **both) == "--client-ca-cert"
    plan = make_plan(wss, 4, processes=2, file_limit=20_000, ca=pem, client_ca_cert=pem, client_ca_key=pem)
    for settings, _ in plan.jobs:
        assert settings["tls_server_name"] == "127.0.0.1" and settings["tls_ca"] == str(pem)
        assert settings["tls_client_ca_cert"] == settings["tls_client_ca_key"] == str(pem)
        assert settings["tls_client_cert"] is None
    # ws:// settings carry no TLS keys at all.
    assert not any(k.startswith("tls_") for k in make_plan(URL, 4, file_limit=20_000).jobs[0][0])


def test_the_plan_resolves_the_host_and_spreads_the_fleet_by_the_file_limit():
    plan = make_plan("ws://localhost:9/ocpp", 1000, protocol="2.0.1", seed=4, file_limit=64 + 300)
    assert plan.options.host in ("127.0.0.1", "::1") and plan.options.protocol == "ocpp2.0.1"
    assert len(plan.jobs) == 4  # ceil(1000 / 300)
    assert [s["count"] for s, _ in plan.jobs] == [250] * 4
    assert all(s["path_prefix"] == "/ocpp" and s["port"] == 9 and s["seed"] == 4 for s, _ in plan.jobs)
    assert len(make_plan(URL, 1000, processes=2, file_limit=20_000).jobs) == 2
    assert len(make_plan(URL, 3, processes=8, file_limit=20_000).jobs) == 3


def test_too_few_files_per_process_is_a_limit_with_the_fix():
    with pytest.raises(SimError) as e:
        make_plan(URL, 1000, processes=2, file_limit=364)
    assert "open-file limit is 364" in e.value.message and "--processes 4" in e.value.message
    with pytest.raises(SimError, match="too low to simulate any charger"):
        make_plan(URL, 10, file_limit=10)


def test_too_few_local_ports_for_a_remote_target_is_a_limit_with_the_fix(monkeypatch):
    monkeypatch.setattr(runner, "local_port_count", lambda: 1000)
    with pytest.raises(SimError) as e:
        make_plan("ws://10.1.2.3:9/ocpp", 2000, file_limit=20_000)
    assert "no free local ports" in e.value.message and "ip_local_port_range" in e.value.message
    # loopback targets spread over source addresses of their own
    assert make_plan(URL, 2000, file_limit=20_000).jobs[0][0]["source_ips"]


def test_proc_run_validates_what_the_central_system_sent_and_merges_it_into_the_report():
    settings = {"count": 3, "first_index": 0, "duration": 0.6, "id_prefix": "INVALID", "protocol": "ocpp1.6"}
    report = proc.run(FakeSim(settings, bytes(3)), threading.Event())
    slices = report["messages_sent"] // 3
    assert slices >= 3
    assert report["errors"]["invalid_from_csms"] == slices
    assert report["error_details"]["invalid_from_csms"] == {
        "BootNotification: $.status: invalid enum value 'Maybe'": slices
    }


def test_invalid_details_are_bounded():
    counter = proc.InvalidCounter()
    counter.add([f"Reset: $.type: invalid enum value '{i}'" for i in range(proc.MAX_DETAILS + 10)])
    report = counter.merge_into({})
    assert report["errors"]["invalid_from_csms"] == proc.MAX_DETAILS + 10
    assert len(report["error_details"]["invalid_from_csms"]) == proc.MAX_DETAILS + 1
    assert report["error_details"]["invalid_from_csms"][proc.OTHER_DETAIL] == 10
    assert proc.InvalidCounter().merge_into({"errors": {}}) == {"errors": {}}


def test_a_run_over_processes_merges_their_reports(fake_engine):
    seen = []
    report = run_sim(
        URL,
        7,
        processes=2,
        duration=1.0,
        on_progress=lambda stats, invalid: seen.append(stats),
        file_limit=20_000,
    )
    assert report["chargers"] == 7 and report["processes"] == 2 and report["connected"] == 7
    assert report["latency_ms"]["Heartbeat"]["count"] == 14
    assert report["latency_ms"]["Heartbeat"]["max"] == 1.504  # the second process starts at index 4
    assert report["errors"] == {} and report["interrupted"] is False and report["scenario"] == "steady"
    assert report["messages_per_s"] > 0
    assert seen and seen[-1]["chargers"] == 7


def test_an_engine_refusing_a_setting_is_a_bad_option(fake_engine):
    with pytest.raises(ScenarioError, match="refused a setting: id_prefix: BADSET"):
        run_sim(URL, 4, processes=2, duration=5, id_prefix="BADSET", file_limit=20_000)


def test_an_engine_at_its_file_limit_is_a_limit_with_the_fix(fake_engine):
    with pytest.raises(SimError, match=r"open-file limit .* too low.*ulimit -n"):
        run_sim(URL, 4, duration=5, id_prefix="LIMIT", file_limit=20_000)


def test_a_process_that_dies_fails_the_run_and_the_others_are_stopped(fake_engine):
    with pytest.raises(SimError, match="exited with code 3 without a report"):
        run_sim(URL, 4, processes=2, duration=30, id_prefix="CRASH", file_limit=20_000)


def test_ctrl_c_stops_the_run_early_with_a_report(fake_engine):
    pressed = []

    def on_progress(stats, invalid):
        if not pressed:
            pressed.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    plan = make_plan(URL, 4, processes=2, duration=60, file_limit=20_000)
    report = execute(plan, on_progress)
    assert report["interrupted"] is True and report["stopped_early"] and report["elapsed_s"] < 30


# -- the command ------------------------------------------------------------------------------------------


def sim(*args: str) -> int:
    return main(["sim", "--url", URL, *args])


def test_cli_option_errors_exit_2_naming_the_field(capsys, tmp_path):
    assert sim("--chargers", "0") == 2
    assert "--chargers: expected >= 1" in capsys.readouterr().err
    assert main(["sim", "--url", "wss://127.0.0.1/ocpp", "--chargers", "1", "--client-cert", "c.pem"]) == 2
    assert "--client-key: --client-cert and --client-key go together" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[flapping]\nfraction = 1.5\n")
    assert sim("--chargers", "5", "--scenario-file", str(bad)) == 2
    assert "ampgate sim: scenario error: flapping.fraction: expected <= 1.0" in capsys.readouterr().err
    assert sim("--chargers", "5", "--duration", "0") == 2
    assert "--duration: expected > 0" in capsys.readouterr().err
    for args in (
        ["--chargers", "x"],
        ["--chargers", "5", "--protocol", "1.5"],
        ["--chargers", "5", "--scenario", "x"],
    ):
        with pytest.raises(SystemExit) as e:
            sim(*args)
        assert e.value.code == 2
    with pytest.raises(SystemExit):
        sim("--chargers", "5", "--scenario", "steady", "--scenario-file", str(bad))
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_limit_errors_exit_1_with_the_fix(capsys):
    assert sim("--chargers", "1000000", "--processes", "1") == 1
    assert "use --processes" in capsys.readouterr().err


def test_cli_run_prints_the_summary_and_writes_the_report(fake_engine, capsys, tmp_path):
    out = tmp_path / "report.json"
    assert (
        sim("--chargers", "6", "--duration", "0.8", "--processes", "2", "--report", str(out), "--seed", "9")
        == 0
    )
    printed = capsys.readouterr().out
    assert "ampgate sim: steady" in printed and "Heartbeat" in printed
    report = json.loads(out.read_text())
    for key in ("chargers", "connected", "booted", "errors", "messages_per_s", "latency_ms"):
        assert key in report
    assert report["chargers"] == 6 and report["seed"] == 9
    assert set(report["latency_ms"]["Heartbeat"]) >= {"p50", "p99", "max"}


def test_cli_failure_of_the_engine_exits_1(fake_engine, capsys):
    assert sim("--chargers", "2", "--duration", "5", "--id-prefix", "LIMIT") == 1
    assert "could not start" in capsys.readouterr().err


def test_limit_hints_explain_connect_failures_in_plain_words():
    report = {
        "url": URL,
        "error_details": {
            "connect_failed": {
                "out of files": 3,
                "no free local port (add source addresses)": 2,
                "connect refused": 1,
            }
        },
    }
    hints = runner.limit_hints(report)
    assert len(hints) == 3
    assert "ulimit -n" in hints[0] and "ip_local_port_range" in hints[1] and URL in hints[2]
    assert runner.limit_hints({"error_details": {"timeout": {"Heartbeat": 1}}}) == []
