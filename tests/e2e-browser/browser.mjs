// Browser end-to-end test (helpers in lib.mjs; the test with SIP peers is techdemo.mjs):
// Debian's Chromium (driven by playwright-core) loads ui/samples/minimal from a local static
// server and talks to `webphone-cli --serve` through ui/webphone_api.js's WebSocket transport.
//
// Scenarios:
//   1. page from the allowed origin: onLoaded/onStart, call "echo" connects, hang up -> idle;
//   2. the same page from another origin (another static port, not allowed): the refusal is
//      shown through onDisplay/onRegisterFailed and the page never loads the phone.
// Screenshots go to $E2E_OUT (target/e2e-browser). Started by run.sh, which provides
// E2E_CLI (the webphone-cli binary), E2E_CHROMIUM and E2E_OUT. Everything this script starts
// (static servers, webphone-cli, Chromium) is stopped by itself, by handle or pid.
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, OUT, CHROMIUM, CHROMIUM_FLAGS, TIMEOUT, say, staticServer, startService, stopChild, shot, watchConsole } from './lib.mjs';

async function main() {
  mkdirSync(OUT, { recursive: true });
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'webphone-e2e-browser-'));
  let allowedServer = null;
  let otherServer = null;
  let service = null;
  let context = null;
  let failed = false;
  try {
    allowedServer = await staticServer();
    otherServer = await staticServer();
    const allowedOrigin = `http://127.0.0.1:${allowedServer.address().port}`;
    const otherOrigin = `http://127.0.0.1:${otherServer.address().port}`;
    service = await startService(allowedOrigin);
    say(`static ui/ at ${allowedOrigin} (allowed) and ${otherOrigin} (not allowed); service ws://127.0.0.1:${service.port}`);

    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 480, height: 720 },
    });
    say(`Chromium ${context.browser() ? context.browser().version() : '(persistent context)'} started`);

    // ---- 1. allowed page: load, start, echo call, hang up
    const page = context.pages()[0] || await context.newPage();
    watchConsole(page, 'allowed page');
    const url = `${allowedOrigin}/samples/minimal/index.html?wp_serviceport=${service.port}`;
    await page.goto(url);
    await page.waitForSelector('body[data-loaded="1"][data-started="1"]', { timeout: TIMEOUT });
    // onLoaded and onStart were delivered (a late registrant gets them replayed once fired).
    const lifecycle = await page.evaluate(() => Promise.all([
      new Promise((r) => window.webphone_api.onLoaded(() => r('onLoaded'))),
      new Promise((r) => window.webphone_api.onStart(() => r('onStart'))),
    ]));
    if (lifecycle.join() !== 'onLoaded,onStart') { throw new Error('lifecycle callbacks: ' + lifecycle); }
    say('allowed page: onLoaded and onStart fired');
    await shot(page, '1-loaded.png');

    await page.fill('#number', 'echo');
    await page.click('#call');
    await page.waitForSelector('body[data-incall="1"][data-callstate="callConnected"]', { timeout: TIMEOUT });
    const status = await page.textContent('#status');
    say(`allowed page: echo call connected (status "${status}")`);
    await shot(page, '2-echo-connected.png');

    await page.click('#hangup');
    await page.waitForSelector('body[data-incall="0"][data-callstate="callDisconnected"]', { timeout: TIMEOUT });
    await page.waitForFunction(() => document.getElementById('hangup').disabled === true, null, { timeout: TIMEOUT });
    say('allowed page: hung up, back to idle');
    await shot(page, '3-idle-after-hangup.png');

    // ---- 2. the same page from an origin the service does not allow
    const other = await context.newPage();
    watchConsole(other, 'refused page');
    await other.goto(`${otherOrigin}/samples/minimal/index.html?wp_serviceport=${service.port}`);
    await other.waitForFunction((origin) => {
      const m = document.getElementById('message');
      return m && !m.hidden && m.textContent.includes('does not accept pages from ' + origin);
    }, otherOrigin, { timeout: TIMEOUT });
    const message = await other.textContent('#message');
    const loaded = await other.getAttribute('body', 'data-loaded');
    if (loaded !== '0') { throw new Error('the refused page loaded the phone'); }
    if (!message.includes(`--allow-origin ${otherOrigin}`)) { throw new Error('refusal text lacks the fix: ' + message); }
    say(`refused page: "${message}"`);
    await shot(other, '4-refused-origin.png');
    if (!service.log().includes('refused a connection from a page that is not allowed')) {
      throw new Error('the service did not log the refusal');
    }
    say('PASS');
  } catch (e) {
    failed = true;
    say(`FAIL: ${e && e.stack ? e.stack : e}`);
    if (context) {
      for (const [i, p] of context.pages().entries()) {
        await p.screenshot({ path: path.join(OUT, `failure-${i}.png`), fullPage: true }).catch(() => {});
      }
    }
    if (service) { say('webphone-cli stderr:\n' + service.log()); }
  } finally {
    if (context) { await context.close().catch(() => {}); }
    if (service) { await stopChild(service.child); }
    for (const s of [allowedServer, otherServer]) { if (s) { s.closeAllConnections?.(); s.close(); } }
    rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main();
