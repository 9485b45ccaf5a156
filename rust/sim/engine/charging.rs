//! The charging profiles a simulated charger obeys: Set/ClearChargingProfile install and remove them (the rules
//! are in `sim/profiles.rs`, pure), and every draw of its transactions (the scenario's, with or without an EV,
//! and the bench load's) is computed from the cap in force on the connector at that instant, against the wall
//! clock (validFrom, validTo and startSchedule are wall-clock times the CSMS sets). The draw therefore follows a
//! changed or expired profile at once: the next meter reading shows it.

use serde_json::Value;

use super::load::LOAD_CONNECTOR;
use super::settings::Refusal;
use super::{Sim, TxPhase};
use crate::client::Protocol;
use crate::sim::msg;
use crate::sim::profiles::{ActiveTx, Cap, Clear, Profile, Purpose};

/// What the report says about the charging profiles the chargers got.
#[derive(Default)]
pub(super) struct ProfileCounters {
    /// SetChargingProfile CALLs.
    received: u64,
    accepted: u64,
    /// Well-formed, answered Rejected (a rule of the spec: see `profiles::Refusal`).
    rejected: u64,
    /// Malformed, answered with a CALLERROR.
    invalid: u64,
    /// Profiles removed by ClearChargingProfile.
    cleared: u64,
}

impl Sim {
    /// The transaction on `connector` of charger `idx`, if one runs there: (its id, when it started). The id
    /// is None while a 1.6 start is unanswered.
    fn active_tx(&self, idx: usize, connector: u32) -> Option<(Option<String>, i64)> {
        let c = &self.ch[idx];
        let v16 = self.cfg.protocol == Protocol::Ocpp16;
        if let Some(t) = &c.tx {
            if t.connector == connector && matches!(t.phase, TxPhase::Starting | TxPhase::Charging)
            {
                let id = if v16 {
                    t.id16.map(|i| i.to_string())
                } else {
                    Some(t.id201.to_string())
                };
                return Some((id, t.started_ms));
            }
        }
        if connector == LOAD_CONNECTOR {
            return c.load.active_tx(v16);
        }
        None
    }

    /// What charger `idx` lets an EV on `connector` take now: its rating (the scenario's `power_w`) and the
    /// charging profiles in force.
    pub(super) fn cap(&self, idx: usize, connector: u32) -> Cap {
        let rating = Cap::watts(self.cfg.power_w);
        if self.ch[idx].profiles.is_empty() {
            // The common case at bench scale, where every load CALL computes its draw: nothing to look up.
            return rating;
        }
        let tx = self.active_tx(idx, connector);
        let tx = tx.as_ref().map(|(id, start_ms)| ActiveTx {
            id: id.as_deref(),
            start_ms: *start_ms,
        });
        let profiles = self.ch[idx].profiles.cap(connector, msg::now_ms(), tx);
        rating.and(profiles)
    }

    /// Every meter of charger `idx` counted up to now: what it drew before a profile changes is at the old
    /// cap.
    fn meters_up_to_now(&mut self, idx: usize) {
        self.accumulate(idx);
        self.load_accumulate(idx);
    }

    /// SetChargingProfile: the reply payload.
    pub(super) fn set_charging_profile(
        &mut self,
        idx: usize,
        b: &Value,
    ) -> Result<String, Refusal> {
        self.r.profiles.received += 1;
        let parsed = self.parse_set(b);
        let (connector, profile) = parsed.inspect_err(|_| self.r.profiles.invalid += 1)?;
        self.meters_up_to_now(idx);
        let v16 = self.cfg.protocol == Protocol::Ocpp16;
        let tx = self.active_tx(idx, connector);
        let tx = tx.as_ref().map(|(id, start_ms)| ActiveTx {
            id: id.as_deref(),
            start_ms: *start_ms,
        });
        let connectors = self.cfg.connectors;
        let set = self.ch[idx]
            .profiles
            .set(connector, connectors, profile, msg::now_ms(), tx, v16);
        Ok(match set {
            Ok(()) => {
                self.r.profiles.accepted += 1;
                r#"{"status":"Accepted"}"#.to_owned()
            }
            Err(why) => {
                self.r.profiles.rejected += 1;
                if v16 {
                    r#"{"status":"Rejected"}"#.to_owned()
                } else {
                    format!(
                        r#"{{"status":"Rejected","statusInfo":{{"reasonCode":"{}"}}}}"#,
                        why.code()
                    )
                }
            }
        })
    }

    fn parse_set(&self, b: &Value) -> Result<(u32, Profile), Refusal> {
        let v16 = self.cfg.protocol == Protocol::Ocpp16;
        let (ckey, pkey) = if v16 {
            ("connectorId", "csChargingProfiles")
        } else {
            ("evseId", "chargingProfile")
        };
        let connector = b
            .get(ckey)
            .and_then(Value::as_u64)
            .ok_or_else(|| ("", format!("{ckey} missing or not a non-negative integer")))?;
        let raw = b
            .get(pkey)
            .filter(|p| p.is_object())
            .ok_or_else(|| ("", format!("{pkey} missing or not an object")))?;
        let profile = Profile::parse(raw, v16).map_err(|why| ("", why))?;
        Ok((u32::try_from(connector).unwrap_or(u32::MAX), profile))
    }

    /// ClearChargingProfile: the reply payload (Accepted when something was removed, else Unknown).
    pub(super) fn clear_charging_profile(
        &mut self,
        idx: usize,
        b: &Value,
    ) -> Result<String, Refusal> {
        let v16 = self.cfg.protocol == Protocol::Ocpp16;
        let criteria = if v16 {
            b
        } else {
            b.get("chargingProfileCriteria").unwrap_or(&Value::Null)
        };
        let int = |v: &Value, k: &str| -> Result<Option<i64>, Refusal> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(n) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| ("", format!("{k} is not an integer"))),
            }
        };
        let purpose = match criteria.get("chargingProfilePurpose") {
            None | Some(Value::Null) => None,
            Some(p) => Some(
                p.as_str()
                    .and_then(Purpose::parse)
                    .ok_or_else(|| ("", format!("chargingProfilePurpose {p} is not a purpose")))?,
            ),
        };
        let connector = int(criteria, if v16 { "connectorId" } else { "evseId" })?;
        let clear = Clear {
            id: int(b, if v16 { "id" } else { "chargingProfileId" })?,
            connector: connector.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
            purpose,
            stack_level: int(criteria, "stackLevel")?,
        };
        self.meters_up_to_now(idx);
        let removed = self.ch[idx].profiles.clear(clear);
        self.r.profiles.cleared += removed as u64;
        let status = if removed > 0 { "Accepted" } else { "Unknown" };
        Ok(format!(r#"{{"status":"{status}"}}"#))
    }

    /// The report's `charging_profiles`.
    pub(super) fn profiles_report(&self) -> Value {
        let p = &self.r.profiles;
        serde_json::json!({
            "received": p.received,
            "accepted": p.accepted,
            "rejected": p.rejected,
            "invalid": p.invalid,
            "cleared": p.cleared,
        })
    }
}
