//! Port mappings asked of the router for the SIP socket (`upnpnat`): the engine provides
//! the client (UPnP IGD); the stack asks for a mapping of its UDP socket at start and after
//! a network change, and uses the public address like a STUN answer that needs no
//! confirmation: a mapping is a forward the router promised, not an observation.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::fast_stun::StunUse;
use crate::target::HostPort;
use crate::FastStun;

/// The future of [`PortMapper::map_udp`].
pub type MapFuture<'a> = Pin<Box<dyn Future<Output = Option<SocketAddr>> + Send + 'a>>;

/// Something that forwards a public UDP port to a local socket.
pub trait PortMapper: Send + Sync + fmt::Debug {
    /// Asks for a forward to `local`: the public address, `None` when there is none. Should
    /// return within a couple of seconds.
    fn map_udp(&self, local: SocketAddr) -> MapFuture<'_>;
    /// The socket at `local` is closed: its forward can go.
    fn unmap_udp(&self, local: SocketAddr);
}

/// A shared [`PortMapper`] in [`crate::TransportOptions`]; equal when it is the same one.
#[derive(Clone, Debug)]
pub struct PortMapperRef(pub Arc<dyn PortMapper>);

impl PartialEq for PortMapperRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PortMapperRef {}

/// What a mapping of `local` to `public` means for the Contact with `use_fast_stun` =
/// `mode`: used from the first request, except with `-1` (our own address always).
pub(crate) fn contact_from_mapping(
    mode: FastStun,
    local: SocketAddr,
    public: SocketAddr,
) -> StunUse {
    if mode == FastStun::ForcePrivate || public == local {
        return StunUse::No;
    }
    StunUse::Now(HostPort::new(public.ip().to_string(), public.port()))
}

/// The Contact decision for a new socket: the router's mapping when there is one, else
/// what the STUN probe found.
pub(crate) fn choose(mapping: Option<StunUse>, stun: Option<StunUse>) -> Option<StunUse> {
    match mapping {
        Some(StunUse::No) | None => stun.or(mapping),
        Some(m) => Some(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn mapping_is_used_at_once_unless_the_private_address_is_forced() {
        let local = addr("192.168.1.5:5060");
        let public = addr("172.32.7.2:5060");
        let now = StunUse::Now(HostPort::new("172.32.7.2", 5060));
        for mode in [
            FastStun::Off,
            FastStun::Stable,
            FastStun::Nat,
            FastStun::Always,
        ] {
            assert_eq!(contact_from_mapping(mode, local, public), now, "{mode:?}");
        }
        assert_eq!(
            contact_from_mapping(FastStun::ForcePrivate, local, public),
            StunUse::No
        );
        assert_eq!(
            contact_from_mapping(FastStun::Nat, local, local),
            StunUse::No
        );
    }

    #[test]
    fn mapping_wins_over_stun_and_stun_fills_in() {
        let m = StunUse::Now(HostPort::new("172.32.7.2", 5060));
        let s = StunUse::WhenConfirmed(HostPort::new("172.32.7.2", 40000));
        assert_eq!(choose(Some(m.clone()), Some(s.clone())), Some(m));
        assert_eq!(choose(None, Some(s.clone())), Some(s.clone()));
        assert_eq!(choose(Some(StunUse::No), Some(s.clone())), Some(s));
        assert_eq!(choose(Some(StunUse::No), None), Some(StunUse::No));
        assert_eq!(choose(None, None), None);
    }
}
