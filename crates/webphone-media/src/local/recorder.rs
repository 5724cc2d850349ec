//! Call recording: taps on a call's [`PcmSource`] / [`PcmSink`] and a WAV writer per recording.
//!
//! # Use (engine)
//!
//! At call setup, make one [`RecordTap`] per call and wrap what the media session gets:
//! `tap.source(src)` (what the peer hears: "local") and `tap.sink(sink)` (the peer's decoded
//! audio: "remote"). While no recording runs the taps only pass audio through (one atomic load
//! per frame). For `voicerecord(true)` / `voicerecupload`, [`CallRecorder::start`] on the tap
//! creates the file and starts capturing (emit `VREC,line,1,...` with [`CallRecorder::path`]);
//! call [`CallRecorder::pump`] periodically from a thread that may block on disk, or use
//! [`CallRecorder::spawn`]; [`CallRecorder::finish`] / [`RecorderThread::finish`] closes the
//! file and returns a [`RecordSummary`] (then the engine uploads and emits stages 2-4).
//!
//! With the conference mixer the local side of a member's recording is what that member hears
//! (microphone + the other members), so each party's recording holds the whole conference.
//!
//! # Files
//!
//! 16-bit PCM WAV at the call's audio rate: [`RecordChannels::Mono`] mixes both sides (soft
//! limited), [`RecordChannels::Stereo`] puts local on the left and remote on the right. The
//! header is rewritten after every pump that wrote audio, so after a crash the file is a valid
//! WAV holding everything up to the last pump (100 ms with [`CallRecorder::spawn`]'s default).
//!
//! # Timing
//!
//! The two taps are called by the call's media task (source once per tick, sink once per
//! playout); the writer pairs samples in order. When one side runs ahead of the other by more
//! than [`MAX_SKEW_MS`] (e.g. playout stopped while on hold) the lagging side is padded with
//! silence so the channels stay aligned. Each side buffers up to [`BUFFER_MS`] between pumps;
//! beyond that the newest audio is dropped and counted.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;
use tracing::{debug, warn};

use crate::local::wav::{WavError, WavWriter};
use crate::local::{soft_limit, to_i16};
use crate::{PcmSink, PcmSource};

/// Per-side buffering between pumps, in milliseconds.
pub const BUFFER_MS: u32 = 2000;
/// Most one side may run ahead before the other is padded with silence, in milliseconds.
pub const MAX_SKEW_MS: u32 = 200;

/// Recording errors (each names the file).
#[derive(Debug, Error)]
pub enum RecordError {
    /// Creating or writing the WAV file failed.
    #[error(transparent)]
    Wav(#[from] WavError),
    /// A recording is already running on this tap.
    #[error("a recording is already running on this call")]
    Busy,
    /// The recorder thread could not be started.
    #[error("cannot start the recorder thread for {0}: {1}")]
    Spawn(PathBuf, #[source] std::io::Error),
    /// The recorder thread panicked.
    #[error("recorder thread for {0} failed")]
    Thread(PathBuf),
}

/// Channel layout of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordChannels {
    /// One channel: local + remote mixed.
    #[default]
    Mono,
    /// Left = local (what the peer hears from us), right = remote (what the peer says).
    Stereo,
}

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    /// The file.
    pub path: PathBuf,
    /// Sample rate.
    pub rate: u32,
    /// Channels in the file.
    pub channels: u16,
    /// Samples per channel written.
    pub frames: u64,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Samples lost because the writer fell behind (both sides).
    pub dropped: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct Buffers {
    local: VecDeque<i16>,
    remote: VecDeque<i16>,
    cap: usize,
    dropped: u64,
}

impl Buffers {
    fn push(q: &mut VecDeque<i16>, cap: usize, dropped: &mut u64, x: &[i16]) {
        let room = cap.saturating_sub(q.len());
        let n = x.len().min(room);
        q.extend(x[..n].iter().copied());
        *dropped += (x.len() - n) as u64;
    }
}

#[derive(Debug, Default)]
struct TapShared {
    active: AtomicBool,
    buffers: Mutex<Buffers>,
}

/// The per-call tap point; clone it to keep a handle for starting recordings later.
#[derive(Debug, Clone, Default)]
pub struct RecordTap {
    shared: Arc<TapShared>,
}

impl RecordTap {
    /// A tap with no recording running.
    pub fn new() -> RecordTap {
        RecordTap::default()
    }

    /// Wrap the call's source (what the peer hears); captured as the local side.
    pub fn source(&self, inner: Box<dyn PcmSource>) -> TapSource {
        TapSource {
            shared: self.shared.clone(),
            inner,
        }
    }

    /// Wrap the call's sink (the peer's decoded audio); captured as the remote side.
    pub fn sink(&self, inner: Box<dyn PcmSink>) -> TapSink {
        TapSink {
            shared: self.shared.clone(),
            inner,
        }
    }

    /// Whether a recording is running.
    pub fn is_recording(&self) -> bool {
        self.shared.active.load(Ordering::Acquire)
    }
}

/// A [`PcmSource`] passing audio through and capturing it while recording.
pub struct TapSource {
    shared: Arc<TapShared>,
    inner: Box<dyn PcmSource>,
}

impl PcmSource for TapSource {
    fn read_frame(&mut self, out: &mut [i16]) {
        self.inner.read_frame(out);
        if self.shared.active.load(Ordering::Acquire) {
            let mut b = lock(&self.shared.buffers);
            let b = &mut *b;
            Buffers::push(&mut b.local, b.cap, &mut b.dropped, out);
        }
    }
}

/// A [`PcmSink`] passing audio through and capturing it while recording.
pub struct TapSink {
    shared: Arc<TapShared>,
    inner: Box<dyn PcmSink>,
}

impl PcmSink for TapSink {
    fn write_frame(&mut self, frame: &[i16]) {
        if self.shared.active.load(Ordering::Acquire) {
            let mut b = lock(&self.shared.buffers);
            let b = &mut *b;
            Buffers::push(&mut b.remote, b.cap, &mut b.dropped, frame);
        }
        self.inner.write_frame(frame);
    }
}

/// One recording of one call into one WAV file.
pub struct CallRecorder {
    tap: Arc<TapShared>,
    wav: Option<WavWriter>,
    path: PathBuf,
    rate: u32,
    channels: RecordChannels,
    local: Vec<i16>,
    remote: Vec<i16>,
    out: Vec<i16>,
    skew: usize,
}

impl CallRecorder {
    /// Create `path` (directory must exist) and start capturing on `tap` at the call's audio
    /// `rate`. Errors: the file cannot be created, or this tap is already recording.
    pub fn start(
        tap: &RecordTap,
        path: &Path,
        rate: u32,
        channels: RecordChannels,
    ) -> Result<CallRecorder, RecordError> {
        let n_ch = match channels {
            RecordChannels::Mono => 1,
            RecordChannels::Stereo => 2,
        };
        if tap.is_recording() {
            return Err(RecordError::Busy);
        }
        let wav = WavWriter::create(path, rate, n_ch)?;
        let cap = (u64::from(rate) * u64::from(BUFFER_MS) / 1000) as usize;
        {
            let mut b = lock(&tap.shared.buffers);
            b.local = VecDeque::with_capacity(cap);
            b.remote = VecDeque::with_capacity(cap);
            b.cap = cap;
            b.dropped = 0;
        }
        if tap.shared.active.swap(true, Ordering::AcqRel) {
            return Err(RecordError::Busy);
        }
        debug!(path = %path.display(), rate, ?channels, "call recording started");
        Ok(CallRecorder {
            tap: tap.shared.clone(),
            wav: Some(wav),
            path: path.to_path_buf(),
            rate,
            channels,
            local: Vec::with_capacity(cap),
            remote: Vec::with_capacity(cap),
            out: Vec::with_capacity(cap * 2),
            skew: (u64::from(rate) * u64::from(MAX_SKEW_MS) / 1000) as usize,
        })
    }

    /// The file being written (for `VREC` stage 1 and the upload).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write what the taps captured since the last pump and update the header; returns the
    /// samples per channel written. Blocks on disk: call it off the audio tasks.
    pub fn pump(&mut self) -> Result<u64, RecordError> {
        self.pump_inner(false)
    }

    fn pump_inner(&mut self, all: bool) -> Result<u64, RecordError> {
        self.local.clear();
        self.remote.clear();
        {
            let mut b = lock(&self.tap.buffers);
            let (nl, nr) = (b.local.len(), b.remote.len());
            // Pair what both sides have; pad the lagging side when the other is far ahead
            // (or at the end).
            let n = if all || nl.abs_diff(nr) > self.skew {
                nl.max(nr)
            } else {
                nl.min(nr)
            };
            let take_l = n.min(nl);
            let take_r = n.min(nr);
            self.local.extend(b.local.drain(..take_l));
            self.remote.extend(b.remote.drain(..take_r));
            self.local.resize(n, 0);
            self.remote.resize(n, 0);
        }
        let n = self.local.len();
        if n == 0 {
            return Ok(0);
        }
        self.out.clear();
        match self.channels {
            RecordChannels::Mono => self.out.extend(
                self.local
                    .iter()
                    .zip(&self.remote)
                    .map(|(&l, &r)| to_i16(soft_limit(f32::from(l) + f32::from(r)))),
            ),
            RecordChannels::Stereo => {
                for (&l, &r) in self.local.iter().zip(&self.remote) {
                    self.out.push(l);
                    self.out.push(r);
                }
            }
        }
        if let Some(w) = self.wav.as_mut() {
            w.write_samples(&self.out)?;
            w.update_header()?;
        }
        Ok(n as u64)
    }

    /// Stop capturing, write the rest, close the file.
    pub fn finish(mut self) -> Result<RecordSummary, RecordError> {
        self.tap.active.store(false, Ordering::Release);
        self.pump_inner(true)?;
        let dropped = lock(&self.tap.buffers).dropped;
        let Some(wav) = self.wav.take() else {
            return Err(RecordError::Thread(self.path.clone()));
        };
        let channels = wav.channels();
        let samples = wav.finish()?;
        let frames = samples / u64::from(channels);
        debug!(path = %self.path.display(), frames, dropped, "call recording finished");
        Ok(RecordSummary {
            path: self.path.clone(),
            rate: self.rate,
            channels,
            frames,
            duration_ms: frames * 1000 / u64::from(self.rate.max(1)),
            dropped,
        })
    }

    /// Pump every `period` on a thread of its own until [`RecorderThread::finish`].
    pub fn spawn(self, period: Duration) -> Result<RecorderThread, RecordError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let path = self.path.clone();
        let mut rec = self;
        let handle = std::thread::Builder::new()
            .name("call-recorder".into())
            .spawn(move || {
                let mut failed = false;
                while !stop2.load(Ordering::Acquire) {
                    std::thread::park_timeout(period);
                    if !failed {
                        if let Err(e) = rec.pump() {
                            warn!(path = %rec.path.display(), error = %e, "recording write failed");
                            failed = true;
                        }
                    }
                }
                rec.finish()
            })
            .map_err(|e| RecordError::Spawn(path.clone(), e))?;
        Ok(RecorderThread {
            stop,
            handle: Some(handle),
            path,
        })
    }
}

impl Drop for CallRecorder {
    fn drop(&mut self) {
        self.tap.active.store(false, Ordering::Release);
        if let Some(w) = self.wav.as_mut() {
            let _ = w.update_header();
        }
    }
}

/// A recording being written by its own thread ([`CallRecorder::spawn`]).
pub struct RecorderThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<RecordSummary, RecordError>>>,
    path: PathBuf,
}

impl RecorderThread {
    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop, write the rest, close the file (joins the thread).
    pub fn finish(mut self) -> Result<RecordSummary, RecordError> {
        self.stop.store(true, Ordering::Release);
        let Some(h) = self.handle.take() else {
            return Err(RecordError::Thread(self.path.clone()));
        };
        h.thread().unpark();
        h.join()
            .unwrap_or_else(|_| Err(RecordError::Thread(self.path.clone())))
    }
}

impl Drop for RecorderThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}
