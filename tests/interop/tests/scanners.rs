//! SIPVicious (svmap, svwar, svcrack) against the softphone, registered to Kamailio and
//! peer to peer: no scan ever rings the phone (no incoming-call notification or
//! callback), the phone keeps working (a real call afterwards connects), and what it
//! says about itself in `User-Agent` / `Server` (RFC 3261 §20.41 / §20.35) carries no
//! software version unless the `useragent` parameter sets one.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{call_record, expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::sipvicious::{
    has_version_number, identity_headers, options_probe, scan, ScanOutput, SVCRACK, SVMAP, SVWAR,
};
use webphone_interop::{
    free_port, require_tools, serial, Baresip, BaresipOpts, Callback, Cli, Kamailio, Params, Sipp,
    Status, TestDir, Transport, BARESIP, KAMAILIO, KAMCMD, SIPP,
};

/// Upper bound for one scanner run (they finish in seconds on loopback).
const SCAN_LIMIT: Duration = Duration::from_secs(90);

/// stdout lines that mean "a call is ringing / was offered to the user": an incoming
/// STATUS (`Incoming...` on the general line, `Ringing` with endpointtype 2 on a call
/// line, any per-line status of an incoming call), or an incoming-call callback.
fn ring_lines(cli: &Cli) -> Vec<String> {
    cli.seen(|l| {
        if let Some(s) = Status::parse(l) {
            return (s.line == -1 && s.text.starts_with("Incoming"))
                || (s.line >= 1 && s.endpoint_type == Some(2));
        }
        if let Some(c) = Callback::parse(l) {
            return match c.name.as_str() {
                "onCallStateChange" => {
                    c.args.get(1).and_then(|v| v.as_i64()) == Some(2)
                        || c.args.get(1).and_then(|v| v.as_str()) == Some("2")
                }
                "onIncomingCall" | "onCdr" => true,
                _ => false,
            };
        }
        l.starts_with("CDR,")
    })
}

/// The scans of one target port: OPTIONS and INVITE sweeps (svmap), extension
/// enumeration with REGISTER and INVITE (svwar), a password guess (svcrack).
fn scan_all(dir: &TestDir, port: u16, tag: &str) -> Vec<ScanOutput> {
    let d = dir.subdir(&format!("scan-{tag}"));
    let p = port.to_string();
    vec![
        scan(&d, SVMAP, &["-p", &p], SCAN_LIMIT),
        scan(&d, SVMAP, &["-m", "INVITE", "-p", &p], SCAN_LIMIT),
        scan(&d, SVWAR, &["-p", &p, "-e", "1000-1010"], SCAN_LIMIT),
        scan(
            &d,
            SVWAR,
            &["-m", "INVITE", "--force", "-p", &p, "-e", "1000-1010"],
            SCAN_LIMIT,
        ),
        scan(
            &d,
            SVCRACK,
            &["-u", "1001", "-r", "1000-1020", "-p", &p],
            SCAN_LIMIT,
        ),
    ]
}

/// The ring lines after the scans; fails at once if the CLI died. The caller asserts
/// that they are empty only after checking that a real call still works, so one run
/// reports both.
fn rings_after_scans(cli: &mut Cli, what: &str) -> Vec<String> {
    // late provisional/ACK/CANCEL handling has a moment to show up
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        cli.try_status().is_none(),
        "{what}: webphone-cli exited during the scans\n{}",
        cli.diagnostics()
    );
    ring_lines(cli)
}

fn assert_never_rang(rings: &[String], what: &str) {
    assert!(
        rings.is_empty(),
        "{what}: the scanners made the softphone ring (ghost calls):\n{}",
        rings.join("\n")
    );
}

/// A real outgoing call to SIPp's uas after the scans: connects and ends with a CDR.
fn real_call_to_sipp_uas(cli: &mut Cli, dir: &TestDir) {
    let mut uas = Sipp::uas(&dir.subdir("uas-after-scan"));
    let mark = cli.mark();
    cli.api_ok(&format!("call {}", uas.uri()));
    expect_connected(cli);
    std::thread::sleep(Duration::from_secs(1));
    cli.api_ok("hangup");
    uas.assert_success(WAIT);
    let (cdr, _) = call_record(cli, mark);
    assert_eq!(cdr.disc_party, 1, "the softphone hung up: {cdr:?}");
}

#[test]
fn peer_to_peer_scans_never_ring_and_the_phone_keeps_working() {
    let _serial = serial();
    if !require_tools("scanners_p2p", &[SVMAP, SVWAR, SVCRACK, SIPP]) {
        return;
    }
    let dir = TestDir::new("scanners_p2p");
    let port = free_port();
    let (params, _rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", port)
        .set("loglevel", "5")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    let scans = scan_all(&dir, port, "p2p");
    // svmap found the phone at all (otherwise the scans prove nothing)
    assert!(
        scans[0].output.contains(&format!("127.0.0.1:{port}")),
        "svmap did not see the softphone on {port}: {}",
        scans[0].output
    );
    let rings = rings_after_scans(&mut cli, "peer to peer");
    real_call_to_sipp_uas(&mut cli, &dir);
    cli.quit();
    assert_never_rang(&rings, "peer to peer");
}

#[test]
fn registered_scans_never_ring_and_the_phone_keeps_working() {
    let _serial = serial();
    if !require_tools(
        "scanners_registered",
        &[SVMAP, SVWAR, SVCRACK, KAMAILIO, KAMCMD, BARESIP],
    ) {
        return;
    }
    let dir = TestDir::new("scanners_registered");
    let kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let port = free_port();
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp)
        .set("signalingport", port)
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    // straight at the phone's own port (bypassing the registrar), then at Kamailio
    scan_all(&dir, port, "phone");
    scan_all(&dir, kam.port(), "kamailio");
    let rings = rings_after_scans(&mut cli, "registered to Kamailio");

    // still registered and still calling: 1001 -> Kamailio -> baresip 1002
    assert!(
        !kam.contacts("1001").is_empty(),
        "1001 lost its registration during the scans:\n{}",
        kam.ul_dump()
    );
    let mark = cli.mark();
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_secs(1));
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    let (cdr, _) = call_record(&mut cli, mark);
    assert_eq!(cdr.disc_party, 1, "the softphone hung up: {cdr:?}");
    cli.quit();
    assert_never_rang(&rings, "registered to Kamailio");
}

/// What svmap's fingerprint and a plain OPTIONS show of the phone's identity.
fn identity_seen(cli_port: u16, dir: &TestDir, tag: &str) -> (Vec<String>, String) {
    let resp = options_probe(cli_port, WAIT)
        .unwrap_or_else(|| panic!("no answer to OPTIONS on 127.0.0.1:{cli_port}"));
    let headers = identity_headers(&resp);
    let svmap = scan(
        &dir.subdir(&format!("svmap-{tag}")),
        SVMAP,
        &["-p", &cli_port.to_string()],
        SCAN_LIMIT,
    );
    let line = svmap
        .output
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{cli_port}")))
        .unwrap_or_default()
        .to_string();
    (headers, line)
}

#[test]
fn software_version_is_not_revealed_unless_configured() {
    let _serial = serial();
    if !require_tools("scanners_version", &[SVMAP]) {
        return;
    }
    let dir = TestDir::new("scanners_version");
    let version = env!("CARGO_PKG_VERSION");

    // default: no version anywhere a scanner looks
    let port = free_port();
    let params = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", port)
        .set("audiodevicein", "null")
        .set("audiodeviceout", "null");
    let mut cli = start_cli(&dir, &params);
    let (headers, fingerprint) = identity_seen(port, &dir, "default");
    cli.quit();
    eprintln!("default identity: {headers:?} / svmap: {fingerprint}");
    for h in &headers {
        assert!(
            !h.contains(version) && !has_version_number(h),
            "with useragent unset the phone reveals its version: {h:?} (svmap: {fingerprint})"
        );
    }
    assert!(
        !fingerprint.contains(version),
        "svmap fingerprints the version: {fingerprint}"
    );

    // configured: the given string, as it is
    let port2 = free_port();
    let params = params
        .set("signalingport", port2)
        .set("useragent", "AcmePhone 2.5");
    let dir2 = TestDir::new("scanners_version_configured");
    let mut cli = start_cli(&dir2, &params);
    let (headers, fingerprint) = identity_seen(port2, &dir2, "configured");
    cli.quit();
    assert!(
        headers.iter().any(|h| h.ends_with("AcmePhone 2.5")),
        "useragent=AcmePhone 2.5 not in User-Agent/Server: {headers:?}"
    );
    assert!(
        fingerprint.contains("AcmePhone 2.5"),
        "svmap does not show the configured user agent: {fingerprint}"
    );
}
