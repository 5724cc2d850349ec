//! Dial strings and server addresses: pure parsing and routing decisions, no I/O.

use std::fmt;
use std::net::IpAddr;

use crate::{AccountConfig, SipError};

/// Default SIP port for UDP and TCP (RFC 3261 §19.1.2).
pub(crate) const DEFAULT_PORT: u16 = 5060;

/// A host and a port (the port is explicit here; defaults are filled in by the parser's
/// callers).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HostPort {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub(crate) fn new(host: impl Into<String>, port: u16) -> Self {
        HostPort {
            host: host.into(),
            port,
        }
    }

    /// `host` with brackets around IPv6 literals, as in a SIP URI (RFC 3261 §25.1).
    pub(crate) fn uri_host(&self) -> String {
        uri_host(&self.host)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uri_host(), self.port)
    }
}

fn uri_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `host[:port]` as written in a URI: the port only when given.
fn host_and_optional_port(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{}:{p}", uri_host(host)),
        None => uri_host(host),
    }
}

/// Where an outgoing INVITE goes and how it is addressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// Request-URI and To URI, e.g. `sip:1002@example.com`.
    pub request_uri: String,
    /// The hop the request is sent to: the outbound proxy, the server or the target itself.
    pub next_hop: HostPort,
    /// `next_hop` is an outbound proxy: add `Route: <sip:next_hop;lr>` (RFC 3261 §8.1.2,
    /// loose routing §16.12).
    pub via_proxy: bool,
    /// Domain part of our From URI (`server` or, without an account server, our IP).
    pub from_domain: String,
}

/// A parsed `host[:port]` with the port as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerAddr {
    pub host: String,
    pub port: Option<u16>,
}

impl ServerAddr {
    pub(crate) fn hop(&self) -> HostPort {
        HostPort::new(self.host.clone(), self.port.unwrap_or(DEFAULT_PORT))
    }

    /// The domain as used in URIs: host, plus the port when one was given explicitly.
    pub(crate) fn domain(&self) -> String {
        host_and_optional_port(&self.host, self.port)
    }
}

/// Parse `host`, `host:port`, `[v6]`, `[v6]:port`, optionally prefixed with `sip:`
/// and followed by URI parameters (ignored).
pub(crate) fn parse_server(s: &str) -> Result<ServerAddr, String> {
    let s = s.trim();
    let s = strip_prefix_ci(s, "sip:").unwrap_or(s);
    let s = s.split(';').next().unwrap_or("");
    parse_hostport(s)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

fn parse_hostport(s: &str) -> Result<ServerAddr, String> {
    if s.is_empty() {
        return Err("empty host".into());
    }
    let (host, port_str) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or("unterminated IPv6 literal")?;
        let host = &rest[..end];
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("bad IPv6 literal {host:?}"));
        }
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected {after:?} after IPv6 literal")),
        };
        (host.to_string(), port)
    } else {
        if s.matches(':').count() > 1 {
            // A bare IPv6 address without brackets: no port possible.
            if s.parse::<std::net::Ipv6Addr>().is_ok() {
                return Ok(ServerAddr {
                    host: s.to_string(),
                    port: None,
                });
            }
            return Err(format!("bad host {s:?}"));
        }
        match s.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    if !host.contains(':') && !valid_hostname(&host) {
        return Err(format!("bad host {host:?}"));
    }
    let port = match port_str {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("bad port {p:?}")),
            Ok(p) => Some(p),
        },
    };
    Ok(ServerAddr { host, port })
}

/// RFC 3261 §25.1 `hostname` / `IPv4address` (letters, digits, `-`, `.`).
fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !h.starts_with('.')
        && !h.starts_with('-')
}

/// RFC 3261 §25.1 `user`: unreserved / escaped / user-unreserved characters.
fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()%&=+$,;?/#".contains(c))
}

/// Resolve a dial string into a [`Target`].
///
/// Accepted forms: `user` (needs a server or proxy), `user@host[:port]`, `sip:user@host[:port]`,
/// `sip:host[:port]`, `tel:number` (treated as a user at the server domain), each optionally
/// in angle brackets. URI parameters after the host are ignored. `sips:` is refused (no TLS yet).
pub(crate) fn resolve(
    input: &str,
    account: Option<&AccountConfig>,
    local_ip: IpAddr,
) -> Result<Target, SipError> {
    let bad = |reason: &str| SipError::InvalidTarget {
        target: input.to_string(),
        reason: reason.to_string(),
    };
    let s = input.trim();
    let s = s.strip_prefix('<').unwrap_or(s);
    let s = s.strip_suffix('>').unwrap_or(s).trim();
    if s.is_empty() {
        return Err(bad("empty target"));
    }
    if strip_prefix_ci(s, "sips:").is_some() {
        return Err(SipError::Unsupported("sips: targets (TLS)".into()));
    }

    let server = match account.and_then(|a| a.server.as_deref()) {
        Some(srv) if !srv.trim().is_empty() => {
            Some(parse_server(srv).map_err(|e| bad(&format!("account server: {e}")))?)
        }
        _ => None,
    };
    let proxy = match account.and_then(|a| a.proxy.as_deref()) {
        Some(p) if !p.trim().is_empty() => {
            Some(parse_server(p).map_err(|e| bad(&format!("account proxy: {e}")))?)
        }
        _ => None,
    };

    let (user, host): (Option<String>, Option<ServerAddr>) =
        if let Some(num) = strip_prefix_ci(s, "tel:") {
            let num = num.split(';').next().unwrap_or("");
            (Some(num.to_string()), None)
        } else {
            let (had_scheme, rest) = match strip_prefix_ci(s, "sip:") {
                Some(r) => (true, r),
                None => (false, s),
            };
            // Drop URI headers (`?...`) and, after the host, parameters (`;...`).
            let rest = rest.split('?').next().unwrap_or("");
            match rest.rsplit_once('@') {
                Some((u, h)) => {
                    let h = h.split(';').next().unwrap_or("");
                    let host = parse_hostport(h).map_err(|e| bad(&e))?;
                    (Some(u.to_string()), Some(host))
                }
                None if had_scheme => {
                    let h = rest.split(';').next().unwrap_or("");
                    (None, Some(parse_hostport(h).map_err(|e| bad(&e))?))
                }
                None => (Some(rest.to_string()), None),
            }
        };
    if let Some(u) = &user {
        if !valid_user(u) {
            return Err(bad("bad user part"));
        }
    }

    let from_domain = match &server {
        Some(srv) => srv.domain(),
        None => uri_host(&local_ip.to_string()),
    };

    // The domain of the Request-URI: the target host, or for a bare user the server's.
    let (uri_domain, goes_to_server) = match &host {
        Some(h) => {
            let same_as_server = server.as_ref().is_some_and(|srv| {
                srv.host.eq_ignore_ascii_case(&h.host)
                    && srv.port.unwrap_or(DEFAULT_PORT) == h.port.unwrap_or(DEFAULT_PORT)
            });
            (h.domain(), same_as_server)
        }
        None => match &server {
            Some(srv) => (srv.domain(), true),
            None => match &proxy {
                Some(p) => (p.host.clone(), true),
                None => return Err(SipError::NoServer(input.to_string())),
            },
        },
    };

    let request_uri = match &user {
        Some(u) => format!("sip:{u}@{uri_domain}"),
        None => format!("sip:{uri_domain}"),
    };

    let (next_hop, via_proxy) = if let Some(p) = &proxy {
        (p.hop(), true)
    } else if goes_to_server {
        match (&server, &host) {
            (Some(srv), _) => (srv.hop(), false),
            (None, Some(h)) => (h.hop(), false),
            (None, None) => return Err(SipError::NoServer(input.to_string())),
        }
    } else {
        match &host {
            Some(h) => (h.hop(), false),
            None => return Err(SipError::NoServer(input.to_string())),
        }
    };

    Ok(Target {
        request_uri,
        next_hop,
        via_proxy,
        from_domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

    fn acc(server: Option<&str>, proxy: Option<&str>) -> AccountConfig {
        AccountConfig {
            server: server.map(String::from),
            proxy: proxy.map(String::from),
            username: "1001".into(),
            password: "x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn bare_user_goes_to_server_domain() {
        let a = acc(Some("127.0.0.1:5080"), None);
        let t = resolve("1002", Some(&a), LOCAL).expect("resolves");
        assert_eq!(t.request_uri, "sip:1002@127.0.0.1:5080");
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5080));
        assert!(!t.via_proxy);
        assert_eq!(t.from_domain, "127.0.0.1:5080");
    }

    #[test]
    fn bare_user_default_port_keeps_domain_plain() {
        let a = acc(Some("sip.example.com"), None);
        let t = resolve("1002", Some(&a), LOCAL).expect("resolves");
        assert_eq!(t.request_uri, "sip:1002@sip.example.com");
        assert_eq!(t.next_hop, HostPort::new("sip.example.com", 5060));
    }

    #[test]
    fn bare_user_without_server_is_an_error() {
        assert!(matches!(
            resolve("1002", None, LOCAL),
            Err(SipError::NoServer(_))
        ));
    }

    #[test]
    fn uri_at_server_host_goes_via_server() {
        let a = acc(Some("127.0.0.1"), None);
        let t = resolve("sip:1002@127.0.0.1", Some(&a), LOCAL).expect("resolves");
        assert_eq!(t.request_uri, "sip:1002@127.0.0.1");
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5060));
    }

    #[test]
    fn direct_uri_without_account() {
        let t = resolve("sip:peer@127.0.0.1:5070", None, LOCAL).expect("resolves");
        assert_eq!(t.request_uri, "sip:peer@127.0.0.1:5070");
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5070));
        assert!(!t.via_proxy);
        assert_eq!(t.from_domain, "127.0.0.1");
    }

    #[test]
    fn proxy_takes_every_call() {
        let a = acc(Some("example.com"), Some("10.0.0.1:5090"));
        let t = resolve("sip:peer@127.0.0.1:5070", Some(&a), LOCAL).expect("resolves");
        assert_eq!(t.next_hop, HostPort::new("10.0.0.1", 5090));
        assert!(t.via_proxy);
        let t = resolve("1002", Some(&a), LOCAL).expect("resolves");
        assert_eq!(t.request_uri, "sip:1002@example.com");
    }

    #[test]
    fn ipv6_and_brackets_and_params() {
        let t = resolve("<sip:bob@[::1]:5070;transport=udp>", None, LOCAL).expect("resolves");
        assert_eq!(t.request_uri, "sip:bob@[::1]:5070");
        assert_eq!(t.next_hop, HostPort::new("::1", 5070));
    }

    #[test]
    fn malformed_targets_are_errors_not_panics() {
        for bad in [
            "",
            "   ",
            "sip:",
            "sip:@",
            "a b",
            "sip:bob@host:0",
            "sip:bob@host:99999",
            "sip:bob@[::1",
            "sip:bob@ho st",
            "bob@",
            "<>",
            "sip:bob@host:port",
            "\"quoted\"@x",
            "é@x",
        ] {
            assert!(resolve(bad, None, LOCAL).is_err(), "{bad:?} must fail");
        }
        assert!(matches!(
            resolve("sips:bob@host", None, LOCAL),
            Err(SipError::Unsupported(_))
        ));
    }

    #[test]
    fn tel_uri_uses_server() {
        let a = acc(Some("example.com"), None);
        let t = resolve("tel:+4912345", Some(&a), LOCAL).expect("resolves");
        assert_eq!(t.request_uri, "sip:+4912345@example.com");
    }

    #[test]
    fn parse_server_forms() {
        assert_eq!(
            parse_server("sip:pbx.example.com:5080;transport=udp"),
            Ok(ServerAddr {
                host: "pbx.example.com".into(),
                port: Some(5080)
            })
        );
        assert_eq!(parse_server("[::1]").map(|s| s.hop().port), Ok(5060));
        assert!(parse_server("").is_err());
    }
}
