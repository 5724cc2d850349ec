//! SIPVicious scanners (`svmap`, `svwar`, `svcrack`, Debian's names) run against
//! loopback targets, bounded in time, and a raw OPTIONS probe to read what a SIP
//! endpoint says about itself (`User-Agent` / `Server`, RFC 3261 §20.41 / §20.35).
//!
//! The scanners bind to 127.0.0.1 (`-b`) on a free local port (`-P`) and never
//! get `-R` (it would mail a traceback to the tool's author).

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;

pub const SVMAP: &str = "svmap";
pub const SVWAR: &str = "svwar";
pub const SVCRACK: &str = "svcrack";

/// What one scanner run printed.
#[derive(Debug, Clone)]
pub struct ScanOutput {
    pub tool: String,
    pub args: Vec<String>,
    pub output: String,
    /// False when the run was stopped at the time limit.
    pub finished: bool,
}

/// Runs `tool -b 127.0.0.1 -P <free port> <args...> 127.0.0.1` with its working
/// directory in `dir` (sipvicious writes session files there), killed after `limit`.
/// Output (stdout and stderr) is also kept in `dir/<tool>-<n>.txt`.
pub fn scan(dir: &Path, tool: &str, args: &[&str], limit: Duration) -> ScanOutput {
    let bin = util::which_or_panic(tool);
    std::fs::create_dir_all(dir).expect("create scanner dir");
    let local = util::free_port().to_string();
    let mut full: Vec<String> = vec!["-b".into(), "127.0.0.1".into(), "-P".into(), local];
    full.extend(args.iter().map(|s| s.to_string()));
    full.push("127.0.0.1".into());
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let log = dir.join(format!("{tool}-{n}.txt"));
    let file = std::fs::File::create(&log).expect("create scanner log");
    let err = file.try_clone().expect("clone scanner log");
    let mut child = Command::new(bin)
        .args(&full)
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {tool}: {e}"));
    let end = Instant::now() + limit;
    let mut finished = true;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                finished = false;
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    let output = std::fs::read(&log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    eprintln!(
        "--- {tool} {} ({}):\n{}",
        full.join(" "),
        if finished {
            "finished"
        } else {
            "stopped at the time limit"
        },
        util::tail_str(&output, 25)
    );
    ScanOutput {
        tool: tool.to_string(),
        args: full,
        output,
        finished,
    }
}

/// Sends one out-of-dialog OPTIONS (RFC 3261 §11) over UDP to `127.0.0.1:port`
/// and returns the response text, or `None` when nothing comes back in `timeout`.
pub fn options_probe(port: u16, timeout: Duration) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .ok()?;
    let local = sock.local_addr().ok()?;
    let end = Instant::now() + timeout;
    let mut n = 0u32;
    while Instant::now() < end {
        n += 1;
        let req = format!(
            "OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-wpi-probe-{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:probe@{local}>;tag=probe{n}\r\n\
             To: <sip:probe@127.0.0.1:{port}>\r\n\
             Call-ID: wpi-probe-{n}@127.0.0.1\r\n\
             CSeq: {n} OPTIONS\r\n\
             Accept: application/sdp\r\n\
             Content-Length: 0\r\n\r\n"
        );
        sock.send_to(req.as_bytes(), ("127.0.0.1", port)).ok()?;
        let mut buf = [0u8; 8192];
        if let Ok((len, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            if text.starts_with("SIP/2.0 ") {
                return Some(text);
            }
        }
    }
    None
}

/// Values of the headers that name the software (`User-Agent`, `Server`, RFC 3261
/// §20.41 / §20.35) in a SIP message.
pub fn identity_headers(msg: &str) -> Vec<String> {
    msg.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (name, _) = l.split_once(':')?;
            let name = name.trim().to_ascii_lowercase();
            (name == "user-agent" || name == "server").then(|| l.trim().to_string())
        })
        .collect()
}

/// True when `text` carries a version number of the form `<digits>.<digits>`
/// (e.g. `webphone/0.1.0`, `v1.0.0`).
pub fn has_version_number(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_identity_headers_and_versions() {
        let m = "SIP/2.0 200 OK\r\nVia: x\r\nUser-Agent: webphone/0.1.0\r\nserver: x\r\n\r\nbody";
        assert_eq!(
            identity_headers(m),
            vec!["User-Agent: webphone/0.1.0", "server: x"]
        );
        assert!(has_version_number("webphone/0.1.0"));
        assert!(!has_version_number("User-Agent: webphone"));
    }
}
