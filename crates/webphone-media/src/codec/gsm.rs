//! GSM 06.10 full-rate speech (13 kbit/s RPE-LTP) through Debian's `libgsm`.
//!
//! RTP format (RFC 3551 §4.5.8): static payload type 3, 8000 Hz clock, one 20 ms frame of 160
//! samples is 33 octets (the 4-bit signature `0xD` followed by 260 bits of parameters); a
//! packet carries a whole number of frames.
//!
//! All `unsafe` for libgsm is in the private [`ffi`] module below; the public types are safe.

use super::{AudioDecoder, AudioEncoder, CodecError};

/// PCM samples in one GSM frame (20 ms at 8 kHz).
pub const FRAME_SAMPLES: usize = 160;
/// Octets in one GSM frame (RFC 3551 §4.5.8).
pub const FRAME_BYTES: usize = 33;
/// Most frames we decode from one payload (120 ms), bounding work per packet.
const MAX_FRAMES: usize = 6;

#[allow(unsafe_code)]
mod ffi {
    //! The libgsm calls (`gsm.h`): an opaque state per direction, fixed-size frames.

    use std::ffi::c_int;
    use std::ptr::NonNull;

    #[repr(C)]
    pub(super) struct GsmState {
        _private: [u8; 0],
    }

    #[link(name = "gsm")]
    extern "C" {
        fn gsm_create() -> *mut GsmState;
        fn gsm_destroy(g: *mut GsmState);
        fn gsm_encode(g: *mut GsmState, src: *mut i16, dst: *mut u8);
        fn gsm_decode(g: *mut GsmState, src: *mut u8, dst: *mut i16) -> c_int;
    }

    /// One libgsm state (encoder or decoder; libgsm uses the same type for both).
    pub(super) struct Gsm(NonNull<GsmState>);

    // SAFETY: the state is plain heap memory owned by this value and used only through
    // `&mut self`; libgsm keeps no thread-local or global state.
    unsafe impl Send for Gsm {}

    impl Gsm {
        pub(super) fn new() -> Option<Gsm> {
            // SAFETY: gsm_create takes no arguments and returns a fresh state or NULL.
            NonNull::new(unsafe { gsm_create() }).map(Gsm)
        }

        pub(super) fn encode(&mut self, pcm: &[i16; 160], frame: &mut [u8; 33]) {
            let mut src = *pcm;
            // SAFETY: the state is valid (NonNull from gsm_create, not yet destroyed); libgsm
            // reads exactly 160 samples from `src` (a copy, as the C signature is not const)
            // and writes exactly 33 octets to `frame`.
            unsafe { gsm_encode(self.0.as_ptr(), src.as_mut_ptr(), frame.as_mut_ptr()) }
        }

        /// `false` when libgsm rejects the frame (wrong signature nibble).
        pub(super) fn decode(&mut self, frame: &[u8; 33], pcm: &mut [i16; 160]) -> bool {
            let mut src = *frame;
            // SAFETY: valid state as above; libgsm reads exactly 33 octets and writes exactly
            // 160 samples, whatever the octets contain (it checks the signature itself).
            unsafe { gsm_decode(self.0.as_ptr(), src.as_mut_ptr(), pcm.as_mut_ptr()) == 0 }
        }
    }

    impl Drop for Gsm {
        fn drop(&mut self) {
            // SAFETY: the state came from gsm_create and is destroyed exactly once.
            unsafe { gsm_destroy(self.0.as_ptr()) }
        }
    }
}

fn create() -> Result<ffi::Gsm, CodecError> {
    ffi::Gsm::new().ok_or_else(|| CodecError::Library("gsm_create failed".into()))
}

/// GSM 06.10 encoder for one call.
pub struct GsmEncoder {
    state: ffi::Gsm,
}

impl std::fmt::Debug for GsmEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GsmEncoder").finish_non_exhaustive()
    }
}

impl GsmEncoder {
    /// A new encoder.
    pub fn new() -> Result<GsmEncoder, CodecError> {
        Ok(GsmEncoder { state: create()? })
    }
}

impl AudioEncoder for GsmEncoder {
    /// `pcm` must be a whole number of 160-sample frames.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if pcm.is_empty() || pcm.len() % FRAME_SAMPLES != 0 {
            return Err(CodecError::Library(format!(
                "GSM encodes multiples of {FRAME_SAMPLES} samples, got {}",
                pcm.len()
            )));
        }
        for chunk in pcm.chunks_exact(FRAME_SAMPLES) {
            let mut frame = [0u8; FRAME_BYTES];
            if let Ok(samples) = <&[i16; FRAME_SAMPLES]>::try_from(chunk) {
                self.state.encode(samples, &mut frame);
            }
            out.extend_from_slice(&frame);
        }
        Ok(())
    }
}

/// GSM 06.10 decoder for one call.
pub struct GsmDecoder {
    state: ffi::Gsm,
}

impl std::fmt::Debug for GsmDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GsmDecoder").finish_non_exhaustive()
    }
}

impl GsmDecoder {
    /// A new decoder.
    pub fn new() -> Result<GsmDecoder, CodecError> {
        Ok(GsmDecoder { state: create()? })
    }
}

impl AudioDecoder for GsmDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() || payload.len() % FRAME_BYTES != 0 {
            return Err(CodecError::Corrupt(format!(
                "GSM payload of {} octets is not a multiple of {FRAME_BYTES}",
                payload.len()
            )));
        }
        if payload.len() / FRAME_BYTES > MAX_FRAMES {
            return Err(CodecError::Corrupt(format!(
                "GSM payload of {} frames",
                payload.len() / FRAME_BYTES
            )));
        }
        let start = out.len();
        for chunk in payload.chunks_exact(FRAME_BYTES) {
            let mut pcm = [0i16; FRAME_SAMPLES];
            let ok = <&[u8; FRAME_BYTES]>::try_from(chunk)
                .is_ok_and(|frame| self.state.decode(frame, &mut pcm));
            if !ok {
                out.truncate(start);
                return Err(CodecError::Corrupt("GSM frame signature is not 0xD".into()));
            }
            out.extend_from_slice(&pcm);
        }
        Ok(())
    }
}
