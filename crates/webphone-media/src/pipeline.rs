//! The per-call media state machine (sans-IO): capture -> encoder -> RTP out, RTP in -> jitter
//! buffer -> decoder (at playout, with codec concealment and Opus FEC) -> playback, RFC 4733
//! DTMF in the codec's RTP clock, statistics, the media timeout and symmetric-RTP latching.
//!
//! The driver calls, every 20 ms, [`MediaPipeline::on_tick`] (send) and
//! [`MediaPipeline::playout`] (play), and [`MediaPipeline::on_packet`] for each datagram that
//! arrives. Time is passed in, so tests run on a virtual clock.
//!
//! ## Symmetric RTP and latching
//! We send from the socket we receive on (symmetric RTP, RFC 4961), so a peer or a media relay
//! behind NAT can answer to the address our packets come from. In the other direction, a peer
//! behind NAT often advertises a private address in its SDP that we cannot reach, while its
//! packets arrive from the NAT's public address. After [`PipelineConfig::latch_after`]
//! consecutive valid RTP packets (known payload type, same SSRC) from one source address that is
//! not the negotiated one, we "latch" and send there instead (the practice described in
//! RFC 7362 §4). Requiring several consecutive packets with one SSRC keeps a single stray or
//! spoofed datagram from hijacking the stream, and while valid RTP keeps arriving from the
//! address we send to (within [`LATCH_QUIET`]) we do not latch at all (RFC 7362 §6 on
//! hijacking). An [`MediaPipeline::update`] with a new remote address starts over.

use std::net::SocketAddr;
use std::time::Instant;

use crate::codec::{CallCodecs, CodecConfig};
use crate::dtmf::{DtmfConfig, DtmfReceiver, DtmfSender};
use crate::jitter::{FrameKind, JitterBuffer, JitterConfig, PlayoutDecoder};
use crate::rtp::{self, Datagram, RtpSender};
use crate::stats::{MediaStats, ReceiveStats};
use crate::{Codec, Negotiated, PcmSink, PcmSource, PTIME_MS};

/// Latching only happens if nothing valid came from the current remote for this long.
pub const LATCH_QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// Pipeline tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Jitter buffer settings.
    pub jitter: JitterConfig,
    /// DTMF timing.
    pub dtmf: DtmfConfig,
    /// Consecutive packets from a new source address before we send there (0 disables
    /// latching).
    pub latch_after: u32,
    /// Encoder settings (Opus bit rate, FEC, DTX, complexity).
    pub codec: CodecConfig,
    /// Raise [`MediaAlarm::NoMedia`] when neither RTP nor RTCP arrived for this long while our
    /// direction receives (the `mediatimeout` parameter, in seconds there). `ZERO` = off
    /// (the default).
    pub media_timeout: std::time::Duration,
    /// Echo cancellation, noise suppression, gain control, voice statistics and the no-voice
    /// alarm (all off by default: audio passes untouched). See [`crate::dsp`].
    pub dsp: crate::dsp::DspConfig,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            jitter: JitterConfig::default(),
            dtmf: DtmfConfig::default(),
            latch_after: 3,
            codec: CodecConfig::default(),
            media_timeout: std::time::Duration::ZERO,
            dsp: crate::dsp::DspConfig::default(),
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Destination.
    pub to: SocketAddr,
    /// The RTP packet.
    pub data: Vec<u8>,
}

/// Something the call should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A DTMF digit started: an RFC 4733 event, or (when no telephone-event is negotiated)
    /// tones detected in the received audio ([`crate::dtmf_inband`]).
    DtmfReceived(char),
    /// We now send to this address (symmetric-RTP latching).
    RemoteLatched(SocketAddr),
}

/// A condition the call owner should act on, reported once per occurrence.
///
/// Kept apart from [`MediaEvent`] so that adding conditions does not break exhaustive matches
/// on it; `#[non_exhaustive]`: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaAlarm {
    /// No RTP and no RTCP arrived for `silent_for` (>= [`PipelineConfig::media_timeout`])
    /// while our direction receives. Reported once; reported again only after media arrived
    /// and then stopped again. The engine ends the call on it (`mediatimeout`).
    NoMedia {
        /// How long nothing has arrived.
        silent_for: std::time::Duration,
    },
    /// No voice activity from the microphone for `silent_for` (>=
    /// [`crate::dsp::DspConfig::no_voice_alarm`]) from the call start, counting time we send.
    /// Reported once per call. The engine shows "Check your microphone! No audio record
    /// detected." (onDisplay) unless `enablenomicvoicewarning` is 0.
    NoVoiceActivity {
        /// How long no voice was detected.
        silent_for: std::time::Duration,
    },
    /// Media encryption negotiated but failed (DTLS-SRTP: certificate not matching the SDP
    /// fingerprint, handshake not answered; RFC 5763 §5). No media flows; the engine ends the
    /// call with `reason`.
    EncryptionFailed {
        /// What went wrong, for the log and the disconnect reason.
        reason: String,
    },
}

/// The per-call media state machine. See the module documentation.
pub struct MediaPipeline {
    neg: Negotiated,
    cfg: PipelineConfig,
    source: Box<dyn PcmSource>,
    sink: Box<dyn PcmSink>,
    sender: RtpSender,
    /// RTP timestamp of the next frame we send.
    rtp_ts: u32,
    sent_first: bool,
    /// Opus DTX left out packets since the last one sent: the next one starts a talkspurt.
    in_dtx: bool,
    /// 20 ms frames already encoded into `enc` for the packet being filled (packets longer
    /// than 20 ms, `Negotiated::ptime_ms`), and that packet's RTP timestamp.
    pending_frames: u32,
    packet_ts: u32,
    dtmf: DtmfSender,
    dtmf_rx: DtmfReceiver,
    jb: JitterBuffer,
    rx: ReceiveStats,
    remote: SocketAddr,
    latch_candidate: Option<(SocketAddr, u32, u32)>,
    last_from_remote: Option<Instant>,
    epoch: Instant,
    stats: MediaStats,
    events: Vec<MediaEvent>,
    pcm: Vec<i16>,
    /// Opus: the PCM of the frames of the packet being filled, coded as one Opus frame of
    /// the whole packet length when it is complete.
    pcm_packet: Vec<i16>,
    enc: Vec<u8>,
    /// Encoder/decoders; the devices run at the audio rate of the first codec.
    codecs: CallCodecs,
    play: Vec<i16>,
    /// RTCP reports (RFC 3550 §6); see the `rtcp` module.
    rtcp: crate::rtcp::RtcpState,
    /// SRTP contexts when media is encrypted (RFC 3711); `srtp_blocked` when encryption was
    /// negotiated but could not be set up (nothing is sent or accepted then).
    srtp: Option<Box<crate::srtp::SrtpSession>>,
    srtp_blocked: bool,
    /// The DTLS-SRTP handshakes when the keys come from DTLS (see `pipeline_dtls.rs`).
    dtls: dtls::DtlsState,
    /// When RTP or RTCP last arrived (or the timer was last restarted).
    last_media: Instant,
    /// The latest time the driver told us (tick or packet).
    last_tick: Instant,
    /// [`MediaAlarm::NoMedia`] was raised for the current silence.
    no_media_raised: bool,
    alarms: Vec<MediaAlarm>,
    /// Capture/playout processing, voice statistics, comfort noise (see [`crate::dsp`]).
    dsp: crate::dsp::DspStage,
    /// In-band DTMF detection on the decoded audio while no telephone-event is negotiated
    /// (see [`crate::dtmf_inband`]); made at the first such playout.
    inband: Option<Box<crate::dtmf_inband::InbandDtmfDetector>>,
    /// DTMF tones put into the audio we send ([`MediaPipeline::send_dtmf_inband`]).
    inband_tx: Option<crate::dtmf_inband::InbandDtmfGenerator>,
    /// The microphone is muted but RTP goes on with silence ([`MediaPipeline::set_mic_muted`]).
    mic_muted: bool,
}

impl std::fmt::Debug for MediaPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPipeline")
            .field("neg", &self.neg)
            .field("remote", &self.remote)
            .field("ssrc", &self.sender.ssrc())
            .finish_non_exhaustive()
    }
}

impl MediaPipeline {
    /// A pipeline with random SSRC, sequence number and timestamp (RFC 3550 §5.1).
    pub fn new(
        neg: Negotiated,
        source: Box<dyn PcmSource>,
        sink: Box<dyn PcmSink>,
        cfg: PipelineConfig,
        now: Instant,
    ) -> MediaPipeline {
        Self::with_sender(
            neg,
            source,
            sink,
            cfg,
            now,
            RtpSender::new(),
            rand::random(),
        )
    }

    /// A pipeline with a given RTP sender state and initial timestamp (tests).
    pub fn with_sender(
        neg: Negotiated,
        source: Box<dyn PcmSource>,
        sink: Box<dyn PcmSink>,
        cfg: PipelineConfig,
        now: Instant,
        sender: RtpSender,
        initial_ts: u32,
    ) -> MediaPipeline {
        let audio_rate = neg.codec.audio_rate();
        let neg_clock = neg.codec.clock_rate();
        let (srtp, srtp_blocked) = crate::srtp::for_negotiated(neg.srtp.as_ref());
        let rtcp = crate::rtcp::RtcpState::new(
            sender.ssrc(),
            crate::rtcp::RtcpState::random_cname(),
            now,
            crate::rtcp::ntp_now(),
            rand::random(),
        );
        let mut p = MediaPipeline {
            rtcp,
            srtp,
            srtp_blocked,
            dtls: dtls::DtlsState::default(),
            remote: neg.remote_rtp,
            neg,
            cfg,
            source,
            sink,
            sender,
            rtp_ts: initial_ts,
            sent_first: false,
            in_dtx: false,
            pending_frames: 0,
            packet_ts: 0,
            dtmf: DtmfSender::new(cfg.dtmf),
            dtmf_rx: DtmfReceiver::new(),
            jb: JitterBuffer::new(cfg.jitter),
            rx: ReceiveStats::with_clock(neg_clock),
            latch_candidate: None,
            last_from_remote: None,
            epoch: now,
            stats: MediaStats::default(),
            events: Vec::new(),
            pcm: Vec::new(),
            pcm_packet: Vec::new(),
            enc: Vec::new(),
            codecs: CallCodecs::new(audio_rate, cfg.codec),
            play: Vec::new(),
            last_media: now,
            last_tick: now,
            no_media_raised: false,
            alarms: Vec::new(),
            dsp: crate::dsp::DspStage::new(audio_rate, PTIME_MS, cfg.dsp),
            inband: None,
            inband_tx: None,
            mic_muted: false,
        };
        p.codecs.set_send_limits(p.neg.send_limits, p.neg.ptime_ms);
        p.start_dtls(now);
        p
    }

    /// Change the media timeout ([`PipelineConfig::media_timeout`]; `ZERO` = off). The silence
    /// is still measured from the last RTP/RTCP that arrived.
    pub fn set_media_timeout(&mut self, timeout: std::time::Duration) {
        self.cfg.media_timeout = timeout;
    }

    /// Mute the microphone while RTP keeps flowing (`sendrtponmuted`: for servers that end
    /// calls without media): every frame sent is silence (encoded zero samples); DTMF,
    /// RFC 4733 and in-band, still goes out. Muting by media direction stops RTP instead.
    pub fn set_mic_muted(&mut self, muted: bool) {
        self.mic_muted = muted;
    }

    /// Alarms since the last call ([`MediaAlarm`]).
    pub fn take_alarms(&mut self) -> Vec<MediaAlarm> {
        std::mem::take(&mut self.alarms)
    }

    fn media_arrived(&mut self, now: Instant) {
        self.last_media = self.last_media.max(now);
        self.no_media_raised = false;
    }

    /// Raise [`MediaAlarm::NoMedia`] once when the media timeout expired.
    fn check_media_timeout(&mut self, now: Instant) {
        let timeout = self.cfg.media_timeout;
        if timeout.is_zero() || self.no_media_raised {
            return;
        }
        if !self.neg.direction.receives() {
            // Nothing is expected while we do not receive (hold); start counting afresh when
            // we receive again.
            self.last_media = now;
            return;
        }
        let silent_for = now.saturating_duration_since(self.last_media);
        if silent_for >= timeout {
            tracing::info!(?silent_for, "no RTP or RTCP received: media timeout");
            self.no_media_raised = true;
            self.alarms.push(MediaAlarm::NoMedia { silent_for });
        }
    }

    /// The negotiation in force.
    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    /// Where we send RTP now (the negotiated address, or the latched one).
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.sender.ssrc()
    }

    /// Apply a new negotiation (re-INVITE, late answer). The RTP stream (SSRC, sequence,
    /// timestamp) continues; a new remote address cancels latching.
    pub fn update(&mut self, neg: Negotiated) {
        if neg.srtp != self.neg.srtp {
            (self.srtp, self.srtp_blocked) = crate::srtp::for_negotiated(neg.srtp.as_ref());
        }
        let new_dtls = neg.dtls != self.neg.dtls;
        if neg.remote_rtp != self.neg.remote_rtp {
            self.remote = neg.remote_rtp;
            self.latch_candidate = None;
            self.last_from_remote = None;
        }
        if !neg.direction.sends() || neg.telephone_event_pt.is_none() {
            self.dtmf.clear();
        }
        if neg.remote_rtp != self.neg.remote_rtp
            || (neg.direction.receives() && !self.neg.direction.receives())
        {
            // A new peer address, or receiving again after hold: give the media its full time.
            self.last_media = self.last_media.max(self.last_tick);
            self.no_media_raised = false;
        }
        self.neg = neg;
        self.pending_frames = 0;
        self.codecs
            .set_send_limits(self.neg.send_limits, self.neg.ptime_ms);
        if new_dtls {
            self.start_dtls(self.last_tick);
        }
    }

    /// Queue DTMF digits for RFC 4733 sending. Returns the number of digits queued: 0 when
    /// telephone-event was not negotiated or we do not send.
    pub fn send_dtmf(&mut self, digits: &str) -> usize {
        if self.neg.telephone_event_pt.is_none() {
            tracing::warn!("telephone-event not negotiated: DTMF {digits:?} not sent");
            return 0;
        }
        if !self.neg.direction.sends() {
            tracing::warn!("media direction does not send: DTMF {digits:?} not sent");
            return 0;
        }
        self.dtmf.queue(digits)
    }

    /// Queue DTMF digits as tones in the audio we send (the in-band `dtmfmode` values, ITU-T
    /// Q.23; needs no telephone-event). Returns how many digits were queued.
    pub fn send_dtmf_inband(&mut self, digits: &str) -> usize {
        if !self.neg.direction.sends() {
            tracing::warn!("media direction does not send: DTMF {digits:?} not sent");
            return 0;
        }
        let rate = self.codecs.device_rate();
        self.inband_tx
            .get_or_insert_with(|| crate::dtmf_inband::InbandDtmfGenerator::new(rate))
            .queue(digits)
    }

    /// Whether DTMF digits are being sent or waiting.
    pub fn dtmf_busy(&self) -> bool {
        self.dtmf.is_busy()
    }

    fn can_send(&self) -> bool {
        self.neg.direction.sends() && !self.remote.ip().is_unspecified() && self.remote.port() != 0
    }

    /// One 20 ms send tick: read a frame from the source; send it (or a DTMF event packet
    /// instead, RFC 4733 §2.5.1) when the direction allows.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Outgoing> {
        let mut out = self.poll_dtls(now);
        out.extend(self.send_tick(now));
        out
    }

    fn send_tick(&mut self, now: Instant) -> Vec<Outgoing> {
        self.last_tick = now;
        self.check_media_timeout(now);
        self.pcm.resize(self.codecs.device_frame(PTIME_MS), 0);
        // Always read, so the source's clock advances even while we do not send.
        self.source.read_frame(&mut self.pcm);
        let sending = self.can_send() && !self.mic_muted;
        if let Some(silent_for) = self.dsp.capture(&mut self.pcm, sending) {
            self.alarms.push(MediaAlarm::NoVoiceActivity { silent_for });
        }
        if self.mic_muted {
            self.pcm.fill(0);
        }
        if let Some(tx) = self.inband_tx.as_mut() {
            tx.fill(&mut self.pcm);
        }
        let ts = self.rtp_ts;
        self.rtp_ts = self
            .rtp_ts
            .wrapping_add(self.neg.codec.timestamp_step(PTIME_MS));
        if !self.can_send() {
            self.pending_frames = 0;
            return Vec::new();
        }
        // RFC 4733 §2.1: event timestamps and durations run on the codec's RTP clock.
        let step = self.neg.codec.timestamp_step(PTIME_MS);
        let data = match (self.neg.telephone_event_pt, self.dtmf.tick_units(ts, step)) {
            (Some(te_pt), Some(ev)) => {
                // The event replaces the audio of its time: a partly filled packet is dropped.
                self.pending_frames = 0;
                if ev.marker {
                    self.stats.dtmf_sent += 1;
                }
                self.sender
                    .packet(te_pt, ev.marker, ev.timestamp, &ev.payload.encode())
            }
            _ => {
                // Packets of several 20 ms frames (`ptime_ms` 40..120): the frames' payloads
                // follow each other (RFC 3551 §4.2; G.711, G.722, GSM, Speex and G.729 frames
                // concatenate), stamped with the first frame's time. Opus codes the whole
                // packet length as one frame instead (40 to 120 ms are Opus frame sizes,
                // RFC 6716 §2.1.4; RFC 7587 §4.2 leaves the packet length to the sender).
                let frames =
                    (self.neg.ptime_ms / PTIME_MS).clamp(1, crate::MAX_PTIME_MS / PTIME_MS);
                let opus = self.neg.codec == Codec::Opus;
                if self.pending_frames == 0 {
                    self.enc.clear();
                    self.pcm_packet.clear();
                    self.packet_ts = ts;
                }
                self.pending_frames += 1;
                let complete = self.pending_frames >= frames;
                // A one-frame Opus packet (20 ms) is coded straight from `pcm` like the rest.
                let whole = !opus || (complete && self.pcm_packet.is_empty());
                let coded = if whole {
                    self.codecs.encode(self.neg.codec, &self.pcm, &mut self.enc)
                } else {
                    self.pcm_packet.extend_from_slice(&self.pcm);
                    if complete {
                        self.codecs
                            .encode(self.neg.codec, &self.pcm_packet, &mut self.enc)
                    } else {
                        Ok(())
                    }
                };
                if let Err(e) = coded {
                    tracing::warn!(codec = ?self.neg.codec, error = %e, "encoding failed");
                    self.pending_frames = 0;
                    return Vec::new();
                }
                if !complete {
                    return Vec::new();
                }
                self.pending_frames = 0;
                let ts = self.packet_ts;
                // Opus DTX (RFC 7587 §3.1.3): during silence the encoder gives 1-2 byte
                // frames that carry nothing and are not sent (it still gives a comfort-noise
                // update every 400 ms, which is).
                if self.neg.codec == Codec::Opus && self.enc.len() <= 2 {
                    self.in_dtx = true;
                    return Vec::new();
                }
                // RFC 3551 §4.1: marker on the first packet of a talkspurt: the very first
                // one, and the first after a DTX pause.
                let marker = !self.sent_first || self.in_dtx;
                self.sent_first = true;
                self.in_dtx = false;
                self.sender
                    .packet(self.neg.payload_type, marker, ts, &self.enc)
            }
        };
        let plain_len = data.len() as u64;
        let Some(data) = self.protect(data, false) else {
            // Not sent (SRTP not keyed yet, e.g. during the DTLS handshake): not counted.
            return Vec::new();
        };
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += plain_len;
        vec![Outgoing {
            to: self.remote,
            data,
        }]
    }

    fn codec_for(&self, pt: u8) -> Option<Codec> {
        if pt == self.neg.payload_type {
            Some(self.neg.codec)
        } else {
            Codec::from_static_payload_type(pt)
        }
    }

    /// A datagram arrived on our socket. Garbage, RTCP and unknown payload types are counted
    /// and ignored.
    pub fn on_packet(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        if crate::demux::classify(data) == crate::demux::PacketKind::Dtls {
            self.on_dtls(data, from, now);
            return;
        }
        if crate::rtcp::is_rtcp(data) {
            self.on_rtcp_packet(data, from, now);
            return;
        }
        let unprotected;
        let data = if self.srtp.is_some() || self.srtp_blocked {
            let Some(plain) = self.unprotect(data, false) else {
                return;
            };
            unprotected = plain;
            unprotected.as_slice()
        } else {
            data
        };
        let pkt = match rtp::parse(data) {
            Ok(Datagram::Rtp(p)) => p,
            Ok(Datagram::Rtcp) => return, // RTCP is not used yet
            Err(e) => {
                self.stats.packets_invalid += 1;
                tracing::trace!(%from, error = %e, "ignoring datagram");
                return;
            }
        };
        let is_event = Some(pkt.payload_type) == self.neg.telephone_event_pt;
        // RFC 3389 comfort noise (static payload type 13 unless the negotiation uses 13).
        let is_cn = !is_event
            && pkt.payload_type == crate::dsp::CN_PAYLOAD_TYPE
            && pkt.payload_type != self.neg.payload_type;
        let codec = if is_event || is_cn {
            None
        } else {
            match self.codec_for(pkt.payload_type) {
                Some(c) => Some(c),
                None => {
                    self.stats.packets_invalid += 1;
                    tracing::trace!(pt = pkt.payload_type, "ignoring unknown payload type");
                    return;
                }
            }
        };
        if is_event && pkt.payload.len() < crate::dtmf::EVENT_PAYLOAD_LEN {
            self.stats.packets_invalid += 1;
            return;
        }
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;
        self.media_arrived(now);
        self.maybe_latch(from, pkt.ssrc, now);

        // RFC 3550 §6.4.1 / §A.8: jitter in the stream's own timestamp units (48 kHz for Opus);
        // events run on the send codec's clock (RFC 4733 §2.1).
        let clock = codec.unwrap_or(self.neg.codec).clock_rate();
        self.rx.set_clock_rate(clock);
        let arrival = self
            .rx
            .arrival_units(now.saturating_duration_since(self.epoch));
        self.rx
            .on_packet(pkt.ssrc, pkt.sequence, pkt.timestamp, arrival, !is_event);

        if !self.neg.direction.receives() {
            return;
        }
        match codec {
            Some(c) => {
                let Some(units) = crate::codec::packet_clock_units(c, &pkt.payload) else {
                    tracing::debug!(codec = ?c, "undecodable payload");
                    return;
                };
                // Decoded at playout, in sequence order (see the jitter module).
                self.jb.push(
                    pkt.sequence,
                    pkt.timestamp,
                    pkt.ssrc,
                    c.clock_rate(),
                    pkt.payload_type,
                    &pkt.payload,
                    units,
                    now,
                );
            }
            None if is_cn => {
                self.dsp.on_cn_packet(&pkt.payload);
                // The CN packet takes a slot in the sequence: silence there, noise at playout.
                self.jb
                    .push_filler(pkt.sequence, pkt.ssrc, self.neg.ptime_ms.max(1), now);
            }
            None => {
                if let Some(d) = self
                    .dtmf_rx
                    .on_packet(pkt.ssrc, pkt.timestamp, &pkt.payload)
                {
                    tracing::debug!(digit = %d, "RFC 4733 DTMF received");
                    self.stats.dtmf_received += 1;
                    self.events.push(MediaEvent::DtmfReceived(d));
                }
                // The event occupies the sender's audio slot: play silence for it.
                self.jb
                    .push_filler(pkt.sequence, pkt.ssrc, self.neg.ptime_ms.max(1), now);
            }
        }
    }

    fn maybe_latch(&mut self, from: SocketAddr, ssrc: u32, now: Instant) {
        if from == self.remote {
            self.latch_candidate = None;
            self.last_from_remote = Some(now);
            return;
        }
        let remote_alive = self
            .last_from_remote
            .is_some_and(|t| now.saturating_duration_since(t) < LATCH_QUIET);
        if self.cfg.latch_after == 0 || remote_alive {
            self.latch_candidate = None;
            return;
        }
        let count = match self.latch_candidate {
            Some((addr, s, n)) if addr == from && s == ssrc => n + 1,
            _ => 1,
        };
        if count >= self.cfg.latch_after {
            tracing::info!(old = %self.remote, new = %from, "symmetric RTP: latching to the source address");
            self.remote = from;
            self.latch_candidate = None;
            self.last_from_remote = Some(now);
            self.events.push(MediaEvent::RemoteLatched(from));
        } else {
            self.latch_candidate = Some((from, ssrc, count));
        }
    }

    /// One 20 ms playout tick: write the next frame (received, concealed or silence) to the
    /// sink.
    pub fn playout(&mut self, now: Instant) {
        let n = self.codecs.device_frame(PTIME_MS);
        self.play.clear();
        self.play.resize(n, 0);
        let mut kind = FrameKind::Silence;
        if self.neg.direction.receives() {
            let mut dec = Decoders {
                codecs: &mut self.codecs,
                neg: &self.neg,
            };
            kind = self.jb.pop(now, &mut self.play, &mut dec);
            if self.neg.telephone_event_pt.is_none() {
                self.detect_inband_dtmf();
            }
        }
        self.dsp
            .playout(&mut self.play, kind, self.neg.direction.receives());
        self.sink.write_frame(&self.play);
    }

    /// Peers without telephone-event send DTMF as tones in the audio: detect them in what we
    /// play and report them like RFC 4733 digits.
    fn detect_inband_dtmf(&mut self) {
        let rate = self.codecs.device_rate();
        let det = self
            .inband
            .get_or_insert_with(|| Box::new(crate::dtmf_inband::InbandDtmfDetector::new(rate)));
        let mut digits = Vec::new();
        det.process(&self.play, &mut digits);
        for d in digits {
            tracing::debug!(digit = %d, "in-band DTMF received");
            self.stats.dtmf_received += 1;
            self.events.push(MediaEvent::DtmfReceived(d));
        }
    }

    /// Voice statistics since the last call ([`crate::dsp::format_vad_notification`] makes the
    /// `VAD` line); both sides `OFF` unless [`crate::dsp::DspConfig::vad`].
    pub fn take_vad_report(&mut self) -> crate::dsp::VadReport {
        self.dsp.take_vad_report()
    }

    /// Echo canceller statistics (ERL, ERLE, delay) when echo/noise/gain processing runs.
    pub fn apm_stats(&self) -> Option<crate::dsp::ApmStats> {
        self.dsp.apm_stats()
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<MediaEvent> {
        std::mem::take(&mut self.events)
    }

    /// Counters so far.
    pub fn stats(&self) -> MediaStats {
        let jb = self.jb.stats();
        MediaStats {
            packets_lost: self.rx.lost(),
            packets_reordered: self.rx.reordered(),
            packets_duplicate: jb.duplicate,
            packets_late: jb.late,
            jitter_ms: self.rx.jitter_ms(),
            frames_played: jb.played,
            frames_concealed: jb.concealed,
            frames_fec_recovered: jb.fec_recovered,
            jitter_target_ms: self.jb.target_ms(),
            remote: Some(self.remote),
            rtt_ms: self
                .rtcp
                .remote()
                .and_then(|r| r.rtt)
                .map(|d| d.as_secs_f64() * 1000.0),
            remote_fraction_lost: self.rtcp.remote().map(|r| r.fraction_lost),
            remote_packets_lost: self.rtcp.remote().map(|r| r.packets_lost),
            remote_jitter_ms: self
                .rtcp
                .remote()
                .map(|r| f64::from(r.jitter) * 1000.0 / f64::from(self.neg.codec.clock_rate())),
            rtcp_sent: self.rtcp.reports_sent(),
            rtcp_received: self.rtcp.reports_received(),
            encrypted: self.srtp.is_some(),
            ..self.stats
        }
    }
}

/// The call's decoders as the jitter buffer sees them: payload type -> codec by the
/// negotiation (or the static assignment), PCM at the device rate.
struct Decoders<'a> {
    codecs: &'a mut CallCodecs,
    neg: &'a Negotiated,
}

impl Decoders<'_> {
    fn codec(&self, pt: u8) -> Option<Codec> {
        if pt == self.neg.payload_type {
            Some(self.neg.codec)
        } else {
            Codec::from_static_payload_type(pt)
        }
    }
}

impl PlayoutDecoder for Decoders<'_> {
    fn output_rate(&self) -> u32 {
        self.codecs.device_rate()
    }

    fn decode(&mut self, pt: u8, payload: &[u8], out: &mut Vec<i16>) -> bool {
        let Some(c) = self.codec(pt) else {
            return false;
        };
        match self.codecs.decode(pt, c, payload, out) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(codec = ?c, error = %e, "undecodable payload");
                false
            }
        }
    }

    fn conceal(&mut self, pt: u8, samples: usize, out: &mut Vec<i16>) -> bool {
        let Some(c) = self.codec(pt) else {
            return false;
        };
        self.codecs
            .conceal(pt, c, samples, out)
            .map_err(|e| tracing::debug!(codec = ?c, error = %e, "concealment failed"))
            .unwrap_or(false)
    }

    fn recover(&mut self, pt: u8, payload: &[u8], samples: usize, out: &mut Vec<i16>) -> bool {
        let Some(c) = self.codec(pt) else {
            return false;
        };
        self.codecs
            .recover(pt, c, payload, samples, out)
            .map_err(|e| tracing::debug!(codec = ?c, error = %e, "FEC recovery failed"))
            .unwrap_or(false)
    }
}

/// RTCP and SRTP hooks (RFC 3550 §6, RFC 3711).
impl MediaPipeline {
    /// Where RTCP goes: the RTP address with rtcp-mux (RFC 5761), else its port + 1
    /// (RFC 3550 §11).
    pub fn rtcp_remote(&self) -> SocketAddr {
        let mut a = self.remote;
        if !self.neg.rtcp_mux {
            a.set_port(a.port().wrapping_add(1));
        }
        a
    }

    /// An RTCP compound packet (SR or RR + SDES, SRTCP-protected when encrypted) if one is
    /// due at `now`. The driver sends it from the RTP socket with rtcp-mux, else from the RTCP
    /// socket.
    pub fn poll_rtcp(&mut self, now: Instant) -> Option<Outgoing> {
        if let Some(out) = self.dtls.rtcp_queue.pop_front() {
            return Some(out); // a DTLS flight of the RTCP component (RFC 5764 §4.1)
        }
        if self.remote.ip().is_unspecified() || self.remote.port() == 0 {
            return None;
        }
        let packets = self.stats.packets_sent;
        let sender = (self.can_send() && packets > 0).then(|| crate::rtcp::SenderInput {
            rtp_time: self.rtp_ts,
            packets: packets as u32,
            // Payload octets: our packets have the 12-byte fixed header only.
            octets: self.stats.bytes_sent.saturating_sub(12 * packets) as u32,
        });
        let data = self.rtcp.poll(now, sender, self.rx.reception_input())?;
        let data = self.protect(data, true)?;
        Some(Outgoing {
            to: self.rtcp_remote(),
            data,
        })
    }

    /// A datagram arrived on the RTCP socket (or an RTCP packet on the muxed RTP socket).
    pub fn on_rtcp_packet(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        if crate::demux::classify(data) == crate::demux::PacketKind::Dtls {
            self.on_dtls_rtcp(data, from, now);
            return;
        }
        let unprotected;
        let data = if self.srtp.is_some() || self.srtp_blocked {
            let Some(plain) = self.unprotect(data, true) else {
                return;
            };
            unprotected = plain;
            unprotected.as_slice()
        } else {
            data
        };
        if crate::rtcp::is_rtcp(data) {
            self.media_arrived(now);
        }
        if !self.rtcp.on_packet(data, now) {
            tracing::trace!(%from, "RTCP without a usable report");
        }
    }

    fn protect(&mut self, data: Vec<u8>, rtcp: bool) -> Option<Vec<u8>> {
        if rtcp && self.dtls.separate_rtcp() {
            return self.dtls.protect_rtcp(data);
        }
        if self.srtp_blocked {
            return None;
        }
        let Some(s) = self.srtp.as_mut() else {
            return Some(data);
        };
        let res = if rtcp {
            s.protect_rtcp(&data)
        } else {
            s.protect_rtp(&data)
        };
        res.map_err(|e| tracing::warn!(error = %e, rtcp, "SRTP protect failed"))
            .ok()
    }

    fn unprotect(&mut self, data: &[u8], rtcp: bool) -> Option<Vec<u8>> {
        if rtcp && self.dtls.separate_rtcp() {
            return self.dtls.unprotect_rtcp(data, &mut self.stats);
        }
        let s = self.srtp.as_mut()?;
        let res = if rtcp {
            s.unprotect_rtcp(data)
        } else {
            s.unprotect_rtp(data)
        };
        match res {
            Ok(p) => Some(p),
            Err(e) => {
                self.stats.srtp_failures += 1;
                if self.stats.srtp_failures % 500 == 1 {
                    tracing::debug!(error = %e, rtcp, count = self.stats.srtp_failures, "SRTP unprotect failed");
                }
                None
            }
        }
    }
}

#[path = "pipeline_dtls.rs"]
mod dtls;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::EventPayload;
    use crate::{Direction, PTIME_MS};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    struct Ramp(i16);
    impl PcmSource for Ramp {
        fn read_frame(&mut self, out: &mut [i16]) {
            for s in out.iter_mut() {
                *s = self.0;
            }
            self.0 = self.0.wrapping_add(100);
        }
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Vec<i16>>>>);
    impl PcmSink for Capture {
        fn write_frame(&mut self, frame: &[i16]) {
            self.0.lock().unwrap().push(frame.to_vec());
        }
    }

    fn neg(remote: &str) -> Negotiated {
        Negotiated {
            remote_rtp: remote.parse().unwrap(),
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: Some(101),
            direction: Direction::SendRecv,
            ptime_ms: PTIME_MS,
            srtp: None,
            dtls: None,
            rtcp_mux: false,
            send_limits: Default::default(),
        }
    }

    fn pipeline(n: Negotiated, sink: Capture) -> (MediaPipeline, Instant) {
        let t0 = Instant::now();
        let p = MediaPipeline::with_sender(
            n,
            Box::new(Ramp(1000)),
            Box::new(sink),
            PipelineConfig::default(),
            t0,
            RtpSender::with_state(0x1111, 65534),
            4_294_967_000,
        );
        (p, t0)
    }

    fn rtp_of(o: &Outgoing) -> rtp::RtpPacket {
        match rtp::parse(&o.data).unwrap() {
            Datagram::Rtp(p) => p,
            Datagram::Rtcp => panic!("rtcp"),
        }
    }

    #[test]
    fn ptime_40_sends_two_frames_per_packet_stamped_with_the_first() {
        let mut n = neg("127.0.0.1:4000");
        n.ptime_ms = 40;
        let (mut p, t0) = pipeline(n, Capture::default());
        let mut pkts = Vec::new();
        for i in 0..6u64 {
            let out = p.on_tick(t0 + Duration::from_millis(20 * i));
            // a packet every other tick
            assert_eq!(out.len(), usize::from(i % 2 == 1), "tick {i}");
            pkts.extend(out.iter().map(rtp_of));
        }
        assert_eq!(pkts.len(), 3);
        assert!(
            pkts.iter().all(|p| p.payload.len() == 320),
            "2 x 160 PCMU bytes"
        );
        assert_eq!(
            pkts.iter().map(|p| p.sequence).collect::<Vec<_>>(),
            vec![65534, 65535, 0]
        );
        assert_eq!(pkts[0].timestamp, 4_294_967_000, "the first frame's time");
        assert_eq!(pkts[1].timestamp, 4_294_967_000u32.wrapping_add(320));
        assert!(pkts[0].marker && !pkts[1].marker);
        // The two frames are the source's two reads, in order (ramp 1000, then 1100).
        let first = crate::codec::g711::ulaw_to_linear(pkts[0].payload[0]);
        let second = crate::codec::g711::ulaw_to_linear(pkts[0].payload[160]);
        assert!(first < second, "{first} then {second}");
    }

    fn opus_neg(ptime_ms: u32, limits: crate::SendLimits) -> Negotiated {
        let mut n = neg("127.0.0.1:4000");
        n.codec = Codec::Opus;
        n.payload_type = 111;
        n.ptime_ms = ptime_ms;
        n.send_limits = limits;
        n
    }

    #[test]
    fn opus_at_ptime_60_sends_one_60ms_frame_per_packet() {
        let (mut p, t0) = pipeline(opus_neg(60, Default::default()), Capture::default());
        let pkts: Vec<rtp::RtpPacket> = (0..6u64)
            .flat_map(|i| p.on_tick(t0 + Duration::from_millis(20 * i)))
            .map(|o| rtp_of(&o))
            .collect();
        assert_eq!(pkts.len(), 2, "a packet every third tick");
        assert_eq!(pkts[1].timestamp.wrapping_sub(pkts[0].timestamp), 2880);
        // One Opus packet of 60 ms (RFC 6716 §3.1: the TOC byte gives the frame length).
        let mut dec = crate::codec::opus::OpusDecoder::new().unwrap();
        for pkt in &pkts {
            let mut pcm = Vec::new();
            crate::codec::AudioDecoder::decode(&mut dec, &pkt.payload, &mut pcm).unwrap();
            assert_eq!(pcm.len(), 2880, "60 ms at 48 kHz");
        }
    }

    /// Loud white noise: Opus spends whatever bit rate it is allowed on it.
    struct Noise(u32);
    impl PcmSource for Noise {
        fn read_frame(&mut self, out: &mut [i16]) {
            for s in out.iter_mut() {
                self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *s = ((self.0 >> 16) as i16) / 2;
            }
        }
    }

    /// Mean Opus payload bytes over one second of noise sent with `limits`.
    fn opus_mean_payload(limits: crate::SendLimits) -> usize {
        let t0 = Instant::now();
        let mut p = MediaPipeline::with_sender(
            opus_neg(20, limits),
            Box::new(Noise(7)),
            Box::new(Capture::default()),
            PipelineConfig::default(),
            t0,
            RtpSender::with_state(0x1111, 1),
            0,
        );
        let sizes: Vec<usize> = (0..50u64)
            .flat_map(|i| p.on_tick(t0 + Duration::from_millis(20 * i)))
            .map(|o| rtp_of(&o).payload.len())
            .collect();
        assert_eq!(sizes.len(), 50);
        sizes.iter().sum::<usize>() / sizes.len()
    }

    #[test]
    fn peer_bandwidth_and_opus_maxaveragebitrate_cap_what_we_send() {
        let free = opus_mean_payload(Default::default());
        // b=AS:24 leaves 8 kbit/s after 50 packets of headers a second: 20 bytes a packet.
        let by_as = opus_mean_payload(crate::SendLimits {
            bandwidth_kbps: Some(24),
            ..Default::default()
        });
        let by_fmtp = opus_mean_payload(crate::SendLimits {
            opus_max_average_bitrate: Some(10_000),
            ..Default::default()
        });
        println!("opus bytes a packet: free {free}, b=AS:24 {by_as}, maxaveragebitrate {by_fmtp}");
        assert!(by_as <= 24, "b=AS:24: {by_as} bytes a packet");
        assert!(
            by_fmtp <= 30,
            "maxaveragebitrate=10000: {by_fmtp} bytes a packet"
        );
        assert!(free >= 2 * by_as, "unlimited {free} vs {by_as}");
    }

    #[test]
    fn ticks_send_20ms_pcmu_packets_with_marker_only_on_the_first() {
        let (mut p, t0) = pipeline(neg("127.0.0.1:4000"), Capture::default());
        let pkts: Vec<rtp::RtpPacket> = (0..4)
            .map(|i| {
                let out = p.on_tick(t0 + Duration::from_millis(20 * i));
                assert_eq!(out.len(), 1);
                assert_eq!(out[0].to, "127.0.0.1:4000".parse::<SocketAddr>().unwrap());
                rtp_of(&out[0])
            })
            .collect();
        assert!(pkts[0].marker && !pkts[1].marker);
        assert_eq!(
            pkts.iter().map(|p| p.sequence).collect::<Vec<_>>(),
            vec![65534, 65535, 0, 1]
        );
        // Timestamp advances 160 per packet and wraps.
        assert_eq!(pkts[1].timestamp, 4_294_967_160);
        assert_eq!(pkts[2].timestamp, 24);
        assert!(pkts
            .iter()
            .all(|p| p.payload.len() == 160 && p.payload_type == 0));
        assert_eq!(pkts[0].payload[0], crate::g711::linear_to_ulaw(1000));
        assert_eq!(p.stats().packets_sent, 4);
        assert_eq!(p.stats().bytes_sent, 4 * 172);
    }

    #[test]
    fn muted_microphone_with_rtp_on_sends_silence_in_sequence() {
        let (mut p, t0) = pipeline(neg("127.0.0.1:4000"), Capture::default());
        let first = rtp_of(&p.on_tick(t0)[0]);
        p.set_mic_muted(true);
        let muted = rtp_of(&p.on_tick(t0 + Duration::from_millis(20))[0]);
        assert_eq!(muted.sequence, first.sequence.wrapping_add(1));
        let zero = crate::g711::linear_to_ulaw(0);
        assert!(
            muted.payload.iter().all(|b| *b == zero),
            "silence while muted"
        );
        p.set_mic_muted(false);
        let back = rtp_of(&p.on_tick(t0 + Duration::from_millis(40))[0]);
        assert!(
            back.payload.iter().any(|b| *b != zero),
            "the microphone again"
        );
        assert_eq!(p.stats().packets_sent, 3);
    }

    #[test]
    fn dtmf_replaces_audio_during_the_event_and_shares_the_sequence() {
        let (mut p, t0) = pipeline(neg("127.0.0.1:4000"), Capture::default());
        p.on_tick(t0);
        assert_eq!(p.send_dtmf("9"), 1);
        let mut kinds = Vec::new();
        for i in 1..12u64 {
            let out = p.on_tick(t0 + Duration::from_millis(20 * i));
            kinds.push(rtp_of(&out[0]));
        }
        let ev: Vec<&rtp::RtpPacket> = kinds.iter().filter(|k| k.payload_type == 101).collect();
        assert_eq!(ev.len(), 7);
        assert!(ev.iter().all(|k| k.timestamp == ev[0].timestamp));
        let first = EventPayload::decode(&ev[0].payload).unwrap();
        assert_eq!((first.event, first.volume), (9, 10));
        assert!(ev[0].marker);
        // Sequence numbers are contiguous across audio and events.
        for w in kinds.windows(2) {
            assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
        }
        // Audio resumes with the timestamp that kept running.
        let after = kinds.iter().find(|k| k.payload_type == 0).unwrap();
        assert_eq!(after.timestamp, ev[0].timestamp.wrapping_add(7 * 160));
        assert_eq!(p.stats().dtmf_sent, 1);
    }

    #[test]
    fn dtmf_without_negotiated_telephone_event_is_refused() {
        let mut n = neg("127.0.0.1:4000");
        n.telephone_event_pt = None;
        let (mut p, _) = pipeline(n, Capture::default());
        assert_eq!(p.send_dtmf("123"), 0);
    }

    #[test]
    fn hold_directions_and_zero_address_do_not_send() {
        for (dir, addr) in [
            (Direction::RecvOnly, "127.0.0.1:4000"),
            (Direction::Inactive, "127.0.0.1:4000"),
            (Direction::SendRecv, "0.0.0.0:4000"),
        ] {
            let mut n = neg(addr);
            n.direction = dir;
            let (mut p, t0) = pipeline(n, Capture::default());
            assert!(p.on_tick(t0).is_empty(), "{dir:?} {addr}");
        }
    }

    #[test]
    fn two_pipelines_exchange_audio_through_the_jitter_buffer() {
        let sink = Capture::default();
        let (mut a, t0) = pipeline(neg("127.0.0.1:4002"), Capture::default());
        let (mut b, _) = pipeline(neg("127.0.0.1:4000"), sink.clone());
        let from_a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        for i in 0..10u64 {
            let now = t0 + Duration::from_millis(20 * i);
            for o in a.on_tick(now) {
                b.on_packet(&o.data, from_a, now);
            }
            b.playout(now);
        }
        let frames = sink.0.lock().unwrap();
        assert_eq!(frames.len(), 10);
        // Prefill of 60 ms: two silent frames, then the ramp 1000, 1100, ... (G.711 rounded).
        assert!(frames[0].iter().all(|&s| s == 0));
        let first_audio = frames.iter().position(|f| f[0] != 0).unwrap();
        assert_eq!(first_audio, 2);
        let v = frames[first_audio][0];
        assert!((v - 1000).abs() < 40, "{v}");
        let s = b.stats();
        assert_eq!(s.packets_received, 10);
        assert_eq!(s.packets_lost, 0);
        assert!(s.jitter_ms < 0.01);
    }

    #[test]
    fn received_dtmf_is_reported_once_and_does_not_count_as_loss() {
        let (mut a, t0) = pipeline(neg("127.0.0.1:4002"), Capture::default());
        let (mut b, _) = pipeline(neg("127.0.0.1:4000"), Capture::default());
        let from_a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        a.send_dtmf("#");
        for i in 0..20u64 {
            let now = t0 + Duration::from_millis(20 * i);
            for o in a.on_tick(now) {
                b.on_packet(&o.data, from_a, now);
            }
            b.playout(now);
        }
        assert_eq!(b.take_events(), vec![MediaEvent::DtmfReceived('#')]);
        assert_eq!(b.stats().packets_lost, 0);
        assert_eq!(b.stats().dtmf_received, 1);
    }

    #[test]
    fn garbage_rtcp_and_unknown_payload_types_are_ignored() {
        let sink = Capture::default();
        let (mut p, t0) = pipeline(neg("127.0.0.1:4000"), sink.clone());
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        p.on_packet(b"hello world, not rtp", from, t0);
        p.on_packet(&[], from, t0);
        let mut sr = vec![0x80, 200, 0, 6];
        sr.extend([0u8; 24]);
        p.on_packet(&sr, from, t0);
        p.on_packet(&rtp::build(96, false, 1, 1, 5, &[0; 100]), from, t0);
        // A telephone-event packet too short to hold an event.
        p.on_packet(&rtp::build(101, false, 1, 1, 5, &[1]), from, t0);
        let s = p.stats();
        assert_eq!(s.packets_received, 0);
        assert_eq!(s.packets_invalid, 4);
        p.playout(t0);
        assert!(sink.0.lock().unwrap()[0].iter().all(|&s| s == 0));
    }

    #[test]
    fn random_datagrams_never_panic_the_pipeline() {
        let sink = Capture::default();
        let (mut p, t0) = pipeline(neg("127.0.0.1:4000"), sink.clone());
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..5000u64 {
            let len = (next() % 300) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(b) = data.first_mut() {
                *b = 0x80 | (*b & 0x3F); // mostly version 2, random P/X/CC
            }
            if let Some(b) = data.get_mut(1) {
                // Mostly payload types we accept, so the deeper paths run.
                *b = [0u8, 8, 101, 0x80, 0xE5][(next() % 5) as usize];
            }
            let now = t0 + Duration::from_millis(i);
            p.on_packet(&data, from, now);
            if i % 20 == 0 {
                p.playout(now);
                let _ = p.on_tick(now);
            }
        }
        let s = p.stats();
        assert!(s.packets_received > 0 && s.packets_invalid > 0);
    }

    #[test]
    fn pcma_is_decoded_even_when_pcmu_was_negotiated() {
        let sink = Capture::default();
        let (mut p, t0) = pipeline(neg("127.0.0.1:4000"), sink.clone());
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let payload = vec![crate::g711::linear_to_alaw(2000); 160];
        for seq in 0..3u16 {
            p.on_packet(
                &rtp::build(8, false, seq, u32::from(seq) * 160, 5, &payload),
                from,
                t0,
            );
        }
        p.playout(t0);
        let v = sink.0.lock().unwrap()[0][0];
        assert!((v - 2000).abs() < 64, "{v}");
    }

    #[test]
    fn nat_source_is_latched_after_three_consecutive_packets() {
        let (mut p, t0) = pipeline(neg("10.0.0.5:4000"), Capture::default());
        let nat: SocketAddr = "127.0.0.1:62000".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:62001".parse().unwrap();
        let pkt = |seq: u16| rtp::build(0, false, seq, u32::from(seq) * 160, 77, &[0xFF; 160]);
        p.on_packet(&pkt(1), nat, t0);
        p.on_packet(&pkt(2), nat, t0);
        p.on_packet(&pkt(3), other, t0); // breaks the run
                                         // (the packet from `other` must not make `nat`'s run count)
        p.on_packet(&pkt(4), nat, t0);
        p.on_packet(&pkt(5), nat, t0);
        assert_eq!(p.remote(), "10.0.0.5:4000".parse::<SocketAddr>().unwrap());
        p.on_packet(&pkt(6), nat, t0);
        assert_eq!(p.remote(), nat);
        assert_eq!(p.take_events(), vec![MediaEvent::RemoteLatched(nat)]);
        assert_eq!(p.on_tick(t0)[0].to, nat);
        // Garbage from elsewhere never latches.
        for _ in 0..10 {
            p.on_packet(b"xxxxxxxxxxxxxxxxxxxx", other, t0);
        }
        assert_eq!(p.remote(), nat);
        // While the latched address is alive, another source cannot take over.
        for seq in 7..20 {
            p.on_packet(&pkt(seq), other, t0);
        }
        assert_eq!(p.remote(), nat);
        // A re-negotiated address wins over the latch.
        p.update(neg("127.0.0.1:5000"));
        assert_eq!(p.remote(), "127.0.0.1:5000".parse::<SocketAddr>().unwrap());
    }

    #[test]
    fn no_latching_while_the_negotiated_address_is_sending() {
        let (mut p, t0) = pipeline(neg("127.0.0.1:4000"), Capture::default());
        let real: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let spoof: SocketAddr = "127.0.0.1:6666".parse().unwrap();
        let pkt = |seq: u16| rtp::build(0, false, seq, u32::from(seq) * 160, 77, &[0xFF; 160]);
        p.on_packet(&pkt(1), real, t0);
        for seq in 2..10 {
            p.on_packet(
                &pkt(seq),
                spoof,
                t0 + Duration::from_millis(20 * u64::from(seq)),
            );
        }
        assert_eq!(p.remote(), real);
        // The real peer went quiet for over a second: now the new source may take over.
        let later = t0 + Duration::from_secs(2);
        for seq in 10..13 {
            p.on_packet(&pkt(seq), spoof, later);
        }
        assert_eq!(p.remote(), spoof);
    }

    #[test]
    fn sendonly_side_plays_silence_but_counts_packets() {
        let sink = Capture::default();
        let mut n = neg("127.0.0.1:4000");
        n.direction = Direction::SendOnly;
        let (mut p, t0) = pipeline(n, sink.clone());
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        for seq in 0..5u16 {
            p.on_packet(
                &rtp::build(0, false, seq, u32::from(seq) * 160, 5, &[0x80; 160]),
                from,
                t0,
            );
        }
        p.playout(t0);
        assert!(sink.0.lock().unwrap()[0].iter().all(|&s| s == 0));
        // The packets are still counted.
        assert_eq!(p.stats().packets_received, 5);
    }

    #[test]
    fn timestamp_jump_keeps_audio_and_jitter_sane() {
        let sink = Capture::default();
        let (mut p, t0) = pipeline(neg("127.0.0.1:4000"), sink.clone());
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        for seq in 0..30u16 {
            let ts = if seq < 15 {
                u32::from(seq) * 160
            } else {
                3_000_000 + u32::from(seq) * 160
            };
            let now = t0 + Duration::from_millis(20 * u64::from(seq));
            p.on_packet(&rtp::build(0, false, seq, ts, 5, &[0x80; 160]), from, now);
            p.playout(now);
        }
        let s = p.stats();
        assert_eq!(s.packets_lost, 0);
        assert_eq!(s.frames_concealed, 0);
        assert!(s.jitter_ms < 0.01, "{}", s.jitter_ms);
        assert_eq!(s.frames_played, 28);
    }
}

#[cfg(test)]
mod dtmf_clock_tests {
    //! RFC 4733 §2.1: event timestamps and durations in the codec's RTP clock.
    use super::*;
    use crate::dtmf::EventPayload;
    use crate::{Direction, SilenceSource};
    use std::time::Duration;

    fn neg(codec: Codec, pt: u8, te: u8) -> Negotiated {
        Negotiated {
            remote_rtp: "127.0.0.1:4000".parse().unwrap(),
            codec,
            payload_type: pt,
            telephone_event_pt: Some(te),
            direction: Direction::SendRecv,
            ptime_ms: PTIME_MS,
            srtp: None,
            dtls: None,
            rtcp_mux: false,
            send_limits: Default::default(),
        }
    }

    /// Send one digit and return all packets of the ticks (parsed).
    fn send_digit(n: Negotiated, digit: &str) -> Vec<rtp::RtpPacket> {
        let t0 = Instant::now();
        let mut p = MediaPipeline::with_sender(
            n,
            Box::new(SilenceSource),
            Box::new(crate::NullSink),
            PipelineConfig::default(),
            t0,
            RtpSender::with_state(0x2222, 100),
            4_294_966_000,
        );
        let mut out = p.on_tick(t0);
        assert_eq!(p.send_dtmf(digit), 1);
        out.extend((1..14u64).flat_map(|i| p.on_tick(t0 + Duration::from_millis(20 * i))));
        out.into_iter()
            .map(|o| match rtp::parse(&o.data).unwrap() {
                Datagram::Rtp(r) => r,
                Datagram::Rtcp => panic!("rtcp"),
            })
            .collect()
    }

    fn check_digit_on(codec: Codec, pt: u8, te: u8, step: u32) {
        let pkts = send_digit(neg(codec, pt, te), "5");
        let events: Vec<&rtp::RtpPacket> = pkts.iter().filter(|p| p.payload_type == te).collect();
        assert_eq!(events.len(), 7, "{codec:?}");
        let start = events[0].timestamp;
        assert!(events.iter().all(|e| e.timestamp == start), "{codec:?}");
        let decoded: Vec<EventPayload> = events
            .iter()
            .map(|e| EventPayload::decode(&e.payload).unwrap())
            .collect();
        assert!(decoded.iter().all(|d| d.event == 5));
        let durations: Vec<u32> = decoded.iter().map(|d| u32::from(d.duration)).collect();
        assert_eq!(
            durations,
            vec![
                step,
                2 * step,
                3 * step,
                4 * step,
                5 * step,
                5 * step,
                5 * step
            ],
            "{codec:?}"
        );
        // 100 ms of tone in the codec clock.
        assert_eq!(
            durations[6],
            codec.clock_rate() / 10,
            "{codec:?} tone length"
        );
        // The audio before the event is one tick earlier, after it 7 ticks later: the event
        // shares the audio timeline.
        let before = pkts.first().unwrap();
        assert_eq!(before.payload_type, pt);
        assert_eq!(start, before.timestamp.wrapping_add(step));
        let after = pkts
            .iter()
            .skip_while(|p| p.payload_type != te)
            .find(|p| p.payload_type == pt)
            .unwrap();
        assert_eq!(after.timestamp, start.wrapping_add(7 * step), "{codec:?}");
    }

    #[test]
    fn dtmf_with_opus_counts_in_48khz_units() {
        check_digit_on(Codec::Opus, 111, 110, 960);
    }

    #[test]
    fn dtmf_with_g722_counts_in_8khz_units() {
        check_digit_on(Codec::G722, 9, 101, 160);
    }

    #[test]
    fn dtmf_with_pcmu_counts_in_8khz_units() {
        check_digit_on(Codec::Pcmu, 0, 101, 160);
    }

    #[test]
    fn opus_dtmf_is_received_by_an_opus_pipeline() {
        let t0 = Instant::now();
        let mk = |remote: &str| {
            let mut n = neg(Codec::Opus, 111, 110);
            n.remote_rtp = remote.parse().unwrap();
            MediaPipeline::new(
                n,
                Box::new(SilenceSource),
                Box::new(crate::NullSink),
                PipelineConfig::default(),
                t0,
            )
        };
        let mut a = mk("127.0.0.1:4002");
        let mut b = mk("127.0.0.1:4000");
        a.send_dtmf("7#");
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        for i in 0..40u64 {
            let now = t0 + Duration::from_millis(20 * i);
            for o in a.on_tick(now) {
                b.on_packet(&o.data, from, now);
            }
            b.playout(now);
        }
        assert_eq!(
            b.take_events(),
            vec![MediaEvent::DtmfReceived('7'), MediaEvent::DtmfReceived('#')]
        );
        assert_eq!(b.stats().packets_lost, 0);
    }

    #[test]
    fn long_tone_at_48khz_is_capped_to_a_16_bit_duration() {
        let mut s = crate::dtmf::DtmfSender::new(crate::dtmf::DtmfConfig {
            tone_ms: 5000,
            ..Default::default()
        });
        s.queue("1");
        let mut max = 0u16;
        for i in 0..300u32 {
            if let Some(p) = s.tick_units(i * 960, 960) {
                assert!(p.payload.duration >= max || p.payload.end);
                max = max.max(p.payload.duration);
            }
        }
        // 68 ticks of 960 = 65280 fits in 16 bits; no wrap to a small value.
        assert_eq!(max, 65_280);
    }
}

#[cfg(test)]
mod rtcp_clock_tests {
    use super::*;
    use crate::{Direction, SilenceSource};
    use std::time::Duration;

    fn opus_pipeline(remote: &str, t0: Instant) -> MediaPipeline {
        MediaPipeline::new(
            Negotiated {
                remote_rtp: remote.parse().unwrap(),
                codec: Codec::Opus,
                payload_type: 111,
                telephone_event_pt: Some(110),
                direction: Direction::SendRecv,
                ptime_ms: PTIME_MS,
                srtp: None,
                dtls: None,
                rtcp_mux: true,
                send_limits: Default::default(),
            },
            Box::new(SilenceSource),
            Box::new(crate::NullSink),
            PipelineConfig::default(),
            t0,
        )
    }

    #[test]
    fn opus_jitter_is_reported_in_48khz_units_and_read_back_in_ms() {
        // RFC 3550 §6.4.1: the report block's jitter is in the stream's timestamp units. B
        // receives A's Opus stream with every other packet 10 ms late, so it measures ~10 ms
        // (~480 units at 48 kHz) and reports that; A reads the report back as ~10 ms.
        let t0 = Instant::now();
        let mut a = opus_pipeline("127.0.0.1:4002", t0);
        let mut b = opus_pipeline("127.0.0.1:4000", t0);
        let from_a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let from_b: SocketAddr = "127.0.0.1:4002".parse().unwrap();
        for i in 0..600u64 {
            let now = t0 + Duration::from_millis(20 * i);
            let late = Duration::from_millis(if i % 2 == 1 { 10 } else { 0 });
            for o in a.on_tick(now) {
                b.on_packet(&o.data, from_a, now + late);
            }
            b.playout(now);
            let _ = b.on_tick(now);
            if let Some(r) = b.poll_rtcp(now) {
                a.on_packet(&r.data, from_b, now);
            }
        }
        let units = b.rx.reception_input().unwrap().jitter;
        assert!(
            (units - 480.0).abs() < 10.0,
            "B's jitter in 48 kHz units: {units}"
        );
        let sb = b.stats();
        assert!((sb.jitter_ms - 10.0).abs() < 0.3, "{}", sb.jitter_ms);
        let sa = a.stats();
        assert!(sa.rtcp_received >= 1);
        let remote = sa.remote_jitter_ms.unwrap();
        assert!(
            (remote - 10.0).abs() < 0.3,
            "A reads B's report: {remote} ms"
        );
    }
}

#[cfg(test)]
mod media_timeout_tests {
    use super::*;
    use crate::{Direction, SilenceSource};
    use std::time::Duration;

    const FROM: &str = "127.0.0.1:4000";

    fn pipeline(timeout_s: u64, direction: Direction, t0: Instant) -> MediaPipeline {
        MediaPipeline::new(
            Negotiated {
                remote_rtp: FROM.parse().unwrap(),
                codec: Codec::Pcmu,
                payload_type: 0,
                telephone_event_pt: Some(101),
                direction,
                ptime_ms: PTIME_MS,
                srtp: None,
                dtls: None,
                rtcp_mux: false,
                send_limits: Default::default(),
            },
            Box::new(SilenceSource),
            Box::new(crate::NullSink),
            PipelineConfig {
                media_timeout: Duration::from_secs(timeout_s),
                ..PipelineConfig::default()
            },
            t0,
        )
    }

    /// Drive ticks from `from_ms` to `to_ms` (virtual time), collecting alarms with their time.
    fn run(p: &mut MediaPipeline, t0: Instant, from_ms: u64, to_ms: u64) -> Vec<(u64, MediaAlarm)> {
        let mut out = Vec::new();
        for ms in (from_ms..to_ms).step_by(20) {
            let now = t0 + Duration::from_millis(ms);
            let _ = p.on_tick(now);
            p.playout(now);
            out.extend(p.take_alarms().into_iter().map(|a| (ms, a)));
        }
        out
    }

    fn rtp(seq: u16) -> Vec<u8> {
        rtp::build(0, false, seq, u32::from(seq) * 160, 9, &[0xFF; 160])
    }

    #[test]
    fn silence_after_media_raises_no_media_once_at_the_timeout() {
        let t0 = Instant::now();
        let mut p = pipeline(3, Direction::SendRecv, t0);
        let from: SocketAddr = FROM.parse().unwrap();
        // 1 s of media, then nothing.
        for seq in 0..50u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(seq));
            p.on_packet(&rtp(seq), from, now);
            let _ = p.on_tick(now);
        }
        assert!(p.take_alarms().is_empty());
        let alarms = run(&mut p, t0, 1000, 10_000);
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        let (at, MediaAlarm::NoMedia { silent_for }) = &alarms[0] else {
            panic!("{alarms:?}");
        };
        // Last packet at 980 ms; 3 s later.
        assert_eq!(*at, 3980);
        assert_eq!(*silent_for, Duration::from_secs(3));
    }

    #[test]
    fn rtcp_alone_keeps_the_call_alive_and_media_rearms_the_alarm() {
        let t0 = Instant::now();
        let mut p = pipeline(2, Direction::SendRecv, t0);
        let from: SocketAddr = FROM.parse().unwrap();
        // An RTCP receiver report every second (peer on hold keeps RTCP going).
        let mut rr = vec![0x80, 201, 0, 1];
        rr.extend(0x1234_5678u32.to_be_bytes());
        for s in 0..10u64 {
            p.on_rtcp_packet(&rr, from, t0 + Duration::from_secs(s));
            assert!(run(&mut p, t0, s * 1000, (s + 1) * 1000).is_empty());
        }
        // RTCP stops: alarm 2 s after the last one (9 s).
        let alarms = run(&mut p, t0, 10_000, 12_000);
        assert_eq!(alarms.len(), 1);
        assert_eq!(alarms[0].0, 11_000);
        // Media comes back, then stops again: a second alarm.
        p.on_packet(&rtp(1), from, t0 + Duration::from_millis(12_000));
        let again = run(&mut p, t0, 12_000, 16_000);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0, 14_000);
    }

    #[test]
    fn nothing_ever_received_times_out_from_the_start() {
        let t0 = Instant::now();
        let mut p = pipeline(5, Direction::SendRecv, t0);
        let alarms = run(&mut p, t0, 0, 8000);
        assert_eq!(alarms.len(), 1);
        assert_eq!(alarms[0].0, 5000);
    }

    #[test]
    fn zero_timeout_and_hold_without_receiving_never_alarm() {
        let t0 = Instant::now();
        let mut off = pipeline(0, Direction::SendRecv, t0);
        assert!(run(&mut off, t0, 0, 20_000).is_empty());
        // We put the peer on hold (sendonly): nothing is expected.
        let mut held = pipeline(2, Direction::SendOnly, t0);
        assert!(run(&mut held, t0, 0, 10_000).is_empty());
        // Resumed: the full timeout counts from the resumption.
        let mut n = held.negotiated().clone();
        n.direction = Direction::SendRecv;
        held.update(n);
        let alarms = run(&mut held, t0, 10_000, 14_000);
        assert_eq!(alarms.len(), 1);
        // Resumed after the last tick of the hold (9 980 ms).
        assert_eq!(alarms[0].0, 11_980);
    }

    #[test]
    fn timeout_can_be_changed_during_the_call() {
        let t0 = Instant::now();
        let mut p = pipeline(0, Direction::SendRecv, t0);
        assert!(run(&mut p, t0, 0, 3000).is_empty());
        p.set_media_timeout(Duration::from_secs(2));
        // Already silent for 3 s: raised at the next tick.
        let alarms = run(&mut p, t0, 3000, 4000);
        assert_eq!(alarms.len(), 1);
        assert_eq!(alarms[0].0, 3000);
    }
}
