//! The [`Phone`] handle: one method per API function, one event subscription.

use std::path::PathBuf;

use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::warn;

use crate::core::{Cmd, Core};
use crate::params::{ParamStore, Source};
use crate::profile::Profile;
use crate::Event;

/// How a [`Phone`] starts: initial parameters (from the command line, a config file, the desktop
/// app's store) and the profile's work directory.
#[derive(Debug, Clone, Default)]
pub struct PhoneOptions {
    pub params: Vec<(String, String)>,
    pub work_dir: Option<PathBuf>,
}

/// An API call that could not be done; the message is shown to the integrator as is.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ApiError {
    #[error("unknown function")]
    UnknownFunction,
    #[error("{0}")]
    BadArgument(String),
    #[error("{0}")]
    Failed(String),
}

/// Cheap-to-clone handle to the phone engine.
///
/// Create it inside a tokio runtime: the engine runs as a task of that runtime. Nothing is sent
/// on the event stream before the first API call (`start` emits `START,api`), so subscribe
/// first, then call.
#[derive(Clone)]
pub struct Phone {
    events: broadcast::Sender<Event>,
    cmds: mpsc::UnboundedSender<Cmd>,
}

/// Why [`Phone::new`] refused its options.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("invalid parameter: {0}")]
pub struct ConfigError(pub String);

impl Phone {
    /// Starts the engine task with the given initial parameters; invalid ones are skipped with
    /// a warning (use [`Phone::try_new`] to refuse them).
    pub fn new(opts: PhoneOptions) -> Phone {
        let mut params = ParamStore::new();
        for (k, v) in &opts.params {
            if let Err(e) = params.set_from(Source::Static, k, v) {
                warn!("ignoring parameter {k}: {e}");
            }
        }
        Self::spawn(params, opts.work_dir)
    }

    /// Like [`Phone::new`] but fails on the first invalid initial parameter.
    pub fn try_new(opts: PhoneOptions) -> Result<Phone, ConfigError> {
        let mut params = ParamStore::new();
        for (k, v) in &opts.params {
            params
                .set_from(Source::Static, k, v)
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        Ok(Self::spawn(params, opts.work_dir))
    }

    /// With a work folder the profile database is opened and its stored settings loaded
    /// under the start-up values (behaviours §2.2); without one nothing is persisted.
    fn spawn(mut params: ParamStore, work_dir: Option<PathBuf>) -> Phone {
        let (events, _) = broadcast::channel(4096);
        let (cmds, rx) = mpsc::unbounded_channel();
        let profile = work_dir
            .as_deref()
            .and_then(|dir| open_profile(dir, &mut params));
        let mut core = Core::new(params, events.clone(), cmds.clone());
        core.set_work_dir(work_dir.unwrap_or_else(default_work_dir));
        core.set_profile(profile);
        tokio::spawn(core.run(rx));
        Phone { events, cmds }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Calls one `webphone_api` function by name with string arguments.
    pub async fn api(&self, func: &str, args: Vec<String>) -> Result<serde_json::Value, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Api {
                func: func.to_string(),
                args,
                reply,
            })
            .map_err(|_| ApiError::Failed("the engine has stopped".into()))?;
        rx.await
            .map_err(|_| ApiError::Failed("the engine has stopped".into()))?
    }
}

/// The per-user data folder of the engine when none is given: `$XDG_DATA_HOME/webphone`
/// (`~/.local/share/webphone`), `%APPDATA%\webphone` on Windows,
/// `~/Library/Application Support/webphone` on macOS.
pub fn default_work_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = if cfg!(windows) {
        env("APPDATA")
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library/Application Support"))
    } else {
        env("XDG_DATA_HOME").or_else(|| env("HOME").map(|h| h.join(".local/share")))
    };
    base.unwrap_or_else(std::env::temp_dir).join("webphone")
}

/// Opens the profile named by the `profile` parameter under `dir`, loads its stored settings
/// (a damaged database is moved aside and started afresh), honours `resetsettings`, and
/// stores the start-up values. Errors leave the phone running without persistence.
pub(crate) fn open_profile(dir: &std::path::Path, params: &mut ParamStore) -> Option<Profile> {
    let name = params.get("profile");
    let (mut profile, recovered) = match Profile::open_or_recover(dir, &name) {
        Ok(p) => p,
        Err(e) => {
            warn!("settings are not saved: {e}");
            return None;
        }
    };
    if let Some(e) = recovered {
        warn!("the settings database was damaged and has been started afresh: {e}");
    }
    if params.get_bool("resetsettings") == Some(true) {
        if let Err(e) = profile.delete_settings() {
            warn!("resetsettings: {e}");
        }
        params.clear_stored();
    } else {
        match profile.load_settings() {
            Ok(rows) => {
                for (name, e) in params.load_stored(rows) {
                    warn!("stored value of {name} ignored: {e}");
                }
            }
            Err(e) => warn!("stored settings could not be read: {e}"),
        }
    }
    let queue = params.take_persist_queue();
    if let Err(e) = profile.write_settings(&queue) {
        warn!("settings could not be saved: {e}");
        params.requeue(queue);
    }
    Some(profile)
}
