//! Unknown or unsupported requests and ghost calls, sent as raw UDP datagrams to a real
//! user agent on loopback: the responses on the wire and the absence of `Incoming`.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::Peer;
use tokio::net::UdpSocket;
use webphone_sip::{AccountConfig, SipEvent};

async fn exchange(ua: &Peer, request: &str) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let text = request.replace("PORT", &port.to_string());
    sock.send_to(text.as_bytes(), ua.ua.local_addr())
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    // Skip provisional responses (100 Trying).
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("a response")
            .unwrap();
        let resp = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !resp.starts_with("SIP/2.0 1") {
            return resp;
        }
    }
}

fn invite(user: &str, extra: &str, ctype: &str) -> String {
    let body = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:{user}@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bK{user}{}\r\n\
         From: <sip:100@127.0.0.1:PORT>;tag=scan\r\n\
         To: <sip:{user}@127.0.0.1>\r\n\
         Call-ID: {user}-{}@scanner\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:100@127.0.0.1:PORT>\r\n\
         Max-Forwards: 70\r\n\
         {extra}\
         Content-Type: {ctype}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        rand_tag(),
        rand_tag(),
        body.len()
    )
}

fn rand_tag() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn ua_with_server() -> Peer {
    let ua = Peer::start("ua").await;
    // A server is configured (not reachable; no registration needed for the user check).
    ua.ua.set_account(AccountConfig {
        server: Some("127.0.0.1:9".into()),
        username: "1001".into(),
        password: "secret".into(),
        ..Default::default()
    });
    ua
}

#[tokio::test]
async fn foreign_invite_from_a_scanner_gets_404_and_never_rings() {
    let mut ua = ua_with_server().await;
    let resp = exchange(&ua, &invite("100", "", "application/sdp")).await;
    assert!(resp.starts_with("SIP/2.0 404"), "{resp}");
    ua.assert_quiet(Duration::from_millis(500)).await;
    // Addressed to our user it rings (not registered: the source is not checked).
    let resp_task = {
        let text = invite("1001", "", "application/sdp");
        let addr = ua.ua.local_addr();
        tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = sock.local_addr().unwrap().port();
            let text = text.replace("PORT", &port.to_string());
            sock.send_to(text.as_bytes(), addr).await.unwrap();
        })
    };
    resp_task.await.unwrap();
    match ua.next().await {
        SipEvent::Incoming { to_user, .. } => assert_eq!(to_user, "1001"),
        other => panic!("expected Incoming, got {other:?}"),
    }
}

#[tokio::test]
async fn direct_calls_allowed_when_configured() {
    let mut ua = ua_with_server().await;
    ua.ua.set_accept_direct(true);
    let text = invite("anyone", "", "application/sdp");
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    sock.send_to(
        text.replace("PORT", &port.to_string()).as_bytes(),
        ua.ua.local_addr(),
    )
    .await
    .unwrap();
    assert!(matches!(ua.next().await, SipEvent::Incoming { .. }));
}

#[tokio::test]
async fn unknown_require_gets_420_with_unsupported() {
    let mut ua = Peer::start("ua").await;
    let resp = exchange(
        &ua,
        &invite("bob", "Require: 100rel, foo\r\n", "application/sdp"),
    )
    .await;
    assert!(resp.starts_with("SIP/2.0 420"), "{resp}");
    assert!(resp.contains("Unsupported: foo"), "{resp}");
    ua.assert_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn non_sdp_body_gets_415_with_accept() {
    let mut ua = Peer::start("ua").await;
    let resp = exchange(&ua, &invite("bob", "", "text/plain")).await;
    assert!(resp.starts_with("SIP/2.0 415"), "{resp}");
    assert!(resp.contains("Accept: application/sdp"), "{resp}");
    ua.assert_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn unsupported_method_gets_405_with_allow_and_stray_bye_481() {
    // SUBSCRIBE is a method we do not implement. (A method token rsipstack's parser does
    // not know at all, e.g. `FOO`, is dropped by the parser without a response.)
    let ua = Peer::start("ua").await;
    let req = "SUBSCRIBE sip:bob@127.0.0.1 SIP/2.0\r\n\
               Via: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKfoo1\r\n\
               From: <sip:100@127.0.0.1:PORT>;tag=a\r\n\
               To: <sip:bob@127.0.0.1>\r\n\
               Call-ID: foo@scanner\r\n\
               CSeq: 1 SUBSCRIBE\r\n\
               Event: presence\r\n\
               Max-Forwards: 70\r\n\
               Content-Length: 0\r\n\r\n";
    let resp = exchange(&ua, req).await;
    assert!(resp.starts_with("SIP/2.0 405"), "{resp}");
    assert!(resp.contains("Allow: INVITE"), "{resp}");
    let bye = "BYE sip:bob@127.0.0.1 SIP/2.0\r\n\
               Via: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKbye1\r\n\
               From: <sip:100@127.0.0.1:PORT>;tag=a\r\n\
               To: <sip:bob@127.0.0.1>;tag=nosuch\r\n\
               Call-ID: nodialog@scanner\r\n\
               CSeq: 2 BYE\r\n\
               Max-Forwards: 70\r\n\
               Content-Length: 0\r\n\r\n";
    let resp = exchange(&ua, bye).await;
    assert!(resp.starts_with("SIP/2.0 481"), "{resp}");
}

/// An OPTIONS from `127.0.0.1:PORT` (RFC 3261 §11).
fn options(n: u32) -> String {
    format!(
        "OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKopt{n}\r\n\
         From: <sip:100@127.0.0.1:PORT>;tag=o{n}\r\n\
         To: <sip:1001@127.0.0.1>\r\n\
         Call-ID: opt{n}@scanner\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends `request` from `sock` and waits up to `wait` for its final response (matched by
/// Call-ID: earlier refusals are still being retransmitted to the same socket).
async fn final_response(
    ua: &Peer,
    sock: &UdpSocket,
    request: &str,
    wait: Duration,
) -> Option<String> {
    let port = sock.local_addr().unwrap().port();
    let text = request.replace("PORT", &port.to_string());
    let call_id = text
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .unwrap()
        .to_string();
    sock.send_to(text.as_bytes(), ua.ua.local_addr())
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let end = tokio::time::Instant::now() + wait;
    loop {
        let (n, _) = tokio::time::timeout_at(end, sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        let resp = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !resp.starts_with("SIP/2.0 1") && resp.contains(&format!("Call-ID: {call_id}")) {
            return Some(resp);
        }
    }
}

/// The answers one scanning source got: 404s until the limit, then silence.
#[derive(Default)]
struct Tally {
    answered: u32,
    ignored: u32,
}

impl Tally {
    /// How long to wait for the next answer: shorter once the limit should have been hit.
    fn wait(&self) -> Duration {
        Duration::from_millis(if self.answered > 32 { 700 } else { 3000 })
    }

    fn note(&mut self, resp: Option<String>) {
        match resp {
            Some(r) => {
                assert!(r.starts_with("SIP/2.0 404"), "{r}");
                assert_eq!(self.ignored, 0, "answered again after being ignored: {r}");
                self.answered += 1;
            }
            None => self.ignored += 1,
        }
    }

    /// 32 refusals within the window, one more that crosses the limit, then none.
    fn assert_limited(&self, over: &str) {
        let (answered, ignored) = (self.answered, self.ignored);
        println!(
            "refusals over {over} answered before the limit: {answered}, then ignored: {ignored}"
        );
        assert_eq!((answered, ignored), (33, 7));
    }
}

/// Issue 9 (scanners: repeated failures are rate-limited): one source that keeps provoking
/// refusals (here foreign INVITEs, 404) is answered 32 times within the window, once more
/// for the refusal that crosses the limit, then ignored, OPTIONS included; another source is
/// still answered, and nothing ever rang.
#[tokio::test]
async fn repeated_refusals_from_one_source_are_rate_limited_and_others_still_answered() {
    let mut ua = ua_with_server().await;
    let scanner = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut tally = Tally::default();
    for _ in 0..40 {
        let foreign = invite("100", "", "application/sdp");
        tally.note(final_response(&ua, &scanner, &foreign, tally.wait()).await);
    }
    tally.assert_limited("UDP");
    let blocked = final_response(&ua, &scanner, &options(1), Duration::from_millis(700)).await;
    assert!(blocked.is_none(), "the limited source got {blocked:?}");

    // Another source is unaffected: OPTIONS 200, a foreign INVITE its 404.
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ok = final_response(&ua, &other, &options(2), Duration::from_secs(3)).await;
    assert!(
        ok.as_deref().is_some_and(|r| r.starts_with("SIP/2.0 200")),
        "{ok:?}"
    );
    let refused = final_response(
        &ua,
        &other,
        &invite("100", "", "application/sdp"),
        Duration::from_secs(3),
    )
    .await;
    assert!(
        refused
            .as_deref()
            .is_some_and(|r| r.starts_with("SIP/2.0 404")),
        "{refused:?}"
    );
    ua.assert_quiet(Duration::from_millis(300)).await;
}

/// `request` (with `PORT` and `UDP` in its Via made ours) over a new TCP connection from
/// `from_ip`, and its final response within `wait`, if any.
async fn final_response_over_tcp(
    ua: &Peer,
    from_ip: &str,
    request: &str,
    wait: Duration,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from_ip}:0").parse().unwrap()).unwrap();
    let mut tcp = sock.connect(ua.ua.local_addr()).await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let text = request
        .replace("PORT", &port.to_string())
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
        .replace("@127.0.0.1:", &format!("@{from_ip}:"));
    tcp.write_all(text.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    let end = tokio::time::Instant::now() + wait;
    loop {
        let n = tokio::time::timeout_at(end, tcp.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        let all = String::from_utf8_lossy(&got).into_owned();
        // Skip a 100 Trying, if any: the final response is the one that is not 1xx.
        if let Some(at) = all.find("SIP/2.0 ").filter(|_| all.contains("\r\n\r\n")) {
            let finals: Vec<&str> = all[at..]
                .split("SIP/2.0 ")
                .filter(|r| !r.is_empty() && !r.starts_with('1'))
                .collect();
            if let Some(f) = finals.first() {
                return Some(format!("SIP/2.0 {f}"));
            }
        }
    }
}

/// The refusal limit over TCP too: a scanner that opens a connection per try from one
/// address is answered 33 times (the 33rd crosses the limit), then ignored; another address
/// is still answered (each try of a scanner may come from a new port, so the address
/// counts).
#[tokio::test]
async fn repeated_refusals_over_tcp_are_rate_limited_by_address() {
    let mut ua = Peer::start_with("ua-tcp", webphone_sip::Transport::Tcp, Default::default()).await;
    ua.ua.set_account(AccountConfig {
        server: Some("127.0.0.1:9".into()),
        username: "1001".into(),
        password: "secret".into(),
        ..Default::default()
    });
    let mut tally = Tally::default();
    for _ in 0..40 {
        let foreign = invite("100", "", "application/sdp");
        tally.note(final_response_over_tcp(&ua, "127.0.0.1", &foreign, tally.wait()).await);
    }
    tally.assert_limited("TCP");
    let blocked =
        final_response_over_tcp(&ua, "127.0.0.1", &options(1), Duration::from_millis(700)).await;
    assert!(blocked.is_none(), "the limited address got {blocked:?}");
    // Another address is unaffected.
    let ok = final_response_over_tcp(&ua, "127.0.0.2", &options(2), Duration::from_secs(3)).await;
    assert!(
        ok.as_deref().is_some_and(|r| r.starts_with("SIP/2.0 200")),
        "{ok:?}"
    );
    ua.assert_quiet(Duration::from_millis(300)).await;
}
