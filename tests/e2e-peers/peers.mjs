// Real SIP peers on loopback for the Node/browser end-to-end tests (tests/e2e-browser,
// tests/e2e-skins, ...): Kamailio as registrar + proxy and baresip as the far end.
//
// It starts them exactly the way the Rust interop harness does (tests/interop/src/kamailio.rs,
// tests/interop/src/baresip.rs), from the same files in tests/interop/peers/:
//   * Kamailio: `kamailio -c` config check, then `kamailio -DD -E -m 64 -M 8 -f kamailio.cfg
//     -Y <dir> -A SIP_PORT=<port> -A CTL_SOCK="unix:<dir>/ctl"` (+ MAX_EXPIRES/DEFAULT_EXPIRES
//     when asked), UDP + TCP on 127.0.0.1:<port>. Users 1001..1005 live in the config's
//     in-memory table, password `pass<user>`, domain/realm 127.0.0.1. Ready when it answers an
//     OPTIONS over UDP and accepts TCP.
//   * baresip: config/accounts filled from baresip-config.in / baresip-accounts.in, a 48 kHz
//     WAV tone as microphone, received audio dumped to <dir>/rec/*-dec.wav, and its ctrl_tcp
//     control socket (netstring-framed JSON) for commands and events.
// Every process runs in its own process group (detached) and is stopped by that handle only
// (SIGTERM to the group, SIGKILL after a grace period). Everything lives in a temp dir that
// stop() removes unless E2E_KEEP=1.
//
// Usage:
//   import { requirePeers, startKamailio, startBaresip } from '../e2e-peers/peers.mjs';
//   requirePeers();                                  // loud skip (exit 0) or, with CI=true, fail
//   const k = await startKamailio();                 // {port, addr, domain, users, dir, uriOf(user), log(), lines(), waitLine(), stop()}
//   const b = await startBaresip({ user: '1002', kamailio: k, answer: 'auto' });
//   await b.command(`dial ${k.uriOf('1001')}`);     // -> {ok, data}; the URI needs the proxy's port
//   const ev = await b.waitEvent('CALL_ESTABLISHED'); // -> the event object {type, param, id, ...}
//   b.dtmfReceived();                                 // keys from CALL_DTMF_START events
//   await b.stop(); await k.stop();
//
// baresip 1.0's ctrl_tcp commands (its `help`): dial <uri>, accept, hangup, answermode <mode>,
// listcalls, callstat, reginfo, presence_online, presence_offline, uanew/uadel/uafind/uanext,
// ausrc/auplay, options, insmod/rmmod, about, quit. There is no hold, DTMF-sending or message
// command in 1.0: test those from our side (baresip answers re-INVITEs and REFERs by itself).
// Events (`type`): CALL_INCOMING, CALL_RINGING, CALL_PROGRESS, CALL_ESTABLISHED, CALL_CLOSED
// (reason in `param`, e.g. "486 Busy Here"), CALL_DTMF_START (key in `param`), CALL_RTPESTAB,
// CALL_LOCAL_SDP, CALL_REMOTE_SDP, REGISTER_OK, ...
// Dial a user through the registrar with its port: `dial ${k.uriOf('1001')}`.
//
// Environment: KAMAILIO, BARESIP (binaries, default from PATH; kamailio is often in
// /usr/sbin), E2E_KEEP=1 (keep the temp dirs and print where they are).
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync, openSync, closeSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const PEERS_DIR = path.join(ROOT, 'tests/interop/peers');
export const DOMAIN = '127.0.0.1';
export const USERS = ['1001', '1002', '1003', '1004', '1005'].map((u) => ({ user: u, password: `pass${u}` }));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Full path of `name` from PATH (plus /usr/sbin and /sbin), or null. */
export function which(name) {
  if (name.includes('/')) return existsSync(name) ? name : null;
  const dirs = (process.env.PATH || '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin']);
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    if (existsSync(p)) return p;
  }
  return null;
}

const kamailioBin = () => which(process.env.KAMAILIO || 'kamailio');
const baresipBin = () => which(process.env.BARESIP || 'baresip');

/** Which of kamailio / baresip are missing (names). */
export function missingPeers(need = ['kamailio', 'baresip']) {
  const found = { kamailio: kamailioBin(), baresip: baresipBin() };
  return need.filter((n) => !found[n]);
}

/**
 * Loud skip: when a needed peer is missing, prints a banner and exits 0; with CI=true it
 * prints the failure and exits 1. Returns normally when everything is there.
 */
export function requirePeers(need = ['kamailio', 'baresip'], what = 'this test') {
  const missing = missingPeers(need);
  if (missing.length === 0) return;
  const msg = `${what} needs ${missing.join(', ')} (apt packages: ${missing.join(' ')}), not installed`;
  if (process.env.CI === 'true') {
    console.error(`[e2e-peers] FAIL: ${msg} (required when CI=true)`);
    process.exit(1);
  }
  const bar = '='.repeat(66);
  console.log(`[e2e-peers] ${bar}\n[e2e-peers] SKIPPED: ${msg}\n[e2e-peers] ${bar}`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// ports

const claimed = new Set();

function udpFree(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function tcpFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A loopback port free for both UDP and TCP, never handed out twice by this process. */
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = await new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => { s.close(); resolve(0); });
      s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    });
    if (port && !claimed.has(port) && await tcpFree(port) && await udpFree(port)) {
      claimed.add(port);
      return port;
    }
  }
  throw new Error('no free UDP+TCP port on 127.0.0.1');
}

/** `count` consecutive free UDP ports starting at an even port in 20000..32000 (RTP). */
export async function freePortRange(count) {
  for (let i = 0; i < 200; i++) {
    const base = (20000 + Math.floor(Math.random() * (12000 - count))) & ~1;
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = !claimed.has(p) && await udpFree(p);
    if (ok) {
      for (let p = base; p < base + count; p++) claimed.add(p);
      return base;
    }
  }
  throw new Error(`no ${count} free consecutive UDP ports on 127.0.0.1`);
}

// ---------------------------------------------------------------------------------------------
// processes

// Process groups still running: killed when this Node process exits (a failed test must not
// leave peers behind). Only groups this module created.
const live = new Set();
process.once('exit', () => {
  for (const pid of live) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
});

function spawnLogged(name, bin, args, cwd, logPath) {
  const fd = openSync(logPath, 'w');
  const child = spawn(bin, args, { cwd, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  live.add(child.pid);
  let exited = null;
  const exitP = new Promise((resolve) => child.once('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
  const log = () => { try { return readFileSync(logPath, 'utf8'); } catch { return ''; } };
  const tail = (n = 40) => log().split('\n').slice(-n).join('\n');
  const signalGroup = (sig) => { try { process.kill(-child.pid, sig); } catch { /* group gone */ } };
  return {
    name, child, logPath, log, tail,
    get exited() { return exited; },
    assertRunning(what) {
      if (exited) throw new Error(`${name} exited (${JSON.stringify(exited)}) ${what}; log ${logPath}:\n${tail()}`);
    },
    /** SIGTERM to the process group, SIGKILL after `graceMs`. */
    async stop(graceMs = 3000) {
      if (!exited) {
        signalGroup('SIGTERM');
        await Promise.race([exitP, sleep(graceMs)]);
      }
      signalGroup('SIGKILL');
      if (!exited) await Promise.race([exitP, sleep(1000)]);
      live.delete(child.pid);
    },
  };
}

function fillTemplate(template, vars) {
  let out = template;
  for (const [k, v] of Object.entries(vars)) out = out.split(`@${k}@`).join(String(v));
  const left = out.split('\n').filter((l) => !l.trimStart().startsWith('#') && /@[A-Z_]+@/.test(l));
  if (left.length) throw new Error(`template fields left unfilled: ${left.join(' | ')}`);
  return out;
}

function makeDir(prefix) {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

function removeDir(dir) {
  if (process.env.E2E_KEEP === '1') {
    console.log(`[e2e-peers] kept ${dir}`);
    return;
  }
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
}

// ---------------------------------------------------------------------------------------------
// Kamailio

function optionsPing(port, n) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (v) => { clearTimeout(t); try { s.close(); } catch { /* closed */ } resolve(v); };
    const t = setTimeout(() => done(false), 300);
    s.once('error', () => done(false));
    s.on('message', (m) => done(m.toString('latin1').startsWith('SIP/2.0 200')));
    s.bind(0, '127.0.0.1', () => {
      const local = `127.0.0.1:${s.address().port}`;
      const msg = `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\n`
        + `Via: SIP/2.0/UDP ${local};branch=z9hG4bK-wpe-ping-${n};rport\r\n`
        + 'Max-Forwards: 70\r\n'
        + `From: <sip:ping@127.0.0.1>;tag=wpe${n}\r\n`
        + `To: <sip:127.0.0.1:${port}>\r\n`
        + `Call-ID: wpe-ping-${n}-${process.pid}@127.0.0.1\r\n`
        + `CSeq: ${n} OPTIONS\r\n`
        + 'Content-Length: 0\r\n\r\n';
      s.send(msg, port, '127.0.0.1');
    });
  });
}

function tcpConnects(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

/**
 * Starts Kamailio (registrar + proxy) on a free loopback port, configured by
 * tests/interop/peers/kamailio.cfg. Options: maxExpires (registration expiry granted, s),
 * defines (extra -A defines such as 'AUTH_SHA256'), presence (true: also the presence server,
 * the config's WITH_PRESENCE variant: presence and dialog events, every call through the proxy
 * published as dialog state; needs Debian's kamailio-presence-modules), timeoutMs.
 * Resolves to {port, addr, domain, users, dir, ctl, uriOf(user), log(), lines(), waitLine(needles), stop()}.
 */
export async function startKamailio(opts = {}) {
  const bin = kamailioBin();
  if (!bin) throw new Error('kamailio not found (package kamailio); call requirePeers() first');
  const dir = makeDir('wp-e2e-kamailio-');
  const port = await freePort();
  const ctl = `unix:${path.join(dir, 'ctl')}`;
  const cfg = path.join(PEERS_DIR, 'kamailio.cfg');
  const defs = [`SIP_PORT=${port}`, `CTL_SOCK="${ctl}"`, ...(opts.defines || [])];
  if (opts.presence) {
    // db_text tables, copied empty from the package (the same set as tests/interop's
    // Kamailio::start_presence).
    const db = path.join(dir, 'db');
    mkdirSync(db, { recursive: true });
    for (const table of ['version', 'presentity', 'active_watchers', 'watchers', 'xcap', 'pua']) {
      writeFileSync(path.join(db, table), readFileSync(path.join('/usr/share/kamailio/dbtext/kamailio', table)));
    }
    defs.push('WITH_PRESENCE', `DB_URL="text://${db}"`);
  }
  if (opts.maxExpires) defs.push(`MAX_EXPIRES=${opts.maxExpires}`, `DEFAULT_EXPIRES=${opts.maxExpires}`);
  const args = ['-f', cfg, '-Y', dir];
  for (const d of defs) args.push('-A', d);

  const check = spawnSync(bin, ['-c', ...args], { cwd: dir, encoding: 'utf8' });
  if (check.status !== 0) {
    removeDir(dir);
    throw new Error(`kamailio -c ${cfg} failed:\n${check.stdout}${check.stderr}`);
  }
  // -DD: foreground (we hold the main process); -E: log to stderr (our log file)
  const proc = spawnLogged('kamailio', bin, ['-DD', '-E', '-m', '64', '-M', '8', ...args], dir, path.join(dir, 'kamailio.log'));

  const scriptLines = () => proc.log().split('\n')
    .map((l) => { const i = l.indexOf('<script>: '); return i < 0 ? null : l.slice(i + 10); })
    .filter((l) => l !== null);
  const k = {
    port,
    addr: `127.0.0.1:${port}`,
    domain: DOMAIN,
    users: USERS,
    dir,
    ctl,
    logPath: proc.logPath,
    log: proc.log,
    /** `sip:<user>@127.0.0.1:<port>`: what a peer dials to reach `user` through this proxy. */
    uriOf: (user) => `sip:${user}@127.0.0.1:${port}`,
    /** The config's NOTICE lines (REQ ..., CHALLENGE ..., REGISTERED ..., RELAY ..., REPLY ...). */
    lines: scriptLines,
    /** Waits until `count` script lines contain every needle; resolves to them. */
    async waitLine(needles, { count = 1, timeoutMs = 15000 } = {}) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const found = scriptLines().filter((l) => needles.every((n) => l.includes(n)));
        if (found.length >= count) return found;
        proc.assertRunning('while waiting for its log');
        if (Date.now() >= end) {
          throw new Error(`kamailio: fewer than ${count} lines with ${JSON.stringify(needles)}; script lines:\n${scriptLines().slice(-40).join('\n')}`);
        }
        await sleep(100);
      }
    },
    /** Stops Kamailio (its process group) and removes its directory. */
    async stop() {
      await proc.stop(5000);
      removeDir(dir);
    },
  };

  const end = Date.now() + (opts.timeoutMs || 20000);
  for (let n = 1; ; n++) {
    if (proc.exited) {
      const tail = proc.tail();
      await k.stop();
      throw new Error(`kamailio exited while starting:\n${tail}`);
    }
    if (await optionsPing(port, n) && await tcpConnects(port)) return k;
    if (Date.now() >= end) {
      const tail = proc.tail();
      await k.stop();
      throw new Error(`kamailio not answering on 127.0.0.1:${port}; log:\n${tail}`);
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// baresip

/** Samples (-1..1, channels averaged) and rate of a PCM 16/24/32-bit or float WAV. */
export function readWav(file) {
  const b = readFileSync(file);
  if (b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WAVE') { throw new Error(`${file}: not a WAV file`); }
  let off = 12; let fmt = null; let data = null;
  while (off + 8 <= b.length) {
    const id = b.toString('latin1', off, off + 4);
    let size = b.readUInt32LE(off + 4);
    const body = off + 8;
    // A recording still being written may carry a stale data size: read to the end.
    if (id === 'data' && (size === 0 || body + size > b.length)) { size = b.length - body; }
    if (id === 'fmt ') {
      let tag = b.readUInt16LE(body);
      if (tag === 0xfffe && size >= 40) { tag = b.readUInt16LE(body + 24); }
      fmt = { tag, channels: b.readUInt16LE(body + 2), rate: b.readUInt32LE(body + 4), bits: b.readUInt16LE(body + 14) };
    } else if (id === 'data') { data = b.subarray(body, body + size); }
    off = body + size + (size & 1);
  }
  if (!fmt || !data) { throw new Error(`${file}: no fmt or data chunk`); }
  const bps = fmt.bits / 8; const frame = bps * fmt.channels;
  const n = Math.floor(data.length / frame);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < fmt.channels; c++) {
      const p = i * frame + c * bps;
      let v;
      if (fmt.tag === 3 && fmt.bits === 32) { v = data.readFloatLE(p); }
      else if (fmt.bits === 16) { v = data.readInt16LE(p) / 32768; }
      else if (fmt.bits === 24) { v = data.readIntLE(p, 3) / 8388608; }
      else if (fmt.bits === 32) { v = data.readInt32LE(p) / 2147483648; }
      else if (fmt.bits === 8) { v = (data[p] - 128) / 128; }
      else { throw new Error(`${file}: ${fmt.bits}-bit samples`); }
      sum += v;
    }
    out[i] = sum / fmt.channels;
  }
  return { samples: out, rate: fmt.rate };
}

/**
 * The tone `freq` over the middle half of the recording, in 100 ms Hann-windowed Goertzel blocks
 * (the same measure as tests/interop/src/audio.rs): level in dBFS, share of the energy, and
 * whether it dominates (>= 50 % of the energy).
 */
export function toneLevel(file, freq) {
  const { samples, rate } = readWav(file);
  const x = samples.subarray(Math.floor(samples.length / 4), samples.length - Math.floor(samples.length / 4));
  const block = Math.max(16, Math.floor(rate / 10));
  const win = Array.from({ length: block }, (_, i) => 0.5 - 0.5 * Math.cos(2 * Math.PI * i / (block - 1)));
  const wsum = win.reduce((a, v) => a + v, 0);
  const coeff = 2 * Math.cos(2 * Math.PI * freq / rate);
  let tone = 0; let total = 0; let blocks = 0;
  for (let s = 0; s + block <= x.length; s += block) {
    let s1 = 0; let s2 = 0; let e = 0;
    for (let i = 0; i < block; i++) {
      const v = x[s + i];
      const s0 = v * win[i] + coeff * s1 - s2;
      s2 = s1; s1 = s0; e += v * v;
    }
    const mag2 = Math.max(0, s1 * s1 + s2 * s2 - coeff * s1 * s2);
    const amp = 2 * Math.sqrt(mag2) / wsum;
    tone += amp * amp / 2; total += e / block; blocks++;
  }
  const secs = samples.length / rate;
  if (!blocks) { return { dominant: false, dbfs: -Infinity, share: 0, secs, rate }; }
  tone /= blocks; total /= blocks;
  const share = total > 0 ? Math.min(1, tone / total) : 0;
  return { dominant: share >= 0.5, dbfs: 10 * Math.log10(2 * tone), share, secs, rate };
}

export function assertTone(file, freq, minDbfs, what) {
  if (!existsSync(file)) { throw new Error(`${what}: no recording at ${file}`); }
  const l = toneLevel(file, freq);
  if (l.secs < 1) { throw new Error(`${what}: recording ${file} is only ${l.secs.toFixed(2)} s long`); }
  if (!(l.dominant && l.dbfs >= minDbfs)) {
    throw new Error(`${what}: ${freq} Hz not dominant at >= ${minDbfs} dBFS in ${file}: ${JSON.stringify(l)}`);
  }
  return `${freq} Hz at ${l.dbfs.toFixed(1)} dBFS (${Math.round(l.share * 100)}% of the energy) in ${l.secs.toFixed(1)} s`;
}

/** Writes a 16-bit mono WAV sine tone. */
export function writeTone(file, hz = 1000, rate = 48000, secs = 60, amplitude = 0.5) {
  const n = Math.round(secs * rate);
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0, 'latin1');
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8, 'latin1');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'latin1');
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) {
    buf.writeInt16LE(Math.round(amplitude * Math.sin(2 * Math.PI * hz * i / rate) * 32767), 44 + i * 2);
  }
  writeFileSync(file, buf);
}

const stripAnsi = (s) => String(s || '').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');

/**
 * Starts baresip as `user` (default 1002, password pass<user>), registered with `kamailio`
 * (the object from startKamailio, or {port}) unless kamailio is null; answer: 'auto' (default)
 * or 'manual' (rings until `accept`); codecs (default 'PCMU,PCMA'); toneHz (its microphone,
 * default 1000); regint (600); displayName (sent in From, e.g. to test how a page shows it).
 * Resolves once ctrl_tcp is connected and, with a registrar,
 * the account shows OK in `reginfo`.
 * Resolves to {user, sipPort, ctrlPort, dir, uri, directUri, command(line), events(),
 * waitEvent(type, pred?, timeoutMs?), dtmfReceived(), receivedWavs(), log(), stop()}.
 */
export async function startBaresip(opts = {}) {
  const bin = baresipBin();
  if (!bin) throw new Error('baresip not found (package baresip); call requirePeers() first');
  const user = opts.user || '1002';
  const password = opts.password || `pass${user}`;
  const answer = opts.answer || 'auto';
  const codecs = opts.codecs || 'PCMU,PCMA';
  const toneHz = opts.toneHz || 1000;
  const kamailioPort = opts.kamailio === null ? null : (opts.kamailio && opts.kamailio.port) || null;
  const dir = makeDir(`wp-e2e-baresip-${user}-`);
  mkdirSync(path.join(dir, 'rec'), { recursive: true });
  const src = path.join(dir, `tone${toneHz}-48k.wav`);
  writeTone(src, toneHz, 48000, opts.toneSecs || 60, 0.5);

  const sipPort = await freePort();
  const ctrlPort = await freePort();
  const rtp = await freePortRange(40);
  const read = (n) => readFileSync(path.join(PEERS_DIR, n), 'utf8');
  let config = fillTemplate(read('baresip-config.in'), {
    SIP_PORT: sipPort, CTRL_PORT: ctrlPort, SRC: src, DIR: dir, RTP_MIN: rtp, RTP_MAX: rtp + 39,
  });
  // G.722 / Opus modules after g711.so when the codec list names them
  let extra = '';
  for (const [name, mod] of [['g722', 'g722.so'], ['opus', 'opus.so']]) {
    if (codecs.toLowerCase().includes(name)) extra += `module\t\t\t${mod}\n`;
  }
  config = config.replace('module\t\t\tg711.so\n', `module\t\t\tg711.so\n${extra}`);
  const proxyPort = kamailioPort || sipPort;
  const accounts = fillTemplate(read('baresip-accounts.in'), {
    USER: user, PROXY_PORT: proxyPort, PASSWORD: password, ANSWERMODE: answer,
    REGINT: kamailioPort ? (opts.regint || 600) : 0, CODECS: codecs,
  });
  writeFileSync(path.join(dir, 'config'), config);
  // optional display name: `"Name" <sip:...>` (RFC 3261 25.1 quoted-string; " and \ escaped)
  const named = opts.displayName
    ? accounts.replace(/^</m, `"${String(opts.displayName).replace(/["\\]/g, (c) => `\\${c}`)}" <`)
    : accounts;
  writeFileSync(path.join(dir, 'accounts'), named);
  writeFileSync(path.join(dir, 'contacts'), '');

  // -v: verbose log (incoming telephone-events are logged as "received event")
  const proc = spawnLogged('baresip', bin, ['-v', '-f', dir], dir, path.join(dir, 'baresip.log'));

  const events = [];
  const responses = new Map();
  const waiters = new Set();
  let closed = false;
  const wake = () => { for (const w of [...waiters]) w(); };

  const connectEnd = Date.now() + 15000;
  let sock;
  for (;;) {
    if (proc.exited) {
      const tail = proc.tail();
      await proc.stop();
      removeDir(dir);
      throw new Error(`baresip exited while starting:\n${tail}`);
    }
    sock = await new Promise((resolve) => {
      const c = net.connect(ctrlPort, '127.0.0.1');
      c.once('connect', () => resolve(c));
      c.once('error', () => resolve(null));
    });
    if (sock) break;
    if (Date.now() >= connectEnd) {
      const tail = proc.tail();
      await proc.stop();
      removeDir(dir);
      throw new Error(`baresip ctrl_tcp not listening on 127.0.0.1:${ctrlPort}; log:\n${tail}`);
    }
    await sleep(100);
  }

  // netstring frames: `<len>:<json>,`
  let pending = Buffer.alloc(0);
  sock.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      let start = 0;
      while (start < pending.length && !(pending[start] >= 0x30 && pending[start] <= 0x39)) start++;
      const colon = pending.indexOf(0x3a, start);
      if (colon < 0) { pending = pending.subarray(start); break; }
      const len = Number(pending.subarray(start, colon).toString('latin1'));
      if (!Number.isFinite(len) || pending.length < colon + 1 + len + 1) { pending = pending.subarray(start); break; }
      const payload = pending.subarray(colon + 1, colon + 1 + len).toString('utf8');
      pending = pending.subarray(colon + 1 + len + 1);
      let v;
      try { v = JSON.parse(payload); } catch { continue; }
      if (v && v.event === true) events.push(v);
      else if (v && v.token) responses.set(v.token, v);
    }
    wake();
  });
  sock.on('close', () => { closed = true; wake(); });
  sock.on('error', () => { closed = true; wake(); });

  const waitFor = (check, timeoutMs, describe) => new Promise((resolve, reject) => {
    const end = Date.now() + timeoutMs;
    let timer = null;
    const tick = () => {
      let v;
      try { v = check(); } catch (e) { cleanup(); reject(e); return; }
      if (v !== undefined) { cleanup(); resolve(v); return; }
      if (proc.exited) { cleanup(); reject(new Error(`baresip exited ${describe()}; log:\n${proc.tail(30)}`)); return; }
      if (Date.now() >= end) { cleanup(); reject(new Error(`baresip: ${describe()}; log:\n${proc.tail(30)}`)); }
    };
    const cleanup = () => { waiters.delete(tick); clearInterval(timer); };
    waiters.add(tick);
    timer = setInterval(tick, 200);
    tick();
  });

  let token = 0;
  const b = {
    user,
    password,
    sipPort,
    ctrlPort,
    dir,
    /** This account's URI through the registrar (with the registrar's port; dial this from another peer). */
    uri: `sip:${user}@${DOMAIN}:${proxyPort}`,
    /** A URI that reaches baresip directly (no proxy). */
    directUri: `sip:${user}@127.0.0.1:${sipPort}`,
    logPath: proc.logPath,
    log: proc.log,
    /**
     * One ctrl_tcp command (`dial sip:1001@127.0.0.1:<kamailio port>`, `accept`, `hangup`,
     * `reginfo`, `listcalls`, ...); resolves to {ok, data} (data without colour codes).
     * baresip 1.0 may answer ok:false to a dial that worked: check the events.
     */
    command(line, timeoutMs = 10000) {
      proc.assertRunning('before a command');
      if (closed) return Promise.reject(new Error('baresip ctrl_tcp connection closed'));
      const i = line.indexOf(' ');
      const [cmd, params] = i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
      const t = `wpe${++token}`;
      const req = JSON.stringify({ command: cmd, params, token: t });
      sock.write(`${Buffer.byteLength(req)}:${req},`);
      return waitFor(() => {
        const r = responses.get(t);
        if (r) { responses.delete(t); return { ok: r.ok === true, data: stripAnsi(r.data) }; }
        if (closed) throw new Error(`baresip ctrl_tcp closed before the response to ${line}`);
        return undefined;
      }, timeoutMs, () => `no response to ${JSON.stringify(line)}`);
    },
    /** Every ctrl_tcp event so far ({type, class, param, peeruri, id, ...}). */
    events: () => events.slice(),
    /** `TYPE(param)` of every event so far. */
    eventTypes: () => events.map((e) => `${e.type}(${e.param || ''})`),
    /** Resolves to the first event of `type` (whose param satisfies `pred`), seen before or after the call. */
    waitEvent(type, pred = () => true, timeoutMs = 15000) {
      return waitFor(() => events.find((e) => e.type === type && pred(String(e.param || ''))),
        timeoutMs, () => `no ${type} event; events seen: ${b.eventTypes().join(' ')}`);
    },
    /** Waits until `count` events of `type` have been seen. */
    waitEventCount(type, count, timeoutMs = 15000) {
      return waitFor(() => {
        const l = events.filter((e) => e.type === type);
        return l.length >= count ? l : undefined;
      }, timeoutMs, () => `fewer than ${count} ${type} events; events seen: ${b.eventTypes().join(' ')}`);
    },
    /** DTMF keys received so far (RFC 4733 telephone-events, from CALL_DTMF_START). */
    dtmfReceived: () => events.filter((e) => e.type === 'CALL_DTMF_START').map((e) => String(e.param || '')).join(''),
    /** Waits until the received DTMF keys contain `keys`. */
    waitDtmf(keys, timeoutMs = 15000) {
      return waitFor(() => (b.dtmfReceived().includes(keys) ? b.dtmfReceived() : undefined),
        timeoutMs, () => `DTMF ${JSON.stringify(keys)} not received (got ${JSON.stringify(b.dtmfReceived())})`);
    },
    /** Is the account registered (per `reginfo`)? */
    async registered() {
      const r = await b.command('reginfo');
      return r.data.split('\n').some((l) => l.includes(`sip:${user}@`) && l.split(/\s+/).includes('OK'));
    },
    /** The received-audio recordings (`*-dec.wav`), oldest first. */
    receivedWavs() {
      try {
        return readdirSync(path.join(dir, 'rec')).filter((f) => f.endsWith('-dec.wav')).sort().map((f) => path.join(dir, 'rec', f));
      } catch { return []; }
    },
    /** Stops baresip (its process group) and removes its directory. */
    async stop() {
      try { sock.destroy(); } catch { /* closed */ }
      await proc.stop(2000);
      removeDir(dir);
    },
  };

  if (kamailioPort && opts.waitRegistered !== false) {
    const end = Date.now() + 20000;
    for (;;) {
      let ok = false;
      try { ok = await b.registered(); } catch (e) { await b.stop(); throw e; }
      if (ok) break;
      if (Date.now() >= end) {
        const tail = proc.tail(30);
        await b.stop();
        throw new Error(`baresip ${user} not registered with 127.0.0.1:${kamailioPort}; log:\n${tail}`);
      }
      await sleep(200);
    }
  }
  return b;
}
