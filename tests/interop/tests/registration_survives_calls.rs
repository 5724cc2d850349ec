//! Regression: an outgoing call must not drop our registration. The softphone (1001) calls
//! baresip (1002) through Kamailio and hangs up; then baresip calls the softphone, which must
//! still be reachable (Kamailio still has the binding, the call connects).

use std::time::Duration;

use webphone_interop::flows::{expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport, BARESIP,
    KAMAILIO, KAMCMD,
};

#[test]
fn incoming_call_still_arrives_after_an_outgoing_call() {
    let _serial = serial();
    let name = "registration_survives_calls";
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new(name);
    let kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params.set("autoaccept", "true");
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    kam.wait_registered("1001", WAIT);

    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);

    // No unregister happened: the binding is still there and an incoming call connects.
    std::thread::sleep(Duration::from_secs(1));
    kam.wait_registered("1001", WAIT);
    let mark = cli.mark();
    bs.dial(&format!("sip:1001@127.0.0.1:{}", kam.port()));
    cli.expect_after(mark, |l| l.contains("callConnected"), WAIT);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    cli.quit();
}
