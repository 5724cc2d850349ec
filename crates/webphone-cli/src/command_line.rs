//! Parsing of the CLI's inputs: start-up options and the API calls typed on stdin.

use std::path::PathBuf;

use crate::serve::{parse_origin, parse_serve_addr, ServeConfig};

/// What the command line asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Parameters in the order given; later ones win.
    pub params: Vec<(String, String)>,
    /// Print `CALLBACK,<name>,<json args>` lines for the high-level callbacks too.
    pub callbacks: bool,
    /// `--serve [ADDR]`: run the local WebSocket service with these settings.
    pub serve: Option<ServeConfig>,
    /// `--work-dir DIR`: keep settings per profile in DIR (none are kept without it).
    pub work_dir: Option<PathBuf>,
    pub help: bool,
    pub version: bool,
}

pub const USAGE: &str = "\
usage: webphone-cli [-p name=value]... [--config FILE] [--callbacks] [--work-dir DIR]
                    [--serve [ADDR] [--allow-origin ORIGIN]... [--allow-no-origin] [--www DIR]]

Runs the softphone engine headless. Each stdin line is one API call, for example
  call 1002        dtmf \"12#\"        setparameter loglevel 5        hangup        quit
The vCard extensions take a file here: importvcard FILE (vCard 2.1/3.0/4.0 into the contacts)
and exportvcard FILE (the contacts as vCard 4.0); both print the number of contacts.
Results are printed as RESULT,<function>,<value> and errors as ERROR,<function>,<message>;
every other stdout line is a notification string (START, STATUS, CDR, EVENT, LOG, ...).

options:
  -p, --param name=value   set a parameter (repeatable; wins over --config and the environment)
  -c, --config FILE        read parameters from FILE: one name=value per line, # comments
  --callbacks              also print CALLBACK,<name>,<json args> for onRegistered, onCdr, ...
  --work-dir DIR           keep settings per profile in DIR/<profile>/webphone.sqlite (never the
                           password); without it nothing is saved between runs
  --serve [ADDR]           also serve webphone_api.js pages over WebSocket on a loopback ADDR
                           (default 127.0.0.1:18520; port 0 = any free port); the address is reported
                           on stderr; end of stdin no longer stops the program (quit or a
                           signal does)
  --allow-origin ORIGIN    admit pages from ORIGIN, e.g. http://127.0.0.1:8080 (repeatable)
  --allow-no-origin        admit clients that send no Origin header (scripts, not browsers)
  --www DIR                also hand out the files of DIR over HTTP on the same port (e.g. the
                           skins: http://127.0.0.1:PORT/skins/softphone/softphone.html?wp_serviceport=PORT);
                           pages from that address may use the phone
  -h, --help               this text
  -V, --version            print the version
environment:
  WP_<NAME>=value          a parameter, e.g. WP_PASSWORD (keeps it out of the process list)
";

/// Parses `name=value`, refusing an empty name.
fn name_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() => Ok((n.trim().to_string(), v.to_string())),
        _ => Err(format!("expected name=value, got '{s}'")),
    }
}

/// Reads a config file: `name=value` lines; blank lines and `#` comments are skipped.
pub fn parse_config(text: &str, origin: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (n, v) = name_value(l).map_err(|e| format!("{origin}:{}: {e}", i + 1))?;
        out.push((n, v.trim().to_string()));
    }
    Ok(out)
}

/// Parameters from `WP_<NAME>` environment variables.
pub fn env_params(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter_map(|(k, v)| {
        let name = k.strip_prefix("WP_")?;
        (!name.is_empty()).then(|| (name.to_ascii_lowercase(), v))
    })
    .collect()
}

/// Parses the process arguments (without the program name). Files named by `--config` are
/// read through `read_file`, so the parser stays testable.
pub fn parse_args(
    args: &[String],
    env: Vec<(String, String)>,
    read_file: impl Fn(&PathBuf) -> Result<String, String>,
) -> Result<Options, String> {
    let mut opts = Options::default();
    let mut config = Vec::new();
    let mut cli = Vec::new();
    let mut serve: Option<String> = None;
    let mut origins = Vec::new();
    let mut allow_no_origin = false;
    let mut www: Option<PathBuf> = None;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--serve" => {
                // ADDR is optional: a following option (or nothing) means the default address.
                let addr = match it.peek() {
                    Some(n) if !n.starts_with('-') => it.next().cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                serve = Some(addr);
            }
            s if s.starts_with("--serve=") => serve = Some(s["--serve=".len()..].to_string()),
            "--allow-origin" => {
                let o = it.next().ok_or_else(|| format!("{a} needs an origin"))?;
                origins.push(parse_origin(o).map_err(|e| e.to_string())?);
            }
            s if s.starts_with("--allow-origin=") => origins
                .push(parse_origin(&s["--allow-origin=".len()..]).map_err(|e| e.to_string())?),
            "--allow-no-origin" => allow_no_origin = true,
            "--www" => {
                let d = it.next().ok_or_else(|| format!("{a} needs a folder"))?;
                www = Some(PathBuf::from(d));
            }
            "-p" | "--param" => {
                let v = it.next().ok_or_else(|| format!("{a} needs name=value"))?;
                cli.push(name_value(v)?);
            }
            "-c" | "--config" => {
                let f = PathBuf::from(it.next().ok_or_else(|| format!("{a} needs a file"))?);
                let text = read_file(&f)?;
                config.extend(parse_config(&text, &f.display().to_string())?);
            }
            "--callbacks" => opts.callbacks = true,
            "--work-dir" => {
                let d = it.next().ok_or_else(|| format!("{a} needs a folder"))?;
                opts.work_dir = Some(PathBuf::from(d));
            }
            "-h" | "--help" => opts.help = true,
            "-V" | "--version" => opts.version = true,
            s if s.starts_with("--param=") => cli.push(name_value(&s["--param=".len()..])?),
            s if s.starts_with("--config=") => {
                let f = PathBuf::from(&s["--config=".len()..]);
                let text = read_file(&f)?;
                config.extend(parse_config(&text, &f.display().to_string())?);
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    match serve {
        Some(addr) => {
            opts.serve = Some(ServeConfig {
                addr: parse_serve_addr(&addr).map_err(|e| e.to_string())?,
                allowed_origins: origins,
                allow_no_origin,
                www,
            })
        }
        None if !origins.is_empty() || allow_no_origin || www.is_some() => {
            return Err("--allow-origin, --allow-no-origin and --www need --serve".into())
        }
        None => {}
    }
    opts.params = config;
    opts.params.extend(env);
    opts.params.extend(cli);
    Ok(opts)
}

/// Splits one stdin line into the function name and its arguments.
///
/// Words are separated by blanks; `"..."` and `'...'` group words, and inside double quotes a
/// backslash escapes the next character. An unterminated quote is an error.
pub fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("unterminated quote".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn quoted_arguments_keep_spaces() {
        assert_eq!(tokenize(r#"dtmf "12 #""#).unwrap(), s(&["dtmf", "12 #"]));
        assert_eq!(
            tokenize("setparameter displayname 'John Doe'").unwrap(),
            s(&["setparameter", "displayname", "John Doe"])
        );
        assert_eq!(tokenize(r#"x "a\"b" """#).unwrap(), s(&["x", "a\"b", ""]));
        assert!(tokenize("call \"1002").is_err());
        assert!(tokenize("   ").unwrap().is_empty());
    }

    #[test]
    fn command_line_params_win_over_env_and_config() {
        let read = |_: &PathBuf| Ok("# c\nusername=fromfile\n\nloglevel = 3\n".to_string());
        let o = parse_args(
            &s(&["--config", "f", "-p", "username=cli", "--callbacks"]),
            vec![("username".into(), "env".into())],
            read,
        )
        .unwrap();
        assert!(o.callbacks);
        assert_eq!(o.params.last().unwrap(), &("username".into(), "cli".into()));
        assert!(o.params.contains(&("loglevel".into(), "3".into())));
    }

    #[test]
    fn bad_options_are_refused_with_a_reason() {
        let read = |_: &PathBuf| Err("cannot read".to_string());
        assert!(parse_args(&s(&["-p"]), vec![], read).is_err());
        assert!(parse_args(&s(&["-p", "=x"]), vec![], read).is_err());
        assert!(parse_args(&s(&["--bogus"]), vec![], read).is_err());
        assert!(parse_args(&s(&["--config", "nope"]), vec![], read).is_err());
        assert!(parse_config("novalue", "f").is_err());
    }

    #[test]
    fn serve_options_are_validated_and_default_to_loopback() {
        let read = |_: &PathBuf| Err("no files".to_string());
        let o = parse_args(&s(&["--serve", "--callbacks"]), vec![], read).unwrap();
        let cfg = o.serve.unwrap();
        assert_eq!(
            cfg.addr.to_string(),
            format!("127.0.0.1:{}", crate::serve::config::DEFAULT_PORT)
        );
        assert!(USAGE.contains(&format!("127.0.0.1:{}", crate::serve::config::DEFAULT_PORT)));
        assert!(o.callbacks);
        let o = parse_args(
            &s(&[
                "--serve",
                ":0",
                "--allow-origin",
                "http://127.0.0.1:8080/",
                "--allow-no-origin",
            ]),
            vec![],
            read,
        )
        .unwrap();
        let cfg = o.serve.unwrap();
        assert_eq!(cfg.addr.port(), 0);
        assert_eq!(
            cfg.allowed_origins,
            vec!["http://127.0.0.1:8080".to_string()]
        );
        assert!(cfg.allow_no_origin);
        let e = parse_args(&s(&["--serve=0.0.0.0:9000"]), vec![], read).unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        assert!(parse_args(&s(&["--allow-origin", "http://a"]), vec![], read).is_err());
        assert!(parse_args(&s(&["--serve", "--allow-origin", "a/b"]), vec![], read).is_err());
    }

    #[test]
    fn wp_environment_variables_become_parameters() {
        let v = env_params(
            vec![
                ("WP_PASSWORD".to_string(), "x".to_string()),
                ("HOME".to_string(), "/root".to_string()),
            ]
            .into_iter(),
        );
        assert_eq!(v, vec![("password".to_string(), "x".to_string())]);
    }
}
