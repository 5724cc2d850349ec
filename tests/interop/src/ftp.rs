//! A real FTP server for the recording-upload tests: pyftpdlib (Debian's
//! `python3-pyftpdlib`) on a free loopback port, one user with write rights, its home a
//! directory of the test. An upload is known by pyftpdlib's own log line for the finished
//! `STOR` (`[user] STOR <path> completed=1 bytes=<n>`), and its content read from the disk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::proc::Proc;
use crate::util;

/// Debian's interpreter, which has `python3-pyftpdlib` (a `python3` found first on `PATH`
/// may be another installation without it).
pub const PYTHON: &str = "/usr/bin/python3";

/// The server: a user with all rights on `root`, INFO log lines on stdout.
const SERVER: &str = r#"
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
port, root, user, password = sys.argv[1:5]
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
users = DummyAuthorizer()
users.add_user(user, password, root, perm="elradfmw")
FTPHandler.authorizer = users
FTPServer(("127.0.0.1", int(port)), FTPHandler).serve_forever()
"#;

/// One finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUpload {
    /// Path under the user's home, with `/` separators.
    pub path: String,
    pub data: Vec<u8>,
}

pub struct FtpServer {
    port: u16,
    root: PathBuf,
    user: String,
    proc: Proc,
}

impl FtpServer {
    /// Whether the server can run here (interpreter and module present).
    pub fn available() -> bool {
        Command::new(PYTHON)
            .args(["-c", "import pyftpdlib"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Starts the server for `user`/`password` with its home in `dir`/ftp, where the
    /// directories `subdirs` are made first (FTP `STOR` does not create directories).
    pub fn start(dir: &Path, user: &str, password: &str, subdirs: &[&str]) -> FtpServer {
        let root = dir.join("ftp");
        for d in subdirs {
            std::fs::create_dir_all(root.join(d)).expect("FTP directories");
        }
        std::fs::create_dir_all(&root).expect("FTP home");
        let port = util::free_port();
        let mut cmd = Command::new(PYTHON);
        cmd.arg("-u")
            .arg("-c")
            .arg(SERVER)
            .arg(port.to_string())
            .arg(&root)
            .args([user, password]);
        let mut proc = Proc::spawn("pyftpdlib", cmd, &dir.join("ftpd.log"));
        let ready = format!("starting FTP server on 127.0.0.1:{port}");
        let end = Instant::now() + Duration::from_secs(10);
        while !proc.log().contains(&ready) {
            proc.assert_running("while starting");
            assert!(
                Instant::now() < end,
                "pyftpdlib did not start; log:\n{}",
                proc.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        FtpServer {
            port,
            root,
            user: user.to_string(),
            proc,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until the server logs a finished upload of `path` (under the home) by our user,
    /// and returns it as stored.
    pub fn wait_upload(&self, path: &str, timeout: Duration) -> FtpUpload {
        let file = self.root.join(path);
        let done = format!("[{}] STOR {} completed=1", self.user, file.display());
        let found = util::wait_for(timeout, || self.proc.log().contains(&done).then_some(()));
        if found.is_none() {
            panic!(
                "no finished upload of {path} within {timeout:?}; server log:\n{}",
                self.proc.log_tail(30)
            );
        }
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        FtpUpload {
            path: path.to_string(),
            data,
        }
    }

    /// Whether the server's log shows `user` logged in (pyftpdlib checks the password).
    pub fn logged_in(&self, user: &str) -> bool {
        self.proc
            .log()
            .contains(&format!("USER '{user}' logged in."))
    }
}
