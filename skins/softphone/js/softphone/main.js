/*
 * main.js: start-up of the softphone skin: strings, theme, branding, the start page (login or
 * dial pad), tabs, keyboard shortcuts and the routing of engine events to the pages.
 */
(function (global) {
  'use strict';

  var j$ = global.j$;
  var S = global.WPSkin;
  var wp = global.webphone_api;
  var t = S.t;
  var booted = false;
  var seenLines = {};

  var TAB_PAGES = {
    page_dialpad: 'tab_dialpad', page_contactslist: 'tab_contactslist', page_contactedit: 'tab_contactslist',
    page_callhistorylist: 'tab_callhistorylist', page_settings: 'tab_settings', page_call: 'tab_call',
    page_chat: 'tab_chat', page_peerdetails: 'tab_call'
  };

  function go(id, opts) { j$.mobile.changePage('#' + id, j$.extend({ transition: 'none', role: 'page' }, opts || {})); }

  // ------------------------------------------------------------------ tabs

  function pageEnabled(id) {
    var fs = S.featureset();
    switch (id) {
      case 'page_contactslist': return !S.disabled('PAGE_CONTACTS') && fs > 0;
      case 'page_callhistorylist': return !S.disabled('PAGE_HISTORY') && !S.disabled('RECENTS') && fs > 0;
      case 'page_dialpad': return !S.disabled('PAGE_MAIN');
      case 'page_chat': return !S.disabled('CHAT') && fs > 0;
      default: return true;
    }
  }

  function updateTabs(current) {
    var active = TAB_PAGES[current] || null;
    j$('#tabbar .tab').each(function () {
      var page = this.getAttribute('data-page');
      if (page !== 'page_call') { this.hidden = !pageEnabled(page); }
      if (this.id === active) { this.setAttribute('aria-current', 'page'); } else { this.removeAttribute('aria-current'); }
    });
    S.byId('tabbar').hidden = current === 'page_login';
  }

  function updateCallTab() {
    var n = S.activeLines().length;
    S.byId('tab_call').hidden = n === 0;
  }

  // ------------------------------------------------------------------ header

  function renderRegistration() {
    var g = S.general;
    var box = S.byId('reg_state');
    var text;
    var cls = 'reg-unknown';
    var reg = g.registered;
    if (!reg && wp && wp.state.started) {
      // No general STATUS seen yet (the engine was already running): use the facade's state.
      reg = wp.state.registered ? 2 : (S.param('serveraddress') ? 0 : 1);
    }
    if (reg === 2 || reg === 3) { text = t('sp.registered'); cls = 'reg-ok'; } else if (reg === 5 || reg >= 7) { text = t('sp.not_registered'); cls = 'reg-failed'; } else if (reg === 1) { text = t('sp.no_account'); cls = 'reg-none'; } else { text = g.status || (wp && wp.state.status) || t('status.ready'); }
    if (!wp || !wp.state.loaded) { text = booted ? t('status.no_engine') : t('status.loading'); cls = booted ? 'reg-failed' : 'reg-unknown'; }
    box.className = 'reg-state ' + cls;
    S.byId('reg_text').textContent = text;
  }

  function applyBranding() {
    var brand = S.param('brandname') || t('app.title');
    global.document.title = brand;
    S.byId('brand_name').textContent = brand;
    var logo = S.param('logo');
    var logoBox = S.byId('brand_logo');
    logoBox.textContent = '';
    var href = logo ? S.logoHref(logo) : null;
    if (href) {
      var img = S.el('img');
      img.src = href;
      img.alt = '';
      logoBox.appendChild(img);
    }
    var header = S.param('header');
    S.byId('header_text').textContent = header;
    S.byId('header_text').hidden = !header;
    var footer = S.param('footer');
    var footerBox = S.byId('app_footer');
    footerBox.textContent = footer;
    // advertisement: a URL shown at the bottom of the window (http/https only).
    var ad = S.linkParam('advertisement');
    if (ad) {
      var a = S.el('a', 'app-advert', ad.replace(/^https?:\/\//i, ''));
      a.href = ad;
      a.id = 'app_advert';
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      if (footer) { footerBox.appendChild(global.document.createTextNode(' · ')); }
      footerBox.appendChild(a);
    }
    footerBox.hidden = !footer && !ad;
    var pop = S.param('messagepopup');
    if (pop && S.load('messagepopup_shown', '') !== pop) {
      S.save('messagepopup_shown', pop);
      S.toast(pop, 'long');
    }
  }

  // ------------------------------------------------------------------ start page

  function startPage() {
    var useLogin = S.paramInt('useloginpage', -1);
    var user = S.param('username');
    var pass = S.param('password');
    var stored = S.load('account', null);
    var hasCreds = !!(user && pass);
    if (!hasCreds && stored && stored.username && stored.password) {
      // Credentials remembered on this device: hand them to the engine and sign in.
      hasCreds = true;
      var sets = [];
      if (stored.server) { sets.push(S.setParam('serveraddress', stored.server)); }
      sets.push(S.setParam('username', stored.username));
      sets.push(S.setParam('password', stored.password));
      Promise.all(sets).then(function () { return S.api('register'); }).catch(S.toastError);
    } else if (hasCreds && S.urlSet.username) {
      // Credentials from the page URL (wp_username / wp_password).
      var s2 = [S.setParam('username', user), S.setParam('password', pass)];
      if (S.urlSet.serveraddress) { s2.push(S.setParam('serveraddress', S.param('serveraddress'))); }
      Promise.all(s2).then(function () { return S.api('register'); }).catch(S.toastError);
    }
    if (useLogin === 2 || (!hasCreds && !S.load('skiplogin', false))) {
      global.WPRouter.reset(useLogin === 0 ? 'page_settings' : 'page_login', { noFocus: true });
    } else {
      global.WPRouter.reset(pageEnabled('page_dialpad') ? 'page_dialpad' : 'page_settings', { noFocus: true });
    }
    // A call already up (the page was reloaded during it, or the engine re-sent its lines
    // before the skin finished loading): go straight to the call page, rendered with the
    // strings now loaded.
    if (S.activeLines().some(function (l) { return !l.ended; })) { go('page_call'); }
  }

  function preferredLanguage() {
    return S.urlSet.language ? S.param('language') : (S.load('language', '') || S.param('language'));
  }

  function preferredTheme() {
    return S.urlSet.colortheme ? S.param('colortheme') : (S.load('colortheme', '') || S.param('colortheme'));
  }

  function boot(withEngine) {
    if (booted) { return; }
    booted = true;
    // After the DOM-ready set-up below (j$(fn) runs fn at once when the DOM is ready already).
    j$(function () { bootNow(withEngine); });
  }

  function bootNow(withEngine) {
    S.loadParams(withEngine).then(function () {
      S.applyTheme(preferredTheme());
      return global.stringres.load(preferredLanguage());
    }).then(function () {
      applyBranding();
      renderRegistration();
      startPage();
      global.document.body.classList.add('ready');
      S.chatStart();
    }).catch(function (e) {
      S.toastError(e);
      global.WPRouter.reset('page_dialpad', { noFocus: true });
      global.document.body.classList.add('ready');
    });
  }

  // ------------------------------------------------------------------ keyboard

  function typingTarget(e) {
    var tag = e.target && e.target.tagName;
    return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || (e.target && e.target.isContentEditable);
  }

  function onKey(e) {
    if (!S.byId('confirm_dialog').hidden) { return; }
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var page = global.WPRouter.current();
    if (e.key === 'Escape') {
      var form = S.byId('call_transfer_form');
      if (page === 'page_call' && !form.hidden && form.contains(e.target)) {
        // Escape inside the transfer form closes the form, not the call.
        e.preventDefault();
        form.hidden = true;
        S.byId('call_transfer').focus();
        return;
      }
      if (S.activeLines().length) {
        e.preventDefault();
        S.hangup(S.currentLine());
      }
      return;
    }
    if (typingTarget(e)) { return; }
    if (/^[0-9*#+]$/.test(e.key) || (/^[a-zA-Z]$/.test(e.key) && page === 'page_dialpad')) {
      if (page === 'page_dialpad') {
        e.preventDefault();
        var input = S.byId('dial_number');
        input.value += e.key;
        input.focus();
      } else if (page === 'page_call' && /^[0-9*#]$/.test(e.key)) {
        e.preventDefault();
        if (S.pages.page_call && S.pages.page_call.sendDtmf) { S.pages.page_call.sendDtmf(e.key); }
      } else if (page !== 'page_login' && page !== 'page_call' && /^[0-9*#+]$/.test(e.key) && pageEnabled('page_dialpad')) {
        // A digit typed on any other page (outside a form field) starts dialling: the dial pad
        // opens with the digit in the number field, so Enter then calls.
        e.preventDefault();
        go('page_dialpad');
        var field = S.byId('dial_number');
        field.value += e.key;
        field.focus();
      }
    } else if (e.key === 'Enter' && page === 'page_dialpad' && (!e.target || e.target.tagName !== 'BUTTON')) {
      e.preventDefault();
      S.call(S.byId('dial_number').value);
    } else if (e.key === 'Backspace' && page === 'page_dialpad') {
      var inp = S.byId('dial_number');
      inp.value = inp.value.slice(0, -1);
    }
  }

  // ------------------------------------------------------------------ wiring

  // ------------------------------------------------------------------ incoming-call notice

  var notices = {};  // line -> Notification
  var plainTitle = null;

  // incomingcallpopup: 0 never, 1 when the window is not focused, 2 and 3 always.
  function notifyIncoming(l) {
    var mode = S.paramInt('incomingcallpopup', 1);
    var name = l.name || l.peer;
    if (plainTitle === null) { plainTitle = global.document.title; }
    global.document.title = t('sp.incoming_from', { name: name });
    // The desktop app pops up ringing calls itself (window and OS notification).
    if (S.inDesktopApp()) { return; }
    if (mode <= 0 || typeof global.Notification !== 'function' || global.Notification.permission !== 'granted') { return; }
    if (mode === 1 && global.document.hasFocus()) { return; }
    var custom = S.param('callnot_body');
    if (custom === 'Incoming call from: PEERNAME') { custom = ''; } // the default: translated below
    var body = custom ? custom.split('PEERNAME').join(name) : t('sp.incoming_from', { name: name });
    try {
      var opts = { body: body, tag: 'wpcall' + l.line };
      // callnot_icon / callnot_image: an http(s) URL or a file name in images/ (like logo).
      var icon = notificationPicture(S.param('callnot_icon'));
      if (icon) { opts.icon = icon; }
      var image = notificationPicture(S.param('callnot_image'));
      if (image) { opts.image = image; }
      var n = new global.Notification(S.param('callnot_title') || S.param('brandname') || t('app.title'), opts);
      n.onclick = function () { global.focus(); go('page_call'); n.close(); };
      notices[l.line] = n;
    } catch (e) { /* notifications unavailable */ }
  }

  function notificationPicture(v) {
    var file = v ? S.logoHref(String(v).trim()) : null;
    return file ? new global.URL(file, global.location.href).href : S.safeUrl(v);
  }

  function clearIncoming(l) {
    if (notices[l.line]) { notices[l.line].close(); delete notices[l.line]; }
    var ringing = S.activeLines().some(function (x) { return x.incoming && !x.connectedAt; });
    if (!ringing && plainTitle !== null) { global.document.title = plainTitle; plainTitle = null; }
  }

  // Asks once, on a user action, for permission to show incoming-call notifications.
  function askNotificationPermission() {
    global.document.removeEventListener('click', askNotificationPermission, true);
    var wanted = S.paramInt('incomingcallpopup', 1) > 0 || S.paramInt('displaynotification', 1) > 0;
    if (wanted && !S.inDesktopApp() && typeof global.Notification === 'function' &&
        global.Notification.permission === 'default') {
      try { global.Notification.requestPermission().catch(function () {}); } catch (e) { /* old API */ }
    }
  }

  function onLines(ev, l) {
    updateCallTab();
    if (!l) { return; }
    var key = l.line + ':' + l.startedAt;
    if (l.ended || l.connectedAt) { clearIncoming(l); }
    if (!l.ended && !seenLines[key]) {
      seenLines[key] = true;
      if (l.incoming && !l.connectedAt) { notifyIncoming(l); }
      // A new call (outgoing or incoming): show the call page.
      if (global.WPRouter.current() !== 'page_call') { go('page_call'); }
    }
  }

  j$(global.document).on('wpskin:status', function () { if (booted) { renderRegistration(); } });
  j$(global.document).on('wpskin:lines', onLines);
  // displaynotification: a missed call is an event worth a notification.
  j$(global.document).on('wpskin:history', function (ev, entry) {
    if (!entry || !entry.missed) { return; }
    S.desktopNotify(t('sp.history_kind_missed'), entry.name || entry.peer, 'wpmissed', function () { go('page_callhistorylist'); });
  });

  // Engine callbacks are registered at once (not at DOM ready): the facade may report a refused
  // connection right after DOMContentLoaded.
  if (wp) {
    wp.onEvents(S.onNotification);
    wp.onDisplay(function (message, title) {
      var text = global.stringres.display(String(message || ''));
      if (!text) { return; }
      S.toast(title && title !== 'Error' ? String(title) + ': ' + text : text, title === 'Error' ? 'error' : '');
    });
    wp.onRegistered(function () { renderRegistration(); });
    wp.onStart(function () { renderRegistration(); });
    wp.onRegisterFailed(function (reason) {
      renderRegistration();
      // The reason is the engine's text ("Authentication failed (403 Forbidden)"): translated.
      if (wp.state.loaded) { S.toast(t('message.register_failed', { reason: global.stringres.display(String(reason || '')) }), 'error'); }
    });
    wp.onLoaded(function () {
      if (!booted) { boot(true); return; }
      // Started without the engine: refresh what the engine knows.
      S.loadParams(true).then(function () { applyBranding(); renderRegistration(); });
    });
  }

  j$(function () {
    global.stringres.apply(global.document); // remembers the English defaults
    S.initDialogs();
    j$('#tabbar').on('click', '.tab', function () { go(this.getAttribute('data-page')); });
    j$(global.document).on('click', '.btn-back', function () { j$.mobile.back(); });
    global.document.addEventListener('keydown', onKey);
    global.document.addEventListener('click', askNotificationPermission, true);
    global.WPRouter.onChange(function (id) { updateTabs(id); });
    j$(global.document).on('wpskin:language', function () {
      renderRegistration();
      applyBranding();
      var cur = global.WPRouter.current();
      if (cur && S.pages[cur] && S.pages[cur].onStart) { S.pages[cur].onStart(); }
    });

    if (!wp) {
      S.toast(t('status.no_engine'), 'error');
      boot(false);
      return;
    }
    // The phone service may be down: show the skin anyway after a short wait.
    setTimeout(function () { boot(!!wp.state.loaded); }, 2500);
  });
})(window);
