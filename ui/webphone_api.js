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
 *         connect(onEvent): Promise<void>,        // onEvent(obj) for each engine event
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
 * Return values: the engine is reached asynchronously, so every function returns a Promise that
 * resolves to the engine's result (or rejects with an Error carrying the engine's message).
 * The original product returned some values synchronously (isregistered, isincall, getstatus);
 * for code that needs an immediate answer, `webphone_api.state` holds the last known values,
 * kept up to date from the event stream:
 *   webphone_api.state.registered, .incall, .status, .started, .loaded, .startError
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
        if (firstOpen) { firstOpen.resolve(); firstOpen = null; }
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
      connect: function (onEvent) {
        deliver = onEvent;
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

  var CALLBACKS = ['onLoaded', 'onStart', 'onRegistered', 'onRegisterFailed', 'onUnRegistered',
    'onCallStateChange', 'onCdr', 'onEvents', 'onDisplay', 'onLog'];
  var handlers = {};
  CALLBACKS.forEach(function (name) { handlers[name] = []; });

  var inLogCallback = false;

  function log(msg) {
    var line = 'webphone_api: ' + msg;
    if (global.console) { global.console.log(line); }
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
    startError: null,
    startPromise: null
  };
  var activeLines = {}; // line -> last call state, from onCallStateChange

  var readonlyState = {};
  ['loaded', 'started', 'registered', 'incall', 'status', 'startError'].forEach(function (k) {
    Object.defineProperty(readonlyState, k, { enumerable: true, get: function () { return state[k]; } });
  });

  function updateIncallFromLines() {
    state.incall = Object.keys(activeLines).length > 0;
  }

  // "All parameters can be passed as strings": everything goes to the engine as a string.
  function coerce(v) {
    if (v === undefined || v === null) { return ''; }
    if (typeof v === 'string') { return v; }
    if (typeof v === 'object') {
      try { return JSON.stringify(v); } catch (e) { return String(v); }
    }
    return String(v);
  }

  function toArgs(list) {
    var out = [];
    for (var i = 0; i < list.length; i++) { out.push(coerce(list[i])); }
    // Optional trailing arguments the caller left out are not sent.
    while (out.length && (list[out.length - 1] === undefined)) { out.pop(); }
    return out;
  }

  // ---------------------------------------------------------------- engine events

  function onStatusLine(fields) {
    // STATUS,line,statustext,peername,localname,endpointtype,peerdisplayname,callid,online,
    //        registered,incall,...
    if (fields[1] !== '-1') { return; }
    state.status = fields[2] || '';
    if (fields.length > 10) {
      var reg = parseInt(fields[9], 10);
      if (!isNaN(reg) && reg !== 0 && reg !== 4) { state.registered = (reg === 2 || reg === 3); }
      var inc = parseInt(fields[10], 10);
      if (!isNaN(inc)) {
        state.incall = inc > 0;
        if (!state.incall) { activeLines = {}; }
      }
    }
  }

  function onNotification(text) {
    if (typeof text !== 'string' || text === '') { return; }
    text.split(/\r?\n/).forEach(function (line) {
      if (line.indexOf('STATUS,') === 0) { onStatusLine(line.split(',')); }
    });
    fire('onEvents', [text]);
  }

  function onEngineStarted() {
    state.starting = false;
    state.startError = null;
    if (state.started) { return; }
    state.started = true;
    fire('onStart', []);
    flushQueue();
  }

  function onEngineEvent(msg) {
    if (!msg || typeof msg.ev !== 'string') { return; }
    if (msg.ev === 'notification') { onNotification(msg.text); return; }
    var args = Array.isArray(msg.args) ? msg.args : [];
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
        var line = String(args[4] !== undefined ? args[4] : '');
        if (args[0] === 'callDisconnected') { delete activeLines[line]; } else { activeLines[line] = args[0]; }
        updateIncallFromLines();
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
  function action(fn, argList) {
    var args = toArgs(argList);
    if (state.started) { return send(fn, args); }
    var p = new Promise(function (resolve, reject) {
      queue.push({ fn: fn, args: args, resolve: resolve, reject: reject });
    });
    // Before onLoaded the load sequence decides (static parameters first, then autostart).
    if (state.loaded && !state.starting) { start().catch(function () { /* reported through the queue */ }); }
    return p;
  }

  // A direct request: parameters and queries work before start.
  function direct(fn, argList) { return send(fn, toArgs(argList)); }

  // ---------------------------------------------------------------- the public object

  var api = {
    parameters: parameters,
    state: readonlyState,

    setparameter: function (param, value) { return direct('setparameter', [param, value]); },
    getparameter: function (param) { return direct('getparameter', [param]); },

    start: function () { return start(); },
    stop: function () {
      rejectQueue(new Error('stop: the engine was stopped'));
      return direct('stop', []).then(function (v) {
        state.started = false;
        state.starting = false;
        state.registered = false;
        activeLines = {};
        state.incall = false;
        return v;
      });
    },

    register: function () { return action('register', []); },
    unregister: function () { return action('unregister', []); },
    call: function (number) { return action('call', [number]); },
    accept: function (line) { return action('accept', [line]); },
    reject: function (line) { return action('reject', [line]); },
    hangup: function (line) { return action('hangup', [line]); },
    dtmf: function (msg) { return action('dtmf', [msg]); },

    getstatus: function () {
      return direct('getstatus', []).then(function (v) { state.status = coerce(v); return v; });
    },
    isregistered: function () {
      return direct('isregistered', []).then(function (v) { state.registered = truthy(v); return state.registered; });
    },
    isincall: function () {
      return direct('isincall', []).then(function (v) { state.incall = truthy(v); return state.incall; });
    }
  };

  function truthy(v) {
    if (typeof v === 'string') { return v === 'true' || v === '1'; }
    return !!v;
  }

  CALLBACKS.forEach(function (name) {
    api[name] = function (cb) { addHandler(name, cb); };
  });

  // ---------------------------------------------------------------- load sequence

  function domReady() {
    if (!global.document || global.document.readyState !== 'loading') { return Promise.resolve(); }
    return new Promise(function (resolve) {
      global.document.addEventListener('DOMContentLoaded', function () { resolve(); }, { once: true });
    });
  }

  function applyStaticParameters() {
    var names = Object.keys(parameters).filter(function (n) { return !FACADE_ONLY[n.toLowerCase()]; });
    return Promise.all(names.map(function (n) {
      return send('setparameter', [n, coerce(parameters[n])]).catch(function (e) { log(e.message); });
    }));
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

  function load() {
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
    connected = transport.connect(onEngineEvent);
    connected.then(domReady).then(applyStaticParameters).then(function () {
      state.loaded = true;
      fire('onLoaded', []);
      return autostart();
    }).catch(function (e) {
      log('load failed: ' + (e && e.message ? e.message : String(e)));
    });
  }

  global.webphone_api = api;
  load();
})(window);
