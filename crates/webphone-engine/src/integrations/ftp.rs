//! A minimal FTP client for recording upload: log in, binary type, passive data connection
//! (EPSV, RFC 2428 §3, falling back to PASV, RFC 959 §4.1.2), `STOR`, `QUIT`.
//!
//! The URL form is RFC 1738 §3.2: `ftp://user:password@host:port/path/file.wav`; the path is
//! taken relative to the login directory. The data connection always goes to the control
//! connection's address (a PASV answer naming another host is not followed).

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::CONNECT_TIMEOUT;

/// Decodes `%XX` escapes (RFC 3986 §2.1) of a URL component.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("x"), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A command argument must not carry line breaks or other controls (command injection).
fn clean(what: &str, s: String) -> Result<String, String> {
    if s.chars().any(|c| c.is_control()) {
        Err(format!("{what} contains control characters"))
    } else {
        Ok(s)
    }
}

struct Control {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Control {
    /// One reply (RFC 959 §4.2): `ddd text`, or `ddd-` lines up to the `ddd ` line.
    async fn reply(&mut self) -> Result<(u16, String), String> {
        let mut line = String::new();
        let mut first: Option<String> = None;
        loop {
            line.clear();
            let n = self
                .reader
                .read_line(&mut line)
                .await
                .map_err(|e| format!("FTP control connection: {e}"))?;
            if n == 0 {
                return Err("FTP server closed the connection".into());
            }
            if line.len() > 4096 {
                return Err("FTP reply line too long".into());
            }
            let code = line.get(..3).unwrap_or("");
            let sep = line.as_bytes().get(3).copied();
            match &first {
                None => {
                    let parsed: u16 = code
                        .parse()
                        .map_err(|_| format!("not an FTP reply: {}", line.trim_end()))?;
                    if sep == Some(b'-') {
                        first = Some(code.to_string());
                        continue;
                    }
                    return Ok((parsed, line.trim_end().to_string()));
                }
                Some(c) if code == c && sep == Some(b' ') => {
                    let parsed: u16 = code.parse().unwrap_or(0);
                    return Ok((parsed, line.trim_end().to_string()));
                }
                Some(_) => continue,
            }
        }
    }

    async fn cmd(&mut self, command: &str) -> Result<(u16, String), String> {
        self.writer
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .map_err(|e| format!("FTP control connection: {e}"))?;
        self.reply().await
    }

    /// Sends `command` and checks the reply class is `2xx` or one of `ok`.
    async fn expect(&mut self, command: &str, ok: &[u16]) -> Result<u16, String> {
        let (code, text) = self.cmd(command).await?;
        if (200..300).contains(&code) || ok.contains(&code) {
            Ok(code)
        } else {
            let shown = command.split(' ').next().unwrap_or(command);
            Err(format!("FTP {shown} refused: {text}"))
        }
    }
}

/// The port of an EPSV answer `229 ... (|||6446|)`.
fn epsv_port(text: &str) -> Option<u16> {
    let inner = text.split('(').nth(1)?.split(')').next()?;
    let delim = inner.chars().next()?;
    inner.split(delim).nth(3)?.parse().ok()
}

/// The port of a PASV answer `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` (the
/// parentheses are optional in practice: the first `n,n,n,n,n,n` group after the code).
fn pasv_port(text: &str) -> Option<u16> {
    let rest = text.get(4..)?;
    let start = rest.find(|c: char| c.is_ascii_digit())?;
    let group: String = rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .collect();
    let nums: Vec<u16> = group.split(',').filter_map(|s| s.parse().ok()).collect();
    match nums.as_slice() {
        [_, _, _, _, p1, p2] if *p1 < 256 && *p2 < 256 => Some(p1 * 256 + p2),
        _ => None,
    }
}

/// Uploads `data` to the FTP URL `url`.
pub(super) async fn stor(url: &reqwest::Url, data: &[u8]) -> Result<(), String> {
    let host = url.host_str().ok_or("FTP URL without a host")?;
    let port = url.port().unwrap_or(21);
    let user = match url.username() {
        "" => "anonymous".to_string(),
        u => clean("user name", decode(u))?,
    };
    let pass = clean("password", decode(url.password().unwrap_or("webphone@")))?;
    let path = clean("path", decode(url.path().trim_start_matches('/')))?;
    if path.is_empty() || path.ends_with('/') {
        return Err("FTP URL names no file".into());
    }
    let addr = (host.trim_start_matches('[').trim_end_matches(']'), port);
    let sock = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "FTP connect timed out".to_string())?
        .map_err(|e| format!("FTP connect: {e}"))?;
    let peer: SocketAddr = sock.peer_addr().map_err(|e| e.to_string())?;
    let (r, w) = sock.into_split();
    let mut c = Control {
        reader: BufReader::new(r),
        writer: w,
    };
    let (code, text) = c.reply().await?;
    if code != 220 {
        return Err(format!("FTP server not ready: {text}"));
    }
    let code = c.expect(&format!("USER {user}"), &[331]).await?;
    if code == 331 {
        c.expect(&format!("PASS {pass}"), &[]).await?;
    }
    c.expect("TYPE I", &[]).await?;
    let (code, text) = c.cmd("EPSV").await?;
    let data_port = if code == 229 {
        epsv_port(&text)
    } else {
        let (code, text) = c.cmd("PASV").await?;
        if code != 227 {
            return Err(format!("FTP passive mode refused: {text}"));
        }
        pasv_port(&text)
    }
    .ok_or_else(|| format!("FTP passive answer not understood: {text}"))?;
    let mut dsock = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect(SocketAddr::new(peer.ip(), data_port)),
    )
    .await
    .map_err(|_| "FTP data connect timed out".to_string())?
    .map_err(|e| format!("FTP data connect: {e}"))?;
    c.expect(&format!("STOR {path}"), &[125, 150]).await?;
    dsock
        .write_all(data)
        .await
        .map_err(|e| format!("FTP data: {e}"))?;
    dsock
        .shutdown()
        .await
        .map_err(|e| format!("FTP data: {e}"))?;
    drop(dsock);
    let (code, text) = c.reply().await?;
    if !(200..300).contains(&code) {
        return Err(format!("FTP STOR failed: {text}"));
    }
    let _ = c.cmd("QUIT").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_answers_are_parsed() {
        assert_eq!(
            epsv_port("229 Entering Extended Passive Mode (|||6446|)"),
            Some(6446)
        );
        assert_eq!(
            pasv_port("227 Entering Passive Mode (127,0,0,1,200,10)."),
            Some(200 * 256 + 10)
        );
        assert_eq!(
            pasv_port("227 Entering Passive Mode 127,0,0,1,4,1"),
            Some(1025)
        );
        assert_eq!(pasv_port("227 Entering Passive Mode (1,2,3)"), None);
        assert_eq!(epsv_port("229 nothing"), None);
    }

    #[test]
    fn components_are_decoded_and_checked() {
        assert_eq!(decode("a%20b%2Fc%"), "a b/c%");
        assert!(clean("path", decode("x%0D%0ADELE y")).is_err());
        assert!(clean("path", decode("rec/a.wav")).is_ok());
    }
}
