//! [`IceTransport`]: the sans-IO ICE state machine of one media socket.
//!
//! It owns an `rtc-ice` [`Agent`] (connectivity checks and nomination, RFC 8445 §7-8) and, when
//! a STUN or TURN server is configured, an `rtc-turn` [`Client`] (STUN Binding for the
//! server-reflexive candidate, RFC 8445 §5.1.1.2; TURN Allocate, permissions, channels and
//! Send/Data indications for the relayed candidate, RFC 5766 §6-11).
//!
//! Every datagram that arrives on the media socket goes through [`IceTransport::handle_datagram`]:
//! - from a configured server: to the TURN client (responses, Data indications, ChannelData);
//!   relayed payloads come back out as if they had arrived from the peer directly (a STUN check
//!   goes to the agent on our relayed candidate, media is returned to the caller);
//! - STUN (RFC 7983 first byte 0-3 and the magic cookie) from elsewhere: a connectivity check or
//!   its answer, for the agent on our host candidate;
//! - anything else is media (RTP/RTCP, DTLS) and is returned to the caller.
//!
//! Outgoing media goes through [`IceTransport::send_media`]: to the selected pair once ICE has
//! one (through the relay when our side of the pair is the relayed candidate), before that and
//! without ICE to the address the caller gives (the peer's `c=`/`m=`, RFC 8445 §1 fallback).
//! What must go on the wire is collected by [`IceTransport::poll_transmit`]. Time is explicit
//! (`now` everywhere), so the state machine runs under virtual time in tests.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc_ice::agent::agent_config::AgentConfig;
use rtc_ice::candidate::candidate_host::CandidateHostConfig;
use rtc_ice::candidate::candidate_relay::CandidateRelayConfig;
use rtc_ice::candidate::candidate_server_reflexive::CandidateServerReflexiveConfig;
use rtc_ice::candidate::{unmarshal_candidate, Candidate, CandidateConfig, CandidateType};
use rtc_ice::mdns::MulticastDnsMode;
use rtc_ice::network_type::NetworkType;
use rtc_ice::state::ConnectionState;
use rtc_ice::{Agent, Event as AgentEvent};
use rtc_shared::{TransportContext, TransportMessage, TransportProtocol};
use rtc_turn::client::{Client, ClientConfig, Event as TurnEvent};
use sansio::Protocol;

use super::sdp::{LocalIce, RemoteIce};
use super::{IceConfig, IceError};
use crate::demux::{classify, PacketKind};

/// How often the agent runs its checks while connecting (RFC 8445 §14.2 suggests a pacing of
/// 50 ms for media; `rtc-ice` defaults to 200 ms).
const CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// The pair ICE chose for media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectedPair {
    /// Our candidate's type.
    pub local_type: LocalType,
    /// Our candidate's address (the relayed address for a relayed candidate).
    pub local: SocketAddr,
    /// The peer's candidate address: where media goes.
    pub remote: SocketAddr,
}

/// The type of our candidate in the selected pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalType {
    /// A host candidate (or a server/peer-reflexive one, which is sent from its host base).
    Host,
    /// Our TURN-relayed candidate: media goes through the TURN server.
    Relay,
}

/// What happened, for logs and the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    /// Our server-reflexive address (STUN Binding response).
    Reflexive(SocketAddr),
    /// Our relayed address (TURN Allocate success).
    Relayed(SocketAddr),
    /// A server did not answer or refused (binding, allocation).
    ServerFailed(String),
    /// Checks found and nominated a pair; media now goes there.
    Selected(SelectedPair),
    /// The checks failed: media stays on the `c=`/`m=` address.
    Failed,
}

/// The ICE state of one media socket. See the module documentation.
pub struct IceTransport {
    agent: Agent,
    turn: Option<Client>,
    /// The component this transport carries (1 = RTP, 2 = RTCP).
    component: u16,
    /// Our host candidate address; datagrams on the socket are attributed to it.
    host: SocketAddr,
    /// Addresses of the configured STUN/TURN servers: their datagrams go to the TURN client.
    servers: Vec<SocketAddr>,
    relay_only: bool,
    binding_pending: bool,
    allocate_pending: bool,
    srflx: Option<SocketAddr>,
    relay: Option<SocketAddr>,
    /// The checks were started (remote credentials known).
    started: bool,
    selected: Option<SelectedPair>,
    failed: bool,
    out: VecDeque<(Vec<u8>, SocketAddr)>,
    events: VecDeque<IceEvent>,
}

impl std::fmt::Debug for IceTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceTransport")
            .field("host", &self.host)
            .field("srflx", &self.srflx)
            .field("relay", &self.relay)
            .field("started", &self.started)
            .field("selected", &self.selected)
            .field("failed", &self.failed)
            .finish()
    }
}

fn agent_err(e: impl std::fmt::Display) -> IceError {
    IceError::Agent(e.to_string())
}

fn tagged(
    now: Instant,
    local: SocketAddr,
    peer: SocketAddr,
    data: &[u8],
) -> TransportMessage<BytesMut> {
    TransportMessage {
        now,
        transport: TransportContext {
            local_addr: local,
            peer_addr: peer,
            transport_protocol: TransportProtocol::UDP,
            ecn: None,
        },
        message: BytesMut::from(data),
    }
}

impl IceTransport {
    /// Create the agent for the socket bound at `host` (a real address, not `0.0.0.0`), and
    /// start the STUN Binding and TURN Allocate requests of `cfg`
    /// ([`IceTransport::poll_transmit`] has them).
    pub fn new(cfg: &IceConfig, host: SocketAddr, now: Instant) -> Result<IceTransport, IceError> {
        Self::new_component(cfg, host, 1, None, now)
    }

    /// [`IceTransport::new`] for one component of the stream (1 = RTP, 2 = RTCP on its own
    /// socket, RFC 8445 §5.1.1). The components of a stream share the ICE credentials
    /// (RFC 8839 §5.4): pass the first component's as `credentials`.
    pub fn new_component(
        cfg: &IceConfig,
        host: SocketAddr,
        component: u16,
        credentials: Option<(String, String)>,
        now: Instant,
    ) -> Result<IceTransport, IceError> {
        let provider = rtc_ice::crypto::default_provider().map_err(agent_err)?;
        // Server-reflexive also without a STUN server: a router's forward is one
        // ([`IceTransport::add_mapped`]).
        let mut candidate_types = vec![CandidateType::Host, CandidateType::ServerReflexive];
        if cfg.turn.is_some() {
            candidate_types.push(CandidateType::Relay);
        }
        let (local_ufrag, local_pwd) = credentials.unwrap_or_default();
        let agent_cfg = AgentConfig {
            local_ufrag,
            local_pwd,
            multicast_dns_mode: MulticastDnsMode::Disabled,
            network_types: vec![NetworkType::Udp4, NetworkType::Udp6],
            candidate_types,
            check_interval: CHECK_INTERVAL,
            // Nominate a relayed pair as soon as it is valid (the default waits 2 s).
            relay_acceptance_min_wait: Some(Duration::from_millis(200)),
            ..AgentConfig::default()
        };
        let agent = Agent::new(now, Arc::new(agent_cfg), provider.clone()).map_err(agent_err)?;
        let mut servers = Vec::new();
        let turn = if cfg.stun.is_some() || cfg.turn.is_some() {
            let (username, password, turn_addr) = match &cfg.turn {
                Some(t) => (t.username.clone(), t.password.clone(), t.addr.to_string()),
                None => (String::new(), String::new(), String::new()),
            };
            let client = Client::new(
                ClientConfig {
                    stun_serv_addr: cfg.stun.map(|a| a.to_string()).unwrap_or_default(),
                    turn_serv_addr: turn_addr,
                    local_addr: host,
                    // Over TCP (through [`super::turn_tcp`]) requests are not retransmitted.
                    transport_protocol: if cfg.turn.as_ref().is_some_and(|t| t.tcp) {
                        TransportProtocol::TCP
                    } else {
                        TransportProtocol::UDP
                    },
                    username,
                    password,
                    realm: String::new(),
                    software: String::new(),
                    rto_in_ms: 0,
                    allocation_refresh_interval_cap: None,
                },
                provider,
            )
            .map_err(agent_err)?;
            servers.extend(cfg.stun);
            servers.extend(cfg.turn.as_ref().map(|t| t.addr));
            Some(client)
        } else {
            None
        };
        let mut t = IceTransport {
            agent,
            turn,
            component,
            host,
            servers,
            relay_only: cfg.relay_only && cfg.turn.is_some(),
            binding_pending: false,
            allocate_pending: false,
            srflx: None,
            relay: None,
            started: false,
            selected: None,
            failed: false,
            out: VecDeque::new(),
            events: VecDeque::new(),
        };
        if !t.relay_only {
            let c = CandidateHostConfig {
                base_config: base_config(host, component),
                ..Default::default()
            }
            .new_candidate_host()
            .map_err(agent_err)?;
            t.agent.add_local_candidate(c).map_err(agent_err)?;
        }
        if let Some(client) = t.turn.as_mut() {
            if cfg.stun.is_some() && !t.relay_only {
                client.send_binding_request(now).map_err(agent_err)?;
                t.binding_pending = true;
            }
            if cfg.turn.is_some() {
                client.allocate(now).map_err(agent_err)?;
                t.allocate_pending = true;
            }
        }
        t.pump_turn(now);
        Ok(t)
    }

    /// Whether every STUN/TURN request of gathering has been answered (or has failed).
    pub fn gathering_done(&self) -> bool {
        !self.binding_pending && !self.allocate_pending
    }

    /// Our server-reflexive address, if STUN gave one.
    pub fn reflexive_addr(&self) -> Option<SocketAddr> {
        self.srflx
    }

    /// Our relayed address, if TURN gave one.
    pub fn relayed_addr(&self) -> Option<SocketAddr> {
        self.relay
    }

    /// The address for `c=`/`m=` (RFC 8839 §4.2.1.1, the default candidate): the relayed one
    /// when only relayed media is wanted, else the server-reflexive one (what a non-ICE peer
    /// behind the same kind of NAT can reach), else the host address.
    pub fn default_addr(&self) -> SocketAddr {
        if self.relay_only {
            if let Some(r) = self.relay {
                return r;
            }
        }
        self.srflx.unwrap_or(self.host)
    }

    /// Our ICE attributes for the SDP (after gathering).
    pub fn local_sdp(&self) -> LocalIce {
        let creds = self.agent.get_local_credentials();
        LocalIce {
            ufrag: creds.ufrag.clone(),
            pwd: creds.pwd.clone(),
            candidates: self
                .agent
                .get_local_candidates()
                .iter()
                .map(Candidate::marshal)
                .collect(),
            rtcp: None,
        }
    }

    /// The selected pair, once the checks have nominated one.
    pub fn selected(&self) -> Option<SelectedPair> {
        self.selected
    }

    /// The peer's ICE attributes: add its candidates and start the checks, controlling when we
    /// made the offer (RFC 8445 §6.1.1; against an `ice-lite` peer we always control, §6.1.1).
    pub fn set_remote(
        &mut self,
        remote: &RemoteIce,
        offerer: bool,
        now: Instant,
    ) -> Result<(), IceError> {
        if self.started {
            return Ok(());
        }
        for line in &remote.candidates {
            let c = match unmarshal_candidate(line) {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(candidate = %line, error = %e, "ignoring remote candidate");
                    continue;
                }
            };
            // Our component only; TCP candidates are not gathered on our side.
            if c.component() != self.component || c.network_type().is_tcp() {
                continue;
            }
            if c.addr().is_ipv4() != self.host.is_ipv4() {
                continue;
            }
            let addr = c.addr();
            if let Err(e) = self.agent.add_remote_candidate(c) {
                tracing::debug!(candidate = %line, error = %e, "remote candidate refused");
                continue;
            }
            self.permit(addr, now);
        }
        self.agent
            .start_connectivity_checks(
                now,
                offerer || remote.lite,
                remote.ufrag.clone(),
                remote.pwd.clone(),
            )
            .map_err(agent_err)?;
        self.started = true;
        self.pump(now);
        Ok(())
    }

    /// The peer's credentials the checks run with (`None` before [`IceTransport::set_remote`]).
    pub fn remote_credentials(&self) -> Option<(String, String)> {
        self.agent
            .get_remote_credentials()
            .map(|c| (c.ufrag.clone(), c.pwd.clone()))
    }

    /// The peer's ICE attributes of a later offer or answer in the session (RFC 8839 §4.4.1):
    /// - checks not started yet (a new socket after a network move, its answer now here):
    ///   they start, as with [`IceTransport::set_remote`];
    /// - the same `ice-ufrag`/`ice-pwd` as before: no restart, nothing changes;
    /// - new ones: an ICE restart (RFC 8445 §9). Our credentials become `local` (the ones the
    ///   answer or offer carrying this restart names; both change in a restart, §9), our
    ///   candidates stay (same socket), the peer's are replaced and the checks run again,
    ///   controlling when we made the offer of this exchange (or the peer is lite). Media
    ///   keeps using the old pair until a new one is selected.
    ///
    /// Returns whether the checks were (re)started.
    pub fn update_remote(
        &mut self,
        remote: &RemoteIce,
        offerer: bool,
        local: Option<(String, String)>,
        now: Instant,
    ) -> Result<bool, IceError> {
        if !self.started {
            if let Some((ufrag, pwd)) = local {
                self.agent
                    .restart(now, ufrag, pwd, true)
                    .map_err(agent_err)?;
            }
            self.set_remote(remote, offerer, now)?;
            return Ok(true);
        }
        let same = self
            .agent
            .get_remote_credentials()
            .is_some_and(|c| c.ufrag == remote.ufrag && c.pwd == remote.pwd);
        if same {
            return Ok(false);
        }
        let (ufrag, pwd) = local.unwrap_or_else(|| {
            let c = self.agent.get_local_credentials();
            (c.ufrag.clone(), c.pwd.clone())
        });
        tracing::info!(
            remote_ufrag = %remote.ufrag,
            local_ufrag = %ufrag,
            offerer,
            "ICE restart"
        );
        self.agent
            .restart(now, ufrag, pwd, true)
            .map_err(agent_err)?;
        self.started = false;
        self.failed = false;
        self.set_remote(remote, offerer, now)?;
        Ok(true)
    }

    /// Ask the TURN server to let `peer` reach our relayed address (RFC 5766 §9).
    fn permit(&mut self, peer: SocketAddr, now: Instant) {
        let (Some(relay), Some(client)) = (self.relay, self.turn.as_mut()) else {
            return;
        };
        if let Ok(mut r) = client.relay(relay) {
            if let Err(e) = r.create_permission(now, peer) {
                tracing::debug!(%peer, error = %e, "TURN CreatePermission failed");
            }
        }
    }

    /// Sort one datagram that arrived on the media socket from `from`. Returns the media it
    /// carried (and the peer address it came from) for the RTP/DTLS layers; `None` when ICE
    /// consumed it.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        data: &'a [u8],
        from: SocketAddr,
    ) -> Option<(Cow<'a, [u8]>, SocketAddr)> {
        if self.servers.contains(&from)
            && matches!(classify(data), PacketKind::Stun | PacketKind::TurnChannel)
        {
            let media = self.on_server_datagram(now, data, from);
            self.pump(now);
            return media.map(|(d, f)| (Cow::Owned(d), f));
        }
        if classify(data) == PacketKind::Stun && rtc_stun::message::is_stun_message(data) {
            if let Err(e) = self.agent.handle_read(tagged(now, self.host, from, data)) {
                tracing::trace!(%from, error = %e, "STUN on the media socket not for ICE");
            }
            self.pump(now);
            return None;
        }
        self.note_media(now, self.host, from);
        Some((Cow::Borrowed(data), from))
    }

    /// Media from `peer`: keeps the pair alive (RFC 7675 counts any authenticated traffic; the
    /// agent counts packets from known candidates).
    fn note_media(&mut self, now: Instant, local: SocketAddr, peer: SocketAddr) {
        if self.started {
            let _ = self.agent.is_valid_non_stun_traffic(
                now,
                TransportContext {
                    local_addr: local,
                    peer_addr: peer,
                    transport_protocol: TransportProtocol::UDP,
                    ecn: None,
                },
            );
        }
    }

    fn on_server_datagram(
        &mut self,
        now: Instant,
        data: &[u8],
        from: SocketAddr,
    ) -> Option<(Vec<u8>, SocketAddr)> {
        let client = self.turn.as_mut()?;
        if let Err(e) = client.handle_read(tagged(now, self.host, from, data)) {
            tracing::debug!(%from, error = %e, "STUN/TURN server datagram not handled");
        }
        let mut media = None;
        while let Some(ev) = self.turn.as_mut().and_then(|c| c.poll_event()) {
            match ev {
                TurnEvent::DataIndicationOrChannelData(_, peer, payload) => {
                    let Some(relay) = self.relay else { continue };
                    if rtc_stun::message::is_stun_message(&payload) {
                        if let Err(e) = self.agent.handle_read(tagged(now, relay, peer, &payload)) {
                            tracing::trace!(%peer, error = %e, "relayed STUN not for ICE");
                        }
                    } else {
                        self.note_media(now, relay, peer);
                        // One datagram carries one relayed payload.
                        media = Some((payload.to_vec(), peer));
                    }
                }
                other => self.on_turn_event(now, other),
            }
        }
        media
    }

    /// A router forwards `public` to our host candidate (a UPnP port mapping): offered as a
    /// server-reflexive candidate with the host as its base (RFC 8445 §5.1.1.2), and the
    /// default address when STUN found none.
    pub fn add_mapped(&mut self, public: SocketAddr) {
        if public == self.host || self.srflx == Some(public) {
            return;
        }
        self.add_reflexive(public);
        if self.srflx.is_none() {
            self.srflx = Some(public);
        }
    }

    /// A server-reflexive candidate at `public` whose base is the host candidate.
    fn add_reflexive(&mut self, public: SocketAddr) {
        let c = CandidateServerReflexiveConfig {
            base_config: base_config(public, self.component),
            rel_addr: self.host.ip().to_string(),
            rel_port: self.host.port(),
            url: None,
        }
        .new_candidate_server_reflexive();
        self.add_local(c);
    }

    fn on_turn_event(&mut self, now: Instant, ev: TurnEvent) {
        match ev {
            TurnEvent::BindingResponse(_, mapped) => {
                self.binding_pending = false;
                tracing::info!(%mapped, "STUN: server-reflexive address");
                self.events.push_back(IceEvent::Reflexive(mapped));
                if mapped != self.host && self.srflx.is_none() {
                    self.srflx = Some(mapped);
                    self.add_reflexive(mapped);
                }
            }
            TurnEvent::BindingError(_, e) => {
                self.binding_pending = false;
                tracing::warn!(error = %e, "STUN binding failed");
                self.events
                    .push_back(IceEvent::ServerFailed(format!("STUN: {e}")));
            }
            TurnEvent::AllocateResponse(_, relayed) => {
                self.allocate_pending = false;
                tracing::info!(%relayed, "TURN: relayed address allocated");
                self.events.push_back(IceEvent::Relayed(relayed));
                self.relay = Some(relayed);
                let base = self.srflx.unwrap_or(self.host);
                let c = CandidateRelayConfig {
                    base_config: base_config(relayed, self.component),
                    rel_addr: base.ip().to_string(),
                    rel_port: base.port(),
                    url: None,
                }
                .new_candidate_relay();
                self.add_local(c);
                if self.relay_only {
                    tracing::debug!("relay-only ICE policy: host candidate not offered");
                }
                let _ = now;
            }
            TurnEvent::AllocateError(_, e) => {
                self.allocate_pending = false;
                tracing::warn!(error = %e, "TURN allocation failed");
                self.events
                    .push_back(IceEvent::ServerFailed(format!("TURN: {e}")));
                if self.relay_only {
                    // Without a relay the call would have no candidate at all.
                    self.relay_only = false;
                    self.add_host_candidate();
                }
            }
            TurnEvent::TransactionTimeout(_) => {
                // Which one timed out is not said; both gathering requests end here.
                if self.binding_pending || self.allocate_pending {
                    tracing::warn!("STUN/TURN server did not answer");
                    self.events.push_back(IceEvent::ServerFailed(
                        "no answer from the STUN/TURN server".into(),
                    ));
                }
                self.binding_pending = false;
                if self.allocate_pending {
                    self.allocate_pending = false;
                    if self.relay_only {
                        self.relay_only = false;
                        self.add_host_candidate();
                    }
                }
            }
            TurnEvent::CreatePermissionResponse(_, peer) => {
                tracing::debug!(%peer, "TURN permission installed");
            }
            TurnEvent::CreatePermissionError(_, e) => {
                tracing::debug!(error = %e, "TURN CreatePermission refused");
            }
            _ => {}
        }
    }

    fn add_host_candidate(&mut self) {
        let c = CandidateHostConfig {
            base_config: base_config(self.host, self.component),
            ..Default::default()
        }
        .new_candidate_host();
        self.add_local(c);
    }

    fn add_local(&mut self, c: Result<Candidate, rtc_shared::error::Error>) {
        match c.map(|c| self.agent.add_local_candidate(c)) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) | Err(e) => tracing::warn!(error = %e, "local candidate not added"),
        }
    }

    /// Queue one media datagram for `to` (the negotiated or latched address): it goes to the
    /// selected pair instead when ICE has one.
    pub fn send_media(&mut self, now: Instant, data: &[u8], to: SocketAddr) {
        match self.selected {
            Some(SelectedPair {
                local_type: LocalType::Relay,
                local,
                remote,
            }) => self.relay_send(now, local, remote, data),
            Some(p) => self.out.push_back((data.to_vec(), p.remote)),
            None => match self.relay.filter(|_| self.relay_only) {
                // Only the relayed address was offered: the peer's answers come through it,
                // so our media does too (a non-ICE peer sends to our `c=`, the relay).
                Some(relay) => self.relay_send(now, relay, to, data),
                None => self.out.push_back((data.to_vec(), to)),
            },
        }
        self.pump_turn(now);
    }

    /// Send through our allocation to `peer`, installing the permission when it is missing
    /// (the datagram is dropped then; checks retransmit, RTP is real-time anyway).
    fn relay_send(&mut self, now: Instant, relay: SocketAddr, peer: SocketAddr, data: &[u8]) {
        let Some(client) = self.turn.as_mut() else {
            return;
        };
        let Ok(mut r) = client.relay(relay) else {
            return;
        };
        match r.send_to(now, data, peer) {
            Ok(()) => {}
            Err(rtc_shared::error::Error::ErrNoPermission) => {
                let _ = r.create_permission(now, peer);
            }
            Err(e) => tracing::trace!(%peer, error = %e, "TURN send failed"),
        }
    }

    /// Release our TURN allocation (a Refresh with lifetime 0, RFC 5766 §7) at the end of the
    /// call; [`IceTransport::poll_transmit`] has the request.
    pub fn close(&mut self, now: Instant) {
        if let (Some(relay), Some(client)) = (self.relay, self.turn.as_mut()) {
            if let Ok(mut r) = client.relay(relay) {
                if let Err(e) = r.close(now) {
                    tracing::debug!(error = %e, "TURN deallocation not sent");
                }
            }
        }
        self.pump_turn(now);
    }

    /// Run the timers (check pacing, retransmissions, keepalives, TURN refreshes) due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(e) = self.agent.handle_timeout(now) {
            tracing::trace!(error = %e, "ICE agent timeout");
        }
        if let Some(c) = self.turn.as_mut() {
            if let Err(e) = c.handle_timeout(now) {
                tracing::trace!(error = %e, "TURN client timeout");
            }
        }
        self.pump(now);
    }

    /// When [`IceTransport::handle_timeout`] should run next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let a = self.agent.poll_timeout();
        let t = self.turn.as_mut().and_then(|c| c.poll_timeout());
        [a, t].into_iter().flatten().min()
    }

    /// The next datagram to send on the media socket, and where.
    pub fn poll_transmit(&mut self) -> Option<(Vec<u8>, SocketAddr)> {
        self.out.pop_front()
    }

    /// The next [`IceEvent`].
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// Move the agent's and the client's output to our queue.
    fn pump(&mut self, now: Instant) {
        while let Some(w) = self.agent.poll_write() {
            let (local, peer) = (w.transport.local_addr, w.transport.peer_addr);
            match self.relay {
                Some(relay) if local == relay => self.relay_send(now, relay, peer, &w.message),
                _ => self.out.push_back((w.message.to_vec(), peer)),
            }
        }
        while let Some(ev) = self.agent.poll_event() {
            match ev.event {
                AgentEvent::SelectedCandidatePairChange(local, remote) => {
                    let local_type = if local.candidate_type() == CandidateType::Relay {
                        LocalType::Relay
                    } else {
                        LocalType::Host
                    };
                    let pair = SelectedPair {
                        local_type,
                        local: local.addr(),
                        remote: remote.addr(),
                    };
                    tracing::info!(?pair, "ICE: pair selected");
                    self.selected = Some(pair);
                    self.events.push_back(IceEvent::Selected(pair));
                }
                AgentEvent::ConnectionStateChange(ConnectionState::Failed) => {
                    if !self.failed && self.selected.is_none() {
                        tracing::warn!("ICE checks failed: media stays on the c=/m= address");
                        self.events.push_back(IceEvent::Failed);
                    }
                    self.failed = true;
                }
                AgentEvent::ConnectionStateChange(s) => tracing::debug!(state = %s, "ICE state"),
                _ => {}
            }
        }
        self.pump_turn(now);
    }

    fn pump_turn(&mut self, now: Instant) {
        let mut events = Vec::new();
        if let Some(c) = self.turn.as_mut() {
            while let Some(w) = c.poll_write() {
                self.out
                    .push_back((w.message.to_vec(), w.transport.peer_addr));
            }
            while let Some(ev) = c.poll_event() {
                events.push(ev);
            }
        }
        for ev in events {
            match ev {
                TurnEvent::DataIndicationOrChannelData(..) => {}
                other => self.on_turn_event(now, other),
            }
        }
        if let Some(c) = self.turn.as_mut() {
            while let Some(w) = c.poll_write() {
                self.out
                    .push_back((w.message.to_vec(), w.transport.peer_addr));
            }
        }
    }
}

fn base_config(addr: SocketAddr, component: u16) -> CandidateConfig {
    CandidateConfig {
        network: "udp".to_owned(),
        address: addr.ip().to_string(),
        port: addr.port(),
        component,
        ..Default::default()
    }
}
