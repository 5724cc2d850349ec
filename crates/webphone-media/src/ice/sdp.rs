//! ICE attributes in SDP (RFC 8839 §5): `a=ice-ufrag`, `a=ice-pwd`, `a=candidate`,
//! `a=end-of-candidates` (RFC 8840 §8.2, all candidates are in the SDP: no trickling), and
//! `a=ice-lite` when reading.
//!
//! The SDP writer of [`crate::sdp`] knows nothing about ICE: [`add_attributes`] inserts our
//! lines at the end of the first audio section of a finished SDP, and [`remote_ice`] reads the
//! peer's from its SDP text, so offer/answer itself is unchanged.

/// Our ICE attributes for one audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIce {
    /// `a=ice-ufrag` (RFC 8839 §5.4: at least 4 characters).
    pub ufrag: String,
    /// `a=ice-pwd` (at least 22 characters).
    pub pwd: String,
    /// `a=candidate` values (without `candidate:`), RFC 8839 §5.1 syntax.
    pub candidates: Vec<String>,
    /// The default RTCP address when RTCP has its own ICE component: written as `a=rtcp`
    /// (RFC 3605), which a peer that declines rtcp-mux uses.
    pub rtcp: Option<std::net::SocketAddr>,
}

/// The peer's ICE attributes for its first audio stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteIce {
    /// `a=ice-ufrag` (media level, else session level; RFC 8839 §5.4).
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
    /// `a=candidate` values (without `candidate:`).
    pub candidates: Vec<String>,
    /// `a=ice-lite` at session level (RFC 8839 §5.3): the peer does no checks of its own.
    pub lite: bool,
    /// `a=rtcp-mux` in the audio section (RFC 5761): RTCP needs no ICE component of its own.
    pub rtcp_mux: bool,
}

/// Insert our ICE lines at the end of the first `m=audio` section of `sdp` (CRLF line ends as
/// [`crate::sdp`] writes them). With `offer_rtcp_mux` an `a=rtcp-mux` is added if the section
/// has none: we gather one component, so RTCP should share the RTP candidate (RFC 5761 §5.1.3).
pub fn add_attributes(sdp: &str, ice: &LocalIce, offer_rtcp_mux: bool) -> String {
    let mut lines: Vec<&str> = sdp.split("\r\n").collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let Some(start) = lines.iter().position(|l| l.starts_with("m=audio")) else {
        return sdp.to_owned();
    };
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, l)| l.starts_with("m="))
        .map(|(i, _)| i)
        .unwrap_or(lines.len());
    let has_mux = lines[start..end].contains(&"a=rtcp-mux");
    let mut extra = vec![
        format!("a=ice-ufrag:{}", ice.ufrag),
        format!("a=ice-pwd:{}", ice.pwd),
    ];
    for c in &ice.candidates {
        extra.push(format!("a=candidate:{c}"));
    }
    extra.push("a=end-of-candidates".to_owned());
    if let Some(rtcp) = ice.rtcp {
        if !lines[start..end].iter().any(|l| l.starts_with("a=rtcp:")) {
            let at = if rtcp.is_ipv4() { "IP4" } else { "IP6" };
            extra.push(format!("a=rtcp:{} IN {at} {}", rtcp.port(), rtcp.ip()));
        }
    }
    if offer_rtcp_mux && !has_mux {
        extra.push("a=rtcp-mux".to_owned());
    }
    let mut out: Vec<String> = lines[..end].iter().map(|s| (*s).to_owned()).collect();
    out.extend(extra);
    out.extend(lines[end..].iter().map(|s| (*s).to_owned()));
    let mut s = out.join("\r\n");
    s.push_str("\r\n");
    s
}

/// Read the peer's ICE attributes for its first audio stream; `None` when it has no
/// ufrag/pwd (a peer without ICE: plain RTP to `c=`/`m=`, RFC 8445 §1 fallback).
pub fn remote_ice(sdp: &str) -> Option<RemoteIce> {
    if sdp.len() > crate::sdp::MAX_SDP_LEN {
        return None;
    }
    let mut session = RemoteIce::default();
    let mut media = RemoteIce::default();
    // 0: session level, 1: in the first audio section, 2: after it.
    let mut where_ = 0u8;
    for raw in sdp.split('\n') {
        let line = raw.trim_end_matches(['\r', ' ', '\t']);
        if let Some(m) = line.strip_prefix("m=") {
            where_ = match where_ {
                0 | 1 if m.starts_with("audio") && where_ == 0 => 1,
                _ => 2,
            };
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
        let target = match where_ {
            0 => &mut session,
            1 => &mut media,
            _ => continue,
        };
        match name {
            "ice-ufrag" => target.ufrag = value.trim().to_owned(),
            "ice-pwd" => target.pwd = value.trim().to_owned(),
            "ice-lite" => target.lite = true,
            "rtcp-mux" => target.rtcp_mux = true,
            "candidate" if target.candidates.len() < MAX_CANDIDATES => {
                target.candidates.push(value.trim().to_owned());
            }
            _ => {}
        }
    }
    let ufrag = non_empty(media.ufrag).or(non_empty(session.ufrag))?;
    let pwd = non_empty(media.pwd).or(non_empty(session.pwd))?;
    Some(RemoteIce {
        ufrag,
        pwd,
        candidates: media.candidates,
        lite: session.lite || media.lite,
        rtcp_mux: media.rtcp_mux,
    })
}

/// Largest number of remote candidates we take from one SDP.
pub const MAX_CANDIDATES: usize = 64;

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}
