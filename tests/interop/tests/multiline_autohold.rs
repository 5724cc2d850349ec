//! Multi-line with `autohold=2` and `automute=2`: a second outgoing call holds (re-INVITE with
//! a=sendonly, answered by baresip) and mutes the first; without them both calls stay
//! up unheld (calls are independent until joined).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport, BARESIP,
    KAMAILIO, KAMCMD,
};

fn two_calls(name: &str, autohold: &str) -> Option<(bool, bool)> {
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return None;
    }
    let dir = TestDir::new(name);
    let kam = Kamailio::start(dir.path());
    let mut b = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let mut c = Baresip::start(
        dir.path(),
        BaresipOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params.set("autohold", autohold).set("automute", autohold);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1002");
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    cli.api_ok("call 1003");
    c.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(1500));
    // Line 1's state, asked with the line selected explicitly (autohold 4 is not set, so
    // choosing the line changes nothing).
    cli.api_ok("setline 1");
    // Held only once baresip answered our hold re-INVITE (the state follows the answer).
    let held = cli.api_ok("isonhold").contains("true");
    let muted = cli.api_ok("ismuted").contains("true");
    cli.api_ok("setline -2");
    cli.api_ok("hangup");
    cli.quit();
    Some((held, muted))
}

#[test]
fn second_outgoing_call_holds_and_mutes_the_first_with_autohold() {
    let _serial = serial();
    if let Some((held, muted)) = two_calls("autohold_on", "2") {
        assert!(held, "autohold=2: line 1 is held when line 2 is dialled");
        assert!(muted, "automute=2: line 1 is muted when line 2 is dialled");
    }
}

#[test]
fn calls_stay_independent_without_autohold() {
    let _serial = serial();
    if let Some((held, muted)) = two_calls("autohold_off", "0") {
        assert!(!held && !muted, "autohold=0: line 1 stays as it was");
    }
}
