/*
 * Tech demo for webphone_api: one row per API function, generated from FUNCTIONS below (name,
 * arguments with their example values, what it does), and one list entry per callback and
 * notification. Results and errors of each call are shown in its row and in the list.
 * Only DOM APIs and webphone_api; every text from the engine or the user is set with
 * textContent, never parsed as HTML.
 */
(function () {
  'use strict';

  // [name, arguments ("name" or "name=example"), what it does]. Arguments are passed as the
  // strings typed; the facade converts them to the forms the engine expects. An empty trailing
  // argument is left out.
  var FUNCTIONS = [
    ['start', [], 'Start the engine (register when an account is set)'],
    ['stop', [], 'Stop the engine'],
    ['setparameter', ['name=loglevel', 'value=5'], 'Set a parameter (run-time value)'],
    ['getparameter', ['name=serveraddress'], 'Read a parameter'],
    ['register', [], 'Register with the SIP server'],
    ['registerex', ['accounts=server,user,password'], 'Register extra accounts: server,usr,pwd,ival,proxy,realm,authuser;…'],
    ['unregister', [], 'Unregister'],
    ['call', ['number=echo'], 'Call a number, SIP URI or "echo"'],
    ['videocall', ['number'], 'Video call (a voice call in this engine)'],
    ['screenshare', ['number', 'screenid'], 'Screen sharing (not supported by this engine)'],
    ['stopscreenshare', [], 'Stop screen sharing (not supported by this engine)'],
    ['hangup', ['line'], 'Hang up (line: -2 all, -1 current, N)'],
    ['accept', ['line'], 'Accept the incoming call'],
    ['reject', ['line'], 'Reject the incoming call'],
    ['ignore', ['line'], 'Stop ringing, leave the call unanswered'],
    ['forward', ['number'], 'Forward the incoming call'],
    ['hold', ['state=true', 'line'], 'Hold (true) or resume (false)'],
    ['mute', ['state=true', 'direction=0', 'line'], 'Mute (direction 0 both, 1 out, 2 in)'],
    ['mutevideo', ['state=true', 'direction=0'], 'Mute video'],
    ['transfer', ['number'], 'Blind transfer of the current call'],
    ['conference', ['number', 'add=true'], 'Add a peer or line to the conference (add=false removes)'],
    ['dtmf', ['digits=1', 'line'], 'Send DTMF digits (0-9 * #, space = pause)'],
    ['sendchat', ['number', 'message=Hello'], 'Send a chat message'],
    ['sendsms', ['number', 'message=Hello', 'from'], 'Send an SMS'],
    ['voicerecord', ['start=true', 'url'], 'Start/stop recording the calls'],
    ['checkblf', ['userlist'], 'Watch the call state of users (BLF)'],
    ['checkpresence', ['userlist'], 'Watch the presence of users'],
    ['setpresencestatus', ['status=Online'], 'Publish our presence: Online, Away, DND, Invisible, Offline'],
    ['setvideodisplaysize', ['type=1', 'width=320', 'height'], 'Video container size'],
    ['devicepopup', [], 'Device selection popup (not supported by this engine)'],
    ['getdevicelist', ['dev=0'], 'Audio devices (0 recording, 1 playback, 3 camera)'],
    ['getdevice', ['dev=0'], 'Selected device (0 recording, 1 playback, 2 ringer, 3 camera)'],
    ['setdevice', ['dev=0', 'devicename', 'immediate=0'], 'Select a device'],
    ['getvolume', ['dev=1'], 'Volume (0 microphone, 1 speaker, 2 ringback)'],
    ['setvolume', ['dev=1', 'volume=50'], 'Set a volume (percent, 50 = unchanged)'],
    ['setsipheader', ['header=X-Demo: 1'], 'Extra SIP header for the next requests'],
    ['getsipheader', ['header=Contact'], 'A header of the last SIP message received'],
    ['getsipmessage', ['dir=0', 'type=0'], 'The last SIP message (dir 0 received, 1 sent)'],
    ['getlinedetails', ['line=-1'], 'Details of a line'],
    ['getlastcalldetails', [], 'Details of the last call'],
    ['getregfailreason', [], 'Why the last registration failed'],
    ['setline', ['line=1'], 'Select the active line (number, Call-ID or peer)'],
    ['getline', [], 'The active line'],
    ['linetocallid', ['line=1'], 'Call-ID of a line'],
    ['callidtoline', ['callid'], 'Line of a Call-ID'],
    ['isregistered', [], 'Registered?'],
    ['isincall', [], 'In a call?'],
    ['ismuted', [], 'Muted?'],
    ['isonhold', [], 'On hold?'],
    ['isencrypted', [], 'Media encryption state'],
    ['getenginename', [], 'Name of the engine'],
    ['listcontacts', ['all=false'], 'The contact list'],
    ['addcontact', ['fullname=Demo Contact', 'number=1002', 'email', 'address', 'notes', 'website'], 'Add or update a contact'],
    ['getcontact', ['name', 'number=1002'], 'Find a contact'],
    ['delcontact', ['name', 'number=1002'], 'Delete a contact'],
    ['exportvcard', [], 'Extension: every contact as vCard 4.0 text'],
    ['importvcard', ['text'], 'Extension: add the contacts of vCard text (BEGIN:VCARD … END:VCARD)'],
    ['callvoicemail', [], 'Extension: call the voicemail number'],
    ['linkrequest', ['name=newuser', 'tokens=USERNAME=demo&PASSWORD=secret'], 'Extension: ask an API link (answer as NEWUSER / ANSWER / CREDIT / RATING)'],
    ['syncservercontacts', [], 'Extension: download the server address book (serveraddressbook_url) into the contacts now (SERVERCONTACTS)'],
    ['setfavorite', ['name=Demo Contact', 'number', 'state=true'], 'Extension: mark (true) or unmark (false) stored contacts as favourites'],
    ['chathistory', ['peer=1002', 'limit=20'], 'Extension: the stored conversation with a peer (every peer when empty), oldest first'],
    ['chatcomposing', ['peer=1002', 'typing=true'], 'Extension: tell a peer we are typing (true) or stopped (false), RFC 3994'],
    ['audiotest', ['action=speaker'], 'Extension: try the audio devices: mic (its level as VAD notifications), speaker (a test sound) or stop'],
    ['sendlogs', [], 'Extension: post the engine\'s log to logform_action'],
    ['getworkdir', [], 'The engine\'s work folder'],
    ['delsettings', ['level=1'], 'Delete settings (1) or everything (2)'],
    ['jvoip', ['name=API_Dtmf', 'jargs=[-1, "1"]'], 'Low-level call (jargs as a JSON array)'],
    ['getlogs', [], 'The engine\'s log'],
    ['getstatus', [], 'The general status text'],
    ['isstarted', [], 'Property: 1 once the engine started (read, not called)']
  ];
  // Every callback (spec/events.tsv); the other spellings webphone_api also accepts for
  // onBLFStateChange register the same handlers, so they are not listed twice.
  var CALLBACKS = ['onLoaded', 'onStart', 'onRegistered', 'onRegisterFailed', 'onUnRegistered',
    'onCallStateChange', 'onPresenceStateChange', 'onBLFStateChange', 'onChat', 'onDTMF', 'onCdr',
    'onDisplay', 'onLog', 'onEvents'];
  var CALLBACK_ALIASES = ['onBlfStateChange', 'onBLFStateChage'];
  var MAX_ENTRIES = 2000;

  var wp = window.webphone_api;
  function $(id) { return document.getElementById(id); }
  var eventsEl = $('events');

  function text(v) {
    if (v === undefined || v === null) { return ''; }
    if (typeof v === 'string') { return v; }
    try { return JSON.stringify(v); } catch (e) { return String(v); }
  }

  // One list entry: <li data-kind="onEvents"><span class="kind">onEvents</span>STATUS,…</li>
  function addEntry(kind, body) {
    var li = document.createElement('li');
    li.setAttribute('data-kind', kind);
    var k = document.createElement('span');
    k.className = 'kind';
    k.textContent = kind;
    li.appendChild(k);
    li.appendChild(document.createTextNode(body));
    var atEnd = eventsEl.scrollTop + eventsEl.clientHeight >= eventsEl.scrollHeight - 4;
    eventsEl.appendChild(li);
    while (eventsEl.childNodes.length > MAX_ENTRIES) { eventsEl.removeChild(eventsEl.firstChild); }
    if (atEnd) { eventsEl.scrollTop = eventsEl.scrollHeight; }
  }

  function render() {
    var st = wp.state;
    document.body.setAttribute('data-loaded', st.loaded ? '1' : '0');
    document.body.setAttribute('data-started', st.started ? '1' : '0');
    document.body.setAttribute('data-registered', st.registered ? '1' : '0');
    document.body.setAttribute('data-incall', st.incall ? '1' : '0');
    $('status').textContent = st.status || (st.started ? 'Started' : st.loaded ? 'Loaded' : 'Loading…');
  }

  // Every callback: logged with its arguments (onEvents: the notification text, one entry per line).
  CALLBACKS.forEach(function (name) {
    wp[name](function () {
      var args = Array.prototype.slice.call(arguments);
      if (name === 'onEvents') {
        String(args[0] || '').split(/\r?\n/).forEach(function (line) { if (line) { addEntry(name, line); } });
      } else {
        addEntry(name, args.map(text).join(' | '));
      }
      render();
    });
  });

  // One row per function: button, argument inputs, description, last result.
  function buildRow(spec) {
    var name = spec[0];
    var row = document.createElement('div');
    row.className = 'fn';
    row.setAttribute('data-fn', name);
    var btn = document.createElement('button');
    btn.type = 'button';
    btn.id = 'fn-' + name;
    btn.textContent = typeof wp[name] === 'function'
      ? name + '(' + spec[1].map(function (a) { return a.split('=')[0]; }).join(', ') + ')'
      : name;
    row.appendChild(btn);
    var inputs = spec[1].map(function (a, i) {
      var eq = a.indexOf('=');
      var input = document.createElement('input');
      input.type = 'text';
      input.id = 'arg-' + name + '-' + i;
      input.placeholder = eq < 0 ? a : a.slice(0, eq);
      input.value = eq < 0 ? '' : a.slice(eq + 1);
      input.spellcheck = false;
      input.setAttribute('aria-label', name + ' ' + input.placeholder);
      row.appendChild(input);
      return input;
    });
    var doc = document.createElement('span');
    doc.className = 'doc';
    doc.textContent = spec[2];
    row.appendChild(doc);
    var result = document.createElement('span');
    result.className = 'result';
    result.id = 'result-' + name;
    row.appendChild(result);
    btn.addEventListener('click', function () {
      var args = inputs.map(function (i) { return i.value; });
      while (args.length && args[args.length - 1] === '') { args.pop(); }
      if (name === 'jvoip' && args.length > 1) {
        try { args[1] = JSON.parse(args[1]); } catch (e) { /* sent as typed */ }
      }
      var shown = name + '(' + args.map(text).join(', ') + ')';
      var p;
      try {
        p = Promise.resolve(typeof wp[name] === 'function' ? wp[name].apply(wp, args) : wp[name]);
      } catch (e) { p = Promise.reject(e); }
      p.then(function (v) {
        result.className = 'result';
        result.textContent = '= ' + text(v);
        addEntry('result', shown + ' = ' + text(v));
      }, function (e) {
        var m = e && e.message ? e.message : String(e);
        result.className = 'result err';
        result.textContent = m;
        addEntry('error', shown + ': ' + m);
      }).then(render);
    });
    return row;
  }

  var list = $('functions');
  FUNCTIONS.forEach(function (spec) { list.appendChild(buildRow(spec)); });

  // The tables must cover the facade: a function or callback of webphone_api without a row or a
  // handler here is reported.
  var inTable = {};
  FUNCTIONS.forEach(function (s) { inTable[s[0]] = true; });
  CALLBACKS.concat(CALLBACK_ALIASES).forEach(function (n) { inTable[n] = true; });
  var missing = Object.keys(wp).filter(function (k) {
    return typeof wp[k] === 'function' && !inTable[k];
  });
  document.body.setAttribute('data-missing', missing.join(' '));
  if (missing.length) {
    $('table-check').hidden = false;
    $('table-check').textContent = 'No row for: ' + missing.join(', ');
  }

  $('fn-filter').addEventListener('input', function (e) {
    var q = String(e.target.value || '').toLowerCase();
    Array.prototype.forEach.call(list.children, function (row) {
      row.hidden = q !== '' && row.getAttribute('data-fn').indexOf(q) < 0;
    });
  });
  $('show-log').addEventListener('change', function (e) {
    eventsEl.className = e.target.checked ? '' : 'show-nolog';
  });
  $('clear').addEventListener('click', function () {
    while (eventsEl.firstChild) { eventsEl.removeChild(eventsEl.firstChild); }
  });
  render();
})();
