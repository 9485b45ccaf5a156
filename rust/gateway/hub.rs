//! The control plane's end of the worker links: one background thread multiplexes every worker link into one
//! batched event stream for Python, and routes sends and closes to the worker that holds each connection.
//!
//! Python is never blocked by it: sends are appended to an in-memory batch and the thread is woken to write
//! them; events are collected into an inbox and Python is woken through an eventfd (one wake-up per batch, no
//! matter how many messages it carries). When the inbox holds more than `max_pending` bytes the thread stops
//! reading the links, the links' socket buffers fill, and the workers stop reading their chargers: TCP pushes
//! back all the way to the chargers instead of memory growing here.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token, Waker};

use super::error::{GatewayError, LinkError};
use super::link::{conn_id, Counts, Down, LinkReader, LinkWriter, UpRef};

const WAKER: Token = Token(usize::MAX);
const READ_CHUNK: usize = 256 << 10;

/// An event for Python. `worker` is the slot number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    Connected {
        conn_id: u64,
        protocol: u8,
        /// OCPP security profile of the connection (1–3).
        profile: u8,
        charger: String,
        peer: String,
        at_us: u64,
    },
    Message {
        conn_id: u64,
        data: Vec<u8>,
    },
    Disconnected {
        conn_id: u64,
        code: u16,
        reason: String,
        at_us: u64,
    },
    WorkerUp {
        worker: u8,
        generation: u16,
        pid: u32,
    },
    WorkerDown {
        worker: u8,
        generation: u16,
        reason: String,
    },
    Stats {
        worker: u8,
        connections: u32,
        paused: bool,
        heap_bytes: u64,
        counts: Counts,
    },
    Ack {
        worker: u8,
        seq: u64,
    },
    Pong {
        conn_id: u64,
        rtt_us: u32,
        at_us: u64,
    },
}

impl HubEvent {
    fn size(&self) -> usize {
        64 + match self {
            HubEvent::Message { data, .. } => data.len(),
            HubEvent::Connected { charger, peer, .. } => charger.len() + peer.len(),
            _ => 0,
        }
    }
}

#[derive(Default)]
struct Inbox {
    events: Vec<HubEvent>,
    bytes: usize,
    /// Python has been woken for what is in `events` and has not drained yet.
    notified: bool,
}

enum Control {
    Add {
        worker: u8,
        generation: u16,
        fd: RawFd,
    },
    Remove {
        worker: u8,
    },
}

#[derive(Default)]
struct Outbox {
    writers: HashMap<u8, LinkWriter>,
    control: Vec<Control>,
}

struct Shared {
    inbox: Mutex<Inbox>,
    outbox: Mutex<Outbox>,
    /// Python waits on this eventfd.
    wake_fd: OwnedFd,
    max_pending: usize,
    stop: AtomicBool,
    barrier_seq: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks is a bug; keep serving rather than cascade the poison.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn push(&self, evs: &mut Vec<HubEvent>) {
        if evs.is_empty() {
            return;
        }
        let mut inbox = lock(&self.inbox);
        for e in evs.drain(..) {
            inbox.bytes += e.size();
            inbox.events.push(e);
        }
        if !inbox.notified {
            inbox.notified = true;
            let one: u64 = 1;
            // SAFETY: writing 8 bytes to our own eventfd.
            unsafe {
                libc::write(
                    self.wake_fd.as_raw_fd(),
                    &one as *const u64 as *const libc::c_void,
                    8,
                )
            };
        }
    }

    fn backlogged(&self) -> bool {
        lock(&self.inbox).bytes > self.max_pending
    }
}

/// The multiplexer. Dropping it stops the thread.
pub struct Hub {
    shared: Arc<Shared>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Hub {
    /// Start the hub thread. `max_pending` bounds the bytes of events waiting for Python.
    pub fn new(max_pending: usize) -> Result<Self, GatewayError> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error().into());
        }
        // SAFETY: efd is a fresh descriptor we own.
        let wake_fd = unsafe { OwnedFd::from_raw_fd(efd) };
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            outbox: Mutex::new(Outbox::default()),
            wake_fd,
            max_pending,
            stop: AtomicBool::new(false),
            barrier_seq: AtomicU64::new(0),
        });
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ampgate-hub".into())
            .spawn(move || run(poll, s2))
            .map_err(GatewayError::Io)?;
        Ok(Self {
            shared,
            waker,
            thread: Some(thread),
        })
    }

    /// The eventfd that becomes readable when events are waiting.
    pub fn wake_fd(&self) -> RawFd {
        self.shared.wake_fd.as_raw_fd()
    }

    /// Take every waiting event (and clear the wake-up).
    pub fn drain(&self) -> Vec<HubEvent> {
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes from our own non-blocking eventfd; EAGAIN is fine.
        unsafe {
            libc::read(
                self.shared.wake_fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                8,
            )
        };
        let (events, was_backlogged) = {
            let mut inbox = lock(&self.shared.inbox);
            let was = inbox.bytes > self.shared.max_pending;
            inbox.bytes = 0;
            inbox.notified = false;
            (std::mem::take(&mut inbox.events), was)
        };
        if was_backlogged {
            // The thread stopped reading links; tell it there is room again.
            let _ = self.waker.wake();
        }
        events
    }

    /// Take over `fd` (one end of a socketpair whose other end the worker holds) as worker `worker`'s link.
    pub fn add_worker(&self, worker: u8, generation: u16, fd: RawFd) {
        let mut out = lock(&self.shared.outbox);
        out.writers.insert(worker, LinkWriter::new());
        out.control.push(Control::Add {
            worker,
            generation,
            fd,
        });
        drop(out);
        let _ = self.waker.wake();
    }

    /// Forget a worker's link (its process is gone or being replaced).
    pub fn remove_worker(&self, worker: u8) {
        let mut out = lock(&self.shared.outbox);
        out.writers.remove(&worker);
        out.control.push(Control::Remove { worker });
        drop(out);
        let _ = self.waker.wake();
    }

    /// Append to the batches of the workers concerned, then wake the thread once.
    ///
    /// `f` gets the outbox's writers; records for a worker that is not linked are dropped (its connections
    /// are gone, and Python hears `WorkerDown`).
    pub fn with_writers(&self, f: impl FnOnce(&mut HashMap<u8, LinkWriter>)) {
        let mut out = lock(&self.shared.outbox);
        f(&mut out.writers);
        drop(out);
        let _ = self.waker.wake();
    }

    /// Send text messages: `(conn_id, bytes)`.
    pub fn send<'a>(&self, batch: impl IntoIterator<Item = (u64, &'a [u8])>) {
        self.with_writers(|w| {
            for (id, data) in batch {
                if let Some(lw) = w.get_mut(&conn_id::worker(id)) {
                    lw.send(id, data);
                }
            }
        });
    }

    /// Close connections: `(conn_id, code, reason)`.
    pub fn close<'a>(&self, batch: impl IntoIterator<Item = (u64, u16, &'a str)>) {
        self.with_writers(|w| {
            for (id, code, reason) in batch {
                if let Some(lw) = w.get_mut(&conn_id::worker(id)) {
                    lw.close(id, code, reason);
                }
            }
        });
    }

    /// Send a control record to one worker, or to all when `worker` is None.
    pub fn control(&self, worker: Option<u8>, rec: &Down) {
        self.with_writers(|w| {
            for (slot, lw) in w.iter_mut() {
                if worker.is_none_or(|x| x == *slot) {
                    lw.down(rec);
                }
            }
        });
    }

    /// Queue a barrier to one worker or all; each answers `Ack { seq }` once everything before it is applied.
    pub fn barrier(&self, worker: Option<u8>) -> u64 {
        let seq = self.shared.barrier_seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.control(worker, &Down::Barrier { seq });
        seq
    }

    /// Workers currently linked.
    pub fn workers(&self) -> Vec<u8> {
        let mut v: Vec<u8> = lock(&self.shared.outbox).writers.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct LinkState {
    stream: UnixStream,
    generation: u16,
    reader: LinkReader,
    writer: LinkWriter,
    /// Readable edge seen but not drained because Python is behind.
    unread: bool,
}

fn run(mut poll: Poll, shared: Arc<Shared>) {
    let mut events = Events::with_capacity(256);
    let mut links: HashMap<u8, LinkState> = HashMap::new();
    let mut out_events: Vec<HubEvent> = Vec::new();
    loop {
        let more = !shared.backlogged() && links.values().any(|l| l.unread);
        let timeout = if more {
            Some(std::time::Duration::ZERO)
        } else {
            None
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                // Should never happen (epoll_wait fails only on bad arguments); keep serving rather than leave
                // Python without events, without spinning.
                eprintln!("ampgate hub: poll failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            continue;
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        // Control changes and outgoing batches.
        let (controls, mut outgoing) = {
            let mut out = lock(&shared.outbox);
            let controls = std::mem::take(&mut out.control);
            let mut outgoing: Vec<(u8, LinkWriter)> = Vec::new();
            for (slot, w) in out.writers.iter_mut() {
                if !w.is_empty() {
                    let mut taken = std::mem::take(w);
                    taken.seal();
                    outgoing.push((*slot, taken));
                }
            }
            (controls, outgoing)
        };
        for c in controls {
            match c {
                Control::Add {
                    worker,
                    generation,
                    fd,
                } => {
                    // SAFETY: Python handed this descriptor over to the hub.
                    let s = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
                    if s.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let mut stream = UnixStream::from_std(s);
                    if poll
                        .registry()
                        .register(
                            &mut stream,
                            Token(worker as usize),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_err()
                    {
                        continue;
                    }
                    if let Some(mut old) = links.insert(
                        worker,
                        LinkState {
                            stream,
                            generation,
                            reader: LinkReader::new(),
                            writer: LinkWriter::new(),
                            unread: true,
                        },
                    ) {
                        let _ = poll.registry().deregister(&mut old.stream);
                    }
                }
                Control::Remove { worker } => {
                    if let Some(mut old) = links.remove(&worker) {
                        let _ = poll.registry().deregister(&mut old.stream);
                    }
                }
            }
        }
        for (slot, batches) in outgoing.drain(..) {
            if let Some(l) = links.get_mut(&slot) {
                if l.writer.is_empty() {
                    l.writer = batches;
                } else {
                    l.writer.extend_sealed(batches.pending());
                }
            }
        }
        for ev in events.iter() {
            if ev.token() == WAKER {
                continue;
            }
            if let Some(l) = links.get_mut(&(ev.token().0 as u8)) {
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    l.unread = true;
                }
            }
        }
        let backlogged = shared.backlogged();
        let mut dead: Vec<(u8, String)> = Vec::new();
        for (&slot, l) in links.iter_mut() {
            if let Err(e) = flush(l) {
                dead.push((slot, e.to_string()));
                continue;
            }
            if l.unread && !backlogged {
                l.unread = false;
                if let Err(e) = read_link(slot, l, &mut out_events) {
                    dead.push((slot, e.to_string()));
                }
            }
        }
        for (slot, reason) in dead {
            if let Some(mut l) = links.remove(&slot) {
                let _ = poll.registry().deregister(&mut l.stream);
                out_events.push(HubEvent::WorkerDown {
                    worker: slot,
                    generation: l.generation,
                    reason,
                });
            }
        }
        shared.push(&mut out_events);
    }
}

fn flush(l: &mut LinkState) -> Result<(), LinkError> {
    while !l.writer.pending().is_empty() {
        match l.stream.write(l.writer.pending()) {
            Ok(n) => l.writer.consume(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn read_link(slot: u8, l: &mut LinkState, out: &mut Vec<HubEvent>) -> Result<(), LinkError> {
    let mut eof = false;
    let mut taken = 0usize;
    loop {
        let spare = l.reader.spare(READ_CHUNK);
        let spare_len = spare.len();
        match l.stream.read(spare) {
            Ok(0) => {
                l.reader.filled(0, spare_len);
                eof = true;
                break;
            }
            Ok(n) => {
                l.reader.filled(n, spare_len);
                taken += n;
                // Bound one pass so a flood from one worker leaves room for the others and for Python.
                if taken >= 8 * READ_CHUNK {
                    l.unread = true;
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                l.reader.filled(0, spare_len);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => l.reader.filled(0, spare_len),
            Err(e) => {
                l.reader.filled(0, spare_len);
                return Err(e.into());
            }
        }
    }
    while let Some(mut batch) = l.reader.next_batch()? {
        while let Some(rec) = batch.next_up()? {
            out.push(match rec {
                UpRef::Hello { pid } => HubEvent::WorkerUp {
                    worker: slot,
                    generation: l.generation,
                    pid,
                },
                UpRef::Connected {
                    conn_id,
                    protocol,
                    profile,
                    charger,
                    peer,
                    at_us,
                } => HubEvent::Connected {
                    conn_id,
                    protocol,
                    profile,
                    charger: charger.into(),
                    peer: peer.into(),
                    at_us,
                },
                UpRef::Message { conn_id, data } => HubEvent::Message {
                    conn_id,
                    data: data.to_vec(),
                },
                UpRef::Disconnected {
                    conn_id,
                    code,
                    reason,
                    at_us,
                } => HubEvent::Disconnected {
                    conn_id,
                    code,
                    reason: reason.into(),
                    at_us,
                },
                UpRef::Stats {
                    connections,
                    paused,
                    heap_bytes,
                    counts,
                } => HubEvent::Stats {
                    worker: slot,
                    connections,
                    paused,
                    heap_bytes,
                    counts,
                },
                UpRef::Ack { seq } => HubEvent::Ack { worker: slot, seq },
                UpRef::Pong {
                    conn_id,
                    rtt_us,
                    at_us,
                } => HubEvent::Pong {
                    conn_id,
                    rtt_us,
                    at_us,
                },
            });
        }
    }
    l.reader.shrink_if_idle();
    if eof {
        return Err(LinkError::Closed);
    }
    Ok(())
}
