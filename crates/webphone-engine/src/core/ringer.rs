//! The ringtone: played while an incoming call rings and no other call is up (during a call
//! the call-waiting beep plays instead, see `routing`).
//!
//! Device: `audiodevicering`, else the playback device (`audiodeviceout`). A `file:` playback
//! device is only rung into when it is named in `audiodevicering` itself, so a call recording
//! device is never overwritten by the ringtone. `playring=0` switches the ringtone off; the
//! level is `volumering` / `setvolume(2, ...)`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::warn;

use webphone_audio::{open_output_or_default, AudioError, AudioOutput, DeviceSpec};
use webphone_media::local::tones::{ToneGenerator, ToneKind, TonePlan};
use webphone_media::PcmSource;

use super::{CallPhase, Core};
use crate::notify::Severity;

/// Rate the ringtone and the sound cues are generated and the ring device opened at.
pub(super) const RING_RATE: u32 = 48_000;

/// A ringtone playing on its own task.
pub(crate) struct Ringer {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Ringer {
    fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        // The task drops the device when it sees the stop; no need to wait for it.
        drop(self.task);
    }
}

/// Which device rings, if any: `audiodevicering`, else the playback device unless that is a
/// file (a recording).
pub(super) fn ring_device(ring: &str, out: &str) -> Option<String> {
    let ring = ring.trim();
    if !ring.is_empty() && !ring.eq_ignore_ascii_case("all") {
        return Some(ring.to_string());
    }
    let out = out.trim();
    if out.to_ascii_lowercase().starts_with("file:") {
        return None;
    }
    Some(out.to_string())
}

/// Opens `device` for playback at [`RING_RATE`] off the engine task (opening a sound card
/// can take a while), for the ringtone and the sound cues: the device, and why a named device
/// gave way to the default one.
pub(super) async fn open_ring_output(
    device: &str,
) -> Result<(Box<dyn AudioOutput>, Option<AudioError>), String> {
    let spec = DeviceSpec::parse(device);
    match tokio::task::spawn_blocking(move || open_output_or_default(&spec, RING_RATE, None)).await
    {
        Ok(opened) => opened.map_err(|e| e.to_string()),
        Err(e) => {
            warn!("ring device thread failed: {e}");
            Err(format!("device thread failed: {e}"))
        }
    }
}

impl Core {
    /// Starts or stops the ringtone to match the lines: it rings while a shown incoming call
    /// waits for an answer and no call is connected.
    pub(super) async fn update_ringer(&mut self) {
        let ringing = self
            .lines
            .iter()
            .any(|(_, l)| l.phase == CallPhase::Incoming && !l.ignored);
        let connected = self
            .lines
            .iter()
            .any(|(_, l)| l.phase == CallPhase::Connected);
        let want = ringing && !connected && self.params.get_i64("playring").unwrap_or(1) != 0;
        match (want, self.ringer.is_some()) {
            (true, false) => self.start_ringer().await,
            (false, true) => {
                if let Some(r) = self.ringer.take() {
                    r.stop();
                }
            }
            _ => {}
        }
    }

    async fn start_ringer(&mut self) {
        let Some(device) = ring_device(
            &self.params.get("audiodevicering"),
            &self.params.get("audiodeviceout"),
        ) else {
            return;
        };
        let mut out = match open_ring_output(&device).await {
            Ok((o, None)) => o,
            Ok((o, Some(e))) => {
                // Like the call's own devices: the default device rings instead.
                self.log(
                    Severity::Warning,
                    &format!("cannot ring on {device} ({e}); ringing on the default device"),
                );
                o
            }
            Err(e) => {
                self.log(Severity::Warning, &format!("cannot ring on {device}: {e}"));
                return;
            }
        };
        let volume: Arc<super::routing::Volume> = self.ring_volume.clone();
        let (tx, mut rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut tone =
                ToneGenerator::standard(TonePlan::default(), ToneKind::Ringtone, RING_RATE);
            let mut frame = vec![0i16; (RING_RATE / 50) as usize];
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    _ = tick.tick() => {
                        tone.read_frame(&mut frame);
                        volume.scale(&mut frame);
                        out.write_frame(&frame);
                    }
                }
            }
        });
        self.ringer = Some(Ringer {
            stop: Some(tx),
            task,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_device_never_rings_into_the_call_recording_file() {
        assert_eq!(ring_device("", "file:/tmp/rec.wav"), None);
        assert_eq!(ring_device("All", "file:/tmp/rec.wav"), None);
        assert_eq!(
            ring_device("file:/tmp/ring.wav", "file:/tmp/rec.wav").as_deref(),
            Some("file:/tmp/ring.wav")
        );
        assert_eq!(ring_device("", "").as_deref(), Some(""));
        assert_eq!(ring_device(" Speakers ", "").as_deref(), Some("Speakers"));
    }
}
