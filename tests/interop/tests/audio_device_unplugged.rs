//! Issue 9: the call's sound devices disappear mid-call. The softphone (1001) calls baresip
//! (1002, auto-answer) through Kamailio with real cpal devices:
//!
//! - PulseAudio daemon "main" is the system's default (the CLI's `XDG_RUNTIME_DIR`): a null
//!   sink, and as the default recording device the monitor of a null sink that `module-sine`
//!   plays 440 Hz into;
//! - PulseAudio daemon "headset" plays the unpluggable headset: null sink `hs_out`, and the
//!   monitor of null sink `hs_mic` with 700 Hz played into it, reached through the ALSA PCMs
//!   `alsa:headset` / `alsa:headset_mic` that the CLI's asoundrc defines (`audiodeviceout` /
//!   `audiodevicein`). (A sink monitor, not `module-sine-source`: that one delivers its audio
//!   in 2 s blocks, which no microphone does.)
//!
//! Mid-call both headset modules are unloaded with pactl. Asserted: the call stays up (no
//! BYE, no CALL_CLOSED, baresip keeps receiving audio), both losses are announced
//! (`EVENT,WARNING,...` and `onDisplay`), the CLI's streams now run on the main daemon's
//! default sink and source, and baresip hears the default source's 440 Hz instead of the
//! headset's 700 Hz. Then the modules are loaded again: the return is announced and the
//! audio goes back to the headset (700 Hz again). Finally the headset's playback PCM is
//! removed from the asoundrc while its sink still exists: a device missing from the device
//! list also falls back. A PCM added to the asoundrc meanwhile shows up in `getdevicelist`
//! (hot-plug).

use std::path::Path;
use std::time::{Duration, Instant};

use webphone_interop::audio::tone_level_between;
use webphone_interop::flows::{expect_connected, expect_registered, WAIT};
use webphone_interop::pulse::{alsa_pcm, PulseServer, PACTL, PULSEAUDIO};
use webphone_interop::util::wait_for;
use webphone_interop::{
    require_tools, serial, Baresip, BaresipOpts, Cli, Kamailio, Params, TestDir, Transport,
    BARESIP, KAMAILIO, KAMCMD,
};

const HEADSET_HZ: f64 = 700.0;
const DEFAULT_HZ: f64 = 440.0;
/// The CLI's streams as PulseAudio names them (`ALSA plug-in [webphone-cli]`).
const APP: &str = "webphone-cli";
/// How long a fallback or a return may take (error detection, the default device opening,
/// the PulseAudio null sink's ~2 s start, the probe back-off).
const SWITCH: Duration = Duration::from_secs(30);

fn write_asoundrc(path: &Path, pcms: &[String]) {
    std::fs::create_dir_all(path.parent().expect("asoundrc dir")).expect("create alsa dir");
    std::fs::write(path, pcms.concat()).expect("write asoundrc");
}

/// Waits until the CLI has printed `count` lines starting with `prefix` and containing every
/// one of `parts` (since it started); returns them.
fn expect_lines(
    cli: &Cli,
    prefix: &str,
    parts: &[&str],
    count: usize,
    timeout: Duration,
) -> Vec<String> {
    let found = wait_for(timeout, || {
        let lines = cli.seen(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)));
        (lines.len() >= count).then_some(lines)
    });
    let lines = found.unwrap_or_else(|| {
        panic!(
            "no {count} lines {prefix}...{parts:?} within {timeout:?}; EVENT lines: {:?}",
            cli.seen(|l| l.starts_with("EVENT,"))
        )
    });
    for l in &lines {
        eprintln!("seen: {l}");
    }
    lines
}

/// Asserts that the CLI plays to `sink` and records from `source` of `server`, and only there
/// (within 5 s: a stream may be in the middle of a rebuild after an xrun).
fn assert_streams_on(server: &PulseServer, sink: &str, source: &str) {
    let sink = server.index_of("sinks", sink).expect("sink exists");
    let source = server.index_of("sources", source).expect("source exists");
    let want = (vec![sink], vec![source]);
    let seen = || (server.sink_inputs_of(APP), server.source_outputs_of(APP));
    let ok = wait_for(Duration::from_secs(5), || (seen() == want).then_some(()));
    assert!(
        ok.is_some(),
        "CLI streams (playback, capture) {:?}, expected {want:?}",
        seen()
    );
}

/// The "main" PulseAudio daemon: default sink `main_out`, default source the monitor of
/// `main_mic`, which carries a [`DEFAULT_HZ`] tone.
fn main_pulse(dir: &TestDir) -> PulseServer {
    let main = PulseServer::start(
        dir.path(),
        "pa-main",
        &[
            "module-null-sink sink_name=main_out rate=48000",
            "module-null-sink sink_name=main_mic rate=48000",
            &format!("module-sine sink=main_mic frequency={DEFAULT_HZ}"),
        ],
    );
    main.pactl(&["set-default-sink", "main_out"]);
    main.pactl(&["set-default-source", "main_mic.monitor"]);
    main
}

/// 1001 at `kam` with the headset as its devices. The tones must reach baresip as they are:
/// no noise suppression (a steady tone is "noise"), no echo canceller, no gain control.
fn headset_params(kam: &Kamailio) -> Params {
    Params::account(kam, "1001", Transport::Udp)
        .set("audiodevicein", "alsa:headset_mic")
        .set("audiodeviceout", "alsa:headset")
        .set("aec", "0")
        .set("aec2", "0")
        .set("denoise", "0")
        .set("agc", "0")
}

/// The softphone with `main` as its default PulseAudio daemon.
fn cli_on(main: &PulseServer, dir: &TestDir, params: &Params) -> Cli {
    let runtime = format!("XDG_RUNTIME_DIR={}", main.runtime_dir().display());
    let wrapper = ["env".to_string(), runtime];
    Cli::start_wrapped(dir.path(), &wrapper, &params.pairs(), &["--callbacks"])
}

/// Seconds since `t0`.
fn secs(t0: Instant, t: Instant) -> f64 {
    t.duration_since(t0).as_secs_f64()
}

#[test]
fn call_survives_headset_unplug_and_uses_the_default_device_then_the_headset_again() {
    let name = "audio_device_unplugged";
    let _serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP, PULSEAUDIO, PACTL]) {
        return;
    }
    let dir = TestDir::new(name);
    let main = main_pulse(&dir);
    let headset = PulseServer::start(dir.path(), "pa-hs", &[]);
    let load_headset = || {
        let out = headset.load_module("module-null-sink", &["sink_name=hs_out", "rate=48000"]);
        let mic = headset.load_module("module-null-sink", &["sink_name=hs_mic", "rate=48000"]);
        let freq = format!("frequency={HEADSET_HZ}");
        headset.load_module("module-sine", &["sink=hs_mic", &freq]);
        (out, mic)
    };
    let (sink_mod, source_mod) = load_headset();

    // The CLI's ALSA configuration ($XDG_CONFIG_HOME/alsa/asoundrc, see Cli::start).
    let asoundrc = dir.join("cli-home/config/alsa/asoundrc");
    let hs_out = alsa_pcm("headset", &headset.address(), "hs_out", "Test headset");
    let hs_in = alsa_pcm(
        "headset_mic",
        &headset.address(),
        "hs_mic.monitor",
        "Test headset mic",
    );
    write_asoundrc(&asoundrc, &[hs_out.clone(), hs_in.clone()]);

    let kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    // The CLI's default PulseAudio daemon is "main" (flows::start_cli would inherit ours).
    let mut cli = cli_on(&main, &dir, &headset_params(&kam));
    expect_registered(&mut cli, 0);

    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(4));

    // The headset carries the call's audio.
    assert_streams_on(&headset, "hs_out", "hs_mic.monitor");
    assert!(main.sink_inputs_of(APP).is_empty() && main.source_outputs_of(APP).is_empty());

    // Hot-plug: a device added now is listed.
    let usb = alsa_pcm("usb_speaker", &main.address(), "main_out", "USB speaker");
    write_asoundrc(&asoundrc, &[hs_out.clone(), hs_in.clone(), usb.clone()]);
    let mark = cli.mark();
    cli.api_ok("getdevicelist 1");
    cli.expect_after(mark, |l| l.trim() == "alsa:usb_speaker", WAIT);

    // Unplug: both headset modules go.
    let t_unplug = Instant::now();
    headset.unload_module(&sink_mod);
    headset.unload_module(&source_mod);
    let gone = [
        "playback device alsa:headset is gone",
        "recording device alsa:headset_mic is gone",
    ];
    for what in gone {
        expect_lines(
            &cli,
            "EVENT,WARNING,",
            &[what, "using the default"],
            1,
            SWITCH,
        );
        expect_lines(&cli, "CALLBACK,onDisplay,", &[what], 1, WAIT);
    }
    let t_fallback = Instant::now();
    eprintln!(
        "fallback announced {:.1} s after the unplug",
        secs(t_unplug, t_fallback)
    );
    std::thread::sleep(Duration::from_secs(4));

    // The call is up and now runs on the main daemon's default devices.
    assert_streams_on(&main, "main_out", "main_mic.monitor");
    assert!(!bs.has_event("CALL_CLOSED"), "baresip saw the call close");
    assert!(
        cli.seen(|l| l.contains("CallDisconnect")).is_empty(),
        "the softphone ended the call"
    );

    // Plug back in: the headset returns and carries the audio again.
    let t_replug = Instant::now();
    load_headset();
    expect_lines(
        &cli,
        "EVENT,EVENT,",
        &["is back and in use again"],
        2,
        SWITCH,
    );
    let t_restored = Instant::now();
    eprintln!(
        "return announced {:.1} s after the replug",
        secs(t_replug, t_restored)
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_streams_on(&headset, "hs_out", "hs_mic.monitor");
    assert!(main.sink_inputs_of(APP).is_empty() && main.source_outputs_of(APP).is_empty());

    // Gone from the device list (the sink itself still exists): falls back too.
    write_asoundrc(&asoundrc, &[hs_in.clone(), usb]);
    expect_lines(
        &cli,
        "EVENT,WARNING,",
        &["playback device alsa:headset is gone (it is no longer listed)"],
        1,
        SWITCH,
    );
    let t_unlisted = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let main_sink = main.index_of("sinks", "main_out").expect("main_out sink");
    assert_eq!(main.sink_inputs_of(APP), vec![main_sink]);

    // Still no BYE anywhere; the softphone hangs up now.
    assert!(!bs.has_event("CALL_CLOSED"), "baresip saw the call close");
    assert!(
        kam.log().lines().all(|l| !l.contains("REQ BYE")),
        "a BYE went through Kamailio before the hang-up"
    );
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);

    // What baresip received, phase by phase.
    let wav = bs.last_received_wav();
    let phases = [
        ("headset", HEADSET_HZ, 0.5, secs(t0, t_unplug) - 0.3),
        (
            "default after the unplug",
            DEFAULT_HZ,
            secs(t0, t_fallback) + 1.0,
            secs(t0, t_replug) - 0.3,
        ),
        (
            "headset after the return",
            HEADSET_HZ,
            secs(t0, t_restored) + 1.0,
            secs(t0, t_unlisted) - 0.3,
        ),
    ];
    for (what, hz, from, to) in phases {
        let l = tone_level_between(&wav, hz, from, to);
        eprintln!("baresip heard {what} ({from:.1}..{to:.1} s): {hz} Hz {l:?}");
        assert!(
            l.present(-40.0),
            "baresip, {what}: {hz} Hz not dominant at >= -40 dBFS between {from:.1} and {to:.1} s \
             of {}: {l:?}",
            wav.display()
        );
    }
    cli.quit();
}

/// The configured headset is missing when the call starts: the default devices carry the
/// call (baresip hears the default microphone's tone) and the user is told, instead of a
/// silent call.
#[test]
fn missing_headset_at_call_start_uses_the_default_device() {
    let name = "audio_device_missing_at_start";
    let _serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD, BARESIP, PULSEAUDIO, PACTL]) {
        return;
    }
    let dir = TestDir::new(name);
    let main = main_pulse(&dir);
    let kam = Kamailio::start(dir.path());
    let mut bs = Baresip::start(dir.path(), BaresipOpts::registered_to(kam.port()));
    let mut cli = cli_on(&main, &dir, &headset_params(&kam));
    expect_registered(&mut cli, 0);
    cli.api_ok("call 1002");
    expect_connected(&mut cli);
    bs.wait_event("CALL_ESTABLISHED", |_| true, WAIT);
    for what in ["recording device", "playback device"] {
        expect_lines(
            &cli,
            "CALLBACK,onDisplay,",
            &[what, "using the default one"],
            1,
            WAIT,
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_streams_on(&main, "main_out", "main_mic.monitor");
    cli.api_ok("hangup");
    bs.wait_event("CALL_CLOSED", |_| true, WAIT);
    let wav = bs.last_received_wav();
    let l = tone_level_between(&wav, DEFAULT_HZ, 0.5, 2.5);
    eprintln!("baresip heard {DEFAULT_HZ} Hz: {l:?}");
    assert!(
        l.present(-40.0),
        "baresip hears the default microphone: {l:?} in {}",
        wav.display()
    );
    cli.quit();
}
