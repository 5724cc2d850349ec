//! `checkvolumesettings`: a muted or nearly silent speaker or microphone control is brought
//! back to a usable level, so that a first call is not silent because of a mixer setting.
//!
//! 0 never; 1 (the default) once, at the first start of a profile; 2 at every start and
//! every time a call opens the sound devices. The controls are those of the card behind
//! `audiodevicein`/`audiodeviceout` ([`webphone_audio::volume`]); `null` and `file:`
//! devices have none. Each change is shown (`EVENT,EVENT,<text>` and `onDisplay`); a mixer
//! that cannot be read is only logged.

use tracing::debug;
use webphone_audio::volume::{self, VolumeError};
use webphone_audio::{DeviceSpec, Direction};

use super::Core;
use crate::notify::Severity;

/// When the check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Moment {
    /// The engine starts; `first_run` is the first start of the profile.
    Start { first_run: bool },
    /// A call is about to open the sound devices.
    DevicesOpen,
}

/// Whether `checkvolumesettings` = `mode` asks for a check at `moment`.
pub(super) fn wanted(mode: i64, moment: Moment) -> bool {
    match moment {
        Moment::Start { first_run } => mode >= 2 || (mode == 1 && first_run),
        Moment::DevicesOpen => mode >= 2,
    }
}

impl Core {
    /// Runs the check when `checkvolumesettings` asks for one at `moment`.
    pub(super) async fn check_volume(&self, moment: Moment) {
        let mode = self.params.get_i64("checkvolumesettings").unwrap_or(1);
        if !wanted(mode, moment) {
            return;
        }
        let specs = [
            (self.capture_spec(), Direction::Input),
            (
                DeviceSpec::parse(&self.params.get("audiodeviceout")),
                Direction::Output,
            ),
        ];
        // Mixer calls may talk to a sound server: off the engine task.
        let results = tokio::task::spawn_blocking(move || {
            specs
                .into_iter()
                .map(|(spec, dir)| (dir, volume::check_and_fix(&spec, dir)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (dir, result) in results {
            match result {
                Ok(fixes) => {
                    for fix in fixes {
                        self.display(Severity::Event, &fix.to_string());
                    }
                }
                Err(VolumeError::NoDevice) => {}
                Err(e) => debug!(?dir, error = %e, "volume check skipped"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkvolumesettings_modes() {
        let first = Moment::Start { first_run: true };
        let later = Moment::Start { first_run: false };
        let open = Moment::DevicesOpen;
        assert!(!wanted(0, first) && !wanted(0, later) && !wanted(0, open));
        assert!(wanted(1, first) && !wanted(1, later) && !wanted(1, open));
        assert!(wanted(2, first) && wanted(2, later) && wanted(2, open));
    }
}
