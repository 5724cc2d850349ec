//! ICE (RFC 8445) for the call's media socket: host, server-reflexive (STUN, RFC 5389) and
//! relayed (TURN, RFC 5766) candidates, connectivity checks and nomination, with the sans-IO
//! `rtc-ice` agent and the `rtc-turn` client.
//!
//! Layers:
//! - [`IceConfig`] / [`parse_server_list`]: which STUN and TURN servers to use (the engine maps
//!   its parameters onto them).
//! - [`sdp`]: the `a=ice-ufrag`, `a=ice-pwd`, `a=candidate` and `a=end-of-candidates` lines
//!   (RFC 8839) added to our SDP and read from the peer's.
//! - [`IceTransport`]: the sans-IO state machine that owns the agent and the TURN client. It
//!   sorts every datagram of the media socket (server responses, relayed data, checks, media),
//!   and wraps outgoing media for the selected pair (directly, or through the relay).
//! - [`gather`]: the async part: STUN binding and TURN allocation on the media socket before the
//!   SDP is written (no trickle ICE, RFC 8838, in SIP here: candidates go in the offer/answer).
//!
//! Each component has its own transport: RTP (1) on the RTP socket and, until the peer accepts
//! `a=rtcp-mux` (RFC 5761, which we offer), RTCP (2) on the RTCP socket with the same
//! credentials. IPv6 candidates are used when the media socket is IPv6; a socket has one
//! address family, so a call has candidates of one family.

pub mod gather;
pub mod sdp;
mod transport;
pub mod turn_tcp;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

pub use transport::{IceEvent, IceTransport, SelectedPair};

/// Default time limit for candidate gathering (the `icetimeout` default of 2000 ms).
pub const DEFAULT_GATHER_TIMEOUT: Duration = Duration::from_millis(2000);

/// Errors of the ICE layer.
#[derive(Debug, thiserror::Error)]
pub enum IceError {
    /// The agent or the TURN client refused its configuration or an operation.
    #[error("ICE: {0}")]
    Agent(String),
    /// A server address could not be resolved.
    #[error("cannot resolve ICE server {0}")]
    Resolve(String),
}

/// A TURN server with its long-term credential (RFC 5766 §4, RFC 5389 §10.2).
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// The server's address (resolved).
    pub addr: SocketAddr,
    /// Long-term credential user name.
    pub username: String,
    /// Long-term credential password.
    pub password: String,
    /// Reached over TCP (`?transport=tcp`, RFC 7065 §3.1; [`turn_tcp`]); the relay is UDP
    /// either way.
    pub tcp: bool,
    /// Reached over TLS (`turns:`, RFC 7065 §3): implies `tcp`.
    pub tls: Option<TurnTls>,
}

/// How a `turns:` server's certificate is checked: the name it must have and the trust
/// anchors (the server certificate is always verified).
#[derive(Clone)]
pub struct TurnTls {
    /// The host of the TURN URL (a name, or an IP address the certificate must list).
    pub server_name: String,
    pub config: std::sync::Arc<rustls::ClientConfig>,
}

impl PartialEq for TurnTls {
    fn eq(&self, other: &Self) -> bool {
        self.server_name == other.server_name && std::sync::Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for TurnTls {}

impl std::fmt::Debug for TurnTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("password", &"***")
            .field("tcp", &self.tcp)
            .field("tls", &self.tls)
            .finish()
    }
}

/// What to gather and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceConfig {
    /// STUN server for the server-reflexive candidate (RFC 8445 §5.1.1.2).
    pub stun: Option<SocketAddr>,
    /// TURN server for the relayed candidate (RFC 8445 §5.1.1.2, RFC 5766 §6).
    pub turn: Option<TurnServer>,
    /// Offer only the relayed candidate (RTCPeerConnection's `iceTransportPolicy: "relay"`);
    /// without a TURN allocation the host candidate is kept so that the call still has media.
    pub relay_only: bool,
    /// Time limit for gathering; candidates not in by then are left out of the SDP.
    pub gather_timeout: Duration,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            stun: None,
            turn: None,
            relay_only: false,
            gather_timeout: DEFAULT_GATHER_TIMEOUT,
        }
    }
}

/// The kind of an ICE server URL (RFC 7064 `stun:`, RFC 7065 `turn:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// `stun:` / `stuns:`.
    Stun,
    /// `turn:` / `turns:`.
    Turn,
}

/// One entry of an ICE server list.
#[derive(Clone, PartialEq, Eq)]
pub struct IceServer {
    /// STUN or TURN.
    pub kind: ServerKind,
    /// `host:port` (port 3478 when the URL has none, RFC 7064 §3.1).
    pub host_port: String,
    /// TURN user name (`username` key, or `user@` in the URL).
    pub username: Option<String>,
    /// TURN password (`credential` key).
    pub credential: Option<String>,
    /// `?transport=tcp` in the URL ([`wants_tcp`]).
    pub tcp: bool,
    /// A `turns:` URL (TLS, RFC 7065 §3).
    pub tls: bool,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("kind", &self.kind)
            .field("host_port", &self.host_port)
            .field("username", &self.username)
            .field("credential", &self.credential.as_ref().map(|_| "***"))
            .field("tcp", &self.tcp)
            .finish()
    }
}

/// The default STUN/TURN port (RFC 5389 §9, RFC 5766 §6).
pub const DEFAULT_STUN_PORT: u16 = 3478;

/// The default port of `stuns:` / `turns:` (TLS, RFC 7064 §3.1, RFC 7065 §3).
pub const DEFAULT_STUNS_PORT: u16 = 5349;

/// Normalise a server address as written in a parameter (`host`, `host:port`, `[v6]:port`,
/// optionally with a `stun:`/`turn:` scheme and `?transport=udp`) to `host:port`. `None` for
/// an empty value or `NULL`.
pub fn normalize_host_port(value: &str) -> Option<String> {
    let mut v = value.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("null") {
        return None;
    }
    let mut default_port = DEFAULT_STUN_PORT;
    for scheme in ["stuns:", "stun:", "turns:", "turn:"] {
        if v.len() >= scheme.len() && v[..scheme.len()].eq_ignore_ascii_case(scheme) {
            v = &v[scheme.len()..];
            if scheme.ends_with("s:") {
                default_port = DEFAULT_STUNS_PORT;
            }
            break;
        }
    }
    let v = v.split('?').next().unwrap_or(v);
    let v = v.rsplit('@').next().unwrap_or(v).trim_matches('/');
    if v.is_empty() {
        return None;
    }
    let has_port = if let Some(rest) = v.strip_prefix('[') {
        rest.contains("]:")
    } else {
        v.matches(':').count() == 1
    };
    if has_port {
        Some(v.to_owned())
    } else if v.contains(':') && !v.starts_with('[') {
        Some(format!("[{v}]:{default_port}"))
    } else {
        Some(format!("{v}:{default_port}"))
    }
}

/// Whether URI parameters ask for TCP to the TURN server: `transport=tcp` among
/// `key=value` pairs separated by `;`, `&` or `?` (a `turn:` URL's query, RFC 7065 §3.1, or
/// the `turnparameters` parameter, e.g. `transport=tcp`).
pub fn wants_tcp(params: &str) -> bool {
    transport_param(params).is_some_and(|t| t.eq_ignore_ascii_case("tcp"))
}

/// Whether URI parameters ask for TLS to the TURN server (`transport=tls`, our spelling for
/// `turnparameters`; a `turns:` URL says it by its scheme).
pub fn wants_tls(params: &str) -> bool {
    transport_param(params).is_some_and(|t| t.eq_ignore_ascii_case("tls"))
}

/// The value of the `transport` parameter among `key=value` pairs.
fn transport_param(params: &str) -> Option<&str> {
    params.split([';', '&', '?']).find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case("transport").then(|| v.trim())
    })
}

/// The host of a `host:port` / `[v6]:port` string (for a certificate name check).
pub fn host_of(host_port: &str) -> &str {
    match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    }
}

/// Parse an RTCPeerConnection-style ICE server list as the `ice` parameter carries it:
/// `[{ url: 'stun:host:port'}, { url: 'turn:user@host', credential: 'pwd'}]`. Accepts `url`
/// or `urls` (a string or an array of strings), `username`, `credential`, single or double
/// quotes, and ignores what it does not know. A `turn:` URL's user may be given as
/// `user@host` or with `username`.
pub fn parse_server_list(text: &str) -> Vec<IceServer> {
    let mut out = Vec::new();
    for obj in text.split('{').skip(1) {
        let obj = obj.split('}').next().unwrap_or("");
        let mut urls: Vec<String> = Vec::new();
        let mut username = None;
        let mut credential = None;
        let mut rest = obj;
        while let Some((key, after)) = next_key(rest) {
            let (values, after) = quoted_values(after);
            match key.as_str() {
                "url" | "urls" => urls.extend(values),
                "username" => username = values.into_iter().next(),
                "credential" => credential = values.into_iter().next(),
                _ => {}
            }
            rest = after;
        }
        for url in urls {
            let lower = url.to_ascii_lowercase();
            let kind = if lower.starts_with("turn") {
                ServerKind::Turn
            } else if lower.starts_with("stun") {
                ServerKind::Stun
            } else {
                continue;
            };
            let Some(host_port) = normalize_host_port(&url) else {
                continue;
            };
            let url_user = url
                .split_once(':')
                .and_then(|(_, r)| r.split_once('@'))
                .map(|(u, _)| u.trim_start_matches('/').to_owned())
                .filter(|u| !u.is_empty());
            out.push(IceServer {
                kind,
                host_port,
                username: username.clone().or(url_user),
                credential: credential.clone(),
                tcp: url.split_once('?').is_some_and(|(_, q)| wants_tcp(q)),
                tls: lower.starts_with("turns:"),
            });
        }
    }
    out
}

/// The next `key:` in an object body: the key and the text after the colon.
fn next_key(s: &str) -> Option<(String, &str)> {
    let colon = s.find(':')?;
    let key = s[..colon]
        .trim()
        .trim_start_matches(',')
        .trim()
        .trim_matches(['"', '\''])
        .to_ascii_lowercase();
    Some((key, &s[colon + 1..]))
}

/// The quoted string(s) at the start of `s` (one, or an array of them) and the text after.
fn quoted_values(s: &str) -> (Vec<String>, &str) {
    let t = s.trim_start();
    let (body, after) = if let Some(arr) = t.strip_prefix('[') {
        match arr.find(']') {
            Some(end) => (&arr[..end], &arr[end + 1..]),
            None => (arr, ""),
        }
    } else {
        let end = quoted_end(t).unwrap_or(t.len());
        (&t[..end], &t[end..])
    };
    let mut values = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(['"', '\'']) {
        let q = rest.as_bytes()[start] as char;
        let inner = &rest[start + 1..];
        let Some(end) = inner.find(q) else { break };
        values.push(inner[..end].to_owned());
        rest = &inner[end + 1..];
    }
    (values, after)
}

/// The end (exclusive) of the first quoted string of `s`.
fn quoted_end(s: &str) -> Option<usize> {
    let start = s.find(['"', '\''])?;
    let q = s.as_bytes()[start] as char;
    let end = s[start + 1..].find(q)?;
    Some(start + 1 + end + 1)
}

/// Whether an ICE server list text asks for relayed media only (an entry
/// `{ iceTransportPolicy: 'relay' }`, the RTCPeerConnection option of the same name).
pub fn wants_relay_only(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some(pos) = lower.find("icetransportpolicy") else {
        return false;
    };
    let after = &lower[pos + "icetransportpolicy".len()..];
    let after = after.trim_start_matches(['"', '\'', ' ', ':']);
    after.starts_with("relay")
}
