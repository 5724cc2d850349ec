// Browser end-to-end test of ui/samples/techdemo with real SIP peers: Debian's Chromium loads the
// tech demo from a local static server; the page talks to `webphone-cli --serve` through
// ui/webphone_api.js, which registers as 1001 with Kamailio (tests/e2e-peers/peers.mjs) from
// wp_ URL parameters, and baresip (1002, auto-answer) is the far end.
//
// Scenario:
//   1. the page loads, every facade function has a row (data-missing is empty), wp_ cookies and
//      URL parameters reach the engine (getparameter shows the URL value over the cookie), the account
//      from the wp_ URL parameters registers with register() (onRegistered and
//      STATUS,-1,Registered logged on the page; Kamailio logs REGISTERED 1001);
//   2. baresip calls 1001 (its display name is HTML, shown as text): the incoming call shows on
//      the page, accept() from its button, baresip
//      sees the call established, hangup() from the page, baresip sees it closed, a CDR is logged;
//   3. the page calls 1002 with call(): Kamailio relays the INVITE, baresip answers, the page logs
//      STATUS,1,InCall; dtmf("5") reaches baresip as an RFC 4733 event; hold(true) reaches baresip
//      as a re-INVITE (Kamailio logs it); hangup(); baresip sees the call closed; a second CDR.
//   4. every function row is pressed once with its example arguments (stop and start last): each
//      answers with a result or an error message on the page, none hangs.
// Screenshots go to $E2E_OUT (target/e2e-browser/techdemo-*.png). Started by run.sh (which
// provides E2E_CLI, E2E_CHROMIUM, E2E_OUT). Without kamailio/baresip it skips loudly (CI=true:
// failure). Everything it starts is stopped by handle.
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { OUT, CHROMIUM, CHROMIUM_FLAGS, TIMEOUT, say, staticServer, startService, stopChild, shot, watchConsole } from './lib.mjs';
import { requirePeers, startKamailio, startBaresip } from '../e2e-peers/peers.mjs';

requirePeers(['kamailio', 'baresip'], 'tests/e2e-browser/techdemo.mjs');

// HTML character references: a page that used innerHTML would show "<b>" here and '&' alone.
const HOSTILE_NAME = 'Bob &lt;b&gt; &amp;';

// The text of every event-list entry of `kind` on the page.
function entries(page, kind) {
  return page.$$eval(`#events li[data-kind="${kind}"]`, (lis) => lis.map((li) => li.childNodes[1] ? li.childNodes[1].textContent : ''));
}

// Waits until an entry of `kind` matches `re` (a RegExp source); resolves to its text.
async function waitEntry(page, kind, re, count = 1) {
  const handle = await page.waitForFunction(([k, src, n]) => {
    const rx = new RegExp(src);
    const found = Array.from(document.querySelectorAll(`#events li[data-kind="${k}"]`))
      .map((li) => (li.childNodes[1] ? li.childNodes[1].textContent : ''))
      .filter((t) => rx.test(t));
    return found.length >= n ? { text: found[n - 1] } : null;
  }, [kind, re.source, count], { timeout: TIMEOUT });
  return (await handle.jsonValue()).text;
}

async function run(page, fn, args = []) {
  for (let i = 0; i < args.length; i++) { await page.fill(`#arg-${fn}-${i}`, args[i]); }
  await page.click(`#fn-${fn}`);
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-techdemo-'));
  let server = null;
  let service = null;
  let context = null;
  let kamailio = null;
  let baresip = null;
  let failed = false;
  try {
    kamailio = await startKamailio();
    // A display name that is HTML: the page must show it as text.
    baresip = await startBaresip({ user: '1002', kamailio, answer: 'auto', displayName: HOSTILE_NAME });
    server = await staticServer();
    const origin = `http://127.0.0.1:${server.address().port}`;
    service = await startService(origin);
    say(`kamailio ${kamailio.addr}, baresip 1002 registered (sip port ${baresip.sipPort}), service ws://127.0.0.1:${service.port}, page ${origin}`);

    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 1200, height: 900 },
    });
    const page = context.pages()[0] || await context.newPage();
    watchConsole(page, 'techdemo');

    // ---- 1. load, table coverage, registration from wp_ URL parameters
    // wp_ cookies of the page's origin and wp_ URL parameters: the URL wins over the cookie
    await context.addCookies([
      { name: 'wp_displayname', value: 'Cookie%20Name', url: origin },
      { name: 'wp_ringtimeout', value: '70000', url: origin },
    ]);
    const q = new URLSearchParams({
      wp_serviceport: String(service.port), wp_serveraddress: kamailio.addr, wp_username: '1001', wp_password: 'pass1001',
      wp_displayname: 'Url Name',
    });
    await page.goto(`${origin}/samples/techdemo/index.html?${q}`);
    await page.waitForSelector('body[data-loaded="1"][data-started="1"]', { timeout: TIMEOUT });
    const missing = await page.getAttribute('body', 'data-missing');
    if (missing !== '') { throw new Error(`techdemo has no row for: ${missing}`); }
    const rows = await page.$$eval('#functions .fn', (r) => r.length);
    for (const [name, want] of [['displayname', 'Url Name'], ['ringtimeout', '70000']]) {
      await run(page, 'getparameter', [name]);
      await page.waitForFunction(([w]) => document.getElementById('result-getparameter').textContent === '= ' + w, [want], { timeout: TIMEOUT });
    }
    say('1. parameters from the browser: displayname from the URL over the cookie, ringtimeout from the cookie');
    // The service started its engine before the page connected (autostart), so the account
    // given by the URL is registered with register(), from its button.
    await run(page, 'register');
    await page.waitForSelector('body[data-registered="1"]', { timeout: TIMEOUT });
    await waitEntry(page, 'onEvents', /^STATUS,-1,Registered,/);
    await waitEntry(page, 'onRegistered', /.*/);
    await kamailio.waitLine(['REGISTERED 1001']);
    say(`1. techdemo loaded (${rows} function rows, none missing), registered as 1001 (onRegistered, STATUS,-1,Registered; Kamailio: REGISTERED 1001)`);
    await shot(page, 'techdemo-1-registered.png');

    // ---- 2. incoming call from baresip, accepted on the page
    await baresip.command(`dial ${kamailio.uriOf('1001')}`);
    const ringing = await waitEntry(page, 'onEvents', /^STATUS,1,(Ringing|Incoming|CallSetup|Setup),1002,/);
    say(`2. incoming call shown: ${ringing}`);
    const named = await waitEntry(page, 'onCallStateChange', /Bob &lt;b&gt; &amp;/);
    const shownText = await page.$$eval('#events li[data-kind="onCallStateChange"]', (lis) => lis.map((li) => li.textContent).join('\n'));
    if (!shownText.includes(HOSTILE_NAME)) { throw new Error('the caller\'s display name was not shown as text: ' + shownText); }
    say(`2. the caller's display name is shown as text: ${named}`);
    await shot(page, 'techdemo-2-incoming.png');
    await run(page, 'accept');
    await baresip.waitEvent('CALL_ESTABLISHED');
    const inCall = await waitEntry(page, 'onEvents', /^STATUS,1,InCall,1002,/);
    await page.waitForSelector('body[data-incall="1"]', { timeout: TIMEOUT });
    say(`2. accepted from the page: baresip CALL_ESTABLISHED, page ${inCall}`);
    await shot(page, 'techdemo-3-incoming-accepted.png');
    await run(page, 'hangup');
    await baresip.waitEvent('CALL_CLOSED');
    const cdr1 = await waitEntry(page, 'onEvents', /^CDR,/);
    await waitEntry(page, 'onCdr', /.*/);
    say(`2. hung up from the page: baresip CALL_CLOSED, page ${cdr1}`);

    // ---- 3. outgoing call to baresip, DTMF, hold, hang up
    await run(page, 'call', ['1002']);
    await baresip.waitEventCount('CALL_ESTABLISHED', 2);
    const out = await waitEntry(page, 'onEvents', /^STATUS,1,InCall,1002,/, 2);
    await kamailio.waitLine(['RELAY INVITE']);
    if (!kamailio.lines().some((l) => l.startsWith('REQ INVITE sip:1002@') && l.includes('user=1001'))) {
      throw new Error('Kamailio saw no INVITE from 1001 to 1002');
    }
    say(`3. outgoing call 1001 -> 1002 through Kamailio answered by baresip; page ${out}`);
    await run(page, 'dtmf', ['5']);
    await baresip.waitDtmf('5');
    say(`3. dtmf("5") from the page arrived at baresip (CALL_DTMF_START keys: ${baresip.dtmfReceived()})`);
    await run(page, 'hold', ['true']);
    const reinvite = await kamailio.waitLine(['REQ INVITE sip:1002-', 'user=1001']);
    const held = await waitEntry(page, 'onEvents', /^STATUS,1,Hold,/);
    say(`3. hold(true): re-INVITE through Kamailio (${reinvite[0].slice(0, 60)}...), page ${held}`);
    await shot(page, 'techdemo-4-outgoing-on-hold.png');
    await run(page, 'hangup');
    await baresip.waitEventCount('CALL_CLOSED', 2);
    const cdr2 = await waitEntry(page, 'onEvents', /^CDR,/, 2);
    await page.waitForSelector('body[data-incall="0"]', { timeout: TIMEOUT });
    say(`3. hung up: baresip CALL_CLOSED, page ${cdr2}`);
    await shot(page, 'techdemo-5-after-calls.png');

    const errors = await entries(page, 'error');
    if (errors.length) { throw new Error('a function call failed on the page: ' + errors.join(' / ')); }

    // ---- 4. every row once, with its example arguments: each answers (a result or an error)
    const names = await page.$$eval('#functions .fn', (r) => r.map((x) => x.getAttribute('data-fn')));
    const last = ['stop', 'start']; // stopping the engine last, then starting it again
    const order = names.filter((n) => !last.includes(n)).concat(last);
    const answers = {};
    for (const name of order) {
      const before = (await entries(page, 'result')).length + (await entries(page, 'error')).length;
      await page.click(`#fn-${name}`);
      await page.waitForFunction((n) => document.querySelectorAll('#events li[data-kind="result"], #events li[data-kind="error"]').length > n,
        before, { timeout: TIMEOUT });
      const cls = await page.getAttribute(`#result-${name}`, 'class');
      answers[name] = cls.includes('err') ? 'error' : 'result';
    }
    const failedFns = Object.keys(answers).filter((n) => answers[n] === 'error');
    for (const n of failedFns) { say(`   ${n}: ${await page.textContent(`#result-${n}`)}`); }
    say(`4. all ${order.length} rows answered: ${order.length - failedFns.length} results, ${failedFns.length} errors (${failedFns.join(', ')})`);
    await shot(page, 'techdemo-6-every-function.png');
    say('PASS');
  } catch (e) {
    failed = true;
    say(`FAIL: ${e && e.stack ? e.stack : e}`);
    if (context) {
      for (const [i, p] of context.pages().entries()) {
        await p.screenshot({ path: path.join(OUT, `techdemo-failure-${i}.png`), fullPage: true }).catch(() => {});
        const list = await p.$$eval('#events li', (lis) => lis.map((li) => li.textContent)).catch(() => []);
        say('page event list:\n  ' + list.filter((l) => !l.startsWith('onLog')).slice(-60).join('\n  '));
      }
    }
    if (baresip) { say('baresip events: ' + baresip.eventTypes().join(' ') + '\nbaresip log:\n' + baresip.log().split('\n').slice(-25).join('\n')); }
    if (kamailio) { say('kamailio:\n  ' + kamailio.lines().slice(-30).join('\n  ')); }
    if (service) { say('webphone-cli stderr:\n' + service.log().split('\n').slice(-40).join('\n')); }
  } finally {
    if (context) { await context.close().catch(() => {}); }
    if (service) { await stopChild(service.child); }
    if (server) { server.closeAllConnections?.(); server.close(); }
    if (baresip) { await baresip.stop(); }
    if (kamailio) { await kamailio.stop(); }
    rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main();
