//! Candidate gathering on the media socket (RFC 8445 §5.1.1): the STUN Binding and TURN
//! Allocate exchanges of [`IceTransport`] run here, before the SDP is written, for at most
//! [`IceConfig::gather_timeout`] (the `icetimeout` parameter).

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{IceConfig, IceError, IceTransport};

/// Resolve a `host:port` server address to one of the family of `family_of` (our socket's),
/// so that a dual-stack name works on an IPv4 or IPv6 media socket.
pub async fn resolve(host_port: &str, family_of: SocketAddr) -> Result<SocketAddr, IceError> {
    let addrs = tokio::net::lookup_host(host_port)
        .await
        .map_err(|_| IceError::Resolve(host_port.to_owned()))?;
    let mut first = None;
    for a in addrs {
        if a.is_ipv4() == family_of.is_ipv4() {
            return Ok(a);
        }
        first.get_or_insert(a);
    }
    first.ok_or_else(|| IceError::Resolve(host_port.to_owned()))
}

/// Gather our candidates on `socket` (whose address in the SDP is `host`): the host candidate
/// at once, the server-reflexive and relayed ones when their servers answer within
/// [`IceConfig::gather_timeout`]. Datagrams from anyone but the servers are dropped meanwhile
/// (there is no peer yet).
pub async fn gather(
    socket: &UdpSocket,
    cfg: &IceConfig,
    host: SocketAddr,
) -> Result<IceTransport, IceError> {
    let mut ice = IceTransport::new(cfg, host, Instant::now().into_std())?;
    run(socket, &mut ice, cfg).await;
    Ok(ice)
}

/// Run the gathering exchanges of an [`IceTransport`] already created for `socket` (several
/// components gather side by side: one call per socket, joined).
pub async fn run(socket: &UdpSocket, ice: &mut IceTransport, cfg: &IceConfig) {
    let start = Instant::now();
    let deadline = start + cfg.gather_timeout;
    let mut buf = vec![0u8; 2048];
    loop {
        flush(socket, ice).await;
        if ice.gathering_done() {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(timeout = ?cfg.gather_timeout, "ICE gathering incomplete at icetimeout");
            break;
        }
        let wake = ice
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or(deadline)
            .min(deadline);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    let data = buf.get(..n).unwrap_or(&[]);
                    let _ = ice.handle_datagram(Instant::now().into_std(), data, from);
                }
            }
            _ = tokio::time::sleep_until(wake) => ice.handle_timeout(Instant::now().into_std()),
        }
    }
    tracing::debug!(elapsed = ?start.elapsed(), ?ice, "ICE gathering finished");
}

/// Send what the transport has queued, without waiting: a datagram the socket has no room
/// for is dropped (and logged), as the network would drop it; the media task never stalls
/// behind a full send buffer.
pub fn flush_now(socket: &UdpSocket, ice: &mut IceTransport) {
    while let Some((data, to)) = ice.poll_transmit() {
        if let Err(e) = socket.try_send_to(&data, to) {
            tracing::debug!(%to, error = %e, "ICE send failed");
        }
    }
}

/// Send what the transport has queued.
pub async fn flush(socket: &UdpSocket, ice: &mut IceTransport) {
    while let Some((data, to)) = ice.poll_transmit() {
        if let Err(e) = crate::session::send_datagram(socket, &data, to).await {
            tracing::debug!(%to, error = %e, "ICE send failed");
        }
    }
}
