//! `checkvolumesettings`: finds a muted or nearly silent playback or capture control on the
//! sound card a call uses and brings it back to a usable level.
//!
//! The decision ([`decide`]) is pure; reading and writing the controls is per platform. On
//! Linux it is the ALSA simple mixer of the device's card (`default` when the device is the
//! system default or PulseAudio: the pulse plugin's `Master` and `Capture` controls are the
//! default sink's and source's volumes). Other platforms report [`VolumeError::Unsupported`].

use std::fmt;

use crate::{DeviceSpec, Direction};

/// A control at or below this share of its range counts as too low.
pub const TOO_LOW_PERCENT: u8 = 10;
/// What a too-low control is raised to.
pub const RAISE_TO_PERCENT: u8 = 50;

/// A control as read: switched off or not, and its level in percent of its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlState {
    pub muted: bool,
    pub percent: u8,
}

/// What to change on one control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub unmute: bool,
    /// The new level in percent, when the old one was too low.
    pub raise_to: Option<u8>,
}

/// Decides what a control needs: unmuting when switched off, raising to
/// [`RAISE_TO_PERCENT`] when at or below [`TOO_LOW_PERCENT`]; `None` when it is usable.
pub fn decide(state: ControlState) -> Option<Change> {
    let raise_to = (state.percent <= TOO_LOW_PERCENT).then_some(RAISE_TO_PERCENT);
    (state.muted || raise_to.is_some()).then_some(Change {
        unmute: state.muted,
        raise_to,
    })
}

/// One control that was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeFix {
    pub direction: Direction,
    /// The mixer (ALSA control device), e.g. `default` or `hw:CARD=PCH`.
    pub mixer: String,
    /// The control, e.g. `Master` or `Capture`.
    pub control: String,
    pub before: ControlState,
    pub change: Change,
}

impl fmt::Display for VolumeFix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.direction {
            Direction::Input => "recording",
            Direction::Output => "playback",
        };
        write!(
            f,
            "The {what} volume ({} on {}) was {}",
            self.control,
            self.mixer,
            match (self.before.muted, self.change.raise_to.is_some()) {
                (true, true) => format!("muted and at {} %", self.before.percent),
                (true, false) => "muted".to_string(),
                _ => format!("at {} %", self.before.percent),
            }
        )?;
        match (self.change.unmute, self.change.raise_to) {
            (true, Some(p)) => write!(f, ": unmuted and set to {p} %"),
            (true, None) => write!(f, ": unmuted"),
            (false, Some(p)) => write!(f, ": set to {p} %"),
            (false, None) => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("checking the volume is not supported on this platform")]
    Unsupported,
    #[error("no volume to check for this device")]
    NoDevice,
    #[error("mixer {mixer}: {reason}")]
    Mixer { mixer: String, reason: String },
}

/// The ALSA control device of the card behind `spec`: `hw:CARD=<name>` for a device id
/// naming a card (`alsa:plughw:CARD=PCH,DEV=0`, `alsa:hw:1,0`), else `default` (the
/// system default, PulseAudio or PipeWire). `None` for `null` and `file:` devices.
pub fn mixer_for(spec: &DeviceSpec) -> Option<String> {
    let id = match spec {
        DeviceSpec::Null | DeviceSpec::File(_) => return None,
        DeviceSpec::Default => return Some("default".into()),
        DeviceSpec::Device(id) => id,
    };
    let Some(alsa) = id.strip_prefix("alsa:") else {
        return Some("default".into());
    };
    let (_, args) = alsa.split_once(':').unwrap_or((alsa, ""));
    if let Some(card) = args
        .split(',')
        .find_map(|a| a.trim().strip_prefix("CARD="))
        .filter(|c| !c.is_empty())
    {
        return Some(format!("hw:CARD={card}"));
    }
    // `hw:1,0` / `plughw:1`: the first argument is the card number.
    if let Some(n) = args
        .split(',')
        .next()
        .filter(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()))
    {
        return Some(format!("hw:{n}"));
    }
    if alsa.eq_ignore_ascii_case("pulse") || alsa.eq_ignore_ascii_case("pipewire") {
        return Some(alsa.to_ascii_lowercase());
    }
    Some("default".into())
}

/// Checks the controls of `dir` on the card behind `spec` and fixes the ones [`decide`]
/// flags; returns what it changed (nothing when all were fine).
pub fn check_and_fix(spec: &DeviceSpec, dir: Direction) -> Result<Vec<VolumeFix>, VolumeError> {
    let mixer = mixer_for(spec).ok_or(VolumeError::NoDevice)?;
    platform::check_and_fix(&mixer, dir)
}

#[cfg(target_os = "linux")]
mod platform {
    use alsa::mixer::{Mixer, Selem, SelemChannelId};

    use super::{decide, ControlState, VolumeError, VolumeFix};
    use crate::Direction;

    /// The controls looked at, best first: the first one present of each direction is
    /// the one a user's volume slider moves.
    const PLAYBACK: &[&str] = &["Master", "PCM", "Speaker", "Headphone"];
    const CAPTURE: &[&str] = &["Capture", "Mic", "Internal Mic", "Front Mic"];

    /// The simple-mixer calls of one direction (ALSA names each one per direction).
    struct Ops {
        names: &'static [&'static str],
        has_volume: fn(&Selem<'_>) -> bool,
        range: fn(&Selem<'_>) -> (i64, i64),
        volume: fn(&Selem<'_>, SelemChannelId) -> alsa::Result<i64>,
        set_volume_all: fn(&Selem<'_>, i64) -> alsa::Result<()>,
        has_switch: fn(&Selem<'_>) -> bool,
        switch: fn(&Selem<'_>, SelemChannelId) -> alsa::Result<i32>,
        set_switch_all: fn(&Selem<'_>, i32) -> alsa::Result<()>,
    }

    const OUTPUT: Ops = Ops {
        names: PLAYBACK,
        has_volume: |s| s.has_playback_volume(),
        range: |s| s.get_playback_volume_range(),
        volume: |s, ch| s.get_playback_volume(ch),
        set_volume_all: |s, v| s.set_playback_volume_all(v),
        has_switch: |s| s.has_playback_switch(),
        switch: |s, ch| s.get_playback_switch(ch),
        set_switch_all: |s, v| s.set_playback_switch_all(v),
    };

    const INPUT: Ops = Ops {
        names: CAPTURE,
        has_volume: |s| s.has_capture_volume(),
        range: |s| s.get_capture_volume_range(),
        volume: |s, ch| s.get_capture_volume(ch),
        set_volume_all: |s, v| s.set_capture_volume_all(v),
        has_switch: |s| s.has_capture_switch(),
        switch: |s, ch| s.get_capture_switch(ch),
        set_switch_all: |s, v| s.set_capture_switch_all(v),
    };

    pub(super) fn check_and_fix(
        mixer: &str,
        dir: Direction,
    ) -> Result<Vec<VolumeFix>, VolumeError> {
        let err = |e: alsa::Error| VolumeError::Mixer {
            mixer: mixer.to_string(),
            reason: e.to_string(),
        };
        let m = Mixer::new(mixer, false).map_err(err)?;
        let ops = match dir {
            Direction::Output => &OUTPUT,
            Direction::Input => &INPUT,
        };
        // Only the first control present: the others are below it in the chain.
        let Some((name, selem)) = ops.names.iter().find_map(|name| {
            m.iter()
                .filter_map(Selem::new)
                .find(|s| s.get_id().get_name().is_ok_and(|n| n == *name))
                .map(|s| (*name, s))
        }) else {
            return Ok(Vec::new());
        };
        let Some(before) = read(&selem, ops) else {
            return Ok(Vec::new());
        };
        let Some(change) = decide(before) else {
            return Ok(Vec::new());
        };
        apply(&selem, ops, change).map_err(err)?;
        Ok(vec![VolumeFix {
            direction: dir,
            mixer: mixer.to_string(),
            control: name.to_string(),
            before,
            change,
        }])
    }

    fn read(s: &Selem<'_>, ops: &Ops) -> Option<ControlState> {
        let ch = SelemChannelId::FrontLeft;
        let has_volume = (ops.has_volume)(s);
        let switch = (ops.has_switch)(s)
            .then(|| (ops.switch)(s, ch).ok())
            .flatten();
        if !has_volume && switch.is_none() {
            return None;
        }
        let (min, max) = (ops.range)(s);
        let percent = match (ops.volume)(s, ch) {
            Ok(v) if has_volume && max > min => {
                (((v - min) * 100) / (max - min)).clamp(0, 100) as u8
            }
            // A switch without a volume: its level cannot be too low.
            _ => 100,
        };
        Some(ControlState {
            muted: switch == Some(0),
            percent,
        })
    }

    fn apply(s: &Selem<'_>, ops: &Ops, change: super::Change) -> alsa::Result<()> {
        if change.unmute {
            (ops.set_switch_all)(s, 1)?;
        }
        if let Some(p) = change.raise_to.filter(|_| (ops.has_volume)(s)) {
            let (min, max) = (ops.range)(s);
            (ops.set_volume_all)(s, min + (max - min) * i64::from(p) / 100)?;
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use super::{VolumeError, VolumeFix};
    use crate::Direction;

    pub(super) fn check_and_fix(
        _mixer: &str,
        _dir: Direction,
    ) -> Result<Vec<VolumeFix>, VolumeError> {
        Err(VolumeError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muted_or_nearly_silent_controls_are_fixed_usable_ones_left_alone() {
        let st = |muted, percent| ControlState { muted, percent };
        assert_eq!(decide(st(false, 75)), None);
        assert_eq!(decide(st(false, 11)), None);
        assert_eq!(
            decide(st(true, 75)),
            Some(Change {
                unmute: true,
                raise_to: None
            })
        );
        assert_eq!(
            decide(st(false, 10)),
            Some(Change {
                unmute: false,
                raise_to: Some(RAISE_TO_PERCENT)
            })
        );
        assert_eq!(
            decide(st(true, 0)),
            Some(Change {
                unmute: true,
                raise_to: Some(RAISE_TO_PERCENT)
            })
        );
    }

    #[test]
    fn device_ids_map_to_their_cards_mixer() {
        let m = |s: &str| mixer_for(&DeviceSpec::parse(s));
        assert_eq!(m("null"), None);
        assert_eq!(m("file:/tmp/x.wav"), None);
        assert_eq!(m(""), Some("default".into()));
        assert_eq!(m("alsa:default"), Some("default".into()));
        assert_eq!(m("alsa:pulse"), Some("pulse".into()));
        assert_eq!(m("alsa:plughw:CARD=PCH,DEV=0"), Some("hw:CARD=PCH".into()));
        assert_eq!(
            m("alsa:sysdefault:CARD=Headset"),
            Some("hw:CARD=Headset".into())
        );
        assert_eq!(m("alsa:hw:1,0"), Some("hw:1".into()));
        assert_eq!(m("USB Headset"), Some("default".into()));
    }

    #[test]
    fn fixes_read_as_sentences() {
        let fix = VolumeFix {
            direction: Direction::Input,
            mixer: "default".into(),
            control: "Capture".into(),
            before: ControlState {
                muted: true,
                percent: 5,
            },
            change: Change {
                unmute: true,
                raise_to: Some(50),
            },
        };
        assert_eq!(
            fix.to_string(),
            "The recording volume (Capture on default) was muted and at 5 %: unmuted and set to 50 %"
        );
        let fix = VolumeFix {
            direction: Direction::Output,
            before: ControlState {
                muted: false,
                percent: 3,
            },
            change: Change {
                unmute: false,
                raise_to: Some(50),
            },
            control: "Master".into(),
            ..fix
        };
        assert_eq!(
            fix.to_string(),
            "The playback volume (Master on default) was at 3 %: set to 50 %"
        );
    }
}
