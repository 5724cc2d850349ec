// Parameter sources of the facade against the real engine (webphone-cli --serve): the static
// block, wp_ cookies and wp_ URL parameters reach the engine tagged with their source
// (setparameter(name, value, source)) and the value the engine ends with follows the precedence of
// spec/behaviours.md 2.2: static < cookie < URL < the page's own setparameter().
//   node --test ui/test/
// Without the binary the tests skip loudly; with CI=true that is a failure.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadFacade, until } from './load_facade.mjs';
import { webSocketClass } from './mini_websocket.mjs';

const CLI = process.env.WEBPHONE_CLI ||
  fileURLToPath(new URL('../../target/debug/webphone-cli', import.meta.url));
const PAGE = 'http://127.0.0.1:8125';

const missing = !(statSync(CLI, { throwIfNoEntry: false })?.isFile());
if (missing) {
  const msg = `webphone-cli not found at ${CLI} (cargo build -p webphone-cli)`;
  if (process.env.CI === 'true') {
    test('webphone-cli is required when CI=true', () => { assert.fail(msg); });
  } else {
    console.log('='.repeat(70) + `\nSKIPPED: ${msg}\n` + '='.repeat(70));
  }
}

const children = [];
after(() => { for (const c of children) { if (c.exitCode === null && c.signalCode === null) { c.kill('SIGTERM'); } } });

function startService() {
  const child = spawn(CLI, ['--serve', '127.0.0.1:0', '--allow-origin', PAGE,
    '-p', 'audiodevicein=null', '-p', 'audiodeviceout=null', '-p', 'autostart=false'],
  { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  children.push(child);
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no address on stderr: ' + stderr)), 10000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /serving ws:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => reject(new Error(`webphone-cli exited (${code}): ${stderr}`)));
  });
}

test('static < cookie < URL < setparameter(), as the engine ends up holding them', { skip: missing }, async () => {
  const port = await startService();
  const sockets = [];
  const Base = webSocketClass(PAGE);
  class Tracked extends Base {
    constructor(url) { super(url); sockets.push(this); }
    send(data) { const m = JSON.parse(data); if (m.fn === 'setparameter') { sent.push(m.args); } super.send(data); }
  }
  const sent = [];
  const page = loadFacade({
    WebSocket: Tracked,
    location: { search: `?wp_serviceport=${port}&wp_displayname=Url%20Name&wp_ringtimeout=75`, origin: PAGE },
    document: { readyState: 'complete', cookie: 'wp_displayname=Cookie%20Name; wp_loglevel=3; other=1; wp_ringtimeout=70' },
  }, { staticParameters: { displayname: 'Static Name', loglevel: 1, ringtimeout: 65, callforwardonbusy: '1009' } });
  const { api } = page;
  try {
    await until(() => api.state.loaded, 10000, 'onLoaded');
    // each value went with its source, in precedence order
    assert.deepEqual(sent, [
      ['displayname', 'Static Name', 'static'], ['loglevel', '1', 'static'], ['ringtimeout', '65', 'static'],
      ['callforwardonbusy', '1009', 'static'],
      ['displayname', 'Cookie Name', 'cookie'], ['loglevel', '3', 'cookie'], ['ringtimeout', '70', 'cookie'],
      ['displayname', 'Url Name', 'url'], ['ringtimeout', '75', 'url'],
    ]);
    assert.equal(await api.getparameter('displayname'), 'Url Name', 'URL over cookie over static');
    assert.equal(await api.getparameter('loglevel'), '3', 'cookie over static');
    assert.equal(await api.getparameter('ringtimeout'), '75', 'URL over cookie over static');
    assert.equal(await api.getparameter('callforwardonbusy'), '1009', 'static alone');
    // the page's own setparameter is a run-time value: no source, and it wins
    await api.setparameter('displayname', 'Typed By User');
    assert.deepEqual(sent[sent.length - 1], ['displayname', 'Typed By User']);
    assert.equal(await api.getparameter('displayname'), 'Typed By User');
    // numbers and booleans are coerced to strings on the way
    await api.setparameter('ringtimeout', 80);
    assert.deepEqual(sent[sent.length - 1], ['ringtimeout', '80']);
    assert.equal(await api.getparameter('ringtimeout'), '80');
  } finally {
    page.dispose();
    for (const s of sockets) { s.close(); }
  }
});
