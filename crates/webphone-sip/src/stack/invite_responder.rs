//! One channel for the responses every incoming call's dialog gives its INVITE, routed to
//! the live server transaction.
//!
//! rsipstack's server dialog answers its INVITE (`ringing`, `accept`, `reject`) by sending
//! `TransactionEvent::Respond` into the INVITE transaction's own event channel, through a
//! clone of that channel's sender that the dialog keeps for its whole life. tokio's
//! unbounded channel allocates a block of 32 events when it is created, and an event
//! carries a whole SIP message: the INVITE transaction ends with the ACK (RFC 6026 §7.1),
//! but its channel (about 11 KiB) stayed allocated as long as the call lasted, because the
//! dialog's sender kept it open.
//!
//! Here the dialog is given the sender of one shared channel instead. A router task takes
//! each event and hands it to the transaction it is for, found by its key in the
//! endpoint's table of live transactions: a response carries the Via branch, CSeq and
//! tags of the request it answers (RFC 3261 §8.2.6.2, §17.2.3), so its key is the
//! INVITE's. When the transaction has ended, the event is dropped, as rsipstack does when
//! the transaction's own channel is closed. Events keep their order (one channel in, one
//! router).

use std::sync::{Arc, Weak};

use rsipstack::dialog::dialog::DialogStateSender;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{SipMessage, Uri};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::{Transaction, TransactionEvent, TransactionEventSender};
use tokio::sync::mpsc;
use tracing::debug;

/// The shared sender (what the dialogs hold); the router ends when every sender is gone.
#[derive(Clone)]
pub(crate) struct InviteResponder {
    tx: TransactionEventSender,
}

impl InviteResponder {
    /// The shared channel and its router task, for `endpoint`'s transactions (held weakly:
    /// the router does not keep a stopped endpoint alive).
    pub(crate) fn start(endpoint: &Arc<EndpointInner>) -> InviteResponder {
        let (tx, mut rx) = mpsc::unbounded_channel::<TransactionEvent>();
        let endpoint: Weak<EndpointInner> = Arc::downgrade(endpoint);
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let Some(endpoint) = endpoint.upgrade() else {
                    break;
                };
                let Some(key) = key_of(&event) else {
                    debug!("transaction event without a transaction key: dropped");
                    continue;
                };
                match endpoint.transactions.get(&key) {
                    // A transaction that ended in between closes its channel: the send
                    // fails and the event is dropped, as it would be without the router.
                    Some(transaction) => {
                        let _ = transaction.send(event);
                    }
                    None => debug!(%key, "response for an ended INVITE transaction: dropped"),
                }
            }
        });
        InviteResponder { tx }
    }

    /// The server dialog of `tx`, made by `layer` with the shared sender in place of the
    /// transaction's own (the dialog keeps a clone of the sender it is made with); the
    /// transaction gets its own sender back afterwards.
    pub(crate) fn server_dialog(
        &self,
        layer: &DialogLayer,
        tx: &mut Transaction,
        states: DialogStateSender,
        contact: Uri,
    ) -> Result<InviteDialog, String> {
        let own = std::mem::replace(&mut tx.tu_sender, self.tx.clone());
        let created = layer.get_or_create_server_invite(tx, states, None, Some(contact));
        tx.tu_sender = own;
        created.map_err(|e| e.to_string())
    }
}

/// The key of the server transaction an event from a dialog is for: a response's is the
/// request it answers (RFC 3261 §17.2.3). A request (rsipstack's dialog hands on an ACK it
/// was given as its own transaction) keys as its INVITE's only when it shares the branch, as
/// the ACK of a non-2xx does; the endpoint routes the ACK of a 2xx to the INVITE
/// transaction itself, so none reaches a dialog in practice. Timers and terminations are the
/// transactions' own business and never come from a dialog. Pure, for tests.
pub(crate) fn key_of(event: &TransactionEvent) -> Option<TransactionKey> {
    match event {
        TransactionEvent::Respond(resp) => {
            TransactionKey::from_response(resp, TransactionRole::Server).ok()
        }
        TransactionEvent::Received(SipMessage::Request(req), _) => {
            TransactionKey::from_request(req, TransactionRole::Server).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::{Request, Response};

    fn invite() -> Request {
        let text = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-abc;rport\r\n\
            From: <sip:alice@127.0.0.1>;tag=from1\r\n\
            To: <sip:bob@127.0.0.1>\r\n\
            Call-ID: call-1@127.0.0.1\r\n\
            CSeq: 7 INVITE\r\n\
            Contact: <sip:alice@127.0.0.1:5070>\r\n\
            Content-Length: 0\r\n\r\n";
        Request::try_from(text).expect("INVITE parses")
    }

    /// A response to [`invite`] (its Via, tags, Call-ID and CSeq).
    fn response_to_invite(code: u16) -> Response {
        let text = format!(
            "SIP/2.0 {code} X\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-abc;rport=5070;received=127.0.0.1\r\n\
            From: <sip:alice@127.0.0.1>;tag=from1\r\n\
            To: <sip:bob@127.0.0.1>;tag=to9\r\n\
            Call-ID: call-1@127.0.0.1\r\n\
            CSeq: 7 INVITE\r\n\
            Content-Length: 0\r\n\r\n"
        );
        Response::try_from(text.as_str()).expect("response parses")
    }

    #[test]
    fn answer_from_the_dialog_reaches_the_invite_transaction() {
        let req = invite();
        let want = TransactionKey::from_request(&req, TransactionRole::Server).expect("key");
        for code in [180, 183, 200, 486] {
            let ev = TransactionEvent::Respond(response_to_invite(code));
            assert_eq!(key_of(&ev), Some(want.clone()), "{code}");
        }
    }

    #[test]
    fn response_to_another_invite_is_not_this_transactions() {
        let req = invite();
        let want = TransactionKey::from_request(&req, TransactionRole::Server).expect("key");
        let other = Response::try_from(
            "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-other\r\n\
            From: <sip:alice@127.0.0.1>;tag=from1\r\n\
            To: <sip:bob@127.0.0.1>;tag=to9\r\n\
            Call-ID: call-1@127.0.0.1\r\n\
            CSeq: 8 INVITE\r\n\
            Content-Length: 0\r\n\r\n",
        )
        .expect("parses");
        assert_ne!(key_of(&TransactionEvent::Respond(other)), Some(want));
    }

    #[test]
    fn timers_and_terminations_are_not_routed() {
        let key = TransactionKey::from_request(&invite(), TransactionRole::Server).expect("key");
        assert_eq!(key_of(&TransactionEvent::Terminate(key)), None);
    }
}
