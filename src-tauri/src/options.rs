//! Start-up options of the desktop app: initial engine parameters from the environment and the
//! command line, and an optional profile directory override.
//!
//! Sources, applied in this order (a later value for the same name wins in the engine):
//! 1. `WEBPHONE_PARAMS="name=value;name=value"`
//! 2. `--param name=value`, `--param=name=value`, `-p name=value`, `-pname=value`
//!
//! `--work-dir DIR` (or `WEBPHONE_WORK_DIR`) replaces the profile directory, which is handy for
//! tests that must not touch the user's profile.
//!
//! `--page NAME` chooses the page the window opens: `softphone` (the default, the softphone
//! skin), `minimal` (the minimal sample page) or a path inside the bundled frontend.

use std::path::PathBuf;

/// What the command line and the environment asked for.
#[derive(Debug, Default, PartialEq)]
pub struct StartupOptions {
    pub params: Vec<(String, String)>,
    pub work_dir: Option<PathBuf>,
    /// `--page` as given (see [`page_path`]).
    pub page: Option<String>,
    pub help: bool,
    /// `--minimized`: start with the main window hidden in the tray (start at login passes it).
    pub minimized: bool,
    /// Arguments we did not understand; reported, never fatal (WebDriver and desktop launchers
    /// may add their own).
    pub ignored: Vec<String>,
}

pub const USAGE: &str = "\
Usage: webphone-desktop [OPTIONS]

Options:
  -p, --param NAME=VALUE   set an engine parameter at start (repeatable)
      --work-dir DIR       profile directory (default: the platform's app data directory)
      --page PAGE          page to open: softphone (default, the softphone skin), minimal
                           (the minimal sample) or a path in the bundled frontend
                           (e.g. skins/softphone/softphone.html?wp_language=de)
      --minimized          start in the tray, without showing the window
                           (also the parameter startminimized=true)
  -h, --help               print this help

Environment:
  WEBPHONE_PARAMS          NAME=VALUE;NAME=VALUE (applied before --param)
  WEBPHONE_WORK_DIR        same as --work-dir
  RUST_LOG                 log filter for stderr (default: info,rsipstack=warn)
";

/// Splits `name=value`; the name is trimmed, the value is kept as given (it may contain `=`).
fn split_param(s: &str) -> Option<(String, String)> {
    let (name, value) = s.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some((name.to_string(), value.to_string()))
}

impl StartupOptions {
    /// Parses the process arguments (without the program name) and the two environment values.
    pub fn parse<I>(args: I, env_params: Option<&str>, env_work_dir: Option<&str>) -> Self
    where
        I: IntoIterator<Item = String>,
    {
        let mut opts = StartupOptions {
            work_dir: env_work_dir.filter(|s| !s.is_empty()).map(PathBuf::from),
            ..StartupOptions::default()
        };
        if let Some(env) = env_params {
            for item in env.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                match split_param(item) {
                    Some(p) => opts.params.push(p),
                    None => opts.ignored.push(format!("WEBPHONE_PARAMS: {item}")),
                }
            }
        }
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let param = if arg == "-p" || arg == "--param" {
                match it.next() {
                    Some(v) => v,
                    None => {
                        opts.ignored.push(arg);
                        continue;
                    }
                }
            } else if let Some(v) = arg.strip_prefix("--param=") {
                v.to_string()
            } else if let Some(v) = arg.strip_prefix("-p").filter(|v| v.contains('=')) {
                v.to_string()
            } else if arg == "--work-dir" {
                match it.next() {
                    Some(v) => opts.work_dir = Some(PathBuf::from(v)),
                    None => opts.ignored.push(arg),
                }
                continue;
            } else if let Some(v) = arg.strip_prefix("--work-dir=") {
                opts.work_dir = Some(PathBuf::from(v));
                continue;
            } else if arg == "--page" {
                match it.next() {
                    Some(v) => opts.page = Some(v),
                    None => opts.ignored.push(arg),
                }
                continue;
            } else if let Some(v) = arg.strip_prefix("--page=") {
                opts.page = Some(v.to_string());
                continue;
            } else if arg == "--" {
                // `cargo run -p webphone-desktop -- -- -p ...` style wrappers pass it through.
                continue;
            } else if arg == "--minimized" {
                opts.minimized = true;
                continue;
            } else if arg == "-h" || arg == "--help" {
                opts.help = true;
                continue;
            } else {
                opts.ignored.push(arg);
                continue;
            };
            match split_param(&param) {
                Some(p) => opts.params.push(p),
                None => opts.ignored.push(param),
            }
        }
        opts
    }
}

/// The page the window opens by default: the softphone skin.
pub const DEFAULT_PAGE: &str = "skins/softphone/softphone.html";
/// The minimal sample page (`--page minimal`).
pub const MINIMAL_PAGE: &str = "ui/samples/minimal/index.html";

/// The frontend path for a `--page` value: a short name (`softphone`, `minimal`) or a relative
/// path inside the bundled frontend (query allowed). Absolute paths, URLs and `..` are refused.
pub fn page_path(page: Option<&str>) -> Result<String, String> {
    let Some(p) = page.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(DEFAULT_PAGE.to_string());
    };
    match p.to_ascii_lowercase().as_str() {
        "softphone" => return Ok(DEFAULT_PAGE.to_string()),
        "minimal" => return Ok(MINIMAL_PAGE.to_string()),
        _ => {}
    }
    let path_part = p.split(['?', '#']).next().unwrap_or("");
    if path_part.starts_with(['/', '\\'])
        || path_part.contains(':')
        || path_part.split(['/', '\\']).any(|seg| seg == "..")
    {
        return Err(format!(
            "--page {p}: expected softphone, minimal or a relative path inside the app's frontend"
        ));
    }
    Ok(p.to_string())
}

/// Converts one JavaScript argument to the string the engine expects: "all parameters can be
/// passed as strings", so strings pass as-is, numbers and booleans in their JSON text, null as
/// empty, arrays and objects as compact JSON.
pub fn arg_to_string(v: serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_then_command_line_in_order() {
        let o = StartupOptions::parse(
            s(&[
                "--",
                "-p",
                "audiodevicein=null",
                "--param",
                "audiodeviceout=null",
                "--param=autostart=false",
                "-pserveraddress=sip.example.org:5060",
            ]),
            Some(" username=alice ; password=a=b;;"),
            None,
        );
        let names: Vec<_> = o.params.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            names,
            [
                "username=alice",
                "password=a=b",
                "audiodevicein=null",
                "audiodeviceout=null",
                "autostart=false",
                "serveraddress=sip.example.org:5060",
            ]
        );
        assert!(o.ignored.is_empty());
        assert!(!o.help);
    }

    #[test]
    fn work_dir_help_and_unknown_arguments() {
        let o = StartupOptions::parse(
            s(&[
                "--work-dir",
                "/tmp/w",
                "--automation",
                "-p",
                "novalue",
                "-h",
                "-p",
            ]),
            None,
            Some("/ignored/by/flag"),
        );
        assert!(!o.minimized);
        assert!(StartupOptions::parse(s(&["--minimized"]), None, None).minimized);
        assert_eq!(o.work_dir, Some(PathBuf::from("/tmp/w")));
        assert!(o.help);
        assert_eq!(o.ignored, s(&["--automation", "novalue", "-p"]));
        let o = StartupOptions::parse(s(&[]), Some(""), Some("/env/w"));
        assert_eq!(o.work_dir, Some(PathBuf::from("/env/w")));
        assert!(o.params.is_empty());
    }

    #[test]
    fn page_names_and_paths() {
        let o = StartupOptions::parse(s(&["--page", "minimal"]), None, None);
        assert_eq!(o.page.as_deref(), Some("minimal"));
        let o = StartupOptions::parse(s(&["--page=softphone"]), None, None);
        assert_eq!(o.page.as_deref(), Some("softphone"));
        assert!(StartupOptions::parse(s(&["--page"]), None, None).ignored == s(&["--page"]));
        assert_eq!(page_path(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_path(Some(" ")).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_path(Some("Minimal")).unwrap(), MINIMAL_PAGE);
        assert_eq!(page_path(Some("softphone")).unwrap(), DEFAULT_PAGE);
        assert_eq!(
            page_path(Some("skins/softphone/softphone.html?wp_language=de")).unwrap(),
            "skins/softphone/softphone.html?wp_language=de"
        );
        assert!(page_path(Some(
            "ui/samples/minimal/index.html?wp_serveraddress=sip:a@b"
        ))
        .is_ok());
        for bad in [
            "/etc/passwd",
            "../x.html",
            "ui/../../x",
            "https://example.org/",
            "data:text/html,x",
        ] {
            assert!(page_path(Some(bad)).is_err(), "{bad} refused");
        }
    }

    #[test]
    fn js_arguments_become_strings() {
        assert_eq!(arg_to_string(json!("1002")), "1002");
        assert_eq!(arg_to_string(json!(-2)), "-2");
        assert_eq!(arg_to_string(json!(1.5)), "1.5");
        assert_eq!(arg_to_string(json!(true)), "true");
        assert_eq!(arg_to_string(json!(null)), "");
        assert_eq!(arg_to_string(json!([1, "a"])), r#"[1,"a"]"#);
    }
}
