//! baresip 1.0 as user 1002: config and accounts from the templates in
//! `tests/interop/peers/`, a WAV tone as microphone, received audio dumped by
//! the `sndfile` filter, and control over `ctrl_tcp` (netstring-framed JSON).
//!
//! ctrl_tcp protocol: request `{"command":"dial","params":"sip:...","token":"t1"}`,
//! response `{"response":true,"ok":true,"data":"...","token":"t1"}`; events
//! arrive on the same connection as `{"event":true,"type":"CALL_ESTABLISHED",
//! "class":"call","peeruri":"...","id":"<call-id>","param":"..."}`. Incoming
//! RFC 4733 DTMF shows up as an event `CALL_DTMF_START` with the key in
//! `param` (and as `received event: '5'` in baresip's log).

use std::collections::VecDeque;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::proc::Proc;
use crate::util;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// answers every incoming call at once
    Auto,
    /// rings until the `accept` command (or the caller cancels)
    Manual,
}

#[derive(Debug, Clone)]
pub struct BaresipOpts {
    pub user: String,
    pub password: String,
    /// Kamailio's port to register with (UDP); `None`: no registration
    /// (baresip is then only reachable directly at its own port).
    pub proxy_port: Option<u16>,
    pub answer: AnswerMode,
    /// `audio_codecs` of the account; G722 / opus also load baresip's module.
    pub codecs: String,
    /// Frequency of the tone baresip sends (its microphone WAV, 48 kHz mono 16-bit).
    pub tone_hz: f64,
    /// Registration interval asked for (s).
    pub regint: u32,
    /// With a proxy: `start` waits until the registration succeeded.
    pub wait_registered: bool,
}

impl Default for BaresipOpts {
    fn default() -> Self {
        BaresipOpts {
            user: "1002".into(),
            password: "pass1002".into(),
            proxy_port: None,
            answer: AnswerMode::Auto,
            codecs: "PCMU,PCMA".into(),
            tone_hz: 1000.0,
            regint: 600,
            wait_registered: true,
        }
    }
}

impl BaresipOpts {
    /// 1002 registering with the given Kamailio, auto-answering.
    pub fn registered_to(kamailio_port: u16) -> BaresipOpts {
        BaresipOpts {
            proxy_port: Some(kamailio_port),
            ..BaresipOpts::default()
        }
    }
}

#[derive(Default)]
struct CtrlState {
    events: Vec<Value>,
    responses: VecDeque<Value>,
    closed: bool,
}

type Shared = Arc<(Mutex<CtrlState>, Condvar)>;

/// A ctrl_tcp response.
#[derive(Debug, Clone)]
pub struct CtrlResponse {
    pub ok: bool,
    /// The command's text output, ANSI colour codes removed.
    pub data: String,
}

pub struct Baresip {
    opts: BaresipOpts,
    dir: PathBuf,
    sip_port: u16,
    ctrl_port: u16,
    ctrl: TcpStream,
    shared: Shared,
    token: u64,
    proc: Proc,
}

/// Loads baresip's G.722 / Opus modules after `g711.so` when the account's
/// codec list names them (the template loads G.711 only).
fn with_codec_modules(config: String, codecs: &str) -> String {
    let lower = codecs.to_ascii_lowercase();
    let mut extra = String::new();
    for (name, module) in [("g722", "g722.so"), ("opus", "opus.so")] {
        if lower.contains(name) {
            extra.push_str(&format!("module\t\t\t{module}\n"));
        }
    }
    config.replacen(
        "module\t\t\tg711.so\n",
        &format!("module\t\t\tg711.so\n{extra}"),
        1,
    )
}

impl Baresip {
    /// Starts baresip with its files under `dir/baresip-<user>`; returns once
    /// the control connection is up (and, with a proxy, once registered).
    pub fn start(dir: &Path, opts: BaresipOpts) -> Baresip {
        Self::start_with_config(dir, opts, "")
    }

    /// [`Baresip::start`] with lines appended to the config (e.g. `rtcp_mux\t\tyes\n`).
    pub fn start_with_config(dir: &Path, opts: BaresipOpts, extra_config: &str) -> Baresip {
        let baresip = util::which_or_panic(crate::BARESIP);
        let dir = dir.join(format!("baresip-{}", opts.user));
        let rec = dir.join("rec");
        std::fs::create_dir_all(&rec).expect("create baresip dirs");
        let src = dir.join(format!("tone{}-48k.wav", opts.tone_hz));
        crate::audio::write_tone(&src, opts.tone_hz, 48_000, 60.0, 0.5);

        // A port checked free can be taken by another process before baresip binds it: a
        // start that fails with "Address already in use" is tried again on other ports.
        const START_ATTEMPTS: u32 = 3;
        let port_taken = |p: &Proc| p.log().contains("Address already in use");
        let mut attempt = 0;
        let (sip_port, ctrl_port, proc, ctrl) = loop {
            attempt += 1;
            // baresip listens for SIP/TLS on the port above its SIP port.
            let sip_port = util::free_port_pair();
            let ctrl_port = util::free_port();
            let rtp = util::free_port_range(40);
            let peers = crate::peers_dir();
            let read = |name: &str| {
                std::fs::read_to_string(peers.join(name))
                    .unwrap_or_else(|e| panic!("cannot read {name}: {e}"))
            };
            let config = util::fill_template(
                &read("baresip-config.in"),
                &[
                    ("SIP_PORT", &sip_port.to_string()),
                    ("CTRL_PORT", &ctrl_port.to_string()),
                    ("SRC", &src.display().to_string()),
                    ("DIR", &dir.display().to_string()),
                    ("RTP_MIN", &rtp.to_string()),
                    ("RTP_MAX", &(rtp + 39).to_string()),
                ],
            );
            let config = with_codec_modules(config, &opts.codecs) + extra_config;
            let (proxy_port, regint) = match opts.proxy_port {
                Some(p) => (p, opts.regint),
                // no registrar: an AOR at baresip's own address, never registered
                None => (sip_port, 0),
            };
            let answermode = match opts.answer {
                AnswerMode::Auto => "auto",
                AnswerMode::Manual => "manual",
            };
            let accounts = util::fill_template(
                &read("baresip-accounts.in"),
                &[
                    ("USER", &opts.user),
                    ("PROXY_PORT", &proxy_port.to_string()),
                    ("PASSWORD", &opts.password),
                    ("ANSWERMODE", answermode),
                    ("REGINT", &regint.to_string()),
                    ("CODECS", &opts.codecs),
                ],
            );
            std::fs::write(dir.join("config"), config).expect("write baresip config");
            std::fs::write(dir.join("accounts"), accounts).expect("write baresip accounts");
            std::fs::write(dir.join("contacts"), "").expect("write baresip contacts");

            let mut cmd = Command::new(&baresip);
            // -v: verbose log (incoming telephone-events are logged as "received event")
            cmd.arg("-v").arg("-f").arg(&dir).current_dir(&dir);
            let mut proc = Proc::spawn("baresip", cmd, &dir.join("baresip.log"));

            // connect to ctrl_tcp
            let end = Instant::now() + Duration::from_secs(15);
            let ctrl = loop {
                if attempt < START_ATTEMPTS && !proc.is_running() && port_taken(&proc) {
                    break None;
                }
                proc.assert_running("while starting");
                if let Ok(s) = TcpStream::connect(("127.0.0.1", ctrl_port)) {
                    break Some(s);
                }
                if Instant::now() >= end {
                    panic!(
                        "baresip ctrl_tcp not listening on 127.0.0.1:{ctrl_port}; log:\n{}",
                        proc.log_tail(40)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            match ctrl {
                Some(ctrl) => break (sip_port, ctrl_port, proc, ctrl),
                None => eprintln!(
                    "baresip could not bind its ports (attempt {attempt}); trying other ports"
                ),
            }
        };
        let shared: Shared = Arc::new((Mutex::new(CtrlState::default()), Condvar::new()));
        let reader = ctrl.try_clone().expect("clone ctrl socket");
        let sh = shared.clone();
        std::thread::spawn(move || read_netstrings(reader, sh));

        let mut b = Baresip {
            opts,
            dir,
            sip_port,
            ctrl_port,
            ctrl,
            shared,
            token: 0,
            proc,
        };
        if b.opts.proxy_port.is_some() && b.opts.wait_registered {
            b.wait_registered(Duration::from_secs(20));
        }
        b
    }

    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    pub fn ctrl_port(&self) -> u16 {
        self.ctrl_port
    }

    pub fn user(&self) -> &str {
        &self.opts.user
    }

    pub fn tone_hz(&self) -> f64 {
        self.opts.tone_hz
    }

    /// A URI that reaches baresip directly (no proxy).
    pub fn direct_uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.opts.user, self.sip_port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }

    /// Sends one ctrl_tcp command (`"dial sip:1001@127.0.0.1"`, `"hangup"`,
    /// `"accept"`, `"listcalls"`, `"reginfo"`, ...) and returns its response.
    /// Note: baresip 1.0 may answer `ok:false` to a `dial` that worked; check
    /// events instead.
    pub fn command(&mut self, line: &str) -> CtrlResponse {
        self.proc.assert_running("before a command");
        let (cmd, params) = line.split_once(' ').unwrap_or((line, ""));
        self.token += 1;
        let token = format!("wpi{}", self.token);
        let req = serde_json::json!({"command": cmd, "params": params, "token": token}).to_string();
        let frame = format!("{}:{},", req.len(), req);
        self.ctrl
            .write_all(frame.as_bytes())
            .unwrap_or_else(|e| panic!("baresip ctrl_tcp write failed: {e}"));
        let (lock, cv) = &*self.shared;
        let end = Instant::now() + Duration::from_secs(10);
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(pos) = st
                .responses
                .iter()
                .position(|r| r.get("token").and_then(Value::as_str) == Some(token.as_str()))
            {
                let r = st.responses.remove(pos).unwrap_or(Value::Null);
                return CtrlResponse {
                    ok: r.get("ok").and_then(Value::as_bool).unwrap_or(false),
                    data: strip_ansi(r.get("data").and_then(Value::as_str).unwrap_or("")),
                };
            }
            let now = Instant::now();
            if now >= end || st.closed {
                drop(st);
                panic!(
                    "baresip: no response to {line:?}; log:\n{}",
                    self.proc.log_tail(30)
                );
            }
            st = cv
                .wait_timeout(st, end - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Every ctrl_tcp event so far.
    pub fn events(&self) -> Vec<Value> {
        let (lock, _) = &*self.shared;
        lock.lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .clone()
    }

    /// Types of the events so far (`CALL_INCOMING`, `CALL_ESTABLISHED`, ...).
    pub fn event_types(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| format!("{}({})", ev_str(e, "type"), ev_str(e, "param")))
            .collect()
    }

    /// Waits for an event of type `ty` whose `param` satisfies `pred`; returns it.
    pub fn wait_event(
        &mut self,
        ty: &str,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Value {
        let (lock, cv) = &*self.shared;
        let end = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(e) = st
                .events
                .iter()
                .find(|e| ev_str(e, "type") == ty && pred(&ev_str(e, "param")))
            {
                return e.clone();
            }
            let now = Instant::now();
            if now >= end {
                let seen: Vec<String> = st
                    .events
                    .iter()
                    .map(|e| format!("{}({})", ev_str(e, "type"), ev_str(e, "param")))
                    .collect();
                drop(st);
                panic!(
                    "baresip: no {ty} event after {timeout:?}; events seen: {seen:?}; log:\n{}",
                    self.proc.log_tail(30)
                );
            }
            st = cv
                .wait_timeout(st, (end - now).min(Duration::from_millis(500)))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
            drop(st);
            self.proc.assert_running("while waiting for an event");
            st = lock.lock().unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Has an event of type `ty` been seen?
    pub fn has_event(&self, ty: &str) -> bool {
        self.events().iter().any(|e| ev_str(e, "type") == ty)
    }

    /// DTMF keys received so far (RFC 4733 telephone-events, from the
    /// `CALL_DTMF_START` events).
    pub fn dtmf_received(&self) -> String {
        self.events()
            .iter()
            .filter(|e| ev_str(e, "type") == "CALL_DTMF_START")
            .map(|e| ev_str(e, "param"))
            .collect()
    }

    /// Does a `reginfo` output show this account registered? (`> sip:1002@127.0.0.1:5070  OK  <server> Expires 600s`)
    pub fn is_registered_in(&self, reginfo: &str) -> bool {
        let me = format!("sip:{}@", self.opts.user);
        reginfo
            .lines()
            .any(|l| l.contains(&me) && l.split_whitespace().any(|w| w == "OK"))
    }

    /// Is the account registered now (per `reginfo`)?
    pub fn registered(&mut self) -> bool {
        let r = self.command("reginfo");
        self.is_registered_in(&r.data)
    }

    /// Polls `reginfo` until the account shows `OK`.
    pub fn wait_registered(&mut self, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let r = self.command("reginfo");
            if self.is_registered_in(&r.data) {
                return;
            }
            if Instant::now() >= end {
                panic!(
                    "baresip {} not registered after {timeout:?}: {}\nlog:\n{}",
                    self.opts.user,
                    r.data,
                    self.proc.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Dials `uri` (watch the events, e.g. `CALL_ESTABLISHED`, for the outcome).
    pub fn dial(&mut self, uri: &str) {
        self.command(&format!("dial {uri}"));
    }

    /// The WAV files baresip recorded of what it received (`*-dec.wav`), oldest first.
    pub fn received_wavs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("rec"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The most recent received-audio recording; panics if there is none.
    pub fn last_received_wav(&self) -> PathBuf {
        self.received_wavs().pop().unwrap_or_else(|| {
            panic!(
                "baresip recorded nothing in {}; log:\n{}",
                self.dir.join("rec").display(),
                self.proc.log_tail(30)
            )
        })
    }

    pub fn assert_running(&mut self) {
        self.proc.assert_running("unexpectedly");
    }

    pub fn stop(&mut self) {
        let _ = self.ctrl.shutdown(std::net::Shutdown::Both);
        self.proc.stop(Duration::from_secs(2));
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ev_str(e: &Value, key: &str) -> String {
    e.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c2 in chars.by_ref() {
                if c2.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads `len:payload,` frames and sorts them into responses and events.
fn read_netstrings(stream: TcpStream, shared: Shared) {
    let mut r = BufReader::new(stream);
    loop {
        let mut len = 0usize;
        let mut digits = 0;
        let ok = loop {
            let mut b = [0u8; 1];
            match r.read_exact(&mut b) {
                Ok(()) if b[0].is_ascii_digit() => {
                    len = len * 10 + usize::from(b[0] - b'0');
                    digits += 1;
                }
                Ok(()) if b[0] == b':' && digits > 0 => break true,
                Ok(()) => {} // stray byte (e.g. whitespace between frames)
                Err(_) => break false,
            }
        };
        let mut payload = vec![0u8; len];
        let ok = ok && r.read_exact(&mut payload).is_ok();
        let mut comma = [0u8; 1];
        let ok = ok && r.read_exact(&mut comma).is_ok();
        let (lock, cv) = &*shared;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !ok {
            st.closed = true;
            cv.notify_all();
            return;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&payload) {
            if v.get("event").and_then(Value::as_bool) == Some(true) {
                st.events.push(v);
            } else {
                st.responses.push_back(v);
            }
        }
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ansi_codes_are_removed() {
        assert_eq!(super::strip_ansi("\x1b[32mOK\x1b[;m done"), "OK done");
    }
}
