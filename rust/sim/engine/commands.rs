//! The simulated charger's answers to the CSMS's CALLs, and what it does after each answer: one table, a
//! handler per command of both protocol versions side by side. The answers about its settings (1.6
//! configuration keys, 2.0.1 variables) are in `settings.rs`.

use serde_json::value::RawValue;
use serde_json::Value;

use super::settings::Refusal;
use super::{Boot, Fw, Sim, Timer, TxPhase};
use crate::client::Protocol;
use crate::sim::config::TRAIT_NO_ANSWER;
use crate::sim::msg::{self, Action};

impl Sim {
    // -- the CSMS's CALLs ------------------------------------------------------------------------------------

    pub(super) fn on_csms_call(&mut self, idx: usize, id: &str, action: &str, payload: &RawValue) {
        self.check("call", action, payload);
        if let Some(n) = self.r.csms_calls.get_mut(action) {
            *n += 1;
        } else if self.r.csms_calls.len() < 128 {
            self.r
                .csms_calls
                .insert(action.chars().take(64).collect(), 1);
        }
        if self.ch[idx].traits & TRAIT_NO_ANSWER != 0 {
            return;
        }
        let body: Value = serde_json::from_str(payload.get()).unwrap_or(Value::Null);
        let v16 = self.cfg.protocol == Protocol::Ocpp16;
        let format_violation = if v16 {
            "FormationViolation"
        } else {
            "FormatViolation"
        };
        if !body.is_object() {
            return self.send_call_error(idx, id, format_violation, "payload is not an object");
        }
        match self.answer(idx, action, &body) {
            Ok((reply, then)) => {
                self.send_reply(idx, id, &reply);
                self.then(idx, then);
            }
            Err((code, why)) => {
                let code = if code.is_empty() {
                    format_violation
                } else {
                    code
                };
                self.send_call_error(idx, id, code, &why);
            }
        }
    }

    /// The reply payload to one CSMS CALL and what the charger does after replying.
    fn answer(&mut self, idx: usize, action: &str, b: &Value) -> Result<(String, Then), Refusal> {
        let v16 = self.cfg.protocol == Protocol::Ocpp16;
        let missing = |f: &str| ("", format!("{f} missing or of the wrong type"));
        let st = |s: &str| format!(r#"{{"status":"{s}"}}"#);
        let ok = |s: String| Ok((s, Then::Nothing));
        match action {
            "Reset" => {
                let kind = b
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| missing("type"))?;
                let known = if v16 {
                    ["Hard", "Soft"]
                } else {
                    ["Immediate", "OnIdle"]
                };
                if !known.contains(&kind) {
                    return Err((
                        "PropertyConstraintViolation",
                        format!("unknown Reset type {kind:?}"),
                    ));
                }
                let (boot, stop) = match kind {
                    "Hard" => ("PowerUp", "HardReset"),
                    "Soft" => ("PowerUp", "SoftReset"),
                    _ => ("RemoteReset", "ImmediateReset"),
                };
                if kind == "OnIdle" && self.ch[idx].tx.is_some() {
                    // Reboot once the transaction has ended [B12].
                    self.ch[idx].after_tx.reboot = Some(boot);
                    return ok(st("Scheduled"));
                }
                Ok((st("Accepted"), Then::Reboot(boot, stop)))
            }
            "ChangeAvailability" => {
                let op = if v16 {
                    b.get("type")
                        .and_then(Value::as_str)
                        .ok_or_else(|| missing("type"))?
                } else {
                    b.get("operationalStatus")
                        .and_then(Value::as_str)
                        .ok_or_else(|| missing("operationalStatus"))?
                };
                let available = matches!(op, "Operative");
                if self.ch[idx].tx.is_some() && !available {
                    // Applied once the transaction has ended.
                    self.ch[idx].after_tx.available = Some(false);
                    return ok(st("Scheduled"));
                }
                self.ch[idx].after_tx.available = None;
                Ok((st("Accepted"), Then::Availability(available)))
            }
            "TriggerMessage" | "ExtendedTriggerMessage" => {
                let what = b
                    .get("requestedMessage")
                    .and_then(Value::as_str)
                    .ok_or_else(|| missing("requestedMessage"))?;
                let trig = match what {
                    "BootNotification" if !v16 && self.ch[idx].boot == Boot::Accepted => {
                        return ok(st("Rejected"))
                    }
                    "BootNotification" => Trigger::Boot,
                    "Heartbeat" => Trigger::Heartbeat,
                    "StatusNotification" => Trigger::Status,
                    "MeterValues" => Trigger::Meter,
                    "FirmwareStatusNotification" | "SignedFirmwareStatusNotification" => {
                        Trigger::Firmware
                    }
                    _ => return ok(st("NotImplemented")),
                };
                Ok((st("Accepted"), Then::Trigger(trig)))
            }
            "GetConfiguration" if v16 => ok(self.get_configuration(idx, b)?),
            "ChangeConfiguration" if v16 => ok(self.change_configuration(idx, b)?),
            "GetVariables" if !v16 => ok(self.get_variables(idx, b)?),
            "SetVariables" if !v16 => ok(self.set_variables(idx, b)?),
            "SetChargingProfile" => ok(self.set_charging_profile(idx, b)?),
            "ClearChargingProfile" => ok(self.clear_charging_profile(idx, b)?),
            "UpdateFirmware" | "SignedUpdateFirmware" => {
                let signed = action == "SignedUpdateFirmware";
                let (loc, rid) = if v16 && !signed {
                    let loc = b
                        .get("location")
                        .and_then(Value::as_str)
                        .ok_or_else(|| missing("location"))?;
                    (loc, None)
                } else {
                    let fw = b.get("firmware").ok_or_else(|| missing("firmware"))?;
                    let loc = fw
                        .get("location")
                        .and_then(Value::as_str)
                        .ok_or_else(|| missing("firmware.location"))?;
                    (loc, b.get("requestId").and_then(Value::as_i64))
                };
                if self.ch[idx].fw.is_some() {
                    let busy = if v16 && !signed {
                        "{}".to_owned()
                    } else {
                        st("Rejected")
                    };
                    return ok(busy);
                }
                let version = version_from_location(loc);
                let reply = if v16 && !signed {
                    "{}".to_owned()
                } else {
                    st("Accepted")
                };
                Ok((
                    reply,
                    Then::Firmware {
                        version,
                        request_id: rid,
                        signed,
                    },
                ))
            }
            "RemoteStartTransaction" if v16 => {
                let tag = b
                    .get("idTag")
                    .and_then(Value::as_str)
                    .ok_or_else(|| missing("idTag"))?;
                let c = &self.ch[idx];
                let free = c.tx.is_none()
                    && c.available
                    && c.boot == Boot::Accepted
                    && self.tx_connector().is_some();
                if !free || !safe(tag) || tag.len() > 20 {
                    return ok(st("Rejected"));
                }
                Ok((st("Accepted"), Then::RemoteStart(tag.to_owned(), None)))
            }
            "RequestStartTransaction" if !v16 => {
                let tag = b
                    .get("idToken")
                    .and_then(|t| t.get("idToken"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| missing("idToken.idToken"))?;
                let rid = b
                    .get("remoteStartId")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| missing("remoteStartId"))?;
                let c = &self.ch[idx];
                let free = c.tx.is_none()
                    && c.available
                    && c.boot == Boot::Accepted
                    && self.tx_connector().is_some();
                if !free || !safe(tag) || tag.len() > 36 {
                    return ok(st("Rejected"));
                }
                Ok((st("Accepted"), Then::RemoteStart(tag.to_owned(), Some(rid))))
            }
            "RemoteStopTransaction" if v16 => {
                let id = b
                    .get("transactionId")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| missing("transactionId"))?;
                let matches = matches!(&self.ch[idx].tx, Some(t) if t.id16 == Some(id) && t.phase == TxPhase::Charging);
                if !matches {
                    return ok(st("Rejected"));
                }
                Ok((st("Accepted"), Then::RemoteStop))
            }
            "RequestStopTransaction" if !v16 => {
                let id = b
                    .get("transactionId")
                    .and_then(Value::as_str)
                    .ok_or_else(|| missing("transactionId"))?;
                let matches = matches!(&self.ch[idx].tx, Some(t) if &*t.id201 == id && t.phase == TxPhase::Charging);
                if !matches {
                    return ok(st("Rejected"));
                }
                Ok((st("Accepted"), Then::RemoteStop))
            }
            "UnlockConnector" => ok(st("Unlocked")),
            "ClearCache" => ok(st("Accepted")),
            "DataTransfer" => ok(st("UnknownVendorId")),
            "GetLocalListVersion" => {
                let key = if v16 { "listVersion" } else { "versionNumber" };
                ok(format!(
                    r#"{{"{key}":{}}}"#,
                    self.ch[idx].local_list_version
                ))
            }
            "SendLocalList" => {
                let key = if v16 { "listVersion" } else { "versionNumber" };
                let v = b
                    .get(key)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| missing(key))?;
                self.ch[idx].local_list_version = v;
                ok(st("Accepted"))
            }
            _ => Err((
                "NotImplemented",
                format!("the simulated charger does not implement {action}"),
            )),
        }
    }

    fn then(&mut self, idx: usize, then: Then) {
        match then {
            Then::Nothing => {}
            Then::Reboot(boot, stop) => self.begin_reboot(idx, boot, stop),
            Then::Availability(available) => {
                self.ch[idx].available = available;
                for connector in 1..=self.cfg.connectors {
                    let s = self.connector_status(idx, connector);
                    self.status_call(idx, connector, s);
                }
            }
            Then::Trigger(t) => match t {
                Trigger::Boot => {
                    self.ch[idx].boot_reason = "Triggered";
                    if self.ch[idx].boot == Boot::Accepted {
                        // Still accepted meanwhile: a triggered boot of an accepted charger is a message in
                        // its queue like any other, not a reboot.
                        let mut p = String::new();
                        let serial = self.serial(idx);
                        let c = &self.ch[idx];
                        let (v, m) = (&self.cfg.vendor, &self.cfg.model);
                        msg::boot(
                            &mut p,
                            self.cfg.protocol,
                            v,
                            m,
                            &serial,
                            &c.fw_version,
                            "Triggered",
                        );
                        self.call(idx, Action::BootNotification, p);
                    } else if self.ch[idx].outstanding.is_none() {
                        // Pending: the trigger ends the wait for the retry interval [B02].
                        self.send_boot(idx);
                    }
                }
                Trigger::Heartbeat => self.call(idx, Action::Heartbeat, "{}".into()),
                Trigger::Status => {
                    for connector in 1..=self.cfg.connectors {
                        let s = self.connector_status(idx, connector);
                        self.status_call(idx, connector, s);
                    }
                }
                Trigger::Meter => {
                    // The scenario's transaction meter: its transaction's connector, else the first one
                    // the scenario's transactions use.
                    let (connector, tx) = match &self.ch[idx].tx {
                        Some(t) => (t.connector, t.id16),
                        None => (self.tx_connector().unwrap_or(1), None),
                    };
                    let draw = self.draw_w(idx);
                    let reading = self.reading(idx, draw);
                    let mut p = String::new();
                    msg::meter_values(&mut p, self.cfg.protocol, connector, tx, &reading);
                    self.call(idx, Action::MeterValues, p);
                }
                Trigger::Firmware => {
                    let (status, rid, signed) = match &self.ch[idx].fw {
                        Some(f) => (
                            ["Downloading", "Downloaded", "Installing", "Installing"]
                                [f.step as usize],
                            f.request_id,
                            f.signed,
                        ),
                        None => ("Idle", None, false),
                    };
                    // Not an event of an update: not counted in the firmware statuses.
                    let mut p = String::new();
                    let action = if signed && self.cfg.protocol == Protocol::Ocpp16 {
                        Action::SignedFirmwareStatusNotification
                    } else {
                        Action::FirmwareStatusNotification
                    };
                    let rid = if self.cfg.protocol == Protocol::Ocpp16 && !signed {
                        None
                    } else {
                        rid
                    };
                    msg::firmware_status(&mut p, status, rid);
                    self.call(idx, action, p);
                }
            },
            Then::Firmware {
                version,
                request_id,
                signed,
            } => {
                self.r.fw_updates += 1;
                let c = &mut self.ch[idx];
                c.fw_gen = c.fw_gen.wrapping_add(1);
                c.fw = Some(Fw {
                    request_id,
                    signed,
                    step: 0,
                    new_version: version.into_boxed_str(),
                });
                let g = c.fw_gen;
                self.fw_status(idx, "Downloading", request_id, signed);
                self.after(self.cfg.firmware_step, idx, Timer::FwStep { gen: g });
            }
            Then::RemoteStart(tag, rid) => {
                self.begin_tx(idx, Some(tag), rid);
            }
            Then::RemoteStop => self.stop_tx(idx, "Remote", "RemoteStop"),
        }
    }
}

enum Trigger {
    Boot,
    Heartbeat,
    Status,
    Meter,
    Firmware,
}

/// What a charger does after its reply to a CSMS CALL has gone out.
enum Then {
    Nothing,
    /// (boot reason, stop reason of a running transaction).
    Reboot(&'static str, &'static str),
    Availability(bool),
    Trigger(Trigger),
    Firmware {
        version: String,
        request_id: Option<i64>,
        signed: bool,
    },
    RemoteStart(String, Option<i64>),
    RemoteStop,
}

/// Whether a string can go into our hand-written JSON without escaping.
fn safe(s: &str) -> bool {
    !s.bytes()
        .any(|b| b == b'"' || b == b'\\' || b.is_ascii_control())
}

/// The version a firmware image installs: the last path segment of its location without query or
/// extension (`https://fw.example/ac22/2.1.0.bin` → `2.1.0`), at most 50 characters; "unknown" if empty.
pub fn version_from_location(location: &str) -> String {
    let path = location.split(['?', '#']).next().unwrap_or("");
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let stem = match last.rsplit_once('.') {
        Some((stem, "bin" | "img" | "zip" | "tar" | "gz" | "fw" | "hex")) => stem,
        _ => last,
    };
    let v: String = stem
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(50)
        .collect();
    if v.is_empty() {
        "unknown".into()
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_versions_come_from_the_location() {
        assert_eq!(
            version_from_location("https://fw.example/ac22/2.1.0.bin"),
            "2.1.0"
        );
        assert_eq!(version_from_location("ftp://x/images/v3?token=1"), "v3");
        assert_eq!(version_from_location("http://x/"), "x");
        assert_eq!(version_from_location(""), "unknown");
    }
}
