// Transport selection and the WebSocket transport's behaviour, with a scripted WebSocket
// stand-in (no service needed). The real service is exercised in ws_service.test.mjs.
//   node --test ui/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFacade, until, sleep } from './load_facade.mjs';

// A scripted WebSocket class. `plan()` decides for each new socket: 'refuse' or 'open'.
// Requests are answered by `engine(fn, args)`; `sockets` lists every socket created.
function fakeWebSocketClass({ plan = () => 'open', engine = () => null } = {}) {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
      const what = plan(sockets.length);
      setTimeout(() => {
        if (what === 'open') {
          this.readyState = 1;
          this.onopen && this.onopen({});
        } else {
          this.readyState = 3;
          this.onerror && this.onerror({});
          this.onclose && this.onclose({ code: 1006 });
        }
      }, 1);
    }
    send(text) {
      const req = JSON.parse(text);
      this.sent.push(req);
      Promise.resolve().then(() => engine(req.fn, req.args)).then(
        (ok) => this.push({ id: req.id, ok: ok === undefined ? null : ok }),
        (e) => this.push({ id: req.id, err: e.message }));
    }
    push(obj) { if (this.readyState === 1) { this.onmessage({ data: JSON.stringify(obj) }); } }
    drop() { this.readyState = 3; this.onclose({ code: 1006 }); }
    close() { this.drop(); }
  }
  return { FakeWebSocket, sockets };
}

const engineStarting = (fn) => (fn === 'getparameter' ? '' : null);

test('inside the desktop app the Tauri transport is used even when WebSocket exists', async () => {
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const invoked = [];
  const { api } = loadFacade({
    WebSocket: FakeWebSocket,
    __TAURI__: {
      core: { invoke: (cmd, p) => { invoked.push(p.fn); return Promise.resolve(p.fn === 'getparameter' ? '' : null); } },
      event: { listen: () => Promise.resolve(() => {}) },
    },
  });
  let loaded = false;
  api.onLoaded(() => { loaded = true; });
  await until(() => loaded, 2000, 'onLoaded');
  assert.equal(sockets.length, 0, 'no WebSocket opened');
  assert.ok(invoked.includes('getparameter'));
});

test('in a browser the facade connects to the local service on the default port 18520', async () => {
  const { FakeWebSocket, sockets } = fakeWebSocketClass({ engine: engineStarting });
  const { api } = loadFacade({ WebSocket: FakeWebSocket, location: { search: '', origin: 'http://127.0.0.1:8080' } });
  const seen = [];
  api.onLoaded(() => seen.push('loaded'));
  api.onStart(() => seen.push('start'));
  const calls = [];
  api.onCallStateChange((...a) => calls.push(a));
  await until(() => seen.includes('start'), 2000, 'onStart');
  assert.deepEqual(seen, ['loaded', 'start']);
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0].url, 'ws://127.0.0.1:18520');
  // Requests are {id, fn, args} with string arguments and distinct ids.
  await api.call(1002);
  const sent = sockets[0].sent;
  assert.deepEqual(sent.map((r) => r.fn), ['syncstate', 'getstatus', 'getparameter', 'start', 'call']);
  assert.deepEqual(sent[4].args, ['1002']);
  assert.equal(new Set(sent.map((r) => r.id)).size, sent.length);
  // Engine events on the socket reach the callbacks and the state cache.
  sockets[0].push({ ev: 'onCallStateChange', args: ['callConnected', 1, '1002', '', 1, ''] });
  assert.equal(calls.length, 1);
  assert.equal(api.state.incall, true);
});

test('an engine error reply rejects the promise with its message', async () => {
  const { FakeWebSocket } = fakeWebSocketClass({
    engine: (fn) => { if (fn === 'dtmf') { throw new Error('invalid DTMF digit x'); } return engineStarting(fn); },
  });
  const { api } = loadFacade({ WebSocket: FakeWebSocket });
  let started = false;
  api.onStart(() => { started = true; });
  await until(() => started, 2000, 'onStart');
  await assert.rejects(api.dtmf('x'), { message: 'dtmf: invalid DTMF digit x' });
});

test('the service port comes from wp_serviceport in the URL, then the static parameters', async () => {
  const a = fakeWebSocketClass({ engine: engineStarting });
  const loadedA = loadFacade({ WebSocket: a.FakeWebSocket, location: { search: '?x=1&WP_ServicePort=4321' } },
    { staticParameters: { serviceport: 5555, displayname: 'Desk' } });
  await until(() => loadedA.api.state.started, 2000, 'start A');
  assert.equal(a.sockets[0].url, 'ws://127.0.0.1:4321');
  // serviceport is the facade's own setting: it is not sent to the engine; others are.
  const setp = a.sockets[0].sent.filter((r) => r.fn === 'setparameter').map((r) => r.args);
  assert.deepEqual(setp, [['displayname', 'Desk', 'static']]);

  const b = fakeWebSocketClass({ engine: engineStarting });
  loadFacade({ WebSocket: b.FakeWebSocket, location: { search: '' } }, { staticParameters: { serviceport: '5555' } });
  await until(() => b.sockets.length > 0, 2000, 'socket B');
  assert.equal(b.sockets[0].url, 'ws://127.0.0.1:5555');

  const c = fakeWebSocketClass({ engine: engineStarting });
  const loadedC = loadFacade({ WebSocket: c.FakeWebSocket, location: { search: '?wp_serviceport=70000' } });
  await until(() => c.sockets.length > 0, 2000, 'socket C');
  assert.equal(c.sockets[0].url, 'ws://127.0.0.1:18520', 'an invalid port falls back to the default');
  assert.ok(loadedC.logs.some((l) => l.includes('invalid serviceport: 70000')), loadedC.logs.join('\n'));
});

test('a refused connection is reported once and retried with back-off until the service is up', async () => {
  const { FakeWebSocket, sockets } = fakeWebSocketClass({
    plan: (n) => (n <= 3 ? 'refuse' : 'open'),
    engine: engineStarting,
  });
  const { api } = loadFacade({ WebSocket: FakeWebSocket, location: { search: '', origin: 'http://app.example:8080' } });
  const displays = [];
  const failures = [];
  let loaded = false;
  api.onDisplay((m, t) => displays.push([m, t]));
  api.onRegisterFailed((m) => failures.push(m));
  api.onLoaded(() => { loaded = true; });
  const t0 = Date.now();
  await until(() => loaded, 6000, 'onLoaded after the service came up');
  const elapsed = Date.now() - t0;
  assert.equal(sockets.length, 4);
  // Back-off: 0.5 s, 1 s, 2 s between the attempts.
  assert.ok(elapsed >= 3400, `retries waited ${elapsed} ms`);
  assert.equal(displays.length, 1, JSON.stringify(displays));
  assert.equal(failures.length, 1);
  const [message, title] = displays[0];
  assert.equal(title, 'Error');
  assert.equal(failures[0], message);
  assert.match(message, /ws:\/\/127\.0\.0\.1:18520/);
  assert.match(message, /--allow-origin http:\/\/app\.example:8080/);
  assert.equal(api.state.registered, false);
});

test('a refusal that arrives before a deferred script ran still reaches that script', async () => {
  // The page's own script is `defer`: it runs while readyState is already "interactive", before
  // DOMContentLoaded. A refusal seen in that window must wait for DOMContentLoaded.
  const { FakeWebSocket, sockets } = fakeWebSocketClass({ plan: () => 'refuse' });
  const listeners = {};
  const document = {
    readyState: 'interactive',
    addEventListener: (name, fn) => { (listeners[name] = listeners[name] || []).push(fn); },
  };
  const { api, dispose } = loadFacade({ WebSocket: FakeWebSocket, document, location: { search: '', origin: 'http://127.0.0.1:9' } });
  try {
    await until(() => sockets.length > 0 && sockets[0].readyState === 3, 2000, 'the first refusal');
    await sleep(20);
    const displays = [];
    api.onDisplay((m) => displays.push(m)); // the deferred script registers late
    (listeners.DOMContentLoaded || []).forEach((fn) => fn());
    await until(() => displays.length === 1, 2000, 'onDisplay after DOMContentLoaded');
    assert.match(displays[0], /does not accept pages from http:\/\/127\.0\.0\.1:9/);
  } finally {
    dispose();
  }
});

test('a dropped connection fails pending requests, is reported and reconnects', async () => {
  let hold = false;
  const { FakeWebSocket, sockets } = fakeWebSocketClass({
    engine: (fn) => (fn === 'getstatus' && hold ? new Promise(() => {}) : engineStarting(fn)),
  });
  const { api } = loadFacade({ WebSocket: FakeWebSocket });
  const displays = [];
  api.onDisplay((m) => displays.push(m));
  await until(() => api.state.started, 2000, 'start');
  hold = true;
  const pendingStatus = api.engine.getstatus();
  await sleep(5);
  sockets[0].drop();
  await assert.rejects(pendingStatus, /getstatus: Connection to the phone service .* lost/);
  await until(() => displays.length === 1, 1000, 'onDisplay');
  assert.match(displays[0], /lost; reconnecting/);
  // While disconnected, requests fail at once with a clear message.
  await assert.rejects(api.engine.getparameter('username'), /no connection to the phone service/);
  await until(() => sockets.length === 2 && sockets[1].readyState === 1, 3000, 'reconnect');
  hold = false;
  assert.equal(await api.engine.getstatus(), '', 'getstatus answers a string');
});

test('without Tauri and without WebSocket there is no transport and onDisplay says so', async () => {
  const { api } = loadFacade({});
  const displays = [];
  api.onDisplay((m) => displays.push(m));
  await until(() => displays.length > 0, 1000, 'onDisplay');
  assert.match(displays[0], /No connection to the phone engine/);
});
