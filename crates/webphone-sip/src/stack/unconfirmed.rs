//! In-dialog requests that arrive before the dialog they belong to is confirmed.
//!
//! rsipstack hands an in-dialog request to a server INVITE dialog only once that dialog is
//! confirmed (our 2xx acknowledged); before that it drops everything but ACK, BYE, CANCEL
//! and PRACK without an answer. On a fast path that is a real race, not a corner case: a
//! peer that sends its ACK and at once a re-INVITE (hold before a transfer, a codec change)
//! can have the re-INVITE processed before the ACK, and its sender then waits for Timer B
//! (32 s) for an answer that never comes. Here such a request waits for the ACK for up to
//! [`ACK_WAIT`] and is then handled; if the ACK does not come in that time, or the INVITE
//! it would follow is not even answered yet, it gets the answer RFC 3261 asks for:
//!
//! - a re-INVITE or UPDATE while our 2xx is unacknowledged: 491 Request Pending (RFC 3261
//!   §14.2, RFC 3311 §5.2: an offer/answer exchange may still be open; the sender retries
//!   after a random delay, §14.1);
//! - a second INVITE before we sent the final response to the first one: 500 with a
//!   `Retry-After` (RFC 3261 §14.2);
//! - any other request (REFER, INFO, NOTIFY, MESSAGE, OPTIONS) still unacknowledged after
//!   the wait: 500 with a `Retry-After` rather than silence.
//!
//! The same silence hits a request that arrives while an in-dialog MESSAGE is being
//! answered (rsipstack keeps the dialog out of its confirmed state meanwhile): it waits for
//! that answer the same way.

use std::time::Duration;

use rsipstack::dialog::dialog::DialogState;
use rsipstack::sip::Method;

/// How long an in-dialog request waits for the ACK of our 2xx (half of T2: an ACK lost
/// with our first 2xx comes back after its retransmissions at 0.5 s and 1.5 s).
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(2);

/// How often the dialog state is looked at while waiting.
pub(crate) const POLL: Duration = Duration::from_millis(5);

/// What to do with an in-dialog request given the dialog's state now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Hand it to the dialog.
    Handle,
    /// Our 2xx is not acknowledged yet (or a MESSAGE is being answered): look again shortly.
    Wait,
    /// Answer it with this status (and a `Retry-After` when `retry_after`).
    Refuse { code: u16, retry_after: bool },
}

/// The rule of the module documentation. `waited_out`: [`ACK_WAIT`] has passed.
pub(crate) fn readiness(state: &DialogState, method: Method, waited_out: bool) -> Readiness {
    // Requests rsipstack itself takes in every state.
    if matches!(
        method,
        Method::Ack | Method::Bye | Method::Cancel | Method::PRack
    ) {
        return Readiness::Handle;
    }
    match state {
        DialogState::WaitAck(..) | DialogState::Message(..) if !waited_out => Readiness::Wait,
        DialogState::Message(..) => Readiness::Refuse {
            code: 500,
            retry_after: true,
        },
        DialogState::WaitAck(..) => match method {
            Method::Invite | Method::Update => Readiness::Refuse {
                code: 491,
                retry_after: false,
            },
            _ => Readiness::Refuse {
                code: 500,
                retry_after: true,
            },
        },
        DialogState::Calling(_) | DialogState::Trying(_) | DialogState::Early(..)
            if method == Method::Invite =>
        {
            Readiness::Refuse {
                code: 500,
                retry_after: true,
            }
        }
        _ => Readiness::Handle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::dialog::DialogId;
    use rsipstack::sip::Response;

    fn id() -> DialogId {
        DialogId {
            call_id: "c".into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
        }
    }

    #[test]
    fn reinvite_right_after_our_2xx_waits_for_the_ack() {
        let st = DialogState::WaitAck(id(), Response::default());
        assert_eq!(readiness(&st, Method::Invite, false), Readiness::Wait);
        assert_eq!(readiness(&st, Method::Refer, false), Readiness::Wait);
        let confirmed = DialogState::Confirmed(id(), Response::default());
        assert_eq!(
            readiness(&confirmed, Method::Notify, false),
            Readiness::Handle
        );
        assert_eq!(
            readiness(&confirmed, Method::Invite, false),
            Readiness::Handle
        );
    }

    #[test]
    fn reinvite_still_unacknowledged_after_the_wait_is_491() {
        let st = DialogState::WaitAck(id(), Response::default());
        assert_eq!(
            readiness(&st, Method::Invite, true),
            Readiness::Refuse {
                code: 491,
                retry_after: false
            }
        );
        assert_eq!(
            readiness(&st, Method::Update, true),
            Readiness::Refuse {
                code: 491,
                retry_after: false
            }
        );
        assert_eq!(
            readiness(&st, Method::Info, true),
            Readiness::Refuse {
                code: 500,
                retry_after: true
            }
        );
    }

    #[test]
    fn second_invite_before_our_final_response_is_500_with_retry_after() {
        for st in [
            DialogState::Trying(id()),
            DialogState::Early(id(), Response::default()),
        ] {
            assert_eq!(
                readiness(&st, Method::Invite, false),
                Readiness::Refuse {
                    code: 500,
                    retry_after: true
                }
            );
            // PRACK and UPDATE in an early dialog stay with rsipstack.
            assert_eq!(readiness(&st, Method::PRack, false), Readiness::Handle);
            assert_eq!(readiness(&st, Method::Update, false), Readiness::Handle);
        }
    }

    #[test]
    fn request_during_an_in_dialog_message_waits_for_its_answer() {
        let (handle, _rx) = rsipstack::dialog::dialog::TransactionHandle::new();
        let text = "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKm\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: q\r\nCSeq: 3 MESSAGE\r\nContent-Length: 0\r\n\r\n";
        let Ok(rsipstack::sip::SipMessage::Request(req)) =
            rsipstack::sip::SipMessage::try_from(text)
        else {
            panic!("a valid MESSAGE");
        };
        let st = DialogState::Message(id(), req, handle);
        assert_eq!(readiness(&st, Method::Notify, false), Readiness::Wait);
        assert_eq!(
            readiness(&st, Method::Notify, true),
            Readiness::Refuse {
                code: 500,
                retry_after: true
            }
        );
    }

    #[test]
    fn bye_and_cancel_are_never_held_back() {
        let st = DialogState::WaitAck(id(), Response::default());
        for m in [Method::Bye, Method::Cancel, Method::Ack, Method::PRack] {
            assert_eq!(readiness(&st, m, false), Readiness::Handle);
        }
    }
}
