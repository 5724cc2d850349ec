//! Registrations of the extra accounts (multi-account), part of the sans-IO policy.
//!
//! Besides the main account (see the parent module), the user agent may register any number
//! of further accounts over the same socket. Each one has its own registration session
//! (its own Call-ID and CSeq, RFC 3261 §10.2), its own Contact user, its own lifetime, refresh
//! and back-off, and its own digest credentials. Incoming INVITEs addressed to any of them
//! ring (ghost-call protection knows their user names).
//!
//! When the TCP/TLS/WS connection of an account's registration closes, it registers again
//! (RFC 5626 §4.5), with back-off while the connection keeps dropping.
//!
//! Not done for extra accounts: the Contact correction from `received`/`rport`
//! (RFC 3581; the main account's correction is used, the socket is the same) and the
//! re-registration after a network change (the refresh timer registers again at the latest).

use std::time::Instant;

use super::{
    refresh_delay, retry_delay, Action, RegState, RegisterOutcome, DEFAULT_EXPIRES, FLOW_STABLE,
};
use crate::target::HostPort;
use crate::{AccountConfig, RegistrationState, SipEvent};

/// The name of an extra account in events and actions: `username@server` (the address of
/// record, RFC 3261 §10.2.1), unique within the list.
pub(crate) fn account_key(acc: &AccountConfig) -> String {
    let host = acc
        .server
        .as_deref()
        .or(acc.proxy.as_deref())
        .unwrap_or_default()
        .trim();
    format!("{}@{host}", acc.username.trim())
}

#[derive(Debug)]
struct Entry {
    key: String,
    account: AccountConfig,
    reg: RegState,
    /// Generation of the REGISTER in flight (unique across all extra accounts).
    gen: u64,
    failures: u32,
    /// A registrar's `Min-Expires` (RFC 3261 §10.2.8).
    expires_override: Option<u32>,
    /// Lifetime last reported in a `Registered` event.
    announced: Option<u32>,
    /// Taken off the list: forgotten once its binding is removed.
    removed: bool,
    /// When the connection of its registration was last lost, and how many times in a row
    /// within [`FLOW_STABLE`] of each other.
    last_flow_loss: Option<Instant>,
    flow_losses: u32,
}

impl Entry {
    fn new(account: AccountConfig) -> Entry {
        Entry {
            key: account_key(&account),
            account,
            reg: RegState::Idle,
            gen: 0,
            failures: 0,
            expires_override: None,
            announced: None,
            removed: false,
            last_flow_loss: None,
            flow_losses: 0,
        }
    }

    fn requested_expires(&self) -> u32 {
        self.expires_override
            .unwrap_or(match self.account.register_expires {
                0 => DEFAULT_EXPIRES,
                e => e,
            })
    }
}

/// The extra accounts and their registration states.
#[derive(Debug, Default)]
pub(crate) struct ExtraRegs {
    entries: Vec<Entry>,
    next_gen: u64,
}

impl ExtraRegs {
    /// Replace the list. Accounts no longer listed are unregistered (if registered) and
    /// forgotten; a listed account whose settings changed is registered again with the new
    /// ones when it was registered (or trying); new accounts wait for [`ExtraRegs::register_all`].
    /// A second account with the key (`user@server`) of an earlier one is ignored.
    pub(crate) fn set(
        &mut self,
        accounts: Vec<AccountConfig>,
        contact: Option<&HostPort>,
        out: &mut Vec<Action>,
    ) {
        let mut wanted: Vec<AccountConfig> = Vec::new();
        for acc in accounts {
            let key = account_key(&acc);
            if wanted.iter().any(|w| account_key(w) == key) {
                tracing::warn!(account = %key, "extra account listed twice; the second is ignored");
                continue;
            }
            wanted.push(acc);
        }
        for i in 0..self.entries.len() {
            let keep = wanted.iter().any(|w| account_key(w) == self.entries[i].key);
            if !keep && !self.entries[i].removed {
                self.entries[i].removed = true;
                self.unregister_at(i, contact, out);
            }
        }
        for acc in wanted {
            let key = account_key(&acc);
            match self.entries.iter().position(|e| e.key == key) {
                Some(i) => {
                    let e = &mut self.entries[i];
                    let revived = std::mem::replace(&mut e.removed, false);
                    if e.account == acc && !revived {
                        continue;
                    }
                    let active = !matches!(e.reg, RegState::Idle);
                    e.account = acc;
                    e.expires_override = None;
                    e.failures = 0;
                    e.announced = None;
                    if active {
                        self.send_register(i, contact, true, out);
                    }
                }
                None => self.entries.push(Entry::new(acc)),
            }
        }
        self.entries
            .retain(|e| !(e.removed && matches!(e.reg, RegState::Idle)));
    }

    /// Register every listed account that is not registered or registering.
    pub(crate) fn register_all(&mut self, contact: Option<&HostPort>, out: &mut Vec<Action>) {
        for i in 0..self.entries.len() {
            let e = &mut self.entries[i];
            if e.removed || matches!(e.reg, RegState::Registered { .. } | RegState::Registering) {
                continue;
            }
            e.failures = 0;
            e.announced = None;
            self.send_register(i, contact, true, out);
        }
    }

    /// The local address moved (see [`crate::SipUa::network_changed`]): every account that is
    /// registered, registering or waiting to retry registers again at once from the new
    /// address, with its back-off reset; idle and removed accounts stay as they are.
    pub(crate) fn network_changed(&mut self, contact: Option<&HostPort>, out: &mut Vec<Action>) {
        for i in 0..self.entries.len() {
            let e = &mut self.entries[i];
            let active = matches!(
                e.reg,
                RegState::Registered { .. } | RegState::Registering | RegState::RetryWait { .. }
            );
            if e.removed || !active {
                continue;
            }
            e.failures = 0;
            e.flow_losses = 0;
            e.announced = None;
            self.send_register(i, contact, false, out);
        }
    }

    /// Remove every binding (`Expires: 0`) and stop refreshing; the accounts stay listed.
    pub(crate) fn unregister_all(&mut self, contact: Option<&HostPort>, out: &mut Vec<Action>) {
        for i in 0..self.entries.len() {
            self.unregister_at(i, contact, out);
        }
        self.entries
            .retain(|e| !(e.removed && matches!(e.reg, RegState::Idle)));
    }

    /// An un-REGISTER is in flight for some account (shutdown waits for it).
    pub(crate) fn unregistering(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.reg, RegState::Unregistering))
    }

    /// Some extra account is registered.
    pub(crate) fn any_registered(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.reg, RegState::Registered { .. }))
    }

    /// Some extra account names a server or proxy.
    pub(crate) fn has_server(&self) -> bool {
        self.entries.iter().any(|e| {
            !e.removed
                && (e
                    .account
                    .server
                    .as_deref()
                    .is_some_and(|s| !s.trim().is_empty())
                    || e.account
                        .proxy
                        .as_deref()
                        .is_some_and(|s| !s.trim().is_empty()))
        })
    }

    /// Whether `user` is the user name of a listed extra account.
    pub(crate) fn has_user(&self, user: &str) -> bool {
        self.entries
            .iter()
            .any(|e| !e.removed && e.account.username == user)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| match e.reg {
                RegState::Registered { refresh_at, .. } => Some(refresh_at),
                RegState::RetryWait { retry_at } => Some(retry_at),
                _ => None,
            })
            .min()
    }

    pub(crate) fn on_tick(
        &mut self,
        now: Instant,
        contact: Option<&HostPort>,
        out: &mut Vec<Action>,
    ) {
        for i in 0..self.entries.len() {
            match self.entries[i].reg {
                RegState::Registered { refresh_at, .. } if now >= refresh_at => {
                    self.send_register(i, contact, false, out);
                }
                RegState::RetryWait { retry_at } if now >= retry_at => {
                    self.send_register(i, contact, true, out);
                }
                _ => {}
            }
        }
    }

    /// The connection the registration of `key` lived on closed: the binding points at a
    /// dead flow, so register again over a new connection (RFC 5626 §4.5), at once after a
    /// stable period, with the failure back-off while the connection keeps dropping.
    pub(crate) fn on_flow_lost(
        &mut self,
        key: &str,
        now: Instant,
        contact: Option<&HostPort>,
        out: &mut Vec<Action>,
    ) {
        let Some(i) = self.entries.iter().position(|e| e.key == key) else {
            return;
        };
        let e = &mut self.entries[i];
        if e.removed || !matches!(e.reg, RegState::Registered { .. }) {
            // A REGISTER in flight reports its own failure; idle: nothing to do.
            return;
        }
        let flapping = e
            .last_flow_loss
            .is_some_and(|t| now.saturating_duration_since(t) < FLOW_STABLE);
        e.flow_losses = if flapping { e.flow_losses + 1 } else { 1 };
        e.last_flow_loss = Some(now);
        e.announced = None;
        if e.flow_losses <= 1 {
            e.failures = 0;
            self.send_register(i, contact, true, out);
        } else {
            let losses = e.flow_losses;
            self.failed(i, now, 503, "connection to the registrar lost".into(), out);
            // The back-off follows the losses in a row, not the failed REGISTERs.
            let e = &mut self.entries[i];
            e.failures = losses - 1;
            e.reg = RegState::RetryWait {
                retry_at: now + retry_delay(losses - 1, 503),
            };
        }
    }

    /// The outcome of the REGISTER `gen` of account `key`; stale outcomes are ignored.
    pub(crate) fn on_register_done(
        &mut self,
        key: &str,
        gen: u64,
        o: RegisterOutcome,
        now: Instant,
        contact: Option<&HostPort>,
        out: &mut Vec<Action>,
    ) {
        let Some(i) = self
            .entries
            .iter()
            .position(|e| e.key == key && e.gen == gen)
        else {
            tracing::debug!(account = %key, gen, "stale extra REGISTER outcome ignored");
            return;
        };
        match self.entries[i].reg {
            RegState::Unregistering => {
                if !(200..300).contains(&o.code) {
                    tracing::warn!(account = %key, code = o.code, reason = %o.reason, "un-REGISTER failed; binding expires on its own");
                }
                let e = &mut self.entries[i];
                e.reg = RegState::Idle;
                e.announced = None;
                emit(out, key, RegistrationState::Unregistered);
                if e.removed {
                    self.entries.remove(i);
                }
            }
            RegState::Registering => {
                let requested = self.entries[i].requested_expires();
                if (200..300).contains(&o.code) {
                    let granted = o.expires.unwrap_or(requested);
                    if granted == 0 {
                        self.failed(i, now, o.code, "registrar granted no lifetime".into(), out);
                        return;
                    }
                    let e = &mut self.entries[i];
                    e.failures = 0;
                    e.reg = RegState::Registered {
                        expires: granted,
                        refresh_at: now + refresh_delay(granted),
                    };
                    if e.announced != Some(granted) {
                        e.announced = Some(granted);
                        emit(out, key, RegistrationState::Registered { expires: granted });
                    }
                } else if o.code == 423 && o.min_expires.is_some_and(|m| m > requested) {
                    self.entries[i].expires_override = o.min_expires;
                    self.send_register(i, contact, false, out);
                } else {
                    self.failed(i, now, o.code, o.reason, out);
                }
            }
            RegState::Idle | RegState::Registered { .. } | RegState::RetryWait { .. } => {}
        }
    }

    fn failed(&mut self, i: usize, now: Instant, code: u16, reason: String, out: &mut Vec<Action>) {
        let e = &mut self.entries[i];
        e.failures += 1;
        e.announced = None;
        let delay = retry_delay(e.failures, code);
        tracing::warn!(account = %e.key, code, %reason, retry_in = ?delay, "extra account registration failed");
        e.reg = RegState::RetryWait {
            retry_at: now + delay,
        };
        emit(out, &e.key, RegistrationState::Failed { code, reason });
    }

    fn send_register(
        &mut self,
        i: usize,
        contact: Option<&HostPort>,
        announce: bool,
        out: &mut Vec<Action>,
    ) {
        self.next_gen += 1;
        let gen = self.next_gen;
        let e = &mut self.entries[i];
        e.gen = gen;
        e.reg = RegState::Registering;
        if announce {
            emit(out, &e.key, RegistrationState::Registering);
        }
        out.push(Action::SendExtraRegister {
            key: e.key.clone(),
            gen,
            account: e.account.clone(),
            expires: e.requested_expires(),
            contact: contact.cloned(),
        });
    }

    fn unregister_at(&mut self, i: usize, contact: Option<&HostPort>, out: &mut Vec<Action>) {
        match self.entries[i].reg {
            RegState::Registered { .. } | RegState::Registering => {
                self.next_gen += 1;
                let gen = self.next_gen;
                let e = &mut self.entries[i];
                e.gen = gen;
                e.reg = RegState::Unregistering;
                out.push(Action::SendExtraRegister {
                    key: e.key.clone(),
                    gen,
                    account: e.account.clone(),
                    expires: 0,
                    contact: contact.cloned(),
                });
            }
            RegState::RetryWait { .. } => {
                let e = &mut self.entries[i];
                e.reg = RegState::Idle;
                e.announced = None;
                emit(out, &e.key, RegistrationState::Unregistered);
            }
            RegState::Idle | RegState::Unregistering => {}
        }
    }
}

fn emit(out: &mut Vec<Action>, key: &str, state: RegistrationState) {
    out.push(Action::Emit(SipEvent::ExtraRegistration {
        account: key.to_string(),
        state,
    }));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::{Command, Input, StackEvent, UaPolicy};
    use crate::Transport;

    fn acc(user: &str, expires: u32) -> AccountConfig {
        AccountConfig {
            server: Some("127.0.0.1:5080".into()),
            username: user.into(),
            password: format!("pass{user}"),
            register_expires: expires,
            ..Default::default()
        }
    }

    fn ok(expires: u32) -> RegisterOutcome {
        RegisterOutcome {
            code: 200,
            reason: "OK".into(),
            expires: Some(expires),
            min_expires: None,
            received: None,
            contact: HostPort::new("127.0.0.1", 40000),
            reliable: false,
            websocket: false,
            allow_events: None,
            server_params: Vec::new(),
        }
    }

    fn fail(code: u16) -> RegisterOutcome {
        RegisterOutcome {
            code,
            reason: "Forbidden".into(),
            ..ok(0)
        }
    }

    /// (key, gen, expires) of every extra REGISTER in `a`.
    fn sent(a: &[Action]) -> Vec<(String, u64, u32)> {
        a.iter()
            .filter_map(|x| match x {
                Action::SendExtraRegister {
                    key, gen, expires, ..
                } => Some((key.clone(), *gen, *expires)),
                _ => None,
            })
            .collect()
    }

    fn states(a: &[Action]) -> Vec<(String, RegistrationState)> {
        a.iter()
            .filter_map(|x| match x {
                Action::Emit(SipEvent::ExtraRegistration { account, state }) => {
                    Some((account.clone(), state.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn cmd(p: &mut UaPolicy, c: Command, now: Instant) -> Vec<Action> {
        p.handle(Input::Command(c), now)
    }

    fn done(
        p: &mut UaPolicy,
        key: &str,
        gen: u64,
        o: RegisterOutcome,
        now: Instant,
    ) -> Vec<Action> {
        p.handle(
            Input::Stack(StackEvent::ExtraRegisterDone {
                key: key.into(),
                gen,
                outcome: o,
            }),
            now,
        )
    }

    #[test]
    fn every_extra_account_registers_with_its_own_lifetime_and_refreshes() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp).with_seed(1);
        cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300), acc("1004", 0)]),
            t0,
        );
        let a = cmd(&mut p, Command::RegisterExtra, t0);
        let regs = sent(&a);
        assert_eq!(
            regs.iter().map(|r| (r.0.as_str(), r.2)).collect::<Vec<_>>(),
            [
                ("1003@127.0.0.1:5080", 300),
                ("1004@127.0.0.1:5080", DEFAULT_EXPIRES)
            ]
        );
        assert_eq!(states(&a).len(), 2, "two Registering events");
        // no main-account REGISTER and no main-account event
        assert!(!a.iter().any(|x| matches!(x, Action::SendRegister { .. })));
        assert!(!a
            .iter()
            .any(|x| matches!(x, Action::Emit(SipEvent::Registration(_)))));

        let a = done(&mut p, &regs[0].0, regs[0].1, ok(300), t0);
        assert_eq!(
            states(&a),
            [(
                "1003@127.0.0.1:5080".to_string(),
                RegistrationState::Registered { expires: 300 }
            )]
        );
        let a = done(&mut p, &regs[1].0, regs[1].1, ok(120), t0);
        assert_eq!(
            states(&a)[0].1,
            RegistrationState::Registered { expires: 120 }
        );
        // 1004 (120 s) refreshes first, silently, at 85 % of its lifetime
        assert_eq!(p.next_deadline(), Some(t0 + refresh_delay(120)));
        let a = p.handle(Input::Tick, t0 + refresh_delay(120));
        assert_eq!(sent(&a).len(), 1);
        assert_eq!(sent(&a)[0].0, "1004@127.0.0.1:5080");
        assert!(states(&a).is_empty(), "refreshes are silent");
    }

    #[test]
    fn a_failing_extra_account_backs_off_alone() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300), acc("1004", 300)]),
            t0,
        );
        let regs = sent(&cmd(&mut p, Command::RegisterExtra, t0));
        done(&mut p, &regs[0].0, regs[0].1, ok(300), t0);
        let a = done(&mut p, &regs[1].0, regs[1].1, fail(403), t0);
        assert!(matches!(
            states(&a).as_slice(),
            [(k, RegistrationState::Failed { code: 403, .. })] if k == "1004@127.0.0.1:5080"
        ));
        // a credential error waits 60 s; nothing is sent before
        assert!(sent(&p.handle(Input::Tick, t0 + Duration::from_secs(59))).is_empty());
        let a = p.handle(Input::Tick, t0 + Duration::from_secs(60));
        assert_eq!(sent(&a)[0].0, "1004@127.0.0.1:5080");
        // a stale outcome (the first REGISTER's gen) changes nothing
        assert!(done(&mut p, &regs[1].0, regs[1].1, ok(300), t0).is_empty());
    }

    #[test]
    fn network_change_registers_every_active_extra_account_again_at_once() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300), acc("1004", 300), acc("1005", 300)]),
            t0,
        );
        let regs = sent(&cmd(&mut p, Command::RegisterExtra, t0));
        done(&mut p, &regs[0].0, regs[0].1, ok(300), t0);
        done(&mut p, &regs[1].0, regs[1].1, fail(503), t0);
        // 1005 still has its REGISTER in flight
        let t1 = t0 + Duration::from_secs(10);
        let a = cmd(&mut p, Command::NetworkChanged(None), t1);
        let again = sent(&a);
        let keys: Vec<&str> = again.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            keys,
            [
                "1003@127.0.0.1:5080",
                "1004@127.0.0.1:5080",
                "1005@127.0.0.1:5080"
            ],
            "registered, retry-waiting and registering accounts all go again"
        );
        assert!(
            again.iter().zip(&regs).all(|(n, o)| n.1 > o.1),
            "new generations: the outcomes of the old REGISTERs are stale"
        );
        // the old REGISTER of 1005 answering late changes nothing
        assert!(done(&mut p, &regs[2].0, regs[2].1, ok(300), t1).is_empty());
    }

    #[test]
    fn unregister_and_shutdown_remove_every_extra_binding() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300), acc("1004", 300)]),
            t0,
        );
        let regs = sent(&cmd(&mut p, Command::RegisterExtra, t0));
        for r in &regs {
            done(&mut p, &r.0, r.1, ok(300), t0);
        }
        let a = cmd(&mut p, Command::UnregisterExtra, t0);
        let un = sent(&a);
        assert_eq!(un.len(), 2);
        assert!(un.iter().all(|u| u.2 == 0), "Expires: 0 for each: {un:?}");
        for u in &un {
            let a = done(&mut p, &u.0, u.1, ok(0), t0);
            assert_eq!(states(&a)[0].1, RegistrationState::Unregistered);
        }
        assert_eq!(p.next_deadline(), None, "no refresh after unregister");

        // registered again, then shut down: the shutdown waits for both un-REGISTERs
        let regs = sent(&cmd(&mut p, Command::RegisterExtra, t0));
        for r in &regs {
            done(&mut p, &r.0, r.1, ok(300), t0);
        }
        let a = cmd(&mut p, Command::Shutdown, t0);
        let un = sent(&a);
        assert_eq!(un.len(), 2);
        assert!(!a.contains(&Action::ShutdownComplete));
        let a = done(&mut p, &un[0].0, un[0].1, ok(0), t0);
        assert!(!a.contains(&Action::ShutdownComplete));
        let a = done(&mut p, &un[1].0, un[1].1, ok(0), t0);
        assert!(a.contains(&Action::ShutdownComplete));
    }

    #[test]
    fn replacing_the_list_unregisters_dropped_accounts_and_keeps_unchanged_ones() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300), acc("1004", 300)]),
            t0,
        );
        let regs = sent(&cmd(&mut p, Command::RegisterExtra, t0));
        for r in &regs {
            done(&mut p, &r.0, r.1, ok(300), t0);
        }
        // 1004 goes, 1003 stays as it is, 1005 comes (registered by RegisterExtra only)
        let a = cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300), acc("1005", 300)]),
            t0,
        );
        assert_eq!(
            sent(&a)
                .iter()
                .map(|s| (s.0.as_str(), s.2))
                .collect::<Vec<_>>(),
            [("1004@127.0.0.1:5080", 0)]
        );
        let a = cmd(&mut p, Command::RegisterExtra, t0);
        assert_eq!(
            sent(&a).iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
            ["1005@127.0.0.1:5080"]
        );
        // a changed password registers 1003 again at once
        let mut changed = acc("1003", 300);
        changed.password = "new".into();
        let a = cmd(
            &mut p,
            Command::SetExtraAccounts(vec![changed, acc("1005", 300)]),
            t0,
        );
        assert_eq!(
            sent(&a)
                .iter()
                .map(|s| (s.0.as_str(), s.2))
                .collect::<Vec<_>>(),
            [("1003@127.0.0.1:5080", 300)]
        );
    }

    #[test]
    fn lost_connection_registers_the_extra_account_again_then_backs_off_while_flapping() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Tcp);
        cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300)]),
            t0,
        );
        let r = sent(&cmd(&mut p, Command::RegisterExtra, t0)).remove(0);
        done(&mut p, &r.0, r.1, ok(300), t0);
        let lost = |key: &str| {
            Input::Stack(StackEvent::ExtraFlowLost {
                key: key.to_string(),
            })
        };
        // first loss: a new REGISTER at once
        let t1 = t0 + Duration::from_secs(100);
        let a = p.handle(lost(&r.0), t1);
        let again = sent(&a);
        assert_eq!(again.len(), 1, "{a:?}");
        assert_eq!(states(&a)[0].1, RegistrationState::Registering);
        done(&mut p, &again[0].0, again[0].1, ok(300), t1);
        // lost again within a minute: reported, and retried after the back-off (5 s)
        let t2 = t1 + Duration::from_secs(10);
        let a = p.handle(lost(&r.0), t2);
        assert!(sent(&a).is_empty(), "{a:?}");
        assert!(matches!(
            states(&a).as_slice(),
            [(_, RegistrationState::Failed { code: 503, .. })]
        ));
        assert_eq!(p.next_deadline(), Some(t2 + Duration::from_secs(5)));
        // an unknown account or one not registered: nothing happens
        assert!(p.handle(lost("9999@nowhere"), t2).is_empty());
    }

    #[test]
    fn duplicate_accounts_are_registered_once() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300), acc("1003", 60)]),
            t0,
        );
        let a = cmd(&mut p, Command::RegisterExtra, t0);
        assert_eq!(sent(&a).len(), 1);
        assert_eq!(sent(&a)[0].2, 300, "the first entry wins");
    }

    fn invite(call: u64, user: &str, from_server: bool) -> Input {
        Input::Stack(StackEvent::Incoming(crate::policy::IncomingInvite {
            call: crate::CallKey(call),
            sip_call_id: format!("c{call}"),
            from_user: "1002".into(),
            from_display: None,
            from_uri: "sip:1002@127.0.0.1".into(),
            to_user: user.into(),
            remote_addr: "127.0.0.1:5080".parse().expect("addr"),
            sdp: Some("offer".into()),
            headers: vec![],
            request_user: user.into(),
            from_server,
        }))
    }

    fn rang(a: &[Action]) -> Option<String> {
        a.iter().find_map(|x| match x {
            Action::Emit(SipEvent::Incoming { request_user, .. }) => Some(request_user.clone()),
            _ => None,
        })
    }

    #[test]
    fn invites_for_main_and_extra_accounts_ring_others_get_404() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        cmd(&mut p, Command::SetAccount(acc("1001", 300)), t0);
        cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300)]),
            t0,
        );
        let r = sent(&cmd(&mut p, Command::RegisterExtra, t0)).remove(0);
        done(&mut p, &r.0, r.1, ok(300), t0);

        assert_eq!(
            rang(&p.handle(invite(1, "1003", true), t0)).as_deref(),
            Some("1003")
        );
        assert_eq!(
            rang(&p.handle(invite(2, "1001", true), t0)).as_deref(),
            Some("1001")
        );
        let a = p.handle(invite(3, "1005", true), t0);
        assert!(
            a.contains(&Action::SendReject(crate::CallKey(3), 404)),
            "{a:?}"
        );
        // registered (an extra account): INVITEs must come through the server
        let a = p.handle(invite(4, "1003", false), t0);
        assert!(
            a.contains(&Action::SendReject(crate::CallKey(4), 403)),
            "{a:?}"
        );
    }

    #[test]
    fn extra_accounts_alone_turn_ghost_protection_on() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        cmd(
            &mut p,
            Command::SetExtraAccounts(vec![acc("1003", 300)]),
            t0,
        );
        assert_eq!(
            rang(&p.handle(invite(1, "1003", true), t0)).as_deref(),
            Some("1003")
        );
        let a = p.handle(invite(2, "9999", true), t0);
        assert!(
            a.contains(&Action::SendReject(crate::CallKey(2), 404)),
            "{a:?}"
        );
    }

    #[test]
    fn min_expires_423_is_retried_with_the_registrar_minimum() {
        let t0 = Instant::now();
        let mut p = UaPolicy::new(Transport::Udp);
        cmd(&mut p, Command::SetExtraAccounts(vec![acc("1003", 30)]), t0);
        let r = sent(&cmd(&mut p, Command::RegisterExtra, t0)).remove(0);
        let a = done(
            &mut p,
            &r.0,
            r.1,
            RegisterOutcome {
                code: 423,
                min_expires: Some(90),
                ..fail(423)
            },
            t0,
        );
        assert_eq!(sent(&a)[0].2, 90);
        assert!(states(&a).is_empty(), "a 423 retry is not a failure");
    }
}
