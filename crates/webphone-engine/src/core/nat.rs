//! NAT traversal settings of a call: which STUN/TURN servers ICE gathers from and whether the
//! call uses ICE at all (`use_fast_ice`, `stunserveraddress`, `turnserveraddress`,
//! `turnusername`, `turnpassword`, `turnparameters`, `ice`, `icetimeout`, `stunturnonlocal`),
//! `natopenpackets`, and `upnpnat`.
//! The ICE machinery itself is `webphone_media::ice`.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use webphone_media::ice::{self, IceConfig, ServerKind, TurnServer};
use webphone_media::RtpSocket;

use super::Core;

use webphone_sip::is_local_ip;

/// The servers that apply, after `stunturnonlocal`: STUN `host:port`, TURN `host:port` with
/// user and password. Pure, for tests.
pub(super) struct Servers {
    pub stun: Option<String>,
    pub turn: Option<(String, String, String)>,
    /// The TURN server is reached over TCP (`turnparameters` or the URL's
    /// `?transport=tcp`).
    pub turn_tcp: bool,
    /// ... over TLS (a `turns:` URL, or `transport=tls` in `turnparameters`).
    pub turn_tls: bool,
}

/// The servers that apply to a call: `get` reads a parameter, `local_mode` is
/// `stunturnonlocal`, `peer` the address it looks at.
pub(super) fn nat_servers(
    get: impl Fn(&str) -> String,
    local_mode: i64,
    peer: Option<IpAddr>,
) -> Servers {
    let mut stun = ice::normalize_host_port(&get("stunserveraddress"));
    let turn_address = get("turnserveraddress");
    let mut turn = ice::normalize_host_port(&turn_address)
        .map(|hp| (hp, get("turnusername"), get("turnpassword")));
    // `turnparameters` (e.g. `transport=tcp`) are extra URI parameters of the TURN server.
    let extra = get("turnparameters");
    let mut turn_tcp = turn.is_some()
        && (ice::wants_tcp(&extra)
            || turn_address
                .split_once('?')
                .is_some_and(|(_, q)| ice::wants_tcp(q)));
    let mut turn_tls = turn.is_some()
        && (ice::wants_tls(&extra)
            || turn_address
                .trim()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("turns:")));
    // The `ice` list is the alternative form: its first STUN and first TURN server are used
    // when the single-server parameters leave them unset.
    for s in ice::parse_server_list(&get("ice")) {
        match s.kind {
            ServerKind::Stun if stun.is_none() => stun = Some(s.host_port),
            ServerKind::Turn if turn.is_none() => {
                let user = s.username.unwrap_or_else(|| get("turnusername"));
                let pass = s.credential.unwrap_or_else(|| get("turnpassword"));
                turn = Some((s.host_port, user, pass));
                turn_tcp = s.tcp || ice::wants_tcp(&extra);
                turn_tls = s.tls || ice::wants_tls(&extra);
            }
            _ => {}
        }
    }
    // `stunturnonlocal`: with the server (or the peer, for direct calls) on the local
    // network, 0 = neither STUN nor TURN, 1 = STUN only (default), 2 = both.
    if peer.is_some_and(is_local_ip) {
        match local_mode {
            0 => {
                stun = None;
                turn = None;
            }
            1 => turn = None,
            _ => {}
        }
    }
    Servers {
        stun,
        turn_tcp: (turn_tcp || turn_tls) && turn.is_some(),
        turn_tls: turn_tls && turn.is_some(),
        turn,
    }
}

/// Whether our offer carries ICE (`use_fast_ice` = `mode`): `0` never, `2`/`3` always, `1`
/// (auto) when a STUN or TURN server applies or the offer is DTLS-SRTP (`mediaencryption=3`):
/// WebRTC endpoints take media only over ICE (RFC 8835 §3.4) and refuse offers without ICE
/// credentials, while a peer without ICE ignores the attributes (RFC 8445 §1). Pure, for tests.
pub(super) fn ice_for_offer(mode: i64, servers: &Servers, mediaencryption: i64) -> bool {
    match mode {
        i64::MIN..=0 => false,
        1 => {
            servers.stun.is_some() || servers.turn.is_some() || super::offers_dtls(mediaencryption)
        }
        _ => true,
    }
}

impl Core {
    pub(super) fn nat_servers(&self, peer: Option<IpAddr>) -> Servers {
        let mode = self.params.get_i64("stunturnonlocal").unwrap_or(1);
        nat_servers(|n| self.params.get(n), mode, peer)
    }

    /// Gather ICE candidates on `rtp` if this call uses ICE. `peer` is the SIP server's (else
    /// the peer's) address, for `stunturnonlocal`; `remote_offer` the peer's offer when we
    /// answer (ICE is used when it has ICE), `None` when we offer ([`ice_for_offer`]).
    /// `use_fast_ice=0` never uses ICE.
    pub(super) async fn prepare_ice(
        &self,
        rtp: &mut RtpSocket,
        peer: Option<IpAddr>,
        remote_offer: Option<&str>,
    ) {
        let mode = self.params.get_i64("use_fast_ice").unwrap_or(1);
        if mode <= 0 {
            return;
        }
        let servers = self.nat_servers(peer);
        let wanted = match remote_offer {
            Some(offer) => ice::sdp::remote_ice(offer).is_some(),
            None => ice_for_offer(
                mode,
                &servers,
                self.params.get_i64("mediaencryption").unwrap_or(-1),
            ),
        };
        if wanted {
            self.gather_ice(rtp, servers).await;
        }
    }

    /// Gather ICE candidates on `rtp` with `servers` (STUN, TURN; host candidates always).
    pub(super) async fn gather_ice(&self, rtp: &mut RtpSocket, servers: Servers) {
        let local = rtp.local_addr();
        let mut cfg = IceConfig {
            gather_timeout: Duration::from_millis(
                self.params
                    .get_i64("icetimeout")
                    .unwrap_or(2000)
                    .clamp(100, 30_000) as u64,
            ),
            relay_only: ice::wants_relay_only(&self.params.get("ice")),
            ..IceConfig::default()
        };
        if let Some(s) = &servers.stun {
            match ice::gather::resolve(s, local).await {
                Ok(a) => cfg.stun = Some(a),
                Err(e) => tracing::warn!(error = %e, "STUN server not used"),
            }
        }
        if let Some((s, username, password)) = servers.turn {
            let tls = match servers.turn_tls.then(|| self.turn_tls(&s)) {
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "TURN server over TLS not used");
                    None
                }
                Some(Ok(t)) => Some(Some(t)),
                None => Some(None),
            };
            match (tls, ice::gather::resolve(&s, local).await) {
                (Some(tls), Ok(addr)) => {
                    cfg.turn = Some(TurnServer {
                        addr,
                        username,
                        password,
                        tcp: servers.turn_tcp,
                        tls,
                    })
                }
                (None, _) => {}
                (_, Err(e)) => tracing::warn!(error = %e, "TURN server not used"),
            }
        }
        let host = if local.ip().is_unspecified() {
            std::net::SocketAddr::new(self.local_ip, local.port())
        } else {
            local
        };
        rtp.gather_ice(&cfg, host).await;
    }

    /// How a `turns:` server at `host_port` is verified: its host name (or address) against
    /// the system roots plus `tlscafile`, like SIP over TLS.
    /// The anchors are read once per `tlscafile` value (reading the system store costs a
    /// few milliseconds and ~0.7 MiB), not for every call.
    fn turn_tls(&self, host_port: &str) -> Result<ice::TurnTls, String> {
        let ca = self.params.get("tlscafile").trim().to_owned();
        let mut cached = self.turn_trust.lock().unwrap_or_else(|e| e.into_inner());
        let config = match cached.as_ref().filter(|(file, _)| *file == ca) {
            Some((_, config)) => config.clone(),
            None => {
                let config =
                    webphone_sip::tls_client_config((!ca.is_empty()).then(|| Path::new(&ca)))?;
                *cached = Some((ca, config.clone()));
                config
            }
        };
        Ok(ice::TurnTls {
            server_name: ice::host_of(host_port).to_owned(),
            config,
        })
    }

    /// The address `stunturnonlocal` looks at for a call to `target`: the SIP server's when one
    /// is set, else the peer's (a literal IP; host names count as not local).
    pub(super) fn nat_peer_ip(&self, target: &str) -> Option<IpAddr> {
        let server = self.server();
        let host = if server.trim().is_empty() {
            let h = target.rsplit('@').next().unwrap_or(target);
            super::host_of(h.split(';').next().unwrap_or(h)).to_owned()
        } else {
            let s = server.trim();
            let s = s.split_once("://").map_or(s, |(_, r)| r);
            let s = s.strip_prefix("sip:").unwrap_or(s);
            super::host_of(s.split(['/', ';']).next().unwrap_or(s)).to_owned()
        };
        host.parse().ok()
    }

    /// The STUN server the SIP stack asks at start which address a NAT gives its UDP socket
    /// (`use_fast_stun`; `stunturnonlocal` applies with the SIP server as the peer), resolved
    /// for an IPv4 or IPv6 socket like `bind`. `None` when the mode asks nothing, no STUN
    /// server applies, or its name does not resolve.
    pub(super) async fn fast_stun_server(&self, bind: IpAddr) -> Option<std::net::SocketAddr> {
        let mode = self.params.get_i64("use_fast_stun").unwrap_or(1);
        if !webphone_sip::FastStun::from_param(mode).probes() {
            return None;
        }
        let stun = self.nat_servers(self.nat_peer_ip("")).stun?;
        match ice::gather::resolve(&stun, std::net::SocketAddr::new(bind, 0)).await {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, "STUN server not used for the SIP address");
                None
            }
        }
    }

    /// `upnpnat` (default 1): whether the router is asked for port forwards.
    fn upnp_enabled(&self) -> bool {
        self.params.get_i64("upnpnat").unwrap_or(1) != 0
    }

    /// `upnpnat`: the router forwards a public port to the SIP UDP socket, whose address is
    /// then the Contact ([`webphone_sip::PortMapper`]). The search for the router starts
    /// now, for every transport (calls map their RTP ports).
    pub(super) fn sip_port_mapper(&self) -> Option<webphone_sip::PortMapperRef> {
        if !self.upnp_enabled() {
            return None;
        }
        self.upnp.prepare(self.local_ip);
        Some(webphone_sip::PortMapperRef(std::sync::Arc::new(
            crate::upnp::SipPorts(self.upnp.clone()),
        )))
    }

    /// `upnpnat`: asks the router to forward a public port to a call's RTP socket; its
    /// address goes into the SDP (and ICE). The forward lasts as long as the returned value.
    pub(super) async fn map_rtp(&self, rtp: &mut RtpSocket) -> Option<crate::upnp::Mapped> {
        if !self.upnp_enabled() {
            return None;
        }
        let mapped = crate::upnp::Mapped::udp(&self.upnp, rtp.local_addr(), "RTP").await?;
        rtp.set_public_addr(mapped.public);
        Some(mapped)
    }

    /// The network changed: the router (if any) is searched for again.
    pub(super) async fn upnp_network_changed(&self) {
        self.upnp.forget().await;
    }

    /// `natopenpackets` (default 10, at most 10; 0 = off).
    pub(super) fn nat_open_packets(&self) -> u8 {
        self.params
            .get_i64("natopenpackets")
            .unwrap_or(10)
            .clamp(0, 10) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> String + 'a {
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map_or(String::new(), |(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn dtls_offers_use_ice_in_auto_mode_and_never_with_ice_off() {
        let none = Servers {
            stun: None,
            turn: None,
            turn_tcp: false,
            turn_tls: false,
        };
        let stun = Servers {
            stun: Some("stun.example.org:3478".into()),
            turn: None,
            turn_tcp: false,
            turn_tls: false,
        };
        // auto: only with a server, or for a DTLS-SRTP offer (WebRTC peers need ICE)
        assert!(!ice_for_offer(1, &none, -1));
        assert!(!ice_for_offer(1, &none, 2));
        assert!(ice_for_offer(1, &none, 3));
        assert!(ice_for_offer(1, &stun, 0));
        // off stays off, on stays on
        assert!(!ice_for_offer(0, &none, 3));
        assert!(!ice_for_offer(0, &stun, 3));
        assert!(ice_for_offer(2, &none, 0));
        assert!(ice_for_offer(3, &none, -1));
    }

    #[test]
    fn stunturnonlocal_filters_servers_for_a_local_peer_only() {
        let p = [
            ("stunserveraddress", "stun.example.org"),
            ("turnserveraddress", "10.0.0.5:3479"),
            ("turnusername", "u"),
            ("turnpassword", "p"),
        ];
        let lan = Some("192.168.1.2".parse().expect("ip"));
        let public = Some("203.0.113.9".parse().expect("ip"));
        let s = nat_servers(params(&p), 1, public);
        assert_eq!(s.stun.as_deref(), Some("stun.example.org:3478"));
        assert_eq!(
            s.turn,
            Some(("10.0.0.5:3479".into(), "u".into(), "p".into()))
        );
        let s = nat_servers(params(&p), 1, lan);
        assert!(
            s.stun.is_some() && s.turn.is_none(),
            "1 = STUN only on the LAN"
        );
        let s = nat_servers(params(&p), 0, lan);
        assert!(
            s.stun.is_none() && s.turn.is_none(),
            "0 = neither on the LAN"
        );
        assert!(nat_servers(params(&p), 2, lan).turn.is_some(), "2 = both");
    }

    #[test]
    fn turnparameters_or_the_url_ask_for_tcp_to_the_turn_server() {
        let base = [
            ("turnserveraddress", "turn.example.org"),
            ("turnparameters", "transport=tcp"),
        ];
        assert!(nat_servers(params(&base), 1, None).turn_tcp);
        let url = [(
            "turnserveraddress",
            "turn:turn.example.org:3479?transport=TCP",
        )];
        let s = nat_servers(params(&url), 1, None);
        assert!(s.turn_tcp);
        assert_eq!(
            s.turn.map(|t| t.0).as_deref(),
            Some("turn.example.org:3479")
        );
        let udp = [
            ("turnserveraddress", "turn.example.org"),
            ("turnparameters", "transport=udp"),
        ];
        assert!(!nat_servers(params(&udp), 1, None).turn_tcp);
        // From the `ice` list, and never without a TURN server.
        let list = [(
            "ice",
            "[{ url: 'turn:u@t.example?transport=tcp', credential: 'p'}]",
        )];
        assert!(nat_servers(params(&list), 1, None).turn_tcp);
        let no_turn = [("turnparameters", "transport=tcp")];
        assert!(!nat_servers(params(&no_turn), 1, None).turn_tcp);
    }

    #[test]
    fn turns_urls_and_transport_tls_ask_for_tls_over_tcp() {
        let url = [("turnserveraddress", "turns:turn.example.org")];
        let s = nat_servers(params(&url), 1, None);
        assert!(s.turn_tls && s.turn_tcp);
        assert_eq!(
            s.turn.map(|t| t.0).as_deref(),
            Some("turn.example.org:5349")
        );
        let param = [
            ("turnserveraddress", "turn.example.org:443"),
            ("turnparameters", "transport=tls"),
        ];
        assert!(nat_servers(params(&param), 1, None).turn_tls);
        let list = [("ice", "[{ url: 'turns:u@t.example', credential: 'p'}]")];
        let s = nat_servers(params(&list), 1, None);
        assert!(s.turn_tls && s.turn_tcp);
        assert_eq!(s.turn.map(|t| t.0).as_deref(), Some("t.example:5349"));
        assert!(
            !nat_servers(
                params(&[("turnserveraddress", "turn.example.org")]),
                1,
                None
            )
            .turn_tls
        );
    }

    #[test]
    fn ice_list_fills_in_unset_servers_and_null_disables() {
        let p = [
            ("stunserveraddress", "NULL"),
            (
                "ice",
                "[{ url: 'stun:s.example:3478'}, { url: 'turn:alice@t.example', credential: 'pw'}]",
            ),
        ];
        let s = nat_servers(params(&p), 1, None);
        assert_eq!(s.stun.as_deref(), Some("s.example:3478"));
        assert_eq!(
            s.turn,
            Some(("t.example:3478".into(), "alice".into(), "pw".into()))
        );
        assert!(nat_servers(params(&[]), 2, None).stun.is_none());
    }
}
