//! ITU-T G.729 Annex A (8 kbit/s CS-ACELP) through Debian's `libbcg729`.
//!
//! RTP format (RFC 3551 §4.5.6): static payload type 18, 8000 Hz clock, one 10 ms frame of 80
//! samples is 10 octets; a packet carries whole frames, optionally followed by one 2-octet
//! Annex B SID frame (comfort noise). We never send Annex B (`a=fmtp:18 annexb=no`,
//! RFC 4856 §2.1.9) but decode SID frames when a peer sends them anyway. With 20 ms packets a
//! payload holds two frames (the `codecframecount` default for G.729).
//!
//! All `unsafe` for libbcg729 is in the private [`ffi`] module below; the public types are safe.

use super::{AudioDecoder, AudioEncoder, CodecError};

/// PCM samples in one G.729 frame (10 ms at 8 kHz).
pub const FRAME_SAMPLES: usize = 80;
/// Octets in one G.729 frame.
pub const FRAME_BYTES: usize = 10;
/// Octets in an Annex B SID frame (RFC 3551 §4.5.6).
pub const SID_BYTES: usize = 2;
/// Most frames we decode from one payload (120 ms), bounding work per packet.
const MAX_FRAMES: usize = 12;

#[allow(unsafe_code)]
mod ffi {
    //! The libbcg729 calls (`bcg729/encoder.h`, `bcg729/decoder.h`).

    use std::ptr::NonNull;

    #[repr(C)]
    pub(super) struct EncCtx {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub(super) struct DecCtx {
        _private: [u8; 0],
    }

    #[link(name = "bcg729")]
    extern "C" {
        fn initBcg729EncoderChannel(enable_vad: u8) -> *mut EncCtx;
        fn closeBcg729EncoderChannel(ctx: *mut EncCtx);
        fn bcg729Encoder(ctx: *mut EncCtx, input: *const i16, bits: *mut u8, len: *mut u8);
        fn initBcg729DecoderChannel() -> *mut DecCtx;
        fn closeBcg729DecoderChannel(ctx: *mut DecCtx);
        fn bcg729Decoder(
            ctx: *mut DecCtx,
            bits: *const u8,
            len: u8,
            frame_erasure: u8,
            sid_frame: u8,
            rfc3389_payload: u8,
            signal: *mut i16,
        );
    }

    /// A bcg729 encoder channel (VAD off: every frame is 10 octets).
    pub(super) struct Encoder(NonNull<EncCtx>);
    /// A bcg729 decoder channel.
    pub(super) struct Decoder(NonNull<DecCtx>);

    // SAFETY: each context is heap memory owned by its value, used only through `&mut self`;
    // bcg729 has no global mutable state.
    unsafe impl Send for Encoder {}
    // SAFETY: as for Encoder.
    unsafe impl Send for Decoder {}

    impl Encoder {
        pub(super) fn new() -> Option<Encoder> {
            // SAFETY: plain constructor; NULL (allocation failure) is turned into None.
            NonNull::new(unsafe { initBcg729EncoderChannel(0) }).map(Encoder)
        }

        /// Encode 80 samples; returns the octets written (10 with VAD off).
        pub(super) fn encode(&mut self, pcm: &[i16; 80], bits: &mut [u8; 10]) -> usize {
            let mut len: u8 = 0;
            // SAFETY: valid context; bcg729 reads 80 samples and writes at most 10 octets
            // (a full frame; 2 for SID and 0 only with VAD, which is off) and the length.
            unsafe { bcg729Encoder(self.0.as_ptr(), pcm.as_ptr(), bits.as_mut_ptr(), &mut len) };
            usize::from(len).min(10)
        }
    }

    impl Drop for Encoder {
        fn drop(&mut self) {
            // SAFETY: created by initBcg729EncoderChannel, closed exactly once.
            unsafe { closeBcg729EncoderChannel(self.0.as_ptr()) }
        }
    }

    /// What one call of the decoder gets.
    pub(super) enum Frame<'a> {
        /// A 10-octet speech frame.
        Speech(&'a [u8; 10]),
        /// A 2-octet Annex B SID frame.
        Sid(&'a [u8; 2]),
        /// A lost frame: conceal.
        Erased,
    }

    impl Decoder {
        pub(super) fn new() -> Option<Decoder> {
            // SAFETY: plain constructor; NULL is turned into None.
            NonNull::new(unsafe { initBcg729DecoderChannel() }).map(Decoder)
        }

        pub(super) fn decode(&mut self, frame: Frame<'_>, pcm: &mut [i16; 80]) {
            let zero = [0u8; 10];
            let (ptr, len, erased, sid) = match frame {
                Frame::Speech(b) => (b.as_ptr(), 10, 0, 0),
                Frame::Sid(b) => (b.as_ptr(), 2, 0, 1),
                Frame::Erased => (zero.as_ptr(), 10, 1, 0),
            };
            // SAFETY: valid context; `ptr` points to `len` readable octets (bcg729 reads 10
            // for speech or erasure, 2 for a SID frame) and `pcm` has room for the 80 samples
            // it writes.
            unsafe { bcg729Decoder(self.0.as_ptr(), ptr, len, erased, sid, 0, pcm.as_mut_ptr()) }
        }
    }

    impl Drop for Decoder {
        fn drop(&mut self) {
            // SAFETY: created by initBcg729DecoderChannel, closed exactly once.
            unsafe { closeBcg729DecoderChannel(self.0.as_ptr()) }
        }
    }
}

/// G.729A encoder for one call.
pub struct G729Encoder {
    enc: ffi::Encoder,
}

impl std::fmt::Debug for G729Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("G729Encoder").finish_non_exhaustive()
    }
}

impl G729Encoder {
    /// A new encoder (no Annex B).
    pub fn new() -> Result<G729Encoder, CodecError> {
        let enc = ffi::Encoder::new()
            .ok_or_else(|| CodecError::Library("initBcg729EncoderChannel failed".into()))?;
        Ok(G729Encoder { enc })
    }
}

impl AudioEncoder for G729Encoder {
    /// `pcm` must be a whole number of 80-sample (10 ms) frames.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if pcm.is_empty() || pcm.len() % FRAME_SAMPLES != 0 {
            return Err(CodecError::Library(format!(
                "G.729 encodes multiples of {FRAME_SAMPLES} samples, got {}",
                pcm.len()
            )));
        }
        for chunk in pcm.chunks_exact(FRAME_SAMPLES) {
            let mut bits = [0u8; FRAME_BYTES];
            if let Ok(samples) = <&[i16; FRAME_SAMPLES]>::try_from(chunk) {
                let n = self.enc.encode(samples, &mut bits);
                out.extend_from_slice(bits.get(..n).unwrap_or(&[]));
            }
        }
        Ok(())
    }
}

/// G.729 (A, with Annex B SID frames) decoder for one call.
pub struct G729Decoder {
    dec: ffi::Decoder,
}

impl std::fmt::Debug for G729Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("G729Decoder").finish_non_exhaustive()
    }
}

impl G729Decoder {
    /// A new decoder.
    pub fn new() -> Result<G729Decoder, CodecError> {
        let dec = ffi::Decoder::new()
            .ok_or_else(|| CodecError::Library("initBcg729DecoderChannel failed".into()))?;
        Ok(G729Decoder { dec })
    }
}

/// The number of 10 ms frames a G.729 payload stands for (speech frames plus a trailing SID),
/// or `None` when its length is not `10 * n` or `10 * n + 2` (RFC 3551 §4.5.6).
pub fn payload_frames(len: usize) -> Option<usize> {
    let speech = len / FRAME_BYTES;
    match len % FRAME_BYTES {
        0 if speech > 0 => Some(speech),
        SID_BYTES => Some(speech + 1),
        _ => None,
    }
}

impl AudioDecoder for G729Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let Some(frames) = payload_frames(payload.len()) else {
            return Err(CodecError::Corrupt(format!(
                "G.729 payload of {} octets is neither 10n nor 10n+2",
                payload.len()
            )));
        };
        if frames > MAX_FRAMES {
            return Err(CodecError::Corrupt(format!(
                "G.729 payload of {frames} frames"
            )));
        }
        let mut pcm = [0i16; FRAME_SAMPLES];
        let mut chunks = payload.chunks_exact(FRAME_BYTES);
        for chunk in chunks.by_ref() {
            if let Ok(b) = <&[u8; FRAME_BYTES]>::try_from(chunk) {
                self.dec.decode(ffi::Frame::Speech(b), &mut pcm);
                out.extend_from_slice(&pcm);
            }
        }
        if let Ok(sid) = <&[u8; SID_BYTES]>::try_from(chunks.remainder()) {
            self.dec.decode(ffi::Frame::Sid(sid), &mut pcm);
            out.extend_from_slice(&pcm);
        }
        Ok(())
    }

    /// G.729 §4.4 frame erasure concealment, 10 ms at a time.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        let mut pcm = [0i16; FRAME_SAMPLES];
        let start = out.len();
        for _ in 0..samples.div_ceil(FRAME_SAMPLES).min(MAX_FRAMES) {
            self.dec.decode(ffi::Frame::Erased, &mut pcm);
            out.extend_from_slice(&pcm);
        }
        out.truncate(start + samples);
        Ok(())
    }
}
