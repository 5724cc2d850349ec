//! `--www DIR`: the local service also hands out the files of DIR (the skins, the samples,
//! `ui/webphone_api.js`) over plain HTTP on the same loopback port, so that a browser can open
//! `http://127.0.0.1:PORT/skins/softphone/softphone.html?wp_serviceport=PORT` with nothing but
//! the installed engine. Pages from that origin may use the engine (the service admits its own
//! origin when it serves files).
//!
//! Only `GET` and `HEAD` of regular files under DIR: no directory listings, no dot-files or
//! dot-folders, no `..`, no symbolic link out of DIR (the canonical path must stay inside);
//! one request per connection. Anything else is 404 (405 for other methods, 421 for a `Host`
//! that is not ours: DNS rebinding). A WebSocket upgrade on the same port goes to the engine
//! as before; what such pages may set from their URL is limited
//! ([`super::url_provisioning_refused`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head read before deciding (a browser's GET is far smaller).
const MAX_HEAD: usize = 8 * 1024;
/// Largest file handed out.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// A request head as peeked: its text (lossy UTF-8) and its length in bytes.
pub struct Head {
    pub text: String,
    pub len: usize,
}

/// The request head at the start of `stream`, read without consuming it (the WebSocket
/// handshake reads it again); `None` when it does not end within [`MAX_HEAD`] or `wait`.
pub async fn peek_head(stream: &TcpStream, wait: Duration) -> Option<Head> {
    let mut buf = vec![0u8; MAX_HEAD];
    let end = tokio::time::Instant::now() + wait;
    loop {
        let n = tokio::time::timeout_at(end, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if let Some(at) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(Head {
                text: String::from_utf8_lossy(&buf[..at + 4]).into_owned(),
                len: at + 4,
            });
        }
        if n == buf.len() || tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether a request head asks for a WebSocket upgrade (RFC 6455 §4.1).
pub fn is_upgrade(head: &str) -> bool {
    head.lines().skip(1).any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("upgrade") && v.trim().eq_ignore_ascii_case("websocket")
        })
    })
}

/// The file under `root` that the request target `target` names, or `None` (not found, or
/// not to be handed out: see the module documentation).
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    // Lenient decoding (a malformed `%` stays as written, so names no file); `%2e%2e`
    // becomes `..` and is refused below like a written one.
    let path = webphone_engine::params::percent_decode(path.strip_prefix('/')?);
    if path.contains(['\0', '\\', '\u{fffd}']) {
        return None;
    }
    let mut file = root.to_path_buf();
    for seg in path.split('/') {
        match seg {
            "" => continue,
            s if s.starts_with('.') => return None,
            s => file.push(s),
        }
    }
    let root = root.canonicalize().ok()?;
    let file = file.canonicalize().ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

/// The media type of a file by its extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wav" => "audio/wav",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether the request's `Host` names this service (a loopback name or address with our
/// port): a page of a web site whose name resolves to 127.0.0.1 (DNS rebinding) sends its
/// own name and gets nothing.
pub fn host_is_ours(head: &str, local: std::net::SocketAddr) -> bool {
    let Some(host) = head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("host")
            .then(|| v.trim().to_ascii_lowercase())
    }) else {
        return false;
    };
    let port = local.port();
    [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]
    .contains(&host)
}

/// Answers the one request of `stream` (whose head is `head`) from `root`, then closes.
pub async fn answer(mut stream: TcpStream, root: &Path, head: &Head, local: std::net::SocketAddr) {
    // Take the head off the stream (it was only peeked).
    let mut skip = vec![0u8; head.len];
    if stream.read_exact(&mut skip).await.is_err() {
        return;
    }
    let mut words = head.text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, ctype, body): (&str, &str, Vec<u8>) = if !host_is_ours(&head.text, local) {
        (
            "421 Misdirected Request",
            "text/plain; charset=utf-8",
            b"not this host\n".to_vec(),
        )
    } else if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            b"GET or HEAD only\n".to_vec(),
        )
    } else {
        match resolve(root, target) {
            Some(file) if std::fs::metadata(&file).is_ok_and(|m| m.len() <= MAX_FILE) => {
                match tokio::fs::read(&file).await {
                    Ok(bytes) => ("200 OK", content_type(&file), bytes),
                    Err(_) => (
                        "404 Not Found",
                        "text/plain; charset=utf-8",
                        b"not found\n".to_vec(),
                    ),
                }
            }
            _ => (
                "404 Not Found",
                "text/plain; charset=utf-8",
                b"not found\n".to_vec(),
            ),
        }
    };
    let head_out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n\
         X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head_out.as_bytes()).await;
    if method != "HEAD" {
        let _ = stream.write_all(&body).await;
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("wp-www-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("skins/a b")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("skins/a b/page.html"), "<p>hi</p>").unwrap();
        std::fs::write(root.join(".git/config"), "secret").unwrap();
        std::fs::write(base.join("outside.txt"), "outside").unwrap();
        (base, root)
    }

    #[test]
    fn files_under_the_root_are_found_and_nothing_else() {
        let (base, root) = tree();
        let found = resolve(&root, "/skins/a%20b/page.html?wp_serviceport=1#x").unwrap();
        assert!(found.ends_with("skins/a b/page.html"));
        assert_eq!(content_type(&found), "text/html; charset=utf-8");
        for bad in [
            "/../outside.txt",
            "/skins/../../outside.txt",
            "/%2e%2e/outside.txt",
            "/.git/config",
            "/skins",
            "/",
            "/skins/a%20b/missing.html",
            "/skins\\a b\\page.html",
            "/%zz",
            "/%ff.html",
            "relative.html",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn only_requests_for_our_own_host_are_answered() {
        let local: std::net::SocketAddr = "127.0.0.1:4100".parse().unwrap();
        let get = |host: &str| format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert!(host_is_ours(&get("127.0.0.1:4100"), local));
        assert!(host_is_ours(&get("LOCALHOST:4100"), local));
        assert!(!host_is_ours(&get("evil.example:4100"), local));
        assert!(!host_is_ours(&get("127.0.0.1:4101"), local));
        assert!(!host_is_ours("GET / HTTP/1.1\r\n\r\n", local));
    }

    #[test]
    fn only_websocket_upgrades_go_to_the_engine() {
        assert!(is_upgrade(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n"
        ));
        assert!(!is_upgrade("GET /skins/a.html HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
}
