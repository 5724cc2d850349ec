//! Ports, temporary directories, the global test lock and small helpers.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Tests start servers: they run one at a time. Every test takes this lock
/// first (`let _serial = serial();`). A panicking test does not poison it for
/// the others.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

fn claim(port: u16) -> bool {
    handed_out()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(port)
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn tcp_free(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A TCP port on 127.0.0.1 that refuses connections for as long as the returned
/// guard lives: its socket is bound but never listens. Binding a listener and
/// dropping it left a window in which another test's listener was given the same
/// port and answered instead.
pub struct RefusedTcpPort {
    _socket: socket2::Socket,
    /// The port number.
    pub port: u16,
}

/// See [`RefusedTcpPort`].
pub fn refused_tcp_port() -> RefusedTcpPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("TCP socket");
    socket
        .bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())
        .expect("bind a loopback TCP port");
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .expect("bound address");
    RefusedTcpPort {
        _socket: socket,
        port,
    }
}

/// A port on 127.0.0.1 that is free for both UDP and TCP right now, and that
/// this process has not handed out before.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let Ok(sock) = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(addr) = sock.local_addr() else {
            continue;
        };
        let port = addr.port();
        drop(sock);
        if tcp_free(port) && udp_free(port) && claim(port) {
            return port;
        }
    }
    panic!("could not find a free UDP+TCP port on 127.0.0.1");
}

/// A port P on 127.0.0.1 such that P and P + 1 are both free for UDP and TCP right now and
/// not handed out before (both are claimed): for peers that listen on the port above their SIP
/// port too (baresip's SIP/TLS listener).
pub fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let p = free_port();
        let Some(next) = p.checked_add(1) else {
            continue;
        };
        if tcp_free(next) && udp_free(next) && claim(next) {
            return p;
        }
    }
    panic!("could not find two free consecutive UDP+TCP ports on 127.0.0.1");
}

/// `count` (< 12000) consecutive UDP ports on 127.0.0.1, all free right now
/// (for RTP port ranges). Returns the first one. Chosen below Linux's
/// ephemeral range so that other sockets are unlikely to take them meanwhile.
pub fn free_port_range(count: u16) -> u16 {
    let mut seed = pseudo_random();
    for _ in 0..200 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // 20000..32000: under the ephemeral range (32768..60999) the OS hands out
        let span = 12_000 - u64::from(count);
        let base = 20_000 + u16::try_from((seed >> 33) % span).unwrap_or(0);
        let base = base & !1; // RTP ports are even
        let all_free = (base..base + count).all(|p| {
            !handed_out()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&p)
                && udp_free(p)
        });
        if all_free {
            let mut set = handed_out().lock().unwrap_or_else(|e| e.into_inner());
            set.extend(base..base + count);
            return base;
        }
    }
    panic!("could not find {count} free consecutive UDP ports on 127.0.0.1");
}

fn pseudo_random() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

/// A per-test directory under the system temp dir. Removed when dropped,
/// unless the test is failing (panicking) or `WEBPHONE_KEEP_TEST_DIRS=1`: then
/// it is kept and its path printed, with the peers' logs and recordings in it.
///
/// Declare it first in a test so that it is dropped last, after the peers.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let short: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(32)
            .collect();
        let path = std::env::temp_dir().join(format!(
            "wpi-{short}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create test dir {}: {e}", path.display()));
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// A sub-directory, created.
    pub fn subdir(&self, rel: &str) -> PathBuf {
        let p = self.path.join(rel);
        std::fs::create_dir_all(&p)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
        p
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let keep = std::env::var("WEBPHONE_KEEP_TEST_DIRS").is_ok_and(|v| v == "1");
        if std::thread::panicking() || keep {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The full path of `bin` if it is an executable file in `PATH`.
pub fn which(bin: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    // sbin directories are often missing from a non-root PATH; kamailio lives there.
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(bin))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Like [`which`], but panics with a clear message (call [`crate::require_tools`] first).
pub fn which_or_panic(bin: &str) -> PathBuf {
    which(bin).unwrap_or_else(|| panic!("{bin} not found in PATH"))
}

/// Polls `f` every 50 ms until it returns `Some`, or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `n` lines of a text file (for failure messages).
pub fn tail_file(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => tail_str(&String::from_utf8_lossy(&bytes), n),
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// The last `n` lines of a string.
pub fn tail_str(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// Replaces every `@KEY@` of `template` with its value; panics if a
/// placeholder is left over (a template and the harness out of step).
pub fn fill_template(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("@{k}@"), v);
    }
    let leftover: Vec<&str> =
        out.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter(|l| {
                l.split('@').count() > 2
                    && l.split('@').skip(1).step_by(2).any(|w| {
                        !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    })
            })
            .collect();
    assert!(
        leftover.is_empty(),
        "unfilled template placeholders: {leftover:?}"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        assert!(udp_free(a) && tcp_free(a));
        let base = free_port_range(10);
        assert_eq!(base % 2, 0);
        assert!((base..base + 10).all(udp_free));
    }

    #[test]
    fn template_fills_and_detects_leftovers() {
        let t = "# @COMMENT@ ignored\nport @PORT@\n";
        assert_eq!(
            fill_template(t, &[("PORT", "5")]),
            "# @COMMENT@ ignored\nport 5\n"
        );
        let r = std::panic::catch_unwind(|| fill_template("a @X@ b", &[]));
        assert!(r.is_err());
    }

    #[test]
    fn test_dir_is_removed_on_success() {
        let p;
        {
            let d = TestDir::new("util self test");
            p = d.path().to_path_buf();
            std::fs::write(d.join("f"), "x").expect("write");
            assert!(p.exists());
        }
        assert!(!p.exists());
    }
}
