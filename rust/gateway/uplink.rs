//! Where one connection's events go in a gateway worker: up the link to the control plane, or into the
//! connection's parking while the link is full.

use std::collections::HashMap;

use std::net::SocketAddr;

use super::conn::ConnEvent;
use super::link::{self, LinkWriter};
use super::sys::monotonic_us;

/// Move a connection's parked messages onto the link (in order), ahead of anything it sends later.
pub fn unpark_into(link: &mut LinkWriter, id: u64, parked: &mut Vec<u8>) {
    let parked = std::mem::take(parked);
    let mut rest = &parked[..];
    while rest.len() >= 4 {
        let n = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        link.message(id, &rest[4..4 + n]);
        rest = &rest[4 + n..];
    }
}

/// Where one connection's events go: the link, or its parking while the link is full.
pub struct Uplink<'a> {
    pub link: &'a mut LinkWriter,
    pub by_id: &'a mut HashMap<u64, usize>,
    /// The charger's address, as accepted.
    pub peer: Option<SocketAddr>,
    pub parked: &'a mut Vec<u8>,
    pub id: u64,
    pub idx: usize,
    pub paused: bool,
    /// The worker's count of completed upgrades.
    pub upgrades: &'a mut u64,
}

impl Uplink<'_> {
    pub fn event(&mut self, ev: ConnEvent<'_>) {
        match ev {
            ConnEvent::Connected {
                charger,
                protocol,
                profile,
            } => {
                self.by_id.insert(self.id, self.idx);
                *self.upgrades += 1;
                let pnum = link::protocol_number(protocol).unwrap_or(link::PROTO_NONE);
                let peer = self.peer.map(|a| a.to_string()).unwrap_or_default();
                self.link
                    .connected(self.id, pnum, profile, charger, &peer, monotonic_us());
            }
            ConnEvent::Message(t) => {
                if self.paused || !self.parked.is_empty() {
                    // Behind messages already parked, or the link is full: keep the order.
                    self.parked
                        .extend_from_slice(&(t.len() as u32).to_le_bytes());
                    self.parked.extend_from_slice(t.as_bytes());
                } else {
                    self.link.message(self.id, t.as_bytes());
                }
            }
            // Not parked: a round trip is no message, and its order among them does not matter.
            ConnEvent::Pong { rtt_us } => self.link.pong(self.id, rtt_us, monotonic_us()),
            ConnEvent::Disconnected { code, reason } => {
                // Whatever the charger sent before goes up first, then its disconnect.
                unpark_into(self.link, self.id, self.parked);
                self.link
                    .disconnected(self.id, code, reason, monotonic_us());
            }
        }
    }
}
