//! cpal devices.
//!
//! Layout of one opened device:
//!
//! ```text
//!  consumer (20 ms tick)          ring buffer (mono f32,           cpal callback
//!  read_frame / write_frame  <->  device rate, lock-free SPSC)  <-> (device rate, N channels)
//!  resampling, priming                                             down/up-mix, format conversion
//!                                  watcher thread: builds the stream, watches the error
//!                                  counters and the callback heartbeat, rebuilds on failure
//! ```
//!
//! The real-time callback only touches atomics and its half of the ring (behind a `Mutex` that it
//! only ever `try_lock`s: the watcher takes it solely between two streams, so the callback never
//! waits). It never allocates, logs or blocks. Resampling runs on the consumer's thread.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use tracing::{debug, info, warn};

use crate::fallback::{Decision, Fallback, LossReason, Using};
use crate::resample::Resampler;
use crate::{
    f32_to_i16, i16_to_f32, AudioError, AudioInput, AudioOutput, DeviceEvent, DeviceEvents,
    Direction,
};

/// Ring capacity in samples: 1 s at 192 kHz, so the ring never limits latency itself; the
/// thresholds below do, in milliseconds of the actual device rate.
/// Calls `$build::<T>(args)` with `T` the sample type of the device's format; formats we
/// cannot convert are an error naming the device.
macro_rules! for_sample_format {
    ($format:expr, $label:expr, $build:ident ( $($arg:expr),* )) => {
        match $format {
            SampleFormat::F32 => $build::<f32>($($arg),*),
            SampleFormat::I16 => $build::<i16>($($arg),*),
            SampleFormat::I32 => $build::<i32>($($arg),*),
            SampleFormat::U16 => $build::<u16>($($arg),*),
            SampleFormat::U8 => $build::<u8>($($arg),*),
            SampleFormat::I8 => $build::<i8>($($arg),*),
            SampleFormat::F64 => $build::<f64>($($arg),*),
            other => Err(AudioError::UnsupportedFormat {
                device: $label.to_string(),
                format: other.to_string(),
            }),
        }
    };
}

const RING_CAPACITY: usize = 192_000;
/// Above this much buffered audio the oldest samples are dropped ...
const MAX_LATENCY_MS: u32 = 200;
/// ... down to this much.
const TRIM_TO_MS: u32 = 60;
/// Output: audio buffered before playback (re)starts after an underflow.
const OUTPUT_PRIME_MS: u32 = 40;
/// Input: cushion kept beyond one frame before delivery (re)starts; grows after underflows.
const INPUT_PRIME_MS: u32 = 20;
const INPUT_PRIME_MAX_MS: u32 = 100;
/// How often the watcher looks at the stream.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// No callback for this long (after the stream had started) counts as a dead stream.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// No callback at all this long after a (re)build counts as a dead stream too (the PulseAudio
/// null sink takes about 2 s before it starts pulling audio).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Non-xrun errors in this many consecutive watch intervals mean the stream is wedged.
const ERROR_WINDOWS_BEFORE_REBUILD: u32 = 3;
/// This many errors in one watch interval is a flood: rebuild at once.
const ERROR_FLOOD: u32 = 10;
/// This many xruns in one watch interval is a flood: rebuild at once.
const XRUN_FLOOD: u32 = 20;
/// Rebuild attempts back off from ... to ...
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long `open_*` waits for the first stream to come up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the watcher reports buffer statistics (when anything happened).
const STATS_INTERVAL: Duration = Duration::from_secs(5);

fn ms_to_samples(ms: u32, rate: u32) -> usize {
    (u64::from(ms) * u64::from(rate) / 1000) as usize
}

/// State shared by the consumer handle, the callbacks and the watcher thread.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Set by the error callback for errors after which the stream cannot continue.
    fatal: AtomicBool,
    /// Non-xrun stream errors since the watcher last looked.
    errors: AtomicU32,
    /// Xruns since the watcher last looked.
    xruns: AtomicU32,
    /// Data callbacks so far (heartbeat).
    callbacks: AtomicU64,
    /// Sample rate of the current stream.
    device_rate: AtomicU32,
    /// Bumped every time a stream is (re)built; the consumer resets its converter on change.
    generation: AtomicU32,
    /// Input: the callback found the ring full and dropped samples.
    overflowed: AtomicBool,
    /// Samples dropped to keep latency bounded (either direction).
    trimmed: AtomicU64,
    /// Frames (input) or callbacks (output) that ran short of audio.
    underruns: AtomicU64,
    /// The most recent stream error, for the watcher's log line.
    last_error: Mutex<Option<cpal::Error>>,
    /// Token of the stream whose callbacks feed the ring (0: none).
    active: AtomicU32,
    /// Callbacks of a probe stream (an inactive one) since the probe started.
    probe_callbacks: AtomicU64,
    /// A probe stream reported an error.
    probe_failed: AtomicBool,
}

impl Shared {
    fn record_error(&self, err: cpal::Error) {
        match err.kind() {
            cpal::ErrorKind::Xrun => {
                self.xruns.fetch_add(1, Ordering::Relaxed);
            }
            cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated => {
                self.fatal.store(true, Ordering::Relaxed);
            }
            // Informational: the stream keeps running.
            cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => {}
            _ => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Ok(mut last) = self.last_error.try_lock() {
            *last = Some(err);
        }
    }

    /// The error callback of the stream with `token`: errors of the active stream count; a
    /// probe fails only when its device is reported gone (ALSA's pulse plugin floods a new
    /// stream with I/O errors until the server pulls audio; the callback count decides).
    fn stream_error(&self, token: u32, err: cpal::Error) {
        if self.active.load(Ordering::Acquire) == token {
            self.record_error(err);
        } else if matches!(
            err.kind(),
            cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated
        ) {
            self.probe_failed.store(true, Ordering::Relaxed);
        }
    }

    /// The data callback of the stream with `token` was called: true when it feeds the ring.
    fn heartbeat(&self, token: u32) -> bool {
        if self.active.load(Ordering::Acquire) == token {
            self.callbacks.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.probe_callbacks.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    fn take_last_error(&self) -> Option<cpal::Error> {
        lock(&self.last_error).take()
    }
}

/// Lock a mutex from a non-real-time thread, ignoring poisoning (the data stays consistent: the
/// ring halves have no invariants a panic could break).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Try to lock a mutex from the real-time callback without waiting.
fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

fn backend(device: &str, source: cpal::Error) -> AudioError {
    AudioError::Backend {
        device: device.to_string(),
        source,
    }
}

/// A label for logs and errors.
fn label(name: Option<&str>) -> String {
    name.unwrap_or("default").to_string()
}

fn supports(device: &cpal::Device, dir: Direction) -> bool {
    match dir {
        Direction::Input => device.supports_input(),
        Direction::Output => device.supports_output(),
    }
}

/// Whether `device` answers to `name` (its id, the part of the id after `host:`, its
/// description or its display name; case-insensitive).
fn matches_name(device: &cpal::Device, name: &str) -> bool {
    if let Ok(id) = device.id() {
        let id = id.to_string();
        if id.eq_ignore_ascii_case(name) {
            return true;
        }
        if let Some((_, rest)) = id.split_once(':') {
            if rest.eq_ignore_ascii_case(name) {
                return true;
            }
        }
    }
    if let Ok(desc) = device.description() {
        if desc.name().trim().eq_ignore_ascii_case(name) {
            return true;
        }
    }
    device.to_string().trim().eq_ignore_ascii_case(name)
}

/// Find the device for `name` (`None` = the host default) in direction `dir`.
fn find_device(name: Option<&str>, dir: Direction) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let Some(name) = name else {
        let dev = match dir {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        return dev.ok_or(AudioError::NoDefaultDevice(dir));
    };
    let not_found = || AudioError::DeviceNotFound {
        name: name.to_string(),
        direction: dir,
    };
    if let Ok(id) = name.parse::<cpal::DeviceId>() {
        if let Some(dev) = host.device_by_id(&id) {
            if supports(&dev, dir) {
                return Ok(dev);
            }
        }
    }
    let devices = match host.devices() {
        Ok(d) => d,
        Err(e) if e.kind() == cpal::ErrorKind::HostUnavailable => return Err(not_found()),
        Err(e) => return Err(backend(name, e)),
    };
    for dev in devices {
        if matches_name(&dev, name) && supports(&dev, dir) {
            return Ok(dev);
        }
    }
    Err(not_found())
}

/// See [`crate::list_devices`].
pub fn list(dir: Direction) -> Result<Vec<String>, AudioError> {
    let host = cpal::default_host();
    let devices = match host.devices() {
        Ok(d) => d,
        Err(e)
            if matches!(
                e.kind(),
                cpal::ErrorKind::HostUnavailable | cpal::ErrorKind::DeviceNotAvailable
            ) =>
        {
            debug!(error = %e, "audio host unavailable; no devices");
            return Ok(Vec::new());
        }
        Err(e) => return Err(backend("host", e)),
    };
    let mut ids = Vec::new();
    for dev in devices {
        if !supports(&dev, dir) {
            continue;
        }
        match dev.id() {
            Ok(id) => {
                let id = id.to_string();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Err(e) => debug!(device = %dev, error = %e, "skipping device without id"),
        }
    }
    Ok(ids)
}

/// One stream built by the watcher. Its callbacks feed the ring only while its `token` is the
/// active one ([`Shared::active`]); until then (a probe of a returning device) they count
/// their calls in [`Shared::probe_callbacks`] and play silence.
struct Built {
    /// Kept only to keep the stream running: dropping it stops the stream.
    _stream: cpal::Stream,
    rate: u32,
    /// The cpal device id (for logs and the fallback notification).
    id: String,
    token: u32,
}

/// Builds one stream for the watcher on the named device (`None` = the default device),
/// with the given token, and starts it (not yet active).
type BuildFn = dyn FnMut(&Arc<Shared>, Option<&str>, u32) -> Result<Built, AudioError> + Send;

/// Makes `built` the stream that feeds the ring: its rate for the resamplers, then its token,
/// then a new generation so the consumer resets its converter.
fn activate(shared: &Shared, built: &Built) {
    shared.device_rate.store(built.rate, Ordering::Release);
    shared.active.store(built.token, Ordering::Release);
    shared.generation.fetch_add(1, Ordering::AcqRel);
}

/// The watcher's side of a device: its name, direction and who hears about fallbacks.
struct WatchTarget {
    dir: Direction,
    /// The selected device (`None` = the default device: nothing to fall back from).
    name: Option<String>,
    label: String,
    events: Option<DeviceEvents>,
}

impl WatchTarget {
    fn emit(&self, event: DeviceEvent) {
        if let Some(cb) = &self.events {
            cb(event);
        }
    }

    /// Whether the selected device is missing from the device list (an enumeration error
    /// is not an answer: the device counts as present).
    fn not_listed(&self) -> bool {
        match &self.name {
            Some(name) => matches!(
                find_device(Some(name), self.dir),
                Err(AudioError::DeviceNotFound { .. })
            ),
            None => false,
        }
    }
}

/// Start the watcher thread, which builds the first stream (reported back before this returns)
/// and then keeps a stream alive until `shared.stop` is set.
fn start_watcher(
    target: WatchTarget,
    shared: Arc<Shared>,
    mut build: Box<BuildFn>,
) -> Result<(JoinHandle<()>, u32), AudioError> {
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<u32, AudioError>>(1);
    let label = target.label.clone();
    let dir = target.dir;
    let thread_shared = Arc::clone(&shared);
    let handle = thread::Builder::new()
        .name(format!("audio-{dir}"))
        .spawn(move || {
            let shared = thread_shared;
            let first = build(&shared, target.name.as_deref(), 1);
            let first = match first {
                Ok(built) => {
                    activate(&shared, &built);
                    let _ = ready_tx.send(Ok(built.rate));
                    built
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            watch(&target, &shared, first, build.as_mut());
        })
        .map_err(|e| AudioError::Thread {
            device: label.clone(),
            reason: e.to_string(),
        })?;
    match ready_rx.recv_timeout(OPEN_TIMEOUT) {
        Ok(Ok(rate)) => Ok((handle, rate)),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Let the thread finish on its own whenever the backend returns.
            shared.stop.store(true, Ordering::Relaxed);
            Err(AudioError::Thread {
                device: label,
                reason: format!("stream did not open within {OPEN_TIMEOUT:?}"),
            })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = handle.join();
            Err(AudioError::Thread {
                device: label,
                reason: "audio thread exited while opening".into(),
            })
        }
    }
}

/// A stream of the selected device, built while the default device plays, that becomes the
/// active one once it has called back [`PROBE_CALLBACKS`] times.
struct Probe {
    built: Built,
    started: Instant,
}

/// Callbacks a probe stream must deliver before the device counts as back.
const PROBE_CALLBACKS: u64 = 5;
/// A probe that delivers nothing in this time failed (the PulseAudio null sink needs ~2 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(4);

/// The watcher loop: keep a healthy stream running, rebuilding it when it fails, falling back
/// to the default device when the selected one is gone and going back when it returns
/// (decisions in [`Fallback`]).
fn watch(target: &WatchTarget, shared: &Arc<Shared>, first: Built, build: &mut BuildFn) {
    let (dir, label) = (target.dir, target.label.as_str());
    let mut policy = Fallback::new(target.name.is_some(), Instant::now());
    policy.stream_up(Instant::now());
    let mut next_token = first.token + 1;
    let mut stream = Some(first);
    let mut probe: Option<Probe> = None;
    // Why the selected device was given up, until the fallback has been announced.
    let mut pending_fallback: Option<LossReason> = None;
    // Why the current stream was dropped (reported if rebuilding it makes us fall back).
    let mut last_loss = LossReason::Failed;
    let mut built_at = Instant::now();
    let mut last_callbacks = shared.callbacks.load(Ordering::Relaxed);
    let mut last_progress: Option<Instant> = None;
    let mut error_windows = 0u32;
    let mut backoff = BACKOFF_MIN;
    let mut next_attempt = Instant::now();
    let mut last_stats = Instant::now();
    let (mut last_trimmed, mut last_underruns) = (0u64, 0u64);

    while !shared.stop.load(Ordering::Relaxed) {
        thread::park_timeout(WATCH_INTERVAL);
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let fatal = shared.fatal.swap(false, Ordering::Relaxed);
        let errors = shared.errors.swap(0, Ordering::Relaxed);
        let xruns = shared.xruns.swap(0, Ordering::Relaxed);
        if fatal || errors > 0 || xruns > 0 {
            let last = shared
                .take_last_error()
                .map(|e| e.to_string())
                .unwrap_or_default();
            warn!(device = label, %dir, fatal, errors, xruns, last_error = %last, "audio stream errors");
        }
        error_windows = if errors > 0 { error_windows + 1 } else { 0 };

        let callbacks = shared.callbacks.load(Ordering::Relaxed);
        if callbacks != last_callbacks {
            last_callbacks = callbacks;
            last_progress = Some(now);
        }
        let stalled = stream.is_some()
            && match last_progress {
                Some(t) => now.duration_since(t) > STALL_TIMEOUT,
                None => now.duration_since(built_at) > START_TIMEOUT,
            };
        if stalled {
            warn!(device = label, %dir, "audio stream stopped calling back");
        }

        let mut loss = if fatal {
            Some(LossReason::Removed)
        } else if errors >= ERROR_FLOOD
            || error_windows >= ERROR_WINDOWS_BEFORE_REBUILD
            || xruns >= XRUN_FLOOD
            || stalled
        {
            Some(LossReason::Failed)
        } else {
            None
        };
        if loss.is_none() && stream.is_some() && policy.list_check_due(now) && target.not_listed() {
            warn!(device = label, %dir, "the selected audio device is no longer listed");
            loss = Some(LossReason::NotListed);
        }
        if let (Some(loss), Some(_)) = (loss, &stream) {
            info!(device = label, %dir, ?loss, "dropping the failed audio stream");
            stream = None;
            shared.active.store(0, Ordering::Release);
            error_windows = 0;
            next_attempt = now;
            backoff = BACKOFF_MIN;
            last_loss = loss;
            if let Decision::FallBack(reason) = policy.stream_broken(now, loss) {
                pending_fallback = Some(reason);
            }
        }
        // Build a stream when none runs: on the selected device, or on the default one after
        // a fallback. A failed rebuild of the selected device falls back at once.
        for _ in 0..2 {
            if stream.is_some() || now < next_attempt {
                break;
            }
            let on_default = policy.using() == Using::Default;
            let name = if on_default {
                None
            } else {
                target.name.as_deref()
            };
            let token = next_token;
            next_token = next_token.wrapping_add(1).max(1);
            match build(shared, name, token) {
                Ok(built) => {
                    info!(device = label, %dir, id = %built.id, rate = built.rate, on_default, "audio stream rebuilt");
                    activate(shared, &built);
                    if let (Some(reason), Some(selected)) =
                        (pending_fallback.take(), target.name.as_ref())
                    {
                        warn!(device = label, %dir, %reason, default = %built.id, "audio moved to the default device");
                        target.emit(DeviceEvent::FellBack {
                            direction: dir,
                            selected: selected.clone(),
                            reason,
                            default_device: Some(built.id.clone()),
                        });
                    }
                    stream = Some(built);
                    policy.stream_up(now);
                    built_at = Instant::now();
                    last_progress = None;
                    last_callbacks = shared.callbacks.load(Ordering::Relaxed);
                    backoff = BACKOFF_MIN;
                    // Errors reported by the old stream while it was torn down do not count.
                    shared.errors.store(0, Ordering::Relaxed);
                    shared.xruns.store(0, Ordering::Relaxed);
                    shared.fatal.store(false, Ordering::Relaxed);
                }
                Err(e) => {
                    warn!(device = label, %dir, error = %e, retry_in = ?backoff, on_default, "rebuilding the audio stream failed");
                    // A device that cannot even be found is no longer listed, whatever made
                    // its stream fail first.
                    let reason = match e {
                        AudioError::DeviceNotFound { .. } => LossReason::NotListed,
                        _ => last_loss,
                    };
                    match policy.build_failed(now, reason) {
                        Decision::FallBack(reason) => {
                            pending_fallback = Some(reason);
                            // Try the default device right away (second round of the loop).
                            continue;
                        }
                        Decision::Rebuild => {
                            if on_default {
                                if let (Some(reason), Some(selected)) =
                                    (pending_fallback.take(), target.name.as_ref())
                                {
                                    target.emit(DeviceEvent::FellBack {
                                        direction: dir,
                                        selected: selected.clone(),
                                        reason,
                                        default_device: None,
                                    });
                                }
                            }
                            next_attempt = now + backoff;
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                        }
                    }
                }
            }
            break;
        }

        // On the default device: see whether the selected one is back.
        if let (Using::Default, Some(selected)) = (policy.using(), target.name.as_deref()) {
            match probe.take() {
                Some(p) => {
                    let calls = shared.probe_callbacks.load(Ordering::Relaxed);
                    let failed = shared.probe_failed.swap(false, Ordering::Relaxed);
                    if !failed && calls >= PROBE_CALLBACKS {
                        info!(device = label, %dir, id = %p.built.id, "the selected audio device is back");
                        activate(shared, &p.built);
                        stream = Some(p.built);
                        policy.restored(now);
                        built_at = now;
                        last_progress = None;
                        last_callbacks = shared.callbacks.load(Ordering::Relaxed);
                        pending_fallback = None;
                        shared.errors.store(0, Ordering::Relaxed);
                        shared.xruns.store(0, Ordering::Relaxed);
                        shared.fatal.store(false, Ordering::Relaxed);
                        target.emit(DeviceEvent::Restored {
                            direction: dir,
                            selected: selected.to_string(),
                        });
                    } else if failed || now.duration_since(p.started) > PROBE_TIMEOUT {
                        debug!(device = label, %dir, calls, failed, "the selected audio device is not back yet");
                        drop(p);
                        policy.probe_failed(now);
                    } else {
                        probe = Some(p);
                    }
                }
                None if policy.probe_due(now) => {
                    if target.not_listed() {
                        policy.probe_failed(now);
                    } else {
                        shared.probe_callbacks.store(0, Ordering::Relaxed);
                        shared.probe_failed.store(false, Ordering::Relaxed);
                        let token = next_token;
                        next_token = next_token.wrapping_add(1).max(1);
                        match build(shared, Some(selected), token) {
                            Ok(built) => {
                                probe = Some(Probe {
                                    built,
                                    started: now,
                                })
                            }
                            Err(e) => {
                                debug!(device = label, %dir, error = %e, "probing the selected audio device failed");
                                policy.probe_failed(now);
                            }
                        }
                    }
                }
                None => {}
            }
        }

        if now.duration_since(last_stats) >= STATS_INTERVAL {
            last_stats = now;
            let trimmed = shared.trimmed.load(Ordering::Relaxed);
            let underruns = shared.underruns.load(Ordering::Relaxed);
            if trimmed != last_trimmed || underruns != last_underruns {
                debug!(
                    device = label, %dir,
                    trimmed_samples = trimmed - last_trimmed,
                    underruns = underruns - last_underruns,
                    "audio buffer adjustments"
                );
                last_trimmed = trimmed;
                last_underruns = underruns;
            }
        }
    }
    drop(probe);
    drop(stream);
    debug!(device = label, %dir, "audio watcher stopped");
}

fn stop_watcher(shared: &Shared, thread: &mut Option<JoinHandle<()>>) {
    shared.stop.store(true, Ordering::Relaxed);
    if let Some(t) = thread.take() {
        t.thread().unpark();
        if t.join().is_err() {
            warn!("audio watcher thread panicked");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Input

/// Capture from a cpal device.
pub struct CpalInput {
    label: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    cons: HeapCons<f32>,
    rate: u32,
    generation: u32,
    device_rate: u32,
    resampler: Resampler,
    /// Device-rate samples taken from the ring, waiting for conversion.
    raw: Vec<f32>,
    /// Converted samples not yet handed out.
    pending: Vec<f32>,
    primed: bool,
    prime_extra_ms: u32,
}

impl CpalInput {
    /// Open `name` (`None` = default device) for capture, delivering mono at `rate`.
    /// `events` hears when a named device is lost and the default device takes over, and
    /// when it comes back ([`DeviceEvent`]).
    pub fn open(
        name: Option<&str>,
        rate: u32,
        events: Option<DeviceEvents>,
    ) -> Result<CpalInput, AudioError> {
        let label = label(name);
        let (prod, cons) = HeapRb::<f32>::new(RING_CAPACITY).split();
        let prod = Arc::new(Mutex::new(prod));
        let shared = Arc::new(Shared::default());
        let build = Box::new(
            move |shared: &Arc<Shared>, name: Option<&str>, token: u32| {
                build_input(name, &prod, shared, token)
            },
        );
        let target = WatchTarget {
            dir: Direction::Input,
            name: name.map(str::to_string),
            label: label.clone(),
            events,
        };
        let (thread, device_rate) = start_watcher(target, Arc::clone(&shared), build)?;
        Ok(CpalInput {
            label,
            generation: shared.generation.load(Ordering::Acquire),
            shared,
            thread: Some(thread),
            cons,
            rate,
            device_rate,
            resampler: Resampler::new(device_rate, rate),
            raw: Vec::with_capacity(4096),
            pending: Vec::with_capacity(4096),
            primed: false,
            prime_extra_ms: INPUT_PRIME_MS,
        })
    }
}

fn build_input(
    name: Option<&str>,
    prod: &Arc<Mutex<HeapProd<f32>>>,
    shared: &Arc<Shared>,
    token: u32,
) -> Result<Built, AudioError> {
    let label = &label(name);
    let device = find_device(name, Direction::Input)?;
    let supported = device
        .default_input_config()
        .map_err(|e| backend(label, e))?;
    let config = supported.config();
    let format = supported.sample_format();
    let rate = config.sample_rate;
    let channels = usize::from(config.channels).max(1);
    let stream = for_sample_format!(
        format,
        label,
        build_input_typed(&device, label, config, channels, prod, shared, token)
    )?;
    stream.play().map_err(|e| backend(label, e))?;
    let id = device_id(&device, label);
    info!(device = label, %id, rate, channels, %format, token, "capture stream started");
    Ok(Built {
        _stream: stream,
        rate,
        id,
        token,
    })
}

/// The cpal id of `device` (`alsa:default`), else the label it was opened with.
fn device_id(device: &cpal::Device, label: &str) -> String {
    device
        .id()
        .map(|i| i.to_string())
        .unwrap_or_else(|_| label.to_string())
}

fn build_input_typed<T>(
    device: &cpal::Device,
    label: &str,
    config: cpal::StreamConfig,
    channels: usize,
    prod: &Arc<Mutex<HeapProd<f32>>>,
    shared: &Arc<Shared>,
    token: u32,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let data_prod = Arc::clone(prod);
    let data_shared = Arc::clone(shared);
    let err_shared = Arc::clone(shared);
    let scale = 1.0 / channels as f32;
    device
        .build_input_stream::<T, _, _>(
            config,
            move |data: &[T], _info: &cpal::InputCallbackInfo| {
                if !data_shared.heartbeat(token) {
                    return;
                }
                let Some(mut prod) = try_lock(&data_prod) else {
                    return;
                };
                let frames = data.len() / channels;
                let vacant = prod.vacant_len();
                if frames > vacant {
                    data_shared.overflowed.store(true, Ordering::Relaxed);
                }
                for frame in data.chunks_exact(channels).take(vacant) {
                    let sum: f32 = frame.iter().map(|&s| s.to_sample::<f32>()).sum();
                    let _ = prod.try_push(sum * scale);
                }
            },
            move |err| err_shared.stream_error(token, err),
            None,
        )
        .map_err(|e| backend(label, e))
}

impl AudioInput for CpalInput {
    fn read_frame(&mut self, out: &mut [i16]) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            // A new stream: possibly another rate, and whatever is buffered is stale.
            self.generation = generation;
            self.device_rate = self.shared.device_rate.load(Ordering::Acquire).max(1);
            self.resampler = Resampler::new(self.device_rate, self.rate);
            self.cons.clear();
            self.pending.clear();
            self.primed = false;
            // The cushion grown for the old device's underruns says nothing about this one.
            self.prime_extra_ms = INPUT_PRIME_MS;
        }
        if self.shared.overflowed.swap(false, Ordering::Relaxed) {
            // The ring filled up while nobody read: its content is old. Start afresh.
            let n = self.cons.clear();
            self.shared.trimmed.fetch_add(n as u64, Ordering::Relaxed);
            self.primed = false;
        }
        let mut available = self.cons.occupied_len();
        if available > ms_to_samples(MAX_LATENCY_MS, self.device_rate) {
            let keep = ms_to_samples(TRIM_TO_MS, self.device_rate);
            let n = self.cons.skip(available - keep);
            self.shared.trimmed.fetch_add(n as u64, Ordering::Relaxed);
            available -= n;
        }

        let wanted = out.len().saturating_sub(self.pending.len());
        let needed = self.resampler.input_needed(wanted);
        if !self.primed {
            let cushion = ms_to_samples(self.prime_extra_ms, self.device_rate);
            if available < needed + cushion {
                out.fill(0);
                return;
            }
            self.primed = true;
        }
        if wanted > 0 {
            let take = needed.min(available);
            self.raw.resize(take, 0.0);
            let got = self.cons.pop_slice(&mut self.raw);
            self.raw.truncate(got);
            self.resampler.process(&self.raw, &mut self.pending);
        }
        let n = out.len().min(self.pending.len());
        for (o, &s) in out.iter_mut().zip(&self.pending[..n]) {
            *o = f32_to_i16(s);
        }
        self.pending.drain(..n);
        if n < out.len() {
            out[n..].fill(0);
            self.shared.underruns.fetch_add(1, Ordering::Relaxed);
            self.primed = false;
            self.prime_extra_ms = (self.prime_extra_ms + 10).min(INPUT_PRIME_MAX_MS);
        }
    }
}

impl Drop for CpalInput {
    fn drop(&mut self) {
        stop_watcher(&self.shared, &mut self.thread);
        debug!(device = %self.label, "capture closed");
    }
}

// ---------------------------------------------------------------------------------------------
// Output

/// Playback on a cpal device.
pub struct CpalOutput {
    label: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    prod: HeapProd<f32>,
    rate: u32,
    generation: u32,
    resampler: Resampler,
    input: Vec<f32>,
    converted: Vec<f32>,
    dropped: u64,
}

impl CpalOutput {
    /// Open `name` (`None` = default device) for playback of mono at `rate`; `events` as
    /// for [`CpalInput::open`].
    pub fn open(
        name: Option<&str>,
        rate: u32,
        events: Option<DeviceEvents>,
    ) -> Result<CpalOutput, AudioError> {
        let label = label(name);
        let (prod, cons) = HeapRb::<f32>::new(RING_CAPACITY).split();
        let cons = Arc::new(Mutex::new(cons));
        let shared = Arc::new(Shared::default());
        let build = Box::new(
            move |shared: &Arc<Shared>, name: Option<&str>, token: u32| {
                build_output(name, &cons, shared, token)
            },
        );
        let target = WatchTarget {
            dir: Direction::Output,
            name: name.map(str::to_string),
            label: label.clone(),
            events,
        };
        let (thread, device_rate) = start_watcher(target, Arc::clone(&shared), build)?;
        Ok(CpalOutput {
            label,
            generation: shared.generation.load(Ordering::Acquire),
            shared,
            thread: Some(thread),
            prod,
            rate,
            resampler: Resampler::new(rate, device_rate),
            input: Vec::with_capacity(4096),
            converted: Vec::with_capacity(4096),
            dropped: 0,
        })
    }
}

fn build_output(
    name: Option<&str>,
    cons: &Arc<Mutex<HeapCons<f32>>>,
    shared: &Arc<Shared>,
    token: u32,
) -> Result<Built, AudioError> {
    let label = &label(name);
    let device = find_device(name, Direction::Output)?;
    let supported = device
        .default_output_config()
        .map_err(|e| backend(label, e))?;
    let config = supported.config();
    let format = supported.sample_format();
    let rate = config.sample_rate;
    let channels = usize::from(config.channels).max(1);
    let stream = for_sample_format!(
        format,
        label,
        build_output_typed(&device, label, config, channels, rate, cons, shared, token)
    )?;
    stream.play().map_err(|e| backend(label, e))?;
    let id = device_id(&device, label);
    info!(device = label, %id, rate, channels, %format, token, "playback stream started");
    Ok(Built {
        _stream: stream,
        rate,
        id,
        token,
    })
}

#[allow(clippy::too_many_arguments)] // the input twin's arguments plus the device rate
fn build_output_typed<T>(
    device: &cpal::Device,
    label: &str,
    config: cpal::StreamConfig,
    channels: usize,
    rate: u32,
    cons: &Arc<Mutex<HeapCons<f32>>>,
    shared: &Arc<Shared>,
    token: u32,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample + FromSample<f32>,
{
    let data_cons = Arc::clone(cons);
    let data_shared = Arc::clone(shared);
    let err_shared = Arc::clone(shared);
    let max_latency = ms_to_samples(MAX_LATENCY_MS, rate);
    let trim_to = ms_to_samples(TRIM_TO_MS, rate);
    let prime = ms_to_samples(OUTPUT_PRIME_MS, rate);
    let mut primed = false;
    let mut fresh = true;
    device
        .build_output_stream::<T, _, _>(
            config,
            move |data: &mut [T], _info: &cpal::OutputCallbackInfo| {
                if !data_shared.heartbeat(token) {
                    // A probe: silence until it takes over.
                    data.fill(T::EQUILIBRIUM);
                    return;
                }
                let Some(mut cons) = try_lock(&data_cons) else {
                    data.fill(T::EQUILIBRIUM);
                    return;
                };
                if fresh {
                    // Whatever is queued was converted for the previous stream.
                    fresh = false;
                    cons.clear();
                }
                let available = cons.occupied_len();
                if available > max_latency {
                    let n = cons.skip(available - trim_to);
                    data_shared.trimmed.fetch_add(n as u64, Ordering::Relaxed);
                }
                if !primed {
                    if cons.occupied_len() < prime {
                        data.fill(T::EQUILIBRIUM);
                        return;
                    }
                    primed = true;
                }
                let mut short = false;
                for frame in data.chunks_mut(channels) {
                    let value = match cons.try_pop() {
                        Some(s) => T::from_sample(s),
                        None => {
                            short = true;
                            T::EQUILIBRIUM
                        }
                    };
                    frame.fill(value);
                }
                if short {
                    // Play silence until a cushion has built up again.
                    primed = false;
                    data_shared.underruns.fetch_add(1, Ordering::Relaxed);
                }
            },
            move |err| err_shared.stream_error(token, err),
            None,
        )
        .map_err(|e| backend(label, e))
}

impl AudioOutput for CpalOutput {
    fn write_frame(&mut self, frame: &[i16]) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.generation = generation;
            let device_rate = self.shared.device_rate.load(Ordering::Acquire).max(1);
            self.resampler = Resampler::new(self.rate, device_rate);
        }
        self.input.clear();
        self.input.extend(frame.iter().map(|&s| i16_to_f32(s)));
        self.converted.clear();
        self.resampler.process(&self.input, &mut self.converted);
        let pushed = self.prod.push_slice(&self.converted);
        if pushed < self.converted.len() {
            // The device is not pulling (yet): drop the newest audio rather than block.
            let lost = (self.converted.len() - pushed) as u64;
            if self.dropped == 0 {
                debug!(device = %self.label, "playback buffer full; dropping audio");
            }
            self.dropped += lost;
            self.shared.trimmed.fetch_add(lost, Ordering::Relaxed);
        }
    }
}

impl Drop for CpalOutput {
    fn drop(&mut self) {
        stop_watcher(&self.shared, &mut self.thread);
        debug!(device = %self.label, dropped = self.dropped, "playback closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_an_unknown_cpal_device_reports_device_not_found() {
        let name = "no-such-device-for-webphone-tests";
        match CpalInput::open(Some(name), 8000, None) {
            Err(AudioError::DeviceNotFound { name: n, direction }) => {
                assert_eq!(n, name);
                assert_eq!(direction, Direction::Input);
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("opened a device that does not exist"),
        }
        assert!(matches!(
            CpalOutput::open(Some(name), 8000, None),
            Err(AudioError::DeviceNotFound { .. })
        ));
    }

    #[test]
    fn listing_devices_never_fails_on_a_machine_without_sound_hardware() {
        // Whatever the host has (possibly nothing), listing must not error out.
        for dir in [Direction::Input, Direction::Output] {
            let ids = list(dir).expect("list devices");
            for id in &ids {
                assert!(id.contains(':'), "device id {id:?} lacks its host prefix");
            }
        }
    }

    #[test]
    fn error_callback_classifies_fatal_errors_and_xruns() {
        let shared = Shared::default();
        shared.record_error(cpal::Error::new(cpal::ErrorKind::Xrun));
        shared.record_error(cpal::Error::new(cpal::ErrorKind::BackendError));
        shared.record_error(cpal::Error::new(cpal::ErrorKind::DeviceChanged));
        assert_eq!(shared.xruns.load(Ordering::Relaxed), 1);
        assert_eq!(shared.errors.load(Ordering::Relaxed), 1);
        assert!(!shared.fatal.load(Ordering::Relaxed));
        shared.record_error(cpal::Error::new(cpal::ErrorKind::DeviceNotAvailable));
        assert!(shared.fatal.load(Ordering::Relaxed));
        assert!(shared.take_last_error().is_some());
    }
}
