// Browser end-to-end test of ui/samples/click2call with real SIP peers: the service
// (webphone-cli --serve) holds the account (1001 at Kamailio, given with -p as a deployment
// would), the page gets the number from ?wp_callto=1002, the button calls baresip 1002
// (auto-answer) and hangs up. Screenshots: $E2E_OUT/click2call-*.png. Without kamailio/baresip it
// skips loudly (CI=true: failure).
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { OUT, CHROMIUM, CHROMIUM_FLAGS, TIMEOUT, say, staticServer, startService, stopChild, shot, watchConsole } from './lib.mjs';
import { requirePeers, startKamailio, startBaresip } from '../e2e-peers/peers.mjs';

requirePeers(['kamailio', 'baresip'], 'tests/e2e-browser/click2call.mjs');

async function main() {
  mkdirSync(OUT, { recursive: true });
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-c2c-'));
  let server = null;
  let service = null;
  let context = null;
  let kamailio = null;
  let bob = null;
  let failed = false;
  try {
    kamailio = await startKamailio();
    bob = await startBaresip({ user: '1002', kamailio, answer: 'auto' });
    server = await staticServer();
    const origin = `http://127.0.0.1:${server.address().port}`;
    service = await startService(origin, ['-p', `serveraddress=${kamailio.addr}`, '-p', 'username=1001', '-p', 'password=pass1001']);
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 800, height: 400 },
    });
    const page = context.pages()[0] || await context.newPage();
    watchConsole(page, 'click2call');
    await page.goto(`${origin}/samples/click2call/index.html?wp_serviceport=${service.port}&wp_callto=1002`);
    await page.waitForSelector('#c2c-button:not([disabled])', { timeout: TIMEOUT });
    await kamailio.waitLine(['REGISTERED 1001']);
    await shot(page, 'click2call-1-ready.png');

    await page.click('#c2c-button');
    await bob.waitEvent('CALL_ESTABLISHED');
    await page.waitForSelector('#c2c[data-state="incall"]', { timeout: TIMEOUT });
    say(`click2call: the button called 1002 (wp_callto), baresip answered; button "${await page.textContent('#c2c-button')}", status "${await page.textContent('#c2c-status')}"`);
    await shot(page, 'click2call-2-in-call.png');

    await page.click('#c2c-button');
    await bob.waitEvent('CALL_CLOSED');
    await page.waitForSelector('#c2c[data-state="idle"]', { timeout: TIMEOUT });
    say(`click2call: hung up from the button; baresip CALL_CLOSED; status "${await page.textContent('#c2c-status')}"`);
    say('PASS');
  } catch (e) {
    failed = true;
    say(`FAIL: ${e && e.stack ? e.stack : e}`);
    if (context) {
      for (const [i, p] of context.pages().entries()) {
        await p.screenshot({ path: path.join(OUT, `click2call-failure-${i}.png`), fullPage: true }).catch(() => {});
      }
    }
    if (bob) { say(`baresip events: ${bob.eventTypes().join(' ')}`); }
    if (kamailio) { say('kamailio:\n  ' + kamailio.lines().slice(-20).join('\n  ')); }
    if (service) { say('webphone-cli stderr:\n' + service.log().split('\n').slice(-30).join('\n')); }
  } finally {
    if (context) { await context.close().catch(() => {}); }
    if (service) { await stopChild(service.child); }
    if (server) { server.closeAllConnections?.(); server.close(); }
    if (bob) { await bob.stop(); }
    if (kamailio) { await kamailio.stop(); }
    rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main();
