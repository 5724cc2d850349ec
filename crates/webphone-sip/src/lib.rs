//! webphone-sip: the SIP user agent of the softphone.
//!
//! A [`SipUa`] is a cheap, clonable handle to a tokio task (the *driver*) that owns the
//! SIP stack (`rsipstack`, wrapped in the private `stack` module so a version bump touches
//! one module) and a deterministic, sans-IO policy state machine (`policy`) that decides
//! what to do: when to REGISTER and refresh, how to back off, which request ends a call
//! (CANCEL, BYE or a final response), who owes the SDP answer.
//!
//! Commands (`register`, `invite`, `answer`, `hangup`, ...) never block: they are queued
//! to the driver and their outcome is reported on the [`SipEvent`] channel returned by
//! [`SipUa::start`].
//!
//! Every received message passes our bounded, validating parser ([`parse`]) before
//! rsipstack sees it: an invalid request is answered 400 with a `Warning` naming the
//! problem (or dropped when no response can be built) and never rings. Requests to the
//! account's server are located per RFC 3263 (SRV, then A/AAAA) and fail over to the next
//! address on a 503, a timeout or a transport error, for REGISTER and INVITE. Header
//! fields of the user ([`SipUa::set_extra_headers`], [`SipUa::set_call_headers`]) are
//! added to what we send; [`SipUa::redirect`] forwards an incoming call with a 3xx.
//!
//! Standards: RFC 3261 (SIP), RFC 3581 (`rport`), RFC 2617/7616 (digest authentication),
//! RFC 3264 (offer/answer; SDP bodies are opaque strings here), RFC 3263 (server location).

mod digest;
mod error;
mod fast_stun;
mod headers;
mod locate;
mod messaging;
mod netchange;
pub mod parse;
mod policy;
mod port_map;
mod session;
mod stack;
mod target;
mod tls;
mod trace;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use error::SipError;
pub use fast_stun::{is_local_ip, FastStun};
pub use messaging::{MessageKey, Replaces, SubKey, SubscriptionState};
pub use policy::Reregister;
pub use port_map::{MapFuture, PortMapper, PortMapperRef};

/// The TLS client settings we verify servers with (system roots plus the certificates of
/// `ca_file`), for TLS connections other than SIP's (e.g. `turns:` servers).
pub fn tls_client_config(
    ca_file: Option<&std::path::Path>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    tls::trust(ca_file).map(|t| t.config)
}

/// The transport the user agent listens on and sends requests with.
///
/// UDP and TCP listen on `SipConfig::port`. TLS (RFC 3261 §26.2.1, rustls), WS and WSS
/// (SIP over WebSocket, RFC 7118) are client-only: nothing listens, requests go out over
/// a connection we open to the server, and the server sends its requests back over that
/// same connection (the registrar must reuse it: Kamailio `fix_nated_register`, RFC 5626
/// flows, Via `alias` of RFC 5923).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    /// Every transport but UDP is a connection (RFC 3261 §18: no retransmissions, keep-alives
    /// per RFC 5626 §4.4.1).
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    /// TLS underneath (TLS and WSS): the server certificate is verified.
    pub fn is_secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// WS or WSS (RFC 7118).
    pub fn is_websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }

    /// Port used when a URI or server address names none: 5060 for UDP/TCP, 5061 for TLS
    /// (RFC 3261 §19.1.2), 80 and 443 for WS and WSS (RFC 6455 §3).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
            Transport::Ws => 80,
            Transport::Wss => 443,
        }
    }

    /// The value of a URI `transport` parameter (RFC 3261 §19.1.1, RFC 7118 §5.2).
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// The value of a URI's `transport` parameter for this transport: `ws` for WS and WSS
    /// alike (RFC 7118 §5.2: `WSS` exists only in Via; proxies do not know `transport=wss`).
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Wss => Transport::Ws.param(),
            t => t.param(),
        }
    }

    /// Parse a `transport` parameter value, case-insensitively.
    pub fn from_param(s: &str) -> Option<Transport> {
        [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Ws,
            Transport::Wss,
        ]
        .into_iter()
        .find(|t| t.param().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        })
    }
}

/// Connection settings beyond [`SipConfig`], for [`SipUa::start_with`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportOptions {
    /// Keep-alive interval on a connection to the registrar: a CRLF ping on TCP/TLS
    /// (RFC 5626 §4.4.1), a WebSocket ping frame on WS/WSS (RFC 6455 §5.5.2).
    /// `Duration::ZERO` turns keep-alives off; unused for UDP.
    pub keepalive_interval: Duration,
    /// Keep-alive interval on WebSocket connections when it differs (`wskeepaliveival`),
    /// also when DNS chose WS/WSS for a UA configured otherwise (RFC 3263 §4.1);
    /// `None`: `keepalive_interval`.
    pub ws_keepalive_interval: Option<Duration>,
    /// PEM file with certificates trusted for TLS/WSS in addition to the system roots:
    /// a private CA, or a self-signed server certificate (with `CA:FALSE`) the user chose to
    /// trust. There is no switch that turns verification off.
    pub tls_ca_file: Option<PathBuf>,
    /// HTTP path of the WebSocket upgrade (`/` when `None`).
    pub ws_path: Option<String>,
    /// STUN server asked at start which address a NAT maps our UDP socket to
    /// (`stunserveraddress`, resolved); `None`, or a mode that does not probe, asks nothing.
    pub stun_server: Option<SocketAddr>,
    /// What the STUN answer is used for (`use_fast_stun`).
    pub fast_stun: FastStun,
    /// Asks the router to forward a public port to the UDP socket (`upnpnat`); its answer
    /// is the Contact address from the first REGISTER on ([`PortMapper`]).
    pub port_mapper: Option<PortMapperRef>,
}

/// Local SIP settings: where to listen and how to identify ourselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipConfig {
    /// Address to bind. `0.0.0.0` binds every interface and advertises the first
    /// non-loopback IPv4 address in Via/Contact.
    pub bind_ip: IpAddr,
    /// Port to bind; `0` picks a free one (see [`SipUa::local_addr`]).
    pub port: u16,
    pub transport: Transport,
    /// Value of the `User-Agent` header (RFC 3261 §20.41).
    pub user_agent: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            transport: Transport::Udp,
            user_agent: format!("webphone/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// What we do with `rport` (RFC 3581), the `use_rport` parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RportMode {
    /// Ask for `rport` in our Via (§3) and, when the registrar saw us at another address
    /// (`received`/`rport`, a NAT) while our own address is a local one ([`is_local_ip`]),
    /// register that one instead (`use_rport` 1 and 2, 1 the default).
    #[default]
    Use,
    /// As [`RportMode::Use`], also when our own address is public (`use_rport` 3).
    UseAlways,
    /// No `rport` in our Via, and our own address stays in the Contact (`use_rport` 0).
    Off,
    /// Ask for `rport` (responses find their way back through a NAT) but keep our own
    /// address in the Contact (`use_rport` 9, and any value with `use_fast_stun` -1).
    Ignore,
}

/// One SIP account. The password is never logged: `Debug` prints a redacted marker.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AccountConfig {
    /// Registrar / domain, `host[:port]` (port defaults to 5060). Also the domain of our
    /// address of record `sip:username@server` and of dialled bare user names.
    pub server: Option<String>,
    /// Outbound proxy, `host[:port]`: when set every out-of-dialog request is sent there
    /// (with a loose-routing `Route`, RFC 3261 §8.1.2) instead of to `server`.
    pub proxy: Option<String>,
    pub username: String,
    /// Digest user name when it differs from `username` (RFC 2617 §3.2.2).
    pub auth_username: Option<String>,
    pub password: String,
    pub display_name: Option<String>,
    /// Expected digest realm. `None` accepts whatever realm the server challenges with;
    /// `Some` makes a REGISTER challenge with another realm fail.
    pub realm: Option<String>,
    /// Requested registration lifetime in seconds (`Expires`, RFC 3261 §10.2.1); 0 means 3600.
    pub register_expires: u32,
}

impl fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountConfig")
            .field("server", &self.server)
            .field("proxy", &self.proxy)
            .field("username", &self.username)
            .field("auth_username", &self.auth_username)
            .field("password", &"<redacted>")
            .field("display_name", &self.display_name)
            .field("realm", &self.realm)
            .field("register_expires", &self.register_expires)
            .finish()
    }
}

/// Our handle for one call (one INVITE dialog set). Unique per [`SipUa`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

impl fmt::Display for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call#{}", self.0)
    }
}

/// Registration status of the account (RFC 3261 §10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationState {
    /// A REGISTER was sent (first attempt or a retry after a failure).
    Registering,
    /// The registrar accepted the binding for `expires` seconds. Reported again only
    /// when the granted lifetime changes; refreshes are silent.
    Registered { expires: u32 },
    /// The REGISTER failed: `code` is the SIP status (401/403 for bad credentials,
    /// 408 when nothing answered, 503 for a transport error); a retry is scheduled
    /// with back-off.
    Failed { code: u16, reason: String },
    /// The binding was removed (`Expires: 0`) or never existed.
    Unregistered,
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// We hung up an established call (we sent BYE).
    LocalHangup,
    /// The peer hung up an established call (it sent BYE).
    RemoteHangup,
    /// We cancelled our unanswered outgoing call (CANCEL; usually `code` 487).
    LocalCancel,
    /// The caller cancelled the incoming call before we answered (we sent 487).
    RemoteCancel,
    /// The callee or a proxy refused our INVITE with a 3xx-6xx final response (`code`).
    Rejected,
    /// We refused the incoming call (`reject()`, or `hangup()` before answering).
    LocalReject,
    /// A timer expired: no ACK for our 2xx, or no final response.
    Timeout,
    /// Transport or protocol failure.
    Failed,
}

/// What the user agent reports to its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SipEvent {
    /// Registration status of the main account ([`SipUa::set_account`]).
    Registration(RegistrationState),
    /// The event packages the registrar says it supports (`Allow-Events` of its 2xx to our
    /// REGISTER, RFC 6665 §8.2.2), lower-case; sent when they first arrive or change.
    ServerEventPackages(Vec<String>),
    /// Parameters the registrar pushes in its 2xx to our REGISTER: its `X-MParam` (this
    /// session) and `X-MParamP` (kept) headers as (name, value), on every 2xx that has them.
    ServerParameters(Vec<(String, String)>),
    /// Registration status of the extra account `account` (`username@server`, as
    /// [`SipUa::extra_account_key`] names it), [`SipUa::set_extra_accounts`]. Same
    /// semantics as [`SipEvent::Registration`], one stream per account.
    ExtraRegistration {
        account: String,
        state: RegistrationState,
    },
    /// A new incoming INVITE; `100 Trying` has been sent. Answer with
    /// [`SipUa::ringing`], [`SipUa::answer`] or [`SipUa::reject`].
    Incoming {
        call: CallKey,
        sip_call_id: String,
        from_user: String,
        from_display: Option<String>,
        from_uri: String,
        to_user: String,
        /// User part of the Request-URI: which of our accounts the INVITE is for (the
        /// registrar puts our registered Contact there, whose user is the account's).
        request_user: String,
        /// Where the INVITE came from (Via `received`/`rport`, RFC 3581).
        remote_addr: SocketAddr,
        /// The SDP offer, if the INVITE carried one. `None` means our answer must carry
        /// the offer and the peer's answer arrives in the ACK ([`SipEvent::Answered`]).
        sdp: Option<String>,
        /// All header fields of the INVITE as (name, value), in order.
        headers: Vec<(String, String)>,
        /// The INVITE carries `Replaces` (RFC 3891) naming this live call of ours (an
        /// attended transfer's target, or a call pickup): answer the new call and hang
        /// up the replaced one. An INVITE whose `Replaces` matches no call got 481.
        replaces: Option<CallKey>,
    },
    /// A provisional response to our INVITE: 180 Ringing / 183 Session Progress
    /// (with early-media SDP if any).
    Progress {
        call: CallKey,
        code: u16,
        reason: String,
        sdp: Option<String>,
    },
    /// Our INVITE was redirected (`code` 3xx, RFC 3261 §8.1.3.4) and is being sent again to
    /// `target` (the first Contact of the response). Only one redirect is followed per
    /// call, and only while [`SipUa::set_allow_redirect`] is on (the default).
    Redirected {
        call: CallKey,
        code: u16,
        target: String,
    },
    /// Outgoing call: the 2xx arrived (and was ACKed), `sdp` is its body.
    /// Incoming call: the ACK for our 2xx arrived, `sdp` is the ACK body if any.
    Answered { call: CallKey, sdp: Option<String> },
    /// The call is over; no further events for `call`.
    Ended {
        call: CallKey,
        reason: EndReason,
        code: Option<u16>,
        text: String,
    },
    /// A DTMF digit received in a SIP INFO (`application/dtmf-relay`).
    DtmfReceived { call: CallKey, digit: char },
    /// The peer sent a new SDP offer in the established call: a re-INVITE (RFC 3261 §14.2)
    /// or an UPDATE (RFC 3311 §5.2), e.g. to put us on hold (`a=sendonly` / `a=inactive`)
    /// or to resume. Answer with [`SipUa::answer_reoffer`] within
    /// [`SipUa::REOFFER_ANSWER_TIMEOUT`]; after that the user agent answers on its own with
    /// our last SDP, each stream's direction adapted to the offer (RFC 3264 §6.1:
    /// `sendonly` is answered `recvonly`, `inactive` with `inactive`).
    Reoffer { call: CallKey, sdp: String },
    /// The answer to our [`SipUa::reinvite`] / [`SipUa::update`] (2xx; already ACKed).
    Reanswered { call: CallKey, sdp: Option<String> },
    /// Our re-INVITE/UPDATE was refused (`code`; 491 after the RFC 3261 §14.1 retries, or
    /// at once when another offer/answer exchange was in progress). The session is
    /// unchanged (RFC 3261 §14.1). A 481 or 408 ends the call instead ([`SipEvent::Ended`]).
    ReofferFailed {
        call: CallKey,
        code: u16,
        reason: String,
    },
    /// Delivery report of [`SipUa::send_message`]: the final response (2xx delivered,
    /// 408 nothing answered, 503 transport error), after any digest round.
    MessageStatus {
        key: MessageKey,
        code: u16,
        reason: String,
    },
    /// An instant message (MESSAGE outside a dialog, RFC 3428 §7), already answered 200.
    /// `content_type` is `text/plain[;charset=..]` or `application/im-iscomposing+xml`
    /// (RFC 3994 typing notification); other types were refused with 415.
    MessageReceived {
        from_user: String,
        from_display: Option<String>,
        from_uri: String,
        content_type: String,
        body: String,
    },
    /// Progress of our REFER in `call` ([`SipUa::refer`] / [`SipUa::refer_with_replaces`]):
    /// the status line of each NOTIFY's `message/sipfrag` (RFC 3515 §2.4.5: 100, 180, 200,
    /// 486, ...) or the REFER's own failure response (>= 300). Codes >= 200 are final.
    ReferStatus { call: CallKey, code: u16 },
    /// Our REFER in `call` was accepted (its 2xx, normally 202, RFC 3515 §2.4.2); the
    /// transfer's progress follows as [`SipEvent::ReferStatus`]. The REFER goes out from its
    /// own task: a caller that ends the dialog right after [`SipUa::refer`] may send its BYE
    /// first, so a blind transfer ends its leg on this event instead.
    ReferAccepted { call: CallKey },
    /// The peer of `call` asks us to transfer (REFER, RFC 3515 §2.4.2): call `target`
    /// (its `Replaces`, if any, goes into that INVITE, RFC 3891). Answer with
    /// [`SipUa::accept_refer`] (then [`SipUa::notify_refer`] with the new call's outcome)
    /// or [`SipUa::reject_refer`].
    Refer {
        call: CallKey,
        target: String,
        replaces: Option<Replaces>,
        referred_by: Option<String>,
    },
    /// A NOTIFY (RFC 6665 §4.1.3) for our subscription `sub` (`None`: an unsolicited one
    /// outside any subscription, e.g. message-summary from a voicemail server), already
    /// answered 200. `event` is the package (`presence`, `dialog`, `message-summary`),
    /// `body` raw (PIDF RFC 3863, dialog-info RFC 4235, simple-message-summary RFC 3842).
    /// After `Terminated` nothing more arrives for `sub`.
    Notify {
        sub: Option<SubKey>,
        event: String,
        state: SubscriptionState,
        content_type: Option<String>,
        body: String,
    },
    /// Our SUBSCRIBE (or its refresh) for `sub` was refused (`code`; 408 for no answer);
    /// the subscription is over.
    SubscriptionFailed { sub: SubKey, code: u16 },
    /// Outcome of a PUBLISH ([`SipUa::publish_presence`]; refreshes only when they fail).
    PublishStatus { code: u16, reason: String },
    /// One SIP message sent or received, while [`SipUa::set_trace`] is on.
    ///
    /// `text` is the whole message (start line, headers, body) with the digest
    /// `response`, `cnonce` and `rspauth` values of `Authorization`,
    /// `Proxy-Authorization`, `Authentication-Info` and `Proxy-Authentication-Info`
    /// replaced by `"<redacted>"`. `remote` is where it was sent to / received from
    /// (`0.0.0.0:0` when the stack did not know, e.g. a request it could not route).
    /// Retransmissions sent by the transaction layer are included; replies the stack
    /// replays from its cache of finished transactions (a repeated 2xx ACK, the final
    /// response to a retransmitted INVITE) are not. Not tied to a call; shares the
    /// channel with the other events (a received INVITE's trace precedes its
    /// [`SipEvent::Incoming`]).
    Trace {
        outgoing: bool,
        remote: SocketAddr,
        text: String,
    },
}

/// Message from the [`SipUa`] handles to the driver task.
pub(crate) enum DriverMsg {
    Command(policy::Command),
    /// Precomputed digest HA1 (or none: use the password).
    SetHa1(Option<String>),
    /// Messaging, INFO, transfer, subscriptions ([`messaging`]).
    Service(messaging::ServiceCommand),
    /// DNS servers for RFC 3263 server location.
    SetDns(Vec<SocketAddr>),
    /// Whether the transport was left to RFC 3263 §4.1 ([`SipUa::set_transport_auto`]).
    SetTransportAuto(bool),
    /// [`SipUa::set_rport_mode`].
    SetRport(RportMode),
    /// The network changed: move to the local address `ip` and register again
    /// ([`SipUa::network_changed`]).
    NetworkChanged(IpAddr, oneshot::Sender<Result<SocketAddr, SipError>>),
    Shutdown(oneshot::Sender<()>),
}

struct UaInner {
    tx: mpsc::UnboundedSender<DriverMsg>,
    /// The address we listen on and advertise; moved by [`SipUa::network_changed`].
    local_addr: Arc<Mutex<SocketAddr>>,
    next_call: Arc<AtomicU64>,
    /// Whether [`SipEvent::Trace`] events are produced (shared with the stack's hooks).
    trace: Arc<AtomicBool>,
    /// SIP Call-ID of every live call (shared with the driver, which forgets a call when it
    /// emits its `Ended`).
    call_ids: CallIds,
    /// Copy of the account for synchronous target resolution in [`SipUa::invite`].
    account: Mutex<Option<AccountConfig>>,
    transport: Transport,
    /// User-supplied header fields and redirect Contacts, applied by the send hook.
    extra: Arc<Mutex<headers::ExtraHeaders>>,
}

/// The SIP user agent handle. Cheap to clone; every clone drives the same stack.
/// The driver stops when [`SipUa::shutdown`] is called or every handle is dropped.
#[derive(Clone)]
pub struct SipUa {
    inner: Arc<UaInner>,
}

impl fmt::Debug for SipUa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipUa")
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

impl SipUa {
    /// Bind the socket, start the stack and return the handle with its event stream.
    pub async fn start(
        cfg: SipConfig,
    ) -> Result<(SipUa, mpsc::UnboundedReceiver<SipEvent>), SipError> {
        SipUa::start_with(cfg, TransportOptions::default()).await
    }

    /// [`SipUa::start`] with connection settings: keep-alive interval, extra TLS trust
    /// anchors, WebSocket path. Fails with [`SipError::Tls`] when the CA file cannot be
    /// read or holds no usable certificate.
    pub async fn start_with(
        cfg: SipConfig,
        opts: TransportOptions,
    ) -> Result<(SipUa, mpsc::UnboundedReceiver<SipEvent>), SipError> {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let next_call = Arc::new(AtomicU64::new(1));
        let trace = Arc::new(AtomicBool::new(false));
        let call_ids = CallIds::default();
        let extra = Arc::new(Mutex::new(headers::ExtraHeaders::default()));
        let (local_addr, tx) = stack::start(
            &cfg,
            &opts,
            next_call.clone(),
            trace.clone(),
            call_ids.clone(),
            extra.clone(),
            ev_tx,
        )
        .await?;
        tracing::info!(local_addr = %*lock(&local_addr), transport = %cfg.transport, "SIP user agent started");
        let ua = SipUa {
            inner: Arc::new(UaInner {
                tx,
                local_addr,
                next_call,
                trace,
                call_ids,
                account: Mutex::new(None),
                transport: cfg.transport,
                extra,
            }),
        };
        Ok((ua, ev_rx))
    }

    /// The address we listen on and advertise (Via sent-by, Contact).
    pub fn local_addr(&self) -> SocketAddr {
        *lock(&self.inner.local_addr)
    }

    /// The network changed under us (RFC 3261 §10.2.1: the Contact of the binding must name
    /// where we are now reachable): move the transport to the local address `ip` (same port
    /// when free), advertise it in Via and Contact from now on, also in the Contact of the
    /// calls already up, and register again at once when a registration is active or being
    /// retried. With `ip` unchanged only the registration is renewed (e.g. the link came
    /// back). Refreshing the calls' media (a re-INVITE with the new address in `c=`) is the
    /// caller's: [`SipUa::reinvite`]. Returns the new local address.
    pub async fn network_changed(&self, ip: IpAddr) -> Result<SocketAddr, SipError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(DriverMsg::NetworkChanged(ip, tx))
            .map_err(|_| SipError::Closed)?;
        rx.await.map_err(|_| SipError::Closed)?
    }

    /// Set (or replace) the account. Replacing a registered account unregisters the old
    /// binding first; call [`SipUa::register`] to register the new one.
    pub fn set_account(&self, acc: AccountConfig) {
        tracing::debug!(account = ?acc, "set_account");
        *lock(&self.inner.account) = Some(acc.clone());
        self.send(policy::Command::SetAccount(acc));
    }

    /// Answer MD5 digest challenges with a precomputed `HA1 = MD5(user:realm:password)`
    /// (32 hex digits; RFC 2617 §3.2.2.2) instead of the password: the `md5` account
    /// parameter, so the clear password need not be stored. The HA1 is bound to one realm
    /// and one algorithm: SHA-256 / SHA-512-256 challenges cannot be answered with it (an
    /// MD5 challenge offered alongside them is used instead). `None` (or empty) goes back to
    /// the password. Takes effect for the next request; set it before [`SipUa::register`].
    pub fn set_digest_ha1(&self, ha1: Option<String>) {
        if self.inner.tx.send(DriverMsg::SetHa1(ha1)).is_err() {
            tracing::debug!("SIP driver is gone; HA1 dropped");
        }
    }

    /// DNS servers used to locate the registrar and proxy (RFC 3263: NAPTR, SRV
    /// `_sip._udp` / `_sip._tcp` / `_sips._tcp`, then A/AAAA; answers cached for their TTL).
    /// Default: the `nameserver`s of `/etc/resolv.conf`; empty = only the system resolver
    /// (A/AAAA, no SRV). Any port may be given (tests run their own server). Setting them
    /// forgets what the cache holds.
    pub fn set_dns_servers(&self, servers: Vec<SocketAddr>) {
        if self.inner.tx.send(DriverMsg::SetDns(servers)).is_err() {
            tracing::debug!("SIP driver is gone; DNS servers dropped");
        }
    }

    /// Whether no transport was chosen (`transport` -1 and a server address without
    /// `sips:`, `;transport=` or a WebSocket scheme). Then the transport to the server (or
    /// proxy) of the REGISTER, INVITE and other out-of-dialog requests comes from DNS (RFC
    /// 3263 §4.1): NAPTR for the domain, then SRV per transport; UDP, TCP, TLS, WS or WSS.
    /// TLS and WebSocket connect to the located address but check the certificate against
    /// the domain (RFC 5922 §4), never the SRV target. Off by default: the configured
    /// transport is used.
    pub fn set_transport_auto(&self, auto: bool) {
        if self
            .inner
            .tx
            .send(DriverMsg::SetTransportAuto(auto))
            .is_err()
        {
            tracing::debug!("SIP driver is gone; transport choice dropped");
        }
    }

    /// Register the account and keep the registration refreshed until [`SipUa::unregister`].
    pub fn register(&self) {
        self.send(policy::Command::Register);
    }

    /// Remove the binding (`Expires: 0`) and stop refreshing.
    pub fn unregister(&self) {
        self.send(policy::Command::Unregister);
    }

    /// Replace the extra accounts registered alongside the main one (multi-account).
    ///
    /// Each has its own registration (own Call-ID and CSeq, RFC 3261 §10.2; own Contact user;
    /// its own `register_expires`, refresh and back-off; its own digest credentials, realm and
    /// `auth_username`; no `md5` HA1). Their states arrive as [`SipEvent::ExtraRegistration`].
    /// INVITEs addressed to any of them ring (ghost-call protection accepts their user names
    /// and registrars). Outgoing requests keep using the main account.
    ///
    /// Accounts dropped from the list are unregistered; a listed account whose settings
    /// changed registers again at once if it was registered; new ones wait for
    /// [`SipUa::register_extra`]. A second account with the same `username@server` is
    /// ignored. [`SipUa::shutdown`] unregisters them all.
    pub fn set_extra_accounts(&self, accounts: Vec<AccountConfig>) {
        tracing::debug!(accounts = ?accounts, "set_extra_accounts");
        self.send(policy::Command::SetExtraAccounts(accounts));
    }

    /// Register every extra account that is not registered or registering; each is kept
    /// refreshed until [`SipUa::unregister_extra`].
    pub fn register_extra(&self) {
        self.send(policy::Command::RegisterExtra);
    }

    /// Remove the bindings of every extra account (`Expires: 0`) and stop refreshing them;
    /// they stay listed for [`SipUa::register_extra`].
    pub fn unregister_extra(&self) {
        self.send(policy::Command::UnregisterExtra);
    }

    /// How [`SipEvent::ExtraRegistration`] names `acc`: `username@server` (the proxy when
    /// no server is set).
    pub fn extra_account_key(acc: &AccountConfig) -> String {
        policy::account_key(acc)
    }

    /// Start an outgoing call with `sdp_offer` in the INVITE.
    ///
    /// Targets: `"1002"` (user at the account's server domain, sent via proxy/server),
    /// `"sip:1002@host"` (via the server when `host` is the server, else direct),
    /// `"sip:peer@127.0.0.1:5070"` (direct, no account needed), `"sips:peer@host"` (TLS on
    /// every hop: refused with [`SipError::Unsupported`] when the hop to the server is not
    /// TLS), `"sip:peer@host;transport=tcp"` (the transport of a direct hop; kept in the
    /// Request-URI). With a proxy configured every call goes through the proxy.
    pub fn invite(&self, target: &str, sdp_offer: String) -> Result<CallKey, SipError> {
        self.invite_with_headers(target, sdp_offer, Vec::new())
    }

    /// [`SipUa::invite`] with extra header fields for this call: they go into the INVITE
    /// (and its re-sends with credentials or to a redirect target) and into every later
    /// request and response of the call (CANCEL, ACK, BYE, re-INVITE, ...), in addition to those of
    /// [`SipUa::set_extra_headers`], until [`SipUa::set_call_headers`] replaces them.
    /// Fails with [`SipError::InvalidHeader`] (nothing is sent) when a field would break
    /// the message: see [`SipUa::set_extra_headers`].
    pub fn invite_with_headers(
        &self,
        target: &str,
        sdp_offer: String,
        headers: Vec<(String, String)>,
    ) -> Result<CallKey, SipError> {
        let headers = headers::validate_headers(headers)?;
        if sdp_offer.trim().is_empty() {
            // Late offer would need the SDP answer in our ACK (RFC 3261 §13.2.1), which the
            // stack's automatic 2xx ACK cannot carry.
            return Err(SipError::Unsupported(
                "INVITE without SDP offer (late offer)".into(),
            ));
        }
        let account = lock(&self.inner.account).clone();
        let local_ip = self.local_addr().ip();
        let resolved = target::resolve(target, account.as_ref(), local_ip, self.inner.transport)?;
        stack::validate_uri(&resolved.request_uri).map_err(|reason| SipError::InvalidTarget {
            target: target.to_string(),
            reason,
        })?;
        if self.inner.tx.is_closed() {
            return Err(SipError::Closed);
        }
        let call = CallKey(self.inner.next_call.fetch_add(1, Ordering::Relaxed));
        let call_id = stack::new_call_id();
        tracing::info!(%call, target, uri = %resolved.request_uri, next_hop = %resolved.next_hop, %call_id, "invite");
        self.inner.call_ids.insert(call, call_id.clone());
        if !headers.is_empty() {
            lock(&self.inner.extra).set_call(&call_id, headers);
        }
        self.send(policy::Command::Invite {
            call,
            call_id,
            target: resolved,
            sdp: sdp_offer,
        });
        Ok(call)
    }

    /// Header fields added to every message we send from now on: requests (REGISTER,
    /// INVITE, CANCEL, ACK, in-dialog requests, MESSAGE, SUBSCRIBE, PUBLISH, ...) and
    /// responses. For the `customsipheader` / `setsipheader` parameters (RFC 3261 §7.3
    /// header fields, `X-` names advised). Replaces the previous set; an empty `headers`
    /// removes them.
    ///
    /// Fails with [`SipError::InvalidHeader`] (and keeps the previous set) when a name is
    /// not an RFC 3261 §25.1 token, a value contains CR, LF or another control character
    /// (header injection), or the name is one the stack manages (Via, From, To, Call-ID,
    /// CSeq, Max-Forwards, Content-Length, Content-Type and their compact forms).
    pub fn set_extra_headers(&self, headers: Vec<(String, String)>) -> Result<(), SipError> {
        let headers = headers::validate_headers(headers)?;
        lock(&self.inner.extra).set_global(headers);
        Ok(())
    }

    /// Header fields added to the later requests of `call` (re-INVITE, UPDATE, BYE, INFO,
    /// REFER, CANCEL, ACK, ...) and to our responses in it (180, 200, ...), besides those of [`SipUa::set_extra_headers`]. Replaces the
    /// call's previous set (including those of [`SipUa::invite_with_headers`]); empty
    /// removes them. [`SipError::NoSuchCall`] for a call that is not live;
    /// [`SipError::InvalidHeader`] as for [`SipUa::set_extra_headers`].
    pub fn set_call_headers(
        &self,
        call: CallKey,
        headers: Vec<(String, String)>,
    ) -> Result<(), SipError> {
        let headers = headers::validate_headers(headers)?;
        let call_id = self
            .inner
            .call_ids
            .get(call)
            .ok_or(SipError::NoSuchCall(call))?;
        lock(&self.inner.extra).set_call(&call_id, headers);
        Ok(())
    }

    /// Redirect an incoming call that is not answered yet (call forwarding): answer its
    /// INVITE with a 3xx (RFC 3261 §8.3.1, §21.3) listing `contacts` as the new locations,
    /// in order. `code` outside 300-399 becomes 302 Moved Temporarily. A contact is a SIP
    /// URI (`sip:1003@example.com`, put between angle brackets) or a `name-addr` with
    /// parameters (`"Bob" <sip:bob@example.com>;q=0.5`). The call ends as
    /// [`EndReason::LocalReject`] with the code.
    ///
    /// Errors: [`SipError::InvalidHeader`] for no contact or one that is not a valid URI /
    /// contains CR, LF or control characters; [`SipError::NoSuchCall`] for an unknown call.
    /// An established or outgoing call is left alone (as [`SipUa::reject`] does).
    pub fn redirect(
        &self,
        call: CallKey,
        code: u16,
        contacts: Vec<String>,
    ) -> Result<(), SipError> {
        if contacts.is_empty() {
            return Err(SipError::InvalidHeader {
                name: "Contact".into(),
                reason: "a redirect needs at least one contact (RFC 3261 §21.3)".into(),
            });
        }
        let contacts = contacts
            .iter()
            .map(|c| headers::redirect_contact(c))
            .collect::<Result<Vec<_>, _>>()?;
        let call_id = self
            .inner
            .call_ids
            .get(call)
            .ok_or(SipError::NoSuchCall(call))?;
        let code = if (300..=399).contains(&code) {
            code
        } else {
            302
        };
        lock(&self.inner.extra).set_redirect(&call_id, contacts);
        self.send(policy::Command::Reject(call, code));
        Ok(())
    }

    /// The SIP Call-ID of a live call: for an outgoing call from the moment
    /// [`SipUa::invite`] returns (it is chosen there), for an incoming call the
    /// `sip_call_id` of its [`SipEvent::Incoming`]. `None` for an unknown call and once the
    /// driver has emitted the call's [`SipEvent::Ended`] (ask before, e.g. right after
    /// `invite`, to keep it for the end of the call).
    pub fn call_id(&self, call: CallKey) -> Option<String> {
        self.inner.call_ids.get(call)
    }

    /// Turn [`SipEvent::Trace`] on or off (off after [`SipUa::start`]); takes effect
    /// for the next message. While off, the stack's hooks only read a flag.
    pub fn set_trace(&self, on: bool) {
        self.inner.trace.store(on, Ordering::Relaxed);
    }

    /// Whether [`SipEvent::Trace`] events are on.
    pub fn trace_enabled(&self) -> bool {
        self.inner.trace.load(Ordering::Relaxed)
    }

    /// Send `180 Ringing` for an incoming call.
    pub fn ringing(&self, call: CallKey) {
        self.send(policy::Command::Ringing(call));
    }

    /// Answer an incoming call with `200 OK` carrying `sdp_answer` (or our offer, when the
    /// INVITE had none).
    pub fn answer(&self, call: CallKey, sdp_answer: String) {
        self.send(policy::Command::Answer(call, sdp_answer));
    }

    /// Follow 3xx redirects of our INVITEs (`allowcallredirect`, on by default): the call
    /// is re-sent once to the Contact of the 301/302 ([`SipEvent::Redirected`]); when off,
    /// a 3xx ends the call as `Rejected`.
    pub fn set_allow_redirect(&self, on: bool) {
        self.send(policy::Command::AllowRedirect(on));
    }

    /// Which failed registrations are tried again (`forcereregister`): see
    /// [`Reregister`].
    pub fn set_reregister(&self, mode: Reregister) {
        self.send(policy::Command::Reregister(mode));
    }

    /// Whether [`SipUa::shutdown`] removes the registrations (`needunregister`, on by
    /// default). Off, the bindings stay at the registrar until they expire, so a client that
    /// comes straight back (a reloaded page) is reachable all the time.
    pub fn set_unregister_on_shutdown(&self, on: bool) {
        self.send(policy::Command::UnregisterOnShutdown(on));
    }

    /// How `rport` (RFC 3581) is used: the `use_rport` parameter ([`RportMode`]). Takes
    /// effect from the next request; set it before [`SipUa::register`].
    pub fn set_rport_mode(&self, mode: RportMode) {
        if self.inner.tx.send(DriverMsg::SetRport(mode)).is_err() {
            tracing::debug!("SIP driver is gone; rport mode dropped");
        }
    }

    /// Ghost-call protection (SIP scanners, calls bypassing the PBX). With `false`, an
    /// INVITE must be addressed to our user name (else 404) and, while registered, come
    /// from the registrar's or outbound proxy's address, IP and port (else 403); refused
    /// INVITEs produce no event. With `true` any INVITE may ring (peer-to-peer use). Default:
    /// direct calls are accepted only while no server/proxy is configured. Either way an
    /// INVITE whose `User-Agent` names a known SIP scanner (SIPVicious `friendly-scanner`,
    /// sipcli, ...) gets 403 and never rings.
    pub fn set_accept_direct(&self, on: bool) {
        self.send(policy::Command::AcceptDirect(Some(on)));
    }

    /// How long the engine has to answer a [`SipEvent::Reoffer`] before the user agent
    /// answers it on its own.
    pub const REOFFER_ANSWER_TIMEOUT: Duration = policy::REOFFER_ANSWER_TIMEOUT;

    /// Send a new offer in an established call with a re-INVITE (RFC 3261 §14.1): hold
    /// (`a=sendonly` / `a=inactive`), resume, codec change. The answer arrives as
    /// [`SipEvent::Reanswered`], a refusal as [`SipEvent::ReofferFailed`]; a 491 (glare) is
    /// retried after the RFC 3261 §14.1 back-off. Empty SDP: [`SipError::Unsupported`].
    pub fn reinvite(&self, call: CallKey, sdp_offer: String) -> Result<(), SipError> {
        self.reoffer(call, sdp_offer, false)
    }

    /// [`SipUa::reinvite`] with an UPDATE (RFC 3311 §5.1) instead of a re-INVITE.
    pub fn update(&self, call: CallKey, sdp_offer: String) -> Result<(), SipError> {
        self.reoffer(call, sdp_offer, true)
    }

    fn reoffer(&self, call: CallKey, sdp: String, update: bool) -> Result<(), SipError> {
        if sdp.trim().is_empty() {
            return Err(SipError::Unsupported(
                "re-INVITE/UPDATE without SDP offer".into(),
            ));
        }
        if self.inner.tx.is_closed() {
            return Err(SipError::Closed);
        }
        self.send(policy::Command::Reoffer { call, sdp, update });
        Ok(())
    }

    /// Answer the peer's [`SipEvent::Reoffer`] with `sdp_answer` (200 OK). An empty answer
    /// refuses the offer with 488 Not Acceptable Here; the session stays as it was.
    pub fn answer_reoffer(&self, call: CallKey, sdp_answer: String) {
        self.send(policy::Command::AnswerReoffer(call, sdp_answer));
    }

    /// Refuse an incoming call with `code` (486 Busy Here, 603 Decline, ...; anything
    /// outside 300-699 becomes 603).
    pub fn reject(&self, call: CallKey, code: u16) {
        self.send(policy::Command::Reject(call, code));
    }

    /// End the call whatever its state: CANCEL an unanswered outgoing call, reject an
    /// unanswered incoming one with 603, BYE an established one.
    pub fn hangup(&self, call: CallKey) {
        self.send(policy::Command::Hangup(call));
    }

    /// Hang up every call, unregister (if registered) and stop the stack. Waits at most a
    /// few seconds for the registrar.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(DriverMsg::Shutdown(tx)).is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(6), rx).await;
    }

    fn send(&self, cmd: policy::Command) {
        if self.inner.tx.send(DriverMsg::Command(cmd)).is_err() {
            tracing::debug!("SIP driver is gone; command dropped");
        }
    }
}

/// Call-IDs of the live calls, shared by the handles and the driver.
#[derive(Clone, Default)]
pub(crate) struct CallIds(Arc<Mutex<HashMap<CallKey, String>>>);

impl CallIds {
    pub(crate) fn insert(&self, call: CallKey, call_id: String) {
        lock(&self.0).insert(call, call_id);
    }

    pub(crate) fn get(&self, call: CallKey) -> Option<String> {
        lock(&self.0).get(&call).cloned()
    }

    pub(crate) fn remove(&self, call: CallKey) {
        lock(&self.0).remove(&call);
    }
}

/// Lock a mutex, recovering the data if a panicking thread poisoned it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
