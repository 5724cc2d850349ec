//! coturn (`turnserver`) as a STUN/TURN server of our own on a free loopback port (UDP, and
//! TCP on the same port for clients that reach it over TCP): long-term
//! credential `test`/`test123`, relaying to loopback peers allowed, verbose log to a file in
//! the test directory (the log shows allocations, permissions, channel binds and, when an
//! allocation ends, its traffic counters).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::proc::Proc;
use crate::util;

/// The coturn binary.
pub const TURNSERVER: &str = "turnserver";
/// User name of the TURN long-term credential.
pub const TURN_USER: &str = "test";
/// Password of the TURN long-term credential.
pub const TURN_PASSWORD: &str = "test123";

pub struct Coturn {
    ip: String,
    port: u16,
    /// TLS port and the server's self-signed certificate ([`Coturn::start_tls`]).
    tls: Option<(u16, std::path::PathBuf)>,
    relay_min: u16,
    relay_max: u16,
    proc: Proc,
}

/// Traffic of one TURN allocation as coturn reports it when the allocation ends
/// (`usage: ... rp=, rb=, sp=, sb=`: packets and bytes received from and sent to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub received_packets: u64,
    pub received_bytes: u64,
    pub sent_packets: u64,
    pub sent_bytes: u64,
}

impl Coturn {
    /// Start coturn on a free UDP port of 127.0.0.1; returns once it answers on the port.
    pub fn start(dir: &Path) -> Coturn {
        Coturn::start_at(dir, &[], "127.0.0.1", false)
    }

    /// [`Coturn::start`], also serving TURN over TLS on a port of its own
    /// ([`Coturn::tls_addr`]) with a self-signed certificate for `127.0.0.1`
    /// ([`Coturn::cert_path`]: trusting it is the client's choice).
    pub fn start_tls(dir: &Path) -> Coturn {
        Coturn::start_at(dir, &[], "127.0.0.1", true)
    }

    /// Start coturn in a network namespace (`wrapper`: `ip netns exec <ns>`, see
    /// [`crate::netns`]) listening on `ip`; returns once its log says it serves.
    pub fn start_in(dir: &Path, wrapper: &[String], ip: &str) -> Coturn {
        Coturn::start_at(dir, wrapper, ip, false)
    }

    fn start_at(dir: &Path, wrapper: &[String], ip: &str, tls: bool) -> Coturn {
        let bin = util::which_or_panic(TURNSERVER);
        let dir = dir.join("coturn");
        std::fs::create_dir_all(&dir).expect("coturn dir");
        let port = util::free_port();
        let relay_min = util::free_port_range(40);
        let relay_max = relay_min + 39;
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args([
            "-n",
            &format!("--listening-ip={ip}"),
            &format!("--relay-ip={ip}"),
            &format!("--listening-port={port}"),
            &format!("--min-port={relay_min}"),
            &format!("--max-port={relay_max}"),
            "--lt-cred-mech",
            &format!("--user={TURN_USER}:{TURN_PASSWORD}"),
            "--realm=webphone.test",
            "--allow-loopback-peers",
            "--no-multicast-peers",
            "--no-dtls",
            "--no-cli",
            "--no-software-attribute",
            "--simple-log",
            "--verbose",
            "--log-file=stdout",
            &format!("--pidfile={}", dir.join("turnserver.pid").display()),
            &format!("--userdb={}", dir.join("turndb").display()),
        ]);
        let tls = tls.then(|| {
            let (cert, key) = crate::kamailio::self_signed_cert(&dir);
            let tls_port = util::free_port();
            cmd.args([
                format!("--tls-listening-port={tls_port}"),
                format!("--cert={}", cert.display()),
                format!("--pkey={}", key.display()),
            ]);
            (tls_port, cert)
        });
        if tls.is_none() {
            cmd.arg("--no-tls");
        }
        let proc = Proc::spawn("coturn", cmd, &dir.join("coturn.log"));
        let mut c = Coturn {
            ip: ip.to_string(),
            port,
            tls,
            relay_min,
            relay_max,
            proc,
        };
        let end = Instant::now() + Duration::from_secs(10);
        // From outside a namespace only the log tells.
        let probe = wrapper.is_empty();
        let serving = |c: &Coturn| {
            c.log().contains("Total General servers") || (probe && c.answers_binding())
        };
        while !serving(&c) {
            c.proc.assert_running("while starting");
            assert!(
                Instant::now() < end,
                "coturn did not start; log:\n{}",
                c.proc.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    /// A STUN Binding request answered on the port (RFC 5389 §6, no attributes).
    fn answers_binding(&self) -> bool {
        let Ok(s) = std::net::UdpSocket::bind("127.0.0.1:0") else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        req.extend_from_slice(&[7u8; 12]);
        if s.send_to(&req, ("127.0.0.1", self.port)).is_err() {
            return false;
        }
        let mut buf = [0u8; 512];
        matches!(s.recv_from(&mut buf), Ok((n, _)) if n >= 20 && buf[0] == 0x01 && buf[1] == 0x01)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `<ip>:<port>` (`127.0.0.1` unless started in a namespace).
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// `<ip>:<TLS port>` of a [`Coturn::start_tls`] server.
    pub fn tls_addr(&self) -> String {
        let (port, _) = self.tls.as_ref().expect("started with start_tls");
        format!("{}:{port}", self.ip)
    }

    /// The TLS server's certificate (a PEM file to trust).
    pub fn cert_path(&self) -> &Path {
        &self.tls.as_ref().expect("started with start_tls").1
    }

    /// Whether `port` is one coturn relays on (an allocation's relayed address).
    pub fn is_relay_port(&self, port: u16) -> bool {
        (self.relay_min..=self.relay_max).contains(&port)
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }

    /// The `peer usage:` lines of ended allocations: traffic between the relay and the peers.
    pub fn peer_usages(&self) -> Vec<Usage> {
        self.usage_lines("peer usage:")
    }

    /// The `usage:` lines of ended allocations: traffic between the client and coturn.
    pub fn client_usages(&self) -> Vec<Usage> {
        self.usage_lines(": usage:")
    }

    fn usage_lines(&self, marker: &str) -> Vec<Usage> {
        self.log()
            .lines()
            .filter(|l| l.contains(marker) && l.contains("rp="))
            .map(|l| {
                let field = |k: &str| -> u64 {
                    l.split(&format!(" {k}="))
                        .nth(1)
                        .and_then(|r| {
                            r.split(|c: char| !c.is_ascii_digit())
                                .next()
                                .and_then(|d| d.parse().ok())
                        })
                        .unwrap_or(0)
                };
                Usage {
                    received_packets: field("rp"),
                    received_bytes: field("rb"),
                    sent_packets: field("sp"),
                    sent_bytes: field("sb"),
                }
            })
            .collect()
    }

    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(2));
    }
}
