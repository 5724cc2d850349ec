//! The tokio driver: a UDP socket and a 20 ms clock around [`MediaPipeline`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::pipeline::{MediaAlarm, MediaEvent, MediaPipeline, Outgoing, PipelineConfig};
use crate::stats::MediaStats;
use crate::{Negotiated, PcmSink, PcmSource, PTIME_MS};

/// A UDP socket for RTP, bound before the SDP is written because the SDP carries its port.
#[derive(Debug)]
pub struct RtpSocket {
    socket: UdpSocket,
    local: SocketAddr,
    /// The RTCP socket on the RTP port + 1 (RFC 3550 §11), when that port could be had.
    rtcp: Option<UdpSocket>,
    /// ICE on this socket ([`crate::ice`]), after [`RtpSocket::gather_ice`]. Boxed (like
    /// `ice_rtcp`): the agent is about 2 KiB, and most calls go without ICE.
    ice: Option<Box<crate::ice::IceTransport>>,
    /// ICE component 2 on the RTCP socket, for peers that decline rtcp-mux.
    ice_rtcp: Option<Box<crate::ice::IceTransport>>,
    /// `"\r\n"` datagrams sent to the peer when media starts (`natopenpackets`).
    nat_open_packets: u8,
    /// The address a router forwards to this socket (a UPnP port mapping), for the SDP.
    public: Option<SocketAddr>,
    /// Stand-ins for a TURN server reached over TCP, one per ICE component
    /// ([`crate::ice::turn_tcp`]); they live as long as the call.
    turn_tcp: Vec<crate::ice::turn_tcp::TurnTcp>,
}

/// Even ports tried from a base port ([`RtpSocket::bind_from`]): room for as many calls.
pub const BASE_PORT_TRIES: u32 = 1000;

impl RtpSocket {
    /// Bind on `ip`. With a port range, an even port of the range is chosen (RFC 3550 §11: RTP
    /// uses an even port, RTCP the odd one above, which is bound too when free), starting at a
    /// random place in the range; `AddrInUse` if every even port is taken. Without a range the
    /// system picks the port; we retry a few times for an even one with its odd neighbour free.
    pub async fn bind(ip: IpAddr, port_range: Option<(u16, u16)>) -> io::Result<RtpSocket> {
        let Some((lo, hi)) = port_range else {
            let mut last = None;
            for _ in 0..RTCP_PAIR_ATTEMPTS {
                let s = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
                let port = s.local_addr()?.port();
                if port % 2 == 0 && port < u16::MAX {
                    if let Ok(r) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await {
                        return Self::from_pair(s, Some(r));
                    }
                }
                last = Some(s);
            }
            return match last {
                Some(s) => Self::from_tokio(s),
                None => Self::from_tokio(UdpSocket::bind(SocketAddr::new(ip, 0)).await?),
            };
        };
        let first_even = lo.saturating_add(lo % 2);
        if lo == 0 || hi < first_even {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no even port in range {lo}-{hi}"),
            ));
        }
        let count = u32::from((hi - first_even) / 2) + 1;
        let start = rand::random::<u32>() % count;
        let mut last_err = None;
        for i in 0..count {
            let port = u32::from(first_even) + 2 * ((start + i) % count);
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(s) => {
                    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.saturating_add(1)))
                        .await
                        .ok();
                    return Self::from_pair(s, rtcp);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no free even port")))
    }

    /// Bind a free even port of the [`BASE_PORT_TRIES`] even ports from `base` (an odd base
    /// starts at the even port above), with the RTCP port above when free (RFC 3550 §11).
    /// The search starts at the `start`-th of them and wraps around, so a caller that passes
    /// the one after its last port hands out the base first and then the following ports in
    /// turn, without probing every busy port again. `AddrInUse` when none is free.
    pub async fn bind_from(ip: IpAddr, base: u16, start: u32) -> io::Result<RtpSocket> {
        let first = u32::from(base) + u32::from(base % 2);
        let mut last_err = None;
        for i in 0..BASE_PORT_TRIES {
            let index = (start + i) % BASE_PORT_TRIES;
            let Ok(port) = u16::try_from(first + 2 * index) else {
                continue;
            };
            if port == 0 || port == u16::MAX {
                continue;
            }
            match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(s) => {
                    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await.ok();
                    return Self::from_pair(s, rtcp);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("no free even port from {base}"),
            )
        }))
    }

    /// Wrap an already bound tokio socket.
    pub fn from_tokio(socket: UdpSocket) -> io::Result<RtpSocket> {
        Self::from_pair(socket, None)
    }

    /// Wrap an RTP socket and its RTCP socket (RFC 3550 §11).
    pub fn from_pair(socket: UdpSocket, rtcp: Option<UdpSocket>) -> io::Result<RtpSocket> {
        let local = socket.local_addr()?;
        Ok(RtpSocket {
            socket,
            local,
            rtcp,
            ice: None,
            ice_rtcp: None,
            nat_open_packets: 0,
            public: None,
            turn_tcp: Vec::new(),
        })
    }

    /// Gather ICE candidates on this socket ([`crate::ice::gather`]; takes up to
    /// `cfg.gather_timeout` when a server is slow). `host` is the address the SDP shows for the
    /// socket (the bound one unless that is unspecified). On failure the call goes without ICE.
    /// With an RTCP socket, RTCP gets its own component (2) with the same credentials,
    /// gathered at the same time; it is dropped when the peer accepts rtcp-mux.
    pub async fn gather_ice(&mut self, cfg: &crate::ice::IceConfig, host: SocketAddr) {
        use crate::ice::{gather, IceTransport};
        let rtcp_host = self
            .rtcp
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .map(|a| SocketAddr::new(host.ip(), a.port()));
        // Each component reaches a TCP TURN server through its own stand-in (connected at
        // the same time, so a silent server costs one `gather_timeout`).
        let tcp = cfg.turn.as_ref().is_some_and(|t| t.tcp);
        let ((cfg, rtp_shim), rtcp_cfg) = tokio::join!(through_turn_tcp(cfg, host), async {
            match rtcp_host {
                Some(h) if tcp => Some(through_turn_tcp(cfg, h).await),
                _ => None,
            }
        });
        self.turn_tcp.extend(rtp_shim);
        let rtcp_cfg = rtcp_cfg.map(|(c, shim)| {
            self.turn_tcp.extend(shim);
            c
        });
        let cfg = &cfg;
        let rtcp_cfg = rtcp_cfg.as_ref().unwrap_or(cfg);
        let now = Instant::now().into_std();
        let mut rtp = match IceTransport::new(cfg, host, now) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "ICE unavailable for this call");
                return;
            }
        };
        let creds = rtp.local_sdp();
        let mut rtcp = rtcp_host.and_then(|rtcp_host| {
            IceTransport::new_component(rtcp_cfg, rtcp_host, 2, Some((creds.ufrag, creds.pwd)), now)
                .map_err(|e| tracing::debug!(error = %e, "no ICE component for RTCP"))
                .ok()
        });
        match (self.rtcp.as_ref(), rtcp.as_mut()) {
            (Some(sock), Some(t)) => {
                tokio::join!(
                    gather::run(&self.socket, &mut rtp, cfg),
                    gather::run(sock, t, rtcp_cfg)
                );
            }
            _ => gather::run(&self.socket, &mut rtp, cfg).await,
        }
        if let Some(public) = self.public {
            rtp.add_mapped(public);
        }
        self.ice = Some(Box::new(rtp));
        self.ice_rtcp = rtcp.map(Box::new);
    }

    /// Whether ICE candidates were gathered for this socket.
    pub fn has_ice(&self) -> bool {
        self.ice.is_some()
    }

    /// The address for the SDP's `c=`/`m=`: ICE's default candidate, else the router's
    /// forward ([`RtpSocket::set_public_addr`]), else `fallback` (the engine's address for
    /// the socket).
    pub fn sdp_addr(&self, fallback: SocketAddr) -> SocketAddr {
        match &self.ice {
            Some(i) => i.default_addr(),
            None => self.public.unwrap_or(fallback),
        }
    }

    /// A router forwards `public` to this socket (a UPnP port mapping): the SDP shows it,
    /// and ICE, when gathered afterwards, offers it as a server-reflexive candidate.
    pub fn set_public_addr(&mut self, public: SocketAddr) {
        self.public = Some(public);
    }

    /// Add our ICE attributes to an SDP written for this socket (unchanged without ICE).
    pub fn add_ice_to_sdp(&self, sdp: &str, offer: bool) -> String {
        match self.local_ice() {
            Some(ice) => crate::ice::sdp::add_attributes(sdp, &ice, offer),
            None => sdp.to_owned(),
        }
    }

    /// Our ICE attributes: both components' candidates, and `a=rtcp` for component 2.
    fn local_ice(&self) -> Option<crate::ice::sdp::LocalIce> {
        let mut ice = self.ice.as_ref()?.local_sdp();
        if let Some(rtcp) = &self.ice_rtcp {
            ice.candidates.extend(rtcp.local_sdp().candidates);
            ice.rtcp = Some(rtcp.default_addr());
        }
        Some(ice)
    }

    /// Apply the peer's SDP (answer or offer): with ICE attributes the checks start (we control
    /// when we are the offerer); without them ICE is dropped and media is plain RTP to `c=`/`m=`,
    /// unless only our relayed address was offered (then media keeps going through the relay).
    pub fn apply_remote_ice(&mut self, remote_sdp: &str, offerer: bool) {
        let remote = crate::ice::sdp::remote_ice(remote_sdp);
        let now = Instant::now().into_std();
        if let Some(mut rtcp) = self.ice_rtcp.take() {
            let keep = match &remote {
                Some(r) => !r.rtcp_mux,
                None => rtcp.relayed_addr() == Some(rtcp.default_addr()),
            };
            if keep {
                if let Some(r) = &remote {
                    if let Err(e) = rtcp.set_remote(r, offerer, now) {
                        tracing::warn!(error = %e, "ICE checks for RTCP not started");
                    }
                }
                self.ice_rtcp = Some(rtcp);
            } else if let Some(sock) = &self.rtcp {
                // rtcp-mux (or no ICE): component 2 is not needed; release its allocation.
                rtcp.close(now);
                while let Some((data, to)) = rtcp.poll_transmit() {
                    let _ = sock.try_send_to(&data, to);
                }
            }
        }
        let Some(ice) = self.ice.as_mut() else { return };
        match remote {
            Some(remote) => {
                if let Err(e) = ice.set_remote(&remote, offerer, now) {
                    tracing::warn!(error = %e, "ICE checks not started");
                }
            }
            None if ice.relayed_addr() == Some(ice.default_addr()) => {
                tracing::info!("peer without ICE: media through our TURN relay");
            }
            None => {
                tracing::info!("peer without ICE: plain RTP to its c=/m= address");
                ice.close(Instant::now().into_std());
                while let Some((data, to)) = ice.poll_transmit() {
                    let _ = self.socket.try_send_to(&data, to);
                }
                self.ice = None;
            }
        }
    }

    /// Send `n` (at most 10) short `"\r\n"` datagrams to the peer when media starts, to open
    /// NAT bindings and firewalls on the media path (`natopenpackets`; 0 = off).
    pub fn set_nat_open_packets(&mut self, n: u8) {
        self.nat_open_packets = n.min(10);
    }

    /// The bound RTCP address, if an RTCP socket is open (without one, RTCP works only with
    /// rtcp-mux).
    pub fn rtcp_addr(&self) -> Option<SocketAddr> {
        self.rtcp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// The bound address (as bound: `0.0.0.0` stays unspecified, the SDP needs a real one).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Drop datagrams that arrived before the socket was put to use (a socket bound ahead of
    /// a call may have caught strays); returns how many were dropped.
    pub fn discard_pending(&self) -> usize {
        let mut buf = [0u8; 64];
        let mut n = 0;
        for sock in std::iter::once(&self.socket).chain(self.rtcp.as_ref()) {
            while sock.try_recv_from(&mut buf).is_ok() {
                n += 1;
            }
        }
        n
    }
}

/// How often [`RtpSocket::bind`] without a range asks the system for an even port whose odd
/// neighbour is free.
const RTCP_PAIR_ATTEMPTS: usize = 32;

enum Command {
    /// Boxed: every queued command takes a node sized by the largest.
    Update(Box<Negotiated>),
    MediaTimeout(Duration),
    MicMuted(bool),
    Dtmf(String),
    DtmfInband(String),
    /// The peer's ICE attributes of a later offer/answer ([`MediaSession::update_remote_ice`]).
    RemoteIce(Box<RemoteIceUpdate>),
    Stop,
}

/// What a media session reports as it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaNotice {
    Event(MediaEvent),
    Alarm(MediaAlarm),
}

/// Where a session started with [`MediaSession::start_with_listener`] reports
/// [`MediaNotice`]s; called on the media task.
pub type NoticeSink = Box<dyn FnMut(MediaNotice) + Send>;

/// The engine's end of a media task's command queue.
type CommandTx = futures_channel::mpsc::UnboundedSender<Command>;

/// What [`Command::RemoteIce`] carries.
#[derive(Debug)]
struct RemoteIceUpdate {
    remote: crate::ice::sdp::RemoteIce,
    /// We made the offer of this exchange.
    offerer: bool,
    /// Our new `ice-ufrag`/`ice-pwd` when the peer's offer restarts ICE.
    local: Option<(String, String)>,
}

/// If the task falls this far behind its 20 ms schedule (machine suspended, debugger), it
/// skips ahead instead of sending the missed packets in a burst.
const MAX_CATCH_UP: Duration = Duration::from_millis(200);
/// Datagrams taken from the socket at most per playout tick before playing (a burst after a
/// stall; more than this waits for the select loop).
const MAX_DRAIN: usize = 32;

/// One call's media: a tokio task that sends a frame every 20 ms, receives, and plays out.
///
/// The schedule is drift-free (`tokio::time::interval` with [`MissedTickBehavior::Burst`]: a
/// late tick is followed by quick ones until the schedule is met, so 50 packets per second
/// on average); lags over 200 ms are skipped instead of burst. Dropping the handle without
/// [`MediaSession::stop`] also ends the task.
#[derive(Debug)]
pub struct MediaSession {
    /// A linked list (an allocation per command), not a tokio channel: a tokio channel
    /// takes about 1 KiB per call at creation.
    commands: CommandTx,
    stats: Arc<Mutex<MediaStats>>,
    events: Mutex<Option<mpsc::UnboundedReceiver<MediaEvent>>>,
    alarms: Mutex<Option<mpsc::UnboundedReceiver<MediaAlarm>>>,
    /// Voice statistics accumulated since the last [`MediaSession::take_vad_report`].
    vad: Arc<Mutex<crate::dsp::VadReport>>,
    local: SocketAddr,
    /// `c=`/`m=` without ICE: the router's forward to `local`, else `local`.
    sdp_default: SocketAddr,
    /// Our ICE attributes and default address as offered, for re-offers and re-answers.
    ice_sdp: Option<(crate::ice::sdp::LocalIce, SocketAddr)>,
    /// The peer's `ice-ufrag`/`ice-pwd` the checks run with (`None` until they start).
    remote_ice: Option<(String, String)>,
    /// The TURN-over-TCP stand-ins of the call's socket, kept for the call.
    _turn_tcp: Vec<crate::ice::turn_tcp::TurnTcp>,
    task: JoinHandle<MediaStats>,
}

impl MediaSession {
    /// Start the media task. Must be called inside a tokio runtime.
    pub fn start(
        socket: RtpSocket,
        neg: Negotiated,
        source: Box<dyn PcmSource>,
        sink: Box<dyn PcmSink>,
    ) -> MediaSession {
        Self::start_with_config(socket, neg, source, sink, PipelineConfig::default())
    }

    /// [`MediaSession::start`] with explicit tuning. Events and alarms are kept for
    /// [`MediaSession::take_events`] and [`MediaSession::take_alarms`].
    pub fn start_with_config(
        socket: RtpSocket,
        neg: Negotiated,
        source: Box<dyn PcmSource>,
        sink: Box<dyn PcmSink>,
        cfg: PipelineConfig,
    ) -> MediaSession {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (alarm_tx, alarm_rx) = mpsc::unbounded_channel();
        let notices = Box::new(move |n| match n {
            MediaNotice::Event(e) => {
                let _ = ev_tx.send(e);
            }
            MediaNotice::Alarm(a) => {
                let _ = alarm_tx.send(a);
            }
        });
        let session = Self::start_with_listener(socket, neg, source, sink, cfg, notices);
        *session.events.lock().unwrap_or_else(|e| e.into_inner()) = Some(ev_rx);
        *session.alarms.lock().unwrap_or_else(|e| e.into_inner()) = Some(alarm_rx);
        session
    }

    /// [`MediaSession::start_with_config`] handing every event and alarm to `notices`, called
    /// on the media task as they happen (it must not block). Needs no channel or task per
    /// call for them: what the engine uses.
    pub fn start_with_listener(
        mut socket: RtpSocket,
        neg: Negotiated,
        source: Box<dyn PcmSource>,
        sink: Box<dyn PcmSink>,
        cfg: PipelineConfig,
        notices: NoticeSink,
    ) -> MediaSession {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let stats = Arc::new(Mutex::new(MediaStats::default()));
        let vad = Arc::new(Mutex::new(crate::dsp::VadReport::default()));
        let local = socket.local;
        let turn_tcp = std::mem::take(&mut socket.turn_tcp);
        let sdp_default = socket.public.unwrap_or(local);
        let ice_sdp = socket
            .local_ice()
            .zip(socket.ice.as_ref().map(|i| i.default_addr()));
        let remote_ice = socket.ice.as_ref().and_then(|i| i.remote_credentials());
        let pipeline = MediaPipeline::new(neg, source, sink, cfg, Instant::now().into_std());
        tracing::debug!(%local, ?pipeline, "media session starting");
        // With ICE the connectivity checks open the path; `natopenpackets` is for plain RTP.
        let nat_open = if socket.ice.is_none() {
            socket.nat_open_packets
        } else {
            0
        };
        let task = tokio::spawn(run(
            nat_open,
            socket.socket,
            socket.rtcp,
            socket.ice,
            socket.ice_rtcp,
            // Boxed so the task's future stays small (async fn arguments are stored twice).
            Box::new(pipeline),
            rx,
            notices,
            stats.clone(),
            vad.clone(),
        ));
        MediaSession {
            commands: tx,
            stats,
            events: Mutex::new(None),
            alarms: Mutex::new(None),
            vad,
            local,
            sdp_default,
            ice_sdp,
            remote_ice,
            _turn_tcp: turn_tcp,
            task,
        }
    }

    /// The local RTP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address for `c=`/`m=` of re-offers and answers: ICE's default candidate, else the
    /// router's forward, else the local RTP address.
    pub fn sdp_addr(&self) -> SocketAddr {
        self.ice_sdp.as_ref().map_or(self.sdp_default, |(_, a)| *a)
    }

    /// Whether this call's media runs ICE (our attributes go into re-offers and answers).
    pub fn has_ice(&self) -> bool {
        self.ice_sdp.is_some()
    }

    /// Add our ICE attributes (as last offered or answered) to a re-offer or answer.
    pub fn add_ice_to_sdp(&self, sdp: &str, offer: bool) -> String {
        match &self.ice_sdp {
            Some((ice, _)) => crate::ice::sdp::add_attributes(sdp, ice, offer),
            None => sdp.to_owned(),
        }
    }

    /// The peer's SDP of a later offer or answer in the call (re-INVITE, UPDATE, or the
    /// answer to ours), for ICE (RFC 8839 §4.4.1). Call it before writing our answer to an
    /// offer: when the offer restarts ICE (new `ice-ufrag`/`ice-pwd`, RFC 8839 §4.4.1.1.1)
    /// our credentials change too (RFC 8445 §9), and [`MediaSession::add_ice_to_sdp`] then
    /// gives the new ones. The same credentials change nothing; an SDP without ICE leaves ICE
    /// as it is. Returns whether ICE (re)starts its checks.
    pub fn update_remote_ice(&mut self, remote_sdp: &str, offerer: bool) -> bool {
        let Some((local, _)) = self.ice_sdp.as_mut() else {
            return false;
        };
        let Some(remote) = crate::ice::sdp::remote_ice(remote_sdp) else {
            return false;
        };
        let creds = (remote.ufrag.clone(), remote.pwd.clone());
        let new_local = match &self.remote_ice {
            // The first remote attributes of this socket (the answer to the offer a network
            // move made): the checks start with the credentials we offered.
            None => None,
            Some(old) if *old == creds => return false,
            // The peer restarts: our answer names new credentials. The offerer of a restart
            // changed its own already (in the offer we made).
            Some(_) if !offerer => {
                let fresh = (ice_chars(8), ice_chars(24));
                local.ufrag = fresh.0.clone();
                local.pwd = fresh.1.clone();
                Some(fresh)
            }
            Some(_) => None,
        };
        self.remote_ice = Some(creds);
        let _ = self
            .commands
            .unbounded_send(Command::RemoteIce(Box::new(RemoteIceUpdate {
                remote,
                offerer,
                local: new_local,
            })));
        true
    }

    /// Apply a new negotiation (re-INVITE, late answer, hold/resume).
    pub fn update(&self, neg: Negotiated) {
        let _ = self.commands.unbounded_send(Command::Update(Box::new(neg)));
    }

    /// Send silence instead of the microphone while `muted`, RTP going on
    /// ([`crate::MediaPipeline::set_mic_muted`]).
    pub fn set_mic_muted(&self, muted: bool) {
        let _ = self.commands.unbounded_send(Command::MicMuted(muted));
    }

    /// Send DTMF digits as RFC 4733 events (ignored with a warning when telephone-event was not
    /// negotiated). `0-9 * # A-D`; space or `,` is a pause.
    pub fn send_dtmf(&self, digits: &str) {
        let _ = self
            .commands
            .unbounded_send(Command::Dtmf(digits.to_owned()));
    }

    /// Send DTMF digits as tones inside the audio (in-band, ITU-T Q.23; for peers without
    /// telephone-event and the in-band `dtmfmode` values). `0-9 * # A-D`.
    pub fn send_dtmf_inband(&self, digits: &str) {
        let _ = self
            .commands
            .unbounded_send(Command::DtmfInband(digits.to_owned()));
    }

    /// The latest counters (updated every 20 ms).
    pub fn stats(&self) -> MediaStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters shared with the media task (updated every 20 ms), for a watcher that
    /// cannot hold the session, e.g. a sink that reacts to the first received packet.
    pub fn shared_stats(&self) -> Arc<Mutex<MediaStats>> {
        self.stats.clone()
    }

    /// The stream of [`MediaEvent`]s (received DTMF, latching). Can be taken once.
    pub fn take_events(&self) -> Option<mpsc::UnboundedReceiver<MediaEvent>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The alarm channel ([`MediaAlarm`], e.g. [`MediaAlarm::NoMedia`] after
    /// [`PipelineConfig::media_timeout`]); can be taken once.
    pub fn take_alarms(&self) -> Option<mpsc::UnboundedReceiver<MediaAlarm>> {
        self.alarms.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Voice statistics since the previous call (or the start) and start a new interval: the
    /// engine calls this every `vadstat_ival` ms and emits
    /// [`crate::dsp::format_vad_notification`] of it. Both sides are `OFF` unless
    /// [`crate::dsp::DspConfig::vad`] is on in the [`PipelineConfig`].
    pub fn take_vad_report(&self) -> crate::dsp::VadReport {
        std::mem::take(&mut *self.vad.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Change the media timeout during the call (`ZERO` = off); see
    /// [`PipelineConfig::media_timeout`].
    pub fn set_media_timeout(&self, timeout: Duration) {
        let _ = self.commands.unbounded_send(Command::MediaTimeout(timeout));
    }

    /// Stop the task and return the final counters.
    pub async fn stop(self) -> MediaStats {
        let _ = self.commands.unbounded_send(Command::Stop);
        match self.task.await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "media task failed");
                *self.stats.lock().unwrap_or_else(|e| e.into_inner())
            }
        }
    }
}

// The driver's shared state, one argument each; grouping them would only rename them.
#[allow(clippy::too_many_arguments)]
async fn run(
    nat_open: u8,
    socket: UdpSocket,
    rtcp_socket: Option<UdpSocket>,
    mut ice: Option<Box<crate::ice::IceTransport>>,
    mut ice_rtcp: Option<Box<crate::ice::IceTransport>>,
    mut pipeline: Box<MediaPipeline>,
    mut commands: futures_channel::mpsc::UnboundedReceiver<Command>,
    mut notices: NoticeSink,
    stats: Arc<Mutex<MediaStats>>,
    vad: Arc<Mutex<crate::dsp::VadReport>>,
) -> MediaStats {
    let period = Duration::from_millis(u64::from(PTIME_MS));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut send_errors: u64 = 0;
    let remote = pipeline.negotiated().remote_rtp;
    // The remote end of the pair ICE selected, as last given to the pipeline (DTLS follows it).
    let mut ice_peer: Option<SocketAddr> = None;
    for _ in 0..nat_open {
        if let Err(e) = send_datagram(&socket, b"\r\n", remote).await {
            tracing::debug!(%remote, error = %e, "natopenpackets send failed");
        }
    }
    // Inside the loop only the select waits: RTP, RTCP and ICE go out with `try_send_to`
    // (a datagram the socket has no room for is late already and is dropped, as the network
    // would), which keeps the per-call task small (each await point is stored in it).
    loop {
        tokio::select! {
            biased;
            cmd = futures_util::StreamExt::next(&mut commands) => match cmd {
                None | Some(Command::Stop) => break,
                Some(Command::Update(neg)) => {
                    tracing::debug!(?neg, "media update");
                    pipeline.update(*neg);
                }
                Some(Command::Dtmf(d)) => {
                    pipeline.send_dtmf(&d);
                }
                Some(Command::DtmfInband(d)) => {
                    pipeline.send_dtmf_inband(&d);
                }
                Some(Command::MediaTimeout(t)) => pipeline.set_media_timeout(t),
                Some(Command::MicMuted(m)) => pipeline.set_mic_muted(m),
                Some(Command::RemoteIce(update)) => {
                    let RemoteIceUpdate { remote, offerer, local } = *update;
                    let now = Instant::now().into_std();
                    if let Some(t) = ice.as_mut() {
                        if let Err(e) = t.update_remote(&remote, offerer, local.clone(), now) {
                            tracing::warn!(error = %e, "ICE update not applied");
                        }
                        crate::ice::gather::flush_now(&socket, t);
                    }
                    if let (Some(t), Some(sock)) = (ice_rtcp.as_mut(), rtcp_socket.as_ref()) {
                        if let Err(e) = t.update_remote(&remote, offerer, local, now) {
                            tracing::warn!(error = %e, "ICE update of RTCP not applied");
                        }
                        crate::ice::gather::flush_now(sock, t);
                    }
                }
            },
            scheduled = interval.tick() => {
                let now = Instant::now();
                if now.saturating_duration_since(scheduled) > MAX_CATCH_UP {
                    tracing::debug!(lag = ?now.saturating_duration_since(scheduled), "media clock lag: skipping ahead");
                    interval.reset();
                }
                let now = now.into_std();
                if let Some(ice) = ice.as_mut() {
                    ice.handle_timeout(now);
                    let selected = ice.selected().map(|p| p.remote);
                    if let Some(peer) = selected.filter(|p| Some(*p) != ice_peer) {
                        pipeline.set_ice_peer(peer, now);
                        ice_peer = Some(peer);
                    }
                    for out in pipeline.on_tick(now) {
                        ice.send_media(now, &out.data, out.to);
                    }
                    crate::ice::gather::flush_now(&socket, ice);
                }
                for out in ice.is_none().then(|| pipeline.on_tick(now)).into_iter().flatten() {
                    if let Err(e) = socket.try_send_to(&out.data, out.to) {
                        send_errors += 1;
                        // First error and then every 500th (10 s) to keep logs readable.
                        if send_errors % 500 == 1 {
                            tracing::warn!(to = %out.to, error = %e, count = send_errors, "RTP send failed");
                        }
                    }
                }
                if let (Some(r), Some(sock)) = (ice_rtcp.as_mut(), rtcp_socket.as_ref()) {
                    r.handle_timeout(now);
                    crate::ice::gather::flush_now(sock, r);
                }
                if let Some(out) = pipeline.poll_rtcp(now) {
                    let muxed = pipeline.negotiated().rtcp_mux;
                    let sock = match &rtcp_socket {
                        Some(r) if !muxed => r,
                        _ => &socket,
                    };
                    let transport = if muxed { ice.as_mut() } else { ice_rtcp.as_mut() };
                    if let Some(t) = transport {
                        t.send_media(now, &out.data, out.to);
                        crate::ice::gather::flush_now(sock, t);
                    } else if let Err(e) = sock.try_send_to(&out.data, out.to) {
                        tracing::debug!(to = %out.to, error = %e, "RTCP send failed");
                    }
                }
                // After a stall the ticks catch up in a burst ahead of the socket (biased
                // select): take the datagrams already waiting first, so the jitter buffer
                // does not run dry with its packets still in the socket.
                for _ in 0..MAX_DRAIN {
                    let taken = take_datagram(&socket, |data, from| {
                        on_rtp_datagram(&mut ice, &mut pipeline, data, from);
                    });
                    if taken.is_err() {
                        break;
                    }
                }
                if let Some(ice) = ice.as_mut() {
                    crate::ice::gather::flush_now(&socket, ice);
                }
                pipeline.playout(now);
                for ev in pipeline.take_events() {
                    notices(MediaNotice::Event(ev));
                }
                for a in pipeline.take_alarms() {
                    notices(MediaNotice::Alarm(a));
                }
                *stats.lock().unwrap_or_else(|e| e.into_inner()) = pipeline.stats();
                let report = pipeline.take_vad_report();
                if report != crate::dsp::VadReport::default() {
                    vad.lock().unwrap_or_else(|e| e.into_inner()).merge(&report);
                }
            },
            _ = socket.readable() => {
                let taken = take_datagram(&socket, |data, from| {
                    on_rtp_datagram(&mut ice, &mut pipeline, data, from);
                });
                match taken {
                    Ok(()) => {
                        if let Some(ice) = ice.as_mut() {
                            crate::ice::gather::flush_now(&socket, ice);
                        }
                    }
                    // Readiness can be spurious; ICMP port unreachable from an earlier send
                    // shows up as an error. Either way: keep going.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => tracing::trace!(error = %e, "RTP receive error"),
                }
            },
            _ = readable_opt(rtcp_socket.as_ref()) => {
                let Some(sock) = rtcp_socket.as_ref() else { continue };
                let taken = take_datagram(sock, |data, from| {
                    let now = Instant::now().into_std();
                    match ice_rtcp.as_mut() {
                        Some(r) => {
                            if let Some((rtcp, from)) = r.handle_datagram(now, data, from) {
                                pipeline.on_rtcp_packet(&rtcp, from, now);
                            }
                        }
                        None => pipeline.on_rtcp_packet(data, from, now),
                    }
                });
                match taken {
                    Ok(()) => {
                        if let Some(r) = ice_rtcp.as_mut() {
                            crate::ice::gather::flush_now(sock, r);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => tracing::trace!(error = %e, "RTCP receive error"),
                }
            },
        }
    }
    // Boxed: the closing sends are awaited once per call, and their state would otherwise
    // take room in the task for the whole call.
    Box::pin(close_media(
        &socket,
        rtcp_socket.as_ref(),
        &mut ice,
        &mut ice_rtcp,
        &mut pipeline,
    ))
    .await;
    let final_stats = pipeline.stats();
    *stats.lock().unwrap_or_else(|e| e.into_inner()) = final_stats;
    tracing::debug!(?final_stats, "media session stopped");
    final_stats
}

/// Receive on the RTCP socket if there is one; pending forever otherwise.
/// A datagram on the RTP socket: through ICE (which keeps STUN to itself) when the call
/// uses it, to the pipeline.
fn on_rtp_datagram(
    ice: &mut Option<Box<crate::ice::IceTransport>>,
    pipeline: &mut MediaPipeline,
    data: &[u8],
    from: SocketAddr,
) {
    let now = Instant::now().into_std();
    match ice.as_mut() {
        Some(ice) => {
            if let Some((media, from)) = ice.handle_datagram(now, data, from) {
                pipeline.on_packet(&media, from, now);
            }
        }
        None => pipeline.on_packet(data, from, now),
    }
}

/// `cfg` for the ICE component whose socket is at `media`: a TURN server reached over TCP is
/// replaced by a local stand-in relaying to it ([`crate::ice::turn_tcp`], returned to be kept
/// for the call); without a connection the component gathers without TURN.
async fn through_turn_tcp(
    cfg: &crate::ice::IceConfig,
    media: SocketAddr,
) -> (crate::ice::IceConfig, Option<crate::ice::turn_tcp::TurnTcp>) {
    let mut cfg = cfg.clone();
    let mut kept = None;
    if let Some(turn) = cfg.turn.as_mut().filter(|t| t.tcp) {
        match crate::ice::turn_tcp::start(turn.addr, turn.tls.as_ref(), media, cfg.gather_timeout)
            .await
        {
            Ok(shim) => {
                turn.addr = shim.addr;
                kept = Some(shim);
            }
            Err(e) => {
                tracing::warn!(server = %turn.addr, error = %e, "TURN over TCP/TLS not reached");
                cfg.turn = None;
            }
        }
    }
    (cfg, kept)
}

/// Ready when `sock` has something to read; never without a socket.
async fn readable_opt(sock: Option<&UdpSocket>) -> io::Result<()> {
    match sock {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

/// Largest datagram taken whole (RTP over a 9000-byte jumbo frame path fits).
const RECV_BUF: usize = 9000;

thread_local! {
    /// One receive buffer per worker thread, shared by every media task it runs: a datagram
    /// is read and handled without an `.await` in between, so no task needs a buffer of its
    /// own while it waits (which cost 6 KiB per call).
    static RECV: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; RECV_BUF]);
}

/// End of the call: DTLS close_notify (RFC 5246 §7.2.1 / RFC 6347 §4.1) on the path media
/// took, before ICE releases it; then ICE's own closing messages.
async fn close_media(
    socket: &UdpSocket,
    rtcp_socket: Option<&UdpSocket>,
    ice: &mut Option<Box<crate::ice::IceTransport>>,
    ice_rtcp: &mut Option<Box<crate::ice::IceTransport>>,
    pipeline: &mut MediaPipeline,
) {
    let now = Instant::now().into_std();
    let (bye, bye_rtcp) = pipeline.close_dtls(now);
    for out in &bye {
        send_closing(socket, ice.as_deref_mut(), now, out).await;
    }
    let rtcp_sock = rtcp_socket.unwrap_or(socket);
    for out in &bye_rtcp {
        send_closing(rtcp_sock, ice_rtcp.as_deref_mut(), now, out).await;
    }
    if let Some(ice) = ice.as_mut() {
        ice.close(Instant::now().into_std());
        crate::ice::gather::flush(socket, ice).await;
    }
    if let (Some(r), Some(sock)) = (ice_rtcp.as_mut(), rtcp_socket) {
        r.close(Instant::now().into_std());
        crate::ice::gather::flush(sock, r).await;
    }
}

/// One closing datagram: through ICE when the path has it, else straight to its address.
async fn send_closing(
    sock: &UdpSocket,
    ice: Option<&mut crate::ice::IceTransport>,
    now: std::time::Instant,
    out: &Outgoing,
) {
    match ice {
        Some(ice) => {
            ice.send_media(now, &out.data, out.to);
            crate::ice::gather::flush(sock, ice).await;
        }
        None => {
            if let Err(e) = send_datagram(sock, &out.data, out.to).await {
                tracing::debug!(to = %out.to, error = %e, "DTLS close_notify not sent");
            }
        }
    }
}

/// Sends one datagram: at once when the socket takes it (UDP nearly always does), else by
/// waiting for room. The waiting future is boxed so that each call's media task, which
/// awaits a send at a dozen places, does not carry tokio's 432-byte `send_to` state at each.
pub(crate) async fn send_datagram(
    sock: &UdpSocket,
    data: &[u8],
    to: SocketAddr,
) -> io::Result<usize> {
    match sock.try_send_to(data, to) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Box::pin(sock.send_to(data, to)).await,
        sent => sent,
    }
}

/// Reads one waiting datagram (without waiting) into this thread's buffer and hands it to
/// `handle`; `WouldBlock` when none is waiting.
fn take_datagram(sock: &UdpSocket, handle: impl FnOnce(&[u8], SocketAddr)) -> io::Result<()> {
    RECV.with(|buf| {
        let mut buf = buf.borrow_mut();
        let (n, from) = sock.try_recv_from(&mut buf)?;
        handle(buf.get(..n).unwrap_or(&[]), from);
        Ok(())
    })
}

/// `n` random ICE characters (RFC 8839 §5.4 `ice-char`: letters and digits here), for the
/// `ice-ufrag` (at least 4, 24 bits) and `ice-pwd` (at least 22, 128 bits) of a restart.
fn ice_chars(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(CHARS[rand::random_range(0..CHARS.len())]))
        .collect()
}
