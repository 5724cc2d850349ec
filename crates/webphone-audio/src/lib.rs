//! Capture and playback devices for the softphone.
//!
//! Devices are named the way the `audiodevicein` / `audiodeviceout` parameters give them and
//! parsed with [`DeviceSpec::parse`]:
//!
//! | text | device |
//! |---|---|
//! | `""`, `"default"`, `"0"` | the system default device (through cpal) |
//! | `"null"` | silence in, discard out |
//! | `"file:PATH"` | capture loops a WAV file; playback records a mono 16-bit WAV file |
//! | anything else | a cpal device by id (`alsa:default`, `alsa:pulse`) or by name |
//!
//! Every device exchanges mono 16-bit PCM at the rate given when it was opened. `file:` and
//! `null` devices have no clock of their own: the consumer's calls are the clock (each
//! [`AudioInput::read_frame`] returns the next samples). cpal devices run on the sound card's
//! clock; their real-time callback exchanges samples with the consumer through lock-free ring
//! buffers, and a watcher thread rebuilds the stream after stream errors.
//!
//! A named cpal device that disappears while open (unplugged headset) does not end the audio:
//! the watcher moves the stream to the default device of the same direction, keeps looking for
//! the named device and moves back when it returns; [`DeviceEvent`]s report both moves to
//! whoever opened the device with [`open_input_with`] / [`open_output_with`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

mod device;
mod fallback;
mod file;
pub mod resample;
pub mod volume;

pub use fallback::LossReason;
pub use resample::Resampler;

/// Lowest sample rate accepted by [`open_input`] / [`open_output`].
pub const MIN_SAMPLE_RATE: u32 = 4000;
/// Highest sample rate accepted by [`open_input`] / [`open_output`].
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// Which way audio flows through a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Capture (microphone).
    Input,
    /// Playback (speaker).
    Output,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Input => "input",
            Direction::Output => "output",
        })
    }
}

/// A device as named by the `audiodevicein` / `audiodeviceout` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    /// The system default device through cpal.
    Default,
    /// Silence in, discard out.
    Null,
    /// `file:PATH`: a WAV file (relative paths are relative to the current directory).
    File(PathBuf),
    /// A cpal device, by id (`alsa:default`) or by (case-insensitive) name.
    Device(String),
}

impl DeviceSpec {
    /// Parse a device parameter value. Never fails: unknown text names a cpal device, and
    /// whether it exists is only known when it is opened.
    pub fn parse(s: &str) -> DeviceSpec {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("default") || t == "0" {
            return DeviceSpec::Default;
        }
        if t.eq_ignore_ascii_case("null") {
            return DeviceSpec::Null;
        }
        if let Some(prefix) = t.get(..5) {
            if prefix.eq_ignore_ascii_case("file:") {
                return DeviceSpec::File(PathBuf::from(&t[5..]));
            }
        }
        DeviceSpec::Device(t.to_string())
    }
}

impl fmt::Display for DeviceSpec {
    /// The parameter text that parses back to this spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Default => f.write_str("default"),
            DeviceSpec::Null => f.write_str("null"),
            DeviceSpec::File(p) => write!(f, "file:{}", p.display()),
            DeviceSpec::Device(d) => f.write_str(d),
        }
    }
}

/// Why a device could not be opened or listed.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The rate given to `open_*` is outside [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
    #[error("unsupported sample rate {0} Hz")]
    InvalidSampleRate(u32),
    /// A `file:` input could not be opened or decoded.
    #[error("cannot read WAV file {}: {source}", path.display())]
    WavRead {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    /// A `file:` input decoded, but holds nothing playable.
    #[error("WAV file {} is unusable: {reason}", path.display())]
    WavUnusable { path: PathBuf, reason: String },
    /// A `file:` output could not be created.
    #[error("cannot create WAV file {}: {source}", path.display())]
    WavCreate {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    /// No device with that id or name exists for that direction.
    #[error("no {direction} audio device named {name:?}")]
    DeviceNotFound { name: String, direction: Direction },
    /// The host has no default device for that direction.
    #[error("no default {0} audio device")]
    NoDefaultDevice(Direction),
    /// The device uses a sample format this crate cannot convert.
    #[error("{device}: unsupported sample format {format}")]
    UnsupportedFormat { device: String, format: String },
    /// The audio backend (cpal) failed.
    #[error("{device}: {source}")]
    Backend {
        device: String,
        #[source]
        source: cpal::Error,
    },
    /// The device's stream thread could not be started or died while opening.
    #[error("{device}: audio thread failed: {reason}")]
    Thread { device: String, reason: String },
}

/// A named device was lost or came back while open; see [`open_input_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// The selected device is gone: audio now flows through the default device of that
    /// direction (`default_device`: its cpal id, `None` while even that cannot be opened).
    FellBack {
        direction: Direction,
        selected: String,
        reason: LossReason,
        default_device: Option<String>,
    },
    /// The selected device is back and carries the audio again.
    Restored {
        direction: Direction,
        selected: String,
    },
}

/// Receives [`DeviceEvent`]s. Called from the device's watcher thread: it must not block.
pub type DeviceEvents = Arc<dyn Fn(DeviceEvent) + Send + Sync>;

/// A capture device delivering mono PCM at the rate it was opened with.
pub trait AudioInput: Send {
    /// Fill `out` with the next samples. Silence when nothing is there; never blocks.
    fn read_frame(&mut self, out: &mut [i16]);
}

/// A playback device taking mono PCM at the rate it was opened with.
pub trait AudioOutput: Send {
    /// Queue `frame` for playback. Never blocks (drops audio rather than waiting).
    fn write_frame(&mut self, frame: &[i16]);
}

fn check_rate(sample_rate: u32) -> Result<(), AudioError> {
    if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        Ok(())
    } else {
        Err(AudioError::InvalidSampleRate(sample_rate))
    }
}

/// Open a capture device delivering mono PCM at `sample_rate`.
pub fn open_input(spec: &DeviceSpec, sample_rate: u32) -> Result<Box<dyn AudioInput>, AudioError> {
    open_input_with(spec, sample_rate, None)
}

/// [`open_input`], telling `events` when a named cpal device is lost mid-stream (the default
/// capture device takes over) and when it returns (it takes over again). A named device that
/// cannot be opened in the first place is still an error.
pub fn open_input_with(
    spec: &DeviceSpec,
    sample_rate: u32,
    events: Option<DeviceEvents>,
) -> Result<Box<dyn AudioInput>, AudioError> {
    check_rate(sample_rate)?;
    match spec {
        DeviceSpec::Null => Ok(Box::new(NullInput)),
        DeviceSpec::File(path) => Ok(Box::new(file::WavLoopInput::open(path, sample_rate)?)),
        DeviceSpec::Default => Ok(Box::new(device::CpalInput::open(None, sample_rate, None)?)),
        DeviceSpec::Device(name) => Ok(Box::new(device::CpalInput::open(
            Some(name.as_str()),
            sample_rate,
            events,
        )?)),
    }
}

/// Open a playback device taking mono PCM at `sample_rate`.
pub fn open_output(
    spec: &DeviceSpec,
    sample_rate: u32,
) -> Result<Box<dyn AudioOutput>, AudioError> {
    open_output_with(spec, sample_rate, None)
}

/// [`open_output`] with [`DeviceEvent`]s, as [`open_input_with`].
pub fn open_output_with(
    spec: &DeviceSpec,
    sample_rate: u32,
    events: Option<DeviceEvents>,
) -> Result<Box<dyn AudioOutput>, AudioError> {
    check_rate(sample_rate)?;
    match spec {
        DeviceSpec::Null => Ok(Box::new(NullOutput)),
        DeviceSpec::File(path) => Ok(Box::new(file::WavRecordOutput::create(path, sample_rate)?)),
        DeviceSpec::Default => Ok(Box::new(device::CpalOutput::open(None, sample_rate, None)?)),
        DeviceSpec::Device(name) => Ok(Box::new(device::CpalOutput::open(
            Some(name.as_str()),
            sample_rate,
            events,
        )?)),
    }
}

/// [`open_input_with`], but a named cpal device that cannot be opened gives way to the system
/// default device, the rule of a device lost mid-call: the device and, when
/// the default took over, why the named one failed. Files, `null` and the default itself
/// have nothing to fall back to; when the default fails too, the named device's error is
/// returned.
pub fn open_input_or_default(
    spec: &DeviceSpec,
    sample_rate: u32,
    events: Option<DeviceEvents>,
) -> Result<(Box<dyn AudioInput>, Option<AudioError>), AudioError> {
    match open_input_with(spec, sample_rate, events) {
        Ok(d) => Ok((d, None)),
        Err(e) if matches!(spec, DeviceSpec::Device(_)) => {
            match open_input_with(&DeviceSpec::Default, sample_rate, None) {
                Ok(d) => Ok((d, Some(e))),
                Err(_) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// [`open_output_with`] with the same fallback as [`open_input_or_default`].
pub fn open_output_or_default(
    spec: &DeviceSpec,
    sample_rate: u32,
    events: Option<DeviceEvents>,
) -> Result<(Box<dyn AudioOutput>, Option<AudioError>), AudioError> {
    match open_output_with(spec, sample_rate, events) {
        Ok(d) => Ok((d, None)),
        Err(e) if matches!(spec, DeviceSpec::Device(_)) => {
            match open_output_with(&DeviceSpec::Default, sample_rate, None) {
                Ok(d) => Ok((d, Some(e))),
                Err(_) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Ids of the cpal devices available for `dir` (e.g. `alsa:default`, `alsa:pulse`); each one
/// can be passed back as a [`DeviceSpec::Device`]. The `file:` and `null` pseudo-devices are
/// not listed. An empty list (not an error) when the host has no devices.
pub fn list_devices(dir: Direction) -> Result<Vec<String>, AudioError> {
    device::list(dir)
}

/// `null` capture: silence.
#[derive(Debug, Default)]
pub struct NullInput;

impl AudioInput for NullInput {
    fn read_frame(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
}

/// `null` playback: discards everything.
#[derive(Debug, Default)]
pub struct NullOutput;

impl AudioOutput for NullOutput {
    fn write_frame(&mut self, _frame: &[i16]) {}
}

/// Convert a float sample (nominal range -1..1) to i16 with clipping.
pub(crate) fn f32_to_i16(x: f32) -> i16 {
    let v = (x * 32768.0).round();
    if v >= 32767.0 {
        i16::MAX
    } else if v <= -32768.0 {
        i16::MIN
    } else {
        v as i16
    }
}

/// Convert an i16 sample to float in -1..1.
pub(crate) fn i16_to_f32(x: i16) -> f32 {
    f32::from(x) / 32768.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_maps_empty_default_and_zero_to_the_default_device() {
        for s in ["", "default", "DEFAULT", "0", "  default "] {
            assert_eq!(DeviceSpec::parse(s), DeviceSpec::Default, "{s:?}");
        }
    }

    #[test]
    fn parse_maps_null_to_the_null_device() {
        assert_eq!(DeviceSpec::parse("null"), DeviceSpec::Null);
        assert_eq!(DeviceSpec::parse("NULL"), DeviceSpec::Null);
    }

    #[test]
    fn parse_keeps_file_paths_absolute_or_relative() {
        assert_eq!(
            DeviceSpec::parse("file:/tmp/in.wav"),
            DeviceSpec::File(PathBuf::from("/tmp/in.wav"))
        );
        assert_eq!(
            DeviceSpec::parse("file:rec/out.wav"),
            DeviceSpec::File(PathBuf::from("rec/out.wav"))
        );
        assert_eq!(
            DeviceSpec::parse("FILE:a b.wav"),
            DeviceSpec::File(PathBuf::from("a b.wav"))
        );
    }

    #[test]
    fn parse_treats_anything_else_as_a_cpal_device_id_or_name() {
        assert_eq!(
            DeviceSpec::parse("alsa:default"),
            DeviceSpec::Device("alsa:default".into())
        );
        assert_eq!(
            DeviceSpec::parse("Built-in Audio Analog Stereo"),
            DeviceSpec::Device("Built-in Audio Analog Stereo".into())
        );
        // "filex" is not the file: prefix; "1" is not the default index.
        assert_eq!(
            DeviceSpec::parse("filex"),
            DeviceSpec::Device("filex".into())
        );
        assert_eq!(DeviceSpec::parse("1"), DeviceSpec::Device("1".into()));
    }

    #[test]
    fn spec_display_parses_back_to_the_same_spec() {
        for s in ["default", "null", "file:x/y.wav", "alsa:pulse"] {
            let spec = DeviceSpec::parse(s);
            assert_eq!(DeviceSpec::parse(&spec.to_string()), spec);
        }
    }

    #[test]
    fn null_input_gives_silence_and_null_output_accepts_frames() {
        let mut input = open_input(&DeviceSpec::Null, 8000).expect("null input");
        let mut buf = [123i16; 160];
        input.read_frame(&mut buf);
        assert!(buf.iter().all(|&s| s == 0));
        let mut output = open_output(&DeviceSpec::Null, 8000).expect("null output");
        output.write_frame(&[1000; 160]);
    }

    #[test]
    fn open_rejects_a_zero_or_absurd_sample_rate() {
        assert!(matches!(
            open_input(&DeviceSpec::Null, 0),
            Err(AudioError::InvalidSampleRate(0))
        ));
        assert!(matches!(
            open_output(&DeviceSpec::Null, 10_000_000),
            Err(AudioError::InvalidSampleRate(_))
        ));
    }

    #[test]
    fn sample_conversion_clips_and_round_trips() {
        assert_eq!(f32_to_i16(2.0), i16::MAX);
        assert_eq!(f32_to_i16(-2.0), i16::MIN);
        assert_eq!(f32_to_i16(0.0), 0);
        for v in [i16::MIN, -1000, -1, 0, 1, 1000, i16::MAX] {
            assert_eq!(f32_to_i16(i16_to_f32(v)), v);
        }
    }
}
