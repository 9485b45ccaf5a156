"""`ampgate serve --cost-update-interval`: seconds between running-cost updates, 0 for none."""

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


def test_the_interval_defaults_to_a_minute_and_reaches_the_config() -> None:
    assert config().cost_update_interval == 60.0
    assert config("--cost-update-interval", "15").cost_update_interval == 15.0
    assert config("--cost-update-interval", "0").cost_update_interval == 0.0


@pytest.mark.parametrize("bad", ["-1", "soon", "inf"])
def test_a_bad_interval_is_refused(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        config("--cost-update-interval", bad)
    assert "--cost-update-interval" in capsys.readouterr().err
