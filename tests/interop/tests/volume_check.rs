//! Issue 5, `checkvolumesettings`: the CLI runs on a private PulseAudio daemon (its
//! `XDG_RUNTIME_DIR`) whose default speaker is at 5 % and whose default microphone is muted;
//! cpal's and the mixer's ALSA `default` device is that daemon.
//!
//! - First start of a fresh profile, default value 1: the microphone is unmuted and the
//!   speaker raised to 50 %, as pactl reads them, and both changes are announced
//!   (`EVENT,EVENT,...`).
//! - Second start of the same profile (value 1): nothing is touched.
//! - Value 2: fixed again at that start; 0: never.
//!
//! Skips loudly without pulseaudio/pactl; fails instead when CI=true.

use std::time::Duration;

use webphone_interop::pulse::{PulseServer, PACTL, PULSEAUDIO};
use webphone_interop::{require_tools, serial, Cli, TestDir};

const WAIT: Duration = Duration::from_secs(15);

/// The first channel's level in percent from `pactl get-sink-volume` / `get-source-volume`
/// (`Volume: front-left: 3277 /   5% / -78.07 dB, ...`).
fn percent(pactl_out: &str) -> u32 {
    pactl_out
        .split('/')
        .nth(1)
        .and_then(|f| f.trim().strip_suffix('%'))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no level in {pactl_out:?}"))
}

fn speaker(pa: &PulseServer) -> u32 {
    percent(&pa.pactl(&["get-sink-volume", "spk"]))
}

fn mic_muted(pa: &PulseServer) -> bool {
    pa.pactl(&["get-source-mute", "mic.monitor"])
        .contains("yes")
}

fn spoil(pa: &PulseServer) {
    pa.pactl(&["set-sink-volume", "spk", "5%"]);
    pa.pactl(&["set-source-mute", "mic.monitor", "1"]);
    assert_eq!(speaker(pa), 5);
    assert!(mic_muted(pa));
}

/// Starts the CLI on `pa` with the profile in `work`, waits until its SIP stack runs (the
/// check happens before) and returns the volume announcements it made.
fn start_once(pa: &PulseServer, dir: &TestDir, work: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let runtime = format!("XDG_RUNTIME_DIR={}", pa.runtime_dir().display());
    let mut params = vec![("username", "vol"), ("register", "0"), ("transport", "0")];
    params.extend_from_slice(extra);
    let work = dir.path().join(work);
    let work_arg = work.display().to_string();
    let mut cli = Cli::start_wrapped(
        dir.path(),
        &["env".to_string(), runtime],
        &params,
        &["--work-dir", &work_arg],
    );
    cli.expect(|l| l.starts_with("START,sip"), WAIT);
    let said = cli.seen(|l| l.starts_with("EVENT,") && l.contains(" volume ("));
    for l in &said {
        eprintln!("seen: {l}");
    }
    cli.quit();
    said
}

#[test]
fn muted_microphone_and_quiet_speaker_are_fixed_at_the_first_run_of_a_profile() {
    let name = "volume_check";
    let _serial = serial();
    if !require_tools(name, &[PULSEAUDIO, PACTL]) {
        return;
    }
    let dir = TestDir::new(name);
    let pa = PulseServer::start(
        dir.path(),
        "pa-vol",
        &[
            "module-null-sink sink_name=spk rate=48000",
            "module-null-sink sink_name=mic rate=48000",
        ],
    );
    pa.pactl(&["set-default-sink", "spk"]);
    pa.pactl(&["set-default-source", "mic.monitor"]);
    pa.pactl(&["set-source-volume", "mic.monitor", "80%"]);
    spoil(&pa);

    // First run of the profile (checkvolumesettings defaults to 1).
    let said = start_once(&pa, &dir, "profile", &[]);
    assert_eq!(speaker(&pa), 50, "speaker raised to 50 %");
    assert!(!mic_muted(&pa), "microphone unmuted");
    assert_eq!(
        percent(&pa.pactl(&["get-source-volume", "mic.monitor"])),
        80,
        "a usable microphone level is left alone"
    );
    assert!(
        said.iter().any(|l| l.starts_with(
            "EVENT,EVENT,The recording volume (Capture on default) was muted: unmuted"
        )),
        "microphone fix announced: {said:?}"
    );
    assert!(
        said.iter().any(|l| l
            .starts_with("EVENT,EVENT,The playback volume (Master on default) was at ")
            && l.ends_with(": set to 50 %")),
        "speaker fix announced: {said:?}"
    );

    // Second run of the same profile: not its first run any more.
    spoil(&pa);
    let said = start_once(&pa, &dir, "profile", &[]);
    assert!(said.is_empty(), "nothing announced: {said:?}");
    assert_eq!(speaker(&pa), 5, "speaker untouched");
    assert!(mic_muted(&pa), "microphone untouched");

    // 2: at every start.
    let said = start_once(&pa, &dir, "profile", &[("checkvolumesettings", "2")]);
    assert_eq!(said.len(), 2, "{said:?}");
    assert_eq!(speaker(&pa), 50);
    assert!(!mic_muted(&pa));

    // 0: never, not even at a first run.
    spoil(&pa);
    let said = start_once(&pa, &dir, "fresh", &[("checkvolumesettings", "0")]);
    assert!(said.is_empty(), "{said:?}");
    assert_eq!(speaker(&pa), 5);
    assert!(mic_muted(&pa));
}
