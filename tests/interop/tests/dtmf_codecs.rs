//! RFC 4733 DTMF with wideband codecs: the softphone and baresip talk Opus or G.722 and a
//! `dtmf` API call reaches baresip as a `CALL_DTMF_START` event.
//!
//! With Opus the softphone offers `telephone-event/48000` next to `telephone-event/8000`
//! (RFC 4733 §2.1: the event clock is the codec's RTP clock); baresip 1.0 answers with
//! `telephone-event/8000` only, which the softphone then uses (the packets keep the Opus
//! timeline). G.722's RTP clock is 8000 Hz (RFC 3551 §4.5.2), so it pairs with
//! `telephone-event/8000`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{expect_connected, expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Kamailio, Params, TestDir, Transport, BARESIP,
    KAMAILIO, KAMCMD,
};

struct Case {
    name: &'static str,
    /// baresip's `audio_codecs`.
    baresip_codecs: &'static str,
    /// The softphone's `codec` parameter.
    cli_codec: &'static str,
    /// What baresip's log names as the encoder.
    baresip_encoder: &'static str,
    /// Who dials.
    softphone_calls: bool,
    /// Digits sent, one API call each.
    digits: &'static str,
}

fn dtmf_call(c: &Case) {
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
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    let (params, _rec) = Params::account(&kam, "1001", Transport::Udp).with_file_audio(&dir);
    let params = params.set("codec", c.cli_codec).set("autoaccept", "true");
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
    std::thread::sleep(Duration::from_millis(800));

    for d in c.digits.chars() {
        cli.api_ok(&format!("dtmf {d}"));
        let want = d.to_string();
        bs.wait_event("CALL_DTMF_START", |k| k == want, WAIT);
    }
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);

    let log = bs.log();
    let encoder_line = log
        .lines()
        .rfind(|l| l.contains("Set audio encoder"))
        .unwrap_or("");
    assert!(
        encoder_line
            .to_ascii_lowercase()
            .contains(&c.baresip_encoder.to_ascii_lowercase()),
        "baresip should encode with {}; its log says {encoder_line:?}",
        c.baresip_encoder
    );
    // Every digit exactly once: the update and the three end packets of one event are one
    // key press (RFC 4733 §2.5.1).
    assert_eq!(bs.dtmf_received(), c.digits, "DTMF keys seen by baresip");
    cli.quit();
}

#[test]
fn dtmf_reaches_baresip_in_an_opus_call_we_place() {
    dtmf_call(&Case {
        name: "dtmf_opus_out",
        baresip_codecs: "opus/48000/2",
        cli_codec: "opus",
        baresip_encoder: "opus",
        softphone_calls: true,
        digits: "5",
    });
}

#[test]
fn dtmf_reaches_baresip_in_an_opus_call_we_answer() {
    dtmf_call(&Case {
        name: "dtmf_opus_in",
        baresip_codecs: "opus/48000/2,PCMU",
        cli_codec: "opus,pcmu",
        baresip_encoder: "opus",
        softphone_calls: false,
        digits: "5#",
    });
}

#[test]
fn dtmf_reaches_baresip_in_a_g722_call() {
    dtmf_call(&Case {
        name: "dtmf_g722_out",
        baresip_codecs: "G722/16000/1",
        cli_codec: "G722",
        baresip_encoder: "G722",
        softphone_calls: true,
        digits: "5",
    });
}
