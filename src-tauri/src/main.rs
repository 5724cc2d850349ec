//! WebPhone desktop: the `webphone_api` pages in a Tauri 2 window over the native engine.
//!
//! The app is a thin adapter. The webview reaches the engine through exactly one command,
//! `api(fn, args)`, which calls [`Phone::api`], and receives every engine [`Event`] as the Tauri
//! event `webphone` carrying the engine's JSON shape (`{"ev":"onXXX","args":[...]}` or
//! `{"ev":"notification","text":"..."}`). All phone semantics live in the engine and in
//! `ui/webphone_api.js`.

// No console window for release builds on Windows.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod options;

use std::io::IsTerminal;
use std::time::Duration;

use tauri::{Emitter, Manager, RunEvent};
use tokio::sync::broadcast::{self, error::RecvError};
use webphone_engine::{Event, Phone, PhoneOptions};

use options::{arg_to_string, page_path, StartupOptions, USAGE};

/// Name of the Tauri event that carries the engine's event stream to the webview.
const EVENT_CHANNEL: &str = "webphone";
/// Label of the main window (the capability file grants the engine's command to it).
const MAIN_WINDOW: &str = "main";
/// How long shutdown waits for `stop` (unregister, hang up) before giving up.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// The one command the webview may call: any `webphone_api` function by name.
///
/// Arguments may be any JSON values; they are turned into strings ("all parameters can be passed
/// as strings"). Errors come back as their message, which rejects the JS promise.
#[tauri::command]
async fn api(
    phone: tauri::State<'_, Phone>,
    r#fn: String,
    args: Option<Vec<serde_json::Value>>,
) -> Result<serde_json::Value, String> {
    let args: Vec<String> = args
        .unwrap_or_default()
        .into_iter()
        .map(arg_to_string)
        .collect();
    tracing::debug!(func = %r#fn, ?args, "api call");
    let result = phone.api(&r#fn, args).await;
    if let Err(e) = &result {
        tracing::debug!(func = %r#fn, error = %e, "api call failed");
    }
    result.map_err(|e| e.to_string())
}

/// Forwards every engine event to the webviews until the engine's stream closes.
async fn forward_events(app: tauri::AppHandle, mut rx: broadcast::Receiver<Event>) {
    loop {
        match rx.recv().await {
            Ok(ev) => {
                if let Event::Notification(text) = &ev {
                    tracing::trace!(%text, "notification");
                }
                if let Err(e) = app.emit(EVENT_CHANNEL, &ev) {
                    tracing::warn!(error = %e, "could not emit an engine event");
                }
            }
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
    let opts = StartupOptions::parse(
        std::env::args().skip(1),
        std::env::var("WEBPHONE_PARAMS").ok().as_deref(),
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
        params, work_dir, ..
    } = opts;
    tracing::info!(
        params = ?params.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        "starting"
    );

    let app = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![api])
        .setup(move |app| {
            let work_dir = work_dir.or_else(|| app.path().app_data_dir().ok());
            tracing::info!(work_dir = ?work_dir, "profile directory");
            // The engine may spawn tasks while it is built: give it Tauri's tokio runtime.
            let rt = tauri::async_runtime::handle();
            let _enter = rt.inner().enter();
            let phone = Phone::new(PhoneOptions { params, work_dir });
            app.manage(phone.clone());
            let handle = app.handle().clone();
            // Subscribe now, before the page exists, so no event of the session is missed.
            tauri::async_runtime::spawn(forward_events(handle.clone(), phone.subscribe()));
            tauri::async_runtime::spawn(exit_on_signal(handle));
            // The main window is described in tauri.conf.json (`create: false`) and opened here
            // with the page chosen by `--page`.
            let mut window = app
                .config()
                .app
                .windows
                .iter()
                .find(|w| w.label == MAIN_WINDOW)
                .cloned()
                .ok_or("tauri.conf.json has no main window")?;
            window.url = tauri::WebviewUrl::App(page.clone().into());
            tracing::info!(%page, "opening the main window");
            tauri::WebviewWindowBuilder::from_config(app.handle(), &window)?.build()?;
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("error while building the WebPhone app");

    app.run(|app, event| {
        if let RunEvent::Exit = event {
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
