//! RFC 3389 comfort noise, receive side: a CN packet (static payload type 13, RFC 3551 §6)
//! tells the level of the sender's background noise while it sends nothing (silence
//! suppression); the playout then produces noise at that level instead of dead silence until
//! audio resumes.
//!
//! Payload (RFC 3389 §3): the first octet is the noise level in -dBov (0..=127, the top bit is
//! zero); optional further octets are reflection coefficients of an all-pole model of the
//! noise spectrum. We use the level only and generate white noise (§3 allows a receiver to
//! ignore the spectral octets). 0 dBov is taken as the RMS of a full-scale sine, so level L
//! gives an RMS of `32767 / sqrt(2) * 10^(-L/20)` in 16-bit samples.

/// The static RTP payload type of CN at 8000 Hz (RFC 3551 §6, table 4).
pub const CN_PAYLOAD_TYPE: u8 = 13;

/// The noise level of a CN payload (-dBov, 0..=127); `None` for an empty payload.
pub fn parse_level(payload: &[u8]) -> Option<u8> {
    payload.first().map(|b| b & 0x7F)
}

/// The RMS (16-bit sample magnitude) of noise at `level` -dBov.
pub fn level_rms(level: u8) -> f64 {
    32767.0 / std::f64::consts::SQRT_2 * 10f64.powf(-f64::from(level) / 20.0)
}

/// Comfort-noise state and generator for one received stream.
#[derive(Debug, Clone)]
pub struct ComfortNoise {
    rng: u32,
    level: Option<u8>,
    active: bool,
    /// Noise has been produced since the last CN packet (audio after it ends the noise; audio
    /// still buffered from before it does not).
    playing: bool,
    packets: u64,
}

impl Default for ComfortNoise {
    fn default() -> Self {
        ComfortNoise::new()
    }
}

impl ComfortNoise {
    /// Inactive, with a fixed seed (deterministic output).
    pub fn new() -> ComfortNoise {
        ComfortNoise {
            rng: 0x2545_F491,
            level: None,
            active: false,
            playing: false,
            packets: 0,
        }
    }

    /// A CN packet arrived: take its level and start producing noise. Returns false (and
    /// changes nothing) for an empty payload.
    pub fn on_packet(&mut self, payload: &[u8]) -> bool {
        let Some(level) = parse_level(payload) else {
            return false;
        };
        if !self.active || self.level != Some(level) {
            tracing::debug!(level_dbov = -i32::from(level), "comfort noise");
        }
        self.level = Some(level);
        self.active = true;
        self.packets += 1;
        true
    }

    /// Whether a CN packet came and audio has not resumed since.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Whether noise has been produced since the CN packet.
    pub fn is_playing(&self) -> bool {
        self.active && self.playing
    }

    /// The latest level (-dBov).
    pub fn level(&self) -> Option<u8> {
        self.level
    }

    /// CN packets taken.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Audio resumed: stop producing noise.
    pub fn stop(&mut self) {
        self.active = false;
        self.playing = false;
    }

    /// Fill `out` with noise at the current level (silence when no level is known).
    pub fn fill(&mut self, out: &mut [i16]) {
        self.playing = true;
        let Some(level) = self.level else {
            out.fill(0);
            return;
        };
        // Uniform noise in [-a, a] has an RMS of a / sqrt(3).
        let a = level_rms(level) * 3f64.sqrt();
        for o in out.iter_mut() {
            // xorshift32: cheap, deterministic, good enough for noise.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 17;
            self.rng ^= self.rng << 5;
            let u = f64::from(self.rng) / f64::from(u32::MAX) * 2.0 - 1.0;
            *o = (u * a).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn level_octet_is_minus_dbov_and_the_top_bit_is_ignored() {
        assert_eq!(parse_level(&[]), None);
        assert_eq!(parse_level(&[40]), Some(40));
        assert_eq!(parse_level(&[0x80 | 40, 1, 2, 3]), Some(40));
        assert!((level_rms(0) - 23169.8).abs() < 0.5);
        assert!((level_rms(20) * 10.0 - level_rms(0)).abs() < 0.01);
    }

    #[test]
    fn generated_noise_has_the_requested_level() {
        for level in [30u8, 50, 70] {
            let mut cn = ComfortNoise::new();
            assert!(cn.on_packet(&[level]));
            let mut out = vec![0i16; 48_000];
            cn.fill(&mut out);
            let got = 20.0 * (rms(&out) / level_rms(0)).log10();
            assert!(
                (got + f64::from(level)).abs() < 0.5,
                "level {level}: {got:.2} dBov"
            );
        }
    }

    #[test]
    fn empty_payload_and_stop() {
        let mut cn = ComfortNoise::new();
        assert!(!cn.on_packet(&[]));
        assert!(!cn.is_active());
        let mut out = vec![1i16; 10];
        cn.fill(&mut out);
        assert!(out.iter().all(|&s| s == 0));
        cn.on_packet(&[60]);
        assert!(cn.is_active());
        cn.stop();
        assert!(!cn.is_active());
        assert_eq!(cn.level(), Some(60));
    }
}
