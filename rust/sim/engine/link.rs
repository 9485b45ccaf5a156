//! A charger's link, the I/O shell around its protocol: connecting, the WebSocket upgrade, reading frames,
//! writing out what the protocol emitted (the outbox's drain), the close handshake, and losing the link.

use super::outbox::Output;
use super::*;
use crate::client::stream::{tls_io_reason, Handshake};
use openssl::ssl::ShutdownState;

impl Sim {
    // -- connecting ----------------------------------------------------------------------------------------

    pub(super) fn pump_connects(&mut self, now: u64) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        while self.inflight < self.cfg.max_inflight {
            if self.cfg.connect_rate > 0.0 {
                let due = (self.cfg.connect_rate * now as f64 / 1e6) as u64 + 1;
                if self.connects_started >= due {
                    break;
                }
            }
            let Some(idx) = self.connect_wait.pop_front() else {
                break;
            };
            let idx = idx as usize;
            if matches!(self.ch[idx].conn.link, Link::Down) {
                self.connects_started += 1;
                self.start_connect(idx);
            }
        }
    }

    pub(super) fn start_connect(&mut self, idx: usize) {
        let now = self.now_us();
        self.r.first_connect_us.get_or_insert(now);
        self.ch[idx].connect_started_us = now;
        match connect(self.cfg.target, self.cfg.source_ip(idx)) {
            Ok(mut sock) => {
                if let Err(e) = self.poll.registry().register(
                    &mut sock,
                    Token(idx),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    self.error(E_CONNECT, &format!("register: {e}"));
                    let wait = self.backoff();
                    self.after(wait, idx, Timer::Connect);
                    return;
                }
                let c = &mut self.ch[idx];
                c.conn.sock = Some(Stream::Plain(sock));
                c.conn.link = Link::Connecting;
                let e = c.conn.epoch;
                self.inflight += 1;
                self.after(self.cfg.call_timeout, idx, Timer::Handshake { epoch: e });
            }
            Err(e) => {
                self.error(E_CONNECT, &connect_failure(&e));
                let wait = self.backoff();
                self.after(wait, idx, Timer::Connect);
            }
        }
    }

    pub(super) fn finish_connect(&mut self, idx: usize) {
        let Some(Stream::Plain(sock)) = self.ch[idx].conn.sock.as_ref() else {
            return;
        };
        match net::connected(sock) {
            Ok(true) => {}
            Ok(false) => return, // Not yet: wait for the next event.
            Err(e) => return self.fail_link(idx, E_CONNECT, &connect_failure(&e)),
        }
        if self.tls.is_some() {
            return self.start_tls(idx);
        }
        self.send_upgrade(idx);
    }

    /// wss://: begin the TLS handshake on the connected socket, with the charger's own certificate (issued
    /// at its first connect when the run gives each charger one) and offering its last session.
    fn start_tls(&mut self, idx: usize) {
        let Some(tls) = self.tls.as_ref() else {
            return;
        };
        if tls.issues_identities() && self.identities[idx].is_none() {
            match tls.issue(&self.cfg.charger_id(idx)) {
                Some(Ok(id)) => self.identities[idx] = Some(id),
                Some(Err(e)) => {
                    return self.fail_link(idx, E_TLS, &format!("issuing a certificate: {e}"))
                }
                None => {}
            }
        }
        let Some(Ok(sock)) = self.ch[idx].conn.sock.take().map(Stream::into_plain) else {
            return;
        };
        let identity = self.identities.get(idx).and_then(Option::as_ref);
        let session = self.sessions[idx].as_deref();
        match tls.start(sock, identity, session) {
            Ok(stream) => {
                let c = &mut self.ch[idx];
                c.conn.sock = Some(stream);
                c.conn.link = Link::Securing;
                self.tls_step(idx);
            }
            Err(why) => {
                // The socket is gone (closed, so out of the poll): a stand-in keeps fail_link's accounting.
                self.ch[idx].conn.sock = Some(Stream::Handshaking(None));
                self.ch[idx].conn.link = Link::Securing;
                self.fail_link(idx, E_TLS, &why);
            }
        }
    }

    /// Drive the TLS handshake; once it is through, the upgrade request goes out as on ws://.
    pub(super) fn tls_step(&mut self, idx: usize) {
        let Some(sock) = self.ch[idx].conn.sock.as_mut() else {
            return;
        };
        match sock.handshake() {
            Handshake::Pending => {}
            Handshake::Done { resumed } => {
                if resumed {
                    self.r.tls_resumed += 1;
                } else {
                    self.r.tls_full += 1;
                }
                self.send_upgrade(idx);
            }
            Handshake::Failed(why) => self.fail_link(idx, E_TLS, &why),
        }
    }

    /// The TLS session the server gave this link, kept for the charger's next connect. Taken when the
    /// upgrade's answer arrives: a TLS 1.3 server's session tickets come before it.
    fn keep_session(&mut self, idx: usize) {
        let ssl = self.ch[idx].conn.sock.as_ref().and_then(Stream::ssl);
        if let (Some(ssl), Some(slot)) = (ssl, self.sessions.get_mut(idx)) {
            *slot = ssl.session().map(|s| s.to_owned());
        }
    }

    /// The upgrade request (the TCP connect, and on wss:// the TLS handshake, are through).
    fn send_upgrade(&mut self, idx: usize) {
        let id = self.cfg.charger_id(idx);
        let mut req = std::mem::take(&mut self.frame);
        let key = net::upgrade_request(
            &mut req,
            &mut self.rng,
            &self.host_header,
            &self.cfg.path_prefix,
            &id,
            self.cfg.protocol,
            self.cfg.password.as_deref(),
        );
        self.ch[idx].conn.link = Link::Upgrading {
            key,
            buf: Vec::new(),
        };
        self.write(idx, &req);
        self.frame = req;
    }

    /// The upgrade is through: the link is open, and the protocol takes it from here ([`Sim::link_up`]).
    pub(super) fn on_upgraded(&mut self, idx: usize) {
        let now = self.now_us();
        self.inflight -= 1;
        self.open += 1;
        self.r.connects += 1;
        let c = &mut self.ch[idx];
        c.conn.link = Link::Open;
        c.conn.decoder = Decoder::new(Role::Client, self.cfg.max_message);
        self.r
            .connect_latency
            .record(now.saturating_sub(c.connect_started_us));
        self.link_up(idx);
    }

    // -- the socket ----------------------------------------------------------------------------------------

    pub(super) fn turn(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        match self.poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.events = events;
                return Err(e.into());
            }
        }
        for ev in events.iter() {
            let idx = ev.token().0;
            if idx >= self.ch.len() || self.ch[idx].conn.sock.is_none() {
                continue;
            }
            let read_closed = ev.is_read_closed();
            if matches!(self.ch[idx].conn.link, Link::Connecting) {
                if ev.is_writable() || ev.is_error() || read_closed || ev.is_write_closed() {
                    self.finish_connect(idx);
                }
                continue;
            }
            if matches!(self.ch[idx].conn.link, Link::Securing) {
                self.tls_step(idx);
                continue;
            }
            if ev.is_writable() {
                self.flush(idx);
            }
            if ev.is_readable() || read_closed || ev.is_error() {
                self.read(idx, read_closed || ev.is_error(), false);
            }
        }
        self.events = events;
        // Reads drain what they make the protocol emit; this catches whatever else an event made it emit.
        self.drain();
        Ok(())
    }

    pub(super) fn read(&mut self, idx: usize, to_eof: bool, resumed: bool) {
        let slow = self.ch[idx].traits & TRAIT_SLOW_READ != 0
            && matches!(self.ch[idx].conn.link, Link::Open);
        // A short read drains a plain socket; TLS reads a record at a time, and what OpenSSL left in the socket
        // gets no new edge from the poll: read on to WouldBlock.
        let tls = self.tls.is_some();
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(sock) = self.ch[idx].conn.sock.as_mut() {
            match sock.read(&mut scratch) {
                Ok(0) => {
                    self.on_eof(idx);
                    break;
                }
                Ok(n) => {
                    self.on_bytes(idx, &mut scratch[..n]);
                    if slow {
                        break;
                    }
                    if n < scratch.len() && !to_eof && !tls {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.socket_failed(idx, "read", &e);
                    break;
                }
            }
        }
        self.scratch = scratch;
        // A slow reader takes one read, then stops reading for a while (TCP pushes back on the CSMS).
        let _ = resumed;
        if slow && matches!(self.ch[idx].conn.link, Link::Open) {
            if let Some(sock) = self.ch[idx].conn.sock.as_mut().and_then(Stream::tcp_mut) {
                let _ = self
                    .poll
                    .registry()
                    .reregister(sock, Token(idx), Interest::WRITABLE);
                let e = self.ch[idx].conn.epoch;
                self.after(self.cfg.slow_pause, idx, Timer::SlowResume { epoch: e });
            }
        }
    }

    /// A slow reader's pause is over: it reads again.
    pub(super) fn slow_resume(&mut self, idx: usize) {
        if let Some(sock) = self.ch[idx].conn.sock.as_mut().and_then(Stream::tcp_mut) {
            let _ = self.poll.registry().reregister(
                sock,
                Token(idx),
                Interest::READABLE | Interest::WRITABLE,
            );
        }
        self.read(idx, false, true);
    }

    pub(super) fn on_eof(&mut self, idx: usize) {
        match self.ch[idx].conn.link {
            Link::Closing { .. } => self.closed(idx),
            // See `read`: how a TLS 1.3 server's refusal of the client's certificate can look.
            Link::Upgrading { .. } if self.tls.is_some() => {
                self.fail_link(idx, E_TLS, "tls: closed before the upgrade's answer")
            }
            _ => self.fail_link(idx, E_CLOSE, "connection closed without a close frame"),
        }
    }

    pub(super) fn on_bytes(&mut self, idx: usize, data: &mut [u8]) {
        match self.ch[idx].conn.link {
            Link::Upgrading { .. } => self.on_upgrade_bytes(idx, data),
            Link::Open | Link::Closing { .. } => self.on_frames(idx, data),
            Link::Down | Link::Connecting | Link::Securing => {}
        }
    }

    pub(super) fn on_upgrade_bytes(&mut self, idx: usize, data: &mut [u8]) {
        let Link::Upgrading { key, buf } = &mut self.ch[idx].conn.link else {
            return;
        };
        match net::feed_upgrade(buf, data, key) {
            Ok(None) => {}
            Ok(Some((resp, mut rest))) => {
                if self.tls.is_some() {
                    self.keep_session(idx);
                }
                if resp.status == 503 {
                    return self.refused_busy(idx, resp.retry_after);
                }
                if resp.status != 101 {
                    return self.fail_link(idx, E_HANDSHAKE, &format!("http {}", resp.status));
                }
                if resp.protocol.as_deref() != Some(self.cfg.protocol.name()) {
                    return self.fail_link(idx, E_HANDSHAKE, "subprotocol not agreed");
                }
                self.on_upgraded(idx);
                self.drain();
                // Unless writing the boot failed the link, what came with the 101 is the CSMS's first frames.
                if !rest.is_empty() && self.ch[idx].conn.sock.is_some() {
                    self.on_frames(idx, &mut rest);
                }
            }
            Err(e) => self.fail_link(idx, E_HANDSHAKE, e.reason),
        }
    }

    pub(super) fn on_frames(&mut self, idx: usize, data: &mut [u8]) {
        // Frames are decoded first and handled after, since handling needs `self` mutably.
        let mut texts: Vec<String> = Vec::new();
        let mut pings: Vec<Vec<u8>> = Vec::new();
        let mut close: Option<Option<u16>> = None;
        let mut binary = false;
        let res = self.ch[idx].conn.decoder.feed(data, &mut |ev| match ev {
            Event::Text(t) => texts.push(t.to_owned()),
            Event::Binary(_) => binary = true,
            Event::Ping(p) => pings.push(p.to_vec()),
            Event::Pong(_) => {}
            Event::Close(code, _) => close = Some(code),
        });
        for p in pings {
            self.write_frame(idx, OpCode::Pong, &p);
        }
        for t in texts {
            // A link gone already (a pong's write failed) takes no more. Handling a text cannot lose the link:
            // what the protocol sends is written at the drain below.
            if self.ch[idx].conn.sock.is_none() {
                return;
            }
            self.r.received += 1;
            self.on_text(idx, &t);
        }
        self.drain();
        if self.ch[idx].conn.sock.is_none() {
            return; // A write of the drain failed the link.
        }
        if binary {
            self.error(E_PROTOCOL, "binary frame from the CSMS");
        }
        if let Err(e) = res {
            self.write_close(idx, e.close_code);
            return self.fail_link(idx, E_PROTOCOL, e.reason);
        }
        if let Some(code) = close {
            if matches!(self.ch[idx].conn.link, Link::Closing { .. }) {
                return self.closed(idx);
            }
            let echo = code
                .filter(|c| codec::is_valid_close_code(*c))
                .unwrap_or(codec::CLOSE_NORMAL);
            self.write_close(idx, echo);
            let detail = format!(
                "closed by the CSMS (code {})",
                code.map_or("none".into(), |c| c.to_string())
            );
            self.fail_link(idx, E_CLOSE, &detail);
        }
    }

    // -- writing ---------------------------------------------------------------------------------------------

    /// Write out what the protocol side emitted since the last drain, in order. A charger's outputs that follow
    /// one another are framed (masked) into one write; an output of a link that has died meanwhile (not the
    /// charger's current epoch) is dropped; a write that fails fails the link here, and what its link had
    /// left in the outbox is dropped with it (its epoch is over).
    pub(super) fn drain(&mut self) {
        while !self.outbox.is_empty() {
            let mut out = std::mem::take(&mut self.outbox);
            let mut frames = std::mem::take(&mut self.frame);
            let mut i = 0;
            while i < out.len() {
                let idx = out.get(i).idx;
                frames.clear();
                while i < out.len() && out.get(i).idx == idx {
                    let o = out.get(i);
                    let conn = &self.ch[idx].conn;
                    if o.epoch == conn.epoch && conn.sock.is_some() {
                        let mask = Some(self.mask());
                        match o.output {
                            Output::Text => codec::encode_frame(
                                &mut frames,
                                OpCode::Text,
                                o.text.as_bytes(),
                                true,
                                mask,
                            ),
                            Output::Close(code) => codec::encode_close(&mut frames, code, "", mask),
                        }
                    }
                    i += 1;
                }
                if !frames.is_empty() {
                    self.write(idx, &frames);
                }
            }
            if frames.capacity() > SCRATCH {
                frames = Vec::new();
            }
            self.frame = frames;
            out.clear();
            // Whatever failing a link made the protocol emit meanwhile goes round again.
            if self.outbox.is_empty() {
                self.outbox = out;
            }
        }
    }

    /// A frame of the link's own (a pong, our close on a protocol error, the echo of the CSMS's close), written
    /// at once, after whatever the protocol emitted before it (drained first).
    pub(super) fn write_frame(&mut self, idx: usize, op: OpCode, payload: &[u8]) {
        self.drain();
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        codec::encode_frame(&mut frame, op, payload, true, Some(self.mask()));
        self.write(idx, &frame);
        self.frame = frame;
    }

    pub(super) fn write_close(&mut self, idx: usize, code: u16) {
        self.drain();
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        codec::encode_close(&mut frame, code, "", Some(self.mask()));
        self.write(idx, &frame);
        self.frame = frame;
    }

    pub(super) fn write(&mut self, idx: usize, bytes: &[u8]) {
        let c = &mut self.ch[idx];
        let Some(sock) = c.conn.sock.as_mut() else {
            return;
        };
        if let Err(e) = net::write_or_queue(sock, &mut c.conn.wbuf, bytes) {
            self.socket_failed(idx, "write", &e);
        }
    }

    pub(super) fn flush(&mut self, idx: usize) {
        let c = &mut self.ch[idx];
        let Some(sock) = c.conn.sock.as_mut() else {
            return;
        };
        if let Err(e) = net::flush_queue(sock, &mut c.conn.wbuf) {
            self.socket_failed(idx, "write", &e);
        }
    }

    // -- losing a link ---------------------------------------------------------------------------------------

    /// A read or write failed. On wss:// while the upgrade waits for its answer, that is how a TLS 1.3 server
    /// refuses the client's certificate: its alert comes after the client's side of the handshake is through,
    /// with the first read (or, when the server's close caught our upgrade request unread, a reset in its
    /// place, on a read or a write): a `tls_failed`.
    fn socket_failed(&mut self, idx: usize, op: &str, e: &io::Error) {
        let upgrading =
            self.tls.is_some() && matches!(self.ch[idx].conn.link, Link::Upgrading { .. });
        let (kind, detail) = match tls_io_reason(e) {
            Some(why) if upgrading => (E_TLS, why),
            Some(why) => (E_CLOSE, why),
            None if upgrading => (
                E_TLS,
                format!("tls: {} before the upgrade's answer", e.kind()),
            ),
            None => (E_CLOSE, format!("{op}: {}", e.kind())),
        };
        self.fail_link(idx, kind, &detail);
    }

    pub(super) fn set_link_down_counts(&mut self, idx: usize) {
        let c = &self.ch[idx];
        match c.conn.link {
            Link::Connecting | Link::Securing | Link::Upgrading { .. } => self.inflight -= 1,
            Link::Open => {
                self.open -= 1;
                if c.boot == Boot::Accepted {
                    self.booted_open -= 1;
                }
            }
            _ => {}
        }
    }

    /// Drop the socket (no close frame): a new epoch begins, so the link's timers and whatever it left in the
    /// outbox die with it, and the protocol forgets what was in flight on it ([`Charger::link_lost`]).
    pub(super) fn drop_link(&mut self, idx: usize) {
        self.set_link_down_counts(idx);
        self.load_lost_with_link(idx);
        let c = &mut self.ch[idx];
        c.conn.link = Link::Down;
        c.conn.epoch = c.conn.epoch.wrapping_add(1);
        c.conn.wbuf = Vec::new();
        c.conn.decoder = Decoder::new(Role::Client, 0);
        if let Some(mut sock) = c.conn.sock.take() {
            if let Stream::Tls(s) = &mut sock {
                // Dropped without a close_notify, OpenSSL would mark the session not resumable; a charger
                // that lost its link offers its session again all the same.
                s.set_shutdown(ShutdownState::SENT);
            }
            if let Some(tcp) = sock.tcp_mut() {
                let _ = self.poll.registry().deregister(tcp);
            }
        }
        c.link_lost();
    }

    /// The central system is too busy for a new connection (HTTP 503): not an error, but counted; come back
    /// when its `Retry-After` says (anywhere in that second, so a thousand refused together do not return
    /// together), or after the usual back-off when the scenario ignores it.
    pub(super) fn refused_busy(&mut self, idx: usize, retry_after: Option<u32>) {
        self.r.refused_busy += 1;
        self.drop_link(idx);
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        let wait = match retry_after {
            Some(s) if self.cfg.honour_retry_after => {
                self.r.retry_after_given += 1;
                s as f64 + self.rand_f64()
            }
            _ => self.backoff(),
        };
        self.after(wait, idx, Timer::Connect);
    }

    /// The link failed: count it, drop it, reconnect after a back-off while the run goes on.
    pub(super) fn fail_link(&mut self, idx: usize, kind: &'static str, detail: &str) {
        if self.ch[idx].conn.sock.is_none() {
            return;
        }
        let closing_end = matches!(
            self.ch[idx].conn.link,
            Link::Closing {
                reconnect_after: None
            }
        );
        if closing_end {
            return self.closed(idx);
        }
        if let Link::Closing { reconnect_after } = self.ch[idx].conn.link {
            // A reboot's close that ended abruptly: still a reboot.
            self.drop_link(idx);
            self.after(reconnect_after.unwrap_or(0.0), idx, Timer::Connect);
            return;
        }
        self.error(kind, detail);
        self.drop_link(idx);
        if matches!(self.phase, Phase::Running) {
            let wait = self.backoff();
            self.after(wait, idx, Timer::Connect);
        }
    }

    /// A close we started has finished.
    pub(super) fn closed(&mut self, idx: usize) {
        let after = match self.ch[idx].conn.link {
            Link::Closing { reconnect_after } => reconnect_after,
            _ => None,
        };
        if after.is_none() && !matches!(self.phase, Phase::Running) {
            self.r.closed_clean += 1;
        }
        self.drop_link(idx);
        if let Some(delay) = after {
            if matches!(self.phase, Phase::Running) {
                self.after(delay, idx, Timer::Connect);
            }
        }
    }

    pub(super) fn error(&mut self, kind: &'static str, detail: &str) {
        self.r.error_total += 1;
        *self.r.errors.entry(kind).or_default() += 1;
        let details = self.r.error_details.entry(kind).or_default();
        if let Some(n) = details.get_mut(detail) {
            *n += 1;
        } else if details.len() < 64 {
            details.insert(detail.to_owned(), 1);
        } else {
            *details.entry("(other)".to_owned()).or_default() += 1;
        }
    }

    pub(super) fn check(&mut self, kind: &'static str, action: &str, payload: &RawValue) {
        if !self.cfg.check_replies {
            return;
        }
        if self.checks.len() >= MAX_CHECKS {
            self.r.checks_dropped += 1;
            return;
        }
        self.checks
            .push((kind, action.to_owned(), payload.get().to_owned()));
    }
}
