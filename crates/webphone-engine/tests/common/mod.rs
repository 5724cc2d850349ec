//! Helpers shared by the engine's integration tests: temp dirs, tone files, Goertzel
//! analysis and a phone wrapper that waits for callbacks.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::{timeout, Instant};
use webphone_engine::{Event, Phone, PhoneOptions};

/// Serialises the tests that judge recorded audio: many simultaneous calls on a 2-core machine
/// starve the 20 ms media ticks and leave gaps that say nothing about the code under test.
pub async fn audio_serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await
}

pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "webphone-engine-{tag}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("keeping {}", self.0.display());
        }
    }
}

pub fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

pub fn write_tone(path: &Path, freq: f64, secs: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(8000.0 * secs) as usize {
        let t = i as f64 / 8000.0;
        w.write_sample((0.5 * 32767.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

pub fn read_wav(path: &Path) -> (Vec<f64>, u32) {
    let mut r = hound::WavReader::open(path).unwrap();
    let rate = r.spec().sample_rate;
    let s = r
        .samples::<i16>()
        .map(|s| s.unwrap() as f64 / 32768.0)
        .collect();
    (s, rate)
}

/// Goertzel power of `freq` in `x`, normalised so a full-scale sine gives about 0.25.
pub fn goertzel(x: &[f64], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = v + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - c * s1 * s2;
    p / (x.len() as f64 * x.len() as f64)
}

/// Asserts the recording's middle second carries `freq` clearly above `other` and at a level
/// near the sent one (a 0.5 amplitude sine gives 0.0625).
pub fn assert_tone(path: &Path, freq: f64, other: f64) {
    let (x, rate) = read_wav(path);
    assert!(
        x.len() > rate as usize * 2,
        "recording {} too short: {} samples",
        path.display(),
        x.len()
    );
    let mid = &x[x.len() / 2 - rate as usize / 2..x.len() / 2 + rate as usize / 2];
    let want = goertzel(mid, rate, freq);
    let not = goertzel(mid, rate, other);
    assert!(
        want > 0.02,
        "{}: {freq} Hz too weak ({want:.4})",
        path.display()
    );
    assert!(
        want > 100.0 * not,
        "{}: {freq} Hz ({want:.4}) not dominant over {other} Hz ({not:.6})",
        path.display()
    );
}

pub fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// A started phone named `user` with `null` audio devices, listening on `port` when given.
pub async fn silent_phone(user: &str, port: Option<u16>, extra: &[(&str, String)]) -> TestPhone {
    let mut params: Vec<(&str, String)> = vec![
        ("username", user.to_string()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ];
    if let Some(p) = port {
        params.push(("signalingport", p.to_string()));
    }
    params.extend(extra.iter().cloned());
    TestPhone::new(&params).await
}

/// The parameters of a phone `user` with `null` sound devices (no sound card needed).
pub fn null_audio(user: &str) -> Vec<(&'static str, String)> {
    vec![
        ("username", user.to_string()),
        ("audiodevicein", "null".into()),
        ("audiodeviceout", "null".into()),
    ]
}

/// [`null_audio`] for a phone that answers every call (`autoaccept`).
pub fn auto_answer(user: &str) -> Vec<(&'static str, String)> {
    let mut p = null_audio(user);
    p.push(("autoaccept", "true".into()));
    p
}

/// An auto-answering phone `user` with `null` devices (plus `extra`) on a free known port,
/// and its SIP URI.
pub async fn answering_phone(user: &str, extra: &[(&'static str, String)]) -> (TestPhone, String) {
    let port = free_port();
    let mut p = auto_answer(user);
    p.push(("signalingport", port.to_string()));
    p.extend(extra.iter().cloned());
    (
        TestPhone::new(&p).await,
        format!("sip:{user}@127.0.0.1:{port}"),
    )
}

/// The value of header `name` (case-insensitive) in the head of SIP message `msg`.
pub fn sip_header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The `rtpsent` count of a `getlastcalldetails()` answer.
pub fn rtp_sent(details: &str) -> u64 {
    details
        .split(',')
        .find_map(|kv| kv.strip_prefix("rtpsent="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rtpsent in {details}"))
}

pub struct TestPhone {
    pub phone: Phone,
    pub events: broadcast::Receiver<Event>,
    pub seen: Vec<Event>,
}

impl TestPhone {
    pub async fn new(params: &[(&str, String)]) -> TestPhone {
        TestPhone::in_dir(params, None).await
    }

    /// [`TestPhone::new`] keeping its profile in `work_dir` (so a later phone finds it).
    pub async fn in_dir(params: &[(&str, String)], work_dir: Option<&Path>) -> TestPhone {
        let phone = Phone::try_new(PhoneOptions {
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            work_dir: work_dir.map(Path::to_path_buf),
        })
        .unwrap();
        let events = phone.subscribe();
        phone.api("start", vec![]).await.unwrap();
        TestPhone {
            phone,
            events,
            seen: Vec::new(),
        }
    }

    /// `stop()`, whatever it answers (the end of a test).
    pub async fn stop(&self) {
        let _ = self.phone.api("stop", vec![]).await;
    }

    /// The newest message of `kind` (`getsipmessage` types: 3 INVITE, 4 200 OK, ...) this
    /// phone sent on the active line. The message trace is kept by the SIP task and may trail
    /// the call state a moment on a busy machine: asked again for up to 5 s.
    pub async fn sent_message(&self, kind: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let args = vec!["1".to_string(), kind.to_string()];
            // The answer is a text starting with `ERROR` while no such message was traced yet
            // (a callee reports callConnected as it answers, before its 200 OK is traced).
            let answer = self.phone.api("getsipmessage", args).await;
            let late = Instant::now() >= deadline;
            match answer {
                Ok(v) => {
                    let text = v.as_str().unwrap_or_default().to_string();
                    if late || !text.starts_with("ERROR") {
                        return text;
                    }
                }
                Err(e) if late => panic!("getsipmessage 1 {kind}: {e}"),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn api(&self, f: &str, args: &[&str]) -> Value {
        self.phone
            .api(f, args.iter().map(|s| s.to_string()).collect())
            .await
            .unwrap_or_else(|e| panic!("{f} failed: {e}"))
    }

    /// Receives events into `seen` until one satisfies `pred` (returned) or `secs` pass
    /// (`None`).
    async fn next_matching(&mut self, pred: impl Fn(&Event) -> bool, secs: u64) -> Option<Event> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.events.recv()).await {
                Ok(Ok(ev)) => {
                    self.seen.push(ev.clone());
                    if pred(&ev) {
                        return Some(ev);
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                _ => return None,
            }
        }
    }

    /// Waits for a callback with this name and returns its arguments.
    pub async fn callback(&mut self, name: &str, secs: u64) -> Vec<Value> {
        let found = self
            .next_matching(
                |e| matches!(e, Event::Callback { name: n, .. } if n == name),
                secs,
            )
            .await;
        match found {
            Some(Event::Callback { args, .. }) => args,
            _ => panic!("no {name} within {secs} s; seen:\n{}", self.transcript()),
        }
    }

    /// Waits for a notification string that `pred` accepts and returns it.
    pub async fn notification(&mut self, pred: impl Fn(&str) -> bool, secs: u64) -> String {
        if let Some(t) = self.seen.iter().find_map(|e| match e {
            Event::Notification(t) if pred(t) => Some(t.clone()),
            _ => None,
        }) {
            return t;
        }
        let found = self
            .next_matching(|e| matches!(e, Event::Notification(t) if pred(t)), secs)
            .await;
        match found {
            Some(Event::Notification(t)) => t,
            _ => panic!(
                "no matching notification within {secs} s; seen:\n{}",
                self.transcript()
            ),
        }
    }

    /// Moves every event received so far into `seen` (for failure reports).
    pub fn drain(&mut self) -> &[Event] {
        while let Ok(ev) = self.events.try_recv() {
            self.seen.push(ev);
        }
        &self.seen
    }

    /// Everything this phone reported so far, one short line per event (a failure report
    /// that stays readable in the tail of a CI log): notification strings as they are,
    /// callbacks as `name(arg, ...)`.
    pub fn transcript(&mut self) -> String {
        self.drain()
            .iter()
            // `_sync` (the facade's copy of the state) comes every second in a call: noise here.
            .filter(|e| !matches!(e, Event::Callback { name, .. } if name.starts_with('_')))
            .map(|e| match e {
                Event::Notification(t) => format!("  {t}"),
                Event::Callback { name, args } => {
                    let args: Vec<String> = args.iter().map(Value::to_string).collect();
                    format!("  {name}({})", args.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Like [`call_state`](Self::call_state) but `None` instead of a panic on time-out.
    pub async fn try_call_state(&mut self, state: &str, secs: u64) -> Option<Vec<Value>> {
        let is_state = |e: &Event| {
            matches!(e, Event::Callback { name, args }
                if name == "onCallStateChange" && args.first() == Some(&Value::from(state)))
        };
        match self.next_matching(is_state, secs).await {
            Some(Event::Callback { args, .. }) => Some(args),
            _ => None,
        }
    }

    /// Waits for a callState callback with this event name.
    pub async fn call_state(&mut self, state: &str, secs: u64) -> Vec<Value> {
        match self.try_call_state(state, secs).await {
            Some(args) => args,
            None => panic!(
                "no onCallStateChange {state} within {secs} s; seen:\n{}",
                self.transcript()
            ),
        }
    }

    pub fn notifications(&self, prefix: &str) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Notification(t) if t.starts_with(prefix) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }
}

/// One request an [`http_server`] received.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    /// Path and query, as in the request line.
    pub path: String,
    pub body: Vec<u8>,
}

/// What an [`http_server`] received, in order.
pub type HttpLog = Arc<Mutex<Vec<HttpRequest>>>;

/// The paths (with queries) of the requests in `log`.
pub fn paths(log: &HttpLog) -> Vec<String> {
    log.lock().unwrap().iter().map(|r| r.path.clone()).collect()
}

/// A tiny HTTP server: reads each request whole (a `Content-Length` body included), records
/// it, and answers 200 with the body `answers` gives for the first path prefix that matches
/// (empty when none does).
pub async fn http_server(answers: &'static [(&'static str, &'static str)]) -> (u16, HttpLog) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: HttpLog = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 65536];
                let head_end = loop {
                    if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&req[..head_end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while req.len() < head_end + len {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let method = first.next().unwrap_or("").to_string();
                let path = first.next().unwrap_or("").to_string();
                let body = answers
                    .iter()
                    .find(|(p, _)| path.starts_with(p))
                    .map(|(_, b)| *b)
                    .unwrap_or("");
                log.lock().unwrap().push(HttpRequest {
                    method,
                    path,
                    body: req[head_end..head_end + len].to_vec(),
                });
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (port, seen)
}
