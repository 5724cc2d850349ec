//! SIP over TLS, WS and WSS against a real Kamailio (tests/interop harness: free ports,
//! a self-signed server certificate made per test with openssl), and a TLS call to
//! baresip (registered over UDP; Kamailio bridges the transports).
//!
//! Skips loudly without kamailio/baresip/openssl; fails instead when CI=true.
#![allow(clippy::unwrap_used)]
// The peers run one test at a time: the harness's serial lock is held across awaits.
#![allow(clippy::await_holding_lock)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use webphone_interop::proc::Proc;
use webphone_interop::{Baresip, BaresipOpts, Kamailio, KamailioOpts, TestDir};
use webphone_sip::{
    AccountConfig, EndReason, RegistrationState, SipConfig, SipError, SipEvent, SipUa, Transport,
    TransportOptions,
};

const WAIT: Duration = Duration::from_secs(10);
const OFFER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn")),
        )
        .with_test_writer()
        .try_init();
}

fn have(test: &str, tools: &[&str]) -> bool {
    webphone_interop::require_tools(test, tools)
}

fn start_kamailio(dir: &TestDir) -> Kamailio {
    Kamailio::start_secure(dir.path(), KamailioOpts::default())
}

struct Phone {
    ua: SipUa,
    rx: UnboundedReceiver<SipEvent>,
}

impl Phone {
    async fn start(
        transport: Transport,
        server: String,
        ca_file: Option<&Path>,
        keepalive: Duration,
    ) -> Phone {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Phone::start_as(v4, "1001", transport, server, ca_file, keepalive).await
    }

    /// A phone bound to `bind`, registering `user` (password `pass<user>`).
    async fn start_as(
        bind: IpAddr,
        user: &str,
        transport: Transport,
        server: String,
        ca_file: Option<&Path>,
        keepalive: Duration,
    ) -> Phone {
        init_tracing();
        let (ua, rx) = SipUa::start_with(
            SipConfig {
                bind_ip: bind,
                port: 0,
                transport,
                user_agent: "webphone-transport-test".into(),
            },
            TransportOptions {
                keepalive_interval: keepalive,
                tls_ca_file: ca_file.map(Path::to_path_buf),
                ws_path: None,
                ws_keepalive_interval: None,
                ..Default::default()
            },
        )
        .await
        .expect("start");
        ua.set_account(AccountConfig {
            server: Some(server),
            username: user.into(),
            password: format!("pass{user}"),
            register_expires: 300,
            ..Default::default()
        });
        Phone { ua, rx }
    }

    async fn next(&mut self) -> SipEvent {
        loop {
            match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Ok(Some(SipEvent::Trace { .. })) => continue,
                Ok(Some(ev)) => {
                    eprintln!("event: {ev:?}");
                    return ev;
                }
                Ok(None) => panic!("event channel closed"),
                Err(_) => panic!("no event within {WAIT:?}"),
            }
        }
    }

    /// No event at all for `d`.
    async fn quiet_for(&mut self, d: Duration) {
        if let Ok(ev) = tokio::time::timeout(d, self.rx.recv()).await {
            panic!("unexpected event while idle: {ev:?}");
        }
    }

    async fn register_ok(&mut self) -> u32 {
        self.ua.register();
        assert_eq!(
            self.next().await,
            SipEvent::Registration(RegistrationState::Registering)
        );
        match self.next().await {
            SipEvent::Registration(RegistrationState::Registered { expires }) => expires,
            other => panic!("expected Registered, got {other:?}"),
        }
    }

    async fn register_failed(&mut self) -> (u16, String) {
        self.ua.register();
        assert_eq!(
            self.next().await,
            SipEvent::Registration(RegistrationState::Registering)
        );
        match self.next().await {
            SipEvent::Registration(RegistrationState::Failed { code, reason }) => (code, reason),
            other => panic!("expected Failed, got {other:?}"),
        }
    }
}

/// Kamailio saw the REGISTER of 1001 arrive over `proto` and stored a contact that names
/// the transport (`ws` for WSS as well: the only WebSocket URI value, RFC 7118 §5.2).
fn assert_registered_over(k: &mut Kamailio, proto: &str) {
    k.wait_lines(
        &["REGISTERED 1001", &format!("from {proto}:127.0.0.1:")],
        1,
        WAIT,
    );
    let contacts = k.wait_registered("1001", WAIT);
    let param = if proto == "wss" { "ws" } else { proto };
    assert!(
        contacts.iter().any(|c| c
            .to_ascii_lowercase()
            .ends_with(&format!("transport={param}"))),
        "contact names the transport: {contacts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_tls_with_the_servers_certificate_trusted_via_ca_file() {
    if !have("tls register", &["kamailio", "kamcmd", "openssl"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-tls-register");
    let mut k = start_kamailio(&dir);
    let server = format!("127.0.0.1:{}", k.tls_port());
    let mut p = Phone::start(Transport::Tls, server, Some(k.cert_path()), Duration::ZERO).await;
    assert_eq!(p.register_ok().await, 300);
    assert_registered_over(&mut k, "tls");
    // Unregistering reuses the same TLS connection (one handshake only).
    p.ua.unregister();
    assert_eq!(
        p.next().await,
        SipEvent::Registration(RegistrationState::Unregistered)
    );
    let registers = k.lines_with(&["REQ REGISTER", "from tls:127.0.0.1:"]);
    let sources: std::collections::BTreeSet<String> = sources_of(&registers).into_iter().collect();
    assert_eq!(
        sources.len(),
        1,
        "one connection for every REGISTER: {registers:?}"
    );
    p.ua.shutdown().await;
    k.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_tls_without_trusting_the_self_signed_server_fails_with_the_tls_reason() {
    if !have("tls untrusted", &["kamailio", "kamcmd", "openssl"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-tls-untrusted");
    let mut k = start_kamailio(&dir);
    let server = format!("127.0.0.1:{}", k.tls_port());
    let mut p = Phone::start(Transport::Tls, server, None, Duration::ZERO).await;
    let (code, reason) = p.register_failed().await;
    assert_eq!(code, 503, "{reason}");
    assert!(
        reason.contains("not trusted") && reason.contains("UnknownIssuer"),
        "reason names the TLS error: {reason}"
    );
    // Nothing reached the SIP layer of the server.
    assert!(k.lines_with(&["REQ REGISTER"]).is_empty());
    p.ua.shutdown().await;
    k.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_tls_trusting_another_certificate_still_fails() {
    if !have("tls other cert", &["kamailio", "kamcmd", "openssl"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-tls-other-cert");
    let mut k = start_kamailio(&dir);
    // A certificate for the right name, but not the one the server presents.
    let (other, _) =
        webphone_interop::kamailio::self_signed_cert_for(dir.path(), "other", "IP:127.0.0.1");
    let server = format!("127.0.0.1:{}", k.tls_port());
    let mut p = Phone::start(Transport::Tls, server, Some(&other), Duration::ZERO).await;
    let (code, reason) = p.register_failed().await;
    assert_eq!(code, 503);
    assert!(reason.contains("not trusted"), "{reason}");
    p.ua.shutdown().await;
    k.stop();
}

/// `openssl s_server` (TLS) on a free loopback port presenting `cert`: a plain TLS peer that
/// prints what it receives, so a completed handshake shows as the REGISTER in its log.
fn tls_server(dir: &TestDir, name: &str, cert: &Path, key: &Path) -> (Proc, u16) {
    webphone_interop::kamailio::openssl_tls_server(dir.path(), name, cert, key, WAIT)
}

/// RFC 5922 §7.2 / RFC 6125: a server certificate trusted explicitly (the CA file holds
/// exactly it) but issued for another name (`DNS:wrong.example`) than the one dialled
/// (127.0.0.1) is refused before any SIP is sent; the same server with a certificate for
/// 127.0.0.1 gets the REGISTER (so only the name differs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_tls_to_a_trusted_certificate_for_another_name_fails() {
    if !have("tls wrong name", &["openssl"]) {
        return;
    }
    let dir = TestDir::new("sip-tls-wrong-name");
    let (wrong, wrong_key) = webphone_interop::kamailio::self_signed_cert_for(
        dir.path(),
        "wrongname",
        "DNS:wrong.example",
    );
    let (mut srv, port) = tls_server(&dir, "s_server-wrong", &wrong, &wrong_key);
    let mut p = Phone::start(
        Transport::Tls,
        format!("127.0.0.1:{port}"),
        Some(&wrong),
        Duration::ZERO,
    )
    .await;
    let (code, reason) = p.register_failed().await;
    assert_eq!(code, 503, "{reason}");
    assert!(
        reason.contains("does not match the server name") && reason.contains("wrong.example"),
        "reason names the name mismatch: {reason}"
    );
    assert!(
        !srv.log().contains("REGISTER "),
        "no SIP may cross a refused handshake: {}",
        srv.log()
    );
    p.ua.shutdown().await;
    srv.stop(Duration::from_secs(2));

    // Control: the right name, trusted the same way, completes the handshake.
    let (right, right_key) =
        webphone_interop::kamailio::self_signed_cert_for(dir.path(), "rightname", "IP:127.0.0.1");
    let (mut srv, port) = tls_server(&dir, "s_server-right", &right, &right_key);
    let p = Phone::start(
        Transport::Tls,
        format!("127.0.0.1:{port}"),
        Some(&right),
        Duration::ZERO,
    )
    .await;
    p.ua.register();
    let got = webphone_interop::util::wait_for(WAIT, || {
        srv.log().contains("REGISTER sip:").then_some(())
    });
    assert!(got.is_some(), "the REGISTER never arrived: {}", srv.log());
    p.ua.shutdown().await;
    srv.stop(Duration::from_secs(2));
}

#[tokio::test]
async fn unreadable_ca_file_fails_start_with_a_tls_error() {
    let err = SipUa::start_with(
        SipConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            transport: Transport::Tls,
            ..Default::default()
        },
        TransportOptions {
            tls_ca_file: Some("/nonexistent/webphone-ca.pem".into()),
            ..Default::default()
        },
    )
    .await
    .expect_err("start must fail");
    assert!(
        matches!(err, SipError::Tls(ref m) if m.contains("webphone-ca.pem")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_ws_with_keepalive_pings_keeps_the_connection() {
    if !have("ws register", &["kamailio", "kamcmd", "openssl"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-ws-register");
    let mut k = start_kamailio(&dir);
    let server = format!("127.0.0.1:{}", k.ws_port());
    let mut p = Phone::start(Transport::Ws, server, None, Duration::from_millis(300)).await;
    p.register_ok().await;
    k.wait_lines(&["WS HANDSHAKE"], 1, WAIT);
    assert_registered_over(&mut k, "ws");
    // Several WebSocket pings later the registration still stands on the same connection.
    p.quiet_for(Duration::from_secs(2)).await;
    assert_eq!(k.lines_with(&["WS HANDSHAKE"]).len(), 1);
    assert_eq!(
        k.lines_with(&["REQ REGISTER"]).len(),
        2,
        "challenge + answer only"
    );
    p.ua.shutdown().await;
    k.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_over_wss_with_the_servers_certificate_trusted() {
    if !have("wss register", &["kamailio", "kamcmd", "openssl"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-wss-register");
    let mut k = start_kamailio(&dir);
    let server = format!("127.0.0.1:{}", k.wss_port());
    let mut p = Phone::start(Transport::Wss, server, Some(k.cert_path()), Duration::ZERO).await;
    p.register_ok().await;
    assert_registered_over(&mut k, "wss");
    p.ua.shutdown().await;

    // Without trusting the certificate the WebSocket handshake never happens.
    let server = format!("127.0.0.1:{}", k.wss_port());
    let mut p = Phone::start(Transport::Wss, server, None, Duration::ZERO).await;
    let (code, reason) = p.register_failed().await;
    assert_eq!(code, 503);
    assert!(reason.contains("not trusted"), "{reason}");
    p.ua.shutdown().await;
    k.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_tls_connection_to_the_registrar_triggers_reregistration() {
    if !have("tls flow loss", &["kamailio", "kamcmd", "openssl"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-tls-flow-loss");
    let mut k = start_kamailio(&dir);
    let server = format!("127.0.0.1:{}", k.tls_port());
    let mut p = Phone::start(
        Transport::Tls,
        server,
        Some(k.cert_path()),
        Duration::from_millis(300),
    )
    .await;
    p.register_ok().await;
    // CRLF keep-alives (RFC 5626 §4.4.1) do not disturb the connection.
    p.quiet_for(Duration::from_secs(2)).await;
    assert_eq!(k.lines_with(&["REQ REGISTER"]).len(), 2);
    // The server goes away: the connection closes, we register again at once, which
    // fails (nothing listens any more) and is retried with back-off.
    k.stop();
    assert_eq!(
        p.next().await,
        SipEvent::Registration(RegistrationState::Registering)
    );
    match p.next().await {
        SipEvent::Registration(RegistrationState::Failed { code: 503, reason }) => {
            assert!(reason.contains("TLS connection"), "{reason}")
        }
        other => panic!("expected Failed 503, got {other:?}"),
    }
    p.ua.shutdown().await;
}

/// RFC 5626 §4.4.1: a ping the registrar does not answer within 10 s means the flow has
/// failed. Kamailio answers every ping (a CRLF, or a WebSocket pong): with a ping every
/// second nothing happens for longer than the deadline. Then Kamailio is frozen (SIGSTOP:
/// the connection stays open and the kernel acknowledges the pings, but no answer comes):
/// the phone gives up on the connection and registers again over a new one, which
/// succeeds once Kamailio runs again.
async fn frozen_registrar_is_noticed_by_the_missing_pong(transport: Transport, proto: &str) {
    if !have("pong deadline", &["kamailio", "kamcmd", "openssl"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new(&format!("sip-pong-deadline-{proto}"));
    let mut k = start_kamailio(&dir);
    let (port, ca) = match transport {
        Transport::Tcp => (k.port(), None),
        Transport::Tls => (k.tls_port(), Some(k.cert_path().to_path_buf())),
        _ => (k.wss_port(), Some(k.cert_path().to_path_buf())),
    };
    let server = format!("127.0.0.1:{port}");
    let mut p = Phone::start(transport, server, ca.as_deref(), Duration::from_secs(1)).await;
    p.register_ok().await;
    assert_registered_over(&mut k, proto);
    // Twelve answered pings, two deadlines passed: the registration stands.
    p.quiet_for(Duration::from_secs(12)).await;
    let first = registered_from(&k);
    assert_eq!(first.len(), 1, "one registration so far: {first:?}");

    // Taken before the freeze: a ping sent just before it may go unanswered too.
    let frozen = std::time::Instant::now();
    k.freeze();
    // At most one ping interval plus the 10 s deadline (and scheduling slack).
    let noticed = tokio::time::timeout(Duration::from_secs(16), p.rx.recv()).await;
    let noticed_after = frozen.elapsed();
    k.thaw();
    match noticed {
        Ok(Some(SipEvent::Registration(RegistrationState::Registering))) => {}
        other => panic!("the frozen registrar went unnoticed for 16 s: {other:?}"),
    }
    // The unanswered ping may have gone out up to one interval (1 s) before the freeze.
    assert!(
        noticed_after >= Duration::from_secs(9),
        "gave up before the deadline: {noticed_after:?}"
    );
    match p.next().await {
        SipEvent::Registration(RegistrationState::Registered { .. }) => {}
        other => panic!("expected Registered after the thaw, got {other:?}"),
    }
    // The new registration came over a new connection (another source port). Kamailio
    // logs it after sending the 200: wait for the line.
    k.wait_lines(&["REGISTERED 1001"], 2, WAIT);
    let again = registered_from(&k);
    assert_eq!(again.len(), 2, "{again:?}");
    assert_ne!(again[0], again[1], "a new connection: {again:?}");
    println!(
        "{proto}: frozen registrar noticed after {:.1} s, registered again from {}",
        noticed_after.as_secs_f64(),
        again[1]
    );
    p.ua.shutdown().await;
    k.stop();
}

/// A registrar over TCP that follows RFC 3261 only: it takes REGISTERs (200, no challenge)
/// and skips the CRLF pings without answering (§7.5). Counts connections, REGISTERs and
/// pings.
struct SilentTcpRegistrar {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<(usize, usize, usize)>>,
}

impl SilentTcpRegistrar {
    async fn start() -> SilentTcpRegistrar {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new((0, 0, 0)));
        let counts = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counts.lock().unwrap().0 += 1;
                let counts = counts.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = sock.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        loop {
                            if buf.starts_with(b"\r\n\r\n") {
                                counts.lock().unwrap().2 += 1;
                                buf.drain(..4);
                                continue;
                            }
                            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                                break;
                            };
                            let msg = String::from_utf8_lossy(&buf[..end]).to_string();
                            buf.drain(..end + 4);
                            if !msg.starts_with("REGISTER ") {
                                continue;
                            }
                            counts.lock().unwrap().1 += 1;
                            let mut resp = String::from("SIP/2.0 200 OK\r\n");
                            for line in msg.lines().skip(1) {
                                let name =
                                    line.split(':').next().unwrap_or("").to_ascii_lowercase();
                                match name.as_str() {
                                    "via" | "from" | "call-id" | "cseq" => {
                                        resp.push_str(line);
                                        resp.push_str("\r\n");
                                    }
                                    "to" => resp.push_str(&format!("{line};tag=silent\r\n")),
                                    "contact" => resp.push_str(&format!("{line};expires=300\r\n")),
                                    _ => {}
                                }
                            }
                            resp.push_str("Content-Length: 0\r\n\r\n");
                            if sock.write_all(resp.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        SilentTcpRegistrar { port, seen }
    }

    /// (connections, REGISTERs, pings) so far.
    fn seen(&self) -> (usize, usize, usize) {
        *self.seen.lock().unwrap()
    }
}

/// A server that never answers a CRLF ping (RFC 3261 §7.5 lets it skip them) is not held
/// to the pong deadline: with a ping every second the registration stays on its one
/// connection well past 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrar_that_never_answers_pings_is_not_dropped() {
    let reg = SilentTcpRegistrar::start().await;
    let server = format!("127.0.0.1:{}", reg.port);
    let mut p = Phone::start(Transport::Tcp, server, None, Duration::from_secs(1)).await;
    p.register_ok().await;
    p.quiet_for(Duration::from_secs(13)).await;
    let (connections, registers, pings) = reg.seen();
    assert_eq!((connections, registers), (1, 1), "pings: {pings}");
    assert!(pings >= 10, "the pings went out: {pings}");
    p.ua.shutdown().await;
}

/// The source addresses of 1001's registrations in Kamailio's log, in order.
fn registered_from(k: &Kamailio) -> Vec<String> {
    sources_of(&k.lines_with(&["REGISTERED 1001"]))
}

/// The `from <proto>:<ip>:<port>` of Kamailio log lines, in order.
fn sources_of(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.split(" from ").nth(1)?.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_registrar_over_tcp_is_noticed_by_the_missing_pong() {
    frozen_registrar_is_noticed_by_the_missing_pong(Transport::Tcp, "tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_registrar_over_tls_is_noticed_by_the_missing_pong() {
    frozen_registrar_is_noticed_by_the_missing_pong(Transport::Tls, "tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_registrar_over_wss_is_noticed_by_the_missing_pong() {
    frozen_registrar_is_noticed_by_the_missing_pong(Transport::Wss, "wss").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_over_tls_to_baresip_on_udp_is_answered_then_hung_up() {
    if !have("tls call", &["kamailio", "kamcmd", "openssl", "baresip"]) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-tls-call");
    let mut k = start_kamailio(&dir);
    let mut b = Baresip::start(&dir.subdir("baresip"), BaresipOpts::registered_to(k.port()));
    let server = format!("127.0.0.1:{}", k.tls_port());
    let mut p = Phone::start(Transport::Tls, server, Some(k.cert_path()), Duration::ZERO).await;
    p.register_ok().await;

    let call = p.ua.invite("1002", OFFER.into()).expect("invite");
    let answered = loop {
        match p.next().await {
            SipEvent::Progress { call: c, .. } if c == call => continue,
            SipEvent::Answered { call: c, sdp } if c == call => break sdp,
            other => panic!("expected Progress/Answered, got {other:?}"),
        }
    };
    assert!(
        answered.is_some_and(|s| s.contains("m=audio")),
        "the 200 carries baresip's SDP answer"
    );
    k.wait_lines(&["RELAY INVITE", "call-id="], 1, WAIT);
    assert!(
        !k.lines_with(&["REQ INVITE", "from tls:127.0.0.1:"])
            .is_empty(),
        "the INVITE came over TLS"
    );
    p.ua.hangup(call);
    match p.next().await {
        SipEvent::Ended {
            call: c, reason, ..
        } if c == call => {
            assert_eq!(reason, EndReason::LocalHangup)
        }
        other => panic!("expected Ended, got {other:?}"),
    }
    // The BYE went through Kamailio (Record-Route) over the same TLS connection.
    k.wait_lines(&["REQ BYE", "from tls:127.0.0.1:"], 1, WAIT);
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    p.ua.shutdown().await;
    b.stop();
    k.stop();
}

/// WSS with the same Kamailio as outbound proxy: the INVITE carries a loose Route to the
/// proxy whose transport parameter is `ws` (RFC 7118 §5.2), which Kamailio takes as its own
/// and consumes, so the call reaches baresip and is answered; the BYE follows the
/// record-route back over the same WSS connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_over_wss_through_an_outbound_proxy_is_answered() {
    if !have(
        "wss proxy call",
        &["kamailio", "kamcmd", "openssl", "baresip"],
    ) {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-wss-proxy-call");
    let mut k = start_kamailio(&dir);
    let mut b = Baresip::start(&dir.subdir("baresip"), BaresipOpts::registered_to(k.port()));
    let server = format!("127.0.0.1:{}", k.wss_port());
    let mut p = Phone::start(
        Transport::Wss,
        server.clone(),
        Some(k.cert_path()),
        Duration::ZERO,
    )
    .await;
    p.ua.set_account(AccountConfig {
        server: Some(server.clone()),
        proxy: Some(server),
        username: "1001".into(),
        password: "pass1001".into(),
        register_expires: 300,
        ..Default::default()
    });
    p.register_ok().await;
    let call = p.ua.invite("1002", OFFER.into()).expect("invite");
    loop {
        match p.next().await {
            SipEvent::Progress { call: c, .. } if c == call => continue,
            SipEvent::Answered { call: c, .. } if c == call => break,
            other => panic!("expected Progress/Answered, got {other:?}"),
        }
    }
    assert!(
        !k.lines_with(&["REQ INVITE", "from wss:127.0.0.1:"])
            .is_empty(),
        "the INVITE came over WSS"
    );
    let routed = k.lines_with(&["REQ INVITE", "from wss:127.0.0.1:", "route=<sip:127.0.0.1:"]);
    assert!(
        !routed.is_empty()
            && routed
                .iter()
                .all(|l| l.to_ascii_lowercase().contains(";transport=ws>")),
        "the Route to the proxy says transport=ws: {routed:?}"
    );
    p.ua.hangup(call);
    match p.next().await {
        SipEvent::Ended {
            call: c, reason, ..
        } if c == call => assert_eq!(reason, EndReason::LocalHangup),
        other => panic!("expected Ended, got {other:?}"),
    }
    k.wait_lines(&["REQ BYE", "from wss:127.0.0.1:"], 1, WAIT);
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    p.ua.shutdown().await;
    b.stop();
    k.stop();
}

/// RFC 5118 over the stream transports: with Kamailio also on `[::1]`, one phone registers
/// over TCP and another over TLS (the certificate names `IP:::1`), both with bracketed IPv6
/// Contacts; the TLS phone calls the TCP phone, which answers, and the BYE reaches it back
/// through the proxy. Then phones over WS and WSS on `[::1]` register too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_over_tcp_tls_ws_and_wss() {
    if !have("ipv6 streams", &["kamailio", "kamcmd", "openssl"]) {
        return;
    }
    if !webphone_interop::require_ipv6_loopback("ipv6 streams") {
        return;
    }
    let _serial = webphone_interop::serial();
    let dir = TestDir::new("sip-ipv6-streams");
    let mut k =
        Kamailio::start_secure_with_defines(dir.path(), KamailioOpts::default(), &["WITH_IPV6"]);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let tcp_server = format!("[::1]:{}", k.port());
    let tls_server = format!("[::1]:{}", k.tls_port());
    let cert = Some(k.cert_path().to_path_buf());
    let mut callee =
        Phone::start_as(v6, "1002", Transport::Tcp, tcp_server, None, Duration::ZERO).await;
    let mut caller = Phone::start_as(
        v6,
        "1001",
        Transport::Tls,
        tls_server,
        cert.as_deref(),
        Duration::ZERO,
    )
    .await;
    assert!(callee.ua.local_addr().is_ipv6() && caller.ua.local_addr().is_ipv6());
    assert_eq!(callee.register_ok().await, 300);
    assert_eq!(caller.register_ok().await, 300);
    for (user, proto) in [("1002", "tcp"), ("1001", "tls")] {
        k.wait_lines(
            &[&format!("REGISTERED {user}"), &format!("from {proto}:::1:")],
            1,
            WAIT,
        );
        let contacts = k.wait_registered(user, WAIT);
        assert!(
            contacts.iter().any(|c| c.contains("@[::1]:")
                && c.to_ascii_lowercase()
                    .ends_with(&format!("transport={proto}"))),
            "{user}: a bracketed IPv6 Contact naming {proto}: {contacts:?}"
        );
    }

    let offer = OFFER.replace("IN IP4 127.0.0.1", "IN IP6 ::1");
    let call = caller.ua.invite("1002", offer.clone()).expect("invite");
    let incoming = match callee.next().await {
        SipEvent::Incoming { call, sdp, .. } => {
            assert!(
                sdp.is_some_and(|s| s.contains("IN IP6 ::1")),
                "the offer arrived"
            );
            call
        }
        other => panic!("expected Incoming, got {other:?}"),
    };
    callee.ua.answer(incoming, offer);
    loop {
        match caller.next().await {
            SipEvent::Progress { call: c, .. } if c == call => continue,
            SipEvent::Answered { call: c, sdp } if c == call => {
                assert!(
                    sdp.is_some_and(|s| s.contains("IN IP6 ::1")),
                    "the answer arrived"
                );
                break;
            }
            other => panic!("expected Progress/Answered, got {other:?}"),
        }
    }
    assert!(
        !k.lines_with(&["REQ INVITE", "from tls:::1:"]).is_empty(),
        "the INVITE came over TLS on IPv6"
    );
    caller.ua.hangup(call);
    match caller.next().await {
        SipEvent::Ended {
            call: c, reason, ..
        } if c == call => {
            assert_eq!(reason, EndReason::LocalHangup)
        }
        other => panic!("expected Ended, got {other:?}"),
    }
    loop {
        match callee.next().await {
            SipEvent::Ended {
                call: c, reason, ..
            } if c == incoming => {
                assert_eq!(reason, EndReason::RemoteHangup);
                break;
            }
            SipEvent::Answered { call: c, .. } if c == incoming => continue,
            other => panic!("expected Ended on the callee, got {other:?}"),
        }
    }
    k.wait_lines(&["REQ BYE", "from tls:::1:"], 1, WAIT);
    caller.ua.shutdown().await;
    callee.ua.shutdown().await;

    // WS and WSS (RFC 7118) on [::1] register the same way.
    for (user, transport, port, proto) in [
        ("1003", Transport::Ws, k.ws_port(), "ws"),
        ("1004", Transport::Wss, k.wss_port(), "wss"),
    ] {
        let server = format!("[::1]:{port}");
        let mut p =
            Phone::start_as(v6, user, transport, server, cert.as_deref(), Duration::ZERO).await;
        assert_eq!(p.register_ok().await, 300, "{proto}");
        k.wait_lines(
            &[&format!("REGISTERED {user}"), &format!("from {proto}:::1:")],
            1,
            WAIT,
        );
        let contacts = k.wait_registered(user, WAIT);
        assert!(
            contacts
                .iter()
                .any(|c| c.contains("@[::1]:") && c.to_ascii_lowercase().ends_with("transport=ws")),
            "{user}: a bracketed IPv6 Contact over {proto}: {contacts:?}"
        );
        p.ua.shutdown().await;
    }
    k.stop();
}
