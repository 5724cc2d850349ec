//! Local audio around the calls: the conference mixer hub, call recording and tones.
//!
//! Everything here works at the [`PcmSource`](crate::PcmSource) / [`PcmSink`](crate::PcmSink)
//! boundary, so the per-call pipeline is unchanged:
//! - [`mixer`]: a [`MixerHub`] owns the one microphone and the one speaker and hands each call a
//!   [`LineSource`] / [`LineSink`] pair; it mixes conferenced calls so that each peer hears the
//!   microphone and the other members but not itself, and plays local sounds on the speaker.
//! - [`recorder`]: a [`CallRecorder`] with tap adapters ([`RecordTap::source`],
//!   [`RecordTap::sink`]) writing one WAV per call, mono (mixed) or stereo (left = local,
//!   right = remote), valid on disk while it grows.
//! - [`tones`]: ringback, busy, call waiting, ringtone, DTMF feedback and beeps (North American
//!   precise tone plan or ITU-T E.180 / CEPT 425 Hz tones) and a WAV-file player.
//! - [`resample`]: the rational polyphase resampler they use (media must not depend on
//!   `webphone-audio`).
//! - [`wav`]: minimal RIFF/WAVE reading and crash-safe writing.

pub mod mixer;
pub mod recorder;
pub mod resample;
pub mod tones;
pub mod wav;

pub use mixer::{LineSink, LineSource, MixerConfig, MixerError, MixerHandle, MixerHub, SoundId};
pub use recorder::{CallRecorder, RecordChannels, RecordError, RecordSummary, RecordTap};
pub use resample::{ResampleError, Resampler};
pub use tones::{Sound, ToneGenerator, TonePlan, WavPlayer};

/// Convert a float sample (i16 scale) to i16, rounding and saturating.
#[inline]
pub(crate) fn to_i16(x: f32) -> i16 {
    // `as` saturates for floats (and maps NaN to 0).
    x.round() as i16
}

/// Level above which [`soft_limit`] starts compressing (about -2.5 dBFS).
const LIMIT_KNEE: f32 = 24_576.0;
/// The ceiling [`soft_limit`] approaches but never exceeds.
const LIMIT_CEIL: f32 = 32_767.0;

/// Memoryless soft limiter: linear below the knee, then a tanh curve that approaches full
/// scale, so sums of several full-scale signals never wrap or hard-clip.
#[inline]
pub(crate) fn soft_limit(x: f32) -> f32 {
    let a = x.abs();
    if a <= LIMIT_KNEE {
        return x;
    }
    let room = LIMIT_CEIL - LIMIT_KNEE;
    let y = LIMIT_KNEE + room * ((a - LIMIT_KNEE) / room).tanh();
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_is_transparent_below_the_knee_and_bounded_above() {
        assert_eq!(soft_limit(1000.0), 1000.0);
        assert_eq!(soft_limit(-24_000.0), -24_000.0);
        let big = soft_limit(3.0 * 32_767.0);
        assert!(big <= 32_767.0 && big > 32_000.0, "{big}");
        assert!(soft_limit(-100_000.0) >= -32_767.0);
        // Monotonic.
        let mut last = 0.0;
        for i in 0..2000 {
            let y = soft_limit(i as f32 * 50.0);
            assert!(y >= last);
            last = y;
        }
        assert_eq!(to_i16(40_000.0), 32_767);
        assert_eq!(to_i16(-1.6), -2);
    }
}
