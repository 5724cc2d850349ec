//! The softphone (1001) calls two baresips (1002 sends 1000 Hz, 1003 sends 1700 Hz) through
//! Kamailio and joins them with `conference("")` on its local mixer: each party must hear both
//! others (baresip's recordings hold the other baresip's tone and ours), and ours holds both.
//! Then `conference("", false)` dissolves the mix and `setline(-2); hangup()` ends both calls.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, tone_level, Baresip, BaresipOpts, Cli, Kamailio, Params, TestDir,
    Transport, BARESIP, CLI_TONE_HZ, KAMAILIO, KAMCMD,
};

const TONE_B: f64 = 1000.0;
const TONE_C: f64 = 1700.0;

/// Kamailio, baresip 1002 (sending [`TONE_B`]) and 1003 ([`TONE_C`]), and the softphone
/// registered as 1001 with file audio (its recording path last).
fn three_parties(name: &str) -> (TestDir, Kamailio, Baresip, Baresip, Cli, std::path::PathBuf) {
    let dir = TestDir::new(name);
    let kam = Kamailio::start(dir.path());
    let b = Baresip::start(
        dir.path(),
        BaresipOpts {
            tone_hz: TONE_B,
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    let c = Baresip::start(
        dir.path(),
        BaresipOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            tone_hz: TONE_C,
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    let (params, cli_rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    (dir, kam, b, c, cli, cli_rec)
}

#[test]
fn three_way_local_conference_mixes_every_party() {
    let _serial = serial();
    let name = "conference_local";
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let (_dir, _kam, mut b, mut c, mut cli, cli_rec) = three_parties(name);

    cli.api_ok("call 1002");
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    // The second call: the first one is not held (autohold 0), both run on the mixer now.
    cli.api_ok("call 1003");
    c.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    let joined = cli.api_ok("conference");
    assert_eq!(joined.trim(), "2", "conference('') joins both calls");

    // Mixed audio for a few seconds.
    std::thread::sleep(Duration::from_secs(4));
    cli.api_ok("conference \"\" false");
    cli.api_ok("setline -2");
    cli.api_ok("hangup");
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    c.wait_event("CALL_CLOSED", |_| true, WAIT);
    cli.quit();

    // A mix holds several tones, so none has to dominate: each must be loud on its own.
    let has = |path: &std::path::Path, hz: f64, what: &str| {
        let t = tone_level(path, hz);
        assert!(
            t.dbfs >= -35.0,
            "{what}: {hz} Hz at {:.1} dBFS in {}: {t:?}",
            t.dbfs,
            path.display()
        );
    };
    let b_heard = b.last_received_wav();
    let c_heard = c.last_received_wav();
    has(&b_heard, CLI_TONE_HZ, "1002 hears the softphone");
    has(&b_heard, TONE_C, "1002 hears 1003 through the conference");
    has(&c_heard, CLI_TONE_HZ, "1003 hears the softphone");
    has(&c_heard, TONE_B, "1003 hears 1002 through the conference");
    has(&cli_rec, TONE_B, "the softphone hears 1002");
    has(&cli_rec, TONE_C, "the softphone hears 1003");
    // Nobody hears themselves: 1002's own tone is not sent back to it.
    let echo = tone_level(&b_heard, TONE_B);
    assert!(
        echo.dbfs < -40.0,
        "1002 must not hear its own tone back: {echo:?}"
    );
}

/// A second call arriving during a call: the running call goes on (its audio still heard)
/// and a 425 Hz call-waiting beep is played over it until the new call is rejected.
#[test]
fn call_waiting_beep_plays_over_the_running_call() {
    let _serial = serial();
    let name = "call_waiting_beep";
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let (_dir, kam, mut b, mut c, mut cli, cli_rec) = three_parties(name);
    cli.api_ok("call 1002");
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_secs(1));
    let mark = cli.mark();
    c.dial(&format!("sip:1001@127.0.0.1:{}", kam.port()));
    cli.expect_after(mark, |l| l.contains("callRinging"), WAIT);
    // Two beep periods of the first cadence, then the waiting call is refused.
    std::thread::sleep(Duration::from_millis(2500));
    cli.api_ok("reject 2");
    std::thread::sleep(Duration::from_millis(500));
    cli.api_ok("hangup -2");
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    cli.quit();
    let beep = tone_level(&cli_rec, 425.0);
    assert!(
        beep.dbfs >= -40.0,
        "call-waiting beep (425 Hz) not heard: {beep:?}"
    );
    let first = tone_level(&cli_rec, TONE_B);
    assert!(
        first.dbfs >= -35.0,
        "the running call stays audible: {first:?}"
    );
}

/// `conference("1003")` with one call of ours calls 1003 and joins it when it answers (the
/// first call joins too, also while it is still being set up): 1003 hears 1002 through our mixer. `conference("1003", false)` takes
/// 1003 out again by its name: from then on 1003 hears only us, 1002 no longer hears 1003,
/// and both calls go on.
#[test]
fn conference_by_number_adds_a_party_and_removal_by_name_splits_it() {
    let _serial = serial();
    let name = "conference_add_remove";
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let (_dir, _kam, mut b, mut c, mut cli, _cli_rec) = three_parties(name);

    // The first call is still being set up when the conference is asked for: it joins
    // when it connects (it used to stay out of the mix).
    cli.api_ok("call 1002");
    let line = cli.api_ok("conference 1003");
    assert_eq!(line.trim(), "2", "conference(number) calls on a new line");
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    c.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    std::thread::sleep(Duration::from_secs(3));
    cli.api_ok("conference 1003 false");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        cli.api_ok("isincall").trim(),
        "true",
        "both calls go on after the split"
    );
    cli.api_ok("setline -2");
    cli.api_ok("hangup");
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    c.wait_event("CALL_CLOSED", |_| true, WAIT);
    cli.quit();

    let c_heard = c.last_received_wav();
    let b_heard = b.last_received_wav();
    let c_len = webphone_interop::audio::wav_secs(&c_heard);
    let b_len = webphone_interop::audio::wav_secs(&b_heard);
    assert!(c_len > 6.0, "1003's call lasted {c_len:.1} s");
    let between = webphone_interop::audio::tone_level_between;
    // While mixed (1003's first seconds).
    let mixed = between(&c_heard, TONE_B, 0.8, 2.5);
    assert!(
        mixed.dbfs >= -35.0,
        "1003 hears 1002 in the conference: {mixed:?}"
    );
    let mixed = between(&b_heard, TONE_C, b_len - c_len + 0.8, b_len - c_len + 2.5);
    assert!(
        mixed.dbfs >= -35.0,
        "1002 hears 1003 in the conference: {mixed:?}"
    );
    // After the split (the last seconds of both calls).
    let split = between(&c_heard, TONE_B, c_len - 2.5, c_len - 0.5);
    assert!(split.dbfs < -40.0, "1003 no longer hears 1002: {split:?}");
    let ours = between(&c_heard, CLI_TONE_HZ, c_len - 2.5, c_len - 0.5);
    assert!(ours.dbfs >= -35.0, "1003 still hears us: {ours:?}");
    let split = between(&b_heard, TONE_C, b_len - 2.5, b_len - 0.5);
    assert!(split.dbfs < -40.0, "1002 no longer hears 1003: {split:?}");
}

/// A held call asked into a conference (`conference("1003")` while 1002 is on hold, before a
/// mixer runs): it is resumed once, and its audio reaches 1003 and us. (Starting the mixer
/// resumed the waiting member and the join resumed it again: the second re-INVITE crossed the
/// first, got 491, and the call stayed held and silent.)
#[test]
fn held_call_joins_a_conference_by_number_and_is_heard() {
    let _serial = serial();
    let name = "conference_held_member";
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let (_dir, _kam, mut b, mut c, mut cli, cli_rec) = three_parties(name);

    cli.api_ok("call 1002");
    b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    cli.expect(|l| l.starts_with("STATUS,1,InCall,"), WAIT);
    // baresip names its recordings by the second and starts a new one when a hold or resume
    // restarts its audio: a second between the changes keeps the files apart.
    std::thread::sleep(Duration::from_millis(1100));
    cli.api_ok("hold true");
    cli.expect(|l| l.starts_with("STATUS,1,Hold,"), WAIT);
    std::thread::sleep(Duration::from_millis(1100));
    let mark = cli.mark();
    cli.api_ok("conference 1003");
    c.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    cli.expect_after(mark, |l| l.starts_with("STATUS,1,InCall,"), WAIT);
    std::thread::sleep(Duration::from_secs(4));
    let after: Vec<String> = cli.lines()[mark..].to_vec();
    assert!(
        !after
            .iter()
            .any(|l| l.contains("SIP/2.0 491") || l.contains("491 Request Pending")),
        "no crossed re-INVITE (491): {after:?}"
    );
    cli.api_ok("setline 1");
    assert!(
        cli.api_ok("isonhold").contains("false"),
        "line 1 is no longer held"
    );
    cli.api_ok("setline -2");
    cli.api_ok("hangup");
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    c.wait_event("CALL_CLOSED", |_| true, WAIT);
    cli.quit();

    let heard = |path: &std::path::Path, hz: f64, what: &str| {
        let t = tone_level(path, hz);
        assert!(
            t.dbfs >= -35.0,
            "{what}: {hz} Hz at {:.1} dBFS: {t:?}",
            t.dbfs
        );
    };
    // 1002 sends again only once resumed (held, it was recvonly): 1003 hearing it shows the
    // resume took. (baresip 1.0 writes no new recording after a hold and resume, so what 1002
    // hears is not checked here; the first test checks it for members that were not held.)
    heard(&c.last_received_wav(), TONE_B, "1003 hears 1002");
    heard(&cli_rec, TONE_B, "the softphone hears 1002 again");
}
