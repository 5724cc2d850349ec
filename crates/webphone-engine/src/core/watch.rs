//! Watching others and showing ourselves: presence (RFC 3856, PIDF RFC 3863), BLF (dialog
//! event package, RFC 4235), voicemail waiting (message-summary, RFC 3842), and our own
//! presence by PUBLISH (RFC 3903).

use serde_json::Value;

use webphone_sip::{SubKey, SubscriptionState};

use super::{arg, bad, Core, Severity};
use crate::params::Source;
use crate::phone::ApiError;

/// How long a watch subscription lasts before it is refreshed (RFC 6665 §4.1.2.1).
const WATCH_EXPIRES: u32 = 3600;

/// How long our voicemail (message-summary) subscription is asked for; the notifier's 2xx
/// `Expires` decides, and the SIP layer refreshes it before then (RFC 6665 §4.1.2.1).
const MWI_EXPIRES: u32 = 3600;

/// Whether to SUBSCRIBE to our own message-summary (RFC 3842 §4, RFC 6665 §4.1.2) after
/// registering. `mode` is the engine extra `mwisubscribe`: 0 never, 2 always, anything else
/// (default 1) only when voicemail is enabled, i.e. a `voicemailnum` was configured or set by
/// the user, or the registrar lists `message-summary` in its `Allow-Events` (`server_offers`,
/// RFC 6665 §8.2.2). A number `learned` from a server's NOTIFY does not count: that server
/// already notifies without a subscription. The default keeps registrars that know nothing
/// of message-summary free of SUBSCRIBEs they would refuse.
pub(super) fn wants_mwi_subscription(
    mode: Option<i64>,
    voicemailnum: &str,
    learned: bool,
    server_offers: bool,
) -> bool {
    match mode {
        Some(0) => false,
        Some(2) => true,
        _ => server_offers || (!voicemailnum.trim().is_empty() && !learned),
    }
}

/// What a watch subscription is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Watch {
    Presence(String),
    Blf(String),
}

/// The text of the first `<tag ...>text</tag>` element, namespace prefixes ignored.
fn element_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let lower = xml.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find('<') {
        let start = from + i + 1;
        let end = start + lower[start..].find('>')?;
        let name = lower[start..end]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .rsplit(':')
            .next()
            .unwrap_or("");
        if name == tag && !lower[start..end].ends_with('/') {
            let body_start = end + 1;
            let close = lower[body_start..].find("</")?;
            return Some(xml[body_start..body_start + close].trim());
        }
        from = end;
    }
    None
}

/// The voicemail account of a message-summary body: its `Message-Account` header
/// (RFC 3842 §5.2), angle brackets removed; `None` when absent or empty.
pub(super) fn message_account(body: &str) -> Option<String> {
    body.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if !k.trim().eq_ignore_ascii_case("message-account") {
            return None;
        }
        let v = v.trim().trim_start_matches('<');
        let v = v.split('>').next().unwrap_or(v).trim();
        (!v.is_empty() && !v.contains(char::is_whitespace)).then(|| v.to_string())
    })
}

/// Whether an element `<prefix:tag/>` or `<tag>` appears (RPID activities are empty elements).
fn has_element(xml: &str, tag: &str) -> bool {
    let lower = xml.to_ascii_lowercase();
    lower.contains(&format!(":{tag}/>"))
        || lower.contains(&format!("<{tag}/>"))
        || lower.contains(&format!(":{tag}>"))
        || lower.contains(&format!("<{tag}>"))
}

/// The `onPresenceStateChange` spelling of a PRESENCE notification state: the callback's
/// value list writes the compound names with spaces (`Do Not Disturb`, `Call Me`), the
/// notification's list in CamelCase (`DoNotDisturb`, `CallMe`).
pub(super) fn callback_presence(state: &str) -> &str {
    match state {
        "DoNotDisturb" | "DND" => "Do Not Disturb",
        "CallMe" => "Call Me",
        "CallForward" => "Call Forward",
        "NotExists" => "Not Exists",
        other => other,
    }
}

/// A PIDF document as the PRESENCE notification's (state, details): the basic status
/// (open → `Available`, closed → `Offline`), refined by RPID activities (busy,
/// on-the-phone → `Busy`/`Speaking`, away → `Away`, dnd → `DoNotDisturb`); details is the
/// `<note>` when there is one.
pub(super) fn presence_state(pidf: &str) -> (String, String) {
    let basic = element_text(pidf, "basic")
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut state = match basic.as_str() {
        "open" => "Available",
        "closed" => "Offline",
        _ => "Unknown",
    };
    if basic == "open" {
        if has_element(pidf, "on-the-phone") {
            state = "Speaking";
        } else if has_element(pidf, "busy") {
            state = "Busy";
        } else if has_element(pidf, "do-not-disturb") || has_element(pidf, "dnd") {
            state = "DoNotDisturb";
        } else if has_element(pidf, "away") {
            state = "Away";
        }
    }
    let details = element_text(pidf, "note").unwrap_or("").to_string();
    (state.to_string(), details)
}

/// A dialog-info document as the BLF notification's (direction, state, callid): the first
/// dialog's direction (initiator / receiver) and state (trying, proceeding, early,
/// confirmed, terminated); no dialog at all means the extension is idle (terminated).
pub(super) fn blf_state(dialog_info: &str) -> (String, String, String) {
    let lower = dialog_info.to_ascii_lowercase();
    let Some(start) = lower.find("<dialog ").or_else(|| lower.find("<dialog>")) else {
        return ("undefined".into(), "terminated".into(), String::new());
    };
    let tag_end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
    let tag = &dialog_info[start..tag_end];
    let attr = |name: &str| {
        let l = tag.to_ascii_lowercase();
        let i = l.find(&format!("{name}=\""))? + name.len() + 2;
        let j = tag[i..].find('"')? + i;
        Some(tag[i..j].to_string())
    };
    let direction = match attr("direction").as_deref() {
        Some("initiator") => "initiator",
        Some("recipient") => "receiver",
        _ => "undefined",
    };
    let state = element_text(&dialog_info[start..], "state")
        .map(str::to_ascii_lowercase)
        .filter(|s| {
            ["trying", "proceeding", "early", "confirmed", "terminated"].contains(&s.as_str())
        })
        .unwrap_or_else(|| "unknown".into());
    let callid = attr("call-id").unwrap_or_default();
    (direction.into(), state, callid)
}

/// Our own PIDF for `setpresencestatus` (Online, Away, DND, Invisible, Offline).
pub(super) fn own_pidf(entity: &str, status: &str) -> Option<String> {
    let (basic, activity, note) = match status {
        "Online" => ("open", "", "Online"),
        "Away" => ("open", "<rpid:away/>", "Away"),
        "DND" => ("open", "<rpid:busy/>", "Do not disturb"),
        "Invisible" | "Offline" => ("closed", "", "Offline"),
        _ => return None,
    };
    let activities = if activity.is_empty() {
        String::new()
    } else {
        format!("<dm:person id=\"p1\"><rpid:activities>{activity}</rpid:activities></dm:person>")
    };
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{entity}\">\
         <tuple id=\"t1\"><status><basic>{basic}</basic></status><note>{note}</note></tuple>\
         {activities}</presence>\r\n"
    ))
}

impl Core {
    /// `checkpresence(list)` / `checkblf(list)`: one subscription per user.
    pub(super) async fn watch_api(
        &mut self,
        args: &[String],
        blf: bool,
    ) -> Result<Value, ApiError> {
        let (param, mode) = self.watch_mode(blf);
        if !self.watch_switch.allowed(blf, mode) {
            return Err(ApiError::Failed(format!(
                "{} is switched off ({param} {mode}{})",
                if blf { "BLF" } else { "presence" },
                if mode == 0 {
                    ""
                } else if self.watch_switch.server_lacks(blf) {
                    ", the server's Allow-Events does not list it"
                } else {
                    ", the server refused it"
                }
            )));
        }
        let list = arg(args, 0).unwrap_or("");
        let users: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        if users.is_empty() {
            return Err(bad("usage: give a comma separated list of users"));
        }
        self.start().await?;
        let event = if blf { "dialog" } else { "presence" };
        for user in users {
            let target = self.dial_target(&user)?;
            let Some(sip) = &self.sip else {
                return Err(ApiError::Failed("engine not started".into()));
            };
            let sub = sip
                .subscribe(&target, event, WATCH_EXPIRES)
                .map_err(|e| ApiError::Failed(format!("{user}: {e}")))?;
            let peer = super::user_of(&target);
            self.watches.insert(
                sub,
                if blf {
                    Watch::Blf(peer)
                } else {
                    Watch::Presence(peer)
                },
            );
        }
        Ok(Value::Null)
    }

    /// The parameter and value deciding BLF (`enableblf`) or presence (`enablepresence`).
    pub(super) fn watch_mode(&self, blf: bool) -> (&'static str, i64) {
        let param = if blf { "enableblf" } else { "enablepresence" };
        (param, self.params.get_i64(param).unwrap_or(1))
    }

    /// `setpresencestatus(status)`: PUBLISH our presence.
    pub(super) fn setpresencestatus_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let status = arg(args, 0).unwrap_or("").trim();
        let entity = format!("sip:{}@{}", self.username(), super::host_of(&self.server()));
        let pidf = own_pidf(&entity, status).ok_or_else(|| {
            bad("usage: setpresencestatus(status): Online, Away, DND, Invisible or Offline")
        })?;
        // Do-not-disturb is ours even without a presence server: calls get 480 meanwhile.
        self.dnd = status.eq_ignore_ascii_case("dnd");
        let (_, mode) = self.watch_mode(false);
        if !self.watch_switch.allowed(false, mode) {
            // `enablepresence 0` (or switched off): the state stays local, nothing is published.
            return Ok(Value::Null);
        }
        let Some(sip) = &self.sip else {
            return Err(ApiError::Failed("engine not started".into()));
        };
        sip.publish_presence(&pidf)
            .map_err(|e| ApiError::Failed(e.to_string()))?;
        Ok(Value::Null)
    }

    /// After the first successful registration: SUBSCRIBE to our own message-summary when
    /// [`wants_mwi_subscription`] says so (once; the SIP layer refreshes it until
    /// [`Core::unsubscribe_mwi`]). The request goes to our address of record, routed like a
    /// call to a bare user (server, or outbound proxy).
    pub(super) fn subscribe_mwi(&mut self, mode: Option<i64>) {
        if self.mwi_sub.is_some() {
            return;
        }
        let learned = self.params.source_of("voicemailnum") == Some(Source::SipHeader);
        let offered = self
            .server_packages
            .as_ref()
            .is_some_and(|p| p.iter().any(|x| x == "message-summary"));
        if !wants_mwi_subscription(mode, &self.params.get("voicemailnum"), learned, offered) {
            return;
        }
        let user = self.account().username;
        let Some(sip) = &self.sip else { return };
        if user.is_empty() {
            return;
        }
        match sip.subscribe(&user, "message-summary", MWI_EXPIRES) {
            Ok(sub) => {
                self.mwi_sub = Some(sub);
                self.log(
                    Severity::Event,
                    &format!("voicemail: subscribed to message-summary of {user}"),
                );
            }
            Err(e) => self.log(
                Severity::Warning,
                &format!("voicemail: cannot subscribe to message-summary: {e}"),
            ),
        }
    }

    /// End our message-summary subscription (SUBSCRIBE with `Expires: 0`, RFC 6665
    /// §4.1.2.3), e.g. on `unregister()`.
    pub(super) fn unsubscribe_mwi(&mut self) {
        let Some(sub) = self.mwi_sub.take() else {
            return;
        };
        if let Some(sip) = &self.sip {
            if let Err(e) = sip.unsubscribe(sub) {
                self.log(
                    Severity::Warning,
                    &format!("voicemail: cannot unsubscribe: {e}"),
                );
            }
        }
    }

    /// A NOTIFY for one of our watches, or an unsolicited message-summary (voicemail).
    pub(super) fn on_notify(
        &mut self,
        sub: Option<SubKey>,
        event: &str,
        state: &SubscriptionState,
        body: &str,
    ) {
        let ev = event.to_ascii_lowercase();
        if ev.starts_with("message-summary") {
            if sub.is_some() && sub == self.mwi_sub {
                if let SubscriptionState::Terminated { .. } = state {
                    // The notifier ended it; the next registration subscribes again.
                    self.mwi_sub = None;
                    self.log(
                        Severity::Event,
                        "voicemail: subscription ended by the server",
                    );
                }
            }
            if let Some(account) = message_account(body) {
                self.learn_voicemail(&account);
            }
            // RFC 3842 §5.2: "Messages-Waiting: yes" and counts; shown as MWI,<summary>.
            let waiting = body.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("messages-waiting")
                    .then(|| v.trim().eq_ignore_ascii_case("yes"))
            });
            // "Messages-Waiting: no" is reported too (with its counts, else `0/0`), so a
            // consumer clears what it shows (the skin's voicemail badge).
            if let Some(waiting) = waiting {
                let voice = body
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("voice-message")
                            .then(|| v.trim().to_string())
                    })
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| if waiting { String::new() } else { "0/0".into() });
                self.notify(format!("MWI,{}", crate::notify::text(&voice)));
            }
            return;
        }
        let Some(watch) = sub.and_then(|s| self.watches.get(&s)).cloned() else {
            return;
        };
        if let (Watch::Blf(peer), true) = (&watch, refused_by_notifier(state, body)) {
            // The notifier accepted the SUBSCRIBE, then refused to watch this user: a
            // failed watch, not an idle line (and no sign of BLF support either).
            if let Some(s) = sub {
                self.watches.remove(&s);
            }
            self.blf(peer, "undefined", "failed", "");
            return;
        }
        self.watch_switch.on_success(matches!(watch, Watch::Blf(_)));
        let ended = matches!(state, SubscriptionState::Terminated { .. });
        if ended {
            if let Some(s) = sub {
                self.watches.remove(&s);
            }
        }
        match watch {
            Watch::Presence(peer) => {
                if body.trim().is_empty() {
                    // No document (RFC 6665 §4.2.2: no state to give) on a live subscription
                    // after a state was given: nothing is published for the peer anymore (it
                    // went offline, its publication was removed or expired). The end of the
                    // subscription itself (ours to end, or the server's) says nothing.
                    let went = sub.is_some_and(|s| self.presence_known.remove(&s));
                    if went && !ended {
                        self.presence(&peer, "Offline", "");
                    }
                    return;
                }
                if let Some(s) = sub {
                    if ended {
                        self.presence_known.remove(&s);
                    } else {
                        self.presence_known.insert(s);
                    }
                }
                let (state, details) = presence_state(body);
                self.presence(&peer, &state, &details);
            }
            Watch::Blf(peer) => {
                let (direction, state, callid) = blf_state(body);
                self.blf(&peer, &direction, &state, &callid);
            }
        }
    }

    /// `voicemailnum` is "normally learned from the server" (behaviours §13): the
    /// `Message-Account` of a message-summary body (RFC 3842 §5.2) becomes its value for this
    /// session (the `x-mparam` layer: not persisted), unless the user or the configuration
    /// gave one.
    fn learn_voicemail(&mut self, account: &str) {
        let current = self.params.get("voicemailnum");
        let learned_before = self.params.source_of("voicemailnum") == Some(Source::SipHeader);
        if current.trim() == account || !(current.trim().is_empty() || learned_before) {
            return;
        }
        // A number the user cleared at run time means "not known": the server's applies.
        self.params.drop_cleared(Source::Runtime, "voicemailnum");
        match self
            .params
            .set_from(Source::SipHeader, "voicemailnum", account)
        {
            Ok(_) => self.log(
                Severity::Event,
                &format!("voicemail number from the server: {account}"),
            ),
            Err(e) => self.log(
                Severity::Warning,
                &format!("voicemail number {account:?} not used: {e}"),
            ),
        }
    }

    /// `callvoicemail()` (engine extension): calls `voicemailnum`, configured or learned
    /// from the server's message-summary NOTIFY; returns the line like `call`.
    pub(super) async fn callvoicemail_api(&mut self) -> Result<Value, ApiError> {
        let number = self.params.get("voicemailnum");
        let number = number.trim();
        if number.is_empty() {
            return Err(ApiError::Failed(
                "no voicemail number: set voicemailnum, or wait for the server's \
                 message-summary NOTIFY with a Message-Account (RFC 3842)"
                    .into(),
            ));
        }
        let line = self.call(number).await?;
        Ok(Value::from(line))
    }

    /// A watch subscription was refused or failed.
    pub(super) fn on_subscription_failed(&mut self, sub: SubKey, code: u16) {
        if self.mwi_sub == Some(sub) {
            self.mwi_sub = None;
            self.log(
                Severity::Warning,
                &format!("voicemail: message-summary subscription failed: {code}"),
            );
            return;
        }
        let Some(watch) = self.watches.remove(&sub) else {
            return;
        };
        self.log(
            Severity::Warning,
            &format!("subscription for {watch:?} failed: {code}"),
        );
        let blf = matches!(watch, Watch::Blf(_));
        let (param, mode) = self.watch_mode(blf);
        if self.watch_switch.on_failure(blf, mode, code) {
            self.log(
                Severity::Warning,
                &format!("{param} {mode}: switched off for this session after {code}"),
            );
        }
        match watch {
            Watch::Presence(peer) => self.presence(&peer, "Unknown", &format!("{code}")),
            // RFC 3261 §21.4.18: 480 says the user is not logged in; RFC 4235 has no state
            // for that, so the BLF states get one more value (docs/behaviour-choices.md).
            Watch::Blf(peer) if code == 480 => self.blf(&peer, "undefined", BLF_UNREGISTERED, ""),
            Watch::Blf(peer) => self.blf(&peer, "undefined", "failed", ""),
        }
    }

    fn presence(&self, peer: &str, state: &str, details: &str) {
        use crate::notify::{field, text};
        self.notify(format!(
            "PRESENCE,{},{},{},,",
            field(peer),
            field(state),
            text(&details.replace(',', " "))
        ));
        self.callback(
            "onPresenceStateChange",
            vec![
                peer.into(),
                callback_presence(state).into(),
                "".into(),
                "".into(),
            ],
        );
    }

    fn blf(&self, peer: &str, direction: &str, state: &str, callid: &str) {
        use crate::notify::field;
        self.notify(format!(
            "BLF,{},{direction},{state},{}",
            field(peer),
            field(callid)
        ));
        self.callback(
            "onBLFStateChange",
            vec![peer.into(), direction.into(), state.into(), callid.into()],
        );
    }
}

/// `enableblf` and `enablepresence` over a session (parameters.tsv): 0 off; `enableblf` 1
/// "auto" switches to on after the first BLF NOTIFY and off after the first refusal before
/// that (except one about the watched user, [`about_the_watched_user`]), 2 "enable" switches off only when the server says it cannot do the package (405,
/// 489 Bad Event, 501), 3 "force" never switches off. `enablepresence` 1 "auto" switches off
/// like `enableblf` 2, 2 "always" never.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WatchSwitch {
    blf_confirmed: bool,
    blf_off: bool,
    presence_off: bool,
    /// The registrar's `Allow-Events` lists packages, and not `dialog` / `presence`.
    server_lacks_dialog: bool,
    server_lacks_presence: bool,
}

/// A NOTIFY that ends a subscription without state because the notifier will not watch the
/// resource (RFC 6665 §4.1.3: `rejected` by policy, `noresource` when it does not exist),
/// rather than a final state.
fn refused_by_notifier(state: &SubscriptionState, body: &str) -> bool {
    matches!(
        state,
        SubscriptionState::Terminated { reason: Some(r), .. }
            if r.eq_ignore_ascii_case("rejected") || r.eq_ignore_ascii_case("noresource")
    ) && body.trim().is_empty()
}

/// The BLF state of a watched user who is not registered (a SUBSCRIBE answered 480): an
/// addition to the catalog's trying/proceeding/early/confirmed/terminated/unknown/failed.
pub(crate) const BLF_UNREGISTERED: &str = "unregistered";

/// A refusal that means the server has no such event package or method.
fn cannot_do_package(code: u16) -> bool {
    matches!(code, 405 | 489 | 501)
}

/// A refusal about the watched user, not about the server's BLF support: no such user (RFC
/// 3261 §21.4.5 404, §21.4.10 410, §21.4.20 484, §21.6.3 604) or not reachable now (§21.4.18
/// 480, e.g. not registered). One contact with an outside number or an unknown extension
/// must not switch BLF off for every other contact.
fn about_the_watched_user(code: u16) -> bool {
    matches!(code, 404 | 410 | 480 | 484 | 604)
}

impl WatchSwitch {
    /// Whether new subscriptions (and, for presence, PUBLISH) may go out.
    pub(crate) fn allowed(&self, blf: bool, mode: i64) -> bool {
        match (blf, mode) {
            (_, 0) => false,
            (true, 3) | (false, 2) => true,
            (true, 1) => !self.blf_off && !self.server_lacks_dialog,
            (false, 1) => !self.presence_off && !self.server_lacks_presence,
            (true, _) => !self.blf_off,
            (false, _) => !self.presence_off,
        }
    }

    /// The registrar listed the event packages it supports (`Allow-Events`, RFC 6665 §8.2.2):
    /// "auto" (`enableblf` / `enablepresence` 1) does not ask for one it leaves out.
    pub(crate) fn on_server_packages(&mut self, packages: &[String]) {
        let has = |p: &str| packages.iter().any(|x| x == p);
        self.server_lacks_dialog = !has("dialog");
        self.server_lacks_presence = !has("presence");
    }

    /// Whether the registrar's `Allow-Events` leaves out the package of BLF or presence.
    pub(crate) fn server_lacks(&self, blf: bool) -> bool {
        if blf {
            self.server_lacks_dialog
        } else {
            self.server_lacks_presence
        }
    }

    /// A NOTIFY of a watch arrived: the server does the package.
    pub(crate) fn on_success(&mut self, blf: bool) {
        if blf {
            self.blf_confirmed = true;
        }
    }

    /// A watch subscription failed with `code`; true when this switches the feature off.
    pub(crate) fn on_failure(&mut self, blf: bool, mode: i64, code: u16) -> bool {
        let off = match (blf, mode) {
            (true, 1) => {
                cannot_do_package(code) || (!self.blf_confirmed && !about_the_watched_user(code))
            }
            (true, 2) | (false, 1) => cannot_do_package(code),
            _ => false,
        };
        let slot = if blf {
            &mut self.blf_off
        } else {
            &mut self.presence_off
        };
        let newly = off && !*slot;
        *slot |= off;
        newly
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn auto_asks_only_for_packages_the_registrars_allow_events_lists() {
        let mut w = super::WatchSwitch::default();
        w.on_server_packages(&["message-summary".into(), "presence".into()]);
        assert!(w.allowed(false, 1), "presence listed");
        assert!(!w.allowed(true, 1), "dialog not listed: BLF auto stays off");
        assert!(w.server_lacks(true) && !w.server_lacks(false));
        // 2 and 3 ask anyway (the list is advisory).
        assert!(w.allowed(true, 2) && w.allowed(true, 3));
        // A later list with both allows both again.
        w.on_server_packages(&["dialog".into(), "presence".into()]);
        assert!(w.allowed(true, 1) && w.allowed(false, 1));
    }

    #[test]
    fn enableblf_auto_switches_off_after_a_first_refusal_and_on_after_a_notify() {
        let mut w = super::WatchSwitch::default();
        assert!(w.allowed(true, 1));
        for code in [404, 410, 480, 484, 604] {
            assert!(
                !w.on_failure(true, 1, code),
                "auto: {code} is about one watched user, not the server"
            );
        }
        assert!(w.allowed(true, 1));
        assert!(
            w.on_failure(true, 1, 403),
            "auto: any other refusal before success"
        );
        assert!(!w.allowed(true, 1));
        assert!(w.allowed(true, 3), "force ignores the switch");
        assert!(!w.allowed(true, 0));
        let mut w = super::WatchSwitch::default();
        w.on_success(true);
        assert!(
            !w.on_failure(true, 1, 404),
            "auto after a NOTIFY: a missing user is no reason"
        );
        assert!(w.on_failure(true, 1, 489));
    }

    #[test]
    fn enableblf_enable_and_enablepresence_auto_switch_off_only_without_the_package() {
        let mut w = super::WatchSwitch::default();
        assert!(!w.on_failure(true, 2, 404));
        assert!(!w.on_failure(true, 2, 408));
        assert!(w.allowed(true, 2));
        assert!(w.on_failure(true, 2, 489));
        assert!(!w.allowed(true, 2));
        assert!(!w.on_failure(true, 3, 489), "force never");
        assert!(!w.on_failure(false, 1, 403));
        assert!(w.on_failure(false, 1, 501));
        assert!(!w.allowed(false, 1));
        assert!(w.allowed(false, 2), "always");
        assert!(!w.allowed(false, 0));
        assert!(!w.on_failure(false, 2, 489));
    }

    use super::*;

    #[test]
    fn a_blf_notify_ending_with_rejected_or_noresource_and_no_body_is_a_refusal() {
        let ended = |reason: &str| SubscriptionState::Terminated {
            reason: Some(reason.into()),
            retry_after: None,
        };
        assert!(refused_by_notifier(&ended("noresource"), ""));
        assert!(refused_by_notifier(&ended("Rejected"), "\r\n"));
        // A final state, a timeout, or an end with no reason is not a refusal.
        assert!(!refused_by_notifier(
            &ended("noresource"),
            "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\"/>"
        ));
        assert!(!refused_by_notifier(&ended("timeout"), ""));
        assert!(!refused_by_notifier(
            &SubscriptionState::Terminated {
                reason: None,
                retry_after: None
            },
            ""
        ));
        assert!(!refused_by_notifier(
            &SubscriptionState::Active { expires: Some(60) },
            ""
        ));
    }

    #[test]
    fn pidf_basic_status_and_activities_map_to_presence_states() {
        let open = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="a"><status><basic>open</basic></status><note>At my desk</note></tuple></presence>"#;
        assert_eq!(
            presence_state(open),
            ("Available".into(), "At my desk".into())
        );
        let busy = open.replace("</tuple>", "</tuple><dm:person><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>");
        assert_eq!(presence_state(&busy).0, "Speaking");
        let closed = open.replace(">open<", ">closed<");
        assert_eq!(presence_state(&closed).0, "Offline");
        assert_eq!(presence_state("garbage").0, "Unknown");
    }

    #[test]
    fn mwi_subscription_follows_mwisubscribe_and_a_configured_voicemail_number() {
        // Default (unset or 1): only with a voicemail number the user gave.
        assert!(!wants_mwi_subscription(None, "", false, false));
        assert!(!wants_mwi_subscription(Some(1), "  ", false, false));
        assert!(wants_mwi_subscription(None, "*97", false, false));
        assert!(wants_mwi_subscription(Some(1), "*97", false, false));
        // A number learned from the server's own NOTIFY does not ask for a subscription.
        assert!(!wants_mwi_subscription(None, "sip:*97@vm", true, false));
        // 0 never, 2 always.
        assert!(!wants_mwi_subscription(Some(0), "*97", false, false));
        assert!(wants_mwi_subscription(Some(2), "", false, false));
        assert!(wants_mwi_subscription(Some(2), "sip:*97@vm", true, false));
        // A registrar whose Allow-Events lists message-summary: subscribed by default, never
        // with 0.
        assert!(wants_mwi_subscription(None, "", false, true));
        assert!(wants_mwi_subscription(Some(1), "sip:*97@vm", true, true));
        assert!(!wants_mwi_subscription(Some(0), "", false, true));
    }

    #[test]
    fn message_account_is_the_voicemail_uri_of_a_message_summary() {
        let body = "Messages-Waiting: yes\r\nMessage-Account: <sip:*97@vm.example>\r\nVoice-Message: 2/8 (0/2)\r\n";
        assert_eq!(message_account(body).as_deref(), Some("sip:*97@vm.example"));
        assert_eq!(
            message_account("message-account:sip:alice@vmail.example.com").as_deref(),
            Some("sip:alice@vmail.example.com")
        );
        assert_eq!(message_account("Messages-Waiting: no\r\n"), None);
        assert_eq!(message_account("Message-Account:   \r\n"), None);
        assert_eq!(message_account("Message-Account: a b"), None);
    }

    #[test]
    fn dialog_info_gives_blf_direction_state_and_callid() {
        let confirmed = r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:1002@pbx"><dialog id="d1" call-id="abc@h" direction="recipient"><state>confirmed</state></dialog></dialog-info>"#;
        assert_eq!(
            blf_state(confirmed),
            ("receiver".into(), "confirmed".into(), "abc@h".into())
        );
        let idle = r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="2" state="full" entity="sip:1002@pbx"/>"#;
        assert_eq!(blf_state(idle).1, "terminated");
        assert_eq!(
            blf_state("<dialog id=\"x\"><state>weird</state></dialog>").1,
            "unknown"
        );
    }

    #[test]
    fn own_presence_documents_follow_the_status_names() {
        let p = own_pidf("sip:1001@pbx", "Away").unwrap();
        assert_eq!(presence_state(&p).0, "Away");
        assert_eq!(
            presence_state(&own_pidf("sip:a@b", "Online").unwrap()).0,
            "Available"
        );
        assert_eq!(
            presence_state(&own_pidf("sip:a@b", "Offline").unwrap()).0,
            "Offline"
        );
        assert!(own_pidf("sip:a@b", "online").is_none(), "case sensitive");
    }
}
