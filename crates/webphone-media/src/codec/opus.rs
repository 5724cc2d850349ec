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

/// Whether an Opus packet carries in-band FEC (LBRR) data for the packet before it (RFC 6716
/// §4.2.3: in SILK and hybrid modes the first bits of the first frame are the VAD flags of
/// its SILK frames, then the LBRR flag, per channel; CELT-only packets carry none). The
/// flags are the leading bits of the range-coded data, readable without decoding. A packet
/// that does not parse (RFC 6716 §3.4) has none.
pub fn packet_has_lbrr(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    let config = toc >> 3;
    if config >= 16 {
        return false; // CELT-only
    }
    // SILK frame length in 20 ms units: SILK-only configs 0..12 are 10/20/40/60 ms, hybrid
    // 12..16 are 10/20 ms (RFC 6716 §3.1, Table 2).
    let frame_ms = if config < 12 {
        [10u32, 20, 40, 60][usize::from(config & 3)]
    } else {
        [10u32, 20][usize::from(config & 1)]
    };
    let silk_frames = (frame_ms / 20).max(1);
    let stereo = toc & 0x4 != 0;
    let Some(first) = first_frame(packet).and_then(|f| f.first().copied()) else {
        return false;
    };
    let bit = |n: u32| n < 8 && (first >> (7 - n)) & 1 == 1;
    // Mid channel: `silk_frames` VAD flags, then its LBRR flag; the side channel's follow.
    bit(silk_frames) || (stereo && bit(2 * silk_frames + 1))
}

/// The first frame of an Opus packet (RFC 6716 §3.2), `None` if the packet is malformed.
fn first_frame(packet: &[u8]) -> Option<&[u8]> {
    let toc = *packet.first()?;
    let rest = packet.get(1..)?;
    // A frame length: one byte below 252, else two (§3.2.1).
    let length = |b: &[u8]| -> Option<(usize, usize)> {
        let b0 = usize::from(*b.first()?);
        if b0 < 252 {
            Some((b0, 1))
        } else {
            Some((b0 + 4 * usize::from(*b.get(1)?), 2))
        }
    };
    match toc & 3 {
        // One frame, or two of equal size (§3.2.2, §3.2.3).
        0 => Some(rest),
        1 => rest.get(..rest.len() / 2),
        // Two frames, the first with an explicit length (§3.2.4).
        2 => {
            let (n, used) = length(rest)?;
            rest.get(used..used + n)
        }
        // Frame count byte, optional padding length, VBR lengths (§3.2.5).
        _ => {
            let count_byte = *rest.first()?;
            let count = usize::from(count_byte & 0x3F);
            if count == 0 {
                return None;
            }
            let mut i = 1;
            let mut padding = 0usize;
            if count_byte & 0x40 != 0 {
                loop {
                    let p = usize::from(*rest.get(i)?);
                    i += 1;
                    if p == 255 {
                        padding += 254;
                    } else {
                        padding += p;
                        break;
                    }
                }
            }
            if count_byte & 0x80 != 0 {
                let (n, used) = length(rest.get(i..)?)?;
                i += used;
                for _ in 1..count {
                    let (_, used) = length(rest.get(i..)?)?;
                    i += used;
                }
                rest.get(i..i + n)
            } else {
                let data = rest.len().checked_sub(i + padding)?;
                rest.get(i..i + data / count)
            }
        }
    }
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
        if !packet_has_lbrr(next_payload) {
            // Without LBRR data libopus would only extrapolate: that is concealment, which
            // the jitter buffer asks for separately (it may still wait for the packet).
            return Ok(false);
        }
        self.run(Some(next_payload), samples, true, out)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 ms frames of a voiced test signal at 48 kHz.
    fn speech_packets(cfg: &OpusConfig, frames: usize) -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::new(cfg, None).unwrap();
        (0..frames)
            .map(|f| {
                let pcm: Vec<i16> = (0..960)
                    .map(|k| {
                        let t = (f * 960 + k) as f64 / 48_000.0;
                        let s = (2.0 * std::f64::consts::PI * 180.0 * t).sin()
                            + 0.4 * (2.0 * std::f64::consts::PI * 540.0 * t).sin();
                        (s * 9000.0) as i16
                    })
                    .collect();
                let mut out = Vec::new();
                enc.encode(&pcm, &mut out).unwrap();
                out
            })
            .collect()
    }

    #[test]
    fn lbrr_flag_is_read_from_packets_of_an_encoder_with_and_without_fec() {
        let with = speech_packets(&OpusConfig::default(), 50);
        // libopus codes LBRR for active (VAD) SILK frames: the steady tone soon counts as
        // inactive, so not every packet has it.
        let n_with = with.iter().filter(|p| packet_has_lbrr(p)).count();
        assert!(n_with >= 10, "{n_with} of 50 packets carry LBRR");
        let no_fec = OpusConfig {
            inband_fec: false,
            ..OpusConfig::default()
        };
        let without = speech_packets(&no_fec, 50);
        assert_eq!(without.iter().filter(|p| packet_has_lbrr(p)).count(), 0);
        // The decoder asks for FEC only where there is some.
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        assert!(!dec.decode_fec(&without[10], 960, &mut out).unwrap());
        assert!(out.is_empty());
        let k = with.iter().rposition(|p| packet_has_lbrr(p)).unwrap();
        assert!(dec.decode_fec(&with[k], 960, &mut out).unwrap());
        assert_eq!(out.len(), 960);
    }

    #[test]
    fn lbrr_flag_of_malformed_and_celt_only_packets_is_false() {
        assert!(!packet_has_lbrr(&[]));
        // SILK-only 20 ms mono (config 1), one frame, LBRR bit (the second) set...
        assert!(packet_has_lbrr(&[1 << 3, 0b0100_0000]));
        // ...but no frame data, or a CELT-only config (16+).
        assert!(!packet_has_lbrr(&[1 << 3]));
        assert!(!packet_has_lbrr(&[16 << 3, 0xFF]));
        // SILK 40 ms (config 2): two VAD flags, then LBRR.
        assert!(packet_has_lbrr(&[2 << 3, 0b0010_0000]));
        assert!(!packet_has_lbrr(&[2 << 3, 0b0100_0000]));
        // Stereo (s bit), side channel's LBRR only (bit 3 for 20 ms frames).
        assert!(packet_has_lbrr(&[(1 << 3) | 0x4, 0b0001_0000]));
        // Code 2: first frame of explicit length 1; a truncated length is malformed.
        assert!(packet_has_lbrr(&[(1 << 3) | 2, 1, 0b0100_0000, 0]));
        assert!(!packet_has_lbrr(&[(1 << 3) | 2, 252]));
        // Code 3: a count of zero frames, or padding running past the end, is malformed.
        assert!(!packet_has_lbrr(&[(1 << 3) | 3, 0]));
        assert!(!packet_has_lbrr(&[(1 << 3) | 3, 0x41, 255]));
        // Code 3 CBR, two frames, one byte of padding.
        assert!(packet_has_lbrr(&[(1 << 3) | 3, 0x42, 1, 0b0100_0000, 0, 9]));
    }
}
