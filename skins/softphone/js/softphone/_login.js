/*
 * _login.js: the login page (page_login): server, username and password, then setparameter and
 * register. Shown at start when no credentials are known (see `useloginpage`).
 */
(function (global) {
  'use strict';
  var j$ = global.j$;
  var S = global.WPSkin;
  var t = S.t;

  function showError(text) {
    var e = S.byId('login_error');
    e.textContent = text || '';
    e.hidden = !text;
  }

  // showserverinput: 0 hide, 1 auto (hidden when the server is preset by the integrator), 2 show.
  function serverVisible() {
    var mode = S.paramInt('showserverinput', 1);
    if (mode === 0) { return false; }
    if (mode === 2) { return true; }
    var preset = S.urlSet.serveraddress || !!(global.webphone_api && global.webphone_api.parameters && global.webphone_api.parameters.serveraddress);
    return !preset;
  }

  function submit(e) {
    e.preventDefault();
    var server = S.byId('login_server').value.trim();
    var user = S.byId('login_username').value.trim();
    var pass = S.byId('login_password').value;
    var userHidden = S.byId('login_username_field').hidden;
    var passHidden = S.byId('login_password_field').hidden;
    if (userHidden) { user = S.param('username'); }
    if (passHidden) { pass = S.param('password'); }
    if ((serverVisible() && !server) || !user || !pass) {
      showError(t('message.account_incomplete'));
      return;
    }
    showError('');
    var remember = S.byId('login_remember').checked;
    var account = { server: serverVisible() ? server : (S.load('account', {}) || {}).server || '', username: user };
    if (remember) { account.password = pass; }
    S.save('account', account);
    var sets = [];
    if (serverVisible()) { sets.push(S.setParam('serveraddress', server)); }
    sets.push(S.setParam('username', user));
    sets.push(S.setParam('password', pass));
    S.byId('login_submit').disabled = true;
    Promise.all(sets).then(function () {
      S.toast(t('message.registering'));
      return S.api('register');
    }).then(function () {
      S.byId('login_password').value = '';
      global.WPRouter.reset('page_dialpad');
    }, function (err) {
      showError(t('message.error', { reason: S.errText(err) }));
    }).then(function () { S.byId('login_submit').disabled = false; });
  }

  // newuser: a plain value is the integrator's sign-up page (a link); with a leading * it is an
  // HTTP API request, asked through the engine's linkrequest with what the user types into the
  // sign-up form as USERNAME and PASSWORD; the server's answer (NEWUSER notification) is shown
  // as text.
  var NEWUSER_WAIT_MS = 20000;
  var newuserTimer = null;
  var newuserTyped = '';

  function newuserStatus(text) {
    var e = S.byId('newuser_status');
    e.textContent = text || '';
    e.hidden = !text;
  }

  function showNewuser(on) {
    S.byId('login_form').hidden = on;
    S.byId('newuser_form').hidden = !on;
    newuserStatus('');
    if (on) { setTimeout(function () { S.byId('newuser_username').focus(); }, 0); }
  }

  function newuserDone(text) {
    if (newuserTimer) { clearTimeout(newuserTimer); newuserTimer = null; }
    S.byId('newuser_submit').disabled = false;
    newuserStatus(text);
  }

  function newuserSubmit(e) {
    e.preventDefault();
    var user = S.byId('newuser_username').value.trim();
    var pass = S.byId('newuser_password').value;
    if (!user || !pass) { newuserStatus(t('message.account_incomplete')); return; }
    var q = new global.URLSearchParams();
    q.set('USERNAME', user);
    q.set('PASSWORD', pass);
    newuserTyped = user;
    S.byId('newuser_submit').disabled = true;
    newuserStatus(t('sp.newuser_sending'));
    newuserTimer = setTimeout(function () { newuserDone(t('sp.newuser_noanswer')); }, NEWUSER_WAIT_MS);
    S.api('linkrequest', 'newuser', q.toString()).catch(function (err) {
      newuserDone(t('message.error', { reason: S.errText(err) }));
    });
  }

  function renderNewuser() {
    var raw = String(S.param('newuser') || '').trim();
    var api = raw.charAt(0) === '*';
    var href = api ? null : S.linkParam('newuser');
    var link = S.byId('login_newuser_link');
    link.hidden = !href;
    if (href) { link.href = href; }
    S.byId('login_newuser').hidden = !api;
  }

  S.page('page_login', {
    onCreate: function () {
      S.byId('login_form').addEventListener('submit', submit);
      S.byId('login_newuser').addEventListener('click', function () { showNewuser(true); });
      S.byId('newuser_back').addEventListener('click', function () { showNewuser(false); });
      S.byId('newuser_form').addEventListener('submit', newuserSubmit);
      j$(global.document).on('wpskin:newuser', function (ev, text) {
        if (!newuserTimer) { return; }
        newuserDone(String(text || '').trim() || t('sp.newuser_noanswer'));
        // The new name is ready to sign in with.
        if (newuserTyped) { S.byId('login_username').value = newuserTyped; }
      });
      S.byId('login_skip').addEventListener('click', function () {
        S.save('skiplogin', true);
        global.WPRouter.reset('page_dialpad');
      });
    },
    onStart: function () {
      var stored = S.load('account', {}) || {};
      S.byId('login_server_field').hidden = !serverVisible();
      S.byId('login_server').value = S.param('serveraddress') || stored.server || '';
      S.byId('login_username').value = S.param('username') || stored.username || '';
      S.byId('login_username_field').hidden = S.param('username') === 'Anonymous';
      S.byId('login_password_field').hidden = S.param('password') === 'nopassword';
      S.byId('login_remember').checked = !!stored.password;
      var brand = S.param('brandname') || t('app.title');
      S.byId('login_brand').textContent = S.param('companyname') ? brand + ' · ' + S.param('companyname') : brand;
      var logo = S.param('logo');
      var box = S.byId('login_logo');
      box.textContent = '';
      var href = logo ? S.logoHref(logo) : null;
      if (href) {
        var img = S.el('img');
        img.src = href;
        img.alt = brand;
        box.appendChild(img);
      } else if (logo) {
        box.appendChild(S.el('span', 'logo-text', logo));
      }
      renderNewuser();
      showNewuser(false);
      var forgot = S.linkParam('forgotpasswordurl');
      var link = S.byId('login_forgot');
      link.hidden = !forgot;
      if (forgot) { link.href = forgot; }
      showError('');
      var first = j$('#login_form input:visible').filter(function () { return !this.value; }).get(0);
      if (first) { setTimeout(function () { first.focus(); }, 0); }
    },
    onStop: function () {}
  });
})(window);
