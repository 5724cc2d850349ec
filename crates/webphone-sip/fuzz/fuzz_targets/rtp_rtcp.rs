//! RTP/RTCP: datagram classification and RTP parsing, RFC 4733 event payloads, and the
//! RTCP receiver (reports, BYE, compound packets).
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use webphone_media::{dtmf, rtcp, rtp};

fuzz_target!(|data: &[u8]| {
    if let Ok(rtp::Datagram::Rtp(p)) = rtp::parse(data) {
        let _ = dtmf::EventPayload::decode(&p.payload);
    }
    let _ = dtmf::EventPayload::decode(data);
    if rtcp::is_rtcp(data) {
        let now = Instant::now();
        let mut st = rtcp::RtcpState::new(0x1234_5678, "fuzz".into(), now, 0, 1);
        let _ = st.on_packet(data, now);
    }
});
