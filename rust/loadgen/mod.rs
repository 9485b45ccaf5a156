//! The load generator: many client WebSocket connections in one process, driven by one mio event loop over
//! the client side of the same sans-I/O codec the gateway uses. It is the mirror image of a gateway worker
//! (shared read scratch, direct writes, a queue only on EAGAIN) and the seed of the fleet simulator.
//!
//! A run is a sequence of phases, each a method that drives the loop until done or a deadline and returns a
//! report: [`LoadGen::connect_and_boot`], [`LoadGen::hold`], [`LoadGen::heartbeats`], [`LoadGen::close`].

pub(crate) mod client;
mod config;
pub(crate) mod ocpp;

pub use crate::client::{ClientError, Histogram, Protocol};
pub use client::{BootReport, CloseReport, HeartbeatReport, HoldReport, LoadGen};
pub use config::LoadGenConfig;
