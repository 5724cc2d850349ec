//! TURN over TCP or TLS (RFC 8656 §3.1: the client may reach its server over TCP or TLS over
//! TCP; the relay towards the peers stays UDP). [`IceTransport`](super::IceTransport) is sans-IO and talks to its
//! TURN server in datagrams on the media socket, so for a server reached over TCP a small
//! relay task stands in for it: a UDP socket beside the media socket takes the datagrams
//! meant for the server and writes them to one TCP connection, and every message read from
//! the connection goes back to the media socket as one datagram. On the stream, STUN
//! messages are delimited by their length field (RFC 8489 §6), ChannelData messages by
//! theirs, padded to a multiple of four bytes (RFC 8656 §12.5) — [`frame_len`].
//!
//! Only the media socket may use the stand-in (anything else sent to it is dropped); the task
//! ends when the connection closes or the stand-in is dropped (with the call).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use super::TurnTls;

/// The UDP stand-in for a TURN server reached over TCP; the relay task stops when dropped.
#[derive(Debug)]
pub struct TurnTcp {
    /// Where the media socket sends what is meant for the server.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TurnTcp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Largest message taken from the stream (a STUN message or ChannelData carries at most a
/// datagram's worth).
const MAX_MESSAGE: usize = 64 * 1024;

/// What the start of the bytes read from the server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet.
    Partial,
    /// A message of `len` bytes, taking `framed` bytes of the stream (with its padding).
    Whole { len: usize, framed: usize },
    /// Neither STUN (first two bits `00`) nor ChannelData (`01`): not a TURN stream.
    NotTurn,
}

/// The first message in `buf`, read from a TURN server's stream. Pure, for tests.
pub fn frame_len(buf: &[u8]) -> Frame {
    let Some(head) = buf.get(..4) else {
        return Frame::Partial;
    };
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let (message, framed) = match head[0] >> 6 {
        // STUN: 20-byte header, attributes already padded (RFC 8489 §5, §14).
        0b00 => (20 + len, 20 + len),
        // ChannelData: 4-byte header, data padded to 4 on a stream (RFC 8656 §12.5).
        0b01 => (4 + len, 4 + len.div_ceil(4) * 4),
        _ => return Frame::NotTurn,
    };
    if buf.len() >= framed {
        Frame::Whole {
            len: message,
            framed,
        }
    } else {
        Frame::Partial
    }
}

/// Connects to the TURN server `server` (and with `tls` makes the TLS handshake, the
/// server's certificate verified against `tls`'s anchors and name), all within `timeout`,
/// and starts the stand-in for the media socket at `media`.
pub async fn start(
    server: SocketAddr,
    tls: Option<&TurnTls>,
    media: SocketAddr,
    timeout: Duration,
) -> io::Result<TurnTcp> {
    let connect = async {
        let stream = TcpStream::connect(server).await?;
        let _ = stream.set_nodelay(true);
        Ok::<_, io::Error>(stream)
    };
    let timed_out = || {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "TURN over TCP: no connection in time",
        )
    };
    let udp = UdpSocket::bind(SocketAddr::new(media.ip(), 0)).await?;
    let addr = udp.local_addr()?;
    let task = match tls {
        None => {
            let stream = tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| timed_out())??;
            tokio::spawn(relay(stream, udp, media, server))
        }
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from(tls.server_name.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            let handshake = async {
                let stream = connect.await?;
                connector.connect(name, stream).await
            };
            let stream = tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| timed_out())??;
            tokio::spawn(relay(stream, udp, media, server))
        }
    };
    Ok(TurnTcp { addr, task })
}

async fn relay<S>(stream: S, udp: UdpSocket, media: SocketAddr, server: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut from_stream: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = vec![0u8; 4096];
    let mut datagram = vec![0u8; 2048];
    loop {
        tokio::select! {
            r = udp.recv_from(&mut datagram) => {
                let Ok((n, from)) = r else { continue };
                if from != media {
                    continue;
                }
                if let Err(e) = wr.write_all(datagram.get(..n).unwrap_or(&[])).await {
                    tracing::debug!(%server, error = %e, "TURN over TCP: write failed");
                    return;
                }
            }
            r = rd.read(&mut chunk) => {
                let n = match r {
                    Ok(0) | Err(_) => {
                        tracing::debug!(%server, "TURN over TCP: connection closed");
                        return;
                    }
                    Ok(n) => n,
                };
                from_stream.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                loop {
                    match frame_len(&from_stream) {
                        Frame::Whole { len, framed } if len <= MAX_MESSAGE => {
                            let _ = udp.send_to(&from_stream[..len], media).await;
                            from_stream.drain(..framed);
                        }
                        Frame::Partial if from_stream.len() <= MAX_MESSAGE => break,
                        _ => {
                            tracing::debug!(%server, "TURN over TCP: not a TURN stream; closing");
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_cut_at_stun_and_padded_channel_data_boundaries() {
        // A STUN header announcing 8 bytes of attributes: 28 in all.
        let mut stun = vec![0x01, 0x01, 0x00, 0x08];
        stun.extend_from_slice(&[0u8; 24]);
        assert_eq!(
            frame_len(&stun),
            Frame::Whole {
                len: 28,
                framed: 28
            }
        );
        assert_eq!(frame_len(&stun[..27]), Frame::Partial);
        // ChannelData with 5 bytes of data: 9 bytes, 12 on the stream.
        let cd = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0];
        assert_eq!(frame_len(&cd), Frame::Whole { len: 9, framed: 12 });
        assert_eq!(
            frame_len(&cd[..9]),
            Frame::Partial,
            "the padding is waited for"
        );
        assert_eq!(frame_len(&cd[..3]), Frame::Partial);
        // Neither STUN nor ChannelData.
        assert_eq!(frame_len(&[0x80, 0, 0, 0]), Frame::NotTurn);
        assert_eq!(frame_len(&[0xc0, 0, 0, 0]), Frame::NotTurn);
    }

    #[tokio::test]
    async fn datagrams_go_over_the_connection_and_messages_come_back_whole() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stray = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let shim = start(
            server.local_addr().unwrap(),
            None,
            media.local_addr().unwrap(),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        let (mut conn, _) = server.accept().await.unwrap();
        // Only the media socket's datagrams are relayed.
        stray.send_to(&[0x00, 0x01, 0, 0], shim.addr).await.unwrap();
        let request = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        media.send_to(&request, shim.addr).await.unwrap();
        let mut got = [0u8; 8];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(got, request);
        // Two messages in one write, the second split: each arrives as its own datagram,
        // the ChannelData without its padding.
        let mut stun = vec![0x01, 0x01, 0x00, 0x00];
        stun.extend_from_slice(&[7u8; 16]);
        let cd = [0x40, 0x01, 0x00, 0x03, 9, 9, 9, 0];
        conn.write_all(&[stun.as_slice(), &cd[..5]].concat())
            .await
            .unwrap();
        conn.write_all(&cd[5..]).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = media.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (stun.as_slice(), shim.addr));
        let (n, _) = media.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &cd[..7]);
    }
}
