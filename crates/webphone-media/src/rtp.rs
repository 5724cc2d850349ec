//! RTP (RFC 3550) packet building and parsing, on top of `rtc-rtp`'s wire format.

use bytes::Bytes;
use rtc_rtp::{Header, Packet};
use rtc_shared::marshal::{Marshal, Unmarshal};

/// Smallest RTP packet: the fixed header (RFC 3550 §5.1).
pub const RTP_HEADER_LEN: usize = 12;

/// A received RTP packet, validated to be version 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit (RFC 3551 §4.1: first packet of a talkspurt for audio).
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp in clock-rate units.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload with padding removed.
    pub payload: Bytes,
}

/// What a received datagram is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    /// An RTP packet.
    Rtp(RtpPacket),
    /// An RTCP packet multiplexed on the RTP port (packet types 200-204, RFC 5761 §4).
    Rtcp,
}

/// Why a datagram is not usable RTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the header it announces.
    #[error("RTP packet too short")]
    TooShort,
    /// Version field is not 2 (STUN, garbage, ...).
    #[error("not RTP version 2")]
    BadVersion,
    /// The wire-format parser refused it.
    #[error("malformed RTP packet: {0}")]
    Malformed(String),
}

/// Classify and parse a received datagram (RFC 3550 §5.1, RFC 5761 §4 for RTCP demultiplexing).
pub fn parse(data: &[u8]) -> Result<Datagram, RtpError> {
    if data.len() < RTP_HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    if data[0] >> 6 != 2 {
        return Err(RtpError::BadVersion);
    }
    if (200..=204).contains(&data[1]) {
        return Ok(Datagram::Rtcp);
    }
    let mut buf = data;
    let pkt = Packet::unmarshal(&mut buf).map_err(|e| RtpError::Malformed(e.to_string()))?;
    Ok(Datagram::Rtp(RtpPacket {
        payload_type: pkt.header.payload_type,
        marker: pkt.header.marker,
        sequence: pkt.header.sequence_number,
        timestamp: pkt.header.timestamp,
        ssrc: pkt.header.ssrc,
        payload: pkt.payload,
    }))
}

/// The sending side of one RTP stream: SSRC and sequence numbering (RFC 3550 §5.1).
///
/// The SSRC and the initial sequence number are random (RFC 3550 §5.1, §8.1); the media
/// timestamp is kept by the caller, which knows the sampling clock.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    next_seq: u16,
}

impl Default for RtpSender {
    fn default() -> Self {
        Self::new()
    }
}

impl RtpSender {
    /// A sender with random SSRC and initial sequence number.
    pub fn new() -> RtpSender {
        RtpSender {
            ssrc: rand::random(),
            next_seq: rand::random(),
        }
    }

    /// A sender with a fixed state (tests).
    pub fn with_state(ssrc: u32, first_seq: u16) -> RtpSender {
        RtpSender {
            ssrc,
            next_seq: first_seq,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_seq
    }

    /// Build the next packet and advance the sequence number (wrapping at 65535).
    pub fn packet(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        build(payload_type, marker, seq, timestamp, self.ssrc, payload)
    }
}

/// Serialise one RTP packet without CSRCs, extensions or padding.
pub fn build(
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) -> Vec<u8> {
    let pkt = Packet {
        header: Header {
            version: 2,
            marker,
            payload_type: payload_type & 0x7F,
            sequence_number: sequence,
            timestamp,
            ssrc,
            ..Header::default()
        },
        payload: Bytes::copy_from_slice(payload),
    };
    match pkt.marshal() {
        Ok(b) => b.to_vec(),
        // Cannot happen for a plain header: fall back to writing it by hand.
        Err(_) => {
            let mut out = Vec::with_capacity(RTP_HEADER_LEN + payload.len());
            out.push(0x80);
            out.push((u8::from(marker) << 7) | (payload_type & 0x7F));
            out.extend_from_slice(&sequence.to_be_bytes());
            out.extend_from_slice(&timestamp.to_be_bytes());
            out.extend_from_slice(&ssrc.to_be_bytes());
            out.extend_from_slice(payload);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_packet_parses_back_with_same_fields() {
        let data = build(0, true, 65535, 0xDEADBEEF, 0x1234_5678, &[0xFF; 160]);
        assert_eq!(data.len(), 172);
        assert_eq!(data[0], 0x80);
        assert_eq!(data[1], 0x80);
        let Datagram::Rtp(p) = parse(&data).unwrap() else {
            panic!("not rtp")
        };
        assert_eq!(p.payload_type, 0);
        assert!(p.marker);
        assert_eq!(p.sequence, 65535);
        assert_eq!(p.timestamp, 0xDEADBEEF);
        assert_eq!(p.ssrc, 0x1234_5678);
        assert_eq!(p.payload.len(), 160);
    }

    #[test]
    fn sender_sequence_wraps_at_65535() {
        let mut s = RtpSender::with_state(7, 65535);
        let a = s.packet(8, false, 0, &[1]);
        let b = s.packet(8, false, 160, &[1]);
        assert_eq!(u16::from_be_bytes([a[2], a[3]]), 65535);
        assert_eq!(u16::from_be_bytes([b[2], b[3]]), 0);
    }

    #[test]
    fn random_senders_differ() {
        let a = RtpSender::new();
        let b = RtpSender::new();
        // 2^-32 chance of a false failure.
        assert_ne!((a.ssrc(), a.next_sequence()), (b.ssrc(), b.next_sequence()));
    }

    #[test]
    fn garbage_short_and_wrong_version_are_errors() {
        assert_eq!(parse(&[]), Err(RtpError::TooShort));
        assert_eq!(parse(&[0x80; 5]), Err(RtpError::TooShort));
        assert_eq!(parse(&[0x00; 20]), Err(RtpError::BadVersion));
        // STUN binding request starts with 0x00 0x01.
        let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        stun.extend([0u8; 12]);
        assert_eq!(parse(&stun), Err(RtpError::BadVersion));
    }

    #[test]
    fn csrc_count_beyond_packet_end_is_an_error() {
        let mut data = build(0, false, 1, 1, 1, &[]);
        data[0] |= 0x0F; // 15 CSRCs announced, none present
        assert!(matches!(parse(&data), Err(RtpError::Malformed(_))));
    }

    #[test]
    fn padding_longer_than_payload_is_an_error() {
        let mut data = build(0, false, 1, 1, 1, &[1, 2, 200]);
        data[0] |= 0x20;
        assert!(matches!(parse(&data), Err(RtpError::Malformed(_))));
        // Valid padding is stripped.
        let mut ok = build(0, false, 1, 1, 1, &[9, 9, 0, 2]);
        ok[0] |= 0x20;
        let Ok(Datagram::Rtp(p)) = parse(&ok) else {
            panic!("expected rtp")
        };
        assert_eq!(&p.payload[..], &[9, 9]);
    }

    #[test]
    fn rtcp_sender_report_is_classified_as_rtcp() {
        let mut sr = vec![0x80, 200, 0x00, 0x06];
        sr.extend([0u8; 24]);
        assert_eq!(parse(&sr), Ok(Datagram::Rtcp));
    }
}
