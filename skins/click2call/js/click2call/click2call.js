/*
 * click2call.js: click-to-call buttons for any web page, on top of webphone_api.js.
 *
 * Put <div id="c2k_container_0" title="NUMBER"></div> where a button should appear; more
 * buttons: c2k_container_1, c2k_container_2, ... (unique, increasing). The title attribute is
 * the number (or SIP address) the button calls; an empty title uses the `callto` parameter.
 * Include webphone_api.js, ../softphone/js/lib/stringres.js (translations), this file and
 * css/click2call/click2call.css in the page's <head>.
 *
 * What the user can do with a button:
 *   - click (or Enter/Space): call; while the call runs the same button hangs up;
 *   - right click, long press (600 ms) or the small menu button next to it (also the
 *     ContextMenu key / Shift+F10 on the button): a menu with Call, Chat, Hang up;
 *   - the chat window sends SIP MESSAGEs to the button's number and shows the answers.
 *
 * Parameters (looked up as URL `wp_<name>`, then webphone_api.parameters, then the engine,
 * then the customisation variables below):
 *   callto, autoaction (0 show the button and call on click; 1 call at page load; 2 open the
 *   chat window at load (with wp_sendchat=TEXT and wp_to=NUMBER: send that text); 3 video call
 *   at load: this engine has no video, so an audio call is placed), language, float_button,
 *   float_distance_from_top/left/bottom/right, call_button_color, call_button_width,
 *   call_button_height, call_button_radius, call_button_text, call_button_text_color.
 * The start-up action (autoaction 1-3) is done by the first button (c2k_container_0).
 *
 * Everything that comes from a peer, the URL or the page (numbers, chat texts) is put on the
 * page as text, never as HTML.
 */

// ------------------------------------------------------------------ Customisations
// Change these to restyle every button of the page (parameters of the same name win).

// Button colour, or a background image: 'url(IMAGE_PATH/YOUR_PHOTO.png)' (IMAGE_PATH is this
// skin's images/ folder).
var call_button_color = '#1b6e34';
var call_button_text_color = '#ffffff';
var call_button_width = 180;   // pixels
var call_button_height = 48;   // pixels
var call_button_radius = 24;   // pixels (corner rounding)
var call_button_text = '';     // empty = the translated "Call"

// Floating button: set float_button = true and two of the four distances (pixels, -1 = unused).
// The chat window floats with its button.
var float_button = false;
var float_distance_from_top = -1;
var float_distance_from_left = -1;
var float_distance_from_bottom = -1;
var float_distance_from_right = -1;

// ------------------------------------------------------------------ Implementation
(function (global) {
  'use strict';

  var doc = global.document;
  var wp = global.webphone_api;
  var sr = global.stringres;
  var LONG_PRESS_MS = 600;
  var TIMER_TICK_MS = 1000;

  // This script's folder: images/ and the i18n/ files are found relative to it, so the skin
  // also works when embedded in a page elsewhere on the site.
  var SCRIPT_URL = (doc.currentScript && doc.currentScript.src) || global.location.href;
  var SKIN_BASE = new URL('../../', SCRIPT_URL).href;          // skins/click2call/
  var I18N_BASE = new URL('../../../../i18n/', SCRIPT_URL).href;

  function t(key, vars) { return sr ? sr.t(key, vars) : key; }

  function el(tag, cls, text) {
    var e = doc.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function truthy(v) {
    var s = String(v === undefined || v === null ? '' : v).trim().toLowerCase();
    return s === 'true' || s === '1' || s === 'yes' || s === 'on';
  }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function duration(sec) { return pad2(Math.floor(sec / 60)) + ':' + pad2(sec % 60); }

  function api(fn) {
    var args = Array.prototype.slice.call(arguments, 1);
    if (!wp || typeof wp[fn] !== 'function') { return Promise.reject(new Error(fn + ' is not available')); }
    try { return Promise.resolve(wp[fn].apply(wp, args)); } catch (e) { return Promise.reject(e); }
  }

  // ---------------------------------------------------------------- parameters

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

  var DEFAULTS = {
    callto: '', autoaction: '0', language: '', sendchat: '', to: '', colortheme: '',
    call_button_color: call_button_color, call_button_text_color: call_button_text_color,
    call_button_width: call_button_width, call_button_height: call_button_height,
    call_button_radius: call_button_radius, call_button_text: call_button_text,
    float_button: float_button, float_distance_from_top: float_distance_from_top,
    float_distance_from_left: float_distance_from_left, float_distance_from_bottom: float_distance_from_bottom,
    float_distance_from_right: float_distance_from_right
  };
  var params = {};
  // Asked from the engine too (catalog parameters an integrator may have set with setparameter).
  // Not autoaction: a one-time link (?wp_autoaction=1) is stored by the engine, and a stored
  // value would call at every later page load; it is read from the URL and the static block.
  var FROM_ENGINE = { callto: 1, language: 1, colortheme: 1, call_button_color: 1, float_button: 1, float_distance_from_top: 1,
    float_distance_from_left: 1, float_distance_from_bottom: 1, float_distance_from_right: 1 };

  // URL and static parameters at once; the engine's values (withEngine) once it is reachable.
  function loadParams(withEngine) {
    var stat = (wp && wp.parameters) || {};
    return Promise.all(Object.keys(DEFAULTS).map(function (n) {
      var u = urlParam(n);
      if (u !== null && u !== '') { params[n] = u; return null; }
      if (stat[n] !== undefined && stat[n] !== null && stat[n] !== '') { params[n] = String(stat[n]); return null; }
      if (!withEngine || !FROM_ENGINE[n] || !wp || typeof wp.getparameter !== 'function') { return null; }
      return api('getparameter', n).then(function (v) {
        if (v !== null && v !== undefined && v !== '') { params[n] = String(v); }
      }, function () { /* unknown to the engine: the default */ });
    }));
  }

  function param(n) { return params[n] === undefined ? String(DEFAULTS[n]) : params[n]; }
  function paramInt(n, def) { var v = parseInt(param(n), 10); return isNaN(v) ? def : v; }

  // ---------------------------------------------------------------- look

  // A colour or url(...) image for the button background; anything the browser would not accept
  // as a background (or that tries to leave the url()) is ignored.
  function background(value) {
    var v = String(value || '').trim().replace(/IMAGE_PATH\/?/g, SKIN_BASE + 'images/');
    if (!v || /[;{}<>\\]/.test(v)) { return null; }
    var m = /^url\(\s*(['"]?)([^'"()\s]+)\1\s*\)$/i.exec(v);
    if (m) {
      var u;
      try { u = new URL(m[2], global.location.href); } catch (e) { return null; }
      if (!/^(https?:|file:)$/.test(u.protocol)) { return null; }
      return { image: 'url("' + u.href + '")' };
    }
    if (global.CSS && global.CSS.supports && !global.CSS.supports('color', v)) { return null; }
    return { color: v };
  }

  function px(v, min, max) {
    var n = parseInt(v, 10);
    if (isNaN(n)) { return null; }
    return Math.max(min, Math.min(max, n)) + 'px';
  }

  // colortheme (with js/softphone/themes.js on the page): the theme's call and header colours,
  // unless call_button_color / call_button_text_color are set.
  function themeColors() {
    var n = parseInt(param('colortheme'), 10);
    var list = global.themelist;
    if (!(n > 0) || !Array.isArray(list)) { return null; }
    for (var i = 0; i < list.length; i++) { if (list[i].number === n) { return list[i].colors; } }
    return null;
  }

  var SHIPPED_COLOR = '#1b6e34';
  var SHIPPED_TEXT_COLOR = '#ffffff';

  // Set by a parameter, or the variable at the top of this file was edited.
  function explicit(name, shipped) { return params[name] !== undefined || String(DEFAULTS[name]) !== shipped; }

  function applyLook(box, button) {
    var th = themeColors();
    var ownColor = explicit('call_button_color', SHIPPED_COLOR);
    var ownText = explicit('call_button_text_color', SHIPPED_TEXT_COLOR);
    if (th) {
      if (!ownColor && th.call) { button.style.setProperty('--c2k-bg', th.call); }
      if (!ownText && th.calltext) { button.style.setProperty('--c2k-fg', th.calltext); }
      if (th.primary) { box.style.setProperty('--c2k-head', th.primary); }
      if (th.primarytext) { box.style.setProperty('--c2k-head-text', th.primarytext); }
      if (th.hangup) { box.style.setProperty('--c2k-hangup', th.hangup); }
    }
    if (th && !ownColor) { applySize(box, ownText); return; }
    var bg = background(param('call_button_color'));
    if (bg && bg.color) { button.style.setProperty('--c2k-bg', bg.color); }
    if (bg && bg.image) {
      button.style.setProperty('--c2k-bg-image', bg.image);
      button.classList.add('c2k-image');
    }
    applySize(box, !th || ownText);
  }

  function applySize(box, withText) {
    var button = box.querySelector('.c2k-button');
    var fg = withText ? String(param('call_button_text_color')).trim() : '';
    if (fg && !/[;{}<>\\]/.test(fg) && (!global.CSS || global.CSS.supports('color', fg))) { button.style.setProperty('--c2k-fg', fg); }
    var w = px(param('call_button_width'), 44, 800);
    var h = px(param('call_button_height'), 32, 400);
    var r = px(param('call_button_radius'), 0, 400);
    if (w) { box.style.setProperty('--c2k-width', w); }
    if (h) { box.style.setProperty('--c2k-height', h); }
    if (r) { box.style.setProperty('--c2k-radius', r); }
    ['top', 'left', 'bottom', 'right'].forEach(function (side) { box.style[side] = ''; });
    box.classList.remove('c2k-floating', 'c2k-open-up');
    if (truthy(param('float_button'))) {
      box.classList.add('c2k-floating');
      [['top', 'float_distance_from_top'], ['left', 'float_distance_from_left'],
        ['bottom', 'float_distance_from_bottom'], ['right', 'float_distance_from_right']].forEach(function (p) {
        var d = paramInt(p[1], -1);
        if (d >= 0) { box.style[p[0]] = Math.min(d, 10000) + 'px'; }
      });
      // Nothing set: the bottom right corner.
      if (!box.style.top && !box.style.bottom) { box.style.bottom = '16px'; }
      if (!box.style.left && !box.style.right) { box.style.right = '16px'; }
      if (box.style.bottom) { box.classList.add('c2k-open-up'); }
    }
  }

  // ---------------------------------------------------------------- calls (from STATUS lines)

  var ACTIVE = { CallSetup: 1, Setup: 1, InProgress: 1, Routed: 1, Ringing: 1, CallConnect: 1, InCall: 1, Muted: 1, Hold: 1, Speaking: 1, Midcall: 1 };
  var CONNECTED = { CallConnect: 1, InCall: 1, Muted: 1, Hold: 1, Speaking: 1, Midcall: 1 };
  var ENDED = { CallDisconnect: 1, Finishing: 1, Finished: 1 };

  var buttons = [];       // the Button objects, in container order
  var calling = null;     // the Button whose call is being placed or running

  function sameNumber(a, b) {
    var norm = function (s) { return String(s || '').toLowerCase().replace(/^sips?:/, '').split('@')[0].replace(/[\s().-]/g, ''); };
    return norm(a) !== '' && norm(a) === norm(b);
  }

  function buttonFor(peer) {
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].inCall && sameNumber(buttons[i].number, peer)) { return buttons[i]; }
    }
    if (calling) { return calling; }
    for (var j = 0; j < buttons.length; j++) {
      if (sameNumber(buttons[j].number, peer)) { return buttons[j]; }
    }
    return null;
  }

  function onNotification(text) {
    String(text || '').split(/\r?\n/).forEach(function (raw) {
      var f = raw.trim().replace(/^WPNOTIFICATION,/, '').replace(/\s*NEOL$/, '').split(',');
      var kind = f[0];
      if (kind === 'STATUS') {
        var line = parseInt(f[1], 10);
        if (!(line >= 1)) { return; }
        var status = (f[2] || '').trim();
        var peer = (f[3] || '').trim();
        var b = buttonFor(peer);
        if (b) { b.callState(line, status); }
      } else if (kind === 'CHAT') {
        // CHAT,line,peername,text (the text may contain commas)
        var from = (f[2] || '').trim();
        var body = f.slice(3).join(',');
        var target = null;
        for (var i = 0; i < buttons.length && !target; i++) { if (sameNumber(buttons[i].number, from)) { target = buttons[i]; } }
        if (!target) { for (var k = 0; k < buttons.length && !target; k++) { if (buttons[k].chatOpen) { target = buttons[k]; } } }
        if (!target && buttons.length) { target = buttons[0]; }
        if (target) { target.openChat(false); target.addMessage('in', body, from); }
      } else if (kind === 'CHATREPORT') {
        // CHATREPORT,line,peername,status,text
        var to = (f[2] || '').trim();
        var st = (f[3] || '').trim();
        var why = f.slice(4).join(',');
        buttons.forEach(function (bt) { if (sameNumber(bt.number, to)) { bt.chatReport(st, why); } });
      }
    });
  }

  // ---------------------------------------------------------------- one button

  function Button(container, index) {
    var self = this;
    this.index = index;
    this.container = container;
    this.number = String(container.getAttribute('title') || '').trim() || String(param('callto')).trim();
    this.inCall = false;
    this.line = 0;
    this.started = 0;
    this.timer = null;
    this.chatOpen = false;

    container.textContent = '';
    container.classList.add('c2k-container');
    var box = this.box = el('div', 'c2k');
    container.appendChild(box);

    var row = el('div', 'c2k-row');
    var btn = this.button = el('button', 'c2k-button');
    btn.type = 'button';
    btn.id = container.id + '_button';
    btn.setAttribute('aria-haspopup', 'menu');
    this.label = el('span', 'c2k-label');
    var iconSpan = el('span', 'c2k-icon');
    iconSpan.setAttribute('aria-hidden', 'true');
    btn.appendChild(iconSpan);
    btn.appendChild(this.label);
    row.appendChild(btn);

    var more = this.more = el('button', 'c2k-more');
    more.type = 'button';
    more.id = container.id + '_menu_button';
    more.setAttribute('aria-haspopup', 'menu');
    more.setAttribute('aria-expanded', 'false');
    more.appendChild(el('span', 'c2k-more-dots', '\u22EE'));
    more.firstChild.setAttribute('aria-hidden', 'true');
    row.appendChild(more);
    box.appendChild(row);

    var status = this.status = el('div', 'c2k-status');
    status.id = container.id + '_status';
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');
    box.appendChild(status);

    // The menu (right click / long press / menu button).
    var menu = this.menu = el('ul', 'c2k-menu');
    menu.id = container.id + '_menu';
    menu.setAttribute('role', 'menu');
    menu.hidden = true;
    more.setAttribute('aria-controls', menu.id);
    this.items = {};
    ['call', 'chat', 'hangup'].forEach(function (k) {
      var li = el('li');
      li.setAttribute('role', 'none');
      var item = el('button', 'c2k-menu-item');
      item.type = 'button';
      item.setAttribute('role', 'menuitem');
      item.setAttribute('data-action', k);
      item.tabIndex = -1;
      li.appendChild(item);
      menu.appendChild(li);
      self.items[k] = item;
      item.addEventListener('click', function () { self.closeMenu(true); self.action(k); });
    });
    menu.addEventListener('keydown', function (e) { self.menuKey(e); });
    box.appendChild(menu);

    // The chat window.
    var chat = this.chat = el('section', 'c2k-chat');
    chat.id = container.id + '_chat';
    chat.hidden = true;
    chat.setAttribute('role', 'dialog');
    var head = el('div', 'c2k-chat-head');
    this.chatTitle = el('h2', 'c2k-chat-title');
    this.chatTitle.id = container.id + '_chat_title';
    chat.setAttribute('aria-labelledby', this.chatTitle.id);
    var close = this.chatClose = el('button', 'c2k-chat-close');
    close.type = 'button';
    close.appendChild(el('span', null, '\u00D7'));
    close.firstChild.setAttribute('aria-hidden', 'true');
    head.appendChild(this.chatTitle);
    head.appendChild(close);
    chat.appendChild(head);
    var log = this.chatLog = el('div', 'c2k-chat-log');
    log.setAttribute('role', 'log');
    log.setAttribute('aria-live', 'polite');
    log.tabIndex = 0;
    chat.appendChild(log);
    var form = el('form', 'c2k-chat-form');
    var input = this.chatInput = el('input', 'c2k-chat-input');
    input.type = 'text';
    input.id = container.id + '_chat_input';
    input.autocomplete = 'off';
    input.maxLength = 2000;
    var send = this.chatSend = el('button', 'c2k-chat-send');
    send.type = 'submit';
    form.appendChild(input);
    form.appendChild(send);
    chat.appendChild(form);
    box.appendChild(chat);

    applyLook(box, btn);

    // Click: call or hang up. A long press opens the menu instead (and eats the click).
    var pressTimer = null;
    var longPressed = false;
    btn.addEventListener('click', function (e) {
      if (longPressed) { longPressed = false; e.preventDefault(); return; }
      self.action(self.inCall ? 'hangup' : 'call');
    });
    btn.addEventListener('contextmenu', function (e) { e.preventDefault(); self.openMenu(btn, false); });
    btn.addEventListener('pointerdown', function (e) {
      if (e.button !== 0) { return; }
      longPressed = false;
      clearTimeout(pressTimer);
      pressTimer = setTimeout(function () { longPressed = true; self.openMenu(btn, false); }, LONG_PRESS_MS);
    });
    ['pointerup', 'pointerleave', 'pointercancel'].forEach(function (ev) {
      btn.addEventListener(ev, function () { clearTimeout(pressTimer); });
    });
    btn.addEventListener('keydown', function (e) {
      if (e.key === 'ContextMenu' || (e.key === 'F10' && e.shiftKey)) { e.preventDefault(); self.openMenu(btn, true); }
      // Escape on the button hangs up its call (only there: the embedding page may use Escape).
      if (e.key === 'Escape' && self.inCall) { e.preventDefault(); self.action('hangup'); }
    });
    more.addEventListener('click', function () {
      if (self.menu.hidden) { self.openMenu(more, true); } else { self.closeMenu(true); }
    });
    doc.addEventListener('pointerdown', function (e) {
      if (!self.menu.hidden && !self.menu.contains(e.target) && e.target !== more && !more.contains(e.target) && e.target !== btn && !btn.contains(e.target)) {
        self.closeMenu(false);
      }
    });
    close.addEventListener('click', function () { self.closeChat(); });
    chat.addEventListener('keydown', function (e) { if (e.key === 'Escape') { e.stopPropagation(); self.closeChat(); } });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      self.sendChat(input.value);
    });

    this.translate();
  }

  Button.prototype.translate = function () {
    if (sr) { this.box.lang = sr.language(); }
    var n = this.number || t('c2k.no_number');
    var text = String(param('call_button_text') || '').trim();
    var visible = this.inCall ? t('c2k.hangup') : (text || t('c2k.call'));
    var name = this.inCall ? t('c2k.hangup_name', { name: n }) : t('c2k.call_name', { name: n });
    this.label.textContent = visible;
    // The accessible name starts with (or contains) the visible text (WCAG 2.5.3).
    if (name.toLowerCase().indexOf(visible.toLowerCase()) < 0) { name = visible + ': ' + n; }
    this.button.setAttribute('aria-label', name);
    this.button.classList.toggle('c2k-incall', this.inCall);
    this.more.setAttribute('aria-label', t('c2k.menu_for', { name: n }));
    this.items.call.textContent = t('c2k.call');
    this.items.chat.textContent = t('c2k.chat');
    this.items.hangup.textContent = t('c2k.hangup');
    this.items.call.parentNode.hidden = this.inCall;
    this.items.hangup.parentNode.hidden = !this.inCall;
    this.menu.setAttribute('aria-label', t('c2k.menu_for', { name: n }));
    this.chatTitle.textContent = t('c2k.chat_with', { name: n });
    this.chatClose.setAttribute('aria-label', t('c2k.chat_close'));
    this.chatInput.setAttribute('aria-label', t('c2k.chat_message'));
    this.chatInput.placeholder = t('c2k.chat_placeholder');
    this.chatSend.textContent = t('c2k.chat_send');
  };

  Button.prototype.setStatus = function (text, kind) {
    this.status.textContent = text || '';
    this.status.className = 'c2k-status' + (kind ? ' c2k-status-' + kind : '');
  };

  Button.prototype.action = function (what) {
    var self = this;
    if (what === 'chat') { this.openChat(true); return Promise.resolve(); }
    if (what === 'hangup') {
      var line = this.line;
      var p = line ? api('setline', line).then(function () { return api('hangup', line); }, function () { return api('hangup'); }) : api('hangup');
      return p.catch(function (e) { self.setStatus(t('message.error', { reason: e.message || String(e) }), 'error'); });
    }
    if (what === 'call' || what === 'video') {
      if (!this.number) { this.setStatus(t('c2k.no_number'), 'error'); return Promise.resolve(); }
      if (calling && calling !== this && calling.inCall) { this.setStatus(t('c2k.busy'), 'error'); return Promise.resolve(); }
      calling = this;
      this.inCall = true;
      this.line = 0;
      this.translate();
      this.setStatus(t('sp.calling'));
      var placed = what === 'video'
        ? api('videocall', this.number).catch(function () { return api('call', self.number); })
        : api('call', this.number);
      return placed.catch(function (e) {
        self.endCall();
        self.setStatus(t('message.error', { reason: e.message || String(e) }), 'error');
      });
    }
    return Promise.resolve();
  };

  Button.prototype.callState = function (line, status) {
    var self = this;
    if (ENDED[status]) {
      if (this.line && this.line !== line) { return; }
      this.endCall();
      this.setStatus(t('sp.call_ended'));
      return;
    }
    if (!ACTIVE[status]) { return; }
    if (this.line && this.line !== line) { return; }
    this.line = line;
    if (!this.inCall) { this.inCall = true; this.translate(); }
    calling = this;
    if (CONNECTED[status]) {
      if (!this.started) {
        this.started = Date.now();
        this.timer = setInterval(function () { self.showConnected(); }, TIMER_TICK_MS);
      }
      this.showConnected(status === 'Hold');
    } else {
      this.setStatus(status === 'Ringing' ? t('sp.ringing') : t('sp.calling'));
    }
  };

  Button.prototype.showConnected = function (hold) {
    var sec = Math.floor((Date.now() - this.started) / 1000);
    this.setStatus((hold ? t('sp.on_hold') : t('sp.connected')) + ' ' + duration(sec), 'connected');
  };

  Button.prototype.endCall = function () {
    clearInterval(this.timer);
    this.timer = null;
    this.started = 0;
    this.line = 0;
    this.inCall = false;
    if (calling === this) { calling = null; }
    this.translate();
  };

  // Menu: focus moves into it when opened from the keyboard; arrows move, Escape closes.
  Button.prototype.openMenu = function (from, focus) {
    buttons.forEach(function (b) { if (b !== this && !b.menu.hidden) { b.closeMenu(false); } }, this);
    this.translate();
    this.menu.hidden = false;
    this.more.setAttribute('aria-expanded', 'true');
    this.menuFrom = from;
    var first = this.menuItems()[0];
    if (first && focus) { first.focus(); }
  };

  Button.prototype.closeMenu = function (restoreFocus) {
    if (this.menu.hidden) { return; }
    this.menu.hidden = true;
    this.more.setAttribute('aria-expanded', 'false');
    if (restoreFocus && this.menuFrom) { this.menuFrom.focus(); }
  };

  Button.prototype.menuItems = function () {
    return Array.prototype.filter.call(this.menu.querySelectorAll('.c2k-menu-item'), function (i) { return !i.parentNode.hidden; });
  };

  Button.prototype.menuKey = function (e) {
    var items = this.menuItems();
    var at = items.indexOf(doc.activeElement);
    if (e.key === 'ArrowDown') { e.preventDefault(); items[(at + 1) % items.length].focus(); } else if (e.key === 'ArrowUp') { e.preventDefault(); items[(at - 1 + items.length) % items.length].focus(); } else if (e.key === 'Home') { e.preventDefault(); items[0].focus(); } else if (e.key === 'End') { e.preventDefault(); items[items.length - 1].focus(); } else if (e.key === 'Escape' || e.key === 'Tab') {
      if (e.key === 'Escape') { e.preventDefault(); }
      this.closeMenu(e.key === 'Escape');
    }
  };

  Button.prototype.openChat = function (focus) {
    this.translate();
    this.chat.hidden = false;
    this.chatOpen = true;
    this.box.classList.add('c2k-chatting');
    if (focus) { this.chatInput.focus(); }
  };

  Button.prototype.closeChat = function () {
    this.chat.hidden = true;
    this.chatOpen = false;
    this.box.classList.remove('c2k-chatting');
    this.button.focus();
  };

  Button.prototype.addMessage = function (dir, text, who) {
    var li = el('div', 'c2k-msg c2k-msg-' + dir);
    var whoText = dir === 'in' ? (who || this.number) : t('c2k.me');
    var meta = el('span', 'c2k-msg-who', whoText);
    li.appendChild(meta);
    li.appendChild(el('span', 'c2k-msg-text', text));
    if (dir === 'out') {
      var st = el('span', 'c2k-msg-state', t('c2k.chat_sending'));
      li.appendChild(st);
      this.pending = this.pending || [];
      this.pending.push(st);
    }
    this.chatLog.appendChild(li);
    this.chatLog.scrollTop = this.chatLog.scrollHeight;
    return li;
  };

  // CHATREPORT status: 0 unknown, 1 sending, 2 sent, 3 failed (reason in the text field).
  Button.prototype.chatReport = function (status, reason) {
    if (!this.pending || !this.pending.length) { return; }
    var s = String(status).trim();
    if (s === '1' || s === '0') { return; }
    var st = this.pending.shift();
    var ok = s === '2';
    st.textContent = ok ? t('c2k.chat_sent') : t('c2k.chat_failed') + (reason ? ': ' + reason : '');
    st.className = 'c2k-msg-state ' + (ok ? 'c2k-ok' : 'c2k-failed');
  };

  Button.prototype.sendChat = function (text) {
    var self = this;
    text = String(text || '');
    if (!text.trim()) { return Promise.resolve(); }
    if (!this.number) { this.setStatus(t('c2k.no_number'), 'error'); return Promise.resolve(); }
    this.openChat(false);
    this.chatInput.value = '';
    var li = this.addMessage('out', text);
    return api('sendchat', this.number, text).catch(function (e) {
      var st = li.querySelector('.c2k-msg-state');
      if (self.pending) { self.pending = self.pending.filter(function (x) { return x !== st; }); }
      st.textContent = t('c2k.chat_failed') + ': ' + (e.message || String(e));
      st.className = 'c2k-msg-state c2k-failed';
    });
  };

  // ---------------------------------------------------------------- start

  function containers() {
    var found = Array.prototype.filter.call(doc.querySelectorAll('[id^="c2k_container_"]'), function (e) {
      return /^c2k_container_\d+$/.test(e.id);
    });
    return found.sort(function (a, b) {
      return parseInt(a.id.slice(14), 10) - parseInt(b.id.slice(14), 10);
    });
  }

  function startupAction() {
    var first = buttons[0];
    if (!first) { return; }
    var action = paramInt('autoaction', 0);
    if (action === 1) {
      first.action('call');
    } else if (action === 3) {
      first.action('video');
    } else if (action === 2) {
      var to = String(param('to') || '').trim();
      if (to) { first.number = to; first.translate(); }
      first.openChat(true);
      var text = param('sendchat');
      if (text) { first.sendChat(text); }
    }
  }

  // Only this skin's own marked texts (data-i18n="c2k.*"): the embedding page is left alone.
  function translatePage() {
    Array.prototype.forEach.call(doc.querySelectorAll('[data-i18n^="c2k."]'), function (e) {
      e.textContent = t(e.getAttribute('data-i18n'));
    });
    // click2call.html itself (not an embedding page): its language is the skin's.
    if (sr && doc.querySelector('.c2k-page-title')) { doc.documentElement.lang = sr.language(); }
  }

  // The buttons appear at once (URL and static parameters); the engine's parameters (callto,
  // language, ...) and the start-up action follow when webphone_api is loaded.
  function boot() {
    var strings = loadParams(false).then(function () {
      if (!sr) { return null; }
      if (sr.setBase) { sr.setBase(I18N_BASE); }
      return sr.load(param('language'), { apply: false }).then(translatePage, function () { return null; });
    });
    strings.then(function () {
      buttons = containers().map(function (c, i) { return new Button(c, i); });
      wp.onEvents(onNotification);
      // Messages for the user (translated when known) on the button that is calling, else the first.
      wp.onDisplay(function (message, title) {
        var target = calling || buttons[0];
        var text = sr && sr.display ? sr.display(String(message || '')) : String(message || '');
        if (target && text) { target.setStatus(text, title === 'Error' || !calling ? 'error' : ''); }
      });
      doc.documentElement.classList.add('c2k-ready');
      wp.onLoaded(function () {
        var lang = param('language');
        loadParams(true).then(function () {
          var again = param('language') !== lang && sr ? sr.load(param('language'), { apply: false }).then(translatePage) : Promise.resolve();
          return again.catch(function () { return null; });
        }).then(function () {
          buttons.forEach(function (b) {
            if (!b.number) { b.number = String(b.container.getAttribute('title') || '').trim() || String(param('callto')).trim(); }
            b.translate();
            applyLook(b.box, b.button);
          });
          startupAction();
          doc.documentElement.classList.add('c2k-started');
        });
      });
    });
  }

  global.click2call = {
    buttons: function () { return buttons.slice(); },
    onNotification: onNotification,
    // Re-reads the containers (for buttons added to the page later).
    refresh: function () {
      var known = buttons.map(function (b) { return b.container; });
      containers().forEach(function (c) { if (known.indexOf(c) < 0) { buttons.push(new Button(c, buttons.length)); } });
    }
  };

  if (!wp) {
    if (global.console) { global.console.error('click2call: webphone_api.js must be included before click2call.js'); }
    return;
  }
  if (doc.readyState === 'loading') { doc.addEventListener('DOMContentLoaded', boot); } else { boot(); }
})(window);
