// WebRTC interop: a WebRTC-style peer (Debian's Chromium driven by playwright-core, running
// SIP.js from npm over SIP-over-WebSocket, RFC 7118) and webphone-cli, both registered with
// Kamailio (tests/interop/peers/kamailio.cfg with its WS listener), call each other with
// Chromium's media stack: ICE (RFC 8445), DTLS-SRTP (RFC 5763/5764), rtcp-mux (RFC 5761) and
// BUNDLE (RFC 8843); audio (a video stream Chromium offers is refused).
//
// Scenario:
//   1. Chromium (1002, over WS) calls webphone-cli (1001, over UDP, autoaccept): Chromium's
//      offer (UDP/TLS/RTP/SAVPF, ICE, a=group:BUNDLE, rtcp-mux, setup:actpass, Opus/PCMU) is
//      answered; the call connects, isencrypted is 2, Chromium's getStats shows DTLS connected,
//      an SRTP cipher, a selected candidate pair on 127.0.0.1 and inbound audio
//      (packetsReceived and audioLevel > 0); webphone-cli's recording is not silent; Chromium
//      hangs up (BYE) and webphone-cli sees the call end.
//   2. webphone-cli (mediaencryption=3 + ICE) calls Chromium: our offer is accepted, the same
//      checks, plus hold and resume from webphone-cli (re-INVITEs Chromium accepts: media
//      stops and comes back over the same DTLS association), an ICE restart from Chromium
//      (our answer has new credentials, Chromium's new pair succeeds, media goes on with the
//      same DTLS association), and webphone-cli hangs up;
//      Chromium sees the session terminated.
//   3. A capture of lo (dumpcap) shows DTLS close_notify (an alert record, epoch 1) from the
//      side that hung up, each time.
//   4. Chromium calls with audio and video (a=group:BUNDLE 0 1): the answer refuses the video
//      stream (port 0, its mid, out of the group), Chromium accepts it and audio flows.
// Chromium's microphone is a 1 kHz WAV tone (--use-file-for-fake-audio-capture), webphone-cli's
// a 440 Hz one (file: audio devices); webphone-cli's recording of each call must hold the 1 kHz
// tone, and Chromium's getStats a non-zero inbound audio level.
//
// Started by run.sh (E2E_CLI, E2E_CHROMIUM, E2E_OUT). Without kamailio/openssl it skips loudly
// (CI=true: failure). Everything it starts is stopped by handle.
import http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, readFileSync, statSync, existsSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { requirePeers, startKamailio, freePort, writeTone, which } from '../e2e-peers/peers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const OUT = process.env.E2E_OUT || path.join(ROOT, 'target/e2e-webrtc');
const CLI = path.resolve(process.env.E2E_CLI || path.join(ROOT, 'target/debug/webphone-cli'));
const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 15000;
const CLI_TONE_HZ = 440;
const BROWSER_TONE_HZ = 1000;
const TALK_MS = 3000;

const say = (m) => console.log(`[e2e-webrtc] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

requirePeers(['kamailio'], 'tests/e2e-webrtc/webrtc.mjs');
if (!which('openssl')) {
  if (process.env.CI === 'true') { say('FAIL: openssl is not installed (required when CI=true)'); process.exit(1); }
  say('SKIPPED: openssl (for Kamailio\'s WS/TLS certificate) is not installed');
  process.exit(0);
}

// ---- static server: the page and SIP.js (ES modules from node_modules)
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
function staticServer() {
  const roots = { '/sip.js/': path.join(HERE, 'node_modules/sip.js/lib'), '/': path.join(HERE, 'page') };
  const server = http.createServer((req, res) => {
    let rel;
    try { rel = decodeURIComponent(new URL(req.url, 'http://x').pathname); } catch { rel = '/'; }
    if (rel === '/favicon.ico') { res.writeHead(204).end(); return; }
    const prefix = Object.keys(roots).find((p) => rel.startsWith(p));
    const base = roots[prefix];
    const file = path.resolve(base, '.' + rel.slice(prefix.length - 1));
    if (req.method !== 'GET' || !file.startsWith(base + path.sep)) { res.writeHead(403).end(); return; }
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
      res.end(readFileSync(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ---- webphone-cli: one API call per stdin line, notifications on stdout
function startCli(dir, logFile, params) {
  const args = ['--callbacks'];
  for (const [k, v] of Object.entries(params)) args.push('-p', `${k}=${v}`);
  const child = spawn(CLI, args, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'],
    // debug for webphone_media: the close_notify check reads its log line
    env: { ...process.env, RUST_LOG: 'info,webphone_media=debug', HOME: dir } });
  const lines = [];
  let stderr = '';
  let buf = '';
  child.on('error', (e) => { stderr += `spawn failed: ${e.message}\n`; });
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i).replace(/\r$/, '')); buf = buf.slice(i + 1); }
  });
  const logOut = createWriteStream(logFile);
  child.stderr.on('data', (d) => { stderr += d; logOut.write(d); });
  const cli = {
    child,
    lines,
    stderr: () => stderr,
    send(line) { child.stdin.write(`${line}\n`); },
    /** Waits for a stdout line (from index `from`) matching `re`; resolves to [index, line]. */
    async expect(re, from = 0, timeoutMs = TIMEOUT) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        for (let i = from; i < lines.length; i++) if (re.test(lines[i])) return [i, lines[i]];
        if (child.exitCode !== null) throw new Error(`webphone-cli exited (${child.exitCode}) waiting for ${re}`);
        if (Date.now() >= end) throw new Error(`webphone-cli: no line matching ${re}; last lines:\n${lines.slice(-25).join('\n')}`);
        await sleep(50);
      }
    },
    /** One API call; resolves to the RESULT value. */
    async api(call) {
      const from = lines.length;
      const fn = call.split(' ')[0];
      cli.send(call);
      const [, l] = await cli.expect(new RegExp(`^(RESULT|ERROR),${fn},`), from);
      if (l.startsWith('ERROR')) throw new Error(`webphone-cli ${call}: ${l}`);
      return l.slice(`RESULT,${fn},`.length);
    },
  };
  return cli;
}

function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => { clearTimeout(kill); resolve(); });
    if (!child.stdin) { child.kill('SIGTERM'); return; }
    try { child.stdin.write('quit\n'); } catch { /* closed */ }
    setTimeout(() => { if (child.exitCode === null) child.kill('SIGTERM'); }, 2000);
  });
}

// ---- WAV analysis: level of a tone (Goertzel) and of everything
function readWav(file) {
  const b = readFileSync(file);
  let off = 12;
  let rate = 8000;
  let data = null;
  while (off + 8 <= b.length) {
    const id = b.toString('latin1', off, off + 4);
    const size = b.readUInt32LE(off + 4);
    if (id === 'fmt ') rate = b.readUInt32LE(off + 12);
    if (id === 'data') { data = b.subarray(off + 8, Math.min(b.length, off + 8 + size)); break; }
    off += 8 + size + (size & 1);
  }
  if (!data) throw new Error(`${file}: no data chunk`);
  const n = Math.floor(data.length / 2);
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) s[i] = data.readInt16LE(i * 2) / 32768;
  return { rate, samples: s };
}

/** {rmsDb, toneDb, seconds}: whole-file RMS and the power at `hz` (dBFS of a sine's RMS). */
function toneLevel(file, hz) {
  const { rate, samples } = readWav(file);
  let sum = 0;
  for (const v of samples) sum += v * v;
  const rms = Math.sqrt(sum / Math.max(1, samples.length));
  // Goertzel over 100 ms blocks; the best quarter of blocks (the call may start late in the file)
  const block = Math.round(rate / 10);
  const k = 2 * Math.cos(2 * Math.PI * hz / rate);
  const powers = [];
  for (let start = 0; start + block <= samples.length; start += block) {
    let s1 = 0; let s2 = 0;
    for (let i = start; i < start + block; i++) { const s0 = samples[i] + k * s1 - s2; s2 = s1; s1 = s0; }
    const p = s1 * s1 + s2 * s2 - k * s1 * s2;
    powers.push(Math.sqrt(2 * p) / block); // amplitude of the component
  }
  powers.sort((a, b) => b - a);
  const top = powers.slice(0, Math.max(1, Math.floor(powers.length / 4)));
  const amp = top.reduce((a, b) => a + b, 0) / top.length;
  const db = (x) => (x > 0 ? 20 * Math.log10(x) : -200);
  return { rmsDb: db(rms), toneDb: db(amp / Math.SQRT2), seconds: samples.length / rate };
}

function assertHeard(file, hz, what) {
  if (!existsSync(file)) throw new Error(`${what}: no recording at ${file}`);
  const l = toneLevel(file, hz);
  say(`${what}: recording ${l.seconds.toFixed(1)} s, RMS ${l.rmsDb.toFixed(1)} dBFS, ${hz} Hz at ${l.toneDb.toFixed(1)} dBFS`);
  if (!(l.toneDb > -30)) throw new Error(`${what}: the ${hz} Hz tone is missing from ${file} (${l.toneDb.toFixed(1)} dBFS)`);
}

// ---- what the browser's getStats must show after some talking
async function browserMedia(page, what) {
  const st = await page.evaluate(() => window.peer.stats());
  if (!st || !st.transport) throw new Error(`${what}: no transport stats in the browser: ${JSON.stringify(st && st.types)}`);
  const t = st.transport;
  const inb = st.inbound || {};
  const outb = st.outbound || {};
  const local = st.local || {};
  const remote = st.remote || {};
  say(`${what}: browser transport dtlsState=${t.dtlsState} srtpCipher=${t.srtpCipher} dtlsRole=${t.dtlsRole} `
    + `pair ${local.address}:${local.port} -> ${remote.address}:${remote.port} (${remote.candidateType}); `
    + `inbound ${st.codec ? st.codec.mimeType : '?'} packetsReceived=${inb.packetsReceived} audioLevel=${inb.audioLevel} `
    + `totalAudioEnergy=${inb.totalAudioEnergy}; outbound packetsSent=${outb.packetsSent}`);
  if (t.dtlsState !== 'connected') throw new Error(`${what}: DTLS state ${t.dtlsState}`);
  if (!t.srtpCipher) throw new Error(`${what}: no SRTP cipher`);
  if (remote.address !== '127.0.0.1') throw new Error(`${what}: selected remote candidate ${remote.address}`);
  if (!(inb.packetsReceived > 50)) throw new Error(`${what}: browser received ${inb.packetsReceived} RTP packets`);
  if (!(inb.audioLevel > 0) && !(inb.totalAudioEnergy > 0)) throw new Error(`${what}: browser hears silence (audioLevel ${inb.audioLevel})`);
  if (!(outb.packetsSent > 50)) throw new Error(`${what}: browser sent ${outb.packetsSent} RTP packets`);
  return st;
}

// ---- the wire: dumpcap on lo (UDP only, first bytes of each payload), read back as a classic pcap
function startCapture(dir) {
  const bin = which('dumpcap');
  if (!bin) return null;
  const file = path.join(dir, 'udp.pcap');
  const child = spawn(bin, ['-q', '-i', 'lo', '-P', '-s', '128', '-a', 'duration:90', '-f', 'udp and host 127.0.0.1', '-w', file],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return {
    child, file, err: () => err,
    async ready() {
      const end = Date.now() + 5000;
      while (!existsSync(file) && Date.now() < end && child.exitCode === null) await sleep(50);
      await sleep(300);
      if (!existsSync(file)) throw new Error(`dumpcap did not start: ${err}`);
    },
  };
}

/** UDP datagrams of a classic pcap: {sport, dport, head (captured payload start)}. */
function udpDatagrams(file) {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (i) => (le ? b.readUInt32LE(i) : b.readUInt32BE(i));
  const linkHeader = { 1: 14, 113: 16, 276: 20, 101: 0 }[u32(20)];
  if (linkHeader === undefined) throw new Error(`unexpected pcap link type ${u32(20)}`);
  const out = [];
  for (let i = 24; i + 16 <= b.length;) {
    const incl = u32(i + 8);
    const frame = b.subarray(i + 16, i + 16 + incl);
    i += 16 + incl;
    const ip = frame.subarray(linkHeader);
    if (ip.length < 20 || (ip[0] >> 4) !== 4 || ip[9] !== 17) continue;
    const udp = ip.subarray((ip[0] & 0x0f) * 4);
    if (udp.length < 8) continue;
    out.push({ sport: udp.readUInt16BE(0), dport: udp.readUInt16BE(2), head: udp.subarray(8) });
  }
  return out;
}

/** Epochs of the DTLS alert records (content type 21, RFC 6347 §4.1) matching `pick`. */
function dtlsAlerts(datagrams, pick) {
  return datagrams.filter((d) => pick(d) && d.head.length >= 13 && d.head[0] === 21)
    .map((d) => d.head.readUInt16BE(3));
}

const mPort = (sdp) => Number((/^m=audio (\d+) /m.exec(sdp) || [])[1]);

function sdpSummary(sdp) {
  const keep = /^(m=|a=group:|a=mid:|a=setup:|a=rtcp-mux|a=ice-lite|a=fingerprint:|a=candidate:)/;
  return sdp.split(/\r?\n/).filter((l) => keep.test(l)).map((l) => (l.startsWith('a=fingerprint') ? l.slice(0, 40) + '...' : l)).join(' | ');
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-webrtc-'));
  const userDataDir = path.join(dir, 'chromium');
  let kamailio = null;
  let server = null;
  let cli = null;
  let context = null;
  let page = null;
  let capture = null;
  let failed = false;
  try {
    // Kamailio with its WS listener (the config needs the TLS certificate for that part)
    const cert = path.join(dir, 'server.crt');
    const key = path.join(dir, 'server.key');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-days', '2', '-subj', '/CN=webphone-e2e-webrtc', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', key, '-out', cert], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
    const [tlsPort, wsPort, wssPort] = [await freePort(), await freePort(), await freePort()];
    kamailio = await startKamailio({ defines: ['WITH_TLS', `TLS_PORT=${tlsPort}`, `WS_PORT=${wsPort}`,
      `WSS_PORT=${wssPort}`, `TLS_CERT="${cert}"`, `TLS_KEY="${key}"`] });

    // webphone-cli as 1001 over UDP, offering DTLS-SRTP with ICE
    const cliTone = path.join(dir, 'cli-tone440-8k.wav');
    writeTone(cliTone, CLI_TONE_HZ, 8000, 30, 0.5);
    const browserTone = path.join(dir, 'browser-tone1000-48k.wav');
    writeTone(browserTone, BROWSER_TONE_HZ, 48000, 30, 0.5);
    const rec = (n) => path.join(dir, `cli-received-${n}.wav`);
    cli = startCli(dir, path.join(OUT, 'webphone-cli.log'), {
      serveraddress: kamailio.addr, username: '1001', password: 'pass1001', transport: '0',
      // mediaencryption=3 alone: DTLS-SRTP offers come with ICE (use_fast_ice stays 1 = auto)
      mediaencryption: '3', autoaccept: 'true', loglevel: '5',
      audiodevicein: `file:${cliTone}`, audiodeviceout: `file:${rec(1)}`,
    });
    await cli.expect(/^STATUS,-1,Registered/);
    await kamailio.waitLine(['REGISTERED 1001']);

    server = await staticServer();
    const origin = `http://127.0.0.1:${server.address().port}`;
    say(`kamailio ${kamailio.addr} (ws ${wsPort}), webphone-cli 1001 registered over UDP, page ${origin}`);

    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-quic',
        '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${browserTone}`,
        '--autoplay-policy=no-user-gesture-required',
        // loopback host candidates, shown as addresses (not mDNS names)
        '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'],
    });
    await context.grantPermissions(['microphone'], { origin });
    page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (e) => say(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') say(`page console: ${m.text()}`); });
    const q = new URLSearchParams({ ws: `ws://127.0.0.1:${wsPort}`, user: '1002', password: 'pass1002', domain: '127.0.0.1' });
    await page.goto(`${origin}/index.html?${q}`);
    await page.waitForSelector('body[data-state="registered"]', { timeout: TIMEOUT });
    await kamailio.waitLine(['REGISTERED 1002']);
    say('SIP.js in Chromium registered as 1002 over WS');

    // The wire, from here on (dumpcap; required under CI=true)
    capture = startCapture(dir);
    if (capture) {
      try {
        await capture.ready();
      } catch (e) {
        if (process.env.CI === 'true') throw e;
        say(`${e.message}: close_notify checked in the log only`);
        await stopChild(capture.child);
        capture = null;
      }
    } else if (process.env.CI === 'true') throw new Error('dumpcap (package tshark) is not installed (required when CI=true)');
    else say('dumpcap not installed: close_notify checked in the log only');

    // ---- 1. Chromium calls webphone-cli
    let mark = cli.lines.length;
    await page.evaluate((t) => window.peer.call(t), `sip:1001@127.0.0.1`);
    await cli.expect(/^STATUS,1,(CallConnect|InCall)/, mark);
    await page.waitForSelector('body[data-state="incall"]', { timeout: TIMEOUT });
    const offer1 = await page.evaluate(() => window.peer.localSdps[0]);
    const answer1 = await page.evaluate(() => window.peer.remoteSdps[0]);
    say(`1. Chromium's offer: ${sdpSummary(offer1)}`);
    say(`1. our answer: ${sdpSummary(answer1)}`);
    await sleep(TALK_MS);
    const enc1 = await cli.api('isencrypted');
    say(`1. webphone-cli isencrypted = ${enc1}`);
    if (enc1.trim() !== '2') throw new Error(`1. isencrypted is ${enc1}, not 2`);
    await browserMedia(page, '1. Chromium -> webphone-cli');
    await page.evaluate(() => window.peer.hangup());
    await cli.expect(/^CDR,/, mark);
    await page.waitForFunction(() => window.peer.ended >= 1, null, { timeout: TIMEOUT });
    say('1. Chromium hung up: webphone-cli wrote the CDR');
    // Chromium closes its DTLS association with close_notify too; whether it arrives before
    // the BYE has ended our media session is a race, so it is only reported.
    const peerClosed = cli.stderr().includes('DTLS peer sent close_notify');
    say(`1. Chromium's DTLS close_notify ${peerClosed ? 'read by webphone-cli' : 'arrived after our media session ended'}`);
    assertHeard(rec(1), BROWSER_TONE_HZ, '1. webphone-cli hearing Chromium');

    // ---- 2. webphone-cli calls Chromium
    await cli.api(`setparameter audiodeviceout file:${rec(2)}`);
    mark = cli.lines.length;
    const calling = page.waitForSelector('body[data-state="ringing"]', { timeout: TIMEOUT });
    await cli.api('call 1002');
    await calling;
    await page.evaluate(() => window.peer.accept());
    await cli.expect(/^STATUS,1,(CallConnect|InCall)/, mark);
    await page.waitForSelector('body[data-state="incall"]', { timeout: TIMEOUT });
    const offer2 = await page.evaluate(() => window.peer.remoteSdps[1]);
    const answer2 = await page.evaluate(() => window.peer.localSdps[1]);
    say(`2. our offer: ${sdpSummary(offer2)}`);
    say(`2. Chromium's answer: ${sdpSummary(answer2)}`);
    await sleep(TALK_MS);
    // hold and resume: re-offers with the same ICE credentials, fingerprint and mid keep the
    // DTLS association (no new handshake); media stops towards the browser and comes back
    const inbound = async () => (await page.evaluate(() => window.peer.stats())).inbound.packetsReceived;
    let m0 = cli.lines.length;
    await cli.api('hold true');
    await cli.expect(/^STATUS,1,Hold,/, m0);
    await sleep(500);
    const heldFrom = await inbound();
    await sleep(1000);
    const heldTo = await inbound();
    m0 = cli.lines.length;
    await cli.api('hold false');
    await cli.expect(/^STATUS,1,InCall,/, m0);
    await sleep(500);
    const resumedFrom = await inbound();
    await sleep(1000);
    const resumedTo = await inbound();
    say(`2. hold: browser received ${heldTo - heldFrom} packets in 1 s; resumed: ${resumedTo - resumedFrom} in 1 s`);
    if (heldTo - heldFrom > 5) throw new Error(`2. media kept coming during hold (${heldTo - heldFrom} packets)`);
    if (resumedTo - resumedFrom < 25) throw new Error(`2. media did not come back after resume (${resumedTo - resumedFrom} packets)`);
    // Chromium restarts ICE (re-INVITE with new ice-ufrag/ice-pwd): our answer must carry new
    // credentials too and the checks run again; the browser's new pair succeeds and media
    // goes on over it, with the same DTLS association
    const ufrag = (sdp) => (/^a=ice-ufrag:(\S+)/m.exec(sdp) || [])[1];
    const before = await page.evaluate(() => window.peer.stats());
    const known = await page.evaluate(() => window.peer.remoteSdps.length);
    m0 = cli.lines.length;
    await page.evaluate(() => window.peer.restartIce());
    await page.waitForFunction((n) => window.peer.remoteSdps.length > n, known, { timeout: TIMEOUT });
    const reOffer = await page.evaluate(() => window.peer.localSdps.at(-1));
    const reAnswer = await page.evaluate(() => window.peer.remoteSdps.at(-1));
    say(`2. ICE restart: Chromium's ufrag ${ufrag(answer2)} -> ${ufrag(reOffer)}, ours ${ufrag(offer2)} -> ${ufrag(reAnswer)}`);
    if (!ufrag(reOffer) || ufrag(reOffer) === ufrag(answer2)) throw new Error('2. Chromium\'s re-offer did not restart ICE');
    if (!ufrag(reAnswer) || ufrag(reAnswer) === ufrag(offer2)) throw new Error('2. our answer to an ICE restart kept the old ice-ufrag');
    let restarted = null;
    const restartEnd = Date.now() + 10000;
    while (Date.now() < restartEnd) {
      const st = await page.evaluate(() => window.peer.stats());
      if (st && st.transport && st.pair && st.transport.iceLocalUsernameFragment === ufrag(reOffer)
        && st.pair.state === 'succeeded' && st.transport.selectedCandidatePairId !== before.transport.selectedCandidatePairId) {
        restarted = st;
        break;
      }
      await sleep(200);
    }
    if (!restarted) {
      const st = await page.evaluate(() => window.peer.stats());
      throw new Error(`2. Chromium has no new succeeded pair after the ICE restart: ${JSON.stringify(st && { transport: st.transport, pair: st.pair })}`);
    }
    const afterFrom = await inbound();
    await sleep(1000);
    const afterTo = await inbound();
    say(`2. after the ICE restart: new pair ${restarted.transport.selectedCandidatePairId} (${restarted.pair.state}), browser received ${afterTo - afterFrom} packets in 1 s`);
    if (afterTo - afterFrom < 25) throw new Error(`2. media did not continue after the ICE restart (${afterTo - afterFrom} packets)`);
    if (!cli.stderr().includes('ICE restart')) throw new Error('2. webphone-cli did not log an ICE restart');
    const handshakes = (cli.stderr().match(/DTLS-SRTP handshake started/g) || []).length;
    if (handshakes !== 2) throw new Error(`2. ${handshakes} DTLS handshakes in two calls: hold/resume and an ICE restart must keep the association`);
    const enc2 = await cli.api('isencrypted');
    say(`2. webphone-cli isencrypted = ${enc2}`);
    if (enc2.trim() !== '2') throw new Error(`2. isencrypted is ${enc2}, not 2`);
    await browserMedia(page, '2. webphone-cli -> Chromium');
    const beforeHangup = cli.stderr().length;
    await cli.api('hangup');
    await cli.expect(/^CDR,/, mark);
    await page.waitForFunction(() => window.peer.ended >= 2, null, { timeout: TIMEOUT });
    say('2. webphone-cli hung up: the browser session terminated');
    // The media session's end sent DTLS close_notify (RFC 5246 §7.2.1) over the ICE pair
    // (the alert itself is checked in webphone-media's unit tests).
    const end = Date.now() + 5000;
    while (!cli.stderr().slice(beforeHangup).includes('DTLS close_notify queued') && Date.now() < end) await sleep(100);
    if (!cli.stderr().slice(beforeHangup).includes('DTLS close_notify queued')) throw new Error('2. no DTLS close_notify at hang-up');
    say('2. webphone-cli sent DTLS close_notify at hang-up');
    assertHeard(rec(2), BROWSER_TONE_HZ, '2. webphone-cli hearing Chromium');
    if (capture) {
      // DTLS close_notify on the wire: an alert record (content type 21) protected with the
      // handshake's keys (epoch 1), from the side that hung up to the other's media port.
      await sleep(500);
      await stopChild(capture.child);
      const dgrams = udpDatagrams(capture.file);
      // our media ports from our SDP; Chromium's source port may be another socket than its m=
      const [c1, c2] = [mPort(answer1), mPort(offer2)];
      const chromiumBye = dtlsAlerts(dgrams, (d) => d.dport === c1);
      const ourBye = dtlsAlerts(dgrams, (d) => d.sport === c2);
      say(`wire: ${dgrams.length} UDP datagrams; DTLS alerts: call 1 to webphone-cli :${c1} epochs [${chromiumBye}], `
        + `from it [${dtlsAlerts(dgrams, (d) => d.sport === c1)}]; call 2 from webphone-cli :${c2} epochs [${ourBye}]`);
      if (!ourBye.some((e) => e >= 1)) throw new Error('2. no encrypted DTLS alert (close_notify) from webphone-cli to Chromium on the wire');
      if (!chromiumBye.some((e) => e >= 1)) throw new Error('1. no encrypted DTLS alert (close_notify) from Chromium on the wire');
      say('close_notify on the wire: Chromium\'s when it hung up (call 1), ours when we hung up (call 2)');
    }

    // ---- 4. Chromium offers audio and video (BUNDLE 0 1): video is refused inside the answer
    await cli.api(`setparameter audiodeviceout file:${rec(3)}`);
    mark = cli.lines.length;
    await page.evaluate((t) => window.peer.call(t, true), `sip:1001@127.0.0.1`);
    await cli.expect(/^STATUS,1,(CallConnect|InCall)/, mark);
    await page.waitForSelector('body[data-state="incall"]', { timeout: TIMEOUT });
    const offer3 = await page.evaluate(() => window.peer.localSdps.at(-1));
    const answer3 = await page.evaluate(() => window.peer.remoteSdps.at(-1));
    say(`4. Chromium's offer: ${sdpSummary(offer3)}`);
    say(`4. our answer: ${sdpSummary(answer3)}`);
    if (!/^a=group:BUNDLE 0 1\r?$/m.test(offer3) || !/^m=video /m.test(offer3)) throw new Error('4. Chromium offered no video in a BUNDLE group');
    if (!/^a=group:BUNDLE 0\r?$/m.test(answer3) || !/^m=video 0 [^\r\n]*\r?\na=mid:1\r?$/m.test(answer3)) {
      throw new Error('4. the answer must keep BUNDLE 0 and refuse the video stream with port 0 and its mid');
    }
    await sleep(2000);
    const st3 = await browserMedia(page, '4. Chromium (audio+video offer) -> webphone-cli');
    if (st3.inbound.packetsReceived < 50) throw new Error('4. no audio');
    await page.evaluate(() => window.peer.hangup());
    await cli.expect(/^CDR,/, mark);
    await page.waitForFunction(() => window.peer.ended >= 3, null, { timeout: TIMEOUT });
    assertHeard(rec(3), BROWSER_TONE_HZ, '4. webphone-cli hearing Chromium');
    await page.screenshot({ path: path.join(OUT, 'webrtc-peer.png'), fullPage: true });
    say('PASS');
  } catch (e) {
    failed = true;
    say(`FAIL: ${e && e.stack ? e.stack : e}`);
    if (page) {
      const log = await page.textContent('#log').catch(() => '');
      say(`page log:\n${log}`);
      const sdps = await page.evaluate(() => ({ l: window.peer.localSdps, r: window.peer.remoteSdps })).catch(() => null);
      if (sdps) say(`browser local SDPs:\n${sdps.l.join('\n----\n')}\nremote SDPs:\n${sdps.r.join('\n----\n')}`);
    }
    if (kamailio) say('kamailio:\n  ' + kamailio.lines().slice(-30).join('\n  '));
    if (cli) say('webphone-cli stdout:\n' + cli.lines.slice(-30).join('\n') + '\nstderr:\n' + cli.stderr().split('\n').slice(-60).join('\n'));
  } finally {
    if (capture) await stopChild(capture.child);
    if (context) await context.close().catch(() => {});
    if (cli) await stopChild(cli.child);
    if (server) { server.closeAllConnections?.(); server.close(); }
    if (kamailio) await kamailio.stop();
    if (process.env.E2E_KEEP === '1') say(`kept ${dir}`); else rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main();
