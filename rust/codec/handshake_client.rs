//! The client side of the upgrade handshake, for the load generator and the fleet simulator.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::HandshakeError;
use super::handshake::{accept_key, has_token, push_header, single, MAX_HEAD, MAX_HEADERS};

/// A client key from 16 random bytes (the caller owns randomness; this module does no I/O).
pub fn key_from_nonce(nonce: &[u8; 16]) -> String {
    STANDARD.encode(nonce)
}

/// Append a client's upgrade request for `path` on `host`, offering `protocols` in order, with
/// Basic credentials if given.
pub fn client_request(
    out: &mut Vec<u8>,
    host: &str,
    path: &str,
    key: &str,
    protocols: &[&str],
    basic_auth: Option<(&str, &str)>,
) {
    out.extend_from_slice(format!("GET {path} HTTP/1.1\r\n").as_bytes());
    push_header(out, "Host", host);
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    push_header(out, "Sec-WebSocket-Key", key);
    push_header(out, "Sec-WebSocket-Version", "13");
    if !protocols.is_empty() {
        push_header(out, "Sec-WebSocket-Protocol", &protocols.join(", "));
    }
    if let Some((user, password)) = basic_auth {
        push_header(
            out,
            "Authorization",
            &format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))),
        );
    }
    out.extend_from_slice(b"\r\n");
}

/// The server's answer to [`client_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeResponse {
    /// 101 when the upgrade succeeded (and was checked); any other status is the server's refusal.
    pub status: u16,
    /// The subprotocol the server chose; the caller checks it is one it offered.
    pub protocol: Option<String>,
    /// A refusal's `Retry-After` in seconds (the delay form; the HTTP-date form and garbage are None).
    pub retry_after: Option<u32>,
}

/// Parse the server's response head from the start of `buf`, for the client with `key`.
///
/// `Ok(None)`: incomplete. `Ok(Some((response, consumed)))`: `consumed` is the head's length; after
/// a 101 the bytes that follow are WebSocket frames (a refusal's body is left to the caller, who
/// closes anyway). A 101 must carry `Upgrade: websocket`, `Connection: upgrade`, the right
/// `Sec-WebSocket-Accept` and at most one subprotocol, else `Err` with status 101; an unparseable
/// or over-8-KiB head is `Err` with status 0.
pub fn parse_upgrade_response(
    buf: &[u8],
    key: &str,
) -> Result<Option<(UpgradeResponse, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let consumed = match resp.parse(&buf[..buf.len().min(MAX_HEAD)]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(HandshakeError::new(0, "response header too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HandshakeError::new(0, "malformed HTTP response")),
    };
    let status = resp.code.unwrap_or_default();
    if status != 101 {
        let retry_after = single(resp.headers, "retry-after")
            .ok()
            .flatten()
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok());
        return Ok(Some((
            UpgradeResponse {
                status,
                protocol: None,
                retry_after,
            },
            consumed,
        )));
    }
    let headers = resp.headers;
    if !has_token(headers, "upgrade", "websocket") || !has_token(headers, "connection", "upgrade") {
        return Err(HandshakeError::new(101, "not a websocket upgrade"));
    }
    if single(headers, "sec-websocket-accept") != Ok(Some(accept_key(key).as_bytes())) {
        return Err(HandshakeError::new(101, "bad Sec-WebSocket-Accept"));
    }
    let bad_protocol = HandshakeError::new(101, "bad Sec-WebSocket-Protocol");
    let protocol = match single(headers, "sec-websocket-protocol").map_err(|()| bad_protocol)? {
        None => None,
        Some(p) if p.is_empty() || p.contains(&b',') => return Err(bad_protocol),
        Some(p) => Some(String::from_utf8(p.to_vec()).map_err(|_| bad_protocol)?),
    };
    Ok(Some((
        UpgradeResponse {
            status,
            protocol,
            retry_after: None,
        },
        consumed,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{charger_id_from_path, parse_upgrade_request, response_101, response_error};

    #[test]
    fn client_and_server_agree() {
        let mut req = Vec::new();
        let key = key_from_nonce(&[7; 16]);
        client_request(
            &mut req,
            "csms:9000",
            "/ocpp/CP%2001",
            &key,
            &["ocpp2.0.1", "ocpp1.6"],
            Some(("CP 01", "s3cr3t")),
        );
        let (parsed, n) = parse_upgrade_request(&req).unwrap().unwrap();
        assert_eq!(n, req.len());
        assert_eq!(parsed.protocols, ["ocpp2.0.1", "ocpp1.6"]);
        assert_eq!(
            parsed.basic_auth,
            Some(("CP 01".into(), b"s3cr3t".to_vec()))
        );
        assert_eq!(
            charger_id_from_path(&parsed.path, "/ocpp").unwrap(),
            "CP 01"
        );

        let mut resp = Vec::new();
        response_101(&mut resp, &accept_key(&parsed.key), Some("ocpp1.6"));
        resp.extend_from_slice(b"\x81\x00");
        for cut in 0..resp.len() - 2 {
            assert_eq!(parse_upgrade_response(&resp[..cut], &key), Ok(None));
        }
        let (r, n) = parse_upgrade_response(&resp, &key).unwrap().unwrap();
        assert_eq!(
            (r.status, r.protocol.as_deref(), n),
            (101, Some("ocpp1.6"), resp.len() - 2)
        );
        assert_eq!(
            parse_upgrade_response(&resp, &key_from_nonce(&[8; 16]))
                .unwrap_err()
                .reason,
            "bad Sec-WebSocket-Accept"
        );

        let mut plain = Vec::new();
        response_101(&mut plain, &accept_key(&key), None);
        assert_eq!(
            String::from_utf8(plain.clone()).unwrap(),
            format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n", accept_key(&key))
        );
        assert_eq!(
            parse_upgrade_response(&plain, &key)
                .unwrap()
                .unwrap()
                .0
                .protocol,
            None
        );

        let mut refused = Vec::new();
        response_error(&mut refused, 404, "unknown path", &[]);
        let (r, _) = parse_upgrade_response(&refused, &key).unwrap().unwrap();
        assert_eq!(
            r,
            UpgradeResponse {
                status: 404,
                protocol: None,
                retry_after: None,
            }
        );
        let mut busy = Vec::new();
        response_error(&mut busy, 503, "busy", &[("Retry-After", "12")]);
        let (r, _) = parse_upgrade_response(&busy, &key).unwrap().unwrap();
        assert_eq!((r.status, r.retry_after), (503, Some(12)));
        let mut dated = Vec::new();
        response_error(
            &mut dated,
            503,
            "busy",
            &[("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")],
        );
        let (r, _) = parse_upgrade_response(&dated, &key).unwrap().unwrap();
        assert_eq!(r.retry_after, None);
        assert_eq!(
            parse_upgrade_response(b"garbage\r\n\r\n", &key)
                .unwrap_err()
                .status,
            0
        );
        let two = String::from_utf8(plain)
            .unwrap()
            .replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: a, b\r\n\r\n");
        assert_eq!(
            parse_upgrade_response(two.as_bytes(), &key)
                .unwrap_err()
                .reason,
            "bad Sec-WebSocket-Protocol"
        );
    }
}
