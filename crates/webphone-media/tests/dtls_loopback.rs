//! Real UDP on 127.0.0.1: two MediaSessions negotiated through our own DTLS-SRTP offer/answer
//! (RFC 5763) key SRTP by handshakes on their sockets and exchange a tone. Without rtcp-mux the
//! RTCP port pair runs its own handshake (RFC 5764 §4.1), so reports arriving prove SRTCP keyed
//! by it.
#![allow(clippy::unwrap_used)]

use std::f64::consts::PI;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use webphone_media::dtls_srtp::DtlsRole;
use webphone_media::sdp::{answer_offer, apply_answer, create_offer};
use webphone_media::{Codec, MediaOffer, MediaSession, PcmSink, PcmSource, RtpSocket, SrtpPolicy};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Sine {
    phase: f64,
    freq: f64,
}
impl PcmSource for Sine {
    fn read_frame(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            *s = (self.phase.sin() * 8000.0) as i16;
            self.phase = (self.phase + 2.0 * PI * self.freq / 8000.0) % (2.0 * PI);
        }
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<i16>>>);
impl PcmSink for Capture {
    fn write_frame(&mut self, frame: &[i16]) {
        self.0.lock().unwrap().extend_from_slice(frame);
    }
}

/// Level of `freq` in the last second of `samples`, dB (Goertzel).
fn tail_tone_db(samples: &[i16], freq: f64) -> f64 {
    let x = &samples[samples.len().saturating_sub(8000)..];
    let n = x.len().max(1) as f64;
    let coeff = 2.0 * (2.0 * PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    10.0 * ((s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n))
        .max(1e-12)
        .log10()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtls_srtp_sessions_key_rtp_and_rtcp_components_over_real_sockets() {
    let sock_a = RtpSocket::bind(LOOPBACK, None).await.unwrap();
    let sock_b = RtpSocket::bind(LOOPBACK, None).await.unwrap();
    assert!(
        sock_a.rtcp_addr().is_some() && sock_b.rtcp_addr().is_some(),
        "port pairs bound"
    );
    let prefs_a = MediaOffer::new(vec![Codec::Pcmu], true).with_dtls(true);
    let prefs_b = MediaOffer::new(vec![Codec::Pcmu], true).with_srtp(SrtpPolicy::Optional);
    // Like SIP peers without rtcp-mux (baresip's default): drop it from our offer.
    let offer = create_offer(1, 1, sock_a.local_addr(), &prefs_a).replace("a=rtcp-mux\r\n", "");
    let (answer, neg_b) = answer_offer(&offer, 2, sock_b.local_addr(), &prefs_b).unwrap();
    let neg_a = apply_answer(&answer, &prefs_a).unwrap();
    assert_eq!(neg_a.dtls.as_ref().map(|d| d.role), Some(DtlsRole::Server));
    assert_eq!(neg_b.dtls.as_ref().map(|d| d.role), Some(DtlsRole::Client));
    assert!(!neg_a.rtcp_mux && !neg_b.rtcp_mux);
    assert!(neg_a.srtp.is_none() && neg_b.srtp.is_none(), "no SDES keys");

    let (cap_a, cap_b) = (Capture::default(), Capture::default());
    let a = MediaSession::start(
        sock_a,
        neg_a,
        Box::new(Sine {
            phase: 0.0,
            freq: 1000.0,
        }),
        Box::new(cap_a.clone()),
    );
    let b = MediaSession::start(
        sock_b,
        neg_b,
        Box::new(Sine {
            phase: 0.0,
            freq: 600.0,
        }),
        Box::new(cap_b.clone()),
    );
    tokio::time::sleep(Duration::from_millis(6000)).await;
    let sa = a.stop().await;
    let sb = b.stop().await;
    eprintln!("A: {sa:?}\nB: {sb:?}");

    assert!(sa.encrypted && sb.encrypted, "SRTP keyed on both sides");
    assert_eq!((sa.srtp_failures, sb.srtp_failures), (0, 0));
    assert!(sa.packets_received > 200 && sb.packets_received > 200);
    // Only what left after the keys counts as sent, and all of it arrived.
    assert!(
        sa.packets_sent.abs_diff(sb.packets_received) <= 2
            && sb.packets_sent.abs_diff(sa.packets_received) <= 2,
        "sent and received differ"
    );
    let (heard_a, heard_b) = (
        cap_a.0.lock().unwrap().clone(),
        cap_b.0.lock().unwrap().clone(),
    );
    assert!(tail_tone_db(&heard_b, 1000.0) > 55.0, "B hears A's 1 kHz");
    assert!(tail_tone_db(&heard_a, 600.0) > 55.0, "A hears B's 600 Hz");
    // SRTCP over the port pair: only decryptable with the RTCP component's keys.
    assert!(
        sa.rtcp_received + sb.rtcp_received > 0,
        "no RTCP report crossed: A {} B {}",
        sa.rtcp_received,
        sb.rtcp_received
    );
}
