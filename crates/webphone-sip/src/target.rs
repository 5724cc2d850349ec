//! Dial strings and server addresses: pure parsing and routing decisions, no I/O.

use std::fmt;
use std::net::IpAddr;

use crate::{AccountConfig, SipError, Transport};

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
    /// Transport to `next_hop`: the target's (`sips:` = TLS, `;transport=`) when it is
    /// dialled directly, else the one to the server/proxy.
    pub transport: Transport,
}

impl Target {
    /// The target with its next hop moved to the first URI of a preloaded route (RFC 3261
    /// §8.1.2: a request goes to the first Route URI when it is a loose router), used for
    /// the registrar's Service-Route when there is no outbound proxy (RFC 3608 §6.1; with
    /// one, the proxy is the first Route and stays the next hop). A URI without a
    /// `transport` parameter keeps the transport of the account, so a TCP or TLS
    /// registration does not fall back to UDP. An unreadable route leaves the target as it
    /// is.
    pub(crate) fn through_route(mut self, route: &str) -> Target {
        if self.via_proxy {
            return self;
        }
        let v = route.trim();
        let uri = match (v.find('<'), v.find('>')) {
            (Some(a), Some(b)) if a < b => &v[a + 1..b],
            _ => v,
        };
        // A user part (`sip:orig@host`) names no hop: drop it, keep the scheme.
        let uri = match uri.split_once('@') {
            Some((scheme_user, rest)) => match scheme_user.find(':') {
                Some(colon) => format!("{}{rest}", &scheme_user[..=colon]),
                None => rest.to_string(),
            },
            None => uri.to_string(),
        };
        if let Ok(addr) = parse_server(&uri) {
            let t = addr.transport_or(self.transport);
            if self
                .request_uri
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("sips:"))
                && !t.is_secure()
            {
                // RFC 3261 §26.2.2: a SIPS request must stay on TLS.
                return self;
            }
            self.next_hop = addr.hop(t);
            self.transport = t;
        }
        self
    }
}

/// A parsed `host[:port]` with the port as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerAddr {
    pub host: String,
    pub port: Option<u16>,
    /// Transport named by the address itself: `sips:` (TLS), `;transport=x`,
    /// `ws://` / `wss://`.
    pub transport: Option<Transport>,
}

impl ServerAddr {
    /// The transport to reach this server: its own, else `default`.
    pub(crate) fn transport_or(&self, default: Transport) -> Transport {
        self.transport.unwrap_or(default)
    }

    /// Host and port to connect to over `transport` (the transport's default port when the
    /// address names none).
    pub(crate) fn hop(&self, transport: Transport) -> HostPort {
        HostPort::new(
            self.host.clone(),
            self.port.unwrap_or(transport.default_port()),
        )
    }

    /// The domain as used in URIs: host, plus the port when one was given explicitly.
    pub(crate) fn domain(&self) -> String {
        host_and_optional_port(&self.host, self.port)
    }
}

/// Parse `host`, `host:port`, `[v6]`, `[v6]:port`, optionally prefixed with `sip:` or
/// `sips:` (TLS, RFC 3261 §19.1) and followed by URI parameters, of which `transport` is
/// kept; or a WebSocket URL `ws://host[:port][/path]` / `wss://...` (RFC 7118).
pub(crate) fn parse_server(s: &str) -> Result<ServerAddr, String> {
    let s = s.trim();
    for (scheme, t) in [("ws://", Transport::Ws), ("wss://", Transport::Wss)] {
        if let Some(rest) = strip_prefix_ci(s, scheme) {
            let hostport = rest.split(['/', '?', '#']).next().unwrap_or("");
            let mut addr = parse_hostport(hostport)?;
            addr.transport = Some(t);
            return Ok(addr);
        }
    }
    let (secure, s) = match strip_prefix_ci(s, "sips:") {
        Some(r) => (true, r),
        None => (false, strip_prefix_ci(s, "sip:").unwrap_or(s)),
    };
    let mut parts = s.split(';');
    let mut addr = parse_hostport(parts.next().unwrap_or(""))?;
    let param = transport_param(parts)?;
    addr.transport = scheme_transport(secure, param)?;
    Ok(addr)
}

/// The `transport` URI parameter among `params` (`name[=value]` items), if any.
fn transport_param<'a>(params: impl Iterator<Item = &'a str>) -> Result<Option<Transport>, String> {
    for p in params {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        if name.trim().eq_ignore_ascii_case("transport") {
            return Transport::from_param(value)
                .map(Some)
                .ok_or_else(|| format!("unknown transport {:?}", value.trim()));
        }
    }
    Ok(None)
}

/// The transport a URI asks for: `sips:` means TLS on every hop (RFC 3261 §26.2.2), or
/// secure WebSocket with `transport=ws` (RFC 7118 §5.2).
fn scheme_transport(secure: bool, param: Option<Transport>) -> Result<Option<Transport>, String> {
    Ok(match (secure, param) {
        (false, p) => p,
        (true, None | Some(Transport::Tls) | Some(Transport::Tcp)) => Some(Transport::Tls),
        (true, Some(Transport::Ws) | Some(Transport::Wss)) => Some(Transport::Wss),
        (true, Some(Transport::Udp)) => return Err("sips: over UDP is not possible".into()),
    })
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
                    transport: None,
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
    Ok(ServerAddr {
        host,
        port,
        transport: None,
    })
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
/// `sips:user@host[:port]` (TLS on every hop, RFC 3261 §26.2.2), `sip:host[:port]`,
/// `tel:number` (treated as a user at the server domain), each optionally in angle brackets.
/// A `;transport=` URI parameter is kept in the Request-URI and chooses the transport when
/// the target is dialled directly; other URI parameters are dropped. `ua_transport` is the
/// transport of our connection to the server/proxy.
pub(crate) fn resolve(
    input: &str,
    account: Option<&AccountConfig>,
    local_ip: IpAddr,
    ua_transport: Transport,
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

    let mut secure = false;
    let mut uri_transport: Option<Transport> = None;
    let (user, host): (Option<String>, Option<ServerAddr>) =
        if let Some(num) = strip_prefix_ci(s, "tel:") {
            let num = num.split(';').next().unwrap_or("");
            (Some(num.to_string()), None)
        } else {
            let (had_scheme, rest) = if let Some(r) = strip_prefix_ci(s, "sips:") {
                secure = true;
                (true, r)
            } else {
                match strip_prefix_ci(s, "sip:") {
                    Some(r) => (true, r),
                    None => (false, s),
                }
            };
            // Drop URI headers (`?...`); after the host, keep only the transport parameter.
            let rest = rest.split('?').next().unwrap_or("");
            let (user, hostpart) = match rest.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_string()), Some(h)),
                None if had_scheme => (None, Some(rest)),
                None => (Some(rest.to_string()), None),
            };
            match hostpart {
                Some(h) => {
                    let mut parts = h.split(';');
                    let host = parse_hostport(parts.next().unwrap_or("")).map_err(|e| bad(&e))?;
                    uri_transport = transport_param(parts).map_err(|e| bad(&e))?;
                    (user, Some(host))
                }
                None => (user, None),
            }
        };
    if let Some(u) = &user {
        if !valid_user(u) {
            return Err(bad("bad user part"));
        }
    }
    // The transport the URI itself asks for (`sips:` = TLS, RFC 3261 §26.2.2).
    let wanted = scheme_transport(secure, uri_transport).map_err(|e| bad(&e))?;

    let from_domain = match &server {
        Some(srv) => srv.domain(),
        None => uri_host(&local_ip.to_string()),
    };
    let server_transport = server
        .as_ref()
        .map(|s| s.transport_or(ua_transport))
        .unwrap_or(ua_transport);

    // The domain of the Request-URI: the target host, or for a bare user the server's.
    let (uri_domain, goes_to_server) = match &host {
        Some(h) => {
            let same_as_server = server.as_ref().is_some_and(|srv| {
                let t = srv.transport_or(ua_transport);
                srv.host.eq_ignore_ascii_case(&h.host)
                    && srv.port.unwrap_or(t.default_port())
                        == h.port.unwrap_or(wanted.unwrap_or(t).default_port())
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

    let scheme = if secure { "sips" } else { "sip" };
    let mut request_uri = match &user {
        Some(u) => format!("{scheme}:{u}@{uri_domain}"),
        None => format!("{scheme}:{uri_domain}"),
    };
    if let Some(t) = uri_transport {
        request_uri.push_str(";transport=");
        request_uri.push_str(t.param());
    }

    let (next_hop, via_proxy, transport) = if let Some(p) = &proxy {
        let t = p.transport_or(ua_transport);
        (p.hop(t), true, t)
    } else if goes_to_server {
        match (&server, &host) {
            (Some(srv), _) => (srv.hop(server_transport), false, server_transport),
            (None, Some(h)) => {
                let t = wanted.unwrap_or(ua_transport);
                (h.hop(t), false, t)
            }
            (None, None) => return Err(SipError::NoServer(input.to_string())),
        }
    } else {
        match &host {
            Some(h) => {
                let t = wanted.unwrap_or(ua_transport);
                (h.hop(t), false, t)
            }
            None => return Err(SipError::NoServer(input.to_string())),
        }
    };
    if secure && !transport.is_secure() {
        // RFC 3261 §26.2.2: a SIPS request must leave over TLS.
        return Err(SipError::Unsupported(format!(
            "sips: target needs a TLS connection, but the next hop {next_hop} is reached over {transport}"
        )));
    }

    Ok(Target {
        request_uri,
        next_hop,
        via_proxy,
        from_domain,
        transport,
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
    fn service_route_moves_the_next_hop_without_proxy() {
        let a = acc(Some("example.com"), None);
        let t = resolve("1002", Some(&a), LOCAL, Transport::Tcp).expect("resolves");
        let r = t.clone().through_route("<sip:orig@127.0.0.7:5070;lr>");
        assert_eq!(r.next_hop, HostPort::new("127.0.0.7", 5070));
        assert_eq!(
            r.transport,
            Transport::Tcp,
            "no transport parameter: the account's"
        );
        assert_eq!(r.request_uri, t.request_uri, "the Request-URI is untouched");
        let r = t
            .clone()
            .through_route("<sip:pcscf.example.com;transport=udp;lr>");
        assert_eq!(r.next_hop, HostPort::new("pcscf.example.com", 5060));
        assert_eq!(r.transport, Transport::Udp);
        assert_eq!(
            t.clone().through_route("<garbage:::>"),
            t,
            "unreadable: unchanged"
        );
    }

    #[test]
    fn service_route_leaves_an_outbound_proxy_first() {
        let a = acc(Some("example.com"), Some("127.0.0.9:5099"));
        let t = resolve("1002", Some(&a), LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.clone().through_route("<sip:127.0.0.7:5070;lr>"), t);
    }

    #[test]
    fn service_route_never_downgrades_a_sips_request() {
        let a = acc(Some("example.com"), None);
        let t =
            resolve("sips:1002@example.com", Some(&a), LOCAL, Transport::Tls).expect("resolves");
        assert_eq!(
            t.clone().through_route("<sip:127.0.0.7;transport=udp;lr>"),
            t
        );
    }

    #[test]
    fn bare_user_goes_to_server_domain() {
        let a = acc(Some("127.0.0.1:5080"), None);
        let t = resolve("1002", Some(&a), LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.request_uri, "sip:1002@127.0.0.1:5080");
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5080));
        assert!(!t.via_proxy);
        assert_eq!(t.from_domain, "127.0.0.1:5080");
    }

    #[test]
    fn bare_user_default_port_keeps_domain_plain() {
        let a = acc(Some("sip.example.com"), None);
        let t = resolve("1002", Some(&a), LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.request_uri, "sip:1002@sip.example.com");
        assert_eq!(t.next_hop, HostPort::new("sip.example.com", 5060));
    }

    #[test]
    fn bare_user_without_server_is_an_error() {
        assert!(matches!(
            resolve("1002", None, LOCAL, Transport::Udp),
            Err(SipError::NoServer(_))
        ));
    }

    #[test]
    fn uri_at_server_host_goes_via_server() {
        let a = acc(Some("127.0.0.1"), None);
        let t = resolve("sip:1002@127.0.0.1", Some(&a), LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.request_uri, "sip:1002@127.0.0.1");
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5060));
    }

    #[test]
    fn direct_uri_without_account() {
        let t = resolve("sip:peer@127.0.0.1:5070", None, LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.request_uri, "sip:peer@127.0.0.1:5070");
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5070));
        assert!(!t.via_proxy);
        assert_eq!(t.from_domain, "127.0.0.1");
    }

    #[test]
    fn proxy_takes_every_call() {
        let a = acc(Some("example.com"), Some("10.0.0.1:5090"));
        let t =
            resolve("sip:peer@127.0.0.1:5070", Some(&a), LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.next_hop, HostPort::new("10.0.0.1", 5090));
        assert!(t.via_proxy);
        let t = resolve("1002", Some(&a), LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.request_uri, "sip:1002@example.com");
    }

    #[test]
    fn ipv6_and_brackets_and_params() {
        let t = resolve(
            "<sip:bob@[::1]:5070;lr;transport=UDP>",
            None,
            LOCAL,
            Transport::Udp,
        )
        .expect("resolves");
        assert_eq!(t.request_uri, "sip:bob@[::1]:5070;transport=udp");
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
            assert!(
                resolve(bad, None, LOCAL, Transport::Udp).is_err(),
                "{bad:?} must fail"
            );
        }
        assert!(matches!(
            resolve("sips:bob@host;transport=udp", None, LOCAL, Transport::Udp),
            Err(SipError::InvalidTarget { .. })
        ));
    }

    #[test]
    fn tel_uri_uses_server() {
        let a = acc(Some("example.com"), None);
        let t = resolve("tel:+4912345", Some(&a), LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.request_uri, "sip:+4912345@example.com");
    }

    #[test]
    fn parse_server_forms() {
        assert_eq!(
            parse_server("sip:pbx.example.com:5080;transport=udp"),
            Ok(ServerAddr {
                host: "pbx.example.com".into(),
                port: Some(5080),
                transport: Some(Transport::Udp),
            })
        );
        assert_eq!(
            parse_server("[::1]").map(|s| s.hop(Transport::Udp).port),
            Ok(5060)
        );
        assert!(parse_server("").is_err());
    }

    #[test]
    fn ipv6_server_forms_rfc5118() {
        for (s, port) in [
            ("[::1]:5060", Some(5060)),
            ("sip:[::1]:5070", Some(5070)),
            ("[2001:db8::1]", None),
            ("sip:[2001:db8::1]:5080;transport=tcp", Some(5080)),
        ] {
            let a = parse_server(s).expect(s);
            assert!(a.host.parse::<std::net::Ipv6Addr>().is_ok(), "{s}: {a:?}");
            assert_eq!(a.port, port, "{s}");
        }
        let a = parse_server("[::1]:5060").expect("v6");
        assert_eq!(a.domain(), "[::1]:5060");
        assert_eq!(a.hop(Transport::Udp).to_string(), "[::1]:5060");
        for bad in ["[::1", "[nothost]:5060", "[::1]:x"] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sips_target_is_dialled_over_tls_on_port_5061() {
        let t = resolve("sips:alice@127.0.0.1", None, LOCAL, Transport::Tls).expect("resolves");
        assert_eq!(t.request_uri, "sips:alice@127.0.0.1");
        assert_eq!(t.transport, Transport::Tls);
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5061));
        // Direct sips: from a UDP user agent: the hop is TLS all the same.
        let t =
            resolve("sips:alice@127.0.0.1:5071", None, LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.transport, Transport::Tls);
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5071));
    }

    #[test]
    fn sips_target_via_a_plain_server_connection_is_refused() {
        let a = acc(Some("127.0.0.1:5080"), None);
        assert!(matches!(
            resolve("sips:1002@127.0.0.1:5080", Some(&a), LOCAL, Transport::Udp),
            Err(SipError::Unsupported(_))
        ));
        // Through a TLS connection to the server it goes.
        let a = acc(Some("127.0.0.1:5081"), None);
        let t =
            resolve("sips:1002@127.0.0.1:5081", Some(&a), LOCAL, Transport::Tls).expect("resolves");
        assert_eq!(t.request_uri, "sips:1002@127.0.0.1:5081");
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5081));
        assert_eq!(t.transport, Transport::Tls);
    }

    #[test]
    fn transport_parameter_picks_the_direct_hop_transport() {
        let t = resolve(
            "sip:bob@127.0.0.1;transport=tcp",
            None,
            LOCAL,
            Transport::Udp,
        )
        .expect("resolves");
        assert_eq!(t.transport, Transport::Tcp);
        assert_eq!(t.request_uri, "sip:bob@127.0.0.1;transport=tcp");
        assert_eq!(t.next_hop.port, 5060);
        let t = resolve(
            "sip:bob@example.com;transport=tls",
            None,
            LOCAL,
            Transport::Udp,
        )
        .expect("resolves");
        assert_eq!(t.transport, Transport::Tls);
        assert_eq!(t.next_hop, HostPort::new("example.com", 5061));
        let t = resolve(
            "sips:bob@example.com;transport=ws",
            None,
            LOCAL,
            Transport::Udp,
        )
        .expect("resolves");
        assert_eq!(t.transport, Transport::Wss);
        assert_eq!(t.next_hop.port, 443);
        assert!(matches!(
            resolve(
                "sip:bob@example.com;transport=carrier-pigeon",
                None,
                LOCAL,
                Transport::Udp
            ),
            Err(SipError::InvalidTarget { .. })
        ));
    }

    #[test]
    fn bare_user_goes_to_the_server_over_the_ua_transport_with_its_default_port() {
        let a = acc(Some("127.0.0.1"), None);
        let t = resolve("1002", Some(&a), LOCAL, Transport::Tls).expect("resolves");
        assert_eq!(t.request_uri, "sip:1002@127.0.0.1");
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5061));
        assert_eq!(t.transport, Transport::Tls);
        // A target at the server's host over the server's default TLS port is the server.
        let t =
            resolve("sip:1002@127.0.0.1:5061", Some(&a), LOCAL, Transport::Tls).expect("resolves");
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 5061));
        assert_eq!(t.transport, Transport::Tls);
    }

    #[test]
    fn server_address_forms_name_their_transport() {
        let s = parse_server("sips:pbx.example.com").expect("parses");
        assert_eq!(s.transport, Some(Transport::Tls));
        assert_eq!(s.hop(s.transport_or(Transport::Udp)).port, 5061);
        let s = parse_server("wss://127.0.0.1:8443/sip").expect("parses");
        assert_eq!(s.transport, Some(Transport::Wss));
        assert_eq!(s.hop(Transport::Udp).port, 8443);
        assert_eq!(s.domain(), "127.0.0.1:8443");
        let s = parse_server("ws://example.com").expect("parses");
        assert_eq!(s.hop(s.transport_or(Transport::Udp)).port, 80);
        let s = parse_server("10.0.0.1:5070;transport=TCP").expect("parses");
        assert_eq!(s.transport, Some(Transport::Tcp));
        assert!(parse_server("host;transport=bogus").is_err());
        assert!(parse_server("sips:host;transport=udp").is_err());
        // A server with its own transport decides the hop of calls through it.
        let a = acc(Some("wss://127.0.0.1:8443"), None);
        let t = resolve("1002", Some(&a), LOCAL, Transport::Udp).expect("resolves");
        assert_eq!(t.transport, Transport::Wss);
        assert_eq!(t.next_hop, HostPort::new("127.0.0.1", 8443));
    }
}
