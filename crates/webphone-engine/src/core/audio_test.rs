//! `audiotest(action)` (engine extension): trying the audio devices outside a call, for the
//! Settings page of a softphone (a microphone level meter, a speaker test).
//!
//! - `mic`: opens the capture device calls use (`audiodevicein`, at the `volumein` level) and
//!   reports its level as `VAD` notifications (notifications.md §15: the local side measured,
//!   the remote side `OFF`) every [`REPORT_EVERY`], until `stop`, [`MIC_TEST_LIMIT`], the
//!   engine stops, or a call's media opens the device for the call. Asking again restarts it;
//!   asking during a call is refused (the call has the microphone).
//! - `speaker`: plays [`SPEAKER_TEST`] on the playback device (`audiodeviceout`, at the
//!   `volumeout` level): two short tones, so a user hears that sound comes out.
//! - `stop`: ends the microphone test (nothing when none runs).
//!
//! Each runs on a task of its own: the engine never waits for a sound device.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use tracing::debug;
use webphone_audio::{open_input_or_default, open_output_or_default, DeviceSpec};
use webphone_media::dsp::{format_vad_notification, VadReport, VoiceDetector};
use webphone_media::local::tones::{dbm0_amplitude, Segment, Sound, ToneGenerator};

use super::{arg, bad, routing::Volume, Core};
use crate::phone::ApiError;
use crate::Event;

/// Sample rate of both tests (wideband: enough for a level and a tone).
const RATE: u32 = 16_000;
/// One frame: 20 ms.
const FRAME: Duration = Duration::from_millis(20);
/// How often the microphone test reports a level (a meter needs a few updates a second).
pub(crate) const REPORT_EVERY: Duration = Duration::from_millis(200);
/// The microphone test ends by itself after this long.
pub(crate) const MIC_TEST_LIMIT: Duration = Duration::from_secs(30);
/// The speaker test: 440 Hz then 660 Hz, 400 ms each with a 100 ms gap (about 0.9 s).
const SPEAKER_TEST: [(f32, u32); 3] = [(440.0, 400), (0.0, 100), (660.0, 400)];
/// Loudness of the speaker test tones: -10 dBm0 (a clear tone, well below full scale).
const SPEAKER_TEST_DBM0: f32 = -10.0;

/// What `audiotest` was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AudioTest {
    Mic,
    Speaker,
    Stop,
}

impl AudioTest {
    /// From the API argument (case and surrounding spaces ignored).
    pub(crate) fn parse(s: &str) -> Option<AudioTest> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mic" | "microphone" => Some(AudioTest::Mic),
            "speaker" => Some(AudioTest::Speaker),
            "stop" => Some(AudioTest::Stop),
            _ => None,
        }
    }
}

/// The frames between two reports of the microphone test.
fn frames_per_report() -> u32 {
    (REPORT_EVERY.as_millis() / FRAME.as_millis()).max(1) as u32
}

/// The speaker test sound.
fn speaker_test_sound() -> ToneGenerator {
    let segments: Vec<Segment> = SPEAKER_TEST
        .iter()
        .map(|&(f, ms)| {
            if f > 0.0 {
                Segment::tone(f, 0.0, dbm0_amplitude(SPEAKER_TEST_DBM0), ms)
            } else {
                Segment::silence(ms)
            }
        })
        .collect();
    ToneGenerator::new(RATE, &segments, false)
}

impl Core {
    /// `audiotest(action)`: see the module documentation.
    pub(super) fn audiotest_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let usage = "usage: audiotest(action): mic (report the microphone level as VAD \
                     notifications), speaker (play a test sound) or stop";
        let what = arg(args, 0)
            .and_then(AudioTest::parse)
            .ok_or_else(|| bad(usage))?;
        match what {
            AudioTest::Stop => self.stop_mic_test(),
            AudioTest::Mic if self.lines.busy().next().is_some() => {
                return Err(ApiError::Failed(
                    "the microphone test is for when no call is going on: the call has the \
                     microphone"
                        .into(),
                ));
            }
            AudioTest::Mic => {
                self.stop_mic_test();
                let spec = self.capture_spec();
                let task =
                    tokio::spawn(mic_test(spec, self.mic_volume.clone(), self.events.clone()));
                *self.mic_test.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(task.abort_handle());
            }
            AudioTest::Speaker => {
                let spec = DeviceSpec::parse(&self.params.get("audiodeviceout"));
                tokio::spawn(speaker_test(spec, self.speaker_volume.clone()));
            }
        }
        Ok(Value::Null)
    }

    /// Ends the microphone test, if one runs (`audiotest('stop')`, a call's media, `stop`).
    pub(super) fn stop_mic_test(&self) {
        let task = self
            .mic_test
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

/// Opens a sound device with `open` off the async threads (device opening may block); the
/// fallback to the default device, when the named one failed, is logged for `what` test.
async fn open_device<T: Send + 'static>(
    what: &'static str,
    open: impl FnOnce() -> Result<(T, Option<webphone_audio::AudioError>), webphone_audio::AudioError>
        + Send
        + 'static,
) -> Result<T, String> {
    let (device, fallback) = tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if let Some(e) = fallback {
        debug!("{what} test on the default device: {e}");
    }
    Ok(device)
}

/// The microphone test's task: levels of `spec` as VAD notifications on `events`.
async fn mic_test(spec: DeviceSpec, volume: Arc<Volume>, events: broadcast::Sender<Event>) {
    let opened = open_device("microphone", move || {
        open_input_or_default(&spec, RATE, None)
    });
    let mut input = match opened.await {
        Ok(input) => input,
        Err(e) => {
            let _ = events.send(Event::Notification(format!(
                "EVENT,WARNING,microphone test: no capture device ({e})"
            )));
            return;
        }
    };
    let mut detector = VoiceDetector::new(FRAME.as_millis() as u32);
    let mut frame = vec![0i16; (RATE as usize) * FRAME.as_millis() as usize / 1000];
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let per_report = frames_per_report();
    let total = (MIC_TEST_LIMIT.as_millis() / FRAME.as_millis()) as u32;
    for n in 1..=total {
        tick.tick().await;
        input.read_frame(&mut frame);
        volume.scale(&mut frame);
        detector.process(&frame);
        if n % per_report == 0 {
            let report = VadReport {
                local: detector.take_interval(),
                ..VadReport::default()
            };
            if events
                .send(Event::Notification(format_vad_notification(&report)))
                .is_err()
            {
                return;
            }
        }
    }
    debug!("microphone test ended after {MIC_TEST_LIMIT:?}");
}

/// The speaker test's task: [`speaker_test_sound`] on `spec`.
async fn speaker_test(spec: DeviceSpec, volume: Arc<Volume>) {
    let mut out =
        match open_device("speaker", move || open_output_or_default(&spec, RATE, None)).await {
            Ok(out) => out,
            Err(e) => {
                debug!("speaker test: no playback device: {e}");
                return;
            }
        };
    super::cues::play_out(
        out.as_mut(),
        &mut [Box::new(speaker_test_sound()) as Box<dyn Sound + Send>],
        RATE,
        &volume,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use webphone_media::PcmSource;

    #[test]
    fn actions_parse_case_blind_and_refuse_the_rest() {
        assert_eq!(AudioTest::parse(" MIC "), Some(AudioTest::Mic));
        assert_eq!(AudioTest::parse("microphone"), Some(AudioTest::Mic));
        assert_eq!(AudioTest::parse("Speaker"), Some(AudioTest::Speaker));
        assert_eq!(AudioTest::parse("stop"), Some(AudioTest::Stop));
        assert_eq!(AudioTest::parse(""), None);
        assert_eq!(AudioTest::parse("camera"), None);
    }

    #[test]
    fn the_meter_gets_five_reports_a_second() {
        assert_eq!(frames_per_report(), 10);
    }

    #[test]
    fn the_speaker_test_is_two_tones_of_about_a_second() {
        let mut s = speaker_test_sound();
        let mut frame = vec![0i16; 320];
        let mut frames = 0;
        let mut loud = 0;
        while !s.is_finished() && frames < 200 {
            s.read_frame(&mut frame);
            frames += 1;
            if frame.iter().any(|v| v.unsigned_abs() > 1000) {
                loud += 1;
            }
        }
        assert_eq!(frames, 45, "900 ms in 20 ms frames");
        assert_eq!(loud, 40, "two 400 ms tones");
    }
}
