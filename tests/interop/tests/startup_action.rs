//! `callto` + `autoaction`: a headless phone started with `autoaction=1` calls `callto` at
//! once (SIPp's UAS answers it); with `autoaction=0` it only presets the number.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{expect_connected, start_cli};
use webphone_interop::{require_tools, serial, Params, Sipp, TestDir, SIPP};

fn phone(dir: &TestDir, callto: &str, autoaction: &str) -> webphone_interop::Cli {
    let (params, _rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("callto", callto)
        .set("autoaction", autoaction)
        .with_file_audio(dir);
    start_cli(dir, &params)
}

#[test]
fn autoaction_1_calls_callto_at_start() {
    let _serial = serial();
    if !require_tools("startup_call", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("startup_call");
    let uas = Sipp::uas(dir.path());
    let mut cli = phone(&dir, &uas.uri(), "1");
    expect_connected(&mut cli);
    cli.api_ok("hangup");
    cli.quit();
}

#[test]
fn autoaction_0_only_presets_the_number() {
    let _serial = serial();
    if !require_tools("startup_preset", &[SIPP]) {
        return;
    }
    let dir = TestDir::new("startup_preset");
    let uas = Sipp::uas(dir.path());
    let mut cli = phone(&dir, &uas.uri(), "0");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        cli.seen(|l| l.contains("callSetup")).is_empty(),
        "autoaction 0 must not dial"
    );
    assert_eq!(cli.api_ok("getparameter callto").trim(), uas.uri());
    cli.quit();
}
