//! webphone-media: SDP offer/answer, RTP, G.711, jitter buffer and RFC 4733 DTMF for one audio
//! stream per call.
//!
//! Layers, bottom up (everything except [`session`] is sans-IO and deterministic):
//! - [`codec`]: per-call encoders/decoders (G.711 [`g711`], G.722, Opus; GSM, Speex and G.729
//!   through their C libraries) and the codec preference rules of the
//!   `codec`/`prefcodec`/`use_<codec>` parameters.
//! - [`sdp`]: RFC 4566 parsing and RFC 3264 offer/answer for one audio stream.
//! - [`rtp`]: RFC 3550 packetisation of 20 ms frames and parsing of received packets.
//! - [`jitter`]: an adaptive jitter buffer that decodes at playout (codec concealment, Opus FEC).
//! - [`dtmf`]: RFC 4733 telephone-event generation and parsing; [`dtmf_inband`]: DTMF tones
//!   detected in the received audio when the peer sends no telephone-event.
//! - [`stats`]: RFC 3550 receive statistics (loss, interarrival jitter).
//! - [`pipeline`]: the per-call state machine tying the above together (`on_tick`, `on_packet`,
//!   `playout`).
//! - [`session`]: the thin tokio driver ([`RtpSocket`], [`MediaSession`]).
//!
//! The crate knows nothing about audio devices: the engine adapts them to [`PcmSource`] and
//! [`PcmSink`].

pub mod codec;
pub mod demux;
pub mod dsp;
pub mod dtls_srtp;
pub mod dtmf;
pub mod dtmf_inband;
pub mod ice;
pub mod jitter;
pub mod local;
pub mod pipeline;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sdp_crypto;
pub mod session;
pub mod srtp;
pub mod stats;

use std::net::SocketAddr;

pub use codec::g711;
pub use codec::{codec_prefs_from_params, CodecConfig, CodecPrefs, OpusConfig};

pub use pipeline::{MediaAlarm, MediaEvent, MediaPipeline, Outgoing, PipelineConfig};
pub use sdp::SdpError;
pub use sdp_crypto::{CryptoSuite, SdesKeys, SrtpParams, SrtpPolicy};
pub use session::{MediaNotice, MediaSession, NoticeSink, RtpSocket};
pub use stats::MediaStats;

/// RTP clock of G.711 and of telephone-event as we use it (RFC 3551 §4.5.14, RFC 4733 §7.1.1).
pub const SAMPLE_RATE: u32 = 8000;
/// Packetisation interval in milliseconds (RFC 3551 §4.5: default 20 ms for G.711).
pub const PTIME_MS: u32 = 20;
/// Longest packet we send (six 20 ms frames; RFC 7587 §4.2 and common gateways stop at 120).
pub const MAX_PTIME_MS: u32 = 120;
/// Samples in one 20 ms frame at 8 kHz (G.711). Other codecs: [`Codec::frame_samples`].
pub const FRAME_SAMPLES: usize = 160;

/// An audio codec we can send and receive.
///
/// Payload types: PCMU = 0, PCMA = 8, G722 = 9 are static (RFC 3551 §6, table 4); Opus is
/// dynamic (RFC 7587 §7; we offer [`OPUS_DEFAULT_PT`] and use whatever the peer's SDP says).
/// Encoding and decoding need per-call state: [`codec::new_encoder`] / [`codec::new_decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0, 8 kHz.
    Pcmu,
    /// G.711 A-law, static payload type 8, 8 kHz.
    Pcma,
    /// G.722 sub-band ADPCM at 64 kbit/s, static payload type 9; 16 kHz audio, 8000 Hz RTP clock
    /// (RFC 3551 §4.5.2).
    G722,
    /// Opus (RFC 6716, RTP: RFC 7587), dynamic payload type; 48 kHz audio and RTP clock, mono.
    Opus,
    /// GSM 06.10 full rate (libgsm), static payload type 3, 8 kHz, 33 octets per 20 ms
    /// (RFC 3551 §4.5.8).
    Gsm,
    /// Speex narrowband (libspeex, RFC 5574), dynamic payload type, `speex/8000`.
    Speex,
    /// Speex wideband, dynamic payload type, `speex/16000` (RFC 5574 §6).
    SpeexWb,
    /// Speex ultra-wideband, dynamic payload type, `speex/32000` (RFC 5574 §6).
    SpeexUwb,
    /// G.729 / G.729A (libbcg729), static payload type 18, 8 kHz, 10 octets per 10 ms
    /// (RFC 3551 §4.5.6); we send without Annex B (`annexb=no`, RFC 4856 §2.1.9).
    G729,
}

/// The dynamic payload type we offer for Opus (RFC 3551 §3: 96-127 are dynamic).
pub const OPUS_DEFAULT_PT: u8 = 111;
/// The dynamic payload types we offer for Speex narrow-, wide- and ultra-wideband.
pub const SPEEX_DEFAULT_PTS: [u8; 3] = [97, 98, 99];

impl Codec {
    /// The static RTP payload type (RFC 3551 table 4); `None` for Opus (dynamic).
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Gsm => Some(3),
            Codec::G729 => Some(18),
            Codec::Opus | Codec::Speex | Codec::SpeexWb | Codec::SpeexUwb => None,
        }
    }

    /// The payload type we use in our offers: the static one, else our dynamic choice.
    pub fn default_payload_type(self) -> u8 {
        match self {
            Codec::Speex => SPEEX_DEFAULT_PTS[0],
            Codec::SpeexWb => SPEEX_DEFAULT_PTS[1],
            Codec::SpeexUwb => SPEEX_DEFAULT_PTS[2],
            _ => self.static_payload_type().unwrap_or(OPUS_DEFAULT_PT),
        }
    }

    /// The encoding name as written in `a=rtpmap` (RFC 3551 §4.5, RFC 7587 §7).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
            Codec::Gsm => "GSM",
            Codec::Speex | Codec::SpeexWb | Codec::SpeexUwb => "speex",
            Codec::G729 => "G729",
        }
    }

    /// The `a=rtpmap` value, e.g. `PCMU/8000` or `opus/48000/2` (RFC 7587 §7: always two
    /// channels in the rtpmap, whatever is sent).
    pub fn rtpmap(self) -> String {
        match self {
            Codec::Opus => format!("opus/{}/2", self.clock_rate()),
            _ => format!("{}/{}", self.encoding_name(), self.clock_rate()),
        }
    }

    /// RTP clock rate in Hz (the timestamp unit). G.722 uses 8000 although it samples at
    /// 16 kHz (RFC 3551 §4.5.2).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma | Codec::G722 => SAMPLE_RATE,
            Codec::Opus => codec::opus::OPUS_RATE,
            _ => self.audio_rate(),
        }
    }

    /// The lowest payload bit rate we send with this codec, in bit/s: the fixed rate of
    /// G.711 and G.722 (64 kbit/s), GSM (13.2), G.729 (8) and our Speex encoder
    /// ([`codec::speex::DEFAULT_QUALITY`]: 15, 23.8 and 27.8 kbit/s), and the Opus floor (6).
    pub fn min_payload_bitrate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma | Codec::G722 => 64_000,
            Codec::Gsm => 13_200,
            Codec::G729 => 8_000,
            Codec::Speex => 15_000,
            Codec::SpeexWb => 23_800,
            Codec::SpeexUwb => 27_800,
            Codec::Opus => 6_000,
        }
    }

    /// Whether sending with this codec in packets of `ptime_ms` fits in a `b=AS` of
    /// `kbps` (which counts the IP, UDP and RTP headers, RFC 3556 §2).
    pub fn fits_bandwidth(self, kbps: u32, ptime_ms: u32) -> bool {
        let packets = 1000 / ptime_ms.clamp(PTIME_MS, MAX_PTIME_MS);
        u64::from(self.min_payload_bitrate()) + u64::from(HEADER_BYTES * 8 * packets)
            <= u64::from(kbps) * 1000
    }

    /// Sample rate of the PCM the codec encodes and decodes (what audio devices must run at).
    pub fn audio_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma | Codec::Gsm | Codec::Speex | Codec::G729 => SAMPLE_RATE,
            Codec::G722 | Codec::SpeexWb => 16_000,
            Codec::SpeexUwb => 32_000,
            Codec::Opus => codec::opus::OPUS_RATE,
        }
    }

    /// PCM samples in one packet of `ptime_ms` at [`Codec::audio_rate`].
    pub fn frame_samples(self, ptime_ms: u32) -> usize {
        (u64::from(self.audio_rate()) * u64::from(ptime_ms) / 1000) as usize
    }

    /// RTP timestamp increment for one packet of `ptime_ms`.
    pub fn timestamp_step(self, ptime_ms: u32) -> u32 {
        (u64::from(self.clock_rate()) * u64::from(ptime_ms) / 1000) as u32
    }

    /// The codec with this static payload type, if any.
    pub fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            3 => Some(Codec::Gsm),
            18 => Some(Codec::G729),
            _ => None,
        }
    }

    /// Every codec we implement.
    pub const ALL: [Codec; 9] = [
        Codec::Pcmu,
        Codec::Pcma,
        Codec::G722,
        Codec::Opus,
        Codec::Gsm,
        Codec::Speex,
        Codec::SpeexWb,
        Codec::SpeexUwb,
        Codec::G729,
    ];

    /// The codec with this `a=rtpmap` encoding name (case-insensitive, RFC 4566 §6). Speex has
    /// one name for three codecs: this gives narrowband; use [`Codec::from_rtpmap`].
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|c| c.encoding_name().eq_ignore_ascii_case(name))
    }

    /// The codec of an `a=rtpmap` entry: encoding name, clock rate and channels must all fit
    /// (`speex/16000` is Speex wideband, RFC 5574 §6).
    pub fn from_rtpmap(name: &str, clock_rate: u32, channels: Option<u32>) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| {
            c.encoding_name().eq_ignore_ascii_case(name) && c.matches_rtpmap(clock_rate, channels)
        })
    }

    /// Whether an `a=rtpmap` clock rate and channel count fit this codec (Opus must be
    /// `48000/2`, RFC 7587 §7; the others mono at their clock rate).
    pub fn matches_rtpmap(self, clock_rate: u32, channels: Option<u32>) -> bool {
        let channels_ok = match self {
            Codec::Opus => channels == Some(2),
            _ => channels.is_none_or(|c| c == 1),
        };
        clock_rate == self.clock_rate() && channels_ok
    }
}

/// Media direction as written in SDP (RFC 3264 §5.1, RFC 4566 §6).
///
/// In [`Negotiated`] it is always *our* direction: `SendOnly` means we send and do not play what
/// arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default when no direction attribute is present).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name (`sendrecv`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parse an attribute name.
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// Build a direction from send/receive flags.
    pub fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The direction seen from the other side (sendonly <-> recvonly; RFC 3264 §6.1).
    pub fn reversed(self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// Both sides' wishes combined: send only if both allow it, receive only if both allow it.
    pub fn intersect(self, other: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }
}

/// What we are willing to use, in preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOffer {
    /// Audio codecs in our preference order. Empty means no audio is possible.
    pub codecs: Vec<Codec>,
    /// Codecs we accept when the peer offers them but do not offer ourselves
    /// (`use_<codec>=1`), less preferred than `codecs` (see [`codec::prefs`]).
    pub accept_only: Vec<Codec>,
    /// Opus settings: our `a=fmtp` (RFC 7587 §6.1) is written from them.
    pub opus: OpusConfig,
    /// Whether to offer/accept RFC 4733 telephone-event (DTMF).
    pub telephone_event: bool,
    /// The direction we want (e.g. `SendOnly` to put the peer on hold, RFC 3264 §8.4).
    pub direction: Direction,
    /// Whether media is encrypted with SRTP keyed by SDES (RFC 4568); see [`SrtpPolicy`].
    pub srtp: SrtpPolicy,
    /// Our SDES master keys, one per suite we offer (made by [`MediaOffer::with_srtp`]). Keep
    /// the same `MediaOffer` from `create_offer` to `apply_answer`: the answer is matched
    /// against these keys.
    pub sdes_keys: SdesKeys,
    /// Offer DTLS-SRTP (`UDP/TLS/RTP/SAVP`, `a=fingerprint`, `a=setup:actpass`; RFC 5763 §5)
    /// instead of SDES; see [`dtls_srtp`]. DTLS-SRTP offers are answered whenever `srtp` is not
    /// [`SrtpPolicy::Off`], whatever this says.
    pub dtls: bool,
    /// The audio bandwidth we ask for, in kbit/s: written as `b=AS` in our offers and
    /// answers (RFC 4566 §5.8) and the cap of our Opus bit rate; `None`: no limit.
    pub bandwidth_kbps: Option<u32>,
    /// The packet length we want to receive (`a=ptime`), and send when the peer states none:
    /// a multiple of 20 ms up to [`MAX_PTIME_MS`] (Opus codes one frame of that length).
    pub ptime_ms: u32,
    /// `ptime_ms` was configured (`codecframecount`): we send it whatever the peer's
    /// `a=ptime` says (which is only a recommendation, RFC 4566 §6).
    pub ptime_fixed: bool,
    /// Our role in the call's running DTLS association, if any: an answer to a re-offer
    /// with `a=setup:actpass` keeps it (RFC 8842 §5.3; a browser refuses an answer that
    /// would swap the roles of the association it keeps).
    pub dtls_role: Option<dtls_srtp::DtlsRole>,
}

/// IP (v4), UDP and RTP header bytes of one audio packet.
pub const HEADER_BYTES: u32 = 40;

/// Bit rate of the IP (v4), UDP and RTP headers of one audio stream at 20 ms packets:
/// 40 bytes 50 times a second.
pub const HEADER_BITRATE: u32 = HEADER_BYTES * 8 * 50;

impl MediaOffer {
    /// Preferences with the given codecs, sendrecv.
    pub fn new(codecs: Vec<Codec>, telephone_event: bool) -> MediaOffer {
        MediaOffer {
            codecs,
            accept_only: Vec::new(),
            opus: OpusConfig::default(),
            telephone_event,
            direction: Direction::SendRecv,
            srtp: SrtpPolicy::Off,
            sdes_keys: SdesKeys::default(),
            dtls: false,
            bandwidth_kbps: None,
            ptime_ms: PTIME_MS,
            ptime_fixed: false,
            dtls_role: None,
        }
    }

    /// The same preferences with an SRTP policy; unless it is `Off`, fresh random master keys
    /// for every suite we support are made here (RFC 4568 §6.1, RFC 3711 §8.1).
    pub fn with_srtp(mut self, policy: SrtpPolicy) -> MediaOffer {
        self.srtp = policy;
        self.sdes_keys = if policy == SrtpPolicy::Off {
            SdesKeys::default()
        } else {
            SdesKeys::generate()
        };
        self
    }

    /// The same preferences offering DTLS-SRTP (`true`) or not. Offering it makes encryption
    /// required: the policy becomes [`SrtpPolicy::Required`] (an SDES offer from the peer is
    /// still answered, plain RTP is refused).
    pub fn with_dtls(mut self, dtls: bool) -> MediaOffer {
        self.dtls = dtls;
        if dtls && self.srtp != SrtpPolicy::Required {
            self = self.with_srtp(SrtpPolicy::Required);
        }
        self
    }

    /// The same preferences, also accepting these codecs when offered (never offering them).
    pub fn with_accept_only(mut self, codecs: Vec<Codec>) -> MediaOffer {
        self.accept_only = codecs;
        self
    }

    /// The same preferences with other Opus settings.
    pub fn with_opus(mut self, opus: OpusConfig) -> MediaOffer {
        self.opus = opus;
        self
    }

    /// The same preferences limited to `kbps` kbit/s of audio (`audio_bandwidth`; 0: no
    /// limit): announced as `b=AS`, and the Opus encoder kept below it after the IP, UDP and
    /// RTP headers of 50 packets a second (16 kbit/s), at 6 kbit/s at least.
    pub fn with_bandwidth(mut self, kbps: u32) -> MediaOffer {
        if kbps == 0 {
            self.bandwidth_kbps = None;
            return self;
        }
        self.bandwidth_kbps = Some(kbps);
        let room = i64::from(kbps) * 1000 - i64::from(HEADER_BITRATE);
        let cap = room.clamp(6_000, 510_000) as i32;
        self.opus.bitrate = Some(self.opus.bitrate.map_or(cap, |b| b.min(cap)));
        self
    }

    /// The same preferences with Opus discontinuous transmission on or off (`silencesupress`):
    /// announced as `usedtx=1` (RFC 7587 §6.1), and silent frames are not sent.
    pub fn with_dtx(mut self, dtx: bool) -> MediaOffer {
        self.opus.dtx = dtx;
        self
    }

    /// The same preferences with another packet length (`codecframecount`), rounded down to
    /// whole 20 ms and kept within 20..=120 ms.
    pub fn with_ptime(mut self, ms: u32) -> MediaOffer {
        self.ptime_ms = (ms / PTIME_MS * PTIME_MS).clamp(PTIME_MS, MAX_PTIME_MS);
        self
    }

    /// `codecframecount`: codec frames per packet. 0 (the default) keeps 20 ms (two 10 ms
    /// G.729 frames, one frame of the others) and follows the peer's `a=ptime`; N frames of
    /// the first codec we prefer (10 ms for G.729, 20 ms for the others) otherwise, sent
    /// whatever the peer asks (see [`MediaOffer::with_ptime`] for the rounding).
    pub fn with_codecframecount(self, frames: i64) -> MediaOffer {
        if frames <= 0 {
            return self;
        }
        let frame_ms = if self.codecs.first() == Some(&Codec::G729) {
            10
        } else {
            PTIME_MS
        };
        let frames = u32::try_from(frames.min(12)).unwrap_or(1);
        let mut out = self.with_ptime(frames * frame_ms);
        out.ptime_fixed = true;
        out
    }

    /// The same preferences with another direction.
    pub fn with_direction(mut self, direction: Direction) -> MediaOffer {
        self.direction = direction;
        self
    }
}

impl Default for MediaOffer {
    /// PCMU, PCMA, telephone-event, sendrecv.
    fn default() -> Self {
        MediaOffer::new(vec![Codec::Pcmu, Codec::Pcma], true)
    }
}

/// The outcome of an offer/answer exchange for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP (from the peer's `c=` and `m=` lines). An unspecified address
    /// (`0.0.0.0`, the RFC 2543 hold convention) means: do not send.
    pub remote_rtp: SocketAddr,
    /// The codec we send with.
    pub codec: Codec,
    /// Payload type of `codec` in this session.
    pub payload_type: u8,
    /// Payload type of telephone-event if both sides support it (RFC 4733 §7.1.1), chosen
    /// at the RTP clock of `codec` (§2.1; see [`sdp::MediaDescription::telephone_event_for`]).
    /// Event timestamps and durations are in the codec's RTP clock
    /// ([`Negotiated::telephone_event_clock`]).
    pub telephone_event_pt: Option<u8>,
    /// Our direction.
    pub direction: Direction,
    /// The packet length we send, in milliseconds: a multiple of 20 up to [`MAX_PTIME_MS`]
    /// (the peer's `a=ptime`, else ours; see [`MediaOffer::ptime_ms`]); Opus packets carry
    /// one frame of that length.
    pub ptime_ms: u32,
    /// SRTP suite and keys when media is encrypted (SDES, RFC 4568); `None` for plain RTP.
    pub srtp: Option<SrtpParams>,
    /// DTLS-SRTP role and the peer's fingerprint when the keys come from a DTLS handshake on
    /// the media socket (RFC 5763/5764); `srtp` is then `None` and the pipeline keys itself
    /// when the handshake completes (no media flows before).
    pub dtls: Option<dtls_srtp::DtlsParams>,
    /// RTCP shares the RTP port (`a=rtcp-mux` in offer and answer, RFC 5761 §5.1.1); else
    /// RTCP goes to the RTP port + 1 (RFC 3550 §11).
    pub rtcp_mux: bool,
    /// What the peer said it can take; our encoder stays within it.
    pub send_limits: SendLimits,
}

/// Limits the peer's SDP puts on what we send (all `None`: none stated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendLimits {
    /// `b=AS` of the peer's audio stream (or session), kbit/s including IP, UDP and RTP
    /// headers (RFC 4566 §5.8, RFC 3556 §2).
    pub bandwidth_kbps: Option<u32>,
    /// Opus `maxaveragebitrate` in bit/s (RFC 7587 §6.1).
    pub opus_max_average_bitrate: Option<u32>,
    /// Opus `maxplaybackrate` in Hz (RFC 7587 §6.1): no audio bandwidth beyond it is coded.
    pub opus_max_playback_rate: Option<u32>,
}

impl SendLimits {
    /// The highest Opus bit rate these limits allow in packets of `ptime_ms`: below
    /// `maxaveragebitrate`, and below `b=AS` once the headers of that many packets a second
    /// are taken off (6 kbit/s at least, the Opus floor); `None`: unlimited.
    pub fn opus_bitrate_cap(&self, ptime_ms: u32) -> Option<i32> {
        let packets = 1000 / ptime_ms.clamp(PTIME_MS, MAX_PTIME_MS);
        let from_as = self.bandwidth_kbps.map(|k| {
            let room = i64::from(k) * 1000 - i64::from(HEADER_BYTES * 8 * packets);
            room.clamp(6_000, 510_000) as i32
        });
        let from_fmtp = self
            .opus_max_average_bitrate
            .map(|b| i64::from(b).clamp(6_000, 510_000) as i32);
        match (from_as, from_fmtp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Negotiated {
    /// Whether media is encrypted (SRTP negotiated, keyed by SDES or by DTLS). With DTLS
    /// nothing is sent or accepted before the handshake has produced the keys, so media is never
    /// in clear either way.
    pub fn is_encrypted(&self) -> bool {
        self.srtp.is_some() || self.dtls.is_some()
    }

    /// The clock of telephone-event timestamps and durations: the send codec's RTP clock
    /// (RFC 4733 §2.1; 48000 with Opus, 8000 with G.711 and G.722).
    pub fn telephone_event_clock(&self) -> u32 {
        self.codec.clock_rate()
    }
}

/// Where the pipeline takes the audio it sends from: mono PCM at the audio rate of the codec
/// the call started with ([`Codec::audio_rate`]: 8, 16 or 48 kHz).
pub trait PcmSource: Send {
    /// Fill `out` (20 ms: 160 samples at 8 kHz, 320 at 16 kHz, 960 at 48 kHz) with the next
    /// frame; silence when nothing is there.
    /// Must not block.
    fn read_frame(&mut self, out: &mut [i16]);
}

/// Where the pipeline puts the audio it plays: mono PCM at the same rate as the source.
pub trait PcmSink: Send {
    /// Take one frame (20 ms at the audio rate). Must not block.
    fn write_frame(&mut self, frame: &[i16]);
}

/// A source that always gives silence.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilenceSource;

impl PcmSource for SilenceSource {
    fn read_frame(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
}

/// A sink that discards everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl PcmSink for NullSink {
    fn write_frame(&mut self, _frame: &[i16]) {}
}
