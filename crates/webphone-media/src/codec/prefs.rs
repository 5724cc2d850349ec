//! Codec preferences from the parameters `codec`, `prefcodec` and `use_<codec>` (spec catalog:
//! parameters.tsv rows `codec`, `prefcodec`, `use_pcmu` ... `use_opuswb`; behaviours.md §14).
//!
//! Rules, applied in this order:
//! 1. Built-in priority: wideband first (Opus, then G.722), G.711 last (PCMU, PCMA). The codecs
//!    of the C libraries ([`EXTRA_ORDER`]: Speex ultra-wide/wide, G.729, Speex narrow, GSM) are
//!    by default accepted when the peer offers them but not offered (as if `use_<codec>=1`),
//!    which keeps our offers short and G.711/Opus-compatible.
//! 2. `codec` (comma list, case-insensitive, e.g. `"Opus, G.729, PCMU"`) is a whitelist: only the
//!    listed codecs are used (and offered), in the listed order. Names we do not implement
//!    (iLBC) are skipped; if nothing we implement is left the whitelist is ignored (with a
//!    warning) rather than leaving the call without audio.
//! 3. `use_<codec>`: `0` never, `1` do not offer (still accepted when the peer offers it),
//!    `2` yes with low priority (moved behind the others), `3` yes with high priority (moved in
//!    front). Other values leave the codec as it is.
//! 4. `prefcodec`: the named codec (`g.711` means PCMU and PCMA) moves to the front if it is
//!    allowed at all; a codec that is accept-only only by default (rule 1) is then offered.
//!
//! Name aliases: `pcmu`/`g711u`/`ulaw`/`mulaw`, `pcma`/`g711a`/`alaw`, `g711` (both),
//! `g722`, `opus`/`opuswb`/`opusswb`/`opusnb`/`opusfb` (one Opus codec; the bandwidth is the
//! encoder's choice), `gsm`, `speex`/`speexnb`, `speexwb`, `speexuwb` (also the FAQ's typo
//! `speexwwb`), `g729`/`g729a` (and `g719`, the spelling in the product's
//! `prefcodec` list, which means G.729 there). Dots, dashes, underscores and blanks in names are ignored.

use crate::{Codec, MediaOffer};

/// The built-in order (behaviours.md §14: wideband before narrowband, G.711 last).
pub const BUILTIN_ORDER: [Codec; 4] = [Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma];

/// The codecs accepted but not offered by default, in preference order (behaviours.md §14:
/// wideband Speex, then G.729, then GSM).
pub const EXTRA_ORDER: [Codec; 5] = [
    Codec::SpeexUwb,
    Codec::SpeexWb,
    Codec::G729,
    Codec::Speex,
    Codec::Gsm,
];

/// A `use_<codec>` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseLevel {
    /// `0`: never use.
    Never,
    /// `1`: do not offer, but accept when offered.
    DoNotOffer,
    /// `2`: use with low priority.
    Low,
    /// `3`: use with high priority.
    High,
}

impl UseLevel {
    /// Parse a parameter value (`0`..`3`); anything else is `None` (no change).
    pub fn parse(v: &str) -> Option<UseLevel> {
        match v.trim() {
            "0" => Some(UseLevel::Never),
            "1" => Some(UseLevel::DoNotOffer),
            "2" => Some(UseLevel::Low),
            "3" => Some(UseLevel::High),
            _ => None,
        }
    }
}

/// The codec lists that follow from the parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecPrefs {
    /// What we offer and prefer when answering, best first.
    pub offer: Vec<Codec>,
    /// Accepted in an offer from the peer but never offered by us (`use_<codec>=1`), after
    /// `offer` in preference.
    pub accept_only: Vec<Codec>,
}

impl CodecPrefs {
    /// Media preferences with these codecs (sendrecv, no SRTP).
    pub fn media_offer(&self, telephone_event: bool) -> MediaOffer {
        MediaOffer::new(self.offer.clone(), telephone_event)
            .with_accept_only(self.accept_only.clone())
    }
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '.' | '-' | '_' | ' ' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The codecs a parameter name stands for (empty for names we know but do not implement, and
/// for unknown names).
pub fn codecs_named(name: &str) -> &'static [Codec] {
    match normalise(name).as_str() {
        "pcmu" | "g711u" | "g711mu" | "g711ulaw" | "ulaw" | "mulaw" => &[Codec::Pcmu],
        "pcma" | "g711a" | "g711alaw" | "alaw" => &[Codec::Pcma],
        "g711" => &[Codec::Pcmu, Codec::Pcma],
        "g722" => &[Codec::G722],
        "opus" | "opusnb" | "opuswb" | "opusswb" | "opusuwb" | "opusfb" => &[Codec::Opus],
        "gsm" | "gsm610" | "gsmfr" => &[Codec::Gsm],
        "speex" | "speexnb" => &[Codec::Speex],
        "speexwb" => &[Codec::SpeexWb],
        "speexuwb" | "speexwwb" => &[Codec::SpeexUwb],
        "g729" | "g729a" | "g729ab" | "g719" => &[Codec::G729],
        _ => &[],
    }
}

/// Codec preferences from the parameter values: `codec` (whitelist), `prefcodec` (preferred)
/// and the `use_<codec>` pairs (name with or without the `use_` prefix, and its value; other
/// parameters in the slice are ignored). See the module documentation for the rules.
pub fn codec_prefs_from_params(
    codec: &str,
    prefcodec: &str,
    use_flags: &[(&str, &str)],
) -> CodecPrefs {
    // 1 + 2: base order, restricted by the whitelist.
    let mut order: Vec<Codec> = Vec::new();
    let mut default_accept_only: Vec<Codec> = Vec::new();
    for name in codec.split(',').filter(|s| !s.trim().is_empty()) {
        let found = codecs_named(name);
        if found.is_empty() {
            tracing::debug!(
                codec = name.trim(),
                "codec parameter: not supported, skipped"
            );
        }
        for c in found {
            if !order.contains(c) {
                order.push(*c);
            }
        }
    }
    if order.is_empty() {
        if !codec.trim().is_empty() {
            tracing::warn!(
                codec,
                "codec parameter lists no supported codec: using the built-in list"
            );
        }
        order = BUILTIN_ORDER.to_vec();
        order.extend(EXTRA_ORDER);
        default_accept_only = EXTRA_ORDER.to_vec();
    }

    // 3: use_<codec> levels (the last value given for a codec wins).
    let mut levels: Vec<(Codec, UseLevel)> = Vec::new();
    for (key, value) in use_flags {
        let key = key.trim();
        let name = match key.get(..4) {
            Some(p) if p.eq_ignore_ascii_case("use_") => key.get(4..).unwrap_or(""),
            _ => key,
        };
        let Some(level) = UseLevel::parse(value) else {
            continue;
        };
        for c in codecs_named(name) {
            levels.retain(|(x, _)| x != c);
            levels.push((*c, level));
        }
    }
    let level_of = |c: Codec| levels.iter().find(|(x, _)| *x == c).map(|(_, l)| *l);
    let mut high = Vec::new();
    let mut normal = Vec::new();
    let mut low = Vec::new();
    let mut accept_only = Vec::new();
    for c in order {
        let level = level_of(c).or_else(|| {
            default_accept_only
                .contains(&c)
                .then_some(UseLevel::DoNotOffer)
        });
        match level {
            Some(UseLevel::Never) => {}
            Some(UseLevel::DoNotOffer) => accept_only.push(c),
            Some(UseLevel::Low) => low.push(c),
            Some(UseLevel::High) => high.push(c),
            None => normal.push(c),
        }
    }
    let mut offer: Vec<Codec> = high.into_iter().chain(normal).chain(low).collect();

    // 4: prefcodec to the front of whichever list holds it.
    let preferred = prefcodec
        .split(',')
        .map(codecs_named)
        .find(|l| !l.is_empty())
        .unwrap_or(&[]);
    // A codec that is accept-only by default only (no use_<codec>) is offered when preferred.
    for c in preferred {
        if default_accept_only.contains(c) && level_of(*c).is_none() {
            accept_only.retain(|x| x != c);
            offer.push(*c);
        }
    }
    for list in [&mut offer, &mut accept_only] {
        let mut front: Vec<Codec> = preferred
            .iter()
            .copied()
            .filter(|c| list.contains(c))
            .collect();
        if front.is_empty() {
            continue;
        }
        list.retain(|c| !front.contains(c));
        front.append(list);
        *list = front;
    }

    let only_defaults = accept_only
        .iter()
        .all(|c| default_accept_only.contains(c) && level_of(*c).is_none());
    if offer.is_empty() && only_defaults {
        tracing::warn!("every codec is disabled by use_<codec>=0: using the built-in list");
        offer = BUILTIN_ORDER.to_vec();
    }
    CodecPrefs { offer, accept_only }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Codec::*;

    fn offer(codec: &str, pref: &str, uses: &[(&str, &str)]) -> Vec<Codec> {
        codec_prefs_from_params(codec, pref, uses).offer
    }

    #[test]
    fn no_parameters_give_the_builtin_wideband_first_order() {
        let p = codec_prefs_from_params("", "", &[]);
        assert_eq!(p.offer, vec![Opus, G722, Pcmu, Pcma]);
        assert_eq!(p.accept_only, EXTRA_ORDER.to_vec());
    }

    #[test]
    fn library_codecs_are_offered_by_use_level_whitelist_or_prefcodec() {
        let p = codec_prefs_from_params("", "", &[("use_gsm", "2"), ("use_g729", "3")]);
        assert_eq!(p.offer, vec![G729, Opus, G722, Pcmu, Pcma, Gsm]);
        assert_eq!(p.accept_only, vec![SpeexUwb, SpeexWb, Speex]);
        let p = codec_prefs_from_params("", "", &[("use_speex", "0"), ("use_speexwb", "0")]);
        assert_eq!(p.accept_only, vec![SpeexUwb, G729, Gsm]);
        assert_eq!(
            offer("speexuwb, Speex_WB, speex, GSM, G.729", "", &[]),
            vec![SpeexUwb, SpeexWb, Speex, Gsm, G729]
        );
        let p = codec_prefs_from_params("", "gsm", &[]);
        assert_eq!(p.offer, vec![Gsm, Opus, G722, Pcmu, Pcma]);
        assert!(!p.accept_only.contains(&Gsm));
        // An explicit use_gsm=1 keeps it accept-only even when preferred.
        let p = codec_prefs_from_params("", "gsm", &[("use_gsm", "1")]);
        assert_eq!(p.offer, BUILTIN_ORDER.to_vec());
        assert_eq!(p.accept_only.first(), Some(&Gsm));
        // The FAQ's typo and the manual's g.719 spelling.
        assert_eq!(offer("", "", &[("use_speexwwb", "3")])[0], SpeexUwb);
        assert_eq!(offer("", "g.719", &[])[0], G729);
    }

    #[test]
    fn codec_whitelist_restricts_and_orders_and_skips_unsupported_names() {
        assert_eq!(offer("PCMA, iLBC ,pcmu", "", &[]), vec![Pcma, Pcmu]);
        assert_eq!(offer("Opus, G.729, PCMU", "", &[]), vec![Opus, G729, Pcmu]);
        assert_eq!(offer("G.711", "", &[]), vec![Pcmu, Pcma]);
        assert_eq!(offer("g722", "", &[]), vec![G722]);
        assert_eq!(offer("opuswb,OPUS", "", &[]), vec![Opus]);
    }

    #[test]
    fn whitelist_without_supported_codecs_falls_back_to_builtin() {
        assert_eq!(offer("iLBC, AMR", "", &[]), BUILTIN_ORDER.to_vec());
    }

    #[test]
    fn prefcodec_moves_an_allowed_codec_to_the_front() {
        assert_eq!(offer("", "pcma", &[]), vec![Pcma, Opus, G722, Pcmu]);
        assert_eq!(offer("", "G.711", &[]), vec![Pcmu, Pcma, Opus, G722]);
        assert_eq!(offer("pcmu,pcma", "PCMA", &[]), vec![Pcma, Pcmu]);
        // Not allowed by the whitelist: no effect, and it is not added.
        assert_eq!(offer("pcmu,pcma", "opus", &[]), vec![Pcmu, Pcma]);
        // Unsupported preferred codec: no effect.
        assert_eq!(offer("", "ilbc", &[]), BUILTIN_ORDER.to_vec());
    }

    #[test]
    fn use_levels_never_do_not_offer_low_high() {
        let p = codec_prefs_from_params(
            "",
            "",
            &[
                ("use_opus", "1"),
                ("use_pcmu", "3"),
                ("use_g722", "0"),
                ("use_pcma", "2"),
            ],
        );
        assert_eq!(p.offer, vec![Pcmu, Pcma]);
        assert_eq!(p.accept_only, [vec![Opus], EXTRA_ORDER.to_vec()].concat());

        assert_eq!(
            offer("", "", &[("use_opus", "2")]),
            vec![G722, Pcmu, Pcma, Opus]
        );
        assert_eq!(
            offer("", "", &[("use_pcma", "3")]),
            vec![Pcma, Opus, G722, Pcmu]
        );
        // Keys without the prefix, unknown values and unrelated keys are tolerated.
        assert_eq!(
            offer(
                "",
                "",
                &[("PCMU", "0"), ("use_pcma", "x"), ("use_ilbc", "3")]
            ),
            vec![Opus, G722, Pcma]
        );
        // use_opuswb maps to Opus as well; the last value wins.
        assert_eq!(
            offer("", "", &[("use_opus", "0"), ("use_opuswb", "2")]),
            vec![G722, Pcmu, Pcma, Opus]
        );
    }

    #[test]
    fn use_levels_apply_inside_the_whitelist() {
        assert_eq!(
            offer("pcmu,opus", "", &[("use_pcmu", "3")]),
            vec![Pcmu, Opus]
        );
        assert_eq!(
            offer("pcmu,opus", "", &[("use_g722", "3")]),
            vec![Pcmu, Opus]
        );
    }

    #[test]
    fn prefcodec_wins_over_use_priority_and_reorders_accept_only() {
        assert_eq!(
            offer("", "pcma", &[("use_pcmu", "3")]),
            vec![Pcma, Pcmu, Opus, G722]
        );
        let p = codec_prefs_from_params("", "opus", &[("use_opus", "1"), ("use_g722", "1")]);
        assert_eq!(p.offer, vec![Pcmu, Pcma]);
        assert_eq!(
            p.accept_only,
            [vec![Opus, G722], EXTRA_ORDER.to_vec()].concat()
        );
    }

    #[test]
    fn everything_disabled_falls_back_to_builtin() {
        let all: Vec<(&str, &str)> = ["pcmu", "pcma", "g722", "opus"]
            .iter()
            .map(|n| (*n, "0"))
            .collect();
        assert_eq!(offer("", "", &all), BUILTIN_ORDER.to_vec());
    }

    #[test]
    fn media_offer_carries_both_lists() {
        let m = codec_prefs_from_params("", "", &[("use_opus", "1")]).media_offer(true);
        assert_eq!(m.codecs, vec![G722, Pcmu, Pcma]);
        assert_eq!(m.accept_only, [vec![Opus], EXTRA_ORDER.to_vec()].concat());
        assert!(m.telephone_event);
    }
}
