//! Helpers shared by the media integration tests.
#![allow(dead_code)]

use std::f64::consts::PI;

use webphone_media::PcmSource;

/// A continuous sine at a rate (phase carried across frames).
pub struct Sine {
    rate: u32,
    freq: f64,
    amp: f64,
    n: u64,
}

impl Sine {
    pub fn new(rate: u32, freq: f64, amp: f64) -> Sine {
        Sine {
            rate,
            freq,
            amp,
            n: 0,
        }
    }

    pub fn frame(&mut self) -> Vec<i16> {
        let mut f = vec![0i16; self.rate as usize / 50];
        self.read_frame(&mut f);
        f
    }
}

impl PcmSource for Sine {
    fn read_frame(&mut self, out: &mut [i16]) {
        for o in out {
            let t = self.n as f64 / f64::from(self.rate);
            *o = (self.amp * (2.0 * PI * self.freq * t).sin()).round() as i16;
            self.n += 1;
        }
    }
}
