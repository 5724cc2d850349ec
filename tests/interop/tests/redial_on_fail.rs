//! `redialonfail`: an outgoing call that fails without an answer from the callee (here: TCP
//! connection refused by a closed port) is dialled once more with the default `1`, and not
//! at all with `0`. Each attempt leaves its own call record. Against SIPp: a peer's 503 is
//! retried once, its 486 (busy: the callee's answer) is not.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{start_cli, WAIT};
use webphone_interop::sipp::Scenario;
use webphone_interop::{free_port, require_tools, serial, Params, Sipp, TestDir, SIPP};

fn attempts(name: &str, redial: &str) -> usize {
    let dir = TestDir::new(name);
    let (params, _rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "1")
        .set("redialonfail", redial)
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    let dead = free_port();
    let _ = cli.api(
        &format!("call sip:2000@127.0.0.1:{dead};transport=tcp"),
        Duration::from_secs(5),
    );
    // Wait for the first record, then give a retry time to happen and fail too.
    cli.expect(|l| l.starts_with("CDR,"), WAIT);
    std::thread::sleep(Duration::from_secs(3));
    let n = cli.seen(|l| l.starts_with("CDR,")).len();
    cli.quit();
    n
}

#[test]
fn failed_call_is_dialled_once_more_by_default() {
    let _serial = serial();
    assert_eq!(attempts("redial_on", "1"), 2, "one retry, not more");
}

#[test]
fn no_retry_when_redialonfail_is_off() {
    let _serial = serial();
    assert_eq!(attempts("redial_off", "0"), 1);
}

/// INVITEs SIPp (refusing each with `code`) received from a softphone that dialled it once.
fn invites_refused_with(name: &str, code: &str) -> usize {
    let dir = TestDir::new(name);
    let peer = Sipp::start(
        dir.path(),
        Scenario::File(&format!("sipp-uas-refuse-{code}.xml")),
        None,
        &["-m", "2"],
    );
    let (params, _rec) = Params::direct("1001", free_port()).with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call sip:2000@127.0.0.1:{}", peer.port()));
    cli.expect(|l| l.starts_with("CDR,"), WAIT);
    // Time for a retry to be sent and refused too.
    std::thread::sleep(Duration::from_secs(3));
    cli.quit();
    let log = peer.messages();
    drop(peer);
    log.lines()
        .filter(|l| l.starts_with("INVITE sip:2000@"))
        .count()
}

/// A peer's 503 (server error, RFC 3261 §21.5.4) is a failure `redialonfail` covers: the
/// call is dialled once more. A 486 (the callee is busy) is the callee's answer: no retry.
#[test]
fn a_peers_503_is_dialled_again_and_a_486_is_not() {
    let _serial = serial();
    if !require_tools("redial_sipp", &[SIPP]) {
        return;
    }
    assert_eq!(
        invites_refused_with("redial_503", "503"),
        2,
        "503: one retry"
    );
    assert_eq!(
        invites_refused_with("redial_486", "486"),
        1,
        "486: no retry"
    );
}
