//! The local WebSocket service (`webphone-cli --serve`) through the real binary over real
//! loopback sockets: the JSON protocol, the Origin allow-list, size limits, secret redaction,
//! several pages at once, and the process life cycle while serving.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const BIN: &str = env!("CARGO_BIN_EXE_webphone-cli");
const PAGE: &str = "http://127.0.0.1:8123";
const WAIT: Duration = Duration::from_secs(10);

/// A running `webphone-cli --serve 127.0.0.1:0`; killed (by pid) on drop.
struct Service {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
    stdout: mpsc::Receiver<String>,
}

impl Service {
    /// Starts the service with `extra` arguments; `stdin_open = false` gives it /dev/null.
    fn start(extra: &[&str], stdin_open: bool) -> Service {
        let mut child = Command::new(BIN)
            .args(["--serve", "127.0.0.1:0"])
            .args(["-p", "audiodevicein=null", "-p", "audiodeviceout=null"])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(if stdin_open {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("webphone-cli: serving ws://") {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let (out_tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        let addr = rx
            .recv_timeout(WAIT)
            .expect("the service reports its address on stderr")
            .parse()
            .unwrap();
        Service {
            child,
            stdin,
            addr,
            stdout,
        }
    }

    /// Waits for a stdout line containing `needle`.
    fn stdout_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!("no stdout line with {needle:?}"),
            }
        }
    }

    /// Exit status within `WAIT`, or None.
    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws = WebSocketStream<TcpStream>;

/// One connected page: the socket plus the frames read but not yet consumed.
struct Page {
    ws: Ws,
    backlog: VecDeque<Value>,
}

/// Opens a WebSocket as a page from `origin` would (None: no Origin header).
async fn connect(addr: SocketAddr, origin: Option<&str>) -> Page {
    Page {
        ws: try_connect(addr, origin).await.unwrap(),
        backlog: VecDeque::new(),
    }
}

async fn try_connect(
    addr: SocketAddr,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut()
            .insert("Origin", HeaderValue::from_str(o).unwrap());
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(req, tcp)
        .await
        .map(|(ws, _)| ws)
}

/// Sends one request and returns the reply with its id (other frames stay in the backlog).
async fn request(page: &mut Page, id: u64, func: &str, args: &[&str]) -> Value {
    let req = json!({ "id": id, "fn": func, "args": args });
    page.ws.send(Message::text(req.to_string())).await.unwrap();
    next_matching(page, |v| v["id"] == json!(id)).await
}

/// The first frame (backlog first, then the socket) satisfying `pred`, within `WAIT`; frames
/// passed over stay in the backlog in order.
async fn next_matching(page: &mut Page, pred: impl Fn(&Value) -> bool) -> Value {
    if let Some(i) = page.backlog.iter().position(&pred) {
        return page.backlog.remove(i).unwrap();
    }
    let fut = async {
        loop {
            match page.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if pred(&v) {
                        return v;
                    }
                    page.backlog.push_back(v);
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended while waiting: {other:?}"),
            }
        }
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .expect("no matching frame in time")
}

/// Sends a raw HTTP upgrade request and returns the whole response head and body read so far.
fn raw_upgrade(addr: SocketAddr, origin: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let origin_line = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin_line}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the peer closes (refusals) or the 101 head is complete.
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn page_from_an_allowed_origin_calls_echo_hangs_up_and_sees_the_events() {
    let svc = Service::start(&["--allow-origin", PAGE], true);
    let mut ws = connect(svc.addr, Some(PAGE)).await;

    let r = request(&mut ws, 1, "start", &[]).await;
    assert_eq!(r, json!({"id": 1, "ok": null}));
    let r = request(&mut ws, 2, "call", &["echo"]).await;
    assert_eq!(r["id"], json!(2));
    assert!(r.get("ok").is_some(), "call echo: {r}");
    let connected = next_matching(&mut ws, |v| {
        v["ev"] == "onCallStateChange" && v["args"][0] == "callConnected"
    })
    .await;
    assert_eq!(connected["args"][2], json!("echo"), "{connected}");
    let r = request(&mut ws, 3, "isincall", &[]).await;
    assert_eq!(r["ok"], json!(true), "{r}");

    let r = request(&mut ws, 4, "hangup", &[]).await;
    assert!(r.get("ok").is_some(), "hangup: {r}");
    next_matching(&mut ws, |v| {
        v["ev"] == "onCallStateChange" && v["args"][0] == "callDisconnected"
    })
    .await;
    let cdr = next_matching(&mut ws, |v| {
        v["ev"] == "notification" && v["text"].as_str().is_some_and(|t| t.starts_with("CDR,"))
    })
    .await;
    assert!(cdr["text"].as_str().unwrap().contains("echo"), "{cdr}");
    let r = request(&mut ws, 5, "isincall", &[]).await;
    assert_eq!(r["ok"], json!(false), "{r}");

    // Errors come back as err with the request's id; the CLI's stdout still has every notification.
    let r = request(&mut ws, 6, "nosuchfunction", &[]).await;
    assert_eq!(r, json!({"id": 6, "err": "unknown function"}));
    svc.stdout_line("CDR,1,echo");
}

#[test]
fn page_from_an_unknown_origin_is_refused_with_403_before_the_upgrade() {
    let svc = Service::start(&["--allow-origin", PAGE], true);
    let resp = raw_upgrade(svc.addr, Some("http://evil.example"));
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(
        resp.contains("--allow-origin http://evil.example"),
        "the refusal says how to admit the page: {resp}"
    );
    // Same host, another port is another origin.
    let resp = raw_upgrade(svc.addr, Some("http://127.0.0.1:8124"));
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    // No Origin header: refused unless --allow-no-origin.
    let resp = raw_upgrade(svc.addr, None);
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("--allow-no-origin"), "{resp}");
    // The allowed origin is upgraded (case and a trailing slash do not matter).
    let resp = raw_upgrade(svc.addr, Some("HTTP://127.0.0.1:8123"));
    assert!(resp.starts_with("HTTP/1.1 101"), "{resp}");
}

#[tokio::test]
async fn client_without_origin_is_admitted_only_with_allow_no_origin() {
    let svc = Service::start(&["--allow-no-origin"], true);
    let mut ws = connect(svc.addr, None).await;
    let r = request(&mut ws, 1, "getparameter", &["audiodevicein"]).await;
    assert_eq!(r, json!({"id": 1, "ok": "null"}));
    // An Origin not in the (empty) list is still refused.
    assert!(try_connect(svc.addr, Some(PAGE)).await.is_err());
}

#[tokio::test]
async fn malformed_requests_get_an_error_and_the_connection_stays_usable() {
    let svc = Service::start(&["--allow-origin", PAGE], true);
    let mut ws = connect(svc.addr, Some(PAGE)).await;
    for bad in ["{not json", "[1,2,3]", "42", r#"{"fn":7}"#] {
        ws.ws.send(Message::text(bad)).await.unwrap();
        let r = next_matching(&mut ws, |v| v.get("err").is_some()).await;
        assert_eq!(r["id"], Value::Null, "{bad}: {r}");
        assert!(
            r["err"].as_str().unwrap().contains("malformed request"),
            "{r}"
        );
    }
    ws.ws
        .send(Message::text(r#"{"id":9,"fn":"call","args":"x"}"#))
        .await
        .unwrap();
    let r = next_matching(&mut ws, |v| v["id"] == json!(9)).await;
    assert!(r["err"].as_str().unwrap().contains("args"), "{r}");
    ws.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let r = next_matching(&mut ws, |v| v.get("err").is_some()).await;
    assert!(r["err"].as_str().unwrap().contains("binary"), "{r}");
    let r = request(&mut ws, 10, "getparameter", &["audiodeviceout"]).await;
    assert_eq!(r, json!({"id": 10, "ok": "null"}));
}

#[tokio::test]
async fn oversized_message_closes_only_that_connection() {
    let svc = Service::start(&["--allow-origin", PAGE], true);
    let mut big = connect(svc.addr, Some(PAGE)).await;
    let payload = format!(
        r#"{{"id":1,"fn":"setparameter","args":["displayname","{}"]}}"#,
        "x".repeat(70 * 1024)
    );
    let _ = big.ws.send(Message::text(payload)).await;
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match big.ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| f.code),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("the service closes the connection");
    assert_eq!(closed, Some(CloseCode::Size));
    let mut ws = connect(svc.addr, Some(PAGE)).await;
    let r = request(&mut ws, 2, "getparameter", &["displayname"]).await;
    assert_eq!(
        r,
        json!({"id": 2, "ok": ""}),
        "the big value was not applied"
    );
}

#[tokio::test]
async fn secret_parameters_are_redacted_over_the_service() {
    let svc = Service::start(
        &[
            "--allow-origin",
            PAGE,
            "-p",
            "password=hunter2",
            "-p",
            "username=1001",
        ],
        true,
    );
    let mut ws = connect(svc.addr, Some(PAGE)).await;
    let r = request(&mut ws, 1, "getparameter", &["password"]).await;
    assert_eq!(r, json!({"id": 1, "ok": "<redacted>"}));
    let r = request(&mut ws, 2, "getparameter", &["PASSWORD"]).await;
    assert_eq!(r, json!({"id": 2, "ok": "<redacted>"}));
    let r = request(&mut ws, 3, "getparameter", &["username"]).await;
    assert_eq!(r, json!({"id": 3, "ok": "1001"}));
    // A page may still set it (the account form does).
    let r = request(&mut ws, 4, "setparameter", &["password", "other"]).await;
    assert!(r.get("ok").is_some(), "{r}");
}

#[tokio::test]
async fn every_connected_page_receives_the_events_of_a_call() {
    let svc = Service::start(
        &[
            "--allow-origin",
            PAGE,
            "--allow-origin",
            "http://localhost:9",
        ],
        true,
    );
    let mut a = connect(svc.addr, Some(PAGE)).await;
    let mut b = connect(svc.addr, Some("http://localhost:9")).await;
    let r = request(&mut a, 1, "call", &["echo"]).await;
    assert!(r.get("ok").is_some(), "{r}");
    for ws in [&mut a, &mut b] {
        next_matching(ws, |v| {
            v["ev"] == "onCallStateChange" && v["args"][0] == "callConnected"
        })
        .await;
    }
    let r = request(&mut b, 1, "hangup", &[]).await;
    assert!(r.get("ok").is_some(), "{r}");
    for ws in [&mut a, &mut b] {
        next_matching(ws, |v| {
            v["ev"] == "onCallStateChange" && v["args"][0] == "callDisconnected"
        })
        .await;
    }
}

#[tokio::test]
async fn end_of_stdin_does_not_stop_a_serving_cli_but_sigterm_does() {
    let mut svc = Service::start(&["--allow-origin", PAGE], false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(svc.child.try_wait().unwrap().is_none(), "still serving");
    let mut ws = connect(svc.addr, Some(PAGE)).await;
    let r = request(&mut ws, 1, "isregistered", &[]).await;
    assert_eq!(r, json!({"id": 1, "ok": false}));
    let st = Command::new("kill")
        .args(["-TERM", &svc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(svc.wait_exit(), Some(0));
}

#[test]
fn stdin_commands_still_work_while_serving_and_quit_stops() {
    let mut svc = Service::start(&["--allow-origin", PAGE, "-p", "username=1001"], true);
    let mut stdin = svc.stdin.take().unwrap();
    stdin.write_all(b"getparameter username\n").unwrap();
    svc.stdout_line("RESULT,getparameter,1001");
    stdin.write_all(b"quit\n").unwrap();
    assert_eq!(svc.wait_exit(), Some(0));
}

#[test]
fn non_loopback_serve_address_exits_with_code_2() {
    for addr in ["0.0.0.0:0", "192.0.2.1", "example.org:80"] {
        let out = Command::new(BIN)
            .args(["--serve", addr, "--allow-origin", PAGE])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{addr}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("loopback"), "{addr}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_port_in_use_is_a_clear_start_up_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["--serve", &addr, "--allow-origin", PAGE])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

/// A page that starts the phone and calls the echo endpoint; returns once connected.
async fn page_in_echo_call(svc: &Service) -> Page {
    let mut page = connect(svc.addr, Some(PAGE)).await;
    request(&mut page, 1, "start", &[]).await;
    let r = request(&mut page, 2, "call", &["echo"]).await;
    assert!(r.get("ok").is_some(), "call echo: {r}");
    next_matching(&mut page, |v| {
        v["ev"] == "onCallStateChange" && v["args"][0] == "callConnected"
    })
    .await;
    page
}

async fn is_in_call(svc: &Service) -> Value {
    let mut page = connect(svc.addr, Some(PAGE)).await;
    request(&mut page, 9, "isincall", &[]).await["ok"].clone()
}

#[tokio::test]
async fn last_page_closing_hangs_up_with_destroyonpageclose_1_and_stops_with_2() {
    let svc = Service::start(
        &["--allow-origin", PAGE, "-p", "destroyonpageclose=1"],
        true,
    );
    let mut page = page_in_echo_call(&svc).await;
    svc.stdout_line("START,api");
    page.ws.close(None).await.unwrap();
    svc.stdout_line("CDR,1,echo");
    assert_eq!(is_in_call(&svc).await, json!(false));

    // 2, the default: the phone stops too; the next page's start() starts it again.
    let svc = Service::start(&["--allow-origin", PAGE], true);
    let mut page = page_in_echo_call(&svc).await;
    svc.stdout_line("START,api");
    page.ws.close(None).await.unwrap();
    svc.stdout_line("CDR,1,echo");
    let mut page = connect(svc.addr, Some(PAGE)).await;
    request(&mut page, 1, "start", &[]).await;
    svc.stdout_line("START,api");
}

#[tokio::test]
async fn a_reloaded_page_keeps_the_call_and_destroyonpageclose_0_keeps_it_for_good() {
    // A reload: the page is back within the grace time, nothing happens.
    let svc = Service::start(&["--allow-origin", PAGE], true);
    let mut page = page_in_echo_call(&svc).await;
    page.ws.close(None).await.unwrap();
    let _reloaded = connect(svc.addr, Some(PAGE)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        is_in_call(&svc).await,
        json!(true),
        "the call survives a reload"
    );

    let svc = Service::start(
        &["--allow-origin", PAGE, "-p", "destroyonpageclose=0"],
        true,
    );
    let mut page = page_in_echo_call(&svc).await;
    page.ws.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(is_in_call(&svc).await, json!(true), "0 keeps the call");
}

/// One plain HTTP request on its own connection; the whole answer (the service closes).
fn http_get(addr: SocketAddr, method: &str, target: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// `--www DIR`: the skins come from the engine's own port (GET and HEAD of files under DIR,
/// nothing outside it, no dot-folders), and a page from that origin may use the phone without
/// `--allow-origin`; other origins still may not.
#[tokio::test]
async fn www_hands_out_the_skins_and_admits_their_own_origin() {
    let root = std::env::temp_dir().join(format!("wp-serve-www-{}", std::process::id()));
    std::fs::create_dir_all(root.join("skins/softphone")).unwrap();
    std::fs::create_dir_all(root.join(".hidden")).unwrap();
    std::fs::write(
        root.join("skins/softphone/softphone.html"),
        "<!doctype html><title>skin</title>",
    )
    .unwrap();
    std::fs::write(root.join(".hidden/secret.txt"), "secret").unwrap();
    let svc = Service::start(&["--www", root.to_str().unwrap()], true);

    let page = http_get(
        svc.addr,
        "GET",
        "/skins/softphone/softphone.html?wp_serviceport=1",
    );
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(
        page.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{page}"
    );
    assert!(
        page.contains("X-Content-Type-Options: nosniff\r\n"),
        "{page}"
    );
    assert!(
        page.ends_with("<!doctype html><title>skin</title>"),
        "{page}"
    );
    let head = http_get(svc.addr, "HEAD", "/skins/softphone/softphone.html");
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    for bad in [
        "/../Cargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/.hidden/secret.txt",
        "/skins",
        "/nothing.html",
    ] {
        let r = http_get(svc.addr, "GET", bad);
        assert!(r.starts_with("HTTP/1.1 404"), "{bad}: {r}");
        assert!(!r.contains("secret"), "{bad}: {r}");
    }
    let post = http_get(svc.addr, "POST", "/skins/softphone/softphone.html");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");

    // The pages' own origin is admitted; another is not.
    let own = format!("http://127.0.0.1:{}", svc.addr.port());
    let mut ws = connect(svc.addr, Some(&own)).await;
    let r = request(&mut ws, 1, "getenginename", &[]).await;
    assert!(r.get("ok").is_some(), "{r}");
    // Any web site can link to these pages: from their URL or cookies only look-and-feel
    // parameters are taken, never an account, a server or a number to call.
    for (name, value) in [
        ("serveraddress", "evil.example"),
        ("callto", "0900123"),
        ("autoaction", "1"),
    ] {
        let r = request(&mut ws, 2, "setparameter", &[name, value, "url"]).await;
        assert!(
            r["err"]
                .as_str()
                .is_some_and(|e| e.contains("cannot set it from its address")),
            "{name}: {r}"
        );
    }
    let r = request(&mut ws, 3, "getparameter", &["serveraddress"]).await;
    assert_ne!(r["ok"], json!("evil.example"), "{r}");
    let r = request(&mut ws, 4, "setparameter", &["language", "de", "url"]).await;
    assert!(r.get("ok").is_some(), "a ui parameter from the URL: {r}");
    // The page's own run-time calls (the user typing in the skin) are not affected.
    let r = request(
        &mut ws,
        5,
        "setparameter",
        &["serveraddress", "pbx.example"],
    )
    .await;
    assert!(r.get("ok").is_some(), "{r}");
    // A request naming another host (DNS rebinding) gets no file.
    let mut s = std::net::TcpStream::connect(svc.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /skins/softphone/softphone.html HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.starts_with("HTTP/1.1 421") && !text.contains("<title>skin"),
        "{text}"
    );
    let resp = raw_upgrade(svc.addr, Some("http://127.0.0.1:8123"));
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    std::fs::remove_dir_all(&root).unwrap();
}
