//! Every way `dtmfmode` sends digits, received by a second softphone (peer to peer): SIP INFO
//! (1), RFC 4733 (4), in-band tones (5: no telephone-event is negotiated and the receiver
//! detects the tones in the audio), and off (0) refused. The receiver reports what it got
//! with `onDTMF`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{expect_connected, WAIT};
use webphone_interop::{free_port, serial, Cli, Params, TestDir};

/// A phone whose files live in its own sub-directory (two phones share one test dir).
fn start_in(dir: &TestDir, sub: &str, params: &Params) -> Cli {
    let mut cli = Cli::start(&dir.subdir(sub), &params.pairs());
    cli.expect(|l| l == "START,api", WAIT);
    cli.expect(|l| l == "START,sip", WAIT);
    cli
}

fn pair(dir: &TestDir, mode: &str) -> (Cli, Cli) {
    let port = free_port();
    let (pb, _rb) = Params::new()
        .set("username", "1002")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", port)
        .set("autoaccept", "true")
        .with_file_audio(dir);
    let b = start_in(dir, "b", &pb);
    let (pa, _ra) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("dtmfmode", mode)
        .with_file_audio(dir);
    let mut a = start_in(dir, "a", &pa);
    a.api_ok(&format!("call sip:1002@127.0.0.1:{port}"));
    expect_connected(&mut a);
    (a, b)
}

fn received(b: &Cli) -> String {
    b.seen(|l| l.starts_with("CALLBACK,onDTMF,"))
        .iter()
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .collect()
}

fn sends(name: &str, mode: &str, digits: &str) -> String {
    let dir = TestDir::new(name);
    let (mut a, mut b) = pair(&dir, mode);
    std::thread::sleep(Duration::from_millis(700));
    a.api_ok(&format!("dtmf {digits}"));
    let got = webphone_interop::util::wait_for(WAIT, || {
        let r = received(&b);
        (r.len() >= digits.len()).then_some(r)
    })
    .unwrap_or_else(|| received(&b));
    a.api_ok("hangup");
    a.quit();
    b.quit();
    got
}

#[test]
fn dtmf_by_sip_info() {
    let _serial = serial();
    assert_eq!(sends("dtmf_mode_info", "1", "19#"), "19#");
}

#[test]
fn dtmf_by_rfc4733() {
    let _serial = serial();
    assert_eq!(sends("dtmf_mode_nte", "4", "2*"), "2*");
}

#[test]
fn dtmf_as_inband_tones() {
    let _serial = serial();
    assert_eq!(sends("dtmf_mode_inband", "5", "37"), "37");
}

#[test]
fn dtmf_switched_off_is_refused() {
    let _serial = serial();
    let dir = TestDir::new("dtmf_mode_off");
    let (mut a, mut b) = pair(&dir, "0");
    assert!(a.api("dtmf 5", Duration::from_secs(5)).is_err());
    a.api_ok("hangup");
    a.quit();
    b.quit();
}
