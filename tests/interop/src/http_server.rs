//! A small HTTP/1.1 server on 127.0.0.1 for the integration tests: it records every request
//! (method, path, query, headers, body) and answers from a table of path prefixes.
//!
//! Standard library only: one thread accepts, one thread serves each connection (one request,
//! then `Connection: close`). [`HttpServer::silent`] accepts and reads requests but never
//! answers, to stand for a hung server. Stopped (and its connections closed) when dropped.
//! `ftp://` uploads go to a real FTP server instead ([`crate::ftp`]).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path without the query, still percent-encoded.
    pub path: String,
    /// The raw query (after `?`), empty when none.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
    }

    /// `path?query` as sent.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Decodes `%XX` escapes and `+` (as a space, form encoding).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer: status code and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

type Shared = Arc<(Mutex<Vec<Request>>, Condvar)>;

pub struct HttpServer {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Shared,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl HttpServer {
    /// Serves `routes`: the first `(path prefix, status, body)` whose prefix starts the request
    /// path answers; other paths get `200` with an empty body.
    pub fn start(routes: &[(&str, u16, &str)]) -> HttpServer {
        let table: Vec<(String, Answer)> = routes
            .iter()
            .map(|(p, s, b)| {
                (
                    p.to_string(),
                    Answer {
                        status: *s,
                        body: b.to_string(),
                    },
                )
            })
            .collect();
        HttpServer::spawn(Some(table))
    }

    /// Accepts connections and reads requests, never answers (a hung server).
    pub fn silent() -> HttpServer {
        HttpServer::spawn(None)
    }

    fn spawn(table: Option<Vec<(String, Answer)>>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test HTTP server");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Shared = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let open = Arc::new(Mutex::new(Vec::new()));
        let table = Arc::new(table);
        let (stop2, seen2, open2) = (stop.clone(), seen.clone(), open.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(sock) = conn else { continue };
                if let Ok(copy) = sock.try_clone() {
                    open2.lock().unwrap_or_else(|e| e.into_inner()).push(copy);
                }
                let (seen, table) = (seen2.clone(), table.clone());
                std::thread::spawn(move || serve(sock, &seen, table.as_ref().as_ref()));
            }
        });
        HttpServer {
            port,
            stop,
            seen,
            open,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.seen
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for a request matching `pred`; panics with the requests seen after `timeout`.
    pub fn wait_request(&self, pred: impl Fn(&Request) -> bool, timeout: Duration) -> Request {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.seen;
        let mut seen = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = seen.iter().find(|r| pred(r)) {
                return r.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                let list: Vec<String> = seen
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.target()))
                    .collect();
                panic!("HTTP request not received within {timeout:?}; got {list:#?}");
            }
            seen = cv
                .wait_timeout(seen, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for a request whose path is `path`.
    pub fn wait_path(&self, path: &str, timeout: Duration) -> Request {
        self.wait_request(|r| r.path == path, timeout)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for s in self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Reads one request (head, then a `Content-Length` body), records it, answers from `table`.
fn serve(mut sock: TcpStream, seen: &Shared, table: Option<&Vec<(String, Answer)>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 1 << 20 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let req = Request {
        method,
        path,
        query,
        headers,
        body,
    };
    let answer = table.map(|t| {
        t.iter()
            .find(|(prefix, _)| req.path.starts_with(prefix.as_str()))
            .map(|(_, a)| a.clone())
            .unwrap_or(Answer {
                status: 200,
                body: String::new(),
            })
    });
    {
        let (lock, cv) = &**seen;
        lock.lock().unwrap_or_else(|e| e.into_inner()).push(req);
        cv.notify_all();
    }
    let Some(a) = answer else {
        // Silent: keep the connection open until the server is dropped.
        let _ = sock.read(&mut chunk);
        return;
    };
    let resp = format!(
        "HTTP/1.1 {} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        a.status,
        a.body.len(),
        a.body
    );
    let _ = sock.write_all(resp.as_bytes());
    let _ = sock.flush();
    // `Connection: close`: end our side now (a clone of the socket is kept for Drop, so
    // dropping this handle alone would not close it).
    let _ = sock.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%2Fd%"), "a b c/d%");
        assert_eq!(percent_decode("%C3%9C"), "Ü");
    }

    #[test]
    fn records_and_answers() {
        let srv = HttpServer::start(&[("/a", 201, "hello")]);
        let mut s = TcpStream::connect(("127.0.0.1", srv.port())).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(b"POST /a/b?x=1%202 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
            .expect("write");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
        assert!(resp.ends_with("hello"), "{resp}");
        let r = srv.wait_path("/a/b", Duration::from_secs(5));
        assert_eq!(r.method, "POST");
        assert_eq!(r.param("x").as_deref(), Some("1 2"));
        assert_eq!(r.body, b"abc");
        assert_eq!(r.header("host"), Some("h"));
    }
}
