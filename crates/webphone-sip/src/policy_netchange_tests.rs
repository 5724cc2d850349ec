//! Network change in the policy: re-registration with the new Contact, with back-off.

use super::tests::register_contact;
use super::*;
use crate::target::HostPort;

fn acc() -> AccountConfig {
    AccountConfig {
        server: Some("10.0.0.1:5060".into()),
        username: "1001".into(),
        password: "pass1001".into(),
        register_expires: 600,
        ..Default::default()
    }
}

fn outcome(code: u16, received: Option<HostPort>) -> RegisterOutcome {
    RegisterOutcome {
        code,
        reason: if code == 200 { "OK" } else { "Request Timeout" }.into(),
        expires: (code == 200).then_some(600),
        min_expires: None,
        received,
        contact: HostPort::new("10.0.0.2", 5060),
        reliable: false,
        websocket: false,
        allow_events: None,
        server_params: Vec::new(),
    }
}

fn reg_events(actions: &[Action]) -> Vec<RegistrationState> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(SipEvent::Registration(st)) => Some(st.clone()),
            _ => None,
        })
        .collect()
}

fn done(gen: u64, o: RegisterOutcome) -> Input {
    Input::Stack(StackEvent::RegisterDone { gen, outcome: o })
}

fn changed() -> Input {
    Input::Command(Command::NetworkChanged(None))
}

/// Registered behind a NAT: the Contact was corrected from `received`/`rport`.
fn registered_behind_nat(p: &mut UaPolicy, t0: Instant) {
    p.handle(Input::Command(Command::SetAccount(acc())), t0);
    let a = p.handle(Input::Command(Command::Register), t0);
    let (gen, _) = register_contact(&a).expect("REGISTER");
    let a = p.handle(
        done(
            gen,
            outcome(200, Some(HostPort::new("198.51.100.7", 40000))),
        ),
        t0,
    );
    assert!(a.contains(&Action::SetContact(Some(HostPort::new(
        "198.51.100.7",
        40000
    )))));
    let (gen, contact) = register_contact(&a).expect("REGISTER with the corrected Contact");
    assert_eq!(contact, Some(HostPort::new("198.51.100.7", 40000)));
    let mut o = outcome(200, Some(HostPort::new("198.51.100.7", 40000)));
    o.contact = HostPort::new("198.51.100.7", 40000);
    let a = p.handle(done(gen, o), t0);
    assert_eq!(
        reg_events(&a),
        vec![RegistrationState::Registered { expires: 600 }]
    );
}

#[test]
fn network_change_while_registered_registers_again_at_once_with_the_new_local_contact() {
    let t0 = Instant::now();
    let mut p = UaPolicy::new(Transport::Udp);
    registered_behind_nat(&mut p, t0);

    let t1 = t0 + Duration::from_secs(30);
    let a = p.handle(changed(), t1);
    // The NAT mapping of the old address means nothing now: back to our own address, and
    // the binding of the old mapping goes.
    assert!(a.contains(&Action::SetContact(None)));
    assert!(a.contains(&Action::ReleaseBinding(HostPort::new(
        "198.51.100.7",
        40000
    ))));
    let (gen, contact) = register_contact(&a).expect("immediate re-REGISTER");
    assert_eq!(contact, None, "Contact is the (new) local address");
    assert!(
        reg_events(&a).is_empty(),
        "no Registering flicker while the old binding still holds"
    );
    // The answer is announced again: the application learns the new binding is in place.
    let a = p.handle(done(gen, outcome(200, None)), t1);
    assert_eq!(
        reg_events(&a),
        vec![RegistrationState::Registered { expires: 600 }]
    );
}

#[test]
fn network_change_registers_the_new_sockets_stun_address() {
    // use_fast_stun 2: the new socket was probed; its mapping is the Contact at once.
    let t0 = Instant::now();
    let mut p = UaPolicy::new(Transport::Udp);
    let old = HostPort::new("203.0.113.7", 40000);
    p.handle(
        Input::Command(Command::StunMapped(StunUse::Now(old.clone()))),
        t0,
    );
    p.handle(Input::Command(Command::SetAccount(acc())), t0);
    let a = p.handle(Input::Command(Command::Register), t0);
    assert_eq!(register_contact(&a).and_then(|r| r.1), Some(old));
    let new = HostPort::new("203.0.113.7", 41000);
    let a = p.handle(
        Input::Command(Command::NetworkChanged(Some(StunUse::Now(new.clone())))),
        t0,
    );
    assert_eq!(
        a.iter()
            .filter(|x| matches!(x, Action::SetContact(_)))
            .collect::<Vec<_>>(),
        vec![
            &Action::SetContact(None),
            &Action::SetContact(Some(new.clone()))
        ]
    );
    assert_eq!(register_contact(&a).and_then(|r| r.1), Some(new));
    // No answer from the STUN server this time: our own address, until the registrar says.
    let a = p.handle(changed(), t0);
    assert_eq!(register_contact(&a).map(|r| r.1), Some(None));
}

#[test]
fn network_change_while_waiting_to_retry_retries_now() {
    let t0 = Instant::now();
    let mut p = UaPolicy::new(Transport::Udp);
    p.handle(Input::Command(Command::SetAccount(acc())), t0);
    let a = p.handle(Input::Command(Command::Register), t0);
    let (gen, _) = register_contact(&a).expect("REGISTER");
    p.handle(done(gen, outcome(408, None)), t0);
    assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(5)));

    let t1 = t0 + Duration::from_secs(1);
    let a = p.handle(changed(), t1);
    assert!(
        register_contact(&a).is_some(),
        "retried before the back-off ended"
    );
    assert_eq!(reg_events(&a), vec![RegistrationState::Registering]);
}

#[test]
fn failures_after_a_network_change_back_off_doubling_up_to_the_cap() {
    let t0 = Instant::now();
    let mut p = UaPolicy::new(Transport::Udp);
    registered_behind_nat(&mut p, t0);
    let mut now = t0 + Duration::from_secs(10);
    let a = p.handle(changed(), now);
    let (mut gen, _) = register_contact(&a).expect("re-REGISTER");
    let mut delays = Vec::new();
    for _ in 0..9 {
        let a = p.handle(done(gen, outcome(408, None)), now);
        assert!(matches!(
            reg_events(&a).as_slice(),
            [RegistrationState::Failed { code: 408, .. }]
        ));
        let next = p.next_deadline().expect("a retry is scheduled");
        delays.push(next.duration_since(now).as_secs());
        now = next;
        let a = p.handle(Input::Tick, now);
        gen = register_contact(&a).expect("retry").0;
    }
    assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
    // The registrar is back: registered, and the back-off starts over.
    let a = p.handle(done(gen, outcome(200, None)), now);
    assert_eq!(
        reg_events(&a),
        vec![RegistrationState::Registered { expires: 600 }]
    );
    assert_eq!(p.failures, 0);
}

#[test]
fn the_outcome_of_a_register_sent_before_the_change_is_stale() {
    let t0 = Instant::now();
    let mut p = UaPolicy::new(Transport::Udp);
    p.handle(Input::Command(Command::SetAccount(acc())), t0);
    let a = p.handle(Input::Command(Command::Register), t0);
    let (old_gen, _) = register_contact(&a).expect("REGISTER");
    let a = p.handle(changed(), t0);
    let (gen, _) = register_contact(&a).expect("REGISTER from the new address");
    assert_ne!(gen, old_gen);
    // The old one times out: ignored, no failure reported.
    assert!(p.handle(done(old_gen, outcome(408, None)), t0).is_empty());
    let a = p.handle(done(gen, outcome(200, None)), t0);
    assert_eq!(
        reg_events(&a),
        vec![RegistrationState::Registered { expires: 600 }]
    );
}

#[test]
fn network_change_without_registration_or_while_shutting_down_sends_nothing() {
    let t0 = Instant::now();
    let mut p = UaPolicy::new(Transport::Tcp);
    p.handle(Input::Command(Command::SetAccount(acc())), t0);
    assert!(register_contact(&p.handle(changed(), t0)).is_none());

    let mut p = UaPolicy::new(Transport::Udp);
    registered_behind_nat(&mut p, t0);
    p.handle(Input::Command(Command::Shutdown), t0);
    assert!(register_contact(&p.handle(changed(), t0)).is_none());
}
