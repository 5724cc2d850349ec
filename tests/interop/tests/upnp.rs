//! `upnpnat` behind a real UPnP router: the softphone runs on a private network behind a
//! namespace that masquerades (nftables) and runs miniupnpd as its Internet Gateway Device;
//! Kamailio and a second softphone are outside. What the router forwards (miniupnpd's
//! nftables rules), what the registrar bound, and what the peer outside received in SDP
//! show that the softphone asked for the forwards, advertised them, and gave them back.
//! The NAT gives every destination another port, so a call that reaches the softphone at
//! its registered address can only have come through the forward. Needs root for
//! `ip netns` and nftables, and miniupnpd: skips loudly without them, fails under `CI=true`.

use std::time::Duration;

use webphone_interop::flows::{expect_connected, WAIT};
use webphone_interop::miniupnpd::{Forward, Miniupnpd, MINIUPNPD};
use webphone_interop::netns::{NatKind, NatNet, NatSide, Outside};
use webphone_interop::util::wait_for;
use webphone_interop::{
    assert_tone, require_tools, serial, write_tone, Cli, Kamailio, KamailioOpts, Params, TestDir,
    Transport, CLI_TONE_HZ, KAMAILIO, KAMCMD,
};

/// Long enough for the engine's 2 s route poll, the new forward and the REGISTER round trip.
const MOVE_WAIT: Duration = Duration::from_secs(20);

/// How long the call carries audio.
const TALK: Duration = Duration::from_secs(4);

/// The tone the softphone outside plays.
const OUTSIDE_TONE_HZ: f64 = 1000.0;

/// The router, the registrar and the softphone 1001 behind the router, registered with
/// `params` on top of STUN and rport off (only UPnP can tell it its public address).
struct Setup {
    net: NatNet,
    upnp: Miniupnpd,
    k: Kamailio,
    cli: Cli,
    rec: std::path::PathBuf,
    dir: TestDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn behind_upnp_router(name: &str, kind: NatKind, params: &[(&str, &str)]) -> Option<Setup> {
    let serial = serial();
    if !require_tools(name, &[KAMAILIO, KAMCMD, MINIUPNPD]) {
        return None;
    }
    let net = NatNet::create_with(name, kind, Outside::Public)?;
    let dir = TestDir::new(name);
    let upnp = Miniupnpd::start(dir.path(), &net);
    let k = Kamailio::start_in_netns(
        dir.path(),
        KamailioOpts::default(),
        net.wrapper(NatSide::Srv),
        &net.srv_ip(),
        None,
    );
    let (mut p, rec) = Params::account(&k, "1001", Transport::Udp)
        .set("use_fast_stun", "0")
        .set("use_rport", "0")
        .set("autoaccept", "true")
        .with_file_audio(&dir);
    for (name, value) in params {
        p = p.set(name, value);
    }
    let cli = net.start_registered(NatSide::Ua, dir.path(), &p);
    Some(Setup {
        net,
        upnp,
        k,
        cli,
        rec,
        dir,
        _serial: serial,
    })
}

impl Setup {
    /// The forwards to the softphone's address, once `pred` holds for them.
    fn wait_forwards(&self, what: &str, pred: impl Fn(&[Forward]) -> bool) -> Vec<Forward> {
        let ours = format!("{}:", self.net.ua_ip());
        wait_for(WAIT, || {
            let f: Vec<Forward> = self
                .upnp
                .forwards()
                .into_iter()
                .filter(|f| f.internal.starts_with(&ours))
                .collect();
            pred(&f).then_some(f)
        })
        .unwrap_or_else(|| {
            panic!(
                "router forwards: expected {what}, have {:?}; miniupnpd log:\n{}",
                self.upnp.forwards(),
                self.upnp.log()
            )
        })
    }
}

#[test]
fn upnp_router_forwards_the_sip_and_rtp_ports_for_as_long_as_they_are_used() {
    let Some(mut s) = behind_upnp_router("upnp_forwards", NatKind::PortPerDestination, &[]) else {
        return;
    };
    let public = s.net.public_ip();
    // One forward: the SIP socket's.
    let sip_fwd = s.wait_forwards("the SIP port", |f| f.len() == 1)[0].clone();
    // Every REGISTER, the first too, names the forwarded address.
    let contact = format!("@{public}:{}", sip_fwd.external_port);
    let bound = wait_for(WAIT, || {
        let c = s.k.contacts("1001");
        (c.len() == 1 && c[0].contains(&contact)).then(|| c[0].clone())
    })
    .unwrap_or_else(|| panic!("1001 not bound at {contact}: {}", s.k.ul_dump()));
    let contacts = s.k.register_contacts("1001");
    assert!(
        !contacts.is_empty() && contacts.iter().all(|c| c.contains(&contact)),
        "every REGISTER names {contact}: {contacts:?}"
    );
    println!("router forward {sip_fwd:?}; bound {bound}");

    // A softphone outside calls 1001 through the registrar, which sends the INVITE to the
    // registered address: with a new port per destination at the NAT, only the forward
    // leads there.
    let outside_dir = s.dir.subdir("outside");
    let src = outside_dir.join("tone1000.wav");
    write_tone(&src, OUTSIDE_TONE_HZ, 8000, 30.0, 0.5);
    let outside_rec = outside_dir.join("received.wav");
    let p = Params::account(&s.k, "1002", Transport::Udp)
        .set("audiodevicein", format!("file:{}", src.display()))
        .set("audiodeviceout", format!("file:{}", outside_rec.display()));
    let mut outside = s.net.start_registered(NatSide::Srv, &outside_dir, &p);
    outside.api_ok("call 1001");
    expect_connected(&mut s.cli);
    expect_connected(&mut outside);
    // The answer's SDP names the router's address and the forward of the RTP socket.
    let fwds = s.wait_forwards("the SIP and an RTP port", |f| f.len() == 2);
    let rtp_fwd = fwds
        .iter()
        .find(|f| *f != &sip_fwd)
        .expect("RTP forward")
        .clone();
    let answers = outside.seen(|l| {
        l.starts_with("LOG,EVENT,SIP << ") && l.contains("SIP/2.0 200") && l.contains("m=audio")
    });
    let (c_line, m_line) = (
        format!("c=IN IP4 {public}"),
        format!("m=audio {} ", rtp_fwd.external_port),
    );
    assert!(
        answers
            .iter()
            .any(|l| l.contains(&c_line) && l.contains(&m_line)),
        "no answer with {c_line:?} and {m_line:?}: {answers:?}"
    );
    std::thread::sleep(TALK);
    outside.api_ok("hangup");
    outside.expect(|l| l.starts_with("CDR,"), WAIT);
    s.cli.expect(|l| l.starts_with("CDR,"), WAIT);
    let inside_heard = assert_tone(&s.rec, OUTSIDE_TONE_HZ, -30.0, "behind the router");
    let outside_heard = assert_tone(&outside_rec, CLI_TONE_HZ, -30.0, "outside");
    println!("behind the router heard {inside_heard:?}; outside heard {outside_heard:?}");
    // The call's forward goes with the call, the SIP forward with the softphone.
    s.wait_forwards("the SIP port only", |f| f == [sip_fwd.clone()]);
    outside.quit();
    s.upnp.assert_running();
    s.cli.quit();
    s.wait_forwards("no forward", |f| f.is_empty());
}

#[test]
fn upnpnat_0_leaves_the_router_alone() {
    let Some(mut s) = behind_upnp_router("upnpnat_0", NatKind::KeepsPorts, &[("upnpnat", "0")])
    else {
        return;
    };
    let private = format!("@{}:", s.net.ua_ip());
    let contacts = s.k.register_contacts("1001");
    assert!(
        !contacts.is_empty() && contacts.iter().all(|c| c.contains(&private)),
        "every REGISTER names our own address: {contacts:?}"
    );
    // Nothing was asked: no request in the router's log, no forward.
    std::thread::sleep(Duration::from_secs(2));
    assert!(s.upnp.forwards().is_empty(), "{:?}", s.upnp.forwards());
    assert!(
        !s.upnp.log().contains("HTTP REQUEST"),
        "the router was asked something:\n{}",
        s.upnp.log()
    );
    assert_eq!(s.cli.api("isregistered", WAIT).as_deref(), Ok("true"));
    s.cli.quit();
}

#[test]
fn moving_behind_the_router_moves_the_forward_and_the_binding() {
    let Some(mut s) = behind_upnp_router("upnp_move", NatKind::PortPerDestination, &[]) else {
        return;
    };
    let before = s.wait_forwards("the SIP port", |f| f.len() == 1)[0].clone();
    s.net.move_ua(2, 3);
    // The new address gets its own forward, and the registrar's only binding is that
    // forward (the old one removed with expires=0). The old forward stays until its lease
    // ends: a router in secure mode (miniupnpd's default, like most) refuses to delete it
    // for a client at another address (UPnP error 606), and it is no longer renewed.
    let new_ip = format!("{}:", s.net.private_ip(3));
    let after = wait_for(MOVE_WAIT, || {
        let f = s.upnp.forwards();
        f.into_iter().find(|f| f.internal.starts_with(&new_ip))
    })
    .unwrap_or_else(|| {
        panic!(
            "no forward to {new_ip} after the move (before: {before:?}), have {:?}; log:\n{}",
            s.upnp.forwards(),
            s.upnp.log()
        )
    });
    let contact = format!("@{}:{}", s.net.public_ip(), after.external_port);
    wait_for(MOVE_WAIT, || {
        let c = s.k.contacts("1001");
        (c.len() == 1 && c[0].contains(&contact)).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "1001 not bound at {contact} alone: {}\nREGISTER Contacts: {:?}",
            s.k.ul_dump(),
            s.k.register_contacts("1001")
        )
    });
    println!("forward before the move {before:?}, after {after:?}");
    assert_eq!(s.cli.api("isregistered", WAIT).as_deref(), Ok("true"));
    s.cli.quit();
    wait_for(WAIT, || {
        (!s.upnp
            .forwards()
            .iter()
            .any(|f| f.internal.starts_with(&new_ip)))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("the forward to {new_ip} stayed: {:?}", s.upnp.forwards()));
}
