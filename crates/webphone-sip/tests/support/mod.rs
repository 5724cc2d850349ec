//! Shared helpers of the session-rule tests: a user agent on loopback with its event
//! stream, and SIPp runs of the scenarios in `tests/sipp/`.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;
use webphone_sip::{CallKey, SipConfig, SipEvent, SipUa, Transport, TransportOptions};

pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const WAIT: Duration = Duration::from_secs(10);
pub const OFFER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
pub const ANSWER: &str = "v=0\r\no=b 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=sendrecv\r\n";

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

pub struct Peer {
    pub ua: SipUa,
    pub rx: UnboundedReceiver<SipEvent>,
    pub name: &'static str,
}

impl Peer {
    pub async fn start(name: &'static str) -> Peer {
        Peer::start_with(name, Transport::Udp, TransportOptions::default()).await
    }

    pub async fn start_with(
        name: &'static str,
        transport: Transport,
        opts: TransportOptions,
    ) -> Peer {
        init_tracing();
        let cfg = SipConfig {
            bind_ip: LOOPBACK,
            port: 0,
            transport,
            user_agent: format!("webphone-test-{name}"),
        };
        let (ua, rx) = SipUa::start_with(cfg, opts)
            .await
            .expect("user agent starts");
        Peer { ua, rx, name }
    }

    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.ua.local_addr())
    }

    /// Next event that is not a trace.
    pub async fn next(&mut self) -> SipEvent {
        self.next_within(WAIT).await
    }

    pub async fn next_within(&mut self, wait: Duration) -> SipEvent {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(SipEvent::Trace { .. })) => continue,
                Ok(Some(ev)) => return ev,
                Ok(None) => panic!("{}: event channel closed", self.name),
                Err(_) => panic!("{}: no event within {wait:?}", self.name),
            }
        }
    }

    pub async fn incoming(&mut self) -> (CallKey, Option<String>) {
        match self.next().await {
            SipEvent::Incoming { call, sdp, .. } => (call, sdp),
            other => panic!("{}: expected Incoming, got {other:?}", self.name),
        }
    }

    /// Events until `pred` matches one (the earlier ones are returned too).
    pub async fn until(&mut self, what: &str, pred: impl Fn(&SipEvent) -> bool) -> Vec<SipEvent> {
        let mut seen = Vec::new();
        loop {
            let until = tokio::time::Instant::now() + WAIT;
            let ev = match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(SipEvent::Trace { .. })) => continue,
                Ok(Some(ev)) => ev,
                Ok(None) => panic!(
                    "{}: channel closed waiting for {what}; saw {seen:?}",
                    self.name
                ),
                Err(_) => panic!("{}: no {what} within {WAIT:?}; saw {seen:?}", self.name),
            };
            let done = pred(&ev);
            seen.push(ev);
            if done {
                return seen;
            }
        }
    }

    pub async fn assert_quiet(&mut self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(SipEvent::Trace { .. })) => continue,
                Ok(Some(ev)) => panic!("{}: unexpected event {ev:?}", self.name),
                _ => return,
            }
        }
    }
}

/// A calls B, B answers; both confirmed.
pub async fn establish(a: &mut Peer, b: &mut Peer) -> (CallKey, CallKey) {
    let ca = a.ua.invite(&b.uri("bob"), OFFER.into()).expect("invite");
    let (cb, _) = b.incoming().await;
    b.ua.answer(cb, ANSWER.into());
    match a.next().await {
        SipEvent::Answered { call, .. } => assert_eq!(call, ca),
        other => panic!("A: expected Answered, got {other:?}"),
    }
    match b.next().await {
        SipEvent::Answered { call, .. } => assert_eq!(call, cb),
        other => panic!("B: expected Answered (ACK), got {other:?}"),
    }
    (ca, cb)
}

/// `tests/sipp/<name>`.
pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// Whether SIPp is installed; prints `SKIP:` (or panics under `CI=true`) when not.
pub fn have_sipp(test: &str) -> bool {
    webphone_interop::require_tools(test, &[webphone_interop::SIPP])
}

/// One SIPp run of a scenario file (one call, UDP on a free loopback port).
pub struct Sipp {
    child: Child,
    pub port: u16,
    pub dir: webphone_interop::util::TestDir,
}

impl Sipp {
    /// Run `scenario` as a client against `target` (`127.0.0.1:port`), or as a server
    /// when `target` is `None`. `extra` are more SIPp arguments.
    pub fn start(name: &str, target: Option<&str>, extra: &[&str]) -> Sipp {
        let dir = webphone_interop::util::TestDir::new(&format!("sipp-{name}"));
        let port = webphone_interop::util::free_port();
        let mut cmd = Command::new(webphone_interop::SIPP);
        if let Some(t) = target {
            cmd.arg(t);
        }
        cmd.arg("-sf")
            .arg(scenario(name))
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", "1", "-nostdin", "-trace_err", "-trace_msg"])
            .args([
                "-timeout",
                "30s",
                "-timeout_error",
                "-max_recv_loops",
                "1000",
            ])
            .args(extra)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("sipp starts");
        let mut s = Sipp { child, port, dir };
        if target.is_none() {
            // SIPp binds its port at start-up: wait until it is taken.
            let t0 = Instant::now();
            while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
                assert!(t0.elapsed() < Duration::from_secs(10), "sipp did not bind");
                if let Ok(Some(st)) = s.child.try_wait() {
                    panic!("sipp exited at start: {st}; {}", s.logs());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        s
    }

    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }

    /// SIPp's message and error logs.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.path()) {
            for e in rd.flatten() {
                let p = e.path();
                if let Ok(t) = std::fs::read_to_string(&p) {
                    let tail: Vec<&str> = t.lines().rev().take(120).collect();
                    out.push_str(&format!("--- {}\n", p.display()));
                    for l in tail.into_iter().rev() {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    /// The whole `*_messages.log` (`-trace_msg`): every message sent and received.
    pub fn messages(&self) -> String {
        std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    /// Wait (polling, without blocking the runtime) for SIPp to exit 0.
    pub async fn assert_success(&mut self, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) if st.success() => return,
                Ok(Some(st)) => panic!("sipp failed ({st}):\n{}", self.logs()),
                _ => {}
            }
            if t0.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("sipp did not finish in {timeout:?}:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The value of the first header `name` of a raw SIP message (empty when absent).
pub fn header<'a>(text: &'a str, name: &str) -> &'a str {
    text.split("\r\n")
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or("")
}

/// A body-less response to the raw request `req` (RFC 3261 §8.2.6.2: Via, From, To, Call-ID
/// and CSeq copied), with `to_tag` added to To when given and `extra` header lines (each
/// ending in CRLF) before Content-Length.
pub fn response_to(req: &str, status: &str, to_tag: Option<&str>, extra: &str) -> String {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {}{tag}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        header(req, "Via"),
        header(req, "From"),
        header(req, "To"),
        header(req, "Call-ID"),
        header(req, "CSeq"),
    )
}

/// A UAC scripted on a raw UDP socket: it writes its requests itself (to reorder them, or to
/// leave a request unanswered).
pub struct Uac {
    sock: UdpSocket,
    port: u16,
    target: SocketAddr,
}

impl Uac {
    pub async fn new(target: SocketAddr) -> Uac {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = sock.local_addr().unwrap().port();
        Uac { sock, port, target }
    }

    /// An INVITE (CSeq `cseq`) of dialog `call_id`; `to_tag` makes it a re-INVITE.
    pub fn invite(&self, call_id: &str, cseq: u32, to_tag: Option<&str>) -> String {
        let port = self.port;
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "INVITE sip:uas@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-{call_id}-{cseq}\r\n\
             From: <sip:uac@127.0.0.1:{port}>;tag=uac1\r\n\
             To: <sip:uas@{target}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\n\
             Contact: <sip:uac@127.0.0.1:{port}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{OFFER}",
            OFFER.len(),
            target = self.target,
        )
    }

    pub fn ack(&self, call_id: &str, to_tag: &str) -> String {
        let port = self.port;
        format!(
            "ACK sip:uas@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-{call_id}-ack\r\n\
             From: <sip:uac@127.0.0.1:{port}>;tag=uac1\r\n\
             To: <sip:uas@{target}>;tag={to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 ACK\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            target = self.target,
        )
    }

    /// A body-less in-dialog request `method` with CSeq `cseq` and `extra` header lines.
    pub fn request(
        &self,
        method: &str,
        call_id: &str,
        cseq: u32,
        to_tag: &str,
        extra: &str,
    ) -> String {
        let port = self.port;
        format!(
            "{method} sip:uas@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-{call_id}-{cseq}\r\n\
             From: <sip:uac@127.0.0.1:{port}>;tag=uac1\r\n\
             To: <sip:uas@{target}>;tag={to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:uac@127.0.0.1:{port}>\r\n\
             Max-Forwards: 70\r\n\
             {extra}Content-Length: 0\r\n\r\n",
            target = self.target,
        )
    }

    /// The next datagram, request or response, within `wait`.
    pub async fn next_message(&self, wait: Duration) -> Option<String> {
        let mut buf = vec![0u8; 8192];
        let (n, _) = tokio::time::timeout(wait, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    pub async fn send(&self, text: &str) {
        self.sock
            .send_to(text.as_bytes(), self.target)
            .await
            .unwrap();
    }

    /// The next final response whose CSeq is `cseq` (provisionals and other CSeqs, such as
    /// retransmissions of the first 200, skipped), within `wait`.
    pub async fn final_response(&self, cseq: &str, wait: Duration) -> Option<String> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let text = self.next_message(left).await?;
            if text.starts_with("SIP/2.0 ")
                && !text.starts_with("SIP/2.0 1")
                && header(&text, "CSeq") == cseq
            {
                return Some(text);
            }
        }
    }
}

/// A user agent `name` called by a scripted [`Uac`] and answering: the two, and the To tag
/// of the 200 (not acknowledged yet).
pub async fn answered_call(name: &'static str, call_id: &str) -> (Peer, Uac, String) {
    let mut ua = Peer::start(name).await;
    let uac = Uac::new(ua.ua.local_addr()).await;
    uac.send(&uac.invite(call_id, 1, None)).await;
    let (call, _) = ua.incoming().await;
    ua.ua.answer(call, ANSWER.into());
    let ok = uac
        .final_response("1 INVITE", Duration::from_secs(5))
        .await
        .expect("a 200 to the INVITE");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let tag = header(&ok, "To")
        .split(";tag=")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .expect("a To tag in the 200")
        .to_string();
    (ua, uac, tag)
}
