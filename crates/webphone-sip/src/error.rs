//! Error type of the SIP user agent.

use std::net::SocketAddr;

/// Everything the public API of this crate can fail with.
///
/// Runtime failures of a call or a registration are not errors of the API call
/// that started them: they arrive later as [`crate::SipEvent::Ended`] or
/// [`crate::RegistrationState::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// The dial string cannot be turned into a SIP URI (RFC 3261 §19.1).
    #[error("invalid SIP target {target:?}: {reason}")]
    InvalidTarget { target: String, reason: String },
    /// A bare user name (`"1002"`) was dialled but no server or proxy is configured
    /// to supply the domain.
    #[error("no SIP server configured to reach {0:?}")]
    NoServer(String),
    /// The request is valid SIP but this user agent does not implement it yet.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The SIP socket could not be bound.
    #[error("cannot bind SIP {transport} socket on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The TLS trust settings are unusable (the CA file cannot be read or holds no
    /// certificate).
    #[error("TLS: {0}")]
    Tls(String),
    /// The underlying SIP stack reported an error while starting.
    #[error("SIP stack: {0}")]
    Stack(String),
    /// A header field (or redirect Contact) we were asked to send would break the message:
    /// CR/LF or control characters, a name that is not an RFC 3261 §25.1 token, or a field
    /// the stack manages itself (Via, From, To, Call-ID, CSeq, ...).
    #[error("invalid SIP header {name}: {reason}")]
    InvalidHeader { name: String, reason: String },
    /// No live call has this key (or it is not in a state where the request applies).
    #[error("no such call: {0}")]
    NoSuchCall(crate::CallKey),
    /// The user agent has been shut down (or its driver task ended).
    #[error("the SIP user agent is shut down")]
    Closed,
}
