//! Speex narrowband, wideband and ultra-wideband (CELP) through Debian's `libspeex`.
//!
//! RTP format (RFC 5574): dynamic payload type, `a=rtpmap:<pt> speex/8000` (narrowband),
//! `speex/16000` (wideband) or `speex/32000` (ultra-wideband); the RTP clock is the audio rate.
//! A frame is 20 ms (160, 320 or 640 samples); a payload holds one or more frames bit-packed
//! back to back, padded to an octet with the terminator pattern (RFC 5574 §3.3). We send one
//! frame per 20 ms packet and decode up to [`MAX_FRAMES`] frames from one payload. The decoder
//! conceals lost packets itself (libspeex packet-loss concealment).
//!
//! All `unsafe` for libspeex is in the private [`ffi`] module below; the public types are safe.

use super::{AudioDecoder, AudioEncoder, CodecError};

/// Most frames we decode from one payload (120 ms), bounding work per packet.
pub const MAX_FRAMES: usize = 6;
/// Longest payload we read (a 120 ms ultra-wideband payload at the highest quality is well
/// below this).
const MAX_PAYLOAD: usize = 2048;
/// Default encoder quality (0..=10): 8 gives 15 kbit/s narrowband, 27.8 kbit/s wideband.
pub const DEFAULT_QUALITY: i32 = 8;

/// The three Speex modes (RFC 5574 §6: by RTP clock rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeexMode {
    /// 8 kHz, 160 samples per frame.
    Narrow,
    /// 16 kHz, 320 samples per frame.
    Wide,
    /// 32 kHz, 640 samples per frame.
    UltraWide,
}

impl SpeexMode {
    /// The audio rate and RTP clock.
    pub fn rate(self) -> u32 {
        match self {
            SpeexMode::Narrow => 8000,
            SpeexMode::Wide => 16_000,
            SpeexMode::UltraWide => 32_000,
        }
    }

    /// Samples in one 20 ms frame.
    pub fn frame_samples(self) -> usize {
        self.rate() as usize / 50
    }

    fn id(self) -> std::ffi::c_int {
        match self {
            SpeexMode::Narrow => 0,
            SpeexMode::Wide => 1,
            SpeexMode::UltraWide => 2,
        }
    }
}

#[allow(unsafe_code)]
mod ffi {
    //! The libspeex calls (`speex/speex.h`, `speex/speex_bits.h`).

    use std::ffi::{c_char, c_int, c_void};
    use std::ptr::NonNull;

    #[repr(C)]
    pub(super) struct ModeDef {
        _private: [u8; 0],
    }

    /// `SpeexBits` from `speex_bits.h` (layout copied field by field).
    #[repr(C)]
    struct SpeexBits {
        chars: *mut c_char,
        nb_bits: c_int,
        char_ptr: c_int,
        bit_ptr: c_int,
        owner: c_int,
        overflow: c_int,
        buf_size: c_int,
        reserved1: c_int,
        reserved2: *mut c_void,
    }

    const SPEEX_SET_ENH: c_int = 0;
    const SPEEX_GET_FRAME_SIZE: c_int = 3;
    const SPEEX_SET_QUALITY: c_int = 4;

    #[link(name = "speex")]
    extern "C" {
        fn speex_lib_get_mode(mode: c_int) -> *const ModeDef;
        fn speex_encoder_init(mode: *const ModeDef) -> *mut c_void;
        fn speex_encoder_destroy(state: *mut c_void);
        fn speex_encoder_ctl(state: *mut c_void, request: c_int, ptr: *mut c_void) -> c_int;
        fn speex_encode_int(state: *mut c_void, input: *mut i16, bits: *mut SpeexBits) -> c_int;
        fn speex_decoder_init(mode: *const ModeDef) -> *mut c_void;
        fn speex_decoder_destroy(state: *mut c_void);
        fn speex_decoder_ctl(state: *mut c_void, request: c_int, ptr: *mut c_void) -> c_int;
        fn speex_decode_int(state: *mut c_void, bits: *mut SpeexBits, out: *mut i16) -> c_int;
        fn speex_bits_init(bits: *mut SpeexBits);
        fn speex_bits_destroy(bits: *mut SpeexBits);
        fn speex_bits_reset(bits: *mut SpeexBits);
        fn speex_bits_read_from(bits: *mut SpeexBits, bytes: *const c_char, len: c_int);
        fn speex_bits_write(bits: *mut SpeexBits, bytes: *mut c_char, max_len: c_int) -> c_int;
        fn speex_bits_remaining(bits: *mut SpeexBits) -> c_int;
    }

    /// An owned, initialised `SpeexBits` (boxed so its address never changes).
    struct Bits(Box<SpeexBits>);

    impl Bits {
        fn new() -> Bits {
            let mut b = Box::new(SpeexBits {
                chars: std::ptr::null_mut(),
                nb_bits: 0,
                char_ptr: 0,
                bit_ptr: 0,
                owner: 0,
                overflow: 0,
                buf_size: 0,
                reserved1: 0,
                reserved2: std::ptr::null_mut(),
            });
            // SAFETY: `b` is a valid, writable SpeexBits; speex_bits_init allocates its buffer.
            unsafe { speex_bits_init(&mut *b) };
            Bits(b)
        }
    }

    impl Drop for Bits {
        fn drop(&mut self) {
            // SAFETY: initialised by speex_bits_init, destroyed exactly once.
            unsafe { speex_bits_destroy(&mut *self.0) }
        }
    }

    fn mode_ptr(id: c_int) -> Option<*const ModeDef> {
        // SAFETY: speex_lib_get_mode returns a pointer to a static mode table, or NULL for an
        // unknown id (ids 0..=2 exist).
        let p = unsafe { speex_lib_get_mode(id) };
        (!p.is_null()).then_some(p)
    }

    /// A speex encoder state with its bit buffer.
    pub(super) struct Encoder {
        state: NonNull<c_void>,
        bits: Bits,
        frame: usize,
    }

    /// A speex decoder state with its bit buffer.
    pub(super) struct Decoder {
        state: NonNull<c_void>,
        bits: Bits,
        frame: usize,
    }

    // SAFETY: encoder/decoder states and bit buffers are heap memory owned by the value and
    // used only through `&mut self`; libspeex keeps no global mutable state.
    unsafe impl Send for Encoder {}
    // SAFETY: as for Encoder.
    unsafe impl Send for Decoder {}

    impl Encoder {
        pub(super) fn new(mode: c_int, quality: c_int) -> Option<Encoder> {
            let m = mode_ptr(mode)?;
            // SAFETY: `m` is a valid static mode; NULL result is turned into None.
            let state = NonNull::new(unsafe { speex_encoder_init(m) })?;
            let mut q = quality.clamp(0, 10);
            let mut frame: c_int = 0;
            // SAFETY: valid state; SET_QUALITY reads one c_int, GET_FRAME_SIZE writes one.
            unsafe {
                speex_encoder_ctl(
                    state.as_ptr(),
                    SPEEX_SET_QUALITY,
                    (&mut q as *mut c_int).cast(),
                );
                speex_encoder_ctl(
                    state.as_ptr(),
                    SPEEX_GET_FRAME_SIZE,
                    (&mut frame as *mut c_int).cast(),
                );
            }
            let enc = Encoder {
                state,
                bits: Bits::new(),
                frame: usize::try_from(frame).unwrap_or(0),
            };
            (enc.frame > 0).then_some(enc)
        }

        pub(super) fn frame_size(&self) -> usize {
            self.frame
        }

        /// Encode whole frames of `pcm` (length a multiple of the frame size, checked by the
        /// caller) into one payload appended to `out`.
        pub(super) fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
            let mut buf = vec![0i16; self.frame];
            // SAFETY: valid bit buffer.
            unsafe { speex_bits_reset(&mut *self.bits.0) };
            for chunk in pcm.chunks_exact(self.frame) {
                buf.copy_from_slice(chunk);
                // SAFETY: valid state and bits; libspeex reads exactly `frame` samples from
                // `buf` (a scratch copy: the C signature is not const).
                unsafe {
                    speex_encode_int(self.state.as_ptr(), buf.as_mut_ptr(), &mut *self.bits.0)
                };
            }
            let mut bytes = [0u8; 2048];
            // SAFETY: valid bits; speex_bits_write writes at most `max_len` octets to `bytes`
            // and returns how many it wrote.
            let n = unsafe {
                speex_bits_write(
                    &mut *self.bits.0,
                    bytes.as_mut_ptr().cast(),
                    bytes.len() as c_int,
                )
            };
            let n = usize::try_from(n).unwrap_or(0).min(bytes.len());
            out.extend_from_slice(bytes.get(..n).unwrap_or(&[]));
        }
    }

    impl Drop for Encoder {
        fn drop(&mut self) {
            // SAFETY: from speex_encoder_init, destroyed exactly once.
            unsafe { speex_encoder_destroy(self.state.as_ptr()) }
        }
    }

    /// Result of decoding one frame.
    pub(super) enum Decoded {
        /// A frame was written.
        Frame,
        /// End of the payload (terminator or no whole frame left).
        End,
        /// The bit stream is corrupt.
        Corrupt,
    }

    impl Decoder {
        pub(super) fn new(mode: c_int) -> Option<Decoder> {
            let m = mode_ptr(mode)?;
            // SAFETY: `m` is a valid static mode; NULL result is turned into None.
            let state = NonNull::new(unsafe { speex_decoder_init(m) })?;
            let mut enh: c_int = 1;
            let mut frame: c_int = 0;
            // SAFETY: valid state; SET_ENH reads one c_int, GET_FRAME_SIZE writes one.
            unsafe {
                speex_decoder_ctl(
                    state.as_ptr(),
                    SPEEX_SET_ENH,
                    (&mut enh as *mut c_int).cast(),
                );
                speex_decoder_ctl(
                    state.as_ptr(),
                    SPEEX_GET_FRAME_SIZE,
                    (&mut frame as *mut c_int).cast(),
                );
            }
            let dec = Decoder {
                state,
                bits: Bits::new(),
                frame: usize::try_from(frame).unwrap_or(0),
            };
            (dec.frame > 0).then_some(dec)
        }

        pub(super) fn frame_size(&self) -> usize {
            self.frame
        }

        /// Load a payload (at most a few KiB, checked by the caller) into the bit buffer.
        pub(super) fn load(&mut self, payload: &[u8]) {
            let len = c_int::try_from(payload.len()).unwrap_or(0);
            // SAFETY: valid bits; libspeex copies `len` octets from `payload` into its own
            // buffer (growing it when needed).
            unsafe { speex_bits_read_from(&mut *self.bits.0, payload.as_ptr().cast(), len) };
        }

        /// Decode the next frame of the loaded payload into `pcm` (`frame_size` samples).
        pub(super) fn next(&mut self, pcm: &mut [i16]) -> Decoded {
            if pcm.len() < self.frame {
                return Decoded::Corrupt;
            }
            // SAFETY: valid bits.
            let left = unsafe { speex_bits_remaining(&mut *self.bits.0) };
            // A frame needs at least its 5 mode bits; fewer means padding (RFC 5574 §3.3).
            if left < 5 {
                return Decoded::End;
            }
            // SAFETY: valid state and bits; `pcm` has room for the `frame` samples written.
            // libspeex bounds its reads by the bit count and flags overflow.
            let r = unsafe {
                speex_decode_int(self.state.as_ptr(), &mut *self.bits.0, pcm.as_mut_ptr())
            };
            // SAFETY: valid bits; negative when the decoder read past the end.
            let after = unsafe { speex_bits_remaining(&mut *self.bits.0) };
            match r {
                0 if after >= 0 => Decoded::Frame,
                -1 => Decoded::End,
                _ => Decoded::Corrupt,
            }
        }

        /// Packet-loss concealment: one frame extrapolated from the past.
        pub(super) fn conceal(&mut self, pcm: &mut [i16]) -> bool {
            if pcm.len() < self.frame {
                return false;
            }
            // SAFETY: valid state; a NULL bit buffer asks libspeex for concealment and it
            // writes `frame` samples to `pcm`.
            unsafe {
                speex_decode_int(self.state.as_ptr(), std::ptr::null_mut(), pcm.as_mut_ptr())
            };
            true
        }
    }

    impl Drop for Decoder {
        fn drop(&mut self) {
            // SAFETY: from speex_decoder_init, destroyed exactly once.
            unsafe { speex_decoder_destroy(self.state.as_ptr()) }
        }
    }
}

/// Speex encoder for one call.
pub struct SpeexEncoder {
    enc: ffi::Encoder,
}

impl std::fmt::Debug for SpeexEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeexEncoder").finish_non_exhaustive()
    }
}

impl SpeexEncoder {
    /// A new encoder for `mode` at quality `quality` (0..=10, see [`DEFAULT_QUALITY`]).
    pub fn new(mode: SpeexMode, quality: i32) -> Result<SpeexEncoder, CodecError> {
        let enc = ffi::Encoder::new(mode.id(), quality)
            .ok_or_else(|| CodecError::Library("speex_encoder_init failed".into()))?;
        Ok(SpeexEncoder { enc })
    }
}

impl AudioEncoder for SpeexEncoder {
    /// `pcm` must be a whole number of frames (at most [`MAX_FRAMES`]).
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let f = self.enc.frame_size();
        if pcm.is_empty() || pcm.len() % f != 0 || pcm.len() / f > MAX_FRAMES {
            return Err(CodecError::Library(format!(
                "Speex encodes 1..={MAX_FRAMES} frames of {f} samples, got {}",
                pcm.len()
            )));
        }
        self.enc.encode(pcm, out);
        Ok(())
    }
}

/// Speex decoder for one call.
pub struct SpeexDecoder {
    dec: ffi::Decoder,
    buf: Vec<i16>,
}

impl std::fmt::Debug for SpeexDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeexDecoder").finish_non_exhaustive()
    }
}

impl SpeexDecoder {
    /// A new decoder for `mode` (perceptual enhancement on).
    pub fn new(mode: SpeexMode) -> Result<SpeexDecoder, CodecError> {
        let dec = ffi::Decoder::new(mode.id())
            .ok_or_else(|| CodecError::Library("speex_decoder_init failed".into()))?;
        let buf = vec![0; dec.frame_size()];
        Ok(SpeexDecoder { dec, buf })
    }
}

impl AudioDecoder for SpeexDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            return Err(CodecError::Corrupt(format!(
                "Speex payload of {} octets",
                payload.len()
            )));
        }
        self.dec.load(payload);
        let start = out.len();
        for _ in 0..MAX_FRAMES {
            match self.dec.next(&mut self.buf) {
                ffi::Decoded::Frame => out.extend_from_slice(&self.buf),
                ffi::Decoded::End => break,
                ffi::Decoded::Corrupt => {
                    out.truncate(start);
                    return Err(CodecError::Corrupt("Speex bit stream".into()));
                }
            }
        }
        if out.len() == start {
            return Err(CodecError::Corrupt("Speex payload without a frame".into()));
        }
        Ok(())
    }

    /// libspeex concealment, one 20 ms frame at a time.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        let f = self.dec.frame_size();
        let start = out.len();
        for _ in 0..samples.div_ceil(f).min(MAX_FRAMES) {
            if !self.dec.conceal(&mut self.buf) {
                break;
            }
            out.extend_from_slice(&self.buf);
        }
        out.truncate(start + samples);
        Ok(())
    }
}
