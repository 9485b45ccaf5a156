//! The canned CALLRESULT for a CALL, read without a JSON parser.

/// A CALL's unique id, read without a JSON parser: `[2,"<id>",`.
pub fn call_unique_id(text: &str) -> Option<&str> {
    let rest = text
        .trim_start()
        .strip_prefix('[')?
        .trim_start()
        .strip_prefix('2')?
        .trim_start();
    let rest = rest.strip_prefix(',')?.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(&rest[..end])
}

/// The canned CALLRESULT payload for a CALL, valid against the action's response schema in
/// both versions (so a simulator checking every reply finds nothing wrong with the physical-limit server).
pub fn canned_payload(call: &str) -> &'static str {
    let action = call_unique_id(call)
        .and_then(|id| call.split_once(&format!("\"{id}\"")))
        .and_then(|(_, rest)| {
            rest.trim_start()
                .strip_prefix(',')?
                .trim_start()
                .strip_prefix('"')
        })
        .and_then(|rest| rest.split_once('"'))
        .map_or("", |(action, _)| action);
    match action {
        "BootNotification" => {
            r#"{"status":"Accepted","currentTime":"2026-01-01T00:00:00.000Z","interval":300}"#
        }
        "Heartbeat" => r#"{"currentTime":"2026-01-01T00:00:00.000Z"}"#,
        "Authorize" if call.contains(r#""idToken""#) => r#"{"idTokenInfo":{"status":"Accepted"}}"#,
        "Authorize" => r#"{"idTagInfo":{"status":"Accepted"}}"#,
        "StartTransaction" => r#"{"transactionId":1,"idTagInfo":{"status":"Accepted"}}"#,
        "DataTransfer" => r#"{"status":"Accepted"}"#,
        _ => "{}",
    }
}

/// The whole canned CALLRESULT for a CALL; None when its unique id is unreadable.
pub fn canned_reply(call: &str) -> Option<String> {
    call_unique_id(call).map(|uid| format!("[3,\"{uid}\",{}]", canned_payload(call)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_mode_reads_unique_ids() {
        assert_eq!(
            call_unique_id(r#"[2,"abc-1","Heartbeat",{}]"#),
            Some("abc-1")
        );
        assert_eq!(call_unique_id(r#" [ 2 , "x" ,"A",{}]"#), Some("x"));
        assert_eq!(call_unique_id(r#"[3,"x",{}]"#), None);
    }

    #[test]
    fn canned_replies_follow_the_action() {
        assert!(canned_payload(r#"[2,"1","BootNotification",{}]"#).contains("interval"));
        assert_eq!(
            canned_payload(r#"[2,"h1", "Heartbeat",{}]"#),
            r#"{"currentTime":"2026-01-01T00:00:00.000Z"}"#
        );
        assert!(canned_payload(r#"[2,"a","Authorize",{"idToken":{}}]"#).contains("idTokenInfo"));
        assert!(canned_payload(r#"[2,"a","Authorize",{"idTag":"T"}]"#).contains("idTagInfo"));
        assert_eq!(canned_payload(r#"[2,"m","MeterValues",{}]"#), "{}");
        assert_eq!(canned_payload("garbage"), "{}");
    }

    #[test]
    fn canned_reply_is_a_callresult() {
        assert_eq!(
            canned_reply(r#"[2,"h1","Heartbeat",{}]"#).as_deref(),
            Some(r#"[3,"h1",{"currentTime":"2026-01-01T00:00:00.000Z"}]"#)
        );
        assert_eq!(canned_reply("[3,\"x\",{}]"), None);
    }
}
