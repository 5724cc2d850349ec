// The incoming-call (and link-call confirmation) pop-up of the desktop app. It reads what to show
// with the `popup_info` command and sends its buttons with `popup_action`; the app closes the
// window when the call is answered or ends. Caller names and numbers are set as text, never HTML.
(function () {
  'use strict';
  var invoke = window.__TAURI__.core.invoke;
  var root = document.getElementById('popup');
  function setText(id, s) { document.getElementById(id).textContent = s || ''; }

  function render(info) {
    root.setAttribute('data-kind', info ? info.kind : '');
    if (!info) { setText('popup_heading', 'No call'); setText('popup_name', ''); setText('popup_number', ''); return; }
    if (info.kind === 'incoming') {
      setText('popup_heading', 'Incoming call');
      setText('popup_name', info.name || info.number);
      setText('popup_number', info.name && info.name !== info.number ? info.number : '');
      document.title = 'Incoming call: ' + (info.name || info.number);
    } else {
      setText('popup_heading', 'Call this number?');
      setText('popup_name', info.number);
      setText('popup_number', '');
      document.title = 'Call ' + info.number + '?';
    }
  }

  function refresh() {
    return invoke('popup_info').then(render, function (e) { setText('popup_error', String(e)); });
  }
  window.wpPopupRefresh = refresh;

  Array.prototype.forEach.call(document.querySelectorAll('button[data-action]'), function (b) {
    b.addEventListener('click', function () {
      var buttons = document.querySelectorAll('button');
      Array.prototype.forEach.call(buttons, function (x) { x.disabled = true; });
      invoke('popup_action', { action: b.getAttribute('data-action') }).catch(function (e) {
        setText('popup_error', String(e));
        Array.prototype.forEach.call(buttons, function (x) { x.disabled = false; });
      });
    });
  });
  refresh();
}());
