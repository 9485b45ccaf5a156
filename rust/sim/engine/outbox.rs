//! What the chargers' protocol side asks of their links: OCPP-J messages to send and closes, each tagged with
//! the charger and the link epoch it was emitted on, in the order they were emitted.
//!
//! The protocol code (`calls`, `replies`, `commands`, `settings`, `behaviour`, `load`, `timers`) only appends
//! here; it never touches a socket, a write buffer or the frame encoder. The I/O shell (`link.rs`) drains the
//! outbox after each thing that can make the protocol speak (the texts of one read, a timer, the load's and the
//! connects' pumps, an upgrade) and before a frame of its own: it frames each output for its charger, drops
//! those whose link has died meanwhile (another epoch) and writes; a write that fails fails the link there.

use super::Sim;

/// One output of a charger's protocol side.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Output {
    /// An OCPP-J message; its text is in the outbox's arena.
    Text,
    /// Close the link with this code (the close handshake itself is the shell's).
    Close(u16),
}

#[derive(Clone, Copy)]
struct Entry {
    idx: u32,
    epoch: u32,
    output: Output,
    /// The text of a `Text`: `arena[start..end]`.
    start: usize,
    end: usize,
}

/// An output as the shell (or a test) reads it.
pub(super) struct Emitted<'a> {
    pub(super) idx: usize,
    pub(super) epoch: u32,
    pub(super) output: Output,
    /// The message of a `Text`; empty for a `Close`.
    pub(super) text: &'a str,
}

/// The outputs since the last drain: every text back to back in one arena and a small entry each, both kept
/// from one drain to the next (no allocation per message once they have grown).
#[derive(Default)]
pub(super) struct Outbox {
    arena: String,
    entries: Vec<Entry>,
}

/// Above this the arena is given back after a drain (a burst: the load starting on every charger at once).
const KEEP_ARENA: usize = 1 << 20;

impl Outbox {
    /// Append a message for charger `idx` on link `epoch`: `write` appends its text to the string it is given
    /// (and must not touch what is there already).
    pub(super) fn text(&mut self, idx: usize, epoch: u32, write: impl FnOnce(&mut String)) {
        let start = self.arena.len();
        write(&mut self.arena);
        debug_assert!(self.arena.len() >= start && self.arena.is_char_boundary(start));
        self.entries.push(Entry {
            idx: idx as u32,
            epoch,
            output: Output::Text,
            start,
            end: self.arena.len(),
        });
    }

    /// Append a close of charger `idx`'s link `epoch`.
    pub(super) fn close(&mut self, idx: usize, epoch: u32, code: u16) {
        let at = self.arena.len();
        self.entries.push(Entry {
            idx: idx as u32,
            epoch,
            output: Output::Close(code),
            start: at,
            end: at,
        });
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The `i`th output, in the order they were emitted.
    pub(super) fn get(&self, i: usize) -> Emitted<'_> {
        let e = self.entries[i];
        Emitted {
            idx: e.idx as usize,
            epoch: e.epoch,
            output: e.output,
            text: &self.arena[e.start..e.end],
        }
    }

    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = Emitted<'_>> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Forget every output, keeping the buffers unless a burst grew them.
    pub(super) fn clear(&mut self) {
        if self.arena.capacity() > KEEP_ARENA {
            *self = Self::default();
        } else {
            self.arena.clear();
            self.entries.clear();
        }
    }
}

impl Sim {
    /// Send an OCPP-J message on charger `idx`'s current link: `write` appends its text.
    pub(super) fn emit_text(&mut self, idx: usize, write: impl FnOnce(&mut String)) {
        let epoch = self.ch[idx].conn.epoch;
        self.outbox.text(idx, epoch, write);
    }

    /// Close charger `idx`'s current link with `code` (after what it sent before).
    pub(super) fn emit_close(&mut self, idx: usize, code: u16) {
        let epoch = self.ch[idx].conn.epoch;
        self.outbox.close(idx, epoch, code);
    }
}
