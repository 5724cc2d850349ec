//! A started peer process, stopped through its own handle.
//!
//! Each process is started in a new process group whose id is its pid, so
//! that a server that forks workers (Kamailio) is stopped completely: SIGTERM
//! to that group, SIGKILL to it after a grace period. Nothing is ever killed by
//! name.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util;

/// Sends `sig` (`-TERM`, `-KILL`) to the process group `pgid`, a group this bench created
/// with `process_group(0)` for one child. The `--` is essential: procps `kill -KILL -12345`
/// reads the group as another option and signals `-1`, every process the caller may signal
/// (as root: the whole machine, which is how a CI run once died). Groups 0 and 1 are refused.
pub fn signal_group(pgid: u32, sig: &str) {
    if pgid <= 1 {
        return;
    }
    let _ = Command::new("kill")
        .args([sig, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` with stdin from /dev/null and stdout+stderr to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        use std::os::unix::process::CommandExt;
        let out = File::create(log)
            .unwrap_or_else(|e| panic!("{name}: cannot create log {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("{name}: cannot dup log handle: {e}"));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far (lossy UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        util::tail_file(&self.log, n)
    }

    /// The exit status if the process has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `timeout` for the process to end on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Panics with the log's tail if the process has already exited.
    pub fn assert_running(&mut self, what: &str) {
        if let Some(s) = self.try_status() {
            panic!(
                "{} exited ({s}) {what}; log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(40)
            );
        }
    }

    fn signal_group(&self, sig: &str) {
        signal_group(self.child.id(), sig);
    }

    /// SIGTERM to the process group, SIGKILL after `grace`. Returns the
    /// process's exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.try_status() {
            // the leader is gone; make sure no worker of its group stays behind
            self.signal_group("-KILL");
            return Some(s);
        }
        self.signal_group("-TERM");
        if let Some(s) = self.wait_timeout(grace) {
            self.signal_group("-KILL");
            return Some(s);
        }
        self.signal_group("-KILL");
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
        self.status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}
