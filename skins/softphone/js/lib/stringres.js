/*
 * stringres.js: user-interface strings of the softphone skin.
 *
 * Strings live in ../../i18n/<lang>.json (flat "key": "text" maps shared by the skins). Elements
 * name their string with data-i18n (text), data-i18n-placeholder, data-i18n-aria-label or
 * data-i18n-title; the English text written in the HTML is the fallback when a file cannot be
 * loaded. Integrators can add or override strings without editing the JSON files:
 *
 *   stringres.put({ "sp.tab_dialpad": "Keypad", "sp.tab_dialpad_it": "Tastiera" });
 *
 * A key with a `_<lang>` suffix wins for that language.
 *
 * The language: the `language` parameter when it names a supported language (two letters;
 * "pt-BR" counts as "pt"), else the first supported one of the browser's languages
 * (navigator.languages), else English. The click2call skin uses this file too; pages outside
 * the skin folders call stringres.setBase(url of the i18n/ folder) before load().
 */
(function (global) {
  'use strict';

  var LANGUAGES = [
    { code: 'en', name: 'English' },
    { code: 'de', name: 'Deutsch' },
    { code: 'fr', name: 'Français' },
    { code: 'es', name: 'Español' },
    { code: 'it', name: 'Italiano' },
    { code: 'pt', name: 'Português' },
    { code: 'hu', name: 'Magyar' },
    { code: 'ro', name: 'Română' },
    { code: 'ru', name: 'Русский' },
    { code: 'zh', name: '中文' }
  ];
  var BASE = '../../i18n/';

  var tables = {};      // lang -> {key: text}
  var custom = {};      // integrator strings
  var domDefaults = {}; // key -> English text found in the HTML
  var lang = 'en';

  function known(code) {
    for (var i = 0; i < LANGUAGES.length; i++) { if (LANGUAGES[i].code === code) { return true; } }
    return false;
  }

  // Picks a supported language: the requested one, else the browser's, else English.
  function pick(requested) {
    var c = String(requested || '').trim().toLowerCase().slice(0, 2);
    if (known(c)) { return c; }
    var navs = (global.navigator && (global.navigator.languages || [global.navigator.language])) || [];
    for (var i = 0; i < navs.length; i++) {
      var n = String(navs[i] || '').toLowerCase().slice(0, 2);
      if (known(n)) { return n; }
    }
    return 'en';
  }

  function fetchTable(code) {
    if (tables[code]) { return Promise.resolve(tables[code]); }
    if (typeof global.fetch !== 'function') { return Promise.resolve({}); }
    return global.fetch(BASE + code + '.json', { cache: 'no-cache' }).then(function (r) {
      if (!r.ok) { throw new Error('HTTP ' + r.status); }
      return r.json();
    }).then(function (obj) {
      tables[code] = (obj && typeof obj === 'object') ? obj : {};
      return tables[code];
    }, function (e) {
      if (global.console) { global.console.warn('stringres: cannot load ' + code + '.json: ' + e.message); }
      tables[code] = {};
      return tables[code];
    });
  }

  function lookup(key) {
    if (Object.prototype.hasOwnProperty.call(custom, key + '_' + lang)) { return custom[key + '_' + lang]; }
    var t = tables[lang];
    if (t && typeof t[key] === 'string') { return t[key]; }
    if (Object.prototype.hasOwnProperty.call(custom, key)) { return custom[key]; }
    if (tables.en && typeof tables.en[key] === 'string') { return tables.en[key]; }
    if (Object.prototype.hasOwnProperty.call(domDefaults, key)) { return domDefaults[key]; }
    return null;
  }

  // The text of `key` with {name} placeholders replaced (values are plain text).
  function t(key, vars) {
    var s = lookup(key);
    if (s === null) { s = key; }
    if (vars) {
      Object.keys(vars).forEach(function (k) { s = s.split('{' + k + '}').join(String(vars[k])); });
    }
    return s;
  }

  // onDisplay texts of the engine and of webphone_api.js (English, fixed wording) and their keys;
  // (.*) parts become {reason}/{peer}/{code}/...; an optional part that did not match is empty,
  // and a name starting with '@' is itself an engine text, translated the same way (the
  // "account NAME: ..." prefix of an extra account's messages). A text not listed here is shown
  // as it came.
  var DISPLAY = [
    [/^account ([^:]+): (.*)$/, 'display.account', ['account', '@text']],
    [/^No response from server( \(.*\))?$/, 'display.reg_no_response', ['detail']],
    [/^Server address unreachable( \(.*\))?$/, 'display.reg_unreachable', ['detail']],
    [/^Authentication failed( \(.*\))?$/, 'display.reg_auth_failed', ['detail']],
    [/^Register rejected( \(.*\))?$/, 'display.reg_rejected', ['detail']],
    [/^Register failed( \(.*\))?$/, 'display.reg_failed', ['detail']],
    [/^SIP stack could not start: (.*)$/, 'display.sip_start_failed', ['reason']],
    [/^customsipheader not used: (.*)$/, 'display.customsipheader_unused', ['reason']],
    [/^No microphone: calls need one \(checkmicrophone=2\): (.*)$/, 'display.no_microphone_refused', ['reason']],
    [/^The transfer did not complete; the call is resumed$/, 'display.transfer_resumed', []],
    [/^Cannot open the recording device \((.*)\); using the default one$/, 'display.capture_default', ['reason']],
    [/^Cannot open the playback device \((.*)\); using the default one$/, 'display.playback_default', ['reason']],
    [/^transport (\S+) \(HTTP tunnelling\) is not supported by this engine: .*$/, 'display.transport_unsupported', ['code']],
    [/^The recording device (.*) is gone \((.*)\): using the default recording device (.*)$/, 'display.capture_gone_default', ['device', 'reason', 'other']],
    [/^The playback device (.*) is gone \((.*)\): using the default playback device (.*)$/, 'display.playback_gone_default', ['device', 'reason', 'other']],
    [/^The recording device (.*) is gone \((.*)\): the default recording device cannot be opened either; silent until a device returns$/, 'display.capture_gone_silent', ['device', 'reason']],
    [/^The playback device (.*) is gone \((.*)\): the default playback device cannot be opened either; silent until a device returns$/, 'display.playback_gone_silent', ['device', 'reason']],
    [/^The recording device (.*) is back and in use again$/, 'display.capture_back', ['device']],
    [/^The playback device (.*) is back and in use again$/, 'display.playback_back', ['device']],
    [/^The recording volume \((.*)\) was .*$/, 'display.volume_fixed_in', ['control']],
    [/^The playback volume \((.*)\) was .*$/, 'display.volume_fixed_out', ['control']],
    [/^Invalid phone number or SIP URI or username$/, 'display.invalid_number', []],
    [/^Check your microphone! No audio record detected\.$/, 'display.no_microphone', []],
    [/^Cannot open the recording device, sending silence: (.*)$/, 'display.no_capture', ['reason']],
    [/^Cannot open the playback device, audio is not played: (.*)$/, 'display.no_playback', ['reason']],
    [/^The call could not be changed: (.*)$/, 'display.call_change_failed', ['reason']],
    [/^Transfer failed \((.*)\); the call goes on$/, 'display.transfer_failed', ['code']],
    [/^Already in call with (.*)$/, 'display.already_in_call', ['peer']],
    [/^extra SIP headers not used: (.*)$/, 'display.sip_headers_unused', ['reason']],
    [/^No connection to the phone engine$/, 'display.no_engine', []]
  ];

  // The text of an onDisplay message in the current language (peer-provided parts stay text).
  function display(text) {
    var s = String(text === undefined || text === null ? '' : text);
    for (var i = 0; i < DISPLAY.length; i++) {
      var m = DISPLAY[i][0].exec(s);
      if (!m || lookup(DISPLAY[i][1]) === null) { continue; }
      var vars = {};
      DISPLAY[i][2].forEach(function (name, j) {
        var v = m[j + 1] === undefined ? '' : m[j + 1];
        if (name.charAt(0) === '@') { vars[name.slice(1)] = display(v); } else { vars[name] = v; }
      });
      return t(DISPLAY[i][1], vars);
    }
    return s;
  }

  var ATTRS = [
    ['data-i18n-placeholder', 'placeholder'],
    ['data-i18n-aria-label', 'aria-label'],
    ['data-i18n-title', 'title']
  ];

  // Translates every marked element under root (always as text, never as HTML).
  function apply(root) {
    root = root || global.document;
    var els = root.querySelectorAll('[data-i18n]');
    for (var i = 0; i < els.length; i++) {
      var k = els[i].getAttribute('data-i18n');
      if (!Object.prototype.hasOwnProperty.call(domDefaults, k)) { domDefaults[k] = els[i].textContent; }
      var v = lookup(k);
      if (v !== null) { els[i].textContent = v; }
    }
    ATTRS.forEach(function (pair) {
      var list = root.querySelectorAll('[' + pair[0] + ']');
      for (var j = 0; j < list.length; j++) {
        var key = list[j].getAttribute(pair[0]);
        if (!Object.prototype.hasOwnProperty.call(domDefaults, key) && list[j].hasAttribute(pair[1])) {
          domDefaults[key] = list[j].getAttribute(pair[1]);
        }
        var val = lookup(key);
        if (val !== null) { list[j].setAttribute(pair[1], val); }
      }
    });
    if (root === global.document) { global.document.documentElement.lang = lang; }
  }

  global.stringres = {
    languages: LANGUAGES,
    pick: pick,
    t: t,
    get: t,
    display: display,
    apply: apply,
    language: function () { return lang; },
    // Loads English (the fallback) and `code`, makes it current and translates the page
    // (opts.apply === false: only loads; for widgets on someone else's page, which must not
    // change that page's texts or its <html lang>).
    load: function (code, opts) {
      var c = pick(code);
      return fetchTable('en').then(function () { return fetchTable(c); }).then(function () {
        lang = c;
        if (!opts || opts.apply !== false) { apply(global.document); }
        return c;
      });
    },
    // Where the <lang>.json files are (default ../../i18n/ relative to the page).
    setBase: function (url) {
      var b = String(url || '');
      if (b && b !== BASE) { BASE = b.charAt(b.length - 1) === '/' ? b : b + '/'; tables = {}; }
    },
    put: function (obj) {
      Object.keys(obj || {}).forEach(function (k) { custom[k] = String(obj[k]); });
    }
  };
})(window);
