//! The per-call processing state the pipeline holds: what it does to each captured frame
//! (before encoding) and each played frame (after decoding). See [`DspStage`].

use std::time::Duration;

use super::apm::{ApmStats, AudioProcessor};
use super::cng::ComfortNoise;
use super::vad::{NoVoiceWatch, VadReport, VoiceDetector};
use super::DspConfig;
use crate::jitter::FrameKind;

/// Capture and playout processing for one call.
///
/// - capture: echo cancellation / noise suppression / gain ([`AudioProcessor`], only when a
///   stage is on), then the local voice detector and the no-voice watch;
/// - playout: comfort noise in place of silence after an RFC 3389 CN packet, then the frame
///   becomes the echo canceller's far-end reference and goes through the remote voice detector.
#[derive(Debug)]
pub struct DspStage {
    cfg: DspConfig,
    frame: Duration,
    /// Boxed: the processor's state is about 20 KiB, and most calls run without it (the
    /// stage lives inside every call's media task).
    apm: Option<Box<AudioProcessor>>,
    local_vad: Option<VoiceDetector>,
    remote_vad: Option<VoiceDetector>,
    no_voice: NoVoiceWatch,
    cn: ComfortNoise,
}

impl DspStage {
    /// The stages of `cfg` for audio at `rate` Hz in frames of `frame_ms`. A rate the
    /// processor cannot handle turns echo/noise/gain processing off (logged).
    pub fn new(rate: u32, frame_ms: u32, cfg: DspConfig) -> DspStage {
        let apm = if cfg.processes_capture() {
            AudioProcessor::new(rate, cfg)
                .map(Box::new)
                .map_err(|e| tracing::warn!(error = %e, "capture audio processing off"))
                .ok()
        } else {
            None
        };
        let watch = !cfg.no_voice_alarm.is_zero();
        DspStage {
            cfg,
            frame: Duration::from_millis(u64::from(frame_ms)),
            apm,
            local_vad: (cfg.vad || watch).then(|| VoiceDetector::new(frame_ms)),
            remote_vad: cfg.vad.then(|| VoiceDetector::new(frame_ms)),
            no_voice: NoVoiceWatch::new(cfg.no_voice_alarm),
            cn: ComfortNoise::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> DspConfig {
        self.cfg
    }

    /// Process a microphone frame in place. `sending`: whether our direction sends now (held
    /// or muted time does not count for the no-voice watch). Returns the time without voice
    /// when the no-voice watch fires (once per call).
    pub fn capture(&mut self, frame: &mut [i16], sending: bool) -> Option<Duration> {
        if let Some(apm) = self.apm.as_mut() {
            apm.capture(frame);
        }
        let voice = self.local_vad.as_mut().is_some_and(|v| v.process(frame));
        if self.no_voice.is_done() {
            return None;
        }
        let fired = self.no_voice.tick(self.frame, sending, voice);
        if let Some(d) = fired {
            tracing::info!(without_voice = ?d, "no voice activity from the microphone");
        }
        fired
    }

    /// Finish a playout frame in place: `kind` is what the jitter buffer produced,
    /// `receives` whether our direction plays received audio.
    pub fn playout(&mut self, frame: &mut [i16], kind: FrameKind, receives: bool) {
        if receives && self.cn.is_active() {
            let audio = kind == FrameKind::Audio && frame.iter().any(|&s| s != 0);
            if !audio {
                // The CN packet's own slot (silence), an underflow or the prefill.
                self.cn.fill(frame);
            } else if self.cn.is_playing() {
                // Audio after the noise: the talkspurt resumed. (Audio before the first
                // noise frame is what was buffered ahead of the CN packet.)
                self.cn.stop();
            }
        }
        if let Some(apm) = self.apm.as_mut() {
            apm.render(frame);
        }
        if let Some(v) = self.remote_vad.as_mut() {
            v.process(frame);
        }
    }

    /// An RFC 3389 CN packet arrived (payload type 13): play noise at its level until audio
    /// resumes.
    pub fn on_cn_packet(&mut self, payload: &[u8]) {
        self.cn.on_packet(payload);
    }

    /// Whether comfort noise is being played.
    pub fn comfort_noise_active(&self) -> bool {
        self.cn.is_active()
    }

    /// Voice statistics since the last call (both sides `OFF` unless [`DspConfig::vad`]).
    pub fn take_vad_report(&mut self) -> VadReport {
        let mut r = VadReport::default();
        if self.cfg.vad {
            if let Some(v) = self.local_vad.as_mut() {
                r.local = v.take_interval();
            }
        }
        if let Some(v) = self.remote_vad.as_mut() {
            r.remote = v.take_interval();
        }
        r
    }

    /// Echo canceller statistics, when the processor runs.
    pub fn apm_stats(&self) -> Option<ApmStats> {
        self.apm.as_deref().map(AudioProcessor::stats)
    }
}
