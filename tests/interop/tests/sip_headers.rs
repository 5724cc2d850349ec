//! Extra SIP headers seen by the peer: `customsipheader` and a global `setsipheader` in the
//! INVITE, a removed header absent, a per-line `setsipheader` in the BYE. SIPp's scenario
//! (tests/interop/peers/headers-uas-check.xml) fails unless every check holds. Headers that
//! would break the message are refused with an error.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{expect_connected, start_cli, WAIT};
use webphone_interop::{require_tools, serial, Params, Scenario, Sipp, TestDir, SIPP};

#[test]
fn custom_and_set_headers_reach_the_peer() {
    let _serial = serial();
    if !require_tools("sip_headers", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("sip_headers");
    let mut uas = Sipp::start(
        dir.path(),
        Scenario::File("headers-uas-check.xml"),
        None,
        &[],
    );
    let (params, _rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("customsipheader", "X-Custom: one")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    // Injection attempts are refused, nothing changes.
    assert!(cli
        .api(
            "setsipheader \"Via: SIP/2.0/UDP evil\"",
            Duration::from_secs(5)
        )
        .is_err());
    assert!(cli
        .api("setsipheader \"no colon\"", Duration::from_secs(5))
        .is_err());
    cli.api_ok("setsipheader \"X-Global: two;X-Removed: gone\"");
    cli.api_ok("setsipheader X-Removed:");
    cli.api_ok(&format!("call {}", uas.uri()));
    expect_connected(&mut cli);
    // During the call the active line has a call: this header is for its requests only.
    cli.api_ok("setsipheader \"X-Line: three\"");
    std::thread::sleep(Duration::from_millis(500));
    cli.api_ok("hangup");
    uas.assert_success(WAIT);
    cli.quit();
}
