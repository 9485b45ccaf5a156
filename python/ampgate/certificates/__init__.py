"""Certificate requests chargers send: SignCertificate (2.0.1 and the 1.6 security extension),
Get15118EVCertificate and GetCertificateStatus (2.0.1, ISO 15118 Plug & Charge)."""

from ampgate.certificates.handlers import (
    CertificateHandlers,
    ChargerCertificateAuthority,
    ContractCertificateProvider,
    OcspResponder,
    Refusal,
)

__all__ = [
    "CertificateHandlers",
    "ChargerCertificateAuthority",
    "ContractCertificateProvider",
    "OcspResponder",
    "Refusal",
]
