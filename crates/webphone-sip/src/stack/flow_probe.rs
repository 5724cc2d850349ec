//! The pong deadline of a stream flow (RFC 5626 §4.4.1): after a keep-alive ping on the
//! registration's TCP, TLS or WebSocket connection, the server must answer within 10 s,
//! or the flow has failed and the phone registers again over a new connection.
//!
//! rsipstack reads our connections and drops the answers (a CRLF pong, a WebSocket pong
//! frame) inside its read loops, so the pong is not seen as such. What is seen is the
//! socket: every connection we dial keeps a second descriptor of its socket, and the
//! kernel says how long ago data last arrived on it (`TCP_INFO`'s `tcpi_last_data_recv`
//! on Linux). Data after the ping — the pong or any SIP message — proves the peer alive,
//! which is what the pong is for; pure TCP acknowledgements do not count, so a server
//! whose process is frozen or gone behind a NAT that still answers at the TCP level is
//! noticed too. Where the kernel cannot tell (other systems), no deadline applies and the
//! flow is trusted until the connection closes or a send fails.
//!
//! Only a server that answers pings is held to the deadline: a WebSocket peer must
//! (RFC 6455 §5.5.2), a plain RFC 3261 server skips a CRLF ping silently (§7.5) and is
//! not wrong to. So a CRLF flow is held to it once it has answered a ping: once data came
//! within [`PROMPT`] of a ping (a request the server sends on its own seldom lands that
//! close to a ping; a pong always does).

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a ping may go unanswered (RFC 5626 §4.4.1: 10 seconds).
pub(crate) const PONG_WAIT: Duration = Duration::from_secs(10);

/// The kernel keeps `tcpi_last_data_recv` in jiffies (1–10 ms): data that arrived just
/// after the ping can read as up to that much older. Data this close before the ping is
/// taken as an answer too (the peer was alive a moment earlier; no false alarm).
const CLOCK_SLACK: Duration = Duration::from_millis(50);

/// Whether the ping sent `ping_age` ago is still unanswered when the last data arrived
/// `quiet_for` ago.
fn pong_overdue(ping_age: Duration, quiet_for: Duration) -> bool {
    quiet_for > ping_age + CLOCK_SLACK
}

/// How soon after a ping data must come to count as its pong, for learning that the peer
/// answers pings.
pub(crate) const PROMPT: Duration = Duration::from_secs(1);

/// The outcome of a ping once its deadline has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PongCheck {
    /// Data arrived after the ping.
    Answered,
    /// Nothing arrived, from a peer that answers pings: the flow has failed.
    Overdue { quiet: Duration },
    /// Nothing arrived, from a peer that has never answered a ping: no verdict.
    Unproven,
}

/// The verdict on a ping sent `ping_age` ago, the last data having arrived `quiet_for` ago,
/// from a peer that has (or has not) answered a ping before.
pub(crate) fn verdict(answers_pings: bool, ping_age: Duration, quiet_for: Duration) -> PongCheck {
    if !pong_overdue(ping_age, quiet_for) {
        PongCheck::Answered
    } else if answers_pings {
        PongCheck::Overdue { quiet: quiet_for }
    } else {
        PongCheck::Unproven
    }
}

/// A second descriptor of a connection's socket, for asking the kernel about it and for
/// closing a failed flow under its reader. Dropped when the connection is forgotten.
pub(crate) struct FlowProbe {
    socket: socket2::Socket,
    /// The peer answers pings: it must (WebSocket), or it has answered one.
    answers_pings: AtomicBool,
}

impl FlowProbe {
    /// A probe of `stream`'s socket (a duplicated descriptor); `None` where the system
    /// cannot tell when data last arrived. `pongs_promised`: the protocol obliges the peer
    /// to answer pings (WebSocket).
    pub(crate) fn of(
        stream: &tokio::net::TcpStream,
        pongs_promised: bool,
    ) -> io::Result<Option<FlowProbe>> {
        let socket = socket2::SockRef::from(stream).try_clone()?;
        if last_data_received(&socket).is_none() {
            return Ok(None);
        }
        Ok(Some(FlowProbe {
            socket,
            answers_pings: AtomicBool::new(pongs_promised),
        }))
    }

    /// [`PROMPT`] after a ping sent `ping_age` ago: data since the ping marks the peer as
    /// one that answers pings.
    pub(crate) fn note_prompt_answer(&self, ping_age: Duration) {
        if self
            .quiet_for()
            .is_some_and(|quiet| !pong_overdue(ping_age, quiet))
        {
            self.answers_pings.store(true, Ordering::Relaxed);
        }
    }

    /// The verdict on a ping sent `ping_age` ago (`None` if the kernel cannot say).
    pub(crate) fn check(&self, ping_age: Duration) -> Option<PongCheck> {
        let quiet = self.quiet_for()?;
        Some(verdict(
            self.answers_pings.load(Ordering::Relaxed),
            ping_age,
            quiet,
        ))
    }

    /// How long ago data last arrived on the connection; `None` where the system cannot
    /// tell.
    pub(crate) fn quiet_for(&self) -> Option<Duration> {
        last_data_received(&self.socket)
    }

    /// Ends the connection both ways: its reader sees the end and the transport layer
    /// drops it, so the next request opens a new one.
    pub(crate) fn close(&self) {
        if let Err(e) = self.socket.shutdown(Shutdown::Both) {
            tracing::debug!(error = %e, "closing a failed flow");
        }
    }
}

// The one foreign call of this crate: `getsockopt(TCP_INFO)`, which neither std nor
// socket2 offers.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn last_data_received(socket: &socket2::Socket) -> Option<Duration> {
    use std::os::fd::AsRawFd;
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: the descriptor is open for as long as `socket` lives, `info` is a writable
    // `tcp_info` of `len` bytes, and the kernel writes at most `len` bytes into it.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "TCP_INFO");
        return None;
    }
    // SAFETY: zero-initialised, then (partly) filled by the kernel: every bit pattern is a
    // valid `tcp_info` (plain integers).
    let info = unsafe { info.assume_init() };
    Some(Duration::from_millis(u64::from(info.tcpi_last_data_recv)))
}

#[cfg(not(target_os = "linux"))]
fn last_data_received(_socket: &socket2::Socket) -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_pong_right_after_the_ping_answers_it() {
        // Ping 10 s ago, pong 1 ms later: quiet for 9.999 s (or reported a jiffy older).
        assert!(!pong_overdue(10_000 * MS, 9_999 * MS));
        assert!(!pong_overdue(10_000 * MS, 10_004 * MS));
    }

    #[test]
    fn silence_since_before_the_ping_is_overdue() {
        // The last data came with the REGISTER's 200, 25 s ago; the ping went 10 s ago.
        assert!(pong_overdue(10_000 * MS, 25_000 * MS));
        assert!(pong_overdue(10_000 * MS, 10_100 * MS));
    }

    #[test]
    fn a_server_that_never_answered_a_crlf_ping_is_not_held_to_the_deadline() {
        // RFC 3261 §7.5: such a server skips the CRLFs; that is no failure.
        assert_eq!(
            verdict(false, 10_000 * MS, 25_000 * MS),
            PongCheck::Unproven
        );
        assert_eq!(
            verdict(true, 10_000 * MS, 25_000 * MS),
            PongCheck::Overdue { quiet: 25_000 * MS }
        );
        assert_eq!(verdict(false, 10_000 * MS, 9_000 * MS), PongCheck::Answered);
    }

    #[test]
    fn probe_sees_data_arrive_on_a_loopback_connection() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use tokio::io::AsyncWriteExt;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let Some(probe) = FlowProbe::of(&client, false).unwrap() else {
                return; // not Linux: nothing to show
            };
            tokio::time::sleep(Duration::from_millis(300)).await;
            let before = probe.quiet_for().unwrap();
            assert!(before >= Duration::from_millis(250), "{before:?}");
            // A "ping" 100 ms ago, nothing since: no verdict for a peer not known to answer.
            probe.note_prompt_answer(Duration::from_millis(100));
            assert_eq!(
                probe.check(Duration::from_millis(100)),
                Some(PongCheck::Unproven)
            );
            server.write_all(b"\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let after = probe.quiet_for().unwrap();
            assert!(after < Duration::from_millis(200), "{after:?}");
            // A prompt answer: from now on the peer is held to the deadline.
            probe.note_prompt_answer(Duration::from_millis(100));
            assert_eq!(
                probe.check(Duration::from_millis(100)),
                Some(PongCheck::Answered)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(matches!(
                probe.check(Duration::from_millis(100)),
                Some(PongCheck::Overdue { .. })
            ));
            // Closing through the probe ends the connection for its owner too.
            probe.close();
            let mut buf = [0u8; 8];
            let n = tokio::io::AsyncReadExt::read(&mut server, &mut buf)
                .await
                .unwrap();
            assert_eq!(n, 0, "the peer sees the end");
            drop(client);
        });
    }
}
