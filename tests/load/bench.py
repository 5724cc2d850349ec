#!/usr/bin/env python3
"""Side-by-side load benchmark: SIPp calls with RTP into webphone-cli, baresip
and linphonec (each auto-answering, peer to peer on 127.0.0.1).

Run through tests/load/run.sh (it builds webphone-cli and passes the options).
Standard library only. Every process is started here and stopped through its
own handle (pid), never by name.

Measurements per user agent (UA), all on loopback:
  idle RSS       RSS 3 s after start (and after REGISTER to Kamailio, if --kamailio)
  ramp           N concurrent calls (N = 1, 2, 4, ...): SIPp places N calls, streams
                 a G.711 A-law tone to each, holds them; the UA's RTP back to SIPp is
                 captured (dumpcap, headers only) and checked per call. The level is
                 "clean" when every call succeeded and every call's UA->SIPp RTP stream
                 has loss <= 1 % (RTP sequence numbers), carries >= 95 % of the packets
                 expected for the time the call was up (20 ms packets) and has no gap
                 longer than 100 ms. CPU and RSS are sampled across the plateau (all N
                 calls up) from /proc/<pid>.
  latency        INVITE -> 200 OK at a fixed call rate, from a capture of the SIP
                 packets (microsecond timestamps), p50 / p99.
  growth         RSS before and after M sequential short calls (M = 10,000 in the full run).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

PTIME_S = 0.020
CLEAN_MAX_LOSS = 0.01
CLEAN_MIN_SHARE = 0.95
CLEAN_MAX_GAP_S = 0.100
# SIPp's media ports: [auto_media_port] walks MEDIA_BASE .. MEDIA_BASE + 10000; the UAs'
# RTP ranges stay clear of it (baresip 20000-29999, linphonec 12100-19999, webphone-cli
# above its ephemeral signalling port).
MEDIA_BASE = 2000


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port(kind=socket.SOCK_DGRAM, even=False):
    while True:
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if not even or p % 2 == 0:
            return p


def free_udp_tcp_port():
    """A port free on both UDP and TCP (SIP listens on both)."""
    for _ in range(200):
        p = free_port()
        try:
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.bind(("127.0.0.1", p))
            t.close()
            return p
        except OSError:
            continue
    raise RuntimeError("no free UDP+TCP port")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- /proc sampling

def proc_cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def proc_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB
    except OSError:
        return None


def alive(pid):
    return proc_cpu_ticks(pid) is not None


# ---------------------------------------------------------------- pcap reading

def read_pcap(path):
    """Yields (ts, src_port, dst_port, udp_payload_prefix) for UDP/IPv4 packets
    of a classic pcap file (link type loopback/ethernet/linux cooked)."""
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            return
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        else:
            endian = ">"
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        linktype = struct.unpack(endian + "I", hdr[20:24])[0]
        l2 = {1: 14, 113: 16, 0: 4, 276: 20}.get(linktype, 14)
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, incl, _orig = rec.unpack(h)
            data = f.read(incl)
            ts = sec + frac / (1e9 if nano else 1e6)
            ip = data[l2:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            udp = ip[ihl:]
            if len(udp) < 8:
                continue
            sport, dport = struct.unpack("!HH", udp[:4])
            yield ts, sport, dport, udp[8:]


def rtp_streams(pcap, dst_lo, dst_hi):
    """Per UA source port: RTP packets sent to SIPp's media ports."""
    streams = {}
    for ts, sp, dp, pl in read_pcap(pcap):
        if not (dst_lo <= dp <= dst_hi) or len(pl) < 12 or pl[0] >> 6 != 2:
            continue
        pt = pl[1] & 0x7F
        if pt >= 72 and pt <= 76:  # RTCP
            continue
        seq = struct.unpack("!H", pl[2:4])[0]
        # one stream per UA socket: the UA may move to SIPp's RTP source port
        # (symmetric RTP) after its first packets, so the destination is not a key
        st = streams.setdefault(sp, {"n": 0, "first": ts, "last": ts, "seqs": [], "gap": 0.0})
        st["gap"] = max(st["gap"], ts - st["last"])
        st["last"] = ts
        st["n"] += 1
        st["seqs"].append(seq)
    out = []
    for key, st in streams.items():
        # unwrap sequence numbers
        ext, prev, base = [], None, 0
        for s in st["seqs"]:
            if prev is not None and s < prev and prev - s > 30000:
                base += 65536
            ext.append(base + s)
            prev = s
        span = max(ext) - min(ext) + 1
        lost = max(0, span - len(set(ext)))
        out.append({
            "ports": key, "packets": st["n"], "lost": lost, "span": span,
            "loss": lost / span if span else 1.0, "dur": st["last"] - st["first"],
            "max_gap": st["gap"],
        })
    return out


def sip_latencies(pcap, ua_port):
    """INVITE (first transmission) -> 200 OK (INVITE) per Call-ID, seconds."""
    inv, ok = {}, {}
    for ts, sp, dp, pl in read_pcap(pcap):
        if dp != ua_port and sp != ua_port:
            continue
        text = pl[:1500].decode("latin-1", "replace")
        cid = None
        cseq = ""
        for line in text.split("\r\n")[1:40]:
            low = line.lower()
            if low.startswith("call-id:") or low.startswith("i:"):
                cid = line.split(":", 1)[1].strip()
            elif low.startswith("cseq:"):
                cseq = line.split(":", 1)[1].strip().upper()
        if not cid:
            continue
        if dp == ua_port and text.startswith("INVITE "):
            inv.setdefault(cid, ts)
        elif sp == ua_port and text.startswith("SIP/2.0 200") and cseq.endswith("INVITE"):
            ok.setdefault(cid, ts)
    return [ok[c] - inv[c] for c in ok if c in inv and ok[c] >= inv[c]]


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
    return v[k]


# ---------------------------------------------------------------- captures

class Capture:
    def __init__(self, path, bpf, snaplen):
        self.path = path
        self.proc = subprocess.Popen(
            ["dumpcap", "-q", "-i", "lo", "-s", str(snaplen), "-B", "64", "-f", bpf,
             "-P", "-w", path],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until the file has its header
        end = time.time() + 10
        while time.time() < end:
            if os.path.exists(path) and os.path.getsize(path) >= 24:
                break
            time.sleep(0.05)
        time.sleep(0.3)

    def stop(self):
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.path


# ---------------------------------------------------------------- user agents

class UA:
    name = "?"
    cmd_label = ""

    def __init__(self, work):
        self.work = work
        self.port = free_udp_tcp_port()
        self.proc = None
        self.version = ""

    def stop(self, grace=5):
        """Quit through stdin; killed after `grace` seconds (tests/load/link_order.py gives
        valgrind longer, to write its output)."""
        if self.proc and self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.write(self.quit_cmd())
                    self.proc.stdin.flush()
                    self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def quit_cmd(self):
        return b"quit\n"

    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def target(self):
        return f"127.0.0.1:{self.port}"

    def service(self):
        return "load"


class Webphone(UA):
    name = "webphone-cli"

    def __init__(self, work, binary, kam=None, wrap=()):
        """`wrap`: a command to run the binary under (tests/load/link_order.py: valgrind)."""
        super().__init__(work)
        home = os.path.join(work, "home")
        os.makedirs(home, exist_ok=True)
        params = {
            "username": "load" if not kam else "1001",
            "register": "0",
            "transport": "0",
            "signalingport": str(self.port),
            "autoaccept": "true",
            "audiodevicein": "null",
            "audiodeviceout": "null",
            "loglevel": "1",
        }
        if kam:
            params.update({"serveraddress": kam, "register": "1", "password": "pass1001"})
        args = list(wrap) + [binary]
        for k, v in params.items():
            args += ["-p", f"{k}={v}"]
        self.cmd_label = " ".join(args[len(wrap) + 1:]).replace("password=pass1001", "password=***")
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home + "/config",
                   XDG_DATA_HOME=home + "/data", XDG_CACHE_HOME=home + "/cache")
        self.out = open(os.path.join(work, "stdout.log"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=self.out,
                                     stderr=open(os.path.join(work, "stderr.log"), "wb"),
                                     env=env, cwd=work)
        self.version = subprocess.run([binary, "--version"], capture_output=True,
                                      text=True).stdout.strip() or "webphone-cli"


class Baresip(UA):
    name = "baresip"

    def __init__(self, work, kam=None):
        super().__init__(work)
        cfgdir = os.path.join(work, "cfg")
        os.makedirs(cfgdir, exist_ok=True)
        tpl = open(os.path.join(HERE, "baresip.config.in")).read()
        cfg = (tpl.replace("@PORT@", str(self.port))
               .replace("@RTP_LO@", "20000").replace("@RTP_HI@", str(29999)))
        open(os.path.join(cfgdir, "config"), "w").write(cfg)
        acc = "<sip:load@127.0.0.1>;regint=0;answermode=auto;audio_codecs=PCMA,PCMU\n"
        if kam:
            acc = (f"<sip:1002@127.0.0.1;transport=udp>;outbound=\"sip:{kam};transport=udp\";"
                   "auth_pass=pass1002;answermode=auto;regint=300;audio_codecs=PCMA,PCMU\n")
        open(os.path.join(cfgdir, "accounts"), "w").write(acc)
        open(os.path.join(cfgdir, "contacts"), "w").write("")
        self.cmd_label = f"baresip -f <dir> (tests/load/baresip.config.in, answermode=auto)"
        self.proc = subprocess.Popen(["baresip", "-f", cfgdir], stdin=subprocess.PIPE,
                                     stdout=open(os.path.join(work, "stdout.log"), "wb"),
                                     stderr=subprocess.STDOUT, cwd=work)
        self.version = "baresip " + (subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "baresip-core"],
            capture_output=True, text=True).stdout.strip())

    def quit_cmd(self):
        return b"q"


class Linphone(UA):
    name = "linphonec"

    def __init__(self, work, kam=None):
        super().__init__(work)
        home = os.path.join(work, "home")
        os.makedirs(os.path.join(home, ".local/share/linphone"), exist_ok=True)
        tpl = open(os.path.join(HERE, "linphonerc.in")).read()
        rc = tpl.replace("@PORT@", str(self.port))
        if kam:
            rc += open(os.path.join(HERE, "linphonerc-register.in")).read().replace("@KAM@", kam)
        rcpath = os.path.join(work, "linphonerc")
        open(rcpath, "w").write(rc)
        self.cmd_label = "linphonec -c <rc> -a (tests/load/linphonerc.in, soundcard use files)"
        self.proc = subprocess.Popen(["linphonec", "-c", rcpath, "-a"], stdin=subprocess.PIPE,
                                     stdout=open(os.path.join(work, "stdout.log"), "wb"),
                                     stderr=subprocess.STDOUT, cwd=work,
                                     env=dict(os.environ, HOME=home))
        # without a file to play, linphonec's "files" sound card sends no RTP at all
        tone = os.path.join(work, "tone1k-8k.wav")
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", tone, "synth", "300",
                        "sine", "1000", "vol", "0.5"], check=True)
        time.sleep(1.0)
        try:
            self.proc.stdin.write(b"soundcard use files\nplay " + tone.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        self.version = "linphonec " + (subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "linphone-cli"],
            capture_output=True, text=True).stdout.strip())

    def quit_cmd(self):
        return b"quit\n"


# ---------------------------------------------------------------- SIPp runs

class SippRun:
    def __init__(self, work, tag, target, service, scenario, calls, rate, limit, hold_ms, media_port):
        self.dir = os.path.join(work, f"sipp-{tag}")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.media_port = media_port
        args = ["sipp", target, "-sf", scenario, "-s", service, "-i", "127.0.0.1",
                "-p", str(self.port), "-mi", "127.0.0.1", "-mp", str(media_port),
                "-m", str(calls), "-r", str(rate), "-l", str(limit), "-d", str(hold_ms),
                "-nostdin", "-trace_stat", "-fd", "1", "-trace_err",
                "-max_socket", "60000", "-timeout_error", "-recv_timeout", "32000"]
        self.calls = calls
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "sipp.stderr"), "wb"))

    def wait(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # SIPp: stop calling, end cleanly
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        st = self.stats()
        # The stat CSV is written once a second and SIPp may exit before the line that counts
        # the last calls; its exit status 0 means every one of the -m calls succeeded.
        if self.proc.returncode == 0 and st["failed"] == 0:
            st["ok"] = self.calls
        return st

    def stats(self):
        """Successful / failed calls from the last line of SIPp's stat CSV."""
        for fn in os.listdir(self.dir):
            if fn.endswith(".csv") and "_rtt" not in fn:
                lines = open(os.path.join(self.dir, fn), encoding="latin-1").read().splitlines()
                if len(lines) >= 2:
                    head = lines[0].split(";")
                    last = lines[-1].split(";")
                    row = dict(zip(head, last))
                    return {"ok": int(row.get("SuccessfulCall(C)", 0) or 0),
                            "failed": int(row.get("FailedCall(C)", 0) or 0)}
        return {"ok": 0, "failed": -1}

    def unexpected_responses(self):
        """Counts of the SIP responses that made SIPp abort calls (e.g. '486 Busy Here')."""
        import re
        counts = {}
        for fn in os.listdir(self.dir):
            if fn.endswith("_errors.log"):
                txt = open(os.path.join(self.dir, fn), encoding="latin-1").read()
                for m in re.finditer(r"received 'SIP/2\.0 (\d{3} [^\r\n']*)", txt):
                    counts[m.group(1).strip()] = counts.get(m.group(1).strip(), 0) + 1
        return counts

    def errors(self, n=3):
        out = []
        for fn in os.listdir(self.dir):
            if fn.endswith("_errors.log"):
                txt = open(os.path.join(self.dir, fn), encoding="latin-1").read()
                for ln in txt.splitlines():
                    if "Aborting" in ln or "failed" in ln.lower() or "timeout" in ln.lower():
                        out.append(ln.strip()[:160])
        return out[:n]


def call_scenario(work):
    """uac_rtp.xml in `work`, streaming a 2 s A-law 1 kHz tone made there with sox."""
    tone = os.path.join(work, "tone1k.al")
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw", tone,
                    "synth", "2", "sine", "1000", "vol", "0.5"], check=True)
    scenario = os.path.join(work, "uac_rtp.xml")
    with open(os.path.join(HERE, "uac_rtp.xml")) as f:
        text = f.read().replace("@TONE@", tone)
    with open(scenario, "w") as f:
        f.write(text)
    return scenario


# ---------------------------------------------------------------- phases

def idle_rss(ua, settle=3.0):
    time.sleep(settle)
    return proc_rss_kb(ua.pid())


def run_level(ua, work, scenario, n, rate, plateau_s):
    """N concurrent calls; returns the level's measurements."""
    ramp_s = n / rate
    hold_ms = int((ramp_s + plateau_s + 1.0) * 1000)
    media_port = MEDIA_BASE
    rss0 = proc_rss_kb(ua.pid())
    cap = Capture(os.path.join(work, f"rtp-{n}.pcap"),
                  f"udp and src host 127.0.0.1 and dst portrange {media_port}-{media_port + 4 * n + 10}"
                  f" and not src port {media_port}", 64)
    run = SippRun(work, f"ramp{n}", ua.target(), ua.service(), scenario, n, rate, n, hold_ms,
                  media_port)
    # plateau: all calls placed (+1 s for answers), until the first call ends
    time.sleep(ramp_s + 1.0)
    t0, c0 = time.time(), proc_cpu_ticks(ua.pid())
    rss_samples = []
    while time.time() - t0 < plateau_s:
        r = proc_rss_kb(ua.pid())
        if r:
            rss_samples.append(r)
        time.sleep(0.25)
    t1, c1 = time.time(), proc_cpu_ticks(ua.pid())
    st = run.wait(hold_ms / 1000 + ramp_s + 60)
    cap.stop()
    streams = rtp_streams(cap.path, media_port, media_port + 4 * n + 10)
    bad = []
    for s in streams:
        expected = s["dur"] / PTIME_S + 1
        if s["loss"] > CLEAN_MAX_LOSS or s["max_gap"] > CLEAN_MAX_GAP_S:
            bad.append(s)
        elif s["packets"] < CLEAN_MIN_SHARE * (hold_ms / 1000.0) / PTIME_S * 0.9:
            # the stream must cover (nearly) the whole time the call was up
            bad.append(s)
        del expected
    crashed = not ua.running()
    clean = (st["ok"] == n and st["failed"] == 0 and len(streams) >= n and not bad and not crashed)
    cpu = None
    if c0 is not None and c1 is not None and t1 > t0:
        cpu = (c1 - c0) / CLK_TCK / (t1 - t0) * 100.0  # % of one core
    rss = max(rss_samples) if rss_samples else None
    res = {
        "n": n, "ok": st["ok"], "failed": st["failed"], "streams": len(streams), "bad": len(bad),
        "cpu_pct": cpu, "rss_kb": rss, "rss0_kb": rss0, "crashed": crashed, "clean": clean,
        "load": loadavg(), "errors": run.errors(), "responses": run.unexpected_responses(),
        "worst_loss": max((s["loss"] for s in streams), default=None),
        "worst_gap_ms": max((s["max_gap"] for s in streams), default=0) * 1000,
    }
    log(f"{ua.name} level {n}: {json.dumps(res)}")
    return res


def run_latency(ua, work, scenario, calls, rate):
    cap = Capture(os.path.join(work, "sip-latency.pcap"), f"udp port {ua.port}", 2000)
    run = SippRun(work, "latency", ua.target(), ua.service(), scenario, calls, rate, 1, 0, MEDIA_BASE)
    st = run.wait(calls / rate + 60)
    cap.stop()
    lat = sip_latencies(cap.path, ua.port)
    res = {"calls": calls, "rate": rate, "ok": st["ok"], "failed": st["failed"],
           "p50_ms": pct(lat, 50) * 1000 if lat else None,
           "p99_ms": pct(lat, 99) * 1000 if lat else None, "samples": len(lat),
           "load": loadavg(), "errors": run.errors()}
    log(f"{ua.name} latency: {json.dumps(res)}")
    return res


# A finished transaction stays in memory for 64*T1 = 32 s over UDP (RFC 3261 §17.2.2 Timer J,
# RFC 6026 §8.7 Timer L), so a steady call rate keeps a steady number of them alive: about
# 32 s worth of calls. A growth run that starts before that level is reached counts the
# level itself (about 4 MiB for webphone-cli at 50 calls/s) as growth. Full runs warm up for
# at least this long at the growth rate first.
STEADY_STATE_S = 40


def cfg_warmup(calls, rate):
    """Warm-up calls before a growth run of `calls` calls at `rate` calls/s."""
    n = max(5, min(100, calls // 100))
    if calls >= 1000:
        n = max(n, int(rate * STEADY_STATE_S))
    return n


# Complete calls (set-up, 1 s of media, tear-down), two at a time, before the ramp, so that
# what happens once in a process's life (code first run, a first history entry, tables built
# on first use, the first time two calls overlap) is in the 1-call baseline of every UA
# alike, not counted as the cost of further calls.
RAMP_WARMUP_CALLS = 4
RAMP_WARMUP_AT_ONCE = 2
RAMP_WARMUP_HOLD_MS = 1000


def run_warmup(ua, work, scenario, calls, rate, hold_ms=0, name="warmup", at_once=1):
    """`calls` calls, `at_once` at a time, or as many as a UA slower than `rate` answers in
    twice the time they would take at `rate` (plus a minute); returns SIPp's counts."""
    w = SippRun(work, name, ua.target(), ua.service(), scenario, calls, rate, at_once, hold_ms,
                MEDIA_BASE)
    st = w.wait(2 * calls * (1 / rate + hold_ms / 1000) + 60)
    log(f"{ua.name} {name}: {st['ok']} ok, {st['failed']} failed")
    return st


def run_growth(ua, work, scenario, calls, rate, rounds=1):
    """RSS before and after `calls` sequential calls; with rounds > 1 the same number of
    calls runs again (same process) and each later round's growth is kept too: growth that
    stops after the first round is the allocator's high-water mark, growth that goes on
    round after round is a leak."""
    run_warmup(ua, work, scenario, cfg_warmup(calls, rate), rate)
    time.sleep(2)
    before = proc_rss_kb(ua.pid())
    run = SippRun(work, "growth", ua.target(), ua.service(), scenario, calls, rate, 1, 0, MEDIA_BASE)
    st = run.wait(calls / rate * 3 + 120)
    time.sleep(2)
    after = proc_rss_kb(ua.pid())
    res = {"calls": calls, "rate": rate, "ok": st["ok"], "failed": st["failed"],
           "rss_before_kb": before, "rss_after_kb": after,
           "growth_kb": (after - before) if (after and before) else None,
           "crashed": not ua.running(), "load": loadavg(), "errors": run.errors()}
    later = []
    prev = after
    for i in range(2, rounds + 1):
        if not ua.running():
            break
        r = SippRun(work, f"growth{i}", ua.target(), ua.service(), scenario, calls, rate, 1, 0, MEDIA_BASE)
        rst = r.wait(calls / rate * 3 + 120)
        time.sleep(2)
        now = proc_rss_kb(ua.pid())
        later.append({"ok": rst["ok"], "failed": rst["failed"], "rss_after_kb": now,
                      "growth_kb": (now - prev) if (now and prev) else None})
        prev = now
    if later:
        res["later_rounds"] = later
        res["crashed"] = not ua.running()
    log(f"{ua.name} growth: {json.dumps(res)}")
    return res


def later_rounds_text(g):
    """ "; then +X, +Y KiB over further rounds" for a growth result with later rounds."""
    rounds = g.get("later_rounds") or []
    if not rounds:
        return ""
    parts = [f"{fmt(x['growth_kb'], '{:+.0f}')} KiB ({x['ok']} ok, {x['failed']} failed)" for x in rounds]
    return ("; then " + ", ".join(parts) + " over the next round" + ("s" if len(rounds) > 1 else "")
            + " of as many calls in the same process")


def bench_ua(make, work, scenario, cfg):
    res = {"name": None}
    ua = make(work)
    res["name"] = ua.name
    res["version"] = ua.version
    res["cmd"] = ua.cmd_label
    res["load_start"] = loadavg()
    try:
        res["idle_kb"] = idle_rss(ua)
        if not ua.running():
            res["error"] = "exited at start (see " + work + ")"
            return res
        res["ramp_warmup"] = run_warmup(ua, work, scenario, RAMP_WARMUP_CALLS, cfg["ramp_rate"],
                                        RAMP_WARMUP_HOLD_MS, "ramp-warmup", RAMP_WARMUP_AT_ONCE)
        time.sleep(2)
        levels = []
        for n in cfg["levels"]:
            if not ua.running():
                break
            lv = run_level(ua, work, scenario, n, cfg["ramp_rate"], cfg["plateau_s"])
            levels.append(lv)
            time.sleep(2)
            if not lv["clean"]:
                break
        res["levels"] = levels
        if not levels or not levels[0]["ok"]:
            res["error"] = "no successful call at level 1"
            return res
        if ua.running():
            res["latency"] = run_latency(ua, work, scenario, cfg["lat_calls"], cfg["lat_rate"])
        if ua.running():
            res["growth"] = run_growth(ua, work, scenario, cfg["growth_calls"], cfg["growth_rate"],
                                       cfg.get("growth_rounds", 1))
        res["alive_at_end"] = ua.running()
    finally:
        ua.stop()
        res["load_end"] = loadavg()
    return res


def bench_registered(make, work, kam):
    """Idle RSS 3 s after a successful REGISTER to Kamailio (seen in Kamailio's log)."""
    ua = make(work, kam.addr())
    user = {"webphone-cli": "1001", "baresip": "1002", "linphonec": "1003"}[ua.name]
    try:
        end = time.time() + 15
        while time.time() < end and ua.running() and not kam.registered(user):
            time.sleep(0.2)
        ok = ua.running() and kam.registered(user)
        time.sleep(3)
        return {"registered": ok, "rss_kb": proc_rss_kb(ua.pid()) if ok else None}
    finally:
        ua.stop()


class Kamailio:
    def __init__(self, work):
        self.port = free_udp_tcp_port()
        d = os.path.join(work, "kamailio")
        os.makedirs(d, exist_ok=True)
        self.log = os.path.join(d, "kamailio.log")
        cfg = os.path.join(ROOT, "tests/interop/peers/kamailio.cfg")
        ctl = f"unix:{d}/ctl"
        args = ["kamailio", "-DD", "-E", "-m", "64", "-M", "8", "-f", cfg, "-Y", d,
                "-A", f"SIP_PORT={self.port}", "-A", f'CTL_SOCK="{ctl}"']
        self.proc = subprocess.Popen(args, cwd=d, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "wb"),
                                     start_new_session=True)
        end = time.time() + 15
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.2)

    def addr(self):
        return f"127.0.0.1:{self.port}"

    def registered(self, user):
        try:
            with open(self.log, "rb") as f:
                return f"REGISTERED {user} ".encode() in f.read()
        except OSError:
            return False

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# ---------------------------------------------------------------- report

def fmt(v, spec="{:.1f}", none="n/a"):
    return none if v is None else spec.format(v)


def common_level(a, b):
    """The highest concurrency level both UAs ran cleanly (above 1 call), or None."""
    ca = {lv["n"] for lv in a.get("levels") or [] if lv["clean"]}
    cb = {lv["n"] for lv in b.get("levels") or [] if lv["clean"]}
    both = sorted(n for n in ca & cb if n > 1)
    return both[-1] if both else None


def per_call_at(r, n):
    """(CPU % of a core per call, RSS KiB per added call) at level n."""
    lv = {x["n"]: x for x in r.get("levels") or []}
    at, one = lv.get(n), lv.get(1)
    cpu = at["cpu_pct"] / n if at and at["cpu_pct"] is not None else None
    mem = None
    if at and one and at["rss_kb"] and one["rss_kb"] and n > 1:
        mem = max(0, at["rss_kb"] - one["rss_kb"]) / (n - 1)
    return cpu, mem


def summarize(r):
    """Max clean level and per-call CPU/RSS at it."""
    levels = r.get("levels") or []
    clean = [lv for lv in levels if lv["clean"]]
    best = clean[-1] if clean else None
    out = {"max_clean": best["n"] if best else 0, "cpu_per_call": None, "kb_per_call": None,
           "first_fail": None}
    if best and best["cpu_pct"] is not None:
        out["cpu_per_call"] = best["cpu_pct"] / best["n"]
    # memory per call: the slope of the plateau RSS from 1 call to the highest clean level
    # (what one more call costs; one-time allocations of the first call are not counted)
    first = clean[0] if clean else None
    if best and first and best["n"] > first["n"] and best["rss_kb"] and first["rss_kb"]:
        out["kb_per_call"] = max(0, best["rss_kb"] - first["rss_kb"]) / (best["n"] - first["n"])
    elif best and best["rss_kb"] and r.get("idle_kb"):
        out["kb_per_call"] = max(0, best["rss_kb"] - r["idle_kb"]) / best["n"]
    fails = [lv for lv in levels if not lv["clean"]]
    if fails:
        f = fails[0]
        why = []
        if f["crashed"]:
            why.append("UA exited")
        if f["failed"]:
            why.append(f"{f['failed']} of {f['n']} calls failed")
        if f["streams"] < f["n"]:
            why.append(f"RTP from the UA on {f['streams']} of {f['n']} calls")
        if f["bad"]:
            why.append(f"{f['bad']} streams lossy/gappy (worst loss {fmt((f['worst_loss'] or 0) * 100)} %, "
                       f"worst gap {fmt(f['worst_gap_ms'], '{:.0f}')} ms)")
        if f.get("responses"):
            why.append("UA answered " + ", ".join(f"`{k}` ×{v}" for k, v in f["responses"].items()))
        elif f.get("errors"):
            why.append("SIPp: " + f["errors"][0].split(": ", 1)[-1][:120])
        out["first_fail"] = f"{f['n']} calls: " + "; ".join(why)
    return out


def write_doc(path, results, cfg, argv, started, machine):
    s = {r["name"]: summarize(r) for r in results if r.get("name")}
    wp = next((r for r in results if r.get("name") == "webphone-cli"), None)
    bs = next((r for r in results if r.get("name") == "baresip"), None)
    L = []
    L.append("# Benchmarks: webphone-cli next to baresip and linphonec")
    L.append("")
    L.append("Generated by `tests/load/run.sh` — do not edit by hand; rerun the script instead.")
    L.append("")
    L.append(f"- Date: {started} UTC ({'smoke run' if cfg['smoke'] else 'full run'})")
    L.append(f"- Command(s): `{' '.join(argv)}`")
    L.append(f"- Machine: {machine}")
    L.append(f"- Load average (1/5/15 min) at start of each UA's run -> end: " + "; ".join(
        f"{r['name']}: {r.get('load_start')} -> {r.get('load_end')}" for r in results if r.get("name")))
    L.append("  (the machine is shared with other builds; numbers taken under load are pessimistic)")
    L.append("")
    L.append("| | " + " | ".join(r["name"] for r in results if r.get("name")) + " |")
    L.append("|---|" + "---|" * len([r for r in results if r.get("name")]))

    def row(label, f):
        L.append(f"| {label} | " + " | ".join(f(r) for r in results if r.get("name")) + " |")

    row("version", lambda r: r.get("version", ""))
    row(f"max concurrent calls with clean audio (levels tried: {', '.join(map(str, cfg['levels']))})",
        lambda r: str(s[r["name"]]["max_clean"]))
    row("first level that was not clean", lambda r: s[r["name"]]["first_fail"] or "none (all tried levels clean)")
    row("CPU per call (% of one core, at the max clean level)",
        lambda r: fmt(s[r["name"]]["cpu_per_call"], "{:.2f}"))
    row("memory per call (RSS KiB: plateau RSS at the max clean level minus at 1 call, per added call)",
        lambda r: fmt(s[r["name"]]["kb_per_call"], "{:.0f}"))
    row(f"INVITE→200 p50 / p99 (ms) at {cfg['lat_rate']} calls/s, {cfg['lat_calls']} calls",
        lambda r: (f"{fmt(r['latency']['p50_ms'], '{:.2f}')} / {fmt(r['latency']['p99_ms'], '{:.2f}')}"
                   f" ({r['latency']['samples']} samples, {r['latency']['failed']} failed)")
        if r.get("latency") else "n/a")
    row("idle RSS after start (MiB)", lambda r: fmt((r.get("idle_kb") or 0) / 1024 if r.get("idle_kb") else None, "{:.1f}"))
    row("idle RSS after REGISTER to Kamailio (MiB)",
        lambda r: (fmt(r["reg"]["rss_kb"] / 1024, "{:.1f}") if r.get("reg", {}).get("rss_kb")
                   else ("not measured" if not r.get("reg") else "did not register")))
    row(f"RSS growth over {cfg['growth_calls']} sequential calls (KiB)",
        lambda r: (f"{fmt(r['growth']['growth_kb'], '{:+.0f}')} ({fmt(r['growth']['rss_before_kb'] / 1024 if r['growth']['rss_before_kb'] else None)}"
                   f" → {fmt(r['growth']['rss_after_kb'] / 1024 if r['growth']['rss_after_kb'] else None)} MiB; "
                   f"{r['growth']['ok']} ok, {r['growth']['failed']} failed)"
                   + later_rounds_text(r['growth'])) if r.get("growth") else "n/a")
    row("still running at the end", lambda r: "yes" if r.get("alive_at_end") else "NO")
    L.append("")

    # goals
    L.append("## Where webphone-cli stands against the goals")
    L.append("")
    if wp:
        sw = s["webphone-cli"]
        sb = s.get("baresip")

        def verdict(ok):
            return "**met**" if ok else "**not met**"

        L.append("| goal | measured | verdict |")
        L.append("|---|---|---|")
        L.append(f"| ≥ 1000 concurrent G.711 calls on 2 cores | {sw['max_clean']} | "
                 f"{verdict(sw['max_clean'] >= 1000)}" + (
                     "" if sw['max_clean'] >= 1000 or not cfg['smoke'] else " (smoke run: levels capped)") + " |")
        # like for like: per-call CPU and memory at the highest level both ran cleanly
        common = common_level(wp, bs) if bs else None
        if common:
            cw, cb = per_call_at(wp, common), per_call_at(bs, common)
            if cw[0] is not None and cb[0]:
                L.append(f"| CPU per call ≤ ½ baresip's, both at {common} calls | {cw[0]:.2f} % vs {cb[0]:.2f} % | "
                         f"{verdict(cw[0] <= cb[0] / 2)} |")
            if cw[1] is not None and cb[1]:
                L.append(f"| memory per call ≤ ½ baresip's, both at {common} calls | {cw[1]:.0f} KiB vs {cb[1]:.0f} KiB | "
                         f"{verdict(cw[1] <= cb[1] / 2)} |")
        if sb and sw["cpu_per_call"] is not None and sb["cpu_per_call"]:
            L.append(f"| CPU per call ≤ ½ baresip's, each at its own max clean level | {sw['cpu_per_call']:.2f} % vs {sb['cpu_per_call']:.2f} % | "
                     f"{verdict(sw['cpu_per_call'] <= sb['cpu_per_call'] / 2)} |")
        else:
            L.append("| CPU per call ≤ ½ baresip's | n/a | not measured |")
        if sb and sw["kb_per_call"] is not None and sb["kb_per_call"]:
            L.append(f"| memory per call ≤ ½ baresip's, each at its own max clean level | {sw['kb_per_call']:.0f} KiB vs {sb['kb_per_call']:.0f} KiB | "
                     f"{verdict(sw['kb_per_call'] <= sb['kb_per_call'] / 2)} |")
        else:
            L.append("| memory per call ≤ ½ baresip's | n/a | not measured |")
        p50 = wp.get("latency", {}).get("p50_ms")
        L.append(f"| INVITE→200 p50 < 1 ms | {fmt(p50, '{:.2f}')} ms | {verdict(p50 is not None and p50 < 1.0)} |")
        idle = wp.get("idle_kb")
        reg = wp.get("reg", {}).get("rss_kb")
        worst = max([x for x in (idle, reg) if x] or [0])
        # MB read strictly: 10^7 bytes (9.54 MiB), after start and registered alike.
        mb = lambda kb: kb * 1024 / 1e6  # noqa: E731
        L.append(f"| idle memory < 10 MB (10^7 bytes) | {fmt(idle / 1024 if idle else None)} MiB"
                 + (f" ({mb(idle):.1f} MB)" if idle else "") + " after start"
                 + (f", {reg / 1024:.1f} MiB ({mb(reg):.1f} MB) registered" if reg else "")
                 + f" | {verdict(0 < worst and worst * 1024 < 10_000_000)} |")
        g = wp.get("growth")
        if g and g["growth_kb"] is not None:
            # "no growth": under 1 KiB per 100 calls (allocator noise) and no failures
            ok = g["growth_kb"] <= max(256, g["ok"] / 100) and g["failed"] == 0
            L.append(f"| no growth over 10,000 calls | {g['growth_kb']:+d} KiB over {g['ok']} completed calls, "
                     f"{g['failed']} failed{later_rounds_text(g)} | {verdict(ok and g['ok'] >= 10000)}"
                     + ("" if g["ok"] >= 10000 else " (fewer than 10,000 calls completed)") + " |")
        L.append("")
    L.append("## Per level (ramp)")
    L.append("")
    L.append("| UA | calls | ok / failed (SIPp) | UA RTP streams (bad) | CPU % of a core | RSS MiB | load |")
    L.append("|---|---|---|---|---|---|---|")
    for r in results:
        for lv in r.get("levels") or []:
            L.append(f"| {r['name']} | {lv['n']} | {lv['ok']} / {lv['failed']} | {lv['streams']} ({lv['bad']}) | "
                     f"{fmt(lv['cpu_pct'])} | {fmt(lv['rss_kb'] / 1024 if lv['rss_kb'] else None)} | {lv['load']} |")
    L.append("")
    L.append("## Method")
    L.append("")
    L.append(f"""- Every UA runs alone, one after the other, on 127.0.0.1 with no registrar in the call path
  (SIPp calls it peer to peer) and with no sound card: webphone-cli with
  `audiodevicein=null audiodeviceout=null autoaccept=true`, baresip with the `ausine` source,
  no player and `answermode=auto` (`tests/load/baresip.config.in`), linphonec with `-a` and
  `soundcard use files` (`tests/load/linphonerc.in`). Codec: G.711 A-law (PCMA), 20 ms packets.
- Caller: SIPp 3.6 with `tests/load/uac_rtp.xml`: INVITE offering PCMA, then `rtp_stream` of a
  1 kHz A-law tone to the UA for the whole call, then BYE.
- **Clean audio** (per level of N concurrent calls): SIPp reports N successful calls and no
  failed one; the UA is still running; there are at least N RTP streams from the UA to SIPp's
  media ports in a capture of the loopback interface (dumpcap, 64-byte snap length); each of
  them has at most {CLEAN_MAX_LOSS * 100:.0f} % loss by RTP sequence number, no inter-packet
  gap over {CLEAN_MAX_GAP_S * 1000:.0f} ms, and carries at least {CLEAN_MIN_SHARE * 100:.0f} %
  of the 20 ms packets the call's hold time asks for (less 10 % for call set-up and tear-down).
  Levels: {', '.join(map(str, cfg['levels']))} calls, placed at {cfg['ramp_rate']} calls/s and
  held together for {cfg['plateau_s']} s; the ramp stops at the first level that is not clean.
- **CPU per call**: utime+stime of the UA process (all threads, `/proc/<pid>/stat`) during the
  plateau, as % of one core, divided by N, at the highest clean level.
  **Memory per call**: (highest RSS during the plateau of the highest clean level N minus the
  same at 1 call) / (N - 1): what each further call costs, without the one-time costs of the
  first call (when only 1 call was clean: RSS at 1 call minus idle RSS). Before the ramp each
  UA answers {RAMP_WARMUP_CALLS} calls of {RAMP_WARMUP_HOLD_MS / 1000:.0f} s, {RAMP_WARMUP_AT_ONCE} at a time, so that what a
  process does once in its life (code first run, a first history entry, tables built on first
  use, the first overlap of two calls), at a call's end as well as its start, is in the
  1-call baseline (a UA that takes one call at a time, like linphonec here, refuses the
  second of each pair; what it answered is its warm-up).
- **INVITE→200**: {cfg['lat_calls']} calls at {cfg['lat_rate']} calls/s (one at a time, no hold time); the time from the first INVITE transmission to the 200 OK, both taken from a capture
  of the UA's SIP port (microsecond timestamps), p50 and p99. SIPp's own response-time statistics
  count whole milliseconds and are kept in the run directory only.
- **Idle**: RSS 3 s after start, before any call; and 3 s after a successful REGISTER to a
  Kamailio started from `tests/interop/peers/kamailio.cfg` (when the run includes it).
- **Growth**: {cfg['growth_calls']} sequential calls (one at a time, at most {cfg['growth_rate']} calls/s,
  no hold time) after {cfg_warmup(cfg['growth_calls'], cfg['growth_rate'])} warm-up calls at the same rate; RSS 2 s after the
  warm-up and 2 s after the last call. A full run's warm-up lasts at least {STEADY_STATE_S} s: a
  finished SIP transaction is kept 32 s over UDP (RFC 3261 Timer J, RFC 6026 Timer L), so
  a steady call rate holds a steady number of them, which is working memory, not growth. "No growth" is judged as at most max(256 KiB, 1 KiB per
  100 calls) with no failed call. With `growth_rounds` {cfg.get('growth_rounds', 1)} the same
  number of calls then runs again in the same process and each later round's growth is shown:
  growth that stops after the first round is the allocator's high-water mark, growth that
  repeats round after round would be a leak.
- The SIPp caller runs on the same 2 cores and takes its share of the CPU: the absolute numbers
  are those of the pair, the comparison between UAs is what matters.
""")
    notes = cfg.get("notes") or []
    if notes:
        L.append("## Findings")
        L.append("")
        for n in notes:
            L.append(f"- {n}")
        L.append("")
    # The desktop app's section, written by tests/e2e-desktop/bench-launch.mjs --doc, is kept.
    try:
        with open(path) as f:
            old = f.read()
        i = old.find(DESKTOP_SECTION)
        if i >= 0:
            L.append(old[i:].rstrip("\n") + "\n")
    except OSError:
        pass
    with open(path, "w") as f:
        f.write("\n".join(L))


# Heading of the section tests/e2e-desktop/bench-launch.mjs owns at the end of the report.
DESKTOP_SECTION = "## Desktop app"


def machine_info():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = int(line.split()[1]) // 1024
    return f"{platform.node()}, {os.cpu_count()} CPUs ({cpu}), {mem} MiB RAM, Linux {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--webphone", default="", help="webphone-cli binary")
    ap.add_argument("--uas", default="webphone,baresip,linphone")
    ap.add_argument("--doc", default=None, help="write the markdown report here")
    ap.add_argument("--json", default=None)
    ap.add_argument("--work", default=None)
    ap.add_argument("--levels", default=None, help="comma-separated concurrency levels")
    ap.add_argument("--growth-calls", type=int, default=None)
    ap.add_argument("--growth-rounds", type=int, default=None,
                    help="run the growth calls this many times in one process (full run: 2)")
    ap.add_argument("--no-kamailio", action="store_true")
    ap.add_argument("--argv", default="tests/load/run.sh")
    ap.add_argument("--render", default=None,
                    help="only rewrite --doc from results.json files of earlier runs (comma-separated)")
    a = ap.parse_args()
    if a.render:
        # one or more results.json (comma-separated): runs of single UAs are merged
        runs = [json.load(open(f)) for f in a.render.split(",") if f]
        results = [r for run in runs for r in run["results"]]
        first = runs[0]
        argv = "; ".join(dict.fromkeys(run.get("argv", a.argv) for run in runs))
        started = ", ".join(dict.fromkeys(run.get("started", "?") for run in runs))
        first["cfg"]["notes"] = notes_for(results)
        write_doc(a.doc, results, first["cfg"], [argv], started,
                  first.get("machine", machine_info()))
        print_table(results, first["cfg"])
        return 0
    a.webphone = os.path.abspath(a.webphone)

    cfg = {"smoke": a.smoke}
    if a.smoke:
        cfg.update(levels=[1, 2], ramp_rate=10, plateau_s=2, lat_calls=5, lat_rate=10,
                   growth_calls=10, growth_rate=20)
        a.no_kamailio = True
    else:
        cfg.update(levels=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1500], ramp_rate=50,
                   plateau_s=8, lat_calls=300, lat_rate=10, growth_calls=10000, growth_rate=100,
                   growth_rounds=2)
    if a.levels:
        cfg["levels"] = [int(x) for x in a.levels.split(",")]
    if a.growth_calls:
        cfg["growth_calls"] = a.growth_calls
    if a.growth_rounds:
        cfg["growth_rounds"] = a.growth_rounds

    # SIPp's media ports must be free: two load runs at once would collide here
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", MEDIA_BASE))
    except OSError as e:
        sys.exit(f"bench: UDP 127.0.0.1:{MEDIA_BASE} (SIPp's media base) is busy ({e}); "
                 "is another tests/load run going on?")
    finally:
        probe.close()
    for tool in ("sipp", "dumpcap", "sox"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is not installed (scripts/setup-system.sh)")
    work = a.work or tempfile.mkdtemp(prefix="webphone-load-")
    os.makedirs(work, exist_ok=True)
    log(f"work dir {work}")
    scenario = call_scenario(work)

    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")
    makers = {
        "webphone": lambda w, kam=None: Webphone(w, a.webphone, kam),
        "baresip": lambda w, kam=None: Baresip(w, kam),
        "linphone": lambda w, kam=None: Linphone(w, kam),
    }
    results = []
    for key in [u.strip() for u in a.uas.split(",") if u.strip()]:
        exe = {"webphone": a.webphone, "baresip": "baresip", "linphone": "linphonec"}[key]
        if not shutil.which(exe) and not os.path.isfile(exe):
            log(f"SKIP {key}: {exe} not installed")
            continue
        w = os.path.join(work, key)
        os.makedirs(w, exist_ok=True)
        log(f"=== {key} (load {loadavg()})")
        r = bench_ua(makers[key], w, scenario, cfg)
        if not a.no_kamailio and shutil.which("kamailio"):
            kam = Kamailio(os.path.join(w, "reg"))
            try:
                r["reg"] = bench_registered(makers[key], os.path.join(w, "reg"), kam)
            except Exception as e:  # noqa: BLE001 - reported, the rest of the table stands
                log(f"{key} register: {e}")
            finally:
                kam.stop()
        results.append(r)
        if a.json:  # after each UA, so a run cut short still leaves its results
            json.dump({"cfg": cfg, "results": results, "argv": a.argv, "started": started,
                       "machine": machine_info()}, open(a.json, "w"), indent=1, default=str)
        time.sleep(2)

    cfg["notes"] = notes_for(results)
    if a.json:
        json.dump({"cfg": cfg, "results": results, "argv": a.argv, "started": started,
                   "machine": machine_info()}, open(a.json, "w"), indent=1, default=str)
    if a.doc:
        write_doc(a.doc, results, cfg, [a.argv], started, machine_info())
        log(f"wrote {a.doc}")
    print_table(results, cfg)
    # the pipeline is broken when a UA could not be measured at all
    broken = [r["name"] for r in results if not r.get("levels") or not r["levels"][0]["ok"]]
    if broken:
        log(f"PIPELINE BROKEN for: {', '.join(broken)} (no successful call at level 1)")
        return 1
    return 0


# The engine's line limit (crates/webphone-engine/src/lines.rs), read for the findings text.
def _max_lines():
    import re
    try:
        src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates",
                                "webphone-engine", "src", "lines.rs")).read()
        m = re.search(r"pub const MAX_LINES: usize = (\d+);", src)
        return m.group(1) if m else "a fixed number of"
    except OSError:
        return "a fixed number of"


MAX_LINES_NOTE = _max_lines()


def notes_for(results):
    notes = []
    for r in results:
        for lv in r.get("levels") or []:
            for resp, cnt in (lv.get("responses") or {}).items():
                if resp.startswith("486"):
                    notes.append(f"{r['name']}: at {lv['n']} concurrent calls it answered "
                                 f"`{resp}` to {cnt} of them: a limit on simultaneous calls, "
                                 "not a resource failure.")
                    if r["name"] == "webphone-cli":
                        notes.append("webphone-cli: the engine's line table holds "
                                     f"{MAX_LINES_NOTE} calls (`MAX_LINES` in "
                                     "crates/webphone-engine/src/lines.rs); calls beyond it get "
                                     "486.")
        lat = (r.get("latency") or {}).get("p50_ms")
        if r["name"] == "linphonec" and lat and lat > 900:
            notes.append("linphonec: `-a` answers about 1 s after the INVITE (its auto-answer "
                         "delay), so its INVITE→200 measures that timer, and its sequential "
                         "calls are capped by time (see the completed count).")
        fails = [lv for lv in r.get("levels") or [] if not lv["clean"]]
        f = fails[0] if fails else None
        load1 = float((f or {}).get("load", "0").split()[0] or 0) if f else 0.0
        cpus = os.cpu_count() or 1
        if f and not f["failed"] and f["bad"] and load1 > 2 * cpus:
            notes.append(f"{r['name']}: at {f['n']} calls every call was answered but "
                         f"{f['bad']} of {f['streams']} streams had gaps (worst "
                         f"{f['worst_gap_ms']:.0f} ms) while the 1-minute load average was "
                         f"{load1:.1f} on {cpus} CPUs ({f['cpu_pct'] or 0:.0f} % of one core "
                         "for the UA): the machine was busy with other work, so this level "
                         "says more about the machine than about the UA.")
        g = r.get("growth") or {}
        if g.get("rss_before_kb") and r.get("idle_kb") and g["rss_before_kb"] > 2 * r["idle_kb"]:
            notes.append(f"{r['name']}: the growth run started at "
                         f"{g['rss_before_kb'] / 1024:.1f} MiB (idle: {r['idle_kb'] / 1024:.1f} MiB), "
                         "a heap left large by the ramp: memory the calls add can fit in it "
                         "unseen" + (" (tests/load/README.md has a measurement on a fresh "
                                     "process)." if r["name"] == "webphone-cli" else "."))
        if r["name"] == "webphone-cli" and g.get("growth_kb") and g["growth_kb"] > 1024:
            notes.append(f"webphone-cli: RSS grew {g['growth_kb']} KiB over {g['ok']} calls "
                         f"(about {g['growth_kb'] * 1024 // max(1, g['ok'])} bytes per call). "
                         "Not the call history: without a work folder the CLI keeps the "
                         "newest 500 calls in an in-memory SQLite database (about 30 KiB), "
                         "so look for a leak.")
    return notes


def print_table(results, cfg):
    names = [r["name"] for r in results if r.get("name")]
    s = {r["name"]: summarize(r) for r in results if r.get("name")}
    rows = [
        ("max concurrent clean calls", lambda r: str(s[r["name"]]["max_clean"])),
        ("CPU/call (% core)", lambda r: fmt(s[r["name"]]["cpu_per_call"], "{:.2f}")),
        ("RSS/call (KiB)", lambda r: fmt(s[r["name"]]["kb_per_call"], "{:.0f}")),
        ("INVITE->200 p50 ms", lambda r: fmt(r.get("latency", {}).get("p50_ms"), "{:.2f}")),
        ("INVITE->200 p99 ms", lambda r: fmt(r.get("latency", {}).get("p99_ms"), "{:.2f}")),
        ("idle RSS MiB", lambda r: fmt(r["idle_kb"] / 1024 if r.get("idle_kb") else None)),
        ("registered RSS MiB", lambda r: fmt(r.get("reg", {}).get("rss_kb", 0) / 1024 if r.get("reg", {}).get("rss_kb") else None)),
        (f"growth {cfg['growth_calls']} calls KiB", lambda r: fmt(r.get("growth", {}).get("growth_kb"), "{:+.0f}")),
        ("load avg start", lambda r: r.get("load_start", "")),
    ]
    w0 = max(len(x[0]) for x in rows)
    print(" " * w0 + " | " + " | ".join(f"{n:>16}" for n in names))
    for label, f in rows:
        print(f"{label:<{w0}} | " + " | ".join(f"{f(r):>16}" for r in results if r.get("name")))


if __name__ == "__main__":
    sys.exit(main())
