//! In-band DTMF: linphonec without RFC 4733 (`use_rfc2833=0`) answers without
//! telephone-event and plays the digits as tones inside the audio; the softphone detects them
//! in what it decodes (`webphone_media::dtmf_inband`) and reports them with `onDTMF`, as it
//! does for RFC 4733 events. Over G.711: linphonec 5.1 with GSM sends no DTMF at all when
//! telephone-event is missing (its console reports a failed `tev_pt != -1` assertion and the
//! recording has no tones), so a vocoder case is covered by the unit tests of
//! `dtmf_inband` (tones through GSM, G.729, Speex) instead.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::audio::write_tone;
use webphone_interop::flows::{expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::linphone::{Linphone, LinphoneOpts, LINPHONEC};
use webphone_interop::{
    require_tools, serial, Kamailio, Params, TestDir, Transport, KAMAILIO, KAMCMD,
};

fn inband_dtmf_call(name: &str, linphone_codec: (&str, u32), cli_codec: &str) {
    let _serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD, LINPHONEC]) {
        return;
    }
    let dir = TestDir::new(name);
    let kam = Kamailio::start(dir.path());
    // Quiet background audio from linphone (a low 300 Hz hum) under the digits.
    let lp_audio = dir.join("linphone-hum.wav");
    write_tone(&lp_audio, 300.0, 8000, 20.0, 0.02);
    let mut lp = Linphone::start(
        dir.path(),
        LinphoneOpts {
            rfc2833: false,
            ..LinphoneOpts::registered_to(kam.port(), &lp_audio)
        },
    );
    lp.use_only_codecs(&[linphone_codec]);
    kam.wait_registered("1003", WAIT);

    let src = dir.join("cli-tone.wav");
    write_tone(&src, 440.0, 8000, 20.0, 0.2);
    let rec = dir.join("cli-received.wav");
    let params = Params::account(&kam, "1001", Transport::Udp)
        .set("audiodevicein", format!("file:{}", src.display()))
        .set("audiodeviceout", format!("file:{}", rec.display()))
        .set("codec", cli_codec);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1003");
    expect_connected(&mut cli);
    std::thread::sleep(Duration::from_secs(1));

    let digits = "159#";
    lp.send_dtmf(digits);
    let mut got = String::new();
    for want in digits.chars() {
        let line = cli.expect(
            |l| l.starts_with("CALLBACK,onDTMF,"),
            Duration::from_secs(10),
        );
        let d = line
            .trim_start_matches("CALLBACK,onDTMF,[\"")
            .chars()
            .next()
            .unwrap_or('?');
        got.push(d);
        assert_eq!(d, want, "digits so far: {got}; line {line}");
    }
    cli.api_ok("hangup");
    lp.stop();
    let debug = lp.debug_log();
    assert!(
        !debug
            .lines()
            .any(|l| l.contains("telephone-event") && l.contains("added to frozen list")),
        "linphone must not run telephone-event in this call"
    );
    cli.quit();
}

#[test]
fn inband_dtmf_from_linphone_over_pcmu_is_detected() {
    inband_dtmf_call("codecs_inband_dtmf_pcmu", ("PCMU", 8000), "pcmu");
}
