//! Short local sounds that are not the ringtone: `beeponincoming` (a beep when a call
//! arrives), `beeponconnect` (a beep when a call connects) and `playdtmfsound` (the tones of
//! the DTMF digits we send, heard only by us).
//!
//! Each cue opens the ring device for its own short life (the device and level of the
//! ringtone, see `ringer`: `audiodevicering`, else the playback device unless that is a call
//! recording file) on its own task, so the engine never waits for a sound device and a call's
//! own audio streams stay untouched (the sound server mixes the streams).

use std::sync::Arc;
use std::time::Duration;

use tracing::debug;
use webphone_audio::AudioOutput;

use webphone_media::local::tones::{Segment, Sound, ToneGenerator, ToneKind, TonePlan};

use super::ringer::{open_ring_output, ring_device, RING_RATE as CUE_RATE};
use super::Core;
/// Length of each digit's tone and of the gap after it (`playdtmfsound`).
const DTMF_TONE_MS: u32 = 100;
const DTMF_GAP_MS: u32 = 60;
/// A pause character (space, comma) of a DTMF string, as sent (500 ms).
const DTMF_PAUSE_MS: u32 = 500;

/// `beeponconnect`: 1 auto-accepted incoming calls, 2 incoming, 3 outgoing, 4 all.
pub(crate) fn connect_beep_wanted(mode: i64, incoming: bool, auto_answered: bool) -> bool {
    match mode {
        1 => incoming && auto_answered,
        2 => incoming,
        3 => !incoming,
        4 => true,
        _ => false,
    }
}

/// `playdtmfsound`: 0 never, 1 when one digit is sent (a key pressed on the dial pad), 2 for
/// every `dtmf()`.
pub(crate) fn dtmf_feedback_wanted(mode: i64, digits: &str) -> bool {
    match mode {
        1 => digits.trim().chars().count() == 1,
        2 => !digits.trim().is_empty(),
        _ => false,
    }
}

/// The tones of a DTMF string, one after the other; pauses as silence.
fn dtmf_cue(digits: &str) -> Vec<Box<dyn Sound + Send>> {
    let mut out: Vec<Box<dyn Sound + Send>> = Vec::new();
    for c in digits.chars() {
        if c == ' ' || c == ',' {
            out.push(Box::new(ToneGenerator::new(
                CUE_RATE,
                &[Segment::silence(DTMF_PAUSE_MS)],
                false,
            )));
        } else if let Some(tone) = ToneGenerator::dtmf(c, CUE_RATE, DTMF_TONE_MS) {
            out.push(Box::new(tone));
            out.push(Box::new(ToneGenerator::new(
                CUE_RATE,
                &[Segment::silence(DTMF_GAP_MS)],
                false,
            )));
        }
    }
    out
}

impl Core {
    /// The `beeponincoming` beep for a call that has just been shown.
    pub(super) fn incoming_beep(&self) {
        if self.params.get_i64("beeponincoming").unwrap_or(0) == 1 {
            self.play_cue(vec![Box::new(ToneGenerator::standard(
                TonePlan::default(),
                ToneKind::IncomingBeep,
                CUE_RATE,
            ))]);
        }
    }

    /// The `beeponconnect` beep for a call that has just connected.
    pub(super) fn connect_beep(&self, incoming: bool, auto_answered: bool) {
        let mode = self.params.get_i64("beeponconnect").unwrap_or(0);
        if connect_beep_wanted(mode, incoming, auto_answered) {
            self.play_cue(vec![Box::new(ToneGenerator::standard(
                TonePlan::default(),
                ToneKind::ConnectBeep,
                CUE_RATE,
            ))]);
        }
    }

    /// `playdtmfsound`: the tones of `digits`, which are being sent.
    pub(super) fn dtmf_feedback(&self, digits: &str) {
        let mode = self.params.get_i64("playdtmfsound").unwrap_or(1);
        if dtmf_feedback_wanted(mode, digits) {
            self.play_cue(dtmf_cue(digits));
        }
    }

    /// Plays `sounds` one after the other on the ring device, on a task of its own.
    fn play_cue(&self, mut sounds: Vec<Box<dyn Sound + Send>>) {
        let Some(device) = ring_device(
            &self.params.get("audiodevicering"),
            &self.params.get("audiodeviceout"),
        ) else {
            return;
        };
        if sounds.is_empty() {
            return;
        }
        let volume: Arc<super::routing::Volume> = self.ring_volume.clone();
        tokio::spawn(async move {
            let mut out = match open_ring_output(&device).await {
                Ok((o, _)) => o,
                Err(e) => {
                    debug!("no device for a sound cue: {e}");
                    return;
                }
            };
            play_out(out.as_mut(), &mut sounds, CUE_RATE, &volume).await;
        });
    }
}

/// Plays `sounds` one after the other on `out` (opened at `rate`) in 20 ms frames at the
/// pace of a clock, scaled by `volume`, then a little silence so that the last samples leave
/// the device before it closes.
pub(super) async fn play_out(
    out: &mut dyn AudioOutput,
    sounds: &mut [Box<dyn Sound + Send>],
    rate: u32,
    volume: &super::routing::Volume,
) {
    let mut frame = vec![0i16; (rate / 50) as usize];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for sound in sounds.iter_mut() {
        while !sound.is_finished() {
            tick.tick().await;
            sound.read_frame(&mut frame);
            volume.scale(&mut frame);
            out.write_frame(&frame);
        }
    }
    frame.fill(0);
    for _ in 0..3 {
        tick.tick().await;
        out.write_frame(&frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_beep_modes_pick_their_calls() {
        // (mode, incoming, auto-answered) -> beep
        let cases = [
            (0, true, true, false),
            (1, true, true, true),
            (1, true, false, false),
            (1, false, false, false),
            (2, true, false, true),
            (2, false, false, false),
            (3, false, false, true),
            (3, true, true, false),
            (4, true, false, true),
            (4, false, false, true),
            (9, false, false, false),
        ];
        for (mode, incoming, auto, want) in cases {
            assert_eq!(
                connect_beep_wanted(mode, incoming, auto),
                want,
                "mode {mode} incoming {incoming} auto {auto}"
            );
        }
    }

    #[test]
    fn dtmf_feedback_for_single_keys_or_always() {
        assert!(dtmf_feedback_wanted(1, "5"));
        assert!(!dtmf_feedback_wanted(1, "123"));
        assert!(dtmf_feedback_wanted(2, "123"));
        assert!(!dtmf_feedback_wanted(0, "5"));
        assert!(!dtmf_feedback_wanted(2, " "));
    }

    #[test]
    fn dtmf_cue_has_a_tone_and_a_gap_per_digit_and_silence_for_pauses() {
        assert_eq!(dtmf_cue("1#").len(), 4);
        assert_eq!(dtmf_cue("1,2").len(), 5);
        assert!(dtmf_cue("xyz").is_empty());
    }
}
