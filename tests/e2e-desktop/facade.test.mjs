// Unit tests of ui/webphone_api.js with a fake Tauri bridge (node:test, no browser, no display).
//   node --test tests/e2e-desktop/facade.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const SOURCE = readFileSync(fileURLToPath(new URL('../../ui/webphone_api.js', import.meta.url)), 'utf8');

function deferred() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
async function settle() { for (let i = 0; i < 10; i++) { await tick(); } }

// Loads the facade into a fresh context. `engine(fn, args)` answers requests (return a value or
// throw to reject). Returns the page's window, the recorded requests and `emit` to push events.
function load(engine, { before } = {}) {
  const requests = [];
  let listener = null;
  const logs = [];
  const win = {
    console: { log: (m) => logs.push(m), error: (m) => logs.push(m) },
    setTimeout,
    Promise,
    document: { readyState: 'complete' },
    __TAURI__: {
      core: {
        invoke: (cmd, payload) => {
          assert.equal(cmd, 'api');
          requests.push([payload.fn, JSON.parse(JSON.stringify(payload.args))]); // copy out of the vm realm
          try { return Promise.resolve(engine(payload.fn, payload.args)); } catch (e) { return Promise.reject(e); }
        },
      },
      event: {
        listen: (name, cb) => {
          assert.equal(name, 'webphone');
          listener = cb;
          return Promise.resolve(() => {});
        },
      },
    },
  };
  win.window = win;
  vm.createContext(win);
  vm.runInContext(SOURCE, win);
  if (before) { before(win.webphone_api); }
  const emit = (payload) => listener({ event: 'webphone', payload });
  return { win, api: win.webphone_api, requests, emit, logs };
}

test('onLoaded, autostart and queueing until onStart', async () => {
  const startAnswer = deferred(); // the engine's answer to `start` arrives after its onStart event
  const { api, requests, emit } = load((fn) => {
    if (fn === 'getparameter') { return ''; }
    if (fn === 'start') { return startAnswer.promise; }
    return null;
  });
  const seen = [];
  api.onLoaded(() => seen.push('loaded'));
  api.onStart(() => seen.push('start'));
  const callDone = api.call(1002); // before onStart: queued
  await settle();
  assert.deepEqual(seen, ['loaded']);
  // getstatus first: an engine that is not running yet answers "" (or "Initializing").
  assert.deepEqual(requests.map((r) => r[0]), ['syncstate', 'getstatus', 'getparameter', 'start']);
  assert.deepEqual(requests[2][1], ['autostart']);

  emit({ ev: 'onStart', args: [] });
  assert.equal(await callDone, null);
  assert.deepEqual(seen, ['loaded', 'start']);
  assert.deepEqual(requests[4], ['call', ['1002']], 'queued call runs after onStart, number coerced to a string');
  assert.equal(api.state.started, true);

  // After the start, actions go straight through; optional trailing arguments are not sent.
  await api.hangup();
  await api.accept(-2);
  assert.deepEqual(requests.slice(5), [['hangup', []], ['accept', ['-2']]]);
  // Neither the late `start` answer nor a second onStart event fire the callbacks again.
  startAnswer.resolve(null);
  await settle();
  emit({ ev: 'onStart', args: [] });
  assert.deepEqual(seen, ['loaded', 'start']);
});

test('autostart=false waits; an action starts the engine implicitly; the start answer alone counts', async () => {
  const startAnswer = deferred();
  const { api, requests } = load((fn) => (fn === 'getparameter' ? 'false' : fn === 'start' ? startAnswer.promise : true));
  let started = 0;
  api.onStart(() => { started++; });
  await settle();
  assert.deepEqual(requests.map((r) => r[0]), ['syncstate', 'getstatus', 'getparameter']);
  const reg = api.register();
  await settle();
  assert.deepEqual(requests.map((r) => r[0]), ['syncstate', 'getstatus', 'getparameter', 'start']);
  // No onStart event (an engine that was already running, e.g. after a page reload).
  startAnswer.resolve(null);
  assert.equal(await reg, true);
  assert.equal(started, 1);
  assert.deepEqual(requests.map((r) => r[0]), ['syncstate', 'getstatus', 'getparameter', 'start', 'register']);
});

test('setparameter and getparameter coerce to strings and do not wait for start', async () => {
  const { api, requests } = load((fn, args) => (fn === 'getparameter' ? (args[0] === 'autostart' ? '0' : 'v') : null));
  await settle();
  await api.setparameter('register', 0);
  await api.setparameter('usecustomring', true);
  assert.equal(await api.engine.getparameter('username'), 'v');
  assert.deepEqual(requests.slice(3), [
    ['setparameter', ['register', '0']],
    ['setparameter', ['usecustomring', 'true']],
    ['getparameter', ['username']],
  ]);
});

test('engine errors reject with the function name and message; a failed start rejects queued actions', async () => {
  const { api } = load((fn) => {
    if (fn === 'getparameter') { throw 'unknown function'; }
    if (fn === 'start') { throw 'unknown function'; }
    return null;
  });
  const call = api.call('echo');
  await assert.rejects(call, /start: unknown function/);
  await settle();
  assert.equal(api.state.started, false);
  assert.equal(api.state.startError, 'start: unknown function');
  await assert.rejects(api.engine.getparameter('x'), /^Error: getparameter: unknown function$/);
});

test('callbacks: several registrations, exceptions caught and logged, late onLoaded still delivered', async () => {
  const { api, emit, logs } = load(() => 'false');
  const got = [];
  const logged = [];
  api.onRegisterFailed(() => { throw new Error('boom'); });
  api.onRegisterFailed((reason) => got.push(['a', reason]));
  api.onRegisterFailed((reason) => got.push(['b', reason]));
  api.onLog((line) => logged.push(line));
  api.onLog(() => { throw new Error('log handler broken'); });
  await settle();
  emit({ ev: 'onRegisterFailed', args: ['Authentication failed'] });
  assert.deepEqual(got, [['a', 'Authentication failed'], ['b', 'Authentication failed']]);
  assert.ok(logged.some((l) => /onRegisterFailed callback threw: Error: boom/.test(l)));
  assert.ok(logs.some((l) => /onLog callback threw/.test(l)), 'a broken onLog handler is reported on the console');
  api.onStart('not a function'); // ignored with a log line
  assert.ok(logged.some((l) => /not a function/.test(l)));

  let late = 0;
  api.onLoaded(() => { late++; });
  await settle();
  assert.equal(late, 1);
});

test('event stream: notifications, STATUS cache, registration and call state', async () => {
  const { api, emit } = load(() => 'false');
  const notes = [];
  const states = [];
  api.onEvents((n) => notes.push(n));
  api.onCallStateChange((...a) => states.push(a));
  await settle();

  emit({ ev: 'notification', text: 'START,api' });
  emit({ ev: 'notification', text: 'STATUS,-1,Registered,,1111,1,,,1,2,0,0,0,0,0\r\nSTATUS,1,Ready,,1111,1' });
  assert.deepEqual(notes, ['START,api', 'STATUS,-1,Registered,,1111,1,,,1,2,0,0,0,0,0\r\nSTATUS,1,Ready,,1111,1']);
  assert.equal(api.state.status, 'Registered');
  assert.equal(api.state.registered, true);
  assert.equal(api.state.incall, false);

  emit({ ev: 'onCallStateChange', args: ['callSetup', 1, 'echo', '', 1] });
  assert.equal(api.state.incall, true);
  emit({ ev: 'onCallStateChange', args: ['callConnected', 1, 'echo', '', 1] });
  emit({ ev: 'onCallStateChange', args: ['callDisconnected', 1, 'echo', '', 1] });
  assert.equal(api.state.incall, false);
  assert.equal(states.length, 3);
  assert.deepEqual(states[1], ['callConnected', 1, 'echo', '', 1]);

  emit({ ev: 'onUnRegistered', args: [] });
  assert.equal(api.state.registered, false);
  emit({ ev: 'onRegistered', args: [] });
  assert.equal(api.state.registered, true);
  emit({ ev: 'STATUS,-1,garbage' }); // unknown event names are ignored
  emit(null);
});

test('static parameters are applied before onLoaded', async () => {
  // The `parameters` object is exposed; entries added synchronously after load are applied.
  const { requests } = load(() => 'false', { before: (api) => { api.parameters.serveraddress = 'sip.example.org'; api.parameters.register = 0; } });
  await settle();
  assert.deepEqual(requests.slice(0, 2), [
    ['setparameter', ['serveraddress', 'sip.example.org', 'static']],
    ['setparameter', ['register', '0', 'static']],
  ]);
});

test('without a transport the page is told, and calls reject', async () => {
  const win = { console: { log() {}, error() {} }, setTimeout, Promise, document: { readyState: 'complete' } };
  win.window = win;
  vm.createContext(win);
  vm.runInContext(SOURCE, win);
  const shown = [];
  win.webphone_api.onDisplay((m, title) => shown.push([m, title]));
  await settle();
  assert.deepEqual(shown, [['No connection to the phone engine', 'Error']]);
  await assert.rejects(win.webphone_api.engine.getstatus(), /no connection to the phone engine/);
});

test('an action issued before onLoaded starts the engine after the load even with autostart off', async () => {
  const startAnswer = deferred();
  const { api, requests, emit } = load((fn) => (fn === 'getparameter' ? 'false' : fn === 'start' ? startAnswer.promise : null));
  const call = api.call('echo');
  await settle();
  assert.deepEqual(requests.map((r) => r[0]), ['syncstate', 'getstatus', 'getparameter', 'start']);
  emit({ ev: 'onStart', args: [] });
  await call;
  startAnswer.resolve(null);
  assert.deepEqual(requests[4], ['call', ['echo']]);
});

test('i18n/en.json carries every UI string of the minimal page, with the same English text', () => {
  const en = JSON.parse(readFileSync(new URL('../../i18n/en.json', import.meta.url), 'utf8'));
  const html = readFileSync(new URL('../../ui/samples/minimal/index.html', import.meta.url), 'utf8');
  const js = readFileSync(new URL('../../ui/samples/minimal/minimal.js', import.meta.url), 'utf8');
  const found = {};
  for (const m of html.matchAll(/<[^>]*\sdata-i18n="([^"]+)"[^>]*>([^<]*)</g)) { found[m[1]] = m[2].trim(); }
  for (const m of html.matchAll(/<[^>]*>/g)) {
    const tag = m[0];
    const ph = tag.match(/data-i18n-placeholder="([^"]+)"/);
    if (ph) { found[ph[1]] = tag.match(/\splaceholder="([^"]*)"/)[1]; }
    const al = tag.match(/data-i18n-aria-label="([^"]+)"/);
    if (al) { found[al[1]] = tag.match(/\saria-label="([^"]*)"/)[1]; }
  }
  const table = js.match(/var TEXT = (\{[\s\S]*?\});/)[1];
  for (const m of table.matchAll(/'([a-z_.]+)': '([^']*)'/g)) { found[m[1]] = m[2]; }
  assert.ok(Object.keys(found).length >= 20, 'the page strings were found');
  for (const [key, text] of Object.entries(found)) {
    assert.equal(en[key], text, `i18n/en.json "${key}"`);
  }
  // en.json is shared with the skins, the facade's display texts and other pages, which add
  // their own keys: only the minimal page's keys are checked here (present, same English).
});
