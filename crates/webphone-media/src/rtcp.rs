//! RTCP (RFC 3550 §6) for one audio stream, sans-IO: when to report, what to report, and what
//! the peer's reports tell us (loss and jitter it sees of our stream, round-trip time).
//!
//! - Reports: a compound packet of SR (RFC 3550 §6.4.1, when we sent RTP since the last
//!   report) or RR (§6.4.2), with one reception report block for the source we receive, followed
//!   by SDES with our CNAME (§6.5.1; §6.1 makes SDES CNAME mandatory in every compound packet).
//! - Interval (§6.3, simplified for a two-party call): the deterministic interval is the 5 s
//!   minimum (§6.2), halved before the first report (§6.3.2); each interval is randomised to
//!   [0.5, 1.5] times that and divided by e - 3/2 (§6.3.1, the reconsideration compensation).
//! - Received SR/RR: the report block about our SSRC gives the loss fraction, the cumulative
//!   loss and the jitter the peer measures, and with LSR/DLSR the round-trip time (§6.4.1:
//!   `RTT = A - LSR - DLSR` in 1/65536 s). Other packet types (SDES, BYE, APP, feedback, XR)
//!   and report blocks about other sources are skipped; malformed sub-packets are skipped
//!   without panicking.
//!
//! NTP timestamps come from a base taken once (wall clock at `epoch`) plus the monotonic time
//! since, so RTT is immune to wall-clock steps during the call.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtc_rtcp::packet::Packet;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc_shared::marshal::Unmarshal;

/// RFC 3550 §6.2: the minimum RTCP interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// RFC 3550 §6.3.1: e - 3/2, the compensation for timer reconsideration.
const COMPENSATION: f64 = 1.218_281_828_459_045;
/// Seconds from 1900-01-01 (NTP epoch) to 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Whether a datagram is RTCP rather than RTP when both share a port (RFC 5761 §4: second
/// byte 192-223 is an RTCP packet type; 200-204 in practice, but RTP payload types 64-95 with
/// the marker bit are never used for this reason).
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && data[0] >> 6 == 2 && (192..=223).contains(&data[1])
}

/// A 64-bit NTP timestamp (RFC 3550 §4) of a wall-clock time.
pub fn ntp_of(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

fn ntp_add(ntp: u64, d: Duration) -> u64 {
    let add = (d.as_secs() << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000);
    ntp.wrapping_add(add)
}

/// The middle 32 bits of an NTP timestamp (the LSR format, RFC 3550 §6.4.1).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// What we know about the stream we receive, for a report block (RFC 3550 §6.4.1, §A.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceptionInput {
    /// SSRC of the source.
    pub ssrc: u32,
    /// Extended highest sequence number received.
    pub extended_max: u32,
    /// Packets expected so far (extended max - base + 1).
    pub expected: u64,
    /// Packets received so far.
    pub received: u64,
    /// Interarrival jitter in timestamp units.
    pub jitter: f64,
}

/// What we send, for the sender info of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInput {
    /// RTP timestamp corresponding to the report's NTP time.
    pub rtp_time: u32,
    /// RTP packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

/// What the peer reported about our stream, and the round-trip time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RemoteReport {
    /// Fraction of our packets lost in the peer's last interval, 0.0..=1.0.
    pub fraction_lost: f64,
    /// Cumulative packets of ours lost (may be negative with duplicates, RFC 3550 §6.4.1).
    pub packets_lost: i64,
    /// The jitter the peer measures, in timestamp units.
    pub jitter: u32,
    /// Round-trip time of the last report that allowed computing it.
    pub rtt: Option<Duration>,
}

/// The RTCP state of one stream. See the module documentation.
#[derive(Debug, Clone)]
pub struct RtcpState {
    ssrc: u32,
    cname: String,
    epoch: Instant,
    ntp_epoch: u64,
    next_report: Instant,
    rng: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Middle 32 bits of the last SR received and when it arrived.
    last_sr: Option<(u32, Instant)>,
    remote: Option<RemoteReport>,
    reports_sent: u64,
    reports_received: u64,
}

impl RtcpState {
    /// State for our `ssrc`; the first report is due about 2.5 s after `now`. `ntp_at_now` is
    /// the wall clock at `now` as NTP ([`ntp_of`]`(SystemTime::now())`); `seed` randomises the
    /// intervals.
    pub fn new(ssrc: u32, cname: String, now: Instant, ntp_at_now: u64, seed: u64) -> RtcpState {
        let mut s = RtcpState {
            ssrc,
            cname,
            epoch: now,
            ntp_epoch: ntp_at_now,
            next_report: now,
            rng: seed | 1,
            expected_prior: 0,
            received_prior: 0,
            last_sr: None,
            remote: None,
            reports_sent: 0,
            reports_received: 0,
        };
        s.next_report = now + s.interval(MIN_INTERVAL / 2);
        s
    }

    /// A random CNAME (RFC 7022 §4.2 style: no user or host name is revealed).
    pub fn random_cname() -> String {
        format!("{:016x}@webphone", rand::random::<u64>())
    }

    /// Our SSRC (changes with the RTP sender, e.g. never during a call here).
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.ssrc = ssrc;
    }

    fn next_rand(&mut self) -> f64 {
        // xorshift64*: deterministic per seed, quality is ample for timer jitter.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let v = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 53) as f64
    }

    fn interval(&mut self, td: Duration) -> Duration {
        let factor = (0.5 + self.next_rand()) / COMPENSATION;
        td.mul_f64(factor)
    }

    /// When the next report is due.
    pub fn next_report_at(&self) -> Instant {
        self.next_report
    }

    /// The NTP time of `now` on this state's clock.
    pub fn ntp_at(&self, now: Instant) -> u64 {
        ntp_add(self.ntp_epoch, now.saturating_duration_since(self.epoch))
    }

    /// If a report is due at `now`, build the compound packet and schedule the next one.
    pub fn poll(
        &mut self,
        now: Instant,
        sender: Option<SenderInput>,
        rx: Option<ReceptionInput>,
    ) -> Option<Vec<u8>> {
        if now < self.next_report {
            return None;
        }
        self.next_report = now + self.interval(MIN_INTERVAL);
        Some(self.build(now, sender, rx))
    }

    /// Build a compound report now (also used for the final report before BYE).
    pub fn build(
        &mut self,
        now: Instant,
        sender: Option<SenderInput>,
        rx: Option<ReceptionInput>,
    ) -> Vec<u8> {
        let reports: Vec<ReceptionReport> =
            rx.map(|r| self.report_block(now, r)).into_iter().collect();
        let first: Box<dyn Packet> = match sender {
            Some(s) => Box::new(SenderReport {
                ssrc: self.ssrc,
                ntp_time: self.ntp_at(now),
                rtp_time: s.rtp_time,
                packet_count: s.packets,
                octet_count: s.octets,
                reports,
                profile_extensions: Bytes::new(),
            }),
            None => Box::new(ReceiverReport {
                ssrc: self.ssrc,
                reports,
                profile_extensions: Bytes::new(),
            }),
        };
        let sdes: Box<dyn Packet> = Box::new(SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: self.ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: Bytes::from(self.cname.clone().into_bytes()),
                }],
            }],
        });
        self.reports_sent += 1;
        match rtc_rtcp::packet::marshal(&[first, sdes]) {
            Ok(b) => b.to_vec(),
            Err(e) => {
                // Only oversized CNAMEs could cause this; send the report without SDES.
                tracing::warn!(error = %e, "RTCP compound packet failed to marshal");
                Vec::new()
            }
        }
    }

    fn report_block(&mut self, now: Instant, r: ReceptionInput) -> ReceptionReport {
        // RFC 3550 §A.3: loss in this interval from expected/received deltas.
        let expected_interval = r.expected.saturating_sub(self.expected_prior);
        let received_interval = r.received.saturating_sub(self.received_prior);
        self.expected_prior = r.expected;
        self.received_prior = r.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval == 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };
        let lost = (r.expected as i64 - r.received as i64).clamp(-0x80_0000, 0x7F_FFFF);
        let (lsr, dlsr) = match self.last_sr {
            Some((mid, at)) => {
                let d = now.saturating_duration_since(at);
                let units = (d.as_secs_f64() * 65536.0).min(f64::from(u32::MAX)) as u32;
                (mid, units)
            }
            None => (0, 0),
        };
        ReceptionReport {
            ssrc: r.ssrc,
            fraction_lost,
            // 24-bit two's complement on the wire.
            total_lost: (lost as i32 as u32) & 0xFF_FFFF,
            last_sequence_number: r.extended_max,
            jitter: r.jitter.clamp(0.0, f64::from(u32::MAX)) as u32,
            last_sender_report: lsr,
            delay: dlsr,
        }
    }

    /// A compound RTCP packet (already unprotected) arrived at `now`. Returns whether it held
    /// a usable SR or RR.
    pub fn on_packet(&mut self, data: &[u8], now: Instant) -> bool {
        let mut used = false;
        let mut rest = data;
        while rest.len() >= 4 {
            let words = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let len = (words + 1) * 4;
            let Some(pkt) = rest.get(..len) else {
                tracing::trace!("RTCP sub-packet longer than the datagram");
                break;
            };
            rest = &rest[len..];
            if pkt[0] >> 6 != 2 {
                break;
            }
            match pkt[1] {
                200 => {
                    let mut b = pkt;
                    match SenderReport::unmarshal(&mut b) {
                        Ok(sr) => {
                            self.last_sr = Some((ntp_middle(sr.ntp_time), now));
                            self.on_blocks(&sr.reports, now);
                            used = true;
                        }
                        Err(e) => tracing::trace!(error = %e, "bad RTCP SR"),
                    }
                }
                201 => {
                    let mut b = pkt;
                    match ReceiverReport::unmarshal(&mut b) {
                        Ok(rr) => {
                            self.on_blocks(&rr.reports, now);
                            used = true;
                        }
                        Err(e) => tracing::trace!(error = %e, "bad RTCP RR"),
                    }
                }
                _ => {} // SDES, BYE, APP, feedback, XR: not used
            }
        }
        if used {
            self.reports_received += 1;
        }
        used
    }

    fn on_blocks(&mut self, blocks: &[ReceptionReport], now: Instant) {
        let Some(b) = blocks.iter().find(|b| b.ssrc == self.ssrc) else {
            return;
        };
        // 24-bit signed cumulative loss.
        let lost = ((b.total_lost << 8) as i32 >> 8) as i64;
        let mut rtt = self.remote.and_then(|r| r.rtt);
        if b.last_sender_report != 0 {
            let a = ntp_middle(self.ntp_at(now));
            let v = a.wrapping_sub(b.last_sender_report).wrapping_sub(b.delay);
            // A "negative" result (wrapped) or over a minute is bogus: keep the old value.
            if v < 60 * 65536 {
                rtt = Some(Duration::from_secs_f64(f64::from(v) / 65536.0));
            }
        }
        self.remote = Some(RemoteReport {
            fraction_lost: f64::from(b.fraction_lost) / 256.0,
            packets_lost: lost,
            jitter: b.jitter,
            rtt,
        });
    }

    /// The peer's latest report about our stream, if any.
    pub fn remote(&self) -> Option<RemoteReport> {
        self.remote
    }

    /// Compound packets built.
    pub fn reports_sent(&self) -> u64 {
        self.reports_sent
    }

    /// Compound packets received with an SR or RR.
    pub fn reports_received(&self) -> u64 {
        self.reports_received
    }
}

/// The wall clock as NTP now.
pub fn ntp_now() -> u64 {
    ntp_of(SystemTime::now())
}
