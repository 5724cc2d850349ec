#!/usr/bin/env python3
"""Call-quality benchmark: webphone-cli vs baresip as receivers behind one impairment relay.

For every codec x loss x jitter condition, a baresip sender plays generated speech
(espeak-ng) through the relay (tests/quality/relay.py) to

  * ours:      webphone-cli, playback device file:<rec>.wav
  * reference: a second baresip whose player is the aubridge device; the same device is its
               microphone, so its sndfile filter records, in real time, exactly what it played
               (`*-enc.wav`)

with the same impairments and the same seed. Both recordings are aligned to the clean speech
(cross-correlation), cut to it and scored with PESQ (ITU-T P.862: narrowband at 8 kHz for
PCMU, wideband P.862.2 at 16 kHz for G.722 and Opus). At zero loss and jitter the added receive
delay is measured: the relay decodes what it handed to the receiver and places it on the wall
clock; the recording is placed on the same clock (its growth is sampled while the call runs);
the lag between the two is the receiver's delay from packet arrival to playout.

Run through tests/quality/run.sh (it makes the venv with pesq/numpy/scipy).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import correlate, resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent))
from relay import Impairment, Relay  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LOOP = "127.0.0.1"

SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
]


@dataclass
class CodecCase:
    name: str  # label in the report
    cli_codec: str  # webphone-cli `codec` parameter
    baresip_codecs: str  # baresip audio_codecs
    module: str  # baresip codec module
    rate: int  # sender audio rate (ausrc_srate) = receiver player rate
    score_rate: int  # PESQ rate: 8000 -> nb, 16000 -> wb
    pt: int | None  # expected payload type on the wire (None: dynamic)


CODECS = {
    "PCMU": CodecCase("PCMU", "PCMU", "PCMU", "g711.so", 8000, 8000, 0),
    "G722": CodecCase("G.722", "G722", "G722/16000/1", "g722.so", 16000, 16000, 9),
    "opus": CodecCase("Opus", "opus", "opus/48000/2", "opus.so", 48000, 16000, None),
}


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOOP, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_port_range(n: int) -> int:
    for _ in range(100):
        base = free_port() & ~1
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((LOOP, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise OSError("no free port range")


# ---------------------------------------------------------------------------- audio files


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        ch = w.getnchannels()
        width = w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, expected 16")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if ch > 1:
        x = x[: len(x) // ch * ch].reshape(-1, ch).mean(axis=1)
    return x, rate


def write_wav(path: Path, x: np.ndarray, rate: int):
    y = np.clip(np.round(x), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(y.tobytes())


def to_rate(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst:
        return x
    g = np.gcd(src, dst)
    return resample_poly(x, dst // g, src // g)


def make_speech(work: Path, sentences: list[str]) -> dict[int, Path]:
    """espeak-ng sentences joined with pauses; WAVs at 8, 16 and 48 kHz (sox)."""
    parts = []
    for i, s in enumerate(sentences):
        p = work / f"sent{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(p), s], check=True)
        parts.append(p)
    raw_rate = 22050
    with wave.open(str(parts[0]), "rb") as w:
        raw_rate = w.getframerate()
    sil = work / "pause.wav"
    lead = work / "lead.wav"
    tail = work / "tail.wav"
    for p, d in ((sil, 0.4), (lead, 0.6), (tail, 1.5)):
        subprocess.run(
            ["sox", "-n", "-r", str(raw_rate), "-c", "1", "-b", "16", str(p), "trim", "0", str(d)],
            check=True,
        )
    seq = [str(lead)]
    for i, p in enumerate(parts):
        if i:
            seq.append(str(sil))
        seq.append(str(p))
    seq.append(str(tail))
    joined = work / "speech-raw.wav"
    subprocess.run(["sox", *seq, str(joined), "norm", "-3"], check=True)
    out = {}
    for rate in (8000, 16000, 48000):
        p = work / f"speech-{rate}.wav"
        subprocess.run(
            ["sox", str(joined), "-r", str(rate), "-c", "1", "-b", "16", str(p)], check=True
        )
        out[rate] = p
    return out


# ---------------------------------------------------------------------------- processes


class Proc:
    def __init__(self, name: str, argv: list[str], cwd: Path, log: Path, env=None, stdin=False):
        self.name = name
        self.log = log
        self._log_f = open(log, "wb")
        self.p = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=self._log_f if not stdin else subprocess.PIPE,
            stderr=self._log_f if not stdin else subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(timeout=5)
        self._log_f.close()

    def tail(self, n=25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Baresip:
    """baresip 1.0 with ctrl_tcp; `role` is "sender" (aufile source) or "receiver"."""

    def __init__(self, dir: Path, user: str, case: CodecCase, role: str, src: Path | None):
        self.dir = dir
        self.user = user
        (dir / "rec").mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        rtp = free_port_range(20)
        if role == "sender":
            audio = (
                f"audio_source\t\taufile,{src}\n"
                f"audio_player\t\taubridge,sink\n"
                "module\t\t\taufile.so\n"
            )
        else:
            # player and microphone are the same aubridge device: the bridge thread pulls
            # the played audio in real time and hands it to the source, whose encoder-side
            # sndfile filter writes it to *-enc.wav
            audio = (
                "audio_source\t\taubridge,loop\n"
                "audio_player\t\taubridge,loop\n"
            )
            # plc (spandsp, mono only) conceals G.711/G.722; Opus conceals in its decoder,
            # which baresip runs in stereo, where the plc filter refuses to work
            if case.module != "opus.so":
                audio += "module\t\t\tplc.so\n"
        config = f"""poll_method\t\tepoll
sip_listen\t\t{LOOP}:{self.sip_port}
call_local_timeout\t120
call_max_calls\t\t2
{audio}audio_alert\t\taubridge,alert
ausrc_srate\t\t{case.rate}
ausrc_channels\t\t1
auplay_srate\t\t{case.rate}
auplay_channels\t\t1
audio_level\t\tno
rtp_ports\t\t{rtp}-{rtp + 19}
rtp_timeout\t\t0
jitter_buffer_delay\t5-10
net_interface\t\t{LOOP}
net_prefer_ipv6\t\tno
dns_server\t\t{LOOP}:53
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\t{case.module}
module\t\t\taubridge.so
module\t\t\tsndfile.so
module_app\t\taccount.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
snd_path\t\t{dir / "rec"}
ctrl_tcp_listen\t\t{LOOP}:{self.ctrl_port}
"""
        if case.module == "g711.so":
            config = config.replace("module\t\t\tg711.so\nmodule\t\t\tg711.so\n", "module\t\t\tg711.so\n")
        (dir / "config").write_text(config)
        (dir / "accounts").write_text(
            f"<sip:{user}@{LOOP}:{self.sip_port};transport=udp>;regint=0;"
            f"answermode=auto;audio_codecs={case.baresip_codecs}\n"
        )
        (dir / "contacts").write_text("")
        self.proc = Proc(
            f"baresip-{role}", ["baresip", "-f", str(dir)], dir, dir / "baresip.log"
        )
        self.events: list[dict] = []
        self._buf = b""
        self._sock = None
        self._token = 0
        end = time.monotonic() + 15
        while True:
            if not self.proc.alive():
                raise RuntimeError(f"baresip exited while starting:\n{self.proc.tail()}")
            try:
                self._sock = socket.create_connection((LOOP, self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError(f"baresip ctrl_tcp not up:\n{self.proc.tail()}")
                time.sleep(0.1)
        self._sock.setblocking(False)

    def _pump(self):
        while True:
            try:
                d = self._sock.recv(65536)
            except BlockingIOError:
                break
            if not d:
                break
            self._buf += d
        while True:
            colon = self._buf.find(b":")
            if colon <= 0:
                break
            digits = self._buf[:colon].strip()
            if not digits.isdigit():
                self._buf = self._buf[colon + 1 :]
                continue
            n = int(digits)
            if len(self._buf) < colon + 1 + n + 1:
                break
            payload = self._buf[colon + 1 : colon + 1 + n]
            self._buf = self._buf[colon + 2 + n :]
            try:
                self.events.append(json.loads(payload))
            except ValueError:
                pass

    def command(self, line: str):
        cmd, _, params = line.partition(" ")
        self._token += 1
        req = json.dumps({"command": cmd, "params": params, "token": f"q{self._token}"}).encode()
        self._sock.sendall(str(len(req)).encode() + b":" + req + b",")

    def has_event(self, ty: str) -> bool:
        """Non-blocking: reads what ctrl_tcp sent so far."""
        self._pump()
        return any(e.get("type") == ty for e in self.events)

    def wait_event(self, ty: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._pump()
            if any(e.get("type") == ty for e in self.events):
                return True
            if not self.proc.alive():
                return False
            time.sleep(0.02)
        return False

    def files(self, suffix: str) -> list[Path]:
        return sorted((self.dir / "rec").glob(f"*{suffix}"))

    def stop(self):
        try:
            if self._sock:
                self._sock.close()
        except OSError:
            pass
        self.proc.stop()


class Ours:
    """webphone-cli receiving on `sip_port`, auto-answering, recording its playback."""

    def __init__(self, dir: Path, cli: Path, case: CodecCase, silence: Path, rec: Path):
        dir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        home = dir / "home"
        home.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_DATA_HOME=str(home / "data"),
            XDG_CACHE_HOME=str(home / "cache"),
            XDG_STATE_HOME=str(home / "state"),
        )
        params = {
            "username": "recv",
            "register": "0",
            "transport": "0",
            "signalingport": str(self.sip_port),
            "autoaccept": "true",
            "codec": case.cli_codec,
            "audiodevicein": f"file:{silence}",
            "audiodeviceout": f"file:{rec}",
        }
        argv = [str(cli)]
        for k, v in params.items():
            argv += ["-p", f"{k}={v}"]
        self.proc = Proc("webphone-cli", argv, dir, dir / "cli.log", env=env, stdin=True)
        # stdout/stderr go to a pipe read by a thread into the log
        import threading

        def pump():
            with open(dir / "cli.log", "ab") as f:
                for line in self.proc.p.stdout:
                    f.write(line)
                    f.flush()

        threading.Thread(target=pump, daemon=True).start()
        time.sleep(0.8)
        if not self.proc.alive():
            raise RuntimeError(f"webphone-cli exited at start:\n{self.proc.tail()}")

    def stop(self):
        try:
            if self.proc.p.stdin:
                self.proc.p.stdin.write(b"quit\n")
                self.proc.p.stdin.flush()
                self.proc.p.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.proc.stop()


# ---------------------------------------------------------------------------- recording clock


#: Both recorders write whole 20 ms frames (the engine's playout tick, baresip's aubridge
#: ptime). A frame written at time T is taken to start playing at T, as on a sound card
#: with no buffer of its own; the growth probe maps the frame's *last* sample to T.
WRITE_FRAME_S = 0.020


class GrowthProbe:
    """Samples (monotonic time, file size) of a growing WAV while the call runs."""

    def __init__(self):
        self.path: Path | None = None
        self.obs: list[tuple[float, int]] = []

    def poll(self, path: Path | None):
        if path is None:
            return
        if self.path is None:
            self.path = path
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        self.obs.append((time.monotonic(), size))

    def start_time(self, rate: int) -> float | None:
        """Monotonic time at which sample 0 would have been written had the writer run
        without a break: min over observations of t - n/rate (a real-time writer is never
        ahead of its clock, buffering only delays what is seen, so each observation is an
        upper bound). Only the second half of the observations is used: a writer that
        started early and paused (call set-up) would otherwise pull the estimate too early."""
        if self.path is None:
            return None
        off, block = wav_layout(self.path)
        pts = [(t, (s - off) // block) for t, s in self.obs if s - off > 0]
        if len(pts) < 20:
            return None
        cands = [t - n / rate for t, n in pts[len(pts) // 2 :]]
        return min(cands) + WRITE_FRAME_S

    def dump(self, path: Path, rate: int):
        if self.path is None:
            return
        off, block = wav_layout(self.path)
        with open(path, "w") as f:
            f.write("# monotonic_s samples t-samples/rate\n")
            for t, s in self.obs:
                n = max(0, (s - off) // block)
                f.write(f"{t:.4f} {n} {t - n / rate:.4f}\n")


def wav_layout(path: Path) -> tuple[int, int]:
    """(offset of the sample data, bytes per sample frame) of a WAV file."""
    with open(path, "rb") as f:
        head = f.read(4096)
    i = 12
    block = 2
    while i + 8 <= len(head):
        cid = head[i : i + 4]
        size = int.from_bytes(head[i + 4 : i + 8], "little")
        if cid == b"fmt " and i + 22 <= len(head):
            block = max(1, int.from_bytes(head[i + 20 : i + 22], "little"))
        if cid == b"data":
            return i + 8, block
        i += 8 + size + (size & 1)
    return 44, block


# ---------------------------------------------------------------------------- wire decoding


class OpusDec:
    def __init__(self, rate: int):
        name = ctypes.util.find_library("opus") or "libopus.so.0"
        self.lib = ctypes.CDLL(name)
        self.lib.opus_decoder_create.restype = ctypes.c_void_p
        self.lib.opus_decoder_create.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        self.lib.opus_decode.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
            ctypes.POINTER(ctypes.c_int16), ctypes.c_int, ctypes.c_int,
        ]
        self.lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        err = ctypes.c_int(0)
        self.st = self.lib.opus_decoder_create(rate, 1, ctypes.byref(err))
        if err.value != 0 or not self.st:
            raise RuntimeError(f"opus_decoder_create failed: {err.value}")
        self.buf = (ctypes.c_int16 * 5760)()

    def decode(self, payload: bytes) -> np.ndarray:
        n = self.lib.opus_decode(self.st, payload, len(payload), self.buf, 5760, 0)
        if n < 0:
            return np.zeros(0)
        return np.frombuffer(self.buf, dtype=np.int16, count=n).astype(np.float64)

    def close(self):
        self.lib.opus_decoder_destroy(self.st)


def ulaw_decode(payload: bytes) -> np.ndarray:
    u = ~np.frombuffer(payload, dtype=np.uint8)
    sign = u & 0x80
    exp = (u >> 4) & 0x07
    mant = u & 0x0F
    mag = ((mant.astype(np.int32) << 3) + 0x84) << exp
    val = mag - 0x84
    return np.where(sign != 0, -val, val).astype(np.float64)


def wire_timeline(wire, case: CodecCase, rate: int, t_base: float) -> np.ndarray | None:
    """What reached the receiver, decoded, each packet placed at its send time."""
    if not wire:
        return None
    if case.cli_codec == "PCMU":
        dec = ulaw_decode
        src_rate = 8000
        closer = None
    elif case.cli_codec == "opus":
        od = OpusDec(rate)
        dec = od.decode
        src_rate = rate
        closer = od.close
    else:
        return None
    end_t = max(p.t for p in wire) - t_base + 0.2
    out = np.zeros(int(end_t * rate) + rate)
    for p in sorted(wire, key=lambda p: p.t):
        x = to_rate(dec(p.payload), src_rate, rate)
        i = int(round((p.t - t_base) * rate))
        if i < 0 or len(x) == 0:
            continue
        out[i : i + len(x)] = x[: len(out) - i]
    if closer:
        closer()
    return out


def receive_delay(rec: np.ndarray, rec_rate: int, rec_t0: float, wire, case, t_base) -> float | None:
    """Lag (s) of the recording behind the decoded wire audio, both on the monotonic clock."""
    rate = case.score_rate
    w = wire_timeline(wire, case, rate, t_base)
    if w is None or rec_t0 is None:
        return None
    r = to_rate(rec, rec_rate, rate)
    r_line = np.zeros(len(w) + rate * 2)
    i = int(round((rec_t0 - t_base) * rate))
    if i < 0:
        r = r[-i:]
        i = 0
    n = min(len(r), len(r_line) - i)
    r_line[i : i + n] = r[:n]
    w = np.concatenate([w, np.zeros(len(r_line) - len(w))])
    c = correlate(r_line, w, mode="full", method="fft")
    lags = np.arange(-len(w) + 1, len(r_line))
    ok = (lags >= -int(0.05 * rate)) & (lags <= int(0.6 * rate))
    k = np.argmax(np.abs(c[ok]))
    return float(lags[ok][k]) / rate


# ---------------------------------------------------------------------------- scoring


def align(ref: np.ndarray, deg: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """Cut `deg` to where `ref` best matches it (cross-correlation) and to ref's length."""
    c = correlate(deg, ref, mode="full", method="fft")
    lags = np.arange(-len(ref) + 1, len(deg))
    ok = lags >= -int(0.5 * rate)
    lag = int(lags[ok][np.argmax(c[ok])])
    if lag >= 0:
        out = deg[lag : lag + len(ref)]
    else:
        out = np.concatenate([np.zeros(-lag), deg[: len(ref) + lag]])
    if len(out) < len(ref):
        out = np.concatenate([out, np.zeros(len(ref) - len(out))])
    return out, lag


def speech_start(x: np.ndarray, rate: int) -> int:
    frame = rate // 100
    thr = np.max(np.abs(x)) * 0.02
    for i in range(0, len(x) - frame, frame):
        if np.max(np.abs(x[i : i + frame])) > thr:
            return i
    return 0


def count_slips(ref: np.ndarray, aligned: np.ndarray, rate: int) -> int:
    """Time-scale discontinuities in an aligned recording: the local lag of 100 ms blocks of
    speech (found within ±60 ms, kept when they match with correlation > 0.95) changes by
    more than 2 ms between consecutive kept blocks - a frame dropped, inserted or a gap."""
    blk, win = rate // 10, int(0.06 * rate)
    loud = np.sqrt(np.mean(ref**2)) * 0.3
    prev, slips = None, 0
    for i in range(win, len(ref) - blk - win, blk):
        rb = ref[i : i + blk]
        if np.sqrt(np.mean(rb**2)) < loud:
            continue
        c = correlate(aligned[i - win : i + blk + win], rb, mode="valid")
        k = int(np.argmax(c))
        seg = aligned[i - win + k : i - win + k + blk]
        nc = c[k] / (np.sqrt(np.sum(rb**2) * np.sum(seg**2)) + 1e-9)
        if nc < 0.95:
            continue
        lag = k - win
        if prev is not None and abs(lag - prev) > 0.002 * rate:
            slips += 1
        prev = lag
    return slips


def score(ref: np.ndarray, deg: np.ndarray, rate: int) -> tuple[float | None, str]:
    from pesq import pesq

    if len(deg) < rate or np.max(np.abs(deg)) < 1:
        return None, "silent or empty recording"
    aligned, _ = align(ref, deg, rate)
    score.slips = count_slips(ref, aligned, rate)
    # cut the leading silence, keeping 100 ms before the first word
    s = max(0, speech_start(ref, rate) - rate // 10)
    r, d = ref[s:], aligned[s:]
    try:
        return float(pesq(rate, r.astype(np.float32), d.astype(np.float32), "nb" if rate == 8000 else "wb")), ""
    except Exception as e:  # pesq raises on "no utterances detected"
        return None, f"pesq: {e}"


# ---------------------------------------------------------------------------- one call


@dataclass
class Result:
    mos: float | None = None
    delay: float | None = None
    delay_decoder: float | None = None  # baresip only: after its jitter buffer, before aubuf
    slips: int | None = None  # time-scale discontinuities seen in speech
    note: str = ""
    pts: set = field(default_factory=set)
    sent: int = 0
    dropped: int = 0
    reordered: int = 0


async def one_call(receiver: str, case: CodecCase, imp: Impairment, work: Path, speech: dict,
                   cli: Path, talk: float, measure_delay: bool) -> Result:
    res = Result()
    work.mkdir(parents=True, exist_ok=True)
    recv = None
    sender = None
    relay = None
    rec_path = work / "ours-rec.wav"
    probe = GrowthProbe()
    probe_dec = GrowthProbe()  # baresip's decoder output (after jbuf, before the player buffer)
    dec_of = lambda: None  # noqa: E731
    try:
        if receiver == "ours":
            silence = work / "silence.wav"
            write_wav(silence, np.zeros(case.rate), case.rate)
            recv = Ours(work / "ours", cli, case, silence, rec_path)
            rec_of = lambda: rec_path if rec_path.exists() else None  # noqa: E731
        else:
            recv = Baresip(work / "baresip-recv", "recv", case, "receiver", None)
            suffix = os.environ.get("QUALITY_BARESIP_REC", "-enc.wav")
            rec_of = lambda: (recv.files(suffix) or [None])[-1]  # noqa: E731
            dec_of = lambda: (recv.files("-dec.wav") or [None])[-1]  # noqa: E731
        sender = Baresip(work / "baresip-send", "send", case, "sender", speech[case.rate])
        relay = Relay(sender.sip_port, recv.sip_port, imp)
        await relay.start()
        sender.command(f"dial sip:recv@{LOOP}:{relay.ra}")
        t_dial = time.monotonic()
        while not sender.has_event("CALL_ESTABLISHED"):
            await asyncio.sleep(0.02)
            if time.monotonic() - t_dial > 20:
                raise RuntimeError("call not established in 20 s")
        end = time.monotonic() + talk
        while time.monotonic() < end:
            probe.poll(rec_of())
            if measure_delay:
                probe_dec.poll(dec_of())
            await asyncio.sleep(0.004)
        sender.command("hangup")
        t_h = time.monotonic()
        while not sender.has_event("CALL_CLOSED") and time.monotonic() - t_h < 5:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    except Exception as e:
        res.note = f"pipeline: {e}"
    finally:
        if relay:
            relay.close()
        for p in (sender, recv):
            if p:
                p.stop()
    if relay:
        c = relay.counters("ab")
        res.sent, res.dropped, res.reordered = c.received, c.dropped, c.reordered
        res.pts = {p.pt for p in relay.wire}
        if relay.errors:
            res.note += " relay: " + "; ".join(relay.errors[:3])
        with open(work / "sip.txt", "w") as f:
            for d, line in relay.sip_log:
                f.write(f"{d} {line}\n")
    if res.note:
        return res
    rec = probe.path
    if rec is None or not rec.exists():
        res.note = "pipeline: no recording"
        return res
    if case.pt is not None and res.pts and res.pts != {case.pt}:
        res.note = f"pipeline: payload types on the wire {sorted(res.pts)}, expected {case.pt}"
        return res
    x, xr = read_wav(rec)
    ref, rr = read_wav(speech[case.score_rate])
    deg = to_rate(x, xr, case.score_rate)
    write_wav(work / f"{receiver}-deg-{case.score_rate}.wav", deg, case.score_rate)
    score.slips = None
    res.mos, why = score(ref, deg, case.score_rate)
    res.slips = score.slips
    if why:
        res.note = why
    if measure_delay and relay is not None:
        t0 = probe.start_time(xr)
        probe.dump(work / "growth.txt", xr)
        t_base = min(p.t for p in relay.wire) - 1.0 if relay.wire else 0.0
        res.delay = receive_delay(x, xr, t0, relay.wire, case, t_base)
        if probe_dec.path is not None:
            xd, xdr = read_wav(probe_dec.path)
            res.delay_decoder = receive_delay(
                xd, xdr, probe_dec.start_time(xdr), relay.wire, case, t_base
            )
    return res


# ---------------------------------------------------------------------------- campaign


def fmt(v, f="{:.2f}"):
    return "—" if v is None else f.format(v)


def fmt_delay(r) -> str:
    if r.delay is None:
        return "—"
    s = f"{r.delay * 1000:.0f}"
    if r.delay_decoder is not None:
        s += f" (jb {r.delay_decoder * 1000:.0f})"
    return s


def machine_note() -> str:
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    load = os.getloadavg()
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}); "
            f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; "
            f"benchmark processes at nice {os.nice(0)}")


async def campaign(args) -> int:
    cli = Path(args.cli).resolve()
    if not cli.is_file():
        print(f"webphone-cli not found at {cli}", file=sys.stderr)
        return 2
    for tool in ("baresip", "espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"{tool} not installed (scripts/setup-system.sh installs it)", file=sys.stderr)
            return 2
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="wp-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    sentences = SENTENCES[:1] if args.smoke else SENTENCES
    speech = make_speech(work, sentences)
    dur = len(read_wav(speech[8000])[0]) / 8000
    talk = dur + 1.0
    codecs = [CODECS[c] for c in args.codecs.split(",")]
    losses = [float(v) for v in args.loss.split(",")]
    jitters = [float(v) for v in args.jitter.split(",")]
    conds = [(l, j, args.reorder if j > 0 else 0.0) for l in losses for j in jitters]
    if args.reorder_only > 0:
        conds.append((0.0, 0.0, args.reorder_only))
    started = datetime.datetime.now(datetime.timezone.utc)
    note = machine_note()
    print(f"work dir {work}; speech {dur:.1f} s; {note}", flush=True)
    rows = []
    broken = []
    done = {}
    rows_file = work / "rows.jsonl"
    if args.resume and rows_file.exists():
        for line in rows_file.read_text().splitlines():
            d = json.loads(line)
            done[(d["codec"], d["loss"], d["jitter"], d["reorder"])] = d
    for case in codecs:
        for loss, jit, reo in conds:
            key = (case.cli_codec, loss, jit, reo)
            if key in done:
                d = done[key]
                o, b = Result(**d["ours"]), Result(**d["baresip"])
                print(f"{case.name:6} loss {loss:>4g}% jitter {jit:>3g} ms reorder {reo:>3g}%  "
                      f"(from the interrupted run) ours {fmt(o.mos)} baresip {fmt(b.mos)}", flush=True)
                rows.append((case, loss, jit, reo, o, b))
                continue
            imp = Impairment(loss=loss / 100, jitter=jit / 1000, reorder=reo / 100, seed=args.seed)
            cond_dir = work / f"{case.cli_codec}-l{loss:g}-j{jit:g}-r{reo:g}"
            measure = loss == 0 and jit == 0 and reo == 0
            out = {}
            for receiver in ("ours", "baresip"):
                r = await one_call(receiver, case, imp, cond_dir / receiver, speech, cli, talk, measure)
                out[receiver] = r
                if r.note.startswith("pipeline") or r.mos is None:
                    broken.append(f"{case.name} l{loss:g} j{jit:g} r{reo:g} {receiver}: {r.note}")
            o, b = out["ours"], out["baresip"]
            line = (f"{case.name:6} loss {loss:>4g}% jitter {jit:>3g} ms reorder {reo:>3g}%  "
                    f"ours {fmt(o.mos)}  baresip {fmt(b.mos)}  "
                    f"delay ours {fmt_delay(o)} ms baresip {fmt_delay(b)} ms  "
                    f"slips {o.slips}/{b.slips}  "
                    f"(sent {o.sent}/{b.sent}, dropped {o.dropped}/{b.dropped}, held {o.reordered}/{b.reordered}) "
                    f"{o.note} {b.note}")
            print(line, flush=True)
            rows.append((case, loss, jit, reo, o, b))
            with open(rows_file, "a") as f:
                plain = lambda r: {k: (sorted(v) if isinstance(v, set) else v)  # noqa: E731
                                   for k, v in r.__dict__.items()}
                f.write(json.dumps({"codec": case.cli_codec, "loss": loss, "jitter": jit,
                                    "reorder": reo, "ours": plain(o), "baresip": plain(b)}) + "\n")
    finished = datetime.datetime.now(datetime.timezone.utc)
    end_load = os.getloadavg()
    note += f", at the end {end_load[0]:.2f} / {end_load[1]:.2f} / {end_load[2]:.2f}"
    if args.report:
        write_report(Path(args.report), rows, started, finished, note, args, dur)
        print(f"report written to {args.report}")
    if broken:
        print("pipeline problems:\n  " + "\n  ".join(broken), file=sys.stderr)
        return 1
    return 0


def write_report(path: Path, rows, started, finished, note, args, dur):
    cmd = "tests/quality/run.sh" + ("" if not args.extra_cmd else " " + args.extra_cmd)
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "unknown"
    built = datetime.datetime.fromtimestamp(Path(args.cli).stat().st_mtime, datetime.timezone.utc)
    L = []
    L.append("# Call-quality benchmark")
    L.append("")
    L.append("<!-- generated by tests/quality/run.sh; the text between the GENERATED markers is "
             "rewritten on every full run -->")
    L.append("<!-- GENERATED:BEGIN -->")
    L.append("")
    L.append(f"Run {started:%Y-%m-%d %H:%M}–{finished:%H:%M} UTC with `{cmd}` "
             f"(seed {args.seed}, {dur:.1f} s of espeak-ng speech per call; checkout at {head}, "
             f"webphone-cli built {built:%H:%M} UTC).")
    L.append("")
    L.append(f"Machine: {note}. The machine was shared with other builds while this ran, so "
             "timing-sensitive numbers (delay, jitter handling) carry that noise.")
    L.append("")
    L.append("MOS-LQO from PESQ: P.862 narrowband at 8 kHz for PCMU, P.862.2 wideband at 16 kHz "
             "for G.722 and Opus (a wideband MOS is not comparable with a narrowband one). "
             "\"ours\" = webphone-cli receiving, \"baresip\" = baresip 1.0 receiving "
             "(jitter_buffer_delay 5-10, plc module). Same sender, relay, impairments and seed "
             "for both. Delay = time from a packet reaching the receiver to its audio being "
             "played, measured at zero loss and jitter (— where not measured); for baresip the "
             "figure in brackets is the part before its player buffer (decoder output, after "
             "its jitter buffer). Slips = time-scale discontinuities found in the recorded speech "
             "(100 ms blocks whose lag against the clean speech jumps by more than 2 ms: a "
             "frame dropped or inserted, or a gap); ⚠ marks rows where ours scores more than "
             "0.05 below baresip.")
    L.append("")
    L.append("| codec | loss % | jitter ms | reorder % | ours MOS | baresip MOS | Δ | "
             "delay ours ms | delay baresip ms | slips ours / baresip | "
             "packets sent / dropped / held back (ours · baresip) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for case, loss, jit, reo, o, b in rows:
        d = None if o.mos is None or b.mos is None else o.mos - b.mos
        flag = "" if d is None or d >= -0.05 else " ⚠"
        L.append(f"| {case.name} | {loss:g} | {jit:g} | {reo:g} | {fmt(o.mos)} | {fmt(b.mos)} | "
                 f"{fmt(d, '{:+.2f}')}{flag} | {fmt_delay(o)} | {fmt_delay(b)} | "
                 f"{fmt(o.slips, '{}')} / {fmt(b.slips, '{}')} | "
                 f"{o.sent}/{o.dropped}/{o.reordered} · {b.sent}/{b.dropped}/{b.reordered} |")
    notes = [f"{c.name} l{l:g} j{j:g} r{r:g}: ours {o.note.strip()} baresip {b.note.strip()}"
             for c, l, j, r, o, b in rows if o.note.strip() or b.note.strip()]
    if notes:
        L.append("")
        L.append("Notes from the run:")
        L.append("")
        for n in notes:
            L.append(f"- {n}")
    L.append("")
    L.append("<!-- GENERATED:END -->")
    gen = "\n".join(L) + "\n"
    old = path.read_text() if path.exists() else ""
    b, e = "<!-- GENERATED:BEGIN -->", "<!-- GENERATED:END -->"
    head = "# Call-quality benchmark\n\n<!-- generated by tests/quality/run.sh; the text between the GENERATED markers is rewritten on every full run -->\n"
    if b in old and e in old:
        pre = old[: old.index(b)]
        post = old[old.index(e) + len(e) :]
        body = gen[gen.index(b) : gen.index(e) + len(e)]
        path.write_text(pre + body + post)
    else:
        path.write_text(gen if not old else gen + "\n" + old)
    _ = head


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=str(ROOT / "target" / "release" / "webphone-cli"))
    ap.add_argument("--codecs", default="PCMU,G722,opus")
    ap.add_argument("--loss", default="0,3,10", help="percent")
    ap.add_argument("--jitter", default="0,30,60", help="ms")
    ap.add_argument("--reorder", type=float, default=1.0,
                    help="percent of packets held back 45 ms, on top of jitter (jitter > 0 only)")
    ap.add_argument("--reorder-only", type=float, default=5.0,
                    help="extra condition per codec: no loss/jitter, this percent held back (0 = none)")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--smoke", action="store_true", help="one short sentence")
    ap.add_argument("--work-dir")
    ap.add_argument("--resume", action="store_true",
                    help="keep the rows already measured in WORK_DIR/rows.jsonl")
    ap.add_argument("--report", help="write the markdown report here")
    ap.add_argument("--extra-cmd", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    return asyncio.run(campaign(args))


if __name__ == "__main__":
    sys.exit(main())
