//! TLS for OCPP security profiles 2 and 3, terminated in the worker before the WebSocket upgrade.
//!
//! OpenSSL (the `openssl` crate on the system library) rather than rustls: OCPP requires the central system to
//! offer TLS_RSA_WITH_AES_128_GCM_SHA256 and TLS_RSA_WITH_AES_256_GCM_SHA384 (static RSA key exchange),
//! which rustls will never offer, beside the two ECDHE_ECDSA suites. A server certificate of one key type can
//! only serve the suites of that type, so the context takes one RSA and one ECDSA certificate (each optional):
//! with both, all four suites are offered; with one, the two of its kind (and TLS 1.3).
//!
//! Per connection the state is OpenSSL's `SSL` object; `SSL_MODE_RELEASE_BUFFERS` frees its read and write
//! buffers (~34 KB) whenever they are empty, so an idle charger holds the session state only.
//!
//! Client certificates (profile 3): requested, not required, so profile-2 chargers share the port; one that
//! is sent must chain to the operator's CA or the handshake fails. Its subject's common name is then the
//! charger's identity, matched against the id in the URL by the handshake decision (`super::auth`).

use std::path::Path;

use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use openssl::ssl::{
    SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslRef, SslSessionCacheMode,
    SslVerifyMode, SslVersion,
};
use openssl::x509::X509;

/// The four suites OCPP requires (OpenSSL's names), then the ECDHE_RSA ones for RSA-only deployments and
/// browsers' tooling. TLS 1.3's suites are OpenSSL's defaults.
pub const CIPHERS_TLS12: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
AES128-GCM-SHA256:AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384";

/// Where the worker's TLS settings come from (file paths, read again on every reload).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// (certificate chain PEM, private key PEM) pairs: one per key type (RSA, ECDSA).
    pub certs: Vec<(String, String)>,
    /// CA certificates (PEM) that client certificates must chain to; none: no client certificates (profile 3
    /// off).
    pub client_ca: Option<String>,
    /// Session-ticket keys (name, HMAC and AES keys: 80 bytes) the control plane makes at start and gives
    /// every worker, so a charger's session resumes on whichever worker its reconnect lands; None: each
    /// worker's own random keys.
    pub ticket_keys: Option<[u8; TICKET_KEYS_LEN]>,
}

/// OpenSSL's ticket key block: 16 bytes of key name, 32 of HMAC key, 32 of AES key.
pub const TICKET_KEYS_LEN: usize = 80;
/// `SSL_CTRL_SET_TLSEXT_TICKET_KEYS` (ssl.h; a macro, not in openssl-sys).
const SSL_CTRL_SET_TLSEXT_TICKET_KEYS: libc::c_int = 59;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}: {1}")]
    File(String, String),
    #[error("{0}")]
    Config(String),
    #[error("openssl: {0}")]
    Ssl(#[from] ErrorStack),
}

fn read(path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(Path::new(path)).map_err(|e| TlsError::File(path.into(), e.to_string()))
}

/// Build the server context from `files`. Fails (with the file and the reason) on anything unreadable or
/// inconsistent, so a reload with a bad file keeps the context in use.
pub fn context(files: &TlsFiles) -> Result<SslContext, TlsError> {
    if files.certs.is_empty() {
        return Err(TlsError::Config("no server certificate".into()));
    }
    let mut b = SslContextBuilder::new(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_cipher_list(CIPHERS_TLS12)?;
    b.set_options(
        SslOptions::NO_RENEGOTIATION
            | SslOptions::CIPHER_SERVER_PREFERENCE
            | SslOptions::NO_COMPRESSION
            | SslOptions::SINGLE_ECDH_USE,
    );
    b.set_mode(SslMode::RELEASE_BUFFERS);
    // Resumption by ticket only (TLS 1.2 and 1.3, stateless: the keys are shared by the workers). No server
    // session cache: it would keep every session of the last 20,480 handshakes in each worker (~1.5 KB each,
    // more with a client certificate), useless to a reconnect that lands on another worker.
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_session_id_context(b"ampgate-ocpp")?;
    // TLS 1.3: one ticket per full handshake (OpenSSL sends two by default); a charger resumes one session.
    b.set_num_tickets(1)?;
    if let Some(keys) = &files.ticket_keys {
        let mut keys = *keys;
        // SAFETY: the context is valid; OpenSSL copies the 80 bytes during the call.
        let rc = unsafe {
            openssl_sys::SSL_CTX_ctrl(
                b.as_ptr(),
                SSL_CTRL_SET_TLSEXT_TICKET_KEYS,
                TICKET_KEYS_LEN as libc::c_long,
                keys.as_mut_ptr().cast(),
            )
        };
        if rc != 1 {
            return Err(TlsError::Config(
                "OpenSSL refused the session-ticket keys".into(),
            ));
        }
    }
    let mut kinds = Vec::new();
    for (cert, key) in &files.certs {
        let chain = X509::stack_from_pem(&read(cert)?)
            .map_err(|e| TlsError::File(cert.clone(), e.to_string()))?;
        let Some((leaf, rest)) = chain.split_first() else {
            return Err(TlsError::File(
                cert.clone(),
                "no certificate in the file".into(),
            ));
        };
        let pkey = PKey::private_key_from_pem(&read(key)?)
            .map_err(|e| TlsError::File(key.clone(), e.to_string()))?;
        let kind = pkey.id();
        if kinds.contains(&kind) {
            return Err(TlsError::Config(format!(
                "two server certificates with {kind:?} keys: give at most one RSA and one ECDSA"
            )));
        }
        kinds.push(kind);
        b.set_certificate(leaf)?;
        for extra in rest {
            b.add_extra_chain_cert(extra.clone())?;
        }
        b.set_private_key(&pkey)?;
        b.check_private_key()
            .map_err(|_| TlsError::File(key.clone(), format!("does not match {cert}")))?;
        if !matches!(kind, Id::RSA | Id::EC) {
            return Err(TlsError::File(
                key.clone(),
                "an RSA or ECDSA key is needed for OCPP's cipher suites".into(),
            ));
        }
    }
    if let Some(ca) = &files.client_ca {
        let pem = read(ca)?;
        let cas =
            X509::stack_from_pem(&pem).map_err(|e| TlsError::File(ca.clone(), e.to_string()))?;
        if cas.is_empty() {
            return Err(TlsError::File(
                ca.clone(),
                "no certificate in the file".into(),
            ));
        }
        for c in &cas {
            b.cert_store_mut().add_cert(c.clone())?;
            b.add_client_ca(c)?;
        }
        // Asked for, not required: profile-2 chargers connect on the same port without one.
        b.set_verify(SslVerifyMode::PEER);
    } else {
        b.set_verify(SslVerifyMode::NONE);
    }
    Ok(b.build())
}

/// The common name of the client certificate a finished handshake verified, if the client sent one.
pub fn client_common_name(ssl: &SslRef) -> Option<Box<str>> {
    let cert = ssl.peer_certificate()?;
    if ssl.verify_result() != openssl::x509::X509VerifyResult::OK {
        return None; // Not reached: verification failure aborts the handshake; kept as a guard.
    }
    let entry = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next()?;
    // The string's own bytes, compared whole: a name with a NUL in it must not match the id before the NUL
    // (OpenSSL's UTF-8 conversion stops there). A BMPString name is not UTF-8 and matches no id.
    let cn = std::str::from_utf8(entry.data().as_slice()).ok()?;
    Some(cn.into())
}
