//! `rtpport`: a call's RTP port is the base port (`rtpport`, or `signalingport` + 2 when it is
//! 0), the next even port for each further call. Real engines over UDP on loopback; the ports
//! are read from the SDP of the messages they sent (`getsipmessage`).

#![allow(clippy::unwrap_used)]
mod common;

use common::*;

/// The port of the `m=audio` line of the newest sent message of `kind` (3 INVITE, 4 200 OK)
/// on the active line.
async fn sent_audio_port(p: &TestPhone, kind: &str) -> u16 {
    let msg = p.sent_message(kind).await;
    msg.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio in {msg}"))
}

/// An even port the system just handed out, with room above it.
fn free_even_port() -> u16 {
    loop {
        let p = free_port() & !1;
        if p < 60_000 {
            return p;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_take_rtp_ports_from_the_base_port_upwards() {
    let (pa, pc) = (free_port(), free_port());
    let mut ap = auto_answer("alice");
    ap.push(("signalingport", pa.to_string()));
    let mut alice = TestPhone::new(&ap).await;
    let mut cp = auto_answer("carol");
    cp.push(("signalingport", pc.to_string()));
    cp.push(("rtpport", "0".into()));
    let mut carol = TestPhone::new(&cp).await;
    let base = free_even_port();
    let mut bp = auto_answer("bob");
    bp.push(("rtpport", base.to_string()));
    let mut bob = TestPhone::new(&bp).await;

    bob.api("call", &[&format!("sip:alice@127.0.0.1:{pa}")])
        .await;
    bob.call_state("callConnected", 10).await;
    alice.call_state("callConnected", 10).await;
    bob.api("call", &[&format!("sip:carol@127.0.0.1:{pc}")])
        .await;
    carol.call_state("callConnected", 10).await;

    bob.api("setline", &["1"]).await;
    assert_eq!(
        sent_audio_port(&bob, "3").await,
        base,
        "first call: the base port"
    );
    bob.api("setline", &["2"]).await;
    assert_eq!(
        sent_audio_port(&bob, "3").await,
        base + 2,
        "second call: the next even port"
    );
    // rtpport 0: signalingport + 2 (when free; the even port above an odd one).
    let even = |p: u16| p + p % 2;
    assert_eq!(sent_audio_port(&alice, "4").await, even(pa + 2));
    assert_eq!(sent_audio_port(&carol, "4").await, even(pc + 2));

    bob.api("hangup", &["-2"]).await;
    for p in [&alice, &bob, &carol] {
        p.stop().await;
    }
}
