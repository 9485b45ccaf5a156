//! Electric vehicles that draw like real ones, for load-management and pricing tests (pure): on one phase (L1,
//! L2 or L3) or three, up to a maximum current, tapering above a state of charge until full, never below the 6 A
//! an EV can charge at (IEC 61851: it pauses instead), with a battery, a state of charge at arrival and,
//! optionally, a departure time and an energy need (what a 2.0.1 charger reports with NotifyEVChargingNeeds).
//! A run's EVs are picked from a mix of profiles by weight, with the run's seeded random numbers. What the
//! charger lets one take (its rating, the charging profiles in force) comes as a [`Cap`] (see `profiles.rs`).

use super::profiles::Cap;

/// Line-to-neutral voltage every simulated EV charges at.
pub const VOLTAGE: f64 = 230.0;
/// Below this current an EV cannot charge (IEC 61851): it takes nothing instead.
pub const MIN_CURRENT_A: f64 = 6.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phases {
    L1,
    L2,
    L3,
    Three,
}

impl Phases {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "L1" => Phases::L1,
            "L2" => Phases::L2,
            "L3" => Phases::L3,
            "3" | "three" | "L1L2L3" => Phases::Three,
            _ => return None,
        })
    }

    /// The phases it can charge on.
    pub fn count(self) -> u8 {
        if self == Phases::Three {
            3
        } else {
            1
        }
    }

    /// `amps` on the phases used (a three-phase EV held to fewer phases by the charger uses L1 first, then
    /// L2), 0 on the others.
    pub fn place(self, amps: f64, used: u8) -> [f64; 3] {
        match self {
            Phases::L1 => [amps, 0.0, 0.0],
            Phases::L2 => [0.0, amps, 0.0],
            Phases::L3 => [0.0, 0.0, amps],
            Phases::Three => [0, 1, 2].map(|i| if i < used { amps } else { 0.0 }),
        }
    }
}

/// One kind of EV in a run's mix.
#[derive(Clone, Debug, PartialEq)]
pub struct EvProfile {
    /// Relative share of the mix.
    pub weight: f64,
    pub phases: Phases,
    pub max_current_a: f64,
    pub capacity_wh: f64,
    /// State of charge at arrival, percent.
    pub soc_start: f64,
    /// Above this state of charge (percent) the current tapers linearly to nothing at 100 %.
    pub taper_soc: f64,
    /// Seconds after the transaction starts at which the driver leaves (reported as the departure time).
    pub departure_after_s: Option<f64>,
    /// Energy the driver wants (reported as the energy amount).
    pub energy_need_wh: Option<f64>,
}

impl EvProfile {
    /// The first field that does not make sense, with why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let bad = |k: &'static str, why: &str| Err((k, why.to_string()));
        if !(self.weight > 0.0 && self.weight.is_finite()) {
            return bad("weight", "must be above 0");
        }
        if !(self.max_current_a >= MIN_CURRENT_A && self.max_current_a <= 1000.0) {
            return bad("max_current_a", "must be 6 to 1000 A");
        }
        if !(self.capacity_wh > 0.0 && self.capacity_wh.is_finite()) {
            return bad("capacity_wh", "must be above 0");
        }
        if !(0.0..=100.0).contains(&self.soc_start) {
            return bad("soc_start", "must be 0 to 100");
        }
        if !(0.0..100.0).contains(&self.taper_soc) {
            return bad("taper_soc", "must be 0 to below 100");
        }
        if self
            .departure_after_s
            .is_some_and(|d| !(d > 0.0 && d.is_finite()))
        {
            return bad("departure_after_s", "must be above 0");
        }
        if self
            .energy_need_wh
            .is_some_and(|e| !(e > 0.0 && e.is_finite()))
        {
            return bad("energy_need_wh", "must be above 0");
        }
        Ok(())
    }
}

/// The profile `r` (uniform in [0, 1)) picks from `mix` by weight; None for an empty mix.
pub fn pick(mix: &[EvProfile], r: f64) -> Option<&EvProfile> {
    let total: f64 = mix.iter().map(|p| p.weight).sum();
    let mut at = r * total;
    for p in mix {
        if at < p.weight {
            return Some(p);
        }
        at -= p.weight;
    }
    mix.last()
}

/// An EV plugged in for one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Ev {
    pub profile: EvProfile,
}

impl Ev {
    pub fn new(profile: &EvProfile) -> Self {
        Self {
            profile: profile.clone(),
        }
    }

    /// State of charge (percent) after taking `energy_wh` since it arrived.
    pub fn soc(&self, energy_wh: f64) -> f64 {
        (self.profile.soc_start + energy_wh / self.profile.capacity_wh * 100.0).min(100.0)
    }

    /// The current it takes on each phase (L1, L2, L3) at state of charge `soc` under the charger's `cap`
    /// (its rating and the charging profiles in force): what it accepts at that charge (its maximum, tapering
    /// above `taper_soc`), held to the cap; nothing below 6 A.
    pub fn currents(&self, soc: f64, cap: Cap) -> [f64; 3] {
        let p = &self.profile;
        let accepts = if soc >= 100.0 {
            0.0
        } else if soc > p.taper_soc {
            p.max_current_a * (100.0 - soc) / (100.0 - p.taper_soc)
        } else {
            p.max_current_a
        };
        let (amps, used) = cap.current(p.phases.count(), accepts);
        p.phases.place(amps, used)
    }
}

/// The power of `currents` (one per phase) at [`VOLTAGE`].
pub fn power_w(currents: [f64; 3]) -> f64 {
    currents.iter().sum::<f64>() * VOLTAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(phases: Phases) -> EvProfile {
        EvProfile {
            weight: 1.0,
            phases,
            max_current_a: 16.0,
            capacity_wh: 60_000.0,
            soc_start: 20.0,
            taper_soc: 80.0,
            departure_after_s: None,
            energy_need_wh: None,
        }
    }

    #[test]
    fn one_phase_evs_draw_on_their_phase_only_and_three_phase_ones_on_all() {
        assert_eq!(
            Ev::new(&profile(Phases::L2)).currents(50.0, Cap::watts(22_000.0)),
            [0.0, 16.0, 0.0]
        );
        assert_eq!(
            Ev::new(&profile(Phases::L3)).currents(50.0, Cap::watts(22_000.0)),
            [0.0, 0.0, 16.0]
        );
        assert_eq!(
            Ev::new(&profile(Phases::Three)).currents(50.0, Cap::watts(22_000.0)),
            [16.0; 3]
        );
        assert_eq!(power_w([16.0; 3]), 16.0 * 3.0 * VOLTAGE);
    }

    #[test]
    fn the_charger_offer_caps_it_and_below_6_a_it_pauses() {
        let ev = Ev::new(&profile(Phases::Three));
        let ten_amps = 10.0 * 3.0 * VOLTAGE;
        assert_eq!(ev.currents(50.0, Cap::watts(ten_amps)), [10.0; 3]);
        assert_eq!(ev.currents(50.0, Cap::watts(5.0 * 3.0 * VOLTAGE)), [0.0; 3]);
        assert_eq!(ev.currents(50.0, Cap::watts(0.0)), [0.0; 3]);
    }

    #[test]
    fn a_cap_on_the_phases_holds_a_three_phase_ev_to_l1_first_and_a_watt_limit_follows_the_phases_used(
    ) {
        let three = Ev::new(&profile(Phases::Three));
        let one_phase = Cap {
            phases: 1,
            ..Cap::NONE
        };
        assert_eq!(three.currents(50.0, one_phase), [16.0, 0.0, 0.0]);
        let two = Cap {
            phases: 2,
            ..Cap::watts(2.0 * 10.0 * VOLTAGE)
        };
        assert_eq!(three.currents(50.0, two), [10.0, 10.0, 0.0]);
        // A one-phase EV is not moved by a phase cap, and takes a W limit on its one phase.
        let l3 = Ev::new(&profile(Phases::L3));
        assert_eq!(
            l3.currents(50.0, Cap::watts(10.0 * VOLTAGE)),
            [0.0, 0.0, 10.0]
        );
    }

    #[test]
    fn tapering_lowers_what_it_accepts_not_the_limit() {
        // At 90 % it accepts 8 A of its 16: a 10 A limit leaves it at 8, a 7 A one holds it to 7.
        let ev = Ev::new(&profile(Phases::L1));
        let amps = |a: f64| Cap {
            amps: a,
            ..Cap::NONE
        };
        assert_eq!(ev.currents(90.0, amps(10.0))[0], 8.0);
        assert_eq!(ev.currents(90.0, amps(7.0))[0], 7.0);
    }

    #[test]
    fn it_tapers_above_its_soc_and_stops_when_full() {
        let ev = Ev::new(&profile(Phases::L1));
        assert_eq!(ev.currents(80.0, Cap::watts(1e6))[0], 16.0);
        assert_eq!(ev.currents(90.0, Cap::watts(1e6))[0], 8.0); // half-way from 80 to 100 %
        assert_eq!(ev.currents(95.0, Cap::watts(1e6))[0], 0.0); // 4 A would be below 6 A
        assert_eq!(ev.currents(100.0, Cap::watts(1e6))[0], 0.0);
        assert_eq!(ev.soc(0.0), 20.0);
        assert_eq!(ev.soc(30_000.0), 70.0);
        assert_eq!(ev.soc(1e9), 100.0);
    }

    #[test]
    fn the_mix_is_picked_by_weight() {
        let mut a = profile(Phases::L1);
        a.weight = 3.0;
        let mut b = profile(Phases::Three);
        b.weight = 1.0;
        let mix = [a.clone(), b.clone()];
        assert_eq!(pick(&mix, 0.0), Some(&a));
        assert_eq!(pick(&mix, 0.74), Some(&a));
        assert_eq!(pick(&mix, 0.76), Some(&b));
        assert_eq!(pick(&[], 0.5), None);
    }

    #[test]
    fn a_profile_that_makes_no_sense_names_its_field() {
        let mut p = profile(Phases::L1);
        p.max_current_a = 4.0;
        assert_eq!(p.check().unwrap_err().0, "max_current_a");
        let mut p = profile(Phases::L1);
        p.taper_soc = 100.0;
        assert_eq!(p.check().unwrap_err().0, "taper_soc");
        assert!(profile(Phases::L1).check().is_ok());
    }
}
