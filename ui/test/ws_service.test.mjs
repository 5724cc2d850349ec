// The facade's WebSocket transport against the real local service: the test starts
// `webphone-cli --serve 127.0.0.1:0` (target/debug/webphone-cli, or $WEBPHONE_CLI; build it
// first with `cargo build -p webphone-cli`) and loads ui/webphone_api.js as a page from an
// allowed and from a refused origin.
//   node --test ui/test/
// Without the binary the tests skip loudly; with CI=true that is a failure.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadFacade, until, sleep } from './load_facade.mjs';
import { webSocketClass } from './mini_websocket.mjs';

const CLI = process.env.WEBPHONE_CLI ||
  fileURLToPath(new URL('../../target/debug/webphone-cli', import.meta.url));
const PAGE = 'http://127.0.0.1:8123';
const OTHER_PAGE = 'http://127.0.0.1:8124';

const missing = !(statSync(CLI, { throwIfNoEntry: false })?.isFile());
if (missing) {
  const msg = `webphone-cli not found at ${CLI} (cargo build -p webphone-cli)`;
  if (process.env.CI === 'true') {
    test('webphone-cli is required when CI=true', () => { assert.fail(msg); });
  } else {
    console.log('='.repeat(70) + `\nSKIPPED: ${msg}\n` + '='.repeat(70));
  }
}

const started = [];
after(() => { for (const s of started) { s.stop(); } });

// Starts the service; resolves { port, stop, exited } once it reports its address.
function startService(extra = [], addr = '127.0.0.1:0') {
  const child = spawn(CLI, ['--serve', addr, '--allow-origin', PAGE,
    '-p', 'audiodevicein=null', '-p', 'audiodeviceout=null', ...extra],
  { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  let stderr = '';
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const svc = {
    child,
    exited,
    stop() { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGTERM'); } return exited; },
  };
  started.push(svc);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no address on stderr: ' + stderr)), 10000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /serving ws:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m && svc.port === undefined) { clearTimeout(timer); svc.port = Number(m[1]); resolve(svc); }
    });
    child.on('exit', (code) => reject(new Error(`webphone-cli exited (${code}): ${stderr}`)));
  });
}

// Loads the facade as a page from `origin` talking to the service on `port`.
function openPage(origin, port) {
  const sockets = [];
  const Base = webSocketClass(origin);
  class Tracked extends Base { constructor(url) { super(url); sockets.push(this); } }
  const page = loadFacade({
    WebSocket: Tracked,
    location: { search: `?wp_serviceport=${port}`, origin },
  });
  const seen = { loaded: 0, start: 0, display: [], regFailed: [], calls: [], events: [], cdr: [] };
  const { api } = page;
  api.onLoaded(() => { seen.loaded++; });
  api.onStart(() => { seen.start++; });
  api.onDisplay((m, t) => seen.display.push([m, t]));
  api.onRegisterFailed((m) => seen.regFailed.push(m));
  api.onCallStateChange((...a) => seen.calls.push(a));
  api.onEvents((t) => seen.events.push(t));
  api.onCdr((...a) => seen.cdr.push(a));
  const close = () => { page.dispose(); for (const s of sockets) { s.close(); } };
  return { ...page, seen, sockets, close };
}

test('a page from an allowed origin loads, starts, calls echo and hangs up', { skip: missing }, async () => {
  const svc = await startService(['-p', 'password=hunter2']);
  const page = openPage(PAGE, svc.port);
  const { api, seen } = page;
  try {
    await until(() => seen.start === 1, 5000, 'onStart');
    assert.equal(seen.loaded, 1);
    assert.deepEqual(seen.display, []);
    // The original's synchronous answers: plain values, already current inside the handler.
    const inHandler = [];
    api.onCallStateChange((ev) => inHandler.push([ev, api.isincall(), api.getline()]));
    assert.equal(api.isincall(), false);
    assert.equal(api.getparameter('password'), '<redacted>');
    await api.setparameter('loglevel', '3'); // the call's events are logged (getlogs below)
    // The service sends an answer after the events the call caused: the copy is current.
    await api.addcontact('Ann Example', '1002|1003', 'ann@example.org', '', '', '');
    assert.equal(api.listcontacts(), await api.engine.listcontacts());
    assert.match(api.listcontacts(), /^Ann Example\t1002\|1003\t0\tann@example\.org/);
    assert.equal(api.getcontact('ann example'), await api.engine.getcontact('ann example'));
    assert.equal(api.getcontact('', '1003'), api.getcontact('Ann Example'));
    assert.equal(api.getcontact('nobody'), null);
    await api.delcontact('Ann Example');
    assert.equal(api.listcontacts(), null);
    await api.call('echo');
    await until(() => seen.calls.some((c) => c[0] === 'callConnected'), 5000, 'callConnected');
    assert.equal(api.state.incall, true);
    assert.ok(seen.events.some((t) => t.startsWith('STATUS,1,CallConnect,echo')), seen.events.join('\n'));
    assert.deepEqual(inHandler.find((c) => c[0] === 'callConnected'), ['callConnected', true, 1]);
    assert.equal(await api.engine.isincall(), true);
    assert.equal(api.getlinedetails(), await api.engine.getlinedetails(), 'the copy says what the engine says');
    assert.match(api.getlinedetails(), /^LINEDETAILS,1,InCall,/);
    // Secrets stay in the engine.
    assert.equal(await api.engine.getparameter('password'), '<redacted>');
    await api.hangup();
    await until(() => seen.calls.some((c) => c[0] === 'callDisconnected'), 5000, 'callDisconnected');
    await until(() => !api.state.incall, 5000, 'idle');
    assert.equal(api.isincall(), false);
    await until(() => seen.events.some((t) => t.startsWith('CDR,')), 5000, 'CDR');
    const engineLogs = await api.engine.getlogs();
    assert.ok(engineLogs.length > 0);
    await until(() => api.getlogs().startsWith(engineLogs), 5000, 'getlogs from the copy');
    // Engine errors reach the page as rejected promises.
    await assert.rejects(api.dtmf(''), /^Error: dtmf: /);
  } finally {
    page.close();
    await svc.stop();
  }
});

test('a page from an origin the service does not allow gets the refusal through onDisplay and onRegisterFailed', { skip: missing }, async () => {
  const svc = await startService();
  const page = openPage(OTHER_PAGE, svc.port);
  const { seen } = page;
  try {
    await until(() => seen.regFailed.length === 1, 5000, 'onRegisterFailed');
    assert.equal(seen.display.length, 1);
    const [message, title] = seen.display[0];
    assert.equal(title, 'Error');
    assert.equal(seen.regFailed[0], message);
    assert.match(message, new RegExp(`ws://127\\.0\\.0\\.1:${svc.port}`));
    assert.match(message, /--allow-origin http:\/\/127\.0\.0\.1:8124/);
    await sleep(1200); // a retry or two: still refused, reported once, never loaded
    assert.equal(seen.loaded, 0);
    assert.equal(seen.display.length, 1);
    assert.ok(page.sockets.length >= 2, 'the facade retried');
  } finally {
    page.close();
    await svc.stop();
  }
});

test('the facade reconnects when the service comes back on the same port', { skip: missing }, async () => {
  const first = await startService();
  const page = openPage(PAGE, first.port);
  const { api, seen } = page;
  try {
    await until(() => seen.start === 1, 5000, 'onStart');
    assert.equal(await first.stop(), 0, 'SIGTERM stops the serving CLI cleanly');
    await until(() => seen.display.some(([m]) => /lost; reconnecting/.test(m)), 5000, 'lost report');
    await assert.rejects(api.engine.getstatus(), /no connection to the phone service/);
    const second = await startService([], `127.0.0.1:${first.port}`);
    await until(() => page.sockets.at(-1).readyState === 1, 20000, 'reconnected');
    assert.equal(typeof (await api.engine.getstatus()), 'string');
    await second.stop();
  } finally {
    page.close();
  }
});

test('a page loaded while the engine is in a call (a reload) sees the call; a replaced service is noticed', { skip: missing }, async () => {
  const svc = await startService();
  const first = openPage(PAGE, svc.port);
  let second = null;
  try {
    await until(() => first.seen.start === 1, 5000, 'onStart (first page)');
    await first.api.call('echo');
    await until(() => first.seen.calls.some((c) => c[0] === 'callConnected'), 5000, 'callConnected');
    first.close(); // the page goes away; the engine keeps the call

    second = openPage(PAGE, svc.port);
    const { api, seen } = second;
    let atLoad = null;
    api.onLoaded(() => { atLoad = { incall: api.state.incall, line: api.state.line, status: api.state.status }; });
    await until(() => seen.start === 1, 5000, 'onStart (second page)');
    assert.equal(seen.loaded, 1);
    assert.equal(atLoad.incall, true, 'state rebuilt before onLoaded: ' + JSON.stringify(atLoad));
    assert.equal(atLoad.line, 1);
    assert.match(atLoad.status, /^In Call/);
    assert.equal(api.state.lines['1'].peer, 'echo');
    assert.equal(api.isstarted, 1);
    // `start` on the running engine sent the STATUS lines again (for skins that parse them).
    await until(() => seen.events.some((t) => /^STATUS,1,InCall,echo/m.test(t)), 5000, 'STATUS re-sent');
    await api.hangup();
    await until(() => !api.state.incall, 5000, 'idle');
    assert.deepEqual(Object.keys(api.state.lines), []);

    // The service is replaced by a fresh one on the same port while a call runs: after the
    // reconnect the page asks the new engine and forgets the call it no longer has.
    await api.call('echo');
    await until(() => api.state.incall, 5000, 'second call');
    const port = svc.port;
    await svc.stop();
    const again = await startService([], `127.0.0.1:${port}`);
    const sockets = second.sockets;
    await until(() => sockets.at(-1).readyState === 1, 20000, 'reconnected');
    await until(() => !api.state.incall && api.state.started, 5000, 'state of the new engine: ' + JSON.stringify(api.state));
    assert.deepEqual(Object.keys(api.state.lines), []);
    assert.equal(seen.start, 1, 'the page had started; onStart is not repeated');
    await api.call('echo');
    await until(() => api.state.incall, 5000, 'a call on the new engine');
    await api.hangup();
    await again.stop();
  } finally {
    first.close();
    if (second) { second.close(); }
    await svc.stop();
  }
});
