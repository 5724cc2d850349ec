//! Parameter sets for `webphone-cli` (`-p name=value`), and the usual ones of
//! the interop scenarios.

use std::path::PathBuf;

use crate::{Kamailio, TestDir};

/// Frequency of the tone the softphone sends (its `file:` microphone).
pub const CLI_TONE_HZ: f64 = 440.0;

/// SIP transport of the softphone (`transport` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "0",
            Transport::Tcp => "1",
        }
    }

    /// How Kamailio's log names it (`from udp:127.0.0.1:...`).
    pub fn kamailio_proto(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// An ordered list of `name=value` parameters.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// Sets (or replaces) a parameter.
    pub fn set(mut self, name: &str, value: impl ToString) -> Params {
        let value = value.to_string();
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Borrowed pairs for [`crate::Cli::start`].
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// `user` without a registrar, listening on UDP `port` (calls and requests go straight
    /// to the peer's address), logging SIP (`loglevel` 5): the softphone of the SIPp tests.
    pub fn direct(user: &str, port: u16) -> Params {
        Params::new()
            .set("username", user)
            .set("register", "0")
            .set("transport", "0")
            .set("signalingport", port)
            .set("loglevel", "5")
    }

    /// `user` (password `pass<user>`) registering with `kamailio` over `transport`.
    pub fn account(kamailio: &Kamailio, user: &str, transport: Transport) -> Params {
        Params::new()
            .set("serveraddress", kamailio.addr())
            .set("username", user)
            .set("password", format!("pass{user}"))
            .set("transport", transport.param())
            .set("register", "1")
            .set("loglevel", "5")
    }

    /// Audio through files: the microphone loops a 440 Hz tone (8 kHz mono
    /// 16-bit, made in `dir`), the speaker records to `dir/cli-received.wav`.
    /// Returns the parameters and the recording's path.
    pub fn with_file_audio(self, dir: &TestDir) -> (Params, PathBuf) {
        let src = dir.join("cli-tone440-8k.wav");
        if !src.exists() {
            crate::audio::write_tone(&src, CLI_TONE_HZ, 8000, 30.0, 0.5);
        }
        let rec = dir.join("cli-received.wav");
        let p = self
            .set("audiodevicein", format!("file:{}", src.display()))
            .set("audiodeviceout", format!("file:{}", rec.display()));
        (p, rec)
    }
}
