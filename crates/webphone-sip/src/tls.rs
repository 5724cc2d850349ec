//! TLS client settings (rustls): which server certificates we trust, and readable
//! handshake errors. No I/O beyond reading the trust anchors once.
//!
//! The server certificate is always verified (RFC 3261 §26.2.1, RFC 5922 for the name
//! check): against the platform's roots (`rustls-native-certs`: Debian's
//! `/etc/ssl/certs`, the Windows and macOS stores) plus, per account, a PEM file of extra
//! anchors. Trusting a self-signed server means listing its certificate in that file;
//! there is deliberately no "accept anything" switch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// The trust anchors of one user agent, in the two forms the transports need.
pub(crate) struct Trust {
    /// For the connections we dial ourselves (WSS).
    pub config: Arc<ClientConfig>,
    /// The same anchors as PEM, for rsipstack's own TLS dialling (`TlsConfig::ca_certs`).
    pub pem: Vec<u8>,
}

/// Build the trust anchors: system roots plus the certificates of `ca_file`.
///
/// Fails when `ca_file` cannot be read or holds no certificate rustls can use as a trust
/// anchor. Unusable system certificates are skipped (a broken store must not stop TLS).
pub(crate) fn trust(ca_file: Option<&Path>) -> Result<Trust, String> {
    // rsipstack builds its rustls configs with the process default provider: make sure
    // there is one (ring, as everywhere here) even if several providers are compiled in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    let mut pem = Vec::new();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "system certificate store: entry skipped");
    }
    let mut skipped = 0usize;
    for c in native.certs {
        // Only anchors rustls accepts: one bad entry would make rsipstack reject the lot.
        if roots.add(c.clone()).is_ok() {
            push_pem(&mut pem, &c);
        } else {
            skipped += 1;
        }
    }
    tracing::debug!(added = roots.len(), skipped, "system trust anchors loaded");
    if let Some(path) = ca_file {
        let n = add_pem_file(&mut roots, &mut pem, path)?;
        tracing::info!(path = %path.display(), certificates = n, "extra TLS trust anchors");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Trust {
        config: Arc::new(cfg),
        pem,
    })
}

/// The trust anchors, read on first use. Parsing the system store costs about 0.7 MiB of
/// memory that a phone on UDP or TCP never needs unless it dials a `sips:` or
/// `;transport=tls` target, so such a phone reads the store when it first opens a TLS or
/// WSS connection. Verification is the same either way.
pub(crate) struct LazyTrust {
    ca_file: Option<PathBuf>,
    cell: OnceLock<Result<Arc<ClientConfig>, String>>,
}

impl LazyTrust {
    /// Anchors read at the first [`LazyTrust::get`].
    pub(crate) fn new(ca_file: Option<PathBuf>) -> LazyTrust {
        LazyTrust {
            ca_file,
            cell: OnceLock::new(),
        }
    }

    /// Whether the anchors have been read (successfully or not).
    pub(crate) fn is_loaded(&self) -> bool {
        self.cell.get().is_some()
    }

    /// The client configuration, reading the anchors the first time. `hand_over` runs
    /// once, with the anchors as PEM, in the call that read them (for rsipstack's
    /// transport layer, which dials TLS itself).
    pub(crate) fn get(&self, hand_over: impl FnOnce(Vec<u8>)) -> Result<Arc<ClientConfig>, String> {
        let mut pem = None;
        let r = self
            .cell
            .get_or_init(|| {
                trust(self.ca_file.as_deref()).map(|t| {
                    pem = Some(t.pem);
                    t.config
                })
            })
            .clone();
        if let Some(p) = pem {
            hand_over(p);
        }
        r
    }
}

/// Append `cert` to `out` as a PEM block (RFC 7468 §2).
fn push_pem(out: &mut Vec<u8>, cert: &CertificateDer<'_>) {
    out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    let b64 = base64(cert.as_ref());
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Add every certificate of the PEM file at `path` to `roots` (and to `pem`); returns
/// how many.
fn add_pem_file(
    roots: &mut RootCertStore,
    pem: &mut Vec<u8>,
    path: &Path,
) -> Result<usize, String> {
    let data = std::fs::read(path)
        .map_err(|e| format!("cannot read TLS CA file {}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("TLS CA file {}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS CA file {}: no certificate (PEM \"BEGIN CERTIFICATE\") in it",
            path.display()
        ));
    }
    let n = certs.len();
    for c in certs {
        roots
            .add(c.clone())
            .map_err(|e| format!("TLS CA file {}: unusable certificate: {e}", path.display()))?;
        push_pem(pem, &c);
    }
    Ok(n)
}

/// A handshake error in words a user can act on; the rustls error is kept in brackets.
pub(crate) fn describe_error(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return describe_rustls(r);
        }
        // tokio-rustls wraps the rustls error in an io::Error, whose `source()` skips it.
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    // Anything else (refused, reset) is said as it is.
    err.to_string()
}

fn describe_rustls(e: &rustls::Error) -> String {
    let what = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "server certificate is not trusted (unknown issuer; for a private CA or a \
                 self-signed server, add its certificate to the CA file)"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "server certificate does not match the server name"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "server certificate has expired"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "server certificate is not valid yet"
            }
            CertificateError::Revoked => "server certificate is revoked",
            _ => "server certificate rejected",
        },
        rustls::Error::AlertReceived(_) => "the server refused the TLS handshake",
        _ => "TLS handshake failed",
    };
    format!("{what} [{e}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_ca_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("webphone-sip-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let missing = dir.join("missing.pem");
        let e = trust(Some(&missing)).err().expect("missing file");
        assert!(e.contains("cannot read TLS CA file"), "{e}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let e = trust(Some(&empty)).err().expect("no certificate");
        assert!(e.contains("no certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn system_roots_round_trip_through_pem() {
        let t = trust(None).expect("system roots");
        let back: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&t.pem)
            .collect::<Result<_, _>>()
            .expect("our PEM parses");
        let native = rustls_native_certs::load_native_certs();
        // Debian has ca-certificates; every usable system anchor survives the round trip.
        assert!(!back.is_empty(), "no system trust anchors found");
        assert!(back.iter().all(|c| native.certs.contains(c)));
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn certificate_errors_are_described() {
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let text = describe_error(&io);
        assert!(text.contains("not trusted"), "{text}");
        assert!(text.contains("UnknownIssuer"), "{text}");
        let e = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(describe_error(&e).contains("does not match the server name"));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(describe_error(&plain), "refused");
    }
}
