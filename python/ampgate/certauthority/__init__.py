"""Charging-station certificates (issue 16, "Certificates"): the node-local certificate authority or the
operator's signer command, the checks a charger's CSR must pass, the certificates issued and those chargers have
installed (two tables), expiry warnings and renewal. See docs/certificates.md."""

from ampgate.certauthority.authority import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    LocalAuthority,
    Signer,
    SignerCommand,
    SigningError,
)
from ampgate.certauthority.csr import CsrRefused, check_csr
from ampgate.certauthority.repository import CertificateRepository
from ampgate.certauthority.service import CertificateView, ChargerCertificates, RenewalResult, Settings

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CertificateRepository",
    "CertificateView",
    "ChargerCertificates",
    "CsrRefused",
    "LocalAuthority",
    "RenewalResult",
    "Settings",
    "Signer",
    "SignerCommand",
    "SigningError",
    "check_csr",
]
