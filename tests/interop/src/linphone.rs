//! linphonec (liblinphone 5.1, Debian's `linphone-cli`) as a loopback peer.
//!
//! linphonec runs headless with commands on its stdin (not `--pipe`, whose command socket
//! `/tmp/linphonec-<uid>` would be shared by every linphonec of the user), registered to our
//! Kamailio as one of its users, auto-answering (`-a`), with WAV files instead of a sound card
//! (`soundcard use files`, `play`, `record`). Its codecs are chosen with `codec enable/disable`
//! after reading `codec list`. Everything it writes stays in `dir/linphone-<user>`; liblinphone
//! needs a writable `$HOME/.local/share/linphone` for its database, so `HOME` points there too.
//!
//! The process runs in its own process group and is stopped through its handle (`quit`, then
//! SIGTERM/SIGKILL to its group), never by name.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;

/// The linphonec binary, looked up in `PATH`.
pub const LINPHONEC: &str = "linphonec";

/// How to start linphonec.
#[derive(Debug, Clone)]
pub struct LinphoneOpts {
    /// Kamailio user (1001..1005) and its password.
    pub user: String,
    pub password: String,
    /// Kamailio's UDP port on 127.0.0.1.
    pub proxy_port: u16,
    /// WAV file linphone sends into calls.
    pub play: PathBuf,
    /// Offer/accept RFC 4733 telephone-event (`[sip] use_rfc2833`). Without it linphone
    /// plays DTMF as tones inside the audio.
    pub rfc2833: bool,
}

impl LinphoneOpts {
    /// User 1003 (password `pass1003`) registered to Kamailio on `proxy_port`, playing `play`.
    pub fn registered_to(proxy_port: u16, play: &Path) -> LinphoneOpts {
        LinphoneOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            proxy_port,
            play: play.to_path_buf(),
            rfc2833: true,
        }
    }
}

/// A running linphonec.
pub struct Linphone {
    dir: PathBuf,
    log: PathBuf,
    debug_log: PathBuf,
    record: PathBuf,
    sip_port: u16,
    child: Child,
    stdin: Option<ChildStdin>,
}

fn linphonerc(o: &LinphoneOpts, sip_port: u16, rtp: u16) -> String {
    format!(
        "[sip]\nbind_address=127.0.0.1\nsip_port={sip_port}\nsip_tcp_port=0\nsip_tls_port=0\n\
         use_ipv6=0\ndefault_proxy=0\nguess_hostname=1\nregister_only_when_network_is_up=0\n\
         auto_net_state_mon=0\ninc_timeout=60\nuse_info=0\nuse_rfc2833={rfc2833}\n\n\
         [rtp]\naudio_rtp_port={rtp}-{rtp_end}\naudio_jitt_comp=60\nnortp_timeout=30\n\n\
         [net]\nfirewall_policy=0\nmtu=0\n\n\
         [video]\nenabled=0\ncapture=0\ndisplay=0\nautomatically_initiate=0\n\
         automatically_accept=0\n\n\
         [sound]\nechocancellation=0\n\n\
         [misc]\nversion_check_url_root=\nmax_calls=4\n\n\
         [proxy_0]\nreg_proxy=<sip:127.0.0.1:{proxy};transport=udp>\nreg_route=\n\
         reg_identity=\"{user}\" <sip:{user}@127.0.0.1>\nreg_expires=300\nreg_sendregister=1\n\
         publish=0\ndial_escape_plus=0\nnat_policy_ref=\n\n\
         [auth_info_0]\nusername={user}\nuserid={user}\npasswd={pass}\nrealm=127.0.0.1\n\
         domain=127.0.0.1\n",
        rtp_end = rtp + 9,
        rfc2833 = u8::from(o.rfc2833),
        proxy = o.proxy_port,
        user = o.user,
        pass = o.password,
    )
}

impl Linphone {
    /// Starts linphonec under `dir/linphone-<user>`; returns once it is registered.
    pub fn start(dir: &Path, opts: LinphoneOpts) -> Linphone {
        let bin = util::which_or_panic(LINPHONEC);
        let dir = dir.join(format!("linphone-{}", opts.user));
        let home = dir.join("home");
        std::fs::create_dir_all(home.join(".local/share/linphone"))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", home.display()));
        let sip_port = util::free_port();
        let rtp = util::free_port_range(10);
        let rc = dir.join("linphonerc");
        std::fs::write(&rc, linphonerc(&opts, sip_port, rtp))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", rc.display()));
        let log = dir.join("linphonec.log");
        let debug_log = dir.join("linphonec-debug.log");
        let out = File::create(&log).unwrap_or_else(|e| panic!("cannot create log: {e}"));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup log handle: {e}"));
        let mut cmd = Command::new(bin);
        cmd.arg("-c")
            .arg(&rc)
            .arg("-a")
            .args(["-d", "5", "-l"])
            .arg(&debug_log)
            .env("HOME", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start linphonec: {e}"));
        let stdin = child.stdin.take();
        let record = dir.join("received.wav");
        let mut lp = Linphone {
            dir,
            log,
            debug_log,
            record,
            sip_port,
            child,
            stdin,
        };
        lp.wait_log("linphonec>", Duration::from_secs(20));
        lp.command("soundcard use files");
        lp.command(&format!("play {}", opts.play.display()));
        let rec = lp.record.display().to_string();
        lp.command(&format!("record {rec}"));
        let start = Instant::now();
        loop {
            let mark = lp.log().len();
            lp.command("status register");
            let ok = util::wait_for(Duration::from_secs(1), || {
                lp.log()
                    .get(mark..)
                    .is_some_and(|s| s.contains("registered,"))
                    .then_some(())
            });
            if ok.is_some() {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "linphonec did not register; log tail:\n{}",
                    util::tail_str(&lp.log(), 30)
                );
            }
        }
        lp
    }

    /// Sends one command line.
    pub fn command(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
            let _ = s.flush();
        }
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Everything linphonec printed (its console), lossy UTF-8.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// liblinphone's debug log (`-d 5`).
    pub fn debug_log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.debug_log).unwrap_or_default()).into_owned()
    }

    fn wait_log(&self, needle: &str, timeout: Duration) {
        if util::wait_for(timeout, || self.log().contains(needle).then_some(())).is_none() {
            panic!(
                "linphonec: no {needle:?} within {timeout:?}; log tail:\n{}",
                util::tail_str(&self.log(), 30)
            );
        }
    }

    /// Enables exactly the codecs `(mime, rate)` (case-insensitive mime) and disables all
    /// others, by the indices of `codec list`. Panics when one of them is not available.
    pub fn use_only_codecs(&mut self, wanted: &[(&str, u32)]) {
        let mark = self.log().len();
        self.command("codec list");
        // The list ends with the next prompt.
        let listing = util::wait_for(Duration::from_secs(5), || {
            let s = self.log().get(mark..).map(str::to_owned)?;
            let after = s.split_once("codec list")?.1.to_owned();
            after.contains("linphonec>").then_some(after)
        })
        .unwrap_or_else(|| panic!("linphonec: no codec list; log:\n{}", self.log()));
        let mut found = Vec::new();
        let mut cmds = Vec::new();
        for line in listing.lines() {
            // " 5: GSM (8000) disabled"
            let Some((idx, rest)) = line.trim().split_once(':') else {
                continue;
            };
            let Ok(idx) = idx.trim().parse::<u32>() else {
                continue;
            };
            let mut parts = rest.split_whitespace();
            let (Some(mime), Some(rate)) = (parts.next(), parts.next()) else {
                continue;
            };
            let rate: u32 = rate
                .trim_matches(|c| c == '(' || c == ')')
                .parse()
                .unwrap_or(0);
            let want = wanted
                .iter()
                .any(|(m, r)| m.eq_ignore_ascii_case(mime) && *r == rate);
            if want {
                found.push((mime.to_ascii_lowercase(), rate));
                cmds.push(format!("codec enable {idx}"));
            } else {
                cmds.push(format!("codec disable {idx}"));
            }
        }
        for (m, r) in wanted {
            assert!(
                found.contains(&(m.to_ascii_lowercase(), *r)),
                "linphonec has no codec {m}/{r}; codec list:\n{listing}"
            );
        }
        for c in cmds {
            self.command(&c);
        }
    }

    /// The user's address through Kamailio's domain.
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// Where linphonec records what it receives.
    pub fn recording(&self) -> &Path {
        &self.record
    }

    /// The files directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sends DTMF digits in the current call (a line of digits on linphonec's console).
    pub fn send_dtmf(&mut self, digits: &str) {
        for d in digits.chars() {
            self.command(&d.to_string());
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Hangs up every call.
    pub fn terminate_all(&mut self) {
        self.command("terminate all");
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal_group(&self, sig: &str) {
        crate::proc::signal_group(self.child.id(), sig);
    }

    /// Stops linphonec: `quit`, then SIGTERM and SIGKILL to its process group.
    pub fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        self.command("quit");
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && self.is_running() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.is_running() {
            self.signal_group("-TERM");
            std::thread::sleep(Duration::from_millis(500));
        }
        self.signal_group("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        self.stop();
    }
}
