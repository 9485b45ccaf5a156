"""The `ampgate` command: `ampgate serve` runs a node; `ampgate token create|list|revoke` manages API tokens;
`ampgate sim` load-tests a central system with a simulated charger fleet."""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import trio

from ampgate.config import (
    DEFAULT_MAX_WRITE_QUEUE,
    NodeConfig,
    check_bounds,
    check_max_message,
    check_store_queue_max,
    check_worker_heartbeat,
    connections_per_worker,
    default_workers,
)

# The longest real-time authorization wait we accept: a charger's own wait for our Authorize reply is commonly
# 30 s (2.0.1 MessageTimeout's usual value), and ours must end first.
OCPI_AUTHORIZE_TIMEOUT_MAX_S = 30.0
# The longest a worker takes for a duration setting (rust/py/worker.rs): ~31 years, far past any sane back-off.
AUTH_SECONDS_MAX = 1e9


def _positive(text: str) -> float:
    """An argparse type: a number > 0 (the error names the value)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return v


_Number = TypeVar("_Number", int, float)


def _checked(
    parse: Callable[[str], _Number], what: str, check: Callable[[_Number], str | None]
) -> Callable[[str], _Number]:
    """An argparse type: `text` parsed by `parse` (else "expected {what}"), then refused with what `check` says
    is wrong with it (the settings' own check, so the flag and NodeConfig agree; argparse adds the option and
    exits 2)."""

    def convert(text: str) -> _Number:
        try:
            v = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        problem = check(v)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return v

    return convert


# --store-queue-max, --max-message (within what the worker link and the hub carry) and --worker-heartbeat-s
# (0: off).
_store_queue_max = _checked(int, "a whole number", check_store_queue_max)
_max_message = _checked(int, "a whole number of bytes", check_max_message)
_worker_heartbeat = _checked(float, "a number of seconds", check_worker_heartbeat)


def _non_negative(text: str) -> float:
    """An argparse type: a number >= 0 (0 usually meaning "off")."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v >= 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def _non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0, at most 2**32 - 1 (what a worker's u32 setting holds)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= v < 1 << 32:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text}")
    return v


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    d = NodeConfig()
    p = sub.add_parser("serve", help="run a node: the OCPP gateway, the control plane and the HTTP API")
    p.add_argument(
        "--ocpp-host", default=d.ocpp_host, help="address chargers connect to (default %(default)s)"
    )
    p.add_argument(
        "--ocpp-port", type=int, default=d.ocpp_port, help="OCPP WebSocket port (default %(default)s)"
    )
    p.add_argument(
        "--ocpp-path", default=d.ocpp_path, help="URL prefix before the charge point id (default %(default)s)"
    )
    p.add_argument(
        "--ocpp-tls-port",
        type=int,
        default=None,
        help="serve OCPP over wss on this port too (security profiles 2 and 3); needs --tls-cert and --tls-key",
    )
    p.add_argument(
        "--no-ocpp-plain",
        action="store_true",
        help="no plain ws port: chargers connect over wss only (needs --ocpp-tls-port)",
    )
    p.add_argument(
        "--tls-cert",
        action="append",
        default=[],
        help="PEM server certificate (chain) for wss; give it twice, each with its --tls-key, for one RSA and one "
        "ECDSA certificate (OCPP's four cipher suites need both). Reloaded on SIGHUP",
    )
    p.add_argument(
        "--tls-key", action="append", default=[], help="PEM private key of the --tls-cert before it"
    )
    p.add_argument(
        "--tls-client-ca",
        default=None,
        help="PEM CA certificates client certificates must chain to: security profile 3 (CN = charge point id)",
    )
    p.add_argument("--api-host", default=d.api_host, help="HTTP API address (default %(default)s)")
    p.add_argument("--api-port", type=int, default=d.api_port, help="HTTP API port (default %(default)s)")
    p.add_argument(
        "--public-host", default=d.public_host, help="public surface address (default %(default)s)"
    )
    p.add_argument(
        "--public-port", type=int, default=d.public_port, help="public surface port (default %(default)s)"
    )
    p.add_argument(
        "--public-base-url",
        default=None,
        help="URL chargers and outside parties reach the public surface at (default: this host's name and port)",
    )
    p.add_argument(
        "--public-tls-cert", default=None, help="PEM certificate: serve the public surface over TLS"
    )
    p.add_argument("--public-tls-key", default=None, help="PEM private key of --public-tls-cert")
    p.add_argument(
        "--public-max-transfers",
        type=int,
        default=d.public_max_transfers,
        help="concurrent file transfers on the public surface (default %(default)s)",
    )
    p.add_argument("--db", default=d.db_path, help="SQLite database file (default %(default)s)")
    p.add_argument(
        "--store-sync",
        choices=("durable", "full", "normal"),
        default=d.store_sync,
        help="which commits are fsynced: 'durable' those of transaction messages and first acceptances, "
        "'full' all, 'normal' none (a power cut may lose acknowledged messages; default %(default)s)",
    )
    p.add_argument(
        "--store-queue-max",
        type=_store_queue_max,
        default=d.store_queue_max,
        help="writes queued (and replies awaiting their commits) before the store counts as full: the gateway "
        "then takes no more charger messages until there is room, so a slow, locked or full disk pushes back on "
        "the chargers instead of growing memory (default %(default)s)",
    )
    p.add_argument(
        "--upload-dir",
        default=None,
        help="where files chargers upload (logs, diagnostics) are kept (default: 'uploads' beside --db)",
    )
    p.add_argument(
        "--max-upload-bytes",
        type=int,
        default=d.max_upload_bytes,
        help="largest file a charger may upload (default %(default)s)",
    )
    p.add_argument(
        "--firmware-dir",
        default=None,
        help="where uploaded firmware images are kept (default: 'firmware' beside --db)",
    )
    p.add_argument(
        "--max-firmware-bytes",
        type=int,
        default=d.max_firmware_bytes,
        help="largest firmware image an admin may upload (default %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="gateway worker processes (default: enough for --max-chargers, plus one)",
    )
    p.add_argument(
        "--max-chargers",
        type=int,
        default=d.max_chargers,
        help="chargers to size the workers for (default %(default)s)",
    )
    p.add_argument(
        "--unknown-chargers",
        choices=["accept", "reject"],
        default=d.unknown_chargers,
        help="admit chargers that are not registered (default %(default)s)",
    )
    p.add_argument(
        "--protocols",
        default=",".join(d.protocols),
        help="subprotocols in order of preference (default %(default)s)",
    )
    p.add_argument(
        "--heartbeat-interval", type=int, default=d.heartbeat_interval, help="seconds (default %(default)s)"
    )
    p.add_argument(
        "--ping-interval",
        type=float,
        default=d.ping_interval,
        help="WebSocket ping seconds, 0 = off (default %(default)s)",
    )
    p.add_argument("--ping-timeout", type=float, default=d.ping_timeout, help="seconds (default %(default)s)")
    p.add_argument(
        "--stale-grace",
        type=_positive,
        default=d.stale_grace,
        help="a connected charger silent for heartbeat interval x this is stale (default %(default)s)",
    )
    p.add_argument(
        "--flap-count",
        type=_positive_int,
        default=d.flap_count,
        help="more disconnects than this ... (default %(default)s)",
    )
    p.add_argument(
        "--flap-window",
        type=_positive,
        default=d.flap_window,
        help="... within this many seconds mark a charger flapping (default %(default)s)",
    )
    p.add_argument(
        "--flap-clear",
        type=_positive,
        default=d.flap_clear,
        help="seconds connected without a drop that end flapping (default %(default)s)",
    )
    p.add_argument(
        "--offline-alert",
        type=_positive,
        default=d.offline_alert,
        help="seconds offline before a charger's alert (default %(default)s)",
    )
    p.add_argument(
        "--spike-fraction",
        type=_positive,
        default=d.spike_fraction,
        help="share of the fleet disconnecting within a minute that is an outage incident (default %(default)s)",
    )
    p.add_argument(
        "--spike-min",
        type=_positive_int,
        default=d.spike_min,
        help="... and at least this many (default %(default)s)",
    )
    p.add_argument(
        "--spike-window",
        type=_positive,
        default=d.spike_window,
        help="seconds the spike rule counts disconnects over; an incident ends after one quiet (default %(default)s)",
    )
    p.add_argument(
        "--events-days", type=_positive, default=d.events_days, help="event log kept (default %(default)s)"
    )
    p.add_argument(
        "--history-days",
        type=_positive,
        default=d.history_days,
        help="connectivity history kept (default %(default)s)",
    )
    p.add_argument(
        "--max-message",
        type=_max_message,
        default=d.max_message,
        help="largest message a charger may send, bytes, 1024 to 16 MiB (default %(default)s)",
    )
    p.add_argument(
        "--admit-rate",
        type=_non_negative_int,
        default=d.admit_rate,
        help="new charger connections per second over the node, beyond which upgrades get HTTP 503 with a "
        "Retry-After; 0 = no limit (default %(default)s)",
    )
    p.add_argument(
        "--admit-burst",
        type=_non_negative_int,
        default=d.admit_burst,
        help="new connections admitted at once after a quiet spell (default %(default)s)",
    )
    p.add_argument(
        "--admit-handshakes",
        type=_non_negative_int,
        default=d.admit_handshakes,
        help="WebSocket handshakes in progress at once over the node; 0 = no limit (default %(default)s)",
    )
    p.add_argument(
        "--admit-retry-max",
        type=_positive_int,
        default=d.admit_retry_max,
        help="longest Retry-After (s) a refused charger is given (default %(default)s)",
    )
    p.add_argument(
        "--unknown-ids-per-minute",
        type=_non_negative_int,
        default=d.unknown_ids_per_minute,
        help="new unknown charger ids (not registered, never booted here) admitted per minute over the node, "
        "beyond which their upgrades get HTTP 503 with a Retry-After; known chargers are never charged; "
        "0 = no limit (default %(default)s)",
    )
    p.add_argument(
        "--auth-fail-limit",
        type=_non_negative_int,
        default=d.auth_fail_limit,
        help="failed Basic-auth attempts per charger id within --auth-fail-window-s, node-wide, after which the "
        "id is refused (HTTP 429) for --auth-backoff-s, right password included; 0 = off (default %(default)s)",
    )
    p.add_argument(
        "--auth-fail-window-s",
        type=_positive,
        default=d.auth_fail_window_s,
        help="seconds over which failed Basic-auth attempts are counted (default %(default)s)",
    )
    p.add_argument(
        "--auth-backoff-s",
        type=_positive,
        default=d.auth_backoff_s,
        help="seconds a charger id is refused after too many failures (default %(default)s)",
    )
    p.add_argument(
        "--worker-buffer-budget-mb",
        type=_non_negative_int,
        default=d.worker_buffer_budget_mb,
        help="MiB of buffers a gateway worker may hold over all its connections (partial messages, parked and "
        "held messages, write queues); past it the connections holding the most are closed (1013); "
        "0 = no budget (default %(default)s)",
    )
    p.add_argument(
        "--max-pending-calls",
        type=_non_negative_int,
        default=d.max_pending_calls,
        help="CALLs a charger may send before its previous one is answered: they wait and go on in order; one "
        "more closes the connection (1008) (default %(default)s)",
    )
    p.add_argument(
        "--charger-msg-rate",
        type=_non_negative,
        default=d.charger_msg_rate,
        help="messages per second a charger may send; past it (and --charger-msg-burst) its connection is "
        "closed (1008); 0 = no limit (default %(default)s)",
    )
    p.add_argument(
        "--charger-msg-burst",
        type=_positive_int,
        default=d.charger_msg_burst,
        help="messages a charger may send at once above --charger-msg-rate (default %(default)s)",
    )
    p.add_argument(
        "--worker-max-connections", type=int, default=0, help="per-worker cap (default: the open-file limit)"
    )
    p.add_argument(
        "--worker-heartbeat-s",
        type=_worker_heartbeat,
        default=d.worker_heartbeat_s,
        help="seconds between link heartbeats to each worker; a worker silent for 3 is hung, killed and "
        "replaced; 0 = off, else 0.1 to 3600 (default %(default)s)",
    )
    p.add_argument(
        "--ready-file", default=None, help="write ports and the first admin token here as JSON once ready"
    )
    p.add_argument(
        "--unknown-boot",
        choices=["accept", "pending", "reject"],
        default=d.unknown_boot,
        help="BootNotification answer for chargers never accepted before (default %(default)s)",
    )
    p.add_argument(
        "--boot-retry-interval",
        type=int,
        default=d.boot_retry_interval,
        help="interval sent with Pending/Rejected (default %(default)s s)",
    )
    p.add_argument(
        "--boot-spread-threshold",
        type=_non_negative_int,
        default=d.boot_spread_threshold,
        help="boots Accepted per second before the rest are answered Pending to spread a boot storm; 0 = off"
        " (default %(default)s)",
    )
    p.add_argument(
        "--boot-spread-window",
        type=_positive_int,
        default=d.boot_spread_window,
        help="seconds: a spread boot's Pending interval is a random 1 to this (default %(default)s)",
    )
    p.add_argument(
        "--load-tick",
        type=_positive,
        default=d.load_tick,
        help="seconds between load allocations (default %(default)s)",
    )
    p.add_argument(
        "--load-min-a",
        type=_positive,
        default=d.load_min_a,
        help="least current a charging session is given, else it is paused (A, default %(default)s)",
    )
    p.add_argument(
        "--load-default-a",
        type=_positive,
        default=d.load_default_a,
        help="the TxDefaultProfile limit placed chargers get at boot: their own fallback (A, default %(default)s)",
    )
    p.add_argument(
        "--load-profile-validity",
        type=_positive_int,
        default=d.load_profile_validity,
        help="seconds a load profile holds before the charger falls back to its default (default %(default)s)",
    )
    p.add_argument(
        "--load-min-interval",
        type=_positive,
        default=d.load_min_interval,
        help="least seconds between two profiles of one connector, decreases excepted (default %(default)s)",
    )
    p.add_argument(
        "--load-offline-assume",
        choices=("max", "last"),
        default=d.load_offline_assume,
        help="what an offline charger is assumed to draw: its rating or its last allocation (default %(default)s)",
    )
    p.add_argument(
        "--load-hysteresis-a",
        type=float,
        default=d.load_hysteresis_a,
        help="increases smaller than this (A) or --load-hysteresis-pct are held back (default %(default)s)",
    )
    p.add_argument(
        "--load-hysteresis-pct", type=float, default=d.load_hysteresis_pct, help="(default %(default)s)"
    )
    p.add_argument(
        "--load-min-hold",
        type=float,
        default=d.load_min_hold,
        help="seconds a session stays paused or running unless a limit forces a change (default %(default)s)",
    )
    p.add_argument(
        "--cost-update-interval",
        type=_non_negative,
        default=d.cost_update_interval,
        help="seconds between running-cost updates to chargers showing cost (2.0.1 CostUpdated, 1.6 California"
        " RunningCost); 0 = none (default %(default)s)",
    )
    p.add_argument(
        "--call-timeout",
        type=float,
        default=d.call_timeout,
        help="seconds a remote command waits for the charger (default %(default)s)",
    )
    p.add_argument(
        "--report-timeout",
        type=float,
        default=d.report_timeout,
        help="seconds a device-model refresh waits for the charger's whole report (default %(default)s)",
    )
    p.add_argument(
        "--listen-mode",
        choices=["shared", "reuseport"],
        default=d.listen_mode,
        help="how workers share the OCPP port (default %(default)s; see README)",
    )
    p.add_argument(
        "--no-subprotocol",
        choices=["refuse", "close"],
        default=d.no_subprotocol,
        help="an upgrade offering no OCPP version we serve: refuse with HTTP 400 (default, what the OCA test"
        " tool expects) or upgrade without the header and close with 1002 (the OCPP-J 1.6 text)",
    )
    ca = p.add_argument_group("Charging-station certificates (docs/certificates.md)")
    ca.add_argument(
        "--charger-ca-dir",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="sign chargers' CSRs with the node's own CA in DIR (ca.pem + ca.key, made at first start when"
        " absent); without DIR: charger-ca beside the database. Off by default (SignCertificate is Rejected)",
    )
    ca.add_argument(
        "--charger-ca-signer",
        default=None,
        metavar="CMD",
        help="sign chargers' CSRs with this command instead: CSR PEM on stdin (AMPGATE_CHARGER_ID and"
        " AMPGATE_CERT_DAYS in its environment), the chain PEM on stdout, the charger's certificate first",
    )
    ca.add_argument(
        "--charger-ca-signer-timeout",
        type=_positive,
        default=d.charger_ca_signer_timeout,
        help="seconds the signer command may take per CSR (default %(default)s)",
    )
    ca.add_argument(
        "--charger-ca-key-type",
        choices=["ec", "rsa"],
        default=d.charger_ca_key_type,
        help="the key of a CA the node makes: ec = P-256, rsa = 3072 bits (default %(default)s)",
    )
    ca.add_argument(
        "--charger-cert-days",
        type=_positive,
        default=d.charger_cert_days,
        help="validity of an issued charger certificate in days (default %(default)s)",
    )
    ca.add_argument(
        "--charger-cert-organization",
        default=None,
        help="the O (CPO name) a 2.0.1 CSR must carry (default: any)",
    )
    ca.add_argument(
        "--charger-cert-warn-days",
        type=_non_negative,
        default=d.charger_cert_warn_days,
        help="days before a charger certificate ends that certificate.expiring is published (default %(default)s)",
    )
    ca.add_argument(
        "--charger-cert-check-interval",
        type=_positive,
        default=d.charger_cert_check_interval,
        help="seconds between expiry checks (default %(default)s)",
    )
    ca.add_argument(
        "--charger-cert-auto-renew",
        action=argparse.BooleanOptionalAction,
        default=d.charger_cert_auto_renew,
        help="ask an online charger to renew its expiring certificate (TriggerMessage / ExtendedTriggerMessage)"
        " (default: on)",
    )
    oadr = p.add_argument_group("OpenADR 3.0.1 VEN (runs only with --openadr-vtn)")
    oadr.add_argument(
        "--openadr-vtn", default=None, help="the VTN's base URL, e.g. https://vtn.example/openadr3/3.0.1"
    )
    oadr.add_argument("--openadr-client-id", default=None, help="OAuth2 client id the VTN gave this VEN")
    oadr.add_argument(
        "--openadr-client-secret", default=None, help="OAuth2 client secret of --openadr-client-id"
    )
    oadr.add_argument(
        "--openadr-token-url",
        default=None,
        help="OAuth2 token endpoint (default: the VTN's /auth/server, else /auth/token)",
    )
    oadr.add_argument(
        "--openadr-ven-name", default=None, help="the VEN's name at the VTN (default: this host's name)"
    )
    oadr.add_argument(
        "--openadr-poll-interval",
        type=float,
        default=d.openadr_poll_interval,
        help="seconds between polls when the programs give no interval, and at most (default %(default)s)",
    )
    oadr.add_argument(
        "--openadr-safe-mode-timeout",
        type=float,
        default=d.openadr_safe_mode_timeout,
        help="seconds the VTN may be unreachable before the safe-mode limits apply (default %(default)s)",
    )
    oadr.add_argument(
        "--openadr-fallback-kw",
        type=float,
        default=None,
        help="kW per site in safe mode when the program has no safe-mode event (default: no limit)",
    )
    ocpi = p.add_argument_group(
        "OCPI 2.2.1 as a CPO (runs only with --ocpi-country-code and --ocpi-party-id)"
    )
    ocpi.add_argument(
        "--ocpi-country-code", default=None, help="our ISO 3166-1 alpha-2 country code, e.g. NL"
    )
    ocpi.add_argument("--ocpi-party-id", default=None, help="our 3-character OCPI party id, e.g. AMP")
    ocpi.add_argument(
        "--ocpi-base-url",
        default=None,
        help="where parties reach our OCPI server (default: --public-base-url + /ocpi); https in production",
    )
    ocpi.add_argument(
        "--ocpi-name", default=None, help="our name in the credentials' business details (default CC*PID)"
    )
    ocpi.add_argument(
        "--ocpi-authorize-timeout",
        type=float,
        default=d.ocpi_authorize_timeout,
        help="seconds a real-time authorization waits for the eMSP (0 < s < 30: a charger waits for our "
        "Authorize reply meanwhile)",
    )
    ocpi.add_argument(
        "--ocpi-rate-limit",
        type=int,
        default=d.ocpi_rate_limit,
        help="requests per second per client address over all of /ocpi (default %(default)s); past it 429",
    )
    ocpi.add_argument(
        "--ocpi-session-update-s",
        type=_positive,
        default=d.ocpi_session_update_s,
        help="seconds between two pushes of a roaming session's kwh and cost to its eMSP (default %(default)s)",
    )
    ocpi.add_argument(
        "--ocpi-cdr-retry-s",
        type=_positive,
        default=d.ocpi_cdr_retry_s,
        help="seconds before a failed CDR delivery is tried again, doubled per attempt up to an hour"
        " (default %(default)s)",
    )
    p.add_argument(
        "--cdr-max-parking-s",
        type=_positive,
        default=d.cdr_max_parking_s,
        help="seconds a session waits after its transaction stopped for the EVSE to be free (connector Available,"
        " charger offline) before its CDR is made with the parking until then (default %(default)s)",
    )
    p.add_argument("--log-level", default="INFO")


def _sim_parser(sub: argparse._SubParsersAction) -> None:
    from ampgate.sim.scenario import BUILTINS

    p = sub.add_parser(
        "sim",
        help="load-test a central system (any OCPP CSMS) with a simulated charger fleet",
        description="Simulate N chargers against the central system at --url and report what it did: rates, "
        "round-trip latency per action, errors by kind. Exit 0 when the run completed (even with errors), 2 for "
        "a bad option or scenario, 1 when the simulation could not run.",
    )
    p.add_argument(
        "--url",
        required=True,
        help="the central system, ws://host:port/path or wss:// (TLS) (the charger id is appended)",
    )
    p.add_argument("--chargers", type=int, required=True, help="chargers to simulate")
    p.add_argument(
        "--protocol", default="1.6", choices=["1.6", "2.0.1"], help="OCPP version (default %(default)s)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--scenario", choices=list(BUILTINS), default=None, help="a built-in scenario (default steady)"
    )
    which.add_argument("--scenario-file", default=None, help="a TOML scenario file")
    p.add_argument(
        "--duration", type=float, default=None, help="seconds before closing (default: the scenario's)"
    )
    p.add_argument(
        "--connectors", type=int, default=None, help="connectors per charger (default: the scenario's)"
    )
    p.add_argument(
        "--no-backoff",
        action="store_true",
        help="reconnect storm: every charger comes back at once (no random back-off)",
    )
    p.add_argument(
        "--id-prefix", default="SIM", help="charger ids are PREFIX0, PREFIX1, ... (default %(default)s)"
    )
    p.add_argument("--password", default=None, help="Basic auth password of every charger (default: none)")
    tls = p.add_argument_group("TLS (wss:// URLs)")
    tls.add_argument(
        "--ca",
        default=None,
        help="PEM CA certificate(s) the server's certificate must chain to (default: the system's roots)",
    )
    tls.add_argument("--client-cert", default=None, help="PEM client certificate every charger presents")
    tls.add_argument("--client-key", default=None, help="its private key (PEM)")
    tls.add_argument(
        "--client-ca-cert",
        default=None,
        help="PEM CA certificate that issues each charger a client certificate of its own (CN = its id; an EC "
        "P-256 key, valid a day), instead of --client-cert",
    )
    tls.add_argument("--client-ca-key", default=None, help="that CA's private key (PEM)")
    p.add_argument("--id-tag", default="SIMTAG", help="id token for transactions (default %(default)s)")
    p.add_argument(
        "--seed", type=int, default=0, help="picks the chargers of each fraction and the timings (default 0)"
    )
    p.add_argument("--report", default=None, help="write the report as JSON to this file")
    p.add_argument(
        "--processes",
        type=int,
        default=0,
        help="simulator processes (default: as few as the open-file limit allows)",
    )
    p.add_argument("--quiet", action="store_true", help="no live progress line")


def _config(a: argparse.Namespace) -> NodeConfig:
    protocols = tuple(p.strip() for p in a.protocols.split(",") if p.strip())
    bad = [p for p in protocols if p not in ("ocpp1.6", "ocpp2.0.1")]
    if bad or not protocols:
        raise SystemExit(
            f"ampgate: --protocols: unknown subprotocol {bad[0] if bad else '(none)'}; use ocpp2.0.1 and/or ocpp1.6"
        )
    if (a.public_tls_cert is None) != (a.public_tls_key is None):
        raise SystemExit("ampgate: --public-tls-cert and --public-tls-key go together")
    if len(a.tls_cert) != len(a.tls_key):
        raise SystemExit("ampgate: each --tls-cert needs its --tls-key")
    if a.ocpp_tls_port is not None and not a.tls_cert:
        raise SystemExit("ampgate: --ocpp-tls-port needs --tls-cert and --tls-key")
    if a.tls_cert and a.ocpp_tls_port is None:
        raise SystemExit("ampgate: --tls-cert needs --ocpp-tls-port")
    if len(a.tls_cert) > 2:
        raise SystemExit("ampgate: --tls-cert at most twice (one RSA and one ECDSA certificate)")
    if a.tls_client_ca is not None and a.ocpp_tls_port is None:
        raise SystemExit("ampgate: --tls-client-ca needs --ocpp-tls-port")
    if a.no_ocpp_plain and a.ocpp_tls_port is None:
        raise SystemExit("ampgate: --no-ocpp-plain needs --ocpp-tls-port")
    if a.charger_ca_dir is not None and a.charger_ca_signer is not None:
        raise SystemExit("ampgate: --charger-ca-dir and --charger-ca-signer are alternatives: give one")
    if a.charger_ca_signer is not None and not a.charger_ca_signer.strip():
        raise SystemExit("ampgate: --charger-ca-signer is empty")
    if a.public_max_transfers < 1:
        raise SystemExit("ampgate: --public-max-transfers must be at least 1")
    if a.max_upload_bytes < 1:
        raise SystemExit("ampgate: --max-upload-bytes must be at least 1")
    if a.max_firmware_bytes < 1:
        raise SystemExit("ampgate: --max-firmware-bytes must be at least 1")
    if a.public_base_url is not None:
        from ampgate.errors import ValidationError
        from ampgate.public.app import PublicRoutes

        try:
            PublicRoutes(a.public_base_url)
        except ValidationError as e:
            raise SystemExit(f"ampgate: {e.message}") from None
    if a.openadr_vtn is not None:
        if not a.openadr_vtn.startswith(("http://", "https://")):
            raise SystemExit("ampgate: --openadr-vtn must be an http(s) URL")
        if not a.openadr_client_id or not a.openadr_client_secret:
            raise SystemExit("ampgate: --openadr-vtn needs --openadr-client-id and --openadr-client-secret")
        if a.openadr_poll_interval <= 0 or a.openadr_safe_mode_timeout <= 0:
            raise SystemExit(
                "ampgate: --openadr-poll-interval and --openadr-safe-mode-timeout must be positive"
            )
        if a.openadr_fallback_kw is not None and a.openadr_fallback_kw < 0:
            raise SystemExit("ampgate: --openadr-fallback-kw must be at least 0")
    if (a.ocpi_country_code is None) != (a.ocpi_party_id is None):
        raise SystemExit("ampgate: --ocpi-country-code and --ocpi-party-id go together")
    if a.ocpi_country_code is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", a.ocpi_country_code):
            raise SystemExit("ampgate: --ocpi-country-code is two letters (ISO 3166-1 alpha-2)")
        if not re.fullmatch(r"[A-Za-z0-9]{3}", a.ocpi_party_id):
            raise SystemExit("ampgate: --ocpi-party-id is three letters or digits")
    if a.ocpi_base_url is not None:
        from ampgate.errors import ValidationError
        from ampgate.public.app import PublicRoutes

        try:
            PublicRoutes(a.ocpi_base_url)
        except ValidationError:
            raise SystemExit("ampgate: --ocpi-base-url must be an http(s) URL with a host") from None
    if max(a.auth_fail_window_s, a.auth_backoff_s) > AUTH_SECONDS_MAX:
        raise SystemExit(
            f"ampgate: --auth-fail-window-s and --auth-backoff-s are at most {AUTH_SECONDS_MAX:g} s"
        )
    problem = check_bounds(
        a.worker_buffer_budget_mb,
        a.max_pending_calls,
        a.charger_msg_rate,
        a.charger_msg_burst,
        a.max_message + DEFAULT_MAX_WRITE_QUEUE,
    )
    if problem is not None:
        # The problem names the setting first; say it as the flag.
        flag = "--" + problem.split(" ", 1)[0].replace("_", "-")
        raise SystemExit(f"ampgate: {flag}: {problem.split(' ', 1)[1]}")
    if a.ocpi_rate_limit < 1:
        raise SystemExit("ampgate: --ocpi-rate-limit is at least 1 request a second")
    if a.ocpi_name is not None and not 1 <= len(a.ocpi_name) <= 100:
        raise SystemExit("ampgate: --ocpi-name is 1 to 100 characters")
    if not 0 < a.ocpi_authorize_timeout < OCPI_AUTHORIZE_TIMEOUT_MAX_S:
        raise SystemExit(
            f"ampgate: --ocpi-authorize-timeout is more than 0 and less than {OCPI_AUTHORIZE_TIMEOUT_MAX_S:g} s"
        )
    return NodeConfig(
        ocpp_host=a.ocpp_host,
        ocpp_port=a.ocpp_port,
        ocpp_path=a.ocpp_path,
        ocpp_plain=not a.no_ocpp_plain,
        ocpp_tls_port=a.ocpp_tls_port,
        tls_certs=tuple(zip(a.tls_cert, a.tls_key, strict=True)),
        tls_client_ca=a.tls_client_ca,
        api_host=a.api_host,
        api_port=a.api_port,
        public_host=a.public_host,
        public_port=a.public_port,
        public_base_url=a.public_base_url,
        public_tls_cert=a.public_tls_cert,
        public_tls_key=a.public_tls_key,
        public_max_transfers=a.public_max_transfers,
        db_path=a.db,
        store_sync=a.store_sync,
        store_queue_max=a.store_queue_max,
        upload_dir=a.upload_dir,
        max_upload_bytes=a.max_upload_bytes,
        firmware_dir=a.firmware_dir,
        max_firmware_bytes=a.max_firmware_bytes,
        workers=a.workers,
        max_chargers=a.max_chargers,
        unknown_chargers=a.unknown_chargers,
        protocols=protocols,
        no_subprotocol=a.no_subprotocol,
        heartbeat_interval=a.heartbeat_interval,
        ping_interval=a.ping_interval,
        ping_timeout=a.ping_timeout,
        stale_grace=a.stale_grace,
        flap_count=a.flap_count,
        flap_window=a.flap_window,
        flap_clear=a.flap_clear,
        history_days=a.history_days,
        events_days=a.events_days,
        offline_alert=a.offline_alert,
        spike_fraction=a.spike_fraction,
        spike_min=a.spike_min,
        spike_window=a.spike_window,
        max_message=a.max_message,
        admit_rate=a.admit_rate,
        admit_burst=a.admit_burst,
        admit_handshakes=a.admit_handshakes,
        admit_retry_max=a.admit_retry_max,
        unknown_ids_per_minute=a.unknown_ids_per_minute,
        auth_fail_limit=a.auth_fail_limit,
        auth_fail_window_s=a.auth_fail_window_s,
        auth_backoff_s=a.auth_backoff_s,
        worker_max_connections=a.worker_max_connections,
        worker_heartbeat_s=a.worker_heartbeat_s,
        worker_buffer_budget_mb=a.worker_buffer_budget_mb,
        max_pending_calls=a.max_pending_calls,
        charger_msg_rate=a.charger_msg_rate,
        charger_msg_burst=a.charger_msg_burst,
        ready_file=a.ready_file,
        listen_mode=a.listen_mode,
        call_timeout=a.call_timeout,
        report_timeout=a.report_timeout,
        unknown_boot=a.unknown_boot,
        boot_retry_interval=a.boot_retry_interval,
        boot_spread_threshold=a.boot_spread_threshold,
        boot_spread_window=a.boot_spread_window,
        openadr_vtn=a.openadr_vtn,
        openadr_client_id=a.openadr_client_id,
        openadr_client_secret=a.openadr_client_secret,
        openadr_token_url=a.openadr_token_url,
        openadr_ven_name=a.openadr_ven_name,
        openadr_poll_interval=a.openadr_poll_interval,
        openadr_safe_mode_timeout=a.openadr_safe_mode_timeout,
        openadr_fallback_kw=a.openadr_fallback_kw,
        ocpi_country_code=a.ocpi_country_code.upper() if a.ocpi_country_code else None,
        ocpi_party_id=a.ocpi_party_id.upper() if a.ocpi_party_id else None,
        ocpi_base_url=a.ocpi_base_url,
        ocpi_name=a.ocpi_name,
        ocpi_authorize_timeout=a.ocpi_authorize_timeout,
        ocpi_rate_limit=a.ocpi_rate_limit,
        ocpi_session_update_s=a.ocpi_session_update_s,
        ocpi_cdr_retry_s=a.ocpi_cdr_retry_s,
        load_tick=a.load_tick,
        load_min_a=a.load_min_a,
        load_default_a=a.load_default_a,
        load_profile_validity=a.load_profile_validity,
        load_min_interval=a.load_min_interval,
        load_offline_assume=a.load_offline_assume,
        load_hysteresis_a=a.load_hysteresis_a,
        load_hysteresis_pct=a.load_hysteresis_pct,
        load_min_hold=a.load_min_hold,
        cost_update_interval=a.cost_update_interval,
        cdr_max_parking_s=a.cdr_max_parking_s,
        charger_ca_dir=a.charger_ca_dir,
        charger_ca_signer=a.charger_ca_signer,
        charger_ca_signer_timeout=a.charger_ca_signer_timeout,
        charger_ca_key_type=a.charger_ca_key_type,
        charger_cert_days=a.charger_cert_days,
        charger_cert_organization=a.charger_cert_organization,
        charger_cert_warn_days=a.charger_cert_warn_days,
        charger_cert_check_interval=a.charger_cert_check_interval,
        charger_cert_auto_renew=a.charger_cert_auto_renew,
    )


def _banner(node: object) -> str:
    from ampgate.node import Node

    assert isinstance(node, Node)
    c = node.config
    host = "localhost" if c.ocpp_host in ("0.0.0.0", "::") else c.ocpp_host
    pids = ", ".join(str(w.pid) for w in node.gateway.workers.values())
    path = f"{c.ocpp_path.rstrip('/')}/{{chargePointId}}"
    urls = []
    if c.ocpp_plain:
        urls.append(f"ws://{host}:{node.gateway.ocpp_port}{path}")
    if node.gateway.tls_port is not None:
        profiles = "2 and 3" if c.tls_client_ca is not None else "2"
        urls.append(f"wss://{host}:{node.gateway.tls_port}{path} (security profile {profiles})")
    lines = [
        f"ampgate {node.health.report()['version']}: central system ready",
        f"  chargers connect to   {'  and  '.join(urls)}"
        f"   ({', '.join(c.protocols)}; unknown chargers: {c.unknown_chargers})",
        f"  HTTP API              http://{c.api_host}:{node.api_port}/api/v1   (OpenAPI: /api/v1/schema)",
        f"  public surface        {c.public_host}:{node.public_port}{' (TLS)' if c.public_tls else ''}, reached at "
        f"{node.public_routes.base_url if node.public_routes else '?'}",
        f"  gateway workers       {len(node.gateway.workers)} (pids {pids}), up to {connections_per_worker()} connections each",
        f"  database              {c.db_path}   (fsync: {c.store_sync}, queue max {c.store_queue_max})",
        f"  uploads               {c.uploads_path}   (files up to {c.max_upload_bytes} bytes)",
        f"  firmware images       {c.firmware_path}   (files up to {c.max_firmware_bytes} bytes)",
    ]
    if c.charger_ca_certificate_path is not None:
        lines.append(f"  charger CA            {c.charger_ca_certificate_path}")
    elif c.charger_ca_signer is not None:
        lines.append(f"  charger CA            signer command {c.charger_ca_signer}")
    if node.openadr is not None:
        lines.append(f"  OpenADR VEN           {node.openadr.settings.ven_name} of {c.openadr_vtn}")
    if node.roaming is not None:
        ident = node.roaming.identity
        lines.append(f"  OCPI 2.2.1 CPO        {ident.country_code}*{ident.party_id} at {ident.versions_url}")
    if node.first_admin_token:
        lines.append(f"  admin API token       {node.first_admin_token}   (shown once: keep it)")
    lines.append("  Ctrl-C stops (chargers get close 1001, the store is flushed)")
    return "\n".join(lines)


async def _serve(cfg: NodeConfig) -> None:
    from ampgate.node import Node

    try:
        node = Node(cfg)
    except ValueError as e:
        # A setting the node cannot start with that only shows on disk (the charger CA's files).
        if str(e).startswith("charger CA"):
            raise SystemExit(f"ampgate: {e}") from None
        raise
    # The signals stay ours until the node has finished, flush included: a second Ctrl-C or SIGTERM during the
    # shutdown is noted and changes nothing. Were the receiver closed at the first signal, the second would get
    # the default action (SIGTERM ends the process, SIGINT raises KeyboardInterrupt) in the middle of the
    # store's flush, losing the writes still queued. The receiver restores the handlers it found when it closes:
    # ignoring, so that a signal while the process exits after a finished flush does not turn exit 0 into a death
    # by signal (interpreter teardown takes a moment).
    # SIGHUP reloads the TLS files (a certificate renewed in place), without dropping a connection.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def run(*, task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    await node.run(task_status=task_status)
                finally:
                    nursery.cancel_scope.cancel()  # the node is done: stop waiting for signals

            await nursery.start(run)
            print(_banner(node), flush=True)
            node.write_ready_file()
            async for sig in signals:
                if sig == signal.SIGHUP:
                    try:
                        node.gateway.reload_tls()
                        print("ampgate: TLS certificate and key reloaded", flush=True)
                    except ValueError as e:
                        print(f"ampgate: TLS reload refused, keeping the files in use: {e}", flush=True)
                    continue
                if node.stopping:
                    print("ampgate: already shutting down; finishing the flush", flush=True)
                    continue
                print("ampgate: shutting down", flush=True)
                node.request_stop()


def parse_duration(text: str) -> timedelta:
    """`--expires-in`: a number of seconds, or a number with a unit s, m, h or d (`90d`, `12h`). Raises
    argparse.ArgumentTypeError for anything else."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 30m, 12h or 90d") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("a duration must be positive")
    return timedelta(seconds=value * units[unit])


def _token_line(row: Any, now: str) -> str:
    from ampgate.api.tokens import token_state

    return (
        f"{row.id:>6}  {row.role:<8}  {token_state(row, now):<7}  created {row.created_at}  "
        f"expires {row.expires_at or '-':<24}  last used {row.last_used_at or '-':<24}  {row.label or ''}"
    )


def _token(a: argparse.Namespace) -> int:
    from ampgate.clock import iso_utc
    from ampgate.errors import AmpgateError
    from ampgate.store import ApiTokenRepository, Store

    store = Store(a.db)
    try:
        tokens = ApiTokenRepository(store)
        if a.token_command == "list":
            now = iso_utc(store.now())
            for row in tokens.listing():
                print(_token_line(row, now))
            return 0
        if a.token_command == "revoke":
            row = tokens.revoke_now(a.id)
            print(_token_line(row, iso_utc(store.now())))
            return 0
        expires_at = None if a.expires_in is None else store.now() + a.expires_in
        token = tokens.create(a.role, label=a.label, expires_at=expires_at)
    except AmpgateError as e:
        print(f"ampgate: {e.message}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(token)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ampgate` command."""
    parser = argparse.ArgumentParser(prog="ampgate", description="ampgate: OCPP central system and gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    tok = sub.add_parser("token", help="manage HTTP API tokens")
    tsub = tok.add_subparsers(dest="token_command", required=True)
    tc = tsub.add_parser("create", help="create a token and print it (works while a node runs)")
    tc.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    tc.add_argument("--db", default=NodeConfig().db_path)
    tc.add_argument("--label", default=None)
    tc.add_argument(
        "--expires-in",
        type=parse_duration,
        default=None,
        help="refuse the token after this long: seconds, or with a unit (30m, 12h, 90d); default never",
    )
    tl = tsub.add_parser("list", help="list tokens: id, role, state, times, label (never the secret)")
    tl.add_argument("--db", default=NodeConfig().db_path)
    tr = tsub.add_parser("revoke", help="revoke a token by id: refused from its next request")
    tr.add_argument("id", type=int)
    tr.add_argument("--db", default=NodeConfig().db_path)
    _sim_parser(sub)
    from ampgate.campaigns import status_view

    status_view.add_parser(sub)
    a = parser.parse_args(argv)
    if a.command == "serve":
        logging.basicConfig(
            level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        cfg = _config(a)
        if cfg.workers == 0:
            cfg = NodeConfig(
                **{
                    **{f: getattr(cfg, f) for f in cfg.__struct_fields__},
                    "workers": default_workers(cfg.max_chargers),
                }
            )
        failed: list[BaseException] = []
        try:
            trio.run(_serve, cfg)
            # trio.run put back Python's own SIGINT handler: a Ctrl-C now would be a KeyboardInterrupt traceback
            # after a clean shutdown.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except* OSError as group:
            failed.extend(group.exceptions)
        for e in failed:
            print(f"ampgate: cannot start: {e}", file=sys.stderr)
        return 1 if failed else 0
    if a.command == "sim":
        from ampgate.sim.command import run_command

        return run_command(a)
    if a.command == "firmware":
        return status_view.run_status(a)
    return _token(a)


if __name__ == "__main__":
    sys.exit(main())
