//! The API functions about lines, call state queries, devices and diagnostics, and the
//! documented functions this engine cannot or does not yet do (they answer with a clear error
//! instead of "unknown function").

use serde_json::Value;

use webphone_media::{Direction as MediaDirection, Negotiated};

use super::{
    arg, bad, sdp, CallPhase, Core, LineSel, Peer, Severity, MUTE_IN, MUTE_OUT, SETLINE_HOLD,
};
use crate::phone::ApiError;

/// STATUS hold codes (notifications §1): we hold, the peer holds us, both.
pub(super) const HOLD_LOCAL: u8 = 2;
pub(super) const HOLD_REMOTE: u8 = 3;
pub(super) const HOLD_BOTH: u8 = 4;

fn hold_code(local: bool, remote: bool) -> u8 {
    match (local, remote) {
        (false, false) => 0,
        (true, false) => HOLD_LOCAL,
        (false, true) => HOLD_REMOTE,
        (true, true) => HOLD_BOTH,
    }
}

/// Our media direction with local mute applied: a muted microphone stops sending, muted
/// playback stops playing (RFC 3264 §5.1 directions, applied locally).
pub(super) fn muted(neg: &Negotiated, mute: u8) -> Negotiated {
    let (mut send, mut recv) = match neg.direction {
        MediaDirection::SendRecv => (true, true),
        MediaDirection::SendOnly => (true, false),
        MediaDirection::RecvOnly => (false, true),
        MediaDirection::Inactive => (false, false),
    };
    if mute & MUTE_IN != 0 {
        send = false;
    }
    if mute & MUTE_OUT != 0 {
        recv = false;
    }
    let mut n = neg.clone();
    n.direction = match (send, recv) {
        (true, true) => MediaDirection::SendRecv,
        (true, false) => MediaDirection::SendOnly,
        (false, true) => MediaDirection::RecvOnly,
        (false, false) => MediaDirection::Inactive,
    };
    n
}

/// The mute bits for an API direction (0 both, 1 playback, 2 microphone).
pub(super) fn mute_bits(direction: i64) -> Option<u8> {
    match direction {
        0 => Some(MUTE_IN | MUTE_OUT),
        1 => Some(MUTE_OUT),
        2 => Some(MUTE_IN),
        _ => None,
    }
}

/// A boolean API argument ("true"/"false", "1"/"0", ...).
fn bool_arg(args: &[String], i: usize, usage: &str) -> Result<bool, ApiError> {
    arg(args, i)
        .and_then(crate::params::parse_bool)
        .ok_or_else(|| bad(usage))
}

/// A device kind argument: 0 recording, 1 playback, 2 ringer, 3 camera.
fn device_arg(args: &[String], usage: &str) -> Result<i64, ApiError> {
    match arg(args, 0).map(str::trim).map(str::parse::<i64>) {
        Some(Ok(d)) if (0..=3).contains(&d) => Ok(d),
        _ => Err(bad(usage)),
    }
}

fn not_supported(f: &str, why: &str) -> ApiError {
    ApiError::Failed(format!("{f} is not supported by this engine: {why}"))
}

/// `jvoip(name, ...)`: the Java/NS low-level API does not exist here; the refusal names the
/// high-level way to do what the documented low-level calls do.
fn jvoip_refusal(name: &str) -> ApiError {
    let name = name.trim();
    let instead = match name.to_ascii_lowercase().as_str() {
        "api_call" => "; use call(number) instead",
        "api_dtmf" => "; use dtmf(digits) instead",
        "api_vad" => "; set the vadstat parameter to 3 for VAD notifications instead",
        _ => "",
    };
    let what = if name.is_empty() {
        "jvoip".to_string()
    } else {
        format!("jvoip({})", crate::notify::field(name))
    };
    ApiError::Failed(format!(
        "{what} is not supported by this engine: it is the Java/NS low-level API{instead}"
    ))
}

impl Core {
    /// The lines an API call addresses when it names none: a recent `setline(-2|-1)`, else
    /// the active line.
    pub(super) fn default_sel(&self, given: Option<&str>) -> Result<LineSel, ApiError> {
        let sel = LineSel::parse(given).map_err(bad)?;
        let explicit = given.is_some_and(|g| !g.trim().is_empty());
        if !explicit {
            if let Some((s, at)) = self.setline {
                if at.elapsed() < SETLINE_HOLD {
                    return Ok(s);
                }
            }
        }
        Ok(sel)
    }

    /// The `listcontacts` answer for `contacts`: one line each, plus the voicemail number as
    /// a virtual entry when `with_voicemail`; the documented null when there is nothing.
    pub(super) fn contact_list(
        &self,
        contacts: &[crate::profile::Contact],
        with_voicemail: bool,
    ) -> Value {
        let mut lines: Vec<String> = contacts.iter().map(|c| c.to_line()).collect();
        let voicemail = self.params.get("voicemailnum");
        if with_voicemail && !voicemail.trim().is_empty() {
            let vm = crate::profile::Contact {
                name: "Voicemail".into(),
                numbers: vec![voicemail],
                ..Default::default()
            };
            lines.push(vm.to_line());
        }
        if lines.is_empty() {
            Value::Null
        } else {
            Value::from(lines.join("\r\n"))
        }
    }

    /// `ismuted()`: the active line's call is muted in some direction.
    pub(super) fn active_is_muted(&self) -> bool {
        self.lines
            .active()
            .and_then(|n| self.lines.get(n))
            .is_some_and(|l| l.mute != 0)
    }

    /// `isonhold()`: we hold the active line's call (the peer holding us does not count).
    pub(super) fn active_is_on_hold(&self) -> bool {
        self.lines
            .active()
            .and_then(|n| self.lines.get(n))
            .is_some_and(|l| l.hold == HOLD_LOCAL || l.hold == HOLD_BOTH)
    }

    /// `isencrypted()`: -1 without a call, 2 when the active call's media is SRTP, else 0.
    pub(super) fn active_encryption(&self) -> i64 {
        match self.lines.active().and_then(|n| self.lines.get(n)) {
            None => -1,
            Some(l) if l.neg.as_ref().is_some_and(Negotiated::is_encrypted) => 2,
            Some(_) => 0,
        }
    }

    fn line_of_callid(&self, callid: &str) -> Option<usize> {
        self.lines
            .iter()
            .find(|(_, l)| !callid.is_empty() && l.callid == callid)
            .map(|(n, _)| n)
    }

    /// Functions beyond the basic call flow (dispatched from `Core::api`).
    pub(super) async fn api_more(&mut self, f: &str, args: &[String]) -> Result<Value, ApiError> {
        match f {
            "setline" => self.setline_api(args),
            "getline" => Ok(Value::from(self.lines.active().unwrap_or(0))),
            "linetocallid" => {
                let sel = LineSel::parse(arg(args, 0)).map_err(bad)?;
                let n = self.lines.select(sel).into_iter().next();
                Ok(Value::from(
                    n.and_then(|n| self.lines.get(n))
                        .map(|l| l.callid.clone())
                        .unwrap_or_default(),
                ))
            }
            "callidtoline" => {
                let id = arg(args, 0).unwrap_or("").trim();
                Ok(Value::from(self.line_of_callid(id).unwrap_or(0)))
            }
            "getlinedetails" => {
                let sel = LineSel::parse(arg(args, 0)).map_err(bad)?;
                let n = match sel {
                    LineSel::Number(n) => Some(n),
                    _ => self.lines.active(),
                };
                Ok(Value::from(self.line_details(n)))
            }
            "getlastcalldetails" => Ok(Value::from(self.last_call_details())),
            "getregfailreason" => Ok(Value::from(self.last_reg_failure.clone())),
            "getenginename" => Ok(Value::from("ns")),
            "getworkdir" => Ok(Value::from(self.work_dir.display().to_string())),
            "getlogs" => {
                let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
                Ok(Value::from(
                    logs.iter().cloned().collect::<Vec<_>>().join("\r\n"),
                ))
            }
            // Engine extension: the stored conversations (profile database).
            "chathistory" => self.chathistory_api(args),
            // Engine extension: RFC 3994 typing indications to a peer.
            "chatcomposing" => self.chatcomposing_api(args).await,
            // Engine extension: the skin's "Send log to support" (`logform_action`).
            "sendlogs" => {
                let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
                let text = logs.iter().cloned().collect::<Vec<_>>().join("\r\n");
                drop(logs);
                self.integrations
                    .upload_log(&self.params, text)
                    .map(|()| Value::Null)
                    .map_err(|e| ApiError::Failed(e.to_string()))
            }
            "ismuted" => Ok(Value::from(self.active_is_muted())),
            "mute" => self.mute_api(args),
            "hold" => self.hold_api(args),
            "isonhold" => Ok(Value::from(self.active_is_on_hold())),
            "isencrypted" => Ok(Value::from(self.active_encryption())),
            "ignore" => self.ignore_api(args),
            "videocall" => {
                // No video yet: the call goes ahead as a voice call.
                let number = arg(args, 0)
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| bad("usage: videocall(number)"))?;
                self.log(
                    Severity::Warning,
                    "video is not available: voice call instead",
                );
                let line = self.call(number).await?;
                Ok(Value::from(line))
            }
            "getdevicelist" => {
                let dev = device_arg(args, "usage: getdevicelist(dev): 0 recording, 1 playback")?;
                let dir = match dev {
                    0 => webphone_audio::Direction::Input,
                    1 | 2 => webphone_audio::Direction::Output,
                    _ => return Ok(Value::from("")),
                };
                let list = tokio::task::spawn_blocking(move || webphone_audio::list_devices(dir))
                    .await
                    .map_err(|e| ApiError::Failed(e.to_string()))?
                    .map_err(|e| ApiError::Failed(e.to_string()))?;
                Ok(Value::from(list.join("\r\n")))
            }
            "getdevice" => {
                let dev = device_arg(
                    args,
                    "usage: getdevice(dev): 0 recording, 1 playback, 2 ringer",
                )?;
                Ok(Value::from(match dev {
                    0 => self.params.get("audiodevicein"),
                    1 => self.params.get("audiodeviceout"),
                    2 => self.params.get("audiodevicering"),
                    _ => String::new(),
                }))
            }
            "setdevice" => {
                let usage =
                    "usage: setdevice(dev, name, immediate): dev 0 recording, 1 playback, 2 ringer";
                let dev = device_arg(args, usage)?;
                let name = arg(args, 1).unwrap_or("");
                let param = match dev {
                    0 => "audiodevicein",
                    1 => "audiodeviceout",
                    2 => "audiodevicering",
                    _ => return Err(not_supported("setdevice", "there is no camera support")),
                };
                self.params
                    .set(param, name)
                    .map_err(|e| bad(e.to_string()))?;
                // immediate: 0 default, 1 next call only, 2 now for the running calls too.
                let immediate = arg(args, 2)
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .unwrap_or(0);
                if immediate == 2 && dev != 2 {
                    self.reopen_devices().await;
                } else if !self.lines.is_empty() {
                    self.log(
                        Severity::Warning,
                        "the new device is used from the next call on",
                    );
                }
                Ok(Value::Null)
            }
            "delsettings" => self.delsettings_api(args),
            "sendchat" => self.sendchat_api(args).await,
            "checkpresence" => self.watch_api(args, false).await,
            "checkblf" => self.watch_api(args, true).await,
            "setpresencestatus" => self.setpresencestatus_api(args),
            "transfer" => self.transfer_api(args).await,
            "addcontact" => {
                let a = |i| arg(args, i).unwrap_or("").to_string();
                let contact = crate::profile::Contact {
                    name: a(0),
                    numbers: a(1)
                        .split('|')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect(),
                    favorite: false,
                    email: a(2),
                    address: a(3),
                    notes: a(4),
                    website: a(5),
                };
                if contact.name.trim().is_empty() && contact.numbers.is_empty() {
                    return Err(bad(
                        "usage: addcontact(fullname, number, email, address, notes, website)",
                    ));
                }
                let mut contact = contact;
                if contact.name.trim().is_empty() {
                    contact.name = contact.numbers[0].clone();
                }
                self.with_profile(|p| p.add_contact(&contact))?;
                Ok(Value::Null)
            }
            "listcontacts" => {
                let all = self.with_profile(|p| p.contacts())?;
                let with_voicemail =
                    crate::params::parse_bool(arg(args, 0).unwrap_or("false")) == Some(true);
                Ok(self.contact_list(&all, with_voicemail))
            }
            "getcontact" => {
                let (name, number) = (arg(args, 0).unwrap_or(""), arg(args, 1).unwrap_or(""));
                if name.trim().is_empty() && number.trim().is_empty() {
                    return Err(bad("usage: getcontact(name, number): give either or both"));
                }
                let found = self.with_profile(|p| p.find_contact(name, number))?;
                Ok(found.map_or(Value::Null, |c| Value::from(c.to_line())))
            }
            "delcontact" => {
                let (name, number) = (arg(args, 0).unwrap_or(""), arg(args, 1).unwrap_or(""));
                if name.trim().is_empty() && number.trim().is_empty() {
                    return Err(bad("usage: delcontact(name, number): give either or both"));
                }
                let n = self.with_profile(|p| p.delete_contacts(name, number))?;
                Ok(Value::from(n))
            }
            // Engine extension: the Settings page's microphone level and speaker test.
            "audiotest" => self.audiotest_api(args),
            // Engine extension: favourites (the catalog's addcontact has no such field).
            "setfavorite" => {
                let usage = "usage: setfavorite(name, number, state): name or number of the contact, state true or false";
                let (name, number) = (arg(args, 0).unwrap_or(""), arg(args, 1).unwrap_or(""));
                if name.trim().is_empty() && number.trim().is_empty() {
                    return Err(bad(usage));
                }
                let state = crate::params::parse_bool(arg(args, 2).unwrap_or("true"))
                    .ok_or_else(|| bad(usage))?;
                let n = self.with_profile(|p| p.set_favorite(name, number, state))?;
                if n == 0 {
                    return Err(ApiError::Failed(format!(
                        "no contact named {name:?} or with number {number:?}"
                    )));
                }
                Ok(Value::from(n))
            }
            // Engine extensions (docs/behaviour-choices.md): vCard import/export, voicemail.
            "importvcard" => self.importvcard_api(args),
            "exportvcard" => self.exportvcard_api(),
            "callvoicemail" => self.callvoicemail_api().await,
            "linkrequest" => self.linkrequest_api(args),
            "syncservercontacts" => self.sync_address_book(),
            "getvolume" => self.getvolume_api(args),
            "setvolume" => self.setvolume_api(args),
            "jvoip" => Err(jvoip_refusal(arg(args, 0).unwrap_or(""))),
            "devicepopup" => Err(not_supported(f, "device selection is in the settings")),
            "screenshare" | "stopscreenshare" => {
                Err(not_supported(f, "screen sharing needs a browser engine"))
            }
            "mutevideo" | "setvideodisplaysize" => Err(not_supported(f, "video is not available")),
            // Documented functions whose features arrive with later work.
            "voicerecord" => self.voicerecord_api(args),
            "getsipmessage" => self.getsipmessage_api(args),
            "getsipheader" => self.getsipheader_api(args),
            // An SMS goes to the `sms` HTTP API when that parameter starts with `*`, else out
            // as a MESSAGE for the server to convert.
            "sendsms" if crate::integrations::Integrations::sms_is_http(&self.params) => {
                let number = arg(args, 0).unwrap_or("").trim();
                let msg = arg(args, 1).unwrap_or("");
                if number.is_empty() || msg.is_empty() {
                    return Err(bad("usage: sendsms(number, message, from)"));
                }
                self.integrations
                    .send_sms(&self.params, number, msg, arg(args, 2).unwrap_or(""))
                    .map(|()| Value::Null)
                    .map_err(|e| ApiError::Failed(e.to_string()))
            }
            "sendsms" => self.sendchat_api(args).await,
            "conference" => self.conference_api(args).await,
            "forward" => self.forward_api(args),
            "setsipheader" => self.setsipheader_api(args),
            "registerex" => self.registerex_api(args).await,
            _ => Err(ApiError::UnknownFunction),
        }
    }

    /// `forward(number)`: redirect the ringing incoming call (302, RFC 3261 §21.3.3); only
    /// before it is answered.
    fn forward_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let number = arg(args, 0)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("usage: forward(number)"))?;
        let sel = self.default_sel(arg(args, 1))?;
        let found = self
            .lines
            .select(sel)
            .into_iter()
            .find_map(|n| match self.lines.get(n) {
                Some(l) if l.phase == CallPhase::Incoming => match l.peer {
                    Peer::Sip(k) => Some((n, k)),
                    _ => None,
                },
                _ => None,
            });
        let Some((n, key)) = found else {
            return Err(ApiError::Failed(
                "no ringing incoming call to forward (forward works only before answering)".into(),
            ));
        };
        let uri = self.redirect_call(key, number)?;
        self.log(Severity::Event, &format!("line {n}: forwarded to {uri}"));
        Ok(Value::Null)
    }

    /// Runs `f` on the profile database; without a work folder an in-memory one is opened,
    /// so contacts and history work for the session.
    pub(super) fn with_profile<T>(
        &mut self,
        f: impl FnOnce(&mut crate::profile::Profile) -> Result<T, crate::profile::ProfileError>,
    ) -> Result<T, ApiError> {
        if self.profile.is_none() {
            let mem = crate::profile::Profile::open_path(std::path::Path::new(":memory:"))
                .map_err(|e| ApiError::Failed(e.to_string()))?;
            self.set_profile(Some(mem));
        }
        let Some(p) = &self.profile else {
            return Err(ApiError::Failed("no profile database".into()));
        };
        let mut guard = p.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard).map_err(|e| ApiError::Failed(e.to_string()))
    }

    /// `delsettings(1|2)`: 1 forgets the stored settings, 2 also every other user data of
    /// the profile; the start-up configuration stays in effect.
    fn delsettings_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let level = arg(args, 0)
            .and_then(|a| crate::profile::DelLevel::parse(a.trim()))
            .ok_or_else(|| bad("usage: delsettings(level): 1 settings, 2 everything"))?;
        if let Some(p) = &self.profile {
            p.lock()
                .unwrap_or_else(|e| e.into_inner())
                .delete_data(level)
                .map_err(|e| ApiError::Failed(e.to_string()))?;
        }
        self.params.forget_user_settings();
        let _ = self.params.take_persist_queue();
        Ok(Value::from(true))
    }

    /// After `setparameter("profile", ..)`: the other profile's database and stored values.
    pub(super) fn switch_profile(&mut self) {
        let Some(dir) = self.profile.as_ref().map(|_| self.work_dir.clone()) else {
            return;
        };
        self.profile = None;
        let profile = crate::phone::open_profile(&dir, &mut self.params);
        self.set_profile(profile);
    }

    /// `hold(state)`: a re-INVITE with our media direction per `holdtype` (RFC 3264 §8.4:
    /// sendonly, recvonly or inactive), or back to sendrecv; the line changes when the answer
    /// arrives.
    pub(super) fn hold_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let state = bool_arg(args, 0, "usage: hold(state): true to hold, false to resume")?;
        let holdtype = self.params.get_i64("holdtype").unwrap_or(-1);
        let dir = match (state, holdtype) {
            (false, _) => MediaDirection::SendRecv,
            (true, -1 | 2) => MediaDirection::SendOnly,
            (true, 3) => MediaDirection::RecvOnly,
            (true, 4) => MediaDirection::Inactive,
            (true, -2 | 0 | 1) => {
                return Err(ApiError::Failed(format!(
                    "hold is switched off (holdtype {holdtype})"
                )))
            }
            (true, other) => return Err(bad(format!("invalid holdtype {other}"))),
        };
        let sel = self.default_sel(arg(args, 1))?;
        let lines = self.with_conference_legs(self.lines.select(sel));
        let Some(sip) = self.sip.clone() else {
            return Err(ApiError::Failed("engine not started".into()));
        };
        let mut done = 0;
        for n in lines {
            let Some(l) = self.lines.get_mut(n) else {
                continue;
            };
            // From here on the hold (or resume) is the user's: choosing the line later must
            // not undo it as if `autohold` had held it (autohold marks its own holds after
            // calling this).
            l.auto_held = false;
            let Peer::Sip(call) = l.peer else { continue };
            let (CallPhase::Connected, Some(media), Some(prefs)) = (l.phase, &l.media, &l.offer)
            else {
                continue;
            };
            let already = l.hold == HOLD_LOCAL || l.hold == HOLD_BOTH;
            // Also when the same change is on its way: a second re-INVITE would cross it.
            if (already == state && l.hold_pending.is_none()) || l.hold_pending == Some(state) {
                done += 1;
                continue;
            }
            l.sdp_ver += 1;
            let offer = prefs.clone().with_direction(dir);
            // Re-offers repeat our ICE attributes (RFC 8839 §4.4.1.1: no ICE restart).
            let text = media.add_ice_to_sdp(
                &sdp::create_offer(l.sdp_origin, l.sdp_ver, media.sdp_addr(), &offer),
                true,
            );
            l.offer = Some(offer);
            l.hold_pending = Some(state);
            sip.reinvite(call, text)
                .map_err(|e| ApiError::Failed(format!("hold: {e}")))?;
            done += 1;
        }
        if done == 0 {
            return Err(ApiError::Failed("no connected call to hold".into()));
        }
        Ok(Value::Null)
    }

    /// The answer to our re-INVITE: new media parameters and, for hold/resume, the new state.
    pub(super) fn on_reanswer(&mut self, n: usize, sdp: Option<&str>) {
        let Some(l) = self.lines.get_mut(n) else {
            return;
        };
        let pending = l.hold_pending.take();
        if let (Some(answer), Some(prefs)) = (sdp, l.offer.as_ref()) {
            match sdp::apply_answer(answer, prefs) {
                Ok(neg) => {
                    l.neg = Some(neg);
                    // The peer's ICE attributes: checks of a moved socket start, a restart
                    // it answered with new credentials runs (RFC 8839 §4.4.1.2).
                    if let Some(m) = l.media.as_mut() {
                        m.update_remote_ice(answer, true);
                    }
                }
                Err(e) => {
                    let msg = format!("unusable answer to our re-INVITE: {e}");
                    self.log(Severity::Warning, &msg);
                    return;
                }
            }
        }
        let Some(l) = self.lines.get_mut(n) else {
            return;
        };
        if let Some(hold) = pending {
            let remote = l.hold == HOLD_REMOTE || l.hold == HOLD_BOTH;
            l.hold = hold_code(hold, remote);
        }
        self.apply_media(n);
        let text = self.hold_text(n);
        self.emit_line(n, text);
    }

    /// A re-INVITE or UPDATE with an offer from the peer (e.g. it puts us on hold): answer
    /// from our preferences and follow its direction (RFC 3264 §8).
    pub(super) fn on_reoffer(&mut self, n: usize, call: webphone_sip::CallKey, offer: &str) {
        let fallback = self.media_prefs();
        let Some(sip) = self.sip.clone() else { return };
        let Some(l) = self.lines.get_mut(n) else {
            return;
        };
        let Some(local) = l.media.as_ref().map(|m| m.sdp_addr()) else {
            // No media yet (an early re-offer): let the SIP layer's fallback answer it.
            return;
        };
        // Our own preferred direction stays sendrecv: the answer mirrors the offer.
        let mut prefs = l
            .offer
            .clone()
            .unwrap_or(fallback)
            .with_direction(MediaDirection::SendRecv);
        // A DTLS-SRTP call keeps its association: our role in it stays (RFC 8842 §5.3).
        prefs.dtls_role = l.neg.as_ref().and_then(|n| n.dtls.as_ref()).map(|d| d.role);
        l.sdp_ver += 1;
        match sdp::answer_offer_with_version(offer, l.sdp_origin, l.sdp_ver, local, &prefs) {
            Ok((answer, neg)) => {
                let peer_holds = matches!(
                    neg.direction,
                    MediaDirection::RecvOnly | MediaDirection::Inactive
                );
                let local_hold = l.hold == HOLD_LOCAL || l.hold == HOLD_BOTH;
                l.hold = match (local_hold, peer_holds) {
                    (false, false) => 0,
                    (true, false) => HOLD_LOCAL,
                    (false, true) => HOLD_REMOTE,
                    (true, true) => HOLD_BOTH,
                };
                l.neg = Some(neg);
                let answer = match l.media.as_mut() {
                    Some(m) => {
                        // An ICE restart in the offer changes our credentials in the answer.
                        m.update_remote_ice(offer, false);
                        m.add_ice_to_sdp(&answer, false)
                    }
                    None => answer,
                };
                sip.answer_reoffer(call, answer);
                self.apply_media(n);
                let text = self.hold_text(n);
                self.emit_line(n, text);
            }
            Err(e) => {
                // RFC 3261 §14.2: an offer we cannot accept gets 488; the call goes on.
                sip.answer_reoffer(call, String::new());
                self.log(Severity::Warning, &format!("re-offer refused: {e}"));
            }
        }
    }

    /// Pushes the line's negotiated media, with local mute and hold applied, to its session.
    pub(super) fn apply_media(&mut self, n: usize) {
        let Some(l) = self.lines.get(n) else { return };
        if let (Some(m), Some(neg)) = (&l.media, &l.neg) {
            let mic_muted = l.mute & MUTE_IN != 0;
            // A conference member on the mixer: the mixer leaves our microphone out of what
            // this peer hears, and RTP goes on with the other members' voices.
            let on_mixer = l
                .port
                .as_ref()
                .is_some_and(|p| p.route == super::routing::Route::Mixer);
            let in_mix = on_mixer && l.join_conference;
            if on_mixer {
                if let Some(hub) = &self.hub {
                    hub.handle.set_mic_muted(n as u32, in_mix && mic_muted);
                }
            }
            // `sendrtponmuted`: a muted microphone sends silence instead of stopping RTP.
            let zeroed =
                !in_mix && mic_muted && self.params.get_bool("sendrtponmuted").unwrap_or(false);
            let mute = if zeroed || in_mix {
                l.mute & !MUTE_IN
            } else {
                l.mute
            };
            m.set_mic_muted(zeroed);
            let mut effective = muted(neg, mute);
            if l.hold == HOLD_LOCAL || l.hold == HOLD_BOTH {
                // While we hold, nothing of ours goes out and nothing is played, whatever the
                // signalled direction (no microphone audio reaches a held party).
                effective.direction = MediaDirection::Inactive;
            }
            m.update(effective);
        }
    }

    fn hold_text(&self, n: usize) -> &'static str {
        match self.lines.get(n) {
            Some(l) if l.hold != 0 => "Hold",
            Some(l) if l.mute != 0 => "Muted",
            _ => "InCall",
        }
    }

    fn setline_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let a = arg(args, 0).unwrap_or("").trim();
        if a.is_empty() {
            return Err(bad(
                "usage: setline(line): a line number, a SIP Call-ID or a peer name",
            ));
        }
        if let Ok(num) = a.parse::<i64>() {
            return match num {
                -2 => {
                    self.setline = Some((LineSel::All, std::time::Instant::now()));
                    Ok(Value::Null)
                }
                -1 => {
                    self.setline = Some((LineSel::Current, std::time::Instant::now()));
                    Ok(Value::Null)
                }
                n if n >= 1 && self.lines.set_active(n as usize) => {
                    self.setline = None;
                    self.auto_hold_others(n as usize, super::autohold::Trigger::LineSwitch);
                    Ok(Value::Null)
                }
                // A number that is no line may be a Call-ID or a peer's name (`setline("1003")`).
                n if n >= 1
                    && self
                        .line_of_callid(a)
                        .or_else(|| self.peer_line(a))
                        .is_some() =>
                {
                    self.switch_to_peer(a)
                }
                n => Err(ApiError::Failed(format!("no call on line {n}"))),
            };
        }
        self.switch_to_peer(a)
    }

    /// The line of the call whose peer name is `name` (ignoring case).
    fn peer_line(&self, name: &str) -> Option<usize> {
        self.lines
            .iter()
            .find(|(_, l)| l.peername.eq_ignore_ascii_case(name))
            .map(|(n, _)| n)
    }

    /// `setline` by Call-ID or peer name.
    fn switch_to_peer(&mut self, a: &str) -> Result<Value, ApiError> {
        let Some(n) = self.line_of_callid(a).or_else(|| self.peer_line(a)) else {
            return Err(ApiError::Failed(format!(
                "no call with Call-ID or peer '{a}'"
            )));
        };
        self.lines.set_active(n);
        self.setline = None;
        // Choosing a line by Call-ID or peer is a line switch like choosing it by number.
        self.auto_hold_others(n, super::autohold::Trigger::LineSwitch);
        Ok(Value::Null)
    }

    /// `linkrequest(name, tokens)` (engine extension): asks an API link parameter
    /// (`newuser`, `recharge`, `p2p`, `callback`, `creditrequest`, `ratingrequest`) in the
    /// background; `tokens` is a form-encoded list (`USERNAME=alice&PASSWORD=...`) of token
    /// values for this request. The answer comes as a notification (`NEWUSER`, `ANSWER`,
    /// `CREDIT` or `RATING`).
    fn linkrequest_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let usage = "usage: linkrequest(name, tokens): name newuser|recharge|p2p|callback|creditrequest|ratingrequest, tokens like USERNAME=alice&PASSWORD=secret";
        let name = arg(args, 0).map(str::trim).unwrap_or("");
        if name.is_empty() {
            return Err(bad(usage));
        }
        let tokens = arg(args, 1).map(str::trim).unwrap_or("");
        let extra: Vec<(String, String)> = if tokens.is_empty() {
            Vec::new()
        } else {
            // Form decoding (`+`, `%XX`) through a URL's query.
            let url = reqwest::Url::parse(&format!("http://linkrequest.invalid/?{tokens}"))
                .map_err(|_| bad(usage))?;
            url.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        };
        self.integrations
            .request_link(&self.params, name, &extra)
            .map_err(|e| match e {
                crate::integrations::IntegrationError::UnknownLink(_)
                | crate::integrations::IntegrationError::UnknownToken(_) => bad(e.to_string()),
                e => ApiError::Failed(e.to_string()),
            })?;
        Ok(Value::Null)
    }

    /// `muteholdalllines=1`: mute and hold that reach one leg of the local conference reach
    /// every leg of it (the catalog's "mute/hold all legs on conference calls"; with 0 they
    /// act on the selected line only). Lines outside the conference are not added.
    fn with_conference_legs(&self, mut lines: Vec<usize>) -> Vec<usize> {
        if !self.params.get_bool("muteholdalllines").unwrap_or(false) {
            return lines;
        }
        let in_conference = |n: &usize| self.lines.get(*n).is_some_and(|l| l.join_conference);
        if !lines.iter().any(in_conference) {
            return lines;
        }
        for (n, l) in self.lines.iter() {
            if l.join_conference && !lines.contains(&n) {
                lines.push(n);
            }
        }
        lines.sort_unstable();
        lines
    }

    pub(super) fn mute_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let usage = "usage: mute(state, direction): state true|false, direction 0 both, 1 playback, 2 microphone";
        let state = bool_arg(args, 0, usage)?;
        let dir = match arg(args, 1).map(str::trim).filter(|s| !s.is_empty()) {
            Some(d) => d.parse::<i64>().map_err(|_| bad(usage))?,
            // `defmute`: 0, 3 and 4 mean both directions, 1 playback, 2 microphone, 5 no mute.
            None => match self.params.get_i64("defmute").unwrap_or(0) {
                1 => 1,
                2 => 2,
                5 if state => {
                    return Err(ApiError::Failed("mute is switched off (defmute 5)".into()))
                }
                _ => 0,
            },
        };
        let bits = mute_bits(dir).ok_or_else(|| bad(usage))?;
        let sel = self.default_sel(arg(args, 2))?;
        let lines = self.with_conference_legs(self.lines.select(sel));
        if lines.is_empty() {
            return Err(ApiError::Failed("no call to mute".into()));
        }
        for n in lines {
            let Some(l) = self.lines.get_mut(n) else {
                continue;
            };
            // The user's mute from here on (see `auto_held` in hold_api).
            l.auto_muted = false;
            l.mute = if state { l.mute | bits } else { l.mute & !bits };
            self.apply_media(n);
            let text = self.hold_text(n);
            self.emit_line(n, text);
        }
        Ok(Value::Null)
    }

    fn ignore_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let sel = self.default_sel(arg(args, 0))?;
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
                    .is_some_and(|l| l.phase == CallPhase::Incoming && !l.ignored)
            })
            .ok_or_else(|| ApiError::Failed("no incoming call to ignore".into()))?;
        // Nothing is sent: the caller keeps ringing until it gives up (its CANCEL ends the
        // line as usual).
        if let Some(l) = self.lines.get_mut(n) {
            l.ignored = true;
        }
        self.log(
            Severity::Event,
            &format!("incoming call on line {n} ignored"),
        );
        Ok(Value::from(n))
    }

    /// `LINEDETAILS,line,state,callid,remoteusername,localusername,type,localaddress,serveraddress,mute,hold,remotefullname`
    pub(super) fn line_details(&self, n: Option<usize>) -> String {
        let local = self
            .sip
            .as_ref()
            .map(|s| s.local_addr().to_string())
            .unwrap_or_default();
        let me = crate::notify::field(&self.username());
        match n.and_then(|n| self.lines.get(n).map(|l| (n, l))) {
            Some((n, l)) => {
                let me = crate::notify::field(&self.local_name(&l.local_user));
                let state = match l.phase {
                    CallPhase::Setup => "Setup",
                    CallPhase::Ringing | CallPhase::Incoming => "Ringing",
                    CallPhase::Connected if l.hold != 0 => "Hold",
                    CallPhase::Connected if l.mute != 0 => "Muted",
                    CallPhase::Connected => "InCall",
                };
                format!(
                    "LINEDETAILS,{n},{state},{},{},{me},{},{local},{},{},{},{}",
                    crate::notify::field(&l.callid),
                    crate::notify::field(&l.peername),
                    l.direction as u8,
                    crate::notify::field(&l.peeraddress),
                    if l.mute != 0 { 2 } else { 0 },
                    l.hold,
                    crate::notify::text(&l.peerdisplayname),
                )
            }
            None => format!(
                "LINEDETAILS,{},Ready,,,{me},0,{local},{},0,0,",
                n.unwrap_or(0),
                crate::notify::field(&self.server()),
            ),
        }
    }

    /// A one-line summary of the last ended call (the catalog leaves the format open): the
    /// CDR fields, then codec and RTP counters as `key=value` pairs.
    pub(super) fn last_call_details(&self) -> String {
        let Some(lc) = &self.last_call else {
            return String::new();
        };
        let c = &lc.cdr;
        let mut s = format!(
            "line={},peer={},caller={},called={},direction={},connecttime={},duration={},discparty={},reason={}",
            c.line,
            crate::notify::field(&c.peername),
            crate::notify::field(&c.caller),
            crate::notify::field(&c.called),
            c.direction,
            c.connecttime_ms,
            c.duration_ms,
            c.discparty as u8,
            crate::notify::field(&c.reason),
        );
        if !lc.codec.is_empty() {
            s.push_str(&format!(",codec={}", lc.codec));
        }
        if let Some(st) = &lc.stats {
            s.push_str(&format!(
                ",rtpsent={},rtprec={},rtploss={},jitter_ms={:.1}",
                st.packets_sent, st.packets_received, st.packets_lost, st.jitter_ms
            ));
        }
        s
    }
}

/// vCard import and export of the profile's contacts (engine extensions).
impl Core {
    /// `importvcard(text)`: adds or merges (by name, like `addcontact`) every card of a
    /// vCard 2.1/3.0/4.0 text in one transaction; returns how many contacts were written.
    fn importvcard_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let text = arg(args, 0).unwrap_or("");
        if text.trim().is_empty() {
            return Err(bad("usage: importvcard(vcard text)"));
        }
        let parsed = crate::profile::vcard::parse(text).map_err(|e| bad(e.to_string()))?;
        if parsed.skipped > 0 {
            self.log(
                Severity::Warning,
                &format!(
                    "importvcard: {} card(s) without a name or number skipped",
                    parsed.skipped
                ),
            );
        }
        let n = self.with_profile(|p| p.add_contacts(&parsed.contacts))?;
        Ok(Value::from(n))
    }

    /// `exportvcard()`: every contact as vCard 4.0 text (empty when there are none).
    fn exportvcard_api(&mut self) -> Result<Value, ApiError> {
        let all = self.with_profile(|p| p.contacts())?;
        Ok(Value::from(crate::profile::vcard::write(&all)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use webphone_media::Codec;

    fn neg(direction: MediaDirection) -> Negotiated {
        Negotiated {
            remote_rtp: SocketAddr::from(([127, 0, 0, 1], 4000)),
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: Some(101),
            direction,
            ptime_ms: 20,
            srtp: None,
            dtls: None,
            rtcp_mux: false,
            send_limits: Default::default(),
        }
    }

    #[test]
    fn microphone_mute_stops_sending_and_playback_mute_stops_playing() {
        let sr = neg(MediaDirection::SendRecv);
        assert_eq!(muted(&sr, MUTE_IN).direction, MediaDirection::RecvOnly);
        assert_eq!(muted(&sr, MUTE_OUT).direction, MediaDirection::SendOnly);
        assert_eq!(
            muted(&sr, MUTE_IN | MUTE_OUT).direction,
            MediaDirection::Inactive
        );
        assert_eq!(muted(&sr, 0).direction, MediaDirection::SendRecv);
        // A peer that only sends to us: muting the microphone leaves nothing to send.
        let ro = neg(MediaDirection::RecvOnly);
        assert_eq!(muted(&ro, MUTE_OUT).direction, MediaDirection::Inactive);
    }

    #[test]
    fn mute_directions_follow_the_api_codes() {
        assert_eq!(mute_bits(0), Some(MUTE_IN | MUTE_OUT));
        assert_eq!(mute_bits(1), Some(MUTE_OUT));
        assert_eq!(mute_bits(2), Some(MUTE_IN));
        assert_eq!(mute_bits(3), None);
    }
}
