//! SRTP and SRTCP protection (RFC 3711) for one call, on `rtc-srtp`'s sans-IO contexts.
//!
//! One [`SrtpSession`] holds two contexts: the outbound one keyed with our SDES key and the
//! inbound one keyed with the peer's (RFC 4568 §6.1). Each context derives the session keys
//! (RFC 3711 §4.3), tracks the rollover counter per SSRC (§3.3.1) and, inbound, rejects
//! replayed packets (§3.3.2) with a sliding window.

use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use crate::sdp_crypto::{CryptoSuite, MasterKey, SrtpParams};

/// Replay window for inbound SRTP and SRTCP (RFC 3711 §3.3.2 asks for at least 64).
pub const REPLAY_WINDOW: usize = 256;

/// Why protection or unprotection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The crypto provider or the key does not fit the suite.
    #[error("SRTP context setup failed: {0}")]
    Setup(String),
    /// Authentication failed, replay, too short, or not RTP/RTCP at all.
    #[error("SRTP: {0}")]
    Packet(String),
}

/// The `rtc-srtp` profile of a suite.
pub fn profile_of(suite: CryptoSuite) -> ProtectionProfile {
    match suite {
        CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        CryptoSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    }
}

fn context(suite: CryptoSuite, key: &MasterKey, inbound: bool) -> Result<Context, SrtpError> {
    let provider =
        rtc_srtp::crypto::default_provider().map_err(|e| SrtpError::Setup(e.to_string()))?;
    let (srtp_opt, srtcp_opt) = if inbound {
        (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(
        key.key(suite),
        key.salt(suite),
        profile_of(suite),
        srtp_opt,
        srtcp_opt,
        provider.crypto(),
    )
    .map_err(|e| SrtpError::Setup(e.to_string()))
}

/// Outbound and inbound SRTP state of one call.
pub struct SrtpSession {
    suite: CryptoSuite,
    tx: Context,
    rx: Context,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrtpSession({})", self.suite)
    }
}

impl SrtpSession {
    /// Contexts for the negotiated parameters.
    pub fn new(params: &SrtpParams) -> Result<SrtpSession, SrtpError> {
        Ok(SrtpSession {
            suite: params.suite,
            tx: context(params.suite, &params.local, false)?,
            rx: context(params.suite, &params.remote, true)?,
        })
    }

    /// The suite in use.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Encrypt and authenticate an RTP packet (RFC 3711 §3.3).
    pub fn protect_rtp(&mut self, rtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.tx
            .encrypt_rtp(rtp)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }

    /// Check and decrypt an SRTP packet; fails on a bad tag or a replay (RFC 3711 §3.3).
    pub fn unprotect_rtp(&mut self, srtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.rx
            .decrypt_rtp(srtp)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }

    /// Encrypt and authenticate an RTCP compound packet (RFC 3711 §3.4).
    pub fn protect_rtcp(&mut self, rtcp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.tx
            .encrypt_rtcp(rtcp)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }

    /// Check and decrypt an SRTCP packet (RFC 3711 §3.4).
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.rx
            .decrypt_rtcp(srtcp)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }
}

/// The SRTP state a negotiation calls for: `(None, false)` for plain RTP, `(Some, false)` when
/// encrypted, `(None, true)` when encryption was negotiated but the contexts could not be
/// made (then nothing may be sent or accepted: never fall back to plaintext).
pub fn for_negotiated(params: Option<&SrtpParams>) -> (Option<Box<SrtpSession>>, bool) {
    match params {
        None => (None, false),
        Some(p) => match SrtpSession::new(p) {
            Ok(s) => (Some(Box::new(s)), false),
            Err(e) => {
                tracing::error!(error = %e, "SRTP negotiated but unusable: media blocked");
                (None, true)
            }
        },
    }
}
