//! Private PulseAudio daemons for sound-device tests: each one has its own runtime directory
//! (socket `<dir>/pulse/native`), loads only the modules it is given and is stopped through
//! its [`Proc`] handle. `pactl` talks to it with `-s`.
//!
//! The softphone reaches a daemon through cpal's ALSA host: ALSA's `default` device goes to
//! the daemon named by `XDG_RUNTIME_DIR` (libasound2-plugins' pulse plugin), and a PCM of
//! type `pulse` with a `server` entry ([`alsa_pcm`]) reaches any other daemon. Stopping or
//! unloading what such a PCM points at is a device that disappears (unlike a sink of the
//! default daemon, whose streams PulseAudio itself moves to the default sink).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::Proc;
use crate::util;

pub const PULSEAUDIO: &str = "pulseaudio";
pub const PACTL: &str = "pactl";

pub struct PulseServer {
    proc: Proc,
    runtime: PathBuf,
}

impl PulseServer {
    /// Starts `pulseaudio` with runtime directory `dir/<name>` and `modules` (each a
    /// `module-name arg=value ...` line) after the native protocol; waits until `pactl info`
    /// answers.
    pub fn start(dir: &Path, name: &str, modules: &[&str]) -> PulseServer {
        let base = dir.join(name);
        let runtime = base.join("run");
        std::fs::create_dir_all(&runtime)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", runtime.display()));
        let mut cmd = Command::new(PULSEAUDIO);
        cmd.args([
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--system=false",
            "-n",
            "--load=module-native-protocol-unix auth-anonymous=1",
        ]);
        for m in modules {
            cmd.arg(format!("--load={m}"));
        }
        cmd.env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", &base)
            .env("XDG_CONFIG_HOME", base.join("config"));
        let proc = Proc::spawn(
            &format!("pulseaudio-{name}"),
            cmd,
            &dir.join(format!("pulseaudio-{name}.log")),
        );
        let mut server = PulseServer { proc, runtime };
        let up = util::wait_for(Duration::from_secs(10), || {
            server.proc.assert_running("while starting (see its log)");
            server.try_pactl(&["info"]).ok()
        });
        assert!(
            up.is_some(),
            "{}: pactl info never answered; log:\n{}",
            server.proc.name(),
            server.proc.log_tail(30)
        );
        server
    }

    /// The runtime directory (what `XDG_RUNTIME_DIR` must be for this daemon to be the
    /// default one of a client).
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime
    }

    /// The server address for `pactl -s` and ALSA's pulse plugin (`server`).
    pub fn address(&self) -> String {
        format!(
            "unix:{}",
            self.runtime.join("pulse").join("native").display()
        )
    }

    /// Runs `pactl -s <this server> args...`: its stdout, or the error text.
    pub fn try_pactl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(PACTL)
            .arg("-s")
            .arg(self.address())
            .args(args)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .output()
            .map_err(|e| format!("cannot run pactl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "pactl {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// [`PulseServer::try_pactl`], panicking on failure.
    pub fn pactl(&self, args: &[&str]) -> String {
        self.try_pactl(args)
            .unwrap_or_else(|e| panic!("{}: {e}", self.proc.name()))
    }

    /// Loads a module (`module-null-sink`, `sink_name=x ...`); returns its index.
    pub fn load_module(&self, module: &str, args: &[&str]) -> String {
        let mut all = vec!["load-module", module];
        all.extend_from_slice(args);
        self.pactl(&all).trim().to_string()
    }

    pub fn unload_module(&self, index: &str) {
        self.pactl(&["unload-module", index]);
    }

    /// Playback streams (`list sink-inputs`) whose properties mention `app`, with the index
    /// of the sink each plays to.
    pub fn sink_inputs_of(&self, app: &str) -> Vec<String> {
        streams_of(&self.pactl(&["list", "sink-inputs"]), "Sink: ", app)
    }

    /// Capture streams (`list source-outputs`) whose properties mention `app`, with the
    /// index of the source each records from.
    pub fn source_outputs_of(&self, app: &str) -> Vec<String> {
        streams_of(&self.pactl(&["list", "source-outputs"]), "Source: ", app)
    }

    /// Index of the sink or source `name` (`list short sinks|sources`).
    pub fn index_of(&self, kind: &str, name: &str) -> Option<String> {
        self.pactl(&["list", "short", kind]).lines().find_map(|l| {
            let mut f = l.split('\t');
            let idx = f.next()?;
            (f.next()? == name).then(|| idx.to_string())
        })
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }
}

impl Drop for PulseServer {
    fn drop(&mut self) {
        self.proc.stop(Duration::from_secs(3));
    }
}

/// From `pactl list sink-inputs|source-outputs` text: the device index (after `key`) of
/// every entry whose text contains `app`.
fn streams_of(listing: &str, key: &str, app: &str) -> Vec<String> {
    listing
        .split("\n\n")
        .filter(|entry| entry.contains(app))
        .filter_map(|entry| {
            entry
                .lines()
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
        })
        .collect()
}

/// An ALSA PCM definition (for an `asoundrc`) named `pcm` that reaches `device` (a sink or
/// source name) on the PulseAudio daemon at `server`; listed by ALSA (and so by cpal, as
/// `alsa:<pcm>`) with `description`.
pub fn alsa_pcm(pcm: &str, server: &str, device: &str, description: &str) -> String {
    format!(
        "pcm.{pcm} {{\n  type pulse\n  server \"{server}\"\n  device \"{device}\"\n  \
         hint {{\n    show on\n    description \"{description}\"\n  }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_picks_the_device_of_matching_entries() {
        let listing = "Sink Input #3\n\tDriver: protocol-native.c\n\tSink: 1\n\tProperties:\n\t\t\
                       application.name = \"ALSA plug-in [webphone-cli]\"\n\n\
                       Sink Input #4\n\tSink: 0\n\tProperties:\n\t\tapplication.name = \"pacat\"\n";
        assert_eq!(streams_of(listing, "Sink: ", "webphone-cli"), vec!["1"]);
        assert!(streams_of(listing, "Sink: ", "baresip").is_empty());
    }

    #[test]
    fn alsa_pcm_names_server_device_and_hint() {
        let pcm = alsa_pcm("headset", "unix:/x/native", "hs_out", "Test headset");
        assert!(pcm.starts_with("pcm.headset {"));
        assert!(pcm.contains("server \"unix:/x/native\""));
        assert!(pcm.contains("device \"hs_out\""));
        assert!(pcm.contains("description \"Test headset\""));
    }
}
