"""The gateway's TLS files (security profiles 2 and 3), checked in the control plane before the workers load
them: at start, so a missing or mismatched file is one clear error instead of workers that cannot start, and on
reload (SIGHUP), so a bad file changes nothing and the certificate in use stays. The workers load the same
files with OpenSSL (rust/gateway/tls.rs); Python's ssl module is OpenSSL too, so what passes here loads there.
"""

from __future__ import annotations

import ssl

from ampgate.config import NodeConfig


def check_tls_files(cfg: NodeConfig) -> None:
    """Raise ValueError naming the file when a certificate, its key or the client CA does not load (unreadable,
    not PEM, a key that is not the certificate's)."""
    if not cfg.tls_certs:
        raise ValueError("--ocpp-tls-port needs --tls-cert and --tls-key")
    for cert, key in cfg.tls_certs:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"TLS certificate {cert} with key {key}: {e}") from None
    if cfg.tls_client_ca is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_verify_locations(cafile=cfg.tls_client_ca)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"TLS client CA {cfg.tls_client_ca}: {e}") from None
