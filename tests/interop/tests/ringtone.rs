//! The ringtone: an incoming call rings on `audiodevicering` (here a `file:` device, so the
//! test can listen to it) until it is answered or refused; `playring=0` keeps it silent.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use webphone_interop::flows::{start_cli, WAIT};
use webphone_interop::{free_port, require_tools, serial, tone_level, Params, Sipp, TestDir, SIPP};

/// Rings the phone for 2 s from SIPp, refuses the call; returns the ring device's WAV.
fn ring(name: &str, playring: &str) -> (TestDir, std::path::PathBuf) {
    let dir = TestDir::new(name);
    let port = free_port();
    let ring = dir.join("ring.wav");
    let (params, _rec) = Params::new()
        .set("username", "1001")
        .set("register", "0")
        .set("transport", "0")
        .set("signalingport", port)
        .set("playring", playring)
        .set("audiodevicering", format!("file:{}", ring.display()))
        .with_file_audio(&dir);
    let mut cli = start_cli(&dir, &params);
    let mut uac = Sipp::uac(dir.path(), &format!("127.0.0.1:{port}"), "1001", 500);
    cli.expect(|l| l.contains("callRinging"), WAIT);
    std::thread::sleep(Duration::from_secs(2));
    cli.api_ok("reject");
    let _ = uac.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    cli.quit();
    (dir, ring)
}

#[test]
fn incoming_call_rings_on_the_ring_device() {
    let _serial = serial();
    if !require_tools("ringtone_on", &[SIPP]) {
        return;
    }
    let (_dir, ring) = ring("ringtone_on", "1");
    assert!(ring.exists(), "the ring device was not opened");
    // The ringtone warbles between 800 and 1000 Hz.
    let t = tone_level(&ring, 800.0);
    assert!(t.dbfs >= -35.0, "no ringtone heard: {t:?}");
}

#[test]
fn playring_0_keeps_the_phone_silent() {
    let _serial = serial();
    if !require_tools("ringtone_off", &[SIPP]) {
        return;
    }
    let (_dir, ring) = ring("ringtone_off", "0");
    assert!(!ring.exists(), "playring=0 must not open the ring device");
}
