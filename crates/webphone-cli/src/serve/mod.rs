//! The local WebSocket service (`webphone-cli --serve`): `webphone_api.js` in a browser on the
//! same machine drives the engine through it.
//!
//! - Binds loopback only ([`parse_serve_addr`] refuses anything else).
//! - Admits an upgrade request only when its `Origin` is in the allow-list (`--allow-origin`);
//!   without an `Origin` header only with `--allow-no-origin`. Others get HTTP 403 before the
//!   upgrade, because any web page can open a socket to 127.0.0.1.
//! - JSON text frames, see [`protocol`]; frames and messages are capped at [`MAX_MESSAGE`].
//! - One shared [`Phone`]: every connection gets every engine event from the moment it is
//!   admitted; requests of one connection run one after the other, in order.
//! - `destroyonpageclose`: when the last admitted page has been gone for
//!   [`PAGE_CLOSE_GRACE`] (a reload comes back sooner), 1 hangs up every call and 2 (the
//!   default) also unregisters (`stop()`; the next page's `start()` registers again); 0 keeps
//!   both.

pub mod config;
pub mod files;
pub mod protocol;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use webphone_engine::Phone;

pub use config::{parse_origin, parse_serve_addr, ServeConfig};

/// Largest accepted frame and message (64 KiB); a bigger one closes the connection (1009).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Connections served at the same time; more are closed at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Time a client has to complete the WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests of one connection waiting for the engine; the reader waits when it is full.
const PENDING_REQUESTS: usize = 32;
/// Frames waiting to be written to one connection (replies and events).
const PENDING_FRAMES: usize = 256;

/// How long the last page may be gone before `destroyonpageclose` applies: a reloaded page
/// reconnects well within it.
pub const PAGE_CLOSE_GRACE: Duration = Duration::from_secs(3);

/// What `destroyonpageclose` asks for when the last page has closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCloseAction {
    /// 0: calls and registration stay.
    Nothing,
    /// 1: every call is hung up; the registration stays.
    HangUp,
    /// 2 (the default, also for values out of range): calls hung up, and unregistered.
    Stop,
}

impl PageCloseAction {
    pub fn from_param(value: &str) -> PageCloseAction {
        match value.trim() {
            "0" => PageCloseAction::Nothing,
            "1" => PageCloseAction::HangUp,
            _ => PageCloseAction::Stop,
        }
    }
}

/// The admitted pages: how many are open, and a count of openings that tells a page that came
/// back during the grace time.
#[derive(Default)]
struct Pages {
    open: std::sync::atomic::AtomicUsize,
    opened: std::sync::atomic::AtomicU64,
}

impl Pages {
    fn open(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.opened.fetch_add(1, SeqCst);
        self.open.fetch_add(1, SeqCst);
    }

    /// A page closed: `Some(openings so far)` when it was the last one.
    fn close(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::SeqCst;
        let before = self.open.fetch_sub(1, SeqCst);
        (before == 1).then(|| self.opened.load(SeqCst))
    }

    /// No page is open and none opened since `openings` was read.
    fn still_gone(&self, openings: u64) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.open.load(SeqCst) == 0 && self.opened.load(SeqCst) == openings
    }
}

/// After [`PAGE_CLOSE_GRACE`] without pages: what `destroyonpageclose` says.
async fn last_page_closed(phone: Phone, pages: Arc<Pages>, openings: u64) {
    tokio::time::sleep(PAGE_CLOSE_GRACE).await;
    if !pages.still_gone(openings) {
        return;
    }
    let mode = phone
        .api("getparameter", vec!["destroyonpageclose".into()])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let action = PageCloseAction::from_param(&mode);
    tracing::info!(?action, "local service: the last page closed");
    let result = match action {
        PageCloseAction::Nothing => return,
        PageCloseAction::HangUp => phone.api("hangup", vec!["-2".into()]).await,
        PageCloseAction::Stop => phone.api("stop", vec![]).await,
    };
    if let Err(e) = result {
        tracing::debug!("local service: after the last page: {e}");
    }
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, not yet running service.
pub struct Server {
    listener: TcpListener,
    cfg: Arc<ServeConfig>,
}

impl Server {
    /// Binds the listening socket (the address was checked to be loopback by
    /// [`parse_serve_addr`]; it is checked again here).
    pub async fn bind(cfg: ServeConfig) -> Result<Server, ServeError> {
        let addr = cfg.addr;
        if !addr.ip().is_loopback() {
            return Err(ServeError::Bind {
                addr,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a loopback address",
                ),
            });
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Server {
            listener,
            cfg: Arc::new(cfg),
        })
    }

    /// The address actually listened on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until the task is dropped.
    pub async fn run(self, phone: Phone) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let pages = Arc::new(Pages::default());
        let local = self.listener.local_addr().unwrap_or(self.cfg.addr);
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("local service: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "local service: too many connections, closing a new one");
                continue;
            };
            let phone = phone.clone();
            let cfg = self.cfg.clone();
            let pages = pages.clone();
            tokio::spawn(async move {
                serve_connection(stream, peer, local, phone, cfg, pages).await;
                drop(permit);
            });
        }
    }
}

/// Pages the service hands out itself (`--www`) are on an address any web site can link to,
/// with any `wp_` parameters in the link: from such a page, a parameter that comes from its
/// URL or cookies (`setparameter(name, value, "url" | "cookie")`) is refused unless it only
/// changes the look (catalog scope `ui`). Otherwise a link could re-point the account at
/// another server (which would then get our digest) or place a call (`callto` +
/// `autoaction`). The refusal text, or `None` when the request may go on.
pub fn url_provisioning_refused(func: &str, args: &[String]) -> Option<String> {
    if !func.eq_ignore_ascii_case("setparameter") {
        return None;
    }
    let source = args.get(2).map(|s| s.trim().to_ascii_lowercase());
    if !matches!(source.as_deref(), Some("url" | "cookie")) {
        return None;
    }
    let name = args.first().map(String::as_str).unwrap_or("");
    let ui = webphone_engine::params::Registry::global()
        .lookup(name)
        .is_some_and(|d| d.scope == webphone_engine::params::Scope::Ui);
    (!ui).then(|| {
        format!(
            "{name}: a page served by the phone itself cannot set it from its address or \
             cookies (any web site could link to it with its own values); set it in the app"
        )
    })
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// The 403 answer for a refused page; the text says how to admit it.
fn forbidden(origin: Option<&str>) -> ErrorResponse {
    let text = match origin {
        Some(o) => format!(
            "webphone: pages from {o} may not use this phone; start webphone-cli with --allow-origin {o}\n"
        ),
        None => "webphone: requests without an Origin header are refused; start webphone-cli with --allow-no-origin\n".to_string(),
    };
    let mut resp = ErrorResponse::new(Some(text));
    *resp.status_mut() = StatusCode::FORBIDDEN;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    phone: Phone,
    cfg: Arc<ServeConfig>,
    pages: Arc<Pages>,
) {
    if let Some(root) = &cfg.www {
        // `--www`: a plain GET is a file; only a WebSocket upgrade goes on to the engine.
        match files::peek_head(&stream, HANDSHAKE_TIMEOUT).await {
            Some(head) if !files::is_upgrade(&head.text) => {
                let _ = tokio::time::timeout(
                    HANDSHAKE_TIMEOUT,
                    files::answer(stream, root, &head, local),
                )
                .await;
                return;
            }
            Some(_) => {}
            None => return,
        }
    }
    let mut seen_origin: Option<String> = None;
    let mut own_origin_only = false;
    // The Err type is tungstenite's callback contract.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let origin = match req.headers().get(header::ORIGIN).map(|v| v.to_str()) {
            None => None,
            Some(Ok(o)) => Some(o.to_string()),
            Some(Err(_)) => return Err(forbidden(Some("<unreadable origin>"))),
        };
        if cfg.admits_at(origin.as_deref(), local) {
            own_origin_only = !cfg.admits(origin.as_deref());
            seen_origin = origin;
            Ok(resp)
        } else {
            tracing::warn!(%peer, origin = origin.as_deref().unwrap_or("<none>"),
                "local service: refused a connection from a page that is not allowed");
            Err(forbidden(origin.as_deref()))
        }
    };
    let ws = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(ws_config())),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "local service: handshake not completed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "local service: handshake timed out");
            return;
        }
    };
    let origin = seen_origin.unwrap_or_else(|| "<none>".into());
    tracing::info!(%peer, %origin, "local service: page connected");
    pages.open();
    let after_phone = phone.clone();

    // Subscribe before the first request is read, so no event of a request is missed.
    let mut events = phone.subscribe();
    let (mut sink, mut incoming) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(PENDING_FRAMES);

    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            let closing = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });

    // Replies go out through the forwarder, after every event the engine sent before it: the
    // engine publishes what a call changed (its `_sync` event, notifications) before it
    // answers, and a page that reads webphone_api's synchronous copy after the answer must
    // find the change there.
    let (reply_tx, mut reply_rx) = mpsc::channel::<String>(PENDING_REQUESTS);
    let ev_tx = out_tx.clone();
    let forwarder = tokio::spawn(async move {
        let encode = |ev: &webphone_engine::Event| match serde_json::to_string(ev) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("local service: cannot encode an event: {e}");
                None
            }
        };
        let lagged = |n: u64| {
            serde_json::json!({
                "ev": "notification",
                "text": format!("LOG,WARNING,{n} notifications were dropped"),
            })
            .to_string()
        };
        loop {
            let text = tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Ok(ev) => match encode(&ev) {
                        Some(t) => t,
                        None => continue,
                    },
                    Err(RecvError::Lagged(n)) => lagged(n),
                    Err(RecvError::Closed) => break,
                },
                reply = reply_rx.recv() => {
                    let Some(reply) = reply else { break };
                    // The events already sent by the engine go first.
                    loop {
                        let text = match events.try_recv() {
                            Ok(ev) => match encode(&ev) {
                                Some(t) => t,
                                None => continue,
                            },
                            Err(TryRecvError::Lagged(n)) => lagged(n),
                            Err(_) => break,
                        };
                        if ev_tx.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    reply
                }
            };
            if ev_tx.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });

    let (req_tx, mut req_rx) = mpsc::channel::<protocol::Request>(PENDING_REQUESTS);
    let worker = tokio::spawn(async move {
        while let Some(req) = req_rx.recv().await {
            if let Some(refusal) = own_origin_only
                .then(|| url_provisioning_refused(&req.func, &req.args))
                .flatten()
            {
                let reply = protocol::err_reply(&req.id, &refusal);
                if reply_tx.send(reply).await.is_err() {
                    break;
                }
                continue;
            }
            let reply = match phone.api(&req.func, req.args.clone()).await {
                Ok(v) => {
                    protocol::ok_reply(&req.id, protocol::redact_result(&req.func, &req.args, v))
                }
                // The message as the Tauri command gives it; the facade adds the function name.
                Err(e) => protocol::err_reply(&req.id, &e.to_string()),
            };
            if reply_tx.send(reply).await.is_err() {
                break;
            }
        }
    });

    while let Some(frame) = incoming.next().await {
        match frame {
            Ok(Message::Text(text)) => match protocol::parse_request(text.as_str()) {
                Ok(req) => {
                    tracing::debug!(%peer, func = %req.func, "local service: request");
                    if req_tx.send(req).await.is_err() {
                        break;
                    }
                }
                Err(bad) => {
                    let reply = protocol::err_reply(&bad.id, &bad.message);
                    if out_tx.send(Message::text(reply)).await.is_err() {
                        break;
                    }
                }
            },
            Ok(Message::Binary(_)) => {
                let reply = protocol::err_reply(
                    &Value::Null,
                    "malformed request: binary frames are not supported, send JSON text",
                );
                if out_tx.send(Message::text(reply)).await.is_err() {
                    break;
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {} // ping/pong are answered by tungstenite
            Err(WsError::Capacity(e)) => {
                tracing::warn!(%peer, "local service: closing a connection: {e}");
                let frame = CloseFrame {
                    code: CloseCode::Size,
                    reason: format!("message larger than {MAX_MESSAGE} bytes").into(),
                };
                let _ = out_tx.send(Message::Close(Some(frame))).await;
                break;
            }
            Err(e) => {
                tracing::debug!(%peer, "local service: connection ended: {e}");
                break;
            }
        }
    }
    tracing::info!(%peer, %origin, "local service: page disconnected");
    drop(req_tx);
    forwarder.abort();
    worker.abort();
    drop(out_tx);
    // The writer ends once the last sender is gone (or after a close frame).
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    if let Some(openings) = pages.close() {
        tokio::spawn(last_page_closed(after_phone, pages, openings));
    }
}
