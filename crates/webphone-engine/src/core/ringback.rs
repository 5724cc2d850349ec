//! Local ringback of an outgoing call (the decisions are in [`super::early`]).
//!
//! The tone is mixed into the call's own playback device, at the ringback level
//! (`volumering` / `setvolume(2, ...)`), with the country plan's cadence. Before the call has
//! media a small task feeds the device; when media starts (early media or the answer) the
//! media session takes over the very same device, so a `file:` playback device is never
//! reopened (which would truncate it), and the tone goes on over the received audio until the
//! first RTP packet arrives (unless `changesptoring=5` / `nostopring=1`) or the call is answered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::warn;

use webphone_audio::AudioOutput;
use webphone_media::local::resample::Resampler;
use webphone_media::local::tones::{ToneGenerator, ToneKind, TonePlan};
use webphone_media::{MediaStats, PcmSink, PcmSource};

use tracing::debug;
use webphone_media::{sdp, Direction as MediaDirection};

use super::early::{self, EarlyMedia, EarlyParams};
use super::routing::Volume;
use super::{CallPhase, Core, Direction};
use crate::notify::Severity;

/// State shared between the engine and the sink that plays the tone.
#[derive(Debug, Default)]
struct Shared {
    /// The tone plays while set.
    on: AtomicBool,
    /// Stop the tone at the first received RTP packet.
    stop_on_rtp: AtomicBool,
    /// Early RTP has arrived on this call.
    rtp_seen: AtomicBool,
    /// The media session's counters, once it runs.
    stats: Mutex<Option<Arc<Mutex<MediaStats>>>>,
}

impl Shared {
    fn check_rtp(&self) {
        if self.rtp_seen.load(Ordering::Relaxed) {
            return;
        }
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let Some(stats) = stats.as_ref() else { return };
        let received = stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .packets_received;
        if received > 0 {
            self.rtp_seen.store(true, Ordering::Relaxed);
            if self.stop_on_rtp.load(Ordering::Relaxed) {
                self.on.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// The call's playback end while ringback may play: adds the tone to what the call plays.
pub(crate) struct RingbackSink {
    inner: Box<dyn PcmSink>,
    tone: ToneGenerator,
    shared: Arc<Shared>,
    volume: Arc<Volume>,
    buf: Vec<i16>,
    /// The device rate.
    rate: u32,
}

impl PcmSink for RingbackSink {
    fn write_frame(&mut self, frame: &[i16]) {
        self.shared.check_rtp();
        if !self.shared.on.load(Ordering::Relaxed) {
            self.inner.write_frame(frame);
            return;
        }
        self.buf.clear();
        self.buf.resize(frame.len(), 0);
        self.tone.read_frame(&mut self.buf);
        self.volume.scale(&mut self.buf);
        for (b, s) in self.buf.iter_mut().zip(frame) {
            *b = b.saturating_add(*s);
        }
        self.inner.write_frame(&self.buf);
    }
}

/// Converts the call's frames to the rate the playback device was opened at.
struct ResampleSink {
    inner: Box<dyn PcmSink>,
    rs: Resampler,
    fin: Vec<f32>,
    fout: Vec<f32>,
    out: Vec<i16>,
}

impl PcmSink for ResampleSink {
    fn write_frame(&mut self, frame: &[i16]) {
        self.fin.clear();
        self.fin
            .extend(frame.iter().map(|&s| f32::from(s) / 32768.0));
        self.fout.resize(self.rs.max_output(frame.len()), 0.0);
        let n = self.rs.process(&self.fin, &mut self.fout);
        self.out.clear();
        self.out.extend(
            self.fout[..n]
                .iter()
                .map(|&x| (x * 32768.0).clamp(-32768.0, 32767.0) as i16),
        );
        self.inner.write_frame(&self.out);
    }
}

/// Wraps the ringback sink so it takes frames at `rate` (the call's codec rate).
pub(crate) fn fit_rate(sink: RingbackSink, rate: u32) -> Box<dyn PcmSink> {
    if sink.rate == rate {
        return Box::new(sink);
    }
    match Resampler::new(rate, sink.rate) {
        Ok(rs) => Box::new(ResampleSink {
            inner: Box::new(sink),
            rs,
            fin: Vec::new(),
            fout: Vec::new(),
            out: Vec::new(),
        }),
        Err(e) => {
            warn!(
                "ringback device rate {} cannot take {rate} Hz: {e}",
                sink.rate
            );
            Box::new(sink)
        }
    }
}

/// Wraps an audio device as a sink.
struct Device(Box<dyn AudioOutput>);
impl PcmSink for Device {
    fn write_frame(&mut self, frame: &[i16]) {
        self.0.write_frame(frame)
    }
}

/// Silence: what the tone is mixed over before the call has media.
struct Quiet;
impl PcmSource for Quiet {
    fn read_frame(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
}

/// One outgoing call's local ringback.
pub(crate) struct Ringback {
    shared: Arc<Shared>,
    /// Before media: the task feeding the device; it gives the sink back when stopped.
    pre: Option<(oneshot::Sender<()>, JoinHandle<RingbackSink>)>,
}

impl Ringback {
    /// Starts the tone on `output` (opened at `rate`), before the call has media.
    pub(crate) fn start(
        output: Box<dyn AudioOutput>,
        rate: u32,
        plan: TonePlan,
        volume: Arc<Volume>,
        stop_on_rtp: bool,
    ) -> Ringback {
        let shared = Arc::new(Shared::default());
        shared.on.store(true, Ordering::Relaxed);
        shared.stop_on_rtp.store(stop_on_rtp, Ordering::Relaxed);
        let mut sink = RingbackSink {
            inner: Box::new(Device(output)),
            tone: ToneGenerator::standard(plan, ToneKind::Ringback, rate),
            shared: shared.clone(),
            volume,
            buf: Vec::new(),
            rate,
        };
        let (tx, mut rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut quiet = vec![0i16; (rate / 50) as usize];
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            loop {
                tokio::select! {
                    // Stopped, or the call is gone (sender dropped).
                    _ = &mut rx => break,
                    _ = tick.tick() => {
                        Quiet.read_frame(&mut quiet);
                        sink.write_frame(&quiet);
                    }
                }
            }
            sink
        });
        Ringback {
            shared,
            pre: Some((tx, task)),
        }
    }

    /// Plays (again) or silences the tone.
    pub(crate) fn set_playing(&self, on: bool) {
        self.shared.on.store(on, Ordering::Relaxed);
    }

    /// Whether early RTP has arrived.
    pub(crate) fn rtp_seen(&self) -> bool {
        self.shared.check_rtp();
        self.shared.rtp_seen.load(Ordering::Relaxed)
    }

    /// The media session's counters: the tone stops at its first received packet.
    pub(crate) fn attach_stats(&self, stats: Arc<Mutex<MediaStats>>) {
        *self.shared.stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
    }

    /// Stops feeding the device and hands its sink (device and tone) over to the media session;
    /// `None` once handed over.
    pub(crate) async fn take_sink(&mut self) -> Option<RingbackSink> {
        let (tx, task) = self.pre.take()?;
        let _ = tx.send(());
        match task.await {
            Ok(sink) => Some(sink),
            Err(e) => {
                warn!("ringback task failed: {e}");
                None
            }
        }
    }
}

impl Core {
    /// The early-media parameters in force.
    fn early_params(&self) -> EarlyParams {
        EarlyParams {
            earlymedia: self.params.get_i64("earlymedia").unwrap_or(2),
            changesptoring: self.params.get_i64("changesptoring").unwrap_or(2),
            nostopring: self.params.get_i64("nostopring").unwrap_or(0) == 1,
        }
    }

    /// A provisional response to our INVITE: status, local ringback and early media as
    /// [`early::on_provisional`] decides.
    pub(super) async fn on_provisional(&mut self, n: usize, code: u16, sdp: Option<String>) {
        let p = self.early_params();
        let Some(l) = self.lines.get_mut(n) else {
            return;
        };
        if l.direction != Direction::Outgoing || l.phase == CallPhase::Connected {
            return;
        }
        let rtp_seen = l.ringback.as_ref().is_some_and(Ringback::rtp_seen);
        let act = early::on_provisional(code, sdp.is_some(), p, rtp_seen);
        if sdp.is_some() {
            // Kept for a 200 OK without SDP (RFC 3261 §13.2.1: the answer may come early).
            l.early_answer = sdp.clone();
        }
        if act.ringing && l.phase == CallPhase::Setup {
            l.phase = CallPhase::Ringing;
            self.emit_line(n, "Ringing");
            self.emit_general();
            self.call_state(n, "callRinging");
        }
        if act.ringback {
            self.start_ringback(n, p).await;
        }
        if let (Some(answer), true) = (sdp, act.early != EarlyMedia::Off) {
            self.start_early_media(n, &answer, act.early).await;
        }
    }

    /// Plays local ringback on line `n` (again, if it was silenced).
    async fn start_ringback(&mut self, n: usize, p: EarlyParams) {
        if let Some(r) = self.lines.get(n).and_then(|l| l.ringback.as_ref()) {
            r.set_playing(true);
            return;
        }
        let busy = self.lines.iter().any(|(m, l)| m != n && l.port.is_some());
        if busy {
            self.mixer_ringback(n).await;
            return;
        }
        if self.lines.get(n).is_some_and(|l| l.media.is_some()) {
            // This call's early media has the playback device already (changesptoring 3/4
            // opened it without ringback): no second stream is opened on it.
            debug!(line = n, "no local ringback: early media plays already");
            return;
        }
        // The device is opened at the rate the call most likely uses (our first codec), so
        // that the media session usually takes it over without converting.
        let rate = self
            .lines
            .get(n)
            .and_then(|l| l.offer.as_ref())
            .and_then(|o| o.codecs.first())
            .map_or(8000, |c| c.audio_rate());
        let output = self.open_output_device(rate).await;
        let volume = self.ring_volume.clone();
        if let Some(l) = self.lines.get_mut(n) {
            l.ringback = Some(Ringback::start(
                output,
                rate,
                TonePlan::default(),
                volume,
                p.ringback_stops_on_rtp(),
            ));
        }
    }

    /// Another call has media: the mixer owns the playback device, the ringback is one of its
    /// speaker sounds (until the answer; this call's early media is not audible in the mix
    /// before it is answered, see `update_audible`, so the tone does not stop for it).
    async fn mixer_ringback(&mut self, n: usize) {
        if self.lines.get(n).is_none_or(|l| l.ringback_sound.is_some()) {
            return;
        }
        let Some(handle) = self.ensure_hub().await else {
            return;
        };
        let tone = ToneGenerator::standard(TonePlan::default(), ToneKind::Ringback, handle.rate())
            .with_gain_db(percent_to_db(self.ring_volume.get()));
        let id = handle.play_sound(Box::new(tone));
        if let Some(l) = self.lines.get_mut(n) {
            l.ringback_sound = Some(id);
        }
    }

    /// Early media (RFC 3960) from a provisional answer SDP; receive-only unless `earlymedia`
    /// lets the microphone through before the answer.
    async fn start_early_media(&mut self, n: usize, answer: &str, mode: EarlyMedia) {
        let fallback = self.media_prefs();
        let Some(l) = self.lines.get_mut(n) else {
            return;
        };
        let prefs = l.offer.clone().unwrap_or(fallback);
        if let Some(rtp) = l.rtp.as_mut() {
            rtp.apply_remote_ice(answer, true);
        }
        match sdp::apply_answer(answer, &prefs) {
            Ok(mut neg) => {
                if mode == EarlyMedia::Receive {
                    neg.direction = match neg.direction {
                        MediaDirection::SendRecv | MediaDirection::RecvOnly => {
                            MediaDirection::RecvOnly
                        }
                        _ => MediaDirection::Inactive,
                    };
                }
                self.log(
                    Severity::Event,
                    &format!("line {n}: early media ({mode:?})"),
                );
                self.start_media(n, neg).await;
            }
            Err(e) => self.log(
                Severity::Warning,
                &format!("early media not opened, unusable SDP: {e}"),
            ),
        }
    }
}

/// The gain of a volume percentage (50 = 0 dB, 100 = +6 dB, 0 = muted), as [`Volume`]
/// applies it.
fn percent_to_db(percent: u32) -> f32 {
    if percent == 0 {
        -200.0
    } else {
        20.0 * (percent as f32 / 50.0).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webphone_media::local::tones::goertzel_amplitude;

    struct Collect(Arc<Mutex<Vec<i16>>>);
    impl PcmSink for Collect {
        fn write_frame(&mut self, frame: &[i16]) {
            self.0.lock().unwrap().extend_from_slice(frame);
        }
    }

    fn sink(rate: u32, stop_on_rtp: bool) -> (RingbackSink, Arc<Mutex<Vec<i16>>>) {
        let out = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared::default());
        shared.on.store(true, Ordering::Relaxed);
        shared.stop_on_rtp.store(stop_on_rtp, Ordering::Relaxed);
        let s = RingbackSink {
            inner: Box::new(Collect(out.clone())),
            tone: ToneGenerator::standard(TonePlan::Europe, ToneKind::Ringback, rate),
            shared,
            volume: Volume::new(50),
            buf: Vec::new(),
            rate,
        };
        (s, out)
    }

    #[test]
    fn ringback_sink_adds_the_tone_until_the_first_rtp_packet() {
        let (mut s, out) = sink(8000, true);
        let stats = Arc::new(Mutex::new(MediaStats::default()));
        s.shared.stats.lock().unwrap().replace(stats.clone());
        let silence = [0i16; 160];
        for _ in 0..10 {
            s.write_frame(&silence);
        }
        let tone = out.lock().unwrap().clone();
        assert!(goertzel_amplitude(&tone, 425.0, 8000) > 1000.0);
        stats.lock().unwrap().packets_received = 1;
        out.lock().unwrap().clear();
        let voice: Vec<i16> = (0..160).map(|i| ((i % 8) * 100) as i16).collect();
        s.write_frame(&voice);
        assert_eq!(
            *out.lock().unwrap(),
            voice,
            "the call's audio passes unchanged"
        );
        assert!(s.shared.rtp_seen.load(Ordering::Relaxed));
    }

    #[test]
    fn ringback_sink_keeps_the_tone_over_early_media_when_asked() {
        let (mut s, out) = sink(8000, false);
        let stats = Arc::new(Mutex::new(MediaStats {
            packets_received: 5,
            ..MediaStats::default()
        }));
        s.shared.stats.lock().unwrap().replace(stats);
        for _ in 0..10 {
            s.write_frame(&[0i16; 160]);
        }
        let got = out.lock().unwrap().clone();
        assert!(goertzel_amplitude(&got, 425.0, 8000) > 1000.0);
    }

    #[test]
    fn ringback_level_follows_the_volume_percentage() {
        assert_eq!(percent_to_db(50), 0.0);
        assert!((percent_to_db(100) - 6.02).abs() < 0.01);
        assert!(percent_to_db(0) < -100.0);
    }

    #[test]
    fn fit_rate_resamples_call_frames_to_the_device_rate() {
        let (s, out) = sink(48_000, true);
        s.shared.on.store(false, Ordering::Relaxed);
        let mut k = fit_rate(s, 8000);
        for _ in 0..5 {
            k.write_frame(&[0i16; 160]);
        }
        assert_eq!(out.lock().unwrap().len(), 5 * 960);
    }
}
