//! The tokio driver: the only module that touches `rsipstack`.
//!
//! It owns the endpoint (transport + transaction layers), the dialog layer and the
//! [`UaPolicy`]. It translates rsipstack transactions, responses and dialog states into
//! [`StackEvent`]s for the policy, and the policy's [`Action`]s into rsipstack calls.
//! Anything that awaits the network runs in a spawned task that reports back through the
//! `StackEvent` channel, so the driver loop never blocks.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason, TransactionHandle};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{
    Header, Host, HostWithPort, Method, Param, Request, Response, SipMessage, StatusCode,
    StatusCodeKind, Uri,
};
use rsipstack::transaction::endpoint::{
    EndpointInner, EndpointOption, MessageInspector, TransportEventInspector,
};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::{make_tag, CallIdFormat, TransactionReceiver};
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::connection::KEEPALIVE_REQUEST;
use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::tls::TlsConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::websocket::{WebSocketConnection, WebSocketInner};
use rsipstack::transport::{
    SipAddr, SipConnection, TcpListenerConnection, TransportEvent, TransportLayer,
};
use rsipstack::EndpointBuilder;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::policy::{
    Action, Command, IncomingInvite, Input, RegisterOutcome, StackEvent, Termination, UaPolicy,
};
use crate::target::{self, HostPort, Target};

/// The pong deadline of stream flows (RFC 5626 §4.4.1), seen through the socket.
mod flow_probe;
/// Our validating parser in front of rsipstack for every received message.
mod inbound;
/// The answers of incoming calls' dialogs, routed to their INVITE transactions.
mod invite_responder;
mod quoted_names;
/// Network change: the transport moves to a new local address (`rebind`).
mod rebind;
/// MESSAGE, INFO, REFER, SUBSCRIBE/NOTIFY, PUBLISH ([`crate::messaging`]).
mod services;
mod state_router;
mod tls_on_demand;
/// In-dialog requests that overtake the ACK of our 2xx.
mod unconfirmed;
/// Request-URI escapes that rsipstack writes twice, restored on the way out (UDP).
mod uri_escapes;
use crate::{
    AccountConfig, CallIds, CallKey, DriverMsg, SipConfig, SipError, SipEvent, Transport,
    TransportOptions,
};

/// Methods we accept (RFC 3261 §20.5 `Allow`).
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, MESSAGE, REFER, NOTIFY";
/// Extensions we support (RFC 3261 §20.37 `Supported`) in our answers: reliable provisionals
/// (RFC 3262) and Replaces (RFC 3891 §6.1:
/// a UA that supports it says so; PBXs check it before a pickup or attended transfer).
const SUPPORTED: &str = "100rel, replaces";
/// Extensions named in our REGISTERs: Path (RFC 3327).
const REGISTER_SUPPORTED: &str = "path";
/// How long shutdown waits for outstanding BYE/CANCEL transactions.
const BYE_GRACE: Duration = Duration::from_secs(2);
/// User part of our Contact when no account is configured.
const ANONYMOUS_USER: &str = "webphone";

/// Check that `uri` parses as a SIP URI (RFC 3261 §19.1).
pub(crate) fn validate_uri(uri: &str) -> Result<(), String> {
    Uri::try_from(uri).map(|_| ()).map_err(|e| e.to_string())
}

fn sip_transport(t: Transport) -> rsipstack::sip::Transport {
    match t {
        Transport::Udp => rsipstack::sip::Transport::Udp,
        Transport::Tcp => rsipstack::sip::Transport::Tcp,
        Transport::Tls => rsipstack::sip::Transport::Tls,
        Transport::Ws => rsipstack::sip::Transport::Ws,
        Transport::Wss => rsipstack::sip::Transport::Wss,
    }
}

fn host_of(s: &str) -> Host {
    match s.parse::<IpAddr>() {
        Ok(ip) => Host::IpAddr(ip),
        Err(_) => Host::Domain(s.into()),
    }
}

fn sip_addr(hop: &HostPort, transport: Transport) -> SipAddr {
    SipAddr {
        r#type: Some(sip_transport(transport)),
        addr: HostWithPort {
            host: host_of(&hop.host),
            port: Some(hop.port.into()),
        },
    }
}

/// Quote a display name for a `name-addr` (RFC 3261 §25.1 `quoted-string`).
fn display_name(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

fn body_text(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(body).into_owned())
    }
}

fn reason_text(resp: &Response) -> String {
    resp.wire_reason
        .clone()
        .unwrap_or_else(|| resp.status_code.text().to_string())
}

/// A fresh Call-ID (RFC 3261 §8.1.1.4) in the format the endpoint uses.
pub(crate) fn new_call_id() -> String {
    rsipstack::transaction::make_call_id(None, CallIdFormat::Uuid)
        .value()
        .to_string()
}

/// Produces [`SipEvent::Trace`] from the endpoint's message hooks: every message the
/// transaction layer sends passes [`MessageInspector::before_send`], every message the
/// transports deliver passes [`TransportEventInspector::handle`] (before any transaction
/// matching, so retransmissions and absorbed ACKs are seen too).
struct Tracer {
    on: Arc<AtomicBool>,
    /// User header fields and redirect Contacts, added before the message is traced.
    extra: Arc<Mutex<crate::headers::ExtraHeaders>>,
    /// Contacts of addresses we moved away from (network change), rewritten.
    moves: Arc<Mutex<crate::netchange::ContactMoves>>,
    /// `use_rport` 0: no `rport` in the Via of our requests (RFC 3581 §3 makes it a choice).
    no_rport: Arc<AtomicBool>,
    /// This user agent's key in the refusal limiter for stream peers (its first address).
    limiter_key: SocketAddr,
    /// Weak, so that the hooks (owned by the endpoint) do not keep the event channel open
    /// after the driver has stopped.
    events: mpsc::WeakUnboundedSender<SipEvent>,
    /// Peers whose display name rsipstack's dialogs would write broken ([`quoted_names`]).
    quoted: Mutex<quoted_names::QuotedNames>,
}

impl Tracer {
    fn enabled(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    fn emit(&self, outgoing: bool, remote: SocketAddr, msg: &SipMessage) {
        if let Some(events) = self.events.upgrade() {
            let text = crate::trace::redact_credentials(&msg.to_string());
            let _ = events.send(SipEvent::Trace {
                outgoing,
                remote,
                text,
            });
        }
    }
}

const UNKNOWN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// A refusal (RFC 3261 §21.4 codes that scanners provoke) we answer over a connection counts
/// against its peer's address in the refusal limiter; over UDP [`inbound::GuardedUdp`]
/// counts what it sends. The peer is the response's top Via (`received`, else its host: the
/// transport sets `received` when the two differ, RFC 3261 §18.2.1).
fn note_stream_refusal(ua: SocketAddr, msg: &SipMessage) {
    let SipMessage::Response(resp) = msg else {
        return;
    };
    if !inbound::is_refusal(resp.status_code.code()) {
        return;
    }
    let stream = resp.via_header().is_ok_and(|v| {
        let t = v.value().trim_start();
        let sip = t
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/2.0/"));
        let udp = t.get(8..11).is_some_and(|p| p.eq_ignore_ascii_case("UDP"));
        sip && !udp
    });
    if !stream {
        return;
    }
    if let Ok(to) = SipConnection::get_destination(msg) {
        inbound::stream_response_sent(ua, to.ip(), msg.to_string().as_bytes());
    }
}

struct TraceSent(Arc<Tracer>);

impl MessageInspector for TraceSent {
    fn before_send(&self, mut msg: SipMessage, dest: Option<&SipAddr>) -> SipMessage {
        crate::lock(&self.0.extra).apply(&mut msg);
        crate::lock(&self.0.moves).apply(&mut msg);
        if self.0.no_rport.load(Ordering::Relaxed) {
            strip_rport(&mut msg);
        }
        // Over TCP/TLS/WS, what UDP's socket guard does on the datagram (inbound.rs,
        // uri_escapes.rs): no made-up RFC 2543 tags, the Request-URI user escaped once.
        if let Some(plain) = inbound::strip_rfc2543_tags_of(&msg) {
            msg = plain;
        }
        uri_escapes::decode_request_uri_user(&mut msg);
        crate::lock(&self.0.quoted).repair(&mut msg);
        note_stream_refusal(self.0.limiter_key, &msg);
        if self.0.enabled() {
            // Without an explicit destination the UDP transport sends a request to its
            // Request-URI and a response to its top Via (`received`/`rport`); so do we.
            let remote = dest
                .and_then(|d| d.get_socketaddr().ok())
                .or_else(|| SipConnection::get_destination(&msg).ok())
                .unwrap_or(UNKNOWN_ADDR);
            self.0.emit(true, remote, &msg);
        }
        msg
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        // Received messages are traced at the transport (`TraceReceived`).
        msg
    }
}

/// Transport hook: traces received messages and reports closed connections (by their
/// local address) to the driver, which re-registers when it was the registration's.
struct TraceReceived(
    Arc<Tracer>,
    mpsc::UnboundedSender<SipAddr>,
    AnsweredInvites,
    Arc<tls_on_demand::TlsOnDemand>,
);

impl TransportEventInspector for TraceReceived {
    // The `#[async_trait]` signature, written out (nothing here awaits).
    fn handle<'a, 'b>(
        &'a self,
        event: TransportEvent,
    ) -> Pin<Box<dyn Future<Output = Option<TransportEvent>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        if self.0.enabled() {
            if let TransportEvent::Incoming(msg, _, from) = &event {
                self.0
                    .emit(false, from.get_socketaddr().unwrap_or(UNKNOWN_ADDR), msg);
            }
        }
        if let TransportEvent::Closed(conn) = &event {
            let _ = self.1.send(conn.get_addr().clone());
        }
        if let TransportEvent::Incoming(SipMessage::Response(resp), _, _) = &event {
            self.2.note_response(resp);
        }
        if let TransportEvent::Incoming(msg, _, _) = &event {
            // Before any transaction or dialog sees it (and may dial its TLS route).
            self.3.on_received(msg);
            crate::lock(&self.0.quoted).note_received(msg);
        }
        let limiter_key = self.0.limiter_key;
        Box::pin(async move {
            // Stream transports: rsipstack framed and parsed the message; validate it before
            // any transaction sees it (UDP datagrams were checked on their raw bytes).
            if let TransportEvent::Incoming(msg, conn, from) = &event {
                let from_addr = from.get_socketaddr().ok();
                match inbound::check_stream(msg, conn, from_addr, limiter_key).await {
                    inbound::StreamVerdict::Pass => {}
                    inbound::StreamVerdict::Drop => return None,
                    inbound::StreamVerdict::Replace(fixed) => {
                        return Some(TransportEvent::Incoming(*fixed, conn.clone(), from.clone()));
                    }
                }
            }
            Some(event)
        })
    }
}

/// Bind the socket, start the endpoint and spawn the driver task.
pub(crate) async fn start(
    cfg: &SipConfig,
    opts: &TransportOptions,
    next_call: Arc<AtomicU64>,
    trace: Arc<AtomicBool>,
    call_ids: CallIds,
    extra: Arc<Mutex<crate::headers::ExtraHeaders>>,
    events: mpsc::UnboundedSender<SipEvent>,
) -> Result<(Arc<Mutex<SocketAddr>>, mpsc::UnboundedSender<DriverMsg>), SipError> {
    let token = CancellationToken::new();
    let dns = crate::locate::Dns::new(crate::locate::system_name_servers());
    // rsipstack resolves next hops named by domain; located TLS/WebSocket hops are pinned
    // to their address there (the name stays the domain: certificate check, RFC 5922 §4).
    let transport_layer = TransportLayer::new_with_domain_resolver(
        token.child_token(),
        Box::new(crate::locate::PinnedResolver {
            pins: dns.pins.clone(),
            fallback: Default::default(),
        }),
    );
    let bind = SocketAddr::new(cfg.bind_ip, cfg.port);

    let advertised_ip = if cfg.bind_ip.is_unspecified() {
        SipConnection::resolve_bind_address(bind).ip()
    } else {
        cfg.bind_ip
    };

    let mut udp_token = None;
    let mut stun_found = None;
    let local = match cfg.transport {
        Transport::Udp => {
            // Our socket, so that every datagram passes our parser first (`inbound`).
            let sock =
                tokio::net::UdpSocket::bind(bind)
                    .await
                    .map_err(|source| SipError::Bind {
                        transport: "UDP",
                        addr: bind,
                        source,
                    })?;
            // `use_fast_stun`: ask before the stack reads from the socket; `upnpnat`: ask
            // the router for a forward at the same time.
            let port = sock.local_addr().map(|a| a.port()).unwrap_or(cfg.port);
            let ours = SocketAddr::new(advertised_ip, port);
            stun_found = probe_new_socket(
                &sock,
                ours,
                opts.stun_server,
                opts.fast_stun,
                opts.port_mapper.as_ref(),
            )
            .await;
            let guarded: Arc<dyn rsipstack::platform::net::UdpSocket> =
                Arc::new(inbound::GuardedUdp { sock });
            let udp = token.child_token();
            let conn = UdpConnection::from_socket(guarded, None, Some(udp.clone()))
                .await
                .map_err(|e| SipError::Stack(e.to_string()))?;
            udp_token = Some(udp);
            let addr = conn
                .get_addr()
                .get_socketaddr()
                .map_err(|e| SipError::Stack(e.to_string()))?;
            transport_layer.add_transport(conn.into());
            SocketAddr::new(advertised_ip, addr.port())
        }
        Transport::Tcp => {
            // rsipstack binds TCP listeners when the endpoint starts serving; find the
            // port now (port 0 = any) so that Via/Contact can name it.
            let probe = std::net::TcpListener::bind(bind).map_err(|source| SipError::Bind {
                transport: "TCP",
                addr: bind,
                source,
            })?;
            let port = probe
                .local_addr()
                .map_err(|e| SipError::Stack(e.to_string()))?
                .port();
            drop(probe);
            let listen = SocketAddr::new(cfg.bind_ip, port);
            let advertised = SocketAddr::new(advertised_ip, port);
            let external = (advertised != listen).then_some(advertised);
            let conn = TcpListenerConnection::new(listen, external)
                .await
                .map_err(|e| SipError::Stack(e.to_string()))?;
            transport_layer.add_transport(conn.into());
            advertised
        }
        Transport::Tls | Transport::Ws | Transport::Wss => {
            // Client-only: nothing listens. The endpoint still needs one "listener" of
            // this transport, whose address becomes Via sent-by and Contact; an idle
            // in-memory channel serves (requests to us arrive over our own connection to
            // the server). The port is a free one, or `signalingport` when configured.
            let port = if cfg.port != 0 {
                cfg.port
            } else {
                std::net::TcpListener::bind(bind)
                    .and_then(|l| l.local_addr())
                    .map_err(|source| SipError::Bind {
                        transport: "TCP",
                        addr: bind,
                        source,
                    })?
                    .port()
            };
            let advertised = SocketAddr::new(advertised_ip, port);
            let (in_tx, in_rx) = mpsc::unbounded_channel();
            drop(in_tx);
            let (out_tx, _out_rx) = mpsc::unbounded_channel();
            let addr = SipAddr {
                r#type: Some(sip_transport(cfg.transport)),
                addr: advertised.into(),
            };
            let conn = ChannelConnection::create_connection(
                in_rx,
                out_tx,
                addr,
                Some(token.child_token()),
            )
            .await
            .map_err(|e| SipError::Stack(e.to_string()))?;
            transport_layer.add_transport(SipConnection::Channel(conn));
            advertised
        }
    };
    if let Some(path) = opts.ws_path.as_deref().filter(|p| !p.is_empty()) {
        transport_layer.set_ws_path(path);
    }
    // The trust anchors: read now when the account needs TLS (or names a CA file, whose
    // errors belong at start), else at the first TLS or WSS connection.
    let trust = Arc::new(tls_on_demand::TlsOnDemand::new(opts.tls_ca_file.clone()));
    if matches!(cfg.transport, Transport::Tls | Transport::Wss) || opts.tls_ca_file.is_some() {
        trust.load_into(&transport_layer).map_err(SipError::Tls)?;
    }

    let option = EndpointOption {
        // Call-IDs without the library's default `@restsend.com` suffix (RFC 3261 §8.1.1.4
        // only asks for global uniqueness).
        callid_format: CallIdFormat::Uuid,
        ..Default::default()
    };
    let moves = Arc::new(Mutex::new(crate::netchange::ContactMoves::default()));
    let no_rport = Arc::new(AtomicBool::new(false));
    let tracer = Arc::new(Tracer {
        on: trace,
        extra: extra.clone(),
        moves: moves.clone(),
        no_rport: no_rport.clone(),
        limiter_key: local,
        events: events.downgrade(),
        quoted: Mutex::default(),
    });
    let (closed_tx, closed_rx) = mpsc::unbounded_channel();
    let answered_invites = AnsweredInvites::default();
    let (failover_tx, failover_rx) = mpsc::unbounded_channel();
    let endpoint = EndpointBuilder::new()
        .with_cancel_token(token.clone())
        .with_transport_layer(transport_layer)
        .with_user_agent(&cfg.user_agent)
        .with_allows(vec![
            Method::Invite,
            Method::Ack,
            Method::Cancel,
            Method::Bye,
            Method::Options,
            Method::Info,
            Method::Update,
            Method::PRack,
            Method::Message,
            Method::Refer,
            Method::Notify,
        ])
        .with_option(option)
        .with_inspector(Box::new(TraceSent(tracer.clone())))
        .with_transport_inspector(Box::new(TraceReceived(
            tracer,
            closed_tx,
            answered_invites.clone(),
            trust.clone(),
        )))
        .build();
    let incoming = endpoint
        .incoming_transactions()
        .map_err(|e| SipError::Stack(e.to_string()))?;
    let inner = endpoint.inner.clone();
    trust.attach(&inner);
    tokio::spawn(async move {
        endpoint.serve().await;
    });

    if cfg.transport == Transport::Tcp {
        wait_tcp_listening(local).await?;
    }

    let layer = Arc::new(DialogLayer::new(inner.clone()));
    let connector = Connector {
        endpoint: inner.clone(),
        trust,
        ws_path: opts
            .ws_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into()),
        token: token.child_token(),
        flows: Arc::new(Mutex::new(HashMap::new())),
        probes: Arc::new(Mutex::new(HashMap::new())),
        live: Arc::new(Mutex::new(HashMap::new())),
    };
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    if let Some(found) = stun_found.clone() {
        // First in the queue: the first REGISTER already knows it.
        let _ = cmd_tx.send(DriverMsg::Command(Command::StunMapped(found)));
    }
    let (stack_tx, stack_rx) = mpsc::unbounded_channel();
    let reg_call_id = new_call_id();
    let shared_local = Arc::new(Mutex::new(local));
    let driver = Driver {
        states: state_router::StateRouter::start(),
        responder: invite_responder::InviteResponder::start(&inner),
        fast_stun: opts
            .stun_server
            .filter(|_| cfg.transport == Transport::Udp && opts.fast_stun.probes())
            .map(|server| (server, opts.fast_stun)),
        port_mapper: opts
            .port_mapper
            .clone()
            .filter(|_| cfg.transport == Transport::Udp)
            .map(|m| (m, opts.fast_stun)),
        last_stun: stun_found,
        shared_local: shared_local.clone(),
        moves,
        udp_token,
        endpoint: inner,
        layer,
        token,
        transport: cfg.transport,
        local,
        policy: UaPolicy::new(cfg.transport)
            .with_keepalive(opts.keepalive_interval)
            .with_ws_keepalive(
                opts.ws_keepalive_interval
                    .unwrap_or(opts.keepalive_interval),
            ),
        connector,
        reg_flow: Arc::new(Mutex::new(None)),
        reg_peer: Arc::new(Mutex::new(None)),
        events,
        stack_tx,
        next_call,
        calls: HashMap::new(),
        reoffers: PendingReoffers::default(),
        server_ips: Arc::default(),
        session_expires: HashMap::new(),
        answer_headers: HashMap::new(),
        call_ids,
        extra,
        account: None,
        ha1: None,
        digest: Arc::default(),
        dns,
        service_route: Arc::default(),
        no_rport,
        merged: MergedRequests::default(),
        transport_auto: false,
        invites: HashMap::new(),
        invite_auth: HashMap::new(),
        failover: HashMap::new(),
        invite_dest: HashMap::new(),
        connected_first: Default::default(),
        cancelled_unsent: Default::default(),
        answered_invites: answered_invites.clone(),
        failover_tx,
        public_contact: None,
        reg_call_id,
        reg_cseq: Arc::new(AtomicU32::new(0)),
        extra_accounts: Vec::new(),
        extra_sessions: HashMap::new(),
        tasks: JoinSet::new(),
        pong_watch: JoinSet::new(),
        services: services::Services::new(),
        shutdown_waiters: Vec::new(),
        stopping: false,
    };
    tokio::spawn(driver.run(cmd_rx, stack_rx, incoming, closed_rx, failover_rx));
    Ok((shared_local, cmd_tx))
}

/// Wait until the TCP listener accepts connections (it is bound by the endpoint task).
async fn wait_tcp_listening(addr: SocketAddr) -> Result<(), SipError> {
    let target = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(target).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(SipError::Stack(format!(
        "TCP listener on {addr} did not start"
    )))
}

struct CallEntry {
    dialog: InviteDialog,
    /// The NOTIFYs reporting on a REFER we accepted in this dialog.
    refer_notifies: Arc<services::ReferNotifies>,
}

/// What a REGISTER takes from its registration session: the connection it is recorded in,
/// the digest secret and state, the Call-ID and CSeq (RFC 3261 §10.2).
struct RegSession {
    flow: Arc<Mutex<Option<SipConnection>>>,
    /// Over UDP: the registrar address the NAT keep-alives go to.
    peer: Arc<Mutex<Option<SipAddr>>>,
    /// Where the 2xx's Service-Route goes (RFC 3608 §6.1).
    service_route: Arc<Mutex<Vec<String>>>,
    secret: crate::digest::Secret,
    cache: Arc<Mutex<crate::digest::DigestCache>>,
    call_id: String,
    cseq: Arc<AtomicU32>,
}

/// The registration session of one extra account: its own Call-ID and CSeq (RFC 3261
/// §10.2) and its own digest state (the credentials are not the main account's).
struct ExtraSession {
    account: AccountConfig,
    call_id: String,
    cseq: Arc<AtomicU32>,
    digest: Arc<Mutex<crate::digest::DigestCache>>,
    /// The connection of its REGISTERs (kept apart from the main account's flow, whose
    /// loss triggers the main re-registration).
    flow: Arc<Mutex<Option<SipConnection>>>,
}

/// Server transactions of re-INVITEs/UPDATEs waiting for the policy's answer, by id.
#[derive(Clone, Default)]
struct PendingReoffers {
    next: Arc<AtomicU64>,
    handles: Arc<Mutex<HashMap<u64, TransactionHandle>>>,
}

impl PendingReoffers {
    fn insert(&self, handle: TransactionHandle) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        crate::lock(&self.handles).insert(id, handle);
        id
    }

    fn take(&self, id: u64) -> Option<TransactionHandle> {
        crate::lock(&self.handles).remove(&id)
    }
}

/// What a new UDP socket at `ours` is known as from outside: the router's forward
/// (`upnpnat`, [`crate::PortMapper`]) when it made one, else the STUN server's answer
/// (`use_fast_stun`). Both are asked at once; `None` when neither was asked or answered.
pub(crate) async fn probe_new_socket(
    sock: &tokio::net::UdpSocket,
    ours: SocketAddr,
    stun_server: Option<SocketAddr>,
    mode: crate::FastStun,
    mapper: Option<&crate::PortMapperRef>,
) -> Option<crate::fast_stun::StunUse> {
    let stun = async {
        let server = stun_server.filter(|_| mode.probes())?;
        let mapped = crate::fast_stun::probe(sock, server).await?;
        Some(crate::fast_stun::contact_from_stun(mode, ours, mapped))
    };
    let mapping = async {
        let public = mapper?.0.map_udp(ours).await?;
        Some(crate::port_map::contact_from_mapping(mode, ours, public))
    };
    let (stun, mapping) = tokio::join!(stun, mapping);
    crate::port_map::choose(mapping, stun)
}

struct Driver {
    /// The dialog states of every call, routed to the calls' tasks.
    states: state_router::StateRouter,
    /// What incoming calls' dialogs send their INVITE transactions (one shared channel).
    responder: invite_responder::InviteResponder,
    /// `use_fast_stun`: the STUN server and mode, for a new socket after a network change.
    fast_stun: Option<(SocketAddr, crate::FastStun)>,
    /// `upnpnat`: the router's forwards (and the `use_fast_stun` mode that decides their
    /// use), for a new socket after a network change.
    port_mapper: Option<(crate::PortMapperRef, crate::FastStun)>,
    /// What the last STUN probe found (for a network change that keeps the socket).
    last_stun: Option<crate::fast_stun::StunUse>,
    /// `local`, as the handles see it ([`crate::SipUa::local_addr`]).
    shared_local: Arc<Mutex<SocketAddr>>,
    /// Old Contact addresses rewritten in what we send (network change).
    moves: Arc<Mutex<crate::netchange::ContactMoves>>,
    /// Stops the serve loop of the UDP socket in use (replaced on a network change).
    udp_token: Option<CancellationToken>,
    endpoint: Arc<EndpointInner>,
    layer: Arc<DialogLayer>,
    token: CancellationToken,
    transport: Transport,
    local: SocketAddr,
    policy: UaPolicy,
    /// Opens (and for TLS/WSS verifies) connections to next hops.
    connector: Connector,
    /// The connection the registration lives on: keep-alives go there, and the loss of a
    /// stream connection triggers a re-registration. Over UDP it is our UDP socket, with
    /// the registrar's address in `reg_peer`.
    reg_flow: Arc<Mutex<Option<SipConnection>>>,
    reg_peer: Arc<Mutex<Option<SipAddr>>>,
    events: mpsc::UnboundedSender<SipEvent>,
    stack_tx: mpsc::UnboundedSender<StackEvent>,
    next_call: Arc<AtomicU64>,
    calls: HashMap<CallKey, CallEntry>,
    reoffers: PendingReoffers,
    /// Addresses of the registrar and outbound proxy (for ghost-call protection).
    /// Compared with the full source address (IP and port): on a shared host (or behind
    /// one NAT) the IP alone does not tell the server from a scanner next to it.
    server_ips: Arc<Mutex<std::collections::HashSet<SocketAddr>>>,
    /// `Session-Expires` to ask for in a call's next INVITE (RFC 4028 §7.1).
    session_expires: HashMap<CallKey, u32>,
    /// Extra headers for a call's 2xx (session timer, RFC 4028 §9).
    answer_headers: HashMap<CallKey, Vec<Header>>,
    /// SIP Call-IDs of the calls, for [`crate::SipUa::call_id`].
    call_ids: CallIds,
    /// User header fields (forgotten a while after a call ends).
    extra: Arc<Mutex<crate::headers::ExtraHeaders>>,
    account: Option<AccountConfig>,
    /// Precomputed MD5 HA1 standing in for the password ([`crate::SipUa::set_digest_ha1`]).
    ha1: Option<String>,
    /// Digest protection spaces answered so far (nonce reuse, RFC 7616 §3.4).
    digest: Arc<Mutex<crate::digest::DigestCache>>,
    /// RFC 3263 location: DNS servers (`/etc/resolv.conf` unless set), caches, pins.
    dns: crate::locate::Dns,
    /// Shared with the send hook ([`Tracer`]): leave `rport` out of our Vias.
    no_rport: Arc<AtomicBool>,
    /// Out-of-dialog requests seen lately, for merged-request detection (RFC 3261 §8.2.2.2).
    merged: MergedRequests,
    /// The Service-Route of the main account's last 2xx to REGISTER (RFC 3608 §6.1): the
    /// preloaded route of its out-of-dialog requests, after the outbound proxy.
    service_route: Arc<Mutex<Vec<String>>>,
    /// No transport configured: the registrar's comes from NAPTR/SRV (RFC 3263 §4.1).
    transport_auto: bool,
    /// Call-ID, target and SDP of each outgoing call's INVITE (sent again with credentials).
    invites: HashMap<CallKey, (String, Target, String)>,
    /// Digest state of each outgoing call's INVITE (RFC 3261 §22.2).
    invite_auth: HashMap<CallKey, crate::digest::AuthAttempt>,
    /// RFC 3263 §4.3 failover state of outgoing INVITEs with more than one server address.
    failover: HashMap<CallKey, InviteFailover>,
    /// The located address an outgoing call's INVITE goes to (instead of resolving the next
    /// hop's name again); the Request-URI and Route keep the name.
    invite_dest: HashMap<CallKey, (SocketAddr, Transport)>,
    /// Outgoing calls whose next hop was just connected for them ([`FailoverMsg::Connected`]):
    /// their INVITE goes out without connecting first again.
    connected_first: std::collections::HashSet<CallKey>,
    /// Outgoing calls hung up before their INVITE went out (while their next hop was being
    /// located or connected): the INVITE is never sent.
    cancelled_unsent: std::collections::HashSet<CallKey>,
    /// Call-IDs of INVITEs in failover, and whether anything answered the current attempt.
    answered_invites: AnsweredInvites,
    failover_tx: mpsc::UnboundedSender<FailoverMsg>,
    public_contact: Option<HostPort>,
    /// Call-ID and CSeq of our REGISTERs: constant Call-ID, increasing CSeq (RFC 3261 §10.2).
    reg_call_id: String,
    reg_cseq: Arc<AtomicU32>,
    /// The extra accounts (multi-account), as last set.
    extra_accounts: Vec<AccountConfig>,
    /// Registration session of each extra account, by its key (`user@server`).
    extra_sessions: HashMap<String, ExtraSession>,
    tasks: JoinSet<()>,
    /// Keep-alive pings waiting for their pong ([`flow_probe`]); not waited for at shutdown.
    pong_watch: JoinSet<()>,
    /// Messaging, transfer and subscriptions (`services`).
    services: services::Services,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    stopping: bool,
}

impl Driver {
    async fn run(
        mut self,
        mut cmd_rx: mpsc::UnboundedReceiver<DriverMsg>,
        mut stack_rx: mpsc::UnboundedReceiver<StackEvent>,
        mut incoming: TransactionReceiver,
        mut closed_rx: mpsc::UnboundedReceiver<SipAddr>,
        mut failover_rx: mpsc::UnboundedReceiver<FailoverMsg>,
    ) {
        let mut cmd_open = true;
        let mut incoming_open = true;
        let mut service_rx = self.services.take_rx();
        loop {
            // Stopped, unless the removal of our presence still waits for a PUBLISH answer.
            let unpublish = self.unpublish_wait(Instant::now());
            if self.stopping && unpublish.is_none() {
                break;
            }
            while self.tasks.try_join_next().is_some() {}
            while self.pong_watch.try_join_next().is_some() {}
            let deadline = match (self.policy.next_deadline(), unpublish) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                msg = cmd_rx.recv(), if cmd_open => match msg {
                    Some(DriverMsg::Command(cmd)) => self.command(cmd),
                    Some(DriverMsg::Service(cmd)) => self.on_service_command(cmd),
                    Some(DriverMsg::NetworkChanged(ip, reply)) => {
                        let r = self.network_changed(ip).await;
                        let _ = reply.send(r);
                    }
                    Some(DriverMsg::SetDns(servers)) => self.dns.set_servers(servers),
                    Some(DriverMsg::SetTransportAuto(auto)) => self.transport_auto = auto,
                    Some(DriverMsg::SetRport(mode)) => {
                        self.no_rport
                            .store(mode == crate::RportMode::Off, Ordering::Relaxed);
                        let via = match mode {
                            crate::RportMode::Use => crate::policy::ViaContact::WhenLocal,
                            crate::RportMode::UseAlways => crate::policy::ViaContact::Always,
                            crate::RportMode::Off | crate::RportMode::Ignore => {
                                crate::policy::ViaContact::Never
                            }
                        };
                        self.feed(Input::Command(Command::ContactFromVia(via)));
                    }
                    Some(DriverMsg::SetHa1(ha1)) => {
                        if self.ha1 != ha1 {
                            crate::lock(&self.digest).clear();
                        }
                        self.ha1 = ha1;
                    }
                    Some(DriverMsg::Shutdown(waiter)) => {
                        self.shutdown_waiters.push(waiter);
                        self.unpublish_on_shutdown(Instant::now());
                        self.feed(Input::Command(Command::Shutdown));
                    }
                    None => {
                        // Every handle is gone: shut down.
                        cmd_open = false;
                        self.feed(Input::Command(Command::Shutdown));
                    }
                },
                Some(ev) = stack_rx.recv() => self.on_stack(ev),
                Some(ev) = service_rx.recv() => self.on_service_event(ev),
                tx = incoming.recv(), if incoming_open => match tx {
                    Some(tx) => self.on_transaction(tx),
                    None => {
                        incoming_open = false;
                        warn!("SIP endpoint stopped delivering requests");
                    }
                },
                Some(local) = closed_rx.recv() => self.on_connection_closed(&local),
                Some(msg) = failover_rx.recv() => self.on_failover_msg(msg),
                _ = sleep => self.feed(Input::Tick),
            }
        }
        // Let BYE/CANCEL transactions go out before the transport closes.
        let tasks = std::mem::take(&mut self.tasks);
        let _ = tokio::time::timeout(BYE_GRACE, tasks.join_all()).await;
        self.token.cancel();
        for w in self.shutdown_waiters.drain(..) {
            let _ = w.send(());
        }
        info!("SIP user agent stopped");
    }

    fn command(&mut self, cmd: Command) {
        if let Command::SetAccount(acc) = &cmd {
            if self.account.as_ref() != Some(acc) {
                // New registration session for a new account (RFC 3261 §10.2: one Call-ID
                // per registrar per UA is enough; a new account gets a new one).
                self.reg_call_id = new_call_id();
                crate::lock(&self.digest).clear();
            }
            self.account = Some(acc.clone());
            self.learn_server_ips();
        }
        if let Command::SetExtraAccounts(list) = &cmd {
            let keys: Vec<String> = list.iter().map(crate::policy::account_key).collect();
            for (key, acc) in keys.iter().zip(list) {
                let fresh = self
                    .extra_sessions
                    .get(key)
                    .is_none_or(|s| &s.account != acc);
                if fresh {
                    // New credentials: a new registration session and digest state.
                    self.extra_sessions.insert(
                        key.clone(),
                        ExtraSession {
                            account: acc.clone(),
                            call_id: new_call_id(),
                            cseq: Arc::new(AtomicU32::new(0)),
                            digest: Arc::default(),
                            flow: Arc::default(),
                        },
                    );
                }
            }
            // Sessions of dropped accounts are kept until their un-REGISTER went out; they
            // are small, and a session is replaced when its account comes back changed.
            self.extra_accounts = list.clone();
            self.learn_server_ips();
        }
        self.feed(Input::Command(cmd));
    }

    /// Resolve the servers and proxies of the main and the extra accounts: INVITEs from
    /// them are the ones that came through our server (ghost-call protection).
    fn learn_server_ips(&mut self) {
        let hops: Vec<HostPort> = self
            .account
            .iter()
            .chain(self.extra_accounts.iter())
            .flat_map(|acc| [acc.server.as_deref(), acc.proxy.as_deref()])
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .filter_map(|s| target::parse_server(s).ok())
            .map(|a| {
                let t = a.transport_or(self.transport);
                a.hop(t)
            })
            .collect();
        let ips = self.server_ips.clone();
        crate::lock(&ips).clear();
        self.tasks.spawn(async move {
            for hop in hops {
                if let Ok(ip) = hop.host.parse::<IpAddr>() {
                    crate::lock(&ips).insert(SocketAddr::new(ip, hop.port));
                    continue;
                }
                match tokio::net::lookup_host((hop.host.as_str(), hop.port)).await {
                    Ok(addrs) => crate::lock(&ips).extend(addrs),
                    Err(e) => debug!(host = %hop.host, error = %e, "cannot resolve server"),
                }
            }
        });
    }

    /// A stream connection closed: forget it, and if the registration lived on it, tell
    /// the policy (RFC 5626 §4.5: register again over a new one).
    fn on_connection_closed(&mut self, local: &SipAddr) {
        self.connector.forget(local);
        let lost = {
            let mut flow = crate::lock(&self.reg_flow);
            let ours = flow.as_ref().is_some_and(|c| c.get_addr() == local);
            if ours {
                flow.take()
            } else {
                None
            }
        };
        if let Some(conn) = lost {
            let remote = conn
                .get_remote_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            info!(%local, %remote, "connection to the registrar closed");
            self.feed(Input::Stack(StackEvent::FlowLost {
                reason: format!("connection to {remote} closed"),
            }));
        }
        // Extra accounts whose REGISTERs went over that connection register again too.
        let lost_extra: Vec<String> = self
            .extra_sessions
            .iter()
            .filter(|(_, s)| {
                let mut flow = crate::lock(&s.flow);
                let ours = flow.as_ref().is_some_and(|c| c.get_addr() == local);
                ours && flow.take().is_some()
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in lost_extra {
            info!(%local, account = %key, "connection of an extra account's registration closed");
            self.feed(Input::Stack(StackEvent::ExtraFlowLost { key }));
        }
    }

    /// A stack event: INVITE challenges are answered here (digest), the rest goes to the
    /// policy.
    fn on_stack(&mut self, ev: StackEvent) {
        if let StackEvent::RegisterDone { outcome, .. } = &ev {
            if (200..300).contains(&outcome.code) {
                // The bindings of addresses we moved away from are gone with it.
                crate::lock(&self.moves).released();
            }
        }
        if self.try_failover(&ev) {
            return;
        }
        if let StackEvent::InviteChallenged {
            call,
            code,
            reason,
            challenges,
        } = ev
        {
            match self.answer_invite_challenge(call, &challenges) {
                Ok(()) => {}
                Err(why) => {
                    info!(%call, code, %why, "INVITE authentication failed");
                    self.feed(Input::Stack(StackEvent::InviteChallenged {
                        call,
                        code,
                        reason,
                        challenges,
                    }));
                }
            }
            return;
        }
        self.feed(Input::Stack(ev));
    }

    /// Send the INVITE of `call` again with credentials for `challenges` (RFC 3261 §22.2:
    /// same Call-ID, higher CSeq). Calls may be challenged by proxies of other realms, so
    /// the configured realm is preferred but not required.
    fn answer_invite_challenge(
        &mut self,
        call: CallKey,
        challenges: &[crate::digest::Challenge],
    ) -> Result<(), String> {
        let acc = self.account.clone().ok_or("no account")?;
        let (call_id, target, sdp) = self.invites.get(&call).cloned().ok_or("call is gone")?;
        if self.call_ids.get(call).is_none_or(|id| id != call_id) {
            return Err("call is gone".into());
        }
        let request_uri = uri_escapes::wire_request_uri(
            &Uri::try_from(target.request_uri.as_str()).map_err(|e| e.to_string())?,
            target.transport,
        );
        let secret = self.secret(&acc);
        let name = digest_name(&acc);
        let user = crate::digest::AuthUser {
            username: &name,
            secret: &secret,
            realm: acc.realm.as_deref(),
            strict_realm: false,
        };
        let parts = crate::digest::RequestParts {
            method: "INVITE",
            uri: &request_uri,
            body: sdp.as_bytes(),
        };
        let mut att = self.invite_auth.remove(&call).unwrap_or_default();
        let verdict = crate::lock(&self.digest).on_challenge(&mut att, challenges, &user, parts);
        match verdict {
            crate::digest::Verdict::Retry(_) => {
                self.invite_auth.insert(call, att);
                debug!(%call, "INVITE challenged; sending it again with credentials");
                self.send_invite(call, call_id, target, sdp);
                Ok(())
            }
            crate::digest::Verdict::Fail(why) => Err(why),
        }
    }

    /// The secret answering digest challenges: the HA1 when one is set, else the password.
    fn secret(&self, acc: &AccountConfig) -> crate::digest::Secret {
        match self.ha1.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
            Some(h) => crate::digest::Secret::Ha1(h.to_string()),
            None => crate::digest::Secret::Password(acc.password.clone()),
        }
    }

    fn feed(&mut self, input: Input) {
        let actions = self.policy.handle(input, Instant::now());
        for a in actions {
            self.execute(a);
        }
    }

    fn emit(&mut self, mut ev: SipEvent) {
        self.services.on_emit(&mut ev);
        debug!(event = ?ev, "event");
        if let SipEvent::Ended { call, .. } = &ev {
            if let Some(id) = self.call_ids.get(*call) {
                crate::lock(&self.extra).call_ended(&id);
            }
            self.call_ids.remove(*call);
            self.invites.remove(call);
            self.invite_auth.remove(call);
            self.invite_dest.remove(call);
            if let Some(f) = self.failover.remove(call) {
                self.answered_invites.forget(&f.call_id);
            }
        }
        let _ = self.events.send(ev);
    }

    /// A REGISTER of `account` in its registration `session` (main or extra account).
    fn register_job(
        &self,
        account: AccountConfig,
        expires: u32,
        contact: Option<HostPort>,
        session: RegSession,
    ) -> RegisterJob {
        RegisterJob {
            endpoint: self.endpoint.clone(),
            connector: self.connector.clone(),
            reg_flow: session.flow,
            reg_peer: session.peer,
            local: self.local,
            transport: self.transport,
            contact: contact
                .unwrap_or_else(|| HostPort::new(self.local.ip().to_string(), self.local.port())),
            secret: session.secret,
            cache: session.cache,
            dns: self.dns.clone(),
            transport_auto: self.transport_auto,
            account,
            expires,
            call_id: session.call_id,
            cseq: session.cseq,
            server_addrs: self.server_ips.clone(),
            service_route: session.service_route,
        }
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Emit(ev) => self.emit(ev),
            Action::SendRegister {
                gen,
                account,
                expires,
                contact,
            } => {
                let session = RegSession {
                    flow: self.reg_flow.clone(),
                    peer: self.reg_peer.clone(),
                    service_route: self.service_route.clone(),
                    secret: self.secret(&account),
                    cache: self.digest.clone(),
                    call_id: self.reg_call_id.clone(),
                    cseq: self.reg_cseq.clone(),
                };
                let job = self.register_job(account, expires, contact, session);
                let tx = self.stack_tx.clone();
                self.tasks.spawn(async move {
                    let outcome = job.run().await;
                    let _ = tx.send(StackEvent::RegisterDone { gen, outcome });
                });
            }
            Action::SendExtraRegister {
                key,
                gen,
                account,
                expires,
                contact,
            } => {
                let Some(session) = self.extra_sessions.get(&key) else {
                    warn!(account = %key, "no registration session for extra account");
                    return;
                };
                let session = RegSession {
                    flow: session.flow.clone(),
                    peer: Arc::default(),
                    // Out-of-dialog requests use the main account: its route only.
                    service_route: Arc::default(),
                    // The `md5` HA1 belongs to the main account.
                    secret: crate::digest::Secret::Password(account.password.clone()),
                    cache: session.digest.clone(),
                    call_id: session.call_id.clone(),
                    cseq: session.cseq.clone(),
                };
                let job = self.register_job(account, expires, contact, session);
                let tx = self.stack_tx.clone();
                self.tasks.spawn(async move {
                    let outcome = job.run().await;
                    let _ = tx.send(StackEvent::ExtraRegisterDone { key, gen, outcome });
                });
            }
            Action::SetContact(c) => self.public_contact = c,
            Action::ReplaceBinding { old, new } => {
                crate::lock(&self.moves).moved(&old.to_string(), &new.to_string());
            }
            Action::ReleaseBinding(old) => crate::lock(&self.moves).release(&old.to_string()),
            Action::SendInvite {
                call,
                call_id,
                target,
                sdp,
                session_expires,
            } => {
                self.session_expires.insert(call, session_expires);
                let target = self.service_routed(target);
                match locate_plan(self.account.as_ref(), self.transport_auto, &target) {
                    Some(plan) => {
                        // RFC 3263: locate the server first, then send to its first address.
                        let dns = self.dns.clone();
                        let tx = self.failover_tx.clone();
                        self.tasks.spawn(async move {
                            let (key, list) = plan.locate(&dns).await;
                            let _ = tx.send(FailoverMsg::Located {
                                call,
                                call_id,
                                target: Box::new(target),
                                sdp,
                                key,
                                list,
                            });
                        });
                    }
                    None => self.send_invite(call, call_id, target, sdp),
                }
            }
            Action::SessionTimerHeaders {
                call,
                secs,
                refresher,
                require,
            } => {
                let r = match refresher {
                    crate::session::Refresher::Uac => "uac",
                    crate::session::Refresher::Uas => "uas",
                };
                let mut h = vec![Header::SessionExpires(
                    format!("{secs};refresher={r}").into(),
                )];
                if require {
                    h.push(Header::Require("timer".into()));
                }
                self.answer_headers.insert(call, h);
            }
            Action::SendRinging(call) => {
                if let Some(e) = self.calls.get(&call) {
                    if let Err(err) = e.dialog.ringing(None, None) {
                        warn!(%call, error = %err, "sending 180 failed");
                    }
                }
            }
            Action::FollowRedirect { call, uri, sdp } => {
                let local_ip = self.local.ip();
                let resolved =
                    target::resolve(&uri, self.account.as_ref(), local_ip, self.transport)
                        .map_err(|e| e.to_string())
                        .and_then(|t| validate_uri(&t.request_uri).map(|_| t));
                match (resolved, self.call_ids.get(call)) {
                    (Ok(t), Some(call_id)) => {
                        // A new target: the located address of the old one no longer applies.
                        self.invite_dest.remove(&call);
                        if let Some(f) = self.failover.remove(&call) {
                            self.answered_invites.forget(&f.call_id);
                        }
                        let t = self.service_routed(t);
                        self.send_invite(call, call_id, t, sdp)
                    }
                    (Err(e), _) => {
                        let _ = self.stack_tx.send(StackEvent::InviteFailed {
                            call,
                            error: format!("bad redirect target {uri}: {e}"),
                        });
                    }
                    (_, None) => {}
                }
            }
            Action::SendReliableRinging { call, rseq } => {
                if let Some(e) = self.calls.get(&call) {
                    // RFC 3262 §3: a reliable provisional carries Require: 100rel and RSeq.
                    let headers = vec![
                        Header::Require("100rel".into()),
                        Header::RSeq(rseq.to_string().into()),
                        Header::Allow(ALLOW.into()),
                    ];
                    if let Err(err) = e.dialog.ringing(Some(headers), None) {
                        warn!(%call, error = %err, "sending reliable 180 failed");
                    }
                }
            }
            Action::SendAnswer(call, sdp) => {
                if let Some(e) = self.calls.get(&call) {
                    let mut headers = vec![
                        Header::ContentType("application/sdp".into()),
                        Header::Allow(ALLOW.into()),
                        Header::Supported(SUPPORTED.into()),
                    ];
                    headers.extend(self.answer_headers.remove(&call).unwrap_or_default());
                    if let Err(err) = e.dialog.accept(Some(headers), Some(sdp.into_bytes())) {
                        warn!(%call, error = %err, "sending 200 failed");
                        let _ = self.stack_tx.send(StackEvent::Terminated {
                            call,
                            cause: Termination::Failed(err.to_string()),
                        });
                    }
                }
            }
            Action::SendReject(call, code) => {
                if let Some(e) = self.calls.get(&call) {
                    if let Err(err) = e.dialog.reject(Some(StatusCode::from(code)), None) {
                        warn!(%call, error = %err, "sending final response failed");
                    }
                }
            }
            Action::SendCancel(call) => {
                if !self.calls.contains_key(&call) && self.call_ids.get(call).is_some() {
                    // Not sent yet (its next hop is being located or connected): it never
                    // will be, and the call ends now as if the CANCEL had been answered
                    // (RFC 3261 §9.1); the callee never rings.
                    self.cancelled_unsent.insert(call);
                    let _ = self.stack_tx.send(StackEvent::Final {
                        call,
                        code: 487,
                        reason: "Request Terminated".into(),
                        sdp: None,
                        contact: None,
                        session_expires: None,
                        min_se: None,
                    });
                }
                if let Some(e) = self.calls.get(&call) {
                    let d = e.dialog.clone();
                    self.tasks.spawn(async move {
                        // RFC 3261 §9.1; before any provisional response the stack holds the
                        // CANCEL back until one arrives.
                        if let Err(err) = d.cancel().await {
                            debug!(%call, error = %err, "CANCEL failed");
                        }
                    });
                }
            }
            Action::SendBye(call) | Action::AckAndBye(call) => {
                // For AckAndBye the transaction layer has ACKed the 2xx and the dialog layer
                // already sent the BYE of a cancelled INVITE; `bye()` of a terminated dialog
                // is a no-op, so this is safe either way.
                if let Some(e) = self.calls.get(&call) {
                    let d = e.dialog.clone();
                    self.tasks.spawn(async move {
                        if let Err(err) = d.bye().await {
                            debug!(%call, error = %err, "BYE failed");
                        }
                    });
                }
            }
            Action::Forget(call) => {
                self.calls.remove(&call);
                self.cancelled_unsent.remove(&call);
                self.connected_first.remove(&call);
                self.call_ids.remove(call);
                self.session_expires.remove(&call);
                self.answer_headers.remove(&call);
            }
            Action::SendReoffer { call, sdp, update } => {
                let Some(e) = self.calls.get(&call) else {
                    return;
                };
                let d = e.dialog.clone();
                let tx = self.stack_tx.clone();
                self.tasks.spawn(async move {
                    let headers = Some(vec![Header::ContentType("application/sdp".into())]);
                    let body = Some(sdp.into_bytes());
                    let res = if update {
                        d.update(headers, body).await
                    } else {
                        d.reinvite(headers, body).await
                    };
                    let (code, reason, sdp) = match res {
                        Ok(Some(resp)) => (
                            resp.status_code.code(),
                            reason_text(&resp),
                            body_text(&resp.body),
                        ),
                        Ok(None) => (0, "dialog not established".to_string(), None),
                        Err(e) => (503, e.to_string(), None),
                    };
                    let _ = tx.send(StackEvent::ReofferResult {
                        call,
                        code,
                        reason,
                        sdp,
                    });
                });
            }
            Action::RespondReoffer {
                call,
                id,
                code,
                sdp,
            } => {
                let Some(handle) = self.reoffers.take(id) else {
                    debug!(%call, id, "re-offer transaction already gone");
                    return;
                };
                let mut headers = vec![Header::Allow(ALLOW.into())];
                if sdp.is_some() {
                    headers.push(Header::ContentType("application/sdp".into()));
                }
                if code == 500 {
                    // RFC 3261 §14.2: retry after a random 0-10 s.
                    let secs = rand::random::<u32>() % 11;
                    headers.push(Header::RetryAfter(secs.to_string().into()));
                }
                tokio::spawn(async move {
                    let body = sdp.map(String::into_bytes);
                    if let Err(e) = handle
                        .respond(StatusCode::from(code), Some(headers), body)
                        .await
                    {
                        debug!(%call, error = %e, "re-offer response failed");
                    }
                });
            }
            Action::ShutdownComplete => self.stopping = true,
            Action::SendKeepAlive => {
                let Some(conn) = crate::lock(&self.reg_flow).clone() else {
                    return;
                };
                if let SipConnection::Udp(udp) = &conn {
                    // A NAT binding refresh: nothing comes back, and a failed send is not
                    // a lost registration (the next REGISTER finds out).
                    let Some(peer) = crate::lock(&self.reg_peer).clone() else {
                        return;
                    };
                    let udp = udp.clone();
                    self.tasks.spawn(async move {
                        if let Err(e) = udp.send_raw(UDP_KEEPALIVE, &peer).await {
                            warn!(error = %e, "UDP keep-alive to {peer} failed");
                        }
                    });
                    return;
                }
                let tx = self.stack_tx.clone();
                let flow = self.reg_flow.clone();
                let probe = self.connector.probe(conn.get_addr());
                let connector = self.connector.clone();
                self.pong_watch.spawn(async move {
                    // The connection is unusable: drop it like a closed one, out of every
                    // table first, so that the REGISTER this leads to opens a new one.
                    let lost = |reason: String| {
                        connector.retire(&conn);
                        let ours = {
                            let mut f = crate::lock(&flow);
                            let ours = f.as_ref().is_some_and(|c| c.get_addr() == conn.get_addr());
                            if ours {
                                f.take();
                            }
                            ours
                        };
                        if ours {
                            let _ = tx.send(StackEvent::FlowLost { reason });
                        }
                    };
                    let sent = Instant::now();
                    // A write stuck behind a peer that reads nothing fails like an
                    // unanswered ping.
                    match tokio::time::timeout(flow_probe::PONG_WAIT, send_keepalive(&conn)).await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            warn!(error = %e, "keep-alive failed");
                            lost(format!("keep-alive failed: {e}"));
                            return;
                        }
                        Err(_) => {
                            warn!("keep-alive could not be written for 10 s");
                            lost("keep-alive could not be written".into());
                            if let Some(p) = &probe {
                                p.close();
                            }
                            return;
                        }
                    }
                    // RFC 5626 §4.4.1: no answer within 10 s and the flow has failed.
                    let Some(probe) = probe else { return };
                    tokio::time::sleep(flow_probe::PROMPT.saturating_sub(sent.elapsed())).await;
                    probe.note_prompt_answer(sent.elapsed());
                    tokio::time::sleep(flow_probe::PONG_WAIT.saturating_sub(sent.elapsed())).await;
                    match probe.check(sent.elapsed()) {
                        Some(flow_probe::PongCheck::Overdue { quiet }) => {
                            warn!(
                                remote = ?conn.get_remote_addr(),
                                quiet_ms = quiet.as_millis(),
                                "no answer to the keep-alive: the connection to the registrar has failed"
                            );
                            lost(format!(
                                "no answer to a keep-alive within {} s",
                                flow_probe::PONG_WAIT.as_secs()
                            ));
                            probe.close();
                        }
                        Some(flow_probe::PongCheck::Unproven) => debug!(
                            remote = ?conn.get_remote_addr(),
                            "no answer to the keep-alive from a server that has never answered one: no deadline"
                        ),
                        Some(flow_probe::PongCheck::Answered) | None => {}
                    }
                });
            }
        }
    }

    fn contact_uri(&self, user: &str) -> String {
        let hp = self
            .public_contact
            .clone()
            .unwrap_or_else(|| HostPort::new(self.local.ip().to_string(), self.local.port()));
        contact_string(user, &hp, self.transport)
    }

    fn username(&self) -> String {
        self.account
            .as_ref()
            .map(|a| a.username.clone())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| ANONYMOUS_USER.to_string())
    }

    fn send_invite(&mut self, call: CallKey, call_id: String, mut target: Target, sdp: String) {
        let fail = |tx: &mpsc::UnboundedSender<StackEvent>, error: String| {
            let _ = tx.send(StackEvent::InviteFailed { call, error });
        };
        if self.cancelled_unsent.contains(&call) {
            return; // hung up before it went out (`Action::SendCancel`)
        }
        // The located address (RFC 3263) and the transport DNS chose for it (§4.1); the
        // Request-URI and Route keep the name. TLS and WebSocket keep it as the connection's
        // name too (certificate check against the domain, RFC 5922 §4), pinned to the address.
        let located = self.invite_dest.get(&call).copied();
        if let Some((a, t)) = located {
            if t != target.transport {
                target.transport = t;
                target.next_hop.port = a.port();
            }
        }
        // The located address, else the next hop as named (resolved by the stack).
        let dest = match located {
            Some((a, t)) => located_dest(&self.dns, &target.next_hop.host, a, t),
            None => sip_addr(&target.next_hop, target.transport),
        };
        // A connection-oriented next hop is connected first: the INVITE transaction dials
        // on its own as soon as it exists, and it would open a second connection beside
        // the reachability probe of `call_task`. (One connection per next hop, RFC 5923
        // §2; a connection already open is reused at once.)
        if target.transport.is_reliable()
            && !self.connected_first.remove(&call)
            && !self.connector.is_live(&dest)
        {
            let connector = self.connector.clone();
            let tx = self.failover_tx.clone();
            self.tasks.spawn(async move {
                let result =
                    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(&dest)).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err("connect timeout".to_string()),
                    };
                let _ = tx.send(FailoverMsg::Connected {
                    call,
                    call_id,
                    target: Box::new(target),
                    sdp,
                    located,
                    dest,
                    result,
                });
            });
            return;
        }
        let user = self.username();
        let parsed = (|| -> Result<(Uri, Uri, Uri), String> {
            let callee = Uri::try_from(target.request_uri.as_str()).map_err(|e| e.to_string())?;
            let caller = Uri::try_from(format!("sip:{user}@{}", target.from_domain))
                .map_err(|e| e.to_string())?;
            let contact = Uri::try_from(self.contact_uri(&user)).map_err(|e| e.to_string())?;
            Ok((callee, caller, contact))
        })();
        let (callee, caller, contact) = match parsed {
            Ok(v) => v,
            Err(e) => return fail(&self.stack_tx, format!("bad URI: {e}")),
        };
        let route_set = if target.via_proxy {
            // RFC 3261 §8.1.2: an outbound proxy is the first Route, loose routing (`lr`).
            let mut uri = Uri::from(HostWithPort {
                host: host_of(&target.next_hop.host),
                port: Some(target.next_hop.port.into()),
            });
            uri.params.push(Param::Lr);
            if target.transport != Transport::Udp {
                // RFC 7118 §5.2: `transport=ws` also for a WSS hop.
                let t = if target.transport.is_websocket() {
                    Transport::Ws
                } else {
                    target.transport
                };
                uri.params.push(Param::Transport(sip_transport(t)));
            }
            vec![rsipstack::sip::typed::Route {
                display_name: None,
                uri,
                params: vec![],
            }]
        } else {
            vec![]
        };
        // RFC 3608 §6.1: the registrar's Service-Route follows (preloaded route).
        let mut route_set = route_set;
        route_set.extend(
            crate::lock(&self.service_route)
                .iter()
                .filter_map(|r| rsipstack::sip::typed::Route::parse(r).ok()),
        );
        // Digest is ours (crate::digest): rsipstack would answer only the first challenge
        // and neither SHA-256 nor auth-int with a body. Challenges come back as
        // StackEvent::InviteChallenged and the INVITE is sent again from here.
        let credential: Option<Credential> = None;
        self.invites
            .insert(call, (call_id.clone(), target.clone(), sdp.clone()));
        let ruri_text = uri_escapes::wire_request_uri(&callee, target.transport);
        let mut auth_headers: Vec<crate::digest::Credentials> = match self.invite_auth.get(&call) {
            Some(att) => att.current().to_vec(),
            None => Vec::new(),
        };
        if auth_headers.is_empty() {
            if let Some(acc) = self.account.clone() {
                let secret = self.secret(&acc);
                let name = digest_name(&acc);
                let user = crate::digest::AuthUser {
                    username: &name,
                    secret: &secret,
                    realm: acc.realm.as_deref(),
                    strict_realm: false,
                };
                let parts = crate::digest::RequestParts {
                    method: "INVITE",
                    uri: &ruri_text,
                    body: sdp.as_bytes(),
                };
                // Nonce reuse (RFC 7616 §3.4): saves the 401/407 round trip.
                auth_headers = crate::lock(&self.digest).preemptive(&user, parts);
                let mut att = crate::digest::AuthAttempt::default();
                crate::lock(&self.digest).note_sent(&mut att, &auth_headers);
                self.invite_auth.insert(call, att);
            }
        }
        let mut extra_headers = vec![
            Header::Allow(ALLOW.into()),
            // RFC 4028 §7.1: we support session timers and ask for an interval; the
            // 2xx says who refreshes. RFC 3891 §6.1: and Replaces.
            Header::Supported("timer, replaces".into()),
            Header::SessionExpires(
                self.session_expires
                    .get(&call)
                    .copied()
                    .unwrap_or(crate::session::DEFAULT_SESSION_EXPIRES)
                    .to_string()
                    .into(),
            ),
            Header::MinSE(crate::session::MIN_SE.to_string().into()),
        ];
        let mut creds_headers = rsipstack::sip::Headers::default();
        insert_credentials(&mut creds_headers, &auth_headers);
        extra_headers.extend(creds_headers.iter().cloned());
        extra_headers.extend(self.services.invite_headers(call));
        // Routed before rsipstack can report anything about the dialog.
        let state_rx = self.states.route(call, &call_id, None);
        let opt = InviteOption {
            caller_display_name: self
                .account
                .as_ref()
                .and_then(|a| a.display_name.as_deref())
                .filter(|d| !d.is_empty())
                .map(display_name),
            caller,
            callee,
            destination: Some(dest.clone()),
            content_type: Some("application/sdp".into()),
            offer: Some(sdp.clone().into_bytes()),
            contact,
            credential,
            headers: Some(extra_headers),
            // RFC 3262: `Supported: 100rel`; the dialog PRACKs reliable provisionals.
            support_prack: true,
            route_set,
            call_id: Some(call_id),
            ..Default::default()
        };
        match self.layer.do_invite_async(opt, self.states.sender()) {
            Ok((dialog, join)) => {
                self.calls.insert(
                    call,
                    CallEntry {
                        dialog: dialog.clone(),
                        refer_notifies: Arc::default(),
                    },
                );
                tokio::spawn(call_task(CallTask {
                    call,
                    join: Some(join),
                    state_rx,
                    stack_tx: self.stack_tx.clone(),
                    layer: self.layer.clone(),
                    dialog,
                    reoffers: self.reoffers.clone(),
                    client: true,
                    hooks: self.services.hooks.clone(),
                    probe: Some((self.connector.clone(), dest)),
                    abandon: self.failover.get(&call).map(|f| f.abandon.clone()),
                }));
            }
            Err(e) => fail(&self.stack_tx, e.to_string()),
        }
    }

    fn on_transaction(&mut self, tx: Transaction) {
        if !matches!(tx.original.method, Method::Ack | Method::Cancel) {
            let merged = self.merged.is_merged(&tx.original, Instant::now());
            if let Some((code, headers)) = merged
                .then(|| (482, Vec::new()))
                .or_else(|| refuse_request(&tx.original))
            {
                // RFC 3261 §8.2.2.2 (482), §8.2.2.1 (416), §8.2.2.3 (420): refused before
                // anything else.
                let mut tx = tx;
                tokio::spawn(async move {
                    let _ = tx.reply_with(StatusCode::from(code), headers, None).await;
                });
                return;
            }
        }
        let Some(mut tx) = self.service_request(tx) else {
            return;
        };
        let method = tx.original.method;
        let has_to_tag = tx
            .original
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .is_some();
        debug!(%method, key = %tx.key, "incoming request");
        match method {
            Method::Invite if !has_to_tag => self.on_new_invite(tx),
            Method::Options if !has_to_tag => {
                // RFC 3261 §11.2: answer capability queries outside a dialog.
                tokio::spawn(async move {
                    let headers = vec![
                        Header::Allow(ALLOW.into()),
                        Header::Accept("application/sdp".into()),
                    ];
                    if let Err(e) = tx.reply_with(StatusCode::OK, headers, None).await {
                        debug!(error = %e, "OPTIONS reply failed");
                    }
                });
            }
            Method::Ack => {
                if let Some(mut d) = self.layer.match_dialog(&tx) {
                    tokio::spawn(async move {
                        let _ = d.handle(&mut tx).await;
                    });
                }
            }
            _ if has_to_tag => match self.layer.match_dialog(&tx) {
                Some(mut d) => {
                    if method == Method::PRack && !self.on_prack(&tx.original, &d.id()) {
                        // RFC 3262 §3: no unacknowledged reliable provisional has this RAck.
                        tokio::spawn(async move {
                            let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                        });
                        return;
                    }
                    tokio::spawn(async move {
                        if !until_confirmed(&d, &mut tx).await {
                            return;
                        }
                        if let Err(e) = d.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog request failed");
                        }
                    });
                }
                None => {
                    // RFC 3261 §12.2.2: a request for a dialog we do not know.
                    tokio::spawn(async move {
                        let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                    });
                }
            },
            _ => {
                // RFC 3261 §8.2.1: 405 with the methods we do support.
                tokio::spawn(async move {
                    let headers = vec![Header::Allow(ALLOW.into())];
                    let _ = tx
                        .reply_with(StatusCode::MethodNotAllowed, headers, None)
                        .await;
                });
            }
        }
    }

    /// A PRACK (RFC 3262 §4) for one of our dialogs: when its RAck (`response-num CSeq-num
    /// Method`, §7.2) names our unacknowledged reliable provisional, tell the policy (the dialog
    /// then answers it 200) and return true; false when it acknowledges nothing (answer 481).
    fn on_prack(&mut self, req: &Request, id: &rsipstack::dialog::DialogId) -> bool {
        let rack = req
            .headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case("RAck"))
            .map(|h| h.value().to_owned())
            .unwrap_or_default();
        let mut parts = rack.split_whitespace();
        let rseq = parts.next().and_then(|v| v.parse::<u32>().ok());
        let cseq = parts.next().and_then(|v| v.parse::<u32>().ok());
        let method = parts.next().unwrap_or("");
        let call = self
            .calls
            .iter()
            .find(|(_, e)| &e.dialog.id() == id)
            .map(|(k, e)| (*k, invite_cseq(&e.dialog)));
        match (call, rseq) {
            // §7.2: the CSeq-num must be that of the INVITE the provisional answered.
            (Some((call, invite)), Some(rseq))
                if cseq.is_some_and(|c| invite == Some(c))
                    && self.policy.prack_matches(call, rseq, method) =>
            {
                self.feed(Input::Stack(StackEvent::Prack { call, rseq }));
                true
            }
            _ => {
                debug!(%rack, "PRACK acknowledges no reliable provisional: 481");
                false
            }
        }
    }

    fn on_new_invite(&mut self, mut tx: Transaction) {
        if let Some((code, headers)) = refuse_invite(&tx.original) {
            // RFC 3261 §8.2.3 (415): refused before any dialog exists.
            tokio::spawn(async move {
                let _ = tx.reply_with(StatusCode::from(code), headers, None).await;
            });
            return;
        }
        if session_interval_too_small(&tx.original) {
            tokio::spawn(async move {
                let headers = vec![Header::MinSE(crate::session::MIN_SE.to_string().into())];
                let _ = tx.reply_with(StatusCode::from(422), headers, None).await;
            });
            return;
        }
        // RFC 3891 §3: Replaces naming no dialog of ours -> 481.
        let Ok(replaced) = self.check_replaces(&tx.original) else {
            tokio::spawn(async move {
                let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
            });
            return;
        };
        let info = match parse_incoming(&tx.original) {
            Ok(i) => i,
            Err(e) => {
                warn!(error = %e, "malformed INVITE");
                tokio::spawn(async move {
                    let _ = tx.reply(StatusCode::BadRequest).await;
                });
                return;
            }
        };
        let call = CallKey(self.next_call.fetch_add(1, Ordering::Relaxed));
        if let Some(old) = replaced {
            self.services.note_replaces(call, old);
        }
        // An INVITE for an extra account is answered with that account's Contact user.
        let user = if self
            .extra_accounts
            .iter()
            .any(|a| !a.username.is_empty() && a.username == info.request_user)
        {
            info.request_user.clone()
        } else {
            self.username()
        };
        let contact = match Uri::try_from(self.contact_uri(&user)) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot build Contact");
                return;
            }
        };
        // The dialog keeps the sender it is given for as long as the call lasts: it gets the
        // shared one, so the transaction's own channel goes with the transaction.
        let created =
            self.responder
                .server_dialog(&self.layer, &mut tx, self.states.sender(), contact);
        let dialog = match created {
            Ok(d) => {
                rebind::keep_proxied_remote_target(&d, &tx.original);
                d
            }
            Err(e) => {
                warn!(error = %e, "cannot create dialog for INVITE");
                tokio::spawn(async move {
                    let _ = tx.reply(StatusCode::BadRequest).await;
                });
                return;
            }
        };
        let remote_addr = tx
            .original
            .via_header()
            .ok()
            .and_then(|v| SipConnection::parse_target_from_via(v).ok())
            .and_then(|(_, hp)| SocketAddr::try_from(hp).ok())
            .unwrap_or_else(|| SocketAddr::new(self.local.ip(), 0));
        self.calls.insert(
            call,
            CallEntry {
                dialog: dialog.clone(),
                refer_notifies: Arc::default(),
            },
        );
        // Routed before the transaction runs (the dialog reports nothing until then).
        let state_rx = self
            .states
            .route(call, &info.sip_call_id, Some(dialog.id().local_tag));
        // The server INVITE transaction: sends 100 Trying at once (RFC 3261 §8.2.6.1, §17.2.1),
        // then waits for our final response, the ACK or a CANCEL.
        let mut server_dialog = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = server_dialog.handle(&mut tx).await {
                debug!(%call, error = %e, "server INVITE transaction ended with error");
            }
        });
        tokio::spawn(call_task(CallTask {
            call,
            join: None,
            state_rx,
            stack_tx: self.stack_tx.clone(),
            layer: self.layer.clone(),
            dialog,
            reoffers: self.reoffers.clone(),
            client: false,
            hooks: self.services.hooks.clone(),
            probe: None,
            abandon: None,
        }));
        info!(%call, from = %info.from_uri, "incoming call");
        self.call_ids.insert(call, info.sip_call_id.clone());
        let from_server = crate::lock(&self.server_ips).contains(&remote_addr);
        self.feed(Input::Stack(StackEvent::Incoming(IncomingInvite {
            call,
            remote_addr,
            from_server,
            ..info
        })));
    }
}

/// Our Contact URI (RFC 3261 §8.1.1.8); the transport parameter names any transport but
/// UDP (RFC 3261 §19.1.1). WebSocket has one URI value, `ws`, for WS and WSS alike (RFC 7118
/// §5.2; `WSS` exists only in Via): a proxy does not know `transport=wss` and sends the
/// peer's in-dialog requests for such a Contact over UDP.
fn contact_string(user: &str, hp: &HostPort, transport: Transport) -> String {
    let mut s = format!("sip:{user}@{hp}");
    if transport != Transport::Udp {
        s.push_str(";transport=");
        s.push_str(transport.uri_param());
    }
    s
}

/// One keep-alive on `conn`: a CRLF ping (RFC 5626 §4.4.1) on TCP/TLS, a WebSocket ping
/// frame (RFC 6455 §5.5.2) on WS/WSS (the WS framing carries no bare CRLF).
async fn send_keepalive(conn: &SipConnection) -> Result<(), String> {
    use futures_util::SinkExt;
    match conn {
        SipConnection::WebSocket(ws) => {
            let mut sink = ws.inner.ws_sink.lock().await;
            sink.send(sip_tungstenite::tungstenite::Message::Ping(
                Default::default(),
            ))
            .await
            .map_err(|e| e.to_string())
        }
        SipConnection::Tls(c) => c
            .send_raw(KEEPALIVE_REQUEST)
            .await
            .map_err(|e| e.to_string()),
        SipConnection::Tcp(c) => c
            .send_raw(KEEPALIVE_REQUEST)
            .await
            .map_err(|e| e.to_string()),
        _ => Ok(()),
    }
}

/// The UDP NAT keep-alive: an empty line pair, which a SIP server ignores (RFC 5626 §3.5.1
/// uses CRLF on streams; over UDP most phones and servers use the same bytes instead of the
/// STUN form of §4.4.2, which needs the server's `outbound` support).
const UDP_KEEPALIVE: &[u8] = b"\r\n\r\n";

/// How long resolving, connecting and the TLS/WebSocket handshakes may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens connections to next hops: TCP, TLS, WS and WSS are dialled here (TLS verified
/// against our anchors: system roots + the CA file, see [`crate::tls`]) and handed to
/// rsipstack's transport layer, which reuses a live connection for every request to the
/// same address; UDP is the layer's listener. A connection rsipstack opens on its own
/// (an in-dialog request to a stream target we never dialled) works the same, without
/// the pong deadline, and is not reused by our dials (a second one is opened beside it).
#[derive(Clone)]
struct Connector {
    endpoint: Arc<EndpointInner>,
    /// Our TLS trust anchors (read at the first TLS/WSS next hop unless already read).
    trust: Arc<tls_on_demand::TlsOnDemand>,
    ws_path: String,
    token: CancellationToken,
    /// Live stream connections we dialled, by resolved remote address.
    flows: Arc<Mutex<HashMap<SipAddr, SipConnection>>>,
    /// Their sockets, by local address (see [`flow_probe`]).
    probes: Arc<Mutex<HashMap<SipAddr, Arc<flow_probe::FlowProbe>>>>,
    /// Next hops with an open connection (ours or rsipstack's): destination as asked for →
    /// local address of the connection (what a close reports).
    live: Arc<Mutex<HashMap<SipAddr, SipAddr>>>,
}

impl Connector {
    /// Drop a closed connection (by its local address) from our table.
    fn forget(&self, local: &SipAddr) {
        crate::lock(&self.probes).remove(local);
        crate::lock(&self.flows).retain(|_, c| c.get_addr() != local);
        crate::lock(&self.live).retain(|_, l| l != local);
    }

    /// A connection found broken: no request goes over it any more (its reader ends on
    /// its own and reports the close, which then finds nothing left to forget).
    fn retire(&self, conn: &SipConnection) {
        self.endpoint.transport_layer.remove_connection(conn);
        self.forget(conn.get_addr());
    }

    /// Whether a connection to `dest` is known to be open.
    fn is_live(&self, dest: &SipAddr) -> bool {
        crate::lock(&self.live).contains_key(dest)
    }

    fn note_live(&self, dest: &SipAddr, conn: &SipConnection) {
        if dest
            .r#type
            .is_some_and(|t| t != rsipstack::sip::Transport::Udp)
        {
            crate::lock(&self.live).insert(dest.clone(), conn.get_addr().clone());
        }
    }

    /// The connection to `dest` (cached or new). UDP: the listener.
    async fn connect(&self, dest: &SipAddr) -> Result<SipConnection, String> {
        match tokio::time::timeout(DIAL_TIMEOUT, self.connect_inner(dest)).await {
            Ok(Ok(conn)) => {
                self.note_live(dest, &conn);
                Ok(conn)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("connecting to {dest} timed out")),
        }
    }

    async fn connect_inner(&self, dest: &SipAddr) -> Result<SipConnection, String> {
        use rsipstack::sip::Transport as T;
        let layer = &self.endpoint.transport_layer;
        let kind = dest.r#type;
        if !matches!(kind, Some(T::Tcp | T::Tls | T::Ws | T::Wss)) {
            return layer
                .lookup(dest, None)
                .await
                .map(|(c, _)| c)
                .map_err(|e| e.to_string());
        }
        let tls = self
            .trust
            .before_dialling(kind)
            .map_err(|e| format!("TLS connection to {}: {e}", dest.addr))?;
        // Every stream is dialled here and handed to rsipstack's transport layer, which
        // reads it and reuses it for every request to the same address. Here because:
        // the socket is kept in reach for the pong deadline ([`flow_probe`]); WSS needs
        // our trust anchors; and rsipstack writes the address it resolved into the ws://
        // URL, an IPv6 one without brackets (RFC 3986 §3.2.2 wants them).
        // The name the certificate must carry (RFC 5922 §7.2): the host as configured.
        let server_name = match &dest.addr.host {
            Host::Domain(d) => d.to_string(),
            Host::IpAddr(ip) => ip.to_string(),
        };
        let resolved = match &dest.addr.host {
            Host::Domain(_) => {
                let mut r = layer
                    .inner
                    .domain_resolver
                    .resolve(dest)
                    .await
                    .map_err(|e| format!("cannot resolve {dest}: {e}"))?;
                r.r#type = kind;
                r
            }
            Host::IpAddr(_) => dest.clone(),
        };
        if let Some(c) = crate::lock(&self.flows).get(&resolved) {
            return Ok(c.clone());
        }
        let addr = resolved
            .get_socketaddr()
            .map_err(|e| format!("bad address {resolved}: {e}"))?;
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
            if kind == Some(T::Tls) {
                format!("TLS connection to {} failed: {e}", dest.addr)
            } else {
                format!("cannot connect to {addr}: {e}")
            }
        })?;
        let local = tcp
            .local_addr()
            .map_err(|e| format!("connection to {addr}: {e}"))?;
        // RFC 6455 §5.5.2 makes every WebSocket endpoint answer a ping; a CRLF ping is
        // answered by servers that do RFC 5626, which the flow shows once it answers one.
        let websocket = matches!(kind, Some(T::Ws | T::Wss));
        let probe = match flow_probe::FlowProbe::of(&tcp, websocket) {
            Ok(p) => p.map(Arc::new),
            Err(e) => {
                debug!(error = %e, "no probe of the connection to {addr}");
                None
            }
        };
        let conn = match (kind, tls) {
            (Some(T::Tcp), _) => SipConnection::Tcp(
                TcpConnection::from_stream(
                    tcp,
                    SipAddr {
                        r#type: Some(T::Tcp),
                        addr: local.into(),
                    },
                    Some(self.token.child_token()),
                )
                .map_err(|e| format!("connection to {addr}: {e}"))?,
            ),
            (Some(T::Tls), Some(tls)) => self.dial_tls(tcp, tls, &resolved, &server_name).await?,
            (Some(T::Wss), Some(tls)) => {
                self.dial_websocket(tcp, Some(tls), &resolved, &server_name, local)
                    .await?
            }
            (Some(T::Ws), _) => {
                self.dial_websocket(tcp, None, &resolved, &server_name, local)
                    .await?
            }
            _ => return Err(format!("no TLS settings for {dest}")),
        };
        info!(local = %conn.get_addr(), remote = %resolved, "connection opened");
        if let Some(p) = probe {
            crate::lock(&self.probes).insert(conn.get_addr().clone(), p);
        }
        // In our table before its reader starts: a close reported at once then finds it.
        crate::lock(&self.flows).insert(resolved, conn.clone());
        layer.add_connection(conn.clone());
        Ok(conn)
    }

    /// The probe of a connection we dialled, by its local address.
    fn probe(&self, local: &SipAddr) -> Option<Arc<flow_probe::FlowProbe>> {
        crate::lock(&self.probes).get(local).cloned()
    }

    /// TLS handshake on `tcp`, the server's certificate checked against our anchors for
    /// `server_name` (RFC 5922 §7.2).
    async fn dial_tls(
        &self,
        tcp: tokio::net::TcpStream,
        tls: Arc<rustls::ClientConfig>,
        remote: &SipAddr,
        server_name: &str,
    ) -> Result<SipConnection, String> {
        let name = rustls_pki_types::ServerName::try_from(server_name.to_string())
            .map_err(|e| format!("bad TLS server name {server_name}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| {
                format!(
                    "TLS connection to {} failed: {}",
                    remote.addr,
                    crate::tls::describe_error(&e)
                )
            })?;
        TlsConnection::from_client_stream(stream, remote.clone(), Some(self.token.child_token()))
            .await
            .map(SipConnection::Tls)
            .map_err(|e| format!("TLS connection to {}: {e}", remote.addr))
    }

    /// WebSocket handshake (subprotocol `sip`, RFC 7118 §4.1) on `tcp`: over TLS (WSS) when
    /// `tls` is given, else plain (WS).
    async fn dial_websocket(
        &self,
        tcp: tokio::net::TcpStream,
        tls: Option<Arc<rustls::ClientConfig>>,
        remote: &SipAddr,
        server_name: &str,
        local: SocketAddr,
    ) -> Result<SipConnection, String> {
        use sip_tungstenite::tungstenite::client::IntoClientRequest;
        use sip_tungstenite::tungstenite::http::HeaderValue;
        let (scheme, default_port, transport) = match tls {
            Some(_) => ("wss", 443, rsipstack::sip::Transport::Wss),
            None => ("ws", 80, rsipstack::sip::Transport::Ws),
        };
        let port = remote
            .addr
            .port
            .as_ref()
            .map_or(default_port, |p| p.value());
        let url = format!(
            "{scheme}://{}:{port}{}",
            target::HostPort::new(server_name, port).uri_host(),
            self.ws_path
        );
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("bad WebSocket URL {url}: {e}"))?;
        req.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("sip"));
        let (ws, _) = sip_tungstenite::client_async_tls_with_config(
            req,
            tcp,
            None,
            tls.map(sip_tungstenite::Connector::Rustls),
        )
        .await
        .map_err(|e| {
            format!(
                "TLS/WebSocket handshake with {url} failed: {}",
                crate::tls::describe_error(&e)
            )
        })?;
        let (sink, read) = futures_util::StreamExt::split(ws);
        let conn = WebSocketConnection {
            inner: Arc::new(WebSocketInner {
                local_addr: SipAddr {
                    r#type: Some(transport),
                    addr: local.into(),
                },
                remote_addr: remote.clone(),
                ws_sink: tokio::sync::Mutex::new(sink),
                ws_read: tokio::sync::Mutex::new(Some(read)),
            }),
            cancel_token: Some(self.token.child_token()),
        };
        Ok(SipConnection::WebSocket(conn))
    }
}

/// A request's caller from its From (RFC 3261 §8.1.1.3): user part, display name and URI. The
/// value is split by our own name-addr reading ([`crate::parse::name_addr`]): rsipstack's typed
/// From takes the first `<`, also one inside a quoted display name (`"<i>Eve</i>"
/// <sip:...>`), and then loses the caller.
pub(crate) fn caller_of(req: &Request) -> Result<(String, Option<String>, String), String> {
    let value = req
        .from_header()
        .map_err(|e| e.to_string())?
        .value()
        .to_string();
    if let Some((display, uri)) = crate::parse::name_addr(&value) {
        if let Ok(uri) = Uri::try_from(uri.as_str()) {
            return Ok((
                uri.user().unwrap_or_default().to_string(),
                display,
                uri.to_string(),
            ));
        }
    }
    let from = req
        .from_header()
        .and_then(|h| h.typed())
        .map_err(|e| e.to_string())?;
    Ok((
        from.uri.user().unwrap_or_default().to_string(),
        from.display_name
            .map(|d| d.trim().trim_matches('"').to_string())
            .filter(|d| !d.is_empty()),
        from.uri.to_string(),
    ))
}

/// The caller and callee of an incoming INVITE (RFC 3261 §8.1.1.3, §8.1.1.2).
fn parse_incoming(req: &Request) -> Result<IncomingInvite, String> {
    let (from_user, from_display, from_uri) = caller_of(req)?;
    let to = req
        .to_header()
        .and_then(|h| h.typed())
        .map_err(|e| e.to_string())?;
    let call_id = req
        .call_id_header()
        .map_err(|e| e.to_string())?
        .value()
        .to_string();
    let headers = req
        .headers
        .iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect();
    Ok(IncomingInvite {
        call: CallKey(0),
        sip_call_id: call_id,
        from_user,
        from_display,
        from_uri,
        to_user: to.uri.user().unwrap_or_default().to_string(),
        remote_addr: SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0),
        sdp: body_text(&req.body),
        headers,
        request_user: req.uri.user().unwrap_or_default().to_string(),
        from_server: false,
    })
}

struct CallTask {
    call: CallKey,
    join: Option<tokio::task::JoinHandle<InviteAsyncResult>>,
    state_rx: state_router::StateRx,
    stack_tx: mpsc::UnboundedSender<StackEvent>,
    layer: Arc<DialogLayer>,
    dialog: InviteDialog,
    reoffers: PendingReoffers,
    client: bool,
    /// REFER and NOTIFY in the dialog (`services`).
    hooks: services::CallHooks,
    /// Next hop of our INVITE, checked for reachability first (DNS, connect, TLS).
    probe: Option<(Connector, SipAddr)>,
    /// Cancelled when the INVITE is abandoned for the next server address (RFC 3263
    /// §4.3): the task ends silently.
    abandon: Option<CancellationToken>,
}

/// How long one registrar address may stay silent before the next one (RFC 3263 §4.3) is
/// tried, when there is a next one (the last gets the full transaction timeout).
const FAILOVER_AFTER: Duration = Duration::from_secs(4);

/// How long resolving / connecting to the next hop of an INVITE may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Follow one dialog: translate its states (and, for our INVITE, its final response) into
/// stack events; answer in-dialog requests the policy does not handle yet.
async fn call_task(mut t: CallTask) {
    let call = t.call;
    let mut held_termination: Option<Termination> = None;
    let mut acked = false;
    if let Some((connector, dest)) = t.probe.take() {
        // rsipstack retries an unreachable next hop until Timer B (32 s). A transport
        // failure is final at once (RFC 3261 §8.1.3.1: treated as 503): abandon the INVITE
        // (the stack cleans up its transaction when the task is dropped).
        // The rarely taken awaits of this task are boxed: the task lives as long as its call,
        // and its future is as large as the largest future it awaits inline.
        let connect = Box::pin(connector.connect(&dest));
        let err = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some("connect timeout".to_string()),
        };
        if let Some(e) = err {
            if let Some(j) = t.join.take() {
                j.abort();
            }
            let _ = t.stack_tx.send(StackEvent::InviteFailed {
                call,
                error: format!("cannot reach {dest}: {e}"),
            });
            t.layer.remove_dialog(&t.dialog.id());
            return;
        }
    }
    let abandon = t.abandon.take().unwrap_or_default();
    loop {
        let join_pending = t.join.is_some();
        tokio::select! {
            _ = abandon.cancelled(), if join_pending => {
                if let Some(j) = t.join.take() {
                    j.abort();
                }
                debug!(%call, "INVITE abandoned for the next server address");
                break;
            }
            res = async {
                match t.join.as_mut() {
                    Some(j) => j.await,
                    None => std::future::pending().await,
                }
            }, if join_pending => {
                t.join = None;
                let ev = match res {
                    Ok(Ok((_, Some(resp))))
                        if matches!(
                            resp.status_code,
                            StatusCode::Unauthorized | StatusCode::ProxyAuthenticationRequired
                        ) =>
                    {
                        StackEvent::InviteChallenged {
                            call,
                            code: resp.status_code.code(),
                            reason: reason_text(&resp),
                            challenges: response_challenges(&resp),
                        }
                    }
                    Ok(Ok((_, Some(resp)))) => StackEvent::Final {
                        call,
                        code: resp.status_code.code(),
                        reason: reason_text(&resp),
                        sdp: body_text(&resp.body),
                        contact: resp
                            .typed_contact_headers()
                            .ok()
                            .and_then(|c| c.first().map(|c| c.uri.to_string())),
                        session_expires: header_value(&resp.headers, "Session-Expires", "x"),
                        min_se: header_value(&resp.headers, "Min-SE", "Min-SE")
                            .and_then(|v| v.split(';').next()?.trim().parse().ok()),
                    },
                    Ok(Ok((_, None))) => StackEvent::InviteFailed {
                        call,
                        error: "no final response".into(),
                    },
                    Ok(Err(e)) => StackEvent::InviteFailed { call, error: e.to_string() },
                    Err(e) => StackEvent::InviteFailed { call, error: e.to_string() },
                };
                let failed = !matches!(&ev, StackEvent::Final { code, .. } if *code < 300);
                let _ = t.stack_tx.send(ev);
                // A failed INVITE (or a 3xx being followed by a new INVITE for the same
                // call) has no dialog left to follow.
                if held_termination.take().is_some() || failed {
                    break;
                }
            }
            st = t.state_rx.recv() => {
                let Some(st) = st else { break };
                if let DialogState::Terminated(id, _) = &*st {
                    if !state_router::is_this_dialog(&id.local_tag, &t.dialog.id().local_tag) {
                        // The end of this call's earlier INVITE (challenged, or sent to
                        // another server) reported late: not this dialog's end.
                        debug!(%call, tag = %id.local_tag, "termination of an earlier attempt ignored");
                        continue;
                    }
                }
                match *st {
                    DialogState::Early(_, resp) if t.client => {
                        let _ = t.stack_tx.send(StackEvent::Provisional {
                            call,
                            code: resp.status_code.code(),
                            reason: reason_text(&resp),
                            sdp: body_text(&resp.body),
                        });
                    }
                    DialogState::Confirmed(_, _) if !t.client && !acked => {
                        acked = true;
                        let sdp = t.dialog.last_remote_ack().and_then(|ack| body_text(&ack.body));
                        let _ = t.stack_tx.send(StackEvent::AckReceived { call, sdp });
                    }
                    DialogState::Updated(_, req, handle) => {
                        rebind::refresh_remote_target(&t.dialog, &req);
                        // re-INVITE (RFC 3261 §14.2) / UPDATE (RFC 3311 §5.2): the policy
                        // decides (answer from the engine, 491 glare, 500, refresh).
                        let id = t.reoffers.insert(handle);
                        let _ = t.stack_tx.send(StackEvent::Reoffer {
                            call,
                            id,
                            update: req.method == Method::Update,
                            sdp: body_text(&req.body),
                        });
                    }
                    DialogState::Info(_, req, handle) => {
                        if let Some(digit) = dtmf_digit(&req) {
                            let _ = t.stack_tx.send(StackEvent::Dtmf { call, digit });
                        }
                        let _ = Box::pin(handle.reply(StatusCode::OK)).await;
                    }
                    DialogState::Options(_, _, handle)
                    | DialogState::Message(_, _, handle) => {
                        let _ = Box::pin(handle.reply(StatusCode::OK)).await;
                    }
                    DialogState::Notify(_, req, handle) => {
                        Box::pin(t.hooks.on_notify(call, &req, handle)).await;
                    }
                    DialogState::Refer(_, req, handle) => {
                        Box::pin(t.hooks.on_refer(call, &req, handle)).await;
                    }
                    DialogState::Terminated(_, reason) => {
                        let cause = termination(&reason, t.client);
                        debug!(%call, ?reason, "dialog terminated");
                        if t.join.is_some() {
                            // The final response of our INVITE reports the outcome.
                            held_termination = Some(cause);
                        } else {
                            let _ = t.stack_tx.send(StackEvent::Terminated { call, cause });
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    t.layer.remove_dialog(&t.dialog.id());
}

/// Holds an in-dialog request back until the dialog can take it ([`unconfirmed`]): `true`
/// to hand it to the dialog, `false` when it has been answered here.
async fn until_confirmed(d: &rsipstack::dialog::dialog::Dialog, tx: &mut Transaction) -> bool {
    use unconfirmed::{readiness, Readiness, ACK_WAIT, POLL};
    let method = tx.original.method;
    let deadline = Instant::now() + ACK_WAIT;
    loop {
        let state = d.state();
        match readiness(&state, method, Instant::now() >= deadline) {
            Readiness::Handle => return true,
            Readiness::Wait => tokio::time::sleep(POLL).await,
            Readiness::Refuse { code, retry_after } => {
                debug!(%method, code, %state, "in-dialog request before the dialog is confirmed");
                let mut headers = vec![Header::Allow(ALLOW.into())];
                if retry_after {
                    // RFC 3261 §14.2: a random 0-10 s.
                    let secs = rand::random::<u32>() % 11;
                    headers.push(Header::RetryAfter(secs.to_string().into()));
                }
                let _ = tx.reply_with(StatusCode::from(code), headers, None).await;
                return false;
            }
        }
    }
}

/// RFC 3263 §4.3 failover of one outgoing INVITE.
struct InviteFailover {
    call_id: String,
    /// Server addresses not tried yet, in order.
    rest: std::collections::VecDeque<(SocketAddr, Transport)>,
    /// What the list is cached under: a server that failed moves to its back.
    key: crate::locate::RouteKey,
    /// Counts the addresses tried; a silence check for an earlier attempt is stale.
    attempt: u32,
    /// Cancels the current attempt's call task (silently) when it is abandoned.
    abandon: CancellationToken,
}

/// Which outgoing call an INVITE outcome belongs to, and whether it calls for the next
/// server address (RFC 3263 §4.3: a 503, a timeout (408) or a transport failure do; an
/// answer, a refusal, a challenge or a provisional response do not). `None`: not an
/// outcome of our INVITE.
fn failover_trigger(ev: &StackEvent) -> Option<(CallKey, bool)> {
    match ev {
        StackEvent::Final { call, code, .. } => Some((*call, matches!(*code, 408 | 503))),
        StackEvent::InviteFailed { call, .. } => Some((*call, true)),
        StackEvent::InviteChallenged { call, .. } | StackEvent::Provisional { call, .. } => {
            Some((*call, false))
        }
        _ => None,
    }
}

/// How to locate an INVITE's next hop: the name and port as written, the transport (one:
/// configured; several: DNS chooses, RFC 3263 §4.1) and whether the URI is `sips:`.
struct LocatePlan {
    host: String,
    port: Option<u16>,
    transports: Vec<Transport>,
    secure: bool,
}

/// Whether (and how) to locate the next hop of `target` before an out-of-dialog request
/// (RFC 3263
/// §4): a host name over UDP or TCP. The port as written in the account's server or
/// proxy decides between SRV (none written) and A/AAAA. With no transport configured
/// (`transport_auto`) and none named by the written address, NAPTR/SRV choose it
/// (§4.1), TLS and WebSocket included; else IP literals, TLS and WebSocket hops go to
/// the stack as they are.
fn locate_plan(account: Option<&AccountConfig>, auto: bool, target: &Target) -> Option<LocatePlan> {
    if target.next_hop.host.parse::<IpAddr>().is_ok() {
        return None;
    }
    let written = account.and_then(|acc| {
        [acc.proxy.as_deref(), acc.server.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|s| target::parse_server(s).ok())
            .find(|a| a.host.eq_ignore_ascii_case(&target.next_hop.host))
    });
    let secure = target
        .request_uri
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("sips:"));
    if auto {
        if let Some(w) = written.as_ref().filter(|w| w.transport.is_none()) {
            return Some(LocatePlan {
                host: target.next_hop.host.clone(),
                port: w.port,
                transports: AUTO_TRANSPORTS.to_vec(),
                secure,
            });
        }
    }
    if !matches!(target.transport, Transport::Udp | Transport::Tcp) {
        return None;
    }
    let port = match written {
        Some(a) => a.port,
        None => Some(target.next_hop.port),
    };
    Some(LocatePlan {
        host: target.next_hop.host.clone(),
        port,
        transports: vec![target.transport],
        secure,
    })
}

/// The destination of a located server: UDP/TCP the address itself; TLS and WebSocket the
/// name `host` with the located port, pinned to the address (the certificate is checked
/// against the name the lookup started from, RFC 5922 §4).
fn located_dest(dns: &crate::locate::Dns, host: &str, a: SocketAddr, t: Transport) -> SipAddr {
    match t {
        Transport::Udp | Transport::Tcp => SipAddr {
            r#type: Some(sip_transport(t)),
            addr: a.into(),
        },
        _ => {
            dns.pins.pin(host, a.port(), a);
            sip_addr(&HostPort::new(host, a.port()), t)
        }
    }
}

impl LocatePlan {
    /// Run the lookups (or take the cached list): the key the list is cached under and the
    /// servers to try in order (empty when nothing resolved).
    async fn locate(
        &self,
        dns: &crate::locate::Dns,
    ) -> (crate::locate::RouteKey, Vec<(SocketAddr, Transport)>) {
        match self.transports.as_slice() {
            [t] => (
                crate::locate::RouteKey::new(&self.host, self.port, &[*t]),
                dns.locate(&self.host, self.port, *t)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| (a, *t))
                    .collect(),
            ),
            many => (
                crate::locate::RouteKey::new(
                    &self.host,
                    self.port,
                    &crate::locate::usable_transports(self.secure, many),
                ),
                dns.locate_auto(&self.host, self.port, self.secure, many)
                    .await
                    .unwrap_or_default(),
            ),
        }
    }
}

/// Messages of the failover machinery to the driver.
enum FailoverMsg {
    /// The server addresses of an outgoing call's next hop (RFC 3263 §4.2; empty: none).
    Located {
        call: CallKey,
        call_id: String,
        target: Box<Target>,
        sdp: String,
        key: crate::locate::RouteKey,
        list: Vec<(SocketAddr, Transport)>,
    },
    /// [`FAILOVER_AFTER`] has passed since `attempt` of `call` was sent.
    Silence { call: CallKey, attempt: u32 },
    /// The connection to an outgoing call's next hop (TCP, TLS, WS, WSS) is open, or could
    /// not be opened; `located` is the address it was for (a later failover attempt makes
    /// it stale).
    Connected {
        call: CallKey,
        call_id: String,
        target: Box<Target>,
        sdp: String,
        located: Option<(SocketAddr, Transport)>,
        dest: SipAddr,
        result: Result<(), String>,
    },
}

/// Call-IDs of the INVITEs in failover, with whether any response (even 100 Trying)
/// arrived for the current attempt: set by the transport hook, read by the driver.
#[derive(Clone, Default)]
struct AnsweredInvites(Arc<Mutex<HashMap<String, bool>>>);

impl AnsweredInvites {
    fn watch(&self, call_id: &str) {
        crate::lock(&self.0).insert(call_id.to_string(), false);
    }

    fn forget(&self, call_id: &str) {
        crate::lock(&self.0).remove(call_id);
    }

    fn answered(&self, call_id: &str) -> bool {
        crate::lock(&self.0).get(call_id).copied().unwrap_or(true)
    }

    fn note_response(&self, resp: &Response) {
        let mut map = crate::lock(&self.0);
        if map.is_empty() {
            return;
        }
        let Some(id) = resp.headers.iter().find_map(|h| match h {
            Header::CallId(c) => Some(c.value().trim().to_string()),
            _ => None,
        }) else {
            return;
        };
        if let Some(seen) = map.get_mut(&id) {
            *seen = true;
        }
    }
}

impl Driver {
    fn on_failover_msg(&mut self, msg: FailoverMsg) {
        match msg {
            FailoverMsg::Located {
                call,
                call_id,
                target,
                sdp,
                key,
                list,
            } => {
                if self.call_ids.get(call).is_none_or(|id| id != call_id) {
                    return; // hung up meanwhile
                }
                let mut list: std::collections::VecDeque<(SocketAddr, Transport)> = list.into();
                if let Some(first) = list.pop_front() {
                    debug!(%call, server = %first.0, transport = %first.1, more = list.len(), "INVITE server located");
                    self.invite_dest.insert(call, first);
                    if !list.is_empty() {
                        self.answered_invites.watch(&call_id);
                        self.failover.insert(
                            call,
                            InviteFailover {
                                call_id: call_id.clone(),
                                rest: list,
                                key,
                                attempt: 0,
                                abandon: CancellationToken::new(),
                            },
                        );
                        self.arm_silence_check(call, 0);
                    }
                }
                self.send_invite(call, call_id, *target, sdp);
            }
            FailoverMsg::Connected {
                call,
                call_id,
                target,
                sdp,
                located,
                dest,
                result,
            } => {
                if self.call_ids.get(call).is_none_or(|id| id != call_id)
                    || self.invite_dest.get(&call).copied() != located
                {
                    return; // hung up, or moved on to another server address, meanwhile
                }
                match result {
                    Ok(()) => {
                        self.connected_first.insert(call);
                        self.send_invite(call, call_id, *target, sdp);
                    }
                    Err(e) => {
                        // RFC 3261 §8.1.3.1: a transport failure counts as a 503 (and
                        // moves on to the next server address, RFC 3263 §4.3).
                        let _ = self.stack_tx.send(StackEvent::InviteFailed {
                            call,
                            error: format!("cannot reach {dest}: {e}"),
                        });
                    }
                }
            }
            FailoverMsg::Silence { call, attempt } => {
                let Some(f) = self.failover.get(&call) else {
                    return;
                };
                if f.attempt != attempt || self.answered_invites.answered(&f.call_id) {
                    return;
                }
                info!(%call, "no response to the INVITE; trying the next server address");
                f.abandon.cancel();
                self.fail_over(call);
            }
        }
    }

    fn arm_silence_check(&mut self, call: CallKey, attempt: u32) {
        let tx = self.failover_tx.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(FAILOVER_AFTER).await;
            let _ = tx.send(FailoverMsg::Silence { call, attempt });
        });
    }

    /// A 503, a 408 or a transport failure of an INVITE with server addresses left: send
    /// it to the next one instead of reporting it (RFC 3263 §4.3). Returns whether `ev` was
    /// consumed.
    fn try_failover(&mut self, ev: &StackEvent) -> bool {
        let Some((call, retry)) = failover_trigger(ev) else {
            return false;
        };
        let Some(f) = self.failover.get(&call) else {
            return false;
        };
        if !retry || f.rest.is_empty() {
            if !matches!(ev, StackEvent::Provisional { .. }) {
                // Settled (answered, refused, challenged, or nothing left to try).
                let id = f.call_id.clone();
                self.answered_invites.forget(&id);
                self.failover.remove(&call);
            }
            return false;
        }
        info!(%call, event = ?ev, "INVITE failed; trying the next server address");
        self.fail_over(call)
    }

    /// Send the INVITE of `call` to its next server address. False when there is none.
    fn fail_over(&mut self, call: CallKey) -> bool {
        let Some(f) = self.failover.get_mut(&call) else {
            return false;
        };
        let Some(next) = f.rest.pop_front() else {
            return false;
        };
        // RFC 3263 §4.3: the failed server goes to the back of the cached list.
        if let Some(failed) = self.invite_dest.get(&call) {
            self.dns.failed(&f.key, *failed);
        }
        f.attempt += 1;
        f.abandon = CancellationToken::new();
        let attempt = f.attempt;
        let call_id = f.call_id.clone();
        self.answered_invites.watch(&call_id);
        let Some((id, target, sdp)) = self.invites.get(&call).cloned() else {
            return false;
        };
        if id != call_id {
            return false;
        }
        self.invite_dest.insert(call, next);
        if let Some(old) = self.calls.remove(&call) {
            self.layer.remove_dialog(&old.dialog.id());
        }
        self.arm_silence_check(call, attempt);
        self.send_invite(call, call_id, target, sdp);
        true
    }
}

fn termination(reason: &TerminatedReason, client: bool) -> Termination {
    match (reason, client) {
        (TerminatedReason::UasBye, true) | (TerminatedReason::UacBye, false) => {
            Termination::RemoteBye
        }
        (TerminatedReason::UacCancel, false) => Termination::RemoteCancel,
        (TerminatedReason::Timeout, _) => Termination::Timeout,
        (TerminatedReason::ProxyError(code), _) => {
            Termination::Failed(format!("proxy error {}", code.code()))
        }
        _ => Termination::Local,
    }
}

/// The value of the first header `name` (or its compact form), case-insensitively.
fn header_value(headers: &rsipstack::sip::Headers, name: &str, compact: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name) || h.name().eq_ignore_ascii_case(compact))
        .map(|h| h.value().trim().to_string())
}

/// The event packages of every `Allow-Events` (compact `u`) header, lower-case (RFC 6665
/// §8.2.2); `None` without any.
/// The `X-MParam` and `X-MParamP` headers (any case) as (name as sent, value), in order.
fn server_params(headers: &rsipstack::sip::Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|h| {
            h.name().eq_ignore_ascii_case("x-mparam") || h.name().eq_ignore_ascii_case("x-mparamp")
        })
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

fn allow_events(headers: &rsipstack::sip::Headers) -> Option<Vec<String>> {
    let mut found = false;
    let mut packages = Vec::new();
    for h in headers.iter().filter(|h| {
        h.name().eq_ignore_ascii_case("Allow-Events") || h.name().eq_ignore_ascii_case("u")
    }) {
        found = true;
        for p in h
            .value()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let p = p.to_ascii_lowercase();
            if !packages.contains(&p) && packages.len() < 32 {
                packages.push(p);
            }
        }
    }
    found.then_some(packages)
}

/// Option tags we implement (RFC 3261 §8.2.2.3): a `Require` naming anything else gets 420.
/// `replaces`: an INVITE may require Replaces support (RFC 3891 §6.1), which we have.
const KNOWN_EXTENSIONS: [&str; 3] = ["100rel", "timer", "replaces"];

/// The response refusing any request but ACK and CANCEL by its meaning, if any: 416
/// Unsupported URI Scheme for a Request-URI that is not `sip:`/`sips:` (RFC 3261
/// §8.2.2.1), 420 Bad Extension with `Unsupported` listing the option tags of `Require`
/// we do not implement (§8.2.2.3; `Proxy-Require` is for proxies and ignored).
fn refuse_request(req: &Request) -> Option<(u16, Vec<Header>)> {
    use rsipstack::sip::Scheme;
    // rsip leaves the scheme empty when it cannot read it (`soap.beep://...`).
    if !matches!(req.uri.scheme, Some(Scheme::Sip | Scheme::Sips)) {
        return Some((416, vec![]));
    }
    let unknown: Vec<String> = req
        .headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Require"))
        .flat_map(|h| {
            h.value()
                .split(',')
                .map(|t| t.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty() && !KNOWN_EXTENSIONS.iter().any(|k| k.eq_ignore_ascii_case(t)))
        .collect();
    if !unknown.is_empty() {
        return Some((420, vec![Header::Unsupported(unknown.join(", ").into())]));
    }
    None
}

/// The response refusing a new INVITE outright, if any (after [`refuse_request`]): 415
/// Unsupported Media Type with `Accept` for a body that is not SDP (RFC 3261 §8.2.3).
fn refuse_invite(req: &Request) -> Option<(u16, Vec<Header>)> {
    if !req.body.is_empty() {
        let ctype = header_value(&req.headers, "Content-Type", "c").unwrap_or_default();
        let media = ctype.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/sdp") {
            return Some((415, vec![Header::Accept("application/sdp".into())]));
        }
    }
    None
}

/// RFC 4028 §8.1: an INVITE asking for a session interval below our minimum gets 422.
fn session_interval_too_small(req: &Request) -> bool {
    header_value(&req.headers, "Session-Expires", "x")
        .and_then(|v| crate::session::parse_session_expires(&v))
        .is_some_and(|se| se.secs < crate::session::MIN_SE)
}

/// The digit of a DTMF INFO body: `Signal=5` of `application/dtmf-relay`, or the bare
/// digit of `application/dtmf` (RFC 6086 carrying the de-facto DTMF packages).
fn dtmf_digit(req: &Request) -> Option<char> {
    let body = std::str::from_utf8(&req.body).ok()?;
    let ctype = header_value(&req.headers, "Content-Type", "c");
    crate::messaging::dtmf_from_info(ctype.as_deref(), body)
}

/// The transports a registrar may be reached over when DNS picks (RFC 3263 §4.1), in the
/// order SRV is asked for them when there is no NAPTR record.
const AUTO_TRANSPORTS: [Transport; 5] = [
    Transport::Udp,
    Transport::Tcp,
    Transport::Tls,
    Transport::Ws,
    Transport::Wss,
];

/// One address of a located list, as a next hop.
struct Candidate {
    /// UDP/TCP: the address itself; TLS/WebSocket: the domain with the located port
    /// (pinned to `located`).
    hop: HostPort,
    transport: Transport,
    /// The located address (none when the hop was not located here).
    located: Option<SocketAddr>,
}

impl Candidate {
    fn located(domain: &str, a: SocketAddr, t: Transport) -> Candidate {
        let host = if matches!(t, Transport::Udp | Transport::Tcp) {
            a.ip().to_string()
        } else {
            domain.to_string()
        };
        Candidate {
            hop: HostPort::new(host, a.port()),
            transport: t,
            located: Some(a),
        }
    }
}

/// One REGISTER transaction, including the digest challenge round (RFC 3261 §10.2, §22;
/// RFC 2617/7616 MD5 digest with `qop=auth`, computed by rsipstack).
struct RegisterJob {
    endpoint: Arc<EndpointInner>,
    connector: Connector,
    /// Where the connection used is recorded (over UDP: our socket, and the registrar's
    /// address in `reg_peer`).
    reg_flow: Arc<Mutex<Option<SipConnection>>>,
    reg_peer: Arc<Mutex<Option<SipAddr>>>,
    /// Our listener address (Via sent-by).
    local: SocketAddr,
    transport: Transport,
    contact: HostPort,
    account: AccountConfig,
    /// Password or precomputed HA1 (`md5` parameter).
    secret: crate::digest::Secret,
    /// Answered protection spaces, shared by every request of the account.
    cache: Arc<Mutex<crate::digest::DigestCache>>,
    /// RFC 3263 location (DNS servers, caches, pins).
    dns: crate::locate::Dns,
    /// No transport configured: NAPTR/SRV pick it (RFC 3263 §4.1).
    transport_auto: bool,
    expires: u32,
    call_id: String,
    cseq: Arc<AtomicU32>,
    /// Where requests from our server come from (ghost-call protection): the registrar
    /// address that answered is added (RFC 3263 may have picked one of several).
    server_addrs: Arc<Mutex<std::collections::HashSet<SocketAddr>>>,
    /// The Service-Route of the last 2xx (RFC 3608 §6.1).
    service_route: Arc<Mutex<Vec<String>>>,
}

impl RegisterJob {
    fn outcome(&self, code: u16, reason: impl Into<String>) -> RegisterOutcome {
        RegisterOutcome {
            code,
            reason: reason.into(),
            expires: None,
            min_expires: None,
            received: None,
            contact: self.contact.clone(),
            reliable: self.transport.is_reliable(),
            websocket: self.transport.is_websocket(),
            allow_events: None,
            server_params: Vec::new(),
        }
    }

    async fn run(&self) -> RegisterOutcome {
        let acc = &self.account;
        let server = acc
            .server
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .or(acc.proxy.as_deref());
        let server = match server.map(target::parse_server) {
            Some(Ok(s)) => s,
            Some(Err(e)) => return self.outcome(0, format!("bad server address: {e}")),
            None => return self.outcome(0, "no SIP server configured"),
        };
        let (first_hop, hop_transport) = match acc.proxy.as_deref().filter(|p| !p.trim().is_empty())
        {
            Some(p) => match target::parse_server(p) {
                Ok(p) => {
                    let t = p.transport_or(self.transport);
                    (p, t)
                }
                Err(e) => return self.outcome(0, format!("bad proxy address: {e}")),
            },
            None => {
                let t = server.transport_or(self.transport);
                (server.clone(), t)
            }
        };
        // RFC 3263 §4.1: no transport configured nor named by the address: NAPTR, then SRV
        // per transport, pick it (any of ours; TLS and WebSocket keep the domain as name).
        let auto = self.transport_auto && first_hop.transport.is_none();
        // RFC 3263 §4: SRV then A/AAAA over UDP and TCP. A configured TLS or WebSocket hop
        // keeps the host name (certificate check, HTTP Host) and connects through the
        // stack's resolver.
        let located = if auto {
            let key =
                crate::locate::RouteKey::new(&first_hop.host, first_hop.port, &AUTO_TRANSPORTS);
            match self
                .dns
                .locate_auto(&first_hop.host, first_hop.port, false, &AUTO_TRANSPORTS)
                .await
            {
                Ok(list) => Some((key, list)),
                Err(e) => return self.outcome(503, e),
            }
        } else if matches!(hop_transport, Transport::Udp | Transport::Tcp) {
            let key =
                crate::locate::RouteKey::new(&first_hop.host, first_hop.port, &[hop_transport]);
            match self
                .dns
                .locate(&first_hop.host, first_hop.port, hop_transport)
                .await
            {
                Ok(list) => Some((key, list.into_iter().map(|a| (a, hop_transport)).collect())),
                Err(e) => return self.outcome(503, e),
            }
        } else {
            None
        };
        let (key, candidates): (Option<crate::locate::RouteKey>, Vec<Candidate>) = match located {
            Some((key, list)) => (
                Some(key),
                list.into_iter()
                    .map(|(a, t)| Candidate::located(&first_hop.host, a, t))
                    .collect(),
            ),
            None => (
                None,
                vec![Candidate {
                    hop: first_hop.hop(hop_transport),
                    transport: hop_transport,
                    located: None,
                }],
            ),
        };
        let count = candidates.len();
        let mut last = self.outcome(503, "no server address");
        for (i, c) in candidates.into_iter().enumerate() {
            let more = i + 1 < count;
            if let Some(a) = c.located {
                if c.hop.host.parse::<IpAddr>().is_err() {
                    self.dns.pins.pin(&c.hop.host, c.hop.port, a);
                }
            }
            let hop = c.hop.clone();
            let attempt = self.run_to(&server, c.hop, c.transport);
            let mut outcome = if more {
                match tokio::time::timeout(FAILOVER_AFTER, attempt).await {
                    Ok(o) => o,
                    Err(_) => self.outcome(408, format!("no response from {hop}")),
                }
            } else {
                attempt.await
            };
            outcome.reliable = c.transport.is_reliable();
            // RFC 3263 §4.3: a timeout or 503 moves on to the next address; the cached list
            // keeps it at the back for the next REGISTER.
            if matches!(outcome.code, 408 | 503) {
                if let (Some(key), Some(a)) = (&key, c.located) {
                    self.dns.failed(key, (a, c.transport));
                }
                if more {
                    info!(%hop, code = outcome.code, reason = %outcome.reason, "registrar failed; trying the next address");
                    last = outcome;
                    continue;
                }
            }
            return outcome;
        }
        last
    }

    /// One REGISTER (with its challenge rounds) to one address of the registrar.
    async fn run_to(
        &self,
        server: &target::ServerAddr,
        hop: HostPort,
        hop_transport: Transport,
    ) -> RegisterOutcome {
        let acc = &self.account;
        let dest = sip_addr(&hop, hop_transport);
        if hop_transport.is_reliable() {
            // Open (or reuse) the connection first: a TLS failure is reported as such, and
            // the connection is remembered for keep-alives and loss detection.
            *crate::lock(&self.reg_peer) = None;
            match self.connector.connect(&dest).await {
                Ok(conn) => *crate::lock(&self.reg_flow) = Some(conn),
                Err(e) => {
                    *crate::lock(&self.reg_flow) = None;
                    return self.outcome(503, e);
                }
            }
        } else {
            // Over UDP the NAT keep-alives go from our socket to the registrar's address
            // (a resolved one: `hop` is an address of the located server).
            let udp = match dest.get_socketaddr() {
                Ok(_) => self
                    .endpoint
                    .transport_layer
                    .lookup(&dest, None)
                    .await
                    .ok()
                    .map(|(c, _)| c),
                Err(_) => None,
            };
            *crate::lock(&self.reg_peer) = udp.as_ref().map(|_| dest.clone());
            *crate::lock(&self.reg_flow) = udp;
        }
        let domain = server.domain();
        let user = &acc.username;
        let uris = (|| -> Result<(Uri, Uri, Uri), String> {
            let aor = Uri::try_from(format!("sip:{user}@{domain}")).map_err(|e| e.to_string())?;
            let ruri = Uri::try_from(format!("sip:{domain}")).map_err(|e| e.to_string())?;
            let contact = Uri::try_from(contact_string(user, &self.contact, hop_transport))
                .map_err(|e| e.to_string())?;
            Ok((aor, ruri, contact))
        })();
        let (aor, ruri, contact_uri) = match uris {
            Ok(u) => u,
            Err(e) => return self.outcome(0, format!("bad account URI: {e}")),
        };
        let from = rsipstack::sip::typed::From {
            display_name: acc
                .display_name
                .as_deref()
                .filter(|d| !d.is_empty())
                .map(display_name),
            uri: aor.clone(),
            params: vec![],
        }
        .with_tag(make_tag());
        let to = rsipstack::sip::typed::To {
            display_name: None,
            uri: aor,
            params: vec![],
        };
        let via_addr = SipAddr {
            r#type: Some(sip_transport(hop_transport)),
            addr: self.local.into(),
        };
        let via = match self.endpoint.get_via(Some(via_addr), None) {
            Ok(v) => v,
            Err(e) => return self.outcome(503, e.to_string()),
        };
        let seq = self.cseq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut req = self.endpoint.make_request(
            Method::Register,
            ruri,
            via,
            from,
            to,
            seq,
            Some(self.call_id.clone().into()),
        );
        let contact = rsipstack::sip::typed::Contact {
            display_name: None,
            uri: contact_uri,
            params: vec![],
        };
        req.headers.push(contact.into());
        req.headers
            .push(rsipstack::sip::Expires::from(self.expires).into());
        req.headers.push(Header::Allow(ALLOW.into()));
        // RFC 3327 §5.1: we take registrations that proxies between us and the registrar
        // record with Path (nothing is asked of us but saying so); an edge proxy that
        // insists on it refuses a REGISTER without the tag (Kamailio's strict path mode
        // answers 420).
        req.headers
            .push(Header::Supported(REGISTER_SUPPORTED.into()));
        req.headers.push(Header::ContentLength(0u32.into()));

        let key = match TransactionKey::from_request(&req, TransactionRole::Client) {
            Ok(k) => k,
            Err(e) => return self.outcome(0, e.to_string()),
        };
        let mut tx = Transaction::new_client(key, req, self.endpoint.clone(), None);
        tx.destination = Some(dest);
        debug!(
            user = %user,
            auth_user = ?acc.auth_username,
            password = "<redacted>",
            %hop,
            expires = self.expires,
            "sending REGISTER"
        );
        let auth_name = acc
            .auth_username
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| acc.username.clone());
        let user = crate::digest::AuthUser {
            username: &auth_name,
            secret: &self.secret,
            realm: acc.realm.as_deref(),
            strict_realm: true,
        };
        let mut attempt = crate::digest::AuthAttempt::default();
        let ruri_text = uri_escapes::wire_request_uri(&tx.original.uri, hop_transport);
        let parts = crate::digest::RequestParts {
            method: "REGISTER",
            uri: &ruri_text,
            body: b"",
        };
        {
            // Nonce reuse (RFC 7616 §3.4): credentials from the last answered challenge.
            let pre = crate::lock(&self.cache).preemptive(&user, parts);
            if !pre.is_empty() {
                crate::lock(&self.cache).note_sent(&mut attempt, &pre);
                let seq = self.cseq.fetch_add(1, Ordering::Relaxed) + 1;
                // The unauthenticated transaction was not sent yet: replace it.
                tx = match reauthorized(&tx, seq, &pre) {
                    Ok(t) => t,
                    Err(e) => return self.outcome(0, format!("cannot add credentials: {e}")),
                };
                debug!(spaces = pre.len(), "REGISTER with cached digest nonce");
            }
        }
        if let Err(e) = tx.send().await {
            return self.outcome(503, format!("transport error: {e}"));
        }
        while let Some(msg) = tx.receive().await {
            let SipMessage::Response(resp) = msg else {
                continue;
            };
            if resp.status_code.kind() == StatusCodeKind::Provisional {
                continue;
            }
            let challenged = matches!(
                resp.status_code,
                StatusCode::Unauthorized | StatusCode::ProxyAuthenticationRequired
            );
            if challenged {
                let challenges = response_challenges(&resp);
                let verdict =
                    crate::lock(&self.cache).on_challenge(&mut attempt, &challenges, &user, parts);
                let creds = match verdict {
                    crate::digest::Verdict::Retry(c) => c,
                    crate::digest::Verdict::Fail(why) => {
                        info!(code = resp.status_code.code(), %why, "REGISTER authentication failed");
                        return self.outcome(resp.status_code.code(), why);
                    }
                };
                let seq = self.cseq.fetch_add(1, Ordering::Relaxed) + 1;
                tx = match reauthorized(&tx, seq, &creds) {
                    Ok(t) => t,
                    Err(e) => return self.outcome(0, format!("cannot answer challenge: {e}")),
                };
                if let Err(e) = tx.send().await {
                    return self.outcome(503, format!("transport error: {e}"));
                }
                continue;
            }
            let answered = match hop.host.parse::<IpAddr>() {
                Ok(ip) => Some(SocketAddr::new(ip, hop.port)),
                // A located TLS/WebSocket hop: its pinned address.
                Err(_) => self.dns.pins.get(&hop.host, hop.port),
            };
            if let Some(a) = answered {
                crate::lock(&self.server_addrs).insert(a);
            }
            if resp.status_code.kind() == StatusCodeKind::Successful {
                // RFC 3608 §6.1: each 2xx replaces the route (none when it has none); an
                // un-REGISTER ends it.
                *crate::lock(&self.service_route) = if self.expires == 0 {
                    Vec::new()
                } else {
                    service_routes(&resp.headers)
                };
            }
            return self.final_outcome(&resp);
        }
        self.outcome(408, "no response from registrar")
    }

    fn final_outcome(&self, resp: &Response) -> RegisterOutcome {
        let code = resp.status_code.code();
        let received = resp
            .via_header()
            .ok()
            .and_then(|v| SipConnection::parse_target_from_via(v).ok())
            .map(|(_, hp)| {
                let port = hp.port.map(|p| p.value()).unwrap_or(target::DEFAULT_PORT);
                let host = match hp.host {
                    Host::IpAddr(ip) => ip.to_string(),
                    Host::Domain(d) => d.to_string(),
                };
                HostPort::new(host, port)
            });
        let expires = if (200..300).contains(&code) {
            Some(granted_expires(resp, &self.contact, self.expires))
        } else {
            None
        };
        let min_expires = resp
            .min_expires_header()
            .and_then(|h| h.value().trim().parse().ok());
        RegisterOutcome {
            code,
            reason: reason_text(resp),
            expires,
            min_expires,
            received,
            contact: self.contact.clone(),
            reliable: self.transport.is_reliable(),
            websocket: self.transport.is_websocket(),
            allow_events: (200..300)
                .contains(&code)
                .then(|| allow_events(&resp.headers))
                .flatten(),
            server_params: if (200..300).contains(&code) {
                server_params(&resp.headers)
            } else {
                Vec::new()
            },
        }
    }
}

/// RFC 3261 §8.2.2.2: a request without To tag that matches one received lately by
/// Call-ID, From tag and CSeq but arrives in another transaction (top Via branch) is the
/// same request reaching us twice, e.g. forked by a proxy to two of our bindings; it gets
/// 482 (Loop Detected) instead of a second ringing call (or a transaction left without a
/// final answer). Entries live 32 s (64·T1, the longest a transaction lasts). Expired entries
/// are swept at most once a second and the table holds at most [`MERGED_MAX`] requests, so a
/// flood costs neither a scan per request nor unbounded memory (beyond the cap new requests
/// are simply not remembered).
#[derive(Debug, Default)]
struct MergedRequests {
    seen: HashMap<(String, String, String), (String, Instant)>,
    swept_at: Option<Instant>,
}

/// How long a request is remembered for merged-request detection.
const MERGED_FOR: Duration = Duration::from_secs(32);

/// How many requests merged-request detection remembers at most.
const MERGED_MAX: usize = 8192;

impl MergedRequests {
    fn is_merged(&mut self, req: &Request, now: Instant) -> bool {
        let h = |name: &str, compact: &str| header_value(&req.headers, name, compact);
        let to_tagged = h("To", "t").is_some_and(|t| {
            split_outside_quotes(&t, ';')
                .iter()
                .skip(1)
                .any(|p| p.trim().to_ascii_lowercase().starts_with("tag="))
        });
        let (Some(call_id), Some(from), Some(cseq), Some(via)) = (
            h("Call-ID", "i"),
            h("From", "f"),
            h("CSeq", ""),
            h("Via", "v"),
        ) else {
            return false;
        };
        if to_tagged {
            return false;
        }
        let from_tag = split_outside_quotes(&from, ';')
            .into_iter()
            .skip(1)
            .find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("tag")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        let first_via = split_outside_quotes(&via, ',')
            .into_iter()
            .next()
            .unwrap_or_default();
        let branch = split_outside_quotes(&first_via, ';')
            .into_iter()
            .skip(1)
            .find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("branch")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        if self
            .swept_at
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.seen
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < MERGED_FOR);
            self.swept_at = Some(now);
        }
        let key = (
            call_id,
            from_tag,
            cseq.split_whitespace().collect::<Vec<_>>().join(" "),
        );
        match self.seen.get(&key) {
            Some((b, at)) if now.saturating_duration_since(*at) < MERGED_FOR => *b != branch,
            _ => {
                if self.seen.len() < MERGED_MAX || self.seen.contains_key(&key) {
                    self.seen.insert(key, (branch, now));
                }
                false
            }
        }
    }
}

/// Remove the `rport` parameter from the top Via of an outgoing request (`use_rport` 0).
fn strip_rport(msg: &mut SipMessage) {
    let SipMessage::Request(req) = msg else {
        return;
    };
    for h in req.headers.iter_mut() {
        if let Header::Via(v) = h {
            let kept: Vec<String> = split_outside_quotes(v.value(), ';')
                .into_iter()
                .filter(|p| {
                    let name = p.split('=').next().unwrap_or("").trim();
                    !name.eq_ignore_ascii_case("rport")
                })
                .collect();
            *h = Header::Via(kept.join(";").into());
            return;
        }
    }
}

/// The Service-Route values of a REGISTER 2xx in order (RFC 3608 §5: one or more headers,
/// each a comma-separated list of name-addrs).
fn service_routes(headers: &rsipstack::sip::Headers) -> Vec<String> {
    headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Service-Route"))
        .flat_map(|h| split_outside_quotes(h.value(), ','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The digest user name: `auth_username` when set, else `username` (RFC 2617 §3.2.2).
fn digest_name(acc: &AccountConfig) -> String {
    acc.auth_username
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| acc.username.clone())
}

/// Every digest challenge of a 401/407 (RFC 3261 §22.2, §22.3), from the raw header
/// values (rsipstack's typed parser rejects RFC 7616 names such as `SHA-256`).
fn response_challenges(resp: &Response) -> Vec<crate::digest::Challenge> {
    let pairs: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect();
    crate::digest::parse_challenges(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}

/// `tx`'s request again with new credentials (RFC 3261 §22.2): CSeq `seq`, a new branch,
/// earlier `Authorization`/`Proxy-Authorization` replaced by `creds`. Not sent yet.
fn reauthorized(
    tx: &Transaction,
    seq: u32,
    creds: &[crate::digest::Credentials],
) -> Result<Transaction, String> {
    let mut req = tx.original.clone();
    req.cseq_header_mut()
        .and_then(|c| c.mut_seq(seq).map(|_| ()))
        .map_err(|e| e.to_string())?;
    let mut via = req
        .top_via_header()
        .and_then(|v| v.typed())
        .map_err(|e| e.to_string())?;
    via.params.retain(|p| !matches!(p, Param::Branch(_)));
    via.params.push(rsipstack::transaction::make_via_branch());
    req.headers.unique_push(via.into());
    req.headers
        .retain(|h| !matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)));
    insert_credentials(&mut req.headers, creds);
    let key =
        TransactionKey::from_request(&req, TransactionRole::Client).map_err(|e| e.to_string())?;
    let mut new_tx =
        Transaction::new_client(key, req, tx.endpoint_inner.clone(), tx.connection.clone());
    new_tx.destination = tx.destination.clone();
    Ok(new_tx)
}

/// Add credential headers before `Content-Length` (kept last for readability).
fn insert_credentials(headers: &mut rsipstack::sip::Headers, creds: &[crate::digest::Credentials]) {
    for c in creds {
        let h = if c.proxy {
            Header::ProxyAuthorization(c.value.clone().into())
        } else {
            Header::Authorization(c.value.clone().into())
        };
        headers.push(h);
    }
}

/// The lifetime of our binding (RFC 3261 §10.2.4): the `expires` parameter of the Contact
/// that is ours (or of the only Contact), else the `Expires` header, else what we asked for.
///
/// Contacts are scanned from the raw header text: registrars add parameters such as
/// Kamailio's `received="sip:1.2.3.4:5;transport=tcp"` that a strict parser rejects.
fn granted_expires(resp: &Response, ours: &HostPort, requested: u32) -> u32 {
    let contacts: Vec<(String, Option<u32>)> = resp
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Contact(c) => Some(c.value().to_string()),
            _ => None,
        })
        .flat_map(|v| split_outside_quotes(&v, ','))
        .map(|c| parse_contact_binding(&c))
        .collect();
    let ours_text = ours.to_string().to_ascii_lowercase();
    let default_port = ours.port == target::DEFAULT_PORT;
    let mine = contacts.iter().find(|(uri, _)| {
        let uri = uri.to_ascii_lowercase();
        let hostport = uri
            .split_once('@')
            .map(|(_, h)| h)
            .unwrap_or_else(|| uri.strip_prefix("sip:").unwrap_or(&uri));
        let hostport = hostport.split(';').next().unwrap_or("");
        hostport == ours_text || (default_port && hostport == ours.uri_host().to_ascii_lowercase())
    });
    let single = match contacts.as_slice() {
        [only] => Some(only),
        _ => None,
    };
    mine.or(single)
        .and_then(|(_, e)| *e)
        .or_else(|| {
            resp.expires_header()
                .and_then(|h| h.value().trim().parse().ok())
        })
        .unwrap_or(requested)
}

/// Split `s` at `sep` where it is outside double quotes and angle brackets.
fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && c == '<' {
            angle = true;
        } else if !quoted && c == '>' {
            angle = false;
        } else if !quoted && !angle && c == sep {
            parts.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
}

/// The URI and the `expires` parameter of one Contact value (RFC 3261 §20.10).
fn parse_contact_binding(c: &str) -> (String, Option<u32>) {
    let c = c.trim();
    let (uri, params) = match (c.find('<'), c.find('>')) {
        (Some(a), Some(b)) if a < b => (c[a + 1..b].to_string(), &c[b + 1..]),
        _ => match c.split_once(';') {
            Some((u, p)) => (u.to_string(), p),
            None => (c.to_string(), ""),
        },
    };
    let expires = split_outside_quotes(params, ';').into_iter().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("expires")
            .then(|| v.trim().trim_matches('"').parse().ok())
            .flatten()
    });
    (uri.trim().to_string(), expires)
}

/// The CSeq number of the INVITE that opened a call's dialog (what a PRACK's RAck names,
/// RFC 3262 §7.2).
fn invite_cseq(dialog: &InviteDialog) -> Option<u32> {
    dialog.initial_request().cseq_header().ok()?.seq().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(extra: &str) -> Response {
        let text = format!(
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx;rport=5070;received=10.0.0.2\r\n\
             From: <sip:1001@example.com>;tag=a\r\n\
             To: <sip:1001@example.com>;tag=b\r\n\
             CSeq: 2 REGISTER\r\n\
             Call-ID: x\r\n\
             {extra}\
             Content-Length: 0\r\n\r\n"
        );
        Response::try_from(text.as_str()).expect("valid response")
    }

    #[test]
    fn allow_events_of_every_header_lower_case_without_repeats() {
        let r = resp("Allow-Events: presence, Dialog\r\nu: message-summary,presence\r\n");
        assert_eq!(
            allow_events(&r.headers),
            Some(vec![
                "presence".to_string(),
                "dialog".to_string(),
                "message-summary".to_string()
            ])
        );
        assert_eq!(
            allow_events(&resp("").headers),
            None,
            "no header: not known"
        );
        assert_eq!(
            allow_events(&resp("Allow-Events: \r\n").headers),
            Some(vec![]),
            "an empty list says: none"
        );
    }

    #[test]
    fn granted_expires_prefers_our_contact() {
        let ours = HostPort::new("127.0.0.1", 5070);
        let r = resp(
            "Contact: <sip:1001@10.9.9.9:5060>;expires=60, <sip:1001@127.0.0.1:5070>;expires=1800\r\nExpires: 3600\r\n",
        );
        assert_eq!(granted_expires(&r, &ours, 600), 1800);
        let r = resp("Expires: 900\r\n");
        assert_eq!(granted_expires(&r, &ours, 600), 900);
        let r = resp("");
        assert_eq!(granted_expires(&r, &ours, 600), 600);
        // Kamailio over TCP: a quoted `received` with a `;` inside.
        let r = resp(
            "Contact: <sip:1001@127.0.0.1:5070;transport=TCP>;expires=20;received=\"sip:127.0.0.1:37350;transport=tcp\"\r\n",
        );
        assert_eq!(granted_expires(&r, &ours, 600), 20);
        let r = resp(
            "Contact: <sip:1001@10.0.0.1:5060>;received=\"sip:x;a=b, c\";expires=30, <sip:1001@127.0.0.1:5070>;expires=45\r\n",
        );
        assert_eq!(granted_expires(&r, &ours, 600), 45);
    }

    #[test]
    fn invite_failover_on_503_timeout_and_transport_error_only() {
        let c = CallKey(7);
        let fin = |code| StackEvent::Final {
            call: c,
            code,
            reason: String::new(),
            sdp: None,
            contact: None,
            session_expires: None,
            min_se: None,
        };
        assert_eq!(failover_trigger(&fin(503)), Some((c, true)));
        assert_eq!(failover_trigger(&fin(408)), Some((c, true)));
        for code in [200, 302, 404, 486, 500, 603] {
            assert_eq!(failover_trigger(&fin(code)), Some((c, false)), "{code}");
        }
        let failed = StackEvent::InviteFailed {
            call: c,
            error: "cannot reach".into(),
        };
        assert_eq!(failover_trigger(&failed), Some((c, true)));
        let early = StackEvent::Provisional {
            call: c,
            code: 180,
            reason: String::new(),
            sdp: None,
        };
        assert_eq!(failover_trigger(&early), Some((c, false)));
    }

    #[test]
    fn display_names_are_escaped() {
        assert_eq!(display_name("A \"B\" \\C\r\n"), "A \\\"B\\\" \\\\C");
    }

    #[test]
    fn dtmf_info_body() {
        let text = "INFO sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: q\r\nCSeq: 3 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n";
        let req = Request::try_from(text).expect("valid request");
        assert_eq!(dtmf_digit(&req), Some('5'));
    }

    #[test]
    fn session_interval_below_min_se_is_too_small() {
        let inv = |se: &str| {
            let text = format!("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: q\r\nCSeq: 1 INVITE\r\n{se}Content-Length: 0\r\n\r\n");
            Request::try_from(text.as_str()).expect("valid request")
        };
        assert!(session_interval_too_small(&inv("Session-Expires: 60\r\n")));
        assert!(session_interval_too_small(&inv("x: 89;refresher=uac\r\n")));
        assert!(!session_interval_too_small(&inv("Session-Expires: 90\r\n")));
        assert!(!session_interval_too_small(&inv("")));
    }

    #[test]
    fn uri_validation() {
        assert!(validate_uri("sip:1002@127.0.0.1:5070").is_ok());
        assert!(validate_uri("").is_err() || validate_uri("sip:").is_err());
    }

    fn request(ruri: &str, extra: &str) -> Request {
        let raw = format!(
            "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             To: <sip:a@example.com>\r\nFrom: <sip:b@example.com>;tag=1\r\nCall-ID: c\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Request::try_from(raw.as_str()).unwrap()
    }

    #[test]
    fn contact_over_wss_names_transport_ws_rfc7118_5_2() {
        let hp = HostPort::new("127.0.0.1", 35213);
        let wss = contact_string("1001", &hp, Transport::Wss);
        assert_eq!(wss, "sip:1001@127.0.0.1:35213;transport=ws");
        assert_eq!(contact_string("1001", &hp, Transport::Ws), wss);
        assert_eq!(
            contact_string("1001", &hp, Transport::Tls),
            "sip:1001@127.0.0.1:35213;transport=tls"
        );
        assert_eq!(
            contact_string("1001", &hp, Transport::Udp),
            "sip:1001@127.0.0.1:35213"
        );
    }

    #[test]
    fn unknown_uri_scheme_gets_416_and_unknown_require_420_rfc3261_8_2_2() {
        for ruri in [
            "tel:+4930123",
            "nobodyKnowsThisScheme:x",
            "soap.beep://192.0.2.1:3002",
        ] {
            assert_eq!(
                refuse_request(&request(ruri, "")).map(|r| r.0),
                Some(416),
                "{ruri}"
            );
        }
        let (code, headers) = refuse_request(&request(
            "sip:a@example.com",
            "Require: 100rel, foo,Bar\r\n",
        ))
        .unwrap();
        assert_eq!(code, 420);
        assert!(
            matches!(&headers[..], [Header::Unsupported(u)] if u.value() == "foo, Bar"),
            "{headers:?}"
        );
        // Proxy-Require is for proxies; a UA ignores it.
        assert!(refuse_request(&request("sip:a@example.com", "Proxy-Require: foo\r\n")).is_none());
    }

    #[test]
    fn replaces_timer_and_100rel_are_known_option_tags() {
        for require in ["Require: replaces\r\n", "Require: 100rel, timer\r\n", ""] {
            assert!(
                refuse_request(&request("sips:a@example.com", require)).is_none(),
                "{require}"
            );
        }
    }

    #[test]
    fn strip_rport_leaves_the_other_via_params() {
        let mut msg = SipMessage::Request(request("sip:a@example.com", ""));
        if let SipMessage::Request(r) = &mut msg {
            for h in r.headers.iter_mut() {
                if let Header::Via(_) = h {
                    *h = Header::Via(
                        "SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK1;RPORT=5;x=\"a;rport\""
                            .into(),
                    );
                }
            }
        }
        strip_rport(&mut msg);
        let SipMessage::Request(r) = msg else {
            unreachable!()
        };
        let via = r
            .headers
            .iter()
            .find_map(|h| match h {
                Header::Via(v) => Some(v.value().to_string()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            via,
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;x=\"a;rport\""
        );
    }

    fn invite(branch: &str, from_tag: &str, cseq: u32, to_tag: &str) -> Request {
        let raw = format!(
            "INVITE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch={branch}\r\n\
             To: <sip:a@example.com>{to_tag}\r\nFrom: <sip:b@example.com>;tag={from_tag}\r\n\
             Call-ID: merged-1\r\nCSeq: {cseq} INVITE\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        );
        Request::try_from(raw.as_str()).unwrap()
    }

    #[test]
    fn merged_request_from_a_fork_is_detected_rfc3261_8_2_2_2() {
        let t0 = Instant::now();
        let mut m = MergedRequests::default();
        assert!(!m.is_merged(&invite("z9hG4bK.0", "x", 2, ""), t0));
        // Same branch again (a retransmission the transaction layer let through): not merged.
        assert!(!m.is_merged(&invite("z9hG4bK.0", "x", 2, ""), t0));
        // The second branch of the fork: merged.
        assert!(m.is_merged(&invite("z9hG4bK.1", "x", 2, ""), t0));
        // Another CSeq, another From tag or a To tag (in-dialog): not merged.
        assert!(!m.is_merged(&invite("z9hG4bK.2", "x", 3, ""), t0));
        assert!(!m.is_merged(&invite("z9hG4bK.3", "y", 2, ""), t0));
        assert!(!m.is_merged(&invite("z9hG4bK.4", "x", 2, ";tag=t"), t0));
        // Forgotten after 32 s.
        assert!(!m.is_merged(&invite("z9hG4bK.5", "x", 2, ""), t0 + MERGED_FOR));
    }

    #[test]
    fn merged_request_table_stays_bounded_and_is_swept_once_a_second() {
        let t0 = Instant::now();
        let mut m = MergedRequests::default();
        for i in 0..(MERGED_MAX as u32 + 500) {
            assert!(!m.is_merged(&invite("z9hG4bK.f", &format!("f{i}"), 1, ""), t0));
        }
        assert_eq!(
            m.seen.len(),
            MERGED_MAX,
            "a flood fills the table only to its cap"
        );
        // Within the second nothing is swept; after 32 s everything is.
        assert!(!m.is_merged(&invite("z9hG4bK.g", "g", 1, ""), t0 + MERGED_FOR));
        assert!(m.seen.len() <= 1, "{}", m.seen.len());
        // An entry whose time is up is not a merge even before the next sweep.
        let t1 = t0 + MERGED_FOR + Duration::from_millis(100);
        assert!(!m.is_merged(&invite("z9hG4bK.h", "h", 1, ""), t1));
        let swept = t1 + MERGED_FOR - Duration::from_millis(500);
        assert!(!m.is_merged(&invite("z9hG4bK.j", "j", 1, ""), swept));
        assert!(m
            .seen
            .contains_key(&("merged-1".into(), "h".into(), "1 INVITE".into())));
        assert!(!m.is_merged(&invite("z9hG4bK.i", "h", 1, ""), t1 + MERGED_FOR));
    }
}
