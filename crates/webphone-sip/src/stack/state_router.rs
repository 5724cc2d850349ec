//! One rsipstack dialog-state channel for every call, routed to the calls' tasks.
//!
//! rsipstack reports a dialog's progress (`DialogState`: provisional and final responses,
//! in-dialog requests, termination) through a channel the caller provides per dialog.
//! tokio's unbounded channel allocates its first block of 32 slots when it is created, and a
//! `DialogState` carries a whole request or response, so a channel per call cost about
//! 10 KiB of every call's memory before anything was sent. Here all dialogs share one
//! channel; a router task hands each state, boxed, to its call's own small channel. States
//! of one dialog keep their order (one channel in, one router, one channel out).
//!
//! Which call a state belongs to is decided by its dialog's Call-ID and our tag
//! ([`pick`]): the Call-ID is known before the dialog exists (we choose it for our INVITEs;
//! an incoming INVITE carries it), so the route is in place before the first state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_channel::mpsc as queue;
use futures_util::StreamExt;
use rsipstack::dialog::dialog::{DialogState, DialogStateSender};
use rsipstack::dialog::DialogId;
use tokio::sync::mpsc;
use tracing::debug;

use crate::CallKey;

/// The shared channel's sender (for rsipstack) and the routes.
#[derive(Clone)]
pub(crate) struct StateRouter {
    tx: DialogStateSender,
    routes: Arc<Mutex<Routes>>,
}

#[derive(Default)]
struct Routes {
    next: u64,
    by_call_id: HashMap<String, Vec<Route>>,
    /// Each call's route: its Call-ID and route id (to replace it without a search).
    by_call: HashMap<CallKey, (String, u64)>,
}

impl Routes {
    /// Removes route `id` of `call_id`.
    fn remove(&mut self, call_id: &str, id: u64) {
        if let Some(list) = self.by_call_id.get_mut(call_id) {
            list.retain(|r| r.id != id);
            if list.is_empty() {
                self.by_call_id.remove(call_id);
            }
        }
    }
}

struct Route {
    id: u64,
    /// Our tag in the dialog, once known (learned from the first state when not given).
    local_tag: Option<String>,
    tx: queue::UnboundedSender<Box<DialogState>>,
}

/// A call's end of the routing: its states, and its route removed when dropped.
pub(crate) struct StateRx {
    /// A linked list (an allocation per state), not a tokio channel: a tokio channel
    /// takes about 1 KiB per call at creation.
    rx: queue::UnboundedReceiver<Box<DialogState>>,
    routes: Arc<Mutex<Routes>>,
    call: CallKey,
    call_id: String,
    id: u64,
}

impl StateRx {
    pub(crate) async fn recv(&mut self) -> Option<Box<DialogState>> {
        self.rx.next().await
    }
}

impl Drop for StateRx {
    fn drop(&mut self) {
        let mut routes = crate::lock(&self.routes);
        routes.remove(&self.call_id, self.id);
        if routes
            .by_call
            .get(&self.call)
            .is_some_and(|(_, id)| *id == self.id)
        {
            routes.by_call.remove(&self.call);
        }
    }
}

impl StateRouter {
    /// The shared channel and its router task (it ends when every sender is gone).
    pub(crate) fn start() -> StateRouter {
        let (tx, mut rx) = mpsc::unbounded_channel::<DialogState>();
        let routes: Arc<Mutex<Routes>> = Arc::default();
        let table = routes.clone();
        tokio::spawn(async move {
            while let Some(state) = rx.recv().await {
                let id = dialog_id(&state);
                let mut routes = crate::lock(&table);
                let Some(list) = routes.by_call_id.get_mut(&id.call_id) else {
                    debug!(call_id = %id.call_id, "dialog state of no call: dropped");
                    continue;
                };
                let Some(i) = pick(list, &id.local_tag) else {
                    debug!(call_id = %id.call_id, "dialog state of no dialog of this call: dropped");
                    continue;
                };
                let route = &mut list[i];
                if route.local_tag.is_none() && teaches_tag(&state) {
                    route.local_tag = Some(id.local_tag.clone());
                }
                // A call task that has ended drops its receiver; its route goes with it.
                let _ = route.tx.unbounded_send(Box::new(state));
            }
        });
        StateRouter { tx, routes }
    }

    /// The sender to give rsipstack for a dialog.
    pub(crate) fn sender(&self) -> DialogStateSender {
        self.tx.clone()
    }

    /// A route for `call`'s dialog(s) of `call_id` with our tag `local_tag` (when known).
    /// It replaces the call's earlier route (an INVITE sent again after a challenge or
    /// for the next server address: the earlier one has ended).
    pub(crate) fn route(&self, call: CallKey, call_id: &str, local_tag: Option<String>) -> StateRx {
        let (tx, rx) = queue::unbounded();
        let mut routes = crate::lock(&self.routes);
        routes.next += 1;
        let id = routes.next;
        if let Some((old_call_id, old_id)) = routes.by_call.insert(call, (call_id.to_owned(), id)) {
            routes.remove(&old_call_id, old_id);
        }
        routes
            .by_call_id
            .entry(call_id.to_owned())
            .or_default()
            .push(Route { id, local_tag, tx });
        StateRx {
            rx,
            routes: self.routes.clone(),
            call,
            call_id: call_id.to_owned(),
            id,
        }
    }
}

/// The dialog a state is about.
fn dialog_id(state: &DialogState) -> &DialogId {
    match state {
        DialogState::Calling(id)
        | DialogState::Trying(id)
        | DialogState::Early(id, _)
        | DialogState::WaitAck(id, _)
        | DialogState::Confirmed(id, _)
        | DialogState::Updated(id, _, _)
        | DialogState::Publish(id, _, _)
        | DialogState::Notify(id, _, _)
        | DialogState::Refer(id, _, _)
        | DialogState::Message(id, _, _)
        | DialogState::Info(id, _, _)
        | DialogState::Options(id, _, _)
        | DialogState::Terminated(id, _) => id,
    }
}

/// Whether a state may tell a route its dialog's tag. Not a termination: the route of an
/// INVITE sent again after a 401/407 can be handed the end of the earlier attempt (another
/// From tag) before any state of its own; learning that tag would send the new dialog's
/// states nowhere once a second route shares the Call-ID.
fn teaches_tag(state: &DialogState) -> bool {
    !matches!(state, DialogState::Terminated(..))
}

/// Whether a dialog state with our tag `state_tag` is about the dialog a call task follows
/// (our tag `task_tag`). A call's INVITE sent again after a 401/407 or to the next server is
/// a new dialog with a new From tag in the same Call-ID; rsipstack may report the end of the
/// earlier one after the new route is in place, and [`pick`] then hands it to the new task
/// (its tag not learned yet): that termination must not end the new dialog. Pure, for tests.
pub(crate) fn is_this_dialog(state_tag: &str, task_tag: &str) -> bool {
    state_tag == task_tag
}

/// Which of the routes of one Call-ID takes a state whose dialog has our tag `local_tag`:
/// the one with that tag; else one whose tag is not known yet (our INVITE, whose From tag
/// rsipstack chooses); else, when there is only one, that one (a tag changed by a
/// redirect's new INVITE). Two calls share a Call-ID only when a call loops back to us
/// (our INVITE and the incoming one): their tags tell them apart. Pure, for tests.
fn pick(routes: &[Route], local_tag: &str) -> Option<usize> {
    routes
        .iter()
        .position(|r| r.local_tag.as_deref() == Some(local_tag))
        .or_else(|| routes.iter().position(|r| r.local_tag.is_none()))
        .or_else(|| (routes.len() == 1).then_some(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn late_termination_of_a_challenged_invite_is_not_the_new_dialogs() {
        // INVITE with tag "t1" challenged (407); INVITE again with tag "t2": the
        // termination of "t1" arrives at the task of "t2".
        assert!(!super::is_this_dialog("t1", "t2"));
        assert!(super::is_this_dialog("t2", "t2"));
    }

    use super::*;

    fn route(id: u64, tag: Option<&str>) -> Route {
        let (tx, _rx) = queue::unbounded();
        Route {
            id,
            local_tag: tag.map(str::to_owned),
            tx,
        }
    }

    #[test]
    fn call_looped_back_to_us_keeps_its_two_sides_apart() {
        // Our INVITE (tag not known yet) and the incoming INVITE of the same Call-ID
        // (our To tag "uas"): the UAS side's states go to it, the others to the UAC side.
        let routes = [route(1, None), route(2, Some("uas"))];
        assert_eq!(pick(&routes, "uas"), Some(1));
        assert_eq!(pick(&routes, "uac-from-tag"), Some(0));
        let learned = [route(1, Some("uac")), route(2, Some("uas"))];
        assert_eq!(pick(&learned, "uac"), Some(0));
        assert_eq!(pick(&learned, "other"), None, "a third dialog is nobody's");
    }

    #[test]
    fn single_route_takes_every_state_of_its_call_id() {
        assert_eq!(pick(&[route(1, Some("a"))], "b"), Some(0));
        assert_eq!(pick(&[route(1, None)], "a"), Some(0));
        assert_eq!(pick(&[], "a"), None);
    }

    #[tokio::test]
    async fn states_reach_their_call_in_order_and_a_dropped_call_unroutes() {
        let router = StateRouter::start();
        let mut a = router.route(CallKey(1), "call-a", None);
        let mut b = router.route(CallKey(2), "call-b", Some("tb".into()));
        let id = |c: &str, t: &str| DialogId {
            call_id: c.into(),
            local_tag: t.into(),
            remote_tag: String::new(),
        };
        let tx = router.sender();
        for state in [
            DialogState::Calling(id("call-a", "ta")),
            DialogState::Trying(id("call-b", "tb")),
            DialogState::Trying(id("call-a", "ta")),
            DialogState::Calling(id("nobody", "x")),
        ] {
            tx.send(state).expect("router running");
        }
        assert!(matches!(
            a.recv().await.as_deref(),
            Some(DialogState::Calling(_))
        ));
        assert!(matches!(
            a.recv().await.as_deref(),
            Some(DialogState::Trying(_))
        ));
        assert!(matches!(
            b.recv().await.as_deref(),
            Some(DialogState::Trying(_))
        ));
        drop(a);
        assert!(!crate::lock(&router.routes)
            .by_call_id
            .contains_key("call-a"));
        assert!(!crate::lock(&router.routes)
            .by_call
            .contains_key(&CallKey(1)));
        assert!(crate::lock(&router.routes)
            .by_call_id
            .contains_key("call-b"));
        // The same call again (its INVITE sent anew): the earlier route is replaced.
        let mut b2 = router.route(CallKey(2), "call-b", None);
        tx.send(DialogState::Calling(id("call-b", "tb2")))
            .expect("router running");
        assert!(b.recv().await.is_none(), "the replaced route is closed");
        assert!(matches!(
            b2.recv().await.as_deref(),
            Some(DialogState::Calling(_))
        ));
    }

    #[tokio::test]
    async fn stale_termination_does_not_teach_the_new_route_its_tag() {
        use rsipstack::dialog::dialog::TerminatedReason;
        let router = StateRouter::start();
        let mut a = router.route(CallKey(1), "call-a", None);
        let id = |t: &str| DialogId {
            call_id: "call-a".into(),
            local_tag: t.into(),
            remote_tag: String::new(),
        };
        let tx = router.sender();
        tx.send(DialogState::Terminated(
            id("t1"),
            TerminatedReason::ProxyAuthRequired,
        ))
        .expect("router running");
        tx.send(DialogState::Calling(id("t2")))
            .expect("router running");
        assert!(matches!(
            a.recv().await.as_deref(),
            Some(DialogState::Terminated(..))
        ));
        assert!(matches!(
            a.recv().await.as_deref(),
            Some(DialogState::Calling(_))
        ));
        let tags: Vec<Option<String>> = crate::lock(&router.routes).by_call_id["call-a"]
            .iter()
            .map(|r| r.local_tag.clone())
            .collect();
        assert_eq!(tags, vec![Some("t2".to_string())]);
    }
}
