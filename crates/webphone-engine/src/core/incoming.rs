//! What happens to a new incoming call, decided before anything rings: the divert rules in
//! the order this engine applies them (the catalog gives the rules, not their order):
//! blacklist, `autoignore`, do-not-disturb (own presence `DND`), `callforwardalways` /
//! `calltransferalways`, busy rules (`rejectonbusy`, then `callforwardonbusy`), auto-answer
//! (`bargeinheader`, then `autoaccept` or an auto-answer header), else ring (with the
//! `callforwardonnoanswer` timer, see `timers`).

use crate::params::ParamStore;

/// The decision for an incoming INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Refuse with this final response (RFC 3261 §21) and CDR reason.
    Reject(u16, &'static str),
    /// Take the line but show and answer nothing; the caller rings until it gives up.
    Ignore,
    /// Answer at once.
    AutoAnswer,
    /// `bargeinheader`: answer at once without ringing or call-setup notifications, and join
    /// the call to a local conference with every connected call (barge-in / supervisor).
    Barge,
    /// Ring and wait for accept/reject.
    Ring,
    /// Redirect with 302 to this number (RFC 3261 §21.3.3): `callforwardalways`,
    /// `callforwardonbusy`.
    Forward(String),
    /// Answer, then transfer (REFER) to this number: `calltransferalways`, for servers that
    /// do not act on 3xx.
    TransferAlways(String),
}

/// What the engine knows about its own state when a call comes in.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Context {
    /// Another call is connected.
    pub busy: bool,
    /// Own presence is `DND` (`setpresencestatus("DND")`).
    pub dnd: bool,
}

/// Whether the caller is on the `blacklist` (comma list of users, numbers or URIs; matched
/// case-insensitively against the caller's user part and URI).
pub(super) fn blacklisted(list: &str, from_user: &str, from_uri: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|e| {
            let e = e
                .strip_prefix("sip:")
                .or_else(|| e.strip_prefix("sips:"))
                .unwrap_or(e);
            e.eq_ignore_ascii_case(from_user)
                || from_uri
                    .trim_start_matches("sips:")
                    .trim_start_matches("sip:")
                    .eq_ignore_ascii_case(e)
        })
}

/// Whether the INVITE asks to be answered automatically (`X-P-Auto-Answer: normal` or
/// `X-Answer-Mode: auto`, header names and values case-insensitive).
fn auto_answer_header(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(n, v)| {
        let v = v.trim();
        (n.eq_ignore_ascii_case("x-p-auto-answer") && v.eq_ignore_ascii_case("normal"))
            || (n.eq_ignore_ascii_case("x-answer-mode") && v.eq_ignore_ascii_case("auto"))
    })
}

/// Whether the INVITE carries the `bargeinheader` line (`Name: value`; the name and the
/// value compared case-insensitively, surrounding blanks ignored). An empty or malformed
/// parameter never matches.
fn barge_header(configured: &str, headers: &[(String, String)]) -> bool {
    let Some((name, value)) = configured.split_once(':') else {
        return false;
    };
    let (name, value) = (name.trim(), value.trim());
    !name.is_empty()
        && headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && v.trim().eq_ignore_ascii_case(value))
}

/// Decides what to do with a call from `from_user` / `from_uri`; `busy` is true when another
/// call is up.
pub(super) fn decide(
    p: &ParamStore,
    from_user: &str,
    from_uri: &str,
    headers: &[(String, String)],
    ctx: Context,
) -> Decision {
    if blacklisted(&p.get("blacklist"), from_user, from_uri) {
        return Decision::Reject(603, "Decline");
    }
    match p.get_i64("autoignore").unwrap_or(0) {
        1 => return Decision::Ignore,
        2 => return Decision::Reject(603, "Decline"),
        _ => {}
    }
    if ctx.dnd {
        // RFC 3261 §21.4.18: 480 is the answer of a callee who set do-not-disturb.
        return Decision::Reject(480, "Do Not Disturb");
    }
    let target = |name: &str| Some(p.get(name).trim().to_string()).filter(|t| !t.is_empty());
    if let Some(t) = target("callforwardalways") {
        return Decision::Forward(t);
    }
    if let Some(t) = target("calltransferalways") {
        return Decision::TransferAlways(t);
    }
    if ctx.busy && p.get_bool("rejectonbusy").unwrap_or(false) {
        return Decision::Reject(486, "Busy Here");
    }
    if ctx.busy {
        if let Some(t) = target("callforwardonbusy") {
            return Decision::Forward(t);
        }
    }
    if barge_header(&p.get("bargeinheader"), headers) {
        return Decision::Barge;
    }
    if p.get_bool("autoaccept").unwrap_or(false) || auto_answer_header(headers) {
        return Decision::AutoAnswer;
    }
    Decision::Ring
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> Context {
        Context::default()
    }

    fn busy() -> Context {
        Context {
            busy: true,
            dnd: false,
        }
    }

    fn params(kv: &[(&str, &str)]) -> ParamStore {
        let mut p = ParamStore::new();
        for (k, v) in kv {
            p.set(k, v).unwrap();
        }
        p
    }

    #[test]
    fn barge_header_line_is_answered_as_a_barge_in_after_the_busy_rules() {
        let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        let p = params(&[("bargeinheader", "X-barge: yes")]);
        assert_eq!(
            decide(&p, "a", "sip:a@h", &h("x-BARGE", " Yes "), busy()),
            Decision::Barge
        );
        assert_eq!(
            decide(&p, "a", "sip:a@h", &h("X-barge", "no"), busy()),
            Decision::Ring
        );
        assert_eq!(decide(&p, "a", "sip:a@h", &[], idle()), Decision::Ring);
        // Not configured, or no colon: no header makes a barge.
        let none = params(&[]);
        assert_eq!(
            decide(&none, "a", "sip:a@h", &h("X-barge", "yes"), busy()),
            Decision::Ring
        );
        let bad = params(&[("bargeinheader", "X-barge")]);
        assert_eq!(
            decide(&bad, "a", "sip:a@h", &h("X-barge", ""), busy()),
            Decision::Ring
        );
        // The documented order: blacklist and busy rules come first.
        let p = params(&[
            ("bargeinheader", "X-barge: yes"),
            ("rejectonbusy", "1"),
            ("blacklist", "spy"),
        ]);
        assert_eq!(
            decide(&p, "a", "sip:a@h", &h("X-barge", "yes"), busy()),
            Decision::Reject(486, "Busy Here")
        );
        assert_eq!(
            decide(&p, "spy", "sip:spy@h", &h("X-barge", "yes"), idle()),
            Decision::Reject(603, "Decline")
        );
    }

    #[test]
    fn blacklisted_caller_is_declined_before_anything_else() {
        let p = params(&[("blacklist", "spam, sip:1005@pbx"), ("autoaccept", "true")]);
        assert_eq!(
            decide(&p, "SPAM", "sip:spam@pbx", &[], idle()),
            Decision::Reject(603, "Decline")
        );
        assert_eq!(
            decide(&p, "1005", "sip:1005@pbx", &[], idle()),
            Decision::Reject(603, "Decline")
        );
        assert_eq!(
            decide(&p, "1002", "sip:1002@pbx", &[], idle()),
            Decision::AutoAnswer
        );
    }

    #[test]
    fn autoignore_ignores_or_rejects() {
        assert_eq!(
            decide(&params(&[("autoignore", "1")]), "a", "sip:a@h", &[], idle()),
            Decision::Ignore
        );
        assert_eq!(
            decide(&params(&[("autoignore", "2")]), "a", "sip:a@h", &[], idle()),
            Decision::Reject(603, "Decline")
        );
    }

    #[test]
    fn busy_rule_applies_only_while_in_a_call() {
        let p = params(&[("rejectonbusy", "true")]);
        assert_eq!(
            decide(&p, "a", "sip:a@h", &[], busy()),
            Decision::Reject(486, "Busy Here")
        );
        assert_eq!(decide(&p, "a", "sip:a@h", &[], idle()), Decision::Ring);
    }

    #[test]
    fn auto_answer_headers_answer_without_autoaccept() {
        let p = params(&[]);
        let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert_eq!(
            decide(&p, "a", "sip:a@h", &h("X-P-Auto-Answer", "normal"), idle()),
            Decision::AutoAnswer
        );
        assert_eq!(
            decide(&p, "a", "sip:a@h", &h("x-answer-mode", "AUTO"), idle()),
            Decision::AutoAnswer
        );
        assert_eq!(
            decide(&p, "a", "sip:a@h", &h("X-Answer-Mode", "manual"), idle()),
            Decision::Ring
        );
    }

    #[test]
    fn dnd_refuses_with_480_after_blacklist_and_autoignore() {
        let dnd = Context {
            busy: false,
            dnd: true,
        };
        let p = params(&[("autoaccept", "true"), ("callforwardalways", "2000")]);
        assert_eq!(
            decide(&p, "a", "sip:a@h", &[], dnd),
            Decision::Reject(480, "Do Not Disturb")
        );
        let p = params(&[("autoignore", "1")]);
        assert_eq!(decide(&p, "a", "sip:a@h", &[], dnd), Decision::Ignore);
    }

    #[test]
    fn forward_always_wins_over_busy_rules_and_auto_answer() {
        let p = params(&[
            ("callforwardalways", " 2000 "),
            ("rejectonbusy", "true"),
            ("autoaccept", "true"),
        ]);
        assert_eq!(
            decide(&p, "a", "sip:a@h", &[], busy()),
            Decision::Forward("2000".into())
        );
        let p = params(&[("calltransferalways", "3000"), ("autoaccept", "true")]);
        assert_eq!(
            decide(&p, "a", "sip:a@h", &[], idle()),
            Decision::TransferAlways("3000".into())
        );
    }

    #[test]
    fn forward_on_busy_only_while_in_a_call_and_after_rejectonbusy() {
        let p = params(&[("callforwardonbusy", "4000")]);
        assert_eq!(
            decide(&p, "a", "sip:a@h", &[], busy()),
            Decision::Forward("4000".into())
        );
        assert_eq!(decide(&p, "a", "sip:a@h", &[], idle()), Decision::Ring);
        let p = params(&[("callforwardonbusy", "4000"), ("rejectonbusy", "true")]);
        assert_eq!(
            decide(&p, "a", "sip:a@h", &[], busy()),
            Decision::Reject(486, "Busy Here")
        );
    }
}
