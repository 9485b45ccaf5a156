"""The public listener of a real node: its own port, the health route, no operator API or token there, the
base URL chargers are told, and TLS with a certificate (checked by an independent HTTPS client)."""

from __future__ import annotations

import ssl
import subprocess
import sys

import httpx
import pytest
import trustme


def test_the_public_surface_serves_health_and_nothing_of_the_operator_api(node_factory) -> None:
    node = node_factory("--public-base-url", "https://cs.example.test/amp/")
    assert node.public_port not in (0, node.api_port, node.ocpp_port)
    assert node.public_base_url == "https://cs.example.test/amp"
    public = f"http://127.0.0.1:{node.public_port}"
    r = httpx.get(f"{public}/public/v1/health", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok", "version": "0.1.0"}
    assert r.headers["ratelimit-limit"] == "10"
    admin = {"Authorization": f"Bearer {node.admin_token}"}
    for path in ("/api/v1/chargers", "/api/v1/health", "/api/v1/schema/openapi.json"):
        r = httpx.get(public + path, headers=admin, timeout=10)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    # And the operator API serves none of the public routes.
    with node.api() as api:
        assert api.get(f"http://127.0.0.1:{node.api_port}/public/v1/health").status_code == 404


def test_the_public_surface_over_tls(node_factory, tmp_path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    node = node_factory("--public-tls-cert", str(cert_file), "--public-tls-key", str(key_file))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    r = httpx.get(f"https://127.0.0.1:{node.public_port}/public/v1/health", verify=context, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert node.public_base_url.startswith("https://")
    # Without TLS the listener does not answer HTTP; with an untrusted certificate the client refuses.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{node.public_port}/public/v1/health", timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{node.public_port}/public/v1/health", verify=True, timeout=5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--public-tls-cert", "cert.pem"], "--public-tls-cert and --public-tls-key go together"),
        (
            ["--public-base-url", "ftp://cs.example.test"],
            "--public-base-url must be an http(s) URL with a host",
        ),
        (["--public-max-transfers", "0"], "--public-max-transfers must be at least 1"),
        (["--max-upload-bytes", "0"], "--max-upload-bytes must be at least 1"),
        (["--max-firmware-bytes", "0"], "--max-firmware-bytes must be at least 1"),
    ],
)
def test_bad_public_settings_stop_the_node_with_a_clear_message(
    tmp_path, args: list[str], message: str
) -> None:
    cmd = [sys.executable, "-m", "ampgate.cli", "serve", "--db", str(tmp_path / "x.db"), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr
    assert not (tmp_path / "x.db").exists()  # nothing was started
