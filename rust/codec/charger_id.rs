//! The charge point id in an OCPP-J request target (OCPP-J §3.1.1: the last path segment).

use unicode_general_category::{get_general_category, GeneralCategory};
use unicode_normalization::is_nfc;

use super::error::HandshakeError;

/// OCPP's chargeBoxIdentity / identity is a CiString48.
pub const MAX_CHARGER_ID_CHARS: usize = 48;

const UNKNOWN_PATH: HandshakeError = HandshakeError::new(404, "unknown path");
const BAD_ID: HandshakeError = HandshakeError::new(404, "bad charge point id");

/// The charge point id of an OCPP-J request target `{prefix}/{id}` (OCPP-J §3.1.1),
/// percent-decoded.
///
/// The query string is ignored. `prefix` is like `/ocpp` (a trailing `/` is tolerated; `""` serves
/// ids at the root). Errors are 404: `"unknown path"` when the target is not exactly one segment
/// below `prefix` (trailing `/` or extra segments included), `"bad charge point id"` when the
/// segment has an invalid `%XX`, is not UTF-8, is not 1..=48 characters, or contains a control
/// character, `/` or `:` once decoded (`:` would break Basic credentials, whose user is the id), or
/// is not in Unicode normalization form C (ids are stored in NFC, so "Cafe\u{301}" would name a
/// second charger that reads like "Café"), or holds a character an operator could not read as sent:
/// format characters (invisible or direction-changing, U+200B, U+202E), line and paragraph
/// separators, private-use and unassigned code points, and any space but U+0020. The same rule as
/// the control plane's `ampgate.store.chargers.validate_charger_id`, checked here before the 101 so a
/// refused id costs no upgrade. (This crate's Unicode tables can be newer than Python's: a character
/// assigned only in the newer version passes here and is refused by the control plane after the 101.)
pub fn charger_id_from_path(path: &str, prefix: &str) -> Result<String, HandshakeError> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segment = path
        .strip_prefix(prefix.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|seg| !seg.is_empty() && !seg.contains('/'))
        .ok_or(UNKNOWN_PATH)?;
    let id = String::from_utf8(percent_decode(segment).ok_or(BAD_ID)?).map_err(|_| BAD_ID)?;
    let chars = id.chars().count();
    if chars == 0
        || chars > MAX_CHARGER_ID_CHARS
        || id
            .chars()
            .any(|c| c.is_control() || c == '/' || c == ':' || unreadable(c))
        || !is_nfc(&id)
    {
        return Err(BAD_ID);
    }
    Ok(id)
}

/// A character that would make an id read as something else: see `charger_id_from_path`.
fn unreadable(c: char) -> bool {
    use GeneralCategory::*;
    match get_general_category(c) {
        Format | LineSeparator | ParagraphSeparator | PrivateUse | Unassigned | Surrogate => true,
        SpaceSeparator => c != ' ',
        _ => false,
    }
}

/// `%XX` decoding (RFC 3986 §2.1); `None` on a `%` not followed by two hex digits. `+` stays `+`:
/// it only means space in form-encoded query strings, not in paths.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    fn hex(b: u8) -> Option<u8> {
        char::from(b).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let (hi, lo) = (bytes.get(i + 1).copied()?, bytes.get(i + 2).copied()?);
            out.push(hex(hi)? << 4 | hex(lo)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charger_ids() {
        let id = |path: &str| charger_id_from_path(path, "/ocpp");
        assert_eq!(id("/ocpp/CP001").unwrap(), "CP001");
        assert_eq!(id("/ocpp/CP001?token=x/y").unwrap(), "CP001");
        assert_eq!(id("/ocpp/CP%20001").unwrap(), "CP 001");
        assert_eq!(id("/ocpp/%C3%A9t%c3%a9+1").unwrap(), "été+1");
        assert_eq!(
            id(&format!("/ocpp/{}", "x".repeat(48))).unwrap(),
            "x".repeat(48)
        );
        assert_eq!(
            id(&format!("/ocpp/{}", "%C3%A9".repeat(48))).unwrap(),
            "é".repeat(48)
        );
        // Already NFC, composed or not decomposable: accepted as sent.
        assert_eq!(id("/ocpp/Caf%C3%A9").unwrap(), "Café");
        assert_eq!(id("/ocpp/%C3%85%ED%95%9C").unwrap(), "Å한");
        assert_eq!(charger_id_from_path("/ocpp/CP1", "/ocpp/").unwrap(), "CP1");
        assert_eq!(charger_id_from_path("/CP1", "").unwrap(), "CP1");
        for path in [
            "/ocpp",
            "/ocpp/",
            "/ocpp//",
            "/ocpp/CP001/",
            "/ocpp/a/b",
            "/other/CP001",
            "/ocppx/CP001",
            "CP001",
        ] {
            assert_eq!(id(path), Err(UNKNOWN_PATH), "{path}");
        }
        let long = format!("/ocpp/{}", "x".repeat(49));
        for path in [
            "/ocpp/a%2Fb",
            "/ocpp/a%3Ab",
            "/ocpp/a:b",
            "/ocpp/a%0Ab",
            "/ocpp/a%7F",
            "/ocpp/%C2%85",
            "/ocpp/%zz",
            "/ocpp/a%4",
            "/ocpp/a%",
            "/ocpp/%FF",
            // Not NFC: "e" + U+0301 COMBINING ACUTE ACCENT (NFC is U+00E9), and U+212B ANGSTROM SIGN
            // (a singleton NFC maps to U+00C5).
            "/ocpp/Cafe%CC%81",
            "/ocpp/%E2%84%AB",
            // Format characters: U+200B ZERO WIDTH SPACE, U+202E RIGHT-TO-LEFT OVERRIDE, U+FEFF.
            "/ocpp/CP%E2%80%8B1",
            "/ocpp/CP%E2%80%AE1",
            "/ocpp/%EF%BB%BFCP1",
            // Separators: U+00A0 NO-BREAK SPACE, U+3000 IDEOGRAPHIC SPACE, U+2028 LINE SEPARATOR.
            "/ocpp/CP%C2%A01",
            "/ocpp/CP%E3%80%801",
            "/ocpp/CP%E2%80%A81",
            // Private use U+E000, unassigned U+0378.
            "/ocpp/CP%EE%80%80",
            "/ocpp/CP%CD%B8",
            &long,
        ] {
            assert_eq!(id(path), Err(BAD_ID), "{path}");
        }
    }
}
