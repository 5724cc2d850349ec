//! Demultiplexing the protocols that share one media socket by the first byte of each
//! datagram (RFC 7983 §7, updating RFC 5764 §5.1.2).
//!
//! With ICE (STUN connectivity checks, TURN channel data), DTLS-SRTP (the handshake) and
//! RTP/RTCP (the media, SRTP-protected or not) all on the RTP port, the receiver looks at the
//! first byte:
//!
//! ```text
//!              +----------------+
//!              |        [0..3] -+--> STUN (RFC 5389)
//!              |      [16..19] -+--> ZRTP
//!  packet -->  |      [20..63] -+--> DTLS
//!              |      [64..79] -+--> TURN channel data
//!              |    [128..191] -+--> RTP/RTCP
//!              +----------------+
//! ```
//!
//! Everything else is dropped (RFC 7983 §7: "MUST drop the packet").

/// What a datagram on the media socket is, by its first byte (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// STUN, first byte 0..=3 (RFC 5389 §6: the top two bits are zero).
    Stun,
    /// ZRTP, 16..=19 (RFC 6189); we do not implement it.
    Zrtp,
    /// DTLS records, 20..=63 (the content type: 20 change_cipher_spec .. 23 application_data,
    /// RFC 6347 §4.1).
    Dtls,
    /// TURN channel data, 64..=79 (RFC 8656 §12).
    TurnChannel,
    /// RTP or RTCP (version 2 in the top two bits), 128..=191 (RFC 3550 §5.1, RFC 5761 §4
    /// tells RTP from RTCP by the payload type).
    Rtp,
    /// Empty, or a first byte no range claims: drop it.
    Unknown,
}

/// The kind of a datagram by its first byte (RFC 7983 §7).
pub fn classify(data: &[u8]) -> PacketKind {
    match data.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(16..=19) => PacketKind::Zrtp,
        Some(20..=63) => PacketKind::Dtls,
        Some(64..=79) => PacketKind::TurnChannel,
        Some(128..=191) => PacketKind::Rtp,
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_ranges_follow_rfc_7983() {
        let kinds: Vec<(u8, PacketKind)> = (0..=255u8).map(|b| (b, classify(&[b, 0]))).collect();
        for (b, k) in kinds {
            let want = match b {
                0..=3 => PacketKind::Stun,
                16..=19 => PacketKind::Zrtp,
                20..=63 => PacketKind::Dtls,
                64..=79 => PacketKind::TurnChannel,
                128..=191 => PacketKind::Rtp,
                _ => PacketKind::Unknown,
            };
            assert_eq!(k, want, "first byte {b}");
        }
    }

    #[test]
    fn empty_datagram_is_unknown() {
        assert_eq!(classify(&[]), PacketKind::Unknown);
    }

    #[test]
    fn real_headers_are_recognised() {
        // STUN binding request (type 0x0001), DTLS 1.2 handshake record, RTP v2 PCMU, RTCP SR.
        assert_eq!(classify(&[0x00, 0x01, 0x00, 0x00]), PacketKind::Stun);
        assert_eq!(classify(&[22, 0xfe, 0xfd]), PacketKind::Dtls);
        assert_eq!(classify(&[0x80, 0x00]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 200]), PacketKind::Rtp);
    }
}
