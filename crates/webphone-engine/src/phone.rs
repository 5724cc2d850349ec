//! The [`Phone`] handle: one method per API function, one event subscription.

use std::path::PathBuf;

use tokio::sync::broadcast;

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
#[derive(Clone)]
pub struct Phone {
    events: broadcast::Sender<Event>,
}

impl Phone {
    pub fn new(_opts: PhoneOptions) -> Phone {
        let (events, _) = broadcast::channel(1024);
        Phone { events }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Calls one `webphone_api` function by name with string arguments.
    pub async fn api(&self, func: &str, args: Vec<String>) -> Result<serde_json::Value, ApiError> {
        let _ = (func, args);
        Err(ApiError::UnknownFunction)
    }
}
