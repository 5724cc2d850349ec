// End-to-end tests of the softphone skin in Debian's Chromium (playwright-core), against
// `webphone-cli --serve` (the engine's built-in "echo" endpoint, no SIP server).
//
// Scenarios (E2E_SKINS_ONLY=a,b runs a subset):
//   load      the skin loads without console errors and shows the login page (no credentials)
//   echo      "echo" typed on the keyboard, Enter: in-call page with a running timer; Escape hangs
//             up; the history lists the call
//   contacts  a contact added persists across a reload; edit and delete work; search filters
//   xss       script payloads in contact names, peer display names and CDRs are shown as text
//   themes    every theme on every page (featureset 15, a voicemail number: all optional parts shown):
//             screenshot + axe-core (no serious/critical violations)
//   layout    320 px wide pop-up and a full window: no horizontal scrolling
//   language  wp_language=de and fr translate the skin
//   autologin credentials known to the engine skip the login page
//   params2   links (homepage, supportmail, advertisement, extramenuurl), haveloginpage,
//             hasringcounter, callparknumber, savetocontacts
//   logs      Settings > Logs: getlogs shown, copy, upload offered with logsendto=1
//   chat      the chat page: incoming message opens it (text as text), composing indicator
//             both ways (our typing as chatcomposing calls),
//             delivery state, unread badge with showincomingchatas=1, conversations persist
//   c2k       click2call: the button calls "echo" and hangs up; right click / long press / keyboard
//             menu; chat window (incoming text shown as text); axe on each state
//   c2kmulti  three buttons on a third-party page (numbers from title attributes), look
//             parameters, only the clicked one calls; floating position; IMAGE_PATH image
//   c2kauto   autoaction 0, 1, 2, 3 at page load
//   languages all ten languages render the softphone and click2call; browser language detection
//   extraoption  key=value; list sets skin parameters (direct ones win); javascript: links refused
//   syncmenu  showsynccontactsmenu 1/0/-1; Sync merges with the engine's listcontacts/addcontact
//             and downloads serveraddressbook_url (syncservercontacts, SERVERCONTACTS)
//   vcard     Import vCard (2.1 quoted-printable Windows-1252 file with a 70 kB picture, 3.0
//             favourite) and Export vCard (download checked) through importvcard/exportvcard
//   peerdetails displaypeerdetails 0/1/<id>: scurl_displaypeerdetails answer and line details, as text
//   notification displaynotification 0/1/2: chat and missed-call notifications, permission request
//   filetransfer hasfiletransfer + filetransferurl: multipart upload, download URL sent as chat
//   videodevice displayvideodevice=1: camera row shown disabled (no video in this engine)
//   uiparams  theme colour overrides (bgcolor ... fontfamily), version, accounturi, supporturi,
//             forgotpasswordurl, defcontacts, messagepopup once, multilinegui=0, showtoasts=false,
//             chatsms 1/2, logform_filename (upload to the test server)
//   callnotice incoming-call notification: old names hasincomingcall(popup), callnot_title/body/
//             icon/image
//   c2kfloat  click2call floating from the left and bottom edges; Enter calls, Escape hangs up
//   keyboard  on every page a digit opens the dial pad with it, Enter calls, Escape hangs up
//   voicemail a message-summary NOTIFY to the engine's SIP port: Voicemail button learned with a
//             badge of 3 new messages; it calls callvoicemail() and clears the badge;
//             disableoptions VOICEMAIL hides it
//   newuser   newuser as a link, and as an API request (*): the sign-up form's name and password
//             reach the test server through linkrequest, its answer is shown as text
//   services  Settings > Services: recharge and p2p API forms reach the test server through
//             linkrequest (answers shown as text), callback as a link
//   advanced  featureset=15: Settings > Advanced parameters reads and sets engine parameters by name
//   osnotify  the chat notification handed by Chromium to a real notification server (dunst on
//             the private D-Bus session and Xvfb of run.sh): shown, its markup escaped
//   conference  real peers: the skin calls baresip 1002, Conference adds a webphone-cli 1004;
//             each hears the other's tone through the mixer; Record on the call page writes a
//             WAV file holding the call's audio
//   presence  Kamailio as presence server: a contact's presence and calls as lamps in the
//             contacts list, the facade's presence/BLF callbacks, "My status" (DND refuses calls)
// tests/e2e-skins/ui_params_audit.test.mjs (run before the browser) checks that every ui
// parameter of the catalog is read by a skin and set by one of these scenarios.
//   sip       real peers on loopback (tests/e2e-peers/peers.mjs: Kamailio + baresip 1002 auto
//             answer + baresip 1003): sign in as 1001, "Registered" shown; call 1002 (established
//             at baresip), Hold reaches baresip as a re-INVITE, keypad digits arrive at baresip
//             as DTMF; 1003 calls in: answered, then a second call rejected; the chat page and
//             click2call chat to 1002 (MESSAGE answered 200: "Sent"). baresip 1.0 cannot send
//             MESSAGE from its control socket, so a second webphone-cli registered as 1004 chats
//             with the skin both ways through Kamailio. Without kamailio/baresip it skips
//             loudly (fails with CI=true).
//   served    the skins loaded from the engine itself (webphone-cli --serve --www): echo call from
//             the softphone; a link's wp_callto/wp_autoaction are not taken by click2call
//   incall    real peers: the call page's speaker volume reaches the engine, Mute silences what
//             baresip 1002 hears (measured in its recording), blind Transfer and "Consult first"
//             + Transfer (attended) connect 1002 with baresip 1003.
// Screenshots: $E2E_OUT (target/e2e-skins). Everything started here is stopped here.
import http from 'node:http';
import dgram from 'node:dgram';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, statSync, mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { loadThemes } from './contrast.mjs';
import { missingPeers, startKamailio, startBaresip, writeTone, toneLevel, readWav } from '../e2e-peers/peers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const OUT = process.env.E2E_OUT || path.join(ROOT, 'target/e2e-skins');
const CLI = process.env.E2E_CLI || path.join(ROOT, 'target/debug/webphone-cli');
const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TIMEOUT = 15000;
const ONLY = (process.env.E2E_SKINS_ONLY || '').split(',').map((s) => s.trim()).filter(Boolean);

const say = (m) => console.log(`[e2e-skins] ${m}`);

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.txt': 'text/plain; charset=utf-8',
};
// The static server serves only these parts of the repository.
const SERVED = ['skins', 'ui', 'i18n', 'tests/e2e-skins/pages', 'tests/e2e-skins/node_modules/axe-core/axe.min.js'];
const LANGS = ['en', 'de', 'fr', 'es', 'it', 'pt', 'hu', 'ro', 'ru', 'zh'];
const strings = (lang) => JSON.parse(readFileSync(path.join(ROOT, 'i18n', lang + '.json'), 'utf8'));

// Files POSTed to /upload/ (the skin's file transfer, hasfiletransfer + filetransferurl):
// { filename, filedata, type } from the multipart body.
const uploads = [];
// Sign-up requests of the `newuser` API (GET /signup?user=...&pass=...).
const signups = [];
// Requests of the recharge / p2p API links (GET /svc/<name>?...).
const services = [];
// Downloads of the server address book (GET /book?u=...).
const books = [];

function multipartField(body, name) {
  const m = new RegExp(`name="${name}"(?:; filename="[^"]*")?\\r\\n(?:Content-Type: [^\\r]*\\r\\n)?\\r\\n([\\s\\S]*?)\\r\\n--`).exec(body);
  return m ? m[1] : null;
}

function staticServer() {
  const server = http.createServer((req, res) => {
    let rel;
    try { rel = decodeURIComponent(new URL(req.url, 'http://x').pathname); } catch { rel = '/'; }
    if (req.method === 'POST' && rel === '/upload/') {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (d) => { body += d; if (body.length > 1e6) { req.destroy(); } });
      req.on('end', () => {
        uploads.push({ filename: multipartField(body, 'filename'), filedata: multipartField(body, 'filedata'), type: req.headers['content-type'] || '' });
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('stored');
      });
      return;
    }
    if (req.method === 'GET' && rel.startsWith('/svc/')) {
      const q = Object.fromEntries(new URL(req.url, 'http://x').searchParams);
      services.push({ name: rel.slice(5), q });
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`Done: ${rel.slice(5)} <i>${JSON.stringify(q)}</i>`);
      return;
    }
    if (req.method === 'GET' && rel === '/book') {
      books.push(new URL(req.url, 'http://x').searchParams.get('u'));
      // the address book format: name TAB numbers(|) TAB favorite TAB email, CRLF
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Server Sue\tsrvsue1|srvsue2\t0\tsue@example.org\r\nServer Sam\tsrvsam1\r\n');
      return;
    }
    if (req.method === 'GET' && rel === '/signup') {
      const q = new URL(req.url, 'http://x').searchParams;
      signups.push({ user: q.get('user'), pass: q.get('pass') });
      // Markup in the answer must be shown as text.
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`Welcome ${q.get('user')}! <b>Sign in now</b>`);
      return;
    }
    const file = path.resolve(ROOT, '.' + rel);
    const ok = SERVED.some((p) => { const base = path.join(ROOT, p); return file === base || file.startsWith(base + path.sep); });
    if (req.method !== 'GET' || !ok) { res.writeHead(403).end(); return; }
    try {
      if (!statSync(file).isFile()) { throw new Error('not a file'); }
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
      res.end(readFileSync(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// A UDP port that was free a moment ago (the engine's SIP port, so a test can send it requests).
function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.on('error', reject);
    s.bind(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// A registrar on a loopback UDP port that refuses every REGISTER with 403 Forbidden (RFC 3261
// §21.4.4), echoing the headers a response needs (§8.2.6.2).
function refusingRegistrar() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.on('error', reject);
    s.on('message', (m, from) => {
      const lines = String(m).split('\r\n');
      if (!/^REGISTER /.test(lines[0])) { return; }
      const keep = lines.filter((l) => /^(Via|v|From|f|To|t|Call-ID|i|CSeq):/i.test(l))
        .map((l) => (/^(To|t):/i.test(l) && !/;tag=/i.test(l) ? `${l};tag=refuse` : l));
      s.send([`SIP/2.0 403 Forbidden`, ...keep, 'Content-Length: 0', '', ''].join('\r\n'), from.port, from.address);
    });
    s.bind(0, '127.0.0.1', () => resolve({ addr: `127.0.0.1:${s.address().port}`, close: () => s.close() }));
  });
}

// A voicemail server's unsolicited message-summary NOTIFY (RFC 3842 §5.2) to the engine's SIP
// port; resolves with the status line of the answer.
function sendMwiNotify(sipPort, summary, account, waiting = 'yes') {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => { s.close(); reject(new Error('no answer to the MWI NOTIFY')); }, 5000);
    s.on('message', (m) => {
      const first = String(m).split('\r\n')[0];
      if (/^SIP\/2\.0 [2-6]/.test(first)) { clearTimeout(timer); s.close(); resolve(first); }
    });
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      const body = `Messages-Waiting: ${waiting}\r\nMessage-Account: ${account}\r\nVoice-Message: ${summary}\r\n`;
      const msg = [
        `NOTIFY sip:1001@127.0.0.1:${sipPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${p};branch=z9hG4bKskinmwi${Date.now()}`,
        `From: <sip:voicemail@127.0.0.1:${p}>;tag=vm${p}`,
        `To: <sip:1001@127.0.0.1:${sipPort}>`,
        `Call-ID: skin-mwi-${Date.now()}@e2e`,
        'CSeq: 1 NOTIFY',
        `Contact: <sip:voicemail@127.0.0.1:${p}>`,
        'Max-Forwards: 70',
        'Event: message-summary',
        'Subscription-State: active',
        'Content-Type: application/simple-message-summary',
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ].join('\r\n');
      s.send(msg, sipPort, '127.0.0.1');
    });
  });
}

async function startService(origin, dataDir) {
  const sipPort = await freeUdpPort();
  // --www: the engine also hands out the repository's files (the `served` scenario loads the
  // skins from there); the other scenarios load them from the static server above.
  const child = spawn(CLI, ['--serve', '127.0.0.1:0', '--allow-origin', origin, '--www', ROOT,
    '-p', 'audiodevicein=null', '-p', 'audiodeviceout=null', '-p', `signalingport=${sipPort}`],
  { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info', XDG_DATA_HOME: dataDir, HOME: dataDir } });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d) => { stdout += d; if (stdout.length > 200000) { stdout = stdout.slice(-100000); } });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('webphone-cli reported no address: ' + stderr)), 15000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /serving ws:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve({ child, port: Number(m[1]), sipPort, log: () => stderr, out: () => stdout }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`webphone-cli exited (${code}): ${stderr}`)); });
  });
}

function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) { return Promise.resolve(); }
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => { clearTimeout(kill); resolve(); });
    try { child.stdin.write('quit\n'); } catch { /* closed */ }
    setTimeout(() => child.kill('SIGTERM'), 1500);
  });
}

function assert(cond, msg) { if (!cond) { throw new Error('assertion failed: ' + msg); } }

// ---------------------------------------------------------------- page helpers

const consoleErrors = [];
function watch(page, label) {
  page.on('console', (m) => {
    if (m.type() === 'error') { consoleErrors.push(`${label}: ${m.text()}`); say(`${label} console error: ${m.text()}`); }
  });
  page.on('pageerror', (e) => { consoleErrors.push(`${label}: ${e.message}`); say(`${label} page error: ${e.message}`); });
}

async function shot(page, name) {
  const file = path.join(OUT, name);
  await page.screenshot({ path: file, fullPage: true });
  say(`  screenshot ${path.relative(ROOT, file)}`);
}

async function activePage(page) {
  return page.evaluate(() => window.WPRouter && window.WPRouter.current());
}

async function waitPage(page, id) {
  await page.waitForFunction((i) => window.WPRouter && window.WPRouter.current() === i &&
    !document.getElementById(i).hidden, id, { timeout: TIMEOUT });
}

async function goPage(page, id) {
  await page.evaluate((i) => window.j$.mobile.changePage('#' + i, { transition: 'none', role: 'page' }), id);
  await waitPage(page, id);
}

async function axe(page, label) {
  const has = await page.evaluate(() => typeof window.axe === 'object');
  if (!has) { await page.addScriptTag({ url: '/tests/e2e-skins/node_modules/axe-core/axe.min.js' }); }
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\s+/g, ' ')) }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of res) {
    if (!bad.includes(v)) { say(`  axe (${label}) ${v.impact}: ${v.id} - ${v.help}`); }
  }
  if (bad.length) {
    throw new Error(`axe (${label}): ` + bad.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.join(' | ')}`).join('; '));
  }
}

// ---------------------------------------------------------------- scenarios

const PAGES = ['page_login', 'page_dialpad', 'page_contactslist', 'page_contactedit', 'page_callhistorylist',
  'page_chat', 'page_settings', 'page_extra1'];

// click2call helpers
async function c2kReady(page) {
  await page.waitForSelector('html.c2k-started', { timeout: TIMEOUT });
}
async function c2kStatus(page, n, re) {
  await page.waitForFunction(([i, src]) => new RegExp(src).test(document.getElementById(`c2k_container_${i}_status`).textContent),
    [n, re.source], { timeout: TIMEOUT });
}
async function c2kHangup(page, n) {
  await page.click(`#c2k_container_${n}_button`);
  await c2kStatus(page, n, /^Call ended$/);
  await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
}

function scenarios(env) {
  const { base, origin, port, sipPort } = env;
  const c2k = `${origin}/skins/click2call/click2call.html?wp_serviceport=${port}`;
  return {
    async load(page) {
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_login');
      const ids = await page.evaluate(() => Array.from(document.querySelectorAll('[data-role="page"]')).map((e) => e.id));
      for (const id of ['page_dialpad', 'page_contactslist', 'page_callhistorylist', 'page_settings',
        'page_extra1', 'page_extra2', 'page_extra3', 'page_extra4', 'page_extra5', 'page_login', 'page_call']) {
        assert(ids.includes(id), 'page ' + id + ' exists');
      }
      for (const id of ['extra_header_settings', 'extra_header_dialpad', 'extra_header_contactslist', 'extra_header_callhistorylist']) {
        assert(await page.$('#' + id), id + ' exists');
      }
      assert(await page.evaluate(() => typeof window.j$ === 'function' && typeof window.j$.mobile.changePage === 'function' &&
        typeof window.j$.mobile.back === 'function' && Array.isArray(window.themelist)), 'j$, j$.mobile and themelist');
      await page.waitForFunction(() => window.webphone_api.state.started, null, { timeout: TIMEOUT });
      await shot(page, 'load-login.png');
      // j$.mobile.changePage / back keep working.
      await goPage(page, 'page_extra2');
      await page.evaluate(() => window.j$.mobile.back());
      await waitPage(page, 'page_login');
      // The page life cycle an integrator's page script relies on: onCreate once, before the
      // first display; then at every display pagebeforeshow, onStart, pageshow; on leaving,
      // onStop then pagehide (the old page's, before the new one shows).
      const cycle = await page.evaluate(async () => {
        const log = [];
        const id = 'page_extra4';
        window.WPRouter.register(id, {
          onCreate: () => log.push('onCreate'),
          onStart: () => log.push('onStart'),
          onStop: () => log.push('onStop'),
        });
        const el = window.j$('#' + id);
        ['pagebeforeshow', 'pageshow', 'pagehide'].forEach((ev) => el.on(ev, () => log.push(ev)));
        const settle = () => new Promise((r) => setTimeout(r, 50));
        window.j$.mobile.changePage('#page_extra4'); await settle();
        window.j$.mobile.changePage('#page_extra5'); await settle();
        window.j$.mobile.back(); await settle();
        window.j$.mobile.changePage('#page_extra3'); await settle();
        return log;
      });
      const want = ['onCreate', 'pagebeforeshow', 'onStart', 'pageshow', 'onStop', 'pagehide',
        'pagebeforeshow', 'onStart', 'pageshow', 'onStop', 'pagehide'];
      assert(cycle.join() === want.join(), 'page life cycle: ' + cycle.join(' '));
      // The extra pages: a screenshot of each and no serious accessibility problem.
      for (const id of ['page_extra1', 'page_extra2', 'page_extra3', 'page_extra4', 'page_extra5']) {
        await goPage(page, id);
        await shot(page, `load-${id}.png`);
        await axe(page, id);
      }
      assert(consoleErrors.length === 0, 'no console errors: ' + consoleErrors.join('; '));
    },

    async served(page) {
      // The skins straight from the engine: `webphone-cli --serve --www DIR` hands out the
      // pages on its own port and admits their origin (no --allow-origin for it).
      const own = `http://127.0.0.1:${port}`;
      await page.goto(`${own}/skins/softphone/softphone.html?wp_serviceport=${port}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.waitForFunction(() => window.webphone_api.state.started, null, { timeout: TIMEOUT });
      if ((await activePage(page)) === 'page_login') { await page.click('#login_skip'); }
      await waitPage(page, 'page_dialpad');
      await page.fill('#dial_number', 'echo');
      await page.click('#dial_call');
      await waitPage(page, 'page_call');
      await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
      await shot(page, 'served-echo.png');
      await page.click('#call_hangup');
      await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
      // Any web site can link to these pages: a link's number and autoaction are not taken
      // (only look-and-feel parameters are), so a link cannot make the phone call.
      const before = await page.evaluate(() => window.webphone_api.getparameter('callto'));
      await page.goto(`${own}/skins/click2call/click2call.html?wp_serviceport=${port}&wp_callto=0900123&wp_autoaction=1`);
      await c2kReady(page);
      await page.waitForTimeout(1000);
      const after = await page.evaluate(async () => ({ callto: await window.webphone_api.getparameter('callto'), incall: window.webphone_api.state.incall }));
      assert(after.callto === before && after.callto !== '0900123' && !after.incall, 'a link provisioned the engine-served page: ' + JSON.stringify(after));
      // (What is not handed out, dot-folders and paths out of DIR, is checked by
      // crates/webphone-cli/tests/serve_service.rs; a 404 here would be a console error.)
    },

    async echo(page) {
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      if ((await activePage(page)) === 'page_login') { await page.click('#login_skip'); }
      await waitPage(page, 'page_dialpad');
      // Typing anywhere on the dial pad page goes into the number field; Enter calls.
      await page.focus('#tab_dialpad');
      await page.evaluate(() => document.activeElement.blur());
      await page.keyboard.type('echo');
      assert((await page.inputValue('#dial_number')) === 'echo', 'typed into the dial field');
      await page.keyboard.press('Enter');
      await waitPage(page, 'page_call');
      await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
      const name = await page.textContent('#call_peer_name');
      assert(/echo/i.test(name), 'peer name shown: ' + name);
      await page.waitForFunction(() => document.getElementById('call_timer').textContent !== '00:00', null, { timeout: 5000 });
      const t1 = await page.textContent('#call_timer');
      await page.waitForTimeout(1200);
      const t2 = await page.textContent('#call_timer');
      assert(t1 !== t2, `timer runs (${t1} -> ${t2})`);
      // Buttons for features the engine may not have yet: the error is shown as a toast.
      await page.click('#call_keypad_toggle');
      await page.click('#call_dtmf_keypad [data-key="5"]');
      await page.waitForFunction(() => document.getElementById('call_dtmf_sent').textContent === '5', null, { timeout: TIMEOUT });
      await shot(page, 'echo-incall.png');
      await axe(page, 'page_call in call');
      // Escape hangs up.
      await page.keyboard.press('Escape');
      await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Call ended', null, { timeout: TIMEOUT });
      await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
      await shot(page, 'echo-ended.png');
      await page.click('#tab_callhistorylist');
      await waitPage(page, 'page_callhistorylist');
      await page.waitForSelector('#history_list li', { timeout: TIMEOUT });
      const first = await page.textContent('#history_list li .item-title');
      assert(/echo/i.test(first), 'history lists the echo call: ' + first);
      await shot(page, 'echo-history.png');
    },

    async contacts(page) {
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_contactslist');
      await page.click('#contacts_add');
      await waitPage(page, 'page_contactedit');
      await page.fill('#contactedit_name', 'Alice Example');
      await page.fill('#contactedit_number', '1001');
      await page.click('#contactedit_save');
      await waitPage(page, 'page_contactslist');
      await page.click('#contacts_add');
      await page.fill('#contactedit_name', 'Bob Other');
      await page.fill('#contactedit_number', 'sip:bob@example.org');
      await page.press('#contactedit_number', 'Enter');
      await waitPage(page, 'page_contactslist');
      await page.reload();
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_contactslist');
      const names = await page.$$eval('#contacts_list .contact-name', (els) => els.map((e) => e.textContent));
      assert(names.includes('Alice Example') && names.includes('Bob Other'), 'contacts persisted across reload: ' + names);
      await page.fill('#contacts_search', 'ali');
      const found = await page.$$eval('#contacts_list .contact-name', (els) => els.map((e) => e.textContent));
      assert(found.length === 1 && found[0] === 'Alice Example', 'search filters: ' + found);
      // Chat with a contact from the list.
      await page.click('#contacts_list li:has-text("Alice Example") .contact-chat');
      await waitPage(page, 'page_chat');
      assert((await page.textContent('#chat_heading')) === 'Chat with Alice Example', 'chat opened from the contact');
      await goPage(page, 'page_contactslist');
      await page.fill('#contacts_search', '');
      // Block Alice: her number goes on the engine's blacklist (calls and chats refused), the
      // list marks her, the editor shows it; unblocking takes the number off again.
      const blacklist = () => page.evaluate(() => Promise.resolve(window.webphone_api.getparameter('blacklist')).then(String));
      await page.click('#contacts_list li:has-text("Alice Example") .contact-edit');
      await waitPage(page, 'page_contactedit');
      assert(!(await page.isChecked('#contactedit_blocked')), 'not blocked at first');
      await page.check('#contactedit_blocked');
      await page.click('#contactedit_save');
      await waitPage(page, 'page_contactslist');
      await page.waitForFunction(() => Promise.resolve(window.webphone_api.getparameter('blacklist')).then((v) => String(v) === '1001'), null, { timeout: TIMEOUT });
      assert((await page.textContent('#contacts_list li:has-text("Alice Example") .contact-blocked')) === 'Blocked', 'blocked marker');
      await page.click('#contacts_list li:has-text("Alice Example") .contact-edit');
      await waitPage(page, 'page_contactedit');
      assert(await page.isChecked('#contactedit_blocked'), 'the editor shows the block');
      await page.uncheck('#contactedit_blocked');
      await page.click('#contactedit_save');
      await waitPage(page, 'page_contactslist');
      await page.waitForFunction(() => Promise.resolve(window.webphone_api.getparameter('blacklist')).then((v) => !String(v || '').includes('1001')), null, { timeout: TIMEOUT });
      say(`  blacklist after unblocking: "${await blacklist()}"`);
      assert(!(await page.$('#contacts_list li:has-text("Alice Example") .contact-blocked')), 'marker gone');
      // Saving a contact with the Block box left as it was does not touch the list: a number
      // blacklisted on its own stays there (a new contact, and a contact only partly listed).
      await page.evaluate(() => window.webphone_api.setparameter('blacklist', '2002'));
      await page.click('#contacts_add');
      await waitPage(page, 'page_contactedit');
      await page.fill('#contactedit_name', 'Carol Partial');
      await page.fill('#contactedit_number', '2002,sip:3003@example.org;transport=tcp');
      assert(!(await page.isChecked('#contactedit_blocked')), 'a new contact starts unblocked');
      await page.click('#contactedit_save');
      await waitPage(page, 'page_contactslist');
      await page.click('#contacts_list li:has-text("Carol Partial") .contact-edit');
      await waitPage(page, 'page_contactedit');
      await page.fill('#contactedit_notes', 'only 2002 is listed');
      await page.click('#contactedit_save');
      await waitPage(page, 'page_contactslist');
      assert((await blacklist()) === '2002', 'unchanged blacklist after saving unblocked contacts: ' + (await blacklist()));
      // Ticking the box blocks every number of the contact, by its user part (URI parameters
      // are not numbers).
      await page.click('#contacts_list li:has-text("Carol Partial") .contact-edit');
      await waitPage(page, 'page_contactedit');
      await page.check('#contactedit_blocked');
      await page.click('#contactedit_save');
      await waitPage(page, 'page_contactslist');
      await page.waitForFunction(() => Promise.resolve(window.webphone_api.getparameter('blacklist')).then((v) => String(v) === '2002,3003'), null, { timeout: TIMEOUT })
        .catch(async () => { throw new Error('blocking Carol: blacklist is ' + (await blacklist())); });
      await page.evaluate(() => window.webphone_api.setparameter('blacklist', ''));
      await page.click('#contacts_list li:has-text("Carol Partial") .contact-edit');
      await page.click('#contactedit_delete');
      await page.waitForSelector('#confirm_dialog:not([hidden])');
      await page.click('#confirm_yes');
      await waitPage(page, 'page_contactslist');
      // Edit Bob, then delete him.
      await page.click('#contacts_list li:has-text("Bob Other") .contact-edit');
      await waitPage(page, 'page_contactedit');
      await page.fill('#contactedit_name', 'Bob Renamed');
      await page.click('#contactedit_save');
      await waitPage(page, 'page_contactslist');
      await page.click('#contacts_list li:has-text("Bob Renamed") .contact-edit');
      await page.click('#contactedit_delete');
      await page.waitForSelector('#confirm_dialog:not([hidden])');
      await page.click('#confirm_yes');
      await waitPage(page, 'page_contactslist');
      const after = await page.$$eval('#contacts_list .contact-name', (els) => els.map((e) => e.textContent));
      assert(after.length === 1 && after[0] === 'Alice Example', 'edit + delete: ' + after);
      await shot(page, 'contacts.png');
    },

    async xss(page) {
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      const payload = '<img src=x onerror="window.__xss=(window.__xss||0)+1">';
      const payload2 = '<script>window.__xss=1</script><b>bold</b>';
      await goPage(page, 'page_contactslist');
      await page.click('#contacts_add');
      await page.fill('#contactedit_name', payload);
      await page.fill('#contactedit_number', payload2);
      await page.click('#contactedit_save');
      await waitPage(page, 'page_contactslist');
      const item = await page.$eval('#contacts_list', (ul) => {
        const li = Array.from(ul.querySelectorAll('li')).find((l) => l.textContent.includes('onerror'));
        return li ? { name: li.querySelector('.contact-name').textContent, number: li.querySelector('.contact-number').textContent,
          tags: li.querySelectorAll('img,script,b').length } : null;
      });
      assert(item && item.name === payload && item.number === payload2 && item.tags === 0, 'contact payload rendered as text: ' + JSON.stringify(item));
      // The engine's extra BLF state `unregistered` (a watch answered 480) gives its own lamp.
      const lamp = await page.evaluate(() => {
        window.WPSkin.onNotification('BLF,1007,undefined,unregistered,');
        return window.WPSkin.lampOf('1007');
      });
      assert(lamp && lamp.kind === 'unregistered' && lamp.label === 'Not registered', 'BLF unregistered lamp: ' + JSON.stringify(lamp));
      // A peer display name / peer name from the engine (injected notification strings).
      await page.evaluate((p) => {
        window.WPSkin.onNotification(`STATUS,7,Ringing,${p},me,2,${p},xss-call,1,1,1,0,0,0,0`);
      }, payload);
      await waitPage(page, 'page_call');
      const peer = await page.evaluate(() => ({ name: document.getElementById('call_peer_name').textContent,
        tags: document.querySelectorAll('#page_call img, #page_call script').length }));
      assert(peer.name === payload && peer.tags === 0, 'peer display name rendered as text: ' + JSON.stringify(peer));
      await shot(page, 'xss-call.png');
      await page.evaluate((p) => {
        window.WPSkin.onNotification(`STATUS,7,CallDisconnect,${p},me,2,${p},xss-call,1,1,0,0,0,0,0`);
        window.WPSkin.onNotification(`CDR,7,${p},${p},me,local,0,0,2,<b>reason</b>`);
      }, payload);
      await goPage(page, 'page_callhistorylist');
      const hist = await page.evaluate(() => ({ title: document.querySelector('#history_list li .item-title').textContent,
        tags: document.querySelectorAll('#history_list img, #history_list script, #history_list b').length }));
      assert(hist.title === '<img src=x onerror="window.__xss=(window.__xss||0)+1">' && hist.tags === 0, 'CDR peer rendered as text: ' + JSON.stringify(hist));
      // Toasts (onDisplay text from the engine) too.
      await page.evaluate((p) => window.WPSkin.toast(p, 'error'), payload);
      const toastTags = await page.evaluate(() => document.querySelectorAll('#toasts img').length);
      assert(toastTags === 0, 'toast rendered as text');
      await page.waitForTimeout(300);
      assert(await page.evaluate(() => window.__xss === undefined), 'no payload ran');
      await shot(page, 'xss-history.png');
      // Clean up for the following scenarios.
      await page.evaluate(() => {
        window.WPSkin.contacts().filter((c) => c.name.includes('onerror')).forEach((c) => window.WPSkin.deleteContact(c.id));
        window.WPSkin.save('history', window.WPSkin.history().filter((h) => !h.peer.includes('onerror')));
      });
    },

    async themes(page) {
      const themes = loadThemes();
      assert(themes.length >= 4, 'at least 4 themes');
      // featureset 15 and a voicemail number: the Advanced card of Settings and the dial pad's
      // Voicemail button are on the pages too.
      await page.goto(base);
      await page.evaluate(() => window.webphone_api.setparameter('voicemailnum', 'echo'));
      for (const th of themes) {
        await page.goto(`${base}&wp_colortheme=${th.number}&wp_featureset=15`);
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        const applied = await page.evaluate(() => document.body.getAttribute('data-theme'));
        assert(applied === th.id, `theme ${th.id} applied (${applied})`);
        for (const id of PAGES) {
          if (id === 'page_contactedit') {
            await goPage(page, 'page_contactslist');
            await page.click('#contacts_add');
          }
          await goPage(page, id);
          await page.waitForTimeout(50);
          await shot(page, `theme${th.number}-${id}.png`);
          await axe(page, `${th.id} ${id}`);
        }
        // The call page, with a simulated incoming call (no peer needed).
        await page.evaluate(() => window.WPSkin.onNotification('STATUS,9,Ringing,2222,me,2,Katie Example,t-call,1,1,1,0,0,0,0'));
        await waitPage(page, 'page_call');
        await shot(page, `theme${th.number}-page_call-incoming.png`);
        await axe(page, `${th.id} page_call incoming`);
        await page.evaluate(() => window.WPSkin.onNotification('STATUS,9,InCall,2222,me,2,Katie Example,t-call,1,1,2,0,0,2,0'));
        await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected');
        await shot(page, `theme${th.number}-page_call.png`);
        await axe(page, `${th.id} page_call connected`);
        await page.evaluate(() => {
          window.WPSkin.onNotification('STATUS,9,Finished,2222,me,2,Katie Example,t-call,1,1,0,0,0,0,0');
        });
        say(`  theme ${th.id} (${th.name}): ${PAGES.length + 2} pages, axe clean`);
      }
      assert(await page.evaluate(() => !document.getElementById('settings_advanced').hidden && !document.getElementById('dial_voicemail_row').hidden),
        'advanced card and Voicemail button were on the pages');
      await page.evaluate(() => window.webphone_api.setparameter('voicemailnum', ''));
    },

    async params(page) {
      const q = ['wp_brandname=Acme%20Phone', 'wp_companyname=Acme%20Ltd', 'wp_header=Support%20line%20%3Cb%3Ex%3C%2Fb%3E',
        'wp_footer=Footer%20text', 'wp_logo=Acme', 'wp_disableoptions=PAGE_CONTACTS,CONFERENCE,theme',
        'wp_closecall_timeout=600', 'wp_displayvolumecontrols=true', 'wp_displayaudiodevice=true', 'wp_showserverinput=0'];
      await page.goto(`${base}&${q.join('&')}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      const ui = await page.evaluate(() => ({
        title: document.title, brand: document.getElementById('brand_name').textContent,
        header: document.getElementById('header_text').textContent, headerTags: document.querySelectorAll('#header_text b').length,
        footer: document.getElementById('app_footer').textContent, footerShown: !document.getElementById('app_footer').hidden,
        contactsTab: !document.getElementById('tab_contactslist').hidden,
      }));
      assert(ui.title === 'Acme Phone' && ui.brand === 'Acme Phone', 'brandname: ' + JSON.stringify(ui));
      assert(ui.header === 'Support line <b>x</b>' && ui.headerTags === 0, 'header as text: ' + JSON.stringify(ui));
      assert(ui.footer === 'Footer text' && ui.footerShown, 'footer: ' + JSON.stringify(ui));
      assert(!ui.contactsTab, 'disableoptions PAGE_CONTACTS hides the contacts tab');
      await goPage(page, 'page_login');
      assert(await page.$eval('#login_server_field', (e) => e.hidden), 'showserverinput=0 hides the server field');
      assert((await page.textContent('#login_logo')) === 'Acme', 'text logo');
      assert((await page.textContent('#login_brand')).includes('Acme Ltd'), 'companyname on the login page');
      await shot(page, 'params-login.png');
      await goPage(page, 'page_settings');
      assert(await page.$eval('#settings_theme_field', (e) => e.hidden), 'disableoptions theme hides the theme setting');
      await goPage(page, 'page_dialpad');
      await page.fill('#dial_number', 'echo');
      await page.click('#dial_call');
      await waitPage(page, 'page_call');
      await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
      const call = await page.evaluate(() => ({
        conf: !document.getElementById('call_conference').hidden,
        vol: !document.getElementById('call_volume_field').hidden,
        dev: !document.getElementById('call_device_field').hidden,
      }));
      assert(!call.conf && call.vol && call.dev, 'call page options: ' + JSON.stringify(call));
      await shot(page, 'params-call.png');
      await page.click('#call_hangup');
      // closecall_timeout=600: the call page closes by itself shortly after the hang-up.
      await page.waitForFunction(() => window.WPRouter.current() !== 'page_call', null, { timeout: 5000 });
      assert((await activePage(page)) === 'page_dialpad', 'back on the dial pad after closecall_timeout');
      // useloginpage=2: always the login page; featureset=0: minimal tabs.
      await page.goto(`${base}&wp_useloginpage=2&wp_featureset=0`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_login');
      await goPage(page, 'page_dialpad');
      const tabs = await page.$$eval('#tabbar .tab', (els) => els.filter((e) => !e.hidden).map((e) => e.id));
      assert(tabs.join() === 'tab_dialpad,tab_settings', 'featureset=0 tabs: ' + tabs);
      // disableoptions CHAT, PAGE_HISTORY, VIDEO, RECORD and "Audio device"; featureset 5 and 10;
      // logo as an image file of images/.
      const logoFile = path.join(ROOT, 'skins/softphone/images/e2e-logo.svg');
      writeFileSync(logoFile, '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="#c02020"/></svg>');
      try {
        await page.goto(`${base}&wp_disableoptions=CHAT,PAGE_HISTORY,VIDEO,RECORD,Audio%20device&wp_displayvideodevice=1` +
          '&wp_featureset=5&wp_logo=e2e-logo.svg&wp_useloginpage=0');
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        await goPage(page, 'page_dialpad');
        const shown = await page.$$eval('#tabbar .tab', (els) => els.filter((e) => !e.hidden).map((e) => e.id));
        assert(!shown.includes('tab_chat') && !shown.includes('tab_callhistorylist') && shown.includes('tab_contactslist'),
          'disableoptions CHAT, PAGE_HISTORY: tabs ' + shown);
        await page.waitForFunction(() => { const i = document.querySelector('#brand_logo img'); return i && i.complete && i.naturalWidth === 40; },
          null, { timeout: TIMEOUT });
        await goPage(page, 'page_settings');
        const fs5 = await page.evaluate(() => Object.fromEntries(['settings_audio', 'settings_video_field', 'settings_codecs', 'settings_logs', 'settings_advanced']
          .map((id) => [id, !document.getElementById(id).hidden])));
        assert(JSON.stringify(fs5) === JSON.stringify({ settings_audio: false, settings_video_field: false, settings_codecs: false, settings_logs: true, settings_advanced: false }),
          'featureset 5 with Audio device and VIDEO disabled: ' + JSON.stringify(fs5));
        await shot(page, 'params-disableoptions-settings.png');
        await goPage(page, 'page_dialpad');
        await page.fill('#dial_number', 'echo');
        await page.click('#dial_call');
        await waitPage(page, 'page_call');
        await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
        await page.waitForTimeout(300);
        assert(await page.$eval('#call_record', (e) => e.hidden), 'disableoptions RECORD hides Record on a connected call');
        await page.click('#call_hangup');
        await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        await page.goto(`${base}&wp_featureset=10&wp_useloginpage=0`);
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        await goPage(page, 'page_settings');
        const fs10 = await page.evaluate(() => [!document.getElementById('settings_codecs').hidden, !document.getElementById('settings_advanced').hidden]);
        assert(fs10.join() === 'true,false', 'featureset 10: codec order shown, advanced parameters not: ' + fs10);
      } finally {
        rmSync(logoFile, { force: true });
      }
    },

    async layout(page) {
      for (const [w, h] of [[320, 560], [1280, 800]]) {
        await page.setViewportSize({ width: w, height: h });
        await page.goto(base);
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        // Every page at 320 px; the full window on the main ones.
        const ids = w === 320 ? [...PAGES, 'page_peerdetails', 'page_extra5'] : ['page_dialpad', 'page_settings', 'page_callhistorylist', 'page_login'];
        for (const id of ids) {
          await goPage(page, id);
          const sw = await page.evaluate(() => document.documentElement.scrollWidth);
          assert(sw <= w, `${id} at ${w}px: no horizontal scrolling (scrollWidth ${sw})`);
          await shot(page, `layout-${w}-${id}.png`);
        }
      }
      // German has the longest words: the narrowest window still fits, the call page too.
      await page.setViewportSize({ width: 320, height: 560 });
      await page.goto(`${base}&wp_language=de`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => window.WPSkin.onNotification('STATUS,9,InCall,2222,me,1,Katharina Beispielname-Langform,t-call,1,1,2,0,0,0,0'));
      await waitPage(page, 'page_call');
      for (const id of ['page_call', 'page_settings', 'page_contactslist']) {
        await goPage(page, id);
        const sw = await page.evaluate(() => document.documentElement.scrollWidth);
        assert(sw <= 320, `${id} in German at 320px: no horizontal scrolling (scrollWidth ${sw})`);
        await shot(page, `layout-320-de-${id}.png`);
      }
      await page.evaluate(() => window.WPSkin.onNotification('STATUS,9,Finished,2222,me,1,K,t-call,1,1,0,0,0,0,0'));
      await page.setViewportSize({ width: 400, height: 760 });
    },

    async language(page) {
      await page.goto(`${base}&wp_language=de`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.waitForFunction(() => document.documentElement.lang === 'de');
      const de = await page.textContent('#tab_contactslist');
      assert(de.includes('Kontakte'), 'German tab text: ' + de);
      await goPage(page, 'page_settings');
      await shot(page, 'language-de-settings.png');
      await page.goto(`${base}&wp_language=fr`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.waitForFunction(() => document.documentElement.lang === 'fr');
      const fr = await page.textContent('#tab_settings');
      assert(fr.includes('Réglages'), 'French tab text: ' + fr);
      await goPage(page, 'page_dialpad');
      await shot(page, 'language-fr-dialpad.png');
    },

    async lines(page) {
      // Two calls at once (simulated notification strings): the line switcher appears and
      // switches the shown call.
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => {
        window.WPSkin.onNotification('STATUS,3,InCall,3001,me,1,Carol,l3,1,1,2,0,0,2,0');
        window.WPSkin.onNotification('STATUS,4,Ringing,3002,me,2,Dave,l4,1,1,1,0,0,0,0');
      });
      await waitPage(page, 'page_call');
      await page.waitForSelector('#call_lines:not([hidden]) .line-btn');
      const btns = await page.$$eval('#call_lines .line-btn', (els) => els.map((e) => [e.textContent, e.getAttribute('aria-pressed')]));
      assert(btns.length === 2 && btns[1][1] === 'true', 'two lines, the newest selected: ' + JSON.stringify(btns));
      assert((await page.textContent('#call_peer_name')) === 'Dave', 'newest call shown');
      assert(!(await page.$eval('#call_incoming', (e) => e.hidden)), 'answer/reject for the ringing call');
      assert((await page.title()) === 'Incoming call from Dave', 'window title announces the ringing call: ' + (await page.title()));
      await shot(page, 'lines-two-calls.png');
      await page.click('#call_lines .line-btn >> nth=0');
      await page.waitForFunction(() => document.getElementById('call_peer_name').textContent === 'Carol');
      assert((await page.textContent('#call_encryption_text')) === 'Encrypted', 'encryption indicator');
      assert(await page.$eval('#call_incoming', (e) => e.hidden), 'no answer button on the connected call');
      await axe(page, 'page_call two lines');
      await shot(page, 'lines-switched.png');
      await page.evaluate(() => {
        window.WPSkin.onNotification('STATUS,3,Finished,3001,me,1,Carol,l3,1,1,0,0,0,0,0');
        window.WPSkin.onNotification('STATUS,4,Finished,3002,me,2,Dave,l4,1,1,0,0,0,0,0');
      });
      await page.waitForFunction(() => window.WPSkin.activeLines().length === 0);
      assert((await page.title()) === 'WebPhone', 'title restored: ' + (await page.title()));
    },

    async login(page) {
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => localStorage.clear());
      await page.reload();
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_login');
      await page.click('#login_submit');
      assert(!(await page.$eval('#login_error', (e) => e.hidden)), 'empty form is refused');
      await page.fill('#login_server', '127.0.0.1:9');
      await page.fill('#login_username', 'bob');
      await page.fill('#login_password', 'bobsecret');
      await page.check('#login_remember');
      await page.press('#login_password', 'Enter');
      await waitPage(page, 'page_dialpad');
      const engine = await page.evaluate(async () => [await window.webphone_api.getparameter('serveraddress'),
        await window.webphone_api.getparameter('username')]);
      assert(engine.join() === '127.0.0.1:9,bob', 'login sets the engine parameters: ' + engine);
      // Remembered on this device: the next start signs in directly.
      await page.evaluate(async () => { await window.webphone_api.unregister().catch(() => {}); await window.webphone_api.setparameter('password', ''); });
      await page.reload();
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_dialpad');
      // The service never shows a password to pages: a set one reads back as "<redacted>".
      await page.waitForFunction(async () => (await window.webphone_api.getparameter('password')) === '<redacted>', null, { timeout: TIMEOUT });
      await page.evaluate(async () => {
        await window.webphone_api.unregister().catch(() => {});
        await window.webphone_api.setparameter('serveraddress', '');
        await window.webphone_api.setparameter('password', '');
        localStorage.clear();
      });
    },

    async settings(page) {
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_settings');
      // Codec order: move PCMA up, switch G722 off -> the codec parameter.
      await page.click('#settings_codec_list li:has-text("PCMA") button[aria-label*="up"]');
      await page.uncheck('#codec_G722');
      const codec = await page.evaluate(() => window.webphone_api.getparameter('codec'));
      assert(codec === 'PCMA,PCMU,OPUS', 'codec parameter from the codec list: ' + codec);
      await page.selectOption('#settings_loglevel', '5');
      await page.waitForFunction(async () => String(await window.webphone_api.getparameter('loglevel')) === '5');
      // Microphone level and speaker test (engine extension audiotest): a 1 kHz tone file as
      // the microphone moves the meter; stopping drops it to 0; the speaker test writes its
      // two tones (440 and 660 Hz) to the playback file.
      const audioDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-skins-audiotest-'));
      try {
        const micTone = path.join(audioDir, 'mic-1k.wav');
        writeTone(micTone, 1000, 16000, 40, 0.25);
        const speakerOut = path.join(audioDir, 'speaker.wav');
        await page.evaluate(async ([i, o]) => {
          await window.webphone_api.setparameter('audiodevicein', 'file:' + i);
          await window.webphone_api.setparameter('audiodeviceout', 'file:' + o);
        }, [micTone, speakerOut]);
        const meterNow = () => page.$eval('#settings_mic_meter', (m) => Number(m.getAttribute('aria-valuenow')));
        assert(await meterNow() === 0, 'meter at 0 before the test');
        await page.click('#settings_mic_test');
        await page.waitForFunction(() => Number(document.getElementById('settings_mic_meter').getAttribute('aria-valuenow')) > 70,
          null, { timeout: TIMEOUT });
        const pressed = await page.$eval('#settings_mic_test', (b) => [b.getAttribute('aria-pressed'), b.textContent]);
        assert(pressed[0] === 'true' && pressed[1] === 'Stop the test', 'test button while testing: ' + pressed);
        const level = await meterNow();
        await shot(page, 'settings-mic-test.png');
        await page.click('#settings_mic_test');
        await page.waitForFunction(() => document.getElementById('settings_mic_test').getAttribute('aria-pressed') === 'false');
        await page.waitForTimeout(600); // reports already on their way must not move it again
        assert(await meterNow() === 0, 'meter back at 0 after stopping');
        await page.click('#settings_speaker_test');
        // About 1 s of sound; the file is complete once its size stops changing.
        let size = -1;
        for (let i = 0; i < 30; i++) {
          await page.waitForTimeout(300);
          const now = existsSync(speakerOut) ? statSync(speakerOut).size : 0;
          if (i > 4 && now > 44 && now === size) { break; }
          size = now;
        }
        const l440 = toneLevel(speakerOut, 440); const l660 = toneLevel(speakerOut, 660);
        assert(l440.dbfs > -30 && l660.dbfs > -30 && l440.secs > 0.8,
          'speaker test sound: ' + JSON.stringify({ l440, l660 }));
        console.log(`    microphone meter at ${level}% for a -12 dBFS tone; speaker test ${l440.secs.toFixed(2)} s, 440 Hz ${l440.dbfs.toFixed(1)} dBFS, 660 Hz ${l660.dbfs.toFixed(1)} dBFS`);
      } finally {
        await page.evaluate(async () => {
          await window.webphone_api.setparameter('audiodevicein', 'null');
          await window.webphone_api.setparameter('audiodeviceout', 'null');
        });
        rmSync(audioDir, { recursive: true, force: true });
      }
      await page.selectOption('#settings_theme', '2');
      await page.selectOption('#settings_language', 'fr');
      await page.waitForFunction(() => document.documentElement.lang === 'fr');
      await page.reload();
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      const kept = await page.evaluate(() => [document.body.getAttribute('data-theme'), document.documentElement.lang]);
      assert(kept.join() === 'theme_1,fr', 'theme and language kept across reload: ' + kept);
      await goPage(page, 'page_settings');
      const order = await page.$$eval('#settings_codec_list .codec-name', (els) => els.map((e) => e.textContent));
      assert(order.slice(0, 2).join() === 'PCMA,PCMU', 'codec order shown from the parameter: ' + order);
      await shot(page, 'settings-changed.png');
      await page.evaluate(async () => {
        localStorage.removeItem('wpskin.colortheme');
        localStorage.removeItem('wpskin.language');
        await window.webphone_api.setparameter('codec', '');
        await window.webphone_api.setparameter('loglevel', '1');
        await window.webphone_api.setparameter('language', '');
        await window.webphone_api.setparameter('colortheme', '0');
      });
    },

    async noservice(page) {
      // The phone service is not running: the skin still shows and says what to do.
      const dead = await new Promise((resolve) => {
        const srv = http.createServer();
        srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
      });
      const before = consoleErrors.length;
      await page.goto(base.replace(/wp_serviceport=\d+/, 'wp_serviceport=' + dead));
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.waitForFunction(() => Array.from(document.querySelectorAll('#toasts .toast-error'))
        .some((t) => t.textContent.includes('--allow-origin')), null, { timeout: TIMEOUT });
      assert(['page_login', 'page_dialpad'].includes(await activePage(page)), 'a page is shown');
      await shot(page, 'noservice.png');
      // Chromium itself logs the refused WebSocket connection; only those lines are expected.
      const extra = consoleErrors.splice(before).filter((m) => !/WebSocket connection to .* failed/.test(m));
      assert(extra.length === 0, 'no other console errors: ' + extra.join('; '));
    },

    async autologin(page) {
      // Credentials the engine already knows (set by the integrator): no login page.
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(async () => {
        localStorage.clear();
        await window.webphone_api.setparameter('register', 'false');
        await window.webphone_api.setparameter('username', 'alice');
        await window.webphone_api.setparameter('password', 'secret');
      });
      await page.reload();
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_dialpad');
      await shot(page, 'autologin-dialpad.png');
      // Signing out shows the login page again.
      await goPage(page, 'page_settings');
      await page.click('#settings_signout');
      await waitPage(page, 'page_login');
      assert((await page.inputValue('#login_username')) === 'alice', 'username kept after sign-out');
    },

    async params2(page) {
      // Links (homepage, supportmail; "*" API requests and non-http schemes are not links),
      // advertisement, extramenuurl/txt, haveloginpage (old name), callparknumber,
      // hasringcounter, savetocontacts=2.
      const q = ['wp_homepage=https%3A%2F%2Fexample.org%2F', 'wp_supportmail=help%40example.org',
        'wp_helpurl=*https%3A%2F%2Fapi.example.org%2Fhelp', 'wp_licenseurl=javascript%3Aalert(1)',
        'wp_advertisement=https%3A%2F%2Fads.example.org%2Fspring', 'wp_extramenuurl=https%3A%2F%2Fshop.example.org%2F',
        'wp_extramenutxt=Our%20shop', 'wp_haveloginpage=2', 'wp_callparknumber=*71', 'wp_hasringcounter=true',
        'wp_savetocontacts=2', 'wp_logsendto=2'];
      await page.goto(`${base}&${q.join('&')}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_login');
      const ad = await page.$eval('#app_advert', (a) => [a.textContent, a.href]);
      assert(ad[0] === 'ads.example.org/spring' && ad[1] === 'https://ads.example.org/spring', 'advertisement link: ' + ad);
      await goPage(page, 'page_settings');
      const links = await page.$$eval('#settings_links a', (els) => els.map((a) => a.id + '=' + a.getAttribute('href')));
      assert(links.join() === 'settings_link_homepage=https://example.org/,settings_link_supportmail=mailto:help@example.org',
        'links: ' + links);
      // logsendto=2: the log (getlogs) goes to supportmail by e-mail.
      await page.click('#settings_logs_show');
      await page.waitForSelector('#settings_logs_text:not([hidden])');
      const mail = await page.$eval('#settings_logs_email', (a) => [a.hidden, a.getAttribute('href')]);
      const body = decodeURIComponent((mail[1] || '').split('&body=')[1] || '');
      const logs = await page.inputValue('#settings_logs_text');
      assert(!mail[0] && mail[1].startsWith('mailto:help@example.org?subject=Log%20of%20WebPhone&body=') && logs.endsWith(body) && body.length > 0,
        'log e-mail link: ' + String(mail[1]).slice(0, 80));
      assert(await page.$eval('#settings_logs_upload', (b) => b.hidden), 'no upload with logsendto=2');
      await shot(page, 'params2-settings.png');
      await axe(page, 'settings with links');
      await goPage(page, 'page_dialpad');
      const extra = await page.$eval('#dial_extramenu', (a) => [a.textContent, a.getAttribute('href'), a.parentNode.hidden]);
      assert(extra.join('|') === 'Our shop|https://shop.example.org/|false', 'extramenu: ' + extra);
      await axe(page, 'dialpad with extramenu');
      // Ring counter on an outgoing call that rings (simulated notifications).
      await page.evaluate(() => window.WPSkin.onNotification('STATUS,7,Ringing,5555,me,1,,r-call,1,1,1,0,0,0,0'));
      await waitPage(page, 'page_call');
      await page.waitForFunction(() => document.getElementById('call_timer').textContent !== '00:00', null, { timeout: 5000 });
      assert(await page.$eval('#call_park', (b) => b.hidden), 'no Park before the call is connected');
      await page.evaluate(() => {
        window.WPSkin.onNotification('STATUS,7,Finished,5555,me,1,,r-call,1,1,0,0,0,0,0');
        window.WPSkin.onNotification('CDR,7,5555,me,5555,127.0.0.1,0,0,1');
      });
      await page.waitForFunction(() => window.WPSkin.findContactByNumber('5555') !== null, null, { timeout: TIMEOUT });
      // Park on a connected echo call sends the park code as DTMF.
      await goPage(page, 'page_dialpad');
      await page.fill('#dial_number', 'echo');
      await page.click('#dial_call');
      await waitPage(page, 'page_call');
      await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
      await page.waitForSelector('#call_park:not([hidden])');
      await shot(page, 'params2-park.png');
      await page.click('#call_park');
      await page.waitForFunction(() => Array.from(document.querySelectorAll('#toasts .toast')).some((t) => t.textContent === 'Call parked at *71'),
        null, { timeout: TIMEOUT });
      await page.click('#call_hangup');
      await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
      assert(await page.evaluate(() => window.WPSkin.findContactByNumber('echo') === null), 'the echo test is never saved as a contact');
      await page.evaluate(() => { const c = window.WPSkin.findContactByNumber('5555'); if (c) { window.WPSkin.deleteContact(c.id); } });
    },

    async logs(page) {
      // logsendto=1: the log is uploaded to logform_action (a form POST; not submitted here).
      await page.goto(`${base}&wp_logsendto=1&wp_logform_action=${encodeURIComponent('https://logs.example.org/upload')}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_settings');
      assert(await page.$eval('#settings_logs_upload', (b) => b.hidden), 'upload offered only once the log is shown');
      await page.click('#settings_logs_show');
      await page.waitForSelector('#settings_logs_upload:not([hidden])');
      assert(await page.$eval('#settings_logs_email', (a) => a.hidden), 'no e-mail with logsendto=1');
      await page.click('#settings_logs_copy');
      await shot(page, 'settings-logs.png');
      await axe(page, 'settings logs');
    },

    async chat(page) {
      // The softphone's chat page fed by CHAT / CHATCOMPOSING / CHATREPORT notification strings.
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => localStorage.removeItem('wpskin.chats'));
      await goPage(page, 'page_chat');
      assert(!(await page.$eval('#chat_empty', (e) => e.hidden)), 'no conversations yet');
      // An incoming message opens its conversation (showincomingchatas=0, no call running).
      await goPage(page, 'page_dialpad');
      await page.evaluate(() => window.WPSkin.chat.onNotification('CHAT,1,2001,Hello <b>there</b>, friend'));
      await waitPage(page, 'page_chat');
      await page.waitForSelector('#chat_log .chat-in');
      const got = await page.evaluate(() => [document.getElementById('chat_heading').textContent,
        document.querySelector('#chat_log .chat-in .chat-text').textContent, document.querySelectorAll('#chat_log b').length]);
      assert(got[0] === 'Chat with 2001' && got[1] === 'Hello <b>there</b>, friend' && got[2] === 0, 'incoming message as text: ' + got);
      // Web addresses become links (http/https only, opened outside the phone); other schemes and
      // markup stay plain text.
      await page.evaluate(() => window.WPSkin.chat.onNotification('CHAT,1,2001,See https://example.test/a?b=1&c=2. or javascript:alert(1) <a href="https://evil.test">x</a>'));
      await page.waitForFunction(() => document.querySelectorAll('#chat_log .chat-in').length === 2);
      const links = await page.evaluate(() => Array.from(document.querySelectorAll('#chat_log .chat-in')[1].querySelectorAll('a'))
        .map((a) => [a.textContent, a.getAttribute('href'), a.target, a.rel].join(' ')));
      const linkText = await page.evaluate(() => document.querySelectorAll('#chat_log .chat-in .chat-text')[1].textContent);
      say(`  links: ${JSON.stringify(links)}`);
      assert(links.length === 2 && links[0] === 'https://example.test/a?b=1&c=2 https://example.test/a?b=1&c=2 _blank noopener noreferrer'
        && links[1].startsWith('https://evil.test'), 'only the http(s) addresses are links: ' + JSON.stringify(links));
      assert(linkText === 'See https://example.test/a?b=1&c=2. or javascript:alert(1) <a href="https://evil.test">x</a>', 'text kept as sent: ' + linkText);
      await page.evaluate(() => window.WPSkin.chat.onNotification('CHATCOMPOSING,1,2001,1'));
      assert((await page.textContent('#chat_typing')) === '2001 is typing…', 'composing indicator');
      // Our typing reaches the engine as chatcomposing (RFC 3994): typing, then emptying
      // the box (stopped); sending the text needs no "stopped" of its own.
      await page.evaluate(() => {
        window.__typing = [];
        const api = window.webphone_api;
        const orig = api.chatcomposing;
        api.chatcomposing = function (peer, on) { window.__typing.push(String(peer) + ':' + on); return orig.apply(this, arguments); };
      });
      await page.fill('#chat_input', 'H');
      await page.fill('#chat_input', '');
      // A reply; its delivery state follows CHATREPORT (simulated sent for the second one).
      await page.fill('#chat_input', 'Hi 2001!');
      await page.press('#chat_input', 'Enter');
      const typing = await page.evaluate(() => window.__typing.join(','));
      assert(typing === '2001:true,2001:false,2001:true', 'chatcomposing calls while typing: ' + typing);
      await page.waitForSelector('#chat_log .chat-out');
      await page.waitForFunction(() => !/Sending/.test(document.querySelector('#chat_log .chat-out .chat-state').textContent), null, { timeout: TIMEOUT });
      const st = await page.textContent('#chat_log .chat-out .chat-state');
      say(`  reply without a server: ${st}`);
      assert(/^Not delivered/.test(st), 'no server: the reply is reported as not delivered: ' + st);
      await page.evaluate(() => window.WPSkin.chat.send('2001', 'second'));
      await page.evaluate(() => window.WPSkin.chat.onNotification('CHATREPORT,0,2001,2,'));
      await shot(page, 'chat-thread.png');
      await axe(page, 'page_chat thread');
      // showincomingchatas=1 only notifies: unread badge on the Chat tab and a toast.
      await page.goto(`${base}&wp_showincomingchatas=1`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_dialpad');
      await page.evaluate(() => window.WPSkin.chat.onNotification('CHAT,1,2002,Are you there?'));
      await page.waitForSelector('#tab_chat_badge:not([hidden])');
      assert((await page.textContent('#tab_chat_badge')) === '1' && (await activePage(page)) === 'page_dialpad', 'badge, page kept');
      assert(await page.evaluate(() => Array.from(document.querySelectorAll('#toasts .toast')).some((t) => t.textContent === 'New message from 2002')), 'toast');
      await page.click('#tab_chat');
      await waitPage(page, 'page_chat');
      const conv = await page.$$eval('#chat_list .chat-peer', (els) => els.map((e) => e.textContent));
      assert(conv.join() === '2002,2001', 'conversations, newest first, kept across reload: ' + conv);
      await shot(page, 'chat-list.png');
      await axe(page, 'page_chat list');
      await page.click('#chat_list [data-peer="2002"]');
      await page.waitForFunction(() => document.getElementById('tab_chat_badge').hidden);
      // URL start-up: wp_sendchat + wp_to + wp_autoaction=2 sends the text and opens the conversation.
      await page.goto(`${base}&wp_sendchat=${encodeURIComponent('Order #42, please call back')}&wp_to=2003&wp_autoaction=2`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.waitForFunction(() => document.getElementById('chat_heading').textContent === 'Chat with 2003', null, { timeout: TIMEOUT });
      assert((await page.textContent('#chat_log .chat-out .chat-text')) === 'Order #42, please call back', 'sendchat text sent at start');
      await page.evaluate(() => window.webphone_api.setparameter('autoaction', '0'));
      await page.evaluate(() => localStorage.removeItem('wpskin.chats'));
    },

    async c2k(page) {
      // The click2call skin: one button calling the "echo" endpoint; menu by right click and
      // from the keyboard; chat window.
      await page.goto(`${c2k}&wp_callto=echo`);
      await c2kReady(page);
      const idle = await page.evaluate(() => { const b = document.getElementById('c2k_container_0_button'); return [b.textContent, b.getAttribute('aria-label')]; });
      assert(idle.join('|') === 'Call|Call echo', 'button text and label: ' + idle);
      assert(await page.evaluate(() => !window.webphone_api.state.incall), 'autoaction 0: no call at load');
      await shot(page, 'c2k-button.png');
      await axe(page, 'click2call idle');
      await page.click('#c2k_container_0_button');
      await c2kStatus(page, 0, /^Connected \d\d:\d\d$/);
      const busy = await page.evaluate(() => { const b = document.getElementById('c2k_container_0_button'); return [b.textContent, b.getAttribute('aria-label')]; });
      assert(busy.join('|') === 'Hang up|Hang up the call with echo', 'in call the button hangs up: ' + busy);
      await shot(page, 'c2k-incall.png');
      await axe(page, 'click2call in call');
      await c2kHangup(page, 0);
      // Right click: the menu (Call, Chat); a click elsewhere closes it.
      await page.click('#c2k_container_0_button', { button: 'right' });
      await page.waitForSelector('#c2k_container_0_menu:not([hidden])');
      const items = await page.$$eval('#c2k_container_0_menu li:not([hidden]) [role=menuitem]', (els) => els.map((e) => e.textContent));
      assert(items.join() === 'Call,Chat', 'menu items: ' + items);
      await shot(page, 'c2k-menu.png');
      await axe(page, 'click2call menu');
      await page.mouse.click(5, 5);
      await page.waitForSelector('#c2k_container_0_menu', { state: 'hidden' });
      // Long press opens the menu and does not call.
      await page.hover('#c2k_container_0_button');
      await page.mouse.down();
      await page.waitForSelector('#c2k_container_0_menu:not([hidden])', { timeout: 5000 });
      await page.mouse.up();
      assert(await page.evaluate(() => !window.webphone_api.state.incall && document.getElementById('c2k_container_0_button').textContent === 'Call'),
        'long press did not call');
      await page.mouse.click(5, 5);
      // Keyboard: the menu button, arrows, Enter opens the chat; Escape closes it again.
      await page.focus('#c2k_container_0_menu_button');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.activeElement && document.activeElement.getAttribute('data-action') === 'call');
      await page.keyboard.press('ArrowDown');
      assert(await page.evaluate(() => document.activeElement.getAttribute('data-action')) === 'chat', 'ArrowDown moves to Chat');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#c2k_container_0_chat:not([hidden])');
      assert(await page.evaluate(() => document.activeElement.id) === 'c2k_container_0_chat_input', 'chat input focused');
      assert((await page.textContent('#c2k_container_0_chat_title')) === 'Chat with echo', 'chat title');
      // An incoming message (as the engine reports it) is shown as text.
      await page.evaluate(() => window.click2call.onNotification('CHAT,1,echo,<b>hello</b>, with a comma'));
      await page.waitForSelector('#c2k_container_0_chat .c2k-msg-in');
      const msg = await page.$eval('#c2k_container_0_chat .c2k-msg-in .c2k-msg-text', (e) => [e.textContent, e.querySelectorAll('b').length]);
      assert(msg[0] === '<b>hello</b>, with a comma' && msg[1] === 0, 'chat text as text: ' + msg);
      await shot(page, 'c2k-chat.png');
      await axe(page, 'click2call chat');
      await page.keyboard.press('Escape');
      await page.waitForSelector('#c2k_container_0_chat', { state: 'hidden' });
      assert(await page.evaluate(() => document.activeElement.id) === 'c2k_container_0_button', 'focus back on the button');
    },

    async c2kmulti(page) {
      // A third-party page with three buttons (numbers from the title attributes) and the look
      // parameters; only the clicked button calls.
      const look = 'wp_call_button_color=%23004a8f&wp_call_button_radius=6&wp_call_button_width=220&wp_call_button_text=Ring%20us';
      await page.goto(`${origin}/tests/e2e-skins/pages/c2k-multi.html?wp_serviceport=${port}&${look}`);
      await c2kReady(page);
      const labels = await page.$$eval('.c2k-button', (els) => els.map((e) => e.getAttribute('aria-label')));
      assert(labels.length === 3 && labels[0] === 'Ring us: 2002' && labels[1] === 'Ring us: echo' &&
        labels[2] === 'Ring us: <img src=x onerror="window.__xss=1">', 'one button per container: ' + JSON.stringify(labels));
      const st = await page.$eval('#c2k_container_1_button', (e) => {
        const c = getComputedStyle(e);
        return { w: c.width, r: c.borderTopLeftRadius, bg: c.backgroundColor, text: e.textContent };
      });
      assert(st.w === '220px' && st.r === '6px' && st.bg === 'rgb(0, 74, 143)' && st.text === 'Ring us', 'look parameters: ' + JSON.stringify(st));
      assert(await page.evaluate(() => window.__xss === undefined && document.querySelectorAll('main img').length === 0), 'title rendered as text');
      assert(await page.evaluate(() => document.documentElement.lang === 'en' && document.title === 'Shop contact page (click-to-call test)'),
        'the embedding page keeps its own language and title');
      await shot(page, 'c2k-multi.png');
      await axe(page, 'click2call three buttons');
      await page.click('#c2k_container_1_button');
      await c2kStatus(page, 1, /^Connected /);
      assert(await page.evaluate(() => document.getElementById('c2k_container_0_status').textContent === '' &&
        document.getElementById('c2k_container_0_button').textContent === 'Ring us'), 'the other buttons stay idle');
      await shot(page, 'c2k-multi-incall.png');
      await c2kHangup(page, 1);
      // Floating (top 100 px, right 10 px) with an image from the skin's images/ folder.
      await page.goto(`${c2k}&wp_callto=echo&wp_float_button=true&wp_float_distance_from_top=100&wp_float_distance_from_right=10` +
        '&wp_call_button_color=' + encodeURIComponent('url(IMAGE_PATH/phone.svg)'));
      await c2kReady(page);
      const fl = await page.evaluate(() => {
        const box = document.querySelector('#c2k_container_0 .c2k');
        const r = box.getBoundingClientRect();
        const b = document.getElementById('c2k_container_0_button');
        return { pos: getComputedStyle(box).position, top: r.top, right: window.innerWidth - r.right, img: getComputedStyle(b).backgroundImage };
      });
      assert(fl.pos === 'fixed' && Math.round(fl.top) === 100 && Math.round(fl.right) === 10, 'floating at top 100 / right 10: ' + JSON.stringify(fl));
      assert(fl.img.includes('/skins/click2call/images/phone.svg'), 'IMAGE_PATH image: ' + fl.img);
      await page.click('#c2k_container_0_button', { button: 'right' });
      await page.click('#c2k_container_0_menu [data-action=chat]');
      await page.waitForSelector('#c2k_container_0_chat:not([hidden])');
      await shot(page, 'c2k-floating-chat.png');
      await axe(page, 'click2call floating chat');
      // colortheme: the theme's call colour (themes.js), unless call_button_color is set.
      await page.goto(`${c2k}&wp_callto=echo&wp_colortheme=2`);
      await c2kReady(page);
      const themed = await page.$eval('#c2k_container_0_button', (e) => getComputedStyle(e).backgroundColor);
      const blue = loadThemes().find((x) => x.number === 2).colors.call;
      const hex = (rgb) => '#' + rgb.match(/\d+/g).slice(0, 3).map((v) => Number(v).toString(16).padStart(2, '0')).join('');
      assert(hex(themed) === blue.toLowerCase(), `colortheme 2 call colour ${hex(themed)} (want ${blue})`);
      await axe(page, 'click2call colortheme 2');
      // Every theme: the button, its menu and the chat box pass axe (colours come from the theme).
      for (const th of loadThemes()) {
        await page.goto(`${c2k}&wp_callto=echo&wp_colortheme=${th.number}`);
        await c2kReady(page);
        await page.click('#c2k_container_0_menu_button');
        await page.click('#c2k_container_0_menu [data-action=chat]');
        await axe(page, `click2call ${th.id} with chat open`);
      }
      // A colour that tries to break out of the property is ignored.
      await page.goto(`${c2k}&wp_callto=echo&wp_call_button_color=` + encodeURIComponent('red;}body{display:none'));
      await c2kReady(page);
      const bg = await page.$eval('#c2k_container_0_button', (e) => getComputedStyle(e).backgroundColor);
      assert(bg === 'rgb(27, 110, 52)', 'bad colour ignored, default kept: ' + bg);
    },

    async c2kauto(page) {
      // autoaction 1: the call starts at page load.
      await page.goto(`${c2k}&wp_callto=echo&wp_autoaction=1`);
      await c2kReady(page);
      await c2kStatus(page, 0, /^Connected /);
      await c2kHangup(page, 0);
      // autoaction 3 (video): no video in this engine, an audio call is placed.
      await page.goto(`${c2k}&wp_callto=echo&wp_autoaction=3`);
      await c2kReady(page);
      await c2kStatus(page, 0, /^Connected /);
      await c2kHangup(page, 0);
      // autoaction 2: the chat window is open at load.
      await page.goto(`${c2k}&wp_callto=echo&wp_autoaction=2`);
      await c2kReady(page);
      assert(await page.evaluate(() => !document.getElementById('c2k_container_0_chat').hidden &&
        document.activeElement.id === 'c2k_container_0_chat_input' && !window.webphone_api.state.incall), 'autoaction 2 opens the chat, no call');
      await shot(page, 'c2k-autoaction2.png');
      // autoaction 0: nothing happens at load.
      await page.goto(`${c2k}&wp_callto=echo&wp_autoaction=0`);
      await c2kReady(page);
      assert(await page.evaluate(() => document.getElementById('c2k_container_0_chat').hidden &&
        document.getElementById('c2k_container_0_status').textContent === '' && !window.webphone_api.state.incall), 'autoaction 0: only the button');
    },

    async languages(page) {
      // Every language renders the softphone and the click2call button from its own file.
      for (const lang of LANGS) {
        const tr = strings(lang);
        await page.goto(`${base}&wp_language=${lang}`);
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        await page.waitForFunction((l) => document.documentElement.lang === l, lang, { timeout: TIMEOUT });
        await goPage(page, 'page_dialpad');
        const got = [await page.textContent('#tab_settings'), await page.textContent('#tab_contactslist')];
        assert(got[0].includes(tr['sp.tab_settings']) && got[1].includes(tr['sp.tab_contacts']), `${lang} tabs: ${got}`);
        await shot(page, `language-${lang}-dialpad.png`);
        await goPage(page, 'page_settings');
        const themeName = await page.$eval('#settings_theme option[value="2"]', (o) => o.textContent);
        assert(themeName === tr['theme.2'], `${lang} theme name: ${themeName}`);
        await goPage(page, 'page_dialpad');
        // An onDisplay text of the engine, translated.
        await page.evaluate(() => window.webphone_api.call('bad\u0001number').catch(() => {}));
        await page.waitForFunction((want) => Array.from(document.querySelectorAll('#toasts .toast')).some((x) => x.textContent === want),
          tr['display.invalid_number'], { timeout: TIMEOUT });
        // A registration the server refuses: the engine's "Authentication failed (403
        // Forbidden)" is shown translated (onDisplay, and the reason of onRegisterFailed).
        const refuser = await refusingRegistrar();
        try {
          await page.evaluate(async (addr) => {
            await window.webphone_api.setparameter('serveraddress', addr);
            await window.webphone_api.setparameter('username', 'langtest');
            await window.webphone_api.setparameter('password', 'wrong');
            await window.webphone_api.register().catch(() => {});
          }, refuser.addr);
          const want = tr['display.reg_auth_failed'].replace('{detail}', ' (403 Forbidden)');
          await page.waitForFunction((w) => Array.from(document.querySelectorAll('#toasts .toast')).some((x) => x.textContent === w),
            want, { timeout: TIMEOUT });
          const failed = tr['message.register_failed'].replace('{reason}', want);
          await page.waitForFunction((w) => Array.from(document.querySelectorAll('#toasts .toast')).some((x) => x.textContent === w),
            failed, { timeout: TIMEOUT });
        } finally {
          await page.evaluate(async () => {
            await window.webphone_api.unregister().catch(() => {});
            await window.webphone_api.setparameter('serveraddress', '');
            await window.webphone_api.setparameter('username', '');
            await window.webphone_api.setparameter('password', '');
          });
          refuser.close();
        }
        await page.goto(`${c2k}&wp_callto=echo&wp_language=${lang}`);
        await c2kReady(page);
        await page.waitForFunction((l) => document.documentElement.lang === l, lang, { timeout: TIMEOUT });
        const label = await page.$eval('#c2k_container_0_button', (e) => [e.textContent, e.getAttribute('aria-label')]);
        assert(label[0] === tr['c2k.call'] && label[1] === tr['c2k.call_name'].replace('{name}', 'echo'), `${lang} click2call: ${label}`);
      }
      // No language parameter: the browser's language list decides (first supported one).
      for (const [navs, want] of [[['ru-RU', 'ru'], 'ru'], [['xx', 'zh-CN'], 'zh'], [['pt-BR'], 'pt'], [['sw'], 'en']]) {
        const p2 = await page.context().newPage();
        watch(p2, 'skin-' + want);
        await p2.addInitScript((l) => { Object.defineProperty(navigator, 'languages', { get: () => l }); }, navs);
        await p2.goto(`${base}`);
        await p2.waitForSelector('body.ready', { timeout: TIMEOUT });
        const got = await p2.evaluate(() => document.documentElement.lang);
        await p2.goto(`${c2k}&wp_callto=echo`);
        await c2kReady(p2);
        const c = await p2.textContent('#c2k_container_0_button');
        await p2.close();
        assert(got === want && c === strings(want)['c2k.call'], `browser languages ${navs}: skin ${got}, click2call ${c} (want ${want})`);
      }
    },

    // ------------------------------------------------------------ UI parameters of issue 7

    async extraoption(page) {
      // extraoption "key=value;" sets skin parameters not given directly; links from it pass the
      // same http(s)-only check: a javascript: URL is refused.
      const extra = 'helpurl=https://help.example.org/faq;forgotpasswordurl=javascript:window.__xss=1;' +
        'showsynccontactsmenu=-1;brandname=Extra <i>Phone</i>;homepage=javascript:alert(1);';
      await page.goto(`${base}&wp_useloginpage=2&wp_extraoption=${encodeURIComponent(extra)}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_login');
      assert(await page.$eval('#login_forgot', (e) => e.hidden), 'javascript: forgotpasswordurl from extraoption refused (no link)');
      assert((await page.textContent('#brand_name')) === 'Extra <i>Phone</i>' && !(await page.$('#brand_name i')), 'brandname from extraoption, as text');
      await goPage(page, 'page_settings');
      const links = await page.$$eval('#settings_links a', (els) => els.map((a) => a.getAttribute('href')));
      assert(links.includes('https://help.example.org/faq'), 'helpurl from extraoption shown: ' + links);
      assert(!links.some((h) => /^javascript:/i.test(h)), 'no javascript: link: ' + links);
      await goPage(page, 'page_contactslist');
      assert(await page.$eval('#contacts_sync', (e) => e.hidden), 'showsynccontactsmenu=-1 from extraoption hides the sync entry');
      // A parameter given directly wins over the same name in extraoption.
      await page.goto(`${base}&wp_brandname=Direct&wp_extraoption=${encodeURIComponent('brandname=FromExtra;')}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      assert((await page.textContent('#brand_name')) === 'Direct', 'direct parameter wins over extraoption');
      assert(await page.evaluate(() => window.__xss === undefined), 'nothing ran');
    },

    async syncmenu(page) {
      // showsynccontactsmenu: sync with the engine's contact store (listcontacts / addcontact).
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => localStorage.setItem('wpskin.contacts', '[]'));
      await page.reload();
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_contactslist');
      assert(!(await page.$eval('#contacts_sync', (e) => e.hidden)), 'default 1: sync entry in the header');
      assert(await page.$eval('#contacts_sync_empty_row', (e) => e.hidden), 'default 1: not on the empty list');
      const tag = Date.now().toString(36);
      await page.evaluate((n) => window.webphone_api.addcontact('Engine Ann', 'ann' + n, '', '', '', ''), tag);
      await page.evaluate((n) => window.WPSkin.saveContact({ name: 'Browser Bob', number: 'bob' + n, email: '', notes: '', favorite: false }), tag);
      await page.click('#contacts_sync');
      await page.waitForFunction((n) => Array.from(document.querySelectorAll('#contacts_list .contact-number')).some((e) => e.textContent === 'ann' + n),
        tag, { timeout: TIMEOUT });
      const engine = await page.evaluate(() => window.webphone_api.listcontacts(false));
      assert(String(engine).includes('bob' + tag), 'the browser contact reached the engine: ' + engine);
      assert(await page.evaluate(() => Array.from(document.querySelectorAll('#toasts .toast')).some((t) => /^Contacts synchronised: \d+ added here, \d+ saved/.test(t.textContent))), 'sync toast');
      await shot(page, 'syncmenu-contacts.png');
      await axe(page, 'page_contactslist with sync');
      // 0: also on the contacts page while it is empty; -1: nowhere.
      await page.evaluate(() => localStorage.setItem('wpskin.contacts', '[]'));
      await page.goto(`${base}&wp_showsynccontactsmenu=0`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_contactslist');
      assert(!(await page.$eval('#contacts_sync_empty_row', (e) => e.hidden)), '0: sync on the empty contacts page');
      await page.goto(`${base}&wp_showsynccontactsmenu=-1`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_contactslist');
      assert(await page.$eval('#contacts_sync', (e) => e.hidden) && await page.$eval('#contacts_sync_empty_row', (e) => e.hidden), '-1: no sync entry');
      // With serveraddressbook_url, Sync also downloads the server address book through the
      // engine (syncservercontacts); its SERVERCONTACTS notification fills this list.
      await page.evaluate(() => localStorage.setItem('wpskin.contacts', '[]'));
      await page.goto(`${base}&wp_serveraddressbook_url=${encodeURIComponent(origin + '/book?u=USERNAME')}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_contactslist');
      const before = books.length;
      await page.click('#contacts_sync');
      await waitUntil(() => books.length > before, 'the server address book download');
      await page.waitForFunction(() => {
        const nums = Array.from(document.querySelectorAll('#contacts_list .contact-number')).map((e) => e.textContent);
        return nums.includes('srvsue1') && nums.includes('srvsam1');
      }, null, { timeout: TIMEOUT });
      const engineBook = await page.evaluate(() => window.webphone_api.listcontacts(false));
      assert(/Server Sue\tsrvsue1\|srvsue2\t0\tsue@example\.org/.test(String(engineBook)), 'the engine keeps the server contacts: ' + engineBook);
      await shot(page, 'syncmenu-serverbook.png');
      await page.evaluate(() => localStorage.removeItem('wpskin.contacts'));
    },

    async vcard(page) {
      // Import/Export vCard on the contacts page go through the engine (importvcard /
      // exportvcard: the CLI's contact store) and sync the browser's list.
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => localStorage.setItem('wpskin.contacts', '[]'));
      await page.reload();
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_contactslist');
      assert(!(await page.$eval('#contacts_vcard_row', (e) => e.hidden)), 'import and export shown');
      const tag = Date.now().toString(36);
      // Not UTF-8 (a raw 0xE7), quoted-printable in Windows-1252 with a soft line break, and a
      // picture larger than one request of the local service: the skin leaves the picture out.
      const file = Buffer.concat([
        Buffer.from(`BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=WINDOWS-1252;ENCODING=QUOTED-PRINTABLE:M=FCller;J=F6=\r\nrg\r\nTEL;CELL:vc${tag}\r\n`
          + `PHOTO;ENCODING=BASE64;TYPE=JPEG:${'QUFB'.repeat(18000)}\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:Fran`),
        Buffer.from([0xE7]),
        Buffer.from(`ois\r\nTEL:vd${tag}\r\nTEL:ve${tag}\r\nCATEGORIES:Friends,Favorites\r\nEND:VCARD\r\n`),
      ]);
      await page.setInputFiles('#contacts_import_file', { name: 'phone.vcf', mimeType: 'text/vcard', buffer: file });
      await page.waitForFunction((n) => {
        const nums = Array.from(document.querySelectorAll('#contacts_list .contact-number')).map((e) => e.textContent);
        return nums.includes('vc' + n) && nums.includes('vd' + n);
      }, tag, { timeout: TIMEOUT });
      const names = await page.$$eval('#contacts_list .contact-name', (els) => els.map((e) => e.textContent));
      assert(names.includes('Jörg Müller') && names.includes('François'), 'names decoded: ' + names);
      assert(await page.evaluate(() => Array.from(document.querySelectorAll('#toasts .toast')).some((t) => /^2 contacts imported from phone\.vcf\./.test(t.textContent))), 'import toast');
      const engine = String(await page.evaluate(() => window.webphone_api.listcontacts(false)));
      assert(engine.includes(`François\tvd${tag}|ve${tag}\t1`), 'favourite with two numbers in the engine: ' + engine);
      await shot(page, 'vcard-imported.png');
      await axe(page, 'page_contactslist with vCard buttons');
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: TIMEOUT }), page.click('#contacts_export')]);
      assert(download.suggestedFilename() === 'contacts.vcf', 'file name ' + download.suggestedFilename());
      const text = readFileSync(await download.path(), 'utf8');
      assert(/^BEGIN:VCARD\r\nVERSION:4\.0\r\n/.test(text), 'vCard 4.0: ' + text.slice(0, 40));
      assert(text.includes('FN:Jörg Müller\r\n') && text.includes(`TEL:vd${tag}\r\nTEL:ve${tag}\r\n`) && text.includes('CATEGORIES:Favorites'), 'exported cards: ' + text.slice(0, 400));
      assert(!text.includes('PHOTO'), 'no picture');
      await page.waitForFunction(() => Array.from(document.querySelectorAll('#toasts .toast')).some((t) => /contacts exported to contacts\.vcf/.test(t.textContent)), null, { timeout: TIMEOUT });
      await page.evaluate(() => localStorage.removeItem('wpskin.contacts'));
    },

    async peerdetails(page) {
      // displaypeerdetails=0: the engine asks scurl_displaypeerdetails at call set-up (a hostile
      // HTML answer from the test server) and the call page shows it, as text, with the line details.
      await page.goto(`${base}&wp_displaypeerdetails=0`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate((u) => window.webphone_api.setparameter('scurl_displaypeerdetails', u), `${origin}/tests/e2e-skins/pages/peerdetails.txt?peer=PEERNUM`);
      if ((await activePage(page)) === 'page_login') { await page.click('#login_skip'); }
      await goPage(page, 'page_dialpad');
      await page.fill('#dial_number', 'echo');
      await page.click('#dial_call');
      await waitPage(page, 'page_call');
      await page.waitForFunction(() => /VIP customer/.test(document.getElementById('call_peerdetails').textContent), null, { timeout: TIMEOUT });
      const panel = await page.evaluate(() => {
        const p = document.getElementById('call_peerdetails');
        return { hidden: p.hidden, avatar: document.getElementById('call_avatar').hidden, text: p.innerText,
          tags: Array.from(p.querySelectorAll('*')).map((e) => e.tagName.toLowerCase()).filter((n) => !['h2', 'div', 'dl', 'dt', 'dd'].includes(n)) };
      });
      say(`  peer details panel: ${JSON.stringify(panel.text)}`);
      assert(!panel.hidden && panel.avatar, 'panel instead of the picture');
      assert(/Number\s+echo/.test(panel.text) && /Direction\s+Outgoing/.test(panel.text), 'line details: ' + panel.text);
      assert(/Details\s+VIP customer since 2019/.test(panel.text) && panel.tags.length === 0, 'answer as text: ' + JSON.stringify(panel));
      await shot(page, 'peerdetails-call.png');
      await axe(page, 'page_call with peer details');
      await page.click('#call_hangup');
      await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
      await page.evaluate(() => window.webphone_api.setparameter('scurl_displaypeerdetails', ''));
      // displaypeerdetails=1: a "Caller details" button opens a page; a hostile display name is text.
      const evil = '<img src=x onerror="window.__xss=4">Eve';
      await page.goto(`${base}&wp_displaypeerdetails=1`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate((n) => window.WPSkin.onNotification(`STATUS,9,InCall,3009,me,2,${n},t-peer,1,1,2,0,0,0,0`), evil);
      await waitPage(page, 'page_call');
      assert(!(await page.$eval('#call_avatar', (e) => e.hidden)) && await page.$eval('#call_peerdetails', (e) => e.hidden), '1: picture kept, no panel');
      await page.click('#call_peerdetails_open');
      await waitPage(page, 'page_peerdetails');
      const pd = await page.evaluate(() => ({ text: document.getElementById('peerdetails_body').innerText, imgs: document.querySelectorAll('#page_peerdetails img').length }));
      assert(pd.text.includes(evil) && /Direction\s+Incoming/.test(pd.text) && pd.imgs === 0, 'display name as text on the details page: ' + JSON.stringify(pd));
      await shot(page, 'peerdetails-page.png');
      await axe(page, 'page_peerdetails');
      await page.evaluate(() => window.WPSkin.onNotification('STATUS,9,Finished,3009,me,2,Eve,t-peer,1,1,0,0,0,0,0'));
      // displaypeerdetails=<element id>: inside that element (here extra_header_call).
      await page.goto(`${base}&wp_displaypeerdetails=extra_header_call`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate((n) => window.WPSkin.onNotification(`STATUS,9,InCall,3010,me,2,${n},t-peer2,1,1,2,0,0,0,0`), evil);
      await waitPage(page, 'page_call');
      await page.waitForFunction(() => /3010/.test(document.getElementById('extra_header_call').textContent), null, { timeout: TIMEOUT });
      assert((await page.$$('#extra_header_call img')).length === 0 && (await page.textContent('#extra_header_call')).includes(evil), 'inside the named element, as text');
      await page.evaluate(() => window.WPSkin.onNotification('STATUS,9,Finished,3010,me,2,Eve,t-peer2,1,1,0,0,0,0,0'));
      assert(await page.evaluate(() => window.__xss === undefined), 'no script ran');
    },

    async notification(page) {
      // displaynotification: desktop notifications for chat messages and missed calls through the
      // Notification API (replaced by a recorder here; document.hasFocus() controlled by the test).
      const p2 = await page.context().newPage();
      watch(p2, 'notification');
      await p2.addInitScript(() => {
        window.__notes = [];
        window.__permAsked = 0;
        window.__focus = true;
        class RecNotification {
          constructor(title, opts) { window.__notes.push({ title, body: opts && opts.body }); }
          close() {}
        }
        RecNotification.permission = 'default';
        RecNotification.requestPermission = () => { window.__permAsked++; RecNotification.permission = 'granted'; return Promise.resolve('granted'); };
        window.Notification = RecNotification;
        document.hasFocus = () => window.__focus;
      });
      const open = async (q) => {
        await p2.goto(`${base}&wp_incomingcallpopup=0&${q}`);
        await p2.waitForSelector('body.ready', { timeout: TIMEOUT });
        await goPage(p2, 'page_dialpad');
        await p2.click('#dial_number'); // a user action: permission asked now
      };
      try {
        await open('wp_displaynotification=2&wp_showincomingchatas=1');
        assert(await p2.evaluate(() => window.__permAsked) === 1, 'permission requested on the first click');
        await p2.evaluate(() => window.WPSkin.chat.onNotification('CHAT,1,2003,hello <b>you</b>'));
        // A missed call: an incoming call rings and ends unanswered.
        await p2.evaluate(() => {
          window.WPSkin.onNotification('STATUS,8,Ringing,3003,me,2,Carol,t-miss,1,1,1,0,0,0,0');
          window.WPSkin.onNotification('STATUS,8,Finished,3003,me,2,Carol,t-miss,1,1,0,0,0,0,0');
          window.WPSkin.onNotification('CDR,8,3003,3003,me,127.0.0.1,0,0,2');
        });
        const notes = await p2.evaluate(() => window.__notes);
        say(`  notifications: ${JSON.stringify(notes)}`);
        assert(notes.some((n) => n.title === 'New message from 2003' && n.body === 'hello <b>you</b>'), '2: chat notified while focused');
        assert(notes.some((n) => n.title === 'Missed call' && n.body === 'Carol'), '2: missed call notified');
        // 1: only while the window is not focused.
        await open('wp_displaynotification=1&wp_showincomingchatas=1');
        await p2.evaluate(() => window.WPSkin.chat.onNotification('CHAT,1,2004,focused'));
        assert((await p2.evaluate(() => window.__notes.length)) === 0, '1: nothing while focused');
        await p2.evaluate(() => { window.__focus = false; window.WPSkin.chat.onNotification('CHAT,1,2004,away'); });
        assert((await p2.evaluate(() => window.__notes.map((n) => n.body))).join() === 'away', '1: notified while not focused');
        // 0: never, and no permission request when incomingcallpopup=0 as well.
        await open('wp_displaynotification=0&wp_showincomingchatas=1');
        await p2.evaluate(() => { window.__focus = false; window.WPSkin.chat.onNotification('CHAT,1,2004,never'); });
        assert((await p2.evaluate(() => [window.__notes.length, window.__permAsked])).join() === '0,0', '0: no notification, no permission request');
      } finally {
        await p2.close();
      }
    },

    async osnotify(page) {
      // The same desktop notifications, now shown by a real notification server: Chromium hands
      // them to org.freedesktop.Notifications on the session bus, where dunst (run.sh runs the
      // suite under Xvfb and a private D-Bus session) draws them. tests/e2e-desktop/desktop-bus.py
      // starts dunst and reports what reached it. A chat text with markup arrives as text.
      // Only on the private bus of run.sh: never on a developer's own desktop session.
      const haveDunst = process.env.E2E_PRIVATE_BUS === '1' && !!process.env.DBUS_SESSION_BUS_ADDRESS && !!process.env.DISPLAY
        && spawnSync('dunst', ['-v'], { stdio: 'ignore' }).status === 0;
      if (!haveDunst) {
        if (process.env.CI === 'true') { throw new Error('needs a D-Bus session, an X display and dunst (required when CI=true; run.sh provides them)'); }
        say('==================================================================');
        say('SKIPPED osnotify: not on the private D-Bus session and X display of run.sh, or no dunst');
        say('==================================================================');
        return 'skipped';
      }
      const busDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-skins-dunst-'));
      const bus = spawn(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
        [path.join(HERE, '../e2e-desktop/desktop-bus.py'), '--dunst', busDir], { stdio: ['pipe', 'pipe', 'inherit'] });
      const events = [];
      let buf = '';
      bus.stdout.on('data', (d) => {
        buf += d;
        const parts = buf.split('\n');
        buf = parts.pop();
        for (const l of parts) { try { events.push(JSON.parse(l)); } catch { say(`  desktop-bus: ${l}`); } }
      });
      const p2 = await page.context().newPage();
      watch(p2, 'osnotify');
      try {
        await waitUntil(() => events.some((e) => e.ev === 'ready'), 'desktop-bus.py ready with dunst');
        await page.context().grantPermissions(['notifications'], { origin });
        await p2.goto(`${base}&wp_incomingcallpopup=0&wp_displaynotification=2&wp_showincomingchatas=1`);
        await p2.waitForSelector('body.ready', { timeout: TIMEOUT });
        await p2.evaluate(() => window.WPSkin.chat.onNotification('CHAT,1,2003,hello <b>you</b> & co'));
        await waitUntil(() => events.some((e) => e.ev === 'notify' && /New message from 2003/.test(e.summary)), 'the chat notification at dunst');
        const n = events.find((e) => e.ev === 'notify');
        say(`  dunst got: ${JSON.stringify({ app: n.app, summary: n.summary, body: n.body })}`);
        // Markup a notification server would render (its body-markup capability) comes escaped.
        assert(!/<b>/.test(n.body) && /hello/.test(n.body), 'the chat text reaches the server as text: ' + n.body);
        bus.stdin.write('displayed t1\n');
        await waitUntil(() => events.some((e) => e.ev === 'displayed'), 'dunst displayed count');
        const shown = events.find((e) => e.ev === 'displayed').count;
        assert(shown >= 1, `dunst shows ${shown} notifications`);
        const file = path.join(OUT, 'osnotify-screen.png');
        if (spawnSync('import', ['-window', 'root', file], { stdio: 'ignore' }).status === 0) { say(`  screenshot ${path.relative(ROOT, file)}`); }
      } finally {
        await p2.close();
        bus.stdin.end();
        await new Promise((r) => { const t = setTimeout(() => { bus.kill('SIGKILL'); r(); }, 5000); bus.once('exit', () => { clearTimeout(t); r(); }); });
        rmSync(busDir, { recursive: true, force: true });
      }
    },

    async filetransfer(page) {
      // hasfiletransfer + filetransferurl: the file is POSTed (filename + filedata) to the upload
      // server, then the download URL goes to the peer as a chat message.
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => window.WPSkin.chat.open('2005'));
      await waitPage(page, 'page_chat');
      assert(await page.$eval('#chat_file', (e) => e.hidden), 'hasfiletransfer unset: no Send file');
      const upload = `${origin}/upload/`;
      await page.goto(`${base}&wp_hasfiletransfer=true&wp_filetransferurl=${encodeURIComponent(upload)}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => window.WPSkin.chat.open('2005'));
      await waitPage(page, 'page_chat');
      await page.waitForSelector('#chat_file:not([hidden])');
      await axe(page, 'page_chat with Send file');
      const before = uploads.length;
      const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click('#chat_file')]);
      const popup = page.context().waitForEvent('page', { timeout: TIMEOUT });
      await chooser.setFiles({ name: 'notes <1>.txt', mimeType: 'text/plain', buffer: Buffer.from('file body 42') });
      (await popup).close().catch(() => {});
      await waitUntil(() => uploads.length > before, 'the upload');
      const up = uploads[uploads.length - 1];
      say(`  upload: ${JSON.stringify(up)}`);
      assert(/multipart\/form-data/.test(up.type) && up.filedata === 'file body 42' && /^[a-z0-9]+_[a-z0-9]+_notes_1_\.txt$/.test(up.filename || ''), 'multipart upload: ' + JSON.stringify(up));
      await page.waitForSelector('#chat_log .chat-out');
      const msg = await page.evaluate(() => Array.from(document.querySelectorAll('#chat_log .chat-out .chat-text')).map((e) => e.textContent).pop());
      assert(msg === upload + up.filename, 'download URL sent: ' + msg);
      // Without an upload server the entry says so instead of pretending.
      await page.goto(`${base}&wp_hasfiletransfer=true&wp_filetransferurl=`); // the engine kept the last one
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => window.WPSkin.chat.open('2005'));
      await waitPage(page, 'page_chat');
      await page.click('#chat_file');
      await page.waitForFunction(() => Array.from(document.querySelectorAll('#toasts .toast-error')).some((t) => /needs an upload server/.test(t.textContent)), null, { timeout: TIMEOUT });
      await page.evaluate(() => localStorage.removeItem('wpskin.chats'));
    },

    async videodevice(page) {
      // displayvideodevice=1: the camera choice is shown, disabled, saying this phone has no video.
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_settings');
      assert(await page.$eval('#settings_video_field', (e) => e.hidden), 'default 0: no camera row');
      await page.goto(`${base}&wp_displayvideodevice=1`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_settings');
      const v = await page.evaluate(() => ({ shown: !document.getElementById('settings_video_field').hidden,
        disabled: document.getElementById('settings_device_video').disabled, hint: document.getElementById('settings_video_hint').textContent }));
      assert(v.shown && v.disabled && /voice calls only/.test(v.hint), 'camera row, disabled, honest hint: ' + JSON.stringify(v));
      await page.locator('#settings_audio').screenshot({ path: path.join(OUT, 'videodevice-settings-audio.png') });
      await axe(page, 'page_settings with camera row');
    },

    // ------------------------------------------------------------ issue 7 audit: the rest

    async uiparams(page) {
      // Theme colour overrides, version, account/support links, forgotpasswordurl, defcontacts,
      // messagepopup (once), multilinegui=0 (ui_params_audit.test.mjs lists them all).
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => {
        localStorage.removeItem('wpskin.contacts');
        localStorage.removeItem('wpskin.messagepopup_shown');
        localStorage.setItem('wpskin.lastdialed', JSON.stringify('+1 555/0'));
      });
      const q = ['wp_bgcolor=102030', 'wp_buttoncolor=%23404a50', 'wp_buttonhover=505a60', 'wp_tabselectedcolor=0a5',
        'wp_fontcheme=%23ffcc00', 'wp_fontcwhite=%23f0f0f0', 'wp_fontfamily=Verdana%2C%20sans-serif', 'wp_version=9.8.7',
        'wp_supporturi=https%3A%2F%2Fsupport.example.org%2F',
        // Link tokens: whole upper-case words; values percent-encoded; engine-only ones empty.
        `wp_accounturi=${encodeURIComponent('https://my.example.org/?n=CALLEDNUMBER&s=MD5SALT&x=USERNAMEX')}`,
        'wp_forgotpasswordurl=https%3A%2F%2Fexample.org%2Freset', 'wp_defcontacts=Ann%20One%2C2001%3BBob%20Two%2C2002',
        'wp_messagepopup=Welcome%20to%20Acme', 'wp_multilinegui=0', 'wp_useloginpage=2'];
      const url = `${base}&${q.join('&')}`;
      await page.goto(url);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_login');
      const look = await page.evaluate(() => {
        const root = getComputedStyle(document.documentElement);
        const v = (n) => root.getPropertyValue(n).trim();
        const body = getComputedStyle(document.body);
        return { bg: v('--bg'), button: v('--button'), hover: v('--button-hover'), tab: v('--tab-selected'), accent: v('--accent'),
          text: v('--text'), font: v('--font'), bodyBg: body.backgroundColor, bodyColor: body.color, bodyFont: body.fontFamily };
      });
      assert(look.bg === '#102030' && look.button === '#404a50' && look.hover === '#505a60' && look.tab === '#0a5' &&
        look.accent === '#ffcc00' && look.text === '#f0f0f0' && look.font === 'Verdana, sans-serif', 'colour overrides: ' + JSON.stringify(look));
      assert(look.bodyBg === 'rgb(16, 32, 48)' && look.bodyColor === 'rgb(240, 240, 240)' && /^Verdana/.test(look.bodyFont), 'applied to the page: ' + JSON.stringify(look));
      const forgot = await page.$eval('#login_forgot', (a) => [a.hidden, a.getAttribute('href')]);
      assert(!forgot[0] && forgot[1] === 'https://example.org/reset', 'forgotpasswordurl link: ' + forgot);
      await page.waitForFunction(() => Array.from(document.querySelectorAll('#toasts .toast')).some((t) => t.textContent === 'Welcome to Acme'), null, { timeout: TIMEOUT });
      await shot(page, 'uiparams-login.png');
      await goPage(page, 'page_settings');
      const about = await page.textContent('#settings_about_text');
      assert(about.includes('9.8.7'), 'version in About: ' + about);
      const links = await page.$$eval('#settings_links a', (els) => els.map((a) => a.id + '=' + a.getAttribute('href')));
      assert(links.includes('settings_link_accounturi=https://my.example.org/?n=%2B1%20555%2F0&s=&x=USERNAMEX') && links.includes('settings_link_supporturi=https://support.example.org/'),
        'account and support links: ' + links);
      await goPage(page, 'page_contactslist');
      const names = await page.$$eval('#contacts_list .contact-name', (els) => els.map((e) => e.textContent).sort());
      assert(names.join() === 'Ann One,Bob Two', 'defcontacts in the empty list: ' + names);
      // multilinegui=0: two calls, no line switcher.
      await page.evaluate(() => {
        window.WPSkin.onNotification('STATUS,3,InCall,3001,me,1,Carol,m3,1,1,2,0,0,0,0');
        window.WPSkin.onNotification('STATUS,4,InCall,3002,me,1,Dave,m4,1,1,2,0,0,0,0');
      });
      await waitPage(page, 'page_call');
      assert(await page.$eval('#call_lines', (e) => e.hidden), 'multilinegui=0: no line switcher with two calls');
      await page.evaluate(() => {
        window.WPSkin.onNotification('STATUS,3,Finished,3001,me,1,Carol,m3,1,1,0,0,0,0,0');
        window.WPSkin.onNotification('STATUS,4,Finished,3002,me,1,Dave,m4,1,1,0,0,0,0,0');
      });
      // messagepopup is shown once: not again after a reload.
      await page.reload();
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.waitForTimeout(300);
      assert(!(await page.evaluate(() => Array.from(document.querySelectorAll('#toasts .toast')).some((t) => t.textContent === 'Welcome to Acme'))),
        'messagepopup shown only once');
      await page.evaluate(() => { localStorage.removeItem('wpskin.contacts'); localStorage.removeItem('wpskin.lastdialed'); });
      // showtoasts=false: no hints, errors still shown.
      await page.goto(`${base}&wp_showtoasts=false`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => { window.WPSkin.toast('a hint'); window.WPSkin.toast('an error', 'error'); });
      const toasts = await page.$$eval('#toasts .toast', (els) => els.map((e) => e.textContent));
      assert(!toasts.includes('a hint') && toasts.includes('an error'), 'showtoasts=false: ' + toasts);
      // chatsms: 1 sends with sendsms, 2 with sendchat (the facade function the skin calls).
      for (const [mode, fn] of [['1', 'sendsms'], ['2', 'sendchat']]) {
        await page.goto(`${base}&wp_chatsms=${mode}`);
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        await page.evaluate(() => {
          window.__sent = [];
          for (const f of ['sendsms', 'sendchat']) {
            const orig = window.webphone_api[f];
            window.webphone_api[f] = function (...a) { window.__sent.push(f); return orig.apply(this, a); };
          }
        });
        await page.evaluate(() => window.WPSkin.chat.send('2007', 'hello'));
        const sent = await page.evaluate(() => window.__sent);
        assert(sent.join() === fn, `chatsms=${mode}: ${sent}`);
      }
      await page.evaluate(() => localStorage.removeItem('wpskin.chats'));
      // logform_filename: the "filename" field of the log upload (to the test server).
      await page.goto(`${base}&wp_logsendto=1&wp_logform_action=${encodeURIComponent(origin + '/upload/')}&wp_logform_filename=acme_log.txt`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_settings');
      await page.click('#settings_logs_show');
      await page.waitForSelector('#settings_logs_upload:not([hidden])');
      const before = uploads.length;
      const popup = page.context().waitForEvent('page', { timeout: TIMEOUT });
      await page.click('#settings_logs_upload');
      (await popup).close().catch(() => {});
      await waitUntil(() => uploads.length > before, 'the log upload');
      assert(uploads[uploads.length - 1].filename === 'acme_log.txt', 'logform_filename: ' + JSON.stringify(uploads[uploads.length - 1].filename));
    },

    async callnotice(page) {
      // Incoming-call notification: the old names hasincomingcall / hasincomingcallpopup, and
      // callnot_title/body/icon/image (Notification API replaced by a recorder).
      const p2 = await page.context().newPage();
      watch(p2, 'callnotice');
      await p2.addInitScript(() => {
        window.__notes = [];
        window.__focus = true;
        class RecNotification {
          constructor(title, opts) { window.__notes.push({ title, ...(opts || {}) }); }
          close() {}
        }
        RecNotification.permission = 'granted';
        RecNotification.requestPermission = () => Promise.resolve('granted');
        window.Notification = RecNotification;
        document.hasFocus = () => window.__focus;
      });
      const ring = async () => {
        await p2.evaluate(() => window.WPSkin.onNotification('STATUS,8,Ringing,3008,me,2,Carol,t-note,1,1,1,0,0,0,0'));
        await waitPage(p2, 'page_call');
        await p2.evaluate(() => window.WPSkin.onNotification('STATUS,8,Finished,3008,me,2,Carol,t-note,1,1,0,0,0,0,0'));
      };
      try {
        const q = ['wp_hasincomingcall=2', 'wp_displaynotification=0', 'wp_callnot_title=Acme%20call', 'wp_callnot_body=Call%20from%20PEERNAME%20now',
          'wp_callnot_icon=https%3A%2F%2Fexample.org%2Fi.png', 'wp_callnot_image=ring.png'];
        await p2.goto(`${base}&${q.join('&')}`);
        await p2.waitForSelector('body.ready', { timeout: TIMEOUT });
        await ring();
        const notes = await p2.evaluate(() => window.__notes);
        say(`  notifications: ${JSON.stringify(notes)}`);
        assert(notes.length === 1 && notes[0].title === 'Acme call' && notes[0].body === 'Call from Carol now' &&
          notes[0].icon === 'https://example.org/i.png' && /\/skins\/softphone\/images\/ring\.png$/.test(notes[0].image),
        'hasincomingcall=2 (shown while focused) with callnot_*: ' + JSON.stringify(notes));
        // hasincomingcallpopup=0: never, not even while the window is not focused.
        await p2.goto(`${base}&wp_hasincomingcallpopup=0&wp_displaynotification=0`);
        await p2.waitForSelector('body.ready', { timeout: TIMEOUT });
        await p2.evaluate(() => { window.__focus = false; });
        await ring();
        assert((await p2.evaluate(() => window.__notes.length)) === 0, 'hasincomingcallpopup=0: no notification');
      } finally {
        await p2.close();
      }
    },

    async c2kfloat(page) {
      // The two distances not used by c2kmulti: left and bottom (the menu then opens upwards).
      await page.goto(`${c2k}&wp_callto=echo&wp_float_button=true&wp_float_distance_from_left=20&wp_float_distance_from_bottom=30`);
      await c2kReady(page);
      const fl = await page.evaluate(() => {
        const box = document.querySelector('#c2k_container_0 .c2k');
        const r = box.getBoundingClientRect();
        return { pos: getComputedStyle(box).position, left: r.left, bottom: window.innerHeight - r.bottom, up: box.classList.contains('c2k-open-up') };
      });
      assert(fl.pos === 'fixed' && Math.round(fl.left) === 20 && Math.round(fl.bottom) === 30 && fl.up, 'floating at left 20 / bottom 30: ' + JSON.stringify(fl));
      await shot(page, 'c2k-float-bottom-left.png');
      await axe(page, 'click2call floating bottom left');
      // Keyboard: Enter on the button calls, Escape on it hangs up.
      await page.focus('#c2k_container_0_button');
      await page.keyboard.press('Enter');
      await c2kStatus(page, 0, /^Connected /);
      await page.keyboard.press('Escape');
      await c2kStatus(page, 0, /^Call ended$/);
      await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
    },

    async keyboard(page) {
      // Every page: a digit typed outside a form field opens the dial pad with it (Enter then
      // calls); Escape hangs up the running call from every page.
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      if ((await activePage(page)) === 'page_login') { await page.click('#login_skip'); }
      const pages = ['page_dialpad', 'page_contactslist', 'page_contactedit', 'page_callhistorylist', 'page_chat', 'page_settings',
        'page_extra1', 'page_peerdetails'];
      for (const id of pages.filter((p) => p !== 'page_dialpad')) {
        await goPage(page, id);
        // (Pages that focus a field of their own, like the contact editor, keep typed digits.)
        await page.evaluate(() => { document.getElementById('dial_number').value = ''; document.activeElement.blur(); });
        await page.keyboard.type('42');
        await waitPage(page, 'page_dialpad');
        assert((await page.inputValue('#dial_number')) === '42', `${id}: digits go to the dial pad`);
      }
      await page.fill('#dial_number', 'echo');
      await page.keyboard.press('Enter');
      await waitPage(page, 'page_call');
      await page.waitForFunction(() => window.webphone_api.state.incall, null, { timeout: TIMEOUT });
      await page.keyboard.press('Escape');
      await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
      for (const id of pages) {
        await page.evaluate(() => window.webphone_api.call('echo'));
        await waitPage(page, 'page_call');
        await page.waitForFunction(() => window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        await goPage(page, id);
        await page.keyboard.press('Escape');
        await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        say(`  ${id}: Escape hung up`);
      }
      // Visible focus: tabbing through the dial pad and settings, every control that takes the
      // focus draws the focus ring (a 3 px outline in the theme's focus colour).
      for (const id of ['page_dialpad', 'page_settings']) {
        await goPage(page, id);
        await page.evaluate(() => document.activeElement && document.activeElement.blur());
        const seen = [];
        for (let i = 0; i < 12; i++) {
          await page.keyboard.press('Tab');
          const f = await page.evaluate(() => {
            const el = document.activeElement;
            if (!el || el === document.body) { return null; }
            const cs = getComputedStyle(el);
            const focus = getComputedStyle(document.body).getPropertyValue('--focus').trim();
            return { what: el.id || el.tagName, style: cs.outlineStyle, width: parseFloat(cs.outlineWidth), colour: cs.outlineColor, focus };
          });
          if (!f) { continue; }
          seen.push(f.what);
          assert(f.style === 'solid' && f.width >= 3, `${id}: focused ${f.what} draws no focus ring: ${JSON.stringify(f)}`);
        }
        assert(seen.length >= 6, `${id}: Tab reaches controls: ${seen.join(' ')}`);
        say(`  ${id}: focus ring on ${seen.length} tab stops`);
      }
    },

    async voicemail(page) {
      // disableoptions VOICEMAIL: the dial pad's Voicemail button (shown once voicemailnum is
      // known) calls callvoicemail(); here the voicemail number is the echo endpoint.
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await page.evaluate(() => window.webphone_api.setparameter('voicemailnum', ''));
      await goPage(page, 'page_settings');
      await goPage(page, 'page_dialpad');
      await page.waitForTimeout(200);
      assert(await page.$eval('#dial_voicemail_row', (e) => e.hidden), 'no voicemail number: no button');
      try {
        // A message summary from the voicemail server: the engine learns the number
        // (Message-Account) and the button appears with the count of new messages.
        const answer = await sendMwiNotify(sipPort, '3/8 (0/2)', `sip:echo@127.0.0.1:${sipPort}`);
        assert(/^SIP\/2\.0 200/.test(answer), `MWI NOTIFY answered ${answer}`);
        await page.waitForFunction(() => document.getElementById('dial_voicemail_count').textContent === '3', null, { timeout: TIMEOUT })
          .catch(async (e) => {
            const st = await page.evaluate(() => ({
              row: document.getElementById('dial_voicemail_row').hidden,
              badge: document.getElementById('dial_voicemail_count').outerHTML,
            }));
            const vm = await page.evaluate(() => window.webphone_api.getparameter('voicemailnum'));
            throw new Error(`no badge: ${JSON.stringify(st)}, voicemailnum ${JSON.stringify(vm)}: ${e.message}`);
          });
        await page.waitForSelector('#dial_voicemail_count:visible', { timeout: TIMEOUT }).catch(async (e) => {
          const st = await page.evaluate(() => ({
            row: document.getElementById('dial_voicemail_row').hidden,
            page: window.WPRouter ? window.WPRouter.current() : null,
          }));
          const vm = await page.evaluate(() => window.webphone_api.getparameter('voicemailnum'));
          throw new Error(`badge not visible: ${JSON.stringify(st)}, voicemailnum ${JSON.stringify(vm)}: ${e.message}`);
        });
        assert((await page.textContent('#dial_voicemail_count')) === '3', 'the badge shows 3 new messages');
        const label = await page.getAttribute('#dial_voicemail', 'aria-label');
        assert(/3/.test(label || ''), `the Voicemail button's name says 3 new: ${label}`);
        // The messages were listened to elsewhere: "Messages-Waiting: no" clears the badge.
        const cleared = await sendMwiNotify(sipPort, '0/11', `sip:echo@127.0.0.1:${sipPort}`, 'no');
        assert(/^SIP\/2\.0 200/.test(cleared), `MWI NOTIFY answered ${cleared}`);
        await page.waitForSelector('#dial_voicemail_count', { state: 'hidden', timeout: TIMEOUT });
        assert(!/\d/.test((await page.getAttribute('#dial_voicemail', 'aria-label')) || ''), 'no count in the name');
        assert(/echo/.test(await page.evaluate(() => window.webphone_api.getparameter('voicemailnum'))), 'voicemailnum learned from Message-Account');
        await page.evaluate(() => window.webphone_api.setparameter('voicemailnum', 'echo'));
        await goPage(page, 'page_settings');
        await goPage(page, 'page_dialpad');
        await page.waitForSelector('#dial_voicemail:visible', { timeout: TIMEOUT });
        await shot(page, 'voicemail-dialpad.png');
        await axe(page, 'page_dialpad with Voicemail');
        await page.click('#dial_voicemail');
        assert(await page.$eval('#dial_voicemail_count', (e) => e.hidden), 'calling the voicemail clears the badge');
        await waitPage(page, 'page_call');
        await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
        assert(/echo/i.test(await page.textContent('#call_peer_name')), 'the voicemail number is called');
        await page.keyboard.press('Escape');
        await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        await page.goto(`${base}&wp_disableoptions=VOICEMAIL`);
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        await goPage(page, 'page_dialpad');
        await page.waitForTimeout(200);
        assert(await page.$eval('#dial_voicemail_row', (e) => e.hidden), 'disableoptions VOICEMAIL hides the button');
      } finally {
        await page.evaluate(() => window.webphone_api.setparameter('voicemailnum', '')).catch(() => {});
      }
    },

    async newuser(page) {
      // newuser as a link: "Create an account" opens the integrator's page. As an API request
      // (leading *): the sign-up form sends what was typed as USERNAME / PASSWORD through the
      // engine (linkrequest), and the server's answer (NEWUSER) is shown as text.
      await page.goto(`${base}&wp_useloginpage=2&wp_newuser=${encodeURIComponent('https://signup.example.org/new')}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_login');
      const link = await page.$eval('#login_newuser_link', (a) => [a.hidden, a.getAttribute('href')]);
      assert(!link[0] && link[1] === 'https://signup.example.org/new', 'newuser link: ' + JSON.stringify(link));
      assert(await page.$eval('#login_newuser', (e) => e.hidden), 'a link: no sign-up form button');
      const api = `*${origin}/signup?user=USERNAME&pass=PASSWORD`;
      await page.goto(`${base}&wp_useloginpage=2&wp_newuser=${encodeURIComponent(api)}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await waitPage(page, 'page_login');
      try {
        assert(await page.$eval('#login_newuser_link', (e) => e.hidden), 'an API request: no link');
        await page.click('#login_newuser');
        await page.waitForSelector('#newuser_form:visible', { timeout: TIMEOUT });
        await page.fill('#newuser_username', 'alice new');
        await page.fill('#newuser_password', 'p&ss word');
        const before = signups.length;
        await page.click('#newuser_submit');
        await waitUntil(() => signups.length > before, 'the sign-up request');
        const got = signups[signups.length - 1];
        assert(got.user === 'alice new' && got.pass === 'p&ss word', 'typed account in the request: ' + JSON.stringify(got));
        await page.waitForFunction(() => /Welcome alice new!/.test(document.getElementById('newuser_status').textContent), null, { timeout: TIMEOUT });
        assert(!(await page.$('#newuser_status b')), 'the answer is shown as text');
        await shot(page, 'newuser-form.png');
        await axe(page, 'page_login sign-up form');
        await page.click('#newuser_back');
        assert((await page.inputValue('#login_username')) === 'alice new', 'the new name is ready to sign in');
      } finally {
        await page.evaluate(() => window.webphone_api.setparameter('newuser', '')).catch(() => {});
      }
    },

    async services(page) {
      // Settings > Services: recharge and p2p as API requests (forms; the typed values reach the
      // server through linkrequest, the answers are shown as text), callback as a link.
      const q = [`wp_recharge=${encodeURIComponent(`*${origin}/svc/recharge?pin=PINCODE`)}`,
        `wp_p2p=${encodeURIComponent(`*${origin}/svc/p2p?a=PHONE1&b=PHONE2`)}`,
        `wp_callback=${encodeURIComponent('https://callback.example.org/c')}`].join('&');
      await page.goto(`${base}&${q}`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      try {
        await goPage(page, 'page_settings');
        await page.waitForSelector('#settings_services:visible', { timeout: TIMEOUT });
        assert((await page.getAttribute('#service_callback_link', 'href')) === 'https://callback.example.org/c', 'callback as a link');
        const before = services.length;
        await page.fill('#service_recharge_pincode', '1234-5678');
        await page.click('#service_recharge_send');
        await waitUntil(() => services.length > before, 'the recharge request');
        const r = services[services.length - 1];
        assert(r.name === 'recharge' && r.q.pin === '1234-5678', 'recharge request: ' + JSON.stringify(r));
        await page.waitForFunction(() => /Done: recharge/.test(document.getElementById('service_recharge_status').textContent), null, { timeout: TIMEOUT });
        assert(!(await page.$('#service_recharge_status i')), 'the answer is shown as text');
        await page.fill('#service_p2p_phone1', '+3611111');
        await page.fill('#service_p2p_phone2', '+3622222');
        await page.click('#service_p2p_send');
        await waitUntil(() => services.length > before + 1, 'the p2p request');
        const p = services[services.length - 1];
        assert(p.name === 'p2p' && p.q.a === '+3611111' && p.q.b === '+3622222', 'p2p request: ' + JSON.stringify(p));
        await page.waitForFunction(() => /Done: p2p/.test(document.getElementById('service_p2p_status').textContent), null, { timeout: TIMEOUT });
        await shot(page, 'settings-services.png');
        await axe(page, 'page_settings with services');
      } finally {
        await page.evaluate(() => Promise.all(['recharge', 'p2p', 'callback'].map((n) => window.webphone_api.setparameter(n, '')))).catch(() => {});
      }
    },

    async advanced(page) {
      // featureset=15 (technical users): Settings has "Advanced parameters", reading and setting
      // any engine parameter by name; below 15 the card is not there.
      await page.goto(base);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_settings');
      assert(await page.$eval('#settings_advanced', (e) => e.hidden), 'featureset 10: no advanced card');
      await page.goto(`${base}&wp_featureset=15`);
      await page.waitForSelector('body.ready', { timeout: TIMEOUT });
      await goPage(page, 'page_settings');
      assert(!(await page.$eval('#settings_advanced', (e) => e.hidden)), 'featureset 15: advanced card');
      try {
        await page.evaluate(() => window.webphone_api.setparameter('ringtimeout', '45000'));
        await page.fill('#settings_param_name', 'ringtimeout');
        await page.press('#settings_param_name', 'Tab');
        await page.waitForFunction(() => document.getElementById('settings_param_value').value === '45000', null, { timeout: TIMEOUT });
        await page.fill('#settings_param_value', '30000');
        await page.press('#settings_param_value', 'Enter');
        await page.waitForFunction(async () => String(await window.webphone_api.getparameter('ringtimeout')) === '30000', null, { timeout: TIMEOUT });
        await page.waitForFunction(() => Array.from(document.querySelectorAll('#toasts .toast')).some((t) => t.textContent === 'ringtimeout set.'), null, { timeout: TIMEOUT });
        await page.locator('#settings_advanced').screenshot({ path: path.join(OUT, 'advanced-settings.png') });
        await axe(page, 'page_settings with advanced parameters');
        // A value the engine refuses: its error is shown.
        await page.fill('#settings_param_name', 'loglevel');
        await page.press('#settings_param_name', 'Tab');
        await page.waitForFunction(() => /^\d$/.test(document.getElementById('settings_param_value').value), null, { timeout: TIMEOUT });
        await page.fill('#settings_param_value', 'abc');
        await page.click('#settings_param_set');
        await page.waitForSelector('#toasts .toast-error', { timeout: TIMEOUT });
        const err = await page.textContent('#toasts .toast-error');
        assert(/invalid value "abc" for parameter loglevel/.test(err), 'refusal shown: ' + err);
      } finally {
        await page.evaluate(() => window.webphone_api.setparameter('ringtimeout', 'DEF')).catch(() => {});
      }
    },

    // Conference and recording from the call page, with real peers: the skin calls baresip 1002
    // (its microphone a 1000 Hz tone), Conference adds 1004 (a webphone-cli answering on its
    // own, its microphone a 440 Hz tone), and each hears the other through the engine's mixer
    // (baresip's and 1004's recordings); Record on the call page records line 1 and tells
    // where the WAV file is, and the file holds the call's audio.
    async conference(page) {
      if (!havePeers('conference')) { return 'skipped'; }
      const started = [];
      try {
        const k = await startKamailio();
        started.push(k);
        const b = await startBaresip({ user: '1002', kamailio: k, answer: 'auto', toneHz: 1000 });
        started.push(b);
        const toneDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-skins-tone-'));
        const tone440 = path.join(toneDir, 'tone440.wav');
        writeTone(tone440, 440, 8000, 60, 0.5);
        const heard1004 = path.join(toneDir, 'heard-1004.wav');
        const other = await startCliPeer(k, '1004', ['autoaccept=true', `audiodevicein=file:${tone440}`, `audiodeviceout=file:${heard1004}`]);
        started.push(other, { stop: async () => rmSync(toneDir, { recursive: true, force: true }) });
        await signIn(page, base, k);
        await page.fill('#dial_number', '1002');
        await page.click('#dial_call');
        await b.waitEvent('CALL_ESTABLISHED');
        await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
        // One call: Conference asks for a number, then calls it into the conference.
        await page.click('#call_conference');
        await page.fill('#call_transfer_number', '1004');
        await page.click('#call_transfer_blind');
        await other.waitLine((l) => /^STATUS,1,InCall,/.test(l));
        await page.waitForSelector('#call_lines:not([hidden])', { timeout: TIMEOUT });
        // Record line 1 for a few seconds.
        await page.click('#call_lines button >> nth=0');
        await page.waitForSelector('#call_record:not([hidden])', { timeout: TIMEOUT });
        await page.click('#call_record');
        await page.waitForSelector('#call_record[aria-pressed="true"]', { timeout: TIMEOUT });
        await shot(page, 'conference-recording.png');
        await page.waitForTimeout(4000);
        const timer = await page.textContent('#call_timer');
        assert(timer >= '00:04', 'the call timer of line 1 runs on while the conference forms: ' + timer);
        await page.click('#call_record');
        await page.waitForSelector('#call_record[aria-pressed="false"]', { timeout: TIMEOUT });
        const toast = await page.waitForSelector('text=/Recording saved: /', { timeout: TIMEOUT });
        const recFile = (await toast.textContent()).replace(/^.*Recording saved: /, '').trim();
        say(`  recording: ${recFile}`);
        await page.evaluate(() => window.webphone_api.hangup(-2));
        await b.waitEvent('CALL_CLOSED');
        await other.waitLine((l) => /^CDR,/.test(l));
        // What each heard: baresip 1002 the 440 Hz of 1004, 1004 the 1000 Hz of baresip.
        const heardBy1002 = b.receivedWavs().at(-1);
        assert(heardBy1002, 'baresip wrote what it heard');
        const at = (file, hz) => toneLevel(file, hz);
        const b440 = at(heardBy1002, 440);
        const o1000 = at(heard1004, 1000);
        say(`  1002 heard 440 Hz at ${b440.dbfs.toFixed(1)} dBFS (${Math.round(b440.share * 100)}%), 1004 heard 1000 Hz at ${o1000.dbfs.toFixed(1)} dBFS (${Math.round(o1000.share * 100)}%)`);
        assert(b440.dbfs > -30, 'baresip 1002 hears 1004 through the conference');
        assert(o1000.dbfs > -30, '1004 hears baresip 1002 through the conference');
        const rec = at(recFile, 1000);
        say(`  the recording holds 1000 Hz at ${rec.dbfs.toFixed(1)} dBFS over ${rec.secs.toFixed(1)} s`);
        assert(rec.secs >= 3 && rec.dbfs > -30, 'the recording holds the call\'s audio');
      } finally {
        await signOut(page, started);
      }
      return 'ok';
    },

    // Presence and BLF through the skin and the facade, with Kamailio as the presence server:
    // the contacts list shows a watched contact's presence (a webphone-cli as 1004 publishing
    // Away) and its calls (BLF: 1004 calls baresip 1002 through the proxy: in a call, then back),
    // the facade's onPresenceStateChange / onBLFStateChange callbacks fire, and the dial pad's
    // "My status" publishes the user's own state (1004 watches 1001: Do not disturb, then
    // Online), DND also making the engine refuse 1004's call.
    async presence(page) {
      if (!havePeers('presence')) { return 'skipped'; }
      const started = [];
      try {
        const k = await startKamailio({ presence: true });
        started.push(k);
        const b = await startBaresip({ user: '1002', kamailio: k, answer: 'auto' });
        started.push(b);
        const other = await startCliPeer(k, '1004');
        started.push(other);
        say(`  kamailio ${k.addr} (presence server), baresip 1002 and webphone-cli 1004 registered`);
        await signIn(page, base, k, (p) => p.evaluate(() => {
          window.__presence = [];
          window.__blf = [];
          window.webphone_api.onPresenceStateChange((peer, state) => window.__presence.push([peer, state]));
          window.webphone_api.onBLFStateChange((peer, direction, state) => window.__blf.push([peer, direction, state]));
        }));
        // A contact for 1004: the skin subscribes to its presence and dialog state.
        await goPage(page, 'page_contactslist');
        await page.click('#contacts_add');
        await waitPage(page, 'page_contactedit');
        await page.fill('#contactedit_name', 'Dora Other');
        await page.fill('#contactedit_number', '1004');
        await page.click('#contactedit_save');
        await waitPage(page, 'page_contactslist');
        await k.waitLine(['REQ SUBSCRIBE', 'user=1001']);
        const lamp = (kind) => page.waitForSelector(`#contacts_list li:has-text("Dora Other") .contact-lamp[data-lamp="${kind}"]`, { timeout: TIMEOUT });
        other.send('setpresencestatus Away');
        await lamp('away');
        const awayText = await page.textContent('#contacts_list li:has-text("Dora Other") .contact-lamp');
        assert(awayText === 'Away', 'the lamp says what it means: ' + awayText);
        await shot(page, 'presence-away.png');
        // 1004 calls baresip 1002 through the proxy: its dialog state reaches the lamp.
        other.send('call 1002');
        await b.waitEvent('CALL_ESTABLISHED');
        await lamp('incall');
        await shot(page, 'presence-incall.png');
        other.send('hangup');
        await b.waitEvent('CALL_CLOSED');
        await lamp('away');
        const seen = await page.evaluate(() => ({ presence: window.__presence, blf: window.__blf }));
        say(`  callbacks: presence ${JSON.stringify(seen.presence)}, blf ${JSON.stringify(seen.blf)}`);
        assert(seen.presence.some(([p, st]) => p === '1004' && st === 'Away'), 'onPresenceStateChange(1004, Away)');
        assert(seen.blf.some(([p, , st]) => p === '1004' && st === 'confirmed'), 'onBLFStateChange(1004, …, confirmed)');
        assert(seen.blf.some(([p, , st]) => p === '1004' && st === 'terminated'), 'onBLFStateChange(1004, …, terminated)');
        // The user's own state from the dial pad: 1004 watches 1001.
        other.send('checkpresence 1001');
        await goPage(page, 'page_dialpad');
        await page.waitForSelector('#dial_presence_row:not([hidden])', { timeout: TIMEOUT });
        await page.selectOption('#dial_presence', 'DND');
        await other.waitLine((l) => /^PRESENCE,1001,Busy,/.test(l));
        // DND: the engine refuses 1004's call (480), nothing rings here.
        const before = other.lines().length;
        other.send('call 1001');
        await waitUntil(() => other.lines().slice(before).some((l) => /^STATUS,1,(Call Finished|Rejected|Not available|Busy|Temporarily Unavailable|Call failed)/i.test(l) || /^CDR,/.test(l)),
          'webphone-cli 1004: its call to 1001 refused');
        assert(await page.$('#call_incoming:not([hidden])') === null, 'no ringing while DND');
        await page.selectOption('#dial_presence', 'Online');
        await other.waitLine((l) => /^PRESENCE,1001,Available,/.test(l));
        assert(await page.evaluate(() => JSON.parse(localStorage.getItem(Object.keys(localStorage).find((key) => key.endsWith('presence'))))) === 'Online',
          'the chosen state is kept');
        await shot(page, 'presence-own.png');
      } finally {
        await signOut(page, started, { presence: true });
      }
      return 'ok';
    },

    async incall(page) {
      // The call page's controls against real peers: the speaker volume slider reaches the
      // engine, Mute silences what baresip 1002 hears (the skin's microphone is a 700 Hz tone
      // file), Transfer sends 1002 on to baresip 1003 (blind), and "Consult first" then
      // Transfer with an empty number connects 1002 and 1003 (attended, with Replaces).
      if (!havePeers('incall')) { return 'skipped'; }
      const started = [];
      const toneDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-skins-incall-'));
      try {
        const k = await startKamailio();
        started.push(k);
        const b = await startBaresip({ user: '1002', kamailio: k, answer: 'auto', toneHz: 1000 });
        started.push(b);
        const c = await startBaresip({ user: '1003', kamailio: k, answer: 'auto', toneHz: 440 });
        started.push(c);
        const mic = path.join(toneDir, 'mic700.wav');
        writeTone(mic, 700, 16000, 120, 0.5);
        await signIn(page, base, k);
        await page.evaluate(async (m) => { await window.webphone_api.setparameter('audiodevicein', 'file:' + m); }, mic);
        // The skin reads its user-interface parameters at load (here from the page URL).
        await page.goto(`${base}&wp_displayvolumecontrols=1&wp_savetocontacts=0`);
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        await page.waitForFunction(() => document.getElementById('reg_text').textContent === 'Registered', null, { timeout: TIMEOUT });
        await goPage(page, 'page_dialpad');
        await page.fill('#dial_number', '1002');
        await page.click('#dial_call');
        await b.waitEvent('CALL_ESTABLISHED');
        await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
        const t0 = Date.now();
        // Speaker volume: the slider's change is setvolume(1, value) at the engine.
        await page.waitForSelector('#call_volume_field:not([hidden])', { timeout: TIMEOUT });
        await page.$eval('#call_volume', (r) => { r.value = '80'; r.dispatchEvent(new Event('change')); });
        await page.waitForFunction(async () => Number(await window.webphone_api.getvolume(1)) === 80, null, { timeout: TIMEOUT });
        // Mute for 2.5 s in the middle of 5.5 s of talking.
        await page.waitForTimeout(1500);
        await page.click('#call_mute');
        await page.waitForFunction(async () => document.getElementById('call_mute').getAttribute('aria-pressed') === 'true' &&
          (await window.webphone_api.ismuted()) === true, null, { timeout: TIMEOUT });
        await shot(page, 'incall-muted.png');
        await page.waitForTimeout(2500);
        await page.click('#call_mute');
        await page.waitForFunction(() => document.getElementById('call_mute').getAttribute('aria-pressed') === 'false', null, { timeout: TIMEOUT });
        await page.waitForTimeout(1500);
        // Blind transfer: 1002 calls 1003 on our REFER; our call ends.
        await page.click('#call_transfer');
        await page.fill('#call_transfer_number', '1003');
        await shot(page, 'incall-transfer-form.png');
        await page.click('#call_transfer_blind');
        await waitUntil(() => c.events().some((e) => e.type === 'CALL_ESTABLISHED' && /1002/.test(String(e.param || ''))),
          'baresip 1003 connected with 1002 after the blind transfer');
        await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        const callSecs = (Date.now() - t0) / 1000;
        // What 1002 heard from us: the 700 Hz tone, less the muted stretch.
        const heard = b.receivedWavs()[0];
        assert(heard, 'baresip 1002 recorded the call');
        const toneSecs = toneSeconds(heard, 700);
        assert(toneSecs > 2 && toneSecs < callSecs - 1.5,
          `mute: 1002 heard the tone for ${toneSecs.toFixed(1)} s of a ${callSecs.toFixed(1)} s call muted for 2.5 s`);
        say(`  1002 heard the microphone tone for ${toneSecs.toFixed(1)} s of ${callSecs.toFixed(1)} s (2.5 s muted)`);
        // 1002 and 1003 end their call; then the attended flow.
        await b.command('hangup');
        await waitUntil(() => c.events().filter((e) => e.type === 'CALL_CLOSED').length >= 1, 'the transferred call ended');
        const estB = b.events().filter((e) => e.type === 'CALL_ESTABLISHED').length;
        await goPage(page, 'page_dialpad');
        await page.fill('#dial_number', '1002');
        await page.click('#dial_call');
        await b.waitEventCount('CALL_ESTABLISHED', estB + 1);
        await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
        const estC = c.events().filter((e) => e.type === 'CALL_ESTABLISHED').length;
        await page.click('#call_transfer');
        await page.fill('#call_transfer_number', '1003');
        await page.click('#call_transfer_attended');
        await waitUntil(() => c.events().filter((e) => e.type === 'CALL_ESTABLISHED').length > estC, 'the consultation call to 1003');
        await page.waitForFunction(() => Object.keys(window.webphone_api.state.lines || {}).length === 2, null, { timeout: TIMEOUT });
        await shot(page, 'incall-consulting.png');
        await page.click('#call_transfer');
        await page.click('#call_transfer_blind'); // Transfer with an empty number: connect both
        await waitUntil(() => c.events().filter((e) => e.type === 'CALL_ESTABLISHED' && /1002/.test(String(e.param || ''))).length >= 2,
          'baresip 1003 connected with 1002 after the attended transfer').catch(async (e) => {
          say('  1003 events: ' + c.events().map((x) => `${x.type}:${x.param || ''}`).join(' | '));
          say('  1002 events: ' + b.events().map((x) => `${x.type}:${x.param || ''}`).join(' | '));
          say('  lines: ' + JSON.stringify(await page.evaluate(() => window.webphone_api.state.lines)));
          throw e;
        });
        await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        await b.command('hangup').catch(() => {});
        // History: the filters, call back from an entry, add an entry to the contacts, and the
        // contacts list's favourite star.
        await goPage(page, 'page_callhistorylist');
        await page.waitForFunction(() => document.querySelectorAll('#history_list li').length >= 3, null, { timeout: TIMEOUT });
        const kinds = () => page.$$eval('#history_list li', (els) => els.map((e) => (e.classList.contains('missed') ? 'missed' : e.querySelector('.dir-icon').getAttribute('class'))));
        await page.click('#history_filter [data-filter="out"]');
        const outs = await kinds();
        assert(outs.length >= 3 && outs.every((k) => /dir-out/.test(k)), 'Outgoing filter: ' + JSON.stringify(outs));
        await page.click('#history_filter [data-filter="in"]');
        assert((await kinds()).length === 0, 'Incoming filter: no incoming calls here');
        await page.click('#history_filter [data-filter="missed"]');
        assert((await kinds()).length === 0, 'Missed filter: no missed calls here');
        await page.click('#history_filter [data-filter="all"]');
        const estB2 = b.events().filter((e) => e.type === 'CALL_ESTABLISHED').length;
        await page.click('#history_list li:has-text("1002") .btn-callsmall >> nth=0');
        await b.waitEventCount('CALL_ESTABLISHED', estB2 + 1);
        await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
        await page.click('#call_hangup');
        await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        await goPage(page, 'page_callhistorylist');
        await page.click('#history_list li:has-text("1002") .btn-small >> nth=0');
        await waitPage(page, 'page_contactedit');
        assert(await page.inputValue('#contactedit_number') === '1002', 'Add from the history fills the number');
        await page.fill('#contactedit_name', 'Baresip Two');
        await page.click('#contactedit_save');
        await page.waitForFunction(() => window.WPRouter.current() !== 'page_contactedit', null, { timeout: TIMEOUT });
        await goPage(page, 'page_contactslist');
        await page.waitForSelector('#contacts_list li:has-text("Baresip Two")', { timeout: TIMEOUT });
        const star = '#contacts_list li:has-text("Baresip Two") button.fav';
        assert(await page.getAttribute(star, 'aria-pressed') === 'false', 'not a favourite yet');
        await page.click(star);
        await page.waitForSelector(`${star}[aria-pressed="true"]`, { timeout: TIMEOUT });
        const stored = await page.evaluate(() => (window.WPSkin.contacts() || []).find((c) => c.name === 'Baresip Two'));
        assert(stored && stored.favorite === true, 'favourite kept: ' + JSON.stringify(stored));
        await shot(page, 'incall-history-contacts.png');
      } finally {
        await page.evaluate(async () => {
          await window.webphone_api.setparameter('audiodevicein', 'null').catch(() => {});
          await window.webphone_api.setvolume(1, 50).catch(() => {});
        }).catch(() => {});
        await signOut(page, started);
        rmSync(toneDir, { recursive: true, force: true });
      }
      return 'ok';
    },

    async sip(page) {
      if (!havePeers('sip')) { return 'skipped'; }
      const started = [];
      try {
        const k = await startKamailio();
        started.push(k);
        const b = await startBaresip({ user: '1002', kamailio: k, answer: 'auto' });
        started.push(b);
        // 1003's display name carries markup: the call page must show it as text.
        const c = await startBaresip({ user: '1003', kamailio: k, answer: 'manual', toneHz: 440, displayName: '<i>Eve</i> & Co' });
        started.push(c);
        say(`  kamailio ${k.addr}, baresip 1002 and 1003 registered`);
        // Sign in on the login page.
        await page.goto(base);
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        await page.evaluate(() => localStorage.clear());
        await page.reload();
        await page.waitForSelector('body.ready', { timeout: TIMEOUT });
        await waitPage(page, 'page_login');
        await page.fill('#login_server', k.addr);
        await page.fill('#login_username', '1001');
        await page.fill('#login_password', 'pass1001');
        await page.click('#login_submit');
        await waitPage(page, 'page_dialpad');
        await page.waitForFunction(() => document.getElementById('reg_text').textContent === 'Registered', null, { timeout: TIMEOUT });
        await k.waitLine(['REQ REGISTER', 'user=1001']);
        await shot(page, 'sip-registered.png');
        // Chat page -> baresip 1002: Kamailio routes the MESSAGE, baresip answers 200 ("Sent").
        await goPage(page, 'page_chat');
        await page.fill('#chat_new_number', '1002');
        await page.press('#chat_new_number', 'Enter');
        await page.fill('#chat_input', 'hello baresip');
        await page.press('#chat_input', 'Enter');
        await page.waitForFunction(() => { const e = document.querySelector('#chat_log .chat-out .chat-state'); return e && e.textContent === 'Sent'; },
          null, { timeout: TIMEOUT });
        // baresip 1.0 cannot send MESSAGE from its control socket: a second phone, webphone-cli
        // registered as 1004 at the same Kamailio, chats with the skin both ways.
        const other = await startCliPeer(k, '1004');
        started.push(other);
        other.send('sendchat 1001 "hello from 1004, via kamailio"');
        await page.waitForFunction(() => document.getElementById('chat_heading').textContent === 'Chat with 1004', null, { timeout: TIMEOUT });
        await page.waitForFunction(() => { const e = document.querySelector('#chat_log .chat-in .chat-text'); return e && e.textContent === 'hello from 1004, via kamailio'; },
          null, { timeout: TIMEOUT });
        // Markup from a real peer is shown as text: no element is made from it, nothing runs.
        other.send('sendchat 1001 "<img src=x onerror=window.__xss=1><b>bold?</b>"');
        await page.waitForFunction(() => Array.from(document.querySelectorAll('#chat_log .chat-in .chat-text'))
          .some((e) => e.textContent === '<img src=x onerror=window.__xss=1><b>bold?</b>'), null, { timeout: TIMEOUT });
        assert(await page.evaluate(() => document.querySelectorAll('#chat_log img, #chat_log b').length === 0 && window.__xss === undefined),
          'chat markup from a peer rendered as text');
        await page.fill('#chat_input', 'hi 1004, this is the skin');
        await page.press('#chat_input', 'Enter');
        await other.waitLine((l) => l.startsWith('CHAT,') && l.includes('1001') && l.endsWith('hi 1004, this is the skin'));
        await page.waitForFunction(() => Array.from(document.querySelectorAll('#chat_log .chat-out .chat-state')).every((e) => e.textContent === 'Sent'),
          null, { timeout: TIMEOUT });
        await shot(page, 'sip-chat.png');
        await other.stop();
        // Incoming call from baresip 1003: answered on the call page.
        await c.command(`dial ${k.uriOf('1001')}`);
        await page.waitForSelector('#call_incoming:not([hidden])', { timeout: TIMEOUT }).catch((e) => {
          say('  1003 events: ' + c.eventTypes().join(' '));
          throw e;
        });
        await shot(page, 'sip-incoming.png');
        await page.waitForFunction(() => document.getElementById('call_peer_name').textContent.includes('<i>Eve</i> & Co'), null, { timeout: TIMEOUT })
          .catch(async (e) => { throw new Error(`caller name shown: ${await page.textContent('#call_peer_name')}: ${e.message}`); });
        assert(await page.evaluate(() => document.querySelectorAll('#page_call i').length === 0), 'the caller\'s display name is shown as text');
        await axe(page, 'page_call incoming from baresip');
        await page.click('#call_accept');
        await c.waitEvent('CALL_ESTABLISHED');
        await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
        await page.click('#call_hangup');
        await c.waitEvent('CALL_CLOSED');
        await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        // A second incoming call: rejected.
        const closedBefore = c.events().filter((e) => e.type === 'CALL_CLOSED').length;
        await c.command(`dial ${k.uriOf('1001')}`);
        await page.waitForSelector('#call_incoming:not([hidden])', { timeout: TIMEOUT });
        await page.click('#call_reject');
        await c.waitEventCount('CALL_CLOSED', closedBefore + 1);
        const closed = c.events().filter((e) => e.type === 'CALL_CLOSED').pop();
        say(`  baresip 1003 saw the rejection: ${closed.param || ''}`);
        assert(c.events().filter((e) => e.type === 'CALL_ESTABLISHED').length === 1, 'the rejected call was never established');
        await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        // Call baresip 1002 (auto answer).
        await goPage(page, 'page_dialpad');
        await page.fill('#dial_number', '1002');
        await page.click('#dial_call');
        await waitPage(page, 'page_call');
        await b.waitEvent('CALL_ESTABLISHED');
        await page.waitForFunction(() => document.getElementById('call_state').textContent === 'Connected', null, { timeout: TIMEOUT });
        await shot(page, 'sip-call-1002.png');
        // Hold: baresip gets a re-INVITE (a new remote SDP offer after the call was established).
        const offers = () => b.events().filter((e) => e.type === 'CALL_REMOTE_SDP' && e.param === 'offer').length;
        const before = offers();
        await page.click('#call_hold');
        await page.waitForFunction(() => document.getElementById('call_hold').getAttribute('aria-pressed') === 'true', null, { timeout: TIMEOUT });
        await page.waitForFunction(async () => (await window.webphone_api.isonhold()) === true, null, { timeout: TIMEOUT });
        await waitUntil(() => offers() > before, 'baresip received the hold re-INVITE');
        assert(/got re-INVITE/.test(b.log()), 'baresip logged the re-INVITE');
        // The offer says hold, and baresip's answer takes it (RFC 3264 §8.4: sendonly answered
        // recvonly, inactive answered inactive): the last INVITE sent and 200 OK received.
        const lastSip = (dir, type) => page.evaluate(([d, t]) => new Promise((r) => window.webphone_api.getsipmessage(d, t, r)), [dir, type]);
        const holdDirs = async (offerRe, answerRe) => {
          const end = Date.now() + TIMEOUT;
          for (;;) {
            const offer = await lastSip(1, 3); const answer = await lastSip(0, 4);
            if (offerRe.test(offer) && answerRe.test(answer)) { return [offer.match(offerRe)[0], answer.match(answerRe)[0]]; }
            if (Date.now() > end) { throw new Error(`hold directions: offer ${offer.match(/a=(sendrecv|sendonly|recvonly|inactive)/)} answer ${answer.match(/a=(sendrecv|sendonly|recvonly|inactive)/)}`); }
            await page.waitForTimeout(100);
          }
        };
        const held = await holdDirs(/a=(sendonly|inactive)/, /a=(recvonly|inactive)/);
        say(`  hold: offer ${held[0]}, baresip answered ${held[1]}`);
        await shot(page, 'sip-hold.png');
        await page.click('#call_hold');
        await waitUntil(() => offers() > before + 1, 'baresip received the resume re-INVITE');
        const resumed = await holdDirs(/a=sendrecv|^(?![\s\S]*a=(sendonly|recvonly|inactive))[\s\S]*m=audio/, /a=sendrecv|^(?![\s\S]*a=(sendonly|recvonly|inactive))[\s\S]*m=audio/);
        say(`  resume: offer and answer sendrecv again (${resumed.map((x) => (/a=sendrecv/.test(x) ? 'a=sendrecv' : 'no direction')).join(', ')})`);
        // DTMF from the in-call keypad arrives at baresip.
        if (await page.$eval('#call_dtmf_keypad', (e) => e.closest('[hidden]') !== null)) { await page.click('#call_keypad_toggle'); }
        for (const key of ['1', '2', '#']) { await page.click(`#call_dtmf_keypad [data-key="${key}"]`); }
        await b.waitDtmf('12#');
        say(`  baresip received DTMF ${b.dtmfReceived()}`);
        await page.click('#call_hangup');
        await b.waitEvent('CALL_CLOSED');
        await page.waitForFunction(() => !window.webphone_api.state.incall, null, { timeout: TIMEOUT });
        // Placing a call must not touch the registration (an earlier engine build sent
        // REGISTER Expires: 0 when the call re-pushed the unchanged account).
        const unreg = k.lines().filter((l) => /^REGISTERED 1001 .* expires=0 /.test(l)).length;
        assert(unreg === 0, 'the outgoing call de-registered 1001 at Kamailio (REGISTER expires=0)');
        // History lists the calls.
        await goPage(page, 'page_callhistorylist');
        // (The CDR of the call just ended may arrive after its last STATUS; the open page
        // re-renders when it does.)
        const histTitles = () => page.$$eval('#history_list li .item-title', (els) => els.map((e) => e.textContent));
        await page.waitForFunction(() => {
          const t = Array.from(document.querySelectorAll('#history_list li .item-title')).map((e) => e.textContent);
          // 1003 shows by its display name, as text.
          return t.some((h) => h.includes('1002')) && t.some((h) => h.includes('<i>Eve</i> & Co'));
        }, null, { timeout: TIMEOUT }).catch(async () => {
          throw new Error('history lists the calls: ' + (await histTitles()));
        });
        await shot(page, 'sip-history.png');
        // Chat from the click2call window to baresip 1002: Kamailio routes it, baresip answers 200.
        await page.goto(`${c2k}&wp_callto=1002`);
        await c2kReady(page);
        await page.click('#c2k_container_0_menu_button');
        await page.click('#c2k_container_0_menu [data-action=chat]');
        await page.fill('#c2k_container_0_chat_input', 'hello baresip');
        await page.press('#c2k_container_0_chat_input', 'Enter');
        await page.waitForFunction(() => { const s = document.querySelector('#c2k_container_0_chat .c2k-msg-out .c2k-msg-state'); return s && s.textContent === 'Sent'; },
          null, { timeout: TIMEOUT });
        await k.waitLine(['REQ MESSAGE', 'user=1001']);
        // ("Sent" is CHATREPORT status 2: baresip answered the MESSAGE with 200; baresip 1.0 does
        // not print or report the text itself.)
        await shot(page, 'sip-c2k-chat.png');
        // The click2call button calls baresip too.
        await page.click('#c2k_container_0_button');
        await b.waitEventCount('CALL_ESTABLISHED', 2);
        await c2kStatus(page, 0, /^Connected /);
        await c2kHangup(page, 0);
        // URL-driven click2call (as in an e-mail signature link): account, number and
        // autoaction=1 in the URL; the call starts at page load.
        await page.goto(`${c2k}&wp_serveraddress=${encodeURIComponent(k.addr)}&wp_username=1001&wp_password=pass1001&wp_callto=1002&wp_autoaction=1`);
        await c2kReady(page);
        await b.waitEventCount('CALL_ESTABLISHED', 3);
        await c2kStatus(page, 0, /^Connected /);
        await shot(page, 'sip-c2k-autoaction1.png');
        await c2kHangup(page, 0);
      } finally {
        await signOut(page, started, { callto: true });
      }
      return 'ok';
    },
  };
}

// Whether Kamailio and baresip are installed for scenario `name`: without them it is skipped
// loudly, and under CI=true it fails.
function havePeers(name) {
  const missing = missingPeers(['kamailio', 'baresip']);
  if (!missing.length) { return true; }
  if (process.env.CI === 'true') { throw new Error(`needs ${missing.join(', ')} (required when CI=true)`); }
  say('==================================================================');
  say(`SKIPPED ${name}: ${missing.join(', ')} not installed`);
  say('==================================================================');
  return false;
}

// The end of a scenario with real peers: calls hung up, own presence back to Online
// (`presence`), unregistered, the account (and `callto`/`autoaction`) cleared in the shared
// engine, the skin's storage cleared, then every process in `started` stopped, newest first.
async function signOut(page, started, { presence = false, callto = false } = {}) {
  await page.evaluate(async ({ presence, callto }) => {
    const wp = window.webphone_api;
    await wp.hangup(-2).catch(() => {});
    if (presence) { await wp.setpresencestatus('Online').catch(() => {}); }
    await wp.unregister().catch(() => {});
    for (const name of ['serveraddress', 'username', 'password'].concat(callto ? ['callto'] : [])) {
      await wp.setparameter(name, '');
    }
    if (callto) { await wp.setparameter('autoaction', '0'); }
    localStorage.clear();
  }, { presence, callto }).catch(() => {});
  for (const p of started.reverse()) { await p.stop(); }
}

// Signs the skin (at `base`) in as 1001 at Kamailio `k` on the login page (after clearing the skin's
// storage) and waits until it is registered. `beforeLogin(page)` runs on the login page.
async function signIn(page, base, k, beforeLogin) {
  await page.goto(base);
  await page.waitForSelector('body.ready', { timeout: TIMEOUT });
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await page.waitForSelector('body.ready', { timeout: TIMEOUT });
  if (beforeLogin) { await beforeLogin(page); }
  await waitPage(page, 'page_login');
  await page.fill('#login_server', k.addr);
  await page.fill('#login_username', '1001');
  await page.fill('#login_password', 'pass1001');
  await page.click('#login_submit');
  await waitPage(page, 'page_dialpad');
  await page.waitForFunction(() => document.getElementById('reg_text').textContent === 'Registered', null, { timeout: TIMEOUT });
}

// A second phone: webphone-cli (stdin/stdout mode) registered at Kamailio as `user`.
// `params`: more name=value parameters (they override the null audio devices).
async function startCliPeer(k, user, params = []) {
  const dir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-skins-peer-'));
  const child = spawn(CLI, ['-p', `serveraddress=${k.addr}`, '-p', `username=${user}`, '-p', `password=pass${user}`,
    '-p', 'audiodevicein=null', '-p', 'audiodeviceout=null', ...params.flatMap((p) => ['-p', p])],
  { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, WP_PASSWORD: '' } });
  const lines = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop();
    lines.push(...parts.map((l) => l.trim()));
  });
  child.stderr.on('data', () => {});
  const peer = {
    dir,
    lines: () => lines.slice(),
    send: (cmd) => child.stdin.write(cmd + '\n'),
    waitLine: (pred) => waitUntil(() => lines.some(pred), `webphone-cli ${user}: expected line (got ${lines.slice(-5).join(' | ')})`),
    stop: async () => { await stopChild(child); rmSync(dir, { recursive: true, force: true }); },
  };
  try {
    await peer.waitLine((l) => /^STATUS,-1,Registered,/.test(l));
  } catch (e) { await peer.stop(); throw e; }
  return peer;
}

// Seconds of `file` (a WAV recording) carrying the tone `hz`: 100 ms blocks louder than
// -40 dBFS with at least half of their energy at that frequency (Goertzel).
function toneSeconds(file, hz) {
  const { samples, rate } = readWav(file);
  const block = Math.floor(rate / 10);
  const coeff = 2 * Math.cos(2 * Math.PI * hz / rate);
  let blocks = 0;
  for (let s = 0; s + block <= samples.length; s += block) {
    let s1 = 0; let s2 = 0; let e = 0;
    for (let i = 0; i < block; i++) {
      const v = samples[s + i];
      const s0 = v + coeff * s1 - s2;
      s2 = s1; s1 = s0; e += v * v;
    }
    const power = Math.max(0, s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2 / (block * block);
    const mean = e / block;
    if (10 * Math.log10(mean + 1e-12) > -40 && power >= 0.5 * mean) { blocks++; }
  }
  return blocks / 10;
}

// Polls a condition of the test process (peer state), failing after TIMEOUT.
async function waitUntil(fn, what) {
  const end = Date.now() + TIMEOUT;
  while (!fn()) {
    if (Date.now() > end) { throw new Error('timed out waiting: ' + what); }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------- main

async function main() {
  mkdirSync(OUT, { recursive: true });
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-skins-'));
  const dataDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-skins-data-'));
  let server = null;
  let service = null;
  let context = null;
  const results = [];
  try {
    server = await staticServer();
    const origin = `http://127.0.0.1:${server.address().port}`;
    service = await startService(origin, dataDir);
    const base = `${origin}/skins/softphone/softphone.html?wp_serviceport=${service.port}`;
    say(`static server ${origin}; service ws://127.0.0.1:${service.port}`);
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 400, height: 760 }, locale: 'en-US',
    });
    const page = context.pages()[0] || await context.newPage();
    watch(page, 'skin');
    const all = scenarios({ base, origin, port: service.port, sipPort: service.sipPort });
    for (const [name, fn] of Object.entries(all)) {
      if (ONLY.length && !ONLY.includes(name)) { continue; }
      const t0 = Date.now();
      say(`--- ${name}`);
      try {
        const r = await fn(page);
        results.push([name, r === 'skipped' ? 'SKIPPED' : 'ok', Date.now() - t0]);
      } catch (e) {
        results.push([name, 'FAILED', Date.now() - t0]);
        say(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
        await page.screenshot({ path: path.join(OUT, `failure-${name}.png`), fullPage: true }).catch(() => {});
      }
    }
    if (consoleErrors.length) {
      results.push(['console', 'FAILED', 0]);
      say('console errors during the run:\n  ' + consoleErrors.join('\n  '));
    }
  } catch (e) {
    results.push(['setup', 'FAILED', 0]);
    say(`FAIL setup: ${e && e.stack ? e.stack : e}`);
    if (service) { say('webphone-cli stderr:\n' + service.log()); }
  } finally {
    if (context) { await context.close().catch(() => {}); }
    if (service) { await stopChild(service.child); }
    if (server) { server.closeAllConnections?.(); server.close(); }
    rmSync(userDataDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
  say('---------------- summary');
  for (const [n, s, ms] of results) { say(`${n.padEnd(10)} ${s.padEnd(7)} ${(ms / 1000).toFixed(1)}s`); }
  const failed = results.some((r) => r[1] !== 'ok' && r[1] !== 'SKIPPED');
  say(failed ? 'RESULT: FAIL' : 'RESULT: PASS');
  process.exitCode = failed ? 1 : 0;
}

main();
