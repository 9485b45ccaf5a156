"""Who signs: the node's own CA (made at first start, or the operator's ca.pem + ca.key) and the operator's
signer command (CSR on stdin, chain on stdout, bounded in time)."""

from __future__ import annotations

import datetime as dt
import os
import stat
import sys
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ampgate.certauthority import LocalAuthority, SignerCommand, SigningError
from ampgate.certauthority.pki import load_chain
from tests.certauthority.keys import csr_pem, write_ca

NOW = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)


def issue(signer, charger_id: str, pem: str, days: float = 365) -> str:
    csr = x509.load_pem_x509_csr(pem.encode())
    return trio.run(signer.issue, charger_id, csr, pem, days)


def test_a_ca_is_made_at_first_start_and_kept(tmp_path: Path) -> None:
    d = tmp_path / "charger-ca"
    ca = LocalAuthority.open(d, organization="Acme CPO", now=lambda: NOW)
    assert ca.certificate_path == d / "ca.pem"
    assert stat.S_IMODE(os.stat(d / "ca.key").st_mode) == 0o600
    cert = ca.certificate
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme CPO"
    # The next start uses the same CA.
    again = LocalAuthority.open(d, now=lambda: NOW)
    assert again.certificate == cert


def test_an_rsa_ca_when_asked(tmp_path: Path) -> None:
    ca = LocalAuthority.open(tmp_path, key_type="rsa", now=lambda: NOW)
    key = ca.certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072


def test_the_ca_signs_a_chain_that_verifies_for_the_charger(tmp_path: Path) -> None:
    ca = LocalAuthority.open(tmp_path, now=lambda: NOW)
    chain = load_chain(issue(ca, "CP-1", csr_pem("CP-1", o="Acme"), days=90))
    leaf, root = chain
    assert root == ca.certificate
    leaf.verify_directly_issued_by(root)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-1"
    assert leaf.not_valid_after_utc == NOW + dt.timedelta(days=90)
    assert leaf.not_valid_before_utc < NOW  # backdated for chargers whose clock is behind
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku


def test_a_certificate_never_outlives_the_ca(tmp_path: Path) -> None:
    ca = LocalAuthority.open(tmp_path, now=lambda: NOW)
    leaf = load_chain(issue(ca, "CP-1", csr_pem("CP-1"), days=100_000))[0]
    assert leaf.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_the_operators_ca_is_used(tmp_path: Path) -> None:
    own = write_ca(tmp_path)
    ca = LocalAuthority.open(tmp_path, now=lambda: NOW)
    assert ca.certificate == own
    load_chain(issue(ca, "CP-1", csr_pem("CP-1")))[0].verify_directly_issued_by(own)


def test_a_half_given_or_wrong_ca_is_refused(tmp_path: Path) -> None:
    write_ca(tmp_path / "half")
    (tmp_path / "half" / "ca.key").unlink()
    with pytest.raises(ValueError, match=r"ca\.key is missing"):
        LocalAuthority.open(tmp_path / "half")
    write_ca(tmp_path / "leaf", ca=False)
    with pytest.raises(ValueError, match="is not a CA certificate"):
        LocalAuthority.open(tmp_path / "leaf")
    write_ca(tmp_path / "a")
    write_ca(tmp_path / "b")
    os.replace(tmp_path / "b" / "ca.key", tmp_path / "a" / "ca.key")
    with pytest.raises(ValueError, match="is not the key of"):
        LocalAuthority.open(tmp_path / "a")


# A signer an operator might write: signs the CSR on stdin with the CA in argv[1] for AMPGATE_CERT_DAYS days.
SIGNER = """
import datetime as dt, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
d = sys.argv[1]
ca = x509.load_pem_x509_certificate(open(d + "/ca.pem", "rb").read())
key = serialization.load_pem_private_key(open(d + "/ca.key", "rb").read(), None)
csr = x509.load_pem_x509_csr(sys.stdin.buffer.read())
assert csr.subject.rfc4514_string() == "CN=" + os.environ["AMPGATE_CHARGER_ID"]
now = dt.datetime.now(dt.UTC)
cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject).public_key(csr.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=float(os.environ["AMPGATE_CERT_DAYS"])))
        .sign(key, hashes.SHA256()))
for c in (cert, ca):
    sys.stdout.buffer.write(c.public_bytes(serialization.Encoding.PEM))
"""


def test_the_signer_command_signs(tmp_path: Path) -> None:
    own = write_ca(tmp_path / "ca")
    script = tmp_path / "signer.py"
    script.write_text(SIGNER)
    signer = SignerCommand(f"{sys.executable} {script} {tmp_path / 'ca'}")
    leaf, root = load_chain(issue(signer, "CP-7", csr_pem("CP-7"), days=10))
    assert root == own
    leaf.verify_directly_issued_by(own)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=10)


@pytest.mark.parametrize(
    ("code", "timeout", "words"),
    [
        ("import sys; sys.stderr.write('HSM offline'); sys.exit(3)", 10.0, "exited with 3: HSM offline"),
        ("import time; time.sleep(30)", 0.5, "did not finish within 0.5 s"),
    ],
)
def test_a_failing_or_slow_signer_is_an_error(tmp_path: Path, code: str, timeout: float, words: str) -> None:
    script = tmp_path / "signer.py"
    script.write_text(code)
    signer = SignerCommand(f"{sys.executable} {script}", timeout=timeout)
    with pytest.raises(SigningError, match=words):
        issue(signer, "CP-1", csr_pem("CP-1"))


def test_a_signer_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="could not be started"):
        issue(SignerCommand(str(tmp_path / "missing")), "CP-1", csr_pem("CP-1"))
