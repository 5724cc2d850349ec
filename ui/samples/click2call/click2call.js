/*
 * Click-to-call example: one button that calls a fixed number through webphone_api and turns
 * into a hang-up button during the call. The number is the callto parameter when it is set
 * (static block of webphone_api.js, wp_callto cookie or ?wp_callto= in the page URL), else the
 * element's data-callto attribute. Texts from the engine are shown with textContent only.
 */
(function () {
  'use strict';

  var wp = window.webphone_api;
  var box = document.getElementById('c2c');
  var button = document.getElementById('c2c-button');
  var status = document.getElementById('c2c-status');
  var number = box.getAttribute('data-callto') || '';
  var line = 0; // the line of our call, 0 = none

  function set(state, text) {
    box.setAttribute('data-state', state);
    button.textContent = state === 'idle' ? 'Call us' : 'Hang up';
    if (text !== undefined) { status.textContent = text; }
  }

  if (!wp) { status.textContent = 'Phone unavailable'; return; }

  wp.onLoaded(function () {
    // getparameter answers synchronously, as in the original API.
    var v = String(wp.getparameter('callto') || '').trim();
    if (v) { number = v; }
    button.disabled = !number;
    set('idle', number ? 'Ready' : 'No number to call');
  });

  wp.onDisplay(function (message) { status.textContent = message; });

  wp.onCallStateChange(function (event, direction, peername, peerdisplayname, n) {
    if (String(direction) !== '1') { return; } // only our outgoing call
    if (event === 'callDisconnected') {
      line = 0;
      set('idle', 'Call ended');
      return;
    }
    line = parseInt(n, 10) || line;
    if (event === 'callConnected') {
      set('incall', 'Connected');
    } else {
      set('calling', event === 'callRinging' ? 'Ringing…' : 'Calling…');
    }
  });

  // The engine's call duration ("In Call (12 sec)") while connected.
  wp.onEvents(function (text) {
    if (box.getAttribute('data-state') !== 'incall') { return; }
    String(text || '').split(/\r?\n/).forEach(function (l) {
      var f = l.split(',');
      if (f[0] === 'STATUS' && f[1] === '-1' && /^In Call/.test(f[2] || '')) { status.textContent = f[2]; }
    });
  });

  button.addEventListener('click', function () {
    if (box.getAttribute('data-state') === 'idle') {
      set('calling', 'Calling…');
      wp.call(number).catch(function (e) { set('idle', e.message); });
    } else {
      wp.hangup(line || -1).catch(function (e) { status.textContent = e.message; });
    }
  });
})();
