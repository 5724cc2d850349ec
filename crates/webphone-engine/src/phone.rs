//! The [`Phone`] handle: one method per API function, one event subscription.

use std::path::PathBuf;

use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::warn;

use crate::core::{Cmd, Core};
use crate::params::ParamStore;
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
            if let Err(e) = params.set(k, v) {
                warn!("ignoring parameter {k}: {e}");
            }
        }
        Self::spawn(params, opts.work_dir.unwrap_or_else(default_work_dir))
    }

    /// Like [`Phone::new`] but fails on the first invalid initial parameter.
    pub fn try_new(opts: PhoneOptions) -> Result<Phone, ConfigError> {
        let mut params = ParamStore::new();
        for (k, v) in &opts.params {
            params.set(k, v).map_err(|e| ConfigError(e.to_string()))?;
        }
        Ok(Self::spawn(
            params,
            opts.work_dir.unwrap_or_else(default_work_dir),
        ))
    }

    fn spawn(params: ParamStore, work_dir: PathBuf) -> Phone {
        let (events, _) = broadcast::channel(4096);
        let (cmds, rx) = mpsc::unbounded_channel();
        let mut core = Core::new(params, events.clone(), cmds.clone());
        core.set_work_dir(work_dir);
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
