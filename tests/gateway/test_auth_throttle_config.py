"""The failed-authentication throttle's settings from `ampgate serve --auth-fail-limit --auth-fail-window-s
--auth-backoff-s`: their defaults, that they reach the config, and the bounds a worker accepts."""

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
    assert (c.auth_fail_limit, c.auth_fail_window_s, c.auth_backoff_s) == (10, 60.0, 300.0)


def test_the_options_reach_the_config_and_zero_turns_it_off() -> None:
    c = config("--auth-fail-limit", "3", "--auth-fail-window-s", "10", "--auth-backoff-s", "2.5")
    assert (c.auth_fail_limit, c.auth_fail_window_s, c.auth_backoff_s) == (3, 10.0, 2.5)
    assert config("--auth-fail-limit", "0").auth_fail_limit == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--auth-fail-limit", "-1"),
        ("--auth-fail-window-s", "0"),
        ("--auth-backoff-s", "-5"),
        ("--auth-backoff-s", "2e9"),
    ],
)
def test_out_of_range_is_refused(args: tuple[str, str]) -> None:
    with pytest.raises(SystemExit):
        config(*args)
