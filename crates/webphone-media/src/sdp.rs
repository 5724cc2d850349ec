//! SDP (RFC 4566) parsing and offer/answer (RFC 3264) for one audio stream.
//!
//! We parse SDP with our own tolerant line parser instead of `rtc-sdp`: `rtc-sdp` 0.21 is a
//! port of a JSEP-oriented strict state machine that rejects SDP whose lines are not in the exact
//! RFC 4566 §5 order, and SIP devices in the field (gateways, PBXs, old phones) routinely send
//! `b=` after `a=`, attributes before `c=` and similar. What we need from an SDP is small (the
//! `c=`, `m=`, `a=rtpmap`, `a=fmtp`, `a=ptime` and direction lines), and every field is bounds
//! checked here so that hostile input yields an [`SdpError`], never a panic.
//!
//! Supported: one audio stream with PCMU (PT 0), PCMA (PT 8), G722 (PT 9, `G722/8000`, RFC 3551
//! §4.5.2), Opus (dynamic PT, we offer 111; `opus/48000/2` with the `a=fmtp` parameters of
//! RFC 7587 §6.1) and telephone-event (RFC 4733, dynamic PT, events `0-16`) at the RTP clock of
//! each offered codec (RFC 4733 §2.1 and §7.1.1: the event clock must equal the audio clock; we
//! offer 101 for `telephone-event/8000` and 110 for `telephone-event/48000`), `a=ptime:20`, directions
//! (RFC 3264 §5.1/§6.1), `c=` at session or media level (RFC 4566 §5.7), IPv4 and IPv6. Other
//! `m=` lines of an offer are rejected in the answer with port 0 (RFC 3264 §6).

use std::net::{IpAddr, SocketAddr};

use crate::{Codec, Direction, MediaOffer, Negotiated, SendLimits, PTIME_MS, SAMPLE_RATE};

/// Largest SDP body we accept. Real offers are well below 4 KiB.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Largest number of `m=` lines we accept.
pub const MAX_MEDIA: usize = 32;
/// Payload type we offer for telephone-event/8000 (RFC 4733 §7.1.1; 101 by custom).
pub const DEFAULT_TELEPHONE_EVENT_PT: u8 = 101;
/// Payload type we offer for telephone-event/48000, next to Opus (RFC 4733 §7.1.1; 110 as
/// browsers use it).
pub const TELEPHONE_EVENT_48K_PT: u8 = 110;

/// The payload type we offer for telephone-event at `clock_rate`.
pub fn telephone_event_offer_pt(clock_rate: u32) -> u8 {
    match clock_rate {
        48_000 => TELEPHONE_EVENT_48K_PT,
        16_000 => 102,
        32_000 => 103,
        _ => DEFAULT_TELEPHONE_EVENT_PT,
    }
}
/// The telephone events we support: DTMF 0-9, *, #, A-D and flash (RFC 4733 §3.2).
pub const SUPPORTED_EVENTS: std::ops::RangeInclusive<u8> = 0..=16;

/// Why an SDP could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is larger than [`MAX_SDP_LEN`] or has more than [`MAX_MEDIA`] streams.
    #[error("SDP too large: {0}")]
    TooLarge(String),
    /// A line could not be parsed.
    #[error("SDP syntax error on line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A line the description cannot do without is missing (`v=`, `o=`, `c=`, `m=`).
    #[error("SDP lacks a {0} line")]
    Missing(&'static str),
    /// There is no audio stream at all.
    #[error("SDP has no audio stream")]
    NoAudio,
    /// No audio stream has a codec we support (the caller answers 488, RFC 3261 §13.3.1.1).
    #[error("no common codec")]
    NoCommonCodec,
    /// The answer rejected our audio stream with port 0 (RFC 3264 §6).
    #[error("audio stream rejected by the peer (port 0)")]
    Rejected,
    /// The media encryption of the answer does not fit our offer (RFC 4568 §7.1.2: missing or
    /// unknown crypto when SRTP is required, a tag or suite we did not offer, a bad key).
    #[error("media encryption not acceptable: {0}")]
    Crypto(String),
    /// The connection address is not an IP literal (e.g. an FQDN) or its family is wrong.
    #[error("unsupported connection address: {0}")]
    UnsupportedAddress(String),
}

fn syntax(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError::Syntax {
        line,
        reason: reason.into(),
    }
}

/// A `c=` address (RFC 4566 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionAddress {
    /// An IPv4 or IPv6 literal (multicast TTL / count suffixes stripped).
    Ip(IpAddr),
    /// Anything else (an FQDN); we do not resolve names in SDP.
    Other(String),
}

/// An `a=rtpmap` attribute (RFC 4566 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters (channel count for audio).
    pub channels: Option<u32>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub media: String,
    /// Transport port; 0 means the stream is rejected/disabled.
    pub port: u16,
    /// Transport protocol, e.g. `RTP/AVP`.
    pub proto: String,
    /// Format list as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<ConnectionAddress>,
    /// `a=rtpmap` lines.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` lines: payload type and parameter string.
    pub fmtps: Vec<(u8, String)>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// `a=crypto` values as written (SDES, RFC 4568 §9.1; parsed by [`crate::sdp_crypto`]).
    pub crypto: Vec<String>,
    /// `a=rtcp-mux` is present (RFC 5761 §5.1.1).
    pub rtcp_mux: bool,
    /// `a=fingerprint` value (RFC 8122 §5; media level, else the session-level one), parsed
    /// by [`crate::dtls_srtp`].
    pub fingerprint: Option<String>,
    /// `a=setup` value (RFC 4145 §4; media level, else session level).
    pub setup: Option<String>,
    /// `a=mid` identification tag (RFC 5888 §4), as written when it is a valid token.
    pub mid: Option<String>,
    /// Media-level `b=AS` in kbit/s (RFC 4566 §5.8): what this side is prepared to receive.
    pub bandwidth_as: Option<u32>,
}

impl MediaDescription {
    /// Whether the transport is plain RTP (`RTP/AVP`, or `RTP/AVPF` whose feedback we ignore).
    pub fn is_plain_rtp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/AVP") || self.proto.eq_ignore_ascii_case("RTP/AVPF")
    }

    /// Whether the transport is SRTP (`RTP/SAVP`, RFC 3711 §12, or `RTP/SAVPF`).
    pub fn is_savp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/SAVP") || self.proto.eq_ignore_ascii_case("RTP/SAVPF")
    }

    /// Whether the transport is DTLS-SRTP (`UDP/TLS/RTP/SAVP` or `UDP/TLS/RTP/SAVPF`, RFC 5764
    /// §8).
    pub fn is_dtls(&self) -> bool {
        self.proto
            .eq_ignore_ascii_case(crate::dtls_srtp::PROTO_SAVP)
            || self
                .proto
                .eq_ignore_ascii_case(crate::dtls_srtp::PROTO_SAVPF)
    }

    /// The RTP payload types of the format list, skipping non-numeric formats.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok())
    }

    /// The rtpmap of a payload type.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }

    /// The fmtp parameters of a payload type.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, s)| s.as_str())
    }

    /// The codec a payload type of this stream stands for: by rtpmap if present (RFC 4566 §6),
    /// else by the static assignment of RFC 3551 table 4.
    pub fn codec_of(&self, pt: u8) -> Option<Codec> {
        match self.rtpmap(pt) {
            Some(map) => Codec::from_rtpmap(&map.encoding, map.clock_rate, map.channels),
            None => Codec::from_static_payload_type(pt),
        }
    }

    /// The payload type of telephone-event at 8 kHz, if offered (RFC 4733 §7.1.1).
    pub fn telephone_event_pt(&self) -> Option<u8> {
        self.telephone_event_pt_at(SAMPLE_RATE)
    }

    /// The payload type of telephone-event at `clock_rate`, if offered (RFC 4733 §7.1.1).
    pub fn telephone_event_pt_at(&self, clock_rate: u32) -> Option<u8> {
        self.payload_types().find(|&pt| {
            self.rtpmap(pt).is_some_and(|m| {
                m.encoding.eq_ignore_ascii_case("telephone-event") && m.clock_rate == clock_rate
            })
        })
    }

    /// The telephone-event to use with `codec`: the one at the codec's RTP clock (RFC 4733
    /// §2.1: "the RTP clock rate used for the telephone-event payload MUST be the same as the
    /// clock rate of the audio codec"). Peers that list only one telephone-event at another
    /// clock (older stacks pair Opus with `telephone-event/8000`) still get events, as a
    /// non-compliant fallback: the packets then carry the audio stream's timestamps and
    /// durations, as the shared RTP timeline requires. Returns the payload type and its clock.
    pub fn telephone_event_for(&self, codec: Codec) -> Option<(u8, u32)> {
        if let Some(pt) = self.telephone_event_pt_at(codec.clock_rate()) {
            return Some((pt, codec.clock_rate()));
        }
        let (pt, clock) = self.payload_types().find_map(|pt| {
            self.rtpmap(pt)
                .filter(|m| m.encoding.eq_ignore_ascii_case("telephone-event"))
                .map(|m| (pt, m.clock_rate))
        })?;
        tracing::debug!(
            pt,
            clock,
            codec = ?codec,
            "telephone-event clock differs from the codec clock (RFC 4733 §2.1); using it anyway"
        );
        Some((pt, clock))
    }
}

/// A parsed session description (only what offer/answer needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` fields: username, session id, session version (as written).
    pub origin: (String, String, String),
    /// Session-level `c=`.
    pub connection: Option<ConnectionAddress>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// The `m=` sections in order.
    pub media: Vec<MediaDescription>,
    /// The `a=group:BUNDLE` groups (RFC 8843 §7.1): each the list of its `mid`s.
    pub bundle_groups: Vec<Vec<String>>,
    /// Session-level `b=AS` in kbit/s (RFC 4566 §5.8).
    pub bandwidth_as: Option<u32>,
}

impl SessionDescription {
    /// The effective connection address of a stream (media level overrides session level,
    /// RFC 4566 §5.7).
    pub fn connection_of(&self, m: &MediaDescription) -> Result<IpAddr, SdpError> {
        match m.connection.as_ref().or(self.connection.as_ref()) {
            Some(ConnectionAddress::Ip(ip)) => Ok(*ip),
            Some(ConnectionAddress::Other(s)) => Err(SdpError::UnsupportedAddress(s.clone())),
            None => Err(SdpError::Missing("c=")),
        }
    }

    /// The bandwidth a stream may use towards this side, in kbit/s: the smaller of its own and
    /// the session's `b=AS` (RFC 4566 §5.8: the session value bounds all streams together).
    pub fn bandwidth_of(&self, m: &MediaDescription) -> Option<u32> {
        match (m.bandwidth_as, self.bandwidth_as) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The effective direction of a stream (media level overrides session level, default
    /// sendrecv; RFC 3264 §5.1).
    pub fn direction_of(&self, m: &MediaDescription) -> Direction {
        m.direction.or(self.direction).unwrap_or_default()
    }
}

/// Parse an SDP body (RFC 4566). Tolerant of line order, LF-only line ends, trailing blanks and
/// unknown line types; strict about the values it uses.
pub fn parse(sdp: &str) -> Result<SessionDescription, SdpError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge(format!("{} bytes", sdp.len())));
    }
    let mut seen_version = false;
    let mut origin = None;
    let mut connection = None;
    let mut direction = None;
    let mut media: Vec<MediaDescription> = Vec::new();
    // Session-level a=fingerprint / a=setup (RFC 8122 §5, RFC 4145 §4), for streams without
    // their own.
    let mut session_fingerprint = None;
    let mut session_setup = None;
    let mut bundle_groups: Vec<Vec<String>> = Vec::new();
    let mut bandwidth_as = None;

    for (idx, raw) in sdp.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = raw.trim_end_matches(['\r', ' ', '\t']);
        if line.is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(syntax(lineno, "expected <type>=<value>"));
        }
        let kind = bytes[0];
        let value = &line[2..];
        if !seen_version {
            if kind != b'v' {
                return Err(SdpError::Missing("v="));
            }
            if value.trim() != "0" {
                return Err(syntax(lineno, "unsupported SDP version"));
            }
            seen_version = true;
            continue;
        }
        match kind {
            b'v' => return Err(syntax(lineno, "repeated v= line")),
            b'o' => {
                let f: Vec<&str> = value.split_ascii_whitespace().collect();
                if f.len() != 6 {
                    return Err(syntax(lineno, "o= needs 6 fields"));
                }
                origin = Some((f[0].to_owned(), f[1].to_owned(), f[2].to_owned()));
            }
            b'c' => {
                let c = parse_connection(value).map_err(|r| syntax(lineno, r))?;
                match media.last_mut() {
                    Some(m) => m.connection = Some(c),
                    None => connection = Some(c),
                }
            }
            b'm' => {
                if media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooLarge(format!(
                        "more than {MAX_MEDIA} m= lines"
                    )));
                }
                media.push(parse_media(value).map_err(|r| syntax(lineno, r))?);
            }
            b'a' => {
                let (name, arg) = match value.split_once(':') {
                    Some((n, a)) => (n, Some(a)),
                    None => (value, None),
                };
                if let Some(dir) = Direction::parse(name) {
                    match media.last_mut() {
                        Some(m) => m.direction = Some(dir),
                        None => direction = Some(dir),
                    }
                    continue;
                }
                if name == "rtcp-mux" {
                    if let Some(m) = media.last_mut() {
                        m.rtcp_mux = true;
                    }
                    continue;
                }
                if let ("fingerprint" | "setup", Some(arg)) = (name, arg) {
                    let v = Some(arg.trim().chars().take(256).collect::<String>());
                    match (media.last_mut(), name) {
                        (Some(m), "fingerprint") => m.fingerprint = v,
                        (Some(m), _) => m.setup = v,
                        (None, "fingerprint") => session_fingerprint = v,
                        (None, _) => session_setup = v,
                    }
                    continue;
                }
                if let ("group", Some(arg), None) = (name, arg, media.last()) {
                    // RFC 5888 §5: `a=group:<semantics> <mid> ...`; only BUNDLE matters here.
                    let mut it = arg.split_ascii_whitespace();
                    if it.next() == Some("BUNDLE") && bundle_groups.len() < MAX_MEDIA {
                        bundle_groups.push(it.filter_map(mid_token).take(MAX_MEDIA).collect());
                    }
                    continue;
                }
                let (Some(m), Some(arg)) = (media.last_mut(), arg) else {
                    continue; // session-level or flag attributes we do not use
                };
                match name {
                    "rtpmap" => {
                        let map = parse_rtpmap(arg).map_err(|r| syntax(lineno, r))?;
                        if m.rtpmap(map.payload_type).is_none() {
                            m.rtpmaps.push(map);
                        }
                    }
                    "fmtp" => {
                        let (pt, params) = arg.split_once(' ').unwrap_or((arg, ""));
                        let pt = parse_pt(pt).map_err(|r| syntax(lineno, r))?;
                        m.fmtps.push((pt, params.trim().to_owned()));
                    }
                    "mid" => m.mid = mid_token(arg.trim()),
                    "crypto" if m.crypto.len() < crate::sdp_crypto::MAX_CRYPTO_LINES => {
                        m.crypto.push(arg.trim().to_owned());
                    }
                    "ptime" => {
                        // Some stacks write "20.0"; anything outside 1..=1000 ms is ignored.
                        match arg.trim().parse::<f64>() {
                            Ok(v) if (1.0..=1000.0).contains(&v) => m.ptime = Some(v as u32),
                            _ => tracing::warn!(line = lineno, "ignoring bad a=ptime"),
                        }
                    }
                    _ => {}
                }
            }
            b'b' => {
                // `b=<bwtype>:<bandwidth>`; only AS is used, other types and bad values are
                // ignored (RFC 4566 §5.8: unknown modifiers are).
                let Some(("AS", v)) = value.split_once(':') else {
                    continue;
                };
                let Ok(kbps) = v.trim().parse::<u32>() else {
                    tracing::warn!(line = lineno, "ignoring bad b=AS");
                    continue;
                };
                match media.last_mut() {
                    Some(m) => m.bandwidth_as = Some(kbps),
                    None => bandwidth_as = Some(kbps),
                }
            }
            // i=, u=, e=, p=, t=, r=, z=, k=, s= and unknown letters: not needed here.
            _ => {}
        }
    }
    if !seen_version {
        return Err(SdpError::Missing("v="));
    }
    let Some(origin) = origin else {
        return Err(SdpError::Missing("o="));
    };
    for m in &mut media {
        if m.fingerprint.is_none() {
            m.fingerprint.clone_from(&session_fingerprint);
        }
        if m.setup.is_none() {
            m.setup.clone_from(&session_setup);
        }
    }
    Ok(SessionDescription {
        origin,
        connection,
        direction,
        media,
        bundle_groups,
        bandwidth_as,
    })
}

/// A `mid` value (RFC 5888 §4: an RFC 4566 token), at most 32 characters; `None` otherwise.
fn mid_token(v: &str) -> Option<String> {
    const TOKEN_PUNCT: &str = "!#$%&'*+-.^_`{|}~";
    let ok = !v.is_empty()
        && v.len() <= 32
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || TOKEN_PUNCT.contains(c));
    ok.then(|| v.to_owned())
}

fn parse_connection(value: &str) -> Result<ConnectionAddress, String> {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    let [nettype, addrtype, addr] = f.as_slice() else {
        return Err("c= needs 3 fields".into());
    };
    if *nettype != "IN" {
        return Err(format!("unsupported network type {nettype}"));
    }
    // Strip the multicast TTL / address count (RFC 4566 §5.7).
    let host = addr.split('/').next().unwrap_or(addr);
    let parsed = host.parse::<IpAddr>();
    match (*addrtype, parsed) {
        ("IP4", Ok(ip @ IpAddr::V4(_))) | ("IP6", Ok(ip @ IpAddr::V6(_))) => {
            Ok(ConnectionAddress::Ip(ip))
        }
        ("IP4", Ok(_)) | ("IP6", Ok(_)) => Err(format!("address {host} does not match {addrtype}")),
        ("IP4", Err(_)) | ("IP6", Err(_)) => Ok(ConnectionAddress::Other(host.to_owned())),
        _ => Err(format!("unsupported address type {addrtype}")),
    }
}

fn parse_media(value: &str) -> Result<MediaDescription, String> {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    if f.len() < 4 {
        return Err("m= needs media, port, proto and at least one format".into());
    }
    let port_str = f[1].split('/').next().unwrap_or(f[1]);
    let port = port_str
        .parse::<u16>()
        .map_err(|_| format!("bad port {:?}", f[1]))?;
    let proto = f[2].to_owned();
    let formats: Vec<String> = f[3..].iter().map(|s| (*s).to_owned()).collect();
    if proto.to_ascii_uppercase().starts_with("RTP/") {
        for fmt in &formats {
            parse_pt(fmt)?;
        }
    }
    Ok(MediaDescription {
        media: f[0].to_owned(),
        port,
        proto,
        formats,
        connection: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        direction: None,
        ptime: None,
        crypto: Vec::new(),
        rtcp_mux: false,
        fingerprint: None,
        setup: None,
        mid: None,
        bandwidth_as: None,
    })
}

fn parse_pt(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(pt) if pt <= 127 => Ok(pt),
        _ => Err(format!("bad payload type {s:?}")),
    }
}

fn parse_rtpmap(arg: &str) -> Result<RtpMap, String> {
    let (pt, rest) = arg
        .split_once(' ')
        .ok_or_else(|| "rtpmap needs a payload type and an encoding".to_string())?;
    let payload_type = parse_pt(pt)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().unwrap_or("").to_owned();
    if encoding.is_empty() {
        return Err("rtpmap without encoding name".into());
    }
    let clock_rate = parts
        .next()
        .and_then(|r| r.parse::<u32>().ok())
        .filter(|r| *r > 0)
        .ok_or_else(|| "rtpmap without a valid clock rate".to_string())?;
    let channels = match parts.next() {
        Some(c) => Some(c.parse::<u32>().map_err(|_| "bad rtpmap channels")?),
        None => None,
    };
    Ok(RtpMap {
        payload_type,
        encoding,
        clock_rate,
        channels,
    })
}

/// Parse an RFC 4733 §7.1.1 event list (`0-15,66`) into a 256-bit set.
fn parse_event_list(s: &str) -> [bool; 256] {
    let mut set = [false; 256];
    for item in s.split(',') {
        let item = item.trim();
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u8>(), b.trim().parse::<u8>()),
            None => (item.parse::<u8>(), item.parse::<u8>()),
        };
        if let (Ok(lo), Ok(hi)) = (lo, hi) {
            for e in lo..=hi {
                set[usize::from(e)] = true;
            }
        }
    }
    set
}

/// Format the events of `set` that we support as an RFC 4733 list (`0-15`).
fn format_supported_events(set: &[bool; 256]) -> String {
    let mut out = Vec::new();
    let mut run: Option<(u8, u8)> = None;
    for e in SUPPORTED_EVENTS {
        if set[usize::from(e)] {
            run = match run {
                Some((lo, hi)) if hi + 1 == e => Some((lo, e)),
                Some((lo, hi)) => {
                    out.push(fmt_run(lo, hi));
                    Some((e, e))
                }
                None => Some((e, e)),
            };
        }
    }
    if let Some((lo, hi)) = run {
        out.push(fmt_run(lo, hi));
    }
    out.join(",")
}

fn fmt_run(lo: u8, hi: u8) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// One audio `m=` section to write.
struct AudioSection {
    port: u16,
    /// `RTP/AVP` or `RTP/SAVP`.
    proto: &'static str,
    /// Further attribute lines without `a=` (crypto, rtcp-mux).
    extra: Vec<String>,
    /// (payload type, rtpmap value, fmtp value)
    formats: Vec<(u8, String, Option<String>)>,
    direction: Direction,
    /// `a=mid` (RFC 5888 §4), for BUNDLE.
    mid: Option<String>,
    /// `b=AS` in kbit/s (RFC 4566 §5.8).
    bandwidth_kbps: Option<u32>,
    /// `a=ptime`: the packet length we want to receive (RFC 4566 §6).
    ptime_ms: u32,
}

/// A stream we answer with port 0 (RFC 3264 §6): its `m=` line, and its `a=mid` if it had one
/// (RFC 8843 §7.3.3 keeps the tag of a rejected stream, outside any BUNDLE group).
fn rejected_section(m: &MediaDescription) -> String {
    let first_fmt = m.formats.first().map(String::as_str).unwrap_or("0");
    let mut s = format!("m={} 0 {} {first_fmt}", m.media, m.proto);
    if let Some(mid) = &m.mid {
        s.push_str("\r\na=mid:");
        s.push_str(mid);
    }
    s
}

fn write_session(
    origin_id: u64,
    version: u64,
    local: SocketAddr,
    bundle: Option<&str>,
    sections: &[Result<AudioSection, String>],
) -> String {
    use std::fmt::Write;
    let ip = local.ip();
    let at = addr_type(ip);
    let mut s = String::with_capacity(400);
    let _ = write!(
        s,
        "v=0\r\no=- {origin_id} {version} IN {at} {ip}\r\ns=webphone\r\nc=IN {at} {ip}\r\nt=0 0\r\n"
    );
    if let Some(mid) = bundle {
        let _ = write!(s, "a=group:BUNDLE {mid}\r\n");
    }
    for sec in sections {
        match sec {
            Ok(a) => {
                let pts: Vec<String> = a.formats.iter().map(|f| f.0.to_string()).collect();
                let _ = write!(s, "m=audio {} {} {}\r\n", a.port, a.proto, pts.join(" "));
                // RFC 4566 §5: b= comes before the a= lines of the section.
                if let Some(kbps) = a.bandwidth_kbps {
                    let _ = write!(s, "b=AS:{kbps}\r\n");
                }
                for (pt, map, fmtp) in &a.formats {
                    let _ = write!(s, "a=rtpmap:{pt} {map}\r\n");
                    if let Some(f) = fmtp {
                        let _ = write!(s, "a=fmtp:{pt} {f}\r\n");
                    }
                }
                let _ = write!(
                    s,
                    "a=ptime:{}\r\na={}\r\n",
                    a.ptime_ms,
                    a.direction.as_str()
                );
                if let Some(mid) = &a.mid {
                    let _ = write!(s, "a=mid:{mid}\r\n");
                }
                for x in &a.extra {
                    let _ = write!(s, "a={x}\r\n");
                }
            }
            // A rejected stream: already formatted `m=` line.
            Err(mline) => {
                let _ = write!(s, "{mline}\r\n");
            }
        }
    }
    s
}

/// Create an SDP offer (RFC 3264 §5) for one audio stream at `local` with our codecs in
/// preference order, telephone-event (events 0-16) if wanted, and `a=ptime:20`.
///
/// Telephone-event is offered at the RTP clock of every offered codec
/// ([`telephone_event_offer_pt`]: 110 for 48000 with Opus) and always at 8000 on PT 101.
///
/// `local` must be the address the peer can reach (not `0.0.0.0`); `version` must grow by one
/// for each changed offer in the same session (RFC 3264 §8). With an empty codec list the
/// default list (PCMU, PCMA) is offered.
pub fn create_offer(origin_id: u64, version: u64, local: SocketAddr, prefs: &MediaOffer) -> String {
    let mut codecs: Vec<Codec> = Vec::new();
    for c in &prefs.codecs {
        if !codecs.contains(c) {
            codecs.push(*c);
        }
    }
    if codecs.is_empty() {
        tracing::warn!("create_offer with no codecs: offering PCMU and PCMA");
        codecs = vec![Codec::Pcmu, Codec::Pcma];
    }
    let mut formats: Vec<(u8, String, Option<String>)> = codecs
        .iter()
        .map(|c| (c.default_payload_type(), c.rtpmap(), codec_fmtp(*c, prefs)))
        .collect();
    if prefs.telephone_event {
        // One telephone-event per RTP clock we offer, in codec preference order (RFC 4733
        // §7.1.1 / §2.1: events run on the audio codec's clock), and always the 8000 Hz one:
        // many peers (baresip 1.x, older PBXs) know only `telephone-event/8000` and pair it
        // with any codec; without it they would answer without events.
        let mut clocks: Vec<u32> = Vec::new();
        for clock in codecs.iter().map(|c| c.clock_rate()).chain([SAMPLE_RATE]) {
            if !clocks.contains(&clock) {
                clocks.push(clock);
            }
        }
        for clock in clocks {
            formats.push((
                telephone_event_offer_pt(clock),
                format!("telephone-event/{clock}"),
                Some(format!(
                    "{}-{}",
                    SUPPORTED_EVENTS.start(),
                    SUPPORTED_EVENTS.end()
                )),
            ));
        }
    }
    let (proto, extra) = if prefs.dtls {
        crate::dtls_srtp::offer_attributes()
    } else {
        crate::sdp_crypto::offer_attributes(prefs)
    };
    // DTLS-SRTP offers are what WebRTC endpoints take: tag the stream and offer it as a BUNDLE
    // group of one (RFC 8843 §7.2; JSEP endpoints such as browsers expect `a=mid` on every
    // stream). Peers that do not know BUNDLE ignore both lines (RFC 5888 §8.1.1).
    let mid = prefs.dtls.then(|| OFFER_MID.to_owned());
    let section = AudioSection {
        port: local.port(),
        proto,
        extra,
        formats,
        direction: prefs.direction,
        mid,
        bandwidth_kbps: prefs.bandwidth_kbps,
        ptime_ms: prefs.ptime_ms,
    };
    let bundle = prefs.dtls.then_some(OFFER_MID);
    write_session(origin_id, version, local, bundle, &[Ok(section)])
}

/// The `a=mid` of the audio stream of our DTLS-SRTP offers.
pub const OFFER_MID: &str = "0";

/// Our `a=fmtp` value for a codec (Opus: RFC 7587 §6.1 receive parameters).
fn codec_fmtp(codec: Codec, prefs: &MediaOffer) -> Option<String> {
    match codec {
        Codec::Opus => Some(prefs.opus.fmtp()),
        // RFC 4856 §2.1.9 / RFC 3551 §4.5.6: we never send Annex B (VAD/CNG) frames.
        Codec::G729 => Some("annexb=no".to_owned()),
        _ => None,
    }
}

/// Answer an SDP offer (RFC 3264 §6) with session version = `origin_id`.
///
/// See [`answer_offer_with_version`]; use that one for answers to re-offers in the same
/// session, whose version must grow when the answer changes (RFC 3264 §8).
pub fn answer_offer(
    offer: &str,
    origin_id: u64,
    local: SocketAddr,
    prefs: &MediaOffer,
) -> Result<(String, Negotiated), SdpError> {
    answer_offer_with_version(offer, origin_id, origin_id, local, prefs)
}

/// Answer an SDP offer (RFC 3264 §6).
///
/// The first audio stream over plain RTP that has a codec of ours is accepted: the codec is the
/// first of *our* preference list that the offer contains, with the offerer's payload type
/// numbers (also for telephone-event, whose event list is intersected with 0-16). Our direction
/// is the offer's reversed (sendonly <-> recvonly, RFC 3264 §6.1) combined with
/// `prefs.direction`; an offer with `c=0.0.0.0` (the RFC 2543 hold convention, RFC 3264 §8.4)
/// means we do not send. All other streams are rejected with port 0. If no stream can be
/// accepted the result is [`SdpError::NoCommonCodec`] (or [`SdpError::NoAudio`] when the offer
/// has no audio at all) and the caller should answer 488.
pub fn answer_offer_with_version(
    offer: &str,
    origin_id: u64,
    version: u64,
    local: SocketAddr,
    prefs: &MediaOffer,
) -> Result<(String, Negotiated), SdpError> {
    let desc = parse(offer)?;
    if desc.media.is_empty() {
        return Err(SdpError::Missing("m="));
    }
    if !desc.media.iter().any(|m| m.media == "audio") {
        return Err(SdpError::NoAudio);
    }
    let mut negotiated: Option<Negotiated> = None;
    let mut accepted_mid: Option<String> = None;
    let mut sections = Vec::with_capacity(desc.media.len());
    for m in &desc.media {
        if negotiated.is_none()
            && m.media == "audio"
            && m.port != 0
            && (m.is_plain_rtp() || m.is_savp() || m.is_dtls())
        {
            if let Some((section, neg)) = accept_audio(&desc, m, local, prefs)? {
                negotiated = Some(neg);
                accepted_mid.clone_from(&m.mid);
                sections.push(Ok(section));
                continue;
            }
        }
        sections.push(Err(rejected_section(m)));
    }
    let negotiated = negotiated.ok_or(SdpError::NoCommonCodec)?;
    // BUNDLE (RFC 8843 §7.3): the offered group shrinks to the one stream we accept; it is the
    // group's only member, so it needs no shared address and keeps its own port. Rejected
    // streams leave the group (§7.3.3).
    let bundle = accepted_mid.as_deref().filter(|mid| {
        desc.bundle_groups
            .iter()
            .any(|g| g.iter().any(|x| x == mid))
    });
    Ok((
        write_session(origin_id, version, local, bundle, &sections),
        negotiated,
    ))
}

fn accept_audio(
    desc: &SessionDescription,
    m: &MediaDescription,
    local: SocketAddr,
    prefs: &MediaOffer,
) -> Result<Option<(AudioSection, Negotiated)>, SdpError> {
    let offered: Vec<(u8, Codec)> = m
        .payload_types()
        .filter_map(|pt| m.codec_of(pt).map(|c| (pt, c)))
        .collect();
    let common: Vec<(u8, Codec)> = prefs
        .codecs
        .iter()
        .chain(prefs.accept_only.iter())
        .filter_map(|want| offered.iter().find(|(_, c)| c == want).copied())
        .collect();
    let ptime = send_ptime(m.ptime, prefs);
    let Some((pt, codec)) = within_bandwidth(&common, desc.bandwidth_of(m), ptime) else {
        return Ok(None);
    };
    let (proto, extra, srtp, dtls) = if m.is_dtls() {
        let Some((proto, extra, dtls)) = crate::dtls_srtp::answer_attributes(m, prefs) else {
            return Ok(None);
        };
        (proto, extra, None, Some(dtls))
    } else {
        let Some((proto, extra, srtp)) = crate::sdp_crypto::answer_attributes(m, prefs) else {
            return Ok(None);
        };
        (proto, extra, srtp, None)
    };
    let ip = desc.connection_of(m)?;
    let mut formats = vec![(pt, codec.rtpmap(), codec_fmtp(codec, prefs))];
    let mut te_pt = None;
    if prefs.telephone_event {
        if let Some((tpt, clock)) = m.telephone_event_for(codec) {
            // RFC 4733 §7.1.1: no fmtp means events 0-15.
            let events = parse_event_list(m.fmtp(tpt).unwrap_or("0-15"));
            let list = format_supported_events(&events);
            if !list.is_empty() {
                formats.push((tpt, format!("telephone-event/{clock}"), Some(list)));
                te_pt = Some(tpt);
            }
        }
    }
    let mut direction = desc.direction_of(m).reversed().intersect(prefs.direction);
    if ip.is_unspecified() {
        direction = direction.intersect(Direction::RecvOnly);
    }
    let neg = Negotiated {
        remote_rtp: SocketAddr::new(ip, m.port),
        codec,
        payload_type: pt,
        telephone_event_pt: te_pt,
        direction,
        ptime_ms: ptime,
        srtp,
        dtls,
        rtcp_mux: m.rtcp_mux,
        send_limits: SendLimits::of_remote(desc, m, pt),
    };
    let section = AudioSection {
        port: local.port(),
        proto,
        extra,
        formats,
        direction,
        // RFC 5888 §9.1: the answer keeps the offer's identification tag.
        mid: m.mid.clone(),
        bandwidth_kbps: prefs.bandwidth_kbps,
        ptime_ms: prefs.ptime_ms,
    };
    Ok(Some((section, neg)))
}

/// The packet length we send: a configured one ([`MediaOffer::ptime_fixed`]), else the peer's
/// `a=ptime` (what it wants to receive, RFC 4566 §6, RFC 3264 §5) when it gave one, else ours;
/// in whole 20 ms ticks from 20 to 120 ms (a value between ticks is rounded down, so packets
/// are never longer than asked for).
/// The codec to answer with among `common` (in our order of preference): the first that
/// fits in the offerer's `b=AS` (`kbps`, RFC 4566 §5.8: what it is prepared to receive),
/// when it set one; when none fits, the one that needs the least. Pure, for tests.
fn within_bandwidth(
    common: &[(u8, Codec)],
    kbps: Option<u32>,
    ptime_ms: u32,
) -> Option<(u8, Codec)> {
    let Some(kbps) = kbps.filter(|&k| k > 0) else {
        return common.first().copied();
    };
    common
        .iter()
        .find(|(_, c)| c.fits_bandwidth(kbps, ptime_ms))
        .or_else(|| common.iter().min_by_key(|(_, c)| c.min_payload_bitrate()))
        .copied()
}

pub(crate) fn send_ptime(remote: Option<u32>, prefs: &MediaOffer) -> u32 {
    let want = match remote {
        Some(r) if !prefs.ptime_fixed => r,
        _ => prefs.ptime_ms,
    };
    (want / PTIME_MS * PTIME_MS).clamp(PTIME_MS, crate::MAX_PTIME_MS)
}

/// Apply the answer to our offer (RFC 3264 §7).
///
/// The answer's first audio stream is ours. Port 0 gives [`SdpError::Rejected`]. The codec we
/// send with is the first of the answer's formats that we support (the answerer's preference,
/// RFC 3264 §6.1), with the answer's payload type numbers; our direction is the answer's
/// reversed combined with `prefs.direction`.
pub fn apply_answer(answer: &str, prefs: &MediaOffer) -> Result<Negotiated, SdpError> {
    let desc = parse(answer)?;
    let m = desc
        .media
        .iter()
        .find(|m| m.media == "audio")
        .ok_or(SdpError::NoAudio)?;
    if m.port == 0 {
        return Err(SdpError::Rejected);
    }
    if !(m.is_plain_rtp() || m.is_savp() || m.is_dtls()) {
        return Err(SdpError::NoCommonCodec);
    }
    let (srtp, dtls) = if prefs.dtls || m.is_dtls() {
        (None, Some(crate::dtls_srtp::apply_answer(m, prefs)?))
    } else {
        (crate::sdp_crypto::apply_answer_crypto(m, prefs)?, None)
    };
    let (pt, codec) = m
        .payload_types()
        .filter_map(|pt| m.codec_of(pt).map(|c| (pt, c)))
        .find(|(_, c)| prefs.codecs.contains(c))
        .ok_or(SdpError::NoCommonCodec)?;
    let ip = desc.connection_of(m)?;
    let te_pt = if prefs.telephone_event {
        m.telephone_event_for(codec).map(|(pt, _)| pt)
    } else {
        None
    };
    let mut direction = desc.direction_of(m).reversed().intersect(prefs.direction);
    if ip.is_unspecified() {
        direction = direction.intersect(Direction::RecvOnly);
    }
    Ok(Negotiated {
        remote_rtp: SocketAddr::new(ip, m.port),
        codec,
        payload_type: pt,
        telephone_event_pt: te_pt,
        direction,
        ptime_ms: send_ptime(m.ptime, prefs),
        srtp,
        dtls,
        rtcp_mux: m.rtcp_mux,
        send_limits: SendLimits::of_remote(&desc, m, pt),
    })
}

impl SendLimits {
    /// What the peer's description says about what it takes on stream `m`, whose format
    /// `pt` we send: `b=AS` and, for Opus, the `a=fmtp` limits (RFC 7587 §6.1).
    pub(crate) fn of_remote(desc: &SessionDescription, m: &MediaDescription, pt: u8) -> SendLimits {
        let fmtp = |name: &str| -> Option<u32> {
            m.fmtp(pt)?.split(';').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().parse().ok())?
            })
        };
        let opus = m.codec_of(pt) == Some(Codec::Opus);
        SendLimits {
            bandwidth_kbps: desc.bandwidth_of(m).filter(|&k| k > 0),
            opus_max_average_bitrate: fmtp("maxaveragebitrate")
                .filter(|_| opus)
                .filter(|&b| b > 0),
            opus_max_playback_rate: fmtp("maxplaybackrate").filter(|_| opus).filter(|&r| r > 0),
        }
    }
}

#[cfg(test)]
#[path = "sdp_tests.rs"]
mod tests;
