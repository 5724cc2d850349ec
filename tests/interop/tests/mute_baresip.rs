//! `mute` against a real peer: the softphone (1001, microphone = 440 Hz file) calls baresip
//! (1002, sends 1000 Hz) through Kamailio and mutes in each direction in turn. What baresip
//! decoded shows whether our microphone reached it; what the softphone plays (its output
//! file) shows whether baresip's audio was played. Then `defmute` picks the direction of a
//! `mute(true)` without one, and `defmute 5` refuses to mute at all. These calls use
//! `sendrtponmuted=true` (zeroed RTP while muted), so baresip's recording, which only grows
//! with received packets, stays aligned with the wall clock; a separate test checks that
//! without it a muted microphone sends no RTP at all.
//!
//! The last test is `muteholdalllines` in a local three-way conference: with 1 a mute of
//! the current line silences our microphone towards both parties and a hold sends a
//! re-INVITE to both; with 0 only the current line is touched. Inside the conference a muted
//! microphone is left out by the mixer, so RTP goes on and the muted party still hears the
//! other one (without `sendrtponmuted`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use webphone_interop::audio::{tone_level_between, wav_secs, ToneLevel};
use webphone_interop::flows::{expect_registered, start_cli, WAIT};
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Cli, Kamailio, Params, TestDir, Transport,
    BARESIP, CLI_TONE_HZ, KAMAILIO, KAMCMD,
};

const PEER_HZ: f64 = 1000.0;
const PEER2_HZ: f64 = 1700.0;
/// Length of each phase of the scenario.
const PHASE: Duration = Duration::from_millis(2500);
/// Seconds left out at both ends of a phase when it is measured (signalling, jitter
/// buffers and the timing of the recordings).
const MARGIN: f64 = 0.6;

fn secs(t0: Instant, t: Instant) -> f64 {
    t.duration_since(t0).as_secs_f64()
}

/// The level of `hz` in `wav` between `from` and `to` seconds, printed.
fn level(wav: &Path, what: &str, hz: f64, from: f64, to: f64) -> ToneLevel {
    let l = tone_level_between(wav, hz, from + MARGIN, to - MARGIN);
    eprintln!(
        "{what}: {hz} Hz over {from:.1}..{to:.1} s: {:.1} dBFS ({:.0}% of the energy)",
        l.dbfs,
        l.share * 100.0
    );
    l
}

/// `hz` is loud in the window (in a conference mix it need not dominate: each party's tone
/// is there on its own).
fn heard(wav: &Path, what: &str, hz: f64, from: f64, to: f64) {
    let l = level(wav, what, hz, from, to);
    assert!(
        l.dbfs >= -35.0,
        "{what}: {hz} Hz should be heard between {from:.1} and {to:.1} s of {}: {l:?}",
        wav.display()
    );
}

fn silent(wav: &Path, what: &str, hz: f64, from: f64, to: f64) {
    let l = level(wav, what, hz, from, to);
    assert!(
        l.dbfs < -50.0,
        "{what}: {hz} Hz should be muted between {from:.1} and {to:.1} s of {}: {l:?}",
        wav.display()
    );
}

/// `ismuted` of the current call.
fn ismuted(cli: &mut Cli) -> bool {
    cli.api_ok("ismuted").trim() == "true"
}

/// Kamailio, baresip 1002 (sends [`PEER_HZ`]) and the softphone 1001 registered with
/// `extra` parameters, its microphone a 440 Hz file and its speaker the file `rec`. Fields
/// drop in order: the softphone first, the test lock last.
struct Rig {
    cli: Cli,
    b: Baresip,
    rec: PathBuf,
    kam: Kamailio,
    dir: TestDir,
    _serial: MutexGuard<'static, ()>,
}

/// The [`Rig`] of test `name`; `None` (after a loud skip) without the peers.
fn rig(name: &str, extra: &[(&str, &str)]) -> Option<Rig> {
    let serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP]) {
        return None;
    }
    let dir = TestDir::new(name);
    let kam = Kamailio::start(dir.path());
    let b = Baresip::start(
        dir.path(),
        BaresipOpts {
            tone_hz: PEER_HZ,
            ..BaresipOpts::registered_to(kam.port())
        },
    );
    let mut params = Params::account(&kam, "1001", Transport::Udp);
    for (k, v) in extra {
        params = params.set(k, *v);
    }
    let (params, rec) = params.with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    expect_registered(&mut cli, 0);
    Some(Rig {
        cli,
        b,
        rec,
        kam,
        dir,
        _serial: serial,
    })
}

impl Rig {
    /// Calls 1002 and waits until baresip has the call.
    fn call_1002(&mut self) {
        self.cli.api_ok("call 1002");
        self.b.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    }
}

#[test]
fn mute_directions_and_defmute_against_baresip() {
    let Some(mut r) = rig("mute_directions", &[("sendrtponmuted", "true")]) else {
        return;
    };
    r.call_1002();
    let (cli, b, cli_rec) = (&mut r.cli, &mut r.b, r.rec.clone());
    // Phase times relative to the call's start (baresip's recording starts there too).
    let t0 = Instant::now();
    let mut marks = vec![t0];
    let mut step = |cli: &mut Cli, cmd: &str| {
        std::thread::sleep(PHASE);
        marks.push(Instant::now());
        if !cmd.is_empty() {
            cli.api_ok(cmd);
        }
    };
    // 0: both ways. 1: microphone muted. 2: speaker muted. 3: both ways again.
    step(&mut *cli, "mute true 2");
    assert!(ismuted(cli));
    step(&mut *cli, "mute false 2");
    cli.api_ok("mute true 1");
    step(&mut *cli, "mute false");
    assert!(!ismuted(cli));
    // 4: `defmute 1` (speaker) decides for a mute without direction.
    cli.api_ok("setparameter defmute 1");
    step(&mut *cli, "mute true");
    // 5: unmuted, `defmute 5`: mute refused.
    step(&mut *cli, "mute false");
    cli.api_ok("setparameter defmute 5");
    let refused = cli.api("mute true", WAIT);
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("defmute")),
        "defmute 5 refuses mute(true): {refused:?}"
    );
    assert!(!ismuted(cli));
    step(&mut *cli, "hangup");
    let t_end = *marks.last().unwrap();
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    cli.quit();

    let p: Vec<(f64, f64)> = marks
        .windows(2)
        .map(|w| (secs(t0, w[0]), secs(t0, w[1])))
        .collect();
    assert_eq!(p.len(), 6);
    // What baresip heard of our microphone.
    let b_wav = b.last_received_wav();
    heard(
        &b_wav,
        "baresip, before any mute",
        CLI_TONE_HZ,
        p[0].0,
        p[0].1,
    );
    silent(
        &b_wav,
        "baresip, microphone muted",
        CLI_TONE_HZ,
        p[1].0,
        p[1].1,
    );
    heard(
        &b_wav,
        "baresip, speaker muted",
        CLI_TONE_HZ,
        p[2].0,
        p[2].1,
    );
    heard(&b_wav, "baresip, unmuted", CLI_TONE_HZ, p[3].0, p[3].1);
    heard(&b_wav, "baresip, defmute 1", CLI_TONE_HZ, p[4].0, p[4].1);
    heard(&b_wav, "baresip, defmute 5", CLI_TONE_HZ, p[5].0, p[5].1);
    // What we played of baresip: our output file ends at the hang-up, so its phases are
    // placed from the end.
    let len = wav_secs(&cli_rec);
    let total = secs(t0, t_end);
    assert!(
        len >= total - 1.0,
        "the softphone's output covers the call: {len:.1} s of {total:.1} s"
    );
    let at = |(from, to): (f64, f64)| (len - (total - from), len - (total - to));
    let ours = |i: usize| at(p[i]);
    let (f, t) = ours(0);
    heard(&cli_rec, "softphone, before any mute", PEER_HZ, f, t);
    let (f, t) = ours(1);
    heard(&cli_rec, "softphone, microphone muted", PEER_HZ, f, t);
    let (f, t) = ours(2);
    silent(&cli_rec, "softphone, speaker muted", PEER_HZ, f, t);
    let (f, t) = ours(3);
    heard(&cli_rec, "softphone, unmuted", PEER_HZ, f, t);
    let (f, t) = ours(4);
    silent(&cli_rec, "softphone, defmute 1", PEER_HZ, f, t);
    let (f, t) = ours(5);
    heard(&cli_rec, "softphone, defmute 5", PEER_HZ, f, t);
}

/// Without `sendrtponmuted` a muted microphone stops our RTP: baresip's decoded recording
/// (one frame per received packet) comes out shorter than the call by about the muted time,
/// and holds our tone all through.
#[test]
fn muted_microphone_sends_no_rtp_without_sendrtponmuted() {
    let Some(mut r) = rig("mute_no_rtp", &[]) else {
        return;
    };
    r.call_1002();
    let (cli, b) = (&mut r.cli, &mut r.b);
    let t0 = Instant::now();
    std::thread::sleep(PHASE);
    let m1 = Instant::now();
    cli.api_ok("mute true 2");
    std::thread::sleep(Duration::from_secs(3));
    let m2 = Instant::now();
    cli.api_ok("mute false 2");
    std::thread::sleep(PHASE);
    let t_end = Instant::now();
    cli.api_ok("hangup");
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    cli.quit();
    let b_wav = b.last_received_wav();
    let got = wav_secs(&b_wav);
    let call = secs(t0, t_end);
    let muted = secs(m1, m2);
    eprintln!("call {call:.1} s, muted {muted:.1} s, baresip decoded {got:.1} s");
    assert!(
        got < call - muted + 1.0 && got > call - muted - 1.5,
        "baresip decoded {got:.1} s of a {call:.1} s call with {muted:.1} s muted: RTP went on"
    );
    heard(&b_wav, "baresip, all it decoded", CLI_TONE_HZ, 0.0, got);
}

#[test]
fn muteholdalllines_reaches_every_conference_leg() {
    let Some(mut r) = rig("muteholdalllines", &[("muteholdalllines", "0")]) else {
        return;
    };
    let mut c = Baresip::start(
        r.dir.path(),
        BaresipOpts {
            user: "1003".into(),
            password: "pass1003".into(),
            tone_hz: PEER2_HZ,
            ..BaresipOpts::registered_to(r.kam.port())
        },
    );
    r.call_1002();
    let (cli, b, kam) = (&mut r.cli, &mut r.b, &r.kam);
    let tb = Instant::now();
    cli.api_ok("call 1003");
    c.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    let tc = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cli.api_ok("conference").trim(), "2");
    std::thread::sleep(PHASE);
    // muteholdalllines 0: only the current line (1003, line 2) is muted.
    let m1 = Instant::now();
    cli.api_ok("mute true 2");
    std::thread::sleep(PHASE);
    let m2 = Instant::now();
    cli.api_ok("mute false 2");
    // muteholdalllines 1: the same mute reaches both legs.
    cli.api_ok("setparameter muteholdalllines 1");
    std::thread::sleep(PHASE);
    let m3 = Instant::now();
    cli.api_ok("mute true 2");
    std::thread::sleep(PHASE);
    let m4 = Instant::now();
    cli.api_ok("mute false 2");
    // Hold with muteholdalllines 1: a re-INVITE to each leg.
    let invites_before = kam.log().matches("REQ INVITE").count();
    cli.api_ok("hold true");
    let deadline = Instant::now() + WAIT;
    while kam.log().matches("REQ INVITE").count() < invites_before + 2 && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let held = kam.log().matches("REQ INVITE").count() - invites_before;
    assert_eq!(held, 2, "hold(true) re-INVITEs both conference legs");
    // Each baresip got the hold offer: a second remote SDP offer after the call's first.
    for peer in [&*b, &c] {
        let offers = || {
            peer.event_types()
                .iter()
                .filter(|t| t.starts_with("CALL_REMOTE_SDP"))
                .count()
        };
        let deadline = Instant::now() + WAIT;
        while offers() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(offers(), 2, "{} got the hold re-INVITE", peer.user());
    }
    cli.api_ok("setline -2");
    cli.api_ok("hangup");
    b.wait_event("CALL_CLOSED", |_| true, WAIT);
    c.wait_event("CALL_CLOSED", |_| true, WAIT);
    cli.quit();

    let b_wav = b.last_received_wav();
    let c_wav = c.last_received_wav();
    let (b0, c0) = (|t| secs(tb, t), |t| secs(tc, t));
    heard(
        &b_wav,
        "1002, only line 2 muted",
        CLI_TONE_HZ,
        b0(m1),
        b0(m2),
    );
    silent(&c_wav, "1003, line 2 muted", CLI_TONE_HZ, c0(m1), c0(m2));
    silent(&b_wav, "1002, all legs muted", CLI_TONE_HZ, b0(m3), b0(m4));
    silent(&c_wav, "1003, all legs muted", CLI_TONE_HZ, c0(m3), c0(m4));
    heard(
        &c_wav,
        "1003 hears 1002 in the mix",
        PEER_HZ,
        c0(m3),
        c0(m4),
    );
}
