/*
 * webphone_api.js: the public JavaScript API of WebPhone.
 *
 * Include it in <head> with <script src="webphone_api.js"></script>; everything is reached through
 * the global object `webphone_api`. Use the API only after `onLoaded` fired.
 *
 * Layers:
 *   - API layer (this file's bulk): callbacks, argument coercion (every argument is sent as a
 *     string), queueing of actions until the engine started (`onStart`), `autostart`, and a
 *     synchronous cache of the phone state fed by the event stream.
 *   - Transport: how requests reach the engine and how its events come back. A transport is
 *       { name, available(): boolean,
 *         connect(onEvent, onReconnect): Promise<void>,  // onEvent(obj) for each engine event;
 *                                                 // onReconnect() after a lost connection is back
 *         request(fn, args: string[]): Promise<any> }
 *     Engine events are {ev:"onXXX", args:[...]} or {ev:"notification", text:"STATUS,..."}.
 *     The first available one of TRANSPORTS is used: Tauri IPC inside the desktop app, otherwise
 *     a WebSocket to the local phone service (`webphone-cli --serve`) at
 *     ws://127.0.0.1:<serviceport>. The port is 18520 unless `serviceport` is set in the static
 *     parameters below or the page URL carries `wp_serviceport=<port>` (the URL wins).
 *     The service admits only pages whose origin it was told to allow (`--allow-origin`); when
 *     it cannot be reached or refuses the page, onDisplay(message, 'Error') and
 *     onRegisterFailed(message) report it once, and the facade keeps retrying with back-off
 *     (0.5 s doubling up to 15 s). onLoaded fires after the first successful connection. When an
 *     established connection drops, pending requests fail, onDisplay reports it and the
 *     facade reconnects the same way; requests made while disconnected fail at once.
 *
 * Functions: every function of the API catalog (spec/api.tsv) exists and is described by one
 * row of FUNCTIONS below (argument forms, whether it waits for the engine start, result type).
 * Arguments are converted to the strings the engine expects: numbers as their decimal text,
 * booleans as "true"/"false" (also from "1"/"0"/1/0), lines as "-2" (all; `true` too), "-1"
 * (current/best), "0" or "N". Optional trailing arguments left out are not sent.
 *
 * Return values: the functions the original answered synchronously answer synchronously here
 * too, from a copy of the engine's values that the engine keeps current (see SYNC):
 *   getparameter, isregistered, isincall, getstatus, getline, linetocallid, callidtoline,
 *   ismuted, isonhold, isencrypted, getregfailreason, getenginename, getlinedetails,
 *   getlastcalldetails, getworkdir, getlogs, listcontacts, getcontact
 * so `if (webphone_api.isincall())` works as before (`await` on them works too). Secret
 * parameters (password, md5, ...) read as "<redacted>" there; a page after a setparameter()
 * reads the value it just set. Every other function reaches the engine asynchronously and
 * returns a Promise that resolves to the engine's result (or rejects with an Error carrying the
 * engine's message). `webphone_api.engine.<fn>(...)` is the Promise form of every function,
 * the synchronous ones included (it asks the engine itself).
 * Functions the original answered through a trailing callback (getdevicelist(dev, cb),
 * getdevice(dev, cb), getvolume(dev, cb), getsipheader(name, cb), getsipmessage(dir, type, cb))
 * accept the callback AND return the Promise; the callback gets the same value. On an engine
 * error the Promise rejects; getsipheader/getsipmessage callbacks then receive "ERROR: <message>"
 * (their documented error form), the others are not called (a device name or volume cannot carry
 * an error). A function is never sent to the engine.
 * Functions this engine cannot do (jvoip, devicepopup, screenshare, stopscreenshare, video) are
 * still sent to the engine, which answers "<fn> is not supported by this engine: <why>"; the
 * Promise rejects with that message and it is logged (onLog), but not shown to the user
 * (onDisplay is for user-facing texts; these are integration errors).
 *
 * `webphone_api.state` holds the last known call values learnt from the event stream:
 *   webphone_api.state.registered, .incall, .status, .started, .loaded, .startError,
 *   .line (active line), .lines ({N: {line, status, peer, displayname, callid, direction}} for
 *   the lines with a call)
 * `webphone_api.isstarted` is 1 once the engine started (or start() is under way), else 0; pages
 * may also set it (the original's multi-page example stores isstarted = 1).
 *
 * Parameters at load: the static `parameters` block below, then `wp_<name>` cookies, then
 * `wp_<name>` parameters of the page URL (query, percent-decoded; user-interface parameters such
 * as wp_language stay with the page, see URL_UI_ONLY). Each goes to the engine as
 *   setparameter(name, value, source)      source: "static" | "cookie" | "url"
 * so the engine can apply the precedence of spec/behaviours.md 2.2 itself (a stored user value
 * over a `ucfg_` static value, a later setparameter() over all of them). They are sent one after
 * the other in that order (lowest to highest precedence), so an engine that ignores the third
 * argument still ends with the right value. A page's own setparameter(name, value) sends no
 * source: a run-time value.
 *
 * (Re)connect: after the transport connects (page load) or reconnects (the local service came
 * back), the facade asks the engine for getstatus, getline and getlinedetails to rebuild `state`;
 * when the engine is already running (a page reload during a call) it sends `start`, which a
 * running engine answers by re-sending its STATUS notifications (so skins see the call again).
 */
(function (global) {
  'use strict';

  // Static parameters (the "server side" settings). Every entry is applied with setparameter()
  // when the library loads, before onLoaded fires. Example: { serveraddress: 'sip.example.org' }
  // `serviceport` is for this file only (not sent to the engine): the port of the local phone
  // service used outside the desktop app (default DEFAULT_SERVICE_PORT).
  var parameters = {};

  // Keys of `parameters` that configure this file and are not engine parameters.
  var FACADE_ONLY = { serviceport: true };
  // User-interface parameters (scope "ui" in spec/parameters.tsv, plus the softphone skin's
  // brandname and extraoption). Skins read them from the page
  // URL themselves, so `wp_` URL parameters of this kind are not forwarded: setparameter would
  // store them in the profile and a one-time link (e.g. ?wp_language=fr) would change every
  // later session. (Cookies and the static block forward them: those are meant to persist.)
  var URL_UI_ONLY = {};
  (
    'companyname logo colortheme language featureset showserverinput useloginpage haveloginpage ' +
    'chatsms showincomingchatas callparknumber hasringcounter hasfiletransfer displaynotification ' +
    'displayvolumecontrols displayaudiodevice displayvideodevice displaypeerdetails ' +
    'savetocontacts messagepopup showtoasts incomingcallpopup hasincomingcallpopup ' +
    'hasincomingcall callnot_title callnot_body callnot_icon callnot_image closecall_timeout ' +
    'header footer version showsynccontactsmenu defcontacts disableoptions logsendto multilinegui ' +
    'advertisement supportmail supporturi forgotpasswordurl homepage accounturi helpurl ' +
    'licenseurl extramenuurl extramenutxt logform_action logform_filename sendchat to bgcolor ' +
    'buttoncolor buttonhover tabselectedcolor fontcheme fontcwhite fontfamily float_button ' +
    'float_distance_from_top float_distance_from_left float_distance_from_bottom ' +
    'float_distance_from_right call_button_color brandname extraoption ' +
    'call_button_text call_button_text_color call_button_width call_button_height ' +
    'call_button_radius'
  ).split(' ').forEach(function (n) { URL_UI_ONLY[n] = true; });
  // Default port of `webphone-cli --serve` (the same default as the CLI's).
  var DEFAULT_SERVICE_PORT = 18520;

  var EVENT_CHANNEL = 'webphone';

  // ---------------------------------------------------------------- transports

  var tauriTransport = {
    name: 'tauri',
    available: function () {
      var t = global.__TAURI__;
      return !!(t && t.core && typeof t.core.invoke === 'function' &&
        t.event && typeof t.event.listen === 'function');
    },
    connect: function (onEvent) {
      return global.__TAURI__.event.listen(EVENT_CHANNEL, function (e) {
        onEvent(e && e.payload);
      }).then(function () { /* the listener lives as long as the page */ });
    },
    request: function (fn, args) {
      return global.__TAURI__.core.invoke('api', { fn: fn, args: args });
    }
  };

  // Value of a `wp_<name>` parameter of the page URL (name case-insensitive), or null.
  function urlParameter(name) {
    var loc = global.location;
    var search = loc && typeof loc.search === 'string' ? loc.search : '';
    var pairs = search.replace(/^\?/, '').split('&');
    for (var i = 0; i < pairs.length; i++) {
      var eq = pairs[i].indexOf('=');
      var key = eq < 0 ? pairs[i] : pairs[i].slice(0, eq);
      var value = eq < 0 ? '' : pairs[i].slice(eq + 1);
      try {
        key = decodeURIComponent(key.replace(/\+/g, ' '));
        value = decodeURIComponent(value.replace(/\+/g, ' '));
      } catch (e) { continue; }
      if (key.toLowerCase() === name.toLowerCase()) { return value; }
    }
    return null;
  }

  // The local service's port: wp_serviceport in the URL, else parameters.serviceport, else the
  // default. An invalid value is logged and ignored.
  function servicePort() {
    var candidates = [urlParameter('wp_serviceport'), parameters.serviceport];
    for (var i = 0; i < candidates.length; i++) {
      var v = candidates[i];
      if (v === null || v === undefined || v === '') { continue; }
      var n = Number(v);
      if (/^\s*\d+\s*$/.test(String(v)) && n > 0 && n < 65536) { return n; }
      log('ignoring an invalid serviceport: ' + String(v));
    }
    return DEFAULT_SERVICE_PORT;
  }

  function pageOrigin() {
    var loc = global.location;
    return (loc && typeof loc.origin === 'string' && loc.origin) ? loc.origin : 'this page';
  }

  // WebSocket to the local phone service; requests {id, fn, args} -> {id, ok} / {id, err}.
  var wsTransport = (function () {
    var BACKOFF_MIN_MS = 500;
    var BACKOFF_MAX_MS = 15000;
    var OPEN = 1;
    var sock = null;
    var nextId = 1;
    var pending = {};       // id -> {resolve, reject}
    var deliver = null;     // the API layer's onEvent
    var reconnected = null; // the API layer's onReconnect
    var firstOpen = null;   // resolves connect()
    var retryDelay = 0;
    var failureReported = false;

    function url() { return 'ws://127.0.0.1:' + servicePort(); }

    function refusalMessage() {
      var origin = pageOrigin();
      return 'Cannot connect to the phone service at ' + url() + ': it is not running, or it ' +
        'does not accept pages from ' + origin + ' (start it with: webphone-cli --serve 127.0.0.1:' +
        servicePort() + ' --allow-origin ' + origin + ')';
    }

    // Events the transport itself reports go through the same path as engine events, once the
    // page's scripts had a chance to register their callbacks.
    function report(ev, args) {
      domReady().then(function () { if (deliver) { deliver({ ev: ev, args: args }); } });
    }

    function failPending(message) {
      var list = pending;
      pending = {};
      Object.keys(list).forEach(function (id) { list[id].reject(new Error(message)); });
    }

    function onFrame(data) {
      var msg;
      try { msg = JSON.parse(String(data)); } catch (e) {
        log('phone service: ignoring a frame that is not JSON');
        return;
      }
      if (!msg || typeof msg !== 'object') { return; }
      if (typeof msg.ev === 'string') { if (deliver) { deliver(msg); } return; }
      if (msg.id === null || msg.id === undefined) {
        if (msg.err !== undefined) { log('phone service: ' + String(msg.err)); }
        return;
      }
      var p = pending[msg.id];
      if (!p) { return; }
      delete pending[msg.id];
      if (msg.err !== undefined) { p.reject(new Error(String(msg.err))); } else { p.resolve(msg.ok); }
    }

    function scheduleRetry() {
      retryDelay = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, retryDelay * 2));
      setTimeout(open, retryDelay);
    }

    function open() {
      var s;
      try {
        s = new global.WebSocket(url());
      } catch (e) {
        log('cannot open ' + url() + ': ' + (e && e.message ? e.message : String(e)));
        scheduleRetry();
        return;
      }
      sock = s;
      var opened = false;
      s.onopen = function () {
        if (sock !== s) { return; }
        opened = true;
        retryDelay = 0;
        if (failureReported) { log('connected to the phone service at ' + url()); }
        failureReported = false;
        if (firstOpen) {
          firstOpen.resolve();
          firstOpen = null;
        } else if (reconnected) {
          reconnected();
        }
      };
      s.onmessage = function (e) { if (sock === s) { onFrame(e && e.data); } };
      s.onerror = function () { /* onclose follows and reports */ };
      s.onclose = function () {
        if (sock !== s) { return; }
        sock = null;
        if (opened) {
          var lost = 'Connection to the phone service at ' + url() + ' lost; reconnecting';
          failPending(lost);
          log(lost);
          report('onDisplay', [lost, 'Error']);
        } else if (!failureReported) {
          failureReported = true;
          var m = refusalMessage();
          log(m);
          report('onDisplay', [m, 'Error']);
          report('onRegisterFailed', [m]);
        }
        scheduleRetry();
      };
    }

    return {
      name: 'websocket',
      available: function () { return typeof global.WebSocket === 'function'; },
      connect: function (onEvent, onReconnect) {
        deliver = onEvent;
        reconnected = onReconnect || null;
        return new Promise(function (resolve) {
          firstOpen = { resolve: resolve };
          open();
        });
      },
      request: function (fn, args) {
        return new Promise(function (resolve, reject) {
          if (!sock || sock.readyState !== OPEN) {
            reject(new Error('no connection to the phone service at ' + url()));
            return;
          }
          var id = nextId++;
          pending[id] = { resolve: resolve, reject: reject };
          try {
            sock.send(JSON.stringify({ id: id, fn: fn, args: args }));
          } catch (e) {
            delete pending[id];
            reject(e);
          }
        });
      }
    };
  })();

  // In order of preference; the first available one is used.
  var TRANSPORTS = [tauriTransport, wsTransport];

  // ---------------------------------------------------------------- logging and callbacks

  // Every callback of spec/events.tsv, in its order.
  var CALLBACKS = ['onLoaded', 'onStart', 'onRegistered', 'onRegisterFailed', 'onUnRegistered',
    'onCallStateChange', 'onPresenceStateChange', 'onBLFStateChange', 'onChat', 'onDTMF', 'onCdr',
    'onDisplay', 'onLog', 'onEvents'];
  // Other spellings the original documentation uses for the same callbacks.
  var CALLBACK_ALIASES = { onBlfStateChange: 'onBLFStateChange', onBLFStateChage: 'onBLFStateChange' };
  var handlers = {};
  CALLBACKS.forEach(function (name) { handlers[name] = []; });

  var inLogCallback = false;

  // logtoconsole (default true): the engine's LOG notifications and this file's own log lines
  // go to the browser console; false: only the user-facing EVENT notifications do. Read from
  // the static parameters and the page URL, and followed through setparameter().
  var consoleLogs = true;
  function setConsoleLogs(v) {
    if (v === undefined || v === null) { return; }
    var t = String(v).trim().toLowerCase();
    if (t === '' || t === 'def' || t === 'null') { consoleLogs = true; return; }
    consoleLogs = !(t === 'false' || t === '0' || t === 'no');
  }

  setConsoleLogs(parameters.logtoconsole);
  setConsoleLogs(urlParameter('wp_logtoconsole'));

  function toConsole(line) {
    if (global.console) { global.console.log(line); }
  }

  function log(msg) {
    var line = 'webphone_api: ' + msg;
    if (consoleLogs) { toConsole(line); }
    if (inLogCallback) { return; } // a failing onLog handler must not loop
    inLogCallback = true;
    try { fire('onLog', [line]); } finally { inLogCallback = false; }
  }

  // Calls one user callback; an exception in user code is caught and logged.
  function callOne(name, cb, args) {
    try {
      cb.apply(null, args || []);
    } catch (e) {
      var text = name + ' callback threw: ' + (e && e.stack ? e.stack : String(e));
      if (global.console) { global.console.error('webphone_api: ' + text); }
      if (name !== 'onLog') { log(text); }
    }
  }

  // Calls every handler registered for one callback, in registration order.
  function fire(name, args) {
    var list = handlers[name];
    if (!list) { return; }
    list.slice().forEach(function (cb) { callOne(name, cb, args); });
  }

  function addHandler(name, cb) {
    if (typeof cb !== 'function') {
      log(name + ': ignoring a callback that is not a function');
      return;
    }
    handlers[name].push(cb);
    // Lifecycle events that already happened are delivered to late registrants.
    if ((name === 'onLoaded' && state.loaded) || (name === 'onStart' && state.started)) {
      setTimeout(function () { callOne(name, cb, []); }, 0);
    }
  }

  // ---------------------------------------------------------------- state

  var state = {
    loaded: false,
    started: false,
    starting: false,
    registered: false,
    incall: false,
    status: '',
    line: 0,
    startError: null,
    startPromise: null
  };
  var lines = {};         // line number -> {line, status, peer, displayname, callid, direction}
  var userStarted = 0;    // what the page stored in webphone_api.isstarted

  var readonlyState = {};
  ['loaded', 'started', 'registered', 'incall', 'status', 'line', 'startError'].forEach(function (k) {
    Object.defineProperty(readonlyState, k, { enumerable: true, get: function () { return state[k]; } });
  });
  Object.defineProperty(readonlyState, 'lines', {
    enumerable: true,
    get: function () {
      var copy = {};
      Object.keys(lines).forEach(function (n) {
        var l = lines[n];
        copy[n] = { line: l.line, status: l.status, peer: l.peer, displayname: l.displayname, callid: l.callid, direction: l.direction };
      });
      return copy;
    }
  });

  // Per-line statustext values (spec/notifications.md 1): a call exists / the call is over.
  var CALL_STATES = { CallSetup: 1, Setup: 1, InProgress: 1, Routed: 1, Ringing: 1, CallConnect: 1, InCall: 1, Muted: 1, Hold: 1, Speaking: 1, Midcall: 1 };
  var ENDED_STATES = { CallDisconnect: 1, Finishing: 1, Finished: 1, Deletable: 1, Ready: 1, Init: 1, Unknown: 1, Error: 1 };
  // General statustext values of a started engine (everything but "Initializing").
  var RUNNING_STATUS = /^(Ready|Register|Registering|Registered|Register Failed|Accept|Starting Call|Call|Call Initiated|Calling|Ringing|Incoming|In Call|Hangup|Call Finished|Chat)\b/;

  function setLine(n, info) {
    var key = String(n);
    var old = lines[key] || { line: n, status: '', peer: '', displayname: '', callid: '', direction: 0 };
    lines[key] = {
      line: n,
      status: info.status !== undefined ? info.status : old.status,
      peer: info.peer !== undefined ? info.peer : old.peer,
      displayname: info.displayname !== undefined ? info.displayname : old.displayname,
      callid: info.callid !== undefined ? info.callid : old.callid,
      direction: info.direction !== undefined ? info.direction : old.direction
    };
    updateIncallFromLines();
  }

  function dropLine(n) {
    delete lines[String(n)];
    updateIncallFromLines();
  }

  function updateIncallFromLines() {
    state.incall = Object.keys(lines).length > 0;
  }

  function forgetCalls() {
    lines = {};
    state.incall = false;
    state.line = 0;
  }

  // ---------------------------------------------------------------- argument forms

  // "All parameters can be passed as strings": everything goes to the engine as a string.
  function coerce(v) {
    if (v === undefined || v === null) { return ''; }
    if (typeof v === 'string') { return v; }
    if (typeof v === 'object') {
      try { return JSON.stringify(v); } catch (e) { return String(v); }
    }
    return String(v);
  }

  function isMissing(v) { return v === undefined || v === null; }

  // One argument by its form: s string, n number, b boolean, l line, i line or Call-ID/peer.
  // A missing argument (undefined, null) becomes undefined: not sent when trailing, else "".
  var FORMS = {
    s: function (v) { return isMissing(v) ? undefined : coerce(v); },
    n: function (v) {
      if (isMissing(v)) { return undefined; }
      if (typeof v === 'boolean') { return v ? '1' : '0'; }
      return coerce(v).trim();
    },
    b: function (v) {
      if (isMissing(v)) { return undefined; }
      if (typeof v === 'boolean') { return v ? 'true' : 'false'; }
      if (typeof v === 'number') { return v !== 0 ? 'true' : 'false'; }
      var t = coerce(v).trim().toLowerCase();
      if (t === 'true' || t === '1' || t === 'yes' || t === 'on') { return 'true'; }
      if (t === 'false' || t === '0' || t === 'no' || t === 'off' || t === '') { return 'false'; }
      return coerce(v); // the engine explains what it expects
    },
    l: function (v) {
      if (isMissing(v) || v === false) { return undefined; }
      if (v === true) { return '-2'; } // hangup(true): every line (FAQ)
      return coerce(v).trim();
    },
    i: function (v) { return isMissing(v) ? undefined : coerce(v).trim(); }
  };

  // Converts an argument list by the forms string ('sl' = string, line); arguments beyond the
  // documented ones are sent as strings. Trailing missing arguments are not sent.
  function toArgs(list, forms) {
    forms = forms || '';
    var out = [];
    for (var i = 0; i < list.length; i++) {
      var form = FORMS[forms.charAt(i)] || FORMS.s;
      out.push(form(list[i]));
    }
    while (out.length && out[out.length - 1] === undefined) { out.pop(); }
    for (var j = 0; j < out.length; j++) { if (out[j] === undefined) { out[j] = ''; } }
    return out;
  }

  function truthy(v) {
    if (typeof v === 'string') { var t = v.trim().toLowerCase(); return t === 'true' || t === '1'; }
    return !!v;
  }

  // Result forms: b boolean, n number (when numeric), s string.
  var RESULTS = {
    b: truthy,
    n: function (v) {
      if (typeof v === 'number') { return v; }
      var t = coerce(v).trim();
      return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : v;
    },
    s: function (v) { return isMissing(v) ? '' : coerce(v); }
  };

  // ---------------------------------------------------------------- synchronous answers

  // The original answered some functions synchronously (`if (webphone_api.isincall())`). The
  // engine keeps this copy of their values current: `syncstate` (an engine extension) gives all
  // of it with the sequence number it is current for, `_sync` events give what changed since
  // (each with a higher `seq`). Until the first copy arrived, the answers come from what the
  // facade learnt from the event stream (`state`) and from the parameters it sent itself.
  // mirror.have: the copy is current and events apply to it; mirror.ever: a copy arrived once
  // (its values answer while a new one loads, e.g. after a reconnect).
  var mirror = { have: false, ever: false, seq: -1, state: {}, params: {}, logs: [] };
  var LOG_KEEP = 2000;     // log lines the engine keeps for getlogs()
  var EARLY_MAX = 4000;    // `_sync` events kept while a copy loads
  var early = [];          // `_sync` events received before the copy they follow
  var loading = null;      // the syncstate request under way
  var noCopy = false;      // the engine gave no copy: its events are not kept
  var localWrites = {};    // parameter -> {value}: the page's setparameter() not answered yet
  var pageParams = {};     // parameters the facade itself sent (static, cookie, URL)

  function paramKey(name) { return coerce(name).trim().toLowerCase().replace(/^ucfg_/, ''); }

  // Parameters whose values the engine never hands out (its is_secret list).
  var SECRET_NAMES = { password: 1, md5: 1, turnpassword: 1, extraregisteraccounts: 1, ice: 1, voicerecupload: 1 };
  function isSecretName(key) {
    return !!SECRET_NAMES[key] || /password|passwd|pwd|secret|credential|md5/.test(key);
  }

  function applySync(d) {
    if (!d || typeof d !== 'object' || typeof d.seq !== 'number' || d.seq <= mirror.seq) { return; }
    if (d.seq !== mirror.seq + 1) {
      // An event was lost on the way (the engine's event queue overflowed): the copy is
      // fetched again rather than left wrong.
      log('synchronous answers: update ' + (mirror.seq + 1) + ' was lost; reloading them');
      early = [d];
      loadMirror();
      return;
    }
    mirror.seq = d.seq;
    var st = d.state && typeof d.state === 'object' ? d.state : {};
    Object.keys(st).forEach(function (k) { mirror.state[k] = st[k]; });
    var ps = d.params && typeof d.params === 'object' ? d.params : {};
    Object.keys(ps).forEach(function (k) { mirror.params[k] = coerce(ps[k]); });
    if (Array.isArray(d.logs)) {
      d.logs.forEach(function (l) { mirror.logs.push(coerce(l)); });
      if (mirror.logs.length > LOG_KEEP) { mirror.logs.splice(0, mirror.logs.length - LOG_KEEP); }
    }
  }

  function onSyncEvent(d) {
    if (mirror.have) { applySync(d); return; }
    // Kept for the copy under way (a lost one shows as a gap once it is in).
    if (!noCopy && early.length < EARLY_MAX) { early.push(d); }
  }

  // Fetches the whole copy (page load, reconnect: a new engine process counts from 0 again; a
  // lost update). The old values keep answering until the new copy is in.
  function loadMirror() {
    if (loading) { return loading; }
    mirror.have = false;
    noCopy = false;
    loading = send('syncstate', []).then(function (v) {
      if (!v || typeof v !== 'object' || typeof v.seq !== 'number') { throw new Error('unexpected answer'); }
      var params = {};
      var ps = v.params && typeof v.params === 'object' ? v.params : {};
      Object.keys(ps).forEach(function (k) { params[k] = coerce(ps[k]); });
      mirror = {
        have: true,
        ever: true,
        seq: v.seq,
        state: v.state && typeof v.state === 'object' ? v.state : {},
        params: params,
        logs: Array.isArray(v.logs) ? v.logs.map(coerce) : []
      };
      loading = null;
      var later = early;
      early = [];
      later.forEach(function (d) { if (mirror.have) { applySync(d); } else { early.push(d); } });
    }).catch(function (e) {
      loading = null;
      early = [];
      noCopy = true;
      log('synchronous answers come from the event stream only: syncstate: ' + e.message);
    });
    return loading;
  }

  function mirrored(key, fallback) {
    return mirror.ever && mirror.state[key] !== undefined ? mirror.state[key] : fallback;
  }

  function syncGetparameter(name) {
    var key = paramKey(name);
    if (!key) { return ''; }
    if (localWrites[key]) { return localWrites[key].value; }
    if (mirror.ever && mirror.params[key] !== undefined) { return mirror.params[key]; }
    if (pageParams[key] !== undefined) { return pageParams[key]; }
    return '';
  }

  function activeLine() {
    var n = Number(mirrored('line', state.line));
    return n >= 1 ? n : 0;
  }

  function callidOfLine(line) {
    var n = parseInt(coerce(line).trim(), 10);
    if (!(n >= 1)) { n = activeLine(); }
    if (!n) { return ''; }
    var ids = mirrored('lines', null);
    if (ids && typeof ids === 'object') { return coerce(ids[String(n)]); }
    return lines[String(n)] ? coerce(lines[String(n)].callid) : '';
  }

  function lineOfCallid(callid) {
    var id = coerce(callid).trim();
    if (!id) { return 0; }
    var ids = mirrored('lines', null);
    var found = 0;
    if (ids && typeof ids === 'object') {
      Object.keys(ids).forEach(function (n) { if (!found && coerce(ids[n]) === id) { found = Number(n); } });
    } else {
      Object.keys(lines).forEach(function (n) { if (!found && lines[n].callid === id) { found = Number(n); } });
    }
    return found;
  }

  // getlinedetails(line): the line's LINEDETAILS text; without a call on it the idle form.
  function lineDetails(line) {
    var n = parseInt(coerce(line).trim(), 10);
    if (!(n >= 1)) { n = activeLine(); }
    if (!mirror.ever) { return ''; }
    var all = mirror.state.linedetails;
    if (n && all && typeof all === 'object' && typeof all[String(n)] === 'string') { return all[String(n)]; }
    return 'LINEDETAILS,' + n + coerce(mirror.state.idledetails);
  }

  // Lower-casing of ASCII letters only (the engine compares names that way).
  function asciiLower(s) { return coerce(s).replace(/[A-Z]/g, function (c) { return c.toLowerCase(); }); }

  // listcontacts(all): the engine's list text (null when empty), with the voicemail entry when
  // `all` is true.
  function contactList(all) {
    var v = mirrored(truthy(FORMS.b(all) || '') ? 'contactsall' : 'contacts', null);
    return typeof v === 'string' && v !== '' ? v : null;
  }

  // getcontact(name, number): the first contact whose name (ASCII case-insensitive) or one of
  // whose numbers equals the one given, as listcontacts writes it; null when none.
  function findContact(name, number) {
    var n = asciiLower(name).trim();
    var num = asciiLower(number).trim();
    if (!n && !num) {
      log('getcontact: give a name or a number');
      return null;
    }
    var list = contactList(false);
    if (!list) { return null; }
    var lines = list.split('\r\n');
    for (var i = 0; i < lines.length; i++) {
      var f = lines[i].split('\t');
      if (n && asciiLower(f[0]) === n) { return lines[i]; }
      if (num && (f[1] || '').split('|').some(function (x) { return asciiLower(x) === num; })) { return lines[i]; }
    }
    return null;
  }

  // The functions answered from the copy; their Promise forms stay on webphone_api.engine.
  var SYNC = {
    getlinedetails: lineDetails,
    getlastcalldetails: function () { return coerce(mirrored('lastcalldetails', '')); },
    getworkdir: function () { return coerce(mirrored('workdir', '')); },
    getlogs: function () { return mirror.logs.join('\r\n'); },
    listcontacts: contactList,
    getcontact: findContact,
    getparameter: syncGetparameter,
    isregistered: function () { return !!mirrored('registered', state.registered); },
    isincall: function () { return !!mirrored('incall', state.incall); },
    getstatus: function () { return coerce(mirrored('status', state.status)); },
    getline: activeLine,
    linetocallid: callidOfLine,
    callidtoline: lineOfCallid,
    ismuted: function () { return !!mirrored('muted', false); },
    isonhold: function () { return !!mirrored('onhold', false); },
    isencrypted: function () { var n = Number(mirrored('encrypted', -1)); return isNaN(n) ? -1 : n; },
    getregfailreason: function () { return coerce(mirrored('regfailreason', '')); },
    getenginename: function () { return coerce(mirrored('enginename', '')); }
  };

  // ---------------------------------------------------------------- engine events

  function onStatusLine(fields) {
    // STATUS,line,statustext,peername,localname,endpointtype,peerdisplayname,callid,online,
    //        registered,incall,...
    var n = parseInt(fields[1], 10);
    if (n >= 1) {
      var text = fields[2] || '';
      if (CALL_STATES[text]) {
        var info = { status: text, peer: fields[3] || '' };
        if (fields.length > 5) { info.direction = parseInt(fields[5], 10) || 0; }
        if (fields.length > 6) { info.displayname = fields[6] || ''; }
        if (fields.length > 7) { info.callid = (fields[7] || '').replace(/^\[|\]$/g, ''); }
        setLine(n, info);
      } else if (ENDED_STATES[text]) {
        dropLine(n);
      }
      return;
    }
    if (n !== -1) { return; }
    state.status = fields[2] || '';
    if (fields.length > 10) {
      var reg = parseInt(fields[9], 10);
      if (!isNaN(reg) && reg !== 0 && reg !== 4) { state.registered = (reg === 2 || reg === 3); }
      var inc = parseInt(fields[10], 10);
      if (!isNaN(inc)) {
        state.incall = inc > 0;
        if (!state.incall) { lines = {}; }
      }
    }
  }

  // LINEDETAILS,line,state,callid,remoteusername,localusername,type,localaddress,serveraddress,
  //             mute,hold,remotefullname
  function onLineDetails(text) {
    var f = coerce(text).split(',');
    if (f[0] !== 'LINEDETAILS') { return; }
    var n = parseInt(f[1], 10);
    if (!(n >= 1)) { return; }
    if (CALL_STATES[f[2]]) {
      setLine(n, { status: f[2], callid: f[3] || '', peer: f[4] || '', direction: parseInt(f[6], 10) || 0, displayname: f.slice(11).join(',') });
    } else {
      dropLine(n);
    }
  }

  function onNotification(text) {
    if (typeof text !== 'string' || text === '') { return; }
    text.split(/\r?\n/).forEach(function (line) {
      if (line.indexOf('STATUS,') === 0) { onStatusLine(line.split(',')); }
      // The service's notice that its event queue overflowed: the copy may have missed updates.
      if (/^LOG,WARNING,\d+ notifications were dropped/.test(line) && mirror.ever) { loadMirror(); }
      if (line.indexOf('EVENT,') === 0 || (consoleLogs && line.indexOf('LOG,') === 0)) { toConsole(line); }
    });
    fire('onEvents', [text]);
  }

  var startedBeforeLoad = false; // the engine reported its start before onLoaded fired

  function onEngineStarted() {
    state.starting = false;
    state.startError = null;
    if (state.started) { return; }
    // onStart comes after onLoaded: the load sequence picks this up (rejoin).
    if (!state.loaded) { startedBeforeLoad = true; return; }
    state.started = true;
    fire('onStart', []);
    flushQueue();
  }

  var CALL_EVENT_STATUS = { callSetup: 'Setup', callRinging: 'Ringing', callConnected: 'InCall' };

  function onEngineEvent(msg) {
    if (!msg || typeof msg.ev !== 'string') { return; }
    if (msg.ev === 'notification') { onNotification(msg.text); return; }
    var args = Array.isArray(msg.args) ? msg.args : [];
    if (msg.ev === '_sync') { onSyncEvent(args[0]); return; }
    switch (msg.ev) {
      case 'onStart':
        onEngineStarted();
        return; // fired (once) by onEngineStarted
      case 'onRegistered':
        state.registered = true;
        break;
      case 'onRegisterFailed':
      case 'onUnRegistered':
        state.registered = false;
        break;
      case 'onCallStateChange':
        var n = parseInt(args[4], 10);
        if (!isNaN(n)) {
          if (args[0] === 'callDisconnected') {
            dropLine(n);
          } else {
            setLine(n, { status: CALL_EVENT_STATUS[args[0]] || coerce(args[0]), peer: coerce(args[2]), displayname: coerce(args[3]), direction: parseInt(args[1], 10) || 0 });
            state.line = n;
          }
        }
        break;
      default:
        break;
    }
    if (handlers[msg.ev]) { fire(msg.ev, args); }
  }

  // ---------------------------------------------------------------- requests and queueing

  var transport = null;
  var connected = null; // Promise resolved once the transport delivers events
  var queue = [];       // actions waiting for onStart: {fn, args, resolve, reject}

  function send(fn, args) {
    if (!transport) { return Promise.reject(new Error(fn + ': no connection to the phone engine')); }
    return connected.then(function () { return transport.request(fn, args); }).then(
      function (v) { return v; },
      function (e) { throw new Error(fn + ': ' + (e && e.message ? e.message : String(e))); });
  }

  function flushQueue() {
    var pending = queue;
    queue = [];
    pending.forEach(function (q) { send(q.fn, q.args).then(q.resolve, q.reject); });
  }

  function rejectQueue(err) {
    var pending = queue;
    queue = [];
    pending.forEach(function (q) { q.reject(err); });
  }

  function start() {
    if (state.started) { return Promise.resolve(true); }
    if (state.starting) { return state.startPromise; }
    state.starting = true;
    state.startPromise = send('start', []).then(function (v) {
      // The engine answers `start` once it is up. Its onStart event and this answer travel on
      // different channels, so whichever comes first marks the start (onStart fires once). This
      // also covers a page reload while the engine keeps running: `start` then succeeds without
      // a new onStart event.
      onEngineStarted();
      return v;
    }, function (e) {
      state.starting = false;
      state.startError = e.message;
      log('start failed: ' + e.message);
      rejectQueue(e);
      throw e;
    });
    return state.startPromise;
  }

  // An action: runs now when the engine started, otherwise waits for onStart (starting the
  // engine implicitly, as register()/call() do).
  function action(fn, args) {
    if (state.started) { return send(fn, args); }
    var p = new Promise(function (resolve, reject) {
      queue.push({ fn: fn, args: args, resolve: resolve, reject: reject });
    });
    // Before onLoaded the load sequence decides (static parameters first, then autostart).
    if (state.loaded && !state.starting) { start().catch(function () { /* reported through the queue */ }); }
    return p;
  }

  // A direct request: parameters and queries work before start.
  function direct(fn, args) { return send(fn, args); }

  // ---------------------------------------------------------------- the function table

  // Every function of spec/api.tsv except start/stop (below), plus the engine extensions at
  // the end. Columns:
  //   a: true = an action (waits for onStart and starts the engine implicitly), else direct
  //   f: argument forms (see FORMS), r: result form (see RESULTS), default: as the engine answers
  //   cb: the original delivers the result to a trailing callback; 'error' = the callback also
  //       gets "ERROR: <message>" when the engine fails
  var FUNCTIONS = {
    setparameter: { f: 'ss' },
    getparameter: { f: 's', r: 's' },
    register: { a: true },
    registerex: { a: true, f: 's' },
    unregister: { a: true },
    call: { a: true, f: 's' },
    videocall: { a: true, f: 's' },
    screenshare: { a: true, f: 'ss' },
    stopscreenshare: { a: true },
    hangup: { a: true, f: 'l' },
    accept: { a: true, f: 'l' },
    reject: { a: true, f: 'l' },
    ignore: { a: true, f: 'l' },
    forward: { a: true, f: 's' },
    hold: { a: true, f: 'bl' },
    mute: { a: true, f: 'bnl' },
    mutevideo: { a: true, f: 'bn' },
    transfer: { a: true, f: 's' },
    conference: { a: true, f: 'sb' },
    dtmf: { a: true, f: 'sl' },
    sendchat: { a: true, f: 'ss' },
    sendsms: { a: true, f: 'sss' },
    voicerecord: { a: true, f: 'bs' },
    checkblf: { a: true, f: 's' },
    checkpresence: { a: true, f: 's' },
    setpresencestatus: { a: true, f: 's' },
    setvideodisplaysize: { f: 'nnn' },
    devicepopup: {},
    getdevicelist: { f: 'n', r: 's', cb: true },
    getdevice: { f: 'n', r: 's', cb: true },
    setdevice: { f: 'nsn' },
    getvolume: { f: 'n', r: 'n', cb: true },
    setvolume: { f: 'nn' },
    setsipheader: { f: 's' },
    getsipheader: { f: 's', r: 's', cb: 'error' },
    getsipmessage: { f: 'nn', r: 's', cb: 'error' },
    getlinedetails: { f: 'l', r: 's' },
    getlastcalldetails: { r: 's' },
    getregfailreason: { r: 's' },
    setline: { f: 'i' },
    getline: { r: 'n' },
    linetocallid: { f: 'l', r: 's' },
    callidtoline: { f: 's', r: 'n' },
    isregistered: { r: 'b' },
    isincall: { r: 'b' },
    ismuted: { r: 'b' },
    isonhold: { r: 'b' },
    isencrypted: { r: 'n' },
    getenginename: { r: 's' },
    listcontacts: { f: 'b' },
    addcontact: { f: 'ssssss' },
    getcontact: { f: 'ss' },
    delcontact: { f: 'ss' },
    getworkdir: { r: 's' },
    delsettings: { f: 'n' },
    jvoip: { jvoip: true },
    getlogs: { r: 's' },
    getstatus: { r: 's' },
    // Engine extensions (docs/behaviour-choices.md): vCard import (returns how many contacts
    // were written) and export (vCard 4.0 text), calling the voicemail number, and asking an
    // API link parameter (newuser, recharge, ...; the answer comes as a notification), and
    // downloading the server address book (serveraddressbook_url) now, and uploading the
    // engine's log to logform_action (the desktop app has no form POST in a new tab), and the
    // stored conversations (chathistory(peer, limit): an array of {at, peer, direction, text,
    // status}, oldest first), and typing indications to a peer (chatcomposing(peer, typing):
    // RFC 3994; repeats within the refresh interval are dropped by the engine), and marking a
    // stored contact as favourite (setfavorite(name, number, state)), and trying the audio
    // devices outside a call (audiotest('mic' | 'speaker' | 'stop'): the microphone's level
    // comes as VAD notifications, the speaker plays a short test sound).
    importvcard: { f: 's', r: 'n' },
    exportvcard: { r: 's' },
    callvoicemail: { a: true },
    linkrequest: { f: 'ss' },
    syncservercontacts: {},
    sendlogs: {},
    chathistory: { f: 'sn' },
    chatcomposing: { f: 'sb', r: 'b' },
    setfavorite: { f: 'ssb', r: 'n' },
    audiotest: { f: 's' }
  };

  // What some answers tell about the phone: kept in `state`.
  var AFTER = {
    getstatus: function (v) { state.status = v; },
    isregistered: function (v) { state.registered = v; },
    isincall: function (v) { state.incall = v; },
    getline: function (v) { if (typeof v === 'number') { state.line = v; } },
    getlinedetails: onLineDetails,
    setparameter: function (v, args) {
      if (String(args[0] || '').trim().toLowerCase() === 'logtoconsole') { setConsoleLogs(args[1]); }
    }
  };

  // jvoip(name, [args]) or the document's unwrapped form jvoip(name, a, b): the engine gets the
  // name and the arguments as one JSON array.
  function jvoipArgs(list) {
    var rest = list.length === 2 && Array.isArray(list[1]) ? list[1] : list.slice(1);
    return [coerce(list[0]), JSON.stringify(rest.map(function (v) { return isMissing(v) ? null : v; }))];
  }

  function makeFunction(name, spec) {
    return function () {
      var list = Array.prototype.slice.call(arguments);
      var callback = null;
      // Callbacks are taken out of the arguments: they never go to the engine.
      list = list.filter(function (v) {
        if (typeof v !== 'function') { return true; }
        if (spec.cb && !callback) { callback = v; } else { log(name + ': ignoring a function argument'); }
        return false;
      });
      var args = spec.jvoip ? jvoipArgs(list) : toArgs(list, spec.f);
      var p = (spec.a ? action : direct)(name, args).then(function (v) {
        var value = spec.r ? RESULTS[spec.r](v) : v;
        if (AFTER[name]) { AFTER[name](value, args); }
        if (callback) { setTimeout(function () { callOne(name, callback, [value]); }, 0); }
        return value;
      }, function (e) {
        log(e.message);
        if (callback && spec.cb === 'error') {
          var text = 'ERROR: ' + e.message;
          setTimeout(function () { callOne(name, callback, [text]); }, 0);
        }
        throw e;
      });
      // With a callback the caller may ignore the Promise: do not report it as unhandled.
      if (callback) { p.catch(function () {}); }
      return p;
    };
  }

  // ---------------------------------------------------------------- the public object

  var api = {
    parameters: parameters,
    state: readonlyState,

    start: function () { return start(); },
    stop: function () {
      rejectQueue(new Error('stop: the engine was stopped'));
      return direct('stop', []).then(function (v) {
        state.started = false;
        state.starting = false;
        state.registered = false;
        userStarted = 0;
        forgetCalls();
        return v;
      });
    }
  };

  // webphone_api.engine.<fn>(...): every function as a request to the engine, answered by a
  // Promise (also those webphone_api answers synchronously from its copy, see SYNC).
  var engineApi = {};
  Object.keys(FUNCTIONS).forEach(function (name) {
    engineApi[name] = makeFunction(name, FUNCTIONS[name]);
    api[name] = SYNC[name] || engineApi[name];
  });
  api.engine = engineApi;

  // setparameter() from the page: getparameter() answers the new value at once (a secret one as
  // "<redacted>"). The engine sends its `_sync` event (what it stored, e.g. "1" as "true")
  // before its answer, so once the answer is in, the copy holds the right value; a refused
  // value leaves the old one.
  api.setparameter = function (name, value) {
    var key = paramKey(name);
    var write = null;
    if (key && arguments.length < 3) {
      var v = coerce(value);
      write = { value: v !== '' && isSecretName(key) ? '<redacted>' : v };
      localWrites[key] = write;
    }
    var p = engineApi.setparameter.apply(null, arguments);
    function settle() {
      if (write && localWrites[key] === write) { delete localWrites[key]; }
    }
    p.then(settle, settle);
    return p;
  };

  // The original's multi-page example stores webphone_api.isstarted = 1 after start().
  Object.defineProperty(api, 'isstarted', {
    enumerable: true,
    get: function () { return (state.started || state.starting) ? 1 : (userStarted ? 1 : 0); },
    set: function (v) { userStarted = truthy(coerce(v)) || v === true ? 1 : 0; }
  });

  CALLBACKS.forEach(function (name) {
    api[name] = function (cb) { addHandler(name, cb); };
  });
  Object.keys(CALLBACK_ALIASES).forEach(function (alias) {
    api[alias] = function (cb) { addHandler(CALLBACK_ALIASES[alias], cb); };
  });

  // ---------------------------------------------------------------- load sequence

  // Resolves once the page's own scripts, deferred ones included, have run, so that callbacks they
  // register see every event. Deferred scripts run while readyState is already "interactive" and
  // before DOMContentLoaded fires, so "not loading" is not enough: the page is ready at
  // DOMContentLoaded, or at "complete" if this file was loaded after that event.
  var domReadyPromise = null;
  function domReady() {
    if (domReadyPromise) { return domReadyPromise; }
    var doc = global.document;
    if (!doc || doc.readyState === 'complete' || typeof doc.addEventListener !== 'function') {
      domReadyPromise = Promise.resolve();
      return domReadyPromise;
    }
    domReadyPromise = new Promise(function (resolve) {
      doc.addEventListener('DOMContentLoaded', function () { resolve(); }, { once: true });
      doc.addEventListener('readystatechange', function () {
        if (doc.readyState === 'complete') { resolve(); }
      });
    });
    return domReadyPromise;
  }

  function isWpName(key) { return /^wp_./i.test(key); }

  function decode(text) {
    try { return decodeURIComponent(text); } catch (e) { return text; }
  }

  // `wp_` parameters of the page URL's query, in their order: [[name, value], ...].
  function urlParameters() {
    var loc = global.location;
    var search = loc && typeof loc.search === 'string' ? loc.search : '';
    var out = [];
    search.replace(/^\?/, '').split('&').forEach(function (pair) {
      if (!pair) { return; }
      var eq = pair.indexOf('=');
      var key = eq < 0 ? pair : pair.slice(0, eq);
      var value = eq < 0 ? '' : pair.slice(eq + 1);
      try {
        key = decodeURIComponent(key.replace(/\+/g, ' '));
        value = decodeURIComponent(value.replace(/\+/g, ' '));
      } catch (e) {
        log('ignoring a URL parameter that is not properly encoded: ' + pair.slice(0, 40));
        return;
      }
      if (isWpName(key)) { out.push([key.slice(3), value]); }
    });
    return out;
  }

  // `wp_` cookies of the page: [[name, value], ...].
  function cookieParameters() {
    var doc = global.document;
    var text = '';
    try { text = doc && typeof doc.cookie === 'string' ? doc.cookie : ''; } catch (e) { text = ''; }
    var out = [];
    text.split(';').forEach(function (c) {
      var eq = c.indexOf('=');
      if (eq < 0) { return; }
      var key = decode(c.slice(0, eq).trim());
      var value = c.slice(eq + 1).trim();
      if (value.length >= 2 && value.charAt(0) === '"' && value.charAt(value.length - 1) === '"') {
        value = value.slice(1, -1);
      }
      if (isWpName(key)) { out.push([key.slice(3), decode(value)]); }
    });
    return out;
  }

  function staticParameters() {
    return Object.keys(parameters).map(function (n) { return [n, parameters[n]]; });
  }

  // Static block, then cookies, then the URL: sent one after the other (so a later source wins
  // even over a transport that runs requests concurrently). Facade-only names are not sent.
  function applyParameters() {
    var list = [];
    [['static', staticParameters()], ['cookie', cookieParameters()], ['url', urlParameters()]].forEach(function (src) {
      src[1].forEach(function (p) {
        var key = p[0].toLowerCase();
        if (FACADE_ONLY[key]) { return; }
        if (src[0] === 'url' && URL_UI_ONLY[key]) { return; }
        list.push({ source: src[0], name: p[0], value: coerce(p[1]) });
        pageParams[paramKey(p[0])] = coerce(p[1]);
      });
    });
    return list.reduce(function (chain, p) {
      return chain.then(function () {
        return send('setparameter', [p.name, p.value, p.source]).catch(function (e) {
          log(e.message + ' (' + p.source + ' parameter ' + p.name + ')');
        });
      });
    }, Promise.resolve());
  }

  // Asks the engine what it is doing (after a page load or a reconnect) and rebuilds `state`.
  // Resolves to true when the engine is already running.
  function resync() {
    return send('getstatus', []).then(function (v) {
      var status = RESULTS.s(v);
      state.status = status;
      if (!RUNNING_STATUS.test(status)) { return false; }
      // Calls may have ended while we were away: the engine's answers (and the STATUS lines it
      // sends again on `start`) rebuild the list.
      lines = {};
      return send('getline', []).then(function (v) {
        var n = RESULTS.n(v);
        state.line = typeof n === 'number' ? n : 0;
        if (!(state.line >= 1)) { return true; }
        return send('getlinedetails', [String(state.line)]).then(function (d) {
          onLineDetails(d);
          return true;
        });
      }).catch(function (e) {
        log('could not read the line state: ' + e.message);
        return true;
      });
    }, function (e) {
      log('could not read the engine status: ' + e.message);
      return false;
    });
  }

  function autostart() {
    return send('getparameter', ['autostart']).then(function (v) {
      var s = coerce(v).trim().toLowerCase();
      return !(s === 'false' || s === '0' || s === 'no');
    }, function (e) {
      log('autostart: ' + e.message + ' (using the default: true)');
      return true;
    }).then(function (yes) {
      // Actions queued before onLoaded start the engine even with autostart off.
      if ((yes || queue.length > 0) && !state.started && !state.starting) {
        start().catch(function () { /* logged by start() */ });
      }
    });
  }

  // A running engine answers `start` at once and sends its STATUS lines again.
  function rejoin() {
    if (state.started) {
      return send('start', []).catch(function (e) { log('start after a reconnect: ' + e.message); });
    }
    return start().catch(function () { /* logged by start() */ });
  }

  // The local service came back after a lost connection.
  function onReconnect() {
    loadMirror().then(resync).then(function (running) {
      if (running) { return rejoin(); }
      if (state.started) {
        // A new engine process: it starts from scratch.
        log('the phone engine was restarted');
        state.started = false;
        state.starting = false;
        state.registered = false;
        forgetCalls();
      }
      return autostart();
    }).catch(function (e) { log('reconnect: ' + (e && e.message ? e.message : String(e))); });
  }

  function load() {
    domReady(); // listen for DOMContentLoaded from the start: it may fire before any event
    for (var i = 0; i < TRANSPORTS.length && !transport; i++) {
      if (TRANSPORTS[i].available()) { transport = TRANSPORTS[i]; }
    }
    if (!transport) {
      connected = Promise.reject(new Error('no transport'));
      connected.catch(function () {});
      domReady().then(function () {
        log('no connection to the phone engine (no transport available)');
        fire('onDisplay', ['No connection to the phone engine', 'Error']);
      });
      return;
    }
    connected = transport.connect(onEngineEvent, onReconnect);
    var running = false;
    connected.then(domReady).then(applyParameters).then(loadMirror).then(resync).then(function (r) {
      running = r || startedBeforeLoad;
      state.loaded = true;
      fire('onLoaded', []);
      return running ? rejoin() : autostart();
    }).catch(function (e) {
      log('load failed: ' + (e && e.message ? e.message : String(e)));
    });
  }

  global.webphone_api = api;
  load();
})(window);
