//! Echo cancellation, noise suppression and gain control on the capture path, with WebRTC's
//! audio processing module (AEC3, NS, AGC2 and its high-pass filter) as ported to Rust by the
//! `sonora` crate.
//!
//! The processor works on 10 ms chunks; the pipeline's 20 ms frames are split into two. The
//! render (far-end) side is fed with exactly what the pipeline hands to the sink, the capture
//! side with what the source gave, before encoding.

use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, MaxProcessingRate,
    NoiseSuppression, NoiseSuppressionLevel, Pipeline,
};
use sonora::{AudioProcessing, Config, StreamConfig};

use super::{DspConfig, DspError};

/// Rates the processor accepts (sonora runs its bands at 8/16/32/48 kHz).
pub const SUPPORTED_RATES: [u32; 4] = [8_000, 16_000, 32_000, 48_000];

/// Echo/noise/gain statistics of the processor (WebRTC APM statistics).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ApmStats {
    /// Echo return loss (dB): how much quieter the echo is than the far end, before
    /// cancellation.
    pub erl_db: Option<f64>,
    /// Echo return loss enhancement (dB) of the linear filter.
    pub erle_db: Option<f64>,
    /// The echo path delay found by AEC3's delay estimator (ms).
    pub delay_ms: Option<i32>,
    /// Chunks processed on the capture side.
    pub capture_chunks: u64,
    /// Chunks processed on the render side.
    pub render_chunks: u64,
}

/// The capture-path processor for one call. See the module documentation.
pub struct AudioProcessor {
    apm: AudioProcessing,
    cfg: DspConfig,
    rate: u32,
    /// Samples in 10 ms.
    chunk: usize,
    out: Vec<i16>,
    render_out: Vec<i16>,
    capture_chunks: u64,
    render_chunks: u64,
    /// Frames whose length was not a multiple of 10 ms (their tail passes unprocessed).
    odd_frames: u64,
}

impl std::fmt::Debug for AudioProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioProcessor")
            .field("cfg", &self.cfg)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl AudioProcessor {
    /// A processor for mono audio at `rate` Hz with the stages `cfg` enables.
    pub fn new(rate: u32, cfg: DspConfig) -> Result<AudioProcessor, DspError> {
        if !SUPPORTED_RATES.contains(&rate) {
            return Err(DspError::UnsupportedRate(rate));
        }
        let any = cfg.processes_capture();
        let config = Config {
            pipeline: Pipeline {
                // Keep Opus fullband: process 48 kHz as 48 kHz (three bands), not 32.
                maximum_internal_processing_rate: if rate > 32_000 {
                    MaxProcessingRate::Rate48kHz
                } else {
                    MaxProcessingRate::Rate32kHz
                },
                ..Pipeline::default()
            },
            high_pass_filter: any.then(HighPassFilter::default),
            echo_canceller: cfg.aec.then(EchoCanceller::default),
            noise_suppression: cfg.ns.then(|| NoiseSuppression {
                level: NoiseSuppressionLevel::Moderate,
                ..NoiseSuppression::default()
            }),
            gain_controller2: cfg.agc.then(|| GainController2 {
                adaptive_digital: Some(AdaptiveDigital::default()),
                ..GainController2::default()
            }),
            ..Config::default()
        };
        let stream = StreamConfig::new(rate, 1);
        let apm = AudioProcessing::builder()
            .config(config)
            .capture_config(stream)
            .render_config(stream)
            .build();
        let chunk = stream.num_frames();
        tracing::debug!(rate, ?cfg, "capture audio processing on");
        Ok(AudioProcessor {
            apm,
            cfg,
            rate,
            chunk,
            out: vec![0; chunk],
            render_out: vec![0; chunk],
            capture_chunks: 0,
            render_chunks: 0,
            odd_frames: 0,
        })
    }

    /// The sample rate this processor runs at.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The stages in use.
    pub fn config(&self) -> DspConfig {
        self.cfg
    }

    /// Feed the far-end reference: a frame as handed to the speaker. Only needed (and only
    /// used) with echo cancellation.
    pub fn render(&mut self, frame: &[i16]) {
        if !self.cfg.aec {
            return;
        }
        self.check_length(frame.len());
        for chunk in frame.chunks_exact(self.chunk) {
            if let Err(e) = self.apm.process_render_i16(chunk, &mut self.render_out) {
                tracing::debug!(error = %e, "render chunk not processed");
            }
            self.render_chunks += 1;
        }
    }

    /// Process a microphone frame in place (echo removed, noise suppressed, gain applied).
    pub fn capture(&mut self, frame: &mut [i16]) {
        if !self.cfg.processes_capture() {
            return;
        }
        self.check_length(frame.len());
        for chunk in frame.chunks_exact_mut(self.chunk) {
            if self.cfg.aec {
                // Out-of-range hints are clamped by the processor; nothing to act on.
                let _ = self
                    .apm
                    .set_stream_delay_ms(i32::from(self.cfg.echo_delay_ms));
            }
            match self.apm.process_capture_i16(chunk, &mut self.out) {
                Ok(()) => chunk.copy_from_slice(&self.out),
                Err(e) => tracing::debug!(error = %e, "capture chunk not processed"),
            }
            self.capture_chunks += 1;
        }
    }

    fn check_length(&mut self, len: usize) {
        if len % self.chunk != 0 {
            self.odd_frames += 1;
            if self.odd_frames == 1 {
                tracing::warn!(
                    len,
                    chunk = self.chunk,
                    "frame is not a multiple of 10 ms: its tail is not processed"
                );
            }
        }
    }

    /// Echo statistics and counters.
    pub fn stats(&self) -> ApmStats {
        let s = self.apm.statistics();
        ApmStats {
            erl_db: s.echo_return_loss,
            erle_db: s.echo_return_loss_enhancement,
            delay_ms: s.delay_ms,
            capture_chunks: self.capture_chunks,
            render_chunks: self.render_chunks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_rates_are_refused() {
        for rate in [0, 11_025, 22_050, 44_100, 96_000] {
            assert_eq!(
                AudioProcessor::new(rate, DspConfig::default()).err(),
                Some(DspError::UnsupportedRate(rate))
            );
        }
        for rate in SUPPORTED_RATES {
            assert!(AudioProcessor::new(rate, DspConfig::default()).is_ok());
        }
    }

    #[test]
    fn all_stages_off_leaves_audio_untouched() {
        let mut p = AudioProcessor::new(8000, DspConfig::default()).unwrap();
        let mut frame: Vec<i16> = (0..160).map(|i| (i * 97 % 2000) as i16 - 1000).collect();
        let before = frame.clone();
        p.render(&before);
        p.capture(&mut frame);
        assert_eq!(frame, before);
        assert_eq!(p.stats().capture_chunks, 0);
    }

    #[test]
    fn twenty_ms_frames_are_processed_as_two_chunks() {
        let cfg = DspConfig {
            aec: true,
            ..DspConfig::default()
        };
        for rate in [8000u32, 16_000, 48_000] {
            let mut p = AudioProcessor::new(rate, cfg).unwrap();
            let n = rate as usize / 50;
            let far = vec![0i16; n];
            let mut near = vec![0i16; n];
            for _ in 0..3 {
                p.render(&far);
                p.capture(&mut near);
            }
            let s = p.stats();
            assert_eq!((s.capture_chunks, s.render_chunks), (6, 6), "{rate}");
        }
    }
}
