"""Who signs a charger's certificate: the node's own CA (`LocalAuthority`, a key and certificate in a directory)
or the operator's signer (`SignerCommand`, a program that gets the CSR on stdin and prints the chain).

Both are a `Signer`: `await signer.issue(charger_id, csr, csr_pem, days)` returns the chain as PEM, the
charger's certificate first. Neither checks the CSR (ampgate.certauthority.csr does, before either is asked).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shlex
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ampgate.certauthority.pki import pem_of

log = logging.getLogger(__name__)

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
# The node's own CA key: EC P-256 by default (small certificates, fast signatures, the curve of the first
# OCPP TLS suite), RSA 3072 when asked (NIST's level for keys used past 2030, for chargers without ECDSA).
KeyType = Literal["ec", "rsa"]
RSA_CA_BITS = 3072
# A CA the node creates is valid for 10 years: longer than any charger certificate it signs (their validity is
# cut to the CA's), short enough that its key is replaced within a charger's service life.
CA_DAYS = 3650
# A certificate is valid from a few minutes before it is signed: a charger whose clock is slightly behind
# must not find its new certificate "not yet valid".
BACKDATE = dt.timedelta(minutes=5)
# The operator's signer gets this long per CSR before it is killed and the request fails.
SIGNER_TIMEOUT_S = 30.0
# The most a signer may print: a chain of a few certificates is a few KB; OCPP's certificateChain is at most
# 10,000 characters. Beyond this the output is not a chain.
SIGNER_MAX_OUTPUT = 64 * 1024
# The key file is the node user's alone; it is created with this mode, never chmod-ed after the write.
KEY_FILE_MODE = 0o600


class SigningError(Exception):
    """The signer could not sign: `message` says why (for the log and the certificate.signing_failed event)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Signer(Protocol):
    async def issue(
        self, charger_id: str, csr: x509.CertificateSigningRequest, csr_pem: str, days: float, /
    ) -> str: ...


def _write_private(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _new_key(key_type: KeyType) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_CA_BITS)
    return ec.generate_private_key(ec.SECP256R1())


CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class LocalAuthority:
    """The node's CA: `ca.pem` and `ca.key` in `directory`, made at first start (`open`) or the operator's."""

    def __init__(self, directory: Path, cert: x509.Certificate, key: CaKey, now: Callable[[], dt.datetime]):
        self.directory = directory
        self.certificate = cert
        self._key = key
        self._now = now

    @property
    def certificate_path(self) -> Path:
        """The CA certificate (PEM): what a TLS listener trusts for profile 3 client certificates."""
        return self.directory / CA_CERT_FILE

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        key_type: KeyType = "ec",
        organization: str | None = None,
        now: Callable[[], dt.datetime] | None = None,
    ) -> LocalAuthority:
        """The CA in `directory`: the operator's `ca.pem` + `ca.key` when both are there, else a new one made
        and written there (the key owner-only). Raises ValueError when only one of the two files exists, they
        do not parse, the key is not the certificate's, or the certificate is not a CA; OSError from the files."""
        clock = now or (lambda: dt.datetime.now(dt.UTC))
        d = Path(directory)
        cert_path, key_path = d / CA_CERT_FILE, d / CA_KEY_FILE
        have_cert, have_key = cert_path.exists(), key_path.exists()
        if have_cert != have_key:
            missing = key_path if have_cert else cert_path
            raise ValueError(f"charger CA: {missing} is missing (give both {CA_CERT_FILE} and {CA_KEY_FILE})")
        if not have_cert:
            cls._create(d, key_type, organization, clock())
        return cls._load(d, clock)

    @classmethod
    def _create(cls, d: Path, key_type: KeyType, organization: str | None, now: dt.datetime) -> None:
        d.mkdir(parents=True, exist_ok=True)
        key = _new_key(key_type)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization or "ampgate"),
                x509.NameAttribute(
                    NameOID.COMMON_NAME, f"ampgate charging-station CA {socket.gethostname()}"[:64]
                ),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # The key first: a crash between the two writes leaves a key without a certificate, which the next
        # start refuses by name rather than silently making a second CA.
        _write_private(d / CA_KEY_FILE, key_pem, KEY_FILE_MODE)
        tmp = d / (CA_CERT_FILE + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.write_text(pem_of(cert))
        tmp.replace(d / CA_CERT_FILE)
        log.warning("charger CA: created a new %s CA in %s", key_type.upper(), d)

    @classmethod
    def _load(cls, d: Path, now: Callable[[], dt.datetime]) -> LocalAuthority:
        cert_path, key_path = d / CA_CERT_FILE, d / CA_KEY_FILE
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError:
            raise ValueError(f"charger CA: {cert_path} is not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise ValueError(f"charger CA: {key_path} is not an unencrypted PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"charger CA: {key_path} is not an EC or RSA key")
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            raise ValueError(f"charger CA: {key_path} is not the key of {cert_path}")
        try:
            basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            basic = None
        if basic is None or not basic.ca:
            raise ValueError(f"charger CA: {cert_path} is not a CA certificate (basicConstraints cA)")
        return cls(d, cert, key, now)

    async def issue(
        self, charger_id: str, csr: x509.CertificateSigningRequest, csr_pem: str, days: float
    ) -> str:
        """Sign `csr` for `days` (cut to the CA's own end): the chain, the charger's certificate then the CA's.
        The subject is the CSR's (checked before); the certificate is for TLS client authentication. Raises
        SigningError when the CA has expired."""
        # Signed on the trio thread: about 0.1 ms with a P-256 CA key and a few ms with RSA 3072, less than a
        # thread hand-off would cost to save; a renewal wave is spread over the signing tasks anyway.
        await trio.lowlevel.checkpoint()
        now = self._now()
        ca = self.certificate
        end = min(now + dt.timedelta(days=days), ca.not_valid_after_utc)
        if end <= now:
            raise SigningError(f"the charger CA expired at {ca.not_valid_after_utc.isoformat()}")
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise SigningError(f"unsupported key type {type(key).__name__}")
        ca_key = self._key
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(ca.subject)
            .public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(key, rsa.RSAPublicKey),
                    data_encipherment=False,
                    key_agreement=isinstance(key, ec.EllipticCurvePublicKey),
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return pem_of(cert) + pem_of(ca)


class SignerCommand:
    """The operator's signer: `command` (a shell-style line, run without a shell) gets the CSR PEM on stdin and
    the charger id in AMPGATE_CHARGER_ID, and prints the chain PEM (the charger's certificate first). It runs as
    a child process (trio.run_process: the trio thread only waits) for at most `timeout` seconds."""

    def __init__(self, command: str, *, timeout: float = SIGNER_TIMEOUT_S) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("charger CA signer: the command is empty")
        self.timeout = timeout

    async def issue(
        self, charger_id: str, csr: x509.CertificateSigningRequest, csr_pem: str, days: float
    ) -> str:
        """The signer's output. Raises SigningError when it cannot start, exits non-zero, runs past the
        timeout or prints more than SIGNER_MAX_OUTPUT bytes."""
        env = {**os.environ, "AMPGATE_CHARGER_ID": charger_id, "AMPGATE_CERT_DAYS": f"{days:g}"}
        with trio.move_on_after(self.timeout) as scope:
            try:
                done = await trio.run_process(
                    self.argv,
                    stdin=csr_pem.encode(),
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    env=env,
                )
            except OSError as e:
                raise SigningError(f"signer {self.argv[0]!r} could not be started: {e}") from None
        if scope.cancelled_caught:
            raise SigningError(f"signer {self.argv[0]!r} did not finish within {self.timeout:g} s")
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()[-300:]
            raise SigningError(f"signer {self.argv[0]!r} exited with {done.returncode}: {err}")
        if len(done.stdout) > SIGNER_MAX_OUTPUT:
            raise SigningError(f"signer {self.argv[0]!r} printed more than {SIGNER_MAX_OUTPUT} bytes")
        return done.stdout.decode(errors="replace")
