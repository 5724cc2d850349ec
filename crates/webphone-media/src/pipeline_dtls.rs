//! DTLS-SRTP inside [`MediaPipeline`] (RFC 5763/5764): while the handshake runs, SRTP is
//! blocked (nothing is sent, nothing accepted); DTLS datagrams on the RTP socket
//! ([`crate::demux`]) go to [`DtlsSrtp`], its flights and retransmissions go out with the 20 ms
//! tick; when it completes, the exported keys become the SRTP contexts. A failure (fingerprint
//! mismatch, no answer) raises [`MediaAlarm::EncryptionFailed`] and media stays blocked.
//!
//! Without rtcp-mux, RTCP is its own component with its own handshake and keys (RFC 5764 §4.1:
//! "a separate DTLS session" per component): datagrams of the RTCP socket go to a second
//! [`DtlsSrtp`] towards the peer's RTCP address, its flights leave through
//! [`MediaPipeline::poll_rtcp`] (the RTCP socket), and SRTCP uses its keys. RTCP waits for them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::{MediaAlarm, MediaPipeline, Outgoing};
use crate::dtls_srtp::{DtlsError, DtlsIdentity, DtlsOutcome, DtlsSrtp};
use crate::srtp::SrtpSession;
use crate::stats::MediaStats;

/// The DTLS state of a pipeline: nothing without DTLS-SRTP.
#[derive(Debug, Default)]
pub(super) struct DtlsState {
    /// The RTP component's handshake (keys RTP, and RTCP too with rtcp-mux).
    /// (Boxed, like the others: most calls have no DTLS, and the pipeline is allocated per
    /// call.)
    rtp: Option<Box<DtlsSrtp>>,
    /// The RTCP component's handshake without rtcp-mux.
    rtcp: Option<Box<DtlsSrtp>>,
    /// SRTCP keyed by the RTCP component.
    srtcp: Option<Box<SrtpSession>>,
    /// Flights of the RTCP component, sent from the RTCP socket by `poll_rtcp`.
    pub(super) rtcp_queue: VecDeque<Outgoing>,
}

impl DtlsState {
    /// Whether RTCP has its own DTLS component (no rtcp-mux).
    pub(super) fn separate_rtcp(&self) -> bool {
        self.rtcp.is_some()
    }

    /// SRTCP-protect with the RTCP component's keys; nothing before they exist.
    pub(super) fn protect_rtcp(&mut self, data: Vec<u8>) -> Option<Vec<u8>> {
        self.srtcp
            .as_mut()?
            .protect_rtcp(&data)
            .map_err(|e| tracing::warn!(error = %e, "SRTCP protect failed"))
            .ok()
    }

    /// Check and decrypt SRTCP with the RTCP component's keys.
    pub(super) fn unprotect_rtcp(
        &mut self,
        data: &[u8],
        stats: &mut MediaStats,
    ) -> Option<Vec<u8>> {
        match self.srtcp.as_mut()?.unprotect_rtcp(data) {
            Ok(p) => Some(p),
            Err(e) => {
                stats.srtp_failures += 1;
                tracing::debug!(error = %e, "SRTCP unprotect failed");
                None
            }
        }
    }
}

/// A handshake for a component, or why it cannot start.
fn component(
    neg: &crate::Negotiated,
    remote: SocketAddr,
    now: Instant,
) -> Option<Result<DtlsSrtp, DtlsError>> {
    let params = neg.dtls.as_ref()?;
    Some(DtlsIdentity::process().and_then(|id| DtlsSrtp::new(id, params, remote, now)))
}

impl MediaPipeline {
    /// Set the DTLS state for `self.neg` (new pipeline, or a re-negotiation that changed the
    /// DTLS role or fingerprint, RFC 5763 §6.7.1: a new handshake).
    pub(super) fn start_dtls(&mut self, now: Instant) {
        self.dtls = DtlsState::default();
        let Some(rtp) = component(&self.neg, self.neg.remote_rtp, now) else {
            return;
        };
        // No SRTP until the handshake has exported keys: never plain RTP meanwhile.
        self.srtp = None;
        self.srtp_blocked = true;
        match rtp {
            Ok(d) => self.dtls.rtp = Some(Box::new(d)),
            Err(e) => return self.dtls_failed(e.to_string()),
        }
        if !self.neg.rtcp_mux {
            let mut rtcp_remote = self.neg.remote_rtp;
            rtcp_remote.set_port(rtcp_remote.port().wrapping_add(1));
            match component(&self.neg, rtcp_remote, now) {
                Some(Ok(d)) => self.dtls.rtcp = Some(Box::new(d)),
                Some(Err(e)) => self.dtls_failed(e.to_string()),
                None => {}
            }
        }
    }

    fn dtls_failed(&mut self, reason: String) {
        tracing::warn!(%reason, "DTLS-SRTP failed: media blocked");
        self.alarms.push(MediaAlarm::EncryptionFailed {
            reason: format!("DTLS-SRTP: {reason}"),
        });
    }

    fn dtls_outcome(&mut self, outcome: DtlsOutcome, rtcp: bool) {
        match (outcome, rtcp) {
            (DtlsOutcome::Keyed(params), false) => {
                let (srtp, blocked) = crate::srtp::for_negotiated(Some(&params));
                self.srtp = srtp;
                self.srtp_blocked = blocked;
                if blocked {
                    self.dtls_failed("SRTP contexts could not be made".into());
                }
            }
            (DtlsOutcome::Keyed(params), true) => match SrtpSession::new(&params) {
                Ok(s) => self.dtls.srtcp = Some(Box::new(s)),
                Err(e) => tracing::warn!(error = %e, "SRTCP contexts could not be made: no RTCP"),
            },
            (DtlsOutcome::Failed(e @ DtlsError::FingerprintMismatch), _)
            | (DtlsOutcome::Failed(e), false) => self.dtls_failed(e.to_string()),
            (DtlsOutcome::Failed(e), true) => {
                tracing::warn!(error = %e, "DTLS-SRTP of the RTCP component failed: no RTCP");
            }
        }
    }

    /// A DTLS datagram arrived on the RTP socket.
    pub(super) fn on_dtls(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        let Some(d) = self.dtls.rtp.as_mut() else {
            tracing::trace!(%from, "DTLS datagram without DTLS-SRTP negotiated: ignored");
            return;
        };
        if let Some(o) = d.handle_datagram(data, from, now) {
            self.dtls_outcome(o, false);
        }
    }

    /// A DTLS datagram arrived on the RTCP socket.
    pub(super) fn on_dtls_rtcp(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        let Some(d) = self.dtls.rtcp.as_mut() else {
            tracing::trace!(%from, "DTLS datagram on the RTCP socket without its component: ignored");
            return;
        };
        if let Some(o) = d.handle_datagram(data, from, now) {
            self.dtls_outcome(o, true);
        }
    }

    /// Retransmission timers and the datagrams the handshakes want sent: the RTP component's
    /// are returned (RTP socket), the RTCP component's queued for `poll_rtcp`.
    pub(super) fn poll_dtls(&mut self, now: Instant) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if let Some(d) = self.dtls.rtp.as_mut() {
            let outcome = d.handle_timeout(now);
            while let Some((to, data)) = d.poll_transmit() {
                out.push(Outgoing { to, data });
            }
            if let Some(o) = outcome {
                self.dtls_outcome(o, false);
            }
        }
        if let Some(d) = self.dtls.rtcp.as_mut() {
            let outcome = d.handle_timeout(now);
            while let Some((to, data)) = d.poll_transmit() {
                self.dtls.rtcp_queue.push_back(Outgoing { to, data });
            }
            if let Some(o) = outcome {
                self.dtls_outcome(o, true);
            }
        }
        out
    }

    /// ICE selected a pair whose remote end is `remote` (media, DTLS included, goes over the
    /// selected pair, RFC 8445 §12.1). Our DTLS client aims its ClientHello at the SDP
    /// address until then; a WebRTC peer accepts DTLS only from a checked candidate, which need
    /// not be that address. So a client whose peer is another address and that has heard
    /// nothing from it starts over towards `remote` (at once, not at its next retransmission).
    /// The same address keeps its handshake: the answer to the ClientHello already sent may be
    /// on its way, and a new handshake would reject it.
    pub fn set_ice_peer(&mut self, remote: SocketAddr, now: Instant) {
        let Some(d) = self.dtls.rtp.as_ref() else {
            return;
        };
        if d.role() != crate::dtls_srtp::DtlsRole::Client || d.outcome().is_some() {
            return;
        }
        if d.peer() == remote || d.heard_from_peer() {
            return;
        }
        tracing::debug!(from = %d.peer(), to = %remote, "DTLS client follows the ICE pair");
        match component(&self.neg, remote, now) {
            Some(Ok(d)) => self.dtls.rtp = Some(Box::new(d)),
            Some(Err(e)) => self.dtls_failed(e.to_string()),
            None => {}
        }
    }

    /// End of the call: `close_notify` on each keyed DTLS association ([`DtlsSrtp::close`]).
    /// Returns (RTP component's datagrams for the RTP socket, RTCP component's for the RTCP
    /// socket).
    pub fn close_dtls(&mut self, now: Instant) -> (Vec<Outgoing>, Vec<Outgoing>) {
        let drain = |d: Option<&mut DtlsSrtp>| {
            let mut out = Vec::new();
            if let Some(d) = d {
                d.close(now);
                while let Some((to, data)) = d.poll_transmit() {
                    out.push(Outgoing { to, data });
                }
            }
            out
        };
        let rtp = drain(self.dtls.rtp.as_deref_mut());
        let rtcp = drain(self.dtls.rtcp.as_deref_mut());
        (rtp, rtcp)
    }

    /// Whether the peer closed the RTP component's DTLS association (`None` without DTLS).
    pub fn dtls_peer_closed(&self) -> Option<bool> {
        self.dtls.rtp.as_deref().map(DtlsSrtp::peer_closed)
    }

    /// Whether the DTLS handshake has keyed SRTP (`None` without DTLS).
    pub fn dtls_keyed(&self) -> Option<bool> {
        self.dtls.rtp.as_deref().map(DtlsSrtp::is_keyed)
    }

    /// Whether the RTCP component's handshake has keyed SRTCP (`None` without one: no DTLS,
    /// or rtcp-mux).
    pub fn dtls_rtcp_keyed(&self) -> Option<bool> {
        self.dtls.rtcp.as_deref().map(DtlsSrtp::is_keyed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtls_srtp::{DtlsParams, DtlsRole, Fingerprint};
    use crate::{Codec, Direction, Negotiated, NullSink, PcmSource, PipelineConfig, PTIME_MS};
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
        neg_mux(remote, role, remote_fingerprint, true)
    }

    fn neg_mux(
        remote: &str,
        role: DtlsRole,
        remote_fingerprint: Fingerprint,
        rtcp_mux: bool,
    ) -> Negotiated {
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
            rtcp_mux,
            send_limits: Default::default(),
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
            // RTCP as the driver sends it: one datagram per tick, to the RTP port with
            // rtcp-mux, else to the RTCP port (RTP + 1) from ours.
            rtcp_step(a, b, aa, ba, *now);
            rtcp_step(b, a, ba, aa, *now);
            a.playout(*now);
            b.playout(*now);
        }
        from_a
    }

    fn rtcp_step(
        src: &mut MediaPipeline,
        dst: &mut MediaPipeline,
        src_addr: SocketAddr,
        dst_addr: SocketAddr,
        now: Instant,
    ) {
        if let Some(o) = src.poll_rtcp(now) {
            if o.to == dst_addr {
                dst.on_packet(&o.data, src_addr, now);
            } else {
                assert_eq!(o.to.port(), dst_addr.port() + 1);
                let mut from = src_addr;
                from.set_port(src_addr.port() + 1);
                dst.on_rtcp_packet(&o.data, from, now);
            }
        }
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
    fn without_rtcp_mux_rtcp_gets_its_own_handshake_and_keys() {
        let id = DtlsIdentity::process().expect("identity");
        let mut now = Instant::now();
        let mut a = pipeline(
            neg_mux(B, DtlsRole::Client, id.fingerprint().clone(), false),
            now,
        );
        let mut b = pipeline(
            neg_mux(A, DtlsRole::Server, id.fingerprint().clone(), false),
            now,
        );
        assert_eq!(a.dtls_rtcp_keyed(), Some(false));
        // 12 s of virtual time: RTCP reports go out every few seconds (RFC 3550 §6.2).
        run(&mut a, &mut b, &mut now, 600);
        assert_eq!(a.dtls_keyed(), Some(true));
        assert_eq!(a.dtls_rtcp_keyed(), Some(true));
        assert_eq!(b.dtls_rtcp_keyed(), Some(true));
        let (sa, sb) = (a.stats(), b.stats());
        assert!(
            sa.rtcp_received > 0 && sb.rtcp_received > 0,
            "{sa:?} {sb:?}"
        );
        assert_eq!(sa.srtp_failures + sb.srtp_failures, 0);
        // With rtcp-mux there is no second component.
        let c = pipeline(neg(B, DtlsRole::Client, id.fingerprint().clone()), now);
        assert_eq!(c.dtls_rtcp_keyed(), None);
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

    /// A (DTLS client) and B (server), both with the process identity, run for `ticks` ticks
    /// from now: keyed after 50, RTCP keyed too without rtcp-mux after 600.
    fn keyed_pair(rtcp_mux: bool, ticks: usize) -> (MediaPipeline, MediaPipeline, Instant) {
        let id = DtlsIdentity::process().expect("identity");
        let mut now = Instant::now();
        let fp = id.fingerprint().clone();
        let mut a = pipeline(neg_mux(B, DtlsRole::Client, fp.clone(), rtcp_mux), now);
        let mut b = pipeline(neg_mux(A, DtlsRole::Server, fp, rtcp_mux), now);
        run(&mut a, &mut b, &mut now, ticks);
        (a, b, now)
    }

    /// DTLS record header (RFC 6347 §4.1): content type, version, epoch.
    fn record_type_and_epoch(d: &[u8]) -> (u8, u16) {
        (d[0], u16::from_be_bytes([d[3], d[4]]))
    }

    #[test]
    fn hang_up_sends_an_encrypted_close_notify_that_the_peer_reads() {
        let (mut a, mut b, now) = keyed_pair(true, 50);
        assert_eq!(a.dtls_keyed(), Some(true));
        assert_eq!(b.dtls_peer_closed(), Some(false));
        let (rtp, rtcp) = a.close_dtls(now);
        assert!(rtcp.is_empty(), "rtcp-mux: no RTCP component");
        assert_eq!(rtp.len(), 1, "one alert record");
        let alert = &rtp[0];
        assert_eq!(alert.to, B.parse::<SocketAddr>().expect("addr"));
        // Content type 21 (alert), epoch 1: protected with the handshake's keys, RFC 6347 §4.1.
        assert_eq!(record_type_and_epoch(&alert.data), (21, 1));
        b.on_packet(&alert.data, A.parse().expect("addr"), now);
        assert_eq!(b.dtls_peer_closed(), Some(true));
        // Once only.
        assert_eq!(a.close_dtls(now), (Vec::new(), Vec::new()));
        // The server closing first works the same way.
        let (mut c, mut d, now2) = keyed_pair(true, 50);
        let (rtp, _) = d.close_dtls(now2);
        assert_eq!(rtp.len(), 1);
        c.on_packet(&rtp[0].data, B.parse().expect("addr"), now2);
        assert_eq!(c.dtls_peer_closed(), Some(true));
    }

    #[test]
    fn no_close_notify_before_the_handshake_completed() {
        let id = DtlsIdentity::process().expect("identity");
        let now = Instant::now();
        let mut a = pipeline(neg(B, DtlsRole::Client, id.fingerprint().clone()), now);
        let _ = a.on_tick(now);
        assert_eq!(a.close_dtls(now), (Vec::new(), Vec::new()));
        // Without DTLS there is nothing to close.
        let mut n = neg(B, DtlsRole::Client, id.fingerprint().clone());
        n.dtls = None;
        let mut plain = pipeline(n, now);
        assert_eq!(plain.close_dtls(now), (Vec::new(), Vec::new()));
        assert_eq!(plain.dtls_peer_closed(), None);
    }

    #[test]
    fn without_rtcp_mux_both_components_send_close_notify() {
        let (mut a, _b, now) = keyed_pair(false, 600);
        assert_eq!(a.dtls_rtcp_keyed(), Some(true));
        let (rtp, rtcp) = a.close_dtls(now);
        assert_eq!((rtp.len(), rtcp.len()), (1, 1));
        assert_eq!(
            rtcp[0].to.port(),
            B.parse::<SocketAddr>().expect("addr").port() + 1
        );
        assert_eq!(record_type_and_epoch(&rtcp[0].data), (21, 1));
    }

    #[test]
    fn dtls_client_restarts_towards_the_ice_selected_pair() {
        // The SDP names an address where nobody answers (a WebRTC peer's c= is its default
        // candidate; ICE may select another); B is where ICE found the peer.
        let id = DtlsIdentity::process().expect("identity");
        let mut now = Instant::now();
        let sdp_addr = "127.0.0.1:49999".parse::<SocketAddr>().expect("addr");
        let (aa, ba) = (
            A.parse::<SocketAddr>().expect("addr"),
            B.parse::<SocketAddr>().expect("addr"),
        );
        let mut a = pipeline(
            neg(
                "127.0.0.1:49999",
                DtlsRole::Client,
                id.fingerprint().clone(),
            ),
            now,
        );
        let mut b = pipeline(neg(A, DtlsRole::Server, id.fingerprint().clone()), now);
        now += Duration::from_millis(20);
        let lost = a.on_tick(now);
        assert!(!lost.is_empty() && lost.iter().all(|o| o.to == sdp_addr));
        a.set_ice_peer(ba, now);
        let mut first = true;
        for _ in 0..50 {
            let out = a.on_tick(now);
            if first {
                // The new ClientHello goes out at once, to the selected pair.
                assert!(!out.is_empty(), "no immediate ClientHello");
                first = false;
            }
            for o in out {
                // DTLS goes to the pair; media keeps the SDP address, which the ICE transport
                // replaces by the pair's (`IceTransport::send_media`).
                if crate::demux::classify(&o.data) == crate::demux::PacketKind::Dtls {
                    assert_eq!(o.to, ba);
                }
                b.on_packet(&o.data, aa, now);
            }
            for o in b.on_tick(now) {
                a.on_packet(&o.data, ba, now);
            }
            now += Duration::from_millis(20);
        }
        assert_eq!(a.dtls_keyed(), Some(true));
        assert_eq!(b.dtls_keyed(), Some(true));
        // A running handshake is not restarted by the same pair again.
        a.set_ice_peer(ba, now);
        assert_eq!(a.dtls_keyed(), Some(true));
        // Nor is a client whose ClientHello already went to the selected address: the answer
        // to it may be on its way (a restart made Chromium's ServerHello fail the new one).
        let mut c = pipeline(neg(B, DtlsRole::Client, id.fingerprint().clone()), now);
        now += Duration::from_millis(20);
        let hello = c.on_tick(now);
        assert!(!hello.is_empty());
        c.set_ice_peer(ba, now);
        now += Duration::from_millis(20);
        assert!(
            c.on_tick(now).is_empty(),
            "no second ClientHello before the retransmission timer"
        );
        // The server side never moves: it answers whoever wrote.
        b.set_ice_peer(sdp_addr, now);
        assert_eq!(b.dtls_keyed(), Some(true));
    }
}
