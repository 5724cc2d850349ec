//! ITU-T G.711 companding: µ-law (PCMU) and A-law (PCMA).
//!
//! Encoding follows the segment/quantisation tables of ITU-T G.711 (11/1988) tables 1a/2a:
//! µ-law works on 14-bit magnitudes with a bias of 33 (132 in 16-bit scale) and inverts all bits;
//! A-law works on 13-bit magnitudes and inverts the even bits (XOR 0x55). Decoding uses 256-entry
//! tables computed at compile time.

/// µ-law bias in 16-bit scale (G.711 table 2a: 33 in 14-bit scale, shifted by 2).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude that fits the µ-law range after adding the bias.
const ULAW_CLIP: i32 = 32635;

/// Encode one linear 16-bit sample to µ-law.
#[inline]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let mask: u8 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    if pcm > ULAW_CLIP {
        pcm = ULAW_CLIP;
    }
    pcm += ULAW_BIAS;
    // pcm is in 132..=32767: its highest set bit is bit 7..=14, which gives the segment 0..=7.
    let seg = (31 - (pcm as u32).leading_zeros()).saturating_sub(7);
    let mantissa = ((pcm >> (seg + 3)) & 0x0F) as u8;
    (((seg as u8) << 4) | mantissa) ^ mask
}

/// Encode one linear 16-bit sample to A-law.
#[inline]
pub fn linear_to_alaw(sample: i16) -> u8 {
    // 13-bit magnitude.
    let mut pcm = i32::from(sample) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // Segment end points: 0x1F, 0x3F, 0x7F, ..., 0xFFF.
    let seg = if pcm < 0x20 {
        0
    } else {
        (31 - (pcm as u32).leading_zeros()).saturating_sub(4)
    };
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let mantissa = ((pcm >> shift) & 0x0F) as u8;
    (((seg as u8) << 4) | mantissa) ^ mask
}

const fn ulaw_to_linear_const(code: u8) -> i16 {
    let u = !code;
    let mut t = (((u & 0x0F) as i32) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    if u & 0x80 != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

const fn alaw_to_linear_const(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = (a & 0x70) >> 4;
    if seg == 0 {
        t += 8;
    } else {
        t += 0x108;
        t <<= seg - 1;
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_to_linear_const(i as u8)
        } else {
            ulaw_to_linear_const(i as u8)
        };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

/// Decode one µ-law byte.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[usize::from(code)]
}

/// Decode one A-law byte.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[usize::from(code)]
}

/// Append the µ-law encoding of `pcm` to `out`.
pub fn encode_ulaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| linear_to_ulaw(s)));
}

/// Append the A-law encoding of `pcm` to `out`.
pub fn encode_alaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| linear_to_alaw(s)));
}

/// Append the linear samples of the µ-law bytes `data` to `out`.
pub fn decode_ulaw(data: &[u8], out: &mut Vec<i16>) {
    out.extend(data.iter().map(|&b| ulaw_to_linear(b)));
}

/// Append the linear samples of the A-law bytes `data` to `out`.
pub fn decode_alaw(data: &[u8], out: &mut Vec<i16>) {
    out.extend(data.iter().map(|&b| alaw_to_linear(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values_match_g711_tables() {
        // Zero encodes to 0xFF (all bits inverted), negative zero 0x7F decodes to 0.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        // Extremes of the µ-law range: ±32124.
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        // Segment boundaries: first step of segment 0 is 8 in 16-bit scale.
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0xEF), 132); // first code of segment 1
        assert_eq!(linear_to_ulaw(1000), 0xCE);
        assert_eq!(linear_to_ulaw(-1000), 0x4E);
    }

    #[test]
    fn alaw_known_values_match_g711_tables() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(alaw_to_linear(0x55), -8);
        // Extremes: ±32256.
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(linear_to_alaw(1000), 0xFA);
        assert_eq!(linear_to_alaw(-1000), 0x7A);
    }

    #[test]
    fn every_ulaw_code_round_trips_through_linear() {
        for code in 0..=255u8 {
            let lin = ulaw_to_linear(code);
            let back = linear_to_ulaw(lin);
            // 0x7F (negative zero) maps back to positive zero.
            if code == 0x7F {
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, code, "code {code:#04x} -> {lin}");
            }
        }
    }

    #[test]
    fn every_alaw_code_round_trips_through_linear() {
        for code in 0..=255u8 {
            let lin = alaw_to_linear(code);
            assert_eq!(linear_to_alaw(lin), code, "code {code:#04x} -> {lin}");
        }
    }

    #[test]
    fn linear_round_trip_error_is_within_half_a_quantisation_step() {
        // G.711 is logarithmic: the error grows with the magnitude, at most 1/32 of the value
        // plus the finest step.
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let v = i32::from(s);
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            let tol = v.abs() / 16 + 16;
            assert!((u - v).abs() <= tol, "ulaw {s} -> {u}");
            assert!((a - v).abs() <= tol, "alaw {s} -> {a}");
        }
    }

    #[test]
    fn encoding_is_monotonic_in_the_decoded_domain() {
        let mut last_u = i16::MIN;
        let mut last_a = i16::MIN;
        for s in i16::MIN..=i16::MAX {
            let u = ulaw_to_linear(linear_to_ulaw(s));
            let a = alaw_to_linear(linear_to_alaw(s));
            assert!(u >= last_u && a >= last_a, "at {s}");
            last_u = u;
            last_a = a;
        }
    }

    #[test]
    fn frame_helpers_append_one_byte_per_sample() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16000) as i16).collect();
        let mut enc = Vec::new();
        encode_alaw(&pcm, &mut enc);
        assert_eq!(enc.len(), 160);
        let mut dec = Vec::new();
        decode_alaw(&enc, &mut dec);
        assert_eq!(dec.len(), 160);
        let mut encu = Vec::new();
        encode_ulaw(&pcm, &mut encu);
        let mut decu = Vec::new();
        decode_ulaw(&encu, &mut decu);
        assert_eq!(decu.len(), 160);
    }
}
