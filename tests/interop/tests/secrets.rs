//! Secrets (issue 9): the SIP password of a real account never leaves the softphone except in
//! digest responses (RFC 3261 §22.4 / RFC 8760: a hash, never the password itself).
//!
//! Kamailio is given a password that exists only in this run (`kamcmd htable.sets`), and the
//! real `webphone-cli` registers with it at every `loglevel` 1..5, with `RUST_LOG=trace` on
//! stderr, a profile under `--work-dir`, and the local WebSocket service (`--serve`). Each run
//! registers (REGISTER challenge), calls a SIPp UAS, and `1002` through
//! Kamailio (INVITE challenge, RFC 3261 §22.3), asks `getparameter password` through the
//! WebSocket service and finally crashes on purpose (the debug-build trigger
//! `WEBPHONE_CLI_TEST_PANIC=1` + `__panic`, with `RUST_BACKTRACE=full`). Then every byte the
//! run produced is searched for the password: stdout (notifications, LOG lines, callbacks,
//! CDRs), stderr (tracing and the panic), every WebSocket frame, and every file the CLI wrote
//! (its home with config/data/cache/state, the SQLite profile with its WAL and SHM files).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use webphone_interop::flows::{expect_connected, expect_registered, WAIT};
use webphone_interop::{
    require_tools, serial, util, Cli, Kamailio, Params, Sipp, TestDir, Transport, KAMAILIO, KAMCMD,
    SIPP,
};

/// A password that no other run, file or binary contains.
fn unique_password() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7);
    format!("Zx9{}q{nanos}Wv", std::process::id())
}

/// Gives `user` the password `pw` in the running Kamailio (its `users` htable).
fn set_kamailio_password(k: &Kamailio, user: &str, pw: &str) {
    let ctl = format!("unix:{}", k.dir().join("ctl").display());
    // `s:` keeps kamcmd from sending the numeric user name as an integer.
    let key = format!("s:{user}");
    let kamcmd = |args: &[&str]| {
        let out = Command::new(util::which_or_panic(KAMCMD))
            .args(["-s", &ctl])
            .args(args)
            .output()
            .expect("run kamcmd");
        assert!(
            out.status.success(),
            "kamcmd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    kamcmd(&["htable.sets", "users", &key, pw]);
    let now = kamcmd(&["htable.get", "users", &key]);
    assert!(now.contains(pw), "Kamailio kept another password: {now}");
}

/// A minimal WebSocket client (RFC 6455) for the local service: handshake without Origin
/// (the CLI runs with `--allow-no-origin`), masked text frames out, every text frame in
/// collected by a reader thread.
struct WsClient {
    stream: TcpStream,
    frames: Arc<Mutex<Vec<String>>>,
}

impl WsClient {
    fn connect(addr: SocketAddr) -> WsClient {
        let mut s = TcpStream::connect(addr).expect("connect to the local service");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes()).expect("send upgrade");
        // The 101 head, byte by byte so that no frame is swallowed.
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => panic!("upgrade not answered: {}", String::from_utf8_lossy(&head)),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        s.set_read_timeout(None).expect("timeout");
        let frames = Arc::new(Mutex::new(Vec::new()));
        let sink = frames.clone();
        let mut rd = s.try_clone().expect("clone socket");
        std::thread::spawn(move || {
            while let Some(text) = read_frame(&mut rd) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(text);
            }
        });
        WsClient { stream: s, frames }
    }

    fn send_text(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mask = [0x5a, 0x13, 0xc4, 0x7e];
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).expect("send frame");
    }

    fn frames(&self) -> Vec<String> {
        self.frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for the reply frame whose `id` is `id`.
    fn reply(&self, id: u64) -> serde_json::Value {
        util::wait_for(WAIT, || {
            self.frames().iter().find_map(|f| {
                serde_json::from_str::<serde_json::Value>(f)
                    .ok()
                    .filter(|v| v["id"] == serde_json::json!(id))
            })
        })
        .unwrap_or_else(|| panic!("no reply {id}; frames: {:?}", self.frames()))
    }
}

/// One server frame (unmasked, RFC 6455 §5.2); text and binary payloads as text, control
/// frames skipped; `None` at the end of the connection.
fn read_frame(s: &mut TcpStream) -> Option<String> {
    loop {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).ok()?;
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                s.read_exact(&mut l).ok()?;
                u64::from(u16::from_be_bytes(l))
            }
            127 => {
                let mut l = [0u8; 8];
                s.read_exact(&mut l).ok()?;
                u64::from_be_bytes(l)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).ok()?];
        s.read_exact(&mut payload).ok()?;
        match h[0] & 0x0f {
            0x8 => return None,
            0x9 | 0xa => continue,
            _ => return Some(String::from_utf8_lossy(&payload).into_owned()),
        }
    }
}

/// Every regular file under `dir` with its bytes (SQLite database, WAL and SHM included).
fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p.display().to_string(), bytes));
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One run at `loglevel`: register, two calls, the service's `getparameter`, a crash.
/// Returns what was searched: (place, bytes) pairs.
fn run_at_level(k: &Kamailio, dir: &TestDir, level: u8, pw: &str) -> Vec<(String, Vec<u8>)> {
    let sub = dir.subdir(&format!("level{level}"));
    let work = sub.join("profile");
    let params = Params::account(k, "1001", Transport::Udp)
        .set("password", pw)
        .set("loglevel", level)
        .set("audiodevicein", "null")
        .set("audiodeviceout", "null");
    let wrapper: Vec<String> = [
        "env",
        "RUST_LOG=trace",
        "RUST_BACKTRACE=full",
        "WEBPHONE_CLI_TEST_PANIC=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let work_s = work.display().to_string();
    let mut cli = Cli::start_wrapped(
        &sub,
        &wrapper,
        &params.pairs(),
        &[
            "--callbacks",
            "--work-dir",
            &work_s,
            "--serve",
            "127.0.0.1:0",
            "--allow-no-origin",
        ],
    );
    expect_registered(&mut cli, 0);

    // The local service: the password is set, its value never comes back.
    let addr: SocketAddr = util::wait_for(WAIT, || {
        cli.stderr().lines().find_map(|l| {
            l.strip_prefix("webphone-cli: serving ws://")
                .and_then(|a| a.trim().parse().ok())
        })
    })
    .unwrap_or_else(|| panic!("no service address on stderr\n{}", cli.diagnostics()));
    let mut ws = WsClient::connect(addr);
    ws.send_text(r#"{"id":1,"fn":"getparameter","args":["password"]}"#);
    assert_eq!(
        ws.reply(1),
        serde_json::json!({"id": 1, "ok": "<redacted>"}),
        "level {level}"
    );
    // A page's account form sets it (the same value: the registration goes on).
    ws.send_text(&format!(
        r#"{{"id":3,"fn":"setparameter","args":["password","{pw}"]}}"#
    ));
    assert!(ws.reply(3).get("ok").is_some(), "level {level}");
    ws.send_text(r#"{"id":2,"fn":"isregistered","args":[]}"#);
    assert_eq!(ws.reply(2)["ok"], serde_json::json!(true), "level {level}");

    // A call that connects (SIPp's uas, straight to its address) and one that Kamailio
    // challenges (INVITE digest) before failing it (1002 is not registered).
    let mut uas = Sipp::uas(&sub.join("uas"));
    cli.api_ok(&format!("call {}", uas.uri()));
    expect_connected(&mut cli);
    std::thread::sleep(Duration::from_millis(500));
    cli.api_ok("hangup");
    uas.assert_success(WAIT);
    cli.expect_cdr(WAIT);
    let mark = cli.mark();
    cli.api_ok("call 1002");
    cli.expect_after(mark, |l| l.starts_with("CDR,"), WAIT);
    assert!(
        !k.lines_with(&["AUTHORIZED INVITE auth=1001"]).is_empty(),
        "Kamailio never saw an authenticated INVITE:\n{}",
        k.script_lines().join("\n")
    );

    // The crash path: a panic with a full backtrace.
    cli.send("__panic");
    let panicked = util::wait_for(WAIT, || {
        let e = cli.stderr();
        e.contains("crash requested with __panic").then_some(e)
    });
    assert!(
        panicked.is_some(),
        "level {level}: the test crash trigger did nothing (debug build?)\n{}",
        cli.diagnostics()
    );
    let status = cli.quit();
    assert!(
        status.is_some_and(|s| !s.success()),
        "level {level}: a crashed CLI exits with a failure: {status:?}"
    );
    std::thread::sleep(Duration::from_millis(200));

    let stdout = cli.lines().join("\n");
    if level == 5 {
        // Level 5 really logs the SIP exchange, so the search below means something.
        assert!(
            stdout.contains("REGISTER sip:") && stdout.contains("Authorization: Digest"),
            "loglevel 5 logs the authenticated REGISTER:\n{}",
            util::tail_str(&stdout, 60)
        );
    }
    let mut searched = vec![
        (format!("level {level} stdout"), stdout.into_bytes()),
        (
            format!("level {level} WebSocket frames"),
            ws.frames().join("\n").into_bytes(),
        ),
    ];
    files_under(&sub, &mut searched);
    let db_files: Vec<&String> = searched
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.contains(".sqlite"))
        .collect();
    assert!(
        !db_files.is_empty(),
        "level {level}: no SQLite profile under {}",
        work.display()
    );
    searched
}

#[test]
fn the_password_never_appears_in_logs_notifications_service_answers_crash_output_or_the_profile() {
    let _serial = serial();
    if !require_tools("secrets", &[KAMAILIO, KAMCMD, SIPP]) {
        return;
    }
    let dir = TestDir::new("secrets");
    let k = Kamailio::start(&dir.subdir("registrar"));
    let pw = unique_password();
    set_kamailio_password(&k, "1001", &pw);

    let mut leaks = Vec::new();
    let mut total = 0usize;
    let mut places = 0usize;
    for level in 1..=5u8 {
        for (place, bytes) in run_at_level(&k, &dir, level, &pw) {
            total += bytes.len();
            places += 1;
            if contains(&bytes, pw.as_bytes()) {
                leaks.push(place);
            }
        }
    }
    println!("secrets: searched {places} outputs and files, {total} bytes, for the password");
    assert!(leaks.is_empty(), "the password {pw} appears in: {leaks:#?}");
}
