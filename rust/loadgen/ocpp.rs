//! The few OCPP-J messages a load generator sends and the little it needs to read from replies, without a
//! JSON parser: the reply's message type and unique id are at fixed places in `[type,"id",...]`.

use std::fmt::Write;

pub use crate::client::Protocol;

/// Unique id of every BootNotification: one per connection, so it needs no counter.
pub const BOOT_ID: &str = "boot";

pub fn boot_call(out: &mut String, protocol: Protocol, vendor: &str, model: &str) {
    out.clear();
    let _ = match protocol {
        Protocol::Ocpp16 => write!(
            out,
            r#"[2,"{BOOT_ID}","BootNotification",{{"chargePointVendor":"{vendor}","chargePointModel":"{model}"}}]"#
        ),
        Protocol::Ocpp201 => write!(
            out,
            r#"[2,"{BOOT_ID}","BootNotification",{{"reason":"PowerUp","chargingStation":{{"model":"{model}","vendorName":"{vendor}"}}}}]"#
        ),
    };
}

/// A Heartbeat CALL whose unique id carries its send time, so a reply alone gives the round trip and no
/// per-message state is kept: `h<send µs>-<seq>` (the sequence keeps ids unique even within one µs).
pub fn heartbeat_call(out: &mut String, sent_us: u64, seq: u64) {
    out.clear();
    let _ = write!(out, r#"[2,"h{sent_us}-{seq}","Heartbeat",{{}}]"#);
}

/// The send time encoded in a heartbeat's unique id; `None` for any other id.
pub fn heartbeat_sent_us(unique_id: &str) -> Option<u64> {
    let rest = unique_id.strip_prefix('h')?;
    let (us, seq) = rest.split_once('-')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    us.parse().ok()
}

/// What a message from the server is, read from its first two elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// `[2,"id","Action",{..}]`: the server calls us.
    Call(&'a str),
    /// `[3,"id",{..}]`.
    Result(&'a str),
    /// `[4,"id","code","description",{..}]`.
    Error(&'a str),
    /// Not an OCPP-J array we can read.
    Other,
}

pub fn classify(text: &str) -> Incoming<'_> {
    fn parts(text: &str) -> Option<(u8, &str)> {
        let rest = text.trim_start().strip_prefix('[')?.trim_start();
        let kind = *rest.as_bytes().first()?;
        let rest = rest[1..].trim_start().strip_prefix(',')?.trim_start();
        let rest = rest.strip_prefix('"')?;
        let end = rest.find('"')?;
        Some((kind, &rest[..end]))
    }
    match parts(text) {
        Some((b'2', id)) => Incoming::Call(id),
        Some((b'3', id)) => Incoming::Result(id),
        Some((b'4', id)) => Incoming::Error(id),
        _ => Incoming::Other,
    }
}

/// Whether a BootNotification result accepted us (both versions: `"status":"Accepted"`).
pub fn boot_accepted(text: &str) -> bool {
    text.contains(r#""status":"Accepted""#) || text.contains(r#""status": "Accepted""#)
}

/// Our answer to a CALL from the server: the load generator implements no server-initiated action.
pub fn not_implemented(out: &mut String, unique_id: &str) {
    out.clear();
    let _ = write!(
        out,
        r#"[4,"{unique_id}","NotImplemented","the load generator answers no calls",{{}}]"#
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_ids_carry_their_send_time() {
        let mut s = String::new();
        heartbeat_call(&mut s, 1_234_567, 42);
        assert_eq!(s, r#"[2,"h1234567-42","Heartbeat",{}]"#);
        let Incoming::Call(id) = classify(&s) else {
            panic!("a CALL")
        };
        assert_eq!(heartbeat_sent_us(id), Some(1_234_567));
        assert_eq!(heartbeat_sent_us(BOOT_ID), None);
        assert_eq!(heartbeat_sent_us("h12-"), None);
        assert_eq!(heartbeat_sent_us("hx-1"), None);
    }

    #[test]
    fn replies_are_classified() {
        assert_eq!(
            classify(r#"[3,"h1-2",{"currentTime":"2026-01-01T00:00:00Z"}]"#),
            Incoming::Result("h1-2")
        );
        assert_eq!(
            classify(r#" [ 4 , "boot","FormationViolation","",{}]"#),
            Incoming::Error("boot")
        );
        assert_eq!(classify(r#"[2,"x","Reset",{}]"#), Incoming::Call("x"));
        assert_eq!(classify("hello"), Incoming::Other);
        assert!(boot_accepted(
            r#"[3,"boot",{"status":"Accepted","currentTime":"x","interval":300}]"#
        ));
        assert!(!boot_accepted(r#"[3,"boot",{"status":"Pending"}]"#));
    }

    #[test]
    fn boot_payloads_follow_the_version() {
        let mut s = String::new();
        boot_call(&mut s, Protocol::Ocpp16, "V", "M");
        assert_eq!(
            s,
            r#"[2,"boot","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#
        );
        boot_call(&mut s, Protocol::Ocpp201, "V", "M");
        assert_eq!(
            s,
            r#"[2,"boot","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}]"#
        );
        assert_eq!(Protocol::parse("ocpp2.0.1"), Some(Protocol::Ocpp201));
        assert_eq!(Protocol::parse("ocpp9"), None);
    }
}
