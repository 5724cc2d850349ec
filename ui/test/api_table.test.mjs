// The complete webphone_api surface: every catalog function, argument forms, callback forms,
// isstarted, wp_ parameters from cookies and the URL, and the state rebuilt after a (re)connect.
// Uses a scripted Tauri bridge (the real engine is exercised in ws_service.test.mjs).
//   node --test ui/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { loadFacade, until, sleep } from './load_facade.mjs';

// The function names of the API catalog (spec/api.tsv), without the jvoip-only low-level
// names, the undocumented getaudiodevicelist and the isstarted property.
const CATALOG = ['setparameter', 'getparameter', 'start', 'stop', 'register', 'registerex', 'unregister',
  'call', 'videocall', 'screenshare', 'hangup', 'accept', 'reject', 'ignore', 'forward', 'hold', 'mute',
  'mutevideo', 'stopscreenshare', 'transfer', 'conference', 'dtmf', 'sendchat', 'sendsms', 'voicerecord',
  'setvideodisplaysize', 'devicepopup', 'getdevicelist', 'getdevice', 'setdevice', 'getvolume', 'setvolume',
  'setsipheader', 'getsipheader', 'getsipmessage', 'getlinedetails', 'getlastcalldetails', 'getregfailreason',
  'setline', 'getline', 'linetocallid', 'callidtoline', 'isregistered', 'isincall', 'ismuted', 'isonhold',
  'isencrypted', 'checkblf', 'checkpresence', 'setpresencestatus', 'getenginename', 'listcontacts',
  'addcontact', 'getcontact', 'delcontact', 'getworkdir', 'delsettings', 'jvoip', 'getlogs', 'getstatus'];
// The project's copy of the catalog table (tests never read ../shared).
const SPEC = new URL('../../crates/webphone-engine/data/api.tsv', import.meta.url);

// A scripted engine behind a fake Tauri bridge. `engine(fn, args)` answers (throw to fail);
// `requests` records [fn, args]; `emit` pushes an engine event. The engine is "running" from the
// start unless `running: false`.
function tauriPage(engine, { running = true, win = {}, staticParameters } = {}) {
  const requests = [];
  let listener = null;
  const bridge = {
    core: {
      invoke: (cmd, p) => {
        requests.push([p.fn, JSON.parse(JSON.stringify(p.args))]);
        return new Promise((resolve, reject) => {
          // Answer asynchronously and in random-ish order, as Tauri's async commands may.
          setTimeout(() => {
            try { resolve(engine(p.fn, p.args)); } catch (e) { reject(e instanceof Error ? e.message : e); }
          }, p.fn === 'setparameter' ? Math.floor(Math.random() * 3) : 0);
        });
      },
    },
    event: { listen: (name, cb) => { listener = cb; return Promise.resolve(() => {}); } },
  };
  const page = loadFacade({ __TAURI__: bridge, ...win }, { staticParameters });
  const emit = (payload) => listener({ event: 'webphone', payload });
  return { ...page, requests, emit, running };
}

// An engine that is up: getstatus answers "Registered"; everything else null unless `more` says.
const upEngine = (more = {}) => (fn, args) => {
  if (fn in more) { return more[fn](...args); }
  if (fn === 'getstatus') { return 'Registered'; }
  if (fn === 'getline') { return 0; }
  return null;
};

async function started(page) {
  await until(() => page.api.state.started, 2000, 'onStart');
}

test('every function of the catalog exists; isstarted is a property', async () => {
  const page = tauriPage(upEngine());
  const { api } = page;
  if (existsSync(SPEC)) {
    const names = readFileSync(SPEC, 'utf8').split('\n').slice(1).map((l) => l.split('\t')[0])
      .filter((n) => n && !/\s/.test(n) && n !== 'getaudiodevicelist');
    assert.deepEqual([...names].sort(), [...CATALOG].sort(), 'the catalog list matches spec/api.tsv');
  }
  for (const name of CATALOG) { assert.equal(typeof api[name], 'function', name); }
  await started(page);
  assert.equal(api.isstarted, 1);
  assert.ok(Object.keys(api).includes('isstarted'));
  page.dispose();
});

test('each table function reaches the engine by name with its arguments as strings', async () => {
  const page = tauriPage(upEngine());
  const { api, requests } = page;
  await started(page);
  const cases = [
    ['registerex', ['srv,u,p;srv2,u2,p2'], ['srv,u,p;srv2,u2,p2']],
    ['videocall', [1002], ['1002']],
    ['screenshare', ['1002', 7], ['1002', '7']],
    ['forward', [1003], ['1003']],
    ['hold', [true], ['true']],
    ['hold', ['0', 2], ['false', '2']],
    ['mute', [1, 2], ['true', '2']],
    ['mute', ['false', '0', -2], ['false', '0', '-2']],
    ['mutevideo', [false, 1], ['false', '1']],
    ['transfer', [''], ['']],
    ['conference', ['2', false], ['2', 'false']],
    ['conference', [], []],
    ['dtmf', [123], ['123']],
    ['dtmf', [' 12 #', 1], [' 12 #', '1']],
    ['sendchat', ['1002', 'hi, <b>there</b>'], ['1002', 'hi, <b>there</b>']],
    ['sendsms', ['+3612', 'text'], ['+3612', 'text']],
    ['voicerecord', ['yes', 'ftp://x'], ['true', 'ftp://x']],
    ['setvideodisplaysize', [1, 640, null], ['1', '640']],
    ['setvideodisplaysize', [2, undefined, 200], ['2', '', '200']],
    ['setdevice', [0, 'null', 2], ['0', 'null', '2']],
    ['setvolume', [1, 75.5], ['1', '75.5']],
    ['setsipheader', ['X-A: 1; X-B: 2'], ['X-A: 1; X-B: 2']],
    ['getlinedetails', [2], ['2']],
    ['linetocallid', [-1], ['-1']],
    ['callidtoline', ['abc@host'], ['abc@host']],
    ['setline', [-2], ['-2']],
    ['setline', [' a-call-id@host '], ['a-call-id@host']],
    ['hangup', [true], ['-2']],
    ['hangup', [-2], ['-2']],
    ['hangup', [], []],
    ['accept', [3], ['3']],
    ['reject', ['1'], ['1']],
    ['ignore', [], []],
    ['checkblf', ['1001,1002'], ['1001,1002']],
    ['checkpresence', ['1001'], ['1001']],
    ['setpresencestatus', ['DND'], ['DND']],
    ['listcontacts', [true], ['true']],
    ['addcontact', ['Ann', '1002', 'a@x', '', null, 'w'], ['Ann', '1002', 'a@x', '', '', 'w']],
    ['getcontact', ['', '1002'], ['', '1002']],
    ['delcontact', ['Ann'], ['Ann']],
    ['delsettings', [2], ['2']],
    ['devicepopup', [], []],
    ['stopscreenshare', [], []],
    ['getlastcalldetails', [], []],
    ['getregfailreason', [], []],
    ['getenginename', [], []],
    ['getworkdir', [], []],
    ['getlogs', [], []],
    ['unregister', [], []],
    ['register', [], []],
    ['setparameter', ['loglevel', 5], ['loglevel', '5']],
    ['getparameter', ['loglevel'], ['loglevel']],
    // Engine extensions.
    ['importvcard', ['BEGIN:VCARD\r\nFN:Ann\r\nTEL:1002\r\nEND:VCARD\r\n'], ['BEGIN:VCARD\r\nFN:Ann\r\nTEL:1002\r\nEND:VCARD\r\n']],
    ['exportvcard', [], []],
    ['callvoicemail', [], []],
    ['linkrequest', ['newuser', 'USERNAME=a&PASSWORD=b'], ['newuser', 'USERNAME=a&PASSWORD=b']],
    ['syncservercontacts', [], []],
    ['sendlogs', [], []],
    ['chathistory', ['1002', 20], ['1002', '20']],
    ['chatcomposing', ['1002', true], ['1002', 'true']],
    ['setfavorite', ['Ann', '', false], ['Ann', '', 'false']],
    ['audiotest', ['mic'], ['mic']],
  ];
  for (const [fn, args, expected] of cases) {
    const before = requests.length;
    // The synchronous functions answer from the facade's copy; their engine form asks.
    await (SYNC_FUNCTIONS.includes(fn) ? api.engine[fn] : api[fn])(...args);
    assert.deepEqual(requests.slice(before), [[fn, expected]], `${fn}(${JSON.stringify(args)})`);
  }
  page.dispose();
});

// Answered synchronously, as the original did (the facade's copy of the engine's values).
const SYNC_FUNCTIONS = ['getparameter', 'isregistered', 'isincall', 'getstatus', 'getline', 'linetocallid',
  'callidtoline', 'ismuted', 'isonhold', 'isencrypted', 'getregfailreason', 'getenginename', 'getlinedetails',
  'getlastcalldetails', 'getworkdir', 'getlogs', 'listcontacts', 'getcontact'];

test('synchronous answers come from the engine copy without a request, and follow _sync events', async () => {
  let seq = 4;
  const copy = { seq, state: { registered: true, incall: false, status: 'Registered', line: 0, muted: false,
    onhold: false, encrypted: -1, regfailreason: '', enginename: 'ns', lines: {}, linedetails: {},
    idledetails: ',Ready,,,1001,0,127.0.0.1:5060,sip.example.org,0,0,', lastcalldetails: '', workdir: '/home/u/.webphone',
    contacts: 'Ann\t1002|1003\t1\t\t\t\t\r\nJörg\t2001\t0\t\t\t\t',
    contactsall: 'Ann\t1002|1003\t1\t\t\t\t\r\nJörg\t2001\t0\t\t\t\t\r\nVoicemail\t*97\t0\t\t\t\t' },
  params: { username: '1001', codec: '', password: '<redacted>', autoaccept: 'false' },
  logs: ['LOG,EVENT,one', 'EVENT,EVENT,two'] };
  const page = tauriPage(upEngine({ syncstate: () => copy }));
  const { api, requests, emit } = page;
  await started(page);
  const before = requests.length;
  // Plain values, usable in an if () as the original's.
  assert.equal(api.isregistered(), true);
  assert.equal(api.isincall(), false);
  if (api.isincall()) { assert.fail('isincall() is falsy without a call'); }
  assert.equal(api.getstatus(), 'Registered');
  assert.equal(api.getline(), 0);
  assert.equal(api.getparameter('UserName'), '1001');
  assert.equal(api.getparameter('ucfg_username'), '1001');
  assert.equal(api.getparameter('password'), '<redacted>');
  assert.equal(api.getparameter('nothing'), '', 'an unknown parameter is an empty string');
  assert.equal(api.getenginename(), 'ns');
  assert.equal(api.isencrypted(), -1);
  assert.equal(api.linetocallid(-1), '');
  assert.equal(api.callidtoline('x'), 0);
  assert.equal(api.getlinedetails(), 'LINEDETAILS,0,Ready,,,1001,0,127.0.0.1:5060,sip.example.org,0,0,');
  assert.equal(api.getlinedetails(3), 'LINEDETAILS,3,Ready,,,1001,0,127.0.0.1:5060,sip.example.org,0,0,');
  assert.equal(api.getlastcalldetails(), '');
  assert.equal(api.getworkdir(), '/home/u/.webphone');
  assert.equal(api.getlogs(), 'LOG,EVENT,one\r\nEVENT,EVENT,two');
  assert.equal(api.listcontacts(), copy.state.contacts);
  assert.equal(api.listcontacts(false), copy.state.contacts);
  assert.equal(api.listcontacts(true), copy.state.contactsall);
  assert.equal(api.getcontact('ANN'), 'Ann\t1002|1003\t1\t\t\t\t');
  assert.equal(api.getcontact('', '1003'), 'Ann\t1002|1003\t1\t\t\t\t');
  assert.equal(api.getcontact('JÖRG'), null, 'only ASCII letters ignore case, as in the engine');
  assert.equal(api.getcontact('Jörg'), 'Jörg\t2001\t0\t\t\t\t');
  assert.equal(api.getcontact('nobody', ''), null);
  assert.deepEqual(requests.slice(before), [], 'no request for a synchronous answer');

  // A call: the engine's _sync event changes the answers; an older event is ignored.
  emit({ ev: '_sync', args: [{ seq: ++seq, state: { incall: true, line: 2, status: 'In Call (1 sec)', muted: true,
    lines: { 2: 'cid-2@host' }, linedetails: { 2: 'LINEDETAILS,2,Muted,cid-2@host,1002,1001,1,127.0.0.1:5060,sip.example.org,2,0,Bob' } },
  params: { codec: 'PCMU' } }] });
  emit({ ev: '_sync', args: [{ seq: seq - 1, state: { incall: false } }] });
  assert.equal(api.isincall(), true);
  assert.equal(api.getline(), 2);
  assert.equal(api.getstatus(), 'In Call (1 sec)');
  assert.equal(api.ismuted(), true);
  assert.equal(api.linetocallid(-1), 'cid-2@host');
  assert.equal(api.linetocallid('2'), 'cid-2@host');
  assert.equal(api.linetocallid(3), '');
  assert.equal(api.callidtoline('cid-2@host'), 2);
  assert.equal(api.getlinedetails(), 'LINEDETAILS,2,Muted,cid-2@host,1002,1001,1,127.0.0.1:5060,sip.example.org,2,0,Bob');
  assert.equal(api.getlinedetails(-1), api.getlinedetails(2));
  assert.equal(api.getlinedetails(1), 'LINEDETAILS,1,Ready,,,1001,0,127.0.0.1:5060,sip.example.org,0,0,');
  assert.equal(api.getparameter('codec'), 'PCMU');
  emit({ ev: '_sync', args: [{ seq: ++seq, logs: ['LOG,WARNING,three'] }] });
  assert.equal(api.getlogs(), 'LOG,EVENT,one\r\nEVENT,EVENT,two\r\nLOG,WARNING,three', 'new lines appended');
  // _sync events are not handed to the page as a callback.
  assert.equal(typeof api._sync, 'undefined');

  // setparameter(): read back at once, then as the engine stored it.
  const set = api.setparameter('autoaccept', 1);
  assert.equal(api.getparameter('autoaccept'), '1');
  await set;
  emit({ ev: '_sync', args: [{ seq: ++seq, params: { autoaccept: 'true' } }] });
  assert.equal(api.getparameter('autoaccept'), 'true');
  // A refused value is forgotten when the engine says no.
  page.dispose();
});

test('a lost _sync update or the overflow notice of the service makes the facade fetch the copy again', async () => {
  let copies = 0;
  const page = tauriPage(upEngine({
    syncstate: () => {
      copies += 1;
      return { seq: copies === 1 ? 1 : 10, state: { incall: copies > 1 }, params: { codec: copies === 1 ? '' : 'PCMA' } };
    },
  }));
  const { api, emit } = page;
  await started(page);
  assert.equal(copies, 1);
  emit({ ev: '_sync', args: [{ seq: 2, params: { codec: 'PCMU' } }] });
  assert.equal(api.getparameter('codec'), 'PCMU');
  // seq 3 never came: the copy is fetched again; the old values answer meanwhile.
  emit({ ev: '_sync', args: [{ seq: 4, state: { incall: true } }] });
  assert.equal(api.getparameter('codec'), 'PCMU');
  await until(() => copies === 2 && api.getparameter('codec') === 'PCMA', 2000, 'the second copy');
  assert.equal(api.isincall(), true);
  emit({ ev: 'notification', text: 'LOG,WARNING,12 notifications were dropped' });
  await until(() => copies === 3, 2000, 'a copy after the overflow notice');
  page.dispose();
});

test('setparameter(): the latest of two quick writes reads back; a secret reads as <redacted>', async () => {
  // The engine's answers wait until the test releases them, by value (this bridge delays each
  // setparameter a random 0-2 ms, so the two may reach the engine in either order).
  const waiting = {};
  const page = tauriPage(upEngine({
    syncstate: () => ({ seq: 1, state: {}, params: { ringtimeout: '90000', password: '' } }),
    setparameter: (name, value) => new Promise((resolve) => { waiting[value] = resolve; }),
  }));
  const { api, emit } = page;
  await started(page);
  const first = api.setparameter('ringtimeout', '1000');
  const second = api.setparameter('ringtimeout', '2000');
  await until(() => waiting['1000'] && waiting['2000'], 1000, 'both writes sent');
  // The engine's update for the first write, then its answer: the second still reads back.
  emit({ ev: '_sync', args: [{ seq: 2, params: { ringtimeout: '1000' } }] });
  waiting['1000'](null);
  await first;
  assert.equal(api.getparameter('ringtimeout'), '2000');
  emit({ ev: '_sync', args: [{ seq: 3, params: { ringtimeout: '2000' } }] });
  waiting['2000'](null);
  await second;
  assert.equal(api.getparameter('ringtimeout'), '2000');
  const pw = api.setparameter('password', 'hunter2');
  assert.equal(api.getparameter('password'), '<redacted>');
  await until(() => waiting.hunter2, 1000, 'the password write sent');
  emit({ ev: '_sync', args: [{ seq: 4, params: { password: '<redacted>' } }] });
  waiting.hunter2(null);
  await pw;
  assert.equal(api.getparameter('password'), '<redacted>');
  page.dispose();
});

test('a refused setparameter() reads the old value again', async () => {
  const page = tauriPage(upEngine({
    syncstate: () => ({ seq: 1, state: {}, params: { ringtimeout: '90000' } }),
    setparameter: (name, value) => { if (value === 'soon') { throw `invalid value for ${name}`; } return null; },
  }));
  const { api } = page;
  await started(page);
  const p = api.setparameter('ringtimeout', 'soon');
  assert.equal(api.getparameter('ringtimeout'), 'soon', 'read back while the engine decides');
  await assert.rejects(p, /invalid value for ringtimeout/);
  assert.equal(api.getparameter('ringtimeout'), '90000');
  page.dispose();
});

test('before the copy arrives, getparameter answers the parameters the page gave', async () => {
  const page = tauriPage(upEngine(), { staticParameters: { serveraddress: 'sip.example.org' } });
  const { api } = page;
  await started(page);
  // This engine has no syncstate: the facade logs it and answers what it knows.
  assert.equal(api.getparameter('serveraddress'), 'sip.example.org');
  assert.ok(page.logs.some((l) => /syncstate/.test(l)), page.logs.join('\n'));
  page.dispose();
});

test('results: booleans, numbers and strings as documented; state follows the answers', async () => {
  const answers = { isregistered: 'true', isincall: false, ismuted: '1', isonhold: 'false', isencrypted: '-1',
    getline: '2', callidtoline: 3, getenginename: 'ns', getparameter: null, getstatus: 'Registered',
    getlinedetails: 'LINEDETAILS,2,InCall,cid-9,1002,1001,1,127.0.0.1:5060,sip.example.org,0,0,Bob, Jr.' };
  const page = tauriPage((fn) => (fn in answers ? answers[fn] : null));
  const { api } = page;
  await started(page);
  const e = api.engine;
  assert.equal(await e.isregistered(), true);
  assert.equal(api.state.registered, true);
  assert.equal(await e.isincall(), false);
  assert.equal(await e.ismuted(), true);
  assert.equal(await e.isonhold(), false);
  assert.equal(await e.isencrypted(), -1);
  assert.equal(await e.getline(), 2);
  assert.equal(api.state.line, 2);
  assert.equal(await e.callidtoline('x'), 3);
  assert.equal(await e.getenginename(), 'ns');
  assert.equal(await e.getparameter('nothing'), '', 'an unset parameter is an empty string');
  await api.engine.getlinedetails(2);
  assert.deepEqual(JSON.parse(JSON.stringify(api.state.lines['2'])), { line: 2, status: 'InCall', peer: '1002', displayname: 'Bob, Jr.', callid: 'cid-9', direction: 1 });
  assert.equal(api.state.incall, true);
  page.dispose();
});

test('callback forms: the callback gets the value, the Promise too; functions never reach the engine', async () => {
  const page = tauriPage(upEngine({
    getdevicelist: (dev) => (dev === '0' ? 'alsa:default\r\nalsa:pulse' : ''),
    getdevice: (dev) => (dev === '1' ? 'alsa:pulse' : ''),
    getvolume: () => '50',
    getsipheader: (h) => { if (h === 'Contact') { return '<sip:1002@10.0.0.2>'; } throw 'no such header'; },
    getsipmessage: (dir, type) => `INVITE sip:1001 SIP/2.0 (${dir},${type})`,
  }));
  const { api, requests } = page;
  await started(page);
  const got = {};
  const cb = (name) => (v) => { got[name] = v; };

  assert.equal(await api.getdevicelist(0, cb('list')), 'alsa:default\r\nalsa:pulse');
  assert.equal(await api.getdevice('1', cb('dev')), 'alsa:pulse');
  assert.equal(await api.getvolume(1, cb('vol')), 50);
  assert.equal(await api.getsipheader('Contact', cb('hdr')), '<sip:1002@10.0.0.2>');
  assert.equal(await api.getsipmessage(0, 3, cb('msg')), 'INVITE sip:1001 SIP/2.0 (0,3)');
  await until(() => Object.keys(got).length === 5, 1000, 'callbacks');
  assert.deepEqual(got, { list: 'alsa:default\r\nalsa:pulse', dev: 'alsa:pulse', vol: 50,
    hdr: '<sip:1002@10.0.0.2>', msg: 'INVITE sip:1001 SIP/2.0 (0,3)' });
  // Only the documented arguments went to the engine, as strings.
  const sent = requests.filter((r) => /^get(devicelist|device|volume|sipheader|sipmessage)$/.test(r[0]));
  assert.deepEqual(sent, [['getdevicelist', ['0']], ['getdevice', ['1']], ['getvolume', ['1']],
    ['getsipheader', ['Contact']], ['getsipmessage', ['0', '3']]]);

  // Without a callback (the skin's form) the Promise alone works.
  assert.equal(await api.getdevicelist(0), 'alsa:default\r\nalsa:pulse');

  // Errors: getsipheader's callback gets "ERROR: ..." (its documented form), the Promise rejects.
  let hdr = null;
  await assert.rejects(api.getsipheader('X-None', (v) => { hdr = v; }), /getsipheader: no such header/);
  await until(() => hdr !== null, 1000, 'error callback');
  assert.equal(hdr, 'ERROR: getsipheader: no such header');

  // A function passed to a function without a callback form is dropped (and logged).
  const before = requests.length;
  await api.call('1002', () => {});
  assert.deepEqual(requests.slice(before), [['call', ['1002']]]);
  assert.ok(page.logs.some((l) => l.includes('call: ignoring a function argument')));

  // A throwing callback is caught and logged; the Promise still resolves.
  assert.equal(await api.getdevice(1, () => { throw new Error('page bug'); }), 'alsa:pulse');
  await until(() => page.logs.some((l) => /getdevice callback threw: Error: page bug/.test(l)), 1000, 'log');
  page.dispose();
});

test('a device or volume error rejects the Promise and does not call the callback', async () => {
  const page = tauriPage(upEngine({ getvolume: () => { throw 'getvolume is not available yet in this engine'; } }));
  const { api } = page;
  await started(page);
  let called = false;
  await assert.rejects(api.getvolume(0, () => { called = true; }), /not available yet/);
  await sleep(20);
  assert.equal(called, false);
  page.dispose();
});

test('jvoip, devicepopup and screen sharing go to the engine; "not supported" rejects and is logged', async () => {
  const page = tauriPage(upEngine({
    jvoip: () => { throw 'jvoip is not supported by this engine: it is the Java/NS low-level API'; },
    devicepopup: () => { throw 'devicepopup is not supported by this engine: device selection is in the settings'; },
    screenshare: () => { throw 'screenshare is not supported by this engine: screen sharing needs a browser engine'; },
  }));
  const { api, requests } = page;
  await started(page);
  const shown = [];
  api.onDisplay((m) => shown.push(m));
  await assert.rejects(api.jvoip('API_Call', [-1, '1002']), /^Error: jvoip: jvoip is not supported by this engine/);
  await assert.rejects(api.jvoip('API_Dtmf', -2, '1'), /not supported/); // the document's unwrapped form
  await assert.rejects(api.jvoip('API_VAD'), /not supported/);
  await assert.rejects(api.devicepopup(), /^Error: devicepopup: devicepopup is not supported/);
  await assert.rejects(api.screenshare('1002'), /not supported/);
  assert.deepEqual(requests.filter((r) => r[0] === 'jvoip').map((r) => r[1]),
    [['API_Call', '[-1,"1002"]'], ['API_Dtmf', '[-2,"1"]'], ['API_VAD', '[]']]);
  assert.ok(page.logs.some((l) => l.includes('devicepopup: devicepopup is not supported')));
  assert.deepEqual(shown, [], 'integration errors are not shown to the user');
  page.dispose();
});

test('actions wait for the start; queries do not', async () => {
  let up = false;
  const page = tauriPage((fn) => {
    if (fn === 'getstatus') { return up ? 'Ready' : 'Initializing'; }
    if (fn === 'getparameter') { return 'false'; } // autostart off
    if (fn === 'start') { up = true; }
    return null;
  });
  const { api, requests } = page;
  await until(() => api.state.loaded, 2000, 'onLoaded');
  assert.equal(api.isstarted, 0);
  await api.getdevicelist(0);
  await api.isencrypted();
  assert.ok(!requests.some((r) => r[0] === 'start'), 'queries do not start the engine');
  const hold = api.hold(true);
  assert.equal(api.isstarted, 1, 'isstarted while the start is under way');
  await hold;
  const fns = requests.map((r) => r[0]);
  assert.ok(fns.indexOf('start') < fns.indexOf('hold'), fns.join());
  page.dispose();
});

test('isstarted: 0 before the start, 1 after, page writes kept until stop', async () => {
  const page = tauriPage((fn) => (fn === 'getparameter' ? 'false' : fn === 'getstatus' ? 'Initializing' : null));
  const { api } = page;
  await until(() => api.state.loaded, 2000, 'onLoaded');
  assert.equal(api.isstarted, 0);
  api.isstarted = 1; // the multi-page example's own marker
  assert.equal(api.isstarted, 1);
  await api.start();
  assert.equal(api.isstarted, 1);
  await api.stop();
  assert.equal(api.isstarted, 0);
  api.isstarted = 'true';
  assert.equal(api.isstarted, 1);
  api.isstarted = 0;
  assert.equal(api.isstarted, 0);
  page.dispose();
});

test('wp_ cookies and URL parameters follow the static block, in precedence order', async () => {
  const page = tauriPage(upEngine(), {
    staticParameters: { serveraddress: 'static.example', username: 'static', serviceport: 1234, loglevel: 1 },
    win: {
      location: { search: '?x=1&wp_username=url%20user&WP_Password=p%26w%3D1+x&wp_serviceport=18520&wp_language=fr&wp_callto=%2B36%201&bad=%E0%A4%A&wp_=no&wp_BrandName=X' },
      document: { readyState: 'complete', cookie: 'session=abc; wp_username=cookie; wp_displayname=%C3%89va%20K; wp_codec="opus,pcmu"; WP_LOGLEVEL=5; wp_colortheme=3' },
    },
  });
  const { api, requests } = page;
  await until(() => api.state.loaded, 2000, 'onLoaded');
  const setp = requests.filter((r) => r[0] === 'setparameter').map((r) => r[1]);
  assert.deepEqual(setp, [
    // static block first (serviceport is the facade's own setting)
    ['serveraddress', 'static.example', 'static'], ['username', 'static', 'static'], ['loglevel', '1', 'static'],
    // then the wp_ cookies, percent-decoded, quotes removed
    ['username', 'cookie', 'cookie'], ['displayname', 'Éva K', 'cookie'], ['codec', 'opus,pcmu', 'cookie'],
    ['LOGLEVEL', '5', 'cookie'], ['colortheme', '3', 'cookie'],
    // then the URL (decodeURIComponent, '+' as space); UI parameters (language, brandname) stay
    // with the page, which reads them itself
    ['username', 'url user', 'url'], ['Password', 'p&w=1 x', 'url'], ['callto', '+36 1', 'url'],
  ]);
  // One after the other, before onLoaded: every setparameter precedes getstatus.
  const fns = requests.map((r) => r[0]);
  assert.ok(fns.lastIndexOf('setparameter') < fns.indexOf('getstatus'), fns.join());
  page.dispose();
});

test('a failing parameter is logged with its source and does not stop the others', async () => {
  const page = tauriPage(upEngine({ setparameter: (n) => { if (n === 'transport') { throw 'bad value'; } return null; } }), {
    win: { location: { search: '?wp_transport=9&wp_username=u' }, document: { readyState: 'complete', cookie: '' } },
  });
  await until(() => page.api.state.loaded, 2000, 'onLoaded');
  assert.ok(page.logs.some((l) => l.includes('setparameter: bad value (url parameter transport)')), page.logs.join('\n'));
  assert.ok(page.requests.some((r) => r[0] === 'setparameter' && r[1][0] === 'username'));
  page.dispose();
});

test('page load while the engine runs a call: state rebuilt, start re-sent, onStart once', async () => {
  let page;
  page = tauriPage((fn) => {
    switch (fn) {
      case 'getstatus': return 'In Call (12 sec)';
      case 'getline': return 1;
      case 'getlinedetails': return 'LINEDETAILS,1,InCall,echo-1,echo,,1,127.0.0.1:5060,,0,0,Echo test';
      case 'start':
        // A running engine answers start by sending its STATUS lines again.
        setTimeout(() => page.emit({ ev: 'notification', text: 'STATUS,-1,In Call (12 sec),echo,,1,Echo test,echo-1,1,1,2,0,0,0,0' }), 0);
        setTimeout(() => page.emit({ ev: 'notification', text: 'STATUS,2,Ringing,1003,,2,Carol,cid-2,1,1,1,0,0,0,0' }), 0);
        return null;
      case 'getparameter': throw new Error('autostart must not be asked when the engine runs');
      default: return null;
    }
  });
  const { api, requests } = page;
  const seen = [];
  api.onLoaded(() => seen.push(['loaded', api.state.incall, api.state.line, api.state.status]));
  api.onStart(() => seen.push(['start']));
  await until(() => seen.length === 2, 2000, 'onLoaded and onStart');
  assert.deepEqual(seen, [['loaded', true, 1, 'In Call (12 sec)'], ['start']]);
  assert.deepEqual(requests.map((r) => r[0]), ['syncstate', 'getstatus', 'getline', 'getlinedetails', 'start']);
  assert.deepEqual(requests[3][1], ['1']);
  await until(() => api.state.lines['2'], 1000, 'line 2 from the re-sent STATUS');
  assert.deepEqual(Object.keys(api.state.lines), ['1', '2']);
  assert.equal(api.state.lines['1'].peer, 'echo');
  assert.equal(api.state.lines['2'].displayname, 'Carol');
  assert.equal(api.state.lines['2'].direction, 2);
  // The lines end: STATUS per line removes them.
  page.emit({ ev: 'notification', text: 'STATUS,1,Finished,echo,,1,Echo test,echo-1,1,1,0,0,0,0,0' });
  assert.deepEqual(Object.keys(api.state.lines), ['2']);
  page.emit({ ev: 'notification', text: 'STATUS,2,CallDisconnect,1003,,2,Carol,cid-2,1,1,0,0,0,0,0' });
  assert.deepEqual(Object.keys(api.state.lines), []);
  assert.equal(api.state.incall, false);
  page.dispose();
});

test('onStart that arrives before onLoaded is delivered after it', async () => {
  let page;
  page = tauriPage((fn) => {
    if (fn === 'getstatus') {
      page.emit({ ev: 'onStart', args: [] }); // the engine finished starting just now
      return 'Initializing';
    }
    return fn === 'getparameter' ? 'false' : null;
  });
  const seen = [];
  page.api.onLoaded(() => seen.push('loaded'));
  page.api.onStart(() => seen.push('start'));
  await until(() => seen.length === 2, 2000, 'both callbacks');
  assert.deepEqual(seen, ['loaded', 'start']);
  page.dispose();
});
