//! RFC 3261 §17 transaction timers as seen on the wire, default T1 = 500 ms, T2 = 4 s.
//! A peer on a real UDP socket stays silent (or answers only what the scenario needs) and
//! records when each copy of a request or response arrives:
//!
//! - INVITE client, Timer A/B (§17.1.1.2): copies at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s,
//!   then the call fails with 408 at 64·T1 = 32 s;
//! - INVITE client after a provisional response: no more copies (Proceeding state);
//! - non-INVITE client, Timer E/F (§17.1.2.2): intervals double from T1 up to T2, so copies
//!   at 0, 0.5, 1.5, 3.5 and then every 4 s, and 408 at 32 s;
//! - UAS core, 2xx to INVITE without ACK (§13.3.1.4): the 200 is sent again at T1, 2·T1,
//!   ... capped at T2, and after 64·T1 the call ends with a BYE;
//! - INVITE server, Timer G/H (§17.2.1): a 486 never ACKed is sent again on the same schedule
//!   until 64·T1, then no more;
//! - server transactions absorb retransmitted requests (§17.2.1, §17.2.2): a repeated INVITE
//!   gets the last provisional again and rings once; a repeated MESSAGE gets the 200 again and
//!   is delivered once;
//! - INVITE server, Confirmed state (Timer I): after the ACK of a 486, no more 486 and no
//!   answer to further ACK copies;
//! - non-INVITE server, Completed state (Timer J): a MESSAGE copy 28 s after the first is
//!   answered and absorbed, one 36 s after it (past 64·T1) is a new request;
//! - client transactions after their final response (Timer D, Timer K): each copy of a 486
//!   is ACKed again but ends the call once; copies of a MESSAGE's 200 report it once;
//! - over TCP (a reliable transport) an unanswered INVITE is written once (no Timer A) and
//!   still fails on Timer B.
//!
//! Each scenario waits up to 64·T1 = 32 s, so one test runs them all at once (a 2-core CI
//! machine would otherwise run them two by two).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{header, response_to, Peer, OFFER};
use tokio::net::UdpSocket;
use webphone_sip::SipEvent;

/// Timing slack per copy: scheduling on a loaded 2-core machine.
const SLACK: f64 = 0.35;
/// 64·T1 plus slack: every timer-bound test is over by then.
const TIMEOUT_WAIT: Duration = Duration::from_secs(40);

/// Seconds from `t0` at which each datagram whose first line starts with `start` arrived on
/// `sock` during `listen`, with the text of the first one.
async fn arrivals(
    sock: &UdpSocket,
    start: &str,
    t0: Instant,
    listen: Duration,
) -> (Vec<f64>, String) {
    let mut times = Vec::new();
    let mut first = String::new();
    let mut buf = vec![0u8; 8192];
    let end = tokio::time::Instant::now() + listen;
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(end, sock.recv_from(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with(start) {
            times.push(t0.elapsed().as_secs_f64());
            if first.is_empty() {
                first = text;
            }
        }
    }
    (times, first)
}

/// `times` match `expected` (seconds from the first copy) within [`SLACK`] each. The clock
/// is aligned on the second copy: the timers start when the transaction is created, and on a
/// busy machine the first copy may leave a little after that.
fn assert_schedule(what: &str, times: &[f64], expected: &[f64]) {
    let base = match (times.get(1), expected.get(1)) {
        (Some(t), Some(e)) => t - e,
        _ => times.first().copied().unwrap_or(0.0),
    };
    let rel: Vec<f64> = times.iter().map(|t| t - base).collect();
    eprintln!("{what}: copies at {rel:.2?} (aligned on the second copy)");
    assert!(
        rel.first().is_some_and(|f| *f <= SLACK),
        "{what}: the first copy at {rel:.2?} comes after the second was due"
    );
    assert_eq!(
        rel.len(),
        expected.len(),
        "{what}: {} copies at {rel:.2?}, expected {expected:?}",
        rel.len()
    );
    for (got, want) in rel.iter().zip(expected).skip(1) {
        assert!(
            (got - want).abs() <= SLACK + want * 0.02,
            "{what}: copy at {got:.2} s, expected {want} s (all: {rel:.2?})"
        );
    }
}

/// The copies of a request sent every T1·2^k capped at `cap`, until 64·T1.
fn schedule(cap: f64) -> Vec<f64> {
    let (mut t, mut step, mut out) = (0.0, 0.5, vec![0.0]);
    loop {
        t += step;
        if t >= 32.0 {
            return out;
        }
        out.push(t);
        step = f64::min(step * 2.0, cap);
    }
}

async fn unanswered_invite_over_udp_follows_timer_a_and_fails_on_timer_b() {
    let mut a = Peer::start("timer-a").await;
    let (silent, target) = far_end().await;
    let t0 = Instant::now();
    let call = a.ua.invite(&target, OFFER.into()).unwrap();
    let (times, first) = arrivals(&silent, "INVITE ", t0, Duration::from_secs(33)).await;
    assert!(first.contains("CSeq: 1 INVITE"), "{first}");
    assert_schedule(
        "INVITE (Timer A, doubling without cap)",
        &times,
        &schedule(f64::MAX),
    );
    let ended = a
        .until(
            "the call's end",
            |e| matches!(e, SipEvent::Ended { call: c, .. } if *c == call),
        )
        .await;
    let at = t0.elapsed().as_secs_f64();
    match ended.last() {
        Some(SipEvent::Ended { code, .. }) => assert_eq!(*code, Some(408), "{ended:?}"),
        other => panic!("expected Ended, got {other:?}"),
    }
    assert!(
        (31.5..36.0).contains(&at),
        "Timer B ends the attempt at 64·T1 = 32 s, not {at:.1} s"
    );
    a.ua.shutdown().await;
}

async fn provisional_response_stops_invite_retransmissions() {
    let a = Peer::start("timer-a-stops").await;
    let (peer, target) = far_end().await;
    let t0 = Instant::now();
    let call = a.ua.invite(&target, OFFER.into()).unwrap();
    let mut buf = vec![0u8; 8192];
    let (n, src) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
    let trying = response_to(&req, "100 Trying", None, "");
    peer.send_to(trying.as_bytes(), src).await.unwrap();
    let (times, _) = arrivals(&peer, "INVITE ", t0, Duration::from_secs(5)).await;
    assert!(
        times.is_empty(),
        "INVITE sent again after 100 Trying (§17.1.1.2 Proceeding): {times:.2?}"
    );
    // Still ringing as far as the user agent is concerned: cancel it.
    a.ua.hangup(call);
    let (cancels, _) = arrivals(&peer, "CANCEL ", t0, Duration::from_secs(1)).await;
    assert!(
        !cancels.is_empty(),
        "hang-up of a proceeding call sends CANCEL"
    );
    a.ua.shutdown().await;
}

async fn unanswered_message_over_udp_follows_timer_e_capped_at_t2_and_fails_on_timer_f() {
    let mut a = Peer::start("timer-e").await;
    let (silent, target) = far_end().await;
    let t0 = Instant::now();
    let key = a.ua.send_message(&target, "text/plain", "hello").unwrap();
    let (times, _) = arrivals(&silent, "MESSAGE ", t0, Duration::from_secs(33)).await;
    assert_schedule("MESSAGE (Timer E, capped at T2)", &times, &schedule(4.0));
    let status = a
        .until(
            "the MESSAGE outcome",
            |e| matches!(e, SipEvent::MessageStatus { key: k, .. } if *k == key),
        )
        .await;
    let at = t0.elapsed().as_secs_f64();
    match status.last() {
        Some(SipEvent::MessageStatus { code, .. }) => assert_eq!(*code, 408, "{status:?}"),
        other => panic!("expected MessageStatus, got {other:?}"),
    }
    assert!(
        (31.5..36.0).contains(&at),
        "Timer F ends the MESSAGE at 64·T1 = 32 s, not {at:.1} s"
    );
    a.ua.shutdown().await;
}

async fn answered_call_without_ack_resends_200_then_hangs_up_with_bye() {
    let mut b = Peer::start("no-ack").await;
    let (caller, _, call) = incoming_call(&mut b, "noack").await;
    let t0 = Instant::now();
    b.ua.answer(call, OFFER.into());
    // Never ACKed: the 200 comes again and again until 64·T1, then a BYE ends the call.
    let mut oks = Vec::new();
    let mut bye_at = None;
    let mut buf = vec![0u8; 8192];
    let end = tokio::time::Instant::now() + TIMEOUT_WAIT;
    while let Ok(Ok((n, src))) = tokio::time::timeout_at(end, caller.recv_from(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("SIP/2.0 200") && header(&text, "CSeq").ends_with("INVITE") {
            oks.push(t0.elapsed().as_secs_f64());
        } else if text.starts_with("BYE ") {
            bye_at = Some(t0.elapsed().as_secs_f64());
            let ok = response_to(&text, "200 OK", None, "");
            caller.send_to(ok.as_bytes(), src).await.unwrap();
            break;
        }
    }
    assert_schedule("200 OK without ACK (§13.3.1.4)", &oks, &schedule(4.0));
    let bye_at = bye_at.expect("a BYE after 64·T1 without ACK");
    assert!(
        (31.5..36.0).contains(&bye_at),
        "the BYE comes at 64·T1 = 32 s, not {bye_at:.1} s"
    );
    let ended = b
        .until(
            "the call's end",
            |e| matches!(e, SipEvent::Ended { call: c, .. } if *c == call),
        )
        .await;
    eprintln!("ended: {:?}", ended.last());
    b.ua.shutdown().await;
}

/// An INVITE from `port` on loopback to `to` with a fixed branch (so a resend is a
/// retransmission of the same transaction).
fn invite_from(port: u16, to: &str, tag: &str) -> String {
    format!(
        "INVITE {to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{tag}\r\n\
         From: <sip:alice@127.0.0.1:{port}>;tag={tag}\r\n\
         To: <{to}>\r\n\
         Call-ID: {tag}-{port}@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@127.0.0.1:{port}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{OFFER}",
        OFFER.len()
    )
}

/// A socket that stands for the far end of an outgoing request, and its URI.
/// A MESSAGE "hello" to `to` from alice at 127.0.0.1:`port`; `id` makes its branch, From tag
/// and Call-ID (the same text sent again is a retransmission).
fn message_to(to: &str, port: u16, id: &str) -> String {
    format!(
        "MESSAGE {to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{id}\r\n\
         From: <sip:alice@127.0.0.1:{port}>;tag={id}\r\n\
         To: <{to}>\r\n\
         Call-ID: {id}-{port}@test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 5\r\n\r\nhello"
    )
}

async fn far_end() -> (UdpSocket, String) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("sip:bob@{}", sock.local_addr().unwrap());
    (sock, uri)
}

/// The first datagram on `sock` within 5 s for which `wanted` holds (others skipped), and
/// where it came from.
async fn recv_matching(
    sock: &UdpSocket,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> (String, std::net::SocketAddr) {
    let mut buf = vec![0u8; 8192];
    loop {
        let (n, src) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {what} within 5 s"))
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if wanted(&text) {
            return (text, src);
        }
    }
}

/// `text` sent `copies` times to `to`, 200 ms apart: retransmissions of one message.
async fn send_copies(sock: &UdpSocket, text: &str, to: std::net::SocketAddr, copies: usize) {
    for _ in 0..copies {
        sock.send_to(text.as_bytes(), to).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The events of `p` (traces left out) until none comes for `quiet`.
async fn events_until_quiet(p: &mut Peer, quiet: Duration) -> Vec<SipEvent> {
    let mut events = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(quiet, p.rx.recv()).await {
        if !matches!(ev, SipEvent::Trace { .. }) {
            events.push(ev);
        }
    }
    events
}

/// A caller socket sends `b` an INVITE (branch and tags from `tag`) and `b` rings: the
/// socket, the INVITE's text (to send it again) and the call.
async fn incoming_call(b: &mut Peer, tag: &str) -> (UdpSocket, String, webphone_sip::CallKey) {
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = caller.local_addr().unwrap().port();
    let invite = invite_from(port, &b.uri("bob"), tag);
    caller
        .send_to(invite.as_bytes(), b.ua.local_addr())
        .await
        .unwrap();
    let (call, _) = b.incoming().await;
    (caller, invite, call)
}

async fn rejected_invite_without_ack_resends_486_on_timer_g_until_timer_h() {
    let mut b = Peer::start("timer-g").await;
    let (caller, _, call) = incoming_call(&mut b, "timerg").await;
    let t0 = Instant::now();
    b.ua.reject(call, 486);
    let (times, _) = arrivals(&caller, "SIP/2.0 486", t0, Duration::from_secs(34)).await;
    assert_schedule("486 without ACK (Timer G until H)", &times, &schedule(4.0));
    b.ua.shutdown().await;
}

async fn retransmitted_requests_are_absorbed_by_their_server_transactions() {
    let mut b = Peer::start("absorb").await;
    let (caller, invite, call) = incoming_call(&mut b, "absorbinv").await;
    let port = caller.local_addr().unwrap().port();
    b.ua.ringing(call);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    caller
        .send_to(invite.as_bytes(), b.ua.local_addr())
        .await
        .unwrap();
    let (ringing, _) = arrivals(&caller, "SIP/2.0 180", t0, Duration::from_secs(1)).await;
    assert!(
        ringing.len() >= 2,
        "the repeated INVITE gets the 180 again: {ringing:.2?}"
    );
    // A MESSAGE twice: delivered once, answered twice.
    let message = message_to(&b.uri("bob"), port, "absorbmsg");
    send_copies(&caller, &message, b.ua.local_addr(), 2).await;
    let (oks, _) = arrivals(&caller, "SIP/2.0 200", t0, Duration::from_secs(1)).await;
    assert_eq!(oks.len(), 2, "each MESSAGE copy is answered 200: {oks:.2?}");
    let events = events_until_quiet(&mut b, Duration::from_millis(500)).await;
    let count = |f: fn(&SipEvent) -> bool| events.iter().filter(|e| f(e)).count();
    let delivered = count(|e| matches!(e, SipEvent::MessageReceived { .. }));
    let rings = count(|e| matches!(e, SipEvent::Incoming { .. }));
    assert_eq!(delivered, 1, "the MESSAGE is delivered once");
    assert_eq!(rings, 0, "the repeated INVITE does not ring again");
    b.ua.reject(call, 603);
    b.ua.shutdown().await;
}

/// Non-INVITE server, Completed state (Timer J, §17.2.2): for 64·T1 after its 200, a copy of
/// a MESSAGE is answered from the transaction and not delivered again; once Timer J has
/// ended the transaction, the same request is a new one and reaches the user agent again.
async fn message_copies_are_absorbed_until_timer_j() {
    let mut b = Peer::start("timer-j").await;
    let (caller, _) = far_end().await;
    let port = caller.local_addr().unwrap().port();
    let message = message_to(&b.uri("bob"), port, "timerj");
    let delivered = |events: &[SipEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, SipEvent::MessageReceived { .. }))
            .count()
    };
    let t0 = Instant::now();
    let mut answers = 0;
    let mut deliveries = Vec::new();
    // At 0, 28 s (inside 64·T1 = 32 s) and 36 s (after it).
    for at in [0u64, 28, 36] {
        tokio::time::sleep_until((t0 + Duration::from_secs(at)).into()).await;
        let sent = Instant::now();
        send_copies(&caller, &message, b.ua.local_addr(), 1).await;
        let (oks, _) = arrivals(&caller, "SIP/2.0 200", sent, Duration::from_secs(1)).await;
        answers += oks.len();
        let events = events_until_quiet(&mut b, Duration::from_millis(300)).await;
        deliveries.push(delivered(&events));
    }
    assert_eq!(answers, 3, "every copy is answered 200");
    assert_eq!(
        deliveries,
        vec![1, 0, 1],
        "absorbed within Timer J, a new request after it"
    );
    b.ua.shutdown().await;
}

/// INVITE server, Confirmed state (Timer I, §17.2.1): once the ACK of a 486 has arrived,
/// the 486 is not sent again, and further copies of the ACK are absorbed: no answer, no
/// event.
async fn acked_rejection_stops_resending_and_absorbs_late_acks() {
    let mut b = Peer::start("timer-i").await;
    let (caller, invite, call) = incoming_call(&mut b, "timeri").await;
    b.ua.reject(call, 486);
    let (rejected, _) =
        recv_matching(&caller, "final response", |t| !t.starts_with("SIP/2.0 1")).await;
    assert!(rejected.starts_with("SIP/2.0 486"), "{rejected}");
    // The ACK of a non-2xx final response belongs to the INVITE transaction: same branch,
    // the To tag of the response (§17.1.1.3).
    let port = caller.local_addr().unwrap().port();
    let ack = format!(
        "ACK {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKtimeri\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        ruri = invite
            .split_whitespace()
            .nth(1)
            .expect("INVITE request line"),
        from = header(&invite, "From"),
        to = header(&rejected, "To"),
        call_id = header(&invite, "Call-ID"),
    );
    let t0 = Instant::now();
    send_copies(&caller, &ack, b.ua.local_addr(), 3).await;
    // Without the ACK the 486 would come again at 0.5 s, 1.5 s and 3.5 s (Timer G).
    let (after, first) = arrivals(&caller, "", t0, Duration::from_secs(4)).await;
    assert!(
        after.is_empty(),
        "nothing answers an ACK, and the 486 is not resent after it: {after:.2?} {first}"
    );
    let events = events_until_quiet(&mut b, Duration::from_millis(300)).await;
    assert!(
        events
            .iter()
            .all(|e| matches!(e, SipEvent::Ended { call: c, code: Some(486), .. } if *c == call)),
        "the late ACKs reach nobody: {events:?}"
    );
    b.ua.shutdown().await;
}

/// Client transactions after their final response (§17.1.1.2 Completed / Timer D, §17.1.2.2
/// Timer K): copies of the final response are absorbed. Each copy of a 486 to our INVITE is
/// ACKed again (the far end did not get the ACK) yet the call ends once; copies of the 200
/// to our MESSAGE report the outcome once.
async fn repeated_final_responses_are_absorbed_by_client_transactions() {
    let mut a = Peer::start("timer-k").await;
    let (far, target) = far_end().await;
    // INVITE answered 486 three times.
    let call = a.ua.invite(&target, OFFER.into()).unwrap();
    let (invite, src) = recv_matching(&far, "INVITE", |_| true).await;
    assert!(invite.starts_with("INVITE "), "{invite}");
    let busy = response_to(&invite, "486 Busy Here", Some("far486"), "");
    let t0 = Instant::now();
    send_copies(&far, &busy, src, 3).await;
    let (acks, _) = arrivals(&far, "ACK ", t0, Duration::from_secs(1)).await;
    assert_eq!(acks.len(), 3, "each copy of the 486 is ACKed: {acks:.2?}");
    let ended = a
        .until(
            "the INVITE's end",
            |e| matches!(e, SipEvent::Ended { call: c, .. } if *c == call),
        )
        .await;
    assert!(
        matches!(
            ended.last(),
            Some(SipEvent::Ended {
                code: Some(486),
                ..
            })
        ),
        "{ended:?}"
    );
    // MESSAGE answered 200 three times.
    let key = a.ua.send_message(&target, "text/plain", "hello").unwrap();
    let (message, src) = recv_matching(&far, "MESSAGE", |_| true).await;
    assert!(message.starts_with("MESSAGE "), "{message}");
    let ok = response_to(&message, "200 OK", Some("far200"), "");
    send_copies(&far, &ok, src, 3).await;
    let (statuses, others): (Vec<_>, Vec<_>) = events_until_quiet(&mut a, Duration::from_secs(1))
        .await
        .into_iter()
        .partition(|e| matches!(e, SipEvent::MessageStatus { key: k, .. } if *k == key));
    let outcomes: Vec<u16> = statuses
        .iter()
        .filter_map(|e| match e {
            SipEvent::MessageStatus { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes, vec![200], "one outcome for the MESSAGE");
    assert!(
        others
            .iter()
            .all(|e| !matches!(e, SipEvent::Ended { .. } | SipEvent::Incoming { .. })),
        "no further call events: {others:?}"
    );
    a.ua.shutdown().await;
}

/// Reliable transports (§17.1.1.2, §17.1.2.2): Timers A and E are not set, so an
/// unanswered INVITE over TCP is written once, and still fails on Timer B (64·T1). The far
/// end is a TCP listener that reads and never answers.
async fn unanswered_invite_over_tcp_is_sent_once_and_fails_on_timer_b() {
    use tokio::io::AsyncReadExt;
    let mut a = Peer::start_with(
        "timer-b-tcp",
        webphone_sip::Transport::Tcp,
        webphone_sip::TransportOptions::default(),
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("sip:bob@{};transport=tcp", listener.local_addr().unwrap());
    let t0 = Instant::now();
    let call = a.ua.invite(&target, OFFER.into()).unwrap();
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("a TCP connection")
        .unwrap();
    let reader = tokio::spawn(async move {
        let mut all = Vec::new();
        let mut buf = vec![0u8; 8192];
        let end = tokio::time::Instant::now() + TIMEOUT_WAIT;
        while let Ok(Ok(n)) = tokio::time::timeout_at(end, conn.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    // Nothing can happen before Timer B (the far end never answers).
    tokio::time::sleep(Duration::from_secs(30)).await;
    let ended = a
        .until(
            "the INVITE's end",
            |e| matches!(e, SipEvent::Ended { call: c, .. } if *c == call),
        )
        .await;
    let at = t0.elapsed().as_secs_f64();
    assert!(
        (31.5..36.0).contains(&at),
        "Timer B ends the INVITE at 64·T1 = 32 s over TCP too, not {at:.1} s ({:?})",
        ended.last()
    );
    assert!(
        matches!(
            ended.last(),
            Some(SipEvent::Ended {
                code: Some(408),
                ..
            })
        ),
        "{ended:?}"
    );
    a.ua.shutdown().await;
    let stream = reader.await.unwrap();
    let invites = stream.matches("INVITE sip:").count();
    assert_eq!(
        invites, 1,
        "an INVITE over TCP is not retransmitted: {invites} copies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_timers_on_the_wire() {
    tokio::join!(
        unanswered_invite_over_udp_follows_timer_a_and_fails_on_timer_b(),
        provisional_response_stops_invite_retransmissions(),
        unanswered_message_over_udp_follows_timer_e_capped_at_t2_and_fails_on_timer_f(),
        answered_call_without_ack_resends_200_then_hangs_up_with_bye(),
        rejected_invite_without_ack_resends_486_on_timer_g_until_timer_h(),
        retransmitted_requests_are_absorbed_by_their_server_transactions(),
        acked_rejection_stops_resending_and_absorbs_late_acks(),
        repeated_final_responses_are_absorbed_by_client_transactions(),
        message_copies_are_absorbed_until_timer_j(),
        unanswered_invite_over_tcp_is_sent_once_and_fails_on_timer_b(),
    );
}
