//! The gateway: worker processes that hold charger connections, and the control plane's hub that links them.

pub mod admission;
pub mod auth;
pub mod config;
pub mod conn;
pub mod error;
pub mod flow;
pub mod hub;
pub mod link;
pub mod listen;
pub mod stream;
pub mod sys;
pub mod throttle;
pub mod tls;
mod uplink;
pub mod worker;

#[cfg(test)]
mod tests_conn;
#[cfg(test)]
mod tests_loop;

pub use config::WorkerConfig;
pub use error::{GatewayError, LinkError};
pub use hub::{Hub, HubEvent};
pub use worker::Worker;
