//! Formatting of the low-level notification strings (the `onEvents` stream).
//!
//! Every format here follows the project's catalog of wire formats (START, STATUS, CDR, EVENT,
//! LOG). Fields are comma separated with no spaces and no quoting. Because no escaping exists,
//! a comma inside a fixed field would shift every later field for a consumer, so fixed fields
//! have commas replaced by spaces; the last free-text field of a type keeps its commas (consumers
//! split only the leading fields). Line breaks are never allowed inside one notification.

/// Removes characters that would break the framing of a fixed (non-final) field.
pub fn field(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ',' => ' ',
            '\r' | '\n' => ' ',
            c => c,
        })
        .collect()
}

/// Removes line breaks from a final free-text field (commas are kept).
pub fn text(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// `START,what` where `what` is `api` or `sip`.
pub fn start(what: &str) -> String {
    format!("START,{what}")
}

/// Severity of an EVENT or LOG notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Event,
    Warning,
    Error,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Event => "EVENT",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
        }
    }
}

/// `EVENT,TYPE,txt`: something the user should see.
pub fn event(sev: Severity, txt: &str) -> String {
    format!("EVENT,{},{}", sev.as_str(), text(txt))
}

/// `LOG,TYPE,txt`: a detailed log entry.
pub fn log(sev: Severity, txt: &str) -> String {
    format!("LOG,{},{}", sev.as_str(), text(txt))
}

/// `DTMF,line,peername,status,text` for a received digit.
///
/// The catalog leaves `status` unexplained; we put how the digit arrived there (`RTP` for an
/// RFC 4733 telephone-event, `INFO` for SIP INFO) and the digit in `text`.
pub fn dtmf(line: i32, peername: &str, how: &str, digit: char) -> String {
    format!("DTMF,{line},{},{},{}", field(peername), field(how), digit)
}

/// `CHAT,line,peername,text`: an incoming message (the text keeps its commas).
pub fn chat(line: i32, peername: &str, txt: &str) -> String {
    format!("CHAT,{line},{},{}", field(peername), text(txt))
}

/// `CHATCOMPOSING,line,peername,composing` with 1 while the peer types, 0 when it stops.
pub fn chat_composing(line: i32, peername: &str, active: bool) -> String {
    format!(
        "CHATCOMPOSING,{line},{},{}",
        field(peername),
        u8::from(active)
    )
}

/// `CHATREPORT,line,peername,status,text`: delivery of our message (status 1 sending,
/// 2 sent, 3 failed with the reason in text); peername is the recipient.
pub fn chat_report(line: i32, peername: &str, status: u8, reason: &str) -> String {
    format!(
        "CHATREPORT,{line},{},{status},{}",
        field(peername),
        text(reason)
    )
}

/// Global registration state codes of the STATUS `registered` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegCode {
    Unknown = 0,
    NotNeeded = 1,
    Yes = 2,
    WorkingYes = 3,
    WorkingUnknown = 4,
    WorkingNo = 5,
    Unregistered = 6,
    Failed = 7,
}

/// All fields of one STATUS notification (the long form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `-1` for the general status, `1..N` for a line.
    pub line: i32,
    pub statustext: String,
    pub peername: String,
    pub localname: String,
    /// `1` outgoing (client), `2` incoming (server), as the catalog's examples use it.
    pub endpointtype: u8,
    pub peerdisplayname: String,
    pub callid: String,
    pub online: bool,
    pub registered: RegCode,
    /// `0` no, `1` setup or ringing, `2` speaking.
    pub incall: u8,
    pub mute: u8,
    pub hold: u8,
    /// `-1` unknown, `0` no, `1` weak, `2` yes, `3` strong.
    pub encrypted: i8,
    pub isvideo: bool,
}

impl Status {
    /// `STATUS,line,statustext,peername,localname,endpointtype,peerdisplayname,callid,online,registered,incall,mute,hold,encrypted,isvideo`
    pub fn format(&self) -> String {
        format!(
            "STATUS,{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.line,
            field(&self.statustext),
            field(&self.peername),
            field(&self.localname),
            self.endpointtype,
            field(&self.peerdisplayname),
            field(&self.callid),
            u8::from(self.online),
            self.registered as u8,
            self.incall,
            self.mute,
            self.hold,
            self.encrypted,
            u8::from(self.isvideo),
        )
    }
}

/// The extended STATUS sent at the end of a call when `jsscripstats` is on:
/// `STATUS,line,Connected,peername,localname,endpointtype,peerdisplayname,rtpsent,rtprec,rtploss,rtplosspercet,serverstats_if_received,callid`.
///
/// Counts are RTP packets; the loss percentage is of the packets expected; the server field
/// carries the peer's RTCP-reported loss percentage when its reports arrived (empty otherwise).
pub fn status_stats(
    line: i32,
    peername: &str,
    localname: &str,
    endpointtype: u8,
    peerdisplayname: &str,
    st: &webphone_media::MediaStats,
    callid: &str,
) -> String {
    let expected = st.packets_received + st.packets_lost;
    let pct = (st.packets_lost * 100).checked_div(expected).unwrap_or(0);
    let server = st
        .remote_fraction_lost
        .map(|f| format!("{:.0}", f * 100.0))
        .unwrap_or_default();
    format!(
        "STATUS,{line},Connected,{},{},{endpointtype},{},{},{},{},{pct},{server},{}",
        field(peername),
        field(localname),
        field(peerdisplayname),
        st.packets_sent,
        st.packets_received,
        st.packets_lost,
        field(callid),
    )
}

/// Who ended a call (CDR `discparty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscParty {
    NotSet = 0,
    Local = 1,
    Peer = 2,
    Undefined = 3,
}

/// One call detail record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdr {
    pub line: i32,
    pub peername: String,
    pub peerdisplayname: String,
    pub caller: String,
    pub called: String,
    pub peeraddress: String,
    /// Milliseconds from call initiation to connect (ringing included); for a call that never
    /// connected, from initiation to the end.
    pub connecttime_ms: u64,
    /// Milliseconds from connect to hang-up, 0 when never connected.
    pub duration_ms: u64,
    /// `1` outgoing, `2` incoming.
    pub direction: u8,
    pub discparty: DiscParty,
    pub reason: String,
}

impl Cdr {
    /// `CDR,line,peername,caller,called,peeraddress,connecttime,duration,discparty,reason`
    pub fn format(&self) -> String {
        format!(
            "CDR,{},{},{},{},{},{},{},{},{}",
            self.line,
            field(&self.peername),
            field(&self.caller),
            field(&self.called),
            field(&self.peeraddress),
            self.connecttime_ms,
            self.duration_ms,
            self.discparty as u8,
            text(&self.reason),
        )
    }

    /// Arguments of the `onCdr` callback: caller, called, connecttime, duration, direction,
    /// peerdisplayname, reason, line.
    pub fn callback_args(&self) -> Vec<serde_json::Value> {
        vec![
            self.caller.clone().into(),
            self.called.clone().into(),
            self.connecttime_ms.into(),
            self.duration_ms.into(),
            self.direction.into(),
            self.peerdisplayname.clone().into(),
            self.reason.clone().into(),
            self.line.into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ringing() -> Status {
        Status {
            line: 1,
            statustext: "Ringing".into(),
            peername: "2222".into(),
            localname: "1111".into(),
            endpointtype: 2,
            peerdisplayname: "Katie".into(),
            callid: "abc@host".into(),
            online: true,
            registered: RegCode::Yes,
            incall: 1,
            mute: 0,
            hold: 0,
            encrypted: 0,
            isvideo: false,
        }
    }

    #[test]
    fn status_long_form_has_fifteen_fields() {
        let s = ringing().format();
        assert_eq!(
            s,
            "STATUS,1,Ringing,2222,1111,2,Katie,abc@host,1,2,1,0,0,0,0"
        );
        assert_eq!(s.split(',').count(), 15);
    }

    #[test]
    fn commas_in_display_name_do_not_shift_fields() {
        let mut st = ringing();
        st.peerdisplayname = "Doe, John\r\nX".into();
        let s = st.format();
        assert_eq!(s.split(',').count(), 15);
        assert!(!s.contains('\n'));
    }

    #[test]
    fn cdr_has_reason_as_last_field() {
        let c = Cdr {
            line: 1,
            peername: "1002".into(),
            peerdisplayname: String::new(),
            caller: "1001".into(),
            called: "1002".into(),
            peeraddress: "127.0.0.1".into(),
            connecttime_ms: 1200,
            duration_ms: 5000,
            direction: 1,
            discparty: DiscParty::Local,
            reason: "BYE, normal".into(),
        };
        assert_eq!(
            c.format(),
            "CDR,1,1002,1001,1002,127.0.0.1,1200,5000,1,BYE, normal"
        );
        let args = c.callback_args();
        assert_eq!(args.len(), 8);
        assert_eq!(args[4], serde_json::json!(1));
    }

    #[test]
    fn event_and_log_keep_commas_in_text_but_not_newlines() {
        assert_eq!(event(Severity::Error, "a, b\nc"), "EVENT,ERROR,a, b c");
        assert_eq!(log(Severity::Warning, "x"), "LOG,WARNING,x");
        assert_eq!(start("sip"), "START,sip");
    }
}
