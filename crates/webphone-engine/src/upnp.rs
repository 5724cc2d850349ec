//! `upnpnat`: port mappings on a home router through UPnP IGD (the Internet Gateway Device
//! protocol), so that the SIP socket and each call's RTP port are reachable from outside at
//! the router's public address, whatever the NAT does with other flows.
//!
//! A softphone behind a router that speaks UPnP asks it once where it is (SSDP search on the
//! LAN), learns its public address (`GetExternalIPAddress`) and asks for a UDP forward per
//! socket (`AddPortMapping`), for a lease it renews at half time and deletes when the socket
//! is done (`DeletePortMapping`). The public address then goes into the SIP Contact (through
//! [`webphone_sip::PortMapper`]) and into the SDP of calls (`c=`/`m=`, and as a
//! server-reflexive ICE candidate).
//!
//! Only a private IPv4 interface address is mapped (IGD's WANIPConnection maps IPv4): on a
//! public or IPv6 address there is nothing to ask, on loopback nobody to ask. A router whose
//! own WAN address is private (a second NAT in front) is not used: its forward would not make
//! us reachable from the Internet. Everything is bounded by short time-outs: a LAN without
//! an IGD costs one [`SEARCH_WAIT`] per network, remembered until the network changes.

mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use webphone_sip::is_local_ip;

pub use wire::WanService;

/// How long the SSDP search waits for a gateway's answer (the request is sent twice).
pub const SEARCH_WAIT: Duration = Duration::from_millis(1500);

/// When the search request is repeated (UDP may lose the first; UDA 1.1 §1.3.2 allows it).
const SEARCH_REPEAT: Duration = Duration::from_millis(500);

/// Time-out of each HTTP exchange with the gateway (description and SOAP).
const HTTP_WAIT: Duration = Duration::from_secs(2);

/// Lease of a mapping; renewed at half time. Short, because a forward the router will not
/// let us delete goes away only when its lease ends: after a crash, or after a move to
/// another address (a router in secure mode, as most are, takes deletions only from the
/// client the forward points to, UPnP error 606).
const LEASE_SECS: u32 = 600;

/// Most bytes of a description or SOAP answer that are accepted.
const MAX_ANSWER: usize = 256 * 1024;

/// Other external ports tried when the wanted one is taken by another mapping.
const PORT_TRIES: usize = 4;

/// Whether a socket on `ip` is one to map: a private IPv4 address (RFC 1918, RFC 6598),
/// neither loopback nor link-local. Pure, for tests.
pub fn wants_mapping(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && is_local_ip(ip),
        IpAddr::V6(_) => false,
    }
}

/// The client; cheap to clone (one shared state per engine).
#[derive(Clone, Default)]
pub struct Upnp {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Upnp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upnp").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    /// What the last search on an interface found; held across the search, so that
    /// concurrent callers wait for one search instead of starting their own.
    discovery: tokio::sync::Mutex<Discovery>,
    /// Active mappings by internal address.
    leases: Mutex<HashMap<SocketAddr, Lease>>,
}

#[derive(Default)]
enum Discovery {
    #[default]
    NotYet,
    Found(Arc<Gateway>),
    /// No (usable) gateway answered on this interface address.
    Absent(IpAddr),
}

/// A gateway found from the interface `local_ip`.
struct Gateway {
    local_ip: IpAddr,
    service: WanService,
    external: IpAddr,
    http: reqwest::Client,
}

struct Lease {
    gateway: Arc<Gateway>,
    external_port: u16,
    renew: Option<JoinHandle<()>>,
}

impl Upnp {
    pub fn new() -> Upnp {
        Upnp::default()
    }

    /// The gateway for sockets on `local_ip`: searched once, the answer kept until
    /// [`Upnp::forget`] (a network change).
    async fn gateway(&self, local_ip: IpAddr) -> Option<Arc<Gateway>> {
        let mut d = self.inner.discovery.lock().await;
        match &*d {
            Discovery::Found(g) if g.local_ip == local_ip => return Some(g.clone()),
            Discovery::Absent(ip) if *ip == local_ip => return None,
            _ => {}
        }
        let found = match discover(local_ip).await {
            Ok(g) => {
                info!(external = %g.external, control = %g.service.control_url, "UPnP gateway found");
                Some(Arc::new(g))
            }
            Err(why) => {
                info!(%local_ip, "no UPnP gateway: {why}");
                None
            }
        };
        *d = match &found {
            Some(g) => Discovery::Found(g.clone()),
            None => Discovery::Absent(local_ip),
        };
        found
    }

    /// Starts the search for sockets on `ip` in the background (when it would be used), so
    /// that the first call does not wait for it.
    pub fn prepare(&self, ip: IpAddr) {
        if !wants_mapping(ip) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            me.gateway(ip).await;
        });
    }

    /// The network changed: the next mapping searches again.
    pub async fn forget(&self) {
        *self.inner.discovery.lock().await = Discovery::NotYet;
    }

    /// Asks for a UDP forward to `local` (the external port equal to the local one when
    /// free); the public address, `None` when there is no gateway or it refused. `what`
    /// names the mapping in the router's list.
    pub async fn map_udp(&self, local: SocketAddr, what: &str) -> Option<SocketAddr> {
        if !wants_mapping(local.ip()) || local.port() == 0 {
            return None;
        }
        if let Some(l) = lock(&self.inner.leases).get(&local) {
            return Some(SocketAddr::new(l.gateway.external, l.external_port));
        }
        let gateway = self.gateway(local.ip()).await?;
        let description = format!("webphone {what}");
        let (port, lease) = match add_mapping(&gateway, local, &description).await {
            Ok(v) => v,
            Err(why) => {
                warn!(%local, "UPnP mapping refused: {why}");
                return None;
            }
        };
        let public = SocketAddr::new(gateway.external, port);
        info!(%local, %public, lease, "UPnP mapping added");
        let renew = (lease > 0).then(|| {
            let g = gateway.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(u64::from(lease / 2).max(60))).await;
                    let args = wire::add_port_mapping_args(port, local, lease, &description);
                    if let Err(why) = soap(&g, "AddPortMapping", &args).await {
                        warn!(%local, "UPnP mapping not renewed: {why}");
                    }
                }
            })
        });
        let old = lock(&self.inner.leases).insert(
            local,
            Lease {
                gateway,
                external_port: port,
                renew,
            },
        );
        if let Some(old) = old {
            // Mapped twice at once: keep the newer lease, stop renewing the other.
            if let Some(r) = old.renew {
                r.abort();
            }
        }
        Some(public)
    }

    /// The mapping of `local` is no longer needed: it is deleted in the background.
    pub fn unmap_udp(&self, local: SocketAddr) {
        let Some(lease) = lock(&self.inner.leases).remove(&local) else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(delete(lease));
        }
    }

    /// Deletes every mapping and waits (bounded) for the gateway's answers: before the
    /// engine stops.
    pub async fn release_all(&self) {
        let leases: Vec<Lease> = lock(&self.inner.leases).drain().map(|(_, l)| l).collect();
        let mut all = tokio::task::JoinSet::new();
        for l in leases {
            all.spawn(delete(l));
        }
        let done = async { while all.join_next().await.is_some() {} };
        if tokio::time::timeout(HTTP_WAIT, done).await.is_err() {
            warn!("UPnP: the gateway did not confirm every deletion");
        }
    }

    /// The external ports mapped now, by internal address (for tests and diagnostics).
    pub fn mapped(&self) -> Vec<(SocketAddr, u16)> {
        lock(&self.inner.leases)
            .iter()
            .map(|(a, l)| (*a, l.external_port))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A call's mapping: deleted when dropped (the call is over).
#[derive(Debug)]
pub struct Mapped {
    upnp: Upnp,
    local: SocketAddr,
    /// The public address the router forwards to `local`.
    pub public: SocketAddr,
}

impl Mapped {
    /// Maps `local` for as long as the returned value lives.
    pub async fn udp(upnp: &Upnp, local: SocketAddr, what: &str) -> Option<Mapped> {
        let public = upnp.map_udp(local, what).await?;
        Some(Mapped {
            upnp: upnp.clone(),
            local,
            public,
        })
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        self.upnp.unmap_udp(self.local);
    }
}

/// [`webphone_sip::PortMapper`] for the SIP socket.
#[derive(Debug)]
pub struct SipPorts(pub Upnp);

impl webphone_sip::PortMapper for SipPorts {
    fn map_udp(&self, local: SocketAddr) -> webphone_sip::MapFuture<'_> {
        Box::pin(self.0.map_udp(local, "SIP"))
    }

    fn unmap_udp(&self, local: SocketAddr) {
        self.0.unmap_udp(local);
    }
}

async fn delete(lease: Lease) {
    if let Some(r) = &lease.renew {
        r.abort();
    }
    let args = wire::delete_port_mapping_args(lease.external_port);
    match soap(&lease.gateway, "DeletePortMapping", &args).await {
        Ok(_) => debug!(port = lease.external_port, "UPnP mapping deleted"),
        Err(why) => warn!(
            port = lease.external_port,
            "UPnP mapping not deleted: {why}"
        ),
    }
}

/// Adds the mapping: the local port first, then a few random ones when it is taken; a lease
/// of 0 when the device only takes permanent ones. The external port and the lease.
async fn add_mapping(
    g: &Gateway,
    local: SocketAddr,
    description: &str,
) -> Result<(u16, u32), String> {
    let mut lease = LEASE_SECS;
    let mut port = local.port();
    let mut tries = 0;
    loop {
        let args = wire::add_port_mapping_args(port, local, lease, description);
        match soap(g, "AddPortMapping", &args).await {
            Ok(_) => return Ok((port, lease)),
            Err(SoapError::Fault(wire::fault::ONLY_PERMANENT_LEASES, _)) if lease != 0 => {
                lease = 0;
            }
            Err(SoapError::Fault(
                wire::fault::CONFLICT | wire::fault::CONFLICT_WITH_OTHER_MECHANISMS,
                _,
            )) if tries < PORT_TRIES => {
                tries += 1;
                port = rand::random_range(10_000..60_000);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SoapError {
    #[error("UPnP error {0} ({1})")]
    Fault(u16, String),
    #[error("{0}")]
    Transport(String),
    #[error("not a SOAP answer (HTTP {0})")]
    Invalid(u16),
}

/// One SOAP action at the gateway's control URL.
async fn soap(
    g: &Gateway,
    action: &str,
    args: &[(&str, String)],
) -> Result<Vec<(String, String)>, SoapError> {
    let (header, body) = wire::soap_request(&g.service.service_type, action, args);
    let resp = g
        .http
        .post(&g.service.control_url)
        .header("Content-Type", "text/xml; charset=\"utf-8\"")
        .header("SOAPAction", header)
        .body(body)
        .send()
        .await
        .map_err(|e| SoapError::Transport(e.without_url().to_string()))?;
    let status = resp.status().as_u16();
    let text = read_text(resp).await.map_err(SoapError::Transport)?;
    match wire::soap_answer(&text, action) {
        wire::SoapAnswer::Ok(out) => Ok(out),
        wire::SoapAnswer::Fault(code, text) => Err(SoapError::Fault(code, text)),
        wire::SoapAnswer::Invalid => Err(SoapError::Invalid(status)),
    }
}

/// The body of an answer, refused when longer than [`MAX_ANSWER`].
async fn read_text(mut resp: reqwest::Response) -> Result<String, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > MAX_ANSWER {
            return Err("answer too long".into());
        }
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).map_err(|_| "answer is not UTF-8".into())
}

/// The host of an `http://` URL as an IP address (gateways name themselves by address).
fn url_ip(url: &str) -> Option<IpAddr> {
    let rest = url.get(7..)?;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.parse().ok()
}

/// Searches for a gateway from `local_ip`: the first that answers, describes a WAN
/// connection service on its own address and names a public external address.
async fn discover(local_ip: IpAddr) -> Result<Gateway, String> {
    let sock = UdpSocket::bind(SocketAddr::new(local_ip, 0))
        .await
        .map_err(|e| format!("cannot search from {local_ip}: {e}"))?;
    // UDA 1.1 §1.1.2: SSDP multicast goes out with a TTL of 2.
    let _ = sock.set_multicast_ttl_v4(2);
    let http = http_client()?;
    let request = wire::search_request();
    let deadline = tokio::time::Instant::now() + SEARCH_WAIT;
    let mut next_send = tokio::time::Instant::now();
    let mut last_problem = "nothing answered the search".to_owned();
    let mut buf = vec![0u8; 2048];
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(last_problem);
        }
        if now >= next_send {
            if let Err(e) = sock.send_to(request.as_bytes(), wire::SSDP_ADDR).await {
                return Err(format!("search not sent: {e}"));
            }
            next_send = now + SEARCH_REPEAT;
        }
        let wait = deadline.min(next_send);
        let (n, from) = match tokio::time::timeout_at(wait, sock.recv_from(&mut buf)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                debug!(error = %e, "SSDP receive error");
                continue;
            }
            Err(_) => continue,
        };
        let Some(location) = buf.get(..n).and_then(wire::search_location) else {
            continue;
        };
        // The description must come from the device that answered.
        if url_ip(&location) != Some(from.ip()) {
            last_problem = format!("{from} named another host ({location})");
            continue;
        }
        match describe(&http, &location, from.ip(), local_ip).await {
            Ok(g) => return Ok(g),
            Err(why) => last_problem = format!("{from}: {why}"),
        }
    }
}

/// Reads the description at `location` and asks the public address.
async fn describe(
    http: &reqwest::Client,
    location: &str,
    device: IpAddr,
    local_ip: IpAddr,
) -> Result<Gateway, String> {
    let resp = http
        .get(location)
        .send()
        .await
        .map_err(|e| format!("description: {}", e.without_url()))?;
    let text = read_text(resp).await?;
    let service = wire::wan_service(&text, location).ok_or("no WAN connection service")?;
    if url_ip(&service.control_url) != Some(device) {
        return Err(format!(
            "control URL on another host ({})",
            service.control_url
        ));
    }
    let mut g = Gateway {
        local_ip,
        service,
        external: IpAddr::from([0, 0, 0, 0]),
        http: http.clone(),
    };
    let out = soap(&g, "GetExternalIPAddress", &[])
        .await
        .map_err(|e| format!("GetExternalIPAddress: {e}"))?;
    let external = wire::external_ip(&wire::SoapAnswer::Ok(out)).ok_or("no external address")?;
    if external.is_unspecified() || is_local_ip(external) {
        return Err(format!(
            "its external address {external} is private (another NAT in front)"
        ));
    }
    g.external = external;
    Ok(g)
}

/// Plain HTTP on the LAN: no proxy, no redirects, short time-outs.
fn http_client() -> Result<reqwest::Client, String> {
    crate::integrations::http_builder()?
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(HTTP_WAIT)
        .timeout(HTTP_WAIT)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_private_ipv4_interfaces_are_mapped() {
        for (ip, want) in [
            ("192.168.1.20", true),
            ("10.0.0.7", true),
            ("172.20.1.1", true),
            ("100.64.3.3", true),
            ("127.0.0.1", false),
            ("169.254.9.9", false),
            ("172.32.77.2", false),
            ("203.0.113.5", false),
            ("fd00::5", false),
            ("::1", false),
        ] {
            assert_eq!(wants_mapping(ip.parse().expect("ip")), want, "{ip}");
        }
    }

    #[test]
    fn url_hosts_are_read_for_the_same_device_check() {
        assert_eq!(
            url_ip("http://192.168.77.1:32959/rootDesc.xml"),
            Some("192.168.77.1".parse().expect("ip"))
        );
        assert_eq!(
            url_ip("http://10.0.0.1/x"),
            Some("10.0.0.1".parse().expect("ip"))
        );
        assert_eq!(
            url_ip("http://[fe80::1]:80/x"),
            Some("fe80::1".parse().expect("ip"))
        );
        assert_eq!(url_ip("http://router.lan/x"), None);
        assert_eq!(url_ip("http"), None);
    }
}
