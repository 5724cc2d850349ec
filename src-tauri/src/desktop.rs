//! The desktop shell around the softphone page: tray icon and menu, close-to-tray, remembered
//! window geometry, do-not-disturb, the incoming-call pop-up (and link-call confirmation) window,
//! OS notifications, links, and the password in the keyring.
//!
//! Parameters of ours (stored by the engine like any unknown parameter):
//! - `closetotray` (default true): closing the main window hides it; the tray's Quit ends the app.
//!   When it is not set, the catalog's `backgroundcalls` decides (0: closing quits; this app
//!   starts with `backgroundcalls=1`, which a stored user setting overrides).
//! - `confirmlinkcalls` (default false): `sip:`/`tel:`/... links ask before dialling.
//! - `startminimized` (default false): start in the tray without showing the main window.
//! - `startatlogin` (default false), `shortcutanswer`, `shortcuthangup` (default empty): see
//!   [`crate::system`].
//!
//! Do-not-disturb: the engine has no DND parameter, so DND sets `autoignore=2` (incoming calls
//! are rejected) and restores the previous `autoignore` value when switched off; the state
//! survives restarts in `desktop-state.json`.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};
use webphone_engine::{Event, Phone};

use crate::links::{self, LinkAction};
use crate::secrets;
use crate::state::{self, DesktopState, WindowGeometry};
use crate::status::{Change, Incoming, Tracker, CALL_ID};
use crate::tray_icon::{RegBadge, TrayLook, TRAY_SIZE};

pub const MAIN_WINDOW: &str = "main";
pub const POPUP_WINDOW: &str = "popup";
const POPUP_PAGE: &str = "popup/popup.html";
/// An incoming call is shown only if it still rings after this (auto-answered calls never pop up).
const POPUP_DELAY: Duration = Duration::from_millis(300);
/// The notification action type of incoming calls (buttons Accept, Reject and Ignore).
const INCOMING_ACTIONS: &str = "incoming-call";

/// What the pop-up window shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PopupContent {
    /// An incoming call: Accept / Reject / Ignore.
    Incoming(Incoming),
    /// A link asks to dial `number`: Call / Cancel.
    Confirm { number: String },
}

struct TrayParts {
    tray: TrayIcon,
    status: MenuItem<tauri::Wry>,
    missed: MenuItem<tauri::Wry>,
    dnd: CheckMenuItem<tauri::Wry>,
    recent: Submenu<tauri::Wry>,
    calls: Submenu<tauri::Wry>,
}

/// Menu ids of the recent numbers: `recent:<index>`.
const RECENT_ID: &str = "recent:";

/// The shell's state, managed by Tauri.
pub struct Shell {
    pub phone: Phone,
    product: String,
    identifier: String,
    state_file: Option<PathBuf>,
    state: Mutex<DesktopState>,
    tracker: Mutex<Tracker>,
    popup: Mutex<Option<PopupContent>>,
    tray: Mutex<Option<TrayParts>>,
    /// The brand's icon (RGBA, width, height): the base of the tray pictures.
    tray_base: Mutex<Option<(Vec<u8>, u32, u32)>>,
    /// The [`TrayLook::id`] of the picture the tray shows now.
    tray_icon: Mutex<Option<String>>,
    /// A delayed write of the window geometry is scheduled.
    save_pending: std::sync::atomic::AtomicBool,
}

/// How long after the last move or resize the geometry is written.
const GEOMETRY_SAVE_DELAY: Duration = Duration::from_millis(400);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether closing the main window leaves the phone running in the tray (it keeps listening
/// for calls and chats): our `closetotray` when it is set, else the catalog's
/// `backgroundcalls` (-1 auto and 1: yes, 0: no; this app's built-in value is 1, see
/// `main.rs`).
pub fn keeps_running_when_closed(closetotray: &str, backgroundcalls: &str) -> bool {
    if !closetotray.trim().is_empty() {
        return truthy(closetotray, true);
    }
    backgroundcalls.trim() != "0"
}

pub fn truthy(v: &str, default: bool) -> bool {
    match v.trim().to_ascii_lowercase().as_str() {
        "" => default,
        "0" | "false" | "no" | "off" => false,
        _ => true,
    }
}

impl Shell {
    pub fn new(
        phone: Phone,
        product: String,
        identifier: String,
        work_dir: Option<PathBuf>,
    ) -> Shell {
        let state_file = work_dir.as_deref().map(state::path);
        let st = state_file.as_deref().map(state::load).unwrap_or_default();
        Shell {
            phone,
            product,
            identifier,
            state_file,
            state: Mutex::new(st),
            tracker: Mutex::new(Tracker::default()),
            popup: Mutex::new(None),
            tray: Mutex::new(None),
            tray_base: Mutex::new(None),
            tray_icon: Mutex::new(None),
            save_pending: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn saved_window(&self) -> Option<WindowGeometry> {
        lock(&self.state).window
    }

    /// Keeps the main window's geometry and writes it shortly after the last change (a resize
    /// drag sends many events; the app may also end without a clean exit).
    pub fn remember_window(self: &std::sync::Arc<Self>, g: WindowGeometry) {
        if !g.sane() {
            return;
        }
        {
            let mut st = lock(&self.state);
            if st.window == Some(g) {
                return;
            }
            st.window = Some(g);
        }
        if self
            .save_pending
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let shell = self.clone();
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(GEOMETRY_SAVE_DELAY).await;
            shell
                .save_pending
                .store(false, std::sync::atomic::Ordering::Release);
            shell.save_state();
        });
    }

    pub fn save_state(&self) {
        let Some(f) = &self.state_file else { return };
        let st = lock(&self.state).clone();
        if let Err(e) = state::save(f, &st) {
            tracing::warn!(error = %e, file = %f.display(), "could not save the desktop state");
        }
    }

    pub async fn param(&self, name: &str) -> String {
        match self.phone.api("getparameter", vec![name.into()]).await {
            Ok(v) => v.as_str().unwrap_or_default().to_string(),
            Err(_) => String::new(),
        }
    }

    pub async fn set_param(&self, name: &str, value: &str) -> Result<(), String> {
        self.phone
            .api("setparameter", vec![name.into(), value.into()])
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    // ----- keyring ----------------------------------------------------------------------------

    /// The keyring user of the account the engine has now.
    pub async fn account_key(&self) -> Option<String> {
        secrets::account_key(
            &self.param("profile").await,
            &self.param("username").await,
            &self.param("serveraddress").await,
        )
    }

    /// Stores the engine's current password in the keyring under the current account.
    pub async fn store_password(&self, password: &str) {
        if password.is_empty() {
            return;
        }
        let Some(key) = self.account_key().await else {
            tracing::debug!("password not stored in the keyring yet: account incomplete");
            return;
        };
        let (service, pw) = (self.identifier.clone(), password.to_string());
        let k = key.clone();
        let res = tauri::async_runtime::spawn_blocking(move || secrets::store(&service, &k, &pw))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match res {
            Ok(()) => tracing::info!(account = %key, "password stored in the OS keyring"),
            Err(e) => {
                tracing::warn!(account = %key, error = %e, "could not store the password in the OS keyring")
            }
        }
    }

    /// The page cleared the password: remove the account's keyring entry.
    async fn forget_password(&self) {
        let Some(key) = self.account_key().await else {
            return;
        };
        if secrets::unavailable_reason().is_some() {
            return;
        }
        let (service, k) = (self.identifier.clone(), key.clone());
        match tauri::async_runtime::spawn_blocking(move || secrets::delete(&service, &k)).await {
            Ok(Ok(())) => tracing::info!(account = %key, "password removed from the OS keyring"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not remove the password from the OS keyring")
            }
            Err(e) => tracing::warn!(error = %e, "keyring task failed"),
        }
    }

    /// At start: migrates a plain-text password of a configuration source to the keyring, then
    /// gives the keyring's password to the engine when it has none.
    pub async fn init_password(
        &self,
        plain: Option<String>,
        config_file: Option<(PathBuf, String)>,
    ) {
        if let Some(why) = secrets::unavailable_reason() {
            tracing::warn!("OS keyring unavailable: {why}; the password is kept in memory only");
            return;
        }
        if let Some(pw) = plain.filter(|p| !p.is_empty()) {
            self.store_password(&pw).await;
            if let (Some((path, text)), Some(key)) = (config_file, self.account_key().await) {
                // Remove the plain text only once the keyring has it.
                let (service, k) = (self.identifier.clone(), key.clone());
                let stored =
                    tauri::async_runtime::spawn_blocking(move || secrets::load(&service, &k))
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                        .flatten();
                if stored.as_deref() == Some(pw.as_str()) {
                    match std::fs::write(&path, secrets::without_password(&text)) {
                        Ok(()) => {
                            tracing::info!(file = %path.display(), "plain-text password migrated to the OS keyring")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not remove the migrated password from {}", path.display())
                        }
                    }
                }
            }
        }
        if !self.param("password").await.is_empty() {
            return;
        }
        let Some(key) = self.account_key().await else {
            return;
        };
        let (service, k) = (self.identifier.clone(), key.clone());
        match tauri::async_runtime::spawn_blocking(move || secrets::load(&service, &k)).await {
            Ok(Ok(Some(pw))) => match self.set_param("password", &pw).await {
                Ok(()) => tracing::info!(account = %key, "password read from the OS keyring"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not give the keyring password to the engine")
                }
            },
            Ok(Ok(None)) => tracing::debug!(account = %key, "no password in the OS keyring"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not read the OS keyring"),
            Err(e) => tracing::warn!(error = %e, "keyring task failed"),
        }
    }

    /// Called by the `api` command before and after an engine call: keeps the keyring and the
    /// missed-call bookkeeping in step with what the page does.
    pub fn before_api(&self, func: &str, args: &[String]) {
        if matches!(func, "accept" | "reject" | "ignore") {
            let line = args.first().and_then(|a| a.trim().parse::<u64>().ok());
            lock(&self.tracker).mark_handled(line);
        }
    }

    pub async fn after_api(&self, app: &AppHandle, func: &str, args: &[String]) {
        if func != "setparameter" {
            return;
        }
        let name = args
            .first()
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match name.as_str() {
            "password" => {
                let pw = args.get(1).map(String::as_str).unwrap_or("");
                if pw.is_empty() {
                    self.forget_password().await;
                } else {
                    self.store_password(pw).await;
                }
            }
            "username" | "serveraddress" | "profile" => {
                let pw = self.param("password").await;
                self.store_password(&pw).await;
            }
            "startatlogin" | "shortcutanswer" | "shortcuthangup" => {
                crate::system::apply(app, self).await;
            }
            _ => {}
        }
    }

    // ----- tray -------------------------------------------------------------------------------

    pub fn build_tray(&self, app: &AppHandle) -> tauri::Result<()> {
        let (reg, missed) = {
            let t = lock(&self.tracker);
            (t.registration().to_string(), t.missed())
        };
        let dnd_on = lock(&self.state).dnd;
        let status =
            MenuItem::with_id(app, "status", format!("Status: {reg}"), false, None::<&str>)?;
        let missed_item = MenuItem::with_id(
            app,
            "missed",
            format!("Missed calls: {missed}"),
            true,
            None::<&str>,
        )?;
        let dnd = CheckMenuItem::with_id(app, "dnd", "Do not disturb", true, dnd_on, None::<&str>)?;
        let recent = Submenu::with_id(app, "recent", "Recent", true)?;
        self.fill_recent(&recent);
        let calls = Submenu::with_id(app, "calls", "Calls", true)?;
        self.fill_calls(&calls);
        let show = MenuItem::with_id(app, "show", "Show / hide", true, None::<&str>)?;
        let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
        let menu = Menu::with_items(
            app,
            &[
                &status,
                &missed_item,
                &calls,
                &PredefinedMenuItem::separator(app)?,
                &show,
                &dnd,
                &recent,
                &PredefinedMenuItem::separator(app)?,
                &quit,
            ],
        )?;
        let mut b = TrayIconBuilder::with_id("main")
            .tooltip(self.tooltip(&reg, missed, dnd_on))
            .menu(&menu)
            .show_menu_on_left_click(false)
            .on_menu_event(|app, ev| {
                let app = app.clone();
                let id = ev.id().as_ref().to_string();
                tauri::async_runtime::spawn(async move { on_menu(app, &id).await });
            })
            .on_tray_icon_event(|tray, ev| {
                if let TrayIconEvent::Click {
                    button: MouseButton::Left,
                    button_state: MouseButtonState::Up,
                    ..
                } = ev
                {
                    toggle_main(tray.app_handle());
                }
            });
        if let Some(icon) = app.default_window_icon() {
            *lock(&self.tray_base) = Some((icon.rgba().to_vec(), icon.width(), icon.height()));
        }
        let look = self.tray_look();
        match self.tray_picture(&look) {
            Some(pic) => {
                b = b.icon(pic);
                *lock(&self.tray_icon) = Some(look.id());
            }
            None => {
                if let Some(icon) = app.default_window_icon() {
                    b = b.icon(icon.clone());
                }
            }
        }
        let tray = b.build(app)?;
        *lock(&self.tray) = Some(TrayParts {
            tray,
            status,
            missed: missed_item,
            dnd,
            recent,
            calls,
        });
        Ok(())
    }

    /// Puts the ringing and connected calls into the tray's "Calls" submenu (answer or hang
    /// up each; disabled when there are none).
    fn fill_calls(&self, menu: &Submenu<tauri::Wry>) {
        let entries = lock(&self.tracker).call_entries();
        let app = menu.app_handle();
        while let Ok(Some(_)) = menu.remove_at(0) {}
        for e in &entries {
            match MenuItem::with_id(app, e.id.as_str(), &e.label, true, None::<&str>) {
                Ok(item) => {
                    let _ = menu.append(&item);
                }
                Err(err) => tracing::debug!(error = %err, "call entry not added to the tray"),
            }
        }
        let _ = menu.set_enabled(!entries.is_empty());
    }

    fn refresh_calls(&self) {
        if let Some(parts) = lock(&self.tray).as_ref() {
            self.fill_calls(&parts.calls);
        }
    }

    /// A Calls entry of the tray: `call:answer:<line>` or `call:hangup:<line>`.
    pub async fn call_entry(&self, app: &AppHandle, id: &str) -> Result<(), String> {
        let rest = id.strip_prefix(CALL_ID).ok_or("not a call entry")?;
        let (action, line) = rest.split_once(':').ok_or("not a call entry")?;
        let line: u64 = line.parse().map_err(|_| format!("bad line in {id}"))?;
        match action {
            "answer" => self.handle_incoming(app, line, "accept").await,
            "hangup" => self
                .phone
                .api("hangup", vec![line.to_string()])
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => Err(format!("unknown call entry {id}")),
        }
    }

    /// Puts the recent numbers into the tray's "Recent" submenu (disabled when there are none).
    fn fill_recent(&self, menu: &Submenu<tauri::Wry>) {
        let recent = lock(&self.state).recent.clone();
        let app = menu.app_handle();
        while let Ok(Some(_)) = menu.remove_at(0) {}
        for (i, n) in recent.iter().enumerate() {
            match MenuItem::with_id(app, format!("{RECENT_ID}{i}"), n, true, None::<&str>) {
                Ok(item) => {
                    let _ = menu.append(&item);
                }
                Err(e) => tracing::debug!(error = %e, "recent number not added to the tray"),
            }
        }
        let _ = menu.set_enabled(!recent.is_empty());
    }

    /// A call ended: its peer becomes the first recent number.
    fn call_ended(&self, peer: &str) {
        if !lock(&self.state).push_recent(peer) {
            return;
        }
        self.save_state();
        if let Some(parts) = lock(&self.tray).as_ref() {
            self.fill_recent(&parts.recent);
        }
    }

    /// The recent number behind a tray menu id.
    fn recent_number(&self, id: &str) -> Option<String> {
        let i: usize = id.strip_prefix(RECENT_ID)?.parse().ok()?;
        lock(&self.state).recent.get(i).cloned()
    }

    pub fn has_tray(&self) -> bool {
        lock(&self.tray).is_some()
    }

    fn tooltip(&self, reg: &str, missed: u32, dnd: bool) -> String {
        let mut t = format!("{}: {reg}", self.product);
        if missed > 0 {
            t.push_str(&format!(", {missed} missed"));
        }
        if dnd {
            t.push_str(", do not disturb");
        }
        t
    }

    /// What the tray picture should show now.
    fn tray_look(&self) -> TrayLook {
        let t = lock(&self.tracker);
        TrayLook {
            reg: RegBadge::from_label(t.registration()),
            dnd: lock(&self.state).dnd,
            missed: t.missed(),
        }
    }

    /// The brand's icon with the overlays of `look` (`None` without a base icon).
    fn tray_picture(&self, look: &TrayLook) -> Option<tauri::image::Image<'static>> {
        let base = lock(&self.tray_base);
        let (rgba, w, h) = base.as_ref()?;
        let px = look.render(rgba, *w, *h)?;
        Some(tauri::image::Image::new_owned(px, TRAY_SIZE, TRAY_SIZE))
    }

    fn refresh_tray(&self) {
        let (reg, missed) = {
            let t = lock(&self.tracker);
            (t.registration().to_string(), t.missed())
        };
        let dnd = lock(&self.state).dnd;
        let look = self.tray_look();
        if let Some(parts) = lock(&self.tray).as_ref() {
            let id = look.id();
            let mut current = lock(&self.tray_icon);
            if current.as_deref() != Some(id.as_str()) {
                if let Some(pic) = self.tray_picture(&look) {
                    match parts.tray.set_icon(Some(pic)) {
                        Ok(()) => {
                            tracing::debug!(icon = %id, "tray icon");
                            *current = Some(id);
                        }
                        Err(e) => tracing::warn!(error = %e, "could not change the tray icon"),
                    }
                }
            }
            let _ = parts.status.set_text(format!("Status: {reg}"));
            let _ = parts.missed.set_text(format!("Missed calls: {missed}"));
            let _ = parts.dnd.set_checked(dnd);
            let _ = parts
                .tray
                .set_tooltip(Some(self.tooltip(&reg, missed, dnd)));
            // Next to the icon (a label on Linux indicators, the menu-bar title on macOS): the
            // missed-call count, or "DND" while do-not-disturb is on.
            let _ = parts.tray.set_title(tray_title(missed, dnd));
        }
    }

    /// What the tray shows (for tests and the log).
    pub fn tray_summary(&self) -> serde_json::Value {
        let t = lock(&self.tracker);
        serde_json::json!({
            "registration": t.registration(),
            "missed": t.missed(),
            "dnd": lock(&self.state).dnd,
            "recent": lock(&self.state).recent,
            "calls": t.call_entries(),
            "tooltip": self.tooltip(t.registration(), t.missed(), lock(&self.state).dnd),
            "title": tray_title(t.missed(), lock(&self.state).dnd),
            // The picture the tray shows (TrayLook::id), null without a tray.
            "icon": lock(&self.tray_icon).clone(),
        })
    }

    /// Switches do-not-disturb (`autoignore=2` while on).
    pub async fn set_dnd(&self, on: bool) -> Result<(), String> {
        if lock(&self.state).dnd == on {
            return Ok(());
        }
        if on {
            let prev = self.param("autoignore").await;
            self.set_param("autoignore", "2").await?;
            let mut st = lock(&self.state);
            st.dnd = true;
            st.dnd_saved_autoignore = Some(prev);
        } else {
            let prev = lock(&self.state)
                .dnd_saved_autoignore
                .clone()
                .unwrap_or_default();
            let prev = if prev.is_empty() || prev == "2" {
                "0".to_string()
            } else {
                prev
            };
            self.set_param("autoignore", &prev).await?;
            let mut st = lock(&self.state);
            st.dnd = false;
            st.dnd_saved_autoignore = None;
        }
        self.save_state();
        self.refresh_tray();
        tracing::info!(dnd = on, "do not disturb");
        Ok(())
    }

    pub fn reset_missed(&self) {
        if lock(&self.tracker).reset_missed() {
            self.refresh_tray();
        }
    }

    // ----- engine events ----------------------------------------------------------------------

    pub fn on_event(self: &std::sync::Arc<Self>, app: &AppHandle, ev: &Event) {
        let changes = lock(&self.tracker).on_event(ev);
        for c in changes {
            match c {
                Change::Registration(_) | Change::Missed(_) => self.refresh_tray(),
                Change::Calls => self.refresh_calls(),
                Change::Ended(peer) => self.call_ended(&peer),
                Change::Ringing(inc) => {
                    self.refresh_calls();
                    let (shell, app) = (self.clone(), app.clone());
                    tauri::async_runtime::spawn(async move {
                        tokio::time::sleep(POPUP_DELAY).await;
                        let still = lock(&shell.tracker).ringing(Some(inc.line)).cloned();
                        if let Some(inc) = still {
                            shell.show_incoming(&app, inc);
                        }
                    });
                }
                Change::RingingOver(line) => {
                    self.refresh_calls();
                    close_notification(app, line);
                    let showing = matches!(&*lock(&self.popup), Some(PopupContent::Incoming(i)) if i.line == line);
                    if showing {
                        self.close_popup(app);
                        // Another call may still ring.
                        let next = lock(&self.tracker).ringing(None).cloned();
                        if let Some(inc) = next {
                            self.show_incoming(app, inc);
                        }
                    }
                }
            }
        }
    }

    // ----- pop-up -----------------------------------------------------------------------------

    fn show_incoming(&self, app: &AppHandle, inc: Incoming) {
        let who = if inc.name.is_empty() || inc.name == inc.number {
            inc.number.clone()
        } else {
            format!("{} ({})", inc.name, inc.number)
        };
        tracing::info!(line = inc.line, caller = %who, "incoming call: pop-up and notification");
        self.notify_incoming(app, inc.line, &who);
        self.open_popup(app, PopupContent::Incoming(inc), "Incoming call");
    }

    /// The OS notification of an incoming call, with Accept, Reject and Ignore buttons where the
    /// notification server shows actions (Desktop Notifications Specification 1.2, `actions`).
    /// Its id is the call's line, so an action answers that line and the end of the ringing
    /// closes it.
    fn notify_incoming(&self, app: &AppHandle, line: u64, who: &str) {
        use tauri_plugin_notification::NotificationExt;
        let Ok(id) = i32::try_from(line) else { return };
        if let Err(e) = app
            .notification()
            .builder()
            .id(id)
            .title(format!("{}: Incoming call", self.product))
            // Servers that render body markup would otherwise interpret a caller's `<b>`.
            .body(markup_escape(who))
            .action_type_id(INCOMING_ACTIONS)
            .show()
        {
            tracing::debug!(error = %e, "OS notification not shown");
        }
    }

    /// Registers the incoming-call notification buttons and what they do (once, at start).
    pub fn setup_notifications(app: &AppHandle) {
        use tauri_plugin_notification::{Action, ActionType, NotificationExt};
        let n = app.notification();
        let types = vec![ActionType::builder(INCOMING_ACTIONS)
            .actions(vec![
                Action::builder("accept", "Accept").build(),
                Action::builder("reject", "Reject").build(),
                // Silences the ringing here; the caller keeps ringing until it gives up.
                Action::builder("ignore", "Ignore").build(),
            ])
            .build()];
        if let Err(e) = n.register_action_types(types) {
            tracing::debug!(error = %e, "notification actions unavailable");
            return;
        }
        let app = app.clone();
        let res = n.on_action(move |performed| {
            let action = performed.action_id().to_string();
            let line = performed
                .notification()
                .and_then(|n| u64::try_from(n.id()).ok());
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let Some(shell) = app
                    .try_state::<std::sync::Arc<Shell>>()
                    .map(|s| s.inner().clone())
                else {
                    return;
                };
                if let Err(e) = shell.notification_action(&app, line, &action).await {
                    tracing::info!(%action, "notification action: {e}");
                }
            });
        });
        if let Err(e) = res {
            tracing::debug!(error = %e, "notification actions unavailable");
        }
    }

    /// A button (or a click, `tap`) on the incoming-call notification of `line`.
    pub async fn notification_action(
        &self,
        app: &AppHandle,
        line: Option<u64>,
        action: &str,
    ) -> Result<(), String> {
        tracing::info!(?line, %action, "notification action");
        if action == "tap" {
            show_main(app);
            return Ok(());
        }
        let line = lock(&self.tracker)
            .ringing(line)
            .map(|i| i.line)
            .ok_or("the call no longer rings")?;
        match action {
            "accept" | "reject" | "ignore" => self.handle_incoming(app, line, action).await,
            a => Err(format!("unknown notification action {a}")),
        }
    }

    /// Accepts, rejects or ignores the ringing call on `line` (pop-up buttons, notification
    /// actions, the answer shortcut): not a missed call; its pop-up and notification close.
    async fn handle_incoming(
        &self,
        app: &AppHandle,
        line: u64,
        action: &str,
    ) -> Result<(), String> {
        lock(&self.tracker).mark_handled(Some(line));
        // The engine first, then the windows: the pop-up's own button click is still being
        // delivered while its window would go away.
        let r = self.phone.api(action, vec![line.to_string()]).await;
        let showing =
            matches!(&*lock(&self.popup), Some(PopupContent::Incoming(i)) if i.line == line);
        if showing {
            self.close_popup(app);
        }
        close_notification(app, line);
        if action == "accept" {
            show_main(app);
        }
        r.map(|_| ()).map_err(|e| e.to_string())
    }

    pub fn popup_content(&self) -> Option<PopupContent> {
        lock(&self.popup).clone()
    }

    fn open_popup(&self, app: &AppHandle, content: PopupContent, title: &str) {
        *lock(&self.popup) = Some(content);
        if let Some(w) = app.get_webview_window(POPUP_WINDOW) {
            // Already open: let the page fetch the new content.
            let _ = w.eval("window.wpPopupRefresh && window.wpPopupRefresh()");
            let _ = w.set_title(title);
            let _ = w.show();
            let _ = w.set_focus();
            return;
        }
        let res = WebviewWindowBuilder::new(app, POPUP_WINDOW, WebviewUrl::App(POPUP_PAGE.into()))
            .title(title)
            .inner_size(340.0, 190.0)
            .resizable(false)
            .always_on_top(true)
            .skip_taskbar(true)
            .center()
            .focused(true)
            .build();
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not open the pop-up window");
        }
    }

    pub fn close_popup(&self, app: &AppHandle) {
        *lock(&self.popup) = None;
        if let Some(w) = app.get_webview_window(POPUP_WINDOW) {
            let _ = w.destroy();
        }
    }

    /// A button of the pop-up.
    pub async fn popup_action(&self, app: &AppHandle, action: &str) -> Result<(), String> {
        let content = lock(&self.popup).clone();
        let res = match (content, action) {
            (Some(PopupContent::Incoming(inc)), "accept" | "reject" | "ignore") => {
                self.handle_incoming(app, inc.line, action).await
            }
            (Some(PopupContent::Confirm { number }), "call") => {
                show_main(app);
                self.dial(&number).await
            }
            (Some(PopupContent::Confirm { .. }), "cancel") => Ok(()),
            (None, _) => Err("nothing to answer".into()),
            (_, a) => Err(format!("unknown action {a}")),
        };
        self.close_popup(app);
        res
    }

    /// Answers the ringing incoming call (the answer shortcut).
    pub async fn answer_ringing(&self, app: &AppHandle) -> Result<(), String> {
        let line = lock(&self.tracker)
            .ringing(None)
            .map(|i| i.line)
            .ok_or("no incoming call rings")?;
        self.handle_incoming(app, line, "accept").await
    }

    // ----- links and second launches -----------------------------------------------------------

    pub async fn dial(&self, number: &str) -> Result<(), String> {
        self.phone
            .api("start", vec![])
            .await
            .map_err(|e| e.to_string())?;
        let line = self
            .phone
            .api("call", vec![number.into()])
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(%number, %line, "dialled from a link");
        Ok(())
    }

    pub async fn handle_link(&self, app: &AppHandle, link: &str) {
        match links::parse_link(link) {
            Ok(LinkAction::Provision(params)) => {
                let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
                tracing::info!(?names, "provisioning link");
                let mut password = None;
                for (n, v) in &params {
                    if n.eq_ignore_ascii_case("password") {
                        password = Some(v.clone());
                        continue;
                    }
                    if let Err(e) = self.set_param(n, v).await {
                        tracing::warn!(param = %n, error = %e, "provisioning: parameter refused");
                    }
                }
                if let Some(pw) = password {
                    if let Err(e) = self.set_param("password", &pw).await {
                        tracing::warn!(error = %e, "provisioning: password refused");
                    }
                    self.store_password(&pw).await;
                }
                crate::system::apply(app, self).await;
                if let Err(e) = self.phone.api("start", vec![]).await {
                    tracing::warn!(error = %e, "provisioning: start failed");
                }
                if !self.param("serveraddress").await.is_empty() {
                    if let Err(e) = self.phone.api("register", vec![]).await {
                        tracing::warn!(error = %e, "provisioning: register failed");
                    }
                }
                show_main(app);
            }
            Ok(LinkAction::Dial(number)) => {
                if truthy(&self.param("confirmlinkcalls").await, false) {
                    self.open_popup(app, PopupContent::Confirm { number }, "Call?");
                } else {
                    show_main(app);
                    if let Err(e) = self.dial(&number).await {
                        tracing::warn!(%number, error = %e, "link call failed");
                    }
                }
            }
            Err(e) => tracing::warn!("ignoring link: {e}"),
        }
    }

    /// Arguments of a second launch (or of this launch): `-p` parameters are set and
    /// persisted, links handled; the main window comes to the front.
    pub async fn handle_args(
        &self,
        app: &AppHandle,
        params: Vec<(String, String)>,
        links: Vec<String>,
    ) {
        for (n, v) in params {
            if let Err(e) = self.set_param(&n, &v).await {
                tracing::warn!(param = %n, error = %e, "parameter of a second launch refused");
            } else if n.eq_ignore_ascii_case("password") {
                self.store_password(&v).await;
            }
        }
        for l in links {
            self.handle_link(app, &l).await;
        }
    }

    /// Closing the main window: hide (close-to-tray) or quit.
    pub async fn close_requested(&self, app: &AppHandle) {
        self.save_state();
        let closetotray = self.param("closetotray").await;
        let backgroundcalls = self.param("backgroundcalls").await;
        if keeps_running_when_closed(&closetotray, &backgroundcalls) {
            if let Some(w) = app.get_webview_window(MAIN_WINDOW) {
                let _ = w.hide();
            }
            tracing::info!("main window hidden (closetotray)");
        } else {
            app.exit(0);
        }
    }
}

/// Closes the incoming-call notification of `line` (its call was answered or ended).
fn close_notification(app: &AppHandle, line: u64) {
    use tauri_plugin_notification::NotificationExt;
    if let Ok(id) = i32::try_from(line) {
        let _ = app.notification().remove_active(vec![id]);
    }
}

/// `&`, `<` and `>` as entities: notification bodies may carry markup (Desktop Notifications
/// Specification, "Markup"), a caller's name is text.
fn markup_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The text next to the tray icon: missed calls, then DND; nothing when neither applies.
fn tray_title(missed: u32, dnd: bool) -> Option<String> {
    match (missed, dnd) {
        (0, false) => None,
        (0, true) => Some("DND".into()),
        (n, false) => Some(n.to_string()),
        (n, true) => Some(format!("{n} DND")),
    }
}

pub fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN_WINDOW) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
    if let Some(shell) = app.try_state::<std::sync::Arc<Shell>>() {
        shell.reset_missed();
    }
}

fn toggle_main(app: &AppHandle) {
    let visible = app
        .get_webview_window(MAIN_WINDOW)
        .and_then(|w| w.is_visible().ok())
        .unwrap_or(false);
    if visible {
        if let Some(w) = app.get_webview_window(MAIN_WINDOW) {
            let _ = w.hide();
        }
    } else {
        show_main(app);
    }
}

/// Stops the engine (unregister, hang up), then ends the app.
pub async fn quit(app: AppHandle) {
    if let Some(shell) = app.try_state::<std::sync::Arc<Shell>>() {
        shell.save_state();
        let phone = shell.phone.clone();
        match tokio::time::timeout(crate::STOP_TIMEOUT, phone.api("stop", Vec::new())).await {
            Ok(Ok(_)) => tracing::info!("engine stopped (quit)"),
            Ok(Err(e)) => tracing::warn!(error = %e, "stop failed"),
            Err(_) => tracing::warn!("stop timed out"),
        }
    }
    app.exit(0);
}

async fn on_menu(app: AppHandle, id: &str) {
    let Some(shell) = app
        .try_state::<std::sync::Arc<Shell>>()
        .map(|s| s.inner().clone())
    else {
        return;
    };
    match id {
        "show" => toggle_main(&app),
        "missed" => show_main(&app),
        "dnd" => {
            let on = !lock(&shell.state).dnd;
            if let Err(e) = shell.set_dnd(on).await {
                tracing::warn!(error = %e, "could not switch do-not-disturb");
                shell.refresh_tray();
            }
        }
        "quit" => quit(app).await,
        id if id.starts_with(CALL_ID) => {
            if let Err(e) = shell.call_entry(&app, id).await {
                tracing::warn!(%id, error = %e, "call entry of the tray failed");
            }
        }
        id => {
            if let Some(number) = shell.recent_number(id) {
                show_main(&app);
                if let Err(e) = shell.dial(&number).await {
                    tracing::warn!(%number, error = %e, "call from the recent list failed");
                }
            }
        }
    }
}

/// Test and automation hook behind the `desktop` command (main window only): the tray's state
/// and actions, so the e2e test can check what the tray shows without a tray host.
pub async fn desktop_command(
    app: &AppHandle,
    shell: &Shell,
    action: &str,
) -> Result<serde_json::Value, String> {
    match action {
        "tray" => Ok(shell.tray_summary()),
        "dnd-on" => shell.set_dnd(true).await.map(|_| shell.tray_summary()),
        "dnd-off" => shell.set_dnd(false).await.map(|_| shell.tray_summary()),
        "popup" => Ok(serde_json::to_value(shell.popup_content()).unwrap_or_default()),
        "hide" => {
            shell.close_requested(app).await;
            Ok(serde_json::Value::Null)
        }
        "show" => {
            show_main(app);
            Ok(serde_json::Value::Null)
        }
        "visible" => Ok(serde_json::Value::from(
            app.get_webview_window(MAIN_WINDOW)
                .and_then(|w| w.is_visible().ok())
                .unwrap_or(false),
        )),
        "autostart" => crate::system::autostart_enabled(app).map(serde_json::Value::from),
        "shortcuts" => Ok(crate::system::registered_shortcuts(app)),
        a if a.starts_with("shortcut-") => {
            crate::system::run_shortcut(app, &a["shortcut-".len()..]).await?;
            Ok(serde_json::Value::Null)
        }
        a if a.starts_with(CALL_ID) => {
            shell.call_entry(app, a).await?;
            Ok(shell.tray_summary())
        }
        a if a.starts_with(RECENT_ID) => {
            let number = shell
                .recent_number(a)
                .ok_or_else(|| format!("no recent number {a}"))?;
            shell.dial(&number).await?;
            Ok(serde_json::Value::from(number))
        }
        a => Err(format!("unknown desktop action {a}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_keeps_the_phone_in_the_tray_unless_told_otherwise() {
        assert!(keeps_running_when_closed("", "1"));
        assert!(keeps_running_when_closed("", "-1"));
        assert!(keeps_running_when_closed("", ""));
        assert!(!keeps_running_when_closed("", "0"));
        assert!(!keeps_running_when_closed("false", "1"), "closetotray wins");
        assert!(keeps_running_when_closed("true", "0"), "closetotray wins");
    }

    #[test]
    fn truthy_values() {
        assert!(truthy("", true));
        assert!(!truthy("", false));
        for f in ["0", "false", "No", " off "] {
            assert!(!truthy(f, true), "{f}");
        }
        for t in ["1", "true", "yes"] {
            assert!(truthy(t, false), "{t}");
        }
    }

    #[test]
    fn tray_titles() {
        assert_eq!(tray_title(0, false), None);
        assert_eq!(tray_title(0, true).as_deref(), Some("DND"));
        assert_eq!(tray_title(2, false).as_deref(), Some("2"));
        assert_eq!(tray_title(1, true).as_deref(), Some("1 DND"));
    }

    #[test]
    fn notification_bodies_escape_markup() {
        assert_eq!(markup_escape("Bob (1002)"), "Bob (1002)");
        assert_eq!(
            markup_escape("<b>A&B</b> (1002)"),
            "&lt;b&gt;A&amp;B&lt;/b&gt; (1002)"
        );
    }

    #[test]
    fn popup_content_json() {
        let v = serde_json::to_value(PopupContent::Incoming(Incoming {
            line: 1,
            number: "1002".into(),
            name: "<b>Bob</b>".into(),
        }))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind":"incoming","line":1,"number":"1002","name":"<b>Bob</b>"})
        );
        let v = serde_json::to_value(PopupContent::Confirm {
            number: "echo".into(),
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"kind":"confirm","number":"echo"}));
    }
}
