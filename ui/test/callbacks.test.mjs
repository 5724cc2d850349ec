// Every callback of the catalog (spec/events.tsv) can be registered on webphone_api and gets the
// engine's event with its arguments in order; the documentation's other spellings of
// onBLFStateChange reach the same handlers; a throwing handler does not stop the others.
//   node --test ui/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFacade, until } from './load_facade.mjs';

const EVENTS = ['onLoaded', 'onStart', 'onRegistered', 'onRegisterFailed', 'onUnRegistered', 'onCallStateChange',
  'onPresenceStateChange', 'onBLFStateChange', 'onChat', 'onDTMF', 'onCdr', 'onDisplay', 'onLog', 'onEvents'];

function page() {
  let listener = null;
  const bridge = {
    core: { invoke: (cmd, p) => Promise.resolve(p.fn === 'getstatus' ? 'Registered' : p.fn === 'getline' ? 0 : null) },
    event: { listen: (name, cb) => { listener = cb; return Promise.resolve(() => {}); } },
  };
  const loaded = loadFacade({ __TAURI__: bridge, location: { search: '' }, document: { readyState: 'complete', cookie: '' } });
  return { ...loaded, emit: (payload) => listener({ event: 'webphone', payload }) };
}

test('every catalog callback is a registration function', () => {
  const p = page();
  for (const name of EVENTS) { assert.equal(typeof p.api[name], 'function', name); }
  p.dispose();
});

test('engine events reach their callbacks with the arguments in order', async () => {
  const p = page();
  const { api, emit } = p;
  await until(() => api.state.loaded, 2000, 'onLoaded');
  const got = [];
  for (const name of ['onPresenceStateChange', 'onBLFStateChange', 'onChat', 'onDTMF', 'onCdr', 'onCallStateChange']) {
    api[name]((...a) => got.push([name, ...a]));
  }
  api.onBlfStateChange((...a) => got.push(['alias1', ...a]));
  api.onBLFStateChage((...a) => got.push(['alias2', ...a]));
  api.onChat(() => { throw new Error('page bug'); });
  emit({ ev: 'onPresenceStateChange', args: ['1002', 'Available', 'Bob', 'bob@example.org'] });
  emit({ ev: 'onBLFStateChange', args: ['1003', 'initiator', 'confirmed', 'cid-1'] });
  emit({ ev: 'onChat', args: ['1002', 'hello <b>there</b>', 1] });
  emit({ ev: 'onDTMF', args: ['5', 1] });
  emit({ ev: 'onCdr', args: ['1001', '1002', 1200, 5000, 1, 'Bob', 'BYE', 1] });
  emit({ ev: 'onCallStateChange', args: ['callConnected', 1, '1002', 'Bob', 1, 'cid-2'] });
  assert.deepEqual(JSON.parse(JSON.stringify(got)), [
    ['onPresenceStateChange', '1002', 'Available', 'Bob', 'bob@example.org'],
    ['onBLFStateChange', '1003', 'initiator', 'confirmed', 'cid-1'],
    ['alias1', '1003', 'initiator', 'confirmed', 'cid-1'],
    ['alias2', '1003', 'initiator', 'confirmed', 'cid-1'],
    ['onChat', '1002', 'hello <b>there</b>', 1],
    ['onDTMF', '5', 1],
    ['onCdr', '1001', '1002', 1200, 5000, 1, 'Bob', 'BYE', 1],
    ['onCallStateChange', 'callConnected', 1, '1002', 'Bob', 1, 'cid-2'],
  ]);
  assert.ok(p.logs.some((l) => l.includes('onChat callback threw')), 'the throwing handler is logged');
  p.dispose();
});

test('logtoconsole: engine LOG lines reach the console unless it is false; EVENT lines always', async () => {
  const p = page();
  const { api, emit } = p;
  await until(() => api.state.loaded, 2000, 'onLoaded');
  emit({ ev: 'notification', text: 'LOG,EVENT,registering' });
  emit({ ev: 'notification', text: 'EVENT,WARNING,Check your microphone!' });
  assert.ok(p.logs.includes('LOG,EVENT,registering'), 'default true: LOG shown');
  assert.ok(p.logs.includes('EVENT,WARNING,Check your microphone!'));
  await api.setparameter('logtoconsole', 'false');
  const before = p.logs.length;
  emit({ ev: 'notification', text: 'LOG,EVENT,registered' });
  emit({ ev: 'notification', text: 'EVENT,ERROR,Registration failed' });
  assert.deepEqual(p.logs.slice(before), ['EVENT,ERROR,Registration failed'], 'false: only the user-facing line');
  await api.setparameter('logtoconsole', '1');
  emit({ ev: 'notification', text: 'LOG,WARNING,again' });
  assert.ok(p.logs.includes('LOG,WARNING,again'));
  p.dispose();
});

test('logtoconsole=false in the static parameters silences this file\'s own log lines too', async () => {
  let listener = null;
  const bridge = {
    core: { invoke: () => Promise.resolve(null) },
    event: { listen: (name, cb) => { listener = cb; return Promise.resolve(() => {}); } },
  };
  const p = loadFacade({ __TAURI__: bridge, location: { search: '' }, document: { readyState: 'complete', cookie: '' } },
    { staticParameters: { logtoconsole: 'false' } });
  await until(() => p.api.state.loaded, 2000, 'onLoaded');
  const lines = [];
  p.api.onLog((l) => lines.push(l));
  await p.api.engine.getlogs(() => {}, () => {}); // the second function is ignored, with a log line
  listener({ event: 'webphone', payload: { ev: 'notification', text: 'LOG,EVENT,quiet' } });
  assert.ok(lines.some((l) => l.includes('ignoring a function argument')), 'onLog still gets it: ' + lines);
  assert.ok(!p.logs.some((l) => l.includes('ignoring a function argument')), 'not on the console');
  assert.ok(!p.logs.includes('LOG,EVENT,quiet'));
  p.dispose();
});
