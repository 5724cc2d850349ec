//! Loopback interop bench for the webphone.
//!
//! Starts real SIP peers (Kamailio, baresip, SIPp) on 127.0.0.1 with free ports
//! and per-test temporary directories, drives the headless `webphone-cli`
//! binary over stdin/stdout, and analyses recorded audio.
//!
//! Every process is started by this crate as a [`std::process::Child`] and is
//! stopped through that handle (its pid / process group), never by name.
//!
//! Skip policy: a test that needs a peer whose binary is missing prints
//! `SKIP: ...` and returns, unless the environment has `CI=true`, in which case
//! it panics (see [`require_tools`]).

pub mod audio;
pub mod baresip;
pub mod cli;
pub mod coturn;
pub mod flows;
pub mod ftp;
pub mod http_server;
pub mod kamailio;
pub mod kamailio_presence;
pub mod linphone;
pub mod miniupnpd;
pub mod netns;
pub mod params;
pub mod proc;
pub mod pulse;
pub mod sipp;
pub mod sipvicious;
pub mod util;

pub use audio::{assert_tone, tone_level, write_tone, ToneLevel};
pub use baresip::{AnswerMode, Baresip, BaresipOpts};
pub use cli::{Callback, Cdr, Cli, Status};
pub use kamailio::{Kamailio, KamailioOpts};
pub use params::{Params, Transport, CLI_TONE_HZ};
pub use sipp::{Scenario, Sipp};
pub use util::{free_port, free_port_range, refused_tcp_port, serial, TestDir};

use std::path::{Path, PathBuf};

/// Binaries of the peers, looked up in `PATH`.
pub const KAMAILIO: &str = "kamailio";
pub const KAMCMD: &str = "kamcmd";
pub const BARESIP: &str = "baresip";
pub const SIPP: &str = "sipp";

/// True when running under CI semantics (`CI=true`, set by `.ci/run`).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Returns true when every tool is in `PATH`. Otherwise prints a loud
/// `SKIP:` line and returns false, or panics when `CI=true`.
///
/// ```ignore
/// if !require_tools("registers_over_udp", &[KAMAILIO, KAMCMD]) { return; }
/// ```
pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| util::which(t).is_none())
        .collect();
    require_present(test, &missing)
}

/// [`require_tools`] for peers found otherwise: `missing` names what is not there.
pub fn require_present(test: &str, missing: &[&str]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: needs {} which is not installed (run scripts/setup-system.sh)",
        missing.join(", ")
    );
    if is_ci() {
        panic!("CI=true and a peer is missing: {msg}");
    }
    eprintln!("SKIP: {msg}");
    false
}

/// Whether the IPv6 loopback `::1` can be bound; without it a test skips loudly, or fails
/// under `CI=true` (the CI machine has it).
pub fn require_ipv6_loopback(test: &str) -> bool {
    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        return true;
    }
    require_present(test, &["the IPv6 loopback ::1"])
}

/// The workspace root (two levels above this package).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// Files shipped with this package (`tests/interop/peers/...`).
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_skips_or_fails_under_ci() {
        let r = std::panic::catch_unwind(|| require_tools("self test", &["no-such-tool-wpi"]));
        if is_ci() {
            assert!(
                r.is_err(),
                "CI=true must turn a missing peer into a failure"
            );
        } else {
            assert!(matches!(r, Ok(false)), "a missing peer must skip");
        }
        assert!(matches!(
            std::panic::catch_unwind(|| require_tools("self test", &["sh"])),
            Ok(true)
        ));
    }
}
