//! The user-agent policy: a deterministic, sans-IO state machine.
//!
//! Input: a [`Command`] from the API, a [`StackEvent`] from the SIP stack driver, or a
//! timer tick, always with an explicit `now`. Output: a list of [`Action`]s for the driver
//! (send this request, emit that event). No sockets, no clocks, no tasks: everything here is
//! unit-tested with virtual time.
//!
//! It owns:
//! - registration: REGISTER, refresh before expiry, back-off after failures, unregister,
//!   Contact correction from `received`/`rport` (RFC 3261 §10, RFC 3581);
//! - per-call state (Calling / Early / WaitAck / Confirmed / terminating) so `hangup()` picks
//!   CANCEL, BYE or a final response (RFC 3261 §9, §15);
//! - offer/answer bookkeeping: who owes the SDP (RFC 3264, RFC 3261 §13.2.1);
//! - ghost filtering: events for calls already ended are dropped;
//! - connection upkeep (TCP/TLS/WS): keep-alive pings while registered (RFC 5626 §4.4.1) and
//!   re-registration with back-off when the connection to the registrar drops (RFC 5626 §4.5).

mod extra;

pub(crate) use extra::account_key;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::fast_stun::StunUse;
use crate::target::{HostPort, Target};
use crate::{AccountConfig, CallKey, EndReason, RegistrationState, SipEvent, Transport};

/// 64*T1 with T1 = 500 ms (RFC 3261 §17.1.1.2 Timer B): how long we wait for the final
/// response after sending CANCEL, and for the ACK of our 2xx, before giving up.
pub(crate) const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(32);
/// How long `shutdown()` waits for the un-REGISTER to be answered.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Registration lifetime requested when the account says 0.
pub(crate) const DEFAULT_EXPIRES: u32 = 3600;
/// Consecutive Contact corrections (RFC 3581) allowed before we stop chasing a moving
/// `received`/`rport` (e.g. a symmetric NAT that changes ports).
const MAX_CONTACT_FIXES: u32 = 2;
/// A connection to the registrar that lived at least this long after its re-registration
/// counts as stable: the next loss re-registers at once again instead of backing off.
pub(crate) const FLOW_STABLE: Duration = Duration::from_secs(60);
/// How long the engine has to answer a re-offer ([`SipEvent::Reoffer`]) before the policy
/// answers on its own with our last SDP, its direction adapted to the offer
/// ([`crate::session::fallback_answer`]).
pub(crate) const REOFFER_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// T1 (RFC 3261 §17.1.1.1): first retransmission interval of a reliable provisional
/// response (RFC 3262 §3).
pub(crate) const T1: Duration = Duration::from_millis(500);
/// How many times a re-INVITE/UPDATE refused with 491 is tried in all (RFC 3261 §14.1).
pub(crate) const GLARE_ATTEMPTS: u32 = 4;

/// Commands from the API handle.
#[derive(Debug)]
pub(crate) enum Command {
    SetAccount(AccountConfig),
    Register,
    Unregister,
    /// Replace the extra accounts (multi-account, [`extra`]).
    SetExtraAccounts(Vec<AccountConfig>),
    /// Register every extra account not registered yet.
    RegisterExtra,
    /// Remove the bindings of every extra account.
    UnregisterExtra,
    Invite {
        call: CallKey,
        /// The SIP Call-ID to use (chosen by the handle so that it is known at once).
        call_id: String,
        target: Target,
        sdp: String,
    },
    Ringing(CallKey),
    Answer(CallKey, String),
    Reject(CallKey, u16),
    Hangup(CallKey),
    /// Send a new offer in an established call: re-INVITE (RFC 3261 §14.1) or UPDATE
    /// (RFC 3311 §5.1).
    Reoffer {
        call: CallKey,
        sdp: String,
        update: bool,
    },
    /// The engine's answer to a [`SipEvent::Reoffer`] (empty = not acceptable, 488).
    AnswerReoffer(CallKey, String),
    /// Follow 3xx redirects (`allowcallredirect`).
    AllowRedirect(bool),
    /// When a failed registration is tried again (`forcereregister`), see [`Reregister`].
    Reregister(Reregister),
    /// Remove our bindings (REGISTER with `Expires: 0`) when shutting down (`needunregister`,
    /// on by default); `false` leaves them at the registrar until they expire.
    UnregisterOnShutdown(bool),
    /// When the address the registrar saw (`received`/`rport`, RFC 3581 §4) is registered
    /// in place of ours (`use_rport`, see [`ViaContact`]).
    ContactFromVia(ViaContact),
    /// What the start-up STUN probe found (`use_fast_stun`, [`crate::fast_stun`]).
    StunMapped(StunUse),
    /// Accept INVITEs that do not come through our server (`None`: only when no server
    /// is configured).
    AcceptDirect(Option<bool>),
    /// The local address changed (or the network came back): the transport has moved;
    /// register again with the new Contact at once (RFC 3261 §10.2.1). Carries what a
    /// STUN probe of the new socket found (`use_fast_stun`), if one was made.
    NetworkChanged(Option<StunUse>),
    Shutdown,
}

/// When the registrar's view of our address replaces our own in the Contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ViaContact {
    /// Never (`use_rport` 0 and 9, `use_fast_stun` -1).
    Never,
    /// When our own address is a local one ([`crate::is_local_ip`]), or one learned already
    /// (`use_rport` 1 and 2): a server that sees a public address of ours elsewhere is
    /// mistaken, e.g. behind a load balancer.
    WhenLocal,
    /// Whenever it differs (`use_rport` 3).
    Always,
}

/// Result of one REGISTER transaction (after any digest challenge was answered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RegisterOutcome {
    /// Final status code; 408 when nothing answered, 503 for a transport error
    /// (RFC 3261 §8.1.3.1).
    pub code: u16,
    pub reason: String,
    /// Lifetime granted for our binding (Contact `expires` or `Expires`, RFC 3261 §10.2.4).
    pub expires: Option<u32>,
    /// `Min-Expires` of a 423 response (RFC 3261 §10.2.8).
    pub min_expires: Option<u32>,
    /// Our address as the registrar saw it: Via `received`/`rport` (RFC 3581 §4).
    pub received: Option<HostPort>,
    /// The Contact host/port we registered.
    pub contact: HostPort,
    /// The registration went over a connection (TCP/TLS/WS/WSS), also when DNS chose it
    /// (RFC 3263 §4.1) for a UA configured for UDP: keep-alives are due on it.
    pub reliable: bool,
    /// That connection is a WebSocket (WS/WSS, configured or chosen by NAPTR): its
    /// keep-alive interval is the WebSocket one.
    pub websocket: bool,
    /// The event packages the registrar's 2xx lists in `Allow-Events` (RFC 6665 §8.2.2),
    /// lower-case; `None` when it sends none.
    pub allow_events: Option<Vec<String>>,
    /// The 2xx's `X-MParam`/`X-MParamP` headers as (name, value): parameters the server
    /// pushes (behaviours §2.1).
    pub server_params: Vec<(String, String)>,
}

/// A new incoming INVITE (the driver already sent 100 Trying).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IncomingInvite {
    pub call: CallKey,
    pub sip_call_id: String,
    pub from_user: String,
    pub from_display: Option<String>,
    pub from_uri: String,
    pub to_user: String,
    pub remote_addr: SocketAddr,
    pub sdp: Option<String>,
    pub headers: Vec<(String, String)>,
    /// User part of the Request-URI (who the INVITE is addressed to).
    pub request_user: String,
    /// The INVITE came from the registrar's or outbound proxy's address.
    pub from_server: bool,
}

/// Why the stack ended a dialog on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Termination {
    /// BYE received (RFC 3261 §15.1.2).
    RemoteBye,
    /// CANCEL received for our unanswered server INVITE; 487 was sent (RFC 3261 §9.2).
    RemoteCancel,
    /// No ACK for our 2xx, or another transaction timeout.
    Timeout,
    /// The termination we asked for (our BYE, CANCEL, rejection).
    Local,
    Failed(String),
}

/// Events from the stack driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StackEvent {
    RegisterDone {
        gen: u64,
        outcome: RegisterOutcome,
    },
    /// Outcome of a REGISTER of the extra account `key` ([`account_key`]).
    ExtraRegisterDone {
        key: String,
        gen: u64,
        outcome: RegisterOutcome,
    },
    /// The connection the extra account `key` registered over closed (RFC 5626 §4.5).
    ExtraFlowLost {
        key: String,
    },
    Incoming(IncomingInvite),
    /// Provisional response to our INVITE.
    Provisional {
        call: CallKey,
        code: u16,
        reason: String,
        sdp: Option<String>,
    },
    /// Final response to our INVITE (2xx already ACKed by the transaction layer).
    Final {
        call: CallKey,
        code: u16,
        reason: String,
        sdp: Option<String>,
        /// First Contact URI (the new target of a 3xx, RFC 3261 §8.1.3.4).
        contact: Option<String>,
        /// `Session-Expires` of a 2xx (RFC 4028 §7.2).
        session_expires: Option<String>,
        /// `Min-SE` of a 422 (RFC 4028 §6).
        min_se: Option<u32>,
    },
    /// Our INVITE was challenged (401/407). The driver answers it when it can (digest,
    /// RFC 3261 §22.2) and only passes it on when it cannot: then it is a final response.
    InviteChallenged {
        call: CallKey,
        code: u16,
        reason: String,
        challenges: Vec<crate::digest::Challenge>,
    },
    /// Our INVITE could not be sent or produced no response at all.
    InviteFailed {
        call: CallKey,
        error: String,
    },
    /// ACK for our 2xx to an incoming INVITE.
    AckReceived {
        call: CallKey,
        sdp: Option<String>,
    },
    Terminated {
        call: CallKey,
        cause: Termination,
    },
    /// A PRACK (RFC 3262 §4) for the reliable provisional response numbered `rseq`
    /// (already answered 200 by the stack).
    Prack {
        call: CallKey,
        rseq: u32,
    },
    /// DTMF from a SIP INFO in the dialog.
    Dtmf {
        call: CallKey,
        digit: char,
    },
    /// The connection our registration lives on (TCP/TLS/WS) closed, or a keep-alive
    /// could not be sent on it.
    FlowLost {
        reason: String,
    },
    /// A re-INVITE or UPDATE from the peer in an established dialog; the driver holds its
    /// server transaction under `id` until [`Action::RespondReoffer`].
    Reoffer {
        call: CallKey,
        id: u64,
        update: bool,
        sdp: Option<String>,
    },
    /// Final response to our re-INVITE/UPDATE (`code` 0: it could not be sent; 408: no
    /// response).
    ReofferResult {
        call: CallKey,
        code: u16,
        reason: String,
        sdp: Option<String>,
    },
}

#[derive(Debug)]
pub(crate) enum Input {
    Command(Command),
    Stack(StackEvent),
    Tick,
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Emit(SipEvent),
    /// Send a REGISTER for `account` (`expires` 0 removes the binding). `contact`, when
    /// set, replaces our local address in the Contact (RFC 3581 correction).
    SendRegister {
        gen: u64,
        account: AccountConfig,
        expires: u32,
        contact: Option<HostPort>,
    },
    /// Send a REGISTER for the extra account `key` (its own Call-ID, CSeq and credentials;
    /// `expires` 0 removes the binding).
    SendExtraRegister {
        key: String,
        gen: u64,
        account: AccountConfig,
        expires: u32,
        contact: Option<HostPort>,
    },
    /// The Contact address to use in dialogs from now on (`None`: our local address).
    SetContact(Option<HostPort>),
    /// The registrar holds a binding of `old`, which [`Action::SetContact`] just replaced
    /// by `new`: the next REGISTERs remove it (RFC 3261 §10.2.2), or it would get calls
    /// forked to an address nobody reaches.
    ReplaceBinding {
        old: HostPort,
        new: HostPort,
    },
    /// The registrar holds a binding of `old`, an address we no longer have (the NAT
    /// mapping of the address we moved away from): the next REGISTERs remove it.
    ReleaseBinding(HostPort),
    SendInvite {
        call: CallKey,
        call_id: String,
        target: Target,
        sdp: String,
        /// `Session-Expires` to ask for (RFC 4028 §7.1; with `Supported: timer`).
        session_expires: u32,
    },
    /// Our 2xx to the incoming INVITE `call` carries `Session-Expires: secs;refresher=..`
    /// (and `Require: timer` when the caller supports timers), RFC 4028 §9.
    SessionTimerHeaders {
        call: CallKey,
        secs: u32,
        refresher: crate::session::Refresher,
        require: bool,
    },
    SendRinging(CallKey),
    /// Send the INVITE again to `uri`, the Contact of a 3xx (same call, same Call-ID).
    FollowRedirect {
        call: CallKey,
        uri: String,
        sdp: String,
    },
    /// Send (or retransmit) 180 Ringing reliably: `Require: 100rel`, `RSeq: rseq`
    /// (RFC 3262 §3).
    SendReliableRinging {
        call: CallKey,
        rseq: u32,
    },
    SendAnswer(CallKey, String),
    SendReject(CallKey, u16),
    SendCancel(CallKey),
    SendBye(CallKey),
    /// A 2xx crossed our CANCEL (RFC 3261 §9.1): it is ACKed (the transaction layer ACKs
    /// every 2xx) and the session is ended with a BYE.
    AckAndBye(CallKey),
    /// The driver may drop its dialog handle for the call.
    Forget(CallKey),
    /// Shutdown is complete: stop the stack.
    ShutdownComplete,
    /// Send a keep-alive on the registration's connection: CRLF ping on TCP/TLS
    /// (RFC 5626 §4.4.1), WebSocket ping on WS/WSS.
    SendKeepAlive,
    /// Send `sdp` as a new offer in the dialog: re-INVITE or UPDATE.
    SendReoffer {
        call: CallKey,
        sdp: String,
        update: bool,
    },
    /// Answer the peer's re-INVITE/UPDATE held under `id`: `code` 200 with `sdp`, 491
    /// (glare), 500 (another offer pending; the driver adds `Retry-After`, RFC 3261 §14.2),
    /// 488 (offer not acceptable).
    RespondReoffer {
        call: CallKey,
        id: u64,
        code: u16,
        sdp: Option<String>,
    },
}

/// Who owes the next SDP of the initial offer/answer exchange (RFC 3264 §4, RFC 3261 §13.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Negotiation {
    /// We offered in the INVITE; the answer is due in the 2xx (or a reliable 1xx).
    RemoteOwesAnswer,
    /// The peer offered in the INVITE; our 2xx must carry the answer.
    LocalOwesAnswer,
    /// The INVITE had no body; our 2xx must carry the offer.
    LocalOwesOffer,
    /// We offered in our 2xx; the answer is due in the ACK.
    RemoteOwesAnswerInAck,
    Complete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Outgoing,
    Incoming,
}

/// Per-call dialog state as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Outgoing: INVITE sent, no response other than 100. Incoming: INVITE received, 100 sent.
    Calling,
    /// Outgoing: 18x received. Incoming: we sent 180.
    Early,
    /// Incoming: we sent 2xx, waiting for the ACK.
    WaitAck,
    Confirmed,
    /// Outgoing: `hangup()` before the answer; CANCEL requested, waiting for the final response.
    Cancelling,
    /// Incoming: `hangup()` while waiting for the ACK; BYE goes out when the ACK arrives
    /// (RFC 3261 §15: the callee must not send BYE before the ACK).
    ByeAfterAck,
}

#[derive(Clone, Debug)]
struct Call {
    dir: Direction,
    phase: Phase,
    sdp: Negotiation,
    deadline: Option<Instant>,
    /// Our last SDP in this session (offer or answer), for offer-less re-INVITEs and the
    /// fallback answer.
    local_sdp: Option<String>,
    /// Our re-INVITE/UPDATE in flight, or waiting for its retry after a 491.
    out_offer: Option<OutOffer>,
    /// The peer's re-INVITE/UPDATE the engine has not answered yet.
    in_offer: Option<InOffer>,
    /// The media direction we want: that of our last own offer (hold = `sendonly`).
    intent: crate::session::Dir,
    /// The peer's INVITE had `Supported: 100rel` or `Require: 100rel` (RFC 3262).
    peer_100rel: bool,
    /// Our reliable provisional response waiting for its PRACK.
    reliable: Option<Reliable>,
    /// RSeq of our reliable provisional that no PRACK acknowledged yet; unlike `reliable` it
    /// outlives the final response, which only stops the retransmissions (RFC 3262 §3).
    unacked_rseq: Option<u32>,
    /// A 3xx was followed already (only once per call).
    redirected: bool,
    /// Outgoing: Call-ID and target of our INVITE (sent again after a 422).
    invite: Option<(String, Target)>,
    /// Outgoing: the `Session-Expires` we ask for; raised once by a 422 (RFC 4028 §7.4).
    se_request: u32,
    se_retried: bool,
    /// Incoming: the session timer agreed in our 2xx (interval, we refresh, the caller
    /// supports timers), started by the ACK.
    agreed_timer: Option<(u32, bool, bool)>,
    /// The running session timer (RFC 4028 §10).
    timer: Option<SessionTimer>,
}

/// A running session timer: refresh (we are the refresher) or give up at `at`.
#[derive(Clone, Copy, Debug)]
struct SessionTimer {
    secs: u32,
    we_refresh: bool,
    at: Instant,
}

impl SessionTimer {
    fn new(secs: u32, we_refresh: bool, now: Instant) -> SessionTimer {
        let mut t = SessionTimer {
            secs,
            we_refresh,
            at: now,
        };
        t.restart(now);
        t
    }

    /// A refresh happened (RFC 4028 §10): start the interval again.
    fn restart(&mut self, now: Instant) {
        self.at = now
            + if self.we_refresh {
                crate::session::refresh_after(self.secs)
            } else {
                crate::session::expire_after(self.secs)
            };
    }
}

/// A reliable provisional response being retransmitted until PRACKed (RFC 3262 §3).
#[derive(Clone, Debug)]
struct Reliable {
    rseq: u32,
    retransmit_at: Instant,
    interval: Duration,
    give_up_at: Instant,
}

impl Call {
    fn new(dir: Direction, phase: Phase, sdp: Negotiation, local_sdp: Option<String>) -> Call {
        let intent = match (dir, local_sdp.as_deref()) {
            (Direction::Outgoing, Some(sdp)) => crate::session::sdp_direction(sdp),
            _ => crate::session::Dir {
                send: true,
                recv: true,
            },
        };
        Call {
            dir,
            phase,
            sdp,
            deadline: None,
            local_sdp,
            out_offer: None,
            in_offer: None,
            intent,
            peer_100rel: false,
            reliable: None,
            unacked_rseq: None,
            redirected: false,
            invite: None,
            se_request: crate::session::DEFAULT_SESSION_EXPIRES,
            se_retried: false,
            agreed_timer: None,
            timer: None,
        }
    }

    fn deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        self.deadline
            .into_iter()
            .chain(self.out_offer.as_ref().and_then(|o| o.retry_at))
            .chain(self.in_offer.as_ref().map(|o| o.deadline))
            .chain(self.reliable.as_ref().map(|r| r.retransmit_at))
            .chain(self.timer.map(|t| t.at))
    }
}

#[derive(Clone, Debug)]
struct OutOffer {
    sdp: String,
    update: bool,
    /// A session refresh of RFC 4028 (no event for its answer).
    refresh: bool,
    attempts: u32,
    /// Waiting for the 491 back-off to end (not in flight).
    retry_at: Option<Instant>,
}

#[derive(Clone, Debug)]
struct InOffer {
    id: u64,
    offer: String,
    deadline: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum RegState {
    Idle,
    /// REGISTER (or refresh) in flight.
    Registering,
    Registered {
        expires: u32,
        refresh_at: Instant,
    },
    RetryWait {
        retry_at: Instant,
    },
    Unregistering,
}

/// The policy state machine. See the module docs.
pub(crate) struct UaPolicy {
    transport: Transport,
    account: Option<AccountConfig>,
    reg: RegState,
    /// Generation of the REGISTER in flight; older outcomes are stale and ignored.
    reg_gen: u64,
    /// Expires value to request (account value, or a registrar's `Min-Expires`).
    expires_override: Option<u32>,
    failures: u32,
    contact_fixes: u32,
    /// Lifetime last reported in a `Registered` event.
    announced: Option<u32>,
    /// Contact learned from `received`/`rport`.
    public_contact: Option<HostPort>,
    calls: BTreeMap<CallKey, Call>,
    shutdown_deadline: Option<Instant>,
    shutdown_done: bool,
    /// Keep-alive interval on TCP/TLS connections (`ZERO` = off).
    keepalive: Duration,
    /// Keep-alive interval on WebSocket connections (`ZERO` = off).
    ws_keepalive: Duration,
    /// The interval of the registration's current connection.
    keepalive_now: Duration,
    /// When the next keep-alive is due (only while registered).
    keepalive_at: Option<Instant>,
    /// Consecutive losses of the registration's connection without a stable period.
    flow_losses: u32,
    /// When the registration's connection was last lost.
    last_flow_loss: Option<Instant>,
    rng: crate::session::Rng,
    /// Follow 301/302 (and other 3xx) Contacts once (`allowcallredirect`).
    allow_redirect: bool,
    /// [`Command::UnregisterOnShutdown`].
    unregister_on_shutdown: bool,
    /// [`Command::Reregister`].
    reregister: Reregister,
    /// A registration of the current account succeeded (failures since are lost ones).
    was_registered: bool,
    /// [`Command::ContactFromVia`].
    contact_from_via: ViaContact,
    /// The STUN-mapped address waiting for the registrar to confirm it
    /// ([`StunUse::WhenConfirmed`]).
    stun_candidate: Option<HostPort>,
    /// The start-up probe's answer ([`Command::StunMapped`]), applied again for a new account.
    stun_found: Option<StunUse>,
    /// The registrar's last `Allow-Events` ([`SipEvent::ServerEventPackages`]).
    server_events: Option<Vec<String>>,
    /// Peer-to-peer calls allowed (`None`: when no server is configured).
    accept_direct: Option<bool>,
    /// Registrations of the extra accounts (multi-account).
    extras: extra::ExtraRegs,
}

/// When to refresh a binding granted for `expires` seconds: at 85 % of the lifetime but at
/// least 5 s before it ends, and halfway through for very short lifetimes.
pub(crate) fn refresh_delay(expires: u32) -> Duration {
    let e = u64::from(expires);
    let secs = if e > 10 {
        (e * 85 / 100).min(e - 5)
    } else {
        (e / 2).max(1)
    };
    Duration::from_secs(secs)
}

/// Back-off after the `failures`-th consecutive failed REGISTER: doubling from 5 s (60 s for
/// credential errors, which a quick retry will not fix), capped at 5 minutes.
/// `forcereregister`: which failed registrations are tried again (with the back-off of
/// [`retry_delay`]). The first registration is always tried again after a network error, a
/// time-out or a 5xx (that is not a re-registration); an authentication rejection (401, 403,
/// 407 after our credentials) ends the attempts except with [`Reregister::Always`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reregister {
    /// 0: a registration that was lost (failed refresh, lost connection) stays lost.
    Never,
    /// 1 (default): a lost registration is registered again.
    #[default]
    AfterSuccess,
    /// 2: every failure is tried again, authentication rejections too.
    Always,
}

impl Reregister {
    /// The parameter's value (anything else: the default).
    pub fn from_param(v: i64) -> Reregister {
        match v {
            0 => Reregister::Never,
            2 => Reregister::Always,
            _ => Reregister::AfterSuccess,
        }
    }

    /// Whether a registration that failed with `code` is tried again; `was_registered`:
    /// a registration of this account succeeded before (this failure is a lost one).
    pub fn retries(self, code: u16, was_registered: bool) -> bool {
        let auth = matches!(code, 401 | 403 | 407);
        match self {
            Reregister::Always => true,
            _ if auth => false,
            Reregister::Never => !was_registered,
            Reregister::AfterSuccess => true,
        }
    }
}

pub(crate) fn retry_delay(failures: u32, code: u16) -> Duration {
    let base: u64 = if matches!(code, 401 | 403 | 404 | 407) {
        60
    } else {
        5
    };
    let shift = failures.saturating_sub(1).min(6);
    Duration::from_secs((base << shift).min(300))
}

impl UaPolicy {
    pub(crate) fn new(transport: Transport) -> Self {
        UaPolicy {
            transport,
            account: None,
            reg: RegState::Idle,
            reg_gen: 0,
            expires_override: None,
            failures: 0,
            contact_fixes: 0,
            announced: None,
            public_contact: None,
            calls: BTreeMap::new(),
            shutdown_deadline: None,
            shutdown_done: false,
            keepalive: Duration::ZERO,
            ws_keepalive: Duration::ZERO,
            keepalive_now: Duration::ZERO,
            keepalive_at: None,
            flow_losses: 0,
            last_flow_loss: None,
            rng: crate::session::Rng::new(rand::random()),
            allow_redirect: true,
            unregister_on_shutdown: true,
            reregister: Reregister::default(),
            was_registered: false,
            contact_from_via: ViaContact::WhenLocal,
            stun_candidate: None,
            stun_found: None,
            server_events: None,
            accept_direct: None,
            extras: extra::ExtraRegs::default(),
        }
    }

    /// A fixed seed for the policy's randomness (glare back-off), for tests.
    #[cfg(test)]
    pub(crate) fn with_seed(mut self, seed: u64) -> Self {
        self.rng = crate::session::Rng::new(seed);
        self
    }

    /// Send keep-alives every `interval` while registered over a reliable transport
    /// (`ZERO` = never).
    pub(crate) fn with_keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval;
        self.ws_keepalive = interval;
        self
    }

    /// A separate keep-alive interval for WebSocket connections (`wskeepaliveival`),
    /// whether configured or chosen by DNS (RFC 3263 §4.1).
    pub(crate) fn with_ws_keepalive(mut self, interval: Duration) -> Self {
        self.ws_keepalive = interval;
        self
    }

    /// Feed one input; returns the actions to perform, in order.
    pub(crate) fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Command(c) => self.on_command(c, now, &mut out),
            Input::Stack(e) => self.on_stack(e, now, &mut out),
            Input::Tick => self.on_tick(now, &mut out),
        }
        self.check_shutdown(now, &mut out);
        out
    }

    /// The earliest instant at which [`Input::Tick`] has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let reg = match &self.reg {
            RegState::Registered { refresh_at, .. } => Some(*refresh_at),
            RegState::RetryWait { retry_at } => Some(*retry_at),
            _ => None,
        };
        let keepalive = match &self.reg {
            RegState::Registered { .. } => self.keepalive_at,
            _ => None,
        };
        self.calls
            .values()
            .flat_map(|c| c.deadlines())
            .chain(reg)
            .chain(self.extras.next_deadline())
            .chain(keepalive)
            .chain(self.shutdown_deadline)
            .min()
    }

    #[cfg(test)]
    pub(crate) fn phase(&self, call: CallKey) -> Option<Phase> {
        self.calls.get(&call).map(|c| c.phase)
    }

    #[cfg(test)]
    pub(crate) fn negotiation(&self, call: CallKey) -> Option<Negotiation> {
        self.calls.get(&call).map(|c| c.sdp)
    }

    #[cfg(test)]
    pub(crate) fn direction(&self, call: CallKey) -> Option<Direction> {
        self.calls.get(&call).map(|c| c.dir)
    }

    // ---------------------------------------------------------------- commands

    fn on_command(&mut self, cmd: Command, now: Instant, out: &mut Vec<Action>) {
        match cmd {
            Command::SetAccount(acc) => self.set_account(acc, out),
            Command::Register => self.register(out),
            Command::Unregister => self.unregister(out),
            Command::SetExtraAccounts(list) => {
                self.extras.set(list, self.public_contact.as_ref(), out)
            }
            Command::RegisterExtra => {
                if self.shutdown_deadline.is_none() && !self.shutdown_done {
                    self.extras.register_all(self.public_contact.as_ref(), out);
                }
            }
            Command::UnregisterExtra => self
                .extras
                .unregister_all(self.public_contact.as_ref(), out),
            Command::Invite {
                call,
                call_id,
                target,
                sdp,
            } => {
                if self.shutdown_deadline.is_some() {
                    emit_end(
                        out,
                        call,
                        EndReason::Failed,
                        None,
                        "user agent shutting down",
                    );
                    return;
                }
                let mut c = Call::new(
                    Direction::Outgoing,
                    Phase::Calling,
                    Negotiation::RemoteOwesAnswer,
                    Some(sdp.clone()),
                );
                c.invite = Some((call_id.clone(), target.clone()));
                let session_expires = c.se_request;
                self.calls.insert(call, c);
                out.push(Action::SendInvite {
                    call,
                    call_id,
                    target,
                    sdp,
                    session_expires,
                });
            }
            Command::Ringing(call) => match self.calls.get_mut(&call) {
                Some(c) if c.dir == Direction::Incoming && c.phase == Phase::Calling => {
                    c.phase = Phase::Early;
                    if c.peer_100rel {
                        // RFC 3262 §3: RSeq starts at a random value below 2**31.
                        let rseq = (self.rng.next_u32() & 0x7fff_ffff).max(1);
                        c.unacked_rseq = Some(rseq);
                        c.reliable = Some(Reliable {
                            rseq,
                            retransmit_at: now + T1,
                            interval: T1,
                            give_up_at: now + TRANSACTION_TIMEOUT,
                        });
                        out.push(Action::SendReliableRinging { call, rseq });
                    } else {
                        out.push(Action::SendRinging(call));
                    }
                }
                _ => tracing::debug!(%call, "ringing ignored in this state"),
            },
            Command::Answer(call, sdp) => match self.calls.get_mut(&call) {
                Some(c)
                    if c.dir == Direction::Incoming
                        && matches!(c.phase, Phase::Calling | Phase::Early) =>
                {
                    c.phase = Phase::WaitAck;
                    c.sdp = match c.sdp {
                        Negotiation::LocalOwesAnswer => Negotiation::Complete,
                        Negotiation::LocalOwesOffer => Negotiation::RemoteOwesAnswerInAck,
                        other => other,
                    };
                    c.deadline = Some(now + TRANSACTION_TIMEOUT);
                    c.local_sdp = Some(sdp.clone());
                    // The final response ends the retransmissions (RFC 3262 §3).
                    c.reliable = None;
                    if let Some((secs, we_refresh, peer_timer)) = c.agreed_timer {
                        out.push(Action::SessionTimerHeaders {
                            call,
                            secs,
                            refresher: if we_refresh {
                                crate::session::Refresher::Uas
                            } else {
                                crate::session::Refresher::Uac
                            },
                            require: peer_timer,
                        });
                    }
                    out.push(Action::SendAnswer(call, sdp));
                }
                _ => tracing::debug!(%call, "answer ignored in this state"),
            },
            Command::Reject(call, code) => match self.calls.get(&call) {
                Some(c)
                    if c.dir == Direction::Incoming
                        && matches!(c.phase, Phase::Calling | Phase::Early) =>
                {
                    let code = if (300..=699).contains(&code) {
                        code
                    } else {
                        603
                    };
                    self.calls.remove(&call);
                    out.push(Action::SendReject(call, code));
                    emit_end(out, call, EndReason::LocalReject, Some(code), "rejected");
                    out.push(Action::Forget(call));
                }
                _ => tracing::debug!(%call, "reject ignored in this state"),
            },
            Command::Hangup(call) => self.hangup(call, now, out),
            Command::Reoffer { call, sdp, update } => self.reoffer(call, sdp, update, out),
            Command::AnswerReoffer(call, sdp) => self.answer_reoffer(call, sdp, out),
            Command::AllowRedirect(on) => self.allow_redirect = on,
            Command::UnregisterOnShutdown(on) => self.unregister_on_shutdown = on,
            Command::Reregister(mode) => self.reregister = mode,
            Command::ContactFromVia(mode) => self.contact_from_via = mode,
            Command::StunMapped(found) => self.stun_mapped(found, out),
            Command::AcceptDirect(on) => self.accept_direct = on,
            Command::NetworkChanged(stun) => self.network_changed(stun, out),
            Command::Shutdown => self.shutdown(now, out),
        }
    }

    fn hangup(&mut self, call: CallKey, now: Instant, out: &mut Vec<Action>) {
        let Some(c) = self.calls.get_mut(&call) else {
            tracing::debug!(%call, "hangup of an unknown call ignored");
            return;
        };
        match (c.dir, c.phase) {
            // RFC 3261 §9.1: an unanswered INVITE is ended with CANCEL; the call ends when
            // its final response (normally 487) arrives.
            (Direction::Outgoing, Phase::Calling | Phase::Early) => {
                c.phase = Phase::Cancelling;
                c.deadline = Some(now + TRANSACTION_TIMEOUT);
                out.push(Action::SendCancel(call));
            }
            (_, Phase::Cancelling | Phase::ByeAfterAck) => {}
            // RFC 3261 §15.1.1: BYE ends an established session.
            (_, Phase::Confirmed) => {
                self.calls.remove(&call);
                out.push(Action::SendBye(call));
                emit_end(out, call, EndReason::LocalHangup, None, "hung up");
                out.push(Action::Forget(call));
            }
            // Unanswered incoming call: a final response ends it (RFC 3261 §13.3.1.3).
            (Direction::Incoming, Phase::Calling | Phase::Early) => {
                self.calls.remove(&call);
                out.push(Action::SendReject(call, 603));
                emit_end(out, call, EndReason::LocalReject, Some(603), "declined");
                out.push(Action::Forget(call));
            }
            // RFC 3261 §15: the callee must not send BYE before the ACK of its 2xx (or until
            // the server transaction times out).
            (Direction::Incoming, Phase::WaitAck) => {
                c.phase = Phase::ByeAfterAck;
                c.deadline = Some(now + TRANSACTION_TIMEOUT);
                emit_end(out, call, EndReason::LocalHangup, None, "hung up");
            }
            (Direction::Outgoing, Phase::WaitAck) => {}
        }
    }

    fn shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.shutdown_deadline.is_some() || self.shutdown_done {
            return;
        }
        self.shutdown_deadline = Some(now + SHUTDOWN_GRACE);
        let keys: Vec<CallKey> = self.calls.keys().copied().collect();
        for call in keys {
            self.hangup(call, now, out);
        }
        // Calls still cancelling/awaiting an ACK are abandoned now: the stack ends them.
        let left: Vec<CallKey> = self.calls.keys().copied().collect();
        for call in left {
            if let Some(c) = self.calls.remove(&call) {
                if c.phase == Phase::Cancelling {
                    emit_end(
                        out,
                        call,
                        EndReason::LocalCancel,
                        None,
                        "user agent shut down",
                    );
                }
                out.push(Action::Forget(call));
            }
        }
        if !self.unregister_on_shutdown {
            // The bindings stay at the registrar until they expire (a page reload that comes
            // straight back, `needunregister` false): nothing is sent, nothing waited for.
            self.reg = RegState::Idle;
            return;
        }
        match self.reg {
            RegState::Registered { .. } | RegState::Registering => self.unregister(out),
            RegState::RetryWait { .. } => {
                self.reg = RegState::Idle;
                self.emit_reg(out, RegistrationState::Unregistered);
            }
            RegState::Idle | RegState::Unregistering => {}
        }
        self.extras
            .unregister_all(self.public_contact.as_ref(), out);
    }

    fn check_shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(deadline) = self.shutdown_deadline else {
            return;
        };
        let waiting = self.reg == RegState::Unregistering || self.extras.unregistering();
        if !waiting || now >= deadline {
            self.shutdown_deadline = None;
            self.shutdown_done = true;
            out.push(Action::ShutdownComplete);
        }
    }

    // ------------------------------------------------------------ registration

    fn set_account(&mut self, acc: AccountConfig, out: &mut Vec<Action>) {
        if matches!(
            self.reg,
            RegState::Registered { .. } | RegState::Registering
        ) {
            // Remove the old binding with the old account before switching.
            self.unregister(out);
        } else if matches!(self.reg, RegState::RetryWait { .. }) {
            self.reg = RegState::Idle;
        }
        self.account = Some(acc);
        self.expires_override = None;
        self.announced = None;
        self.failures = 0;
        self.contact_fixes = 0;
        self.was_registered = false;
        if self.public_contact.take().is_some() {
            out.push(Action::SetContact(None));
        }
        // The STUN answer is about our socket, not the account: it stays good.
        if let Some(found) = self.stun_found.clone() {
            self.apply_stun(found, out);
        }
    }

    /// The network changed under us: what we registered (and what the registrar saw,
    /// `received`/`rport`) is stale. Register again now with our new address; a REGISTER in
    /// flight or a pending retry is overtaken (its outcome is stale, `reg_gen`), and the
    /// usual failure back-off applies if this one fails.
    fn network_changed(&mut self, stun: Option<StunUse>, out: &mut Vec<Action>) {
        if self.shutdown_deadline.is_some() || self.shutdown_done {
            return;
        }
        self.contact_fixes = 0;
        // The mapping was that of our old address.
        self.stun_found = None;
        self.stun_candidate = None;
        if let Some(old) = self.public_contact.take() {
            out.push(Action::SetContact(None));
            if self.reg != RegState::Idle {
                out.push(Action::ReleaseBinding(old));
            }
        }
        if let Some(found) = stun {
            self.stun_mapped(found, out);
        }
        self.keepalive_at = None;
        match self.reg {
            RegState::Registered { .. } | RegState::Registering => {
                self.failures = 0;
                self.announced = None;
                self.send_register(out, false);
            }
            RegState::RetryWait { .. } => {
                self.failures = 0;
                self.announced = None;
                self.send_register(out, true);
            }
            RegState::Idle | RegState::Unregistering => {}
        }
        // public_contact was reset above: the extra accounts register from the new address too.
        self.extras.network_changed(None, out);
    }

    fn register(&mut self, out: &mut Vec<Action>) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        let usable = self.account.as_ref().is_some_and(|a| {
            a.server.as_deref().is_some_and(|s| !s.trim().is_empty())
                || a.proxy.as_deref().is_some_and(|s| !s.trim().is_empty())
        });
        if !usable {
            self.emit_reg(
                out,
                RegistrationState::Failed {
                    code: 0,
                    reason: "no SIP server configured".into(),
                },
            );
            return;
        }
        if self.reg == RegState::Registering {
            return;
        }
        self.failures = 0;
        self.contact_fixes = 0;
        self.announced = None;
        self.send_register(out, true);
    }

    fn requested_expires(&self) -> u32 {
        self.expires_override.unwrap_or_else(|| {
            match self.account.as_ref().map(|a| a.register_expires) {
                Some(0) | None => DEFAULT_EXPIRES,
                Some(e) => e,
            }
        })
    }

    fn send_register(&mut self, out: &mut Vec<Action>, announce: bool) {
        let Some(account) = self.account.clone() else {
            return;
        };
        self.reg_gen += 1;
        self.reg = RegState::Registering;
        if announce {
            self.emit_reg(out, RegistrationState::Registering);
        }
        out.push(Action::SendRegister {
            gen: self.reg_gen,
            account,
            expires: self.requested_expires(),
            contact: self.public_contact.clone(),
        });
    }

    fn unregister(&mut self, out: &mut Vec<Action>) {
        match self.reg {
            RegState::Registered { .. } | RegState::Registering => {
                let Some(account) = self.account.clone() else {
                    self.reg = RegState::Idle;
                    return;
                };
                self.reg_gen += 1;
                self.reg = RegState::Unregistering;
                out.push(Action::SendRegister {
                    gen: self.reg_gen,
                    account,
                    expires: 0,
                    contact: self.public_contact.clone(),
                });
            }
            RegState::Idle | RegState::RetryWait { .. } => {
                self.reg = RegState::Idle;
                self.announced = None;
                self.emit_reg(out, RegistrationState::Unregistered);
            }
            RegState::Unregistering => {}
        }
    }

    fn on_register_done(
        &mut self,
        gen: u64,
        o: RegisterOutcome,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if gen != self.reg_gen {
            tracing::debug!(
                gen,
                current = self.reg_gen,
                "stale REGISTER outcome ignored"
            );
            return;
        }
        match self.reg {
            RegState::Unregistering => {
                if !(200..300).contains(&o.code) {
                    tracing::warn!(code = o.code, reason = %o.reason, "un-REGISTER failed; binding expires on its own");
                }
                self.reg = RegState::Idle;
                self.announced = None;
                self.emit_reg(out, RegistrationState::Unregistered);
            }
            RegState::Registering => {
                let requested = self.requested_expires();
                if (200..300).contains(&o.code) {
                    let granted = o.expires.unwrap_or(requested);
                    if granted == 0 {
                        self.register_failed(
                            out,
                            now,
                            o.code,
                            "registrar granted no lifetime".into(),
                        );
                        return;
                    }
                    self.failures = 0;
                    if let Some(public) = self.stun_confirmed(&o) {
                        // RFC 4787 §4.1: the STUN server and the registrar see the same
                        // mapping, so peers will too: register it.
                        tracing::info!(old = %o.contact, new = %public, "Contact from STUN, confirmed by the registrar");
                        self.public_contact = Some(public.clone());
                        out.push(Action::SetContact(Some(public.clone())));
                        self.replace_binding(&o, public, out);
                        self.send_register(out, false);
                        return;
                    }
                    if let Some(public) = self.contact_fix(&o) {
                        // RFC 3581 §4: the registrar saw us at another address (NAT):
                        // register that address instead, so requests reach us.
                        tracing::info!(old = %o.contact, new = %public, "Contact corrected from received/rport");
                        self.contact_fixes += 1;
                        self.public_contact = Some(public.clone());
                        out.push(Action::SetContact(Some(public.clone())));
                        self.replace_binding(&o, public, out);
                        self.send_register(out, false);
                        return;
                    }
                    self.contact_fixes = 0;
                    self.was_registered = true;
                    if !o.server_params.is_empty() {
                        out.push(Action::Emit(SipEvent::ServerParameters(
                            o.server_params.clone(),
                        )));
                    }
                    if let Some(packages) = o.allow_events.clone() {
                        if self.server_events.as_ref() != Some(&packages) {
                            self.server_events = Some(packages.clone());
                            out.push(Action::Emit(SipEvent::ServerEventPackages(packages)));
                        }
                    }
                    self.reg = RegState::Registered {
                        expires: granted,
                        refresh_at: now + refresh_delay(granted),
                    };
                    self.keepalive_now = if o.websocket || self.transport.is_websocket() {
                        self.ws_keepalive
                    } else {
                        self.keepalive
                    };
                    if !self.keepalive_now.is_zero() {
                        // Traffic just went both ways: the next ping (CRLF on a stream,
                        // a NAT binding refresh over UDP) is due an interval from now.
                        self.keepalive_at = Some(now + self.keepalive_now);
                    }
                    if self.announced != Some(granted) {
                        self.announced = Some(granted);
                        self.emit_reg(out, RegistrationState::Registered { expires: granted });
                    }
                } else if o.code == 423 && o.min_expires.is_some_and(|m| m > requested) {
                    // RFC 3261 §10.2.8: retry with the registrar's minimum.
                    self.expires_override = o.min_expires;
                    self.send_register(out, false);
                } else {
                    self.register_failed(out, now, o.code, o.reason);
                }
            }
            RegState::Idle | RegState::Registered { .. } | RegState::RetryWait { .. } => {}
        }
    }

    /// The address to put in our Contact instead of the one just registered, if any.
    /// `use_fast_stun`: a mapped address is used at once, or kept until the registrar
    /// confirms it ([`Self::stun_confirmed`]).
    fn stun_mapped(&mut self, found: StunUse, out: &mut Vec<Action>) {
        self.stun_found = Some(found.clone());
        self.apply_stun(found, out);
    }

    fn apply_stun(&mut self, found: StunUse, out: &mut Vec<Action>) {
        self.stun_candidate = None;
        match found {
            StunUse::Now(public) => {
                self.public_contact = Some(public.clone());
                out.push(Action::SetContact(Some(public)));
            }
            StunUse::WhenConfirmed(public) => self.stun_candidate = Some(public),
            StunUse::No => {}
        }
    }

    /// The waiting STUN address, when the registrar saw us at exactly that address and we
    /// registered another one (UDP; checked once, on the first successful REGISTER).
    fn stun_confirmed(&mut self, o: &RegisterOutcome) -> Option<HostPort> {
        let candidate = self.stun_candidate.take()?;
        let confirmed = o.received.as_ref() == Some(&candidate) && o.contact != candidate;
        if !confirmed {
            tracing::info!(stun = %candidate, registrar = ?o.received, "STUN address not confirmed by the registrar: not used");
        }
        confirmed.then_some(candidate)
    }

    /// [`Action::ReplaceBinding`] of what `o` registered, over UDP: there the registrar
    /// sends requests to the Contact, and a binding of an address behind the NAT is a dead
    /// end. Over a connection requests come back on it whatever the Contact says, and
    /// after a network change the old Contact is already being removed (`netchange`).
    fn replace_binding(&self, o: &RegisterOutcome, public: HostPort, out: &mut Vec<Action>) {
        if !(self.transport.is_reliable() || o.reliable) {
            out.push(Action::ReplaceBinding {
                old: o.contact.clone(),
                new: public,
            });
        }
    }

    fn contact_fix(&self, o: &RegisterOutcome) -> Option<HostPort> {
        let received = o.received.as_ref()?;
        if self.contact_fixes >= MAX_CONTACT_FIXES {
            return None;
        }
        let allowed = match self.contact_from_via {
            ViaContact::Never => false,
            ViaContact::Always => true,
            ViaContact::WhenLocal => {
                self.public_contact.is_some()
                    || o.contact
                        .host
                        .parse::<std::net::IpAddr>()
                        .map_or(true, crate::is_local_ip)
            }
        };
        if !allowed {
            return None;
        }
        // A connection (configured, or chosen by DNS for this REGISTER) is compared by IP
        // only: its source port is the ephemeral port of our connection, not a listener,
        // and registering it would leave the first binding behind (two Contacts, forked
        // INVITEs). UDP: requests must go to the exact source address and port.
        let reliable = self.transport.is_reliable() || o.reliable;
        let differs = if reliable {
            !received.host.eq_ignore_ascii_case(&o.contact.host)
        } else {
            received != &o.contact
        };
        differs.then(|| {
            if reliable {
                HostPort::new(received.host.clone(), o.contact.port)
            } else {
                received.clone()
            }
        })
    }

    fn register_failed(&mut self, out: &mut Vec<Action>, now: Instant, code: u16, reason: String) {
        self.failures += 1;
        self.announced = None;
        if !self.reregister.retries(code, self.was_registered) {
            tracing::warn!(code, %reason, mode = ?self.reregister, "registration failed; not trying again");
            self.reg = RegState::Idle;
            self.emit_reg(out, RegistrationState::Failed { code, reason });
            return;
        }
        let delay = retry_delay(self.failures, code);
        tracing::warn!(code, %reason, retry_in = ?delay, "registration failed");
        self.reg = RegState::RetryWait {
            retry_at: now + delay,
        };
        self.emit_reg(out, RegistrationState::Failed { code, reason });
    }

    fn emit_reg(&self, out: &mut Vec<Action>, st: RegistrationState) {
        out.push(Action::Emit(SipEvent::Registration(st)));
    }

    // ------------------------------------------------------------------ stack

    fn on_stack(&mut self, ev: StackEvent, now: Instant, out: &mut Vec<Action>) {
        match ev {
            StackEvent::RegisterDone { gen, outcome } => {
                self.on_register_done(gen, outcome, now, out)
            }
            StackEvent::ExtraRegisterDone { key, gen, outcome } => {
                let contact = self.public_contact.clone();
                self.extras
                    .on_register_done(&key, gen, outcome, now, contact.as_ref(), out)
            }
            StackEvent::ExtraFlowLost { key } => {
                if self.shutdown_deadline.is_none() && !self.shutdown_done {
                    let contact = self.public_contact.clone();
                    self.extras.on_flow_lost(&key, now, contact.as_ref(), out)
                }
            }
            StackEvent::FlowLost { reason } => self.on_flow_lost(reason, now, out),
            StackEvent::Incoming(inv) => {
                let call = inv.call;
                if self.shutdown_deadline.is_some() || self.shutdown_done {
                    out.push(Action::SendReject(call, 503));
                    out.push(Action::Forget(call));
                    return;
                }
                if let Some(code) = self.ghost_check(&inv) {
                    // Ghost-call protection: answered without ringing, no event.
                    tracing::info!(%call, code, user = %inv.request_user, from = %inv.remote_addr, "INVITE refused (not for us / not via our server)");
                    out.push(Action::SendReject(call, code));
                    out.push(Action::Forget(call));
                    return;
                }
                let mut c = Call::new(
                    Direction::Incoming,
                    Phase::Calling,
                    if inv.sdp.is_some() {
                        Negotiation::LocalOwesAnswer
                    } else {
                        Negotiation::LocalOwesOffer
                    },
                    None,
                );
                c.peer_100rel = has_option_tag(&inv.headers, "supported", "100rel")
                    || has_option_tag(&inv.headers, "require", "100rel");
                // RFC 4028 §9: the session timer the caller asks for.
                let se = header(&inv.headers, "session-expires", "x")
                    .and_then(crate::session::parse_session_expires);
                // (An interval below our Min-SE was refused with 422 by the driver already,
                // RFC 4028 §8.1.)
                if let Some(se) = se {
                    let peer_timer = has_option_tag(&inv.headers, "supported", "timer");
                    let we_refresh = match se.refresher {
                        Some(r) => r == crate::session::Refresher::Uas,
                        // §9: the UAS picks; the caller refreshes when it can.
                        None => !peer_timer,
                    };
                    c.agreed_timer =
                        Some((se.secs.max(crate::session::MIN_SE), we_refresh, peer_timer));
                }
                self.calls.insert(call, c);
                out.push(Action::Emit(SipEvent::Incoming {
                    call,
                    sip_call_id: inv.sip_call_id,
                    from_user: inv.from_user,
                    from_display: inv.from_display,
                    from_uri: inv.from_uri,
                    to_user: inv.to_user,
                    request_user: inv.request_user,
                    remote_addr: inv.remote_addr,
                    sdp: inv.sdp,
                    headers: inv.headers,
                    // Filled in by the driver (it knows the dialogs, RFC 3891 §3).
                    replaces: None,
                }));
            }
            StackEvent::Provisional {
                call,
                code,
                reason,
                sdp,
            } => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if c.dir != Direction::Outgoing || code == 100 {
                    return;
                }
                match c.phase {
                    Phase::Calling | Phase::Early => {
                        c.phase = Phase::Early;
                        out.push(Action::Emit(SipEvent::Progress {
                            call,
                            code,
                            reason,
                            sdp,
                        }));
                    }
                    _ => {}
                }
            }
            StackEvent::Final {
                call,
                code,
                reason,
                sdp,
                contact,
                session_expires,
                min_se,
            } => self.on_final(
                call,
                code,
                reason,
                FinalExtra {
                    sdp,
                    contact,
                    session_expires,
                    min_se,
                },
                now,
                out,
            ),
            StackEvent::InviteChallenged {
                call, code, reason, ..
            } => self.on_final(call, code, reason, FinalExtra::default(), now, out),
            StackEvent::InviteFailed { call, error } => {
                if let Some(c) = self.calls.remove(&call) {
                    let reason = if c.phase == Phase::Cancelling {
                        EndReason::LocalCancel
                    } else {
                        EndReason::Failed
                    };
                    emit_end(out, call, reason, None, &error);
                    out.push(Action::Forget(call));
                }
            }
            StackEvent::AckReceived { call, sdp } => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                match c.phase {
                    Phase::WaitAck => {
                        c.phase = Phase::Confirmed;
                        c.deadline = None;
                        if let Some((secs, we_refresh, _)) = c.agreed_timer {
                            c.timer = Some(SessionTimer::new(secs, we_refresh, now));
                        }
                        if c.sdp == Negotiation::RemoteOwesAnswerInAck {
                            if sdp.is_none() {
                                tracing::warn!(%call, "ACK without the SDP answer to our offer");
                            }
                            c.sdp = Negotiation::Complete;
                        }
                        out.push(Action::Emit(SipEvent::Answered { call, sdp }));
                    }
                    Phase::ByeAfterAck => {
                        self.calls.remove(&call);
                        out.push(Action::SendBye(call));
                        out.push(Action::Forget(call));
                    }
                    _ => {}
                }
            }
            StackEvent::Terminated { call, cause } => {
                let Some(c) = self.calls.remove(&call) else {
                    return;
                };
                let (reason, code, text) = match cause {
                    Termination::RemoteBye => (EndReason::RemoteHangup, None, "BYE".to_string()),
                    Termination::RemoteCancel => (
                        EndReason::RemoteCancel,
                        Some(487),
                        "Request Terminated".to_string(),
                    ),
                    Termination::Timeout => (EndReason::Timeout, Some(408), "timeout".to_string()),
                    Termination::Local => (EndReason::Failed, None, "terminated".to_string()),
                    Termination::Failed(e) => (EndReason::Failed, None, e),
                };
                // Already reported when the user hung up.
                if c.phase != Phase::ByeAfterAck {
                    let reason = if c.phase == Phase::Cancelling {
                        EndReason::LocalCancel
                    } else {
                        reason
                    };
                    emit_end(out, call, reason, code, &text);
                }
                out.push(Action::Forget(call));
            }
            StackEvent::Prack { call, rseq } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    if c.unacked_rseq == Some(rseq) {
                        c.unacked_rseq = None;
                        c.reliable = None;
                    }
                }
            }
            StackEvent::Dtmf { call, digit } => {
                if self.calls.contains_key(&call) {
                    out.push(Action::Emit(SipEvent::DtmfReceived { call, digit }));
                }
            }
            StackEvent::Reoffer {
                call,
                id,
                update,
                sdp,
            } => self.on_reoffer(call, id, update, sdp, now, out),
            StackEvent::ReofferResult {
                call,
                code,
                reason,
                sdp,
            } => self.on_reoffer_result(call, code, reason, sdp, now, out),
        }
    }

    // ------------------------------------------------- ghost-call protection

    /// Whether an account (main or extra) with a server or proxy is configured.
    fn has_server(&self) -> bool {
        self.account.as_ref().is_some_and(|a| {
            a.server.as_deref().is_some_and(|s| !s.trim().is_empty())
                || a.proxy.as_deref().is_some_and(|s| !s.trim().is_empty())
        }) || self.extras.has_server()
    }

    /// Ghost-call protection (SIP scanners, calls that bypass the PBX): unless direct
    /// (peer-to-peer) calls are accepted, an INVITE must be addressed to our user (404
    /// otherwise) and, while registered, come from the registrar/outbound proxy (403).
    ///
    /// Always, even peer to peer: an INVITE from a known SIP scanner (its `User-Agent`,
    /// e.g. SIPVicious' `friendly-scanner`) gets 403.
    fn ghost_check(&self, inv: &IncomingInvite) -> Option<u16> {
        if is_scanner(&inv.headers) {
            return Some(403);
        }
        let direct_ok = self.accept_direct.unwrap_or(!self.has_server());
        if direct_ok {
            return None;
        }
        let user = self
            .account
            .as_ref()
            .map(|a| a.username.as_str())
            .unwrap_or_default();
        // Addressed to the main account or to one of the extra accounts.
        let ours = inv.request_user == user || self.extras.has_user(&inv.request_user);
        let other_user = !ours && (!user.is_empty() || self.extras.has_server());
        if other_user {
            return Some(404);
        }
        let registered =
            matches!(self.reg, RegState::Registered { .. }) || self.extras.any_registered();
        if registered && !inv.from_server {
            return Some(403);
        }
        None
    }

    // --------------------------------------------------- re-INVITE / UPDATE

    /// Our new offer in an established dialog (RFC 3261 §14.1, RFC 3311 §5.1). Only one
    /// offer/answer exchange may be in progress at a time: while one is, the new offer is
    /// refused at once with `ReofferFailed { code: 491 }`.
    fn reoffer(&mut self, call: CallKey, sdp: String, update: bool, out: &mut Vec<Action>) {
        let Some(c) = self.calls.get_mut(&call) else {
            tracing::debug!(%call, "re-offer for an unknown call ignored");
            return;
        };
        let busy = c.in_offer.is_some()
            || c.out_offer
                .as_ref()
                .is_some_and(|o| !o.refresh || o.retry_at.is_none());
        if c.phase != Phase::Confirmed || busy {
            let reason = if busy {
                "another offer/answer exchange is in progress"
            } else {
                "call not established"
            };
            out.push(Action::Emit(SipEvent::ReofferFailed {
                call,
                code: 491,
                reason: reason.into(),
            }));
            return;
        }
        c.out_offer = Some(OutOffer {
            sdp: sdp.clone(),
            update,
            refresh: false,
            attempts: 1,
            retry_at: None,
        });
        out.push(Action::SendReoffer { call, sdp, update });
    }

    /// A re-INVITE/UPDATE from the peer (RFC 3261 §14.2, RFC 3311 §5.2).
    fn on_reoffer(
        &mut self,
        call: CallKey,
        id: u64,
        update: bool,
        sdp: Option<String>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let respond = |out: &mut Vec<Action>, code: u16, sdp: Option<String>| {
            out.push(Action::RespondReoffer {
                call,
                id,
                code,
                sdp,
            });
        };
        let Some(c) = self.calls.get_mut(&call) else {
            // RFC 3261 §12.2.2: no such dialog (any more).
            return respond(out, 481, None);
        };
        if c.out_offer.as_ref().is_some_and(|o| o.retry_at.is_none()) {
            // RFC 3261 §14.2 / RFC 3311 §5.2: our own offer is pending: glare.
            tracing::info!(%call, "re-offer while ours is pending: 491");
            return respond(out, 491, None);
        }
        if c.in_offer.is_some() || c.phase != Phase::Confirmed {
            // RFC 3261 §14.2: an earlier offer of the peer is still unanswered.
            return respond(out, 500, None);
        }
        // RFC 4028 §10: the peer's re-INVITE/UPDATE refreshes the session.
        if let Some(t) = c.timer.as_mut() {
            t.restart(now);
        }
        match sdp {
            Some(offer) => {
                c.in_offer = Some(InOffer {
                    id,
                    offer: offer.clone(),
                    deadline: now + REOFFER_ANSWER_TIMEOUT,
                });
                out.push(Action::Emit(SipEvent::Reoffer { call, sdp: offer }));
            }
            // An UPDATE without a body only refreshes the session (RFC 3311 §5.2,
            // RFC 4028 §9).
            None if update => respond(out, 200, None),
            // An offer-less re-INVITE: our 2xx carries our offer (the last SDP: a refresh,
            // RFC 3261 §14.2), the answer comes in the ACK.
            None => match c.local_sdp.clone() {
                Some(local) => respond(out, 200, Some(local)),
                None => respond(out, 488, None),
            },
        }
    }

    fn answer_reoffer(&mut self, call: CallKey, sdp: String, out: &mut Vec<Action>) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(o) = c.in_offer.take() else {
            tracing::debug!(%call, "answer_reoffer without a pending re-offer ignored");
            return;
        };
        if sdp.trim().is_empty() {
            // RFC 3261 §14.2: the offer is not acceptable; the session stays as it was.
            out.push(Action::RespondReoffer {
                call,
                id: o.id,
                code: 488,
                sdp: None,
            });
        } else {
            c.local_sdp = Some(sdp.clone());
            out.push(Action::RespondReoffer {
                call,
                id: o.id,
                code: 200,
                sdp: Some(sdp),
            });
        }
    }

    fn on_reoffer_result(
        &mut self,
        call: CallKey,
        code: u16,
        reason: String,
        sdp: Option<String>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(mut o) = c.out_offer.take() else {
            return;
        };
        match code {
            200..=299 => {
                if let Some(t) = c.timer.as_mut() {
                    t.restart(now);
                }
                c.intent = crate::session::sdp_direction(&o.sdp);
                c.local_sdp = Some(o.sdp);
                if !o.refresh {
                    out.push(Action::Emit(SipEvent::Reanswered { call, sdp }));
                }
            }
            // RFC 3261 §14.1: glare; retry after a random back-off whose range depends on
            // who owns the Call-ID (the caller of the initial INVITE).
            491 if o.attempts < GLARE_ATTEMPTS => {
                let owner = c.dir == Direction::Outgoing;
                let delay = crate::session::glare_backoff(owner, self.rng.next_u32());
                tracing::info!(%call, ?delay, attempt = o.attempts, "491 Request Pending: retrying");
                o.retry_at = Some(now + delay);
                c.out_offer = Some(o);
            }
            // RFC 3261 §14.1, §12.2.1.2: 481 / 408 to a re-INVITE: the dialog is gone.
            481 | 408 => {
                self.calls.remove(&call);
                out.push(Action::SendBye(call));
                emit_end(out, call, EndReason::Failed, Some(code), &reason);
                out.push(Action::Forget(call));
            }
            // Any other failure leaves the session as it was (RFC 3261 §14.1).
            _ if o.refresh => {
                tracing::warn!(%call, code, %reason, "session refresh refused");
            }
            _ => out.push(Action::Emit(SipEvent::ReofferFailed { call, code, reason })),
        }
    }

    /// Whether a PRACK with `RAck: rseq ... method` acknowledges a reliable provisional of
    /// `call` that is still unacknowledged; the UAS answers any other PRACK 481 (RFC 3262 §3,
    /// §7.2: the RAck names the RSeq and the method of the request it belongs to).
    pub fn prack_matches(&self, call: CallKey, rseq: u32, method: &str) -> bool {
        method.eq_ignore_ascii_case("INVITE")
            && self
                .calls
                .get(&call)
                .is_some_and(|c| c.unacked_rseq == Some(rseq))
    }

    /// Retransmit unacknowledged reliable provisionals with doubling intervals; give up
    /// after 64*T1 with a 5xx (RFC 3262 §3).
    fn reliable_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut failed = Vec::new();
        for (call, c) in self.calls.iter_mut() {
            let Some(r) = c.reliable.as_mut() else {
                continue;
            };
            if now < r.retransmit_at {
                continue;
            }
            if now >= r.give_up_at {
                failed.push(*call);
                continue;
            }
            r.interval *= 2;
            r.retransmit_at = now + r.interval;
            out.push(Action::SendReliableRinging {
                call: *call,
                rseq: r.rseq,
            });
        }
        for call in failed {
            self.calls.remove(&call);
            out.push(Action::SendReject(call, 500));
            emit_end(
                out,
                call,
                EndReason::Failed,
                Some(500),
                "no PRACK for the reliable provisional response",
            );
            out.push(Action::Forget(call));
        }
    }

    /// Session timers (RFC 4028 §10): as refresher, re-INVITE with our last SDP halfway
    /// through the interval; otherwise end the session (BYE) when no refresh came in time.
    fn session_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut expired = Vec::new();
        for (call, c) in self.calls.iter_mut() {
            let Some(t) = c.timer.as_mut() else {
                continue;
            };
            if now < t.at {
                continue;
            }
            if !t.we_refresh {
                expired.push(*call);
                continue;
            }
            // Re-armed at once (a refresh that fails leaves the next one due later).
            t.restart(now);
            if c.out_offer.is_some() || c.in_offer.is_some() {
                continue; // an exchange in progress refreshes the session anyway
            }
            let Some(sdp) = c.local_sdp.clone() else {
                continue;
            };
            c.out_offer = Some(OutOffer {
                sdp: sdp.clone(),
                update: false,
                refresh: true,
                attempts: 1,
                retry_at: None,
            });
            out.push(Action::SendReoffer {
                call: *call,
                sdp,
                update: false,
            });
        }
        for call in expired {
            self.calls.remove(&call);
            tracing::warn!(%call, "session timer expired without refresh (RFC 4028 §10)");
            out.push(Action::SendBye(call));
            emit_end(
                out,
                call,
                EndReason::Timeout,
                None,
                "session expired without refresh",
            );
            out.push(Action::Forget(call));
        }
    }

    /// Re-offer timers: the 491 back-off ended, or the engine did not answer in time.
    fn reoffer_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        for (call, c) in self.calls.iter_mut() {
            let call = *call;
            let in_deadline = c.in_offer.as_ref().map(|o| o.deadline);
            if let Some(o) = c.out_offer.as_mut() {
                if let (Some(t), Some(d)) = (o.retry_at, in_deadline) {
                    // The peer's offer is being answered: ours waits until that is done.
                    if now >= t {
                        o.retry_at = Some(d + Duration::from_millis(100));
                    }
                } else if o.retry_at.is_some_and(|t| now >= t) {
                    o.retry_at = None;
                    o.attempts += 1;
                    out.push(Action::SendReoffer {
                        call,
                        sdp: o.sdp.clone(),
                        update: o.update,
                    });
                }
            }
            if c.in_offer.as_ref().is_some_and(|o| now >= o.deadline) {
                let Some(o) = c.in_offer.take() else {
                    continue;
                };
                match c.local_sdp.as_deref() {
                    Some(local) => {
                        let answer = crate::session::fallback_answer(local, c.intent, &o.offer);
                        tracing::warn!(%call, "re-offer not answered in time: answering with our last SDP");
                        c.local_sdp = Some(answer.clone());
                        out.push(Action::RespondReoffer {
                            call,
                            id: o.id,
                            code: 200,
                            sdp: Some(answer),
                        });
                    }
                    None => out.push(Action::RespondReoffer {
                        call,
                        id: o.id,
                        code: 488,
                        sdp: None,
                    }),
                }
            }
        }
    }

    fn on_final(
        &mut self,
        call: CallKey,
        code: u16,
        reason: String,
        extra: FinalExtra,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let FinalExtra {
            sdp,
            contact,
            session_expires,
            min_se,
        } = extra;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.dir != Direction::Outgoing {
            return;
        }
        let success = (200..300).contains(&code);
        let redirect = (300..400).contains(&code)
            && self.allow_redirect
            && !c.redirected
            && matches!(c.phase, Phase::Calling | Phase::Early);
        if let (true, Some(uri), Some(sdp)) = (redirect, contact, c.local_sdp.clone()) {
            // RFC 3261 §8.1.3.4: retry at the Contact of the 3xx; once (`allowcallredirect`).
            tracing::info!(%call, code, %uri, "following redirect");
            c.redirected = true;
            c.phase = Phase::Calling;
            out.push(Action::Emit(SipEvent::Redirected {
                call,
                code,
                target: uri.clone(),
            }));
            out.push(Action::FollowRedirect { call, uri, sdp });
            return;
        }
        // RFC 4028 §7.4: 422 Session Interval Too Small: ask again with its Min-SE.
        if code == 422 && matches!(c.phase, Phase::Calling | Phase::Early) && !c.se_retried {
            if let (Some(min), Some((call_id, target)), Some(sdp)) =
                (min_se, c.invite.clone(), c.local_sdp.clone())
            {
                if min > c.se_request {
                    c.se_retried = true;
                    c.se_request = min;
                    c.phase = Phase::Calling;
                    out.push(Action::SendInvite {
                        call,
                        call_id,
                        target,
                        sdp,
                        session_expires: min,
                    });
                    return;
                }
            }
        }
        if success && matches!(c.phase, Phase::Calling | Phase::Early) {
            // RFC 4028 §7.2: the 2xx says who refreshes; without Session-Expires there is
            // no session timer.
            if let Some(se) = session_expires
                .as_deref()
                .and_then(crate::session::parse_session_expires)
            {
                let we_refresh = se.refresher != Some(crate::session::Refresher::Uas);
                c.timer = Some(SessionTimer::new(se.secs.max(1), we_refresh, now));
            }
        }
        match c.phase {
            Phase::Calling | Phase::Early if success => {
                c.phase = Phase::Confirmed;
                if c.sdp == Negotiation::RemoteOwesAnswer {
                    if sdp.is_none() {
                        tracing::warn!(%call, "2xx without the SDP answer to our offer (RFC 3261 §13.2.1)");
                    }
                    c.sdp = Negotiation::Complete;
                }
                out.push(Action::Emit(SipEvent::Answered { call, sdp }));
            }
            Phase::Calling | Phase::Early => {
                self.calls.remove(&call);
                emit_end(out, call, EndReason::Rejected, Some(code), &reason);
                out.push(Action::Forget(call));
            }
            Phase::Cancelling if success => {
                // RFC 3261 §9.1/§15: the CANCEL lost the race; ACK the 2xx and BYE.
                self.calls.remove(&call);
                out.push(Action::AckAndBye(call));
                emit_end(
                    out,
                    call,
                    EndReason::LocalCancel,
                    Some(code),
                    "answered while cancelling; sent BYE",
                );
                out.push(Action::Forget(call));
            }
            Phase::Cancelling => {
                self.calls.remove(&call);
                emit_end(out, call, EndReason::LocalCancel, Some(code), &reason);
                out.push(Action::Forget(call));
            }
            Phase::Confirmed | Phase::WaitAck | Phase::ByeAfterAck => {}
        }
    }

    // ------------------------------------------------------------------ timers

    /// The registration's connection is gone: the binding points at a dead flow, so
    /// register again over a new connection (RFC 5626 §4.5): at once after a stable period,
    /// with the failure back-off when the connection keeps dropping.
    fn on_flow_lost(&mut self, reason: String, now: Instant, out: &mut Vec<Action>) {
        self.keepalive_at = None;
        if !matches!(self.reg, RegState::Registered { .. }) || self.shutdown_deadline.is_some() {
            // A REGISTER in flight reports its own failure; idle/unregistering: nothing to do.
            return;
        }
        let flapping = self
            .last_flow_loss
            .is_some_and(|t| now.saturating_duration_since(t) < FLOW_STABLE);
        self.flow_losses = if flapping { self.flow_losses + 1 } else { 1 };
        self.last_flow_loss = Some(now);
        tracing::warn!(%reason, losses = self.flow_losses, "connection to the registrar lost");
        self.announced = None;
        if !self.reregister.retries(503, true) {
            self.reg = RegState::Idle;
            self.emit_reg(
                out,
                RegistrationState::Failed {
                    code: 503,
                    reason: format!("connection to the registrar lost: {reason}"),
                },
            );
            return;
        }
        if self.flow_losses <= 1 {
            self.failures = 0;
            self.send_register(out, true);
        } else {
            let delay = retry_delay(self.flow_losses - 1, 503);
            self.failures = self.flow_losses - 1;
            self.reg = RegState::RetryWait {
                retry_at: now + delay,
            };
            self.emit_reg(
                out,
                RegistrationState::Failed {
                    code: 503,
                    reason: format!("connection to the registrar lost: {reason}"),
                },
            );
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.keepalive_at {
            Some(at) if now >= at => {
                if matches!(self.reg, RegState::Registered { .. }) {
                    out.push(Action::SendKeepAlive);
                    self.keepalive_at = Some(now + self.keepalive_now);
                } else {
                    self.keepalive_at = None;
                }
            }
            _ => {}
        }
        match self.reg {
            RegState::Registered { refresh_at, .. } if now >= refresh_at => {
                self.send_register(out, false);
            }
            RegState::RetryWait { retry_at } if now >= retry_at => {
                self.send_register(out, true);
            }
            _ => {}
        }
        let contact = self.public_contact.clone();
        self.extras.on_tick(now, contact.as_ref(), out);
        self.reoffer_timers(now, out);
        self.reliable_timers(now, out);
        self.session_timers(now, out);
        let expired: Vec<CallKey> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| now >= d))
            .map(|(k, _)| *k)
            .collect();
        for call in expired {
            let Some(c) = self.calls.remove(&call) else {
                continue;
            };
            match c.phase {
                Phase::Cancelling => {
                    emit_end(
                        out,
                        call,
                        EndReason::LocalCancel,
                        None,
                        "no final response to CANCEL",
                    );
                }
                Phase::ByeAfterAck => {
                    // No ACK within 64*T1: end the session anyway (RFC 3261 §13.3.1.4).
                    out.push(Action::SendBye(call));
                }
                Phase::WaitAck => {
                    emit_end(
                        out,
                        call,
                        EndReason::Timeout,
                        Some(408),
                        "no ACK for 200 OK",
                    );
                    out.push(Action::SendBye(call));
                }
                _ => {
                    self.calls.insert(
                        call,
                        Call {
                            deadline: None,
                            ..c
                        },
                    );
                    continue;
                }
            }
            out.push(Action::Forget(call));
        }
    }
}

/// Whether header `name` (case-insensitive, also its compact form for Supported `k`) lists
/// the option tag `tag` (RFC 3261 §19.2, §20.37).
pub(crate) fn has_option_tag(headers: &[(String, String)], name: &str, tag: &str) -> bool {
    headers.iter().any(|(n, v)| {
        (n.eq_ignore_ascii_case(name) || (name.eq_ignore_ascii_case("supported") && n == "k"))
            && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(tag))
    })
}

/// The parts of a final response only some rules need.
#[derive(Default)]
struct FinalExtra {
    sdp: Option<String>,
    contact: Option<String>,
    session_expires: Option<String>,
    min_se: Option<u32>,
}

/// The value of header `name` (or its compact form), case-insensitively.
fn header<'a>(headers: &'a [(String, String)], name: &str, compact: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact))
        .map(|(_, v)| v.as_str())
}

fn emit_end(
    out: &mut Vec<Action>,
    call: CallKey,
    reason: EndReason,
    code: Option<u16>,
    text: &str,
) {
    out.push(Action::Emit(SipEvent::Ended {
        call,
        reason,
        code,
        text: text.to_string(),
    }));
}

/// `User-Agent` values of SIP scanners (SIPVicious, sipcli, sip-scan, ...): their INVITEs
/// never ring (RFC 3261 §26.1.5 leaves the defence against such requests to the UA).
const SCANNER_AGENTS: [&str; 8] = [
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "vaxsipuseragent",
    "iwar",
    "sundayddr",
];

/// Whether the request's `User-Agent` names a known SIP scanner.
fn is_scanner(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("User-Agent"))
        .any(|(_, v)| {
            let v = v.to_ascii_lowercase();
            SCANNER_AGENTS.iter().any(|s| v.contains(s))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::HostPort;

    fn acc() -> AccountConfig {
        AccountConfig {
            server: Some("127.0.0.1:5080".into()),
            username: "1001".into(),
            password: "pass1001".into(),
            register_expires: 600,
            ..Default::default()
        }
    }

    fn target() -> Target {
        Target {
            request_uri: "sip:1002@127.0.0.1:5080".into(),
            next_hop: HostPort::new("127.0.0.1", 5080),
            via_proxy: false,
            from_domain: "127.0.0.1:5080".into(),
            transport: Transport::Udp,
        }
    }

    fn ok(expires: u32) -> RegisterOutcome {
        RegisterOutcome {
            code: 200,
            reason: "OK".into(),
            expires: Some(expires),
            min_expires: None,
            received: Some(HostPort::new("127.0.0.1", 40000)),
            contact: HostPort::new("127.0.0.1", 40000),
            reliable: false,
            websocket: false,
            allow_events: None,
            server_params: Vec::new(),
        }
    }

    fn fail(code: u16, reason: &str) -> RegisterOutcome {
        RegisterOutcome {
            code,
            reason: reason.into(),
            expires: None,
            min_expires: None,
            received: None,
            contact: HostPort::new("127.0.0.1", 40000),
            reliable: false,
            websocket: false,
            allow_events: None,
            server_params: Vec::new(),
        }
    }

    fn events(actions: &[Action]) -> Vec<SipEvent> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Emit(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    fn reg_gen(actions: &[Action]) -> Option<(u64, u32)> {
        actions.iter().find_map(|a| match a {
            Action::SendRegister { gen, expires, .. } => Some((*gen, *expires)),
            _ => None,
        })
    }

    fn registered(p: &mut UaPolicy, t0: Instant, expires: u32) -> u64 {
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("REGISTER sent");
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: ok(expires),
            }),
            t0,
        );
        assert!(
            events(&a).contains(&SipEvent::Registration(RegistrationState::Registered {
                expires
            }))
        );
        gen
    }

    #[test]
    fn register_emits_registering_then_registered() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        assert_eq!(
            events(&a),
            vec![SipEvent::Registration(RegistrationState::Registering)]
        );
        assert_eq!(reg_gen(&a).map(|g| g.1), Some(600));
        registered(&mut UaPolicy::new(Transport::Udp), t0, 600);
    }

    #[test]
    fn register_without_server_fails_immediately() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let a = p.handle(Input::Command(Command::Register), t0);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Registration(RegistrationState::Failed {
                code: 0,
                ..
            })]
        ));
        assert!(reg_gen(&a).is_none());
    }

    #[test]
    fn refresh_scheduled_before_expiry() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        registered(&mut p, t0, 600);
        let deadline = p.next_deadline().expect("refresh scheduled");
        assert_eq!(deadline - t0, Duration::from_secs(510)); // 85 % of 600
                                                             // Nothing happens before the deadline.
        let early = p.handle(Input::Tick, t0 + Duration::from_secs(509));
        assert!(early.is_empty());
        let a = p.handle(Input::Tick, deadline);
        let (gen, expires) = reg_gen(&a).expect("refresh REGISTER");
        assert_eq!(expires, 600);
        // Refreshes are silent.
        assert!(events(&a).is_empty());
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: ok(600),
            }),
            deadline,
        );
        assert!(events(&a).is_empty());
        assert_eq!(
            p.next_deadline().map(|d| d - deadline),
            Some(Duration::from_secs(510))
        );
    }

    #[test]
    fn refresh_follows_granted_expires() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        registered(&mut p, t0, 60);
        assert_eq!(
            p.next_deadline().map(|d| d - t0),
            Some(Duration::from_secs(51))
        );
        assert_eq!(refresh_delay(20), Duration::from_secs(15));
        assert_eq!(refresh_delay(3600), Duration::from_secs(3060));
        assert_eq!(refresh_delay(4), Duration::from_secs(2));
        assert_eq!(refresh_delay(1), Duration::from_secs(1));
    }

    /// A failed REGISTER (`code`) right after `registered` or at the first attempt; returns
    /// whether a retry was scheduled.
    fn retried_after(p: &mut UaPolicy, code: u16, now: Instant) -> bool {
        let a = p.handle(Input::Command(Command::Register), now);
        let (gen, _) = reg_gen(&a).expect("REGISTER sent");
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: fail(code, "no"),
            }),
            now,
        );
        assert!(
            matches!(
                events(&a).as_slice(),
                [SipEvent::Registration(RegistrationState::Failed { .. })]
            ),
            "{a:?}"
        );
        p.next_deadline().is_some()
    }

    #[test]
    fn forcereregister_modes_decide_which_failures_are_retried() {
        let t0 = Instant::now();
        // (mode, registered before, code) -> retried
        let cases = [
            (Reregister::AfterSuccess, false, 503, true),
            (Reregister::AfterSuccess, true, 408, true),
            (Reregister::AfterSuccess, false, 403, false),
            (Reregister::AfterSuccess, true, 401, false),
            (Reregister::Never, false, 503, true),
            (Reregister::Never, true, 503, false),
            (Reregister::Never, true, 403, false),
            (Reregister::Always, true, 403, true),
            (Reregister::Always, false, 407, true),
        ];
        for (mode, before, code, want) in cases {
            let mut p = UaPolicy::new(Transport::Udp);
            p.handle(Input::Command(Command::Reregister(mode)), t0);
            if before {
                registered(&mut p, t0, 600);
            } else {
                p.handle(Input::Command(Command::SetAccount(acc())), t0);
            }
            assert_eq!(
                retried_after(&mut p, code, t0),
                want,
                "{mode:?} registered before {before} code {code}"
            );
        }
        assert_eq!(Reregister::from_param(0), Reregister::Never);
        assert_eq!(Reregister::from_param(1), Reregister::AfterSuccess);
        assert_eq!(Reregister::from_param(2), Reregister::Always);
    }

    #[test]
    fn forcereregister_0_leaves_a_lost_connection_unregistered() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Tcp);
        p.handle(Input::Command(Command::Reregister(Reregister::Never)), t0);
        registered(&mut p, t0, 600);
        let a = p.handle(
            Input::Stack(StackEvent::FlowLost {
                reason: "reset".into(),
            }),
            t0,
        );
        assert!(reg_gen(&a).is_none(), "no new REGISTER: {a:?}");
        assert!(p.next_deadline().is_none() || !matches!(p.reg, RegState::RetryWait { .. }));
        assert!(matches!(p.reg, RegState::Idle));
    }

    #[test]
    fn failed_register_backs_off() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: fail(503, "Service Unavailable"),
            }),
            t0,
        );
        assert_eq!(
            events(&a),
            vec![SipEvent::Registration(RegistrationState::Failed {
                code: 503,
                reason: "Service Unavailable".into()
            })]
        );
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..8 {
            let d = p.next_deadline().expect("retry scheduled");
            delays.push((d - now).as_secs());
            assert!(p
                .handle(Input::Tick, d - Duration::from_millis(1))
                .is_empty());
            let a = p.handle(Input::Tick, d);
            assert_eq!(
                events(&a),
                vec![SipEvent::Registration(RegistrationState::Registering)]
            );
            let (gen, _) = reg_gen(&a).expect("retry REGISTER");
            now = d;
            p.handle(
                Input::Stack(StackEvent::RegisterDone {
                    gen,
                    outcome: fail(408, "Request Timeout"),
                }),
                now,
            );
        }
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        // Success resets the back-off.
        let a = p.handle(Input::Tick, p.next_deadline().expect("retry"));
        let (gen, _) = reg_gen(&a).expect("REGISTER");
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: ok(300),
            }),
            now,
        );
        assert_eq!(
            events(&a),
            vec![SipEvent::Registration(RegistrationState::Registered {
                expires: 300
            })]
        );
    }

    #[test]
    fn wrong_password_fails_with_code_and_backs_off_longer_when_always_retried() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::Reregister(Reregister::Always)), t0);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: fail(401, "Unauthorized"),
            }),
            t0,
        );
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Registration(RegistrationState::Failed {
                code: 401,
                ..
            })]
        ));
        assert_eq!(
            p.next_deadline().map(|d| d - t0),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn stale_register_outcome_is_ignored() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let gen = registered(&mut p, t0, 600);
        let a = p.handle(Input::Command(Command::Unregister), t0);
        let (ugen, expires) = reg_gen(&a).expect("un-REGISTER");
        assert_eq!(expires, 0);
        assert!(ugen > gen);
        // A late answer to the previous REGISTER changes nothing.
        assert!(p
            .handle(
                Input::Stack(StackEvent::RegisterDone {
                    gen,
                    outcome: ok(600)
                }),
                t0
            )
            .is_empty());
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen: ugen,
                outcome: ok(0),
            }),
            t0,
        );
        assert_eq!(
            events(&a),
            vec![SipEvent::Registration(RegistrationState::Unregistered)]
        );
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn unregister_when_idle_reports_unregistered() {
        let mut p = UaPolicy::new(Transport::Udp);
        let a = p.handle(Input::Command(Command::Unregister), Instant::now());
        assert_eq!(
            events(&a),
            vec![SipEvent::Registration(RegistrationState::Unregistered)]
        );
    }

    #[test]
    fn interval_too_brief_retries_with_min_expires() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let mut o = fail(423, "Interval Too Brief");
        o.min_expires = Some(1200);
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone { gen, outcome: o }),
            t0,
        );
        assert_eq!(reg_gen(&a).map(|g| g.1), Some(1200));
        assert!(events(&a).is_empty());
    }

    #[test]
    fn contact_kept_when_rport_use_is_off() {
        // use_rport 0 / 9: the registrar's view of our address is not registered.
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(
            Input::Command(Command::ContactFromVia(ViaContact::Never)),
            t0,
        );
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let mut o = ok(600);
        o.contact = HostPort::new("192.168.1.10", 5060);
        o.received = Some(HostPort::new("203.0.113.7", 61000));
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone { gen, outcome: o }),
            t0,
        );
        assert!(reg_gen(&a).is_none(), "no second REGISTER: {a:?}");
        assert!(!a.iter().any(|x| matches!(x, Action::SetContact(_))));
        assert_eq!(
            events(&a),
            vec![SipEvent::Registration(RegistrationState::Registered {
                expires: 600
            })]
        );
    }

    /// The generation and Contact of the REGISTER in `actions`, if one is sent.
    pub(super) fn register_contact(actions: &[Action]) -> Option<(u64, Option<HostPort>)> {
        actions.iter().find_map(|a| match a {
            Action::SendRegister { gen, contact, .. } => Some((*gen, contact.clone())),
            _ => None,
        })
    }

    /// A REGISTER of `contact` answered 200 with the registrar seeing us at `received`.
    fn answered(
        p: &mut UaPolicy,
        gen: u64,
        contact: &HostPort,
        received: &HostPort,
        t0: Instant,
    ) -> Vec<Action> {
        let mut o = ok(600);
        o.contact = contact.clone();
        o.received = Some(received.clone());
        p.handle(
            Input::Stack(StackEvent::RegisterDone { gen, outcome: o }),
            t0,
        )
    }

    #[test]
    fn fast_stun_address_is_in_the_first_register_and_survives_an_account_change() {
        // use_fast_stun 2: the probe's answer is the Contact from the first REGISTER on.
        let t0 = Instant::now();
        let public = HostPort::new("203.0.113.7", 40000);
        let mut p = UaPolicy::new(Transport::Udp);
        let a = p.handle(
            Input::Command(Command::StunMapped(StunUse::Now(public.clone()))),
            t0,
        );
        assert_eq!(a, vec![Action::SetContact(Some(public.clone()))]);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, contact) = register_contact(&a).expect("sent");
        assert_eq!(contact, Some(public.clone()));
        let a = answered(&mut p, gen, &public, &public, t0);
        assert!(register_contact(&a).is_none(), "no second REGISTER: {a:?}");
        // Another account: the socket's mapping still holds.
        let mut other = acc();
        other.username = "1002".into();
        let a = p.handle(Input::Command(Command::SetAccount(other)), t0);
        assert_eq!(a.last(), Some(&Action::SetContact(Some(public.clone()))));
        let a = p.handle(Input::Command(Command::Register), t0);
        assert_eq!(register_contact(&a).map(|r| r.1), Some(Some(public)));
    }

    #[test]
    fn stable_stun_address_is_used_once_the_registrar_confirms_it() {
        // use_fast_stun 1 with use_rport 0: the registrar's view alone would not be used,
        // but it confirms the STUN answer (one mapping for both destinations).
        let t0 = Instant::now();
        let (private, public) = (
            HostPort::new("192.168.1.10", 5060),
            HostPort::new("203.0.113.7", 5060),
        );
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(
            Input::Command(Command::ContactFromVia(ViaContact::Never)),
            t0,
        );
        let a = p.handle(
            Input::Command(Command::StunMapped(StunUse::WhenConfirmed(public.clone()))),
            t0,
        );
        assert!(a.is_empty(), "not used before the confirmation: {a:?}");
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, contact) = register_contact(&a).expect("sent");
        assert_eq!(contact, None, "our own address first");
        let a = answered(&mut p, gen, &private, &public, t0);
        assert!(a.contains(&Action::SetContact(Some(public.clone()))));
        assert!(
            a.contains(&Action::ReplaceBinding {
                old: private.clone(),
                new: public.clone()
            }),
            "the binding of our own address goes: {a:?}"
        );
        let (gen2, contact) = register_contact(&a).expect("re-REGISTER");
        assert_eq!(contact, Some(public.clone()));
        assert!(events(&a).is_empty(), "not announced yet: {a:?}");
        let a = answered(&mut p, gen2, &public, &public, t0);
        assert_eq!(
            events(&a),
            vec![SipEvent::Registration(RegistrationState::Registered {
                expires: 600
            })]
        );
    }

    #[test]
    fn stun_address_the_registrar_does_not_see_is_not_used() {
        // A NAT that maps each destination to another port (RFC 4787 "address-dependent
        // mapping"): the STUN answer is wrong for the registrar. use_rport decides alone.
        let t0 = Instant::now();
        let private = HostPort::new("192.168.1.10", 5060);
        let (stun, registrar) = (
            HostPort::new("203.0.113.7", 40000),
            HostPort::new("203.0.113.7", 40001),
        );
        for (via, expected) in [
            (ViaContact::Never, None),
            (ViaContact::WhenLocal, Some(registrar.clone())),
        ] {
            let mut p = UaPolicy::new(Transport::Udp);
            p.handle(Input::Command(Command::ContactFromVia(via)), t0);
            p.handle(
                Input::Command(Command::StunMapped(StunUse::WhenConfirmed(stun.clone()))),
                t0,
            );
            p.handle(Input::Command(Command::SetAccount(acc())), t0);
            let a = p.handle(Input::Command(Command::Register), t0);
            let (gen, _) = register_contact(&a).expect("sent");
            let a = answered(&mut p, gen, &private, &registrar, t0);
            assert_eq!(
                register_contact(&a).and_then(|r| r.1),
                expected,
                "{via:?}: {a:?}"
            );
        }
    }

    #[test]
    fn registrar_view_of_a_public_address_is_used_only_with_use_rport_3() {
        // use_rport 1/2 trust the registrar's view only while our own address is local.
        let t0 = Instant::now();
        let (ours, seen) = (
            HostPort::new("198.51.100.2", 5060),
            HostPort::new("203.0.113.7", 5060),
        );
        for (via, fixed) in [(ViaContact::WhenLocal, false), (ViaContact::Always, true)] {
            let mut p = UaPolicy::new(Transport::Udp);
            p.handle(Input::Command(Command::ContactFromVia(via)), t0);
            p.handle(Input::Command(Command::SetAccount(acc())), t0);
            let a = p.handle(Input::Command(Command::Register), t0);
            let (gen, _) = register_contact(&a).expect("sent");
            let a = answered(&mut p, gen, &ours, &seen, t0);
            assert_eq!(
                a.contains(&Action::SetContact(Some(seen.clone()))),
                fixed,
                "{via:?}: {a:?}"
            );
        }
    }

    #[test]
    fn register_rewrites_contact_from_rport() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let mut o = ok(600);
        o.contact = HostPort::new("192.168.1.10", 5060);
        o.received = Some(HostPort::new("203.0.113.7", 61000));
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone { gen, outcome: o }),
            t0,
        );
        let public = HostPort::new("203.0.113.7", 61000);
        assert!(a.contains(&Action::SetContact(Some(public.clone()))));
        let again = a.iter().find_map(|x| match x {
            Action::SendRegister { gen, contact, .. } => Some((*gen, contact.clone())),
            _ => None,
        });
        let (gen2, contact) = again.expect("re-REGISTER with the corrected Contact");
        assert_eq!(contact, Some(public.clone()));
        assert!(events(&a).is_empty());
        let mut o = ok(600);
        o.contact = public.clone();
        o.received = Some(public);
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen: gen2,
                outcome: o,
            }),
            t0,
        );
        assert_eq!(
            events(&a),
            vec![SipEvent::Registration(RegistrationState::Registered {
                expires: 600
            })]
        );
    }

    #[test]
    fn tcp_contact_keeps_listener_port() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Tcp);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let mut o = ok(600);
        o.contact = HostPort::new("127.0.0.1", 5070);
        o.received = Some(HostPort::new("127.0.0.1", 41234)); // ephemeral source port
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone { gen, outcome: o }),
            t0,
        );
        assert!(!a.iter().any(|x| matches!(x, Action::SetContact(_))));
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Registration(RegistrationState::Registered { .. })]
        ));
    }

    fn outgoing(p: &mut UaPolicy, call: CallKey, now: Instant) {
        let a = p.handle(
            Input::Command(Command::Invite {
                call,
                call_id: format!("cid-{}", call.0),
                target: target(),
                sdp: "v=0".into(),
            }),
            now,
        );
        assert!(matches!(a.as_slice(), [Action::SendInvite { .. }]));
        assert_eq!(p.negotiation(call), Some(Negotiation::RemoteOwesAnswer));
        assert_eq!(p.direction(call), Some(Direction::Outgoing));
    }

    fn provisional(call: CallKey, code: u16) -> Input {
        Input::Stack(StackEvent::Provisional {
            call,
            code,
            reason: "Ringing".into(),
            sdp: None,
        })
    }

    fn final_resp(call: CallKey, code: u16, sdp: Option<&str>) -> Input {
        Input::Stack(StackEvent::Final {
            call,
            code,
            reason: if code == 200 {
                "OK".into()
            } else {
                "Busy Here".into()
            },
            sdp: sdp.map(String::from),
            contact: None,
            session_expires: None,
            min_se: None,
        })
    }

    #[test]
    fn outgoing_call_progress_and_answer() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        assert!(p.handle(provisional(call, 100), t0).is_empty());
        assert_eq!(p.phase(call), Some(Phase::Calling));
        let a = p.handle(provisional(call, 180), t0);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Progress { code: 180, .. }]
        ));
        assert_eq!(p.phase(call), Some(Phase::Early));
        let a = p.handle(final_resp(call, 200, Some("v=0 answer")), t0);
        assert_eq!(
            events(&a),
            vec![SipEvent::Answered {
                call,
                sdp: Some("v=0 answer".into())
            }]
        );
        assert_eq!(p.phase(call), Some(Phase::Confirmed));
        assert_eq!(p.negotiation(call), Some(Negotiation::Complete));
    }

    #[test]
    fn hangup_before_answer_sends_cancel() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        p.handle(provisional(call, 180), t0);
        let a = p.handle(Input::Command(Command::Hangup(call)), t0);
        assert_eq!(a, vec![Action::SendCancel(call)]);
        assert_eq!(p.phase(call), Some(Phase::Cancelling));
        // A second hangup does nothing.
        assert!(p
            .handle(Input::Command(Command::Hangup(call)), t0)
            .is_empty());
        // Progress while cancelling is not reported.
        assert!(events(&p.handle(provisional(call, 183), t0)).is_empty());
        let a = p.handle(final_resp(call, 487, None), t0);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::LocalCancel,
                code: Some(487),
                ..
            }]
        ));
        assert!(a.contains(&Action::Forget(call)));
        assert_eq!(p.phase(call), None);
    }

    #[test]
    fn hangup_while_calling_defers_to_stack_but_still_cancels() {
        // Before any provisional response the CANCEL is held back by the stack until one
        // arrives (RFC 3261 §9.1); the policy just asks for it.
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        let a = p.handle(Input::Command(Command::Hangup(call)), t0);
        assert_eq!(a, vec![Action::SendCancel(call)]);
        // If nothing ever answers, the call ends after 64*T1.
        let d = p.next_deadline().expect("cancel guard");
        assert_eq!(d - t0, TRANSACTION_TIMEOUT);
        let a = p.handle(Input::Tick, d);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::LocalCancel,
                code: None,
                ..
            }]
        ));
        // The late 487 is a ghost.
        assert!(p.handle(final_resp(call, 487, None), d).is_empty());
    }

    #[test]
    fn hangup_after_answer_sends_bye() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        p.handle(final_resp(call, 200, Some("v=0")), t0);
        let a = p.handle(Input::Command(Command::Hangup(call)), t0);
        assert_eq!(a[0], Action::SendBye(call));
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::LocalHangup,
                ..
            }]
        ));
        // Our own BYE's termination report is not a second Ended.
        assert!(p
            .handle(
                Input::Stack(StackEvent::Terminated {
                    call,
                    cause: Termination::Local
                }),
                t0
            )
            .is_empty());
    }

    #[test]
    fn cancel_crosses_200_ok() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        p.handle(provisional(call, 180), t0);
        p.handle(Input::Command(Command::Hangup(call)), t0);
        let a = p.handle(final_resp(call, 200, Some("v=0")), t0);
        assert_eq!(a[0], Action::AckAndBye(call));
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::LocalCancel,
                ..
            }]
        ));
        assert!(!events(&a)
            .iter()
            .any(|e| matches!(e, SipEvent::Answered { .. })));
    }

    #[test]
    fn rejected_outgoing_call_reports_code() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(7);
        outgoing(&mut p, call, t0);
        let a = p.handle(final_resp(call, 486, None), t0);
        assert_eq!(
            events(&a),
            vec![SipEvent::Ended {
                call,
                reason: EndReason::Rejected,
                code: Some(486),
                text: "Busy Here".into()
            }]
        );
    }

    #[test]
    fn remote_bye_ends_call_once() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        p.handle(final_resp(call, 200, Some("v=0")), t0);
        let bye = || {
            Input::Stack(StackEvent::Terminated {
                call,
                cause: Termination::RemoteBye,
            })
        };
        let a = p.handle(bye(), t0);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::RemoteHangup,
                ..
            }]
        ));
        assert!(p.handle(bye(), t0).is_empty());
        assert!(p
            .handle(Input::Command(Command::Hangup(call)), t0)
            .is_empty());
    }

    fn incoming(p: &mut UaPolicy, call: CallKey, sdp: Option<&str>) -> Vec<Action> {
        p.handle(
            Input::Stack(StackEvent::Incoming(IncomingInvite {
                call,
                sip_call_id: "abc".into(),
                from_user: "1002".into(),
                from_display: Some("Bob".into()),
                from_uri: "sip:1002@127.0.0.1".into(),
                to_user: "1001".into(),
                remote_addr: "127.0.0.1:5080".parse().expect("addr"),
                sdp: sdp.map(String::from),
                headers: vec![],
                request_user: "1001".into(),
                from_server: true,
            })),
            Instant::now(),
        )
    }

    #[test]
    fn incoming_call_ringing_answer_ack() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(3);
        let a = incoming(&mut p, call, Some("offer"));
        assert!(matches!(events(&a).as_slice(), [SipEvent::Incoming { .. }]));
        assert_eq!(p.negotiation(call), Some(Negotiation::LocalOwesAnswer));
        assert_eq!(
            p.handle(Input::Command(Command::Ringing(call)), t0),
            vec![Action::SendRinging(call)]
        );
        assert_eq!(
            p.handle(Input::Command(Command::Answer(call, "answer".into())), t0),
            vec![Action::SendAnswer(call, "answer".into())]
        );
        assert_eq!(p.phase(call), Some(Phase::WaitAck));
        assert_eq!(p.negotiation(call), Some(Negotiation::Complete));
        let a = p.handle(
            Input::Stack(StackEvent::AckReceived { call, sdp: None }),
            t0,
        );
        assert_eq!(events(&a), vec![SipEvent::Answered { call, sdp: None }]);
        assert_eq!(p.phase(call), Some(Phase::Confirmed));
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn incoming_without_offer_expects_answer_in_ack() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(3);
        incoming(&mut p, call, None);
        assert_eq!(p.negotiation(call), Some(Negotiation::LocalOwesOffer));
        p.handle(Input::Command(Command::Answer(call, "offer".into())), t0);
        assert_eq!(
            p.negotiation(call),
            Some(Negotiation::RemoteOwesAnswerInAck)
        );
        let a = p.handle(
            Input::Stack(StackEvent::AckReceived {
                call,
                sdp: Some("answer".into()),
            }),
            t0,
        );
        assert_eq!(
            events(&a),
            vec![SipEvent::Answered {
                call,
                sdp: Some("answer".into())
            }]
        );
        assert_eq!(p.negotiation(call), Some(Negotiation::Complete));
    }

    #[test]
    fn incoming_cancel_ends_call() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(3);
        incoming(&mut p, call, Some("offer"));
        p.handle(Input::Command(Command::Ringing(call)), t0);
        let a = p.handle(
            Input::Stack(StackEvent::Terminated {
                call,
                cause: Termination::RemoteCancel,
            }),
            t0,
        );
        assert_eq!(
            events(&a),
            vec![SipEvent::Ended {
                call,
                reason: EndReason::RemoteCancel,
                code: Some(487),
                text: "Request Terminated".into()
            }]
        );
        // Answering a cancelled call is a no-op.
        assert!(p
            .handle(Input::Command(Command::Answer(call, "x".into())), t0)
            .is_empty());
    }

    #[test]
    fn reject_and_hangup_of_unanswered_incoming() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        incoming(&mut p, CallKey(1), Some("o"));
        let a = p.handle(Input::Command(Command::Reject(CallKey(1), 486)), t0);
        assert_eq!(a[0], Action::SendReject(CallKey(1), 486));
        incoming(&mut p, CallKey(2), Some("o"));
        let a = p.handle(Input::Command(Command::Hangup(CallKey(2))), t0);
        assert_eq!(a[0], Action::SendReject(CallKey(2), 603));
        incoming(&mut p, CallKey(3), Some("o"));
        let a = p.handle(Input::Command(Command::Reject(CallKey(3), 42)), t0);
        assert_eq!(a[0], Action::SendReject(CallKey(3), 603));
    }

    #[test]
    fn hangup_while_waiting_for_ack_sends_bye_after_ack() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        incoming(&mut p, call, Some("o"));
        p.handle(Input::Command(Command::Answer(call, "a".into())), t0);
        let a = p.handle(Input::Command(Command::Hangup(call)), t0);
        assert!(!a.iter().any(|x| matches!(x, Action::SendBye(_))));
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::LocalHangup,
                ..
            }]
        ));
        let a = p.handle(
            Input::Stack(StackEvent::AckReceived { call, sdp: None }),
            t0,
        );
        assert_eq!(a, vec![Action::SendBye(call), Action::Forget(call)]);
    }

    #[test]
    fn missing_ack_times_out() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        incoming(&mut p, call, Some("o"));
        p.handle(Input::Command(Command::Answer(call, "a".into())), t0);
        let a = p.handle(Input::Tick, t0 + TRANSACTION_TIMEOUT);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::Timeout,
                ..
            }]
        ));
        assert!(a.contains(&Action::SendBye(call)));
    }

    #[test]
    fn shutdown_hangs_up_and_unregisters() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        registered(&mut p, t0, 600);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        p.handle(final_resp(call, 200, Some("v=0")), t0);
        let a = p.handle(Input::Command(Command::Shutdown), t0);
        assert!(a.contains(&Action::SendBye(call)));
        let (gen, expires) = reg_gen(&a).expect("un-REGISTER");
        assert_eq!(expires, 0);
        assert!(!a.contains(&Action::ShutdownComplete));
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: ok(0),
            }),
            t0,
        );
        assert!(a.contains(&Action::ShutdownComplete));
        assert!(events(&a).contains(&SipEvent::Registration(RegistrationState::Unregistered)));
    }

    #[test]
    fn shutdown_keeps_the_binding_when_asked_not_to_unregister() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        registered(&mut p, t0, 600);
        p.handle(Input::Command(Command::UnregisterOnShutdown(false)), t0);
        let a = p.handle(Input::Command(Command::Shutdown), t0);
        assert!(reg_gen(&a).is_none(), "no un-REGISTER: {a:?}");
        assert!(
            a.contains(&Action::ShutdownComplete),
            "nothing to wait for: {a:?}"
        );
    }

    #[test]
    fn shutdown_does_not_wait_forever_for_registrar() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        registered(&mut p, t0, 600);
        let a = p.handle(Input::Command(Command::Shutdown), t0);
        assert!(!a.contains(&Action::ShutdownComplete));
        let d = p.next_deadline().expect("grace deadline");
        assert_eq!(d - t0, SHUTDOWN_GRACE);
        assert!(p.handle(Input::Tick, d).contains(&Action::ShutdownComplete));
    }

    #[test]
    fn shutdown_without_registration_completes_at_once() {
        let mut p = UaPolicy::new(Transport::Udp);
        let a = p.handle(Input::Command(Command::Shutdown), Instant::now());
        assert_eq!(a, vec![Action::ShutdownComplete]);
    }

    #[test]
    fn set_account_while_registered_unregisters_old_binding() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        registered(&mut p, t0, 600);
        let mut other = acc();
        other.username = "1003".into();
        let a = p.handle(Input::Command(Command::SetAccount(other)), t0);
        let old = a.iter().find_map(|x| match x {
            Action::SendRegister {
                account, expires, ..
            } => Some((account.username.clone(), *expires)),
            _ => None,
        });
        assert_eq!(old, Some(("1001".into(), 0)));
    }

    #[test]
    fn events_for_unknown_calls_are_ghosts() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(99);
        assert!(p.handle(provisional(call, 180), t0).is_empty());
        assert!(p.handle(final_resp(call, 200, None), t0).is_empty());
        assert!(p
            .handle(
                Input::Stack(StackEvent::AckReceived { call, sdp: None }),
                t0
            )
            .is_empty());
        assert!(p
            .handle(Input::Command(Command::Ringing(call)), t0)
            .is_empty());
        assert!(p
            .handle(Input::Stack(StackEvent::Dtmf { call, digit: '1' }), t0)
            .is_empty());
    }

    fn keepalives(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| matches!(a, Action::SendKeepAlive))
            .count()
    }

    fn flow_lost() -> Input {
        Input::Stack(StackEvent::FlowLost {
            reason: "closed by peer".into(),
        })
    }

    #[test]
    fn registrar_parameters_in_a_2xx_are_reported_each_time() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let pushed = vec![("X-MParam".to_string(), "loglevel=5".to_string())];
        for _ in 0..2 {
            let a = p.handle(Input::Command(Command::Register), t0);
            let (gen, _) = reg_gen(&a).expect("sent");
            let mut o = ok(600);
            o.server_params = pushed.clone();
            let a = p.handle(
                Input::Stack(StackEvent::RegisterDone { gen, outcome: o }),
                t0,
            );
            assert!(
                a.contains(&Action::Emit(SipEvent::ServerParameters(pushed.clone()))),
                "{a:?}"
            );
        }
        // A 2xx without them says nothing.
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: ok(600),
            }),
            t0,
        );
        assert!(!a
            .iter()
            .any(|x| matches!(x, Action::Emit(SipEvent::ServerParameters(_)))));
    }

    #[test]
    fn keepalive_pings_at_the_interval_while_registered_over_tls() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Tls).with_keepalive(Duration::from_secs(28));
        registered(&mut p, t0, 600);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(28)));
        // Nothing before it is due.
        let a = p.handle(Input::Tick, t0 + Duration::from_secs(27));
        assert_eq!(keepalives(&a), 0);
        let a = p.handle(Input::Tick, t0 + Duration::from_secs(28));
        assert_eq!(keepalives(&a), 1);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(56)));
        let a = p.handle(Input::Tick, t0 + Duration::from_secs(56));
        assert_eq!(keepalives(&a), 1);
        // After unregistering no more pings are scheduled.
        let a = p.handle(
            Input::Command(Command::Unregister),
            t0 + Duration::from_secs(60),
        );
        let (gen, expires) = reg_gen(&a).expect("un-REGISTER");
        assert_eq!(expires, 0);
        p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: ok(0),
            }),
            t0 + Duration::from_secs(60),
        );
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn keepalive_pings_on_a_connection_dns_chose_for_a_udp_configured_ua() {
        // RFC 3263 §4.1 picked TCP/TLS/WS for the REGISTER: the flow needs keep-alives
        // (RFC 5626 §4.4.1) although the UA was configured for UDP.
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp).with_keepalive(Duration::from_secs(28));
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let mut o = ok(600);
        o.reliable = true;
        p.handle(
            Input::Stack(StackEvent::RegisterDone { gen, outcome: o }),
            t0,
        );
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(28)));
        let a = p.handle(Input::Tick, t0 + Duration::from_secs(28));
        assert_eq!(keepalives(&a), 1);
    }

    #[test]
    fn websocket_flow_dns_chose_pings_at_the_websocket_interval() {
        // NAPTR picked WS for a UA configured for UDP: `wskeepaliveival` applies, not
        // `keepaliveival`.
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp)
            .with_keepalive(Duration::from_secs(28))
            .with_ws_keepalive(Duration::from_secs(45));
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let mut o = ok(600);
        o.reliable = true;
        o.websocket = true;
        p.handle(
            Input::Stack(StackEvent::RegisterDone { gen, outcome: o }),
            t0,
        );
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(45)));
        let a = p.handle(Input::Tick, t0 + Duration::from_secs(28));
        assert_eq!(keepalives(&a), 0, "not at the TCP interval");
        let a = p.handle(Input::Tick, t0 + Duration::from_secs(45));
        assert_eq!(keepalives(&a), 1);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(90)));
    }

    #[test]
    fn contact_port_kept_on_a_connection_dns_chose() {
        // The registrar saw the ephemeral port of our TLS/TCP connection: not a Contact
        // correction (it would leave a second binding behind).
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("sent");
        let mut o = ok(600);
        o.reliable = true;
        o.contact = HostPort::new("127.0.0.1", 5060);
        o.received = Some(HostPort::new("127.0.0.1", 43211));
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone { gen, outcome: o }),
            t0,
        );
        assert!(reg_gen(&a).is_none(), "no second REGISTER: {a:?}");
        assert!(!a.iter().any(|x| matches!(x, Action::SetContact(_))));
    }

    #[test]
    fn keepalive_refreshes_the_nat_binding_over_udp_and_is_off_with_zero_interval() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp).with_keepalive(Duration::from_secs(28));
        registered(&mut p, t0, 600);
        assert_eq!(
            keepalives(&p.handle(Input::Tick, t0 + Duration::from_secs(27))),
            0
        );
        let a = p.handle(Input::Tick, t0 + Duration::from_secs(28));
        assert_eq!(keepalives(&a), 1);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(56)));
        let mut p = UaPolicy::new(Transport::Tcp).with_keepalive(Duration::ZERO);
        registered(&mut p, t0, 600);
        assert_eq!(p.next_deadline(), Some(t0 + refresh_delay(600)));
    }

    #[test]
    fn lost_connection_reregisters_at_once_then_backs_off_while_flapping() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Tcp).with_keepalive(Duration::from_secs(30));
        registered(&mut p, t0, 600);

        // First loss: a new REGISTER at once (over a new connection).
        let t1 = t0 + Duration::from_secs(100);
        let a = p.handle(flow_lost(), t1);
        let (gen, _) = reg_gen(&a).expect("re-REGISTER at once");
        assert!(events(&a).contains(&SipEvent::Registration(RegistrationState::Registering)));
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: ok(600),
            }),
            t1,
        );
        // `Registered` is announced again: the engine saw the registration wobble.
        assert!(
            events(&a).contains(&SipEvent::Registration(RegistrationState::Registered {
                expires: 600
            }))
        );

        // Lost again 10 s later: flapping -> back off 5 s, reported as a 503 failure.
        let t2 = t1 + Duration::from_secs(10);
        let a = p.handle(flow_lost(), t2);
        assert!(
            reg_gen(&a).is_none(),
            "no immediate REGISTER while flapping"
        );
        assert!(events(&a).iter().any(|e| matches!(
            e,
            SipEvent::Registration(RegistrationState::Failed { code: 503, reason })
                if reason.contains("connection to the registrar lost")
        )));
        assert_eq!(p.next_deadline(), Some(t2 + Duration::from_secs(5)));
        let a = p.handle(Input::Tick, t2 + Duration::from_secs(5));
        let (gen, _) = reg_gen(&a).expect("retry after the back-off");
        p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: ok(600),
            }),
            t2 + Duration::from_secs(5),
        );

        // And again: the back-off doubles.
        let t3 = t2 + Duration::from_secs(20);
        p.handle(flow_lost(), t3);
        assert_eq!(p.next_deadline(), Some(t3 + Duration::from_secs(10)));
        let a = p.handle(Input::Tick, t3 + Duration::from_secs(10));
        let (gen, _) = reg_gen(&a).expect("retry after the doubled back-off");
        p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: ok(600),
            }),
            t3 + Duration::from_secs(10),
        );

        // After a stable minute a loss re-registers at once again.
        let t4 = t3 + FLOW_STABLE + Duration::from_secs(1);
        let a = p.handle(flow_lost(), t4);
        assert!(reg_gen(&a).is_some(), "stable flow: immediate re-REGISTER");
    }

    #[test]
    fn lost_connection_while_idle_or_registering_changes_nothing() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Tls);
        let a = p.handle(flow_lost(), t0);
        assert!(a.is_empty());
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(Input::Command(Command::Register), t0);
        let (gen, _) = reg_gen(&a).expect("REGISTER");
        // The REGISTER in flight reports its own outcome.
        let a = p.handle(flow_lost(), t0);
        assert!(a.is_empty());
        let a = p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: fail(503, "transport error"),
            }),
            t0,
        );
        assert!(events(&a).iter().any(|e| matches!(
            e,
            SipEvent::Registration(RegistrationState::Failed { code: 503, .. })
        )));
    }

    #[test]
    fn failed_reregistration_after_a_lost_connection_uses_the_failure_back_off() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Ws);
        registered(&mut p, t0, 600);
        let a = p.handle(flow_lost(), t0 + Duration::from_secs(100));
        let (gen, _) = reg_gen(&a).expect("re-REGISTER");
        // The server is gone: connecting fails.
        let t1 = t0 + Duration::from_secs(101);
        p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: fail(503, "connection refused"),
            }),
            t1,
        );
        assert_eq!(p.next_deadline(), Some(t1 + Duration::from_secs(5)));
        let a = p.handle(Input::Tick, t1 + Duration::from_secs(5));
        let (gen, _) = reg_gen(&a).expect("retry");
        let t2 = t1 + Duration::from_secs(5);
        p.handle(
            Input::Stack(StackEvent::RegisterDone {
                gen,
                outcome: fail(503, "connection refused"),
            }),
            t2,
        );
        assert_eq!(p.next_deadline(), Some(t2 + Duration::from_secs(10)));
    }

    // ------------------------------------------------ re-INVITE / UPDATE (item 1)

    const LOCAL: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";

    fn established_outgoing(p: &mut UaPolicy, call: CallKey, t0: Instant) {
        let a = p.handle(
            Input::Command(Command::Invite {
                call,
                call_id: "cid".into(),
                target: target(),
                sdp: LOCAL.into(),
            }),
            t0,
        );
        assert!(matches!(a.as_slice(), [Action::SendInvite { .. }]));
        p.handle(final_resp(call, 200, Some("answer")), t0);
        assert_eq!(p.phase(call), Some(Phase::Confirmed));
    }

    fn established_incoming(p: &mut UaPolicy, call: CallKey, t0: Instant) {
        incoming(p, call, Some("offer"));
        p.handle(Input::Command(Command::Answer(call, LOCAL.into())), t0);
        p.handle(
            Input::Stack(StackEvent::AckReceived { call, sdp: None }),
            t0,
        );
        assert_eq!(p.phase(call), Some(Phase::Confirmed));
    }

    fn peer_reoffer(call: CallKey, id: u64, update: bool, sdp: Option<&str>) -> Input {
        Input::Stack(StackEvent::Reoffer {
            call,
            id,
            update,
            sdp: sdp.map(String::from),
        })
    }

    fn reoffer_result(call: CallKey, code: u16, sdp: Option<&str>) -> Input {
        Input::Stack(StackEvent::ReofferResult {
            call,
            code,
            reason: "r".into(),
            sdp: sdp.map(String::from),
        })
    }

    #[test]
    fn far_end_hold_reoffer_is_answered_by_the_engine() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(7);
        established_incoming(&mut p, call, t0);
        let a = p.handle(peer_reoffer(call, 1, false, Some("hold a=sendonly")), t0);
        assert_eq!(
            a,
            vec![Action::Emit(SipEvent::Reoffer {
                call,
                sdp: "hold a=sendonly".into()
            })]
        );
        assert_eq!(p.next_deadline(), Some(t0 + REOFFER_ANSWER_TIMEOUT));
        let a = p.handle(
            Input::Command(Command::AnswerReoffer(call, "recvonly answer".into())),
            t0,
        );
        assert_eq!(
            a,
            vec![Action::RespondReoffer {
                call,
                id: 1,
                code: 200,
                sdp: Some("recvonly answer".into())
            }]
        );
        assert_eq!(p.next_deadline(), None);
        // A second answer has nothing to answer.
        assert!(p
            .handle(Input::Command(Command::AnswerReoffer(call, "x".into())), t0)
            .is_empty());
    }

    #[test]
    fn unanswered_reoffer_gets_fallback_answer_with_adapted_direction() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(7);
        established_incoming(&mut p, call, t0);
        p.handle(
            peer_reoffer(
                call,
                4,
                false,
                Some("v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n"),
            ),
            t0,
        );
        assert!(p
            .handle(
                Input::Tick,
                t0 + REOFFER_ANSWER_TIMEOUT - Duration::from_millis(1)
            )
            .is_empty());
        let a = p.handle(Input::Tick, t0 + REOFFER_ANSWER_TIMEOUT);
        match a.as_slice() {
            [Action::RespondReoffer {
                id: 4,
                code: 200,
                sdp: Some(sdp),
                ..
            }] => {
                assert!(sdp.contains("a=recvonly"), "{sdp}");
                assert!(sdp.contains("o=a 1 2 "), "{sdp}");
            }
            other => panic!("expected fallback answer, got {other:?}"),
        }
        // The late engine answer is ignored.
        assert!(p
            .handle(
                Input::Command(Command::AnswerReoffer(call, "late".into())),
                t0
            )
            .is_empty());
    }

    #[test]
    fn empty_engine_answer_refuses_reoffer_with_488() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(7);
        established_incoming(&mut p, call, t0);
        p.handle(peer_reoffer(call, 2, true, Some("offer")), t0);
        let a = p.handle(
            Input::Command(Command::AnswerReoffer(call, String::new())),
            t0,
        );
        assert_eq!(
            a,
            vec![Action::RespondReoffer {
                call,
                id: 2,
                code: 488,
                sdp: None
            }]
        );
    }

    #[test]
    fn offerless_reinvite_and_bodyless_update_are_refreshes() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(7);
        established_incoming(&mut p, call, t0);
        let a = p.handle(peer_reoffer(call, 1, false, None), t0);
        assert_eq!(
            a,
            vec![Action::RespondReoffer {
                call,
                id: 1,
                code: 200,
                sdp: Some(LOCAL.into())
            }]
        );
        let a = p.handle(peer_reoffer(call, 2, true, None), t0);
        assert_eq!(
            a,
            vec![Action::RespondReoffer {
                call,
                id: 2,
                code: 200,
                sdp: None
            }]
        );
    }

    #[test]
    fn reoffer_for_unknown_call_gets_481_and_second_pending_gets_500() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let a = p.handle(peer_reoffer(CallKey(99), 1, false, Some("o")), t0);
        assert!(matches!(
            a.as_slice(),
            [Action::RespondReoffer { code: 481, .. }]
        ));
        let call = CallKey(7);
        established_incoming(&mut p, call, t0);
        p.handle(peer_reoffer(call, 2, false, Some("o1")), t0);
        let a = p.handle(peer_reoffer(call, 3, true, Some("o2")), t0);
        assert!(matches!(
            a.as_slice(),
            [Action::RespondReoffer {
                id: 3,
                code: 500,
                ..
            }]
        ));
    }

    #[test]
    fn our_reinvite_answer_is_reported_as_reanswered() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        established_outgoing(&mut p, call, t0);
        let a = p.handle(
            Input::Command(Command::Reoffer {
                call,
                sdp: "hold".into(),
                update: false,
            }),
            t0,
        );
        assert_eq!(
            a,
            vec![Action::SendReoffer {
                call,
                sdp: "hold".into(),
                update: false
            }]
        );
        // A second offer while the first is pending is refused at once.
        let a = p.handle(
            Input::Command(Command::Reoffer {
                call,
                sdp: "again".into(),
                update: true,
            }),
            t0,
        );
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::ReofferFailed { code: 491, .. }]
        ));
        let a = p.handle(reoffer_result(call, 200, Some("held answer")), t0);
        assert_eq!(
            events(&a),
            vec![SipEvent::Reanswered {
                call,
                sdp: Some("held answer".into())
            }]
        );
        // The new local SDP is what an offer-less re-INVITE gets now.
        let a = p.handle(peer_reoffer(call, 5, false, None), t0);
        assert!(matches!(
            a.as_slice(),
            [Action::RespondReoffer { sdp: Some(s), .. }] if s == "hold"
        ));
    }

    #[test]
    fn reinvite_before_answer_is_refused() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        let a = p.handle(
            Input::Command(Command::Reoffer {
                call,
                sdp: "x".into(),
                update: false,
            }),
            t0,
        );
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::ReofferFailed { code: 491, .. }]
        ));
    }

    #[test]
    fn glare_incoming_reoffer_while_ours_pending_gets_491() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        established_outgoing(&mut p, call, t0);
        p.handle(
            Input::Command(Command::Reoffer {
                call,
                sdp: "ours".into(),
                update: false,
            }),
            t0,
        );
        let a = p.handle(peer_reoffer(call, 9, false, Some("theirs")), t0);
        assert_eq!(
            a,
            vec![Action::RespondReoffer {
                call,
                id: 9,
                code: 491,
                sdp: None
            }]
        );
    }

    #[test]
    fn glare_491_retries_after_owner_backoff_then_gives_up() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp).with_seed(7);
        let call = CallKey(1);
        // We placed the call: we own the Call-ID, back-off 2.1-4 s (RFC 3261 §14.1).
        established_outgoing(&mut p, call, t0);
        p.handle(
            Input::Command(Command::Reoffer {
                call,
                sdp: "ours".into(),
                update: false,
            }),
            t0,
        );
        let mut now = t0;
        for attempt in 1..GLARE_ATTEMPTS {
            let a = p.handle(reoffer_result(call, 491, None), now);
            assert!(a.is_empty(), "attempt {attempt}: {a:?}");
            let at = p.next_deadline().expect("retry scheduled");
            let delay = at - now;
            assert!(
                delay >= Duration::from_millis(2100) && delay <= Duration::from_millis(4000),
                "{delay:?}"
            );
            // While waiting, the peer's own offer is accepted (no glare any more).
            assert!(p
                .handle(Input::Tick, at - Duration::from_millis(1))
                .is_empty());
            now = at;
            let a = p.handle(Input::Tick, now);
            assert_eq!(
                a,
                vec![Action::SendReoffer {
                    call,
                    sdp: "ours".into(),
                    update: false
                }]
            );
        }
        let a = p.handle(reoffer_result(call, 491, None), now);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::ReofferFailed { code: 491, .. }]
        ));
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn glare_backoff_of_the_callee_is_at_most_two_seconds() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp).with_seed(3);
        let call = CallKey(7);
        established_incoming(&mut p, call, t0);
        p.handle(
            Input::Command(Command::Reoffer {
                call,
                sdp: "ours".into(),
                update: true,
            }),
            t0,
        );
        p.handle(reoffer_result(call, 491, None), t0);
        let delay = p.next_deadline().expect("retry") - t0;
        assert!(delay <= Duration::from_secs(2), "{delay:?}");
    }

    #[test]
    fn reinvite_481_ends_the_call() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        established_outgoing(&mut p, call, t0);
        p.handle(
            Input::Command(Command::Reoffer {
                call,
                sdp: "x".into(),
                update: false,
            }),
            t0,
        );
        let a = p.handle(reoffer_result(call, 481, None), t0);
        assert!(a.contains(&Action::SendBye(call)));
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::Failed,
                code: Some(481),
                ..
            }]
        ));
        let a = p.handle(reoffer_result(call, 200, None), t0);
        assert!(a.is_empty());
    }

    #[test]
    fn refused_reinvite_keeps_the_session() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        established_outgoing(&mut p, call, t0);
        p.handle(
            Input::Command(Command::Reoffer {
                call,
                sdp: "x".into(),
                update: false,
            }),
            t0,
        );
        let a = p.handle(reoffer_result(call, 488, None), t0);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::ReofferFailed { code: 488, .. }]
        ));
        assert_eq!(p.phase(call), Some(Phase::Confirmed));
    }

    // ------------------------------------------------------- 100rel (item 3)

    fn incoming_100rel(p: &mut UaPolicy, call: CallKey, header: &str, t0: Instant) {
        p.handle(
            Input::Stack(StackEvent::Incoming(IncomingInvite {
                call,
                sip_call_id: "abc".into(),
                from_user: "1002".into(),
                from_display: None,
                from_uri: "sip:1002@127.0.0.1".into(),
                to_user: "1001".into(),
                remote_addr: "127.0.0.1:5080".parse().expect("addr"),
                sdp: Some("offer".into()),
                headers: vec![(header.into(), "timer, 100rel".into())],
                request_user: "1001".into(),
                from_server: true,
            })),
            t0,
        );
    }

    fn reliable_rseq(a: &[Action]) -> Option<u32> {
        a.iter().find_map(|a| match a {
            Action::SendReliableRinging { rseq, .. } => Some(*rseq),
            _ => None,
        })
    }

    #[test]
    fn supported_100rel_makes_180_reliable_until_prack() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp).with_seed(11);
        let call = CallKey(5);
        incoming_100rel(&mut p, call, "Supported", t0);
        let a = p.handle(Input::Command(Command::Ringing(call)), t0);
        let rseq = reliable_rseq(&a).expect("reliable 180");
        assert!((1..1 << 31).contains(&rseq));
        // Retransmitted at T1, then 2*T1 later (RFC 3262 §3).
        assert_eq!(p.next_deadline(), Some(t0 + T1));
        let a = p.handle(Input::Tick, t0 + T1);
        assert_eq!(reliable_rseq(&a), Some(rseq));
        assert_eq!(p.next_deadline(), Some(t0 + T1 + 2 * T1));
        // A PRACK for another RSeq changes nothing; the right one stops the timer.
        p.handle(
            Input::Stack(StackEvent::Prack {
                call,
                rseq: rseq.wrapping_add(1),
            }),
            t0 + T1,
        );
        assert!(p.next_deadline().is_some());
        p.handle(Input::Stack(StackEvent::Prack { call, rseq }), t0 + T1);
        assert_eq!(p.next_deadline(), None);
        assert!(p.handle(Input::Tick, t0 + 10 * T1).is_empty());
        // The call goes on normally.
        assert_eq!(
            p.handle(Input::Command(Command::Answer(call, "ans".into())), t0),
            vec![Action::SendAnswer(call, "ans".into())]
        );
    }

    #[test]
    fn prack_with_an_unknown_rack_does_not_match() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp).with_seed(12);
        let call = CallKey(5);
        // No reliable provisional yet: nothing to acknowledge.
        incoming_100rel(&mut p, call, "Supported", t0);
        assert!(!p.prack_matches(call, 1, "INVITE"));
        let a = p.handle(Input::Command(Command::Ringing(call)), t0);
        let rseq = reliable_rseq(&a).expect("reliable 180");
        assert!(
            !p.prack_matches(call, rseq.wrapping_add(1), "INVITE"),
            "other RSeq"
        );
        assert!(!p.prack_matches(call, rseq, "UPDATE"), "other method");
        assert!(!p.prack_matches(CallKey(6), rseq, "INVITE"), "other call");
        assert!(p.prack_matches(call, rseq, "invite"));
        // Acknowledged once: a second PRACK (a new transaction) matches nothing any more.
        p.handle(Input::Stack(StackEvent::Prack { call, rseq }), t0);
        assert!(!p.prack_matches(call, rseq, "INVITE"));
    }

    #[test]
    fn prack_after_the_final_response_still_acknowledges_the_180() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp).with_seed(13);
        let call = CallKey(5);
        incoming_100rel(&mut p, call, "Supported", t0);
        let a = p.handle(Input::Command(Command::Ringing(call)), t0);
        let rseq = reliable_rseq(&a).expect("reliable 180");
        // Answered before the PRACK came: no more 180 copies, but the 180 is still unacknowledged.
        p.handle(Input::Command(Command::Answer(call, "ans".into())), t0);
        assert!(reliable_rseq(&p.handle(Input::Tick, t0 + 4 * T1)).is_none());
        assert!(p.prack_matches(call, rseq, "INVITE"));
    }

    #[test]
    fn require_100rel_without_prack_is_rejected_with_500_after_64_t1() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(5);
        incoming_100rel(&mut p, call, "Require", t0);
        p.handle(Input::Command(Command::Ringing(call)), t0);
        let mut retransmits = 0;
        let mut now = t0;
        while let Some(at) = p.next_deadline() {
            now = at;
            let a = p.handle(Input::Tick, now);
            if reliable_rseq(&a).is_some() {
                retransmits += 1;
                continue;
            }
            assert!(a.contains(&Action::SendReject(call, 500)), "{a:?}");
            assert!(matches!(
                events(&a).as_slice(),
                [SipEvent::Ended {
                    reason: EndReason::Failed,
                    code: Some(500),
                    ..
                }]
            ));
            break;
        }
        // 0.5 + 1 + 2 + 4 + 8 + 16 s: six retransmissions, given up at 63.5 s > 32 s.
        assert_eq!(retransmits, 6);
        assert!(now - t0 >= TRANSACTION_TIMEOUT);
    }

    #[test]
    fn answer_ends_reliable_retransmissions() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(5);
        incoming_100rel(&mut p, call, "k", t0);
        let a = p.handle(Input::Command(Command::Ringing(call)), t0);
        assert!(reliable_rseq(&a).is_some(), "compact Supported form: {a:?}");
        p.handle(Input::Command(Command::Answer(call, "ans".into())), t0);
        // Only the ACK timer remains.
        assert_eq!(p.next_deadline(), Some(t0 + TRANSACTION_TIMEOUT));
    }

    #[test]
    fn without_100rel_ringing_is_unreliable() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(5);
        incoming(&mut p, call, Some("offer"));
        assert_eq!(
            p.handle(Input::Command(Command::Ringing(call)), t0),
            vec![Action::SendRinging(call)]
        );
        assert_eq!(p.next_deadline(), None);
    }

    // ------------------------------------------------------ redirects (item 4)

    fn redirect(call: CallKey, code: u16, contact: Option<&str>) -> Input {
        Input::Stack(StackEvent::Final {
            call,
            code,
            reason: "Moved Temporarily".into(),
            sdp: None,
            contact: contact.map(String::from),
            session_expires: None,
            min_se: None,
        })
    }

    #[test]
    fn redirect_302_is_followed_once() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        let a = p.handle(redirect(call, 302, Some("sip:bob@127.0.0.1:5099")), t0);
        assert_eq!(
            a,
            vec![
                Action::Emit(SipEvent::Redirected {
                    call,
                    code: 302,
                    target: "sip:bob@127.0.0.1:5099".into()
                }),
                Action::FollowRedirect {
                    call,
                    uri: "sip:bob@127.0.0.1:5099".into(),
                    sdp: "v=0".into()
                }
            ]
        );
        assert_eq!(p.phase(call), Some(Phase::Calling));
        // A second redirect ends the call.
        let a = p.handle(redirect(call, 301, Some("sip:carol@127.0.0.1:5098")), t0);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::Rejected,
                code: Some(301),
                ..
            }]
        ));
    }

    #[test]
    fn redirect_not_followed_when_disabled_or_without_contact() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::AllowRedirect(false)), t0);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        let a = p.handle(redirect(call, 302, Some("sip:bob@127.0.0.1:5099")), t0);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::Rejected,
                ..
            }]
        ));
        let mut p = UaPolicy::new(Transport::Udp);
        outgoing(&mut p, call, t0);
        let a = p.handle(redirect(call, 302, None), t0);
        assert!(matches!(events(&a).as_slice(), [SipEvent::Ended { .. }]));
    }

    #[test]
    fn redirect_while_cancelling_is_not_followed() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        p.handle(provisional(call, 180), t0);
        p.handle(Input::Command(Command::Hangup(call)), t0);
        let a = p.handle(redirect(call, 302, Some("sip:bob@127.0.0.1:5099")), t0);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::LocalCancel,
                ..
            }]
        ));
    }

    // ------------------------------------------------- session timers (item 5)

    fn final_with(call: CallKey, code: u16, se: Option<&str>, min_se: Option<u32>) -> Input {
        Input::Stack(StackEvent::Final {
            call,
            code,
            reason: "r".into(),
            sdp: Some("answer".into()),
            contact: None,
            session_expires: se.map(String::from),
            min_se,
        })
    }

    #[test]
    fn uac_refresher_reinvites_at_half_the_session_interval() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        p.handle(final_with(call, 200, Some("180;refresher=uac"), None), t0);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(90)));
        assert!(p
            .handle(Input::Tick, t0 + Duration::from_secs(89))
            .is_empty());
        let t1 = t0 + Duration::from_secs(90);
        let a = p.handle(Input::Tick, t1);
        assert_eq!(
            a,
            vec![Action::SendReoffer {
                call,
                sdp: "v=0".into(),
                update: false
            }]
        );
        // The refresh's answer is not reported; the next refresh is due 90 s later.
        let t2 = t1 + Duration::from_millis(40);
        assert!(p
            .handle(reoffer_result(call, 200, Some("answer")), t2)
            .is_empty());
        assert_eq!(p.next_deadline(), Some(t2 + Duration::from_secs(90)));
    }

    #[test]
    fn uas_refresher_session_expires_without_refresh() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        p.handle(final_with(call, 200, Some("180;refresher=uas"), None), t0);
        // 180 - min(32, 60) = 148 s (RFC 4028 §10).
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(148)));
        // The peer's refresh (a re-INVITE) restarts the interval.
        let t1 = t0 + Duration::from_secs(100);
        p.handle(peer_reoffer(call, 1, false, None), t1);
        assert_eq!(p.next_deadline(), Some(t1 + Duration::from_secs(148)));
        let a = p.handle(Input::Tick, t1 + Duration::from_secs(148));
        assert!(a.contains(&Action::SendBye(call)));
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::Timeout,
                ..
            }]
        ));
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn no_session_expires_in_2xx_means_no_timer() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        p.handle(final_with(call, 200, None, None), t0);
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn incoming_session_timer_is_confirmed_in_200_and_runs_after_ack() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(4);
        p.handle(
            Input::Stack(StackEvent::Incoming(IncomingInvite {
                call,
                sip_call_id: "c".into(),
                from_user: "u".into(),
                from_display: None,
                from_uri: "sip:u@h".into(),
                to_user: "me".into(),
                remote_addr: "127.0.0.1:5080".parse().expect("addr"),
                sdp: Some("offer".into()),
                headers: vec![
                    ("Supported".into(), "timer".into()),
                    ("Session-Expires".into(), "600".into()),
                ],
                request_user: "me".into(),
                from_server: true,
            })),
            t0,
        );
        let a = p.handle(Input::Command(Command::Answer(call, "ans".into())), t0);
        assert_eq!(
            a,
            vec![
                Action::SessionTimerHeaders {
                    call,
                    secs: 600,
                    refresher: crate::session::Refresher::Uac,
                    require: true
                },
                Action::SendAnswer(call, "ans".into())
            ]
        );
        p.handle(
            Input::Stack(StackEvent::AckReceived { call, sdp: None }),
            t0,
        );
        // The caller refreshes; we give up at 600 - 32 s.
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(568)));
    }

    #[test]
    fn caller_without_timer_support_makes_us_the_refresher() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(4);
        p.handle(
            Input::Stack(StackEvent::Incoming(IncomingInvite {
                call,
                sip_call_id: "c".into(),
                from_user: "u".into(),
                from_display: None,
                from_uri: "sip:u@h".into(),
                to_user: "me".into(),
                remote_addr: "127.0.0.1:5080".parse().expect("addr"),
                sdp: Some("offer".into()),
                headers: vec![("x".into(), "300".into())],
                request_user: "me".into(),
                from_server: true,
            })),
            t0,
        );
        let a = p.handle(Input::Command(Command::Answer(call, "ans".into())), t0);
        assert!(a.contains(&Action::SessionTimerHeaders {
            call,
            secs: 300,
            refresher: crate::session::Refresher::Uas,
            require: false
        }));
        p.handle(
            Input::Stack(StackEvent::AckReceived { call, sdp: None }),
            t0,
        );
        let a = p.handle(Input::Tick, t0 + Duration::from_secs(150));
        assert!(matches!(
            a.as_slice(),
            [Action::SendReoffer { update: false, .. }]
        ));
    }

    #[test]
    fn interval_too_small_422_retries_once_with_min_se() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let call = CallKey(1);
        outgoing(&mut p, call, t0);
        let a = p.handle(final_with(call, 422, None, Some(3600)), t0);
        match a.as_slice() {
            [Action::SendInvite {
                call: c,
                call_id,
                session_expires: 3600,
                ..
            }] => {
                assert_eq!(*c, call);
                assert_eq!(call_id, "cid-1");
            }
            other => panic!("expected a new INVITE, got {other:?}"),
        }
        let a = p.handle(final_with(call, 422, None, Some(7200)), t0);
        assert!(matches!(
            events(&a).as_slice(),
            [SipEvent::Ended {
                reason: EndReason::Rejected,
                code: Some(422),
                ..
            }]
        ));
    }

    // ------------------------------------------ ghost-call protection (item 6)

    fn invite_for(call: CallKey, user: &str, from_server: bool) -> Input {
        Input::Stack(StackEvent::Incoming(IncomingInvite {
            call,
            sip_call_id: "g".into(),
            from_user: "scanner".into(),
            from_display: None,
            from_uri: "sip:100@203.0.113.9".into(),
            to_user: user.into(),
            remote_addr: "203.0.113.9:5060".parse().expect("addr"),
            sdp: Some("offer".into()),
            headers: vec![],
            request_user: user.into(),
            from_server,
        }))
    }

    #[test]
    fn scanner_invite_gets_403_even_peer_to_peer() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        let mut inv = invite_for(CallKey(4), "100", false);
        if let Input::Stack(StackEvent::Incoming(i)) = &mut inv {
            i.headers = vec![("User-Agent".into(), "friendly-scanner".into())];
        }
        let a = p.handle(inv, t0);
        assert_eq!(
            a,
            vec![
                Action::SendReject(CallKey(4), 403),
                Action::Forget(CallKey(4))
            ]
        );
    }

    #[test]
    fn ghost_invite_for_another_user_gets_404_without_ringing() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::SetAccount(acc())), t0);
        let a = p.handle(invite_for(CallKey(9), "100", true), t0);
        assert_eq!(
            a,
            vec![
                Action::SendReject(CallKey(9), 404),
                Action::Forget(CallKey(9))
            ]
        );
    }

    #[test]
    fn ghost_invite_not_from_registrar_gets_403_while_registered() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        registered(&mut p, t0, 600);
        let a = p.handle(invite_for(CallKey(9), "1001", false), t0);
        assert_eq!(
            a,
            vec![
                Action::SendReject(CallKey(9), 403),
                Action::Forget(CallKey(9))
            ]
        );
        // The same INVITE through the registrar rings.
        let a = p.handle(invite_for(CallKey(10), "1001", true), t0);
        assert!(matches!(events(&a).as_slice(), [SipEvent::Incoming { .. }]));
    }

    #[test]
    fn direct_calls_accepted_without_server_or_when_configured() {
        let t0 = Instant::now();
        // No account: peer-to-peer by default.
        let mut p = UaPolicy::new(Transport::Udp);
        let a = p.handle(invite_for(CallKey(1), "anyone", false), t0);
        assert!(matches!(events(&a).as_slice(), [SipEvent::Incoming { .. }]));
        // Registered, but direct calls explicitly allowed.
        let mut p = UaPolicy::new(Transport::Udp);
        registered(&mut p, t0, 600);
        p.handle(Input::Command(Command::AcceptDirect(Some(true))), t0);
        let a = p.handle(invite_for(CallKey(2), "someone", false), t0);
        assert!(matches!(events(&a).as_slice(), [SipEvent::Incoming { .. }]));
        // No server, but direct calls switched off: only our user.
        let mut p = UaPolicy::new(Transport::Udp);
        p.handle(Input::Command(Command::AcceptDirect(Some(false))), t0);
        p.handle(
            Input::Command(Command::SetAccount(AccountConfig {
                username: "alice".into(),
                ..Default::default()
            })),
            t0,
        );
        let a = p.handle(invite_for(CallKey(3), "bob", false), t0);
        assert_eq!(a[0], Action::SendReject(CallKey(3), 404));
        let a = p.handle(invite_for(CallKey(4), "alice", false), t0);
        assert!(matches!(events(&a).as_slice(), [SipEvent::Incoming { .. }]));
    }
}

#[cfg(test)]
#[path = "policy_netchange_tests.rs"]
mod netchange_tests;
