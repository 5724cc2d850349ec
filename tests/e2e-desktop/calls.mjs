// Desktop end-to-end test against real peers on loopback (issue 8): the WebPhone app (driven by
// tauri-driver + WebKitWebDriver, like smoke.mjs) registers as 1001 with Kamailio, baresip 1002
// calls it, the incoming-call pop-up appears and Accept there connects the call; audio flows both
// ways through the engine's file devices (the app sends a 1000 Hz tone and records what it
// hears, baresip sends 440 Hz and records what it hears: each recording must carry the other
// side's tone, checked with Goertzel like tests/interop/src/audio.rs); the tray's Calls menu
// offers the ringing call and hangs up the connected one, and the
// skin's history page lists the call, the tray's recent numbers too. Then, in the same app:
// the tray icon's picture follows registration, missed calls and do-not-disturb (read from the
// StatusNotifier item the app registers on the test session bus, and from the screen where
// gtk-sni-tray-standalone, a real StatusNotifier watcher and tray host, draws it),
// do-not-disturb chosen in the menu that host opens from the icon rejects baresip's call, real key presses (xdotool) of the answer / hang-up shortcuts act on a
// call, the incoming-call OS notification carries the caller and its Accept button connects the
// call (dunst, a real notification server on the test session bus and X display, watched by
// desktop-bus.py; its stand-in server where dunst is missing), a second launch with a `sip:` link dials baresip, a second launch with a `webphone:`
// link provisions another account (Kamailio sees it register), start at login writes and
// removes the OS autostart entry. A second session checks the remembered window size and
// `--minimized`. Prints launch-to-registered time and the memory of all app processes (idle
// and in a call).
//
// Started by run.sh (display, D-Bus session, tauri-driver), with the variables of smoke.mjs:
//   E2E_DRIVER_URL, E2E_APP, E2E_OUT, E2E_WORK_DIR (an empty directory), E2E_KEYRING
// Peers come from tests/e2e-peers/peers.mjs; without kamailio/baresip the test skips loudly
// (fails with CI=true).
import { Builder, By, until } from 'selenium-webdriver';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { requirePeers, startKamailio, startBaresip, freePort, writeTone, readWav, toneLevel, assertTone } from '../e2e-peers/peers.mjs';

const env = (name) => {
  const v = process.env[name];
  if (!v) { throw new Error(`${name} is not set (run tests/e2e-desktop/run.sh)`); }
  return v;
};
const DRIVER_URL = env('E2E_DRIVER_URL');
const APP = env('E2E_APP');
const OUT = env('E2E_OUT');
const WORK_DIR = join(env('E2E_WORK_DIR'), 'calls');
const DBUS = process.env.E2E_KEYRING === '1' && !!process.env.DBUS_SESSION_BUS_ADDRESS;

requirePeers(['kamailio', 'baresip'], 'tests/e2e-desktop/calls.mjs');
const HERE = dirname(fileURLToPath(import.meta.url));
const CI = process.env.CI === 'true';

/** A tool the desktop checks need: missing fails under CI=true, else returns false (the step skips loudly). */
function tool(ok, what) {
  if (ok) { return true; }
  if (CI) { throw new Error(`${what} is missing (required when CI=true; scripts/setup-system.sh installs it)`); }
  console.log(`==================================================================\nSKIPPING checks: ${what} is missing\n==================================================================`);
  return false;
}
const PYTHON = process.env.E2E_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const HAVE_BUS_PY = DBUS && tool(spawnSync(PYTHON, ['-c', 'import dbus, gi'], { stdio: 'ignore' }).status === 0,
  `${PYTHON} with the dbus and gi modules (python3-dbus, python3-gi)`);
// The notification server: dunst (a real one, drawing on the X display) when installed, else
// desktop-bus.py's own stand-in.
const HAVE_DUNST = HAVE_BUS_PY && process.env.E2E_PRIVATE_BUS === '1' && tool(spawnSync('dunst', ['-v'], { stdio: 'ignore' }).status === 0
  && spawnSync('dunstctl', ['--help'], { stdio: 'ignore' }).status !== null, 'dunst (the notification server)');
// The StatusNotifier watcher and tray host: gtk-sni-tray-standalone (a real one, drawing the icon
// and its menu on the X display) when installed, else desktop-bus.py's own stand-in watcher.
const HAVE_TRAY_HOST = HAVE_BUS_PY && process.env.E2E_PRIVATE_BUS === '1'
  && tool(spawnSync('gtk-sni-tray-standalone', ['--version'], { stdio: 'ignore' }).status === 0, 'gtk-sni-tray-standalone (package haskell-gtk-sni-tray-utils, the tray host)')
  && tool(spawnSync('import', ['-version'], { stdio: 'ignore' }).status === 0, 'import (package imagemagick: the tray host\'s pixels)')
  && tool(spawnSync('xwininfo', ['-version'], { stdio: 'ignore' }).status === 0, 'xwininfo (package x11-utils)');
const HAVE_XDOTOOL = tool(spawnSync('xdotool', ['version'], { stdio: 'ignore' }).status === 0, 'xdotool');

const t0 = Date.now();
const ms = () => `${String(Date.now() - t0).padStart(5)} ms`;
const results = [];
const numbers = [];
function pass(step, detail = '') { results.push(['PASS', step]); console.log(`${ms()}  PASS  ${step}${detail ? ': ' + detail : ''}`); }
function skip(step, why) { results.push(['SKIP', step]); console.log(`${ms()}  SKIP  ${step}: ${why}`); }
function number(name, value) { numbers.push(`${name}: ${value}`); console.log(`${ms()}  NUMBER ${name}: ${value}`); }
const sleep = (n) => new Promise((r) => setTimeout(r, n));

mkdirSync(OUT, { recursive: true });
mkdirSync(WORK_DIR, { recursive: true });

// ------------------------------------------------------------------------------ WAV + Goertzel

// Self-check of the analysis on generated tones (a broken detector must not pass the call).
{
  const f = join(WORK_DIR, 'selfcheck.wav');
  writeTone(f, 440, 8000, 2, 0.25);
  const hit = toneLevel(f, 440); const miss = toneLevel(f, 1000);
  if (!hit.dominant || Math.abs(hit.dbfs - 20 * Math.log10(0.25)) > 1 || miss.dominant) {
    throw new Error(`Goertzel self-check failed: ${JSON.stringify({ hit, miss })}`);
  }
}

// ------------------------------------------------------------------------------ desktop bus, tray picture

/**
 * desktop-bus.py on the test session bus: the notification server (dunst, or its stand-in) and
 * the StatusNotifier watcher (gtk-sni-tray-standalone, or its stand-in). events() lists what it
 * reported; request('icon') reads the tray item's picture.
 */
async function startDesktopBus() {
  const args = [join(HERE, 'desktop-bus.py')];
  if (HAVE_DUNST) { args.push('--dunst', join(WORK_DIR, 'dunst')); }
  if (HAVE_TRAY_HOST) { args.push('--tray-host', join(WORK_DIR, 'tray-host')); }
  const proc = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const events = [];
  let buf = '';
  let tag = 0;
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      try { events.push(JSON.parse(line)); } catch { console.log(`desktop-bus: ${line}`); }
    }
  });
  const until = async (pred, ms, what) => {
    for (const end = Date.now() + ms; Date.now() < end;) {
      const e = events.find(pred);
      if (e) { return e; }
      if (proc.exitCode !== null) { throw new Error(`desktop-bus.py exited (${proc.exitCode})`); }
      await sleep(50);
    }
    throw new Error(`desktop-bus: no ${what} within ${ms} ms (events: ${JSON.stringify(events.map((e) => e.ev))})`);
  };
  const ready = await until((e) => e.ev === 'ready', 15000, 'ready');
  return {
    server: ready.server ? ready.server.join(' ') : null,
    watcher: ready.watcher,
    events: () => events,
    until,
    send: (line) => proc.stdin.write(`${line}\n`),
    async request(cmd) {
      const t = String(++tag);
      proc.stdin.write(`${cmd} ${t}\n`);
      return until((e) => e.ev === cmd && e.tag === t, 5000, `${cmd} reply`);
    },
    stop: async () => { proc.stdin.end(); await new Promise((r) => { const t = setTimeout(() => { proc.kill('SIGKILL'); r(); }, 3000); proc.once('exit', () => { clearTimeout(t); r(); }); }); },
  };
}

/** Pixels of an 8-bit RGBA or RGB, non-interlaced PNG (what the tray icon crate writes). */
function decodePng(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47) { throw new Error('not a PNG'); }
  let off = 8; let w = 0; let h = 0; let type = 0; const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off); const id = buf.toString('latin1', off + 4, off + 8);
    const body = buf.subarray(off + 8, off + 8 + len);
    if (id === 'IHDR') {
      w = body.readUInt32BE(0); h = body.readUInt32BE(4); type = body[9];
      if (body[8] !== 8 || (type !== 6 && type !== 2) || body[12] !== 0) { throw new Error(`PNG depth ${body[8]} type ${type} interlace ${body[12]}`); }
    } else if (id === 'IDAT') { idat.push(body); }
    off += 12 + len;
  }
  const bpp = type === 6 ? 4 : 3; const stride = w * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  const out = new Uint8Array(w * h * 4);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)];
    const line = Uint8Array.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? line[i - bpp] : 0; const b = prev[i]; const c = i >= bpp ? prev[i - bpp] : 0;
      let p = 0;
      if (f === 1) { p = a; } else if (f === 2) { p = b; } else if (f === 3) { p = (a + b) >> 1; } else if (f === 4) {
        const pa = Math.abs(b - c); const pb = Math.abs(a - c); const pc = Math.abs(a + b - 2 * c);
        p = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c);
      }
      line[i] = (line[i] + p) & 255;
    }
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 4; c++) { out[(y * w + x) * 4 + c] = c < bpp ? line[x * bpp + c] : 255; }
    }
    prev = line;
  }
  return { width: w, height: h, px: out };
}

// Overlay places (fractions of the side) and colours of src-tauri/src/tray_icon.rs.
const REG_COLOURS = { offline: [140, 140, 140], registering: [240, 170, 0], registered: [40, 170, 70], failed: [215, 40, 40] };
const AT_REG_DOT = [0.77, 0.77];
const AT_DND_SIGN = [0.25, 0.10]; // the red disc above the white bar
const DND_RED = [200, 25, 25];
const AT_MISSED_BADGE = [0.75, 0.06]; // the orange badge above its digit
const MISSED_ORANGE = [245, 110, 0];
function pixelAt(img, [fx, fy]) {
  const i = (Math.floor(fy * img.height) * img.width + Math.floor(fx * img.width)) * 4;
  return Array.from(img.px.subarray(i, i + 4));
}
const near = (p, rgb) => p[3] > 240 && rgb.every((v, c) => Math.abs(p[c] - v) <= 6);

/** What the tray picture the tray host sees shows: registration colour, DND sign, missed badge. */
function readTrayPicture(img) {
  const reg = Object.entries(REG_COLOURS).find(([, rgb]) => near(pixelAt(img, AT_REG_DOT), rgb));
  return {
    size: `${img.width}x${img.height}`,
    reg: reg ? reg[0] : `unknown ${pixelAt(img, AT_REG_DOT)}`,
    dnd: near(pixelAt(img, AT_DND_SIGN), DND_RED),
    missed: near(pixelAt(img, AT_MISSED_BADGE), MISSED_ORANGE),
  };
}

// ------------------------------------------------------------------------------ the tray host's bar

const HOST_BG = [0x20, 0x20, 0x20]; // desktop-bus.py starts the host with --color #202020
/**
 * The bar gtk-sni-tray-standalone draws (xwininfo), or null: its widest window (the menus it
 * opened are windows of the same name, kept unmapped once closed).
 */
function hostBarGeometry() {
  const tree = spawnSync('xwininfo', ['-root', '-tree'], { encoding: 'utf8' }).stdout || '';
  let bar = null;
  for (const m of tree.matchAll(/"gtk-sni-tray-standalone": \([^)]*\)\s+(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(-?\d+)\+(-?\d+)/g)) {
    const [w, h, x, y] = m.slice(1).map(Number);
    if (w >= 100 && h >= 16 && x >= 0 && y >= 0 && (!bar || w > bar.w)) { bar = { w, h, x, y }; }
  }
  return bar;
}
/**
 * The icons the host draws: the screen's pixels (RGBA, opaque) inside the bounding box of
 * everything in the bar that is not its background, with the box's place on the screen.
 */
function hostIcon() {
  const bar = hostBarGeometry();
  if (!bar) { return { error: 'no gtk-sni-tray-standalone bar on the display' }; }
  const rgb = execFileSync('import', ['-window', 'root', '-crop', `${bar.w}x${bar.h}+${bar.x}+${bar.y}`, '-depth', '8', 'rgb:-'],
    { maxBuffer: 1 << 22 });
  let [x0, y0, x1, y1] = [bar.w, bar.h, -1, -1];
  for (let y = 0; y < bar.h; y++) {
    for (let x = 0; x < bar.w; x++) {
      const i = (y * bar.w + x) * 3;
      if (HOST_BG.some((v, c) => Math.abs(rgb[i + c] - v) > 8)) {
        x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) { return { error: 'the bar is empty' }; }
  const width = x1 - x0 + 1; const height = y1 - y0 + 1;
  const px = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = ((y0 + y) * bar.w + x0 + x) * 3; const o = (y * width + x) * 4;
      px[o] = rgb[i]; px[o + 1] = rgb[i + 1]; px[o + 2] = rgb[i + 2]; px[o + 3] = 255;
    }
  }
  return { x: bar.x + x0, y: bar.y + y0, width, height, px };
}

// ------------------------------------------------------------------------------ app helpers

const APP_TONE_HZ = 1000;
const PEER_TONE_HZ = 440;
const appTone = join(WORK_DIR, 'app-tone1000.wav');
writeTone(appTone, APP_TONE_HZ, 48000, 30, 0.5);
const appRec = join(WORK_DIR, 'app-received.wav');

let driver = null;
const started = [];

function session(args) {
  return new Builder()
    .usingServer(DRIVER_URL)
    .withCapabilities({ browserName: 'wry', 'tauri:options': { application: APP, args: ['--work-dir', WORK_DIR, ...args] } })
    .build();
}

function appMemory() {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,rss=,args='], { encoding: 'utf8' }).trim().split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/)).filter(Boolean)
    .map((m) => ({ pid: +m[1], ppid: +m[2], rss: +m[3], args: m[4] }));
  const roots = rows.filter((r) => r.args.split(' ')[0] === APP);
  if (roots.length !== 1) { throw new Error(`expected one app process, found ${roots.length}`); }
  const tree = new Set([roots[0].pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows) { if (!tree.has(r.pid) && tree.has(r.ppid)) { tree.add(r.pid); grew = true; } }
  }
  const kib = rows.filter((r) => tree.has(r.pid)).reduce((a, r) => a + r.rss, 0);
  // PSS shares the pages the processes have in common (WebKit's libraries) instead of counting
  // them once per process like RSS.
  let pss = 0;
  for (const pid of tree) {
    try {
      const m = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m);
      if (m) { pss += +m[1]; }
    } catch { /* gone */ }
  }
  return `${(kib / 1024).toFixed(1)} MiB RSS, ${(pss / 1024).toFixed(1)} MiB PSS in ${tree.size} processes (app + WebKit)`;
}

function desk(action) {
  return driver.executeAsyncScript(function (action, done) {
    window.__TAURI__.core.invoke('desktop', { action: action }).then(
      function (v) { done({ ok: v }); }, function (e) { done({ err: String(e) }); });
  }, action);
}
async function deskOk(action) {
  const r = await desk(action);
  if (r.err !== undefined) { throw new Error(`desktop ${action}: ${r.err}`); }
  return r.ok;
}

function apiCall(fn, ...args) {
  return driver.executeAsyncScript(function (fn, args, done) {
    // The synchronous answers (getparameter, isincall, ...) are plain values.
    Promise.resolve(window.webphone_api[fn].apply(null, args)).then(
      function (v) { done({ ok: v === undefined ? null : v }); },
      function (e) { done({ err: String(e && e.message ? e.message : e) }); });
  }, fn, args);
}
const apiState = () => driver.executeScript('var a = window.webphone_api; if (!a) { return null; } var s = a.state; return {started: s.started, incall: s.incall, status: s.status, line: s.line, lines: s.lines};');
const currentPage = () => driver.executeScript('return window.WPRouter ? window.WPRouter.current() : null');

async function waitFor(what, fn, timeoutMs) {
  try {
    return await driver.wait(fn, timeoutMs);
  } catch (e) {
    const st = await apiState().catch(() => null);
    const tray = await desk('tray').catch(() => null);
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (state ${JSON.stringify(st)}, tray ${JSON.stringify(tray)})`);
  }
}

async function secondLaunch(args) {
  const p = spawn(APP, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const code = await new Promise((resolve) => {
    const timer = setTimeout(() => { p.kill('SIGKILL'); resolve('timeout'); }, 15000);
    p.once('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  if (code !== 0) { throw new Error(`second launch ${args.join(' ')} exited with ${code}: ${err.slice(-600)}`); }
}

async function screenshot(name) {
  const file = join(OUT, `${name}.png`);
  writeFileSync(file, Buffer.from(await driver.takeScreenshot(), 'base64'));
  console.log(`${ms()}  screenshot ${file}`);
}

const inCall = async () => { const st = await apiState(); return !!(st && st.incall); };

let bus = null;
/**
 * Waits until the app reports tray icon `id` and the picture its StatusNotifier item hands to the
 * tray host shows `want` ({reg, dnd, missed}); returns what was seen.
 */
async function trayShows(id, want) {
  await waitFor(`tray icon ${id}`, async () => ((await desk('tray')).ok || {}).icon === id, 10000);
  if (!bus) { return `icon ${id} (picture not checked: no desktop bus)`; }
  let last = null;
  try {
    await waitFor(`the tray picture to show ${JSON.stringify(want)}`, async () => {
      const r = await bus.request('icon');
      if (!r.png) { last = r.error; return false; }
      last = { ...readTrayPicture(decodePng(Buffer.from(r.png, 'base64'))), label: r.label };
      return last.reg === want.reg && last.dnd === want.dnd && last.missed === want.missed;
    }, 10000);
  } catch (e) { throw new Error(`${e.message}; last picture ${JSON.stringify(last)}`); }
  if (!HAVE_TRAY_HOST) { return `icon ${id}, picture ${JSON.stringify(last)}`; }
  // The same on the screen, as the real tray host drew it.
  let drawn = null;
  try {
    await waitFor(`the tray host to draw ${JSON.stringify(want)}`, async () => {
      const icon = hostIcon();
      if (icon.error) { drawn = icon.error; return false; }
      drawn = { ...readTrayPicture(icon), at: `+${icon.x}+${icon.y}` };
      return drawn.reg === want.reg && drawn.dnd === want.dnd && drawn.missed === want.missed;
    }, 10000);
  } catch (e) {
    execFileSync('import', ['-window', 'root', join(OUT, `calls-tray-host-${id}.png`)]);
    throw new Error(`${e.message}; last drawn ${JSON.stringify(drawn)} (screen in calls-tray-host-${id}.png)`);
  }
  return `icon ${id}, item picture ${JSON.stringify(last)}, drawn by the tray host ${JSON.stringify(drawn)}`;
}

/**
 * Chooses "Do not disturb" in the menu the real tray host opens when its icon is right-clicked
 * (the host builds it from the app's dbusmenu). The menu: Status (disabled), Missed calls, Calls
 * (disabled while no call), Show / hide, Do not disturb: the third item the keyboard reaches.
 */
function chooseDndInTrayHost() {
  const icon = hostIcon();
  if (icon.error) { throw new Error(`tray host: ${icon.error}`); }
  execFileSync('xdotool', ['mousemove', String(icon.x + (icon.width >> 1)), String(icon.y + (icon.height >> 1)), 'click', '3']);
  execFileSync('sleep', ['0.7']);
  execFileSync('xdotool', ['key', 'Down', 'Down', 'Down', 'Return']);
}
/** A real key press on the X display (the global shortcut grab gets it). */
const pressKeys = (keys) => execFileSync('xdotool', ['key', '--clearmodifiers', keys], { stdio: 'inherit' });

let failed = null;
try {
  // ---------------------------------------------------------------- peers
  const k = await startKamailio();
  started.push(k);
  const peer = await startBaresip({ user: '1002', kamailio: k, answer: 'manual', toneHz: PEER_TONE_HZ, displayName: 'Bob Smith' });
  started.push(peer);
  console.log(`${ms()}  kamailio ${k.addr}, baresip 1002 registered (SIP ${peer.sipPort})`);
  const sipPort = await freePort();
  if (HAVE_BUS_PY) { bus = await startDesktopBus(); started.push(bus); }

  // ---------------------------------------------------------------- 1. launch, register
  const launchT0 = Date.now();
  driver = await session(['-p', 'serveraddress=' + k.addr, '-p', 'username=1001', '-p', 'password=pass1001',
    '-p', `audiodevicein=file:${appTone}`, '-p', `audiodeviceout=file:${appRec}`, '-p', 'localip=127.0.0.1',
    '-p', `signalingport=${sipPort}`, '-p', 'transport=0']);
  await waitFor('the app to register (tray)', async () => ((await desk('tray')).ok || {}).registration === 'Registered', 20000);
  const regMs = Date.now() - launchT0;
  await k.waitLine(['REGISTERED', '1001']);
  number('launch to registered (WebDriver session start to the tray showing Registered, debug or release as built)', `${regMs} ms`);
  pass('the app registers with Kamailio as 1001', (await deskOk('tray')).tooltip);
  await sleep(1500);
  number('memory idle (registered)', appMemory());
  if (bus) {
    const item = await bus.until((e) => e.ev === 'item', 5000, 'tray item registration');
    pass(`the tray icon registers as a StatusNotifier item with the session bus's watcher (${bus.watcher})`, `${item.service} ${item.path}`);
  }
  pass('tray picture while registered: brand icon with the green dot', await trayShows('registered', { reg: 'registered', dnd: false, missed: false }));
  const unreg = await apiCall('unregister');
  if (unreg.err) { throw new Error(`unregister: ${unreg.err}`); }
  const off = await trayShows('offline', { reg: 'offline', dnd: false, missed: false });
  const rereg = await apiCall('register');
  if (rereg.err) { throw new Error(`register: ${rereg.err}`); }
  await trayShows('registered', { reg: 'registered', dnd: false, missed: false });
  pass('unregister / register (REGISTER with expires 0, then again) switch the tray picture to grey and back to green', off);

  // ---------------------------------------------------------------- 2. incoming call: pop-up, accept
  const mainHandle = await driver.getWindowHandle();
  await peer.command(`dial ${k.uriOf('1001')}`);
  await waitFor('the pop-up content', async () => ((await desk('popup')).ok || {}).kind === 'incoming', 15000);
  const ringingCalls = (await deskOk('tray')).calls || [];
  if (!ringingCalls.some((c) => c.id === 'call:answer:1' && /^Answer .*1002/.test(c.label))) { throw new Error(`tray Calls menu while ringing: ${JSON.stringify(ringingCalls)}`); }
  pass('the tray\'s Calls menu offers to answer the ringing call', ringingCalls.map((c) => c.label).join('; '));
  let popupHandle = null;
  await waitFor('the pop-up window', async () => {
    for (const h of await driver.getAllWindowHandles()) {
      if (h === mainHandle) { continue; }
      await driver.switchTo().window(h);
      if (/^Incoming call/.test(await driver.getTitle())) { popupHandle = h; return true; }
    }
    await driver.switchTo().window(mainHandle);
    return false;
  }, 10000);
  const popupText = (id) => driver.executeScript('return document.getElementById(arguments[0]).textContent', id);
  await waitFor('the caller in the pop-up', async () => /1002/.test(`${await popupText('popup_name')} ${await popupText('popup_number')}`), 5000);
  const who = `${await popupText('popup_name')} ${await popupText('popup_number')}`.trim();
  await screenshot('calls-popup');
  if (bus) {
    const n = await bus.until((e) => e.ev === 'notify' && /Incoming call/.test(e.summary), 5000, 'incoming-call notification');
    if (!n.body.includes('Bob Smith') || !n.body.includes('1002')) { throw new Error(`notification body without the caller's name and number: ${JSON.stringify(n)}`); }
    // actions: [key, label, ...]; notify-rust adds ["default", ""] (a click on the notification).
    const buttons = n.actions.join('|');
    if (!buttons.startsWith('accept|Accept|reject|Reject|ignore|Ignore')) { throw new Error(`notification actions: ${JSON.stringify(n.actions)}`); }
    if (bus.server) {
      // A real notification server: the pop-up is on the screen (dunst counts it as displayed;
      // the whole screen is kept as a picture).
      const shown = await bus.request('displayed');
      if (!(shown.count >= 1)) { throw new Error(`the notification server shows ${shown.count} notifications`); }
      const file = join(OUT, 'calls-notification-screen.png');
      if (spawnSync('import', ['-window', 'root', file], { stdio: 'inherit' }).status === 0) { console.log(`${ms()}  screenshot ${file}`); }
    }
    pass('an OS notification announces the call with the caller as text and Accept / Reject / Ignore buttons',
      `"${n.summary}": "${n.body}"${bus.server ? `, shown by ${bus.server}` : ' (stand-in notification server)'}`);
  }
  await driver.findElement(By.id('popup_accept')).click();
  await driver.switchTo().window(mainHandle);
  await peer.waitEvent('CALL_ESTABLISHED');
  await waitFor('the app to show the call connected', inCall, 10000);
  if (bus) {
    const n = bus.events().find((e) => e.ev === 'notify');
    await bus.until((e) => e.ev === 'closed' && e.id === n.id, 5000, 'the notification closed once the call was answered');
  }
  pass('baresip calls 1001: the pop-up shows the caller, Accept there connects (baresip CALL_ESTABLISHED)', who);

  // ---------------------------------------------------------------- 3. audio both ways
  // Let both sides record a few seconds of the connected call (16-bit mono: 2 bytes a sample).
  const recordedSecs = () => { try { return readWav(appRec).samples.length / readWav(appRec).rate; } catch { return 0; } };
  await waitFor('3 s of audio in the app\'s recording', async () => recordedSecs() >= 3, 20000);
  number('memory in a call', appMemory());
  // Hang up from the tray's Calls menu (the entry the tray host would show).
  const inCallEntries = await waitFor('the connected call in the tray\'s Calls menu', async () => {
    const c = ((await desk('tray')).ok || {}).calls || [];
    return c.some((e) => e.id === 'call:hangup:1') ? c : false;
  }, 5000);
  await deskOk('call:hangup:1');
  await peer.waitEventCount('CALL_CLOSED', 1);
  await waitFor('the app to see the hang-up', async () => !(await inCall()), 10000);
  const afterCalls = (await deskOk('tray')).calls || [];
  if (afterCalls.length) { throw new Error(`tray Calls menu after the hang-up: ${JSON.stringify(afterCalls)}`); }
  pass('"Hang up" in the tray\'s Calls menu ends the call (baresip CALL_CLOSED); the menu is empty afterwards', inCallEntries.map((c) => c.label).join('; '));
  await sleep(500);
  const appHeard = assertTone(appRec, PEER_TONE_HZ, -30, 'the app\'s recording (what 1001 heard)');
  const peerWav = peer.receivedWavs().at(-1);
  if (!peerWav) { throw new Error('baresip wrote no received-audio recording'); }
  const peerHeard = assertTone(peerWav, APP_TONE_HZ, -30, 'baresip\'s recording (what 1002 heard)');
  pass('audio both ways', `app heard ${appHeard}; baresip heard ${peerHeard}`);

  // ---------------------------------------------------------------- 4. history
  await driver.executeScript('window.j$.mobile.changePage("#page_callhistorylist", { transition: "none", role: "page" })');
  await waitFor('the history page', async () => (await currentPage()) === 'page_callhistorylist', 5000);
  const historyText = await waitFor('a history entry with 1002', async () => {
    const t = await driver.executeScript('var l = document.getElementById("history_list"); return l ? l.textContent : ""');
    return /1002/.test(t) ? t : false;
  }, 5000);
  await screenshot('calls-history');
  const recent = (await deskOk('tray')).recent || [];
  if (recent[0] !== '1002' && !String(recent[0]).includes('1002')) { throw new Error(`tray recent numbers: ${JSON.stringify(recent)}`); }
  pass('hang-up writes a history entry shown on the skin\'s history page; the tray lists 1002 first in Recent', historyText.replace(/\s+/g, ' ').trim().slice(0, 80));

  // ---------------------------------------------------------------- 4b. missed call in the tray
  {
    const closed = peer.events().filter((e) => e.type === 'CALL_CLOSED').length;
    const notes = bus ? bus.events().filter((e) => e.ev === 'notify').length : 0;
    await peer.command(`dial ${k.uriOf('1001')}`);
    await waitFor('the missed call to ring', async () => ((await desk('popup')).ok || {}).kind === 'incoming', 15000);
    await peer.command('hangup');
    await peer.waitEventCount('CALL_CLOSED', closed + 1);
    const t = await waitFor('the missed call in the tray', async () => { const v = (await desk('tray')).ok || {}; return v.missed === 1 ? v : false; }, 10000);
    const seen = await trayShows('registered+missed1', { reg: 'registered', dnd: false, missed: true });
    if (bus) {
      const n = bus.events().filter((e) => e.ev === 'notify').slice(notes)[0];
      if (!n || !bus.events().some((e) => e.ev === 'closed' && e.id === n.id)) { throw new Error('the notification of the missed call was not closed when it stopped ringing'); }
    }
    pass('a call that stops ringing unanswered counts as missed: the tray picture gets the orange badge', `${t.tooltip}; ${seen}`);
  }

  // ---------------------------------------------------------------- 5. DND from the tray
  let dndFrom = 'the desktop command (no tray host)';
  if (HAVE_TRAY_HOST && HAVE_XDOTOOL) {
    chooseDndInTrayHost();
    await waitFor('DND on from the tray host\'s menu', async () => ((await desk('tray')).ok || {}).dnd === true, 5000);
    dndFrom = 'the menu gtk-sni-tray-standalone opened from the icon';
  } else {
    await deskOk('dnd-on');
  }
  const dnd = await deskOk('tray');
  if (!dnd.dnd || !/do not disturb/.test(dnd.tooltip) || !/DND/.test(dnd.title || '')) { throw new Error(`tray after dnd-on: ${JSON.stringify(dnd)}`); }
  const closedBefore = peer.events().filter((e) => e.type === 'CALL_CLOSED').length;
  await peer.command(`dial ${k.uriOf('1001')}`);
  const rej = await peer.waitEventCount('CALL_CLOSED', closedBefore + 1);
  if ((await desk('popup')).ok) { throw new Error('a pop-up opened during DND'); }
  const estab = peer.events().filter((e) => e.type === 'CALL_ESTABLISHED').length;
  if (estab !== 1) { throw new Error(`a call was established during DND (${estab} CALL_ESTABLISHED)`); }
  const dndPic = await trayShows('registered+dnd+missed1', { reg: 'registered', dnd: true, missed: true });
  if (HAVE_TRAY_HOST && HAVE_XDOTOOL) {
    chooseDndInTrayHost();
    await waitFor('DND off from the tray host\'s menu', async () => ((await desk('tray')).ok || {}).dnd === false, 5000);
  } else {
    await deskOk('dnd-off');
  }
  pass(`DND from the tray (${dndFrom}, and off again there): the app rejects baresip's call (autoignore=2), tooltip says so`, `baresip: ${rej.at(-1).param || 'closed'}`);
  pass('tray picture during DND: greyed out with the no-entry sign (missed badge kept)', dndPic);
  await deskOk('show'); // showing the window clears the missed calls
  pass('DND off and the window shown: the tray picture is back to the plain registered one',
    await trayShows('registered', { reg: 'registered', dnd: false, missed: false }));

  // ---------------------------------------------------------------- 6. global shortcuts
  const setp = await apiCall('setparameter', 'shortcutanswer', 'Ctrl+Alt+Shift+F9');
  const seth = await apiCall('setparameter', 'shortcuthangup', 'Ctrl+Alt+Shift+F10');
  if (setp.err || seth.err) { throw new Error(`setparameter shortcut: ${setp.err || seth.err}`); }
  const sc = await deskOk('shortcuts');
  if (sc.answer !== 'Ctrl+Alt+Shift+F9' || sc.hangup !== 'Ctrl+Alt+Shift+F10') { throw new Error(`registered shortcuts: ${JSON.stringify(sc)}`); }
  await peer.command(`dial ${k.uriOf('1001')}`);
  await waitFor('the third call to ring', async () => ((await desk('popup')).ok || {}).kind === 'incoming', 15000);
  // xdotool's keys go through the X server (XTEST) to the app's passive key grab.
  if (HAVE_XDOTOOL) { pressKeys('ctrl+alt+shift+F9'); } else { await deskOk('shortcut-answer'); }
  await peer.waitEventCount('CALL_ESTABLISHED', 2);
  await waitFor('the call answered by the shortcut', inCall, 10000);
  if (HAVE_XDOTOOL) { pressKeys('ctrl+alt+shift+F10'); } else { await deskOk('shortcut-hangup'); }
  await peer.waitEventCount('CALL_CLOSED', closedBefore + 2);
  await waitFor('the call hung up by the shortcut', async () => !(await inCall()), 10000);
  await apiCall('setparameter', 'shortcutanswer', '');
  await apiCall('setparameter', 'shortcuthangup', '');
  const scOff = await deskOk('shortcuts');
  if (Object.keys(scOff).length) { throw new Error(`shortcuts left registered: ${JSON.stringify(scOff)}`); }
  pass('global shortcuts registered from the parameters (X11 grab); pressing them answers and hangs up a real call; cleared again',
    HAVE_XDOTOOL ? 'keys pressed with xdotool (ctrl+alt+shift+F9 / F10)' : 'NO xdotool: the handler\'s actions were run instead of key presses');

  // ---------------------------------------------------------------- 6b. notification Accept
  if (bus) {
    const notes = bus.events().filter((e) => e.ev === 'notify').length;
    await peer.command(`dial ${k.uriOf('1001')}`);
    const n = await bus.until((e) => e.ev === 'notify' && bus.events().filter((x) => x.ev === 'notify').indexOf(e) >= notes, 15000, 'the notification of the fourth call');
    bus.send(`invoke ${n.id} accept`);
    await peer.waitEventCount('CALL_ESTABLISHED', 3);
    await waitFor('the call answered from the notification', inCall, 10000);
    await apiCall('hangup');
    await peer.waitEventCount('CALL_CLOSED', closedBefore + 3);
    await waitFor('the notification-answered call to end', async () => !(await inCall()), 10000);
    pass('the notification\'s Accept button answers the call', `notification ${n.id}: ${n.body}; ${bus.server ? 'chosen through dunst\'s action menu (dunstctl context)' : 'ActionInvoked from the stand-in server'}`);

    // Ignore: the pop-up and the notification go, nothing is sent, the caller still rings
    // until it hangs up (the only CALL_CLOSED is baresip's own hang-up).
    const notes2 = bus.events().filter((e) => e.ev === 'notify').length;
    const closed2 = peer.events().filter((e) => e.type === 'CALL_CLOSED').length;
    await peer.command(`dial ${k.uriOf('1001')}`);
    const n2 = await bus.until((e) => e.ev === 'notify' && bus.events().filter((x) => x.ev === 'notify').indexOf(e) >= notes2, 15000, 'the notification of the fifth call');
    bus.send(`invoke ${n2.id} ignore`);
    await bus.until((e) => e.ev === 'closed' && e.id === n2.id, 5000, 'the notification closed by Ignore');
    await waitFor('the pop-up to close on Ignore', async () => !(await desk('popup')).ok, 5000);
    await sleep(1500);
    if (peer.events().filter((e) => e.type === 'CALL_CLOSED').length !== closed2) { throw new Error('Ignore ended the call at the caller'); }
    if (peer.events().filter((e) => e.type === 'CALL_ESTABLISHED').length !== 3) { throw new Error('Ignore answered the call'); }
    await peer.command('hangup');
    await peer.waitEventCount('CALL_CLOSED', closed2 + 1);
    pass('the notification\'s Ignore button silences the call here while the caller keeps ringing', `notification ${n2.id}`);
  }

  if (!DBUS) {
    skip('second launch with a sip: link dials baresip', 'no D-Bus session');
    skip('webphone: link provisions another account', 'no D-Bus session');
  } else {
    // -------------------------------------------------------------- 7. sip: link dials
    const incomingBefore = peer.events().filter((e) => e.type === 'CALL_INCOMING').length;
    await secondLaunch([`sip:1002@${k.addr}`]);
    await peer.waitEventCount('CALL_INCOMING', incomingBefore + 1);
    const estBefore = peer.events().filter((e) => e.type === 'CALL_ESTABLISHED').length;
    const closedNow = peer.events().filter((e) => e.type === 'CALL_CLOSED').length;
    await peer.command('accept');
    await peer.waitEventCount('CALL_ESTABLISHED', estBefore + 1);
    await waitFor('the link call to connect', inCall, 10000);
    await apiCall('hangup');
    await peer.waitEventCount('CALL_CLOSED', closedNow + 1);
    await waitFor('the link call to end', async () => !(await inCall()), 10000);
    pass('a second launch with sip:1002@… dials baresip through Kamailio from the running instance');

    // -------------------------------------------------------------- 8. webphone: provisioning
    await secondLaunch([`webphone:?wp_username=1003&wp_password=pass1003&wp_serveraddress=${encodeURIComponent(k.addr)}`]);
    await k.waitLine(['REGISTERED', '1003']);
    await waitFor('username 1003 in the engine', async () => (await apiCall('getparameter', 'username')).ok === '1003', 10000);
    await waitFor('the tray to show Registered', async () => ((await desk('tray')).ok || {}).registration === 'Registered', 10000);
    pass('a second launch with a webphone: link provisions the running instance: Kamailio sees 1003 register');
  }

  // ---------------------------------------------------------------- 9. start at login
  const autostartFile = join(process.env.HOME || homedir(), '.config', 'autostart');
  const entries = () => { try { return readdirSync(autostartFile).filter((f) => f.endsWith('.desktop')); } catch { return []; } };
  if (await deskOk('autostart')) { throw new Error('start at login is on by default'); }
  await apiCall('setparameter', 'startatlogin', 'true');
  if (!(await deskOk('autostart'))) { throw new Error('startatlogin=true did not enable start at login'); }
  const entry = entries().map((f) => readFileSync(join(autostartFile, f), 'utf8')).find((t) => t.includes(APP));
  if (!entry || !/--minimized/.test(entry)) { throw new Error(`autostart entry in ${autostartFile}: ${entry}`); }
  await apiCall('setparameter', 'startatlogin', 'false');
  if (await deskOk('autostart')) { throw new Error('startatlogin=false did not disable start at login'); }
  if (entries().some((f) => readFileSync(join(autostartFile, f), 'utf8').includes(APP))) { throw new Error('the autostart entry is still there'); }
  pass('start at login: off by default; startatlogin=true writes an XDG autostart entry with --minimized, false removes it');

  // ---------------------------------------------------------------- 10. window geometry, --minimized
  await driver.manage().window().setRect({ width: 480, height: 640 });
  await sleep(800);
  const rect = await driver.manage().window().getRect();
  await driver.quit();
  driver = null;
  driver = await session(['-p', 'audiodevicein=null', '-p', 'audiodeviceout=null', '-p', 'localip=127.0.0.1',
    '-p', `signalingport=${sipPort}`, '--minimized']);
  if (await deskOk('visible')) { throw new Error('--minimized showed the window'); }
  await deskOk('show');
  await waitFor('the window to show', async () => (await deskOk('visible')) === true, 5000);
  const rect2 = await driver.manage().window().getRect();
  if (Math.abs(rect2.width - rect.width) > 2 || Math.abs(rect2.height - rect.height) > 2) {
    throw new Error(`window size not restored: before ${JSON.stringify(rect)}, after ${JSON.stringify(rect2)}`);
  }
  pass('restart: window size remembered, --minimized starts in the tray (hidden) and the tray shows it',
    `${rect2.width}x${rect2.height} at ${rect2.x},${rect2.y} (before ${rect.width}x${rect.height} at ${rect.x},${rect.y})`);
} catch (e) {
  failed = e;
  console.log(`${ms()}  FAIL  ${e.message || e.name || e}`);
  if (driver) { await screenshot('calls-failure').catch(() => {}); }
} finally {
  if (driver) { await driver.quit().catch((e) => console.log(`quit: ${e.message}`)); }
  for (const p of started.reverse()) { await p.stop().catch(() => {}); }
}

const counts = results.reduce((m, [r]) => ({ ...m, [r]: (m[r] || 0) + 1 }), {});
for (const n of numbers) { console.log(`NUMBER ${n}`); }
console.log(`${ms()}  ${failed ? 'FAILED' : 'OK'}: ${counts.PASS || 0} passed, ${counts.SKIP || 0} skipped${failed ? ', 1 failed' : ''}`);
process.exit(failed ? 1 : 0);
