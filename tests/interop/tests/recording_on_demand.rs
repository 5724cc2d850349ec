//! Call recording on demand (`voicerecord(true, path)` / `voicerecord(false)` in a call) with
//! baresip through Kamailio: the VREC stages (1 recording, 2 and 3 saved as a local file, type
//! 1), a recording that holds both sides (our tone and baresip's) and only the recorded span,
//! a second start refused while one runs, and the call going on afterwards.

use std::time::Duration;

use webphone_interop::audio::{tone_level, wav_secs};
use webphone_interop::flows::{expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport, BARESIP,
    CLI_TONE_HZ, KAMAILIO, KAMCMD,
};

#[test]
fn voicerecord_on_demand_saves_both_sides_of_the_recorded_span() {
    let _serial = serial();
    if !require_tools("recording_on_demand", &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new("recording_on_demand");
    let kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let (params, _cli_rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(800));

    let path = dir.path().join("recs").join("on-demand.wav");
    let mark = cli.mark();
    cli.api_ok(&format!("voicerecord true {}", path.display()));
    cli.expect_after(mark, |l| l == "VREC,1,1,0,,", WAIT);
    let again = cli.api(
        &format!("voicerecord true {}", path.display()),
        Duration::from_secs(10),
    );
    assert!(
        again.as_ref().is_err_and(|e| e.contains("already")),
        "one recording per line: {again:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    cli.api_ok("voicerecord false");
    let shown = path.display().to_string();
    cli.expect_after(mark, |l| l == format!("VREC,1,2,1,{shown},"), WAIT);
    cli.expect_after(mark, |l| l == format!("VREC,-1,3,1,{shown},"), WAIT);

    // The call goes on after the recording stopped.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        cli.api_ok("isincall") == "true",
        "the call is still up after the recording"
    );
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);

    let secs = wav_secs(&path);
    assert!(
        (2.0..4.5).contains(&secs),
        "only the ~3 s recorded span is in the file: {secs:.2} s"
    );
    // Two tones share the file (left us, right baresip, averaged here): neither dominates,
    // each must carry a large part of the energy and be loud on its own.
    for (hz, who) in [(CLI_TONE_HZ, "our tone"), (bs.tone_hz(), "baresip's tone")] {
        let level = tone_level(&path, hz);
        assert!(
            level.dbfs > -24.0 && level.share > 0.3,
            "{who} in the recording: {level:?}"
        );
    }
    cli.quit();
}
