//! Start at login and global shortcuts, both off unless the user switches them on with engine
//! parameters of ours (stored by the engine like any other parameter):
//!
//! - `startatlogin` (default false): the OS starts the app at login, in the tray (`--minimized`):
//!   an XDG autostart entry on Linux, a launch agent on macOS, the Run registry key on Windows
//!   (tauri-plugin-autostart). Switching it off removes the entry.
//! - `shortcutanswer`, `shortcuthangup` (default empty = none): global shortcuts such as
//!   `CommandOrControl+Alt+A` (tauri-plugin-global-shortcut accelerator syntax). Answer accepts
//!   the ringing incoming call, hang-up ends the current call. The shortcut plugin is loaded only
//!   once a shortcut is configured, so nothing grabs keys by default.
//!
//! [`apply`] brings the OS in line with the parameters at start and whenever one of them is set.

use std::str::FromStr;
use std::sync::Mutex;

use tauri::{AppHandle, Manager};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_global_shortcut::{GlobalShortcutExt, Shortcut, ShortcutEvent, ShortcutState};

use crate::desktop::{truthy, Shell};

/// The argument start at login adds (see [`crate::options`]).
pub const MINIMIZED_ARG: &str = "--minimized";

/// What a global shortcut does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortcutAction {
    Answer,
    Hangup,
}

impl ShortcutAction {
    const ALL: [(ShortcutAction, &'static str); 2] = [
        (ShortcutAction::Answer, "shortcutanswer"),
        (ShortcutAction::Hangup, "shortcuthangup"),
    ];

    fn name(self) -> &'static str {
        match self {
            ShortcutAction::Answer => "answer",
            ShortcutAction::Hangup => "hangup",
        }
    }
}

/// The shortcuts registered now (with their accelerator text).
#[derive(Default)]
pub struct Shortcuts(Mutex<Vec<(Shortcut, String, ShortcutAction)>>);

fn registered(app: &AppHandle) -> Option<tauri::State<'_, Shortcuts>> {
    app.try_state::<Shortcuts>()
}

/// Parses an accelerator (`Ctrl+Alt+A`, `CommandOrControl+Shift+H`, ...); empty = none.
pub fn parse_shortcut(text: &str) -> Result<Option<Shortcut>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    Shortcut::from_str(text)
        .map(Some)
        .map_err(|e| format!("shortcut {text:?}: {e}"))
}

/// Brings the autostart entry and the global shortcuts in line with the parameters.
pub async fn apply(app: &AppHandle, shell: &Shell) {
    apply_autostart(app, truthy(&shell.param("startatlogin").await, false));
    let mut wanted = Vec::new();
    for (action, param) in ShortcutAction::ALL {
        let text = shell.param(param).await;
        match parse_shortcut(&text) {
            Ok(Some(s)) => wanted.push((s, text.trim().to_string(), action)),
            Ok(None) => {}
            Err(e) => tracing::warn!(param, "ignoring {e}"),
        }
    }
    apply_shortcuts(app, wanted);
}

fn apply_autostart(app: &AppHandle, on: bool) {
    let Some(manager) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() else {
        return;
    };
    let enabled = manager.is_enabled().unwrap_or(false);
    if enabled == on {
        return;
    }
    let res = if on {
        manager.enable()
    } else {
        manager.disable()
    };
    match res {
        Ok(()) => tracing::info!(on, "start at login"),
        Err(e) => tracing::warn!(on, error = %e, "could not change start at login"),
    }
}

/// Whether the OS starts the app at login.
pub fn autostart_enabled(app: &AppHandle) -> Result<bool, String> {
    app.autolaunch().is_enabled().map_err(|e| e.to_string())
}

fn apply_shortcuts(app: &AppHandle, wanted: Vec<(Shortcut, String, ShortcutAction)>) {
    let current: Vec<_> = registered(app)
        .map(|s| s.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .unwrap_or_default();
    let same = current.len() == wanted.len()
        && current
            .iter()
            .zip(&wanted)
            .all(|(a, b)| a.0 == b.0 && a.2 == b.2);
    if same {
        return;
    }
    if registered(app).is_none() {
        if wanted.is_empty() {
            return;
        }
        // First shortcut: load the plugin now (it opens the OS's hot-key machinery).
        let plugin = tauri_plugin_global_shortcut::Builder::new()
            .with_handler(on_shortcut)
            .build();
        if let Err(e) = app.plugin(plugin) {
            tracing::warn!(error = %e, "global shortcuts unavailable");
            return;
        }
        app.manage(Shortcuts::default());
    }
    let gs = app.global_shortcut();
    for (s, text, _) in &current {
        if let Err(e) = gs.unregister(*s) {
            tracing::debug!(shortcut = %text, error = %e, "unregister failed");
        }
    }
    let mut now = Vec::new();
    for (s, text, action) in wanted {
        match gs.register(s) {
            Ok(()) => {
                tracing::info!(shortcut = %text, action = action.name(), "global shortcut");
                now.push((s, text, action));
            }
            Err(e) => {
                tracing::warn!(shortcut = %text, error = %e, "could not register the global shortcut")
            }
        }
    }
    if let Some(st) = registered(app) {
        *st.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }
}

/// The registered shortcuts as `{"answer": "Ctrl+Alt+A", ...}` (tests and the log).
pub fn registered_shortcuts(app: &AppHandle) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    if let Some(st) = registered(app) {
        for (_, text, action) in st.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            m.insert(action.name().into(), text.clone().into());
        }
    }
    serde_json::Value::Object(m)
}

fn on_shortcut(app: &AppHandle, shortcut: &Shortcut, ev: ShortcutEvent) {
    if ev.state != ShortcutState::Pressed {
        return;
    }
    let action = registered(app).and_then(|st| {
        st.0.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(s, _, _)| s == shortcut)
            .map(|(_, _, a)| *a)
    });
    let Some(action) = action else { return };
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Err(e) = run_action(&app, action).await {
            tracing::info!(action = action.name(), "shortcut: {e}");
        }
    });
}

/// Runs a shortcut's action by name (`answer`, `hangup`): what pressing it does.
pub async fn run_shortcut(app: &AppHandle, name: &str) -> Result<(), String> {
    let action = ShortcutAction::ALL
        .iter()
        .map(|(a, _)| *a)
        .find(|a| a.name() == name)
        .ok_or_else(|| format!("unknown shortcut action {name}"))?;
    run_action(app, action).await
}

async fn run_action(app: &AppHandle, action: ShortcutAction) -> Result<(), String> {
    let shell = app
        .try_state::<std::sync::Arc<Shell>>()
        .map(|s| s.inner().clone())
        .ok_or("not started")?;
    match action {
        ShortcutAction::Answer => shell.answer_ringing(app).await,
        ShortcutAction::Hangup => shell
            .phone
            .api("hangup", Vec::new())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerators() {
        assert_eq!(parse_shortcut(" ").unwrap(), None);
        let a = parse_shortcut("Ctrl+Alt+A").unwrap().unwrap();
        assert_eq!(a, parse_shortcut("control+alt+KeyA").unwrap().unwrap());
        assert!(parse_shortcut("CommandOrControl+Shift+H")
            .unwrap()
            .is_some());
        assert!(parse_shortcut("Ctrl+Nope").is_err());
    }
}
