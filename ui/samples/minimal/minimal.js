/*
 * Minimal dial page for webphone_api: status line, number input with dial pad, call controls and
 * a small account form. Only DOM APIs and webphone_api; text is always set with textContent.
 * The English strings below use the keys of i18n/en.json.
 */
(function () {
  'use strict';

  var TEXT = {
    'status.loading': 'Loading…',
    'status.starting': 'Starting…',
    'status.ready': 'Ready',
    'status.no_engine': 'Phone engine unavailable',
    'message.enter_number': 'Enter a number, a SIP address or “echo” to call.',
    'message.account_incomplete': 'Enter the server, the username and the password.',
    'message.registering': 'Registering…',
    'message.register_failed': 'Registration failed: {reason}',
    'message.error': 'Error: {reason}'
  };

  function t(key, vars) {
    var s = TEXT[key] || key;
    Object.keys(vars || {}).forEach(function (k) { s = s.split('{' + k + '}').join(String(vars[k])); });
    return s;
  }

  function $(id) { return document.getElementById(id); }

  var wp = window.webphone_api;
  var statusEl = $('status');
  var numberEl = $('number');
  var messageEl = $('message');
  var callBtn = $('call');
  var answerBtn = $('answer');
  var hangupBtn = $('hangup');
  var incoming = {}; // line -> true while an incoming call waits for an answer
  var shownStartError = null;

  function showMessage(text) {
    messageEl.textContent = text || '';
    messageEl.hidden = !text;
  }

  function showError(e) {
    showMessage(t('message.error', { reason: e && e.message ? e.message : String(e) }));
  }

  function render() {
    var st = wp.state;
    var text;
    if (st.startError && !st.started) {
      text = t('status.no_engine');
      if (shownStartError !== st.startError) {
        shownStartError = st.startError;
        showMessage(t('message.error', { reason: st.startError }));
      }
    } else if (st.status) {
      text = st.status;
    } else if (st.started) {
      text = t('status.ready');
    } else if (st.loaded) {
      text = t('status.starting');
    } else {
      text = t('status.loading');
    }
    statusEl.textContent = text;
    var body = document.body;
    body.dataset.loaded = st.loaded ? '1' : '0';
    body.dataset.started = st.started ? '1' : '0';
    body.dataset.registered = st.registered ? '1' : '0';
    body.dataset.incall = st.incall ? '1' : '0';
    if (!st.incall) { incoming = {}; }
    var ringing = Object.keys(incoming).length > 0;
    answerBtn.hidden = !ringing;
    hangupBtn.disabled = !st.incall;
    callBtn.hidden = ringing; // Answer takes its place while a call rings in
    callBtn.disabled = st.incall;
  }

  if (!wp) {
    statusEl.textContent = t('status.no_engine');
    return;
  }

  // ------------------------------------------------------------------ callbacks

  wp.onLoaded(function () { render(); });
  // After a page reload the engine may already be registered or in a call: the facade
  // rebuilt its state before onStart.
  wp.onStart(function () { render(); });
  wp.onEvents(function () { render(); });
  wp.onLog(function () { render(); });
  wp.onRegistered(function () { showMessage(''); render(); });
  wp.onUnRegistered(function () { render(); });
  wp.onRegisterFailed(function (reason) {
    showMessage(t('message.register_failed', { reason: reason || '' }));
    render();
  });
  wp.onDisplay(function (message, title) {
    showMessage(title ? title + ': ' + message : message);
  });
  wp.onCallStateChange(function (event, direction, peername, peerdisplayname, line) {
    var key = String(line);
    document.body.dataset.callstate = String(event || '');
    if (String(direction) === '2' && (event === 'callSetup' || event === 'callRinging')) {
      incoming[key] = true;
    } else {
      delete incoming[key];
    }
    render();
  });

  // ------------------------------------------------------------------ actions

  function dial() {
    var number = numberEl.value.trim();
    if (!number) {
      showMessage(t('message.enter_number'));
      numberEl.focus();
      return;
    }
    showMessage('');
    wp.call(number).catch(showError);
  }

  function hangup() { wp.hangup().catch(showError); }

  function answer() { wp.accept().catch(showError); }

  function pressKey(key) {
    if (wp.state.incall && Object.keys(incoming).length === 0) {
      wp.dtmf(key).catch(showError);
    }
  }

  callBtn.addEventListener('click', dial);
  hangupBtn.addEventListener('click', hangup);
  answerBtn.addEventListener('click', answer);

  Array.prototype.forEach.call(document.querySelectorAll('.dialpad button'), function (btn) {
    btn.addEventListener('click', function () {
      var key = btn.getAttribute('data-key');
      numberEl.value += key;
      pressKey(key);
      numberEl.focus();
    });
  });

  var DIAL_KEY = /^[0-9*#]$/;

  document.addEventListener('keydown', function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var target = ev.target;
    var inAccountForm = !!(target && target.closest && target.closest('#account-form'));
    if (ev.key === 'Escape') {
      if (wp.state.incall) { ev.preventDefault(); hangup(); }
      return;
    }
    if (inAccountForm) { return; }
    if (ev.key === 'Enter' && (target === numberEl || target === document.body)) {
      ev.preventDefault();
      dial();
      return;
    }
    if (DIAL_KEY.test(ev.key)) {
      if (target === numberEl) {
        pressKey(ev.key); // the input itself records the character
      } else if (target === document.body) {
        ev.preventDefault();
        numberEl.value += ev.key;
        pressKey(ev.key);
        numberEl.focus();
      }
    }
  });

  $('account-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var server = $('server').value.trim();
    var username = $('username').value.trim();
    var password = $('password').value;
    if (!server || !username || !password) {
      showMessage(t('message.account_incomplete'));
      return;
    }
    showMessage(t('message.registering'));
    Promise.all([
      wp.setparameter('serveraddress', server),
      wp.setparameter('username', username),
      wp.setparameter('password', password)
    ]).then(function () { return wp.register(); }).catch(showError);
  });

  render();
  numberEl.focus();
})();
