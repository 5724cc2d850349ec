//! `use_fast_stun`: at start, ask a STUN server (RFC 5389 §7.2.1, a Binding request) from the
//! SIP UDP socket itself which address a NAT maps it to, so that the first REGISTER and every
//! Contact can name an address the server and peers reach, instead of waiting for the
//! registrar's `received`/`rport` (RFC 3581 §4) or never learning it (calls without a server).
//!
//! The probe runs on the bound socket before the SIP stack reads from it, so no datagram has
//! to be told apart from SIP. What the answer is used for is decided by [`contact_from_stun`]
//! (pure, unit-tested); the registrar's view later confirms or overrides it
//! (`policy::Policy`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rtc_stun::message::{Getter, Message, BINDING_REQUEST, BINDING_SUCCESS};
use rtc_stun::xoraddr::XorMappedAddress;

use crate::target::HostPort;

/// The `use_fast_stun` parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FastStun {
    /// `-1`: our own (private) address stays in every Contact, whatever STUN or the
    /// registrar's `received`/`rport` say.
    ForcePrivate,
    /// `0`: no probe.
    Off,
    /// `1` (the default): the mapped address is used once the registrar saw us at the same
    /// address and port, i.e. the NAT keeps one mapping for every destination (RFC 4787
    /// §4.1, "endpoint-independent mapping"): then it is right for peers too.
    #[default]
    Stable,
    /// `2`: the mapped address is used from the first request when our own address is
    /// private (behind a NAT), without waiting for a confirmation.
    Nat,
    /// `3` and `4`: the mapped address is used whenever it differs from ours, also when our
    /// own address is public (a 1:1 NAT in front of a public address). `4` asks to use it
    /// even when it equals our address, which changes nothing, so both behave alike.
    Always,
}

impl FastStun {
    /// From the parameter's value; unknown values are the default.
    pub fn from_param(v: i64) -> FastStun {
        match v {
            -1 => FastStun::ForcePrivate,
            0 => FastStun::Off,
            2 => FastStun::Nat,
            3 | 4 => FastStun::Always,
            _ => FastStun::Stable,
        }
    }

    /// Whether this mode sends a probe at all.
    pub fn probes(self) -> bool {
        !matches!(self, FastStun::ForcePrivate | FastStun::Off)
    }
}

/// Whether an address is on the local network: loopback, private (RFC 1918, RFC 4193),
/// link-local or shared (RFC 6598) space. Anything else counts as public.
pub fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            v6.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

/// What a probe's answer is used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StunUse {
    /// Contact from now on (the first REGISTER already carries it).
    Now(HostPort),
    /// Contact once the registrar's `received`/`rport` shows the same address
    /// ([`FastStun::Stable`]).
    WhenConfirmed(HostPort),
    /// Not used (no NAT, or the mode does not want it).
    No,
}

/// The decision of `mode` for our socket at `local` that the STUN server saw at `mapped`.
pub(crate) fn contact_from_stun(mode: FastStun, local: SocketAddr, mapped: SocketAddr) -> StunUse {
    let hp = HostPort::new(mapped.ip().to_string(), mapped.port());
    if mapped == local {
        return StunUse::No;
    }
    match mode {
        FastStun::ForcePrivate | FastStun::Off => StunUse::No,
        FastStun::Stable => StunUse::WhenConfirmed(hp),
        FastStun::Nat if is_local_ip(local.ip()) || local.ip().is_unspecified() => StunUse::Now(hp),
        FastStun::Nat => StunUse::No,
        FastStun::Always => StunUse::Now(hp),
    }
}

/// A Binding request with a fresh transaction id (RFC 5389 §6: no attributes needed).
fn binding_request() -> Option<Message> {
    let mut m = Message::new();
    m.build(&[
        Box::new(rtc_stun::message::TransactionId::new()),
        Box::new(BINDING_REQUEST),
    ])
    .ok()?;
    Some(m)
}

/// The mapped address in a Binding success response to `request` (XOR-MAPPED-ADDRESS, RFC
/// 5389 §15.2; MAPPED-ADDRESS of an RFC 3489 server otherwise), `None` for anything else.
fn mapped_address(request: &Message, datagram: &[u8]) -> Option<SocketAddr> {
    if !rtc_stun::message::is_stun_message(datagram) {
        return None;
    }
    let mut resp = Message::new();
    resp.raw = datagram.to_vec();
    resp.decode().ok()?;
    if resp.typ != BINDING_SUCCESS || resp.transaction_id != request.transaction_id {
        return None;
    }
    let mut xor = XorMappedAddress::default();
    if xor.get_from(&resp).is_ok() {
        return Some(SocketAddr::new(xor.ip, xor.port));
    }
    let mut plain = rtc_stun::addr::MappedAddress::default();
    plain.get_from(&resp).ok()?;
    Some(SocketAddr::new(plain.ip, plain.port))
}

/// Waits before each try: RFC 5389 §7.2.1 doubles from an RTO; a "fast" probe at start gives
/// up after three tries (~1.4 s) rather than the full 39.5 s.
const TRIES: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
];

/// Asks `server` from `sock` which address it sees us at; `None` when it does not answer.
/// Other datagrams arriving meanwhile (a SIP request that came early) are dropped: the peer
/// retransmits them (RFC 3261 §17.1.1.2).
pub(crate) async fn probe(sock: &tokio::net::UdpSocket, server: SocketAddr) -> Option<SocketAddr> {
    let request = binding_request()?;
    let mut buf = vec![0u8; 1500];
    for wait in TRIES {
        if let Err(e) = sock.send_to(&request.raw, server).await {
            tracing::debug!(%server, error = %e, "STUN Binding request not sent");
            return None;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
            match got {
                Err(_) => break,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "STUN probe: receive failed");
                    break;
                }
                Ok(Ok((n, from))) => {
                    if let Some(mapped) = buf.get(..n).and_then(|d| mapped_address(&request, d)) {
                        tracing::info!(%server, %from, %mapped, "STUN: the SIP socket's public address");
                        return Some(mapped);
                    }
                }
            }
        }
    }
    tracing::info!(%server, "STUN server did not answer the start-up probe");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort::new(host.to_string(), port)
    }

    #[test]
    fn parameter_values_map_to_modes() {
        assert_eq!(FastStun::from_param(-1), FastStun::ForcePrivate);
        assert_eq!(FastStun::from_param(0), FastStun::Off);
        assert_eq!(FastStun::from_param(1), FastStun::Stable);
        assert_eq!(FastStun::from_param(2), FastStun::Nat);
        assert_eq!(FastStun::from_param(3), FastStun::Always);
        assert_eq!(FastStun::from_param(4), FastStun::Always);
        assert_eq!(FastStun::from_param(7), FastStun::Stable);
        assert!(!FastStun::ForcePrivate.probes() && !FastStun::Off.probes());
        assert!(FastStun::Stable.probes() && FastStun::Always.probes());
    }

    #[test]
    fn behind_a_nat_each_mode_decides() {
        let (local, mapped) = (sa("192.168.1.10:5060"), sa("203.0.113.7:40000"));
        let public = hp("203.0.113.7", 40000);
        let d = |m| contact_from_stun(m, local, mapped);
        assert_eq!(d(FastStun::Stable), StunUse::WhenConfirmed(public.clone()));
        assert_eq!(d(FastStun::Nat), StunUse::Now(public.clone()));
        assert_eq!(d(FastStun::Always), StunUse::Now(public));
        assert_eq!(d(FastStun::Off), StunUse::No);
        assert_eq!(d(FastStun::ForcePrivate), StunUse::No);
    }

    #[test]
    fn a_public_address_is_kept_unless_always() {
        let (local, mapped) = (sa("198.51.100.2:5060"), sa("203.0.113.7:5060"));
        assert_eq!(
            contact_from_stun(FastStun::Nat, local, mapped),
            StunUse::No,
            "2 is for NATs in front of private addresses"
        );
        assert_eq!(
            contact_from_stun(FastStun::Always, local, mapped),
            StunUse::Now(hp("203.0.113.7", 5060))
        );
        // No NAT at all: nothing to change in any mode.
        for m in [FastStun::Stable, FastStun::Nat, FastStun::Always] {
            assert_eq!(contact_from_stun(m, local, local), StunUse::No, "{m:?}");
        }
    }

    #[test]
    fn local_addresses_are_told_from_public_ones() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_local_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "203.0.113.7",
        ] {
            assert!(!is_local_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    /// A Binding success for `request` carrying `mapped`, as a server would send it.
    fn success(request: &Message, mapped: SocketAddr, xor: bool) -> Vec<u8> {
        let mut m = Message::new();
        let addr: Box<dyn rtc_stun::message::Setter> = if xor {
            Box::new(XorMappedAddress {
                ip: mapped.ip(),
                port: mapped.port(),
            })
        } else {
            Box::new(rtc_stun::addr::MappedAddress {
                ip: mapped.ip(),
                port: mapped.port(),
            })
        };
        m.build(&[
            Box::new(request.transaction_id),
            Box::new(BINDING_SUCCESS),
            addr,
        ])
        .unwrap();
        m.raw
    }

    #[test]
    fn the_answer_to_our_request_gives_the_mapped_address() {
        let req = binding_request().unwrap();
        let mapped = sa("203.0.113.7:40000");
        assert_eq!(
            mapped_address(&req, &success(&req, mapped, true)),
            Some(mapped)
        );
        assert_eq!(
            mapped_address(&req, &success(&req, mapped, false)),
            Some(mapped)
        );
        // Another transaction's answer, SIP text and garbage are not.
        let other = binding_request().unwrap();
        assert_eq!(mapped_address(&req, &success(&other, mapped, true)), None);
        assert_eq!(mapped_address(&req, b"SIP/2.0 200 OK\r\n\r\n"), None);
        assert_eq!(mapped_address(&req, &[0u8; 3]), None);
        let mut cut = success(&req, mapped, true);
        cut.truncate(24);
        assert_eq!(mapped_address(&req, &cut), None);
    }

    #[tokio::test]
    async fn probe_asks_a_server_on_a_real_socket() {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        let seen = sa("203.0.113.9:41000");
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            // The first request is ignored (lost), the second answered.
            let _ = server.recv_from(&mut buf).await;
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let mut req = Message::new();
            req.raw = buf[..n].to_vec();
            req.decode().unwrap();
            let _ = server.send_to(b"not stun", from).await;
            let _ = server.send_to(&success(&req, seen, true), from).await;
        });
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(probe(&sock, server_addr).await, Some(seen));
    }

    #[tokio::test]
    async fn probe_gives_up_on_a_silent_server() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(probe(&sock, silent.local_addr().unwrap()).await, None);
    }
}
