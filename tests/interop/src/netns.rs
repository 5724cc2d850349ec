//! Two network namespaces joined by a veth pair, for fault tests that change addresses
//! and links under a running softphone: `ua` (the softphone) and `srv` (registrar, peers).
//!
//! Names carry `wpt`, the test process id and a sequence number, so parallel runs never
//! meet; [`NetPair`]'s `Drop` deletes both namespaces (the veth pair goes with them) also
//! when the test panics. Needs root (`ip netns add`): without it [`NetPair::create`] prints
//! a loud `SKIP:` and returns `None`, or panics under `CI=true`. Processes are started in a
//! namespace with `ip netns exec` ([`NetPair::command`]), which `exec`s the program: the
//! child's pid (and process group) is the program's, so [`crate::proc::Proc`] stops it as
//! usual. Unix-socket paths are shared across namespaces: `kamcmd` works from outside.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::util;

/// The `ip` tool (iproute2).
pub const IP: &str = "ip";

/// Which side of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The softphone's namespace.
    Ua,
    /// The server's namespace.
    Srv,
}

pub struct NetPair {
    ua: String,
    srv: String,
    ua_if: String,
    srv_if: String,
    /// `10.231.<net>.`: the /24 of the pair.
    prefix: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(IP)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn run_or_panic(args: &[&str]) {
    if let Err(e) = run(args) {
        panic!("{e}");
    }
}

impl NetPair {
    /// Creates `ua` and `srv` namespaces (loopback up in both) joined by a veth pair,
    /// `srv` at `10.231.<net>.1/24` and `ua` at `10.231.<net>.2/24`. `None` (after a loud
    /// `SKIP:`) when namespaces cannot be made here; panics under `CI=true`.
    pub fn create(test: &str) -> Option<NetPair> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let skip = |why: String| {
            let msg = format!("{test}: needs network namespaces (root and iproute2): {why}");
            if crate::is_ci() {
                panic!("CI=true and network namespaces are unavailable: {msg}");
            }
            eprintln!("SKIP: {msg}");
        };
        if util::which(IP).is_none() {
            skip("`ip` not found (run scripts/setup-system.sh)".into());
            return None;
        }
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tag = format!("wpt{}{}", std::process::id(), seq);
        let pair = NetPair {
            ua: format!("{tag}u"),
            srv: format!("{tag}s"),
            ua_if: format!("{tag}a"),
            srv_if: format!("{tag}b"),
            prefix: format!("10.231.{}.", seq % 250),
        };
        // From here on `Drop` removes whatever was made.
        if let Err(e) = run(&["netns", "add", &pair.ua]) {
            skip(e);
            return None;
        }
        run_or_panic(&["netns", "add", &pair.srv]);
        run_or_panic(&[
            "link",
            "add",
            &pair.ua_if,
            "netns",
            &pair.ua,
            "type",
            "veth",
            "peer",
            "name",
            &pair.srv_if,
            "netns",
            &pair.srv,
        ]);
        for (ns, dev, host) in [(&pair.ua, &pair.ua_if, 2), (&pair.srv, &pair.srv_if, 1)] {
            let addr = format!("{}{host}/24", pair.prefix);
            run_or_panic(&["-n", ns, "link", "set", "lo", "up"]);
            run_or_panic(&["-n", ns, "addr", "add", &addr, "dev", dev]);
            run_or_panic(&["-n", ns, "link", "set", dev, "up"]);
        }
        Some(pair)
    }

    /// `10.231.<net>.<host>`.
    pub fn ip(&self, host: u8) -> String {
        format!("{}{host}", self.prefix)
    }

    /// The server side's address (`.1`).
    pub fn srv_ip(&self) -> String {
        self.ip(1)
    }

    pub fn ns(&self, side: Side) -> &str {
        match side {
            Side::Ua => &self.ua,
            Side::Srv => &self.srv,
        }
    }

    /// `ip netns exec <ns> <program>`: add the program's arguments.
    pub fn command(&self, side: Side, program: &Path) -> Command {
        let mut cmd = Command::new(IP);
        cmd.args(["netns", "exec", self.ns(side)]).arg(program);
        cmd
    }

    /// The `ip netns exec <ns>` prefix, for harness functions taking a wrapper.
    pub fn wrapper(&self, side: Side) -> Vec<String> {
        vec![
            IP.to_string(),
            "netns".into(),
            "exec".into(),
            self.ns(side).to_string(),
        ]
    }

    /// Moves the softphone side from `.<from>` to `.<to>` (removes one address, adds the
    /// other: the route to the server disappears in between).
    pub fn move_ua(&self, from: u8, to: u8) {
        let old = format!("{}/24", self.ip(from));
        let new = format!("{}/24", self.ip(to));
        run_or_panic(&["-n", &self.ua, "addr", "del", &old, "dev", &self.ua_if]);
        run_or_panic(&["-n", &self.ua, "addr", "add", &new, "dev", &self.ua_if]);
    }

    /// Takes the softphone side's link down or up.
    pub fn ua_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        run_or_panic(&["-n", &self.ua, "link", "set", &self.ua_if, state]);
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        for ns in [&self.ua, &self.srv] {
            if let Err(e) = run(&["netns", "del", ns]) {
                eprintln!("netns cleanup: {e}");
            }
        }
    }
}
