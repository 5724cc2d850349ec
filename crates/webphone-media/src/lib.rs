//! webphone-media: SDP offer/answer, RTP, G.711, jitter buffer and RFC 4733 DTMF for one audio
//! stream per call.
//!
//! Layers, bottom up (everything except [`session`] is sans-IO and deterministic):
//! - [`g711`]: ITU-T G.711 µ-law / A-law sample conversion.
//! - [`sdp`]: RFC 4566 parsing and RFC 3264 offer/answer for one audio stream.
//! - [`rtp`]: RFC 3550 packetisation of 20 ms frames and parsing of received packets.
//! - [`jitter`]: a fixed-delay jitter buffer with loss concealment.
//! - [`dtmf`]: RFC 4733 telephone-event generation and parsing.
//! - [`stats`]: RFC 3550 receive statistics (loss, interarrival jitter).
//! - [`pipeline`]: the per-call state machine tying the above together (`on_tick`, `on_packet`,
//!   `playout`).
//! - [`session`]: the thin tokio driver ([`RtpSocket`], [`MediaSession`]).
//!
//! The crate knows nothing about audio devices: the engine adapts them to [`PcmSource`] and
//! [`PcmSink`].

pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod pipeline;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod stats;

use std::net::SocketAddr;

pub use pipeline::{MediaEvent, MediaPipeline, Outgoing, PipelineConfig};
pub use sdp::SdpError;
pub use session::{MediaSession, RtpSocket};
pub use stats::MediaStats;

/// Sample rate of every codec supported here (RFC 3551 §4.5.14).
pub const SAMPLE_RATE: u32 = 8000;
/// Packetisation interval in milliseconds (RFC 3551 §4.5: default 20 ms for G.711).
pub const PTIME_MS: u32 = 20;
/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// An audio codec we can send and receive.
///
/// Both are G.711 with static payload types (RFC 3551 §6, table 4): PCMU = 0, PCMA = 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 table 4).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name as written in `a=rtpmap` (RFC 3551 §4.5.14).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// RTP clock rate in Hz.
    pub fn clock_rate(self) -> u32 {
        SAMPLE_RATE
    }

    /// The codec with this static payload type, if any.
    pub fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec with this `a=rtpmap` encoding name (case-insensitive, RFC 4566 §6).
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    /// Encode one frame of linear PCM into G.711 bytes (one byte per sample).
    pub fn encode(self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            Codec::Pcmu => g711::encode_ulaw(pcm, out),
            Codec::Pcma => g711::encode_alaw(pcm, out),
        }
    }

    /// Decode G.711 bytes into linear PCM (one sample per byte).
    pub fn decode(self, data: &[u8], out: &mut Vec<i16>) {
        match self {
            Codec::Pcmu => g711::decode_ulaw(data, out),
            Codec::Pcma => g711::decode_alaw(data, out),
        }
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
    /// Whether to offer/accept RFC 4733 telephone-event (DTMF).
    pub telephone_event: bool,
    /// The direction we want (e.g. `SendOnly` to put the peer on hold, RFC 3264 §8.4).
    pub direction: Direction,
}

impl MediaOffer {
    /// Preferences with the given codecs, sendrecv.
    pub fn new(codecs: Vec<Codec>, telephone_event: bool) -> MediaOffer {
        MediaOffer {
            codecs,
            telephone_event,
            direction: Direction::SendRecv,
        }
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
    /// Payload type of telephone-event/8000 if both sides support it (RFC 4733 §7.1.1).
    pub telephone_event_pt: Option<u8>,
    /// Our direction.
    pub direction: Direction,
    /// Our packetisation interval in milliseconds (always 20 for now).
    pub ptime_ms: u32,
}

/// Where the pipeline takes the audio it sends from: mono PCM at 8 kHz.
pub trait PcmSource: Send {
    /// Fill `out` (160 samples for 20 ms) with the next frame; silence when nothing is there.
    /// Must not block.
    fn read_frame(&mut self, out: &mut [i16]);
}

/// Where the pipeline puts the audio it plays: mono PCM at 8 kHz.
pub trait PcmSink: Send {
    /// Take one frame (160 samples for 20 ms). Must not block.
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
