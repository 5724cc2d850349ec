//! Local ringback and early media on an outgoing call (`earlymedia`, `changesptoring`): the
//! softphone calls a SIPp callee that rings (180 without SDP) or sends early media (183 with
//! SDP and RTP: a 1 kHz announcement) for 3 s before answering. What the softphone played is
//! its `file:` playback device, analysed per call phase (the recording starts when the first
//! sound is played: at the provisional response, or at the answer when nothing plays before).
#![allow(clippy::unwrap_used)]

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

use webphone_interop::audio::{tone_level_between, wav_secs, write_ulaw_tone, ToneLevel};
use webphone_interop::cli::{Cli, Status};
use webphone_interop::flows::{call_record, expect_connected, start_cli, WAIT};
use webphone_interop::sipp::Scenario;
use webphone_interop::{free_port, require_tools, serial, Params, Sipp, TestDir, SIPP};

/// The European ringback (ITU-T E.180: 425 Hz, 1 s on, 4 s off).
const RINGBACK_HZ: f64 = 425.0;
/// The far end's early-media announcement.
const EARLY_HZ: f64 = 1000.0;
/// Ringing time of the scenarios before the 200 OK.
const RINGING_S: f64 = 3.0;

struct Outcome {
    cli: Cli,
    rec: PathBuf,
    /// RTP packets the softphone sent to the 183's media address (before the answer).
    early_sent: usize,
    _dir: TestDir,
}

impl Outcome {
    fn level(&self, freq: f64, from: f64, to: f64) -> ToneLevel {
        let l = tone_level_between(&self.rec, freq, from, to);
        eprintln!(
            "{freq} Hz over {from}..{to} s: {:.1} dBFS ({:.0}% of the energy)",
            l.dbfs,
            l.share * 100.0
        );
        l
    }

    fn ringing_shown(&self) -> bool {
        !self
            .cli
            .seen(|l| Status::parse(l).is_some_and(|s| s.line >= 1 && s.text == "Ringing"))
            .is_empty()
    }
}

/// Calls SIPp running `scenario` with `extra` parameters, holds the answered call 1.5 s and
/// hangs up.
fn call(name: &str, scenario: &str, extra: &[(&str, &str)]) -> Outcome {
    let dir = TestDir::new(name);
    write_ulaw_tone(&dir.join("early-tone-1k.ulaw"), EARLY_HZ, 10.0, 0.5);
    let early = UdpSocket::bind("127.0.0.1:0").unwrap();
    early.set_nonblocking(true).unwrap();
    let early_port = early.local_addr().unwrap().port().to_string();
    let mut sipp = Sipp::start(
        dir.path(),
        Scenario::File(scenario),
        None,
        &["-key", "early_port", &early_port],
    );
    let mut params = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", free_port())
        .set("loglevel", "5");
    for (k, v) in extra {
        params = params.set(k, v);
    }
    let (params, rec) = params.with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call sip:1002@127.0.0.1:{}", sipp.port()));
    expect_connected(&mut cli);
    std::thread::sleep(Duration::from_millis(1500));
    let mark = cli.mark();
    cli.api_ok("hangup");
    call_record(&mut cli, mark);
    sipp.assert_success(WAIT);
    cli.quit();
    eprintln!("recording: {:.2} s", wav_secs(&rec));
    let early_sent = rtp_packets(&early);
    eprintln!("RTP sent to the early-media address: {early_sent} packets");
    Outcome {
        cli,
        rec,
        early_sent,
        _dir: dir,
    }
}

/// RTP datagrams (version 2, at least a header; not the `natopenpackets` filler) waiting on
/// `sock`.
fn rtp_packets(sock: &UdpSocket) -> usize {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while let Ok(len) = sock.recv(&mut buf) {
        if len >= 12 && buf[0] >> 6 == 2 {
            n += 1;
        }
    }
    n
}

fn skip(test: &str) -> bool {
    !require_tools(test, &[SIPP])
}

#[test]
fn ringing_180_without_sdp_plays_local_ringback_until_the_answer() {
    let _serial = serial();
    if skip("ringing_180_without_sdp_plays_local_ringback") {
        return;
    }
    let o = call("ringback_180", "sipp-uas-ringing-180.xml", &[]);
    assert!(o.ringing_shown(), "STATUS Ringing on the line");
    // The first second of the cadence is tone, the next four silence.
    assert!(
        o.level(RINGBACK_HZ, 0.2, 0.8).present(-30.0),
        "ringback during ringing"
    );
    assert!(
        o.level(RINGBACK_HZ, 1.3, 2.7).dbfs < -50.0,
        "ringback cadence pause"
    );
    // SIPp sends no RTP after answering: the ringback stopped at the answer (it would be
    // back at 5 s).
    let secs = wav_secs(&o.rec);
    assert!(
        secs > RINGING_S + 1.0,
        "the call kept the ringback's device ({secs:.2} s)"
    );
    assert!(
        o.level(RINGBACK_HZ, RINGING_S + 0.3, secs).dbfs < -50.0,
        "no ringback after the answer"
    );
}

#[test]
fn session_progress_183_with_early_rtp_plays_the_early_audio_without_ringback() {
    let _serial = serial();
    if skip("session_progress_183_with_early_rtp") {
        return;
    }
    let o = call("early_media_183", "sipp-uas-early-media-183.xml", &[]);
    assert!(o.ringing_shown(), "changesptoring=2 shows 183 as Ringing");
    // Before the answer (0..3 s): the announcement, and no ringback mixed in (the ringback
    // would be on over 0..1 s).
    assert!(
        o.level(EARLY_HZ, 0.3, 2.7).present(-20.0),
        "early audio heard before the answer"
    );
    assert!(
        o.level(RINGBACK_HZ, 0.3, 1.0).dbfs < -45.0,
        "ringback stopped by early RTP"
    );
    let secs = wav_secs(&o.rec);
    assert!(
        o.level(EARLY_HZ, RINGING_S + 0.3, secs - 0.2)
            .present(-20.0),
        "same media after the answer"
    );
}

#[test]
fn earlymedia_0_keeps_the_ringback_and_plays_the_media_only_after_the_answer() {
    let _serial = serial();
    if skip("earlymedia_0_keeps_the_ringback") {
        return;
    }
    let o = call(
        "early_media_off",
        "sipp-uas-early-media-183.xml",
        &[("earlymedia", "0")],
    );
    assert!(o.ringing_shown(), "183 shown as Ringing");
    assert!(
        o.level(RINGBACK_HZ, 0.2, 0.8).present(-30.0),
        "local ringback on 183"
    );
    assert!(
        o.level(EARLY_HZ, 0.2, 2.7).dbfs < -45.0,
        "early RTP not played"
    );
    let secs = wav_secs(&o.rec);
    assert!(
        o.level(EARLY_HZ, RINGING_S + 0.5, secs - 0.2)
            .present(-20.0),
        "media after the answer"
    );
}

#[test]
fn changesptoring_0_does_nothing_on_183() {
    let _serial = serial();
    if skip("changesptoring_0_does_nothing_on_183") {
        return;
    }
    let o = call(
        "sp_to_ring_0",
        "sipp-uas-early-media-183.xml",
        &[("changesptoring", "0")],
    );
    assert!(!o.ringing_shown(), "183 not shown as Ringing");
    // Nothing played before the answer: the playback device opened at the answer, so the
    // recording holds only the 1.5 s connected call.
    let secs = wav_secs(&o.rec);
    assert!(
        secs < RINGING_S - 0.5,
        "nothing played while ringing ({secs:.2} s recorded)"
    );
    assert!(o.level(RINGBACK_HZ, 0.0, secs).dbfs < -45.0, "no ringback");
    assert!(
        o.level(EARLY_HZ, 0.3, secs - 0.2).present(-20.0),
        "media after the answer"
    );
}

#[test]
fn changesptoring_5_keeps_the_ringback_over_early_media() {
    let _serial = serial();
    if skip("changesptoring_5_keeps_the_ringback") {
        return;
    }
    let o = call(
        "sp_to_ring_5",
        "sipp-uas-early-media-183.xml",
        &[("changesptoring", "5")],
    );
    assert!(
        o.level(RINGBACK_HZ, 0.2, 0.8).dbfs > -30.0,
        "ringback kept over early media"
    );
    assert!(
        o.level(EARLY_HZ, 1.3, 2.7).present(-20.0),
        "early audio heard in the cadence pause"
    );
}

#[test]
fn earlymedia_5_sends_the_microphone_before_the_answer() {
    let _serial = serial();
    if skip("earlymedia_5_sends_the_microphone_before_the_answer") {
        return;
    }
    let o = call(
        "early_media_send",
        "sipp-uas-early-media-183.xml",
        &[("earlymedia", "5")],
    );
    // Only the first few packets reach the 183's address: symmetric RTP then latches to where
    // SIPp's stream comes from.
    assert!(o.early_sent > 0, "early RTP sent to the 183's address");
    assert!(
        o.level(EARLY_HZ, 0.3, 2.7).present(-20.0),
        "early audio heard before the answer"
    );
}

#[test]
fn second_call_rings_back_through_the_mixer_over_the_first_call() {
    let _serial = serial();
    if skip("second_call_rings_back_through_the_mixer") {
        return;
    }
    let dir = TestDir::new("ringback_mixer");
    // First callee answers at once and sends nothing (no echo): the first call is silent.
    let mut first = Sipp::start(dir.path(), Scenario::Builtin("uas"), None, &[]);
    let mut second = Sipp::start(
        dir.path(),
        Scenario::File("sipp-uas-ringing-180.xml"),
        None,
        &[],
    );
    let (params, rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", free_port())
        .set("loglevel", "5")
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    cli.api_ok(&format!("call sip:1002@127.0.0.1:{}", first.port()));
    expect_connected(&mut cli);
    // The recording starts with the first call's media.
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    cli.api_ok(&format!("call sip:1003@127.0.0.1:{}", second.port()));
    cli.expect(
        |l| Status::parse(l).is_some_and(|s| s.line == 2 && s.text == "Ringing"),
        WAIT,
    );
    let ring_at = t0.elapsed().as_secs_f64();
    cli.expect(
        |l| Status::parse(l).is_some_and(|s| s.line == 2 && s.text == "CallConnect"),
        WAIT,
    );
    std::thread::sleep(Duration::from_millis(1500));
    cli.api_ok("hangup -2");
    second.assert_success(WAIT);
    first.assert_success(WAIT);
    cli.quit();
    let o = Outcome {
        cli,
        rec,
        early_sent: 0,
        _dir: dir,
    };
    eprintln!("second call ringing from {ring_at:.2} s of the recording");
    assert!(
        o.level(RINGBACK_HZ, 0.2, 0.9).dbfs < -50.0,
        "the first call alone: silence"
    );
    assert!(
        o.level(RINGBACK_HZ, ring_at + 0.2, ring_at + 0.8)
            .present(-30.0),
        "ringback of the second call over the first"
    );
    assert!(
        o.level(
            RINGBACK_HZ,
            ring_at + RINGING_S + 0.3,
            wav_secs(&o.rec) - 0.1
        )
        .dbfs
            < -50.0,
        "no ringback after the answer"
    );
}
