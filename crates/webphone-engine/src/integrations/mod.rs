//! HTTP integrations: the `scurl_*` action URLs, `scurl_setparameters` provisioning,
//! `scurl_displaypeerdetails`, `creditrequest`/`ratingrequest` (as `CREDIT`/`RATING`), the `sms`
//! HTTP API, recording upload (`voicerecupload` /
//! `voicerecord` with an `http(s)://` destination) and log upload (`logform_action`).
//!
//! Every request runs on its own tokio task with a 5 s connect and 10 s total time-out
//! ([`CONNECT_TIMEOUT`], [`TOTAL_TIMEOUT`]), so a slow or dead server never holds up a call;
//! the only request the engine waits for is `scurl_setparameters`, because the catalog says the
//! phone starts with its answer. Failures go to `tracing` and to a `LOG,WARNING` notification
//! with the parameter name and the error, never the expanded URL (it may carry `PASSWORD`).
//! HTTPS uses rustls (ring) with the system's trust anchors; certificates are verified.
//!
//! Tokens in every URL are replaced as [`tokens`] describes (values percent-encoded). The
//! call-end URLs carry the CDR through `CALLER`, `CALLED`, `DURATION` (whole seconds),
//! `DURATIONMS`, `CONNECTTIME` (ms), `DISCPARTY`, `REASON`, `CALLID` and `LINE`.
//! Our readings of the catalog's token list: `USERNAME` = `USER` = `MYNUMBER` = the
//! `username` parameter; `PEERNUM` = `TARGETMOBILE` = the peer's user or number;
//! `CALLEDNUMBER` = `CALLED` = the number called (the peer when outgoing, us when incoming);
//! `PEERDETAILS` = the peer's display name (else its number); `DIRECTION` 1 out / 2 in;
//! `DATE`, `TIME`, `DATETIME` in UTC as `YYYY_MM_DD`, `HH_MM_SS`, both joined by `_`;
//! `DEVICEID` = a hash of `/etc/machine-id` (stable per machine), `SESSIONID` and `MD5SALT`
//! random per engine; `CALLBACKNR`, `PHONE1`, `PHONE2`, `PINCODE` (reserved) are empty.
//!
//! # Hooks in the engine actor (`core.rs`, `core/*.rs`)
//!
//! | core event | call |
//! |------------|------|
//! | `start()`, after `START,api`, before the SIP stack starts | [`Integrations::provision`] (awaited; pairs applied with `Source::Scurl`), then [`Integrations::on_start`] (also asks `creditrequest`: answer as `CREDIT,text`) |
//! | `call_state(n, "callSetup" / "callRinging" / "callConnected")` (every `onCallStateChange` but the last) | [`Integrations::on_call_state`]: `scurl_on{out,in}call{setup,ringing,connected}`, and on `callSetup` also `scurl_displaypeerdetails` (answer as `POPUP,text`) and, outgoing, `ratingrequest` (answer as `RATING,text`) |
//! | `finish()`, after the `CDR` notification | [`Integrations::on_call_end`]: `scurl_on{out,in}calldisconnected` |
//! | `on_message()` (chat text received) / `sendchat_api()` (MESSAGE sent) | [`Integrations::on_chat`] with `incoming` true / false |
//! | `sendsms` with an `sms` parameter starting with `*` | [`Integrations::send_sms`] instead of a MESSAGE (a non-empty answer as `ANSWER,text`) |
//! | `recording_path()` with an `http(s)://` destination | [`Integrations::plan_upload`]: record to the profile's `recordings/` folder |
//! | `recording_done()`, after the file is closed | [`Integrations::recording_saved`]: upload, with `VREC` stages 2, 3/4 of type 3 (http) |
//! | `sendlogs` (engine extension) | [`Integrations::upload_log`]: POST of the log to `logform_action` |
//!
//! The other `links` parameters (`homepage`, `newuser`, ...) have no engine hook: front doors
//! expand them with [`Integrations::link`] and ask API links with
//! [`Integrations::link_request`].

pub mod tokens;

mod ftp;
mod http;

pub(crate) use http::builder as http_builder;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;
use tracing::{debug, warn};

use crate::notify::{self, Cdr, Severity};
use crate::params::{parse_scurl_answer, ParamStore};
use crate::Event;

pub use http::UploadMethod;
pub use tokens::{substitute, Tokens, TOKENS};

/// Connect time-out of every integration request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Total time-out of every integration request; uploads get more, see [`upload_timeout`].
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest server address book read (about 40,000 contacts); the rest is dropped.
pub const MAX_ADDRESS_BOOK: usize = 4 * 1024 * 1024;

/// Slowest upload rate accepted before a recording upload is given up (bytes per second).
pub const MIN_UPLOAD_RATE: u64 = 64 * 1024;

/// Time allowed for uploading `len` bytes: [`TOTAL_TIMEOUT`] plus the time at
/// [`MIN_UPLOAD_RATE`] (a one-hour 48 kHz stereo recording, ~690 MB, gets about 3 hours).
pub fn upload_timeout(len: usize) -> Duration {
    TOTAL_TIMEOUT + Duration::from_secs(len as u64 / MIN_UPLOAD_RATE)
}

/// What went wrong with an integration request.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// The parameter naming the URL is empty.
    #[error("{0} is not set")]
    NotConfigured(&'static str),
    /// The URL (after token substitution) is not a valid absolute URL.
    #[error("{param}: not a valid URL: {reason}")]
    BadUrl { param: &'static str, reason: String },
    /// Only `http` and `https` are supported here.
    #[error("{param}: unsupported URL scheme {scheme:?} (http or https)")]
    Scheme { param: &'static str, scheme: String },
    /// The server answered with a non-2xx status.
    #[error("{param}: HTTP status {status}")]
    Status { param: &'static str, status: u16 },
    /// Connection, TLS, time-out or body errors (the URL is never part of the text).
    #[error("{param}: {reason}")]
    Transport { param: &'static str, reason: String },
    /// Reading a file to upload failed.
    #[error("{param}: {reason}")]
    Io { param: &'static str, reason: String },
    /// The HTTP client could not be built (no TLS roots, ...).
    #[error("HTTP client unavailable: {0}")]
    NoClient(String),
    /// Called outside a tokio runtime.
    #[error("no async runtime to send the request on")]
    NoRuntime,
    /// `linkrequest` of a name that is not an API link parameter.
    #[error("{0:?} is not one of newuser, recharge, p2p, callback, creditrequest, ratingrequest")]
    UnknownLink(String),
    /// `linkrequest` of a link parameter whose value is a plain link (no leading `*`).
    #[error("{0} is a link, not an API request (its value has no leading *)")]
    NotApi(&'static str),
    /// `linkrequest` with a token that cannot be given.
    #[error("token {0:?} cannot be given (USERNAME, PASSWORD, PINCODE, CALLBACKNR, PHONE1, PHONE2, CALLEDNUMBER, TEXT)")]
    UnknownToken(String),
}

/// Every moment an action URL is fired at (behaviours §17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionEvent {
    Start,
    OutCallSetup,
    OutCallRinging,
    OutCallConnected,
    OutCallDisconnected,
    InCallSetup,
    InCallRinging,
    InCallConnected,
    InCallDisconnected,
    InChat,
    OutChat,
}

impl ActionEvent {
    /// Every action event, in the catalog's order.
    pub const ALL: [ActionEvent; 11] = [
        ActionEvent::Start,
        ActionEvent::OutCallSetup,
        ActionEvent::OutCallRinging,
        ActionEvent::OutCallConnected,
        ActionEvent::OutCallDisconnected,
        ActionEvent::InCallSetup,
        ActionEvent::InCallRinging,
        ActionEvent::InCallConnected,
        ActionEvent::InCallDisconnected,
        ActionEvent::InChat,
        ActionEvent::OutChat,
    ];

    /// The parameter holding this event's URL.
    pub fn param(self) -> &'static str {
        match self {
            ActionEvent::Start => "scurl_onstart",
            ActionEvent::OutCallSetup => "scurl_onoutcallsetup",
            ActionEvent::OutCallRinging => "scurl_onoutcallringing",
            ActionEvent::OutCallConnected => "scurl_onoutcallconnected",
            ActionEvent::OutCallDisconnected => "scurl_onoutcalldisconnected",
            ActionEvent::InCallSetup => "scurl_onincallsetup",
            ActionEvent::InCallRinging => "scurl_onincallringing",
            ActionEvent::InCallConnected => "scurl_onincallconnected",
            ActionEvent::InCallDisconnected => "scurl_onincalldisconnected",
            ActionEvent::InChat => "scurl_oninchat",
            ActionEvent::OutChat => "scurl_onoutchat",
        }
    }

    /// The `STATUS` token value (the `links` status names).
    pub fn status(self) -> &'static str {
        match self {
            ActionEvent::Start => "onStart",
            ActionEvent::OutCallSetup | ActionEvent::InCallSetup => "callSetup",
            ActionEvent::OutCallRinging | ActionEvent::InCallRinging => "callRinging",
            ActionEvent::OutCallConnected | ActionEvent::InCallConnected => "callConnected",
            ActionEvent::OutCallDisconnected | ActionEvent::InCallDisconnected => {
                "callDisconnected"
            }
            ActionEvent::InChat => "inChat",
            ActionEvent::OutChat => "outChat",
        }
    }

    /// The event of an `onCallStateChange` state name and a call direction (1 out, 2 in).
    pub fn for_call(state: &str, direction: u8) -> Option<ActionEvent> {
        let out = direction != 2;
        Some(match (state, out) {
            ("callSetup", true) => ActionEvent::OutCallSetup,
            ("callSetup", false) => ActionEvent::InCallSetup,
            ("callRinging", true) => ActionEvent::OutCallRinging,
            ("callRinging", false) => ActionEvent::InCallRinging,
            ("callConnected", true) => ActionEvent::OutCallConnected,
            ("callConnected", false) => ActionEvent::InCallConnected,
            ("callDisconnected", true) => ActionEvent::OutCallDisconnected,
            ("callDisconnected", false) => ActionEvent::InCallDisconnected,
            _ => return None,
        })
    }
}

/// What the engine knows about a call when an action URL fires.
#[derive(Debug, Clone, Copy)]
pub struct CallInfo<'a> {
    pub line: usize,
    /// 1 outgoing, 2 incoming.
    pub direction: u8,
    /// The peer's user or number.
    pub peer: &'a str,
    pub peer_display: &'a str,
    /// SIP Call-ID.
    pub callid: &'a str,
}

/// A `links` parameter after token substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// An HTTP API request (its answer is for the user) rather than a page to open.
    pub api: bool,
    /// The expanded URL (or text, for non-URL links such as `supportmail`).
    pub target: String,
}

/// A recording to upload when its file is closed.
#[derive(Debug, Clone)]
struct PlannedUpload {
    url: String,
    line: usize,
    tokens: Tokens,
    /// Keep the local file after a successful upload (`voicerecording` 3, and every
    /// recording unless `voicerecording` is 2).
    keep_local: bool,
}

/// The integrations of one engine: an HTTP client and the engine's event stream.
pub struct Integrations {
    /// Built at the first request: loading the system trust anchors and setting up TLS costs
    /// memory (about 0.5 MiB resident) that a phone without HTTP integrations never needs.
    client: std::sync::OnceLock<Result<reqwest::Client, String>>,
    events: broadcast::Sender<Event>,
    device_id: String,
    session_id: String,
    salt: String,
    uploads: Mutex<HashMap<PathBuf, PlannedUpload>>,
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Strips the `*` that marks an HTTP API request in the `links` parameters.
fn api_template(value: &str) -> &str {
    value.trim().trim_start_matches('*').trim()
}

impl Integrations {
    /// The ids of this session; the HTTP client is built at the first request (a failure is
    /// kept and reported with every request). `events` is where notifications of finished
    /// requests go.
    pub fn new(events: broadcast::Sender<Event>) -> Integrations {
        let device_id = std::fs::read_to_string("/etc/machine-id")
            .ok()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .map(|id| tokens::md5_hex(&format!("webphone:{id}")))
            .unwrap_or_else(|| random_hex(16));
        Integrations {
            client: std::sync::OnceLock::new(),
            events,
            device_id,
            session_id: random_hex(16),
            salt: random_hex(8),
            uploads: Mutex::new(HashMap::new()),
        }
    }

    /// The tokens every request has: identity, session, MD5 forms, date and `STATUS`.
    pub fn base_tokens(&self, params: &ParamStore, status: &str) -> Tokens {
        let user = params.get("username");
        let password = params.get("password");
        let (date, time, datetime) = tokens::date_tokens(now_secs());
        let mut t = Tokens::new();
        t.set("DEVICEID", self.device_id.clone())
            .set("SESSIONID", self.session_id.clone())
            .set("USERNAME", user.clone())
            .set("USER", user.clone())
            .set("MYNUMBER", user.clone())
            .set("PASSWORD", password.clone())
            .set("SERVER", params.get("serveraddress"))
            .set("STATUS", status)
            .set("MD5SIMPLE", tokens::md5_hex(&format!("{user}:{password}")))
            .set(
                "MD5NORMAL",
                tokens::md5_hex(&format!("{user}:{password}:{}", self.salt)),
            )
            .set("MD5SALT", self.salt.clone())
            .set("DATE", date)
            .set("TIME", time)
            .set("DATETIME", datetime);
        t
    }

    /// [`base_tokens`](Self::base_tokens) plus the call's peer, direction and ids.
    pub fn call_tokens(&self, params: &ParamStore, status: &str, call: &CallInfo<'_>) -> Tokens {
        let mut t = self.base_tokens(params, status);
        let me = params.get("username");
        let (caller, called) = if call.direction == 2 {
            (call.peer.to_string(), me)
        } else {
            (me, call.peer.to_string())
        };
        let details = if call.peer_display.is_empty() {
            call.peer
        } else {
            call.peer_display
        };
        t.set("CALLEDNUMBER", called.clone())
            .set("TARGETMOBILE", call.peer)
            .set("PEERNUM", call.peer)
            .set("PEERDETAILS", details)
            .set("DIRECTION", call.direction.to_string())
            .set("CALLID", call.callid)
            .set("CALLER", caller)
            .set("CALLED", called)
            .set("LINE", call.line.to_string());
        t
    }

    /// `start()`: fires `scurl_onstart`.
    pub fn on_start(&self, params: &ParamStore) {
        let ev = ActionEvent::Start;
        self.fire(ev.param(), params, self.base_tokens(params, ev.status()));
        // The balance (behaviours §18: `creditrequest` is always an API request): its answer
        // is the `CREDIT,messagetext` notification.
        self.answer_as(
            "creditrequest",
            "CREDIT",
            params,
            self.base_tokens(params, ev.status()),
        );
    }

    /// An `onCallStateChange` state of line `call.line` (`callSetup`, `callRinging`,
    /// `callConnected`): fires the matching action URL; on `callSetup` also asks
    /// `scurl_displaypeerdetails` and shows its answer as `POPUP,text`.
    pub fn on_call_state(&self, params: &ParamStore, state: &str, call: &CallInfo<'_>) {
        let Some(ev) = ActionEvent::for_call(state, call.direction) else {
            return;
        };
        let toks = self.call_tokens(params, ev.status(), call);
        if matches!(ev, ActionEvent::OutCallSetup | ActionEvent::InCallSetup) {
            self.answer_as("scurl_displaypeerdetails", "POPUP", params, toks.clone());
        }
        if matches!(ev, ActionEvent::OutCallSetup) {
            // The tariff of the called number: `RATING,messagetext` on call setup.
            self.answer_as("ratingrequest", "RATING", params, toks.clone());
        }
        self.fire(ev.param(), params, toks);
    }

    /// `finish()`: fires `scurl_on{out,in}calldisconnected` with the CDR as tokens.
    pub fn on_call_end(&self, params: &ParamStore, cdr: &Cdr, callid: &str) {
        let ev = if cdr.direction == 2 {
            ActionEvent::InCallDisconnected
        } else {
            ActionEvent::OutCallDisconnected
        };
        let call = CallInfo {
            line: cdr.line.max(0) as usize,
            direction: cdr.direction,
            peer: &cdr.peername,
            peer_display: &cdr.peerdisplayname,
            callid,
        };
        let mut t = self.call_tokens(params, ev.status(), &call);
        t.set("CALLER", cdr.caller.clone())
            .set("CALLED", cdr.called.clone())
            .set("DURATION", (cdr.duration_ms / 1000).to_string())
            .set("DURATIONMS", cdr.duration_ms.to_string())
            .set("CONNECTTIME", cdr.connecttime_ms.to_string())
            .set("DISCPARTY", (cdr.discparty as u8).to_string())
            .set("REASON", cdr.reason.clone());
        self.fire(ev.param(), params, t);
    }

    /// A chat message received (`incoming`) from or sent to `peer`: fires `scurl_oninchat` /
    /// `scurl_onoutchat` with `TEXT`.
    pub fn on_chat(&self, params: &ParamStore, incoming: bool, peer: &str, text: &str) {
        let ev = if incoming {
            ActionEvent::InChat
        } else {
            ActionEvent::OutChat
        };
        let call = CallInfo {
            line: 0,
            direction: if incoming { 2 } else { 1 },
            peer,
            peer_display: "",
            callid: "",
        };
        let mut t = self.call_tokens(params, ev.status(), &call);
        t.set("TEXT", text);
        self.fire(ev.param(), params, t);
    }

    /// True when `sendsms` should use the `sms` HTTP API: the parameter starts with `*`.
    pub fn sms_is_http(params: &ParamStore) -> bool {
        params.get("sms").trim_start().starts_with('*')
    }

    /// `sendsms(number, text, from)` through the `sms` HTTP API (`*`-prefixed URL with
    /// `TARGETMOBILE`/`CALLEDNUMBER`/`PEERNUM`, `TEXT`, `MYNUMBER` ...). Reports like a chat:
    /// `CHATREPORT,0,number,1,` now, then `2` on a 2xx answer or `3,<reason>` on failure.
    pub fn send_sms(
        &self,
        params: &ParamStore,
        number: &str,
        text: &str,
        from: &str,
    ) -> Result<(), IntegrationError> {
        const PARAM: &str = "sms";
        let call = CallInfo {
            line: 0,
            direction: 1,
            peer: number,
            peer_display: "",
            callid: "",
        };
        let mut t = self.call_tokens(params, "outChat", &call);
        t.set("TEXT", text);
        if !from.trim().is_empty() {
            t.set("MYNUMBER", from.trim());
        }
        let url = self.prepare(PARAM, &params.get(PARAM), &t)?;
        let client = self.client()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| IntegrationError::NoRuntime)?;
        let events = self.events.clone();
        let peer = notify::field(number);
        let _ = events.send(Event::Notification(notify::chat_report(0, &peer, 1, "")));
        rt.spawn(async move {
            let report = match http::get(&client, PARAM, url).await {
                Ok(body) => {
                    // The gateway's answer text, if any, is the `ANSWER,messagetext`
                    // notification ("answer to an earlier HTTP API request").
                    if !body.trim().is_empty() {
                        let _ = events.send(Event::Notification(format!(
                            "ANSWER,{}",
                            notify::text(body.trim())
                        )));
                    }
                    notify::chat_report(0, &peer, 2, "")
                }
                Err(e) => {
                    warn!("{e}");
                    let _ = events.send(Event::Notification(notify::log(
                        Severity::Warning,
                        &e.to_string(),
                    )));
                    notify::chat_report(0, &peer, 3, &e.to_string())
                }
            };
            let _ = events.send(Event::Notification(report));
        });
        Ok(())
    }

    /// `scurl_setparameters`: asks the provisioning API (waits at most [`TOTAL_TIMEOUT`]) and
    /// returns its `name=value` pairs for the engine to apply as server-provisioned values.
    /// Empty when the parameter is not set.
    pub async fn provision(
        &self,
        params: &ParamStore,
    ) -> Result<Vec<(String, String)>, IntegrationError> {
        const PARAM: &str = "scurl_setparameters";
        let template = params.get(PARAM);
        if api_template(&template).is_empty() {
            return Ok(Vec::new());
        }
        let url = self.prepare(PARAM, &template, &self.base_tokens(params, "onStart"))?;
        let body = http::get(&self.client()?, PARAM, url).await?;
        let pairs = parse_scurl_answer(&body);
        debug!(
            names = ?pairs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            "scurl_setparameters answered"
        );
        Ok(pairs)
    }

    /// The request for the server address book `serveraddressbook_url` (behaviours §19; a
    /// leading `*` is allowed, tokens are replaced), ready to run on any task: its answer is
    /// the list text ([`crate::profile::parse_contact_list`]), at most
    /// [`MAX_ADDRESS_BOOK`] bytes. `None` when the parameter is not set.
    pub fn address_book_request(
        &self,
        params: &ParamStore,
    ) -> Result<
        Option<
            impl std::future::Future<Output = Result<String, IntegrationError>> + Send + 'static,
        >,
        IntegrationError,
    > {
        const PARAM: &str = "serveraddressbook_url";
        let template = params.get(PARAM);
        if api_template(&template).is_empty() {
            return Ok(None);
        }
        let url = self.prepare(PARAM, &template, &self.base_tokens(params, "onStart"))?;
        let client = self.client()?;
        Ok(Some(async move {
            http::get_document(&client, PARAM, url, MAX_ADDRESS_BOOK).await
        }))
    }

    /// Whether a recording destination is a remote URL this module uploads to (`http://`,
    /// `https://`, `ftp://`).
    pub fn is_upload_url(dest: &str) -> bool {
        let lower = dest.trim().to_ascii_lowercase();
        ["http://", "https://", "ftp://"]
            .iter()
            .any(|p| lower.starts_with(p))
    }

    /// Remembers that the recording being written to `local` goes to `url_template` once
    /// closed. `values` are the recording tokens (`CALLID`, `USER`, `CALLER`, `CALLED`,
    /// `SERVER`, `COUNTER`; `DATE`, `TIME` and `DATETIME` are replaced by UTC dates).
    pub fn plan_upload(
        &self,
        url_template: &str,
        line: usize,
        local: &Path,
        values: &[(&str, String)],
    ) {
        self.plan_upload_with(url_template, line, local, values, true);
    }

    /// [`plan_upload`](Self::plan_upload); without `keep_local` the local file is deleted once
    /// the upload succeeded (`voicerecording` 2: remote only). A failed upload keeps it.
    pub fn plan_upload_with(
        &self,
        url_template: &str,
        line: usize,
        local: &Path,
        values: &[(&str, String)],
        keep_local: bool,
    ) {
        let mut t = Tokens::new();
        for (k, v) in values {
            t.set(k, v.clone());
        }
        let (date, time, datetime) = tokens::date_tokens(now_secs());
        t.set("DATE", date)
            .set("TIME", time)
            .set("DATETIME", datetime);
        let planned = PlannedUpload {
            url: url_template.trim().to_string(),
            line,
            tokens: t,
            keep_local,
        };
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(local.to_path_buf(), planned);
    }

    /// A recording file is closed: when [`plan_upload`](Self::plan_upload) named a URL for
    /// it, uploads it (HTTP PUT or multipart POST, see [`UploadMethod::for_url`]; FTP `STOR`)
    /// and reports `VREC,line,2,T,url,`, then `VREC,-1,3,T,url,` or `VREC,-1,4,T,url,reason`
    /// with `T` 3 for http(s), 2 for ftp (the URL shown without credentials or query).
    pub fn recording_saved(&self, local: &Path) -> Result<(), IntegrationError> {
        const PARAM: &str = "voicerecupload";
        let Some(plan) = self
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(local)
        else {
            return Ok(());
        };
        let url = match self.prepare(PARAM, &plan.url, &plan.tokens) {
            Err(IntegrationError::Scheme { scheme, .. }) if scheme == "ftp" => {
                let expanded = substitute(api_template(&plan.url), &plan.tokens);
                reqwest::Url::parse(&expanded).map_err(|e| IntegrationError::BadUrl {
                    param: PARAM,
                    reason: e.to_string(),
                })?
            }
            other => other?,
        };
        let is_ftp = url.scheme() == "ftp";
        // VREC upload type (notifications §9): 2 ftp, 3 http.
        let kind = if is_ftp { 2 } else { 3 };
        // Shown without credentials or query (either may carry PASSWORD).
        let mut bare = url.clone();
        let _ = bare.set_password(None);
        let _ = bare.set_username("");
        bare.set_query(None);
        bare.set_fragment(None);
        let shown = notify::field(bare.as_str());
        let client = self.client()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| IntegrationError::NoRuntime)?;
        let events = self.events.clone();
        let path = local.to_path_buf();
        let line = plan.line;
        let keep_local = plan.keep_local;
        let meta = http::UploadMeta {
            file_name: http::file_name_for(&url, &path),
            user: plan.tokens.get("USER").to_string(),
            caller: plan.tokens.get("CALLER").to_string(),
            called: plan.tokens.get("CALLED").to_string(),
            callid: plan.tokens.get("CALLID").to_string(),
            server: plan.tokens.get("SERVER").to_string(),
        };
        let _ = events.send(Event::Notification(format!(
            "VREC,{line},2,{kind},{shown},"
        )));
        rt.spawn(async move {
            let result = match read_file(&path).await {
                Ok(bytes) if is_ftp => {
                    let sent =
                        tokio::time::timeout(upload_timeout(bytes.len()), ftp::stor(&url, &bytes))
                            .await;
                    match sent {
                        Ok(Ok(())) => Ok(226),
                        Ok(Err(reason)) => Err(IntegrationError::Transport {
                            param: PARAM,
                            reason,
                        }),
                        Err(_) => Err(IntegrationError::Transport {
                            param: PARAM,
                            reason: "FTP upload timed out".into(),
                        }),
                    }
                }
                Ok(bytes) => http::upload(&client, PARAM, url, bytes, &meta).await,
                Err(e) => Err(IntegrationError::Io {
                    param: PARAM,
                    reason: e,
                }),
            };
            let done = match result {
                Ok(status) => {
                    debug!(status, "recording uploaded");
                    if !keep_local {
                        if let Err(e) = tokio::fs::remove_file(&path).await {
                            warn!("uploaded recording not deleted: {e}");
                        }
                    }
                    format!("VREC,-1,3,{kind},{shown},")
                }
                Err(e) => {
                    warn!("{e}");
                    let why = notify::text(&e.to_string());
                    let _ = events.send(Event::Notification(notify::log(Severity::Warning, &why)));
                    format!("VREC,-1,4,{kind},{shown},{why}")
                }
            };
            let _ = events.send(Event::Notification(done));
        });
        Ok(())
    }

    /// Sends `log` to `logform_action` as the skin's "Send log to support" form does: a
    /// multipart POST with the field `filename` (`logform_filename`, default
    /// `webphone_log.txt`) and the log as the file part `log`. Reports
    /// `EVENT,EVENT,Log sent` or `EVENT,WARNING,Log upload failed: ...` when done.
    pub fn upload_log(&self, params: &ParamStore, log: String) -> Result<(), IntegrationError> {
        const PARAM: &str = "logform_action";
        let template = params.get(PARAM);
        let url = self.prepare(PARAM, &template, &self.base_tokens(params, "onStart"))?;
        let file_name = match params.get("logform_filename").trim() {
            "" => "webphone_log.txt".to_string(),
            f => f.to_string(),
        };
        let client = self.client()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| IntegrationError::NoRuntime)?;
        let events = self.events.clone();
        rt.spawn(async move {
            let text = match http::post_log(&client, PARAM, url, &file_name, log.into_bytes()).await
            {
                Ok(_) => notify::event(Severity::Event, "Log sent"),
                Err(e) => {
                    warn!("{e}");
                    notify::event(Severity::Warning, &format!("Log upload failed: {e}"))
                }
            };
            let _ = events.send(Event::Notification(text));
        });
        Ok(())
    }

    /// The `links` parameter `name` with its tokens replaced (behaviours §18): `api` is true
    /// for an HTTP API request (always for `creditrequest` / `ratingrequest`; for `newuser`,
    /// `recharge`, `p2p`, `callback` and `sms` when the value starts with `*`), whose URL must
    /// then be `http(s)`; other links are returned expanded for the front door to open.
    /// `call` adds the peer tokens, `text` the `TEXT` token.
    pub fn link(
        &self,
        params: &ParamStore,
        name: &'static str,
        call: Option<&CallInfo<'_>>,
        text: &str,
    ) -> Result<Link, IntegrationError> {
        let raw = params.get(name);
        let starred = raw.trim_start().starts_with('*');
        let api = match name {
            "creditrequest" | "ratingrequest" => true,
            "newuser" | "recharge" | "p2p" | "callback" | "sms" => starred,
            _ => false,
        };
        let mut t = match call {
            Some(c) => self.call_tokens(params, "onStart", c),
            None => self.base_tokens(params, "onStart"),
        };
        t.set("TEXT", text);
        if api {
            let url = self.prepare(name, &raw, &t)?;
            return Ok(Link {
                api,
                target: url.to_string(),
            });
        }
        let template = api_template(&raw);
        if template.is_empty() {
            return Err(IntegrationError::NotConfigured(name));
        }
        Ok(Link {
            api,
            target: substitute(template, &t),
        })
    }

    /// `linkrequest(name, tokens)` (engine extension): asks the API link `name` in the
    /// background, with `extra` token values (`USERNAME`, `PASSWORD`, `PINCODE`,
    /// `CALLBACKNR`, `PHONE1`, `PHONE2`, `CALLEDNUMBER`, `TEXT`) over the usual ones, e.g.
    /// the name and password a user typed into the sign-up form of an API `newuser`. The
    /// answer arrives as a notification: `NEWUSER,text` for `newuser`, `CREDIT,text` for
    /// `creditrequest`, `RATING,text` for `ratingrequest`, `ANSWER,text` for `recharge`,
    /// `p2p` and `callback` (notifications.md §21); a failure as a `LOG,WARNING` line.
    /// Errors: an unknown name, a parameter that is not set or is a plain link (no `*`).
    pub fn request_link(
        &self,
        params: &ParamStore,
        name: &str,
        extra: &[(String, String)],
    ) -> Result<(), IntegrationError> {
        let (param, prefix): (&'static str, &'static str) =
            match name.trim().to_ascii_lowercase().as_str() {
                "newuser" => ("newuser", "NEWUSER"),
                "recharge" => ("recharge", "ANSWER"),
                "p2p" => ("p2p", "ANSWER"),
                "callback" => ("callback", "ANSWER"),
                "creditrequest" => ("creditrequest", "CREDIT"),
                "ratingrequest" => ("ratingrequest", "RATING"),
                _ => return Err(IntegrationError::UnknownLink(name.trim().to_string())),
            };
        if !self.link(params, param, None, "")?.api {
            return Err(IntegrationError::NotApi(param));
        }
        let mut toks = self.base_tokens(params, "onStart");
        let mut user = params.get("username");
        let mut password = params.get("password");
        for (k, v) in extra {
            let key = k.trim().to_ascii_uppercase();
            match key.as_str() {
                "USERNAME" => user = v.clone(),
                "PASSWORD" => password = v.clone(),
                "PINCODE" | "CALLBACKNR" | "PHONE1" | "PHONE2" | "CALLEDNUMBER" | "TEXT" => {
                    toks.set(&key, v.clone());
                }
                _ => return Err(IntegrationError::UnknownToken(k.trim().to_string())),
            }
        }
        toks.set("USERNAME", user.clone())
            .set("USER", user.clone())
            .set("MYNUMBER", user.clone())
            .set("PASSWORD", password.clone())
            .set("MD5SIMPLE", tokens::md5_hex(&format!("{user}:{password}")))
            .set(
                "MD5NORMAL",
                tokens::md5_hex(&format!("{user}:{password}:{}", self.salt)),
            );
        self.answer_as(param, prefix, params, toks);
        Ok(())
    }

    /// Asks an API link (see [`link`](Self::link)) and returns its answer text, e.g. the
    /// balance of `creditrequest` or the rate of `ratingrequest`.
    pub async fn link_request(
        &self,
        params: &ParamStore,
        name: &'static str,
        call: Option<&CallInfo<'_>>,
    ) -> Result<String, IntegrationError> {
        let link = self.link(params, name, call, "")?;
        if !link.api {
            return Err(IntegrationError::Scheme {
                param: name,
                scheme: "link (not an API request: no leading *)".into(),
            });
        }
        let url = reqwest::Url::parse(&link.target).map_err(|e| IntegrationError::BadUrl {
            param: name,
            reason: e.to_string(),
        })?;
        http::get(&self.client()?, name, url).await
    }

    // ----- plumbing ---------------------------------------------------------------------

    fn client(&self) -> Result<reqwest::Client, IntegrationError> {
        self.client
            .get_or_init(|| {
                http::build_client().map_err(|e| {
                    warn!("HTTP integrations disabled: {e}");
                    e
                })
            })
            .clone()
            .map_err(IntegrationError::NoClient)
    }

    /// Substitutes the tokens of `template` (a leading `*` is dropped) and checks the result
    /// is an absolute `http(s)` URL.
    fn prepare(
        &self,
        param: &'static str,
        template: &str,
        toks: &Tokens,
    ) -> Result<reqwest::Url, IntegrationError> {
        let template = api_template(template);
        if template.is_empty() {
            return Err(IntegrationError::NotConfigured(param));
        }
        let expanded = substitute(template, toks);
        let url = reqwest::Url::parse(&expanded).map_err(|e| IntegrationError::BadUrl {
            param,
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "http" | "https" => Ok(url),
            other => Err(IntegrationError::Scheme {
                param,
                scheme: other.to_string(),
            }),
        }
    }

    /// Fires the action URL of parameter `param` (when set) on its own task.
    fn fire(&self, param: &'static str, params: &ParamStore, toks: Tokens) {
        let template = params.get(param);
        if api_template(&template).is_empty() {
            return;
        }
        let result = self.prepare(param, &template, &toks).and_then(|url| {
            let client = self.client()?;
            let rt =
                tokio::runtime::Handle::try_current().map_err(|_| IntegrationError::NoRuntime)?;
            let events = self.events.clone();
            rt.spawn(async move {
                match http::get(&client, param, url).await {
                    Ok(_) => debug!(param, "action URL fired"),
                    Err(e) => report_failure(&events, &e),
                }
            });
            Ok(())
        });
        if let Err(e) = result {
            report_failure(&self.events, &e);
        }
    }

    /// Asks the API URL of `param` (when set) and sends its non-empty answer, trimmed and on
    /// one line, as the notification `PREFIX,text`: `POPUP` for `scurl_displaypeerdetails`,
    /// `CREDIT` for `creditrequest`, `RATING` for `ratingrequest`. A failure is logged.
    fn answer_as(
        &self,
        param: &'static str,
        prefix: &'static str,
        params: &ParamStore,
        toks: Tokens,
    ) {
        let template = params.get(param);
        if api_template(&template).is_empty() {
            return;
        }
        let result = self.prepare(param, &template, &toks).and_then(|url| {
            let client = self.client()?;
            let rt =
                tokio::runtime::Handle::try_current().map_err(|_| IntegrationError::NoRuntime)?;
            let events = self.events.clone();
            rt.spawn(async move {
                match http::get(&client, param, url).await {
                    Ok(body) if !body.trim().is_empty() => {
                        let _ = events.send(Event::Notification(format!(
                            "{prefix},{}",
                            notify::text(body.trim())
                        )));
                    }
                    Ok(_) => debug!("{param}: empty answer"),
                    Err(e) => report_failure(&events, &e),
                }
            });
            Ok(())
        });
        if let Err(e) = result {
            report_failure(&self.events, &e);
        }
    }
}

/// Logs a failed request: `tracing` and a `LOG,WARNING` notification.
fn report_failure(events: &broadcast::Sender<Event>, e: &IntegrationError) {
    warn!("HTTP integration failed: {e}");
    let _ = events.send(Event::Notification(notify::log(
        Severity::Warning,
        &e.to_string(),
    )));
}

async fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::read(&path).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests;
