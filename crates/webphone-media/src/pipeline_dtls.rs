//! DTLS-SRTP inside [`MediaPipeline`] (RFC 5763/5764): while the handshake runs, SRTP is
//! blocked (nothing is sent, nothing accepted); DTLS datagrams on the RTP socket
//! ([`crate::demux`]) go to [`DtlsSrtp`], its flights and retransmissions go out with the 20 ms
//! tick; when it completes, the exported keys become the SRTP contexts. A failure (fingerprint
//! mismatch, no answer) raises [`MediaAlarm::EncryptionFailed`] and media stays blocked.

use std::net::SocketAddr;
use std::time::Instant;

use super::{MediaAlarm, MediaPipeline, Outgoing};
use crate::dtls_srtp::{DtlsIdentity, DtlsOutcome, DtlsSrtp};
use crate::Negotiated;

/// The DTLS state a negotiation calls for: `None` without DTLS; `Err` with a reason when the
/// handshake cannot even start (then media stays blocked and the call must end).
pub(super) fn for_negotiated(
    neg: &Negotiated,
    now: Instant,
) -> Option<Result<DtlsSrtp, crate::dtls_srtp::DtlsError>> {
    let params = neg.dtls.as_ref()?;
    Some(DtlsIdentity::process().and_then(|id| DtlsSrtp::new(id, params, neg.remote_rtp, now)))
}

impl MediaPipeline {
    /// Set the DTLS state for `self.neg` (new pipeline, or a re-negotiation that changed the
    /// DTLS role or fingerprint, RFC 5763 §6.7.1: a new handshake).
    pub(super) fn start_dtls(&mut self, now: Instant) {
        self.dtls = None;
        match for_negotiated(&self.neg, now) {
            None => {}
            Some(Ok(d)) => {
                // No SRTP until the handshake has exported keys: never plain RTP meanwhile.
                self.srtp = None;
                self.srtp_blocked = true;
                self.dtls = Some(d);
            }
            Some(Err(e)) => {
                self.srtp = None;
                self.srtp_blocked = true;
                self.dtls_failed(e.to_string());
            }
        }
    }

    fn dtls_failed(&mut self, reason: String) {
        tracing::warn!(%reason, "DTLS-SRTP failed: media blocked");
        self.alarms.push(MediaAlarm::EncryptionFailed {
            reason: format!("DTLS-SRTP: {reason}"),
        });
    }

    fn dtls_outcome(&mut self, outcome: DtlsOutcome) {
        match outcome {
            DtlsOutcome::Keyed(params) => {
                let (srtp, blocked) = crate::srtp::for_negotiated(Some(&params));
                self.srtp = srtp;
                self.srtp_blocked = blocked;
                if blocked {
                    self.dtls_failed("SRTP contexts could not be made".into());
                }
            }
            DtlsOutcome::Failed(e) => self.dtls_failed(e.to_string()),
        }
    }

    /// A DTLS datagram arrived on the RTP socket.
    pub(super) fn on_dtls(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        let Some(d) = self.dtls.as_mut() else {
            tracing::trace!(%from, "DTLS datagram without DTLS-SRTP negotiated: ignored");
            return;
        };
        if let Some(o) = d.handle_datagram(data, from, now) {
            self.dtls_outcome(o);
        }
    }

    /// Retransmission timers and the datagrams the handshake wants sent (from the RTP socket).
    pub(super) fn poll_dtls(&mut self, now: Instant) -> Vec<Outgoing> {
        let Some(d) = self.dtls.as_mut() else {
            return Vec::new();
        };
        let outcome = d.handle_timeout(now);
        let mut out = Vec::new();
        while let Some((to, data)) = d.poll_transmit() {
            out.push(Outgoing { to, data });
        }
        if let Some(o) = outcome {
            self.dtls_outcome(o);
        }
        out
    }

    /// Whether the DTLS handshake has keyed SRTP (`None` without DTLS).
    pub fn dtls_keyed(&self) -> Option<bool> {
        self.dtls.as_ref().map(DtlsSrtp::is_keyed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtls_srtp::{DtlsParams, DtlsRole, Fingerprint};
    use crate::{Codec, Direction, NullSink, PcmSource, PipelineConfig, PTIME_MS};
    use std::time::Duration;

    const A: &str = "127.0.0.1:41000";
    const B: &str = "127.0.0.1:41002";

    /// A loud square wave, so that plain RTP would show non-silent payload.
    struct Square;
    impl PcmSource for Square {
        fn read_frame(&mut self, out: &mut [i16]) {
            for (i, s) in out.iter_mut().enumerate() {
                *s = if i % 8 < 4 { 8000 } else { -8000 };
            }
        }
    }

    fn neg(remote: &str, role: DtlsRole, remote_fingerprint: Fingerprint) -> Negotiated {
        Negotiated {
            remote_rtp: remote.parse::<SocketAddr>().expect("addr"),
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: None,
            direction: Direction::SendRecv,
            ptime_ms: PTIME_MS,
            srtp: None,
            dtls: Some(DtlsParams {
                role,
                remote_fingerprint,
            }),
            rtcp_mux: true,
        }
    }

    fn pipeline(n: Negotiated, now: Instant) -> MediaPipeline {
        MediaPipeline::new(
            n,
            Box::new(Square),
            Box::new(NullSink),
            PipelineConfig::default(),
            now,
        )
    }

    /// Runs both pipelines for `ticks` 20 ms ticks on a virtual clock, delivering every
    /// datagram; returns the datagrams A sent, by kind.
    fn run(
        a: &mut MediaPipeline,
        b: &mut MediaPipeline,
        now: &mut Instant,
        ticks: usize,
    ) -> Vec<Vec<u8>> {
        let (aa, ba) = (
            A.parse::<SocketAddr>().expect("addr"),
            B.parse::<SocketAddr>().expect("addr"),
        );
        let mut from_a = Vec::new();
        for _ in 0..ticks {
            *now += Duration::from_millis(u64::from(PTIME_MS));
            for o in a.on_tick(*now) {
                assert_eq!(o.to, ba);
                b.on_packet(&o.data, aa, *now);
                from_a.push(o.data);
            }
            for o in b.on_tick(*now) {
                assert_eq!(o.to, aa);
                a.on_packet(&o.data, ba, *now);
            }
            a.playout(*now);
            b.playout(*now);
        }
        from_a
    }

    #[test]
    fn dtls_keyed_pipelines_exchange_srtp_and_send_nothing_before() {
        // Both pipelines run in this process and so present the process identity.
        let id = DtlsIdentity::process().expect("identity");
        let mut now = Instant::now();
        let mut a = pipeline(neg(B, DtlsRole::Client, id.fingerprint().clone()), now);
        let mut b = pipeline(neg(A, DtlsRole::Server, id.fingerprint().clone()), now);
        assert_eq!(a.dtls_keyed(), Some(false));
        assert!(a.negotiated().is_encrypted());
        let sent = run(&mut a, &mut b, &mut now, 50);
        assert_eq!(a.dtls_keyed(), Some(true));
        assert_eq!(b.dtls_keyed(), Some(true));
        let kinds: Vec<crate::demux::PacketKind> =
            sent.iter().map(|d| crate::demux::classify(d)).collect();
        let first_rtp = kinds
            .iter()
            .position(|k| *k == crate::demux::PacketKind::Rtp)
            .expect("RTP after the handshake");
        assert!(
            kinds[..first_rtp]
                .iter()
                .all(|k| *k == crate::demux::PacketKind::Dtls),
            "only DTLS before the keys: {kinds:?}"
        );
        assert!(first_rtp > 0, "the handshake came first");
        assert!(a.stats().encrypted && b.stats().encrypted);
        let sb = b.stats();
        assert!(sb.packets_received > 20, "B decrypted A's SRTP: {sb:?}");
        assert_eq!(sb.srtp_failures, 0);
        assert!(a.stats().packets_received > 20);
        // What went on the wire is SRTP: the 80-bit tag makes it 10 bytes longer than RTP.
        let rtp_len = 12 + 160;
        assert!(sent[first_rtp..]
            .iter()
            .filter(
                |d| crate::demux::classify(d) == crate::demux::PacketKind::Rtp
                    && !crate::rtcp::is_rtcp(d)
            )
            .all(|d| d.len() == rtp_len + 10));
        assert!(a.take_alarms().is_empty());
    }

    #[test]
    fn fingerprint_mismatch_raises_an_alarm_and_no_media_flows() {
        let id = DtlsIdentity::process().expect("identity");
        let stranger = DtlsIdentity::generate().expect("other identity");
        let mut now = Instant::now();
        // A expects a certificate B does not have.
        let mut a = pipeline(
            neg(B, DtlsRole::Client, stranger.fingerprint().clone()),
            now,
        );
        let mut b = pipeline(neg(A, DtlsRole::Server, id.fingerprint().clone()), now);
        let sent = run(&mut a, &mut b, &mut now, 100);
        assert!(
            sent.iter()
                .all(|d| crate::demux::classify(d) == crate::demux::PacketKind::Dtls),
            "nothing but DTLS left A"
        );
        let alarms = a.take_alarms();
        assert!(
            matches!(alarms.as_slice(), [MediaAlarm::EncryptionFailed { reason }] if reason.contains("fingerprint")),
            "{alarms:?}"
        );
        assert_eq!(a.dtls_keyed(), Some(false));
        assert_eq!(b.dtls_keyed(), Some(false));
        assert_eq!(b.stats().packets_received, 0);
        assert!(!a.stats().encrypted);
    }
}
