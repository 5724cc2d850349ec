/*
 * Basic sample for webphone_api: registration status and account form, dial pad, call, hang up,
 * hold, mute, DTMF, blind transfer, and incoming calls accepted or rejected. It follows the calls
 * through onCallStateChange and reads hold/mute from the per-line STATUS notifications
 * (STATUS,line,statustext,peername,localname,endpointtype,peerdisplayname,callid,online,
 * registered,incall,mute,hold,...). Only DOM APIs; every text from the engine, the peer or the
 * user is set with textContent.
 */
(function () {
  'use strict';

  var wp = window.webphone_api;
  function $(id) { return document.getElementById(id); }
  var body = document.body;

  // line -> {line, event, direction, peer, name, status, mute, hold}
  var calls = {};
  var active = 0; // the line the in-call buttons act on

  function showMessage(text) {
    $('message').textContent = text || '';
    $('message').hidden = !text;
  }
  function showError(e) { showMessage(e && e.message ? e.message : String(e)); }

  function ringingLine() {
    var found = 0;
    Object.keys(calls).forEach(function (k) {
      var c = calls[k];
      if (c.direction === 2 && (c.event === 'callSetup' || c.event === 'callRinging')) { found = c.line; }
    });
    return found;
  }

  function connectedLine() {
    if (calls[active] && calls[active].event === 'callConnected') { return active; }
    var found = 0;
    Object.keys(calls).forEach(function (k) { if (calls[k].event === 'callConnected') { found = calls[k].line; } });
    return found;
  }

  function who(c) { return c.name && c.name !== c.peer ? c.name + ' (' + c.peer + ')' : c.peer; }

  function render() {
    var st = wp.state;
    body.setAttribute('data-loaded', st.loaded ? '1' : '0');
    body.setAttribute('data-registered', st.registered ? '1' : '0');
    $('reg').textContent = st.registered ? 'Registered' : 'Not registered';
    $('status').textContent = st.status || (st.loaded ? 'Starting…' : 'Loading…');

    var ring = ringingLine();
    body.setAttribute('data-ringing', ring ? '1' : '0');
    $('incoming').hidden = !ring;
    if (ring) { $('incoming-peer').textContent = who(calls[ring]); }

    var any = Object.keys(calls).length > 0;
    body.setAttribute('data-incall', any ? '1' : '0');
    var cur = calls[connectedLine()] || calls[active] || null;
    $('incall').hidden = !cur || (ring && cur.line === ring);
    if (cur) {
      $('incall-peer').textContent = who(cur) + (cur.status ? ' · ' + cur.status : '');
      $('hold').textContent = cur.hold ? 'Resume' : 'Hold';
      $('hold').setAttribute('aria-pressed', cur.hold ? 'true' : 'false');
      $('mute').textContent = cur.mute ? 'Unmute' : 'Mute';
      $('mute').setAttribute('aria-pressed', cur.mute ? 'true' : 'false');
    }
    body.setAttribute('data-hold', cur && cur.hold ? '1' : '0');
    body.setAttribute('data-mute', cur && cur.mute ? '1' : '0');
    $('call').disabled = !!ring;
  }

  if (!wp) {
    $('status').textContent = 'webphone_api.js is not loaded';
    return;
  }

  // ------------------------------------------------------------------ callbacks

  wp.onLoaded(render);
  wp.onStart(render);
  wp.onRegistered(function () { showMessage(''); render(); });
  wp.onUnRegistered(render);
  wp.onRegisterFailed(function (reason) { showMessage('Registration failed: ' + (reason || '')); render(); });
  wp.onDisplay(function (message, title) { showMessage(title ? title + ': ' + message : message); });

  wp.onCallStateChange(function (event, direction, peername, peerdisplayname, line) {
    var n = parseInt(line, 10) || 1;
    if (event === 'callDisconnected') {
      delete calls[n];
      if (active === n) { active = 0; }
    } else {
      var c = calls[n] || { line: n, mute: false, hold: false, status: '' };
      c.event = String(event);
      c.direction = parseInt(direction, 10) || 0;
      c.peer = String(peername || '');
      c.name = String(peerdisplayname || '');
      calls[n] = c;
      if (event === 'callConnected' || !active) { active = n; }
    }
    render();
  });

  wp.onEvents(function (text) {
    String(text || '').split(/\r?\n/).forEach(function (line) {
      if (line.indexOf('STATUS,') !== 0) { return; }
      var f = line.split(',');
      var n = parseInt(f[1], 10);
      if (n >= 1 && calls[n]) {
        calls[n].status = f[2] || '';
        if (f.length > 12) {
          calls[n].mute = f[11] !== '' && f[11] !== '0';
          calls[n].hold = f[12] !== '' && f[12] !== '0';
        }
      }
    });
    render();
  });

  // ------------------------------------------------------------------ actions

  $('call').addEventListener('click', function () {
    var number = $('number').value.trim();
    if (!number) { showMessage('Enter a number or a SIP address.'); $('number').focus(); return; }
    showMessage('');
    wp.call(number).catch(showError);
  });
  $('number').addEventListener('keydown', function (e) { if (e.key === 'Enter') { $('call').click(); } });

  $('accept').addEventListener('click', function () { wp.accept(ringingLine() || -1).catch(showError); });
  $('reject').addEventListener('click', function () { wp.reject(ringingLine() || -1).catch(showError); });
  $('hangup').addEventListener('click', function () { wp.hangup(connectedLine() || active || -1).catch(showError); });
  $('hold').addEventListener('click', function () {
    var c = calls[connectedLine()];
    if (c) { wp.hold(!c.hold, c.line).catch(showError); }
  });
  $('mute').addEventListener('click', function () {
    var c = calls[connectedLine()];
    if (c) { wp.mute(!c.mute, 0, c.line).catch(showError); }
  });
  $('transfer').addEventListener('click', function () {
    var to = $('transfer-to').value.trim();
    if (!to) { showMessage('Enter where to transfer the call.'); return; }
    if (connectedLine()) { wp.setline(connectedLine()).then(function () { return wp.transfer(to); }).catch(showError); }
  });

  Array.prototype.forEach.call(document.querySelectorAll('.keypad button'), function (btn) {
    btn.addEventListener('click', function () {
      var key = btn.getAttribute('data-key');
      var n = connectedLine();
      if (n) {
        wp.dtmf(key, n).catch(showError);
      } else {
        $('number').value += key;
      }
    });
  });

  $('account-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var server = $('server').value.trim();
    var username = $('username').value.trim();
    var password = $('password').value;
    if (!server || !username) { showMessage('Enter the server and the username.'); return; }
    showMessage('Registering…');
    wp.setparameter('serveraddress', server)
      .then(function () { return wp.setparameter('username', username); })
      .then(function () { return password ? wp.setparameter('password', password) : null; })
      .then(function () { return wp.register(); })
      .catch(showError);
  });
  $('unregister').addEventListener('click', function () { wp.unregister().catch(showError); });

  // The account fields show what the engine holds (never the password).
  wp.onLoaded(function () {
    // getparameter answers synchronously, as in the original API.
    var server = wp.getparameter('serveraddress');
    var user = wp.getparameter('username');
    if (!$('server').value) { $('server').value = server || ''; }
    if (!$('username').value) { $('username').value = user || ''; }
    $('account').open = !server || !user;
  });

  render();
})();
