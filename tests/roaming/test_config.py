"""The node's OCPI identity from `ampgate serve --ocpi-country-code --ocpi-party-id --ocpi-base-url --ocpi-name`,
and the real-time authorization bound `--ocpi-authorize-timeout`."""

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


def test_without_the_options_no_ocpi_runs() -> None:
    c = config()
    assert c.ocpi_country_code is None and c.ocpi_party_id is None


def test_the_options_reach_the_config_upper_cased() -> None:
    c = config(
        "--ocpi-country-code",
        "nl",
        "--ocpi-party-id",
        "amp",
        "--ocpi-base-url",
        "https://cs.example.com/roaming",
        "--ocpi-name",
        "Amp Charging",
        "--ocpi-authorize-timeout",
        "2.5",
        "--ocpi-rate-limit",
        "7",
    )
    assert (c.ocpi_country_code, c.ocpi_party_id) == ("NL", "AMP")
    assert c.ocpi_authorize_timeout == 2.5 and config().ocpi_authorize_timeout == 5.0
    assert c.ocpi_rate_limit == 7 and config().ocpi_rate_limit == 50
    assert c.ocpi_base_url == "https://cs.example.com/roaming" and c.ocpi_name == "Amp Charging"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--ocpi-country-code", "NL"], "go together"),
        (["--ocpi-party-id", "AMP"], "go together"),
        (["--ocpi-country-code", "NLD", "--ocpi-party-id", "AMP"], "two letters"),
        (["--ocpi-country-code", "NL", "--ocpi-party-id", "AM"], "three letters or digits"),
        (["--ocpi-country-code", "NL", "--ocpi-party-id", "AMP", "--ocpi-base-url", "ftp://x"], "http(s)"),
        (["--ocpi-authorize-timeout", "0"], "less than 30"),
        (["--ocpi-authorize-timeout", "30"], "less than 30"),
        (["--ocpi-rate-limit", "0"], "at least 1"),
    ],
)
def test_incomplete_or_bad_options_are_refused(args: list[str], says: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        config(*args)
    assert says in str(exit_.value)
