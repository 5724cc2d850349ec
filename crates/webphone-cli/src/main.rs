//! `webphone-cli`: the softphone engine headless. API calls on stdin, notification strings on
//! stdout.

mod command_line;
mod serve;
mod vcard_file;

use std::io::Write;
use std::process::ExitCode;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::broadcast::error::RecvError;
use webphone_engine::{ApiError, Event, Phone, PhoneOptions};

use command_line::{env_params, parse_args, tokenize, USAGE};

/// Crates whose TRACE events print WebSocket messages verbatim (tungstenite logs every message
/// it receives): a page's `setparameter password ...` would reach stderr with `RUST_LOG=trace`.
/// Their TRACE events are dropped whatever `RUST_LOG` says; DEBUG and above stay.
const PAYLOAD_LOGGERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

fn carries_payloads(target: &str) -> bool {
    PAYLOAD_LOGGERS.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Writes one line to stdout and flushes it, so a reading program sees it at once.
fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

/// `callto` + `autoaction` (catalog: 0 nothing, 1 call, 2 chat, 3 video call): a headless
/// phone calls `callto` at start for 1 and 3 (no video in this engine: a voice call). Chat
/// (2) needs a user interface and is left to the skins.
async fn start_up_action(phone: &Phone) {
    let get = |name: &'static str| async move {
        phone
            .api("getparameter", vec![name.into()])
            .await
            .map(|v| value_text(&v))
            .unwrap_or_default()
    };
    let callto = get("callto").await;
    let action = get("autoaction").await;
    if callto.trim().is_empty() || !matches!(action.trim(), "1" | "3") {
        return;
    }
    if let Err(e) = phone.api("call", vec![callto.trim().to_string()]).await {
        out(&format!("ERROR,call,{e}"));
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "OK".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn main() -> ExitCode {
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::Layer;
        let env = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let no_payloads = tracing_subscriber::filter::filter_fn(|m| {
            *m.level() != tracing::Level::TRACE || !carries_payloads(m.target())
        });
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(env)
                    .with_filter(no_payloads),
            )
            .init();
    }

    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args, env_params(std::env::vars()), |p| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    }) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("webphone-cli: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if opts.version {
        println!("webphone-cli {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("webphone-cli: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(run(opts.params, opts.callbacks, opts.serve, opts.work_dir))
}

async fn run(
    params: Vec<(String, String)>,
    callbacks: bool,
    serve: Option<serve::ServeConfig>,
    work_dir: Option<std::path::PathBuf>,
) -> ExitCode {
    let phone = match Phone::try_new(PhoneOptions { params, work_dir }) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("webphone-cli: {e}");
            return ExitCode::from(2);
        }
    };
    let mut events = phone.subscribe();
    let printer = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(Event::Notification(text)) => out(&text),
                // `_sync` and other `_` events are for the JavaScript facade only.
                Ok(Event::Callback { name, args }) if callbacks && !name.starts_with('_') => {
                    let json = serde_json::Value::Array(args).to_string();
                    out(&format!("CALLBACK,{name},{json}"));
                }
                Ok(Event::Callback { .. }) => {}
                Err(RecvError::Lagged(n)) => {
                    out(&format!("LOG,WARNING,{n} notifications were dropped"))
                }
                Err(RecvError::Closed) => break,
            }
        }
    });

    // The local WebSocket service, when asked for. Its address goes to stderr: stdout carries
    // only notification strings and results.
    let serving = match serve {
        Some(cfg) => {
            if cfg.allowed_origins.is_empty() && !cfg.allow_no_origin {
                eprintln!(
                    "webphone-cli: warning: no --allow-origin given: every browser page will be refused"
                );
            }
            let server = match serve::Server::bind(cfg).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("webphone-cli: {e}");
                    return ExitCode::from(1);
                }
            };
            match server.local_addr() {
                Ok(a) => eprintln!("webphone-cli: serving ws://{a}"),
                Err(e) => eprintln!("webphone-cli: serving (address unknown: {e})"),
            }
            Some(tokio::spawn(server.run(phone.clone())))
        }
        None => None,
    };

    // The library is ready to take API calls from here on (the facade's onLoaded).
    if callbacks {
        out("CALLBACK,onLoaded,[]");
    }
    let autostart = phone
        .api("getparameter", vec!["autostart".into()])
        .await
        .map(|v| value_text(&v))
        .unwrap_or_default();
    if !matches!(autostart.trim(), "false" | "0") {
        if let Err(e) = phone.api("start", vec![]).await {
            out(&format!("ERROR,start,{e}"));
        } else {
            // A service started for web pages leaves start-up actions to the pages (a stored
            // click-to-call value must not dial at every service start).
            if serving.is_none() {
                start_up_action(&phone).await;
            }
        }
    }

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let code = loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => {
                let line = match line {
                    Ok(Some(l)) => l,
                    // While serving, pages are the clients: keep running until quit or a signal.
                    Ok(None) if serving.is_some() => {
                        stdin_open = false;
                        continue;
                    }
                    // End of input means the controlling program is gone: stop cleanly.
                    Ok(None) => break ExitCode::SUCCESS,
                    Err(e) if serving.is_some() => {
                        eprintln!("webphone-cli: cannot read stdin ({e}); serving on");
                        stdin_open = false;
                        continue;
                    }
                    Err(e) => {
                        eprintln!("webphone-cli: cannot read stdin: {e}");
                        break ExitCode::from(1);
                    }
                };
                let words = match tokenize(&line) {
                    Ok(w) => w,
                    Err(e) => {
                        out(&format!("ERROR,-,{e}"));
                        continue;
                    }
                };
                let Some((func, args)) = words.split_first() else { continue };
                if matches!(func.as_str(), "quit" | "exit") {
                    break ExitCode::SUCCESS;
                }
                test_crash_trigger(func);
                if let Some(r) = vcard_file::run(&phone, func, args).await {
                    match r {
                        Ok(v) => out(&format!("RESULT,{func},{v}")),
                        Err(e) => out(&format!("ERROR,{func},{e}")),
                    }
                    continue;
                }
                match phone.api(func, args.to_vec()).await {
                    Ok(v) => out(&format!("RESULT,{func},{}", value_text(&v))),
                    Err(ApiError::UnknownFunction) => {
                        out(&format!("ERROR,{func},unknown function"))
                    }
                    Err(e) => out(&format!("ERROR,{func},{e}")),
                }
            }
            _ = shutdown_signal() => break ExitCode::SUCCESS,
        }
    };
    if let Some(server) = serving {
        server.abort();
    }
    let _ = phone.api("stop", vec![]).await;
    drop(phone);
    // Let the printer drain what the stop produced.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(300), printer).await;
    code
}

/// Test-only crash path: in a debug build started with `WEBPHONE_CLI_TEST_PANIC=1`, the stdin
/// line `__panic` panics on the main task, so that a test can check what a crash prints (the
/// secrets test greps it for the password). Release builds and ordinary runs ignore it.
fn test_crash_trigger(func: &str) {
    if cfg!(debug_assertions)
        && func == "__panic"
        && std::env::var_os("WEBPHONE_CLI_TEST_PANIC").is_some_and(|v| v == "1")
    {
        panic!("webphone-cli: crash requested with __panic (WEBPHONE_CLI_TEST_PANIC=1)");
    }
}

#[cfg(unix)]
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }
        _ => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::carries_payloads;

    #[test]
    fn websocket_frame_loggers_are_recognised_and_others_not() {
        assert!(carries_payloads("tungstenite::protocol"));
        assert!(carries_payloads("tungstenite"));
        assert!(carries_payloads("tokio_tungstenite::compat"));
        assert!(!carries_payloads("tungstenite_extra"));
        assert!(!carries_payloads("webphone_cli::serve"));
        assert!(!carries_payloads("rsipstack::transport"));
    }
}
