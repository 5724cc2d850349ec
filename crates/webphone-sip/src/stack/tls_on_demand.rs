//! TLS trust anchors read when first needed.
//!
//! Parsing the system certificate store costs about 0.7 MiB that a phone on UDP, TCP or WS
//! never uses unless it meets a TLS next hop: a `sips:` or `;transport=tls` target it dials,
//! or a peer or proxy that names one in a Contact or Record-Route (RFC 3261 §12.1: the
//! dialog's later requests go there). Such a phone reads the store at that moment, before
//! anything dials TLS. Accounts on TLS or WSS, and accounts naming a CA file (whose errors
//! belong at start), read it at start. Verification is the same either way.
//!
//! rsipstack's transport layer dials TLS itself and reads its trust anchors at dial time
//! (`TlsConfig::ca_certs`), so they are handed to it the moment they are read.

use std::sync::{Arc, OnceLock, Weak};

use rsipstack::sip::{Header, SipMessage};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transport::TransportLayer;

use crate::tls::LazyTrust;

/// The anchors of one user agent and where to hand them over.
pub(super) struct TlsOnDemand {
    trust: LazyTrust,
    /// Set once the endpoint is built (weak: the endpoint's inspectors hold us).
    endpoint: OnceLock<Weak<EndpointInner>>,
}

impl TlsOnDemand {
    pub(super) fn new(ca_file: Option<std::path::PathBuf>) -> TlsOnDemand {
        TlsOnDemand {
            trust: LazyTrust::new(ca_file),
            endpoint: OnceLock::new(),
        }
    }

    /// Reads the anchors now and gives them to `layer` (before the endpoint exists).
    pub(super) fn load_into(&self, layer: &TransportLayer) -> Result<(), String> {
        self.trust.get(|pem| hand_over(layer, pem)).map(|_| ())
    }

    /// Where later reads are handed over.
    pub(super) fn attach(&self, endpoint: &Arc<EndpointInner>) {
        let _ = self.endpoint.set(Arc::downgrade(endpoint));
    }

    /// The client configuration (for the WSS connections we dial ourselves), reading the
    /// anchors the first time.
    pub(super) fn config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        if !self.trust.is_loaded() {
            // Not before the endpoint exists: the anchors would reach no transport layer.
            let Some(endpoint) = self.endpoint.get().and_then(Weak::upgrade) else {
                return Err("the SIP stack is not running".into());
            };
            return self
                .trust
                .get(|pem| hand_over(&endpoint.transport_layer, pem));
        }
        self.trust.get(|_| {})
    }

    /// Before a request leaves for a next hop over `transport`: TLS and WSS need the
    /// anchors.
    pub(super) fn before_dialling(
        &self,
        transport: Option<rsipstack::sip::Transport>,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        use rsipstack::sip::Transport as T;
        match transport {
            Some(T::Tls | T::Wss) => self.config().map(Some),
            _ => Ok(None),
        }
    }

    /// A received message that routes later requests over TLS: read the anchors now.
    pub(super) fn on_received(&self, msg: &SipMessage) {
        if !self.trust.is_loaded() && routes_over_tls(msg) {
            if let Err(e) = self.config() {
                tracing::warn!(error = %e, "TLS trust anchors");
            }
        }
    }
}

/// Gives rsipstack's transport layer our trust anchors (it verifies the TLS servers it
/// dials against them, RFC 5922 §7).
fn hand_over(layer: &TransportLayer, pem: Vec<u8>) {
    layer.set_tls_config(rsipstack::transport::TlsConfig {
        ca_certs: Some(pem),
        ..Default::default()
    });
}

/// Whether a Contact or Record-Route of `msg` names a TLS or WSS next hop: a `sips:` URI
/// (RFC 3261 §19.1) or `transport=tls` / `transport=ws` over TLS (`wss`, as some servers
/// write it).
pub(super) fn routes_over_tls(msg: &SipMessage) -> bool {
    let headers = match msg {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    headers.iter().any(|h| {
        let value = match h {
            Header::Contact(c) => c.value(),
            Header::RecordRoute(r) => r.value(),
            _ => return false,
        };
        ["sips:", "transport=tls", "transport=wss"]
            .iter()
            .any(|needle| contains_ignore_case(value, needle))
    })
}

/// `needle` (ASCII lower case) in `hay`, ASCII case ignored, without allocating: this runs
/// on every received message of a phone that has not read its anchors.
fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SipMessage {
        SipMessage::try_from(text.replace('\n', "\r\n").as_str()).expect("parses")
    }

    const HEAD: &str = "INVITE sip:1001@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\nFrom: <sip:1002@127.0.0.1>;tag=a\nTo: <sip:1001@127.0.0.1>\nCall-ID: c1\nCSeq: 1 INVITE\n";

    #[test]
    fn tls_contact_or_record_route_asks_for_the_anchors() {
        for extra in [
            "Contact: <sips:1002@127.0.0.1:5071>\n",
            "Contact: <sip:1002@127.0.0.1:5071;transport=TLS>\n",
            "Record-Route: <sip:127.0.0.1:5061;transport=tls;lr>\n",
            "Contact: <sip:1002@ws.example;transport=wss>\n",
        ] {
            let msg = parse(&format!("{HEAD}{extra}Content-Length: 0\n\n"));
            assert!(routes_over_tls(&msg), "{extra}");
        }
    }

    #[test]
    fn udp_tcp_and_ws_routes_need_no_anchors() {
        let msg = parse(&format!(
            "{HEAD}Contact: <sip:1002@127.0.0.1:5070;transport=tcp>\nRecord-Route: <sip:127.0.0.1;transport=ws;lr>\nSubject: sips: in another header\nContent-Length: 0\n\n"
        ));
        assert!(!routes_over_tls(&msg));
    }

    #[test]
    fn anchors_are_not_read_before_the_endpoint_exists() {
        let t = TlsOnDemand::new(None);
        assert!(t.config().is_err());
        // Nothing was read: a later call, once attached, still hands them over.
        assert!(!t.trust.is_loaded());
        assert!(matches!(
            t.before_dialling(Some(rsipstack::sip::Transport::Udp)),
            Ok(None)
        ));
        assert!(!t.trust.is_loaded());
    }
}
