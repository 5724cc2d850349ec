//! webphone-engine: everything `webphone_api` means, behind one async [`Phone`] handle.
//!
//! The engine owns the parameter registry, the lines, call control and the event stream. It
//! drives `webphone-sip` (signalling), `webphone-media` (RTP, codecs) and `webphone-audio`
//! (devices). Every front door (CLI, Tauri, local WebSocket service) calls [`Phone::api`] with a
//! function name and string arguments, and subscribes to [`Event`]s.

pub mod params;
pub mod profile;
pub mod reference;

pub mod accounts;
mod core;
pub mod dialing;
mod echo;
mod event;
pub mod integrations;
mod lines;
pub mod notify;
mod phone;
pub mod upnp;

pub use event::Event;
pub use phone::{default_work_dir, ApiError, ConfigError, Phone, PhoneOptions};
