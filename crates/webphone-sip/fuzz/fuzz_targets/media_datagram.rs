//! The media socket of one call fed hostile datagrams: the RFC 7983 §7 first-byte demux, the
//! ICE transport (STUN and TURN server answers, connectivity checks, relayed data; RFC 8445,
//! RFC 5766) and the DTLS-SRTP handshake (RFC 5764) as client and as server, then RTP/RTCP.
//!
//! Input: a sequence of records `[ctrl, len, len bytes..]`. `ctrl` bits 0-1 pick the source
//! address (STUN server, TURN server, the peer's candidate, a stranger), bit 2 copies the
//! transaction id of our last outgoing STUN request into the datagram (so that server
//! answers are matched and parsed past the transaction lookup), bit 3 advances the clock by
//! `(ctrl >> 4) * 100 ms` and runs the timers. Nothing may panic.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use webphone_media::demux::{classify, PacketKind};
use webphone_media::dtls_srtp::{
    DtlsIdentity, DtlsParams, DtlsRole, DtlsSrtp, Fingerprint, HashFunc,
};
use webphone_media::ice::sdp::RemoteIce;
use webphone_media::ice::{IceConfig, IceTransport, TurnServer};
use webphone_media::{rtcp, rtp};

const HOST: &str = "127.0.0.1:40000";
const STUN: &str = "127.0.0.1:3478";
const TURN: &str = "127.0.0.1:3479";
const PEER: &str = "127.0.0.1:50000";
const STRANGER: &str = "127.0.0.1:50002";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// The transaction id (bytes 8..20, RFC 5389 §6) of the last STUN message we sent.
fn note_txid(out: &[u8], txid: &mut Option<[u8; 12]>) {
    if classify(out) == PacketKind::Stun && out.len() >= 20 {
        let mut id = [0u8; 12];
        id.copy_from_slice(&out[8..20]);
        *txid = Some(id);
    }
}

fuzz_target!(|data: &[u8]| {
    // A TURN server's TCP stream, as the stand-in frames it: never past the buffer.
    if let webphone_media::ice::turn_tcp::Frame::Whole { len, framed } =
        webphone_media::ice::turn_tcp::frame_len(data)
    {
        assert!(len <= framed && framed <= data.len());
    }
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let start = Instant::now();
    let mut now = start;
    let cfg = IceConfig {
        stun: Some(addr(STUN)),
        turn: Some(TurnServer {
            addr: addr(TURN),
            username: "fuzz".into(),
            password: "secret".into(),
            tcp: false,
            tls: None,
        }),
        relay_only: mode & 1 != 0,
        ..IceConfig::default()
    };
    let Ok(mut ice) = IceTransport::new(&cfg, addr(HOST), now) else {
        return;
    };
    let remote = RemoteIce {
        ufrag: "peer".into(),
        pwd: "peerpasswordpeerpassword".into(),
        candidates: vec![format!("1 1 udp 2130706431 127.0.0.1 50000 typ host")],
        lite: mode & 2 != 0,
        rtcp_mux: true,
    };
    if mode & 4 != 0 {
        let _ = ice.set_remote(&remote, mode & 8 != 0, now);
    }
    let Ok(identity) = DtlsIdentity::process() else {
        return;
    };
    let params = DtlsParams {
        role: if mode & 16 != 0 {
            DtlsRole::Client
        } else {
            DtlsRole::Server
        },
        remote_fingerprint: Fingerprint::of_der(HashFunc::Sha256, b"not the peer's certificate"),
    };
    let Ok(mut dtls) = DtlsSrtp::new(identity, &params, addr(PEER), now) else {
        return;
    };
    let mut txid = None;
    let sources = [addr(STUN), addr(TURN), addr(PEER), addr(STRANGER)];
    while let [ctrl, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (dgram, next) = tail.split_at(n);
        rest = next;
        while let Some((out, _)) = ice.poll_transmit() {
            note_txid(&out, &mut txid);
        }
        while dtls.poll_transmit().is_some() {}
        let mut dgram = dgram.to_vec();
        if ctrl & 4 != 0 && dgram.len() >= 20 {
            if let Some(id) = txid {
                dgram[8..20].copy_from_slice(&id);
            }
        }
        let from = sources[usize::from(ctrl & 3)];
        if ctrl & 8 != 0 {
            now += Duration::from_millis(100 * u64::from(ctrl >> 4));
            ice.handle_timeout(now);
            let _ = dtls.handle_timeout(now);
        }
        let Some((media, peer)) = ice.handle_datagram(now, &dgram, from) else {
            continue;
        };
        let media = media.into_owned();
        match classify(&media) {
            PacketKind::Dtls => {
                let _ = dtls.handle_datagram(&media, peer, now);
            }
            PacketKind::Rtp => {
                if rtcp::is_rtcp(&media) {
                    let mut st = rtcp::RtcpState::new(1, "fuzz".into(), now, 0, 1);
                    let _ = st.on_packet(&media, now);
                } else {
                    let _ = rtp::parse(&media);
                }
            }
            _ => {}
        }
        ice.send_media(now, b"\x80\x00\x00\x01media", peer);
        while ice.poll_event().is_some() {}
    }
    ice.close(now);
    dtls.close(now);
    while ice.poll_transmit().is_some() {}
    while dtls.poll_transmit().is_some() {}
});
