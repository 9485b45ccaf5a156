//! The simulator over wss:// against a tiny blocking TLS CSMS (OpenSSL's acceptor, certificates made here):
//! each charger's own certificate, its session resumed on reconnect, and the server's name checked.

use super::*;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;

use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod, SslSessionCacheMode, SslVerifyMode};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};

use crate::client::tls::TlsSettings;

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A certificate for `cn` signed by `issuer` (self-signed without one), a CA or a server for 127.0.0.1.
fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    match issuer {
        None => {
            b.set_issuer_name(&name).unwrap();
            let ca = BasicConstraints::new().critical().ca().build().unwrap();
            b.append_extension(ca).unwrap();
            b.sign(key, MessageDigest::sha256()).unwrap();
        }
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name()).unwrap();
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .build(&b.x509v3_context(Some(ca), None))
                .unwrap();
            b.append_extension(san).unwrap();
            b.sign(ca_key, MessageDigest::sha256()).unwrap();
        }
    }
    b.build()
}

struct Pki {
    dir: PathBuf,
    server_ca: (X509, PKey<Private>),
    client_ca: (X509, PKey<Private>),
}

impl Pki {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ampgate-sim-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (k1, k2) = (key(), key());
        let pki = Self {
            server_ca: (cert("Server CA", &k1, None), k1),
            client_ca: (cert("Operator CA", &k2, None), k2),
            dir,
        };
        pki.write("server-ca.pem", &pki.server_ca.0.to_pem().unwrap());
        pki.write("client-ca.pem", &pki.client_ca.0.to_pem().unwrap());
        pki.write(
            "client-ca.key",
            &pki.client_ca.1.private_key_to_pem_pkcs8().unwrap(),
        );
        pki
    }

    fn write(&self, name: &str, data: &[u8]) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, data).unwrap();
        p.display().to_string()
    }

    fn path(&self, name: &str) -> Option<String> {
        Some(self.dir.join(name).display().to_string())
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the CSMS saw: each connection's client certificate CN and whether it resumed a session.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A blocking TLS CSMS demanding a client certificate of the operator's CA: accepts the upgrade and answers
/// every CALL (boot Accepted, interval 60).
fn csms(listener: TcpListener, pki: &Pki, seen: Seen) {
    let server_key = key();
    let server = cert(
        "csms",
        &server_key,
        Some((&pki.server_ca.0, &pki.server_ca.1)),
    );
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate(&server).unwrap();
    b.set_private_key(&server_key).unwrap();
    b.cert_store_mut()
        .add_cert(pki.client_ca.0.clone())
        .unwrap();
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    b.set_session_cache_mode(SslSessionCacheMode::SERVER);
    b.set_session_id_context(b"sim-test").unwrap();
    let acceptor = Arc::new(b.build());
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { return };
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            thread::spawn(move || {
                let Ok(mut s) = acceptor.accept(tcp) else {
                    return;
                };
                let cn = s
                    .ssl()
                    .peer_certificate()
                    .and_then(|c| {
                        let e = c.subject_name().entries_by_nid(Nid::COMMONNAME).next()?;
                        String::from_utf8(e.data().as_slice().to_vec()).ok()
                    })
                    .unwrap_or_default();
                seen.lock().unwrap().push((cn, s.ssl().session_reused()));
                let mut buf = vec![0u8; 1 << 16];
                let mut have = 0;
                let req = loop {
                    let k = s.read(&mut buf[have..]).unwrap_or(0);
                    if k == 0 {
                        return;
                    }
                    have += k;
                    if let Some((r, _)) = codec::parse_upgrade_request(&buf[..have]).unwrap() {
                        break r;
                    }
                };
                let mut out = Vec::new();
                codec::response_101(&mut out, &codec::accept_key(&req.key), Some("ocpp1.6"));
                if s.write_all(&out).is_err() {
                    return;
                }
                let mut dec = Decoder::new(Role::Server, 1 << 20);
                loop {
                    let k = s.read(&mut buf).unwrap_or(0);
                    if k == 0 {
                        return;
                    }
                    let mut replies: Vec<String> = Vec::new();
                    let mut closed = false;
                    let _ = dec.feed(&mut buf[..k], &mut |ev| {
                        if let Event::Close(..) = ev {
                            closed = true;
                        }
                        if let Event::Text(t) = ev {
                            let v: Value = serde_json::from_str(t).unwrap();
                            let body = match v[2].as_str().unwrap_or("") {
                                "BootNotification" => {
                                    r#"{"status":"Accepted","currentTime":"2026-01-01T00:00:00Z","interval":60}"#
                                }
                                _ => "{}",
                            };
                            replies.push(format!(r#"[3,"{}",{body}]"#, v[1].as_str().unwrap()));
                        }
                    });
                    for r in replies {
                        out.clear();
                        codec::encode_frame(&mut out, OpCode::Text, r.as_bytes(), true, None);
                        if s.write_all(&out).is_err() {
                            return;
                        }
                    }
                    if closed {
                        out.clear();
                        codec::encode_close(&mut out, codec::CLOSE_NORMAL, "", None);
                        let _ = s.write_all(&out);
                        return;
                    }
                }
            });
        }
    });
}

fn run(sim: &mut Sim) -> Value {
    for _ in 0..100 {
        if sim.run(Duration::from_millis(100)).unwrap() {
            break;
        }
    }
    assert!(sim.stats().done);
    sim.report_json()
}

#[test]
fn each_charger_its_own_certificate_and_its_session_resumed_on_reconnect() {
    let pki = Pki::new("resume");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let seen = Seen::default();
    csms(listener, &pki, seen.clone());
    let mut cfg = SimConfig::new(addr, 2);
    cfg.duration = 2.0;
    cfg.flap_period = 0.6;
    cfg.flap_down = 0.1;
    cfg.tls = Some(TlsSettings {
        server_name: "127.0.0.1".into(),
        ca: pki.path("server-ca.pem"),
        client_ca: Some((
            pki.path("client-ca.pem").unwrap(),
            pki.path("client-ca.key").unwrap(),
        )),
        ..TlsSettings::default()
    });
    let mut sim = Sim::new(cfg, vec![TRAIT_FLAP; 2]).unwrap();
    let r = run(&mut sim);
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");
    assert_eq!(r["ever_booted"], 2, "{r}");
    let (full, resumed) = (
        r["tls"]["full"].as_u64().unwrap(),
        r["tls"]["resumed"].as_u64().unwrap(),
    );
    // The first connect of each is a full handshake; every reconnect after a flap resumes.
    assert_eq!(full, 2, "{r}");
    assert!(resumed >= 2, "{r}");
    assert_eq!(r["tls"]["handshakes"].as_u64(), Some(full + resumed));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, full + resumed);
    // The server saw each charger's own name, the same on a resumed session.
    for (cn, _) in &seen {
        assert!(cn == "SIM0" || cn == "SIM1", "{seen:?}");
    }
    assert_eq!(
        seen.iter().filter(|(_, reused)| *reused).count() as u64,
        resumed
    );
}

#[test]
fn a_server_certificate_for_another_name_is_a_tls_failure() {
    let pki = Pki::new("name");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    csms(listener, &pki, Seen::default());
    let mut cfg = SimConfig::new(addr, 1);
    cfg.duration = 1.0;
    cfg.reconnect_backoff = 0.3;
    // The certificate is for 127.0.0.1; the charger expects "csms.example".
    cfg.tls = Some(TlsSettings {
        server_name: "csms.example".into(),
        ca: pki.path("server-ca.pem"),
        ..TlsSettings::default()
    });
    let mut sim = Sim::new(cfg, vec![0]).unwrap();
    let r = run(&mut sim);
    assert_eq!(r["ever_booted"], 0, "{r}");
    assert!(r["errors"]["tls_failed"].as_u64().unwrap() >= 2, "{r}");
    let details = r["error_details"]["tls_failed"].as_object().unwrap();
    assert!(
        details
            .keys()
            .all(|d| d.starts_with("server certificate: ")),
        "{r}"
    );
    assert_eq!(r["tls"]["handshakes"], 0);
}
