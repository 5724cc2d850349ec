//! `transfer()` in every `transfertype` (catalog: parameters.tsv `transfertype`,
//! `transfwithreplace`; behaviours §11), on REFER (RFC 3515) with Replaces (RFC 3891,
//! attended transfer per RFC 5589 §7).
//!
//! - `0`: transfer is switched off.
//! - `1` blind: REFER to the target and drop our leg as soon as the peer accepts the REFER
//!   (its 202, or a first NOTIFY); a refused REFER leaves the call as it was.
//! - `-1`/`6` (default) unattended with hold: hold the call, REFER, and follow the NOTIFYs: a
//!   2xx ends our leg, a failure resumes the call.
//! - `2`..`5` attended: the call is held and the target is called (consultation). The REFER to
//!   the first party is sent when we hang up the consultation call (`hangup()`), with Replaces
//!   naming the consultation dialog (`transfwithreplace` -1/1), or as a plain REFER to the
//!   target after which our consultation leg ends (`transfwithreplace` 0). If the consultation
//!   call fails, the first call is resumed. This engine treats 2, 3, 4 and 5 alike (the
//!   standard flow of 5); the variants differ in which hang-up triggers the transfer, and
//!   `hangup()` by us is the one every variant shares.
//! - `transfer("")` with two calls: the current call is transferred to the other one (REFER
//!   with Replaces), the way a desk phone joins its two parties.

use serde_json::Value;

use super::{arg, bad, CallPhase, Core, Peer};
use crate::notify::Severity;
use crate::phone::ApiError;
use webphone_sip::CallKey;

/// What `transfertype` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Off,
    Blind,
    HoldAndWatch,
    Attended,
}

pub(super) fn mode(transfertype: i64) -> Mode {
    match transfertype {
        0 => Mode::Off,
        1 => Mode::Blind,
        2..=5 => Mode::Attended,
        _ => Mode::HoldAndWatch,
    }
}

impl Core {
    fn connected_sip_line(&self, n: usize) -> Option<CallKey> {
        match self.lines.get(n) {
            Some(l) if l.phase == CallPhase::Connected => match l.peer {
                Peer::Sip(k) => Some(k),
                Peer::Echo { .. } => None,
            },
            _ => None,
        }
    }

    /// `transfer(number)`.
    pub(super) async fn transfer_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let number = arg(args, 0).map(str::trim).unwrap_or("").to_string();
        let sel = self.default_sel(arg(args, 1))?;
        let n = self
            .lines
            .select(sel)
            .into_iter()
            .find(|n| self.connected_sip_line(*n).is_some())
            .ok_or_else(|| ApiError::Failed("no connected call to transfer".into()))?;
        let Some(call) = self.connected_sip_line(n) else {
            return Err(ApiError::Failed("this call cannot be transferred".into()));
        };
        let Some(sip) = self.sip.clone() else {
            return Err(ApiError::Failed("engine not started".into()));
        };
        let mode = mode(self.params.get_i64("transfertype").unwrap_or(-1));
        if mode == Mode::Off {
            return Err(ApiError::Failed(
                "transfer is switched off (transfertype 0)".into(),
            ));
        }
        if number.is_empty() {
            // Two calls: hand this one over to the other (RFC 5589 §7).
            let other = self
                .lines
                .iter()
                .map(|(m, _)| m)
                .find(|m| *m != n && self.connected_sip_line(*m).is_some());
            let (Some(m), true) = (other, self.lines.iter().count() >= 2) else {
                return Err(bad(
                    "usage: transfer(number); an empty number needs two connected calls",
                ));
            };
            let Some(other_call) = self.connected_sip_line(m) else {
                return Err(ApiError::Failed(format!("line {m} is not connected")));
            };
            sip.refer_with_replaces(call, other_call)
                .map_err(|e| ApiError::Failed(format!("transfer: {e}")))?;
            // The other call is the dialog the transfer replaces: it ends with the transfer
            // (its party normally hangs it up itself once replaced, RFC 3891 §3; not every UA
            // does).
            if let Some(l) = self.lines.get_mut(m) {
                l.after_transfer_of = Some(n);
            }
            self.emit_line(n, "Midcall");
            self.log(
                Severity::Event,
                &format!("line {n}: transferred to the party of line {m}"),
            );
            return Ok(Value::Null);
        }
        let target = self.dial_target(&number)?;
        match mode {
            Mode::Off => Err(ApiError::Failed(
                "transfer is switched off (transfertype 0)".into(),
            )),
            Mode::Blind => {
                sip.refer(call, &target)
                    .map_err(|e| ApiError::Failed(format!("transfer: {e}")))?;
                self.log(
                    Severity::Event,
                    &format!("line {n}: blind transfer to {target}"),
                );
                // The BYE waits for the REFER's 202: sent at once, it could overtake the
                // REFER and leave nothing to transfer (RFC 3515 §2.4.2: in-dialog request).
                if let Some(l) = self.lines.get_mut(n) {
                    l.blind_refer = true;
                }
                self.emit_line(n, "Midcall");
                Ok(Value::Null)
            }
            Mode::HoldAndWatch => {
                self.hold_for_transfer(n);
                let holding = self
                    .lines
                    .get(n)
                    .is_some_and(|l| l.hold_pending == Some(true));
                if holding {
                    // The REFER goes when the hold re-INVITE is answered (refer_held_call).
                    if let Some(l) = self.lines.get_mut(n) {
                        l.refer_after_hold = Some(target.clone());
                    }
                } else {
                    sip.refer(call, &target)
                        .map_err(|e| ApiError::Failed(format!("transfer: {e}")))?;
                }
                if let Some(l) = self.lines.get_mut(n) {
                    l.transfer_resume = true;
                }
                self.emit_line(n, "Midcall");
                self.log(Severity::Event, &format!("line {n}: transfer to {target}"));
                Ok(Value::Null)
            }
            Mode::Attended => {
                self.hold_for_transfer(n);
                let c = match self.call(&number).await {
                    Ok(c) => c,
                    Err(e) => {
                        self.resume_after_transfer(n);
                        return Err(e);
                    }
                };
                if let Some(l) = self.lines.get_mut(c) {
                    l.consult_for = Some(n);
                }
                self.log(
                    Severity::Event,
                    &format!("line {n}: consultation call to {target} on line {c}; hang it up to complete the transfer"),
                );
                Ok(Value::from(c))
            }
        }
    }

    /// The hold re-INVITE of a transfer finished (answered or refused): send its REFER.
    pub(super) fn refer_held_call(&mut self, n: usize, call: CallKey) {
        let Some(target) = self
            .lines
            .get_mut(n)
            .and_then(|l| l.refer_after_hold.take())
        else {
            return;
        };
        let Some(sip) = self.sip.clone() else { return };
        if let Err(e) = sip.refer(call, &target) {
            self.log(Severity::Warning, &format!("transfer: {e}"));
            self.resume_after_transfer(n);
        }
    }

    fn hold_for_transfer(&mut self, n: usize) {
        let held = self.lines.get(n).is_some_and(|l| {
            l.hold == super::line_api::HOLD_LOCAL || l.hold == super::line_api::HOLD_BOTH
        });
        if !held {
            if let Err(e) = self.hold_api(&["true".to_string(), n.to_string()]) {
                self.log(
                    Severity::Warning,
                    &format!("transfer: cannot hold line {n}: {e}"),
                );
            }
        }
    }

    /// A transfer did not happen: the first party comes back off hold.
    pub(super) fn resume_after_transfer(&mut self, n: usize) {
        if self.lines.get(n).is_none() {
            return;
        }
        self.display(
            Severity::Warning,
            "The transfer did not complete; the call is resumed",
        );
        if let Err(e) = self.hold_api(&["false".to_string(), n.to_string()]) {
            self.log(Severity::Warning, &format!("cannot resume line {n}: {e}"));
        }
    }

    /// We hang up a consultation call (attended transfer): send the REFER to the first party
    /// instead of just ending it. Returns true when the line's ending was taken care of.
    pub(super) async fn complete_attended(&mut self, c: usize) -> bool {
        let Some(first) = self.lines.get_mut(c).and_then(|l| l.consult_for.take()) else {
            return false;
        };
        if self.params.get_i64("transfertype").unwrap_or(-1) == 2 {
            // transfertype 2 transfers only when the consulted party hangs up: our own
            // hang-up ends the consultation and the first call comes back.
            self.resume_after_transfer(first);
            return false;
        }
        let (Some(first_call), Some(sip)) = (self.connected_sip_line(first), self.sip.clone())
        else {
            return false;
        };
        let Some(consult_call) = self.connected_sip_line(c) else {
            // Not answered: nothing to transfer to; the first call comes back.
            self.resume_after_transfer(first);
            return false;
        };
        let with_replaces = self.params.get_i64("transfwithreplace").unwrap_or(-1) != 0;
        let sent = if with_replaces {
            sip.refer_with_replaces(first_call, consult_call)
        } else {
            let target = self
                .lines
                .get(c)
                .map(|l| l.peername.clone())
                .unwrap_or_default();
            match self.dial_target(&target) {
                Ok(uri) => sip.refer(first_call, &uri),
                Err(e) => {
                    self.log(Severity::Warning, &format!("transfer: {e}"));
                    self.resume_after_transfer(first);
                    return false;
                }
            }
        };
        match sent {
            Ok(()) => {
                if let Some(l) = self.lines.get_mut(first) {
                    l.transfer_resume = true;
                }
                if let Some(l) = self.lines.get_mut(c) {
                    l.after_transfer_of = Some(first);
                }
                self.emit_line(first, "Midcall");
                self.log(
                    Severity::Event,
                    &format!(
                        "line {first}: attended transfer to line {c}{}",
                        if with_replaces { " (Replaces)" } else { "" }
                    ),
                );
                if with_replaces {
                    // The target replaces our consultation dialog by the new call and sends
                    // us its BYE (RFC 3891 §3); keep the line until then.
                    true
                } else {
                    false
                }
            }
            Err(e) => {
                self.log(Severity::Warning, &format!("transfer: {e}"));
                self.resume_after_transfer(first);
                false
            }
        }
    }

    /// The consultation call ended before the transfer was made: the first party resumes,
    /// unless the consulted party hung up an answered consultation (`hung_up_by`, its peer
    /// name) and `transfertype` is 2 ("transfer when the second party disconnects") or 4
    /// ("when any party disconnects"): then the first party is sent to it with a plain REFER
    /// (RFC 3515; the consultation dialog is gone, so no Replaces).
    pub(super) fn consultation_ended(
        &mut self,
        consult_for: Option<usize>,
        hung_up_by: Option<String>,
    ) {
        let Some(first) = consult_for else {
            return;
        };
        let transfertype = self.params.get_i64("transfertype").unwrap_or(-1);
        if let (Some(peer), 2 | 4) = (hung_up_by, transfertype) {
            if self.refer_first_to(first, &peer) {
                return;
            }
        }
        self.resume_after_transfer(first);
    }

    /// Sends the party of line `first` (held for a transfer) to `peer` with a plain REFER;
    /// whether it went out. Its outcome arrives as for the other transfers.
    fn refer_first_to(&mut self, first: usize, peer: &str) -> bool {
        let (Some(call), Some(sip)) = (self.connected_sip_line(first), self.sip.clone()) else {
            return false;
        };
        let sent = self
            .dial_target(peer)
            .map_err(|e| e.to_string())
            .and_then(|uri| sip.refer(call, &uri).map_err(|e| e.to_string()));
        match sent {
            Ok(()) => {
                if let Some(l) = self.lines.get_mut(first) {
                    l.transfer_resume = true;
                }
                self.emit_line(first, "Midcall");
                self.log(
                    Severity::Event,
                    &format!("line {first}: {peer} hung up the consultation: transferred to it"),
                );
                true
            }
            Err(e) => {
                self.log(Severity::Warning, &format!("transfer: {e}"));
                false
            }
        }
    }

    /// The peer reported how our REFER went (sipfrag NOTIFY, RFC 3515 §2.4.5): a 2xx ends
    /// our leg (and a consultation leg the target has not closed yet); a failure resumes a
    /// call we held for the transfer.
    /// The peer accepted our REFER (2xx): a blind transfer's leg ends now.
    pub(super) async fn on_refer_accepted(&mut self, call: CallKey) {
        let Some(n) = self.line_of(call) else { return };
        let blind = self
            .lines
            .get_mut(n)
            .is_some_and(|l| std::mem::take(&mut l.blind_refer));
        if blind {
            self.log(
                Severity::Event,
                &format!("line {n}: blind transfer accepted"),
            );
            self.end_locally_with(n, 486, Some("transferred")).await;
        }
    }

    pub(super) async fn on_refer_status(&mut self, call: CallKey, code: u16) {
        let Some(n) = self.line_of(call) else { return };
        let blind = self
            .lines
            .get_mut(n)
            .is_some_and(|l| std::mem::take(&mut l.blind_refer));
        if blind && code < 300 {
            // A NOTIFY overtook the 202: the REFER was accepted all the same.
            self.log(
                Severity::Event,
                &format!("line {n}: blind transfer accepted"),
            );
            self.end_locally_with(n, 486, Some("transferred")).await;
            return;
        }
        if (200..300).contains(&code) {
            self.log(Severity::Event, &format!("line {n}: transfer completed"));
            self.end_locally_with(n, 486, Some("transferred")).await;
            let legs: Vec<usize> = self
                .lines
                .iter()
                .filter(|(_, l)| l.after_transfer_of == Some(n))
                .map(|(m, _)| m)
                .collect();
            for m in legs {
                self.end_locally_with(m, 486, Some("transferred")).await;
            }
        } else if code >= 300 {
            // Calls that were to end with this transfer go on.
            let n_of = Some(n);
            for m in self.lines.busy().collect::<Vec<_>>() {
                if let Some(l) = self
                    .lines
                    .get_mut(m)
                    .filter(|l| l.after_transfer_of == n_of)
                {
                    l.after_transfer_of = None;
                }
            }
            self.display(
                Severity::Warning,
                &format!("Transfer failed ({code}); the call goes on"),
            );
            let resume = self
                .lines
                .get_mut(n)
                .is_some_and(|l| std::mem::take(&mut l.transfer_resume));
            if resume {
                if let Err(e) = self.hold_api(&["false".to_string(), n.to_string()]) {
                    self.log(Severity::Warning, &format!("cannot resume line {n}: {e}"));
                }
            } else {
                self.emit_line(n, "InCall");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfertype_values_map_to_the_flows() {
        assert_eq!(mode(0), Mode::Off);
        assert_eq!(mode(1), Mode::Blind);
        for t in 2..=5 {
            assert_eq!(mode(t), Mode::Attended, "transfertype {t}");
        }
        assert_eq!(mode(-1), Mode::HoldAndWatch);
        assert_eq!(mode(6), Mode::HoldAndWatch);
        assert_eq!(mode(99), Mode::HoldAndWatch);
    }
}
