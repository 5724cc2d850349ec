//! Where each call's audio goes: straight to the sound devices, or through the local mixer.
//!
//! A call's media session reads and writes through an [`AudioPort`]: a pair of switchable
//! adapters the engine can re-point while the call runs, so that
//! - a second call moves every call onto one [`MixerHub`] that owns the devices (peers do not
//!   hear each other until `conference()` joins them; the active, unheld line is played),
//! - `setdevice(..., 2)` swaps the devices in the middle of a call without dropping it,
//! - `setvolume` scales microphone and speaker (percent, 50 = unchanged),
//! - a selected sound device that disappears mid-call is replaced by the default device of
//!   that direction inside the audio device itself (the port and the call's media are not
//!   touched, RTP goes on); the engine only tells the user ([`DeviceEvent`]).
//!
//! One call alone talks to the devices directly: no mixer FIFO, so no added delay.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use webphone_audio::{DeviceEvent, DeviceEvents, Direction as AudioDirection};
use webphone_media::local::mixer::{MixerConfig, MixerHandle, MixerHub, SoundId};
use webphone_media::local::tones::{ToneGenerator, ToneKind, TonePlan};
use webphone_media::{PcmSink, PcmSource};

use super::{Cmd, Core, Peer};
use crate::notify::Severity;

/// Volume in percent: 0 = muted, 50 = unchanged, 100 = twice the amplitude.
#[derive(Debug)]
pub(crate) struct Volume(AtomicU32);

impl Volume {
    pub(crate) fn new(percent: u32) -> Arc<Volume> {
        Arc::new(Volume(AtomicU32::new(percent.min(100))))
    }
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
    pub(crate) fn set(&self, percent: u32) {
        self.0.store(percent.min(100), Ordering::Relaxed);
    }
    /// Scales a frame in place (saturating); 50 % leaves it untouched.
    pub(crate) fn scale(&self, frame: &mut [i16]) {
        self.apply(frame);
    }

    fn apply(&self, frame: &mut [i16]) {
        let p = self.get();
        if p == 50 {
            return;
        }
        let gain = p as f32 / 50.0;
        for s in frame {
            *s = (f32::from(*s) * gain).clamp(-32768.0, 32767.0) as i16;
        }
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type SharedSource = Arc<Mutex<Box<dyn PcmSource>>>;
type SharedSink = Arc<Mutex<Box<dyn PcmSink>>>;

/// The media session's side of a port: reads whatever source is plugged in now.
struct PortSource {
    inner: SharedSource,
    volume: Arc<Volume>,
}
impl PcmSource for PortSource {
    fn read_frame(&mut self, out: &mut [i16]) {
        lock(&self.inner).read_frame(out);
        self.volume.apply(out);
    }
}

/// The media session's side of a port: writes to whatever sink is plugged in now.
struct PortSink {
    inner: SharedSink,
    volume: Arc<Volume>,
    buf: Vec<i16>,
}
impl PcmSink for PortSink {
    fn write_frame(&mut self, frame: &[i16]) {
        if self.volume.get() == 50 {
            lock(&self.inner).write_frame(frame);
            return;
        }
        self.buf.clear();
        self.buf.extend_from_slice(frame);
        self.volume.apply(&mut self.buf);
        lock(&self.inner).write_frame(&self.buf);
    }
}

/// Silence in, nothing out: what a port holds while it is being re-plugged.
struct Unplugged;
impl PcmSource for Unplugged {
    fn read_frame(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
}
impl PcmSink for Unplugged {
    fn write_frame(&mut self, _frame: &[i16]) {}
}

/// Whether a port talks to the devices or to the mixer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Devices,
    Mixer,
}

/// The engine's side of one call's audio.
pub(crate) struct AudioPort {
    source: SharedSource,
    sink: SharedSink,
    /// The call's audio rate (Hz): devices are opened and mixer lines added at this rate.
    pub(crate) rate: u32,
    pub(crate) route: Route,
}

impl AudioPort {
    /// A port plugged into `source`/`sink`, and the two adapters for the media session.
    pub(crate) fn new(
        source: Box<dyn PcmSource>,
        sink: Box<dyn PcmSink>,
        rate: u32,
        route: Route,
        mic: Arc<Volume>,
        speaker: Arc<Volume>,
    ) -> (AudioPort, Box<dyn PcmSource>, Box<dyn PcmSink>) {
        let source: SharedSource = Arc::new(Mutex::new(source));
        let sink: SharedSink = Arc::new(Mutex::new(sink));
        let s = PortSource {
            inner: source.clone(),
            volume: mic,
        };
        let k = PortSink {
            inner: sink.clone(),
            volume: speaker,
            buf: Vec::new(),
        };
        (
            AudioPort {
                source,
                sink,
                rate,
                route,
            },
            Box::new(s),
            Box::new(k),
        )
    }

    /// Plugs new ends in and gives back the old ones.
    pub(crate) fn replug(
        &mut self,
        source: Box<dyn PcmSource>,
        sink: Box<dyn PcmSink>,
        route: Route,
    ) -> (Box<dyn PcmSource>, Box<dyn PcmSink>) {
        self.route = route;
        let old_src = std::mem::replace(&mut *lock(&self.source), source);
        let old_sink = std::mem::replace(&mut *lock(&self.sink), sink);
        (old_src, old_sink)
    }

    /// Unplugs both ends (silence until re-plugged) and gives them back.
    fn unplug(&mut self) -> (Box<dyn PcmSource>, Box<dyn PcmSink>) {
        let route = self.route;
        self.replug(Box::new(Unplugged), Box::new(Unplugged), route)
    }
}

/// The running mixer: one per engine while two or more calls have media.
pub(crate) struct Hub {
    pub(crate) handle: MixerHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<MixerHub>>,
}

impl Hub {
    fn start(hub: MixerHub) -> Hub {
        let handle = hub.handle();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(hub.run(async move {
            let _ = rx.await;
        }));
        Hub {
            handle,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops ticking and gives back the hub (and with it the devices) to be dropped.
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(hub) => drop(hub),
                Err(e) => warn!("mixer task failed: {e}"),
            }
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The user-facing text for a device fallback or return, and its severity.
pub(crate) fn device_event_text(event: &DeviceEvent) -> (Severity, String) {
    let what = |dir: AudioDirection| match dir {
        AudioDirection::Input => "recording device",
        AudioDirection::Output => "playback device",
    };
    match event {
        DeviceEvent::FellBack {
            direction,
            selected,
            reason,
            default_device,
        } => {
            let then = match default_device {
                Some(d) => format!("using the default {} {d}", what(*direction)),
                None => format!(
                    "the default {} cannot be opened either; silent until a device returns",
                    what(*direction)
                ),
            };
            (
                Severity::Warning,
                format!(
                    "The {} {selected} is gone ({reason}): {then}",
                    what(*direction)
                ),
            )
        }
        DeviceEvent::Restored {
            direction,
            selected,
        } => (
            Severity::Event,
            format!(
                "The {} {selected} is back and in use again",
                what(*direction)
            ),
        ),
    }
}

impl Core {
    /// Where the audio devices report a lost or returning device: the engine task.
    pub(super) fn device_events(&self) -> DeviceEvents {
        let tx = self.cmd_tx.clone();
        std::sync::Arc::new(move |event| {
            let _ = tx.send(Cmd::AudioDevice(event));
        })
    }

    /// A selected device was lost (the default device carries the audio now) or came back:
    /// the user is told with an EVENT notification and `onDisplay` (a warning for the loss).
    pub(super) fn audio_device_event(&self, event: DeviceEvent) {
        let (severity, text) = device_event_text(&event);
        self.display(severity, &text);
    }

    /// Lines whose media runs (they have an audio port), in line order.
    fn lines_with_port(&self) -> Vec<usize> {
        self.lines
            .iter()
            .filter(|(_, l)| l.port.is_some())
            .map(|(n, _)| n)
            .collect()
    }

    /// Whether a new call's media should go through the mixer: another call has media already.
    pub(super) fn needs_mixer(&self, new_line: usize) -> bool {
        self.hub.is_some() || self.lines_with_port().iter().any(|&n| n != new_line)
    }

    /// Makes sure the mixer runs, moving a call that talks to the devices directly onto it (its
    /// devices become the mixer's, so nothing is reopened). Returns the mixer handle.
    pub(super) async fn ensure_hub(&mut self) -> Option<MixerHandle> {
        if let Some(h) = &self.hub {
            return Some(h.handle.clone());
        }
        let direct = self
            .lines_with_port()
            .into_iter()
            .find(|&n| matches!(self.lines.get(n), Some(l) if l.port.as_ref().is_some_and(|p| p.route == Route::Devices)));
        let (mic, speaker, rate): (Box<dyn PcmSource>, Box<dyn PcmSink>, u32) = match direct {
            Some(n) => {
                let port = self.lines.get_mut(n).and_then(|l| l.port.as_mut())?;
                let rate = port.rate;
                let (s, k) = port.unplug();
                (s, k, rate)
            }
            None => {
                let rate = MixerConfig::default().rate;
                let (i, o) = self.open_devices(rate).await;
                (
                    Box::new(super::InputAdapter(i)),
                    Box::new(super::OutputAdapter(o)),
                    rate,
                )
            }
        };
        let cfg = MixerConfig {
            rate,
            ..MixerConfig::default()
        };
        let hub = match MixerHub::new(cfg, mic, speaker) {
            Ok(h) => h,
            Err(e) => {
                self.log(Severity::Warning, &format!("cannot start the mixer: {e}"));
                return None;
            }
        };
        let hub = Hub::start(hub);
        let handle = hub.handle.clone();
        self.hub = Some(hub);
        debug!(rate, "mixer started");
        if let Some(n) = direct {
            self.plug_into_hub(n, &handle);
        }
        // A line asked into a conference before there was a mixer (its call connected while
        // it was the only one with media) joins now.
        let waiting: Vec<usize> = self
            .lines
            .iter()
            .filter(|(_, l)| l.join_conference && l.port.is_some())
            .map(|(n, _)| n)
            .collect();
        for n in waiting {
            handle.set_conference(n as u32, true);
            self.apply_media(n);
            // Like `join_conference`: a member we hold is resumed.
            let held = self.lines.get(n).is_some_and(|l| {
                l.hold == super::line_api::HOLD_LOCAL || l.hold == super::line_api::HOLD_BOTH
            });
            if held {
                if let Err(e) = self.hold_api(&["false".to_string(), n.to_string()]) {
                    self.log(
                        Severity::Warning,
                        &format!("conference: cannot resume line {n}: {e}"),
                    );
                }
            }
        }
        Some(handle)
    }

    /// Re-plugs line `n`'s port into the mixer.
    fn plug_into_hub(&mut self, n: usize, handle: &MixerHandle) {
        let Some(port) = self.lines.get_mut(n).and_then(|l| l.port.as_mut()) else {
            return;
        };
        match handle.add_line(n as u32, port.rate) {
            Ok((src, sink)) => {
                let _ = port.replug(Box::new(src), Box::new(sink), Route::Mixer);
            }
            Err(e) => warn!(line = n, "mixer refused the line: {e}"),
        }
        self.update_audible();
    }

    /// Adds a line whose port is new (its media starts now) to the mixer.
    pub(super) fn mixer_ports(
        &self,
        handle: &MixerHandle,
        n: usize,
        rate: u32,
    ) -> Option<(Box<dyn PcmSource>, Box<dyn PcmSink>)> {
        match handle.add_line(n as u32, rate) {
            Ok((s, k)) => Some((Box::new(s), Box::new(k))),
            Err(e) => {
                warn!(line = n, "mixer refused the line: {e}");
                None
            }
        }
    }

    /// The speaker plays the conference and the active line when it is not on hold; other
    /// lines are silent (spec §7: calls are independent until joined).
    pub(super) fn update_audible(&self) {
        let Some(hub) = &self.hub else { return };
        // A new call that only rings becomes the active line but must not silence the call
        // in progress: then the connected, unheld calls stay audible.
        let active = self.lines.active().filter(|a| {
            self.lines
                .get(*a)
                .is_some_and(|l| l.phase == super::CallPhase::Connected)
        });
        for (n, l) in self.lines.iter() {
            if l.port.as_ref().is_some_and(|p| p.route == Route::Mixer) {
                let mine = match active {
                    Some(a) => a == n,
                    None => l.phase == super::CallPhase::Connected,
                };
                hub.handle.set_audible(n as u32, mine && l.hold == 0);
            }
        }
    }

    /// A call comes in while another is connected: a short call-waiting beep (ITU-T E.180
    /// cadence) on the speaker, over the running call. The running call moves onto the mixer
    /// for it (the mixer owns the devices from then on).
    pub(super) async fn call_waiting_beep(&mut self, new_line: usize) {
        let busy = self.lines.iter().any(|(n, l)| {
            n != new_line && l.phase == super::CallPhase::Connected && l.port.is_some()
        });
        if !busy {
            return;
        }
        let Some(handle) = self.ensure_hub().await else {
            return;
        };
        let beep =
            ToneGenerator::standard(TonePlan::default(), ToneKind::CallWaiting, handle.rate());
        let id = handle.play_sound(Box::new(beep));
        if let Some(l) = self.lines.get_mut(new_line) {
            l.waiting_beep = Some(id);
        }
    }

    /// The waiting call was answered or ended: its beep stops.
    pub(super) fn stop_waiting_beep(&self, beep: Option<SoundId>) {
        if let (Some(id), Some(hub)) = (beep, &self.hub) {
            hub.handle.stop_sound(id);
        }
    }

    /// Called after a line ended: stops the mixer when no call uses it any more.
    pub(super) async fn release_hub_if_idle(&mut self) {
        let used = self
            .lines
            .iter()
            .any(|(_, l)| l.port.as_ref().is_some_and(|p| p.route == Route::Mixer));
        if !used {
            if let Some(hub) = self.hub.take() {
                hub.stop().await;
                debug!("mixer stopped");
            }
        }
    }

    /// Swaps the devices of every running call (`setdevice` with immediate=2): each call
    /// talking to the devices gets newly opened ones; the mixer gets new ones by restarting it
    /// around the same lines.
    pub(super) async fn reopen_devices(&mut self) {
        let direct: Vec<usize> = self
            .lines
            .iter()
            .filter(|(_, l)| matches!(l.peer, Peer::Sip(_)))
            .filter(|(_, l)| l.port.as_ref().is_some_and(|p| p.route == Route::Devices))
            .map(|(n, _)| n)
            .collect();
        for n in direct {
            let Some(rate) = self
                .lines
                .get(n)
                .and_then(|l| l.port.as_ref())
                .map(|p| p.rate)
            else {
                continue;
            };
            let (i, o) = self.open_devices(rate).await;
            if let Some(port) = self.lines.get_mut(n).and_then(|l| l.port.as_mut()) {
                let old = port.replug(
                    Box::new(super::InputAdapter(i)),
                    Box::new(super::OutputAdapter(o)),
                    Route::Devices,
                );
                drop(old);
            }
        }
        if let Some(old) = self.hub.take() {
            let members = old.handle.conference_lines();
            old.stop().await;
            let lines: Vec<usize> = self
                .lines
                .iter()
                .filter(|(_, l)| l.port.as_ref().is_some_and(|p| p.route == Route::Mixer))
                .map(|(n, _)| n)
                .collect();
            for &n in &lines {
                if let Some(port) = self.lines.get_mut(n).and_then(|l| l.port.as_mut()) {
                    // Silent until the new mixer takes it (still counted as a mixer line, so
                    // the new mixer opens fresh devices instead of taking these).
                    drop(port.unplug());
                }
            }
            if let Some(handle) = self.ensure_hub().await {
                for n in lines {
                    self.plug_into_hub(n, &handle);
                }
                for m in members {
                    handle.set_conference(m, true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webphone_audio::LossReason;

    #[test]
    fn a_lost_headset_is_a_warning_naming_the_default_device_in_use() {
        let (sev, text) = device_event_text(&DeviceEvent::FellBack {
            direction: AudioDirection::Output,
            selected: "alsa:headset".into(),
            reason: LossReason::Removed,
            default_device: Some("alsa:default".into()),
        });
        assert_eq!(sev, Severity::Warning);
        assert_eq!(
            text,
            "The playback device alsa:headset is gone (it was removed): using the default \
             playback device alsa:default"
        );
    }

    #[test]
    fn a_lost_microphone_without_any_default_says_the_audio_is_silent() {
        let (sev, text) = device_event_text(&DeviceEvent::FellBack {
            direction: AudioDirection::Input,
            selected: "USB mic".into(),
            reason: LossReason::Failed,
            default_device: None,
        });
        assert_eq!(sev, Severity::Warning);
        assert!(text.starts_with("The recording device USB mic is gone (it stopped working)"));
        assert!(text.contains("cannot be opened either"), "{text}");
    }

    #[test]
    fn a_returning_device_is_an_event() {
        let (sev, text) = device_event_text(&DeviceEvent::Restored {
            direction: AudioDirection::Input,
            selected: "alsa:headset_mic".into(),
        });
        assert_eq!(sev, Severity::Event);
        assert_eq!(
            text,
            "The recording device alsa:headset_mic is back and in use again"
        );
    }
}
