//! Multi-account: the accounts of `extraregisteraccounts` / `registerex(accounts)` register
//! alongside the main one (serveraddress, username, password, ...).
//!
//! - Every extra account has its own registration in the SIP layer
//!   ([`webphone_sip::SipUa::set_extra_accounts`]): own Contact user, own interval, own digest
//!   credentials, realm and auth user.
//! - Calls to any registered account ring; the line's local name (STATUS `localname`,
//!   LINEDETAILS `localusername`, the CDR's called party) is the account that was called.
//! - Outgoing calls and chats use the main account (behaviours §9).
//! - Registration results of an extra account are `EVENT` notifications naming it
//!   (`account 1003@host registered (expires 300 s)`, `account 1003@host unregistered`, and
//!   `account 1003@host: Register failed (...)` also through `onDisplay`). `onRegistered`,
//!   `onRegisterFailed`, `onUnRegistered`, `isregistered()` and STATUS `registered` follow the
//!   main account; only when no main account is configured do they follow the extra accounts
//!   (registered as soon as one of them is).
//! - `registerex(accounts)` replaces the extra accounts for this session (the
//!   `extraregisteraccounts` value included; the parameter itself is not changed) and
//!   registers them; `registerex("")` removes them. `unregister()` and `stop()` remove every
//!   binding.

use std::collections::BTreeMap;
use std::mem::discriminant;

use serde_json::Value;
use webphone_sip::{AccountConfig, RegistrationState, SipUa};

use super::{arg, bad, register_failure_text, Core, Severity};
use crate::accounts::{parse_accounts, ExtraAccount};
use crate::notify;
use crate::phone::ApiError;

/// Engine-side state of the extra accounts.
#[derive(Debug, Default)]
pub(super) struct ExtraAccounts {
    /// The list set by `registerex` (replaces the parameter's for this session).
    runtime: Option<Vec<ExtraAccount>>,
    /// User names of the accounts handed to the SIP layer (to name the line of a call).
    users: Vec<String>,
    /// Their keys (`user@server`), as the SIP layer names them in its events.
    keys: Vec<String>,
    /// Last registration state of each account, by `user@server`.
    states: BTreeMap<String, RegistrationState>,
    /// The combined state last reported while no main account is configured.
    reported: Option<RegistrationState>,
}

impl ExtraAccounts {
    /// The SIP stack stopped: every binding is gone.
    pub(super) fn forget_states(&mut self) {
        self.states.clear();
        self.reported = None;
    }
}

impl Core {
    /// The extra accounts in effect: `registerex`'s list, else the parameter's. Entries left
    /// out are reported as LOG/EVENT warnings when `report` is set.
    fn extra_account_list(&self, report: bool) -> Vec<ExtraAccount> {
        if let Some(list) = &self.extra.runtime {
            return list.clone();
        }
        let parsed = parse_accounts(&self.params.get("extraregisteraccounts"));
        if report {
            for p in &parsed.problems {
                self.log(Severity::Warning, &format!("extraregisteraccounts: {p}"));
            }
        }
        parsed.accounts
    }

    fn extra_account_config(&self, a: &ExtraAccount) -> AccountConfig {
        let interval = a
            .interval
            .map(i64::from)
            .unwrap_or_else(|| self.params.get_i64("registerinterval").unwrap_or(120));
        AccountConfig {
            server: Some(a.server.clone()),
            proxy: a.proxy.clone(),
            username: a.username.clone(),
            auth_username: a.auth_username.clone(),
            password: a.password.clone(),
            display_name: None,
            realm: a.realm.clone(),
            register_expires: interval.clamp(30, 86_400) as u32,
        }
    }

    /// Whether the main account can register (server and user name set).
    fn main_account_configured(&self) -> bool {
        let acc = self.account();
        acc.server.is_some() && !acc.username.is_empty()
    }

    /// Hand the extra accounts to the SIP layer; with `register`, register them too.
    /// An account identical to the main one (same user and server) is left out.
    pub(super) fn apply_extra_accounts(&mut self, register: bool) {
        let Some(sip) = self.sip.clone() else { return };
        let main = self.account();
        let main_key = main
            .server
            .as_ref()
            .map(|s| format!("{}@{}", main.username, s.trim()));
        let mut configs = Vec::new();
        for a in self.extra_account_list(true) {
            if Some(a.name()) == main_key {
                self.log(
                    Severity::Warning,
                    &format!("extra account {} is the main account; left out", a.name()),
                );
                continue;
            }
            configs.push(self.extra_account_config(&a));
        }
        let keys: Vec<String> = configs.iter().map(SipUa::extra_account_key).collect();
        // States of dropped accounts stay until their un-REGISTER is reported.
        self.extra.keys = keys.clone();
        self.extra.users = configs.iter().map(|c| c.username.clone()).collect();
        if !configs.is_empty() {
            self.log(
                Severity::Event,
                &format!("extra accounts: {}", keys.join(" ")),
            );
        }
        sip.set_extra_accounts(configs);
        if register {
            sip.register_extra();
        }
    }

    /// `register()`: the main account (when configured) and every extra account.
    pub(super) fn register_all_accounts(&mut self) -> Result<(), ApiError> {
        let extras = !self.extra_account_list(false).is_empty();
        // Always: a list emptied since the last time unregisters the accounts it dropped.
        self.apply_extra_accounts(true);
        match self.register(true) {
            // Only extra accounts: nothing is missing.
            Err(ApiError::BadArgument(_)) if extras && !self.main_account_configured() => Ok(()),
            r => r,
        }
    }

    /// `registerex(accounts)`: replace the extra accounts and register them.
    pub(super) async fn registerex_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let text = arg(args, 0).unwrap_or("");
        let parsed = parse_accounts(text);
        for p in &parsed.problems {
            self.log(Severity::Warning, &format!("registerex: {p}"));
        }
        if parsed.accounts.is_empty() && !parsed.problems.is_empty() {
            return Err(bad(format!(
                "registerex: no usable account ({}); format: \
                 server,usr,pwd,ival,proxy,realm,authuser;server2,...",
                parsed.problems.join("; ")
            )));
        }
        self.extra.runtime = Some(parsed.accounts);
        self.start().await?;
        self.apply_extra_accounts(true);
        Ok(Value::Null)
    }

    /// The local user name of a line: the extra account an incoming call was addressed to,
    /// else the main account's.
    pub(super) fn local_name(&self, local_user: &str) -> String {
        if local_user.is_empty() {
            self.username()
        } else {
            local_user.to_string()
        }
    }

    /// Which extra account (its user name) an INVITE for `request_user` is for; empty for
    /// the main account.
    pub(super) fn extra_user_called(&self, request_user: &str) -> String {
        if request_user != self.username() && self.extra.users.iter().any(|u| u == request_user) {
            request_user.to_string()
        } else {
            String::new()
        }
    }

    /// The server of the first extra account (to pick the local address when no main
    /// server is configured).
    pub(super) fn first_extra_server(&self) -> Option<String> {
        self.extra_account_list(false)
            .first()
            .map(|a| a.server.clone())
    }

    /// A registration state of the extra account `account` (`user@server`).
    pub(super) async fn on_extra_registration(
        &mut self,
        account: String,
        state: RegistrationState,
    ) {
        let before = self.extra.states.get(&account).cloned();
        let was_registered = matches!(before, Some(RegistrationState::Registered { .. }));
        match &state {
            RegistrationState::Registering => {}
            RegistrationState::Registered { expires } => {
                if !was_registered {
                    self.account_event(&format!(
                        "account {account} registered (expires {expires} s)"
                    ));
                }
            }
            RegistrationState::Failed { code, reason } => {
                let text = register_failure_text(Some(*code), reason);
                self.display(Severity::Warning, &format!("account {account}: {text}"));
            }
            RegistrationState::Unregistered => {
                if was_registered {
                    self.account_event(&format!("account {account} unregistered"));
                }
            }
        }
        let dropped = !self.extra.keys.contains(&account);
        if dropped && state == RegistrationState::Unregistered {
            self.extra.states.remove(&account);
        } else {
            self.extra.states.insert(account, state);
        }
        if !self.main_account_configured() {
            self.report_combined_registration().await;
        }
    }

    /// An EVENT notification (kept for `getlogs`), without `onDisplay`.
    fn account_event(&self, text: &str) {
        let line = notify::event(Severity::Event, text);
        self.keep_log(&line);
        self.notify(line);
    }

    /// With no main account, the registration callbacks and STATUS follow the extra accounts:
    /// registered when one is, else registering, else failed, else unregistered.
    async fn report_combined_registration(&mut self) {
        let states = || self.extra.states.values();
        let combined = states()
            .find(|s| matches!(s, RegistrationState::Registered { .. }))
            .or_else(|| states().find(|s| matches!(s, RegistrationState::Registering)))
            .or_else(|| states().find(|s| matches!(s, RegistrationState::Failed { .. })))
            .or_else(|| states().find(|s| matches!(s, RegistrationState::Unregistered)))
            .cloned();
        let Some(combined) = combined else { return };
        let same = self
            .extra
            .reported
            .as_ref()
            .is_some_and(|r| discriminant(r) == discriminant(&combined));
        if same {
            return;
        }
        self.extra.reported = Some(combined.clone());
        self.on_registration(combined).await;
    }
}
