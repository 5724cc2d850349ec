//! Network change: move the transport to a new local address ([`crate::SipUa::network_changed`]).
//!
//! The socket we listen on is bound to the address that routed to the server; when that
//! address goes away (DHCP renewal, Wi-Fi to cable, VPN up) nothing sent from it arrives
//! anywhere. We bind the same port on the new address (another one when it is taken),
//! swap the listener in the transport layer (Via sent-by follows the first listener),
//! drop the connections opened from the old address (TCP/TLS/WS: RFC 5626 §4.5, a new
//! flow is opened by the next request), have old Contacts rewritten in what we send
//! ([`crate::netchange::ContactMoves`]) and let the policy register again
//! ([`crate::policy::Command::NetworkChanged`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TcpListenerConnection};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{sip_transport, Driver};
use crate::fast_stun::StunUse;
use crate::policy::{Command, Input};
use crate::target::HostPort;
use crate::{SipError, Transport};

impl Driver {
    /// Move to `ip` (when it differs from the current address) and register again.
    pub(super) async fn network_changed(&mut self, ip: IpAddr) -> Result<SocketAddr, SipError> {
        let old = self.local;
        if ip != old.ip() {
            let (new, stun) = self.rebind(ip).await?;
            // A new socket has a new mapping (or none, when the probe got no answer).
            if self.fast_stun.is_some() || self.port_mapper.is_some() {
                self.last_stun = stun;
            }
            info!(%old, %new, transport = %self.transport, "local address changed; transport moved");
            crate::lock(&self.moves).moved(
                &HostPort::new(old.ip().to_string(), old.port()).to_string(),
                &HostPort::new(new.ip().to_string(), new.port()).to_string(),
            );
            self.local = new;
            *crate::lock(&self.shared_local) = new;
            self.drop_old_flows();
        } else {
            info!(local = %old, "network back on the same address; registering again");
        }
        self.feed(Input::Command(Command::NetworkChanged(
            self.last_stun.clone(),
        )));
        Ok(self.local)
    }

    /// Bind the transport on `ip` and make it the one Via/Contact and sending use; over UDP
    /// with `use_fast_stun`, the new socket is probed first ([`crate::fast_stun`]).
    async fn rebind(&mut self, ip: IpAddr) -> Result<(SocketAddr, Option<StunUse>), SipError> {
        let port = self.local.port();
        let mut stun = None;
        let endpoint = self.endpoint.clone();
        let layer = &endpoint.transport_layer;
        let new_conn: SipConnection = match self.transport {
            Transport::Udp => {
                let sock = match tokio::net::UdpSocket::bind((ip, port)).await {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(%ip, port, error = %e, "port taken on the new address; using another");
                        let any = SocketAddr::new(ip, 0);
                        tokio::net::UdpSocket::bind(any)
                            .await
                            .map_err(|source| SipError::Bind {
                                transport: "UDP",
                                addr: any,
                                source,
                            })?
                    }
                };
                let ours = sock.local_addr().unwrap_or(SocketAddr::new(ip, port));
                // The old socket's forward goes; the new one gets its own.
                let mapper = self.port_mapper.as_ref().map(|(m, _)| m);
                if let Some(m) = mapper {
                    m.0.unmap_udp(self.local);
                }
                let mode = match (&self.fast_stun, &self.port_mapper) {
                    (Some((_, mode)), _) | (None, Some((_, mode))) => *mode,
                    (None, None) => crate::FastStun::Off,
                };
                let server = self.fast_stun.map(|(server, _)| server);
                stun = super::probe_new_socket(&sock, ours, server, mode, mapper).await;
                let guarded: Arc<dyn rsipstack::platform::net::UdpSocket> =
                    Arc::new(super::inbound::GuardedUdp { sock });
                let token = self.token.child_token();
                let conn = UdpConnection::from_socket(guarded, None, Some(token.clone()))
                    .await
                    .map_err(|e| SipError::Stack(e.to_string()))?;
                if let Some(old) = self.udp_token.replace(token) {
                    old.cancel();
                }
                let conn = SipConnection::Udp(conn);
                layer.inner.serve_connection(conn.clone());
                conn
            }
            Transport::Tcp => {
                let listen = SocketAddr::new(ip, port);
                let conn = TcpListenerConnection::new(listen, None)
                    .await
                    .map_err(|e| SipError::Stack(e.to_string()))?;
                conn.serve_listener(layer.inner.clone())
                    .await
                    .map_err(|e| SipError::Stack(format!("TCP listener on {listen}: {e}")))?;
                SipConnection::TcpListener(conn)
            }
            Transport::Tls | Transport::Ws | Transport::Wss => {
                // The idle channel standing for our (client-only) address, see `start`.
                let (in_tx, in_rx) = mpsc::unbounded_channel();
                drop(in_tx);
                let (out_tx, _out_rx) = mpsc::unbounded_channel();
                let addr = SipAddr {
                    r#type: Some(sip_transport(self.transport)),
                    addr: SocketAddr::new(ip, port).into(),
                };
                let conn = ChannelConnection::create_connection(
                    in_rx,
                    out_tx,
                    addr,
                    Some(self.token.child_token()),
                )
                .await
                .map_err(|e| SipError::Stack(e.to_string()))?;
                SipConnection::Channel(conn)
            }
        };
        let new_addr = new_conn
            .get_addr()
            .get_socketaddr()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        for old in layer.get_listen_addrs() {
            layer.del_transport(&old);
        }
        layer.add_transport(new_conn);
        Ok((SocketAddr::new(ip, new_addr.port()), stun))
    }

    /// Forget the connections opened from the old address: they cannot carry anything
    /// any more, and the next request must open a new one (RFC 5626 §4.5).
    fn drop_old_flows(&mut self) {
        let endpoint = self.endpoint.clone();
        let layer = &endpoint.transport_layer;
        let mut dead: Vec<SipConnection> = crate::lock(&self.reg_flow).take().into_iter().collect();
        dead.extend(crate::lock(&self.connector.flows).drain().map(|(_, c)| c));
        for conn in dead {
            // Its reader ends now rather than at the idle time-out.
            if let Some(p) = self.connector.probe(conn.get_addr()) {
                p.close();
            }
            self.connector.forget(conn.get_addr());
            layer.remove_connection(&conn);
            tokio::spawn(async move {
                let _ = conn.close().await;
            });
        }
    }
}

/// A re-INVITE or UPDATE from the peer is a target refresh (RFC 3261 §12.2.2, RFC 3311
/// §5.2): its Contact replaces the dialog's remote target, so that our later requests
/// (BYE, re-INVITE) follow a peer that moved. rsipstack keeps the first Contact otherwise.
pub(super) fn refresh_remote_target(
    dialog: &rsipstack::dialog::invite_dialog::InviteDialog,
    req: &rsipstack::sip::Request,
) {
    use rsipstack::sip::prelude::HeadersExt;
    let Some(uri) = contact_uri(req) else {
        return;
    };
    let contact = req.contact_header().ok().cloned();
    rsipstack::dialog::dialog::Dialog::Invite(dialog.clone()).set_remote_target(uri, contact);
}

/// The URI of the request's first Contact, as sent.
fn contact_uri(req: &rsipstack::sip::Request) -> Option<rsipstack::sip::Uri> {
    use rsipstack::sip::prelude::HeadersExt;
    req.typed_contact_headers()
        .ok()
        .and_then(|c| c.into_iter().next())
        .map(|c| c.uri)
}

/// The remote target of a dialog created by an INVITE that came through a record-routing
/// proxy: its Contact URI exactly as sent (RFC 3261 §12.1.1). rsipstack names the transport
/// the INVITE arrived on in the target (`;transport=tls` on a UDP peer behind Kamailio);
/// with a route set that transport is the proxy's hop, not the peer's, and a proxy that
/// follows it sends our BYE to a port the peer does not listen on. `None` without
/// Record-Route (a direct peer: the flow it opened is the way back) or Contact.
pub(super) fn proxied_remote_target(req: &rsipstack::sip::Request) -> Option<rsipstack::sip::Uri> {
    use rsipstack::sip::prelude::HeadersExt;
    if req.record_route_headers().is_empty() {
        return None;
    }
    contact_uri(req)
}

/// Puts [`proxied_remote_target`] back into a new server INVITE dialog (see there).
pub(super) fn keep_proxied_remote_target(
    dialog: &rsipstack::dialog::invite_dialog::InviteDialog,
    req: &rsipstack::sip::Request,
) {
    if proxied_remote_target(req).is_some() {
        refresh_remote_target(dialog, req);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(extra: &str) -> rsipstack::sip::Request {
        let raw = format!(
            "INVITE sip:1001@127.0.0.1:45747;transport=TLS SIP/2.0\r\n\
             Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK1\r\n\
             To: <sip:1001@127.0.0.1>\r\nFrom: <sip:1002@127.0.0.1>;tag=1\r\nCall-ID: c\r\n\
             CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
             Contact: <sip:1002-0x1@127.0.0.1:35512>\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        rsipstack::sip::Request::try_from(raw.as_str()).expect("valid INVITE")
    }

    #[test]
    fn invite_through_a_record_routing_proxy_keeps_the_contact_as_remote_target_rfc3261_12_1_1() {
        let req = invite(
            "Record-Route: <sip:127.0.0.1:5061;transport=tls;r2=on;lr>\r\n\
             Record-Route: <sip:127.0.0.1:5060;r2=on;lr>\r\n",
        );
        let target = proxied_remote_target(&req).expect("a target");
        assert_eq!(target.to_string(), "sip:1002-0x1@127.0.0.1:35512");
    }

    #[test]
    fn invite_from_a_direct_peer_leaves_the_stacks_target() {
        assert_eq!(proxied_remote_target(&invite("")), None);
    }
}
