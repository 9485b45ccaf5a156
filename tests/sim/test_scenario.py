"""Scenarios: parsing, ranges and unknown fields named, built-ins, exact trait counts from the seed, the split
over processes and the engine settings each process gets."""

from __future__ import annotations

import pytest

from ampgate.sim.scenario import (
    BUILTINS,
    FLAP,
    FW_FAIL,
    NO_ANSWER,
    SLOW_READ,
    FleetOptions,
    ScenarioError,
    apply_overrides,
    compile,
    load_scenario,
    pick_traits,
    source_ips,
    split_fleet,
)

# The engine's settings keys: one list with the stand-in engine's, held to the real engine's below.
from .fake_engine import KEYS as ENGINE_KEYS

FULL = """
[run]
duration = 120
connect_rate = 500
max_inflight = 64
connectors = 2
heartbeat_interval = 30
call_timeout = 10
check = false
retry_after = "ignore"

[transactions]
per_hour = 12
duration = 90
meter_period = 5
power_w = 7400

[load]
message = "MeterValues"
rate = 1000
start = 20

[reconnect_storm]
at = 60
backoff = 15

[rolling_restart]
period = 10
fraction = 0.05
reboot_delay = 3

[flapping]
fraction = 0.2
period = 6
down = 2

[slow]
fraction = 0.1
mode = "no-answer"
pause = 4

[firmware]
fail_fraction = 0.1
fail_step = "Downloading"
step = 0.5

[evs]
charging_needs = true

[[evs.mix]]
share = 3
phases = "L2"
max_current_a = 32
capacity_kwh = 40
soc_start = 10
taper_soc = 85
departure_after_s = 3600
energy_need_kwh = 25

[[evs.mix]]
share = 1
"""


def write(tmp_path, text: str):
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(ScenarioError) as e:
        load_scenario(path=write(tmp_path, text))
    return str(e.value)


def test_every_section_and_field_is_read(tmp_path):
    s = load_scenario(path=write(tmp_path, FULL))
    assert (s.run.duration, s.run.connect_rate, s.run.max_inflight, s.run.connectors) == (120, 500, 64, 2)
    assert (s.run.heartbeat_interval, s.run.call_timeout, s.run.check) == (30, 10, False)
    assert (s.transactions.per_hour, s.transactions.duration, s.transactions.meter_period) == (12, 90, 5)
    assert s.transactions.power_w == 7400
    assert (s.load.message, s.load.rate, s.load.start) == ("MeterValues", 1000, 20)
    assert (s.reconnect_storm.at, s.reconnect_storm.backoff) == (60, 15)
    assert (s.rolling_restart.period, s.rolling_restart.fraction, s.rolling_restart.reboot_delay) == (
        10,
        0.05,
        3,
    )
    assert (s.flapping.fraction, s.flapping.period, s.flapping.down) == (0.2, 6, 2)
    assert (s.slow.fraction, s.slow.mode, s.slow.pause) == (0.1, "no-answer", 4)
    assert (s.firmware.fail_fraction, s.firmware.fail_step, s.firmware.step) == (0.1, "Downloading", 0.5)
    assert s.evs.charging_needs and len(s.evs.mix) == 2
    ev = s.evs.mix[0]
    assert (ev.share, ev.phases, ev.max_current_a, ev.capacity_kwh) == (3, "L2", 32, 40)
    assert (ev.soc_start, ev.taper_soc, ev.departure_after_s, ev.energy_need_kwh) == (10, 85, 3600, 25)
    assert s.evs.mix[1].phases == "3" and s.evs.mix[1].energy_need_kwh is None


def test_an_empty_file_is_the_defaults(tmp_path):
    s = load_scenario(path=write(tmp_path, ""))
    assert s.run.duration == 60 and s.transactions.per_hour == 0 and s.flapping.fraction == 0
    assert s.run.heartbeat_interval is None and s.reconnect_storm.at is None and s.load.message is None
    assert s.run.check is True and s.load.inflight == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[flapping]\nfraction = 1.5", "flapping.fraction: expected <= 1.0"),
        ("[flapping]\nfraction = -0.1", "flapping.fraction: expected >= 0.0"),
        ("[slow]\nfraction = 2", "slow.fraction: expected <= 1.0"),
        ("[firmware]\nfail_fraction = 1.01", "firmware.fail_fraction: expected <= 1.0"),
        ("[rolling_restart]\nfraction = 3", "rolling_restart.fraction: expected <= 1.0"),
        ("[run]\nduration = 0", "run.duration: expected > 0.0"),
        ("[run]\nconnect_rate = -1", "run.connect_rate: expected >= 0.0"),
        ("[run]\nmax_inflight = -1", "run.max_inflight: expected >= 0"),
        ("[run]\nconnectors = 0", "run.connectors: expected >= 1"),
        ("[run]\nheartbeat_interval = 0", "run.heartbeat_interval: expected > 0.0"),
        ("[run]\ncall_timeout = -5", "run.call_timeout: expected > 0.0"),
        ("[transactions]\nper_hour = -1", "transactions.per_hour: expected >= 0.0"),
        ("[transactions]\nmeter_period = 0", "transactions.meter_period: expected > 0.0"),
        ('[load]\nmessage = "Reset"', "load.message: invalid enum value 'Reset'"),
        ("[load]\nstart = -1", "load.start: expected >= 0.0"),
        ("[load]\ninflight = -1", "load.inflight: expected >= 0"),
        ('[run]\ncheck = "no"', "run.check: expected `bool`, got `str`"),
        ('[run]\nretry_after = "sometimes"', "run.retry_after: invalid enum value 'sometimes'"),
        ("[reconnect_storm]\nbackoff = -1", "reconnect_storm.backoff: expected >= 0.0"),
        ("[rolling_restart]\nreboot_delay = -1", "rolling_restart.reboot_delay: expected >= 0.0"),
        ('[slow]\nmode = "sleepy"', "slow.mode: invalid enum value 'sleepy'"),
        ('[firmware]\nfail_step = "Installed"', "firmware.fail_step: invalid enum value 'Installed'"),
        ("[firmware]\nstep = -1", "firmware.step: expected >= 0.0"),
        ('[flapping]\nfraction = "half"', "flapping.fraction: expected `float`, got `str`"),
        ("[flapping]\nfractoin = 0.5", "flapping.fractoin: unknown field"),
        ("[flaping]\nfraction = 0.5", "flaping: unknown field"),
        ("flapping = 3", "flapping: expected `object`, got `int`"),
        ('[[evs.mix]]\nphases = "L4"', "evs.mix[0].phases: invalid enum value 'L4'"),
        ("[[evs.mix]]\nmax_current_a = 5", "evs.mix[0].max_current_a: expected >= 6.0"),
        ("[[evs.mix]]\ntaper_soc = 100", "evs.mix[0].taper_soc: expected < 100.0"),
    ],
)
def test_a_bad_value_names_its_field(tmp_path, text, expected):
    assert error_of(tmp_path, text) == expected


def test_checks_between_fields_name_the_field(tmp_path):
    assert error_of(tmp_path, "[rolling_restart]\nfraction = 0.1").startswith(
        "rolling_restart.period: expected > 0"
    )
    assert error_of(tmp_path, "[flapping]\nfraction = 0.1\nperiod = 2\ndown = 2").startswith("flapping.down:")
    assert error_of(tmp_path, "[load]\nrate = 5").startswith("load.message:")
    capped_rate = '[load]\nmessage = "Heartbeat"\nrate = 5\ninflight = 3'
    assert error_of(tmp_path, capped_rate).startswith("load.inflight: expected 0 with a load.rate")
    # Checked once --duration can no longer change run.duration.
    storm = load_scenario(path=write(tmp_path, "[reconnect_storm]\nat = 60"))
    with pytest.raises(ScenarioError) as e:
        apply_overrides(storm)
    assert str(e.value).startswith("reconnect_storm.at: expected < run.duration")
    assert apply_overrides(storm, duration=61).run.duration == 61


def test_charging_needs_need_evs(tmp_path):
    assert error_of(tmp_path, "[evs]\ncharging_needs = true") == (
        "evs.charging_needs: expected an [[evs.mix]] to report the needs of"
    )


def test_a_meter_values_load_beside_transactions_needs_a_second_connector(tmp_path):
    both = '[transactions]\nper_hour = 10\n[load]\nmessage = "MeterValues"\n'
    assert error_of(tmp_path, both).startswith("run.connectors: expected >= 2")
    two = load_scenario(path=write(tmp_path, both + "[run]\nconnectors = 2\n"))
    assert two.run.connectors == 2
    # --connectors is named when it is the override that does not fit.
    with pytest.raises(ScenarioError) as e:
        apply_overrides(two, connectors=1)
    assert e.value.field == "--connectors" and "connector 1" in e.value.message
    # The load alone, or a heartbeat load beside transactions, holds no second connector.
    assert load_scenario(path=write(tmp_path, '[load]\nmessage = "MeterValues"')).run.connectors == 1
    heartbeats = '[transactions]\nper_hour = 10\n[load]\nmessage = "Heartbeat"'
    assert load_scenario(path=write(tmp_path, heartbeats)).run.connectors == 1
    # The engine holds to the same rule.
    from ampgate import _native

    opts = FleetOptions(host="127.0.0.1", port=9, chargers=1)
    settings, traits = compile(two, opts)[0]
    with pytest.raises(ValueError, match="connectors"):
        _native.Sim({**settings, "connectors": 1}, traits)


def test_unreadable_files_say_so(tmp_path):
    assert "not valid TOML" in error_of(tmp_path, "[run\nduration = 1")
    with pytest.raises(ScenarioError) as e:
        load_scenario(path=tmp_path / "nope.toml")
    assert e.value.field == "--scenario-file" and "cannot read" in e.value.message


def test_base_starts_from_a_builtin_and_the_file_overrides_field_by_field(tmp_path):
    s = load_scenario(path=write(tmp_path, 'base = "reconnect-storm"\n[reconnect_storm]\nbackoff = 0'))
    assert (s.reconnect_storm.at, s.reconnect_storm.backoff, s.run.duration) == (30, 0, 90)
    assert "base: unknown built-in scenario 'nope'" in error_of(tmp_path, 'base = "nope"')


def test_builtins():
    assert set(BUILTINS) == {
        "steady",
        "boot-storm",
        "reconnect-storm",
        "rolling-restart",
        "flapping",
        "slow-chargers",
    }
    assert load_scenario() == load_scenario("steady")
    steady = load_scenario("steady")
    assert steady.transactions.per_hour > 0 and steady.run.heartbeat_interval is None
    assert load_scenario("boot-storm").run.max_inflight == 0
    storm = load_scenario("reconnect-storm")
    assert storm.reconnect_storm.at is not None and storm.reconnect_storm.backoff > 0
    rolling = load_scenario("rolling-restart").rolling_restart
    assert rolling.period > 0 and rolling.fraction > 0
    assert load_scenario("flapping").flapping.fraction > 0
    assert load_scenario("slow-chargers").slow.fraction > 0
    with pytest.raises(ScenarioError) as e:
        load_scenario("nope")
    assert e.value.field == "--scenario"


def test_overrides():
    s = apply_overrides(load_scenario("reconnect-storm"), duration=120, connectors=3, no_backoff=True)
    assert (s.run.duration, s.run.connectors, s.reconnect_storm.backoff) == (120, 3, 0)
    for kwargs, field in [
        ({"duration": 0}, "--duration"),
        ({"duration": float("nan")}, "--duration"),
        ({"connectors": 0}, "--connectors"),
        ({"duration": 10}, "--duration"),  # shorter than the storm's time
    ]:
        with pytest.raises(ScenarioError) as e:
            apply_overrides(load_scenario("reconnect-storm"), **kwargs)
        assert e.value.field == field
    with pytest.raises(ScenarioError) as e:
        apply_overrides(load_scenario("steady"), no_backoff=True)
    assert e.value.field == "--no-backoff"


def test_a_fraction_is_an_exact_count_chosen_by_the_seed(tmp_path):
    s = load_scenario(path=write(tmp_path, FULL))  # flapping 0.2, slow no-answer 0.1, firmware 0.1
    traits = pick_traits(s, 1000, seed=7)
    assert len(traits) == 1000
    assert sum(1 for t in traits if t & FLAP) == 200
    assert sum(1 for t in traits if t & NO_ANSWER) == 100
    assert sum(1 for t in traits if t & SLOW_READ) == 0
    assert sum(1 for t in traits if t & FW_FAIL) == 100
    assert pick_traits(s, 1000, seed=7) == traits
    assert pick_traits(s, 1000, seed=8) != traits
    # round(fraction * N): 0.2 of 7 is 1.4 -> 1, 0.1 of 7 is 0.7 -> 1
    small = pick_traits(s, 7, seed=1)
    assert sum(1 for t in small if t & FLAP) == 1 and sum(1 for t in small if t & FW_FAIL) == 1


def test_one_fraction_does_not_move_another_traits_chargers(tmp_path):
    a = load_scenario(path=write(tmp_path, "[flapping]\nfraction = 0.1\n[slow]\nfraction = 0.1"))
    b = load_scenario(path=write(tmp_path, "[flapping]\nfraction = 0.3\n[slow]\nfraction = 0.1"))
    slow_a = [i for i, t in enumerate(pick_traits(a, 500, 3)) if t & SLOW_READ]
    slow_b = [i for i, t in enumerate(pick_traits(b, 500, 3)) if t & SLOW_READ]
    assert slow_a == slow_b and len(slow_a) == 50


def test_split_fleet():
    assert split_fleet(10, 3) == [(0, 4), (4, 3), (7, 3)]
    assert split_fleet(2, 5) == [(0, 1), (1, 1)]
    assert split_fleet(100_000, 6)[-1] == (83_334, 16_666)
    assert sum(c for _, c in split_fleet(100_001, 7)) == 100_001


def test_source_addresses_are_loopback_only_distinct_per_process_and_enough():
    assert source_ips("10.0.0.5", 0, 100) == []
    assert source_ips("::1", 0, 100) == []
    p0, p1 = source_ips("127.0.0.1", 0, 100), source_ips("127.0.0.1", 1, 100)
    assert p0[0] == "127.0.1.1" and p1[0] == "127.0.2.1" and not set(p0) & set(p1)
    assert len(p0) >= 16
    assert len(source_ips("127.0.0.1", 0, 1_000_000)) >= 50
    assert source_ips("127.0.0.1", 300, 10)[0] == "127.1.46.1"


def test_compile_gives_each_process_its_share_with_the_engine_keys(tmp_path):
    s = load_scenario(path=write(tmp_path, FULL))
    opts = FleetOptions(host="127.0.0.1", port=9000, chargers=1000, protocol="ocpp2.0.1", seed=5, processes=3)
    jobs = compile(s, opts)
    assert len(jobs) == 3
    everything = pick_traits(s, 1000, 5)
    first = 0
    for k, (settings, traits) in enumerate(jobs):
        assert set(settings) <= ENGINE_KEYS
        assert settings["first_index"] == first and len(traits) == settings["count"]
        assert traits == everything[first : first + settings["count"]]
        assert settings["source_ips"][0] == f"127.0.{k + 1}.1"
        first += settings["count"]
    assert first == 1000
    a = jobs[0][0]
    assert a["count"] == 334 and a["protocol"] == "ocpp2.0.1" and a["seed"] == 5
    assert a["connect_rate"] == pytest.approx(500 * 334 / 1000)
    assert a["load_rate"] == pytest.approx(1000 * 334 / 1000)
    assert a["max_inflight"] == 22  # ceil(64 * 334 / 1000)
    assert (a["tx_per_hour"], a["tx_duration"], a["meter_period"], a["power_w"]) == (12, 90, 5, 7400)
    assert (a["storm_at"], a["storm_backoff"], a["rolling_period"], a["rolling_fraction"]) == (
        60,
        15,
        10,
        0.05,
    )
    assert (a["flap_period"], a["flap_down"], a["slow_pause"], a["reboot_delay"]) == (6, 2, 4, 3)
    assert (a["firmware_step"], a["firmware_fail_step"], a["load_message"], a["load_start"]) == (
        0.5,
        "Downloading",
        "MeterValues",
        20,
    )
    assert (a["duration"], a["heartbeat_interval"], a["call_timeout"], a["connectors"]) == (120, 30, 10, 2)
    assert [tuple(e.values()) for e in a["ev_mix"]] == [
        (3, "L2", 32, 40_000, 10, 85, 3600, 25_000),
        (1, "3", 16, 60_000, 20, 80, None, None),
    ]
    assert a["ev_charging_needs"] is True
    assert (a["check_replies"], a["load_inflight"], a["honour_retry_after"]) == (False, 0, False)
    # 1.6 has no NotifyEVChargingNeeds: the EVs draw the same and report nothing.
    opts16 = FleetOptions(host="127.0.0.1", port=9000, chargers=10, protocol="ocpp1.6")
    assert compile(s, opts16)[0][0]["ev_charging_needs"] is False


def test_a_saturation_cap_is_shared_out_and_never_zero_once_set(tmp_path):
    s = load_scenario(path=write(tmp_path, '[load]\nmessage = "Heartbeat"\ninflight = 100'))
    opts = FleetOptions(host="127.0.0.1", port=9000, chargers=1000, processes=3)
    assert [settings["load_inflight"] for settings, _ in compile(s, opts)] == [34, 34, 34]
    tiny = FleetOptions(host="127.0.0.1", port=9000, chargers=1000, processes=3)
    one = load_scenario(path=write(tmp_path, '[load]\nmessage = "Heartbeat"\ninflight = 1'))
    assert [settings["load_inflight"] for settings, _ in compile(one, tiny)] == [1, 1, 1]


def test_boot_storm_lets_every_charger_of_a_process_connect_at_once():
    opts = FleetOptions(host="127.0.0.1", port=9000, chargers=10, processes=2)
    assert [s["max_inflight"] for s, _ in compile(load_scenario("boot-storm"), opts)] == [5, 5]


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0.1"])
def test_the_engine_takes_every_compiled_setting_and_refuses_others(protocol):
    """The key list above is what the real engine accepts: every built-in compiles to settings it takes."""
    from ampgate import _native

    opts = FleetOptions(host="127.0.0.1", port=9, chargers=10, protocol=protocol, processes=2)
    for name in BUILTINS:
        for settings, traits in compile(load_scenario(name), opts):
            assert set(settings) <= ENGINE_KEYS
            _native.Sim(settings, traits)  # built, not run: nothing connects
    settings, traits = compile(load_scenario("steady"), opts)[0]
    with pytest.raises(ValueError, match="bogus"):
        _native.Sim({**settings, "bogus": 1}, traits)
    with pytest.raises(ValueError, match="id_tag"):
        _native.Sim({**settings, "id_tag": "X" * 37}, traits)


def test_firmware_failures_aimed_at_ids_and_a_pattern(tmp_path):
    s = load_scenario(
        path=write(tmp_path, '[firmware]\nfail_ids = ["CP7", "CP12", "NOPE"]\nfail_pattern = "CP[0-2]"\n')
    )
    traits = pick_traits(s, 20, seed=1, id_prefix="CP")
    assert [i for i, t in enumerate(traits) if t & FW_FAIL] == [0, 1, 2, 7, 12]
    assert not any(t & ~FW_FAIL for t in traits)
    # with a fraction too: the seeded pick and the named ones together
    both = load_scenario(path=write(tmp_path, '[firmware]\nfail_fraction = 0.1\nfail_ids = ["CP19"]\n'))
    failing = [i for i, t in enumerate(pick_traits(both, 100, seed=3, id_prefix="CP")) if t & FW_FAIL]
    assert 19 in failing and len(failing) in (10, 11)


def test_a_bad_fail_pattern_names_the_field(tmp_path):
    with pytest.raises(ScenarioError) as e:
        load_scenario(path=write(tmp_path, '[firmware]\nfail_pattern = "CP[0-"\n'))
    assert e.value.field == "firmware.fail_pattern"
