"""Scenarios: what the simulated fleet does, as a TOML file or a built-in name, and their compilation into the
settings and trait bytes of each simulator process (the engine, `_native.Sim`, takes exactly these).

A scenario file sets any of these sections; every field has a default, unknown fields are errors:

    base = "steady"            # optional: start from a built-in scenario instead of the defaults
    [run]              duration, connect_rate, max_inflight, connectors, heartbeat_interval, call_timeout, check,
                       retry_after ("honour" | "ignore")
    [transactions]     per_hour, duration, meter_period, power_w
    [load]             message ("Heartbeat" | "MeterValues"), rate, start, inflight (MeterValues: see LoadSection)
    [reconnect_storm]  at, backoff
    [rolling_restart]  period, fraction, reboot_delay
    [flapping]         fraction, period, down
    [slow]             fraction, mode ("slow-read" | "no-answer"), pause
    [firmware]         fail_fraction, fail_ids, fail_pattern, fail_step ("Downloading" | "Installing"), step
    [evs]              charging_needs, and [[evs.mix]] tables: share, phases ("L1" | "L2" | "L3" | "3"),
                       max_current_a, capacity_kwh, soc_start, taper_soc, departure_after_s, energy_need_kwh

Rates and `max_inflight` are for the whole fleet and are shared out over the processes by their charger
counts. A fraction of the fleet becomes an exact number of chargers, round(fraction * N), picked by the seed:
the same seed picks the same chargers however many processes run them.
"""

from __future__ import annotations

import ipaddress
import math
import random
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from ampgate.errors import ValidationError, msgspec_problem

__all__ = [
    "BUILTINS",
    "FLAP",
    "FW_FAIL",
    "NO_ANSWER",
    "SLOW_READ",
    "FleetOptions",
    "Scenario",
    "ScenarioError",
    "TlsOptions",
    "apply_overrides",
    "compile",
    "load_scenario",
    "pick_traits",
    "source_ips",
    "split_fleet",
]

# Trait bits, one byte per charger (the engine's flags).
FLAP = 1  # its link drops every flapping.period s and stays down flapping.down s
SLOW_READ = 2  # stops reading its socket for slow.pause s after each read
NO_ANSWER = 4  # never answers the central system's CALLs
FW_FAIL = 8  # a firmware update fails at firmware.fail_step

# Source addresses per process for a loopback target. One (source, target) address pair has ~28k ephemeral
# ports, and every link the simulator closes first (a flap, a storm, a restart) holds its port in TIME_WAIT for
# a minute before it is free again; addresses in 127.0.0.0/8 cost nothing, so give each process plenty.
MIN_SOURCE_IPS = 16
# Connections one source address is asked to carry at most (leaves room for the TIME_WAIT ports above).
CONNECTIONS_PER_SOURCE_IP = 20_000

NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]


class ScenarioError(ValidationError):
    """A scenario or a simulator option is invalid; `field` names it (e.g. "flapping.fraction" or "--url")."""

    default_code = "scenario_error"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class RunSection(_Section, frozen=True):
    duration: Positive = 60.0  # seconds from the start of the run to the start of closing
    connect_rate: NonNegative = 0.0  # new connections per second over the fleet; 0 = as max_inflight allows
    max_inflight: Annotated[int, msgspec.Meta(ge=0)] = 1024  # connects+boots at once over the fleet; 0 = all
    connectors: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    heartbeat_interval: Positive | None = None  # None: the interval the central system gives at boot
    call_timeout: Positive = 30.0
    # Validate every message of the central system against the OCPP schemas (invalid_from_csms). false is the
    # bench mode: the run measures the central system, and at 100k chargers the check is what limits the
    # simulator; the report says "checked": false.
    check: bool = True
    # A connection refused HTTP 503 (the central system's admission control) comes back after its Retry-After
    # ("honour"), or after the reconnect back-off as if there were none ("ignore", as some real chargers do).
    retry_after: Literal["honour", "ignore"] = "honour"


class TransactionsSection(_Section, frozen=True):
    per_hour: NonNegative = 0.0  # per charger; 0 = none
    duration: Positive = 60.0
    # Seconds between meter readings; fractions allowed, so a closed loop can read the chargers faster than its
    # tick. Each reading shows the limit of the charging profiles in force when it is taken.
    meter_period: Positive = 10.0
    # The charger's rating: what a transaction may draw at most, over the phases its EV uses.
    power_w: NonNegative = 11_000.0


class LoadSection(_Section, frozen=True):
    """An extra CALL each charger sends for load, one at a time, besides the above.

    MeterValues are sent the way a central system keeps them: in a transaction. Each charger starts one of the
    load's own on connector 1 as soon as it is booted (1.6 StartTransaction with the run's id tag, 2.0.1
    TransactionEvent Started), then each load CALL is a reading in it (1.6 MeterValues with its transactionId,
    2.0.1 TransactionEvent Updated), strictly later than the charger's last and with a register that never
    goes back. The scenario's own transactions use connector 2 meanwhile (so run.connectors must be at least 2
    with both). A reboot stops the load's transaction and a new one starts after the boot; the end of the run
    does not stop it (the central system keeps it open). The report's `load` counts the load CALLs alone."""

    message: Literal["Heartbeat", "MeterValues"] | None = None
    rate: NonNegative = 0.0  # per second over the fleet; 0 = saturation (next one as soon as one is answered)
    start: NonNegative = 0.0  # seconds after the start of the run
    # Saturation only: load CALLs outstanding at once over the fleet, chargers taking turns; 0 = one per booted
    # charger (every charger sends its next as soon as its last is answered).
    inflight: Annotated[int, msgspec.Meta(ge=0)] = 0


class ReconnectStormSection(_Section, frozen=True):
    at: NonNegative | None = None  # every open link drops at this time (no close frame)
    backoff: NonNegative = 0.0  # each charger comes back after a uniform random [0, backoff] s


class RollingRestartSection(_Section, frozen=True):
    period: NonNegative = 0.0  # every period, the next `fraction` of the fleet reboots
    fraction: Fraction = 0.0
    reboot_delay: NonNegative = 1.0  # seconds offline on a reboot (also after Reset and a firmware update)


class FlappingSection(_Section, frozen=True):
    fraction: Fraction = 0.0
    period: Positive = 5.0
    down: NonNegative = 1.0


class SlowSection(_Section, frozen=True):
    fraction: Fraction = 0.0
    mode: Literal["slow-read", "no-answer"] = "slow-read"
    pause: Positive = 2.0  # slow-read: seconds a charger stops reading after each read


class FirmwareSection(_Section, frozen=True):
    """Which chargers fail a firmware update, and where: `fail_fraction` of the fleet picked by the seed, plus
    the chargers named in `fail_ids` and those whose id matches the regular expression `fail_pattern` (whole
    id), so a test can fail exactly a campaign's canary."""

    fail_fraction: Fraction = 0.0
    fail_ids: tuple[str, ...] = ()
    fail_pattern: str | None = None
    fail_step: Literal["Downloading", "Installing"] = "Installing"
    step: NonNegative = 1.0  # seconds per step (Downloading, Downloaded, Installing)


class EvSpec(_Section, frozen=True):
    """One kind of EV in the mix (see rust/sim/ev.rs): it charges on `phases`, up to `max_current_a` and what the
    charger offers, tapering above `taper_soc` until full and pausing below 6 A."""

    share: Positive = 1.0  # relative share of the transactions it charges
    phases: Literal["L1", "L2", "L3", "3"] = "3"
    max_current_a: Annotated[float, msgspec.Meta(ge=6, le=1000)] = 16.0
    capacity_kwh: Positive = 60.0
    soc_start: Annotated[float, msgspec.Meta(ge=0, le=100)] = 20.0
    taper_soc: Annotated[float, msgspec.Meta(ge=0, lt=100)] = 80.0
    departure_after_s: Positive | None = None  # the driver leaves this long after the start
    energy_need_kwh: Positive | None = None  # what the driver wants (default: a full battery)


class EvsSection(_Section, frozen=True):
    """The EVs the scenario's transactions charge, picked by share with the run's seed (none: every transaction
    draws transactions.power_w over three phases)."""

    charging_needs: bool = False  # 2.0.1: each EV reports its needs (NotifyEVChargingNeeds) after the start
    mix: tuple[EvSpec, ...] = ()


class Scenario(_Section, frozen=True):
    """A whole scenario; every section defaults to "off" (a fleet that boots, heartbeats and holds)."""

    base: str | None = None
    run: RunSection = msgspec.field(default_factory=RunSection)
    transactions: TransactionsSection = msgspec.field(default_factory=TransactionsSection)
    load: LoadSection = msgspec.field(default_factory=LoadSection)
    reconnect_storm: ReconnectStormSection = msgspec.field(default_factory=ReconnectStormSection)
    rolling_restart: RollingRestartSection = msgspec.field(default_factory=RollingRestartSection)
    flapping: FlappingSection = msgspec.field(default_factory=FlappingSection)
    slow: SlowSection = msgspec.field(default_factory=SlowSection)
    firmware: FirmwareSection = msgspec.field(default_factory=FirmwareSection)
    evs: EvsSection = msgspec.field(default_factory=EvsSection)


# The built-in scenarios, written as the scenario file that would make them.
BUILTINS: dict[str, dict[str, Any]] = {
    # Heartbeats at the central system's interval, and transactions: a third of the fleet charging at a time.
    "steady": {"transactions": {"per_hour": 20, "duration": 60, "meter_period": 10}},
    # Every charger connects at once (no cap on connects in flight), then the fleet holds.
    "boot-storm": {"run": {"max_inflight": 0}},
    # Every link drops at 30 s; chargers come back after the random back-off OCPP 2.0.1 asks for
    # (RetryBackOffRandomRange); `--no-backoff` or backoff = 0 makes them all come back at once.
    "reconnect-storm": {"run": {"duration": 90}, "reconnect_storm": {"at": 30, "backoff": 30}},
    # Every 5 s the next tenth of the fleet reboots: the whole fleet once in 50 s.
    "rolling-restart": {"rolling_restart": {"period": 5, "fraction": 0.1, "reboot_delay": 2}},
    # A tenth of the fleet loses its link every 5 s for 1 s.
    "flapping": {"flapping": {"fraction": 0.1, "period": 5, "down": 1}},
    # A tenth of the fleet reads its socket with a 2 s pause after every read.
    "slow-chargers": {"slow": {"fraction": 0.1, "mode": "slow-read", "pause": 2}},
}
DEFAULT_SCENARIO = "steady"

# msgspec's messages: "Expected `float` <= 1.0 - at `$.flapping.fraction`", "Object contains unknown field `x`".
_BOUND = re.compile(r"Expected `\w+` ([<>]=? .*)")


def _scenario_error(err: msgspec.ValidationError) -> ScenarioError:
    where, message = msgspec_problem(str(err))
    bound = _BOUND.match(message)
    if bound:
        message = f"expected {bound.group(1)}"
    message = message[:1].lower() + message[1:]
    return ScenarioError(message, field=where or None)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _from_dict(raw: dict[str, Any]) -> Scenario:
    base = raw.get("base")
    if base is not None:
        if base not in BUILTINS:
            raise ScenarioError(
                f"unknown built-in scenario {base!r}; one of {', '.join(BUILTINS)}", field="base"
            )
        raw = _merge(BUILTINS[base], raw)
    try:
        scenario = msgspec.convert(raw, Scenario)
    except msgspec.ValidationError as e:
        raise _scenario_error(e) from None
    check(scenario, with_duration=False)
    return scenario


def load_scenario(name: str | None = None, path: str | Path | None = None) -> Scenario:
    """The built-in scenario `name` (default "steady"), or the TOML scenario file `path`.

    Raises ScenarioError naming the field (e.g. `flapping.fraction: expected <= 1.0`), the unknown name, or the
    file that cannot be read or parsed."""
    if path is not None:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ScenarioError(f"cannot read {path}: {e}", field="--scenario-file") from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ScenarioError(f"{path} is not valid TOML: {e}", field="--scenario-file") from None
        return _from_dict(raw)
    name = name or DEFAULT_SCENARIO
    if name not in BUILTINS:
        raise ScenarioError(f"unknown scenario {name!r}; one of {', '.join(BUILTINS)}", field="--scenario")
    return _from_dict(BUILTINS[name])


def check(s: Scenario, *, with_duration: bool = True) -> None:
    """Checks between fields (each field's own range is in its type). Raises ScenarioError naming the field.
    `with_duration=False` leaves out the checks against run.duration, which `--duration` may still change."""
    if s.rolling_restart.fraction > 0 and s.rolling_restart.period == 0:
        raise ScenarioError(
            "expected > 0 when rolling_restart.fraction is set", field="rolling_restart.period"
        )
    if s.flapping.fraction > 0 and s.flapping.down >= s.flapping.period:
        raise ScenarioError(
            f"expected < flapping.period ({s.flapping.period:g}): a link must come up between drops",
            field="flapping.down",
        )
    if s.evs.charging_needs and not s.evs.mix:
        raise ScenarioError("expected an [[evs.mix]] to report the needs of", field="evs.charging_needs")
    if s.firmware.fail_pattern is not None:
        try:
            re.compile(s.firmware.fail_pattern)
        except re.error as e:
            raise ScenarioError(f"not a regular expression: {e}", field="firmware.fail_pattern") from None
    if s.load.message is None and s.load.rate > 0:
        raise ScenarioError("load.rate is set but no load.message to send", field="load.message")
    if s.load.inflight and s.load.rate > 0:
        raise ScenarioError(
            "expected 0 with a load.rate: the cap on CALLs outstanding is for saturation (rate 0)",
            field="load.inflight",
        )
    if s.load.message == "MeterValues" and s.transactions.per_hour > 0 and s.run.connectors < 2:
        raise ScenarioError(
            "expected >= 2 with a MeterValues load and transactions: the load's transaction holds connector 1, "
            "the scenario's transactions use connector 2",
            field="run.connectors",
        )
    if with_duration and s.reconnect_storm.at is not None and s.reconnect_storm.at >= s.run.duration:
        raise ScenarioError(
            f"expected < run.duration ({s.run.duration:g} s): the storm would never happen",
            field="reconnect_storm.at",
        )


def apply_overrides(
    s: Scenario, *, duration: float | None = None, connectors: int | None = None, no_backoff: bool = False
) -> Scenario:
    """The scenario with the command line's overrides applied (`--duration`, `--connectors`, `--no-backoff`).
    Raises ScenarioError naming the option when a value is out of range or does not fit the scenario."""
    run = s.run
    if duration is not None:
        if not (duration > 0 and math.isfinite(duration)):
            raise ScenarioError("expected > 0", field="--duration")
        run = msgspec.structs.replace(run, duration=float(duration))
    if connectors is not None:
        if not 1 <= connectors <= 100:
            raise ScenarioError("expected 1 to 100", field="--connectors")
        run = msgspec.structs.replace(run, connectors=connectors)
    storm = s.reconnect_storm
    if no_backoff:
        if storm.at is None:
            raise ScenarioError("this scenario has no reconnect storm", field="--no-backoff")
        storm = msgspec.structs.replace(storm, backoff=0.0)
    out = msgspec.structs.replace(s, run=run, reconnect_storm=storm)
    try:
        check(out)
    except ScenarioError as e:
        if duration is not None and e.field == "reconnect_storm.at":
            raise ScenarioError(
                f"expected > reconnect_storm.at ({storm.at:g} s)", field="--duration"
            ) from None
        if connectors is not None and e.field == "run.connectors":
            raise ScenarioError(e.message, field="--connectors") from None
        raise
    return out


# -- compiling ------------------------------------------------------------------------------------------


class TlsOptions(msgspec.Struct, frozen=True, kw_only=True):
    """wss://: the server's name (SNI and the certificate check) and the PEM files of the CA it is verified
    against (None: the system's roots) and of the chargers' client certificates: one shared pair, or a CA
    that issues each charger its own (CN = its id)."""

    server_name: str
    ca: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    client_ca_cert: str | None = None
    client_ca_key: str | None = None


class FleetOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Who the fleet is and where it connects: the command line's part of each process's settings."""

    host: str  # an IP address
    port: int
    chargers: int
    path_prefix: str = "/ocpp"
    protocol: Literal["ocpp1.6", "ocpp2.0.1"] = "ocpp1.6"
    id_prefix: str = "SIM"
    password: str | None = None
    id_tag: str = "SIMTAG"
    seed: int = 0
    processes: int = 1
    tls: TlsOptions | None = None


def pick_traits(s: Scenario, chargers: int, seed: int, id_prefix: str = "SIM") -> bytes:
    """One byte of trait bits per charger of the fleet: exactly round(fraction * chargers) chargers per trait,
    chosen by `seed` alone (each trait draws from its own generator, so changing one fraction does not move
    another trait's chargers); the firmware failure also goes to the chargers `firmware.fail_ids` names or
    `firmware.fail_pattern` matches (charger i is `id_prefix` + i, as the engine names it)."""
    traits = bytearray(chargers)
    slow_bit = SLOW_READ if s.slow.mode == "slow-read" else NO_ANSWER
    for name, bit, fraction in (
        ("flapping", FLAP, s.flapping.fraction),
        ("slow", slow_bit, s.slow.fraction),
        ("firmware", FW_FAIL, s.firmware.fail_fraction),
    ):
        k = round(fraction * chargers)
        if k:
            # A str seed is hashed with SHA-512: the same on every run and every Python build.
            for i in random.Random(f"{seed}:{name}").sample(range(chargers), k):
                traits[i] |= bit
    fw = s.firmware
    if fw.fail_ids or fw.fail_pattern is not None:
        named = set(fw.fail_ids)
        pattern = re.compile(fw.fail_pattern) if fw.fail_pattern is not None else None
        for i in range(chargers):
            cid = f"{id_prefix}{i}"
            if cid in named or (pattern is not None and pattern.fullmatch(cid)):
                traits[i] |= FW_FAIL
    return bytes(traits)


def split_fleet(chargers: int, processes: int) -> list[tuple[int, int]]:
    """(first_index, count) per process: contiguous, in order, sizes differing by at most one."""
    processes = max(1, min(processes, chargers))
    base, extra = divmod(chargers, processes)
    out, first = [], 0
    for k in range(processes):
        count = base + (1 if k < extra else 0)
        out.append((first, count))
        first += count
    return out


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def source_ips(host: str, process: int, count: int) -> list[str]:
    """Source addresses for process number `process` (from 0) holding `count` links to `host`: none unless the
    target is IPv4 loopback; then 127.0.(process+1).1.. (127.b.c.x past the 255th process), distinct per
    process, at least MIN_SOURCE_IPS and one per CONNECTIONS_PER_SOURCE_IP links."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return []
    if not (addr.version == 4 and addr.is_loopback):
        return []
    n = min(254, max(MIN_SOURCE_IPS, math.ceil(count / CONNECTIONS_PER_SOURCE_IP)))
    b, c = divmod(process, 255)
    return [f"127.{b}.{c + 1}.{x}" for x in range(1, n + 1)]


def _share(total: float, count: int, chargers: int) -> float:
    return total * count / chargers


def compile(s: Scenario, options: FleetOptions) -> list[tuple[dict[str, Any], bytes]]:
    """The (settings, traits) of each of `options.processes` simulator processes (fewer if there are fewer
    chargers than processes). Settings use exactly the engine's keys; fleet-wide rates and `max_inflight` are
    shared out by charger count; every process gets the run's seed."""
    if options.chargers < 1:
        raise ScenarioError("expected >= 1", field="--chargers")
    check(s)
    traits = pick_traits(s, options.chargers, options.seed, options.id_prefix)
    out = []
    n = options.chargers
    for k, (first, count) in enumerate(split_fleet(n, options.processes)):
        inflight = (
            count if s.run.max_inflight == 0 else max(1, math.ceil(_share(s.run.max_inflight, count, n)))
        )
        # A cap on the load's CALLs outstanding, shared out like max_inflight but never to 0 (that is "no cap").
        load_inflight = s.load.inflight and max(1, math.ceil(_share(s.load.inflight, count, n)))
        settings: dict[str, Any] = {
            "host": options.host,
            "port": options.port,
            "path_prefix": options.path_prefix,
            "id_prefix": options.id_prefix,
            "first_index": first,
            "count": count,
            "fleet_size": n,
            "protocol": options.protocol,
            "password": options.password,
            "id_tag": options.id_tag,
            "source_ips": source_ips(options.host, k, count),
            "seed": options.seed,
            "connectors": s.run.connectors,
            "duration": s.run.duration,
            "connect_rate": _share(s.run.connect_rate, count, n),
            "max_inflight": inflight,
            "heartbeat_interval": s.run.heartbeat_interval,
            "call_timeout": s.run.call_timeout,
            "tx_per_hour": s.transactions.per_hour,
            "tx_duration": s.transactions.duration,
            "meter_period": s.transactions.meter_period,
            "power_w": s.transactions.power_w,
            "load_message": s.load.message,
            "load_rate": _share(s.load.rate, count, n),
            "load_start": s.load.start,
            "load_inflight": load_inflight,
            "check_replies": s.run.check,
            "honour_retry_after": s.run.retry_after == "honour",
            "storm_at": s.reconnect_storm.at,
            "storm_backoff": s.reconnect_storm.backoff,
            "rolling_period": s.rolling_restart.period,
            "rolling_fraction": s.rolling_restart.fraction,
            "reboot_delay": s.rolling_restart.reboot_delay,
            "flap_period": s.flapping.period,
            "flap_down": s.flapping.down,
            "slow_pause": s.slow.pause,
            "firmware_step": s.firmware.step,
            "firmware_fail_step": s.firmware.fail_step,
            "ev_mix": [
                {
                    "weight": e.share,
                    "phases": e.phases,
                    "max_current_a": e.max_current_a,
                    "capacity_wh": e.capacity_kwh * 1000,
                    "soc_start": e.soc_start,
                    "taper_soc": e.taper_soc,
                    "departure_after_s": e.departure_after_s,
                    "energy_need_wh": None if e.energy_need_kwh is None else e.energy_need_kwh * 1000,
                }
                for e in s.evs.mix
            ],
            # NotifyEVChargingNeeds exists in 2.0.1 only: a 1.6 fleet's EVs draw the same and report nothing.
            "ev_charging_needs": s.evs.charging_needs and options.protocol == "ocpp2.0.1",
        }
        if options.tls is not None:
            t = options.tls
            settings |= {
                "tls_server_name": t.server_name,
                "tls_ca": t.ca,
                "tls_client_cert": t.client_cert,
                "tls_client_key": t.client_key,
                "tls_client_ca_cert": t.client_ca_cert,
                "tls_client_ca_key": t.client_ca_key,
            }
        out.append((settings, traits[first : first + count]))
    return out
