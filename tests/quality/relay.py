"""Impairment relay for the call-quality benchmark (asyncio, UDP, loopback only).

The relay sits between two SIP endpoints that call each other directly (no proxy):

    A (caller) --SIP--> relay:RA ... relay:RB --SIP--> B (callee)

It presents itself to A as B (port RA) and to B as A (port RB): every
"127.0.0.1:<port>" in a SIP message that names the other side is rewritten, so
responses, ACK and BYE keep flowing through it. The SDP of every message is
rewritten (c= to 127.0.0.1, m=audio and a=rtcp ports to a pair of relay
sockets) so RTP and RTCP of both directions pass through the relay too;
Content-Length is recomputed after every rewrite (RFC 3261 section 20.14).

RTP (not RTCP) is impaired per direction with a seeded generator: Bernoulli
loss, a random per-packet delay drawn uniformly from [0, jitter] (so packets
reorder as they do with real jitter) and explicit reordering (a packet is held
back by `reorder_hold` seconds so that later packets overtake it). Every
packet draws the same three random numbers whatever the settings, so two runs
with the same seed drop and delay the same packet indexes.

Packets forwarded from A to B are logged (monotonic time sent, RTP header
fields, payload) so the benchmark can rebuild what reached the receiver.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import time
from dataclasses import dataclass, field

LOOP = "127.0.0.1"


@dataclass
class Impairment:
    loss: float = 0.0  # probability 0..1
    jitter: float = 0.0  # seconds, max random extra delay
    reorder: float = 0.0  # probability 0..1 that a packet is held back
    reorder_hold: float = 0.045  # seconds a held-back packet waits
    seed: int = 1


@dataclass
class Counters:
    received: int = 0
    dropped: int = 0
    reordered: int = 0
    forwarded: int = 0


@dataclass
class WirePacket:
    t: float  # time.monotonic() when sent to the receiver
    seq: int
    ts: int
    pt: int
    marker: bool
    payload: bytes


def parse_rtp(data: bytes):
    """RTP fixed header (RFC 3550 section 5.1); None if it is not RTP."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    cc = data[0] & 0x0F
    ext = data[0] & 0x10
    pad = data[0] & 0x20
    off = 12 + 4 * cc
    if ext:
        if len(data) < off + 4:
            return None
        off += 4 + 4 * int.from_bytes(data[off + 2 : off + 4], "big")
    end = len(data)
    if pad and end > off:
        end -= data[-1]
    if off > end:
        return None
    pt = data[1] & 0x7F
    if 72 <= pt <= 79:  # RTCP (RFC 5761 section 4)
        return None
    return (
        int.from_bytes(data[2:4], "big"),
        int.from_bytes(data[4:8], "big"),
        pt,
        bool(data[1] & 0x80),
        data[off:end],
    )


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on an even port and the next one (RTP, RTCP)."""
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((LOOP, 0))
        port = probe.getsockname()[1]
        probe.close()
        port -= port % 2
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            a.bind((LOOP, port))
            b.bind((LOOP, port + 1))
        except OSError:
            a.close()
            b.close()
            continue
        a.setblocking(False)
        b.setblocking(False)
        return a, b
    raise OSError("no free even/odd UDP port pair")


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, on_packet):
        self.on_packet = on_packet

    def datagram_received(self, data, addr):
        self.on_packet(data, addr)


class _Leg:
    """One relay socket pair (RTP + RTCP) facing one endpoint."""

    def __init__(self):
        self.rtp_sock, self.rtcp_sock = _bind_pair()
        self.port = self.rtp_sock.getsockname()[1]
        self.rtp_tr = None
        self.rtcp_tr = None
        self.peer_rtp = None  # where the endpoint this leg faces wants RTP
        self.peer_rtcp = None


class MediaPair:
    """Relay sockets for one m= line: leg_a faces A, leg_b faces B."""

    def __init__(self, relay: "Relay"):
        self.relay = relay
        self.leg_a = _Leg()
        self.leg_b = _Leg()
        seed = relay.imp.seed
        self.rng = {"ab": random.Random(seed * 2 + 1), "ba": random.Random(seed * 2 + 2)}
        self.counters = {"ab": Counters(), "ba": Counters()}

    async def start(self, loop):
        for leg, to_other in ((self.leg_a, "ab"), (self.leg_b, "ba")):
            leg.rtp_tr, _ = await loop.create_datagram_endpoint(
                lambda d=to_other, l=leg: _Proto(lambda data, addr: self._rtp(d, l, data, addr)),
                sock=leg.rtp_sock,
            )
            leg.rtcp_tr, _ = await loop.create_datagram_endpoint(
                lambda d=to_other, l=leg: _Proto(lambda data, addr: self._rtcp(d, l, data, addr)),
                sock=leg.rtcp_sock,
            )

    def close(self):
        for leg in (self.leg_a, self.leg_b):
            for tr in (leg.rtp_tr, leg.rtcp_tr):
                if tr is not None:
                    tr.close()

    def _legs(self, direction):
        return (self.leg_a, self.leg_b) if direction == "ab" else (self.leg_b, self.leg_a)

    def _rtcp(self, direction, leg, data, addr):
        src, dst = self._legs(direction)
        if src.peer_rtcp is None:
            src.peer_rtcp = addr
        if dst.peer_rtcp is not None and dst.rtcp_tr is not None:
            dst.rtcp_tr.sendto(data, dst.peer_rtcp)

    def _rtp(self, direction, leg, data, addr):
        src, dst = self._legs(direction)
        if src.peer_rtp is None:  # latch when the SDP has not named it yet
            src.peer_rtp = addr
        rtp = parse_rtp(data)
        if rtp is None:  # RTCP muxed on the RTP port (RFC 5761): pass it on
            if dst.peer_rtp is not None:
                dst.rtp_tr.sendto(data, dst.peer_rtp)
            return
        imp = self.relay.imp
        rng = self.rng[direction]
        c = self.counters[direction]
        c.received += 1
        r_loss, r_jit, r_reo = rng.random(), rng.random(), rng.random()
        if r_loss < imp.loss:
            c.dropped += 1
            return
        delay = r_jit * imp.jitter
        if r_reo < imp.reorder:
            delay += imp.reorder_hold
            c.reordered += 1
        if delay <= 0:
            self._send(direction, dst, data, rtp)
        else:
            asyncio.get_running_loop().call_later(delay, self._send, direction, dst, data, rtp)

    def _send(self, direction, dst, data, rtp):
        if dst.peer_rtp is None or dst.rtp_tr is None or dst.rtp_tr.is_closing():
            return
        dst.rtp_tr.sendto(data, dst.peer_rtp)
        self.counters[direction].forwarded += 1
        if direction == "ab":
            seq, ts, pt, marker, payload = rtp
            self.relay.wire.append(WirePacket(time.monotonic(), seq, ts, pt, marker, payload))


_CL_RE = re.compile(rb"^(content-length|l)[ \t]*:.*$", re.IGNORECASE | re.MULTILINE)


class Relay:
    """SIP-over-UDP plus RTP relay between A (dials RA) and B (listens on b_port)."""

    def __init__(self, a_port: int, b_port: int, imp: Impairment):
        self.a_port = a_port
        self.b_port = b_port
        self.imp = imp
        self.media: list[MediaPair] = []
        self.wire: list[WirePacket] = []
        self.sip_log: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self._loop = None
        sa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sa.bind((LOOP, 0))
        sb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sb.bind((LOOP, 0))
        self._sock_a, self._sock_b = sa, sb
        self.ra = sa.getsockname()[1]
        self.rb = sb.getsockname()[1]
        self._tr_a = self._tr_b = None
        self._a_addr = (LOOP, a_port)

    async def start(self):
        self._loop = asyncio.get_running_loop()
        self._tr_a, _ = await self._loop.create_datagram_endpoint(
            lambda: _Proto(lambda d, a: self._sip(d, a, "ab")), sock=self._sock_a
        )
        self._tr_b, _ = await self._loop.create_datagram_endpoint(
            lambda: _Proto(lambda d, a: self._sip(d, a, "ba")), sock=self._sock_b
        )

    def close(self):
        for tr in (self._tr_a, self._tr_b):
            if tr is not None:
                tr.close()
        for m in self.media:
            m.close()

    def counters(self, direction="ab") -> Counters:
        total = Counters()
        for m in self.media:
            c = m.counters[direction]
            total.received += c.received
            total.dropped += c.dropped
            total.reordered += c.reordered
            total.forwarded += c.forwarded
        return total

    # -- SIP ---------------------------------------------------------------

    def _rewrite_addrs(self, text: bytes, direction: str) -> bytes:
        if direction == "ab":  # from A to B: A's address becomes RB, RA becomes B
            table = {self.a_port: self.rb, self.ra: self.b_port}
        else:
            table = {self.b_port: self.ra, self.rb: self.a_port}

        def sub(m):
            port = int(m.group(2))
            return m.group(1) + str(table.get(port, port)).encode()

        return re.sub(rb"(127\.0\.0\.1:)(\d+)", sub, text)

    def _rewrite_sdp(self, body: bytes, direction: str) -> bytes:
        lines = body.split(b"\r\n")
        out = []
        m_index = -1
        pair = None
        for line in lines:
            if line.startswith(b"c=IN IP4 "):
                line = b"c=IN IP4 " + LOOP.encode()
            elif line.startswith(b"m="):
                m_index += 1
                parts = line.split(b" ")
                pair = None
                if parts[0] == b"m=audio" and len(parts) > 1 and parts[1].isdigit():
                    while len(self.media) <= m_index:
                        mp = MediaPair(self)
                        self.media.append(mp)
                        asyncio.ensure_future(mp.start(self._loop))
                    pair = self.media[m_index]
                    port = int(parts[1])
                    # the endpoint writing this SDP receives RTP on `port`
                    own = pair.leg_a if direction == "ab" else pair.leg_b
                    other = pair.leg_b if direction == "ab" else pair.leg_a
                    if port != 0:
                        own.peer_rtp = (LOOP, port)
                        own.peer_rtcp = (LOOP, port + 1)
                        parts[1] = str(other.port).encode()
                    line = b" ".join(parts)
            elif line.startswith(b"a=rtcp:") and pair is not None:
                val = line[len(b"a=rtcp:") :].split(b" ")
                if val[0].isdigit():
                    own = pair.leg_a if direction == "ab" else pair.leg_b
                    other = pair.leg_b if direction == "ab" else pair.leg_a
                    own.peer_rtcp = (LOOP, int(val[0]))
                    val[0] = str(other.port + 1).encode()
                    line = b"a=rtcp:" + b" ".join(val)
            elif line.startswith(b"a=candidate") or line.startswith(b"a=ice-"):
                continue  # no ICE through the relay
            out.append(line)
        return b"\r\n".join(out)

    def _sip(self, data: bytes, addr, direction: str):
        if data.strip() == b"":  # keep-alive
            return
        try:
            head, sep, body = data.partition(b"\r\n\r\n")
            if not sep:
                self.errors.append(f"SIP message without header end from {addr}")
                return
            head = self._rewrite_addrs(head, direction)
            if b"application/sdp" in head.lower() and body:
                body = self._rewrite_sdp(body, direction)
            new_len = b"Content-Length: " + str(len(body)).encode()
            if _CL_RE.search(head):
                head = _CL_RE.sub(lambda _m: new_len, head, count=1)
            else:
                head += b"\r\n" + new_len
            msg = head + b"\r\n\r\n" + body
        except Exception as e:  # keep relaying; report it
            self.errors.append(f"rewrite failed: {e!r}")
            msg = data
        first = msg.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        self.sip_log.append((direction, first))
        if direction == "ab":
            self._a_addr = addr
            self._tr_b.sendto(msg, (LOOP, self.b_port))
        else:
            self._tr_a.sendto(msg, self._a_addr)
