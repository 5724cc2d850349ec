//! baresip (1002) calls the softphone (1001, autoaccept) through Kamailio:
//! audio both ways, hang-up from either side, the call record.

use std::time::{Duration, Instant};

use webphone_interop::flows::{
    assert_connected_cdr, call_record, expect_connected, expect_registered, start_cli, WAIT,
};
use webphone_interop::{
    assert_tone, require_tools, serial, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport,
    BARESIP, CLI_TONE_HZ, KAMAILIO, KAMCMD,
};

const TALK: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, PartialEq, Eq)]
enum HangsUp {
    Softphone,
    Baresip,
}

fn baresip_calls_softphone(name: &str, who: HangsUp) {
    let _serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new(name);
    let mut kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let (params, cli_rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params.set("autoaccept", "true");
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    kam.wait_registered("1001", WAIT);

    bs.dial(&format!("sip:1001@127.0.0.1:{}", kam.port()));
    let st = expect_connected(&mut cli);
    assert_eq!(
        st.endpoint_type,
        Some(2),
        "an incoming call is endpointtype 2: {st:?}"
    );
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    let connected = Instant::now();
    std::thread::sleep(TALK);
    let held = connected.elapsed();

    let mark = cli.mark();
    match who {
        HangsUp::Softphone => {
            cli.api_ok("hangup");
        }
        HangsUp::Baresip => {
            bs.command("hangup");
        }
    }
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    let (cdr, oncdr) = call_record(&mut cli, mark);
    let disc_party = match who {
        HangsUp::Softphone => 1,
        HangsUp::Baresip => 2,
    };
    assert_connected_cdr(&cdr, &oncdr, "1002", "1001", 2, disc_party, held);
    kam.wait_lines(&["REQ BYE"], 1, WAIT);

    assert_tone(&cli_rec, bs.tone_hz(), -30.0, "softphone hearing baresip");
    assert_tone(
        &bs.last_received_wav(),
        CLI_TONE_HZ,
        -30.0,
        "baresip hearing the softphone",
    );
    cli.quit();
}

#[test]
fn baresip_calls_softphone_and_softphone_hangs_up() {
    baresip_calls_softphone("call_from_baresip_local_bye", HangsUp::Softphone);
}

#[test]
fn baresip_calls_softphone_and_baresip_hangs_up() {
    baresip_calls_softphone("call_from_baresip_peer_bye", HangsUp::Baresip);
}
