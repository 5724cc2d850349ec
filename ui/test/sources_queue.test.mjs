// The facade's parameter sources and its queue, with a scripted Tauri bridge:
// URL and cookie parsing edge cases, each value tagged with its source, and actions made before
// the engine started (before onLoaded, before onStart) kept in order, run after the start, and
// rejected with the start's error when it fails.
//   node --test ui/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFacade, until } from './load_facade.mjs';

// A scripted engine behind a Tauri bridge: engine(fn, args) answers (throw to fail).
function page(engine, { win = {}, staticParameters } = {}) {
  const requests = [];
  const bridge = {
    core: {
      invoke: (cmd, p) => {
        requests.push([p.fn, JSON.parse(JSON.stringify(p.args))]); // out of the page's realm
        return new Promise((resolve, reject) => setTimeout(() => {
          try { resolve(engine(p.fn, p.args)); } catch (e) { reject(e instanceof Error ? e.message : e); }
        }, 0));
      },
    },
    event: { listen: () => Promise.resolve(() => {}) },
  };
  return { ...loadFacade({ __TAURI__: bridge, ...win }, { staticParameters }), requests };
}

const setparameters = (p) => p.requests.filter((r) => r[0] === 'setparameter').map((r) => r[1]);

test('URL: wp_ names in any case, + and %XX decoded, repeated names in order, bad encodings skipped and logged', async () => {
  const p = page(() => null, {
    win: {
      location: { search: '?wp_a=1&WP_B=x+y%2Bz&wp_empty=&wp_novalue&wp_a=2&wp_bad=%E0%A4%A&wpx=3&wp_=4&notwp_c=5&wp_c%3Dd=e' },
      document: { readyState: 'complete', cookie: '' },
    },
  });
  await until(() => p.api.state.loaded, 2000, 'onLoaded');
  assert.deepEqual(setparameters(p), [
    ['a', '1', 'url'], ['B', 'x y+z', 'url'], ['empty', '', 'url'], ['novalue', '', 'url'], ['a', '2', 'url'],
    ['c=d', 'e', 'url'],
  ]);
  assert.ok(p.logs.some((l) => l.includes('ignoring a URL parameter that is not properly encoded: wp_bad=')), p.logs.join('\n'));
  p.dispose();
});

test('cookies: wp_ names, spaces trimmed, quotes removed, bad encodings kept as written, others ignored', async () => {
  const p = page(() => null, {
    win: {
      location: { search: '' },
      document: { readyState: 'complete', cookie: ' wp_a = 1 ;wp_b="two words";wp_c=100%;nocookie;session=1;Wp_D=%41%42;wp_e=' },
    },
  });
  await until(() => p.api.state.loaded, 2000, 'onLoaded');
  assert.deepEqual(setparameters(p), [
    ['a', '1', 'cookie'], ['b', 'two words', 'cookie'], ['c', '100%', 'cookie'], ['D', 'AB', 'cookie'], ['e', '', 'cookie'],
  ]);
  p.dispose();
});

test('static block: ucfg_ names and types go as written, tagged static; serviceport stays in the facade', async () => {
  const p = page(() => null, {
    staticParameters: { ucfg_aec: 2, autoaccept: true, serviceport: 18521, displayname: null },
    win: { location: { search: '' }, document: { readyState: 'complete', cookie: '' } },
  });
  await until(() => p.api.state.loaded, 2000, 'onLoaded');
  assert.deepEqual(setparameters(p), [['ucfg_aec', '2', 'static'], ['autoaccept', 'true', 'static'], ['displayname', '', 'static']]);
  p.dispose();
});

test('actions before onLoaded and before onStart run in order after the start, with their results', async () => {
  let up = false;
  const p = page((fn, args) => {
    if (fn === 'getstatus') { return up ? 'Ready' : 'Initializing'; }
    if (fn === 'getparameter') { return 'false'; } // autostart off: the queued actions start it
    if (fn === 'start') { up = true; return 'OK'; }
    if (fn === 'call') { return 1; }
    return `${fn}:${args.join('|')}`;
  }, { win: { location: { search: '' }, document: { readyState: 'loading', cookie: '', addEventListener: (ev, cb) => setTimeout(cb, 20) } } });
  const { api, requests } = p;
  // made while the page is still loading: nothing is sent before the start
  const results = [api.call(1002), api.dtmf(5), api.hold(1), api.hangup(true)];
  assert.equal(api.state.loaded, false);
  const all = await Promise.all(results);
  assert.deepEqual(all, [1, 'dtmf:5', 'hold:true', 'hangup:-2']);
  const fns = requests.map((r) => r[0]);
  const start = fns.indexOf('start');
  assert.ok(start > 0 && start < fns.indexOf('call'), fns.join());
  assert.deepEqual(fns.slice(fns.indexOf('call')), ['call', 'dtmf', 'hold', 'hangup']);
  assert.equal(api.state.started, true);
  p.dispose();
});

test('a failed start rejects every queued action with its message', async () => {
  const p = page((fn) => {
    if (fn === 'getstatus') { return 'Initializing'; }
    if (fn === 'getparameter') { return 'false'; }
    if (fn === 'start') { throw 'no audio device'; }
    return null;
  }, { win: { location: { search: '' }, document: { readyState: 'complete', cookie: '' } } });
  const { api, requests } = p;
  await until(() => api.state.loaded, 2000, 'onLoaded');
  const outcomes = await Promise.allSettled([api.call('1002'), api.dtmf('1')]);
  assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected']);
  for (const o of outcomes) { assert.match(o.reason.message, /no audio device/); }
  assert.ok(!requests.some((r) => r[0] === 'call' || r[0] === 'dtmf'), 'queued actions never reach the engine');
  assert.equal(api.state.startError, 'start: no audio device');
  p.dispose();
});
