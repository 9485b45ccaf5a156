"""Certificates for tests of TLS (security profiles 2 and 3): the node's server CA and certificates, the
operator's client CA and a stranger's CA, made with trustme and written to files, and the `ampgate serve`
arguments that turn the node's wss port on with them."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

__all__ = ["Pki", "tls_args"]


class Pki:
    """A server CA (the node's certificates), the operator's client CA and a stranger's CA, written to files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server_ca = trustme.CA()
        self.client_ca = trustme.CA(organization_name="Operator CA")
        self.other_ca = trustme.CA(organization_name="Someone else")
        self.server_ca.cert_pem.write_to_path(str(root / "server-ca.pem"))
        self.client_ca.cert_pem.write_to_path(str(root / "client-ca.pem"))
        self.rsa = self.server_cert("rsa", trustme.KeyType.RSA)
        self.ecdsa = self.server_cert("ecdsa", trustme.KeyType.ECDSA)

    def server_cert(
        self, name: str, key_type: trustme.KeyType, ca: trustme.CA | None = None
    ) -> tuple[str, str]:
        leaf = (ca or self.server_ca).issue_cert("127.0.0.1", "localhost", key_type=key_type)
        cert, key = self.root / f"{name}.pem", self.root / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(cert), append=True)
        leaf.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)

    def client(self, common_name: str, ca: trustme.CA | None = None) -> ssl.SSLContext:
        """A client context trusting the server CA, presenting a certificate with `common_name` from `ca`
        (default: the operator's client CA)."""
        ctx = self.server_ca_context()
        leaf = (ca or self.client_ca).issue_cert(common_name, common_name=common_name)
        leaf.configure_cert(ctx)
        return ctx

    def client_ca_files(self, ca: trustme.CA | None = None) -> tuple[str, str]:
        """A CA (default: the operator's client CA) as (certificate, private key) files: what issues
        certificates to many chargers (the simulator's --client-ca-cert and --client-ca-key)."""
        ca = ca or self.client_ca
        name = "client-ca" if ca is self.client_ca else f"ca-{id(ca)}"
        cert, key = self.root / f"{name}.pem", self.root / f"{name}.key"
        ca.cert_pem.write_to_path(str(cert))
        ca.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)

    def client_cert_files(self, common_name: str) -> tuple[str, str]:
        """A client certificate of the operator's CA naming `common_name`, as (certificate, key) files."""
        leaf = self.client_ca.issue_cert(common_name, common_name=common_name)
        cert, key = self.root / f"client-{common_name}.pem", self.root / f"client-{common_name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)

    def server_ca_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.server_ca.configure_trust(ctx)
        return ctx


def tls_args(pki: Pki, *more: str, client_ca: bool = False) -> list[str]:
    args = ["--ocpp-tls-port", "0", "--tls-cert", pki.rsa[0], "--tls-key", pki.rsa[1], *more]
    if client_ca:
        args += ["--tls-client-ca", str(pki.root / "client-ca.pem")]
    return args
