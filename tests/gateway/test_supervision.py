"""Worker supervision: the restart back-off as a state machine, and a gateway in-process (real hub, real worker
processes) whose restarts fail for real reasons (fork/exec refused, an SQLite error while the handshake table is
read): the node keeps running, the other worker keeps serving, health shows the slot down with its last error
and the waits between attempts double; once the cause is gone the slot is back up."""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
from typing import Any

import pytest
import trio

from ampgate import _native, cli
from ampgate.config import NodeConfig
from ampgate.events import Event, GatewayWorkerDown
from ampgate.gateway import Gateway, supervisor
from ampgate.gateway.supervisor import RestartBackoff
from ampgate.health import NodeHealth


def test_the_back_off_doubles_to_its_cap_and_resets_after_a_stable_run() -> None:
    b = RestartBackoff(first=0.5, cap=30.0, stable=60.0)
    assert [b.next_delay(0.0) for _ in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    # A generation that served less than `stable` keeps the count; one that served `stable` resets it.
    assert b.next_delay(59.9) == 30.0
    assert b.next_delay(60.0) == 0.5
    assert b.next_delay(1.0) == 1.0
    # Thousands of failures in a row never overflow.
    many = RestartBackoff(first=0.5, cap=30.0, stable=60.0)
    assert max(many.next_delay(0.0) for _ in range(5000)) == 30.0


class Links:
    def connected(self, *args: Any) -> None: ...
    def disconnected(self, *args: Any) -> None: ...
    def pong(self, *args: Any) -> None: ...

    def worker_lost(self, *args: Any) -> None:
        self.lost = getattr(self, "lost", 0) + 1

    def begin_batch(self) -> None: ...

    def knows(self, conn_id: int) -> bool:
        return False

    def on_message(self, *args: Any) -> None: ...


class Clock:
    def wall(self) -> float:
        return 0.0


async def wait_for(what: str, cond: Any, limit_s: float = 20.0) -> None:
    """Poll `cond` until true; fails (naming `what`) after `limit_s`."""
    with trio.move_on_after(limit_s):
        while True:
            if cond():
                return
            await trio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_failed_restarts_back_off_and_leave_the_other_worker_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "RESTART_DELAY", 0.05)
    monkeypatch.setattr(supervisor, "RESTART_DELAY_MAX", 0.4)
    real_popen = subprocess.Popen
    fail = {"table": False, "spawn": False}

    def credentials(limit: int, after: str | None) -> list[tuple[str, str | None, int]]:
        if fail["table"]:
            raise sqlite3.OperationalError("database is locked")
        return [("CP1", None, 1)] if after is None else []

    def popen(*args: Any, **kw: Any) -> Any:
        if fail["spawn"]:
            raise OSError(24, "Too many open files")
        return real_popen(*args, **kw)

    monkeypatch.setattr(supervisor.subprocess, "Popen", popen)
    events: list[Event] = []
    links = Links()
    config = NodeConfig(workers=2, ocpp_host="127.0.0.1", ocpp_port=0, worker_heartbeat_s=0)
    gw = Gateway(config, _native.Hub(), links, links, credentials, publish=events.append)  # type: ignore[arg-type]
    health = NodeHealth(gw.health, lambda: 0, Clock())  # type: ignore[arg-type]

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(gw.run)
            assert [w["state"] for w in gw.health()] == ["up", "up"]
            assert health.report()["status"] == "ok"
            steady = gw.workers[0].pid
            assert steady is not None

            # Worker 1 dies while the database is locked: every new worker fails to load its table, is killed
            # and tried again later and later; worker 0 is untouched.
            fail["table"] = True
            victim = gw.workers[1].pid
            assert victim is not None
            os.kill(victim, signal.SIGKILL)
            downs = lambda: [e for e in events if isinstance(e, GatewayWorkerDown)]  # noqa: E731
            await wait_for("three failed arms", lambda: len(downs()) >= 4)
            w1 = gw.workers[1]
            assert w1.state in ("down", "starting") and "database is locked" in (w1.last_error or "")
            assert health.report()["status"] == "degraded"
            got = downs()[:4]
            assert [e.reason for e in got] == ["exited", "arming_failed", "arming_failed", "arming_failed"]
            assert [e.restart_in_s for e in got] == [0.05, 0.1, 0.2, 0.4]
            assert all(e.worker == 1 for e in got) and "database is locked" in got[1].error

            # Now no process can be started at all: still retried with the back-off, never the node's end.
            fail["spawn"] = True
            await wait_for("a failed spawn", lambda: any(e.reason == "start_failed" for e in downs()))
            failed = next(e for e in downs() if e.reason == "start_failed")
            assert failed.pid is None and "Too many open files" in failed.error
            assert failed.restart_in_s == 0.4  # at the cap

            # Worker 0 served throughout: same process, up, and it answers barriers.
            assert gw.workers[0].pid == steady and gw.workers[0].state == "up"
            with trio.fail_after(5):
                await gw.barrier(0)

            # The causes go away: the slot is back, its error cleared, health ok.
            fail["table"] = fail["spawn"] = False
            await wait_for("worker 1 back", lambda: gw.workers[1].state == "up")
            assert gw.workers[1].alive and gw.workers[1].last_error is None
            assert gw.workers[1].restarts >= 5
            assert health.report()["status"] == "ok"
            await gw.stop()
            nursery.cancel_scope.cancel()

    trio.run(scenario)


def serve_config(*args: str) -> NodeConfig:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli._serve_parser(sub)
    return cli._config(parser.parse_args(["serve", *args]))


def test_the_heartbeat_flag_reaches_the_config_and_is_validated(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_config().worker_heartbeat_s == 5.0
    assert serve_config("--worker-heartbeat-s", "0.5").worker_heartbeat_s == 0.5
    assert serve_config("--worker-heartbeat-s", "0").worker_heartbeat_s == 0  # off
    for bad in ("0.01", "-1", "3601", "nan", "soon"):
        with pytest.raises(SystemExit) as exc:
            serve_config("--worker-heartbeat-s", bad)
        assert exc.value.code == 2
        assert "--worker-heartbeat-s" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"worker_heartbeat_s must be 0 .off. or between 0.1 and 3600"):
        NodeConfig(worker_heartbeat_s=0.05)
