"""Certificate facts in OCPP's terms, pure: the CertificateHashData that names a certificate on a charger
(2.0.1 2.6 CertificateHashDataType, 1.6 security the same), fingerprints, serial numbers, PEM chains."""

from __future__ import annotations

import hashlib
from datetime import datetime

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

_HASHES = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}


class HashData(msgspec.Struct, frozen=True, kw_only=True):
    """A certificate's CertificateHashData: the hashes are lower-case hex, the serial as `serial_hex`."""

    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str

    def ocpp(self) -> dict[str, str]:
        """As the payload writes it (`DeleteCertificate.certificateHashData`)."""
        return {
            "hashAlgorithm": self.hash_algorithm,
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        }


def serial_hex(serial: int) -> str:
    """A serial number as OCPP writes it: hexadecimal without "0x" and without leading zeroes (lower case)."""
    return format(serial, "x")


def normal_serial(text: str) -> str:
    """A serial number a charger reported, comparable with `serial_hex` (case and leading zeroes vary)."""
    return text.strip().lower().lstrip("0") or "0"


def _key_bits(key: object) -> bytes:
    """The public key's BIT STRING contents, what OCSP's issuerKeyHash (RFC 6960 4.1.1) and OCPP hash."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    raise ValueError(f"unsupported key type {type(key).__name__}")


def hash_data(
    cert: x509.Certificate, issuer: x509.Certificate | None = None, algorithm: str = "SHA256"
) -> HashData | None:
    """`cert`'s CertificateHashData. The issuer's key is `issuer`'s, or `cert`'s own when it is self-issued (a
    root, what InstallCertificate installs); None when neither is known (the key hash cannot be made)."""
    h = _HASHES[algorithm]
    if issuer is None:
        if cert.issuer != cert.subject:
            return None
        issuer = cert
    try:
        bits = _key_bits(issuer.public_key())
    except ValueError:
        return None
    return HashData(
        hash_algorithm=algorithm,
        issuer_name_hash=h(cert.issuer.public_bytes()).hexdigest(),
        issuer_key_hash=h(bits).hexdigest(),
        serial_number=serial_hex(cert.serial_number),
    )


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def pem_of(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_chain(pem: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order. Raises ValueError when it holds none or one is malformed."""
    return x509.load_pem_x509_certificates(pem.encode())


def not_before(cert: x509.Certificate) -> datetime:
    return cert.not_valid_before_utc


def not_after(cert: x509.Certificate) -> datetime:
    return cert.not_valid_after_utc
