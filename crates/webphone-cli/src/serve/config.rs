//! What `--serve`, `--allow-origin` and `--allow-no-origin` ask for, validated.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Port of the local service when `--serve` names no port (and the facade's default).
pub const DEFAULT_PORT: u16 = 18520;

/// A `--serve` or `--allow-origin` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeConfigError {
    #[error("--serve {0}: expected a loopback address such as 127.0.0.1:{DEFAULT_PORT}, [::1]:{DEFAULT_PORT} or localhost")]
    BadAddress(String),
    #[error("--serve {0}: the local service binds loopback only (127.0.0.1, ::1 or localhost); any web page could reach another address")]
    NotLoopback(String),
    #[error("--allow-origin {0}: expected an origin such as http://127.0.0.1:8080 (scheme://host[:port], no path) or null")]
    BadOrigin(String),
}

/// Settings of the local WebSocket service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Loopback address to listen on (port 0: any free port, reported on stderr).
    pub addr: SocketAddr,
    /// Normalised origins (see [`normalize_origin`]) whose pages may connect.
    pub allowed_origins: Vec<String>,
    /// Admit upgrade requests without an `Origin` header (non-browser clients).
    pub allow_no_origin: bool,
    /// `--www DIR`: also hand out the files of DIR over HTTP ([`super::files`]); pages from
    /// the service's own origin are then admitted too.
    pub www: Option<std::path::PathBuf>,
}

impl ServeConfig {
    /// Whether an upgrade request with this `Origin` header (None: no header) is admitted.
    pub fn admits(&self, origin: Option<&str>) -> bool {
        match origin {
            None => self.allow_no_origin,
            Some(o) => {
                let o = normalize_origin(o);
                self.allowed_origins.contains(&o)
            }
        }
    }

    /// [`Self::admits`], also admitting the service's own origins (`http://127.0.0.1:PORT`,
    /// `http://localhost:PORT`, `http://[::1]:PORT` for the port listened on) when it hands
    /// out pages itself (`--www`).
    pub fn admits_at(&self, origin: Option<&str>, local: std::net::SocketAddr) -> bool {
        if self.admits(origin) {
            return true;
        }
        let (Some(_), Some(o)) = (&self.www, origin) else {
            return false;
        };
        let o = normalize_origin(o);
        let port = local.port();
        [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ]
        .contains(&o)
    }
}

/// Parses the `--serve` address: `IP:PORT`, `[IPv6]:PORT`, `IP`, `localhost[:PORT]` or `:PORT`
/// (127.0.0.1). A missing port is [`DEFAULT_PORT`]. Anything but a loopback address is refused.
pub fn parse_serve_addr(s: &str) -> Result<SocketAddr, ServeConfigError> {
    let t = s.trim();
    let bad = || ServeConfigError::BadAddress(s.to_string());
    let port_of = |p: &str| p.parse::<u16>().map_err(|_| bad());
    let addr = if t.is_empty() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT)
    } else if let Ok(a) = t.parse::<SocketAddr>() {
        a
    } else if let Ok(ip) = t
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        SocketAddr::new(ip, DEFAULT_PORT)
    } else if let Some(p) = t.strip_prefix(':') {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port_of(p)?)
    } else {
        let (host, port) = match t.rsplit_once(':') {
            Some((h, p)) => (h, port_of(p)?),
            None => (t, DEFAULT_PORT),
        };
        if host.eq_ignore_ascii_case("localhost") {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        } else if host.contains(|c: char| c.is_ascii_alphabetic()) {
            // A host name could resolve anywhere: only the loopback literals and localhost.
            return Err(ServeConfigError::NotLoopback(s.to_string()));
        } else {
            return Err(bad());
        }
    };
    if !addr.ip().is_loopback() {
        return Err(ServeConfigError::NotLoopback(s.to_string()));
    }
    Ok(addr)
}

/// Canonical form of an origin for comparison: lower-case, no trailing slash, no default port
/// (`:80` for http/ws, `:443` for https/wss).
pub fn normalize_origin(o: &str) -> String {
    let mut s = o.trim().trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [
        ("http://", ":80"),
        ("ws://", ":80"),
        ("https://", ":443"),
        ("wss://", ":443"),
    ] {
        if s.starts_with(scheme) && s.ends_with(port) {
            s.truncate(s.len() - port.len());
        }
    }
    s
}

/// Validates and normalises one `--allow-origin` value: `scheme://host[:port]` without path,
/// query or user info, or the literal `null` (pages from `file:` URLs and sandboxed frames).
pub fn parse_origin(o: &str) -> Result<String, ServeConfigError> {
    let bad = || ServeConfigError::BadOrigin(o.to_string());
    let n = normalize_origin(o);
    if n == "null" {
        return Ok(n);
    }
    let (scheme, rest) = n.split_once("://").ok_or_else(bad)?;
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let rest_ok = !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && !rest.starts_with(':')
        && !rest.ends_with(':');
    if scheme_ok && rest_ok {
        Ok(n)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_addresses_default_to_loopback_and_the_default_port() {
        let p = |s: &str| parse_serve_addr(s).unwrap().to_string();
        assert_eq!(p("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(p("127.0.0.1"), format!("127.0.0.1:{DEFAULT_PORT}"));
        assert_eq!(p("[::1]:9000"), "[::1]:9000");
        assert_eq!(p("::1"), format!("[::1]:{DEFAULT_PORT}"));
        assert_eq!(p("localhost:0"), "127.0.0.1:0");
        assert_eq!(p("LOCALHOST"), format!("127.0.0.1:{DEFAULT_PORT}"));
        assert_eq!(p(":7000"), "127.0.0.1:7000");
        assert_eq!(p(""), format!("127.0.0.1:{DEFAULT_PORT}"));
        assert_eq!(p("127.0.0.2:1"), "127.0.0.2:1");
    }

    #[test]
    fn non_loopback_serve_addresses_are_refused() {
        for a in [
            "0.0.0.0:9000",
            "192.168.1.2",
            "[::]:1",
            "example.org:80",
            "sip.example.org",
        ] {
            assert!(
                matches!(parse_serve_addr(a), Err(ServeConfigError::NotLoopback(_))),
                "{a}"
            );
        }
        for a in ["127.0.0.1:99999", "127.0.0.1:x", "1.2.3", "localhost:"] {
            assert!(
                matches!(parse_serve_addr(a), Err(ServeConfigError::BadAddress(_))),
                "{a}"
            );
        }
    }

    #[test]
    fn origins_compare_case_insensitively_without_default_ports() {
        let cfg = ServeConfig {
            addr: "127.0.0.1:1".parse().unwrap(),
            allowed_origins: vec![
                parse_origin("HTTP://Example.org:80/").unwrap(),
                parse_origin("http://127.0.0.1:8080").unwrap(),
            ],
            allow_no_origin: false,
            www: None,
        };
        assert!(cfg.admits(Some("http://example.org")));
        assert!(cfg.admits(Some("http://127.0.0.1:8080")));
        assert!(!cfg.admits(Some("http://127.0.0.1:8081")));
        assert!(!cfg.admits(Some("https://example.org")));
        assert!(!cfg.admits(Some("null")));
        assert!(!cfg.admits(None));
        let open = ServeConfig {
            allow_no_origin: true,
            ..cfg
        };
        assert!(open.admits(None));
    }

    #[test]
    fn the_own_origin_is_admitted_only_when_the_service_hands_out_pages() {
        let local: SocketAddr = "127.0.0.1:4100".parse().unwrap();
        let cfg = ServeConfig {
            addr: local,
            allowed_origins: vec![],
            allow_no_origin: false,
            www: None,
        };
        assert!(!cfg.admits_at(Some("http://127.0.0.1:4100"), local));
        let www = ServeConfig {
            www: Some("/srv".into()),
            ..cfg
        };
        assert!(www.admits_at(Some("http://127.0.0.1:4100"), local));
        assert!(www.admits_at(Some("http://LOCALHOST:4100/"), local));
        assert!(!www.admits_at(Some("http://127.0.0.1:4101"), local));
        assert!(!www.admits_at(Some("https://127.0.0.1:4100"), local));
        assert!(!www.admits_at(None, local));
    }

    #[test]
    fn malformed_allow_origin_values_are_refused() {
        for o in [
            "example.org",
            "http://",
            "http://a/b",
            "http://u@h",
            "://h",
            "http://h:",
        ] {
            assert!(parse_origin(o).is_err(), "{o}");
        }
        assert_eq!(parse_origin("null").unwrap(), "null");
        assert_eq!(
            parse_origin("https://a.example:443").unwrap(),
            "https://a.example"
        );
    }
}
