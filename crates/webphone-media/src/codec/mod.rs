//! Audio codecs: per-call encoder/decoder objects behind [`AudioEncoder`] / [`AudioDecoder`],
//! and the codec preference rules of the `codec`, `prefcodec` and `use_<codec>` parameters
//! ([`prefs`]).
//!
//! | codec | RTP clock | audio rate | 20 ms frame | payload type | module |
//! |---|---|---|---|---|---|
//! | PCMU / PCMA | 8000 | 8000 | 160 samples, 160 octets | 0 / 8 (static) | [`g711`] |
//! | G.722 | 8000 (RFC 3551 §4.5.2) | 16000 | 320 samples, 160 octets | 9 (static) | [`g722`] |
//! | Opus | 48000 (RFC 7587 §4.1) | 48000 | 960 samples, variable | dynamic (we offer 111) | [`opus`] |
//! | GSM 06.10 | 8000 | 8000 | 160 samples, 33 octets | 3 (static) | [`gsm`] (libgsm) |
//! | Speex NB / WB / UWB | 8000 / 16000 / 32000 (RFC 5574) | same | 160 / 320 / 640 samples, variable | dynamic (we offer 97 / 98 / 99) | [`speex`] (libspeex) |
//! | G.729A | 8000 | 8000 | 2 x 80 samples, 2 x 10 octets | 18 (static) | [`g729`] (libbcg729) |
//!
//! iLBC is not implemented: Debian 12 ships no maintained iLBC library.
//!
//! The pipeline reads and plays [`crate::Codec::audio_rate`] PCM and advances the RTP
//! timestamp by [`crate::Codec::clock_rate`]-based ticks.

pub mod g711;
pub mod g722;
pub mod g729;
pub mod gsm;
pub mod opus;
pub mod prefs;
pub mod speex;

pub use opus::OpusConfig;
pub use prefs::{codec_prefs_from_params, CodecPrefs, UseLevel};

use crate::Codec;

/// Why a codec could not be created or could not process a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The codec library reported an error (Opus: bad argument, invalid packet, ...).
    #[error("codec library error: {0}")]
    Library(String),
    /// The payload cannot be decoded.
    #[error("corrupt payload: {0}")]
    Corrupt(String),
}

/// Encoder settings for one call, per codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodecConfig {
    /// Opus settings (bit rate, complexity, FEC, DTX, playback rate).
    pub opus: OpusConfig,
}

/// One direction's encoder for one call: 20 ms (or other ptime) of PCM at the codec's audio rate
/// in, one RTP payload out.
pub trait AudioEncoder: Send {
    /// Append the payload for `pcm` (exactly one packet's worth of samples) to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
}

/// One direction's decoder for one call.
pub trait AudioDecoder: Send {
    /// Append the PCM of one RTP payload to `out` (at the codec's audio rate).
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;

    /// Append `samples` samples of concealment for a lost packet. Codecs without their own
    /// packet-loss concealment append nothing and return `Ok(())`: the jitter buffer conceals.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        let _ = (samples, out);
        Ok(())
    }

    /// Recover a lost packet of `samples` samples from the forward error correction data in
    /// the packet after it (Opus in-band FEC, RFC 7587 §3.3). Returns `false` (and appends
    /// nothing) when the codec has no FEC.
    fn decode_fec(
        &mut self,
        next_payload: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<bool, CodecError> {
        let _ = (next_payload, samples, out);
        Ok(false)
    }
}

/// G.711 µ-law or A-law (stateless).
#[derive(Debug, Clone, Copy)]
struct G711 {
    alaw: bool,
}

impl AudioEncoder for G711 {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if self.alaw {
            g711::encode_alaw(pcm, out);
        } else {
            g711::encode_ulaw(pcm, out);
        }
        Ok(())
    }
}

impl AudioDecoder for G711 {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if self.alaw {
            g711::decode_alaw(payload, out);
        } else {
            g711::decode_ulaw(payload, out);
        }
        Ok(())
    }
}

impl AudioEncoder for g722::G722Encoder {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        g722::G722Encoder::encode(self, pcm, out);
        Ok(())
    }
}

impl AudioDecoder for g722::G722Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        g722::G722Decoder::decode(self, payload, out);
        Ok(())
    }
}

/// A fresh encoder for `codec` that stays within what the peer takes (`limits`, for packets
/// of `ptime_ms`): the Opus bit rate below [`crate::SendLimits::opus_bitrate_cap`] and its
/// audio bandwidth within the peer's `maxplaybackrate`. The other codecs have fixed rates.
pub fn new_encoder_within(
    codec: Codec,
    cfg: &CodecConfig,
    limits: &crate::SendLimits,
    ptime_ms: u32,
) -> Result<Box<dyn AudioEncoder>, CodecError> {
    if codec != Codec::Opus {
        return new_encoder(codec, cfg);
    }
    let mut opus = cfg.opus;
    if let Some(cap) = limits.opus_bitrate_cap(ptime_ms) {
        opus.bitrate = Some(opus.bitrate.map_or(cap, |b| b.min(cap)));
    }
    Ok(Box::new(opus::OpusEncoder::new(
        &opus,
        limits.opus_max_playback_rate,
    )?))
}

/// A fresh encoder for `codec` (per call and direction).
pub fn new_encoder(codec: Codec, cfg: &CodecConfig) -> Result<Box<dyn AudioEncoder>, CodecError> {
    Ok(match codec {
        Codec::Pcmu => Box::new(G711 { alaw: false }),
        Codec::Pcma => Box::new(G711 { alaw: true }),
        Codec::G722 => Box::new(g722::G722Encoder::new()),
        Codec::Opus => Box::new(opus::OpusEncoder::new(&cfg.opus, None)?),
        Codec::Gsm => Box::new(gsm::GsmEncoder::new()?),
        Codec::Speex | Codec::SpeexWb | Codec::SpeexUwb => Box::new(speex::SpeexEncoder::new(
            speex_mode(codec),
            speex::DEFAULT_QUALITY,
        )?),
        Codec::G729 => Box::new(g729::G729Encoder::new()?),
    })
}

/// A fresh decoder for `codec` (per call and direction).
pub fn new_decoder(codec: Codec) -> Result<Box<dyn AudioDecoder>, CodecError> {
    Ok(match codec {
        Codec::Pcmu => Box::new(G711 { alaw: false }),
        Codec::Pcma => Box::new(G711 { alaw: true }),
        Codec::G722 => Box::new(g722::G722Decoder::new()),
        Codec::Opus => Box::new(opus::OpusDecoder::new()?),
        Codec::Gsm => Box::new(gsm::GsmDecoder::new()?),
        Codec::Speex | Codec::SpeexWb | Codec::SpeexUwb => {
            Box::new(speex::SpeexDecoder::new(speex_mode(codec))?)
        }
        Codec::G729 => Box::new(g729::G729Decoder::new()?),
    })
}

/// The Speex mode of a Speex codec (narrowband for the others; not used for them).
fn speex_mode(codec: Codec) -> speex::SpeexMode {
    match codec {
        Codec::SpeexWb => speex::SpeexMode::Wide,
        Codec::SpeexUwb => speex::SpeexMode::UltraWide,
        _ => speex::SpeexMode::Narrow,
    }
}

/// The duration of one RTP payload in RTP timestamp units of `codec`'s clock, read from the
/// payload itself: G.711 one octet per 8 kHz sample, G.722 one octet per 8000 Hz clock tick
/// (RFC 3551 §4.5.2), Opus from its TOC byte and frame count (RFC 6716 §3.1, up to 120 ms),
/// GSM 160 per 33-octet frame (RFC 3551 §4.5.8), G.729 80 per 10-octet frame or 2-octet SID
/// (RFC 3551 §4.5.6). Speex frames are bit-packed without a length, so a Speex payload counts
/// as one 20 ms frame (what we and common peers send).
/// `None` for an empty or malformed payload.
pub fn packet_clock_units(codec: Codec, payload: &[u8]) -> Option<u32> {
    if payload.is_empty() {
        return None;
    }
    match codec {
        Codec::Pcmu | Codec::Pcma | Codec::G722 => u32::try_from(payload.len()).ok(),
        Codec::Opus => {
            let p = audiopus::packet::Packet::try_from(payload).ok()?;
            let n = audiopus::packet::nb_samples(p, audiopus::SampleRate::Hz48000).ok()?;
            u32::try_from(n).ok().filter(|&n| n > 0)
        }
        Codec::Gsm => (payload.len() % gsm::FRAME_BYTES == 0)
            .then(|| (payload.len() / gsm::FRAME_BYTES * gsm::FRAME_SAMPLES) as u32),
        Codec::G729 => {
            g729::payload_frames(payload.len()).map(|n| (n * g729::FRAME_SAMPLES) as u32)
        }
        Codec::Speex | Codec::SpeexWb | Codec::SpeexUwb => Some(codec.timestamp_step(20)),
    }
}

/// Convert mono PCM between two rates by linear interpolation (frame by frame, no state).
///
/// Only a fallback for the rare case that a re-negotiation switches to a codec whose audio rate
/// differs from the rate the devices were opened at; it does not band-limit when decimating.
pub fn resample_linear(input: &[i16], from: u32, to: u32, out: &mut Vec<i16>) {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        out.extend_from_slice(input);
        return;
    }
    let n_out = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let last = input.len() - 1;
    for i in 0..n_out {
        let pos = i as f64 * f64::from(from) / f64::from(to);
        let k = (pos as usize).min(last);
        let frac = pos - k as f64;
        let a = f64::from(input[k]);
        let b = f64::from(input[(k + 1).min(last)]);
        out.push((a + (b - a) * frac).round() as i16);
    }
}

/// The encoder and decoders of one call, for the pipeline.
///
/// The audio devices run at one rate for the whole call (the audio rate of the codec the call
/// started with); when a re-negotiation switches to a codec with another audio rate, PCM is
/// converted with [`resample_linear`]. The encoder is re-created when the send codec changes;
/// decoders are kept per payload type (the peer may switch between the codecs of the answer,
/// RFC 3264 §6.1).
pub struct CallCodecs {
    device_rate: u32,
    cfg: CodecConfig,
    /// The peer's limits and our packet length, for the encoder ([`new_encoder_within`]).
    limits: (crate::SendLimits, u32),
    send: Option<(Codec, Box<dyn AudioEncoder>)>,
    recv: Vec<(u8, Codec, Box<dyn AudioDecoder>)>,
    scratch: Vec<i16>,
}

impl std::fmt::Debug for CallCodecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallCodecs")
            .field("device_rate", &self.device_rate)
            .field("send", &self.send.as_ref().map(|(c, _)| *c))
            .finish_non_exhaustive()
    }
}

/// Most decoders kept per call (one per payload type seen).
const MAX_DECODERS: usize = 4;

impl CallCodecs {
    /// Codecs for a call whose devices run at `device_rate`.
    pub fn new(device_rate: u32, cfg: CodecConfig) -> CallCodecs {
        CallCodecs {
            device_rate,
            cfg,
            limits: (crate::SendLimits::default(), crate::PTIME_MS),
            send: None,
            recv: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The PCM rate of the devices.
    pub fn device_rate(&self) -> u32 {
        self.device_rate
    }

    /// Device samples in `ptime_ms`.
    pub fn device_frame(&self, ptime_ms: u32) -> usize {
        (u64::from(self.device_rate) * u64::from(ptime_ms) / 1000) as usize
    }

    /// What the peer takes and the packet length we send (from the negotiation); the encoder
    /// is made again when they change.
    pub fn set_send_limits(&mut self, limits: crate::SendLimits, ptime_ms: u32) {
        if self.limits != (limits, ptime_ms) {
            self.limits = (limits, ptime_ms);
            self.send = None;
        }
    }

    /// Encode one packet's worth of device PCM with `codec`.
    pub fn encode(
        &mut self,
        codec: Codec,
        pcm: &[i16],
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        if self.send.as_ref().is_none_or(|(c, _)| *c != codec) {
            let (limits, ptime) = &self.limits;
            self.send = Some((codec, new_encoder_within(codec, &self.cfg, limits, *ptime)?));
        }
        let Some((_, enc)) = self.send.as_mut() else {
            return Ok(());
        };
        if codec.audio_rate() == self.device_rate {
            return enc.encode(pcm, out);
        }
        self.scratch.clear();
        resample_linear(pcm, self.device_rate, codec.audio_rate(), &mut self.scratch);
        enc.encode(&self.scratch, out)
    }

    /// Decode one payload of payload type `pt` (standing for `codec`) into device PCM.
    pub fn decode(
        &mut self,
        pt: u8,
        codec: Codec,
        payload: &[u8],
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        let idx = match self
            .recv
            .iter()
            .position(|(p, c, _)| *p == pt && *c == codec)
        {
            Some(i) => i,
            None => {
                if self.recv.len() >= MAX_DECODERS {
                    self.recv.remove(0);
                }
                self.recv.push((pt, codec, new_decoder(codec)?));
                self.recv.len() - 1
            }
        };
        let Some((_, _, dec)) = self.recv.get_mut(idx) else {
            return Ok(());
        };
        if codec.audio_rate() == self.device_rate {
            return dec.decode(payload, out);
        }
        self.scratch.clear();
        dec.decode(payload, &mut self.scratch)?;
        resample_linear(&self.scratch, codec.audio_rate(), self.device_rate, out);
        Ok(())
    }

    fn decoder_for(&mut self, pt: u8, codec: Codec) -> Option<&mut Box<dyn AudioDecoder>> {
        self.recv
            .iter_mut()
            .find(|(p, c, _)| *p == pt && *c == codec)
            .map(|(_, _, d)| d)
    }

    /// Codec packet-loss concealment of `samples` device samples with the decoder of `pt`
    /// (Opus extrapolates, RFC 6716 §4.4). `Ok(false)` when that decoder does not exist yet or
    /// the codec has no concealment of its own (G.711, G.722): the caller conceals.
    pub fn conceal(
        &mut self,
        pt: u8,
        codec: Codec,
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<bool, CodecError> {
        let device_rate = self.device_rate;
        let codec_samples =
            (samples as u64 * u64::from(codec.audio_rate()) / u64::from(device_rate)) as usize;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let res = match self.decoder_for(pt, codec) {
            Some(dec) => dec.conceal(codec_samples, &mut scratch),
            None => Ok(()),
        };
        let produced = !scratch.is_empty();
        if produced {
            resample_linear(&scratch, codec.audio_rate(), device_rate, out);
        }
        self.scratch = scratch;
        res.map(|()| produced)
    }

    /// Recover a lost packet of `samples` device samples from the in-band FEC of the packet
    /// after it (`next_payload`, Opus LBRR, RFC 7587 §3.3) with the decoder of `pt`.
    /// `Ok(false)` when the codec has no FEC or the decoder does not exist yet.
    pub fn recover(
        &mut self,
        pt: u8,
        codec: Codec,
        next_payload: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<bool, CodecError> {
        let device_rate = self.device_rate;
        let codec_samples =
            (samples as u64 * u64::from(codec.audio_rate()) / u64::from(device_rate)) as usize;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let res = match self.decoder_for(pt, codec) {
            Some(dec) => dec.decode_fec(next_payload, codec_samples, &mut scratch),
            None => Ok(false),
        };
        if matches!(res, Ok(true)) {
            resample_linear(&scratch, codec.audio_rate(), device_rate, out);
        }
        self.scratch = scratch;
        res
    }
}

#[cfg(test)]
mod clib_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_makes_an_encoder_and_a_decoder() {
        for c in Codec::ALL {
            let mut enc = new_encoder(c, &CodecConfig::default()).unwrap();
            let mut dec = new_decoder(c).unwrap();
            let pcm = vec![0i16; c.frame_samples(20)];
            let mut bytes = Vec::new();
            enc.encode(&pcm, &mut bytes).unwrap();
            assert!(!bytes.is_empty(), "{c:?}");
            let mut out = Vec::new();
            dec.decode(&bytes, &mut out).unwrap();
            assert_eq!(out.len(), c.frame_samples(20), "{c:?}");
        }
    }

    #[test]
    fn resampling_doubles_and_halves_lengths() {
        let input: Vec<i16> = (0..160).map(|i| i as i16 * 10).collect();
        let mut up = Vec::new();
        resample_linear(&input, 8000, 16000, &mut up);
        assert_eq!(up.len(), 320);
        assert_eq!(up[2], input[1]);
        assert_eq!(up[3], (input[1] + input[2]) / 2);
        let mut down = Vec::new();
        resample_linear(&up, 16000, 8000, &mut down);
        assert_eq!(down, input);
    }
}
