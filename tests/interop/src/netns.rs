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

/// `ip netns exec <ns>`, the prefix that runs a program in namespace `ns`.
fn exec_in(ns: &str) -> Vec<String> {
    [IP, "netns", "exec", ns].map(String::from).to_vec()
}

/// A loud `SKIP:` for `test`, which needs `what`; a panic under `CI=true`.
fn skip(test: &str, what: &str, why: &str) {
    let msg = format!("{test}: needs {what}: {why}");
    if crate::is_ci() {
        panic!("CI=true and {what} cannot be had: {msg}");
    }
    eprintln!("SKIP: {msg}");
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
        let skip = |why: String| skip(test, "network namespaces (root and iproute2)", &why);
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
        exec_in(self.ns(side))
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

/// How the router of a [`NatNet`] maps the softphone's source ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// Linux masquerading as usual: one mapping per source port, the port kept when free
    /// (RFC 4787 "endpoint-independent mapping").
    KeepsPorts,
    /// A random port for every new flow, so each destination sees another port (RFC 4787
    /// "address and port-dependent mapping", a "symmetric" NAT): nftables `fully-random`.
    PortPerDestination,
}

/// Which namespace of a [`NatNet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatSide {
    /// The softphone, on the private network behind the NAT.
    Ua,
    /// The router that masquerades.
    Nat,
    /// Servers and peers on the outside.
    Srv,
}

/// Three network namespaces: `ua` at `192.168.<net>.2` behind `nat` (`192.168.<net>.1`
/// inside, `10.232.<net>.2` outside, masquerading with nftables), and `srv` at
/// `10.232.<net>.1` (outside addresses per [`Outside`]), which has no route to the private network: it can only answer what the
/// NAT's mappings let through. Same naming, skipping and cleanup as [`NetPair`]; also needs
/// `nft` (Debian's nftables).
pub struct NatNet {
    names: [String; 3],
    /// The prefix of the names; the softphone's interface is `<tag>a`.
    tag: String,
    net: u32,
    /// The first two octets of the outside network ([`Outside`]).
    outside: &'static str,
}

/// Which addresses the outside of a [`NatNet`] has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outside {
    /// `10.232.<net>.0/24`: private space, like a carrier's NAT in front.
    Private,
    /// `172.32.<net>.0/24`: addresses that count as public (just above RFC 1918's
    /// 172.16/12). For peers that refuse to work behind a private address: a UPnP router
    /// (miniupnpd) does not serve forwards when its WAN address is private or reserved, and
    /// every documentation range (RFC 5737) is on its reserved list. The namespaces have no
    /// route anywhere else, so nothing is sent to whoever holds these addresses.
    Public,
}

/// `nft` (nftables), for the NAT rule.
pub const NFT: &str = "nft";

impl NatNet {
    pub fn create(test: &str, kind: NatKind) -> Option<NatNet> {
        NatNet::create_with(test, kind, Outside::Private)
    }

    /// [`NatNet::create`] with the outside network's addresses chosen by `outside`.
    pub fn create_with(test: &str, kind: NatKind, outside: Outside) -> Option<NatNet> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let skip = |why: String| skip(test, "network namespaces and nftables (root)", &why);
        for tool in [IP, NFT] {
            if util::which(tool).is_none() {
                skip(format!("`{tool}` not found (run scripts/setup-system.sh)"));
                return None;
            }
        }
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tag = format!("wpn{}{}", std::process::id(), seq);
        let net = seq % 250;
        let nat = NatNet {
            names: [format!("{tag}u"), format!("{tag}n"), format!("{tag}s")],
            tag: tag.clone(),
            net,
            outside: match outside {
                Outside::Private => "10.232",
                Outside::Public => "172.32",
            },
        };
        // From here on `Drop` removes whatever was made.
        if let Err(e) = run(&["netns", "add", nat.ns(NatSide::Ua)]) {
            skip(e);
            return None;
        }
        run_or_panic(&["netns", "add", nat.ns(NatSide::Nat)]);
        run_or_panic(&["netns", "add", nat.ns(NatSide::Srv)]);
        let links = [
            (NatSide::Ua, NatSide::Nat, "a", "b", "192.168"),
            (NatSide::Nat, NatSide::Srv, "c", "d", nat.outside),
        ];
        for (left, right, l_if, r_if, prefix) in links {
            let (l_dev, r_dev) = (format!("{tag}{l_if}"), format!("{tag}{r_if}"));
            run_or_panic(&[
                "link",
                "add",
                &l_dev,
                "netns",
                nat.ns(left),
                "type",
                "veth",
                "peer",
                "name",
                &r_dev,
                "netns",
                nat.ns(right),
            ]);
            // Left .2, right .1: the softphone .2 and the router .1 inside, the router .2
            // and the server .1 outside.
            for (side, dev, host) in [(left, &l_dev, 2), (right, &r_dev, 1)] {
                let addr = format!("{prefix}.{net}.{host}/24");
                run_or_panic(&["-n", nat.ns(side), "addr", "add", &addr, "dev", dev]);
                run_or_panic(&["-n", nat.ns(side), "link", "set", dev, "up"]);
            }
        }
        for side in [NatSide::Ua, NatSide::Nat, NatSide::Srv] {
            run_or_panic(&["-n", nat.ns(side), "link", "set", "lo", "up"]);
        }
        run_or_panic(&[
            "-n",
            nat.ns(NatSide::Ua),
            "route",
            "add",
            "default",
            "via",
            &format!("192.168.{net}.1"),
        ]);
        // The router forwards and masquerades what leaves by its outside interface.
        let router = nat.ns(NatSide::Nat);
        let outside = format!("{tag}c");
        let masquerade: &[&str] = match kind {
            NatKind::KeepsPorts => &["masquerade"],
            NatKind::PortPerDestination => &["masquerade", "fully-random"],
        };
        let chain = "add chain ip wpnat post { type nat hook postrouting priority srcnat ; }";
        let rule = [
            NFT, "add", "rule", "ip", "wpnat", "post", "oifname", &outside,
        ];
        for cmd in [
            &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"][..],
            &[NFT, "add table ip wpnat"],
            &[NFT, chain],
            &[&rule[..], masquerade].concat(),
        ] {
            run_or_panic(&[&["netns", "exec", router][..], cmd].concat());
        }
        Some(nat)
    }

    pub fn ns(&self, side: NatSide) -> &str {
        match side {
            NatSide::Ua => &self.names[0],
            NatSide::Nat => &self.names[1],
            NatSide::Srv => &self.names[2],
        }
    }

    /// The softphone's private address.
    pub fn ua_ip(&self) -> String {
        self.private_ip(2)
    }

    /// `192.168.<net>.<host>`.
    pub fn private_ip(&self, host: u8) -> String {
        format!("192.168.{}.{host}", self.net)
    }

    /// Moves the softphone from `.<from>` to `.<to>` on the private network (the default
    /// route goes away with the old address and is set again): the NAT sees a new source.
    pub fn move_ua(&self, from: u8, to: u8) {
        let ns = self.ns(NatSide::Ua);
        let dev = format!("{}a", self.tag);
        let old = format!("{}/24", self.private_ip(from));
        let new = format!("{}/24", self.private_ip(to));
        run_or_panic(&["-n", ns, "addr", "del", &old, "dev", &dev]);
        run_or_panic(&["-n", ns, "addr", "add", &new, "dev", &dev]);
        let gateway = self.private_ip(1);
        run_or_panic(&["-n", ns, "route", "replace", "default", "via", &gateway]);
    }

    /// The NAT's outside address: what the servers see the softphone as.
    pub fn public_ip(&self) -> String {
        format!("{}.{}.2", self.outside, self.net)
    }

    /// The server side's address.
    pub fn srv_ip(&self) -> String {
        format!("{}.{}.1", self.outside, self.net)
    }

    /// The `ip netns exec <ns>` prefix, for harness functions taking a wrapper.
    pub fn wrapper(&self, side: NatSide) -> Vec<String> {
        exec_in(self.ns(side))
    }

    /// Starts a softphone (with `--callbacks`) on `side` with `params` and waits until it
    /// registered.
    pub fn start_registered(
        &self,
        side: NatSide,
        dir: &Path,
        params: &crate::Params,
    ) -> crate::Cli {
        let mut cli =
            crate::Cli::start_wrapped(dir, &self.wrapper(side), &params.pairs(), &["--callbacks"]);
        crate::flows::expect_registered(&mut cli, 0);
        cli
    }

    /// The router's inside interface (towards the softphone).
    pub fn inside_if(&self) -> String {
        format!("{}b", self.tag)
    }

    /// The router's outside interface (towards the servers).
    pub fn outside_if(&self) -> String {
        format!("{}c", self.tag)
    }

    /// The private network, `192.168.<net>.0/24`.
    pub fn private_net(&self) -> String {
        format!("192.168.{}.0/24", self.net)
    }
}

impl Drop for NatNet {
    fn drop(&mut self) {
        for ns in &self.names {
            if let Err(e) = run(&["netns", "del", ns]) {
                eprintln!("netns cleanup: {e}");
            }
        }
    }
}
