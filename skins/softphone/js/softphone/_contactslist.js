/*
 * _contactslist.js: the contacts page (page_contactslist): list with search, favourites first,
 * call, edit; "Add contact" opens page_contactedit. Contacts live in localStorage for now;
 * "Import vCard" / "Export vCard" go through the engine (importvcard / exportvcard) and sync.
 * "Sync" also downloads the server address book when serveraddressbook_url is set.
 */
(function (global) {
  'use strict';
  var j$ = global.j$;
  var S = global.WPSkin;
  var t = S.t;

  function openEditor(id, preset) {
    S.editContact = { id: id || null, preset: preset || null };
    j$.mobile.changePage('#page_contactedit', { transition: 'none', role: 'page' });
  }
  S.openContactEditor = openEditor;

  // Presence / BLF lamp before the name: a coloured dot with its meaning as text (title and
  // screen readers); none while nothing is known.
  function setLamp(row, title, number) {
    var old = row.querySelector('.contact-lamp');
    var lamp = S.lampOf(number);
    if (old && (!lamp || old.getAttribute('data-lamp') !== lamp.kind)) { row.removeChild(old); old = null; }
    if (!lamp || old) { return; }
    var dot = S.el('span', 'contact-lamp lamp-' + lamp.kind);
    dot.setAttribute('data-lamp', lamp.kind);
    dot.setAttribute('title', lamp.label);
    dot.appendChild(S.el('span', 'visually-hidden', lamp.label));
    row.insertBefore(dot, title);
  }

  // A PRESENCE or BLF notification: the lamps change in place (focus and scroll stay).
  function updateLamps() {
    var byId = {};
    S.contacts().forEach(function (c) { byId[c.id] = c; });
    Array.prototype.forEach.call(S.byId('contacts_list').children, function (li) {
      var c = byId[li.getAttribute('data-id')];
      var row = li.querySelector('.contact-title-row');
      if (c && row) { setLamp(row, row.querySelector('.contact-name'), c.number); }
    });
  }

  function render() {
    var q = S.byId('contacts_search').value.trim().toLowerCase();
    var list = S.contacts().filter(function (c) {
      return !q || String(c.name).toLowerCase().indexOf(q) >= 0 || String(c.number).toLowerCase().indexOf(q) >= 0;
    }).sort(function (a, b) {
      if (!!a.favorite !== !!b.favorite) { return a.favorite ? -1 : 1; }
      return String(a.name).localeCompare(String(b.name));
    });
    var ul = S.byId('contacts_list');
    ul.textContent = '';
    list.forEach(function (c) {
      var li = S.el('li', 'item contact');
      li.setAttribute('data-id', c.id);
      var fav = S.el('button', 'btn btn-icon fav');
      fav.appendChild(S.icon(c.favorite ? 'star' : 'star-o'));
      fav.type = 'button';
      fav.setAttribute('aria-pressed', String(!!c.favorite));
      fav.setAttribute('aria-label', t('sp.favorite_of', { name: c.name }));
      fav.addEventListener('click', function () {
        c.favorite = !c.favorite;
        S.saveContact(c);
        render();
      });
      var info = S.el('div', 'item-main');
      var title = S.el('span', 'item-title contact-name', c.name);
      var titleRow = S.el('span', 'contact-title-row');
      titleRow.appendChild(title);
      info.appendChild(titleRow);
      setLamp(titleRow, title, c.number);
      info.appendChild(S.el('span', 'item-sub contact-number', c.number));
      if (S.isBlocked(c.number)) { info.appendChild(S.el('span', 'item-sub contact-blocked', t('sp.blocked'))); }
      var callBtn = S.el('button', 'btn btn-icon btn-callsmall');
      callBtn.type = 'button';
      callBtn.appendChild(S.icon('phone'));
      callBtn.setAttribute('aria-label', t('sp.call_name', { name: c.name }));
      callBtn.addEventListener('click', function () { S.call(c.number); });
      var chatBtn = null;
      if (S.chat && S.chat.enabled()) {
        chatBtn = S.el('button', 'btn btn-icon contact-chat');
        chatBtn.type = 'button';
        chatBtn.appendChild(S.icon('chat'));
        chatBtn.setAttribute('aria-label', t('sp.chat_with', { name: c.name }));
        chatBtn.addEventListener('click', function () { S.chat.open(c.number); });
      }
      var edit = S.el('button', 'btn btn-small contact-edit', t('sp.edit'));
      edit.type = 'button';
      edit.setAttribute('aria-label', t('sp.edit_name', { name: c.name }));
      edit.addEventListener('click', function () { openEditor(c.id); });
      li.appendChild(fav);
      li.appendChild(info);
      li.appendChild(callBtn);
      if (chatBtn) { li.appendChild(chatBtn); }
      li.appendChild(edit);
      ul.appendChild(li);
    });
    var empty = S.byId('contacts_empty');
    empty.hidden = list.length > 0;
    // showsynccontactsmenu: -1 hidden; 0 in the header and on the empty list; 1 header only.
    // Only when the engine has the contacts API (listcontacts / addcontact).
    var sync = syncMode();
    S.byId('contacts_sync').hidden = sync < 0;
    S.byId('contacts_vcard_row').hidden = !hasVcard();
    S.byId('contacts_sync_empty_row').hidden = !(sync === 0 && S.contacts().length === 0);
    empty.textContent = q && S.contacts().length ? t('sp.contacts_nomatch') : t('sp.contacts_empty');
  }

  function syncMode() {
    var wp = global.webphone_api;
    var has = !!(wp && typeof wp.listcontacts === 'function' && typeof wp.addcontact === 'function');
    var mode = S.paramInt('showsynccontactsmenu', 1);
    return has && S.featureset() > 0 ? mode : -1;
  }

  // vCard import/export: the engine extensions importvcard / exportvcard (feature set > 0).
  function hasVcard() {
    var wp = global.webphone_api;
    return !!(wp && typeof wp.importvcard === 'function' && typeof wp.exportvcard === 'function') && S.featureset() > 0;
  }

  function vcardBusy(busy) {
    ['contacts_import', 'contacts_export'].forEach(function (id) { S.byId(id).disabled = busy; });
  }

  function importFile() {
    var input = S.byId('contacts_import_file');
    var file = input.files && input.files[0];
    input.value = '';
    if (!file) { return; }
    vcardBusy(true);
    file.arrayBuffer().then(S.importVcard).then(function (r) {
      S.toast(t('sp.contacts_imported', { count: r.imported, file: file.name }));
    }, S.toastError).then(function () {
      vcardBusy(false);
      render();
    });
  }

  function exportFile() {
    vcardBusy(true);
    S.exportVcard().then(function (r) {
      S.toast(t('sp.contacts_exported', { count: r.count }));
    }, S.toastError).then(function () {
      vcardBusy(false);
      render();
    });
  }

  // With a server address book (serveraddressbook_url), syncing also downloads it through the
  // engine extension syncservercontacts; its SERVERCONTACTS notification brings the new contacts
  // into this list (common.js).
  function serverBook() {
    var wp = global.webphone_api;
    if (!(wp && typeof wp.syncservercontacts === 'function') || !S.param('serveraddressbook_url')) {
      return Promise.resolve();
    }
    return S.api('syncservercontacts');
  }

  function sync() {
    var buttons = [S.byId('contacts_sync'), S.byId('contacts_sync_empty')];
    buttons.forEach(function (b) { b.disabled = true; });
    serverBook().then(S.syncContacts).then(function (r) {
      S.toast(t('sp.contacts_synced', { imported: r.imported, exported: r.exported }));
    }, S.toastError).then(function () {
      buttons.forEach(function (b) { b.disabled = false; });
      render();
    });
  }

  S.page('page_contactslist', {
    onCreate: function () {
      S.byId('contacts_search').addEventListener('input', render);
      S.byId('contacts_add').addEventListener('click', function () { openEditor(null); });
      S.byId('contacts_sync').addEventListener('click', sync);
      S.byId('contacts_sync_empty').addEventListener('click', sync);
      S.byId('contacts_import').addEventListener('click', function () { S.byId('contacts_import_file').click(); });
      S.byId('contacts_import_file').addEventListener('change', importFile);
      S.byId('contacts_export').addEventListener('click', exportFile);
      j$(global.document).on('wpskin:presence', updateLamps);
      // The list changed behind the page (the server address book arrived, a sync ended).
      j$(global.document).on('wpskin:contacts', function () {
        if (!S.byId('page_contactslist').hidden) { render(); }
      });
    },
    onStart: render,
    onStop: function () {}
  });
})(window);
