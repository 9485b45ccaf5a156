//! Charging profiles as a simulated charger keeps and applies them (pure: profiles and instants in, limits out),
//! so that a central system's load management can be tested in a closed loop against chargers that obey it the
//! way real ones do (OCPP 1.6 §3.13 and §5.16, 2.0.1 K01 and K10).
//!
//! A charger holds its profiles per connector (1.6) / EVSE (2.0.1), 0 standing for the whole charger, each with
//! a purpose (ChargePointMaxProfile / ChargingStationMaxProfile, TxDefaultProfile, TxProfile) and a stack level:
//! - installing: a profile with the same id replaces the old one wherever it was; so does one with the same
//!   purpose and stack level on the same connector. The charger-wide maximum goes on connector 0 only, a
//!   TxProfile on a connector with a transaction only, and for that transaction (its id must match; 2.0.1
//!   requires the id, 1.6 applies a TxProfile without one to whichever transaction runs). Refusals are
//!   [`Refusal`]s, answered `Rejected`;
//! - clearing: by id, else by every criterion given (connector, purpose, stack level; none: all);
//! - a transaction's end drops its TxProfiles;
//! - the limit on a connector at an instant ([`Profiles::cap`]) is the charger-wide maximum's, combined with
//!   the connector's TxProfile if one is in force, else its TxDefaultProfile, else connector 0's
//!   TxDefaultProfile. Within a purpose the profile with the highest stack level that is in force wins; in
//!   force means inside validFrom / validTo and inside its schedule (started, not past its duration, a period
//!   begun), so an expired profile stops limiting and the next one down takes over.
//!
//! Schedules: Absolute ones start at startSchedule (without one: when the charger got the profile); Relative
//! ones at the transaction's start (without a transaction: the schedule's first period holds); Recurring ones
//! repeat the Absolute schedule every day or week from startSchedule, before it as after it. Only a 2.0.1
//! profile's first schedule is used (more than one is for ISO 15118 EVs, which the simulator has none of).
//!
//! A limit in A is per phase; one in W is shared over the phases the EV uses. `numberPhases` caps the phases.
//! What an EV then takes is [`Cap::current`]: the least of every limit, its own maximum and the charger's
//! rating, and nothing below the 6 A an EV can charge at (it pauses, still plugged in).

use serde_json::Value;

use super::ev::{MIN_CURRENT_A, VOLTAGE};

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Purpose {
    /// 1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile: the whole charger, on connector 0 only.
    StationMax,
    TxDefault,
    Tx,
    /// 2.0.1 ChargingStationExternalConstraints: limits from outside (an energy management system) that the
    /// charger itself reports; never taken from the central system.
    External,
}

impl Purpose {
    /// The purpose named in a message of either version.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ChargePointMaxProfile" | "ChargingStationMaxProfile" => Purpose::StationMax,
            "TxDefaultProfile" => Purpose::TxDefault,
            "TxProfile" => Purpose::Tx,
            "ChargingStationExternalConstraints" => Purpose::External,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Absolute,
    Daily,
    Weekly,
    Relative,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unit {
    A,
    W,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Period {
    /// Seconds from the schedule's start.
    pub start_s: f64,
    pub limit: f64,
    pub phases: Option<u8>,
}

/// One charging profile, parsed from either version's message.
#[derive(Clone, PartialEq, Debug)]
pub struct Profile {
    pub id: i64,
    pub stack_level: i64,
    pub purpose: Purpose,
    pub kind: Kind,
    /// The transaction a TxProfile is for (1.6 ids as their decimal text).
    pub tx_id: Option<String>,
    pub valid_from_ms: Option<i64>,
    pub valid_to_ms: Option<i64>,
    pub start_ms: Option<i64>,
    pub duration_s: Option<f64>,
    pub unit: Unit,
    /// In order of `start_s`.
    pub periods: Vec<Period>,
}

/// A malformed profile: what the CALLERROR says (the schema's types and required fields).
pub type Malformed = String;

impl Profile {
    /// The profile of a 1.6 `csChargingProfiles` or a 2.0.1 `chargingProfile`.
    pub fn parse(v: &Value, v16: bool) -> Result<Self, Malformed> {
        let int = |k: &str| {
            v.get(k)
                .and_then(Value::as_i64)
                .ok_or_else(|| format!("{k} missing or not an integer"))
        };
        let text = |v: &Value, k: &str| -> Result<Option<String>, Malformed> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{k} is not a string")),
            }
        };
        let time = |v: &Value, k: &str| -> Result<Option<i64>, Malformed> {
            text(v, k)?
                .map(|s| parse_time_ms(&s).ok_or_else(|| format!("{k} is not a date-time: {s:?}")))
                .transpose()
        };
        let id = int(if v16 { "chargingProfileId" } else { "id" })?;
        let stack_level = int("stackLevel")?;
        let purpose_name =
            text(v, "chargingProfilePurpose")?.ok_or("chargingProfilePurpose missing")?;
        let purpose = Purpose::parse(&purpose_name)
            .filter(|p| !v16 || *p != Purpose::External)
            .ok_or_else(|| format!("chargingProfilePurpose {purpose_name:?} is not a purpose"))?;
        let kind = match text(v, "chargingProfileKind")?.as_deref() {
            Some("Absolute") => Kind::Absolute,
            Some("Relative") => Kind::Relative,
            Some("Recurring") => match text(v, "recurrencyKind")?.as_deref() {
                Some("Daily") => Kind::Daily,
                Some("Weekly") => Kind::Weekly,
                _ => return Err("a Recurring profile needs recurrencyKind Daily or Weekly".into()),
            },
            other => return Err(format!("chargingProfileKind {other:?} is not a kind")),
        };
        let tx_id = match v.get("transactionId") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if v16 && n.is_i64() => Some(n.to_string()),
            Some(Value::String(s)) if !v16 => Some(s.clone()),
            Some(_) => return Err("transactionId is of the wrong type".into()),
        };
        let schedule = if v16 {
            v.get("chargingSchedule")
        } else {
            v.get("chargingSchedule").and_then(|s| s.get(0))
        }
        .filter(|s| s.is_object())
        .ok_or("chargingSchedule missing")?;
        let unit = match text(schedule, "chargingRateUnit")?.as_deref() {
            Some("A") => Unit::A,
            Some("W") => Unit::W,
            other => return Err(format!("chargingRateUnit {other:?} is not A or W")),
        };
        let duration_s = match schedule.get("duration") {
            None | Some(Value::Null) => None,
            Some(d) => Some(
                d.as_f64()
                    .filter(|d| *d >= 0.0)
                    .ok_or("duration is not a number of seconds")?,
            ),
        };
        let raw = schedule
            .get("chargingSchedulePeriod")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or("chargingSchedulePeriod missing or empty")?;
        let mut periods = Vec::with_capacity(raw.len());
        for p in raw {
            let start_s = p
                .get("startPeriod")
                .and_then(Value::as_f64)
                .filter(|s| *s >= 0.0)
                .ok_or("startPeriod missing or negative")?;
            let limit = p
                .get("limit")
                .and_then(Value::as_f64)
                .filter(|l| l.is_finite())
                .ok_or("limit missing or not a number")?;
            let phases = match p.get("numberPhases") {
                None | Some(Value::Null) => None,
                Some(n) => Some(
                    n.as_u64()
                        .filter(|n| (1..=3).contains(n))
                        .ok_or("numberPhases must be 1, 2 or 3")? as u8,
                ),
            };
            periods.push(Period {
                start_s,
                limit,
                phases,
            });
        }
        periods.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        Ok(Profile {
            id,
            stack_level,
            purpose,
            kind,
            tx_id,
            valid_from_ms: time(v, "validFrom")?,
            valid_to_ms: time(v, "validTo")?,
            start_ms: time(schedule, "startSchedule")?,
            duration_s,
            unit,
            periods,
        })
    }
}

/// Why a well-formed profile is not installed (answered `Rejected`; 2.0.1 says the reason code).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// The charger-wide maximum on a connector, or a connector the charger does not have.
    WrongConnector,
    /// A TxProfile on connector 0.
    TxOnCharger,
    /// A TxProfile on a connector without a transaction (1.6 §5.16, 2.0.1 K01.FR.09).
    NoTransaction,
    /// A TxProfile for another transaction than the connector's.
    OtherTransaction,
    /// A 2.0.1 TxProfile without its transactionId (K01.FR.03).
    TxIdMissing,
    /// ChargingStationExternalConstraints: not the central system's to set.
    External,
}

impl Refusal {
    /// The 2.0.1 `statusInfo.reasonCode` (at most 20 characters).
    pub fn code(self) -> &'static str {
        match self {
            Refusal::WrongConnector | Refusal::TxOnCharger => "InvalidEvse",
            Refusal::NoTransaction => "NoTransaction",
            Refusal::OtherTransaction => "TxNotFound",
            Refusal::TxIdMissing => "MissingParam",
            Refusal::External => "UnsupportedParam",
        }
    }
}

/// The transaction running on a connector, as the profiles need it.
#[derive(Clone, Copy, Debug)]
pub struct ActiveTx<'a> {
    /// Its id (1.6: decimal text; None while a 1.6 start is unanswered).
    pub id: Option<&'a str>,
    pub start_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
struct Installed {
    connector: u32,
    profile: Profile,
    /// When the charger got it: an Absolute or Recurring schedule without startSchedule starts then.
    received_ms: i64,
}

/// What ClearChargingProfile names: an id, or criteria that must all hold (absent: any).
#[derive(Clone, Copy, Debug, Default)]
pub struct Clear {
    pub id: Option<i64>,
    pub connector: Option<u32>,
    pub purpose: Option<Purpose>,
    pub stack_level: Option<i64>,
}

/// The limits in force on a connector: per phase (A), in all (W), and the phases allowed. Unlimited is
/// infinite A and W on 3 phases.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Cap {
    pub amps: f64,
    pub watts: f64,
    pub phases: u8,
}

impl Cap {
    pub const NONE: Cap = Cap {
        amps: f64::INFINITY,
        watts: f64::INFINITY,
        phases: 3,
    };

    /// A charger rated `watts` (over however many phases the EV uses).
    pub fn watts(watts: f64) -> Cap {
        Cap { watts, ..Cap::NONE }
    }

    /// Both limits at once.
    pub fn and(self, o: Cap) -> Cap {
        Cap {
            amps: self.amps.min(o.amps),
            watts: self.watts.min(o.watts),
            phases: self.phases.min(o.phases),
        }
    }

    fn of(p: &Period, unit: Unit) -> Cap {
        let limit = p.limit.max(0.0);
        let c = match unit {
            Unit::A => Cap {
                amps: limit,
                ..Cap::NONE
            },
            Unit::W => Cap::watts(limit),
        };
        Cap {
            phases: p.phases.unwrap_or(3),
            ..c
        }
    }

    /// What an EV that charges on `ev_phases` phases up to `max_a` per phase takes under this cap: (current per
    /// phase, phases it uses). A W limit is shared over the phases it uses at [`VOLTAGE`]; under
    /// [`MIN_CURRENT_A`] it takes nothing.
    pub fn current(self, ev_phases: u8, max_a: f64) -> (f64, u8) {
        let phases = ev_phases.min(self.phases).max(1);
        let amps = max_a
            .min(self.amps)
            .min(self.watts / (VOLTAGE * f64::from(phases)));
        if amps.is_nan() || amps < MIN_CURRENT_A {
            (0.0, phases)
        } else {
            (amps, phases)
        }
    }
}

impl Cap {
    /// The current per phase offered to an EV that charges on `ev_phases` phases (0 under 6 A: a pause).
    pub fn offered(self, ev_phases: u8) -> f64 {
        self.current(ev_phases, f64::INFINITY).0
    }
}

/// One charger's installed profiles.
#[derive(Default, Debug)]
pub struct Profiles {
    installed: Vec<Installed>,
}

impl Profiles {
    /// Install `profile` on `connector` (0: the charger) of a charger with `connectors` connectors, received at
    /// `now_ms`, given the transaction running there (if any). `v16`: a TxProfile without a transactionId is
    /// for the transaction running (2.0.1 refuses it).
    pub fn set(
        &mut self,
        connector: u32,
        connectors: u32,
        profile: Profile,
        now_ms: i64,
        tx: Option<ActiveTx<'_>>,
        v16: bool,
    ) -> Result<(), Refusal> {
        if connector > connectors {
            return Err(Refusal::WrongConnector);
        }
        match profile.purpose {
            Purpose::External => return Err(Refusal::External),
            Purpose::StationMax if connector != 0 => return Err(Refusal::WrongConnector),
            Purpose::Tx if connector == 0 => return Err(Refusal::TxOnCharger),
            Purpose::Tx => {
                let Some(tx) = tx else {
                    return Err(Refusal::NoTransaction);
                };
                // A 1.6 TxProfile without an id is for whatever transaction runs on the connector (it is
                // dropped when that one ends), which also covers a start the CSMS has not answered yet.
                match (&profile.tx_id, tx.id) {
                    (None, _) if !v16 => return Err(Refusal::TxIdMissing),
                    (None, _) => {}
                    (Some(want), Some(running)) if want == running => {}
                    (Some(_), _) => return Err(Refusal::OtherTransaction),
                }
            }
            _ => {}
        }
        self.installed.retain(|i| {
            let p = &i.profile;
            p.id != profile.id
                && !(i.connector == connector
                    && p.purpose == profile.purpose
                    && p.stack_level == profile.stack_level)
        });
        self.installed.push(Installed {
            connector,
            profile,
            received_ms: now_ms,
        });
        Ok(())
    }

    /// Remove what `c` names; how many were removed (some: `Accepted`, none: `Unknown`).
    pub fn clear(&mut self, c: Clear) -> usize {
        let before = self.installed.len();
        self.installed.retain(|i| {
            let p = &i.profile;
            let named = match c.id {
                Some(id) => p.id == id,
                None => {
                    c.connector.is_none_or(|k| k == i.connector)
                        && c.purpose.is_none_or(|k| k == p.purpose)
                        && c.stack_level.is_none_or(|k| k == p.stack_level)
                }
            };
            !named
        });
        before - self.installed.len()
    }

    /// The transaction on `connector` ended: its TxProfiles go with it.
    pub fn end_tx(&mut self, connector: u32) {
        self.installed
            .retain(|i| !(i.connector == connector && i.profile.purpose == Purpose::Tx));
    }

    pub fn is_empty(&self) -> bool {
        self.installed.is_empty()
    }

    /// (connector, id) of every profile installed, in order of installation.
    pub fn ids(&self) -> Vec<(u32, i64)> {
        self.installed
            .iter()
            .map(|i| (i.connector, i.profile.id))
            .collect()
    }

    /// The limits in force on `connector` at `at_ms`, with the transaction running there (if any).
    pub fn cap(&self, connector: u32, at_ms: i64, tx: Option<ActiveTx<'_>>) -> Cap {
        let max = self
            .top(0, Purpose::StationMax, at_ms, tx)
            .unwrap_or(Cap::NONE);
        let tx_cap = tx.and_then(|_| self.top(connector, Purpose::Tx, at_ms, tx));
        let own = tx_cap
            .or_else(|| self.top(connector, Purpose::TxDefault, at_ms, tx))
            .or_else(|| self.top(0, Purpose::TxDefault, at_ms, tx))
            .unwrap_or(Cap::NONE);
        max.and(own)
    }

    /// The cap of the profile with the highest stack level of `purpose` on `connector` that is in force.
    fn top(
        &self,
        connector: u32,
        purpose: Purpose,
        at_ms: i64,
        tx: Option<ActiveTx<'_>>,
    ) -> Option<Cap> {
        self.installed
            .iter()
            .filter(|i| i.connector == connector && i.profile.purpose == purpose)
            .filter(|i| {
                purpose != Purpose::Tx
                    || tx.is_some_and(|t| {
                        i.profile.tx_id.is_none() || i.profile.tx_id.as_deref() == t.id
                    })
            })
            .filter_map(|i| Some((i.profile.stack_level, in_force(i, at_ms, tx)?)))
            .max_by_key(|(level, _)| *level)
            .map(|(_, cap)| cap)
    }
}

/// The cap of the period of `i` in force at `at_ms`, if the profile is valid then and its schedule runs.
fn in_force(i: &Installed, at_ms: i64, tx: Option<ActiveTx<'_>>) -> Option<Cap> {
    let p = &i.profile;
    if p.valid_from_ms.is_some_and(|f| at_ms < f) || p.valid_to_ms.is_some_and(|t| at_ms >= t) {
        return None;
    }
    let base = p.start_ms.unwrap_or(i.received_ms);
    let start = match p.kind {
        Kind::Absolute => base,
        Kind::Relative => tx.map_or(at_ms, |t| t.start_ms),
        Kind::Daily => base + (at_ms - base).div_euclid(DAY_MS) * DAY_MS,
        Kind::Weekly => base + (at_ms - base).div_euclid(WEEK_MS) * WEEK_MS,
    };
    let offset_s = (at_ms - start) as f64 / 1000.0;
    if offset_s < 0.0 || p.duration_s.is_some_and(|d| offset_s >= d) {
        return None;
    }
    let period = p.periods.iter().rev().find(|q| q.start_s <= offset_s)?;
    Some(Cap::of(period, p.unit))
}

/// An OCPP date-time (RFC 3339: `2026-11-30T07:00:00Z`, fractions of a second, or a `±hh:mm` offset) as
/// milliseconds since the Unix epoch.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from((a - b'0') * 10 + (b - b'0')))
            };
            let m = two(*h1, *h2)? * 60 + two(*m1, *m2)?;
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-11-30T07:00:00Z: the instant the tests' profiles are received.
    const T0: i64 = 1_796_022_000_000;
    const S: i64 = 1000;

    fn amps(limit: f64) -> Cap {
        Cap {
            amps: limit,
            ..Cap::NONE
        }
    }

    fn profile(id: i64, purpose: Purpose, stack_level: i64, limit: f64) -> Profile {
        Profile {
            id,
            stack_level,
            purpose,
            kind: Kind::Absolute,
            tx_id: None,
            valid_from_ms: None,
            valid_to_ms: None,
            start_ms: None,
            duration_s: None,
            unit: Unit::A,
            periods: vec![Period {
                start_s: 0.0,
                limit,
                phases: None,
            }],
        }
    }

    fn tx(id: &str) -> Option<ActiveTx<'_>> {
        Some(ActiveTx {
            id: Some(id),
            start_ms: T0,
        })
    }

    /// A charger with 2 connectors and a transaction "7" on connector 1.
    fn set(ps: &mut Profiles, connector: u32, p: Profile) -> Result<(), Refusal> {
        let t = if connector == 1 { tx("7") } else { None };
        ps.set(connector, 2, p, T0, t, true)
    }

    #[test]
    fn a_profile_with_the_same_id_replaces_the_old_one_wherever_it_was() {
        let mut ps = Profiles::default();
        set(&mut ps, 1, profile(5, Purpose::TxDefault, 0, 16.0)).unwrap();
        set(&mut ps, 2, profile(5, Purpose::TxDefault, 3, 10.0)).unwrap();
        assert_eq!(ps.ids(), [(2, 5)]);
        assert_eq!(ps.cap(2, T0, None), amps(10.0));
        assert_eq!(ps.cap(1, T0, tx("7")), Cap::NONE);
    }

    #[test]
    fn the_same_purpose_and_stack_level_on_a_connector_replaces_but_not_on_another() {
        let mut ps = Profiles::default();
        set(&mut ps, 1, profile(1, Purpose::Tx, 2, 16.0)).unwrap();
        set(&mut ps, 1, profile(2, Purpose::Tx, 2, 8.0)).unwrap();
        assert_eq!(ps.ids(), [(1, 2)]);
        assert_eq!(ps.cap(1, T0, tx("7")), amps(8.0));
        set(&mut ps, 1, profile(3, Purpose::TxDefault, 2, 12.0)).unwrap();
        set(&mut ps, 2, profile(4, Purpose::TxDefault, 2, 12.0)).unwrap();
        assert_eq!(ps.ids(), [(1, 2), (1, 3), (2, 4)]);
    }

    #[test]
    fn the_charger_wide_maximum_goes_on_connector_0_and_a_tx_profile_on_a_connector_with_its_transaction(
    ) {
        let mut ps = Profiles::default();
        assert_eq!(
            set(&mut ps, 1, profile(1, Purpose::StationMax, 0, 32.0)),
            Err(Refusal::WrongConnector)
        );
        assert_eq!(
            set(&mut ps, 3, profile(1, Purpose::TxDefault, 0, 32.0)),
            Err(Refusal::WrongConnector),
            "the charger has 2 connectors"
        );
        assert_eq!(
            set(&mut ps, 0, profile(1, Purpose::Tx, 0, 32.0)),
            Err(Refusal::TxOnCharger)
        );
        assert_eq!(
            set(&mut ps, 2, profile(1, Purpose::Tx, 0, 32.0)),
            Err(Refusal::NoTransaction),
            "connector 2 has no transaction"
        );
        let mut other = profile(1, Purpose::Tx, 0, 32.0);
        other.tx_id = Some("8".into());
        assert_eq!(set(&mut ps, 1, other), Err(Refusal::OtherTransaction));
        // 2.0.1 names the transaction; 1.6 may leave it out.
        assert_eq!(
            ps.set(1, 2, profile(1, Purpose::Tx, 0, 32.0), T0, tx("7"), false),
            Err(Refusal::TxIdMissing)
        );
        let ext = profile(1, Purpose::External, 0, 32.0);
        assert_eq!(set(&mut ps, 0, ext), Err(Refusal::External));
        assert!(ps.ids().is_empty(), "nothing refused was installed");
        let mut mine = profile(1, Purpose::Tx, 0, 10.0);
        mine.tx_id = Some("7".into());
        set(&mut ps, 1, mine).unwrap();
        set(&mut ps, 0, profile(2, Purpose::StationMax, 0, 32.0)).unwrap();
        assert_eq!(ps.ids(), [(1, 1), (0, 2)]);
    }

    #[test]
    fn a_tx_profile_limits_only_its_transaction_and_goes_when_it_ends() {
        let mut ps = Profiles::default();
        let mut p = profile(1, Purpose::Tx, 0, 10.0);
        p.tx_id = Some("7".into());
        set(&mut ps, 1, p).unwrap();
        set(&mut ps, 1, profile(2, Purpose::TxDefault, 0, 16.0)).unwrap();
        assert_eq!(ps.cap(1, T0, tx("7")), amps(10.0));
        assert_eq!(ps.cap(1, T0, tx("8")), amps(16.0), "another transaction");
        ps.end_tx(2);
        assert_eq!(
            ps.ids().len(),
            2,
            "an end on connector 2 leaves connector 1's TxProfile"
        );
        ps.end_tx(1);
        assert_eq!(ps.ids(), [(1, 2)], "the default stays");
        assert_eq!(ps.cap(1, T0, tx("8")), amps(16.0));
    }

    #[test]
    fn clearing_goes_by_id_else_by_every_criterion_given() {
        let fill = |ps: &mut Profiles| {
            *ps = Profiles::default();
            set(ps, 0, profile(1, Purpose::StationMax, 0, 32.0)).unwrap();
            set(ps, 0, profile(2, Purpose::TxDefault, 1, 16.0)).unwrap();
            set(ps, 1, profile(3, Purpose::TxDefault, 1, 16.0)).unwrap();
            set(ps, 1, profile(4, Purpose::Tx, 2, 10.0)).unwrap();
        };
        let mut ps = Profiles::default();
        fill(&mut ps);
        // The id alone decides, whatever else is given.
        let by_id = Clear {
            id: Some(3),
            connector: Some(0),
            ..Clear::default()
        };
        assert_eq!(ps.clear(by_id), 1);
        assert_eq!(ps.ids(), [(0, 1), (0, 2), (1, 4)]);
        assert_eq!(ps.clear(by_id), 0, "nothing left to clear: Unknown");
        fill(&mut ps);
        let on_0 = Clear {
            connector: Some(0),
            ..Clear::default()
        };
        assert_eq!(ps.clear(on_0), 2);
        fill(&mut ps);
        let defaults = Clear {
            purpose: Some(Purpose::TxDefault),
            ..Clear::default()
        };
        assert_eq!(ps.clear(defaults), 2);
        assert_eq!(ps.ids(), [(0, 1), (1, 4)]);
        fill(&mut ps);
        let level_1_on_1 = Clear {
            connector: Some(1),
            stack_level: Some(1),
            ..Clear::default()
        };
        assert_eq!(ps.clear(level_1_on_1), 1);
        assert_eq!(ps.ids(), [(0, 1), (0, 2), (1, 4)]);
        assert_eq!(ps.clear(Clear::default()), 3, "no criteria: all");
    }

    #[test]
    fn the_limit_is_the_maximum_with_the_tx_profile_else_the_connector_default_else_the_charger_default(
    ) {
        let mut ps = Profiles::default();
        set(&mut ps, 0, profile(1, Purpose::TxDefault, 0, 20.0)).unwrap();
        assert_eq!(ps.cap(1, T0, tx("7")), amps(20.0), "connector 0's default");
        set(&mut ps, 1, profile(2, Purpose::TxDefault, 0, 14.0)).unwrap();
        assert_eq!(
            ps.cap(1, T0, tx("7")),
            amps(14.0),
            "the connector's own default"
        );
        assert_eq!(
            ps.cap(2, T0, None),
            amps(20.0),
            "the other connector keeps connector 0's"
        );
        set(&mut ps, 1, profile(3, Purpose::Tx, 0, 18.0)).unwrap();
        assert_eq!(
            ps.cap(1, T0, tx("7")),
            amps(18.0),
            "the TxProfile, even above the default"
        );
        set(&mut ps, 0, profile(4, Purpose::StationMax, 0, 12.0)).unwrap();
        assert_eq!(
            ps.cap(1, T0, tx("7")),
            amps(12.0),
            "never above the maximum"
        );
        assert_eq!(ps.cap(2, T0, None), amps(12.0));
    }

    #[test]
    fn the_highest_stack_level_in_force_wins_and_an_expired_one_falls_back_to_the_next() {
        let mut ps = Profiles::default();
        set(&mut ps, 1, profile(1, Purpose::TxDefault, 0, 16.0)).unwrap();
        let mut high = profile(2, Purpose::TxDefault, 5, 8.0);
        high.valid_to_ms = Some(T0 + 60 * S);
        set(&mut ps, 1, high).unwrap();
        let mut later = profile(3, Purpose::TxDefault, 9, 6.0);
        later.valid_from_ms = Some(T0 + 30 * S);
        set(&mut ps, 1, later).unwrap();
        assert_eq!(ps.cap(1, T0, tx("7")), amps(8.0));
        assert_eq!(
            ps.cap(1, T0 + 30 * S, tx("7")),
            amps(6.0),
            "valid from now on"
        );
        ps.clear(Clear {
            id: Some(3),
            ..Clear::default()
        });
        assert_eq!(ps.cap(1, T0 + 60 * S - 1, tx("7")), amps(8.0));
        assert_eq!(
            ps.cap(1, T0 + 60 * S, tx("7")),
            amps(16.0),
            "validTo passed"
        );
        // An expired TxProfile falls back on the defaults.
        let mut short = profile(4, Purpose::Tx, 0, 7.0);
        short.duration_s = Some(5.0);
        set(&mut ps, 1, short).unwrap();
        assert_eq!(ps.cap(1, T0 + 4 * S, tx("7")), amps(7.0));
        assert_eq!(ps.cap(1, T0 + 5 * S, tx("7")), amps(8.0));
    }

    #[test]
    fn schedules_start_when_their_kind_says_and_run_period_by_period() {
        let periods = vec![
            Period {
                start_s: 0.0,
                limit: 16.0,
                phases: None,
            },
            Period {
                start_s: 600.0,
                limit: 10.0,
                phases: None,
            },
        ];
        // Absolute at startSchedule, for its duration.
        let mut ps = Profiles::default();
        let mut abs = profile(1, Purpose::TxDefault, 0, 0.0);
        abs.periods = periods.clone();
        abs.start_ms = Some(T0 + 100 * S);
        abs.duration_s = Some(1200.0);
        set(&mut ps, 2, abs).unwrap();
        assert_eq!(ps.cap(2, T0 + 99 * S, None), Cap::NONE, "not started");
        assert_eq!(ps.cap(2, T0 + 100 * S, None), amps(16.0));
        assert_eq!(ps.cap(2, T0 + 700 * S, None), amps(10.0));
        assert_eq!(
            ps.cap(2, T0 + 1300 * S, None),
            Cap::NONE,
            "past its duration"
        );
        // Relative: from the transaction's start.
        let mut ps = Profiles::default();
        let mut rel = profile(2, Purpose::TxDefault, 0, 0.0);
        rel.kind = Kind::Relative;
        rel.periods = periods.clone();
        set(&mut ps, 1, rel).unwrap();
        let started = |at: i64| {
            Some(ActiveTx {
                id: Some("7"),
                start_ms: at,
            })
        };
        assert_eq!(ps.cap(1, T0 + 1000 * S, started(T0 + 500 * S)), amps(16.0));
        assert_eq!(ps.cap(1, T0 + 1000 * S, started(T0)), amps(10.0));
        // Daily: the same schedule every day from startSchedule, also before it.
        let mut ps = Profiles::default();
        let mut daily = profile(3, Purpose::TxDefault, 0, 0.0);
        daily.kind = Kind::Daily;
        daily.periods = periods;
        daily.start_ms = Some(T0);
        daily.duration_s = Some(3600.0);
        set(&mut ps, 1, daily).unwrap();
        let day = 86_400 * S;
        assert_eq!(ps.cap(1, T0 + 2 * day + 60 * S, tx("7")), amps(16.0));
        assert_eq!(ps.cap(1, T0 + day + 700 * S, tx("7")), amps(10.0));
        assert_eq!(ps.cap(1, T0 - day + 60 * S, tx("7")), amps(16.0));
        assert_eq!(
            ps.cap(1, T0 + 2 * 3600 * S, tx("7")),
            Cap::NONE,
            "outside the hour"
        );
    }

    #[test]
    fn amps_are_per_phase_watts_are_shared_over_the_phases_used_and_under_6_a_the_ev_pauses() {
        let w = |watts: f64, phases: Option<u8>| {
            Cap::of(
                &Period {
                    start_s: 0.0,
                    limit: watts,
                    phases,
                },
                Unit::W,
            )
        };
        assert_eq!(amps(10.0).current(3, 16.0), (10.0, 3));
        assert_eq!(
            amps(20.0).current(1, 16.0),
            (16.0, 1),
            "the EV's own maximum"
        );
        assert_eq!(w(6900.0, None).current(3, 32.0), (10.0, 3));
        assert_eq!(w(6900.0, None).current(1, 32.0), (30.0, 1));
        assert_eq!(
            w(6900.0, Some(1)).current(3, 32.0),
            (30.0, 1),
            "numberPhases 1"
        );
        assert_eq!(amps(5.9).current(3, 16.0), (0.0, 3), "below 6 A: paused");
        assert_eq!(amps(0.0).current(3, 16.0), (0.0, 3));
        assert_eq!(amps(6.0).current(3, 16.0), (6.0, 3));
    }

    #[test]
    fn both_versions_messages_parse_and_a_malformed_one_says_why() {
        let v16 = json!({"chargingProfileId": 7, "transactionId": 42, "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Absolute",
            "validTo": "2026-11-30T07:00:10Z",
            "chargingSchedule": {"chargingRateUnit": "A", "duration": 30,
                "chargingSchedulePeriod": [{"startPeriod": 10, "limit": 8}, {"startPeriod": 0, "limit": 10.5, "numberPhases": 1}]}});
        let p = Profile::parse(&v16, true).unwrap();
        assert_eq!(
            (p.id, p.stack_level, p.purpose, p.kind),
            (7, 1, Purpose::Tx, Kind::Absolute)
        );
        assert_eq!(p.tx_id.as_deref(), Some("42"));
        assert_eq!(p.valid_to_ms, Some(T0 + 10 * S));
        assert_eq!(p.duration_s, Some(30.0));
        assert_eq!(p.periods[0].limit, 10.5, "periods in order of startPeriod");
        assert_eq!(p.periods[0].phases, Some(1));
        let v201 = json!({"id": 8, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Recurring", "recurrencyKind": "Weekly", "transactionId": "tx-1",
            "chargingSchedule": [{"id": 1, "startSchedule": "2026-11-30T08:00:00+01:00", "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000}]}]});
        let p = Profile::parse(&v201, false).unwrap();
        assert_eq!(
            (p.purpose, p.kind, p.unit),
            (Purpose::StationMax, Kind::Weekly, Unit::W)
        );
        assert_eq!(p.start_ms, Some(T0));
        assert_eq!(p.tx_id.as_deref(), Some("tx-1"));
        let mut bad = v16.clone();
        bad["chargingSchedule"]["chargingRateUnit"] = json!("kW");
        assert!(Profile::parse(&bad, true)
            .unwrap_err()
            .contains("chargingRateUnit"));
        let mut bad = v16.clone();
        bad["transactionId"] = json!("42");
        assert!(Profile::parse(&bad, true)
            .unwrap_err()
            .contains("transactionId"));
        let mut bad = v16;
        bad["chargingSchedule"]["chargingSchedulePeriod"] = json!([]);
        assert!(Profile::parse(&bad, true)
            .unwrap_err()
            .contains("chargingSchedulePeriod"));
        assert!(
            Profile::parse(&v201, true).is_err(),
            "a 2.0.1 profile is not a 1.6 one"
        );
    }

    #[test]
    fn date_times_parse_with_fractions_and_offsets() {
        assert_eq!(parse_time_ms("2026-11-30T07:00:00Z"), Some(T0));
        assert_eq!(parse_time_ms("2026-11-30T07:00:00.25Z"), Some(T0 + 250));
        assert_eq!(parse_time_ms("2026-11-30T07:00:00.123456Z"), Some(T0 + 123));
        assert_eq!(parse_time_ms("2026-11-30T02:00:00-05:00"), Some(T0));
        assert_eq!(parse_time_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_time_ms("1970-01-01T00:00:00.000Z"), Some(0));
        for bad in [
            "2026-11-30",
            "2026-13-01T00:00:00Z",
            "2026-11-30T07:00:00",
            "2026-11-30T07:00:00.Z",
            "x",
        ] {
            assert_eq!(parse_time_ms(bad), None, "{bad}");
        }
    }
}
