//! Capture- and playout-path audio processing: echo cancellation, noise suppression and gain
//! control ([`apm`], WebRTC's AEC3/NS/AGC2 through the pure-Rust `sonora` port), voice activity
//! statistics ([`vad`]: the `VAD,...` notification and the "no audio from the microphone"
//! condition) and RFC 3389 comfort noise on the receive side ([`cng`]).
//!
//! Everything here is sans-IO and deterministic; the pipeline calls it once per 20 ms frame.
//!
//! ## How the engine maps the parameters (parameters.tsv)
//! - `aec` (0=no, 1=yes unless a headset is guessed, 2=yes if supported, 3=forced) and `aec2`
//!   (0=no, 1=auto, 2=yes, 3=yes with extra): [`DspConfig::aec`] = `aec >= 1 || aec2 >= 2`.
//!   There is one canceller (AEC3); we cannot guess headsets, so 1 means on. `aec2` has no
//!   separate stage: its "extra" (3) maps to [`DspConfig::ns`] being forced on as well.
//! - `denoise` (0=disabled, 1=recording only, 2=playback and recording, 3=auto):
//!   [`DspConfig::ns`] = `denoise != 0` (recording side only; playback-side denoising is not
//!   done).
//! - `agc` (0=disabled, 1=recording only, 2=playback and recording, 3=guess):
//!   [`DspConfig::agc`] = `agc != 0` (recording side only).
//! - `vad` (0=auto, 1=no, 2..4=yes) / `vadstat` (0=no, 1=auto, 2=missing-mic detection,
//!   3=statistics): [`DspConfig::vad`] = `vad != 1 && vadstat != 0`; VAD notifications every
//!   `vadstat_ival` ms when `vadstat == 3` (see [`vad::format_vad_notification`]).
//! - `enablenomicvoicewarning` (0=disable) with `vadstat` 1 or 2:
//!   [`DspConfig::no_voice_alarm`] = 6 s, else `ZERO`.

pub mod apm;
pub mod cng;
pub mod stage;
pub mod vad;

use std::time::Duration;

pub use apm::{ApmStats, AudioProcessor};
pub use cng::{ComfortNoise, CN_PAYLOAD_TYPE};
pub use stage::DspStage;
pub use vad::{format_vad_notification, NoVoiceWatch, VadReport, VadSide, VoiceDetector};

/// Which processing stages run on the capture path (default: none, audio passes untouched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DspConfig {
    /// Acoustic echo cancellation (AEC3); the far-end reference is what the pipeline plays.
    pub aec: bool,
    /// Noise suppression on the microphone signal.
    pub ns: bool,
    /// Automatic gain control (AGC2 adaptive digital gain and limiter) on the microphone.
    pub agc: bool,
    /// Hint for the delay between a frame being handed to the sink and its echo being read
    /// from the source, in ms (device output + input latency). AEC3 estimates the real delay
    /// itself; 0 = unknown.
    pub echo_delay_ms: u16,
    /// Voice activity measurement on the sent and the played audio (levels, speech flags for
    /// the `VAD` notification). Measuring does not change the audio.
    pub vad: bool,
    /// Raise `MediaAlarm::NoVoiceActivity` when no voice activity was detected on the
    /// microphone for this long from the call start (while we send). `ZERO` = off. The
    /// WebPhone warns after 6 s. Works with or without [`DspConfig::vad`].
    pub no_voice_alarm: Duration,
}

impl DspConfig {
    /// Whether any stage of the echo/noise/gain processor is on.
    pub fn processes_capture(&self) -> bool {
        self.aec || self.ns || self.agc
    }
}

/// Errors of the processing stages.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DspError {
    /// The processor runs at 8, 16, 32 or 48 kHz only.
    #[error("unsupported sample rate {0} Hz (8000, 16000, 32000 or 48000)")]
    UnsupportedRate(u32),
    /// The audio processing library refused a frame.
    #[error("audio processing failed: {0}")]
    Processing(String),
}
