//! Calls between the softphone and baresip through Kamailio with one codec at a time
//! (baresip's account allows only that codec; the softphone is told `codec=<name>`): the
//! negotiated codec is checked in baresip's log and the audio each side recorded is checked by
//! frequency and level.
//!
//! Wideband codecs (G.722, Opus) are checked with tones above 4 kHz, which a narrowband
//! (G.711) path cannot carry: baresip sends 5 kHz, the softphone 6 kHz.

use std::time::{Duration, Instant};

use webphone_interop::audio::write_tone;
use webphone_interop::flows::{expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::{
    assert_tone, require_tools, serial, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport,
    BARESIP, KAMAILIO, KAMCMD,
};

/// How long each call carries audio.
const TALK: Duration = Duration::from_secs(4);

struct Case {
    /// Test directory name.
    name: &'static str,
    /// baresip's `audio_codecs` (`name/rate/channels`: a bare `opus` means opus/8000/1 to
    /// baresip 1.0, which does not exist, and then it allows every codec).
    baresip_codecs: &'static str,
    /// The softphone's `codec` parameter.
    cli_codec: &'static str,
    /// What baresip's log names as the encoder (`Set audio encoder: <name> ...`).
    baresip_encoder: &'static str,
    /// Tone baresip sends / the softphone sends.
    baresip_tone: f64,
    cli_tone: f64,
    /// Sample rate of the softphone's microphone WAV.
    cli_wav_rate: u32,
    /// Who dials.
    softphone_calls: bool,
}

fn codec_call(c: &Case) {
    let _serial = serial();
    if !require_tools(c.name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return;
    }
    let dir = TestDir::new(c.name);
    let kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(
        dir.path(),
        BaresipOpts {
            codecs: c.baresip_codecs.into(),
            tone_hz: c.baresip_tone,
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    let src = dir.join(&format!("cli-tone{}-{}.wav", c.cli_tone, c.cli_wav_rate));
    write_tone(&src, c.cli_tone, c.cli_wav_rate, 30.0, 0.5);
    let rec = dir.join("cli-received.wav");
    let params = Params::account(&kam, "1001", Transport::Udp)
        .set("audiodevicein", format!("file:{}", src.display()))
        .set("audiodeviceout", format!("file:{}", rec.display()))
        .set("codec", c.cli_codec)
        .set("autoaccept", "true");
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);

    if c.softphone_calls {
        cli.api_ok("call 1002");
    } else {
        kam.wait_registered("1001", WAIT);
        bs.dial(&format!("sip:1001@127.0.0.1:{}", kam.port()));
    }
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    let connected = Instant::now();
    std::thread::sleep(TALK.saturating_sub(connected.elapsed()));
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    // let the WAV writers finish
    std::thread::sleep(Duration::from_millis(500));

    let log = bs.log();
    let encoder_line = log
        .lines()
        .rev()
        .find(|l| l.contains("Set audio encoder"))
        .unwrap_or("");
    assert!(
        encoder_line
            .to_ascii_lowercase()
            .contains(&c.baresip_encoder.to_ascii_lowercase()),
        "baresip should encode with {}; its log says {encoder_line:?}",
        c.baresip_encoder
    );
    assert_tone(&rec, c.baresip_tone, -30.0, "softphone hearing baresip");
    assert_tone(
        &bs.last_received_wav(),
        c.cli_tone,
        -30.0,
        "baresip hearing the softphone",
    );
    cli.quit();
}

#[test]
fn pcma_call_to_baresip_carries_tones_both_ways() {
    codec_call(&Case {
        name: "codecs_pcma_out",
        baresip_codecs: "PCMA",
        cli_codec: "PCMA",
        baresip_encoder: "PCMA",
        baresip_tone: 1000.0,
        cli_tone: 440.0,
        cli_wav_rate: 8000,
        softphone_calls: true,
    });
}

#[test]
fn g722_call_to_baresip_carries_wideband_tones_both_ways() {
    codec_call(&Case {
        name: "codecs_g722_out",
        baresip_codecs: "G722/16000/1",
        cli_codec: "G722",
        baresip_encoder: "G722",
        baresip_tone: 5000.0,
        cli_tone: 6000.0,
        cli_wav_rate: 48000,
        softphone_calls: true,
    });
}

#[test]
fn opus_call_to_baresip_carries_wideband_tones_both_ways() {
    codec_call(&Case {
        name: "codecs_opus_out",
        baresip_codecs: "opus/48000/2",
        cli_codec: "opus",
        baresip_encoder: "opus",
        baresip_tone: 5000.0,
        cli_tone: 6000.0,
        cli_wav_rate: 48000,
        softphone_calls: true,
    });
}

#[test]
fn opus_call_from_baresip_offering_several_codecs_is_answered_with_opus() {
    // baresip offers opus, G.722 and G.711 (dynamic opus payload type of its choice); our
    // preference (codec=opus,pcmu) picks opus with baresip's payload type.
    codec_call(&Case {
        name: "codecs_opus_in",
        baresip_codecs: "PCMU,G722/16000/1,opus/48000/2",
        cli_codec: "opus,pcmu",
        baresip_encoder: "opus",
        baresip_tone: 5000.0,
        cli_tone: 6000.0,
        cli_wav_rate: 48000,
        softphone_calls: false,
    });
}

#[test]
fn g722_call_from_baresip_is_answered_with_g722_when_preferred() {
    codec_call(&Case {
        name: "codecs_g722_in",
        baresip_codecs: "PCMU,opus/48000/2,G722/16000/1",
        cli_codec: "g722,pcmu",
        baresip_encoder: "G722",
        baresip_tone: 5000.0,
        cli_tone: 6000.0,
        cli_wav_rate: 48000,
        softphone_calls: false,
    });
}
