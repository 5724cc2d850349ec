//! Opus (RFC 6716) through libopus (`audiopus`), with the RTP conventions of RFC 7587.
//!
//! We always run the codec at 48 kHz mono: RFC 7587 §4.1 fixes the RTP clock at 48000 Hz
//! whatever the audio bandwidth, and a mono decoder also plays stereo packets (RFC 7587 §3.4:
//! the receiver can always downmix). In-band FEC (RFC 6716 §2.1.7 / RFC 7587 §3.3), DTX
//! (RFC 7587 §3.1.3), bit rate and complexity come from [`OpusConfig`].

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Bandwidth, Bitrate, Channels, SampleRate, Signal};

use super::{AudioDecoder, AudioEncoder, CodecError};

/// Opus audio rate and RTP clock (RFC 7587 §4.1).
pub const OPUS_RATE: u32 = 48_000;
/// Largest Opus packet we produce (RFC 6716 §3.2.1 allows 1275 bytes per frame).
const MAX_PACKET: usize = 1500;
/// Longest decoded packet we accept: 120 ms at 48 kHz (RFC 6716 §2.1.4).
const MAX_DECODED: usize = 5760;

/// Opus encoder settings for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// Target bit rate in bit/s (6000..=510000); `None` lets libopus choose.
    pub bitrate: Option<i32>,
    /// Encoder complexity 0..=10 (higher: better quality, more CPU).
    pub complexity: u8,
    /// In-band forward error correction (LBRR frames, RFC 6716 §2.1.7).
    pub inband_fec: bool,
    /// Expected packet loss in percent; tunes how much FEC the encoder spends (0..=100).
    pub packet_loss_percent: u8,
    /// Discontinuous transmission: near-empty packets during silence (RFC 7587 §3.1.3).
    pub dtx: bool,
    /// Highest audio rate we want to receive, for `maxplaybackrate` (RFC 7587 §6.1):
    /// 8000, 12000, 16000, 24000 or 48000.
    pub max_playback_rate: u32,
}

impl Default for OpusConfig {
    /// 32 kbit/s, complexity 8, FEC on with 5 % expected loss, no DTX, fullband.
    fn default() -> Self {
        OpusConfig {
            bitrate: Some(32_000),
            complexity: 8,
            inband_fec: true,
            packet_loss_percent: 5,
            dtx: false,
            max_playback_rate: OPUS_RATE,
        }
    }
}

impl OpusConfig {
    /// The `a=fmtp` parameters we declare for the stream we receive (RFC 7587 §6.1): mono,
    /// our playback rate, FEC and DTX capability.
    pub fn fmtp(&self) -> String {
        let mut s = format!(
            "maxplaybackrate={};sprop-maxcapturerate={};stereo=0;sprop-stereo=0;useinbandfec=1",
            self.max_playback_rate, self.max_playback_rate
        );
        if self.dtx {
            s.push_str(";usedtx=1");
        }
        s
    }

    /// The encoder bandwidth that fits a playback rate (RFC 7587 §6.1 `maxplaybackrate`).
    fn max_bandwidth(rate: u32) -> Bandwidth {
        match rate {
            0..=8000 => Bandwidth::Narrowband,
            8001..=12000 => Bandwidth::Mediumband,
            12001..=16000 => Bandwidth::Wideband,
            16001..=24000 => Bandwidth::Superwideband,
            _ => Bandwidth::Fullband,
        }
    }
}

fn lib(e: audiopus::Error) -> CodecError {
    CodecError::Library(e.to_string())
}

/// Opus encoder for one call (48 kHz mono, VoIP application).
pub struct OpusEncoder {
    enc: Encoder,
    buf: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// A new encoder with these settings. `remote_max_playback_rate` is the peer's
    /// `maxplaybackrate` when known (we do not encode more bandwidth than it plays).
    pub fn new(
        cfg: &OpusConfig,
        remote_max_playback_rate: Option<u32>,
    ) -> Result<OpusEncoder, CodecError> {
        let mut enc =
            Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip).map_err(lib)?;
        if let Some(b) = cfg.bitrate {
            enc.set_bitrate(Bitrate::BitsPerSecond(b.clamp(6_000, 510_000)))
                .map_err(lib)?;
        }
        enc.set_complexity(cfg.complexity.min(10)).map_err(lib)?;
        enc.set_inband_fec(cfg.inband_fec).map_err(lib)?;
        enc.set_packet_loss_perc(cfg.packet_loss_percent.min(100))
            .map_err(lib)?;
        enc.set_dtx(cfg.dtx).map_err(lib)?;
        enc.set_signal(Signal::Voice).map_err(lib)?;
        let rate = remote_max_playback_rate.unwrap_or(OPUS_RATE);
        enc.set_max_bandwidth(OpusConfig::max_bandwidth(rate))
            .map_err(lib)?;
        Ok(OpusEncoder {
            enc,
            buf: vec![0; MAX_PACKET],
        })
    }
}

impl AudioEncoder for OpusEncoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let n = self.enc.encode(pcm, &mut self.buf).map_err(lib)?;
        out.extend_from_slice(self.buf.get(..n).unwrap_or(&[]));
        Ok(())
    }
}

/// Opus decoder for one call (48 kHz mono output).
pub struct OpusDecoder {
    dec: Decoder,
    buf: Vec<i16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A new decoder.
    pub fn new() -> Result<OpusDecoder, CodecError> {
        Ok(OpusDecoder {
            dec: Decoder::new(SampleRate::Hz48000, Channels::Mono).map_err(lib)?,
            buf: vec![0; MAX_DECODED],
        })
    }

    fn run(
        &mut self,
        payload: Option<&[u8]>,
        samples: usize,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        let want = samples.clamp(1, MAX_DECODED);
        let packet = match payload {
            Some(p) => Some(audiopus::packet::Packet::try_from(p).map_err(lib)?),
            None => None,
        };
        let signals = audiopus::MutSignals::try_from(&mut self.buf[..want]).map_err(lib)?;
        let n = self.dec.decode(packet, signals, fec).map_err(lib)?;
        out.extend_from_slice(self.buf.get(..n).unwrap_or(&[]));
        Ok(())
    }
}

impl AudioDecoder for OpusDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() {
            return Err(CodecError::Corrupt("empty Opus packet".into()));
        }
        self.run(Some(payload), MAX_DECODED, false, out)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        // RFC 6716 §4.4: a missing packet is signalled to the decoder, which extrapolates.
        // libopus wants a multiple of 2.5 ms; round up to it.
        let unit = (OPUS_RATE / 400) as usize;
        let n = samples.div_ceil(unit) * unit;
        let start = out.len();
        self.run(None, n, false, out)?;
        out.truncate(start + samples);
        Ok(())
    }

    fn decode_fec(
        &mut self,
        next_payload: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<bool, CodecError> {
        if next_payload.is_empty() {
            return Ok(false);
        }
        self.run(Some(next_payload), samples, true, out)?;
        Ok(true)
    }
}
