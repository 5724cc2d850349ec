// Browser end-to-end test of ui/samples/basic with real SIP peers: Debian's Chromium loads the
// basic sample; the page talks to `webphone-cli --serve`, registers as 1001 with Kamailio from its
// account form, and baresip 1002 (auto-answer) and 1003 (auto-answer, transfer target) are the
// far ends (tests/e2e-peers/peers.mjs).
//
// Scenario:
//   1. account form -> register(): the registration indicator turns on (Kamailio: REGISTERED 1001);
//   2. baresip 1002 calls: the incoming panel shows the caller, Reject -> baresip's call closes;
//   3. baresip 1002 calls again: Accept -> baresip sees it established; Hold and Mute toggle
//      (from the per-line STATUS hold/mute fields), keypad 7 -> DTMF 7 at baresip; Hang up;
//   4. the page calls 1002 and transfers it to 1003 (REFER): baresip 1003 gets the call.
// Screenshots: $E2E_OUT/basic-*.png. Without kamailio/baresip it skips loudly (CI=true: failure).
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { OUT, CHROMIUM, CHROMIUM_FLAGS, TIMEOUT, say, staticServer, startService, stopChild, shot, watchConsole } from './lib.mjs';
import { requirePeers, startKamailio, startBaresip } from '../e2e-peers/peers.mjs';

requirePeers(['kamailio', 'baresip'], 'tests/e2e-browser/basic.mjs');

async function main() {
  mkdirSync(OUT, { recursive: true });
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-basic-'));
  let server = null;
  let service = null;
  let context = null;
  let kamailio = null;
  const peers = [];
  let failed = false;
  try {
    kamailio = await startKamailio();
    // display name with HTML character references: shown as text, it stays as written
    const bob = await startBaresip({ user: '1002', kamailio, answer: 'auto', displayName: 'Bob &lt;i&gt;' });
    peers.push(bob);
    const carol = await startBaresip({ user: '1003', kamailio, answer: 'auto', toneHz: 440 });
    peers.push(carol);
    server = await staticServer();
    const origin = `http://127.0.0.1:${server.address().port}`;
    service = await startService(origin);
    say(`basic: kamailio ${kamailio.addr}, baresip 1002 and 1003 registered, service ws://127.0.0.1:${service.port}`);

    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 480, height: 900 },
    });
    const page = context.pages()[0] || await context.newPage();
    watchConsole(page, 'basic');
    await page.goto(`${origin}/samples/basic/index.html?wp_serviceport=${service.port}`);
    await page.waitForSelector('body[data-loaded="1"]', { timeout: TIMEOUT });

    // ---- 1. register from the account form
    await page.waitForSelector('#account[open]', { timeout: TIMEOUT });
    await page.fill('#server', kamailio.addr);
    await page.fill('#username', '1001');
    await page.fill('#password', 'pass1001');
    await page.click('#register');
    await page.waitForSelector('body[data-registered="1"]', { timeout: TIMEOUT });
    await kamailio.waitLine(['REGISTERED 1001']);
    say(`1. registered from the account form: "${await page.textContent('#reg')}"`);
    await shot(page, 'basic-1-registered.png');

    // ---- 2. incoming call rejected
    await bob.command(`dial ${kamailio.uriOf('1001')}`);
    await page.waitForSelector('#incoming:not([hidden])', { timeout: TIMEOUT });
    const caller = await page.textContent('#incoming-peer');
    if (caller !== 'Bob &lt;i&gt; (1002)') { throw new Error(`incoming panel shows "${caller}"`); }
    await shot(page, 'basic-2-incoming.png');
    await page.click('#reject');
    const closed = await bob.waitEvent('CALL_CLOSED');
    await page.waitForSelector('body[data-incall="0"]', { timeout: TIMEOUT });
    say(`2. incoming call from "${caller}" rejected; baresip: CALL_CLOSED(${closed.param})`);

    // ---- 3. incoming call accepted, hold, mute, DTMF, hang up
    await bob.command(`dial ${kamailio.uriOf('1001')}`);
    await page.waitForSelector('#incoming:not([hidden])', { timeout: TIMEOUT });
    await page.click('#accept');
    await bob.waitEvent('CALL_ESTABLISHED');
    await page.waitForSelector('#incall:not([hidden])', { timeout: TIMEOUT });
    await page.click('#hold');
    await page.waitForSelector('body[data-hold="1"]', { timeout: TIMEOUT });
    await page.click('#hold');
    await page.waitForSelector('body[data-hold="0"]', { timeout: TIMEOUT });
    await page.click('#mute');
    await page.waitForSelector('body[data-mute="1"]', { timeout: TIMEOUT });
    await shot(page, 'basic-3-in-call-muted.png');
    await page.click('#mute');
    await page.waitForSelector('body[data-mute="0"]', { timeout: TIMEOUT });
    await page.click('.keypad button[data-key="7"]');
    await bob.waitDtmf('7');
    say('3. accepted; hold/resume and mute/unmute shown from STATUS; keypad 7 arrived at baresip as DTMF');
    await page.click('#hangup');
    await bob.waitEventCount('CALL_CLOSED', 2);
    await page.waitForSelector('body[data-incall="0"]', { timeout: TIMEOUT });

    // ---- 4. outgoing call, blind transfer to 1003
    await page.fill('#number', '1002');
    await page.click('#call');
    await bob.waitEventCount('CALL_ESTABLISHED', 2);
    await page.waitForSelector('#incall:not([hidden])', { timeout: TIMEOUT });
    await page.fill('#transfer-to', kamailio.uriOf('1003'));
    await page.click('#transfer');
    const carolCall = await carol.waitEvent('CALL_ESTABLISHED');
    say(`4. call to 1002 transferred to 1003: baresip 1003 established a call with ${carolCall.peeruri || '?'}`);
    await page.waitForSelector('body[data-incall="0"]', { timeout: TIMEOUT });
    await shot(page, 'basic-4-after-transfer.png');
    say('PASS');
  } catch (e) {
    failed = true;
    say(`FAIL: ${e && e.stack ? e.stack : e}`);
    if (context) {
      for (const [i, p] of context.pages().entries()) {
        await p.screenshot({ path: path.join(OUT, `basic-failure-${i}.png`), fullPage: true }).catch(() => {});
      }
    }
    for (const b of peers) { say(`baresip ${b.user} events: ${b.eventTypes().join(' ')}`); }
    if (kamailio) { say('kamailio:\n  ' + kamailio.lines().slice(-25).join('\n  ')); }
    if (service) { say('webphone-cli stderr:\n' + service.log().split('\n').slice(-30).join('\n')); }
  } finally {
    if (context) { await context.close().catch(() => {}); }
    if (service) { await stopChild(service.child); }
    if (server) { server.closeAllConnections?.(); server.close(); }
    for (const b of peers) { await b.stop(); }
    if (kamailio) { await kamailio.stop(); }
    rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main();
