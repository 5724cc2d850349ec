//! Heap bytes per call of the media side: N pairs of media sessions (G.711 A-law, 20 ms,
//! silence in, nothing out) send RTP to each other over loopback; a counting allocator
//! reports the live heap after binding the sockets, after starting the sessions and after
//! two seconds of traffic, per session. The SIP side and the engine's line are not in it.
//! Run: `cargo bench -p webphone-media --bench session_memory` (`SESSIONS=N` to change N,
//! default 200; `NOTICES=channels` for sessions that report into channels).

// A counting global allocator needs an `unsafe impl`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use webphone_media::{
    Codec, Direction, MediaSession, Negotiated, NullSink, PipelineConfig, RtpSocket, SilenceSource,
    PTIME_MS,
};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn neg(to: std::net::SocketAddr) -> Negotiated {
    Negotiated {
        remote_rtp: to,
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event_pt: Some(101),
        direction: Direction::SendRecv,
        ptime_ms: PTIME_MS,
        srtp: None,
        dtls: None,
        rtcp_mux: false,
        send_limits: Default::default(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used.
    let n: usize = std::env::var("SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    // NOTICES=channels: events and alarms into channels (`start_with_config`) instead of a
    // callback (`start_with_listener`, the engine's way).
    let channels = std::env::var("NOTICES").is_ok_and(|v| v == "channels");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let start = live();
        let mut sockets = Vec::with_capacity(2 * n);
        for _ in 0..2 * n {
            sockets.push(RtpSocket::bind(ip, None).await.expect("bind"));
        }
        let bound = live();
        let mut sessions = Vec::with_capacity(2 * n);
        let mut it = sockets.into_iter();
        while let (Some(a), Some(b)) = (it.next(), it.next()) {
            let (addr_a, addr_b) = (a.local_addr(), b.local_addr());
            for (sock, to) in [(a, addr_b), (b, addr_a)] {
                let (src, sink) = (Box::new(SilenceSource), Box::new(NullSink));
                let cfg = PipelineConfig::default();
                sessions.push(if channels {
                    MediaSession::start_with_config(sock, neg(to), src, sink, cfg)
                } else {
                    // As the engine starts them: events and alarms to a callback.
                    MediaSession::start_with_listener(sock, neg(to), src, sink, cfg, Box::new(|_| {}))
                });
            }
        }
        let started = live();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let running = live();
        let sessions_n = sessions.len() as f64;
        let kib = |bytes: isize| bytes as f64 / 1024.0 / sessions_n;
        println!(
            "media sessions: {} (events and alarms {})",
            sessions.len(),
            if channels { "into channels" } else { "to a callback" }
        );
        println!(
            "heap per session: sockets {:.1} KiB, + session {:.1} KiB, + 2 s of traffic {:.1} KiB = {:.1} KiB",
            kib(bound - start),
            kib(started - bound),
            kib(running - started),
            kib(running - start)
        );
        let mut received = 0;
        for s in sessions {
            received += s.stop().await.packets_received;
        }
        println!(
            "packets received per session: {:.0}",
            received as f64 / sessions_n
        );
    });
}
