//! Kamailio as registrar + proxy on 127.0.0.1 (UDP and TCP on one free port;
//! with [`Kamailio::start_secure`] also TLS, WS and WSS on free ports of their own,
//! with a self-signed certificate made by `openssl` in the test directory),
//! configured by `tests/interop/peers/kamailio.cfg`.
//!
//! Users 1001..1005, password `pass<user>`, realm/domain `127.0.0.1`.
//! Its log (one NOTICE line per request: `REQ <method> <ruri> from
//! <proto>:<ip>:<port> user=<from user> auth=<auth user> ...`, plus
//! `CHALLENGE`, `FORBIDDEN`, `AUTHORIZED`, `REGISTERED`, `RELAY`, `REPLY` lines)
//! is what the tests assert on.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::proc::Proc;
use crate::util;

#[derive(Debug, Clone, Default)]
pub struct KamailioOpts {
    /// Forces the registration expiry granted by the registrar (max and
    /// default expires, in seconds), so a refresh is observable in a test.
    pub max_expires: Option<u32>,
}

/// Ports and certificate of the TLS/WS/WSS listeners.
#[derive(Debug, Clone)]
pub struct SecurePorts {
    pub tls: u16,
    pub ws: u16,
    pub wss: u16,
    /// The server's self-signed certificate (PEM): the CA file that trusts it.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// Which TLS/WS/WSS listeners [`Kamailio::start_full`] sets up.
pub(crate) enum Secure {
    Off,
    /// Free ports and a fresh certificate.
    Fresh,
    /// These ports and this certificate (a restarted instance).
    Reuse(SecurePorts),
}

/// Where Kamailio runs when not on 127.0.0.1 of this namespace: a network namespace
/// ([`crate::netns`]) and the extra address it listens on there.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    netns: Vec<String>,
    ip: String,
}

pub struct Kamailio {
    port: u16,
    place: Option<Place>,
    secure: Option<SecurePorts>,
    ctl: String,
    dir: PathBuf,
    proc: Proc,
}

impl Kamailio {
    pub fn start(dir: &Path) -> Kamailio {
        Kamailio::start_with(dir, KamailioOpts::default())
    }

    /// Starts Kamailio with its files under `dir/kamailio`; returns once it
    /// answers an OPTIONS ping over UDP and accepts TCP connections.
    pub fn start_with(dir: &Path, opts: KamailioOpts) -> Kamailio {
        Kamailio::start_inner(dir, opts, false)
    }

    /// Like [`Kamailio::start_with`], and also listening on TLS, WS and WSS (SIP
    /// over WebSocket, RFC 7118) on free ports of their own ([`Kamailio::tls_port`],
    /// [`Kamailio::ws_port`], [`Kamailio::wss_port`]). The server certificate is
    /// self-signed for `IP:127.0.0.1, IP:::1, DNS:localhost` (basic constraints `CA:FALSE`,
    /// so it can be trusted as it is): [`Kamailio::cert_path`].
    pub fn start_secure(dir: &Path, opts: KamailioOpts) -> Kamailio {
        Kamailio::start_inner(dir, opts, true)
    }

    /// Like [`Kamailio::start_with`], with extra `-A` defines of `kamailio.cfg`:
    /// `AUTH_SHA256` (challenge with `algorithm=SHA-256`, RFC 8760), `WITH_IPV6` (also
    /// listen on UDP and TCP `[::1]:port`, RFC 5118).
    pub fn start_with_defines(dir: &Path, opts: KamailioOpts, defines: &[&str]) -> Kamailio {
        Kamailio::start_full(dir, opts, Secure::Off, defines, None, None)
    }

    /// [`Kamailio::start_secure`] with extra defines (with `WITH_IPV6` TLS is also on
    /// `[::1]:`[`Kamailio::tls_port`]; the certificate names `IP:::1` too).
    pub fn start_secure_with_defines(dir: &Path, opts: KamailioOpts, defines: &[&str]) -> Kamailio {
        Kamailio::start_full(dir, opts, Secure::Fresh, defines, None, None)
    }

    /// Like [`Kamailio::start_with`], on a given UDP+TCP port (e.g. the port of a stopped
    /// instance: the registrar comes back where it was).
    pub fn start_on_port(dir: &Path, opts: KamailioOpts, port: u16) -> Kamailio {
        Kamailio::start_full(dir, opts, Secure::Off, &[], Some(port), None)
    }

    /// Like [`Kamailio::start_secure`], on the UDP+TCP `port` and the TLS/WS/WSS ports and
    /// certificate of `secure` (those of a stopped instance: the registrar comes back
    /// where it was, presenting the certificate the softphone trusts).
    pub fn start_secure_on_ports(
        dir: &Path,
        opts: KamailioOpts,
        port: u16,
        secure: SecurePorts,
    ) -> Kamailio {
        Kamailio::start_full(dir, opts, Secure::Reuse(secure), &[], Some(port), None)
    }

    /// Like [`Kamailio::start_with`], inside the network namespace that `wrapper`
    /// (`ip netns exec <ns>`, [`crate::netns::NetPair::wrapper`]) enters, listening on
    /// `ip` as well as on that namespace's 127.0.0.1 ([`Kamailio::addr`] names `ip`). Ready
    /// once its control socket answers (it is a file, reachable from here).
    pub fn start_in_netns(
        dir: &Path,
        opts: KamailioOpts,
        wrapper: Vec<String>,
        ip: &str,
        port: Option<u16>,
    ) -> Kamailio {
        let place = Place {
            netns: wrapper,
            ip: ip.to_string(),
        };
        Kamailio::start_full(dir, opts, Secure::Off, &[], port, Some(place))
    }

    fn start_inner(dir: &Path, opts: KamailioOpts, tls: bool) -> Kamailio {
        let secure = if tls { Secure::Fresh } else { Secure::Off };
        Kamailio::start_full(dir, opts, secure, &[], None, None)
    }

    pub(crate) fn start_full(
        dir: &Path,
        opts: KamailioOpts,
        secure: Secure,
        defines: &[&str],
        port: Option<u16>,
        place: Option<Place>,
    ) -> Kamailio {
        let kamailio = util::which_or_panic(crate::KAMAILIO);
        let dir = dir.join("kamailio");
        std::fs::create_dir_all(&dir).expect("create kamailio dir");
        let port = port.unwrap_or_else(util::free_port);
        let ctl = format!("unix:{}", dir.join("ctl").display());
        let cfg = crate::peers_dir().join("kamailio.cfg");
        let mut defs = vec![format!("SIP_PORT={port}"), format!("CTL_SOCK=\"{ctl}\"")];
        defs.extend(defines.iter().map(|d| d.to_string()));
        if let Some(p) = &place {
            defs.push(format!("EXTRA_IP={}", p.ip));
        }
        if let Some(e) = opts.max_expires {
            defs.push(format!("MAX_EXPIRES={e}"));
            defs.push(format!("DEFAULT_EXPIRES={e}"));
        }
        let secure = match secure {
            Secure::Off => None,
            Secure::Fresh => {
                let (cert, key) = self_signed_cert(&dir);
                Some(SecurePorts {
                    tls: util::free_port(),
                    ws: util::free_port(),
                    wss: util::free_port(),
                    cert,
                    key,
                })
            }
            Secure::Reuse(s) => Some(s),
        };
        if let Some(s) = &secure {
            defs.push("WITH_TLS".into());
            defs.push(format!("TLS_PORT={}", s.tls));
            defs.push(format!("WS_PORT={}", s.ws));
            defs.push(format!("WSS_PORT={}", s.wss));
            defs.push(format!("TLS_CERT=\"{}\"", s.cert.display()));
            defs.push(format!("TLS_KEY=\"{}\"", s.key.display()));
        }
        let mut args: Vec<String> = vec![
            "-f".into(),
            cfg.display().to_string(),
            "-Y".into(),
            dir.display().to_string(),
        ];
        for d in &defs {
            args.push("-A".into());
            args.push(d.clone());
        }

        // config check first: a clear error instead of a dead daemon
        let check = Command::new(&kamailio)
            .arg("-c")
            .args(&args)
            .output()
            .expect("run kamailio -c");
        assert!(
            check.status.success(),
            "kamailio -c {} failed:\n{}{}",
            cfg.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );

        // -DD: stay in the foreground (we hold the main process); -E: log to stderr
        let mut cmd = match &place {
            Some(p) => {
                let mut c = Command::new(&p.netns[0]);
                c.args(&p.netns[1..]).arg(&kamailio);
                c
            }
            None => Command::new(&kamailio),
        };
        cmd.args(["-DD", "-E", "-m", "64", "-M", "8"])
            .args(&args)
            .current_dir(&dir);
        let proc = Proc::spawn("kamailio", cmd, &dir.join("kamailio.log"));
        let mut k = Kamailio {
            port,
            place,
            secure,
            ctl,
            dir,
            proc,
        };
        k.wait_ready(Duration::from_secs(20));
        k
    }

    fn wait_ready(&mut self, timeout: Duration) {
        if self.place.is_some() {
            // Another namespace: its sockets are out of reach, its control socket is not.
            let end = Instant::now() + timeout;
            loop {
                self.proc.assert_running("while starting");
                let ok = Command::new(util::which_or_panic(crate::KAMCMD))
                    .args(["-s", &self.ctl, "core.version"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if ok {
                    // The control process answers once the SIP workers are forked.
                    std::thread::sleep(Duration::from_millis(300));
                    return;
                }
                if Instant::now() >= end {
                    panic!(
                        "kamailio (netns) control socket not answering after {timeout:?}; log:\n{}",
                        self.proc.log_tail(40)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let end = Instant::now() + timeout;
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set timeout");
        let local = sock.local_addr().expect("local addr");
        let mut n = 0u32;
        loop {
            self.proc.assert_running("while starting");
            n += 1;
            let ping = format!(
                "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-wpi-ping-{n};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:ping@127.0.0.1>;tag=wpi{n}\r\n\
                 To: <sip:127.0.0.1:{port}>\r\n\
                 Call-ID: wpi-ping-{n}@127.0.0.1\r\n\
                 CSeq: {n} OPTIONS\r\n\
                 Content-Length: 0\r\n\r\n",
                port = self.port
            );
            let _ = sock.send_to(ping.as_bytes(), ("127.0.0.1", self.port));
            let mut buf = [0u8; 4096];
            let udp_ok = matches!(sock.recv_from(&mut buf), Ok((len, _)) if buf[..len].starts_with(b"SIP/2.0 200"));
            let mut tcp_ports = vec![self.port];
            if let Some(s) = &self.secure {
                tcp_ports.extend([s.tls, s.ws, s.wss]);
            }
            let tcp_ok = tcp_ports
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if udp_ok && tcp_ok {
                return;
            }
            if Instant::now() >= end {
                panic!(
                    "kamailio not answering on 127.0.0.1:{} after {timeout:?}; log:\n{}",
                    self.port,
                    self.proc.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>` (in a namespace: its extra address): the `serveraddress` for
    /// the softphone.
    pub fn addr(&self) -> String {
        match &self.place {
            Some(p) => format!("{}:{}", p.ip, self.port),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    /// The TLS/WS/WSS listeners (started with [`Kamailio::start_secure`]).
    pub fn secure(&self) -> Option<&SecurePorts> {
        self.secure.as_ref()
    }

    fn secure_or_panic(&self) -> &SecurePorts {
        self.secure
            .as_ref()
            .expect("Kamailio not started with start_secure")
    }

    /// TLS port (needs [`Kamailio::start_secure`]).
    pub fn tls_port(&self) -> u16 {
        self.secure_or_panic().tls
    }

    /// SIP over WebSocket port (needs [`Kamailio::start_secure`]).
    pub fn ws_port(&self) -> u16 {
        self.secure_or_panic().ws
    }

    /// SIP over secure WebSocket port (needs [`Kamailio::start_secure`]).
    pub fn wss_port(&self) -> u16 {
        self.secure_or_panic().wss
    }

    /// The server's self-signed certificate, PEM (needs [`Kamailio::start_secure`]).
    pub fn cert_path(&self) -> &Path {
        &self.secure_or_panic().cert
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self) -> &Path {
        self.proc.log_path()
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        self.proc.log()
    }

    /// The script's NOTICE lines (one per request/decision), in order.
    pub fn script_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("<script>: ").map(|(_, r)| r.to_string()))
            .collect()
    }

    /// The Contact of every REGISTER of `user` the script logged, oldest first.
    pub fn register_contacts(&self, user: &str) -> Vec<String> {
        let user = format!("user={user}");
        self.script_lines()
            .into_iter()
            .filter(|l| l.starts_with("REQ REGISTER") && l.split_whitespace().any(|w| w == user))
            .filter_map(|l| {
                let c = l.split_once("contact=")?.1;
                Some(c.split_whitespace().next().unwrap_or_default().to_string())
            })
            .collect()
    }

    /// Script lines that contain every one of `needles`.
    pub fn lines_with(&self, needles: &[&str]) -> Vec<String> {
        self.script_lines()
            .into_iter()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .collect()
    }

    /// Waits until at least `count` script lines contain every one of
    /// `needles`; returns them, or panics with the log's tail.
    pub fn wait_lines(&mut self, needles: &[&str], count: usize, timeout: Duration) -> Vec<String> {
        let found = util::wait_for(timeout, || {
            let l = self.lines_with(needles);
            (l.len() >= count).then_some(l)
        });
        match found {
            Some(l) => l,
            None => {
                self.proc.assert_running("while waiting for its log");
                panic!(
                    "kamailio log: fewer than {count} lines with {needles:?} after {timeout:?}; script lines:\n{}",
                    util::tail_str(&self.script_lines().join("\n"), 40)
                )
            }
        }
    }

    /// `kamcmd ul.dump` through the control socket.
    pub fn ul_dump(&self) -> String {
        let out = Command::new(util::which_or_panic(crate::KAMCMD))
            .args(["-s", &self.ctl, "ul.dump"])
            .output()
            .expect("run kamcmd");
        assert!(
            out.status.success(),
            "kamcmd ul.dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The contact addresses registered for `user` (from `ul.dump`).
    pub fn contacts(&self, user: &str) -> Vec<String> {
        self.contact_fields(user, "Address")
    }

    /// The values of the `field` lines (`Address`, `Expires`, `Socket`, ...) of `user`'s
    /// contacts in `ul.dump`, one per contact.
    pub fn contact_fields(&self, user: &str, field: &str) -> Vec<String> {
        let dump = self.ul_dump();
        let prefix = format!("{field}:");
        let mut out = Vec::new();
        let mut in_aor = false;
        for line in dump.lines() {
            let t = line.trim();
            if let Some(aor) = t.strip_prefix("AoR:") {
                in_aor = aor.trim() == user;
            } else if in_aor {
                if let Some(v) = t.strip_prefix(prefix.as_str()) {
                    out.push(v.trim().to_string());
                }
            }
        }
        out
    }

    /// Waits until `user` has at least one registered contact.
    pub fn wait_registered(&self, user: &str, timeout: Duration) -> Vec<String> {
        util::wait_for(timeout, || {
            let c = self.contacts(user);
            (!c.is_empty()).then_some(c)
        })
        .unwrap_or_else(|| {
            panic!(
                "{user} not registered at kamailio after {timeout:?}; ul.dump:\n{}\nscript lines:\n{}",
                self.ul_dump(),
                util::tail_str(&self.script_lines().join("\n"), 30)
            )
        })
    }

    pub fn assert_running(&mut self) {
        self.proc.assert_running("unexpectedly");
    }

    /// Freezes every Kamailio process (SIGSTOP to its group): its connections stay open
    /// and the kernel still acknowledges what arrives, but nothing is read or answered —
    /// a hung server. [`Kamailio::thaw`] lets it go on.
    pub fn freeze(&self) {
        crate::proc::signal_group(self.proc.pid(), "-STOP");
    }

    /// Lets a frozen Kamailio go on (SIGCONT to its group).
    pub fn thaw(&self) {
        crate::proc::signal_group(self.proc.pid(), "-CONT");
    }

    /// Stops Kamailio (SIGTERM to its process group, SIGKILL after 5 s).
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }
}

/// A self-signed P-256 certificate for `IP:127.0.0.1, IP:::1, DNS:localhost` in `dir`
/// (`server.crt`, `server.key`), valid two days. `CA:FALSE`: rustls (webpki)
/// accepts a trusted certificate as the end-entity only when it is not a CA.
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    self_signed_cert_for(dir, "server", "IP:127.0.0.1,IP:::1,DNS:localhost")
}

/// A self-signed certificate named `<name>.crt` / `<name>.key` in `dir` for the
/// given subjectAltName list (e.g. `DNS:wrong.example` for name-mismatch tests).
pub fn self_signed_cert_for(dir: &Path, name: &str, san: &str) -> (PathBuf, PathBuf) {
    let openssl = util::which_or_panic("openssl");
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=webphone-interop-{name}"),
        ])
        .args(["-addext", &format!("subjectAltName={san}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// `openssl s_server` on a free loopback port with `cert`/`key`, logging what it receives
/// (the SIP text that crossed the handshake) to `<name>.log` in `dir`; ready when it
/// accepts TCP connections (within `wait`). It ends when stopped or after 60 s.
pub fn openssl_tls_server(
    dir: &Path,
    name: &str,
    cert: &Path,
    key: &Path,
    wait: Duration,
) -> (Proc, u16) {
    let port = util::free_port();
    // s_server ends when its standard input closes: keep a pipe open for the test.
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "sleep 60 | exec openssl s_server -accept 127.0.0.1:{port} -cert '{}' -key '{}'",
        cert.display(),
        key.display()
    ));
    let proc = Proc::spawn(name, cmd, &dir.join(format!("{name}.log")));
    let ready = util::wait_for(wait, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    });
    assert!(ready.is_some(), "s_server not listening: {}", proc.log());
    (proc, port)
}
