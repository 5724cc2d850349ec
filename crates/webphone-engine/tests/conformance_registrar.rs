//! Minimal UDP and TCP registrars for the conformance tests (included with `#[path]`; as its
//! own test target it has nothing to run): every REGISTER gets the configured final answer.

#![allow(clippy::unwrap_used, dead_code)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// The answer `code` to the REGISTER `req` (200 echoes the Contact and Expires).
fn answer(req: &str, code: u16) -> String {
    let header = |name: &str| {
        req.lines()
            .find(|l| {
                l.split_once(':')
                    .is_some_and(|(h, _)| h.trim().eq_ignore_ascii_case(name))
            })
            .map(|l| l.trim_end().to_string())
    };
    let mut resp = format!(
        "SIP/2.0 {code} {}\r\n",
        if code == 200 { "OK" } else { "Forbidden" }
    );
    for h in ["Via", "From", "Call-ID", "CSeq"] {
        if let Some(l) = header(h) {
            resp.push_str(&l);
            resp.push_str("\r\n");
        }
    }
    if let Some(to) = header("To") {
        resp.push_str(&to);
        resp.push_str(";tag=reg1\r\n");
    }
    if code == 200 {
        let expires = header("Expires")
            .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| "300".into());
        if let Some(c) = header("Contact") {
            let value = c.split_once(':').map(|(_, v)| v.trim()).unwrap_or("");
            resp.push_str(&format!("Contact: {value};expires={expires}\r\n"));
        }
        resp.push_str(&format!("Expires: {expires}\r\n"));
    }
    resp.push_str("Content-Length: 0\r\n\r\n");
    resp
}

/// A registrar that answers every REGISTER with `code` (200 echoes the Contact and Expires).
pub async fn registrar(code: u16) -> u16 {
    registrar_adding(code, "").await
}

/// [`registrar`] that adds `extra` (header lines, each ending in CRLF) to its answers.
pub async fn registrar_adding(code: u16, extra: &'static str) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            if !req.starts_with("REGISTER ") {
                continue;
            }
            let resp = answer(&req, code).replacen(
                "Content-Length:",
                &format!("{extra}Content-Length:"),
                1,
            );
            let _ = sock.send_to(resp.as_bytes(), from).await;
        }
    });
    port
}

/// A UDP registrar answering `udp_code` and a TCP one answering `tcp_code` on the same port.
pub async fn udp_and_tcp_registrars(udp_code: u16, tcp_code: u16) -> u16 {
    loop {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = sock.local_addr().unwrap().port();
        let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                if req.starts_with("REGISTER ") {
                    let _ = sock.send_to(answer(&req, udp_code).as_bytes(), from).await;
                }
            }
        });
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        // one request per header block (REGISTER has no body here)
                        while let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            let req = String::from_utf8_lossy(&pending[..i + 4]).to_string();
                            pending.drain(..i + 4);
                            if req.starts_with("REGISTER ") {
                                let resp = answer(&req, tcp_code);
                                if s.write_all(resp.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        return port;
    }
}

/// What a [`recording_registrar`] saw: the source of every REGISTER and of every keep-alive
/// datagram (only CR/LF bytes).
#[derive(Default)]
pub struct Seen {
    pub registers: Vec<std::net::SocketAddr>,
    pub keepalives: Vec<std::net::SocketAddr>,
}

/// A UDP registrar answering every REGISTER 200 that records what arrives.
pub async fn recording_registrar() -> (u16, std::sync::Arc<std::sync::Mutex<Seen>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let data = &buf[..n];
            if !data.is_empty() && data.iter().all(|b| *b == b'\r' || *b == b'\n') {
                log.lock().unwrap().keepalives.push(from);
                continue;
            }
            let req = String::from_utf8_lossy(data).to_string();
            if req.starts_with("REGISTER ") {
                log.lock().unwrap().registers.push(from);
                let _ = sock.send_to(answer(&req, 200).as_bytes(), from).await;
            }
        }
    });
    (port, seen)
}
