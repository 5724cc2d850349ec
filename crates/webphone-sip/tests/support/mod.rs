//! Shared helpers of the session-rule tests: a user agent on loopback with its event
//! stream, and SIPp runs of the scenarios in `tests/sipp/`.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
