//! miniupnpd (Debian's `miniupnpd-nftables`) as the UPnP IGD of a [`NatNet`]'s router: it
//! answers SSDP searches on the inside interface, serves its description and SOAP control
//! over HTTP, and turns each `AddPortMapping` into nftables rules in the router namespace.
//! Those rules are what [`Miniupnpd::forwards`] reads: the router's own view of the
//! forwards the softphone asked for. Needs an outside network of public addresses
//! ([`crate::netns::Outside::Public`]): miniupnpd serves no forwards behind a private one.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::{NatNet, NatSide};
use crate::proc::Proc;
use crate::util;

/// The daemon.
pub const MINIUPNPD: &str = "miniupnpd";

pub struct Miniupnpd {
    wrapper: Vec<String>,
    proc: Proc,
}

/// One forward: external UDP port → internal address and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub external_port: u16,
    pub internal: String,
}

impl Miniupnpd {
    /// Creates the nftables chains miniupnpd fills (it expects them to exist) in the router
    /// namespace and starts the daemon there, serving `net`'s private network only; returns
    /// once it listens.
    pub fn start(dir: &Path, net: &NatNet) -> Miniupnpd {
        let bin = util::which_or_panic(MINIUPNPD);
        let dir = dir.join("miniupnpd");
        std::fs::create_dir_all(&dir).expect("miniupnpd dir");
        let wrapper = net.wrapper(NatSide::Nat);
        // The `inet filter` table and chain names are miniupnpd's defaults; forwarding is
        // left open (the NAT rule of `NatNet` is in its own table).
        let rules = "table inet filter {
  chain miniupnpd {
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
  chain forward {
    type filter hook forward priority 0; policy accept
    jump miniupnpd
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept
    jump postrouting_miniupnpd
  }
}
";
        let rules_file = dir.join("chains.nft");
        std::fs::write(&rules_file, rules).expect("chains.nft");
        run(&wrapper, &["nft", "-f", &rules_file.display().to_string()]);
        let conf = dir.join("miniupnpd.conf");
        let private = net.private_net();
        std::fs::write(
            &conf,
            format!(
                "ext_ifname={}\nlistening_ip={}\nport=0\nenable_natpmp=no\nenable_upnp=yes\n\
                 secure_mode=yes\nsystem_uptime=no\nclean_ruleset_interval=0\n\
                 uuid=3f2a6c9e-1b7d-4c1e-9a35-5a0c2f6d8e11\n\
                 allow 1024-65535 {private} 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n",
                net.outside_if(),
                net.inside_if(),
            ),
        )
        .expect("miniupnpd.conf");
        let (first, rest) = wrapper.split_first().expect("wrapper");
        let mut cmd = Command::new(first);
        cmd.args(rest).arg(bin).args([
            "-f",
            &conf.display().to_string(),
            "-d",
            "-P",
            &dir.join("miniupnpd.pid").display().to_string(),
        ]);
        let proc = Proc::spawn("miniupnpd", cmd, &dir.join("miniupnpd.log"));
        let mut m = Miniupnpd { wrapper, proc };
        let end = Instant::now() + Duration::from_secs(10);
        while !m.proc.log().contains("HTTP listening on port") {
            m.proc.assert_running("while starting");
            assert!(
                Instant::now() < end,
                "miniupnpd did not start; log:\n{}",
                m.proc.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    /// The UDP forwards in place now (the DNAT rules of `prerouting_miniupnpd`).
    pub fn forwards(&self) -> Vec<Forward> {
        let out = output(
            &self.wrapper,
            &[
                "nft",
                "list",
                "chain",
                "inet",
                "filter",
                "prerouting_miniupnpd",
            ],
        );
        out.lines().filter_map(parse_forward).collect()
    }

    /// The daemon's log (requests it served, rules it added and removed).
    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn assert_running(&mut self) {
        self.proc.assert_running("during the test");
    }
}

/// A DNAT rule of a UDP forward, as `nft` lists it:
/// `iif "x" @nh,72,8 0x11 th dport 40000 dnat ip to 192.168.7.2:40000` (the raw match is the
/// IPv4 protocol field, 17 = UDP).
fn parse_forward(line: &str) -> Option<Forward> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let udp = words.windows(2).any(|w| w == ["@nh,72,8", "0x11"]) || words.contains(&"udp");
    if !udp {
        return None;
    }
    let dport = words.windows(3).find(|w| w[1] == "dport")?[2];
    let to = words.windows(2).find(|w| w[0] == "to")?[1];
    Some(Forward {
        external_port: dport.parse().ok()?,
        internal: to.to_owned(),
    })
}

fn run(wrapper: &[String], args: &[&str]) {
    let _ = output(wrapper, args);
}

fn output(wrapper: &[String], args: &[&str]) -> String {
    let (first, rest) = wrapper.split_first().expect("wrapper");
    let out = Command::new(first)
        .args(rest)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnat_rules_read_as_forwards() {
        let line = "\t\tiif \"wpn1c\" @nh,72,8 0x11 th dport 40000 dnat ip to 192.168.7.2:40000";
        assert_eq!(
            parse_forward(line),
            Some(Forward {
                external_port: 40000,
                internal: "192.168.7.2:40000".into()
            })
        );
        // TCP (protocol 6) and other lines are not UDP forwards.
        let tcp = "iif \"wpn1c\" @nh,72,8 0x6 th dport 80 dnat ip to 192.168.7.2:80";
        assert_eq!(parse_forward(tcp), None);
        assert_eq!(parse_forward("chain prerouting_miniupnpd {"), None);
    }
}
