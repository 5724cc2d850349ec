//! Drives the headless `webphone-cli` binary.
//!
//! Contract (see docs/internal-apis.md and the notification spec):
//! `webphone-cli [-p name=value]... [--config FILE] [--callbacks]`; one API call
//! per stdin line (`call 1002`, `dtmf 5`, `hangup`, `quit`, ...); results as
//! `RESULT,<fn>,<value>`, errors as `ERROR,<fn>,<message>`; every other stdout
//! line is a notification string (`STATUS,...`, `CDR,...`, `START,...`,
//! `EVENT,...`, `LOG,...`) or, with `--callbacks`, `CALLBACK,<name>,<JSON array>`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util;

#[derive(Default)]
struct Out {
    lines: Vec<String>,
    eof: bool,
}

type Shared = Arc<(Mutex<Out>, Condvar)>;

pub struct Cli {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Shared,
    cursor: usize,
    stderr_log: PathBuf,
    status: Option<ExitStatus>,
}

/// The binary under test: `$WEBPHONE_CLI`, else `$CARGO_TARGET_DIR/debug/webphone-cli`,
/// else `<workspace>/target/debug/webphone-cli`.
pub fn cli_path() -> PathBuf {
    if let Some(p) = std::env::var_os("WEBPHONE_CLI") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    target.join("debug").join("webphone-cli")
}

impl Cli {
    /// Starts `webphone-cli --callbacks -p name=value ...` with its home,
    /// config and data directories inside `dir` (no state shared between
    /// tests), stderr to `dir/cli-stderr.log`, stdout lines collected.
    pub fn start(dir: &Path, params: &[(&str, &str)]) -> Cli {
        Cli::start_with_args(dir, params, &["--callbacks"])
    }

    pub fn start_with_args(dir: &Path, params: &[(&str, &str)], args: &[&str]) -> Cli {
        Cli::start_wrapped(dir, &[], params, args)
    }

    /// Like [`Cli::start_with_args`], run through `wrapper` (e.g. `ip netns exec <ns>`,
    /// [`crate::netns::NetPair::wrapper`]; the wrapper must `exec` the binary so that the
    /// child is the CLI itself).
    pub fn start_wrapped(
        dir: &Path,
        wrapper: &[String],
        params: &[(&str, &str)],
        args: &[&str],
    ) -> Cli {
        let bin = cli_path();
        assert!(
            bin.is_file(),
            "webphone-cli binary not found at {} - build it first (`cargo build -p webphone-cli`, \
             scripts/test.sh does) or point WEBPHONE_CLI at it",
            bin.display()
        );
        let home = dir.join("cli-home");
        std::fs::create_dir_all(&home).expect("create cli home");
        let stderr_log = dir.join("cli-stderr.log");
        let stdout_log = dir.join("cli-stdout.log");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        for (k, v) in params {
            cmd.arg("-p").arg(format!("{k}={v}"));
        }
        cmd.args(args)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_STATE_HOME", home.join("state"))
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(&stderr_log).expect("create cli stderr log"),
            ));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("cli stdout");
        let shared: Shared = Arc::new((Mutex::new(Out::default()), Condvar::new()));
        let sh = shared.clone();
        std::thread::spawn(move || {
            let mut copy = std::fs::File::create(stdout_log).ok();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let line = line.trim_end_matches('\r').to_string();
                if let Some(f) = copy.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                let (lock, cv) = &*sh;
                lock.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .lines
                    .push(line);
                cv.notify_all();
            }
            let (lock, cv) = &*sh;
            lock.lock().unwrap_or_else(|e| e.into_inner()).eof = true;
            cv.notify_all();
        });
        Cli {
            child,
            stdin,
            shared,
            cursor: 0,
            stderr_log,
            status: None,
        }
    }

    /// Writes one command line to the CLI's stdin.
    pub fn send(&mut self, line: &str) {
        let Some(stdin) = self.stdin.as_mut() else {
            panic!("webphone-cli: stdin already closed, cannot send {line:?}");
        };
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            panic!(
                "webphone-cli: cannot send {line:?}: {e}\n{}",
                self.diagnostics()
            );
        }
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).lines.clone()
    }

    /// Lines so far that satisfy `pred` (regardless of the cursor).
    pub fn seen(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.lines().into_iter().filter(|l| pred(l)).collect()
    }

    /// The number of lines so far (a position for [`Cli::expect_after`]).
    pub fn mark(&self) -> usize {
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).lines.len()
    }

    /// Waits for the next line (after the previous `expect`'s match) that
    /// satisfies `pred`, returns it and moves past it. On timeout, panics
    /// showing the last lines seen and the CLI's stderr.
    pub fn expect(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let (idx, line) = self.find_from(self.cursor, &pred, timeout, "expected line");
        self.cursor = idx + 1;
        line
    }

    /// Like [`Cli::expect`] but searches from position `mark` and does not move the cursor.
    pub fn expect_after(
        &mut self,
        mark: usize,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> String {
        self.find_from(mark, &pred, timeout, "expected line").1
    }

    /// Waits for a line starting with `prefix`.
    pub fn expect_prefix(&mut self, prefix: &str, timeout: Duration) -> String {
        let p = prefix.to_string();
        self.expect(move |l| l.starts_with(&p), timeout)
    }

    fn find_from(
        &mut self,
        from: usize,
        pred: &dyn Fn(&str) -> bool,
        timeout: Duration,
        what: &str,
    ) -> (usize, String) {
        let end = Instant::now() + timeout;
        let shared = self.shared.clone();
        let (lock, cv) = &*shared;
        let mut out = lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut scanned = from;
        loop {
            while scanned < out.lines.len() {
                if pred(&out.lines[scanned]) {
                    return (scanned, out.lines[scanned].clone());
                }
                scanned += 1;
            }
            let now = Instant::now();
            if now >= end || out.eof {
                let eof = out.eof;
                drop(out);
                if eof {
                    // let the exit status settle
                    std::thread::sleep(Duration::from_millis(200));
                }
                panic!(
                    "webphone-cli: {what} not seen after {timeout:?}{}\n{}",
                    if eof { " (stdout closed)" } else { "" },
                    self.diagnostics()
                );
            }
            out = cv
                .wait_timeout(out, end - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Runs one API call and returns its `RESULT` value (`Err` with the
    /// message for an `ERROR` line). Does not move the [`Cli::expect`] cursor.
    pub fn api(&mut self, line: &str, timeout: Duration) -> Result<String, String> {
        let func = line.split_whitespace().next().unwrap_or("").to_string();
        let ok = format!("RESULT,{func},");
        let err = format!("ERROR,{func},");
        let mark = self.mark();
        self.send(line);
        let found = self.find_from(
            mark,
            &|l: &str| l.starts_with(&ok) || l == ok.trim_end_matches(',') || l.starts_with(&err),
            timeout,
            &format!("RESULT/ERROR for {line:?}"),
        );
        let l = found.1;
        if let Some(v) = l.strip_prefix(&ok) {
            Ok(v.to_string())
        } else if let Some(e) = l.strip_prefix(&err) {
            Err(e.to_string())
        } else {
            Ok(String::new())
        }
    }

    /// [`Cli::api`], panicking on an `ERROR`.
    pub fn api_ok(&mut self, line: &str) -> String {
        match self.api(line, Duration::from_secs(10)) {
            Ok(v) => v,
            Err(e) => panic!("webphone-cli: {line:?} failed: ERROR {e}"),
        }
    }

    /// Waits for `CALLBACK,<name>,[...]` whose arguments satisfy `pred`; returns the arguments.
    pub fn expect_callback(
        &mut self,
        name: &str,
        pred: impl Fn(&[Value]) -> bool,
        timeout: Duration,
    ) -> Vec<Value> {
        let name = name.to_string();
        let line = self.expect(
            move |l| Callback::parse(l).is_some_and(|c| c.name == name && pred(&c.args)),
            timeout,
        );
        Callback::parse(&line).map(|c| c.args).unwrap_or_default()
    }

    /// Waits for a `STATUS` notification on `line` (-1 = general) whose
    /// statustext satisfies `pred`.
    pub fn expect_status(
        &mut self,
        line: i32,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Status {
        let l = self.expect(
            move |l| Status::parse(l).is_some_and(|s| s.line == line && pred(&s.text)),
            timeout,
        );
        Status::parse(&l).expect("parsed above")
    }

    /// Waits for the next `CDR` notification.
    pub fn expect_cdr(&mut self, timeout: Duration) -> Cdr {
        let l = self.expect(|l| Cdr::parse(l).is_some(), timeout);
        Cdr::parse(&l).expect("parsed above")
    }

    /// The CLI's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read(&self.stderr_log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Last stdout lines, stderr tail and exit status, for failure messages.
    pub fn diagnostics(&mut self) -> String {
        let lines = self.lines();
        let start = lines.len().saturating_sub(40);
        let status = self.try_status();
        format!(
            "--- webphone-cli: last stdout lines ({} in all, cursor at {}):\n{}\n--- stderr tail ({}):\n{}\n--- process: {}",
            lines.len(),
            self.cursor,
            lines[start..].join("\n"),
            self.stderr_log.display(),
            util::tail_file(&self.stderr_log, 30),
            match status {
                Some(s) => format!("exited, {s}"),
                None => "running".to_string(),
            }
        )
    }

    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Sends `quit`, closes stdin and waits up to 10 s for the exit; kills it
    /// otherwise. Returns the exit status.
    pub fn quit(&mut self) -> Option<ExitStatus> {
        if self.try_status().is_none() && self.stdin.is_some() {
            if let Some(stdin) = self.stdin.as_mut() {
                let _ = writeln!(stdin, "quit").and_then(|()| stdin.flush());
            }
            self.stdin = None;
        }
        let end = Instant::now() + Duration::from_secs(10);
        while self.try_status().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        self.status
    }

    /// Kills the CLI process (by its handle) if it still runs.
    pub fn kill(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        self.stdin = None;
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `CALLBACK,<name>,<JSON array>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub name: String,
    pub args: Vec<Value>,
}

impl Callback {
    pub fn parse(line: &str) -> Option<Callback> {
        let rest = line.strip_prefix("CALLBACK,")?;
        let (name, json) = rest.split_once(',')?;
        let args: Vec<Value> = serde_json::from_str(json).ok()?;
        Some(Callback {
            name: name.to_string(),
            args,
        })
    }
}

/// `STATUS,line,statustext,peername,localname,endpointtype,peerdisplayname,callid,online,registered,incall,mute,hold,encrypted,isvideo`
/// (fields after statustext are optional).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    pub line: i32,
    pub text: String,
    pub peer: String,
    pub local: String,
    pub endpoint_type: Option<i32>,
    pub peer_display: String,
    pub call_id: String,
    pub online: Option<i32>,
    pub registered: Option<i32>,
    pub incall: Option<i32>,
    pub fields: Vec<String>,
}

impl Status {
    pub fn parse(line: &str) -> Option<Status> {
        let rest = line.strip_prefix("STATUS,")?;
        let f: Vec<String> = rest.split(',').map(|s| s.trim().to_string()).collect();
        let get = |i: usize| f.get(i).cloned().unwrap_or_default();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<i32>().ok());
        Some(Status {
            line: num(0)?,
            text: get(1),
            peer: get(2),
            local: get(3),
            endpoint_type: num(4),
            peer_display: get(5),
            call_id: get(6),
            online: num(7),
            registered: num(8),
            incall: num(9),
            fields: f,
        })
    }
}

/// `CDR,line,peername,caller,called,peeraddress,connecttime,duration,discparty,reason`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cdr {
    pub line: i32,
    pub peer: String,
    pub caller: String,
    pub called: String,
    pub peer_address: String,
    pub connect_ms: i64,
    pub duration_ms: i64,
    pub disc_party: i32,
    pub reason: String,
}

impl Cdr {
    pub fn parse(line: &str) -> Option<Cdr> {
        let rest = line.strip_prefix("CDR,")?;
        let f: Vec<&str> = rest.splitn(9, ',').map(str::trim).collect();
        if f.len() < 8 {
            return None;
        }
        Some(Cdr {
            line: f[0].parse().ok()?,
            peer: f[1].to_string(),
            caller: f[2].to_string(),
            called: f[3].to_string(),
            peer_address: f[4].to_string(),
            connect_ms: f[5].parse().ok()?,
            duration_ms: f[6].parse().ok()?,
            disc_party: f[7].parse().ok()?,
            reason: f.get(8).map(|s| s.to_string()).unwrap_or_default(),
        })
    }
}

/// The user part of a SIP URI or number: `"sip:1002@127.0.0.1:5060"` -> `"1002"`.
pub fn user_part(s: &str) -> &str {
    let s = s.trim().trim_start_matches('<');
    let s = s
        .strip_prefix("sip:")
        .or_else(|| s.strip_prefix("sips:"))
        .unwrap_or(s);
    s.split(['@', ';', '>']).next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_notifications() {
        let s =
            Status::parse("STATUS,1,InCall,1002,1001,1,Bob,abc@h,1,2,2,0,0,0,0").expect("status");
        assert_eq!(
            (
                s.line,
                s.text.as_str(),
                s.peer.as_str(),
                s.endpoint_type,
                s.registered,
                s.incall
            ),
            (1, "InCall", "1002", Some(1), Some(2), Some(2))
        );
        let g = Status::parse("STATUS,-1,Register Failed,,1001,1,,,1,7,0,0,0,0,0").expect("status");
        assert_eq!(
            (g.line, g.text.as_str(), g.registered),
            (-1, "Register Failed", Some(7))
        );
        let c = Cdr::parse("CDR,1,1002,1002,1001,127.0.0.1:5060,3120,5040,2,BYE, by peer")
            .expect("cdr");
        assert_eq!((c.connect_ms, c.duration_ms, c.disc_party), (3120, 5040, 2));
        assert_eq!(c.reason, "BYE, by peer");
        let cb = Callback::parse(r#"CALLBACK,onCallStateChange,["callConnected",1,"1002","",1]"#)
            .expect("callback");
        assert_eq!(cb.name, "onCallStateChange");
        assert_eq!(cb.args[0], "callConnected");
        assert!(Callback::parse("CALLBACK,onX,not json").is_none());
        assert_eq!(user_part("sip:1002@127.0.0.1:5060"), "1002");
        assert_eq!(user_part("<sip:1002@x>"), "1002");
        assert_eq!(user_part("1002"), "1002");
    }
}
