//! WebPhone desktop: the `webphone_api` pages in a Tauri 2 window over the native engine.
//!
//! The app is a thin adapter. The webview reaches the engine through exactly one command,
//! `api(fn, args)`, which calls [`Phone::api`], and receives every engine [`Event`] as the Tauri
//! event `webphone` carrying the engine's JSON shape (`{"ev":"onXXX","args":[...]}` or
//! `{"ev":"notification","text":"..."}`). All phone semantics live in the engine and in
//! `ui/webphone_api.js`.

// No console window for release builds on Windows.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod desktop;
mod links;
mod options;
mod secrets;
mod state;
mod status;
mod system;
mod tray_icon;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use tauri::{Emitter, Manager, RunEvent, WindowEvent};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::{mpsc, oneshot};
use webphone_engine::{Event, Phone, PhoneOptions};

use desktop::{PopupContent, Shell, MAIN_WINDOW};
use options::{arg_to_string, page_path, StartupOptions, USAGE};
use state::WindowGeometry;

/// Name of the Tauri event that carries the engine's event stream to the webview.
const EVENT_CHANNEL: &str = "webphone";
/// How long shutdown waits for `stop` (unregister, hang up) before giving up.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Granted at run time only when the app runs under WebDriver (TAURI_WEBVIEW_AUTOMATION=true):
/// the `desktop` command that lets the e2e test read the tray state and switch DND.
const AUTOMATION_CAPABILITY: &str = include_str!("../automation-capability.json");

/// The one command the webview may call: any `webphone_api` function by name.
///
/// Arguments may be any JSON values; they are turned into strings ("all parameters can be passed
/// as strings"). Errors come back as their message, which rejects the JS promise.
///
/// `setparameter` of the password (or of the account it belongs to) also stores it in the OS
/// keyring; the engine gets it as well and never writes it to disk.
#[tauri::command]
async fn api(
    app: tauri::AppHandle,
    shell: tauri::State<'_, Arc<Shell>>,
    flush: tauri::State<'_, EventFlush>,
    r#fn: String,
    args: Option<Vec<serde_json::Value>>,
) -> Result<serde_json::Value, String> {
    let args: Vec<String> = args
        .unwrap_or_default()
        .into_iter()
        .map(arg_to_string)
        .collect();
    let func = r#fn.to_ascii_lowercase();
    if func == "setparameter" && secrets_arg(&args) {
        tracing::debug!(func = %r#fn, "api call (secret value not logged)");
    } else {
        tracing::debug!(func = %r#fn, ?args, "api call");
    }
    shell.before_api(&func, &args);
    let result = shell.phone.api(&r#fn, args.clone()).await;
    match &result {
        Err(e) => tracing::debug!(func = %r#fn, error = %e, "api call failed"),
        Ok(_) => shell.after_api(&app, &func, &args).await,
    }
    flush.wait().await;
    result.map_err(|e| e.to_string())
}

/// Whether a `setparameter` call carries a secret (kept out of the debug log).
fn secrets_arg(args: &[String]) -> bool {
    args.first()
        .is_some_and(|n| n.to_ascii_lowercase().contains("password"))
}

/// The pop-up window's content: an incoming call or a link call to confirm.
#[tauri::command]
fn popup_info(shell: tauri::State<'_, Arc<Shell>>) -> Option<PopupContent> {
    shell.popup_content()
}

/// A pop-up button: `accept`, `reject`, `ignore` (incoming call) or `call`, `cancel` (link).
#[tauri::command]
async fn popup_action(
    app: tauri::AppHandle,
    shell: tauri::State<'_, Arc<Shell>>,
    action: String,
) -> Result<(), String> {
    shell.popup_action(&app, &action).await
}

/// Automation only (see AUTOMATION_CAPABILITY): tray state, DND, pop-up content, hide/show.
#[tauri::command]
async fn desktop(
    app: tauri::AppHandle,
    shell: tauri::State<'_, Arc<Shell>>,
    action: String,
) -> Result<serde_json::Value, String> {
    desktop::desktop_command(&app, &shell, &action).await
}

/// Lets an API answer wait until the events the engine sent before it reached the webviews:
/// the engine publishes what a call changed (its `_sync` event, notifications) before it
/// answers, and a page that reads webphone_api's synchronous copy after the answer must find
/// the change there.
struct EventFlush(mpsc::UnboundedSender<oneshot::Sender<()>>);

impl EventFlush {
    async fn wait(&self) {
        let (tx, rx) = oneshot::channel();
        if self.0.send(tx).is_ok() {
            let _ = rx.await;
        }
    }
}

fn emit_event(app: &tauri::AppHandle, shell: &Arc<Shell>, ev: &Event) {
    if let Event::Notification(text) = ev {
        tracing::trace!(%text, "notification");
    }
    shell.on_event(app, ev);
    if let Err(e) = app.emit(EVENT_CHANNEL, ev) {
        tracing::warn!(error = %e, "could not emit an engine event");
    }
}

/// Forwards every engine event to the webviews until the engine's stream closes; a flush
/// request is acknowledged once every event already sent by the engine was emitted.
async fn forward_events(
    app: tauri::AppHandle,
    shell: Arc<Shell>,
    mut rx: broadcast::Receiver<Event>,
    mut flushes: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
) {
    loop {
        let received = tokio::select! {
            biased;
            r = rx.recv() => r,
            Some(ack) = flushes.recv() => {
                loop {
                    match rx.try_recv() {
                        Ok(ev) => emit_event(&app, &shell, &ev),
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                let _ = ack.send(());
                continue;
            }
        };
        match received {
            Ok(ev) => emit_event(&app, &shell, &ev),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    skipped = n,
                    "webview event forwarding lagged; events dropped"
                );
            }
            Err(RecvError::Closed) => break,
        }
    }
    tracing::debug!("engine event stream closed");
}

/// Ends the app cleanly on SIGINT/SIGTERM so that `stop` still runs.
async fn exit_on_signal(app: tauri::AppHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("could not install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
    }
    tracing::info!("signal received; exiting");
    app.exit(0);
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() {
    // A brand's default parameters (scripts/build-brand.sh bakes them in), before the
    // environment and the command line.
    let env_params = [
        option_env!("WEBPHONE_BRAND_PARAMS").map(str::to_string),
        std::env::var("WEBPHONE_PARAMS").ok(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(";");
    let opts = StartupOptions::parse(
        std::env::args().skip(1),
        Some(env_params.as_str()),
        std::env::var("WEBPHONE_WORK_DIR").ok().as_deref(),
    );
    if opts.help {
        print!("{USAGE}");
        return;
    }
    init_logging();
    for arg in &opts.ignored {
        tracing::warn!(%arg, "ignoring unrecognised argument");
    }
    let page = match page_path(opts.page.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("webphone-desktop: {e}");
            std::process::exit(2);
        }
    };
    let StartupOptions {
        params,
        work_dir,
        ignored,
        minimized,
        ..
    } = opts;
    // Links given on the command line (`webphone-desktop sip:1002`); the rest was reported.
    let start_links: Vec<String> = ignored.into_iter().filter(|a| links::is_link(a)).collect();
    tracing::info!(
        params = ?params.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        links = start_links.len(),
        "starting"
    );

    let builder = tauri::Builder::default()
        // Must be the first plugin: a second launch hands its arguments over and exits.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            let o = StartupOptions::parse(argv.into_iter().skip(1), None, None);
            let links: Vec<String> = o
                .ignored
                .into_iter()
                .filter(|a| links::is_link(a))
                .collect();
            tracing::info!(
                params = o.params.len(),
                links = links.len(),
                "second launch"
            );
            desktop::show_main(app);
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Some(shell) = app.try_state::<Arc<Shell>>().map(|s| s.inner().clone()) {
                    shell.handle_args(&app, o.params, links).await;
                }
            });
        }))
        .plugin(tauri_plugin_deep_link::init())
        // Only acts when the user switches `startatlogin` on (system.rs).
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .arg(system::MINIMIZED_ARG)
                .build(),
        )
        .plugin(tauri_plugin_notification::init());
    #[cfg(feature = "updater")]
    let builder = builder.plugin(tauri_plugin_updater::Builder::new().build());

    let app = builder
        .invoke_handler(tauri::generate_handler![
            api,
            popup_info,
            popup_action,
            desktop
        ])
        .on_window_event(on_window_event)
        .setup(move |app| {
            let work_dir = work_dir.or_else(|| app.path().app_data_dir().ok());
            tracing::info!(work_dir = ?work_dir, "profile directory");
            // `webphone.conf` in the work directory: name=value lines, before the command line.
            let config = work_dir.as_deref().and_then(secrets::read_config);
            // A tray-resident desktop phone keeps listening when its window closes: the
            // catalog's `backgroundcalls` defaults to 0 (a browser page), this app to 1 (the
            // `ucfg_` form gives way to a value the user stored).
            let mut all = vec![("ucfg_backgroundcalls".to_string(), "1".to_string())];
            all.extend(
                config
                    .as_ref()
                    .map(|(_, text)| secrets::parse_config(text))
                    .unwrap_or_default(),
            );
            let config_has_password = all.iter().any(|(n, _)| n.eq_ignore_ascii_case("password"));
            all.extend(params);
            let plain_password = all
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case("password"))
                .map(|(_, v)| v.clone());
            // The engine may spawn tasks while it is built: give it Tauri's tokio runtime.
            let rt = tauri::async_runtime::handle();
            let _enter = rt.inner().enter();
            let phone = Phone::new(PhoneOptions {
                params: all,
                work_dir: work_dir.clone(),
            });
            app.manage(phone.clone());
            let shell = Arc::new(Shell::new(
                phone.clone(),
                app.package_info().name.clone(),
                app.config().identifier.clone(),
                work_dir,
            ));
            app.manage(shell.clone());
            tauri::async_runtime::block_on(
                shell.init_password(plain_password, config.filter(|_| config_has_password)),
            );
            if std::env::var("TAURI_WEBVIEW_AUTOMATION").is_ok_and(|v| v == "true") {
                app.add_capability(AUTOMATION_CAPABILITY)?;
            }
            let handle = app.handle().clone();
            let (flush_tx, flush_rx) = mpsc::unbounded_channel();
            app.manage(EventFlush(flush_tx));
            // Subscribe now, before the page exists, so no event of the session is missed.
            tauri::async_runtime::spawn(forward_events(
                handle.clone(),
                shell.clone(),
                phone.subscribe(),
                flush_rx,
            ));
            tauri::async_runtime::spawn(exit_on_signal(handle.clone()));
            #[cfg(feature = "updater")]
            {
                // Debug builds only: tests/e2e-desktop/updater.sh checks a loopback update
                // server with a key it generated ("ENDPOINT PUBKEY"); release builds always use
                // the brand's endpoint and key.
                #[cfg(debug_assertions)]
                let test_spec = std::env::var("WEBPHONE_UPDATE_TEST").ok();
                #[cfg(not(debug_assertions))]
                let test_spec: Option<String> = None;
                match test_spec {
                    Some(spec) => {
                        tauri::async_runtime::spawn(update_test(handle.clone(), spec));
                    }
                    None => {
                        tauri::async_runtime::spawn(check_for_update(handle.clone()));
                    }
                }
            }
            Shell::setup_notifications(&handle);
            if let Err(e) = shell.build_tray(&handle) {
                tracing::warn!(error = %e, "no tray icon");
            }
            #[cfg(target_os = "macos")]
            {
                use tauri_plugin_deep_link::DeepLinkExt;
                let h = handle.clone();
                app.deep_link().on_open_url(move |ev| {
                    let urls: Vec<String> = ev.urls().iter().map(|u| u.to_string()).collect();
                    let h = h.clone();
                    tauri::async_runtime::spawn(async move {
                        if let Some(shell) = h.try_state::<Arc<Shell>>().map(|s| s.inner().clone())
                        {
                            shell.handle_args(&h, Vec::new(), urls).await;
                        }
                    });
                });
            }
            // The main window is described in tauri.conf.json (`create: false`) and opened here
            // with the page chosen by `--page` and the remembered size and position.
            let mut window = app
                .config()
                .app
                .windows
                .iter()
                .find(|w| w.label == MAIN_WINDOW)
                .cloned()
                .ok_or("tauri.conf.json has no main window")?;
            window.url = tauri::WebviewUrl::App(page.clone().into());
            if let Some(g) = shell.saved_window() {
                window.width = g.width;
                window.height = g.height;
                window.x = Some(g.x);
                window.y = Some(g.y);
                window.center = false;
            }
            // Start in the tray: `--minimized` (start at login) or `startminimized`; only with a
            // tray icon to bring the window back.
            let tray_ok = shell.has_tray();
            let start_hidden = tray_ok
                && (minimized
                    || desktop::truthy(
                        &tauri::async_runtime::block_on(shell.param("startminimized")),
                        false,
                    ));
            if start_hidden {
                window.visible = false;
            }
            tracing::info!(%page, hidden = start_hidden, "opening the main window");
            tauri::WebviewWindowBuilder::from_config(app.handle(), &window)?.build()?;
            {
                let (shell, h) = (shell.clone(), handle.clone());
                tauri::async_runtime::spawn(async move { system::apply(&h, &shell).await });
            }
            if !start_links.is_empty() {
                let shell = shell.clone();
                tauri::async_runtime::spawn(async move {
                    shell.handle_args(&handle, Vec::new(), start_links).await;
                });
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("error while building the WebPhone app");

    app.run(|app, event| {
        if let RunEvent::Exit = event {
            if let Some(shell) = app.try_state::<Arc<Shell>>() {
                shell.save_state();
            }
            let Some(phone) = app.try_state::<Phone>().map(|s| s.inner().clone()) else {
                return;
            };
            tracing::info!("exiting: stopping the engine");
            let res = tauri::async_runtime::block_on(async move {
                tokio::time::timeout(STOP_TIMEOUT, phone.api("stop", Vec::new())).await
            });
            match res {
                Ok(Ok(_)) => tracing::info!("engine stopped"),
                Ok(Err(e)) => tracing::warn!(error = %e, "stop failed"),
                Err(_) => tracing::warn!("stop timed out"),
            }
        }
    });
}

/// Brands with an update endpoint and key (scripts/build-brand.sh, feature `updater`): look for
/// an update at start; the plugin verifies its signature against the brand's public key before
/// installing, and the new version runs from the next start.
#[cfg(feature = "updater")]
async fn check_for_update(app: tauri::AppHandle) {
    use tauri_plugin_updater::UpdaterExt;
    let update = match app.updater() {
        Ok(u) => u.check().await,
        Err(e) => {
            tracing::warn!(error = %e, "updater not configured");
            return;
        }
    };
    match update {
        Ok(Some(u)) => {
            tracing::info!(version = %u.version, "update available; downloading");
            match u.download_and_install(|_, _| {}, || {}).await {
                Ok(()) => tracing::info!("update installed; it runs from the next start"),
                Err(e) => tracing::warn!(error = %e, "update failed"),
            }
        }
        Ok(None) => tracing::debug!("no update"),
        Err(e) => tracing::warn!(error = %e, "update check failed"),
    }
}

/// `WEBPHONE_UPDATE_TEST="ENDPOINT PUBKEY"` (debug builds with the `updater` feature): asks
/// ENDPOINT for an update and downloads it with the plugin's own code path, which verifies the
/// minisign signature against PUBKEY; prints `UPDATE-TEST verified VERSION (N bytes)` or
/// `UPDATE-TEST refused: ERROR` and ends the app. Nothing is installed.
#[cfg(feature = "updater")]
#[cfg_attr(not(debug_assertions), allow(dead_code))]
async fn update_test(app: tauri::AppHandle, spec: String) {
    use tauri_plugin_updater::UpdaterExt;
    let res = async {
        let (endpoint, pubkey) = spec
            .trim()
            .split_once(' ')
            .ok_or("WEBPHONE_UPDATE_TEST: expected \"ENDPOINT PUBKEY\"")?;
        let url = url::Url::parse(endpoint).map_err(|e| format!("endpoint: {e}"))?;
        let updater = app
            .updater_builder()
            .endpoints(vec![url])
            .map_err(|e| e.to_string())?
            .pubkey(pubkey.trim())
            .build()
            .map_err(|e| e.to_string())?;
        let update = updater
            .check()
            .await
            .map_err(|e| format!("check: {e}"))?
            .ok_or("no update offered")?;
        let bytes = update
            .download(|_, _| {}, || {})
            .await
            .map_err(|e| format!("download: {e}"))?;
        Ok::<_, String>(format!("{} ({} bytes)", update.version, bytes.len()))
    }
    .await;
    match res {
        Ok(v) => {
            println!("UPDATE-TEST verified {v}");
            app.exit(0);
        }
        Err(e) => {
            println!("UPDATE-TEST refused: {e}");
            app.exit(3);
        }
    }
}

/// Main window: remember its geometry; closing hides it to the tray (`closetotray`).
fn on_window_event(window: &tauri::Window, event: &WindowEvent) {
    if window.label() != MAIN_WINDOW {
        return;
    }
    let app = window.app_handle();
    let Some(shell) = app.try_state::<Arc<Shell>>().map(|s| s.inner().clone()) else {
        return;
    };
    match event {
        WindowEvent::Moved(_) | WindowEvent::Resized(_) => {
            if !window.is_visible().unwrap_or(false) || window.is_minimized().unwrap_or(false) {
                return;
            }
            let scale = window.scale_factor().unwrap_or(1.0);
            if let (Ok(pos), Ok(size)) = (window.outer_position(), window.inner_size()) {
                let (pos, size) = (pos.to_logical::<f64>(scale), size.to_logical::<f64>(scale));
                shell.remember_window(WindowGeometry {
                    x: pos.x,
                    y: pos.y,
                    width: size.width,
                    height: size.height,
                });
            }
        }
        WindowEvent::CloseRequested { api, .. } => {
            api.prevent_close();
            let app = app.clone();
            tauri::async_runtime::spawn(async move { shell.close_requested(&app).await });
        }
        _ => {}
    }
}
