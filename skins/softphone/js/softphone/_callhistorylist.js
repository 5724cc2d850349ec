/*
 * _callhistorylist.js: the call history page (page_callhistorylist), from CDR notifications kept
 * in localStorage: filter (all / missed / incoming / outgoing), call back, add to contacts.
 */
(function (global) {
  'use strict';
  var j$ = global.j$;
  var S = global.WPSkin;
  var t = S.t;
  var filter = 'all';

  function when(ms) {
    var d = new Date(ms);
    try {
      return d.toLocaleString(global.stringres.language(), { dateStyle: 'short', timeStyle: 'short' });
    } catch (e) { return d.toLocaleString(); }
  }

  function render() {
    var ul = S.byId('history_list');
    ul.textContent = '';
    var list = S.history().filter(function (h) {
      if (filter === 'missed') { return h.missed; }
      if (filter === 'in') { return h.direction === 'in'; }
      if (filter === 'out') { return h.direction === 'out'; }
      return true;
    });
    list.forEach(function (h) {
      var li = S.el('li', 'item history' + (h.missed ? ' missed' : ''));
      var kind = h.missed ? 'missed' : h.direction;
      var icon = S.icon(kind === 'out' ? 'out' : 'in', 'dir-icon dir-' + kind);
      var info = S.el('div', 'item-main');
      var contact = S.findContactByNumber(h.peer);
      var title = (contact && contact.name) || h.name || h.peer;
      info.appendChild(S.el('span', 'item-title history-name', title));
      var sub = S.el('span', 'item-sub');
      sub.appendChild(S.el('span', 'visually-hidden', t('sp.history_kind_' + kind) + ', '));
      sub.appendChild(S.el('span', 'history-number', title !== h.peer ? h.peer + ' · ' : ''));
      sub.appendChild(S.el('span', 'history-time', when(h.time)));
      if (h.duration > 0) { sub.appendChild(S.el('span', 'history-duration', ' · ' + S.formatDuration(h.duration / 1000))); }
      info.appendChild(sub);
      var back = S.el('button', 'btn btn-icon btn-callsmall');
      back.type = 'button';
      back.appendChild(S.icon('phone'));
      back.setAttribute('aria-label', t('sp.call_back', { name: title }));
      back.addEventListener('click', function () { S.call(h.peer); });
      li.appendChild(icon);
      li.appendChild(info);
      li.appendChild(back);
      if (!contact && S.featureset() > 0) {
        var add = S.el('button', 'btn btn-small', t('sp.add_short'));
        add.type = 'button';
        add.setAttribute('aria-label', t('sp.add_to_contacts', { name: title }));
        add.addEventListener('click', function () {
          S.openContactEditor(null, { name: h.name || '', number: h.peer });
        });
        li.appendChild(add);
      }
      ul.appendChild(li);
    });
    S.byId('history_empty').hidden = list.length > 0;
  }

  S.page('page_callhistorylist', {
    onCreate: function () {
      j$('#history_filter').on('click', 'button', function () {
        filter = this.getAttribute('data-filter');
        j$('#history_filter button').attr('aria-pressed', 'false');
        this.setAttribute('aria-pressed', 'true');
        render();
      });
      S.byId('history_clear').addEventListener('click', function () {
        S.confirm(t('sp.history_clear_confirm')).then(function (yes) { if (yes) { S.clearHistory(); render(); } });
      });
      j$(global.document).on('wpskin:history', function () {
        if (global.WPRouter.current() === 'page_callhistorylist') { render(); }
      });
    },
    onStart: render,
    onStop: function () {}
  });
})(window);
