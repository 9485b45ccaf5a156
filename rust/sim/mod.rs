//! The charger-fleet simulator's engine: many simulated chargers in one process, each an OCPP state machine
//! (1.6J or 2.0.1) over a client WebSocket of our own codec, driven by one mio loop and a timer heap. Python
//! compiles a scenario into a [`SimConfig`] and per-charger traits, runs [`Sim::run`] in slices, checks the
//! CSMS's messages against the schemas and merges the reports of several processes.

mod config;
mod engine;
pub mod ev;
mod msg;
pub mod profiles;

pub use config::{
    FailStep, LoadMessage, SimConfig, TRAIT_FLAP, TRAIT_FW_FAIL, TRAIT_NO_ANSWER, TRAIT_SLOW_READ,
};
pub use engine::{version_from_location, Check, LoadWindow, Sim, SimStats};
pub use msg::Action;
