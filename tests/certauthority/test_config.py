"""The charger CA's settings from `ampgate serve`: off by default, `--charger-ca-dir` with or without a
directory, the signer command as the alternative (never both), and the CA certificate's path for TLS."""

from __future__ import annotations

import argparse
import os

import pytest

from ampgate import cli
from ampgate.config import NodeConfig


def config(*args: str) -> NodeConfig:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli._serve_parser(sub)
    return cli._config(parser.parse_args(["serve", "--db", "/srv/ampgate/ampgate.db", *args]))


def test_off_by_default() -> None:
    c = config()
    assert (c.charger_ca_path, c.charger_ca_certificate_path, c.charger_ca_signer) == (None, None, None)
    assert (c.charger_cert_days, c.charger_cert_warn_days, c.charger_cert_auto_renew) == (365.0, 30.0, True)


def test_the_ca_directory_defaults_beside_the_database() -> None:
    c = config("--charger-ca-dir")
    assert c.charger_ca_path == "/srv/ampgate/charger-ca"
    assert c.charger_ca_certificate_path == os.path.join("/srv/ampgate/charger-ca", "ca.pem")
    c = config(
        "--charger-ca-dir", "/etc/ampgate/ca", "--charger-ca-key-type", "rsa", "--no-charger-cert-auto-renew"
    )
    assert (c.charger_ca_path, c.charger_ca_key_type, c.charger_cert_auto_renew) == (
        "/etc/ampgate/ca",
        "rsa",
        False,
    )


def test_the_signer_is_an_alternative() -> None:
    c = config("--charger-ca-signer", "/usr/local/bin/sign --profile cp", "--charger-cert-days", "0.5")
    assert (c.charger_ca_signer, c.charger_ca_path, c.charger_cert_days) == (
        "/usr/local/bin/sign --profile cp",
        None,
        0.5,
    )
    with pytest.raises(SystemExit, match="alternatives"):
        config("--charger-ca-dir", "--charger-ca-signer", "sign")
    with pytest.raises(SystemExit, match="is empty"):
        config("--charger-ca-signer", " ")
