//! `conference()` on the local mixer, and the device controls that act on running calls
//! (`setvolume`/`getvolume`, `setdevice` with immediate=2).
//!
//! Conference semantics (catalog: api.tsv `conference`, behaviours §12):
//! - `conference("")`: join every current call (at least two);
//! - `conference("N")`: join line N; `conference("N", false)`: take it out;
//! - `conference("other")`: call it and join it once it connects;
//! - `conference("", false)`: dissolve the conference, the calls stay.
//!
//! Every member hears the microphone and every other member, never itself; the speaker plays
//! all members. A member we hold is resumed when it joins.

use serde_json::Value;

use super::{arg, bad, CallPhase, Core, Peer};
use crate::notify::Severity;
use crate::phone::ApiError;

const CONF_USAGE: &str =
    "usage: conference(number, add): number empty (all calls), a line 1..99 or a peer to call; add true|false";

impl Core {
    /// Lines that can be mixed: SIP calls that are connected and not being transferred away.
    fn mixable_lines(&self) -> Vec<usize> {
        self.lines
            .iter()
            .filter(|(_, l)| {
                matches!(l.peer, Peer::Sip(_))
                    && l.phase == CallPhase::Connected
                    && !being_transferred(l)
            })
            .map(|(n, _)| n)
            .collect()
    }

    pub(super) async fn conference_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let target = arg(args, 0).unwrap_or("").trim().to_string();
        let add = match arg(args, 1).map(str::trim).filter(|s| !s.is_empty()) {
            None => true,
            Some(v) => crate::params::parse_bool(v).ok_or_else(|| bad(CONF_USAGE))?,
        };
        if target.is_empty() {
            return if add {
                let lines = self.mixable_lines();
                if lines.len() < 2 {
                    return Err(ApiError::Failed(
                        "a conference needs at least two connected calls".into(),
                    ));
                }
                for n in &lines {
                    self.join_conference(*n).await?;
                }
                self.log(
                    Severity::Event,
                    &format!("conference: lines {lines:?} joined"),
                );
                Ok(Value::from(lines.len()))
            } else {
                if let Some(hub) = &self.hub {
                    hub.handle.dissolve_conference();
                }
                let members: Vec<usize> = self
                    .lines
                    .iter()
                    .filter(|(_, l)| l.join_conference)
                    .map(|(n, _)| n)
                    .collect();
                for (_, l) in self.lines.iter_mut() {
                    l.join_conference = false;
                }
                // A microphone muted inside the mix is muted by media direction again.
                for n in members {
                    self.apply_media(n);
                }
                self.log(Severity::Event, "conference dissolved");
                Ok(Value::Null)
            };
        }
        if let Ok(n) = target.parse::<usize>() {
            if (1..100).contains(&n) {
                if self.lines.get(n).is_none() {
                    return Err(ApiError::Failed(format!("no call on line {n}")));
                }
                if add {
                    self.join_conference(n).await?;
                } else {
                    if let Some(hub) = &self.hub {
                        hub.handle.set_conference(n as u32, false);
                    }
                    if let Some(l) = self.lines.get_mut(n) {
                        l.join_conference = false;
                    }
                    self.apply_media(n);
                }
                return Ok(Value::Null);
            }
        }
        if !add {
            // Remove by peer name.
            let found = self
                .lines
                .iter()
                .find(|(_, l)| l.peername.eq_ignore_ascii_case(&target))
                .map(|(n, _)| n);
            let Some(n) = found else {
                return Err(ApiError::Failed(format!("no call with '{target}'")));
            };
            if let Some(hub) = &self.hub {
                hub.handle.set_conference(n as u32, false);
            }
            if let Some(l) = self.lines.get_mut(n) {
                l.join_conference = false;
            }
            self.apply_media(n);
            return Ok(Value::Null);
        }
        // A new party: call it; it joins when its media starts (see `joined_if_asked`).
        let n = self.call(&target).await?;
        if let Some(l) = self.lines.get_mut(n) {
            l.join_conference = true;
        }
        // The calls already up join now, so the new party hears them as soon as it answers;
        // calls of ours still being set up join when they connect.
        // Not calls on their way elsewhere (a transfer), nor the consultation call of an
        // attended transfer that has not connected yet (it is the transfer's, not the
        // conference's; once connected the user may still add it by line).
        let others: Vec<usize> = self
            .lines
            .iter()
            .filter(|(_, l)| {
                matches!(l.peer, Peer::Sip(_))
                    && l.phase != CallPhase::Incoming
                    && !being_transferred(l)
                    && (l.consult_for.is_none() || l.phase == CallPhase::Connected)
            })
            .map(|(m, _)| m)
            .collect();
        for m in others {
            if m != n {
                self.join_conference(m).await?;
            }
        }
        Ok(Value::from(n))
    }

    /// Puts line `n` into the conference: its audio moves onto the mixer (starting it if
    /// needed) and a call we hold is resumed.
    async fn join_conference(&mut self, n: usize) -> Result<(), ApiError> {
        let Some(l) = self.lines.get_mut(n) else {
            return Err(ApiError::Failed(format!("no call on line {n}")));
        };
        l.join_conference = true;
        if l.port.is_none() {
            // Not connected yet: joins when its media starts.
            return Ok(());
        }
        let Some(handle) = self.ensure_hub().await else {
            return Err(ApiError::Failed("the mixer could not be started".into()));
        };
        handle.set_conference(n as u32, true);
        self.apply_media(n);
        // Read after `ensure_hub`: starting the mixer resumes waiting members itself, and a
        // second resume would cross the first re-INVITE (491).
        let on_hold = self.lines.get(n).is_some_and(|l| {
            (l.hold == super::line_api::HOLD_LOCAL || l.hold == super::line_api::HOLD_BOTH)
                && l.hold_pending.is_none()
        });
        if on_hold {
            if let Err(e) = self.hold_api(&["false".to_string(), n.to_string()]) {
                self.log(
                    Severity::Warning,
                    &format!("conference: cannot resume line {n}: {e}"),
                );
            }
        }
        Ok(())
    }

    /// `bargeinheader`: the incoming call on line `n` is answered without ringing or
    /// call-setup notifications and joins a conference with every connected call (the calls
    /// already up join now; line `n` when its media starts, see `joined_if_asked`).
    pub(super) async fn barge_in(&mut self, n: usize) {
        let others: Vec<usize> = self
            .mixable_lines()
            .into_iter()
            .filter(|m| *m != n)
            .collect();
        if let Some(l) = self.lines.get_mut(n) {
            l.join_conference = !others.is_empty();
        }
        if let Err(e) = self.answer_line(n).await {
            self.log(Severity::Warning, &format!("barge-in on line {n}: {e}"));
            return;
        }
        for m in &others {
            if let Err(e) = self.join_conference(*m).await {
                self.log(
                    Severity::Warning,
                    &format!("barge-in: line {m} not joined: {e}"),
                );
            }
        }
        self.joined_if_asked(n);
        self.log(
            Severity::Event,
            &format!("barge-in on line {n}: conference with lines {others:?}"),
        );
    }

    /// After a line's media started: join the conference when it was asked to.
    pub(super) fn joined_if_asked(&mut self, n: usize) {
        let asked = self.lines.get(n).is_some_and(|l| l.join_conference);
        if let (true, Some(hub)) = (asked, &self.hub) {
            hub.handle.set_conference(n as u32, true);
            self.apply_media(n);
        }
    }

    /// `setvolume(dev, percent)`: 0 microphone, 1 speaker, 2 ringback; 50 leaves the level
    /// as the device gives it, 0 mutes, 100 doubles the amplitude. Acts on running calls.
    pub(super) fn setvolume_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let usage = "usage: setvolume(dev, volume): dev 0 microphone, 1 speaker, 2 ringback; volume 0..100 (50 = unchanged)";
        let dev = arg(args, 0)
            .and_then(|d| d.trim().parse::<i64>().ok())
            .ok_or_else(|| bad(usage))?;
        let vol = arg(args, 1)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && (0.0..=100.0).contains(v))
            .ok_or_else(|| bad(usage))?;
        let v = vol.round() as u32;
        match dev {
            0 => self.mic_volume.set(v),
            1 => self.speaker_volume.set(v),
            2 => self.ring_volume.set(v),
            _ => return Err(bad(usage)),
        }
        Ok(Value::Null)
    }

    /// `getvolume(dev)`: the level set by `setvolume` (50 unless changed).
    pub(super) fn getvolume_api(&self, args: &[String]) -> Result<Value, ApiError> {
        let usage = "usage: getvolume(dev): dev 0 microphone, 1 speaker, 2 ringback";
        let dev = arg(args, 0)
            .and_then(|d| d.trim().parse::<i64>().ok())
            .ok_or_else(|| bad(usage))?;
        let v = match dev {
            0 => self.mic_volume.get(),
            1 => self.speaker_volume.get(),
            2 => self.ring_volume.get(),
            _ => return Err(bad(usage)),
        };
        Ok(Value::from(v))
    }
}

/// A call on its way to someone else: held for a transfer whose REFER is out, a blind
/// transfer's REFER is out or waiting for its hold, the call is the consultation leg a REFER
/// went to, or it is transferred as soon as it is answered (`calltransferalways`).
fn being_transferred(l: &super::Line) -> bool {
    // `transfer_resume`: we held it for a transfer whose REFER is out (it stays set until the
    // transfer ends or fails).
    l.transfer_resume
        || l.blind_refer
        || l.refer_after_hold.is_some()
        || l.after_transfer_of.is_some()
        || l.transfer_on_connect.is_some()
}
