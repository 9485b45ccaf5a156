//! Sending: our CALLs (one outstanding per link, the rest queued in order), the replies to the CSMS's CALLs.

use super::*;

impl Sim {
    // -- sending CALLs -------------------------------------------------------------------------------------

    pub(super) fn send_boot(&mut self, idx: usize) {
        let mut p = std::mem::take(&mut self.payload);
        p.clear();
        let serial = self.serial(idx);
        let c = &self.ch[idx];
        msg::boot(
            &mut p,
            self.cfg.protocol,
            &self.cfg.vendor,
            &self.cfg.model,
            &serial,
            &c.fw_version,
            c.boot_reason,
        );
        self.ch[idx].boot = Boot::Sent;
        self.send_call(idx, Action::BootNotification, &p, Purpose::Own);
        self.payload = p;
    }

    /// The serial number a charger reports: its id, cut to the schemas' 25 characters from the left so the
    /// distinguishing number stays.
    pub(super) fn serial(&self, idx: usize) -> String {
        let id = self.cfg.charger_id(idx);
        let skip = id.chars().count().saturating_sub(25);
        id.chars().skip(skip).collect()
    }

    /// Queue one of the charger's own CALLs (sent once the ones before it are answered).
    pub(super) fn call(&mut self, idx: usize, action: Action, payload: String) {
        self.call_for(idx, action, payload, Purpose::Own);
    }

    pub(super) fn call_for(
        &mut self,
        idx: usize,
        action: Action,
        payload: String,
        purpose: Purpose,
    ) {
        self.ch[idx].queue.push_back(Queued {
            action,
            payload,
            purpose,
        });
        self.pump_queue(idx);
    }

    pub(super) fn pump_queue(&mut self, idx: usize) {
        let c = &mut self.ch[idx];
        if c.outstanding.is_some() || !matches!(c.conn.link, Link::Open) || c.boot != Boot::Accepted
        {
            return;
        }
        if let Some(q) = c.queue.pop_front() {
            self.send_call(idx, q.action, &q.payload, q.purpose);
        } else if c.reboot_pending.is_some() {
            self.do_reboot(idx);
        }
    }

    pub(super) fn send_call(
        &mut self,
        idx: usize,
        action: Action,
        payload: &str,
        purpose: Purpose,
    ) {
        let c = &mut self.ch[idx];
        c.seq = c.seq.wrapping_add(1);
        let seq = c.seq;
        let mut text = std::mem::take(&mut self.text);
        msg::call_head(&mut text, seq, action);
        text.push_str(payload);
        text.push(']');
        // A load round trip is a measurement: one lost with its link is counted, not sent again.
        let resend = purpose != Purpose::Load
            && matches!(
                action,
                Action::StartTransaction
                    | Action::StopTransaction
                    | Action::TransactionEvent
                    | Action::MeterValues
                    | Action::FirmwareStatusNotification
                    | Action::SignedFirmwareStatusNotification
            );
        let now = self.now_us();
        if purpose == Purpose::Load {
            self.load_sent();
        }
        self.ch[idx].outstanding = Some(Out {
            action,
            seq,
            sent_us: now,
            purpose,
            resend: resend.then(|| payload.to_owned()),
        });
        self.r.sent += 1;
        self.send(idx, OpCode::Text, text.as_bytes());
        self.text = text;
        let e = self.ch[idx].conn.epoch;
        self.after(
            self.cfg.call_timeout,
            idx,
            Timer::CallTimeout { epoch: e, seq },
        );
    }

    pub(super) fn send_reply(&mut self, idx: usize, unique_id: &str, payload: &str) {
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        text.push_str("[3,");
        text.push_str(&serde_json::to_string(unique_id).unwrap_or_default());
        text.push(',');
        text.push_str(payload);
        text.push(']');
        self.r.sent += 1;
        self.send(idx, OpCode::Text, text.as_bytes());
        self.text = text;
    }

    pub(super) fn send_call_error(&mut self, idx: usize, unique_id: &str, code: &str, why: &str) {
        let text = format!(
            "[4,{},{},{},{{}}]",
            serde_json::to_string(unique_id).unwrap_or_default(),
            serde_json::to_string(code).unwrap_or_default(),
            serde_json::to_string(why).unwrap_or_default()
        );
        self.r.sent += 1;
        self.send(idx, OpCode::Text, text.as_bytes());
    }
}
