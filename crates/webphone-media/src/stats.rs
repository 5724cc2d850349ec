//! Media statistics: counters and the RFC 3550 receive statistics (loss per §A.3, interarrival
//! jitter per §A.8).

use std::net::SocketAddr;

use crate::SAMPLE_RATE;

/// A snapshot of one call's media counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaStats {
    /// RTP packets sent (audio and telephone-event).
    pub packets_sent: u64,
    /// Bytes of those datagrams (RTP header included).
    pub bytes_sent: u64,
    /// Valid RTP packets received with a payload type we know.
    pub packets_received: u64,
    /// Bytes of those datagrams.
    pub bytes_received: u64,
    /// Packets lost, cumulative over all SSRCs: expected minus received (RFC 3550 §A.3),
    /// never negative.
    pub packets_lost: u64,
    /// Packets that arrived with a lower sequence number than one already seen.
    pub packets_reordered: u64,
    /// Packets dropped by the jitter buffer as duplicates.
    pub packets_duplicate: u64,
    /// Packets dropped by the jitter buffer as too late.
    pub packets_late: u64,
    /// Datagrams that were not usable (not RTP, unknown payload type, bad payload).
    pub packets_invalid: u64,
    /// Interarrival jitter (RFC 3550 §A.8) in milliseconds (measured in the stream's RTP clock
    /// and converted).
    pub jitter_ms: f64,
    /// Frames played out with received audio.
    pub frames_played: u64,
    /// Frames concealed (loss, underflow).
    pub frames_concealed: u64,
    /// Lost packets rebuilt from the next packet's Opus in-band FEC (RFC 7587 §3.3).
    pub frames_fec_recovered: u64,
    /// The jitter buffer's current target playout delay in ms (adaptive).
    pub jitter_target_ms: f64,
    /// DTMF digits sent as RFC 4733 events.
    pub dtmf_sent: u64,
    /// DTMF digits received as RFC 4733 events.
    pub dtmf_received: u64,
    /// Where we currently send RTP (after symmetric-RTP latching, if any).
    pub remote: Option<SocketAddr>,
    /// Round-trip time from the peer's RTCP reports (RFC 3550 §6.4.1 LSR/DLSR), if known.
    pub rtt_ms: Option<f64>,
    /// Fraction of our packets the peer lost in its last RTCP interval (0.0..=1.0).
    pub remote_fraction_lost: Option<f64>,
    /// Cumulative packets of ours the peer lost, from its RTCP reports.
    pub remote_packets_lost: Option<i64>,
    /// Interarrival jitter the peer measures on our stream, in milliseconds.
    pub remote_jitter_ms: Option<f64>,
    /// RTCP compound packets sent.
    pub rtcp_sent: u64,
    /// RTCP compound packets received with a sender or receiver report.
    pub rtcp_received: u64,
    /// Media is protected with SRTP.
    pub encrypted: bool,
    /// Received packets dropped because SRTP/SRTCP authentication or replay checks failed.
    pub srtp_failures: u64,
}

/// Receive statistics for one SSRC (RFC 3550 §A.1, §A.3, §A.8).
///
/// Interarrival jitter is kept in RTP timestamp units of the stream's clock (RFC 3550 §6.4.1:
/// "measured in timestamp units"): 8000 Hz for G.711/G.722, 48000 Hz for Opus. Arrival times
/// passed in must be in the same clock ([`ReceiveStats::arrival_units`]).
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    /// RTP clock of the stream in Hz.
    clock_rate: u32,
    ssrc: Option<u32>,
    base_ext: i64,
    max_ext: i64,
    received: u64,
    reordered: u64,
    /// Lost packets of earlier SSRCs.
    lost_before: u64,
    /// Jitter estimate in timestamp units (RFC 3550 §A.8, kept as f64 instead of the <<4
    /// fixed point).
    jitter: f64,
    last_transit: Option<u32>,
}

impl Default for ReceiveStats {
    fn default() -> Self {
        ReceiveStats::with_clock(SAMPLE_RATE)
    }
}

impl ReceiveStats {
    /// Nothing received yet, 8000 Hz clock.
    pub fn new() -> ReceiveStats {
        ReceiveStats::default()
    }

    /// Nothing received yet, for a stream with this RTP clock (Hz).
    pub fn with_clock(clock_rate: u32) -> ReceiveStats {
        ReceiveStats {
            clock_rate: clock_rate.max(1),
            ssrc: None,
            base_ext: 0,
            max_ext: 0,
            received: 0,
            reordered: 0,
            lost_before: 0,
            jitter: 0.0,
            last_transit: None,
        }
    }

    /// The RTP clock the jitter is measured in.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Switch to another RTP clock (the peer changed to a codec with another clock): the
    /// estimate is rescaled and the transit reference dropped, since old and new timestamps
    /// cannot be compared.
    pub fn set_clock_rate(&mut self, clock_rate: u32) {
        let clock_rate = clock_rate.max(1);
        if clock_rate == self.clock_rate {
            return;
        }
        self.jitter = self.jitter * f64::from(clock_rate) / f64::from(self.clock_rate);
        self.clock_rate = clock_rate;
        self.last_transit = None;
    }

    /// An arrival time (time since any fixed local epoch) in this stream's timestamp units.
    pub fn arrival_units(&self, since_epoch: std::time::Duration) -> u64 {
        (since_epoch.as_micros() * u128::from(self.clock_rate) / 1_000_000) as u64
    }

    /// Record one received packet. `arrival` is the arrival time in timestamp units of the
    /// stream's clock on any fixed local clock ([`ReceiveStats::arrival_units`]).
    /// `count_jitter` is false for packets whose timestamp does not follow the sampling clock
    /// (RFC 4733 events keep the event start timestamp).
    pub fn on_packet(
        &mut self,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        arrival: u64,
        count_jitter: bool,
    ) {
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                self.lost_before += self.lost_current();
            }
            self.ssrc = Some(ssrc);
            self.base_ext = i64::from(seq);
            self.max_ext = i64::from(seq);
            self.received = 0;
            self.jitter = 0.0;
            self.last_transit = None;
        }
        let ext = self.max_ext + i64::from(seq.wrapping_sub(self.max_ext as u16) as i16);
        if ext > self.max_ext {
            self.max_ext = ext;
        } else if ext < self.max_ext {
            self.reordered += 1;
        }
        if ext < self.base_ext {
            self.base_ext = ext;
        }
        self.received += 1;

        if count_jitter {
            // RFC 3550 §A.8: D(i-1,i) = (Rj - Ri) - (Sj - Si), J += (|D| - J) / 16.
            let transit = (arrival as u32).wrapping_sub(timestamp);
            if let Some(last) = self.last_transit {
                let d = i64::from(transit.wrapping_sub(last) as i32).abs();
                // A step over 1 s is a timestamp discontinuity (peer restarted its clock or
                // skipped ahead), not network jitter.
                if d <= i64::from(self.clock_rate) {
                    self.jitter += (d as f64 - self.jitter) / 16.0;
                }
            }
            self.last_transit = Some(transit);
        }
    }

    fn lost_current(&self) -> u64 {
        if self.ssrc.is_none() {
            return 0;
        }
        let expected = self.max_ext - self.base_ext + 1;
        u64::try_from(expected - self.received as i64).unwrap_or(0)
    }

    /// Cumulative packets lost (RFC 3550 §A.3), clamped at zero (duplicates can make the raw
    /// figure negative).
    pub fn lost(&self) -> u64 {
        self.lost_before + self.lost_current()
    }

    /// Packets that arrived out of order.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// The figures an RTCP report block needs (RFC 3550 §6.4.1), once something arrived.
    pub fn reception_input(&self) -> Option<crate::rtcp::ReceptionInput> {
        let ssrc = self.ssrc?;
        Some(crate::rtcp::ReceptionInput {
            ssrc,
            extended_max: self.max_ext as u32,
            expected: u64::try_from(self.max_ext - self.base_ext + 1).unwrap_or(0),
            received: self.received,
            jitter: self.jitter,
        })
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.clock_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_paced_stream_has_zero_jitter_and_no_loss() {
        let mut s = ReceiveStats::new();
        for i in 0..100u32 {
            s.on_packet(
                1,
                65500u16.wrapping_add(i as u16),
                5000 + i * 160,
                100_000 + u64::from(i) * 160,
                true,
            );
        }
        assert_eq!(s.lost(), 0);
        assert_eq!(s.reordered(), 0);
        assert!(s.jitter() < 1e-9);
    }

    #[test]
    fn constant_alternating_delay_converges_to_its_magnitude() {
        // Every other packet is 80 units (10 ms) late: |D| = 80 each time, J -> 80.
        let mut s = ReceiveStats::new();
        for i in 0..500u32 {
            let late = if i % 2 == 1 { 80 } else { 0 };
            s.on_packet(1, i as u16, i * 160, u64::from(i) * 160 + late, true);
        }
        assert!((s.jitter() - 80.0).abs() < 1.0, "{}", s.jitter());
        assert!((s.jitter_ms() - 10.0).abs() < 0.2);
    }

    #[test]
    fn opus_jitter_is_kept_in_48khz_timestamp_units() {
        // RFC 3550 §6.4.1: jitter in the stream's timestamp units. Every other packet 10 ms
        // late at 48 kHz: |D| = 480 units.
        let mut s = ReceiveStats::with_clock(48_000);
        for i in 0..500u32 {
            let late = if i % 2 == 1 { 480 } else { 0 };
            s.on_packet(1, i as u16, i * 960, u64::from(i) * 960 + late, true);
        }
        assert!((s.jitter() - 480.0).abs() < 6.0, "{}", s.jitter());
        assert!((s.jitter_ms() - 10.0).abs() < 0.2, "{}", s.jitter_ms());
        assert!((s.reception_input().unwrap().jitter - 480.0).abs() < 6.0);
        assert_eq!(
            s.arrival_units(std::time::Duration::from_millis(20)),
            960,
            "arrival in 48 kHz units"
        );
    }

    #[test]
    fn clock_change_rescales_the_estimate() {
        let mut s = ReceiveStats::with_clock(8000);
        for i in 0..500u32 {
            let late = if i % 2 == 1 { 80 } else { 0 };
            s.on_packet(1, i as u16, i * 160, u64::from(i) * 160 + late, true);
        }
        let ms = s.jitter_ms();
        s.set_clock_rate(48_000);
        assert!((s.jitter_ms() - ms).abs() < 1e-9);
        assert!((s.jitter() - 6.0 * 80.0).abs() < 6.0);
    }

    #[test]
    fn gaps_count_as_lost_and_out_of_order_as_reordered() {
        let mut s = ReceiveStats::new();
        for seq in [1u16, 2, 4, 3, 7, 8] {
            s.on_packet(1, seq, 0, 0, false);
        }
        assert_eq!(s.lost(), 2); // 5 and 6
        assert_eq!(s.reordered(), 1);
    }

    #[test]
    fn timestamp_jump_does_not_inflate_jitter() {
        let mut s = ReceiveStats::new();
        for i in 0..50u32 {
            let ts = if i < 25 { i * 160 } else { 1_000_000 + i * 160 };
            s.on_packet(1, i as u16, ts, u64::from(i) * 160, true);
        }
        assert!(s.jitter() < 1e-9, "{}", s.jitter());
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn ssrc_change_keeps_earlier_loss_and_restarts_counting() {
        let mut s = ReceiveStats::new();
        for seq in [10u16, 12] {
            s.on_packet(1, seq, 0, 0, false);
        }
        for seq in [500u16, 501] {
            s.on_packet(2, seq, 0, 0, false);
        }
        assert_eq!(s.lost(), 1);
    }

    #[test]
    fn duplicates_never_make_loss_negative() {
        let mut s = ReceiveStats::new();
        for seq in [1u16, 1, 1, 2] {
            s.on_packet(1, seq, 0, 0, false);
        }
        assert_eq!(s.lost(), 0);
    }
}
