//! SDES: SRTP keys in SDP (RFC 4568), the `a=crypto` attribute and its offer/answer rules.
//!
//! Policy ([`SrtpPolicy`], from the `mediaencryption` parameter):
//! - `Off`: we offer `RTP/AVP` without crypto and answer only unencrypted (an `RTP/SAVP` offer
//!   is refused; `a=crypto` in an `RTP/AVP` offer is ignored).
//! - `Optional`: we offer `RTP/AVP` *with* `a=crypto` lines (opportunistic SRTP, RFC 8643
//!   §3), so peers without SRTP still talk to us; when answering we encrypt whenever the offer
//!   carries a crypto line we can use.
//! - `Required`: we offer `RTP/SAVP` (RFC 3711 §12) and accept only encrypted media; a peer
//!   that cannot do it gets 488 (our answer fails with [`SdpError::NoCommonCodec`]) or, when
//!   its answer lacks usable crypto, [`SdpError::Crypto`].
//!
//! Suites: `AES_CM_128_HMAC_SHA1_80`, `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2) and
//! `AEAD_AES_128_GCM` (RFC 7714 §12), offered in that order, each with its own random master
//! key (RFC 4568 §6.1: a key is used with one suite only). One `inline:` key per line; key
//! parameters with an MKI, several keys per line, and session parameters (RFC 4568 §6.3) are
//! not supported and make that crypto line unusable (the next one is tried).
//!
//! Key material is never logged: [`MasterKey`] and [`SrtpParams`] print `<redacted>`.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine};

use crate::sdp::MediaDescription;
use crate::{MediaOffer, SdpError};

/// Most `a=crypto` lines kept per stream; more are ignored (hostile SDP).
pub const MAX_CRYPTO_LINES: usize = 16;
/// Longest `a=crypto` value we parse.
pub const MAX_CRYPTO_LEN: usize = 512;

/// Standard base64 (RFC 4648 §4) that writes padding and accepts it missing (some stacks drop
/// it in `inline:` keys).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whether media is encrypted, from the `mediaencryption` parameter. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SrtpPolicy {
    /// Plain RTP only.
    #[default]
    Off,
    /// SRTP when the peer can (opportunistic, RFC 8643), else plain RTP.
    Optional,
    /// SRTP or no call.
    Required,
}

/// An SRTP crypto suite usable with SDES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 4568 §6.2.1).
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit RTP tag (RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
    /// AES-128 GCM with a 16-byte tag (RFC 7714 §12).
    AeadAes128Gcm,
}

impl CryptoSuite {
    /// The suites we offer, in preference order.
    pub const ALL: [CryptoSuite; 3] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
        CryptoSuite::AeadAes128Gcm,
    ];

    /// The name used in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// The suite with this name (suite names are case-sensitive, RFC 4568 §9.1).
    pub fn from_name(name: &str) -> Option<CryptoSuite> {
        CryptoSuite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes (112 bits for AES-CM, RFC 3711 §8.2; 96 bits for GCM,
    /// RFC 7714 §12).
    pub fn salt_len(self) -> usize {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 | CryptoSuite::AesCm128HmacSha1_32 => 14,
            CryptoSuite::AeadAes128Gcm => 12,
        }
    }

    /// Length of the `inline:` key-salt value once decoded.
    pub fn key_salt_len(self) -> usize {
        self.key_len() + self.salt_len()
    }
}

impl std::fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An SRTP master key followed by its master salt (the `inline:` key-salt of RFC 4568 §6.1).
/// Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(Vec<u8>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(<redacted {} bytes>)", self.0.len())
    }
}

impl MasterKey {
    /// Key and salt concatenated.
    pub fn from_bytes(bytes: Vec<u8>) -> MasterKey {
        MasterKey(bytes)
    }

    /// Fresh random key material for `suite` from the crypto provider's CSPRNG (RFC 4568
    /// §6.1, RFC 3711 §8.1: keys must be random).
    pub fn random(suite: CryptoSuite) -> MasterKey {
        let mut b = vec![0u8; suite.key_salt_len()];
        let filled = rtc_srtp::crypto::default_provider()
            .map_err(|e| e.to_string())
            .and_then(|p| p.random().fill(&mut b).map_err(|e| e.to_string()));
        if let Err(e) = filled {
            // The provider's generator is the thread CSPRNG; fall back to it directly.
            tracing::warn!(error = %e, "crypto provider randomness failed; using the thread CSPRNG");
            rand::fill(&mut b[..]);
        }
        MasterKey(b)
    }

    /// Key and salt concatenated.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The master key part.
    pub fn key(&self, suite: CryptoSuite) -> &[u8] {
        self.0.get(..suite.key_len()).unwrap_or(&[])
    }

    /// The master salt part.
    pub fn salt(&self, suite: CryptoSuite) -> &[u8] {
        self.0.get(suite.key_len()..).unwrap_or(&[])
    }

    /// Base64 for `inline:`.
    pub fn to_base64(&self) -> String {
        B64.encode(&self.0)
    }
}

/// Our offered keys, one per suite, with crypto tags 1, 2, 3 in [`CryptoSuite::ALL`] order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SdesKeys(Vec<(CryptoSuite, MasterKey)>);

impl std::fmt::Debug for SdesKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let suites: Vec<&str> = self.0.iter().map(|(s, _)| s.name()).collect();
        write!(f, "SdesKeys({suites:?}, <redacted>)")
    }
}

impl SdesKeys {
    /// Random keys for every supported suite.
    pub fn generate() -> SdesKeys {
        SdesKeys(
            CryptoSuite::ALL
                .into_iter()
                .map(|s| (s, MasterKey::random(s)))
                .collect(),
        )
    }

    /// Given keys (tests, known vectors); tags follow the order.
    pub fn from_keys(keys: Vec<(CryptoSuite, MasterKey)>) -> SdesKeys {
        SdesKeys(keys)
    }

    /// No keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (tag, suite, key) of each offered line.
    pub fn entries(&self) -> impl Iterator<Item = (u32, CryptoSuite, &MasterKey)> + '_ {
        self.0
            .iter()
            .enumerate()
            .map(|(i, (s, k))| (u32::try_from(i + 1).unwrap_or(u32::MAX), *s, k))
    }

    fn key_for(&self, suite: CryptoSuite) -> Option<&MasterKey> {
        self.0.iter().find(|(s, _)| *s == suite).map(|(_, k)| k)
    }
}

/// The negotiated SRTP suite and keys of a call: `local` protects what we send, `remote`
/// unprotects what we receive (RFC 4568 §6.1: each side sends with the key it advertised).
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpParams {
    /// The suite.
    pub suite: CryptoSuite,
    /// Our key (in our `a=crypto`).
    pub local: MasterKey,
    /// The peer's key (in its `a=crypto`).
    pub remote: MasterKey,
}

impl std::fmt::Debug for SrtpParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrtpParams({}, <redacted keys>)", self.suite)
    }
}

/// Why an `a=crypto` value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Not `tag suite key-params [session-params]` (RFC 4568 §9.1).
    #[error("malformed a=crypto: {0}")]
    Syntax(&'static str),
    /// A suite we do not implement.
    #[error("unsupported crypto suite {0}")]
    UnknownSuite(String),
    /// The key is not base64 or has the wrong length for the suite.
    #[error("bad SRTP key: {0}")]
    BadKey(&'static str),
    /// Valid but not supported here (MKI, several keys, session parameters, a key method
    /// other than `inline`).
    #[error("unsupported a=crypto feature: {0}")]
    Unsupported(&'static str),
}

/// One parsed `a=crypto` line with a single inline key.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag (1-9 digits) that the answer echoes.
    pub tag: u32,
    /// The suite.
    pub suite: CryptoSuite,
    /// Key and salt.
    pub key: MasterKey,
    /// The key lifetime in packets, if given (`2^31` or decimal).
    pub lifetime: Option<u64>,
}

impl std::fmt::Debug for CryptoAttribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl CryptoAttribute {
    /// The attribute value (after `a=crypto:`).
    pub fn to_value(&self) -> String {
        format_crypto(self.tag, self.suite, &self.key)
    }
}

/// Write an `a=crypto` value: `1 AES_CM_128_HMAC_SHA1_80 inline:<base64>`.
pub fn format_crypto(tag: u32, suite: CryptoSuite, key: &MasterKey) -> String {
    format!("{tag} {} inline:{}", suite.name(), key.to_base64())
}

/// Parse an `a=crypto` value (RFC 4568 §9.1), e.g.
/// `1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20`.
pub fn parse_crypto(value: &str) -> Result<CryptoAttribute, CryptoError> {
    if value.len() > MAX_CRYPTO_LEN {
        return Err(CryptoError::Syntax("too long"));
    }
    let mut fields = value.split_ascii_whitespace();
    let tag_s = fields.next().ok_or(CryptoError::Syntax("empty"))?;
    if tag_s.is_empty() || tag_s.len() > 9 || !tag_s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::Syntax("tag must be 1-9 digits"));
    }
    let tag = tag_s
        .parse::<u32>()
        .map_err(|_| CryptoError::Syntax("bad tag"))?;
    let suite_s = fields
        .next()
        .ok_or(CryptoError::Syntax("no crypto suite"))?;
    let suite = CryptoSuite::from_name(suite_s)
        .ok_or_else(|| CryptoError::UnknownSuite(suite_s.chars().take(64).collect()))?;
    let key_params = fields
        .next()
        .ok_or(CryptoError::Syntax("no key parameters"))?;
    if fields.next().is_some() {
        return Err(CryptoError::Unsupported("session parameters"));
    }
    if key_params.contains(';') {
        return Err(CryptoError::Unsupported("several keys"));
    }
    let (method, info) = key_params
        .split_once(':')
        .ok_or(CryptoError::Syntax("key parameter without method"))?;
    if method != "inline" {
        return Err(CryptoError::Unsupported("key method other than inline"));
    }
    let mut parts = info.split('|');
    let key_salt = parts.next().unwrap_or("");
    let mut lifetime = None;
    for p in parts {
        if p.contains(':') {
            return Err(CryptoError::Unsupported("MKI"));
        }
        if lifetime.is_some() {
            return Err(CryptoError::Syntax("two lifetimes"));
        }
        lifetime = Some(parse_lifetime(p)?);
    }
    let bytes = B64
        .decode(key_salt)
        .map_err(|_| CryptoError::BadKey("not base64"))?;
    if bytes.len() != suite.key_salt_len() {
        return Err(CryptoError::BadKey("wrong length for the suite"));
    }
    Ok(CryptoAttribute {
        tag,
        suite,
        key: MasterKey(bytes),
        lifetime,
    })
}

fn parse_lifetime(s: &str) -> Result<u64, CryptoError> {
    let bad = CryptoError::Syntax("bad key lifetime");
    if let Some(exp) = s.strip_prefix("2^") {
        let e: u32 = exp.parse().map_err(|_| bad.clone())?;
        // RFC 3711 §9.2: at most 2^48 SRTP packets.
        if e == 0 || e > 48 {
            return Err(bad);
        }
        Ok(1u64 << e)
    } else {
        if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        s.parse().map_err(|_| bad)
    }
}

/// The first usable crypto line of a stream, in the offerer's order (RFC 4568 §7.1.1).
fn first_usable(m: &MediaDescription) -> Option<CryptoAttribute> {
    m.crypto.iter().find_map(|v| match parse_crypto(v) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(error = %e, "skipping a=crypto line");
            None
        }
    })
}

/// Profile and extra attribute lines (without `a=`) of our offer: crypto lines per the
/// policy. We do not offer `rtcp-mux` (SIP peers expect RTCP on port + 1, which we bind), but
/// accept it in offers (RFC 5761 §5.1.1).
pub(crate) fn offer_attributes(prefs: &MediaOffer) -> (&'static str, Vec<String>) {
    let mut extra = Vec::new();
    let proto = match prefs.srtp {
        SrtpPolicy::Off => "RTP/AVP",
        SrtpPolicy::Optional => "RTP/AVP",
        SrtpPolicy::Required => "RTP/SAVP",
    };
    if prefs.srtp != SrtpPolicy::Off {
        if prefs.sdes_keys.is_empty() {
            tracing::warn!("SRTP wanted but MediaOffer has no SDES keys (use with_srtp): the answer will not match");
        }
        for (tag, suite, key) in prefs.sdes_keys.entries() {
            extra.push(format!("crypto:{}", format_crypto(tag, suite, key)));
        }
    }
    (proto, extra)
}

/// How we answer an offered stream: profile, extra attribute lines, and the SRTP parameters.
/// `None`: the stream cannot be accepted under our policy (the answer rejects it; 488 if no
/// other stream fits, RFC 4568 §7.1.2).
pub(crate) fn answer_attributes(
    m: &MediaDescription,
    prefs: &MediaOffer,
) -> Option<(&'static str, Vec<String>, Option<crate::SrtpParams>)> {
    let proto = if m.is_savp() { "RTP/SAVP" } else { "RTP/AVP" };
    let mut extra = Vec::new();
    let chosen = if prefs.srtp == SrtpPolicy::Off {
        None
    } else {
        first_usable(m)
    };
    let srtp = match chosen {
        Some(c) => {
            let local = prefs
                .sdes_keys
                .key_for(c.suite)
                .cloned()
                .unwrap_or_else(|| MasterKey::random(c.suite));
            extra.push(format!("crypto:{}", format_crypto(c.tag, c.suite, &local)));
            tracing::debug!(suite = %c.suite, tag = c.tag, "SRTP (SDES) accepted");
            Some(crate::SrtpParams {
                suite: c.suite,
                local,
                remote: c.key,
            })
        }
        None if m.is_savp() || prefs.srtp == SrtpPolicy::Required => {
            tracing::info!(policy = ?prefs.srtp, proto = %m.proto, crypto_lines = m.crypto.len(),
                "offered stream refused: no acceptable media encryption");
            return None;
        }
        None => None,
    };
    if m.rtcp_mux {
        extra.push("rtcp-mux".to_owned());
    }
    Some((proto, extra, srtp))
}

/// The SRTP parameters of an answer to our offer (RFC 4568 §7.1.3/§7.5): the answer's crypto
/// line must echo one of our tags with the same suite.
pub(crate) fn apply_answer_crypto(
    m: &MediaDescription,
    prefs: &MediaOffer,
) -> Result<Option<crate::SrtpParams>, SdpError> {
    if prefs.srtp == SrtpPolicy::Off {
        if m.is_savp() {
            return Err(SdpError::Crypto(
                "answer uses RTP/SAVP but we did not offer SRTP".into(),
            ));
        }
        return Ok(None);
    }
    if m.crypto.is_empty() {
        if prefs.srtp == SrtpPolicy::Required || m.is_savp() {
            return Err(SdpError::Crypto("answer has no a=crypto".into()));
        }
        return Ok(None);
    }
    let c = first_usable(m)
        .ok_or_else(|| SdpError::Crypto("no usable a=crypto in the answer".into()))?;
    let (_, suite, local) = prefs
        .sdes_keys
        .entries()
        .find(|(tag, _, _)| *tag == c.tag)
        .ok_or_else(|| {
            SdpError::Crypto(format!(
                "answer names crypto tag {} we did not offer",
                c.tag
            ))
        })?;
    if suite != c.suite {
        return Err(SdpError::Crypto(format!(
            "answer changed the suite of tag {} from {suite} to {}",
            c.tag, c.suite
        )));
    }
    tracing::debug!(%suite, tag = c.tag, "SRTP (SDES) negotiated");
    Ok(Some(crate::SrtpParams {
        suite,
        local: local.clone(),
        remote: c.key,
    }))
}
