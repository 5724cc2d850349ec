//! The local conference mixer: one microphone and one speaker shared by every call.
//!
//! # Model
//!
//! The engine creates one [`MixerHub`] with the real microphone ([`PcmSource`]) and speaker
//! ([`PcmSink`]), both opened at the hub rate ([`MixerConfig::rate`], 48 kHz by default). For
//! every call it asks the hub's [`MixerHandle`] for a line ([`MixerHandle::add_line`] with the
//! call's audio rate: 8, 16 or 48 kHz) and gives the returned [`LineSource`] and [`LineSink`] to
//! that call's media session instead of device handles.
//!
//! Every 20 ms tick the hub:
//! 1. reads one microphone frame and takes one frame of each line's decoded audio;
//! 2. plays on the speaker: every conference member, every line marked audible
//!    ([`MixerHandle::set_audible`]: the engine marks the active, unheld line) and the local
//!    sounds ([`MixerHandle::play_sound`]: ringback, beeps, DTMF feedback) — never the microphone;
//! 3. gives each line what its peer should hear: the microphone, plus, for conference members,
//!    every *other* member (never the line itself). Lines outside the conference hear only the
//!    microphone (spec §7: peers do not hear each other until joined).
//!
//! Sums of more than one signal go through a soft limiter (linear to -2.5 dBFS, then a tanh
//! knee towards full scale): loud conferences compress instead of wrapping or hard-clipping.
//!
//! # Timing and threads
//!
//! The hub is driven by [`MixerHub::tick`] (tests call it directly: virtual time) or by
//! [`MixerHub::run`] on a tokio task with a drift-free 20 ms interval. Each call's media session
//! ticks on its own task at its own phase. Between the two sit two small FIFOs per line (hub
//! rate, float): the call's sink pushes resampled decoded audio, the hub takes one frame per
//! tick; the hub pushes the mixed frame, the call's source takes what it needs and resamples it.
//! A FIFO that has less than a frame gives silence for that tick (underrun) and so gains one
//! frame of slack; a FIFO above [`MixerConfig::max_fifo_frames`] drops its oldest samples
//! (overflow), which bounds the added latency (default 4 frames = 80 ms, typically one frame).
//!
//! Locks: each FIFO has its own mutex held only for a copy of one frame (the call task and the
//! hub tick are the only users); the line table has a mutex taken by the tick and by the
//! control calls of [`MixerHandle`] (never by call tasks). Resampling runs in the call's own
//! task ([`LineSource`]/[`LineSink`]), so the tick only adds. Nothing allocates per frame once
//! the first frame of each size has been seen.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use thiserror::Error;
use tracing::debug;

use crate::local::resample::{ResampleError, Resampler};
use crate::local::tones::Sound;
use crate::local::{soft_limit, to_i16};
use crate::{PcmSink, PcmSource};

/// Why the mixer refused a request.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MixerError {
    /// `add_line` for a line that is already in the hub.
    #[error("line {0} is already in the mixer")]
    LineExists(u32),
    /// A line rate the resampler cannot convert to the hub rate.
    #[error("line {line}: {source}")]
    Rate {
        /// The line.
        line: u32,
        /// Why.
        #[source]
        source: ResampleError,
    },
    /// A hub rate / ptime that does not give a whole number of samples per frame.
    #[error("mixer rate {rate} Hz with {ptime_ms} ms frames is not a whole number of samples")]
    Config {
        /// Hub rate.
        rate: u32,
        /// Frame duration.
        ptime_ms: u32,
    },
}

/// Hub settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixerConfig {
    /// Rate of the devices and of the mix (Hz).
    pub rate: u32,
    /// Tick period in milliseconds.
    pub ptime_ms: u32,
    /// Most frames a per-line FIFO holds before dropping its oldest samples.
    pub max_fifo_frames: usize,
}

impl Default for MixerConfig {
    fn default() -> Self {
        MixerConfig {
            rate: 48_000,
            ptime_ms: 20,
            max_fifo_frames: 4,
        }
    }
}

impl MixerConfig {
    /// Samples per hub frame.
    pub fn frame_samples(&self) -> usize {
        (u64::from(self.rate) * u64::from(self.ptime_ms) / 1000) as usize
    }
}

/// Identifies a sound started with [`MixerHandle::play_sound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SoundId(u64);

/// FIFO counters of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineStats {
    /// Ticks where the call had not delivered a full frame (silence mixed instead).
    pub to_hub_underruns: u64,
    /// Times old decoded audio was dropped because the hub fell behind.
    pub to_hub_overflows: u64,
    /// Frames the call asked for before the hub had mixed them (silence sent instead).
    pub from_hub_underruns: u64,
    /// Times mixed audio was dropped because the call fell behind.
    pub from_hub_overflows: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Fifo {
    buf: VecDeque<f32>,
    cap: usize,
    underruns: u64,
    overflows: u64,
}

impl Fifo {
    /// A FIFO of at most `cap` samples; storage for a quarter of that is taken at once (a
    /// line usually holds one or two frames), the rest when a late side lets it fill up.
    fn new(cap: usize) -> Fifo {
        Fifo {
            buf: VecDeque::with_capacity(cap / 4),
            cap,
            underruns: 0,
            overflows: 0,
        }
    }

    /// The part of `x` that fits (its newest `cap` samples), after dropping the oldest
    /// samples held to make room for it (an overflow).
    fn make_room<'a, T>(&mut self, x: &'a [T]) -> &'a [T] {
        let x = &x[x.len().saturating_sub(self.cap)..];
        let excess = (self.buf.len() + x.len()).saturating_sub(self.cap);
        if excess > 0 {
            self.buf.drain(..excess);
            self.overflows += 1;
        }
        x
    }

    fn push(&mut self, x: &[f32]) {
        let x = self.make_room(x);
        self.buf.extend(x.iter().copied());
    }

    /// [`Fifo::push`] of 16-bit samples (a line at the hub's rate needs no float copy first).
    fn push_i16(&mut self, x: &[i16]) {
        let x = self.make_room(x);
        self.buf.extend(x.iter().map(|&s| f32::from(s)));
    }

    /// Take up to `out.len()` samples as 16-bit; returns how many there were.
    fn pop_i16(&mut self, out: &mut [i16]) -> usize {
        let n = out.len().min(self.buf.len());
        for (o, s) in out.iter_mut().zip(self.buf.drain(..n)) {
            *o = to_i16(s);
        }
        n
    }

    /// Take exactly `out.len()` samples, or nothing (returns false) when fewer are there.
    fn pop_exact(&mut self, out: &mut [f32]) -> bool {
        if self.buf.len() < out.len() {
            self.underruns += 1;
            return false;
        }
        let n = out.len();
        for (o, s) in out.iter_mut().zip(self.buf.drain(..n)) {
            *o = s;
        }
        true
    }
}

#[derive(Debug)]
struct LineShared {
    id: u32,
    rate: u32,
    to_hub: Mutex<Fifo>,
    from_hub: Mutex<Fifo>,
    source_alive: AtomicBool,
    sink_alive: AtomicBool,
    removed: AtomicBool,
}

struct LineEntry {
    shared: Arc<LineShared>,
    conference: bool,
    audible: bool,
    /// The microphone is left out of what this line's peer hears (mute towards one
    /// conference member while the others still reach it).
    mic_muted: bool,
    /// This tick's decoded audio at the hub rate.
    x: Vec<f32>,
}

struct Table {
    lines: Vec<LineEntry>,
    sounds: Vec<(SoundId, Box<dyn Sound>)>,
    next_sound: u64,
}

struct HubShared {
    cfg: MixerConfig,
    frame: usize,
    table: Mutex<Table>,
}

/// The mixer itself: owns the devices; call [`MixerHub::tick`] every frame period (or
/// [`MixerHub::run`]). Control it through [`MixerHub::handle`].
pub struct MixerHub {
    shared: Arc<HubShared>,
    mic: Box<dyn PcmSource>,
    speaker: Box<dyn PcmSink>,
    mic_i16: Vec<i16>,
    mic_f: Vec<f32>,
    conf_sum: Vec<f32>,
    spk: Vec<f32>,
    mix: Vec<f32>,
    out_i16: Vec<i16>,
    ticks: u64,
}

/// Cloneable, thread-safe control of a [`MixerHub`] (lines, conference, audibility, sounds).
#[derive(Clone)]
pub struct MixerHandle {
    shared: Arc<HubShared>,
}

impl MixerHub {
    /// A hub mixing at `cfg.rate` with these devices (opened at `cfg.rate`, mono).
    pub fn new(
        cfg: MixerConfig,
        mic: Box<dyn PcmSource>,
        speaker: Box<dyn PcmSink>,
    ) -> Result<MixerHub, MixerError> {
        let frame = cfg.frame_samples();
        if frame == 0 || u64::from(cfg.rate) * u64::from(cfg.ptime_ms) % 1000 != 0 {
            return Err(MixerError::Config {
                rate: cfg.rate,
                ptime_ms: cfg.ptime_ms,
            });
        }
        Ok(MixerHub {
            shared: Arc::new(HubShared {
                cfg,
                frame,
                table: Mutex::new(Table {
                    lines: Vec::new(),
                    sounds: Vec::new(),
                    next_sound: 1,
                }),
            }),
            mic,
            speaker,
            mic_i16: vec![0; frame],
            mic_f: vec![0.0; frame],
            conf_sum: vec![0.0; frame],
            spk: vec![0.0; frame],
            mix: vec![0.0; frame],
            out_i16: vec![0; frame],
            ticks: 0,
        })
    }

    /// The control handle (clone it freely).
    pub fn handle(&self) -> MixerHandle {
        MixerHandle {
            shared: self.shared.clone(),
        }
    }

    /// The settings.
    pub fn config(&self) -> MixerConfig {
        self.shared.cfg
    }

    /// Ticks done so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Mix one frame: microphone and line audio in, speaker and per-line audio out.
    pub fn tick(&mut self) {
        self.ticks += 1;
        self.mic.read_frame(&mut self.mic_i16);
        for (f, &s) in self.mic_f.iter_mut().zip(&self.mic_i16) {
            *f = f32::from(s);
        }
        let mut table = lock(&self.shared.table);
        let t = &mut *table;
        t.lines.retain(|l| {
            let s = &l.shared;
            let keep = !s.removed.load(Ordering::Acquire)
                && (s.source_alive.load(Ordering::Acquire) || s.sink_alive.load(Ordering::Acquire));
            if !keep {
                s.removed.store(true, Ordering::Release);
                debug!(line = s.id, "mixer: line gone");
            }
            keep
        });

        // 1. Each line's decoded audio for this tick.
        for l in &mut t.lines {
            if !lock(&l.shared.to_hub).pop_exact(&mut l.x) {
                l.x.fill(0.0);
            }
        }
        // 2. Conference sum and speaker mix.
        self.conf_sum.fill(0.0);
        let mut n_conf = 0usize;
        for l in t.lines.iter().filter(|l| l.conference) {
            n_conf += 1;
            for (a, &b) in self.conf_sum.iter_mut().zip(&l.x) {
                *a += b;
            }
        }
        self.spk.copy_from_slice(&self.conf_sum);
        let mut n_spk = n_conf;
        for l in t.lines.iter().filter(|l| !l.conference && l.audible) {
            n_spk += 1;
            for (a, &b) in self.spk.iter_mut().zip(&l.x) {
                *a += b;
            }
        }
        for (_, sound) in &mut t.sounds {
            sound.read_frame(&mut self.out_i16);
            n_spk += 1;
            for (a, &b) in self.spk.iter_mut().zip(&self.out_i16) {
                *a += f32::from(b);
            }
        }
        t.sounds.retain(|(_, s)| !s.is_finished());
        let limit = n_spk > 1;
        for (o, &s) in self.out_i16.iter_mut().zip(&self.spk) {
            *o = to_i16(if limit { soft_limit(s) } else { s });
        }
        self.speaker.write_frame(&self.out_i16);

        // 3. What each peer hears: the microphone (unless muted towards it) plus the other
        //    conference members.
        for l in &t.lines {
            let others = l.conference && n_conf > 1;
            let mic_gain = if l.mic_muted { 0.0 } else { 1.0 };
            if others {
                for ((m, &mic), (&sum, &own)) in self
                    .mix
                    .iter_mut()
                    .zip(&self.mic_f)
                    .zip(self.conf_sum.iter().zip(&l.x))
                {
                    *m = soft_limit(mic * mic_gain + (sum - own));
                }
                lock(&l.shared.from_hub).push(&self.mix);
            } else if l.mic_muted {
                self.mix.fill(0.0);
                lock(&l.shared.from_hub).push(&self.mix);
            } else {
                lock(&l.shared.from_hub).push(&self.mic_f);
            }
        }
    }

    /// Tick every `ptime_ms` on the current tokio runtime until `stop` completes (drift-free
    /// schedule; late ticks are caught up in a burst, the FIFOs absorb it). Gives back the hub.
    pub async fn run<F: Future<Output = ()>>(mut self, stop: F) -> MixerHub {
        let period = Duration::from_millis(u64::from(self.shared.cfg.ptime_ms));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return self,
                _ = interval.tick() => self.tick(),
            }
        }
    }
}

impl MixerHandle {
    /// Hub rate in Hz.
    pub fn rate(&self) -> u32 {
        self.shared.cfg.rate
    }

    /// Add a call whose media runs at `rate` Hz; returns the source to give its media session
    /// (what the peer hears) and the sink (the peer's decoded audio). The line starts outside
    /// the conference and not audible. Dropping both handles (or [`MixerHandle::remove_line`])
    /// takes the line out of the hub.
    pub fn add_line(&self, line: u32, rate: u32) -> Result<(LineSource, LineSink), MixerError> {
        let hub_rate = self.shared.cfg.rate;
        let frame = self.shared.frame;
        let to_hub =
            Resampler::new(rate, hub_rate).map_err(|source| MixerError::Rate { line, source })?;
        let from_hub =
            Resampler::new(hub_rate, rate).map_err(|source| MixerError::Rate { line, source })?;
        let mut t = lock(&self.shared.table);
        if t.lines.iter().any(|l| l.shared.id == line) {
            return Err(MixerError::LineExists(line));
        }
        let cap = frame * self.shared.cfg.max_fifo_frames.max(2);
        let shared = Arc::new(LineShared {
            id: line,
            rate,
            to_hub: Mutex::new(Fifo::new(cap)),
            from_hub: Mutex::new(Fifo::new(cap)),
            source_alive: AtomicBool::new(true),
            sink_alive: AtomicBool::new(true),
            removed: AtomicBool::new(false),
        });
        t.lines.push(LineEntry {
            shared: shared.clone(),
            conference: false,
            audible: false,
            mic_muted: false,
            x: vec![0.0; frame],
        });
        drop(t);
        let call_frame = (u64::from(rate) * u64::from(self.shared.cfg.ptime_ms) / 1000) as usize;
        // A line at the hub's rate (the usual case: the hub takes the first call's rate) needs
        // no buffers of its own: its samples go into and come out of the FIFOs as they are.
        let (hub_frame, staged) = if from_hub.is_passthrough() {
            (Vec::new(), Vec::new())
        } else {
            (vec![0.0; frame], vec![0.0; from_hub.max_output(frame) + 1])
        };
        let (in_f, out_f) = if to_hub.is_passthrough() {
            (Vec::new(), Vec::new())
        } else {
            (
                vec![0.0; call_frame],
                vec![0.0; to_hub.max_output(call_frame) + 1],
            )
        };
        debug!(line, rate, "mixer: line added");
        Ok((
            LineSource {
                shared: shared.clone(),
                resampler: from_hub,
                frame: frame.max(1),
                hub_frame,
                staged,
                staged_pos: 0,
                staged_len: 0,
            },
            LineSink {
                shared,
                in_f,
                out_f,
                resampler: to_hub,
            },
        ))
    }

    /// Take a line out of the hub (its handles then give silence and swallow audio).
    pub fn remove_line(&self, line: u32) -> bool {
        let mut t = lock(&self.shared.table);
        let before = t.lines.len();
        t.lines.retain(|l| {
            let keep = l.shared.id != line;
            if !keep {
                l.shared.removed.store(true, Ordering::Release);
            }
            keep
        });
        before != t.lines.len()
    }

    fn with_line<R>(&self, line: u32, f: impl FnOnce(&mut LineEntry) -> R) -> Option<R> {
        let mut t = lock(&self.shared.table);
        t.lines.iter_mut().find(|l| l.shared.id == line).map(f)
    }

    /// Put a line into the conference or take it out; false if there is no such line.
    pub fn set_conference(&self, line: u32, member: bool) -> bool {
        self.with_line(line, |l| l.conference = member).is_some()
    }

    /// Put every line into the conference (`conference('')`); returns how many lines there are.
    pub fn conference_all(&self) -> usize {
        let mut t = lock(&self.shared.table);
        t.lines.iter_mut().for_each(|l| l.conference = true);
        t.lines.len()
    }

    /// Dissolve the conference (`conference('', false)`): the calls stay, unmixed.
    pub fn dissolve_conference(&self) {
        let mut t = lock(&self.shared.table);
        t.lines.iter_mut().for_each(|l| l.conference = false);
    }

    /// Leave the microphone out of what `line`'s peer hears (the other conference members
    /// still reach it); false if there is no such line.
    pub fn set_mic_muted(&self, line: u32, muted: bool) -> bool {
        self.with_line(line, |l| l.mic_muted = muted).is_some()
    }

    /// Whether a line outside the conference is played on the speaker (the engine sets this for
    /// the active, unheld line and clears it for the others); false if there is no such line.
    pub fn set_audible(&self, line: u32, audible: bool) -> bool {
        self.with_line(line, |l| l.audible = audible).is_some()
    }

    /// The conference members, in the order they were added.
    pub fn conference_lines(&self) -> Vec<u32> {
        let t = lock(&self.shared.table);
        t.lines
            .iter()
            .filter(|l| l.conference)
            .map(|l| l.shared.id)
            .collect()
    }

    /// The lines in the hub, in the order they were added.
    pub fn lines(&self) -> Vec<u32> {
        let t = lock(&self.shared.table);
        t.lines.iter().map(|l| l.shared.id).collect()
    }

    /// FIFO counters of a line.
    pub fn line_stats(&self, line: u32) -> Option<LineStats> {
        let t = lock(&self.shared.table);
        t.lines.iter().find(|l| l.shared.id == line).map(|l| {
            let a = lock(&l.shared.to_hub);
            let b = lock(&l.shared.from_hub);
            LineStats {
                to_hub_underruns: a.underruns,
                to_hub_overflows: a.overflows,
                from_hub_underruns: b.underruns,
                from_hub_overflows: b.overflows,
            }
        })
    }

    /// Play a sound on the speaker only (ringback, call-waiting beep, DTMF feedback, beeps),
    /// mixed over the calls. It must produce audio at the hub rate ([`MixerHandle::rate`]).
    /// It is dropped when it reports [`Sound::is_finished`] or on [`MixerHandle::stop_sound`].
    pub fn play_sound(&self, sound: Box<dyn Sound>) -> SoundId {
        let mut t = lock(&self.shared.table);
        let id = SoundId(t.next_sound);
        t.next_sound += 1;
        t.sounds.push((id, sound));
        id
    }

    /// Stop a sound; false if it had already finished or was stopped.
    pub fn stop_sound(&self, id: SoundId) -> bool {
        let mut t = lock(&self.shared.table);
        let before = t.sounds.len();
        t.sounds.retain(|(i, _)| *i != id);
        before != t.sounds.len()
    }

    /// Whether a sound is still playing.
    pub fn is_playing(&self, id: SoundId) -> bool {
        lock(&self.shared.table)
            .sounds
            .iter()
            .any(|(i, _)| *i == id)
    }
}

/// What one call's peer hears (microphone + other conference members), at the call's rate.
/// Give it to the call's media session as its [`PcmSource`].
pub struct LineSource {
    shared: Arc<LineShared>,
    resampler: Resampler,
    /// Samples per hub frame (at least 1): the FIFO hands out whole hub frames.
    frame: usize,
    /// One hub frame, before resampling (empty at the hub's rate).
    hub_frame: Vec<f32>,
    /// The current hub frame after resampling (empty at the hub's rate, where the samples are
    /// read from the FIFO directly); `staged_pos..staged_len` of it are still to be read.
    staged: Vec<f32>,
    staged_pos: usize,
    staged_len: usize,
}

impl LineSource {
    /// The line number.
    pub fn line(&self) -> u32 {
        self.shared.id
    }

    /// The call's audio rate.
    pub fn rate(&self) -> u32 {
        self.shared.rate
    }
}

impl PcmSource for LineSource {
    fn read_frame(&mut self, out: &mut [i16]) {
        if self.resampler.is_passthrough() {
            self.read_passthrough(out);
            return;
        }
        let mut i = 0;
        while i < out.len() {
            if self.staged_pos < self.staged_len {
                let n = (self.staged_len - self.staged_pos).min(out.len() - i);
                for (o, &s) in out[i..i + n]
                    .iter_mut()
                    .zip(&self.staged[self.staged_pos..self.staged_pos + n])
                {
                    *o = to_i16(s);
                }
                self.staged_pos += n;
                i += n;
                continue;
            }
            if !lock(&self.shared.from_hub).pop_exact(&mut self.hub_frame) {
                out[i..].fill(0);
                return;
            }
            self.staged_len = self.resampler.process(&self.hub_frame, &mut self.staged);
            self.staged_pos = 0;
        }
    }
}

impl LineSource {
    /// A line at the hub's rate: whole hub frames are taken from the FIFO as they are, in
    /// pieces of the call's frame size; `staged_pos..staged_len` counts what is left of the
    /// frame begun.
    fn read_passthrough(&mut self, out: &mut [i16]) {
        let mut fifo = lock(&self.shared.from_hub);
        let mut i = 0;
        while i < out.len() {
            if self.staged_pos >= self.staged_len {
                if fifo.buf.len() < self.frame {
                    fifo.underruns += 1;
                    out[i..].fill(0);
                    return;
                }
                self.staged_pos = 0;
                self.staged_len = self.frame;
            }
            let n = (self.staged_len - self.staged_pos).min(out.len() - i);
            let got = fifo.pop_i16(&mut out[i..i + n]);
            if got < n {
                // the hub dropped samples of the frame begun (overflow): silence for the rest
                out[i + got..].fill(0);
                self.staged_pos = self.staged_len;
                return;
            }
            self.staged_pos += n;
            i += n;
        }
    }
}

impl Drop for LineSource {
    fn drop(&mut self) {
        self.shared.source_alive.store(false, Ordering::Release);
    }
}

/// One call's decoded audio into the mix, at the call's rate. Give it to the call's media
/// session as its [`PcmSink`].
pub struct LineSink {
    shared: Arc<LineShared>,
    resampler: Resampler,
    in_f: Vec<f32>,
    out_f: Vec<f32>,
}

impl LineSink {
    /// The line number.
    pub fn line(&self) -> u32 {
        self.shared.id
    }

    /// The call's audio rate.
    pub fn rate(&self) -> u32 {
        self.shared.rate
    }
}

impl PcmSink for LineSink {
    fn write_frame(&mut self, frame: &[i16]) {
        if self.shared.removed.load(Ordering::Acquire) {
            return;
        }
        if self.resampler.is_passthrough() {
            lock(&self.shared.to_hub).push_i16(frame);
            return;
        }
        if self.in_f.len() < frame.len() {
            self.in_f.resize(frame.len(), 0.0);
            let need = self.resampler.max_output(frame.len()) + 1;
            self.out_f.resize(need, 0.0);
        }
        for (f, &s) in self.in_f.iter_mut().zip(frame) {
            *f = f32::from(s);
        }
        let n = self
            .resampler
            .process(&self.in_f[..frame.len()], &mut self.out_f);
        lock(&self.shared.to_hub).push(&self.out_f[..n]);
    }
}

impl Drop for LineSink {
    fn drop(&mut self) {
        self.shared.sink_alive.store(false, Ordering::Release);
    }
}
