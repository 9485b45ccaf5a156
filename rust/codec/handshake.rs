//! The server side of the HTTP/1.1 upgrade handshake (RFC 6455 §4), sans-I/O: parse from a byte
//! buffer, write into a `Vec`. Besides the upgrade itself it reads what OCPP-J puts in the request:
//! the OCPP versions as subprotocols and, for security profiles 1 and 2, HTTP Basic credentials
//! (the charge point id in the path is `charger_id.rs`).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use sha1::{Digest, Sha1};

use super::error::HandshakeError;

/// Largest request or response head we accept. Real upgrade requests are a few hundred bytes; 8 KiB
/// leaves ample room and bounds what an unauthenticated peer can make us hold.
pub const MAX_HEAD: usize = 8 * 1024;
/// Header lines parsed per head: generous for an upgrade; httparse wants the array on the stack.
pub(super) const MAX_HEADERS: usize = 64;
/// RFC 6455 §1.3.
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Padding carries no information and the credentials are verified afterwards anyway, so a missing
/// or extra `=` in Basic credentials is not worth refusing a charger over.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const MALFORMED_REQUEST: HandshakeError = HandshakeError::new(400, "malformed HTTP request");
const HEAD_TOO_LARGE: HandshakeError = HandshakeError::new(431, "request header too large");
const NOT_UPGRADE: HandshakeError = HandshakeError::new(400, "not a websocket upgrade");
const BAD_KEY: HandshakeError = HandshakeError::new(400, "bad Sec-WebSocket-Key");
const BAD_AUTH: HandshakeError = HandshakeError::new(400, "malformed Basic authorization");

/// What a valid upgrade request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// Request target as sent, query string included (see `charger_id_from_path`).
    pub path: String,
    /// `Sec-WebSocket-Key`, trimmed; feed it to [`accept_key`].
    pub key: String,
    /// Offered subprotocols in the order offered, across all `Sec-WebSocket-Protocol` headers.
    pub protocols: Vec<String>,
    /// `Authorization: Basic` user and password. The password stays bytes: OCPP 1.6's
    /// AuthorizationKey is 16-40 arbitrary bytes, not text.
    pub basic_auth: Option<(String, Vec<u8>)>,
}

/// Parse a client's upgrade request from the start of `buf`.
///
/// `Ok(None)`: the head is incomplete, read more. `Ok(Some((request, consumed)))`: the head is
/// `consumed` bytes long; anything after it already belongs to the WebSocket stream. Errors (answer
/// with [`HandshakeError::write_response`]): 431 head over 8 KiB or too many headers; 405 method
/// not GET; 426 `Sec-WebSocket-Version` not 13; 400 for everything else (not HTTP/1.1, no `Upgrade:
/// websocket` or `Connection: upgrade`, missing, repeated or malformed key, bad Basic credentials).
pub fn parse_upgrade_request(
    buf: &[u8],
) -> Result<Option<(UpgradeRequest, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(&buf[..buf.len().min(MAX_HEAD)]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HEAD_TOO_LARGE),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HandshakeError::new(431, "too many headers"))
        }
        Err(_) => return Err(MALFORMED_REQUEST),
    };
    if req.method != Some("GET") {
        return Err(HandshakeError::new(405, "method not allowed"));
    }
    if req.version != Some(1) {
        return Err(HandshakeError::new(400, "HTTP/1.1 required"));
    }
    let headers = req.headers;
    if !has_token(headers, "upgrade", "websocket") || !has_token(headers, "connection", "upgrade") {
        return Err(NOT_UPGRADE);
    }
    match single(headers, "sec-websocket-version") {
        Ok(Some(v)) if v == b"13" => {}
        _ => return Err(HandshakeError::new(426, "unsupported websocket version")),
    }
    let key = match single(headers, "sec-websocket-key") {
        Ok(Some(k)) => k,
        Ok(None) => return Err(HandshakeError::new(400, "missing Sec-WebSocket-Key")),
        Err(()) => return Err(BAD_KEY),
    };
    // §4.1: the key is a base64-encoded 16-byte nonce. Its value is otherwise irrelevant to us.
    if !STANDARD.decode(key).is_ok_and(|nonce| nonce.len() == 16) {
        return Err(BAD_KEY);
    }
    let mut protocols = Vec::new();
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-protocol"))
    {
        let value = std::str::from_utf8(h.value).map_err(|_| MALFORMED_REQUEST)?;
        protocols.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
        );
    }
    let basic_auth = match single(headers, "authorization") {
        Ok(Some(value)) => basic_credentials(value)?,
        Ok(None) => None,
        Err(()) => return Err(HandshakeError::new(400, "repeated Authorization header")),
    };
    let request = UpgradeRequest {
        path: req.path.unwrap_or_default().to_owned(),
        key: String::from_utf8(key.to_vec()).map_err(|_| BAD_KEY)?,
        protocols,
        basic_auth,
    };
    Ok(Some((request, consumed)))
}

/// `Basic base64(user ":" password)` (RFC 7617) -> `Some((user, password))`; another scheme ->
/// `None`, so the caller treats the charger as having sent no Basic credentials.
fn basic_credentials(value: &[u8]) -> Result<Option<(String, Vec<u8>)>, HandshakeError> {
    let value = value.trim_ascii();
    let (scheme, rest) =
        value.split_at(value.iter().position(|b| *b == b' ').unwrap_or(value.len()));
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Ok(None);
    }
    let decoded = LENIENT_BASE64
        .decode(rest.trim_ascii())
        .map_err(|_| BAD_AUTH)?;
    let colon = decoded.iter().position(|b| *b == b':').ok_or(BAD_AUTH)?;
    let user = std::str::from_utf8(&decoded[..colon])
        .map_err(|_| BAD_AUTH)?
        .to_owned();
    Ok(Some((user, decoded[colon + 1..].to_vec())))
}

/// Whether any header `name` lists `token` in its comma-separated value (case-insensitive):
/// `Connection: keep-alive, Upgrade` is how Firefox asks.
pub(super) fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|b| *b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The trimmed value of header `name`: `Ok(None)` when absent, `Err(())` when repeated (a repeated
/// key or accept is ambiguous, so it is refused rather than guessed).
pub(super) fn single<'b>(
    headers: &[httparse::Header<'b>],
    name: &str,
) -> Result<Option<&'b [u8]>, ()> {
    let mut found = headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name));
    let first = found.next().map(|h| h.value.trim_ascii());
    if found.next().is_some() {
        return Err(());
    }
    Ok(first)
}

/// `Sec-WebSocket-Accept` for a client's key: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID);
    STANDARD.encode(sha.finalize())
}

/// Append the 101 response accepting the upgrade, with the chosen subprotocol if any.
pub fn response_101(out: &mut Vec<u8>, accept: &str, protocol: Option<&str>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    push_header(out, "Sec-WebSocket-Accept", accept);
    if let Some(p) = protocol {
        push_header(out, "Sec-WebSocket-Protocol", p);
    }
    out.extend_from_slice(b"\r\n");
}

/// Append an error response: `reason` plus a newline as a `text/plain` body, `Connection: close`,
/// and `extra_headers` (see [`HandshakeError::extra_headers`]).
pub fn response_error(
    out: &mut Vec<u8>,
    status: u16,
    reason: &str,
    extra_headers: &[(&str, &str)],
) {
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    push_header(out, "Content-Type", "text/plain");
    push_header(out, "Content-Length", &(reason.len() + 1).to_string());
    push_header(out, "Connection", "close");
    for (name, value) in extra_headers {
        push_header(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(reason.as_bytes());
    out.push(b'\n');
}

pub(super) fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Reason phrases for the statuses a gateway sends (RFC 9110 §15, RFC 6585).
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request(extra: &str) -> Vec<u8> {
        format!(
            "GET /ocpp/CP001?x=1 HTTP/1.1\r\nHost: csms\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn parse(buf: &[u8]) -> Result<UpgradeRequest, HandshakeError> {
        parse_upgrade_request(buf).map(|r| r.expect("complete").0)
    }

    fn err_of(buf: &[u8]) -> (u16, &'static str) {
        let e = parse(buf).unwrap_err();
        (e.status, e.reason)
    }

    #[test]
    fn rfc_accept_key() {
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(crate::codec::key_from_nonce(b"the sample nonce"), KEY);
    }

    #[test]
    fn good_request() {
        let mut buf = request(
            "Sec-WebSocket-Protocol: ocpp2.0.1, ocpp1.6\r\nsec-websocket-protocol:  ocpp2.0 ,,\r\n",
        );
        let head = buf.len();
        buf.extend_from_slice(b"\x81\x80frame"); // early frame bytes are not part of the head
        let (req, consumed) = parse_upgrade_request(&buf).unwrap().unwrap();
        assert_eq!(consumed, head);
        assert_eq!(req.path, "/ocpp/CP001?x=1");
        assert_eq!(req.key, KEY);
        assert_eq!(req.protocols, ["ocpp2.0.1", "ocpp1.6", "ocpp2.0"]);
        assert_eq!(req.basic_auth, None);
    }

    #[test]
    fn partial_request_needs_more() {
        let buf = request("");
        for n in 0..buf.len() {
            assert_eq!(parse_upgrade_request(&buf[..n]), Ok(None), "prefix {n}");
        }
    }

    #[test]
    fn rejected_requests() {
        let good = String::from_utf8(request("")).unwrap();
        let without = |line: &str| good.replace(line, "").into_bytes();
        assert_eq!(
            err_of(&without(&format!("Sec-WebSocket-Key: {KEY}\r\n"))),
            (400, "missing Sec-WebSocket-Key")
        );
        assert_eq!(
            err_of(&good.replace(KEY, "c2hvcnQ=").into_bytes()),
            (400, "bad Sec-WebSocket-Key")
        );
        assert_eq!(
            err_of(&request(&format!("Sec-WebSocket-Key: {KEY}\r\n"))),
            (400, "bad Sec-WebSocket-Key")
        );
        assert_eq!(
            err_of(&good.replace("Version: 13", "Version: 8").into_bytes()).0,
            426
        );
        assert_eq!(err_of(&without("Sec-WebSocket-Version: 13\r\n")).0, 426);
        assert_eq!(
            err_of(&good.replace("GET", "POST").into_bytes()),
            (405, "method not allowed")
        );
        assert_eq!(
            err_of(&good.replace("HTTP/1.1", "HTTP/1.0").into_bytes()),
            (400, "HTTP/1.1 required")
        );
        assert_eq!(
            err_of(&without("Upgrade: WebSocket\r\n")),
            (400, "not a websocket upgrade")
        );
        assert_eq!(
            err_of(&good.replace("WebSocket\r\n", "h2c\r\n").into_bytes()),
            (400, "not a websocket upgrade")
        );
        assert_eq!(
            err_of(
                &good
                    .replace("keep-alive, Upgrade", "keep-alive")
                    .into_bytes()
            )
            .0,
            400
        );
        assert_eq!(
            err_of(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
            (400, "malformed HTTP request")
        );
        assert_eq!(
            err_of(&request(
                "Authorization: Basic a\r\nAuthorization: Basic b\r\n"
            ))
            .0,
            400
        );
    }

    #[test]
    fn oversized_requests() {
        let big = request(&format!("X-Filler: {}\r\n", "a".repeat(MAX_HEAD)));
        assert_eq!(parse_upgrade_request(&big).unwrap_err().status, 431);
        // Still incomplete at the limit: refused without waiting for the end.
        assert_eq!(
            parse_upgrade_request(&big[..MAX_HEAD]).unwrap_err().reason,
            "request header too large"
        );
        let many = request(&"X-A: 1\r\n".repeat(MAX_HEADERS));
        assert_eq!(err_of(&many), (431, "too many headers"));
    }

    #[test]
    fn error_responses() {
        let mut out = Vec::new();
        let e = parse(
            &String::from_utf8(request(""))
                .unwrap()
                .replace(": 13", ": 7")
                .into_bytes(),
        )
        .unwrap_err();
        e.write_response(&mut out);
        let expected = "HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n\
                        Connection: close\r\nSec-WebSocket-Version: 13\r\n\r\nunsupported websocket version\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let mut out = Vec::new();
        response_error(&mut out, 404, "unknown path", &[]);
        let expected =
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
                        Connection: close\r\n\r\nunknown path\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!(
            HandshakeError::new(405, "").extra_headers(),
            [("Allow", "GET")]
        );
    }

    #[test]
    fn basic_auth() {
        let auth = |value: &str| parse(&request(&format!("Authorization: {value}\r\n")));
        let cred = STANDARD.encode("CP001:pa:ss");
        assert_eq!(
            auth(&format!("Basic {cred}")).unwrap().basic_auth,
            Some(("CP001".into(), b"pa:ss".to_vec()))
        );
        assert_eq!(
            auth(&format!("basic   {cred} ")).unwrap().basic_auth,
            Some(("CP001".into(), b"pa:ss".to_vec()))
        );
        // Binary password and missing padding are accepted.
        let raw = STANDARD_NO_PAD_ENGINE.encode(b"CP001:\xff\x00\x01");
        assert_eq!(
            auth(&format!("Basic {raw}")).unwrap().basic_auth,
            Some(("CP001".into(), vec![0xff, 0, 1]))
        );
        assert_eq!(auth("Bearer abc").unwrap().basic_auth, None);
        assert_eq!(auth("Basic !!!").unwrap_err(), BAD_AUTH);
        assert_eq!(
            auth(&format!("Basic {}", STANDARD.encode("no-colon"))).unwrap_err(),
            BAD_AUTH
        );
        assert_eq!(
            auth(&format!("Basic {}", STANDARD.encode(b"\xff:pw"))).unwrap_err(),
            BAD_AUTH
        );
        assert_eq!(auth("Basic").unwrap_err(), BAD_AUTH);
    }

    const STANDARD_NO_PAD_ENGINE: GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;
}
