//! `file:` devices: capture loops a WAV file, playback records a mono 16-bit WAV file.
//!
//! Both are clocked by the consumer: every `read_frame` returns the next samples of the loop and
//! every `write_frame` appends to the recording.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::resample::resample_all;
use crate::{f32_to_i16, AudioError, AudioInput, AudioOutput};

/// Capture from a WAV file, looping forever.
#[derive(Debug)]
pub struct WavLoopInput {
    samples: Vec<i16>,
    pos: usize,
}

impl WavLoopInput {
    /// Load `path` (8/16/24/32-bit integer or 32-bit float, any rate, any channel count), mix it
    /// down to mono and resample it to `sample_rate`.
    pub fn open(path: &Path, sample_rate: u32) -> Result<WavLoopInput, AudioError> {
        let read_err = |source| AudioError::WavRead {
            path: path.to_path_buf(),
            source,
        };
        let unusable = |reason: String| AudioError::WavUnusable {
            path: path.to_path_buf(),
            reason,
        };
        let mut reader = hound::WavReader::open(path).map_err(read_err)?;
        let spec = reader.spec();
        let channels = usize::from(spec.channels);
        if channels == 0 {
            return Err(unusable("zero channels".into()));
        }
        if spec.sample_rate == 0 {
            return Err(unusable("sample rate 0".into()));
        }
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => {
                if spec.bits_per_sample != 32 {
                    return Err(unusable(format!(
                        "{}-bit float samples are not supported",
                        spec.bits_per_sample
                    )));
                }
                reader
                    .samples::<f32>()
                    .collect::<Result<_, _>>()
                    .map_err(read_err)?
            }
            hound::SampleFormat::Int => {
                if !(1..=32).contains(&spec.bits_per_sample) {
                    return Err(unusable(format!(
                        "{}-bit integer samples are not supported",
                        spec.bits_per_sample
                    )));
                }
                let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f64;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| (f64::from(v) * scale) as f32))
                    .collect::<Result<_, _>>()
                    .map_err(read_err)?
            }
        };
        let mono: Vec<f32> = interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32)
            .collect();
        if mono.is_empty() {
            return Err(unusable("no samples".into()));
        }
        let converted = resample_all(&mono, spec.sample_rate, sample_rate);
        let samples: Vec<i16> = converted.into_iter().map(f32_to_i16).collect();
        if samples.is_empty() {
            return Err(unusable("too short to resample".into()));
        }
        info!(
            path = %path.display(),
            file_rate = spec.sample_rate,
            channels = spec.channels,
            bits = spec.bits_per_sample,
            rate = sample_rate,
            loop_samples = samples.len(),
            "opened WAV loop input"
        );
        Ok(WavLoopInput { samples, pos: 0 })
    }
}

impl AudioInput for WavLoopInput {
    fn read_frame(&mut self, out: &mut [i16]) {
        let mut filled = 0;
        while filled < out.len() {
            let n = (out.len() - filled).min(self.samples.len() - self.pos);
            out[filled..filled + n].copy_from_slice(&self.samples[self.pos..self.pos + n]);
            filled += n;
            self.pos += n;
            if self.pos == self.samples.len() {
                self.pos = 0;
            }
        }
    }
}

/// How many frames may be written before the WAV header is rewritten on disk.
const FLUSH_EVERY_FRAMES: u32 = 10;
/// How long may pass before the WAV header is rewritten on disk.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// The most 16-bit samples a WAV file can hold (with room for the header).
const MAX_WAV_SAMPLES: u64 = (u32::MAX as u64 - 4096) / 2;

/// Playback into a mono 16-bit WAV file at the opened rate.
pub struct WavRecordOutput {
    path: PathBuf,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    frames_since_flush: u32,
    last_flush: Instant,
    failed: bool,
}

impl WavRecordOutput {
    /// Create (or truncate) `path`. Its directory must exist.
    pub fn create(path: &Path, sample_rate: u32) -> Result<WavRecordOutput, AudioError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer =
            hound::WavWriter::create(path, spec).map_err(|source| AudioError::WavCreate {
                path: path.to_path_buf(),
                source,
            })?;
        // Make the empty file a valid WAV right away.
        writer.flush().map_err(|source| AudioError::WavCreate {
            path: path.to_path_buf(),
            source,
        })?;
        info!(path = %path.display(), rate = sample_rate, "recording WAV output");
        Ok(WavRecordOutput {
            path: path.to_path_buf(),
            writer: Some(writer),
            frames_since_flush: 0,
            last_flush: Instant::now(),
            failed: false,
        })
    }

    fn fail(&mut self, what: &str, err: hound::Error) {
        if !self.failed {
            warn!(path = %self.path.display(), error = %err, "WAV output {what} failed; dropping audio");
            self.failed = true;
        }
    }
}

impl AudioOutput for WavRecordOutput {
    fn write_frame(&mut self, frame: &[i16]) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        // A RIFF file cannot describe more than 4 GiB of data.
        if u64::from(writer.len()) + frame.len() as u64 > MAX_WAV_SAMPLES {
            if !self.failed {
                warn!(path = %self.path.display(), "WAV output reached the 4 GiB limit; dropping audio");
                self.failed = true;
            }
            return;
        }
        let mut result = Ok(());
        {
            let mut w = writer.get_i16_writer(frame.len() as u32);
            for &s in frame {
                w.write_sample(s);
            }
            if let Err(e) = w.flush() {
                result = Err(e);
            }
        }
        if let Err(e) = result {
            self.fail("write", e);
            return;
        }
        self.frames_since_flush += 1;
        if self.frames_since_flush >= FLUSH_EVERY_FRAMES || self.last_flush.elapsed() >= FLUSH_EVERY
        {
            self.frames_since_flush = 0;
            self.last_flush = Instant::now();
            if let Err(e) = writer.flush() {
                self.fail("flush", e);
            }
        }
    }
}

impl Drop for WavRecordOutput {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let samples = writer.len();
            match writer.finalize() {
                Ok(()) => debug!(path = %self.path.display(), samples, "WAV output finalised"),
                Err(e) => {
                    warn!(path = %self.path.display(), error = %e, "finalising WAV output failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{open_input, open_output, DeviceSpec};
    use std::f64::consts::PI;

    /// A fresh, empty temporary directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "webphone-audio-test-{}-{}",
            std::process::id(),
            name
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    fn write_wav<F: FnMut(usize, u16) -> f64>(
        path: &Path,
        rate: u32,
        channels: u16,
        bits: u16,
        float: bool,
        frames: usize,
        mut value: F,
    ) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut w = hound::WavWriter::create(path, spec).expect("create wav");
        let full = ((1u64 << (bits - 1)) - 1) as f64;
        for i in 0..frames {
            for c in 0..channels {
                let v = value(i, c);
                if float {
                    w.write_sample(v as f32).expect("write");
                } else if bits <= 8 {
                    w.write_sample((v * full).round() as i8).expect("write");
                } else if bits <= 16 {
                    w.write_sample((v * full).round() as i16).expect("write");
                } else {
                    w.write_sample((v * full).round() as i32).expect("write");
                }
            }
        }
        w.finalize().expect("finalize");
    }

    fn goertzel_amplitude(x: &[i16], freq: f64, rate: u32) -> f64 {
        let w = 2.0 * PI * freq / f64::from(rate);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s = f64::from(v) / 32768.0 + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power.max(0.0).sqrt() / x.len() as f64
    }

    #[test]
    fn file_input_at_the_opened_rate_loops_the_exact_samples() {
        let dir = temp_dir("loop-exact");
        let path = dir.join("ramp.wav");
        // 250 samples of a ramp at 8 kHz, 16-bit mono.
        write_wav(&path, 8000, 1, 16, false, 250, |i, _| i as f64 / 1000.0);
        let mut input = open_input(&DeviceSpec::File(path), 8000).expect("open");
        let mut got = Vec::new();
        for _ in 0..4 {
            let mut frame = [0i16; 160];
            input.read_frame(&mut frame);
            got.extend_from_slice(&frame);
        }
        let expected: Vec<i16> = (0..640)
            .map(|k| ((k % 250) as f64 / 1000.0 * 32767.0).round() as i16)
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn stereo_48k_float_file_is_downmixed_and_resampled_to_8k() {
        let dir = temp_dir("stereo-float");
        let path = dir.join("tone.wav");
        // Left: 1 kHz sine at 0.6; right: 1 kHz sine at 0.2 -> mono amplitude 0.4.
        write_wav(&path, 48_000, 2, 32, true, 48_000, |i, c| {
            let s = (2.0 * PI * 1000.0 * i as f64 / 48_000.0).sin();
            if c == 0 {
                0.6 * s
            } else {
                0.2 * s
            }
        });
        let mut input = WavLoopInput::open(&path, 8000).expect("open");
        assert!((input.samples.len() as i64 - 8000).abs() <= 2);
        let mut frame = vec![0i16; 4000];
        input.read_frame(&mut frame); // includes the filter's start-up
        input.read_frame(&mut frame);
        let steady = &frame[..3000];
        let a = goertzel_amplitude(steady, 1000.0, 8000);
        assert!((a - 0.4).abs() < 0.03, "1 kHz amplitude {a}");
        assert!(goertzel_amplitude(steady, 2500.0, 8000) < 0.01);
    }

    #[test]
    fn integer_files_of_8_24_and_32_bits_load_at_the_right_level() {
        let dir = temp_dir("bit-depths");
        for bits in [8u16, 16, 24, 32] {
            let path = dir.join(format!("dc{bits}.wav"));
            write_wav(&path, 16_000, 1, bits, false, 1600, |_, _| 0.5);
            let mut input = WavLoopInput::open(&path, 16_000).expect("open");
            let mut frame = [0i16; 320];
            input.read_frame(&mut frame);
            for &s in &frame {
                assert!((i32::from(s) - 16384).abs() < 300, "{bits}-bit sample {s}");
            }
        }
    }

    #[test]
    fn file_input_that_does_not_exist_names_the_path_in_the_error() {
        let path = temp_dir("missing").join("nope.wav");
        let err = match open_input(&DeviceSpec::File(path.clone()), 8000) {
            Err(e) => e,
            Ok(_) => panic!("opening a missing file succeeded"),
        };
        assert!(matches!(err, AudioError::WavRead { .. }));
        assert!(err.to_string().contains("nope.wav"), "{err}");
    }

    #[test]
    fn file_input_that_is_not_a_wav_is_an_error_naming_the_path() {
        let dir = temp_dir("garbage");
        let path = dir.join("garbage.wav");
        std::fs::write(&path, b"this is not a RIFF file at all").expect("write");
        let err = match WavLoopInput::open(&path, 8000) {
            Err(e) => e,
            Ok(_) => panic!("garbage accepted"),
        };
        assert!(err.to_string().contains("garbage.wav"), "{err}");
    }

    #[test]
    fn empty_wav_file_is_rejected_as_unusable() {
        let dir = temp_dir("empty");
        let path = dir.join("empty.wav");
        write_wav(&path, 8000, 1, 16, false, 0, |_, _| 0.0);
        assert!(matches!(
            WavLoopInput::open(&path, 8000),
            Err(AudioError::WavUnusable { .. })
        ));
    }

    #[test]
    fn file_output_is_a_readable_wav_while_still_open_and_after_drop() {
        let dir = temp_dir("record");
        let path = dir.join("out.wav");
        let mut out = open_output(&DeviceSpec::File(path.clone()), 16_000).expect("create");
        // Valid (empty) file right after opening.
        let r = hound::WavReader::open(&path).expect("readable when empty");
        assert_eq!(r.len(), 0);

        let frame: Vec<i16> = (0..320).map(|i| i as i16 * 10).collect();
        for _ in 0..20 {
            out.write_frame(&frame);
        }
        // 20 frames -> flushed at least at frame 20: header covers everything written.
        let r = hound::WavReader::open(&path).expect("readable while open");
        let spec = r.spec();
        assert_eq!(spec.channels, 1);
        assert_eq!(spec.sample_rate, 16_000);
        assert_eq!(spec.bits_per_sample, 16);
        assert_eq!(spec.sample_format, hound::SampleFormat::Int);
        assert_eq!(r.len(), 20 * 320);

        for _ in 0..3 {
            out.write_frame(&frame);
        }
        drop(out);
        let mut r = hound::WavReader::open(&path).expect("readable after drop");
        let samples: Vec<i16> = r
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("decode");
        assert_eq!(samples.len(), 23 * 320);
        assert_eq!(&samples[320..640], frame.as_slice());
    }

    #[test]
    fn file_output_flushes_the_header_after_200ms_even_with_few_frames() {
        let dir = temp_dir("record-time");
        let path = dir.join("slow.wav");
        let mut out = WavRecordOutput::create(&path, 8000).expect("create");
        out.write_frame(&[5; 160]);
        std::thread::sleep(FLUSH_EVERY + Duration::from_millis(20));
        out.write_frame(&[6; 160]);
        let r = hound::WavReader::open(&path).expect("readable");
        assert_eq!(r.len(), 320);
        // Leak the writer as a crash would: the file on disk stays readable.
        std::mem::forget(out);
        let r = hound::WavReader::open(&path).expect("readable after 'crash'");
        assert_eq!(r.len(), 320);
    }

    #[test]
    fn file_output_in_a_missing_directory_is_an_error() {
        let path = temp_dir("nodir").join("no/such/dir/out.wav");
        let err = match open_output(&DeviceSpec::File(path), 8000) {
            Err(e) => e,
            Ok(_) => panic!("created a file in a missing directory"),
        };
        assert!(matches!(err, AudioError::WavCreate { .. }));
        assert!(err.to_string().contains("out.wav"), "{err}");
    }
}
