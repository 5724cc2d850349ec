/*
 * _settings.js: the settings page (page_settings): account (setparameter + register, sign out),
 * audio devices (getdevicelist / getdevice / setdevice), codec order (the `codec` parameter),
 * theme, language, log level, about.
 */
(function (global) {
  'use strict';
  var j$ = global.j$;
  var S = global.WPSkin;
  var t = S.t;

  var CODECS = ['PCMU', 'PCMA', 'G722', 'OPUS'];

  // Fills a <select> with the devices of kind dev (0 recording, 1 playback); the first entry is
  // the system default (empty name).
  // ---- microphone level and speaker test (engine extension audiotest) ----
  // While the microphone test runs the engine reports the capture level every 200 ms as a VAD
  // notification; the meter shows its peak (local_max, 0..32767) on a -60..0 dBFS scale. The
  // engine ends the test by itself after 30 s, or when a call takes the microphone.
  var MIC_TEST_MS = 30000;
  var micTesting = false;
  var micTimer = null;

  function showLevel(percent) {
    var p = Math.max(0, Math.min(100, Math.round(percent)));
    S.byId('settings_mic_meter_bar').style.width = p + '%';
    S.byId('settings_mic_meter').setAttribute('aria-valuenow', String(p));
  }

  function peakPercent(max) {
    if (!(max > 0)) { return 0; }
    var db = 20 * Math.log10(max / 32767);
    return (db + 60) / 60 * 100;
  }

  function setMicTesting(on) {
    micTesting = on;
    clearTimeout(micTimer);
    var b = S.byId('settings_mic_test');
    b.setAttribute('aria-pressed', on ? 'true' : 'false');
    b.setAttribute('data-i18n', on ? 'sp.mic_test_stop' : 'sp.mic_test');
    b.textContent = t(on ? 'sp.mic_test_stop' : 'sp.mic_test');
    if (on) { micTimer = setTimeout(function () { setMicTesting(false); }, MIC_TEST_MS); } else { showLevel(0); }
  }

  function stopMicTest() {
    if (!micTesting) { return; }
    setMicTesting(false);
    S.api('audiotest', 'stop').catch(function () { /* engine gone: nothing runs */ });
  }

  function onLevels(text) {
    if (!micTesting) { return; }
    String(text || '').split(/\r?\n/).forEach(function (raw) {
      var line = raw.replace(/^WPNOTIFICATION,/, '').replace(/\s*NEOL\s*$/, '');
      if (line.indexOf('VAD,') !== 0) { return; }
      var m = /local_max:\s*(\d+)/.exec(line);
      if (m) { showLevel(peakPercent(Number(m[1]))); }
    });
  }

  function fillDeviceSelect(sel, dev) {
    sel.textContent = '';
    var def = S.el('option', null, t('sp.device_default'));
    def.value = '';
    sel.appendChild(def);
    return S.api('getdevicelist', dev).then(function (list) {
      var names = Array.isArray(list) ? list : String(list || '').split(/\r?\n/);
      names.forEach(function (n) {
        n = String(n).trim();
        if (!n) { return; }
        var o = S.el('option', null, n);
        o.value = n;
        sel.appendChild(o);
      });
      return S.api('getdevice', dev === 0 ? 0 : 1);
    }).then(function (cur) {
      if (cur !== undefined && cur !== null) { sel.value = String(cur); }
      if (sel.selectedIndex < 0) { sel.value = ''; }
    }).catch(function (e) {
      sel.setAttribute('data-error', S.errText(e));
    });
  }
  S.fillDeviceSelect = fillDeviceSelect;

  // ---------------------------------------------------------------- codecs

  function codecOrder() {
    var enabled = S.param('codec').split(',').map(function (c) { return c.trim().toUpperCase(); }).filter(Boolean);
    var order = enabled.slice();
    CODECS.forEach(function (c) { if (order.indexOf(c) < 0) { order.push(c); } });
    return order.map(function (c) { return { name: c, on: !enabled.length || enabled.indexOf(c) >= 0 }; });
  }

  var codecs = null;

  function saveCodecs() {
    var list = codecs.filter(function (c) { return c.on; }).map(function (c) { return c.name; });
    S.setParam('codec', list.join(',')).catch(S.toastError);
  }

  function renderCodecs(focusName, focusDir) {
    var ol = S.byId('settings_codec_list');
    ol.textContent = '';
    codecs.forEach(function (c, i) {
      var li = S.el('li', 'codec');
      var id = 'codec_' + c.name;
      var cb = S.el('input');
      cb.type = 'checkbox';
      cb.id = id;
      cb.checked = c.on;
      cb.addEventListener('change', function () {
        c.on = cb.checked;
        if (!codecs.some(function (x) { return x.on; })) { c.on = cb.checked = true; S.toast(t('sp.codec_need_one'), 'error'); return; }
        saveCodecs();
      });
      var label = S.el('label', 'codec-name', c.name);
      label.htmlFor = id;
      var up = S.el('button', 'btn btn-icon', '\u2191');
      up.type = 'button';
      up.setAttribute('aria-label', t('sp.move_up', { name: c.name }));
      up.disabled = i === 0;
      up.addEventListener('click', function () { move(i, -1); });
      var down = S.el('button', 'btn btn-icon', '\u2193');
      down.type = 'button';
      down.setAttribute('aria-label', t('sp.move_down', { name: c.name }));
      down.disabled = i === codecs.length - 1;
      down.addEventListener('click', function () { move(i, 1); });
      li.appendChild(cb);
      li.appendChild(label);
      li.appendChild(up);
      li.appendChild(down);
      ol.appendChild(li);
      if (focusName === c.name) {
        setTimeout(function () { var b = focusDir < 0 && !up.disabled ? up : (!down.disabled ? down : up); b.focus(); }, 0);
      }
    });
  }

  function move(i, d) {
    var j = i + d;
    if (j < 0 || j >= codecs.length) { return; }
    var tmp = codecs[i];
    codecs[i] = codecs[j];
    codecs[j] = tmp;
    renderCodecs(tmp.name, d);
    saveCodecs();
  }

  // ---------------------------------------------------------------- page

  // A theme's name in the current language (theme.<number>); integrators' own themes keep theirs.
  function themeName(x) {
    var key = 'theme.' + x.number;
    var v = t(key);
    return v === key ? x.name : v;
  }

  // ---------------------------------------------------------------- logs (getlogs, logsendto)

  var LOG_MAIL_CHARS = 1500; // mailto: bodies must stay short; the end of the log matters most

  // logsendto: 0 copy only; 1 upload (POST to logform_action with the fields filename and log);
  // 2 e-mail to supportmail (the last part of the log in the body).
  function renderLogActions() {
    var mode = S.paramInt('logsendto', 1);
    var text = S.byId('settings_logs_text');
    var shown = !text.hidden;
    S.byId('settings_logs').hidden = S.featureset() < 5;
    S.byId('settings_logs_copy').hidden = !shown;
    S.byId('settings_logs_upload').hidden = !(shown && mode === 1 && S.safeUrl(S.param('logform_action')));
    var mail = S.linkParam('supportmail', true);
    var email = S.byId('settings_logs_email');
    email.hidden = !(shown && mode === 2 && mail && /^mailto:/i.test(mail));
    if (!email.hidden) {
      var body = text.value.length > LOG_MAIL_CHARS ? text.value.slice(-LOG_MAIL_CHARS) : text.value;
      var subject = t('sp.logs_subject', { name: S.param('brandname') || t('app.title') });
      email.href = mail.split('?')[0] + '?subject=' + encodeURIComponent(subject) + '&body=' + encodeURIComponent(body);
    }
  }

  function showLogs() {
    return S.api('getlogs').then(function (v) { return String(v || ''); }, function (e) { return S.errText(e); }).then(function (logs) {
      var text = S.byId('settings_logs_text');
      text.value = logs || t('sp.logs_empty');
      text.hidden = false;
      text.scrollTop = text.scrollHeight;
      renderLogActions();
      Array.prototype.forEach.call(S.byId('settings_theme').options, function (o) {
        var x = (global.themelist || []).filter(function (y) { return String(y.number) === o.value; })[0];
        if (x) { o.textContent = themeName(x); }
      });
    });
  }

  function copyLogs() {
    var text = S.byId('settings_logs_text');
    var done = function () { S.toast(t('sp.logs_copied')); };
    if (global.navigator.clipboard && global.navigator.clipboard.writeText) {
      global.navigator.clipboard.writeText(text.value).then(done, function () { text.select(); });
    } else {
      text.select();
    }
  }

  // A form POST in a new tab (the log server's answer shows there).
  function uploadLogs() {
    var action = S.safeUrl(S.param('logform_action'));
    if (!action) { return; }
    var form = global.document.createElement('form');
    form.method = 'post';
    form.action = action;
    form.target = '_blank';
    form.enctype = 'multipart/form-data';
    form.hidden = true;
    [['filename', S.param('logform_filename') || 'webphone_log.txt'], ['log', S.byId('settings_logs_text').value]].forEach(function (f) {
      var input = global.document.createElement('textarea');
      input.name = f[0];
      input.value = f[1];
      form.appendChild(input);
    });
    global.document.body.appendChild(form);
    form.submit();
    global.document.body.removeChild(form);
  }

  // Services of the integrator (links parameters recharge, p2p, callback): a plain value is a
  // link; with a leading * it is an HTTP API request asked through the engine's linkrequest
  // with the values of a small form (recharge: PINCODE; p2p: PHONE1, PHONE2; callback:
  // CALLBACKNR). The server's answer (ANSWER notification) is shown as text under the form.
  var SERVICES = [
    ['recharge', 'sp.recharge', [['PINCODE', 'sp.pincode']]],
    ['p2p', 'sp.p2p', [['PHONE1', 'sp.phone1'], ['PHONE2', 'sp.phone2']]],
    ['callback', 'sp.callback', [['CALLBACKNR', 'sp.callbacknr']]]
  ];
  var pendingService = null;   // { status: element, button: element, timer: id }

  function serviceDone(text) {
    if (!pendingService) { return; }
    clearTimeout(pendingService.timer);
    pendingService.button.disabled = false;
    pendingService.status.textContent = text;
    pendingService.status.hidden = !text;
    pendingService = null;
  }

  function serviceForm(name, label, fields) {
    var form = S.el('form', 'form service-form');
    form.id = 'service_' + name;
    form.noValidate = true;
    form.appendChild(S.el('h3', null, t(label)));
    var inputs = fields.map(function (f) {
      var box = S.el('div', 'field');
      var id = 'service_' + name + '_' + f[0].toLowerCase();
      var l = S.el('label', null, t(f[1]));
      l.htmlFor = id;
      var input = S.el('input');
      input.type = 'text';
      input.id = id;
      input.autocomplete = 'off';
      box.appendChild(l);
      box.appendChild(input);
      form.appendChild(box);
      return [f[0], input];
    });
    var status = S.el('p', 'form-status');
    status.id = 'service_' + name + '_status';
    status.setAttribute('role', 'status');
    status.hidden = true;
    var button = S.el('button', 'btn btn-primary', t('sp.service_send'));
    button.type = 'submit';
    button.id = 'service_' + name + '_send';
    form.appendChild(status);
    form.appendChild(button);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var q = new global.URLSearchParams();
      var missing = false;
      inputs.forEach(function (p) {
        var v = p[1].value.trim();
        if (!v) { missing = true; }
        q.set(p[0], v);
      });
      if (missing) { status.textContent = t('message.account_incomplete'); status.hidden = false; return; }
      serviceDone('');
      button.disabled = true;
      status.textContent = t('sp.newuser_sending');
      status.hidden = false;
      pendingService = { status: status, button: button, timer: setTimeout(function () { serviceDone(t('sp.newuser_noanswer')); }, 20000) };
      S.api('linkrequest', name, q.toString()).catch(function (err) {
        serviceDone(t('message.error', { reason: S.errText(err) }));
      });
    });
    return form;
  }

  function renderServices() {
    var box = S.byId('settings_services_list');
    box.textContent = '';
    SERVICES.forEach(function (svc) {
      var raw = String(S.param(svc[0]) || '').trim();
      if (!raw) { return; }
      if (raw.charAt(0) === '*') {
        box.appendChild(serviceForm(svc[0], svc[1], svc[2]));
        return;
      }
      var href = S.linkParam(svc[0]);
      if (!href) { return; }
      var a = S.el('a', 'btn-link', t(svc[1]));
      a.href = href;
      a.id = 'service_' + svc[0] + '_link';
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      var p = S.el('p');
      p.appendChild(a);
      box.appendChild(p);
    });
    S.byId('settings_services').hidden = !box.firstChild;
  }

  j$(global.document).on('wpskin:answer', function (e, text) {
    serviceDone(String(text || '').trim() || t('sp.newuser_noanswer'));
  });

  S.page('page_settings', {
    onCreate: function () {
      S.byId('settings_logs_show').addEventListener('click', showLogs);
      S.byId('settings_logs_copy').addEventListener('click', copyLogs);
      S.byId('settings_logs_upload').addEventListener('click', uploadLogs);
      S.byId('settings_account_form').addEventListener('submit', function (e) {
        e.preventDefault();
        var server = S.byId('settings_server').value.trim();
        var user = S.byId('settings_username').value.trim();
        var pass = S.byId('settings_password').value;
        var disp = S.byId('settings_displayname').value.trim();
        if (!user || (!pass && !S.param('password'))) { S.toast(t('message.account_incomplete'), 'error'); return; }
        var sets = [S.setParam('username', user), S.setParam('displayname', disp)];
        if (!S.byId('settings_server_field').hidden) { sets.push(S.setParam('serveraddress', server)); }
        if (pass) { sets.push(S.setParam('password', pass)); }
        var stored = S.load('account', {}) || {};
        var acc = { server: server, username: user };
        if (stored.password) { acc.password = pass || stored.password; }
        S.save('account', acc);
        Promise.all(sets).then(function () {
          S.toast(t('message.registering'));
          return S.api('register');
        }).then(function () { S.byId('settings_password').value = ''; }, S.toastError);
      });
      S.byId('settings_signout').addEventListener('click', function () {
        S.api('unregister').catch(function () { /* not registered */ }).then(function () {
          var acc = S.load('account', {}) || {};
          delete acc.password;
          S.save('account', acc);
          S.remove('skiplogin');
          return S.setParam('password', '').catch(function () {});
        }).then(function () { global.WPRouter.reset('page_login'); });
      });
      var dIn = S.byId('settings_device_in'), dOut = S.byId('settings_device_out');
      dIn.addEventListener('change', function () { S.api('setdevice', 0, dIn.value, 2).catch(S.toastError); });
      dOut.addEventListener('change', function () { S.api('setdevice', 1, dOut.value, 2).catch(S.toastError); });
      S.byId('settings_mic_test').addEventListener('click', function () {
        if (micTesting) { stopMicTest(); return; }
        setMicTesting(true);
        S.api('audiotest', 'mic').catch(function (e) { setMicTesting(false); S.toastError(e); });
      });
      S.byId('settings_speaker_test').addEventListener('click', function () {
        S.api('audiotest', 'speaker').catch(S.toastError);
      });
      if (global.webphone_api) { global.webphone_api.onEvents(onLevels); }

      var th = S.byId('settings_theme');
      (global.themelist || []).forEach(function (x) {
        var o = S.el('option', null, themeName(x));
        o.value = String(x.number);
        th.appendChild(o);
      });
      th.addEventListener('change', function () {
        S.applyTheme(th.value);
        S.save('colortheme', th.value);
        S.setParam('colortheme', th.value).catch(function () {});
      });
      var lang = S.byId('settings_language');
      global.stringres.languages.forEach(function (l) {
        var o = S.el('option', null, l.name);
        o.value = l.code;
        o.lang = l.code;
        lang.appendChild(o);
      });
      lang.addEventListener('change', function () {
        S.save('language', lang.value);
        S.setParam('language', lang.value).catch(function () {});
        global.stringres.load(lang.value).then(function () { j$(global.document).trigger('wpskin:language'); });
      });
      // featureset 15 (technical users): any parameter by name. Leaving the name field shows the
      // engine's value (getparameter; a password reads back redacted); Set sends setparameter.
      var pname = S.byId('settings_param_name');
      var pvalue = S.byId('settings_param_value');
      pname.addEventListener('change', function () {
        var n = pname.value.trim();
        if (!n) { return; }
        S.api('getparameter', n).then(function (v) { pvalue.value = v === null || v === undefined ? '' : String(v); }, S.toastError);
      });
      S.byId('settings_advanced_form').addEventListener('submit', function (e) {
        e.preventDefault();
        var n = pname.value.trim();
        if (!n) { pname.focus(); return; }
        S.setParam(n, pvalue.value).then(function () { S.toast(t('sp.param_set_done', { name: n })); }, S.toastError);
      });
      var ll = S.byId('settings_loglevel');
      ll.addEventListener('change', function () { S.setParam('loglevel', ll.value).catch(S.toastError); });
    },
    onStart: function () {
      var stored = S.load('account', {}) || {};
      S.byId('settings_server').value = S.param('serveraddress') || stored.server || '';
      S.byId('settings_username').value = S.param('username') || stored.username || '';
      S.byId('settings_password').value = '';
      S.byId('settings_displayname').value = S.param('displayname');
      S.byId('settings_server_field').hidden = S.paramInt('showserverinput', 1) === 0;
      var fs = S.featureset();
      S.byId('settings_audio').hidden = S.disabled('Audio device');
      // displayvideodevice=1 asks for the camera choice with a preview; the engine has no video,
      // so the row says so (disabled) instead of offering a camera that would not be used.
      S.byId('settings_video_field').hidden = S.paramInt('displayvideodevice', 0) !== 1 || S.disabled('VIDEO');
      S.byId('settings_codecs').hidden = fs < 10;
      S.byId('settings_advanced').hidden = fs < 15 || S.disabled('advanced');
      S.byId('settings_theme_field').hidden = S.disabled('theme');
      S.byId('settings_loglevel').closest('.field').hidden = fs < 5;
      fillDeviceSelect(S.byId('settings_device_in'), 0);
      fillDeviceSelect(S.byId('settings_device_out'), 1);
      codecs = codecOrder();
      renderCodecs();
      S.byId('settings_theme').value = String(S.theme ? S.theme.number : 1);
      S.byId('settings_language').value = global.stringres.language();
      S.byId('settings_loglevel').value = S.param('loglevel') || '1';
      var brand = S.param('brandname') || t('app.title');
      var about = brand + (S.param('version') ? ' ' + S.param('version') : '') + (S.param('companyname') ? ' · ' + S.param('companyname') : '');
      S.byId('settings_about_text').textContent = about;
      renderLogActions();
      renderServices();
      // homepage, helpurl, supporturi, supportmail, accounturi, licenseurl: links (as text).
      var list = S.byId('settings_links');
      list.textContent = '';
      [['homepage', 'sp.homepage'], ['accounturi', 'sp.account_page'], ['helpurl', 'sp.help'],
        ['supporturi', 'sp.support'], ['supportmail', 'sp.support_mail'], ['licenseurl', 'sp.license']].forEach(function (p) {
        var href = S.linkParam(p[0], p[0] === 'supportmail');
        if (!href) { return; }
        var li = S.el('li');
        var a = S.el('a', null, t(p[1]));
        a.href = href;
        a.id = 'settings_link_' + p[0];
        if (!/^mailto:/i.test(href)) { a.target = '_blank'; a.rel = 'noopener noreferrer'; }
        li.appendChild(a);
        list.appendChild(li);
      });
      list.hidden = !list.firstChild;
      S.api('getenginename').then(function (n) {
        S.byId('settings_engine_text').textContent = t('sp.engine_name', { name: String(n) });
      }, function () { S.byId('settings_engine_text').textContent = ''; });
    },
    onStop: function () { stopMicTest(); }
  });
})(window);
