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
