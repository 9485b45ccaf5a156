"""A stand-in for the Rust engine `_native.Sim` with the contract's interface, so the process protocol, the
runner and the CLI are tested without it. Run as a script it is a simulator process (ampgate.sim.proc) on this
engine. Behaviour switches by id_prefix: "BADSET" refuses the settings (ValueError), "LIMIT" fails on the
file limit (OSError), "CRASH" dies mid-run, "INVALID" receives one schema-invalid reply per slice."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

KEYS = {
    "host", "port", "path_prefix", "id_prefix", "first_index", "count", "fleet_size", "protocol", "password", "id_tag",
    "source_ips", "seed", "vendor", "model", "firmware_version", "connectors", "duration", "connect_rate",
    "max_inflight", "heartbeat_interval", "call_timeout", "tx_per_hour", "tx_duration", "meter_period",
    "power_w", "load_message", "load_rate", "load_start", "storm_at", "storm_backoff", "rolling_period",
    "rolling_fraction", "reboot_delay", "flap_period", "flap_down", "slow_pause", "firmware_step",
    "firmware_fail_step", "reconnect_backoff", "max_message", "ev_mix", "ev_charging_needs", "load_inflight",
    "check_replies", "honour_retry_after", "tls_server_name", "tls_ca", "tls_client_cert", "tls_client_key",
    "tls_client_ca_cert", "tls_client_ca_key",
}  # fmt: skip
NOW = "2024-05-01T12:00:00Z"


class FakeSim:
    def __init__(self, settings: dict[str, Any], traits: bytes) -> None:
        unknown = set(settings) - KEYS
        if unknown:
            raise ValueError(f"unknown setting {sorted(unknown)[0]!r}")
        if settings.get("id_prefix") == "BADSET":
            raise ValueError("id_prefix: BADSET is refused")
        if settings.get("id_prefix") == "LIMIT":
            raise OSError("the hard open-file limit (20000) is too low for 30000 connections")
        if len(traits) != settings["count"]:
            raise ValueError("traits: expected one byte per charger")
        self.s = settings
        self.count = settings["count"]
        self.protocol = settings.get("protocol", "ocpp1.6")
        self.t0: float | None = None
        self.end: float | None = None
        self.slices = 0

    def run(self, seconds: float) -> bool:
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
            self.end = now + float(self.s.get("duration", 60))
        if self.s.get("id_prefix") == "CRASH" and self.slices == 2:
            os._exit(3)
        assert self.end is not None
        time.sleep(max(0.0, min(seconds, self.end - now)))
        self.slices += 1
        return time.monotonic() >= self.end

    def stop(self) -> None:
        self.end = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0 if self.t0 is not None else 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "chargers": self.count,
            "connected": self.count,
            "booted": self.count,
            "sent": self.slices * self.count,
            "received": self.slices * self.count,
            "errors": 0,
            "elapsed_s": self.elapsed(),
            "done": self.end is not None and time.monotonic() >= self.end,
        }

    def take_checks(self) -> list[tuple[str, str, str, str]]:
        out = [(self.protocol, "result", "Heartbeat", json.dumps({"currentTime": NOW}))]
        if self.s.get("id_prefix") == "INVALID":
            out.append(
                (
                    self.protocol,
                    "result",
                    "BootNotification",
                    json.dumps({"status": "Maybe", "currentTime": NOW, "interval": 1}),
                )
            )
        return out

    def report(self) -> dict[str, Any]:
        n = self.count
        return {
            "chargers": n,
            "protocol": self.protocol,
            "elapsed_s": self.elapsed(),
            "connected": n,
            "booted": n,
            "ever_booted": n,
            "first_connects": n,
            "connects": n,
            "boots": n,
            "connect_window_s": 0.5,
            "boot_window_s": 0.5,
            "messages_sent": self.slices * n,
            "messages_received": self.slices * n,
            "errors": {},
            "error_details": {},
            "latency_us": {"Heartbeat": [[1000, n], [2000, n]], "connect": [[300, n]]},
            "latency_max_us": {"Heartbeat": 1500 + self.s["first_index"], "connect": 300},
            "responses": {"BootNotification": {"Accepted": n}},
            "csms_calls": {},
            "transactions": {"started": 0, "stopped": 0, "refused": 0},
            "firmware": {"updates": 0, "installed": 0, "failed": 0, "statuses": {}},
            "reboots": 0,
            "flaps": 0,
            "storm_drops": 0,
        }


if __name__ == "__main__":
    from ampgate.sim import proc

    sys.exit(proc.main(engine=FakeSim))
