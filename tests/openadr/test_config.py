"""`ampgate serve --openadr-…` into the node's settings and the VEN's: no VTN, no VEN; a VTN without credentials
or with a non-HTTP URL is refused at the command line."""

from __future__ import annotations

import argparse
import socket

import pytest

from ampgate import cli
from ampgate.config import NodeConfig
from ampgate.openadr import settings_from


def config(*args: str) -> NodeConfig:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli._serve_parser(sub)
    return cli._config(parser.parse_args(["serve", *args]))


def test_without_a_vtn_no_ven_runs() -> None:
    assert settings_from(config()) is None


def test_the_options_reach_the_ven() -> None:
    cfg = config(
        "--openadr-vtn", "https://vtn.example/openadr3/3.0.1",
        "--openadr-client-id", "id-1",
        "--openadr-client-secret", "s3cret",
        "--openadr-ven-name", "NL-AMP",
        "--openadr-poll-interval", "30",
        "--openadr-safe-mode-timeout", "120",
        "--openadr-fallback-kw", "11",
        "--openadr-token-url", "https://auth.example/token",
    )  # fmt: skip
    s = settings_from(cfg)
    assert s is not None
    assert (s.vtn_url, s.client_id, s.client_secret, s.token_url) == (
        "https://vtn.example/openadr3/3.0.1",
        "id-1",
        "s3cret",
        "https://auth.example/token",
    )
    assert (s.ven.ven_name, s.ven.poll_interval_s, s.ven.safe_mode_timeout_s, s.ven.fallback_kw) == (
        "NL-AMP",
        30.0,
        120.0,
        11.0,
    )


def test_the_ven_name_defaults_to_the_host_name() -> None:
    s = settings_from(
        config("--openadr-vtn", "http://vtn", "--openadr-client-id", "a", "--openadr-client-secret", "b")
    )
    assert s is not None and s.ven.ven_name == socket.gethostname()


@pytest.mark.parametrize(
    "args",
    [
        ["--openadr-vtn", "http://vtn"],
        ["--openadr-vtn", "http://vtn", "--openadr-client-id", "a"],
        ["--openadr-vtn", "vtn.example", "--openadr-client-id", "a", "--openadr-client-secret", "b"],
        [
            "--openadr-vtn",
            "http://vtn",
            "--openadr-client-id",
            "a",
            "--openadr-client-secret",
            "b",
            "--openadr-fallback-kw",
            "-1",
        ],
    ],
)
def test_incomplete_or_bad_options_are_refused(args: list[str]) -> None:
    with pytest.raises(SystemExit):
        config(*args)
