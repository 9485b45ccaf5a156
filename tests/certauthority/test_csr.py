"""The checks a charger's CSR passes before the node signs it (ampgate.certauthority.csr), without I/O: the
signature, the key (RSA >= 2048, EC P-256 / P-384), CN = the charger's id, and O when the operator set one."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ampgate.certauthority import CsrRefused, check_csr
from tests.certauthority.keys import csr_pem, ec_key, tampered


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(lambda: ec_key(ec.SECP256R1()), id="P-256"),
        pytest.param(lambda: ec_key(ec.SECP384R1()), id="P-384"),
        pytest.param(lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), id="RSA-2048"),
    ],
)
def test_a_good_csr_for_the_charger_passes(key) -> None:
    csr = check_csr(csr_pem("CP-1", key(), o="Acme CPO"), "CP-1")
    assert csr.is_signature_valid


def test_the_common_name_must_be_the_chargers_id() -> None:
    with pytest.raises(CsrRefused, match="CN is 'CP-2'") as e:
        check_csr(csr_pem("CP-2"), "CP-1")
    assert e.value.reason_code == "InvalidCSR"
    with pytest.raises(CsrRefused, match="CN is None"):
        check_csr(csr_pem(None), "CP-1")


def test_a_small_rsa_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CsrRefused, match="1024 bits: at least 2048"):
        check_csr(csr_pem("CP-1", small), "CP-1")


@pytest.mark.parametrize(
    ("key", "words"),
    [
        pytest.param(lambda: ec_key(ec.SECP521R1()), "secp521r1", id="P-521"),
        pytest.param(lambda: ec_key(ec.SECP256K1()), "secp256k1", id="secp256k1"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, "RSA or EC is required", id="Ed25519"),
    ],
)
def test_other_curves_and_key_types_are_refused(key, words: str) -> None:
    with pytest.raises(CsrRefused, match=words):
        check_csr(csr_pem("CP-1", key()), "CP-1")


def test_a_bad_signature_is_refused() -> None:
    with pytest.raises(CsrRefused, match="signature does not verify"):
        check_csr(tampered(csr_pem("CP-1")), "CP-1")


@pytest.mark.parametrize(
    "text",
    [
        "not a csr",
        "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
    ],
)
def test_what_does_not_parse_is_refused(text: str) -> None:
    with pytest.raises(CsrRefused, match="that can be parsed"):
        check_csr(text, "CP-1")


def test_the_organization_is_checked_only_when_configured() -> None:
    pem = csr_pem("CP-1", o="Other CPO")
    assert check_csr(pem, "CP-1") is not None
    with pytest.raises(CsrRefused, match="O is 'Other CPO'"):
        check_csr(pem, "CP-1", organization="Acme CPO")
    assert check_csr(csr_pem("CP-1", o="Acme CPO"), "CP-1", organization="Acme CPO") is not None
