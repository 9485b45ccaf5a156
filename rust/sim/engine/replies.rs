//! What the CSMS sends: CALLRESULTs and CALLERRORs to our CALLs (boot, transactions, firmware, the load).
//! Its CALLs are answered in `commands.rs`.

use super::*;

impl Sim {
    // -- messages from the CSMS ------------------------------------------------------------------------------

    pub(super) fn on_text(&mut self, idx: usize, text: &str) {
        let parts: Vec<&RawValue> = match serde_json::from_str(text) {
            Ok(p) => p,
            Err(_) => return self.error(E_PROTOCOL, "not a JSON array"),
        };
        let kind = parts.first().map(|k| k.get());
        let id: Option<String> = parts
            .get(1)
            .and_then(|v| serde_json::from_str(v.get()).ok());
        let Some(id) = id else {
            return self.error(E_PROTOCOL, "unique id unreadable");
        };
        match (kind, parts.len()) {
            (Some("2"), 4) => {
                let Ok(action) = serde_json::from_str::<String>(parts[2].get()) else {
                    return self.error(E_PROTOCOL, "CALL action unreadable");
                };
                self.on_csms_call(idx, &id, &action, parts[3]);
            }
            (Some("3"), 3) => self.on_result(idx, &id, parts[2]),
            (Some("4"), 4 | 5) => {
                let code: String = serde_json::from_str(parts[2].get()).unwrap_or_default();
                self.on_call_error(idx, &id, &code);
            }
            _ => self.error(E_PROTOCOL, "not an OCPP-J message"),
        }
    }

    pub(super) fn take_outstanding(&mut self, idx: usize, id: &str) -> Option<Out> {
        let c = &mut self.ch[idx];
        match &c.outstanding {
            Some(o) if id.parse::<u32>() == Ok(o.seq) => c.outstanding.take(),
            _ => None,
        }
    }

    pub(super) fn on_call_error(&mut self, idx: usize, id: &str, code: &str) {
        let Some(out) = self.take_outstanding(idx, id) else {
            return self.error(E_PROTOCOL, "CALLERROR for no outstanding CALL");
        };
        self.error(E_CALL_ERROR, &format!("{} {code}", out.action.name()));
        self.after_answer(idx, &out);
        if out.purpose != Purpose::Own {
            self.on_load_error(idx, &out);
            return self.pump_queue(idx);
        }
        match out.action {
            Action::BootNotification => self.boot_failed(idx),
            Action::Authorize => self.end_tx_refused(idx),
            Action::StartTransaction => {
                // No transaction id: the transaction cannot go on.
                self.r.tx_refused += 1;
                self.tx_done(idx);
            }
            Action::StopTransaction => self.tx_done(idx),
            Action::TransactionEvent => match event_type(&out) {
                "Ended" => self.tx_done(idx),
                "Started" => {
                    self.r.tx_refused += 1;
                    self.tx_done(idx);
                }
                _ => {}
            },
            _ => {}
        }
        self.pump_queue(idx);
    }

    /// A boot answered with a CALLERROR or not at all: boot again after a back-off, unless the charger was
    /// accepted already (a triggered boot).
    pub(super) fn boot_failed(&mut self, idx: usize) {
        if self.ch[idx].boot == Boot::Accepted {
            return;
        }
        self.ch[idx].boot = Boot::None;
        let wait = self.backoff();
        let e = self.ch[idx].conn.epoch;
        self.after(wait, idx, Timer::BootRetry { epoch: e });
    }

    /// Our CALL timed out: a boot is retried, an Authorize abandoned, a transaction or firmware message sent
    /// again (it must reach the CSMS; the CSMS de-duplicates).
    pub(super) fn unanswered(&mut self, idx: usize, out: Out) {
        if out.purpose == Purpose::Load {
            self.r.load.window.unanswered += 1;
        }
        self.after_answer(idx, &out);
        match out.action {
            Action::BootNotification => self.boot_failed(idx),
            Action::Authorize => {
                if matches!(&self.ch[idx].tx, Some(t) if t.phase == TxPhase::Authorizing) {
                    self.ch[idx].tx = None;
                    self.ch[idx].tx_gen = self.ch[idx].tx_gen.wrapping_add(1);
                    self.schedule_tx(idx);
                }
            }
            _ => self.ch[idx].resend_first(out),
        }
    }

    /// Bookkeeping common to every answer (result, error or timeout) of our CALL.
    pub(super) fn after_answer(&mut self, idx: usize, out: &Out) {
        if out.purpose == Purpose::Load {
            let open = matches!(self.ch[idx].conn.link, Link::Open);
            let l = &mut self.ch[idx].load;
            l.busy = false;
            let close = std::mem::take(&mut l.close_when_answered);
            self.load_freed();
            if close {
                if open {
                    self.close_at_end(idx);
                }
            } else if self.load_on && open {
                self.load_ready(idx);
            }
        }
    }

    pub(super) fn on_result(&mut self, idx: usize, id: &str, payload: &RawValue) {
        let Some(out) = self.take_outstanding(idx, id) else {
            return self.error(E_PROTOCOL, "CALLRESULT for no outstanding CALL");
        };
        let took_us = self.now_us().saturating_sub(out.sent_us);
        self.r.latency[out.action.slot()].record(took_us);
        self.check("result", out.action.name(), payload);
        // A load round trip's answer says nothing the charger acts on: not parsed (saturation sends many).
        let needs_body = out.purpose != Purpose::Load
            && matches!(
                out.action,
                Action::BootNotification
                    | Action::Authorize
                    | Action::StartTransaction
                    | Action::TransactionEvent
                    | Action::NotifyEVChargingNeeds
            );
        let body: Value = if needs_body {
            serde_json::from_str(payload.get()).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        match out.purpose {
            Purpose::Own => self.on_own_result(idx, &out, &body),
            Purpose::Load | Purpose::LoadTx => self.on_load_result(idx, &out, &body, took_us),
        }
        self.after_answer(idx, &out);
        self.pump_queue(idx);
    }

    /// The CSMS answered one of the charger's own CALLs.
    pub(super) fn on_own_result(&mut self, idx: usize, out: &Out, body: &Value) {
        match out.action {
            Action::BootNotification => self.on_boot_result(idx, body),
            Action::Authorize => {
                let status = match self.cfg.protocol {
                    Protocol::Ocpp16 => str_at(body, &["idTagInfo", "status"]),
                    Protocol::Ocpp201 => str_at(body, &["idTokenInfo", "status"]),
                };
                self.count_response("Authorize", status.unwrap_or("(none)"));
                if status == Some("Accepted") {
                    self.start_tx(idx);
                } else {
                    self.end_tx_refused(idx);
                }
            }
            Action::StartTransaction => {
                let status = str_at(body, &["idTagInfo", "status"]);
                self.count_response("StartTransaction", status.unwrap_or("(none)"));
                let tx_id = body.get("transactionId").and_then(Value::as_i64);
                self.r.tx_started += 1;
                let stop_reason = match &mut self.ch[idx].tx {
                    Some(t) => {
                        t.id16 = tx_id;
                        t.phase = TxPhase::Charging;
                        t.stop_reason.take()
                    }
                    None => None,
                };
                if status != Some("Accepted") {
                    self.r.tx_refused += 1;
                    self.stop_tx(idx, "DeAuthorized", "Deauthorized");
                } else if let Some(reason) = stop_reason {
                    self.stop_tx(idx, reason, "StopAuthorized");
                } else {
                    self.charging(idx);
                }
            }
            Action::StopTransaction => {
                self.r.tx_stopped += 1;
                self.tx_done(idx);
            }
            Action::TransactionEvent => {
                if let Some(status) = str_at(body, &["idTokenInfo", "status"]) {
                    self.count_response("TransactionEvent", status);
                }
                match event_type(out) {
                    "Started" => {
                        self.r.tx_started += 1;
                        if let Some(t) = self.ch[idx].tx.as_mut() {
                            if t.phase == TxPhase::Starting {
                                t.phase = TxPhase::Charging;
                            }
                        }
                        match str_at(body, &["idTokenInfo", "status"]) {
                            Some(s) if s != "Accepted" => {
                                self.r.tx_refused += 1;
                                self.stop_tx(idx, "DeAuthorized", "Deauthorized");
                            }
                            _ => {
                                let stop =
                                    self.ch[idx].tx.as_mut().and_then(|t| t.stop_reason.take());
                                match stop {
                                    Some(r) => self.stop_tx(idx, r, "StopAuthorized"),
                                    None => self.charging(idx),
                                }
                            }
                        }
                    }
                    "Ended" => {
                        self.r.tx_stopped += 1;
                        self.tx_done(idx);
                    }
                    _ => {}
                }
            }
            Action::NotifyEVChargingNeeds => {
                let status = str_at(body, &["status"]).unwrap_or("(none)");
                self.count_response("NotifyEVChargingNeeds", status);
            }
            _ => {}
        }
    }

    pub(super) fn count_response(&mut self, action: &'static str, status: &str) {
        let m = self.r.responses.entry(action).or_default();
        if let Some(n) = m.get_mut(status) {
            *n += 1;
        } else if m.len() < 32 {
            m.insert(status.chars().take(40).collect(), 1);
        }
    }

    pub(super) fn on_boot_result(&mut self, idx: usize, body: &Value) {
        let status = body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("(none)");
        self.count_response("BootNotification", status);
        if self.ch[idx].boot == Boot::Accepted {
            // The answer to a triggered boot of a charger accepted already: nothing changes.
            return;
        }
        let interval = body
            .get("interval")
            .and_then(Value::as_f64)
            .filter(|i| i.is_finite() && *i > 0.0);
        let e = self.ch[idx].conn.epoch;
        if status != "Accepted" {
            // Pending or Rejected: boot again after the interval the CSMS gave [B02/B03].
            self.ch[idx].boot = Boot::Pending;
            let wait = interval.unwrap_or(10.0).min(3600.0);
            self.after(wait, idx, Timer::BootRetry { epoch: e });
            return;
        }
        let now = self.now_us();
        self.r.boots += 1;
        self.booted_open += 1;
        let since = now.saturating_sub(self.ch[idx].connect_started_us);
        self.r.boot_latency.record(since);
        let c = &mut self.ch[idx];
        c.boot = Boot::Accepted;
        c.need_boot = false;
        if let (None, Some(i)) = (self.cfg.heartbeat_interval, interval) {
            c.hb_interval = i;
        }
        if !c.ever_booted {
            c.ever_booted = true;
            self.r.ever_booted += 1;
            self.r.last_first_boot_us = now;
        }
        // Status of every connector, then whatever waited for the boot.
        for connector in 1..=self.cfg.connectors {
            let s = self.connector_status(idx, connector);
            self.status_call(idx, connector, s);
        }
        if matches!(&self.ch[idx].fw, Some(f) if f.step == 3) {
            let fw = self.ch[idx].fw.take().unwrap();
            self.r.fw_installed += 1;
            self.fw_status(idx, "Installed", fw.request_id, fw.signed);
        }
        if self.cfg.tx_per_hour > 0.0 && self.ch[idx].tx.is_none() && !self.ch[idx].tx_scheduled {
            self.schedule_tx(idx);
        }
        self.link_up_timers(idx);
    }

    pub(super) fn connector_status(&self, idx: usize, connector: u32) -> &'static str {
        let c = &self.ch[idx];
        if !c.available {
            "Unavailable"
        } else if matches!(&c.tx, Some(t) if t.connector == connector)
            || (connector == load::LOAD_CONNECTOR && c.load.in_transaction())
        {
            "Charging"
        } else if connector == 1 && c.plugged {
            "Preparing"
        } else {
            "Available"
        }
    }

    pub(super) fn status_call(&mut self, idx: usize, connector: u32, status: &str) {
        let mut p = String::new();
        msg::status(&mut p, self.cfg.protocol, connector, status);
        self.call(idx, Action::StatusNotification, p);
    }
}
