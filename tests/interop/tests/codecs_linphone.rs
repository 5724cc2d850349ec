//! Calls between the softphone and linphonec (liblinphone 5.1) through Kamailio with the
//! codecs of the C libraries: GSM, Speex narrow-, wide- and ultra-wideband, G.729. linphonec is
//! told to use only that codec (`codec enable/disable`), the softphone offers only it
//! (`codec=<name>`); the codec of linphonec's running session is checked in its debug log and
//! the audio each side recorded is checked by frequency and level. All tones stay in the narrow band (Speex
//! wideband codes a pure tone above 4 kHz poorly, so a wideband tone says little).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::audio::write_tone;
use webphone_interop::flows::{expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::linphone::{Linphone, LinphoneOpts, LINPHONEC};
use webphone_interop::{
    assert_tone, require_tools, serial, Kamailio, Params, TestDir, Transport, KAMAILIO, KAMCMD,
};

/// How long each call carries audio.
const TALK: Duration = Duration::from_secs(4);

struct Case {
    name: &'static str,
    /// linphonec's codec (`codec list` name and rate).
    linphone_codec: (&'static str, u32),
    /// The softphone's `codec` parameter.
    cli_codec: &'static str,
    /// The payload type our offer gives the codec (linphonec's answer keeps it).
    pt: u8,
    /// The softphone's audio rate for the codec.
    audio_rate: u32,
}

const LINPHONE_TONE: f64 = 1000.0;
const CLI_TONE: f64 = 440.0;

fn linphone_call(c: &Case) {
    let _serial = serial();
    if !require_tools(c.name, &[KAMAILIO, KAMCMD, LINPHONEC]) {
        return;
    }
    let dir = TestDir::new(c.name);
    let kam = Kamailio::start(dir.path());
    let lp_tone = dir.join("linphone-tone.wav");
    write_tone(&lp_tone, LINPHONE_TONE, 8000, 12.0, 0.5);
    let mut lp = Linphone::start(
        dir.path(),
        LinphoneOpts::registered_to(kam.port(), &lp_tone),
    );
    lp.use_only_codecs(&[c.linphone_codec]);
    kam.wait_registered("1003", WAIT);

    let src = dir.join("cli-tone.wav");
    // At the codec's audio rate: the softphone's `file:` device resamples the whole file when
    // the call starts, which is slow in debug builds.
    write_tone(&src, CLI_TONE, c.audio_rate, 12.0, 0.5);
    let rec = dir.join("cli-received.wav");
    let params = Params::account(&kam, "1001", Transport::Udp)
        .set("audiodevicein", format!("file:{}", src.display()))
        .set("audiodeviceout", format!("file:{}", rec.display()))
        .set("codec", c.cli_codec);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1003");
    expect_connected(&mut cli);
    std::thread::sleep(TALK);
    cli.api_ok("hangup");
    std::thread::sleep(Duration::from_millis(800));
    lp.terminate_all();
    std::thread::sleep(Duration::from_millis(500));
    lp.stop();

    // liblinphone logs the payload types of the running session ("frozen list").
    let (mime, rate) = c.linphone_codec;
    let frozen = format!("payload type {} {mime}/{rate} fmtp=", c.pt);
    let debug = lp.debug_log();
    assert!(
        debug
            .lines()
            .any(|l| l.contains(&frozen) && l.contains("added to frozen list")),
        "linphonec's call should run {mime}/{rate} on payload type {}",
        c.pt
    );
    assert_tone(&rec, LINPHONE_TONE, -30.0, "softphone hearing linphonec");
    assert_tone(
        lp.recording(),
        CLI_TONE,
        -30.0,
        "linphonec hearing the softphone",
    );
    cli.quit();
}

#[test]
fn gsm_call_to_linphone_carries_tones_both_ways() {
    linphone_call(&Case {
        name: "codecs_linphone_gsm",
        linphone_codec: ("GSM", 8000),
        cli_codec: "gsm",
        pt: 3,
        audio_rate: 8000,
    });
}

#[test]
fn g729_call_to_linphone_carries_tones_both_ways() {
    linphone_call(&Case {
        name: "codecs_linphone_g729",
        linphone_codec: ("G729", 8000),
        cli_codec: "g729",
        pt: 18,
        audio_rate: 8000,
    });
}

#[test]
fn speex_narrowband_call_to_linphone_carries_tones_both_ways() {
    linphone_call(&Case {
        name: "codecs_linphone_speex",
        linphone_codec: ("speex", 8000),
        cli_codec: "speex",
        pt: 97,
        audio_rate: 8000,
    });
}

#[test]
fn speex_wideband_call_to_linphone_carries_tones_both_ways() {
    linphone_call(&Case {
        name: "codecs_linphone_speexwb",
        linphone_codec: ("speex", 16000),
        cli_codec: "speexwb",
        pt: 98,
        audio_rate: 16000,
    });
}

#[test]
fn speex_ultra_wideband_call_to_linphone_carries_tones_both_ways() {
    linphone_call(&Case {
        name: "codecs_linphone_speexuwb",
        linphone_codec: ("speex", 32000),
        cli_codec: "speexuwb",
        pt: 99,
        audio_rate: 32000,
    });
}
