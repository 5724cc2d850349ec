/*
 * _call.js: the in-call page (page_call): peer, state, timer, encryption indicator, answer /
 * reject for incoming calls, hang up, mute, hold, DTMF keypad, transfer (blind or consult first),
 * conference, new call, a line switcher when several calls exist, and (per parameters) volume
 * and audio device controls. After the last call ends the page stays for `closecall_timeout` ms.
 */
(function (global) {
  'use strict';
  var j$ = global.j$;
  var S = global.WPSkin;
  var t = S.t;

  var timer = null;
  var closeTimer = null;
  var formMode = 'transfer'; // or 'conference'
  var dtmfSent = '';
  var devicesLoaded = false;

  function line() {
    var n = S.currentLine();
    return n ? S.lines[n] : null;
  }

  function stateText(l) {
    if (!l) { return ''; }
    if (l.ended) { return t('sp.call_ended'); }
    if (l.connectedAt) { return l.hold ? t('sp.on_hold') : t('sp.connected'); }
    if (l.incoming) { return t('sp.incoming_call'); }
    return l.state === 'Ringing' ? t('sp.ringing') : t('sp.calling');
  }

  function elapsed(l) {
    // hasringcounter: the counter also runs while the call rings.
    if (l && !l.connectedAt && !l.ended && S.truthy(S.param('hasringcounter'))) { return (Date.now() - l.startedAt) / 1000; }
    if (!l || !l.connectedAt) { return 0; }
    var end = l.ended ? l.endedAt : Date.now();
    return (end - l.connectedAt) / 1000;
  }

  function renderTimer() {
    S.byId('call_timer').textContent = S.formatDuration(elapsed(line()));
  }

  function renderLines() {
    var box = S.byId('call_lines');
    var list = S.activeLines();
    var multi = list.length > 1 && S.param('multilinegui') !== '0';
    box.hidden = !multi;
    box.textContent = '';
    if (!multi) { return; }
    list.forEach(function (l) {
      var b = S.el('button', 'btn btn-small line-btn');
      b.type = 'button';
      b.textContent = t('sp.line_n', { n: l.line }) + ': ' + (l.name || l.peer);
      b.setAttribute('aria-pressed', String(l.line === S.currentLine()));
      b.addEventListener('click', function () {
        S.setCurrentLine(l.line);
        S.api('setline', l.line).catch(function () { /* older API: single line */ });
      });
      box.appendChild(b);
    });
  }

  function render() {
    var l = line();
    renderLines();
    var name = l ? (l.name || l.peer) : '';
    var contact = l ? S.findContactByNumber(l.peer) : null;
    if (contact && !l.name) { name = contact.name; }
    S.byId('call_peer_name').textContent = name;
    S.byId('call_peer_number').textContent = l && name !== l.peer ? l.peer : '';
    S.byId('call_avatar').textContent = name ? name.charAt(0).toUpperCase() : '';
    S.byId('call_state').textContent = stateText(l);
    var enc = !!(l && l.encrypted);
    S.byId('call_encryption').className = 'call-enc ' + (enc ? 'enc-on' : 'enc-off');
    S.byId('call_encryption').querySelector('use').setAttribute('href', enc ? '#i-lock' : '#i-unlock');
    S.byId('call_encryption_text').textContent = enc ? t('sp.encrypted') : t('sp.not_encrypted');
    var ringingIn = !!(l && !l.ended && l.incoming && !l.connectedAt);
    S.byId('call_incoming').hidden = !ringingIn;
    var live = !!(l && !l.ended);
    S.byId('call_controls').hidden = !live || ringingIn;
    S.byId('call_hangup').disabled = !live;
    S.byId('call_hangup').parentNode.hidden = ringingIn;
    S.byId('call_mute').setAttribute('aria-pressed', String(!!(l && l.mute)));
    S.byId('call_hold').setAttribute('aria-pressed', String(!!(l && l.hold)));
    S.byId('call_conference').hidden = S.disabled('CONFERENCE');
    // Record (voicerecord): our own addition; disableoptions RECORD hides it.
    S.byId('call_record').hidden = S.disabled('RECORD') || !(l && l.connectedAt);
    S.byId('call_record').setAttribute('aria-pressed', String(!!(l && !l.ended && l.recording)));
    // callparknumber: Park sends the park code as DTMF.
    S.byId('call_park').hidden = !S.param('callparknumber') || !(l && l.connectedAt);
    renderPeerDetails();
    if (!live) {
      S.byId('call_dtmf').hidden = true;
      S.byId('call_transfer_form').hidden = true;
    }
    renderTimer();
  }

  // ---------------------------------------------------------------- peer details

  // displaypeerdetails: '' none; 0 on the call page instead of the picture; 1 on a page of its
  // own (page_peerdetails, "Caller details" button); another value: the id of an element of the
  // integrator's page. Content: the call's line details (getlinedetails) and the
  // scurl_displaypeerdetails answer (POPUP). Everything is put in as text; an HTML answer is
  // reduced to its text (htmlToText).
  var lineDetails = {};  // line key -> fields of getlinedetails

  function peerMode() {
    var v = S.param('displaypeerdetails').trim();
    if (v === '' || v === '-') { return null; }
    if (v === '0' || v === '1') { return v; }
    return /^[A-Za-z][\w:-]*$/.test(v) ? v : null;
  }

  function lineKey(l) { return l.line + ':' + l.startedAt; }

  // The text of an HTML answer without parsing it into a document (an HTML parser, even an
  // inert one, would still try the answer's images and handlers): script/style blocks and tags
  // dropped, the common entities decoded. The result only ever goes into textContent.
  var ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
  function htmlToText(s) {
    s = String(s || '');
    if (!/[<&]/.test(s)) { return s.trim(); }
    return s.replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
      .replace(/<[^>]*>/g, ' ')
      .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, function (m, e) {
        var c = e.charAt(0) === '#' ? parseInt(e.charAt(1).toLowerCase() === 'x' ? e.slice(2) : e.slice(1), e.charAt(1).toLowerCase() === 'x' ? 16 : 10) : -1;
        if (c > 0 && c < 0x110000) { return String.fromCodePoint(c); }
        return ENTITIES.hasOwnProperty(e.toLowerCase()) ? ENTITIES[e.toLowerCase()] : m;
      })
      .replace(/\s+/g, ' ').trim();
  }

  function fetchLineDetails(l) {
    var key = lineKey(l);
    if (lineDetails[key] || l.ended) { return; }
    lineDetails[key] = { pending: true };
    S.api('getlinedetails', l.line).then(function (d) {
      // LINEDETAILS,line,state,callid,remoteusername,localusername,type,localaddress,
      // serveraddress,mute,hold,remotefullname
      var f = String(d || '').split(',');
      if (f[0] !== 'LINEDETAILS' || f[2] === 'Ready') { lineDetails[key] = { none: true }; return; }
      lineDetails[key] = { peer: f[4] || '', server: f[8] || '', name: f.slice(11).join(',') };
      renderPeerDetails();
    }, function () { lineDetails[key] = { none: true }; });
  }

  // Fills `box` with a definition list of what is known about the call's peer.
  function fillPeerDetails(box, l) {
    box.textContent = '';
    var d = lineDetails[lineKey(l)] || {};
    var rows = [
      [t('sp.contact_name'), d.name || l.name],
      [t('sp.peer_number'), d.peer || l.peer],
      [t('sp.peer_direction'), l.incoming ? t('sp.peer_incoming') : t('sp.peer_outgoing')],
      [t('sp.peer_server'), d.server],
      [t('sp.peer_more'), htmlToText(l.peerDetails)]
    ];
    var dl = S.el('dl', 'peer-details-list');
    rows.forEach(function (r) {
      if (!r[1]) { return; }
      dl.appendChild(S.el('dt', '', r[0]));
      dl.appendChild(S.el('dd', '', r[1]));
    });
    box.appendChild(dl);
  }

  function renderPeerDetails() {
    var mode = peerMode();
    var l = line();
    var panel = S.byId('call_peerdetails');
    panel.hidden = mode !== '0' || !l;
    S.byId('call_avatar').hidden = mode === '0' && !!l;
    S.byId('call_peerdetails_open').hidden = mode !== '1' || !l;
    if (!mode || !l) { return; }
    fetchLineDetails(l);
    if (mode === '0') { fillPeerDetails(S.byId('call_peerdetails_body'), l); }
    if (mode === '1' && global.WPRouter.current() === 'page_peerdetails') { fillPeerDetails(S.byId('peerdetails_body'), l); }
    if (mode !== '0' && mode !== '1') {
      var target = global.document.getElementById(mode);
      if (target) { fillPeerDetails(target, l); }
    }
  }

  // Record: start, or stop and tell where the file is. Whether a line is being recorded comes
  // from the engine's VREC notifications (common.js), automatic recordings included.
  function toggleRecord() {
    var l = line();
    if (!l || l.ended) { return; }
    var on = !l.recording;
    act('voicerecord', on).then(function (path) {
      if (path === undefined) { return; }
      l.recording = on;
      if (!on && path) { S.toast(t('sp.recording_saved', { path: String(path) }), 'long'); }
      render();
    });
  }

  function act(fn) {
    var args = Array.prototype.slice.call(arguments, 1);
    return S.onLine(S.currentLine(), function () { return S.api.apply(null, [fn].concat(args)); }).catch(S.toastError);
  }

  function sendDtmf(d) {
    if (!line() || line().ended) { return; }
    dtmfSent = (dtmfSent + d).slice(-24);
    S.byId('call_dtmf_sent').textContent = dtmfSent;
    act('dtmf', d);
  }

  // Mute / hold: shown at once, put back when the API refuses.
  function toggle(btn, fn) {
    var b = S.byId(btn);
    var on = b.getAttribute('aria-pressed') !== 'true';
    var l = line();
    if (!l || l.ended) { return; }
    b.setAttribute('aria-pressed', String(on));
    l[fn] = on;
    S.onLine(l.line, function () {
      return fn === 'mute' ? S.api('mute', on, 0) : S.api('hold', on);
    }).catch(function (e) {
      l[fn] = !on;
      b.setAttribute('aria-pressed', String(!on));
      S.toastError(e);
    });
  }

  function showForm(mode) {
    var form = S.byId('call_transfer_form');
    var same = formMode === mode && !form.hidden;
    formMode = mode;
    form.hidden = same;
    S.byId('call_transfer').setAttribute('aria-expanded', String(!form.hidden && mode === 'transfer'));
    form.querySelector('label').textContent = mode === 'transfer' ? t('sp.transfer_to') : t('sp.conference_add');
    S.byId('call_transfer_blind').textContent = mode === 'transfer' ? t('sp.transfer_blind') : t('sp.conference_add_button');
    S.byId('call_transfer_attended').hidden = mode !== 'transfer';
    if (!form.hidden) { S.byId('call_transfer_number').focus(); }
  }

  function submitForm(e) {
    e.preventDefault();
    var num = S.byId('call_transfer_number').value.trim();
    if (formMode === 'transfer') {
      if (!num && S.activeLines().length < 2) { S.toast(t('message.enter_number'), 'error'); return; }
      act('transfer', num);
    } else {
      act('conference', num, true);
    }
    S.byId('call_transfer_form').hidden = true;
    S.byId('call_transfer_number').value = '';
  }

  function loadDevices() {
    if (devicesLoaded) { return; }
    devicesLoaded = true;
    var sel = S.byId('call_device_out');
    S.fillDeviceSelect(sel, 1);
    sel.addEventListener('change', function () {
      S.api('setdevice', 1, sel.value, 2).catch(S.toastError);
    });
  }

  function afterEnd() {
    clearTimeout(closeTimer);
    if (S.activeLines().length) { return; }
    var ms = S.paramInt('closecall_timeout', 8000);
    closeTimer = setTimeout(function () {
      if (global.WPRouter.current() === 'page_call' && !S.activeLines().length) {
        global.WPRouter.forget('page_call');
        j$.mobile.back();
        if (global.WPRouter.current() === 'page_call') { global.WPRouter.reset('page_dialpad'); }
      }
    }, ms > 0 ? ms : 0);
  }

  var page = {
    sendDtmf: sendDtmf,
    onCreate: function () {
      S.byId('call_hangup').addEventListener('click', function () { S.hangup(S.currentLine()); });
      S.byId('call_accept').addEventListener('click', function () { act('accept'); });
      S.byId('call_reject').addEventListener('click', function () { act('reject'); });
      S.byId('call_mute').addEventListener('click', function () { toggle('call_mute', 'mute'); });
      S.byId('call_hold').addEventListener('click', function () { toggle('call_hold', 'hold'); });
      S.byId('call_keypad_toggle').addEventListener('click', function () {
        var box = S.byId('call_dtmf');
        box.hidden = !box.hidden;
        this.setAttribute('aria-expanded', String(!box.hidden));
      });
      S.buildKeypad(S.byId('call_dtmf_keypad'), sendDtmf);
      S.byId('call_transfer').addEventListener('click', function () { showForm('transfer'); });
      S.byId('call_conference').addEventListener('click', function () {
        if (S.activeLines().length > 1) { act('conference', '', true); } else { showForm('conference'); }
      });
      S.byId('call_record').addEventListener('click', toggleRecord);
      S.byId('call_transfer_form').addEventListener('submit', submitForm);
      S.byId('call_transfer_attended').addEventListener('click', function () {
        var num = S.byId('call_transfer_number').value.trim();
        if (!num) { S.toast(t('message.enter_number'), 'error'); return; }
        // Consult first: hold this call and call the target; "Transfer" with an empty number
        // then connects the two lines.
        act('hold', true).then(function () { return S.call(num); }).then(function (ok) {
          if (ok) { S.toast(t('sp.transfer_consult_hint'), 'long'); }
        });
        S.byId('call_transfer_form').hidden = true;
        // The form's next use completes the transfer with an empty number: do not leave the
        // consulted number there (it would transfer the consultation call to itself).
        S.byId('call_transfer_number').value = '';
      });
      S.byId('call_park').addEventListener('click', function () {
        var code = S.param('callparknumber');
        if (!code || !line() || line().ended) { return; }
        act('dtmf', code).then(function () { S.toast(t('sp.parked', { number: code })); });
      });
      S.byId('call_newcall').addEventListener('click', function () {
        j$.mobile.changePage('#page_dialpad', { transition: 'none', role: 'page' });
      });
      S.byId('call_volume').addEventListener('change', function () {
        S.api('setvolume', 1, this.value).catch(S.toastError);
      });
      j$(global.document).on('wpskin:lines', function (ev, l) {
        if (l && l.ended && l.line === S.currentLine()) { afterEnd(); }
        if (l && !l.ended) { clearTimeout(closeTimer); }
        if (global.WPRouter.current() === 'page_call') { render(); } else if (l && l.line === S.currentLine()) { renderPeerDetails(); }
      });
      S.byId('call_peerdetails_open').addEventListener('click', function () {
        j$.mobile.changePage('#page_peerdetails', { transition: 'none', role: 'page' });
      });
    },
    onStart: function () {
      dtmfSent = '';
      S.byId('call_dtmf_sent').textContent = '';
      var vol = S.truthy(S.param('displayvolumecontrols'));
      var dev = S.truthy(S.param('displayaudiodevice')) && !S.disabled('Audio device');
      S.byId('call_devices').hidden = !(vol || dev);
      S.byId('call_volume_field').hidden = !vol;
      S.byId('call_device_field').hidden = !dev;
      if (dev) { loadDevices(); }
      render();
      clearInterval(timer);
      timer = setInterval(renderTimer, 500);
      var l = line();
      if (!l || l.ended) { afterEnd(); }
    },
    onStop: function () {
      clearInterval(timer);
      timer = null;
    }
  };
  S.page('page_call', page);

  S.page('page_peerdetails', {
    onCreate: function () {},
    onStart: function () {
      var l = line();
      if (l) { fillPeerDetails(S.byId('peerdetails_body'), l); } else { S.byId('peerdetails_body').textContent = ''; }
    },
    onStop: function () {}
  });
})(window);
