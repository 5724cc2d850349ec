//! Which device a cpal stream should run on: the selected one, or the default device of the
//! same direction while the selected one is gone (issue 9: a headset unplugged mid-call).
//!
//! A pure state machine driven by the device's watcher thread with an explicit `now`, so the
//! decisions are unit-tested without sound hardware:
//!
//! - the selected device reported gone (cpal `DeviceNotAvailable` / `StreamInvalidated`) or
//!   missing from the device list: fall back to the default device at once;
//! - the selected device failing otherwise (error flood, callbacks stopped): rebuild it; a
//!   third failure without a healthy run in between (ALSA's pulse plugin floods a starting
//!   stream with I/O errors once in a while, so one or two are not enough), or a rebuild that
//!   cannot open it, falls back;
//! - while on the default device: probe the selected device, first after [`PROBE_MIN`], then
//!   backing off to [`PROBE_MAX`]; a probe that delivers audio switches back;
//! - a device that breaks again soon after coming back keeps the backed-off probe interval,
//!   so a flapping device does not make the audio (and the user's notifications) flap.

use std::time::{Duration, Instant};

/// First probe for the selected device this long after falling back.
pub(crate) const PROBE_MIN: Duration = Duration::from_secs(1);
/// Probe interval ceiling.
pub(crate) const PROBE_MAX: Duration = Duration::from_secs(8);
/// How often the device list is checked for the selected device while it is in use.
pub(crate) const LIST_CHECK: Duration = Duration::from_secs(2);
/// A stream that ran this long was healthy: its failure count starts over.
pub(crate) const HEALTHY_RUN: Duration = Duration::from_secs(10);
/// Failures of the selected device (without a healthy run between) before falling back, when
/// the failure itself does not say the device is gone.
pub(crate) const MAX_SELECTED_FAILURES: u32 = 3;

/// Why the selected device was given up; see [`crate::DeviceEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossReason {
    /// The backend reported the device gone (unplugged, disabled).
    Removed,
    /// The device is no longer in the system's device list.
    NotListed,
    /// The device stopped working (error flood, no callbacks) and could not be reopened.
    Failed,
}

impl std::fmt::Display for LossReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LossReason::Removed => "it was removed",
            LossReason::NotListed => "it is no longer listed",
            LossReason::Failed => "it stopped working",
        })
    }
}

/// The device a stream runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Using {
    Selected,
    Default,
}

/// What the watcher does after a stream broke or could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Build the same device again (after the watcher's back-off).
    Rebuild,
    /// Move to the default device now.
    FallBack(LossReason),
}

#[derive(Debug)]
pub(crate) struct Fallback {
    /// A device was selected (not the default itself): falling back means something.
    selectable: bool,
    using: Using,
    /// Failures of the selected device since its last healthy run.
    failures: u32,
    /// When the current stream came up (None while there is none).
    up_since: Option<Instant>,
    /// When the selected device last came back from a fallback.
    restored_at: Option<Instant>,
    next_list_check: Instant,
    next_probe: Instant,
    probe_interval: Duration,
}

impl Fallback {
    /// `selectable`: the stream was opened on a named device (not the default).
    pub(crate) fn new(selectable: bool, now: Instant) -> Fallback {
        Fallback {
            selectable,
            using: Using::Selected,
            failures: 0,
            up_since: None,
            restored_at: None,
            next_list_check: now + LIST_CHECK,
            next_probe: now,
            probe_interval: PROBE_MIN,
        }
    }

    pub(crate) fn using(&self) -> Using {
        if self.selectable {
            self.using
        } else {
            Using::Default
        }
    }

    /// A stream came up on [`Fallback::using`].
    pub(crate) fn stream_up(&mut self, now: Instant) {
        self.up_since = Some(now);
        self.next_list_check = now + LIST_CHECK;
    }

    /// The running stream broke for `loss`.
    pub(crate) fn stream_broken(&mut self, now: Instant, loss: LossReason) -> Decision {
        let healthy = self
            .up_since
            .take()
            .is_some_and(|t| now.saturating_duration_since(t) >= HEALTHY_RUN);
        if !self.selectable || self.using == Using::Default {
            return Decision::Rebuild;
        }
        if healthy {
            self.failures = 0;
        }
        self.failures += 1;
        let flapping = !healthy && self.restored_at.is_some();
        match loss {
            LossReason::Removed | LossReason::NotListed => self.fall_back(now, loss, flapping),
            LossReason::Failed if self.failures >= MAX_SELECTED_FAILURES => {
                self.fall_back(now, loss, flapping)
            }
            LossReason::Failed => Decision::Rebuild,
        }
    }

    /// Building a stream on [`Fallback::using`] failed; `loss` is why the previous one was
    /// given up (reported if this makes us fall back).
    pub(crate) fn build_failed(&mut self, now: Instant, loss: LossReason) -> Decision {
        if self.selectable && self.using == Using::Selected {
            self.failures += 1;
            let flapping = self.restored_at.is_some();
            return self.fall_back(now, loss, flapping);
        }
        Decision::Rebuild
    }

    fn fall_back(&mut self, now: Instant, loss: LossReason, flapping: bool) -> Decision {
        self.using = Using::Default;
        self.failures = 0;
        self.probe_interval = if flapping {
            (self.probe_interval * 2).min(PROBE_MAX)
        } else {
            PROBE_MIN
        };
        self.next_probe = now + self.probe_interval;
        Decision::FallBack(loss)
    }

    /// Whether to look for the selected device in the device list now (while it is in use).
    pub(crate) fn list_check_due(&mut self, now: Instant) -> bool {
        if self.using() != Using::Selected || self.up_since.is_none() || now < self.next_list_check
        {
            return false;
        }
        self.next_list_check = now + LIST_CHECK;
        true
    }

    /// Whether to try the selected device again now (while on the default device).
    pub(crate) fn probe_due(&self, now: Instant) -> bool {
        self.selectable && self.using == Using::Default && now >= self.next_probe
    }

    /// The selected device is still not usable: probe again later, less often.
    pub(crate) fn probe_failed(&mut self, now: Instant) {
        self.probe_interval = (self.probe_interval * 2).min(PROBE_MAX);
        self.next_probe = now + self.probe_interval;
    }

    /// The selected device carries the audio again.
    pub(crate) fn restored(&mut self, now: Instant) {
        self.using = Using::Selected;
        self.restored_at = Some(now);
        self.stream_up(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A stream that just came up, on a selected device or (`false`) on the default one.
    fn running(selectable: bool) -> (Instant, Fallback) {
        let t0 = Instant::now();
        let mut f = Fallback::new(selectable, t0);
        f.stream_up(t0);
        (t0, f)
    }

    #[test]
    fn removed_selected_device_falls_back_to_the_default_at_once() {
        let (t0, mut f) = running(true);
        assert_eq!(f.using(), Using::Selected);
        assert_eq!(
            f.stream_broken(t0 + ms(500), LossReason::Removed),
            Decision::FallBack(LossReason::Removed)
        );
        assert_eq!(f.using(), Using::Default);
    }

    #[test]
    fn selected_device_missing_from_the_list_falls_back() {
        let (t0, mut f) = running(true);
        assert!(
            !f.list_check_due(t0 + ms(100)),
            "too early for a list check"
        );
        assert!(f.list_check_due(t0 + LIST_CHECK));
        assert!(
            !f.list_check_due(t0 + LIST_CHECK + ms(100)),
            "one check per interval"
        );
        assert_eq!(
            f.stream_broken(t0 + LIST_CHECK, LossReason::NotListed),
            Decision::FallBack(LossReason::NotListed)
        );
        assert!(
            !f.list_check_due(t0 + LIST_CHECK * 5),
            "no list checks while on the default device"
        );
    }

    #[test]
    fn a_failing_selected_device_is_rebuilt_twice_then_abandoned() {
        let (t0, mut f) = running(true);
        for at in [1000, 2000] {
            assert_eq!(
                f.stream_broken(t0 + ms(at), LossReason::Failed),
                Decision::Rebuild
            );
            assert_eq!(f.using(), Using::Selected);
            f.stream_up(t0 + ms(at + 200));
        }
        assert_eq!(
            f.stream_broken(t0 + ms(3000), LossReason::Failed),
            Decision::FallBack(LossReason::Failed)
        );
        assert_eq!(f.using(), Using::Default);
    }

    #[test]
    fn a_healthy_run_forgives_earlier_failures() {
        let (t0, mut f) = running(true);
        assert_eq!(
            f.stream_broken(t0 + ms(100), LossReason::Failed),
            Decision::Rebuild
        );
        f.stream_up(t0 + ms(200));
        // ran for longer than HEALTHY_RUN before failing again: just rebuild
        let later = t0 + ms(200) + HEALTHY_RUN;
        assert_eq!(
            f.stream_broken(later, LossReason::Failed),
            Decision::Rebuild
        );
        assert_eq!(f.using(), Using::Selected);
    }

    #[test]
    fn selected_device_that_cannot_be_reopened_falls_back_with_the_original_reason() {
        let (t0, mut f) = running(true);
        assert_eq!(
            f.stream_broken(t0 + ms(100), LossReason::Failed),
            Decision::Rebuild
        );
        assert_eq!(
            f.build_failed(t0 + ms(300), LossReason::Failed),
            Decision::FallBack(LossReason::Failed)
        );
        // the default device failing to build is retried, never "falls back" again
        assert_eq!(
            f.build_failed(t0 + ms(400), LossReason::Failed),
            Decision::Rebuild
        );
        assert_eq!(f.using(), Using::Default);
    }

    #[test]
    fn the_default_device_itself_is_only_ever_rebuilt() {
        let (t0, mut f) = running(false);
        assert_eq!(f.using(), Using::Default);
        assert_eq!(
            f.stream_broken(t0 + ms(10), LossReason::Removed),
            Decision::Rebuild
        );
        assert_eq!(
            f.build_failed(t0 + ms(20), LossReason::Removed),
            Decision::Rebuild
        );
        assert!(!f.probe_due(t0 + PROBE_MAX * 2));
        assert!(!f.list_check_due(t0 + LIST_CHECK * 2));
    }

    #[test]
    fn probes_for_the_selected_device_back_off_while_it_stays_away() {
        let (t0, mut f) = running(true);
        f.stream_broken(t0, LossReason::Removed);
        f.stream_up(t0 + ms(50));
        assert!(!f.probe_due(t0 + PROBE_MIN - ms(1)));
        let mut now = t0 + PROBE_MIN;
        let mut gaps = Vec::new();
        for _ in 0..6 {
            assert!(f.probe_due(now));
            f.probe_failed(now);
            let mut next = now;
            while !f.probe_due(next) {
                next += ms(100);
            }
            gaps.push(next - now);
            now = next;
        }
        assert_eq!(
            gaps,
            vec![ms(2000), ms(4000), ms(8000), ms(8000), ms(8000), ms(8000)]
        );
    }

    #[test]
    fn a_returning_device_is_used_again_and_list_checks_resume() {
        let (t0, mut f) = running(true);
        f.stream_broken(t0 + ms(10), LossReason::Removed);
        f.stream_up(t0 + ms(20));
        assert!(!f.probe_due(t0 + PROBE_MIN));
        let back = t0 + ms(10) + PROBE_MIN;
        assert!(f.probe_due(back));
        f.restored(back);
        assert_eq!(f.using(), Using::Selected);
        assert!(!f.probe_due(back + PROBE_MAX));
        assert!(f.list_check_due(back + LIST_CHECK));
    }

    #[test]
    fn a_flapping_device_keeps_the_backed_off_probe_interval() {
        let (t0, mut f) = running(true);
        f.stream_broken(t0, LossReason::Removed);
        f.probe_failed(t0 + PROBE_MIN); // next probe 2 s later
        let back = t0 + PROBE_MIN + ms(2000);
        assert!(f.probe_due(back));
        f.restored(back);
        // gone again after 1 s (not a healthy run): the interval doubles instead of resetting
        assert_eq!(
            f.stream_broken(back + ms(1000), LossReason::Removed),
            Decision::FallBack(LossReason::Removed)
        );
        assert!(!f.probe_due(back + ms(1000) + ms(3900)));
        assert!(f.probe_due(back + ms(1000) + ms(4000)));
    }

    #[test]
    fn after_a_healthy_run_a_new_loss_probes_quickly_again() {
        let (t0, mut f) = running(true);
        f.stream_broken(t0, LossReason::Removed);
        f.probe_failed(t0 + PROBE_MIN);
        f.probe_failed(t0 + PROBE_MIN * 3);
        let back = t0 + ms(10_000);
        f.restored(back);
        let lost = back + HEALTHY_RUN + ms(1);
        assert_eq!(
            f.stream_broken(lost, LossReason::Removed),
            Decision::FallBack(LossReason::Removed)
        );
        assert!(f.probe_due(lost + PROBE_MIN));
    }
}
