//! `checkmicrophone` on a machine without any sound device: the softphone runs with an empty
//! ALSA configuration and no PulseAudio server (so cpal finds no capture device at all), and
//! calls a second webphone-cli on loopback. 2 refuses outgoing calls before anything is sent
//! and refuses incoming ones with 480; 1 (the default) calls and warns the user; 0 calls and
//! only logs.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::expect_connected;
use webphone_interop::{free_port, Cli, Params, TestDir};

const WAIT: Duration = Duration::from_secs(10);

/// `env` arguments that leave the child without sound devices.
fn no_devices(dir: &TestDir) -> Vec<String> {
    let conf = dir.join("empty-alsa.conf");
    std::fs::write(&conf, "").unwrap();
    vec![
        "env".into(),
        format!("ALSA_CONFIG_PATH={}", conf.display()),
        "PULSE_SERVER=unix:/nonexistent/pulse".into(),
    ]
}

/// A phone without sound devices (capture from the default device, which does not exist).
fn deviceless(dir: &TestDir, sub: &str, extra: &[(&str, &str)]) -> Cli {
    let mut params = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("audiodeviceout", "null");
    for (k, v) in extra {
        params = params.set(k, v);
    }
    let d = dir.join(sub);
    std::fs::create_dir_all(&d).unwrap();
    let mut cli = Cli::start_wrapped(&d, &no_devices(dir), &params.pairs(), &["--callbacks"]);
    cli.expect(|l| l == "START,sip", WAIT);
    cli
}

/// An answering phone with `null` devices on a known port; returns it and its URI.
fn callee(dir: &TestDir, sub: &str) -> (Cli, String) {
    let port = free_port();
    let params = Params::new()
        .set("username", "1002")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", port)
        .set("autoaccept", "true")
        .set("audiodevicein", "null")
        .set("audiodeviceout", "null");
    let d = dir.join(sub);
    std::fs::create_dir_all(&d).unwrap();
    let mut cli = Cli::start(&d, &params.pairs());
    cli.expect(|l| l == "START,sip", WAIT);
    (cli, format!("sip:1002@127.0.0.1:{port}"))
}

#[test]
fn checkmicrophone_2_refuses_calls_without_a_microphone() {
    let dir = TestDir::new("nomic2");
    let (mut bob, bob_uri) = callee(&dir, "bob");
    let mut alice = deviceless(&dir, "alice", &[("checkmicrophone", "2")]);
    let err = alice
        .api(&format!("call {bob_uri}"), WAIT)
        .expect_err("a call without a microphone is refused");
    assert!(err.contains("No microphone"), "{err}");
    alice.expect(|l| l.starts_with("EVENT,ERROR,No microphone"), WAIT);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        bob.seen(|l| l.contains("callSetup")).is_empty(),
        "nothing was sent to the callee"
    );

    // Incoming: answering needs the microphone too; the caller hears 480.
    let port = free_port();
    let mut carol = deviceless(
        &dir,
        "carol",
        &[
            ("checkmicrophone", "2"),
            ("signalingport", &port.to_string()),
            ("autoaccept", "true"),
        ],
    );
    bob.api_ok(&format!("call sip:1001@127.0.0.1:{port}"));
    let cdr = bob.expect_cdr(WAIT);
    assert!(cdr.reason.contains("480"), "{cdr:?}");
    carol.expect(|l| l.starts_with("EVENT,ERROR,No microphone"), WAIT);
    for c in [&mut alice, &mut bob, &mut carol] {
        c.quit();
    }
}

#[test]
fn checkmicrophone_1_warns_and_0_only_logs() {
    let dir = TestDir::new("nomic01");
    let (mut bob, bob_uri) = callee(&dir, "bob");
    for mode in ["1", "0"] {
        let mut alice = deviceless(&dir, &format!("alice{mode}"), &[("checkmicrophone", mode)]);
        let mark = alice.mark();
        alice.api_ok(&format!("call {bob_uri}"));
        expect_connected(&mut alice);
        // The devices open as the media starts, before or after the connect notification.
        let log = alice.expect_after(
            mark,
            |l| {
                (l.starts_with("EVENT,") || l.starts_with("LOG,"))
                    && l.contains("WARNING,Cannot open the recording device, sending silence")
            },
            WAIT,
        );
        if mode == "1" {
            assert!(log.starts_with("EVENT,WARNING,"), "{log}");
        } else {
            assert!(log.starts_with("LOG,WARNING,"), "{log}");
            assert!(
                alice
                    .seen(|l| l.starts_with("EVENT,WARNING,Cannot open the recording"))
                    .is_empty(),
                "0 shows nothing"
            );
        }
        alice.api_ok("hangup");
        alice.expect_cdr(WAIT);
        alice.quit();
    }
    bob.quit();
}

#[test]
fn useaudiodevicerecord_false_calls_without_touching_a_recorder() {
    let dir = TestDir::new("nomicskip");
    let (mut bob, bob_uri) = callee(&dir, "bob");
    // Even with checkmicrophone 2: no recorder is used, so none is needed.
    let mut alice = deviceless(
        &dir,
        "alice",
        &[("checkmicrophone", "2"), ("useaudiodevicerecord", "false")],
    );
    alice.api_ok(&format!("call {bob_uri}"));
    expect_connected(&mut alice);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        alice
            .seen(|l| l.contains("recording device") || l.contains("No microphone"))
            .is_empty(),
        "no recorder opened, nothing to warn about"
    );
    alice.api_ok("hangup");
    alice.expect_cdr(WAIT);
    alice.quit();
    bob.quit();
}
