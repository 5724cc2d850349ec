//! `autohold` / `automute`: when a new call starts (or the user switches lines), the other
//! calls are held or muted so the user talks to one party at a time (catalog: 0 never,
//! 1 on an incoming call, 2 on an outgoing call, 3 on both, 4 when another line is chosen).

use super::{CallPhase, Core, Peer};
use crate::notify::Severity;

/// What started the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    Incoming,
    Outgoing,
    LineSwitch,
}

/// Whether a setting value (0..4) applies to this trigger.
pub(super) fn applies(setting: i64, trigger: Trigger) -> bool {
    matches!(
        (setting, trigger),
        (1 | 3, Trigger::Incoming) | (2 | 3, Trigger::Outgoing) | (4, Trigger::LineSwitch)
    )
}

impl Core {
    /// Holds and/or mutes every connected call except line `keep`, as `autohold` and
    /// `automute` ask for this trigger.
    pub(super) fn auto_hold_others(&mut self, keep: usize, trigger: Trigger) {
        let hold = applies(self.params.get_i64("autohold").unwrap_or(0), trigger);
        let mute = applies(self.params.get_i64("automute").unwrap_or(0), trigger);
        if !hold && !mute {
            return;
        }
        let others: Vec<usize> = self
            .lines
            .iter()
            .filter(|(n, l)| {
                *n != keep && l.phase == CallPhase::Connected && matches!(l.peer, Peer::Sip(_))
            })
            .map(|(n, _)| n)
            .collect();
        if trigger == Trigger::LineSwitch {
            // The line chosen is the one the user talks to now: what autohold / automute
            // did to it earlier is taken back (a hold or mute of the user's own stays).
            self.take_back_auto(keep, hold, mute);
        }
        for n in others {
            let (held, muted) = self
                .lines
                .get(n)
                .map_or((false, false), |l| (is_held(l), l.mute != 0));
            if hold && !held {
                match self.hold_api(&["true".to_string(), n.to_string()]) {
                    Ok(_) => self.mark_auto(n, true, false),
                    Err(e) => self.log(Severity::Warning, &format!("autohold line {n}: {e}")),
                }
            }
            if mute && !muted {
                match self.mute_api(&["true".to_string(), "0".to_string(), n.to_string()]) {
                    Ok(_) => self.mark_auto(n, false, true),
                    Err(e) => self.log(Severity::Warning, &format!("automute line {n}: {e}")),
                }
            }
        }
    }

    fn mark_auto(&mut self, n: usize, held: bool, muted: bool) {
        if let Some(l) = self.lines.get_mut(n) {
            l.auto_held |= held;
            l.auto_muted |= muted;
        }
    }

    fn take_back_auto(&mut self, n: usize, hold: bool, mute: bool) {
        let Some(l) = self.lines.get_mut(n) else {
            return;
        };
        let resume = hold && std::mem::take(&mut l.auto_held) && is_held(l);
        let unmute = mute && std::mem::take(&mut l.auto_muted) && l.mute != 0;
        if resume {
            if let Err(e) = self.hold_api(&["false".to_string(), n.to_string()]) {
                self.log(
                    Severity::Warning,
                    &format!("autohold: resume line {n}: {e}"),
                );
            }
        }
        if unmute {
            if let Err(e) = self.mute_api(&["false".to_string(), "0".to_string(), n.to_string()]) {
                self.log(
                    Severity::Warning,
                    &format!("automute: unmute line {n}: {e}"),
                );
            }
        }
    }
}

/// Whether we hold a line (or our hold re-INVITE is on its way).
fn is_held(l: &super::Line) -> bool {
    l.hold == super::line_api::HOLD_LOCAL
        || l.hold == super::line_api::HOLD_BOTH
        || l.hold_pending == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_apply_to_their_triggers_only() {
        use Trigger::*;
        assert!(!applies(0, Incoming) && !applies(0, Outgoing) && !applies(0, LineSwitch));
        assert!(applies(1, Incoming) && !applies(1, Outgoing));
        assert!(applies(2, Outgoing) && !applies(2, Incoming));
        assert!(applies(3, Incoming) && applies(3, Outgoing) && !applies(3, LineSwitch));
        assert!(applies(4, LineSwitch) && !applies(4, Incoming));
    }
}
