//! Network-change recovery: notice that the local address or the route to the SIP server
//! changed (or went away and came back), move SIP to the new address and register again
//! (RFC 3261 §10.2.1: the binding must name where we are reachable), and refresh every
//! call in progress with a new offer carrying the new address (RFC 3261 §14.1 re-INVITE;
//! it also refreshes the remote target, §12.2), with exponential back-off on failure.
//!
//! [`NetWatch`] is the deterministic part: observations in (the source address the OS picks
//! for the server now, results of what it asked for), with an explicit `now`; actions out.
//! The `impl Core` below polls the route (a connected UDP socket picks the source address
//! without sending anything), carries out the actions and reports back.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use webphone_media::sdp;

use super::{route_to, CallPhase, Core, Peer, RegState};
use crate::notify::Severity;

/// How often the route to the server is looked at.
pub(crate) const POLL_EVERY: Duration = Duration::from_secs(2);
/// First retry delay after a failed move or call refresh; it doubles per failure...
pub(crate) const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// ... up to this.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(32);

/// Delay before the `attempt`-th retry (1-based): 1 s, 2 s, 4 s, ... capped at 32 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let shift = attempt.saturating_sub(1).min(16);
    BACKOFF_FIRST.saturating_mul(1u32 << shift).min(BACKOFF_CAP)
}

/// What the watcher asks the engine to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NetAction {
    /// Move SIP to this local address and register again; report with
    /// [`NetWatch::moved`] or [`NetWatch::move_failed`].
    Move(IpAddr),
    /// The route came back on the address we have: register again (the registrar may have
    /// dropped us, a NAT may have forgotten us).
    Reregister(IpAddr),
    /// No route to the server any more (link down, address removed).
    Lost,
    /// Refresh the call on this line: new media address, new offer (re-INVITE); report
    /// with [`NetWatch::refresh_done`] / [`NetWatch::refresh_failed`].
    Refresh(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    /// Failures so far.
    attempts: u32,
    /// When to try again; `None` while an attempt is under way.
    retry_at: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PendingMove {
    to: IpAddr,
    state: Pending,
}

/// The network-change state machine. Off until [`NetWatch::start`].
#[derive(Debug, Default)]
pub(crate) struct NetWatch {
    /// The local address SIP uses (`None`: not watching).
    current: Option<IpAddr>,
    next_poll: Option<Instant>,
    /// The last observation found no route.
    down: bool,
    /// A move asked for and not done yet.
    moving: Option<PendingMove>,
    /// Calls to refresh after a move, by line.
    refresh: BTreeMap<usize, Pending>,
}

impl NetWatch {
    /// Watch from `now` on, SIP being on `ip`.
    pub(crate) fn start(&mut self, ip: IpAddr, now: Instant) {
        *self = NetWatch {
            current: Some(ip),
            next_poll: Some(now + POLL_EVERY),
            ..NetWatch::default()
        };
    }

    /// Stop watching (engine stopped, `localip` configured).
    pub(crate) fn stop(&mut self) {
        *self = NetWatch::default();
    }

    pub(crate) fn watching(&self) -> bool {
        self.current.is_some()
    }

    /// Whether the route should be looked at now.
    pub(crate) fn poll_due(&self, now: Instant) -> bool {
        self.next_poll.is_some_and(|t| now >= t)
    }

    /// Something suggests the network changed (a send failed, the connection to the
    /// registrar dropped, registration failed): look at the route at the next chance.
    pub(crate) fn poll_soon(&mut self, now: Instant) {
        if self.watching() {
            self.next_poll = Some(self.next_poll.map_or(now, |t| t.min(now)));
        }
    }

    /// The earliest instant at which [`NetWatch::tick`] or a poll has something to do (the
    /// engine ticks every second anyway; the tests read the schedule here).
    #[cfg(test)]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let retries = self
            .refresh
            .values()
            .chain(self.moving.as_ref().map(|m| &m.state))
            .filter_map(|p| p.retry_at);
        retries.chain(self.next_poll).min()
    }

    /// The source address the OS would use for the server now (`None`: no route).
    pub(crate) fn observe(&mut self, now: Instant, route: Option<IpAddr>) -> Vec<NetAction> {
        let Some(current) = self.current else {
            return Vec::new();
        };
        self.next_poll = Some(now + POLL_EVERY);
        let mut out = Vec::new();
        match route {
            None => {
                if !self.down {
                    self.down = true;
                    out.push(NetAction::Lost);
                }
            }
            Some(ip) if ip == current => {
                // Back where we are (a move to elsewhere that kept failing is moot).
                self.moving = None;
                if self.down {
                    self.down = false;
                    out.push(NetAction::Reregister(ip));
                }
            }
            Some(ip) => {
                self.down = false;
                match &self.moving {
                    // Already moving there (or backing off before the next try).
                    Some(m) if m.to == ip => {}
                    _ => {
                        self.moving = Some(PendingMove {
                            to: ip,
                            state: Pending {
                                attempts: 0,
                                retry_at: None,
                            },
                        });
                        out.push(NetAction::Move(ip));
                    }
                }
            }
        }
        out
    }

    /// SIP is on `ip` now; `calls` are the lines whose media must follow.
    pub(crate) fn moved(&mut self, ip: IpAddr, calls: &[usize]) -> Vec<NetAction> {
        if !self.watching() {
            return Vec::new();
        }
        self.current = Some(ip);
        self.moving = None;
        self.down = false;
        calls
            .iter()
            .map(|&line| {
                self.refresh.insert(
                    line,
                    Pending {
                        attempts: 0,
                        retry_at: None,
                    },
                );
                NetAction::Refresh(line)
            })
            .collect()
    }

    /// Moving to `ip` failed (e.g. the address vanished again before we could bind it).
    pub(crate) fn move_failed(&mut self, now: Instant, ip: IpAddr) {
        if let Some(m) = self.moving.as_mut().filter(|m| m.to == ip) {
            m.state.attempts += 1;
            m.state.retry_at = Some(now + backoff(m.state.attempts));
        }
    }

    /// The peer accepted the new offer of `line`.
    pub(crate) fn refresh_done(&mut self, line: usize) {
        self.refresh.remove(&line);
    }

    /// The refresh of `line` failed (refused, no answer, could not be sent): try again
    /// after the back-off. Calls not being refreshed are ignored (e.g. a refused hold).
    pub(crate) fn refresh_failed(&mut self, now: Instant, line: usize) {
        if let Some(p) = self.refresh.get_mut(&line) {
            p.attempts += 1;
            p.retry_at = Some(now + backoff(p.attempts));
        }
    }

    /// The call on `line` ended (or cannot be refreshed): nothing more to do for it.
    pub(crate) fn forget(&mut self, line: usize) {
        self.refresh.remove(&line);
    }

    /// Whether a refresh of `line` is waiting for its answer.
    pub(crate) fn refreshing(&self, line: usize) -> bool {
        self.refresh
            .get(&line)
            .is_some_and(|p| p.retry_at.is_none())
    }

    /// Retries whose back-off is over.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<NetAction> {
        let mut out = Vec::new();
        if let Some(m) = self.moving.as_mut() {
            if m.state.retry_at.is_some_and(|t| now >= t) {
                m.state.retry_at = None;
                out.push(NetAction::Move(m.to));
            }
        }
        for (line, p) in self.refresh.iter_mut() {
            if p.retry_at.is_some_and(|t| now >= t) {
                p.retry_at = None;
                out.push(NetAction::Refresh(*line));
            }
        }
        out
    }
}

impl Core {
    /// Start watching the route to the server, unless `localip` pins the address or there
    /// is no server.
    pub(super) fn netwatch_start(&mut self) {
        self.netwatch.stop();
        self.net_target = None;
        if self.params.get("localip").trim().parse::<IpAddr>().is_ok() {
            return;
        }
        let server = self.server();
        let proxy = self.params.get("proxyaddress");
        let target = if proxy.trim().is_empty() {
            server
        } else {
            proxy
        };
        if target.trim().is_empty() {
            return;
        }
        let host = super::host_of(&target);
        let ip = host.parse::<IpAddr>().ok().or_else(|| {
            use std::net::ToSocketAddrs;
            (host, 5060).to_socket_addrs().ok()?.next().map(|a| a.ip())
        });
        if let Some(ip) = ip {
            self.net_target = Some(ip);
            self.netwatch.start(self.local_ip, Instant::now());
        }
    }

    /// Every engine tick: look at the route when due, carry out what the watcher asks.
    pub(super) async fn netwatch_tick(&mut self) {
        let Some(target) = self.net_target.filter(|_| self.sip.is_some()) else {
            return;
        };
        let now = Instant::now();
        if matches!(
            self.reg,
            RegState::Failed(_)
                | RegState::Registering {
                    was_registered: true
                }
        ) {
            // Registration failing (a send failed, no answer) or renewed after the connection
            // to the registrar dropped: perhaps because we moved. Look now, not in 2 s.
            self.netwatch.poll_soon(now);
        }
        let mut todo: VecDeque<NetAction> = self.netwatch.tick(now).into();
        if self.netwatch.poll_due(now) {
            todo.extend(self.netwatch.observe(now, route_to(target)));
        }
        while let Some(action) = todo.pop_front() {
            todo.extend(self.net_action(action, now).await);
        }
    }

    async fn net_action(&mut self, action: NetAction, now: Instant) -> Vec<NetAction> {
        let Some(sip) = self.sip.clone() else {
            return Vec::new();
        };
        match action {
            NetAction::Lost => {
                self.log(
                    Severity::Warning,
                    "network: no route to the SIP server; waiting for it to come back",
                );
                Vec::new()
            }
            NetAction::Reregister(ip) => {
                self.log(
                    Severity::Event,
                    &format!("network: route to the SIP server back on {ip}; registering again"),
                );
                if let Err(e) = sip.network_changed(ip).await {
                    self.log(Severity::Warning, &format!("network: {e}"));
                }
                Vec::new()
            }
            NetAction::Move(ip) => {
                // Another network, maybe another router: search again.
                self.upnp_network_changed().await;
                self.after_move(sip.network_changed(ip).await, ip, now)
            }
            NetAction::Refresh(n) => {
                if let Err(why) = self.refresh_call(n).await {
                    self.netwatch.forget(n);
                    tracing::debug!(line = n, why, "call not refreshed after the network change");
                }
                Vec::new()
            }
        }
    }

    /// After the SIP transport tried to move to `ip`: the calls to refresh, or a retry later.
    fn after_move(
        &mut self,
        result: Result<std::net::SocketAddr, webphone_sip::SipError>,
        ip: std::net::IpAddr,
        now: Instant,
    ) -> Vec<NetAction> {
        match result {
            Ok(addr) => {
                self.local_ip = ip;
                self.log(
                    Severity::Event,
                    &format!("network: local address changed; SIP now on {addr}"),
                );
                let calls: Vec<usize> = self
                    .lines
                    .iter()
                    .filter(|(_, l)| {
                        l.phase == CallPhase::Connected
                            && matches!(l.peer, Peer::Sip(_))
                            && l.media.is_some()
                    })
                    .map(|(n, _)| n)
                    .collect();
                self.netwatch.moved(ip, &calls)
            }
            Err(e) => {
                self.netwatch.move_failed(now, ip);
                self.log(
                    Severity::Warning,
                    &format!("network: cannot move to {ip}: {e}"),
                );
                Vec::new()
            }
        }
    }

    /// Move the media of the call on line `n` to a socket on the current local address
    /// and offer it to the peer (re-INVITE with the new `c=`/`m=`, RFC 3264 §8).
    async fn refresh_call(&mut self, n: usize) -> Result<(), String> {
        let sip = self.sip.clone().ok_or("engine stopped")?;
        let l = self.lines.get(n).ok_or("line gone")?;
        let Peer::Sip(call) = l.peer else {
            return Err("not a SIP call".into());
        };
        if l.phase != CallPhase::Connected || l.media.is_none() {
            return Err("call not connected".into());
        }
        let (Some(neg), Some(prefs)) = (l.neg.clone(), l.offer.clone()) else {
            return Err("no negotiated media".into());
        };
        // A call that runs ICE gathers on the new socket: the re-offer carries new
        // credentials and candidates, which restarts ICE at the peer (RFC 8445 §9); the
        // checks start with its answer.
        let ice_peer = l
            .media
            .as_ref()
            .is_some_and(|m| m.has_ice())
            .then(|| self.nat_peer_ip(&l.peername));
        let mut rtp = match self.bind_rtp().await {
            Ok(r) => r,
            Err(e) => {
                // The address may be going away again: retry later.
                self.netwatch.refresh_failed(Instant::now(), n);
                let msg = format!("line {n}: no RTP port on {}: {e}", self.local_ip);
                self.log(Severity::Warning, &msg);
                return Ok(());
            }
        };
        let port_map = self.map_rtp(&mut rtp).await;
        if let Some(peer_ip) = ice_peer {
            let servers = self.nat_servers(peer_ip);
            self.gather_ice(&mut rtp, servers).await;
        }
        let local = rtp.sdp_addr(rtp.local_addr());
        let Some(l) = self.lines.get_mut(n) else {
            return Err("line gone".into());
        };
        // The old forward goes with the old socket.
        l.port_map = port_map;
        // The old socket is bound to an address we no longer have: the media restarts on the
        // new one (same codec, same devices).
        let old = l.media.take();
        // The devices close with the old session (a file recording restarts).
        l.port = None;
        l.rtp = Some(rtp);
        if let Some(m) = old {
            m.stop().await;
        }
        self.start_media(n, neg).await;
        let Some(l) = self.lines.get_mut(n) else {
            return Err("line gone".into());
        };
        l.sdp_ver += 1;
        let offer = sdp::create_offer(l.sdp_origin, l.sdp_ver, local, &prefs);
        let offer = match l.media.as_ref() {
            Some(m) => m.add_ice_to_sdp(&offer, true),
            None => offer,
        };
        match sip.reinvite(call, offer) {
            Ok(()) => {
                self.log(
                    Severity::Event,
                    &format!("line {n}: media moved to {local}; re-INVITE sent"),
                );
            }
            Err(e) => {
                self.netwatch.refresh_failed(Instant::now(), n);
                self.log(
                    Severity::Warning,
                    &format!("line {n}: re-INVITE failed: {e}"),
                );
            }
        }
        Ok(())
    }

    /// The answer to a re-INVITE of ours arrived (`ok`) or it was refused.
    pub(super) fn netwatch_reoffer_result(&mut self, call: webphone_sip::CallKey, ok: bool) {
        let Some(n) = self.line_of(call) else { return };
        if !self.netwatch.refreshing(n) {
            return;
        }
        if ok {
            self.netwatch.refresh_done(n);
        } else {
            self.netwatch.refresh_failed(Instant::now(), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, last))
    }

    fn watching(now: Instant) -> NetWatch {
        let mut w = NetWatch::default();
        w.start(ip(2), now);
        w
    }

    #[test]
    fn nothing_happens_while_the_route_stays_on_our_address() {
        let t0 = Instant::now();
        let mut w = watching(t0);
        assert!(!w.poll_due(t0));
        let t1 = t0 + POLL_EVERY;
        assert!(w.poll_due(t1));
        assert!(w.observe(t1, Some(ip(2))).is_empty());
        assert!(!w.poll_due(t1 + Duration::from_secs(1)));
        assert_eq!(w.next_deadline(), Some(t1 + POLL_EVERY));
    }

    #[test]
    fn a_new_source_address_moves_sip_then_refreshes_every_connected_call() {
        let t0 = Instant::now();
        let mut w = watching(t0);
        let t1 = t0 + POLL_EVERY;
        assert_eq!(w.observe(t1, Some(ip(3))), vec![NetAction::Move(ip(3))]);
        // Still moving: the next poll does not ask again.
        assert!(w.observe(t1 + POLL_EVERY, Some(ip(3))).is_empty());
        assert_eq!(
            w.moved(ip(3), &[1, 4]),
            vec![NetAction::Refresh(1), NetAction::Refresh(4)]
        );
        assert!(w.refreshing(1) && w.refreshing(4));
        // Settled on the new address.
        assert!(w.observe(t1 + 2 * POLL_EVERY, Some(ip(3))).is_empty());
        w.refresh_done(1);
        w.refresh_done(4);
        assert!(!w.refreshing(1));
        assert!(w.tick(t1 + Duration::from_secs(600)).is_empty());
    }

    #[test]
    fn link_down_is_reported_once_and_coming_back_on_the_same_address_registers_again() {
        let t0 = Instant::now();
        let mut w = watching(t0);
        let t1 = t0 + POLL_EVERY;
        assert_eq!(w.observe(t1, None), vec![NetAction::Lost]);
        assert!(w.observe(t1 + POLL_EVERY, None).is_empty());
        assert_eq!(
            w.observe(t1 + 2 * POLL_EVERY, Some(ip(2))),
            vec![NetAction::Reregister(ip(2))]
        );
        assert!(w.observe(t1 + 3 * POLL_EVERY, Some(ip(2))).is_empty());
    }

    #[test]
    fn address_removed_then_another_added_moves_to_the_new_one() {
        let t0 = Instant::now();
        let mut w = watching(t0);
        let t1 = t0 + POLL_EVERY;
        assert_eq!(w.observe(t1, None), vec![NetAction::Lost]);
        assert_eq!(
            w.observe(t1 + POLL_EVERY, Some(ip(3))),
            vec![NetAction::Move(ip(3))]
        );
    }

    #[test]
    fn a_failed_move_is_retried_with_doubling_back_off_up_to_the_cap() {
        let t0 = Instant::now();
        let mut w = watching(t0);
        let mut now = t0 + POLL_EVERY;
        assert_eq!(w.observe(now, Some(ip(3))), vec![NetAction::Move(ip(3))]);
        let mut delays = Vec::new();
        for _ in 0..8 {
            w.move_failed(now, ip(3));
            // Polls in between do not bypass the back-off.
            assert!(w.observe(now, Some(ip(3))).is_empty());
            let retry = w
                .moving
                .as_ref()
                .and_then(|m| m.state.retry_at)
                .expect("a retry is scheduled");
            assert!(w.tick(retry - Duration::from_millis(1)).is_empty());
            delays.push(retry.duration_since(now).as_secs());
            now = retry;
            assert_eq!(w.tick(now), vec![NetAction::Move(ip(3))]);
        }
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 32, 32]);
        // The route went back to our old address meanwhile: the move is dropped.
        assert!(w.observe(now, Some(ip(2))).is_empty());
        assert!(w.moving.is_none());
    }

    #[test]
    fn yet_another_address_while_backing_off_is_tried_at_once() {
        let t0 = Instant::now();
        let mut w = watching(t0);
        let t1 = t0 + POLL_EVERY;
        w.observe(t1, Some(ip(3)));
        w.move_failed(t1, ip(3));
        assert_eq!(w.observe(t1, Some(ip(4))), vec![NetAction::Move(ip(4))]);
        // A late failure report for the old target changes nothing.
        w.move_failed(t1, ip(3));
        assert_eq!(w.moving.as_ref().map(|m| m.state.attempts), Some(0));
    }

    #[test]
    fn a_refused_refresh_is_retried_with_back_off_until_it_succeeds() {
        let t0 = Instant::now();
        let mut w = watching(t0);
        w.observe(t0 + POLL_EVERY, Some(ip(3)));
        w.moved(ip(3), &[2]);
        let mut now = t0 + Duration::from_secs(3);
        w.refresh_failed(now, 2);
        assert!(!w.refreshing(2));
        assert_eq!(w.next_deadline(), Some(now + Duration::from_secs(1)));
        now += Duration::from_secs(1);
        assert_eq!(w.tick(now), vec![NetAction::Refresh(2)]);
        assert!(w.refreshing(2));
        w.refresh_failed(now, 2);
        assert!(w.tick(now + Duration::from_millis(1999)).is_empty());
        assert_eq!(
            w.tick(now + Duration::from_secs(2)),
            vec![NetAction::Refresh(2)]
        );
        w.refresh_done(2);
        assert!(w.tick(now + Duration::from_secs(600)).is_empty());
    }

    #[test]
    fn a_refresh_failure_for_a_call_not_being_refreshed_is_ignored() {
        let t0 = Instant::now();
        let mut w = watching(t0);
        w.refresh_failed(t0, 7);
        assert!(w.tick(t0 + Duration::from_secs(60)).is_empty());
        w.observe(t0 + POLL_EVERY, Some(ip(3)));
        w.moved(ip(3), &[7]);
        w.forget(7);
        w.refresh_failed(t0, 7);
        assert!(w.tick(t0 + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn poll_soon_brings_the_next_look_forward_but_never_back() {
        let t0 = Instant::now();
        let mut w = watching(t0);
        let t = t0 + Duration::from_millis(300);
        w.poll_soon(t);
        assert!(w.poll_due(t));
        let mut off = NetWatch::default();
        off.poll_soon(t);
        assert!(!off.poll_due(t + Duration::from_secs(60)));
        assert!(off.observe(t, None).is_empty());
    }

    #[test]
    fn back_off_doubles_from_one_second_to_the_cap() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 32, 32, 32]);
        assert_eq!(backoff(u32::MAX), BACKOFF_CAP);
    }
}
