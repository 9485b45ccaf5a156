"""The gateway workers' bounds from `ampgate serve --worker-buffer-budget-mb --max-pending-calls
--charger-msg-rate --charger-msg-burst`: their defaults, that they reach the config, and that a bad value is
refused at start with an error naming the flag (and, built in code, naming the setting)."""

from __future__ import annotations

import argparse

import pytest

from ampgate import cli
from ampgate.config import NodeConfig


def config(*args: str) -> NodeConfig:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli._serve_parser(sub)
    return cli._config(parser.parse_args(["serve", *args]))


def test_the_defaults() -> None:
    c = config()
    assert (c.worker_buffer_budget_mb, c.max_pending_calls, c.charger_msg_rate, c.charger_msg_burst) == (
        512,
        4,
        200.0,
        2000,
    )


def test_the_options_reach_the_config_and_zero_turns_them_off() -> None:
    c = config(
        "--worker-buffer-budget-mb", "64", "--max-pending-calls", "0", "--charger-msg-rate", "2.5",
        "--charger-msg-burst", "7",
    )  # fmt: skip
    assert (c.worker_buffer_budget_mb, c.max_pending_calls, c.charger_msg_rate, c.charger_msg_burst) == (
        64,
        0,
        2.5,
        7,
    )
    c = config("--worker-buffer-budget-mb", "0", "--charger-msg-rate", "0")
    assert (c.worker_buffer_budget_mb, c.charger_msg_rate) == (0, 0.0)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        # Below one connection's own bounds (1 MiB message + 4 MiB write queue by default).
        (("--worker-buffer-budget-mb", "4"), "--worker-buffer-budget-mb: must be 0 or at least 5"),
        (("--max-message", "4194304", "--worker-buffer-budget-mb", "5"), "--worker-buffer-budget-mb"),
        (("--max-pending-calls", "1001"), "--max-pending-calls: must be 0 to 1000"),
        (("--charger-msg-rate", "2e9"), "--charger-msg-rate"),
    ],
)
def test_a_bad_bound_is_refused_naming_its_flag(args: tuple[str, ...], says: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        config(*args)
    assert says in str(e.value), e.value


@pytest.mark.parametrize(
    "args",
    [
        ("--worker-buffer-budget-mb", "-1"),
        ("--max-pending-calls", "-1"),
        ("--charger-msg-rate", "-1"),
        ("--charger-msg-rate", "inf"),
        ("--charger-msg-burst", "0"),
    ],
)
def test_argparse_refuses_what_is_not_a_number_in_range(args: tuple[str, str], capsys) -> None:
    with pytest.raises(SystemExit) as e:
        config(*args)
    assert e.value.code == 2
    assert args[0] in capsys.readouterr().err


def test_a_config_built_in_code_is_checked_too() -> None:
    with pytest.raises(ValueError, match="worker_buffer_budget_mb"):
        NodeConfig(worker_buffer_budget_mb=1)
    with pytest.raises(ValueError, match="charger_msg_burst"):
        NodeConfig(charger_msg_burst=0)
    with pytest.raises(ValueError, match="max_pending_calls"):
        NodeConfig(max_pending_calls=-1)
