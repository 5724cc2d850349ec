//! DTLS-SRTP (RFC 5763 framework, RFC 5764 extension): SRTP keys from a DTLS handshake run on
//! the media socket, the peer authenticated by the certificate fingerprint in its SDP.
//!
//! Pieces:
//! - [`Fingerprint`]: the `a=fingerprint` attribute (RFC 8122 §5, formerly RFC 4572), hash of the
//!   DER certificate; we write `sha-256` and check `sha-256`, `sha-384` and `sha-512`.
//! - [`Setup`]: the `a=setup` attribute (RFC 4145 §4). Per RFC 5763 §5 the offerer says
//!   `actpass`, the answerer `active` (it is then the DTLS client) or `passive`;
//!   [`DtlsRole`] follows from the pair.
//! - [`DtlsIdentity`]: our self-signed ECDSA P-256 certificate, generated once per process
//!   (RFC 8827 §6.5 allows reusing it across calls; it proves nothing but the fingerprint).
//! - [`DtlsSrtp`]: one handshake on one component (RTP, or RTCP without rtcp-mux), sans-IO on
//!   `rtc-dtls`'s [`Endpoint`]: datagrams in ([`DtlsSrtp::handle_datagram`]), datagrams out
//!   ([`DtlsSrtp::poll_transmit`]), retransmissions driven by the caller's `now`
//!   ([`DtlsSrtp::handle_timeout`], RFC 6347 §4.2.4). When the handshake completes, the
//!   peer's certificate has been checked against the SDP fingerprint (RFC 5763 §5: a mismatch
//!   fails the handshake with `bad_certificate`) and the SRTP master keys are exported with the
//!   label `EXTRACTOR-dtls_srtp` (RFC 5764 §4.2) into [`SrtpParams`] for [`crate::srtp`].
//!
//! Key material never appears in logs ([`SrtpParams`] redacts it).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use sha2::Digest;

use crate::sdp_crypto::{CryptoSuite, MasterKey, SrtpParams};

/// The RFC 5705 exporter label for SRTP keys (RFC 5764 §4.2).
pub const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// How long a handshake may take in all. The client gives up earlier when its seven
/// retransmissions (1 s apart) go unanswered; this bounds the server, which has no timer of
/// its own until a ClientHello arrives.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The SDP profile of DTLS-SRTP media (RFC 5764 §8).
pub const PROTO_SAVP: &str = "UDP/TLS/RTP/SAVP";
/// The same with RTCP feedback (RFC 5764 §8, RFC 4585).
pub const PROTO_SAVPF: &str = "UDP/TLS/RTP/SAVPF";

/// Why DTLS-SRTP could not be set up or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    /// The certificate or the DTLS configuration could not be made.
    #[error("DTLS setup failed: {0}")]
    Setup(String),
    /// An `a=fingerprint` value we cannot read or whose hash we do not implement.
    #[error("bad a=fingerprint: {0}")]
    Fingerprint(String),
    /// The peer's certificate does not hash to the fingerprint of its SDP (RFC 5763 §5).
    #[error("DTLS peer certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    /// The handshake failed (an alert, all retransmissions spent, no common SRTP profile).
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
}

/// A hash function of `a=fingerprint` (RFC 8122 §5 `hash-func`) that we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunc {
    /// `sha-256` (what we write).
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
}

impl HashFunc {
    /// The SDP token.
    pub fn name(self) -> &'static str {
        match self {
            HashFunc::Sha256 => "sha-256",
            HashFunc::Sha384 => "sha-384",
            HashFunc::Sha512 => "sha-512",
        }
    }

    fn digest(self, der: &[u8]) -> Vec<u8> {
        match self {
            HashFunc::Sha256 => sha2::Sha256::digest(der).to_vec(),
            HashFunc::Sha384 => sha2::Sha384::digest(der).to_vec(),
            HashFunc::Sha512 => sha2::Sha512::digest(der).to_vec(),
        }
    }
}

/// A certificate fingerprint (`a=fingerprint:sha-256 AB:CD:...`, RFC 8122 §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// The hash function.
    pub hash: HashFunc,
    /// The digest bytes.
    pub digest: Vec<u8>,
}

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_der(hash: HashFunc, der: &[u8]) -> Fingerprint {
        Fingerprint {
            hash,
            digest: hash.digest(der),
        }
    }

    /// Whether `der` hashes to this fingerprint.
    pub fn matches(&self, der: &[u8]) -> bool {
        self.hash.digest(der) == self.digest
    }

    /// Parse the attribute value (after `a=fingerprint:`): hash token (case-insensitive,
    /// RFC 8122 §5) and upper- or lower-case hex pairs separated by colons.
    pub fn parse(value: &str) -> Result<Fingerprint, DtlsError> {
        let bad = |r: &str| DtlsError::Fingerprint(r.to_owned());
        let mut it = value.split_ascii_whitespace();
        let (Some(func), Some(hex), None) = (it.next(), it.next(), it.next()) else {
            return Err(bad("expected '<hash-func> <hex>'"));
        };
        let hash = match func.to_ascii_lowercase().as_str() {
            "sha-256" => HashFunc::Sha256,
            "sha-384" => HashFunc::Sha384,
            "sha-512" => HashFunc::Sha512,
            _ => {
                return Err(DtlsError::Fingerprint(format!(
                    "unsupported hash function {:?}",
                    func.chars().take(16).collect::<String>()
                )))
            }
        };
        let digest = hex
            .split(':')
            .map(|pair| {
                if pair.len() == 2 {
                    u8::from_str_radix(pair, 16).map_err(|_| bad("not hex"))
                } else {
                    Err(bad("hex pairs must be two digits"))
                }
            })
            .collect::<Result<Vec<u8>, _>>()?;
        if digest.len() != hash.digest(&[]).len() {
            return Err(bad("digest length does not fit the hash function"));
        }
        Ok(Fingerprint { hash, digest })
    }

    /// The attribute value: `sha-256 AB:CD:...` (upper-case hex, RFC 8122 §5).
    pub fn to_value(&self) -> String {
        let hex: Vec<String> = self.digest.iter().map(|b| format!("{b:02X}")).collect();
        format!("{} {}", self.hash.name(), hex.join(":"))
    }
}

/// The `a=setup` attribute (RFC 4145 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// This side opens the connection: the DTLS client.
    Active,
    /// This side waits: the DTLS server.
    Passive,
    /// Either (offers only, RFC 5763 §5).
    ActPass,
    /// No connection now.
    HoldConn,
}

impl Setup {
    /// Parse the attribute value.
    pub fn parse(v: &str) -> Option<Setup> {
        match v.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            "holdconn" => Some(Setup::HoldConn),
            _ => None,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// Our side of the DTLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// We send the ClientHello (`a=setup:active` on our side).
    Client,
    /// We wait for it (`a=setup:passive` on our side).
    Server,
}

impl DtlsRole {
    /// Our role when answering an offer with `offered` (`None`: no `a=setup`, which RFC 4145
    /// §4 reads as `active`), and the `a=setup` we put in the answer. RFC 5763 §5: to
    /// `actpass` the answerer SHOULD answer `active`, except in a re-offer of a call whose
    /// association we keep, where `current` is our role in it (RFC 8842 §5.3). `holdconn`
    /// cannot be answered.
    pub fn for_answer(
        offered: Option<Setup>,
        current: Option<DtlsRole>,
    ) -> Option<(DtlsRole, Setup)> {
        match offered {
            Some(Setup::ActPass) if current == Some(DtlsRole::Server) => {
                Some((DtlsRole::Server, Setup::Passive))
            }
            Some(Setup::ActPass) | Some(Setup::Passive) => Some((DtlsRole::Client, Setup::Active)),
            Some(Setup::Active) | None => Some((DtlsRole::Server, Setup::Passive)),
            Some(Setup::HoldConn) => None,
        }
    }

    /// Our role after offering `actpass` and receiving `answered` (`None`: absent, read as
    /// `active`, RFC 4145 §4). An answer may not say `actpass` or `holdconn`.
    pub fn for_offer(answered: Option<Setup>) -> Option<DtlsRole> {
        match answered {
            Some(Setup::Active) | None => Some(DtlsRole::Server),
            Some(Setup::Passive) => Some(DtlsRole::Client),
            Some(Setup::ActPass) | Some(Setup::HoldConn) => None,
        }
    }
}

/// What the offer/answer decided for DTLS-SRTP: our role and the fingerprint the peer's
/// certificate must have. Part of [`crate::Negotiated`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DtlsParams {
    /// Client or server.
    pub role: DtlsRole,
    /// The peer's `a=fingerprint`.
    pub remote_fingerprint: Fingerprint,
}

/// Our certificate and its fingerprint.
#[derive(Clone)]
pub struct DtlsIdentity {
    certificate: Certificate,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DtlsIdentity({})", self.fingerprint.to_value())
    }
}

static PROCESS_IDENTITY: OnceLock<Result<DtlsIdentity, DtlsError>> = OnceLock::new();

impl DtlsIdentity {
    /// A fresh self-signed ECDSA P-256 certificate.
    pub fn generate() -> Result<DtlsIdentity, DtlsError> {
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| DtlsError::Setup(e.to_string()))?;
        let certificate =
            Certificate::generate_self_signed(vec!["webphone".to_owned()], provider.crypto())
                .map_err(|e| DtlsError::Setup(e.to_string()))?;
        let der = certificate
            .certificate
            .first()
            .ok_or_else(|| DtlsError::Setup("certificate without DER".into()))?;
        let fingerprint = Fingerprint::of_der(HashFunc::Sha256, der.as_ref());
        Ok(DtlsIdentity {
            certificate,
            fingerprint,
        })
    }

    /// The process-wide identity, generated on first use.
    pub fn process() -> Result<&'static DtlsIdentity, DtlsError> {
        PROCESS_IDENTITY
            .get_or_init(DtlsIdentity::generate)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Our `a=fingerprint` (sha-256).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

/// Where a handshake stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsOutcome {
    /// Done: the SRTP keys for [`crate::srtp::SrtpSession::new`].
    Keyed(SrtpParams),
    /// Failed for good; no media may flow (RFC 5763 §5).
    Failed(DtlsError),
}

/// The SRTP profiles we offer in `use_srtp`, most preferred first (RFC 5764 §4.1.2, RFC 7714
/// §14.2).
const PROFILES: [SrtpProtectionProfile; 3] = [
    SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
    SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
    SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32,
];

fn suite_of(p: SrtpProtectionProfile) -> Option<CryptoSuite> {
    match p {
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
            Some(CryptoSuite::AesCm128HmacSha1_80)
        }
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => {
            Some(CryptoSuite::AesCm128HmacSha1_32)
        }
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => Some(CryptoSuite::AeadAes128Gcm),
        _ => None,
    }
}

/// Split the exported keying material (RFC 5764 §4.2): client key, server key, client salt,
/// server salt. We send with our side's key and salt.
pub fn split_keying_material(
    suite: CryptoSuite,
    material: &[u8],
    role: DtlsRole,
) -> Option<SrtpParams> {
    let (k, s) = (suite.key_len(), suite.salt_len());
    if material.len() != 2 * (k + s) {
        return None;
    }
    let client_key = material.get(..k)?;
    let server_key = material.get(k..2 * k)?;
    let client_salt = material.get(2 * k..2 * k + s)?;
    let server_salt = material.get(2 * k + s..)?;
    let client = MasterKey::from_bytes([client_key, client_salt].concat());
    let server = MasterKey::from_bytes([server_key, server_salt].concat());
    let (local, remote) = match role {
        DtlsRole::Client => (client, server),
        DtlsRole::Server => (server, client),
    };
    Some(SrtpParams {
        suite,
        local,
        remote,
    })
}

/// One DTLS-SRTP handshake on one media component. See the module documentation.
pub struct DtlsSrtp {
    endpoint: Endpoint,
    role: DtlsRole,
    /// Where the client sends its ClientHello; for the server, the address whose handshake
    /// completed.
    peer: SocketAddr,
    /// Set by the certificate callback when the fingerprint did not match.
    mismatch: Arc<AtomicBool>,
    outcome: Option<DtlsOutcome>,
    /// [`HANDSHAKE_TIMEOUT`] after the start.
    deadline: Instant,
    /// A DTLS datagram from the peer has been read.
    heard: bool,
    /// We sent `close_notify` ([`DtlsSrtp::close`]).
    closed: bool,
    /// The peer sent `close_notify`.
    peer_closed: bool,
}

impl std::fmt::Debug for DtlsSrtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsSrtp")
            .field("role", &self.role)
            .field("peer", &self.peer)
            .field("done", &self.outcome.is_some())
            .finish_non_exhaustive()
    }
}

fn handshake_config(
    identity: &DtlsIdentity,
    params: &DtlsParams,
    mismatch: Arc<AtomicBool>,
) -> Result<Arc<HandshakeConfig>, DtlsError> {
    let provider = rtc_dtls::crypto_provider::default_provider()
        .map_err(|e| DtlsError::Setup(e.to_string()))?;
    let expected = params.remote_fingerprint.clone();
    let verify: rtc_dtls::config::VerifyPeerCertificateFn = Arc::new(move |certs, _chains| {
        // RFC 5763 §5: the end-entity certificate must match the SDP fingerprint.
        match certs.first() {
            Some(der) if expected.matches(der) => Ok(()),
            _ => {
                mismatch.store(true, Ordering::SeqCst);
                Err(rtc_shared::error::Error::Other(
                    "certificate does not match the SDP fingerprint".into(),
                ))
            }
        }
    });
    let is_client = params.role == DtlsRole::Client;
    ConfigBuilder::default()
        .with_crypto_provider(provider)
        .with_certificates(vec![identity.certificate.clone()])
        .with_srtp_protection_profiles(PROFILES.to_vec())
        .with_extended_master_secret(ExtendedMasterSecretType::Request)
        // Self-signed certificates: no CA chain; the fingerprint callback authenticates.
        .with_insecure_skip_verify(true)
        // RFC 5763 §5: the server must ask for the client's certificate.
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_verify_peer_certificate(Some(verify))
        .build(is_client, None)
        .map(Arc::new)
        .map_err(|e| DtlsError::Setup(e.to_string()))
}

impl DtlsSrtp {
    /// Start a handshake: as client, the first flight to `remote` is queued at once; as server,
    /// we wait for a ClientHello from any address (the fingerprint authenticates the peer).
    pub fn new(
        identity: &DtlsIdentity,
        params: &DtlsParams,
        remote: SocketAddr,
        now: Instant,
    ) -> Result<DtlsSrtp, DtlsError> {
        let mismatch = Arc::new(AtomicBool::new(false));
        let config = handshake_config(identity, params, mismatch.clone())?;
        // The endpoint only copies this into its transmit records; we never read it back.
        let local = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        let mut endpoint = match params.role {
            DtlsRole::Client => Endpoint::new(local, TransportProtocol::UDP, None),
            DtlsRole::Server => Endpoint::new(local, TransportProtocol::UDP, Some(config.clone())),
        };
        if params.role == DtlsRole::Client {
            endpoint
                .connect(now, remote, config, None)
                .map_err(|e| DtlsError::Handshake(e.to_string()))?;
        }
        tracing::debug!(role = ?params.role, %remote, "DTLS-SRTP handshake started");
        Ok(DtlsSrtp {
            endpoint,
            role: params.role,
            peer: remote,
            mismatch,
            outcome: None,
            deadline: now + HANDSHAKE_TIMEOUT,
            heard: false,
            closed: false,
            peer_closed: false,
        })
    }

    /// Where the handshake goes: the client's server, or the server's client once it wrote.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether a DTLS datagram from the peer has been read (the handshake is under way).
    pub fn heard_from_peer(&self) -> bool {
        self.heard
    }

    /// Whether the peer ended the association with `close_notify` (RFC 5246 §7.2.1).
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Whether we ended it ([`DtlsSrtp::close`]).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Our role.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// The outcome once there is one.
    pub fn outcome(&self) -> Option<&DtlsOutcome> {
        self.outcome.as_ref()
    }

    /// Whether the SRTP keys are there.
    pub fn is_keyed(&self) -> bool {
        matches!(self.outcome, Some(DtlsOutcome::Keyed(_)))
    }

    fn fail(&mut self, err: DtlsError) -> Option<DtlsOutcome> {
        let err = if self.mismatch.load(Ordering::SeqCst) {
            DtlsError::FingerprintMismatch
        } else {
            err
        };
        tracing::warn!(error = %err, "DTLS-SRTP failed: no media");
        let out = DtlsOutcome::Failed(err);
        self.outcome = Some(out.clone());
        Some(out)
    }

    /// A DTLS datagram (first byte 20..=63, [`crate::demux`]) arrived from `from`. Returns the
    /// outcome when this datagram completed or failed the handshake.
    pub fn handle_datagram(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Option<DtlsOutcome> {
        if matches!(self.outcome, Some(DtlsOutcome::Failed(_))) {
            return None;
        }
        if self.role == DtlsRole::Client && from != self.peer {
            // Our association is with the address we connected to (the server would be a
            // new association otherwise, and a client endpoint has no server config).
            tracing::debug!(%from, peer = %self.peer, "DTLS from an unexpected address ignored");
            return None;
        }
        if self.role == DtlsRole::Server && self.outcome.is_none() {
            // The server's association (and its retransmission timer) is keyed by the
            // client's source address, which NAT may make differ from the SDP.
            self.peer = from;
        }
        self.heard = true;
        let events = match self.endpoint.read(now, from, None, BytesMut::from(data)) {
            Ok(ev) => ev,
            Err(e) if self.outcome.is_none() => {
                return self.fail(DtlsError::Handshake(e.to_string()))
            }
            Err(e) => {
                tracing::debug!(error = %e, "DTLS record after the handshake ignored");
                return None;
            }
        };
        let mut result = None;
        for ev in events {
            match ev {
                EndpointEvent::HandshakeComplete if self.outcome.is_none() => {
                    self.peer = from;
                    result = Some(self.export_keys(from));
                }
                EndpointEvent::PeerClosed => {
                    tracing::info!(%from, "DTLS peer sent close_notify");
                    self.peer_closed = true;
                }
                _ => {}
            }
        }
        if let Some(DtlsOutcome::Failed(e)) = &result {
            return self.fail(e.clone());
        }
        if result.is_some() {
            self.outcome = result.clone();
        }
        result
    }

    fn export_keys(&self, from: SocketAddr) -> DtlsOutcome {
        let Some(state) = self.endpoint.get_connection_state(from) else {
            return DtlsOutcome::Failed(DtlsError::Handshake("no association state".into()));
        };
        let Some(suite) = suite_of(state.srtp_protection_profile()) else {
            return DtlsOutcome::Failed(DtlsError::Handshake(
                "no common SRTP protection profile (use_srtp, RFC 5764 §4.1.2)".into(),
            ));
        };
        let len = 2 * suite.key_salt_len();
        let material = match state.export_keying_material(EXPORTER_LABEL, &[], len) {
            Ok(m) => m,
            Err(e) => return DtlsOutcome::Failed(DtlsError::Handshake(e.to_string())),
        };
        match split_keying_material(suite, material.as_ref(), self.role) {
            Some(p) => {
                tracing::info!(%suite, role = ?self.role, peer = %from, "DTLS-SRTP keyed");
                DtlsOutcome::Keyed(p)
            }
            None => DtlsOutcome::Failed(DtlsError::Handshake("short keying material".into())),
        }
    }

    /// When [`DtlsSrtp::handle_timeout`] should run next (a flight's retransmission timer).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            return None;
        }
        Some(
            self.endpoint
                .poll_timeout(&self.peer)
                .map_or(self.deadline, |t| t.min(self.deadline)),
        )
    }

    /// Drive retransmissions (RFC 6347 §4.2.4) at `now`; the flight to resend is then in
    /// [`DtlsSrtp::poll_transmit`]. Returns a failure when all retransmissions are spent.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<DtlsOutcome> {
        if self.outcome.is_some() {
            return None;
        }
        if now >= self.deadline {
            return self.fail(DtlsError::Handshake(format!(
                "no DTLS handshake within {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            )));
        }
        let due = self
            .endpoint
            .poll_timeout(&self.peer)
            .is_some_and(|t| now >= t);
        if !due {
            return None;
        }
        match self.endpoint.handle_timeout(self.peer, now) {
            Ok(()) => None,
            Err(e) => self.fail(DtlsError::Handshake(format!(
                "no answer from the peer ({e})"
            ))),
        }
    }

    /// The next datagram to send, and where.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.endpoint
            .poll_transmit()
            .map(|t| (t.transport.peer_addr, t.message.to_vec()))
    }

    /// Say goodbye at the end of the call: a `close_notify` alert (RFC 5246 §7.2.1, which DTLS
    /// 1.2 keeps, RFC 6347 §4.1), protected with the association's keys, is then in
    /// [`DtlsSrtp::poll_transmit`], so that the peer tears its DTLS-SRTP association down at
    /// once instead of waiting for consent freshness (RFC 7675) or a timeout. Nothing is sent
    /// before the handshake completed, after the peer closed, or twice.
    pub fn close(&mut self, now: Instant) {
        if self.closed || self.peer_closed || !self.is_keyed() {
            self.closed = true;
            return;
        }
        self.closed = true;
        let _ = self.endpoint.stop(now, self.peer);
        tracing::debug!(peer = %self.peer, "DTLS close_notify queued");
    }
}

/// Profile and attribute lines (without `a=`) of a DTLS-SRTP offer (RFC 5763 §5): our
/// fingerprint, `setup:actpass`, and `rtcp-mux` (RFC 5761) so that one handshake keys RTP and
/// RTCP. When our certificate cannot be made the offer still says DTLS without a fingerprint,
/// which every answerer refuses: never plain RTP instead.
pub(crate) fn offer_attributes() -> (&'static str, Vec<String>) {
    let mut extra = Vec::new();
    match DtlsIdentity::process() {
        Ok(id) => extra.push(format!("fingerprint:{}", id.fingerprint().to_value())),
        Err(e) => tracing::error!(error = %e, "no DTLS certificate: the DTLS-SRTP offer will fail"),
    }
    extra.push(format!("setup:{}", Setup::ActPass.as_str()));
    extra.push("rtcp-mux".to_owned());
    (PROTO_SAVP, extra)
}

/// How we answer a DTLS-SRTP stream (RFC 5763 §5): profile, attribute lines and the
/// negotiated parameters. `None` when we may not or cannot: encryption off, no usable
/// fingerprint, `holdconn`, no certificate of ours.
pub(crate) fn answer_attributes(
    m: &crate::sdp::MediaDescription,
    prefs: &crate::MediaOffer,
) -> Option<(&'static str, Vec<String>, DtlsParams)> {
    if prefs.srtp == crate::SrtpPolicy::Off && !prefs.dtls {
        tracing::info!(proto = %m.proto, "DTLS-SRTP offer refused: media encryption is off");
        return None;
    }
    let fp = match m.fingerprint.as_deref().map(Fingerprint::parse) {
        Some(Ok(fp)) => fp,
        Some(Err(e)) => {
            tracing::info!(error = %e, "DTLS-SRTP offer refused");
            return None;
        }
        None => {
            tracing::info!("DTLS-SRTP offer without a=fingerprint refused (RFC 5763 §5)");
            return None;
        }
    };
    let offered = m.setup.as_deref().and_then(Setup::parse);
    let Some((role, setup)) = DtlsRole::for_answer(offered, prefs.dtls_role) else {
        tracing::info!("DTLS-SRTP offer with a=setup:holdconn refused");
        return None;
    };
    let id = match DtlsIdentity::process() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "no DTLS certificate: DTLS-SRTP offer refused");
            return None;
        }
    };
    let proto = if m.proto.eq_ignore_ascii_case(PROTO_SAVPF) {
        PROTO_SAVPF
    } else {
        PROTO_SAVP
    };
    let mut extra = vec![
        format!("fingerprint:{}", id.fingerprint().to_value()),
        format!("setup:{}", setup.as_str()),
    ];
    if m.rtcp_mux {
        extra.push("rtcp-mux".to_owned());
    }
    tracing::debug!(?role, "DTLS-SRTP offer accepted");
    Some((
        proto,
        extra,
        DtlsParams {
            role,
            remote_fingerprint: fp,
        },
    ))
}

/// The DTLS parameters of an answer to our DTLS-SRTP offer: the answer must be DTLS-SRTP
/// with a fingerprint and `a=setup` `active` or `passive` (RFC 5763 §5).
pub(crate) fn apply_answer(
    m: &crate::sdp::MediaDescription,
    prefs: &crate::MediaOffer,
) -> Result<DtlsParams, crate::SdpError> {
    let err = |r: String| crate::SdpError::Crypto(r);
    if !prefs.dtls {
        return Err(err(format!(
            "answer uses {} but we did not offer DTLS-SRTP",
            m.proto
        )));
    }
    if !m.is_dtls() {
        return Err(err(format!("answer uses {} instead of DTLS-SRTP", m.proto)));
    }
    let fp = m
        .fingerprint
        .as_deref()
        .ok_or_else(|| err("answer has no a=fingerprint".into()))
        .and_then(|v| Fingerprint::parse(v).map_err(|e| err(e.to_string())))?;
    let role = DtlsRole::for_offer(m.setup.as_deref().and_then(Setup::parse)).ok_or_else(|| {
        err(format!(
            "answer has a=setup:{}",
            m.setup.as_deref().unwrap_or("")
        ))
    })?;
    tracing::debug!(?role, "DTLS-SRTP negotiated");
    Ok(DtlsParams {
        role,
        remote_fingerprint: fp,
    })
}

#[cfg(test)]
#[path = "dtls_srtp_tests.rs"]
mod tests;
