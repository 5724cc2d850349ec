//! SIPp (3.6, UDP) runs: built-in `uac` / `uas` scenarios or our own XML in
//! `tests/interop/peers/`, on free ports, one call (`-m 1`), with a global
//! timeout that counts as failure. Exit code 0 = every call succeeded.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::proc::Proc;
use crate::util;

pub struct Sipp {
    port: u16,
    media_port: u16,
    dir: PathBuf,
    proc: Proc,
}

/// What to run.
pub enum Scenario<'a> {
    /// `-sn uac|uas|...`
    Builtin(&'a str),
    /// `-sf tests/interop/peers/<file>`
    File(&'a str),
}

impl Sipp {
    /// SIPp's built-in `uas` (answers one call, echoes RTP) on a free port.
    pub fn uas(dir: &Path) -> Sipp {
        Sipp::start(dir, Scenario::Builtin("uas"), None, &["-rtp_echo"])
    }

    /// SIPp's built-in `uac`: one call to `service@target` (`target` =
    /// `127.0.0.1:5060`), holding it `hold_ms` before the BYE.
    pub fn uac(dir: &Path, target: &str, service: &str, hold_ms: u32) -> Sipp {
        Sipp::start(
            dir,
            Scenario::Builtin("uac"),
            Some(target),
            &["-s", service, "-d", &hold_ms.to_string()],
        )
    }

    /// Runs `scenario` (as UAC when `target` is given), with extra arguments.
    pub fn start(dir: &Path, scenario: Scenario<'_>, target: Option<&str>, extra: &[&str]) -> Sipp {
        Sipp::start_on(dir, scenario, target, extra, None, false)
    }

    /// [`Sipp::start`] with the SIP port (`None`: a free one) and the transport: `tcp`
    /// runs SIPp with `-t t1` (one TCP connection). Every run also writes its message log
    /// (`-trace_msg`, see [`Sipp::messages`]).
    pub fn start_on(
        dir: &Path,
        scenario: Scenario<'_>,
        target: Option<&str>,
        extra: &[&str],
        port: Option<u16>,
        tcp: bool,
    ) -> Sipp {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let sipp = util::which_or_panic(crate::SIPP);
        let name = match &scenario {
            Scenario::Builtin(s) => s.to_string(),
            Scenario::File(f) => f.trim_end_matches(".xml").to_string(),
        };
        let dir = dir.join(format!(
            "sipp-{name}-{}",
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create sipp dir");
        let port = port.unwrap_or_else(util::free_port);
        let media_port = util::free_port_range(4);
        let mut cmd = Command::new(sipp);
        if let Some(t) = target {
            cmd.arg(t);
        }
        match scenario {
            Scenario::Builtin(s) => cmd.args(["-sn", s]),
            Scenario::File(f) => cmd.arg("-sf").arg(crate::peers_dir().join(f)),
        };
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
            .args(["-m", "1", "-nostdin", "-trace_err", "-trace_screen"])
            .args(["-timeout", "60s", "-timeout_error", "-trace_msg"])
            .args(extra)
            .current_dir(&dir);
        if tcp {
            cmd.args(["-t", "t1"]);
        }
        let proc = Proc::spawn("sipp", cmd, &dir.join("sipp.out"));
        let mut s = Sipp {
            port,
            media_port,
            dir,
            proc,
        };
        if target.is_none() {
            if tcp {
                s.wait_listening_tcp();
            } else {
                s.wait_listening();
            }
        }
        s
    }

    fn wait_listening_tcp(&mut self) {
        let port = self.port;
        let up = util::wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()
                .then_some(())
        });
        self.proc.assert_running("while starting");
        assert!(
            up.is_some(),
            "sipp does not listen on TCP 127.0.0.1:{port}; output:\n{}",
            self.proc.log_tail(30)
        );
    }

    /// Every message SIPp sent and received so far (its `*_messages.log`).
    pub fn messages(&self) -> String {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    fn wait_listening(&mut self) {
        // SIPp binds its UDP port at start-up; wait until it is taken.
        let port = self.port;
        let bound = util::wait_for(Duration::from_secs(10), || {
            std::net::UdpSocket::bind(("127.0.0.1", port))
                .is_err()
                .then_some(())
        });
        self.proc.assert_running("while starting");
        assert!(
            bound.is_some(),
            "sipp did not bind 127.0.0.1:{port}; output:\n{}",
            self.proc.log_tail(30)
        );
    }

    /// SIPp's SIP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn media_port(&self) -> u16 {
        self.media_port
    }

    /// `sip:service@127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("sip:service@127.0.0.1:{}", self.port)
    }

    /// Waits for SIPp to end; kills it after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        match self.proc.wait_timeout(timeout) {
            Some(s) => Some(s),
            None => {
                self.proc.stop(Duration::from_secs(1));
                None
            }
        }
    }

    /// Waits for SIPp to end and panics unless it exited 0, showing its
    /// output and error log.
    pub fn assert_success(&mut self, timeout: Duration) {
        let status = self.wait(timeout);
        if status.is_some_and(|s| s.success()) {
            return;
        }
        panic!(
            "sipp {} (exit {status:?}); output:\n{}\nerrors:\n{}",
            if status.is_none() {
                "did not finish in time"
            } else {
                "failed"
            },
            self.proc.log_tail(40),
            self.error_logs()
        );
    }

    /// The contents of SIPp's `*_errors.log` / `*_screen.log` files.
    pub fn error_logs(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.filter_map(Result::ok) {
                let p = e.path();
                let n = p.to_string_lossy().to_string();
                if n.ends_with("_errors.log") || n.ends_with("_screen.log") {
                    out.push_str(&format!("--- {n}\n{}\n", util::tail_file(&p, 60)));
                }
            }
        }
        out
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }
}
