//! `use_fast_stun` and `use_rport` behind a real NAT: the softphone runs in a namespace on a
//! private network, a second namespace routes and masquerades it (nftables), Kamailio and
//! coturn (STUN) run in a third on the outside. What the registrar saw in each REGISTER's
//! Contact (its script log) and the bindings it keeps (`ul.dump`) show which address the
//! softphone advertised; a call to a softphone outside shows audio both ways through the NAT.
//! Needs root for `ip netns` and nftables: skips loudly without them, fails under `CI=true`.

use std::time::Duration;

/// Long enough for the engine's 2 s route poll, the probe and the REGISTER round trip.
const MOVE_WAIT: Duration = Duration::from_secs(20);

/// Time for a wrong re-REGISTER (after the first 200) to show before the bindings are read.
const SETTLE: Duration = Duration::from_secs(2);

/// How long the call through the NAT carries audio.
const TALK: Duration = Duration::from_secs(4);

/// The tone the softphone outside plays (the one behind the NAT plays [`CLI_TONE_HZ`]).
const OUTSIDE_TONE_HZ: f64 = 1000.0;

use webphone_interop::coturn::Coturn;
use webphone_interop::flows::{expect_connected, WAIT};
use webphone_interop::netns::{NatKind, NatNet, NatSide};
use webphone_interop::util::wait_for;
use webphone_interop::{
    assert_tone, require_tools, serial, write_tone, Cli, Kamailio, KamailioOpts, Params, TestDir,
    Transport, CLI_TONE_HZ, KAMAILIO, KAMCMD,
};

/// The softphone behind `kind`, registered as 1001 with `params` (STUN server and
/// `use_*` values) set; returns what its test needs to look at, holding the test lock.
struct Behind {
    net: NatNet,
    k: Kamailio,
    _coturn: Coturn,
    cli: Cli,
    /// What the softphone behind the NAT played (a 440 Hz tone) and recorded.
    rec: std::path::PathBuf,
    dir: TestDir,
    /// Last: released after everything else is stopped.
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn behind_nat(name: &str, kind: NatKind, params: &[(&str, &str)]) -> Option<Behind> {
    let serial = serial();
    if !require_tools(
        name,
        &[KAMAILIO, KAMCMD, webphone_interop::coturn::TURNSERVER],
    ) {
        return None;
    }
    let net = NatNet::create(name, kind)?;
    let dir = TestDir::new(name);
    let k = Kamailio::start_in_netns(
        dir.path(),
        KamailioOpts::default(),
        net.wrapper(NatSide::Srv),
        &net.srv_ip(),
        None,
    );
    let coturn = Coturn::start_in(dir.path(), &net.wrapper(NatSide::Srv), &net.srv_ip());
    let (mut p, rec) = Params::account(&k, "1001", Transport::Udp)
        .set("stunserveraddress", coturn.addr())
        .with_file_audio(&dir);
    for (name, value) in params {
        p = p.set(name, value);
    }
    let cli = net.start_registered(NatSide::Ua, dir.path(), &p);
    Some(Behind {
        net,
        k,
        _coturn: coturn,
        cli,
        rec,
        dir,
        _serial: serial,
    })
}

impl Behind {
    /// Waits until the registrar's bindings of 1001 are exactly one, containing `needle`.
    fn wait_binding(&self, needle: &str) -> String {
        wait_for(WAIT, || {
            let c = self.k.contacts("1001");
            (c.len() == 1 && c[0].contains(needle)).then(|| c[0].clone())
        })
        .unwrap_or_else(|| {
            panic!(
                "1001 is not bound at {needle} alone; ul.dump:\n{}\nREGISTER Contacts: {:?}",
                self.k.ul_dump(),
                self.k.register_contacts("1001")
            )
        })
    }

    /// Waits until `needle` is the only binding and checks that every REGISTER named it
    /// (after `settle`, for a wrong re-REGISTER to show).
    fn assert_always_bound_at(&self, needle: &str, settle: Duration) {
        std::thread::sleep(settle);
        self.wait_binding(needle);
        let contacts = self.k.register_contacts("1001");
        assert!(!contacts.is_empty());
        assert!(
            contacts.iter().all(|c| c.contains(needle)),
            "every REGISTER names {needle}: {contacts:?}"
        );
    }

    fn stop(mut self) {
        assert_eq!(self.cli.api("isregistered", WAIT).as_deref(), Ok("true"));
        self.k.assert_running();
        self.cli.quit();
    }
}

#[test]
fn fast_stun_2_registers_the_nat_address_from_the_first_register() {
    let Some(b) = behind_nat(
        "fast_stun_2",
        NatKind::KeepsPorts,
        &[("use_fast_stun", "2"), ("use_rport", "0")],
    ) else {
        return;
    };
    // Every REGISTER, the first too, names the NAT's address.
    b.assert_always_bound_at(&format!("@{}:", b.net.public_ip()), Duration::ZERO);
    b.stop();
}

#[test]
fn fast_stun_1_uses_the_nat_address_once_the_registrar_confirms_it() {
    // use_rport 0: the registrar's view alone would not change the Contact; it confirms
    // the STUN answer (a NAT that keeps one mapping for every destination).
    let Some(b) = behind_nat(
        "fast_stun_1_confirmed",
        NatKind::KeepsPorts,
        &[("use_fast_stun", "1"), ("use_rport", "0")],
    ) else {
        return;
    };
    let public = format!("@{}:", b.net.public_ip());
    b.wait_binding(&public);
    let contacts = b.k.register_contacts("1001");
    let private = format!("@{}:", b.net.ua_ip());
    assert!(
        contacts.first().is_some_and(|c| c.contains(&private)),
        "the first REGISTER names our own address: {contacts:?}"
    );
    assert!(
        contacts.last().is_some_and(|c| c.contains(&public)),
        "{contacts:?}"
    );
    b.stop();
}

#[test]
fn nat_that_maps_each_destination_apart_keeps_the_stun_address_out() {
    // A new port for every destination: the STUN server and the registrar see different
    // ports, so the STUN answer is not confirmed and our own address stays (use_rport 0).
    let Some(b) = behind_nat(
        "fast_stun_1_port_per_destination",
        NatKind::PortPerDestination,
        &[("use_fast_stun", "1"), ("use_rport", "0")],
    ) else {
        return;
    };
    // The confirmation is decided on the first 200: give a wrong re-REGISTER time to show.
    b.assert_always_bound_at(&format!("@{}:", b.net.ua_ip()), SETTLE);
    b.stop();
}

#[test]
fn use_rport_1_registers_what_the_registrar_saw_behind_any_nat() {
    // Without a confirmed STUN answer, use_rport 1 takes the registrar's view: right for
    // the registrar even when each destination gets another port.
    let Some(b) = behind_nat(
        "use_rport_1_port_per_destination",
        NatKind::PortPerDestination,
        &[("use_fast_stun", "1"), ("use_rport", "1")],
    ) else {
        return;
    };
    let public = format!("@{}:", b.net.public_ip());
    b.wait_binding(&public);
    b.stop();
}

#[test]
fn fast_stun_minus_1_keeps_the_private_address_whatever_rport_says() {
    let Some(b) = behind_nat(
        "fast_stun_minus_1",
        NatKind::KeepsPorts,
        &[("use_fast_stun", "-1"), ("use_rport", "1")],
    ) else {
        return;
    };
    b.assert_always_bound_at(&format!("@{}:", b.net.ua_ip()), SETTLE);
    b.stop();
}

#[test]
fn moving_behind_the_nat_registers_the_new_mapping_from_a_new_probe() {
    // use_rport 0: only a STUN probe of the new socket can tell the new public address.
    let Some(mut b) = behind_nat(
        "fast_stun_2_network_change",
        NatKind::KeepsPorts,
        &[("use_fast_stun", "2"), ("use_rport", "0")],
    ) else {
        return;
    };
    let public = format!("@{}:", b.net.public_ip());
    let first = b.wait_binding(&public);
    b.net.move_ua(2, 3);
    // The NAT still holds the old address's mapping of that port, so the new source gets
    // another public port: the binding must change to it, and be the only one.
    let moved = wait_for(MOVE_WAIT, || {
        let c = b.k.contacts("1001");
        (c.len() == 1 && c[0].contains(&public) && c[0] != first).then(|| c[0].clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "no new NAT binding after the move (before: {first}); ul.dump:\n{}\nREGISTER Contacts: {:?}",
            b.k.ul_dump(),
            b.k.register_contacts("1001")
        )
    });
    println!("binding before the move {first}, after {moved}");
    b.cli.expect(
        |l| l.contains("network: local address changed; SIP now on"),
        WAIT,
    );
    b.stop();
}

#[test]
fn call_from_behind_the_nat_has_audio_both_ways() {
    // The defaults (use_fast_stun 1, use_rport 1, ICE with the STUN server): a softphone
    // outside, registered to the same Kamailio, answers; each side records the other's tone.
    let Some(mut b) = behind_nat("nat_call", NatKind::KeepsPorts, &[]) else {
        return;
    };
    let outside_dir = b.dir.subdir("outside");
    let src = outside_dir.join("tone1000.wav");
    write_tone(&src, OUTSIDE_TONE_HZ, 8000, 30.0, 0.5);
    let outside_rec = outside_dir.join("received.wav");
    let p = Params::account(&b.k, "1002", Transport::Udp)
        .set("audiodevicein", format!("file:{}", src.display()))
        .set("audiodeviceout", format!("file:{}", outside_rec.display()))
        .set("autoaccept", "true");
    let mut outside = b.net.start_registered(NatSide::Srv, &outside_dir, &p);

    b.cli
        .api_ok(&format!("call sip:1002@{}:{}", b.net.srv_ip(), b.k.port()));
    expect_connected(&mut b.cli);
    expect_connected(&mut outside);
    // The offer named the NAT's side of our media socket, learned from the STUN server (ICE
    // server-reflexive candidate, RFC 8445 §5.1.1.2), not only our private address.
    // (The received INVITE as the outside softphone logs it at loglevel 5, one line.)
    let public = b.net.public_ip();
    let offer =
        outside.seen(|l| l.starts_with("LOG,EVENT,SIP << ") && l.contains("INVITE sip:1002@"));
    assert!(
        offer.iter().any(|l| l
            .split(" | ")
            .any(|f| f.contains("typ srflx") && f.contains(&public))),
        "no server-reflexive candidate at {public} in the offer: {offer:?}"
    );
    std::thread::sleep(TALK);
    b.cli.api_ok("hangup");
    outside.expect(|l| l.starts_with("CDR,"), WAIT);
    b.cli.expect(|l| l.starts_with("CDR,"), WAIT);
    let inside_heard = assert_tone(&b.rec, OUTSIDE_TONE_HZ, -30.0, "behind the NAT");
    let outside_heard = assert_tone(&outside_rec, CLI_TONE_HZ, -30.0, "outside");
    println!("behind the NAT heard {inside_heard:?}; outside heard {outside_heard:?}");
    outside.quit();
    b.stop();
}
