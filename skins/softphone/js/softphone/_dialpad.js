/*
 * _dialpad.js: the dial pad page (page_dialpad): number field, keypad, call button and the
 * general status line (STATUS notifications of line -1). Typing digits anywhere on the page goes
 * into the field, Enter calls (see main.js).
 */
(function (global) {
  'use strict';
  var j$ = global.j$;
  var S = global.WPSkin;
  var t = S.t;

  var KEYS = [
    ['1', ''], ['2', 'ABC'], ['3', 'DEF'], ['4', 'GHI'], ['5', 'JKL'], ['6', 'MNO'],
    ['7', 'PQRS'], ['8', 'TUV'], ['9', 'WXYZ'], ['*', ''], ['0', '+'], ['#', '']
  ];

  // Fills a keypad container with 12 buttons calling onKey(digit).
  function buildKeypad(container, onKey) {
    container.textContent = '';
    KEYS.forEach(function (k) {
      var b = S.el('button', 'btn key');
      b.type = 'button';
      b.setAttribute('data-key', k[0]);
      b.appendChild(S.el('span', 'key-digit', k[0]));
      if (k[1]) {
        var sub = S.el('span', 'key-letters', k[1]);
        sub.setAttribute('aria-hidden', 'true');
        b.appendChild(sub);
      }
      if (k[0] === '*') { b.setAttribute('aria-label', t('dialer.star')); }
      if (k[0] === '#') { b.setAttribute('aria-label', t('dialer.hash')); }
      b.addEventListener('click', function () { onKey(k[0]); });
      container.appendChild(b);
    });
  }
  S.buildKeypad = buildKeypad;

  function renderStatus() {
    var g = S.general;
    var st = g.status || '';
    S.byId('dial_status').textContent = st;
  }

  // Voicemail button: when a voicemail number is known, unless disableoptions has VOICEMAIL or
  // the feature set is minimal.
  function renderVoicemail() {
    var row = S.byId('dial_voicemail_row');
    if (S.disabled('VOICEMAIL') || S.featureset() <= 0) { row.hidden = true; return; }
    S.api('getparameter', 'voicemailnum').then(function (v) { row.hidden = !String(v || '').trim(); }, function () { row.hidden = true; });
  }

  // New voicemail messages (MWI notifications): a badge on the Voicemail button, cleared when
  // the user calls the voicemail.
  var mwiCount = 0;
  function renderMwi() {
    var badge = S.byId('dial_voicemail_count');
    badge.hidden = mwiCount <= 0;
    badge.textContent = mwiCount > 99 ? '99+' : String(mwiCount);
    S.byId('dial_voicemail').setAttribute('aria-label', mwiCount > 0 ? t('sp.voicemail_new', { n: mwiCount }) : t('sp.voicemail'));
  }

  function dial() {
    var input = S.byId('dial_number');
    var num = input.value.trim();
    if (!num) {
      var last = S.load('lastdialed', '');
      if (last) { input.value = last; input.focus(); return; }
    }
    S.call(num).then(function (ok) { if (ok) { input.value = ''; } });
  }

  // The user's own presence (setpresencestatus), once registered: shown with the last state
  // chosen (Online at first).
  function renderPresence() {
    var row = S.byId('dial_presence_row');
    row.hidden = !S.isRegistered();
    var sel = S.byId('dial_presence');
    if (global.document.activeElement !== sel) { sel.value = S.load('presence', '') || 'Online'; }
  }

  S.page('page_dialpad', {
    onCreate: function () {
      var input = S.byId('dial_number');
      buildKeypad(S.byId('dial_keypad'), function (d) { input.value += d; });
      S.byId('dial_call').addEventListener('click', dial);
      // The voicemail number (voicemailnum, set or learned from the server's message summary).
      S.byId('dial_voicemail').addEventListener('click', function () {
        mwiCount = 0;
        renderMwi();
        S.api('callvoicemail').catch(S.toastError);
      });
      j$(global.document).on('wpskin:mwi', function (e, d) {
        mwiCount = d && d.count > 0 ? d.count : 0;
        renderMwi();
        // The message summary may have taught the engine the voicemail number.
        renderVoicemail();
      });
      S.byId('dial_backspace').addEventListener('click', function () {
        input.value = input.value.slice(0, -1);
        input.focus();
      });
      input.addEventListener('keydown', function (e) {
        if (e.key === 'Enter') { e.preventDefault(); dial(); }
      });
      j$(global.document).on('wpskin:status', renderStatus);
      j$(global.document).on('wpskin:status', renderPresence);
      S.byId('dial_presence').addEventListener('change', function () {
        var sel = S.byId('dial_presence');
        S.setOwnPresence(sel.value).catch(function (e) {
          S.toastError(e);
          renderPresence();
        });
      });
    },
    onStart: function () {
      renderStatus();
      renderPresence();
      renderVoicemail();
      S.byId('dial_hint').hidden = S.featureset() === 0 && !!S.param('serveraddress');
      // extramenuurl / extramenutxt: the integrator's own entry on this page.
      var href = S.linkParam('extramenuurl');
      var extra = S.byId('dial_extramenu');
      extra.parentNode.hidden = !href;
      if (href) {
        extra.href = href;
        extra.textContent = S.param('extramenutxt') || href;
      }
    },
    onStop: function () {}
  });
})(window);
