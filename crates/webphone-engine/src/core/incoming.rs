//! What happens to a new incoming call, decided before anything rings: the divert rules in
//! the order this engine applies them (the catalog gives the rules, not their order):
//! blacklist, `autoignore`, busy rules (`rejectonbusy`), then auto-answer (`autoaccept` or an
//! auto-answer header), else ring.

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
    /// Ring and wait for accept/reject.
    Ring,
}

/// Whether the caller is on the `blacklist` (comma list of users, numbers or URIs; matched
/// case-insensitively against the caller's user part and URI).
fn blacklisted(list: &str, from_user: &str, from_uri: &str) -> bool {
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

/// Decides what to do with a call from `from_user` / `from_uri`; `busy` is true when another
/// call is up.
pub(super) fn decide(
    p: &ParamStore,
    from_user: &str,
    from_uri: &str,
    headers: &[(String, String)],
    busy: bool,
) -> Decision {
    if blacklisted(&p.get("blacklist"), from_user, from_uri) {
        return Decision::Reject(603, "Decline");
    }
    match p.get_i64("autoignore").unwrap_or(0) {
        1 => return Decision::Ignore,
        2 => return Decision::Reject(603, "Decline"),
        _ => {}
    }
    if busy && p.get_bool("rejectonbusy").unwrap_or(false) {
        return Decision::Reject(486, "Busy Here");
    }
    if p.get_bool("autoaccept").unwrap_or(false) || auto_answer_header(headers) {
        return Decision::AutoAnswer;
    }
    Decision::Ring
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> ParamStore {
        let mut p = ParamStore::new();
        for (k, v) in kv {
            p.set(k, v).unwrap();
        }
        p
    }

    #[test]
    fn blacklisted_caller_is_declined_before_anything_else() {
        let p = params(&[("blacklist", "spam, sip:1005@pbx"), ("autoaccept", "true")]);
        assert_eq!(
            decide(&p, "SPAM", "sip:spam@pbx", &[], false),
            Decision::Reject(603, "Decline")
        );
        assert_eq!(
            decide(&p, "1005", "sip:1005@pbx", &[], false),
            Decision::Reject(603, "Decline")
        );
        assert_eq!(
            decide(&p, "1002", "sip:1002@pbx", &[], false),
            Decision::AutoAnswer
        );
    }

    #[test]
    fn autoignore_ignores_or_rejects() {
        assert_eq!(
            decide(&params(&[("autoignore", "1")]), "a", "sip:a@h", &[], false),
            Decision::Ignore
        );
        assert_eq!(
            decide(&params(&[("autoignore", "2")]), "a", "sip:a@h", &[], false),
            Decision::Reject(603, "Decline")
        );
    }

    #[test]
    fn busy_rule_applies_only_while_in_a_call() {
        let p = params(&[("rejectonbusy", "true")]);
        assert_eq!(
            decide(&p, "a", "sip:a@h", &[], true),
            Decision::Reject(486, "Busy Here")
        );
        assert_eq!(decide(&p, "a", "sip:a@h", &[], false), Decision::Ring);
    }

    #[test]
    fn auto_answer_headers_answer_without_autoaccept() {
        let p = params(&[]);
        let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert_eq!(
            decide(&p, "a", "sip:a@h", &h("X-P-Auto-Answer", "normal"), false),
            Decision::AutoAnswer
        );
        assert_eq!(
            decide(&p, "a", "sip:a@h", &h("x-answer-mode", "AUTO"), false),
            Decision::AutoAnswer
        );
        assert_eq!(
            decide(&p, "a", "sip:a@h", &h("X-Answer-Mode", "manual"), false),
            Decision::Ring
        );
    }
}
