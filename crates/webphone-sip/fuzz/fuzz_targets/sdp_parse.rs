//! SDP: the tolerant parser and the offer/answer functions fed with the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webphone_media::{sdp, MediaOffer};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = sdp::parse(text);
    let local = "127.0.0.1:40000".parse().expect("address");
    let prefs = MediaOffer::default();
    if let Ok((_, neg)) = sdp::answer_offer(text, 1, local, &prefs) {
        // The peer's limits (b=AS, Opus fmtp) turned into an encoder cap.
        let _ = neg.send_limits.opus_bitrate_cap(neg.ptime_ms);
    }
    let _ = sdp::apply_answer(text, &prefs);
});
