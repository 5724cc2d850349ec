/*
 * _chat.js: page_chat: instant messages (SIP MESSAGE, RFC 3428) through webphone_api.sendchat,
 * or sendsms with chatsms=1.
 *
 *  - conversations list (newest first, unread counts) and one thread at a time;
 *  - incoming CHAT notifications are stored and shown; showincomingchatas=0 (default) opens the
 *    conversation when no call is running, 1 only notifies (toast + unread count);
 *  - CHATREPORT updates the delivery state of the oldest pending message to that peer
 *    (1 sending, 2 sent, 3 failed + reason); CHATCOMPOSING shows "… is typing";
 *  - URL start-up: wp_sendchat=TEXT&wp_to=NUMBER&wp_autoaction=2 sends TEXT to NUMBER and opens it;
 *  - disableoptions CHAT or featureset 0 hide the page; chatsms=2 forces chat, 1 SMS.
 * Conversations are kept in localStorage (wpskin.chats, the last 200 messages per peer).
 * Every text from a peer is put on the page with textContent.
 */
(function (global) {
  'use strict';

  var j$ = global.j$;
  var S = global.WPSkin;
  var t = S.t;
  var MAX_PER_PEER = 200;
  var current = null;       // peer of the open thread, or null (the list)
  var typingTimer = null;

  function chats() { return S.load('chats', {}); }
  function saveChats(c) { S.save('chats', c); }

  function norm(p) { return String(p || '').trim(); }

  function displayName(peer) {
    var c = S.findContactByNumber(peer);
    return c ? c.name : peer;
  }

  function add(peer, msg) {
    var c = chats();
    var list = c[peer] || [];
    list.push(msg);
    if (list.length > MAX_PER_PEER) { list.splice(0, list.length - MAX_PER_PEER); }
    c[peer] = list;
    saveChats(c);
  }

  function unread(peer) {
    return (chats()[peer] || []).filter(function (m) { return m.dir === 'in' && !m.read; }).length;
  }

  function markRead(peer) {
    var c = chats();
    (c[peer] || []).forEach(function (m) { m.read = true; });
    saveChats(c);
    updateBadge();
  }

  function updateBadge() {
    var c = chats();
    var n = 0;
    Object.keys(c).forEach(function (p) { n += unread(p); });
    var badge = S.byId('tab_chat_badge');
    badge.textContent = n ? String(n) : '';
    badge.hidden = !n;
    // Screen readers hear "Chat, 2 unread" (the visible number is hidden from them).
    S.byId('tab_chat_unread').textContent = n ? ', ' + t('sp.chat_unread', { n: n }) : '';
  }

  function enabled() {
    return !S.disabled('CHAT') && S.featureset() > 0;
  }

  // ---------------------------------------------------------------- rendering

  function renderList() {
    var c = chats();
    var peers = Object.keys(c).filter(function (p) { return c[p].length; }).sort(function (a, b) {
      return c[b][c[b].length - 1].time - c[a][c[a].length - 1].time;
    });
    var ul = S.byId('chat_list');
    ul.textContent = '';
    peers.forEach(function (p) {
      var last = c[p][c[p].length - 1];
      var li = S.el('li', 'item chat-conv');
      var open = S.el('button', 'btn chat-open');
      open.type = 'button';
      open.setAttribute('data-peer', p);
      var main = S.el('span', 'item-main');
      main.appendChild(S.el('span', 'item-title chat-peer', displayName(p)));
      main.appendChild(S.el('span', 'item-sub chat-last', (last.dir === 'out' ? t('sp.me') + ': ' : '') + last.text));
      open.appendChild(main);
      var n = unread(p);
      if (n) {
        var b = S.el('span', 'badge', String(n));
        b.setAttribute('aria-label', t('sp.chat_unread', { n: n }));
        open.appendChild(b);
      }
      open.addEventListener('click', function () { openThread(p); });
      li.appendChild(open);
      ul.appendChild(li);
    });
    S.byId('chat_empty').hidden = peers.length > 0;
  }

  function stateText(m) {
    if (m.state === 'sent') { return t('sp.chat_sent'); }
    if (m.state === 'failed') { return t('sp.chat_failed') + (m.reason ? ': ' + m.reason : ''); }
    return t('sp.chat_sending');
  }

  function renderThread() {
    var box = S.byId('chat_log');
    box.textContent = '';
    (chats()[current] || []).forEach(function (m) {
      var div = S.el('div', 'chat-msg chat-' + m.dir);
      div.appendChild(S.el('span', 'chat-who', m.dir === 'in' ? displayName(current) : t('sp.me')));
      div.appendChild(S.appendLinkified(S.el('span', 'chat-text'), m.text));
      if (m.dir === 'out') { div.appendChild(S.el('span', 'chat-state chat-state-' + (m.state || 'sending'), stateText(m))); }
      box.appendChild(div);
    });
    box.scrollTop = box.scrollHeight;
  }

  function render() {
    var thread = !!current;
    S.byId('chat_list_view').hidden = thread;
    S.byId('chat_thread_view').hidden = !thread;
    S.byId('chat_back').hidden = !thread;
    S.byId('chat_heading').textContent = thread ? t('sp.chat_with', { name: displayName(current) }) : t('sp.chat_title');
    if (thread) { renderThread(); markRead(current); } else { renderList(); }
    S.byId('chat_file').hidden = !thread || !fileTransferOn();
    S.byId('chat_typing').textContent = '';
  }

  function openThread(peer, focus) {
    current = norm(peer);
    if (global.WPRouter.current() !== 'page_chat') {
      j$.mobile.changePage('#page_chat', { transition: 'none', role: 'page' });
    } else {
      render();
    }
    if (focus !== false) { setTimeout(function () { S.byId('chat_input').focus(); }, 0); }
  }

  // ---------------------------------------------------------------- sending

  function send(peer, text) {
    peer = norm(peer);
    text = String(text || '');
    if (!peer || !text.trim()) { return Promise.resolve(false); }
    add(peer, { dir: 'out', text: text, time: Date.now(), state: 'sending', read: true });
    if (current === peer && global.WPRouter.current() === 'page_chat') { renderThread(); }
    var sms = S.paramInt('chatsms', 0) === 1;
    var p = sms ? S.api('sendsms', peer, text) : S.api('sendchat', peer, text);
    return p.then(function () { return true; }, function (e) {
      report(peer, '3', e && e.message ? e.message : String(e));
      return false;
    });
  }

  // ---------------------------------------------------------------- our typing (RFC 3994)

  // While the user types, the peer is told (chatcomposing; the engine drops repeats within
  // the refresh interval); 15 s without a key, an emptied box or leaving the thread tells it
  // the typing stopped. Sending the text ends the state at the peer by itself (RFC 3994 §3.2).
  var TYPING_IDLE_MS = 15000;
  var typingPeer = null;
  var typingTimer2 = null;

  function typingStopped(sent) {
    clearTimeout(typingTimer2);
    var peer = typingPeer;
    typingPeer = null;
    if (peer && !sent) { S.api('chatcomposing', peer, false).then(null, function () {}); }
  }

  function typed() {
    if (!current || S.paramInt('chatsms', 0) === 1) { return; }
    if (!S.byId('chat_input').value.trim()) { typingStopped(false); return; }
    if (typingPeer && typingPeer !== current) { typingStopped(false); }
    typingPeer = current;
    clearTimeout(typingTimer2);
    typingTimer2 = setTimeout(function () { typingStopped(false); }, TYPING_IDLE_MS);
    S.api('chatcomposing', current, true).then(null, function () {});
  }

  // CHATREPORT status: 0 unknown, 1 sending, 2 sent, 3 failed.
  function report(peer, status, reason) {
    if (status !== '2' && status !== '3') { return; }
    var c = chats();
    var list = c[peer] || [];
    for (var i = 0; i < list.length; i++) {
      if (list[i].dir === 'out' && list[i].state === 'sending') {
        list[i].state = status === '2' ? 'sent' : 'failed';
        list[i].reason = status === '3' ? reason : '';
        break;
      }
    }
    saveChats(c);
    if (current === peer && global.WPRouter.current() === 'page_chat') { renderThread(); }
  }

  function incoming(peer, text) {
    peer = norm(peer);
    if (!peer) { return; }
    var viewing = current === peer && global.WPRouter.current() === 'page_chat';
    add(peer, { dir: 'in', text: text, time: Date.now(), read: viewing });
    S.byId('chat_typing').textContent = '';
    if (viewing) {
      renderThread();
      markRead(peer);
      if (global.document.body.classList.contains('ready')) { notifyMessage(peer, text); }
      return;
    }
    updateBadge();
    if (global.WPRouter.current() === 'page_chat' && !current) { renderList(); }
    var ready = global.document.body.classList.contains('ready');
    if (ready) { notifyMessage(peer, text); }
    var onlyNotify = !ready || S.paramInt('showincomingchatas', 0) === 1 || S.activeLines().length > 0 || !enabled();
    if (onlyNotify) {
      if (!ready) { return; }
      S.toast(t('sp.chat_new_message', { name: displayName(peer) }));
    } else {
      openThread(peer, false);
    }
  }

  // displaynotification: a desktop notification for the message (S.desktopNotify decides).
  function notifyMessage(peer, text) {
    var body = String(text || '');
    if (body.length > 200) { body = body.slice(0, 199) + '…'; }
    S.desktopNotify(t('sp.chat_new_message', { name: displayName(peer) }), body, 'wpchat' + peer, function () { openThread(peer); });
  }

  // ---------------------------------------------------------------- file transfer

  // hasfiletransfer: the chosen file is POSTed (multipart: hidden `filename`, a unique generated
  // name, and the file as `filedata`) to `filetransferurl` in a new tab (the page's CSP allows no
  // cross-origin requests from scripts, a form may post), then a message with the download URL
  // (filetransferurl + file name) goes to the peer. No default storage service.
  function fileTransferOn() { return S.truthy(S.param('hasfiletransfer')) && enabled(); }

  function uniqueName(original) {
    var clean = String(original || 'file').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(-60) || 'file';
    return Date.now().toString(36) + '_' + Math.random().toString(36).slice(2, 10) + '_' + clean;
  }

  function sendFile() {
    var peer = current;
    if (!peer) { return; }
    var url = S.safeUrl(S.param('filetransferurl'));
    if (!url || /[?#]/.test(url)) { S.toast(t('sp.chat_file_noserver'), 'error'); return; }
    if (url.charAt(url.length - 1) !== '/') { url += '/'; }
    var old = S.byId('chat_file_form');
    if (old) { old.parentNode.removeChild(old); }
    var form = S.el('form');
    form.id = 'chat_file_form';
    form.hidden = true;
    form.method = 'post';
    form.enctype = 'multipart/form-data';
    form.action = url;
    form.target = '_blank';
    var name = S.el('input');
    name.type = 'hidden';
    name.name = 'filename';
    var file = S.el('input');
    file.type = 'file';
    file.name = 'filedata';
    file.id = 'chat_file_input';
    file.setAttribute('aria-label', t('sp.chat_file'));
    form.appendChild(name);
    form.appendChild(file);
    global.document.body.appendChild(form);
    file.addEventListener('change', function () {
      if (!file.files || !file.files.length) { return; }
      name.value = uniqueName(file.files[0].name);
      form.submit();
      send(peer, url + encodeURIComponent(name.value));
      setTimeout(function () { if (form.parentNode) { form.parentNode.removeChild(form); } }, 0);
    });
    file.click();
  }

  function composing(peer, on) {
    if (current !== norm(peer)) { return; }
    clearTimeout(typingTimer);
    S.byId('chat_typing').textContent = on ? t('sp.chat_typing', { name: displayName(peer) }) : '';
    // RFC 3994 "active" states expire (refresh 120 s by default; 15 s without news is plenty).
    if (on) { typingTimer = setTimeout(function () { S.byId('chat_typing').textContent = ''; }, 15000); }
  }

  function onNotification(text) {
    String(text || '').split(/\r?\n/).forEach(function (raw) {
      var line = raw.replace(/^WPNOTIFICATION,/, '').replace(/\s*NEOL\s*$/, '');
      var f = line.split(',');
      var kind = f[0];
      if (kind === 'CHAT') {
        incoming(f[2], f.slice(3).join(','));
      } else if (kind === 'CHATREPORT') {
        report(norm(f[2]), String(f[3] || '').trim(), f.slice(4).join(',').trim());
      } else if (kind === 'CHATCOMPOSING') {
        composing(f[2], String(f[3] || '').trim() === '1');
      }
    });
  }

  S.chat = { open: openThread, send: send, onNotification: onNotification, conversations: chats, enabled: enabled };

  S.page('page_chat', {
    onCreate: function () {
      S.byId('chat_new_form').addEventListener('submit', function (e) {
        e.preventDefault();
        var num = S.byId('chat_new_number').value.trim();
        if (!num) { S.toast(t('message.enter_number'), 'error'); return; }
        S.byId('chat_new_number').value = '';
        openThread(num);
      });
      S.byId('chat_form').addEventListener('submit', function (e) {
        e.preventDefault();
        var input = S.byId('chat_input');
        var text = input.value;
        if (!text.trim() || !current) { return; }
        input.value = '';
        typingStopped(true);
        send(current, text);
      });
      S.byId('chat_input').addEventListener('input', typed);
      S.byId('chat_file').addEventListener('click', sendFile);
      S.byId('chat_back').addEventListener('click', function () {
        typingStopped(false);
        current = null;
        render();
        S.byId('chat_new_number').focus();
      });
      j$(global.document).on('wpskin:language', function () { if (global.WPRouter.current() === 'page_chat') { render(); } updateBadge(); });
    },
    onStart: function () { render(); },
    onStop: function () { typingStopped(false); if (current) { markRead(current); } }
  });

  // Registered at once: a message may arrive before the skin finished starting.
  if (global.webphone_api) { global.webphone_api.onEvents(onNotification); }

  // Called by main.js at start-up (after the parameters are known).
  S.chatStart = function () {
    updateBadge();
    // wp_sendchat=TEXT&wp_to=NUMBER&wp_autoaction=2 (URL only).
    var text = S.urlParam('sendchat');
    var to = S.urlParam('to') || S.urlParam('callto');
    if (text && to && S.urlParam('autoaction') === '2' && enabled()) {
      openThread(to, false);
      send(to, text);
    }
  };
})(window);
