"""What a charger's certificate signing request must be before the node signs it: pure checks, no I/O.

OCPP 2.0.1 [A02.FR.06/A03] and the 1.6 Security Whitepaper (section 2, "Certificate Properties"): the
charging station certificate's subject commonName is the charge point id (the identity it connects with) and,
in 2.0.1, organizationName is the CPO's name (the `OrganizationName` variable). A CSR for another id would let
one charger obtain another's identity, so the CN must equal the id the charger is connected as. The key must be
one a TLS 1.2 peer of ours accepts (OCPP-NOTES: ECDSA or RSA suites): RSA of at least 2048 bits, or EC on
P-256 / P-384 (the curves of the 2.0.1 ECDSA suites). The CSR's self-signature proves the charger holds the
private key of the public key it asks us to certify.

Every refusal is a `CsrRefused` with the 2.0.1 reasonCode to answer with and a sentence for `additionalInfo`.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# The smallest RSA key we certify: 2048 bits (NIST SP 800-57 through 2030, and the OCPP security whitepaper's
# minimum for RSA); smaller keys are refused, never padded out by a longer validity.
MIN_RSA_BITS = 2048
# The EC curves we certify: those of the TLS suites OCPP lists (secp256r1, secp384r1).
EC_CURVES = ("secp256r1", "secp384r1")
# 2.0.1 `SignCertificateRequest.certificateType`: the node's CA signs only the charging station's own
# certificate; V2G (ISO 15118) certificates belong to the V2G PKI.
CHARGING_STATION = "ChargingStationCertificate"
V2G = "V2GCertificate"

# The reasonCode of a CSR we refuse (the same code the handler gives a request that holds no PEM CSR).
INVALID_CSR = "InvalidCSR"


class CsrRefused(Exception):
    """A CSR the node will not sign: `reason_code` goes to the charger (2.0.1 statusInfo), `message` too
    (additionalInfo) and into the log."""

    def __init__(self, message: str, reason_code: str = INVALID_CSR) -> None:
        super().__init__(message)
        self.message = message
        self.reason_code = reason_code


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode(errors="replace")


def check_key(key: object) -> None:
    """Raises CsrRefused unless `key` is RSA of MIN_RSA_BITS or more, or EC on one of EC_CURVES."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CsrRefused(f"RSA key of {key.key_size} bits: at least {MIN_RSA_BITS} are required")
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in EC_CURVES:
            raise CsrRefused(f"EC key on {key.curve.name}: the curve must be P-256 or P-384")
        return
    raise CsrRefused(f"{type(key).__name__.removesuffix('PublicKey') or 'this'} key: RSA or EC is required")


def check_csr(
    pem: str, charger_id: str, *, organization: str | None = None
) -> x509.CertificateSigningRequest:
    """The parsed CSR if the node may sign it for `charger_id`: PEM that parses, a valid self-signature, a key
    `check_key` accepts, subject CN equal to `charger_id`, and O equal to `organization` when one is configured
    (any O otherwise). Raises CsrRefused saying which rule failed."""
    try:
        csr = x509.load_pem_x509_csr(pem.strip().encode())
    except ValueError:
        raise CsrRefused("csr is not a PEM certificate signing request that can be parsed") from None
    try:
        valid = csr.is_signature_valid
        key = csr.public_key()
    except (ValueError, TypeError) as e:  # an unsupported or malformed key or algorithm
        raise CsrRefused(f"csr cannot be verified: {e}") from None
    if not valid:
        raise CsrRefused("csr signature does not verify: the request was altered or not signed by its key")
    check_key(key)
    cn = _attribute(csr.subject, NameOID.COMMON_NAME)
    if cn != charger_id:
        raise CsrRefused(f"csr subject CN is {cn!r}: it must be the charge point id {charger_id!r}")
    if organization is not None:
        o = _attribute(csr.subject, NameOID.ORGANIZATION_NAME)
        if o != organization:
            raise CsrRefused(f"csr subject O is {o!r}: it must be the operator's name {organization!r}")
    return csr
