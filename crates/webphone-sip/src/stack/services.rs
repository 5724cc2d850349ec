//! The driver side of [`crate::messaging`]: MESSAGE (RFC 3428), INFO (RFC 6086), REFER
//! (RFC 3515) with Replaces (RFC 3891), SUBSCRIBE/NOTIFY (RFC 6665) and PUBLISH
//! (RFC 3903) on rsipstack.
//!
//! Out-of-dialog requests (MESSAGE, SUBSCRIBE, PUBLISH) and the in-dialog requests of our
//! subscriptions are built here and sent as plain client transactions, with the crate's
//! digest (401/407, RFC 3261 §22.2). The subscription dialog state (tags, remote target,
//! route set, CSeq; RFC 6665 §4.1.2, RFC 3261 §12.1.2) is kept here too, so NOTIFYs are
//! matched before rsipstack's dialog layer sees them. REFER and its NOTIFYs use the INVITE
//! dialog of the call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{
    Header, Method, Request, Response, SipMessage, StatusCode, StatusCodeKind, Uri,
};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::make_tag;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{
    digest_name, display_name, header_value, reason_text, reauthorized, response_challenges,
    sip_addr, sip_transport, Driver, ALLOW,
};
use crate::messaging::{self, Replaces, ServiceCommand, SubscriptionState};
use crate::target::{self, Target};
use crate::{CallKey, MessageKey, SipEvent, SubKey};

/// How long an unanswered non-INVITE transaction may take (64*T1, RFC 3261 §17.1.2.2).
const NON_INVITE_TIMEOUT: Duration = Duration::from_secs(32);
/// Lifetime of the implicit REFER subscription we announce (RFC 3515 §2.4.4).
const REFER_SUB_EXPIRES: u32 = 60;

/// What spawned jobs and call tasks report back to the driver.
#[derive(Debug)]
pub(super) enum ServiceEvent {
    MessageDone {
        key: MessageKey,
        code: u16,
        reason: String,
    },
    /// The REFER of `call` was refused, or a NOTIFY reported progress (sipfrag code).
    ReferProgress {
        call: CallKey,
        code: u16,
    },
    /// The REFER of `call` got a 2xx.
    ReferAccepted {
        call: CallKey,
    },
    /// The peer of `call` sent a REFER; its transaction waits in [`CallHooks::refers`].
    ReferIncoming {
        call: CallKey,
        target: String,
        replaces: Option<Replaces>,
        referred_by: Option<String>,
    },
    SubscribeDone {
        sub: SubKey,
        gen: u64,
        result: Result<Response, (u16, String)>,
    },
    RefreshDue {
        sub: SubKey,
        gen: u64,
    },
    PublishDone {
        gen: u64,
        result: Result<Response, (u16, String)>,
    },
    PublishRefreshDue {
        gen: u64,
    },
}

/// What a call task needs for REFER and NOTIFY in its INVITE dialog.
#[derive(Clone)]
pub(super) struct CallHooks {
    pub(super) tx: mpsc::UnboundedSender<ServiceEvent>,
    /// Server transactions of received REFERs waiting for accept/reject, by call.
    pub(super) refers: Arc<Mutex<HashMap<CallKey, TransactionHandle>>>,
}

impl CallHooks {
    /// A REFER in the dialog of `call` (RFC 3515 §2.4.2): hand it to the engine.
    pub(super) async fn on_refer(&self, call: CallKey, req: &Request, handle: TransactionHandle) {
        let Some(refer_to) = header_value(&req.headers, "Refer-To", "r") else {
            // RFC 3515 §2.4.1: exactly one Refer-To.
            let _ = handle.reply(StatusCode::BadRequest).await;
            return;
        };
        let busy = crate::lock(&self.refers).contains_key(&call);
        if busy {
            // One transfer at a time per call.
            let _ = handle.reply(StatusCode::RequestPending).await;
            return;
        }
        let (target, replaces) = messaging::parse_refer_to(&refer_to);
        crate::lock(&self.refers).insert(call, handle);
        let _ = self.tx.send(ServiceEvent::ReferIncoming {
            call,
            target,
            replaces,
            referred_by: header_value(&req.headers, "Referred-By", "b"),
        });
    }

    /// A NOTIFY in the dialog of `call`: `Event: refer` reports our REFER's progress
    /// (RFC 3515 §2.4.5). Answered 200 either way.
    pub(super) async fn on_notify(&self, call: CallKey, req: &Request, handle: TransactionHandle) {
        let event = header_value(&req.headers, "Event", "o").unwrap_or_default();
        if messaging::event_package(&event) == "refer" {
            let code = std::str::from_utf8(&req.body)
                .ok()
                .and_then(messaging::sipfrag_status);
            if let Some(code) = code {
                let _ = self.tx.send(ServiceEvent::ReferProgress { call, code });
            }
        }
        let _ = handle.reply(StatusCode::OK).await;
    }
}

/// One of our subscriptions (RFC 6665 §4.1): the dialog it lives in once established.
struct Sub {
    event: String,
    target: Target,
    expires: u32,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    /// Remote target (Contact of the 2xx or of a NOTIFY).
    remote_target: Option<String>,
    /// Route set (Record-Route of the dialog-creating message, RFC 3261 §12.1.2).
    route_set: Vec<String>,
    cseq: Arc<AtomicU32>,
    /// Generation of the outstanding SUBSCRIBE / refresh timer (stale reports are ignored).
    gen: u64,
    /// `unsubscribe()` was called.
    ending: bool,
    /// Renewals in a row since the last `active` NOTIFY (RFC 6665 §4.1.3 endings).
    renewals: u32,
}

/// Our presence publication (RFC 3903 §4).
#[derive(Default)]
struct Publication {
    etag: Option<String>,
    body: Option<String>,
    expires: u32,
    gen: u64,
    /// A PUBLISH is waiting for its answer; its `Expires`.
    in_flight: Option<u32>,
    /// Shutting down: a PUBLISH still to go out runs on a task the driver waits for.
    shutting_down: bool,
    /// Shutting down while a PUBLISH was out: the driver keeps running until its answer
    /// (and the removal it lets out) or this instant, whichever is first.
    unpublish_by: Option<std::time::Instant>,
    /// A change (new state or removal) asked while a PUBLISH was out: RFC 3903 §4.1 allows
    /// no new PUBLISH before the previous one's final answer, so it goes out after that
    /// answer, with the entity tag the answer gave (a removal asked while the first PUBLISH
    /// was out then removes by that tag, §4.5; a new state modifies it, §4.4, instead of
    /// leaving it orphaned on the server until it expires).
    queued: bool,
    call_id: String,
    cseq: Arc<AtomicU32>,
}

/// State of the services, owned by the driver.
pub(super) struct Services {
    tx: mpsc::UnboundedSender<ServiceEvent>,
    rx: Option<mpsc::UnboundedReceiver<ServiceEvent>>,
    pub(super) hooks: CallHooks,
    subs: HashMap<SubKey, Sub>,
    publication: Publication,
    next_gen: u64,
    /// Incoming calls whose INVITE replaces one of our calls (RFC 3891).
    replaces_of: HashMap<CallKey, CallKey>,
    /// Extra headers of outgoing INVITEs (Replaces of a transfer).
    invite_headers: HashMap<CallKey, Vec<(String, String)>>,
    /// Per Request-URI, the last MESSAGE sent there: the next MESSAGE to the same peer goes
    /// out after it ([`MESSAGE_ORDER_WAIT`]).
    message_turns: HashMap<String, (MessageKey, MessageTurn)>,
}

/// The signals of one MESSAGE that the next one to the same peer waits for.
struct MessageTurn {
    /// It went out (after its own wait for the one before it).
    started: oneshot::Receiver<()>,
    /// Its transaction ended (final answer, time-out or error).
    answered: oneshot::Receiver<()>,
}

/// How long a MESSAGE waits for the previous one to the same peer to be answered (counted
/// from when that one went out) before it goes out anyway. Each MESSAGE is a transaction of its own (RFC 3428 §4), so two sent
/// at once can arrive swapped (a chat text before the one typed first, an is-composing
/// `idle` before its `active`, RFC 3994, leaving the peer's "typing" shown); waiting for
/// the answer keeps them in order, and the bound (two UDP retransmissions, RFC 3261
/// §17.1.2.2) keeps a silent peer from holding every later message back for Timer F.
pub(super) const MESSAGE_ORDER_WAIT: Duration = Duration::from_secs(2);

/// At shutdown, how long the driver waits for the answer to a PUBLISH still out before the
/// removal of our presence can follow it (RFC 3903 §4.1, §4.5).
pub(super) const UNPUBLISH_WAIT: Duration = Duration::from_secs(3);

impl Services {
    pub(super) fn new() -> Services {
        let (tx, rx) = mpsc::unbounded_channel();
        Services {
            hooks: CallHooks {
                tx: tx.clone(),
                refers: Arc::default(),
            },
            tx,
            rx: Some(rx),
            subs: HashMap::new(),
            publication: Publication::default(),
            next_gen: 0,
            replaces_of: HashMap::new(),
            invite_headers: HashMap::new(),
            message_turns: HashMap::new(),
        }
    }

    /// The receiving end of the service events (taken once by the driver loop).
    pub(super) fn take_rx(&mut self) -> mpsc::UnboundedReceiver<ServiceEvent> {
        match self.rx.take() {
            Some(rx) => rx,
            None => mpsc::unbounded_channel().1,
        }
    }

    fn gen(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    /// Extra headers for the INVITE of `call`.
    pub(super) fn invite_headers(&self, call: CallKey) -> Vec<Header> {
        self.invite_headers
            .get(&call)
            .map(|hs| {
                hs.iter()
                    .map(|(n, v)| Header::Other(n.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn set_invite_headers(&mut self, call: CallKey, headers: Vec<(String, String)>) {
        self.invite_headers.insert(call, headers);
    }

    /// Fill in what the policy cannot know, and forget per-call state when a call ends.
    pub(super) fn on_emit(&mut self, ev: &mut SipEvent) {
        match ev {
            SipEvent::Incoming { call, replaces, .. } => {
                *replaces = self.replaces_of.remove(call);
            }
            SipEvent::Ended { call, .. } => {
                self.replaces_of.remove(call);
                self.invite_headers.remove(call);
                crate::lock(&self.hooks.refers).remove(call);
            }
            _ => {}
        }
    }

    pub(super) fn note_replaces(&mut self, new: CallKey, old: CallKey) {
        self.replaces_of.insert(new, old);
    }
}

/// Everything a request job needs, cloned out of the driver.
#[derive(Clone)]
struct ReqCtx {
    endpoint: Arc<rsipstack::transaction::endpoint::EndpointInner>,
    connector: super::Connector,
    local: std::net::SocketAddr,
    account: Option<crate::AccountConfig>,
    secret: Option<crate::digest::Secret>,
    cache: Arc<Mutex<crate::digest::DigestCache>>,
    /// RFC 3263 location of out-of-dialog next hops.
    dns: crate::locate::Dns,
    /// No transport configured: NAPTR/SRV choose it (RFC 3263 §4.1).
    transport_auto: bool,
}

/// One request to send (RFC 3261 §8.1.1).
struct ReqSpec {
    method: Method,
    request_uri: String,
    next_hop: Target,
    from_uri: String,
    from_display: Option<String>,
    from_tag: String,
    to_uri: String,
    to_tag: Option<String>,
    call_id: String,
    cseq: Arc<AtomicU32>,
    route_set: Vec<String>,
    contact: Option<String>,
    headers: Vec<Header>,
    body: Option<(String, Vec<u8>)>,
}

impl ReqCtx {
    /// Send `spec` and return its final response, answering digest challenges (RFC 3261
    /// §22.2, RFC 7616). Errors: (408, ..) nothing answered, (503, ..) transport failure,
    /// (0, ..) the request could not be built.
    ///
    /// An out-of-dialog request to a host name is located first (RFC 3263 §4, with NAPTR
    /// choosing the transport when none is configured, §4.1) and fails over to the next
    /// server on a timeout, a transport failure or a 503 (§4.3); the server that failed
    /// moves to the back of the cached list.
    async fn send(&self, spec: ReqSpec) -> Result<Response, (u16, String)> {
        let hop = &spec.next_hop;
        let plan = if spec.to_tag.is_none() {
            super::locate_plan(self.account.as_ref(), self.transport_auto, hop)
        } else {
            None
        };
        let located = match plan {
            Some(plan) => Some(plan.locate(&self.dns).await),
            None => None,
        };
        let Some((key, list)) = located.filter(|(_, l)| !l.is_empty()) else {
            let dest = sip_addr(&hop.next_hop, hop.transport);
            return self.send_to(&spec, dest, hop.transport).await;
        };
        let count = list.len();
        let mut last = Err((503, "no server address".to_string()));
        for (i, (a, t)) in list.into_iter().enumerate() {
            let more = i + 1 < count;
            let dest = super::located_dest(&self.dns, &hop.next_hop.host, a, t);
            let attempt = self.send_to(&spec, dest, t);
            let r = if more {
                tokio::time::timeout(super::FAILOVER_AFTER, attempt)
                    .await
                    .unwrap_or_else(|_| Err((408, format!("no response from {a}"))))
            } else {
                attempt.await
            };
            let failed = match &r {
                Err((code, _)) => matches!(code, 408 | 503),
                Ok(resp) => resp.status_code.code() == 503,
            };
            if failed {
                self.dns.failed(&key, (a, t));
                if more {
                    info!(method = %spec.method, server = %a, "request failed; trying the next server address");
                    last = r;
                    continue;
                }
            }
            return r;
        }
        last
    }

    /// [`ReqCtx::send`] to one destination over `transport`.
    async fn send_to(
        &self,
        spec: &ReqSpec,
        dest: SipAddr,
        transport: crate::Transport,
    ) -> Result<Response, (u16, String)> {
        let bad = |e: String| (0u16, e);
        if transport.is_reliable() {
            let conn = tokio::time::timeout(super::CONNECT_TIMEOUT, self.connector.connect(&dest))
                .await
                .map_err(|_| (503, format!("cannot reach {dest}: connect timeout")))?;
            conn.map_err(|e| (503, format!("cannot reach {dest}: {e}")))?;
        }
        let ruri = Uri::try_from(spec.request_uri.as_str()).map_err(|e| bad(e.to_string()))?;
        let from = rsipstack::sip::typed::From {
            display_name: spec.from_display.clone(),
            uri: Uri::try_from(spec.from_uri.as_str()).map_err(|e| bad(e.to_string()))?,
            params: vec![],
        }
        .with_tag(spec.from_tag.clone().into());
        let mut to = rsipstack::sip::typed::To {
            display_name: None,
            uri: Uri::try_from(spec.to_uri.as_str()).map_err(|e| bad(e.to_string()))?,
            params: vec![],
        };
        if let Some(tag) = &spec.to_tag {
            to = to.with_tag(tag.clone().into());
        }
        let via_addr = SipAddr {
            r#type: Some(sip_transport(transport)),
            addr: self.local.into(),
        };
        let via = self
            .endpoint
            .get_via(Some(via_addr), None)
            .map_err(|e| (503, e.to_string()))?;
        let seq = spec.cseq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut req = self.endpoint.make_request(
            spec.method,
            ruri,
            via,
            from,
            to,
            seq,
            Some(spec.call_id.clone().into()),
        );
        for r in &spec.route_set {
            req.headers.push(Header::Route(r.clone().into()));
        }
        if let Some(c) = &spec.contact {
            req.headers.push(Header::Contact(format!("<{c}>").into()));
        }
        for h in &spec.headers {
            req.headers.push(h.clone());
        }
        let body = match &spec.body {
            Some((ctype, body)) => {
                req.headers.push(Header::ContentType(ctype.clone().into()));
                body.clone()
            }
            None => Vec::new(),
        };
        req.headers
            .push(Header::ContentLength((body.len() as u32).into()));
        req.body = body.clone();

        let key = TransactionKey::from_request(&req, TransactionRole::Client)
            .map_err(|e| bad(e.to_string()))?;
        let mut tx = Transaction::new_client(key, req, self.endpoint.clone(), None);
        tx.destination = Some(dest);
        let method_name = spec.method.to_string();
        let ruri_text = super::uri_escapes::wire_request_uri(&tx.original.uri, transport);
        let auth_name = self.account.as_ref().map(digest_name).unwrap_or_default();
        let mut attempt = crate::digest::AuthAttempt::default();
        tx.send()
            .await
            .map_err(|e| (503, format!("transport error: {e}")))?;
        let deadline = tokio::time::Instant::now() + NON_INVITE_TIMEOUT + Duration::from_secs(1);
        loop {
            let msg = match tokio::time::timeout_at(deadline, tx.receive()).await {
                Ok(Some(m)) => m,
                Ok(None) | Err(_) => return Err((408, "no response".into())),
            };
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
            let (Some(acc), Some(secret), true) = (&self.account, &self.secret, challenged) else {
                return Ok(resp);
            };
            let user = crate::digest::AuthUser {
                username: &auth_name,
                secret,
                realm: acc.realm.as_deref(),
                strict_realm: false,
            };
            let parts = crate::digest::RequestParts {
                method: &method_name,
                uri: &ruri_text,
                body: &body,
            };
            let challenges = response_challenges(&resp);
            let verdict =
                crate::lock(&self.cache).on_challenge(&mut attempt, &challenges, &user, parts);
            let creds = match verdict {
                crate::digest::Verdict::Retry(c) => c,
                crate::digest::Verdict::Fail(why) => {
                    info!(method = %method_name, code = resp.status_code.code(), %why, "authentication failed");
                    return Ok(resp);
                }
            };
            let seq = spec.cseq.fetch_add(1, Ordering::Relaxed) + 1;
            tx = reauthorized(&tx, seq, &creds).map_err(bad)?;
            tx.send()
                .await
                .map_err(|e| (503, format!("transport error: {e}")))?;
        }
    }
}

/// The preloaded route of an out-of-dialog request: the outbound proxy (loose routing,
/// RFC 3261 §8.1.2), then the registrar's Service-Route (RFC 3608 §6.1).
fn preloaded_route(target: &Target, service_route: &Mutex<Vec<String>>) -> Vec<String> {
    let mut out = Vec::new();
    if target.via_proxy {
        let mut r = format!("<sip:{};lr", target.next_hop);
        if target.transport != crate::Transport::Udp {
            r.push_str(";transport=");
            r.push_str(target.transport.uri_param());
        }
        r.push('>');
        out.push(r);
    }
    out.extend(crate::lock(service_route).iter().cloned());
    out
}

/// The Record-Route values of `msg` in order (RFC 3261 §12.1.2 reverses them for a UAC).
fn record_routes(headers: &rsipstack::sip::Headers) -> Vec<String> {
    headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Record-Route"))
        .flat_map(|h| super::split_outside_quotes(h.value(), ','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The URI inside a Contact / Route value.
fn uri_of(value: &str) -> String {
    let v = value.trim();
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.split(';').next().unwrap_or(v).trim().to_string(),
    }
}

fn tag_of(headers: &rsipstack::sip::Headers, to: bool) -> Option<String> {
    let h = if to {
        headers
            .iter()
            .find(|h| matches!(h, Header::To(_)))
            .map(|h| h.value().to_string())
    } else {
        headers
            .iter()
            .find(|h| matches!(h, Header::From(_)))
            .map(|h| h.value().to_string())
    }?;
    super::split_outside_quotes(&h, ';')
        .into_iter()
        .skip(1)
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("tag")
                .then(|| v.trim().to_string())
        })
}

impl Driver {
    fn req_ctx(&self) -> ReqCtx {
        ReqCtx {
            endpoint: self.endpoint.clone(),
            connector: self.connector.clone(),
            local: self.local,
            account: self.account.clone(),
            secret: self.account.as_ref().map(|a| self.secret(a)),
            cache: self.digest.clone(),
            dns: self.dns.clone(),
            transport_auto: self.transport_auto,
        }
    }

    fn aor(&self, domain: &str) -> String {
        format!("sip:{}@{domain}", self.username())
    }

    fn caller_display(&self) -> Option<String> {
        self.account
            .as_ref()
            .and_then(|a| a.display_name.as_deref())
            .filter(|d| !d.is_empty())
            .map(display_name)
    }

    /// A command of [`crate::messaging`].
    pub(super) fn on_service_command(&mut self, cmd: ServiceCommand) {
        match cmd {
            ServiceCommand::Message {
                key,
                target,
                content_type,
                body,
            } => {
                let spec = ReqSpec {
                    method: Method::Message,
                    request_uri: target.request_uri.clone(),
                    from_uri: self.aor(&target.from_domain),
                    from_display: self.caller_display(),
                    from_tag: make_tag().to_string(),
                    to_uri: target.request_uri.clone(),
                    to_tag: None,
                    call_id: super::new_call_id(),
                    cseq: Arc::default(),
                    route_set: self.outbound_route(&target),
                    contact: None,
                    headers: vec![],
                    body: Some((content_type, body.into_bytes())),
                    next_hop: self.service_routed(target),
                };
                let ctx = self.req_ctx();
                let tx = self.services.tx.clone();
                let (started, started_rx) = oneshot::channel();
                let (answered, answered_rx) = oneshot::channel();
                let turn = MessageTurn {
                    started: started_rx,
                    answered: answered_rx,
                };
                let previous = self
                    .services
                    .message_turns
                    .insert(spec.request_uri.to_string(), (key, turn));
                tokio::spawn(async move {
                    if let Some((_, previous)) = previous {
                        // The wait for its answer starts when it went out: a burst is
                        // released one by one, never all at once when the first waits end.
                        let _ = previous.started.await;
                        let _ = tokio::time::timeout(MESSAGE_ORDER_WAIT, previous.answered).await;
                    }
                    let _ = started.send(());
                    let (code, reason) = match ctx.send(spec).await {
                        Ok(resp) => (resp.status_code.code(), reason_text(&resp)),
                        Err(e) => e,
                    };
                    let _ = answered.send(());
                    let _ = tx.send(ServiceEvent::MessageDone { key, code, reason });
                });
            }
            ServiceCommand::Info {
                call,
                content_type,
                body,
            } => {
                let Some(e) = self.calls.get(&call) else {
                    debug!(%call, "INFO for an unknown call");
                    return;
                };
                let d = e.dialog.clone();
                tokio::spawn(async move {
                    let headers = vec![Header::ContentType(content_type.into())];
                    match d.info(Some(headers), Some(body.into_bytes())).await {
                        Ok(Some(r)) if r.status_code.kind() == StatusCodeKind::Successful => {}
                        Ok(Some(r)) => info!(%call, code = r.status_code.code(), "INFO refused"),
                        Ok(None) => info!(%call, "INFO outside a confirmed dialog not sent"),
                        Err(e) => info!(%call, error = %e, "INFO failed"),
                    }
                });
            }
            ServiceCommand::Refer { call, refer_to } => self.send_refer(call, refer_to),
            ServiceCommand::ReferWithReplaces { call, other } => {
                let Some(o) = self.calls.get(&other) else {
                    self.emit(SipEvent::ReferStatus { call, code: 481 });
                    return;
                };
                let snap = o.dialog.snapshot();
                let uri = snap
                    .remote_contact
                    .as_ref()
                    .and_then(|c| rsipstack::sip::typed::Contact::parse(c.value()).ok())
                    .map(|c| c.uri.to_string())
                    .unwrap_or_else(|| snap.remote_uri.to_string());
                // Tags from the point of view of the peer of `other`, who receives the
                // INVITE with Replaces (RFC 3891 §3): its tag is our remote tag.
                let r = Replaces {
                    call_id: snap.id.call_id.clone(),
                    to_tag: snap.id.remote_tag.clone(),
                    from_tag: snap.id.local_tag.clone(),
                    early_only: false,
                };
                let refer_to = messaging::refer_to_with_replaces(&uri, &r);
                self.send_refer(call, refer_to);
            }
            ServiceCommand::AcceptRefer(call) => self.answer_refer(call, 202),
            ServiceCommand::RejectRefer(call, code) => self.answer_refer(call, code),
            ServiceCommand::NotifyRefer(call, code) => self.notify_refer(call, code),
            ServiceCommand::InviteHeaders { call, headers } => {
                self.services.set_invite_headers(call, headers)
            }
            ServiceCommand::Subscribe {
                sub,
                target,
                event,
                expires,
            } => {
                let gen = self.services.gen();
                let s = Sub {
                    event,
                    target,
                    expires,
                    call_id: super::new_call_id(),
                    from_tag: make_tag().to_string(),
                    to_tag: None,
                    remote_target: None,
                    route_set: vec![],
                    cseq: Arc::default(),
                    gen,
                    ending: false,
                    renewals: 0,
                };
                self.services.subs.insert(sub, s);
                self.send_subscribe(sub, expires);
            }
            ServiceCommand::Unsubscribe(sub) => {
                let Some(s) = self.services.subs.get_mut(&sub) else {
                    return;
                };
                s.ending = true;
                if s.to_tag.is_some() {
                    self.send_subscribe(sub, 0);
                } else if s.renewals > 0 {
                    // Waiting to renew an ended subscription: nothing is out, forget it now.
                    self.services.subs.remove(&sub);
                }
                // Without a dialog yet, the answer to the SUBSCRIBE triggers the un-SUBSCRIBE.
            }
            ServiceCommand::Publish { body, expires } => {
                let p = &mut self.services.publication;
                if body.is_some() {
                    p.body = body;
                }
                p.expires = expires;
                if p.in_flight.is_some() {
                    p.queued = true;
                    return;
                }
                // RFC 3903 §4.5 removes by entity tag: without one nothing is published.
                if expires > 0 || p.etag.is_some() {
                    self.send_publish(true);
                }
            }
        }
    }

    /// The outbound-proxy Route of an out-of-dialog request (RFC 3261 §8.1.2).
    fn outbound_route(&self, target: &Target) -> Vec<String> {
        preloaded_route(target, &self.service_route)
    }

    /// Where an out-of-dialog request other than REGISTER goes: the outbound proxy, else
    /// the first Service-Route URI of the last registration (RFC 3608 §6.1), else the
    /// target's own next hop.
    pub(super) fn service_routed(&self, target: Target) -> Target {
        let first = crate::lock(&self.service_route).first().cloned();
        match first {
            Some(r) => target.through_route(&r),
            None => target,
        }
    }

    fn send_refer(&mut self, call: CallKey, refer_to: String) {
        let Some(e) = self.calls.get(&call) else {
            self.emit(SipEvent::ReferStatus { call, code: 481 });
            return;
        };
        let d = e.dialog.clone();
        let referred_by = format!("<{}>", self.aor(&self.local.to_string()));
        let referred_by = match self.account.as_ref().and_then(|a| a.server.clone()) {
            Some(_) => {
                let domain = self
                    .account
                    .as_ref()
                    .and_then(|a| a.server.as_deref())
                    .and_then(|s| target::parse_server(s).ok())
                    .map(|s| s.domain())
                    .unwrap_or_else(|| self.local.to_string());
                format!("<{}>", self.aor(&domain))
            }
            None => referred_by,
        };
        let tx = self.services.tx.clone();
        info!(%call, %refer_to, "sending REFER");
        tokio::spawn(async move {
            let headers = vec![Header::Other("Referred-By".into(), referred_by)];
            let code = match d.refer(refer_to, Some(headers), None).await {
                Ok(Some(resp)) => resp.status_code.code(),
                Ok(None) => 481,
                Err(e) => {
                    info!(%call, error = %e, "REFER failed");
                    503
                }
            };
            if code >= 300 {
                let _ = tx.send(ServiceEvent::ReferProgress { call, code });
            } else if code >= 200 {
                let _ = tx.send(ServiceEvent::ReferAccepted { call });
            }
        });
    }

    /// Answer the pending REFER of `call` (202 accepts: then NOTIFY 100 Trying).
    fn answer_refer(&mut self, call: CallKey, code: u16) {
        let Some(handle) = crate::lock(&self.services.hooks.refers).remove(&call) else {
            debug!(%call, "no REFER waiting for an answer");
            return;
        };
        let entry = self
            .calls
            .get(&call)
            .map(|e| (e.dialog.clone(), e.refer_notifies.clone()));
        // The reports that follow belong to this REFER (counted here, on the SIP task, before
        // any of them can be sent).
        let report = match (&entry, code) {
            (Some((_, n)), 202) => Some(n.accepted()),
            _ => None,
        };
        tokio::spawn(async move {
            if let Err(e) = handle.reply(StatusCode::from(code)).await {
                debug!(%call, error = %e, "REFER response failed");
                return;
            }
            if let (Some((d, notifies)), Some(refer)) = (entry, report) {
                send_refer_notify(&d, &notifies, refer, call, 100).await;
            }
        });
    }

    fn notify_refer(&mut self, call: CallKey, code: u16) {
        let Some(e) = self.calls.get(&call) else {
            debug!(%call, "notify_refer for an unknown call");
            return;
        };
        let (d, notifies) = (e.dialog.clone(), e.refer_notifies.clone());
        let refer = notifies.current();
        tokio::spawn(async move { send_refer_notify(&d, &notifies, refer, call, code).await });
    }

    /// Send SUBSCRIBE for `sub` (initial when no dialog yet, else in-dialog refresh or
    /// removal with `expires` 0; RFC 6665 §4.1.2).
    fn send_subscribe(&mut self, sub: SubKey, expires: u32) {
        let gen = self.services.gen();
        let from_display = self.caller_display();
        let Some(s) = self.services.subs.get_mut(&sub) else {
            return;
        };
        s.gen = gen;
        let (request_uri, next_hop, route_set) = match (&s.to_tag, &s.remote_target) {
            (Some(_), Some(rt)) => {
                // In-dialog: to the remote target through the route set (RFC 3261 §12.2.1.1).
                let first = s.route_set.first().map(|r| uri_of(r)).unwrap_or(rt.clone());
                let hop = target::resolve(
                    &first,
                    self.account.as_ref(),
                    self.local.ip(),
                    self.transport,
                )
                .unwrap_or_else(|_| s.target.clone());
                (rt.clone(), hop, s.route_set.clone())
            }
            _ => {
                let route = preloaded_route(&s.target, &self.service_route);
                let hop = match route.get(usize::from(s.target.via_proxy)) {
                    Some(first_service_route) => {
                        s.target.clone().through_route(first_service_route)
                    }
                    None => s.target.clone(),
                };
                (s.target.request_uri.clone(), hop, route)
            }
        };
        let mut headers = vec![
            Header::Event(s.event.clone().into()),
            Header::Expires(expires.into()),
            Header::Allow(ALLOW.into()),
        ];
        if let Some(a) = messaging::accept_for_event(&s.event) {
            headers.push(Header::Accept(a.into()));
        }
        let user = self
            .account
            .as_ref()
            .map(|a| a.username.clone())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| super::ANONYMOUS_USER.to_string());
        let spec = ReqSpec {
            method: Method::Subscribe,
            request_uri,
            from_uri: format!("sip:{user}@{}", s.target.from_domain),
            from_display,
            from_tag: s.from_tag.clone(),
            to_uri: s.target.request_uri.clone(),
            to_tag: s.to_tag.clone(),
            call_id: s.call_id.clone(),
            cseq: s.cseq.clone(),
            route_set,
            contact: Some(self.contact_uri(&user)),
            headers,
            body: None,
            next_hop,
        };
        let ctx = self.req_ctx();
        let tx = self.services.tx.clone();
        tokio::spawn(async move {
            let result = ctx.send(spec).await;
            let _ = tx.send(ServiceEvent::SubscribeDone { sub, gen, result });
        });
    }

    fn schedule(&self, after: Duration, ev: ServiceEvent) {
        let tx = self.services.tx.clone();
        let token = self.token.child_token();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(after) => { let _ = tx.send(ev); }
                _ = token.cancelled() => {}
            }
        });
    }

    fn send_publish(&mut self, with_body: bool) {
        if let Some(job) = self.publish_job(with_body) {
            if self.services.publication.shutting_down {
                self.tasks.spawn(job);
            } else {
                tokio::spawn(job);
            }
        }
    }

    /// At shutdown: a presence we published and still refresh is removed (PUBLISH with
    /// `Expires: 0`, RFC 3903 §4.5) on a task the driver waits for with the BYEs, so watchers
    /// do not see us online until the publication expires. Nothing when none is up.
    ///
    /// A PUBLISH still unanswered (the first one, whose tag is not known yet, or a change)
    /// is not overtaken (RFC 3903 §4.1): the removal is queued behind it, and the driver
    /// keeps running for at most [`UNPUBLISH_WAIT`] so that its answer can let it out.
    pub(super) fn unpublish_on_shutdown(&mut self, now: std::time::Instant) {
        let p = &mut self.services.publication;
        p.shutting_down = true;
        if p.in_flight.is_some() {
            p.expires = 0;
            p.queued = true;
            p.unpublish_by = Some(now + UNPUBLISH_WAIT);
            return;
        }
        if p.etag.is_none() {
            return;
        }
        p.expires = 0;
        if let Some(job) = self.publish_job(false) {
            self.tasks.spawn(job);
        }
    }

    /// While shutting down: until when the driver keeps running for a PUBLISH still out or
    /// queued ([`Self::unpublish_on_shutdown`]); `None` when nothing is waited for.
    pub(super) fn unpublish_wait(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        let p = &self.services.publication;
        let busy = p.in_flight.is_some() || p.queued;
        p.unpublish_by.filter(|&by| busy && now < by)
    }

    /// The PUBLISH of [`Self::send_publish`], as a job to run; `None` when it cannot go out
    /// (no account, no target: reported as a [`SipEvent::PublishStatus`]).
    fn publish_job(
        &mut self,
        with_body: bool,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let gen = self.services.gen();
        let Some(acc) = self.account.clone() else {
            self.emit(SipEvent::PublishStatus {
                code: 0,
                reason: "no account".into(),
            });
            return None;
        };
        let target =
            match target::resolve(&acc.username, Some(&acc), self.local.ip(), self.transport) {
                Ok(t) => t,
                Err(e) => {
                    self.emit(SipEvent::PublishStatus {
                        code: 0,
                        reason: e.to_string(),
                    });
                    return None;
                }
            };
        let route_set = self.outbound_route(&target);
        let from_display = self.caller_display();
        let from_uri = self.aor(&target.from_domain);
        let target = self.service_routed(target);
        let p = &mut self.services.publication;
        p.gen = gen;
        p.in_flight = Some(p.expires);
        if p.call_id.is_empty() {
            p.call_id = super::new_call_id();
        }
        let mut headers = vec![
            Header::Event("presence".into()),
            Header::Expires(p.expires.into()),
        ];
        if let Some(etag) = &p.etag {
            headers.push(Header::Other("SIP-If-Match".into(), etag.clone()));
        }
        // RFC 3903 §4.1-4.4: a refresh or removal has no body; a modification has one.
        let body = match (&p.body, with_body && p.expires > 0) {
            (Some(b), true) => Some(("application/pidf+xml".to_string(), b.clone().into_bytes())),
            _ => None,
        };
        let spec = ReqSpec {
            method: Method::Publish,
            request_uri: target.request_uri.clone(),
            from_uri: from_uri.clone(),
            from_display,
            from_tag: make_tag().to_string(),
            to_uri: from_uri,
            to_tag: None,
            call_id: p.call_id.clone(),
            cseq: p.cseq.clone(),
            route_set,
            contact: None,
            headers,
            body,
            next_hop: target,
        };
        let ctx = self.req_ctx();
        let tx = self.services.tx.clone();
        Some(async move {
            let result = ctx.send(spec).await;
            let _ = tx.send(ServiceEvent::PublishDone { gen, result });
        })
    }

    /// A report of a job or call task.
    pub(super) fn on_service_event(&mut self, ev: ServiceEvent) {
        match ev {
            ServiceEvent::MessageDone { key, code, reason } => {
                // The last MESSAGE to its peer is answered: nothing waits on it.
                self.services.message_turns.retain(|_, (k, _)| *k != key);
                self.emit(SipEvent::MessageStatus { key, code, reason })
            }
            ServiceEvent::ReferProgress { call, code } => {
                if self.calls.contains_key(&call) {
                    self.emit(SipEvent::ReferStatus { call, code });
                }
            }
            ServiceEvent::ReferAccepted { call } => {
                if self.calls.contains_key(&call) {
                    self.emit(SipEvent::ReferAccepted { call });
                }
            }
            ServiceEvent::ReferIncoming {
                call,
                target,
                replaces,
                referred_by,
            } => self.emit(SipEvent::Refer {
                call,
                target,
                replaces,
                referred_by,
            }),
            ServiceEvent::SubscribeDone { sub, gen, result } => {
                self.on_subscribe_done(sub, gen, result)
            }
            ServiceEvent::RefreshDue { sub, gen } => {
                let Some(s) = self.services.subs.get(&sub) else {
                    return;
                };
                if s.gen != gen {
                    return;
                }
                if s.ending {
                    // The final NOTIFY never came: forget the subscription.
                    self.services.subs.remove(&sub);
                    return;
                }
                let expires = s.expires;
                self.send_subscribe(sub, expires);
            }
            ServiceEvent::PublishDone { gen, result } => {
                if self.services.publication.gen != gen {
                    return;
                }
                self.on_publish_done(gen, result);
                // RFC 3903 §4.1: what was asked meanwhile goes out now, with the new tag.
                let p = &mut self.services.publication;
                if p.in_flight.is_none() && std::mem::take(&mut p.queued) {
                    if p.expires > 0 || p.etag.is_some() {
                        self.send_publish(true);
                    } else {
                        p.body = None;
                    }
                }
            }
            ServiceEvent::PublishRefreshDue { gen } => {
                if self.services.publication.gen == gen {
                    self.send_publish(false);
                }
            }
        }
    }

    /// The answer to our PUBLISH (RFC 3903 §4): keep the entity tag and schedule the
    /// refresh; a 412 to a modification publishes afresh (§4.4), to a removal nothing.
    fn on_publish_done(&mut self, gen: u64, result: Result<Response, (u16, String)>) {
        let p = &mut self.services.publication;
        let sent_expires = p.in_flight.take().unwrap_or(p.expires);
        let (code, reason) = match result {
            Ok(resp) => {
                let code = resp.status_code.code();
                if (200..300).contains(&code) {
                    if sent_expires == 0 {
                        p.etag = None;
                        if !p.queued {
                            p.body = None;
                        }
                    } else {
                        p.etag = header_value(&resp.headers, "SIP-ETag", "SIP-ETag");
                        // Also with a change queued: if that one cannot go out, this
                        // publication is still refreshed (a PUBLISH that goes out changes
                        // `gen`, and this timer then does nothing).
                        let granted = resp
                            .expires_header()
                            .and_then(|h| h.value().trim().parse().ok())
                            .unwrap_or(sent_expires);
                        self.schedule(
                            messaging::refresh_after(granted),
                            ServiceEvent::PublishRefreshDue { gen },
                        );
                    }
                } else if code == 412 && p.etag.is_some() {
                    p.etag = None;
                    if sent_expires == 0 {
                        // A removal whose entity tag the server no longer knows: the
                        // publication is gone already (§4.5); nothing to resend.
                        debug!("PUBLISH removal: 412, the publication had expired");
                        if !p.queued {
                            p.body = None;
                        }
                    } else if !p.queued {
                        // §4.4: the entity tag is unknown; publish afresh.
                        self.send_publish(true);
                    }
                    return;
                }
                (code, reason_text(&resp))
            }
            Err(e) => e,
        };
        self.emit(SipEvent::PublishStatus { code, reason });
    }

    fn on_subscribe_done(
        &mut self,
        sub: SubKey,
        gen: u64,
        result: Result<Response, (u16, String)>,
    ) {
        let Some(s) = self.services.subs.get_mut(&sub) else {
            return;
        };
        if s.gen != gen {
            return;
        }
        let resp = match result {
            Ok(r) => r,
            Err((code, reason)) => {
                info!(%sub, code, %reason, "SUBSCRIBE failed");
                self.services.subs.remove(&sub);
                self.emit(SipEvent::SubscriptionFailed { sub, code });
                return;
            }
        };
        let code = resp.status_code.code();
        if !(200..300).contains(&code) {
            if code == 423 {
                // RFC 6665 §4.1.2.1 / RFC 3261 §10.2.8: ask again for at least Min-Expires.
                let min = resp
                    .min_expires_header()
                    .and_then(|h| h.value().trim().parse::<u32>().ok());
                if let Some(min) = min.filter(|m| *m > s.expires) {
                    s.expires = min;
                    let ending = s.ending;
                    self.send_subscribe(sub, if ending { 0 } else { min });
                    return;
                }
            }
            info!(%sub, code, "SUBSCRIBE refused");
            let was_ending = s.ending;
            self.services.subs.remove(&sub);
            if !was_ending {
                self.emit(SipEvent::SubscriptionFailed { sub, code });
            }
            return;
        }
        if s.to_tag.is_none() {
            s.to_tag = tag_of(&resp.headers, true);
            let mut rr = record_routes(&resp.headers);
            rr.reverse();
            s.route_set = rr;
        }
        if let Some(c) = header_value(&resp.headers, "Contact", "m") {
            s.remote_target = Some(uri_of(&c));
        }
        if s.ending {
            let requested_end = resp
                .expires_header()
                .and_then(|h| h.value().trim().parse::<u32>().ok())
                == Some(0);
            if !requested_end {
                // Unsubscribed before the dialog existed: end it now.
                self.send_subscribe(sub, 0);
                return;
            }
            // Wait a while for the final NOTIFY, then forget the subscription.
            let gen = s.gen;
            self.schedule(NON_INVITE_TIMEOUT, ServiceEvent::RefreshDue { sub, gen });
            return;
        }
        // RFC 6665 §4.1.2.1: the 2xx Expires is the granted duration.
        let granted = resp
            .expires_header()
            .and_then(|h| h.value().trim().parse::<u32>().ok())
            .unwrap_or(s.expires);
        let gen = s.gen;
        self.schedule(
            messaging::refresh_after(granted),
            ServiceEvent::RefreshDue { sub, gen },
        );
    }

    /// Requests handled here before the call logic: MESSAGE outside a dialog, NOTIFY for
    /// our subscriptions or unsolicited. Returns the transaction when it is not ours.
    pub(super) fn service_request(&mut self, tx: Transaction) -> Option<Transaction> {
        let req = &tx.original;
        let to_tag = tag_of(&req.headers, true);
        match req.method {
            Method::Message if to_tag.is_none() => {
                self.on_message(tx);
                None
            }
            Method::Notify => {
                let call_id = req
                    .call_id_header()
                    .map(|c| c.value().to_string())
                    .unwrap_or_default();
                let sub = self.services.subs.iter().find_map(|(k, s)| {
                    (s.call_id == call_id && to_tag.as_deref() == Some(s.from_tag.as_str()))
                        .then_some(*k)
                });
                if let Some(sub) = sub {
                    self.on_sub_notify(sub, tx);
                    return None;
                }
                let event = header_value(&req.headers, "Event", "o").unwrap_or_default();
                let unsolicited = to_tag.is_none()
                    || (messaging::event_package(&event) == "message-summary"
                        && self.layer.match_dialog(&tx).is_none());
                if unsolicited {
                    self.on_unsolicited_notify(tx);
                    return None;
                }
                Some(tx)
            }
            _ => Some(tx),
        }
    }

    fn on_message(&mut self, mut tx: Transaction) {
        let req = &tx.original;
        let ctype = header_value(&req.headers, "Content-Type", "c").unwrap_or_default();
        if !messaging::message_type_accepted(&ctype) {
            // RFC 3428 §7 / RFC 3261 §21.4.13.
            tokio::spawn(async move {
                let headers = vec![Header::Accept(messaging::MESSAGE_TYPES.join(", ").into())];
                let _ = tx
                    .reply_with(StatusCode::UnsupportedMediaType, headers, None)
                    .await;
            });
            return;
        }
        let Ok((from_user, from_display, from_uri)) = super::caller_of(req) else {
            tokio::spawn(async move {
                let _ = tx.reply(StatusCode::BadRequest).await;
            });
            return;
        };
        let ev = SipEvent::MessageReceived {
            from_user,
            from_display,
            from_uri,
            content_type: ctype,
            body: String::from_utf8_lossy(&req.body).into_owned(),
        };
        tokio::spawn(async move {
            if let Err(e) = tx.reply(StatusCode::OK).await {
                debug!(error = %e, "MESSAGE reply failed");
            }
        });
        self.emit(ev);
    }

    fn notify_parts(req: &Request) -> (String, SubscriptionState, Option<String>, String) {
        let event = header_value(&req.headers, "Event", "o").unwrap_or_default();
        let state = header_value(&req.headers, "Subscription-State", "Subscription-State")
            .map(|v| messaging::parse_subscription_state(&v))
            .unwrap_or(SubscriptionState::Active { expires: None });
        let ctype = header_value(&req.headers, "Content-Type", "c");
        let body = String::from_utf8_lossy(&req.body).into_owned();
        (messaging::event_package(&event), state, ctype, body)
    }

    fn on_unsolicited_notify(&mut self, mut tx: Transaction) {
        let (event, state, content_type, body) = Self::notify_parts(&tx.original);
        tokio::spawn(async move {
            let _ = tx.reply(StatusCode::OK).await;
        });
        self.emit(SipEvent::Notify {
            sub: None,
            event,
            state,
            content_type,
            body,
        });
    }

    fn on_sub_notify(&mut self, sub: SubKey, mut tx: Transaction) {
        let (event, state, content_type, body) = Self::notify_parts(&tx.original);
        let req = &tx.original;
        let Some(s) = self.services.subs.get_mut(&sub) else {
            return;
        };
        // RFC 6665 §4.1.2.4: a NOTIFY may create the dialog before the 2xx arrives.
        if s.to_tag.is_none() {
            s.to_tag = tag_of(&req.headers, false);
            s.route_set = record_routes(&req.headers);
        }
        if let Some(c) = header_value(&req.headers, "Contact", "m") {
            s.remote_target = Some(uri_of(&c));
        }
        tokio::spawn(async move {
            if let Err(e) = tx.reply(StatusCode::OK).await {
                warn!(error = %e, "NOTIFY reply failed");
            }
        });
        if matches!(state, SubscriptionState::Active { .. }) {
            s.renewals = 0;
        }
        let mut state = state;
        match &state {
            SubscriptionState::Terminated {
                reason,
                retry_after,
            } => match messaging::resubscribe_after(reason.as_deref(), *retry_after)
                .filter(|_| !s.ending && s.renewals < messaging::MAX_RENEWALS)
            {
                Some(after) => {
                    let after = after.max(messaging::renewal_backoff(s.renewals));
                    s.renewals += 1;
                    // RFC 6665 §4.1.3: the notifier ended it but invites a new one: a new
                    // subscription (a new dialog) under the same key, so the watch goes on.
                    s.call_id = super::new_call_id();
                    s.from_tag = make_tag().to_string();
                    s.to_tag = None;
                    s.remote_target = None;
                    s.route_set.clear();
                    s.cseq = Arc::default();
                    let gen = self.services.next_gen + 1;
                    self.services.next_gen = gen;
                    if let Some(s) = self.services.subs.get_mut(&sub) {
                        s.gen = gen;
                    }
                    info!(%sub, ?after, "subscription ended by the notifier: subscribing again");
                    self.schedule(after, ServiceEvent::RefreshDue { sub, gen });
                    // Not over for the application: pending again until the new one answers.
                    if body.trim().is_empty() {
                        return;
                    }
                    state = SubscriptionState::Pending { expires: None };
                }
                None => {
                    self.services.subs.remove(&sub);
                }
            },
            // The notifier may shorten the subscription (RFC 6665 §4.2.2).
            SubscriptionState::Active { expires: Some(e) }
            | SubscriptionState::Pending { expires: Some(e) }
                if !s.ending && *e < s.expires =>
            {
                let gen = self.services.next_gen + 1;
                self.services.next_gen = gen;
                if let Some(s) = self.services.subs.get_mut(&sub) {
                    s.gen = gen;
                }
                self.schedule(
                    messaging::refresh_after(*e),
                    ServiceEvent::RefreshDue { sub, gen },
                );
            }
            _ => {}
        }
        self.emit(SipEvent::Notify {
            sub: Some(sub),
            event,
            state,
            content_type,
            body,
        });
    }

    /// RFC 3891 §3: an INVITE with `Replaces` must match one of our dialogs (confirmed, or
    /// early when `early-only`), else 481. `Ok(None)`: no Replaces.
    pub(super) fn check_replaces(&self, req: &Request) -> Result<Option<CallKey>, ()> {
        let Some(v) = header_value(&req.headers, "Replaces", "Replaces") else {
            return Ok(None);
        };
        let Some(r) = Replaces::parse(&v) else {
            return Err(());
        };
        self.calls
            .iter()
            .find(|(_, e)| {
                let id = e.dialog.id();
                id.call_id == r.call_id && id.local_tag == r.to_tag && id.remote_tag == r.from_tag
            })
            .map(|(k, _)| Some(*k))
            .ok_or(())
    }
}

/// NOTIFY with the sipfrag of `code` in the implicit REFER subscription of `d`
/// (RFC 3515 §2.4.4-2.4.5): `active` while provisional, `terminated;reason=noresource` at
/// the end.
/// The NOTIFYs (RFC 3515 §2.4.4) that report on the REFERs accepted in one dialog. They go
/// out one at a time, each after the previous one got its final response (RFC 6665 §4.2.2),
/// so their CSeq order is their sending order; the peer refuses a NOTIFY with a lower CSeq
/// than one it already took (RFC 3261 §12.2.2, 500). Once the final report of a REFER went
/// out, a late progress report (`100 Trying` queued behind it) is dropped.
#[derive(Default)]
pub(super) struct ReferNotifies {
    sending: tokio::sync::Mutex<()>,
    /// The REFER being reported on (counts accepted REFERs) and whether its final report
    /// went out.
    state: Mutex<(u64, bool)>,
}

impl ReferNotifies {
    /// A REFER was accepted: reports from now on belong to it.
    pub(super) fn accepted(&self) -> u64 {
        let mut s = crate::lock(&self.state);
        *s = (s.0 + 1, false);
        s.0
    }

    /// The REFER reports are about now.
    pub(super) fn current(&self) -> u64 {
        crate::lock(&self.state).0
    }

    /// Whether report `code` on REFER `refer` is still worth sending (and marks a final one).
    fn claim(&self, refer: u64, code: u16) -> bool {
        let mut s = crate::lock(&self.state);
        if s.0 != refer || s.1 {
            return false;
        }
        if code >= 200 {
            s.1 = true;
        }
        true
    }
}

async fn send_refer_notify(
    d: &rsipstack::dialog::invite_dialog::InviteDialog,
    notifies: &ReferNotifies,
    refer: u64,
    call: CallKey,
    code: u16,
) {
    let _one_at_a_time = notifies.sending.lock().await;
    if !notifies.claim(refer, code) {
        debug!(%call, code, "REFER NOTIFY dropped: the final report already went");
        return;
    }
    let state = if code < 200 {
        format!("active;expires={REFER_SUB_EXPIRES}")
    } else {
        "terminated;reason=noresource".to_string()
    };
    let headers = vec![
        Header::Event("refer".into()),
        Header::SubscriptionState(state.into()),
        Header::ContentType("message/sipfrag;version=2.0".into()),
    ];
    let body = messaging::sipfrag_body(code).into_bytes();
    match d.notify(Some(headers), Some(body)).await {
        Ok(Some(r)) if r.status_code.kind() == StatusCodeKind::Successful => {}
        Ok(Some(r)) => debug!(%call, code = r.status_code.code(), "REFER NOTIFY refused"),
        Ok(None) => debug!(%call, "REFER NOTIFY: dialog not confirmed"),
        Err(e) => debug!(%call, error = %e, "REFER NOTIFY failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::HostPort;

    #[test]
    fn trying_queued_behind_the_final_refer_report_is_dropped() {
        let n = ReferNotifies::default();
        let first = n.accepted();
        // The callee answered before the 100 Trying task got its turn: 200 goes first.
        assert!(n.claim(first, 200));
        assert!(!n.claim(first, 100));
        assert!(!n.claim(first, 503));
        // A second REFER in the same dialog reports afresh; the first one's stragglers do not.
        let second = n.accepted();
        assert!(!n.claim(first, 100));
        assert!(n.claim(second, 100));
        assert!(n.claim(second, 486));
        assert!(!n.claim(second, 200));
    }

    fn proxied(transport: crate::Transport) -> Target {
        Target {
            request_uri: "sip:1002@example.com".into(),
            next_hop: HostPort::new("proxy.example.com", 443),
            via_proxy: true,
            from_domain: "example.com".into(),
            transport,
        }
    }

    #[test]
    fn outbound_proxy_route_over_wss_says_transport_ws() {
        let none = Mutex::new(Vec::new());
        assert_eq!(
            preloaded_route(&proxied(crate::Transport::Wss), &none),
            ["<sip:proxy.example.com:443;lr;transport=ws>"]
        );
        assert_eq!(
            preloaded_route(&proxied(crate::Transport::Tls), &none),
            ["<sip:proxy.example.com:443;lr;transport=tls>"]
        );
    }

    #[test]
    fn outbound_proxy_route_comes_before_the_service_route() {
        let sr = Mutex::new(vec!["<sip:scscf.example.com;lr>".to_string()]);
        assert_eq!(
            preloaded_route(&proxied(crate::Transport::Udp), &sr),
            [
                "<sip:proxy.example.com:443;lr>",
                "<sip:scscf.example.com;lr>"
            ]
        );
    }
}
