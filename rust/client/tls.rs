//! TLS for the simulator's `wss://` connections (OCPP security profiles 2 and 3, client side).
//!
//! One [`ClientTls`] per simulator process holds the OpenSSL client context: the server is verified against
//! the CA file given (else the system's roots), by the URL's host name (SNI and the name check) or, for an IP
//! address, by that address. A connection's `SSL` object is made from it when its TCP connect completes.
//!
//! Client certificates (profile 3) are either one certificate shared by every simulated charger (set in the
//! context), or one per charger issued on the fly by a CA whose key we are given ([`ClientTls::issue`]): an EC
//! P-256 key and a certificate whose subject CN is the charger's id, signed with SHA-256, valid from an hour
//! ago (clock skew) for [`ISSUED_VALIDITY_S`]. The engine issues a charger's certificate at its first connect
//! and keeps it for its reconnects, so a reconnect storm measures handshakes, not key generation. Measured:
//! about 0.2 ms of CPU per charger with an EC CA key (1.3 ms with RSA-2048, whose signature dominates) and
//! about 5 KB of OpenSSL objects kept per charger.
//!
//! Session resumption: the engine keeps each charger's last session and offers it on its next connect
//! ([`ClientTls::start`]); whether the server took it is counted per handshake.

use std::time::{SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    HandshakeError, SslConnector, SslFiletype, SslMethod, SslSessionRef, SslVersion,
};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509NameBuilder, X509Ref, X509VerifyResult, X509};

use super::stream::Stream;
use super::ClientError;

/// How long an issued client certificate is valid: a day past the moment it is issued (runs are shorter).
pub const ISSUED_VALIDITY_S: u32 = 24 * 3600;
/// Its validity starts this long before it is issued, for a central system whose clock is a little behind.
const BACKDATE_S: i64 = 3600;

/// Where a process's TLS settings come from (file paths, PEM).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// The URL's host: sent as SNI (unless an IP address) and checked against the server's certificate.
    pub server_name: String,
    /// CA certificates the server's certificate must chain to; `None`: the system's roots.
    pub ca: Option<String>,
    /// One client certificate (chain) and its key for every charger.
    pub client_cert: Option<(String, String)>,
    /// A CA certificate and its key that issue each charger a certificate of its own (CN = its id).
    pub client_ca: Option<(String, String)>,
}

/// The CA that issues per-charger certificates.
struct Issuer {
    cert: X509,
    key: PKey<Private>,
    group: EcGroup,
}

/// A charger's own client certificate and key.
pub struct Identity {
    cert: X509,
    key: PKey<Private>,
}

impl Identity {
    pub fn certificate(&self) -> &X509Ref {
        &self.cert
    }
}

pub struct ClientTls {
    connector: SslConnector,
    server_name: Box<str>,
    issuer: Option<Issuer>,
}

fn bad(key: &'static str, why: impl std::fmt::Display) -> ClientError {
    ClientError::Config(key, why.to_string())
}

fn read(key: &'static str, path: &str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| bad(key, format!("{path}: {e}")))
}

impl ClientTls {
    pub fn new(s: &TlsSettings) -> Result<Self, ClientError> {
        if s.server_name.is_empty() {
            return Err(bad("tls_server_name", "the URL's host is needed"));
        }
        if s.client_cert.is_some() && s.client_ca.is_some() {
            return Err(bad(
                "tls_client_cert",
                "one shared client certificate or a CA issuing one per charger, not both",
            ));
        }
        let ssl = |key: &'static str| move |e: ErrorStack| bad(key, e);
        let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(ssl("tls"))?;
        // OCPP: TLS 1.2 or later.
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(ssl("tls"))?;
        if let Some(ca) = &s.ca {
            let certs = X509::stack_from_pem(&read("tls_ca", ca)?)
                .map_err(|e| bad("tls_ca", format!("{ca}: {e}")))?;
            if certs.is_empty() {
                return Err(bad("tls_ca", format!("{ca}: no certificate in the file")));
            }
            // Only these CAs, not the system's roots as well.
            let mut store = X509StoreBuilder::new().map_err(ssl("tls_ca"))?;
            for c in certs {
                store.add_cert(c).map_err(ssl("tls_ca"))?;
            }
            b.set_cert_store(store.build());
        }
        if let Some((cert, key)) = &s.client_cert {
            b.set_certificate_chain_file(cert)
                .map_err(|e| bad("tls_client_cert", format!("{cert}: {e}")))?;
            b.set_private_key_file(key, SslFiletype::PEM)
                .map_err(|e| bad("tls_client_key", format!("{key}: {e}")))?;
            b.check_private_key()
                .map_err(|_| bad("tls_client_key", format!("{key} does not match {cert}")))?;
        }
        let issuer = match &s.client_ca {
            None => None,
            Some((cert, key)) => {
                let chain = X509::stack_from_pem(&read("tls_client_ca_cert", cert)?)
                    .map_err(|e| bad("tls_client_ca_cert", format!("{cert}: {e}")))?;
                let Some((ca, rest)) = chain.split_first() else {
                    return Err(bad(
                        "tls_client_ca_cert",
                        format!("{cert}: no certificate in the file"),
                    ));
                };
                let pkey = PKey::private_key_from_pem(&read("tls_client_ca_key", key)?)
                    .map_err(|e| bad("tls_client_ca_key", format!("{key}: {e}")))?;
                let matches = ca.public_key().map(|p| p.public_eq(&pkey)).unwrap_or(false);
                if !matches {
                    return Err(bad(
                        "tls_client_ca_key",
                        format!("{key} does not match {cert}"),
                    ));
                }
                // An intermediate CA: the chargers send it (and what the file has above it) with their own
                // certificate, so the server needs only the root.
                if ca.issued(ca) != X509VerifyResult::OK {
                    b.add_extra_chain_cert(ca.clone())
                        .map_err(ssl("tls_client_ca_cert"))?;
                    for c in rest {
                        b.add_extra_chain_cert(c.clone())
                            .map_err(ssl("tls_client_ca_cert"))?;
                    }
                }
                Some(Issuer {
                    cert: ca.clone(),
                    key: pkey,
                    group: EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ssl("tls"))?,
                })
            }
        };
        Ok(Self {
            connector: b.build(),
            server_name: s.server_name.clone().into_boxed_str(),
            issuer,
        })
    }

    /// Whether each charger needs a certificate of its own ([`ClientTls::issue`]) before it connects.
    pub fn issues_identities(&self) -> bool {
        self.issuer.is_some()
    }

    /// A new key and certificate for charger `id`, signed by the CA given (`None` without one).
    pub fn issue(&self, id: &str) -> Option<Result<Identity, ErrorStack>> {
        let issuer = self.issuer.as_ref()?;
        Some(issue(issuer, id, unix_now()))
    }

    /// Begin the TLS handshake on a connected socket, with the charger's own certificate if it has one and
    /// offering its last session. The socket stays registered with the poll as it was.
    pub fn start(
        &self,
        sock: TcpStream,
        identity: Option<&Identity>,
        session: Option<&SslSessionRef>,
    ) -> Result<Stream, String> {
        let setup = |e: ErrorStack| format!("tls setup: {e}");
        let mut ssl = self
            .connector
            .configure()
            .and_then(|c| c.into_ssl(&self.server_name))
            .map_err(setup)?;
        if let Some(id) = identity {
            ssl.set_certificate(&id.cert).map_err(setup)?;
            ssl.set_private_key(&id.key).map_err(setup)?;
        }
        if let Some(s) = session {
            // SAFETY: the session came from an `SSL` of this same context (this process's connector).
            unsafe { ssl.set_session(s) }.map_err(setup)?;
        }
        Ok(match ssl.connect(sock) {
            Ok(s) => Stream::Tls(s),
            Err(HandshakeError::WouldBlock(mid)) => Stream::Handshaking(Some(Box::new(mid))),
            Err(HandshakeError::Failure(mid)) => {
                return Err(super::stream::failure_reason(mid.error(), mid.ssl()))
            }
            Err(HandshakeError::SetupFailure(e)) => return Err(setup(e)),
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn issue(issuer: &Issuer, id: &str, now: i64) -> Result<Identity, ErrorStack> {
    let key = PKey::from_ec_key(EcKey::generate(&issuer.group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, id)?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "ampgate sim")?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(63, MsbOption::MAYBE_ZERO, false)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(issuer.cert.subject_name())?;
    b.set_pubkey(&key)?;
    let (from, until) = (
        Asn1Time::from_unix(now - BACKDATE_S)?,
        Asn1Time::from_unix(now + i64::from(ISSUED_VALIDITY_S))?,
    );
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_agreement()
            .build()?,
    )?;
    b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
    b.sign(&issuer.key, MessageDigest::sha256())?;
    Ok(Identity {
        cert: b.build(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509StoreContext;

    /// A self-signed EC CA in memory.
    pub(crate) fn test_ca(cn: &str) -> (X509, PKey<Private>) {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        (b.build(), key)
    }

    fn issuer(cn: &str) -> Issuer {
        let (cert, key) = test_ca(cn);
        Issuer {
            cert,
            key,
            group: EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap(),
        }
    }

    fn verifies(ca: &X509, leaf: &X509) -> bool {
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(ca.clone()).unwrap();
        let store = store.build();
        let chain = openssl::stack::Stack::new().unwrap();
        let mut ctx = X509StoreContext::new().unwrap();
        ctx.init(&store, leaf, &chain, |c| c.verify_cert()).unwrap()
    }

    #[test]
    fn an_issued_certificate_names_the_charger_and_chains_to_the_ca() {
        let ca = issuer("Test CA");
        let now = unix_now();
        let id = issue(&ca, "SIM42", now).unwrap();
        let cn = id
            .cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap();
        assert_eq!(cn.data().as_slice(), b"SIM42");
        assert!(verifies(&ca.cert, &id.cert));
        assert!(id.cert.public_key().unwrap().public_eq(&id.key));
        assert_eq!(id.key.id(), openssl::pkey::Id::EC);
        // Valid now, for a day, and not before an hour ago.
        let at = |s: i64| Asn1Time::from_unix(s).unwrap();
        assert!(id.cert.not_before() <= at(now - BACKDATE_S + 1));
        assert!(id.cert.not_before() > at(now - BACKDATE_S - 1));
        assert!(id.cert.not_after() >= at(now + i64::from(ISSUED_VALIDITY_S) - 1));
        // Another CA's certificates do not verify against it; two chargers get different keys and serials.
        let other = issuer("Other CA");
        assert!(!verifies(&other.cert, &id.cert));
        let id2 = issue(&ca, "SIM43", now).unwrap();
        assert!(!id2.cert.public_key().unwrap().public_eq(&id.key));
        assert_ne!(
            id.cert.serial_number().to_bn().unwrap(),
            id2.cert.serial_number().to_bn().unwrap()
        );
    }

    #[test]
    fn settings_are_checked_with_the_file_and_the_reason() {
        let s = TlsSettings {
            server_name: "127.0.0.1".into(),
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsSettings::default()
        };
        let e = ClientTls::new(&s).err().unwrap().to_string();
        assert!(
            e.contains("tls_ca") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let s = TlsSettings {
            server_name: String::new(),
            ..TlsSettings::default()
        };
        assert!(ClientTls::new(&s).is_err());
        let both = TlsSettings {
            server_name: "h".into(),
            client_cert: Some(("a".into(), "b".into())),
            client_ca: Some(("c".into(), "d".into())),
            ..TlsSettings::default()
        };
        assert!(ClientTls::new(&both).is_err());
        // A CA key that is not the CA certificate's.
        let dir = std::env::temp_dir().join(format!("ampgate-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, _) = test_ca("A");
        let (_, other_key) = test_ca("B");
        let (c, k) = (dir.join("ca.pem"), dir.join("other.key"));
        std::fs::write(&c, ca.to_pem().unwrap()).unwrap();
        std::fs::write(&k, other_key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let s = TlsSettings {
            server_name: "h".into(),
            client_ca: Some((c.display().to_string(), k.display().to_string())),
            ..TlsSettings::default()
        };
        let e = ClientTls::new(&s).err().unwrap().to_string();
        assert!(e.contains("does not match"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
