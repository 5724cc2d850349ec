//! ITU-T G.722 (09/2012) 7 kHz audio coding within 64 kbit/s: sub-band ADPCM (SB-ADPCM), mode 1
//! (64 kbit/s: 6 bits for the lower band, 2 bits for the higher band per 125 µs).
//!
//! Structure (G.722 §3, figures 3 and 4):
//! - a 24-tap quadrature mirror filter (QMF, §3.2/§4.4) splits 16 kHz input into two 8 kHz
//!   sub-bands and merges them again at the receiver;
//! - the lower sub-band is coded by 6-bit adaptive differential PCM (blocks 1L-4L, §3.3-§3.6),
//!   whose predictor and scale factor are driven by the 4 most significant bits only, so the
//!   bit-rate modes 2/3 stay decodable;
//! - the higher sub-band is coded by 2-bit ADPCM (blocks 1H-4H, §3.4-§3.6);
//! - both use the same adaptive predictor (block 4: two poles, six zeros, sign-sign adaptation).
//!
//! Input and output are 16-bit linear PCM at 16 kHz. The QMF works with 15-bit sub-band signals
//! (the standard's 14-bit converter range plus one bit of headroom, limited to ±16384 as in
//! §3.6). RTP packing (RFC 3551 §4.5.2): one octet per 125 µs, the 2 higher-band bits in the most
//! significant positions; the RTP clock runs at 8000 Hz although the audio is sampled at 16 kHz.
//!
//! This is an implementation from the functional description; it has not been checked against
//! the ITU-T test sequences (they are not freely available here). Interoperability is checked
//! against baresip's G.722 in `tests/interop/tests/codecs_baresip.rs`.

/// QMF coefficients h0..h23 (G.722 table 11), scaled by 2^13.
const QMF: [i32; 24] = [
    3, -11, -11, 53, 12, -156, 32, 362, -210, -805, 951, 3876, 3876, 951, -805, -210, 362, 32,
    -156, 12, 53, -11, -11, 3,
];

/// Lower sub-band quantiser decision levels (table 12, "Q6"), scaled by 2^12 relative to the
/// scale factor.
const Q6: [i32; 30] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919,
];
/// 6-bit codes for negative differences, by quantiser interval (table 12).
const ILN: [u8; 31] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4,
];
/// 6-bit codes for positive differences, by quantiser interval (table 12).
const ILP: [u8; 31] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32,
];
/// 4-bit inverse quantiser outputs (table 14, "QM4"), used by the predictor loop.
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// 6-bit inverse quantiser outputs (table 13, "QM6"), used for the 64 kbit/s decoder output.
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Lower sub-band log scale factor multipliers (table 15, "WL") by magnitude class.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// 4-bit code to magnitude class (table 15, "RIL" -> "IL4").
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Antilog table for the scale factors (table 17, "ILB").
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Higher sub-band 2-bit inverse quantiser outputs (table 16, "QM2").
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// Higher sub-band log scale factor multipliers (table 16, "WH").
const WH: [i32; 3] = [0, -214, 798];
/// 2-bit code to magnitude class (table 16).
const RH2: [usize; 4] = [2, 1, 2, 1];
/// Higher sub-band codes for negative / positive differences by interval.
const IHN: [u8; 3] = [0, 1, 0];
const IHP: [u8; 3] = [0, 3, 2];

/// Samples of 16 kHz audio per RTP octet.
pub const SAMPLES_PER_OCTET: usize = 2;

#[inline]
fn sat16(v: i32) -> i32 {
    v.clamp(-32768, 32767)
}

/// "Sign" as the standard defines it for the adaptation logic: 0 counts as positive.
#[inline]
fn negative(v: i32) -> bool {
    v < 0
}

/// The adaptive predictor and scale factor of one sub-band (blocks 2-4 of §3).
#[derive(Debug, Clone)]
struct Band {
    /// Predicted signal s (SL / SH).
    s: i32,
    /// Zero-section part of the prediction (SZL / SZH).
    sz: i32,
    /// Reconstructed signal history r(n-1), r(n-2).
    r: [i32; 2],
    /// Pole coefficients a1, a2.
    a: [i32; 2],
    /// Partially reconstructed signal p(n-1), p(n-2).
    p: [i32; 2],
    /// Quantised difference history d(n-1)..d(n-6).
    d: [i32; 6],
    /// Zero coefficients b1..b6.
    b: [i32; 6],
    /// Log scale factor (NBL / NBH).
    nb: i32,
    /// Scale factor (DETL / DETH).
    det: i32,
}

impl Band {
    fn new(det: i32) -> Band {
        Band {
            s: 0,
            sz: 0,
            r: [0; 2],
            a: [0; 2],
            p: [0; 2],
            d: [0; 6],
            b: [0; 6],
            nb: 0,
            det,
        }
    }

    /// Block 3 (§3.5): scale factor from the log scale factor. `shift_base` is 8 for the lower
    /// band and 10 for the higher band.
    fn scale(&mut self, shift_base: i32) {
        let frac = ((self.nb >> 6) & 31) as usize;
        let shift = shift_base - (self.nb >> 11);
        let v = if shift < 0 {
            ILB[frac] << -shift
        } else {
            ILB[frac] >> shift
        };
        self.det = v << 2;
    }

    /// Block 4 (§3.6): predictor adaptation with the new quantised difference `d`, then the
    /// prediction for the next sample.
    fn adapt(&mut self, d: i32) {
        // Partially reconstructed signal and reconstructed signal.
        let p = sat16(d + self.sz);
        let r = sat16(self.s + d);

        // UPPOL2: second pole coefficient.
        let mut wd2 = (self.a[0] << 2).clamp(-32768, 32767);
        if negative(p) == negative(self.p[0]) {
            wd2 = -wd2;
        }
        wd2 = wd2.clamp(-32768, 32767) >> 7;
        let wd3 = if negative(p) == negative(self.p[1]) {
            128
        } else {
            -128
        };
        let a2 = (wd2 + wd3 + ((self.a[1] * 32512) >> 15)).clamp(-12288, 12288);

        // UPPOL1: first pole coefficient, kept within the stability triangle.
        let wd1 = if negative(p) == negative(self.p[0]) {
            192
        } else {
            -192
        };
        let lim = 15360 - a2;
        let a1 = (wd1 + ((self.a[0] * 32640) >> 15)).clamp(-lim, lim);

        // UPZERO: zero coefficients, sign-sign adaptation with leakage.
        let step = if d == 0 { 0 } else { 128 };
        for (b, &dh) in self.b.iter_mut().zip(self.d.iter()) {
            let g = if negative(d) == negative(dh) {
                step
            } else {
                -step
            };
            *b = g + ((*b * 32640) >> 15);
        }

        // DELAYA: shift the histories.
        self.d.rotate_right(1);
        self.d[0] = d;
        self.a = [a1, a2];
        self.r = [r, self.r[0]];
        self.p = [p, self.p[0]];

        // FILTEP / FILTEZ / PREDIC: the next prediction.
        let sp = ((self.a[0] * (self.r[0] << 1)) >> 15) + ((self.a[1] * (self.r[1] << 1)) >> 15);
        let sp = sat16(sp);
        let mut sz = 0i32;
        for (b, d) in self.b.iter().zip(self.d.iter()) {
            sz += (b * (d << 1)) >> 15;
        }
        self.sz = sat16(sz);
        self.s = sat16(sp + self.sz);
    }

    /// Lower band: log scale factor update (LOGSCL) and the new scale factor (SCALEL).
    fn update_scale_low(&mut self, il4: usize) {
        self.nb = (((self.nb * 127) >> 7) + WL[RL42[il4]]).clamp(0, 18432);
        self.scale(8);
    }

    /// Higher band: LOGSCH and SCALEH.
    fn update_scale_high(&mut self, ih: usize) {
        self.nb = (((self.nb * 127) >> 7) + WH[RH2[ih]]).clamp(0, 22528);
        self.scale(10);
    }
}

/// QMF delay line: the last 24 input samples (newest last).
#[derive(Debug, Clone)]
struct Qmf {
    x: [i32; 24],
}

impl Qmf {
    fn new() -> Qmf {
        Qmf { x: [0; 24] }
    }

    fn push(&mut self, v: i32) {
        self.x.copy_within(1.., 0);
        self.x[23] = v;
    }

    /// Sum of the even-indexed and of the odd-indexed products, the newest sample weighted by
    /// h0 and the oldest by h23.
    fn sums(&self) -> (i32, i32) {
        let mut even = 0i32;
        let mut odd = 0i32;
        for i in 0..12 {
            even += QMF[2 * i] * self.x[23 - 2 * i];
            odd += QMF[2 * i + 1] * self.x[22 - 2 * i];
        }
        (even, odd)
    }
}

/// G.722 encoder state for one direction of one call.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    qmf: Qmf,
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    /// A fresh encoder in the reset state of §3.
    pub fn new() -> G722Encoder {
        G722Encoder {
            qmf: Qmf::new(),
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Encode 16 kHz PCM: one octet per two samples (an odd last sample is dropped).
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        out.reserve(pcm.len() / 2);
        for pair in pcm.chunks_exact(2) {
            // Transmit QMF (§3.2): two input samples in, one sample of each sub-band out.
            self.qmf.push(i32::from(pair[0]));
            self.qmf.push(i32::from(pair[1]));
            let (even, odd) = self.qmf.sums();
            let xl = ((even + odd) >> 14).clamp(-16384, 16383);
            let xh = ((even - odd) >> 14).clamp(-16384, 16383);
            let il = self.encode_low(xl);
            let ih = self.encode_high(xh);
            out.push((ih << 6) | il);
        }
    }

    fn encode_low(&mut self, xl: i32) -> u8 {
        let band = &mut self.low;
        // SUBTRA and QUANTL (§3.3).
        let el = sat16(xl - band.s);
        let wd = if el < 0 { -(el + 1) } else { el };
        let mut mil = 1usize;
        while mil < Q6.len() {
            if wd < (Q6[mil] * band.det) >> 12 {
                break;
            }
            mil += 1;
        }
        let il = if el < 0 { ILN[mil] } else { ILP[mil] };
        // INVQAL: 4-bit inverse quantiser for the predictor loop.
        let il4 = usize::from(il >> 2);
        let dl = (band.det * QM4[il4]) >> 15;
        band.update_scale_low(il4);
        band.adapt(dl);
        il
    }

    fn encode_high(&mut self, xh: i32) -> u8 {
        let band = &mut self.high;
        // SUBTRA and QUANTH (§3.4).
        let eh = sat16(xh - band.s);
        let wd = if eh < 0 { -(eh + 1) } else { eh };
        let mih = if wd >= (564 * band.det) >> 12 { 2 } else { 1 };
        let ih = if eh < 0 { IHN[mih] } else { IHP[mih] };
        let dh = (band.det * QM2[usize::from(ih)]) >> 15;
        band.update_scale_high(usize::from(ih));
        band.adapt(dh);
        ih
    }
}

/// G.722 decoder state for one direction of one call.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    /// Receive QMF delay lines for the difference and the sum signals (newest last).
    xd: [i32; 12],
    xs: [i32; 12],
    low: Band,
    high: Band,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A fresh decoder in the reset state of §4.
    pub fn new() -> G722Decoder {
        G722Decoder {
            xd: [0; 12],
            xs: [0; 12],
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Decode octets into 16 kHz PCM: two samples per octet.
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<i16>) {
        out.reserve(data.len() * 2);
        for &octet in data {
            let ilr = usize::from(octet & 0x3F);
            let ih = usize::from(octet >> 6);

            // Lower band (§4.2): 6-bit output, predictor driven by the 4-bit code.
            let low = &mut self.low;
            let dl6 = (low.det * QM6[ilr]) >> 15;
            let rl = (low.s + dl6).clamp(-16384, 16383);
            let il4 = ilr >> 2;
            let dl = (low.det * QM4[il4]) >> 15;
            low.update_scale_low(il4);
            low.adapt(dl);

            // Higher band (§4.3).
            let high = &mut self.high;
            let dh = (high.det * QM2[ih]) >> 15;
            let rh = (high.s + dh).clamp(-16384, 16383);
            high.update_scale_high(ih);
            high.adapt(dh);

            // Receive QMF (§4.4): two output samples per sub-band sample pair.
            self.xd.copy_within(1.., 0);
            self.xd[11] = rl - rh;
            self.xs.copy_within(1.., 0);
            self.xs[11] = rl + rh;
            let mut out1 = 0i32;
            let mut out2 = 0i32;
            for i in 0..12 {
                out1 += QMF[2 * i] * self.xd[11 - i];
                out2 += QMF[2 * i + 1] * self.xs[11 - i];
            }
            out.push((out1 >> 11).clamp(-32768, 32767) as i16);
            out.push((out2 >> 11).clamp(-32768, 32767) as i16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_encodes_to_a_stable_pattern_and_decodes_to_near_silence() {
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let mut bytes = Vec::new();
        enc.encode(&[0i16; 320], &mut bytes);
        assert_eq!(bytes.len(), 160);
        let mut pcm = Vec::new();
        dec.decode(&bytes, &mut pcm);
        assert_eq!(pcm.len(), 320);
        assert!(pcm.iter().all(|s| s.abs() < 64), "{pcm:?}");
    }

    #[test]
    fn full_scale_square_wave_never_panics_and_stays_bounded() {
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        let pcm: Vec<i16> = (0..16000)
            .map(|i| if (i / 7) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let mut bytes = Vec::new();
        enc.encode(&pcm, &mut bytes);
        let mut out = Vec::new();
        dec.decode(&bytes, &mut out);
        assert_eq!(out.len(), pcm.len());
    }

    #[test]
    fn every_octet_decodes_without_panic() {
        let mut dec = G722Decoder::new();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let mut out = Vec::new();
        dec.decode(&bytes, &mut out);
        assert_eq!(out.len(), 8192);
    }
}
