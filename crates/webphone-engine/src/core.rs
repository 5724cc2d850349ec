//! The engine actor: owns parameters, the SIP user agent, the lines and their media, and turns
//! API calls and SIP events into state changes, notifications and callbacks.
//!
//! One task runs [`Core::run`]; every input (API call, SIP event, timer tick) is handled to
//! completion before the next, so the state needs no locks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use webphone_audio::{
    open_input_or_default, open_output_or_default, AudioError, AudioInput, AudioOutput, DeviceSpec,
};
use webphone_media::{
    codec_prefs_from_params, sdp, MediaAlarm, MediaEvent, MediaNotice, MediaOffer, MediaSession,
    Negotiated, PcmSink, PcmSource, PipelineConfig, RtpSocket, SrtpPolicy,
};
use webphone_sip::{
    AccountConfig, CallKey, EndReason, RegistrationState, SipConfig, SipEvent, SipUa, Transport,
    TransportOptions,
};

use crate::echo::{self, EchoCall};
use crate::lines::{LineSel, Lines};
use crate::notify::{self, Cdr, DiscParty, RegCode, Severity, Status};
use crate::params::{parse_mparam, ParamStore, Source};
use crate::phone::ApiError;
use crate::Event;

/// File in the profile folder that records the SIP port chosen with `signalingport` 0.
const SIP_PORT_FILE: &str = "sip-port";

mod accounts;
mod address_book;
mod audio_test;
mod autohold;
mod chat;
mod conference;
mod cues;
mod early;
mod headers;
mod incoming;
mod line_api;
mod nat;
mod netwatch;
mod record;
mod ringback;
mod ringer;
mod routing;
mod sipmsg;
mod sync_view;
mod timers;
mod transfer;
mod volume_check;
mod watch;

/// Requests from the [`crate::Phone`] handles and from the engine's own tasks.
pub(crate) enum Cmd {
    Api {
        func: String,
        args: Vec<String>,
        reply: oneshot::Sender<Result<Value, ApiError>>,
    },
    /// The echo endpoint finished its minute on this line.
    EchoEnded { line: usize, id: u64 },
    /// Something the media of the call on `line` reported; `started` tells a reused line
    /// number from the call that asked.
    Media {
        line: usize,
        started: Instant,
        event: MediaEvent,
    },
    /// No voice activity from the microphone since the call started.
    NoVoice { line: usize, started: Instant },
    /// The call's media has been silent for `mediatimeout`.
    NoMedia {
        line: usize,
        started: Instant,
        silent_for: Duration,
    },
    /// The call's media encryption failed (DTLS-SRTP fingerprint mismatch or no handshake):
    /// no media can flow, the call ends.
    MediaFailed {
        line: usize,
        started: Instant,
        reason: String,
    },
    /// The server address book download (`serveraddressbook_url`) finished.
    AddressBook {
        source: String,
        answer: Result<String, String>,
    },
    /// A selected sound device was lost mid-stream (the default device took over) or came
    /// back (issue 9).
    AudioDevice(webphone_audio::DeviceEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Outgoing = 1,
    Incoming = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallPhase {
    /// Outgoing INVITE sent, nothing back yet.
    Setup,
    /// Outgoing: 180/183 received.
    Ringing,
    /// Incoming: waiting for accept/reject.
    Incoming,
    Connected,
}

enum Peer {
    Sip(CallKey),
    Echo { call: Option<EchoCall>, id: u64 },
}

struct Line {
    peer: Peer,
    direction: Direction,
    phase: CallPhase,
    peername: String,
    peerdisplayname: String,
    peeraddress: String,
    callid: String,
    started: Instant,
    connected: Option<Instant>,
    rtp: Option<RtpSocket>,
    /// The router's forward to this call's RTP socket (`upnpnat`); deleted with the line.
    port_map: Option<crate::upnp::Mapped>,
    media: Option<MediaSession>,
    /// Remote offer of an incoming call, answered on accept.
    remote_offer: Option<String>,
    /// SDP of a 183 Session Progress, used when the 200 OK carries none.
    early_answer: Option<String>,
    /// DTMF digits to send after connect (`call("123,456")`).
    dtmf_after_connect: Option<String>,
    /// What offer/answer settled, kept to re-apply it with mute changes.
    neg: Option<Negotiated>,
    /// Our offer's preferences (codecs, SDES keys): the answer is checked against them.
    offer: Option<MediaOffer>,
    /// Our SDP session id and its last version (RFC 3264 §8: a new offer raises the version).
    sdp_origin: u64,
    sdp_ver: u64,
    /// STATUS hold code: 0 none, 2 we hold, 3 the peer holds us, 4 both.
    hold: u8,
    /// A hold (true) or resume (false) re-INVITE of ours awaiting its answer.
    hold_pending: Option<bool>,
    /// The call whose peer asked for this one (REFER): told the outcome by NOTIFY.
    referred_by: Option<CallKey>,
    /// Taps on the call's audio, so recording can start at any time.
    tap: webphone_media::local::RecordTap,
    /// A recording in progress.
    recording: Option<webphone_media::local::recorder::RecorderThread>,
    /// Local mute: bit 1 = playback (API direction 1), bit 2 = microphone (direction 2).
    mute: u8,
    /// `ignore()`d: the caller is left ringing, nothing is shown or played.
    ignored: bool,
    /// Answered without the user (`autoaccept`, an auto-answer header, `calltransferalways`):
    /// `beeponconnect` 1 beeps only for these.
    auto_answered: bool,
    /// Where the call's audio goes (devices or mixer), once its media runs.
    port: Option<routing::AudioPort>,
    /// `conference()` asked for this line: it joins the mix as soon as its media runs.
    join_conference: bool,
    /// `calltransferalways`: once answered, the call is transferred (REFER) to this number.
    transfer_on_connect: Option<String>,
    /// `setsipheader` headers of this call only.
    sip_headers: Vec<(String, String)>,
    /// This is the consultation call of an attended transfer of that line: hanging it up
    /// sends the REFER.
    consult_for: Option<usize>,
    /// The consultation leg whose REFER went to that line (or the call a `transfer("")` on
    /// that line replaces): ends with the transfer.
    after_transfer_of: Option<usize>,
    /// We held this call for a transfer: a failed transfer resumes it.
    transfer_resume: bool,
    /// `autohold` / `automute` held or muted this call (not the user): choosing its line
    /// again with `autohold` 4 takes that back.
    auto_held: bool,
    auto_muted: bool,
    /// Transfer target whose REFER waits for our hold re-INVITE to finish (one INVITE
    /// transaction at a time in a dialog, RFC 3261 §14.1; the REFER follows it).
    refer_after_hold: Option<String>,
    /// The REFER of a blind transfer (`transfertype` 1) is out: our leg ends as soon as the
    /// peer accepts it (or reports progress), and goes on when it refuses.
    blind_refer: bool,
    /// What the user dialled (outgoing calls): `redialonfail` dials it again once.
    dialled: Option<String>,
    /// This call is already the retry of a failed one.
    redialed: bool,
    /// The call-waiting beep playing while this call rings during another call.
    waiting_beep: Option<webphone_media::local::mixer::SoundId>,
    /// The extra account an incoming call was addressed to (its user name); empty for the
    /// main account.
    local_user: String,
    /// Local ringback of an outgoing call (see `ringback`), from the first provisional
    /// response that asks for it until the answer.
    ringback: Option<ringback::Ringback>,
    /// Local ringback played by the mixer (another call has media), until the answer.
    ringback_sound: Option<webphone_media::local::mixer::SoundId>,
}

impl Line {
    fn new(peer: Peer, direction: Direction, phase: CallPhase, peername: String) -> Line {
        Line {
            peer,
            direction,
            phase,
            peername,
            peerdisplayname: String::new(),
            peeraddress: String::new(),
            callid: String::new(),
            started: Instant::now(),
            connected: None,
            rtp: None,
            port_map: None,
            media: None,
            remote_offer: None,
            early_answer: None,
            dtmf_after_connect: None,
            neg: None,
            offer: None,
            sdp_origin: rand::random::<u32>() as u64,
            sdp_ver: 1,
            hold: 0,
            hold_pending: None,
            referred_by: None,
            tap: webphone_media::local::RecordTap::new(),
            recording: None,
            mute: 0,
            ignored: false,
            auto_answered: false,
            port: None,
            join_conference: false,
            transfer_on_connect: None,
            sip_headers: Vec::new(),
            consult_for: None,
            after_transfer_of: None,
            transfer_resume: false,
            auto_held: false,
            auto_muted: false,
            refer_after_hold: None,
            blind_refer: false,
            dialled: None,
            redialed: false,
            waiting_beep: None,
            local_user: String::new(),
            ringback: None,
            ringback_sound: None,
        }
    }
}

/// The parts of an incoming INVITE a new line is made from.
struct IncomingCall {
    call: CallKey,
    sip_call_id: String,
    /// The extra account called (empty: the main account).
    local_user: String,
    from_user: String,
    from_display: Option<String>,
    remote_addr: SocketAddr,
    sdp: Option<String>,
}

/// What the last ended call looked like (`getlastcalldetails`).
#[derive(Debug, Clone)]
struct LastCall {
    cdr: Cdr,
    codec: String,
    stats: Option<webphone_media::MediaStats>,
}

/// Mute bit for the playback side (API direction 1).
const MUTE_OUT: u8 = 1;
/// Mute bit for the microphone side (API direction 2).
const MUTE_IN: u8 = 2;
/// How many LOG lines `getlogs` keeps.
const LOG_KEEP: usize = 2000;
/// How long a `setline(-1/-2)` choice holds before the real active line counts again.
const SETLINE_HOLD: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq)]
enum RegState {
    None,
    Registering { was_registered: bool },
    Registered,
    Failed(String),
    Unregistered,
}

pub(crate) struct Core {
    params: ParamStore,
    events: broadcast::Sender<Event>,
    cmd_tx: mpsc::UnboundedSender<Cmd>,
    sip: Option<SipUa>,
    sip_rx: Option<mpsc::UnboundedReceiver<SipEvent>>,
    local_ip: IpAddr,
    reg: RegState,
    lines: Lines<Line>,
    /// An RTP socket pair bound ahead of the next incoming call, so that answering does not
    /// wait for the binds (they are taken off the INVITE → 200 OK path; refilled after each
    /// incoming call).
    spare_rtp: Option<RtpSocket>,
    /// Port forwards asked of the router (`upnpnat`).
    upnp: crate::upnp::Upnp,
    /// Trust anchors for `turns:` servers, with the `tlscafile` they were read with.
    turn_trust: std::sync::Mutex<Option<(String, std::sync::Arc<rustls::ClientConfig>)>>,
    /// Where the next RTP port search from the base port starts (see `bind_rtp`).
    rtp_cursor: u32,
    /// Which of [`Core::servers`] is in use (two-server failover).
    server_choice: usize,
    /// Servers given up in this round of failover; `failing_over`: the REGISTER in flight is
    /// a failover's (a retry of the SIP layer's back-off starts a new round).
    failovers: usize,
    failing_over: bool,
    /// Text of the last general status, repeated by the periodic tick.
    last_general: String,
    next_echo_id: u64,
    sdp_version: u64,
    last_call: Option<LastCall>,
    last_reg_failure: String,
    /// What the facade was last told of the synchronously answered values.
    sync: std::sync::Mutex<sync_view::SyncView>,
    logs: std::sync::Mutex<std::collections::VecDeque<String>>,
    /// How many lines were ever kept in `logs` (the facade's copy is told the new ones).
    log_count: std::sync::atomic::AtomicU64,
    /// A recent `setline(-2|-1)`: the selection API calls without a line argument use.
    setline: Option<(LineSel, Instant)>,
    /// Own presence is `DND`: incoming calls are refused with 480.
    dnd: bool,
    /// Global `setsipheader` headers (on top of `customsipheader`).
    extra_headers: Vec<(String, String)>,
    /// The account (and digest HA1) last handed to the SIP layer.
    pushed_account: std::sync::Mutex<Option<(AccountConfig, Option<String>)>>,
    /// The profile's work folder (`getworkdir`).
    work_dir: std::path::PathBuf,
    /// The profile database, when settings are persisted.
    profile: Option<std::sync::Mutex<crate::profile::Profile>>,
    /// When the last VAD notifications went out.
    last_vad: Option<Instant>,
    /// Our MESSAGEs awaiting their delivery report, with the peer they went to.
    /// MESSAGEs we sent that await their final response: the peer, and the text's row in
    /// the profile's conversations (when it could be stored).
    chats: std::collections::HashMap<webphone_sip::MessageKey, (String, Option<i64>)>,
    /// The last is-composing state sent to each peer that was `active`, and when
    /// (`chatcomposing`, RFC 3994 §3.1).
    composing_sent: std::collections::HashMap<String, (bool, Instant)>,
    /// Presence and BLF subscriptions, by key.
    watches: std::collections::HashMap<webphone_sip::SubKey, watch::Watch>,
    /// Presence watches that have reported a state (an empty NOTIFY after one is `Offline`).
    presence_known: std::collections::HashSet<webphone_sip::SubKey>,
    /// Our message-summary subscription to our own voicemail (RFC 3842 §4), while it lasts.
    mwi_sub: Option<webphone_sip::SubKey>,
    /// `enableblf` / `enablepresence` in auto mode, as learned this session.
    watch_switch: watch::WatchSwitch,
    /// The registrar's `Allow-Events` (lower-case), once a 2xx to our REGISTER had one.
    server_packages: Option<Vec<String>>,
    /// The last SIP messages (`getsipmessage`, `getsipheader`).
    siplog: sipmsg::SipLog,
    /// HTTP integrations: action URLs, provisioning, uploads (crate::integrations).
    integrations: crate::integrations::Integrations,
    /// The local mixer, while two or more calls have media.
    hub: Option<routing::Hub>,
    /// `setvolume`: microphone, speaker and ringback levels (percent, 50 = unchanged).
    mic_volume: std::sync::Arc<routing::Volume>,
    speaker_volume: std::sync::Arc<routing::Volume>,
    ring_volume: std::sync::Arc<routing::Volume>,
    /// The ringtone, while an incoming call rings.
    ringer: Option<ringer::Ringer>,
    /// `audiotest('mic')`, while it runs (a call's media ends it).
    mic_test: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// The extra accounts (multi-account).
    extra: accounts::ExtraAccounts,
    /// Network-change recovery (`netwatch`): the route to the server, watched.
    netwatch: netwatch::NetWatch,
    /// The server (or proxy) address whose route is watched.
    net_target: Option<IpAddr>,
}

/// Wraps an audio device as the media pipeline's source.
struct InputAdapter(Box<dyn AudioInput>);
impl PcmSource for InputAdapter {
    fn read_frame(&mut self, out: &mut [i16]) {
        self.0.read_frame(out)
    }
}
/// Wraps an audio device as the media pipeline's sink.
struct OutputAdapter(Box<dyn AudioOutput>);
impl PcmSink for OutputAdapter {
    fn write_frame(&mut self, frame: &[i16]) {
        self.0.write_frame(frame)
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadArgument(msg.into())
}

fn arg(args: &[String], i: usize) -> Option<&str> {
    args.get(i).map(String::as_str)
}

/// Local address used to reach `host` (no packet is sent: a UDP `connect` only picks a route).
fn route_to(host: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if host.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect((host, 5060)).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

/// The host part of `host[:port]`, `[v6]:port` or a bare IPv6 address.
fn host_of(addr: &str) -> &str {
    let a = addr.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if a.matches(':').count() > 1 {
        return a;
    }
    a.split(':').next().unwrap_or(a)
}

/// The SIP transport from the `transport` parameter (-1 auto, 0 UDP, 1 TCP, 2 TLS) and the
/// form of `serveraddress`: with auto, `wss://` / `ws://` URLs mean WebSocket (RFC 7118),
/// `sips:` or `;transport=tls|tcp|ws|wss` name the transport, anything else is UDP. `5` ("UDP
/// with HTTP tunnel failover") is auto without the failover: the tunnel is a vendor's
/// server product; `3` and `4` (only the tunnel) are refused with a message.
pub(crate) fn transport_for(param: i64, server: &str) -> Result<Transport, String> {
    let from_server = server_transport(server);
    match param {
        -1 | 5 => Ok(from_server.unwrap_or(Transport::Udp)),
        0 => Ok(Transport::Udp),
        1 => Ok(Transport::Tcp),
        2 => Ok(from_server
            .filter(|t| *t == Transport::Wss)
            .unwrap_or(Transport::Tls)),
        t => Err(format!(
            "transport {t} (HTTP tunnelling) is not supported by this engine: use -1 (auto), 0 (UDP), 1 (TCP), 2 (TLS) or 5 (UDP, no tunnel)"
        )),
    }
}

/// The transport `serveraddress` names itself: `wss://` / `ws://` (RFC 7118), `sips:`
/// (TLS) or a `;transport=` parameter.
fn server_transport(server: &str) -> Option<Transport> {
    let s = server.trim().to_ascii_lowercase();
    if s.starts_with("wss://") {
        Some(Transport::Wss)
    } else if s.starts_with("ws://") {
        Some(Transport::Ws)
    } else if s.starts_with("sips:") {
        Some(Transport::Tls)
    } else {
        s.split(';')
            .skip(1)
            .find_map(|p| p.strip_prefix("transport="))
            .and_then(Transport::from_param)
    }
}

/// `autotransportdetect`: a server address that names no transport is tried over UDP (what
/// RFC 3263 gives an address without DNS records), then TCP on the same port, then TLS when
/// no port is written (5061); an address that names its transport is used as written.
pub(crate) fn with_transport_variants(server: &str, detect: bool) -> Vec<String> {
    let server = server.trim().to_string();
    if !detect || server_transport(&server).is_some() || server.contains(';') {
        return vec![server];
    }
    let host = server.trim_start_matches("sip:");
    let has_port = match host.rsplit_once(':') {
        // an IPv6 literal without a port is `[...]`
        Some((h, p)) => !h.ends_with('[') && p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty(),
        None => false,
    };
    let mut out = vec![server.clone(), format!("{server};transport=tcp")];
    if !has_port {
        out.push(format!("{server};transport=tls"));
    }
    out
}

/// The `use_rport` parameter as the SIP stack's rport handling (RFC 3581): 0 asks for no
/// `rport` and keeps our Contact, 9 asks but keeps our Contact, 3 asks and registers the
/// address the registrar saw whenever it differs, anything else (1, 2) does so only while our
/// own address is a local one. `use_fast_stun` -1 (force the private address) keeps our
/// Contact whatever `use_rport` says.
pub(crate) fn rport_mode(use_rport: i64, use_fast_stun: i64) -> webphone_sip::RportMode {
    use webphone_sip::RportMode;
    match (use_rport, webphone_sip::FastStun::from_param(use_fast_stun)) {
        (0, _) => RportMode::Off,
        (9, _) | (_, webphone_sip::FastStun::ForcePrivate) => RportMode::Ignore,
        (3, _) => RportMode::UseAlways,
        _ => RportMode::Use,
    }
}

/// Whether DNS picks the transport (RFC 3263 §4.1: NAPTR, then SRV per transport): the
/// `transport` parameter is -1 and the server address names no transport.
pub(crate) fn transport_is_auto(param: i64, server: &str) -> bool {
    (param == -1 || param == 5) && server_transport(server).is_none()
}

/// The HTTP path of a `ws://` / `wss://` server address, if it has one.
fn ws_path_of(server: &str) -> Option<String> {
    let s = server.trim();
    let rest = s
        .strip_prefix("wss://")
        .or_else(|| s.strip_prefix("ws://"))
        .or_else(|| s.strip_prefix("WSS://"))
        .or_else(|| s.strip_prefix("WS://"))?;
    rest.find('/').map(|i| rest[i..].to_string())
}

/// The `mediaencryption` parameter as an SRTP policy: 0 off, 1 when the peer can, 2 always,
/// 3 always (keyed by DTLS-SRTP, see [`offers_dtls`]).
///
/// `-1` ("auto") offers SRTP whenever the peer can do it, on every transport: the offer stays
/// `RTP/AVP` with `a=crypto` lines (best-effort SRTP, RFC 8643), which plain peers ignore. The
/// catalog ties auto to TLS; we choose the secure reading for every transport. Every value
/// but 0 also answers DTLS-SRTP offers (RFC 5763).
fn srtp_policy(mediaencryption: i64) -> SrtpPolicy {
    match mediaencryption {
        0 => SrtpPolicy::Off,
        2 | 3 => SrtpPolicy::Required,
        _ => SrtpPolicy::Optional,
    }
}

/// `mediaencryption` 3 (our extension of the catalog's values): offer DTLS-SRTP
/// (`UDP/TLS/RTP/SAVP` with `a=fingerprint`, RFC 5763 §5) instead of SDES; encryption required.
fn offers_dtls(mediaencryption: i64) -> bool {
    mediaencryption == 3
}

/// The `use_<codec>` parameters of the catalog.
const USE_CODEC_PARAMS: [&str; 10] = [
    "use_pcmu",
    "use_pcma",
    "use_g729",
    "use_gsm",
    "use_ilbc",
    "use_speex",
    "use_speexwb",
    "use_speexuwb",
    "use_opus",
    "use_opuswb",
];

/// Splits `call("123,456")` into the number and the DTMF digits sent after connect.
pub(crate) fn split_dtmf_suffix(number: &str) -> (String, Option<String>) {
    match number.split_once(',') {
        Some((n, d)) if !d.trim().is_empty() => (n.trim().to_string(), Some(d.trim().to_string())),
        Some((n, _)) => (n.trim().to_string(), None),
        None => (number.trim().to_string(), None),
    }
}

/// The user part of a dialled target, for display in STATUS and CDR (`sip:1002@host` → `1002`).
fn user_of(target: &str) -> String {
    let t = target.trim();
    let t = t
        .strip_prefix("sips:")
        .or_else(|| t.strip_prefix("sip:"))
        .or_else(|| t.strip_prefix("tel:"))
        .unwrap_or(t);
    t.split(['@', ';']).next().unwrap_or(t).to_string()
}

impl Core {
    pub(crate) fn new(
        params: ParamStore,
        events: broadcast::Sender<Event>,
        cmd_tx: mpsc::UnboundedSender<Cmd>,
    ) -> Core {
        Core {
            params,
            integrations: crate::integrations::Integrations::new(events.clone()),
            events,
            cmd_tx,
            sip: None,
            sip_rx: None,
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            reg: RegState::None,
            lines: Lines::default(),
            spare_rtp: None,
            upnp: crate::upnp::Upnp::new(),
            turn_trust: std::sync::Mutex::new(None),
            rtp_cursor: 0,
            server_choice: 0,
            failovers: 0,
            failing_over: false,
            last_general: String::new(),
            next_echo_id: 1,
            sdp_version: 1,
            last_call: None,
            last_reg_failure: String::new(),
            sync: std::sync::Mutex::default(),
            logs: Default::default(),
            log_count: Default::default(),
            setline: None,
            work_dir: std::path::PathBuf::new(),
            profile: None,
            last_vad: None,
            chats: Default::default(),
            composing_sent: Default::default(),
            watches: Default::default(),
            presence_known: Default::default(),
            mwi_sub: None,
            watch_switch: Default::default(),
            server_packages: None,
            siplog: Default::default(),
            hub: None,
            dnd: false,
            extra_headers: Vec::new(),
            pushed_account: std::sync::Mutex::new(None),
            mic_volume: routing::Volume::new(50),
            speaker_volume: routing::Volume::new(50),
            ring_volume: routing::Volume::new(50),
            mic_test: std::sync::Mutex::new(None),
            ringer: None,
            extra: accounts::ExtraAccounts::default(),
            netwatch: netwatch::NetWatch::default(),
            net_target: None,
        }
    }

    pub(crate) fn set_work_dir(&mut self, dir: std::path::PathBuf) {
        self.work_dir = dir;
    }

    pub(crate) fn set_profile(&mut self, profile: Option<crate::profile::Profile>) {
        self.profile = profile.map(std::sync::Mutex::new);
    }

    /// Parameters pushed by the server in `X-MParam` (this session) and `X-MParamP` (kept)
    /// headers: `name=value;name=value` (behaviours §2.1).
    fn apply_mparams(&mut self, headers: &[(String, String)]) {
        for (name, value) in headers {
            let source = if name.eq_ignore_ascii_case("x-mparam") {
                Source::SipHeader
            } else if name.eq_ignore_ascii_case("x-mparamp") {
                Source::SipHeaderPersist
            } else {
                continue;
            };
            for (param, result) in self.params.set_many(source, parse_mparam(value)) {
                match result {
                    // Each REGISTER refresh repeats them: only a change is news.
                    Ok(o) if !o.changed => {}
                    Ok(_) => self.log(
                        Severity::Event,
                        &format!("parameter {param} set by the server ({name})"),
                    ),
                    Err(e) => self.log(Severity::Warning, &format!("{name}: {e}")),
                }
            }
        }
        self.persist();
    }

    /// After the first registration: watch the users of `presenceuserlist` and `blfuserlist`.
    async fn watch_configured_lists(&mut self) {
        for (param, blf) in [("presenceuserlist", false), ("blfuserlist", true)] {
            let list = self.params.get(param);
            let (_, mode) = self.watch_mode(blf);
            if list.trim().is_empty() || !self.watch_switch.allowed(blf, mode) {
                continue;
            }
            if let Err(e) = self.watch_api(&[list], blf).await {
                self.log(Severity::Warning, &format!("{param}: {e}"));
            }
        }
    }

    /// Writes pending parameter changes to the profile database (kept queued on failure).
    fn persist(&mut self) {
        let Some(profile) = &self.profile else {
            return;
        };
        if !self.params.has_pending_persist() {
            return;
        }
        let queue = self.params.take_persist_queue();
        let result = profile
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_settings(&queue);
        if let Err(e) = result {
            self.params.requeue(queue);
            self.log(
                Severity::Warning,
                &format!("settings could not be saved: {e}"),
            );
        }
    }

    pub(crate) async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Api { func, args, reply }) => {
                        let r = self.api(&func, &args).await;
                        // What the call changed goes out before its answer, so a page that
                        // reads isincall() or getparameter() after the answer sees it.
                        self.publish_sync();
                        let _ = reply.send(r);
                    }
                    Some(Cmd::EchoEnded { line, id }) => self.echo_ended(line, id).await,
                    Some(Cmd::AudioDevice(event)) => self.audio_device_event(event),
                    Some(Cmd::AddressBook { source, answer }) => {
                        self.address_book_answer(source, answer)
                    }
                    Some(Cmd::Media { line, started, event }) => self.on_media(line, started, event),
                    Some(Cmd::NoVoice { line, started }) => {
                        if self.lines.get(line).is_some_and(|l| l.started == started) {
                            let text = "Check your microphone! No audio record detected.";
                            // checkmicrophone 0: calls without a microphone are fine.
                            if self.params.get_i64("checkmicrophone").unwrap_or(1) == 0 {
                                self.log(Severity::Warning, text);
                            } else {
                                self.display(Severity::Warning, text);
                            }
                        }
                    }
                    Some(Cmd::NoMedia { line, started, silent_for }) => {
                        if self.lines.get(line).is_some_and(|l| l.started == started) {
                            let why = format!("media timeout: no RTP for {} s", silent_for.as_secs());
                            self.log(Severity::Warning, &format!("line {line}: {why}"));
                            self.end_locally_with(line, 480, Some(&why)).await;
                        }
                    }
                    Some(Cmd::MediaFailed { line, started, reason }) => {
                        if self.lines.get(line).is_some_and(|l| l.started == started) {
                            self.log(Severity::Warning, &format!("line {line}: {reason}"));
                            // 488: the media (its security) is not acceptable (RFC 3261 §21.4.26).
                            self.end_locally_with(line, 488, Some(&reason)).await;
                        }
                    }
                    None => break,
                },
                ev = recv_sip(&mut self.sip_rx) => match ev {
                    Some(ev) => self.on_sip(ev).await,
                    None => { self.sip_rx = None; }
                },
                _ = tick.tick() => self.on_tick().await,
            }
            // Active line or hold may have changed: the speaker follows (mixer only), and
            // the ringtone rings only while an incoming call waits alone.
            self.update_audible();
            self.update_ringer().await;
            self.publish_sync();
        }
        self.shutdown().await;
    }

    // ----- output helpers -------------------------------------------------------------------

    fn emit(&self, ev: Event) {
        // The facade's copy of the synchronous answers is brought up to date first.
        if !matches!(&ev, Event::Callback { name, .. } if name == sync_view::SYNC_EVENT) {
            self.publish_sync();
        }
        let _ = self.events.send(ev);
    }

    fn notify(&self, text: String) {
        debug!(target: "webphone::notify", "{text}");
        self.emit(Event::Notification(text));
    }

    fn callback(&self, name: &str, args: Vec<Value>) {
        self.emit(Event::Callback {
            name: name.to_string(),
            args,
        });
    }

    /// `loglevel`, capped at `maxloglevel` when that is set (a deployment's limit on how much
    /// a user may make the phone log, e.g. SIP messages from 5).
    fn loglevel(&self) -> i64 {
        let level = self.params.get_i64("loglevel").unwrap_or(1);
        match self.params.get_i64("maxloglevel") {
            Some(max) if max >= 0 => level.min(max),
            _ => level,
        }
    }

    /// A LOG notification: errors and warnings always, events from loglevel 3.
    fn log(&self, sev: Severity, text: &str) {
        if sev == Severity::Event && self.loglevel() < 3 {
            return;
        }
        let line = notify::log(sev, text);
        self.keep_log(&line);
        self.callback("onLog", vec![Value::from(line.clone())]);
        self.notify(line);
    }

    /// Keeps a line for `getlogs` (the oldest go first when full).
    fn keep_log(&self, line: &str) {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if logs.len() >= LOG_KEEP {
            logs.pop_front();
        }
        logs.push_back(line.to_string());
        self.log_count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Something the user must see: EVENT notification plus `onDisplay`.
    fn display(&self, sev: Severity, text: &str) {
        self.keep_log(&notify::event(sev, text));
        self.notify(notify::event(sev, text));
        self.callback("onDisplay", vec![text.into(), "".into()]);
    }

    /// The account's user: `username` as `allowsipuriasusername` says (a SIP URI gives its
    /// user part unless the parameter is 1).
    fn username(&self) -> String {
        self.username_and_host().0
    }

    /// The server in use: one of [`Core::servers`] (`server_choice` moves on when one fails);
    /// empty when none is set.
    fn server(&self) -> String {
        let list = self.servers();
        if list.is_empty() {
            return String::new();
        }
        list[self.server_choice % list.len()].clone()
    }

    /// The servers to register with, in order: `serveraddressfirst` (two-server failover)
    /// then `serveraddress`, or the domain of a `username` written as a SIP URI when
    /// `serveraddress` is empty.
    fn servers(&self) -> Vec<String> {
        let mut main = self.params.get("serveraddress").trim().to_string();
        if main.is_empty() {
            main = self.username_and_host().1.unwrap_or_default();
        }
        let first = self.params.get("serveraddressfirst").trim().to_string();
        let detect = self.params.get_bool("autotransportdetect") == Some(true)
            && matches!(self.params.get_i64("transport").unwrap_or(-1), -1 | 5);
        [first, main]
            .into_iter()
            .filter(|s| !s.is_empty())
            .flat_map(|s| with_transport_variants(&s, detect))
            .fold(Vec::new(), |mut v, s| {
                if !v.iter().any(|x: &String| x.eq_ignore_ascii_case(&s)) {
                    v.push(s);
                }
                v
            })
    }

    /// Failover among [`Core::servers`] (`serveraddressfirst`, `enablefallback`, and the
    /// transports of `autotransportdetect`): a registration that failed for want of an answer
    /// or with a server error (408, 5xx, 6xx) moves to the next one at once. Authentication
    /// and other rejections stay with the server.
    fn fail_over_registration(&mut self, code: u16) -> bool {
        let list = self.servers();
        let worth = code == 408 || code >= 500;
        // Each server once per round: when all failed, the usual back-off applies to the
        // last one, and its next retry starts a new round.
        if list.len() < 2
            || !worth
            || self.failovers + 1 >= list.len()
            || self.params.get_bool("enablefallback") == Some(false)
        {
            return false;
        }
        self.failovers += 1;
        self.failing_over = true;
        let from = self.server();
        self.server_choice = (self.server_choice + 1) % list.len();
        let to = self.server();
        self.log(
            Severity::Warning,
            &format!("registration at {from} failed ({code}); trying {to}"),
        );
        match self.register(false) {
            Ok(()) => true,
            Err(e) => {
                self.log(Severity::Warning, &format!("failover to {to}: {e}"));
                false
            }
        }
    }

    fn username_and_host(&self) -> (String, Option<String>) {
        crate::accounts::username_of(
            &self.params.get("username"),
            self.params.get_i64("allowsipuriasusername").unwrap_or(0) == 1,
        )
    }

    fn reg_code(&self) -> RegCode {
        match &self.reg {
            RegState::None if self.sip.is_none() => RegCode::Unknown,
            RegState::None => RegCode::NotNeeded,
            RegState::Registering {
                was_registered: true,
            } => RegCode::WorkingYes,
            RegState::Registering { .. } => RegCode::WorkingUnknown,
            RegState::Registered => RegCode::Yes,
            RegState::Failed(_) => RegCode::Failed,
            RegState::Unregistered => RegCode::Unregistered,
        }
    }

    fn base_status(&self, line: i32, text: &str) -> Status {
        Status {
            line,
            statustext: text.to_string(),
            peername: String::new(),
            localname: self.username(),
            endpointtype: 1,
            peerdisplayname: String::new(),
            callid: String::new(),
            online: self.sip.is_some() || !self.lines.is_empty(),
            registered: self.reg_code(),
            incall: 0,
            mute: 0,
            hold: 0,
            encrypted: 0,
            isvideo: false,
        }
    }

    fn line_status(&self, n: usize, l: &Line, text: &str) -> Status {
        let mut st = self.base_status(n as i32, text);
        st.localname = self.local_name(&l.local_user);
        st.peername = l.peername.clone();
        st.peerdisplayname = l.peerdisplayname.clone();
        st.endpointtype = l.direction as u8;
        st.callid = l.callid.clone();
        st.mute = if l.mute != 0 { 2 } else { 0 };
        st.hold = l.hold;
        st.encrypted = if l.neg.as_ref().is_some_and(Negotiated::is_encrypted) {
            2
        } else {
            0
        };
        st.incall = if l.phase == CallPhase::Connected {
            2
        } else {
            1
        };
        st
    }

    fn emit_line(&self, n: usize, text: &str) {
        if let Some(l) = self.lines.get(n) {
            self.notify(self.line_status(n, l, text).format());
        }
    }

    /// The general (`-1`) status text: the best state across lines, else the registration.
    fn general_text(&self) -> String {
        let best = self.lines.iter().max_by_key(|(_, l)| match l.phase {
            CallPhase::Connected => 4,
            CallPhase::Incoming => 3,
            CallPhase::Ringing => 2,
            CallPhase::Setup => 1,
        });
        if let Some((_, l)) = best {
            return match l.phase {
                CallPhase::Connected => {
                    let secs = l.connected.map(|c| c.elapsed().as_secs()).unwrap_or(0);
                    format!("In Call ({secs} sec)")
                }
                CallPhase::Incoming => "Incoming...".into(),
                CallPhase::Ringing => "Ringing...".into(),
                CallPhase::Setup => "Calling...".into(),
            };
        }
        self.idle_text()
    }

    /// Where the SIP port of the last run is kept: a file beside the profile database
    /// (none without a profile).
    fn sip_port_file(&self) -> Option<std::path::PathBuf> {
        let profile = self.profile.as_ref()?;
        let db = profile
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .path()
            .to_path_buf();
        db.parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join(SIP_PORT_FILE))
    }

    /// The SIP port of the last run with `signalingport` 0, if one was recorded.
    fn remembered_sip_port(&self) -> Option<u16> {
        let text = std::fs::read_to_string(self.sip_port_file()?).ok()?;
        text.trim().parse::<u16>().ok().filter(|p| *p >= 1024)
    }

    fn remember_sip_port(&self, port: u16) {
        let Some(path) = self.sip_port_file() else {
            return;
        };
        if let Err(e) = std::fs::write(&path, format!("{port}\n")) {
            debug!(path = %path.display(), error = %e, "SIP port not recorded");
        }
    }

    /// `isincall()`: some line has a connected call.
    fn has_connected_call(&self) -> bool {
        self.lines
            .iter()
            .any(|(_, l)| l.phase == CallPhase::Connected)
    }

    fn idle_text(&self) -> String {
        if self.sip.is_none() {
            return "Initializing".into();
        }
        match &self.reg {
            RegState::Registering { .. } => "Registering...".into(),
            RegState::Registered => "Registered".into(),
            RegState::Failed(_) => "Register Failed".into(),
            RegState::None | RegState::Unregistered => "Ready".into(),
        }
    }

    fn emit_general_text(&mut self, text: String) {
        let mut st = self.base_status(-1, &text);
        let best = self
            .lines
            .active()
            .and_then(|n| self.lines.get(n).map(|l| (n, l)));
        if let Some((n, l)) = best {
            let ls = self.line_status(n, l, &text);
            st = Status { line: -1, ..ls };
        }
        self.last_general = text;
        self.notify(st.format());
    }

    fn emit_general(&mut self) {
        let t = self.general_text();
        self.emit_general_text(t);
    }

    async fn on_tick(&mut self) {
        // The general status repeats while a call is up, carrying the running call seconds.
        let connected = self
            .lines
            .iter()
            .any(|(_, l)| l.phase == CallPhase::Connected);
        if connected {
            self.emit_general();
        }
        self.expire_calls(Instant::now()).await;
        self.vad_reports(Instant::now());
        self.netwatch_tick().await;
    }

    /// `vadstat` 3: a VAD notification per connected call every `vadstat_ival` ms.
    fn vad_reports(&mut self, now: Instant) {
        if self.params.get_i64("vadstat").unwrap_or(1) != 3 {
            return;
        }
        let every = Duration::from_millis(
            self.params
                .get_i64("vadstat_ival")
                .unwrap_or(2000)
                .clamp(200, 3_600_000) as u64,
        );
        if self
            .last_vad
            .is_some_and(|t| now.saturating_duration_since(t) < every)
        {
            return;
        }
        self.last_vad = Some(now);
        for (_, l) in self.lines.iter() {
            if let Some(m) = &l.media {
                let line = webphone_media::dsp::format_vad_notification(&m.take_vad_report());
                self.notify(line);
            }
        }
    }

    // ----- API ------------------------------------------------------------------------------

    async fn api(&mut self, func: &str, args: &[String]) -> Result<Value, ApiError> {
        let f = func.to_ascii_lowercase();
        match f.as_str() {
            "setparameter" => {
                let name = arg(args, 0)
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| bad("usage: setparameter(name, value)"))?;
                let value = arg(args, 1).unwrap_or("");
                // The JavaScript facade tells where a value came from (its static block,
                // a `wp_` cookie or URL parameter) so the precedence of the sources holds.
                let source = match arg(args, 2).map(str::trim) {
                    None | Some("") => Source::Runtime,
                    Some(s) if s.eq_ignore_ascii_case("static") => Source::Static,
                    Some(s) if s.eq_ignore_ascii_case("cookie") => Source::Cookie,
                    Some(s) if s.eq_ignore_ascii_case("url") => Source::Url,
                    Some(o) => {
                        return Err(bad(format!(
                            "setparameter: unknown source {o:?} (static, cookie or url)"
                        )))
                    }
                };
                let outcome = self
                    .params
                    .set_from(source, name.trim(), value)
                    .map_err(|e| bad(e.to_string()))?;
                if outcome.is_unknown() {
                    self.log(
                        Severity::Warning,
                        &format!("unknown parameter {} stored as given", outcome.name),
                    );
                }
                if outcome.name == "allowcallredirect" {
                    if let Some(sip) = &self.sip {
                        sip.set_allow_redirect(
                            self.params.get_i64("allowcallredirect").unwrap_or(1) != 0,
                        );
                    }
                }
                if outcome.name == "customsipheader" {
                    if let Err(e) = self.push_global_headers() {
                        self.display(Severity::Warning, &format!("customsipheader not used: {e}"));
                    }
                }
                if matches!(
                    outcome.name.as_str(),
                    "volumein" | "volumeout" | "volumering"
                ) {
                    self.apply_volume_params(Some(outcome.name.as_str()));
                }
                if outcome.name == "profile" && outcome.changed {
                    self.switch_profile();
                }
                self.persist();
                Ok(Value::Null)
            }
            "getparameter" => {
                let name = arg(args, 0)
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| bad("usage: getparameter(name)"))?;
                Ok(Value::from(self.params.get(name.trim())))
            }
            "start" => {
                self.start().await?;
                Ok(Value::Null)
            }
            "stop" => {
                self.stop().await;
                Ok(Value::Null)
            }
            "register" => {
                self.start().await?;
                self.register_all_accounts()?;
                Ok(Value::Null)
            }
            "unregister" => {
                self.unsubscribe_mwi();
                if let Some(sip) = &self.sip {
                    // Going offline takes our published presence down too (RFC 3903 §4.5);
                    // nothing goes out when none is published.
                    let _ = sip.unpublish_presence();
                    sip.unregister();
                    sip.unregister_extra();
                }
                Ok(Value::Null)
            }
            "call" => {
                let number = arg(args, 0)
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| bad("usage: call(number)"))?;
                let line = self.call(number).await?;
                Ok(Value::from(line))
            }
            "accept" => {
                let sel = LineSel::parse(arg(args, 0)).map_err(bad)?;
                self.accept(sel).await
            }
            "reject" => {
                let sel = LineSel::parse(arg(args, 0)).map_err(bad)?;
                self.reject(sel).await
            }
            "hangup" => {
                let a = arg(args, 0).map(|s| if s == "true" { "-2" } else { s });
                let sel = self.default_sel(a)?;
                self.hangup(sel).await
            }
            "dtmf" => {
                let digits = arg(args, 0)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| bad("usage: dtmf(digits)"))?;
                if let Some(c) = digits
                    .chars()
                    .find(|c| !(c.is_ascii_digit() || "*#ABCDabcd ,".contains(*c)))
                {
                    return Err(bad(format!(
                        "invalid DTMF character '{c}': use 0-9 * # A-D, space or comma for a pause"
                    )));
                }
                let sel = self.default_sel(arg(args, 1))?;
                let sent = self.dtmf(sel, digits)?;
                self.dtmf_feedback(digits);
                Ok(sent)
            }
            "getstatus" => Ok(Value::from(self.general_text())),
            "isregistered" => Ok(Value::from(self.reg == RegState::Registered)),
            "isincall" => Ok(Value::from(self.has_connected_call())),
            // Engine extension for the JavaScript facade: everything it answers synchronously.
            "syncstate" => Ok(self.sync_snapshot()),
            _ => self.api_more(&f, args).await,
        }
    }

    /// `volumein`, `volumeout` and `volumering` (percent, 50 = unchanged) as the levels
    /// `getvolume`/`setvolume` work on; `only` limits it to one parameter.
    fn apply_volume_params(&mut self, only: Option<&str>) {
        for (name, level) in [
            ("volumein", &self.mic_volume),
            ("volumeout", &self.speaker_volume),
            ("volumering", &self.ring_volume),
        ] {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            if let Some(v) = self.params.get_i64(name).filter(|v| (0..=100).contains(v)) {
                level.set(v as u32);
            }
        }
    }

    async fn start(&mut self) -> Result<(), ApiError> {
        self.apply_volume_params(None);
        if self.sip.is_some() {
            // Already running: a page that (re)connects gets the current state again.
            self.emit_general();
            for n in self.lines.busy().collect::<Vec<_>>() {
                if let Some(text) = self.lines.get(n).map(|l| match l.phase {
                    CallPhase::Setup => "Setup",
                    CallPhase::Ringing | CallPhase::Incoming => "Ringing",
                    CallPhase::Connected if l.mute != 0 => "Muted",
                    CallPhase::Connected => "InCall",
                }) {
                    self.emit_line(n, text);
                }
            }
            return Ok(());
        }
        self.notify(notify::start("api"));
        // Server provisioning (behaviours §2.1 item 6): its answer applies before SIP starts.
        match self.integrations.provision(&self.params).await {
            Ok(pairs) => {
                for (param, result) in self.params.set_many(Source::Scurl, pairs) {
                    if let Err(e) = result {
                        self.log(Severity::Warning, &format!("provisioning: {param}: {e}"));
                    }
                }
                self.persist();
            }
            Err(e) => self.log(Severity::Warning, &e.to_string()),
        }
        self.integrations.on_start(&self.params);
        self.import_contacts_at_start();
        self.emit_general_text("Initializing".into());
        let first_run = self
            .profile
            .as_ref()
            .is_some_and(|p| p.lock().unwrap_or_else(|e| e.into_inner()).is_new());
        self.check_volume(volume_check::Moment::Start { first_run })
            .await;

        let server = self.server();
        let transport = match transport_for(self.params.get_i64("transport").unwrap_or(-1), &server)
        {
            Ok(t) => t,
            Err(msg) => {
                self.display(Severity::Error, &msg);
                return Err(ApiError::Failed(msg));
            }
        };
        self.local_ip = self.pick_local_ip();
        let configured = self
            .params
            .get_i64("signalingport")
            .unwrap_or(0)
            .clamp(0, 65535) as u16;
        // signalingport 0: the port of the last run when it is free again, so the registrar's
        // binding and a NAT mapping stay the same across restarts.
        let remembered = if configured == 0 {
            self.remembered_sip_port()
        } else {
            None
        };
        let port = remembered.unwrap_or(configured);
        let user_agent = user_agent(&self.params.get("useragent"), &self.params.get("brandname"));
        let cfg = SipConfig {
            bind_ip: self.local_ip,
            port,
            transport,
            user_agent,
        };
        let keepalive_ms = self.params.get_i64("keepaliveival").unwrap_or(28_000);
        let ws_keepalive_ms = self.params.get_i64("wskeepaliveival").unwrap_or(30_000);
        let ca_file = self.params.get("tlscafile");
        let opts = TransportOptions {
            keepalive_interval: Duration::from_millis(keepalive_ms.clamp(0, 3_600_000) as u64),
            ws_keepalive_interval: Some(Duration::from_millis(
                ws_keepalive_ms.clamp(0, 3_600_000) as u64
            )),
            tls_ca_file: (!ca_file.trim().is_empty()).then(|| ca_file.trim().into()),
            ws_path: ws_path_of(&server),
            stun_server: self.fast_stun_server(self.local_ip).await,
            fast_stun: webphone_sip::FastStun::from_param(
                self.params.get_i64("use_fast_stun").unwrap_or(1),
            ),
            port_mapper: self.sip_port_mapper(),
        };
        let started = match SipUa::start_with(cfg.clone(), opts.clone()).await {
            Err(webphone_sip::SipError::Bind { addr, source, .. }) if remembered.is_some() => {
                info!(%addr, error = %source, "the last run's SIP port is taken: any free port");
                SipUa::start_with(SipConfig { port: 0, ..cfg }, opts).await
            }
            other => other,
        };
        let (sip, rx) = match started {
            Ok(v) => v,
            Err(e) => {
                let msg = format!("SIP stack could not start: {e}");
                self.display(Severity::Error, &msg);
                return Err(ApiError::Failed(msg));
            }
        };
        info!(local = %sip.local_addr(), "SIP stack started");
        if configured == 0 {
            self.remember_sip_port(sip.local_addr().port());
        }
        sip.set_trace(true);
        sip.set_allow_redirect(self.params.get_i64("allowcallredirect").unwrap_or(1) != 0);
        sip.set_rport_mode(rport_mode(
            self.params.get_i64("use_rport").unwrap_or(1),
            self.params.get_i64("use_fast_stun").unwrap_or(1),
        ));
        sip.set_reregister(webphone_sip::Reregister::from_param(
            self.params.get_i64("forcereregister").unwrap_or(1),
        ));
        *self
            .pushed_account
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        self.sip = Some(sip);
        self.sip_rx = Some(rx);
        if let Err(e) = self.push_global_headers() {
            self.display(
                Severity::Warning,
                &format!("extra SIP headers not used: {e}"),
            );
        }
        self.reg = RegState::None;
        self.notify(notify::start("sip"));
        self.netwatch_start();
        self.log(
            Severity::Event,
            &format!(
                "SIP stack listening on {}",
                self.sip
                    .as_ref()
                    .map(|s| s.local_addr().to_string())
                    .unwrap_or_default()
            ),
        );
        // The identity is needed even without a server: peer-to-peer calls carry it in From.
        if let Some(sip) = &self.sip {
            self.push_account(sip);
        }
        self.emit_general();
        self.callback("onStart", vec![]);

        let register = self.params.get_i64("register").unwrap_or(1);
        let acc = self.account();
        if acc.server.is_some() && register != 0 && !acc.username.is_empty() {
            self.register(false)?;
        }
        self.apply_extra_accounts(register != 0);
        Ok(())
    }

    /// `localip` when set; else the address that routes to the server; else loopback.
    ///
    /// With no server configured the engine stays on loopback: peer-to-peer calls to other
    /// machines need `localip`.
    fn pick_local_ip(&self) -> IpAddr {
        let configured = self.params.get("localip");
        if let Ok(ip) = configured.trim().parse::<IpAddr>() {
            return ip;
        }
        let server = self.server();
        let proxy = self.params.get("proxyaddress");
        let target = if proxy.is_empty() { server } else { proxy };
        let target = if target.is_empty() {
            self.first_extra_server().unwrap_or_default()
        } else {
            target
        };
        if target.is_empty() {
            return IpAddr::V4(Ipv4Addr::LOCALHOST);
        }
        let host = host_of(&target);
        let ip = host.parse::<IpAddr>().ok().or_else(|| {
            use std::net::ToSocketAddrs;
            (host, 5060).to_socket_addrs().ok()?.next().map(|a| a.ip())
        });
        ip.and_then(route_to)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// A call's RTP socket: the base port `rtpport` (0, the default: `signalingport` + 2 when
    /// that is set) for the first call, then the next free even port after the last one
    /// handed out (wrapping back to the base after 1000 ports); with no base, or no free port
    /// from it, a port the system picks.
    async fn bind_rtp(&mut self) -> std::io::Result<RtpSocket> {
        let configured = self.params.get_i64("rtpport").unwrap_or(0);
        let signaling = self.params.get_i64("signalingport").unwrap_or(0);
        let base = match (configured, signaling) {
            (1..=65533, _) => Some(configured as u16),
            (0, 1..=65531) => Some(signaling as u16 + 2),
            _ => None,
        };
        if let Some(base) = base {
            match RtpSocket::bind_from(self.local_ip, base, self.rtp_cursor).await {
                Ok(r) => {
                    // The next call starts looking after this port (remembered, so a busy
                    // phone does not probe every port in use again).
                    let index = u32::from(r.local_addr().port().saturating_sub(base)) / 2;
                    self.rtp_cursor = (index + 1) % webphone_media::session::BASE_PORT_TRIES;
                    return Ok(r);
                }
                Err(e) => warn!("no RTP port from {base}: {e}; the system picks one"),
            }
        }
        RtpSocket::bind(self.local_ip, None).await
    }

    /// Hands the account to the SIP layer, with the precomputed digest HA1 of the `md5`
    /// parameter when one is set (then the password is not needed; MD5 challenges only).
    fn push_account(&self, sip: &SipUa) {
        let ha1 = self.params.get("md5");
        let ha1 = (!ha1.trim().is_empty()).then(|| ha1.trim().to_string());
        let acc = self.account();
        sip.set_transport_auto(transport_is_auto(
            self.params.get_i64("transport").unwrap_or(-1),
            &self.server(),
        ));
        // Switching accounts unregisters the old binding: only when something changed (an
        // outgoing call re-checks the account and must not drop the registration).
        let mut last = self
            .pushed_account
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.as_ref() == Some(&(acc.clone(), ha1.clone())) {
            return;
        }
        sip.set_digest_ha1(ha1.clone());
        sip.set_account(acc.clone());
        *last = Some((acc, ha1));
    }

    fn account(&self) -> AccountConfig {
        let opt = |name: &str| {
            let v = self.params.get(name);
            (!v.trim().is_empty()).then(|| v.trim().to_string())
        };
        let (user, _) = self.username_and_host();
        let username = (!user.is_empty())
            .then_some(user)
            .or_else(|| opt("sipusername"))
            .unwrap_or_default();
        let interval = self.params.get_i64("registerinterval").unwrap_or(120);
        AccountConfig {
            // `serveraddressfirst`/`serveraddress` as failover chose, or the domain of a
            // `username` written as a SIP URI when neither is set.
            server: Some(self.server()).filter(|s| !s.is_empty()),
            // `p2psignaling=0`: nothing goes straight to a peer; the server is the outbound
            // proxy of every request (RFC 3261 §8.1.2) when no proxy is configured.
            proxy: opt("proxyaddress").or_else(|| {
                (self.params.get_i64("p2psignaling").unwrap_or(1) == 0)
                    .then(|| self.server())
                    .filter(|s| !s.is_empty())
            }),
            username,
            auth_username: opt("sipusername"),
            password: self.params.get("password"),
            display_name: opt("displayname"),
            realm: opt("realm"),
            register_expires: interval.clamp(30, 86_400) as u32,
        }
    }

    fn register(&mut self, explicit: bool) -> Result<(), ApiError> {
        let acc = self.account();
        if acc.server.is_none() {
            return Err(bad("serveraddress is not set"));
        }
        if acc.username.is_empty() {
            return Err(bad("username is not set"));
        }
        if !explicit && self.params.get_i64("register").unwrap_or(1) == 0 {
            return Ok(());
        }
        let Some(sip) = &self.sip else {
            return Err(ApiError::Failed("engine not started".into()));
        };
        self.push_account(sip);
        sip.register();
        Ok(())
    }

    async fn stop(&mut self) {
        self.stop_mic_test();
        for n in self.lines.busy().collect::<Vec<_>>() {
            self.end_locally(n).await;
        }
        // A stopped engine holds no ports.
        self.spare_rtp = None;
        if let Some(sip) = self.sip.take() {
            // `needunregister` false: the bindings stay until they expire.
            let unregister = self.params.get_bool("needunregister").unwrap_or(true);
            sip.set_unregister_on_shutdown(unregister);
            sip.shutdown().await;
            *self
                .pushed_account
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
            if self.reg == RegState::Registered && unregister {
                self.callback("onUnRegistered", vec![]);
            }
        }
        // The router's forwards go with the sockets they pointed at.
        self.upnp.release_all().await;
        self.sip_rx = None;
        self.mwi_sub = None;
        self.reg = RegState::None;
        self.extra.forget_states();
        self.emit_general();
    }

    async fn shutdown(&mut self) {
        self.stop().await;
    }

    /// What to send a request to for a dialled string: the number prepared by the dialling
    /// rules; without a server only SIP URIs (`sip:user@host`) can be reached.
    fn dial_target(&self, dialled: &str) -> Result<String, ApiError> {
        let target = crate::dialing::prepare_number(
            dialled,
            self.params.get_i64("normalizenumber").unwrap_or(1) != 0,
            &self.params.get("numpxrewrite"),
            &self.params.get("techprefix"),
        );
        if self.server().trim().is_empty() && !target.contains('@') {
            self.display(
                Severity::Warning,
                "Invalid phone number or SIP URI or username",
            );
            return Err(bad(
                "no serveraddress configured: only full SIP URIs (sip:user@host) can be called",
            ));
        }
        Ok(target)
    }

    async fn call(&mut self, number: &str) -> Result<usize, ApiError> {
        let (target, dtmf) = split_dtmf_suffix(number);
        if target.is_empty() || target.chars().any(|c| c.is_control()) {
            self.display(
                Severity::Warning,
                "Invalid phone number or SIP URI or username",
            );
            return Err(bad("Invalid phone number or SIP URI or username"));
        }
        let no_server = self.server().trim().is_empty();
        if target.eq_ignore_ascii_case(echo::ECHO_NUMBER) && no_server {
            return self.call_echo().await;
        }
        let target = self.dial_target(&target)?;
        if self.params.get_i64("disablesamecall").unwrap_or(1) != 0 {
            let peer = user_of(&target);
            if self
                .lines
                .iter()
                .any(|(_, l)| l.direction == Direction::Outgoing && l.peername == peer)
            {
                // notifications.md §25: the refusal reads `ERROR, Already in call with xxx`.
                let msg = format!("Already in call with {peer}");
                self.display(Severity::Error, &msg);
                return Err(ApiError::Failed(msg));
            }
        }
        if let Some(why) = self.microphone_refusal().await {
            self.display(Severity::Error, &why);
            return Err(ApiError::Failed(why));
        }
        self.start().await?;
        let mut rtp = self
            .bind_rtp()
            .await
            .map_err(|e| ApiError::Failed(format!("cannot open an RTP port: {e}")))?;
        let port_map = self.map_rtp(&mut rtp).await;
        let peer_ip = self.nat_peer_ip(&target);
        self.prepare_ice(&mut rtp, peer_ip, None).await;
        let prefs = self.media_prefs();
        self.sdp_version += 1;
        let origin = rand::random::<u32>() as u64;
        let local = rtp.sdp_addr(rtp.local_addr());
        let offer = rtp.add_ice_to_sdp(
            &sdp::create_offer(origin, self.sdp_version, local, &prefs),
            true,
        );
        let Some(sip) = &self.sip else {
            return Err(ApiError::Failed("engine not started".into()));
        };
        // Parameters may have changed since start (setparameter before call).
        self.push_account(sip);
        let key = sip
            .invite(&target, offer)
            .map_err(|e| bad(format!("Invalid phone number or SIP URI or username: {e}")))?;
        let callid = sip.call_id(key).unwrap_or_default();
        let mut line = Line::new(
            Peer::Sip(key),
            Direction::Outgoing,
            CallPhase::Setup,
            user_of(&target),
        );
        line.peeraddress = if no_server {
            host_of(target.split_once('@').map(|(_, h)| h).unwrap_or(&target))
                .split(';')
                .next()
                .unwrap_or_default()
                .to_string()
        } else {
            self.server()
        };
        line.callid = callid;
        line.rtp = Some(rtp);
        line.port_map = port_map;
        line.offer = Some(prefs);
        line.sdp_origin = origin;
        line.sdp_ver = self.sdp_version;
        line.dtmf_after_connect = dtmf;
        line.dialled = Some(number.to_string());
        let Some(n) = self.lines.alloc(line) else {
            sip.hangup(key);
            return Err(ApiError::Failed("all lines are busy".into()));
        };
        self.log(Severity::Event, &format!("call to {target} on line {n}"));
        self.auto_hold_others(n, autohold::Trigger::Outgoing);
        self.emit_line(n, "CallSetup");
        self.emit_line(n, "Setup");
        self.emit_general();
        self.call_state(n, "callSetup");
        Ok(n)
    }

    /// Audio processing for the call's capture path: echo cancellation (`aec`), noise
    /// suppression (`denoise`), gain control (`agc`) and the silent-microphone warning
    /// (`enablenomicvoicewarning`, after 6 s). They apply to sound cards only: `file:` and
    /// `null` devices have no acoustic path, and their audio stays bit-exact.
    fn dsp_config(&self) -> webphone_media::dsp::DspConfig {
        let real_in = matches!(
            self.capture_spec(),
            DeviceSpec::Default | DeviceSpec::Device(_)
        );
        let get = |name: &str, default: i64| self.params.get_i64(name).unwrap_or(default);
        let aec2 = get("aec2", 1);
        let vadstat = get("vadstat", 1);
        let warn = get("enablenomicvoicewarning", 1) != 0 && matches!(vadstat, 1 | 2);
        webphone_media::dsp::DspConfig {
            // The catalog's finer modes (headset guessing, playback side) collapse to on/off:
            // one canceller serves `aec` and `aec2`; only the microphone side is processed.
            aec: real_in && (get("aec", 1) > 0 || aec2 >= 2),
            ns: real_in && (get("denoise", 3) > 0 || aec2 == 3),
            agc: real_in && get("agc", 3) > 0,
            vad: get("vad", 2) != 1 && vadstat != 0,
            no_voice_alarm: if real_in && warn {
                Duration::from_secs(6)
            } else {
                Duration::ZERO
            },
            ..webphone_media::dsp::DspConfig::default()
        }
    }

    /// Codec preferences from `codec`, `prefcodec` and the `use_<codec>` parameters.
    fn media_prefs(&self) -> MediaOffer {
        let uses: Vec<(String, String)> = USE_CODEC_PARAMS
            .iter()
            .filter(|n| self.params.is_set(n))
            .map(|n| (n.to_string(), self.params.get(n)))
            .collect();
        let uses: Vec<(&str, &str)> = uses.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let prefs = codec_prefs_from_params(
            &self.params.get("codec"),
            &self.params.get("prefcodec"),
            &uses,
        )
        // dtmfmode 5/6 send tones in the audio: no telephone-event is offered, so the peer
        // sends tones too (detected in-band).
        .media_offer(!matches!(
            self.params.get_i64("dtmfmode").unwrap_or(2),
            5 | 6
        ))
        .with_srtp(srtp_policy(
            self.params.get_i64("mediaencryption").unwrap_or(-1),
        ))
        .with_dtls(offers_dtls(
            self.params.get_i64("mediaencryption").unwrap_or(-1),
        ));
        self.with_media_limits(prefs)
    }

    /// `audio_bandwidth`, `silencesupress` and `codecframecount` applied to `prefs`.
    fn with_media_limits(&self, prefs: MediaOffer) -> MediaOffer {
        prefs
            .with_bandwidth(
                self.params
                    .get_i64("audio_bandwidth")
                    .unwrap_or(0)
                    .clamp(0, 10_000) as u32,
            )
            .with_dtx(self.params.get_i64("silencesupress").unwrap_or(-1) == 1)
            .with_codecframecount(self.params.get_i64("codecframecount").unwrap_or(0))
    }

    async fn call_echo(&mut self) -> Result<usize, ApiError> {
        let id = self.next_echo_id;
        self.next_echo_id += 1;
        let mut line = Line::new(
            Peer::Echo { call: None, id },
            Direction::Outgoing,
            CallPhase::Setup,
            echo::ECHO_NUMBER.into(),
        );
        line.peerdisplayname = "Echo test".into();
        line.peeraddress = "local".into();
        line.callid = format!("echo-{id}");
        let Some(n) = self.lines.alloc(line) else {
            return Err(ApiError::Failed("all lines are busy".into()));
        };
        let (input, output) = self.open_devices(echo::ECHO_RATE).await;
        let tx = self.cmd_tx.clone();
        let echo_call = EchoCall::start(input, output, echo::ECHO_LENGTH, move || {
            let _ = tx.send(Cmd::EchoEnded { line: n, id });
        });
        if let Some(Line {
            peer: Peer::Echo { call, .. },
            ..
        }) = self.lines.get_mut(n)
        {
            *call = Some(echo_call);
        }
        self.log(Severity::Event, &format!("echo test on line {n}"));
        self.emit_line(n, "CallSetup");
        self.emit_general();
        self.call_state(n, "callSetup");
        self.connected(n);
        Ok(n)
    }

    async fn echo_ended(&mut self, n: usize, id: u64) {
        let matches = matches!(self.lines.get(n), Some(Line { peer: Peer::Echo { id: i, .. }, .. }) if *i == id);
        if matches {
            self.finish(n, DiscParty::Peer, "echo test finished".into())
                .await;
        }
    }

    /// Opens the configured capture and playback devices. A named device that cannot be
    /// opened gives way to the system default (as when it is lost mid-call); when nothing
    /// opens, `null` takes its place (the call goes on). The user is told either way. Opening
    /// a sound card can take a while, so it runs off the engine task.
    async fn open_devices(&self, rate: u32) -> (Box<dyn AudioInput>, Box<dyn AudioOutput>) {
        // The call takes the microphone over from a Settings test.
        self.stop_mic_test();
        self.check_volume(volume_check::Moment::DevicesOpen).await;
        let in_spec = self.capture_spec();
        let out_spec = DeviceSpec::parse(&self.params.get("audiodeviceout"));
        let (in_events, out_events) = (self.device_events(), self.device_events());
        let opened = tokio::task::spawn_blocking(move || {
            (
                open_input_or_default(&in_spec, rate, Some(in_events)),
                open_output_or_default(&out_spec, rate, Some(out_events)),
            )
        })
        .await;
        let (input, output) = match opened {
            Ok(pair) => pair,
            Err(e) => {
                let err = || webphone_audio::AudioError::Thread {
                    device: "audio".into(),
                    reason: e.to_string(),
                };
                (Err(err()), Err(err()))
            }
        };
        (self.input_or_silence(input), self.output_or_silence(output))
    }

    /// The capture device of calls: `audiodevicein`, or `null` (silence, nothing opened or
    /// checked) when `useaudiodevicerecord` is false (a machine without a recorder).
    fn capture_spec(&self) -> DeviceSpec {
        if self.params.get_bool("useaudiodevicerecord") == Some(false) {
            return DeviceSpec::Null;
        }
        DeviceSpec::parse(&self.params.get("audiodevicein"))
    }

    /// `checkmicrophone` 2 ("fail calls without microphone"): why no call may start, when the
    /// configured capture device (or the default standing in for it) cannot be opened. A
    /// `null` or `file:` capture device is a deliberate choice and always passes; other modes
    /// never refuse (1, the default, warns when the call's media starts; 0 only logs).
    async fn microphone_refusal(&self) -> Option<String> {
        if self.params.get_i64("checkmicrophone").unwrap_or(1) != 2 {
            return None;
        }
        let spec = self.capture_spec();
        if matches!(spec, DeviceSpec::Null | DeviceSpec::File(_)) {
            return None;
        }
        let probe = tokio::task::spawn_blocking(move || {
            open_input_or_default(&spec, 48_000, None)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        probe
            .err()
            .map(|e| format!("No microphone: calls need one (checkmicrophone=2): {e}"))
    }

    /// The capture device alone (the playback device is open already).
    async fn open_input_device(&self, rate: u32) -> Box<dyn AudioInput> {
        let spec = self.capture_spec();
        let events = self.device_events();
        let opened =
            tokio::task::spawn_blocking(move || open_input_or_default(&spec, rate, Some(events)))
                .await;
        let input = opened.unwrap_or_else(|e| {
            Err(webphone_audio::AudioError::Thread {
                device: "audio".into(),
                reason: e.to_string(),
            })
        });
        self.input_or_silence(input)
    }

    /// The playback device alone (local ringback before the call has media).
    async fn open_output_device(&self, rate: u32) -> Box<dyn AudioOutput> {
        let spec = DeviceSpec::parse(&self.params.get("audiodeviceout"));
        let events = self.device_events();
        let opened =
            tokio::task::spawn_blocking(move || open_output_or_default(&spec, rate, Some(events)))
                .await;
        let output = opened.unwrap_or_else(|e| {
            Err(webphone_audio::AudioError::Thread {
                device: "audio".into(),
                reason: e.to_string(),
            })
        });
        self.output_or_silence(output)
    }

    fn input_or_silence(
        &self,
        input: Result<(Box<dyn AudioInput>, Option<AudioError>), AudioError>,
    ) -> Box<dyn AudioInput> {
        match input {
            Ok((d, None)) => d,
            Ok((d, Some(e))) => {
                self.display(
                    Severity::Warning,
                    &format!("Cannot open the recording device ({e}); using the default one"),
                );
                d
            }
            Err(e) => {
                let text = format!("Cannot open the recording device, sending silence: {e}");
                // checkmicrophone 0: calls without a microphone are fine, nothing to show.
                if self.params.get_i64("checkmicrophone").unwrap_or(1) == 0 {
                    self.log(Severity::Warning, &text);
                } else {
                    self.display(Severity::Warning, &text);
                }
                Box::new(Silence)
            }
        }
    }

    fn output_or_silence(
        &self,
        output: Result<(Box<dyn AudioOutput>, Option<AudioError>), AudioError>,
    ) -> Box<dyn AudioOutput> {
        match output {
            Ok((d, None)) => d,
            Ok((d, Some(e))) => {
                self.display(
                    Severity::Warning,
                    &format!("Cannot open the playback device ({e}); using the default one"),
                );
                d
            }
            Err(e) => {
                self.display(
                    Severity::Warning,
                    &format!("Cannot open the playback device, audio is not played: {e}"),
                );
                Box::new(Silence)
            }
        }
    }

    fn call_state(&self, n: usize, event: &str) {
        if let Some(l) = self.lines.get(n) {
            self.callback(
                "onCallStateChange",
                vec![
                    event.into(),
                    (l.direction as u8).into(),
                    l.peername.clone().into(),
                    l.peerdisplayname.clone().into(),
                    n.into(),
                ],
            );
            let call = crate::integrations::CallInfo {
                line: n,
                direction: l.direction as u8,
                peer: &l.peername,
                peer_display: &l.peerdisplayname,
                callid: &l.callid,
            };
            self.integrations.on_call_state(&self.params, event, &call);
        }
    }

    /// Marks a line connected and tells everyone.
    fn connected(&mut self, n: usize) {
        let Some(l) = self.lines.get_mut(n) else {
            return;
        };
        if l.phase == CallPhase::Connected {
            return;
        }
        l.phase = CallPhase::Connected;
        l.connected = Some(Instant::now());
        let beep = l.waiting_beep.take();
        let dtmf = l.dtmf_after_connect.take();
        if let (Some(orig), Some(sip)) = (l.referred_by.take(), &self.sip) {
            // RFC 3515 §2.4.5: the transfer worked; the referrer hangs up its leg.
            let _ = sip.notify_refer(orig, 200);
        }
        let (incoming, auto_answered) = (l.direction == Direction::Incoming, l.auto_answered);
        self.stop_waiting_beep(beep);
        self.connect_beep(incoming, auto_answered);
        self.emit_line(n, "CallConnect");
        self.emit_line(n, "InCall");
        self.emit_general();
        self.call_state(n, "callConnected");
        self.auto_record_line(n);
        if let Some(d) = dtmf {
            let _ = self.dtmf(LineSel::Number(n), &d);
        }
        let transfer = self
            .lines
            .get_mut(n)
            .and_then(|l| l.transfer_on_connect.take());
        if let Some(to) = transfer {
            // `calltransferalways`: answered only to hand the caller over (RFC 3515 REFER).
            let key = match self.lines.get(n).map(|l| &l.peer) {
                Some(Peer::Sip(k)) => Some(*k),
                _ => None,
            };
            let target = self.dial_target(&to);
            match (key, target, &self.sip) {
                (Some(k), Ok(uri), Some(sip)) => match sip.refer(k, &uri) {
                    Ok(()) => self.log(
                        Severity::Event,
                        &format!("line {n}: transferred to {uri} (calltransferalways)"),
                    ),
                    Err(e) => self.log(Severity::Warning, &format!("transfer: {e}")),
                },
                (_, Err(e), _) => self.log(Severity::Warning, &format!("transfer: {e}")),
                _ => {}
            }
        }
    }

    /// Starts the call's media, or re-targets it when it runs already (a late or changed
    /// answer must not reopen the devices: a `file:` output would be truncated).
    async fn start_media(&mut self, n: usize, neg: Negotiated) {
        match self.lines.get(n) {
            Some(Line {
                media: Some(m),
                mute,
                ..
            }) => {
                m.update(line_api::muted(&neg, *mute));
                if let Some(l) = self.lines.get_mut(n) {
                    l.neg = Some(neg);
                }
                return;
            }
            Some(Line { rtp: Some(_), .. }) => {}
            Some(_) => {
                warn!(line = n, "no RTP socket for the call");
                return;
            }
            None => return,
        }
        let media_timeout_s = self.params.get_i64("mediatimeout").unwrap_or(300);
        let nat_open = self.nat_open_packets();
        let dsp = self.dsp_config();
        let rate = neg.codec.audio_rate();
        // A second call with media moves every call onto the mixer; one call alone talks to
        // the devices directly.
        let mixed = if self.needs_mixer(n) {
            match self.ensure_hub().await {
                Some(h) => self.mixer_ports(&h, n, rate),
                None => None,
            }
        } else {
            None
        };
        // Local ringback already plays on the playback device: the call takes that device over.
        let ringing_on = match mixed {
            Some(_) => None,
            None => match self.lines.get_mut(n).and_then(|l| l.ringback.as_mut()) {
                Some(r) => r.take_sink().await,
                None => None,
            },
        };
        let (input, output, route): (Box<dyn PcmSource>, Box<dyn PcmSink>, _) = match mixed {
            Some((s, k)) => (s, k, routing::Route::Mixer),
            None => match ringing_on {
                Some(sink) => (
                    Box::new(InputAdapter(self.open_input_device(rate).await)),
                    ringback::fit_rate(sink, rate),
                    routing::Route::Devices,
                ),
                None => {
                    let (i, o) = self.open_devices(rate).await;
                    (
                        Box::new(InputAdapter(i)),
                        Box::new(OutputAdapter(o)),
                        routing::Route::Devices,
                    )
                }
            },
        };
        let (port, input, output) = routing::AudioPort::new(
            input,
            output,
            rate,
            route,
            self.mic_volume.clone(),
            self.speaker_volume.clone(),
        );
        // The Opus settings (with the `audio_bandwidth` cap) of our offer or of the answer we
        // gave; a line without one (none is known to lack it) gets the configured ones.
        let offered_opus = self
            .lines
            .get(n)
            .and_then(|l| l.offer.as_ref().map(|o| o.opus));
        let opus =
            offered_opus.unwrap_or_else(|| self.with_media_limits(MediaOffer::default()).opus);
        let Some(l) = self.lines.get_mut(n) else {
            return;
        };
        let Some(mut rtp) = l.rtp.take() else {
            return;
        };
        rtp.set_nat_open_packets(nat_open);
        l.neg = Some(neg.clone());
        // jittersize: the bias of the adaptive jitter buffer; plc: loss concealment on/off.
        let mut jitter = webphone_media::jitter::JitterConfig::for_jittersize(
            self.params.get_i64("jittersize").unwrap_or(3),
        );
        jitter.plc = self.params.get_bool("plc").unwrap_or(true);
        let cfg = PipelineConfig {
            media_timeout: Duration::from_secs(media_timeout_s.max(0) as u64),
            dsp,
            jitter,
            codec: webphone_media::CodecConfig { opus },
            ..PipelineConfig::default()
        };
        l.port = Some(port);
        let source = l.tap.source(input);
        let sink = l.tap.sink(output);
        // Events and alarms go straight from the media task into the core's queue.
        let tx = self.cmd_tx.clone();
        let started = l.started;
        let notices: webphone_media::NoticeSink = Box::new(move |notice| {
            let cmd = match notice {
                MediaNotice::Event(event) => Cmd::Media {
                    line: n,
                    started,
                    event,
                },
                MediaNotice::Alarm(MediaAlarm::NoMedia { silent_for }) => Cmd::NoMedia {
                    line: n,
                    started,
                    silent_for,
                },
                MediaNotice::Alarm(MediaAlarm::NoVoiceActivity { .. }) => {
                    Cmd::NoVoice { line: n, started }
                }
                MediaNotice::Alarm(MediaAlarm::EncryptionFailed { reason }) => Cmd::MediaFailed {
                    line: n,
                    started,
                    reason,
                },
                MediaNotice::Alarm(_) => return,
            };
            let _ = tx.send(cmd);
        });
        let media = MediaSession::start_with_listener(
            rtp,
            line_api::muted(&neg, l.mute),
            Box::new(source),
            Box::new(sink),
            cfg,
            notices,
        );
        if let Some(r) = &l.ringback {
            r.attach_stats(media.shared_stats());
        }
        l.media = Some(media);
        self.joined_if_asked(n);
        self.update_audible();
    }

    fn on_media(&mut self, n: usize, started: Instant, event: MediaEvent) {
        if self.lines.get(n).is_none_or(|l| l.started != started) {
            return;
        }
        match event {
            MediaEvent::DtmfReceived(digit) => self.dtmf_received(n, digit, "RTP"),
            MediaEvent::RemoteLatched(addr) => self.log(
                Severity::Event,
                &format!("line {n}: media latched to {addr}"),
            ),
        }
    }

    /// An incoming DTMF digit: the `DTMF` notification and `onDTMF`.
    fn dtmf_received(&self, n: usize, digit: char, how: &str) {
        let Some(l) = self.lines.get(n) else { return };
        self.notify(notify::dtmf(n as i32, &l.peername, how, digit));
        self.callback("onDTMF", vec![digit.to_string().into(), n.into()]);
    }

    async fn accept(&mut self, sel: LineSel) -> Result<Value, ApiError> {
        let lines = self.lines.select(sel);
        let n = lines
            .into_iter()
            .find(|n| {
                self.lines
                    .get(*n)
                    .is_some_and(|l| l.phase == CallPhase::Incoming)
            })
            .or_else(|| {
                // Without a line argument accept the first ringing call.
                self.lines
                    .iter()
                    .find(|(_, l)| l.phase == CallPhase::Incoming)
                    .map(|(n, _)| n)
            })
            .ok_or_else(|| ApiError::Failed("no incoming call to accept".into()))?;
        self.answer_line(n).await?;
        Ok(Value::from(n))
    }

    async fn answer_line(&mut self, n: usize) -> Result<(), ApiError> {
        if let Some(why) = self.microphone_refusal().await {
            // RFC 3261 §21.4.18: the user cannot take the call now.
            self.display(Severity::Error, &why);
            self.end_locally_with(n, 480, Some("no microphone")).await;
            return Err(ApiError::Failed(why));
        }
        self.auto_hold_others(n, autohold::Trigger::Incoming);
        let prefs = self.media_prefs();
        self.sdp_version += 1;
        let version = self.sdp_version;
        let Some(l) = self.lines.get_mut(n) else {
            return Err(ApiError::Failed("no such line".into()));
        };
        let Peer::Sip(key) = l.peer else {
            return Err(ApiError::Failed("not a SIP call".into()));
        };
        let Some(mut rtp) = l.rtp.take() else {
            return Err(ApiError::Failed("no RTP port for this call".into()));
        };
        let remote_offer = l.remote_offer.clone();
        let peer_ip = l.peeraddress.parse().ok();
        let port_map = self.map_rtp(&mut rtp).await;
        if let Some(l) = self.lines.get_mut(n) {
            l.port_map = port_map;
        }
        self.prepare_ice(
            &mut rtp,
            peer_ip,
            Some(remote_offer.as_deref().unwrap_or("")),
        )
        .await;
        let local = rtp.sdp_addr(rtp.local_addr());
        let Some(l) = self.lines.get_mut(n) else {
            return Err(ApiError::Failed("no such line".into()));
        };
        let Some(sip) = self.sip.clone() else {
            l.rtp = Some(rtp);
            return Err(ApiError::Failed("engine not started".into()));
        };
        match l.remote_offer.clone() {
            Some(offer) => {
                let (origin, ver) = (l.sdp_origin, l.sdp_ver);
                match sdp::answer_offer_with_version(&offer, origin, ver, local, &prefs) {
                    Ok((answer, neg)) => {
                        // The offer's ICE first: with rtcp-mux our RTCP component goes.
                        rtp.apply_remote_ice(&offer, false);
                        let answer = rtp.add_ice_to_sdp(&answer, false);
                        if let Some(l) = self.lines.get_mut(n) {
                            l.offer = Some(prefs.clone());
                            l.rtp = Some(rtp);
                        }
                        sip.answer(key, answer);
                        self.start_media(n, neg).await;
                        self.connected(n);
                    }
                    Err(e) => {
                        l.rtp = Some(rtp);
                        // RFC 3261 §13.3.1.4: an offer we cannot accept gets 488.
                        sip.reject(key, 488);
                        self.finish(
                            n,
                            DiscParty::Local,
                            format!("488 Not Acceptable Here ({e})"),
                        )
                        .await;
                        return Err(ApiError::Failed(format!("cannot answer the offer: {e}")));
                    }
                }
            }
            None => {
                // No offer in the INVITE: ours goes in the 200 OK, the answer comes in the ACK.
                // (ICE is not gathered for it: without a remote offer `prepare_ice` saw none.)
                let offer = sdp::create_offer(l.sdp_origin, version, local, &prefs);
                l.rtp = Some(rtp);
                sip.answer(key, offer);
                if let Some(l) = self.lines.get_mut(n) {
                    l.offer = Some(prefs);
                }
                self.connected(n);
            }
        }
        Ok(())
    }

    async fn reject(&mut self, sel: LineSel) -> Result<Value, ApiError> {
        let n = self
            .lines
            .select(sel)
            .into_iter()
            .chain(
                self.lines
                    .iter()
                    .filter(|(_, l)| l.phase == CallPhase::Incoming)
                    .map(|(n, _)| n),
            )
            .find(|n| {
                self.lines
                    .get(*n)
                    .is_some_and(|l| l.phase == CallPhase::Incoming)
            })
            .ok_or_else(|| ApiError::Failed("no incoming call to reject".into()))?;
        if let (
            Some(sip),
            Some(Line {
                peer: Peer::Sip(key),
                ..
            }),
        ) = (&self.sip, self.lines.get(n))
        {
            sip.reject(*key, 486);
        }
        self.finish(n, DiscParty::Local, "486 Busy Here".into())
            .await;
        Ok(Value::from(n))
    }

    async fn hangup(&mut self, sel: LineSel) -> Result<Value, ApiError> {
        let lines = self.lines.select(sel);
        for n in &lines {
            // Hanging up the consultation call of an attended transfer completes it.
            if self.complete_attended(*n).await {
                continue;
            }
            self.end_locally(*n).await;
        }
        Ok(Value::from(lines.len()))
    }

    /// Ends a line from our side: CANCEL, BYE or rejection as its state needs.
    async fn end_locally(&mut self, n: usize) {
        self.end_locally_with(n, 486, None).await;
    }

    /// Ends a line from our side; an unanswered incoming call is refused with `reject_code`,
    /// and `why` replaces the CDR reason when given.
    async fn end_locally_with(&mut self, n: usize, reject_code: u16, why: Option<&str>) {
        let Some(l) = self.lines.get(n) else {
            return;
        };
        let code_text = format!("{reject_code} {}", reason_phrase(reject_code));
        let reason = match l.phase {
            CallPhase::Connected => "BYE",
            CallPhase::Incoming => code_text.as_str(),
            CallPhase::Setup | CallPhase::Ringing => "CANCEL",
        };
        if let (Peer::Sip(key), Some(sip)) = (&l.peer, &self.sip) {
            if l.phase == CallPhase::Incoming {
                sip.reject(*key, reject_code);
            } else {
                sip.hangup(*key);
            }
        }
        let reason = match why {
            Some(w) => format!("{reason} ({w})"),
            None => reason.to_string(),
        };
        self.finish(n, DiscParty::Local, reason).await;
    }

    /// Ends calls whose ring or talk time ran out (`ringtimeout[in|out]`, `calltimeout`).
    async fn expire_calls(&mut self, now: Instant) {
        let limits = timers::Limits::from_params(&self.params);
        let due: Vec<(usize, timers::Expiry)> = self
            .lines
            .iter()
            .filter(|(_, l)| matches!(l.peer, Peer::Sip(_)))
            .filter_map(|(n, l)| {
                timers::expired(l.phase, l.started, l.connected, now, &limits).map(|e| (n, e))
            })
            .collect();
        for (n, e) in due {
            if e == timers::Expiry::ForwardNoAnswer {
                let to = self.params.get("callforwardonnoanswer");
                let key = match self.lines.get(n).map(|l| &l.peer) {
                    Some(Peer::Sip(k)) => Some(*k),
                    _ => None,
                };
                if let Some(k) = key {
                    match self.redirect_call(k, to.trim()) {
                        Ok(uri) => {
                            self.log(
                                Severity::Event,
                                &format!("line {n}: not answered, forwarded to {uri}"),
                            );
                            continue;
                        }
                        Err(e) => self.log(
                            Severity::Warning,
                            &format!("line {n}: call forward failed: {e}"),
                        ),
                    }
                }
            }
            self.log(Severity::Event, &format!("line {n}: {}", e.text()));
            // RFC 3261 §21.4.18: 480 tells the caller we were not reachable in time.
            self.end_locally_with(n, 480, Some(e.text())).await;
        }
    }

    fn dtmf(&mut self, sel: LineSel, digits: &str) -> Result<Value, ApiError> {
        let n = self
            .lines
            .select(sel)
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Failed("no call to send DTMF to".into()))?;
        let Some(l) = self.lines.get(n) else {
            return Err(ApiError::Failed("no call to send DTMF to".into()));
        };
        let mode = self.params.get_i64("dtmfmode").unwrap_or(2);
        let m = match &l.media {
            Some(m) => m,
            None if matches!(l.peer, Peer::Echo { .. }) => return Ok(Value::Null),
            None => return Err(ApiError::Failed("the call has no media yet".into())),
        };
        let nte = l
            .neg
            .as_ref()
            .is_some_and(|neg| neg.telephone_event_pt.is_some());
        // `dtmfmode`: 0 off, 1 SIP INFO, 2 auto (RFC 4733 when negotiated, else tones in the
        // audio), 3 INFO + RFC 4733, 4 RFC 4733, 5 in-band tones, 6 INFO + in-band.
        let (info, rfc4733, inband) = match mode {
            0 => return Err(ApiError::Failed("DTMF is switched off (dtmfmode 0)".into())),
            1 => (true, false, false),
            3 => (true, true, false),
            4 => (false, true, false),
            5 => (false, false, true),
            6 => (true, false, true),
            _ => (false, nte, !nte),
        };
        if rfc4733 {
            m.send_dtmf(digits);
        }
        if inband {
            m.send_dtmf_inband(digits);
        }
        if info {
            // RFC 6086 INFO with application/dtmf-relay, one request per digit, spaced like
            // key presses so each INFO transaction ends before the next starts (a receiver
            // refuses an INFO overtaken by a later CSeq).
            if let (Peer::Sip(call), Some(sip)) = (&l.peer, &self.sip) {
                let (call, sip) = (*call, sip.clone());
                let keys: Vec<char> = digits.chars().collect();
                tokio::spawn(async move {
                    for d in keys {
                        if matches!(d, ' ' | ',') {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                        let body = format!("Signal={d}\r\nDuration=160\r\n");
                        if let Err(e) = sip.send_info(call, "application/dtmf-relay", &body) {
                            warn!("DTMF by INFO: {e}");
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                });
            }
        }
        let how = match (info, rfc4733, inband) {
            (true, true, _) => "INFO+RFC 4733",
            (true, _, true) => "INFO+in-band",
            (true, _, _) => "INFO",
            (_, true, _) => "RFC 4733",
            _ => "in-band",
        };
        self.log(
            Severity::Event,
            &format!("DTMF {digits} on line {n} ({how})"),
        );
        Ok(Value::Null)
    }

    /// Closes a line: stops media, emits the disconnect statuses, the CDR and the callbacks.
    async fn finish(&mut self, n: usize, party: DiscParty, reason: String) {
        let Some(mut l) = self.lines.remove(n) else {
            return;
        };
        self.stop_waiting_beep(l.waiting_beep.take());
        self.stop_waiting_beep(l.ringback_sound.take());
        // A consultation call that ends before the transfer: the first call resumes (or, with
        // transfertype 2 and 4 when the consulted party hung up, is transferred to it).
        let consult_for = l.consult_for.take();
        let by_target = (party == DiscParty::Peer && l.phase == CallPhase::Connected)
            .then(|| l.peername.clone());
        self.consultation_ended(consult_for, by_target);
        if let (Some(orig), Some(sip)) = (l.referred_by.take(), &self.sip) {
            let code = reason
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| *c >= 300)
                .unwrap_or(487);
            let _ = sip.notify_refer(orig, code);
        }
        if let Some(rec) = l.recording.take() {
            self.recording_done(n, rec);
        }
        let mut stats = None;
        if let Some(m) = l.media.take() {
            let st = m.stop().await;
            debug!(line = n, ?st, "media stopped");
            stats = Some(st);
        }
        drop(l.port.take());
        self.release_hub_if_idle().await;
        if let Peer::Echo { call, .. } = &mut l.peer {
            if let Some(c) = call.take() {
                c.stop().await;
            }
        }
        let now = Instant::now();
        let (connecttime, duration) = match l.connected {
            Some(c) => (
                c.duration_since(l.started).as_millis() as u64,
                now.duration_since(c).as_millis() as u64,
            ),
            None => (now.duration_since(l.started).as_millis() as u64, 0),
        };
        let me = self.local_name(&l.local_user);
        let (caller, called) = match l.direction {
            Direction::Outgoing => (me, l.peername.clone()),
            Direction::Incoming => (l.peername.clone(), me),
        };
        let cdr = Cdr {
            line: n as i32,
            peername: l.peername.clone(),
            peerdisplayname: l.peerdisplayname.clone(),
            caller,
            called,
            peeraddress: l.peeraddress.clone(),
            connecttime_ms: connecttime,
            duration_ms: duration,
            direction: l.direction as u8,
            discparty: party,
            reason: reason.clone(),
        };
        // The history row is committed before anything announces the end of the call: a
        // CDR line or callback that a client saw always has its row (a crash in between
        // would lose it otherwise).
        let entry = crate::profile::HistoryEntry {
            line: cdr.line,
            direction: cdr.direction,
            peer: cdr.peername.clone(),
            peer_display: cdr.peerdisplayname.clone(),
            caller: cdr.caller.clone(),
            called: cdr.called.clone(),
            connect_ms: cdr.connecttime_ms,
            duration_ms: cdr.duration_ms,
            disc_party: cdr.discparty as u8,
            reason: cdr.reason.clone(),
            callid: l.callid.clone(),
        };
        if let Err(e) = self.with_profile(|p| p.add_history(&entry)) {
            self.log(Severity::Warning, &format!("call history not saved: {e}"));
        }
        let st = |text: &str| {
            let mut s = self.line_status(n, &l, text);
            s.incall = 0;
            s.format()
        };
        self.notify(st("CallDisconnect"));
        self.notify(st("Finished"));
        self.callback(
            "onCallStateChange",
            vec![
                "callDisconnected".into(),
                (l.direction as u8).into(),
                l.peername.clone().into(),
                l.peerdisplayname.clone().into(),
                n.into(),
            ],
        );
        if let (Some(st), true) = (&stats, self.params.get_i64("jsscripstats").unwrap_or(0) > 0) {
            self.notify(notify::status_stats(
                n as i32,
                &l.peername,
                &self.username(),
                l.direction as u8,
                &l.peerdisplayname,
                st,
                &l.callid,
            ));
        }
        self.notify(cdr.format());
        self.integrations.on_call_end(&self.params, &cdr, &l.callid);
        self.callback("onCdr", cdr.callback_args());
        if let Some(st) = &stats {
            // After calls longer than 7 s the RTP totals go to the log (loglevel 3 and up).
            if duration > 7000 {
                let expected = st.packets_received + st.packets_lost;
                let pct = (st.packets_lost * 100).checked_div(expected).unwrap_or(0);
                self.log(
                    Severity::Event,
                    &format!(
                        "rtp stat: sent {} rec {} loss {} {}%",
                        st.packets_sent, st.packets_received, st.packets_lost, pct
                    ),
                );
            }
        }
        self.last_call = Some(LastCall {
            cdr: cdr.clone(),
            codec: l
                .neg
                .as_ref()
                .map(|ng| ng.codec.encoding_name().to_string())
                .unwrap_or_default(),
            stats,
        });
        self.log(
            Severity::Event,
            &format!("call on line {n} ended: {reason}"),
        );
        if self.lines.is_empty() {
            self.emit_general_text("Call Finished".into());
        }
        self.emit_general();
    }

    // ----- SIP events -----------------------------------------------------------------------

    /// The number to dial again when line `n` failed the way `redialonfail` covers: an
    /// outgoing call that never connected and ended without an answer from the callee
    /// (timeout, transport failure, 408 or a 5xx from a server); once per call.
    fn redial_target(&self, n: usize, reason: &EndReason, code: Option<u16>) -> Option<String> {
        if self.params.get_i64("redialonfail").unwrap_or(1) != 1 {
            return None;
        }
        let l = self.lines.get(n)?;
        if l.direction != Direction::Outgoing || l.connected.is_some() || l.redialed {
            return None;
        }
        let retry = match reason {
            EndReason::Timeout | EndReason::Failed => true,
            EndReason::Rejected => matches!(code, Some(408 | 500 | 502 | 503 | 504)),
            _ => false,
        };
        retry.then(|| l.dialled.clone()).flatten()
    }

    fn line_of(&self, key: CallKey) -> Option<usize> {
        self.lines
            .iter()
            .find(|(_, l)| matches!(l.peer, Peer::Sip(k) if k == key))
            .map(|(n, _)| n)
    }

    async fn on_sip(&mut self, ev: SipEvent) {
        match ev {
            SipEvent::Registration(state) => self.on_registration(state).await,
            SipEvent::ServerParameters(headers) => self.apply_mparams(&headers),
            SipEvent::ServerEventPackages(packages) => {
                self.log(
                    Severity::Event,
                    &format!(
                        "server event packages (Allow-Events): {}",
                        packages.join(", ")
                    ),
                );
                self.watch_switch.on_server_packages(&packages);
                self.server_packages = Some(packages);
            }
            SipEvent::ExtraRegistration { account, state } => {
                self.on_extra_registration(account, state).await
            }
            SipEvent::Incoming {
                call,
                sip_call_id,
                request_user,
                from_user,
                from_display,
                from_uri,
                remote_addr,
                sdp,
                headers,
                ..
            } => {
                self.apply_mparams(&headers);
                let ctx = incoming::Context {
                    busy: self
                        .lines
                        .iter()
                        .any(|(_, l)| l.phase == CallPhase::Connected),
                    dnd: self.dnd,
                };
                let decision = incoming::decide(&self.params, &from_user, &from_uri, &headers, ctx);
                if let incoming::Decision::Forward(to) = &decision {
                    // RFC 3261 §21.3.3: redirected before anything rings.
                    match self.redirect_call(call, to) {
                        Ok(uri) => self.log(
                            Severity::Event,
                            &format!("incoming call from {from_user} forwarded to {uri}"),
                        ),
                        Err(e) => {
                            self.log(Severity::Warning, &format!("call forward failed: {e}"));
                            if let Some(sip) = &self.sip {
                                sip.reject(call, 480);
                            }
                        }
                    }
                    return;
                }
                if let incoming::Decision::Reject(code, phrase) = decision {
                    // Refused before anything rings: no line, only a log entry.
                    if let Some(sip) = &self.sip {
                        sip.reject(call, code);
                    }
                    self.log(
                        Severity::Event,
                        &format!("incoming call from {from_user} refused: {code} {phrase}"),
                    );
                    return;
                }
                let inc = IncomingCall {
                    call,
                    sip_call_id,
                    local_user: self.extra_user_called(&request_user),
                    from_user,
                    from_display,
                    remote_addr,
                    sdp,
                };
                self.on_incoming(inc, decision).await
            }
            SipEvent::Progress {
                call, code, sdp, ..
            } => {
                let Some(n) = self.line_of(call) else { return };
                self.on_provisional(n, code, sdp).await;
            }
            SipEvent::Answered { call, sdp, .. } => {
                let Some(n) = self.line_of(call) else { return };
                let fallback = self.media_prefs();
                let Some(l) = self.lines.get_mut(n) else {
                    return;
                };
                let prefs = l.offer.clone().unwrap_or(fallback);
                let incoming = l.direction == Direction::Incoming;
                if let Some(r) = &l.ringback {
                    r.set_playing(false);
                }
                let mixer_ringback = l.ringback_sound.take();
                self.stop_waiting_beep(mixer_ringback);
                let Some(l) = self.lines.get_mut(n) else {
                    return;
                };
                // An incoming call that carried an offer was answered already; its ACK has no
                // SDP to apply (RFC 3264 §4: one offer, one answer).
                let answer = if incoming && l.remote_offer.is_some() {
                    None
                } else {
                    sdp.or_else(|| l.early_answer.take())
                };
                if let Some(answer) = answer {
                    if let Some(rtp) = l.rtp.as_mut() {
                        rtp.apply_remote_ice(&answer, true);
                    }
                    match sdp::apply_answer(&answer, &prefs) {
                        Ok(neg) => self.start_media(n, neg).await,
                        Err(e) => {
                            self.log(Severity::Error, &format!("unusable SDP answer: {e}"));
                            if let Some(sip) = &self.sip {
                                sip.hangup(call);
                            }
                            self.finish(n, DiscParty::Local, format!("bad SDP answer: {e}"))
                                .await;
                            return;
                        }
                    }
                } else if !incoming {
                    self.log(Severity::Warning, "call answered without SDP");
                }
                self.connected(n);
            }
            SipEvent::Ended {
                call,
                reason,
                code,
                text,
            } => {
                let Some(n) = self.line_of(call) else { return };
                let (party, why) = describe_end(&reason, code, &text);
                let retry = self.redial_target(n, &reason, code);
                self.finish(n, party, why).await;
                if let Some(number) = retry {
                    // `redialonfail`: one more attempt after a failure that was not the
                    // callee's answer (no response, server or transport error).
                    self.log(
                        Severity::Event,
                        &format!("call to {number} failed: dialling again"),
                    );
                    match self.call(&number).await {
                        Ok(m) => {
                            if let Some(l) = self.lines.get_mut(m) {
                                l.redialed = true;
                            }
                        }
                        Err(e) => self.log(Severity::Warning, &format!("redial: {e}")),
                    }
                }
            }
            SipEvent::DtmfReceived { call, digit } => {
                if let Some(n) = self.line_of(call) {
                    self.dtmf_received(n, digit, "INFO");
                }
            }
            SipEvent::Trace {
                outgoing,
                remote,
                text,
            } => {
                self.siplog.push(outgoing, text.clone());
                // loglevel 5: every SIP message, one LOG line each (line breaks shown as " | ";
                // digest responses already redacted by the SIP layer).
                if self.loglevel() >= 5 {
                    let dir = if outgoing { "SIP >>" } else { "SIP <<" };
                    let body = text.trim_end().replace("\r\n", " | ").replace('\n', " | ");
                    self.log(Severity::Event, &format!("{dir} {remote}: {body}"));
                }
            }
            // webphone-sip session events (issue 3): not used by the engine yet; the SIP
            // layer answers re-offers on its own after SipUa::REOFFER_ANSWER_TIMEOUT.
            SipEvent::Reoffer { call, sdp } => {
                if let Some(n) = self.line_of(call) {
                    self.on_reoffer(n, call, &sdp);
                }
            }
            SipEvent::Reanswered { call, sdp } => {
                self.netwatch_reoffer_result(call, true);
                if let Some(n) = self.line_of(call) {
                    self.on_reanswer(n, sdp.as_deref());
                    self.refer_held_call(n, call);
                }
            }
            SipEvent::ReofferFailed { call, code, reason } => {
                self.netwatch_reoffer_result(call, false);
                if let Some(l) = self.line_of(call).and_then(|n| self.lines.get_mut(n)) {
                    l.hold_pending = None;
                }
                if let Some(n) = self.line_of(call) {
                    self.refer_held_call(n, call);
                }
                self.display(
                    Severity::Warning,
                    &format!("The call could not be changed: {code} {reason}"),
                );
            }
            SipEvent::MessageStatus { key, code, reason } => {
                self.on_message_status(key, code, &reason)
            }
            SipEvent::MessageReceived {
                from_user,
                from_uri,
                content_type,
                body,
                ..
            } => self.on_message(&from_user, &from_uri, &content_type, &body),
            SipEvent::ReferStatus { call, code } => self.on_refer_status(call, code).await,
            SipEvent::ReferAccepted { call } => self.on_refer_accepted(call).await,
            SipEvent::Refer { call, target, .. } => self.on_refer(call, &target).await,
            SipEvent::Notify {
                sub,
                event,
                state,
                body,
                ..
            } => self.on_notify(sub, &event, &state, &body),
            SipEvent::SubscriptionFailed { sub, code } => self.on_subscription_failed(sub, code),
            SipEvent::PublishStatus { code, reason } => {
                if code >= 300 {
                    self.log(
                        Severity::Warning,
                        &format!("presence not published: {code} {reason}"),
                    );
                }
            }
            SipEvent::Redirected { call, code, target } => {
                if let Some(n) = self.line_of(call) {
                    self.log(
                        Severity::Event,
                        &format!("line {n}: redirected ({code}) to {target}"),
                    );
                    if let Some(l) = self.lines.get_mut(n) {
                        l.peername = user_of(&target);
                    }
                }
            }
        }
    }

    async fn on_registration(&mut self, state: RegistrationState) {
        match state {
            RegistrationState::Registering => {
                if !std::mem::take(&mut self.failing_over) {
                    self.failovers = 0;
                }
                let was = self.reg == RegState::Registered;
                self.reg = RegState::Registering {
                    was_registered: was,
                };
                if !was {
                    self.emit_general();
                }
            }
            RegistrationState::Registered { expires } => {
                self.failovers = 0;
                let first = self.reg != RegState::Registered;
                self.reg = RegState::Registered;
                if first {
                    self.log(
                        Severity::Event,
                        &format!("registered (expires {expires} s)"),
                    );
                    self.emit_general();
                    self.callback("onRegistered", vec![]);
                    self.watch_configured_lists().await;
                    // Engine extra (reference::ENGINE_EXTRAS): 0 never, 1 with voicemailnum,
                    // 2 always.
                    let mwi_mode = self.params.get_i64("mwisubscribe");
                    self.subscribe_mwi(mwi_mode);
                }
            }
            RegistrationState::Failed { code, reason } => {
                let text = register_failure_text(Some(code), &reason);
                if self.fail_over_registration(code) {
                    // Not the user's concern yet: the next server is being tried.
                    self.log(Severity::Warning, &text);
                    return;
                }
                self.last_reg_failure = text.clone();
                self.reg = RegState::Failed(text.clone());
                self.emit_general();
                self.display(Severity::Error, &text);
                self.callback("onRegisterFailed", vec![text.into()]);
            }
            RegistrationState::Unregistered => {
                let was = self.reg == RegState::Registered;
                self.reg = RegState::Unregistered;
                self.emit_general();
                if was {
                    self.callback("onUnRegistered", vec![]);
                }
            }
        }
    }

    async fn on_incoming(&mut self, inc: IncomingCall, decision: incoming::Decision) {
        self.take_incoming(inc, decision).await;
        // The next incoming call's RTP socket, bound once this one was answered (or rings).
        if self.spare_rtp.is_none() {
            self.spare_rtp = self.bind_rtp().await.ok();
        }
    }

    async fn take_incoming(&mut self, inc: IncomingCall, decision: incoming::Decision) {
        let IncomingCall {
            call,
            sip_call_id,
            local_user,
            from_user,
            from_display,
            remote_addr,
            sdp,
        } = inc;
        let Some(sip) = self.sip.clone() else { return };
        let spare = self
            .spare_rtp
            .take()
            .filter(|r| r.local_addr().ip() == self.local_ip);
        let rtp = match spare {
            Some(r) => {
                r.discard_pending();
                r
            }
            None => match self.bind_rtp().await {
                Ok(r) => r,
                Err(e) => {
                    warn!("cannot open an RTP port for an incoming call: {e}");
                    sip.reject(call, 500);
                    return;
                }
            },
        };
        let mut line = Line::new(
            Peer::Sip(call),
            Direction::Incoming,
            CallPhase::Incoming,
            from_user,
        );
        line.peerdisplayname = from_display.unwrap_or_default();
        line.peeraddress = remote_addr.ip().to_string();
        line.callid = sip_call_id;
        line.local_user = local_user;
        line.rtp = Some(rtp);
        line.remote_offer = sdp;
        line.ignored = decision == incoming::Decision::Ignore;
        let Some(n) = self.lines.alloc(line) else {
            // RFC 3261 §21.4.24: every line is busy.
            sip.reject(call, 486);
            return;
        };
        if decision == incoming::Decision::Barge {
            self.barge_in(n).await;
            return;
        }
        if decision == incoming::Decision::Ignore {
            // `autoignore=1`: the caller keeps ringing; nothing is shown until it gives up.
            self.log(
                Severity::Event,
                &format!("incoming call on line {n} ignored"),
            );
            sip.ringing(call);
            return;
        }
        self.emit_line(n, "CallSetup");
        self.emit_line(n, "Ringing");
        self.emit_general();
        self.call_state(n, "callSetup");
        self.call_state(n, "callRinging");
        self.incoming_beep();
        if decision == incoming::Decision::Ring {
            self.call_waiting_beep(n).await;
        }
        if let incoming::Decision::TransferAlways(to) = &decision {
            if let Some(l) = self.lines.get_mut(n) {
                l.transfer_on_connect = Some(to.clone());
            }
        }
        if matches!(
            decision,
            incoming::Decision::AutoAnswer | incoming::Decision::TransferAlways(_)
        ) {
            if let Some(l) = self.lines.get_mut(n) {
                l.auto_answered = true;
            }
            if let Err(e) = self.answer_line(n).await {
                warn!("auto-answer failed: {e}");
            }
        } else {
            sip.ringing(call);
        }
    }

    /// Answers an incoming, unanswered call with 302 to `number` (`forward()`,
    /// `callforwardalways`, `callforwardonbusy`, `callforwardonnoanswer`); returns the URI.
    pub(super) fn redirect_call(&self, call: CallKey, number: &str) -> Result<String, ApiError> {
        let uri = self.dial_target(number)?;
        let Some(sip) = &self.sip else {
            return Err(ApiError::Failed("engine not started".into()));
        };
        sip.redirect(call, 302, vec![uri.clone()])
            .map_err(|e| ApiError::Failed(format!("forward: {e}")))?;
        Ok(uri)
    }
}

/// The User-Agent header (RFC 3261 §20.41): `useragent` when set (any text: some servers
/// detect features from it), else the reseller's `brandname`, else `webphone`. No version by
/// default: scanners learn nothing they could match to known bugs. Control characters, which
/// would break the header, are removed.
fn user_agent(useragent: &str, brandname: &str) -> String {
    let pick = [useragent.trim(), brandname.trim()]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or("webphone");
    let clean: String = pick.chars().filter(|c| !c.is_control()).collect();
    if clean.trim().is_empty() {
        "webphone".to_string()
    } else {
        clean.trim().to_string()
    }
}

/// The standard reason phrase of the final responses we send (RFC 3261 §21).
fn reason_phrase(code: u16) -> &'static str {
    match code {
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        603 => "Decline",
        _ => "",
    }
}

/// Who ended the call and the CDR reason text.
fn describe_end(reason: &EndReason, code: Option<u16>, text: &str) -> (DiscParty, String) {
    let party = match reason {
        EndReason::LocalHangup | EndReason::LocalCancel | EndReason::LocalReject => {
            DiscParty::Local
        }
        EndReason::RemoteHangup | EndReason::RemoteCancel | EndReason::Rejected => DiscParty::Peer,
        EndReason::Timeout | EndReason::Failed => DiscParty::Undefined,
    };
    let why = match reason {
        EndReason::LocalHangup | EndReason::RemoteHangup => "BYE".to_string(),
        EndReason::LocalCancel | EndReason::RemoteCancel => "CANCEL".to_string(),
        _ => match code {
            Some(c) if text.is_empty() => c.to_string(),
            Some(c) => format!("{c} {text}"),
            None if text.is_empty() => "failed".to_string(),
            None => text.to_string(),
        },
    };
    (party, why)
}

/// The user-facing registration failure text (one of the documented display texts, with the
/// server's answer in brackets).
fn register_failure_text(code: Option<u16>, reason: &str) -> String {
    let base = match code {
        None | Some(408) => "No response from server",
        Some(503) => "Server address unreachable",
        Some(401) | Some(403) | Some(407) => "Authentication failed",
        Some(c) if (300..700).contains(&c) => "Register rejected",
        Some(_) => "Register failed",
    };
    match code {
        Some(c) if c >= 100 => format!("{base} ({c} {reason})"),
        _ if reason.is_empty() => base.to_string(),
        _ => format!("{base} ({reason})"),
    }
}

async fn recv_sip(rx: &mut Option<mpsc::UnboundedReceiver<SipEvent>>) -> Option<SipEvent> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// A do-nothing device used when even the null device cannot be opened.
struct Silence;
impl AudioInput for Silence {
    fn read_frame(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
}
impl AudioOutput for Silence {
    fn write_frame(&mut self, _frame: &[i16]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autotransportdetect_adds_tcp_and_tls_to_addresses_without_a_transport() {
        assert_eq!(
            with_transport_variants("pbx.example.org", false),
            ["pbx.example.org"]
        );
        assert_eq!(
            with_transport_variants("pbx.example.org", true),
            [
                "pbx.example.org",
                "pbx.example.org;transport=tcp",
                "pbx.example.org;transport=tls"
            ]
        );
        // a written port is the UDP/TCP port: no TLS guess
        assert_eq!(
            with_transport_variants("127.0.0.1:5070", true),
            ["127.0.0.1:5070", "127.0.0.1:5070;transport=tcp"]
        );
        assert_eq!(
            with_transport_variants("[::1]:5070", true),
            ["[::1]:5070", "[::1]:5070;transport=tcp"]
        );
        // a transport named by the address is kept
        for s in ["pbx;transport=tcp", "wss://pbx/ws", "sips:pbx"] {
            assert_eq!(with_transport_variants(s, true), [s]);
        }
    }

    #[test]
    fn user_agent_is_useragent_else_brandname_else_webphone() {
        assert_eq!(user_agent("", ""), "webphone");
        assert_eq!(user_agent("", " Acme Phone "), "Acme Phone");
        assert_eq!(user_agent("PBXcompat/2.1", "Acme Phone"), "PBXcompat/2.1");
        assert_eq!(user_agent("", "Bad\r\nX-Injected: 1"), "BadX-Injected: 1");
        assert_eq!(user_agent("\r\n", ""), "webphone");
    }

    #[test]
    fn dtmf_suffix_is_split_from_the_number() {
        assert_eq!(
            split_dtmf_suffix("123,456"),
            ("123".into(), Some("456".into()))
        );
        assert_eq!(split_dtmf_suffix("1002"), ("1002".into(), None));
        assert_eq!(split_dtmf_suffix("1002,"), ("1002".into(), None));
    }

    #[test]
    fn transport_follows_parameter_and_server_address() {
        assert_eq!(transport_for(-1, "127.0.0.1:5060"), Ok(Transport::Udp));
        assert_eq!(
            transport_for(-1, "wss://pbx.example:8443/ws"),
            Ok(Transport::Wss)
        );
        assert_eq!(transport_for(-1, "ws://127.0.0.1:8080"), Ok(Transport::Ws));
        assert_eq!(transport_for(-1, "sips:pbx.example"), Ok(Transport::Tls));
        assert_eq!(
            transport_for(-1, "pbx.example;transport=tcp"),
            Ok(Transport::Tcp)
        );
        assert_eq!(transport_for(1, "pbx.example"), Ok(Transport::Tcp));
        assert_eq!(transport_for(2, "pbx.example"), Ok(Transport::Tls));
        assert_eq!(
            transport_for(0, "pbx.example;transport=tcp"),
            Ok(Transport::Udp)
        );
        assert!(transport_for(3, "pbx.example").is_err());
        assert!(transport_for(4, "pbx.example").is_err());
        // 5 (UDP with a vendor's HTTP tunnel as failover): auto, without the tunnel.
        assert_eq!(transport_for(5, "pbx.example"), Ok(Transport::Udp));
        assert_eq!(transport_for(5, "sips:pbx.example"), Ok(Transport::Tls));
        assert!(transport_is_auto(5, "pbx.example"));
        // RFC 3263 §4.1: only -1 with a bare server address leaves the transport to DNS.
        assert!(transport_is_auto(-1, "pbx.example"));
        assert!(transport_is_auto(-1, "sip:pbx.example"));
        assert!(!transport_is_auto(0, "pbx.example"));
        assert!(!transport_is_auto(-1, "sips:pbx.example"));
        assert!(!transport_is_auto(-1, "pbx.example;transport=udp"));
        assert!(!transport_is_auto(-1, "wss://pbx.example/ws"));
        // use_rport: 0 off, 9 asked but ignored, 3 always used, 1, 2 (and anything else)
        // used from a local address; use_fast_stun -1 keeps the private address.
        use webphone_sip::RportMode;
        assert_eq!(rport_mode(0, 1), RportMode::Off);
        assert_eq!(rport_mode(0, -1), RportMode::Off);
        assert_eq!(rport_mode(9, 1), RportMode::Ignore);
        assert_eq!(rport_mode(3, 1), RportMode::UseAlways);
        for v in [1, 2, -1] {
            assert_eq!(rport_mode(v, 1), RportMode::Use, "{v}");
            assert_eq!(rport_mode(v, -1), RportMode::Ignore, "{v}");
        }
        assert_eq!(ws_path_of("wss://h:8443/sip/ws"), Some("/sip/ws".into()));
        assert_eq!(ws_path_of("ws://h:8080"), None);
        assert_eq!(ws_path_of("h:5060"), None);
    }

    #[test]
    fn mediaencryption_maps_to_srtp_policy() {
        assert_eq!(srtp_policy(0), SrtpPolicy::Off);
        assert_eq!(srtp_policy(-1), SrtpPolicy::Optional);
        assert_eq!(srtp_policy(1), SrtpPolicy::Optional);
        assert_eq!(srtp_policy(2), SrtpPolicy::Required);
        assert_eq!(srtp_policy(3), SrtpPolicy::Required);
        assert!(offers_dtls(3));
        assert!(!offers_dtls(2) && !offers_dtls(-1) && !offers_dtls(0));
    }

    #[test]
    fn host_is_taken_from_server_address_forms() {
        assert_eq!(host_of("127.0.0.1:5060"), "127.0.0.1");
        assert_eq!(host_of("sip.example.org"), "sip.example.org");
        assert_eq!(host_of("[::1]:5060"), "::1");
        assert_eq!(host_of("::1"), "::1");
    }

    #[test]
    fn dialled_target_shows_its_user_part() {
        assert_eq!(user_of("sip:1002@127.0.0.1:5070"), "1002");
        assert_eq!(user_of("1002"), "1002");
        assert_eq!(user_of("tel:+123;phone-context=x"), "+123");
    }

    #[test]
    fn registration_failures_use_the_display_texts() {
        assert_eq!(
            register_failure_text(Some(403), "Forbidden"),
            "Authentication failed (403 Forbidden)"
        );
        assert_eq!(register_failure_text(None, ""), "No response from server");
        assert_eq!(
            register_failure_text(Some(0), "serveraddress is not set"),
            "Register failed (serveraddress is not set)"
        );
        assert_eq!(
            register_failure_text(Some(404), "Not Found"),
            "Register rejected (404 Not Found)"
        );
    }
}
