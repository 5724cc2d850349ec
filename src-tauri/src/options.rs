//! Start-up options of the desktop app: initial engine parameters from the environment and the
//! command line, and an optional profile directory override.
//!
//! Sources, applied in this order (a later value for the same name wins in the engine):
//! 1. `WEBPHONE_PARAMS="name=value;name=value"`
//! 2. `--param name=value`, `--param=name=value`, `-p name=value`, `-pname=value`
//!
//! `--work-dir DIR` (or `WEBPHONE_WORK_DIR`) replaces the profile directory, which is handy for
//! tests that must not touch the user's profile.

use std::path::PathBuf;

/// What the command line and the environment asked for.
#[derive(Debug, Default, PartialEq)]
pub struct StartupOptions {
    pub params: Vec<(String, String)>,
    pub work_dir: Option<PathBuf>,
    pub help: bool,
    /// Arguments we did not understand; reported, never fatal (WebDriver and desktop launchers
    /// may add their own).
    pub ignored: Vec<String>,
}

pub const USAGE: &str = "\
Usage: webphone-desktop [OPTIONS]

Options:
  -p, --param NAME=VALUE   set an engine parameter at start (repeatable)
      --work-dir DIR       profile directory (default: the platform's app data directory)
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
            } else if arg == "--" {
                // `cargo run -p webphone-desktop -- -- -p ...` style wrappers pass it through.
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
        assert_eq!(o.work_dir, Some(PathBuf::from("/tmp/w")));
        assert!(o.help);
        assert_eq!(o.ignored, s(&["--automation", "novalue", "-p"]));
        let o = StartupOptions::parse(s(&[]), Some(""), Some("/env/w"));
        assert_eq!(o.work_dir, Some(PathBuf::from("/env/w")));
        assert!(o.params.is_empty());
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
