/*
 * common.js: shared state and helpers of the softphone skin (WPSkin).
 *
 *  - WPSkin.api(fn, args...): calls webphone_api.<fn>; a function this version of the API does
 *    not have yet rejects with a readable error (shown as a toast by callers).
 *  - UI parameters: URL `wp_<name>` first, then webphone_api.parameters, then the engine's
 *    getparameter, then the skin default.
 *  - Lines: fed from STATUS notifications (onEvents); history from CDR notifications.
 *  - Contacts and history are kept in localStorage for now.
 *
 * Everything that came from a peer, a server or the user is put on the page as text
 * (textContent / j$.text()), never as HTML.
 */
(function (global) {
  'use strict';

  var j$ = global.j$;
  var wp = global.webphone_api;
  var t = global.stringres.t;
  var STORE_PREFIX = 'wpskin.';

  // ------------------------------------------------------------------ small helpers

  function el(tag, cls, text) {
    var e = global.document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  // An icon of the sprite in softphone.html (decorative: hidden from screen readers).
  function icon(name, cls) {
    var NS = 'http://www.w3.org/2000/svg';
    var svg = global.document.createElementNS(NS, 'svg');
    svg.setAttribute('class', 'icon' + (cls ? ' ' + cls : ''));
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    var use = global.document.createElementNS(NS, 'use');
    use.setAttribute('href', '#i-' + name);
    svg.appendChild(use);
    return svg;
  }

  function byId(id) { return global.document.getElementById(id); }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }

  // 65 -> "01:05", 3700 -> "1:01:40"
  function formatDuration(sec) {
    sec = Math.max(0, Math.floor(sec || 0));
    var h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    return (h ? h + ':' + pad2(m) : pad2(m)) + ':' + pad2(s);
  }

  function errText(e) { return e && e.message ? e.message : String(e); }

  function load(key, def) {
    try {
      var v = global.localStorage.getItem(STORE_PREFIX + key);
      return v === null ? def : JSON.parse(v);
    } catch (e) { return def; }
  }

  function save(key, value) {
    try { global.localStorage.setItem(STORE_PREFIX + key, JSON.stringify(value)); } catch (e) { /* full or blocked */ }
  }

  function remove(key) {
    try { global.localStorage.removeItem(STORE_PREFIX + key); } catch (e) { /* blocked */ }
  }

  function truthy(v) {
    var s = String(v === undefined || v === null ? '' : v).trim().toLowerCase();
    return s === 'true' || s === '1' || s === 'yes' || s === 'on';
  }

  // ------------------------------------------------------------------ API access

  function api(fn) {
    var args = Array.prototype.slice.call(arguments, 1);
    if (!wp || typeof wp[fn] !== 'function') {
      return Promise.reject(new Error(t('sp.not_available', { fn: fn })));
    }
    try {
      return Promise.resolve(wp[fn].apply(wp, args));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // ------------------------------------------------------------------ parameters

  function urlParam(name) {
    var q = String(global.location.search || '').replace(/^\?/, '').split('&');
    for (var i = 0; i < q.length; i++) {
      var eq = q[i].indexOf('=');
      var k = eq < 0 ? q[i] : q[i].slice(0, eq);
      var v = eq < 0 ? '' : q[i].slice(eq + 1);
      try {
        k = decodeURIComponent(k.replace(/\+/g, ' '));
        v = decodeURIComponent(v.replace(/\+/g, ' '));
      } catch (e) { continue; }
      if (k.toLowerCase() === 'wp_' + name.toLowerCase()) { return v; }
    }
    return null;
  }

  var UI_DEFAULTS = {
    brandname: '', companyname: '', logo: '', header: '', footer: '', version: '',
    colortheme: '0', language: '', featureset: '10', showserverinput: '1', useloginpage: '-1',
    disableoptions: '', closecall_timeout: '8000', displayvolumecontrols: 'false',
    displayaudiodevice: 'false', showtoasts: 'true', messagepopup: '', defcontacts: '',
    forgotpasswordurl: '', multilinegui: '', extraoption: '', incomingcallpopup: '1',
    callnot_title: '', callnot_body: '', callnot_icon: '', callnot_image: '', chatsms: '0', showincomingchatas: '0', savetocontacts: '1', callparknumber: '',
    hasringcounter: 'false', homepage: '', helpurl: '', supporturi: '', supportmail: '', accounturi: '',
    licenseurl: '', advertisement: '', extramenuurl: '', extramenutxt: '', newuser: '',
    recharge: '', p2p: '', callback: '',
    logsendto: '1', logform_action: '', logform_filename: '',
    hasfiletransfer: 'false', filetransferurl: '', serveraddressbook_url: '', displaynotification: '1', displayvideodevice: '0',
    displaypeerdetails: '', showsynccontactsmenu: '1',
    haveloginpage: '', hasincomingcallpopup: '', hasincomingcall: '',
    bgcolor: '', buttoncolor: '', buttonhover: '', tabselectedcolor: '', fontcheme: '',
    fontcwhite: '', fontfamily: ''
  };
  var params = {};
  var urlSet = {};
  var explicitSet = {};   // set by the URL or webphone_api.parameters (extraoption does not override)

  // extraoption: "key=value;key2=value2;" (parameters.tsv). Returns [[key, value], ...].
  function parseExtraOption(v) {
    return String(v || '').split(';').map(function (pair) {
      var i = pair.indexOf('=');
      return i > 0 ? [pair.slice(0, i).trim().toLowerCase(), pair.slice(i + 1).trim()] : null;
    }).filter(function (p) { return p && p[0]; });
  }

  // Resolves every UI parameter once (engine answers are asynchronous).
  function loadParams(withEngine) {
    var names = Object.keys(UI_DEFAULTS).concat(['serveraddress', 'username', 'password', 'displayname', 'codec', 'loglevel']);
    var stat = (wp && wp.parameters) || {};
    return Promise.all(names.map(function (n) {
      var u = urlParam(n);
      if (u !== null) { params[n] = u; urlSet[n] = true; explicitSet[n] = true; return null; }
      if (stat[n] !== undefined && stat[n] !== null && stat[n] !== '') { params[n] = String(stat[n]); explicitSet[n] = true; return null; }
      if (withEngine === false) { return null; }
      return api('getparameter', n).then(function (v) {
        params[n] = (v === null || v === undefined) ? '' : String(v);
      }, function () { params[n] = ''; });
    })).then(function () {
      // extraoption entries naming a skin parameter count when that parameter was not given
      // directly (URL or webphone_api.parameters); they pass the same checks as direct values
      // (links: http/https only). Other names are engine parameters: not applied by the skin.
      parseExtraOption(params.extraoption).forEach(function (p) {
        if (p[0] !== 'extraoption' && UI_DEFAULTS.hasOwnProperty(p[0]) && !explicitSet[p[0]]) { params[p[0]] = p[1]; }
      });
      Object.keys(UI_DEFAULTS).forEach(function (n) {
        if (params[n] === undefined || params[n] === '') { params[n] = UI_DEFAULTS[n]; }
      });
      // Former names (parameters.tsv): they count when the current name keeps its default.
      [['haveloginpage', 'useloginpage'], ['hasincomingcallpopup', 'incomingcallpopup'],
        ['hasincomingcall', 'incomingcallpopup']].forEach(function (p) {
        if (params[p[0]] && !urlSet[p[1]] && params[p[1]] === UI_DEFAULTS[p[1]]) { params[p[1]] = params[p[0]]; }
      });
      return params;
    });
  }

  function param(name) {
    var v = params[name];
    if (v === undefined) { v = UI_DEFAULTS[name]; }
    return v === undefined ? '' : String(v);
  }

  function paramInt(name, def) {
    var n = parseInt(param(name), 10);
    return isNaN(n) ? def : n;
  }

  // The blacklist parameter (comma list of users/numbers the engine refuses calls and
  // messages from) as the skin's "blocked" state of a contact: a contact is blocked when every
  // one of its numbers (user part of a SIP URI) is on the list.
  // Several numbers are separated by "," or "|"; ";" is not a separator (it starts a SIP URI's
  // parameters, which are not part of the user).
  function blockKeys(number) {
    return String(number || '').split(/[|,]/).map(function (n) {
      return n.trim().replace(/^sips?:/i, '').split('@')[0].trim();
    }).filter(Boolean);
  }
  function blacklist() {
    return param('blacklist').split(',').map(function (s) { return s.trim(); }).filter(Boolean);
  }
  function isBlocked(number) {
    var list = blacklist().map(function (s) { return s.toLowerCase(); });
    var keys = blockKeys(number);
    return keys.length > 0 && keys.every(function (k) { return list.indexOf(k.toLowerCase()) >= 0; });
  }
  // Blocks (or unblocks) `number`; `previous` (the number before an edit) is unblocked first.
  // Callers only ask for a change the user made: saving a contact whose Block box was left as
  // it was must not touch the list (the number may be listed on its own).
  function setBlocked(number, blocked, previous) {
    var drop = blockKeys(previous).concat(blockKeys(number)).map(function (k) { return k.toLowerCase(); });
    var list = blacklist().filter(function (s) { return drop.indexOf(s.toLowerCase()) < 0; });
    if (blocked) { list = list.concat(blockKeys(number)); }
    var value = list.join(',');
    return value === param('blacklist') ? Promise.resolve() : setParam('blacklist', value);
  }

  function setParam(name, value) {
    params[name] = String(value);
    return api('setparameter', name, String(value));
  }

  // A link target from a parameter: http(s) only (mail: also mailto:, a bare address becomes
  // one). A leading "*" marks an HTTP API request in the original product: not a link, ignored.
  function safeUrl(v, mail) {
    var s = String(v || '').trim();
    if (!s || s.charAt(0) === '*') { return null; }
    if (mail && /^[^\s@:/]+@[^\s@/]+$/.test(s)) { s = 'mailto:' + s; }
    var ok = /^https?:\/\/[^\s]+$/i.test(s) || (mail && /^mailto:[^\s]+$/i.test(s));
    return ok ? s : null;
  }

  // Tokens of the link parameters (catalog value list of advertisement, supportmail, supporturi,
  // forgotpasswordurl, homepage, accounturi, helpurl, licenseurl, extramenuurl): replaced where
  // they stand as a whole upper-case word (no A-Z or 0-9 right before or after), by the
  // percent-encoded value (RFC 3986 section 2.3 unreserved characters kept), as the engine does
  // for its HTTP API requests. The skin knows USERNAME, CALLEDNUMBER, PEERNUM, PEERDETAILS,
  // DIRECTION (1 out, 2 in) and STATUS; the engine's own values (DEVICEID, SESSIONID, PASSWORD,
  // MD5SIMPLE, MD5NORMAL, MD5SALT) are not given to pages and TEXT has no meaning in a link:
  // those become empty.
  var LINK_TOKENS = ['DEVICEID', 'SESSIONID', 'USERNAME', 'PASSWORD', 'CALLEDNUMBER', 'PEERNUM', 'PEERDETAILS',
    'DIRECTION', 'TEXT', 'STATUS', 'MD5SIMPLE', 'MD5NORMAL', 'MD5SALT'];

  function linkTokenValues() {
    var l = lines[currentLine] || null;
    var stored = load('account', null) || {};
    var user = params.username || stored.username || '';
    return {
      USERNAME: user,
      CALLEDNUMBER: l ? (l.incoming ? user : l.peer) : load('lastdialed', ''),
      PEERNUM: l ? l.peer : '',
      PEERDETAILS: l ? (l.name || l.peer) : '',
      DIRECTION: l ? (l.incoming ? '2' : '1') : '',
      STATUS: general.status || ''
    };
  }

  function percentEncode(v) {
    return encodeURIComponent(String(v)).replace(/[!'()*]/g, function (c) { return '%' + c.charCodeAt(0).toString(16).toUpperCase(); });
  }

  function expandTokens(template) {
    var values = null;
    return String(template || '').replace(/[A-Z0-9]+/g, function (word) {
      if (LINK_TOKENS.indexOf(word) < 0) { return word; }
      values = values || linkTokenValues();
      return percentEncode(values[word] || '');
    });
  }

  // A link from a link parameter: tokens replaced, then the safeUrl checks.
  function linkParam(name, mail) { return safeUrl(expandTokens(param(name)), mail); }

  // Fill `parent` with `text`, turning http(s) addresses into links. Everything is built with
  // text nodes and anchor elements, so markup in the text stays inert; a trailing sentence mark
  // is left out of the link. Links open outside the phone (new browsing context, no opener).
  function appendLinkified(parent, text) {
    var s = String(text === undefined || text === null ? '' : text);
    var re = /https?:\/\/[^\s<>"']+/gi;
    var last = 0;
    var m;
    while ((m = re.exec(s)) !== null) {
      var url = m[0].replace(/[.,;:!?)\]}]+$/, '');
      if (m.index > last) { parent.appendChild(global.document.createTextNode(s.slice(last, m.index))); }
      var href = safeUrl(url);
      if (href) {
        var a = el('a', 'chat-link', url);
        a.href = href;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        parent.appendChild(a);
      } else {
        parent.appendChild(global.document.createTextNode(url));
      }
      last = m.index + url.length;
      re.lastIndex = last;
    }
    if (last < s.length) { parent.appendChild(global.document.createTextNode(s.slice(last))); }
    return parent;
  }

  // disableoptions: comma list; upper-case words are features/pages, other words settings.
  function disabled(option) {
    var list = param('disableoptions').split(',');
    for (var i = 0; i < list.length; i++) {
      var w = list[i].trim();
      if (!w) { continue; }
      if (w === w.toUpperCase() && /[A-Z]/.test(w)) {
        if (w === option) { return true; }
      } else if (w.toLowerCase() === String(option).toLowerCase()) {
        return true;
      }
    }
    return false;
  }

  function featureset() { return paramInt('featureset', 10); }

  // ------------------------------------------------------------------ toasts and dialogs

  function toast(text, kind) {
    if (kind !== 'error' && !truthy(param('showtoasts'))) { return; }
    var box = byId('toasts');
    if (!box) { return; }
    var item = el('div', 'toast' + (kind ? ' toast-' + kind : ''), text);
    if (kind === 'error') { item.setAttribute('role', 'alert'); }
    box.appendChild(item);
    var ttl = kind === 'error' ? 8000 : (kind === 'long' ? 15000 : 4000);
    setTimeout(function () { if (item.parentNode) { item.parentNode.removeChild(item); } }, ttl);
    item.addEventListener('click', function () { if (item.parentNode) { item.parentNode.removeChild(item); } });
  }

  function toastError(e) { toast(errText(e), 'error'); }

  var confirmState = null;
  function confirmDialog(text) {
    return new Promise(function (resolve) {
      var box = byId('confirm_dialog');
      byId('confirm_text').textContent = text;
      var back = global.document.activeElement;
      box.hidden = false;
      confirmState = function (answer) {
        box.hidden = true;
        confirmState = null;
        if (back && back.focus) { back.focus(); }
        resolve(answer);
      };
      byId('confirm_no').focus();
    });
  }

  function initDialogs() {
    byId('confirm_yes').addEventListener('click', function () { if (confirmState) { confirmState(true); } });
    byId('confirm_no').addEventListener('click', function () { if (confirmState) { confirmState(false); } });
    byId('confirm_dialog').addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && confirmState) { e.preventDefault(); e.stopPropagation(); confirmState(false); }
      if (e.key === 'Tab') {
        // Keep focus inside the dialog.
        var a = byId('confirm_yes'), b = byId('confirm_no');
        if (e.shiftKey && global.document.activeElement === a) { e.preventDefault(); b.focus(); } else if (!e.shiftKey && global.document.activeElement === b) { e.preventDefault(); a.focus(); }
      }
    });
  }

  // ------------------------------------------------------------------ lines (from STATUS)

  var ACTIVE = { CallSetup: 1, Setup: 1, InProgress: 1, Routed: 1, Ringing: 1, CallConnect: 1, InCall: 1, Muted: 1, Hold: 1, Speaking: 1, Midcall: 1 };
  var CONNECTED = { CallConnect: 1, InCall: 1, Muted: 1, Hold: 1, Speaking: 1, Midcall: 1 };
  var ENDED = { CallDisconnect: 1, Finishing: 1, Finished: 1 };

  var lines = {};        // line number -> line object
  var currentLine = null;
  var general = { status: '', registered: 0, online: 0, incall: 0 };
  var localName = '';

  function now() { return Date.now(); }

  function activeLines() {
    return Object.keys(lines).map(function (k) { return lines[k]; })
      .filter(function (l) { return !l.ended; })
      .sort(function (a, b) { return a.line - b.line; });
  }

  function emit(name, data) { j$(global.document).trigger('wpskin:' + name, [data]); }

  function onStatus(f) {
    var line = parseInt(f[1], 10);
    var text = f[2] || '';
    if (f[4]) { localName = f[4]; }
    if (line === -1) {
      general.status = text;
      if (f.length > 9) {
        general.online = parseInt(f[8], 10) || 0;
        general.registered = parseInt(f[9], 10) || 0;
        general.incall = parseInt(f[10], 10) || 0;
      }
      emit('status', general);
      return;
    }
    if (!(line > 0)) { return; }
    var l = lines[line];
    if (ACTIVE[text]) {
      if (!l || l.ended) {
        l = lines[line] = {
          line: line, peer: '', name: '', callid: '', incoming: false, startedAt: now(),
          connectedAt: 0, endedAt: 0, ended: false, mute: false, hold: false, encrypted: false, state: ''
        };
        currentLine = line;
      }
      l.state = text;
      l.peer = f[3] || l.peer;
      l.incoming = f[5] === '2';
      if (f[6]) { l.name = f[6]; }
      if (f[7]) { l.callid = f[7]; }
      if (f.length > 11) { l.mute = (parseInt(f[11], 10) || 0) !== 0; }
      if (f.length > 12) { l.hold = (parseInt(f[12], 10) || 0) !== 0; }
      if (f.length > 13) { var enc = parseInt(f[13], 10); l.encrypted = enc > 0; }
      if (text === 'Muted') { l.mute = true; }
      if (text === 'Hold') { l.hold = true; }
      var connected = CONNECTED[text] || (f.length > 10 && f[10] === '2');
      if (connected && !l.connectedAt) { l.connectedAt = now(); }
      emit('lines', l);
    } else if (ENDED[text] && l && !l.ended) {
      l.ended = true;
      l.endedAt = now();
      l.state = text;
      if (currentLine === line) {
        var rest = activeLines();
        currentLine = rest.length ? rest[0].line : line;
      }
      emit('lines', l);
    }
  }

  // ------------------------------------------------------------------ history (from CDR)

  var HISTORY_MAX = 200;

  function history() { return load('history', []); }

  function onCdr(f) {
    // CDR,line,peername,caller,called,peeraddress,connecttime,duration,discparty[,reason]
    var line = parseInt(f[1], 10);
    var l = lines[line] || {};
    var peer = f[2] || l.peer || '';
    var incoming = l.line ? !!l.incoming : (f[4] === localName && f[3] !== localName);
    var dur = parseInt(f[7], 10) || 0;
    var entry = {
      id: now() + '-' + Math.random().toString(36).slice(2, 8),
      time: now(),
      peer: peer,
      name: l.name || '',
      direction: incoming ? 'in' : 'out',
      duration: dur,
      missed: incoming && dur === 0 && !l.connectedAt,
      reason: f.slice(9).join(',')
    };
    var h = history();
    h.unshift(entry);
    if (h.length > HISTORY_MAX) { h.length = HISTORY_MAX; }
    save('history', h);
    emit('history', entry);
    offerSaveContact(entry);
  }

  // savetocontacts: 0 no, 1 ask after the call, 2 add without asking (numbers called out that
  // are not contacts yet; the echo test is never added).
  function offerSaveContact(entry) {
    var mode = paramInt('savetocontacts', 1);
    var num = entry.peer;
    if (mode <= 0 || entry.direction !== 'out' || !num || /^echo$/i.test(num) || findContactByNumber(num)) { return; }
    var add = function () {
      saveContact({ name: entry.name || num, number: num, email: '', notes: '', favorite: false });
      emit('contacts', null);
    };
    if (mode >= 2) { add(); return; }
    confirmDialog(t('sp.save_contact_confirm', { number: num })).then(function (yes) { if (yes) { add(); } });
  }

  // POPUP,text: the engine shows the scurl_displaypeerdetails answer this way (at call set-up).
  // It belongs to the newest call still up; without one it is not about a peer.
  function onPopup(text) {
    var act = activeLines();
    if (!act.length) { return; }
    var l = act.reduce(function (a, b) { return b.startedAt > a.startedAt ? b : a; });
    l.peerDetails = String(text || '');
    emit('lines', l);
  }

  // MWI,<summary>: the server's Voice-Message line, "new/old (urgent new/urgent old)"
  // (RFC 3842 §5.2); the dial pad shows the new count on its Voicemail button.
  function onMwi(summary) {
    var m = /^\s*(\d+)/.exec(String(summary || ''));
    emit('mwi', { count: m ? parseInt(m[1], 10) : 0, summary: String(summary || '') });
  }

  function onNotification(text) {
    String(text || '').split(/\r?\n/).forEach(function (raw) {
      if (!raw) { return; }
      var line = raw.replace(/^WPNOTIFICATION,/, '').replace(/\s*NEOL\s*$/, '');
      var f = line.split(',').map(function (s) { return s.trim(); });
      if (f[0] === 'STATUS') { onStatus(f); } else if (f[0] === 'PRESENCE') { onPresence(f); } else if (f[0] === 'VREC') { onVrec(f); } else if (f[0] === 'BLF') { onBlf(f); } else if (f[0] === 'CDR') { onCdr(f); } else if (f[0] === 'POPUP') { onPopup(line.slice(6)); } else if (f[0] === 'MWI') { onMwi(line.slice(4)); } else if (f[0] === 'NEWUSER') { emit('newuser', line.slice(8)); } else if (f[0] === 'ANSWER') { emit('answer', line.slice(7)); } else if (f[0] === 'SERVERCONTACTS') { onServerContacts(); }
    });
  }

  // SERVERCONTACTS: the engine merged the server address book (serveraddressbook_url) into its
  // contacts, at start or through syncservercontacts; this list takes them over.
  function onServerContacts() {
    syncContacts().catch(toastError);
  }

  // VREC,line,stage,type,path,reason: stage 1 a recording of the line began (on demand or
  // automatic, voicerecording), stage 2 it ended and its file is being stored or uploaded.
  function onVrec(f) {
    var l = lines[parseInt(f[1], 10)];
    if (!l || l.ended) { return; }
    if (f[2] === '1') { l.recording = true; } else if (f[2] === '2') { l.recording = false; } else { return; }
    emit('lines', l);
  }

  // ------------------------------------------------------------------ presence and BLF lamps

  // The contacts' presence (PRESENCE notifications: RFC 3856 through the engine) and call state
  // (BLF notifications: the dialog event package, RFC 4235), for the lamps of the contacts list.
  // Once registered, the skin watches the first number of every contact as entered (a user, a
  // number or a SIP URI of another domain; URI parameters dropped), each once per account:
  // checkpresence unless enablepresence is 0, checkblf unless enableblf is 0. The notifications
  // name the watched user by its user part, which keys the lamps. A watch the engine refused or
  // whose subscription failed is asked again after the next new registration.
  var presence = {};
  var blfState = {};
  var watched = { account: '', presence: {}, blf: {} };

  // What is watched for a contact's numbers: the first one, without URI parameters.
  function watchTarget(number) {
    var first = String(number || '').split(/[|,]/)[0].trim();
    return first.replace(/^(sips?:[^;?]*).*$/i, '$1');
  }
  // The user part the engine's notifications name (`sip:bob@host` -> `bob`).
  function userOf(target) {
    return String(target || '').trim().replace(/^sips?:/i, '').split('@')[0].split(';')[0].trim();
  }

  // Presence words to lamp kinds; anything else shows no lamp. The state decides; the note
  // (free text of the peer) only when the state says nothing we know.
  var PRESENCE_KIND = {
    available: 'available', open: 'available', online: 'available', callme: 'available',
    away: 'away', idle: 'away', berightback: 'away',
    busy: 'busy', donotdisturb: 'busy', dnd: 'busy', speaking: 'busy', onthephone: 'busy',
    offline: 'offline', closed: 'offline', close: 'offline', unreacheable: 'offline',
    unregistered: 'offline', invisible: 'offline', notexists: 'offline'
  };
  function presenceKind(p) {
    if (!p) { return ''; }
    var words = [p.state, p.details];
    for (var i = 0; i < words.length; i++) {
      var w = String(words[i] || '').toLowerCase().replace(/[\s_-]/g, '');
      if (PRESENCE_KIND[w]) { return PRESENCE_KIND[w]; }
    }
    return '';
  }
  function blfKind(b) {
    if (!b) { return ''; }
    if (b.state === 'confirmed') { return 'incall'; }
    if (b.state === 'early' || b.state === 'trying' || b.state === 'proceeding') { return 'ringing'; }
    // The engine's extra BLF state: the server answered the watch 480 (not logged in).
    if (b.state === 'unregistered') { return 'unregistered'; }
    return '';
  }
  // The lamp of a contact's number, {kind, label}, or null: a call (ringing, in a call) shows
  // over the presence state.
  function lampOf(number) {
    var k = userOf(watchTarget(number));
    var kind = blfKind(blfState[k]) || presenceKind(presence[k]);
    return kind ? { kind: kind, label: t('sp.lamp_' + kind) } : null;
  }
  // A watch of `user` ended in failure: asked again after the next new registration.
  function watchFailed(kind, user) {
    var seen = watched[kind];
    Object.keys(seen).forEach(function (target) { if (userOf(target) === user) { seen[target] = 'failed'; } });
  }
  // PRESENCE,peername,state,details,displayname,email (a failed subscription: state Unknown,
  // details its status code)
  function onPresence(f) {
    var k = userOf(f[1]);
    if (!k) { return; }
    presence[k] = { state: f[2] || '', details: f[3] || '' };
    if (f[2] === 'Unknown' && /^\d{3}$/.test(f[3] || '')) { watchFailed('presence', k); }
    emit('presence', k);
  }
  // BLF,peername,direction,state,callid
  function onBlf(f) {
    var k = userOf(f[1]);
    if (!k) { return; }
    blfState[k] = { direction: f[2] || '', state: f[3] || '' };
    // Asked again after our next registration (the watched user may have registered by then).
    if (f[3] === 'failed' || f[3] === 'unregistered') { watchFailed('blf', k); }
    emit('presence', k);
  }
  function isRegistered() { return general.registered === 2 || general.registered === 3; }
  function watchContacts() {
    if (!isRegistered()) { return; }
    var account = param('serveraddress') + '|' + param('username');
    if (watched.account !== account) { watched = { account: account, presence: {}, blf: {} }; }
    var targets = [];
    ensureContacts().forEach(function (c) {
      var k = watchTarget(c.number);
      if (k && userOf(k) && targets.indexOf(k) < 0) { targets.push(k); }
    });
    [['presence', 'checkpresence', 'enablepresence'], ['blf', 'checkblf', 'enableblf']].forEach(function (w) {
      if (paramInt(w[2], 1) === 0) { return; }
      var seen = watched[w[0]];
      var fresh = targets.filter(function (k) { return !seen[k]; });
      if (!fresh.length) { return; }
      fresh.forEach(function (k) { seen[k] = 'asked'; });
      api(w[1], fresh.join(',')).catch(function () {
        fresh.forEach(function (k) { seen[k] = 'failed'; });
      });
    });
  }
  // Watches that failed are asked again (a new registration: back after a failure).
  function retryFailedWatches() {
    ['presence', 'blf'].forEach(function (kind) {
      var seen = watched[kind];
      Object.keys(seen).forEach(function (k) { if (seen[k] === 'failed') { delete seen[k]; } });
    });
  }
  j$(global.document).on('wpskin:contacts', watchContacts);
  // Registered anew (start, another account, back after a failure): the contacts are watched
  // and a chosen state other than Online is published again.
  // (Only then: a general STATUS comes every second during a call, and the contacts' own
  // changes call watchContacts themselves.)
  var wasRegistered = false;
  j$(global.document).on('wpskin:status', function () {
    var now = isRegistered();
    if (now && !wasRegistered) {
      retryFailedWatches();
      var own = load('presence', '');
      if (own && own !== 'Online') { api('setpresencestatus', own).catch(function () { /* no presence */ }); }
      watchContacts();
    }
    wasRegistered = now;
  });

  // The user's own state (setpresencestatus): Online, Away, DND, Invisible or Offline. DND also
  // makes the engine refuse calls.
  function setOwnPresence(status) {
    return api('setpresencestatus', status).then(function (v) {
      save('presence', status);
      return v;
    });
  }

  // ------------------------------------------------------------------ desktop notifications

  // Inside the desktop app (Tauri transport) the app itself pops up ringing calls.
  function inDesktopApp() { return !!(global.__TAURI__ && global.__TAURI__.core); }

  // displaynotification: 0 never, 1 on an event while the window is hidden or not focused,
  // 2 on every event. Events: a chat message, a missed call (ringing calls: incomingcallpopup).
  // The browser's Notification API when permitted; in the desktop app its notification plugin
  // when the app grants it, else nothing. Returns true when a notification was (or may be) shown.
  function desktopNotify(title, body, tag, onclick) {
    var mode = paramInt('displaynotification', 1);
    if (mode <= 0) { return false; }
    if (mode === 1 && !global.document.hidden && global.document.hasFocus()) { return false; }
    try {
      var tn = inDesktopApp() && global.__TAURI__.notification;
      if (tn && typeof tn.sendNotification === 'function' && typeof tn.isPermissionGranted === 'function') {
        // Refused (no capability for the page): nothing, quietly.
        Promise.resolve(tn.isPermissionGranted()).then(function (ok) {
          if (ok) { tn.sendNotification({ title: title, body: body }); }
        }).catch(function () {});
        return true;
      }
      if (inDesktopApp()) { return false; }
      if (typeof global.Notification !== 'function' || global.Notification.permission !== 'granted') { return false; }
      var n = new global.Notification(title, { body: body, tag: tag });
      n.onclick = function () { global.focus(); if (onclick) { onclick(); } n.close(); };
      return true;
    } catch (e) { return false; }
  }

  // ------------------------------------------------------------------ contacts (localStorage)

  function contacts() { return load('contacts', null); }

  function ensureContacts() {
    var c = contacts();
    if (c) { return c; }
    c = [];
    // defcontacts: "Name,number;Name2,number2"
    param('defcontacts').split(';').forEach(function (pair) {
      var i = pair.indexOf(',');
      if (i > 0) {
        var name = pair.slice(0, i).trim(), num = pair.slice(i + 1).trim();
        if (name && num) { c.push({ id: 'c' + now() + c.length, name: name, number: num, email: '', notes: '', favorite: false }); }
      }
    });
    save('contacts', c);
    return c;
  }

  function saveContact(contact) {
    var c = ensureContacts();
    var found = false;
    for (var i = 0; i < c.length; i++) {
      if (c[i].id === contact.id) { c[i] = contact; found = true; }
    }
    if (!found) {
      contact.id = contact.id || ('c' + now() + '-' + Math.random().toString(36).slice(2, 8));
      c.push(contact);
    }
    save('contacts', c);
    // A new number gets its presence / BLF watch (once registered).
    watchContacts();
    return contact;
  }

  function deleteContact(id) {
    save('contacts', ensureContacts().filter(function (x) { return x.id !== id; }));
  }

  function findContactByNumber(num) {
    var n = String(num || '').toLowerCase();
    if (!n) { return null; }
    var c = ensureContacts();
    for (var i = 0; i < c.length; i++) { if (String(c[i].number).toLowerCase() === n) { return c[i]; } }
    return null;
  }

  // Two-way sync with the engine's contact store (listcontacts / addcontact, the profile the
  // desktop app and webphone-cli share): engine contacts missing here are added here, contacts
  // of this browser missing in the engine are added there. Matched by number (case-insensitive).
  // Resolves { imported, exported }.
  function syncContacts() {
    return api('listcontacts', false).then(function (dump) {
      var mine = ensureContacts();
      var known = {};
      mine.forEach(function (c) { known[String(c.number).toLowerCase()] = true; });
      var theirs = {};
      var imported = 0;
      String(dump || '').split(/\r?\n/).forEach(function (row) {
        if (!row.trim()) { return; }
        // name, numbers ("|" separated), favorite, email, address, notes, website
        var f = row.split('\t');
        var name = (f[0] || '').trim();
        (f[1] || '').split('|').map(function (n) { return n.trim(); }).filter(Boolean).forEach(function (num) {
          theirs[num.toLowerCase()] = true;
          if (known[num.toLowerCase()]) { return; }
          known[num.toLowerCase()] = true;
          saveContact({ name: name || num, number: num, email: (f[3] || '').trim(), notes: (f[5] || '').trim(), favorite: f[2] === '1' });
          imported++;
        });
      });
      var missing = mine.filter(function (c) { return c.number && !theirs[String(c.number).toLowerCase()]; });
      return missing.reduce(function (p, c) {
        return p.then(function (n) { return api('addcontact', c.name, c.number, c.email || '', '', c.notes || '', '').then(function () { return n + 1; }); });
      }, Promise.resolve(0)).then(function (exported) {
        emit('contacts', null);
        return { imported: imported, exported: exported };
      });
    });
  }

  // vCard import/export through the engine extensions importvcard / exportvcard (the engine's
  // contact store, which parses and writes the vCards), followed by a sync so this browser's
  // list matches. The local service takes requests up to 64 KiB: an import goes in groups of
  // whole cards below VCARD_CHUNK bytes, without the pictures and keys the phone does not keep.
  var VCARD_CHUNK = 40000;

  // File bytes to text: UTF-8, UTF-16 with a byte order mark, else Windows-1252.
  function decodeVcard(buffer) {
    var b = new Uint8Array(buffer);
    if (b.length >= 2 && b[0] === 0xFF && b[1] === 0xFE) { return new TextDecoder('utf-16le').decode(b); }
    if (b.length >= 2 && b[0] === 0xFE && b[1] === 0xFF) { return new TextDecoder('utf-16be').decode(b); }
    try { return new TextDecoder('utf-8', { fatal: true }).decode(b); } catch (e) { return new TextDecoder('windows-1252').decode(b); }
  }

  function vcardChunks(text) {
    var unfolded = String(text).replace(/\r?\n[ \t]/g, '');
    var kept = unfolded.split(/\r?\n/).filter(function (l) { return !/^([\w-]+\.)?(PHOTO|LOGO|SOUND|KEY)[;:]/i.test(l); });
    var cards = kept.join('\r\n').split(/(?=^BEGIN:VCARD)/im);
    var enc = new TextEncoder();
    var chunks = [];
    var cur = '';
    var skipped = 0;
    cards.forEach(function (card) {
      if (enc.encode(card).length > VCARD_CHUNK) { skipped++; return; }
      if (cur && enc.encode(cur + card).length > VCARD_CHUNK) { chunks.push(cur); cur = ''; }
      cur += card;
    });
    if (cur) { chunks.push(cur); }
    return { chunks: chunks, skipped: skipped };
  }

  // Resolves { imported, skipped } (contacts written by the engine, oversized cards left out).
  function importVcard(buffer) {
    var parts = vcardChunks(typeof buffer === 'string' ? buffer : decodeVcard(buffer));
    if (!parts.chunks.length) { parts.chunks = ['']; }
    return parts.chunks.reduce(function (p, chunk) {
      return p.then(function (n) { return api('importvcard', chunk).then(function (k) { return n + (Number(k) || 0); }); });
    }, Promise.resolve(0)).then(function (imported) {
      return syncContacts().then(function () { return { imported: imported, skipped: parts.skipped }; });
    });
  }

  // Resolves { count, text }; the browser saves the text as contacts.vcf.
  function exportVcard() {
    return syncContacts().then(function () { return api('exportvcard'); }).then(function (text) {
      text = String(text || '');
      var count = (text.match(/^BEGIN:VCARD/gim) || []).length;
      var a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([text], { type: 'text/vcard;charset=utf-8' }));
      a.download = 'contacts.vcf';
      a.hidden = true;
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      return { count: count, text: text };
    });
  }

  // ------------------------------------------------------------------ calls

  // Runs fn on `line` (setline first when the API has it).
  function onLine(line, fn) {
    if (!line || !wp || typeof wp.setline !== 'function') { return fn(); }
    return api('setline', line).then(fn, function () { return fn(); });
  }

  function call(number) {
    number = String(number || '').trim();
    if (!number) {
      toast(t('message.enter_number'), 'error');
      return Promise.resolve(false);
    }
    save('lastdialed', number);
    return api('call', number).then(function () { return true; }, function (e) {
      toastError(e);
      return false;
    });
  }

  function hangup(line) {
    var l = lines[line || currentLine];
    var isRinging = l && l.incoming && !l.connectedAt;
    return onLine(line || currentLine, function () {
      return api(isRinging ? 'reject' : 'hangup');
    }).catch(toastError);
  }

  function logoHref(name) {
    return /\.(png|jpe?g|gif|svg|webp)$/i.test(name) && !/[\/\\]|^\.|:/.test(name) ? 'images/' + name : null;
  }

  // ------------------------------------------------------------------ theme

  function findTheme(n) {
    var list = global.themelist || [];
    n = parseInt(n, 10);
    for (var i = 0; i < list.length; i++) { if (list[i].number === n) { return list[i]; } }
    return list[0];
  }

  var VAR_OF = {
    bg: '--bg', surface: '--surface', button: '--button', buttonhover: '--button-hover', text: '--text',
    muted: '--muted', accent: '--accent', tabselected: '--tab-selected', primary: '--primary',
    primarytext: '--primary-text', call: '--call', calltext: '--call-text', hangup: '--hangup',
    hanguptext: '--hangup-text', border: '--border', focus: '--focus', danger: '--danger', fontfamily: '--font'
  };
  // Colour URL parameters of the original skin and the theme key they override.
  var OVERRIDES = {
    'bgcolor': 'bg', 'buttoncolor': 'button', 'buttonhover': 'buttonhover', 'tabselectedcolor': 'tabselected',
    'fontcheme': 'accent', 'fontcwhite': 'text', 'fontfamily': 'fontfamily'
  };

  function applyTheme(number) {
    var th = findTheme(number);
    if (!th) { return; }
    var root = global.document.documentElement;
    var colors = {};
    Object.keys(th.colors).forEach(function (k) { colors[k] = th.colors[k]; });
    Object.keys(OVERRIDES).forEach(function (p) {
      var v = param(p);
      if (!v) { return; }
      if (p === 'fontfamily' ? /^[\w\s,"'-]+$/.test(v) : /^#?[0-9a-f]{3,8}$/i.test(v)) {
        colors[OVERRIDES[p]] = (p !== 'fontfamily' && v.charAt(0) !== '#') ? '#' + v : v;
      }
    });
    Object.keys(VAR_OF).forEach(function (k) { if (colors[k]) { root.style.setProperty(VAR_OF[k], colors[k]); } });
    root.style.colorScheme = th.dark ? 'dark' : 'light';
    var body = global.document.body;
    body.className = body.className.replace(/\btheme-\d+\b/g, '').trim() + ' theme-' + th.number;
    body.setAttribute('data-theme', th.id);
    WPSkin.theme = th;
  }

  // ------------------------------------------------------------------ export

  var WPSkin = {
    el: el,
    icon: icon,
    byId: byId,
    t: t,
    api: api,
    load: load,
    save: save,
    remove: remove,
    truthy: truthy,
    safeUrl: safeUrl,
    expandTokens: expandTokens,
    linkParam: linkParam,
    appendLinkified: appendLinkified,
    urlParam: urlParam,
    errText: errText,
    formatDuration: formatDuration,
    loadParams: loadParams,
    param: param,
    paramInt: paramInt,
    setParam: setParam,
    isBlocked: isBlocked,
    setBlocked: setBlocked,
    lampOf: lampOf,
    isRegistered: isRegistered,
    setOwnPresence: setOwnPresence,
    urlSet: urlSet,
    disabled: disabled,
    featureset: featureset,
    toast: toast,
    toastError: toastError,
    confirm: confirmDialog,
    initDialogs: initDialogs,
    lines: lines,
    activeLines: activeLines,
    currentLine: function () { return currentLine; },
    setCurrentLine: function (n) { currentLine = n; emit('lines', lines[n]); },
    general: general,
    onNotification: onNotification,
    history: history,
    clearHistory: function () { save('history', []); emit('history', null); },
    contacts: ensureContacts,
    saveContact: saveContact,
    deleteContact: deleteContact,
    findContactByNumber: findContactByNumber,
    syncContacts: syncContacts,
    importVcard: importVcard,
    exportVcard: exportVcard,
    parseExtraOption: parseExtraOption,
    inDesktopApp: inDesktopApp,
    desktopNotify: desktopNotify,
    emit: emit,
    onLine: onLine,
    call: call,
    hangup: hangup,
    logoHref: logoHref,
    applyTheme: applyTheme,
    findTheme: findTheme,
    theme: null,
    pages: {}
  };

  // Page scripts call WPSkin.page(id, {onCreate, onStart, onStop}).
  WPSkin.page = function (id, h) {
    WPSkin.pages[id] = h;
    global.WPRouter.register(id, h);
  };

  global.WPSkin = WPSkin;
})(window);
